//! The node's in-memory throttles, together, all told the time by the
//! server's `Clock` (so tests move them with a `ManualClock`). Per-account
//! lockouts are not here: they live in the database, shared by every node.

use crate::config::Limits;
use conclave_auth::{Backoff, FailureTracker, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

/// Source addresses (or meetings) remembered by each throttle; the stalest
/// are forgotten first beyond this.
const CAPACITY: usize = 100_000;

pub struct Throttles {
    /// Consecutive authentication failures per source address.
    pub sign_in_failures: Guarded<FailureTracker<IpAddr>>,
    /// Sensitive unauthenticated requests (sign-in, sign-up, reports) per address.
    pub sensitive_requests: Guarded<RateLimiter<IpAddr>>,
    /// Meeting joins per source address.
    pub join_requests: Guarded<RateLimiter<IpAddr>>,
    /// Failed meeting joins (unknown link or code, wrong passcode) per address.
    pub join_failures: Guarded<FailureTracker<IpAddr>>,
    /// Wrong passcodes per meeting, against guessing one meeting's passcode
    /// from many addresses.
    pub passcode_failures: Guarded<FailureTracker<String>>,
    /// Meeting invitations emailed per organisation: a day's worth at
    /// most, so an organisation anyone can make is no spam relay.
    pub invitation_emails: Guarded<RateLimiter<String>>,
}

impl Throttles {
    pub fn new(limits: &Limits) -> Self {
        fn failures<K: Hash + Eq + Clone>(backoff: Backoff, limits: &Limits) -> Guarded<FailureTracker<K>> {
            Guarded::new(FailureTracker::new(backoff, limits.forget_failures_after, CAPACITY))
        }
        Self {
            sign_in_failures: failures(
                Backoff { free_attempts: limits.ip_free_failures, base: limits.ip_lockout, max: limits.ip_lockout_max },
                limits,
            ),
            sensitive_requests: Guarded::new(RateLimiter::new(
                limits.sensitive_burst,
                limits.sensitive_per_second,
                CAPACITY,
            )),
            join_requests: Guarded::new(RateLimiter::new(limits.join_burst, limits.join_per_second, CAPACITY)),
            join_failures: failures(
                Backoff { free_attempts: 10, base: Duration::from_secs(30), max: Duration::from_secs(3600) },
                limits,
            ),
            passcode_failures: failures(
                Backoff { free_attempts: 20, base: Duration::from_secs(60), max: Duration::from_secs(3600) },
                limits,
            ),
            invitation_emails: Guarded::new(RateLimiter::new(
                limits.invitation_emails_per_day,
                f64::from(limits.invitation_emails_per_day) / 86_400.0,
                CAPACITY,
            )),
        }
    }
}

/// A throttle behind its lock. Times are the clock's milliseconds (a clock
/// before 1970 counts as its start).
pub struct Guarded<T>(Mutex<T>);

impl<T> Guarded<T> {
    fn new(inner: T) -> Self {
        Self(Mutex::new(inner))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, T> {
        // A panic while holding a throttle leaves it consistent enough to use.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn clock(now_ms: i64) -> u64 {
    now_ms.max(0) as u64
}

impl<K: Hash + Eq + Clone> Guarded<RateLimiter<K>> {
    /// Spends one request of `key`'s budget, or says how long to wait.
    pub fn check(&self, key: K, now_ms: i64) -> Result<(), Duration> {
        self.lock().check(key, clock(now_ms))
    }
}

impl<K: Hash + Eq + Clone> Guarded<FailureTracker<K>> {
    /// `Some(wait)` while `key` is locked out.
    pub fn locked(&self, key: &K, now_ms: i64) -> Option<Duration> {
        self.lock().locked(key, clock(now_ms))
    }

    /// Counts a failure; returns the lockout it started, if any.
    pub fn failed(&self, key: K, now_ms: i64) -> Option<Duration> {
        self.lock().record_failure(key, clock(now_ms))
    }

    pub fn succeeded(&self, key: &K) {
        self.lock().record_success(key)
    }
}
