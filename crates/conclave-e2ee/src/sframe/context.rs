//! Keys, counters and replay protection around the AEAD: a sender holds one
//! key and a counter it never repeats; a receiver holds the keys of every
//! sender (by KID) and refuses frames it has seen.

use std::collections::HashMap;

use hkdf::Hkdf;

use super::aead::Aead;
use super::Hash;
use super::{CipherSuite, Header, SframeError};

/// A key ready for the AEAD, and the salt nonces are made from.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySalt {
    pub key: Vec<u8>,
    pub salt: [u8; 12],
}

impl std::fmt::Debug for KeySalt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySalt(..)") // Never print key material.
    }
}

/// RFC 9605 §4.4.2: the frame key and salt of `kid` from its base key.
pub fn derive_key_salt(suite: CipherSuite, kid: u64, base_key: &[u8]) -> KeySalt {
    let label = |what: &str| {
        let mut l = format!("SFrame 1.0 Secret {what} ").into_bytes();
        l.extend_from_slice(&kid.to_be_bytes());
        l.extend_from_slice(&suite.id().to_be_bytes());
        l
    };
    let (key_label, salt_label) = (label("key"), label("salt"));
    let mut key = vec![0u8; suite.key_len()];
    let mut salt = [0u8; 12];
    match suite.hash() {
        Hash::Sha256 => {
            let h = Hkdf::<sha2::Sha256>::new(Some(&[]), base_key);
            h.expand(&key_label, &mut key).expect("valid length");
            h.expand(&salt_label, &mut salt).expect("valid length");
        }
        Hash::Sha512 => {
            let h = Hkdf::<sha2::Sha512>::new(Some(&[]), base_key);
            h.expand(&key_label, &mut key).expect("valid length");
            h.expand(&salt_label, &mut salt).expect("valid length");
        }
    }
    KeySalt { key, salt }
}

fn nonce(salt: &[u8; 12], ctr: u64) -> [u8; 12] {
    let mut n = *salt;
    for (b, c) in n[4..].iter_mut().zip(ctr.to_be_bytes()) {
        *b ^= c;
    }
    n
}

/// Encrypts one sender's frames under one key.
pub struct SframeSender {
    kid: u64,
    aead: Aead,
    salt: [u8; 12],
    next_ctr: u64,
}

impl SframeSender {
    pub fn new(suite: CipherSuite, kid: u64, base_key: &[u8]) -> Self {
        let keys = derive_key_salt(suite, kid, base_key);
        let aead = Aead::new(suite, &keys.key).expect("derived keys have the suite's length");
        Self { kid, aead, salt: keys.salt, next_ctr: 0 }
    }

    pub fn kid(&self) -> u64 {
        self.kid
    }

    /// `header || ciphertext || tag` of `plaintext`, authenticating `metadata` too.
    pub fn encrypt(&mut self, plaintext: &[u8], metadata: &[u8]) -> Result<Vec<u8>, SframeError> {
        let ctr = self.next_ctr;
        self.next_ctr = ctr.checked_add(1).ok_or(SframeError::CounterExhausted)?;
        self.encrypt_with_counter(ctr, plaintext, metadata)
    }

    /// As [`Self::encrypt`] with a given counter (for test vectors; a
    /// counter must never be used twice with one key).
    pub fn encrypt_with_counter(&self, ctr: u64, plaintext: &[u8], metadata: &[u8]) -> Result<Vec<u8>, SframeError> {
        let header = Header { kid: self.kid, ctr };
        let mut aad = Vec::with_capacity(17 + metadata.len());
        header.encode(&mut aad);
        let header_len = aad.len();
        aad.extend_from_slice(metadata);
        // One buffer: the header, then the plaintext sealed in place after it.
        let mut out = Vec::with_capacity(header_len + plaintext.len() + 16);
        out.extend_from_slice(&aad[..header_len]);
        out.extend_from_slice(plaintext);
        self.aead.seal_from(&nonce(&self.salt, ctr), &aad, &mut out, header_len)?;
        Ok(out)
    }
}

/// Frames seen per key, for replay protection: a window of
/// [`REPLAY_WINDOW`] counters below the highest seen.
///
/// The window is wide because one device's streams share its key and its
/// counter: audio, every simulcast layer of the camera and a screen share
/// together count about 150 frames a second, and they reach a receiver at
/// different delays (a screen's keyframe can take a second or more to
/// arrive on a slow link while its audio keeps coming). A window of a few
/// hundred counters would take such a frame for a replay and drop it, and
/// every keyframe after it, so that the picture never starts.
#[derive(Debug, Clone)]
struct ReplayWindow {
    highest: Option<u64>,
    /// One bit per counter, indexed by the counter modulo the window.
    seen: Box<[u64; REPLAY_WINDOW as usize / 64]>,
}

/// Counters a late frame may be behind the highest one seen: about a
/// minute of a device's frames.
pub const REPLAY_WINDOW: u64 = 8192;

impl Default for ReplayWindow {
    fn default() -> Self {
        Self { highest: None, seen: Box::new([0; REPLAY_WINDOW as usize / 64]) }
    }
}

impl ReplayWindow {
    fn slot(ctr: u64) -> (usize, u64) {
        let i = ctr % REPLAY_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn check(&self, ctr: u64) -> bool {
        match self.highest {
            None => true,
            Some(h) if ctr > h => true,
            Some(h) if h - ctr >= REPLAY_WINDOW => false,
            Some(_) => {
                let (word, bit) = Self::slot(ctr);
                self.seen[word] & bit == 0
            }
        }
    }

    fn mark(&mut self, ctr: u64) {
        match self.highest {
            Some(h) if ctr > h && ctr - h >= REPLAY_WINDOW => *self.seen = [0; REPLAY_WINDOW as usize / 64],
            // The counters skipped over leave the window's far end: their
            // slots now stand for counters not seen yet.
            Some(h) if ctr > h => (h + 1..ctr).for_each(|skipped| {
                let (word, bit) = Self::slot(skipped);
                self.seen[word] &= !bit;
            }),
            Some(_) => {}
            None => {}
        }
        if self.highest.is_none_or(|h| ctr > h) {
            self.highest = Some(ctr);
        }
        let (word, bit) = Self::slot(ctr);
        self.seen[word] |= bit;
    }
}

/// Decrypts frames from every sender whose key it holds.
#[derive(Default)]
pub struct SframeReceiver {
    keys: HashMap<u64, (Aead, [u8; 12], ReplayWindow)>,
}

impl SframeReceiver {
    pub fn add_key(&mut self, suite: CipherSuite, kid: u64, base_key: &[u8]) {
        let keys = derive_key_salt(suite, kid, base_key);
        let aead = Aead::new(suite, &keys.key).expect("derived keys have the suite's length");
        self.keys.insert(kid, (aead, keys.salt, ReplayWindow::default()));
    }

    /// Forgets a key (its sender left, or the epoch it belongs to is over).
    pub fn remove_key(&mut self, kid: u64) {
        self.keys.remove(&kid);
    }

    pub fn retain_keys(&mut self, keep: impl Fn(u64) -> bool) {
        self.keys.retain(|kid, _| keep(*kid));
    }

    /// The plaintext of `frame`; its KID says whose key opens it.
    pub fn decrypt(&mut self, frame: &[u8], metadata: &[u8]) -> Result<Vec<u8>, SframeError> {
        let (header, header_len) = Header::decode(frame)?;
        let (aead, salt, window) = self.keys.get_mut(&header.kid).ok_or(SframeError::UnknownKey(header.kid))?;
        if !window.check(header.ctr) {
            return Err(SframeError::Replay(header.ctr));
        }
        let mut aad = frame[..header_len].to_vec();
        aad.extend_from_slice(metadata);
        let mut body = frame[header_len..].to_vec();
        aead.open(&nonce(salt, header.ctr), &aad, &mut body)?;
        window.mark(header.ctr);
        Ok(body)
    }
}
