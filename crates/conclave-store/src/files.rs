//! Files shared in conversations (their size, their parts, the message that
//! shares them) and where each organisation keeps them. The sealed parts
//! themselves are in a blob store, not here.

use crate::{Result, RowExt, Store, StoreError};
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub id: String,
    pub conversation_id: String,
    pub org_id: String,
    /// The bucket setting it was stored under; `None`: the server's disk.
    pub storage_id: Option<String>,
    pub uploaded_by: String,
    pub device_id: String,
    pub size: i64,
    pub parts: i64,
    pub complete: bool,
    pub message_seq: Option<i64>,
    pub erasing: bool,
    pub created_at_ms: i64,
}

const FILE_COLUMNS: &str = "id, conversation_id, org_id, storage_id, uploaded_by, device_id, size, parts, complete, \
     message_seq, erasing, created_at_ms";

fn file(row: &AnyRow) -> Result<FileRow> {
    Ok(FileRow {
        id: row.text("id")?,
        conversation_id: row.text("conversation_id")?,
        org_id: row.text("org_id")?,
        storage_id: row.opt_text("storage_id")?,
        uploaded_by: row.text("uploaded_by")?,
        device_id: row.text("device_id")?,
        size: row.int("size")?,
        parts: row.int("parts")?,
        complete: row.int("complete")? != 0,
        message_seq: row.opt_int("message_seq")?,
        erasing: row.int("erasing")? != 0,
        created_at_ms: row.int("created_at_ms")?,
    })
}

/// An organisation's bucket setting. The secret is kept because the server
/// needs it to reach the bucket; the API never shows it again.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageRow {
    pub id: String,
    pub org_id: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub created_at_ms: i64,
}

impl std::fmt::Debug for StorageRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageRow")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

const STORAGE_COLUMNS: &str = "id, org_id, endpoint, region, bucket, access_key_id, secret_access_key, created_at_ms";

fn storage(row: &AnyRow) -> Result<StorageRow> {
    Ok(StorageRow {
        id: row.text("id")?,
        org_id: row.text("org_id")?,
        endpoint: row.opt_text("endpoint")?,
        region: row.text("region")?,
        bucket: row.text("bucket")?,
        access_key_id: row.text("access_key_id")?,
        secret_access_key: row.text("secret_access_key")?,
        created_at_ms: row.int("created_at_ms")?,
    })
}

/// Where an organisation's new files go, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgStorage {
    /// `None`: the server's data directory.
    pub storage: Option<StorageRow>,
    pub since_ms: Option<i64>,
}

impl Store {
    pub async fn create_file(&self, row: &FileRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO files (id, conversation_id, org_id, storage_id, uploaded_by, device_id, size, parts, \
             complete, message_seq, erasing, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, NULL, 0, $9)",
        )
        .bind(&row.id)
        .bind(&row.conversation_id)
        .bind(&row.org_id)
        .bind(&row.storage_id)
        .bind(&row.uploaded_by)
        .bind(&row.device_id)
        .bind(row.size)
        .bind(row.parts)
        .bind(row.created_at_ms)
        .execute(&self.pool)
        .await
        .map_err(StoreError::conflict_as("file"))?;
        Ok(())
    }

    pub async fn file(&self, id: &str) -> Result<Option<FileRow>> {
        let row = sqlx::query(&format!("SELECT {FILE_COLUMNS} FROM files WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(file).transpose()
    }

    /// The parts held of a file, in order.
    pub async fn file_parts(&self, id: &str) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT part FROM file_parts WHERE file_id = $1 ORDER BY part")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| r.int("part")).collect()
    }

    /// Notes a part as stored (again is no error: a retried upload).
    pub async fn add_file_part(&self, id: &str, part: i64) -> Result<()> {
        sqlx::query("INSERT INTO file_parts (file_id, part) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(part)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks an upload complete if every part is held; `false` if not.
    pub async fn complete_file(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE files SET complete = 1 WHERE id = $1 AND erasing = 0 \
             AND parts = (SELECT COUNT(*) FROM file_parts WHERE file_id = $1)",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up an upload nobody shared: its objects are to be deleted.
    pub async fn abandon_file(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE files SET erasing = 1 WHERE id = $1 AND message_seq IS NULL")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Uploads started before `cutoff_ms` and never shared are abandoned
    /// (a device that gave up, or was lost); how many.
    pub async fn abandon_stale_uploads(&self, cutoff_ms: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE files SET erasing = 1 WHERE message_seq IS NULL AND erasing = 0 AND created_at_ms < $1",
        )
        .bind(cutoff_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Files whose objects are to be deleted, oldest first.
    pub async fn files_to_erase(&self, limit: i64) -> Result<Vec<FileRow>> {
        let rows =
            sqlx::query(&format!("SELECT {FILE_COLUMNS} FROM files WHERE erasing = 1 ORDER BY created_at_ms LIMIT $1"))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(file).collect()
    }

    /// Once its objects are gone, the file is forgotten.
    pub async fn forget_file(&self, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM file_parts WHERE file_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM files WHERE id = $1 AND erasing = 1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Where an organisation's new files go.
    pub async fn org_storage(&self, org_id: &str) -> Result<OrgStorage> {
        let row = sqlx::query("SELECT storage_id, storage_since_ms FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("organisation"))?;
        let since_ms = row.opt_int("storage_since_ms")?;
        let storage = match row.opt_text("storage_id")? {
            Some(id) => Some(self.storage(&id).await?),
            None => None,
        };
        Ok(OrgStorage { storage, since_ms })
    }

    /// A bucket setting, current or past (files stored under it use it).
    pub async fn storage(&self, id: &str) -> Result<StorageRow> {
        let row = sqlx::query(&format!("SELECT {STORAGE_COLUMNS} FROM org_storage WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("storage"))?;
        storage(&row)
    }

    /// New files of the organisation go to `storage` (`None`: the server's
    /// disk) from now on; files already stored stay where they are.
    pub async fn set_org_storage(&self, org_id: &str, storage: Option<&StorageRow>, now_ms: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(s) = storage {
            sqlx::query(&format!(
                "INSERT INTO org_storage ({STORAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(&s.id)
            .bind(org_id)
            .bind(&s.endpoint)
            .bind(&s.region)
            .bind(&s.bucket)
            .bind(&s.access_key_id)
            .bind(&s.secret_access_key)
            .bind(s.created_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        let changed = sqlx::query("UPDATE orgs SET storage_id = $2, storage_since_ms = $3 WHERE id = $1")
            .bind(org_id)
            .bind(storage.map(|s| s.id.as_str()))
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        if changed.rows_affected() != 1 {
            return Err(StoreError::NotFound("organisation"));
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Within a conversation's change: the files a new message shares become
/// its own (each only if complete and shared by nothing yet, or the whole
/// change fails), and the files of deleted messages are set for erasure.
pub(crate) async fn write_file_changes(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    conversation_id: &str,
    shared: &[(String, i64)],
    erased: &[i64],
) -> Result<()> {
    for (file, seq) in shared {
        let done = sqlx::query(
            "UPDATE files SET message_seq = $3 WHERE id = $1 AND conversation_id = $2 AND complete = 1 \
             AND message_seq IS NULL AND erasing = 0",
        )
        .bind(file)
        .bind(conversation_id)
        .bind(seq)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict("file"));
        }
    }
    for seq in erased {
        sqlx::query("UPDATE files SET erasing = 1 WHERE conversation_id = $1 AND message_seq = $2")
            .bind(conversation_id)
            .bind(seq)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
