//! Sessions: sign-ins and personal access tokens. Only a hash of each token
//! is stored.

use crate::users::USER_COLUMNS;
use crate::{new_id, prefixed_columns, Prefixed, Result, RowExt, Store, UserRow};
use conclave_proto::{Org, OrgPolicy};
use sqlx::any::AnyRow;

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    /// `login` or `access_token`.
    pub kind: String,
    pub name: Option<String>,
    pub csrf_token: String,
    pub created_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub expires_at_ms: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub revoked_at_ms: Option<i64>,
}

/// A session with its account and organisation, as [`Store::signed_in`]
/// reads them.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: SessionRow,
    pub user: UserRow,
    pub org: Option<(Org, OrgPolicy)>,
}

impl SessionRow {
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && self.expires_at_ms > now_ms
    }
}

#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub user_id: &'a str,
    pub token_hash: &'a str,
    pub kind: &'a str,
    pub name: Option<&'a str>,
    pub csrf_token: &'a str,
    pub now_ms: i64,
    pub expires_at_ms: i64,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

const SESSION_COLUMNS: &str =
    "id, user_id, kind, name, csrf_token, created_at_ms, last_seen_at_ms, expires_at_ms, ip, user_agent, revoked_at_ms";

impl TryFrom<AnyRow> for SessionRow {
    type Error = crate::StoreError;
    fn try_from(row: AnyRow) -> Result<Self> {
        Self::decode(&row)
    }
}

impl SessionRow {
    fn decode(row: &impl RowExt) -> Result<Self> {
        Ok(Self {
            id: row.text("id")?,
            user_id: row.text("user_id")?,
            kind: row.text("kind")?,
            name: row.opt_text("name")?,
            csrf_token: row.text("csrf_token")?,
            created_at_ms: row.int("created_at_ms")?,
            last_seen_at_ms: row.int("last_seen_at_ms")?,
            expires_at_ms: row.int("expires_at_ms")?,
            ip: row.opt_text("ip")?,
            user_agent: row.opt_text("user_agent")?,
            revoked_at_ms: row.opt_int("revoked_at_ms")?,
        })
    }
}

impl Store {
    pub async fn create_session(&self, new: &NewSession<'_>) -> Result<SessionRow> {
        let sql = format!(
            "INSERT INTO sessions (id, user_id, token_hash, kind, name, csrf_token, created_at_ms, last_seen_at_ms, expires_at_ms, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10) RETURNING {SESSION_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(new_id())
            .bind(new.user_id)
            .bind(new.token_hash)
            .bind(new.kind)
            .bind(new.name)
            .bind(new.csrf_token)
            .bind(new.now_ms)
            .bind(new.expires_at_ms)
            .bind(new.ip)
            .bind(new.user_agent)
            .fetch_one(&self.pool)
            .await?;
        SessionRow::try_from(row)
    }

    /// The session with this token's hash, with its account and the
    /// account's organisation: what every signed-in request needs, read in
    /// one statement rather than three.
    pub async fn signed_in(&self, token_hash: &str) -> Result<Option<SignedIn>> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {}, {}, {} FROM sessions s JOIN users u ON u.id = s.user_id \
                 LEFT JOIN orgs o ON o.id = u.org_id WHERE s.token_hash = $1",
                prefixed_columns("s", SESSION_COLUMNS, "s_"),
                prefixed_columns("u", USER_COLUMNS, "u_"),
                prefixed_columns("o", crate::orgs::ORG_COLUMNS, "o_"),
            )
        });
        let Some(row) = sqlx::query(&SQL).bind(token_hash).fetch_optional(&self.pool).await? else { return Ok(None) };
        let org = Prefixed { row: &row, prefix: "o_" };
        Ok(Some(SignedIn {
            session: SessionRow::decode(&Prefixed { row: &row, prefix: "s_" })?,
            user: UserRow::decode(&Prefixed { row: &row, prefix: "u_" })?,
            org: match org.opt_text("id")? {
                Some(_) => Some(crate::orgs::org_from_row(&org)?),
                None => None,
            },
        }))
    }

    /// Notes use of a session, at most once a minute to spare writes.
    pub async fn touch_session(&self, session_id: &str, now_ms: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at_ms = $2 WHERE id = $1 AND last_seen_at_ms < $3")
            .bind(session_id)
            .bind(now_ms)
            .bind(now_ms - crate::TOUCH_INTERVAL_MS)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the session is live (neither revoked nor expired), its
    /// account active and `device_id` one of the account's devices not
    /// revoked, in one read: what a device's live connection checks while
    /// it stays open and before the messages it sends.
    pub async fn device_session_stands(
        &self,
        session_id: &str,
        user_id: &str,
        device_id: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS live FROM sessions s JOIN users u ON u.id = s.user_id \
             JOIN devices d ON d.user_id = u.id \
             WHERE s.id = $1 AND s.user_id = $2 AND d.id = $3 AND s.revoked_at_ms IS NULL \
             AND s.expires_at_ms > $4 AND u.status = 'active' AND d.revoked_at_ms IS NULL",
        )
        .bind(session_id)
        .bind(user_id)
        .bind(device_id)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// The account's sessions that are neither revoked nor expired.
    /// Where the account has signed in from before: each distinct address
    /// and user agent of its sign-in sessions, ended ones included.
    /// Ends `user_id`'s live sessions of `kind`; returns how many.
    pub async fn revoke_sessions_of_kind(&self, user_id: &str, kind: &str, now_ms: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at_ms = $3 WHERE user_id = $1 AND kind = $2 AND revoked_at_ms IS NULL",
        )
        .bind(user_id)
        .bind(kind)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn sign_in_origins(&self, user_id: &str) -> Result<Vec<(Option<String>, Option<String>)>> {
        let rows =
            sqlx::query("SELECT DISTINCT ip, user_agent FROM sessions WHERE user_id = $1 AND kind <> 'access_token'")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|row| Ok((row.opt_text("ip")?, row.opt_text("user_agent")?))).collect()
    }

    pub async fn list_live_sessions(&self, user_id: &str, now_ms: i64) -> Result<Vec<SessionRow>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at_ms IS NULL AND expires_at_ms > $2 ORDER BY created_at_ms DESC, id"
        );
        sqlx::query(&sql)
            .bind(user_id)
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(SessionRow::try_from)
            .collect()
    }

    /// Revokes one of the account's sessions; false when it has no such live session.
    pub async fn revoke_session(&self, user_id: &str, session_id: &str, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at_ms = $3 WHERE id = $1 AND user_id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(session_id)
        .bind(user_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes every live session of the account except `keep`; returns how many.
    pub async fn revoke_sessions_except(&self, user_id: &str, keep: Option<&str>, now_ms: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at_ms = $3 WHERE user_id = $1 AND revoked_at_ms IS NULL AND id <> $2",
        )
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Password resets by email: a token (stored hashed) that sets a new
/// password once, within its lifetime.
impl Store {
    pub async fn create_password_reset(
        &self,
        user_id: &str,
        token_hash: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO password_resets (token_hash, user_id, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now_ms)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The account an unused, unexpired reset token is for (not using it).
    pub async fn password_reset_user(&self, token_hash: &str, now_ms: i64) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT user_id FROM password_resets WHERE token_hash = $1 AND used_at_ms IS NULL AND expires_at_ms > $2",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.text("user_id")).transpose()
    }

    /// The account a reset token is for, if it is unused and unexpired;
    /// taking it uses it (and every other open reset of that account).
    pub async fn take_password_reset(&self, token_hash: &str, now_ms: i64) -> Result<Option<String>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE password_resets SET used_at_ms = $2 WHERE token_hash = $1 AND used_at_ms IS NULL \
             AND expires_at_ms > $2 RETURNING user_id",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user_id = row.text("user_id")?;
        sqlx::query("UPDATE password_resets SET used_at_ms = $2 WHERE user_id = $1 AND used_at_ms IS NULL")
            .bind(&user_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(user_id))
    }
}
