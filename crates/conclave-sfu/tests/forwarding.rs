//! What subscribers receive, in the simulated network.

mod network;

use std::time::Duration;

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
    let sent = net.peers[0].frames_sent();
    assert!(sent > 140, "{sent} frames sent");
    for p in &net.peers[1..] {
        let frames = network::frames_by_number(p);
        // The first frames may precede the subscriber's m-line; the rest all arrive.
        let first = *frames.keys().min().expect("frames arrive");
        let missing: Vec<u32> = (first..sent - 1).filter(|n| !frames.contains_key(n)).collect();
        assert!(missing.is_empty(), "subscriber {} missed frames {missing:?}", p.id);
        let late: Vec<(u32, u64)> = p.received.iter().copied().filter(|(_, ms)| *ms > 1).collect();
        assert!(late.is_empty(), "subscriber {} got frames late (number, ms): {late:?}", p.id);
    }
}
