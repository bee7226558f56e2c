//! Team conversations on the server: the thin driver around
//! `conclave-conversation`. Every change loads the conversation's state,
//! lets it decide, and writes its state, log entries and inbox messages in
//! one transaction that holds only if nobody changed the conversation
//! meanwhile (else it reads again and decides again). Readers waiting for
//! new entries on this node are woken after the write.
//!
//! What the state machine needs from the world comes from the store before
//! it decides: an account's devices, the facts about a message that a new
//! one refers to.

mod commit;
pub mod live;
pub mod segments;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::devices::{AuthorityCell, DeviceAuthority};
use conclave_conversation::{
    Conversation, ConversationPolicy, Effect, Encryption, Entry, EntryBody, Input, Kind, Newcomer, OutgoingMessage,
    Reference, Refusal, Target,
};
use conclave_delivery::Delivery;
use conclave_proto::conversation::{GroupDevice, Handshake};
use conclave_store::{ConversationChange, ConversationRow, EntryRow, InboxMessage, NewConversation, Store, StoreError};
use tokio::sync::watch;

pub use views::{conversation_view, entry_from_row, role_text, summary_view};

/// Attempts at a change before giving up: each lost race means another
/// writer's change landed, so this many in a row means a storm.
const ATTEMPTS: usize = 16;
/// Conversations whose state this node keeps between changes.
const CACHED_CONVERSATIONS: usize = 4096;
/// New entries sent with the news on a live connection at most this big
/// (their stored JSON); beyond, devices read them through the API.
const LIVE_ENTRIES_BYTES: usize = 256 * 1024;
/// Messages written in one transaction at most (see [`Conversations::send`]).
const BATCH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    /// No such conversation, or one the caller may not know of.
    #[error("no such conversation")]
    NotFound,
    #[error("{}", .0.reason())]
    Refused(Refusal),
    /// A request field is wrong.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("the conversation is changing too fast; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refusal> for ConversationError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

pub fn invalid(field: &'static str, message: impl Into<String>) -> ConversationError {
    ConversationError::Invalid { field, message: message.into() }
}

/// A conversation as loaded: its row and its state.
#[derive(Clone)]
pub struct Loaded {
    pub row: ConversationRow,
    pub state: Conversation,
}

/// What a change did.
pub struct Changed {
    pub loaded: Loaded,
    pub effects: Vec<Effect>,
}

/// What a new conversation starts as.
pub struct Founding {
    pub org_id: String,
    /// The organisation's rules, as [`conversation_policy`] reads them.
    pub policy: ConversationPolicy,
    pub kind: Kind,
    /// A group's or channel's name (checked with [`check_name`]).
    pub name: Option<String>,
    pub encryption: Encryption,
    pub founder: Newcomer,
    pub others: Vec<Newcomer>,
}

/// A conversation's turn to change on this node, and the messages waiting
/// for it.
#[derive(Default)]
struct Turn {
    writing: tokio::sync::Mutex<()>,
    queued: Mutex<Vec<Queued>>,
}

/// A message waiting to be written, and where its outcome goes.
struct Queued {
    message: OutgoingMessage,
    now_ms: i64,
    outcome: tokio::sync::oneshot::Sender<Result<Vec<Effect>, ConversationError>>,
}

/// This node's part of team messaging: the store, and a wake-up per
/// conversation for readers waiting for its next entry.
pub struct Conversations {
    store: Store,
    /// Signs the server's proposals to remove devices from groups.
    authority: AuthorityCell,
    /// The latest state this node wrote or read of each busy conversation.
    cache: Mutex<HashMap<String, Arc<Loaded>>>,
    watchers: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// One change at a time per conversation on this node: concurrent
    /// senders queue here instead of racing to the store and losing
    /// (the version check still decides between nodes).
    turns: Mutex<HashMap<String, Arc<Turn>>>,
    /// Writes every conversation's changes, many in one transaction.
    committer: commit::Committer,
    /// Devices connected here, told what happens as it happens.
    pub live: live::LiveHub,
    /// Devices connected nowhere here, woken through their push service.
    pub push: std::sync::Arc<crate::push::Pusher>,
    /// Held while this node moves or tidies message segments: the
    /// periodic round and the tidying a deletion starts would otherwise
    /// both rewrite the same stale segment ([`segments`]).
    pub(crate) segment_work: tokio::sync::Mutex<()>,
}

impl Conversations {
    pub fn new(store: Store, authority: AuthorityCell, push: crate::push::Pusher) -> Self {
        Self {
            committer: commit::Committer::start(store.clone()),
            store,
            authority,
            cache: Mutex::new(HashMap::new()),
            watchers: Mutex::new(HashMap::new()),
            turns: Mutex::new(HashMap::new()),
            live: live::LiveHub::default(),
            push: std::sync::Arc::new(push),
            segment_work: tokio::sync::Mutex::new(()),
        }
    }

    pub async fn load(&self, id: &str) -> Result<Loaded, ConversationError> {
        let row = self.store.conversation(id).await?.ok_or(ConversationError::NotFound)?;
        let state = parse_state(&row)?;
        Ok(Loaded { row, state })
    }

    /// The conversation as it is now, for reading: the state kept here when
    /// it is still the stored version (one small query instead of reading
    /// and parsing the whole state, which every device's every read of a
    /// busy conversation would otherwise pay).
    pub async fn read(&self, id: &str) -> Result<Arc<Loaded>, ConversationError> {
        let version = self.store.conversation_version(id).await?.ok_or(ConversationError::NotFound)?;
        if let Some(kept) = self.cached(id).filter(|kept| kept.row.version == version) {
            return Ok(kept);
        }
        let loaded = Arc::new(self.load(id).await?);
        self.remember(id, loaded.clone());
        Ok(loaded)
    }

    /// Someone to add, with every device of their account.
    pub async fn newcomer(&self, account: &str, external: bool) -> Result<Newcomer, ConversationError> {
        let devices = self.store.devices_of(account).await?.into_iter().map(|d| d.id).collect();
        Ok(Newcomer { account: account.to_owned(), devices, external })
    }

    /// Brings a conversation's rules in line with its organisation's
    /// policy, if that changed since it last followed it.
    pub async fn follow_policy(&self, id: &str, now_ms: i64) -> Result<(), ConversationError> {
        let loaded = self.load(id).await?;
        let Some((_, org)) = self.store.org_by_id(&loaded.row.org_id).await? else { return Ok(()) };
        let policy = conversation_policy(&org);
        if *loaded.state.policy() != policy {
            self.change(id, now_ms, |_| Ok(Input::Policy { policy: policy.clone() })).await?;
        }
        Ok(())
    }

    /// Creates a conversation. A direct message between two people who
    /// have one already is that one (`false`: not new).
    pub async fn create(&self, founding: Founding, now_ms: i64) -> Result<(Loaded, bool), ConversationError> {
        let Founding { org_id, policy, kind, name, encryption, founder, others } = founding;
        let direct_pair = (kind == Kind::Direct).then(|| {
            let mut pair: Vec<&str> =
                others.iter().map(|n| n.account.as_str()).chain([founder.account.as_str()]).collect();
            pair.sort_unstable();
            pair.join(" ")
        });
        if let Some(pair) = &direct_pair {
            if let Some(row) = self.store.direct_conversation(pair).await? {
                let state = parse_state(&row)?;
                if state.member(&founder.account).is_some() {
                    return Ok((Loaded { row, state }, false));
                }
                // Taken out of it once (deactivated, then reactivated): back in.
                let back = |_: &Conversation| Ok(Input::Join { newcomer: founder.clone() });
                return Ok((self.change(&row.id, now_ms, back).await?.loaded, false));
            }
        }
        let (state, effects) = Conversation::found(kind, encryption, policy, founder, others, now_ms)?;
        let authority = self.authority.get().await;
        let change = Self::change_of(&state, &effects, true, now_ms, authority.as_deref());
        let new = NewConversation {
            id: conclave_store::new_id(),
            org_id,
            kind: views::kind_text(kind).to_owned(),
            name,
            direct_pair: direct_pair.clone(),
            created_at_ms: now_ms,
        };
        match self.store.create_conversation(&new, &change).await {
            Ok(()) => self.tell(&new.id, &state, &change),
            // Both people started it at once: the other request made it.
            Err(StoreError::Conflict("direct message")) => {
                let row = self.store.direct_conversation(direct_pair.as_deref().unwrap_or_default()).await?;
                let row = row.ok_or(ConversationError::NotFound)?;
                let state = parse_state(&row)?;
                return Ok((Loaded { row, state }, false));
            }
            Err(err) => return Err(err.into()),
        }
        Ok((self.load(&new.id).await?, true))
    }

    /// Decides `input` on the conversation's latest state and makes the
    /// result durable; read again and decided again when another writer
    /// was first. `input` sees the state, to refuse early or to shape the
    /// request from it.
    pub async fn change(
        &self,
        id: &str,
        now_ms: i64,
        input: impl Fn(&Conversation) -> Result<Input, ConversationError>,
    ) -> Result<Changed, ConversationError> {
        let turn = self.turn(id);
        let _writing = turn.writing.lock().await;
        self.change_in_turn(id, now_ms, input).await
    }

    /// Sends a message: decided and written like any change, but together
    /// with the other messages waiting for the conversation's turn — one
    /// transaction (one durable commit) for all of them, each answered on
    /// its own. A busy channel is written as fast as the store commits
    /// batches, not one message per commit.
    pub async fn send(
        &self,
        id: &str,
        now_ms: i64,
        message: OutgoingMessage,
    ) -> Result<Vec<Effect>, ConversationError> {
        let turn = self.turn(id);
        let (outcome, answer) = tokio::sync::oneshot::channel();
        turn.queued.lock().expect("queue lock").push(Queued { message, now_ms, outcome });
        {
            // Whoever holds the turn writes what waits, this message
            // included unless an earlier holder wrote it already.
            let _writing = turn.writing.lock().await;
            let batch: Vec<Queued> = {
                let mut queued = turn.queued.lock().expect("queue lock");
                let at = queued.len().min(BATCH);
                let rest = queued.split_off(at);
                std::mem::replace(&mut *queued, rest)
            };
            if !batch.is_empty() {
                self.write_batch(id, batch).await;
            }
        }
        // Dropped only if the holder was cancelled mid-write (the send route
        // writes in a task of its own, so a client going away does not): the
        // message may be in; a retry with its client id says so.
        answer.await.unwrap_or(Err(ConversationError::Contended))
    }

    /// Writes waiting messages in one transaction; if that cannot be (a
    /// refusal on a kept state that may be stale, another node first, a
    /// retry racing its original), each is decided and written on its own.
    async fn write_batch(&self, id: &str, batch: Vec<Queued>) {
        if batch.len() > 1 {
            if let Some(outcomes) = self.try_batch(id, &batch).await {
                for (queued, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = queued.outcome.send(outcome);
                }
                return;
            }
        }
        for Queued { message, now_ms, outcome } in batch {
            let input = |_: &Conversation| Ok(Input::Send(message.clone()));
            let _ = outcome.send(self.change_in_turn(id, now_ms, input).await.map(|changed| changed.effects));
        }
    }

    async fn try_batch(&self, id: &str, batch: &[Queued]) -> Option<Vec<Result<Vec<Effect>, ConversationError>>> {
        let from_cache = self.cached(id);
        let fresh = from_cache.is_none();
        let Loaded { row, mut state } = match from_cache {
            Some(loaded) => Arc::unwrap_or_clone(loaded),
            None => self.load(id).await.ok()?,
        };
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut all = Vec::new();
        for queued in batch {
            // A refusal leaves the state as it was.
            match state.handle(Input::Send(queued.message.clone()), queued.now_ms) {
                Ok(effects) => {
                    all.extend(effects.iter().cloned());
                    outcomes.push(Ok(effects));
                }
                Err(refusal) if fresh => outcomes.push(Err(refusal.into())),
                Err(_) => return None,
            }
        }
        let at_ms = batch.iter().map(|q| q.now_ms).max().unwrap_or_default();
        let authority = self.authority.get().await;
        let mut change = Self::change_of(&state, &all, false, at_ms, authority.as_deref());
        change.state_json = change.state_json.take().filter(|json| *json != row.state_json);
        if change.entries.is_empty() && change.state_json.is_none() {
            return Some(outcomes);
        }
        let commit::Written { stored, change } = self.committer.write(id, row.version, change).await;
        if !stored.ok()? {
            return None;
        }
        self.written(id, row, state, change);
        Some(outcomes)
    }

    /// [`Self::change`], in the conversation's turn.
    async fn change_in_turn(
        &self,
        id: &str,
        now_ms: i64,
        input: impl Fn(&Conversation) -> Result<Input, ConversationError>,
    ) -> Result<Changed, ConversationError> {
        // The state this node last wrote or read is tried first: the write
        // holds only if it is still current, and any other outcome (a
        // refusal, nothing to do) is decided again on the stored state.
        let mut cached = self.cached(id);
        for _ in 0..ATTEMPTS {
            let from_cache = cached.is_some();
            let Loaded { row, mut state } = match cached.take() {
                Some(loaded) => Arc::unwrap_or_clone(loaded),
                None => self.load(id).await?,
            };
            let decided = input(&state).and_then(|input| Ok(state.handle(input, now_ms)?));
            let effects = match decided {
                Err(_) if from_cache => continue,
                decided => decided?,
            };
            // Who is in it, and with which role, changes only by a membership entry.
            let membership_changed =
                effects.iter().any(|e| matches!(e, Effect::Append(Entry { body: EntryBody::Membership { .. }, .. })));
            let authority = self.authority.get().await;
            let mut change = Self::change_of(&state, &effects, membership_changed, now_ms, authority.as_deref());
            // A message changes only the log: the stored state stays as it is.
            let state_json = change.state_json.take().filter(|json| *json != row.state_json);
            let unchanged = state_json.is_none();
            change.state_json = state_json;
            let nothing_new = change.entries.is_empty() && change.inbox.is_empty() && change.erase.is_empty();
            if nothing_new && unchanged {
                if from_cache {
                    continue;
                }
                return Ok(Changed { loaded: Loaded { row, state }, effects });
            }
            let commit::Written { stored, change } = self.committer.write(id, row.version, change).await;
            if stored? {
                let loaded = self.written(id, row, state, change);
                return Ok(Changed { loaded: Arc::unwrap_or_clone(loaded), effects });
            }
        }
        Err(ConversationError::Contended)
    }

    /// After `change` was stored over `row`: readers waiting are woken,
    /// connected devices told, and the new state kept as this node's latest.
    fn written(&self, id: &str, row: ConversationRow, state: Conversation, change: ConversationChange) -> Arc<Loaded> {
        self.wake(id, state.last_seq());
        self.tell(id, &state, &change);
        let row = ConversationRow {
            state_json: change.state_json.unwrap_or(row.state_json),
            version: row.version + 1,
            last_seq: state.last_seq() as i64,
            ..row
        };
        let loaded = Arc::new(Loaded { row, state });
        self.remember(id, loaded.clone());
        loaded
    }

    /// The conversation's turn to change on this node.
    fn turn(&self, id: &str) -> Arc<Turn> {
        let mut turns = self.turns.lock().expect("turns lock");
        if turns.len() >= CACHED_CONVERSATIONS {
            // Forget the turns nobody waits for.
            turns.retain(|_, turn| Arc::strong_count(turn) > 1);
        }
        turns.entry(id.to_owned()).or_default().clone()
    }

    fn cached(&self, id: &str) -> Option<Arc<Loaded>> {
        self.cache.lock().expect("cache lock").get(id).cloned()
    }

    /// Keeps the state just written for the next change here. Bounded: past
    /// the limit it starts over (a miss only costs a read).
    fn remember(&self, id: &str, loaded: Arc<Loaded>) {
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= CACHED_CONVERSATIONS && !cache.contains_key(id) {
            cache.clear();
        }
        cache.insert(id.to_owned(), loaded);
    }

    /// What the store knows of message `seq`, for a request referring to it.
    pub async fn target(&self, id: &str, seq: u64) -> Result<Target, ConversationError> {
        let row = self.store.conversation_entry(id, seq as i64).await?;
        let missing = Target { seq, author: String::new(), at_ms: 0, deleted: true, thread: None, is_message: false };
        Ok(row.map_or(missing, |row| Target {
            seq,
            author: row.author.unwrap_or_default(),
            at_ms: row.at_ms,
            deleted: row.deleted,
            thread: row.thread_seq.map(|s| s as u64),
            is_message: row.is_message,
        }))
    }

    /// Tells every conversation `account` is in about a change to its
    /// devices or its standing (a new device, a revoked one, deactivation).
    pub async fn account_changed(
        &self,
        account: &str,
        input: impl Fn() -> Input,
        now_ms: i64,
    ) -> Result<(), ConversationError> {
        // Every conversation is tried, whatever fails in one: a revoked
        // device left in one group is not left in all the others too.
        let mut failed = None;
        for membership in self.store.conversations_of(account).await? {
            match self.change(&membership.conversation.id, now_ms, |_| Ok(input())).await {
                Ok(_) | Err(ConversationError::Refused(_)) | Err(ConversationError::NotFound) => {}
                Err(err) => {
                    tracing::warn!(error = %err, conversation = %membership.conversation.id, "an account's change did not reach a conversation");
                    failed.get_or_insert(err);
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// A new device of `account`: it belongs in every conversation the account is in.
    pub async fn device_added(&self, account: &str, device: &str, now_ms: i64) -> Result<(), ConversationError> {
        let input = || Input::DeviceAdded { account: account.to_owned(), device: device.to_owned() };
        self.account_changed(account, input, now_ms).await
    }

    /// A revoked device of `account`: it reads no conversation any more, and leaves each group.
    pub async fn device_removed(&self, account: &str, device: &str, now_ms: i64) -> Result<(), ConversationError> {
        self.live.recheck(account, Some(device));
        let input = || Input::DeviceRemoved { account: account.to_owned(), device: device.to_owned() };
        self.account_changed(account, input, now_ms).await
    }

    /// A receiver that changes when the conversation's log grows.
    pub fn watch(&self, id: &str, last_seq: u64) -> watch::Receiver<u64> {
        let mut watchers = self.watchers.lock().expect("watchers lock");
        watchers.retain(|_, sender| sender.receiver_count() > 0);
        watchers.entry(id.to_owned()).or_insert_with(|| watch::channel(last_seq).0).subscribe()
    }

    /// Tells the connected devices what a change did: the log grew (every
    /// member's), something waits in an inbox (that device's).
    fn tell(&self, id: &str, state: &Conversation, change: &ConversationChange) {
        use conclave_proto::conversation::LiveEvent;
        if let Some(first) = change.entries.first() {
            let plain =
                LiveEvent::Changed { conversation_id: id.to_owned(), last_seq: state.last_seq(), entries: Vec::new() };
            // The entries go along only to devices that may read them all,
            // as the API would serve them; small ones only (else devices read).
            let size: usize = change.entries.iter().map(|e| e.body_json.len()).sum();
            let entries: Vec<_> = if size <= LIVE_ENTRIES_BYTES {
                change.entries.iter().filter_map(|row| entry_from_row(row).ok()).collect()
            } else {
                Vec::new()
            };
            let first = first.seq as u64;
            let inline = !entries.is_empty();
            let may_read = |device: &str| inline && state.readable_from(device).is_some_and(|from| from <= first);
            let readable = LiveEvent::Changed { conversation_id: id.to_owned(), last_seq: state.last_seq(), entries };
            let devices = state
                .members()
                .iter()
                .flat_map(|(account, m)| m.devices.iter().map(move |d| (account.as_str(), d.as_str())));
            self.live.publish_to_devices(devices, may_read, &readable, &plain);
            // The members' devices not connected here are woken to sync.
            let offline: Vec<String> = state
                .members()
                .values()
                .flat_map(|m| m.devices.iter())
                .filter(|d| !self.live.is_connected(d))
                .cloned()
                .collect();
            if !offline.is_empty() {
                self.push.wake(offline, change.at_ms);
            }
        }
        for message in &change.inbox {
            if let Some(owner) = state.device_owner(&message.device) {
                self.live.publish([owner.as_str()], Some(&message.device), LiveEvent::Inbox);
            }
        }
    }

    fn wake(&self, id: &str, last_seq: u64) {
        if let Some(sender) = self.watchers.lock().expect("watchers lock").get(id) {
            sender.send_replace(last_seq);
        }
    }

    /// The rows one decision writes.
    fn change_of(
        state: &Conversation,
        effects: &[Effect],
        membership_changed: bool,
        now_ms: i64,
        authority: Option<&DeviceAuthority>,
    ) -> ConversationChange {
        let mut change = ConversationChange {
            state_json: Some(serde_json::to_string(state).expect("a conversation serialises")),
            last_seq: state.last_seq() as i64,
            members: membership_changed.then(|| {
                state.members().iter().map(|(account, m)| (account.clone(), role_text(m.role).to_owned())).collect()
            }),
            at_ms: now_ms,
            ..ConversationChange::default()
        };
        // Whoever writes has read what came before (the latest per person).
        let mut reads = std::collections::BTreeMap::new();
        for effect in effects {
            match effect {
                Effect::Append(entry) => {
                    if let EntryBody::Message { files, from, .. } = &entry.body {
                        change.shared_files.extend(files.iter().map(|f| (f.clone(), entry.seq as i64)));
                        reads.insert(from.clone(), entry.seq as i64);
                    }
                    match &entry.body {
                        EntryBody::RemoveRequest { member, committer, .. } => {
                            let proposal = Self::propose_removal(state, authority, &member.device_id);
                            let body = EntryBody::RemoveRequest {
                                member: member.clone(),
                                committer: committer.clone(),
                                proposal,
                            };
                            change.entries.push(entry_row(&Entry { body, ..entry.clone() }));
                        }
                        _ => change.entries.push(entry_row(entry)),
                    }
                }
                Effect::Erase(seq) => change.erase.push(*seq as i64),
                Effect::ToDevice(delivery) => {
                    let device = delivery.recipient().clone();
                    let mut handshake = Self::handshake(state, delivery.clone(), authority);
                    // Every device a commit adds gets the same Welcome: it
                    // is stored once, and the inbox says which it is.
                    let welcome = match &mut handshake {
                        Handshake::Welcome { welcome, .. } => {
                            let welcome = std::mem::take(welcome);
                            let at = change.welcomes.iter().position(|w| *w == welcome);
                            Some(at.unwrap_or_else(|| {
                                change.welcomes.push(welcome);
                                change.welcomes.len() - 1
                            }))
                        }
                        _ => None,
                    };
                    let handshake_json = serde_json::to_string(&handshake).expect("a handshake serialises");
                    change.inbox.push(InboxMessage { device, handshake_json, welcome });
                }
                Effect::Duplicate(_) => {}
            }
        }
        change.reads = reads.into_iter().collect();
        change
    }

    /// The server's own proposal to remove `device` from the conversation's
    /// group, signed as its external sender for the epoch the group is at
    /// once this decision is written (the log's order puts the request
    /// after every commit the decision logged).
    fn propose_removal(state: &Conversation, authority: Option<&DeviceAuthority>, device: &str) -> Option<String> {
        let (epoch, leaf) = state.removal_at(device)?;
        authority?.propose_removal(epoch, leaf)
    }

    /// A delivery for one device, with each device named with its account.
    fn handshake(state: &Conversation, delivery: Delivery<String>, authority: Option<&DeviceAuthority>) -> Handshake {
        let named = |device: String| GroupDevice {
            user_id: state.device_owner(&device).cloned().unwrap_or_default(),
            device_id: device,
        };
        match delivery {
            Delivery::CreateGroup { .. } => Handshake::CreateGroup,
            Delivery::AddRequest { member, key_package, committer, .. } => {
                Handshake::AddRequest { member: named(member), key_package, committer }
            }
            Delivery::RemoveRequest { member, committer, .. } => {
                let proposal = Self::propose_removal(state, authority, &member);
                Handshake::RemoveRequest { member: named(member), committer, proposal }
            }
            Delivery::Welcome { to, epoch, welcome, committer, members } => {
                let readable_from = state.readable_from(&to).unwrap_or(state.last_seq() + 1);
                let members = members.into_iter().map(named).collect();
                Handshake::Welcome { epoch, welcome, committer, members, readable_from }
            }
            // Refusals are answered to the request; the rest is in the log.
            Delivery::Rejected { .. } | Delivery::Commit { .. } | Delivery::Application { .. } => {
                unreachable!("the conversation logs these or refuses the request")
            }
        }
    }
}

/// What an organisation's policy says for its conversations.
pub fn conversation_policy(org: &conclave_proto::OrgPolicy) -> ConversationPolicy {
    let window = |minutes: Option<u32>| minutes.map(|m| i64::from(m) * 60_000);
    ConversationPolicy {
        edit_window_ms: window(org.message_edit_minutes.value),
        delete_window_ms: window(org.message_delete_minutes.value),
        admins_delete_any: true,
        newcomers_see_history: org.history_for_newcomers.value,
    }
}

fn parse_state(row: &ConversationRow) -> Result<Conversation, StoreError> {
    let mut state: Conversation = serde_json::from_str(&row.state_json)
        .map_err(|_| StoreError::Corrupt { column: "conversations.state_json", value: row.id.clone() })?;
    state.set_log_position(row.last_seq as u64);
    Ok(state)
}

fn entry_row(entry: &Entry) -> EntryRow {
    let mut row = EntryRow {
        seq: entry.seq as i64,
        at_ms: entry.at_ms,
        author: None,
        device_id: None,
        client_id: None,
        thread_seq: None,
        reference_kind: None,
        refers_to: None,
        is_message: false,
        deleted: false,
        body_json: serde_json::to_string(&entry.body).expect("an entry serialises"),
        segment_id: None,
    };
    if let EntryBody::Message { from, device, client_id, reference, control, .. } = &entry.body {
        // Control messages are not people's: never unread, never a target.
        row.is_message = !control;
        row.author = Some(from.clone());
        row.device_id = Some(device.clone());
        row.client_id = Some(client_id.clone());
        if let Some(reference) = reference {
            let kind = match reference {
                Reference::Reply(_) => "reply",
                Reference::Thread(_) => "thread",
                Reference::Edit(_) => "edit",
                Reference::Reaction(_) => "reaction",
            };
            row.reference_kind = Some(kind.to_owned());
            row.refers_to = Some(reference.target() as i64);
            row.thread_seq = matches!(reference, Reference::Thread(_)).then_some(reference.target() as i64);
        }
    }
    row
}

/// Checks a group's or channel's name: 1 to 80 characters under the
/// display-name rule (no invisible or direction-changing characters).
pub fn check_name(kind: Kind, name: Option<String>) -> Result<Option<String>, ConversationError> {
    use conclave_proto::conversation::MAX_CONVERSATION_NAME_CHARS;
    match (kind, name) {
        (Kind::Direct, None) => Ok(None),
        (Kind::Direct, Some(_)) => Err(invalid("name", "a direct message has no name")),
        (_, None) => Err(invalid("name", "a group or channel needs a name")),
        (_, Some(name)) => {
            let name = conclave_proto::names::display_name(&name).map_err(|e| invalid("name", e.to_string()))?;
            if name.chars().count() > MAX_CONVERSATION_NAME_CHARS {
                return Err(invalid("name", format!("at most {MAX_CONVERSATION_NAME_CHARS} characters")));
            }
            Ok(Some(name))
        }
    }
}
