//! A headless participant's media: a str0m peer connection to the SFU that
//! publishes synthetic audio, camera (optionally simulcast) and screen
//! share, answers the server's offers, and records everything it receives.
//! [`MediaSession`] is that participant as a sans-IO state machine (the
//! SFU's simulated network runs it); [`MediaParticipant`] runs one over UDP
//! for tests, bots and `conclave loadtest`.

pub mod janus;
mod session;
mod stats;
pub mod synthetic;
mod turn;

/// A bad network for a participant (`MediaOptions::impairment`).
pub use conclave_impair::{Impairment, Outage, PathImpairment};
pub use session::{Datagram, MediaOptions, MediaParticipant, MediaSession, RelayOptions, SessionError};
pub use stats::{MediaStats, TrackStats};
pub use turn::allocate_relay;
