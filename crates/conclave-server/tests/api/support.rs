//! A real server on a loopback port, on a fresh database of either engine,
//! with a manual clock; and shortcuts to populate it through the API.

use conclave_client::Client;
use conclave_proto::{InviteMemberRequest, LoginRequest, LoginResponse, OrgRole, SignupRequest};
use conclave_server::accounts::{self, NewAccount};
use conclave_server::live::Transport;
use conclave_server::{App, ManualClock, ServerConfig, SharedState};
use conclave_store::testing::TestDatabase;
use conclave_store::Engine;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery staple";
/// 2026-01-01T00:00:00Z.
pub const START_MS: i64 = 1_767_225_600_000;

pub struct TestServer {
    pub url: String,
    pub state: SharedState,
    pub clock: ManualClock,
    stop: Option<oneshot::Sender<()>>,
    _db: TestDatabase,
    /// The server's data directory (files kept on its disk are under it).
    pub data_dir: tempfile::TempDir,
}

/// A loopback HTTP port whose number is free for UDP too: the media plane
/// binds the HTTP port's number, which another test's participant may hold.
async fn http_port_with_free_udp_twin() -> (tokio::net::TcpListener, std::net::SocketAddr) {
    loop {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        if std::net::UdpSocket::bind(addr).is_ok() {
            return (listener, addr);
        }
    }
}

impl TestServer {
    pub async fn start(engine: Engine) -> Self {
        Self::start_with(engine, |_| {}).await
    }

    pub async fn start_with(engine: Engine, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let db = TestDatabase::new(engine).await;
        let store = db.store().await;
        let (listener, addr) = http_port_with_free_udp_twin().await;
        let data_dir = tempfile::tempdir().expect("a data directory");
        let mut config = ServerConfig::new(addr, data_dir.path().to_owned());
        // Cheaper Argon2id keeps hundreds of attempts quick; the code path is the same.
        config.limits.argon2_memory_kib = 4 * 1024;
        // Generous per-address budget so tests that sign up many people from
        // one address exercise their own subject, not this limit.
        config.limits.sensitive_burst = 10_000;
        config.limits.sensitive_per_second = 1_000.0;
        config.limits.join_burst = 10_000;
        config.limits.join_per_second = 1_000.0;
        config.live_transport = TRANSPORT.try_with(|t| *t).unwrap_or_default();
        tweak(&mut config);
        let clock = ManualClock::starting_at(START_MS);
        let app = App::new(store, config, Arc::new(clock.clone()));
        let state = app.state.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self { url: format!("http://{addr}"), state, clock, stop: Some(stop), _db: db, data_dir }
    }

    /// Every byte of the server's SQLite database as it is on disk (the
    /// file and its write-ahead log), to search for what must not be there.
    pub fn sqlite_bytes(&self) -> Vec<u8> {
        let path = self._db.url.trim_start_matches("sqlite://");
        let path = path.split('?').next().expect("a path");
        assert!(!path.is_empty() && self._db.engine == Engine::Sqlite, "not an SQLite test server");
        let mut bytes = std::fs::read(path).expect("the database file");
        for suffix in ["-wal", "-journal"] {
            bytes.extend(std::fs::read(format!("{path}{suffix}")).unwrap_or_default());
        }
        bytes
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    pub fn client_from(&self, ip: &str) -> Client {
        Client::with_local_address(&self.url, Some(ip.parse::<IpAddr>().expect("an IP address")))
    }

    pub async fn login(&self, email: &str) -> (Client, LoginResponse) {
        let login = self
            .client()
            .login(&LoginRequest {
                email: email.into(),
                password: PASSWORD.into(),
                totp_code: None,
                recovery_code: None,
                passkey: None,
            })
            .await
            .unwrap_or_else(|e| panic!("login of {email} failed: {e}"));
        (self.client().authenticated(&login.token), login)
    }

    /// A new organisation with its owner signed in.
    pub async fn org_with_owner(&self, owner_email: &str, org_name: &str) -> (Client, LoginResponse) {
        let account = NewAccount::validate(owner_email, "Owner", PASSWORD).unwrap();
        accounts::bootstrap(&self.state, org_name, account, None).await.expect("bootstrap");
        self.login(owner_email).await
    }

    /// Invites `email` into `org_id` as `role` and signs them up.
    pub async fn add_member(
        &self,
        admin: &Client,
        org_id: &str,
        email: &str,
        role: OrgRole,
    ) -> (Client, LoginResponse) {
        let invite =
            admin.invite_member(org_id, &InviteMemberRequest { email: email.into(), role }).await.expect("invite");
        let signup = self
            .client()
            .signup(&SignupRequest {
                email: email.into(),
                password: PASSWORD.into(),
                display_name: "Member".into(),
                invite_token: Some(invite.invite_token),
            })
            .await
            .expect("signup from invitation");
        (self.client().authenticated(&signup.token), signup)
    }

    /// How many audit events match `action` and `outcome`.
    pub async fn audit_count(&self, action: &str, outcome: &str) -> usize {
        let events = self.state.store.list_audit_events(None, None, 100_000).await.unwrap();
        events.iter().filter(|e| e.action == action && e.outcome == outcome).count()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs the plain async functions named, `async fn name(engine: Engine)`,
/// on both engines: tests `name::sqlite` and `name::postgres`. (The
/// functions stay ordinary code, so rustfmt formats them.)
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(conclave_store::Engine::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(conclave_store::Engine::Postgres).await
                }
            }
        )+
    };
}

/// As [`on_both_engines!`], and once more with the live-meeting runtime's
/// loopback transport (`name::loopback`, on SQLite): every command to a
/// meeting and every message out of it crosses as JSON and back, as it
/// would between nodes, and the test must pass the same.
#[macro_export]
macro_rules! on_both_engines_and_loopback {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(conclave_store::Engine::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(conclave_store::Engine::Postgres).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn loopback() {
                    $crate::support::through_loopback(super::$name(conclave_store::Engine::Sqlite)).await
                }
            }
        )+
    };
}

/// For tests on one engine: the test as it is, and once more with the
/// live-meeting runtime's loopback transport (`name::loopback`), every
/// command to a meeting and every message out of it crossing as JSON.
#[macro_export]
macro_rules! in_process_and_loopback {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn in_process() {
                    super::$name().await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn loopback() {
                    $crate::support::through_loopback(super::$name()).await
                }
            }
        )+
    };
}

tokio::task_local! {
    /// How the test servers started in this test reach their live meetings.
    static TRANSPORT: Transport;
}

/// Runs a test whose servers use the loopback transport.
pub async fn through_loopback(test: impl std::future::Future<Output = ()>) {
    TRANSPORT.scope(Transport::Loopback, test).await
}

/// Asserts that a client call failed with this status and problem code.
#[macro_export]
macro_rules! assert_problem {
    ($result:expr, $status:expr, $code:expr) => {{
        match $result {
            Ok(_) => panic!("expected {} {}, got success", $status, $code),
            Err(err) => {
                assert_eq!((err.status(), err.code()), (Some($status), Some($code)), "{err}");
            }
        }
    }};
}

/// Log output kept in memory, for tests that read what was logged.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// A subscriber writing the events `filter` selects (an `EnvFilter`) here.
    pub fn subscriber(&self, filter: &str) -> impl tracing::Subscriber + Send + Sync + 'static {
        let logs = self.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(move || logs.clone())
            .with_ansi(false)
            .finish()
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
