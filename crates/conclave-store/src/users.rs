//! Accounts: identity, password hash, organisation role, status and TOTP.

use crate::{new_id, Result, RowExt, Store, StoreError};
use conclave_proto::{AccountStatus, OrgRole};
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    /// Lower-cased; unique across the server.
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub org_id: Option<String>,
    pub role: Option<OrgRole>,
    pub status: AccountStatus,
    /// The TOTP seed as the server sealed it (the store never sees it in
    /// the clear); `Some` when two-factor is on.
    pub totp_secret: Option<String>,
    /// A seed being enrolled, sealed the same way.
    pub totp_pending_secret: Option<String>,
    pub totp_last_step: Option<i64>,
    pub created_at_ms: i64,
    pub last_active_at_ms: i64,
    /// What the organisation's identity provider calls this person
    /// (SCIM `userName`), when it provisions them.
    pub scim_user_name: Option<String>,
    /// The provider's own id for this person (SCIM `externalId`).
    pub scim_external_id: Option<String>,
    /// When the provider deleted the account (kept closed for the audit log).
    pub scim_deleted_at_ms: Option<i64>,
    /// The user as the provider last described it (SCIM JSON).
    pub scim_resource: Option<String>,
}

/// One account's stored TOTP seeds.
#[derive(Debug, Clone)]
pub struct TotpSeeds {
    pub user_id: String,
    pub secret: Option<String>,
    pub pending: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub org_id: Option<&'a str>,
    pub role: Option<OrgRole>,
    pub now_ms: i64,
}

pub(crate) fn status_str(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Active => "active",
        AccountStatus::Deactivated => "deactivated",
        AccountStatus::Dormant => "dormant",
    }
}

fn parse_status(text: String) -> Result<AccountStatus> {
    match text.as_str() {
        "active" => Ok(AccountStatus::Active),
        "deactivated" => Ok(AccountStatus::Deactivated),
        "dormant" => Ok(AccountStatus::Dormant),
        _ => Err(StoreError::Corrupt { column: "users.status", value: text }),
    }
}

impl TryFrom<AnyRow> for UserRow {
    type Error = StoreError;
    fn try_from(row: AnyRow) -> Result<Self> {
        Self::decode(&row)
    }
}

impl UserRow {
    pub(crate) fn decode(row: &impl RowExt) -> Result<Self> {
        let role = match row.opt_text("role")? {
            None => None,
            Some(text) => Some(OrgRole::parse(&text).ok_or(StoreError::Corrupt { column: "users.role", value: text })?),
        };
        Ok(Self {
            id: row.text("id")?,
            email: row.text("email")?,
            display_name: row.text("display_name")?,
            password_hash: row.text("password_hash")?,
            org_id: row.opt_text("org_id")?,
            role,
            status: parse_status(row.text("status")?)?,
            totp_secret: row.opt_text("totp_secret")?,
            totp_pending_secret: row.opt_text("totp_pending_secret")?,
            totp_last_step: row.opt_int("totp_last_step")?,
            created_at_ms: row.int("created_at_ms")?,
            last_active_at_ms: row.int("last_active_at_ms")?,
            scim_user_name: row.opt_text("scim_user_name")?,
            scim_external_id: row.opt_text("scim_external_id")?,
            scim_deleted_at_ms: row.opt_int("scim_deleted_at_ms")?,
            scim_resource: row.opt_text("scim_resource")?,
        })
    }
}

pub(crate) const USER_COLUMNS: &str = "id, email, display_name, password_hash, org_id, role, status, totp_secret, totp_pending_secret, totp_last_step, created_at_ms, last_active_at_ms, scim_user_name, scim_external_id, scim_deleted_at_ms, scim_resource";

impl Store {
    pub async fn create_user(&self, new: &NewUser<'_>) -> Result<UserRow> {
        let mut tx = self.pool.begin().await?;
        let user = insert_user(&mut tx, new).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?.map(UserRow::try_from).transpose()
    }

    /// The accounts with these ids (those that exist), in any order: one
    /// query per 500 ids rather than one per account.
    pub async fn users_by_ids(&self, ids: &[String]) -> Result<Vec<UserRow>> {
        let mut users = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let places: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id IN ({})", places.join(", "));
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await? {
                users.push(UserRow::try_from(row)?);
            }
        }
        Ok(users)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        sqlx::query(&sql).bind(email).fetch_optional(&self.pool).await?.map(UserRow::try_from).transpose()
    }

    pub async fn list_org_members(&self, org_id: &str) -> Result<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 ORDER BY created_at_ms, id");
        sqlx::query(&sql).bind(org_id).fetch_all(&self.pool).await?.into_iter().map(UserRow::try_from).collect()
    }

    /// Active members of `org_id` whose name or address contains `query`
    /// (any case), by name: whom someone may start a conversation with.
    pub async fn search_org_members(&self, org_id: &str, query: &str, limit: i64) -> Result<Vec<UserRow>> {
        let pattern = format!("%{}%", like_escaped(&query.to_lowercase()));
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND status = 'active' \
             AND (LOWER(display_name) LIKE $2 ESCAPE '\\' OR LOWER(email) LIKE $2 ESCAPE '\\') \
             ORDER BY display_name, id LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(org_id).bind(pattern).bind(limit).fetch_all(&self.pool).await?;
        rows.into_iter().map(UserRow::try_from).collect()
    }

    pub async fn count_org_owners(&self, org_id: &str) -> Result<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM users WHERE org_id = $1 AND role = 'owner' AND status = 'active'")
                .bind(org_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }

    pub async fn set_user_role(&self, user_id: &str, role: OrgRole) -> Result<()> {
        self.update_user(user_id, "UPDATE users SET role = $2 WHERE id = $1", role.as_str()).await
    }

    pub async fn set_user_status(&self, user_id: &str, status: AccountStatus) -> Result<()> {
        self.update_user(user_id, "UPDATE users SET status = $2 WHERE id = $1", status_str(status)).await
    }

    /// Reactivation counts as activity, so a dormant account is not
    /// disabled again by the next sweep.
    pub async fn reactivate_user(&self, user_id: &str, now_ms: i64) -> Result<()> {
        let done = sqlx::query("UPDATE users SET status = 'active', last_active_at_ms = $2 WHERE id = $1")
            .bind(user_id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("account"));
        }
        Ok(())
    }

    pub async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<()> {
        self.update_user(user_id, "UPDATE users SET password_hash = $2 WHERE id = $1", hash).await
    }

    pub async fn set_pending_totp(&self, user_id: &str, secret: &str) -> Result<()> {
        self.update_user(user_id, "UPDATE users SET totp_pending_secret = $2 WHERE id = $1", secret).await
    }

    /// Turns on 2FA with the pending secret, records the step just used, and
    /// replaces the recovery codes; all or nothing.
    pub async fn enable_totp(&self, user_id: &str, secret: &str, step: i64, recovery_hashes: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET totp_secret = $2, totp_pending_secret = NULL, totp_last_step = $3 WHERE id = $1")
            .bind(user_id)
            .bind(secret)
            .bind(step)
            .execute(&mut *tx)
            .await?;
        replace_recovery_codes(&mut tx, user_id, recovery_hashes).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn disable_totp(&self, user_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_last_step = NULL WHERE id = $1",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        replace_recovery_codes(&mut tx, user_id, &[]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The accounts with a stored TOTP seed (enrolled or pending) that does
    /// not start with `sealed_prefix`: those an earlier version kept in the
    /// clear, for the server to seal (after the first start, none).
    pub async fn unsealed_totp_seeds(&self, sealed_prefix: &str) -> Result<Vec<TotpSeeds>> {
        let rows = sqlx::query(
            "SELECT id, totp_secret, totp_pending_secret FROM users \
             WHERE (totp_secret IS NOT NULL AND SUBSTR(totp_secret, 1, LENGTH($1)) <> $1) \
             OR (totp_pending_secret IS NOT NULL AND SUBSTR(totp_pending_secret, 1, LENGTH($1)) <> $1)",
        )
        .bind(sealed_prefix)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TotpSeeds {
                    user_id: row.text("id")?,
                    secret: row.opt_text("totp_secret")?,
                    pending: row.opt_text("totp_pending_secret")?,
                })
            })
            .collect()
    }

    /// Replaces the given seeds of one account with their sealed form
    /// (`None` leaves that one as it is).
    pub async fn reseal_totp_seeds(&self, user_id: &str, secret: Option<&str>, pending: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE users SET totp_secret = COALESCE($2, totp_secret), \
             totp_pending_secret = COALESCE($3, totp_pending_secret) WHERE id = $1",
        )
        .bind(user_id)
        .bind(secret)
        .bind(pending)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn replace_recovery_codes(&self, user_id: &str, hashes: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        replace_recovery_codes(&mut tx, user_id, hashes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records `step` as used if it is newer than the last used one. Atomic,
    /// so the same code cannot be accepted twice even by two nodes at once.
    pub async fn claim_totp_step(&self, user_id: &str, step: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(user_id)
        .bind(step)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks an unused recovery code as used; false when there is none.
    pub async fn use_recovery_code(&self, user_id: &str, code_hash: &str, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at_ms = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at_ms IS NULL",
        )
        .bind(user_id)
        .bind(code_hash)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn unused_recovery_codes(&self, user_id: &str) -> Result<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at_ms IS NULL")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }

    /// Notes activity, at most once a minute per account to spare writes.
    pub async fn touch_user(&self, user_id: &str, now_ms: i64) -> Result<()> {
        sqlx::query("UPDATE users SET last_active_at_ms = $2 WHERE id = $1 AND last_active_at_ms < $3")
            .bind(user_id)
            .bind(now_ms)
            .bind(now_ms - crate::TOUCH_INTERVAL_MS)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks active members of `org_id` unused since `cutoff_ms` as dormant
    /// and returns their ids.
    pub async fn disable_dormant_members(&self, org_id: &str, cutoff_ms: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "UPDATE users SET status = 'dormant' WHERE org_id = $1 AND status = 'active' AND last_active_at_ms < $2 RETURNING id",
        )
        .bind(org_id)
        .bind(cutoff_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn update_user(&self, user_id: &str, sql: &str, value: &str) -> Result<()> {
        let done = sqlx::query(sql).bind(user_id).bind(value).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("account"));
        }
        Ok(())
    }
}

pub(crate) async fn insert_user(tx: &mut sqlx::Transaction<'_, sqlx::Any>, new: &NewUser<'_>) -> Result<UserRow> {
    let id = new_id();
    let sql = format!(
        "INSERT INTO users (id, email, display_name, password_hash, org_id, role, status, created_at_ms, last_active_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $7) RETURNING {USER_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(&id)
        .bind(new.email)
        .bind(new.display_name)
        .bind(new.password_hash)
        .bind(new.org_id)
        .bind(new.role.map(OrgRole::as_str))
        .bind(new.now_ms)
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::conflict_as("account"))?;
    UserRow::try_from(row)
}

async fn replace_recovery_codes(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
    hashes: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut **tx).await?;
    for hash in hashes {
        sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user_id)
            .bind(hash)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// `text` matched literally inside a LIKE pattern (escape character `\`).
fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
