//! What SFrame must guarantee whatever the input: a round trip for every
//! suite, and refusal of altered frames, wrong keys, wrong metadata,
//! replays and unknown key ids.

use conclave_e2ee::sframe::{CipherSuite, SframeError, SframeReceiver, SframeSender, REPLAY_WINDOW};
use proptest::prelude::*;

const SUITES: [u16; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

proptest! {
    #[test]
    fn frames_round_trip_and_alterations_are_refused(
        suite in 0usize..8,
        kid in any::<u64>(),
        key in proptest::collection::vec(any::<u8>(), 16..64),
        plaintext in proptest::collection::vec(any::<u8>(), 0..2000),
        metadata in proptest::collection::vec(any::<u8>(), 0..16),
        flip in any::<prop::sample::Index>(),
    ) {
        let suite = CipherSuite::from_id(SUITES[suite]).unwrap();
        let mut sender = SframeSender::new(suite, kid, &key);
        let mut receiver = SframeReceiver::default();
        receiver.add_key(suite, kid, &key);
        let frame = sender.encrypt(&plaintext, &metadata).unwrap();
        prop_assert_eq!(receiver.decrypt(&frame, &metadata).unwrap(), plaintext.clone());
        // The same frame again is a replay.
        prop_assert_eq!(receiver.decrypt(&frame, &metadata), Err(SframeError::Replay(0)));
        // Any flipped bit of the next frame, header included, is refused.
        let mut altered = sender.encrypt(&plaintext, &metadata).unwrap();
        let i = flip.index(altered.len());
        altered[i] ^= 0x01;
        prop_assert!(receiver.decrypt(&altered, &metadata).is_err());
    }

    #[test]
    fn any_bytes_are_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let mut receiver = SframeReceiver::default();
        receiver.add_key(CipherSuite::Aes128GcmSha256_128, 1, &[7; 32]);
        let _ = receiver.decrypt(&bytes, b"");
    }
}

#[test]
fn another_key_or_other_metadata_opens_nothing() {
    let suite = CipherSuite::Aes128GcmSha256_128;
    let mut sender = SframeSender::new(suite, 5, &[1; 32]);
    let frame = sender.encrypt(b"keyframe", b"mid=1").unwrap();
    let mut stranger = SframeReceiver::default();
    stranger.add_key(suite, 5, &[2; 32]);
    assert_eq!(stranger.decrypt(&frame, b"mid=1"), Err(SframeError::Authentication));
    let mut member = SframeReceiver::default();
    member.add_key(suite, 5, &[1; 32]);
    assert_eq!(member.decrypt(&frame, b"mid=2"), Err(SframeError::Authentication));
    assert_eq!(SframeReceiver::default().decrypt(&frame, b"mid=1"), Err(SframeError::UnknownKey(5)));
    member.remove_key(5);
    assert_eq!(member.decrypt(&frame, b"mid=1"), Err(SframeError::UnknownKey(5)));
}

#[test]
fn frames_may_arrive_out_of_order_within_the_window_but_not_twice() {
    let suite = CipherSuite::Aes128CtrHmacSha256_80;
    let mut sender = SframeSender::new(suite, 9, &[3; 48]);
    let total = REPLAY_WINDOW + 300;
    let frames: Vec<_> = (0..total).map(|i| sender.encrypt(&i.to_be_bytes(), b"").unwrap()).collect();
    let mut receiver = SframeReceiver::default();
    receiver.add_key(suite, 9, &[3; 48]);
    let at = |i: u64| &frames[i as usize];
    assert!(receiver.decrypt(at(250), b"").is_ok());
    assert!(receiver.decrypt(at(100), b"").is_ok(), "late but within the window");
    assert!(receiver.decrypt(at(100), b"").is_err(), "not twice");
    assert!(receiver.decrypt(at(total - 1), b"").is_ok());
    assert_eq!(receiver.decrypt(at(200), b""), Err(SframeError::Replay(200)), "too old");
    assert!(receiver.decrypt(at(total - REPLAY_WINDOW + 1), b"").is_ok(), "the window's far end");
    // A slot reused for a newer counter does not remember the older one's.
    assert!(receiver.decrypt(at(250 + REPLAY_WINDOW), b"").is_ok());
    assert!(receiver.decrypt(at(250 + REPLAY_WINDOW), b"").is_err());
}

/// One device's streams share its key and counter. A screen share's
/// keyframe that reaches a receiver a couple of seconds after the audio and
/// camera frames sealed after it must still open: dropped as a replay, it
/// would leave the share black (each new keyframe late again).
#[test]
fn a_stream_lagging_behind_the_same_devices_other_streams_still_opens() {
    let suite = CipherSuite::Aes128CtrHmacSha256_80;
    let mut sender = SframeSender::new(suite, 4, &[7; 48]);
    let mut receiver = SframeReceiver::default();
    receiver.add_key(suite, 4, &[7; 48]);
    // Two seconds at 150 frames a second: every 30th frame is the screen's,
    // and the screen's arrive two seconds late.
    let mut late = Vec::new();
    for i in 0..300u32 {
        let frame = sender.encrypt(&i.to_be_bytes(), b"").unwrap();
        if i % 30 == 0 {
            late.push(frame)
        } else {
            assert!(receiver.decrypt(&frame, b"").is_ok())
        }
    }
    for frame in late {
        assert!(receiver.decrypt(&frame, b"").is_ok(), "a late screen frame opens");
    }
}
