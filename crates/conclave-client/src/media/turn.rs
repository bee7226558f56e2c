//! Just enough of a TURN client (RFC 8656) for a headless participant to
//! reach the SFU only through a relay: an allocation with long-term
//! credentials, a channel to one peer, and ChannelData both ways. Sans-IO:
//! it makes and reads datagrams; the session sends and receives them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

use hmac::{Hmac, Mac};

const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ALLOCATE: u16 = 0x0003;
const CHANNEL_BIND: u16 = 0x0009;
const SUCCESS: u16 = 0x0100;
const ERROR: u16 = 0x0110;

const USERNAME: u16 = 0x0006;
const MESSAGE_INTEGRITY: u16 = 0x0008;
const ERROR_CODE: u16 = 0x0009;
const CHANNEL_NUMBER: u16 = 0x000C;
const XOR_PEER_ADDRESS: u16 = 0x0012;
const REALM: u16 = 0x0014;
const NONCE: u16 = 0x0015;
const XOR_RELAYED_ADDRESS: u16 = 0x0016;
const REQUESTED_TRANSPORT: u16 = 0x0019;

/// The one channel this client binds (the first of the range).
pub const CHANNEL: u16 = 0x4000;

/// Allocates a relay with these credentials from a fresh socket and
/// returns its address (to check a TURN server and its credentials).
pub async fn allocate_relay(relay: &super::RelayOptions) -> std::io::Result<SocketAddr> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    let turn = allocate(&socket, relay).await?;
    Ok(turn.relay.expect("an allocation has a relayed address"))
}

/// Allocates a relay on the TURN server (answering its credential challenge).
pub(crate) async fn allocate(socket: &UdpSocket, relay: &super::RelayOptions) -> std::io::Result<TurnClient> {
    let failed = |why: String| std::io::Error::other(format!("TURN allocation at {} failed: {why}", relay.server));
    let mut turn = TurnClient::new(relay.server, &relay.username, &relay.password);
    let mut request = turn.allocate();
    let mut buf = vec![0u8; 2048];
    for _ in 0..4 {
        socket.send_to(&request, relay.server).await?;
        let (n, _) = tokio::time::timeout(Duration::from_secs(3), socket.recv_from(&mut buf))
            .await
            .map_err(|_| failed("no answer".into()))??;
        match turn.handle(&buf[..n]) {
            Some(TurnEvent::Send(next)) => request = next,
            Some(TurnEvent::Allocated(_)) => return Ok(turn),
            Some(TurnEvent::Failed(why)) => return Err(failed(why)),
            Some(TurnEvent::ChannelBound) | None => return Err(failed("unexpected answer".into())),
        }
    }
    Err(failed("too many challenges".into()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEvent {
    /// Send this request next (the server asked for credentials).
    Send(Vec<u8>),
    Allocated(SocketAddr),
    ChannelBound,
    Failed(String),
}

pub struct TurnClient {
    pub server: SocketAddr,
    username: String,
    password: String,
    realm: Option<String>,
    nonce: Option<String>,
    /// The request waiting for an answer: (type, transaction id, peer).
    outstanding: Option<(u16, [u8; 12], Option<SocketAddr>)>,
    pub relay: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    pub bound: bool,
}

impl TurnClient {
    pub fn new(server: SocketAddr, username: &str, password: &str) -> Self {
        Self {
            server,
            username: username.to_owned(),
            password: password.to_owned(),
            realm: None,
            nonce: None,
            outstanding: None,
            relay: None,
            peer: None,
            bound: false,
        }
    }

    /// The first Allocate request (unauthenticated; the server answers 401
    /// with its realm and nonce).
    pub fn allocate(&mut self) -> Vec<u8> {
        self.request(ALLOCATE, None)
    }

    /// Binds the channel to `peer` (which also permits it).
    pub fn bind(&mut self, peer: SocketAddr) -> Vec<u8> {
        self.peer = Some(peer);
        self.request(CHANNEL_BIND, Some(peer))
    }

    fn request(&mut self, kind: u16, peer: Option<SocketAddr>) -> Vec<u8> {
        let tid: [u8; 12] = rand::random();
        self.outstanding = Some((kind, tid, peer));
        let mut attrs = Vec::new();
        if kind == ALLOCATE {
            push_attr(&mut attrs, REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        }
        if let Some(peer) = peer {
            push_attr(&mut attrs, CHANNEL_NUMBER, &[(CHANNEL >> 8) as u8, CHANNEL as u8, 0, 0]);
            push_attr(&mut attrs, XOR_PEER_ADDRESS, &xor_address(peer));
        }
        let authenticated = self.realm.is_some() && self.nonce.is_some();
        if authenticated {
            push_attr(&mut attrs, USERNAME, self.username.as_bytes());
            push_attr(&mut attrs, REALM, self.realm.as_deref().unwrap_or_default().as_bytes());
            push_attr(&mut attrs, NONCE, self.nonce.as_deref().unwrap_or_default().as_bytes());
        }
        let mut msg = header(kind, attrs.len() + if authenticated { 24 } else { 0 }, &tid);
        msg.extend_from_slice(&attrs);
        if authenticated {
            let key = md5::compute(format!(
                "{}:{}:{}",
                self.username,
                self.realm.as_deref().unwrap_or_default(),
                self.password
            ));
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key.0).expect("HMAC takes any key length");
            mac.update(&msg);
            let digest = mac.finalize().into_bytes();
            push_attr(&mut msg, MESSAGE_INTEGRITY, &digest);
        }
        msg
    }

    /// True for a STUN message from the TURN server (a response to us).
    pub fn is_control(&self, datagram: &[u8]) -> bool {
        datagram.len() >= 20 && datagram[0] < 4 && datagram[4..8] == MAGIC
    }

    /// Reads a response from the TURN server.
    pub fn handle(&mut self, datagram: &[u8]) -> Option<TurnEvent> {
        let (kind, tid, _) = self.outstanding?;
        if datagram.len() < 20 || datagram[8..20] != tid {
            return None;
        }
        let class = u16::from_be_bytes([datagram[0], datagram[1]]);
        let attrs = attributes(datagram)?;
        if class == kind | ERROR {
            let code = attrs.iter().find(|(t, _)| *t == ERROR_CODE).map(|(_, v)| {
                let v = *v;
                if v.len() >= 4 {
                    u16::from(v[2]) * 100 + u16::from(v[3])
                } else {
                    0
                }
            });
            let text =
                |t: u16| attrs.iter().find(|(a, _)| *a == t).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
            // 401: credentials wanted; 438: stale nonce. Retry once each way.
            if matches!(code, Some(401) | Some(438)) && (self.realm.is_none() || code == Some(438)) {
                self.realm = text(REALM).or(self.realm.take());
                self.nonce = text(NONCE);
                let peer = self.outstanding.and_then(|(_, _, p)| p);
                return Some(TurnEvent::Send(self.request(kind, peer)));
            }
            self.outstanding = None;
            return Some(TurnEvent::Failed(format!("TURN error {code:?}")));
        }
        if class != kind | SUCCESS {
            return None;
        }
        self.outstanding = None;
        match kind {
            ALLOCATE => {
                let (_, v) = attrs.iter().find(|(t, _)| *t == XOR_RELAYED_ADDRESS)?;
                let relay = parse_xor_address(v)?;
                self.relay = Some(relay);
                Some(TurnEvent::Allocated(relay))
            }
            _ => {
                self.bound = true;
                Some(TurnEvent::ChannelBound)
            }
        }
    }

    /// Wraps a datagram for the bound peer as ChannelData.
    pub fn wrap(&self, payload: &[u8]) -> Option<Vec<u8>> {
        if !self.bound {
            return None;
        }
        let mut out = Vec::with_capacity(4 + payload.len() + 3);
        out.extend_from_slice(&CHANNEL.to_be_bytes());
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(payload);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        Some(out)
    }

    /// The peer's datagram inside ChannelData from the server.
    pub fn unwrap<'a>(&self, datagram: &'a [u8]) -> Option<(SocketAddr, &'a [u8])> {
        if datagram.len() < 4 || u16::from_be_bytes([datagram[0], datagram[1]]) != CHANNEL {
            return None;
        }
        let len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
        Some((self.peer?, datagram.get(4..4 + len)?))
    }
}

fn header(kind: u16, len: usize, tid: &[u8; 12]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(20 + len);
    msg.extend_from_slice(&kind.to_be_bytes());
    msg.extend_from_slice(&(len as u16).to_be_bytes());
    msg.extend_from_slice(&MAGIC);
    msg.extend_from_slice(tid);
    msg
}

/// Appends an attribute and, for MESSAGE-INTEGRITY, fixes nothing else: the
/// header's length already counts it (RFC 8489 §14.5).
fn push_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn attributes(msg: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let len = u16::from_be_bytes([msg[2], msg[3]]) as usize;
    let body = msg.get(20..20 + len)?;
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        out.push((kind, body.get(at + 4..at + 4 + len)?));
        at += 4 + len.div_ceil(4) * 4;
    }
    Some(out)
}

fn xor_address(addr: SocketAddr) -> Vec<u8> {
    let IpAddr::V4(ip) = addr.ip() else { unimplemented!("IPv6 relays") };
    let port = addr.port() ^ 0x2112;
    let mut out = vec![0, 0x01];
    out.extend_from_slice(&port.to_be_bytes());
    for (b, m) in ip.octets().iter().zip(MAGIC) {
        out.push(b ^ m);
    }
    out
}

fn parse_xor_address(v: &[u8]) -> Option<SocketAddr> {
    if v.len() < 8 || v[1] != 0x01 {
        return None;
    }
    let port = u16::from_be_bytes([v[2], v[3]]) ^ 0x2112;
    let ip: [u8; 4] = std::array::from_fn(|i| v[4 + i] ^ MAGIC[i]);
    Some(SocketAddr::new(IpAddr::from(ip), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_xored_with_the_cookie() {
        let addr: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        assert_eq!(parse_xor_address(&xor_address(addr)), Some(addr));
        // RFC 5769 §2.2's XOR-MAPPED-ADDRESS for 192.0.2.1:32853.
        assert_eq!(xor_address(addr), [0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43]);
    }

    #[test]
    fn channel_data_round_trips() {
        let mut c = TurnClient::new("127.0.0.1:3478".parse().unwrap(), "u", "p");
        assert_eq!(c.wrap(b"x"), None, "nothing is sent before the channel is bound");
        c.peer = Some("127.0.0.1:9".parse().unwrap());
        c.bound = true;
        let wrapped = c.wrap(b"hello").unwrap();
        assert_eq!(wrapped.len() % 4, 0);
        assert_eq!(c.unwrap(&wrapped), Some(("127.0.0.1:9".parse().unwrap(), &b"hello"[..])));
        assert_eq!(c.unwrap(&[0x40, 0, 0, 9, 1]), None, "a truncated frame is refused");
    }
}
