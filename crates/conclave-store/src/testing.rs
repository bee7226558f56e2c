//! Throwaway databases for tests, on either engine. PostgreSQL comes from
//! `CONCLAVE_TEST_POSTGRES_URL` (default: the local server's `test`
//! database); each test gets a database of its own, dropped afterwards. When
//! PostgreSQL is down the fixture tries to start the local cluster, and if it
//! still cannot connect it panics: a PostgreSQL test never passes by skipping.

use crate::{Engine, Store};
use sqlx::{Connection, Executor};
use std::sync::Mutex;

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database that exists for the life of this value.
pub struct TestDatabase {
    pub engine: Engine,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_admin_url: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn new(engine: Engine) -> Self {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("conclave.db").display());
                Self { engine, url, _dir: Some(dir), pg_admin_url: None }
            }
            Engine::Postgres => {
                let admin =
                    std::env::var("CONCLAVE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
                let mut conn = connect_or_start(&admin).await;
                let name = format!("conclave_t_{}", uuid::Uuid::new_v4().simple());
                conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create test database");
                let _ = conn.close().await;
                let url = match admin.rfind('/') {
                    Some(slash) if slash > "postgres://".len() => {
                        format!("{}/{name}", &admin[..slash])
                    }
                    _ => panic!("CONCLAVE_TEST_POSTGRES_URL must name a database: {admin}"),
                };
                Self { engine, url, _dir: None, pg_admin_url: Some((admin, name)) }
            }
        }
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.url).await.expect("connect to test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_admin_url.take() {
            // Drop runs outside any runtime guarantee; use a private one.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await.ok()
                })
            })
            .join();
        }
    }
}

static START_ATTEMPTED: Mutex<bool> = Mutex::new(false);

async fn connect_or_start(url: &str) -> sqlx::PgConnection {
    match sqlx::PgConnection::connect(url).await {
        Ok(conn) => return conn,
        Err(first) => {
            let mut attempted = START_ATTEMPTED.lock().unwrap_or_else(|p| p.into_inner());
            if !*attempted {
                *attempted = true;
                eprintln!(
                    "PostgreSQL unreachable at {} ({first}); trying to start the local cluster",
                    crate::redact_url(url)
                );
                start_local_postgres();
            }
        }
    }
    for _ in 0..30 {
        if let Ok(conn) = sqlx::PgConnection::connect(url).await {
            return conn;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    panic!(
        "PostgreSQL is required for these tests and is unreachable at {}. Start it (pg_ctlcluster <version> main start) \
         or set CONCLAVE_TEST_POSTGRES_URL.",
        crate::redact_url(url)
    );
}

fn start_local_postgres() {
    let Ok(versions) = std::fs::read_dir("/etc/postgresql") else {
        return;
    };
    for version in versions.flatten() {
        let _ = std::process::Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version.file_name().to_string_lossy(), "main", "start"])
            .status();
    }
}

/// Runs the plain async functions named, `async fn name(db: TestDatabase)`,
/// once per engine: tests `name::sqlite` and `name::postgres`, each given a
/// fresh database. (The functions stay ordinary code, so rustfmt formats them.)
#[macro_export]
macro_rules! test_both_engines {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::testing::TestDatabase::new($crate::Engine::Sqlite).await).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::testing::TestDatabase::new($crate::Engine::Postgres).await).await
                }
            }
        )+
    };
}
