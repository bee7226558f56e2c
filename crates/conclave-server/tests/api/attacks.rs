//! The second round of zoombombing, run as an attacker runs it. Each of the
//! first five tests is an attack that used to get through — taking the
//! host's seat with a device id, learning who is in the meeting from
//! reports, cutting the host out of the encryption group, banning the
//! meeting's owner with the host key, guessing the password from a stolen
//! session — and shows it no longer does. The weaker spots found with them
//! follow: names that impersonate, an unbounded waiting room, metrics open to
//! anyone, plain-text upgrade refusals and floods cut without a reason.

use crate::meetings::{admit, guest_knocks, host_joins, hosted, WAIT};
use crate::support::{TestServer, PASSWORD};
use crate::two_factor::{code, enrol};
use crate::{assert_problem, in_process_and_loopback, on_both_engines, on_both_engines_and_loopback};
use conclave_client::{MeetingConnection, SignalError};
use conclave_e2ee::agent::{AgentEvent, E2eeAgent};
use conclave_e2ee::credential::KnownDevices;
use conclave_e2ee::mls::{GroupMember, OpenMlsMember};
use conclave_proto::signal::*;
use conclave_proto::*;
use conclave_store::Engine;
use serde_json::{json, Value};
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(300);

/// Waits until `count` audit events match, or fails saying how many did.
async fn audited(srv: &TestServer, action: &str, outcome: &str, count: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = srv.audit_count(action, outcome).await;
        if seen == count {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{action} {outcome}: {seen} audit events, not {count}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The resume token of a connection's seat, from its `admitted` or `waiting`.
fn resume_token_of(conn: &MeetingConnection) -> String {
    conn.received
        .iter()
        .find_map(|m| match m {
            ServerMessage::Admitted { resume_token, .. } | ServerMessage::Waiting { resume_token, .. } => {
                Some(resume_token.clone())
            }
            _ => None,
        })
        .expect("the connection was seated")
}

on_both_engines_and_loopback!(an_outsider_cannot_take_the_hosts_seat_with_a_device_id);
async fn an_outsider_cannot_take_the_hosts_seat_with_a_device_id(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, host_id) = host_joins(&host, &meeting).await;

    // The attack: a join naming the device id the host's app used.
    let http = reqwest::Client::new();
    let attack = json!({"link_secret": meeting.link_secret, "display_name": "Host", "device_id": "host-laptop"});
    let response = http.post(format!("{}/api/v1/meetings/join", srv.url)).json(&attack).send().await.unwrap();
    assert_eq!(response.status(), 422, "a device id is no longer something a client may claim");
    let problem: Value = response.json().await.unwrap();
    assert!(problem.to_string().contains("device_id"), "{problem}");

    // Joining as anyone else would, the outsider gets a seat of its own,
    // in the waiting room; the host keeps theirs.
    let (_attacker, attacker_id, _) = guest_knocks(&srv, &meeting, "Host", "127.0.30.1").await;
    assert_ne!(attacker_id, host_id);
    host_conn.send(&ClientMessage::Ping).await.unwrap();
    host_conn.wait_for("pong", WAIT, |m| matches!(m, ServerMessage::Pong)).await.unwrap();
    assert!(!host_conn.received.iter().any(|m| matches!(m, ServerMessage::Replaced)));

    // In a locked meeting the outsider is refused, and that is audited.
    host_conn.send(&ClientMessage::Lock).await.unwrap();
    host_conn
        .wait_for("locked", WAIT, |m| matches!(m, ServerMessage::SettingsChanged { settings } if settings.locked))
        .await
        .unwrap();
    let refused_before = srv.audit_count("meeting.join", "denied").await;
    let mut locked_out = srv.client_from("127.0.30.2").join_by_link(&meeting.link_secret, "Host").await.unwrap();
    assert_eq!(locked_out.next(WAIT).await.unwrap(), ServerMessage::Refused { reason: RefusalReason::Locked });
    audited(&srv, "meeting.join", "denied", refused_before + 1).await;

    // The takeovers that remain are the seat's own, and each is audited:
    // the same account from another tab (even into the locked meeting)...
    let mut second_tab = host.join_by_link(&meeting.link_secret, "Host (phone)").await.unwrap();
    let ServerMessage::Admitted { participant_id, you, .. } = second_tab.next(WAIT).await.unwrap() else {
        panic!("the owner's second tab is not admitted")
    };
    assert_eq!((participant_id, you.role), (host_id, Role::Host));
    host_conn.wait_for("replaced", WAIT, |m| matches!(m, ServerMessage::Replaced)).await.unwrap();
    audited(&srv, "meeting.seat.takeover", "success", 1).await;
    // ...and whoever holds a seat's resume token.
    let token = resume_token_of(&second_tab);
    let mut resumed = MeetingConnection::connect(&MeetingConnection::resume_url(&srv.url, &token)).await.unwrap();
    resumed
        .wait_for(
            "readmission",
            WAIT,
            |m| matches!(m, ServerMessage::Admitted { participant_id, .. } if *participant_id == host_id),
        )
        .await
        .unwrap();
    second_tab.wait_for("replaced", WAIT, |m| matches!(m, ServerMessage::Replaced)).await.unwrap();
    audited(&srv, "meeting.seat.takeover", "success", 2).await;
}

on_both_engines_and_loopback!(reports_tell_the_reporter_nothing_it_could_not_see);
async fn reports_tell_the_reporter_nothing_it_could_not_see(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, login, meeting) = hosted(&srv).await;
    let (mut host_conn, host_id) = host_joins(&host, &meeting).await;
    let host_token = resume_token_of(&host_conn);
    let (mut ada, ada_id, ada_token) = guest_knocks(&srv, &meeting, "Ada", "127.0.31.1").await;
    let (mut troll, troll_id, _) = guest_knocks(&srv, &meeting, "Troll", "127.0.31.2").await;
    admit(&mut host_conn, &mut ada, ada_id).await;
    admit(&mut host_conn, &mut troll, troll_id).await;
    let (_wally, wally_id, wally_token) = guest_knocks(&srv, &meeting, "Wally Waiting", "127.0.31.3").await;
    let http = reqwest::Client::new();
    let report = |token: &str, id: u64| {
        let body = json!({"participant_token": token, "participant_id": id, "reason": "offensive drawings"});
        http.post(format!("{}/api/v1/meetings/{}/reports", srv.url, meeting.id)).json(&body).send()
    };
    let names = ["Host", "Ada", "Troll", "Wally"];
    let reveals = |body: &str| names.iter().any(|n| body.contains(n));

    // Still in the waiting room: no report, about anyone (walking the
    // small ids learns nothing, and spams nobody).
    for id in [host_id, ada_id, troll_id, wally_id, 9_999] {
        let response = report(&wally_token, id).await.unwrap();
        assert_eq!(response.status(), 403, "waiting guest reporting {id}");
        assert!(!reveals(&response.text().await.unwrap()));
    }
    // Admitted: someone waiting is nobody at all, exactly like a made-up id.
    let about_waiting = report(&ada_token, wally_id).await.unwrap();
    let about_nobody = report(&ada_token, 9_999).await.unwrap();
    assert_eq!((about_waiting.status().as_u16(), about_nobody.status().as_u16()), (404, 404));
    let (a, b) = (about_waiting.text().await.unwrap(), about_nobody.text().await.unwrap());
    assert_eq!(a, b, "the two refusals are the same");
    assert!(!reveals(&a));

    // About someone Ada can see: filed, and the answer names nobody.
    let filed = report(&ada_token, troll_id).await.unwrap();
    assert_eq!(filed.status(), 201);
    let receipt: Value = filed.json().await.unwrap();
    let mut keys: Vec<&str> = receipt.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["at_ms", "id", "meeting_id"]);
    assert!(!reveals(&receipt.to_string()));

    // Five an hour per person: the sixth waits.
    for _ in 0..4 {
        assert_eq!(report(&ada_token, troll_id).await.unwrap().status(), 201);
    }
    let throttled = report(&ada_token, troll_id).await.unwrap();
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));

    // A host sees the waiting room, so may report from it.
    assert_eq!(report(&host_token, wally_id).await.unwrap().status(), 201);
    // The organisation's admins read who reported whom.
    let org = login.user.org_id.unwrap();
    let reports = host.list_reports(&org).await.unwrap().reports;
    assert_eq!(reports.len(), 6);
    assert!(reports.iter().any(|r| r.reporter_name == "Ada" && r.reported_name == "Troll"));
    assert!(reports.iter().any(|r| r.reporter_name == "Host" && r.reported_name == "Wally Waiting"));
    audited(&srv, "meeting.report", "denied", 8).await;
}

/// A participant's device in an E2EE meeting without media: its signaling
/// connection and the same agent every device runs.
struct Device {
    conn: MeetingConnection,
    agent: E2eeAgent<OpenMlsMember>,
    events: Vec<AgentEvent>,
}

impl Device {
    async fn start(mut conn: MeetingConnection) -> Self {
        let agent = E2eeAgent::for_device(None, KnownDevices::default()).unwrap();
        conn.send(&agent.start()).await.unwrap();
        Self { conn, agent, events: Vec::new() }
    }

    /// Handles what has arrived (waiting at most `within` for the first).
    async fn pump(&mut self, within: Duration) {
        let mut wait = within;
        while let Ok(message) = self.conn.next(wait).await {
            wait = Duration::from_millis(1);
            let handled = self.agent.handle(&message);
            self.events.extend(handled.events);
            for reply in handled.send {
                self.conn.send(&reply).await.unwrap();
            }
        }
    }

    fn group_size(&self) -> usize {
        self.agent.session().member.members().len()
    }
}

/// Lets every device answer until `done` holds.
async fn settle(devices: &mut [&mut Device], what: &str, done: impl Fn(&[&mut Device]) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(devices) {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        for device in devices.iter_mut() {
            device.pump(Duration::from_millis(20)).await;
        }
    }
}

in_process_and_loopback!(a_member_who_is_not_the_committer_cannot_cut_anyone_out_of_the_encryption_group);
async fn a_member_who_is_not_the_committer_cannot_cut_anyone_out_of_the_encryption_group() {
    let srv = TestServer::start(conclave_store::Engine::Sqlite).await;
    let (host, _, meeting) = hosted(&srv).await;
    assert!(meeting.settings.e2ee);
    let (mut host_conn, host_id) = host_joins(&host, &meeting).await;
    let (mut ada_conn, ada_id, _) = guest_knocks(&srv, &meeting, "Ada", "127.0.32.1").await;
    let (mut troll_conn, troll_id, _) = guest_knocks(&srv, &meeting, "Troll", "127.0.32.2").await;
    admit(&mut host_conn, &mut ada_conn, ada_id).await;
    admit(&mut host_conn, &mut troll_conn, troll_id).await;
    let mut owner = Device::start(host_conn).await;
    settle(&mut [&mut owner], "the group", |d| d[0].group_size() == 1).await;
    let mut ada = Device::start(ada_conn).await;
    let mut troll = Device::start(troll_conn).await;
    settle(&mut [&mut owner, &mut ada, &mut troll], "all three in the group", |d| {
        d.iter().all(|d| d.group_size() == 3)
    })
    .await;
    let code = owner.agent.session().security_code();

    // Troll, a plain member, builds a commit removing the host's device.
    let host_leaf = troll.agent.roster().iter().find(|m| m.participant_id == Some(host_id)).unwrap().leaf;
    let member = &mut troll.agent.session_mut().member;
    let epoch = member.epoch().unwrap();
    let rogue = data_encoding::BASE64.encode(&member.remove(&[host_leaf]).unwrap().commit);
    member.discard_commit().unwrap();
    let attack = ClientMessage::E2eeCommit {
        epoch,
        commit: rogue.clone(),
        welcome: None,
        added: vec![],
        removed: vec![host_id],
    };
    troll.conn.send(&attack).await.unwrap();
    // The server refuses it, and keeps a record.
    let refusal =
        troll.conn.wait_for("refusal", WAIT, |m| matches!(m, ServerMessage::E2eeRejected { .. })).await.unwrap();
    assert!(
        matches!(&refusal, ServerMessage::E2eeRejected { reason, .. } if reason.contains("designated committer")),
        "{refusal:?}"
    );
    audited(&srv, "meeting.e2ee.commit", "denied", 1).await;

    // A relay that passed it on anyway would get nowhere: Ada's device
    // refuses it, warns, and tells the server, which keeps that too.
    let handled = ada.agent.handle(&ServerMessage::E2eeCommit { from: troll_id, epoch: epoch + 1, commit: rogue });
    assert!(matches!(handled.events.as_slice(), [AgentEvent::CommitRefused { from, .. }] if *from == troll_id));
    for reply in handled.send {
        ada.conn.send(&reply).await.unwrap();
    }
    audited(&srv, "meeting.e2ee.commit_refused", "denied", 1).await;

    // Nothing changed: the host is in everyone's group and speaks to it.
    assert_eq!(ada.agent.session().security_code(), code);
    let chat = owner.agent.chat("still the host").unwrap().expect("no removal waits");
    owner.conn.send(&chat).await.unwrap();
    settle(&mut [&mut owner, &mut ada, &mut troll], "the host's chat", |d| {
        d.iter()
            .filter(|d| d.events.iter().any(|e| matches!(e, AgentEvent::Chat { text, .. } if text == "still the host")))
            .count()
            == 2
    })
    .await;
    assert_eq!(troll.agent.session().security_code(), code);
}

on_both_engines_and_loopback!(the_host_key_never_locks_the_owner_out);
async fn the_host_key_never_locks_the_owner_out(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (owner, login, meeting) = hosted(&srv).await;
    let org = login.user.org_id.clone().unwrap();
    let (admin, _) = srv.add_member(&owner, &org, "admin@acme.test", OrgRole::Admin).await;
    let (member, _) = srv.add_member(&owner, &org, "member@acme.test", OrgRole::Member).await;
    let (mut owner_conn, owner_id) = host_joins(&owner, &meeting).await;
    let (mut mallory, mallory_id, _) = guest_knocks(&srv, &meeting, "Mallory", "127.0.33.1").await;
    admit(&mut owner_conn, &mut mallory, mallory_id).await;
    let mut admin_conn = admin.join_by_link(&meeting.link_secret, "Admin").await.unwrap();
    let ServerMessage::Waiting { participant_id: admin_id, .. } = admin_conn.next(WAIT).await.unwrap() else {
        panic!("admin not waiting")
    };
    admit(&mut owner_conn, &mut admin_conn, admin_id).await;

    // Mallory has the host key: while the owner is here it makes a co-host.
    mallory.send(&ClientMessage::ClaimHost { host_key: meeting.host_key.clone() }).await.unwrap();
    owner_conn.wait_for("Mallory a co-host", WAIT, |m| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.id == mallory_id && participant.role == Role::CoHost)).await.unwrap();
    // Even made host by the owner, she removes neither the owner nor an admin.
    owner_conn.send(&ClientMessage::TransferHost { participant_id: mallory_id }).await.unwrap();
    mallory.wait_for("made host", WAIT, |m| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.id == mallory_id && participant.role == Role::Host)).await.unwrap();
    for target in [owner_id, admin_id] {
        mallory.send(&ClientMessage::Remove { participant_id: target }).await.unwrap();
        let refusal = mallory.wait_for("refusal", WAIT, |m| matches!(m, ServerMessage::Error { .. })).await.unwrap();
        assert!(matches!(&refusal, ServerMessage::Error { code, .. } if code == "forbidden"), "{refusal:?}");
    }
    owner_conn.send(&ClientMessage::Ping).await.unwrap();
    owner_conn.wait_for("pong", WAIT, |m| matches!(m, ServerMessage::Pong)).await.unwrap();
    assert!(!owner_conn.received.iter().any(|m| matches!(m, ServerMessage::Removed)));
    assert!(srv.state.store.list_meeting_bans(&meeting.id).await.unwrap().is_empty());

    // Mallory can still remove an ordinary guest: that ban the owner and
    // admins can read and lift; a member cannot.
    let (mut troll, troll_id, _) = guest_knocks(&srv, &meeting, "Troll", "127.0.33.2").await;
    admit(&mut mallory, &mut troll, troll_id).await;
    mallory.send(&ClientMessage::Remove { participant_id: troll_id }).await.unwrap();
    troll.wait_for("removal", WAIT, |m| matches!(m, ServerMessage::Removed)).await.unwrap();
    let bans = loop {
        let bans = owner.list_meeting_bans(&meeting.id).await.unwrap().bans;
        if !bans.is_empty() {
            break bans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (bans[0].display_name.as_str(), bans[0].removed_by.as_str(), bans[0].user_id.as_deref()),
        ("Troll", "Mallory", None)
    );
    assert_problem!(member.list_meeting_bans(&meeting.id).await, 403, "forbidden");
    assert_problem!(member.lift_meeting_ban(&meeting.id, &bans[0].id).await, 403, "forbidden");
    assert_eq!(admin.list_meeting_bans(&meeting.id).await.unwrap().bans.len(), 1);
    let mut refused = srv.client_from("127.0.33.2").join_by_link(&meeting.link_secret, "Troll").await.unwrap();
    assert_eq!(refused.next(WAIT).await.unwrap(), ServerMessage::Refused { reason: RefusalReason::Removed });
    owner.lift_meeting_ban(&meeting.id, &bans[0].id).await.unwrap();
    assert_problem!(owner.lift_meeting_ban(&meeting.id, &bans[0].id).await, 404, "not-found");
    audited(&srv, "meeting.ban.lift", "success", 1).await;
    let mut back = srv.client_from("127.0.33.2").join_by_link(&meeting.link_secret, "Troll").await.unwrap();
    assert!(matches!(back.next(WAIT).await.unwrap(), ServerMessage::Waiting { .. }), "the live room let the ban go");

    // A ban naming the owner (kept from before these rules) never keeps
    // them out of their own meeting.
    let another = owner
        .create_meeting(&CreateMeetingRequest {
            title: "Retro".into(),
            scheduled_start_ms: None,
            duration_minutes: None,
            passcode: None,
            settings: Default::default(),
            invitees: Vec::new(),
        })
        .await
        .unwrap();
    let owner_key = [format!("user:{}", login.user.id)];
    let stale = conclave_store::NewBan {
        keys: &owner_key,
        display_name: "Owner",
        user_id: Some(&login.user.id),
        removed_by: "Mallory",
    };
    srv.state.store.add_meeting_ban(&another.id, &stale, srv.state.now_ms()).await.unwrap();
    let (_conn, _) = host_joins(&owner, &another).await;
}

on_both_engines!(a_stolen_session_cannot_guess_the_password);
async fn a_stolen_session_cannot_guess_the_password(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (stolen, _) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let (secret, _) = enrol(&srv, &stolen).await;
    let guess = |password: &str| ChangePasswordRequest {
        current_password: password.into(),
        new_password: "a brand new passphrase".into(),
    };

    // Five wrong guesses, as sign-in allows...
    for n in 0..5 {
        assert_problem!(stolen.change_password(&guess(&format!("guess number {n}"))).await, 401, "invalid-credentials");
    }
    // ...then nothing more, not even the right password, on any of the
    // paths that re-check it, nor at sign-in: the account is locked.
    assert_problem!(stolen.change_password(&guess(PASSWORD)).await, 429, "too-many-requests");
    assert_problem!(stolen.regenerate_recovery_codes(PASSWORD).await, 429, "too-many-requests");
    assert_problem!(stolen.totp_disable(PASSWORD).await, 429, "too-many-requests");
    let sign_in = LoginRequest {
        email: "owner@acme.test".into(),
        password: PASSWORD.into(),
        totp_code: Some(code(&srv, &secret)),
        recovery_code: None,
        passkey: None,
    };
    assert_problem!(srv.client().login(&sign_in).await, 429, "too-many-requests");
    audited(&srv, "auth.password.change", "failure", 6).await;
    audited(&srv, "auth.2fa.recovery_codes", "failure", 1).await;
    audited(&srv, "auth.2fa.disable", "failure", 1).await;

    // Once the lockout passes, the owner's right password works again.
    srv.clock.advance(Duration::from_secs(5 * 60));
    stolen.regenerate_recovery_codes(PASSWORD).await.unwrap();

    // The address is held to account too: one that failed at sign-in as
    // often as a credential-stuffing run does re-checks nothing, even the
    // right password with the session it stole; from elsewhere it works.
    let stuffer = srv.client_from("127.0.41.1");
    let token = stolen.token().expect("a signed-in client").to_owned();
    let stolen_there = stuffer.authenticated(&token);
    for n in 0..40 {
        let wrong = LoginRequest {
            email: format!("someone-{n}@acme.test"),
            password: "not it".into(),
            totp_code: None,
            recovery_code: None,
            passkey: None,
        };
        if srv.client_from("127.0.41.1").login(&wrong).await.is_err_and(|e| e.status() == Some(429)) {
            break;
        }
    }
    assert_problem!(stolen_there.regenerate_recovery_codes(PASSWORD).await, 429, "too-many-requests");
    stolen.regenerate_recovery_codes(PASSWORD).await.unwrap();
}

on_both_engines_and_loopback!(names_that_impersonate_are_refused_and_the_roster_marks_members);
async fn names_that_impersonate_are_refused_and_the_roster_marks_members(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, _) = host_joins(&host, &meeting).await;
    let join = |name: &str| JoinMeetingRequest {
        link_secret: Some(meeting.link_secret.clone()),
        code: None,
        passcode: None,
        display_name: name.into(),
    };
    for lookalike in
        ["Owner\u{200B}", "Own\u{202E}er", "Owner\u{2066}", "O\u{0336}\u{0336}\u{0336}\u{0336}wner", "\u{FEFF}Owner"]
    {
        let err = srv.client().join_meeting(&join(lookalike)).await.unwrap_err();
        let conclave_client::ClientError::Api(problem) = err else { panic!("{err}") };
        assert!(problem.errors.iter().any(|e| e.field == "display_name"), "{lookalike:?}: {problem:?}");
    }
    // Line separators are whitespace: they become the single space any run of it does.
    // Names are normalised: a decomposed accent and doubled spaces are the plain name.
    let ticket = srv.client_from("127.0.34.1").join_meeting(&join("  Jose\u{0301} \u{2028}  Guest ")).await.unwrap();
    let mut guest = MeetingConnection::connect(&ticket.signaling_url).await.unwrap();
    let ServerMessage::Waiting { participant_id, .. } = guest.next(WAIT).await.unwrap() else { panic!("not waiting") };
    let knock = host_conn.wait_for("knock", WAIT, |m| matches!(m, ServerMessage::Knock { .. })).await.unwrap();
    let ServerMessage::Knock { participant } = knock else { unreachable!() };
    assert_eq!((participant.display_name.as_str(), participant.organisation.as_deref()), ("José Guest", None));
    admit(&mut host_conn, &mut guest, participant_id).await;
    let ServerMessage::Admitted { roster, .. } =
        guest.received.iter().rev().find(|m| matches!(m, ServerMessage::Admitted { .. })).unwrap().clone()
    else {
        unreachable!()
    };
    let owner = roster.iter().find(|p| p.role == Role::Host).unwrap();
    assert_eq!(
        (owner.signed_in, owner.organisation.as_deref()),
        (true, Some("Acme")),
        "members show their organisation"
    );
    let me = roster.iter().find(|p| p.id == participant_id).unwrap();
    assert_eq!((me.signed_in, me.organisation.as_deref()), (false, None), "a guest is marked as one");
    assert!(!owner.external);
    // Someone who names their own organisation "Acme" too is marked as
    // coming from outside the meeting's.
    let (lookalike_org, _) = srv.org_with_owner("ceo@acme-corp.test", "Acme").await;
    srv.clock.advance(Duration::from_secs(1)); // past the last knock's window: told at once
    let mut outsider = lookalike_org.join_by_link(&meeting.link_secret, "Owner").await.unwrap();
    assert!(matches!(outsider.next(WAIT).await.unwrap(), ServerMessage::Waiting { .. }));
    let knock = host_conn
        .wait_for(
            "the outsider's knock",
            WAIT,
            |m| matches!(m, ServerMessage::Knock { participant } if participant.signed_in),
        )
        .await
        .unwrap();
    let ServerMessage::Knock { participant: waiting } = knock else { unreachable!() };
    assert_eq!((waiting.organisation.as_deref(), waiting.external), (Some("Acme"), true));
}

on_both_engines_and_loopback!(one_address_cannot_fill_the_waiting_room_and_a_crowd_is_one_notice);
async fn one_address_cannot_fill_the_waiting_room_and_a_crowd_is_one_notice(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, _) = host_joins(&host, &meeting).await;
    let flooder = srv.client_from("127.0.35.1");
    let mut seats = Vec::new();
    for n in 0..5 {
        let mut conn = flooder.join_by_link(&meeting.link_secret, &format!("Bot {n}")).await.unwrap();
        assert!(matches!(conn.next(WAIT).await.unwrap(), ServerMessage::Waiting { .. }));
        seats.push(conn);
    }
    let mut sixth = flooder.join_by_link(&meeting.link_secret, "Bot 5").await.unwrap();
    assert_eq!(sixth.next(WAIT).await.unwrap(), ServerMessage::Refused { reason: RefusalReason::WaitingRoomFull });
    assert!(sixth.closed_within(WAIT).await);
    // Others still get in line.
    let (_other, _, _) = guest_knocks(&srv, &meeting, "Someone Else", "127.0.35.2").await;
    // The host heard of six arrivals in fewer knock messages: those
    // within a second of the first are told together when it is over.
    srv.clock.advance(Duration::from_secs(1));
    host_conn.wait_for("the knocks held back", WAIT, |m| matches!(m, ServerMessage::Knocks { .. })).await.unwrap();
    host_conn.drain(QUIET).await;
    let knocks = host_conn
        .received
        .iter()
        .filter(|m| matches!(m, ServerMessage::Knock { .. } | ServerMessage::Knocks { .. }))
        .count();
    let told: u32 = host_conn
        .received
        .iter()
        .map(|m| match m {
            ServerMessage::Knock { .. } => 1,
            ServerMessage::Knocks { count, .. } => *count,
            _ => 0,
        })
        .sum();
    assert_eq!(told, 6, "every arrival is told");
    assert!(knocks < 6, "arrivals within a second are told together ({knocks} messages)");

    // The organisation bounds the waiting room as a whole.
    let org = host.me().await.unwrap().user.org_id.unwrap();
    let update = OrgPolicyUpdate { waiting_room_capacity: Some(Setting::unlocked(6)), ..Default::default() };
    host.update_org_policy(&org, &update).await.unwrap();
    // The meeting already live follows at once: six already wait there.
    let mut seventh = srv.client_from("127.0.35.3").join_by_link(&meeting.link_secret, "Seventh").await.unwrap();
    assert_eq!(seventh.next(WAIT).await.unwrap(), ServerMessage::Refused { reason: RefusalReason::WaitingRoomFull });
    let bad = OrgPolicyUpdate { waiting_room_capacity: Some(Setting::unlocked(0)), ..Default::default() };
    assert_problem!(host.update_org_policy(&org, &bad).await, 422, "validation-failed");
    let another = host
        .create_meeting(&CreateMeetingRequest {
            title: "Small".into(),
            scheduled_start_ms: None,
            duration_minutes: None,
            passcode: None,
            settings: Default::default(),
            invitees: Vec::new(),
        })
        .await
        .unwrap();
    let (_small_host, _) = host_joins(&host, &another).await;
    for n in 0..6 {
        guest_knocks(&srv, &another, "Guest", &format!("127.0.36.{}", n + 1)).await;
    }
    let mut late = srv.client_from("127.0.36.9").join_by_link(&another.link_secret, "Late").await.unwrap();
    assert_eq!(late.next(WAIT).await.unwrap(), ServerMessage::Refused { reason: RefusalReason::WaitingRoomFull });
    drop(seats);
}

on_both_engines!(metrics_need_their_token_or_their_own_listener);
async fn metrics_need_their_token_or_their_own_listener(engine: Engine) {
    let http = reqwest::Client::new();
    let closed = TestServer::start(engine).await;
    let response = http.get(format!("{}/metrics", closed.url)).send().await.unwrap();
    assert_eq!(response.status(), 404, "not served without a token configured");
    let token = "metrics-token-of-the-operator";
    let srv = TestServer::start_with(engine, |c| c.metrics.token = Some(token.into())).await;
    let url = format!("{}/metrics", srv.url);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(http.get(&url).bearer_auth("metrics-token-of-the-operatoR").send().await.unwrap().status(), 401);
    let page = http.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("conclave_http_requests_total"));
    // The listener of its own serves them to whoever reaches it, and nothing else.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        async move { axum::serve(listener, conclave_server::routes::metrics_router(srv.state.clone())).await },
    );
    let open = http.get(format!("http://{addr}/metrics")).send().await.unwrap();
    assert_eq!(open.status(), 200);
    assert_eq!(http.get(format!("http://{addr}/api/v1/me")).send().await.unwrap().status(), 404);
}

on_both_engines_and_loopback!(signaling_refusals_are_problems_and_a_flood_is_told_why_it_was_cut);
async fn signaling_refusals_are_problems_and_a_flood_is_told_why_it_was_cut(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let http = reqwest::Client::new();
    for query in ["v=abc", "v=2", "", "v=1&ticket=tk_made_up"] {
        let response = http.get(format!("{}/api/v1/signal?{query}", srv.url)).send().await.unwrap();
        assert!(response.status().is_client_error(), "{query}");
        let kind = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
        assert_eq!(kind, "application/problem+json", "{query}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["type"].as_str().unwrap().starts_with("https://conclave.dev/problems/"), "{query}: {problem}");
    }

    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, _) = host_joins(&host, &meeting).await;
    let (mut flooder, flooder_id, _) = guest_knocks(&srv, &meeting, "Flood", "127.0.37.1").await;
    admit(&mut host_conn, &mut flooder, flooder_id).await;
    for _ in 0..2_000 {
        if flooder.send_raw("not json".into()).await.is_err() {
            break;
        }
    }
    loop {
        match flooder.next(WAIT).await {
            Ok(_) => {}
            Err(SignalError::Closed) => break,
            Err(other) => panic!("the flood was not closed: {other}"),
        }
    }
    assert_eq!(flooder.close_reason, Some((1008, "too many refused messages".into())), "a close frame with the reason");
}
