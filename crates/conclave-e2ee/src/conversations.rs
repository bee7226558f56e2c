//! One device's end-to-end encrypted conversations, without IO: its MLS
//! group in each conversation (one [`OpenMlsMember`] per conversation, all
//! under the device's one signature key and the server's credential for
//! it), the handshake the server asks of it, and messages encrypted before
//! they leave and opened after they arrive.
//!
//! The device is a state machine driven like `quinn-proto`: the caller
//! starts an [`Operation`] (sync, open a conversation, send), then asks for
//! the next [`Call`] to make to the server, makes it and hands back its
//! [`Reply`], until there is none; [`ConversationDevice::finish`] gives what
//! the operation saw. Every decision (the order of the inbox and each log,
//! rounds of reading and answering, catching up and trying again when the
//! group moved on, sharing history keys) is made here, once, for the native
//! SDK (`conclave-client`) and for the browser's worker (`conclave-e2ee-wasm`),
//! whose drivers only carry calls to the server.
//!
//! The receive path follows the order the server guarantees: the device's
//! inbox first (a Welcome, what is still to be done in a group it was just
//! welcomed to), then each conversation's log from where the device last
//! read, where requests, commits and messages stand in one order. Whatever
//! the group agent answers (a commit it was asked to make, a KeyPackage)
//! goes back before the next page is read.

use std::collections::{BTreeMap, HashMap, VecDeque};

use conclave_proto::conversation::{
    CommitRequest, Entry, EntryBody, EntryPage, GroupDevice, Handshake, InboxPage, KeyPackageRequest, MessageAccepted,
    MessagePayload, Reference, SendMessageRequest, Seq,
};
use conclave_proto::credential::DeviceOwner;
pub use conclave_proto::held::{Attached, ChatEvent, HeldMessage};
use data_encoding::BASE64;
use serde::{Deserialize, Serialize};

use crate::credential::KnownDevices;
use crate::group::{GroupAgent, GroupEvent, GroupInput, GroupOutput};
use crate::history::HistoryKeys;
use crate::mls::{GroupMember, MlsError, OpenMlsMember};

/// Entries read per request while catching up.
pub const PAGE: u32 = 500;
/// Rounds of reading and answering in one sync: a commit this device makes
/// is read back (and applied) in the next round.
const ROUNDS: u8 = 4;
/// Tries at sending when the group moves on meanwhile.
const SEND_TRIES: u32 = 5;
/// The problem codes the device acts on.
const GROUP_REFUSED: &str = "group-refused";
const STALE_EPOCH: &str = "stale-epoch";

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("end-to-end encryption failed: {0:?}")]
    Mls(MlsError),
    #[error("the server's credential is not for this device's key")]
    NotVouched,
    #[error("this device is not in the conversation's group yet")]
    NotInGroup,
    #[error("the server refused a call ({0})")]
    Call(Failure),
    #[error("the device's kept state is not readable")]
    Unreadable,
}

impl From<MlsError> for DeviceError {
    fn from(err: MlsError) -> Self {
        Self::Mls(err)
    }
}

/// What the device is asked to do.
#[derive(Debug, Clone)]
// One at a time, and a send is most of them: boxing would cost more than it saves.
#[allow(clippy::large_enum_variant)]
pub enum Operation {
    /// Take everything new: the inbox, then every conversation's log; give
    /// devices this one added the history keys it holds; read what came
    /// before this device joined where it was given the keys.
    Sync,
    /// Ask to be in a conversation's group (the first device creates it);
    /// the answer comes with the next syncs.
    Open { conversation_id: String },
    /// Read a plain (unencrypted) conversation from now on: its log as it
    /// is, with every sync. The first page is read at once.
    Follow { conversation_id: String },
    /// Encrypt a payload for the conversation and send it, durable once
    /// accepted; catch up and try again if the group moved on meanwhile.
    /// `client_id` (1 to 64 characters, random) makes a retry harmless.
    Send { conversation_id: String, payload: MessagePayload, reference: Option<Reference>, client_id: String },
}

/// A call to the server the device needs made, in the API's terms.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// `GET /me/devices/{device}/inbox?after=` → [`Reply::Inbox`].
    ReadInbox { after: i64 },
    /// `GET /conversations/{id}/entries?device=&after=&limit=` → [`Reply::Entries`].
    ReadLog { conversation_id: String, after: Seq, limit: u32 },
    /// The same with `earlier=1`: history copies from before this device.
    ReadEarlier { conversation_id: String, after: Seq, limit: u32 },
    /// `POST /conversations/{id}/key-packages` → [`Reply::Done`].
    UploadKeyPackage { conversation_id: String, request: KeyPackageRequest },
    /// `POST /conversations/{id}/commits` → [`Reply::Done`].
    SendCommit { conversation_id: String, request: CommitRequest },
    /// `POST /conversations/{id}/messages` → [`Reply::Accepted`].
    SendMessage { conversation_id: String, request: SendMessageRequest },
    /// Wait this long, then [`Reply::Done`] (a pause before trying again).
    Wait { ms: u64 },
}

/// The server's answer to a [`Call`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Inbox(InboxPage),
    Entries(EntryPage),
    Accepted(MessageAccepted),
    Done,
    /// The call failed: the HTTP status and problem code when there was an
    /// answer, neither when there was none.
    Failed(Failure),
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Failure {
    pub status: Option<u16>,
    pub code: Option<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.status, &self.code) {
            (Some(status), Some(code)) => write!(f, "{status} {code}"),
            (Some(status), None) => write!(f, "{status}"),
            _ => f.write_str("no answer"),
        }
    }
}

impl Failure {
    fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// What an operation saw, and what its send was answered.
#[derive(Debug, Default)]
pub struct Finished {
    pub events: Vec<ChatEvent>,
    pub accepted: Option<MessageAccepted>,
}

/// A new device's signature key pair (private half included: it never
/// leaves the device) and its public half, to register with the account.
pub struct NewDeviceKey {
    pub key: Vec<u8>,
    pub signature_key: Vec<u8>,
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

impl Group {
    fn readable(&self) -> bool {
        self.member.epoch().is_some() && !self.removed
    }

    fn keep(&mut self, event: ChatEvent) -> ChatEvent {
        keep(&mut self.held, event)
    }

    fn forget(&mut self, target: Seq) {
        forget(&mut self.held, target);
    }
}

/// Keeps a message this device read in `held`, in order, and passes its
/// event on. A log's numbers are unique: a message read again (its entry
/// reached by two ways at once) replaces the one held, never doubles it.
fn keep(held: &mut Vec<HeldMessage>, event: ChatEvent) -> ChatEvent {
    if let ChatEvent::Message { seq, at_ms, from_user, text, file, mentions, reference, .. } = &event {
        let message = HeldMessage {
            seq: *seq,
            at_ms: *at_ms,
            from_user: from_user.clone(),
            text: text.clone(),
            file: file.clone(),
            mentions: mentions.clone(),
            reference: *reference,
        };
        let at = held.partition_point(|m| m.seq < *seq);
        match held.get_mut(at) {
            Some(same) if same.seq == *seq => *same = message,
            _ => held.insert(at, message),
        }
    }
    event
}

/// A message gone for everyone: from this device too, with its edits and reactions.
fn forget(held: &mut Vec<HeldMessage>, target: Seq) {
    let goes = |m: &HeldMessage| {
        m.seq == target || matches!(m.reference, Some(Reference::Edit(t) | Reference::Reaction(t)) if t == target)
    };
    held.retain(|m| !goes(m));
}

/// A conversation the organisation keeps unencrypted (a huge announcement
/// channel, where its policy allows): no group and no keys, so nothing of
/// MLS; this device reads the log as it is and keeps what it read, as it
/// does for an encrypted one.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PlainLog {
    /// The last entry of the log this device read.
    after: Seq,
    held: Vec<HeldMessage>,
    removed: bool,
}

#[derive(Serialize, Deserialize)]
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

#[derive(Serialize, Deserialize)]
struct KeptDevice {
    device_id: String,
    user_id: String,
    key: String,
    credential: String,
    authority: String,
    inbox_after: i64,
    groups: BTreeMap<String, KeptGroup>,
    #[serde(default)]
    plain: BTreeMap<String, PlainLog>,
}

/// Work waiting in the current operation, done front first.
#[derive(Debug)]
enum Task {
    /// Read the inbox and every log once; `RoundEnd` decides on another.
    Round(u8),
    RoundEnd(u8),
    ReadInbox,
    ReadLogs,
    ReadLog(String),
    ReadPlain(String),
    /// A conversation's log is read to its end.
    CaughtUp(String),
    Answer {
        conversation_id: String,
        output: GroupOutput<String>,
        opening: bool,
    },
    ShareHistory,
    SharedHistory(String),
    ReadAllEarlier,
    ReadEarlier(String, Seq),
    EarlierDone(String),
    Send(Box<Sending>),
    Wait(u64),
}

/// A message on its way, through every try.
#[derive(Debug)]
struct Sending {
    conversation_id: String,
    payload: MessagePayload,
    reference: Option<Reference>,
    client_id: String,
    tries: u32,
    /// The operation's own send (not history keys given on the way).
    asked: bool,
}

/// What to do with the reply to the call in flight.
#[derive(Debug)]
enum Pending {
    Inbox,
    Log(String),
    Plain(String),
    Earlier(String),
    KeyPackage { conversation_id: String, opening: bool },
    Commit { conversation_id: String, epoch: u64, adds: bool, opening: bool },
    Message(Box<Sending>),
    Wait,
}

/// A device of an account, holding its conversations' keys.
pub struct ConversationDevice {
    pub device_id: String,
    pub user_id: String,
    /// The device's signature key pair, private half included: it never leaves.
    key: Vec<u8>,
    credential: Vec<u8>,
    authority: String,
    groups: BTreeMap<String, Group>,
    /// The plain conversations it reads.
    plain: BTreeMap<String, PlainLog>,
    inbox_after: i64,
    // The operation under way.
    queue: VecDeque<Task>,
    pending: Option<Pending>,
    events: Vec<ChatEvent>,
    accepted: Option<MessageAccepted>,
    failed: Option<DeviceError>,
    /// The agent's answers to what the task or reply at hand brought.
    answers: Vec<Task>,
    /// The events there were, and whether the device answered anything,
    /// since the current round began.
    round_from: usize,
    round_answered: bool,
}

impl ConversationDevice {
    /// A fresh signature key pair for a new device.
    pub fn new_key() -> Result<NewDeviceKey, DeviceError> {
        let member = OpenMlsMember::new(b"")?;
        Ok(NewDeviceKey { key: member.export_signature_key(), signature_key: member.signature_key() })
    }

    /// The device registered as `device_id` of account `user_id`, with the
    /// key pair of [`Self::new_key`] and the server's `credential` for it.
    pub fn new(device_id: String, user_id: String, key: Vec<u8>, credential: Vec<u8>, authority: String) -> Self {
        Self {
            device_id,
            user_id,
            key,
            credential,
            authority,
            groups: BTreeMap::new(),
            plain: BTreeMap::new(),
            inbox_after: 0,
            queue: VecDeque::new(),
            pending: None,
            events: Vec::new(),
            accepted: None,
            failed: None,
            answers: Vec::new(),
            round_from: 0,
            round_answered: false,
        }
    }

    /// Everything this device holds (its private key, each group's MLS
    /// state, what it has read), for the device alone to keep and carry on
    /// from with [`Self::restore`]. Whoever reads it reads this device's
    /// conversations.
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
        let plain = self
            .plain
            .iter()
            .map(|(id, log)| (id.clone(), PlainLog { after: log.after, held: log.held.clone(), removed: log.removed }))
            .collect();
        let kept = KeptDevice {
            device_id: self.device_id.clone(),
            user_id: self.user_id.clone(),
            key: BASE64.encode(&self.key),
            credential: BASE64.encode(&self.credential),
            authority: self.authority.clone(),
            inbox_after: self.inbox_after,
            groups,
            plain,
        };
        serde_json::to_vec_pretty(&kept).expect("a device serialises")
    }

    /// The device [`Self::export`] kept.
    pub fn restore(kept: &[u8]) -> Result<Self, DeviceError> {
        let kept: KeptDevice = serde_json::from_slice(kept).map_err(|_| DeviceError::Unreadable)?;
        let bytes = |text: &str| BASE64.decode(text.as_bytes()).map_err(|_| DeviceError::Unreadable);
        let mut device =
            Self::new(kept.device_id, kept.user_id, bytes(&kept.key)?, bytes(&kept.credential)?, kept.authority);
        device.inbox_after = kept.inbox_after;
        device.plain = kept.plain;
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
            device.groups.insert(id, group);
        }
        Ok(device)
    }

    /// The messages of a conversation this device has read, in order.
    pub fn history(&self, conversation_id: &str) -> &[HeldMessage] {
        match (self.groups.get(conversation_id), self.plain.get(conversation_id)) {
            (Some(group), _) => &group.held,
            (None, Some(log)) => &log.held,
            (None, None) => &[],
        }
    }

    /// The messages this device holds that match `query`, newest first,
    /// found without asking anyone (see `search.rs`).
    pub fn search(&self, query: &str) -> Vec<crate::search::Found> {
        let groups = self.groups.iter().map(|(id, g)| (id.as_str(), g.held.as_slice()));
        let plain = self.plain.iter().map(|(id, log)| (id.as_str(), log.held.as_slice()));
        crate::search::search(groups.chain(plain), query)
    }

    /// The messages this device holds that mention its account, in order.
    pub fn mentioning_me(&self, conversation_id: &str) -> Vec<&HeldMessage> {
        self.history(conversation_id).iter().filter(|m| m.mentions.contains(&self.user_id)).collect()
    }

    /// Whether this device is in `conversation_id`'s group (or reads it,
    /// plain): whether it can send there.
    pub fn in_group(&self, conversation_id: &str) -> bool {
        self.groups.get(conversation_id).is_some_and(Group::readable)
            || self.plain.get(conversation_id).is_some_and(|log| !log.removed)
    }

    /// Whether this device asked to be in `conversation_id`'s group (it may
    /// not be in it yet), or follows it, plain.
    pub fn asked(&self, conversation_id: &str) -> bool {
        self.groups.contains_key(conversation_id) || self.plain.contains_key(conversation_id)
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

    /// Encrypts a text for the conversation's current epoch without sending
    /// it: a `SendMessageRequest` that goes stale when the group moves on
    /// (`409 stale-epoch`), so it is for sending soon — by an outbox flushed
    /// on reconnect, or a load generator that keeps encryption out of the
    /// time it measures.
    pub fn seal_text(
        &mut self,
        conversation_id: &str,
        text: &str,
        client_id: &str,
    ) -> Result<SendMessageRequest, DeviceError> {
        self.seal(conversation_id, &text_payload(text), None, client_id)
    }

    /// One message of `payload`, encrypted in the group's current epoch
    /// (with its history copy), kept as this device will show it.
    fn seal(
        &mut self,
        conversation_id: &str,
        payload: &MessagePayload,
        reference: Option<Reference>,
        client_id: &str,
    ) -> Result<SendMessageRequest, DeviceError> {
        let plaintext = serde_json::to_vec(payload).expect("payloads serialise");
        let files = match payload {
            MessagePayload::File { file, thumbnail, .. } => {
                std::iter::once(file).chain(thumbnail).map(|f| f.file_id.clone()).collect()
            }
            _ => Vec::new(),
        };
        if let Some(log) = self.plain.get(conversation_id) {
            // Plain: the payload itself, as every member's device (and the
            // server) reads it. History keys have no place here.
            if log.removed || matches!(payload, MessagePayload::HistoryKeys { .. }) {
                return Err(DeviceError::NotInGroup);
            }
            return Ok(SendMessageRequest {
                device_id: self.device_id.clone(),
                client_id: client_id.to_owned(),
                epoch: None,
                content: BASE64.encode(&plaintext),
                reference,
                history: None,
                control: false,
                files,
            });
        }
        let group = self.groups.get_mut(conversation_id).ok_or(DeviceError::NotInGroup)?;
        let Some(epoch) = group.member.epoch().filter(|_| !group.removed) else {
            return Err(DeviceError::NotInGroup);
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

    // The operation protocol.

    /// Starts an operation. The one before must be finished.
    pub fn start(&mut self, operation: Operation) {
        assert!(self.queue.is_empty() && self.pending.is_none(), "finish the operation under way first");
        self.events.clear();
        self.accepted = None;
        self.failed = None;
        match operation {
            Operation::Sync => self.queue.push_back(Task::Round(0)),
            Operation::Open { conversation_id } => self.open(conversation_id),
            Operation::Follow { conversation_id } => {
                self.plain.entry(conversation_id.clone()).or_default();
                self.queue.push_back(Task::ReadPlain(conversation_id));
            }
            Operation::Send { conversation_id, payload, reference, client_id } => {
                let sending = Sending { conversation_id, payload, reference, client_id, tries: 1, asked: true };
                self.queue.push_back(Task::Send(Box::new(sending)))
            }
        }
    }

    /// The next call to make for the operation under way; `None` when it
    /// is over (see [`Self::finish`]).
    pub fn poll_call(&mut self) -> Option<Call> {
        assert!(self.pending.is_none(), "hand back the reply to the call in flight first");
        while self.failed.is_none() {
            let task = self.queue.pop_front()?;
            let stepped = self.step(task);
            self.flush_answers();
            if let Some((call, pending)) = stepped {
                self.pending = Some(pending);
                return Some(call);
            }
        }
        self.queue.clear();
        None
    }

    /// The reply to the last call [`Self::poll_call`] gave.
    pub fn handle_reply(&mut self, reply: Reply) {
        let pending = self.pending.take().expect("a call in flight");
        self.replied(pending, reply);
        self.flush_answers();
    }

    /// What the operation saw, once [`Self::poll_call`] has nothing more.
    pub fn finish(&mut self) -> Result<Finished, DeviceError> {
        assert!(self.pending.is_none(), "a call is still in flight");
        self.queue.clear();
        let events = std::mem::take(&mut self.events);
        match self.failed.take() {
            Some(err) => Err(err),
            None => Ok(Finished { events, accepted: self.accepted.take() }),
        }
    }

    /// The answers held go first: a page's answers before the next page.
    fn flush_answers(&mut self) {
        let answers = std::mem::take(&mut self.answers);
        self.next(answers);
    }

    fn fail(&mut self, err: DeviceError) {
        self.failed = Some(err);
    }

    /// Puts tasks at the front of the queue, in their order.
    fn next(&mut self, tasks: impl IntoIterator<Item = Task>) {
        let tasks: Vec<Task> = tasks.into_iter().collect();
        for task in tasks.into_iter().rev() {
            self.queue.push_front(task);
        }
    }

    fn open(&mut self, conversation_id: String) {
        if self.groups.contains_key(&conversation_id) {
            return;
        }
        let mut member = match OpenMlsMember::restore(Some(&self.key)) {
            Ok(member) => member,
            Err(err) => return self.fail(err.into()),
        };
        let mut agent = GroupAgent::new(KnownDevices::default());
        let Some(output) = agent.vouched(&mut member, &self.credential, &self.authority, self.device_id.clone()) else {
            return self.fail(DeviceError::NotVouched);
        };
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
        self.groups.insert(conversation_id.clone(), group);
        self.queue.push_back(Task::Answer { conversation_id, output, opening: true });
    }

    /// Does one task: the call it needs, if any, and what to do with its reply.
    fn step(&mut self, task: Task) -> Option<(Call, Pending)> {
        match task {
            Task::Round(n) => {
                self.round_from = self.events.len();
                self.round_answered = false;
                self.next([Task::ReadInbox, Task::ReadLogs, Task::RoundEnd(n)]);
                None
            }
            Task::RoundEnd(n) => {
                let busy = self.round_answered || self.events.len() > self.round_from;
                if busy && n + 1 < ROUNDS {
                    self.next([Task::Round(n + 1)]);
                } else {
                    self.next([Task::ShareHistory, Task::ReadAllEarlier]);
                }
                None
            }
            Task::ReadInbox => Some((Call::ReadInbox { after: self.inbox_after }, Pending::Inbox)),
            Task::ReadLogs => {
                let groups = self.groups.iter().filter(|(_, g)| g.readable()).map(|(id, _)| Task::ReadLog(id.clone()));
                let plain =
                    self.plain.iter().filter(|(_, log)| !log.removed).map(|(id, _)| Task::ReadPlain(id.clone()));
                let ids: Vec<Task> = groups.chain(plain).collect();
                self.next(ids);
                None
            }
            Task::ReadLog(id) => {
                let after = self.groups[&id].after;
                Some((Call::ReadLog { conversation_id: id.clone(), after, limit: PAGE }, Pending::Log(id)))
            }
            Task::ReadPlain(id) => {
                let after = self.plain[&id].after;
                Some((Call::ReadLog { conversation_id: id.clone(), after, limit: PAGE }, Pending::Plain(id)))
            }
            Task::CaughtUp(id) => {
                // Caught up: a refused commit is built again on this epoch.
                let group = self.groups.get_mut(&id).expect("a group of this device");
                if std::mem::take(&mut group.refused) {
                    let epoch = group.member.epoch().unwrap_or_default();
                    let handled = group.agent.handle(&mut group.member, GroupInput::Rejected { epoch });
                    self.answer(&id, handled.send);
                }
                None
            }
            Task::Answer { conversation_id, output, opening } => match output {
                GroupOutput::KeyPackage(key_package) => {
                    let request = KeyPackageRequest {
                        device_id: self.device_id.clone(),
                        key_package: BASE64.encode(&key_package),
                    };
                    let call = Call::UploadKeyPackage { conversation_id: conversation_id.clone(), request };
                    Some((call, Pending::KeyPackage { conversation_id, opening }))
                }
                GroupOutput::Commit { epoch, commit, welcome, added, removed } => {
                    let adds = !added.is_empty();
                    let request = CommitRequest {
                        device_id: self.device_id.clone(),
                        epoch,
                        commit: BASE64.encode(&commit),
                        welcome: welcome.map(|w| BASE64.encode(&w)),
                        added,
                        removed,
                    };
                    let call = Call::SendCommit { conversation_id: conversation_id.clone(), request };
                    Some((call, Pending::Commit { conversation_id, epoch, adds, opening }))
                }
                // Refusing a relayed commit changes nothing here; the
                // agent shows it, and this device stays where it was.
                GroupOutput::CommitRefused { .. } => None,
            },
            Task::ShareHistory => {
                // Gives the devices this device added the history keys it
                // holds, in the epoch that has them.
                let due: Vec<(String, u64)> = self
                    .groups
                    .iter()
                    .filter_map(|(id, g)| {
                        let now = g.member.epoch()?;
                        let due = !g.removed && g.share_keys_after.is_some_and(|e| now > e);
                        due.then(|| (id.clone(), now))
                    })
                    .collect();
                let mut tasks = Vec::new();
                for (id, epoch) in due {
                    let keys = self.groups[&id].keys.all();
                    tasks.push(Task::Send(Box::new(Sending {
                        client_id: format!("keys-{epoch}-{}", self.device_id),
                        conversation_id: id.clone(),
                        payload: MessagePayload::HistoryKeys { keys },
                        reference: None,
                        tries: 1,
                        asked: false,
                    })));
                    tasks.push(Task::SharedHistory(id));
                }
                self.next(tasks);
                None
            }
            Task::SharedHistory(id) => {
                self.groups.get_mut(&id).expect("a group of this device").share_keys_after = None;
                None
            }
            Task::ReadAllEarlier => {
                let due: Vec<String> =
                    self.groups.iter().filter(|(_, g)| g.read_earlier).map(|(id, _)| id.clone()).collect();
                self.next(due.into_iter().flat_map(|id| [Task::ReadEarlier(id.clone(), 0), Task::EarlierDone(id)]));
                None
            }
            Task::ReadEarlier(id, after) => {
                Some((Call::ReadEarlier { conversation_id: id.clone(), after, limit: PAGE }, Pending::Earlier(id)))
            }
            Task::EarlierDone(id) => {
                self.groups.get_mut(&id).expect("a group of this device").read_earlier = false;
                None
            }
            Task::Send(sending) => {
                match self.seal(&sending.conversation_id, &sending.payload, sending.reference, &sending.client_id) {
                    Ok(request) => {
                        let call = Call::SendMessage { conversation_id: sending.conversation_id.clone(), request };
                        Some((call, Pending::Message(sending)))
                    }
                    // Either way the group is about to move on: a removal the
                    // server asked for waits for its commit (read, or made by
                    // this device as committer). Catch up, then encrypt again.
                    Err(DeviceError::Mls(MlsError::AwaitingCommit)) => {
                        self.behind(sending, DeviceError::Mls(MlsError::AwaitingCommit));
                        None
                    }
                    Err(err) => {
                        self.fail(err);
                        None
                    }
                }
            }
            Task::Wait(ms) => Some((Call::Wait { ms }, Pending::Wait)),
        }
    }

    /// The group moved on under a send: catch up and try again, a few times.
    fn behind(&mut self, sending: Box<Sending>, otherwise: DeviceError) {
        let tries = sending.tries;
        if tries >= SEND_TRIES {
            return self.fail(otherwise);
        }
        let again = Task::Send(Box::new(Sending { tries: tries + 1, ..*sending }));
        self.next([Task::Wait(50 * u64::from(tries)), Task::Round(0), again]);
    }

    fn replied(&mut self, pending: Pending, reply: Reply) {
        match (pending, reply) {
            (Pending::Inbox, Reply::Inbox(page)) => self.take_inbox(page),
            (Pending::Log(id), Reply::Entries(page)) => self.take_log(id, page),
            // Out of the conversation (removed, or the account deactivated):
            // it reads nothing more.
            (Pending::Log(id), Reply::Failed(failure)) if failure.status == Some(404) => {
                self.groups.get_mut(&id).expect("a group of this device").removed = true;
                self.events.push(ChatEvent::Removed { conversation_id: id.clone() });
                self.next([Task::CaughtUp(id)]);
            }
            (Pending::Plain(id), Reply::Entries(page)) => self.take_plain(id, page),
            (Pending::Plain(id), Reply::Failed(failure)) if failure.status == Some(404) => {
                self.plain.get_mut(&id).expect("a plain conversation of this device").removed = true;
                self.events.push(ChatEvent::Removed { conversation_id: id });
            }
            (Pending::Earlier(id), Reply::Entries(page)) => self.take_earlier(id, page),
            (Pending::KeyPackage { .. }, Reply::Done) | (Pending::Wait, _) => {}
            (Pending::Commit { conversation_id, epoch, adds, .. }, Reply::Done) => {
                if adds {
                    // Once its commit is applied, this device gives the
                    // devices it added the history keys it holds.
                    self.groups.get_mut(&conversation_id).expect("a group of this device").share_keys_after =
                        Some(epoch);
                }
            }
            // Refused: the agent is told once this device has read the log
            // up to now (`CaughtUp`), so that a commit refused for being
            // stale is built again on the epoch the group is at, not on this one.
            (Pending::Commit { conversation_id, .. }, Reply::Failed(failure)) if failure.is(GROUP_REFUSED) => {
                self.groups.get_mut(&conversation_id).expect("a group of this device").refused = true;
            }
            (Pending::Message(sending), Reply::Accepted(accepted)) => {
                if sending.asked {
                    self.accepted = Some(accepted);
                }
            }
            (Pending::Message(sending), Reply::Failed(failure)) if failure.is(STALE_EPOCH) => {
                self.behind(sending, DeviceError::Call(failure));
            }
            (pending, Reply::Failed(failure)) => {
                // Not asked (too many devices waiting, or the network): a
                // later `Open` asks again rather than wait for an answer never due.
                if let Pending::KeyPackage { conversation_id, opening: true }
                | Pending::Commit { conversation_id, opening: true, .. } = &pending
                {
                    self.groups.remove(conversation_id);
                }
                self.fail(DeviceError::Call(failure));
            }
            (pending, reply) => panic!("the reply {reply:?} does not answer {pending:?}"),
        }
    }

    fn take_inbox(&mut self, page: InboxPage) {
        let Some(last) = page.messages.last() else { return };
        self.inbox_after = last.id;
        for message in page.messages {
            let id = message.conversation_id;
            let Some(group) = self.groups.get_mut(&id) else { continue };
            let input = match message.handshake {
                Handshake::CreateGroup => GroupInput::CreateGroup,
                Handshake::AddRequest { member, key_package, committer } => {
                    add_request(member, &key_package, committer)
                }
                Handshake::RemoveRequest { member, committer, proposal } => remove_request(member, committer, proposal),
                Handshake::Welcome { welcome, committer, members, readable_from, .. } => {
                    group.after = readable_from.saturating_sub(1);
                    let members = members.into_iter().map(|d| (d.device_id.clone(), owner(d))).collect();
                    GroupInput::Welcome { welcome: decode(&welcome), committer, members }
                }
            };
            self.handle(&id, input);
        }
        self.next([Task::ReadInbox]);
    }

    fn take_log(&mut self, id: String, page: EntryPage) {
        let Some(last) = page.entries.last().map(|e| e.seq) else {
            return self.next([Task::CaughtUp(id)]);
        };
        for entry in page.entries {
            self.take_entry(&id, entry);
        }
        self.next([if last >= page.last_seq { Task::CaughtUp(id) } else { Task::ReadLog(id) }]);
    }

    fn take_entry(&mut self, id: &str, entry: Entry) {
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
                    let group = &self.groups[id];
                    match group.sent.get(&client_id) {
                        Some(text) => Some(match group.sent_files.get(&client_id).cloned() {
                            Some(Attached { file, thumbnail }) => {
                                MessagePayload::File { file, thumbnail, caption: Some(text.clone()) }
                            }
                            None => text_payload(text),
                        }),
                        // Its own history keys, given to a device it added.
                        None => {
                            self.groups.get_mut(id).expect("a group of this device").after = seq;
                            return;
                        }
                    }
                } else {
                    let input = GroupInput::Application { from: device.clone(), message: decode(&content) };
                    self.handle(id, input).into_iter().find_map(|e| match e {
                        GroupEvent::Application { plaintext, .. } => payload_of(&plaintext),
                        _ => None,
                    })
                };
                let group = self.groups.get_mut(id).expect("a group of this device");
                match payload {
                    Some(MessagePayload::HistoryKeys { keys }) => {
                        group.keys.merge(keys);
                        group.read_earlier = true;
                    }
                    Some(payload) => {
                        let shown = shown(payload).expect("only history keys show nothing");
                        let from = Sender { user: from, device, at_ms };
                        self.events.push(group.keep(message_event(id, seq, from, shown, reference, false)));
                    }
                    None => self.events.push(ChatEvent::Undecryptable { conversation_id: id.to_owned(), seq }),
                }
                None
            }
            EntryBody::Deleted { target, .. } => {
                self.groups.get_mut(id).expect("a group of this device").forget(target);
                self.events.push(ChatEvent::Deleted { conversation_id: id.to_owned(), target });
                None
            }
            EntryBody::Membership { account, change } => {
                self.events.push(ChatEvent::Membership { conversation_id: id.to_owned(), account, change });
                None
            }
            EntryBody::Call { meeting_id, by } => {
                self.events.push(ChatEvent::Call { conversation_id: id.to_owned(), meeting_id, by });
                None
            }
            EntryBody::Erased | EntryBody::Setting { .. } => None,
        };
        if let Some(input) = input {
            self.handle(id, input);
        }
        self.groups.get_mut(id).expect("a group of this device").after = seq;
    }

    /// A page of a plain conversation's log: messages as they are (a
    /// payload, base64), deletions, memberships and calls, as for an
    /// encrypted one; the rest (commits, requests) has no place in it.
    fn take_plain(&mut self, id: String, page: EntryPage) {
        let Some(last) = page.entries.last().map(|e| e.seq) else { return };
        let log = self.plain.get_mut(&id).expect("a plain conversation of this device");
        for entry in page.entries {
            let (seq, at_ms) = (entry.seq, entry.at_ms);
            log.after = seq;
            match entry.body {
                EntryBody::Message { from, device, content, reference, control: false, .. } => {
                    match payload_of(&decode(&content)).and_then(shown) {
                        Some(shown) => {
                            let from = Sender { user: from, device, at_ms };
                            self.events
                                .push(keep(&mut log.held, message_event(&id, seq, from, shown, reference, false)));
                        }
                        None => self.events.push(ChatEvent::Undecryptable { conversation_id: id.clone(), seq }),
                    }
                }
                EntryBody::Deleted { target, .. } => {
                    forget(&mut log.held, target);
                    self.events.push(ChatEvent::Deleted { conversation_id: id.clone(), target });
                }
                EntryBody::Membership { account, change } => {
                    self.events.push(ChatEvent::Membership { conversation_id: id.clone(), account, change });
                }
                EntryBody::Call { meeting_id, by } => {
                    self.events.push(ChatEvent::Call { conversation_id: id.clone(), meeting_id, by });
                }
                _ => {}
            }
        }
        if last < page.last_seq {
            self.next([Task::ReadPlain(id)]);
        }
    }

    /// Reads, from their history copies, the messages from before this
    /// device joined, as far as its keys and the server allow.
    fn take_earlier(&mut self, id: String, page: EntryPage) {
        let Some(last) = page.entries.last().map(|e| e.seq) else { return };
        let group = self.groups.get_mut(&id).expect("a group of this device");
        for entry in page.entries {
            match entry.body {
                EntryBody::Message { from, device, client_id, reference, history: Some(history), .. } => {
                    let context = history_context(&id, &client_id);
                    let Some(shown) =
                        group.keys.open(context.as_bytes(), &history).and_then(|p| payload_of(&p)).and_then(shown)
                    else {
                        continue;
                    };
                    if group.held.iter().any(|m| m.seq == entry.seq) {
                        continue;
                    }
                    let from = Sender { user: from, device, at_ms: entry.at_ms };
                    self.events.push(group.keep(message_event(&id, entry.seq, from, shown, reference, true)));
                }
                EntryBody::Deleted { target, .. } => group.held.retain(|m| m.seq != target),
                _ => {}
            }
        }
        self.next([Task::ReadEarlier(id, last)]);
    }

    /// Hands one input to the conversation's agent and queues what it
    /// answers; returns what the agent saw.
    fn handle(&mut self, id: &str, input: GroupInput<String>) -> Vec<GroupEvent<String>> {
        let group = self.groups.get_mut(id).expect("a group of this device");
        let handled = group.agent.handle(&mut group.member, input);
        if group.member.epoch().is_some() {
            // Every epoch this device is in: its history key, to give to devices added later.
            let _ = group.keys.remember(&group.member);
        }
        if handled.events.contains(&GroupEvent::Removed) {
            group.removed = true;
            self.events.push(ChatEvent::Removed { conversation_id: id.to_owned() });
        }
        for event in &handled.events {
            match event {
                GroupEvent::DeviceRemoved { member, by_server } => self.events.push(ChatEvent::DeviceRemoved {
                    conversation_id: id.to_owned(),
                    device: member.clone(),
                    by_server: *by_server,
                }),
                GroupEvent::NewDevice { member, display_name, fingerprint } => self.events.push(ChatEvent::NewDevice {
                    conversation_id: id.to_owned(),
                    device: member.clone(),
                    display_name: display_name.clone(),
                    fingerprint: fingerprint.clone(),
                }),
                _ => {}
            }
        }
        self.answer(id, handled.send);
        handled.events
    }

    /// Holds the agent's answers until the task or reply at hand is done;
    /// then they go ahead of whatever it leads to (`flush_answers`).
    fn answer(&mut self, id: &str, outputs: Vec<GroupOutput<String>>) {
        if !outputs.is_empty() {
            self.round_answered = true;
        }
        for output in outputs {
            self.answers.push(Task::Answer { conversation_id: id.to_owned(), output, opening: false });
        }
    }
}

/// What a message shows: its text (a file's caption), its file, and whom
/// it mentions.
struct Shown {
    text: String,
    file: Option<Attached>,
    mentions: Vec<String>,
}

/// Who sent a message, and when the server took it.
struct Sender {
    user: String,
    device: String,
    at_ms: i64,
}

fn message_event(
    conversation_id: &str,
    seq: Seq,
    from: Sender,
    shown: Shown,
    reference: Option<Reference>,
    earlier: bool,
) -> ChatEvent {
    ChatEvent::Message {
        conversation_id: conversation_id.to_owned(),
        seq,
        at_ms: from.at_ms,
        from_user: from.user,
        from_device: from.device,
        text: shown.text,
        file: shown.file,
        mentions: shown.mentions,
        reference,
        earlier,
    }
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

/// A text message, with the accounts it mentions.
pub fn text_payload(text: &str) -> MessagePayload {
    MessagePayload::Text { text: text.to_owned(), mentions: conclave_proto::markup::mentions(text) }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(seq: Seq, text: &str) -> ChatEvent {
        ChatEvent::Message {
            conversation_id: "c".into(),
            seq,
            at_ms: 0,
            from_user: "ada".into(),
            from_device: "laptop".into(),
            text: text.into(),
            file: None,
            mentions: Vec::new(),
            reference: None,
            earlier: false,
        }
    }

    #[test]
    fn a_message_read_twice_is_held_once_in_order() {
        let mut held = Vec::new();
        for (seq, text) in [(3, "third"), (1, "first"), (3, "third"), (2, "second"), (1, "first")] {
            keep(&mut held, read(seq, text));
        }
        let seqs: Vec<Seq> = held.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
    }
}
