//! Web Push (RFC 8030, with VAPID, RFC 8292): a device that is not
//! connected is woken through its browser's push service when one of its
//! conversations grows, so a closed tab can sync and notify. A push
//! carries no payload at all — not even encrypted — so the push service
//! learns only that something happened; the woken device asks the server
//! what, and decrypts it itself.
//!
//! The server signs each push with its VAPID key (ECDSA P-256, kept in the
//! database, made on first use); browsers bind a subscription to that key.
//! Endpoints are the devices' to give, so the server only sends to HTTPS
//! endpoints on public hosts: a device must not make the server knock on
//! its internal network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::outbound;
use conclave_store::{Store, StoreError};
use data_encoding::BASE64URL_NOPAD;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

/// The setting the VAPID key pair (PKCS#8, base64) is kept under.
const KEY_SETTING: &str = "vapid_key_pkcs8";
/// At most one push per device this often: one wakes it, and it syncs
/// everything there is.
pub const PUSH_EVERY: Duration = Duration::from_secs(10);
/// How long a push service keeps a push for a device that is off.
const TTL_SECONDS: u32 = 24 * 3600;
/// A VAPID token's lifetime (at most a day, RFC 8292 §2).
const TOKEN_LIFETIME_MS: i64 = 12 * 3600 * 1000;

struct Vapid {
    pair: EcdsaKeyPair,
    /// The uncompressed public point, base64url: the browser's
    /// `applicationServerKey`, and the `k` of every push.
    public: String,
}

pub struct Pusher {
    store: Store,
    http: reqwest::Client,
    key: tokio::sync::OnceCell<Arc<Vapid>>,
    /// When each device was last pushed.
    recent: Mutex<HashMap<String, i64>>,
    /// Who runs this server (the VAPID `sub`): its public URL.
    subject: String,
    /// Plain HTTP and local hosts too: for tests on loopback only.
    allow_local: bool,
}

impl Pusher {
    pub fn new(store: Store, subject: String, allow_local: bool) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the push client builds with static settings");
        Self {
            store,
            http,
            key: tokio::sync::OnceCell::new(),
            recent: Mutex::new(HashMap::new()),
            subject,
            allow_local,
        }
    }

    /// The server's VAPID public key, for subscribing.
    pub async fn public_key(&self) -> Result<String, StoreError> {
        Ok(self.vapid().await?.public.clone())
    }

    async fn vapid(&self) -> Result<Arc<Vapid>, StoreError> {
        self.key
            .get_or_try_init(|| async {
                let rng = SystemRandom::new();
                let fresh = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .expect("the system's random source makes a P-256 key");
                // Another node may have made one first: the stored one wins.
                let stored = self.store.setting_or_insert(KEY_SETTING, &BASE64URL_NOPAD.encode(fresh.as_ref())).await?;
                let pkcs8 = BASE64URL_NOPAD
                    .decode(stored.as_bytes())
                    .map_err(|_| StoreError::Corrupt { column: "settings.value", value: KEY_SETTING.into() })?;
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
                    .map_err(|_| StoreError::Corrupt { column: "settings.value", value: KEY_SETTING.into() })?;
                let public = BASE64URL_NOPAD.encode(pair.public_key().as_ref());
                Ok(Arc::new(Vapid { pair, public }))
            })
            .await
            .cloned()
    }

    /// Whether the server will send to this endpoint.
    pub fn check_endpoint(&self, endpoint: &str) -> Result<(), outbound::OutboundError> {
        outbound::allowed(endpoint, self.allow_local)
    }

    /// Wakes these devices (those with a subscription, not pushed in the
    /// last [`PUSH_EVERY`]), in the background.
    pub fn wake(self: &Arc<Self>, devices: Vec<String>, now_ms: i64) {
        let due: Vec<String> = {
            let mut recent = self.recent.lock().expect("push lock");
            // Forget what is past the window, so the map stays small.
            recent.retain(|_, at| now_ms - *at < PUSH_EVERY.as_millis() as i64);
            devices.into_iter().filter(|d| !recent.contains_key(d)).collect()
        };
        if due.is_empty() {
            return;
        }
        let pusher = self.clone();
        tokio::spawn(async move {
            for device in due {
                if let Err(err) = pusher.push(&device, now_ms).await {
                    tracing::warn!(device = %device, error = %err, "a push failed");
                }
            }
        });
    }

    async fn push(&self, device: &str, now_ms: i64) -> Result<(), PushFailure> {
        let Some(endpoint) = self.store.push_endpoint(device).await? else { return Ok(()) };
        // The endpoint's name resolved and checked now, and the connection
        // pinned to the address checked: a name that points inside the
        // network (or starts to) is never sent to.
        let Ok(pinned) = outbound::pinned_address(&endpoint, self.allow_local).await else { return Ok(()) };
        let http = match pinned {
            None => self.http.clone(),
            Some((name, address)) => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .resolve(&name, address)
                .build()
                .map_err(|e| PushFailure::Service(e.to_string()))?,
        };
        self.recent.lock().expect("push lock").insert(device.to_owned(), now_ms);
        let vapid = self.vapid().await?;
        let token = self.token(&vapid, &endpoint, now_ms)?;
        let response = http
            .post(&endpoint)
            .header("TTL", TTL_SECONDS.to_string())
            .header("Urgency", "normal")
            .header("Authorization", format!("vapid t={token}, k={}", vapid.public))
            .header("Content-Length", "0")
            .send()
            .await
            .map_err(|e| PushFailure::Service(e.to_string()))?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            // The subscription is gone (the browser unsubscribed or expired it).
            404 | 410 => Ok(self.store.delete_push_subscription(device).await?),
            status => Err(PushFailure::Service(format!("the push service answered {status}"))),
        }
    }

    /// The VAPID JWT (ES256) for one push service.
    fn token(&self, vapid: &Vapid, endpoint: &str, now_ms: i64) -> Result<String, PushFailure> {
        let url = reqwest::Url::parse(endpoint).map_err(|e| PushFailure::Service(e.to_string()))?;
        let audience = url.origin().ascii_serialization();
        let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({
            "aud": audience,
            "exp": (now_ms + TOKEN_LIFETIME_MS) / 1000,
            "sub": self.subject,
        });
        let claims = BASE64URL_NOPAD.encode(claims.to_string().as_bytes());
        let signing_input = format!("{header}.{claims}");
        let signature = vapid
            .pair
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| PushFailure::Service("signing failed".into()))?;
        Ok(format!("{signing_input}.{}", BASE64URL_NOPAD.encode(signature.as_ref())))
    }
}

#[derive(Debug, thiserror::Error)]
enum PushFailure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Service(String),
}
