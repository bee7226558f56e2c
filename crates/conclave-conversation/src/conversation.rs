//! One conversation as a state machine: [`Conversation::handle`] takes an
//! [`Input`] (a member's request, a device's message, a change to someone's
//! account) and the time, and answers with the [`Effect`]s to carry out or
//! a [`Refusal`]. It holds no message: the log lives in the store, and
//! what a request refers to (the message being edited, the thread's root)
//! is looked up by the driver and handed in as a [`Target`].

use std::collections::{BTreeMap, BTreeSet};

use conclave_delivery::{CommitRefusal, Delivery, DeliveryService, ProposedCommit, MAX_BLOB};
use serde::{Deserialize, Serialize};

use crate::roles;
pub use conclave_proto::conversation::{
    ConversationKind as Kind, ConversationRole as Role, Entry, EntryBody, GroupDevice, MembershipChange, Reference,
    Seq, SettingChange,
};

pub type AccountId = String;
pub type DeviceId = String;

/// How long the designated committer has to carry out what it was asked
/// before another device of the group that shows up takes over: a device
/// that is offline must not hold the conversation back (no message is
/// taken while a removal waits for its commit).
pub const COMMITTER_PATIENCE_MS: i64 = 30_000;

/// Largest KeyPackage taken (one is a few hundred bytes; each is copied
/// into a request to every member).
pub const MAX_KEY_PACKAGE: usize = 8 * 1024;
/// Devices that may wait at once to be added to one conversation's group.
pub const MAX_WAITING_DEVICES: usize = 64;

/// Longest client message id a device may choose.
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// Whether the server can read the conversation's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// End-to-end encrypted under the conversation's MLS group: the default.
    Mls,
    /// Readable by the server, for announcement channels too large for a
    /// group, where the organisation's policy allows them.
    Plain,
}

/// The organisation's rules for one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationPolicy {
    /// How long after sending its author may edit a message (`None`: always).
    pub edit_window_ms: Option<i64>,
    /// How long after sending its author may delete a message for everyone.
    pub delete_window_ms: Option<i64>,
    /// Whether admins may delete anyone's message, at any time.
    pub admins_delete_any: bool,
    /// Whether a newcomer's devices read what was said before they came
    /// (for an end-to-end encrypted conversation, as far as the keys the
    /// members share with it allow).
    pub newcomers_see_history: bool,
}

impl Default for ConversationPolicy {
    fn default() -> Self {
        Self {
            edit_window_ms: Some(24 * 3600 * 1000),
            delete_window_ms: Some(24 * 3600 * 1000),
            admins_delete_any: true,
            newcomers_see_history: true,
        }
    }
}

/// A member: an account, its role, and the devices it reads with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub role: Role,
    /// From another organisation than the conversation's (shown as such).
    pub external: bool,
    /// The log entry that made them a member.
    pub since: Seq,
    pub devices: BTreeSet<DeviceId>,
}

/// Someone to add: their account, devices and whether they are external.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Newcomer {
    pub account: AccountId,
    pub devices: BTreeSet<DeviceId>,
    pub external: bool,
}

/// What the store knows of a message a request refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub seq: Seq,
    pub author: AccountId,
    pub at_ms: i64,
    pub deleted: bool,
    /// The thread it is in, if it is a reply in one.
    pub thread: Option<Seq>,
    /// Whether it is a message (not a commit or a membership change).
    pub is_message: bool,
}

/// Everything a conversation is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// A message from one of a member's devices.
    Send(OutgoingMessage),
    Delete {
        by: AccountId,
        target: Target,
    },
    Add {
        by: AccountId,
        newcomers: Vec<Newcomer>,
    },
    Join {
        newcomer: Newcomer,
    },
    Leave {
        account: AccountId,
    },
    Remove {
        by: AccountId,
        account: AccountId,
    },
    SetRole {
        by: AccountId,
        account: AccountId,
        role: Role,
    },
    Lock {
        by: AccountId,
        locked: bool,
    },
    Archive {
        by: AccountId,
        archived: bool,
    },
    /// A member's account has a new device.
    DeviceAdded {
        account: AccountId,
        device: DeviceId,
    },
    /// A member's device was revoked (or is lost).
    DeviceRemoved {
        account: AccountId,
        device: DeviceId,
    },
    /// The organisation puts someone in one of its channels: they are in
    /// `group` of its identity provider, which it maps to the channel.
    /// Admins govern team channels, so a lock does not stop it. Already
    /// there is nothing to do.
    Assign {
        newcomer: Newcomer,
        group: String,
    },
    /// The organisation takes someone out of one of its channels (they left
    /// the mapped `group`). Not there is nothing to do.
    Unassign {
        account: AccountId,
        group: String,
    },
    /// The organisation deactivated the account (offboarding).
    AccountDeactivated {
        account: AccountId,
    },
    /// A device's MLS KeyPackage: add me to the group.
    KeyPackage {
        device: DeviceId,
        key_package: String,
    },
    /// A device's MLS commit.
    Commit {
        device: DeviceId,
        commit: ProposedCommit<DeviceId>,
    },
    /// `by` started a call from the conversation.
    Call {
        by: AccountId,
        meeting_id: String,
    },
    /// A device of the group is online (it is reading the log): if the
    /// committer has left work undone past [`COMMITTER_PATIENCE_MS`], this
    /// device takes over.
    Present {
        device: DeviceId,
    },
    /// The organisation's policy changed (its edit and delete windows): the
    /// conversation follows it from now on. Nothing is logged.
    Policy {
        policy: ConversationPolicy,
    },
}

/// What to carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Store durably, then deliver to every device that may read it.
    Append(Entry),
    /// A message for one device only (its part of the MLS handshake),
    /// kept in that device's inbox until it takes it.
    ToDevice(Delivery<DeviceId>),
    /// Drop a deleted message's content (and its files) from storage.
    Erase(Seq),
    /// The request repeated one already done (same device and client id):
    /// nothing new, its answer is this entry.
    Duplicate(Seq),
}

/// Why a request was refused; nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    NotMember,
    AlreadyMember,
    /// The role or the kind of conversation does not allow it.
    NotAllowed,
    /// Membership is locked: only admins add people.
    Locked,
    Archived,
    /// The device is not one of the member's, or not in the group yet.
    UnknownDevice,
    /// The message was encrypted in another epoch than the group's, or
    /// while a removal waits to be committed: encrypt again after the commit.
    EpochMismatch,
    /// The message referred to does not exist here, or cannot be referred to so.
    BadReference,
    /// Only the author edits a message, and only the author or an admin deletes it.
    NotAuthor,
    /// The policy's window for editing or deleting has passed.
    TooLate,
    /// The last owner cannot step down while others remain.
    LastOwner,
    /// Too many devices wait to be added to the group: try again shortly.
    TooManyWaiting,
    /// Empty, too long, or malformed.
    Malformed,
    /// The delivery service refused this MLS message.
    Group(CommitRefusal),
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotMember => "not a member of this conversation",
            Self::AlreadyMember => "already a member",
            Self::NotAllowed => "your role in this conversation does not allow it",
            Self::Locked => "membership of this channel is locked; ask an admin",
            Self::Archived => "the conversation is archived",
            Self::UnknownDevice => "this device is not in the conversation's group yet",
            Self::EpochMismatch => "the group has moved on; encrypt again in its current epoch",
            Self::BadReference => "the message referred to is not one this can refer to",
            Self::NotAuthor => "only the author may do that",
            Self::TooLate => "the time allowed for that has passed",
            Self::LastOwner => "the last owner hands over ownership first",
            Self::TooManyWaiting => "too many devices are waiting to join this conversation; try again shortly",
            Self::Malformed => "empty, too long, or malformed",
            Self::Group(r) => r.reason(),
        }
    }
}

pub type Handled = Result<Vec<Effect>, Refusal>;

/// A message as [`Input::Send`] brings it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    pub device: DeviceId,
    pub client_id: String,
    pub epoch: Option<u64>,
    pub content: String,
    /// What it refers to, with the store's facts about that message.
    pub reference: Option<(Reference, Target)>,
    /// The entry the store already holds from this device under this
    /// client id, if any: then this is a retry.
    pub earlier: Option<Seq>,
    /// Its copy under the epoch's history key, for devices added later.
    #[serde(default)]
    pub history: Option<String>,
    /// Between devices, not for people.
    #[serde(default)]
    pub control: bool,
    /// Files it shares (the driver has checked they are the sender's,
    /// uploaded to this conversation and shared by no other message).
    #[serde(default)]
    pub files: Vec<String>,
}

/// A conversation's state: everything needed to decide, nothing of what
/// was said. It serialises whole, to be stored between requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    kind: Kind,
    encryption: Encryption,
    policy: ConversationPolicy,
    locked: bool,
    archived: bool,
    /// A direct message's two people: one who was taken out (their account
    /// deactivated, then reactivated) comes back by joining it again.
    #[serde(default)]
    pair: Vec<AccountId>,
    /// The log's length: kept beside the stored state, not in it (see
    /// [`Conversation::set_log_position`]), so that a message changes
    /// nothing stored but the log.
    #[serde(skip)]
    last_seq: Seq,
    members: BTreeMap<AccountId, Member>,
    /// Devices that may read the log, from which entry on.
    readers: BTreeMap<DeviceId, Seq>,
    group: DeliveryService<DeviceId>,
    /// Devices still in the group whose account is no longer a member (or
    /// that were revoked), with that account: named in the requests that
    /// remove them.
    departed: BTreeMap<DeviceId, AccountId>,
    /// Since when the group has had work for its committer (adds or
    /// removals not yet committed), with nobody taking over since.
    work_since: Option<i64>,
    /// The latest call started from the conversation: its members are shown
    /// a banner while the meeting is live.
    #[serde(default)]
    call: Option<CallStarted>,
}

/// A call someone started from the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStarted {
    pub meeting_id: String,
    pub by: AccountId,
    pub at_ms: i64,
}

impl Conversation {
    /// A new conversation: `founder` owns it (in a direct message, both are
    /// plain members), `others` are in it from the start.
    pub fn found(
        kind: Kind,
        encryption: Encryption,
        policy: ConversationPolicy,
        founder: Newcomer,
        others: Vec<Newcomer>,
        now_ms: i64,
    ) -> Result<(Self, Vec<Effect>), Refusal> {
        let accounts: BTreeSet<&AccountId> = others.iter().map(|n| &n.account).chain([&founder.account]).collect();
        if accounts.len() != others.len() + 1 || (kind == Kind::Direct && accounts.len() != 2) {
            return Err(Refusal::Malformed);
        }
        let pair = if kind == Kind::Direct { accounts.iter().map(|a| (*a).clone()).collect() } else { Vec::new() };
        let mut conversation = Self {
            kind,
            encryption,
            policy,
            locked: false,
            archived: false,
            pair,
            last_seq: 0,
            members: BTreeMap::new(),
            readers: BTreeMap::new(),
            group: DeliveryService::default(),
            departed: BTreeMap::new(),
            work_since: None,
            call: None,
        };
        let founder_role = if kind == Kind::Direct { Role::Member } else { Role::Owner };
        let mut out = Vec::new();
        for (newcomer, role) in
            [(founder, founder_role)].into_iter().chain(others.into_iter().map(|n| (n, Role::Member)))
        {
            conversation.admit(newcomer, role, MembershipChange::Founded { role }, now_ms, &mut out);
        }
        Ok((conversation, out))
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn encryption(&self) -> Encryption {
        self.encryption
    }

    pub fn policy(&self) -> &ConversationPolicy {
        &self.policy
    }

    pub fn is_locked(&self) -> bool {
        self.locked
    }

    pub fn is_archived(&self) -> bool {
        self.archived
    }

    /// The latest call started from the conversation (it may be over).
    pub fn latest_call(&self) -> Option<&CallStarted> {
        self.call.as_ref()
    }

    pub fn last_seq(&self) -> Seq {
        self.last_seq
    }

    /// After loading a stored state: where the log stands (its last entry).
    pub fn set_log_position(&mut self, last_seq: Seq) {
        self.last_seq = last_seq;
    }

    pub fn members(&self) -> &BTreeMap<AccountId, Member> {
        &self.members
    }

    pub fn member(&self, account: &str) -> Option<&Member> {
        self.members.get(account)
    }

    /// The devices in the conversation's MLS group.
    pub fn group_devices(&self) -> BTreeSet<DeviceId> {
        self.group.members()
    }

    /// Where the server's own proposal to remove `device` from the group
    /// applies (epoch and leaf), while its removal waits for a commit.
    pub fn removal_at(&self, device: &str) -> Option<(u64, u32)> {
        self.group.removal_at(&device.to_owned())
    }

    pub fn epoch(&self) -> Option<u64> {
        self.group.epoch()
    }

    /// Whether `device` is in the group and staying (not about to be removed).
    pub fn holds_device(&self, device: &str) -> bool {
        self.group.holds(&device.to_owned())
    }

    /// The device the delivery service asks to commit.
    pub fn committer(&self) -> Option<&DeviceId> {
        self.group.committer()
    }

    /// From which entry on `device` may read the log (`None`: not at all).
    pub fn readable_from(&self, device: &str) -> Option<Seq> {
        self.readers.get(device).copied()
    }

    /// Whether `device` may read entry `seq`.
    pub fn may_read(&self, device: &str, seq: Seq) -> bool {
        self.readable_from(device).is_some_and(|from| seq >= from)
    }

    /// Every device that may read the log, with the entry it reads from.
    pub fn readers(&self) -> &BTreeMap<DeviceId, Seq> {
        &self.readers
    }

    /// The member whose device this is.
    pub fn owner_of(&self, device: &str) -> Option<&AccountId> {
        self.members.iter().find(|(_, m)| m.devices.contains(device)).map(|(a, _)| a)
    }

    /// The account a device of the group belongs to: a member's, or one
    /// that left and whose device the group is still to remove.
    pub fn device_owner(&self, device: &str) -> Option<&AccountId> {
        self.owner_of(device).or_else(|| self.departed.get(device))
    }

    fn group_device(&self, device: &DeviceId) -> GroupDevice {
        let user_id = self.device_owner(device).cloned().unwrap_or_default();
        GroupDevice { device_id: device.clone(), user_id }
    }

    pub fn handle(&mut self, input: Input, now_ms: i64) -> Handled {
        match input {
            Input::Send(message) => self.send(message, now_ms),
            Input::Delete { by, target } => self.delete(by, target, now_ms),
            Input::Add { by, newcomers } => self.add(by, newcomers, now_ms),
            Input::Join { newcomer } => self.join(newcomer, now_ms),
            Input::Leave { account } => self.leave(account, now_ms),
            Input::Remove { by, account } => self.remove(by, account, now_ms),
            Input::SetRole { by, account, role } => self.set_role(by, account, role, now_ms),
            Input::Lock { by, locked } => self.govern(by, SettingChange::Locked(locked), now_ms),
            Input::Archive { by, archived } => self.govern(by, SettingChange::Archived(archived), now_ms),
            Input::DeviceAdded { account, device } => self.device_added(account, device),
            Input::DeviceRemoved { account, device } => self.device_removed(account, device, now_ms),
            Input::AccountDeactivated { account } => self.depart(account, MembershipChange::Deactivated, now_ms),
            Input::Assign { newcomer, group } => self.assign(newcomer, group, now_ms),
            Input::Unassign { account, group } => {
                if self.kind != Kind::Channel {
                    return Err(Refusal::NotAllowed);
                }
                if !self.members.contains_key(&account) {
                    return Ok(Vec::new());
                }
                self.depart(account, MembershipChange::UnassignedByGroup { group }, now_ms)
            }
            Input::KeyPackage { device, key_package } => self.key_package(device, key_package, now_ms),
            Input::Commit { device, commit } => self.commit(device, commit, now_ms),
            Input::Present { device } => Ok(self.present(device, now_ms)),
            Input::Policy { policy } => {
                self.policy = policy;
                Ok(Vec::new())
            }
            Input::Call { by, meeting_id } => {
                self.role_of(&by)?;
                self.open()?;
                self.call = Some(CallStarted { meeting_id: meeting_id.clone(), by: by.clone(), at_ms: now_ms });
                Ok(vec![Effect::Append(self.append(EntryBody::Call { meeting_id, by }, now_ms))])
            }
        }
    }

    fn role_of(&self, account: &str) -> Result<Role, Refusal> {
        self.members.get(account).map(|m| m.role).ok_or(Refusal::NotMember)
    }

    fn open(&self) -> Result<(), Refusal> {
        if self.archived {
            return Err(Refusal::Archived);
        }
        Ok(())
    }

    fn send(&mut self, message: OutgoingMessage, now_ms: i64) -> Handled {
        let OutgoingMessage { device, client_id, epoch, content, reference, earlier, history, control, files } =
            message;
        let from = self.owner_of(&device).cloned().ok_or(Refusal::NotMember)?;
        let history_too_big = history.as_ref().is_some_and(|h| h.is_empty() || h.len() > MAX_BLOB);
        if client_id.is_empty()
            || client_id.len() > MAX_CLIENT_ID_LEN
            || content.is_empty()
            || content.len() > MAX_BLOB
            || history_too_big
            || files.len() > conclave_proto::file::MAX_FILES_PER_MESSAGE
            || files.iter().enumerate().any(|(i, f)| f.is_empty() || files[..i].contains(f))
        {
            return Err(Refusal::Malformed);
        }
        // A retry is answered with what the first one got, whatever changed since.
        if let Some(seq) = earlier {
            return Ok(vec![Effect::Duplicate(seq)]);
        }
        self.open()?;
        match self.encryption {
            Encryption::Mls => {
                // A message in an old epoch, or in one whose removals are not
                // committed yet, could be read by someone no longer a member.
                let in_group = self.group.members().contains(&device);
                if !in_group {
                    return Err(Refusal::UnknownDevice);
                }
                if epoch != self.group.epoch() || self.group.removals_pending() {
                    return Err(Refusal::EpochMismatch);
                }
            }
            Encryption::Plain if epoch.is_some() => return Err(Refusal::Malformed),
            Encryption::Plain => {}
        }
        if let Some((reference, target)) = &reference {
            self.check_reference(&from, *reference, target, now_ms)?;
        }
        let reference = reference.map(|(r, _)| r);
        // A control message refers to nothing.
        if control && reference.is_some() {
            return Err(Refusal::BadReference);
        }
        // Files come with a new message (or a reply): an edit or a reaction
        // cannot bring any, and deleting the message takes them away.
        let shares_files = !files.is_empty();
        if shares_files && (control || matches!(reference, Some(Reference::Edit(_) | Reference::Reaction(_)))) {
            return Err(Refusal::Malformed);
        }
        let body = EntryBody::Message { from, device, client_id, epoch, content, reference, history, control, files };
        Ok(vec![Effect::Append(self.append(body, now_ms))])
    }

    fn check_reference(&self, from: &str, reference: Reference, target: &Target, now_ms: i64) -> Result<(), Refusal> {
        if target.seq != reference.target() || target.seq > self.last_seq || !target.is_message || target.deleted {
            return Err(Refusal::BadReference);
        }
        match reference {
            Reference::Reply(_) | Reference::Reaction(_) => Ok(()),
            // Threads are one level deep, as in Slack.
            Reference::Thread(_) if target.thread.is_some() => Err(Refusal::BadReference),
            Reference::Thread(_) => Ok(()),
            Reference::Edit(_) if target.author != from => Err(Refusal::NotAuthor),
            Reference::Edit(_) => within(self.policy.edit_window_ms, target.at_ms, now_ms),
        }
    }

    fn delete(&mut self, by: AccountId, target: Target, now_ms: i64) -> Handled {
        let role = self.role_of(&by)?;
        self.open()?;
        if target.seq > self.last_seq || !target.is_message || target.deleted {
            return Err(Refusal::BadReference);
        }
        let moderating = role >= Role::Admin && self.policy.admins_delete_any;
        if !moderating {
            if target.author != by {
                return Err(Refusal::NotAuthor);
            }
            within(self.policy.delete_window_ms, target.at_ms, now_ms)?;
        }
        let entry = self.append(EntryBody::Deleted { target: target.seq, by }, now_ms);
        Ok(vec![Effect::Erase(target.seq), Effect::Append(entry)])
    }

    fn add(&mut self, by: AccountId, newcomers: Vec<Newcomer>, now_ms: i64) -> Handled {
        let role = self.role_of(&by)?;
        self.open()?;
        if !roles::may_add(self.kind, self.locked, role) {
            return Err(if self.kind == Kind::Channel { Refusal::Locked } else { Refusal::NotAllowed });
        }
        let distinct: BTreeSet<&AccountId> = newcomers.iter().map(|n| &n.account).collect();
        if newcomers.is_empty() || distinct.len() != newcomers.len() {
            return Err(Refusal::Malformed);
        }
        if newcomers.iter().any(|n| self.members.contains_key(&n.account)) {
            return Err(Refusal::AlreadyMember);
        }
        let mut out = Vec::new();
        for newcomer in newcomers {
            self.admit(newcomer, Role::Member, MembershipChange::Added { by: by.clone() }, now_ms, &mut out);
        }
        Ok(out)
    }

    fn join(&mut self, newcomer: Newcomer, now_ms: i64) -> Handled {
        if self.members.contains_key(&newcomer.account) {
            return Err(Refusal::AlreadyMember);
        }
        self.open()?;
        let back_to_their_direct_message = self.pair.contains(&newcomer.account);
        if !roles::may_join(self.kind, self.locked) && !back_to_their_direct_message {
            return Err(if self.kind == Kind::Channel { Refusal::Locked } else { Refusal::NotAllowed });
        }
        let mut out = Vec::new();
        self.admit(newcomer, Role::Member, MembershipChange::Joined, now_ms, &mut out);
        Ok(out)
    }

    fn assign(&mut self, newcomer: Newcomer, group: String, now_ms: i64) -> Handled {
        if self.kind != Kind::Channel || newcomer.external {
            return Err(Refusal::NotAllowed);
        }
        if self.members.contains_key(&newcomer.account) {
            return Ok(Vec::new());
        }
        self.open()?;
        let mut out = Vec::new();
        self.admit(newcomer, Role::Member, MembershipChange::AssignedByGroup { group }, now_ms, &mut out);
        Ok(out)
    }

    /// Makes `newcomer` a member. In a plain conversation their devices
    /// read from now on (or from the start, by policy); in an encrypted one
    /// a device reads once the group has it, from the commit that adds it.
    fn admit(&mut self, newcomer: Newcomer, role: Role, change: MembershipChange, now_ms: i64, out: &mut Vec<Effect>) {
        let entry = self.append(EntryBody::Membership { account: newcomer.account.clone(), change }, now_ms);
        let since = entry.seq;
        out.push(Effect::Append(entry));
        for device in &newcomer.devices {
            self.start_reading(device, since);
        }
        // Whoever comes to a group or channel everyone else has left owns it.
        // (Never someone of another organisation: they do not govern this one's conversations.)
        let unowned =
            self.kind != Kind::Direct && !newcomer.external && !self.members.values().any(|m| m.role == Role::Owner);
        let member = Member { role, external: newcomer.external, since, devices: newcomer.devices };
        self.members.insert(newcomer.account.clone(), member);
        if unowned && role != Role::Owner {
            self.members.get_mut(&newcomer.account).expect("just inserted").role = Role::Owner;
            let change = MembershipChange::RoleChanged { role: Role::Owner, by: None };
            out.push(Effect::Append(self.append(EntryBody::Membership { account: newcomer.account, change }, now_ms)));
        }
    }

    fn start_reading(&mut self, device: &DeviceId, since: Seq) {
        if self.encryption == Encryption::Plain {
            let from = if self.policy.newcomers_see_history { 1 } else { since };
            self.readers.insert(device.clone(), from);
        }
    }

    fn leave(&mut self, account: AccountId, now_ms: i64) -> Handled {
        self.role_of(&account)?;
        if !roles::may_leave(self.kind) {
            return Err(Refusal::NotAllowed);
        }
        self.depart(account, MembershipChange::Left, now_ms)
    }

    fn remove(&mut self, by: AccountId, account: AccountId, now_ms: i64) -> Handled {
        let role = self.role_of(&by)?;
        let target = self.role_of(&account)?;
        if !roles::may_remove(self.kind, role, target) {
            return Err(Refusal::NotAllowed);
        }
        self.depart(account, MembershipChange::Removed { by }, now_ms)
    }

    /// `account` is out: its devices read nothing more from this moment,
    /// the group is asked to remove them, and if it was the last owner the
    /// longest-standing admin (or member) becomes owner.
    fn depart(&mut self, account: AccountId, change: MembershipChange, now_ms: i64) -> Handled {
        let Some(member) = self.members.remove(&account) else {
            // Deactivating someone who is not here is nothing to do.
            return if change == MembershipChange::Deactivated { Ok(Vec::new()) } else { Err(Refusal::NotMember) };
        };
        for device in &member.devices {
            self.readers.remove(device);
            self.departed.insert(device.clone(), account.clone());
        }
        let mut out = vec![Effect::Append(self.append(EntryBody::Membership { account, change }, now_ms))];
        let no_owner = !self.members.values().any(|m| m.role == Role::Owner);
        if member.role == Role::Owner && no_owner && self.kind != Kind::Direct {
            let heir = self
                .members
                .iter()
                .filter(|(_, m)| !m.external)
                .max_by_key(|(_, m)| (m.role, std::cmp::Reverse(m.since)))
                .map(|(a, _)| a.clone());
            if let Some(heir) = heir {
                self.members.get_mut(&heir).expect("heir is a member").role = Role::Owner;
                let change = MembershipChange::RoleChanged { role: Role::Owner, by: None };
                out.push(Effect::Append(self.append(EntryBody::Membership { account: heir, change }, now_ms)));
            }
        }
        out.extend(self.regroup(now_ms));
        Ok(out)
    }

    fn set_role(&mut self, by: AccountId, account: AccountId, role: Role, now_ms: i64) -> Handled {
        let by_role = self.role_of(&by)?;
        let current = self.role_of(&account)?;
        let external = self.members.get(&account).is_some_and(|m| m.external);
        // People of another organisation take part; they do not govern.
        if !roles::may_set_roles(self.kind, by_role) || (external && role >= Role::Admin) {
            return Err(Refusal::NotAllowed);
        }
        if current == role {
            return Ok(Vec::new());
        }
        let owners = self.members.values().filter(|m| m.role == Role::Owner).count();
        if current == Role::Owner && owners == 1 {
            return Err(Refusal::LastOwner);
        }
        self.members.get_mut(&account).expect("checked above").role = role;
        let change = MembershipChange::RoleChanged { role, by: Some(by) };
        Ok(vec![Effect::Append(self.append(EntryBody::Membership { account, change }, now_ms))])
    }

    fn govern(&mut self, by: AccountId, change: SettingChange, now_ms: i64) -> Handled {
        let role = self.role_of(&by)?;
        if !roles::may_govern(self.kind, role) {
            return Err(Refusal::NotAllowed);
        }
        let (setting, on) = match change {
            SettingChange::Locked(on) => {
                self.open()?;
                (&mut self.locked, on)
            }
            // An archived conversation is only unarchived, or left.
            SettingChange::Archived(on) => (&mut self.archived, on),
        };
        if *setting == on {
            return Ok(Vec::new());
        }
        *setting = on;
        Ok(vec![Effect::Append(self.append(EntryBody::Setting { by, change }, now_ms))])
    }

    fn device_added(&mut self, account: AccountId, device: DeviceId) -> Handled {
        if self.owner_of(&device).is_some_and(|owner| *owner != account) {
            return Err(Refusal::UnknownDevice);
        }
        let member = self.members.get_mut(&account).ok_or(Refusal::NotMember)?;
        if !member.devices.insert(device.clone()) {
            return Ok(Vec::new());
        }
        let since = member.since;
        self.start_reading(&device, since);
        Ok(Vec::new())
    }

    fn device_removed(&mut self, account: AccountId, device: DeviceId, now_ms: i64) -> Handled {
        let member = self.members.get_mut(&account).ok_or(Refusal::NotMember)?;
        if !member.devices.remove(&device) {
            return Ok(Vec::new());
        }
        self.readers.remove(&device);
        self.departed.insert(device.clone(), account);
        Ok(self.regroup(now_ms))
    }

    fn key_package(&mut self, device: DeviceId, key_package: String, now_ms: i64) -> Handled {
        if self.encryption != Encryption::Mls {
            return Err(Refusal::NotAllowed);
        }
        if self.owner_of(&device).is_none() {
            return Err(Refusal::NotMember);
        }
        if key_package.len() > MAX_KEY_PACKAGE {
            return Err(Refusal::Malformed);
        }
        // One request per device at a time: asking again while the first
        // waits would only fill the log.
        if self.group.is_pending(&device) {
            return Err(Refusal::Group(CommitRefusal::UnneededKeyPackage));
        }
        if self.group.pending_count() >= MAX_WAITING_DEVICES {
            return Err(Refusal::TooManyWaiting);
        }
        let deliveries = self.group.key_package(device.clone(), key_package);
        if let [Delivery::Rejected { reason, .. }] = deliveries.as_slice() {
            return Err(Refusal::Group(*reason));
        }
        // The first device creates the group and reads from here on.
        if deliveries.iter().any(|d| matches!(d, Delivery::CreateGroup { .. })) {
            self.readers.insert(device, self.last_seq + 1);
        }
        Ok(self.deliver(deliveries, now_ms))
    }

    fn commit(&mut self, device: DeviceId, commit: ProposedCommit<DeviceId>, now_ms: i64) -> Handled {
        if self.encryption != Encryption::Mls {
            return Err(Refusal::NotAllowed);
        }
        if self.owner_of(&device).is_none() {
            return Err(Refusal::NotMember);
        }
        let devices = self.member_devices();
        if let Err(refusal) = self.group.check(&device, &commit, |d| devices.contains(d)) {
            return Err(Refusal::Group(refusal));
        }
        let deliveries = self.group.commit(device, commit, |d| devices.contains(d));
        Ok(self.deliver(deliveries, now_ms))
    }

    /// Whether the committer has left work undone past its patience, so
    /// that the next device of the group to show up takes over.
    pub fn committer_overdue(&self, now_ms: i64) -> bool {
        self.work_since.is_some_and(|since| now_ms.saturating_sub(since) > COMMITTER_PATIENCE_MS)
    }

    fn present(&mut self, device: DeviceId, now_ms: i64) -> Vec<Effect> {
        if !self.committer_overdue(now_ms) || self.owner_of(&device).is_none() {
            return Vec::new();
        }
        let deliveries = self.group.reassign(&device);
        if deliveries.is_empty() {
            return Vec::new();
        }
        // The new committer gets its own patience.
        self.work_since = Some(now_ms);
        self.deliver(deliveries, now_ms)
    }

    /// The group is asked to drop every device no longer a member's.
    fn regroup(&mut self, now_ms: i64) -> Vec<Effect> {
        if self.encryption != Encryption::Mls {
            return Vec::new();
        }
        let devices = self.member_devices();
        let deliveries = self.group.membership(|d| devices.contains(d));
        self.deliver(deliveries, now_ms)
    }

    /// The delivery service's messages as effects. What it sends every
    /// member (a commit, a request to the committer) goes once into the
    /// log, so that every device reads requests and commits in one order;
    /// what is for one device (creating the group, a Welcome and what is
    /// still to be done for the device just welcomed) goes to its inbox. A
    /// welcomed device reads the log from the entry after the commit that
    /// added it.
    fn deliver(&mut self, deliveries: Vec<Delivery<DeviceId>>, now_ms: i64) -> Vec<Effect> {
        let mut out = Vec::new();
        let mut logged: Option<Seq> = None;
        let mut requests_logged: BTreeSet<(bool, DeviceId)> = BTreeSet::new();
        let mut welcomed: BTreeSet<DeviceId> = BTreeSet::new();
        for delivery in deliveries {
            match delivery {
                Delivery::Commit { from, epoch, commit, .. } => {
                    if logged.is_none() {
                        let entry = self.append(EntryBody::Commit { from, epoch, commit }, now_ms);
                        logged = Some(entry.seq);
                        out.push(Effect::Append(entry));
                    }
                }
                Delivery::Welcome { ref to, .. } => {
                    self.readers.insert(to.clone(), logged.map_or(self.last_seq + 1, |s| s + 1));
                    welcomed.insert(to.clone());
                    out.push(Effect::ToDevice(delivery));
                }
                Delivery::AddRequest { ref to, .. } | Delivery::RemoveRequest { ref to, .. }
                    if welcomed.contains(to) =>
                {
                    out.push(Effect::ToDevice(delivery))
                }
                Delivery::AddRequest { member, key_package, committer, .. } => {
                    if requests_logged.insert((true, member.clone())) {
                        let body = EntryBody::AddRequest { member: self.group_device(&member), key_package, committer };
                        out.push(Effect::Append(self.append(body, now_ms)));
                    }
                }
                Delivery::RemoveRequest { member, committer, .. } => {
                    if requests_logged.insert((false, member.clone())) {
                        // The server signs its own proposal into the entry
                        // as it stores it (it holds the key; see
                        // `DeliveryService::removal_at`).
                        let body =
                            EntryBody::RemoveRequest { member: self.group_device(&member), committer, proposal: None };
                        out.push(Effect::Append(self.append(body, now_ms)));
                    }
                }
                Delivery::Application { .. } => unreachable!("messages go to the log, not through the service"),
                other => out.push(Effect::ToDevice(other)),
            }
        }
        // Devices the commit removed read nothing more, and are forgotten
        // once out of the group.
        let group = self.group.members();
        let plain = self.encryption == Encryption::Plain;
        self.readers.retain(|d, _| plain || group.contains(d));
        self.departed.retain(|d, _| group.contains(d));
        self.work_since = if self.group.has_outstanding() { Some(self.work_since.unwrap_or(now_ms)) } else { None };
        out
    }

    fn member_devices(&self) -> BTreeSet<DeviceId> {
        self.members.values().flat_map(|m| m.devices.iter().cloned()).collect()
    }

    fn append(&mut self, body: EntryBody, at_ms: i64) -> Entry {
        self.last_seq += 1;
        Entry { seq: self.last_seq, at_ms, body }
    }
}

fn within(window_ms: Option<i64>, at_ms: i64, now_ms: i64) -> Result<(), Refusal> {
    match window_ms {
        Some(window) if now_ms.saturating_sub(at_ms) > window => Err(Refusal::TooLate),
        _ => Ok(()),
    }
}
