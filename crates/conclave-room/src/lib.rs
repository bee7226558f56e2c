//! A meeting as a deterministic state machine, in the sans-IO style of
//! str0m and quinn-proto: the driver feeds [`Input`]s with the current time
//! to [`Room::handle`] and carries out the [`Effect`]s it returns (messages
//! to participants, connections to close, audit events). [`Room::next_deadline`]
//! says when to call again with [`Input::Tick`] if nothing else happens.
//!
//! The room never reads a clock, never does IO and never panics on input, so
//! the same code runs in the server's per-meeting task, in the seeded
//! simulation, and in property tests.
//!
//! Invariants it keeps (checked after every step of the simulation):
//! - only admitted participants receive anything of the meeting (people,
//!   chat, settings, activity);
//! - a removed participant never gets back in, under any name or link;
//! - a live meeting has exactly one host, who is admitted, or it has ended;
//! - settings the organisation locked are never overridden.

mod chat;
pub mod delivery;
mod member;
mod room;
mod settings;

pub use member::{Identity, Presence};
pub use room::{Effect, Input, MediaRights, Outcome, Phase, Room, RoomConfig};
pub use settings::PolicyView;

/// How long a dropped connection keeps its seat.
pub const RECONNECT_GRACE_MS: i64 = 30_000;
/// Wrong host-key attempts before a participant may try no more.
pub const MAX_HOST_KEY_ATTEMPTS: u32 = 5;
/// Reactions a participant may send.
pub const REACTIONS: &[&str] = &["👏", "👍", "❤️", "😂", "😮", "🎉"];
