//! Meetings (with their invite secrets) and reports of participants.

use crate::{new_id, Result, RowExt, Store, StoreError};
use conclave_proto::{MeetingBan, MeetingSettings, Report};
use sqlx::any::AnyRow;

/// The secrets that let people in; rotated together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingSecrets {
    pub link_secret: String,
    pub code: String,
    pub passcode: Option<String>,
    pub host_key: String,
}

#[derive(Debug, Clone)]
pub struct MeetingRow {
    pub id: String,
    pub org_id: String,
    pub host_user_id: String,
    pub title: String,
    pub scheduled_start_ms: Option<i64>,
    pub duration_minutes: Option<i64>,
    pub settings: MeetingSettings,
    pub secrets: MeetingSecrets,
    pub created_at_ms: i64,
    /// Accounts it was started for, let in without the waiting room.
    pub invited: Vec<String>,
    /// Addresses invited by email (a calendar invitation each).
    pub invitees: Vec<String>,
    /// The sequence of the calendar invitation last sent.
    pub calendar_sequence: i64,
}

#[derive(Debug, Clone)]
pub struct NewMeeting<'a> {
    pub org_id: &'a str,
    pub host_user_id: &'a str,
    pub title: &'a str,
    pub scheduled_start_ms: Option<i64>,
    pub duration_minutes: Option<i64>,
    pub settings: &'a MeetingSettings,
    pub secrets: &'a MeetingSecrets,
    pub now_ms: i64,
    /// Accounts it is started for (empty for a meeting people are invited to by link).
    pub invited: &'a [String],
    /// Addresses invited by email.
    pub invitees: &'a [String],
}

/// A removal to record as a ban.
#[derive(Debug, Clone)]
pub struct NewBan<'a> {
    pub keys: &'a [String],
    pub display_name: &'a str,
    pub user_id: Option<&'a str>,
    pub removed_by: &'a str,
}

#[derive(Debug, Clone)]
pub struct NewReport<'a> {
    pub org_id: &'a str,
    pub meeting_id: &'a str,
    pub reporter_name: &'a str,
    pub reporter_user_id: Option<&'a str>,
    pub reported_name: &'a str,
    pub reported_user_id: Option<&'a str>,
    pub reason: &'a str,
    pub now_ms: i64,
}

const MEETING_COLUMNS: &str =
    "id, org_id, host_user_id, title, scheduled_start_ms, duration_minutes, settings_json, link_secret, code, passcode, host_key, created_at_ms, invited_json, invitees_json, calendar_sequence";

impl TryFrom<AnyRow> for MeetingRow {
    type Error = StoreError;
    fn try_from(row: AnyRow) -> Result<Self> {
        let settings_json = row.text("settings_json")?;
        let settings = serde_json::from_str(&settings_json)
            .map_err(|_| StoreError::Corrupt { column: "meetings.settings_json", value: settings_json })?;
        Ok(Self {
            id: row.text("id")?,
            org_id: row.text("org_id")?,
            host_user_id: row.text("host_user_id")?,
            title: row.text("title")?,
            scheduled_start_ms: row.opt_int("scheduled_start_ms")?,
            duration_minutes: row.opt_int("duration_minutes")?,
            settings,
            secrets: MeetingSecrets {
                link_secret: row.text("link_secret")?,
                code: row.text("code")?,
                passcode: row.opt_text("passcode")?,
                host_key: row.text("host_key")?,
            },
            created_at_ms: row.int("created_at_ms")?,
            invited: {
                let json = row.text("invited_json")?;
                serde_json::from_str(&json)
                    .map_err(|_| StoreError::Corrupt { column: "meetings.invited_json", value: json })?
            },
            invitees: {
                let json = row.text("invitees_json")?;
                serde_json::from_str(&json)
                    .map_err(|_| StoreError::Corrupt { column: "meetings.invitees_json", value: json })?
            },
            calendar_sequence: row.int("calendar_sequence")?,
        })
    }
}

impl Store {
    /// Creates a meeting; `Conflict("meeting secret")` if a generated secret
    /// collided (the caller draws new ones and retries).
    pub async fn create_meeting(&self, new: &NewMeeting<'_>) -> Result<MeetingRow> {
        let sql = format!(
            "INSERT INTO meetings ({MEETING_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0) RETURNING {MEETING_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(new_id())
            .bind(new.org_id)
            .bind(new.host_user_id)
            .bind(new.title)
            .bind(new.scheduled_start_ms)
            .bind(new.duration_minutes)
            .bind(serde_json::to_string(new.settings).expect("settings serialise"))
            .bind(&new.secrets.link_secret)
            .bind(&new.secrets.code)
            .bind(new.secrets.passcode.as_deref())
            .bind(&new.secrets.host_key)
            .bind(new.now_ms)
            .bind(serde_json::to_string(new.invited).expect("account ids serialise"))
            .bind(serde_json::to_string(new.invitees).expect("addresses serialise"))
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::conflict_as("meeting secret"))?;
        MeetingRow::try_from(row)
    }

    pub async fn meeting_by_id(&self, id: &str) -> Result<Option<MeetingRow>> {
        self.meeting_where("id", id).await
    }

    pub async fn meeting_by_link_secret(&self, secret: &str) -> Result<Option<MeetingRow>> {
        self.meeting_where("link_secret", secret).await
    }

    pub async fn meeting_by_code(&self, code: &str) -> Result<Option<MeetingRow>> {
        self.meeting_where("code", code).await
    }

    async fn meeting_where(&self, column: &'static str, value: &str) -> Result<Option<MeetingRow>> {
        let sql = format!("SELECT {MEETING_COLUMNS} FROM meetings WHERE {column} = $1");
        sqlx::query(&sql).bind(value).fetch_optional(&self.pool).await?.map(MeetingRow::try_from).transpose()
    }

    /// Meetings hosted by `host_user_id`, or all of the organisation's when `None`.
    pub async fn list_meetings(&self, org_id: &str, host_user_id: Option<&str>) -> Result<Vec<MeetingRow>> {
        let rows = match host_user_id {
            Some(host) => {
                let sql = format!("SELECT {MEETING_COLUMNS} FROM meetings WHERE org_id = $1 AND host_user_id = $2 ORDER BY created_at_ms DESC, id");
                sqlx::query(&sql).bind(org_id).bind(host).fetch_all(&self.pool).await?
            }
            None => {
                let sql =
                    format!("SELECT {MEETING_COLUMNS} FROM meetings WHERE org_id = $1 ORDER BY created_at_ms DESC, id");
                sqlx::query(&sql).bind(org_id).fetch_all(&self.pool).await?
            }
        };
        rows.into_iter().map(MeetingRow::try_from).collect()
    }

    pub async fn update_meeting(&self, meeting: &MeetingRow) -> Result<()> {
        let done = sqlx::query(
            "UPDATE meetings SET title = $2, scheduled_start_ms = $3, duration_minutes = $4, settings_json = $5, passcode = $6, \
             invitees_json = $7, calendar_sequence = $8 WHERE id = $1",
        )
        .bind(&meeting.id)
        .bind(&meeting.title)
        .bind(meeting.scheduled_start_ms)
        .bind(meeting.duration_minutes)
        .bind(serde_json::to_string(&meeting.settings).expect("settings serialise"))
        .bind(meeting.secrets.passcode.as_deref())
        .bind(serde_json::to_string(&meeting.invitees).expect("addresses serialise"))
        .bind(meeting.calendar_sequence)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("meeting"));
        }
        Ok(())
    }

    /// Replaces every secret at once; the old ones stop working immediately.
    pub async fn rotate_meeting_secrets(&self, meeting_id: &str, secrets: &MeetingSecrets) -> Result<()> {
        let done =
            sqlx::query("UPDATE meetings SET link_secret = $2, code = $3, passcode = $4, host_key = $5 WHERE id = $1")
                .bind(meeting_id)
                .bind(&secrets.link_secret)
                .bind(&secrets.code)
                .bind(secrets.passcode.as_deref())
                .bind(&secrets.host_key)
                .execute(&self.pool)
                .await
                .map_err(StoreError::conflict_as("meeting secret"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("meeting"));
        }
        Ok(())
    }

    pub async fn delete_meeting(&self, meeting_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM meetings WHERE id = $1").bind(meeting_id).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a removal and the identity keys it bans; returns its id.
    pub async fn add_meeting_ban(&self, meeting_id: &str, ban: &NewBan<'_>, now_ms: i64) -> Result<String> {
        let id = new_id();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO meeting_removals (id, meeting_id, display_name, user_id, removed_by, at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(meeting_id)
        .bind(ban.display_name)
        .bind(ban.user_id)
        .bind(ban.removed_by)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        for key in ban.keys {
            sqlx::query("INSERT INTO meeting_ban_keys (removal_id, meeting_id, ban_key) VALUES ($1, $2, $3) ON CONFLICT (removal_id, ban_key) DO NOTHING")
                .bind(&id)
                .bind(meeting_id)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Every identity key banned from a meeting, for its room to start with.
    pub async fn meeting_bans(&self, meeting_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT ban_key FROM meeting_ban_keys WHERE meeting_id = $1 ORDER BY ban_key")
                .bind(meeting_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }

    /// A meeting's bans, newest first.
    pub async fn list_meeting_bans(&self, meeting_id: &str) -> Result<Vec<MeetingBan>> {
        let rows = sqlx::query(
            "SELECT id, display_name, user_id, removed_by, at_ms FROM meeting_removals WHERE meeting_id = $1 ORDER BY at_ms DESC, id",
        )
        .bind(meeting_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MeetingBan {
                    id: r.text("id")?,
                    display_name: r.text("display_name")?,
                    user_id: r.opt_text("user_id")?,
                    removed_by: r.text("removed_by")?,
                    at_ms: r.int("at_ms")?,
                })
            })
            .collect()
    }

    /// Lifts one ban. Returns the keys that are no longer banned (those no
    /// other ban of the meeting still holds), or `None` if there was no
    /// such ban.
    pub async fn lift_meeting_ban(&self, meeting_id: &str, ban_id: &str) -> Result<Option<Vec<String>>> {
        // Writes first: on SQLite a transaction that reads before it writes
        // fails at once (SQLITE_BUSY) when another connection wrote in
        // between, where one that starts by writing waits its turn.
        let mut tx = self.pool.begin().await?;
        let keys: Vec<(String,)> =
            sqlx::query_as("DELETE FROM meeting_ban_keys WHERE removal_id = $1 AND meeting_id = $2 RETURNING ban_key")
                .bind(ban_id)
                .bind(meeting_id)
                .fetch_all(&mut *tx)
                .await?;
        let done = sqlx::query("DELETE FROM meeting_removals WHERE id = $1 AND meeting_id = $2")
            .bind(ban_id)
            .bind(meeting_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let mut lifted = Vec::new();
        for (key,) in keys {
            let still: Option<(String,)> =
                sqlx::query_as("SELECT ban_key FROM meeting_ban_keys WHERE meeting_id = $1 AND ban_key = $2 LIMIT 1")
                    .bind(meeting_id)
                    .bind(&key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if still.is_none() {
                lifted.push(key);
            }
        }
        tx.commit().await?;
        Ok(Some(lifted))
    }

    pub async fn create_report(&self, new: &NewReport<'_>) -> Result<Report> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO reports (id, org_id, meeting_id, reporter_name, reporter_user_id, reported_name, reported_user_id, reason, at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(new.org_id)
        .bind(new.meeting_id)
        .bind(new.reporter_name)
        .bind(new.reporter_user_id)
        .bind(new.reported_name)
        .bind(new.reported_user_id)
        .bind(new.reason)
        .bind(new.now_ms)
        .execute(&self.pool)
        .await?;
        Ok(Report {
            id,
            meeting_id: new.meeting_id.to_owned(),
            reporter_name: new.reporter_name.to_owned(),
            reported_name: new.reported_name.to_owned(),
            reported_user_id: new.reported_user_id.map(str::to_owned),
            reason: new.reason.to_owned(),
            at_ms: new.now_ms,
        })
    }

    pub async fn list_reports(&self, org_id: &str) -> Result<Vec<Report>> {
        let rows = sqlx::query(
            "SELECT id, meeting_id, reporter_name, reported_name, reported_user_id, reason, at_ms FROM reports WHERE org_id = $1 ORDER BY at_ms DESC, id",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Report {
                    id: r.text("id")?,
                    meeting_id: r.text("meeting_id")?,
                    reporter_name: r.text("reporter_name")?,
                    reported_name: r.text("reported_name")?,
                    reported_user_id: r.opt_text("reported_user_id")?,
                    reason: r.text("reason")?,
                    at_ms: r.int("at_ms")?,
                })
            })
            .collect()
    }
}
