//! The at-risk meeting notifier's rows: the public sources organisations
//! watch, with what polling them politely needs, and the warnings sent to
//! meetings' owners.

use crate::{new_id, Result, RowExt, Store, StoreError};
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSourceRow {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub failures: i64,
    pub next_poll_at_ms: i64,
    pub last_polled_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
}

impl TryFrom<AnyRow> for WatchSourceRow {
    type Error = StoreError;
    fn try_from(row: AnyRow) -> Result<Self> {
        Ok(Self {
            id: row.text("id")?,
            org_id: row.text("org_id")?,
            url: row.text("url")?,
            etag: row.opt_text("etag")?,
            last_modified: row.opt_text("last_modified")?,
            failures: row.int("failures")?,
            next_poll_at_ms: row.int("next_poll_at_ms")?,
            last_polled_at_ms: row.opt_int("last_polled_at_ms")?,
            last_error: row.opt_text("last_error")?,
            created_at_ms: row.int("created_at_ms")?,
        })
    }
}

const SOURCE_COLUMNS: &str =
    "id, org_id, url, etag, last_modified, failures, next_poll_at_ms, last_polled_at_ms, last_error, created_at_ms";

/// How one poll of a source went.
#[derive(Debug, Clone)]
pub struct Polled<'a> {
    pub etag: Option<&'a str>,
    pub last_modified: Option<&'a str>,
    pub failures: i64,
    pub next_poll_at_ms: i64,
    pub error: Option<&'a str>,
    pub now_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskWarningRow {
    pub id: String,
    pub meeting_id: String,
    pub owner_id: String,
    pub org_id: String,
    pub source_url: String,
    pub post_url: String,
    pub score: i64,
    /// One reason per line.
    pub reasons: String,
    pub created_at_ms: i64,
    pub used_at_ms: Option<i64>,
}

impl TryFrom<AnyRow> for RiskWarningRow {
    type Error = StoreError;
    fn try_from(row: AnyRow) -> Result<Self> {
        Ok(Self {
            id: row.text("id")?,
            meeting_id: row.text("meeting_id")?,
            owner_id: row.text("owner_id")?,
            org_id: row.text("org_id")?,
            source_url: row.text("source_url")?,
            post_url: row.text("post_url")?,
            score: row.int("score")?,
            reasons: row.text("reasons")?,
            created_at_ms: row.int("created_at_ms")?,
            used_at_ms: row.opt_int("used_at_ms")?,
        })
    }
}

const WARNING_COLUMNS: &str =
    "id, meeting_id, owner_id, org_id, source_url, post_url, score, reasons, created_at_ms, used_at_ms";

impl Store {
    pub async fn add_watch_source(&self, org_id: &str, url: &str, now_ms: i64) -> Result<WatchSourceRow> {
        let sql = format!(
            "INSERT INTO watch_sources (id, org_id, url, created_at_ms) VALUES ($1, $2, $3, $4) RETURNING {SOURCE_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(new_id())
            .bind(org_id)
            .bind(url)
            .bind(now_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::conflict_as("watched source"))?;
        WatchSourceRow::try_from(row)
    }

    pub async fn watch_sources(&self, org_id: &str) -> Result<Vec<WatchSourceRow>> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM watch_sources WHERE org_id = $1 ORDER BY created_at_ms, id");
        sqlx::query(&sql).bind(org_id).fetch_all(&self.pool).await?.into_iter().map(WatchSourceRow::try_from).collect()
    }

    pub async fn delete_watch_source(&self, org_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM watch_sources WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every organisation's sources whose next poll is due.
    pub async fn due_watch_sources(&self, now_ms: i64) -> Result<Vec<WatchSourceRow>> {
        let sql =
            format!("SELECT {SOURCE_COLUMNS} FROM watch_sources WHERE next_poll_at_ms <= $1 ORDER BY next_poll_at_ms");
        sqlx::query(&sql).bind(now_ms).fetch_all(&self.pool).await?.into_iter().map(WatchSourceRow::try_from).collect()
    }

    pub async fn record_poll(&self, id: &str, polled: &Polled<'_>) -> Result<()> {
        sqlx::query(
            "UPDATE watch_sources SET etag = COALESCE($2, etag), last_modified = COALESCE($3, last_modified), \
             failures = $4, next_poll_at_ms = $5, last_error = $6, last_polled_at_ms = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(polled.etag)
        .bind(polled.last_modified)
        .bind(polled.failures)
        .bind(polled.next_poll_at_ms)
        .bind(polled.error)
        .bind(polled.now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a warning unless the same post was already reported for the
    /// same meeting; true when it is new (and should be sent).
    #[allow(clippy::too_many_arguments)]
    pub async fn add_risk_warning(
        &self,
        meeting_id: &str,
        owner_id: &str,
        org_id: &str,
        source_url: &str,
        post_url: &str,
        score: i64,
        reasons: &str,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO risk_warnings (id, meeting_id, owner_id, org_id, source_url, post_url, score, reasons, token_hash, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (meeting_id, post_url) DO NOTHING",
        )
        .bind(new_id())
        .bind(meeting_id)
        .bind(owner_id)
        .bind(org_id)
        .bind(source_url)
        .bind(post_url)
        .bind(score)
        .bind(reasons)
        .bind(token_hash)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn risk_warnings_for(&self, owner_id: &str) -> Result<Vec<RiskWarningRow>> {
        let sql =
            format!("SELECT {WARNING_COLUMNS} FROM risk_warnings WHERE owner_id = $1 ORDER BY created_at_ms DESC, id");
        sqlx::query(&sql)
            .bind(owner_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(RiskWarningRow::try_from)
            .collect()
    }

    /// Spends a warning's link: the warning, if the link was unused.
    pub async fn take_risk_warning(&self, token_hash: &str, now_ms: i64) -> Result<Option<RiskWarningRow>> {
        let sql = format!(
            "UPDATE risk_warnings SET used_at_ms = $2 WHERE token_hash = $1 AND used_at_ms IS NULL RETURNING {WARNING_COLUMNS}"
        );
        sqlx::query(&sql)
            .bind(token_hash)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await?
            .map(RiskWarningRow::try_from)
            .transpose()
    }

    /// The meeting's secrets changed: its warnings are dealt with, and
    /// their links are spent.
    pub async fn resolve_risk_warnings(&self, meeting_id: &str, now_ms: i64) -> Result<u64> {
        let done = sqlx::query("UPDATE risk_warnings SET used_at_ms = $2 WHERE meeting_id = $1 AND used_at_ms IS NULL")
            .bind(meeting_id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
