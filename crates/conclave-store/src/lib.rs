//! Conclave's persistence: one schema on two engines. SQLite is the embedded
//! default (one file in the data directory); PostgreSQL serves clusters. Both
//! run the same SQL through sqlx's `Any` driver, except for the migrations,
//! which are written once per dialect (see `migrations/`).
//!
//! Every method is a short transaction-safe unit of work; the server decides
//! policy, the store only keeps records.

mod audit;
mod conversations;
mod devices;
mod files;
mod guests;
mod identity;
mod invitations;
mod live;
mod meetings;
mod migrate;
mod orgs;
mod quality;
mod risk;
mod scim;
mod segments;
mod sessions;
mod settings;
mod throttle;
mod users;

#[cfg(feature = "testing")]
pub mod testing;

pub use audit::{AuditHead, AuditVerdict, NewAuditEvent};
pub use conversations::{
    ConversationChange, ConversationRow, EntryRow, InboxMessage, InboxRow, MembershipRow, NewConversation, ERASED,
};
pub use devices::{DeviceRow, Registration};
pub use files::{FileRow, OrgStorage, StorageRow};
pub use guests::{GuestInvitationRow, MAX_FAILED_GUEST_CODES};
pub use identity::{IdentityProviderRow, PasskeyRow, ProviderSettings, ProviderSignIn};
pub use invitations::InvitationRow;
pub use live::RedeemedTicket;
pub use meetings::{MeetingRow, MeetingSecrets, NewBan, NewMeeting, NewReport};
pub use quality::{NewQualitySample, QualityRow, QualitySummaryRow};
pub use risk::{Polled, RiskWarningRow, WatchSourceRow};
pub use scim::{Lookup, ProvisionedUser, ScimGroupRow};
pub use segments::{SegmentRow, ToSegment};
pub use sessions::{NewSession, SessionRow, SignedIn};
pub use throttle::ThrottleRow;
pub use users::{NewUser, TotpSeeds, UserRow};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("unsupported database URL {0:?}: use sqlite:// or postgres://")]
    UnsupportedUrl(String),
    #[error("stored {column} is invalid: {value:?}")]
    Corrupt { column: &'static str, value: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict(what)`.
    fn conflict_as(what: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |err| match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(what),
            _ => Self::Database(err),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
}

impl Store {
    /// The embedded default: `conclave.db` in `data_dir`, created if missing.
    pub async fn open_sqlite_dir(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        let url = format!("sqlite://{}?mode=rwc", data_dir.join("conclave.db").display());
        Self::connect(&url).await
    }

    /// Connects to `sqlite://...` or `postgres://...` and brings the schema
    /// up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Engine::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        // A connection idle for a while is tried before it is handed out (the
        // database may have restarted meanwhile); one in steady use is not:
        // that check is a round trip, and a busy node would otherwise make
        // one before every statement.
        let options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= TRIED_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        let pool = match engine {
            // One writer at a time is SQLite's model; WAL lets readers go on
            // while it writes, and busy_timeout queues writers instead of failing.
            Engine::Sqlite => {
                options
                    .max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // The timeout first: switching to WAL on a new file
                            // needs a lock another starter may hold.
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Engine::Postgres => options.max_connections(16).connect(url).await?,
        };
        let store = Self { pool, engine };
        migrate::run(&store).await?;
        Ok(store)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Succeeds when the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// The underlying pool, for operational tooling and tests that must
    /// reach below the repositories (e.g. to simulate tampering).
    pub fn raw_pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A URL with any password replaced, safe to log or show.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The current wall-clock time in Unix milliseconds, for bookkeeping columns
/// the caller does not supply (such as when a migration ran).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Activity timestamps (a session's last use, an account's last activity)
/// are kept to this precision, so a busy client does not write on every request.
pub const TOUCH_INTERVAL_MS: i64 = 60_000;

/// How long a pooled connection may sit unused before it is tried again
/// before use.
const TRIED_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A fresh random id (a UUID v4) for a new record.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Column access that turns decoding failures into `StoreError`.
pub(crate) trait RowExt {
    fn text(&self, column: &str) -> Result<String>;
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
    fn int(&self, column: &str) -> Result<i64>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>>;
}

impl RowExt for AnyRow {
    fn text(&self, column: &str) -> Result<String> {
        Ok(self.try_get(column)?)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        Ok(self.try_get(column)?)
    }
    fn int(&self, column: &str) -> Result<i64> {
        Ok(self.try_get(column)?)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        Ok(self.try_get(column)?)
    }
}

/// One table's columns in a joined row, where each was selected as
/// `prefix` + its name (see [`prefixed_columns`]): the table's decoder
/// reads them by their own names.
pub(crate) struct Prefixed<'r> {
    pub row: &'r AnyRow,
    pub prefix: &'static str,
}

impl Prefixed<'_> {
    fn get<'a, T: sqlx::Decode<'a, sqlx::Any> + sqlx::Type<sqlx::Any>>(&'a self, column: &str) -> Result<T> {
        Ok(self.row.try_get(format!("{}{column}", self.prefix).as_str())?)
    }
}

impl RowExt for Prefixed<'_> {
    fn text(&self, column: &str) -> Result<String> {
        self.get(column)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        self.get(column)
    }
    fn int(&self, column: &str) -> Result<i64> {
        self.get(column)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        self.get(column)
    }
}

/// `columns` ("a, b") of table alias `table`, each selected as `prefix` +
/// its name ("u.a AS u_a, u.b AS u_b"), for a join read with [`Prefixed`].
pub(crate) fn prefixed_columns(table: &str, columns: &str, prefix: &str) -> String {
    columns.split(',').map(|c| format!("{table}.{c} AS {prefix}{c}", c = c.trim())).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(redact_url("postgres://app:hunter2@db:5432/x"), "postgres://app:***@db:5432/x");
        assert_eq!(redact_url("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
    }
}
