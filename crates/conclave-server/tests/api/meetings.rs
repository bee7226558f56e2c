//! Meetings through the real HTTP and WebSocket API: scheduling under
//! policy, the waiting room, host controls, and every way in without
//! permission — guessing codes, replaying tickets, host commands from
//! participants, chatting while waiting, rejoining after removal, locked
//! meetings, other organisations' meetings. Each refusal is logged.

use crate::support::{TestServer, PASSWORD};
use crate::{assert_problem, on_both_engines_and_loopback};
use conclave_client::ClientError;
use conclave_client::{Client, MeetingConnection, SignalError};
use conclave_proto::signal::*;
use conclave_proto::*;
use conclave_store::Engine;
use std::time::Duration;

pub(crate) const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

pub(crate) fn new_meeting(title: &str) -> CreateMeetingRequest {
    CreateMeetingRequest {
        title: title.into(),
        scheduled_start_ms: None,
        duration_minutes: None,
        passcode: None,
        settings: Default::default(),
        invitees: Vec::new(),
    }
}

fn join_req(meeting: &Meeting, name: &str) -> JoinMeetingRequest {
    JoinMeetingRequest {
        link_secret: Some(meeting.link_secret.clone()),
        code: None,
        passcode: None,
        display_name: name.into(),
    }
}

/// An organisation whose owner hosts a meeting.
pub(crate) async fn hosted(srv: &TestServer) -> (Client, LoginResponse, Meeting) {
    let (host, login) = srv.org_with_owner("host@acme.test", "Acme").await;
    let meeting = host.create_meeting(&new_meeting("Weekly")).await.unwrap();
    (host, login, meeting)
}

/// The signed-in host opens the meeting (admitted at once, as host).
pub(crate) async fn host_joins(host: &Client, meeting: &Meeting) -> (MeetingConnection, ParticipantId) {
    let mut conn = host.join_by_link(&meeting.link_secret, "Host").await.unwrap();
    match conn.next(WAIT).await.unwrap() {
        ServerMessage::Admitted { participant_id, you, .. } => {
            assert_eq!(you.role, Role::Host);
            (conn, participant_id)
        }
        other => panic!("host not admitted: {other:?}"),
    }
}

/// A guest from `ip` knocks; returns the connection, its id and its resume token.
pub(crate) async fn guest_knocks(
    srv: &TestServer,
    meeting: &Meeting,
    name: &str,
    ip: &str,
) -> (MeetingConnection, ParticipantId, String) {
    let mut conn = srv.client_from(ip).join_by_link(&meeting.link_secret, name).await.unwrap();
    match conn.next(WAIT).await.unwrap() {
        ServerMessage::Waiting { participant_id, resume_token, .. } => (conn, participant_id, resume_token),
        other => panic!("guest not waiting: {other:?}"),
    }
}

pub(crate) async fn admit(host: &mut MeetingConnection, guest: &mut MeetingConnection, id: ParticipantId) {
    host.send(&ClientMessage::Admit { participant_id: id }).await.unwrap();
    guest.wait_for("admission", WAIT, |m| matches!(m, ServerMessage::Admitted { .. })).await.unwrap();
}

fn is_error(code: &'static str) -> impl Fn(&ServerMessage) -> bool {
    move |m| matches!(m, ServerMessage::Error { code: c, .. } if c == code)
}

async fn denied_audits(srv: &TestServer, action: &str) -> usize {
    srv.audit_count(action, "denied").await
}

on_both_engines_and_loopback!(meetings_are_scheduled_under_the_organisations_policy);
async fn meetings_are_scheduled_under_the_organisations_policy(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, login, meeting) = hosted(&srv).await;
    let org = login.user.org_id.clone().unwrap();
    assert!(meeting.settings.waiting_room, "waiting room on by default");
    assert_eq!(meeting.link_secret.len(), 32);
    assert!(meeting.invite_url.ends_with(&format!("/j/{}", meeting.link_secret)));
    assert_eq!(meeting.code.replace(' ', "").len(), 10);
    assert_eq!(meeting.host_key.len(), 6);
    assert_eq!(meeting.passcode, None, "the waiting room already guards the code");
    // The organisation locks the waiting room on (the default) and requires passcodes.
    host.update_org_policy(
        &org,
        &OrgPolicyUpdate { passcode_required: Some(Setting::locked(true)), ..Default::default() },
    )
    .await
    .unwrap();
    let mut open = new_meeting("Open house");
    open.settings.waiting_room = Some(false);
    let err = host.create_meeting(&open).await.unwrap_err();
    let ClientError::Api(problem) = err else { panic!("{err}") };
    assert!(
        problem.errors.iter().any(|e| e.field == "settings.waiting_room" && e.message.contains("locked")),
        "{problem:?}"
    );
    let guarded = host.create_meeting(&new_meeting("Board")).await.unwrap();
    assert_eq!(guarded.passcode.as_ref().map(String::len), Some(8), "a passcode is made when policy requires one");
    assert_problem!(
        host.update_meeting(&guarded.id, &UpdateMeetingRequest { passcode: Some(String::new()), ..Default::default() })
            .await,
        422,
        "validation-failed"
    );
    let renamed = host
        .update_meeting(
            &guarded.id,
            &UpdateMeetingRequest {
                title: Some("Board (Q3)".into()),
                passcode: Some("s3cret-pass".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((renamed.title.as_str(), renamed.passcode.as_deref()), ("Board (Q3)", Some("s3cret-pass")));
    assert_problem!(
        host.create_meeting(&CreateMeetingRequest { title: " ".into(), passcode: Some("x".into()), ..new_meeting("") })
            .await,
        422,
        "validation-failed"
    );
    assert_eq!(host.list_meetings(false).await.unwrap().meetings.len(), 2);
    host.delete_meeting(&guarded.id).await.unwrap();
    assert_problem!(host.get_meeting(&guarded.id).await, 404, "not-found");
    assert_eq!(srv.audit_count("meeting.create", "success").await, 2);
}

on_both_engines_and_loopback!(end_to_end_encryption_follows_the_organisations_policy);
async fn end_to_end_encryption_follows_the_organisations_policy(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, login, meeting) = hosted(&srv).await;
    let org = login.user.org_id.clone().unwrap();
    assert!(meeting.settings.e2ee, "E2EE by default");
    let mut conn = host.join_by_link(&meeting.link_secret, "Host").await.unwrap();
    match conn.next(WAIT).await.unwrap() {
        ServerMessage::Admitted { settings, .. } => assert!(settings.e2ee, "the room tells every device"),
        other => panic!("{other:?}"),
    }
    // The host may turn it off where the organisation leaves the choice.
    let mut plain = new_meeting("Town hall (dial-in)");
    plain.settings.e2ee = Some(false);
    assert!(!host.create_meeting(&plain).await.unwrap().settings.e2ee);
    host.update_org_policy(
        &org,
        &OrgPolicyUpdate { e2ee: Some(Setting::unlocked(E2eeMode::Optional)), ..Default::default() },
    )
    .await
    .unwrap();
    let optional = host.create_meeting(&new_meeting("Optional")).await.unwrap();
    assert!(!optional.settings.e2ee, "optional: off unless asked for");
    // Enforced: every meeting is E2EE, and asking otherwise is refused.
    host.update_org_policy(
        &org,
        &OrgPolicyUpdate { e2ee: Some(Setting::locked(E2eeMode::Enforced)), ..Default::default() },
    )
    .await
    .unwrap();
    let err = host.create_meeting(&plain).await.unwrap_err();
    let ClientError::Api(problem) = err else { panic!("{err}") };
    assert!(problem.errors.iter().any(|e| e.field == "settings.e2ee" && e.message.contains("locked")), "{problem:?}");
    assert!(host.create_meeting(&new_meeting("Enforced")).await.unwrap().settings.e2ee);
    let update = UpdateMeetingRequest {
        settings: Some(MeetingSettingsRequest { e2ee: Some(false), ..Default::default() }),
        ..Default::default()
    };
    assert_problem!(host.update_meeting(&optional.id, &update).await, 422, "validation-failed");
    let renamed = UpdateMeetingRequest {
        title: Some("Renamed".into()),
        settings: Some(Default::default()),
        ..Default::default()
    };
    assert!(
        host.update_meeting(&optional.id, &renamed).await.unwrap().settings.e2ee,
        "an edited meeting comes under the policy"
    );
}

on_both_engines_and_loopback!(a_guest_knocks_learns_nothing_while_waiting_and_is_admitted);
async fn a_guest_knocks_learns_nothing_while_waiting_and_is_admitted(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, host_id) = host_joins(&host, &meeting).await;
    let (mut guest, guest_id, _) = guest_knocks(&srv, &meeting, "Ada", "127.0.5.1").await;
    let knock = host_conn.wait_for("knock", WAIT, |m| matches!(m, ServerMessage::Knock { .. })).await.unwrap();
    assert!(
        matches!(knock, ServerMessage::Knock { participant } if participant.display_name == "Ada" && !participant.signed_in)
    );
    // Someone chats in the meeting: the waiting guest hears nothing of it.
    host_conn
        .send(&ClientMessage::Chat { client_msg_id: "h1".into(), text: "agenda: budget".into(), to: None })
        .await
        .unwrap();
    // And whatever the guest tries while waiting is refused and logged.
    let denied_before = denied_audits(&srv, "meeting.command").await;
    for attempt in [
        ClientMessage::Chat { client_msg_id: "g1".into(), text: "let me in".into(), to: None },
        ClientMessage::StartScreenShare,
        ClientMessage::SetMedia { audio_muted: Some(false), video_muted: Some(false) },
        ClientMessage::AdmitAll,
    ] {
        guest.send(&attempt).await.unwrap();
        guest.wait_for("refusal", WAIT, is_error("forbidden")).await.unwrap();
    }
    let leaked: Vec<_> = guest.received.iter().filter(|m| m.reveals_meeting()).collect();
    assert!(leaked.is_empty(), "the waiting guest received {leaked:?}");
    assert!(host_conn
        .drain(QUIET)
        .await
        .iter()
        .all(|m| !matches!(m, ServerMessage::Chat { message } if message.text == "let me in")));
    tokio::time::sleep(QUIET).await;
    assert_eq!(denied_audits(&srv, "meeting.command").await - denied_before, 4);

    admit(&mut host_conn, &mut guest, guest_id).await;
    let admitted = guest.received.iter().rev().find(|m| matches!(m, ServerMessage::Admitted { .. })).unwrap().clone();
    let ServerMessage::Admitted { roster, chat, .. } = admitted else { unreachable!() };
    assert_eq!(roster.len(), 2);
    assert_eq!(chat.len(), 1, "once in, the chat so far is there");
    guest.send(&ClientMessage::Chat { client_msg_id: "g2".into(), text: "thanks!".into(), to: None }).await.unwrap();
    host_conn
        .wait_for(
            "chat",
            WAIT,
            |m| matches!(m, ServerMessage::Chat { message } if message.text == "thanks!" && message.from == guest_id),
        )
        .await
        .unwrap();
    guest
        .send(&ClientMessage::Chat { client_msg_id: "g3".into(), text: "just you".into(), to: Some(host_id) })
        .await
        .unwrap();
    host_conn
        .wait_for("private chat", WAIT, |m| matches!(m, ServerMessage::Chat { message } if message.to == Some(host_id)))
        .await
        .unwrap();
    guest.send(&ClientMessage::Leave).await.unwrap();
    host_conn
        .wait_for(
            "leave",
            WAIT,
            |m| matches!(m, ServerMessage::ParticipantLeft { participant_id } if *participant_id == guest_id),
        )
        .await
        .unwrap();
}

on_both_engines_and_loopback!(an_invite_link_shows_its_meeting_before_joining_and_guessing_links_is_throttled);
async fn an_invite_link_shows_its_meeting_before_joining_and_guessing_links_is_throttled(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, login, meeting) = hosted(&srv).await;
    // Anyone with the link, signed in or not, sees which meeting it is.
    let guest = srv.client_from("127.0.9.1");
    let preview = guest.preview_meeting(&meeting.link_secret).await.expect("the link opens a meeting");
    assert_eq!(preview.title, "Weekly");
    assert_eq!(preview.host_name, login.user.display_name);
    assert!(!preview.live, "nobody has joined yet");
    assert_eq!((preview.waiting_room, preview.e2ee), (meeting.settings.waiting_room, meeting.settings.e2ee));
    let (_conn, _) = host_joins(&host, &meeting).await;
    assert!(guest.preview_meeting(&meeting.link_secret).await.unwrap().live, "the host is in it now");
    // A replaced link shows nothing: the preview is as closed as the join.
    let rotated = host.rotate_meeting_secrets(&meeting.id).await.unwrap();
    assert_problem!(guest.preview_meeting(&meeting.link_secret).await, 404, "meeting-not-found");
    assert_eq!(guest.preview_meeting(&rotated.link_secret).await.unwrap().title, "Weekly");
    // Guessing links by previews counts as guessing them by joins: ten
    // misses lock the address out of both, and each miss is audited.
    let guesser = srv.client_from("127.0.9.2");
    for n in 0..9 {
        assert_problem!(guesser.preview_meeting(&format!("no-such-link-{n}")).await, 404, "meeting-not-found");
    }
    assert_problem!(guesser.join_meeting(&join_req(&meeting, "Guesser")).await, 404, "meeting-not-found");
    assert_problem!(guesser.preview_meeting(&rotated.link_secret).await, 429, "too-many-requests");
    assert_problem!(guesser.join_meeting(&join_req(&rotated, "Guesser")).await, 429, "too-many-requests");
    assert!(srv.audit_count("meeting.join", "failure").await >= 10);
}

on_both_engines_and_loopback!(codes_need_the_passcode_and_guessing_is_throttled);
async fn codes_need_the_passcode_and_guessing_is_throttled(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, _, meeting) = hosted(&srv).await;
    let meeting = host
        .update_meeting(
            &meeting.id,
            &UpdateMeetingRequest { passcode: Some("open-sesame".into()), ..Default::default() },
        )
        .await
        .unwrap();
    let by_code = |passcode: &str| JoinMeetingRequest {
        link_secret: None,
        code: Some(meeting.code.clone()),
        passcode: Some(passcode.into()),
        display_name: "Phone".into(),
    };
    assert_problem!(srv.client_from("127.0.6.1").join_meeting(&by_code("wrong-guess")).await, 404, "meeting-not-found");
    srv.client_from("127.0.6.1").join_meeting(&by_code("open-sesame")).await.expect("code and passcode open it");
    // One address guessing codes is locked out after ten misses.
    let guesser = srv.client_from("127.0.6.2");
    for n in 0..10 {
        let guess = JoinMeetingRequest { code: Some(format!("{}", 1_000_000_000u64 + n)), ..by_code("x") };
        assert_problem!(guesser.join_meeting(&guess).await, 404, "meeting-not-found");
    }
    assert_problem!(guesser.join_meeting(&by_code("open-sesame")).await, 429, "too-many-requests");
    // Many addresses guessing one meeting's passcode lock that meeting's code path.
    // (One wrong passcode was already tried above; twenty in all lock the code path.)
    for n in 0..19 {
        let from = srv.client_from(&format!("127.0.7.{}", n + 1));
        assert_problem!(from.join_meeting(&by_code(&format!("guess-{n}"))).await, 404, "meeting-not-found");
    }
    // Locked, the code path answers even the right passcode like an unknown
    // code (a 429 would confirm the code exists).
    assert_problem!(srv.client_from("127.0.8.1").join_meeting(&by_code("open-sesame")).await, 404, "meeting-not-found");
    // The invite link still works for the people who were sent it.
    srv.client_from("127.0.8.1").join_meeting(&join_req(&meeting, "Invitee")).await.expect("the link is unaffected");
    assert!(srv.audit_count("meeting.join", "failure").await >= 32);
    srv.clock.advance(Duration::from_secs(3 * 3600));
    srv.client_from("127.0.8.2").join_meeting(&by_code("open-sesame")).await.expect("the lockout passes");
}

on_both_engines_and_loopback!(a_school_class_joins_at_once_from_one_address);
async fn a_school_class_joins_at_once_from_one_address(engine: Engine) {
    // The production limits, not the test harness's generous ones.
    let srv = TestServer::start_with(engine, |c| {
        c.limits = conclave_server::Limits { argon2_memory_kib: 4 * 1024, ..Default::default() }
    })
    .await;
    let (_, _, meeting) = hosted(&srv).await;
    let school = srv.client_from("127.0.16.1");
    for n in 0..150 {
        school
            .join_meeting(&join_req(&meeting, &format!("Pupil {n}")))
            .await
            .unwrap_or_else(|e| panic!("pupil {n} was refused: {e}"));
    }
    // A flood far beyond any class is still cut off.
    let mut refused = 0;
    for n in 0..400 {
        if school.join_meeting(&join_req(&meeting, &format!("Flood {n}"))).await.is_err() {
            refused += 1;
        }
    }
    assert!(refused > 0, "a flood of joins from one address is bounded");
}

on_both_engines_and_loopback!(tickets_are_single_use_short_lived_and_die_with_rotation);
async fn tickets_are_single_use_short_lived_and_die_with_rotation(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, _, meeting) = hosted(&srv).await;
    let ticket = srv.client().join_meeting(&join_req(&meeting, "Ada")).await.unwrap();
    let first = MeetingConnection::connect(&ticket.signaling_url).await.expect("first use");
    let replay = MeetingConnection::connect(&ticket.signaling_url).await;
    assert!(matches!(replay, Err(SignalError::Rejected(401))), "a ticket works once");
    first.close().await;
    let stale = srv.client().join_meeting(&join_req(&meeting, "Bob")).await.unwrap();
    srv.clock.advance(Duration::from_secs(61));
    assert!(MeetingConnection::connect(&stale.signaling_url).await.is_err(), "tickets expire");
    let unused = srv.client().join_meeting(&join_req(&meeting, "Cy")).await.unwrap();
    let rotated = host.rotate_meeting_secrets(&meeting.id).await.unwrap();
    assert_ne!(rotated.link_secret, meeting.link_secret);
    assert_ne!(rotated.code, meeting.code);
    assert_ne!(rotated.host_key, meeting.host_key);
    assert!(MeetingConnection::connect(&unused.signaling_url).await.is_err(), "rotation kills unused tickets");
    assert_problem!(srv.client().join_meeting(&join_req(&meeting, "Old link")).await, 404, "meeting-not-found");
    srv.client().join_meeting(&join_req(&rotated, "New link")).await.expect("the new link works");
    // A made-up ticket and a wrong protocol version get clear HTTP errors before any upgrade.
    let ws = srv.url.replacen("http", "ws", 1);
    assert!(matches!(
        MeetingConnection::connect(&format!("{ws}/api/v1/signal?ticket=tk_made_up&v=1")).await,
        Err(SignalError::Rejected(401))
    ));
    assert!(matches!(
        MeetingConnection::connect(&format!("{ws}/api/v1/signal?ticket=x&v=9")).await,
        Err(SignalError::Rejected(400))
    ));
    assert!(srv.audit_count("meeting.signal", "denied").await >= 3);
}

on_both_engines_and_loopback!(participants_cannot_use_host_controls);
async fn participants_cannot_use_host_controls(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, host_id) = host_joins(&host, &meeting).await;
    let (mut guest, guest_id, _) = guest_knocks(&srv, &meeting, "Mallory", "127.0.9.1").await;
    admit(&mut host_conn, &mut guest, guest_id).await;
    let denied_before = denied_audits(&srv, "meeting.command").await;
    for attempt in [
        ClientMessage::Remove { participant_id: host_id },
        ClientMessage::Mute { participant_id: host_id },
        ClientMessage::MuteAll,
        ClientMessage::Lock,
        ClientMessage::SuspendAll,
        ClientMessage::EndForAll,
        ClientMessage::TransferHost { participant_id: guest_id },
        ClientMessage::SetCoHost { participant_id: guest_id, co_host: true },
        ClientMessage::ClaimHost { host_key: "000000".into() },
        ClientMessage::UpdateSettings { settings: SettingsChange { waiting_room: Some(false), ..Default::default() } },
    ] {
        guest.send(&attempt).await.unwrap();
        guest.wait_for("refusal", WAIT, is_error("forbidden")).await.unwrap();
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(denied_audits(&srv, "meeting.command").await - denied_before, 10);
    // The host is untouched and still in charge.
    host_conn.send(&ClientMessage::Ping).await.unwrap();
    let seen = host_conn.wait_for("pong", WAIT, |m| matches!(m, ServerMessage::Pong)).await;
    assert!(seen.is_ok());
    assert!(!host_conn.received.iter().any(|m| matches!(
        m,
        ServerMessage::Removed | ServerMessage::Ended { .. } | ServerMessage::SettingsChanged { .. }
    )));
    // With the host key, though, the guest may claim host: while the
    // owner is here, that makes a co-host.
    guest.send(&ClientMessage::ClaimHost { host_key: meeting.host_key.clone() }).await.unwrap();
    host_conn.wait_for("role change", WAIT, |m| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.id == guest_id && participant.role == Role::CoHost)).await.unwrap();
}

on_both_engines_and_loopback!(a_removed_participant_cannot_come_back_by_any_link_or_name);
async fn a_removed_participant_cannot_come_back_by_any_link_or_name(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, _) = host_joins(&host, &meeting).await;
    let (mut troll, troll_id, _) = guest_knocks(&srv, &meeting, "Troll", "127.0.10.1").await;
    admit(&mut host_conn, &mut troll, troll_id).await;
    host_conn.send(&ClientMessage::Remove { participant_id: troll_id }).await.unwrap();
    troll.wait_for("removal", WAIT, |m| matches!(m, ServerMessage::Removed)).await.unwrap();
    assert!(troll.closed_within(WAIT).await, "the removed connection is closed");
    // Back under another name, and after the host rotated the link.
    let mut again = srv.client_from("127.0.10.1").join_by_link(&meeting.link_secret, "Friendly Person").await.unwrap();
    assert_eq!(again.next(WAIT).await.unwrap(), ServerMessage::Refused { reason: RefusalReason::Removed });
    let rotated = host.rotate_meeting_secrets(&meeting.id).await.unwrap();
    let disguised = join_req(&rotated, "Someone Else");
    let ticket = srv.client_from("127.0.10.1").join_meeting(&disguised).await.unwrap();
    let mut third = MeetingConnection::connect(&ticket.signaling_url).await.unwrap();
    assert_eq!(third.next(WAIT).await.unwrap(), ServerMessage::Refused { reason: RefusalReason::Removed });
    tokio::time::sleep(QUIET).await;
    assert!(srv.audit_count("meeting.remove", "success").await == 1);
    assert!(denied_audits(&srv, "meeting.join").await >= 2);
    // A different guest is not affected.
    let (bystander, _, _) = guest_knocks(&srv, &rotated, "Bystander", "127.0.10.2").await;

    // Everyone leaves, the room closes; when the host opens the meeting
    // again another day, the removal still holds.
    bystander.close().await;
    host_conn.send(&ClientMessage::Leave).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while srv.state.live.is_live(&meeting.id) {
        assert!(tokio::time::Instant::now() < deadline, "the empty room should close");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_reopened, _) = host_joins(&host, &rotated).await;
    let mut fourth = srv.client_from("127.0.10.1").join_by_link(&rotated.link_secret, "New Day").await.unwrap();
    assert_eq!(fourth.next(WAIT).await.unwrap(), ServerMessage::Refused { reason: RefusalReason::Removed });
}

on_both_engines_and_loopback!(a_locked_meeting_admits_nobody_new);
async fn a_locked_meeting_admits_nobody_new(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, _) = host_joins(&host, &meeting).await;
    host_conn.send(&ClientMessage::Lock).await.unwrap();
    host_conn
        .wait_for("lock", WAIT, |m| matches!(m, ServerMessage::SettingsChanged { settings } if settings.locked))
        .await
        .unwrap();
    let mut late = srv.client_from("127.0.11.1").join_by_link(&meeting.link_secret, "Late").await.unwrap();
    assert_eq!(late.next(WAIT).await.unwrap(), ServerMessage::Refused { reason: RefusalReason::Locked });
    assert!(late.closed_within(WAIT).await);
    assert!(
        host_conn.drain(QUIET).await.iter().all(|m| !matches!(m, ServerMessage::Knock { .. })),
        "no knock from a locked door"
    );
}

on_both_engines_and_loopback!(malformed_oversized_and_flooding_messages_change_nothing);
async fn malformed_oversized_and_flooding_messages_change_nothing(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, _) = host_joins(&host, &meeting).await;
    let (mut guest, guest_id, resume) = guest_knocks(&srv, &meeting, "Fuzzy", "127.0.12.1").await;
    admit(&mut host_conn, &mut guest, guest_id).await;
    for (raw, code) in [
        ("not json".to_owned(), "malformed"),
        (r#"{"type":"launch_missiles"}"#.to_owned(), "malformed"),
        (r#"{"type":"lock","please":true}"#.to_owned(), "malformed"),
        (r#"{"type":"chat","client_msg_id":"x"}"#.to_owned(), "malformed"),
        (format!(r#"{{"type":"chat","client_msg_id":"big","text":"{}"}}"#, "a".repeat(20_000)), "too_large"),
    ] {
        guest.send_raw(raw).await.unwrap();
        guest.wait_for(code, WAIT, is_error(code)).await.unwrap();
    }
    // A flood is cut down to the rate limit, and a connection that keeps
    // flooding is closed (and logged); its seat waits for it to resume.
    let denied_before = denied_audits(&srv, "meeting.signal").await;
    // Far more than the bucket (40, then 20 a second) can absorb, however
    // slowly a loaded machine lets either side run.
    for _ in 0..2_000 {
        if guest.send(&ClientMessage::RaiseHand).await.is_err() {
            break;
        }
    }
    let mut rate_limited = 0;
    loop {
        match guest.next(WAIT).await {
            Ok(ServerMessage::Error { code, .. }) if code == "rate_limited" => rate_limited += 1,
            Ok(_) => {}
            Err(SignalError::Closed) => break,
            Err(other) => panic!("the flooding connection was not closed: {other}"),
        }
    }
    assert!(rate_limited >= 1, "the flood was rate limited before the close");
    tokio::time::sleep(QUIET).await;
    assert_eq!(denied_audits(&srv, "meeting.signal").await - denied_before, 1);
    // Nothing above reached the host as chat or a settings change.
    let host_saw = host_conn.drain(QUIET).await;
    assert!(!host_saw.iter().any(|m| matches!(m, ServerMessage::Chat { .. } | ServerMessage::SettingsChanged { .. })));
    let mut back = MeetingConnection::connect(&MeetingConnection::resume_url(&srv.url, &resume)).await.unwrap();
    back.wait_for(
        "readmission",
        WAIT,
        |m| matches!(m, ServerMessage::Admitted { participant_id, .. } if *participant_id == guest_id),
    )
    .await
    .unwrap();
    back.send(&ClientMessage::Chat { client_msg_id: "ok".into(), text: "still here".into(), to: None }).await.unwrap();
    host_conn
        .wait_for("chat", WAIT, |m| matches!(m, ServerMessage::Chat { message } if message.text == "still here"))
        .await
        .unwrap();
}

on_both_engines_and_loopback!(a_dropped_connection_resumes_and_a_second_tab_takes_over);
async fn a_dropped_connection_resumes_and_a_second_tab_takes_over(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, _) = host_joins(&host, &meeting).await;
    let (mut guest, guest_id, resume) = guest_knocks(&srv, &meeting, "Wifi", "127.0.13.1").await;
    admit(&mut host_conn, &mut guest, guest_id).await;
    guest.close().await;
    host_conn.wait_for("reconnecting", WAIT, |m| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.id == guest_id && participant.reconnecting)).await.unwrap();
    let mut back = MeetingConnection::connect(&MeetingConnection::resume_url(&srv.url, &resume)).await.unwrap();
    let ServerMessage::Admitted { participant_id, roster, .. } = back.next(WAIT).await.unwrap() else {
        panic!("not readmitted")
    };
    assert_eq!((participant_id, roster.len()), (guest_id, 2), "same seat, no duplicate");
    assert!(matches!(
        MeetingConnection::connect(&MeetingConnection::resume_url(&srv.url, "rs_made_up")).await,
        Err(SignalError::Rejected(401))
    ));

    // The signed-in host opens a second tab: it takes over the seat.
    let mut second = host.join_by_link(&meeting.link_secret, "Host (laptop)").await.unwrap();
    let ServerMessage::Admitted { you, roster, .. } = second.next(WAIT).await.unwrap() else {
        panic!("second tab not admitted")
    };
    assert_eq!((you.role, roster.len()), (Role::Host, 2));
    host_conn.wait_for("replaced", WAIT, |m| matches!(m, ServerMessage::Replaced)).await.unwrap();
    assert!(host_conn.closed_within(WAIT).await);
}

on_both_engines_and_loopback!(another_organisations_meeting_cannot_be_managed);
async fn another_organisations_meeting_cannot_be_managed(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, login, meeting) = hosted(&srv).await;
    let org = login.user.org_id.unwrap();
    let (outsider, _) = srv.org_with_owner("owner@other.test", "Other").await;
    let (member, _) = srv.add_member(&host, &org, "member@acme.test", OrgRole::Member).await;
    let before = denied_audits(&srv, "meeting.read").await
        + denied_audits(&srv, "meeting.update").await
        + denied_audits(&srv, "meeting.delete").await
        + denied_audits(&srv, "meeting.rotate").await;
    assert_problem!(outsider.get_meeting(&meeting.id).await, 404, "not-found");
    assert_problem!(
        outsider
            .update_meeting(&meeting.id, &UpdateMeetingRequest { title: Some("mine now".into()), ..Default::default() })
            .await,
        404,
        "not-found"
    );
    assert_problem!(outsider.rotate_meeting_secrets(&meeting.id).await, 404, "not-found");
    assert_problem!(outsider.delete_meeting(&meeting.id).await, 404, "not-found");
    assert_problem!(member.get_meeting(&meeting.id).await, 403, "forbidden");
    assert_problem!(member.delete_meeting(&meeting.id).await, 403, "forbidden");
    assert_problem!(member.list_meetings(true).await, 403, "forbidden");
    assert!(outsider.list_meetings(false).await.unwrap().meetings.is_empty());
    let after = denied_audits(&srv, "meeting.read").await
        + denied_audits(&srv, "meeting.update").await
        + denied_audits(&srv, "meeting.delete").await
        + denied_audits(&srv, "meeting.rotate").await;
    assert_eq!(after - before, 6);
    assert_eq!(host.get_meeting(&meeting.id).await.unwrap().title, "Weekly", "unchanged");
    let _ = PASSWORD;
}

on_both_engines_and_loopback!(participants_report_abuse_to_the_account_owner);
async fn participants_report_abuse_to_the_account_owner(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, login, meeting) = hosted(&srv).await;
    let org = login.user.org_id.unwrap();
    let (mut host_conn, _) = host_joins(&host, &meeting).await;
    let (mut ada, ada_id, ada_token) = guest_knocks(&srv, &meeting, "Ada", "127.0.14.1").await;
    let (mut troll, troll_id, _) = guest_knocks(&srv, &meeting, "Troll", "127.0.14.2").await;
    admit(&mut host_conn, &mut ada, ada_id).await;
    admit(&mut host_conn, &mut troll, troll_id).await;
    let receipt = srv
        .client()
        .report_participant(
            &meeting.id,
            &ReportParticipantRequest {
                participant_token: ada_token.clone(),
                participant_id: troll_id,
                reason: "offensive drawings".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(receipt.meeting_id, meeting.id);
    assert_problem!(
        srv.client()
            .report_participant(
                &meeting.id,
                &ReportParticipantRequest {
                    participant_token: "rs_not_in_meeting".into(),
                    participant_id: troll_id,
                    reason: "spam".into()
                }
            )
            .await,
        403,
        "forbidden"
    );
    let reports = host.list_reports(&org).await.unwrap().reports;
    assert_eq!(reports.len(), 1);
    assert_eq!((reports[0].id.as_str(), reports[0].reason.as_str()), (receipt.id.as_str(), "offensive drawings"));
    assert_eq!((reports[0].reporter_name.as_str(), reports[0].reported_name.as_str()), ("Ada", "Troll"));
}

on_both_engines_and_loopback!(free_meetings_warn_then_end_and_policy_changes_reach_live_rooms);
async fn free_meetings_warn_then_end_and_policy_changes_reach_live_rooms(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, login, meeting) = hosted(&srv).await;
    let org = login.user.org_id.unwrap();
    let (mut host_conn, _) = host_joins(&host, &meeting).await;
    host.update_org_policy(&org, &OrgPolicyUpdate { chat_allowed: Some(Setting::locked(false)), ..Default::default() })
        .await
        .unwrap();
    host_conn
        .wait_for(
            "chat off",
            WAIT,
            |m| matches!(m, ServerMessage::SettingsChanged { settings } if settings.chat == ChatMode::Off),
        )
        .await
        .unwrap();
    srv.clock.advance(Duration::from_secs(30 * 60));
    host_conn
        .wait_for("10-minute warning", WAIT, |m| matches!(m, ServerMessage::TimeWarning { minutes_left: 10, .. }))
        .await
        .unwrap();
    srv.clock.advance(Duration::from_secs(10 * 60));
    host_conn
        .wait_for("the end", WAIT, |m| matches!(m, ServerMessage::Ended { reason: EndReason::TimeLimit }))
        .await
        .unwrap();
    assert!(host_conn.closed_within(WAIT).await);
}

on_both_engines_and_loopback!(policy_changed_outside_this_server_reaches_live_meetings);
async fn policy_changed_outside_this_server_reaches_live_meetings(engine: Engine) {
    let srv = TestServer::start_with(engine, |c| c.policy_refresh_every = Duration::from_millis(200)).await;
    let (host, login, meeting) = hosted(&srv).await;
    let org = login.user.org_id.unwrap();
    let (mut host_conn, _) = host_joins(&host, &meeting).await;
    // As `conclave admin org set-plan … licensed` does, from another process.
    let (_, mut policy) = srv.state.store.org_by_id(&org).await.unwrap().unwrap();
    policy.meeting_time_limit_minutes = Setting::unlocked(None);
    srv.state.store.set_org_plan(&org, Plan::Licensed, &policy).await.unwrap();
    host_conn
        .wait_for("the limit lifted", WAIT, |m| matches!(m, ServerMessage::TimeLimit { ends_at_ms: None }))
        .await
        .unwrap();
    srv.clock.advance(Duration::from_secs(2 * 3600));
    let after = host_conn.drain(Duration::from_millis(1500)).await;
    assert!(!after.iter().any(|m| matches!(m, ServerMessage::Ended { .. })), "the meeting goes on: {after:?}");
}

on_both_engines_and_loopback!(deleting_a_live_meeting_ends_it_for_everyone);
async fn deleting_a_live_meeting_ends_it_for_everyone(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (host, _, meeting) = hosted(&srv).await;
    let (mut host_conn, _) = host_joins(&host, &meeting).await;
    let (mut waiting, _, _) = guest_knocks(&srv, &meeting, "Early", "127.0.15.1").await;
    assert!(host.get_meeting(&meeting.id).await.unwrap().live);
    host.delete_meeting(&meeting.id).await.unwrap();
    for conn in [&mut host_conn, &mut waiting] {
        conn.wait_for("ended", WAIT, |m| matches!(m, ServerMessage::Ended { reason: EndReason::Deleted }))
            .await
            .unwrap();
    }
}
