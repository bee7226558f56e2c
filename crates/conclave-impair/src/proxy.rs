//! The tokio driver: a UDP socket clients send to, one upstream socket per
//! client (so the server tells clients apart by address, as behind a NAT),
//! a [`Link`] each way per client, and one scheduler that sends each
//! datagram when its link says.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::link::{Impairment, Link, Verdict};

/// Largest datagram relayed.
const MAX_DATAGRAM: usize = 2048;

/// What the proxy did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub relayed: u64,
    pub dropped: u64,
    pub clients: u64,
}

#[derive(Default)]
struct Shared {
    down: AtomicBool,
    /// Cleared while the links pass datagrams untouched.
    unimpaired: AtomicBool,
    relayed: AtomicU64,
    dropped: AtomicU64,
    clients: AtomicU64,
}

/// A running proxy; dropping it does not stop it (it lives as long as the
/// runtime), which suits tests and the CLI alike.
pub struct Proxy {
    local: SocketAddr,
    shared: Arc<Shared>,
}

/// A datagram waiting for its time.
struct Scheduled {
    at: Instant,
    /// Ties keep submission order.
    seq: u64,
    socket: Arc<UdpSocket>,
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Proxy {
    /// Relays between clients sending to `listen` and `upstream`, impairing
    /// the way up (client to server) with `up` and the way down with
    /// `down`; every client's links draw from `seed` and its arrival order.
    pub async fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        up: Impairment,
        down: Impairment,
        seed: u64,
    ) -> io::Result<Self> {
        let socket = Arc::new(UdpSocket::bind(listen).await?);
        let local = socket.local_addr()?;
        let shared = Arc::new(Shared::default());
        let (schedule, scheduled) = mpsc::unbounded_channel();
        tokio::spawn(send_when_due(scheduled, shared.clone()));
        tokio::spawn(relay_up(socket, upstream, up, down, seed, schedule, shared.clone()));
        Ok(Self { local, shared })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Starts (`true`) or ends an outage: both ways lose everything.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::Relaxed);
    }

    /// Applies the impairment (`true`, as it starts) or relays untouched.
    pub fn set_impaired(&self, impaired: bool) {
        self.shared.unimpaired.store(!impaired, Ordering::Relaxed);
    }

    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            relayed: self.shared.relayed.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            clients: self.shared.clients.load(Ordering::Relaxed),
        }
    }
}

/// Decides on one datagram and hands it to the scheduler.
fn submit(
    link: &mut Link,
    shared: &Shared,
    schedule: &mpsc::UnboundedSender<Scheduled>,
    seq: &mut u64,
    socket: &Arc<UdpSocket>,
    to: SocketAddr,
    bytes: &[u8],
) {
    link.set_down(shared.down.load(Ordering::Relaxed));
    link.set_impaired(!shared.unimpaired.load(Ordering::Relaxed));
    match link.submit(Instant::now(), bytes.len()) {
        Verdict::Drop => {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Verdict::DeliverAt(at) => {
            *seq += 1;
            let _ = schedule.send(Scheduled { at, seq: *seq, socket: socket.clone(), to, bytes: bytes.to_vec() });
        }
    }
}

/// Client to server: each new client gets its upstream socket and links.
async fn relay_up(
    socket: Arc<UdpSocket>,
    upstream: SocketAddr,
    up: Impairment,
    down: Impairment,
    seed: u64,
    schedule: mpsc::UnboundedSender<Scheduled>,
    shared: Arc<Shared>,
) {
    let mut clients: HashMap<SocketAddr, (Arc<UdpSocket>, Link)> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut seq = 0;
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
        let (out, link) = match clients.entry(from) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let bind: SocketAddr =
                    if upstream.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("an address");
                let Ok(out) = UdpSocket::bind(bind).await else { continue };
                let out = Arc::new(out);
                let n = shared.clients.fetch_add(1, Ordering::Relaxed);
                let client_seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(n * 2);
                tokio::spawn(relay_down(
                    out.clone(),
                    socket.clone(),
                    from,
                    Link::new(down, client_seed + 1),
                    schedule.clone(),
                    shared.clone(),
                ));
                entry.insert((out, Link::new(up, client_seed)))
            }
        };
        submit(link, &shared, &schedule, &mut seq, out, upstream, &buf[..n]);
    }
}

/// Server to one client, through that client's upstream socket.
async fn relay_down(
    out: Arc<UdpSocket>,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    mut link: Link,
    schedule: mpsc::UnboundedSender<Scheduled>,
    shared: Arc<Shared>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    // Sequence numbers only order ties within this direction.
    let mut seq = u64::MAX / 2;
    while let Ok((n, _)) = out.recv_from(&mut buf).await {
        submit(&mut link, &shared, &schedule, &mut seq, &socket, client, &buf[..n]);
        if schedule.is_closed() {
            return;
        }
    }
}

/// Sends each datagram at its time, earliest first.
async fn send_when_due(mut scheduled: mpsc::UnboundedReceiver<Scheduled>, shared: Arc<Shared>) {
    let mut queue: BinaryHeap<Reverse<Scheduled>> = BinaryHeap::new();
    loop {
        let next = queue.peek().map(|Reverse(s)| s.at);
        tokio::select! {
            received = scheduled.recv() => match received {
                Some(s) => queue.push(Reverse(s)),
                None if queue.is_empty() => return,
                None => {}
            },
            () = async {
                match next {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        let now = Instant::now();
        while queue.peek().is_some_and(|Reverse(s)| s.at <= now) {
            let Reverse(s) = queue.pop().expect("peeked");
            if s.socket.send_to(&s.bytes, s.to).await.is_ok() {
                shared.relayed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An echo server behind a proxy.
    async fn echo_behind(up: Impairment, down: Impairment) -> (Proxy, UdpSocket) {
        let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = echo.recv_from(&mut buf).await {
                let _ = echo.send_to(&buf[..n], from).await;
            }
        });
        let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), echo_addr, up, down, 42).await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(proxy.local_addr()).await.unwrap();
        (proxy, client)
    }

    #[tokio::test]
    async fn relays_both_ways_after_the_delay_asked() {
        let slow = Impairment { delay: Duration::from_millis(40), ..Impairment::default() };
        let (proxy, client) = echo_behind(slow, Impairment::default()).await;
        let sent = Instant::now();
        client.send(b"hello").await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(2), client.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert!(sent.elapsed() >= Duration::from_millis(40));
        assert_eq!(proxy.stats(), ProxyStats { relayed: 2, dropped: 0, clients: 1 });
    }

    #[tokio::test]
    async fn an_outage_cuts_both_ways_until_it_ends() {
        let (proxy, client) = echo_behind(Impairment::default(), Impairment::default()).await;
        proxy.set_down(true);
        client.send(b"lost").await.unwrap();
        let mut buf = [0u8; 16];
        assert!(tokio::time::timeout(Duration::from_millis(300), client.recv(&mut buf)).await.is_err());
        proxy.set_down(false);
        client.send(b"back").await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), client.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"back");
        assert_eq!(proxy.stats().dropped, 1);
    }
}
