//! Sending many datagrams with one system call (`sendmmsg` on Linux): an
//! SFU forwards each packet to every subscriber, so a wake-up's output is
//! tens to hundreds of datagrams, and one syscall each dominated the
//! driver's time. Elsewhere, one `send_to` per datagram.

use std::io;
use str0m::net::Transmit;
use tokio::net::UdpSocket;

/// Datagrams handed to the kernel per call.
pub const BATCH: usize = 64;

/// Sends every transmit; a datagram the kernel refuses
/// (an ICMP error from an earlier send, say) is dropped and logged, and the
/// rest still go.
pub async fn send_all(socket: &UdpSocket, datagrams: &[Transmit]) {
    let mut rest = datagrams;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(BATCH)];
        match send_batch(socket, chunk).await {
            Ok(sent) => rest = &rest[sent.max(1).min(rest.len())..],
            Err(err) => {
                tracing::trace!(error = %err, to = %chunk[0].destination, "UDP send error");
                rest = &rest[1..];
            }
        }
    }
}

/// Sends a prefix of `chunk`; returns how many went (at least one, or an
/// error about the first).
#[cfg(target_os = "linux")]
async fn send_batch(socket: &UdpSocket, chunk: &[Transmit]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;

    let addresses: Vec<c_address::Address> = chunk.iter().map(|t| c_address::Address::from(t.destination)).collect();
    let fd = socket.as_raw_fd();
    loop {
        socket.writable().await?;
        let sent = socket.try_io(tokio::io::Interest::WRITABLE, || {
            // Built here, not held across the await: raw pointers are not Send.
            let mut iovecs: Vec<libc::iovec> = chunk
                .iter()
                .map(|t| libc::iovec { iov_base: t.contents.as_ptr() as *mut libc::c_void, iov_len: t.contents.len() })
                .collect();
            let mut headers: Vec<libc::mmsghdr> = addresses
                .iter()
                .zip(iovecs.iter_mut())
                .map(|(address, iovec)| {
                    // SAFETY: an all-zero msghdr is a valid empty header; the
                    // fields that matter are set just below.
                    let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    header.msg_hdr.msg_name = address.as_ptr();
                    header.msg_hdr.msg_namelen = address.len();
                    header.msg_hdr.msg_iov = iovec;
                    header.msg_hdr.msg_iovlen = 1;
                    header
                })
                .collect();
            // SAFETY: every header points into `addresses` and `iovecs`,
            // which outlive the call, and `chunk`'s buffers are borrowed
            // for its duration; the kernel only reads them.
            let n = unsafe { libc::sendmmsg(fd, headers.as_mut_ptr(), headers.len() as libc::c_uint, 0) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match sent {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

#[cfg(not(target_os = "linux"))]
async fn send_batch(socket: &UdpSocket, chunk: &[Transmit]) -> io::Result<usize> {
    socket.send_to(&chunk[0].contents, chunk[0].destination).await.map(|_| 1)
}

/// Socket addresses in the C layout `sendmmsg` takes.
#[cfg(target_os = "linux")]
mod c_address {
    use std::net::SocketAddr;

    pub enum Address {
        V4(libc::sockaddr_in),
        V6(libc::sockaddr_in6),
    }

    impl From<SocketAddr> for Address {
        fn from(addr: SocketAddr) -> Self {
            match addr {
                SocketAddr::V4(a) => Self::V4(libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                    sin_zero: [0; 8],
                }),
                SocketAddr::V6(a) => Self::V6(libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                    sin6_scope_id: a.scope_id(),
                }),
            }
        }
    }

    impl Address {
        pub fn as_ptr(&self) -> *mut libc::c_void {
            match self {
                Self::V4(a) => a as *const _ as *mut libc::c_void,
                Self::V6(a) => a as *const _ as *mut libc::c_void,
            }
        }

        pub fn len(&self) -> libc::socklen_t {
            (match self {
                Self::V4(_) => std::mem::size_of::<libc::sockaddr_in>(),
                Self::V6(_) => std::mem::size_of::<libc::sockaddr_in6>(),
            }) as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use str0m::net::Protocol;

    fn transmit(from: SocketAddr, to: SocketAddr, payload: Vec<u8>) -> Transmit {
        Transmit { proto: Protocol::Udp, source: from, destination: to, contents: payload.into() }
    }

    #[tokio::test]
    async fn every_datagram_arrives_in_order_and_a_refused_one_does_not_stop_the_rest() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let from = sender.local_addr().unwrap();
        let receivers = [UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("[::1]:0").await.unwrap()];
        let v6 = receivers[1].local_addr().unwrap();
        // An IPv4 socket cannot reach an IPv6 address: that datagram is refused.
        let mut out = vec![transmit(from, v6, b"refused".to_vec())];
        for i in 0..150u8 {
            out.push(transmit(from, receivers[0].local_addr().unwrap(), vec![i; 100 + usize::from(i)]));
        }
        send_all(&sender, &out).await;
        let mut buf = [0u8; 512];
        for i in 0..150u8 {
            let (n, _) = tokio::time::timeout(std::time::Duration::from_secs(2), receivers[0].recv_from(&mut buf))
                .await
                .expect("datagram arrives")
                .unwrap();
            assert_eq!(&buf[..n], vec![i; 100 + usize::from(i)].as_slice());
        }
    }
}
