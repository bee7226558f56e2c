//! What a device holds of its conversations, as it hands them to the app
//! showing them: the messages it opened, what happened in a conversation,
//! what a search on the device found. The server never sees these (it
//! holds ciphertext only); they are the shapes at a device's boundary:
//! `conclave-e2ee` makes them, the Rust SDK returns them, and the browser's
//! E2EE worker posts them to the page as JSON, whose TypeScript types are
//! generated from here like every wire type's.

use crate::conversation::{MembershipChange, Reference, Seq};
use crate::file::SharedFile;
use serde::{Deserialize, Serialize};

/// Something that happened in a conversation, as this device reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
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
    /// A person seen before in the group is here on a device key never
    /// seen for them: a new device of theirs, or someone else holding the
    /// account. Shown to the person, with the key to compare.
    NewDevice {
        conversation_id: String,
        device: String,
        display_name: String,
        fingerprint: String,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct Attached {
    pub file: SharedFile,
    pub thumbnail: Option<SharedFile>,
}

/// A message found, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct Found {
    pub conversation_id: String,
    pub seq: Seq,
    pub at_ms: i64,
    pub from_user: String,
    /// The message's text as it reads now (its latest edit).
    pub text: String,
    /// The thread it is a reply in, if any: a jump opens that thread.
    pub thread: Option<Seq>,
}
