//! Meetings as things people schedule and join: their secrets, and the
//! way in (`joining.rs`). While people are in a meeting it lives in the
//! runtime of `crate::live`.

pub mod invitations;
pub mod joining;
pub mod secrets;
