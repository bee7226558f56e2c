//! Message segments: the bodies of a conversation's entries moved to its
//! organisation's bucket (C4), a consecutive range of the log per object.
//!
//! The rows stay, with their order, references and an empty body naming
//! the segment; the log is written and acknowledged in the database as
//! always, and moved later. An entry erased after it moved marks its
//! segment stale: the segment is written again without it, and the old
//! object is deleted (the row `erasing` until it is), so a deleted message
//! leaves nothing of itself in the bucket either.

use crate::{Result, RowExt, Store};
use sqlx::any::AnyRow;

/// One segment object of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRow {
    pub id: String,
    pub conversation_id: String,
    pub org_id: String,
    /// The bucket setting it was written under (settings are never
    /// changed in place), as files keep theirs.
    pub storage_id: String,
    pub first_seq: i64,
    pub last_seq: i64,
    /// Holds the body of an entry erased since: to be written again.
    pub stale: bool,
    /// Replaced or emptied: its object is to be deleted.
    pub erasing: bool,
    pub created_at_ms: i64,
}

const SEGMENT_COLUMNS: &str =
    "id, conversation_id, org_id, storage_id, first_seq, last_seq, stale, erasing, created_at_ms";

fn segment(row: &AnyRow) -> Result<SegmentRow> {
    Ok(SegmentRow {
        id: row.text("id")?,
        conversation_id: row.text("conversation_id")?,
        org_id: row.text("org_id")?,
        storage_id: row.text("storage_id")?,
        first_seq: row.int("first_seq")?,
        last_seq: row.int("last_seq")?,
        stale: row.int("stale")? != 0,
        erasing: row.int("erasing")? != 0,
        created_at_ms: row.int("created_at_ms")?,
    })
}

/// A conversation whose log runs past its last segment, in an
/// organisation that keeps its files in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToSegment {
    pub conversation_id: String,
    pub org_id: String,
    /// The organisation's bucket setting now.
    pub storage_id: String,
    /// The last entry already moved (or passed over).
    pub through: i64,
}

impl Store {
    /// Conversations with entries due to move: their organisation keeps
    /// its files in a bucket, and the first entry past what was moved was
    /// written before `before_ms` (a conversation whose new entries are
    /// all recent is not taken, so it cannot crowd out the others).
    pub async fn conversations_to_segment(&self, before_ms: i64, limit: i64) -> Result<Vec<ToSegment>> {
        let rows = sqlx::query(
            "SELECT c.id, c.org_id, o.storage_id, c.segmented_through FROM conversations c \
             JOIN orgs o ON o.id = c.org_id \
             JOIN conversation_entries e ON e.conversation_id = c.id AND e.seq = c.segmented_through + 1 \
             WHERE o.storage_id IS NOT NULL AND e.at_ms < $1 ORDER BY c.id LIMIT $2",
        )
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ToSegment {
                    conversation_id: r.text("id")?,
                    org_id: r.text("org_id")?,
                    storage_id: r.text("storage_id")?,
                    through: r.int("segmented_through")?,
                })
            })
            .collect()
    }

    /// Records segment `row` (`None`: the range held nothing left to move),
    /// which holds the bodies of the `moved` entries still not erased in
    /// its range, and empties those bodies; the conversation is then
    /// moved through `through`. Should an entry have been erased since
    /// its body was read, the segment is stale from the start.
    pub async fn record_segment(
        &self,
        conversation_id: &str,
        row: Option<&SegmentRow>,
        moved: usize,
        through: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(row) = row {
            insert_segment(&mut tx, row).await?;
            let emptied = sqlx::query(
                "UPDATE conversation_entries SET segment_id = $1, body_json = '' WHERE conversation_id = $2 \
                 AND seq >= $3 AND seq <= $4 AND segment_id IS NULL AND deleted = 0",
            )
            .bind(&row.id)
            .bind(conversation_id)
            .bind(row.first_seq)
            .bind(row.last_seq)
            .execute(&mut *tx)
            .await?;
            if (emptied.rows_affected() as usize) < moved {
                mark_stale(&mut tx, &row.id).await?;
            }
        }
        sqlx::query("UPDATE conversations SET segmented_through = $1 WHERE id = $2 AND segmented_through < $1")
            .bind(through)
            .bind(conversation_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn segment(&self, id: &str) -> Result<Option<SegmentRow>> {
        let row = sqlx::query(&format!("SELECT {SEGMENT_COLUMNS} FROM message_segments WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(segment).transpose()
    }

    /// Segments to write again (stale) or to delete (erasing), oldest first.
    pub async fn segments_to_tidy(&self, limit: i64) -> Result<Vec<SegmentRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {SEGMENT_COLUMNS} FROM message_segments WHERE stale = 1 OR erasing = 1 \
             ORDER BY created_at_ms, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(segment).collect()
    }

    /// The entries whose bodies are still in segment `row` (not erased).
    pub async fn entries_in_segment(&self, row: &SegmentRow) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT seq FROM conversation_entries WHERE conversation_id = $1 AND seq >= $2 AND seq <= $3 \
             AND segment_id = $4 AND body_json = '' ORDER BY seq",
        )
        .bind(&row.conversation_id)
        .bind(row.first_seq)
        .bind(row.last_seq)
        .bind(&row.id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| r.int("seq")).collect()
    }

    /// Replaces stale segment `old` by `new`, holding the `moved` entries
    /// still in `old` (`None`: none is left), and sets `old` for deletion.
    /// As when recording one, an erasure meanwhile leaves `new` stale.
    pub async fn replace_segment(&self, old: &SegmentRow, new: Option<&SegmentRow>, moved: usize) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        if let Some(new) = new {
            insert_segment(&mut tx, new).await?;
            let taken = sqlx::query(
                "UPDATE conversation_entries SET segment_id = $1 WHERE conversation_id = $2 \
                 AND seq >= $3 AND seq <= $4 AND segment_id = $5 AND body_json = ''",
            )
            .bind(&new.id)
            .bind(&old.conversation_id)
            .bind(old.first_seq)
            .bind(old.last_seq)
            .bind(&old.id)
            .execute(&mut *tx)
            .await?;
            if (taken.rows_affected() as usize) < moved {
                mark_stale(&mut tx, &new.id).await?;
            }
        }
        sqlx::query("UPDATE message_segments SET stale = 0, erasing = 1 WHERE id = $1")
            .bind(&old.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets a segment whose object is deleted.
    pub async fn forget_segment(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM message_segments WHERE id = $1 AND erasing = 1").bind(id).execute(&self.pool).await?;
        Ok(())
    }
}

async fn insert_segment(tx: &mut sqlx::Transaction<'_, sqlx::Any>, row: &SegmentRow) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO message_segments ({SEGMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&row.id)
    .bind(&row.conversation_id)
    .bind(&row.org_id)
    .bind(&row.storage_id)
    .bind(row.first_seq)
    .bind(row.last_seq)
    .bind(i64::from(row.stale))
    .bind(i64::from(row.erasing))
    .bind(row.created_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn mark_stale(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: &str) -> Result<()> {
    sqlx::query("UPDATE message_segments SET stale = 1 WHERE id = $1").bind(id).execute(&mut **tx).await?;
    Ok(())
}

/// In the transaction erasing entry `seq` (with its edits and reactions):
/// the segments holding any of their bodies become stale.
pub(crate) async fn erasing_entry(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: &str, seq: i64) -> Result<()> {
    sqlx::query(
        "UPDATE message_segments SET stale = 1 WHERE erasing = 0 AND id IN (SELECT segment_id FROM \
         conversation_entries WHERE conversation_id = $1 AND body_json = '' AND segment_id IS NOT NULL \
         AND (seq = $2 OR (refers_to = $2 AND reference_kind IN ('edit', 'reaction'))))",
    )
    .bind(id)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
