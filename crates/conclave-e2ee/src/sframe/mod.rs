//! SFrame (RFC 9605): a frame becomes `header || ciphertext || tag`, where
//! the header names the key (KID) and the counter (CTR) the nonce comes
//! from, and is authenticated with the frame.

mod aead;
mod context;
mod header;
mod suite;

pub use aead::{open, seal};
pub use context::{derive_key_salt, KeySalt, SframeReceiver, SframeSender, REPLAY_WINDOW};
pub use header::Header;
pub use suite::{CipherSuite, Hash};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SframeError {
    #[error("the SFrame header is malformed or truncated")]
    MalformedHeader,
    #[error("no key for key id {0}")]
    UnknownKey(u64),
    #[error("the frame does not authenticate (wrong key, or altered)")]
    Authentication,
    #[error("the frame repeats or is too old (counter {0})")]
    Replay(u64),
    #[error("the sender's counter is exhausted; a new key is needed")]
    CounterExhausted,
    #[error("the key is {got} bytes; this suite needs {want}")]
    KeyLength { got: usize, want: usize },
}
