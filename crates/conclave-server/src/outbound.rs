//! Requests the server makes to addresses someone else gave it (a
//! browser's Web Push endpoint, a source an organisation watches): only
//! public HTTPS hosts, checked as written and again once resolved, and the
//! connection pinned to the address checked, so nobody can point the server
//! at its own network.

use std::net::IpAddr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutboundError {
    #[error("the address must be an https:// URL")]
    NotHttps,
    #[error("the address must be on a public host, not a private or loopback one")]
    PrivateHost,
    #[error("the address's host name does not resolve")]
    Unresolvable,
}

/// The rules for an address as written: HTTPS, on a host that is not
/// private, loopback or link-local (both, with `allow_local`, for tests on
/// loopback).
pub fn allowed(endpoint: &str, allow_local: bool) -> Result<(), OutboundError> {
    let url = reqwest::Url::parse(endpoint).map_err(|_| OutboundError::NotHttps)?;
    if allow_local {
        return matches!(url.scheme(), "https" | "http").then_some(()).ok_or(OutboundError::NotHttps);
    }
    if url.scheme() != "https" {
        return Err(OutboundError::NotHttps);
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
        return Err(OutboundError::PrivateHost);
    }
    Ok(())
}

/// The address to connect to for `url`, checked: a name is resolved here
/// and every address it has must be public (so a public-looking name cannot
/// point inside the network), and the connection is then pinned to the
/// address checked (so it cannot resolve differently a moment later).
/// `None`: connect as usual (an address literal already checked, or local
/// addresses allowed in tests).
pub async fn pinned_address(
    url: &str,
    allow_local: bool,
) -> Result<Option<(String, std::net::SocketAddr)>, OutboundError> {
    allowed(url, allow_local)?;
    if allow_local {
        return Ok(None);
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| OutboundError::NotHttps)?;
    let Some(url::Host::Domain(name)) = parsed.host() else { return Ok(None) };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<std::net::SocketAddr> =
        tokio::net::lookup_host((name, port)).await.map_err(|_| OutboundError::Unresolvable)?.collect();
    if addresses.is_empty() {
        return Err(OutboundError::Unresolvable);
    }
    if addresses.iter().any(|a| !is_public(a.ip())) {
        return Err(OutboundError::PrivateHost);
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
            assert!(allowed(refused, false).is_err(), "{refused}");
        }
        assert!(allowed("https://fcm.googleapis.com/fcm/send/abc", false).is_ok());
        assert!(allowed("https://updates.push.services.mozilla.com/wpush/v2/abc", false).is_ok());
        assert!(allowed("http://127.0.0.1:9/x", true).is_ok(), "tests on loopback");
        assert!(allowed("ftp://127.0.0.1/x", true).is_err());
    }

    #[tokio::test]
    async fn a_name_is_resolved_and_refused_when_it_points_inside() {
        // This machine's own name passes the check of the name as written;
        // what it resolves to decides (here, usually, a loopback or private
        // address: refused).
        let output = std::process::Command::new("hostname").output().expect("hostname runs");
        let name = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        let url = format!("https://{name}/x");
        assert!(allowed(&url, false).is_ok(), "{url}");
        let resolved: Vec<_> =
            tokio::net::lookup_host((name.as_str(), 443)).await.expect("the host's own name resolves").collect();
        let inside = resolved.iter().any(|a| !is_public(a.ip()));
        match pinned_address(&url, false).await {
            Err(OutboundError::PrivateHost) => assert!(inside, "{resolved:?}"),
            Ok(Some((pinned_name, address))) => {
                assert!(!inside && pinned_name == name && resolved.contains(&address), "{resolved:?}")
            }
            other => panic!("{url}: {other:?}"),
        }
        assert_eq!(pinned_address("https://no-such-host.invalid/x", false).await, Err(OutboundError::Unresolvable));
        assert_eq!(pinned_address("https://127.0.0.1/x", false).await, Err(OutboundError::PrivateHost));
        assert_eq!(pinned_address("http://127.0.0.1:9/x", true).await, Ok(None), "tests on loopback connect as usual");
    }
}
