//! `conclave chat`: team messaging from a terminal, end-to-end encrypted on
//! this machine. The device (its private key and every group's MLS state)
//! lives in one file, created on first use and readable by its owner only;
//! each command restores it, catches up, acts, and saves it again.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use conclave_client::chat::{ChatDevice, ChatEvent};
use conclave_client::{Client, SignalError};
use conclave_proto::conversation::{
    ConversationKind, CreateConversationRequest, LiveEvent, MembershipChange, Reference,
};

#[derive(Args, Debug)]
pub struct ChatArgs {
    /// The server's URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "CONCLAVE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A personal access token of the account.
    #[arg(long, env = "CONCLAVE_TOKEN", hide_env_values = true)]
    token: String,
    /// Where this device keeps its keys (created on first use, mode 0600).
    #[arg(long, env = "CONCLAVE_DEVICE_FILE", default_value = "conclave-device.json")]
    device_file: PathBuf,
    /// The device's name, shown in the account's device list (first use only).
    #[arg(long, default_value = "Command line")]
    device_name: String,
    #[command(subcommand)]
    command: ChatCommand,
}

#[derive(Subcommand, Debug)]
enum ChatCommand {
    /// The account's conversations.
    List,
    /// Start a conversation: a private group, a channel, or a direct message.
    Create {
        /// A private group of this name.
        #[arg(long, conflicts_with_all = ["channel", "direct"])]
        group: Option<String>,
        /// An organisation channel of this name.
        #[arg(long, conflicts_with = "direct")]
        channel: Option<String>,
        /// A direct message with this account id.
        #[arg(long)]
        direct: Option<String>,
        /// Account ids of the others in it (groups and channels).
        #[arg(long = "member")]
        members: Vec<String>,
        /// A channel without end-to-end encryption, for announcements to
        /// very many people (only where the organisation's policy allows).
        #[arg(long, requires = "channel")]
        plain: bool,
    },
    /// Join a channel of the organisation.
    Join { conversation: String },
    /// Send a message; with `-` for the text, each line of standard input
    /// is a message, in order (a script's output or a log piped into a
    /// conversation).
    Send {
        conversation: String,
        text: String,
        /// As a reply in the thread under this message.
        #[arg(long)]
        thread: Option<u64>,
    },
    /// Share a file: sealed on this machine, uploaded with a progress bar.
    Upload {
        conversation: String,
        path: PathBuf,
        /// Words to go with it.
        #[arg(long)]
        caption: Option<String>,
        /// A small preview image to show before it is downloaded [default:
        /// made here from a PNG or JPEG picture].
        #[arg(long)]
        thumbnail: Option<PathBuf>,
        /// Share a picture without a preview.
        #[arg(long, conflicts_with = "thumbnail")]
        no_thumbnail: bool,
    },
    /// Save the file a message shares, opened and checked on this machine.
    Download {
        conversation: String,
        seq: u64,
        /// Where to save it [default: its name, in the current folder].
        #[arg(long)]
        to: Option<PathBuf>,
        /// The sender's preview instead of the file.
        #[arg(long)]
        thumbnail: bool,
    },
    /// React to a message with an emoji.
    React { conversation: String, seq: u64, emoji: String },
    /// Print the messages this device holds (what it has read, kept in its device file).
    History { conversation: String },
    /// Start a call from a conversation and share its link there.
    Call { conversation: String },
    /// Print what is new; with --follow, keep printing as it comes.
    Tail {
        conversation: String,
        #[arg(long)]
        follow: bool,
        /// With --follow, stop after this many seconds.
        #[arg(long)]
        seconds: Option<u64>,
    },
}

pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server).authenticated(&args.token);
    let mut device = load_device(&client, &args).await?;
    let result = act(&client, &mut device, &args.command).await;
    save_device(&device, &args.device_file)?;
    result
}

async fn act(client: &Client, device: &mut ChatDevice, command: &ChatCommand) -> anyhow::Result<()> {
    match command {
        ChatCommand::List => {
            for c in client.list_conversations().await?.conversations {
                let name = c.name.unwrap_or_else(|| "(direct message)".into());
                let lock = if c.encrypted { "end-to-end encrypted" } else { "not encrypted" };
                println!("{}  {:?}  {name}  ({lock}, {} entries)", c.id, c.kind, c.last_seq);
            }
        }
        ChatCommand::Create { group, channel, direct, members, plain } => {
            let (kind, name, members) = match (group, channel, direct) {
                (Some(name), None, None) => (ConversationKind::Group, Some(name.clone()), members.clone()),
                (None, Some(name), None) => (ConversationKind::Channel, Some(name.clone()), members.clone()),
                (None, None, Some(with)) => (ConversationKind::Direct, None, vec![with.clone()]),
                _ => bail!("say what to create: --group NAME, --channel NAME or --direct ACCOUNT_ID"),
            };
            let created = client
                .create_conversation(&CreateConversationRequest { kind, name, members, encrypted: !plain })
                .await?;
            enter(device, &created.id).await?;
            println!("{}", created.id);
        }
        ChatCommand::Join { conversation } => {
            client.join_conversation(conversation).await?;
            enter(device, conversation).await?;
            println!("joined {conversation}");
        }
        ChatCommand::Send { conversation, text, thread } if text == "-" => {
            enter_to_send(device, conversation).await?;
            let mut sent = 0u64;
            let mut last = None;
            for line in std::io::stdin().lines() {
                let line = line.context("cannot read standard input")?;
                if line.trim().is_empty() {
                    continue;
                }
                last = Some(device.send_text(conversation, &line, thread.map(Reference::Thread)).await?.seq);
                sent += 1;
            }
            match last {
                Some(seq) => println!("sent {sent} messages, the last #{seq}"),
                None => println!("sent nothing: standard input had no line"),
            }
        }
        ChatCommand::Send { conversation, text, thread } => {
            enter_to_send(device, conversation).await?;
            let accepted = device.send_text(conversation, text, thread.map(Reference::Thread)).await?;
            println!("sent #{}", accepted.seq);
        }
        ChatCommand::Upload { conversation, path, caption, thumbnail, no_thumbnail } => {
            for file in std::iter::once(path).chain(thumbnail) {
                std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
            }
            enter_to_send(device, conversation).await?;
            let made = match (thumbnail, no_thumbnail) {
                (None, false) => MadePreview::of(path)?,
                _ => None,
            };
            let thumbnail = thumbnail.as_deref().or(made.as_ref().map(|m| m.path.as_path()));
            let bar = crate::progress::Progress::bytes("uploading");
            let progress = |done: u64, total: u64| bar.update(done as i64, total as i64);
            let sent = device.send_file(conversation, path, thumbnail, caption.as_deref(), progress).await;
            bar.finish();
            drop(made);
            let (accepted, attached) = sent?;
            println!("sent #{} {}", accepted.seq, file_line(&attached.file));
        }
        ChatCommand::Download { conversation, seq, to, thumbnail } => {
            enter(device, conversation).await?;
            device.sync().await?;
            let held = device.history(conversation).iter().find(|m| m.seq == *seq);
            let Some(attached) = held.and_then(|m| m.file.as_ref()) else {
                bail!("this device holds no file shared in #{seq}");
            };
            let file = match (thumbnail, &attached.thumbnail) {
                (false, _) => &attached.file,
                (true, Some(preview)) => preview,
                (true, None) => bail!("#{seq} has no preview"),
            };
            let to = match to {
                Some(path) => path.clone(),
                None => safe_name(&file.name)
                    .with_context(|| format!("{:?} is not a name to save under; give --to", file.name))?,
            };
            let bar = crate::progress::Progress::bytes("downloading");
            let done = client.download_file(file, &to, |done, total| bar.update(done as i64, total as i64)).await;
            bar.finish();
            done?;
            println!("saved {} ({} bytes, SHA-256 {})", to.display(), file.size, file.sha256);
        }
        ChatCommand::React { conversation, seq, emoji } => {
            enter_to_send(device, conversation).await?;
            let accepted = device.send_text(conversation, emoji, Some(Reference::Reaction(*seq))).await?;
            println!("reacted #{}", accepted.seq);
        }
        ChatCommand::History { conversation } => {
            enter(device, conversation).await?;
            device.sync().await?;
            for m in device.history(conversation) {
                let file = m.file.as_ref().map(|a| format!("{} ", file_line(&a.file))).unwrap_or_default();
                println!("#{} {}{}: {file}{}", m.seq, m.from_user, describe(m.reference), m.text);
            }
        }
        ChatCommand::Call { conversation } => {
            enter_to_send(device, conversation).await?;
            let meeting = device.start_call(conversation).await?;
            println!("{}", meeting.invite_url);
        }
        ChatCommand::Tail { conversation, follow, seconds } => {
            let until = seconds.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
            // Following, a new device waits as long as it follows for
            // another device to add it.
            let patience = match (follow, seconds) {
                (false, _) => ENTER_PATIENCE,
                (true, Some(s)) => Duration::from_secs(*s),
                (true, None) => Duration::MAX,
            };
            enter_within(device, conversation, patience).await?;
            // Following, the device's live connection says when to read again.
            let mut live = if *follow { Some(client.device_live(&device.device_id).await?) } else { None };
            loop {
                for event in device.sync().await? {
                    print_event(conversation, &device.user_id, &event);
                }
                let Some(live) = live.as_mut() else { break };
                let left = until.map_or(Duration::from_secs(24 * 3600), |u| {
                    u.saturating_duration_since(tokio::time::Instant::now())
                });
                if left.is_zero() {
                    break;
                }
                match live.next(left).await {
                    Ok(LiveEvent::Typing { conversation_id, user_id }) if conversation_id == *conversation => {
                        eprintln!("{user_id} is typing…");
                    }
                    Ok(_) => {}
                    Err(SignalError::Timeout(_)) => break,
                    Err(err) => bail!("the live connection ended: {err}"),
                }
            }
        }
    }
    Ok(())
}

/// How long a command waits for another device to add this one to a
/// conversation's group.
const ENTER_PATIENCE: Duration = Duration::from_secs(20);

/// Makes sure this device is in the conversation's group, waiting (a few
/// seconds) for a device of the group to add it.
async fn enter(device: &mut ChatDevice, conversation: &str) -> anyhow::Result<()> {
    enter_within(device, conversation, ENTER_PATIENCE).await.map(drop)
}

/// [`enter`], waiting up to `patience` (`Duration::MAX`: as long as it
/// takes); whether it read the log meanwhile.
async fn enter_within(device: &mut ChatDevice, conversation: &str, patience: Duration) -> anyhow::Result<bool> {
    device.open(conversation).await?;
    let deadline = tokio::time::Instant::now().checked_add(patience);
    let mut told = false;
    let mut read = false;
    while !device.in_group(conversation) {
        read = true;
        for event in device.sync().await? {
            print_event(conversation, &device.user_id, &event);
        }
        if device.in_group(conversation) {
            break;
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            bail!(
                "this device is not in the conversation's group yet: a device already in it adds it when next used \
                 (a send, a read, a tail); `tail --follow` waits for that"
            );
        }
        if !told {
            eprintln!("waiting for another device in the conversation to add this one…");
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(read)
}

/// A command that sends catches up first, as any client that has just
/// started does: requests waiting in the log (another device of the
/// account, a member's new device) are answered, so those devices read
/// what is sent next. The device that keeps the group's membership (its
/// first) answers at once; any other takes over once a request has
/// waited on it past the server's patience (30 s).
async fn enter_to_send(device: &mut ChatDevice, conversation: &str) -> anyhow::Result<()> {
    // Entering the group read the log already; a device in it reads it now.
    if !enter_within(device, conversation, ENTER_PATIENCE).await? {
        device.sync().await?;
    }
    Ok(())
}

fn print_event(conversation: &str, me: &str, event: &ChatEvent) {
    match event {
        ChatEvent::Message { conversation_id, seq, from_user, text, file, mentions, reference, .. }
            if conversation_id == conversation =>
        {
            let file = file.as_ref().map(|a| format!("{} ", file_line(&a.file))).unwrap_or_default();
            let to_me = if mentions.iter().any(|m| m == me) { "  (mentions you)" } else { "" };
            println!("#{seq} {from_user}{}: {file}{text}{to_me}", describe(*reference));
        }
        ChatEvent::Deleted { conversation_id, target } if conversation_id == conversation => {
            println!("#{target} was deleted")
        }
        ChatEvent::Membership { conversation_id, account, change } if conversation_id == conversation => {
            let what = match change {
                MembershipChange::Founded { .. } => "is in it from the start".to_owned(),
                MembershipChange::Joined => "joined".to_owned(),
                MembershipChange::Added { by } => format!("was added by {by}"),
                MembershipChange::Left => "left".to_owned(),
                MembershipChange::Removed { by } => format!("was removed by {by}"),
                MembershipChange::Deactivated => "was deactivated".to_owned(),
                MembershipChange::AssignedByGroup { group } => {
                    format!("was put in by the organisation (group {group})")
                }
                MembershipChange::UnassignedByGroup { group } => {
                    format!("was taken out by the organisation (left group {group})")
                }
                MembershipChange::RoleChanged { role, .. } => format!("is now {role:?}"),
            };
            println!("* {account} {what}");
        }
        ChatEvent::Undecryptable { conversation_id, seq } if conversation_id == conversation => {
            println!("#{seq} (a message this device cannot open)")
        }
        ChatEvent::Call { conversation_id, by, .. } if conversation_id == conversation => {
            println!("* {by} started a call")
        }
        ChatEvent::Removed { conversation_id } if conversation_id == conversation => {
            println!("* this device is no longer in the conversation")
        }
        ChatEvent::NewDevice { conversation_id, display_name, fingerprint, .. } if conversation_id == conversation => {
            println!("* {display_name} is on a new device (key {fingerprint}): compare it with them")
        }
        _ => {}
    }
}

/// A shared file, as the terminal shows it.
/// A preview made here for a picture, in a folder of its own that goes
/// when the upload is done.
struct MadePreview {
    folder: PathBuf,
    path: PathBuf,
}

impl MadePreview {
    /// The preview of the picture at `path`; none for what is not a PNG or
    /// JPEG picture, or does not decode (said, and the file still goes).
    fn of(path: &Path) -> anyhow::Result<Option<Self>> {
        let jpeg = match crate::thumbnail::preview(path) {
            Ok(jpeg) => jpeg,
            Err(crate::thumbnail::NoPreview::NotAPicture) => return Ok(None),
            Err(why) => {
                eprintln!("no preview for {}: {why}", path.display());
                return Ok(None);
            }
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let folder = std::env::temp_dir().join(format!("conclave-preview-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&folder)
            .with_context(|| format!("cannot make {}", folder.display()))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("picture");
        let made = Self { path: folder.join(format!("{stem} (preview).jpg")), folder };
        std::fs::write(&made.path, jpeg).with_context(|| format!("cannot write {}", made.path.display()))?;
        Ok(Some(made))
    }
}

impl Drop for MadePreview {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

fn file_line(file: &conclave_proto::file::SharedFile) -> String {
    format!("[file {:?}, {}, {} bytes]", file.name, file.mime, file.size)
}

/// A sender's file name, as a name in the current folder: its last
/// component only, never a path elsewhere or a hidden file.
fn safe_name(name: &str) -> Option<PathBuf> {
    let last = name.rsplit(['/', '\\']).next()?.trim();
    if last.is_empty() || last.starts_with('.') || last.chars().any(char::is_control) {
        return None;
    }
    Some(PathBuf::from(last))
}

/// What a message refers to, as the terminal shows it.
fn describe(reference: Option<Reference>) -> String {
    match reference {
        Some(Reference::Thread(root)) => format!(" (in thread #{root})"),
        Some(Reference::Reply(to)) => format!(" (replying to #{to})"),
        Some(Reference::Edit(of)) => format!(" (edits #{of})"),
        Some(Reference::Reaction(to)) => format!(" (reacts to #{to})"),
        None => String::new(),
    }
}

async fn load_device(client: &Client, args: &ChatArgs) -> anyhow::Result<ChatDevice> {
    match std::fs::read(&args.device_file) {
        Ok(bytes) => ChatDevice::restore(client, &bytes).context("the device file is unreadable"),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let device = ChatDevice::register(client, &args.device_name).await?;
            save_device(&device, &args.device_file)?;
            eprintln!("registered a new device {} (kept in {})", device.device_id, args.device_file.display());
            Ok(device)
        }
        Err(err) => Err(err).with_context(|| format!("cannot read {}", args.device_file.display())),
    }
}

/// Writes the device file for its owner alone, replacing it whole.
fn save_device(device: &ChatDevice, path: &PathBuf) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let partial = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&partial).with_context(|| format!("cannot write {}", partial.display()))?;
    file.write_all(&device.export())?;
    file.sync_all()?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
