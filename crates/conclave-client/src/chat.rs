//! One device's end-to-end encrypted conversations: its MLS group in each
//! (one `OpenMlsMember` per conversation, all under the device's one
//! signature key and the server's credential for it), the handshake the
//! server asks of it, and messages encrypted before they leave and
//! decrypted after they arrive. The server only ever sees ciphertext.
//!
//! `ChatDevice::sync` is the whole receive path, in the order the server
//! guarantees: the device's inbox first (a Welcome, what is still to be
//! done in a group it was just welcomed to), then each conversation's log
//! from where the device last read, where requests and commits and
//! messages stand in one order. Whatever the group agent answers (a commit
//! it was asked to make, a KeyPackage) goes back at once.

use std::collections::{BTreeMap, HashMap};

use conclave_e2ee::credential::KnownDevices;
use conclave_e2ee::group::{GroupAgent, GroupEvent, GroupInput, GroupOutput};
use conclave_e2ee::history::HistoryKeys;
use conclave_e2ee::mls::{GroupMember, MlsError, OpenMlsMember};
use conclave_proto::conversation::{
    CommitRequest, EntryBody, GroupDevice, Handshake, KeyPackageRequest, MembershipChange, MessageAccepted,
    MessagePayload, Reference, SendMessageRequest, Seq,
};
use conclave_proto::credential::DeviceOwner;
use conclave_proto::file::SharedFile;
use conclave_proto::RegisterDeviceRequest;
use data_encoding::BASE64;

use crate::{Client, ClientError};

/// Entries read per request while catching up.
const PAGE: u32 = 500;
/// Rounds of reading and answering in one sync: a commit this device makes
/// is read back (and applied) in the next round.
const ROUNDS: usize = 4;
/// Tries at sending when the group moves on meanwhile.
const SEND_TRIES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Api(#[from] ClientError),
    #[error("end-to-end encryption failed: {0:?}")]
    Mls(MlsError),
    #[error("the server's credential is not for this device's key")]
    NotVouched,
    #[error("this device is not in the conversation's group yet")]
    NotInGroup,
    #[error(transparent)]
    File(#[from] crate::files::FileTransferError),
}

impl From<MlsError> for ChatError {
    fn from(err: MlsError) -> Self {
        Self::Mls(err)
    }
}

/// Something that happened in a conversation, as this device reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
// Messages are most of the events: boxing them would cost more than it saves.
#[allow(clippy::large_enum_variant)]
pub enum ChatEvent {
    Message {
        conversation_id: String,
        seq: Seq,
        at_ms: i64,
        from_user: String,
        from_device: String,
        /// The text, or a shared file's caption.
        text: String,
        /// The file it shares, if any.
        file: Option<Attached>,
        /// The accounts it mentions.
        mentions: Vec<String>,
        reference: Option<Reference>,
        /// From before this device joined, read from its history copy.
        earlier: bool,
    },
    /// A message deleted for everyone.
    Deleted {
        conversation_id: String,
        target: Seq,
    },
    Membership {
        conversation_id: String,
        account: String,
        change: MembershipChange,
    },
    /// A message this device cannot open (sent before it was in the group,
    /// or not for it).
    Undecryptable {
        conversation_id: String,
        seq: Seq,
    },
    /// This device is no longer in the conversation's group.
    Removed {
        conversation_id: String,
    },
    /// Another device left the conversation's group: taken out on the
    /// server's own signed word (`by_server`: its account closed, the
    /// device revoked, its person removed) or by the committer's proposal.
    DeviceRemoved {
        conversation_id: String,
        device: String,
        by_server: bool,
    },
    /// Someone started a call from the conversation.
    Call {
        conversation_id: String,
        meeting_id: String,
        by: String,
    },
}

/// A message this device read, kept on the device (the server keeps only
/// ciphertext, and MLS opens each message once): the device's own history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeldMessage {
    pub seq: Seq,
    pub at_ms: i64,
    pub from_user: String,
    pub text: String,
    #[serde(default)]
    pub file: Option<Attached>,
    #[serde(default)]
    pub mentions: Vec<String>,
    pub reference: Option<Reference>,
}

/// A file a message shares, with what opens it (the key travels inside
/// the message), and the preview the sender's device made of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attached {
    pub file: SharedFile,
    pub thumbnail: Option<SharedFile>,
}

/// What a message shows: its text (a file's caption), its file, and whom
/// it mentions.
struct Shown {
    text: String,
    file: Option<Attached>,
    mentions: Vec<String>,
}

fn shown(payload: MessagePayload) -> Option<Shown> {
    match payload {
        MessagePayload::Text { text, mentions } => Some(Shown { text, file: None, mentions }),
        MessagePayload::File { file, thumbnail, caption } => Some(Shown {
            text: caption.unwrap_or_default(),
            file: Some(Attached { file, thumbnail }),
            mentions: Vec::new(),
        }),
        MessagePayload::HistoryKeys { .. } => None,
    }
}

/// This device in one conversation.
struct Group {
    member: OpenMlsMember,
    agent: GroupAgent<String>,
    /// The last entry of the log this device read.
    after: Seq,
    /// What this device sent, by client id, to show its own messages (MLS
    /// does not let the sender open its own).
    sent: HashMap<String, String>,
    /// The files among them.
    sent_files: HashMap<String, Attached>,
    /// What it has read, in order.
    held: Vec<HeldMessage>,
    removed: bool,
    /// The server refused this device's commit; the agent hears it once
    /// the device has caught up.
    refused: bool,
    /// The history keys of every epoch this device was in or was given.
    keys: HistoryKeys,
    /// This device added devices in the commit built on this epoch: once
    /// past it, it gives them its history keys.
    share_keys_after: Option<u64>,
    /// This device was given history keys: it reads what came before it.
    read_earlier: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeptGroup {
    mls: String,
    agent: GroupAgent<String>,
    after: Seq,
    sent: HashMap<String, String>,
    #[serde(default)]
    sent_files: HashMap<String, Attached>,
    #[serde(default)]
    held: Vec<HeldMessage>,
    removed: bool,
    #[serde(default)]
    keys: HistoryKeys,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeptDevice {
    device_id: String,
    user_id: String,
    key: String,
    credential: String,
    authority: String,
    inbox_after: i64,
    groups: BTreeMap<String, KeptGroup>,
}

impl Group {
    /// Keeps a message this device read, in order, and passes its event on.
    fn keep(&mut self, event: ChatEvent) -> ChatEvent {
        if let ChatEvent::Message { seq, at_ms, from_user, text, file, mentions, reference, .. } = &event {
            let held = HeldMessage {
                seq: *seq,
                at_ms: *at_ms,
                from_user: from_user.clone(),
                text: text.clone(),
                file: file.clone(),
                mentions: mentions.clone(),
                reference: *reference,
            };
            let at = self.held.partition_point(|m| m.seq < *seq);
            self.held.insert(at, held);
        }
        event
    }
}

/// A device of the signed-in account, holding its conversations' keys.
pub struct ChatDevice {
    client: Client,
    pub device_id: String,
    pub user_id: String,
    /// The device's signature key pair, private half included: it never leaves.
    key: Vec<u8>,
    credential: Vec<u8>,
    authority: String,
    groups: BTreeMap<String, Group>,
    inbox_after: i64,
}

impl ChatDevice {
    /// A new device for `client`'s account: a fresh signature key,
    /// registered with the account and vouched for by the server.
    pub async fn register(client: &Client, name: &str) -> Result<Self, ChatError> {
        let member = OpenMlsMember::new(b"")?;
        let key = member.export_signature_key();
        let req =
            RegisterDeviceRequest { signature_key: BASE64.encode(&member.signature_key()), name: name.to_owned() };
        let registration = client.register_device(&req).await?;
        let me = client.me().await?;
        Ok(Self {
            client: client.clone(),
            device_id: registration.device.id,
            user_id: me.user.id,
            key,
            credential: BASE64.decode(registration.credential.as_bytes()).map_err(|_| ChatError::NotVouched)?,
            authority: registration.authority,
            groups: BTreeMap::new(),
            inbox_after: 0,
        })
    }

    /// Everything this device holds (its private key, each group's MLS
    /// state), for the device alone to keep and carry on from with
    /// [`Self::restore`]. Whoever reads it reads this device's conversations.
    pub fn export(&self) -> Vec<u8> {
        let groups = self
            .groups
            .iter()
            .map(|(id, g)| {
                let kept = KeptGroup {
                    mls: BASE64.encode(&g.member.export_state()),
                    agent: g.agent.clone(),
                    after: g.after,
                    sent: g.sent.clone(),
                    sent_files: g.sent_files.clone(),
                    held: g.held.clone(),
                    keys: g.keys.clone(),
                    removed: g.removed,
                };
                (id.clone(), kept)
            })
            .collect();
        let kept = KeptDevice {
            device_id: self.device_id.clone(),
            user_id: self.user_id.clone(),
            key: BASE64.encode(&self.key),
            credential: BASE64.encode(&self.credential),
            authority: self.authority.clone(),
            inbox_after: self.inbox_after,
            groups,
        };
        serde_json::to_vec_pretty(&kept).expect("a device serialises")
    }

    /// The device [`Self::export`] kept, talking through `client`.
    pub fn restore(client: &Client, kept: &[u8]) -> Result<Self, ChatError> {
        let kept: KeptDevice = serde_json::from_slice(kept).map_err(|_| ChatError::Mls(MlsError::Malformed))?;
        let bytes = |text: &str| BASE64.decode(text.as_bytes()).map_err(|_| ChatError::Mls(MlsError::Malformed));
        let mut groups = BTreeMap::new();
        for (id, g) in kept.groups {
            let member = OpenMlsMember::import_state(&bytes(&g.mls)?)?;
            let group = Group {
                member,
                agent: g.agent,
                after: g.after,
                sent: g.sent,
                sent_files: g.sent_files,
                held: g.held,
                removed: g.removed,
                refused: false,
                keys: g.keys,
                share_keys_after: None,
                read_earlier: false,
            };
            groups.insert(id, group);
        }
        Ok(Self {
            client: client.clone(),
            device_id: kept.device_id,
            user_id: kept.user_id,
            key: bytes(&kept.key)?,
            credential: bytes(&kept.credential)?,
            authority: kept.authority,
            groups,
            inbox_after: kept.inbox_after,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The messages of a conversation this device has read, in order.
    pub fn history(&self, conversation_id: &str) -> &[HeldMessage] {
        self.groups.get(conversation_id).map_or(&[], |g| &g.held)
    }

    /// Whether this device is in `conversation_id`'s group.
    /// The messages this device holds that mention its account, in order.
    pub fn mentioning_me(&self, conversation_id: &str) -> Vec<&HeldMessage> {
        self.history(conversation_id).iter().filter(|m| m.mentions.contains(&self.user_id)).collect()
    }

    pub fn in_group(&self, conversation_id: &str) -> bool {
        self.groups.get(conversation_id).is_some_and(|g| g.member.epoch().is_some() && !g.removed)
    }

    /// The MLS epoch this device is at in the conversation.
    pub fn epoch(&self, conversation_id: &str) -> Option<u64> {
        self.groups.get(conversation_id).and_then(|g| g.member.epoch())
    }

    /// Opens a message of the conversation with the keys this device holds
    /// (`None` if they do not open it): what a device keeps after leaving
    /// opens nothing sent after.
    pub fn open_ciphertext(&mut self, conversation_id: &str, from_device: &str, content: &str) -> Option<String> {
        let group = self.groups.get_mut(conversation_id)?;
        let input = GroupInput::Application { from: from_device.to_owned(), message: decode(content) };
        let handled = group.agent.handle(&mut group.member, input);
        handled.events.into_iter().find_map(|e| match e {
            GroupEvent::Application { plaintext, .. } => shown(payload_of(&plaintext)?).map(|s| s.text),
            _ => None,
        })
    }

    /// Opens a message's history copy with the history keys this device
    /// holds (`None` if they do not open it).
    pub fn open_history_copy(&self, conversation_id: &str, client_id: &str, history: &str) -> Option<String> {
        let keys = &self.groups.get(conversation_id)?.keys;
        let payload = payload_of(&keys.open(history_context(conversation_id, client_id).as_bytes(), history)?)?;
        shown(payload).map(|s| s.text)
    }

    /// Asks to be in a conversation's group (the first device creates it);
    /// the answer comes with the next syncs.
    pub async fn open(&mut self, conversation_id: &str) -> Result<(), ChatError> {
        if self.groups.contains_key(conversation_id) {
            return Ok(());
        }
        let mut member = OpenMlsMember::restore(Some(&self.key))?;
        let mut agent = GroupAgent::new(KnownDevices::default());
        let output = agent
            .vouched(&mut member, &self.credential, &self.authority, self.device_id.clone())
            .ok_or(ChatError::NotVouched)?;
        let group = Group {
            member,
            agent,
            after: 0,
            sent: HashMap::new(),
            sent_files: HashMap::new(),
            held: Vec::new(),
            removed: false,
            refused: false,
            keys: HistoryKeys::default(),
            share_keys_after: None,
            read_earlier: false,
        };
        self.groups.insert(conversation_id.to_owned(), group);
        let asked = self.answer(conversation_id, vec![output]).await;
        if asked.is_err() {
            // Not asked (too many devices waiting, or the network): a later
            // `open` asks again rather than wait for an answer never due.
            self.groups.remove(conversation_id);
        }
        asked
    }

    /// Takes everything new: the inbox, then every conversation's log.
    pub async fn sync(&mut self) -> Result<Vec<ChatEvent>, ChatError> {
        let mut events = Vec::new();
        for _ in 0..ROUNDS {
            let before = events.len();
            let answered = self.take_inbox(&mut events).await? | self.read_logs(&mut events).await?;
            if !answered && events.len() == before {
                break;
            }
        }
        self.share_history().await?;
        self.read_earlier(&mut events).await?;
        Ok(events)
    }

    /// Gives the devices this device added the history keys it holds, in
    /// the epoch that has them.
    async fn share_history(&mut self) -> Result<(), ChatError> {
        let due: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| {
                !g.removed && g.share_keys_after.is_some_and(|e| g.member.epoch().is_some_and(|now| now > e))
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let keys = self.groups[&id].keys.all();
            self.send_payload(&id, &MessagePayload::HistoryKeys { keys }, None).await?;
            self.groups.get_mut(&id).expect("listed above").share_keys_after = None;
        }
        Ok(())
    }

    /// Reads, from their history copies, the messages from before this
    /// device joined, as far as its keys and the server allow.
    async fn read_earlier(&mut self, events: &mut Vec<ChatEvent>) -> Result<(), ChatError> {
        let due: Vec<String> = self.groups.iter().filter(|(_, g)| g.read_earlier).map(|(id, _)| id.clone()).collect();
        for id in due {
            let mut after = 0;
            loop {
                let page = self.client.read_conversation_earlier(&id, &self.device_id, after, PAGE).await?;
                let Some(last) = page.entries.last().map(|e| e.seq) else { break };
                after = last;
                let group = self.groups.get_mut(&id).expect("listed above");
                for entry in page.entries {
                    match entry.body {
                        EntryBody::Message { from, device, client_id, reference, history: Some(history), .. } => {
                            let context = history_context(&id, &client_id);
                            let Some(Shown { text, file, mentions }) = group
                                .keys
                                .open(context.as_bytes(), &history)
                                .and_then(|p| payload_of(&p))
                                .and_then(shown)
                            else {
                                continue;
                            };
                            if group.held.iter().any(|m| m.seq == entry.seq) {
                                continue;
                            }
                            events.push(group.keep(ChatEvent::Message {
                                conversation_id: id.clone(),
                                seq: entry.seq,
                                at_ms: entry.at_ms,
                                from_user: from,
                                from_device: device,
                                text,
                                file,
                                mentions,
                                reference,
                                earlier: true,
                            }));
                        }
                        EntryBody::Deleted { target, .. } => group.held.retain(|m| m.seq != target),
                        _ => {}
                    }
                }
            }
            self.groups.get_mut(&id).expect("listed above").read_earlier = false;
        }
        Ok(())
    }

    /// Starts a call from the conversation and shares its link there,
    /// encrypted like any message: the members enter without waiting.
    pub async fn start_call(&mut self, conversation_id: &str) -> Result<conclave_proto::Meeting, ChatError> {
        let meeting = self.client.start_call(conversation_id).await?;
        let text = format!("📞 {} — join: {}", meeting.title, meeting.invite_url);
        self.send_text(conversation_id, &text, None).await?;
        Ok(meeting)
    }

    /// Encrypts `text` for the conversation and sends it; durable when this
    /// returns. Catches up and tries again if the group moved on meanwhile.
    pub async fn send_text(
        &mut self,
        conversation_id: &str,
        text: &str,
        reference: Option<Reference>,
    ) -> Result<MessageAccepted, ChatError> {
        let mentions = conclave_proto::markup::mentions(text);
        let payload = MessagePayload::Text { text: text.to_owned(), mentions };
        self.send_payload(conversation_id, &payload, reference).await
    }

    /// Seals and uploads a file to the conversation, then shares it there
    /// in a message (with `thumbnail`, a small preview this device made,
    /// uploaded the same way, and a caption). `progress` hears the bytes
    /// uploaded and the total.
    pub async fn send_file(
        &mut self,
        conversation_id: &str,
        source: &std::path::Path,
        thumbnail: Option<&std::path::Path>,
        caption: Option<&str>,
        progress: impl FnMut(u64, u64),
    ) -> Result<(MessageAccepted, Attached), ChatError> {
        if !self.in_group(conversation_id) {
            return Err(ChatError::NotInGroup);
        }
        let name =
            |path: &std::path::Path| path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let uploaded = self.client.upload_file(conversation_id, &self.device_id, source, progress).await?;
        let file = uploaded.shared(&name(source), crate::files::mime_of(source));
        let thumbnail = match thumbnail {
            Some(path) => {
                let uploaded = self.client.upload_file(conversation_id, &self.device_id, path, |_, _| {}).await?;
                Some(uploaded.shared(&name(path), crate::files::mime_of(path)))
            }
            None => None,
        };
        let attached = Attached { file: file.clone(), thumbnail: thumbnail.clone() };
        let payload = MessagePayload::File { file, thumbnail, caption: caption.map(str::to_owned) };
        let accepted = self.send_payload(conversation_id, &payload, None).await?;
        Ok((accepted, attached))
    }

    /// Encrypts a payload for the group (and, for what people read, its
    /// history copy under the epoch's history key) and sends it.
    async fn send_payload(
        &mut self,
        conversation_id: &str,
        payload: &MessagePayload,
        reference: Option<Reference>,
    ) -> Result<MessageAccepted, ChatError> {
        let client_id = format!("{:032x}", rand::random::<u128>());
        let mut tries = 0;
        loop {
            tries += 1;
            // Either way the group is about to move on: a removal the server
            // asked for waits for its commit (read, or made by this device
            // as committer), or a commit came first (someone joined or left).
            // Catch up, then encrypt again.
            let behind = match self.seal(conversation_id, payload, reference, &client_id) {
                Err(ChatError::Mls(MlsError::AwaitingCommit)) => Ok(()),
                sealed => match self.client.send_message(conversation_id, &sealed?).await {
                    Err(err) if err.code() == Some("stale-epoch") => Err(err),
                    sent => return Ok(sent?),
                },
            };
            if tries >= SEND_TRIES {
                return Err(match behind {
                    Ok(()) => ChatError::Mls(MlsError::AwaitingCommit),
                    Err(stale) => stale.into(),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(50 * tries as u64)).await;
            Box::pin(self.sync()).await?;
        }
    }

    /// Encrypts a text for the conversation's current epoch without sending
    /// it: the request [`Client::send_message`] takes. It goes stale when
    /// the group moves on (`409 stale-epoch`), so it is for sending soon —
    /// by an outbox flushed on reconnect, or a load generator that keeps
    /// encryption out of the time it measures.
    pub fn seal_text(&mut self, conversation_id: &str, text: &str) -> Result<SendMessageRequest, ChatError> {
        let mentions = conclave_proto::markup::mentions(text);
        let payload = MessagePayload::Text { text: text.to_owned(), mentions };
        let client_id = format!("{:032x}", rand::random::<u128>());
        self.seal(conversation_id, &payload, None, &client_id)
    }

    /// One message of `payload`, encrypted in the group's current epoch
    /// (with its history copy), kept as this device will show it.
    fn seal(
        &mut self,
        conversation_id: &str,
        payload: &MessagePayload,
        reference: Option<Reference>,
        client_id: &str,
    ) -> Result<SendMessageRequest, ChatError> {
        let plaintext = serde_json::to_vec(payload).expect("payloads serialise");
        let files = match payload {
            MessagePayload::File { file, thumbnail, .. } => {
                std::iter::once(file).chain(thumbnail).map(|f| f.file_id.clone()).collect()
            }
            _ => Vec::new(),
        };
        let group = self.groups.get_mut(conversation_id).ok_or(ChatError::NotInGroup)?;
        let Some(epoch) = group.member.epoch().filter(|_| !group.removed) else {
            return Err(ChatError::NotInGroup);
        };
        let ciphertext = group.member.encrypt(&plaintext)?;
        // Keys are given to devices added later; history keys are not history.
        let history = match payload {
            MessagePayload::Text { .. } | MessagePayload::File { .. } => {
                group.keys.remember(&group.member)?;
                group.keys.seal(epoch, history_context(conversation_id, client_id).as_bytes(), &plaintext)
            }
            MessagePayload::HistoryKeys { .. } => None,
        };
        // MLS does not let the sender open its own message: it keeps what it shows.
        if let Some(Shown { text, file, .. }) = shown(payload.clone()) {
            group.sent.insert(client_id.to_owned(), text);
            if let Some(file) = file {
                group.sent_files.insert(client_id.to_owned(), file);
            }
        }
        Ok(SendMessageRequest {
            device_id: self.device_id.clone(),
            client_id: client_id.to_owned(),
            epoch: Some(epoch),
            content: BASE64.encode(&ciphertext),
            reference,
            history,
            control: matches!(payload, MessagePayload::HistoryKeys { .. }),
            files,
        })
    }

    async fn take_inbox(&mut self, events: &mut Vec<ChatEvent>) -> Result<bool, ChatError> {
        let mut answered = false;
        loop {
            let page = self.client.read_device_inbox(&self.device_id, self.inbox_after).await?;
            let Some(last) = page.messages.last() else { return Ok(answered) };
            self.inbox_after = last.id;
            for message in page.messages {
                let id = message.conversation_id;
                if !self.groups.contains_key(&id) {
                    continue;
                }
                let input = match message.handshake {
                    Handshake::CreateGroup => GroupInput::CreateGroup,
                    Handshake::AddRequest { member, key_package, committer } => {
                        add_request(member, &key_package, committer)
                    }
                    Handshake::RemoveRequest { member, committer, proposal } => {
                        remove_request(member, committer, proposal)
                    }
                    Handshake::Welcome { welcome, committer, members, readable_from, .. } => {
                        let group = self.groups.get_mut(&id).expect("checked above");
                        group.after = readable_from.saturating_sub(1);
                        let members = members.into_iter().map(|d| (d.device_id.clone(), owner(d))).collect();
                        GroupInput::Welcome { welcome: decode(&welcome), committer, members }
                    }
                };
                answered |= self.handle(&id, input, events).await?.0;
            }
        }
    }

    async fn read_logs(&mut self, events: &mut Vec<ChatEvent>) -> Result<bool, ChatError> {
        let mut answered = false;
        let ids: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.member.epoch().is_some() && !g.removed)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            loop {
                let after = self.groups[&id].after;
                let page = match self.client.read_conversation(&id, &self.device_id, after, PAGE, 0).await {
                    Ok(page) => page,
                    // Out of the conversation (removed, or the account
                    // deactivated): it reads nothing more.
                    Err(err) if err.status() == Some(404) => {
                        self.groups.get_mut(&id).expect("listed above").removed = true;
                        events.push(ChatEvent::Removed { conversation_id: id.clone() });
                        break;
                    }
                    Err(err) => return Err(err.into()),
                };
                let Some(last) = page.entries.last().map(|e| e.seq) else { break };
                for entry in page.entries {
                    let (seq, at_ms) = (entry.seq, entry.at_ms);
                    let input = match entry.body {
                        EntryBody::Commit { from, epoch, commit } => {
                            Some(GroupInput::Commit { from, epoch, commit: decode(&commit) })
                        }
                        EntryBody::AddRequest { member, key_package, committer } => {
                            Some(add_request(member, &key_package, committer))
                        }
                        EntryBody::RemoveRequest { member, committer, proposal } => {
                            Some(remove_request(member, committer, proposal))
                        }
                        EntryBody::Message { from, device, client_id, content, reference, .. } => {
                            let payload = if device == self.device_id {
                                let group = &self.groups[&id];
                                match group.sent.get(&client_id) {
                                    Some(text) => Some(match group.sent_files.get(&client_id).cloned() {
                                        Some(Attached { file, thumbnail }) => {
                                            MessagePayload::File { file, thumbnail, caption: Some(text.clone()) }
                                        }
                                        None => MessagePayload::Text {
                                            text: text.clone(),
                                            mentions: conclave_proto::markup::mentions(text),
                                        },
                                    }),
                                    // Its own history keys, given to a device it added.
                                    None => {
                                        self.groups.get_mut(&id).expect("listed above").after = seq;
                                        continue;
                                    }
                                }
                            } else {
                                let input = GroupInput::Application { from: device.clone(), message: decode(&content) };
                                let (sent, opened) = self.handle(&id, input, events).await?;
                                answered |= sent;
                                opened.into_iter().find_map(|e| match e {
                                    GroupEvent::Application { plaintext, .. } => payload_of(&plaintext),
                                    _ => None,
                                })
                            };
                            match payload {
                                Some(MessagePayload::HistoryKeys { keys }) => {
                                    let group = self.groups.get_mut(&id).expect("listed above");
                                    group.keys.merge(keys);
                                    group.read_earlier = true;
                                }
                                Some(payload) => {
                                    let Shown { text, file, mentions } =
                                        shown(payload).expect("only history keys show nothing");
                                    let group = self.groups.get_mut(&id).expect("listed above");
                                    events.push(group.keep(ChatEvent::Message {
                                        conversation_id: id.clone(),
                                        seq,
                                        at_ms,
                                        from_user: from,
                                        from_device: device,
                                        text,
                                        file,
                                        mentions,
                                        reference,
                                        earlier: false,
                                    }));
                                }
                                None => events.push(ChatEvent::Undecryptable { conversation_id: id.clone(), seq }),
                            }
                            None
                        }
                        EntryBody::Deleted { target, .. } => {
                            // Gone for everyone: from this device too, with its edits and reactions.
                            let held = &mut self.groups.get_mut(&id).expect("listed above").held;
                            let goes = |m: &HeldMessage| {
                                m.seq == target
                                    || matches!(m.reference, Some(Reference::Edit(t) | Reference::Reaction(t)) if t == target)
                            };
                            held.retain(|m| !goes(m));
                            events.push(ChatEvent::Deleted { conversation_id: id.clone(), target });
                            None
                        }
                        EntryBody::Membership { account, change } => {
                            events.push(ChatEvent::Membership { conversation_id: id.clone(), account, change });
                            None
                        }
                        EntryBody::Call { meeting_id, by } => {
                            events.push(ChatEvent::Call { conversation_id: id.clone(), meeting_id, by });
                            None
                        }
                        EntryBody::Erased | EntryBody::Setting { .. } => None,
                    };
                    if let Some(input) = input {
                        answered |= self.handle(&id, input, events).await?.0;
                    }
                    self.groups.get_mut(&id).expect("listed above").after = seq;
                }
                if last >= page.last_seq {
                    break;
                }
            }
            // Caught up: a refused commit is built again on this epoch.
            let group = self.groups.get_mut(&id).expect("listed above");
            if std::mem::take(&mut group.refused) {
                let epoch = group.member.epoch().unwrap_or_default();
                let handled = group.agent.handle(&mut group.member, GroupInput::Rejected { epoch });
                answered |= !handled.send.is_empty();
                self.answer(&id, handled.send).await?;
            }
        }
        Ok(answered)
    }

    /// Hands one input to the conversation's agent and sends what it
    /// answers: whether it sent anything, and what the agent saw.
    async fn handle(
        &mut self,
        id: &str,
        input: GroupInput<String>,
        events: &mut Vec<ChatEvent>,
    ) -> Result<(bool, Vec<GroupEvent<String>>), ChatError> {
        let group = self.groups.get_mut(id).expect("a group of this device");
        let handled = group.agent.handle(&mut group.member, input);
        if group.member.epoch().is_some() {
            // Every epoch this device is in: its history key, to give to devices added later.
            let _ = group.keys.remember(&group.member);
        }
        if handled.events.contains(&GroupEvent::Removed) {
            group.removed = true;
            events.push(ChatEvent::Removed { conversation_id: id.to_owned() });
        }
        for event in &handled.events {
            if let GroupEvent::DeviceRemoved { member, by_server } = event {
                let conversation_id = id.to_owned();
                events.push(ChatEvent::DeviceRemoved {
                    conversation_id,
                    device: member.clone(),
                    by_server: *by_server,
                });
            }
        }
        let answered = !handled.send.is_empty();
        self.answer(id, handled.send).await?;
        Ok((answered, handled.events))
    }

    async fn answer(&mut self, id: &str, outputs: Vec<GroupOutput<String>>) -> Result<(), ChatError> {
        for output in outputs {
            match output {
                GroupOutput::KeyPackage(key_package) => {
                    let req = KeyPackageRequest {
                        device_id: self.device_id.clone(),
                        key_package: BASE64.encode(&key_package),
                    };
                    self.client.upload_key_package(id, &req).await?;
                }
                GroupOutput::Commit { epoch, commit, welcome, added, removed } => {
                    let req = CommitRequest {
                        device_id: self.device_id.clone(),
                        epoch,
                        commit: BASE64.encode(&commit),
                        welcome: welcome.map(|w| BASE64.encode(&w)),
                        added,
                        removed,
                    };
                    let adds = !req.added.is_empty();
                    let sent = self.client.send_commit(id, &req).await;
                    if adds && sent.is_ok() {
                        // Once its commit is applied, this device gives the
                        // devices it added the history keys it holds.
                        self.groups.get_mut(id).expect("a group of this device").share_keys_after = Some(epoch);
                    }
                    if let Err(err) = sent {
                        if err.code() != Some("group-refused") {
                            return Err(err.into());
                        }
                        // Refused: the agent is told once this device has
                        // read the log up to now (see `read_logs`), so that
                        // a commit refused for being stale is built again
                        // on the epoch the group is at, not on this one.
                        self.groups.get_mut(id).expect("a group of this device").refused = true;
                    }
                }
                // Refusing a relayed commit changes nothing here; the
                // agent shows it, and this device stays where it was.
                GroupOutput::CommitRefused { .. } => {}
            }
        }
        Ok(())
    }
}

/// What a history copy is bound to: its conversation and its client id.
fn history_context(conversation_id: &str, client_id: &str) -> String {
    format!("{conversation_id}|{client_id}")
}

/// A message's plaintext: a payload, or (from a device before payloads)
/// bare text.
fn payload_of(plaintext: &[u8]) -> Option<MessagePayload> {
    serde_json::from_slice(plaintext).ok().or_else(|| {
        String::from_utf8(plaintext.to_vec()).ok().map(|text| MessagePayload::Text { text, mentions: Vec::new() })
    })
}

fn decode(text: &str) -> Vec<u8> {
    BASE64.decode(text.as_bytes()).unwrap_or_default()
}

fn owner(device: GroupDevice) -> DeviceOwner {
    DeviceOwner::Account { user_id: device.user_id, device_id: device.device_id }
}

fn add_request(member: GroupDevice, key_package: &str, committer: String) -> GroupInput<String> {
    GroupInput::AddRequest {
        member: member.device_id.clone(),
        owner: owner(member),
        key_package: decode(key_package),
        committer,
    }
}

fn remove_request(member: GroupDevice, committer: String, proposal: Option<String>) -> GroupInput<String> {
    // A proposal that is not even base64 is dropped: the committer then
    // removes the device by a proposal of its own.
    let proposal = proposal.and_then(|p| BASE64.decode(p.as_bytes()).ok());
    GroupInput::RemoveRequest { member: member.device_id.clone(), owner: owner(member), committer, proposal }
}
