//! The audit log: an append-only, hash-chained list of security and admin
//! events (see `conclave_auth::audit_chain`). Appends are serialised through
//! the single `audit_head` row, which every append updates first: SQLite's
//! writer lock or PostgreSQL's row lock then orders concurrent appenders, so
//! the chain never forks, even across nodes.

use crate::{Result, RowExt, Store};
use conclave_auth::audit_chain::{AuditLink, ChainError, ChainVerifier};
use conclave_proto::AuditEvent;
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    pub at_ms: i64,
    pub org_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    /// Dotted name, e.g. `auth.login`, `org.policy.update`.
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    /// `success`, `failure` or `denied`.
    pub outcome: &'a str,
    /// Free text or JSON; never a secret.
    pub detail: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

const AUDIT_COLUMNS: &str = "seq, at_ms, org_id, actor_id, action, target, source_ip, outcome, detail, prev_hash, hash";

fn event_from_row(row: &AnyRow) -> Result<(AuditEvent, String)> {
    let event = AuditEvent {
        seq: row.int("seq")?,
        at_ms: row.int("at_ms")?,
        org_id: row.opt_text("org_id")?,
        actor_id: row.opt_text("actor_id")?,
        action: row.text("action")?,
        target: row.opt_text("target")?,
        source_ip: row.opt_text("source_ip")?,
        outcome: row.text("outcome")?,
        detail: row.text("detail")?,
        hash: row.text("hash")?,
    };
    Ok((event, row.text("prev_hash")?))
}

fn link(e: &AuditEvent) -> AuditLink<'_> {
    AuditLink {
        seq: e.seq,
        at_ms: e.at_ms,
        org_id: e.org_id.as_deref(),
        actor_id: e.actor_id.as_deref(),
        action: &e.action,
        target: e.target.as_deref(),
        source_ip: e.source_ip.as_deref(),
        outcome: &e.outcome,
        detail: &e.detail,
    }
}

/// What `verify_audit_chain` found.
#[derive(Debug)]
pub enum AuditVerdict {
    Intact(AuditHead),
    Broken(ChainError),
}

impl Store {
    /// Appends one event to the chain and returns its sequence number.
    pub async fn append_audit(&self, event: &NewAuditEvent<'_>) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut *tx)
            .await?;
        let (seq, prev_hash) = (head.int("seq")?, head.text("hash")?);
        let hash = AuditLink {
            seq,
            at_ms: event.at_ms,
            org_id: event.org_id,
            actor_id: event.actor_id,
            action: event.action,
            target: event.target,
            source_ip: event.source_ip,
            outcome: event.outcome,
            detail: event.detail,
        }
        .hash(&prev_hash);
        let sql =
            format!("INSERT INTO audit_events ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
        sqlx::query(&sql)
            .bind(seq)
            .bind(event.at_ms)
            .bind(event.org_id)
            .bind(event.actor_id)
            .bind(event.action)
            .bind(event.target)
            .bind(event.source_ip)
            .bind(event.outcome)
            .bind(event.detail)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&hash).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Newest first; `org_id = None` lists every event (server operators).
    pub async fn list_audit_events(
        &self,
        org_id: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        let before = before.unwrap_or(i64::MAX);
        let rows = match org_id {
            Some(org) => {
                let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE org_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3");
                sqlx::query(&sql).bind(org).bind(before).bind(limit).fetch_all(&self.pool).await?
            }
            None => {
                let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq < $1 ORDER BY seq DESC LIMIT $2");
                sqlx::query(&sql).bind(before).bind(limit).fetch_all(&self.pool).await?
            }
        };
        rows.iter().map(|r| event_from_row(r).map(|(e, _)| e)).collect()
    }

    pub async fn audit_head(&self) -> Result<AuditHead> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&self.pool).await?;
        Ok(AuditHead { seq: row.int("seq")?, hash: row.text("hash")? })
    }

    /// Walks the whole chain in order, in pages, calling `progress(checked,
    /// total)` as it goes.
    pub async fn verify_audit_chain(&self, mut progress: impl FnMut(i64, i64)) -> Result<AuditVerdict> {
        let head = self.audit_head().await?;
        let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events").fetch_one(&self.pool).await?;
        let mut verifier = ChainVerifier::default();
        let mut after = 0i64;
        let mut checked = 0i64;
        loop {
            let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT 1000");
            let rows = sqlx::query(&sql).bind(after).fetch_all(&self.pool).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let (event, prev_hash) = event_from_row(row)?;
                if let Err(err) = verifier.push(&link(&event), &prev_hash, &event.hash) {
                    return Ok(AuditVerdict::Broken(err));
                }
                after = event.seq;
                checked += 1;
            }
            progress(checked, total);
        }
        Ok(match verifier.finish(head.seq, &head.hash) {
            Ok((seq, hash)) => AuditVerdict::Intact(AuditHead { seq, hash }),
            Err(err) => AuditVerdict::Broken(err),
        })
    }
}
