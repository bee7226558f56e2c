//! An account's devices over REST: every browser or app that holds an E2EE
//! key for the account, vouched for once by the server and listed so the
//! account's owner sees (and can revoke) what speaks for them.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// One of the caller's devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct Device {
    pub id: String,
    /// What the device calls itself ("Firefox on the laptop").
    pub name: String,
    /// The device's key as people compare it: 20 hex digits in groups of four.
    pub fingerprint: String,
    pub created_at_ms: i64,
    /// The last time the device's key was vouched for.
    pub last_used_at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct DeviceList {
    pub devices: Vec<Device>,
}

/// Register this device's key with the caller's account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterDeviceRequest {
    /// The device's Ed25519 public signature key, base64.
    pub signature_key: String,
    /// 1 to 64 characters, under the display-name rule.
    pub name: String,
}

/// A registered device and the server's credential for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct DeviceRegistration {
    pub device: Device,
    /// base64 of the signed credential (see `conclave_proto::credential`).
    pub credential: String,
    /// base64 of the server's credential authority key.
    pub authority: String,
}

/// A device key as people compare it: 20 hex digits of its SHA-256, in
/// groups of four (`3f2a 90c1 …`). The server's device list and every
/// device's group roster show the same.
pub fn fingerprint(signature_key: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(signature_key);
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    hex.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).expect("hex")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn fingerprints_are_five_groups_of_four_hex_digits() {
        let print = super::fingerprint(b"a key");
        assert_eq!(print.len(), 24);
        assert!(print.split(' ').all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_hexdigit())));
        assert_ne!(print, super::fingerprint(b"another key"));
    }
}

/// `GET /api/v1/push/key`: the server's VAPID public key, a browser's
/// `applicationServerKey` when it subscribes to push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct PushKey {
    /// The uncompressed P-256 point, base64url without padding.
    pub public_key: String,
}

/// `PUT /api/v1/me/devices/{device_id}/push`: wake this device through its
/// push service while it is not connected. The push carries nothing, so
/// a subscription's encryption keys are not needed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct PushSubscriptionRequest {
    /// The push service's endpoint for this device (`PushSubscription.endpoint`).
    pub endpoint: String,
}
