//! Packets of a published video that never arrived, even after the
//! publisher was asked to send them again.
//!
//! str0m asks the publisher again for a missing packet a few times, one
//! round trip apart, but only while the packet is among the last
//! [`NACK_WINDOW`] of its stream: past that it stops asking and drops a
//! retransmission that still comes. Once a packet is gone for good, every
//! subscriber holds a frame it can never complete, and its browser waits
//! seconds before it asks for a keyframe (Chromium: three). The SFU sees
//! the hole first: once a packet is missing past any repair's time, the
//! layer's keyframe is asked for at once, and the subscribers' freeze
//! lasts a round trip and a keyframe instead.
//!
//! Each hole also tells how the publisher's link repairs its losses (how
//! many packets it loses, how long a repair takes): `crate::repair`
//! judges from that which layers can be carried whole.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How many packets behind the newest of its stream str0m still asks for
/// a missing one again, and accepts its retransmission (its receive
/// register's reordering window, fixed in str0m 0.25).
pub(crate) const NACK_WINDOW: u64 = 100;
/// How long a missing packet may still come back when the link's repair
/// time is not yet known: a retransmission after a second request across
/// a slow link's round trip.
pub(crate) const REPAIR_PATIENCE: Duration = Duration::from_millis(700);
/// A gap this long is a stream that started over, not packets lost.
const LARGEST_GAP: u64 = 512;
/// A gap longer than this is the link or the stream stopping for a while
/// (an outage, a layer paused and resumed), not the scattered loss that
/// repairs must keep up with: its packets are asked for and given up on
/// like any, but they say nothing of the layer's repairs (`crate::repair`).
pub(crate) const STOPPED_NOT_LOST: u64 = 50;
/// How often the rate of sequence numbers is measured.
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// How long a packet str0m gave up on is remembered against its layer.
const LOST_REMEMBERED: Duration = Duration::from_secs(60);

/// What one arriving packet says about the stream's holes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// A packet further along the stream; `opened` numbers were skipped.
    Ahead { opened: u64 },
    /// A missing packet came, `after` it was first missed.
    Filled { after: Duration },
    /// A packet already had, or given up on.
    Stale,
}

/// The missing packets of one incoming stream (one simulcast layer).
#[derive(Debug, Default)]
pub(crate) struct Holes {
    /// The next sequence number expected (extended).
    next: Option<u64>,
    /// Missing sequence numbers, with when they were first missed and
    /// whether the stream had stopped (a gap past [`STOPPED_NOT_LOST`]).
    missing: BTreeMap<u64, (Instant, bool)>,
    /// Where the current rate window began: its time and next number.
    window: Option<(Instant, u64)>,
    /// Sequence numbers per second over the last full window; kept while
    /// the stream is paused, as what it would cost when it resumes.
    per_second: Option<f64>,
    /// When packets str0m gave up on were found lost, oldest first.
    lost_for_good: std::collections::VecDeque<Instant>,
}

impl Holes {
    /// A packet arrived: a jump past the next expected number leaves the
    /// numbers between missing; an older number fills its hole.
    pub fn arrived(&mut self, seq: u64, now: Instant) -> Arrival {
        let arrival = match self.next {
            Some(next) if seq > next && seq - next <= LARGEST_GAP => {
                let stopped = seq - next > STOPPED_NOT_LOST;
                for missing in next..seq {
                    self.missing.insert(missing, (now, stopped));
                }
                self.next = Some(seq + 1);
                Arrival::Ahead { opened: seq - next }
            }
            Some(next) if seq < next => match self.missing.remove(&seq) {
                Some((missed, _)) => Arrival::Filled { after: now.saturating_duration_since(missed) },
                None => Arrival::Stale,
            },
            _ => {
                if self.next.is_some_and(|next| seq > next) {
                    // The stream started over: nothing before it can be filled.
                    self.missing.clear();
                    self.window = None;
                }
                self.next = Some(seq + 1);
                Arrival::Ahead { opened: 0 }
            }
        };
        self.measure_rate(now);
        arrival
    }

    fn measure_rate(&mut self, now: Instant) {
        let Some(next) = self.next else { return };
        match self.window {
            Some((start, first)) => {
                let elapsed = now.saturating_duration_since(start);
                // A window the stream paused in measures the pause, not the stream.
                if elapsed >= RATE_WINDOW * 2 {
                    self.window = Some((now, next));
                } else if elapsed >= RATE_WINDOW {
                    self.per_second = Some(next.saturating_sub(first) as f64 / elapsed.as_secs_f64());
                    self.window = Some((now, next));
                }
            }
            None => self.window = Some((now, next)),
        }
    }

    /// Sequence numbers the stream spends a second (lost ones too), as last
    /// measured; what decides how long str0m keeps asking for a packet.
    pub fn per_second(&self) -> Option<f64> {
        self.per_second
    }

    /// Whether a packet is gone for good: str0m no longer asks for it nor
    /// takes it (it is [`NACK_WINDOW`] packets behind), or it has been
    /// missing longer than `patience`, the link's repair time. Those holes
    /// are forgotten, so each is reported once; they are found in the
    /// order of their numbers, so the oldest come first.
    pub fn unrepairable(&mut self, now: Instant, patience: Duration) -> bool {
        let newest = self.next.map_or(0, |next| next.saturating_sub(1));
        let mut given_up = false;
        while let Some(entry) = self.missing.first_entry() {
            let out_of_window = entry.key() + NACK_WINDOW < newest;
            let (missed, stopped) = *entry.get();
            if !out_of_window && now.saturating_duration_since(missed) < patience {
                break;
            }
            entry.remove();
            if out_of_window && !stopped {
                self.lost_for_good.push_back(now);
            }
            given_up = true;
        }
        given_up
    }

    /// How many packets of this stream str0m gave up on within the last
    /// minute, scattered losses only: whether the layer, as it is sent,
    /// can be carried whole.
    pub fn lost_for_good_lately(&mut self, now: Instant) -> usize {
        while self.lost_for_good.front().is_some_and(|at| now.saturating_duration_since(*at) >= LOST_REMEMBERED) {
            self.lost_for_good.pop_front();
        }
        self.lost_for_good.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const PATIENCE: Duration = REPAIR_PATIENCE;

    #[test]
    fn a_packet_that_comes_back_in_time_leaves_no_hole() {
        let start = Instant::now();
        let mut holes = Holes::default();
        for seq in [10, 11, 13, 14] {
            holes.arrived(seq, start);
        }
        assert_eq!(holes.arrived(12, start + 300 * MS), Arrival::Filled { after: 300 * MS });
        assert_eq!(holes.arrived(12, start + 310 * MS), Arrival::Stale, "a duplicate fills nothing");
        assert!(!holes.unrepairable(start + 2000 * MS, PATIENCE));
    }

    #[test]
    fn a_packet_missing_past_the_patience_is_reported_once() {
        let start = Instant::now();
        let mut holes = Holes::default();
        for seq in [10, 11] {
            holes.arrived(seq, start);
        }
        assert_eq!(holes.arrived(14, start), Arrival::Ahead { opened: 2 });
        holes.arrived(15, start);
        assert!(!holes.unrepairable(start + PATIENCE - MS, PATIENCE), "still repairable");
        holes.arrived(12, start + 100 * MS);
        assert!(holes.unrepairable(start + PATIENCE, PATIENCE), "13 never came");
        assert_eq!(holes.lost_for_good_lately(start + PATIENCE), 0, "maybe lost: str0m could still take it");
        assert!(!holes.unrepairable(start + 5 * PATIENCE, PATIENCE), "reported once");
        assert_eq!(holes.arrived(13, start + 5 * PATIENCE), Arrival::Stale);
        assert!(!holes.unrepairable(start + 10 * PATIENCE, PATIENCE), "a late packet is no new hole");
    }

    #[test]
    fn a_packet_str0m_stopped_asking_for_is_lost_at_once() {
        let start = Instant::now();
        let mut holes = Holes::default();
        holes.arrived(10, start);
        holes.arrived(12, start);
        // A fast stream: 100 packets later within 300 ms.
        for seq in 13..=11 + NACK_WINDOW {
            holes.arrived(seq, start + 3 * MS * (seq - 12) as u32);
        }
        let now = start + 300 * MS;
        assert!(!holes.unrepairable(now, PATIENCE), "11 is still in str0m's window");
        holes.arrived(12 + NACK_WINDOW, now);
        assert!(holes.unrepairable(now, PATIENCE), "11 left str0m's window");
        assert_eq!(holes.lost_for_good_lately(now), 1);
        assert_eq!(holes.lost_for_good_lately(now + LOST_REMEMBERED), 0, "forgotten after a minute");
    }

    #[test]
    fn a_stream_that_stopped_for_a_while_is_restarted_but_not_held_against_its_layer() {
        let start = Instant::now();
        let mut holes = Holes::default();
        holes.arrived(10, start);
        // An outage: 300 numbers never arrive, then the stream goes on.
        assert_eq!(holes.arrived(311, start + 5000 * MS), Arrival::Ahead { opened: 300 });
        for seq in 312..=420 {
            holes.arrived(seq, start + 5000 * MS);
        }
        let now = start + 5001 * MS;
        assert!(holes.unrepairable(now, PATIENCE), "a keyframe is asked for at once");
        assert_eq!(holes.lost_for_good_lately(now), 0);
    }

    #[test]
    fn a_stream_that_starts_over_far_ahead_is_no_loss() {
        let start = Instant::now();
        let mut holes = Holes::default();
        holes.arrived(10, start);
        holes.arrived(12, start);
        holes.arrived(10_000, start + MS);
        holes.arrived(10_001, start + MS);
        assert!(!holes.unrepairable(start + 10 * PATIENCE, PATIENCE), "the hole before the restart is dropped");
    }

    #[test]
    fn the_rate_counts_lost_numbers_and_outlasts_a_pause() {
        let start = Instant::now();
        let mut holes = Holes::default();
        assert_eq!(holes.per_second(), None);
        // 50 numbers a second, every tenth lost.
        for seq in (0..200u64).filter(|s| s % 10 != 9) {
            holes.arrived(seq, start + 20 * MS * seq as u32);
        }
        let rate = holes.per_second().expect("measured");
        assert!((45.0..=55.0).contains(&rate), "{rate}");
        // Paused for a minute, then back: the pause is not a slow stream.
        holes.arrived(200, start + Duration::from_secs(64));
        holes.arrived(201, start + Duration::from_secs(65));
        assert_eq!(holes.per_second(), Some(rate));
    }
}
