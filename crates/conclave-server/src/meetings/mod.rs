//! Live meetings: join tickets, the hub of meeting actors and the signaling
//! WebSocket that connects participants to them.

pub mod actor;
pub mod credentials;
pub mod hub;
pub mod secrets;
pub mod signaling;
pub mod tickets;

pub use hub::MeetingHub;
