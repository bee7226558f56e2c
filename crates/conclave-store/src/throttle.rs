//! Failed-login counters per account key, shared by every node through the
//! database. The key is a hash of the normalised email whether or not such an
//! account exists, so locking out reveals nothing about which emails exist.

use crate::{Result, Store};
use conclave_auth::Backoff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRow {
    pub failures: i64,
    pub locked_until_ms: i64,
}

impl Store {
    pub async fn login_throttle(&self, key_hash: &str) -> Result<Option<ThrottleRow>> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT failures, locked_until_ms FROM login_throttle WHERE key_hash = $1")
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(failures, locked_until_ms)| ThrottleRow { failures, locked_until_ms }))
    }

    /// Counts one more failure (starting over after `forget_after_ms` of
    /// quiet) and applies the backoff's lockout. The increment is a single
    /// statement, so concurrent failures on several nodes all count.
    pub async fn record_login_failure(
        &self,
        key_hash: &str,
        now_ms: i64,
        forget_after_ms: i64,
        backoff: &Backoff,
    ) -> Result<ThrottleRow> {
        let (failures,): (i64,) = sqlx::query_as(
            "INSERT INTO login_throttle (key_hash, failures, last_failure_ms, locked_until_ms) VALUES ($1, 1, $2, 0) \
             ON CONFLICT (key_hash) DO UPDATE SET \
               failures = CASE WHEN login_throttle.last_failure_ms < $3 THEN 1 ELSE login_throttle.failures + 1 END, \
               last_failure_ms = $2 \
             RETURNING failures",
        )
        .bind(key_hash)
        .bind(now_ms)
        .bind(now_ms - forget_after_ms)
        .fetch_one(&self.pool)
        .await?;
        let mut locked_until_ms = 0;
        if let Some(lock) = backoff.lock_for(u32::try_from(failures).unwrap_or(u32::MAX)) {
            locked_until_ms = now_ms + lock.as_millis() as i64;
            sqlx::query("UPDATE login_throttle SET locked_until_ms = $2 WHERE key_hash = $1 AND locked_until_ms < $2")
                .bind(key_hash)
                .bind(locked_until_ms)
                .execute(&self.pool)
                .await?;
        }
        Ok(ThrottleRow { failures, locked_until_ms })
    }

    pub async fn clear_login_failures(&self, key_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE key_hash = $1").bind(key_hash).execute(&self.pool).await?;
        Ok(())
    }
}
