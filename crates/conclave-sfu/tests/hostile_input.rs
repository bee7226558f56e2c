//! Whatever arrives, the SFU answers without panicking, and strangers never
//! reach a session: random datagrams, mutated STUN requests, garbage SDP and
//! oversized subscriptions (the same shapes `fuzz/media_inputs` explores at
//! length, in every test run).

use conclave_proto::media::{MediaSource, PublishedTrack, Quality, Tile};
use conclave_proto::signal::ServerMessage;
use conclave_sfu::{Command, MeetingKey, Rights, Sfu, SfuConfig, SfuEvent};
use proptest::prelude::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn sfu_with_two(now: Instant) -> Sfu {
    let mut sfu = Sfu::new(SfuConfig::new("127.0.0.1:4000".parse().unwrap(), 1000), now);
    let rights = Rights { microphone: true, camera: true, screen: true };
    for participant in [1, 2] {
        sfu.handle_command(now, Command::Admit { meeting: MeetingKey::from("m"), participant, rights });
    }
    sfu
}

fn events(sfu: &mut Sfu) -> Vec<SfuEvent> {
    std::iter::from_fn(|| sfu.poll_event()).collect()
}

#[test]
fn garbage_sdp_gets_a_clear_error_and_the_session_survives() {
    let now = Instant::now();
    let mut sfu = sfu_with_two(now);
    let tracks = vec![PublishedTrack { mid: "0".into(), source: MediaSource::Camera }];
    sfu.handle_command(
        now,
        Command::Offer { meeting: "m".into(), participant: 1, sdp: "v=0\r\nnonsense".into(), tracks },
    );
    let got = events(&mut sfu);
    assert!(
        got.iter().any(|e| matches!(e, SfuEvent::Signal { participant: 1, message: ServerMessage::Error { code, .. }, .. } if code == "invalid_media")),
        "{got:?}"
    );
    assert!(sfu.has_participant("m", 1), "a bad offer does not end the session");
    assert_eq!(sfu.stats.peer_faults, 0);
}

#[test]
fn too_many_tracks_are_refused() {
    let now = Instant::now();
    let mut sfu = sfu_with_two(now);
    let tracks = (0..20).map(|i| PublishedTrack { mid: i.to_string(), source: MediaSource::Camera }).collect();
    sfu.handle_command(now, Command::Offer { meeting: "m".into(), participant: 1, sdp: String::new(), tracks });
    assert!(matches!(events(&mut sfu).as_slice(), [SfuEvent::Signal { message: ServerMessage::Error { .. }, .. }]));
}

#[test]
fn a_participant_who_left_is_unknown_at_once() {
    let now = Instant::now();
    let mut sfu = sfu_with_two(now);
    sfu.handle_command(now, Command::Leave { meeting: "m".into(), participant: 2 });
    assert!(!sfu.has_participant("m", 2));
    assert_eq!(sfu.stats.peers, 1);
    // Requests in its name go nowhere.
    sfu.handle_command(now, Command::Answer { meeting: "m".into(), participant: 2, sdp: "x".into() });
    assert!(events(&mut sfu).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn strangers_datagrams_are_dropped_unread(
        datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20),
    ) {
        let now = Instant::now();
        let mut sfu = sfu_with_two(now);
        let stranger: SocketAddr = "127.0.0.9:9".parse().unwrap();
        for d in &datagrams {
            sfu.handle_datagram(now, stranger, d);
        }
        prop_assert_eq!(sfu.stats.datagrams_unrouted, datagrams.len() as u64);
        prop_assert!(sfu.poll_transmit().is_none(), "no answer to a stranger");
    }

    #[test]
    fn anything_from_a_participants_address_is_survived(
        datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20),
        sdp in ".{0,400}",
        tiles in proptest::collection::vec((0u64..5, 0u8..3), 0..100),
    ) {
        let mut now = Instant::now();
        let mut sfu = sfu_with_two(now);
        let peer: SocketAddr = "127.0.0.2:5000".parse().unwrap();
        sfu.bind_address_for_fuzzing("m", 1, peer);
        for d in &datagrams {
            sfu.handle_datagram(now, peer, d);
            now += Duration::from_millis(7);
            sfu.handle_timeout(now);
        }
        sfu.handle_command(now, Command::Offer { meeting: "m".into(), participant: 2, sdp, tracks: Vec::new() });
        let tiles = tiles
            .into_iter()
            .map(|(p, q)| Tile { participant_id: p, source: MediaSource::Camera, quality: [Quality::Low, Quality::Medium, Quality::High][q as usize] })
            .collect();
        sfu.handle_command(now, Command::Subscribe { meeting: "m".into(), participant: 1, tiles });
        while sfu.poll_transmit().is_some() {}
        let _ = events(&mut sfu);
        prop_assert_eq!(sfu.stats.peer_faults, 0);
    }
}
