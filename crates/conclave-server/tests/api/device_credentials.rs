//! Device credentials through the real server: an account's E2EE device is
//! registered with the account the first time it is vouched for and listed
//! there, the same key later is the same device, a guest's device is vouched
//! for one meeting; every member checks every other member's credential,
//! and an account that comes back with a device key never seen for it is
//! shown to the others.

use crate::assert_problem;
use crate::in_process_and_loopback;
use crate::media::{refusal, MEDIA_WAIT};
use crate::meetings::{admit, guest_knocks, host_joins, hosted, WAIT};
use crate::support::TestServer;
use conclave_client::media::{MediaOptions, MediaParticipant};
use conclave_client::Client;
use conclave_proto::credential::SignedCredential;
use conclave_proto::media::MediaSource;
use conclave_proto::signal::*;
use conclave_proto::{Meeting, OrgRole};
use conclave_store::Engine;

fn e2ee(device_key: Option<Vec<u8>>) -> MediaOptions {
    MediaOptions { e2ee: true, e2ee_device_key: device_key, ..Default::default() }
}

/// A signed-in member joins (admitted by the host if the waiting room holds them).
async fn member_joins(
    member: &Client,
    meeting: &Meeting,
    host: &MediaParticipant,
    device_key: Option<Vec<u8>>,
) -> MediaParticipant {
    let mut conn = member.join_by_link(&meeting.link_secret, "Grace").await.unwrap();
    let id = match conn.next(WAIT).await.unwrap() {
        ServerMessage::Admitted { participant_id, .. } => participant_id,
        ServerMessage::Waiting { participant_id, .. } => {
            host.send(ClientMessage::Admit { participant_id });
            conn.wait_for("admission", WAIT, |m| matches!(m, ServerMessage::Admitted { .. })).await.unwrap();
            participant_id
        }
        other => panic!("not let in: {other:?}"),
    };
    MediaParticipant::start(conn, id, e2ee(device_key)).await.unwrap()
}

async fn until_in_group(host: &MediaParticipant, count: usize, id: ParticipantId) {
    host.wait_until("the newcomer in the host's group", MEDIA_WAIT, |s| {
        s.e2ee_roster.len() == count && s.e2ee_roster.iter().any(|m| m.participant_id == Some(id))
    })
    .await
    .unwrap();
}

in_process_and_loopback!(the_server_vouches_for_each_device_and_a_new_device_is_shown_to_everyone);
async fn the_server_vouches_for_each_device_and_a_new_device_is_shown_to_everyone() {
    let srv = TestServer::start(Engine::Sqlite).await;
    let (host, login, meeting) = hosted(&srv).await;
    let org = login.user.org_id.clone().unwrap();
    let (grace_client, grace_login) = srv.add_member(&host, &org, "grace@acme.test", OrgRole::Member).await;
    let (mut host_conn, host_id) = host_joins(&host, &meeting).await;
    let (mut ada_conn, ada_id, _) = guest_knocks(&srv, &meeting, "Ada", "127.0.9.1").await;
    admit(&mut host_conn, &mut ada_conn, ada_id).await;
    let mut host_m = MediaParticipant::start(host_conn, host_id, e2ee(None)).await.unwrap();
    let ada = MediaParticipant::start(ada_conn, ada_id, e2ee(None)).await.unwrap();
    let grace = member_joins(&grace_client, &meeting, &host_m, None).await;
    until_in_group(&host_m, 3, grace.id).await;

    // Every member is vouched for, named as the server knows them: Grace by
    // her account (and its name), Ada as a guest, in every member's view.
    for p in [&host_m, &ada, &grace] {
        let roster =
            p.wait_until("all three in the group", MEDIA_WAIT, |s| s.e2ee_roster.len() == 3).await.unwrap().e2ee_roster;
        assert!(roster.iter().all(|m| m.verified), "{roster:?}");
        let grace_seen = roster.iter().find(|m| m.participant_id == Some(grace.id)).unwrap();
        assert_eq!(grace_seen.user_id.as_deref(), Some(grace_login.user.id.as_str()));
        assert_eq!(grace_seen.display_name, "Member", "the account's name, not the one typed in the meeting");
        let ada_seen = roster.iter().find(|m| m.participant_id == Some(ada_id)).unwrap();
        assert_eq!((ada_seen.user_id.as_deref(), ada_seen.display_name.as_str()), (None, "Ada"));
        assert_eq!(roster.iter().filter(|m| m.is_self).count(), 1);
    }
    assert!(host_m.stats().e2ee_new_devices.is_empty(), "first sightings are quiet");
    // Grace's device is now one of her account's, listed there.
    let devices = grace_client.list_devices().await.unwrap().devices;
    assert_eq!(devices.len(), 1, "{devices:?}");
    let grace_key = grace.stats().e2ee_device_key;
    assert_eq!(devices[0].fingerprint, fingerprint_of(&host_m, grace.id));

    // What is not an Ed25519 key is not vouched for.
    host_m.send(ClientMessage::E2eeCredentialRequest { signature_key: data_encoding::BASE64.encode(&[7; 31]) });
    assert_eq!(refusal(&mut host_m, "e2ee_credential_request").await, "invalid");

    // Grace comes back on the same device: nothing to tell.
    let kept = grace_key;
    assert!(!kept.is_empty());
    let grace_id = grace.id;
    grace.leave().await;
    host_m.wait_until("Grace out of the group", MEDIA_WAIT, |s| s.e2ee_roster.len() == 2).await.unwrap();
    // Her device was taken out on the server's own signed word: the host's
    // commit carried out the server's proposal as the group's external
    // sender, and Ada applied it as such.
    for p in [&host_m, &ada] {
        let removed = p.wait_until("the removal seen", MEDIA_WAIT, |s| !s.e2ee_removed.is_empty()).await.unwrap();
        assert_eq!(removed.e2ee_removed, vec![(grace_id, true)]);
    }
    let grace = member_joins(&grace_client, &meeting, &host_m, Some(kept)).await;
    until_in_group(&host_m, 3, grace.id).await;
    let first_key = fingerprint_of(&host_m, grace.id);
    assert!(host_m.stats().e2ee_new_devices.is_empty(), "{:?}", host_m.stats().e2ee_new_devices);
    assert_eq!(grace_client.list_devices().await.unwrap().devices.len(), 1, "the same key is the same device");

    // Then her account opens the meeting on another device, which takes her
    // seat over: the old device's leaf goes, the new one comes in, and the
    // host and Ada are told it is Grace, on a new key.
    let laptop = member_joins(&grace_client, &meeting, &host_m, None).await;
    assert_eq!(laptop.id, grace.id, "the same seat");
    for p in [&host_m, &ada] {
        let told = p
            .wait_until("the new device shown", MEDIA_WAIT, |s| !s.e2ee_new_devices.is_empty())
            .await
            .unwrap()
            .e2ee_new_devices;
        assert_eq!(told, vec![(grace.id, "Member".to_owned())]);
        p.wait_until("Grace's new device alone in the group", MEDIA_WAIT, |s| {
            s.e2ee_roster.len() == 3 && s.e2ee_roster.iter().all(|m| m.verified)
        })
        .await
        .unwrap();
    }
    assert_ne!(fingerprint_of(&host_m, grace.id), first_key);
    // The new device has the group's keys: it and the host read each other.
    laptop
        .wait_until("the host's video, decrypted", MEDIA_WAIT, |s| s.frames_from(host_m.id, MediaSource::Camera) >= 5)
        .await
        .unwrap();
    let before = host_m.stats().frames_from(grace.id, MediaSource::Camera);
    host_m
        .wait_until("the laptop's video, decrypted", MEDIA_WAIT, |s| {
            s.frames_from(grace.id, MediaSource::Camera) >= before + 5
        })
        .await
        .unwrap();
    assert_eq!(laptop.stats().security_code, host_m.stats().security_code);
    // Her account now lists both devices; revoking the first means the
    // server vouches for its key no more.
    let devices = grace_client.list_devices().await.unwrap().devices;
    assert_eq!(devices.len(), 2);
    grace_client.revoke_device(&devices[0].id).await.unwrap();
    assert_eq!(grace_client.list_devices().await.unwrap().devices.len(), 1);
    // Each new device of an account is in the audit log: the host's and
    // Grace's two (the same key again registered nothing).
    assert_eq!(srv.audit_count("auth.device.register", "success").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_registers_lists_and_revokes_its_devices() {
    use conclave_proto::credential::DeviceOwner;
    use conclave_proto::RegisterDeviceRequest;
    let srv = TestServer::start(Engine::Sqlite).await;
    let (ada, login) = srv.org_with_owner("ada@acme.test", "Acme").await;
    let key = data_encoding::BASE64.encode(ed25519_dalek::SigningKey::from_bytes(&[4; 32]).verifying_key().as_bytes());
    let request = || RegisterDeviceRequest { signature_key: key.clone(), name: "Ada's laptop".into() };
    let registered = ada.register_device(&request()).await.unwrap();
    assert_eq!(registered.device.name, "Ada's laptop");
    // The credential names the account and this device.
    let signed = SignedCredential::from_bytes(&data_encoding::BASE64.decode(registered.credential.as_bytes()).unwrap())
        .unwrap()
        .credential()
        .unwrap();
    let owner = DeviceOwner::Account { user_id: login.user.id.clone(), device_id: registered.device.id.clone() };
    assert_eq!((signed.owner, signed.signature_key.as_str()), (owner, key.as_str()));
    // The same key again is the same device.
    assert_eq!(ada.register_device(&request()).await.unwrap().device.id, registered.device.id);
    assert_eq!(ada.list_devices().await.unwrap().devices.len(), 1);
    // Not a key, or a name that could deceive: refused.
    let bad_key = RegisterDeviceRequest { signature_key: "not a key".into(), name: "x".into() };
    assert_problem!(ada.register_device(&bad_key).await, 422, "validation-failed");
    let bad_name = RegisterDeviceRequest { signature_key: key.clone(), name: "laptop\u{202E}".into() };
    assert_problem!(ada.register_device(&bad_name).await, 422, "validation-failed");
    // Revoked: listed no more, and the server vouches for the key no more.
    ada.revoke_device(&registered.device.id).await.unwrap();
    assert!(ada.list_devices().await.unwrap().devices.is_empty());
    assert_problem!(ada.register_device(&request()).await, 409, "device-revoked");
    assert_problem!(ada.revoke_device(&registered.device.id).await, 404, "not-found");
    // Nobody else's devices are anyone's to list or revoke.
    assert_problem!(srv.client().list_devices().await, 401, "unauthenticated");
    assert_eq!(srv.audit_count("auth.device.register", "success").await, 1, "registering it again is no news");
    assert_eq!(srv.audit_count("auth.device.revoke", "success").await, 1);
}

fn fingerprint_of(p: &MediaParticipant, id: ParticipantId) -> String {
    p.stats().e2ee_roster.iter().find(|m| m.participant_id == Some(id)).expect("in the roster").fingerprint.clone()
}

/// An account holds at most so many devices; a key it has already counts as
/// the same device, and revoking one makes room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_holds_a_bounded_number_of_devices() {
    use conclave_proto::RegisterDeviceRequest;
    let srv = TestServer::start(Engine::Sqlite).await;
    let (owner, _) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let key = |i: u8| {
        let signer = ed25519_dalek::SigningKey::from_bytes(&[i; 32]);
        data_encoding::BASE64.encode(signer.verifying_key().as_bytes())
    };
    let register = |i: u8| RegisterDeviceRequest { signature_key: key(i), name: format!("device {i}") };
    let max = conclave_server::devices::MAX_DEVICES_PER_ACCOUNT as u8;
    let mut first = None;
    for i in 0..max {
        let device = owner.register_device(&register(i)).await.unwrap();
        first.get_or_insert(device.device.id);
    }
    assert_problem!(owner.register_device(&register(max)).await, 409, "conflict");
    owner.register_device(&register(0)).await.expect("a key it has is the same device");
    owner.revoke_device(&first.unwrap()).await.unwrap();
    owner.register_device(&register(max)).await.expect("room again after a revocation");
}
