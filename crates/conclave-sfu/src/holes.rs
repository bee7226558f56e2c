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
//! Each hole filled also tells how long the publisher's link takes to
//! repair a loss (`crate::repair`), which is how long a hole is waited for.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How many packets behind the newest of its stream str0m still asks for
/// a missing one again, and accepts its retransmission (its receive
/// register's reordering window, fixed in str0m 0.25).
pub(crate) const NACK_WINDOW: u64 = 100;
/// A gap this long is a stream that started over, not packets lost.
const LARGEST_GAP: u64 = 512;

/// Packets judged lost that are still recognised if they come after all.
const GIVEN_UP_KEPT: usize = 32;

/// The missing packets of one incoming stream (one simulcast layer).
#[derive(Debug, Default)]
pub(crate) struct Holes {
    /// The next sequence number expected (extended).
    next: Option<u64>,
    /// Missing sequence numbers, with when they were first missed.
    missing: BTreeMap<u64, Instant>,
    /// The latest packets judged lost, with when they were first missed: a
    /// repair that still comes tells that the judgement came too soon.
    given_up: VecDeque<(u64, Instant)>,
    /// Packets found missing so far (whether they came later or not).
    missed: u64,
}

/// A missing packet that came: how long after it was first missed, and
/// whether it had already been judged lost (its keyframe asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Repair {
    pub after: Duration,
    pub judged_lost: bool,
}

impl Holes {
    /// A packet arrived: a jump past the next expected number leaves the
    /// numbers between missing; an older number fills its hole, and how
    /// long it was missing is returned (the link's repair time), also when
    /// it had been judged lost already.
    pub fn arrived(&mut self, seq: u64, now: Instant) -> Option<Repair> {
        match self.next {
            Some(next) if seq > next && seq - next <= LARGEST_GAP => {
                for missing in next..seq {
                    self.missing.insert(missing, now);
                }
                self.missed += seq - next;
                self.next = Some(seq + 1);
                None
            }
            Some(next) if seq < next => {
                let (missed, judged_lost) = match self.missing.remove(&seq) {
                    Some(missed) => (missed, false),
                    None => {
                        let i = self.given_up.iter().position(|(s, _)| *s == seq)?;
                        (self.given_up.remove(i)?.1, true)
                    }
                };
                Some(Repair { after: now.saturating_duration_since(missed), judged_lost })
            }
            _ => {
                if self.next.is_some_and(|next| seq > next) {
                    // The stream started over: nothing before it can be filled.
                    self.missing.clear();
                    self.given_up.clear();
                }
                self.next = Some(seq + 1);
                None
            }
        }
    }

    /// How many packets were found missing so far: the stream's losses on
    /// the way in, repaired or not.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// Whether any packet is missing now (and so could be judged lost).
    pub fn any_missing(&self) -> bool {
        !self.missing.is_empty()
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
            if !out_of_window && now.saturating_duration_since(*entry.get()) < patience {
                break;
            }
            let (seq, missed) = entry.remove_entry();
            if self.given_up.len() == GIVEN_UP_KEPT {
                self.given_up.pop_front();
            }
            self.given_up.push_back((seq, missed));
            given_up = true;
        }
        given_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    /// The link's patience in these tests (`crate::repair` decides it).
    const PATIENCE: Duration = Duration::from_millis(700);

    #[test]
    fn a_packet_that_comes_back_in_time_leaves_no_hole() {
        let start = Instant::now();
        let mut holes = Holes::default();
        for seq in [10, 11, 13, 14] {
            holes.arrived(seq, start);
        }
        assert_eq!(holes.arrived(12, start + 300 * MS), Some(Repair { after: 300 * MS, judged_lost: false }));
        assert_eq!(holes.arrived(12, start + 310 * MS), None, "a duplicate fills nothing");
        assert!(!holes.unrepairable(start + 2000 * MS, PATIENCE));
    }

    #[test]
    fn a_packet_missing_past_the_patience_is_reported_once() {
        let start = Instant::now();
        let mut holes = Holes::default();
        for seq in [10, 11] {
            holes.arrived(seq, start);
        }
        assert_eq!(holes.arrived(14, start), None);
        holes.arrived(15, start);
        assert!(!holes.unrepairable(start + PATIENCE - MS, PATIENCE), "still repairable");
        holes.arrived(12, start + 100 * MS);
        assert!(holes.unrepairable(start + PATIENCE, PATIENCE), "13 never came");
        assert!(!holes.unrepairable(start + 5 * PATIENCE, PATIENCE), "reported once");
        assert_eq!(
            holes.arrived(13, start + 5 * PATIENCE),
            Some(Repair { after: 5 * PATIENCE, judged_lost: true }),
            "a repair after the judgement is told as such"
        );
        assert_eq!(holes.arrived(13, start + 6 * PATIENCE), None, "and only once");
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
}
