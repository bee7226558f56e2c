//! How well a publisher's link repairs its losses, and so which of its
//! simulcast layers can be carried whole.
//!
//! A packet lost on the way in is asked for again and comes back a round
//! trip later, unless the request or the retransmission is lost too, or
//! the packet has left str0m's window of the last
//! [`NACK_WINDOW`](crate::holes::NACK_WINDOW) packets of its stream first.
//! That window is counted in packets, so it lasts longer on a slower
//! layer: on a link that loses 5 % and takes 400 ms to repair, the window
//! of a 1.5 Mbit/s layer passes before one repair can come, while a
//! 150 kbit/s layer's leaves time for five. Every packet lost for good
//! freezes every subscriber's picture until a keyframe crosses the same
//! bad link, a second or more; a lower layer whose losses are all
//! repaired keeps the picture moving, which is what people on a bad
//! connection would rather have (Zoom and Meet lower the resolution too).
//!
//! From what the link shows (the share of packets lost, how long repairs
//! take) this predicts how often a layer of a given packet rate would
//! lose a packet for good, for layers not sent now as well; a layer that
//! did lose packets for good recently is judged by that instead.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::holes::{Arrival, NACK_WINDOW, REPAIR_PATIENCE, STOPPED_NOT_LOST};

/// How many times str0m asks for one missing packet (fixed in str0m 0.25).
const NACK_ATTEMPTS: i32 = 5;
/// How long the link's share of lost packets is measured over.
const LOSS_WINDOW: Duration = Duration::from_secs(10);
/// Fewer packets than this say too little about the link's loss.
const LEAST_PACKETS: u64 = 200;
/// The repairs remembered, and for how long.
const REPAIRS_KEPT: usize = 64;
const REPAIRS_FOR: Duration = Duration::from_secs(30);
/// Fewer repairs than this say too little about how long they take.
const LEAST_REPAIRS: usize = 6;
/// The share of time a layer may be expected to leave its subscribers
/// frozen by packets lost for good, to be taken: half the 1 % a bad
/// network is allowed.
const TAKEN_BELOW: f64 = 0.005;
/// The share past which a layer carried is given up. The link's measures
/// wander (a 10 s sample of a 5 % loss is 4 to 6 %), and every change of
/// layer costs a keyframe: a layer taken is kept until clearly worse.
const KEPT_BELOW: f64 = 0.015;
/// How many repair times a packet lost for good freezes the picture: the
/// wait before it is given up, then a keyframe request's trip and the
/// keyframe's own repairs across the same link.
const FREEZE_IN_REPAIR_TIMES: f64 = 3.0;

/// What one publisher's link has shown of its losses and repairs.
#[derive(Debug, Default)]
pub(crate) struct UplinkRepair {
    /// Sequence numbers seen per second (lost ones too), newest last.
    seconds: VecDeque<Second>,
    /// When each recent repair came, and how long after its packet was missed.
    repairs: VecDeque<(Instant, Duration)>,
}

#[derive(Debug, Clone, Copy)]
struct Second {
    start: Instant,
    numbers: u64,
    missed: u64,
}

impl UplinkRepair {
    /// Takes what one arriving video packet said about its stream.
    pub fn observe(&mut self, arrival: Arrival, now: Instant) {
        match arrival {
            // The link or the stream stopped for a while: no share of its loss.
            Arrival::Ahead { opened } if opened > STOPPED_NOT_LOST => {}
            Arrival::Ahead { opened } => {
                let second = self.second(now);
                second.numbers += opened + 1;
                second.missed += opened;
            }
            Arrival::Filled { after } => {
                self.repairs.push_back((now, after));
                if self.repairs.len() > REPAIRS_KEPT {
                    self.repairs.pop_front();
                }
            }
            Arrival::Stale => {}
        }
    }

    fn second(&mut self, now: Instant) -> &mut Second {
        let fresh =
            self.seconds.back().is_some_and(|s| now.saturating_duration_since(s.start) < Duration::from_secs(1));
        if !fresh {
            self.seconds.push_back(Second { start: now, numbers: 0, missed: 0 });
            while self.seconds.front().is_some_and(|s| now.saturating_duration_since(s.start) >= LOSS_WINDOW) {
                self.seconds.pop_front();
            }
        }
        self.seconds.back_mut().expect("a second was just pushed")
    }

    /// The share of packets the link lost lately (before any repair);
    /// `None` until enough packets crossed it.
    pub fn loss(&self, now: Instant) -> Option<f64> {
        let recent = self.seconds.iter().filter(|s| now.saturating_duration_since(s.start) < LOSS_WINDOW);
        let (numbers, missed) = recent.fold((0, 0), |(n, m), s| (n + s.numbers, m + s.missed));
        (numbers >= LEAST_PACKETS).then(|| missed as f64 / numbers as f64)
    }

    /// How long three repairs in four take lately (one request's round
    /// trip: the slowest quarter holds the repairs that took a second
    /// request); `None` until enough came.
    pub fn repair_time(&self, now: Instant) -> Option<Duration> {
        let mut recent: Vec<Duration> = self
            .repairs
            .iter()
            .filter(|(at, _)| now.saturating_duration_since(*at) < REPAIRS_FOR)
            .map(|(_, after)| *after)
            .collect();
        if recent.len() < LEAST_REPAIRS {
            return None;
        }
        recent.sort_unstable();
        Some(recent[recent.len() * 3 / 4])
    }

    /// How long a missing packet is waited for before a keyframe is asked
    /// instead: the time of a second repair, the first having failed.
    pub fn patience(&self, now: Instant) -> Duration {
        self.repair_time(now)
            .map_or(REPAIR_PATIENCE, |t| (t * 2).clamp(Duration::from_millis(300), Duration::from_secs(2)))
    }

    /// How many packets a second a layer spending `numbers_per_second`
    /// sequence numbers would lose for good on this link; `None` while the
    /// link has not shown enough to tell.
    pub fn lost_for_good_per_second(&self, numbers_per_second: f64, now: Instant) -> Option<f64> {
        let loss = self.loss(now)?;
        if loss == 0.0 {
            return Some(0.0);
        }
        let repair = self.repair_time(now)?.as_secs_f64().max(0.001);
        // The time a missing packet stays in str0m's window, and the
        // requests that fit in it, one repair time apart.
        let window = NACK_WINDOW as f64 / numbers_per_second.max(1.0);
        let attempts = ((window / repair).floor() as i32).min(NACK_ATTEMPTS);
        // An attempt fails when the request or the retransmission is lost.
        let attempt_fails = 1.0 - (1.0 - loss).powi(2);
        Some(numbers_per_second * loss * attempt_fails.powi(attempts))
    }

    /// The share of time a layer spending `numbers_per_second` sequence
    /// numbers would leave its subscribers frozen by packets lost for
    /// good; `None` while the link has not shown enough to tell.
    pub fn frozen_share(&self, numbers_per_second: f64, now: Instant) -> Option<f64> {
        let lost = self.lost_for_good_per_second(numbers_per_second, now)?;
        if lost == 0.0 {
            return Some(0.0);
        }
        let repair = self.repair_time(now)?;
        Some(lost * repair.as_secs_f64() * FREEZE_IN_REPAIR_TIMES)
    }

    /// Whether a layer spending `numbers_per_second` sequence numbers is
    /// carried whole enough to be sent: a layer not `carried` now is taken
    /// when it would freeze its subscribers less than [`TAKEN_BELOW`] of
    /// the time, and one carried is kept until [`KEPT_BELOW`]. While the
    /// link shows too little to tell (a new publisher, or only its lowest
    /// layer sent, few of whose losses there are to time), a layer stays
    /// as it is.
    pub fn carries_whole(&self, numbers_per_second: f64, carried: bool, now: Instant) -> bool {
        let tolerated = if carried { KEPT_BELOW } else { TAKEN_BELOW };
        self.frozen_share(numbers_per_second, now).map_or(carried, |share| share <= tolerated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// `seconds` of a stream of `per_second` numbers on a link losing one
    /// in `one_in`, each loss repaired `repair` later.
    fn link(per_second: u64, one_in: u64, repair: Duration, seconds: u64) -> (UplinkRepair, Instant) {
        let start = Instant::now();
        let mut uplink = UplinkRepair::default();
        let gap = Duration::from_secs(1) / per_second as u32;
        let mut now = start;
        for n in 0..per_second * seconds {
            now = start + gap * n as u32;
            if n % one_in == 1 {
                uplink.observe(Arrival::Ahead { opened: 1 }, now);
                if now >= start + repair {
                    uplink.observe(Arrival::Filled { after: repair }, now);
                }
            } else if n % one_in != 0 {
                uplink.observe(Arrival::Ahead { opened: 0 }, now);
            }
        }
        (uplink, now)
    }

    #[test]
    fn a_clean_link_carries_every_layer() {
        let start = Instant::now();
        let mut uplink = UplinkRepair::default();
        for n in 0..1000 {
            uplink.observe(Arrival::Ahead { opened: 0 }, start + 5 * MS * n);
        }
        let now = start + 5 * MS * 1000;
        assert_eq!(uplink.loss(now), Some(0.0));
        assert_eq!(uplink.lost_for_good_per_second(300.0, now), Some(0.0));
        assert!(uplink.carries_whole(300.0, false, now));
        assert_eq!(uplink.patience(now), REPAIR_PATIENCE, "no repair seen to time");
    }

    #[test]
    fn a_lossy_slow_link_carries_only_a_slow_layer() {
        // 5 % loss, repairs in 450 ms: the 5 % loss and 200 ms jitter of the
        // bad-network benchmark.
        let (uplink, now) = link(110, 20, 450 * MS, 10);
        let loss = uplink.loss(now).unwrap();
        assert!((0.045..=0.055).contains(&loss), "{loss}");
        assert_eq!(uplink.repair_time(now), Some(450 * MS));
        assert_eq!(uplink.patience(now), 900 * MS);
        assert!(!uplink.carries_whole(300.0, false, now), "a 1.5 Mbit/s layer's window passes before any repair");
        assert!(!uplink.carries_whole(110.0, false, now), "two repairs fit: a loss for good every 20 s, frozen 7 %");
        assert!(uplink.carries_whole(35.0, false, now), "five repairs fit");
    }

    #[test]
    fn a_lossy_fast_link_carries_every_layer() {
        // 2 % loss, repairs in 140 ms: two repairs fit in the window of a
        // 1.5 Mbit/s layer, a loss for good every 100 s, frozen 0.4 %.
        let (uplink, now) = link(300, 50, 140 * MS, 10);
        assert!(uplink.carries_whole(300.0, false, now));
        assert!(uplink.carries_whole(110.0, false, now));
    }

    #[test]
    fn an_outage_is_no_loss() {
        let start = Instant::now();
        let mut uplink = UplinkRepair::default();
        let mut now = start;
        for _ in 0..500 {
            now += 9 * MS;
            uplink.observe(Arrival::Ahead { opened: 0 }, now);
        }
        // Three seconds without a packet, then the stream goes on: the
        // 300 numbers it skipped are no share of the link's loss.
        now += Duration::from_secs(3);
        uplink.observe(Arrival::Ahead { opened: 300 }, now);
        for _ in 0..300 {
            now += 9 * MS;
            uplink.observe(Arrival::Ahead { opened: 0 }, now);
        }
        assert_eq!(uplink.loss(now), Some(0.0));
        assert!(uplink.carries_whole(300.0, false, now));
    }

    #[test]
    fn a_layer_carried_is_kept_through_a_worse_sample() {
        // 6 % loss, repairs in 430 ms, 60 packets a second: three repairs
        // fit, frozen 0.9 % of the time.
        let (uplink, now) = link(60, 16, 430 * MS, 10);
        let share = uplink.frozen_share(60.0, now).unwrap();
        assert!((TAKEN_BELOW..KEPT_BELOW).contains(&share), "{share}");
        assert!(!uplink.carries_whole(60.0, false, now), "not taken");
        assert!(uplink.carries_whole(60.0, true, now), "but kept");
    }

    #[test]
    fn too_little_seen_is_no_judgement() {
        let (uplink, now) = link(80, 20, 450 * MS, 2);
        assert_eq!(uplink.loss(now), None, "160 packets");
        assert!(uplink.carries_whole(300.0, true, now), "a layer carried stays");
        assert!(!uplink.carries_whole(300.0, false, now), "a layer passed over stays");
        let start = Instant::now();
        let mut unrepaired = UplinkRepair::default();
        for n in 0..400 {
            unrepaired.observe(Arrival::Ahead { opened: u64::from(n % 20 == 0) }, start + 10 * MS * n);
        }
        let now = start + 4000 * MS;
        assert!(unrepaired.loss(now).is_some_and(|loss| loss > 0.04));
        assert_eq!(unrepaired.repair_time(now), None, "losses, but no repair timed yet");
        assert!(unrepaired.carries_whole(300.0, true, now));
        assert!(!unrepaired.carries_whole(300.0, false, now));
    }

    #[test]
    fn a_link_that_recovers_is_trusted_again() {
        let (mut uplink, mut now) = link(110, 20, 450 * MS, 10);
        assert!(!uplink.carries_whole(110.0, false, now));
        for _ in 0..110 * 21 {
            now += 9 * MS;
            uplink.observe(Arrival::Ahead { opened: 0 }, now);
        }
        assert_eq!(uplink.loss(now), Some(0.0));
        assert!(uplink.carries_whole(300.0, false, now), "no loss: every layer is taken back");
        for _ in 0..110 * 10 {
            now += 9 * MS;
            uplink.observe(Arrival::Ahead { opened: 0 }, now);
        }
        assert_eq!(uplink.patience(now), REPAIR_PATIENCE, "old repairs are forgotten");
    }
}
