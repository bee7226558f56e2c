//! The server's notion of "now". Production reads the system clock; tests
//! move a manual clock to cross expiry, lockout and dormancy thresholds
//! without waiting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub trait Clock: Send + Sync + 'static {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn starting_at(now_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now_ms)))
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A moment in UTC, split into its calendar parts (the proleptic
/// Gregorian calendar), for dates people and other systems read: email
/// notices, SCIM's `meta` dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

impl UtcTime {
    pub fn from_ms(ms: i64) -> Self {
        let secs = ms.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Days since 1970 to a civil date (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self { year, month, day, hour: rem / 3600, minute: rem % 3600 / 60, second: rem % 60 }
    }

    /// `2026-12-03 07:30 UTC`: to the minute, for people (email notices,
    /// invitations, warnings).
    pub fn minute(&self) -> String {
        let Self { year, month, day, hour, minute, .. } = self;
        format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
    }

    /// `2026-12-03T09:15:00Z` (RFC 3339).
    pub fn rfc3339(&self) -> String {
        let Self { year, month, day, hour, minute, second } = self;
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::UtcTime;

    #[test]
    fn calendar_parts_are_right_across_leap_days_and_centuries() {
        assert_eq!(UtcTime::from_ms(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(UtcTime::from_ms(951_782_400_000).rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(UtcTime::from_ms(1_796_300_100_000).rfc3339(), "2026-12-03T12:15:00Z");
        assert_eq!(UtcTime::from_ms(-1000).rfc3339(), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn dates_in_notices_are_utc_to_the_minute() {
        assert_eq!(UtcTime::from_ms(0).minute(), "1970-01-01 00:00 UTC");
        assert_eq!(UtcTime::from_ms(951_782_400_000 + 59_999).minute(), "2000-02-29 00:00 UTC");
        assert_eq!(UtcTime::from_ms(1_796_283_000_000).minute(), "2026-12-03 07:30 UTC");
    }
}
