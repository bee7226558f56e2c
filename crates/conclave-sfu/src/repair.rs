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
//!
//! That window is also why a link's fastest layers can be beyond repair.
//! str0m asks for a missing packet only while it is among the last
//! [`NACK_WINDOW`] of its stream: a 720p layer sends that many in about a
//! second, and on a link losing 5 % with a 400 ms round trip a lost packet
//! often needs a third request (the publisher's browser ignores a request
//! that comes less than a round trip after it sent the packet again, and
//! str0m asks again a round trip and 5 ms later). Such a packet leaves
//! the window first, and the layer's subscribers freeze for a keyframe,
//! every few seconds. So on a link that loses that much, a layer whose
//! window passes sooner than three repairs is not forwarded while a lower
//! one can be (`window_needed`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::holes::NACK_WINDOW;

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
/// Requests a layer's window must outlast on a lossy link: the first, one
/// its answer was lost to, and one the publisher ignored.
const REQUESTS_IN_WINDOW: u32 = 3;
/// The share of a link's video packets lost on the way in from which its
/// fastest layers are held back, and below which they are forwarded again
/// (apart, so a link near the mark does not switch layers every few
/// seconds). A layer's packets lost for good grow with the square of the
/// loss (a packet lost, then its repair or request lost too): at 2 % a
/// 720p layer loses one about every half minute, at 5 % every few seconds.
const LOSSY_FROM: f64 = 0.02;
const LOSSY_UNTIL: f64 = 0.01;
/// How long the share is counted over, and the fewest packets it is
/// judged on.
const LOSS_PERIOD: Duration = Duration::from_secs(5);
const LEAST_PACKETS: u64 = 100;

/// What one publisher's link has shown of its repairs.
#[derive(Debug, Default)]
pub(crate) struct UplinkRepair {
    /// When each recent repair came, and how long after its packet was missed.
    repairs: VecDeque<(Instant, Duration)>,
    /// Video packets that came and were found missing in the period being
    /// counted, since when.
    period: Option<Instant>,
    period_packets: u64,
    period_missed: u64,
    /// Whether the link lost at least `LOSSY_FROM` of its video lately.
    lossy: bool,
}

impl UplinkRepair {
    /// A video packet came (an original or a repair), and showed `missed`
    /// packets before it missing.
    pub fn received(&mut self, missed: u64, now: Instant) {
        let start = *self.period.get_or_insert(now);
        self.period_packets += 1;
        self.period_missed += missed;
        if now.saturating_duration_since(start) < LOSS_PERIOD {
            return;
        }
        if self.period_packets >= LEAST_PACKETS {
            let share = self.period_missed as f64 / (self.period_packets + self.period_missed) as f64;
            self.lossy = share >= if self.lossy { LOSSY_UNTIL } else { LOSSY_FROM };
            tracing::trace!(share, lossy = self.lossy, "a publisher's video lost on the way in");
        }
        self.period = Some(now);
        self.period_packets = 0;
        self.period_missed = 0;
    }

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

    /// How long a layer's last [`NACK_WINDOW`] packets must span for its
    /// lost packets to be asked for often enough on this link; `None` where
    /// the link loses too little for it to matter (or its repairs are not
    /// timed yet), and every layer is forwarded.
    pub fn window_needed(&self, now: Instant) -> Option<Duration> {
        if !self.lossy {
            return None;
        }
        self.repair_time(now).map(|t| t * REQUESTS_IN_WINDOW)
    }
}

/// Whether a layer sending `pps` packets a second keeps a lost packet in
/// str0m's window for `needed`.
pub(crate) fn window_lasts(pps: u64, needed: Duration) -> bool {
    // 100 packets over `pps` a second, in whole milliseconds.
    NACK_WINDOW * 1000 >= pps * needed.as_millis() as u64
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

    /// Ten seconds of a link's video from `start`, 100 packets a second,
    /// `lost` of every `packets` lost on the way and repaired 400 ms later,
    /// spread evenly; returns the end.
    fn ten_seconds(uplink: &mut UplinkRepair, start: Instant, packets: u32, lost: u32) -> Instant {
        for i in 0..1000 {
            let now = start + 10 * MS * i;
            let missed = (i + 1) * lost / packets - i * lost / packets;
            uplink.received(u64::from(missed), now);
            if missed > 0 {
                uplink.repaired(400 * MS, now);
            }
        }
        start + 10_000 * MS
    }

    #[test]
    fn a_lossy_slow_link_needs_a_window_of_three_repairs() {
        let start = Instant::now();
        let mut uplink = UplinkRepair::default();
        assert_eq!(uplink.window_needed(start), None, "nothing known of the link");
        let now = ten_seconds(&mut uplink, start, 20, 1);
        assert_eq!(uplink.window_needed(now), Some(1200 * MS), "5 % lost, repaired after 400 ms");
        // 720p (about 100 packets a second) passes its window in 1 s; 360p
        // (40) in 2.5 s.
        assert!(!window_lasts(100, 1200 * MS));
        assert!(window_lasts(40, 1200 * MS));
        assert!(window_lasts(0, 1200 * MS), "a layer not sending yet");
    }

    #[test]
    fn a_link_is_lossy_from_two_percent_until_under_one() {
        let mut uplink = UplinkRepair::default();
        let mut now = Instant::now();
        now = ten_seconds(&mut uplink, now, 100, 1);
        assert_eq!(uplink.window_needed(now), None, "1 % is not lossy");
        now = ten_seconds(&mut uplink, now, 100, 3);
        assert!(uplink.window_needed(now).is_some(), "3 % is");
        now = ten_seconds(&mut uplink, now, 1000, 15);
        assert!(uplink.window_needed(now).is_some(), "1.5 % still is, once lossy");
        now = ten_seconds(&mut uplink, now, 1000, 5);
        assert_eq!(uplink.window_needed(now), None, "0.5 % no longer is");
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
