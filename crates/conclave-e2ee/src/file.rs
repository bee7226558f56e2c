//! Files, sealed on the device before they leave it.
//!
//! Each file has a fresh AES-256 key, sent only inside the MLS message that
//! shares it. The plaintext is cut into parts of [`FILE_CHUNK_BYTES`] (the
//! last one shorter) and each part sealed on its own with AES-256-GCM, so
//! that sealing and opening stream in constant memory, an upload resumes
//! at any part, and a download can start anywhere. The nonce is the part's
//! index with a flag on the last part, and every part is bound to the
//! file's size (the associated data): parts cannot be reordered, dropped
//! from the end, or moved to another file (which has another key) without
//! opening failing. The plaintext's SHA-256 is checked once the last part
//! is open, as a second, whole-file check.

use aes_gcm::aead::{Aead, OsRng, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use conclave_proto::file::{chunk_len, file_parts, FILE_TAG_BYTES};
use data_encoding::{BASE64, HEXLOWER};
use sha2::{Digest, Sha256};

const KEY_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("not a file key")]
    BadKey,
    /// A part that does not open under the file's key at its place: the
    /// file was changed, truncated or mixed with another.
    #[error("part {part} of the file does not open: it was changed or is not this file's")]
    Tampered { part: u32 },
    /// A part of the wrong length for its place in a file of this size.
    #[error("part {part} has {got} bytes where {expected} belong")]
    WrongLength { part: u32, expected: u64, got: u64 },
    #[error("the file has {parts} parts; part {part} is past its end")]
    PastEnd { part: u32, parts: u32 },
    #[error("the file ended before its last part")]
    Incomplete,
    #[error("the opened file's SHA-256 is not the one it was shared with")]
    DigestMismatch,
}

/// One file's key.
#[derive(Clone, PartialEq, Eq)]
pub struct FileKey([u8; KEY_LEN]);

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(..)")
    }
}

impl FileKey {
    pub fn generate() -> Self {
        Self(Aes256Gcm::generate_key(&mut OsRng).into())
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.0)
    }

    pub fn from_base64(text: &str) -> Result<Self, FileError> {
        let bytes = BASE64.decode(text.as_bytes()).map_err(|_| FileError::BadKey)?;
        Ok(Self(bytes.try_into().map_err(|_| FileError::BadKey)?))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }
}

fn nonce(part: u32, last: bool) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut nonce = [0u8; 12];
    nonce[0] = u8::from(last);
    nonce[8..].copy_from_slice(&part.to_be_bytes());
    nonce.into()
}

/// Seals a file's parts in order, keeping the plaintext's digest.
pub struct FileSealer {
    cipher: Aes256Gcm,
    size: u64,
    next: u32,
    digest: Sha256,
}

impl FileSealer {
    pub fn new(key: &FileKey, size: u64) -> Self {
        Self { cipher: key.cipher(), size, next: 0, digest: Sha256::new() }
    }

    /// Seals the next part, which must be exactly as long as its place in
    /// the file says ([`chunk_len`]).
    pub fn seal_next(&mut self, chunk: &[u8]) -> Result<Vec<u8>, FileError> {
        let sealed = seal_part(&self.cipher, self.size, self.next, chunk)?;
        self.digest.update(chunk);
        self.next += 1;
        Ok(sealed)
    }

    /// Once every part is sealed: the plaintext's SHA-256, in hex.
    pub fn finish(self) -> Result<String, FileError> {
        if self.next != file_parts(self.size) {
            return Err(FileError::Incomplete);
        }
        Ok(HEXLOWER.encode(&self.digest.finalize()))
    }
}

/// Seals one part on its own: an upload that resumes seals only the parts
/// the server is missing (sealing is deterministic, so a part sealed again
/// is the same bytes).
pub fn seal_one(key: &FileKey, size: u64, part: u32, chunk: &[u8]) -> Result<Vec<u8>, FileError> {
    seal_part(&key.cipher(), size, part, chunk)
}

fn seal_part(cipher: &Aes256Gcm, size: u64, part: u32, chunk: &[u8]) -> Result<Vec<u8>, FileError> {
    let parts = file_parts(size);
    let expected = chunk_len(size, part).ok_or(FileError::PastEnd { part, parts })?;
    if chunk.len() as u64 != expected {
        return Err(FileError::WrongLength { part, expected, got: chunk.len() as u64 });
    }
    let aad = size.to_be_bytes();
    let sealed = cipher
        .encrypt(&nonce(part, part + 1 == parts), Payload { msg: chunk, aad: &aad })
        .expect("AES-GCM seals any part of a file");
    Ok(sealed)
}

/// Opens a file's parts in order, then checks the whole file's digest.
pub struct FileOpener {
    cipher: Aes256Gcm,
    size: u64,
    next: u32,
    digest: Sha256,
}

impl FileOpener {
    pub fn new(key: &FileKey, size: u64) -> Self {
        Self { cipher: key.cipher(), size, next: 0, digest: Sha256::new() }
    }

    /// The part to open next.
    pub fn next_part(&self) -> u32 {
        self.next
    }

    pub fn open_next(&mut self, sealed: &[u8]) -> Result<Vec<u8>, FileError> {
        let part = self.next;
        let parts = file_parts(self.size);
        let expected = chunk_len(self.size, part).ok_or(FileError::PastEnd { part, parts })? + FILE_TAG_BYTES;
        if sealed.len() as u64 != expected {
            return Err(FileError::WrongLength { part, expected, got: sealed.len() as u64 });
        }
        let aad = self.size.to_be_bytes();
        let plain = self
            .cipher
            .decrypt(&nonce(part, part + 1 == parts), Payload { msg: sealed, aad: &aad })
            .map_err(|_| FileError::Tampered { part })?;
        self.digest.update(&plain);
        self.next += 1;
        Ok(plain)
    }

    /// After the last part: whether the file is the one that was shared.
    pub fn finish(self, sha256_hex: &str) -> Result<(), FileError> {
        if self.next != file_parts(self.size) {
            return Err(FileError::Incomplete);
        }
        if HEXLOWER.encode(&self.digest.finalize()) != sha256_hex.to_ascii_lowercase() {
            return Err(FileError::DigestMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_proto::file::FILE_CHUNK_BYTES;

    fn sealed(key: &FileKey, plain: &[u8]) -> (Vec<Vec<u8>>, String) {
        let size = plain.len() as u64;
        let mut sealer = FileSealer::new(key, size);
        let mut parts = Vec::new();
        for part in 0..file_parts(size) {
            let start = (u64::from(part) * FILE_CHUNK_BYTES) as usize;
            let len = chunk_len(size, part).unwrap() as usize;
            parts.push(sealer.seal_next(&plain[start..start + len]).unwrap());
        }
        (parts, sealer.finish().unwrap())
    }

    fn opened(key: &FileKey, size: u64, parts: &[Vec<u8>], digest: &str) -> Result<Vec<u8>, FileError> {
        let mut opener = FileOpener::new(key, size);
        let mut plain = Vec::new();
        for part in parts {
            plain.extend(opener.open_next(part)?);
        }
        opener.finish(digest)?;
        Ok(plain)
    }

    #[test]
    fn a_file_round_trips_and_its_parts_hold_no_plaintext() {
        let key = FileKey::generate();
        let plain: Vec<u8> = b"the quarterly figures ".iter().copied().cycle().take(9 << 20).collect();
        let (parts, digest) = sealed(&key, &plain);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| !p.windows(22).any(|w| w == b"the quarterly figures ")));
        assert_eq!(opened(&key, plain.len() as u64, &parts, &digest).unwrap(), plain);
        assert_eq!(FileKey::from_base64(&key.to_base64()).unwrap(), key);
        // Sealing a part alone (to resume) gives the same bytes.
        assert_eq!(seal_one(&key, plain.len() as u64, 1, &plain[4 << 20..8 << 20]).unwrap(), parts[1]);
    }

    #[test]
    fn an_empty_file_is_one_sealed_part() {
        let key = FileKey::generate();
        let (parts, digest) = sealed(&key, b"");
        assert_eq!(parts.iter().map(Vec::len).collect::<Vec<_>>(), [16]);
        assert_eq!(opened(&key, 0, &parts, &digest).unwrap(), b"");
    }

    #[test]
    fn changed_reordered_truncated_or_foreign_parts_do_not_open() {
        let key = FileKey::generate();
        let plain = vec![7u8; (FILE_CHUNK_BYTES * 2 + 10) as usize];
        let size = plain.len() as u64;
        let (parts, digest) = sealed(&key, &plain);

        let mut flipped = parts.clone();
        flipped[1][100] ^= 1;
        assert_eq!(opened(&key, size, &flipped, &digest), Err(FileError::Tampered { part: 1 }));

        let swapped = vec![parts[1].clone(), parts[0].clone(), parts[2].clone()];
        assert_eq!(opened(&key, size, &swapped, &digest), Err(FileError::Tampered { part: 0 }));

        // Claimed to be a smaller file, the first two parts alone: the size
        // is bound into every part, and the last-part flag is not on part 1.
        let shorter = FILE_CHUNK_BYTES * 2;
        assert_eq!(opened(&key, shorter, &parts[..2], &digest), Err(FileError::Tampered { part: 0 }));
        assert_eq!(opened(&key, size, &parts[..2], &digest), Err(FileError::Incomplete));

        let other = FileKey::generate();
        assert_eq!(opened(&other, size, &parts, &digest), Err(FileError::Tampered { part: 0 }));

        let wrong_digest = "00".repeat(32);
        assert_eq!(opened(&key, size, &parts, &wrong_digest), Err(FileError::DigestMismatch));

        let mut sealer = FileSealer::new(&key, size);
        assert!(matches!(sealer.seal_next(&plain[..10]), Err(FileError::WrongLength { part: 0, .. })));
    }
}
