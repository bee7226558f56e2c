//! Email through a real SMTP server on loopback (aiosmtpd, with STARTTLS
//! on a certificate made for the test): invitations arrive with their
//! link, and a password is reset by an emailed single-use link that ends
//! every session — asked for in the same way whether or not the address
//! has an account.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::conversations::WAIT;
use crate::support::{TestServer, PASSWORD};
use crate::{assert_problem, on_both_engines};
use conclave_proto::{
    CreateMeetingRequest, InviteMemberRequest, JoinMeetingRequest, LoginRequest, OrgRole, SignupRequest,
    UpdateMeetingRequest,
};
use conclave_server::mail::{SmtpConfig, SmtpSecurity};
use conclave_store::Engine;
use serde_json::{json, Value};

/// aiosmtpd (`cargo xtask test` installs it) keeping what it receives in
/// a maildir, requiring STARTTLS.
pub(crate) struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpServer {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .expect("openssl makes the test certificate");
        assert!(made.success());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg("--tlscert")
            .arg(dir.path().join("cert.pem"))
            .arg("--tlskey")
            .arg(dir.path().join("key.pem"))
            .arg(dir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd is not installed: `cargo xtask test` installs it, or `pip install aiosmtpd`");
        let mut child = child;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("aiosmtpd exited ({status}): is it installed? `cargo xtask test` installs it, or `pip install aiosmtpd`");
            }
            assert!(std::time::Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, port, dir }
    }

    pub(crate) fn config(&self) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            security: SmtpSecurity::StartTls,
            username: None,
            password: None,
            ca_file: Some(self.dir.path().join("cert.pem")),
            from: "Conclave <noreply@conclave.test>".into(),
        }
    }

    /// Every message received, as sent (soft line breaks undone).
    pub(crate) fn messages(&self) -> Vec<String> {
        self.files().into_iter().map(|(_, text)| text).collect()
    }

    /// Every message received: its file, and its text with soft line breaks undone.
    fn files(&self) -> Vec<(std::path::PathBuf, String)> {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.dir.path().join("mail").join(sub)) else { continue };
            for entry in entries.flatten() {
                let raw = std::fs::read_to_string(entry.path()).unwrap();
                found.push((entry.path(), raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")));
            }
        }
        found
    }

    /// The messages to `to` whose subject starts with `subject`, once
    /// `count` have arrived, read by Python's `email` and `icalendar`.
    async fn invitations_to(&self, to: &str, subject: &str, count: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut read = Vec::new();
            let mut unread = Vec::new();
            for (path, text) in self.files() {
                if !text.contains(&format!("To: {to}")) {
                    continue;
                }
                let output = std::process::Command::new("python3")
                    .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/email/read_invitation.py"))
                    .arg(&path)
                    .output()
                    .expect("python3 runs");
                if !output.status.success() {
                    unread.push(String::from_utf8_lossy(&output.stderr).into_owned());
                    continue;
                }
                let parsed: Value = serde_json::from_slice(&output.stdout).unwrap();
                if parsed["subject"].as_str().is_some_and(|s| s.starts_with(subject)) {
                    read.push(parsed);
                }
            }
            if read.len() >= count {
                read.sort_by_key(|m| m["sequence"].as_i64());
                return read;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{count} × {subject:?} to {to}: {read:?}; unreadable: {unread:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The message to `to` whose subject is `subject`, once it arrives.
    pub(crate) async fn message_to(&self, to: &str, subject: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let found = self.messages().into_iter().find(|m| {
                m.contains(&format!("To: {to}")) && m.lines().any(|l| l.starts_with("Subject: ") && l.contains(subject))
            });
            if let Some(message) = found {
                return message;
            }
            assert!(tokio::time::Instant::now() < deadline, "no email to {to}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text after `marker` up to the end of its token.
pub(crate) fn token_after(message: &str, marker: &str) -> String {
    let start = message.find(marker).unwrap_or_else(|| panic!("{marker} in {message}")) + marker.len();
    message[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).collect()
}

async fn invitations_and_password_resets_arrive_by_email(engine: Engine) {
    let smtp = SmtpServer::start();
    let config = smtp.config();
    let srv = TestServer::start_with(engine, |c| c.smtp = Some(config)).await;
    let (ada, login) = srv.org_with_owner("ada@acme.test", "Acme").await;
    let org = login.user.org_id.clone().unwrap();

    // The invitation arrives with its link, which creates the account.
    ada.invite_member(&org, &InviteMemberRequest { email: "grace@acme.test".into(), role: OrgRole::Member })
        .await
        .unwrap();
    let invitation = smtp.message_to("grace@acme.test", "invited you").await;
    assert!(invitation.contains("invited you to Acme"), "{invitation}");
    assert!(invitation.contains("Content-Type: text/plain") && invitation.contains("Content-Type: text/html"));
    assert!(!invitation.contains("<img") && !invitation.contains("src="), "nothing loaded from anywhere");
    let invite_token = token_after(&invitation, "/signup?invite=");
    let signup = SignupRequest {
        email: "grace@acme.test".into(),
        password: PASSWORD.into(),
        display_name: "Grace".into(),
        invite_token: Some(invite_token),
    };
    let grace_login = srv.client().signup(&signup).await.unwrap();
    let grace = srv.client().authenticated(&grace_login.token);

    // Asking is answered alike for an address with no account, which gets nothing.
    srv.client().request_password_reset("nobody@acme.test").await.unwrap();
    srv.client().request_password_reset("Grace@Acme.test").await.unwrap();
    let reset = smtp.message_to("grace@acme.test", "Reset your Conclave password").await;
    let token = token_after(&reset, "/reset#");
    assert!(token.starts_with("rst_"), "{token}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!smtp.messages().iter().any(|m| m.contains("To: nobody@acme.test")));

    // A weak password is refused and the link still works; then the new
    // password is set, every session ends, and the link is spent.
    assert_problem!(srv.client().confirm_password_reset(&token, "password").await, 422, "validation-failed");
    let new_password = "a brand new passphrase, long enough";
    srv.client().confirm_password_reset(&token, new_password).await.unwrap();
    assert_problem!(grace.me().await, 401, "unauthenticated");
    assert_problem!(
        srv.client().confirm_password_reset(&token, "yet another passphrase here").await,
        400,
        "invalid-invitation"
    );
    let with = |password: &str| LoginRequest {
        email: "grace@acme.test".into(),
        password: password.into(),
        totp_code: None,
        recovery_code: None,
        passkey: None,
    };
    assert_problem!(srv.client().login(&with(PASSWORD)).await, 401, "invalid-credentials");
    srv.client().login(&with(new_password)).await.unwrap();
    assert_eq!(srv.audit_count("auth.password.reset", "success").await, 1);
}

/// A sign-in from a device the account was never used on (another browser,
/// or the same one in another network) is told to the account's owner by
/// email, with where it came from; a sign-in from a known one is not.
async fn a_sign_in_from_a_new_device_is_told_by_email(engine: Engine) {
    let smtp = SmtpServer::start();
    let config = smtp.config();
    let srv = TestServer::start_with(engine, |c| c.smtp = Some(config)).await;
    srv.org_with_owner("ada@acme.test", "Acme").await;
    let login = LoginRequest {
        email: "ada@acme.test".into(),
        password: PASSWORD.into(),
        totp_code: None,
        recovery_code: None,
        passkey: None,
    };
    let subject = "New sign-in to your Conclave account";
    let notices = || smtp.messages().into_iter().filter(|m| m.contains(subject)).count();
    // Where she signed up, again: nothing to tell.
    srv.client().login(&login).await.unwrap();
    srv.client_from("127.0.0.77").login(&login).await.unwrap();
    // Another network: told, with the address and the program.
    srv.client_from("127.0.9.9").login(&login).await.unwrap();
    let notice = smtp.message_to("ada@acme.test", subject).await;
    assert!(notice.contains("127.0.9.9") && notice.contains("conclave-client/"), "{notice}");
    assert!(notice.contains("change your password"), "{notice}");
    // Known from now on.
    srv.client_from("127.0.9.10").login(&login).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(notices(), 1, "one notice, for the one new device");
}

/// Without SMTP settings nothing is silently dropped: asking for a reset
/// says the server sends no email.
async fn without_smtp_a_reset_is_refused_plainly(engine: Engine) {
    let srv = TestServer::start(engine).await;
    srv.org_with_owner("ada@acme.test", "Acme").await;
    assert_problem!(srv.client().request_password_reset("ada@acme.test").await, 503, "unavailable");
}

/// Meeting invitations are calendar events: each invitee gets one that
/// their calendar reads (times in UTC, the organizer, every attendee, how
/// to join), a changed meeting replaces it (a higher sequence), someone
/// dropped or a deleted meeting gets a cancellation, and rotating the
/// secrets sends the new link.
async fn meeting_invitations_are_calendar_events_that_follow_the_meeting(engine: Engine) {
    let smtp = SmtpServer::start();
    let config = smtp.config();
    // A day's invitations: what this test sends, and a little more.
    let srv = TestServer::start_with(engine, |c| {
        c.smtp = Some(config);
        c.limits.invitation_emails_per_day = 12;
    })
    .await;
    let (ada, _) = srv.org_with_owner("ada@acme.test", "Acme").await;
    let start = 1_796_306_400_000; // 2026-12-03 14:00 UTC
    let request = |invitees: Vec<String>, start: Option<i64>| CreateMeetingRequest {
        title: "Q4 review; budget".into(),
        scheduled_start_ms: start,
        duration_minutes: Some(45),
        passcode: Some("sesame-42".into()),
        settings: Default::default(),
        invitees,
    };
    // Wrong addresses, and invitations without a time, are refused.
    assert_problem!(ada.create_meeting(&request(vec!["nope".into()], Some(start))).await, 422, "validation-failed");
    assert_problem!(ada.create_meeting(&request(vec!["g@x.test".into()], None)).await, 422, "validation-failed");
    let meeting = ada
        .create_meeting(&request(vec!["grace@example.org".into(), "Bob@Example.org".into()], Some(start)))
        .await
        .unwrap();
    assert_eq!(meeting.invitees, ["grace@example.org", "bob@example.org"]);

    let first = &smtp.invitations_to("grace@example.org", "Invitation: Q4 review", 1).await[0];
    assert_eq!(first["method"], "REQUEST");
    assert_eq!(
        (first["start"].as_str(), first["end"].as_str()),
        (Some("2026-12-03T14:00:00+00:00"), Some("2026-12-03T14:45:00+00:00"))
    );
    assert_eq!((first["summary"].as_str(), first["sequence"].as_i64()), (Some("Q4 review; budget"), Some(0)));
    assert_eq!(first["uid"], json!(format!("{}@127.0.0.1", meeting.id)));
    assert_eq!(first["organizer"], "mailto:ada@acme.test");
    assert_eq!(first["attendees"], json!(["mailto:grace@example.org", "mailto:bob@example.org"]));
    assert_eq!(first["url"], json!(meeting.invite_url));
    let description = first["description"].as_str().unwrap();
    assert!(description.contains(&meeting.code) && description.contains("sesame-42"), "{description}");
    assert!(first["text"].as_str().unwrap().contains("2026-12-03 14:00 UTC"));
    let types: Vec<&str> = first["parts"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["text/plain", "text/html", "text/calendar", "application/ics"]);
    assert_eq!(first["parts"][2]["method"], "REQUEST");
    assert_eq!(first["parts"][3]["filename"], "invite.ics");
    // Its link lets the invitee in.
    let join = JoinMeetingRequest {
        link_secret: Some(meeting.link_secret.clone()),
        code: None,
        passcode: None,
        display_name: "Grace".into(),
    };
    srv.client().join_meeting(&join).await.expect("the invitation's link opens the meeting");

    // An hour later, Bob dropped and Carol added: Grace's calendar moves
    // the event, Bob's removes it, Carol gets it.
    let later = UpdateMeetingRequest {
        scheduled_start_ms: Some(start + 3_600_000),
        invitees: Some(vec!["grace@example.org".into(), "carol@example.org".into()]),
        ..Default::default()
    };
    ada.update_meeting(&meeting.id, &later).await.unwrap();
    let moved = &smtp.invitations_to("grace@example.org", "Updated invitation", 1).await[0];
    assert_eq!((moved["sequence"].as_i64(), moved["start"].as_str()), (Some(1), Some("2026-12-03T15:00:00+00:00")));
    assert_eq!(moved["uid"], first["uid"], "the same event, replaced");
    let dropped = &smtp.invitations_to("bob@example.org", "Cancelled", 1).await[0];
    assert_eq!((dropped["method"].as_str(), dropped["status"].as_str()), (Some("CANCEL"), Some("CANCELLED")));
    // Someone no longer invited is not told how to join.
    assert_eq!(dropped["url"], Value::Null);
    let told = format!("{}{}", dropped["description"], dropped["text"]);
    assert!(!told.contains(&meeting.link_secret) && !told.contains("sesame-42"), "{told}");
    smtp.invitations_to("carol@example.org", "Updated invitation", 1).await;

    // New secrets: the invitations carry the new link; the old one is dead.
    let rotated = ada.rotate_meeting_secrets(&meeting.id).await.unwrap();
    let renewed = smtp.invitations_to("grace@example.org", "Updated invitation", 2).await;
    assert_eq!(
        (renewed[1]["sequence"].as_i64(), renewed[1]["url"].as_str()),
        (Some(2), Some(rotated.invite_url.as_str()))
    );
    assert_problem!(srv.client().join_meeting(&join).await, 404, "meeting-not-found");

    // Deleted: everyone still invited gets the cancellation.
    ada.delete_meeting(&meeting.id).await.unwrap();
    for invitee in ["grace@example.org", "carol@example.org"] {
        let cancelled = &smtp.invitations_to(invitee, "Cancelled", 1).await[0];
        assert_eq!((cancelled["method"].as_str(), cancelled["sequence"].as_i64()), (Some("CANCEL"), Some(3)));
    }

    // An organisation sends a day's worth of invitations and no more: the
    // server is nobody's spam relay.
    let many: Vec<String> = (0..10).map(|i| format!("stranger{i}@example.org")).collect();
    assert_problem!(ada.create_meeting(&request(many, Some(start))).await, 429, "too-many-requests");
}

on_both_engines!(
    meeting_invitations_are_calendar_events_that_follow_the_meeting,
    invitations_and_password_resets_arrive_by_email,
    a_sign_in_from_a_new_device_is_told_by_email,
    without_smtp_a_reset_is_refused_plainly
);
