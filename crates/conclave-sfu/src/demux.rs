//! Which participant a datagram on the shared UDP port belongs to.
//!
//! A peer's first packets are STUN binding requests whose USERNAME starts
//! with the ICE ufrag the server gave that participant; once one of them
//! is accepted, the source address identifies the peer for DTLS, SRTP and
//! RTCP (RFC 7983 multiplexing on one port).

/// STUN's magic cookie (RFC 5389).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const HEADER: usize = 20;
const USERNAME: u16 = 0x0006;

/// True for a STUN message by RFC 7983's first-byte range and the cookie.
pub fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER && datagram[0] < 4 && datagram[4..8] == MAGIC_COOKIE
}

/// The local (server-side) ufrag a STUN request is addressed to: the part
/// of USERNAME before the colon. `None` for anything malformed.
pub fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    if !is_stun(datagram) {
        return None;
    }
    let declared = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let body = datagram.get(HEADER..HEADER + declared)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            let (local, _) = username.split_once(':')?;
            return (!local.is_empty()).then_some(local);
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        attrs.extend_from_slice(&0x0024u16.to_be_bytes()); // PRIORITY first, as browsers send
        attrs.extend_from_slice(&4u16.to_be_bytes());
        attrs.extend_from_slice(&[0, 0, 0, 1]);
        attrs.extend_from_slice(&USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        msg.extend_from_slice(&MAGIC_COOKIE);
        msg.extend_from_slice(&[7; 12]);
        msg.extend_from_slice(&attrs);
        msg
    }

    #[test]
    fn finds_the_servers_ufrag_in_a_binding_request() {
        assert_eq!(stun_local_ufrag(&binding_request(b"srvUfrag1:cli2")), Some("srvUfrag1"));
    }

    #[test]
    fn refuses_what_is_not_a_well_formed_request() {
        assert_eq!(stun_local_ufrag(&binding_request(b"nocolon")), None);
        assert_eq!(stun_local_ufrag(&binding_request(b":cli")), None);
        let mut truncated = binding_request(b"a:b");
        truncated.truncate(30);
        assert_eq!(stun_local_ufrag(&truncated), None);
        // An RTP packet (first byte 0x80) is not STUN.
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None);
        assert!(!is_stun(&[0x16, 0xfe, 0xfd]));
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = stun_local_ufrag(&bytes);
        }

        #[test]
        fn never_panics_on_mutated_requests(at in 0usize..60, byte in any::<u8>()) {
            let mut msg = binding_request(b"abcd:efgh");
            let at = at % msg.len();
            msg[at] = byte;
            let _ = stun_local_ufrag(&msg);
        }
    }
}
