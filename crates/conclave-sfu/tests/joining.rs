//! Participants joining the SFU at once, in the simulated network.

mod network;

use std::time::Duration;

use network::{Network, Sends};

/// One publisher and 39 participants without camera or microphone, over
/// a network losing one datagram in `lose_one_in`; those never connected.
fn join(lose_one_in: u64, within: Duration) -> Vec<(u64, Option<str0m::IceConnectionState>)> {
    let mut sends = vec![Sends::Microphone];
    sends.extend([Sends::Nothing; 39]);
    let mut net = Network::new(&sends, lose_one_in);
    net.run_until(within, Network::all_connected);
    net.peers.iter().filter(|p| !p.connected).map(|p| (p.id, p.ice)).collect()
}

#[test]
fn every_listen_only_participant_connects() {
    let down = join(0, Duration::from_secs(10));
    assert!(down.is_empty(), "never connected: {down:?}");
}

/// A lost handshake flight is sent again: with OpenSSL's own DTLS, which
/// str0m never asked to retransmit, one lost datagram left a connection
/// with ICE completed and no DTLS for good (seen under load as peers that
/// never came up).
#[test]
fn participants_connect_through_loss() {
    let down = join(5, Duration::from_secs(60));
    assert!(down.is_empty(), "never connected: {down:?}");
}
