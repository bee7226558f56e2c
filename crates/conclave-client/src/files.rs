//! Files: the REST calls of the `files` tag, and uploads and downloads
//! that seal and open on this device, part by part, in constant memory.
//!
//! An upload reads the file once, sealing each part under a fresh key and
//! putting the parts the server does not hold yet; a part that fails is
//! tried again, and an upload cut short is resumed from what the server
//! says it holds ([`Upload`] is what to keep for that). A download opens
//! each part as it arrives and writes it to a file beside the destination,
//! which takes the destination's name only once the whole file checks out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use conclave_e2ee::file::{FileError, FileKey, FileOpener, FileSealer};
use conclave_proto::file::{
    chunk_len, file_parts, FileStatus, SharedFile, StartUploadRequest, StorageSettings, StorageView,
};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Client, ClientError, Result};

/// Attempts per part before an upload or download gives up.
const PART_TRIES: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum FileTransferError {
    #[error(transparent)]
    Api(#[from] ClientError),
    /// Said in full here and not as a source, so a chain of causes does not
    /// print it twice.
    #[error("reading or writing the local file failed: {}", crate::with_causes(.0))]
    Io(std::io::Error),
    #[error(transparent)]
    Sealing(#[from] FileError),
    /// The local file is not the size the upload was started with.
    #[error("the file changed since its upload started ({expected} bytes then, {found} now)")]
    Changed { expected: u64, found: u64 },
}

impl From<std::io::Error> for FileTransferError {
    fn from(err: std::io::Error) -> Self {
        Self::Io(err)
    }
}

/// An upload in progress: what a device keeps to resume it later (the key
/// never leaves the device but inside an MLS message).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    pub file_id: String,
    pub conversation_id: String,
    pub size: u64,
    key: String,
}

impl Upload {
    pub fn key(&self) -> std::result::Result<FileKey, FileError> {
        FileKey::from_base64(&self.key)
    }
}

/// A finished upload: the key and digest to share it with.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub file_id: String,
    pub size: u64,
    pub key: FileKey,
    pub sha256: String,
}

impl Uploaded {
    /// What a message carries to share it.
    pub fn shared(&self, name: &str, mime: &str) -> SharedFile {
        SharedFile {
            file_id: self.file_id.clone(),
            name: name.to_owned(),
            mime: mime.to_owned(),
            size: self.size,
            key: self.key.to_base64(),
            sha256: self.sha256.clone(),
            dimensions: None,
        }
    }
}

impl Client {
    pub async fn start_upload(&self, conversation_id: &str, req: &StartUploadRequest) -> Result<FileStatus> {
        self.json(Method::POST, &format!("/api/v1/conversations/{conversation_id}/files"), Some(req)).await
    }

    pub async fn file_status(&self, file_id: &str) -> Result<FileStatus> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/files/{file_id}"), None).await
    }

    pub async fn put_file_part(&self, file_id: &str, part: u32, sealed: Vec<u8>) -> Result<()> {
        let request = self
            .request(Method::PUT, &format!("/api/v1/files/{file_id}/parts/{part}"))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(sealed);
        Self::finish(request).await.map(drop)
    }

    pub async fn complete_upload(&self, file_id: &str) -> Result<FileStatus> {
        self.json::<_, ()>(Method::POST, &format!("/api/v1/files/{file_id}/complete"), None).await
    }

    pub async fn abandon_upload(&self, file_id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/files/{file_id}"), None).await
    }

    pub async fn file_part(&self, file_id: &str, part: u32) -> Result<Vec<u8>> {
        let response = self.send::<()>(Method::GET, &format!("/api/v1/files/{file_id}/parts/{part}"), None).await?;
        Ok(response.bytes().await?.to_vec())
    }

    pub async fn org_storage(&self, org_id: &str) -> Result<StorageView> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/orgs/{org_id}/storage"), None).await
    }

    pub async fn set_org_storage(&self, org_id: &str, settings: &StorageSettings) -> Result<StorageView> {
        self.json(Method::PUT, &format!("/api/v1/orgs/{org_id}/storage"), Some(settings)).await
    }

    /// Starts uploading `source` to a conversation: room on the server and
    /// a fresh key. Nothing is sent yet; [`Client::resume_upload`] does.
    pub async fn begin_upload(
        &self,
        conversation_id: &str,
        device_id: &str,
        source: &Path,
    ) -> std::result::Result<Upload, FileTransferError> {
        let size = tokio::fs::metadata(source).await?.len();
        let req = StartUploadRequest { device_id: device_id.to_owned(), size };
        let status = self.start_upload(conversation_id, &req).await?;
        Ok(Upload {
            file_id: status.file_id,
            conversation_id: conversation_id.to_owned(),
            size,
            key: FileKey::generate().to_base64(),
        })
    }

    /// Seals and sends every part of `source` the server does not hold
    /// yet, then completes the upload. `progress` hears the bytes done and
    /// the total after every part.
    pub async fn resume_upload(
        &self,
        upload: &Upload,
        source: &Path,
        mut progress: impl FnMut(u64, u64),
    ) -> std::result::Result<Uploaded, FileTransferError> {
        let key = upload.key()?;
        let mut file = tokio::fs::File::open(source).await?;
        let found = file.metadata().await?.len();
        if found != upload.size {
            return Err(FileTransferError::Changed { expected: upload.size, found });
        }
        let held = self.file_status(&upload.file_id).await?.received;
        let mut sealer = FileSealer::new(&key, upload.size);
        let mut chunk = Vec::new();
        let mut done = 0;
        for part in 0..file_parts(upload.size) {
            let len = chunk_len(upload.size, part).expect("every part of the file has a length") as usize;
            chunk.resize(len, 0);
            file.read_exact(&mut chunk).await?;
            // Every part is sealed (the digest covers the whole file); only
            // the missing ones travel.
            let sealed = sealer.seal_next(&chunk)?;
            if held.binary_search(&part).is_err() {
                retrying(|| self.put_file_part(&upload.file_id, part, sealed.clone())).await?;
            }
            done += len as u64;
            progress(done, upload.size);
        }
        let sha256 = sealer.finish()?;
        self.complete_upload(&upload.file_id).await?;
        Ok(Uploaded { file_id: upload.file_id.clone(), size: upload.size, key, sha256 })
    }

    /// Uploads a file whole (resuming by itself after failed parts).
    pub async fn upload_file(
        &self,
        conversation_id: &str,
        device_id: &str,
        source: &Path,
        progress: impl FnMut(u64, u64),
    ) -> std::result::Result<Uploaded, FileTransferError> {
        let upload = self.begin_upload(conversation_id, device_id, source).await?;
        self.resume_upload(&upload, source, progress).await
    }

    /// Fetches, opens and checks a shared file into `destination`, which
    /// appears only once the whole file is open and its digest matches.
    pub async fn download_file(
        &self,
        shared: &SharedFile,
        destination: &Path,
        mut progress: impl FnMut(u64, u64),
    ) -> std::result::Result<(), FileTransferError> {
        let key = FileKey::from_base64(&shared.key)?;
        let partial = partial_path(destination);
        let result = async {
            let mut out = tokio::fs::File::create(&partial).await?;
            let mut opener = FileOpener::new(&key, shared.size);
            let mut done = 0;
            for part in 0..file_parts(shared.size) {
                let sealed = retrying(|| self.file_part(&shared.file_id, part)).await?;
                let plain = opener.open_next(&sealed)?;
                out.write_all(&plain).await?;
                done += plain.len() as u64;
                progress(done, shared.size);
            }
            opener.finish(&shared.sha256)?;
            out.flush().await?;
            out.sync_all().await?;
            Ok::<_, FileTransferError>(())
        }
        .await;
        match result {
            Ok(()) => Ok(tokio::fs::rename(&partial, destination).await?),
            Err(err) => {
                let _ = tokio::fs::remove_file(&partial).await;
                Err(err)
            }
        }
    }
}

fn partial_path(destination: &Path) -> PathBuf {
    let mut name = destination.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    destination.with_file_name(name)
}

/// Runs a part's request again after a failure the server or the network
/// may get over (a transport error, a 5xx, a throttle), waiting longer
/// each time; other refusals are final.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(err) if tries < PART_TRIES && passing(&err) => {
                tokio::time::sleep(Duration::from_millis(200 << tries)).await;
            }
            other => return other,
        }
    }
}

fn passing(err: &ClientError) -> bool {
    match err {
        ClientError::Transport(_) => true,
        other => other.status().is_some_and(|s| s >= 500 || s == 429),
    }
}

/// A media type from a file name's extension, for what a receiving app
/// shows; the common kinds only, anything else is plain bytes.
pub fn mime_of(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "wav" => "audio/wav",
        "pdf" => "application/pdf",
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "zip" => "application/zip",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => "application/octet-stream",
    }
}
