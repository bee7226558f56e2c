//! A meeting driven by arbitrary input: each line of the data is a
//! participant's JSON message (as the signaling layer would pass it on), a
//! join, a disconnection, or time passing. The room must never panic and
//! must keep exactly one admitted host while live.
#![no_main]

use conclave_proto::signal::*;
use conclave_room::{Identity, Input, Phase, PolicyView, Room, RoomConfig};
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
        locked_by_policy: vec![],
    };
    let policy = PolicyView { time_limit_minutes: Some(40), ..PolicyView::permissive() };
    Room::new(RoomConfig { settings, mute_on_entry: true, policy, host_key: "123456".into(), has_passcode: false, banned: vec![] }, 0)
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
                let identity = Identity { device_id: Some(rest.chars().take(8).collect()), ip: Some(format!("10.0.0.{}", id % 7)), ..Default::default() };
                Input::Join { id, display_name: rest.to_owned(), identity, is_owner: head == "o", resume_token: format!("r{id}") }
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
        room.handle(now, input);
        if room.phase() == Phase::Live {
            let hosts = room.admitted().filter(|id| room.view(*id).is_some_and(|v| v.role == Role::Host)).count();
            assert_eq!(hosts, 1, "a live meeting has exactly one host");
        }
    }
});
