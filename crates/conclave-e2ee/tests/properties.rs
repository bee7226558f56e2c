//! What SFrame must guarantee whatever the input: a round trip for every
//! suite, and refusal of altered frames, wrong keys, wrong metadata,
//! replays and unknown key ids.

use conclave_e2ee::sframe::{CipherSuite, SframeError, SframeReceiver, SframeSender};
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
    let frames: Vec<_> = (0..200).map(|i| sender.encrypt(&[i as u8], b"").unwrap()).collect();
    let mut receiver = SframeReceiver::default();
    receiver.add_key(suite, 9, &[3; 48]);
    assert!(receiver.decrypt(&frames[150], b"").is_ok());
    assert!(receiver.decrypt(&frames[100], b"").is_ok(), "late but within 128");
    assert!(receiver.decrypt(&frames[100], b"").is_err(), "not twice");
    assert_eq!(receiver.decrypt(&frames[10], b""), Err(SframeError::Replay(10)), "too old");
    assert!(receiver.decrypt(&frames[199], b"").is_ok());
}
