//! Throttling of guessable secrets, as plain data structures driven by the
//! caller's clock: an exponential [`Backoff`] after repeated failures, a
//! per-key [`FailureTracker`] built on it, and a token-bucket [`RateLimiter`].
//!
//! Memory is bounded: each map holds at most `capacity` keys and forgets the
//! stalest first, so a flood of spoofed keys cannot exhaust the server.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

/// How long to lock after `failures` consecutive failures: nothing for the
/// first `free_attempts`, then `base`, doubling each time, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub free_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub fn lock_for(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.free_attempts)?;
        let factor = 1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX);
        Some(self.base.saturating_mul(factor).min(self.max))
    }
}

#[derive(Debug, Clone, Copy)]
struct FailureState {
    failures: u32,
    last_ms: u64,
    locked_until_ms: u64,
}

/// Consecutive failures per key, with lockout by [`Backoff`]. A key's count
/// is forgotten after `forget_after` without failures.
#[derive(Debug)]
pub struct FailureTracker<K> {
    backoff: Backoff,
    forget_after: Duration,
    capacity: usize,
    entries: HashMap<K, FailureState>,
}

impl<K: Hash + Eq + Clone> FailureTracker<K> {
    pub fn new(backoff: Backoff, forget_after: Duration, capacity: usize) -> Self {
        Self { backoff, forget_after, capacity, entries: HashMap::new() }
    }

    /// `Some(wait)` while `key` is locked out at `now_ms`.
    pub fn locked(&self, key: &K, now_ms: u64) -> Option<Duration> {
        let state = self.entries.get(key)?;
        (state.locked_until_ms > now_ms).then(|| Duration::from_millis(state.locked_until_ms - now_ms))
    }

    /// Records a failure; returns the lockout it started, if any.
    pub fn record_failure(&mut self, key: K, now_ms: u64) -> Option<Duration> {
        let forget_ms = self.forget_after.as_millis() as u64;
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.evict(now_ms);
        }
        let state =
            self.entries.entry(key).or_insert(FailureState { failures: 0, last_ms: now_ms, locked_until_ms: 0 });
        if now_ms.saturating_sub(state.last_ms) > forget_ms {
            state.failures = 0;
        }
        state.failures = state.failures.saturating_add(1);
        state.last_ms = now_ms;
        let lock = self.backoff.lock_for(state.failures);
        if let Some(duration) = lock {
            state.locked_until_ms = now_ms + duration.as_millis() as u64;
        }
        lock
    }

    pub fn record_success(&mut self, key: &K) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict(&mut self, now_ms: u64) {
        let forget_ms = self.forget_after.as_millis() as u64;
        self.entries.retain(|_, s| s.locked_until_ms > now_ms || now_ms.saturating_sub(s.last_ms) <= forget_ms);
        while self.entries.len() >= self.capacity {
            let Some(stalest) = self.entries.iter().min_by_key(|(_, s)| s.last_ms).map(|(k, _)| k.clone()) else {
                break;
            };
            self.entries.remove(&stalest);
        }
    }
}

/// One token bucket: `burst` requests at once, refilled at `per_second`.
/// Time is whatever clock the caller keeps, in milliseconds.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    per_second: f64,
    tokens: f64,
    at_ms: u64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn new(burst: u32, per_second: f64, now_ms: u64) -> Self {
        Self { burst: f64::from(burst), per_second, tokens: f64::from(burst), at_ms: now_ms }
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, now_ms: u64) -> Result<(), Duration> {
        self.refill(now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_second))
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.at_ms = now_ms.max(self.at_ms);
    }

    /// Whether the bucket would be full by `now_ms` (it can be forgotten).
    fn full_at(&self, now_ms: u64) -> bool {
        self.tokens + now_ms.saturating_sub(self.at_ms) as f64 / 1000.0 * self.per_second >= self.burst
    }
}

/// A token bucket per key, remembering at most `capacity` keys (full
/// buckets are forgotten first, then the stalest).
#[derive(Debug)]
pub struct RateLimiter<K> {
    burst: u32,
    per_second: f64,
    capacity: usize,
    buckets: HashMap<K, TokenBucket>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(burst: u32, per_second: f64, capacity: usize) -> Self {
        Self { burst, per_second, capacity, buckets: HashMap::new() }
    }

    /// Takes one token for `key`, or says how long until one is available.
    pub fn check(&mut self, key: K, now_ms: u64) -> Result<(), Duration> {
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.capacity {
            self.buckets.retain(|_, bucket| !bucket.full_at(now_ms));
            if self.buckets.len() >= self.capacity {
                if let Some(k) = self.buckets.iter().min_by_key(|(_, b)| b.at_ms).map(|(k, _)| k.clone()) {
                    self.buckets.remove(&k);
                }
            }
        }
        let (burst, per_second) = (self.burst, self.per_second);
        self.buckets.entry(key).or_insert_with(|| TokenBucket::new(burst, per_second, now_ms)).take(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BACKOFF: Backoff =
        Backoff { free_attempts: 5, base: Duration::from_secs(60), max: Duration::from_secs(3600) };

    #[test]
    fn a_bucket_lets_a_burst_through_then_refills_with_time() {
        let mut bucket = TokenBucket::new(3, 2.0, 1_000);
        for _ in 0..3 {
            assert_eq!(bucket.take(1_000), Ok(()));
        }
        assert_eq!(bucket.take(1_000), Err(Duration::from_millis(500)), "empty: half a second to the next");
        assert!(bucket.take(1_499).is_err(), "almost one token, not quite");
        assert_eq!(bucket.take(1_500), Ok(()));
        // A clock that stands still (or goes back) gives nothing back.
        assert!(bucket.take(1_200).is_err());
        assert!(bucket.take(60_000).is_ok());
    }

    #[test]
    fn backoff_doubles_after_free_attempts_and_caps() {
        assert_eq!(BACKOFF.lock_for(4), None);
        assert_eq!(BACKOFF.lock_for(5), Some(Duration::from_secs(60)));
        assert_eq!(BACKOFF.lock_for(6), Some(Duration::from_secs(120)));
        assert_eq!(BACKOFF.lock_for(100), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn tracker_locks_then_forgets_after_quiet_period() {
        let mut t = FailureTracker::new(BACKOFF, Duration::from_secs(900), 100);
        for i in 0..4 {
            assert_eq!(t.record_failure("ip", i), None);
        }
        assert_eq!(t.record_failure("ip", 10), Some(Duration::from_secs(60)));
        assert!(t.locked(&"ip", 11).is_some());
        assert!(t.locked(&"ip", 60_011).is_none());
        // A failure long after the last one starts a fresh count.
        assert_eq!(t.record_failure("ip", 2_000_000), None);
        t.record_success(&"ip");
        assert!(t.is_empty());
    }

    #[test]
    fn limiter_allows_burst_then_refills() {
        let mut l = RateLimiter::new(3, 1.0, 10);
        assert!(l.check("a", 0).is_ok());
        assert!(l.check("a", 0).is_ok());
        assert!(l.check("a", 0).is_ok());
        let wait = l.check("a", 0).unwrap_err();
        assert!(wait <= Duration::from_secs(1));
        assert!(l.check("b", 0).is_ok(), "keys are independent");
        assert!(l.check("a", 1000).is_ok());
    }

    proptest! {
        /// However many keys arrive, memory stays within capacity and a key
        /// is never locked out before `free_attempts` failures.
        #[test]
        fn tracker_is_bounded_and_fair(keys in proptest::collection::vec(0u16..500, 1..2000)) {
            let mut t = FailureTracker::new(BACKOFF, Duration::from_secs(900), 64);
            let mut counts = HashMap::new();
            for (i, k) in keys.iter().enumerate() {
                let n = counts.entry(*k).or_insert(0u32);
                *n += 1;
                let lock = t.record_failure(*k, i as u64);
                if *n < BACKOFF.free_attempts { prop_assert!(lock.is_none()); }
                prop_assert!(t.len() <= 64);
            }
        }

        #[test]
        fn limiter_never_exceeds_burst_plus_refill(times in proptest::collection::vec(0u64..10_000, 1..500)) {
            let mut sorted = times.clone();
            sorted.sort();
            let mut l = RateLimiter::new(5, 2.0, 4);
            let allowed = sorted.iter().filter(|t| l.check(0u8, **t).is_ok()).count();
            let span = (sorted.last().unwrap() - sorted[0]) as f64 / 1000.0;
            prop_assert!(allowed as f64 <= 5.0 + span * 2.0 + 1e-9);
        }
    }
}
