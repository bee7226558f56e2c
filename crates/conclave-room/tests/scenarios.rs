//! The room's behaviour, one scenario at a time: readable specifications of
//! what hosts and participants see.

use conclave_proto::signal::*;
use conclave_room::{Effect, Identity, Input, Phase, PolicyView, Presence, Room, RoomConfig};

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

fn room_with(policy: PolicyView) -> Room {
    Room::new(
        RoomConfig {
            settings: settings(),
            mute_on_entry: false,
            policy,
            host_key: "123456".into(),
            has_passcode: false,
            banned: vec![],
        },
        0,
    )
}

fn guest(n: u8) -> Identity {
    Identity { device_id: Some(format!("dev{n}")), ip: Some(format!("203.0.113.{n}")), ..Default::default() }
}

fn owner() -> Identity {
    Identity { user_id: Some("owner".into()), device_id: Some("owner-laptop".into()), ..Default::default() }
}

fn join(room: &mut Room, now: i64, id: u64, identity: Identity, is_owner: bool) -> Vec<Effect> {
    room.handle(
        now,
        Input::Join { id, display_name: format!("p{id}"), identity, is_owner, resume_token: format!("r{id}") },
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
    join(&mut room, 0, 1, owner(), true);
    for id in [2, 3] {
        join(&mut room, 0, id, guest(id as u8), false);
        say(&mut room, 0, 1, ClientMessage::Admit { participant_id: id });
    }
    room
}

#[test]
fn a_guest_waits_learns_nothing_and_the_host_hears_a_knock() {
    let mut room = room_with(PolicyView::permissive());
    join(&mut room, 0, 1, owner(), true);
    assert_eq!(room.phase(), Phase::Live);
    let effects = join(&mut room, 1, 2, guest(2), false);
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
    assert!(effects.iter().any(|e| matches!(e, Effect::Audit { action: "meeting.admit", .. })));
}

#[test]
fn before_the_host_arrives_everyone_waits_then_admit_all() {
    let mut room = room_with(PolicyView::permissive());
    join(&mut room, 0, 2, guest(2), false);
    join(&mut room, 0, 3, guest(3), false);
    assert_eq!(room.phase(), Phase::NotStarted);
    let effects = join(&mut room, 5, 1, owner(), true);
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
    let mut comeback = guest(2);
    comeback.device_id = Some("new-laptop".into());
    let effects = room.handle(
        2,
        Input::Join {
            id: 9,
            display_name: "Totally Someone Else".into(),
            identity: comeback,
            is_owner: false,
            resume_token: "r9".into(),
        },
    );
    assert_eq!(sent_to(&effects, 9), vec![ServerMessage::Refused { reason: RefusalReason::Removed }]);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Audit { action: "meeting.join", outcome: conclave_room::Outcome::Denied, .. })));
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
        assert!(effects.iter().any(|e| matches!(e, Effect::Audit { outcome: conclave_room::Outcome::Denied, .. })));
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
    let effects = join(&mut room, 2, 4, guest(4), false);
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
    say(&mut room, 2, 2, ClientMessage::ClaimHost { host_key: "123456".into() });
    assert_eq!(room.host(), Some(2));
    assert_eq!(room.view(1).unwrap().role, Role::CoHost);
}

#[test]
fn a_free_meeting_warns_at_ten_five_and_one_minutes_then_ends() {
    let policy = PolicyView { time_limit_minutes: Some(40), ..PolicyView::permissive() };
    let mut room = room_with(policy.clone());
    join(&mut room, 0, 1, owner(), true);
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
    join(&mut room, 0, 1, owner(), true);
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
    join(&mut room, 0, 1, owner(), true);
    let effects = say(
        &mut room,
        1,
        1,
        ClientMessage::UpdateSettings { settings: SettingsChange { waiting_room: Some(false), ..Default::default() } },
    );
    assert_eq!(error_code(&effects, 1).as_deref(), Some("forbidden"));
    assert!(room.settings().waiting_room);
    assert_eq!(room.settings().locked_by_policy, vec!["waiting_room".to_owned()]);
    let effects = join(&mut room, 2, 2, guest(2), false);
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
fn a_second_tab_takes_over_the_seat() {
    let mut room = live_room();
    let effects = join(&mut room, 1, 7, guest(2), false);
    assert_eq!(effects[0], Effect::Rebind { connection: 7, seat: 2 });
    assert!(matches!(&sent_to(&effects, 2)[0], ServerMessage::Admitted { participant_id: 2, .. }));
    assert_eq!(room.admitted().count(), 3, "no duplicate participant");
    assert_eq!(room.presence(2), Some(Presence::Admitted));
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
    let mut guarded = Room::new(
        RoomConfig {
            settings: settings(),
            mute_on_entry: false,
            policy: PolicyView::permissive(),
            host_key: "123456".into(),
            has_passcode: true,
            banned: vec![],
        },
        0,
    );
    join(&mut guarded, 0, 1, owner(), true);
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
    let keys = effects
        .iter()
        .find_map(|e| match e {
            Effect::Banned { keys } => Some(keys.clone()),
            _ => None,
        })
        .expect("the room asks to keep the ban");
    let mut later = Room::new(
        RoomConfig {
            settings: settings(),
            mute_on_entry: false,
            policy: PolicyView::permissive(),
            host_key: "123456".into(),
            has_passcode: false,
            banned: keys,
        },
        0,
    );
    join(&mut later, 0, 1, owner(), true);
    let effects = join(&mut later, 1, 5, guest(2), false);
    assert_eq!(sent_to(&effects, 5), vec![ServerMessage::Refused { reason: RefusalReason::Removed }]);
}

#[test]
fn the_host_denies_a_knocker_renames_passes_the_baton_and_ends_for_all() {
    let mut room = live_room();
    join(&mut room, 1, 4, guest(4), false);
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
    let late = join(&mut room, 13, 9, guest(9), false);
    assert_eq!(sent_to(&late, 9), vec![ServerMessage::Refused { reason: RefusalReason::Ended }]);
}
