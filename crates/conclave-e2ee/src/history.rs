//! History for new devices. MLS gives a device nothing from before it
//! joined; people expect a new laptop to show the conversations' past.
//!
//! Each message is also sealed under its epoch's history key, which every
//! member derives from the MLS exporter (so no key is ever sent for the
//! messages of an epoch one was in), and the server stores that copy beside
//! the MLS ciphertext. Members keep the history keys of the epochs they
//! were in; when a device is added, the member that added it sends it the
//! keys it holds, inside the group (so only the new epoch's members read
//! them). The new device then asks the server for the history copies of
//! what came before it, as far as the organisation's policy lets the
//! server serve them, and opens them.
//!
//! The trade-off: a device that keeps history keys can read, with the
//! server's copies, every epoch it was given keys for; forward secrecy
//! then holds per device, not per message. A device removed from the
//! group learns no later epoch's key, so it reads nothing sent after.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use data_encoding::BASE64;
use serde::{Deserialize, Serialize};

use crate::mls::{GroupMember, MlsError, OpenMlsMember};

/// The MLS exporter label history keys are derived under.
pub const HISTORY_LABEL: &str = "conclave history key";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// The history keys a device holds, by epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryKeys(BTreeMap<u64, String>);

impl HistoryKeys {
    /// Takes the key of the group's current epoch, if not held already.
    pub fn remember(&mut self, member: &OpenMlsMember) -> Result<(), MlsError> {
        let epoch = member.epoch().ok_or(MlsError::NoGroup)?;
        if let std::collections::btree_map::Entry::Vacant(slot) = self.0.entry(epoch) {
            slot.insert(BASE64.encode(&member.export_secret(HISTORY_LABEL, KEY_LEN)?));
        }
        Ok(())
    }

    /// Every key held, by epoch in decimal, to give a new device.
    pub fn all(&self) -> BTreeMap<String, String> {
        self.0.iter().map(|(epoch, key)| (epoch.to_string(), key.clone())).collect()
    }

    /// Keys given by another member; a key held already is kept, and
    /// anything that is not a key is ignored.
    pub fn merge(&mut self, given: BTreeMap<String, String>) {
        for (epoch, key) in given {
            let Ok(epoch) = epoch.parse::<u64>() else { continue };
            if BASE64.decode(key.as_bytes()).is_ok_and(|k| k.len() == KEY_LEN) {
                self.0.entry(epoch).or_insert(key);
            }
        }
    }

    fn cipher(&self, epoch: u64) -> Option<Aes256Gcm> {
        let key = BASE64.decode(self.0.get(&epoch)?.as_bytes()).ok()?;
        Aes256Gcm::new_from_slice(&key).ok()
    }

    /// `plaintext` sealed under `epoch`'s key, bound to `context` (the
    /// conversation and the message's client id): base64 of the epoch,
    /// a nonce and the ciphertext.
    pub fn seal(&self, epoch: u64, context: &[u8], plaintext: &[u8]) -> Option<String> {
        let nonce: [u8; NONCE_LEN] = rand_nonce();
        let sealed =
            self.cipher(epoch)?.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context }).ok()?;
        let mut out = epoch.to_be_bytes().to_vec();
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(BASE64.encode(&out))
    }

    /// What [`Self::seal`] sealed, if this device holds its epoch's key.
    pub fn open(&self, context: &[u8], sealed: &str) -> Option<Vec<u8>> {
        let bytes = BASE64.decode(sealed.as_bytes()).ok()?;
        if bytes.len() < 8 + NONCE_LEN {
            return None;
        }
        let (epoch, rest) = bytes.split_at(8);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let epoch = u64::from_be_bytes(epoch.try_into().ok()?);
        self.cipher(epoch)?.decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: context }).ok()
    }
}

fn rand_nonce() -> [u8; NONCE_LEN] {
    use aes_gcm::aead::rand_core::RngCore;
    let mut nonce = [0u8; NONCE_LEN];
    aes_gcm::aead::OsRng.fill_bytes(&mut nonce);
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member_at_epoch_zero() -> OpenMlsMember {
        let mut member = OpenMlsMember::new(b"ada").unwrap();
        member.create_group(b"conversation", None).unwrap();
        member
    }

    #[test]
    fn a_sealed_message_opens_with_its_epochs_key_and_its_context_only() {
        let member = member_at_epoch_zero();
        let mut keys = HistoryKeys::default();
        keys.remember(&member).unwrap();
        let sealed = keys.seal(0, b"conversation|m-1", b"hello").unwrap();
        assert_eq!(keys.open(b"conversation|m-1", &sealed).as_deref(), Some(&b"hello"[..]));
        assert_eq!(keys.open(b"conversation|m-2", &sealed), None, "bound to its message");
        assert_eq!(HistoryKeys::default().open(b"conversation|m-1", &sealed), None, "no key, nothing");
        // Given the keys, another device opens it.
        let mut given = HistoryKeys::default();
        given.merge(keys.all());
        assert_eq!(given.open(b"conversation|m-1", &sealed).as_deref(), Some(&b"hello"[..]));
        assert_eq!(keys.seal(1, b"x", b"y"), None, "no key for an epoch not held");
        assert_eq!(keys.open(b"x", "not base64!"), None);
    }
}
