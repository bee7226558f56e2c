//! Device credentials: the server's statement that a device's MLS signature
//! key speaks for a participant (and, when signed in, for an account) in one
//! meeting. The server signs it with its credential authority key; every
//! member checks it against the leaf it finds in the group, so nobody can
//! pose as someone else, and remembers each account's device keys, so a new
//! key for an account is shown to everyone.
//!
//! The signed bytes are the exact JSON text of [`DeviceCredential`] (carried
//! as a string, never re-serialised), prefixed by [`SIGNING_CONTEXT`].

use serde::{Deserialize, Serialize};

use crate::signal::ParticipantId;

/// Domain separation: a credential signature can never be mistaken for any
/// other signature the authority key makes.
pub const SIGNING_CONTEXT: &[u8] = b"conclave device credential v1\0";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCredential {
    /// The meeting it is valid in (participant ids are per meeting).
    pub meeting_id: String,
    pub participant_id: ParticipantId,
    /// The account, absent for guests.
    pub user_id: Option<String>,
    pub display_name: String,
    /// The device's Ed25519 public signature key, base64.
    pub signature_key: String,
    pub issued_at_ms: i64,
}

/// A [`DeviceCredential`] with the authority's Ed25519 signature; its JSON
/// bytes are the identity of the device's MLS BasicCredential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCredential {
    /// The credential's JSON text, exactly as signed.
    pub body: String,
    /// base64 Ed25519 signature over `SIGNING_CONTEXT || body`.
    pub signature: String,
}

impl SignedCredential {
    /// What the authority signs.
    pub fn signing_input(body: &str) -> Vec<u8> {
        [SIGNING_CONTEXT, body.as_bytes()].concat()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a credential serialises")
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// The credential inside, read without checking the signature.
    pub fn credential(&self) -> Option<DeviceCredential> {
        serde_json::from_str(&self.body).ok()
    }
}
