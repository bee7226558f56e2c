//! What every request handler shares: the store, configuration, clock,
//! password hasher, in-memory throttles and metrics.

use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::error::ApiResult;
use crate::metrics::Metrics;
use conclave_auth::{Backoff, FailureTracker, PasswordHasher, RateLimiter};
use conclave_store::{NewAuditEvent, Store};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Source addresses remembered by each in-memory throttle; the stalest are
/// forgotten first beyond this.
const THROTTLE_CAPACITY: usize = 100_000;

pub type SharedState = Arc<AppState>;

pub struct AppState {
    pub store: Store,
    pub config: ServerConfig,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    /// Consecutive authentication failures per source address.
    pub ip_failures: Mutex<FailureTracker<IpAddr>>,
    /// Rate of sensitive unauthenticated requests per source address.
    pub sensitive_requests: Mutex<RateLimiter<IpAddr>>,
    /// Rate of meeting joins per source address.
    pub join_requests: Mutex<RateLimiter<IpAddr>>,
    pub metrics: Metrics,
    pub hub: crate::meetings::MeetingHub,
    /// Failed meeting joins (unknown link or code, wrong passcode) per source address.
    pub join_failures: Mutex<FailureTracker<IpAddr>>,
    /// Wrong passcodes per meeting, against guessing one meeting's passcode from many addresses.
    pub passcode_failures: Mutex<FailureTracker<String>>,
    /// The SFU, when this server forwards media.
    pub media: Option<conclave_sfu::MediaPlane>,
    /// Vouches for E2EE devices' keys; loaded from the database when first needed.
    pub credential_authority: tokio::sync::OnceCell<Arc<crate::meetings::credentials::CredentialAuthority>>,
}

/// One audit event as a handler describes it; the state adds time and chain.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    pub action: &'a str,
    pub outcome: &'a str,
    pub org_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub target: Option<&'a str>,
    pub source_ip: Option<IpAddr>,
    pub detail: &'a str,
}

impl<'a> Audit<'a> {
    pub fn new(action: &'a str, outcome: &'a str) -> Self {
        Self { action, outcome, org_id: None, actor_id: None, target: None, source_ip: None, detail: "" }
    }

    /// An event done by the signed-in `current`, from `ip`, in their organisation.
    pub fn by(current: &'a crate::extract::CurrentSession, ip: IpAddr, action: &'a str, outcome: &'a str) -> Self {
        Self {
            org_id: current.org_id(),
            actor_id: Some(&current.user.id),
            source_ip: Some(ip),
            ..Self::new(action, outcome)
        }
    }

    pub fn org(self, org_id: &'a str) -> Self {
        Self { org_id: Some(org_id), ..self }
    }

    pub fn target(self, target: &'a str) -> Self {
        Self { target: Some(target), ..self }
    }

    pub fn detail(self, detail: &'a str) -> Self {
        Self { detail, ..self }
    }
}

impl AppState {
    pub fn new(
        store: Store,
        config: ServerConfig,
        clock: Arc<dyn Clock>,
        media: Option<conclave_sfu::MediaPlane>,
    ) -> SharedState {
        let limits = &config.limits;
        let ip_backoff =
            Backoff { free_attempts: limits.ip_free_failures, base: limits.ip_lockout, max: limits.ip_lockout_max };
        Arc::new(Self {
            hasher: PasswordHasher::new(limits.argon2_memory_kib, 2, 1),
            ip_failures: Mutex::new(FailureTracker::new(ip_backoff, limits.forget_failures_after, THROTTLE_CAPACITY)),
            sensitive_requests: Mutex::new(RateLimiter::new(
                limits.sensitive_burst,
                limits.sensitive_per_second,
                THROTTLE_CAPACITY,
            )),
            join_requests: Mutex::new(RateLimiter::new(limits.join_burst, limits.join_per_second, THROTTLE_CAPACITY)),
            metrics: Metrics::default(),
            hub: crate::meetings::MeetingHub::default(),
            join_failures: Mutex::new(FailureTracker::new(
                Backoff {
                    free_attempts: 10,
                    base: std::time::Duration::from_secs(30),
                    max: std::time::Duration::from_secs(3600),
                },
                limits.forget_failures_after,
                THROTTLE_CAPACITY,
            )),
            passcode_failures: Mutex::new(FailureTracker::new(
                Backoff {
                    free_attempts: 20,
                    base: std::time::Duration::from_secs(60),
                    max: std::time::Duration::from_secs(3600),
                },
                limits.forget_failures_after,
                THROTTLE_CAPACITY,
            )),
            store,
            config,
            clock,
            media,
            credential_authority: tokio::sync::OnceCell::new(),
        })
    }

    /// The E2EE credential authority; `None` (and logged) when the database
    /// cannot provide its key, so E2EE meetings fail visibly, not silently.
    pub async fn credential_authority(&self) -> Option<Arc<crate::meetings::credentials::CredentialAuthority>> {
        let loaded = self
            .credential_authority
            .get_or_try_init(|| async {
                crate::meetings::credentials::CredentialAuthority::load_or_create(&self.store).await.map(Arc::new)
            })
            .await;
        match loaded {
            Ok(authority) => Some(authority.clone()),
            Err(err) => {
                tracing::error!(error = %err, "no E2EE credential authority");
                None
            }
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn account_backoff(&self) -> Backoff {
        let l = &self.config.limits;
        Backoff { free_attempts: l.account_free_failures, base: l.account_lockout, max: l.account_lockout_max }
    }

    pub async fn audit(&self, event: Audit<'_>) -> ApiResult<()> {
        let ip = event.source_ip.map(|ip| ip.to_string());
        self.store
            .append_audit(&NewAuditEvent {
                at_ms: self.now_ms(),
                org_id: event.org_id,
                actor_id: event.actor_id,
                action: event.action,
                target: event.target,
                source_ip: ip.as_deref(),
                outcome: event.outcome,
                detail: event.detail,
            })
            .await?;
        self.metrics.audit_events.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            action = event.action,
            outcome = event.outcome,
            actor = event.actor_id,
            target = event.target,
            "audit"
        );
        Ok(())
    }

    /// Argon2id on the blocking pool, so hashing never stalls other requests.
    pub async fn hash_password(self: &Arc<Self>, password: String) -> String {
        let state = self.clone();
        tokio::task::spawn_blocking(move || state.hasher.hash(&password)).await.expect("hashing task panicked")
    }

    /// Verifies against `stored`, or against a decoy when there is no
    /// account, so both cost the same.
    pub async fn verify_password(self: &Arc<Self>, password: String, stored: Option<String>) -> bool {
        self.metrics.password_verifications.fetch_add(1, Ordering::Relaxed);
        let state = self.clone();
        tokio::task::spawn_blocking(move || match stored {
            Some(hash) => state.hasher.verify(&password, &hash),
            None => {
                state.hasher.verify_decoy(&password);
                false
            }
        })
        .await
        .expect("verification task panicked")
    }
}
