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

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "foundation",
    sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
    postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
}];

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
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        // Re-check inside the transaction so two SQLite starters cannot both apply.
        let applied: Option<(i64,)> = sqlx::query_as("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await?;
        if applied.is_some() {
            continue;
        }
        let sql = match engine {
            Engine::Sqlite => migration.sqlite,
            Engine::Postgres => migration.postgres,
        };
        for statement in statements(sql) {
            tx.execute(statement).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(crate::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = migration.version, name = migration.name, "applied schema migration");
    }
    Ok(())
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
