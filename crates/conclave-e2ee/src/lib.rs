//! End-to-end encryption for Conclave meetings.
//!
//! - [`sframe`]: SFrame (RFC 9605), the per-frame encryption of media (and
//!   of anything else sent in small messages), with every cipher suite of
//!   the RFC and the published test vectors passing.
//! - [`keys`]: per-sender SFrame base keys and key ids derived from an MLS
//!   epoch's exporter secret (RFC 9605 §5.2), so the key changes whenever
//!   the group's membership does, and the server never holds one.
//!
//! - [`mls`]: the meeting's MLS group (RFC 9420) behind the small
//!   [`mls::GroupMember`] trait, implemented on openmls.
//! - [`session`]: one device's group membership and SFrame keys together.
//! - [`credential`]: checking the server's device credentials, and the
//!   device keys remembered per account.
//! - [`agent`]: the device's side of the server's delivery service, shared
//!   by native participants and the browser's wasm module.
//! - [`conversations`]: one device's end-to-end encrypted conversations, as
//!   a state machine that names the calls to the server it needs, driven by
//!   the native SDK and by the browser's worker alike.
//!
//! Pure computation: no IO and no clock; randomness comes from the crypto
//! provider. The same code is meant to run natively and in the browser.

pub mod agent;
pub mod conversations;
pub mod credential;
pub mod file;
pub mod group;
pub mod history;
pub mod keys;
pub mod mls;
pub mod search;
pub mod session;
pub mod sframe;

pub use sframe::{CipherSuite, SframeError, SframeReceiver, SframeSender};
