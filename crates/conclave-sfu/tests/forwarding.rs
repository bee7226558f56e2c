//! What subscribers receive, in the simulated network.

mod network;

use std::time::Duration;

use conclave_proto::media::MediaSource;
use network::{camera_frames, Loss, Network, Sends};

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

/// A camera packet lost on the way in, with its retransmission, leaves
/// every subscriber holding a frame it can never complete; a browser's
/// decoder waits seconds before it asks for a keyframe. The SFU sees the
/// hole first and asks the publisher as soon as no repair can come. A
/// packet whose retransmission arrives costs no keyframe.
#[test]
fn a_packet_lost_for_good_brings_a_keyframe_within_a_second() {
    let camera = Sends::Camera { frame_bytes: 1200 };
    for for_good in [false, true] {
        let mut net = Network::new(&[camera, Sends::Nothing], Loss::default());
        assert!(net.run_until(Duration::from_secs(10), |n| camera_frames(n.peer(2), 1) > 30));
        // The subscriber's first keyframe request is long answered.
        net.run_until(Duration::from_secs(2), |_| false);
        let asked = net.peer(1).stats().keyframe_requests;
        net.lose_next_packet(1, for_good);
        let lost_at = net.now;
        let keyframe_asked = net.run_until(Duration::from_secs(3), |n| n.peer(1).stats().keyframe_requests > asked);
        assert_eq!(keyframe_asked, for_good, "a keyframe asked for a packet lost for good ({for_good}) and none else");
        assert_eq!(net.sfu.stats.keyframes_for_lost_packets, u64::from(for_good));
        if for_good {
            let waited = net.now - lost_at;
            assert!(waited <= Duration::from_secs(1), "asked {waited:?} after the loss");
        }
        // The SDK's receiver gives up on an incomplete frame after 2 s
        // (str0m's reordering window), then shows what came after it.
        let before = camera_frames(net.peer(2), 1);
        net.run_until(Duration::from_secs(3), |_| false);
        let after = camera_frames(net.peer(2), 1);
        assert!(after > before + 30, "the camera goes on (lost for good: {for_good}): {before} then {after}");
    }
}

/// A subscriber far away (560 ms each way) asks for a lost packet again
/// more than a second after the SFU forwarded it; the SFU still has it and
/// sends it again, so the subscriber's picture goes on whole instead of
/// stalling on a frame it can never complete.
#[test]
fn a_far_subscriber_still_gets_a_lost_packet_again() {
    let camera = Sends::Camera { frame_bytes: 1200 };
    let mut net = Network::new(&[camera, Sends::Nothing], Loss::default());
    net.delay.insert(2, Duration::from_millis(560));
    assert!(net.run_until(Duration::from_secs(15), |n| camera_frames(n.peer(2), 1) > 30));
    net.run_until(Duration::from_secs(2), |_| false);
    let missing = |n: &Network| n.peer(2).stats().received.get(&(1, MediaSource::Camera)).map_or(0, |t| t.missing);
    let before = missing(&net);
    net.lose_next_forwarded_packet(2);
    net.run_until(Duration::from_secs(5), |_| false);
    assert_eq!(missing(&net), before, "the lost packet came again, and no frame is missing");
    assert!(camera_frames(net.peer(2), 1) > 150, "the camera goes on");
}

/// A publisher whose link loses 5 % with a 440 ms round trip: a lost
/// packet often takes three requests to come, and the camera's top layer
/// (150 packets a second) sends str0m's window of 100 packets in less
/// time. Its lost packets would leave the window unrepaired, freezing its
/// subscribers for a keyframe every few seconds, so the SFU forwards the
/// layer below, whose window lasts. The same loss on a near link keeps
/// the top layer, as does the far link without loss.
#[test]
fn a_far_lossy_publisher_is_forwarded_in_a_layer_its_link_can_repair() {
    let camera = Sends::SimulcastCamera { frame_bytes: 6000 };
    for (far, lossy, layer) in [(false, true, 2), (true, false, 2), (true, true, 1)] {
        let loss = Loss { one_in: if lossy { 20 } else { 0 }, ..Loss::default() };
        let mut net = Network::new(&[camera, Sends::Nothing], loss);
        if far {
            net.delay.insert(1, Duration::from_millis(220));
        }
        net.run_until(Duration::from_secs(30), |_| false);
        let forwarded = net.peer(2).stats().received.get(&(1, MediaSource::Camera)).and_then(|t| t.last_layer);
        assert_eq!(forwarded, Some(layer), "far {far}, lossy {lossy}");
        assert!(camera_frames(net.peer(2), 1) > 300, "the camera moves (far {far}, lossy {lossy})");
    }
}

/// A publisher's packet lost on the way in comes a round trip of its link
/// late, repaired. Lost again on the way to a far subscriber, it would
/// come only once the subscriber saw the gap, asked, and had the answer: a
/// round trip of the subscriber's link more, past the hold a receiver
/// keeps for repairs on such links. The SFU sends a late repair twice, so
/// the second copy comes at once.
#[test]
fn a_late_repair_lost_again_on_the_way_out_comes_at_once() {
    let camera = Sends::Camera { frame_bytes: 1200 };
    let mut net = Network::new(&[camera, Sends::Nothing], Loss::default());
    net.delay.insert(1, Duration::from_millis(100));
    net.delay.insert(2, Duration::from_millis(300));
    assert!(net.run_until(Duration::from_secs(15), |n| camera_frames(n.peer(2), 1) > 30));
    net.run_until(Duration::from_secs(2), |_| false);
    let track = |n: &Network| n.peer(2).stats().received.get(&(1, MediaSource::Camera)).cloned().expect("frames");
    let before = track(&net);
    net.lose_next_packet_and_its_repair_on_the_way_to(1, 2);
    net.run_until(Duration::from_secs(4), |_| false);
    let after = track(&net);
    assert_eq!(after.missing, before.missing, "the repaired frame came");
    // 400 ms from camera to screen; the repaired frame a round trip of
    // the publisher's link more (600 ms), not the subscriber's too (1 s).
    let latest_ms = after.latency_us[before.latency_us.len()..].iter().max().expect("frames since") / 1000;
    assert!((600..800).contains(&latest_ms), "the latest frame came {latest_ms} ms after it was sent");
    assert_eq!(net.sfu.stats.late_repairs_sent_twice, 1);
}
