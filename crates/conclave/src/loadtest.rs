//! `conclave loadtest signaling`: measures a running server's signaling
//! against a floor measured in the same run — a minimal WebSocket echo
//! server (`conclave loadtest floor-server`) doing the least any signaling
//! server must: an HTTP request, a WebSocket handshake, a message each way.
//!
//! 1. Join → admitted latency: guests join a live meeting (the REST join,
//!    the WebSocket handshake, the room's admission, the `admitted`
//!    message), each from its own loopback address. The meeting's waiting
//!    room is off here, so what is timed is the server alone; with the
//!    waiting room on, a host's click is added (one more message each way).
//! 2. Idle connections: thousands of admitted participants, spread over
//!    meetings of 20, held open; the server's resident memory per connection,
//!    beside the floor server holding as many idle WebSockets.

use crate::progress::Progress;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use conclave_client::{Client, MeetingConnection};
use conclave_proto::signal::ServerMessage;
use conclave_proto::{CreateMeetingRequest, JoinMeetingRequest, LoginRequest, MeetingSettingsRequest};
use futures_util::{SinkExt, StreamExt};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(Args)]
pub struct LoadtestArgs {
    #[command(subcommand)]
    command: LoadtestCommand,
}

#[derive(Subcommand)]
enum LoadtestCommand {
    /// Join latency and idle-connection memory, beside the floor server.
    Signaling(SignalingArgs),
    /// Media through the SFU: rooms × publishers × subscribers of headless
    /// participants; loss, jitter, latency and server CPU per datagram.
    Media(crate::loadtest_media::MediaArgs),
    /// Team messaging: messages per second into a channel or many direct
    /// conversations, fan-out latency to every device, server CPU and
    /// memory; on Conclave, or the same load on Synapse or ejabberd.
    Chat(crate::loadtest_chat::ChatArgs),
    /// Sign-in timing: a wrong password for a real account beside an email
    /// no account has, interleaved in one run (they must look the same).
    Login(LoginArgs),
    /// The floor: a minimal WebSocket echo server (used by `signaling`).
    #[command(hide = true)]
    FloorServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
}

#[derive(Args)]
struct SignalingArgs {
    /// The Conclave server under test.
    #[arg(long)]
    server: String,
    /// Its process id, to read its memory.
    #[arg(long)]
    server_pid: u32,
    /// The floor server and its process id.
    #[arg(long)]
    floor: String,
    #[arg(long)]
    floor_pid: u32,
    /// An owner account of an organisation on the server.
    #[arg(long)]
    email: String,
    #[arg(long, env = "CONCLAVE_LOADTEST_PASSWORD", hide_env_values = true)]
    password: String,
    #[arg(long, default_value_t = 1000)]
    joins: usize,
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Joins in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

#[derive(Args)]
struct LoginArgs {
    #[arg(long)]
    server: String,
    /// An owner account of an organisation on the server (its members are created for the test).
    #[arg(long)]
    email: String,
    #[arg(long, env = "CONCLAVE_LOADTEST_PASSWORD", hide_env_values = true)]
    password: String,
    /// Attempts of each kind.
    #[arg(long, default_value_t = 200)]
    attempts: usize,
}

pub async fn run(args: LoadtestArgs) -> anyhow::Result<()> {
    match args.command {
        LoadtestCommand::Signaling(args) => signaling(args).await,
        LoadtestCommand::Login(args) => login_timing(args).await,
        LoadtestCommand::Media(args) => crate::loadtest_media::media(args).await,
        LoadtestCommand::Chat(args) => crate::loadtest_chat::run(args).await,
        LoadtestCommand::FloorServer { listen } => floor_server(listen).await,
    }
}

/// The n-th loopback source address (127.1.0.1, 127.1.0.2, …): each joins
/// from its own, as real participants would, so per-address limits apply as
/// they would in production.
pub(crate) fn source(n: usize) -> IpAddr {
    let n = n as u32 + 1;
    IpAddr::V4(Ipv4Addr::new(127, 1 + (n >> 16) as u8, (n >> 8) as u8, n as u8))
}

pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("no process {pid}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS not found")
}

/// Signs in as the organisation's owner the load is run for.
pub(crate) async fn sign_in_owner(
    server: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<(Client, conclave_proto::LoginResponse)> {
    let anonymous = Client::new(server);
    let login = anonymous
        .login(&LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            totp_code: None,
            recovery_code: None,
            passkey: None,
        })
        .await
        .context("sign in as the organisation's owner")?;
    Ok((anonymous.authenticated(&login.token), login))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn signaling(args: SignalingArgs) -> anyhow::Result<()> {
    let (owner, login) = sign_in_owner(&args.server, &args.email, &args.password).await?;
    // Waiting rooms are locked on by default; this organisation lets hosts
    // open the door, so admission below is the server's alone.
    let org_id = login.user.org_id.clone().context("the account has no organisation")?;
    let unlocked = conclave_proto::OrgPolicyUpdate {
        waiting_room: Some(conclave_proto::Setting::unlocked(true)),
        ..Default::default()
    };
    owner.update_org_policy(&org_id, &unlocked).await?;

    // 1. Join → admitted, beside the floor's request + handshake + echo.
    let meeting = owner.create_meeting(&meeting_request("Join latency", false)).await?;
    let mut host = owner.join_by_link(&meeting.link_secret, "Host").await?;
    host.wait_for("admission", Duration::from_secs(10), |m| matches!(m, ServerMessage::Admitted { .. })).await?;
    // The host stays, reading what the meeting sends it.
    let host_task = tokio::spawn(async move { while host.next(Duration::from_secs(60)).await.is_ok() {} });
    let progress = Arc::new(Progress::new("joins"));
    let mut join_times = Vec::with_capacity(args.joins);
    let mut floor_times = Vec::with_capacity(args.joins);
    let mut next = 0;
    while next < args.joins {
        let batch: Vec<usize> = (next..(next + args.concurrency).min(args.joins)).collect();
        next += batch.len();
        let mut tasks = Vec::new();
        for n in batch {
            let server = args.server.clone();
            let floor = args.floor.clone();
            let link = meeting.link_secret.clone();
            tasks.push(tokio::spawn(async move {
                let joined = join_once(&server, &link, source(n)).await;
                let floored = floor_once(&floor).await;
                (joined, floored)
            }));
        }
        for task in tasks {
            let (joined, floored) = task.await?;
            join_times.push(joined?);
            floor_times.push(floored?);
        }
        progress.update(next as i64, args.joins as i64);
    }
    progress.finish();
    host_task.abort();
    join_times.sort();
    floor_times.sort();

    // 2. Idle connections: meetings of 20 without a waiting room, held open.
    let server_before = rss_kib(args.server_pid)?;
    let floor_before = rss_kib(args.floor_pid)?;
    let progress = Progress::new("idle connections");
    let mut held = Vec::with_capacity(args.idle);
    let mut meeting_link = String::new();
    for n in 0..args.idle {
        if n % 20 == 0 {
            meeting_link = owner.create_meeting(&meeting_request(&format!("Idle {n}"), false)).await?.link_secret;
            // Hosts join from their own addresses too, like everyone else.
            let host_client = Client::with_local_address(&args.server, Some(source(args.joins + args.idle + n)))
                .authenticated(&login.token);
            let mut host = host_client.join_by_link(&meeting_link, "Host").await?;
            host.wait_for("admission", Duration::from_secs(10), |m| matches!(m, ServerMessage::Admitted { .. }))
                .await?;
            held.push(Held::Conclave(host));
        }
        let guest = Client::with_local_address(&args.server, Some(source(args.joins + n)));
        let mut conn = guest.join_by_link(&meeting_link, &format!("Guest {n}")).await?;
        conn.wait_for("admission", Duration::from_secs(10), |m| matches!(m, ServerMessage::Admitted { .. })).await?;
        held.push(Held::Conclave(conn));
        if n % 100 == 0 {
            progress.update(n as i64, args.idle as i64);
        }
    }
    progress.finish();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server_after = rss_kib(args.server_pid)?;
    let conclave_connections = held.len();
    drop(held);
    // The floor's turn, after Conclave's connections are closed, so this
    // process never holds both sets of sockets at once.
    let mut held = Vec::with_capacity(args.idle);
    for _ in 0..args.idle {
        let (floor_conn, _) =
            tokio_tungstenite::connect_async(format!("{}/ws", args.floor.replacen("http", "ws", 1))).await?;
        held.push(Held::Floor(floor_conn));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let floor_after = rss_kib(args.floor_pid)?;
    drop(held);

    let per_conn = |before: u64, after: u64, n: usize| after.saturating_sub(before) as f64 / n as f64;
    let conclave_per = per_conn(server_before, server_after, conclave_connections);
    let floor_per = per_conn(floor_before, floor_after, args.idle);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (j50, j99) = (percentile(&join_times, 0.5), percentile(&join_times, 0.99));
    let (f50, f99) = (percentile(&floor_times, 0.5), percentile(&floor_times, 0.99));
    println!("| measure | Conclave | floor (minimal WebSocket server) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| join → admitted, p50 ({} joins, {} at once) | {:.2} ms | {:.2} ms | {:.1}× |",
        args.joins,
        args.concurrency,
        ms(j50),
        ms(f50),
        ms(j50) / ms(f50)
    );
    println!("| join → admitted, p99 | {:.2} ms | {:.2} ms | {:.1}× |", ms(j99), ms(f99), ms(j99) / ms(f99));
    println!(
        "| resident memory with {} idle connections ({} participants, {} hosts) | {:.0} MiB (from {:.0} MiB) | {:.0} MiB (from {:.0} MiB) | |",
        conclave_connections,
        args.idle,
        conclave_connections - args.idle,
        server_after as f64 / 1024.0,
        server_before as f64 / 1024.0,
        floor_after as f64 / 1024.0,
        floor_before as f64 / 1024.0
    );
    println!(
        "| memory per idle connection | {:.1} KiB | {:.1} KiB | {:.1}× |",
        conclave_per,
        floor_per,
        conclave_per / floor_per.max(0.1)
    );
    if j99 > Duration::from_millis(50) {
        eprintln!("note: join p99 is above the 50 ms target");
    }
    if server_after > 500 * 1024 {
        eprintln!("note: server memory is above the 500 MB target");
    }
    Ok(())
}

/// Connections kept open only so that they exist while memory is measured.
#[allow(dead_code)]
/// Times failed sign-ins for real accounts and for unknown emails,
/// alternating, each from its own address (so no lockout or address limit
/// is hit: what is timed is the unthrottled path an attacker probes first).
async fn login_timing(args: LoginArgs) -> anyhow::Result<()> {
    let (owner, login) = sign_in_owner(&args.server, &args.email, &args.password).await?;
    let org_id = login.user.org_id.clone().context("the account has no organisation")?;
    // Enough real accounts that none reaches the per-email lockout.
    let accounts = args.attempts.div_ceil(4);
    let progress = Progress::new("accounts");
    let mut emails = Vec::with_capacity(accounts);
    for n in 0..accounts {
        let email = format!("timing{n}@conclave.test");
        let invite = owner
            .invite_member(
                &org_id,
                &conclave_proto::InviteMemberRequest { email: email.clone(), role: conclave_proto::OrgRole::Member },
            )
            .await?;
        Client::with_local_address(&args.server, Some(source(200_000 + n)))
            .signup(&conclave_proto::SignupRequest {
                email: email.clone(),
                password: args.password.clone(),
                display_name: format!("Member {n}"),
                invite_token: Some(invite.invite_token),
            })
            .await?;
        emails.push(email);
        progress.update(n as i64 + 1, accounts as i64);
    }
    progress.finish();
    let progress = Progress::new("sign-ins");
    let mut real = Vec::with_capacity(args.attempts);
    let mut unknown = Vec::with_capacity(args.attempts);
    let mut statuses = std::collections::BTreeSet::new();
    for n in 0..args.attempts {
        for (email, times) in
            [(emails[n % accounts].clone(), &mut real), (format!("nobody{n}@conclave.test"), &mut unknown)]
        {
            let client = Client::with_local_address(&args.server, Some(source(300_000 + 2 * n + times.len() % 2)));
            let started = Instant::now();
            let result = client
                .login(&LoginRequest {
                    email,
                    password: "not the password at all".into(),
                    totp_code: None,
                    recovery_code: None,
                    passkey: None,
                })
                .await;
            times.push(started.elapsed());
            statuses.insert(result.err().and_then(|e| e.code().map(str::to_owned)).unwrap_or_else(|| "success".into()));
        }
        progress.update(n as i64 + 1, args.attempts as i64);
    }
    progress.finish();
    real.sort();
    unknown.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| failed sign-in | wrong password, real account | unknown email | ratio |");
    println!("|---|---|---|---|");
    for (label, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
        let (a, b) = (percentile(&real, p), percentile(&unknown, p));
        println!(
            "| {label} ({} attempts each) | {:.1} ms | {:.1} ms | {:.2}× |",
            args.attempts,
            ms(a),
            ms(b),
            ms(a) / ms(b)
        );
    }
    println!();
    println!("Every attempt of both kinds was answered: {}.", statuses.into_iter().collect::<Vec<_>>().join(", "));
    Ok(())
}

/// Connections kept open only so that they exist while memory is measured.
#[allow(dead_code)]
enum Held {
    Conclave(MeetingConnection),
    Floor(tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>),
}

pub(crate) fn meeting_request(title: &str, waiting_room: bool) -> CreateMeetingRequest {
    CreateMeetingRequest {
        title: title.into(),
        scheduled_start_ms: None,
        duration_minutes: None,
        passcode: Some("loadtest-pass".into()),
        settings: MeetingSettingsRequest { waiting_room: Some(waiting_room), ..Default::default() },
        invitees: Vec::new(),
    }
}

/// One guest: REST join, WebSocket, knock, admitted; then leaves.
async fn join_once(server: &str, link_secret: &str, from: IpAddr) -> anyhow::Result<Duration> {
    let client = Client::with_local_address(server, Some(from));
    let started = Instant::now();
    let ticket = client
        .join_meeting(&JoinMeetingRequest {
            link_secret: Some(link_secret.into()),
            code: None,
            passcode: None,
            display_name: "Guest".into(),
        })
        .await?;
    let mut conn = MeetingConnection::connect(&ticket.signaling_url).await?;
    conn.wait_for("admission", Duration::from_secs(10), |m| matches!(m, ServerMessage::Admitted { .. })).await?;
    let elapsed = started.elapsed();
    conn.leave().await?;
    Ok(elapsed)
}

/// The floor: one HTTP request, one WebSocket handshake, one echo.
async fn floor_once(floor: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    // A fresh HTTP client per call, as each Conclave join above uses.
    let answer = reqwest::Client::new().get(format!("{floor}/healthz")).send().await?;
    if !answer.status().is_success() {
        bail!("the floor server did not answer");
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}/ws", floor.replacen("http", "ws", 1))).await?;
    ws.send(Message::Text("{\"type\":\"ping\"}".into())).await?;
    let _ = ws.next().await;
    let elapsed = started.elapsed();
    let _ = ws.close(None).await;
    Ok(elapsed)
}

async fn floor_server(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    use axum::extract::ws::{Message as AxumMessage, WebSocketUpgrade};
    use axum::routing::get;
    let app = axum::Router::new().route("/healthz", get(|| async { "ok" })).route(
        "/ws",
        get(|upgrade: WebSocketUpgrade| async move {
            // The same socket buffers as Conclave's signaling, so the floor
            // is the transport's own cost.
            let upgrade =
                upgrade.read_buffer_size(conclave_server::live::signaling::SOCKET_BUFFER_BYTES).write_buffer_size(0);
            upgrade.on_upgrade(|mut socket| async move {
                while let Some(Ok(message)) = socket.recv().await {
                    if let AxumMessage::Text(text) = message {
                        if socket.send(AxumMessage::Text(text)).await.is_err() {
                            break;
                        }
                    }
                }
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("floor server at http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
