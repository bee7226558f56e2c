//! A congested last mile, simulated on the way in (`limit_receive`).

use std::time::Instant;

/// Datagrams beyond `bps` (with a 100 ms burst) are dropped.
pub(super) struct Bottleneck {
    bps: u64,
    tokens: f64,
    refilled: Instant,
}

impl Bottleneck {
    /// A bottleneck of `kbps` starting empty at `now`.
    pub fn new(kbps: u64, now: Instant) -> Self {
        Self { bps: kbps * 1000, tokens: 0.0, refilled: now }
    }

    /// Whether a datagram of `bytes` arriving at `now` gets through.
    pub fn admits(&mut self, bytes: usize, now: Instant) -> bool {
        let burst = self.bps as f64 / 8.0 / 10.0;
        let refill = now.saturating_duration_since(self.refilled).as_secs_f64() * self.bps as f64 / 8.0;
        self.tokens = (self.tokens + refill).min(burst);
        self.refilled = self.refilled.max(now);
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn admits_the_rate_and_drops_the_rest() {
        let start = Instant::now();
        let mut link = Bottleneck::new(800, start);
        assert!(!link.admits(1000, start), "it starts empty");
        // 100 kB/s: a tenth of a second holds 10 kB, the burst.
        let later = start + Duration::from_secs(1);
        let admitted = (0..20).filter(|_| link.admits(1000, later)).count();
        assert_eq!(admitted, 10);
    }
}
