//! Organisations and their policies. A policy is stored as one JSON document
//! per organisation: settings are added often and never queried one by one.

use crate::users::{insert_user, NewUser, UserRow};
use crate::{new_id, Result, RowExt, Store, StoreError};
use conclave_proto::{Org, OrgPolicy, OrgRole, Plan};

/// What [`org_from_row`] reads.
pub(crate) const ORG_COLUMNS: &str = "id, name, plan, policy_json, created_at_ms";

pub(crate) fn org_from_row(row: &impl RowExt) -> Result<(Org, OrgPolicy)> {
    let plan_text = row.text("plan")?;
    let plan = Plan::parse(&plan_text).ok_or(StoreError::Corrupt { column: "orgs.plan", value: plan_text })?;
    let policy_json = row.text("policy_json")?;
    let policy = serde_json::from_str(&policy_json)
        .map_err(|_| StoreError::Corrupt { column: "orgs.policy_json", value: policy_json })?;
    let org = Org { id: row.text("id")?, name: row.text("name")?, plan, created_at_ms: row.int("created_at_ms")? };
    Ok((org, policy))
}

fn policy_json(policy: &OrgPolicy) -> String {
    serde_json::to_string(policy).expect("policies always serialise")
}

impl Store {
    /// Creates an organisation and a new account as its owner, atomically
    /// (first-run bootstrap).
    pub async fn create_org_with_new_owner(
        &self,
        name: &str,
        plan: Plan,
        policy: &OrgPolicy,
        owner: &NewUser<'_>,
    ) -> Result<(Org, UserRow)> {
        let mut tx = self.pool.begin().await?;
        let org = insert_org(&mut tx, name, plan, policy, owner.now_ms).await?;
        let owner =
            insert_user(&mut tx, &NewUser { org_id: Some(&org.id), role: Some(OrgRole::Owner), ..owner.clone() })
                .await?;
        tx.commit().await?;
        Ok((org, owner))
    }

    /// Creates an organisation owned by an existing account that has none.
    pub async fn create_org_for_user(
        &self,
        name: &str,
        plan: Plan,
        policy: &OrgPolicy,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Org> {
        let mut tx = self.pool.begin().await?;
        let org = insert_org(&mut tx, name, plan, policy, now_ms).await?;
        let done = sqlx::query("UPDATE users SET org_id = $2, role = 'owner' WHERE id = $1 AND org_id IS NULL")
            .bind(user_id)
            .bind(&org.id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict("membership of an organisation"));
        }
        tx.commit().await?;
        Ok(org)
    }

    pub async fn org_by_id(&self, id: &str) -> Result<Option<(Org, OrgPolicy)>> {
        let row = sqlx::query(&format!("SELECT {ORG_COLUMNS} FROM orgs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(org_from_row).transpose()
    }

    pub async fn list_orgs(&self) -> Result<Vec<(Org, OrgPolicy)>> {
        let rows =
            sqlx::query("SELECT id, name, plan, policy_json, created_at_ms FROM orgs ORDER BY created_at_ms, id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(org_from_row).collect()
    }

    pub async fn count_orgs(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM orgs").fetch_one(&self.pool).await?;
        Ok(n)
    }

    pub async fn update_org_policy(&self, org_id: &str, policy: &OrgPolicy) -> Result<()> {
        let done = sqlx::query("UPDATE orgs SET policy_json = $2 WHERE id = $1")
            .bind(org_id)
            .bind(policy_json(policy))
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("organisation"));
        }
        Ok(())
    }

    /// Changes the plan and the policy that follows from it, together.
    pub async fn set_org_plan(&self, org_id: &str, plan: Plan, policy: &OrgPolicy) -> Result<()> {
        let done = sqlx::query("UPDATE orgs SET plan = $2, policy_json = $3 WHERE id = $1")
            .bind(org_id)
            .bind(plan.as_str())
            .bind(policy_json(policy))
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("organisation"));
        }
        Ok(())
    }
}

async fn insert_org(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    plan: Plan,
    policy: &OrgPolicy,
    now_ms: i64,
) -> Result<Org> {
    let org = Org { id: new_id(), name: name.to_owned(), plan, created_at_ms: now_ms };
    sqlx::query("INSERT INTO orgs (id, name, plan, policy_json, created_at_ms) VALUES ($1, $2, $3, $4, $5)")
        .bind(&org.id)
        .bind(&org.name)
        .bind(plan.as_str())
        .bind(policy_json(policy))
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    Ok(org)
}
