//! The room's behaviour, one scenario at a time: readable specifications of
//! what hosts and participants see.

use conclave_proto::signal::*;
use conclave_room::{Effect, Identity, Input, Phase, PolicyView, Presence, Room, RoomConfig, Standing};

const MIN: i64 = 60_000;

fn settings() -> RoomSettings {
    RoomSettings {
        locked: false,
        waiting_room: true,
        allow_self_unmute: true,
        allow_rename: true,
        allow_video: true,
        screen_share: ScreenShareMode::OneAtATime,
        chat: ChatMode::Everyone,
        private_chat: true,
        e2ee: false,
        locked_by_policy: vec![],
    }
}

fn config(policy: PolicyView) -> RoomConfig {
    RoomConfig {
        settings: settings(),
        mute_on_entry: false,
        policy,
        host_key: "123456".into(),
        has_passcode: false,
        banned: vec![],
        waiting_per_address: conclave_room::WAITING_PER_ADDRESS,
        invited: vec![],
    }
}

fn room_with(policy: PolicyView) -> Room {
    Room::new(config(policy))
}

fn guest(n: u8) -> Identity {
    Identity { ip: Some(format!("203.0.113.{n}")), ..Default::default() }
}

fn member(name: &str) -> Identity {
    Identity {
        user_id: Some(name.into()),
        organisation: Some("Acme".into()),
        ip: Some("198.51.100.1".into()),
        ..Default::default()
    }
}

fn owner() -> Identity {
    member("owner")
}

const OWNER: Standing = Standing::Owner;
const ORDINARY: Standing = Standing::Ordinary;

fn join(room: &mut Room, now: i64, id: u64, identity: Identity, standing: Standing) -> Vec<Effect> {
    room.handle(
        now,
        Input::Join { id, display_name: format!("p{id}"), identity, standing, resume_token: format!("r{id}") },
    )
}

fn say(room: &mut Room, now: i64, from: u64, message: ClientMessage) -> Vec<Effect> {
    room.handle(now, Input::Message { from, message })
}

fn sent_to(effects: &[Effect], to: u64) -> Vec<ServerMessage> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to: t, message } if *t == to => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn error_code(effects: &[Effect], to: u64) -> Option<String> {
    sent_to(effects, to).into_iter().find_map(|m| match m {
        ServerMessage::Error { code, .. } => Some(code),
        _ => None,
    })
}

/// A live room: owner 1 is host, guests 2 and 3 admitted.
fn live_room() -> Room {
    let mut room = room_with(PolicyView::permissive());
    join(&mut room, 0, 1, owner(), OWNER);
    for id in [2, 3] {
        join(&mut room, 0, id, guest(id as u8), ORDINARY);
        say(&mut room, 0, 1, ClientMessage::Admit { participant_id: id });
    }
    room
}

#[test]
fn a_guest_waits_learns_nothing_and_the_host_hears_a_knock() {
    let mut room = room_with(PolicyView::permissive());
    join(&mut room, 0, 1, owner(), OWNER);
    assert_eq!(room.phase(), Phase::Live);
    let effects = join(&mut room, 1, 2, guest(2), ORDINARY);
    let to_guest = sent_to(&effects, 2);
    assert!(matches!(to_guest.as_slice(), [ServerMessage::Waiting { resume_token, .. }] if resume_token == "r2"));
    assert!(sent_to(&effects, 1)
        .iter()
        .any(|m| matches!(m, ServerMessage::Knock { participant } if participant.display_name == "p2")));
    // Waiting guests cannot chat, share or command.
    for message in [
        ClientMessage::Chat { client_msg_id: "a".into(), text: "hi".into(), to: None },
        ClientMessage::StartScreenShare,
        ClientMessage::Lock,
    ] {
        let effects = say(&mut room, 2, 2, message);
        assert_eq!(error_code(&effects, 2).as_deref(), Some("forbidden"));
        assert!(sent_to(&effects, 1).is_empty(), "nothing reaches the meeting");
    }
    let effects = say(&mut room, 3, 1, ClientMessage::Admit { participant_id: 2 });
    let admitted = sent_to(&effects, 2);
    assert!(matches!(&admitted[0], ServerMessage::Admitted { roster, .. } if roster.len() == 2));
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Audit { action: conclave_proto::audit::AuditAction::MeetingAdmit, .. })));
}

#[test]
fn before_the_host_arrives_everyone_waits_then_admit_all() {
    let mut room = room_with(PolicyView::permissive());
    join(&mut room, 0, 2, guest(2), ORDINARY);
    join(&mut room, 0, 3, guest(3), ORDINARY);
    assert_eq!(room.phase(), Phase::NotStarted);
    let effects = join(&mut room, 5, 1, owner(), OWNER);
    assert!(sent_to(&effects, 1)
        .iter()
        .any(|m| matches!(m, ServerMessage::WaitingRoom { waiting } if waiting.len() == 2)));
    say(&mut room, 6, 1, ClientMessage::AdmitAll);
    assert_eq!(room.admitted().count(), 3);
}

#[test]
fn a_removed_guest_cannot_return_under_another_name_or_device() {
    let mut room = live_room();
    let effects = say(&mut room, 1, 1, ClientMessage::Remove { participant_id: 2 });
    assert_eq!(sent_to(&effects, 2), vec![ServerMessage::Removed]);
    assert!(effects.contains(&Effect::Disconnect { id: 2 }));
    assert!(sent_to(&effects, 3).contains(&ServerMessage::ParticipantLeft { participant_id: 2 }));
    let effects = room.handle(
        2,
        Input::Join {
            id: 9,
            display_name: "Totally Someone Else".into(),
            identity: guest(2),
            standing: ORDINARY,
            resume_token: "r9".into(),
        },
    );
    assert_eq!(sent_to(&effects, 9), vec![ServerMessage::Refused { reason: RefusalReason::Removed }]);
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Audit {
            action: conclave_proto::audit::AuditAction::MeetingJoin,
            outcome: conclave_proto::audit::AuditOutcome::Denied,
            ..
        }
    )));
}

#[test]
fn participants_cannot_use_host_controls_and_co_hosts_cannot_touch_the_host() {
    let mut room = live_room();
    for message in [
        ClientMessage::Remove { participant_id: 3 },
        ClientMessage::MuteAll,
        ClientMessage::Lock,
        ClientMessage::EndForAll,
        ClientMessage::TransferHost { participant_id: 2 },
    ] {
        let effects = say(&mut room, 1, 2, message);
        assert_eq!(error_code(&effects, 2).as_deref(), Some("forbidden"));
        assert!(effects
            .iter()
            .any(|e| matches!(e, Effect::Audit { outcome: conclave_proto::audit::AuditOutcome::Denied, .. })));
    }
    say(&mut room, 1, 1, ClientMessage::SetCoHost { participant_id: 2, co_host: true });
    assert_eq!(
        error_code(&say(&mut room, 1, 2, ClientMessage::Mute { participant_id: 1 }), 2).as_deref(),
        Some("forbidden")
    );
    assert_eq!(
        error_code(&say(&mut room, 1, 2, ClientMessage::Remove { participant_id: 1 }), 2).as_deref(),
        Some("forbidden")
    );
    assert!(error_code(&say(&mut room, 1, 2, ClientMessage::Mute { participant_id: 3 }), 2).is_none());
}

#[test]
fn mute_asks_to_unmute_and_never_forces_it() {
    let mut room = live_room();
    say(&mut room, 0, 2, ClientMessage::SetMedia { audio_muted: Some(false), video_muted: None });
    say(
        &mut room,
        1,
        1,
        ClientMessage::UpdateSettings {
            settings: SettingsChange { allow_self_unmute: Some(false), ..Default::default() },
        },
    );
    say(&mut room, 1, 1, ClientMessage::Mute { participant_id: 2 });
    assert!(room.view(2).unwrap().audio_muted);
    let refused = say(&mut room, 2, 2, ClientMessage::SetMedia { audio_muted: Some(false), video_muted: None });
    assert_eq!(error_code(&refused, 2).as_deref(), Some("forbidden"));
    let asked = say(&mut room, 3, 1, ClientMessage::AskToUnmute { participant_id: 2 });
    assert_eq!(sent_to(&asked, 2), vec![ServerMessage::UnmuteRequested { by: 1 }]);
    assert!(room.view(2).unwrap().audio_muted, "asking does not unmute");
    say(&mut room, 4, 2, ClientMessage::SetMedia { audio_muted: Some(false), video_muted: None });
    assert!(!room.view(2).unwrap().audio_muted, "the participant unmutes themself");
}

#[test]
fn a_locked_meeting_admits_nobody_new() {
    let mut room = live_room();
    say(&mut room, 1, 1, ClientMessage::Lock);
    let effects = join(&mut room, 2, 4, guest(4), ORDINARY);
    assert_eq!(sent_to(&effects, 4), vec![ServerMessage::Refused { reason: RefusalReason::Locked }]);
    assert_eq!(room.presence(4), None);
}

#[test]
fn chat_is_ordered_idempotent_and_private_messages_stay_private() {
    let mut room = live_room();
    let first =
        say(&mut room, 1, 2, ClientMessage::Chat { client_msg_id: "c1".into(), text: "hello".into(), to: None });
    assert!(sent_to(&first, 3).iter().any(|m| matches!(m, ServerMessage::Chat { message } if message.seq == 1)));
    let again =
        say(&mut room, 2, 2, ClientMessage::Chat { client_msg_id: "c1".into(), text: "hello".into(), to: None });
    assert_eq!(sent_to(&again, 2), vec![ServerMessage::ChatAck { client_msg_id: "c1".into(), seq: 1 }]);
    assert!(sent_to(&again, 3).is_empty(), "a retry is not delivered twice");
    let private =
        say(&mut room, 3, 2, ClientMessage::Chat { client_msg_id: "c2".into(), text: "psst".into(), to: Some(3) });
    assert!(sent_to(&private, 1).is_empty(), "the host does not see a private message");
    say(
        &mut room,
        4,
        1,
        ClientMessage::UpdateSettings { settings: SettingsChange { private_chat: Some(false), ..Default::default() } },
    );
    let refused =
        say(&mut room, 5, 2, ClientMessage::Chat { client_msg_id: "c3".into(), text: "psst".into(), to: Some(3) });
    assert_eq!(error_code(&refused, 2).as_deref(), Some("forbidden"));
    say(
        &mut room,
        6,
        1,
        ClientMessage::UpdateSettings {
            settings: SettingsChange { chat: Some(ChatMode::HostsOnly), ..Default::default() },
        },
    );
    assert_eq!(
        error_code(
            &say(&mut room, 7, 2, ClientMessage::Chat { client_msg_id: "c4".into(), text: "all".into(), to: None }),
            2
        )
        .as_deref(),
        Some("forbidden")
    );
    assert!(error_code(
        &say(&mut room, 8, 2, ClientMessage::Chat { client_msg_id: "c5".into(), text: "to host".into(), to: Some(1) }),
        2
    )
    .is_none());
}

#[test]
fn one_share_at_a_time_and_the_host_can_stop_any() {
    let mut room = live_room();
    say(&mut room, 1, 2, ClientMessage::StartScreenShare);
    assert_eq!(error_code(&say(&mut room, 2, 3, ClientMessage::StartScreenShare), 3).as_deref(), Some("busy"));
    say(&mut room, 3, 1, ClientMessage::StopScreenShare { participant_id: Some(2) });
    assert!(!room.view(2).unwrap().sharing_screen);
    say(
        &mut room,
        4,
        1,
        ClientMessage::UpdateSettings {
            settings: SettingsChange { screen_share: Some(ScreenShareMode::HostOnly), ..Default::default() },
        },
    );
    assert_eq!(error_code(&say(&mut room, 5, 3, ClientMessage::StartScreenShare), 3).as_deref(), Some("forbidden"));
}

#[test]
fn suspend_all_stops_everything_at_once() {
    let mut room = live_room();
    say(&mut room, 0, 2, ClientMessage::SetMedia { audio_muted: Some(false), video_muted: Some(false) });
    say(&mut room, 0, 2, ClientMessage::StartScreenShare);
    say(&mut room, 1, 1, ClientMessage::SuspendAll);
    let view = room.view(2).unwrap();
    assert!(view.audio_muted && view.video_muted && !view.sharing_screen);
    assert!(room.settings().locked);
    assert_eq!(room.settings().chat, ChatMode::Off);
    for message in [
        ClientMessage::SetMedia { audio_muted: Some(false), video_muted: None },
        ClientMessage::SetMedia { audio_muted: None, video_muted: Some(false) },
        ClientMessage::StartScreenShare,
    ] {
        assert_eq!(error_code(&say(&mut room, 2, 2, message), 2).as_deref(), Some("forbidden"));
    }
}

#[test]
fn when_the_host_leaves_a_co_host_takes_over_and_an_empty_meeting_ends() {
    let mut room = live_room();
    say(&mut room, 1, 1, ClientMessage::SetCoHost { participant_id: 3, co_host: true });
    say(&mut room, 2, 1, ClientMessage::Leave);
    assert_eq!(room.host(), Some(3));
    say(&mut room, 3, 3, ClientMessage::Leave);
    assert_eq!(room.host(), Some(2), "then the longest-present participant");
    let effects = say(&mut room, 4, 2, ClientMessage::Leave);
    assert_eq!(room.phase(), Phase::Ended);
    assert!(effects.iter().any(|e| matches!(e, Effect::Ended { reason: EndReason::NoHost })));
}

#[test]
fn the_host_key_claims_host_and_wrong_keys_run_out() {
    let mut room = live_room();
    for _ in 0..conclave_room::MAX_HOST_KEY_ATTEMPTS {
        assert_eq!(
            error_code(&say(&mut room, 1, 3, ClientMessage::ClaimHost { host_key: "000000".into() }), 3).as_deref(),
            Some("forbidden")
        );
    }
    say(&mut room, 1, 3, ClientMessage::ClaimHost { host_key: "123456".into() });
    assert_eq!(room.host(), Some(1), "no more attempts, even with the right key");
    // While the owner is here, the key makes a co-host, never a host.
    say(&mut room, 2, 2, ClientMessage::ClaimHost { host_key: "123456".into() });
    assert_eq!((room.host(), room.view(2).unwrap().role), (Some(1), Role::CoHost));
    // Without the owner, it makes the host (and the host before a co-host).
    say(&mut room, 3, 1, ClientMessage::Leave);
    assert_eq!(room.host(), Some(2));
    join(&mut room, 4, 4, guest(4), ORDINARY);
    say(&mut room, 4, 2, ClientMessage::Admit { participant_id: 4 });
    say(&mut room, 5, 4, ClientMessage::ClaimHost { host_key: "123456".into() });
    assert_eq!((room.host(), room.view(2).unwrap().role), (Some(4), Role::CoHost));
}

#[test]
fn the_owner_comes_back_through_a_lock_set_by_a_key_holder_and_is_host_again() {
    let mut room = live_room();
    // The owner steps out; a guest with the host key takes the meeting over
    // and locks it, so nobody new gets in.
    say(&mut room, 1, 1, ClientMessage::Leave);
    say(&mut room, 2, 2, ClientMessage::ClaimHost { host_key: "123456".into() });
    assert_eq!(room.host(), Some(2));
    say(&mut room, 3, 2, ClientMessage::Lock);
    let stranger = join(&mut room, 4, 4, guest(4), ORDINARY);
    assert_eq!(sent_to(&stranger, 4), vec![ServerMessage::Refused { reason: RefusalReason::Locked }]);
    // The owner is let in through the lock and is host again; the key
    // holder is a co-host, and can neither remove nor ban the owner.
    let back = join(&mut room, 5, 5, owner(), OWNER);
    assert!(sent_to(&back, 5).iter().any(|m| matches!(m, ServerMessage::Admitted { .. })), "{back:?}");
    assert_eq!((room.host(), room.view(2).unwrap().role), (Some(5), Role::CoHost));
    let refused = say(&mut room, 6, 2, ClientMessage::Remove { participant_id: 5 });
    assert_eq!(error_code(&refused, 2).as_deref(), Some("forbidden"));
    assert_eq!(room.host(), Some(5));
    // Claiming with the key again makes no difference while the owner is here.
    say(&mut room, 7, 2, ClientMessage::ClaimHost { host_key: "123456".into() });
    assert_eq!((room.host(), room.view(2).unwrap().role), (Some(5), Role::CoHost));
}

#[test]
fn a_free_meeting_warns_at_ten_five_and_one_minutes_then_ends() {
    let policy = PolicyView { time_limit_minutes: Some(40), ..PolicyView::permissive() };
    let mut room = room_with(policy.clone());
    join(&mut room, 0, 1, owner(), OWNER);
    assert_eq!(room.ends_at(), Some(40 * MIN));
    let mut warnings = Vec::new();
    let mut now = 0;
    while room.phase() == Phase::Live {
        now = room.next_deadline().expect("a deadline while limited");
        for effect in room.handle(now, Input::Tick) {
            if let Effect::Send { message: ServerMessage::TimeWarning { minutes_left, .. }, .. } = effect {
                warnings.push((now / MIN, minutes_left));
            }
        }
    }
    assert_eq!(warnings, vec![(30, 10), (35, 5), (39, 1)]);
    assert_eq!(now, 40 * MIN);
}

#[test]
fn an_admin_lifting_the_limit_keeps_the_meeting_going() {
    let mut room = room_with(PolicyView { time_limit_minutes: Some(40), ..PolicyView::permissive() });
    join(&mut room, 0, 1, owner(), OWNER);
    let effects = room.handle(20 * MIN, Input::PolicyChanged { policy: PolicyView::permissive() });
    assert!(sent_to(&effects, 1).contains(&ServerMessage::TimeLimit { ends_at_ms: None }));
    room.handle(41 * MIN, Input::Tick);
    assert_eq!(room.phase(), Phase::Live);
    assert_eq!(room.next_deadline(), None);
}

#[test]
fn a_locked_waiting_room_cannot_be_turned_off() {
    let policy = PolicyView { waiting_room: true, waiting_room_locked: true, ..PolicyView::permissive() };
    let mut room = room_with(policy);
    join(&mut room, 0, 1, owner(), OWNER);
    let effects = say(
        &mut room,
        1,
        1,
        ClientMessage::UpdateSettings { settings: SettingsChange { waiting_room: Some(false), ..Default::default() } },
    );
    assert_eq!(error_code(&effects, 1).as_deref(), Some("forbidden"));
    assert!(room.settings().waiting_room);
    assert_eq!(room.settings().locked_by_policy, vec!["waiting_room".to_owned()]);
    let effects = join(&mut room, 2, 2, guest(2), ORDINARY);
    assert!(matches!(sent_to(&effects, 2).as_slice(), [ServerMessage::Waiting { .. }]));
}

#[test]
fn a_dropped_connection_keeps_its_seat_until_the_grace_period_ends() {
    let mut room = live_room();
    room.handle(1_000, Input::Disconnected { id: 2 });
    assert!(room.view(2).unwrap().reconnecting);
    let effects = room.handle(5_000, Input::Reconnected { id: 2 });
    assert!(matches!(&sent_to(&effects, 2)[0], ServerMessage::Admitted { .. }));
    room.handle(6_000, Input::Disconnected { id: 2 });
    room.handle(6_000 + conclave_room::RECONNECT_GRACE_MS, Input::Tick);
    assert_eq!(room.presence(2), None, "gone after the grace period");
}

#[test]
fn a_second_tab_of_the_same_account_takes_over_the_seat_and_is_audited() {
    let mut room = live_room();
    join(&mut room, 1, 4, member("grace"), ORDINARY);
    say(&mut room, 1, 1, ClientMessage::Admit { participant_id: 4 });
    let effects = join(&mut room, 2, 7, member("grace"), ORDINARY);
    assert_eq!(effects[0], Effect::Rebind { connection: 7, seat: 4 });
    assert!(matches!(&sent_to(&effects, 4)[0], ServerMessage::Admitted { participant_id: 4, .. }));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Audit { action: conclave_proto::audit::AuditAction::MeetingSeatTakeover, actor: Some(4), .. }
    )));
    assert_eq!(room.admitted().count(), 4, "no duplicate participant");
    assert_eq!(room.presence(4), Some(Presence::Admitted));
}

#[test]
fn nobody_takes_over_a_seat_by_claiming_to_be_the_same_device_or_address() {
    let mut room = live_room();
    // A guest from the host's own address, or another guest's, gets a seat
    // of their own in the waiting room: never the host's, never theirs.
    let mut lookalike = owner();
    lookalike.user_id = None;
    let effects = join(&mut room, 1, 7, lookalike, ORDINARY);
    assert!(matches!(sent_to(&effects, 7).as_slice(), [ServerMessage::Waiting { participant_id: 7, .. }]));
    let effects = join(&mut room, 2, 8, guest(2), ORDINARY);
    assert!(matches!(sent_to(&effects, 8).as_slice(), [ServerMessage::Waiting { participant_id: 8, .. }]));
    assert!(effects.iter().all(|e| !matches!(e, Effect::Rebind { .. })));
    assert_eq!((room.host(), room.view(1).unwrap().role), (Some(1), Role::Host));
    // Not even in a locked meeting, where they are simply refused.
    say(&mut room, 3, 1, ClientMessage::Lock);
    let effects = join(&mut room, 4, 9, guest(3), ORDINARY);
    assert_eq!(sent_to(&effects, 9), vec![ServerMessage::Refused { reason: RefusalReason::Locked }]);
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Audit {
            action: conclave_proto::audit::AuditAction::MeetingJoin,
            outcome: conclave_proto::audit::AuditOutcome::Denied,
            ..
        }
    )));
}

#[test]
fn without_a_passcode_the_waiting_room_stays_on() {
    let mut room = live_room();
    let refused = say(
        &mut room,
        1,
        1,
        ClientMessage::UpdateSettings { settings: SettingsChange { waiting_room: Some(false), ..Default::default() } },
    );
    assert_eq!(error_code(&refused, 1).as_deref(), Some("invalid"));
    assert!(room.settings().waiting_room, "a code alone must never open the meeting");
    let mut guarded = Room::new(RoomConfig { has_passcode: true, ..config(PolicyView::permissive()) });
    join(&mut guarded, 0, 1, owner(), OWNER);
    say(
        &mut guarded,
        1,
        1,
        ClientMessage::UpdateSettings { settings: SettingsChange { waiting_room: Some(false), ..Default::default() } },
    );
    assert!(!guarded.settings().waiting_room, "with a passcode the host may open the door");
}

#[test]
fn a_ban_from_an_earlier_session_still_holds() {
    let mut first = live_room();
    let effects = say(&mut first, 1, 1, ClientMessage::Remove { participant_id: 2 });
    let ban = effects
        .iter()
        .find_map(|e| match e {
            Effect::Banned { ban } => Some(ban.clone()),
            _ => None,
        })
        .expect("the room asks to keep the ban");
    assert_eq!((ban.display_name.as_str(), ban.removed_by.as_str()), ("p2", "p1"));
    let mut later = Room::new(RoomConfig { banned: ban.keys, ..config(PolicyView::permissive()) });
    join(&mut later, 0, 1, owner(), OWNER);
    let effects = join(&mut later, 1, 5, guest(2), ORDINARY);
    assert_eq!(sent_to(&effects, 5), vec![ServerMessage::Refused { reason: RefusalReason::Removed }]);
}

#[test]
fn the_host_denies_a_knocker_renames_passes_the_baton_and_ends_for_all() {
    let mut room = live_room();
    join(&mut room, 1, 4, guest(4), ORDINARY);
    let denied = say(&mut room, 2, 1, ClientMessage::Deny { participant_id: 4 });
    assert_eq!(sent_to(&denied, 4), vec![ServerMessage::Refused { reason: RefusalReason::Denied }]);
    assert_eq!(room.presence(4), None);
    say(&mut room, 3, 1, ClientMessage::Rename { participant_id: 2, display_name: "Ada L.".into() });
    assert_eq!(room.view(2).unwrap().display_name, "Ada L.");
    say(
        &mut room,
        4,
        1,
        ClientMessage::UpdateSettings { settings: SettingsChange { allow_rename: Some(false), ..Default::default() } },
    );
    assert_eq!(
        error_code(&say(&mut room, 5, 3, ClientMessage::Rename { participant_id: 3, display_name: "Me".into() }), 3)
            .as_deref(),
        Some("forbidden")
    );
    let raised = say(&mut room, 6, 3, ClientMessage::RaiseHand);
    assert!(sent_to(&raised, 1).iter().any(|m| matches!(m, ServerMessage::ParticipantUpdated { participant } if participant.id == 3 && participant.hand_raised)));
    say(&mut room, 7, 3, ClientMessage::LowerHand);
    assert!(!room.view(3).unwrap().hand_raised);
    let reacted = say(&mut room, 8, 3, ClientMessage::React { emoji: "🎉".into() });
    assert!(sent_to(&reacted, 2).contains(&ServerMessage::Reaction { from: 3, emoji: "🎉".into() }));
    assert_eq!(
        error_code(&say(&mut room, 9, 3, ClientMessage::React { emoji: "<script>".into() }), 3).as_deref(),
        Some("invalid")
    );
    say(&mut room, 10, 1, ClientMessage::TransferHost { participant_id: 3 });
    assert_eq!((room.host(), room.view(1).unwrap().role), (Some(3), Role::Participant));
    assert_eq!(error_code(&say(&mut room, 11, 1, ClientMessage::EndForAll), 1).as_deref(), Some("forbidden"));
    let ended = say(&mut room, 12, 3, ClientMessage::EndForAll);
    for id in [1, 2, 3] {
        assert!(sent_to(&ended, id).contains(&ServerMessage::Ended { reason: EndReason::EndedByHost }));
    }
    assert_eq!(room.phase(), Phase::Ended);
    let late = join(&mut room, 13, 9, guest(9), ORDINARY);
    assert_eq!(sent_to(&late, 9), vec![ServerMessage::Refused { reason: RefusalReason::Ended }]);
}

#[test]
fn nobody_can_ban_the_owner_and_only_the_owner_can_ban_an_admin() {
    let mut room = live_room();
    join(&mut room, 1, 4, member("admin"), Standing::OrgAdmin);
    say(&mut room, 1, 1, ClientMessage::Admit { participant_id: 4 });
    // Guest 2 holds the host key: co-host while the owner is here...
    say(&mut room, 2, 2, ClientMessage::ClaimHost { host_key: "123456".into() });
    assert_eq!(room.view(2).unwrap().role, Role::CoHost);
    // ...and even made host by the owner, cannot remove the owner or the admin.
    say(&mut room, 3, 1, ClientMessage::TransferHost { participant_id: 2 });
    assert_eq!(room.host(), Some(2));
    for target in [1, 4] {
        let effects = say(&mut room, 4, 2, ClientMessage::Remove { participant_id: target });
        assert_eq!(error_code(&effects, 2).as_deref(), Some("forbidden"), "removing {target}");
        assert!(!effects.iter().any(|e| matches!(e, Effect::Banned { .. })));
    }
    assert_eq!(room.admitted().count(), 4);
    // The owner may remove the admin; a ban on the owner's account (however
    // it came to be) never keeps the owner out.
    say(&mut room, 5, 2, ClientMessage::SetCoHost { participant_id: 1, co_host: true });
    let effects = say(&mut room, 6, 1, ClientMessage::Remove { participant_id: 4 });
    assert!(effects.iter().any(|e| matches!(e, Effect::Banned { .. })));
    let mut banned_everywhere = Room::new(RoomConfig {
        banned: vec!["user:owner".into(), "user:admin".into()],
        ..config(PolicyView::permissive())
    });
    let effects = join(&mut banned_everywhere, 0, 1, owner(), OWNER);
    assert!(matches!(&sent_to(&effects, 1)[0], ServerMessage::Admitted { .. }));
    // The owner's ban of an admin holds (another admin may lift it).
    let effects = join(&mut banned_everywhere, 1, 2, member("admin"), Standing::OrgAdmin);
    assert_eq!(sent_to(&effects, 2), vec![ServerMessage::Refused { reason: RefusalReason::Removed }]);
}

#[test]
fn a_lifted_ban_lets_the_person_back_in() {
    let mut room = live_room();
    say(&mut room, 1, 1, ClientMessage::Remove { participant_id: 2 });
    let effects = join(&mut room, 2, 5, guest(2), ORDINARY);
    assert_eq!(sent_to(&effects, 5), vec![ServerMessage::Refused { reason: RefusalReason::Removed }]);
    room.handle(3, Input::BansLifted { keys: guest(2).ban_keys() });
    let effects = join(&mut room, 4, 6, guest(2), ORDINARY);
    assert!(matches!(sent_to(&effects, 6).as_slice(), [ServerMessage::Waiting { .. }]));
}

#[test]
fn a_closed_account_leaves_every_seat_at_once_without_a_ban() {
    let mut room = live_room();
    join(&mut room, 1, 4, member("leaver"), ORDINARY);
    say(&mut room, 1, 1, ClientMessage::Admit { participant_id: 4 });
    join(&mut room, 2, 5, member("waiter"), ORDINARY);
    for (seat, account) in [(4, "leaver"), (5, "waiter")] {
        let effects = room.handle(3, Input::AccountClosed { user_id: account.into() });
        assert!(sent_to(&effects, seat).contains(&ServerMessage::Removed), "seat {seat} is told");
        assert!(effects.contains(&Effect::Disconnect { id: seat }));
        assert!(room.view(seat).is_none());
        if seat == 4 {
            assert!(sent_to(&effects, 2).contains(&ServerMessage::ParticipantLeft { participant_id: 4 }));
        }
        assert!(!effects.iter().any(|e| matches!(e, Effect::Banned { .. })), "not a ban");
    }
    assert_eq!(room.admitted().count(), 3);
    // The host's own account closed: the meeting goes on under a new host.
    let effects = room.handle(4, Input::AccountClosed { user_id: "owner".into() });
    assert!(sent_to(&effects, 1).contains(&ServerMessage::Removed));
    assert_eq!(room.phase(), Phase::Live);
    assert!(matches!(room.host(), Some(2 | 3)));
    // An account with no seat here changes nothing.
    assert!(room.handle(5, Input::AccountClosed { user_id: "nobody".into() }).is_empty());
}

fn report(
    room: &mut Room,
    now: i64,
    reporter: u64,
    reported: u64,
) -> Result<conclave_room::ReportParties, conclave_room::ReportRefusal> {
    let effects = room.handle(now, Input::Report { request: 77, resume_token: format!("r{reporter}"), reported });
    effects
        .into_iter()
        .find_map(|e| match e {
            Effect::ReportChecked { request: 77, verdict } => Some(verdict),
            _ => None,
        })
        .expect("every report gets a verdict")
}

#[test]
fn reports_come_only_from_admitted_people_about_people_they_could_see() {
    use conclave_room::ReportRefusal::*;
    let mut room = live_room();
    join(&mut room, 1, 4, guest(4), ORDINARY);
    // Waiting: no report at all, about anyone, existing or not.
    for target in [1, 2, 3, 99] {
        assert_eq!(report(&mut room, 2, 4, target).unwrap_err(), NotAdmitted);
    }
    assert_eq!(report(&mut room, 2, 42, 2).unwrap_err(), NotAdmitted, "an unknown token");
    // Admitted: about others admitted; someone waiting is like nobody at all.
    let parties = report(&mut room, 3, 2, 3).unwrap();
    assert_eq!((parties.reporter.id, parties.reported.id), (2, 3));
    assert_eq!(report(&mut room, 3, 2, 4).unwrap_err(), NoSuchParticipant);
    assert_eq!(report(&mut room, 3, 2, 99).unwrap_err(), NoSuchParticipant);
    assert_eq!(report(&mut room, 3, 2, 2).unwrap_err(), Yourself);
    // Moderators see the waiting room, so they may report from it.
    assert_eq!(report(&mut room, 3, 1, 4).unwrap().reported.id, 4);
}

#[test]
fn reports_are_throttled_per_person_and_per_meeting() {
    use conclave_room::{ReportRefusal::Throttled, REPORTS_PER_MEETING, REPORTS_PER_REPORTER, REPORT_WINDOW_MS};
    let mut room = live_room();
    for _ in 0..REPORTS_PER_REPORTER {
        report(&mut room, 10, 2, 3).unwrap();
    }
    assert_eq!(report(&mut room, 20, 2, 3).unwrap_err(), Throttled { retry_after_ms: REPORT_WINDOW_MS - 10 });
    // Rejoining under another seat buys nothing: the address is the same person.
    say(&mut room, 21, 2, ClientMessage::Leave);
    join(&mut room, 22, 8, guest(2), ORDINARY);
    say(&mut room, 22, 1, ClientMessage::Admit { participant_id: 8 });
    assert!(matches!(report(&mut room, 23, 8, 3), Err(Throttled { .. })));
    // After the window, again.
    assert!(report(&mut room, 10 + REPORT_WINDOW_MS, 8, 3).is_ok());
    // The meeting as a whole has a budget too.
    let mut busy = live_room();
    let mut filed = 0;
    for n in 10..40u64 {
        join(&mut busy, 0, n, guest(n as u8), ORDINARY);
        say(&mut busy, 0, 1, ClientMessage::Admit { participant_id: n });
        for _ in 0..2 {
            if report(&mut busy, 1, n, 1).is_ok() {
                filed += 1;
            }
        }
    }
    assert_eq!(filed, REPORTS_PER_MEETING);
}

#[test]
fn the_waiting_room_is_bounded_per_address_and_in_all() {
    let mut room = Room::new(RoomConfig {
        waiting_per_address: 3,
        ..config(PolicyView { waiting_capacity: 8, ..PolicyView::permissive() })
    });
    join(&mut room, 0, 1, owner(), OWNER);
    let same_address = || guest(9);
    for id in 2..5 {
        assert!(matches!(
            sent_to(&join(&mut room, 1, id, same_address(), ORDINARY), id).as_slice(),
            [ServerMessage::Waiting { .. }]
        ));
    }
    let effects = join(&mut room, 1, 5, same_address(), ORDINARY);
    assert_eq!(sent_to(&effects, 5), vec![ServerMessage::Refused { reason: RefusalReason::WaitingRoomFull }]);
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Audit {
            action: conclave_proto::audit::AuditAction::MeetingJoin,
            outcome: conclave_proto::audit::AuditOutcome::Denied,
            ..
        }
    )));
    // Signed-in people are one seat per account, so the address cap is not theirs.
    for (id, name) in [(6, "a"), (7, "b"), (8, "c"), (9, "d"), (10, "e")] {
        join(&mut room, 1, id, member(name), ORDINARY);
    }
    assert_eq!(room.waiting().count(), 8);
    let effects = join(&mut room, 1, 11, member("f"), ORDINARY);
    assert_eq!(sent_to(&effects, 11), vec![ServerMessage::Refused { reason: RefusalReason::WaitingRoomFull }]);
    // Admitting makes room.
    say(&mut room, 2, 1, ClientMessage::AdmitAll);
    assert!(matches!(
        sent_to(&join(&mut room, 3, 12, same_address(), ORDINARY), 12).as_slice(),
        [ServerMessage::Waiting { .. }]
    ));
}

#[test]
fn a_crowd_knocking_at_once_is_one_notice_a_second() {
    let mut room = live_room();
    let first = join(&mut room, 1_000, 10, guest(10), ORDINARY);
    assert!(sent_to(&first, 1)
        .iter()
        .any(|m| matches!(m, ServerMessage::Knock { participant } if participant.id == 10)));
    let mut told = 0;
    for id in 11..40u64 {
        let effects = join(&mut room, 1_000 + id as i64, id, guest(id as u8), ORDINARY);
        told += sent_to(&effects, 1).len();
    }
    assert_eq!(told, 0, "held while the window is open");
    assert_eq!(room.next_deadline(), Some(2_000));
    let effects = room.handle(2_000, Input::Tick);
    let to_host = sent_to(&effects, 1);
    assert!(matches!(&to_host[0], ServerMessage::Knocks { count: 29, first } if first.len() == 5 && first[0].id == 11));
    assert!(matches!(&to_host[1], ServerMessage::WaitingRoom { waiting } if waiting.len() == 30));
    assert!(sent_to(&effects, 2).is_empty(), "participants hear nothing of it");
    // Quiet again: the next knock is told at once.
    assert!(sent_to(&room.handle(9_000, Input::Tick), 1).is_empty());
    let later = join(&mut room, 9_000, 50, guest(50), ORDINARY);
    assert!(sent_to(&later, 1)
        .iter()
        .any(|m| matches!(m, ServerMessage::Knock { participant } if participant.id == 50)));
}

#[test]
fn names_that_could_impersonate_are_refused_and_the_roster_marks_members() {
    let mut room = live_room();
    let effects = say(&mut room, 1, 2, ClientMessage::Rename { participant_id: 2, display_name: "p1\u{200B}".into() });
    assert_eq!(error_code(&effects, 2).as_deref(), Some("invalid"));
    let effects = say(&mut room, 1, 2, ClientMessage::Rename { participant_id: 2, display_name: "p\u{202E}1".into() });
    assert_eq!(error_code(&effects, 2).as_deref(), Some("invalid"));
    assert_eq!(room.view(2).unwrap().display_name, "p2");
    let (host, guest) = (room.view(1).unwrap(), room.view(2).unwrap());
    assert_eq!((host.signed_in, host.organisation.as_deref()), (true, Some("Acme")));
    assert_eq!((guest.signed_in, guest.organisation.as_deref()), (false, None));
}

/// A call started from a conversation: its members are known, so the live
/// meeting lets them in without the waiting room; anyone else still waits,
/// and a lock keeps even them out.
#[test]
fn the_people_a_call_was_started_for_come_straight_in() {
    let mut room = Room::new(RoomConfig { invited: vec!["grace".into()], ..config(PolicyView::permissive()) });
    // Before the host is there, even they wait, like everyone.
    join(&mut room, 0, 2, member("grace"), ORDINARY);
    assert_eq!(room.presence(2), Some(Presence::Waiting));
    join(&mut room, 1, 1, owner(), OWNER);
    say(&mut room, 1, 1, ClientMessage::Admit { participant_id: 2 });
    join(&mut room, 2, 3, member("grace-colleague"), ORDINARY);
    assert_eq!(room.presence(3), Some(Presence::Waiting), "not invited: waits");
    say(&mut room, 3, 2, ClientMessage::Leave);
    let effects = join(&mut room, 4, 4, member("grace"), ORDINARY);
    assert_eq!(room.presence(4), Some(Presence::Admitted), "invited, in a live meeting: straight in");
    assert!(sent_to(&effects, 4).iter().any(|m| matches!(m, ServerMessage::Admitted { .. })));
    // A guest cannot pass for an invited account.
    join(&mut room, 5, 5, Identity { user_id: None, ..member("grace") }, ORDINARY);
    assert_eq!(room.presence(5), Some(Presence::Waiting));
    say(&mut room, 6, 1, ClientMessage::Lock);
    say(&mut room, 6, 4, ClientMessage::Leave);
    let effects = join(&mut room, 7, 6, member("grace"), ORDINARY);
    assert_eq!(sent_to(&effects, 6), vec![ServerMessage::Refused { reason: RefusalReason::Locked }]);
}
