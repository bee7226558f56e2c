//! The Conclave media plane: a selective forwarding unit built on str0m.
//!
//! [`Sfu`] is a deterministic state machine with no IO: commands from
//! meetings (admit, rights, offer, answer, subscribe, leave), datagrams
//! from the shared UDP port, and time go in; datagrams to send and events
//! for meetings come out. [`MediaPlane`] is the thin tokio driver that owns
//! the socket.
//!
//! Invariants:
//! - a participant has a media session only between `Admit` and `Leave`;
//!   datagrams from anyone else are dropped before any parsing but STUN's;
//! - media is written to a subscriber only for tracks it receives an
//!   m-line for and, for video, only while the track is on its screen;
//! - a source the room has muted or stopped is never forwarded;
//! - a failure or panic in one participant's `Rtc` closes that session alone.

mod batch_send;
mod demux;
mod driver;
pub mod layers;
mod peer;
mod sfu;
pub mod speaker;

pub use demux::{is_stun, stun_local_ufrag};
pub use driver::MediaPlane;
pub use peer::Rights;
pub use sfu::{Command, FrameTap, Sfu, SfuConfig, SfuEvent, SfuStats};

/// A meeting's id, shared cheaply between the sessions of its participants.
pub type MeetingKey = std::sync::Arc<str>;
