//! Files shared in conversations, on the server's side: where each one's
//! sealed parts are (the storage its conversation's organisation chose
//! when it was uploaded), and their erasure once the message that shared
//! them is deleted or the upload is given up.
//!
//! Erasure is durable before it happens: the transaction that deletes a
//! message marks its files, and the objects are deleted after it, by
//! whichever runs first of the request's follow-up, the periodic sweep or
//! the next start. Deleting objects twice is harmless.

use std::time::Duration;

use conclave_blob::{BlobError, Bucket, Place};
use conclave_store::{FileRow, StorageRow, StoreError};

use crate::state::{AppState, SharedState};

/// How long an upload may stay unshared before it is given up.
pub const UNSHARED_UPLOAD_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Files erased per round; more are taken in the next round.
const ERASE_BATCH: i64 = 100;

/// Where one file's parts are: the server's disk in its organisation's
/// folder, or a bucket setting of that organisation.
pub struct Location {
    org: String,
    bucket: Option<(String, Bucket)>,
}

impl Location {
    pub fn server(org: &str) -> Self {
        Self { org: org.to_owned(), bucket: None }
    }

    pub fn bucket(row: StorageRow) -> Self {
        let bucket = Bucket {
            endpoint: row.endpoint,
            region: row.region,
            name: row.bucket,
            access_key_id: row.access_key_id,
            secret_access_key: row.secret_access_key,
        };
        Self { org: row.org_id, bucket: Some((row.id, bucket)) }
    }

    pub async fn of(state: &AppState, file: &FileRow) -> Result<Self, StoreError> {
        Ok(match &file.storage_id {
            None => Self::server(&file.org_id),
            Some(id) => Self::bucket(state.store.storage(id).await?),
        })
    }

    pub fn place(&self) -> Place<'_> {
        match &self.bucket {
            None => Place::Server { org: &self.org },
            Some((id, bucket)) => Place::Bucket { id, bucket },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// Deletes the objects of every file set for erasure, then forgets the
/// files; how many. A file whose storage fails stays set, for next time.
pub async fn erase_pending(state: &AppState) -> Result<usize, EraseError> {
    let mut erased = 0;
    loop {
        let files = state.store.files_to_erase(ERASE_BATCH).await?;
        let mut progressed = false;
        for file in &files {
            let location = Location::of(state, file).await?;
            match state.blobs.erase(location.place(), &file.id, file.parts as u32).await {
                Ok(()) => {
                    state.store.forget_file(&file.id).await?;
                    erased += 1;
                    progressed = true;
                }
                Err(err) => tracing::warn!(file = %file.id, error = %err, "could not erase a file's objects yet"),
            }
        }
        if (files.len() as i64) < ERASE_BATCH || !progressed {
            return Ok(erased);
        }
    }
}

/// Erases in the background what a request just set for erasure.
pub fn erase_soon(state: &SharedState) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(err) = erase_pending(&state).await {
            tracing::warn!(error = %err, "file erasure failed; the sweep tries again");
        }
    });
}

/// The periodic sweep's part: gives up uploads nobody shared in time, then
/// erases everything set for erasure.
pub async fn sweep(state: &AppState) -> Result<usize, EraseError> {
    let cutoff = state.now_ms() - UNSHARED_UPLOAD_LIFETIME.as_millis() as i64;
    state.store.abandon_stale_uploads(cutoff).await?;
    erase_pending(state).await
}
