//! Files for the worker: sealed part by part before they leave the device
//! and opened part by part on the way back, under a fresh key per file
//! (`conclave_e2ee::file`). The worker reads the `File` a slice at a time,
//! so a large file never sits whole in the worker's memory on the way up.

use conclave_e2ee::file::{seal_one, FileKey, FileOpener, FileSealer};
use conclave_proto::file::{chunk_len, file_parts};
use wasm_bindgen::prelude::*;

use crate::error;

/// Parts a file of `size` bytes is cut into.
#[wasm_bindgen]
pub fn file_part_count(size: f64) -> u32 {
    file_parts(size as u64)
}

/// Plaintext bytes in part `part` of a file of `size` bytes.
#[wasm_bindgen]
pub fn file_part_len(size: f64, part: u32) -> Result<f64, JsError> {
    chunk_len(size as u64, part).map(|len| len as f64).ok_or_else(|| error("past the file's end"))
}

/// Seals a file's parts in order under a key of its own, hashing the
/// plaintext as it goes.
#[wasm_bindgen]
pub struct FileSeal {
    key: FileKey,
    size: u64,
    sealer: FileSealer,
}

#[wasm_bindgen]
impl FileSeal {
    #[wasm_bindgen(constructor)]
    pub fn new(size: f64) -> FileSeal {
        let key = FileKey::generate();
        let sealer = FileSealer::new(&key, size as u64);
        FileSeal { key, size: size as u64, sealer }
    }

    /// A sealer for an upload begun earlier under `key` (base64, kept by
    /// this device), to carry on after the page was closed: sealing is
    /// deterministic, so its parts come out as they did, and the file's
    /// hash is rebuilt as they are sealed again.
    pub fn resume(key: &str, size: f64) -> Result<FileSeal, JsError> {
        let key = FileKey::from_base64(key).map_err(error)?;
        let sealer = FileSealer::new(&key, size as u64);
        Ok(FileSeal { key, size: size as u64, sealer })
    }

    /// The file's key (base64): it travels only inside the MLS message
    /// that shares the file.
    pub fn key(&self) -> String {
        self.key.to_base64()
    }

    /// The next part, sealed.
    pub fn seal_next(&mut self, chunk: &[u8]) -> Result<Vec<u8>, JsError> {
        self.sealer.seal_next(chunk).map_err(error)
    }

    /// Part `part` sealed again, alone (a retry after the sealer moved on:
    /// sealing is deterministic, so it is the same bytes).
    pub fn seal_part(&self, part: u32, chunk: &[u8]) -> Result<Vec<u8>, JsError> {
        seal_one(&self.key, self.size, part, chunk).map_err(error)
    }

    /// After the last part: the plaintext's SHA-256 (hex).
    pub fn finish(self) -> Result<String, JsError> {
        self.sealer.finish().map_err(error)
    }
}

/// Opens a shared file's parts in order, then checks its digest.
#[wasm_bindgen]
pub struct FileOpen {
    opener: FileOpener,
}

#[wasm_bindgen]
impl FileOpen {
    #[wasm_bindgen(constructor)]
    pub fn new(key: &str, size: f64) -> Result<FileOpen, JsError> {
        let key = FileKey::from_base64(key).map_err(error)?;
        Ok(FileOpen { opener: FileOpener::new(&key, size as u64) })
    }

    pub fn open_next(&mut self, sealed: &[u8]) -> Result<Vec<u8>, JsError> {
        self.opener.open_next(sealed).map_err(error)
    }

    /// Whether the whole file is the one that was shared (its SHA-256).
    pub fn finish(self, sha256: &str) -> Result<(), JsError> {
        self.opener.finish(sha256).map_err(error)
    }
}
