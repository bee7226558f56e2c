//! Signing in without a password: the OpenID providers organisations
//! connect (and which provider subject is which account), the sign-ins
//! under way with them, and people's passkeys with the WebAuthn
//! ceremonies under way. The server decides every rule; this only keeps
//! the records, each change in one statement or one transaction.

use crate::users::insert_user;
use crate::{new_id, NewUser, Result, RowExt, Store, StoreError, UserRow};
use conclave_proto::OrgRole;
use sqlx::any::AnyRow;

/// An OpenID provider an organisation signs in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityProviderRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    /// The issuer identifier (its discovery document is below it).
    pub issuer: String,
    pub client_id: String,
    /// Sealed with the server's secrets key; only the server opens it.
    pub client_secret: String,
    /// Lower-case email domains whose people may sign in through it.
    pub allowed_domains: Vec<String>,
    /// Whether a first sign-in creates the account (just in time).
    pub create_accounts: bool,
    pub created_at_ms: i64,
}

impl TryFrom<AnyRow> for IdentityProviderRow {
    type Error = StoreError;
    fn try_from(row: AnyRow) -> Result<Self> {
        let domains = row.text("allowed_domains")?;
        Ok(Self {
            id: row.text("id")?,
            org_id: row.text("org_id")?,
            name: row.text("name")?,
            issuer: row.text("issuer")?,
            client_id: row.text("client_id")?,
            client_secret: row.text("client_secret")?,
            allowed_domains: serde_json::from_str(&domains)
                .map_err(|_| StoreError::Corrupt { column: "allowed_domains", value: domains })?,
            create_accounts: row.int("create_accounts")? != 0,
            created_at_ms: row.int("created_at_ms")?,
        })
    }
}

const PROVIDER_COLUMNS: &str =
    "id, org_id, name, issuer, client_id, client_secret, allowed_domains, create_accounts, created_at_ms";

/// What an administrator sets of a provider.
#[derive(Debug, Clone)]
pub struct ProviderSettings<'a> {
    pub name: &'a str,
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub sealed_client_secret: &'a str,
    pub allowed_domains: &'a [String],
    pub create_accounts: bool,
}

/// A sign-in started with a provider, kept until it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSignIn {
    pub state_hash: String,
    pub provider_id: String,
    /// Hash of the cookie the starting browser holds.
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub expires_at_ms: i64,
}

/// A passkey of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRow {
    pub id: String,
    pub user_id: String,
    /// The credential id, base64url without padding.
    pub credential_id: String,
    pub name: String,
    /// The relying party's record of the credential (public key, counter), as JSON.
    pub credential: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
}

impl TryFrom<AnyRow> for PasskeyRow {
    type Error = StoreError;
    fn try_from(row: AnyRow) -> Result<Self> {
        Ok(Self {
            id: row.text("id")?,
            user_id: row.text("user_id")?,
            credential_id: row.text("credential_id")?,
            name: row.text("name")?,
            credential: row.text("credential")?,
            created_at_ms: row.int("created_at_ms")?,
            last_used_at_ms: row.opt_int("last_used_at_ms")?,
        })
    }
}

const PASSKEY_COLUMNS: &str = "id, user_id, credential_id, name, credential, created_at_ms, last_used_at_ms";

impl Store {
    pub async fn create_identity_provider(
        &self,
        id: &str,
        org_id: &str,
        settings: &ProviderSettings<'_>,
        now_ms: i64,
    ) -> Result<IdentityProviderRow> {
        let sql = format!(
            "INSERT INTO identity_providers ({PROVIDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING {PROVIDER_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(org_id)
            .bind(settings.name)
            .bind(settings.issuer)
            .bind(settings.client_id)
            .bind(settings.sealed_client_secret)
            .bind(domains_json(settings.allowed_domains))
            .bind(i64::from(settings.create_accounts))
            .bind(now_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::conflict_as("identity provider"))?;
        IdentityProviderRow::try_from(row)
    }

    pub async fn update_identity_provider(&self, id: &str, settings: &ProviderSettings<'_>) -> Result<()> {
        let done = sqlx::query(
            "UPDATE identity_providers SET name = $2, issuer = $3, client_id = $4, client_secret = $5, \
             allowed_domains = $6, create_accounts = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(settings.name)
        .bind(settings.issuer)
        .bind(settings.client_id)
        .bind(settings.sealed_client_secret)
        .bind(domains_json(settings.allowed_domains))
        .bind(i64::from(settings.create_accounts))
        .execute(&self.pool)
        .await
        .map_err(StoreError::conflict_as("identity provider"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("identity provider"));
        }
        Ok(())
    }

    pub async fn identity_provider(&self, id: &str) -> Result<Option<IdentityProviderRow>> {
        let sql = format!("SELECT {PROVIDER_COLUMNS} FROM identity_providers WHERE id = $1");
        sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?.map(IdentityProviderRow::try_from).transpose()
    }

    /// The providers of one organisation, or of every organisation (`None`).
    pub async fn identity_providers(&self, org_id: Option<&str>) -> Result<Vec<IdentityProviderRow>> {
        let rows = match org_id {
            Some(org_id) => {
                let sql = format!(
                    "SELECT {PROVIDER_COLUMNS} FROM identity_providers WHERE org_id = $1 ORDER BY created_at_ms, id"
                );
                sqlx::query(&sql).bind(org_id).fetch_all(&self.pool).await?
            }
            None => {
                let sql = format!("SELECT {PROVIDER_COLUMNS} FROM identity_providers ORDER BY created_at_ms, id");
                sqlx::query(&sql).fetch_all(&self.pool).await?
            }
        };
        rows.into_iter().map(IdentityProviderRow::try_from).collect()
    }

    /// Removes a provider with the links it made and the sign-ins under way
    /// with it (accounts stay: they sign in some other way, or not at all).
    pub async fn delete_identity_provider(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM external_identities WHERE provider_id = $1",
            "DELETE FROM provider_sign_ins WHERE provider_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM identity_providers WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The account a provider's subject signs in to, marking the link used.
    pub async fn external_identity_user(
        &self,
        provider_id: &str,
        subject: &str,
        now_ms: i64,
    ) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE external_identities SET last_used_at_ms = $3 WHERE provider_id = $1 AND subject = $2 RETURNING user_id",
        )
        .bind(provider_id)
        .bind(subject)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(user,)| user))
    }

    /// Links a provider's subject to an existing account.
    pub async fn link_external_identity(
        &self,
        provider_id: &str,
        subject: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<()> {
        insert_external_identity(&self.pool, provider_id, subject, user_id, now_ms).await
    }

    /// Forgets which subject of a provider is which account (its issuer or
    /// client changed: the old subjects mean nothing at the new one).
    pub async fn forget_external_identities(&self, provider_id: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM external_identities WHERE provider_id = $1")
            .bind(provider_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The accounts a provider's subjects are linked to.
    pub async fn linked_accounts(&self, provider_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT user_id FROM external_identities WHERE provider_id = $1 ORDER BY user_id")
                .bind(provider_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Whether anything outside `org_id` speaks for addresses at `domain`:
    /// another organisation's provider lists it, or an account of another
    /// organisation (or of none) has an address there.
    pub async fn domain_belongs_elsewhere(&self, org_id: &str, domain: &str) -> Result<bool> {
        let listed = self
            .identity_providers(None)
            .await?
            .iter()
            .any(|p| p.org_id != org_id && p.allowed_domains.iter().any(|d| d == domain));
        if listed {
            return Ok(true);
        }
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM users WHERE email LIKE $1 AND (org_id IS NULL OR org_id <> $2)")
                .bind(format!("%@{domain}"))
                .bind(org_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(count > 0)
    }

    /// The providers an account is linked to (their ids).
    pub async fn external_identities_of(&self, user_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT provider_id FROM external_identities WHERE user_id = $1 ORDER BY provider_id")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// A new member account made by a provider's first sign-in, linked to
    /// its subject, in one transaction. It has no password.
    pub async fn create_provider_account(
        &self,
        new: &NewUser<'_>,
        provider_id: &str,
        subject: &str,
    ) -> Result<UserRow> {
        let mut tx = self.pool.begin().await?;
        let user = insert_user(&mut tx, &NewUser { role: Some(new.role.unwrap_or(OrgRole::Member)), ..*new }).await?;
        insert_external_identity(&mut *tx, provider_id, subject, &user.id, new.now_ms).await?;
        tx.commit().await?;
        Ok(user)
    }

    pub async fn put_provider_sign_in(&self, sign_in: &ProviderSignIn, now_ms: i64) -> Result<()> {
        sqlx::query("DELETE FROM provider_sign_ins WHERE expires_at_ms < $1").bind(now_ms).execute(&self.pool).await?;
        sqlx::query(
            "INSERT INTO provider_sign_ins (state_hash, provider_id, browser_hash, nonce, pkce_verifier, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&sign_in.state_hash)
        .bind(&sign_in.provider_id)
        .bind(&sign_in.browser_hash)
        .bind(&sign_in.nonce)
        .bind(&sign_in.pkce_verifier)
        .bind(sign_in.expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes (once) the sign-in a provider's answer names by its state,
    /// whether or not it has expired: the caller judges.
    pub async fn take_provider_sign_in(&self, state_hash: &str) -> Result<Option<ProviderSignIn>> {
        let row: Option<(String, String, String, String, String, i64)> = sqlx::query_as(
            "DELETE FROM provider_sign_ins WHERE state_hash = $1 \
             RETURNING state_hash, provider_id, browser_hash, nonce, pkce_verifier, expires_at_ms",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(state_hash, provider_id, browser_hash, nonce, pkce_verifier, expires_at_ms)| ProviderSignIn {
            state_hash,
            provider_id,
            browser_hash,
            nonce,
            pkce_verifier,
            expires_at_ms,
        }))
    }

    pub async fn add_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        name: &str,
        credential: &str,
        now_ms: i64,
    ) -> Result<PasskeyRow> {
        let sql = format!(
            "INSERT INTO passkeys ({PASSKEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL) RETURNING {PASSKEY_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(new_id())
            .bind(user_id)
            .bind(credential_id)
            .bind(name)
            .bind(credential)
            .bind(now_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::conflict_as("passkey"))?;
        PasskeyRow::try_from(row)
    }

    pub async fn passkeys_of(&self, user_id: &str) -> Result<Vec<PasskeyRow>> {
        let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at_ms, id");
        let rows = sqlx::query(&sql).bind(user_id).fetch_all(&self.pool).await?;
        rows.into_iter().map(PasskeyRow::try_from).collect()
    }

    /// Whether the account has any passkey (one indexed lookup, for checks
    /// made on every request).
    pub async fn has_passkey(&self, user_id: &str) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM passkeys WHERE user_id = $1 LIMIT 1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    pub async fn passkey_by_credential_id(&self, credential_id: &str) -> Result<Option<PasskeyRow>> {
        let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1");
        sqlx::query(&sql).bind(credential_id).fetch_optional(&self.pool).await?.map(PasskeyRow::try_from).transpose()
    }

    /// Records a use: the credential's new state (its counter) and when.
    pub async fn passkey_used(&self, id: &str, credential: &str, now_ms: i64) -> Result<()> {
        sqlx::query("UPDATE passkeys SET credential = $2, last_used_at_ms = $3 WHERE id = $1")
            .bind(id)
            .bind(credential)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Renames one of `user_id`'s passkeys; false when it has no such passkey.
    pub async fn rename_passkey(&self, user_id: &str, id: &str, name: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE passkeys SET name = $3 WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes one of `user_id`'s passkeys; false when it has no such passkey.
    pub async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes every passkey of an account (its devices are lost); returns how many.
    pub async fn delete_all_passkeys(&self, user_id: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM passkeys WHERE user_id = $1").bind(user_id).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// Keeps what a WebAuthn ceremony's second half needs; returns its id.
    pub async fn put_passkey_ceremony(
        &self,
        user_id: Option<&str>,
        purpose: &str,
        state: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<String> {
        sqlx::query("DELETE FROM passkey_ceremonies WHERE expires_at_ms < $1").bind(now_ms).execute(&self.pool).await?;
        let id = new_id();
        sqlx::query(
            "INSERT INTO passkey_ceremonies (id, user_id, purpose, state, expires_at_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(purpose)
        .bind(state)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Takes (once) a ceremony of `purpose` that has not expired: its
    /// account (if it was started for one) and state.
    pub async fn take_passkey_ceremony(
        &self,
        id: &str,
        purpose: &str,
        now_ms: i64,
    ) -> Result<Option<(Option<String>, String)>> {
        let row: Option<(Option<String>, String, i64)> = sqlx::query_as(
            "DELETE FROM passkey_ceremonies WHERE id = $1 AND purpose = $2 RETURNING user_id, state, expires_at_ms",
        )
        .bind(id)
        .bind(purpose)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.filter(|(_, _, expires)| *expires >= now_ms).map(|(user, state, _)| (user, state)))
    }
}

/// Links a provider's subject to an account (on the pool, or inside a transaction).
async fn insert_external_identity<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    provider_id: &str,
    subject: &str,
    user_id: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO external_identities (provider_id, subject, user_id, created_at_ms, last_used_at_ms) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(provider_id)
    .bind(subject)
    .bind(user_id)
    .bind(now_ms)
    .execute(executor)
    .await
    .map_err(StoreError::conflict_as("provider identity"))?;
    Ok(())
}

fn domains_json(domains: &[String]) -> String {
    serde_json::to_string(domains).expect("a list of strings serialises")
}
