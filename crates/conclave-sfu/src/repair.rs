//! How long a publisher's link takes to repair a lost packet, and so how
//! long the SFU waits for one before it asks for a keyframe instead.
//!
//! A packet lost on the way in is asked for again and comes back a round
//! trip later, unless the request or the retransmission is lost too; then
//! str0m asks again a round trip after the first, up to five times. The
//! round trip is the link's: 100 ms on one, 450 ms on a loaded mobile link
//! with jitter. A fixed wait is either too short for a slow link
//! (keyframes asked for packets still on their way) or too long for a fast
//! one (a frozen picture waiting for a packet that will never come). So
//! each link's repairs are timed, and a missing packet is waited for until
//! the answer to the last request could have come (`crate::holes`); on a
//! fast layer str0m's window passes first, which ends the wait sooner.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The repairs remembered, and for how long.
const REPAIRS_KEPT: usize = 64;
const REPAIRS_FOR: Duration = Duration::from_secs(30);
/// Fewer repairs than this say too little about how long they take.
const LEAST_REPAIRS: usize = 6;
/// How long a missing packet may still come back when the link's repair
/// time is not yet known: a retransmission after a second request across
/// a slow link's round trip.
const REPAIR_PATIENCE: Duration = Duration::from_millis(700);
/// How many times str0m asks for a missing packet (its receive register's
/// limit, fixed in str0m 0.25), a round trip apart.
const REQUESTS: u32 = 5;
/// The shortest and longest wait for a missing packet.
const LEAST_PATIENCE: Duration = Duration::from_millis(300);
const MOST_PATIENCE: Duration = Duration::from_millis(2500);

/// What one publisher's link has shown of its repairs.
#[derive(Debug, Default)]
pub(crate) struct UplinkRepair {
    /// When each recent repair came, and how long after its packet was missed.
    repairs: VecDeque<(Instant, Duration)>,
}

impl UplinkRepair {
    /// A missing packet came, `after` it was first missed.
    pub fn repaired(&mut self, after: Duration, now: Instant) {
        self.repairs.push_back((now, after));
        if self.repairs.len() > REPAIRS_KEPT {
            self.repairs.pop_front();
        }
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
    /// instead: until the answer to str0m's last request could come. Two
    /// repair times were measured too short on a link losing 5 % with up
    /// to 200 ms of jitter: half the packets judged lost came after all,
    /// 0.8 to 1.9 s after they were missed (`docs/benchmarks.md`).
    pub fn patience(&self, now: Instant) -> Duration {
        self.repair_time(now).map_or(REPAIR_PATIENCE, |t| (t * REQUESTS).clamp(LEAST_PATIENCE, MOST_PATIENCE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn repaired(uplink: &mut UplinkRepair, after: &[u32], start: Instant) {
        for (i, ms) in after.iter().enumerate() {
            uplink.repaired(*ms * MS, start + 100 * MS * i as u32);
        }
    }

    #[test]
    fn a_slow_link_is_waited_for_longer_than_a_fast_one() {
        let start = Instant::now();
        let mut slow = UplinkRepair::default();
        // Most repairs after a round trip, a few after a second one.
        repaired(&mut slow, &[400, 380, 420, 450, 390, 410, 850, 400], start);
        let now = start + 1000 * MS;
        assert_eq!(slow.repair_time(now), Some(450 * MS));
        assert_eq!(slow.patience(now), 2250 * MS, "five requests a repair time apart");
        let mut fast = UplinkRepair::default();
        repaired(&mut fast, &[60, 70, 80, 65, 75, 90, 70, 60], start);
        assert_eq!(fast.patience(now), 400 * MS);
        let mut faster = UplinkRepair::default();
        repaired(&mut faster, &[20, 25, 30, 20, 25, 30, 20, 25], start);
        assert_eq!(faster.patience(now), 300 * MS, "never less than 300 ms");
        let mut slowest = UplinkRepair::default();
        repaired(&mut slowest, &[900; 8], start);
        assert_eq!(slowest.patience(now), 2500 * MS, "never more than 2.5 s");
    }

    #[test]
    fn until_enough_repairs_are_timed_the_patience_is_the_default() {
        let start = Instant::now();
        let mut uplink = UplinkRepair::default();
        assert_eq!(uplink.patience(start), REPAIR_PATIENCE);
        repaired(&mut uplink, &[400; 5], start);
        assert_eq!(uplink.repair_time(start + MS), None, "five repairs");
        repaired(&mut uplink, &[400], start + 500 * MS);
        assert_eq!(uplink.patience(start + 600 * MS), 2000 * MS);
        assert_eq!(uplink.patience(start + REPAIRS_FOR + 700 * MS), REPAIR_PATIENCE, "old repairs are forgotten");
    }
}
