//! Devices' agents against the server's real delivery service
//! (`conclave_room::MlsDelivery`): a commit from a committer that was
//! replaced is refused and the new committer carries on, every device ending
//! with the same keys. Devices join only with the server's credential for
//! their key; an account back on another device is shown to everyone. A
//! member that is not the committer, or a committer going beyond what the
//! server asked, changes nobody's group: the server refuses its commit, and
//! a device to which it is relayed anyway refuses it too and says so.

use std::collections::{BTreeMap, BTreeSet};

use conclave_delivery::meeting::MeetingGroup;
use conclave_delivery::ProposedCommit;
use conclave_e2ee::agent::{AgentEvent, E2eeAgent, MemberInfo};
use conclave_e2ee::credential::KnownDevices;
use conclave_e2ee::mls::{GroupMember, OpenMlsMember};
use conclave_proto::credential::{DeviceCredential, DeviceOwner, SignedCredential};
use conclave_proto::signal::{ClientMessage, ParticipantId, ServerMessage};
use data_encoding::BASE64;
use ed25519_dalek::{Signer, SigningKey};

type Agent = E2eeAgent<OpenMlsMember>;

fn agent() -> Agent {
    E2eeAgent::for_device(None, KnownDevices::default()).unwrap()
}

/// Whose device a participant's is: participants are signed in to
/// `user-<id % 100>` (so 2, 102 and 202 are one account), each device
/// registered once under its key.
fn owner_of(participant_id: ParticipantId, signature_key: &str) -> DeviceOwner {
    DeviceOwner::Account {
        user_id: format!("user-{}", participant_id % 100),
        device_id: format!("device-{}", &signature_key[..8]),
    }
}

/// The server's credential authority, as the meeting actor runs it.
fn credential(
    authority: &SigningKey,
    owner: DeviceOwner,
    participant_id: ParticipantId,
    signature_key: &str,
) -> ServerMessage {
    let body = serde_json::to_string(&DeviceCredential {
        owner,
        display_name: format!("Person {participant_id}"),
        signature_key: signature_key.into(),
        issued_at_ms: 0,
    })
    .unwrap();
    let signature = BASE64.encode(&authority.sign(&SignedCredential::signing_input(&body)).to_bytes());
    ServerMessage::E2eeCredential {
        credential: BASE64.encode(&SignedCredential { body, signature }.to_bytes()),
        authority: BASE64.encode(authority.verifying_key().as_bytes()),
        participant_id,
    }
}

const AUTHORITY: [u8; 32] = [7; 32];

/// Mallory's KeyPackage: her credential claims `participant_id`'s account,
/// signed by a key of her own standing in for the server's authority.
fn self_signed_key_package(participant_id: ParticipantId) -> String {
    let mut mallory = agent();
    let ClientMessage::E2eeCredentialRequest { signature_key } = mallory.start() else { unreachable!() };
    let forged = credential(
        &SigningKey::from_bytes(&[9; 32]),
        owner_of(participant_id, &signature_key),
        participant_id,
        &signature_key,
    );
    let sent = mallory.handle(&forged).send;
    let [ClientMessage::E2eeKeyPackage { key_package }] = sent.as_slice() else { panic!("{sent:?}") };
    key_package.clone()
}

/// What the meeting actor does with a device's message.
fn submit(
    ds: &mut MeetingGroup,
    from: ParticipantId,
    message: ClientMessage,
    admitted: &BTreeSet<ParticipantId>,
) -> Vec<(ParticipantId, ServerMessage)> {
    let out = submitted(ds, from, message, admitted);
    signed(ds, out)
}

/// The server's own proposal in each removal request, as the group's
/// external sender, for the service's state once it decided.
fn signed(ds: &MeetingGroup, mut out: Vec<(ParticipantId, ServerMessage)>) -> Vec<(ParticipantId, ServerMessage)> {
    for (_, message) in &mut out {
        if let ServerMessage::E2eeRemoveRequest { participant_id, proposal, .. } = message {
            *proposal = ds.service().removal_at(participant_id).map(|(epoch, leaf)| {
                BASE64.encode(&conclave_e2ee::mls::server_removal(&AUTHORITY, epoch, leaf).unwrap())
            });
        }
    }
    out
}

fn submitted(
    ds: &mut MeetingGroup,
    from: ParticipantId,
    message: ClientMessage,
    admitted: &BTreeSet<ParticipantId>,
) -> Vec<(ParticipantId, ServerMessage)> {
    match message {
        ClientMessage::E2eeCredentialRequest { signature_key } => {
            let owner = owner_of(from, &signature_key);
            let mut out = ds.vouched(from, owner.clone(), admitted);
            out.push((from, credential(&SigningKey::from_bytes(&AUTHORITY), owner, from, &signature_key)));
            out
        }
        ClientMessage::E2eeKeyPackage { key_package } => ds.key_package(from, key_package),
        ClientMessage::E2eeCommit { epoch, commit, welcome, added, removed } => {
            ds.commit(from, ProposedCommit { epoch, commit, welcome, added, removed }, admitted)
        }
        ClientMessage::E2eeApplication { message } => ds.application(from, message),
        // A device's report of a commit it refused: the server audits it.
        ClientMessage::E2eeCommitRefused { .. } => Vec::new(),
        other => panic!("not an E2EE message: {other:?}"),
    }
}

struct Meeting {
    ds: MeetingGroup,
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
                // Whoever has left hears nothing more (the server drops it).
                let Some(agent) = self.agents.get_mut(&to) else { continue };
                let handled = agent.handle(&message);
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
        Self { ds: MeetingGroup::default(), agents: BTreeMap::new(), admitted: BTreeSet::new() }
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
        let vouched = submit(&mut self.ds, id, request, &self.admitted);
        let (credential, others): (Vec<_>, Vec<_>) =
            vouched.into_iter().partition(|(to, m)| *to == id && matches!(m, ServerMessage::E2eeCredential { .. }));
        let handled = self.agents.get_mut(&id).unwrap().handle(&credential[0].1);
        let [key_package @ ClientMessage::E2eeKeyPackage { .. }] = handled.send.as_slice() else {
            panic!("a vouched device sends its KeyPackage: {:?}", handled.send)
        };
        let mut out = others;
        out.extend(submit(&mut self.ds, id, key_package.clone(), &self.admitted));
        out
    }

    fn leave(&mut self, id: ParticipantId) -> Vec<(ParticipantId, AgentEvent)> {
        self.admitted.remove(&id);
        self.agents.remove(&id);
        let out = self.ds.membership(&self.admitted);
        let out = signed(&self.ds, out);
        self.run(out)
    }

    fn code(&self, id: ParticipantId) -> String {
        self.agents[&id].session().security_code().expect("in the group")
    }
}

/// A group of 1, 2 and 3, made by 1, everyone's events delivered.
fn three() -> Meeting {
    let mut m = Meeting::new();
    for id in [1, 2, 3] {
        let out = m.join(id);
        m.run(out);
    }
    assert_eq!(m.agents[&3].session().member.members().len(), 3);
    m
}

fn codes_agree(m: &Meeting, ids: &[ParticipantId]) {
    let code = m.code(ids[0]);
    for id in ids {
        assert_eq!(m.code(*id), code, "device {id} has the group's keys");
    }
}

#[test]
fn a_replaced_committers_late_commit_is_refused_and_the_next_committer_carries_on() {
    let mut m = three();
    // Dan's KeyPackage reaches every member; only the committer (1) builds
    // a commit, which is held back.
    let ask_dan = m.join(4);
    assert_eq!(ask_dan.len(), 3, "every member hears the request: {ask_dan:?}");
    assert!(ask_dan.iter().all(|(_, r)| matches!(r, ServerMessage::E2eeAddRequest { committer: 1, .. })));
    let mut held = None;
    for (to, request) in &ask_dan {
        let handled = m.agents.get_mut(to).unwrap().handle(request);
        match to {
            1 => held = handled.send.into_iter().next(),
            _ => assert!(handled.send.is_empty(), "member {to} is not asked to commit"),
        }
    }
    let held = held.expect("the committer builds a commit");
    assert_eq!(m.agents[&1].session().member.epoch(), Some(2), "a pending commit is not applied yet");

    // Member 1's seat is taken over by a new device (the server vouches for
    // its key): 2 is the committer now, and removes 1's old device and adds Dan.
    let new_device = agent();
    let ClientMessage::E2eeCredentialRequest { signature_key } = new_device.start() else { unreachable!() };
    let handover = m.ds.vouched(1, owner_of(1, &signature_key), &m.admitted);
    assert!(handover.iter().all(|(_, r)| match r {
        ServerMessage::E2eeRemoveRequest { committer, .. } | ServerMessage::E2eeAddRequest { committer, .. } =>
            *committer == 2,
        _ => false,
    }));
    let old_device = m.agents.remove(&1).unwrap();
    let events = m.run(handover.into_iter().filter(|(to, _)| *to != 1).collect());
    assert!(events.contains(&(4, AgentEvent::NewEpoch(4))), "Dan is added after 1's old device goes: {events:?}");
    codes_agree(&m, &[2, 3, 4]);

    // The old committer's held commit arrives late: it is nobody's to make.
    let refusal = submit(&mut m.ds, 1, held, &m.admitted);
    assert!(matches!(refusal.as_slice(), [(1, ServerMessage::E2eeRejected { .. })]), "{refusal:?}");
    drop(old_device);

    // And they read each other.
    let frame = m.agents.get_mut(&3).unwrap().session_mut().encrypt_frame(b"from Carol", b"").unwrap();
    assert_eq!(m.agents.get_mut(&4).unwrap().session_mut().decrypt_frame(&frame, b"").unwrap(), b"from Carol");
    let chat = m.agents.get_mut(&4).unwrap().chat("hello").unwrap().expect("no removal waits");
    let out = submit(&mut m.ds, 4, chat, &m.admitted);
    let events = m.run(out);
    assert_eq!(
        events.iter().filter(|(_, e)| matches!(e, AgentEvent::Chat { from: 4, text } if text == "hello")).count(),
        2
    );
}

/// A commit built by `who`'s device behind its agent's back (as a modified
/// client would), on its group's current epoch.
fn rogue_commit(
    m: &mut Meeting,
    who: ParticipantId,
    build: impl FnOnce(&mut OpenMlsMember) -> Vec<u8>,
) -> (u64, String) {
    let member = &mut m.agents.get_mut(&who).unwrap().session_mut().member;
    let epoch = member.epoch().unwrap();
    let commit = build(member);
    member.discard_commit().unwrap();
    (epoch, BASE64.encode(&commit))
}

fn leaf_of(m: &Meeting, seen_by: ParticipantId, participant: ParticipantId) -> u32 {
    m.agents[&seen_by].roster().iter().find(|r| r.participant_id == Some(participant)).unwrap().leaf
}

#[test]
fn a_member_who_is_not_the_committer_cannot_remove_anyone() {
    let mut m = three();
    let before = m.code(1);
    // Member 3 (not the committer) builds a commit cutting the host (1) out.
    let host_leaf = leaf_of(&m, 3, 1);
    let (epoch, commit) = rogue_commit(&mut m, 3, |me| me.remove(&[host_leaf]).unwrap().commit);
    let message =
        ClientMessage::E2eeCommit { epoch, commit: commit.clone(), welcome: None, added: vec![], removed: vec![1] };
    // The server refuses it...
    let refusal = submit(&mut m.ds, 3, message, &m.admitted);
    assert!(
        matches!(refusal.as_slice(), [(3, ServerMessage::E2eeRejected { reason, .. })] if reason.contains("designated committer"))
    );
    assert_eq!(m.ds.service().epoch(), Some(epoch));
    // ...and a device to which a compromised relay passes it anyway refuses
    // it too, says so, and reports it.
    let relayed = ServerMessage::E2eeCommit { from: 3, epoch: epoch + 1, commit };
    let handled = m.agents.get_mut(&2).unwrap().handle(&relayed);
    assert!(
        matches!(handled.events.as_slice(), [AgentEvent::CommitRefused { from: 3, reason }] if reason.contains("not the committer")),
        "{:?}",
        handled.events
    );
    assert!(matches!(handled.send.as_slice(), [ClientMessage::E2eeCommitRefused { from: 3, .. }]));
    // Nothing changed: the host is still in everyone's group and speaks to it.
    assert_eq!((m.code(1), m.code(2)), (before.clone(), before));
    assert!(m.agents[&2].roster().iter().any(|r| r.participant_id == Some(1)));
    let chat = m.agents.get_mut(&1).unwrap().chat("still here").unwrap().expect("no removal waits");
    let out = submit(&mut m.ds, 1, chat, &m.admitted);
    assert_eq!(out.len(), 2, "the host still sends to the group: {out:?}");
    let events = m.run(out);
    assert_eq!(events.iter().filter(|(_, e)| matches!(e, AgentEvent::Chat { from: 1, .. })).count(), 2);
}

#[test]
fn the_committer_cannot_remove_or_add_beyond_what_the_server_asked() {
    let mut m = three();
    let before = m.code(2);
    // The committer removes 3, who never left.
    let leaf = leaf_of(&m, 1, 3);
    let (epoch, commit) = rogue_commit(&mut m, 1, |me| me.remove(&[leaf]).unwrap().commit);
    let rogue =
        ClientMessage::E2eeCommit { epoch, commit: commit.clone(), welcome: None, added: vec![], removed: vec![3] };
    assert!(matches!(submit(&mut m.ds, 1, rogue, &m.admitted).as_slice(), [(1, ServerMessage::E2eeRejected { .. })]));
    // Declared as a harmless commit, the server cannot see inside it and
    // relays it; every other device looks inside and refuses it.
    let disguised = ClientMessage::E2eeCommit { epoch, commit, welcome: None, added: vec![], removed: vec![] };
    let relayed = submit(&mut m.ds, 1, disguised, &m.admitted);
    for (to, message) in relayed.iter().filter(|(to, _)| *to != 1) {
        let handled = m.agents.get_mut(to).unwrap().handle(message);
        assert!(
            matches!(handled.events.as_slice(), [AgentEvent::CommitRefused { from: 1, reason }] if reason.contains("did not ask to remove")),
            "device {to}: {:?}",
            handled.events
        );
    }
    assert_eq!(m.code(2), before);
    assert!(m.agents[&3].roster().len() == 3, "3 is still in its own group");

    // Adding a device the server never forwarded: Mallory's forged one, or
    // a genuine credential's KeyPackage nobody asked to add.
    let forged = BASE64.decode(self_signed_key_package(7).as_bytes()).unwrap();
    let (epoch, commit) = rogue_commit(&mut m, 1, |me| me.add(&[forged]).unwrap().commit);
    let handled =
        m.agents.get_mut(&2).unwrap().handle(&ServerMessage::E2eeCommit { from: 1, epoch: epoch + 1, commit });
    assert!(
        matches!(handled.events.as_slice(), [AgentEvent::CommitRefused { reason, .. }] if reason.contains("did not vouch")),
        "{:?}",
        handled.events
    );
    let mut eve = agent();
    let ClientMessage::E2eeCredentialRequest { signature_key } = eve.start() else { unreachable!() };
    let vouched = credential(&SigningKey::from_bytes(&AUTHORITY), owner_of(8, &signature_key), 8, &signature_key);
    let sent = eve.handle(&vouched).send;
    let [ClientMessage::E2eeKeyPackage { key_package }] = sent.as_slice() else { panic!("{sent:?}") };
    let genuine = BASE64.decode(key_package.as_bytes()).unwrap();
    let (epoch, commit) = rogue_commit(&mut m, 1, |me| me.add(&[genuine]).unwrap().commit);
    let handled =
        m.agents.get_mut(&2).unwrap().handle(&ServerMessage::E2eeCommit { from: 1, epoch: epoch + 1, commit });
    assert!(
        matches!(handled.events.as_slice(), [AgentEvent::CommitRefused { reason, .. }] if reason.contains("did not ask to add")),
        "{:?}",
        handled.events
    );
    assert_eq!(m.code(2), before, "nobody was added or removed");
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
    // The server vouched for participant 2's device; Mallory sends a
    // KeyPackage whose credential claims that account, signed by a key of
    // her own standing in for the server's authority.
    m.admitted.insert(2);
    let mallory = agent();
    let ClientMessage::E2eeCredentialRequest { signature_key } = mallory.start() else { unreachable!() };
    m.ds.vouched(2, owner_of(2, &signature_key), &m.admitted);
    let ask = m.ds.key_package(2, self_signed_key_package(2));
    let handled = m.agents.get_mut(&1).unwrap().handle(&ask[0].1);
    assert!(handled.send.is_empty(), "the committer adds nobody on a forged credential: {:?}", handled.send);

    // Nor a genuine credential of one participant presented as another's.
    let out = m.join(3);
    m.run(out);
    let kp_of_3 = m.agents[&3].session().member.key_package().unwrap();
    m.admitted.insert(4);
    let stranger = agent();
    let ClientMessage::E2eeCredentialRequest { signature_key } = stranger.start() else { unreachable!() };
    m.ds.vouched(4, owner_of(4, &signature_key), &m.admitted);
    let ask = m.ds.key_package(4, BASE64.encode(&kp_of_3));
    let handled = m.agents.get_mut(&1).unwrap().handle(&ask[0].1);
    assert!(handled.send.is_empty(), "a credential naming participant 3's device does not add participant 4");
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
fn a_chat_line_written_while_a_removal_waits_is_held_until_it_is_committed() {
    let mut m = three();
    // 3 leaves; 2 has the server's proposal to remove it before the commit
    // that carries it out, and writes meanwhile: the line is held (3 could
    // still read it), not refused.
    m.admitted.remove(&3);
    m.agents.remove(&3);
    let out = m.ds.membership(&m.admitted);
    let out = signed(&m.ds, out);
    let (to_two, rest): (Vec<_>, Vec<_>) = out.into_iter().partition(|(to, _)| *to == 2);
    for (_, message) in &to_two {
        assert!(matches!(message, ServerMessage::E2eeRemoveRequest { proposal: Some(_), .. }));
        m.agents.get_mut(&2).unwrap().handle(message);
    }
    assert_eq!(m.agents.get_mut(&2).unwrap().chat("written meanwhile").unwrap(), None, "held");
    // The committer carries the removal out; once 2 applies it, the line goes.
    let events = m.run(rest);
    let read: Vec<_> = events
        .iter()
        .filter_map(|(to, e)| match e {
            AgentEvent::Chat { from: 2, text } => Some((*to, text.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(read, vec![(1, "written meanwhile")]);
    assert!(events.contains(&(1, AgentEvent::DeviceRemoved { participant_id: 3, by_server: true })), "{events:?}");
    codes_agree(&m, &[1, 2]);
}
