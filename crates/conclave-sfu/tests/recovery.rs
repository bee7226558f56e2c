//! Every fault ends where the participant's next offer is answered: a
//! session that failed inside the SFU, and a new peer connection on the same
//! seat, both get media back without anyone leaving the meeting.

mod network;

use std::time::Duration;

use conclave_proto::signal::{ErrorCode, ServerMessage};
use conclave_sfu::{Command, MeetingKey, SfuEvent};
use network::{address_of, camera_frames, Loss, Network, Sends};

const CAMERA: Sends = Sends::Camera { frame_bytes: 1200 };

/// Two cameras in a meeting, each receiving the other's.
fn two_cameras() -> Network {
    let mut net = Network::new(&[CAMERA, CAMERA], Loss::default());
    assert!(net.run_until(Duration::from_secs(10), both_see_each_other(0)));
    net
}

/// Both participants have received more than `already` frames from the other.
fn both_see_each_other(already: u64) -> impl Fn(&Network) -> bool {
    move |net| camera_frames(net.peer(1), 2) > already + 30 && camera_frames(net.peer(2), 1) > already + 30
}

#[test]
fn a_session_that_fails_in_the_sfu_is_replaced_and_media_comes_back() {
    let mut net = two_cameras();
    let faults = net.sfu.stats.peer_faults;
    net.fail_session(1);
    assert_eq!(net.sfu.stats.peer_faults, faults + 1);
    // The seat keeps a session: the participant is told, offers again,
    // and is answered.
    assert!(net.sfu.has_participant("m", 1), "the failed seat has a fresh session at once");
    let before = (camera_frames(net.peer(1), 2), camera_frames(net.peer(2), 1));
    assert!(
        net.run_until(Duration::from_secs(10), move |n| camera_frames(n.peer(1), 2) > before.0 + 30
            && camera_frames(n.peer(2), 1) > before.1 + 30),
        "media flows both ways again: participant 1 got {} frames from 2, 2 got {} from 1",
        camera_frames(net.peer(1), 2) - before.0,
        camera_frames(net.peer(2), 1) - before.1,
    );
}

#[test]
fn a_new_peer_connection_on_the_same_seat_gets_a_fresh_session() {
    let mut net = two_cameras();
    let before = (0, camera_frames(net.peer(2), 1));
    // The app closes its peer connection and opens another (its own DTLS
    // certificate, another port); the SFU never heard the old one close.
    net.new_peer_connection(1, address_of(101));
    assert!(net.run_until(Duration::from_secs(10), |n| n.peer(1).connected()), "the new connection is answered");
    assert_eq!(net.sfu.stats.sessions_replaced, 1);
    // The new session starts counting from zero.
    assert!(
        net.run_until(Duration::from_secs(10), move |n| camera_frames(n.peer(1), 2) > 30
            && camera_frames(n.peer(2), 1) > before.1 + 30),
        "media flows both ways on the new connection",
    );
}

#[test]
fn an_offer_again_on_the_same_connection_is_a_renegotiation_not_a_new_session() {
    let mut net = two_cameras();
    // A screen share adds a track: the same peer connection offers again.
    net.peers[0].session.share_screen(net.now, true);
    net.run_until(Duration::from_secs(2), |_| false);
    assert_eq!(net.sfu.stats.sessions_replaced, 0);
    assert!(net.run_until(Duration::from_secs(5), both_see_each_other(camera_frames(net.peer(1), 2))));
}

#[test]
fn an_offer_for_a_seat_without_a_session_is_refused_not_ignored() {
    let mut net = two_cameras();
    // A well-formed offer, from a seat the SFU was never told to admit.
    let mut app =
        str0m::Rtc::builder().set_crypto_provider(conclave_dtls::crypto_provider()).build(std::time::Instant::now());
    let mut changes = app.sdp_api();
    changes.add_media(str0m::media::MediaKind::Audio, str0m::media::Direction::SendRecv, None, None, None);
    let offer = changes.apply().expect("an offer").0.to_sdp_string();
    net.sfu.handle_command(
        net.now,
        Command::Offer { meeting: MeetingKey::from("m"), participant: 9, sdp: offer, tracks: Vec::new() },
    );
    let events: Vec<SfuEvent> = std::iter::from_fn(|| net.sfu.poll_event()).collect();
    let refused = events.iter().any(|e| {
        matches!(e, SfuEvent::Signal { participant: 9, message: ServerMessage::Error { code, request: Some(r), .. }, .. }
            if code == ErrorCode::InvalidMedia.as_str() && r == "media_offer")
    });
    assert!(refused, "{events:?}");
}

#[test]
fn video_comes_back_within_seconds_of_a_five_second_outage() {
    let mut net = two_cameras();
    // Participant 2's Wi-Fi drops for 5 s: nothing to or from it.
    net.cut.insert(2);
    net.run_until(Duration::from_secs(5), |_| false);
    net.cut.clear();
    let before = (camera_frames(net.peer(2), 1), camera_frames(net.peer(1), 2));
    let back = net.now;
    assert!(
        net.run_until(Duration::from_secs(3), move |n| camera_frames(n.peer(2), 1) > before.0 + 30
            && camera_frames(n.peer(1), 2) > before.1 + 30),
        "video both ways within 3 s of the network coming back: participant 2 got {} frames from 1, 1 got {} from 2",
        camera_frames(net.peer(2), 1) - before.0,
        camera_frames(net.peer(1), 2) - before.1,
    );
    eprintln!("video both ways again {:?} after the network came back", net.now - back);
    assert!(net.sfu.stats.estimates_reset >= 1, "the estimate started over");
}

/// The server's offer to a participant is lost on the way (its signaling
/// dropped and came back): after waiting for an answer long enough, the
/// server withdraws it and offers again, so the participant still gets the
/// newcomer's camera (before, the server waited for that answer forever and
/// ignored the participant's own offers meanwhile).
#[test]
fn an_offer_lost_on_the_way_is_made_again() {
    let mut net = two_cameras();
    net.lose_next_offer_to.insert(1);
    net.join(3, CAMERA, address_of(3));
    assert!(
        net.run_until(Duration::from_secs(25), |n| camera_frames(n.peer(1), 3) > 30
            && camera_frames(n.peer(2), 3) > 30),
        "both see the newcomer: 1 got {} frames from 3, 2 got {}",
        camera_frames(net.peer(1), 3),
        camera_frames(net.peer(2), 3),
    );
    assert!(net.lose_next_offer_to.is_empty(), "the offer to 1 was lost");
}
