//! What subscribers receive, in the simulated network.

mod network;

use std::time::Duration;

use conclave_proto::media::MediaSource;
use network::{Loss, Network, Sends};

/// A 1.5 Mbit/s camera (6,000-byte frames, six packets each) reaches every
/// subscriber whole and in the millisecond it was sent: forwarding is not
/// paced, so no packet waits for a bandwidth estimate to ramp up.
#[test]
fn every_frame_reaches_every_subscriber_at_once() {
    let mut sends = vec![Sends::Camera { frame_bytes: 6000 }];
    sends.extend([Sends::Nothing; 10]);
    let mut net = Network::new(&sends, Loss::default());
    assert!(net.run_until(Duration::from_secs(10), Network::all_connected));
    net.run_until(Duration::from_secs(5), |_| false);
    let publisher = net.peers[0].id;
    let sent = net.peers[0].frames_sent();
    assert!(sent > 140, "{sent} frames sent");
    for p in &net.peers[1..] {
        let camera = p.stats().from(publisher, MediaSource::Camera).expect("frames arrive");
        // The first frames may precede the subscriber's m-line; the rest
        // all arrive, up to the one still on its way.
        assert_eq!(camera.missing, 0, "subscriber {} missed frames", p.id);
        let last = u64::from(camera.last_seq().expect("frames arrive"));
        assert!(last + 1 >= sent, "subscriber {} got frames up to {last} of {sent}", p.id);
        // Sent in one simulated millisecond, read from the socket in the next.
        let late: Vec<u64> = camera.latency_us.iter().copied().filter(|us| *us > 1000).collect();
        assert!(late.is_empty(), "subscriber {} got frames late (µs): {late:?}", p.id);
    }
}
