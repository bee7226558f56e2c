//! The floor of this machine for an SFU: the CPU time per packet of the
//! least a forwarder must do, measured on one thread:
//! `cargo bench -p conclave-sfu --bench floor`.
//!
//! A generator thread sends SRTP-sized packets (1,200 bytes, AES-256-GCM
//! sealed) to the floor's socket; the floor thread receives them in batches
//! of 64 (`recvmmsg`), opens each (decrypt and check the tag), seals it again
//! under another key (as for a subscriber), and sends the batch on
//! (`sendmmsg`) to a sink thread. Reported: the floor thread's own CPU time
//! (`getrusage(RUSAGE_THREAD)`) per packet forwarded, the median of 5 runs.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

const PACKET: usize = 1200;
const BATCH: usize = 64;
const RUN: Duration = Duration::from_secs(2);

fn thread_cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn sockaddr(addr: std::net::SocketAddr) -> libc::sockaddr_in {
    let std::net::SocketAddr::V4(v4) = addr else { panic!("IPv4 loopback") };
    // SAFETY: sockaddr_in is plain data; zero is a valid start.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as u16;
    sa.sin_port = v4.port().to_be();
    sa.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) };
    sa
}

/// One run: packets forwarded and the floor thread's CPU per packet.
fn run() -> (u64, Duration) {
    let floor = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let source = UdpSocket::bind("127.0.0.1:0").unwrap();
    floor.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let (floor_addr, sink_addr) = (floor.local_addr().unwrap(), sink.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));

    let gen_stop = stop.clone();
    let generator = std::thread::spawn(move || {
        let ingress = Aes256Gcm::new_from_slice(&[1; 32]).unwrap();
        let mut packet = vec![0x5a; PACKET - 16];
        let tag = ingress.encrypt_in_place_detached(Nonce::from_slice(&[3; 12]), b"", &mut packet).unwrap();
        packet.extend_from_slice(&tag);
        while !gen_stop.load(Ordering::Relaxed) {
            for _ in 0..BATCH {
                let _ = source.send_to(&packet, floor_addr);
            }
        }
    });
    let sink_stop = stop.clone();
    let drain = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !sink_stop.load(Ordering::Relaxed) {
            let _ = sink.recv_from(&mut buf);
        }
    });

    let ingress = Aes256Gcm::new_from_slice(&[1; 32]).unwrap();
    let egress = Aes256Gcm::new_from_slice(&[2; 32]).unwrap();
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let dest = sockaddr(sink_addr);
    let fd = floor.as_raw_fd();
    let start_cpu = thread_cpu();
    let started = Instant::now();
    let mut forwarded = 0u64;
    while started.elapsed() < RUN {
        let mut iovecs: Vec<libc::iovec> =
            bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() }).collect();
        let mut msgs: Vec<libc::mmsghdr> = iovecs
            .iter_mut()
            .map(|iov| {
                // SAFETY: mmsghdr is plain data; zero is a valid start.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        // SAFETY: every header points at a buffer that outlives the call.
        let n =
            unsafe { libc::recvmmsg(fd, msgs.as_mut_ptr(), BATCH as u32, libc::MSG_WAITFORONE, std::ptr::null_mut()) };
        if n <= 0 {
            continue;
        }
        let lens: Vec<usize> = msgs[..n as usize].iter().map(|m| m.msg_len as usize).collect();
        let mut ok = Vec::with_capacity(lens.len());
        for (buf, &len) in bufs.iter_mut().zip(&lens) {
            let (body, tag) = buf[..len].split_at_mut(len - 16);
            let tag = Tag::clone_from_slice(tag);
            if ingress.decrypt_in_place_detached(Nonce::from_slice(&[3; 12]), b"", body, &tag).is_err() {
                continue;
            }
            let sealed = egress.encrypt_in_place_detached(Nonce::from_slice(&[4; 12]), b"", body).unwrap();
            buf[len - 16..len].copy_from_slice(&sealed);
            ok.push(len);
        }
        let mut out_iov: Vec<libc::iovec> = bufs
            .iter_mut()
            .zip(&ok)
            .map(|(b, len)| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: *len })
            .collect();
        let mut out: Vec<libc::mmsghdr> = out_iov
            .iter_mut()
            .map(|iov| {
                // SAFETY: as above.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = iov;
                h.msg_hdr.msg_iovlen = 1;
                h.msg_hdr.msg_name = (&dest as *const libc::sockaddr_in).cast_mut().cast();
                h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                h
            })
            .collect();
        // SAFETY: buffers and the destination address outlive the call.
        let sent = unsafe { libc::sendmmsg(fd, out.as_mut_ptr(), out.len() as u32, 0) };
        forwarded += sent.max(0) as u64;
    }
    let cpu = thread_cpu() - start_cpu;
    stop.store(true, Ordering::Relaxed);
    generator.join().unwrap();
    drain.join().unwrap();
    (forwarded, cpu / forwarded.max(1) as u32)
}

fn main() {
    let mut runs: Vec<(u64, Duration)> = (0..5).map(|_| run()).collect();
    runs.sort_by_key(|r| r.1);
    println!(
        "floor: UDP recvmmsg + AES-256-GCM open + seal + sendmmsg, {PACKET}-byte packets, batches of {BATCH}: \
         median {:.2} µs CPU per packet (min {:.2}, max {:.2}; {} packets in the median run)",
        runs[2].1.as_secs_f64() * 1e6,
        runs[0].1.as_secs_f64() * 1e6,
        runs[4].1.as_secs_f64() * 1e6,
        runs[2].0
    );
}
