//! Checking the server's device credentials (see
//! [`conclave_proto::credential`]) and remembering which device keys each
//! account has used, so a new one is shown to everyone in the meeting.

use std::collections::{BTreeMap, BTreeSet};

use conclave_proto::credential::{DeviceCredential, SignedCredential};
use data_encoding::{BASE64, HEXLOWER};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::Digest;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("not a Conclave device credential")]
    Malformed,
    #[error("the credential was not signed by this server's authority")]
    Forged,
    #[error("the credential vouches for another device key")]
    WrongKey,
    #[error("the credential is for another meeting")]
    OtherMeeting,
}

/// The server's credential authority, by its Ed25519 public key.
#[derive(Debug, Clone)]
pub struct Authority(VerifyingKey);

impl Authority {
    pub fn from_base64(key: &str) -> Result<Self, CredentialError> {
        let bytes = BASE64.decode(key.as_bytes()).map_err(|_| CredentialError::Malformed)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| CredentialError::Malformed)?;
        VerifyingKey::from_bytes(&bytes).map(Self).map_err(|_| CredentialError::Malformed)
    }

    /// Checks a leaf's credential: signed by this authority, for the key
    /// the leaf signs with, in `meeting_id` (when known).
    pub fn verify(
        &self,
        identity: &[u8],
        leaf_signature_key: &[u8],
        meeting_id: Option<&str>,
    ) -> Result<DeviceCredential, CredentialError> {
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
        if meeting_id.is_some_and(|m| m != credential.meeting_id) {
            return Err(CredentialError::OtherMeeting);
        }
        Ok(credential)
    }
}

/// A device key as people compare it: 20 hex digits of its SHA-256, in
/// groups of four.
pub fn fingerprint(signature_key: &[u8]) -> String {
    let digest = sha2::Sha256::digest(signature_key);
    let hex = HEXLOWER.encode(&digest[..10]);
    hex.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).expect("hex")).collect::<Vec<_>>().join(" ")
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

    fn issue(authority: &SigningKey, meeting: &str, key: &[u8]) -> Vec<u8> {
        let body = serde_json::to_string(&DeviceCredential {
            meeting_id: meeting.into(),
            participant_id: 7,
            user_id: Some("u-ada".into()),
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
    fn a_credential_holds_only_for_its_key_its_meeting_and_its_authority() {
        let server = SigningKey::from_bytes(&[1; 32]);
        let credential = issue(&server, "m1", b"device-key");
        let authority = authority_of(&server);
        assert_eq!(authority.verify(&credential, b"device-key", Some("m1")).unwrap().display_name, "Ada");
        assert_eq!(authority.verify(&credential, b"other-key", Some("m1")), Err(CredentialError::WrongKey));
        assert_eq!(authority.verify(&credential, b"device-key", Some("m2")), Err(CredentialError::OtherMeeting));
        let impostor = SigningKey::from_bytes(&[2; 32]);
        assert_eq!(authority_of(&impostor).verify(&credential, b"device-key", None), Err(CredentialError::Forged));
        assert_eq!(authority.verify(b"ada", b"device-key", None), Err(CredentialError::Malformed));
    }

    #[test]
    fn a_changed_body_breaks_the_signature() {
        let server = SigningKey::from_bytes(&[1; 32]);
        let mut signed = SignedCredential::from_bytes(&issue(&server, "m1", b"k")).unwrap();
        signed.body = signed.body.replace("Ada", "Eve");
        assert_eq!(authority_of(&server).verify(&signed.to_bytes(), b"k", None), Err(CredentialError::Forged));
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
