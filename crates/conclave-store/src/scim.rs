//! Provisioning by an organisation's identity provider (SCIM 2.0): the
//! organisation's bearer token (hashed), the provider's names for the
//! accounts it manages, and its groups with their members.

use crate::users::{insert_user, UserRow};
use crate::{new_id, NewUser, Result, RowExt, Store, StoreError};
use conclave_proto::OrgRole;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimGroupRow {
    pub id: String,
    pub org_id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// The role the organisation gives the group's members, if any.
    pub role: Option<OrgRole>,
    /// The team channel the group's members are put in, if any.
    pub channel_id: Option<String>,
    /// Member account ids, sorted.
    pub members: Vec<String>,
    /// The OpenID provider whose `groups` claim named the group; `None`
    /// for SCIM's groups.
    pub provider_id: Option<String>,
}

impl TryFrom<AnyRow> for ScimGroupRow {
    type Error = StoreError;
    fn try_from(row: AnyRow) -> Result<Self> {
        Ok(Self {
            id: row.text("id")?,
            org_id: row.text("org_id")?,
            display_name: row.text("display_name")?,
            external_id: row.opt_text("external_id")?,
            created_at_ms: row.int("created_at_ms")?,
            updated_at_ms: row.int("updated_at_ms")?,
            role: match row.opt_text("org_role")? {
                None => None,
                Some(text) => Some(
                    OrgRole::parse(&text).ok_or(StoreError::Corrupt { column: "scim_groups.org_role", value: text })?,
                ),
            },
            channel_id: row.opt_text("channel_id")?,
            members: Vec::new(),
            provider_id: row.opt_text("provider_id")?,
        })
    }
}

/// How a provider looks someone up.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    UserName(&'a str),
    ExternalId(&'a str),
    Id(&'a str),
}

/// An account as the provider describes it, ready to be kept.
#[derive(Debug, Clone)]
pub struct ProvisionedUser<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub user_name: &'a str,
    pub external_id: Option<&'a str>,
    pub active: bool,
    /// The provider's description of the user, as JSON.
    pub resource: &'a str,
}

const GROUP_COLUMNS: &str =
    "id, org_id, display_name, external_id, created_at_ms, updated_at_ms, org_role, channel_id, provider_id";

impl Store {
    /// Sets the organisation's SCIM token (replacing any earlier one).
    pub async fn put_scim_token(&self, org_id: &str, token_hash: &str, created_by: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO scim_tokens (org_id, token_hash, created_by, created_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id) DO UPDATE SET token_hash = $2, created_by = $3, created_at_ms = $4",
        )
        .bind(org_id)
        .bind(token_hash)
        .bind(created_by)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes the organisation's SCIM token; true when it had one.
    pub async fn delete_scim_token(&self, org_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM scim_tokens WHERE org_id = $1").bind(org_id).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Revokes the SCIM tokens `user_id` made (its account is closing: a
    /// token must not outlive the trust in whoever holds it). Returns how many.
    pub async fn revoke_scim_tokens_made_by(&self, user_id: &str) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM scim_tokens WHERE created_by = $1").bind(user_id).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// The organisation a SCIM token belongs to.
    pub async fn scim_token_org(&self, token_hash: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT org_id FROM scim_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(org,)| org))
    }

    /// When the organisation's SCIM token was made, if it has one.
    pub async fn scim_token_created(&self, org_id: &str) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT created_at_ms FROM scim_tokens WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(at,)| at))
    }

    /// A new account provisioned into `org_id` as a member, with the
    /// provider's names for it, in one transaction.
    pub async fn provision_user(
        &self,
        org_id: &str,
        user: &ProvisionedUser<'_>,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<UserRow> {
        let mut tx = self.pool.begin().await?;
        let new = NewUser {
            email: user.email,
            display_name: user.display_name,
            password_hash,
            org_id: Some(org_id),
            role: Some(OrgRole::Member),
            now_ms,
        };
        let row = insert_user(&mut tx, &new).await?;
        sqlx::query(
            "UPDATE users SET scim_user_name = $2, scim_external_id = $3, status = $4, scim_resource = $5 WHERE id = $1",
        )
        .bind(&row.id)
        .bind(user.user_name)
        .bind(user.external_id)
        .bind(if user.active { "active" } else { "deactivated" })
        .bind(user.resource)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.user_by_id(&row.id).await?.ok_or(StoreError::NotFound("account"))
    }

    /// Changes what the provider manages of an account (not its status:
    /// activation and deactivation have flows of their own). An account
    /// the provider deleted is its again (provisioned anew).
    pub async fn update_provisioned_user(&self, user_id: &str, user: &ProvisionedUser<'_>) -> Result<()> {
        sqlx::query(
            "UPDATE users SET email = $2, display_name = $3, scim_user_name = $4, scim_external_id = $5, \
             scim_resource = $6, scim_deleted_at_ms = NULL WHERE id = $1",
        )
        .bind(user_id)
        .bind(user.email)
        .bind(user.display_name)
        .bind(user.user_name)
        .bind(user.external_id)
        .bind(user.resource)
        .execute(&self.pool)
        .await
        .map_err(StoreError::conflict_as("account"))?;
        Ok(())
    }

    /// The organisation's accounts a provider's lookup can only mean: by
    /// `userName` (its name for them, or their email), by `externalId`, or
    /// by id. Indexed, so a provider checking each of thousands of people
    /// before creating them does not read the whole organisation each time.
    pub async fn provisioned_candidates(&self, org_id: &str, by: Lookup<'_>) -> Result<Vec<UserRow>> {
        let (condition, value) = match by {
            Lookup::UserName(name) => ("(email = $2 OR LOWER(scim_user_name) = $2)", name.to_lowercase()),
            Lookup::ExternalId(id) => ("scim_external_id = $2", id.to_owned()),
            Lookup::Id(id) => ("id = $2", id.to_owned()),
        };
        let sql = format!("SELECT {} FROM users WHERE org_id = $1 AND {condition}", crate::users::USER_COLUMNS);
        sqlx::query(&sql)
            .bind(org_id)
            .bind(value)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(UserRow::try_from)
            .collect()
    }

    /// The group ids of each account of the organisation that is in a group.
    pub async fn scim_memberships(&self, org_id: &str) -> Result<Vec<(String, String)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.user_id, m.group_id FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id \
             WHERE g.org_id = $1 ORDER BY m.user_id, m.group_id",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn scim_groups(&self, org_id: &str) -> Result<Vec<ScimGroupRow>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM scim_groups WHERE org_id = $1 ORDER BY created_at_ms, id");
        let mut groups: Vec<ScimGroupRow> = sqlx::query(&sql)
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(ScimGroupRow::try_from)
            .collect::<Result<_>>()?;
        for (user, group) in self.scim_memberships(org_id).await? {
            if let Some(g) = groups.iter_mut().find(|g| g.id == group) {
                g.members.push(user);
            }
        }
        Ok(groups)
    }

    pub async fn scim_group(&self, org_id: &str, group_id: &str) -> Result<Option<ScimGroupRow>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM scim_groups WHERE org_id = $1 AND id = $2");
        let Some(row) = sqlx::query(&sql).bind(org_id).bind(group_id).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let mut group = ScimGroupRow::try_from(row)?;
        let members: Vec<(String,)> =
            sqlx::query_as("SELECT user_id FROM scim_group_members WHERE group_id = $1 ORDER BY user_id")
                .bind(group_id)
                .fetch_all(&self.pool)
                .await?;
        group.members = members.into_iter().map(|(u,)| u).collect();
        Ok(Some(group))
    }

    /// A new group with its members (accounts of the organisation only).
    pub async fn create_scim_group(
        &self,
        org_id: &str,
        display_name: &str,
        external_id: Option<&str>,
        members: &[String],
        now_ms: i64,
    ) -> Result<ScimGroupRow> {
        self.create_group(org_id, None, display_name, external_id, members, now_ms).await
    }

    /// A new group an OpenID provider's `groups` claim named.
    pub async fn create_claimed_group(
        &self,
        org_id: &str,
        provider_id: &str,
        display_name: &str,
        members: &[String],
        now_ms: i64,
    ) -> Result<ScimGroupRow> {
        self.create_group(org_id, Some(provider_id), display_name, None, members, now_ms).await
    }

    async fn create_group(
        &self,
        org_id: &str,
        provider_id: Option<&str>,
        display_name: &str,
        external_id: Option<&str>,
        members: &[String],
        now_ms: i64,
    ) -> Result<ScimGroupRow> {
        let id = new_id();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO scim_groups (id, org_id, display_name, external_id, created_at_ms, updated_at_ms, provider_id) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(display_name)
        .bind(external_id)
        .bind(now_ms)
        .bind(provider_id)
        .execute(&mut *tx)
        .await?;
        insert_members(&mut tx, &id, members).await?;
        tx.commit().await?;
        self.scim_group(org_id, &id).await?.ok_or(StoreError::NotFound("group"))
    }

    /// Replaces a group's names and members; false when there is no such group.
    pub async fn replace_scim_group(
        &self,
        org_id: &str,
        group_id: &str,
        display_name: &str,
        external_id: Option<&str>,
        members: &[String],
        now_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE scim_groups SET display_name = $3, external_id = $4, updated_at_ms = $5 WHERE org_id = $1 AND id = $2",
        )
        .bind(org_id)
        .bind(group_id)
        .bind(display_name)
        .bind(external_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM scim_group_members WHERE group_id = $1").bind(group_id).execute(&mut *tx).await?;
        insert_members(&mut tx, group_id, members).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets what the group means in the organisation; false when there is
    /// no such group.
    pub async fn map_scim_group(
        &self,
        org_id: &str,
        group_id: &str,
        role: Option<OrgRole>,
        channel_id: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE scim_groups SET org_role = $3, channel_id = $4 WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(group_id)
            .bind(role.map(OrgRole::as_str))
            .bind(channel_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_scim_group(&self, org_id: &str, group_id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let owned: Option<(String,)> = sqlx::query_as("SELECT id FROM scim_groups WHERE org_id = $1 AND id = $2")
            .bind(org_id)
            .bind(group_id)
            .fetch_optional(&mut *tx)
            .await?;
        if owned.is_none() {
            return Ok(false);
        }
        sqlx::query("DELETE FROM scim_group_members WHERE group_id = $1").bind(group_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM scim_groups WHERE id = $1").bind(group_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Hides an account from the provider that deleted it (the account is
    /// closed, and kept for the audit log).
    pub async fn mark_scim_deleted(&self, user_id: &str, now_ms: i64) -> Result<()> {
        sqlx::query("UPDATE users SET scim_deleted_at_ms = $2 WHERE id = $1")
            .bind(user_id)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes a closed account out of every group (it stays for the audit log).
    pub async fn leave_scim_groups(&self, user_id: &str) -> Result<u64> {
        let done =
            sqlx::query("DELETE FROM scim_group_members WHERE user_id = $1").bind(user_id).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// Cancels every invitation the account issued that is not yet taken:
    /// to the organisation, and guest invitations to conversations. Returns
    /// how many.
    pub async fn cancel_invitations_by(&self, user_id: &str, now_ms: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let members = sqlx::query(
            "UPDATE invitations SET revoked_at_ms = $2 \
             WHERE invited_by = $1 AND accepted_at_ms IS NULL AND revoked_at_ms IS NULL AND expires_at_ms > $2",
        )
        .bind(user_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let guests = sqlx::query(
            "UPDATE guest_invitations SET expires_at_ms = $2 \
             WHERE invited_by = $1 AND accepted_at_ms IS NULL AND expires_at_ms > $2",
        )
        .bind(user_id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(members.rows_affected() + guests.rows_affected())
    }
}

async fn insert_members(tx: &mut sqlx::Transaction<'_, sqlx::Any>, group_id: &str, members: &[String]) -> Result<()> {
    let mut unique: Vec<&String> = members.iter().collect();
    unique.sort();
    unique.dedup();
    for user in unique {
        sqlx::query("INSERT INTO scim_group_members (group_id, user_id) VALUES ($1, $2)")
            .bind(group_id)
            .bind(user)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
