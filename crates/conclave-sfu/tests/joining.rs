//! Participants joining the SFU at once, in the simulated network.

mod network;

use std::time::Duration;

use network::{Loss, Network, Sends};

/// One publisher and 39 participants without camera or microphone, over
/// a network losing what `loss` says; those never connected.
fn join(loss: Loss, within: Duration) -> Vec<(u64, Option<str0m::IceConnectionState>)> {
    let mut sends = vec![Sends::Microphone];
    sends.extend([Sends::Nothing; 39]);
    let mut net = Network::new(&sends, loss);
    net.run_until(within, Network::all_connected);
    net.peers.iter().filter(|p| !p.connected).map(|p| (p.id, p.ice)).collect()
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
