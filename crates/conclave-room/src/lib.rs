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
//! - a seat is taken over only by the same account (or its resume token);
//! - a report tells the reporter nothing they could not see;
//! - nobody in the meeting can ban its owner;
//! - a live meeting has exactly one host, who is admitted, or it has ended;
//! - settings the organisation locked are never overridden.

mod chat;
mod member;
mod room;
mod settings;

pub use member::{Identity, Presence, Standing};
pub use room::{
    BanRecord, Effect, Input, MediaRights, Phase, ReportParties, ReportRefusal, RequestId, Room, RoomConfig,
};
pub use settings::PolicyView;

/// How long a dropped connection keeps its seat.
pub const RECONNECT_GRACE_MS: i64 = 30_000;
/// Wrong host-key attempts before a participant may try no more.
pub const MAX_HOST_KEY_ATTEMPTS: u32 = 5;
/// Reports one person may file in a meeting per window, and the meeting in all.
pub const REPORTS_PER_REPORTER: usize = 5;
pub const REPORTS_PER_MEETING: usize = 30;
pub const REPORT_WINDOW_MS: i64 = 3_600_000;
/// Knocks arriving within this long of the last one told are told together.
pub const KNOCK_WINDOW_MS: i64 = 1_000;
/// Least time between one participant's quality reports (apps send one
/// every 5 s; a little slack for timers that fire early).
pub const MIN_QUALITY_REPORT_GAP_MS: i64 = 4_000;
/// The waiting room's size when the organisation sets none, and how many
/// guests from one address it holds.
pub const DEFAULT_WAITING_CAPACITY: u32 = conclave_proto::org::DEFAULT_WAITING_ROOM_CAPACITY;
pub const WAITING_PER_ADDRESS: u32 = 5;
/// Reactions a participant may send (one list, shared with every client).
pub use conclave_proto::signal::REACTIONS;
