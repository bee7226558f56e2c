//! A team conversation as the server keeps it: a direct message, a private
//! group or an organisation channel, as a deterministic state machine.
//!
//! The server is a blind relay for what is said and the authority on who
//! is in the conversation. [`Conversation`] decides membership (kinds and
//! roles, `roles.rs`), orders everything into one log that every device
//! reads in the same order (messages, deletions, membership, settings and
//! the MLS commits between them), says which device may read which part
//! of it, and drives the conversation's MLS group through the delivery
//! service (`conclave-delivery`), whose members are devices.
//!
//! What the rules guarantee, and the simulation checks after every step:
//! - a device reads the log only while its account is a member, and in an
//!   encrypted conversation only from the commit that added it to the
//!   group: a member who leaves or is removed reads nothing more from the
//!   moment they are out;
//! - a message is accepted only in the group's current epoch and never
//!   while a removal waits for its commit, so nothing is encrypted to a
//!   device that is no longer a member's;
//! - a message is appended once per device and client id, however often
//!   it is retried (the store says whether it holds one already, and its
//!   unique index decides between two retries racing).
//!
//! It holds no message: the log lives in the store, and the facts a
//! request needs about an earlier message (its author, its age) come in
//! with the request as a [`Target`]. The whole state serialises, so a
//! conversation is stored between requests and served by any node; the
//! log's length is kept beside it, so a message changes nothing stored but
//! the log.

mod conversation;
pub mod roles;

pub use conversation::{
    AccountId, CallStarted, Conversation, ConversationPolicy, DeviceId, Effect, Encryption, Entry, EntryBody, Handled,
    Input, Member, MembershipChange, Newcomer, OutgoingMessage, Reference, Refusal, Seq, SettingChange, Target,
    COMMITTER_PATIENCE_MS, MAX_CLIENT_ID_LEN, MAX_KEY_PACKAGE, MAX_WAITING_DEVICES,
};
pub use roles::{Kind, Role};
