//! Team messaging over REST: conversations (direct messages, private
//! groups, organisation channels), their log as each device reads it, and
//! the MLS handshake between a conversation's devices.
//!
//! The server reads none of what is said: a message's `content` is MLS
//! ciphertext (base64) in an encrypted conversation. What it does read is
//! what it must decide on: who is a member, and what a message refers to
//! (a reply, a thread, an edit, a reaction), so that it can check it.

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// A position in a conversation's log, from 1.
pub type Seq = u64;

/// Longest name of a group or channel, in characters.
pub const MAX_CONVERSATION_NAME_CHARS: usize = 80;
/// Most people added in one request (a conversation may grow past it).
pub const MAX_ADDED_AT_ONCE: usize = 500;
/// Most entries one page of the log holds.
pub const MAX_ENTRIES_PER_PAGE: u32 = 500;

/// What a conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    /// Two people; one conversation per pair.
    Direct,
    /// A private group: seen only by its members.
    Group,
    /// An organisation channel: listed to the organisation.
    Channel,
}

/// A member's role in a conversation, in rising rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConversationRole {
    Member,
    Admin,
    Owner,
}

/// What a message refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "kind", content = "seq", rename_all = "snake_case")]
pub enum Reference {
    /// Quotes an earlier message.
    Reply(Seq),
    /// A reply in the thread under this root message.
    Thread(Seq),
    /// New content for the author's own earlier message.
    Edit(Seq),
    /// An emoji reaction (the emoji itself encrypted).
    Reaction(Seq),
}

impl Reference {
    pub fn target(self) -> Seq {
        match self {
            Self::Reply(s) | Self::Thread(s) | Self::Edit(s) | Self::Reaction(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum MembershipChange {
    /// In the conversation from its start.
    Founded {
        role: ConversationRole,
    },
    Joined,
    Added {
        by: String,
    },
    Left,
    Removed {
        by: String,
    },
    /// Their account was deactivated by the organisation.
    Deactivated,
    /// The organisation put them in: they joined `group` of its identity
    /// provider, which the organisation maps to this channel.
    AssignedByGroup {
        group: String,
    },
    /// The organisation took them out: they left `group`.
    UnassignedByGroup {
        group: String,
    },
    /// `by` is absent when the conversation gave the role itself (an owner
    /// left, and the longest-standing admin took over).
    RoleChanged {
        role: ConversationRole,
        by: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "setting", content = "on", rename_all = "snake_case")]
pub enum SettingChange {
    Locked(bool),
    Archived(bool),
}

/// One entry of a conversation's log. Accounts and devices are named by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EntryBody {
    /// A message: MLS ciphertext (base64), or text in a plain conversation.
    Message {
        from: String,
        device: String,
        client_id: String,
        /// The MLS epoch it was encrypted in.
        epoch: Option<u64>,
        /// Base64: the MLS ciphertext, or in a plain conversation the
        /// payload itself (a `MessagePayload`, JSON).
        content: String,
        reference: Option<Reference>,
        /// The same message sealed under its epoch's history key, for
        /// devices added later (see `conclave-e2ee`'s `history.rs`).
        history: Option<String>,
        /// Between devices, not for people (history keys): never unread,
        /// never replied to.
        #[serde(default)]
        control: bool,
        /// The files it shares (uploaded first); deleting the message
        /// deletes their ciphertext.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<String>,
    },
    /// Deletes the message `target` for everyone.
    Deleted {
        target: Seq,
        by: String,
    },
    /// Where a message deleted for everyone was: its content is gone from
    /// the server (and the entry keeps its place in the order).
    Erased,
    /// An MLS commit (base64), in the order the server accepted it.
    Commit {
        from: String,
        epoch: u64,
        commit: String,
    },
    /// The server asks `committer` to add `member` with this KeyPackage
    /// (base64); every device reads it, to hold the commit to it.
    AddRequest {
        member: GroupDevice,
        key_package: String,
        committer: String,
    },
    /// The server asks `committer` to remove `member` from the group.
    RemoveRequest {
        member: GroupDevice,
        committer: String,
        /// The server's MLS proposal to remove it (base64), signed as the
        /// group's external sender, for the epoch the log is at here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proposal: Option<String>,
    },
    Membership {
        account: String,
        change: MembershipChange,
    },
    Setting {
        by: String,
        change: SettingChange,
    },
    /// `by` started a call (a meeting that lets the conversation's members
    /// in without its waiting room); its link travels encrypted, as a message.
    Call {
        meeting_id: String,
        by: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct Entry {
    pub seq: Seq,
    pub at_ms: i64,
    pub body: EntryBody,
}

/// Start a conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateConversationRequest {
    pub kind: ConversationKind,
    /// A group's or channel's name (none for a direct message).
    #[serde(default)]
    pub name: Option<String>,
    /// Account ids of the others in it from the start (a direct message:
    /// exactly one).
    #[serde(default)]
    pub members: Vec<String>,
    /// End-to-end encrypted (the default); plain only where the
    /// organisation's policy allows it.
    #[serde(default = "yes")]
    pub encrypted: bool,
}

fn yes() -> bool {
    true
}

/// A member as everyone in the conversation sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ConversationMember {
    pub user_id: String,
    pub display_name: String,
    pub role: ConversationRole,
    /// From another organisation than the conversation's.
    pub external: bool,
    /// The member's devices in the conversation.
    pub devices: Vec<String>,
    /// The last entry they have read (their read receipt).
    pub read_seq: Seq,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct Conversation {
    pub id: String,
    pub org_id: String,
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub encrypted: bool,
    pub locked: bool,
    pub archived: bool,
    /// The latest entry of the log.
    pub last_seq: Seq,
    /// The MLS group's epoch, once it exists.
    pub epoch: Option<u64>,
    /// The caller's role.
    pub role: ConversationRole,
    pub members: Vec<ConversationMember>,
    /// The call started from the conversation, while someone is in it.
    #[serde(default)]
    pub call: Option<ConversationCall>,
}

/// A call going on, started from the conversation: its link travels
/// encrypted, as a message; this says that it is live and who is in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ConversationCall {
    pub meeting_id: String,
    /// Who started it, by account.
    pub started_by: String,
    pub started_at_ms: i64,
    /// Everyone in the meeting now, by the name they joined with.
    pub in_call: Vec<CallAttendee>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct CallAttendee {
    /// Their account, when signed in (a guest with the link has none).
    pub user_id: Option<String>,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ConversationSummary {
    pub id: String,
    pub kind: ConversationKind,
    pub name: Option<String>,
    pub encrypted: bool,
    pub archived: bool,
    pub last_seq: Seq,
    pub role: ConversationRole,
    /// The last entry the caller has read.
    pub read_seq: Seq,
    /// Messages from others after it.
    pub unread: u64,
    /// The caller muted it (no notifications; still counted as unread).
    pub muted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ConversationList {
    pub conversations: Vec<ConversationSummary>,
}

/// The caller has read the log up to `seq` (it never moves back).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MarkReadRequest {
    pub seq: Seq,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MuteRequest {
    pub muted: bool,
}

/// Send a message from one of the caller's devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    pub device_id: String,
    /// Chosen by the device, 1 to 64 characters: sending it again is a
    /// retry, answered with the first one's sequence number.
    pub client_id: String,
    /// The MLS epoch it was encrypted in (encrypted conversations).
    #[serde(default)]
    pub epoch: Option<u64>,
    pub content: String,
    #[serde(default)]
    pub reference: Option<Reference>,
    /// The same message sealed under its epoch's history key, base64, for
    /// devices added later (at most as long as `content`'s limit).
    #[serde(default)]
    pub history: Option<String>,
    /// Between devices, not for people (history keys): never counted as
    /// unread, never referred to.
    #[serde(default)]
    pub control: bool,
    /// Files it shares: uploaded to this conversation by the caller,
    /// completed, and not shared by another message yet.
    #[serde(default)]
    pub files: Vec<String>,
}

/// What a message's plaintext is, inside the encryption (the server never
/// sees it): text, a file, or the history keys a member gives a device it
/// added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
// Built, sealed and dropped one at a time: the size of the file variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum MessagePayload {
    /// Text in the Markdown subset of `markup.rs`.
    Text {
        text: String,
        /// The accounts it mentions (`markup::mentions` of the text).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<String>,
    },
    /// Every history key the sender holds (base64), by epoch (in decimal:
    /// JSON's keys are text).
    HistoryKeys { keys: std::collections::BTreeMap<String, String> },
    /// A file (and, for a picture or video, a small preview of it made on
    /// the sender's device), with an optional caption. Both files are among
    /// the message's `files`.
    File {
        file: crate::file::SharedFile,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thumbnail: Option<crate::file::SharedFile>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct MessageAccepted {
    pub seq: Seq,
    /// It was a retry of a message already in the log.
    pub duplicate: bool,
}

/// A page of the log as one device may read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct EntryPage {
    pub entries: Vec<Entry>,
    /// The first entry this device may read (none: not yet, or no more).
    pub readable_from: Option<Seq>,
    /// The latest entry of the log.
    pub last_seq: Seq,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AddMembersRequest {
    pub user_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SetConversationRoleRequest {
    pub role: ConversationRole,
}

/// Change what admins govern; absent fields stay as they are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ConversationSettingsUpdate {
    #[serde(default)]
    pub locked: Option<bool>,
    #[serde(default)]
    pub archived: Option<bool>,
}

/// One of the caller's devices asks to be added to the conversation's group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyPackageRequest {
    pub device_id: String,
    /// The MLS KeyPackage, base64.
    pub key_package: String,
}

/// An MLS commit from one of the caller's devices.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    pub device_id: String,
    /// The epoch it was built on.
    pub epoch: u64,
    /// base64.
    pub commit: String,
    #[serde(default)]
    pub welcome: Option<String>,
    /// Devices it adds and removes.
    #[serde(default)]
    pub added: Vec<String>,
    #[serde(default)]
    pub removed: Vec<String>,
}

/// A device of the group and the account it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct GroupDevice {
    pub device_id: String,
    pub user_id: String,
}

/// A message of the MLS handshake for one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Handshake {
    /// This device is the first: it creates the group.
    CreateGroup,
    /// What is still to be done in the group this device was just welcomed
    /// to (later requests are in the log).
    AddRequest { member: GroupDevice, key_package: String, committer: String },
    RemoveRequest {
        member: GroupDevice,
        committer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proposal: Option<String>,
    },
    /// This device was added: join with this Welcome (base64); it reads
    /// the log from `readable_from`.
    Welcome { epoch: u64, welcome: String, committer: String, members: Vec<GroupDevice>, readable_from: Seq },
}

/// A handshake message waiting in a device's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct InboxMessage {
    /// Increasing per device; ask for those after the last one taken.
    pub id: i64,
    pub conversation_id: String,
    pub handshake: Handshake,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct InboxPage {
    pub messages: Vec<InboxMessage>,
}

/// What the server tells a device over its live connection
/// (`GET /api/v1/me/devices/{device_id}/live`, a WebSocket), as it happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A conversation's log grew to `last_seq`. `entries` are the new
    /// entries themselves (as `GET …/entries` gives them) when this device
    /// may read them all and they are small; otherwise, or when they do not
    /// follow the last entry the device has, it reads the log.
    Changed {
        conversation_id: String,
        last_seq: Seq,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        entries: Vec<Entry>,
    },
    /// This device's inbox has something new.
    Inbox,
    /// Someone is typing in a conversation (for a few seconds).
    Typing { conversation_id: String, user_id: String },
    /// Someone read a conversation up to `seq`.
    Read { conversation_id: String, user_id: String, seq: Seq },
    /// Events were missed (the device fell behind): sync everything.
    Resync,
    /// A message this connection sent ([`LiveCommand::Send`]) is in the
    /// log, durable: at `seq`, or already was (`duplicate`, a retry of
    /// `client_id`), as `POST …/messages` answers `201` or `200`.
    Sent { conversation_id: String, client_id: String, seq: Seq, duplicate: bool },
    /// A message this connection sent was refused, with the problem
    /// `POST …/messages` would have answered; nothing of it was kept.
    NotSent { conversation_id: String, client_id: String, problem: crate::problem::Problem },
}

/// What a device tells the server over its live connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LiveCommand {
    /// The person is typing in a conversation.
    Typing { conversation_id: String },
    /// A message from this connection's device, as `POST
    /// /api/v1/conversations/{id}/messages` takes it, without a request
    /// of its own (a frame as large as the API's request bodies): answered
    /// by [`LiveEvent::Sent`] or [`LiveEvent::NotSent`] with its
    /// `client_id`, in whatever order the sends finish. At most [`LIVE_SENDS_PER_SECOND`] a second, and
    /// [`LIVE_SENDS_IN_FLIGHT`] unanswered at once; past either it is
    /// refused (`429`), never queued.
    Send { conversation_id: String, message: SendMessageRequest },
}

/// Messages a device may send a second over its live connection (and
/// twice as many at once): far beyond a person, enough for a busy bot,
/// short of one connection taking the server for itself.
pub const LIVE_SENDS_PER_SECOND: u32 = 1_000;

/// Sends a live connection may have unanswered at once.
pub const LIVE_SENDS_IN_FLIGHT: usize = 256;

/// Typing notices a device may send per conversation: one per this many
/// milliseconds (apps send one every few seconds while the person types).
pub const TYPING_EVERY_MS: u64 = 2_000;

/// `POST /api/v1/conversations/{id}/guests`: someone from outside, into
/// this group or channel, by a link and a one-time code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct InviteGuestRequest {
    /// Where the link goes; the guest's account has this address.
    pub email: String,
}

/// A guest invitation, as its maker sees it once: the link for the guest's
/// email, and the code to give them another way (it is never shown again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct GuestInvitation {
    pub invitation_id: String,
    pub conversation_id: String,
    pub email: String,
    /// `<public URL>/guest#<token>`: the token stays out of server logs.
    pub invite_url: String,
    /// Eight digits.
    pub code: String,
    pub expires_at_ms: i64,
}

/// `POST /api/v1/me/guest-invitations`: a guest already signed in takes an
/// invitation into another conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AcceptGuestInvitationRequest {
    /// The token from the link.
    pub token: String,
    /// The code the inviter gave.
    pub code: String,
}

/// `POST /api/v1/auth/guest-signup`: a guest takes an invitation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GuestSignupRequest {
    /// The token from the link.
    pub token: String,
    /// The code the inviter gave.
    pub code: String,
    pub display_name: String,
    pub password: String,
}

/// Someone of the caller's organisation to start a conversation with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct Person {
    pub user_id: String,
    pub display_name: String,
    pub email: String,
}

/// `GET /api/v1/people?q=`: the organisation's active people whose name or
/// address contains the query, by name, at most [`MAX_PEOPLE_FOUND`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct PeopleList {
    pub people: Vec<Person>,
}

pub const MAX_PEOPLE_FOUND: usize = 20;

/// A channel of the organisation, as its channel browser lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ChannelListing {
    pub id: String,
    pub name: Option<String>,
    pub encrypted: bool,
    /// Joined only by being added (a team channel governed by admins).
    pub locked: bool,
    pub archived: bool,
    pub member_count: u64,
    /// The caller is in it.
    pub joined: bool,
}

/// `GET /api/v1/channels`: the caller's organisation's channels, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ChannelList {
    pub channels: Vec<ChannelListing>,
}
