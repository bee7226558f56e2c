//! Devices' agents against the server's real delivery service
//! (`conclave_room::MlsDelivery`): a committer whose commit loses a race
//! discards it, follows the winner's epoch, builds its commit again, and
//! every device ends with the same keys. Devices join only with the
//! server's credential for their key; an account back on another device is
//! shown to everyone.

use std::collections::{BTreeMap, BTreeSet};

use conclave_e2ee::agent::{AgentEvent, E2eeAgent, MemberInfo};
use conclave_e2ee::credential::KnownDevices;
use conclave_e2ee::mls::{GroupMember, OpenMlsMember};
use conclave_proto::credential::{DeviceCredential, SignedCredential};
use conclave_proto::signal::{ClientMessage, ParticipantId, ServerMessage};
use conclave_room::delivery::MlsDelivery;
use data_encoding::BASE64;
use ed25519_dalek::{Signer, SigningKey};

type Agent = E2eeAgent<OpenMlsMember>;

fn agent() -> Agent {
    E2eeAgent::for_device(None, KnownDevices::default()).unwrap()
}

/// The server's credential authority, as the meeting actor runs it.
fn vouch(authority: &SigningKey, participant_id: ParticipantId, signature_key: &str) -> ServerMessage {
    let body = serde_json::to_string(&DeviceCredential {
        meeting_id: "m-1".into(),
        participant_id,
        user_id: Some(format!("user-{}", participant_id % 100)),
        display_name: format!("Person {participant_id}"),
        signature_key: signature_key.into(),
        issued_at_ms: 0,
    })
    .unwrap();
    let signature = BASE64.encode(&authority.sign(&SignedCredential::signing_input(&body)).to_bytes());
    ServerMessage::E2eeCredential {
        credential: BASE64.encode(&SignedCredential { body, signature }.to_bytes()),
        authority: BASE64.encode(authority.verifying_key().as_bytes()),
    }
}

const AUTHORITY: [u8; 32] = [7; 32];

/// Mallory's KeyPackage: her credential claims `participant_id`, signed by
/// a key of her own standing in for the server's authority.
fn self_signed_key_package(participant_id: ParticipantId) -> String {
    let mut mallory = agent();
    let ClientMessage::E2eeCredentialRequest { signature_key } = mallory.start() else { unreachable!() };
    let forged = mallory.handle(&vouch(&SigningKey::from_bytes(&[9; 32]), participant_id, &signature_key)).send;
    let [ClientMessage::E2eeKeyPackage { key_package }] = forged.as_slice() else { panic!("{forged:?}") };
    key_package.clone()
}

/// What the meeting actor does with a device's message.
fn submit(
    ds: &mut MlsDelivery,
    from: ParticipantId,
    message: ClientMessage,
    admitted: &BTreeSet<ParticipantId>,
) -> Vec<(ParticipantId, ServerMessage)> {
    match message {
        ClientMessage::E2eeCredentialRequest { signature_key } => {
            vec![(from, vouch(&SigningKey::from_bytes(&AUTHORITY), from, &signature_key))]
        }
        ClientMessage::E2eeKeyPackage { key_package } => ds.key_package(from, key_package),
        ClientMessage::E2eeCommit { epoch, commit, welcome, added, removed } => {
            ds.commit(from, epoch, commit, welcome, added, removed, admitted)
        }
        ClientMessage::E2eeApplication { message } => ds.application(from, message),
        other => panic!("not an E2EE message: {other:?}"),
    }
}

struct Meeting {
    ds: MlsDelivery,
    agents: BTreeMap<ParticipantId, Agent>,
    admitted: BTreeSet<ParticipantId>,
}

impl Meeting {
    /// Delivers messages until nothing more is sent; returns the events.
    fn run(&mut self, mut outbox: Vec<(ParticipantId, ServerMessage)>) -> Vec<(ParticipantId, AgentEvent)> {
        let mut events = Vec::new();
        while !outbox.is_empty() {
            let mut next = Vec::new();
            for (to, message) in outbox {
                let handled = self.agents.get_mut(&to).unwrap().handle(&message);
                events.extend(handled.events.into_iter().map(|e| (to, e)));
                for reply in handled.send {
                    next.extend(submit(&mut self.ds, to, reply, &self.admitted));
                }
            }
            outbox = next;
        }
        events
    }

    fn new() -> Self {
        Self { ds: MlsDelivery::default(), agents: BTreeMap::new(), admitted: BTreeSet::new() }
    }

    /// A device is admitted: it gets its credential, and its KeyPackage
    /// goes to the delivery service, whose requests are returned.
    fn join(&mut self, id: ParticipantId) -> Vec<(ParticipantId, ServerMessage)> {
        self.join_with(id, agent())
    }

    fn join_with(&mut self, id: ParticipantId, device: Agent) -> Vec<(ParticipantId, ServerMessage)> {
        self.admitted.insert(id);
        let request = device.start();
        self.agents.insert(id, device);
        let credential = submit(&mut self.ds, id, request, &self.admitted);
        let handled = self.agents.get_mut(&id).unwrap().handle(&credential[0].1);
        let [key_package @ ClientMessage::E2eeKeyPackage { .. }] = handled.send.as_slice() else {
            panic!("a vouched device sends its KeyPackage: {:?}", handled.send)
        };
        submit(&mut self.ds, id, key_package.clone(), &self.admitted)
    }

    fn leave(&mut self, id: ParticipantId) -> Vec<(ParticipantId, AgentEvent)> {
        self.admitted.remove(&id);
        self.agents.remove(&id);
        let out = self.ds.membership(&self.admitted);
        self.run(out)
    }

    fn code(&self, id: ParticipantId) -> String {
        self.agents[&id].session().security_code().expect("in the group")
    }
}

#[test]
fn a_commit_that_loses_the_race_is_rolled_back_and_built_again() {
    let mut m = Meeting::new();
    let out = m.join(1);
    m.run(out);
    let out = m.join(2);
    m.run(out);
    assert_eq!(m.code(1), m.code(2));

    // Carol's KeyPackage reaches the committer (1), which commits; its commit
    // is held back while member 2 adds Dan first.
    let ask_carol = m.join(3);
    let handled = m.agents.get_mut(&1).unwrap().handle(&ask_carol[0].1);
    let [held @ ClientMessage::E2eeCommit { epoch: 1, .. }] = handled.send.as_slice() else {
        panic!("the committer builds a commit on epoch 1: {:?}", handled.send)
    };
    let held = held.clone();
    assert_eq!(m.agents[&1].session().member.epoch(), Some(1), "a pending commit is not applied yet");
    let ask_dan = m.join(4);
    let [(1, dan_request)] = ask_dan.as_slice() else { panic!("{ask_dan:?}") };
    let events = m.run(vec![(2, dan_request.clone())]);
    assert!(events.contains(&(1, AgentEvent::NewEpoch(2))), "the committer follows the winner");

    // The held commit arrives late: refused as stale, discarded, built again.
    let refusal = submit(&mut m.ds, 1, held, &m.admitted);
    assert!(matches!(refusal.as_slice(), [(1, ServerMessage::E2eeRejected { epoch: 2, .. })]));
    let events = m.run(refusal);
    assert!(events.contains(&(3, AgentEvent::NewEpoch(3))), "Carol is added on the new epoch: {events:?}");
    let code = m.code(1);
    for id in [2, 3, 4] {
        assert_eq!(m.code(id), code, "device {id} has the group's keys");
    }

    // And they read each other.
    let frame = m.agents.get_mut(&3).unwrap().session_mut().encrypt_frame(b"from Carol", b"").unwrap();
    assert_eq!(m.agents.get_mut(&4).unwrap().session_mut().decrypt_frame(&frame, b"").unwrap(), b"from Carol");
    let chat = m.agents.get_mut(&4).unwrap().chat("hello").unwrap();
    let out = submit(&mut m.ds, 4, chat, &m.admitted);
    let events = m.run(out);
    assert_eq!(
        events.iter().filter(|(_, e)| matches!(e, AgentEvent::Chat { from: 4, text } if text == "hello")).count(),
        3
    );
}

#[test]
fn a_refused_commit_that_is_not_stale_is_dropped_not_retried_forever() {
    let mut m = Meeting::new();
    let out = m.join(1);
    m.run(out);
    // Bob asks to join, then leaves the room before the committer's commit
    // arrives: the service refuses the Welcome, and the committer gives up.
    let ask = m.join(2);
    let handled = m.agents.get_mut(&1).unwrap().handle(&ask[0].1);
    m.admitted.remove(&2);
    m.ds.membership(&m.admitted);
    let refusal = submit(&mut m.ds, 1, handled.send[0].clone(), &m.admitted);
    assert!(matches!(refusal.as_slice(), [(1, ServerMessage::E2eeRejected { epoch: 0, .. })]));
    let handled = m.agents.get_mut(&1).unwrap().handle(&refusal[0].1);
    assert!(handled.send.is_empty(), "no retry of a commit refused for what it is");
    assert_eq!(m.agents[&1].session().member.epoch(), Some(0), "the committer stayed at its epoch");
    let frame = m.agents.get_mut(&1).unwrap().session_mut().encrypt_frame(b"still keyed", b"");
    assert!(frame.is_ok());
}

fn roster_of(events: &[(ParticipantId, AgentEvent)], who: ParticipantId) -> Vec<MemberInfo> {
    events
        .iter()
        .rev()
        .find_map(|(to, e)| match e {
            AgentEvent::Roster(r) if *to == who => Some(r.clone()),
            _ => None,
        })
        .expect("a roster after the new epoch")
}

#[test]
fn every_member_is_vouched_for_by_the_server_and_named_by_its_credential() {
    let mut m = Meeting::new();
    let out = m.join(1);
    m.run(out);
    let out = m.join(2);
    let events = m.run(out);
    for who in [1, 2] {
        let roster = roster_of(&events, who);
        assert_eq!(roster.len(), 2);
        assert!(roster.iter().all(|r| r.verified), "{roster:?}");
        let names: Vec<_> = roster.iter().map(|r| (r.participant_id, r.display_name.as_str(), r.is_self)).collect();
        assert!(names.contains(&(Some(1), "Person 1", who == 1)) && names.contains(&(Some(2), "Person 2", who == 2)));
    }
}

#[test]
fn a_device_the_server_did_not_vouch_for_is_not_added() {
    let mut m = Meeting::new();
    let out = m.join(1);
    m.run(out);
    // Mallory signs her own credential claiming to be participant 2, with a
    // key of her own standing in for the server's authority.
    m.admitted.insert(2);
    let key_package = self_signed_key_package(2);
    let ask = m.ds.key_package(2, key_package);
    let handled = m.agents.get_mut(&1).unwrap().handle(&ask[0].1);
    assert!(handled.send.is_empty(), "the committer adds nobody on a forged credential: {:?}", handled.send);

    // Nor a genuine credential of one participant presented as another's.
    let out = m.join(3);
    m.run(out);
    let kp_of_3 = m.agents[&3].session().member.key_package().unwrap();
    let ask = m.ds.key_package(4, BASE64.encode(&kp_of_3));
    m.admitted.insert(4);
    let handled = m.agents.get_mut(&1).unwrap().handle(&ask[0].1);
    assert!(handled.send.is_empty(), "a credential naming participant 3 does not add participant 4");
    assert_eq!(m.agents[&1].session().member.members().len(), 2);
}

#[test]
fn an_account_back_on_another_device_is_shown_to_everyone() {
    let mut m = Meeting::new();
    let out = m.join(1);
    m.run(out);
    let out = m.join(2);
    let events = m.run(out);
    assert!(!events.iter().any(|(_, e)| matches!(e, AgentEvent::NewDevice { .. })), "first sightings are quiet");

    // The same account (user-2) leaves and comes back on the same device: nothing to tell.
    let kept = m.agents[&2].session().member.export_signature_key();
    m.leave(2);
    let same_device = E2eeAgent::for_device(Some(&kept), KnownDevices::default()).unwrap();
    let out = m.join_with(102, same_device);
    let events = m.run(out);
    assert!(!events.iter().any(|(_, e)| matches!(e, AgentEvent::NewDevice { .. })), "{events:?}");

    // Then on another device (a new key): the host is told, once.
    m.leave(102);
    let out = m.join(202);
    let events = m.run(out);
    let told: Vec<_> = events.iter().filter(|(_, e)| matches!(e, AgentEvent::NewDevice { .. })).collect();
    assert!(
        matches!(told.as_slice(), [(1, AgentEvent::NewDevice { participant_id: 202, display_name, .. })] if display_name == "Person 202"),
        "{told:?}"
    );
    let host = m.agents[&1].known_devices().clone();
    assert_ne!(host, KnownDevices::default(), "the host keeps what it saw, to be stored between meetings");
}

#[test]
fn a_member_added_behind_the_servers_back_is_shown_as_unverified() {
    let mut m = Meeting::new();
    let out = m.join(1);
    m.run(out);
    let out = m.join(2);
    m.run(out);
    // A rogue committer (its agent bypassed) adds Mallory, whose credential
    // is signed by a key of her own.
    let key_package = self_signed_key_package(2);
    let rogue = m.agents.get_mut(&1).unwrap().session_mut();
    let commit = rogue.member.add(&[BASE64.decode(key_package.as_bytes()).unwrap()]).unwrap();
    rogue.confirm_commit().unwrap();
    let message = ServerMessage::E2eeCommit { from: 1, epoch: 2, commit: BASE64.encode(&commit.commit) };
    let events: Vec<_> = m.agents.get_mut(&2).unwrap().handle(&message).events.into_iter().map(|e| (2, e)).collect();
    let roster = roster_of(&events, 2);
    assert_eq!(roster.len(), 3);
    let strangers: Vec<_> = roster.iter().filter(|r| !r.verified).collect();
    assert_eq!(strangers.len(), 1, "{roster:?}");
    assert_eq!(strangers[0].participant_id, Some(2), "it claims to be participant 2, and is not believed");
}
