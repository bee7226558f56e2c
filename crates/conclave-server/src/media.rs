//! Wiring the media plane into the server: binding its UDP port, choosing
//! the address participants are told, routing its events to meetings, and
//! minting TURN credentials for joins.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::Weak;
use std::time::Duration;

use conclave_proto::media::IceServer;
use conclave_sfu::{MediaPlane, SfuConfig, SfuEvent};
use hmac::{Hmac, Mac};
use tokio::sync::mpsc;

use crate::config::{MediaConfig, TurnConfig};
use crate::state::AppState;

/// Binds the media port and starts the SFU. `http` is the bound HTTP
/// address, whose port the media port shares unless configured otherwise.
pub fn start(
    config: &MediaConfig,
    http: SocketAddr,
) -> std::io::Result<(MediaPlane, mpsc::UnboundedReceiver<SfuEvent>)> {
    let listen = config.listen.unwrap_or(http);
    let socket = UdpSocket::bind(listen)?;
    let bound = socket.local_addr()?;
    let ip =
        config.advertise.unwrap_or_else(|| if bound.ip().is_unspecified() { default_route_ip() } else { bound.ip() });
    let advertised = SocketAddr::new(ip, bound.port());
    let (events, rx) = mpsc::unbounded_channel();
    let mut sfu = SfuConfig::new(advertised, config.initial_bitrate_kbps);
    let tcp = match config.tcp_listen {
        Some(listen) => {
            let listener = TcpListener::bind(listen)?;
            let tcp_advertised = SocketAddr::new(ip, listener.local_addr()?.port());
            sfu = sfu.with_tcp(tcp_advertised);
            tracing::info!(advertised = %tcp_advertised, "media plane listening (TCP)");
            Some(listener)
        }
        None => None,
    };
    #[cfg(feature = "test-hooks")]
    let sfu = match &config.tap {
        Some(tap) => sfu.with_tap(tap.clone()),
        None => sfu,
    };
    let plane = MediaPlane::start(socket, tcp, sfu, events)?;
    tracing::info!(%advertised, "media plane listening (UDP)");
    Ok((plane, rx))
}

/// This host's address on its default route (no packet is sent), or
/// loopback when there is no route.
fn default_route_ip() -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
        Ok(socket.local_addr()?.ip())
    };
    probe().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Delivers the media plane's events to the meetings they concern, for as
/// long as the server exists.
pub async fn route_events(state: Weak<AppState>, mut events: mpsc::UnboundedReceiver<SfuEvent>) {
    while let Some(event) = events.recv().await {
        let Some(state) = state.upgrade() else { return };
        state.live.media_event(event);
    }
}

/// ICE servers for one join: each TURN server with credentials that
/// expire after the configured time.
pub fn ice_servers(turn: Option<&TurnConfig>, now_ms: i64, name: &str) -> Vec<IceServer> {
    let Some(turn) = turn else { return Vec::new() };
    let (username, credential) = turn_credentials(&turn.secret, now_ms, turn.ttl, name);
    vec![IceServer { urls: turn.urls.clone(), username: Some(username), credential: Some(credential) }]
}

/// The TURN REST API credential: username `expiry:name`, password the
/// base64 HMAC-SHA1 of the username under the shared secret.
pub fn turn_credentials(secret: &str, now_ms: i64, ttl: Duration, name: &str) -> (String, String) {
    let expiry = now_ms.max(0) as u64 / 1000 + ttl.as_secs();
    let username = format!("{expiry}:{name}");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    (username, data_encoding::BASE64.encode(&mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_follow_the_rest_api_scheme() {
        // Known answer computed independently:
        // printf '%s' '1700003600:alice' | openssl dgst -sha1 -hmac 'north' -binary | base64
        let (user, pass) = turn_credentials("north", 1_700_000_000_000, Duration::from_secs(3600), "alice");
        assert_eq!(user, "1700003600:alice");
        assert_eq!(pass, "wjwSXO2ch1B6VaLTLMy2Avn5O9o=");
    }
}
