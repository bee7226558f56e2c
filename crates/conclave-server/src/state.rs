//! What every request handler shares, in parts: the store, configuration
//! and clock; the password hasher; the throttles; the metrics; the live
//! meetings; the media plane; and the E2EE credential authority.

use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::throttles::Throttles;
use conclave_auth::{Backoff, PasswordHasher};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_store::{NewAuditEvent, Store, StoreError};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub type SharedState = Arc<AppState>;

pub struct AppState {
    pub store: Store,
    pub config: ServerConfig,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub throttles: Throttles,
    pub metrics: Metrics,
    pub live: crate::live::LiveMeetings,
    /// The SFU, when this server forwards media.
    pub media: Option<conclave_sfu::MediaPlane>,
    /// Vouches for E2EE devices' keys; loaded from the database when first needed.
    pub device_authority: crate::devices::AuthorityCell,
    /// Team conversations.
    pub conversations: crate::conversations::Conversations,
    /// Where files' sealed parts are kept.
    pub blobs: conclave_blob::Blobs,
    /// Email out, when SMTP is configured.
    pub mailer: crate::mail::Mailer,
    /// Seals the secrets the database keeps for the server (TOTP seeds).
    pub secrets: crate::secrets::SecretsKey,
    /// Signs people in through their organisations' OpenID providers.
    pub relying_party: crate::sso::RelyingParty,
    /// The passkeys' relying party, when the public URL has a host name.
    pub webauthn: Option<webauthn_rs::Webauthn>,
}

/// One audit event as a handler describes it; the state adds time and chain.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    pub org_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub target: Option<&'a str>,
    pub source_ip: Option<IpAddr>,
    pub detail: &'a str,
}

impl<'a> Audit<'a> {
    pub fn new(action: AuditAction, outcome: AuditOutcome) -> Self {
        Self { action, outcome, org_id: None, actor_id: None, target: None, source_ip: None, detail: "" }
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
        secrets: crate::secrets::SecretsKey,
        clock: Arc<dyn Clock>,
        media: Option<conclave_sfu::MediaPlane>,
    ) -> SharedState {
        let device_authority = crate::devices::AuthorityCell::new(store.clone());
        // The live meetings' actors hold the state they live in.
        Arc::new_cyclic(|state| Self {
            hasher: PasswordHasher::new(config.limits.argon2_memory_kib, 2, 1),
            throttles: Throttles::new(&config.limits),
            metrics: Metrics::default(),
            live: crate::live::LiveMeetings::new(config.live_transport, state.clone()),
            conversations: crate::conversations::Conversations::new(
                store.clone(),
                device_authority.clone(),
                crate::push::Pusher::new(store.clone(), config.public_url.clone(), config.allow_local_outbound),
            ),
            mailer: match &config.smtp {
                None => crate::mail::Mailer::disabled(),
                Some(smtp) => crate::mail::Mailer::new(smtp).unwrap_or_else(|err| {
                    tracing::error!(error = %err, "email is off: the SMTP settings are not usable");
                    crate::mail::Mailer::disabled()
                }),
            },
            relying_party: crate::sso::RelyingParty::new(config.allow_local_outbound),
            webauthn: crate::passkeys::relying_party(&config.public_url),
            blobs: conclave_blob::Blobs::new(config.data_dir.join("files"), config.storage_endpoints.clone()),
            store,
            config,
            secrets,
            clock,
            media,
            device_authority,
        })
    }

    /// The E2EE device authority; `None` (and logged) when the database
    /// cannot provide its key, so E2EE fails visibly, not silently.
    pub async fn device_authority(&self) -> Option<Arc<crate::devices::DeviceAuthority>> {
        self.device_authority.get().await
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn account_backoff(&self) -> Backoff {
        let l = &self.config.limits;
        Backoff { free_attempts: l.account_free_failures, base: l.account_lockout, max: l.account_lockout_max }
    }

    /// Appends an audit event (the only failure is the store's).
    pub async fn audit(&self, event: Audit<'_>) -> Result<(), StoreError> {
        let ip = event.source_ip.map(|ip| ip.to_string());
        self.store
            .append_audit(&NewAuditEvent {
                at_ms: self.now_ms(),
                org_id: event.org_id,
                actor_id: event.actor_id,
                action: event.action.as_str(),
                target: event.target,
                source_ip: ip.as_deref(),
                outcome: event.outcome.as_str(),
                detail: event.detail,
            })
            .await?;
        self.metrics.audit_events.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            action = event.action.as_str(),
            outcome = event.outcome.as_str(),
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
