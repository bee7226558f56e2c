//! Files shared in conversations, and where an organisation keeps them.
//!
//! A device encrypts a file under a fresh key, in parts of
//! [`FILE_CHUNK_BYTES`] of plaintext each (the last one shorter), and
//! uploads the parts; the key travels only inside the MLS message that
//! shares the file ([`SharedFile`]). The server stores and serves sealed
//! parts to the conversation's members and never sees a key.

use serde::{Deserialize, Serialize};
#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Plaintext bytes in every part but the last.
pub const FILE_CHUNK_BYTES: u64 = 4 << 20;
/// What sealing adds to each part (an AES-GCM tag).
pub const FILE_TAG_BYTES: u64 = 16;
/// Files one message may share (a picture and its thumbnail count two).
pub const MAX_FILES_PER_MESSAGE: usize = 10;
/// The organisation's file size limit when it sets none, in MiB.
pub const DEFAULT_MAX_FILE_MIB: u32 = 4096;
/// The largest limit an organisation may set, in MiB.
pub const MAX_FILE_MIB: u32 = 64 * 1024;

/// How many parts a file of `size` plaintext bytes has (an empty file has
/// one, empty but sealed).
pub fn file_parts(size: u64) -> u32 {
    size.div_ceil(FILE_CHUNK_BYTES).max(1) as u32
}

/// The plaintext length of part `part` of a file of `size` bytes.
pub fn chunk_len(size: u64, part: u32) -> Option<u64> {
    let parts = file_parts(size);
    match part {
        p if p >= parts => None,
        p if p + 1 == parts => Some(size - FILE_CHUNK_BYTES * u64::from(p)),
        _ => Some(FILE_CHUNK_BYTES),
    }
}

/// The sealed length of part `part`: what the server accepts for it.
pub fn sealed_part_len(size: u64, part: u32) -> Option<u64> {
    chunk_len(size, part).map(|len| len + FILE_TAG_BYTES)
}

/// `POST /api/v1/conversations/{id}/files`: room for a file's parts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StartUploadRequest {
    /// The uploading device (one of the caller's).
    pub device_id: String,
    /// Plaintext bytes; the parts and their sealed lengths follow from it.
    pub size: u64,
}

/// A file on the server: what is there of it, for the uploader to resume
/// and for members to download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct FileStatus {
    pub file_id: String,
    pub conversation_id: String,
    pub uploaded_by: String,
    pub size: u64,
    pub parts: u32,
    /// Parts the server holds, in order.
    pub received: Vec<u32>,
    /// Every part is in and the upload was completed.
    pub complete: bool,
    /// The message that shares it, once sent.
    pub message_seq: Option<u64>,
    pub created_at_ms: i64,
}

/// A file as a message shares it, inside the encryption: everything needed
/// to fetch and open it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct SharedFile {
    pub file_id: String,
    /// The name it had on the sender's device.
    pub name: String,
    /// Its media type (`image/png`), as the sender's device saw it.
    pub mime: String,
    pub size: u64,
    /// The file's own AES-256 key (base64).
    pub key: String,
    /// SHA-256 of the plaintext (hex), checked after opening every part.
    pub sha256: String,
    /// Width and height, for images and videos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<[u32; 2]>,
}

/// Where an organisation's files are kept (C4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageSettings {
    /// The server's data directory (the default).
    Server,
    /// The organisation's own bucket at an S3-compatible service.
    S3 {
        /// `https://host[:port]` of the service, when it is not Amazon S3;
        /// the server's operator lists the services allowed.
        #[serde(default)]
        endpoint: Option<String>,
        region: String,
        bucket: String,
        access_key_id: String,
        secret_access_key: String,
    },
}

/// Where an organisation's new files go, as its admins see it (the secret
/// is never shown again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct StorageView {
    /// `server` or `s3`.
    pub kind: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub bucket: Option<String>,
    pub access_key_id: Option<String>,
    /// Since when files go there (files stored before stay where they are).
    pub since_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_file_exactly() {
        for size in [0, 1, FILE_CHUNK_BYTES - 1, FILE_CHUNK_BYTES, FILE_CHUNK_BYTES + 1, 1 << 30] {
            let parts = file_parts(size);
            let total: u64 = (0..parts).map(|p| chunk_len(size, p).unwrap()).sum();
            assert_eq!(total, size, "size {size}");
            assert_eq!(chunk_len(size, parts), None);
            assert!((0..parts.saturating_sub(1)).all(|p| chunk_len(size, p) == Some(FILE_CHUNK_BYTES)));
        }
        assert_eq!(file_parts(0), 1);
        assert_eq!(file_parts(1 << 30), 256);
        assert_eq!(sealed_part_len(0, 0), Some(FILE_TAG_BYTES));
    }
}
