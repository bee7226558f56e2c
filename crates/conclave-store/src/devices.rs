//! Accounts' E2EE devices, by their public signature keys.

use crate::{new_id, Result, RowExt, Store};
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub id: String,
    pub user_id: String,
    /// The device's Ed25519 public key, base64.
    pub signature_key: String,
    pub name: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

fn device(row: &AnyRow) -> Result<DeviceRow> {
    Ok(DeviceRow {
        id: row.text("id")?,
        user_id: row.text("user_id")?,
        signature_key: row.text("signature_key")?,
        name: row.text("name")?,
        created_at_ms: row.int("created_at_ms")?,
        last_used_at_ms: row.int("last_used_at_ms")?,
        revoked_at_ms: row.opt_int("revoked_at_ms")?,
    })
}

const COLUMNS: &str = "id, user_id, signature_key, name, created_at_ms, last_used_at_ms, revoked_at_ms";

/// What registering a key found.
#[derive(Debug, Clone)]
pub struct Registration {
    pub device: DeviceRow,
    /// Registered just now (else the account had it already).
    pub new: bool,
}

impl Store {
    /// The account's device with this key: registered now if new (named
    /// `name`), or the one registered before, its last use noted. Two nodes
    /// registering one key at once end with one device, and one of them
    /// told it is new.
    pub async fn register_device(
        &self,
        user_id: &str,
        signature_key: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<Registration> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO devices (id, user_id, signature_key, name, created_at_ms, last_used_at_ms) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (user_id, signature_key) DO UPDATE SET last_used_at_ms = $5",
        )
        .bind(&id)
        .bind(user_id)
        .bind(signature_key)
        .bind(name)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM devices WHERE user_id = $1 AND signature_key = $2"))
            .bind(user_id)
            .bind(signature_key)
            .fetch_one(&self.pool)
            .await?;
        let device = device(&row)?;
        Ok(Registration { new: device.id == id, device })
    }

    /// An account's devices that are not revoked, oldest first.
    pub async fn devices_of(&self, user_id: &str) -> Result<Vec<DeviceRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM devices WHERE user_id = $1 AND revoked_at_ms IS NULL ORDER BY created_at_ms, id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(device).collect()
    }

    /// Revokes one of the account's devices; false if it has no such device.
    pub async fn revoke_device(&self, user_id: &str, device_id: &str, now_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE devices SET revoked_at_ms = $3 WHERE id = $1 AND user_id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(device_id)
        .bind(user_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether the account has this device, revoked.
    pub async fn device_is_revoked(&self, user_id: &str, device_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT revoked_at_ms FROM devices WHERE id = $1 AND user_id = $2")
            .bind(device_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.opt_int("revoked_at_ms")).transpose()?.flatten().is_some())
    }
}

/// Web Push subscriptions: one endpoint per device, used only while the
/// device is not revoked.
impl Store {
    pub async fn set_push_subscription(&self, device_id: &str, endpoint: &str, now_ms: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM push_subscriptions WHERE device_id = $1").bind(device_id).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO push_subscriptions (device_id, endpoint, created_at_ms) VALUES ($1, $2, $3)")
            .bind(device_id)
            .bind(endpoint)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_push_subscription(&self, device_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM push_subscriptions WHERE device_id = $1").bind(device_id).execute(&self.pool).await?;
        Ok(())
    }

    /// The endpoint to wake a device at, if it has one and is not revoked.
    pub async fn push_endpoint(&self, device_id: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT p.endpoint FROM push_subscriptions p JOIN devices d ON d.id = p.device_id \
             WHERE p.device_id = $1 AND d.revoked_at_ms IS NULL",
        )
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.text("endpoint")).transpose()
    }
}
