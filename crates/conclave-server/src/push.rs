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
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error("a push endpoint is an https:// URL")]
    NotHttps,
    #[error("a push endpoint is on a public host, not a private or loopback address")]
    PrivateHost,
    #[error("the host's name does not resolve")]
    Unresolvable,
}

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
    pub fn check_endpoint(&self, endpoint: &str) -> Result<(), EndpointError> {
        endpoint_allowed(endpoint, self.allow_local)
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
        let Ok(pinned) = pinned_address(&endpoint, self.allow_local).await else { return Ok(()) };
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

/// The endpoint rules: HTTPS, on a host that is not private, loopback or
/// link-local (both, with `allow_local`, for tests on loopback).
pub(crate) fn endpoint_allowed(endpoint: &str, allow_local: bool) -> Result<(), EndpointError> {
    let url = reqwest::Url::parse(endpoint).map_err(|_| EndpointError::NotHttps)?;
    if allow_local {
        return matches!(url.scheme(), "https" | "http").then_some(()).ok_or(EndpointError::NotHttps);
    }
    if url.scheme() != "https" {
        return Err(EndpointError::NotHttps);
    }
    let local = match url.host() {
        Some(url::Host::Domain(name)) => {
            name == "localhost" || name.ends_with(".localhost") || name.ends_with(".local")
        }
        Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        None => true,
    };
    if local {
        return Err(EndpointError::PrivateHost);
    }
    Ok(())
}

/// The address to connect to for `url`, checked: a name is resolved here
/// and every address it has must be public (so a public-looking name cannot
/// point inside the network), and the connection is then pinned to the
/// address checked (so it cannot resolve differently a moment later).
/// `None`: connect as usual (an address literal already checked, or local
/// addresses allowed in tests).
pub(crate) async fn pinned_address(
    url: &str,
    allow_local: bool,
) -> Result<Option<(String, std::net::SocketAddr)>, EndpointError> {
    endpoint_allowed(url, allow_local)?;
    if allow_local {
        return Ok(None);
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| EndpointError::NotHttps)?;
    let Some(url::Host::Domain(name)) = parsed.host() else { return Ok(None) };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<std::net::SocketAddr> =
        tokio::net::lookup_host((name, port)).await.map_err(|_| EndpointError::Unresolvable)?.collect();
    if addresses.is_empty() {
        return Err(EndpointError::Unresolvable);
    }
    if addresses.iter().any(|a| !is_public(a.ip())) {
        return Err(EndpointError::PrivateHost);
    }
    Ok(Some((name.to_owned(), addresses[0])))
}

/// Whether an address is on the public internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 0
                || v4.octets()[0] >= 240
                || v4.octets()[0] == 198 && (18..20).contains(&v4.octets()[1])
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            // Also NAT64 (64:ff9b::/96) and 6to4 (2002::/16), which reach IPv4 inside.
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2002
                || (first == 0x64 && v6.segments()[1] == 0xff9b))
                && v6.to_ipv4_mapped().is_none_or(|v4| is_public(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_endpoints_on_public_hosts_are_used() {
        for refused in [
            "http://push.example.com/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.1/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://localhost/x",
            "https://100.64.0.1/x",
            "https://0.0.0.1/x",
            "https://198.18.0.1/x",
            "https://240.0.0.1/x",
            "https://[64:ff9b::a00:1]/x",
            "https://[2002:a00:1::]/x",
            "not a url",
        ] {
            assert!(endpoint_allowed(refused, false).is_err(), "{refused}");
        }
        assert!(endpoint_allowed("https://fcm.googleapis.com/fcm/send/abc", false).is_ok());
        assert!(endpoint_allowed("https://updates.push.services.mozilla.com/wpush/v2/abc", false).is_ok());
        assert!(endpoint_allowed("http://127.0.0.1:9/x", true).is_ok(), "tests on loopback");
        assert!(endpoint_allowed("ftp://127.0.0.1/x", true).is_err());
    }

    #[tokio::test]
    async fn a_name_is_resolved_and_refused_when_it_points_inside() {
        // This machine's own name passes the check of the name as written;
        // what it resolves to decides (here, usually, a loopback or private
        // address: refused).
        let output = std::process::Command::new("hostname").output().expect("hostname runs");
        let name = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        let url = format!("https://{name}/x");
        assert!(endpoint_allowed(&url, false).is_ok(), "{url}");
        let resolved: Vec<_> =
            tokio::net::lookup_host((name.as_str(), 443)).await.expect("the host's own name resolves").collect();
        let inside = resolved.iter().any(|a| !is_public(a.ip()));
        match pinned_address(&url, false).await {
            Err(EndpointError::PrivateHost) => assert!(inside, "{resolved:?}"),
            Ok(Some((pinned_name, address))) => {
                assert!(!inside && pinned_name == name && resolved.contains(&address), "{resolved:?}")
            }
            other => panic!("{url}: {other:?}"),
        }
        assert_eq!(pinned_address("https://no-such-host.invalid/x", false).await, Err(EndpointError::Unresolvable));
        assert_eq!(pinned_address("https://127.0.0.1/x", false).await, Err(EndpointError::PrivateHost));
        assert_eq!(pinned_address("http://127.0.0.1:9/x", true).await, Ok(None), "tests on loopback connect as usual");
    }
}
