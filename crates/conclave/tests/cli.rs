//! The `conclave` binary as an operator uses it: bootstrap, serve, admin
//! commands and their errors, on SQLite and PostgreSQL.

use conclave_client::Client;
use conclave_proto::LoginRequest;
use conclave_store::testing::TestDatabase;
use conclave_store::Engine;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

fn conclave(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(args)
        .env_remove("CONCLAVE_DATABASE_URL")
        .output()
        .expect("run conclave")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// `--data-dir D`, and `--database-url U` on PostgreSQL (the data
/// directory still holds the secrets key and local files).
fn storage_args(db: &TestDatabase, dir: &std::path::Path) -> Vec<String> {
    let mut args = vec!["--data-dir".into(), dir.display().to_string()];
    if db.engine == Engine::Postgres {
        args.extend(["--database-url".into(), db.url.clone()]);
    }
    args
}

fn admin(storage: &[String], args: &[&str]) -> Output {
    let mut all: Vec<&str> = vec!["admin"];
    all.extend(storage.iter().map(String::as_str));
    all.extend(args);
    conclave(&all)
}

struct Server {
    child: Child,
    url: String,
    banner: String,
    /// The server's log (stderr), for checks that no secret is ever in it.
    log: std::path::PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Server {
    fn start(storage: &[String]) -> Self {
        Self::start_logging(storage, "warn")
    }

    fn start_logging(storage: &[String], level: &str) -> Self {
        Self::start_on(storage, level, "127.0.0.1:0")
    }

    fn start_on(storage: &[String], level: &str, listen: &str) -> Self {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("server.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_conclave"))
            .args(["serve", "--listen", listen])
            .args(storage)
            .env("CONCLAVE_LOG", level)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start conclave serve");
        // Read stdout on a thread: a started server prints its banner and
        // then nothing, so a blocking read would never return.
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|e| {
            let status = child.try_wait().ok().flatten();
            let logged = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("no banner line ({e}); the server's exit status: {status:?}; it logged:\n{logged}")
        });
        let url = first
            .strip_prefix("Conclave is running at ")
            .and_then(|r| r.split_whitespace().next())
            .expect("the URL")
            .to_owned();
        let mut banner = first;
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            banner.push('\n');
            banner.push_str(&line);
        }
        Self { child, url, banner, log, _log_dir: log_dir }
    }

    /// SIGTERM, as an init system sends; the server must exit cleanly.
    /// Returns what it logged.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful shutdown exits 0, got {status}");
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A test that fails before it stops its server does not leave the server
/// running beside the tests after it.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn bootstrap_serve_and_sign_in(engine: Engine) {
    let db = TestDatabase::new(engine).await;
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_args(&db, dir.path());

    // A fresh server prints its URL and a one-time setup token.
    let fresh = Server::start(&storage);
    assert!(fresh.banner.contains("setup_"), "{}", fresh.banner);
    // Bootstrap works while the server runs, on the same storage.
    let out = admin(&storage, &["bootstrap", "--email", "owner@acme.test", "--password", PASSWORD, "--org", "Acme"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Created organisation \"Acme\""));
    let login = Client::new(&fresh.url)
        .login(&LoginRequest {
            email: "owner@acme.test".into(),
            password: PASSWORD.into(),
            totp_code: None,
            recovery_code: None,
            passkey: None,
        })
        .await
        .expect("the bootstrapped owner signs in");
    assert_eq!(login.user.role, Some(conclave_proto::OrgRole::Owner));
    fresh.stop();

    // Restarted, it no longer offers a setup token, and a second bootstrap is refused.
    let again = Server::start(&storage);
    assert!(!again.banner.contains("setup_"), "{}", again.banner);
    again.stop();
    let out = admin(&storage, &["bootstrap", "--email", "x@acme.test", "--password", PASSWORD, "--org", "Other"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("already has an organisation"), "{}", text(&out));

    let org_id = login.user.org_id.unwrap();
    let listed = admin(&storage, &["org", "list"]);
    assert!(text(&listed).contains(&org_id) && text(&listed).contains("plan=free"), "{}", text(&listed));
    let set = admin(&storage, &["policy", "set", &org_id, r#"{"require_2fa":{"value":true,"locked":true}}"#]);
    assert!(set.status.success(), "{}", text(&set));
    assert!(text(&set).contains("\"require_2fa\""));
    let lifted = admin(&storage, &["org", "set-plan", &org_id, "licensed"]);
    assert!(text(&lifted).contains("meeting limit: none"), "{}", text(&lifted));
    let verify = admin(&storage, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains("audit chain intact: 4 events"), "{}", text(&verify));

    // The database's secrets are sealed with the key file in the data
    // directory; a node started with another key refuses to serve, saying
    // why, rather than locking everyone with two-factor out.
    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
    let mut wrong: Vec<String> = storage.clone();
    wrong.extend(["--secrets-key-file".into(), other_key.display().to_string()]);
    let refused = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(&wrong)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(text(&refused).contains("does not open the secrets in this database"), "{}", text(&refused));
    let refused = admin(&wrong, &["org", "list"]);
    assert!(text(&refused).contains("does not open the secrets in this database"), "{}", text(&refused));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_serve_and_sign_in_on_sqlite() {
    bootstrap_serve_and_sign_in(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_serve_and_sign_in_on_postgres() {
    bootstrap_serve_and_sign_in(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_detects_an_edited_event() {
    let db = TestDatabase::new(Engine::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_args(&db, dir.path());
    assert!(admin(&storage, &["bootstrap", "--email", "o@a.test", "--password", PASSWORD, "--org", "A"])
        .status
        .success());
    let deactivate = admin(&storage, &["user", "deactivate", "o@a.test"]);
    assert!(deactivate.status.success(), "{}", text(&deactivate));
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("conclave.db").display())).await.unwrap();
    sqlx::query("UPDATE audit_events SET actor_id = 'someone-else' WHERE seq = 1").execute(&pool).await.unwrap();
    pool.close().await;
    let verify = admin(&storage, &["audit", "verify"]);
    assert!(!verify.status.success());
    assert!(text(&verify).contains("BROKEN: event 1: contents do not match"), "{}", text(&verify));
}

#[test]
fn admin_errors_are_clear_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let weak = conclave(&[
        "admin",
        "--data-dir",
        &d,
        "bootstrap",
        "--email",
        "o@a.test",
        "--password",
        "password12345",
        "--org",
        "A",
    ]);
    assert!(!weak.status.success());
    assert!(text(&weak).contains("password: password is one of the most commonly used"), "{}", text(&weak));
    let bad_email =
        conclave(&["admin", "--data-dir", &d, "bootstrap", "--email", "nope", "--password", PASSWORD, "--org", "A"]);
    assert!(text(&bad_email).contains("email: must be an email address"), "{}", text(&bad_email));
    let listed = conclave(&["admin", "--data-dir", &d, "org", "list"]);
    assert!(listed.status.success() && listed.stdout.is_empty(), "nothing was created: {}", text(&listed));
    let unknown = conclave(&["admin", "--data-dir", &d, "policy", "show", "no-such-org"]);
    assert!(text(&unknown).contains("no organisation has the id no-such-org"));
    let bad_url = conclave(&["admin", "--database-url", "mysql://x", "org", "list"]);
    assert!(text(&bad_url).contains("must start with postgres://"));
    // Passwords never leak into the error output.
    let redacted = conclave(&["admin", "--database-url", "postgres://app:s3cret@127.0.0.1:1/x", "org", "list"]);
    assert!(!redacted.status.success());
    assert!(!text(&redacted).contains("s3cret"), "{}", text(&redacted));
}

#[test]
fn serve_help_explains_every_option() {
    let help = text(&conclave(&["serve", "--help"]));
    for option in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--secrets-key-file",
        "--config",
        "--public-url",
        "--registration",
        "--regions",
        "--trusted-proxies",
        "--log-format",
    ] {
        assert!(help.contains(option), "serve --help lacks {option}");
    }
    for env in [
        "CONCLAVE_LISTEN",
        "CONCLAVE_DATA_DIR",
        "CONCLAVE_DATABASE_URL",
        "CONCLAVE_SECRETS_KEY_FILE",
        "CONCLAVE_CONFIG",
    ] {
        assert!(help.contains(env), "serve --help lacks {env}");
    }
}

#[test]
fn environment_is_read_and_flags_win() {
    let env_dir = tempfile::tempdir().unwrap();
    let flag_dir = tempfile::tempdir().unwrap();
    let bootstrap = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["admin", "bootstrap", "--email", "o@a.test", "--password", PASSWORD, "--org", "EnvOrg"])
        .env("CONCLAVE_DATA_DIR", env_dir.path())
        .output()
        .unwrap();
    assert!(bootstrap.status.success(), "{}", text(&bootstrap));
    assert!(env_dir.path().join("conclave.db").exists(), "CONCLAVE_DATA_DIR was used");
    let flagged = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["admin", "--data-dir", &flag_dir.path().display().to_string(), "org", "list"])
        .env("CONCLAVE_DATA_DIR", env_dir.path())
        .output()
        .unwrap();
    assert!(flagged.stdout.is_empty(), "the flag's empty data dir won over the environment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_waits_is_admitted_by_the_host_chats_and_leaves() {
    use conclave_client::MeetingConnection;
    use conclave_proto::signal::{ClientMessage, ServerMessage};
    let dir = tempfile::tempdir().unwrap();
    let storage = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
    assert!(admin(&storage, &["bootstrap", "--email", "host@acme.test", "--password", PASSWORD, "--org", "Acme"])
        .status
        .success());
    let server = Server::start(&storage);
    let host = Client::new(&server.url);
    let login = host
        .login(&LoginRequest {
            email: "host@acme.test".into(),
            password: PASSWORD.into(),
            totp_code: None,
            recovery_code: None,
            passkey: None,
        })
        .await
        .unwrap();
    let host = host.authenticated(&login.token);
    let meeting = host
        .create_meeting(&conclave_proto::CreateMeetingRequest {
            title: "Bot test".into(),
            scheduled_start_ms: None,
            duration_minutes: None,
            passcode: None,
            settings: Default::default(),
            invitees: Vec::new(),
        })
        .await
        .unwrap();
    let mut host_conn: MeetingConnection = host.join_by_link(&meeting.link_secret, "Host").await.unwrap();
    let wait = Duration::from_secs(10);
    host_conn.wait_for("admission", wait, |m| matches!(m, ServerMessage::Admitted { .. })).await.unwrap();

    let bot = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args([
            "bot",
            "--server",
            &server.url,
            "--link",
            &meeting.invite_url,
            "--name",
            "Test bot",
            "--say",
            "hello from the bot",
            "--stay",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let knock = host_conn.wait_for("knock", wait, |m| matches!(m, ServerMessage::Knock { .. })).await.unwrap();
    let ServerMessage::Knock { participant } = knock else { unreachable!() };
    assert_eq!(participant.display_name, "Test bot");
    host_conn.send(&ClientMessage::Admit { participant_id: participant.id }).await.unwrap();
    host_conn
        .wait_for(
            "the bot's chat",
            wait,
            |m| matches!(m, ServerMessage::Chat { message } if message.text == "hello from the bot"),
        )
        .await
        .unwrap();
    let left = host_conn
        .wait_for(
            "the bot leaving",
            wait,
            |m| matches!(m, ServerMessage::ParticipantLeft { participant_id } if *participant_id == participant.id),
        )
        .await;
    let output = bot.wait_with_output().unwrap();
    assert!(
        left.is_ok(),
        "the host never saw the bot leave ({left:?}); the bot said:\n{}\nthe host saw: {:?}",
        text(&output),
        host_conn.received
    );

    let printed = text(&output);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("waiting in the waiting room"), "{printed}");
    assert!(printed.contains("admitted as participant"), "{printed}");
    assert!(printed.contains("said: hello from the bot") && printed.contains("left the meeting"), "{printed}");
    server.stop();
}

/// Everything secret that passes through a server in a normal session —
/// the password, session and CSRF tokens, an access token, invite and join
/// secrets, TOTP material — never appears in its log, even at debug level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_ever_reaches_the_log() {
    use conclave_client::MeetingConnection;
    use conclave_proto::signal::ServerMessage;
    let dir = tempfile::tempdir().unwrap();
    let storage = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
    let server = Server::start_logging(&storage, "debug");
    let setup_token =
        server.banner.lines().map(str::trim).find(|l| l.starts_with("setup_")).expect("a setup token").to_owned();
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{}/api/v1/setup", server.url))
        .json(&serde_json::json!({"setup_token": setup_token, "org_name": "Acme", "email": "owner@acme.test", "password": PASSWORD, "display_name": "Owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let anonymous = Client::new(&server.url);
    let _wrong = anonymous
        .login(&LoginRequest {
            email: "owner@acme.test".into(),
            password: "a wrong guess at it".into(),
            totp_code: None,
            recovery_code: None,
            passkey: None,
        })
        .await;
    let login = anonymous
        .login(&LoginRequest {
            email: "owner@acme.test".into(),
            password: PASSWORD.into(),
            totp_code: None,
            recovery_code: None,
            passkey: None,
        })
        .await
        .unwrap();
    let owner = anonymous.authenticated(&login.token);
    let pat = owner
        .create_access_token(&conclave_proto::CreateAccessTokenRequest { name: "ci".into(), expires_in_days: None })
        .await
        .unwrap();
    let enrol = owner.totp_enroll().await.unwrap();
    let meeting = owner
        .create_meeting(&conclave_proto::CreateMeetingRequest {
            title: "Secret plans".into(),
            scheduled_start_ms: None,
            duration_minutes: None,
            passcode: Some("hush-hush-42".into()),
            settings: Default::default(),
            invitees: Vec::new(),
        })
        .await
        .unwrap();
    let ticket = anonymous
        .join_meeting(&conclave_proto::JoinMeetingRequest {
            link_secret: None,
            code: Some(meeting.code.clone()),
            passcode: Some("hush-hush-42".into()),
            display_name: "Guest".into(),
        })
        .await
        .unwrap();
    let mut guest = MeetingConnection::connect(&ticket.signaling_url).await.unwrap();
    let ServerMessage::Waiting { resume_token, .. } = guest.next(Duration::from_secs(10)).await.unwrap() else {
        panic!("not waiting")
    };
    guest.close().await;
    let log = server.stop();
    assert!(log.contains("auth.login"), "the log was captured at debug level");
    let secrets = [
        ("password", PASSWORD.to_owned()),
        ("wrong password", "a wrong guess at it".to_owned()),
        ("setup token", setup_token),
        ("session token", login.token.clone()),
        ("CSRF token", login.csrf_token.clone()),
        ("access token", pat.token.clone()),
        ("TOTP secret", enrol.secret.clone()),
        ("invite link secret", meeting.link_secret.clone()),
        ("passcode", "hush-hush-42".to_owned()),
        ("host key", meeting.host_key.clone()),
        ("join ticket", ticket.ticket.clone()),
        ("resume token", resume_token),
    ];
    for (what, secret) in secrets {
        assert!(!log.contains(&secret), "the {what} appears in the server log");
    }
}

/// The closing-note demonstration, as processes: a host bot (the owner's
/// token, `--admit`) and a guest bot; the guest knocks, is admitted, chats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_bot_admits_a_guest_bot() {
    let dir = tempfile::tempdir().unwrap();
    let storage = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
    assert!(admin(&storage, &["bootstrap", "--email", "host@acme.test", "--password", PASSWORD, "--org", "Acme"])
        .status
        .success());
    let server = Server::start(&storage);
    let login = Client::new(&server.url)
        .login(&LoginRequest {
            email: "host@acme.test".into(),
            password: PASSWORD.into(),
            totp_code: None,
            recovery_code: None,
            passkey: None,
        })
        .await
        .unwrap();
    let host = Client::new(&server.url).authenticated(&login.token);
    let meeting = host
        .create_meeting(&conclave_proto::CreateMeetingRequest {
            title: "Demo".into(),
            scheduled_start_ms: None,
            duration_minutes: None,
            passcode: None,
            settings: Default::default(),
            invitees: Vec::new(),
        })
        .await
        .unwrap();
    let bot = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_conclave"))
            .arg("bot")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let host_bot = bot(&[
        "--server",
        &server.url,
        "--link",
        &meeting.invite_url,
        "--token",
        &login.token,
        "--name",
        "Host",
        "--admit",
        "--stay",
        "4",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    let guest_bot = bot(&[
        "--server",
        &server.url,
        "--link",
        &meeting.invite_url,
        "--name",
        "Guest",
        "--say",
        "hello, host",
        "--stay",
        "1",
    ]);
    let guest = guest_bot.wait_with_output().unwrap();
    let host_out = host_bot.wait_with_output().unwrap();
    assert!(guest.status.success(), "{}", text(&guest));
    assert!(
        text(&guest).contains("waiting in the waiting room") && text(&guest).contains("admitted as participant"),
        "{}",
        text(&guest)
    );
    assert!(
        text(&host_out).contains("admitted as participant") && text(&host_out).contains("(Host)"),
        "{}",
        text(&host_out)
    );
    assert!(
        text(&host_out).contains("Guest waiting; admitting")
            && text(&host_out).contains("chat from Guest: hello, host"),
        "{}",
        text(&host_out)
    );
    server.stop();
}

/// A loopback address whose port is free for TCP and UDP alike (the media
/// plane binds the HTTP port's number), to start a server on twice.
/// A port free for the server's HTTP and media (UDP on the same port, ICE
/// over TCP on the next), chosen below the system's ephemeral range: the
/// restart test binds the same port twice, and in between any outgoing
/// connection of the tests running beside it could be given an ephemeral
/// port as its own and make the second bind fail.
fn free_port() -> String {
    let first_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let below = first_ephemeral.saturating_sub(10_000).max(1024);
    let span = first_ephemeral - below - 1;
    let seed = std::process::id() as u64 ^ std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.subsec_nanos() as u64);
    for attempt in 0..1000u64 {
        let port = below + (seed.wrapping_add(attempt * 7919) % span as u64) as u16;
        let free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok();
        if free {
            return format!("127.0.0.1:{port}");
        }
    }
    panic!("no free port below the ephemeral range ({first_ephemeral})")
}

/// The server stops in the middle of a meeting and a new process starts on
/// the same database. A join ticket lives in the database: one issued
/// before the restart and not yet used still opens the meeting after it
/// (once, within its minute). A resume token belongs to its seat in a live
/// room, and the room died with the process: it is refused, and its holder
/// joins again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_outlives_a_restart_and_a_seat_does_not() {
    use conclave_client::MeetingConnection;
    use conclave_proto::signal::ServerMessage;
    let db = TestDatabase::new(Engine::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_args(&db, dir.path());
    let out = admin(&storage, &["bootstrap", "--email", "owner@acme.test", "--password", PASSWORD, "--org", "Acme"]);
    assert!(out.status.success(), "{}", text(&out));
    let listen = free_port();
    let before = Server::start_on(&storage, "warn", &listen);
    let login = Client::new(&before.url)
        .login(&LoginRequest {
            email: "owner@acme.test".into(),
            password: PASSWORD.into(),
            totp_code: None,
            recovery_code: None,
            passkey: None,
        })
        .await
        .unwrap();
    let owner = Client::new(&before.url).authenticated(&login.token);
    let meeting = owner
        .create_meeting(&conclave_proto::CreateMeetingRequest {
            title: "Through a restart".into(),
            scheduled_start_ms: None,
            duration_minutes: None,
            passcode: None,
            settings: Default::default(),
            invitees: Vec::new(),
        })
        .await
        .unwrap();
    let wait = Duration::from_secs(10);
    let mut host = owner.join_by_link(&meeting.link_secret, "Owner").await.unwrap();
    let ServerMessage::Admitted { resume_token, .. } = host.next(wait).await.unwrap() else { panic!("not admitted") };
    // A guest has a ticket, not yet used.
    let join = conclave_proto::JoinMeetingRequest {
        link_secret: Some(meeting.link_secret.clone()),
        code: None,
        passcode: None,
        display_name: "Guest".into(),
    };
    let ticket = Client::new(&before.url).join_meeting(&join).await.unwrap();

    before.stop();
    let after = Server::start_on(&storage, "warn", &listen);
    assert_eq!(after.url, format!("http://{listen}"));
    assert!(host.closed_within(wait).await, "the old process's connections are gone");
    // The ticket is redeemed by the new process, once.
    let mut guest = MeetingConnection::connect(&ticket.signaling_url).await.unwrap();
    assert!(
        matches!(guest.next(wait).await.unwrap(), ServerMessage::Waiting { .. }),
        "a new room: the guest waits for the owner"
    );
    assert!(matches!(
        MeetingConnection::connect(&ticket.signaling_url).await,
        Err(conclave_client::SignalError::Rejected(401))
    ));
    // The seat went with the old room: its resume token finds no seat in
    // the meeting's new room, and says so (§6.4 of the protocol).
    let resume = MeetingConnection::resume_url(&after.url, &resume_token);
    let mut stale = MeetingConnection::connect(&resume).await.unwrap();
    assert!(
        matches!(stale.next(wait).await.unwrap(), ServerMessage::Error { code, .. } if code == "cannot_join"),
        "{:?}",
        stale.received
    );
    assert!(stale.closed_within(wait).await);
    // Joining again works as ever: the owner opens the meeting, the guest is told.
    let mut host = owner.join_by_link(&meeting.link_secret, "Owner").await.unwrap();
    assert!(matches!(host.next(wait).await.unwrap(), ServerMessage::Admitted { .. }));
    guest.close().await;
    host.close().await;
    after.stop();
}

/// Signs in on the server at `url`.
async fn sign_in(url: &str, email: &str) -> (Client, conclave_proto::LoginResponse) {
    let request = LoginRequest {
        email: email.into(),
        password: PASSWORD.into(),
        totp_code: None,
        recovery_code: None,
        passkey: None,
    };
    let login = Client::new(url).login(&request).await.unwrap();
    (Client::new(url).authenticated(&login.token), login)
}

/// Bootstraps an organisation on `storage` whose owner invites Grace; both
/// signed in on the server at `url`, with Grace's account id.
async fn owner_and_member(storage: &[String], url: &str) -> (Client, Client, String) {
    use conclave_proto::{InviteMemberRequest, OrgRole, SignupRequest};
    let out = admin(storage, &["bootstrap", "--email", "owner@acme.test", "--password", PASSWORD, "--org", "Acme"]);
    assert!(out.status.success(), "{}", text(&out));
    let (owner, login) = sign_in(url, "owner@acme.test").await;
    let org = login.user.org_id.clone().unwrap();
    let invitation = InviteMemberRequest { email: "grace@acme.test".into(), role: OrgRole::Member };
    let invite = owner.invite_member(&org, &invitation).await.unwrap();
    let request = SignupRequest {
        email: "grace@acme.test".into(),
        password: PASSWORD.into(),
        display_name: "Grace".into(),
        invite_token: Some(invite.invite_token),
    };
    let signup = Client::new(url).signup(&request).await.unwrap();
    (owner, Client::new(url).authenticated(&signup.token), signup.user.id)
}

/// `conclave chat` on a running server: the owner starts a group from the
/// command line and follows it; a member's device, on its first use, is
/// added by the owner's device and sends; the owner's terminal prints it,
/// decrypted on that machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_sends_and_tails_on_a_running_server() {
    use conclave_proto::CreateAccessTokenRequest;
    let db = TestDatabase::new(Engine::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_args(&db, dir.path());
    let server = Server::start(&storage);
    let (owner, grace, grace_id) = owner_and_member(&storage, &server.url).await;
    let token = |client: Client| async move {
        client
            .create_access_token(&CreateAccessTokenRequest { name: "cli".into(), expires_in_days: None })
            .await
            .unwrap()
            .token
    };
    let (owner_token, grace_token) = (token(owner).await, token(grace).await);
    let chat = |token: &str, device: &str, args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_conclave"));
        command
            .args(["chat", "--server", &server.url, "--token", token, "--device-file"])
            .arg(dir.path().join(device))
            .args(args);
        command
    };

    let created =
        chat(&owner_token, "owner.json", &["create", "--group", "Launch", "--member", &grace_id]).output().unwrap();
    assert!(created.status.success(), "{}", text(&created));
    let id = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let mode = std::fs::metadata(dir.path().join("owner.json")).unwrap().permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600, "the device file is its owner's alone");
    let tail = chat(&owner_token, "owner.json", &["tail", &id, "--follow", "--seconds", "12"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let sent = chat(&grace_token, "grace.json", &["send", &id, "hello from the command line"]).output().unwrap();
    assert!(sent.status.success(), "{}", text(&sent));
    assert!(text(&sent).contains("sent #"), "{}", text(&sent));
    let tailed = tail.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&tailed.stdout);
    assert!(printed.contains(&format!("{}: hello from the command line", grace_id)), "{printed}");
    // The owner reacts; the member's history, kept on her device, shows both.
    let seq = String::from_utf8_lossy(&sent.stdout).trim().trim_start_matches("sent #").parse::<u64>().unwrap();
    let reacted = chat(&owner_token, "owner.json", &["react", &id, &seq.to_string(), "👍"]).output().unwrap();
    assert!(text(&reacted).contains("reacted #"), "{}", text(&reacted));
    let history = chat(&grace_token, "grace.json", &["history", &id]).output().unwrap();
    let history = text(&history);
    assert!(history.contains(&format!("#{seq} {}: hello from the command line", grace_id)), "{history}");
    assert!(history.contains(&format!("(reacts to #{seq}): 👍")), "{history}");
    // Lines piped in are messages, in order (blank lines are none).
    let mut piped = chat(&grace_token, "grace.json", &["send", &id, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut piped.stdin.take().unwrap(), b"build 41 passed\n\nbuild 42 failed\n").unwrap();
    let piped = piped.wait_with_output().unwrap();
    assert!(text(&piped).contains("sent 2 messages"), "{}", text(&piped));
    let history = text(&chat(&grace_token, "grace.json", &["history", &id]).output().unwrap());
    let (passed, failed) = (history.find("build 41 passed"), history.find("build 42 failed"));
    assert!(passed.is_some() && passed < failed, "both, in order: {history}");
    // Grace's new laptop follows the group: it waits until the device that
    // keeps the group's membership (the owner's, which made it) adds it,
    // which the owner's one-shot send does as it catches up first; what the
    // owner sends then is on the laptop's screen.
    let mut laptop = chat(&grace_token, "grace-laptop.json", &["tail", &id, "--follow", "--seconds", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut waiting = String::new();
    let mut laptop_err = BufReader::new(laptop.stderr.take().unwrap());
    while !waiting.contains("waiting for another device") {
        assert_ne!(laptop_err.read_line(&mut waiting).unwrap(), 0, "the laptop ended: {waiting}");
    }
    let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let laptop_out = BufReader::new(laptop.stdout.take().unwrap());
    let reader = std::thread::spawn({
        let shown = shown.clone();
        move || laptop_out.lines().map_while(Result::ok).for_each(|l| shown.lock().unwrap().push_str(&(l + "\n")))
    });
    // Sent again until shown: the laptop's request may reach the log just
    // after a send.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !shown.lock().unwrap().contains(": the owner writes as the laptop waits") {
        assert!(std::time::Instant::now() < deadline, "never on the laptop: {}", shown.lock().unwrap());
        let sent = chat(&owner_token, "owner.json", &["send", &id, "the owner writes as the laptop waits"]).output();
        assert!(sent.as_ref().unwrap().status.success(), "{}", text(&sent.unwrap()));
        std::thread::sleep(Duration::from_millis(1500));
    }
    laptop.kill().unwrap();
    laptop.wait().unwrap();
    reader.join().unwrap();
    // A picture goes with a preview made on the sender's machine, which the
    // others fetch before (or instead of) the picture; other files go without.
    let picture = dir.path().join("whiteboard.png");
    image::RgbImage::from_fn(1200, 800, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]))
        .save(&picture)
        .unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "minutes of the launch meeting").unwrap();
    let sent_seq = |output: &Output| -> String {
        let printed = text(output);
        assert!(output.status.success(), "{printed}");
        printed.split("sent #").nth(1).and_then(|rest| rest.split_whitespace().next()).expect("sent #n").to_owned()
    };
    let picture_seq =
        sent_seq(&chat(&grace_token, "grace.json", &["upload", &id, picture.to_str().unwrap()]).output().unwrap());
    let notes_seq =
        sent_seq(&chat(&grace_token, "grace.json", &["upload", &id, notes.to_str().unwrap()]).output().unwrap());
    let preview = dir.path().join("preview.jpg");
    let fetched = chat(&owner_token, "owner.json", &["download", &id, &picture_seq, "--thumbnail", "--to"])
        .arg(&preview)
        .output()
        .unwrap();
    assert!(fetched.status.success(), "{}", text(&fetched));
    let shown = image::open(&preview).expect("the preview is a picture");
    assert_eq!((shown.width(), shown.height()), (320, 213), "small, in the picture's proportions");
    let none = chat(&owner_token, "owner.json", &["download", &id, &notes_seq, "--thumbnail"]).output().unwrap();
    assert!(!none.status.success() && text(&none).contains("has no preview"), "{}", text(&none));
    // Where the organisation allows it, a plain channel for announcements:
    // made with --plain, listed as not encrypted, joined and read like any.
    let (owner, login) = sign_in(&server.url, "owner@acme.test").await;
    let allow = conclave_proto::OrgPolicyUpdate {
        unencrypted_channels: Some(conclave_proto::Setting::unlocked(true)),
        ..Default::default()
    };
    owner.update_org_policy(login.user.org_id.as_deref().unwrap(), &allow).await.unwrap();
    let plain = chat(&owner_token, "owner.json", &["create", "--channel", "news", "--plain"]).output().unwrap();
    assert!(plain.status.success(), "{}", text(&plain));
    let news = String::from_utf8_lossy(&plain.stdout).trim().to_owned();
    let listed = text(&chat(&owner_token, "owner.json", &["list"]).output().unwrap());
    assert!(listed.lines().any(|l| l.contains("news") && l.contains("not encrypted")), "{listed}");
    let joined = chat(&grace_token, "grace.json", &["join", &news]).output().unwrap();
    assert!(joined.status.success(), "{}", text(&joined));
    let announced =
        chat(&owner_token, "owner.json", &["send", &news, "The office is closed on Friday"]).output().unwrap();
    assert!(announced.status.success(), "{}", text(&announced));
    let read = text(&chat(&grace_token, "grace.json", &["history", &news]).output().unwrap());
    assert!(read.contains("The office is closed on Friday"), "{read}");
    // The server's database holds the ciphertext only.
    let mut database = std::fs::read(dir.path().join("conclave.db")).unwrap();
    database.extend(std::fs::read(dir.path().join("conclave.db-wal")).unwrap_or_default());
    assert!(!database.windows(11).any(|w| w == b"hello from "), "the plaintext is not stored");
    server.stop();
}

/// The server killed with SIGKILL right after acknowledging messages loses
/// none of them: restarted on the same storage, a device that was offline
/// reads every acknowledged message, in order, once.
async fn acknowledged_messages_survive_sigkill(engine: Engine) {
    use conclave_client::chat::{ChatDevice, ChatEvent};
    use conclave_proto::conversation::{ConversationKind, CreateConversationRequest};
    let db = TestDatabase::new(engine).await;
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_args(&db, dir.path());
    let server = Server::start(&storage);
    let (owner, grace, grace_id) = owner_and_member(&storage, &server.url).await;
    let mut ada_device = ChatDevice::register(&owner, "laptop").await.unwrap();
    let mut grace_device = ChatDevice::register(&grace, "laptop").await.unwrap();
    let dm = CreateConversationRequest {
        kind: ConversationKind::Direct,
        name: None,
        members: vec![grace_id],
        encrypted: true,
    };
    let dm = owner.create_conversation(&dm).await.unwrap();
    ada_device.open(&dm.id).await.unwrap();
    grace_device.open(&dm.id).await.unwrap();
    for _ in 0..20 {
        ada_device.sync().await.unwrap();
        grace_device.sync().await.unwrap();
        if ada_device.in_group(&dm.id) && grace_device.in_group(&dm.id) {
            break;
        }
    }
    ada_device.sync().await.unwrap();
    assert!(grace_device.in_group(&dm.id));
    // Grace goes offline; Ada sends, each message acknowledged; the server dies at once.
    let sent: Vec<String> = (0..25).map(|i| format!("acknowledged {i:02}")).collect();
    for text in &sent {
        ada_device.send_text(&dm.id, text, None).await.unwrap();
    }
    let mut server = server;
    Command::new("kill").args(["-KILL", &server.child.id().to_string()]).status().unwrap();
    server.child.wait().unwrap();

    let restarted = Server::start(&storage);
    let (grace, _) = sign_in(&restarted.url, "grace@acme.test").await;
    let mut grace_device = ChatDevice::restore(&grace, &grace_device.export()).unwrap();
    let read: Vec<String> = grace_device
        .sync()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| if let ChatEvent::Message { text, .. } = e { Some(text) } else { None })
        .collect();
    assert_eq!(read, sent, "every acknowledged message, in order, once");
    restarted.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill_on_sqlite() {
    acknowledged_messages_survive_sigkill(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill_on_postgres() {
    acknowledged_messages_survive_sigkill(Engine::Postgres).await;
}

/// Runs a command to its end, reading its peak resident memory (VmHWM, in
/// KiB) from /proc as it goes.
fn run_measuring_peak_memory(mut command: Command) -> (Output, u64) {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the command");
    let status = format!("/proc/{}/status", child.id());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let read = std::fs::read_to_string(&status).unwrap_or_default();
                let hwm = read
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()));
                peak = peak.max(hwm.unwrap_or(0));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        })
    };
    let output = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    (output, watcher.join().unwrap())
}

/// A gigabyte file shared from the command line: sealed on the sender's
/// machine, kept in the organisation's own bucket at a real S3-compatible
/// server, opened on the receiver's machine byte for byte — each side in
/// constant memory (a small fraction of the file), and the bucket holding
/// only sealed parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_file_round_trips_through_the_organisations_bucket() {
    use conclave_blob::testing::S3Server;
    use conclave_proto::file::StorageSettings;
    use conclave_proto::CreateAccessTokenRequest;
    const GIB: u64 = 1 << 30;
    const MARKER: &[u8] = b"CONFIDENTIAL GIGABYTE BLOCK ";

    let s3 = S3Server::start();
    s3.create_bucket("acme-files").await;
    let db = TestDatabase::new(Engine::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_args(&db, dir.path());
    let mut serve = storage.clone();
    serve.extend(["--storage-endpoints".to_owned(), s3.endpoint.clone()]);
    let server = Server::start(&serve);
    let (owner, grace, grace_id) = owner_and_member(&storage, &server.url).await;
    let org = owner.me().await.unwrap().user.org_id.unwrap();
    let bucket = s3.bucket("acme-files");
    let settings = StorageSettings::S3 {
        endpoint: bucket.endpoint,
        region: bucket.region,
        bucket: bucket.name,
        access_key_id: bucket.access_key_id,
        secret_access_key: bucket.secret_access_key,
    };
    owner.set_org_storage(&org, &settings).await.unwrap();
    let token = |client: Client| async move {
        let request = CreateAccessTokenRequest { name: "cli".into(), expires_in_days: None };
        client.create_access_token(&request).await.unwrap().token
    };
    let (owner_token, grace_token) = (token(owner).await, token(grace).await);
    let chat = |token: &str, device: &str, args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_conclave"));
        command
            .args(["chat", "--server", &server.url, "--token", token, "--device-file"])
            .arg(dir.path().join(device))
            .args(args);
        command
    };

    // A gigabyte, every mebibyte of it marked, so any plaintext copy shows.
    let source = dir.path().join("quarter.bin");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&source).unwrap());
        // One mebibyte of marked lines, each copy numbered at its start.
        let mut block: Vec<u8> = MARKER.iter().copied().cycle().take(1 << 20).collect();
        for i in 0..(GIB >> 20) {
            block[..8].copy_from_slice(&i.to_be_bytes());
            file.write_all(&block).unwrap();
        }
        file.flush().unwrap();
    }

    let started = std::time::Instant::now();
    let created =
        chat(&owner_token, "owner.json", &["create", "--group", "Quarter", "--member", &grace_id]).output().unwrap();
    assert!(created.status.success(), "{}", text(&created));
    let id = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    // The owner's device is online for a while, to add the member's new one.
    let tail = chat(&owner_token, "owner.json", &["tail", &id, "--follow", "--seconds", "15"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (sent, upload_peak_kib) =
        run_measuring_peak_memory(chat(&grace_token, "grace.json", &["upload", &id, source.to_str().unwrap()]));
    assert!(sent.status.success(), "{}", text(&sent));
    let uploaded_after = started.elapsed();
    assert!(
        text(&sent).contains("[file \"quarter.bin\", application/octet-stream, 1073741824 bytes]"),
        "{}",
        text(&sent)
    );
    tail.wait_with_output().unwrap();

    let saved = dir.path().join("received.bin");
    let seq =
        String::from_utf8_lossy(&sent.stdout).split_whitespace().nth(1).unwrap().trim_start_matches('#').to_owned();
    let (fetched, download_peak_kib) = run_measuring_peak_memory(chat(
        &owner_token,
        "owner.json",
        &["download", &id, &seq, "--to", saved.to_str().unwrap()],
    ));
    assert!(fetched.status.success(), "{}", text(&fetched));
    eprintln!("1 GiB: uploaded after {uploaded_after:?}, downloaded after {:?}", started.elapsed());

    // Byte for byte, and the SHA-256 the receiver checked is the file's.
    let sha256 = |path: &std::path::Path| {
        let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
        String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
    };
    let digest = sha256(&source);
    assert_eq!(sha256(&saved), digest);
    assert!(text(&fetched).contains(&format!("SHA-256 {digest}")), "{}", text(&fetched));

    // Constant memory: each side held a few parts, not the file.
    let limit_kib = 160 * 1024;
    assert!(upload_peak_kib > 0 && upload_peak_kib < limit_kib, "uploading peaked at {upload_peak_kib} KiB");
    assert!(download_peak_kib > 0 && download_peak_kib < limit_kib, "downloading peaked at {download_peak_kib} KiB");
    eprintln!("1 GiB: upload peak {upload_peak_kib} KiB, download peak {download_peak_kib} KiB");

    // The bucket holds the file's 256 sealed parts and no plaintext.
    let keys = s3.keys("acme-files").await;
    assert_eq!(keys.len(), 256, "one object per part");
    for key in keys.iter().step_by(51) {
        let object = s3.object("acme-files", key).await;
        assert!(!object.windows(MARKER.len()).any(|w| w == MARKER), "{key} holds plaintext");
    }
    assert!(!dir.path().join("files").exists(), "nothing on the server's own disk");
    server.stop();
}

/// `n` UDP sockets on consecutive loopback ports.
fn consecutive_udp_sockets(n: u16) -> Vec<std::net::UdpSocket> {
    for _ in 0..100 {
        let first = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        let Some(last) = port.checked_add(n - 1) else { continue };
        let rest: Result<Vec<_>, _> = (port + 1..=last).map(|p| std::net::UdpSocket::bind(("127.0.0.1", p))).collect();
        if let Ok(rest) = rest {
            return std::iter::once(first).chain(rest).collect();
        }
    }
    panic!("no {n} consecutive free UDP ports")
}

/// `conclave impair --ports N` stands in front of a server that gives each
/// peer connection a port of its own (Janus): each of its ports relays to
/// the matching upstream port, and SIGUSR1 cuts them all at once.
#[test]
fn impair_relays_each_port_of_a_range_to_its_own() {
    let echoes = consecutive_udp_sockets(2);
    let upstream = echoes[0].local_addr().unwrap().port();
    for echo in echoes {
        std::thread::spawn(move || {
            let port = echo.local_addr().unwrap().port();
            let mut buf = [0u8; 64];
            while let Ok((n, from)) = echo.recv_from(&mut buf) {
                let _ = echo.send_to(format!("{port}:{}", String::from_utf8_lossy(&buf[..n])).as_bytes(), from);
            }
        });
    }
    let listen = consecutive_udp_sockets(2)[0].local_addr().unwrap().port();
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["impair", "--listen", &format!("127.0.0.1:{listen}"), "--upstream", &format!("127.0.0.1:{upstream}")])
        .args(["--ports", "2", "--delay", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut started = String::new();
    BufReader::new(proxy.stdout.take().unwrap()).read_line(&mut started).unwrap();
    let range = format!("127.0.0.1:{listen}-{} → 127.0.0.1:{upstream}-{}", listen + 1, upstream + 1);
    assert!(started.contains(&range), "{started}");

    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ask = |offset: u16, timeout_ms: u64| {
        client.set_read_timeout(Some(Duration::from_millis(timeout_ms))).unwrap();
        client.send_to(b"hello", ("127.0.0.1", listen + offset)).unwrap();
        let mut buf = [0u8; 64];
        client.recv(&mut buf).ok().map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    for offset in 0..2 {
        assert_eq!(ask(offset, 3000), Some(format!("{}:hello", upstream + offset)), "port {offset} of the range");
    }
    let signal = |name: &str| {
        Command::new("kill").args([name, &proxy.id().to_string()]).status().unwrap();
        std::thread::sleep(Duration::from_millis(200));
    };
    signal("-USR1");
    for offset in 0..2 {
        assert_eq!(ask(offset, 400), None, "port {offset} relays nothing in the outage");
    }
    signal("-USR1");
    for offset in 0..2 {
        assert_eq!(ask(offset, 3000), Some(format!("{}:hello", upstream + offset)), "port {offset} back");
    }
    proxy.kill().unwrap();
    proxy.wait().unwrap();

    // A range needs a port to count from.
    let refused = conclave(&["impair", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--ports", "2"]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("127.0.0.1:0 has no port 1 after it"), "{}", text(&refused));
}
