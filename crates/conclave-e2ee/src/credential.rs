//! Checking the server's device credentials (see
//! [`conclave_proto::credential`]) and remembering which device keys each
//! account has used, so a new one is shown to everyone in the group.

use std::collections::{BTreeMap, BTreeSet};

use conclave_proto::credential::{DeviceCredential, SignedCredential};
use data_encoding::BASE64;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

pub use conclave_proto::device::fingerprint;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("not a Conclave device credential")]
    Malformed,
    #[error("the credential was not signed by this server's authority")]
    Forged,
    #[error("the credential vouches for another device key")]
    WrongKey,
}

/// The server's credential authority, by its Ed25519 public key (kept by
/// devices as the base64 text the server sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Authority(VerifyingKey);

impl TryFrom<String> for Authority {
    type Error = CredentialError;
    fn try_from(key: String) -> Result<Self, CredentialError> {
        Self::from_base64(&key)
    }
}

impl From<Authority> for String {
    fn from(authority: Authority) -> String {
        BASE64.encode(authority.0.as_bytes())
    }
}

impl Authority {
    /// The authority's public key, as MLS names the group's external sender.
    pub fn key(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn from_base64(key: &str) -> Result<Self, CredentialError> {
        let bytes = BASE64.decode(key.as_bytes()).map_err(|_| CredentialError::Malformed)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| CredentialError::Malformed)?;
        VerifyingKey::from_bytes(&bytes).map(Self).map_err(|_| CredentialError::Malformed)
    }

    /// Checks a leaf's credential: signed by this authority, for the key
    /// the leaf signs with. Whose device it is (the owner) is for the caller
    /// to hold against what the server said it would be.
    pub fn verify(&self, identity: &[u8], leaf_signature_key: &[u8]) -> Result<DeviceCredential, CredentialError> {
        let signed = SignedCredential::from_bytes(identity).ok_or(CredentialError::Malformed)?;
        let signature = BASE64.decode(signed.signature.as_bytes()).map_err(|_| CredentialError::Malformed)?;
        let signature = Signature::from_slice(&signature).map_err(|_| CredentialError::Malformed)?;
        self.0
            .verify(&SignedCredential::signing_input(&signed.body), &signature)
            .map_err(|_| CredentialError::Forged)?;
        let credential = signed.credential().ok_or(CredentialError::Malformed)?;
        if BASE64.decode(credential.signature_key.as_bytes()).ok().as_deref() != Some(leaf_signature_key) {
            return Err(CredentialError::WrongKey);
        }
        Ok(credential)
    }
}

/// Every device key seen for each account, kept by the device between
/// meetings (the browser stores it; native participants keep it in memory).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownDevices(BTreeMap<String, BTreeSet<String>>);

/// What seeing an account's device key says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// The first time this account is seen: nothing to compare with.
    FirstSeen,
    Known,
    /// The account was seen before with other keys only.
    NewDevice,
}

impl KnownDevices {
    pub fn observe(&mut self, user_id: &str, fingerprint: &str) -> Sighting {
        let keys = self.0.entry(user_id.to_owned()).or_default();
        let sighting = if keys.contains(fingerprint) {
            Sighting::Known
        } else if keys.is_empty() {
            Sighting::FirstSeen
        } else {
            Sighting::NewDevice
        };
        keys.insert(fingerprint.to_owned());
        sighting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn issue(authority: &SigningKey, device: &str, key: &[u8]) -> Vec<u8> {
        let body = serde_json::to_string(&DeviceCredential {
            owner: conclave_proto::credential::DeviceOwner::Account {
                user_id: "u-ada".into(),
                device_id: device.into(),
            },
            display_name: "Ada".into(),
            signature_key: BASE64.encode(key),
            issued_at_ms: 0,
        })
        .unwrap();
        let signature = BASE64.encode(&authority.sign(&SignedCredential::signing_input(&body)).to_bytes());
        SignedCredential { body, signature }.to_bytes()
    }

    fn authority_of(key: &SigningKey) -> Authority {
        Authority::from_base64(&BASE64.encode(key.verifying_key().as_bytes())).unwrap()
    }

    #[test]
    fn a_credential_holds_only_for_its_key_and_its_authority() {
        let server = SigningKey::from_bytes(&[1; 32]);
        let credential = issue(&server, "d1", b"device-key");
        let authority = authority_of(&server);
        assert_eq!(authority.verify(&credential, b"device-key").unwrap().display_name, "Ada");
        assert_eq!(authority.verify(&credential, b"other-key"), Err(CredentialError::WrongKey));
        let impostor = SigningKey::from_bytes(&[2; 32]);
        assert_eq!(authority_of(&impostor).verify(&credential, b"device-key"), Err(CredentialError::Forged));
        assert_eq!(authority.verify(b"ada", b"device-key"), Err(CredentialError::Malformed));
        // Kept by devices as text, and read back the same.
        let kept = serde_json::to_string(&authority).unwrap();
        assert_eq!(serde_json::from_str::<Authority>(&kept).unwrap(), authority);
    }

    #[test]
    fn a_changed_body_breaks_the_signature() {
        let server = SigningKey::from_bytes(&[1; 32]);
        let mut signed = SignedCredential::from_bytes(&issue(&server, "d1", b"k")).unwrap();
        signed.body = signed.body.replace("Ada", "Eve");
        assert_eq!(authority_of(&server).verify(&signed.to_bytes(), b"k"), Err(CredentialError::Forged));
    }

    #[test]
    fn a_new_key_for_a_known_account_is_a_new_device() {
        let mut known = KnownDevices::default();
        assert_eq!(known.observe("ada", "k1"), Sighting::FirstSeen);
        assert_eq!(known.observe("ada", "k1"), Sighting::Known);
        assert_eq!(known.observe("ada", "k2"), Sighting::NewDevice);
        assert_eq!(known.observe("ada", "k2"), Sighting::Known, "told once");
        assert_eq!(known.observe("grace", "k1"), Sighting::FirstSeen);
        assert_eq!(fingerprint(b"k").len(), 24);
    }
}
