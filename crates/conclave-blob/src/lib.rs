//! Where the ciphertext of files is kept (C4): the server's data directory
//! by default, or a bucket of the organisation's own at an S3-compatible
//! service in the region it chose.
//!
//! A file is stored as its parts, one object each (`<file>/<part>`), as
//! the device encrypted them: every part is whole and authenticated on its
//! own, so an upload resumes at the first missing part, a download streams
//! part by part in constant memory, and a deleted file is its objects
//! deleted. An organisation with a bucket keeps its messages' ciphertext
//! there too, in segments of a conversation's log (`segments/<conversation>/<segment>`),
//! each one object written whole. Nothing here sees a key; nothing here
//! decides who may read — the server checks that before it asks.

mod segment;

pub use segment::{Segment, SegmentFormatError};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, PutPayload};

/// Where in a bucket Conclave keeps its objects, so one bucket may hold
/// other things too.
pub const BUCKET_PREFIX: &str = "conclave-files";

/// An organisation's own bucket at an S3-compatible service.
#[derive(Clone, PartialEq, Eq)]
pub struct Bucket {
    /// `scheme://host[:port]` of the service; `None`: Amazon S3 in `region`.
    pub endpoint: Option<String>,
    pub region: String,
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("name", &self.name)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Where one file's parts are.
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    /// The server's data directory, in the organisation's own folder.
    Server { org: &'a str },
    /// A bucket, known by the id its settings were stored under (settings
    /// are never changed in place: a change is a new id).
    Bucket { id: &'a str, bucket: &'a Bucket },
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The operator has not allowed buckets at this service.
    #[error("this server does not allow storage at {endpoint}; its operator lists the services it may use")]
    EndpointNotAllowed { endpoint: String },
    #[error("the bucket settings are not usable: {0}")]
    BadSettings(String),
    #[error("no such object")]
    NotFound,
    /// The service refused or could not be reached.
    #[error("the storage could not be used: {0}")]
    Unavailable(String),
}

impl From<object_store::Error> for BlobError {
    fn from(error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { .. } => Self::NotFound,
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// The stores files go to, opened once each and shared.
pub struct Blobs {
    /// The server's own: one folder per organisation under it.
    root: PathBuf,
    /// `scheme://host[:port]` of the services buckets may be at, besides
    /// Amazon S3 itself. The operator decides: an organisation's admin
    /// must not make the server send requests anywhere it likes.
    allowed_endpoints: Vec<String>,
    open: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl Blobs {
    pub fn new(root: PathBuf, allowed_endpoints: Vec<String>) -> Self {
        let allowed_endpoints = allowed_endpoints.iter().map(|e| origin(e)).collect();
        Self { root, allowed_endpoints, open: Mutex::new(HashMap::new()) }
    }

    /// Whether the server may use this bucket's service at all.
    pub fn check(&self, bucket: &Bucket) -> Result<(), BlobError> {
        for (field, value) in [("region", &bucket.region), ("bucket", &bucket.name)] {
            if value.is_empty() || value.len() > 255 || value.chars().any(|c| c.is_control() || c == '/') {
                return Err(BlobError::BadSettings(format!("{field} must be a plain name")));
            }
        }
        if bucket.access_key_id.is_empty() || bucket.secret_access_key.is_empty() {
            return Err(BlobError::BadSettings("the access key and its secret are both needed".into()));
        }
        match &bucket.endpoint {
            None => Ok(()),
            Some(endpoint) if self.allowed_endpoints.contains(&origin(endpoint)) => Ok(()),
            Some(endpoint) => Err(BlobError::EndpointNotAllowed { endpoint: endpoint.clone() }),
        }
    }

    /// Writes, reads back and deletes an object: whether the settings work
    /// before anyone's file depends on them.
    pub async fn probe(&self, place: Place<'_>) -> Result<(), BlobError> {
        let store = self.store(place)?;
        let path = Path::from(format!(".probe-{:016x}", rand::random::<u64>()));
        let written = Bytes::from_static(b"conclave storage check");
        store.put(&path, PutPayload::from_bytes(written.clone())).await?;
        let read = store.get(&path).await?.bytes().await?;
        store.delete(&path).await?;
        if read != written {
            return Err(BlobError::Unavailable("the storage returned other bytes than were written".into()));
        }
        Ok(())
    }

    /// Stores one part (again, if it was stored before: the same part of
    /// the same upload is the same bytes, so a retry is harmless).
    pub async fn put_part(&self, place: Place<'_>, file: &str, part: u32, bytes: Bytes) -> Result<(), BlobError> {
        self.store(place)?.put(&part_path(file, part), PutPayload::from_bytes(bytes)).await?;
        Ok(())
    }

    pub async fn get_part(&self, place: Place<'_>, file: &str, part: u32) -> Result<Bytes, BlobError> {
        Ok(self.store(place)?.get(&part_path(file, part)).await?.bytes().await?)
    }

    /// Deletes a file's parts; those already gone are no error, so an
    /// interrupted erasure is finished by running it again.
    pub async fn erase(&self, place: Place<'_>, file: &str, parts: u32) -> Result<(), BlobError> {
        let store = self.store(place)?;
        for part in 0..parts {
            match store.delete(&part_path(file, part)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(other) => return Err(other.into()),
            }
        }
        if let Place::Server { org } = place {
            // The emptied folder too, so nothing of the file is left behind.
            let _ = std::fs::remove_dir(self.root.join(org).join(file));
        }
        Ok(())
    }

    /// Stores a segment of a conversation's log, one object.
    pub async fn put_segment(
        &self,
        place: Place<'_>,
        conversation: &str,
        segment: &str,
        bytes: Bytes,
    ) -> Result<(), BlobError> {
        self.store(place)?.put(&segment_path(conversation, segment), PutPayload::from_bytes(bytes)).await?;
        Ok(())
    }

    pub async fn get_segment(&self, place: Place<'_>, conversation: &str, segment: &str) -> Result<Bytes, BlobError> {
        Ok(self.store(place)?.get(&segment_path(conversation, segment)).await?.bytes().await?)
    }

    /// Deletes a segment; one already gone is no error.
    pub async fn erase_segment(&self, place: Place<'_>, conversation: &str, segment: &str) -> Result<(), BlobError> {
        match self.store(place)?.delete(&segment_path(conversation, segment)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    fn store(&self, place: Place<'_>) -> Result<Arc<dyn ObjectStore>, BlobError> {
        let key = match place {
            Place::Server { org } => format!("server/{org}"),
            Place::Bucket { id, .. } => format!("bucket/{id}"),
        };
        let mut open = self.open.lock().expect("blob stores lock");
        if let Some(store) = open.get(&key) {
            return Ok(store.clone());
        }
        let store: Arc<dyn ObjectStore> = match place {
            Place::Server { org } => {
                if org.is_empty() || org.contains(['/', '\\', '.']) {
                    return Err(BlobError::BadSettings("not an organisation id".into()));
                }
                let folder = self.root.join(org);
                std::fs::create_dir_all(&folder).map_err(|e| BlobError::Unavailable(e.to_string()))?;
                Arc::new(LocalFileSystem::new_with_prefix(folder)?)
            }
            Place::Bucket { bucket, .. } => {
                self.check(bucket)?;
                let mut builder = AmazonS3Builder::new()
                    .with_region(&bucket.region)
                    .with_bucket_name(&bucket.name)
                    .with_access_key_id(&bucket.access_key_id)
                    .with_secret_access_key(&bucket.secret_access_key);
                if let Some(endpoint) = &bucket.endpoint {
                    // Plain HTTP only to a service the operator listed.
                    builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
                }
                let s3 = builder.build().map_err(|e| BlobError::BadSettings(e.to_string()))?;
                Arc::new(PrefixStore::new(s3, BUCKET_PREFIX))
            }
        };
        open.insert(key, store.clone());
        Ok(store)
    }
}

fn segment_path(conversation: &str, segment: &str) -> Path {
    Path::from_iter(["segments", conversation, segment])
}

fn part_path(file: &str, part: u32) -> Path {
    Path::from_iter([file, &format!("{part:06}")])
}

/// `scheme://host[:port]`, lower-cased, without a trailing slash or path.
fn origin(url: &str) -> String {
    let url = url.trim().to_ascii_lowercase();
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or_default()),
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(endpoint: Option<&str>) -> Bucket {
        Bucket {
            endpoint: endpoint.map(str::to_owned),
            region: "eu-west-1".into(),
            name: "acme-files".into(),
            access_key_id: "AKIA".into(),
            secret_access_key: "secret".into(),
        }
    }

    #[test]
    fn only_services_the_operator_listed_are_used() {
        let blobs = Blobs::new(PathBuf::from("/nonexistent"), vec!["http://127.0.0.1:9000/".into()]);
        assert!(blobs.check(&bucket(None)).is_ok(), "Amazon S3 itself");
        assert!(blobs.check(&bucket(Some("HTTP://127.0.0.1:9000"))).is_ok());
        assert!(blobs.check(&bucket(Some("http://127.0.0.1:9000/some/path"))).is_ok());
        for refused in ["http://127.0.0.1:9001", "http://169.254.169.254", "https://127.0.0.1:9000"] {
            assert!(
                matches!(blobs.check(&bucket(Some(refused))), Err(BlobError::EndpointNotAllowed { .. })),
                "{refused}"
            );
        }
    }

    #[test]
    fn the_secret_is_not_in_debug_output() {
        assert!(!format!("{:?}", bucket(None)).contains("secret"));
    }

    #[tokio::test]
    async fn parts_round_trip_on_the_servers_disk_and_erase_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::new(dir.path().to_owned(), Vec::new());
        let place = Place::Server { org: "org1" };
        blobs.probe(place).await.unwrap();
        for part in 0..3 {
            blobs.put_part(place, "file1", part, Bytes::from(vec![part as u8; 10])).await.unwrap();
        }
        assert_eq!(blobs.get_part(place, "file1", 2).await.unwrap(), vec![2u8; 10]);
        assert!(matches!(blobs.get_part(place, "file1", 3).await, Err(BlobError::NotFound)));
        blobs.erase(place, "file1", 3).await.unwrap();
        blobs.erase(place, "file1", 3).await.unwrap();
        assert!(matches!(blobs.get_part(place, "file1", 0).await, Err(BlobError::NotFound)));
        let left: Vec<_> = std::fs::read_dir(dir.path().join("org1")).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(blobs.store(Place::Server { org: "../etc" }).is_err());
    }
}

#[cfg(feature = "testing")]
pub mod testing;
