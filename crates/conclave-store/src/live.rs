//! Join tickets and resume tokens: what lets a connection into a live
//! meeting, kept as hashes where every node sharing the database can check
//! them. A ticket is taken in one statement (delete-returning), so of two
//! nodes redeeming it at once exactly one gets it.

use crate::{Result, RowExt, Store};

/// A redeemed ticket: the meeting it opens and who it admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemedTicket {
    pub meeting_id: String,
    pub entrant_json: String,
}

impl Store {
    /// Keeps a new ticket; expired ones are swept on the way.
    pub async fn add_join_ticket(
        &self,
        token_hash: &str,
        meeting_id: &str,
        entrant_json: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query("DELETE FROM join_tickets WHERE expires_at_ms <= $1").bind(now_ms).execute(&self.pool).await?;
        sqlx::query(
            "INSERT INTO join_tickets (token_hash, meeting_id, entrant_json, expires_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(meeting_id)
        .bind(entrant_json)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes a ticket: it is gone afterwards, redeemed or not. `None` when
    /// it is unknown, already taken, or expired.
    pub async fn take_join_ticket(&self, token_hash: &str, now_ms: i64) -> Result<Option<RedeemedTicket>> {
        let row = sqlx::query(
            "DELETE FROM join_tickets WHERE token_hash = $1 RETURNING meeting_id, entrant_json, expires_at_ms",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        if row.int("expires_at_ms")? <= now_ms {
            return Ok(None);
        }
        Ok(Some(RedeemedTicket { meeting_id: row.text("meeting_id")?, entrant_json: row.text("entrant_json")? }))
    }

    /// Revokes every unredeemed ticket of a meeting (its secrets rotated,
    /// or it was deleted).
    pub async fn revoke_join_tickets(&self, meeting_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM join_tickets WHERE meeting_id = $1").bind(meeting_id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn add_resume_token(&self, token_hash: &str, meeting_id: &str, now_ms: i64) -> Result<()> {
        sqlx::query("INSERT INTO resume_tokens (token_hash, meeting_id, created_at_ms) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(meeting_id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The meeting a resume token's seat is in, if the token is known.
    pub async fn resume_token_meeting(&self, token_hash: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT meeting_id FROM resume_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(m,)| m))
    }

    /// Forgets what a node that stopped without closing its rooms left
    /// behind: resume tokens issued before `resume_before_ms`, and tickets
    /// expired by `now_ms` that nobody redeemed. How many rows went.
    pub async fn forget_stale_entry_tokens(&self, resume_before_ms: i64, now_ms: i64) -> Result<u64> {
        let resumes = sqlx::query("DELETE FROM resume_tokens WHERE created_at_ms < $1")
            .bind(resume_before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let tickets = sqlx::query("DELETE FROM join_tickets WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(resumes + tickets)
    }

    /// A meeting's room closed: its seats, and their tokens, are gone.
    pub async fn forget_resume_tokens(&self, meeting_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM resume_tokens WHERE meeting_id = $1").bind(meeting_id).execute(&self.pool).await?;
        Ok(())
    }
}
