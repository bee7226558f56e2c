//! End-to-end encryption of a meeting, on real MLS (openmls) and SFrame:
//! members share a security code that changes whenever anyone joins or
//! leaves; members decrypt each other's frames; someone who only sees the
//! ciphertexts (the SFU's view), or who was removed and kept every key it
//! had, decrypts nothing sent afterwards.

use conclave_e2ee::mls::{GroupMember, OpenMlsMember, Processed};
use conclave_e2ee::session::E2eeSession;
use conclave_e2ee::sframe::{CipherSuite, SframeError};

const SUITE: CipherSuite = CipherSuite::Aes128GcmSha256_128;

fn device(name: &str) -> E2eeSession<OpenMlsMember> {
    E2eeSession::new(OpenMlsMember::new(name.as_bytes()).unwrap(), SUITE)
}

/// `host` adds `newcomer`; everyone else in `others` processes the commit.
fn admit(
    host: &mut E2eeSession<OpenMlsMember>,
    newcomer: &mut E2eeSession<OpenMlsMember>,
    others: &mut [&mut E2eeSession<OpenMlsMember>],
) {
    let kp = newcomer.member.key_package().unwrap();
    let commit = host.member.add(&[kp]).unwrap();
    host.confirm_commit().unwrap();
    for o in others.iter_mut() {
        assert!(matches!(o.process(&commit.commit, &mut |_| Ok(())).unwrap(), Processed::NewEpoch(_)));
    }
    newcomer.member.join(&commit.welcome.unwrap()).unwrap();
    newcomer.rekey().unwrap();
}

#[test]
fn members_share_a_code_that_changes_at_every_join_and_decrypt_each_other() {
    let mut host = device("host");
    host.member.create_group(b"meeting-1", None).unwrap();
    host.rekey().unwrap();
    let alone = host.security_code().unwrap();
    let mut ada = device("ada");
    admit(&mut host, &mut ada, &mut []);
    let two = host.security_code().unwrap();
    assert_eq!(ada.security_code().unwrap(), two, "both show the same code");
    assert_ne!(two, alone);
    let mut grace = device("grace");
    admit(&mut host, &mut grace, &mut [&mut ada]);
    let three = host.security_code().unwrap();
    assert_eq!(ada.security_code().unwrap(), three);
    assert_eq!(grace.security_code().unwrap(), three);
    assert_ne!(three, two, "a third member changes everyone's code");

    let frame = host.encrypt_frame(b"\x10 a VP8 keyframe", b"mid=1").unwrap();
    assert_eq!(ada.decrypt_frame(&frame, b"mid=1").unwrap(), b"\x10 a VP8 keyframe");
    assert_eq!(grace.decrypt_frame(&frame, b"mid=1").unwrap(), b"\x10 a VP8 keyframe");
    let back = grace.encrypt_frame(b"audio", b"mid=0").unwrap();
    assert_eq!(host.decrypt_frame(&back, b"mid=0").unwrap(), b"audio");

    // In-meeting chat as MLS application messages.
    let chat = ada.member.encrypt(b"hello, everyone").unwrap();
    match host.process(&chat, &mut |_| Ok(())).unwrap() {
        Processed::Application { plaintext, .. } => assert_eq!(plaintext, b"hello, everyone"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_sfus_view_and_a_removed_member_decrypt_nothing_new() {
    let mut host = device("host");
    host.member.create_group(b"meeting-2", None).unwrap();
    host.rekey().unwrap();
    let mut ada = device("ada");
    let mut eve = device("eve");
    admit(&mut host, &mut ada, &mut []);
    admit(&mut host, &mut eve, &mut [&mut ada]);
    let before = host.encrypt_frame(b"said while Eve was here", b"").unwrap();
    assert!(eve.decrypt_frame(&before, b"").is_ok());

    let eve_in_hosts_view = host.member.roster().into_iter().find(|(_, c)| c.identity == b"eve");
    assert_eq!(
        eve_in_hosts_view.map(|(leaf, c)| (leaf, c.signature_key)),
        Some((eve.member.leaf_index().unwrap(), eve.member.signature_key()))
    );
    // The SFU relays every byte but holds no key: nothing opens.
    let mut sfu = device("sfu");
    assert!(matches!(sfu.decrypt_frame(&before, b""), Err(SframeError::UnknownKey(_))));

    // Eve is removed. She keeps her whole state, keys included, and never
    // processes the commit (a hostile client would not).
    let eve_leaf = eve.member.leaf_index().unwrap();
    let removal = host.member.remove(&[eve_leaf]).unwrap();
    host.confirm_commit().unwrap();
    assert!(matches!(ada.process(&removal.commit, &mut |_| Ok(())).unwrap(), Processed::NewEpoch(_)));
    assert_eq!(ada.security_code(), host.security_code());
    assert_ne!(eve.security_code(), host.security_code(), "Eve's code no longer matches: she is out");
    let after = host.encrypt_frame(b"said after Eve left", b"").unwrap();
    assert_eq!(ada.decrypt_frame(&after, b"").unwrap(), b"said after Eve left");
    assert!(eve.decrypt_frame(&after, b"").is_err(), "the removed member reads nothing new");
    // Frames she still sends under her old key are not accepted either.
    let from_eve = eve.encrypt_frame(b"still here?", b"").unwrap();
    assert!(ada.decrypt_frame(&from_eve, b"").is_err());
    // Processing the commit tells her she is out, and drops her keys.
    assert_eq!(eve.process(&removal.commit, &mut |_| Ok(())).unwrap(), Processed::Removed);
    assert!(eve.decrypt_frame(&after, b"").is_err());
}

#[test]
fn a_stale_commit_is_refused_so_the_group_cannot_fork() {
    let mut host = device("host");
    host.member.create_group(b"meeting-3", None).unwrap();
    host.rekey().unwrap();
    let mut ada = device("ada");
    let mut bob = device("bob");
    admit(&mut host, &mut ada, &mut []);
    admit(&mut host, &mut bob, &mut [&mut ada]);
    // Two members commit at the same epoch; the delivery service orders the
    // host's first, and the other becomes stale for everyone.
    let first = host.member.add(&[device("carol").member.key_package().unwrap()]).unwrap();
    let second = ada.member.add(&[device("dan").member.key_package().unwrap()]).unwrap();
    assert!(matches!(bob.process(&first.commit, &mut |_| Ok(())).unwrap(), Processed::NewEpoch(_)));
    assert!(bob.process(&second.commit, &mut |_| Ok(())).is_err(), "a commit for an old epoch is refused");
}

#[test]
fn a_committer_whose_commit_is_refused_rolls_back_and_stays_in_the_group() {
    let mut host = device("host");
    host.member.create_group(b"meeting-4", None).unwrap();
    host.rekey().unwrap();
    let mut ada = device("ada");
    let mut bob = device("bob");
    admit(&mut host, &mut ada, &mut []);
    admit(&mut host, &mut bob, &mut [&mut ada]);
    let before = ada.security_code();
    // Both build a commit on the same epoch; the service orders the host's.
    let first = host.member.add(&[device("carol").member.key_package().unwrap()]).unwrap();
    let _refused = ada.member.add(&[device("dan").member.key_package().unwrap()]).unwrap();
    assert_eq!(ada.security_code(), before, "a pending commit changes nothing yet");
    ada.member.discard_commit().unwrap();
    host.confirm_commit().unwrap();
    assert!(matches!(ada.process(&first.commit, &mut |_| Ok(())).unwrap(), Processed::NewEpoch(_)));
    assert!(matches!(bob.process(&first.commit, &mut |_| Ok(())).unwrap(), Processed::NewEpoch(_)));
    assert_eq!(ada.security_code(), host.security_code(), "ada did not fork");
    assert_eq!(bob.security_code(), host.security_code());
    let frame = host.encrypt_frame(b"after the race", b"").unwrap();
    assert_eq!(ada.decrypt_frame(&frame, b"").unwrap(), b"after the race");
}
