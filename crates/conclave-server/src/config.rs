//! The server's resolved configuration. How it is assembled from file,
//! environment and flags is the binary's business; this is the result.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Accounts are created only from invitations (the default).
    InviteOnly,
    /// Anyone may sign up, then create an organisation.
    Open,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The key that seals secrets kept in the database (see `secrets`);
    /// `secrets.key` in the data directory unless set. Every node of a
    /// cluster needs the same one.
    pub secrets_key_file: PathBuf,
    /// `postgres://...` to use PostgreSQL; the SQLite file in `data_dir` otherwise.
    pub database_url: Option<String>,
    /// The origin users reach the server at, for links and the CSRF origin check.
    pub public_url: String,
    pub registration: Registration,
    /// The regions this deployment serves; organisations choose among them.
    pub regions: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed (a reverse proxy in front).
    pub trusted_proxies: Vec<IpAddr>,
    pub limits: Limits,
    /// How often dormant accounts are looked for.
    pub dormant_sweep_every: Duration,
    /// How old entries are before their bodies move to their
    /// organisation's bucket, where it chose one (the database holds
    /// the recent log, which live reading and catch-up mostly read).
    pub segment_after: Duration,
    /// How often entries due are moved and stale segments written again.
    pub segment_every: Duration,
    /// How long call-quality samples are kept (swept as often as dormant
    /// accounts are).
    pub quality_retention: Duration,
    /// How often a live meeting re-reads its organisation's policy (changes
    /// through this server's API reach it at once; this catches the rest).
    pub policy_refresh_every: Duration,
    /// The media plane (SFU); `None` runs signaling only.
    pub media: Option<MediaConfig>,
    /// The browser app to serve (the binary embeds it); `None`: API only.
    pub web: Option<crate::web::WebApp>,
    /// Who may read `/metrics`.
    pub metrics: MetricsAccess,
    /// How commands reach live meetings (tests switch on the loopback).
    pub live_transport: crate::live::Transport,
    /// S3-compatible services (`scheme://host[:port]`) organisations may
    /// keep their files at, besides Amazon S3 itself.
    pub storage_endpoints: Vec<String>,
    /// Requests the server makes on someone's say (Web Push, watched
    /// sources) to plain-HTTP and local addresses too (tests on loopback
    /// only; never settable from configuration).
    pub allow_local_outbound: bool,
    /// How often the at-risk notifier looks at the sources organisations
    /// watch; `None`: it does not run.
    pub watch_every: Option<Duration>,
    /// Where email goes out; `None`: the server sends none.
    pub smtp: Option<crate::mail::SmtpConfig>,
    /// How long an emailed password-reset link works.
    pub password_reset_lifetime: Duration,
}

/// Who may read the Prometheus metrics, which say how busy the server is
/// and what it refuses. On the public listener only with the bearer token;
/// on a listener of their own (bound to a private address) to anyone who
/// reaches it. Neither set: not served at all.
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess {
    pub token: Option<String>,
    pub listen: Option<SocketAddr>,
}

/// Where media flows: one UDP port for every participant's ICE, DTLS,
/// SRTP and RTCP.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The UDP address to bind; `None`: the HTTP listen address and port
    /// (TCP and UDP ports of the same number do not collide).
    pub listen: Option<SocketAddr>,
    /// The address participants send media to. By default the bound
    /// address, or this host's address on its default route when bound to
    /// all interfaces. Behind NAT, set the public address here.
    pub advertise: Option<IpAddr>,
    /// The TCP address for ICE over TCP (RFC 6544), for participants whose
    /// network blocks UDP; `None`: UDP only. Advertised with the UDP
    /// address's IP and this bound port.
    pub tcp_listen: Option<SocketAddr>,
    /// Bandwidth estimation's starting point per participant.
    pub initial_bitrate_kbps: u64,
    pub turn: Option<TurnConfig>,
    /// Records forwarded frames for tests (see `conclave_sfu::SfuConfig::with_tap`);
    /// not settable from configuration, and absent from production builds.
    #[cfg(feature = "test-hooks")]
    pub tap: Option<conclave_sfu::FrameTap>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            listen: None,
            advertise: None,
            tcp_listen: None,
            initial_bitrate_kbps: 2500,
            turn: None,
            #[cfg(feature = "test-hooks")]
            tap: None,
        }
    }
}

/// TURN servers (e.g. coturn with `use-auth-secret`) that share a secret
/// with Conclave: credentials are minted per join and expire (the TURN REST
/// API scheme: username `expiry:name`, password HMAC-SHA1 of it).
#[derive(Debug, Clone)]
pub struct TurnConfig {
    pub urls: Vec<String>,
    pub secret: String,
    pub ttl: Duration,
}

/// Throttling knobs. The defaults suit production; tests tighten or loosen
/// them to exercise one mechanism at a time.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Consecutive failed logins for one email before it is locked, and the
    /// first lockout (doubling after).
    pub account_free_failures: u32,
    pub account_lockout: Duration,
    pub account_lockout_max: Duration,
    /// Consecutive failures from one source address before it is locked.
    pub ip_free_failures: u32,
    pub ip_lockout: Duration,
    pub ip_lockout_max: Duration,
    /// Failure counts are forgotten after this long without a failure.
    pub forget_failures_after: Duration,
    /// Sign-ups, bootstraps, sign-ins and reports per source address: burst
    /// and refill rate per second. Generous enough for an office behind one
    /// NAT; failures are throttled much harder by the failure counters.
    pub sensitive_burst: u32,
    /// Meeting invitation emails an organisation may send in a day.
    pub invitation_emails_per_day: u32,
    pub sensitive_per_second: f64,
    /// Meeting joins per source address: a whole school class behind one
    /// NAT joins at once. Guessing is stopped by the join failure counters;
    /// this only bounds floods of valid joins (each costs a ticket in memory).
    pub join_burst: u32,
    pub join_per_second: f64,
    /// Signaling messages one connection may send at once, and per second
    /// after that (on the server's clock).
    pub signaling_burst: u32,
    pub signaling_per_second: f64,
    pub session_lifetime: Duration,
    pub invitation_lifetime: Duration,
    pub argon2_memory_kib: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            account_free_failures: 5,
            account_lockout: Duration::from_secs(60),
            account_lockout_max: Duration::from_secs(3600),
            ip_free_failures: 30,
            ip_lockout: Duration::from_secs(60),
            ip_lockout_max: Duration::from_secs(3600),
            forget_failures_after: Duration::from_secs(3600),
            sensitive_burst: 100,
            invitation_emails_per_day: 1000,
            sensitive_per_second: 2.0,
            join_burst: 300,
            join_per_second: 10.0,
            signaling_burst: 40,
            signaling_per_second: 20.0,
            session_lifetime: Duration::from_secs(14 * 24 * 3600),
            invitation_lifetime: Duration::from_secs(7 * 24 * 3600),
            argon2_memory_kib: 19 * 1024,
        }
    }
}

impl ServerConfig {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            secrets_key_file: data_dir.join("secrets.key"),
            data_dir,
            database_url: None,
            public_url: format!("http://{listen}"),
            registration: Registration::InviteOnly,
            regions: vec!["local".to_owned()],
            trusted_proxies: Vec::new(),
            limits: Limits::default(),
            dormant_sweep_every: Duration::from_secs(3600),
            segment_after: Duration::from_secs(600),
            segment_every: Duration::from_secs(60),
            quality_retention: Duration::from_secs(30 * 24 * 3600),
            policy_refresh_every: Duration::from_secs(30),
            media: Some(MediaConfig::default()),
            web: None,
            metrics: MetricsAccess::default(),
            live_transport: crate::live::Transport::default(),
            storage_endpoints: Vec::new(),
            allow_local_outbound: false,
            watch_every: Some(Duration::from_secs(300)),
            smtp: None,
            password_reset_lifetime: Duration::from_secs(30 * 60),
        }
    }

    /// Cookies are `Secure` unless the public URL is plain HTTP on a
    /// non-loopback host, where browsers would drop them (and where a
    /// warning tells the operator to put TLS in front).
    pub fn secure_cookies(&self) -> bool {
        match self.public_url.strip_prefix("http://") {
            Some(rest) => {
                let host = rest.split(['/', ':']).next().unwrap_or_default();
                matches!(host, "localhost" | "127.0.0.1" | "[") || rest.starts_with("[::1]")
            }
            None => true,
        }
    }

    /// `scheme://host[:port]` of `public_url`.
    pub fn public_origin(&self) -> &str {
        let after_scheme = self.public_url.find("://").map_or(0, |i| i + 3);
        let end = self.public_url[after_scheme..].find('/').map_or(self.public_url.len(), |i| after_scheme + i);
        &self.public_url[..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_and_cookie_security_follow_the_public_url() {
        let mut c = ServerConfig::new("127.0.0.1:8080".parse().unwrap(), "/tmp".into());
        assert_eq!(c.public_origin(), "http://127.0.0.1:8080");
        assert!(c.secure_cookies(), "loopback is a secure context for browsers");
        c.public_url = "https://meet.example.org/base".into();
        assert_eq!(c.public_origin(), "https://meet.example.org");
        assert!(c.secure_cookies());
        c.public_url = "http://meet.example.org".into();
        assert!(!c.secure_cookies());
    }
}
