//! A handful of counters in the Prometheus text format. Kept in the app state
//! rather than a global recorder so several servers can live in one process
//! (as they do in tests).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub http_requests: [AtomicU64; 5],
    pub logins_succeeded: AtomicU64,
    pub logins_failed: AtomicU64,
    pub logins_throttled: AtomicU64,
    pub lockouts: AtomicU64,
    pub audit_events: AtomicU64,
    pub accounts_disabled_dormant: AtomicU64,
    /// Argon2id verifications, real or decoy: one per password attempt.
    pub password_verifications: AtomicU64,
    /// Meetings with a room open on this node now.
    pub live_meetings: AtomicU64,
    /// Signaling WebSockets open now.
    pub signaling_connections: AtomicU64,
}

impl Metrics {
    pub fn count_response(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.http_requests[class].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP conclave_http_requests_total HTTP responses by status class.");
        let _ = writeln!(out, "# TYPE conclave_http_requests_total counter");
        for (i, counter) in self.http_requests.iter().enumerate() {
            let _ = writeln!(
                out,
                "conclave_http_requests_total{{class=\"{}xx\"}} {}",
                i + 1,
                counter.load(Ordering::Relaxed)
            );
        }
        let counters = [
            ("conclave_logins_total{outcome=\"success\"}", &self.logins_succeeded, "Login attempts by outcome."),
            ("conclave_logins_total{outcome=\"failure\"}", &self.logins_failed, ""),
            ("conclave_logins_total{outcome=\"throttled\"}", &self.logins_throttled, ""),
            ("conclave_lockouts_total", &self.lockouts, "Temporary lockouts started by repeated failures."),
            ("conclave_audit_events_total", &self.audit_events, "Audit events appended by this process."),
            (
                "conclave_dormant_accounts_disabled_total",
                &self.accounts_disabled_dormant,
                "Accounts disabled for disuse.",
            ),
        ];
        for (name, counter, help) in counters {
            let family = name.split('{').next().unwrap_or(name);
            if !help.is_empty() {
                let _ = writeln!(out, "# HELP {family} {help}");
                let _ = writeln!(out, "# TYPE {family} counter");
            }
            let _ = writeln!(out, "{name} {}", counter.load(Ordering::Relaxed));
        }
        for (name, gauge, help) in [
            ("conclave_live_meetings", &self.live_meetings, "Meetings with a room open on this node."),
            ("conclave_signaling_connections", &self.signaling_connections, "Signaling WebSockets open now."),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {}", gauge.load(Ordering::Relaxed));
        }
        out
    }
}

/// User + system CPU seconds of a process (`None`: this one), from
/// `/proc/<pid>/stat` (Linux). For `/metrics` and for load tests that watch
/// a server from outside.
pub fn process_cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).ok()?;
    // The fields after the command name, which may itself contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports in clock ticks of 1/100 s (USER_HZ).
    Some(ticks / 100.0)
}
