//! Invitations to join an organisation: single-use, expiring, revocable.

use crate::users::{insert_user, NewUser, UserRow};
use crate::{new_id, Result, RowExt, Store, StoreError};
use conclave_proto::OrgRole;
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct InvitationRow {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub role: OrgRole,
    pub invited_by: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub accepted_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

impl InvitationRow {
    pub fn is_open(&self, now_ms: i64) -> bool {
        self.accepted_at_ms.is_none() && self.revoked_at_ms.is_none() && self.expires_at_ms > now_ms
    }
}

const INVITATION_COLUMNS: &str =
    "id, org_id, email, role, invited_by, created_at_ms, expires_at_ms, accepted_at_ms, revoked_at_ms";

impl TryFrom<AnyRow> for InvitationRow {
    type Error = StoreError;
    fn try_from(row: AnyRow) -> Result<Self> {
        let role_text = row.text("role")?;
        Ok(Self {
            id: row.text("id")?,
            org_id: row.text("org_id")?,
            email: row.text("email")?,
            role: OrgRole::parse(&role_text)
                .ok_or(StoreError::Corrupt { column: "invitations.role", value: role_text })?,
            invited_by: row.text("invited_by")?,
            created_at_ms: row.int("created_at_ms")?,
            expires_at_ms: row.int("expires_at_ms")?,
            accepted_at_ms: row.opt_int("accepted_at_ms")?,
            revoked_at_ms: row.opt_int("revoked_at_ms")?,
        })
    }
}

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub async fn create_invitation(
        &self,
        org_id: &str,
        email: &str,
        role: OrgRole,
        token_hash: &str,
        invited_by: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<InvitationRow> {
        let sql = format!(
            "INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {INVITATION_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(new_id())
            .bind(org_id)
            .bind(email)
            .bind(role.as_str())
            .bind(token_hash)
            .bind(invited_by)
            .bind(now_ms)
            .bind(expires_at_ms)
            .fetch_one(&self.pool)
            .await?;
        InvitationRow::try_from(row)
    }

    pub async fn invitation_by_token_hash(&self, token_hash: &str) -> Result<Option<InvitationRow>> {
        let sql = format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = $1");
        sqlx::query(&sql).bind(token_hash).fetch_optional(&self.pool).await?.map(InvitationRow::try_from).transpose()
    }

    pub async fn list_invitations(&self, org_id: &str) -> Result<Vec<InvitationRow>> {
        let sql = format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE org_id = $1 AND revoked_at_ms IS NULL ORDER BY created_at_ms DESC, id");
        sqlx::query(&sql).bind(org_id).fetch_all(&self.pool).await?.into_iter().map(InvitationRow::try_from).collect()
    }

    /// Revokes an open invitation of `org_id`; false when there is none.
    pub async fn revoke_invitation(&self, org_id: &str, invitation_id: &str, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE invitations SET revoked_at_ms = $3 WHERE id = $1 AND org_id = $2 AND revoked_at_ms IS NULL AND accepted_at_ms IS NULL",
        )
        .bind(invitation_id)
        .bind(org_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Consumes the invitation and creates the invited account in one
    /// transaction: a token can never create two accounts.
    pub async fn accept_invitation(&self, invitation: &InvitationRow, user: &NewUser<'_>) -> Result<UserRow> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE invitations SET accepted_at_ms = $2 WHERE id = $1 AND accepted_at_ms IS NULL AND revoked_at_ms IS NULL AND expires_at_ms > $2",
        )
        .bind(&invitation.id)
        .bind(user.now_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound("open invitation"));
        }
        let user = insert_user(
            &mut tx,
            &NewUser { org_id: Some(&invitation.org_id), role: Some(invitation.role), ..user.clone() },
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }
}
