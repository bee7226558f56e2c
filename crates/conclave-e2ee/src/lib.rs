//! End-to-end encryption for Conclave meetings.
//!
//! - [`sframe`]: SFrame (RFC 9605), the per-frame encryption of media (and
//!   of anything else sent in small messages), with every cipher suite of
//!   the RFC and the published test vectors passing.
//! - [`keys`]: per-sender SFrame base keys and key ids derived from an MLS
//!   epoch's exporter secret (RFC 9605 §5.2), so the key changes whenever
//!   the group's membership does, and the server never holds one.
//!
//! Pure computation: no IO, no clock, no randomness beyond what the caller
//! passes in; the same code runs natively and in the browser (wasm32).

pub mod keys;
pub mod sframe;

pub use sframe::{CipherSuite, SframeError, SframeReceiver, SframeSender};
