//! The session's contract with str0m, on two sessions wired back to back
//! in simulated time: a publisher, and a subscriber that only answers (as
//! a Janus subscriber does), each datagram delivered within the millisecond.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use conclave_proto::media::MediaSource;
use conclave_proto::signal::{ClientMessage, ServerMessage};
use str0m::net::{Protocol, Receive};
use str0m::Input;

use super::{MediaOptions, MediaSession};
use crate::media::synthetic::FrameClock;

const PUBLISHER: u64 = 1;
const SUBSCRIBER: u64 = 2;

fn address(id: u64) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, id as u8], 5000))
}

struct Pair {
    publisher: MediaSession,
    subscriber: MediaSession,
    now: Instant,
}

impl Pair {
    /// A publisher of audio and a three-layer simulcast camera, and a
    /// subscriber of it, connected and exchanging media.
    fn connected() -> Self {
        let start = Instant::now();
        let clock = FrameClock::starting_at(start, 0);
        let publishing =
            MediaOptions { simulcast: vec!["q".into(), "h".into(), "f".into()], ..MediaOptions::default() };
        let watching = MediaOptions { microphone: false, camera: false, await_offer: true, ..MediaOptions::default() };
        let mut pair = Self {
            publisher: MediaSession::new(start, PUBLISHER, publishing, address(PUBLISHER), clock).unwrap(),
            subscriber: MediaSession::new(start, SUBSCRIBER, watching, address(SUBSCRIBER), clock).unwrap(),
            now: start,
        };
        for _ in 0..5000 {
            if pair.subscriber.stats().frames_from(PUBLISHER, MediaSource::Camera) > 0 {
                return pair;
            }
            pair.step();
        }
        panic!("no camera frame within 5 s: {:#?}", pair.subscriber.stats());
    }

    /// One millisecond: each session gets the time if it is due, the
    /// signaling is carried, then each one's datagrams reach the other.
    /// After every input, str0m has nothing left to give.
    fn step(&mut self) {
        self.now += Duration::from_millis(1);
        let now = self.now;
        for session in [&mut self.publisher, &mut self.subscriber] {
            if session.poll_timeout() <= now {
                session.handle_timeout(now);
                assert_drained(session);
            }
        }
        while let Some(message) = self.publisher.poll_signal() {
            if let ClientMessage::MediaOffer { sdp, .. } = message {
                self.subscriber.handle_signal(now, ServerMessage::MediaOffer { sdp, tracks: Vec::new() });
                assert_drained(&mut self.subscriber);
            }
        }
        while let Some(message) = self.subscriber.poll_signal() {
            if let ClientMessage::MediaAnswer { sdp } = message {
                self.publisher.handle_signal(now, ServerMessage::MediaAnswer { sdp });
                assert_drained(&mut self.publisher);
            }
        }
        for datagram in self.publisher_datagrams() {
            self.subscriber.handle_datagram(now, address(PUBLISHER), address(SUBSCRIBER), &datagram);
            assert_drained(&mut self.subscriber);
        }
        while let Some(datagram) = self.subscriber.poll_transmit() {
            self.publisher.handle_datagram(now, address(SUBSCRIBER), address(PUBLISHER), &datagram.contents);
            assert_drained(&mut self.publisher);
        }
    }

    fn publisher_datagrams(&mut self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.publisher.poll_transmit()).map(|d| d.contents).collect()
    }

    /// What the publisher sends over `window` while the subscriber hears
    /// nothing (its socket is not read): the burst a busy load generator
    /// finds waiting when its task finally runs.
    fn held_back_burst(&mut self, window: Duration) -> Vec<Vec<u8>> {
        let mut burst = Vec::new();
        let end = self.now + window;
        while self.now < end {
            self.now += Duration::from_millis(1);
            if self.publisher.poll_timeout() <= self.now {
                self.publisher.handle_timeout(self.now);
            }
            burst.extend(self.publisher_datagrams());
        }
        burst
    }
}

fn assert_drained(session: &mut MediaSession) {
    assert!(session.rtc.drained_after_every_mutation(), "a change to str0m was not drained to its timeout");
    assert!(session.rtc.has_nothing_pending(), "str0m still had output after an input");
}

/// Every datagram of a burst is handled and drained on its own: after
/// each one, str0m answers a poll with its timeout and nothing else, and
/// in the end every frame of the burst reached the stats. (The old loop
/// fed up to 32 datagrams before polling once; after the first of them,
/// the frame it completed would still be inside str0m, which fails here.)
#[test]
fn a_burst_of_datagrams_is_drained_after_each_one() {
    let mut pair = Pair::connected();
    let sent_before = pair.publisher.stats().sent_frames;
    let received_before = pair.subscriber.stats().total_frames();
    let burst = pair.held_back_burst(Duration::from_millis(300));
    assert!(burst.len() >= 64, "a burst of {} datagrams", burst.len());
    let now = pair.now;
    for datagram in &burst {
        pair.subscriber.handle_datagram(now, address(PUBLISHER), address(SUBSCRIBER), datagram);
        assert_drained(&mut pair.subscriber);
    }
    let sent = pair.publisher.stats().sent_frames - sent_before;
    let received = pair.subscriber.stats().total_frames() - received_before;
    assert_eq!(received, sent, "every frame of the burst, every simulcast layer, reached the stats");
    assert!(pair.subscriber.poll_transmit().is_some(), "the subscriber's reports wait to be sent");
}

/// The check above is not vacuous: the same burst fed as the old loop fed
/// it, inputs back to back with one poll at the end, leaves str0m with
/// output still inside.
#[test]
fn the_old_loop_leaves_output_inside_str0m() {
    let mut pair = Pair::connected();
    let burst = pair.held_back_burst(Duration::from_millis(300));
    let now = pair.now;
    for datagram in burst.iter().take(32) {
        let contents = datagram.as_slice().try_into().unwrap();
        let receive =
            Receive { proto: Protocol::Udp, source: address(PUBLISHER), destination: address(SUBSCRIBER), contents };
        pair.subscriber.rtc.handle_input_without_draining(Input::Receive(now, receive));
    }
    assert!(!pair.subscriber.rtc.drained_after_every_mutation());
    assert!(!pair.subscriber.rtc.has_nothing_pending(), "str0m had output waiting");
}

/// Simulcast layers are written one at a time, each drained: the subscriber
/// gets every layer of every frame while both run in step.
#[test]
fn every_simulcast_layer_arrives() {
    let mut pair = Pair::connected();
    for _ in 0..500 {
        pair.step();
    }
    let camera = pair.subscriber.stats().from(PUBLISHER, MediaSource::Camera).cloned().unwrap();
    let per_layer: Vec<u64> = (0..3).map(|layer| camera.layers.get(&layer).copied().unwrap_or(0)).collect();
    assert!(per_layer.iter().all(|frames| *frames >= 14), "frames per layer in 0.5 s: {per_layer:?}");
    assert_eq!(camera.missing, 0);
}
