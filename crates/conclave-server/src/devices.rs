//! E2EE devices and the server's credential authority. A device of an
//! account is registered once, under its Ed25519 signature key, and vouched
//! for once: the same credential serves it in every meeting and
//! conversation, and the account lists its devices (and can revoke one, so
//! the server vouches for it no more). A guest's device is vouched for one
//! meeting, as one participant. The authority's key is made once and kept
//! in the database, so every node of a cluster, and the server after a
//! restart, vouches with the same key. It signs public keys only; it never
//! holds a device's private key or anything of a group's secrets.

use conclave_proto::credential::{DeviceCredential, DeviceOwner, SignedCredential};
use conclave_proto::names::display_name;
use conclave_proto::Device;
use conclave_store::{DeviceRow, Registration, Store, StoreError};
use data_encoding::BASE64;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::RngCore;

const SETTING: &str = "e2ee_credential_authority";

pub struct DeviceAuthority {
    key: SigningKey,
    public: String,
}

/// Devices an account may hold at once (each joins every conversation of
/// the account, so their number is bounded like the rest).
pub const MAX_DEVICES_PER_ACCOUNT: usize = 50;

/// Why a device was not vouched for.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("the key is not base64 of a 32-byte Ed25519 public key")]
    NotAKey,
    #[error("the device name {0}")]
    Name(conclave_proto::names::NameError),
    /// The account revoked this key's device: it is vouched for no more.
    #[error("this device was revoked; register a new key")]
    Revoked,
    /// The account has as many devices as it may; revoke one first.
    #[error("the account has {MAX_DEVICES_PER_ACCOUNT} devices; revoke one to add another")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A credential as sent to a device: base64 of the signed credential, and
/// the authority's key to check it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    pub credential: String,
    pub authority: String,
    pub owner: DeviceOwner,
}

/// The cluster's authority, loaded from the store by whichever part of this
/// node needs it first (meetings, devices, conversations) and kept.
#[derive(Clone)]
pub struct AuthorityCell {
    cell: std::sync::Arc<tokio::sync::OnceCell<std::sync::Arc<DeviceAuthority>>>,
    store: Store,
}

impl AuthorityCell {
    pub fn new(store: Store) -> Self {
        Self { cell: Default::default(), store }
    }

    /// The authority; `None` (and logged) when the database cannot provide
    /// its key, so E2EE fails visibly, not silently.
    pub async fn get(&self) -> Option<std::sync::Arc<DeviceAuthority>> {
        let loaded = self
            .cell
            .get_or_try_init(|| async { DeviceAuthority::load_or_create(&self.store).await.map(std::sync::Arc::new) })
            .await;
        match loaded {
            Ok(authority) => Some(authority.clone()),
            Err(err) => {
                tracing::error!(error = %err, "no E2EE device authority");
                None
            }
        }
    }
}

impl DeviceAuthority {
    /// The cluster's authority key, made by whichever node needs it first.
    pub async fn load_or_create(store: &Store) -> Result<Self, StoreError> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let kept = store.setting_or_insert(SETTING, &BASE64.encode(&seed)).await?;
        let seed: [u8; 32] = BASE64
            .decode(kept.as_bytes())
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(StoreError::Corrupt { column: SETTING, value: "not a 32-byte key".into() })?;
        Ok(Self::from_seed(seed))
    }

    fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let public = BASE64.encode(key.verifying_key().as_bytes());
        Self { key, public }
    }

    /// The server's MLS proposal (base64) to remove the device at `leaf`
    /// from a group at `epoch`, signed as the group's external sender with
    /// this authority's key. `None` only if MLS cannot make one.
    pub fn propose_removal(&self, epoch: u64, leaf: u32) -> Option<String> {
        match conclave_e2ee::mls::server_removal(&self.key.to_bytes(), epoch, leaf) {
            Ok(proposal) => Some(BASE64.encode(&proposal)),
            Err(err) => {
                tracing::error!(error = %err, "could not sign a removal proposal");
                None
            }
        }
    }

    /// Signs a credential for `signature_key` (base64), owned by `owner`.
    pub fn vouch(
        &self,
        owner: DeviceOwner,
        name: &str,
        signature_key: &str,
        now_ms: i64,
    ) -> Result<Vouched, DeviceError> {
        check_key(signature_key)?;
        let body = serde_json::to_string(&DeviceCredential {
            owner: owner.clone(),
            display_name: name.to_owned(),
            signature_key: signature_key.to_owned(),
            issued_at_ms: now_ms,
        })
        .expect("a credential serialises");
        let signature = BASE64.encode(&self.key.sign(&SignedCredential::signing_input(&body)).to_bytes());
        Ok(Vouched {
            credential: BASE64.encode(&SignedCredential { body, signature }.to_bytes()),
            authority: self.public.clone(),
            owner,
        })
    }

    /// An account's device, registered once under its key (the same key
    /// again is the same device: its last use is noted, its name kept),
    /// and its credential. A revoked device's key is refused.
    pub async fn account_device(
        &self,
        store: &Store,
        user_id: &str,
        account_name: &str,
        signature_key: &str,
        device_name: &str,
        now_ms: i64,
    ) -> Result<(Registration, Vouched), DeviceError> {
        check_key(signature_key)?;
        let device_name = display_name(device_name).map_err(DeviceError::Name)?;
        let devices = store.devices_of(user_id).await?;
        if devices.len() >= MAX_DEVICES_PER_ACCOUNT && !devices.iter().any(|d| d.signature_key == signature_key) {
            return Err(DeviceError::TooMany);
        }
        let registration = store.register_device(user_id, signature_key, &device_name, now_ms).await?;
        if registration.device.revoked_at_ms.is_some() {
            return Err(DeviceError::Revoked);
        }
        let owner = DeviceOwner::Account { user_id: user_id.to_owned(), device_id: registration.device.id.clone() };
        let vouched = self.vouch(owner, account_name, signature_key, now_ms)?;
        Ok((registration, vouched))
    }
}

fn check_key(signature_key: &str) -> Result<(), DeviceError> {
    let key = BASE64.decode(signature_key.as_bytes()).map_err(|_| DeviceError::NotAKey)?;
    let key: [u8; 32] = key.try_into().map_err(|_| DeviceError::NotAKey)?;
    VerifyingKey::from_bytes(&key).map_err(|_| DeviceError::NotAKey)?;
    Ok(())
}

/// A device as its account sees it.
pub fn device_view(row: &DeviceRow) -> Device {
    let key = BASE64.decode(row.signature_key.as_bytes()).unwrap_or_default();
    Device {
        id: row.id.clone(),
        name: row.name.clone(),
        fingerprint: conclave_proto::device::fingerprint(&key),
        created_at_ms: row.created_at_ms,
        last_used_at_ms: row.last_used_at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    #[test]
    fn a_credential_is_signed_over_its_exact_body_and_names_its_owner() {
        let authority = DeviceAuthority::from_seed([5; 32]);
        let device = BASE64.encode(SigningKey::from_bytes(&[6; 32]).verifying_key().as_bytes());
        let owner = DeviceOwner::Guest { meeting_id: "m".into(), participant_id: 3 };
        let vouched = authority.vouch(owner.clone(), "Ada", &device, 9).unwrap();
        let signed = SignedCredential::from_bytes(&BASE64.decode(vouched.credential.as_bytes()).unwrap()).unwrap();
        let public =
            VerifyingKey::from_bytes(&BASE64.decode(vouched.authority.as_bytes()).unwrap().try_into().unwrap())
                .unwrap();
        let signature =
            ed25519_dalek::Signature::from_slice(&BASE64.decode(signed.signature.as_bytes()).unwrap()).unwrap();
        public.verify(&SignedCredential::signing_input(&signed.body), &signature).unwrap();
        let body = signed.credential().unwrap();
        assert_eq!((body.owner, body.display_name.as_str(), body.issued_at_ms), (owner, "Ada", 9));
    }

    #[test]
    fn only_ed25519_public_keys_are_vouched_for() {
        let authority = DeviceAuthority::from_seed([5; 32]);
        let owner = || DeviceOwner::Guest { meeting_id: "m".into(), participant_id: 3 };
        assert!(matches!(authority.vouch(owner(), "Ada", "not base64!", 0), Err(DeviceError::NotAKey)));
        assert!(matches!(authority.vouch(owner(), "Ada", &BASE64.encode(&[1; 31]), 0), Err(DeviceError::NotAKey)));
    }
}
