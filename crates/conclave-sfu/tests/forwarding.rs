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

/// Every few seconds the SFU tells the meeting what it sees of each
/// session: what it forwarded to it, and its bandwidth estimate.
#[test]
fn the_sfu_reports_what_it_forwards_to_each_participant() {
    let mut sends = vec![Sends::Camera { frame_bytes: 2000 }];
    sends.extend([Sends::Nothing; 2]);
    let mut net = Network::new(&sends, Loss::default());
    assert!(net.run_until(Duration::from_secs(10), Network::all_connected));
    net.quality.clear();
    net.run_until(Duration::from_secs(11), |_| false);
    for subscriber in [2, 3] {
        let views: Vec<_> = net.quality.iter().filter(|(p, _)| *p == subscriber).map(|(_, v)| *v).collect();
        assert_eq!(views.len(), 2, "one view every 5 s");
        // 30 fps of 2,000-byte frames is 480 kbit/s of payload.
        let kbps = views[1].forwarded_kbps;
        assert!((400..=560).contains(&kbps), "subscriber {subscriber} was forwarded {kbps} kbit/s");
        assert!(views[1].estimate_kbps.is_some(), "a bandwidth estimate by then");
    }
    let publisher = net.quality.iter().find(|(p, _)| *p == 1).expect("the publisher's view").1;
    assert_eq!(publisher.forwarded_kbps, 0, "nothing is forwarded to the only camera");
}
