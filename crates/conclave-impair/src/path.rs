//! One endpoint's impaired network path, as a model: what the endpoint
//! sends and what reaches it pass through a [`Link`] each way and wait in
//! order of their delivery time. The proxy impairs media in front of one
//! server address; a [`Path`] impairs it at the endpoint's own socket, so
//! it works whatever the far side is and however many addresses it uses
//! (Janus gives every peer connection a port of its own).
//!
//! Sans-IO like [`Link`]: datagrams and the time go in, datagrams due come
//! out, and [`Path::poll_timeout`] says when the next one is; the caller
//! owns the socket and the clock.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::link::{Impairment, Link, Verdict};

/// A switch several paths share, so that one call cuts all of them at
/// once (an outage of the whole network a load test runs on).
#[derive(Debug, Clone, Default)]
pub struct Outage(Arc<AtomicBool>);

impl Outage {
    pub fn set_down(&self, down: bool) {
        self.0.store(down, Ordering::Relaxed);
    }

    pub fn is_down(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// How an endpoint's path is impaired: each way, its seed, and the switch
/// that cuts it.
#[derive(Debug, Clone)]
pub struct PathImpairment {
    /// What the endpoint sends.
    pub up: Impairment,
    /// What reaches the endpoint.
    pub down: Impairment,
    /// The same seed, the same losses and delays; give each endpoint its own.
    pub seed: u64,
    pub outage: Outage,
}

/// A datagram with the address on its far side (where it goes, or where it
/// came from), waiting for its delivery time.
struct Pending {
    at: Instant,
    /// Ties keep submission order.
    seq: u64,
    peer: SocketAddr,
    bytes: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// One direction: its link and what waits on it.
struct Direction {
    link: Link,
    waiting: BinaryHeap<Reverse<Pending>>,
    seq: u64,
}

impl Direction {
    fn new(impairment: Impairment, seed: u64) -> Self {
        Self { link: Link::new(impairment, seed), waiting: BinaryHeap::new(), seq: 0 }
    }

    fn submit(&mut self, now: Instant, down: bool, peer: SocketAddr, bytes: Vec<u8>) -> bool {
        self.link.set_down(down);
        match self.link.submit(now, bytes.len()) {
            Verdict::Drop => false,
            Verdict::DeliverAt(at) => {
                self.seq += 1;
                self.waiting.push(Reverse(Pending { at, seq: self.seq, peer, bytes }));
                true
            }
        }
    }

    fn poll(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        if self.waiting.peek().is_some_and(|Reverse(p)| p.at <= now) {
            let Reverse(p) = self.waiting.pop().expect("peeked");
            return Some((p.peer, p.bytes));
        }
        None
    }

    fn next_at(&self) -> Option<Instant> {
        self.waiting.peek().map(|Reverse(p)| p.at)
    }
}

/// What a path did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathStats {
    pub submitted: u64,
    pub dropped: u64,
}

/// An endpoint's two directions.
pub struct Path {
    up: Direction,
    down: Direction,
    outage: Outage,
    stats: PathStats,
}

impl Path {
    pub fn new(impairment: PathImpairment) -> Self {
        // The two directions draw from different sequences of one seed.
        let seed = impairment.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            up: Direction::new(impairment.up, seed),
            down: Direction::new(impairment.down, seed.wrapping_add(1)),
            outage: impairment.outage,
            stats: PathStats::default(),
        }
    }

    /// A datagram the endpoint sends to `to`.
    pub fn send(&mut self, now: Instant, to: SocketAddr, bytes: Vec<u8>) {
        let down = self.outage.is_down();
        let kept = self.up.submit(now, down, to, bytes);
        self.count(kept);
    }

    /// A datagram from `from` that reached the endpoint's socket.
    pub fn receive(&mut self, now: Instant, from: SocketAddr, bytes: Vec<u8>) {
        let down = self.outage.is_down();
        let kept = self.down.submit(now, down, from, bytes);
        self.count(kept);
    }

    /// The next datagram due to leave, and where to.
    pub fn poll_send(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        self.up.poll(now)
    }

    /// The next datagram due to arrive, and where from.
    pub fn poll_receive(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        self.down.poll(now)
    }

    /// When the next datagram is due either way.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.up.next_at(), self.down.next_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn stats(&self) -> PathStats {
        self.stats
    }

    fn count(&mut self, kept: bool) {
        self.stats.submitted += 1;
        if !kept {
            self.stats.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn path(up: Impairment, down: Impairment, seed: u64) -> Path {
        Path::new(PathImpairment { up, down, seed, outage: Outage::default() })
    }

    #[test]
    fn each_way_waits_its_own_delay_and_keeps_the_peer_address() {
        let up = Impairment { delay: Duration::from_millis(30), ..Impairment::default() };
        let down = Impairment { delay: Duration::from_millis(50), ..Impairment::default() };
        let mut p = path(up, down, 1);
        let t0 = Instant::now();
        p.send(t0, addr(1000), b"out".to_vec());
        p.receive(t0, addr(2000), b"in".to_vec());
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(30)));
        assert_eq!(p.poll_send(t0 + Duration::from_millis(29)), None);
        assert_eq!(p.poll_send(t0 + Duration::from_millis(30)), Some((addr(1000), b"out".to_vec())));
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_millis(50)));
        assert_eq!(p.poll_receive(t0 + Duration::from_millis(49)), None);
        assert_eq!(p.poll_receive(t0 + Duration::from_millis(50)), Some((addr(2000), b"in".to_vec())));
        assert_eq!(p.poll_timeout(), None);
        assert_eq!(p.stats(), PathStats { submitted: 2, dropped: 0 });
    }

    #[test]
    fn loses_about_the_share_asked_each_way_and_the_same_for_the_same_seed() {
        let five = Impairment { loss: 0.05, ..Impairment::default() };
        let run = |seed| {
            let mut p = path(five, five, seed);
            let t0 = Instant::now();
            let (mut out, mut back) = (Vec::new(), Vec::new());
            for k in 0..10_000u32 {
                let now = t0 + Duration::from_micros(u64::from(k) * 100);
                p.send(now, addr(1), k.to_be_bytes().to_vec());
                p.receive(now, addr(2), k.to_be_bytes().to_vec());
                out.extend(std::iter::from_fn(|| p.poll_send(now)).map(|(_, b)| b));
                back.extend(std::iter::from_fn(|| p.poll_receive(now)).map(|(_, b)| b));
            }
            (out, back)
        };
        let (out, back) = run(7);
        for way in [&out, &back] {
            assert!((9_400..9_600).contains(&way.len()), "{} of 10000 kept at 5 %", way.len());
            assert!(way.windows(2).all(|w| w[0] < w[1]), "in order, each once");
        }
        assert_ne!(out, back, "the two ways lose different datagrams");
        assert_eq!(run(7), (out, back));
        assert_ne!(run(8).0, run(7).0, "another seed, another network");
    }

    #[test]
    fn a_shared_outage_cuts_every_path_both_ways_until_it_ends() {
        let outage = Outage::default();
        let clean = Impairment::default();
        let mut paths: Vec<Path> = (0..3)
            .map(|seed| Path::new(PathImpairment { up: clean, down: clean, seed, outage: outage.clone() }))
            .collect();
        let t0 = Instant::now();
        outage.set_down(true);
        for p in &mut paths {
            p.send(t0, addr(1), b"lost".to_vec());
            p.receive(t0, addr(1), b"lost".to_vec());
            assert_eq!((p.poll_send(t0), p.poll_receive(t0)), (None, None));
            assert_eq!(p.stats().dropped, 2);
        }
        outage.set_down(false);
        for p in &mut paths {
            p.send(t0, addr(1), b"back".to_vec());
            assert_eq!(p.poll_send(t0), Some((addr(1), b"back".to_vec())));
        }
    }
}
