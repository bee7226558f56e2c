//! The suites' AEADs: AES-GCM, and AES-CTR with a truncated HMAC tag over
//! lengths, nonce, associated data and ciphertext (RFC 9605 §4.5.1).

use aes::cipher::{KeyIvInit, StreamCipher};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use super::Hash;
use super::{CipherSuite, SframeError};

/// A suite's AEAD with its key schedule done once (a key serves thousands
/// of frames; re-keying AES per frame would dominate small frames).
#[derive(Clone)]
pub(crate) enum Aead {
    Gcm128(Box<aes_gcm::Aes128Gcm>),
    Gcm256(Box<aes_gcm::Aes256Gcm>),
    Ctr { suite: CipherSuite, key: Vec<u8> },
}

impl Aead {
    pub(crate) fn new(suite: CipherSuite, key: &[u8]) -> Result<Self, SframeError> {
        check_key(suite, key)?;
        Ok(match (suite.is_ctr(), suite.aes_key_len()) {
            (true, _) => Self::Ctr { suite, key: key.to_vec() },
            (false, 16) => Self::Gcm128(Box::new(aes_gcm::Aes128Gcm::new_from_slice(key).expect("checked"))),
            (false, _) => Self::Gcm256(Box::new(aes_gcm::Aes256Gcm::new_from_slice(key).expect("checked"))),
        })
    }

    /// Seals `buffer[from..]` in place and appends the tag (the bytes
    /// before `from`, the header, stay as they are).
    pub(crate) fn seal_from(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        buffer: &mut Vec<u8>,
        from: usize,
    ) -> Result<(), SframeError> {
        let n = aes_gcm::Nonce::from_slice(nonce);
        let body = &mut buffer[from..];
        let tag = match self {
            Self::Gcm128(c) => {
                c.encrypt_in_place_detached(n, aad, body).map_err(|_| SframeError::Authentication)?.to_vec()
            }
            Self::Gcm256(c) => {
                c.encrypt_in_place_detached(n, aad, body).map_err(|_| SframeError::Authentication)?.to_vec()
            }
            Self::Ctr { suite, key } => {
                let (enc, auth) = key.split_at(suite.aes_key_len());
                ctr_apply(*suite, enc, nonce, body);
                let mut tag = ctr_tag(*suite, auth, nonce, aad, body);
                tag.truncate(suite.tag_len());
                tag
            }
        };
        buffer.extend_from_slice(&tag);
        Ok(())
    }

    pub(crate) fn seal(&self, nonce: &[u8; 12], aad: &[u8], buffer: &mut Vec<u8>) -> Result<(), SframeError> {
        self.seal_from(nonce, aad, buffer, 0)
    }

    pub(crate) fn open(&self, nonce: &[u8; 12], aad: &[u8], buffer: &mut Vec<u8>) -> Result<(), SframeError> {
        let n = aes_gcm::Nonce::from_slice(nonce);
        match self {
            Self::Gcm128(c) => c.decrypt_in_place(n, aad, buffer).map_err(|_| SframeError::Authentication),
            Self::Gcm256(c) => c.decrypt_in_place(n, aad, buffer).map_err(|_| SframeError::Authentication),
            Self::Ctr { suite, key } => {
                let tag_len = suite.tag_len();
                if buffer.len() < tag_len {
                    return Err(SframeError::Authentication);
                }
                let (enc, auth) = key.split_at(suite.aes_key_len());
                let ct_len = buffer.len() - tag_len;
                let expected = ctr_tag(*suite, auth, nonce, aad, &buffer[..ct_len]);
                if !bool::from(expected[..tag_len].ct_eq(&buffer[ct_len..])) {
                    return Err(SframeError::Authentication);
                }
                buffer.truncate(ct_len);
                ctr_apply(*suite, enc, nonce, buffer);
                Ok(())
            }
        }
    }
}

/// Encrypts `buffer` in place and appends the tag.
pub fn seal(
    suite: CipherSuite,
    key: &[u8],
    nonce: &[u8; 12],
    aad: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<(), SframeError> {
    Aead::new(suite, key)?.seal(nonce, aad, buffer)
}

/// Checks the tag at the end of `buffer` and decrypts in place, removing it.
pub fn open(
    suite: CipherSuite,
    key: &[u8],
    nonce: &[u8; 12],
    aad: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<(), SframeError> {
    Aead::new(suite, key)?.open(nonce, aad, buffer)
}

fn check_key(suite: CipherSuite, key: &[u8]) -> Result<(), SframeError> {
    if key.len() == suite.key_len() {
        Ok(())
    } else {
        Err(SframeError::KeyLength { got: key.len(), want: suite.key_len() })
    }
}

/// AES-CTR keystream from `nonce || 0x00000000`.
fn ctr_apply(suite: CipherSuite, key: &[u8], nonce: &[u8; 12], data: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..12].copy_from_slice(nonce);
    match suite.aes_key_len() {
        16 => ctr::Ctr32BE::<aes::Aes128>::new(key.into(), &iv.into()).apply_keystream(data),
        _ => ctr::Ctr32BE::<aes::Aes256>::new(key.into(), &iv.into()).apply_keystream(data),
    }
}

/// HMAC over `len(aad) || len(ct) || Nt || nonce || aad || ct` (lengths as u64 BE).
fn ctr_tag(suite: CipherSuite, auth_key: &[u8], nonce: &[u8; 12], aad: &[u8], ct: &[u8]) -> Vec<u8> {
    fn mac<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    let lens =
        [(aad.len() as u64).to_be_bytes(), (ct.len() as u64).to_be_bytes(), (suite.tag_len() as u64).to_be_bytes()];
    let parts: [&[u8]; 6] = [&lens[0], &lens[1], &lens[2], nonce, aad, ct];
    match suite.hash() {
        Hash::Sha256 => mac::<Hmac<sha2::Sha256>>(auth_key, &parts),
        Hash::Sha512 => mac::<Hmac<sha2::Sha512>>(auth_key, &parts),
    }
}
