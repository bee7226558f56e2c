//! The SFU driven by arbitrary input: each chunk of the data is a datagram
//! (from a participant's address or a stranger's), an SDP offer or answer,
//! a subscription, or time passing. The SFU must never panic, and a
//! stranger's datagram must never reach a session.
#![no_main]

use conclave_proto::media::{MediaSource, PublishedTrack, Quality, Tile};
use conclave_sfu::{Command, MeetingKey, Rights, Sfu, SfuConfig};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let advertised: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let mut sfu = Sfu::new(SfuConfig::new(advertised, 1000), start);
    let meeting = MeetingKey::from("m");
    let rights = Rights { microphone: true, camera: true, screen: false };
    for participant in [1, 2] {
        sfu.handle_command(start, Command::Admit { meeting: meeting.clone(), participant, rights });
    }
    let peer: SocketAddr = "127.0.0.2:5000".parse().unwrap();
    let stranger: SocketAddr = "127.0.0.3:5000".parse().unwrap();
    sfu.bind_address_for_fuzzing("m", 1, peer);
    let mut now = start;
    for chunk in data.split(|b| *b == 0xff) {
        let Some((&op, rest)) = chunk.split_first() else { continue };
        match op % 6 {
            0 => sfu.handle_datagram(now, peer, rest),
            1 => {
                let unrouted = sfu.stats.datagrams_unrouted;
                sfu.handle_datagram(now, stranger, rest);
                // Only a STUN request naming a session's ufrag may get in.
                if !conclave_sfu::is_stun(rest) {
                    assert_eq!(sfu.stats.datagrams_unrouted, unrouted + 1);
                }
            }
            2 => {
                let sdp = String::from_utf8_lossy(rest).into_owned();
                let tracks = vec![PublishedTrack { mid: "0".into(), source: MediaSource::Camera }];
                sfu.handle_command(now, Command::Offer { meeting: meeting.clone(), participant: 1, sdp, tracks });
            }
            3 => {
                let sdp = String::from_utf8_lossy(rest).into_owned();
                sfu.handle_command(now, Command::Answer { meeting: meeting.clone(), participant: 2, sdp });
            }
            4 => {
                let tiles = rest
                    .iter()
                    .map(|b| Tile { participant_id: u64::from(b % 4), source: MediaSource::Camera, quality: Quality::Low })
                    .collect();
                sfu.handle_command(now, Command::Subscribe { meeting: meeting.clone(), participant: 1, tiles });
            }
            _ => {
                now += Duration::from_millis(u64::from(rest.first().copied().unwrap_or(1)) * 10);
                sfu.handle_timeout(now);
            }
        }
        while sfu.poll_transmit().is_some() {}
        while sfu.poll_event().is_some() {}
    }
});
