//! A meeting driven by arbitrary input: each line of the data is a
//! participant's JSON message (as the signaling layer would pass it on), a
//! join, a disconnection, a report, or time passing. The room must never
//! panic, must keep exactly one admitted host while live, and must answer
//! every report without telling any participant.
#![no_main]

use conclave_proto::signal::*;
use conclave_room::{Effect, Identity, Input, Phase, PolicyView, Room, RoomConfig, Standing};
use libfuzzer_sys::fuzz_target;

fn room() -> Room {
    let settings = RoomSettings {
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
    };
    let policy = PolicyView { time_limit_minutes: Some(40), waiting_capacity: 20, ..PolicyView::permissive() };
    Room::new(RoomConfig {
        settings,
        mute_on_entry: true,
        policy,
        host_key: "123456".into(),
        has_passcode: false,
        banned: vec![],
        waiting_per_address: 3,
        invited: vec!["invited".into()],
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut room = room();
    let mut now = 0i64;
    let mut next_id = 1u64;
    for line in text.lines().take(200) {
        let first = line.chars().next().map_or(0, char::len_utf8);
        let (head, rest) = line.split_at(first);
        let input = match head {
            "j" | "o" => {
                let id = next_id;
                next_id += 1;
                // Signed in when the name starts with "@": the text after it is the account.
                let user_id = rest.strip_prefix('@').map(|r| r.chars().take(8).collect());
                let identity = Identity { user_id, ip: Some(format!("10.0.0.{}", id % 7)), ..Default::default() };
                let standing = if head == "o" { Standing::Owner } else { Standing::Ordinary };
                Input::Join { id, display_name: rest.to_owned(), identity, standing, resume_token: format!("r{id}") }
            }
            "p" => {
                let (reporter, reported) = rest.split_once(' ').unwrap_or((rest, "1"));
                let reported = reported.parse().unwrap_or(1);
                Input::Report { request: 1, resume_token: format!("r{reporter}"), reported }
            }
            "d" => Input::Disconnected { id: rest.parse().unwrap_or(1) },
            "r" => Input::Reconnected { id: rest.parse().unwrap_or(1) },
            "t" => {
                now += rest.parse::<i64>().unwrap_or(1_000).clamp(0, 3_600_000);
                Input::Tick
            }
            _ => {
                let (from, json) = line.split_once(' ').unwrap_or(("1", line));
                let Ok(message) = ClientMessage::from_json(json) else { continue };
                Input::Message { from: from.parse().unwrap_or(1), message }
            }
        };
        let reporting = matches!(input, Input::Report { .. });
        let effects = room.handle(now, input);
        if reporting {
            assert!(!effects.iter().any(|e| matches!(e, Effect::Send { .. })), "a report tells no participant");
            assert_eq!(effects.iter().filter(|e| matches!(e, Effect::ReportChecked { .. })).count(), 1);
        }
        if room.phase() == Phase::Live {
            let hosts = room.admitted().filter(|id| room.view(*id).is_some_and(|v| v.role == Role::Host)).count();
            assert_eq!(hosts, 1, "a live meeting has exactly one host");
        }
    }
});
