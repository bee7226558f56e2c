//! Invitations of people from outside into a conversation: a link (its
//! token) and a one-time code, both stored hashed; single use, expiring,
//! spent after a few wrong codes. The first makes the guest's account; a
//! guest invited again takes the next one signed in.

use crate::users::{insert_user, NewUser, UserRow};
use crate::{Result, RowExt, Store, StoreError};
use sqlx::any::AnyRow;

/// Wrong codes an invitation survives; the next one spends it.
pub const MAX_FAILED_GUEST_CODES: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestInvitationRow {
    pub id: String,
    pub conversation_id: String,
    pub email: String,
    pub code_hash: String,
    pub invited_by: String,
    pub failed_codes: i64,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub accepted_at_ms: Option<i64>,
    pub accepted_by: Option<String>,
}

impl GuestInvitationRow {
    pub fn is_open(&self, now_ms: i64) -> bool {
        self.accepted_at_ms.is_none() && self.failed_codes < MAX_FAILED_GUEST_CODES && self.expires_at_ms > now_ms
    }
}

const COLUMNS: &str = "id, conversation_id, email, code_hash, invited_by, failed_codes, created_at_ms, \
     expires_at_ms, accepted_at_ms, accepted_by";

fn invitation(row: &AnyRow) -> Result<GuestInvitationRow> {
    Ok(GuestInvitationRow {
        id: row.text("id")?,
        conversation_id: row.text("conversation_id")?,
        email: row.text("email")?,
        code_hash: row.text("code_hash")?,
        invited_by: row.text("invited_by")?,
        failed_codes: row.int("failed_codes")?,
        created_at_ms: row.int("created_at_ms")?,
        expires_at_ms: row.int("expires_at_ms")?,
        accepted_at_ms: row.opt_int("accepted_at_ms")?,
        accepted_by: row.opt_text("accepted_by")?,
    })
}

impl Store {
    pub async fn create_guest_invitation(&self, row: &GuestInvitationRow, token_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO guest_invitations (id, conversation_id, email, token_hash, code_hash, invited_by, \
             failed_codes, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
        )
        .bind(&row.id)
        .bind(&row.conversation_id)
        .bind(&row.email)
        .bind(token_hash)
        .bind(&row.code_hash)
        .bind(&row.invited_by)
        .bind(row.created_at_ms)
        .bind(row.expires_at_ms)
        .execute(&self.pool)
        .await
        .map_err(StoreError::conflict_as("guest invitation"))?;
        Ok(())
    }

    pub async fn guest_invitation_by_token_hash(&self, token_hash: &str) -> Result<Option<GuestInvitationRow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM guest_invitations WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(invitation).transpose()
    }

    /// Counts a wrong code against an open invitation; how many wrong codes
    /// it has had (at [`MAX_FAILED_GUEST_CODES`] it is spent).
    pub async fn fail_guest_code(&self, id: &str) -> Result<i64> {
        sqlx::query(
            "UPDATE guest_invitations SET failed_codes = failed_codes + 1 WHERE id = $1 AND accepted_at_ms IS NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT failed_codes FROM guest_invitations WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        row.int("failed_codes")
    }

    /// Takes the invitation and creates the guest's account (in no
    /// organisation) in one transaction: one invitation, one account.
    pub async fn accept_guest_invitation(&self, id: &str, user: &NewUser<'_>) -> Result<UserRow> {
        let mut tx = self.pool.begin().await?;
        let user = insert_user(&mut tx, &NewUser { org_id: None, role: None, ..user.clone() }).await?;
        take(&mut tx, id, &user.id, user.created_at_ms).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Takes the invitation for a guest who has an account already (an
    /// invitation into another conversation): once, while it is open.
    pub async fn take_guest_invitation(&self, id: &str, user_id: &str, now_ms: i64) -> Result<()> {
        take(&mut *self.pool.acquire().await?, id, user_id, now_ms).await
    }

    /// Whether the account came in as a guest (it sees only the
    /// conversations it is invited to, and starts nothing of its own).
    pub async fn is_guest(&self, user_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM guest_invitations WHERE accepted_by = $1")
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.int("n")? > 0)
    }
}

/// Marks the invitation taken by `user_id`, if it is still open: one
/// invitation, one taker, however many race for it.
async fn take(conn: &mut sqlx::AnyConnection, id: &str, user_id: &str, now_ms: i64) -> Result<()> {
    let done = sqlx::query(
        "UPDATE guest_invitations SET accepted_at_ms = $2, accepted_by = $3 WHERE id = $1 \
         AND accepted_at_ms IS NULL AND expires_at_ms > $2 AND failed_codes < $4",
    )
    .bind(id)
    .bind(now_ms)
    .bind(user_id)
    .bind(MAX_FAILED_GUEST_CODES)
    .execute(conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::NotFound("open invitation"));
    }
    Ok(())
}
