//! Call-quality samples, per meeting and participant, for the
//! administrators' graphs; forgotten after the retention period.

use crate::{Result, RowExt, Store};

/// One sample to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQualitySample {
    pub meeting_id: String,
    pub participant_id: i64,
    pub display_name: String,
    pub at_ms: i64,
    /// `good`, `fair` or `poor`: counted in summaries without reading the JSON.
    pub level: String,
    pub sample_json: String,
}

/// A kept sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityRow {
    pub participant_id: i64,
    pub display_name: String,
    pub at_ms: i64,
    pub sample_json: String,
}

/// A meeting that has samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualitySummaryRow {
    pub meeting_id: String,
    pub title: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub participants: i64,
    pub samples: i64,
    pub poor_samples: i64,
}

impl Store {
    /// Keeps `samples`, all or none.
    pub async fn add_quality_samples(&self, samples: &[NewQualitySample]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for s in samples {
            sqlx::query(
                "INSERT INTO quality_samples (meeting_id, participant_id, display_name, at_ms, level, sample_json) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&s.meeting_id)
            .bind(s.participant_id)
            .bind(&s.display_name)
            .bind(s.at_ms)
            .bind(&s.level)
            .bind(&s.sample_json)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A meeting's samples, by participant, oldest first.
    pub async fn meeting_quality(&self, meeting_id: &str) -> Result<Vec<QualityRow>> {
        let rows = sqlx::query(
            "SELECT participant_id, display_name, at_ms, sample_json FROM quality_samples \
             WHERE meeting_id = $1 ORDER BY participant_id, at_ms",
        )
        .bind(meeting_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QualityRow {
                    participant_id: row.int("participant_id")?,
                    display_name: row.text("display_name")?,
                    at_ms: row.int("at_ms")?,
                    sample_json: row.text("sample_json")?,
                })
            })
            .collect()
    }

    /// The organisation's meetings with samples, the latest first.
    pub async fn quality_summaries(&self, org_id: &str, limit: i64) -> Result<Vec<QualitySummaryRow>> {
        let rows = sqlx::query(
            "SELECT q.meeting_id AS meeting_id, m.title AS title, MIN(q.at_ms) AS first_ms, MAX(q.at_ms) AS last_ms, \
             COUNT(DISTINCT q.participant_id) AS participants, COUNT(*) AS samples, \
             SUM(CASE WHEN q.level = 'poor' THEN 1 ELSE 0 END) AS poor_samples \
             FROM quality_samples q JOIN meetings m ON m.id = q.meeting_id \
             WHERE m.org_id = $1 GROUP BY q.meeting_id, m.title ORDER BY MAX(q.at_ms) DESC LIMIT $2",
        )
        .bind(org_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QualitySummaryRow {
                    meeting_id: row.text("meeting_id")?,
                    title: row.text("title")?,
                    first_ms: row.int("first_ms")?,
                    last_ms: row.int("last_ms")?,
                    participants: row.int("participants")?,
                    samples: row.int("samples")?,
                    poor_samples: row.int("poor_samples")?,
                })
            })
            .collect()
    }

    /// Forgets samples taken before `cutoff_ms`; how many went.
    pub async fn forget_quality_before(&self, cutoff_ms: i64) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM quality_samples WHERE at_ms < $1").bind(cutoff_ms).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
