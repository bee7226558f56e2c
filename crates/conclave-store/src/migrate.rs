//! Schema migrations, embedded in the binary and applied at start-up. Each
//! engine has its own SQL file per version; a version is applied once, in a
//! transaction, and recorded in `schema_migrations`. Concurrent starters
//! (the server and `conclave admin` at once) are serialised: by an advisory
//! lock on PostgreSQL, by SQLite's single writer otherwise.

use crate::{Engine, Result, Store};
use sqlx::Executor;

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "meetings",
        sqlite: include_str!("../migrations/sqlite/0002_meetings.sql"),
        postgres: include_str!("../migrations/postgres/0002_meetings.sql"),
    },
    Migration {
        version: 3,
        name: "meeting_bans",
        sqlite: include_str!("../migrations/sqlite/0003_meeting_bans.sql"),
        postgres: include_str!("../migrations/postgres/0003_meeting_bans.sql"),
    },
    Migration {
        version: 4,
        name: "live_meetings",
        sqlite: include_str!("../migrations/sqlite/0004_live_meetings.sql"),
        postgres: include_str!("../migrations/postgres/0004_live_meetings.sql"),
    },
    Migration {
        version: 5,
        name: "devices",
        sqlite: include_str!("../migrations/sqlite/0005_devices.sql"),
        postgres: include_str!("../migrations/postgres/0005_devices.sql"),
    },
    Migration {
        version: 6,
        name: "quality",
        sqlite: include_str!("../migrations/sqlite/0006_quality.sql"),
        postgres: include_str!("../migrations/postgres/0006_quality.sql"),
    },
    Migration {
        version: 7,
        name: "conversations",
        sqlite: include_str!("../migrations/sqlite/0007_conversations.sql"),
        postgres: include_str!("../migrations/postgres/0007_conversations.sql"),
    },
    Migration {
        version: 8,
        name: "meeting invitees",
        sqlite: include_str!("../migrations/sqlite/0008_meeting_invitees.sql"),
        postgres: include_str!("../migrations/postgres/0008_meeting_invitees.sql"),
    },
    Migration {
        version: 9,
        name: "files",
        sqlite: include_str!("../migrations/sqlite/0009_files.sql"),
        postgres: include_str!("../migrations/postgres/0009_files.sql"),
    },
    Migration {
        version: 10,
        name: "guest invitations",
        sqlite: include_str!("../migrations/sqlite/0010_guest_invitations.sql"),
        postgres: include_str!("../migrations/postgres/0010_guest_invitations.sql"),
    },
    Migration {
        version: 11,
        name: "push subscriptions",
        sqlite: include_str!("../migrations/sqlite/0011_push_subscriptions.sql"),
        postgres: include_str!("../migrations/postgres/0011_push_subscriptions.sql"),
    },
    Migration {
        version: 12,
        name: "password resets",
        sqlite: include_str!("../migrations/sqlite/0012_password_resets.sql"),
        postgres: include_str!("../migrations/postgres/0012_password_resets.sql"),
    },
    Migration {
        version: 13,
        name: "scim provisioning",
        sqlite: include_str!("../migrations/sqlite/0013_scim.sql"),
        postgres: include_str!("../migrations/postgres/0013_scim.sql"),
    },
    Migration {
        version: 14,
        name: "scim group mappings",
        sqlite: include_str!("../migrations/sqlite/0014_scim_group_mappings.sql"),
        postgres: include_str!("../migrations/postgres/0014_scim_group_mappings.sql"),
    },
    Migration {
        version: 15,
        name: "meeting invitations",
        sqlite: include_str!("../migrations/sqlite/0015_meeting_invitations.sql"),
        postgres: include_str!("../migrations/postgres/0015_meeting_invitations.sql"),
    },
    Migration {
        version: 16,
        name: "meetings at risk",
        sqlite: include_str!("../migrations/sqlite/0016_meetings_at_risk.sql"),
        postgres: include_str!("../migrations/postgres/0016_meetings_at_risk.sql"),
    },
    Migration {
        version: 17,
        name: "scim lookups",
        sqlite: include_str!("../migrations/sqlite/0017_scim_lookups.sql"),
        postgres: include_str!("../migrations/postgres/0017_scim_lookups.sql"),
    },
    Migration {
        version: 18,
        name: "identity providers and passkeys",
        sqlite: include_str!("../migrations/sqlite/0018_identity_providers.sql"),
        postgres: include_str!("../migrations/postgres/0018_identity_providers.sql"),
    },
    Migration {
        version: 19,
        name: "welcomes kept once",
        sqlite: include_str!("../migrations/sqlite/0019_welcomes_once.sql"),
        postgres: include_str!("../migrations/postgres/0019_welcomes_once.sql"),
    },
    Migration {
        version: 20,
        name: "message segments in the organisation's bucket",
        sqlite: include_str!("../migrations/sqlite/0020_message_segments.sql"),
        postgres: include_str!("../migrations/postgres/0020_message_segments.sql"),
    },
];

/// Arbitrary constant naming Conclave's migration lock on PostgreSQL.
const PG_LOCK_KEY: i64 = 0x636f_6e63_6c61_7665;

pub(crate) async fn run(store: &Store) -> Result<()> {
    let mut conn = store.pool.acquire().await?;
    if store.engine == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)").bind(PG_LOCK_KEY).execute(&mut *conn).await?;
    }
    let result = apply_pending(store.engine, &mut conn).await;
    if store.engine == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(PG_LOCK_KEY).execute(&mut *conn).await?;
    }
    result
}

async fn apply_pending(engine: Engine, conn: &mut sqlx::AnyConnection) -> Result<()> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)",
    )
    .await?;
    for migration in MIGRATIONS {
        // On SQLite, take the write lock up front (BEGIN IMMEDIATE waits for
        // it under busy_timeout); a deferred transaction that reads first
        // could fail to upgrade while another starter writes.
        let begin = match engine {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN",
        };
        conn.execute(begin).await?;
        match apply_one(engine, conn, migration).await {
            Ok(applied) => {
                conn.execute("COMMIT").await?;
                if applied {
                    tracing::info!(version = migration.version, name = migration.name, "applied schema migration");
                }
            }
            Err(err) => {
                let _ = conn.execute("ROLLBACK").await;
                return Err(err);
            }
        }
    }
    Ok(())
}

/// Applies one migration inside the caller's transaction, unless a
/// concurrent starter already did; true when it applied it.
async fn apply_one(engine: Engine, conn: &mut sqlx::AnyConnection, migration: &Migration) -> Result<bool> {
    let applied: Option<(i64,)> = sqlx::query_as("SELECT version FROM schema_migrations WHERE version = $1")
        .bind(migration.version)
        .fetch_optional(&mut *conn)
        .await?;
    if applied.is_some() {
        return Ok(false);
    }
    let sql = match engine {
        Engine::Sqlite => migration.sqlite,
        Engine::Postgres => migration.postgres,
    };
    for statement in statements(sql) {
        conn.execute(statement).await?;
    }
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)")
        .bind(migration.version)
        .bind(migration.name)
        .bind(crate::now_ms())
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Splits a migration file into statements at `;` line ends, dropping
/// comment-only fragments. Migrations never put `;` inside string literals.
fn statements(sql: &str) -> impl Iterator<Item = &str> {
    sql.split(";\n")
        .map(str::trim)
        .filter(|s| s.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_have_the_same_tables() {
        for m in MIGRATIONS {
            let tables = |sql: &str| sql.matches("CREATE TABLE").count();
            assert_eq!(tables(m.sqlite), tables(m.postgres), "migration {}", m.name);
            assert_eq!(statements(m.sqlite).count(), statements(m.postgres).count());
        }
    }
}
