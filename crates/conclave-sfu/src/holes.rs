//! Packets of a published video that never arrived, even after the
//! publisher was asked to send them again.
//!
//! str0m asks the publisher again for a missing packet a few times in
//! quick succession; on a link whose round trip is longer than those
//! requests last, one retransmission is all that comes, and when it is
//! lost too the packet is gone for good. Every subscriber then holds a
//! frame it can never complete, and its browser waits seconds before it
//! asks for a keyframe (Chromium: three). The SFU sees the hole first:
//! once a packet is missing past any repair's time, the layer's keyframe
//! is asked for at once, and the subscribers' freeze lasts a round trip
//! and a keyframe instead.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a missing packet may still come back: the publisher's
/// retransmission after str0m's last request, across a slow link's round
/// trip. Past this, a subscriber's jitter buffer has given up on it too.
pub(crate) const REPAIR_PATIENCE: Duration = Duration::from_millis(700);
/// A gap this long is a stream that started over, not packets lost.
const LARGEST_GAP: u64 = 512;

/// The missing packets of one incoming stream (one simulcast layer).
#[derive(Debug, Default)]
pub(crate) struct Holes {
    /// The next sequence number expected (extended).
    next: Option<u64>,
    /// Missing sequence numbers, with when they were first missed.
    missing: BTreeMap<u64, Instant>,
}

impl Holes {
    /// A packet arrived: a jump past the next expected number leaves the
    /// numbers between missing; an older number fills its hole.
    pub fn arrived(&mut self, seq: u64, now: Instant) {
        match self.next {
            Some(next) if seq > next && seq - next <= LARGEST_GAP => {
                for missing in next..seq {
                    self.missing.insert(missing, now);
                }
                self.next = Some(seq + 1);
            }
            Some(next) if seq < next => {
                self.missing.remove(&seq);
            }
            _ => {
                if self.next.is_some_and(|next| seq > next) {
                    // The stream started over: nothing before it can be filled.
                    self.missing.clear();
                }
                self.next = Some(seq + 1);
            }
        }
    }

    /// Whether a packet has been missing longer than any repair takes;
    /// those holes are forgotten, so each is reported once. Holes are
    /// found in the order of their numbers, so the oldest come first.
    pub fn unrepairable(&mut self, now: Instant) -> bool {
        let mut given_up = false;
        while let Some(entry) = self.missing.first_entry() {
            if now.saturating_duration_since(*entry.get()) < REPAIR_PATIENCE {
                break;
            }
            entry.remove();
            given_up = true;
        }
        given_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_packet_that_comes_back_in_time_leaves_no_hole() {
        let start = Instant::now();
        let mut holes = Holes::default();
        for seq in [10, 11, 13, 14] {
            holes.arrived(seq, start);
        }
        holes.arrived(12, start + 300 * MS);
        assert!(!holes.unrepairable(start + 2000 * MS));
    }

    #[test]
    fn a_packet_missing_past_the_patience_is_reported_once() {
        let start = Instant::now();
        let mut holes = Holes::default();
        for seq in [10, 11, 14, 15] {
            holes.arrived(seq, start);
        }
        assert!(!holes.unrepairable(start + REPAIR_PATIENCE - MS), "still repairable");
        holes.arrived(12, start + 100 * MS);
        assert!(holes.unrepairable(start + REPAIR_PATIENCE), "13 never came");
        assert!(!holes.unrepairable(start + 5 * REPAIR_PATIENCE), "reported once");
        holes.arrived(13, start + 5 * REPAIR_PATIENCE);
        assert!(!holes.unrepairable(start + 10 * REPAIR_PATIENCE), "a late packet is no new hole");
    }

    #[test]
    fn a_stream_that_starts_over_far_ahead_is_no_loss() {
        let start = Instant::now();
        let mut holes = Holes::default();
        holes.arrived(10, start);
        holes.arrived(12, start);
        holes.arrived(10_000, start + MS);
        holes.arrived(10_001, start + MS);
        assert!(!holes.unrepairable(start + 10 * REPAIR_PATIENCE), "the hole before the restart is dropped");
    }
}
