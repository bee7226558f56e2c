//! `conclave bot`: a headless participant. It joins by invite link or by
//! code and passcode, waits in the waiting room until a host admits it, says
//! what it was told to, stays a while reporting what happens, and leaves.

use anyhow::{anyhow, bail, Context};
use clap::Args;
use conclave_client::{Client, MeetingConnection};
use conclave_proto::signal::{ClientMessage, ServerMessage};
use conclave_proto::JoinMeetingRequest;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct BotArgs {
    /// The server's URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "CONCLAVE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The invite link (or just its secret).
    #[arg(long, conflicts_with = "code")]
    link: Option<String>,
    /// The meeting code, for joining as a phone would (with --passcode).
    #[arg(long, requires = "passcode")]
    code: Option<String>,
    #[arg(long)]
    passcode: Option<String>,
    /// The name others see.
    #[arg(long, default_value = "Conclave bot")]
    name: String,
    /// A personal access token, to join signed in.
    #[arg(long, env = "CONCLAVE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Chat messages to send to everyone once admitted (repeatable).
    #[arg(long = "say")]
    say: Vec<String>,
    /// Seconds to stay after saying everything.
    #[arg(long, default_value_t = 5)]
    stay: u64,
    /// Seconds to wait for a host to admit the bot.
    #[arg(long, default_value_t = 300)]
    admit_timeout: u64,
    /// As a host (join with the owner's --token): admit everyone who knocks while the bot stays.
    #[arg(long)]
    admit: bool,
}

/// The secret of an invite link `https://host/j/<secret>`, or the argument itself.
fn link_secret(link: &str) -> &str {
    link.trim_end_matches('/').rsplit('/').next().unwrap_or(link)
}

pub async fn run(args: BotArgs) -> anyhow::Result<()> {
    let mut client = Client::new(&args.server);
    if let Some(token) = &args.token {
        client = client.authenticated(token);
    }
    let request = JoinMeetingRequest {
        link_secret: args.link.as_deref().map(|l| link_secret(l).to_owned()),
        code: args.code.clone(),
        passcode: args.passcode.clone(),
        display_name: args.name.clone(),
    };
    if request.link_secret.is_none() && request.code.is_none() {
        bail!("give --link, or --code with --passcode");
    }
    let ticket = client.join_meeting(&request).await.context("could not join")?;
    let mut conn = MeetingConnection::connect(&ticket.signaling_url).await.context("could not open signaling")?;
    let me = wait_for_admission(&mut conn, Duration::from_secs(args.admit_timeout)).await?;
    for (n, text) in args.say.iter().enumerate() {
        let client_msg_id = format!("bot-{n}");
        conn.send(&ClientMessage::Chat { client_msg_id: client_msg_id.clone(), text: text.clone(), to: None }).await?;
        conn.wait_for(
            "chat acknowledgement",
            Duration::from_secs(10),
            |m| matches!(m, ServerMessage::ChatAck { client_msg_id: id, .. } if *id == client_msg_id),
        )
        .await?;
        println!("said: {text}");
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(args.stay);
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match conn.next(left.min(Duration::from_secs(20))).await {
            Ok(message) => {
                if args.admit {
                    admit_knockers(&mut conn, &message).await?;
                }
                if report(&message, me) {
                    return Ok(());
                }
            }
            Err(conclave_client::SignalError::Timeout(_)) => {
                let _ = conn.send(&ClientMessage::Ping).await;
            }
            Err(err) => return Err(anyhow!("connection lost: {err}")),
        }
    }
    conn.leave().await?;
    println!("left the meeting");
    Ok(())
}

/// A host bot's door duty: whoever waits is let in. The waiting-room list
/// follows every knock (and a crowd's knocks come as one), so the list is
/// what the bot acts on.
async fn admit_knockers(conn: &mut MeetingConnection, message: &ServerMessage) -> anyhow::Result<()> {
    match message {
        ServerMessage::WaitingRoom { waiting } if !waiting.is_empty() => {
            let names: Vec<&str> = waiting.iter().map(|w| w.display_name.as_str()).collect();
            println!("{} waiting; admitting", names.join(", "));
            conn.send(&ClientMessage::AdmitAll).await?;
        }
        ServerMessage::Error { code, message, .. } if code == "forbidden" => {
            bail!("cannot admit: {message} (join with the meeting owner's --token to be host)");
        }
        _ => {}
    }
    Ok(())
}

async fn wait_for_admission(conn: &mut MeetingConnection, within: Duration) -> anyhow::Result<u64> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            bail!("no host admitted the bot within {} s", within.as_secs());
        }
        match conn.next(left.min(Duration::from_secs(20))).await {
            Ok(ServerMessage::Waiting { participant_id, .. }) => {
                println!("waiting in the waiting room for a host to admit us (participant {participant_id})");
            }
            Ok(ServerMessage::Admitted { participant_id, roster, .. }) => {
                let names: Vec<_> = roster.iter().map(|p| format!("{} ({:?})", p.display_name, p.role)).collect();
                println!("admitted as participant {participant_id}; in the meeting: {}", names.join(", "));
                return Ok(participant_id);
            }
            Ok(ServerMessage::Refused { reason }) => bail!("refused: {reason:?}"),
            Ok(ServerMessage::Ended { reason }) => bail!("the meeting ended: {reason:?}"),
            Ok(ServerMessage::Error { message, .. }) => bail!("error: {message}"),
            Ok(_) => {}
            Err(conclave_client::SignalError::Timeout(_)) => {
                let _ = conn.send(&ClientMessage::Ping).await;
            }
            Err(err) => bail!("connection lost: {err}"),
        }
    }
}

/// Prints what happened; true when the bot is out of the meeting.
fn report(message: &ServerMessage, me: u64) -> bool {
    match message {
        ServerMessage::Chat { message } if message.from != me => {
            println!("chat from {}: {}", message.from_name, message.text)
        }
        ServerMessage::ParticipantJoined { participant } => println!("{} joined", participant.display_name),
        ServerMessage::ParticipantLeft { participant_id } => println!("participant {participant_id} left"),
        ServerMessage::UnmuteRequested { .. } => println!("a host asks us to unmute (a bot has no microphone)"),
        ServerMessage::TimeWarning { minutes_left, .. } => println!("the meeting ends in {minutes_left} minutes"),
        ServerMessage::Removed => {
            println!("removed from the meeting by a host");
            return true;
        }
        ServerMessage::Ended { reason } => {
            println!("the meeting ended: {reason:?}");
            return true;
        }
        _ => {}
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn invite_links_and_bare_secrets_are_both_accepted() {
        assert_eq!(super::link_secret("http://127.0.0.1:8080/j/abc123"), "abc123");
        assert_eq!(super::link_secret("abc123"), "abc123");
    }
}
