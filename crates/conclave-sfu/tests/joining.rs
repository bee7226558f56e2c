//! Participants joining the SFU at once, in the simulated network.

mod network;

use std::time::Duration;

use conclave_sfu::Command;
use network::{address_of, Loss, Network, Sends};

/// One publisher and 39 participants without camera or microphone, over
/// a network losing what `loss` says; those never connected, with what
/// their sessions did.
fn join(loss: Loss, within: Duration) -> Vec<String> {
    let mut sends = vec![Sends::Microphone];
    sends.extend([Sends::Nothing; 39]);
    let mut net = Network::new(&sends, loss);
    net.run_until(within, Network::all_connected);
    net.peers
        .iter()
        .filter(|p| !p.connected())
        .map(|p| {
            let s = p.stats();
            format!(
                "participant {}: {} SDP messages, {} datagrams sent, {} received",
                p.id, s.negotiations, s.datagrams_sent, s.datagrams_received
            )
        })
        .collect()
}

#[test]
fn every_listen_only_participant_connects() {
    let down = join(Loss::default(), Duration::from_secs(10));
    assert!(down.is_empty(), "never connected: {down:?}");
}

/// A lost handshake flight is sent again: with OpenSSL's own DTLS, which
/// str0m never asked to retransmit, one lost datagram left a connection
/// with ICE completed and no DTLS for good (seen under load as peers that
/// never came up). Every peer's first handshake datagram is lost each way,
/// and one datagram in 50 besides.
#[test]
fn participants_connect_through_loss() {
    let loss = Loss { one_in: 50, first_handshake_datagram: true };
    let down = join(loss, Duration::from_secs(60));
    assert!(down.is_empty(), "never connected: {down:?}");
}

/// A participant whose app vanished keeps its session until the meeting
/// says it left. A newcomer whose datagrams come from the same address
/// (its port reused) connects meanwhile, and its media keeps flowing when
/// the old session goes.
#[test]
fn a_reused_address_belongs_to_the_session_checking_from_it() {
    let mut net = Network::new(&[Sends::Camera { frame_bytes: 1000 }, Sends::Nothing], Loss::default());
    assert!(net.run_until(Duration::from_secs(5), Network::all_connected));
    net.vanish(2);
    net.join(3, Sends::Nothing, address_of(2));
    assert!(net.run_until(Duration::from_secs(5), Network::all_connected), "the newcomer connects");
    net.sfu.handle_command(net.now, Command::Leave { meeting: "m".into(), participant: 2 });
    let before = net.peer(3).frames_received();
    net.run_until(Duration::from_secs(2), |_| false);
    let after = net.peer(3).frames_received();
    assert!(after > before + 50, "camera frames after the old session left: {}", after - before);
}

/// Checks that name a publisher's session (ufrags travel in the clear) but
/// lack its ICE password, from ten other addresses, leave its routing
/// alone: its camera still reaches the subscriber.
#[test]
fn forged_checks_do_not_take_a_sessions_address() {
    let mut net = Network::new(&[Sends::Camera { frame_bytes: 1000 }, Sends::Nothing], Loss::default());
    assert!(net.run_until(Duration::from_secs(5), Network::all_connected));
    let forged = net.forged_check(1);
    for n in 0..10u16 {
        let from = format!("203.0.113.9:{}", 40_000 + n).parse().unwrap();
        net.sfu.handle_datagram(net.now, from, &forged);
    }
    let before = net.peer(2).frames_received();
    net.run_until(Duration::from_secs(2), |_| false);
    // Two seconds of a 30 fps camera, all of it.
    let got = net.peer(2).frames_received() - before;
    assert!(got >= 59, "camera frames in the two seconds after the forged checks: {got}");
}
