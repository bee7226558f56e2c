//! The server's credential authority: it vouches that a device's MLS
//! signature key speaks for a participant (and that participant's account)
//! in one meeting. Its Ed25519 key is made once and kept in the database,
//! so every node of a cluster, and the server after a restart, vouches with
//! the same key. It signs public keys only; it never holds a device's
//! private key or anything of the group's secrets.

use conclave_proto::credential::{DeviceCredential, SignedCredential};
use conclave_proto::signal::{ParticipantId, ServerMessage};
use conclave_store::Store;
use data_encoding::BASE64;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::RngCore;

const SETTING: &str = "e2ee_credential_authority";

pub struct CredentialAuthority {
    key: SigningKey,
    public: String,
}

/// What the authority is asked to vouch for.
pub struct Subject<'a> {
    pub meeting_id: &'a str,
    pub participant_id: ParticipantId,
    pub user_id: Option<&'a str>,
    pub display_name: &'a str,
    /// base64 of the device's Ed25519 public key, as the device sent it.
    pub signature_key: &'a str,
}

impl CredentialAuthority {
    /// The cluster's authority key, made by whichever node needs it first.
    pub async fn load_or_create(store: &Store) -> Result<Self, conclave_store::StoreError> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let kept = store.setting_or_insert(SETTING, &BASE64.encode(&seed)).await?;
        let seed: [u8; 32] = BASE64
            .decode(kept.as_bytes())
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(conclave_store::StoreError::Corrupt { column: SETTING, value: "not a 32-byte key".into() })?;
        Ok(Self::from_seed(seed))
    }

    fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let public = BASE64.encode(key.verifying_key().as_bytes());
        Self { key, public }
    }

    /// The `e2ee_credential` reply, or why the key cannot be vouched for.
    pub fn vouch(&self, subject: &Subject<'_>, now_ms: i64) -> Result<ServerMessage, &'static str> {
        let key = BASE64.decode(subject.signature_key.as_bytes()).map_err(|_| "the key is not base64")?;
        let key: [u8; 32] = key.try_into().map_err(|_| "an Ed25519 key is 32 bytes")?;
        VerifyingKey::from_bytes(&key).map_err(|_| "not an Ed25519 public key")?;
        let body = serde_json::to_string(&DeviceCredential {
            meeting_id: subject.meeting_id.to_owned(),
            participant_id: subject.participant_id,
            user_id: subject.user_id.map(str::to_owned),
            display_name: subject.display_name.to_owned(),
            signature_key: subject.signature_key.to_owned(),
            issued_at_ms: now_ms,
        })
        .expect("a credential serialises");
        let signature = BASE64.encode(&self.key.sign(&SignedCredential::signing_input(&body)).to_bytes());
        Ok(ServerMessage::E2eeCredential {
            credential: BASE64.encode(&SignedCredential { body, signature }.to_bytes()),
            authority: self.public.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    fn subject(signature_key: &str) -> Subject<'_> {
        Subject { meeting_id: "m", participant_id: 3, user_id: Some("u"), display_name: "Ada", signature_key }
    }

    #[test]
    fn a_credential_is_signed_over_its_exact_body() {
        let authority = CredentialAuthority::from_seed([5; 32]);
        let device = BASE64.encode(SigningKey::from_bytes(&[6; 32]).verifying_key().as_bytes());
        let ServerMessage::E2eeCredential { credential, authority: public } =
            authority.vouch(&subject(&device), 9).unwrap()
        else {
            panic!()
        };
        let signed = SignedCredential::from_bytes(&BASE64.decode(credential.as_bytes()).unwrap()).unwrap();
        let public = VerifyingKey::from_bytes(&BASE64.decode(public.as_bytes()).unwrap().try_into().unwrap()).unwrap();
        let signature =
            ed25519_dalek::Signature::from_slice(&BASE64.decode(signed.signature.as_bytes()).unwrap()).unwrap();
        public.verify(&SignedCredential::signing_input(&signed.body), &signature).unwrap();
        let body = signed.credential().unwrap();
        assert_eq!((body.participant_id, body.user_id.as_deref(), body.issued_at_ms), (3, Some("u"), 9));
    }

    #[test]
    fn only_ed25519_public_keys_are_vouched_for() {
        let authority = CredentialAuthority::from_seed([5; 32]);
        assert!(authority.vouch(&subject("not base64!"), 0).is_err());
        assert!(authority.vouch(&subject(&BASE64.encode(&[1; 31])), 0).is_err());
    }
}
