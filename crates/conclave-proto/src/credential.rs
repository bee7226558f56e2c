//! Device credentials: the server's statement that a device's MLS
//! signature key belongs to an owner. A device of an account is registered
//! once and vouched for once, for every meeting and conversation the
//! account is in (the account lists its devices); a guest's device is
//! vouched for one meeting, as one participant. The server signs with its
//! credential authority key; every member checks the credential of every
//! leaf it finds in a group against it, and against the owner the server
//! said it would add, so nobody can pose as someone else; and each device
//! remembers every account's device keys, so a new one is shown.
//!
//! The signed bytes are the exact JSON text of [`DeviceCredential`] (carried
//! as a string, never re-serialised), prefixed by [`SIGNING_CONTEXT`].

use serde::{Deserialize, Serialize};

use crate::signal::ParticipantId;

/// Domain separation: a credential signature can never be mistaken for any
/// other signature the authority key makes. (Version 2: credentials name
/// an owner; version 1's were per meeting and are not accepted.)
pub const SIGNING_CONTEXT: &[u8] = b"conclave device credential v2\0";

/// Whose device a credential vouches for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeviceOwner {
    /// A device registered to an account: one credential for everything
    /// the account does, until the account revokes the device.
    Account { user_id: String, device_id: String },
    /// A guest's device, in one meeting, as one participant.
    Guest { meeting_id: String, participant_id: ParticipantId },
}

impl DeviceOwner {
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::Account { user_id, .. } => Some(user_id),
            Self::Guest { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCredential {
    pub owner: DeviceOwner,
    /// The owner's name when vouched for (an account's display name, or the
    /// guest's name in the meeting).
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
