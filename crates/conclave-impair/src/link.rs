//! One direction of an impaired path, as a model: each datagram submitted
//! is dropped or given its delivery time.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What a path does to datagrams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// Share of datagrams lost, 0 to 1, each independently.
    pub loss: f64,
    /// Delay every datagram takes.
    pub delay: Duration,
    /// Extra delay, uniform between zero and this, drawn per datagram.
    pub jitter: Duration,
    /// Let jitter reorder datagrams (as netem does); otherwise a datagram
    /// never overtakes the one before it, as on most real paths.
    pub reorder: bool,
    /// The path's capacity in kbit/s; datagrams queue behind each other
    /// and are dropped once the queue holds more than `queue` of delay.
    pub rate_kbps: Option<u64>,
    pub queue: Duration,
}

impl Default for Impairment {
    fn default() -> Self {
        Self {
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: false,
            rate_kbps: None,
            queue: Duration::from_millis(200),
        }
    }
}

/// What becomes of one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Drop,
    DeliverAt(Instant),
}

/// One direction of the path, with its own random sequence.
pub struct Link {
    impairment: Impairment,
    rng: StdRng,
    /// When the rate limit's queue is empty again.
    busy_until: Option<Instant>,
    /// The latest delivery time given, which in-order delivery keeps to.
    last_delivery: Option<Instant>,
    down: bool,
    /// Whether the impairment applies; without it datagrams pass at once
    /// (still in order), for tests that make a network bad and good again.
    impaired: bool,
}

impl Link {
    pub fn new(impairment: Impairment, seed: u64) -> Self {
        Self {
            impairment,
            rng: StdRng::seed_from_u64(seed),
            busy_until: None,
            last_delivery: None,
            down: false,
            impaired: true,
        }
    }

    /// Applies the impairment (`true`, from the start) or passes every
    /// datagram untouched.
    pub fn set_impaired(&mut self, impaired: bool) {
        self.impaired = impaired;
    }

    /// An outage: while down, everything is lost.
    pub fn set_down(&mut self, down: bool) {
        self.down = down;
    }

    pub fn submit(&mut self, now: Instant, bytes: usize) -> Verdict {
        let i = self.impairment;
        // The random draws happen whatever the verdict, so one datagram's
        // fate does not shift every later one's.
        let lost = self.rng.gen_bool(i.loss.clamp(0.0, 1.0));
        let jitter = if i.jitter.is_zero() { Duration::ZERO } else { i.jitter.mul_f64(self.rng.gen::<f64>()) };
        if self.down {
            return Verdict::Drop;
        }
        if !self.impaired {
            let at = self.last_delivery.map_or(now, |last| last.max(now));
            self.last_delivery = Some(at);
            return Verdict::DeliverAt(at);
        }
        if lost {
            return Verdict::Drop;
        }
        let mut leaves = now;
        if let Some(kbps) = i.rate_kbps {
            let start = self.busy_until.map_or(now, |b| b.max(now));
            if start - now > i.queue {
                return Verdict::Drop;
            }
            let sending = Duration::from_secs_f64(bytes as f64 * 8.0 / (kbps.max(1) as f64 * 1000.0));
            leaves = start + sending;
            self.busy_until = Some(leaves);
        }
        let mut at = leaves + i.delay + jitter;
        if !i.reorder {
            at = self.last_delivery.map_or(at, |last| at.max(last));
        }
        self.last_delivery = Some(self.last_delivery.map_or(at, |last| last.max(at)));
        Verdict::DeliverAt(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(impairment: Impairment, n: usize) -> (usize, Vec<Duration>) {
        let start = Instant::now();
        let mut link = Link::new(impairment, 7);
        let mut delays = Vec::new();
        let mut lost = 0;
        for k in 0..n {
            let now = start + Duration::from_millis(k as u64);
            match link.submit(now, 1000) {
                Verdict::Drop => lost += 1,
                Verdict::DeliverAt(at) => delays.push(at - now),
            }
        }
        (lost, delays)
    }

    #[test]
    fn loses_about_the_share_asked_and_the_same_ones_for_the_same_seed() {
        let five = Impairment { loss: 0.05, ..Impairment::default() };
        let (lost, _) = run(five, 20_000);
        assert!((800..1200).contains(&lost), "{lost} of 20000 at 5 %");
        assert_eq!(run(five, 1000), run(five, 1000));
        assert_eq!(run(Impairment::default(), 1000).0, 0);
    }

    #[test]
    fn an_unimpaired_link_passes_everything_at_once_and_in_order() {
        let bad = Impairment {
            loss: 0.5,
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(200),
            ..Impairment::default()
        };
        let start = Instant::now();
        let mut link = Link::new(bad, 7);
        let mut last = None;
        for k in 0..200 {
            link.set_impaired(k >= 100);
            let now = start + Duration::from_millis(k);
            match link.submit(now, 1000) {
                Verdict::DeliverAt(at) if k >= 100 => assert!(at >= now + bad.delay, "impaired again"),
                Verdict::DeliverAt(at) => {
                    assert_eq!(at, now, "no delay while unimpaired");
                    assert!(last.is_none_or(|l| at >= l));
                    last = Some(at);
                }
                Verdict::Drop => assert!(k >= 100, "datagram {k} lost while unimpaired"),
            }
        }
        let (lost, _) = run(bad, 1000);
        assert!(lost > 400, "the same link impaired loses about half");
    }

    #[test]
    fn jitter_spreads_delays_and_keeps_order_unless_reordering_is_allowed() {
        let jittery = Impairment {
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(100),
            ..Impairment::default()
        };
        let (_, delays) = run(jittery, 2000);
        assert!(delays.iter().all(|d| *d >= Duration::from_millis(20)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(90)));
        // In order: each delivery no earlier than the one before.
        let start = Instant::now();
        let mut link = Link::new(jittery, 3);
        let mut last = start;
        for k in 0..2000u64 {
            if let Verdict::DeliverAt(at) = link.submit(start + Duration::from_millis(k), 500) {
                assert!(at >= last);
                last = at;
            }
        }
        let mut link = Link::new(Impairment { reorder: true, ..jittery }, 3);
        let deliveries: Vec<Instant> = (0..2000u64)
            .filter_map(|k| match link.submit(start + Duration::from_millis(k), 500) {
                Verdict::DeliverAt(at) => Some(at),
                Verdict::Drop => None,
            })
            .collect();
        assert!(deliveries.windows(2).any(|w| w[1] < w[0]), "reordering happens when allowed");
    }

    #[test]
    fn a_rate_limit_queues_then_drops() {
        // 1000-byte datagrams every millisecond (8 Mbit/s) into 1 Mbit/s.
        let capped = Impairment { rate_kbps: Some(1000), ..Impairment::default() };
        let (lost, delays) = run(capped, 2000);
        assert!(lost > 1500, "most of an 8x overload is dropped ({lost})");
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(210)), "the queue holds at most 200 ms");
    }

    #[test]
    fn an_outage_loses_everything_until_it_ends() {
        let start = Instant::now();
        let mut link = Link::new(Impairment::default(), 1);
        link.set_down(true);
        assert_eq!(link.submit(start, 100), Verdict::Drop);
        link.set_down(false);
        assert_eq!(link.submit(start, 100), Verdict::DeliverAt(start));
    }
}
