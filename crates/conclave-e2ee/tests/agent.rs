//! Devices' agents against the server's real delivery service
//! (`conclave_room::MlsDelivery`): a committer whose commit loses a race
//! discards it, follows the winner's epoch, builds its commit again, and
//! every device ends with the same keys.

use std::collections::{BTreeMap, BTreeSet};

use conclave_e2ee::agent::{AgentEvent, E2eeAgent};
use conclave_e2ee::mls::{GroupMember, OpenMlsMember};
use conclave_e2ee::session::E2eeSession;
use conclave_e2ee::CipherSuite;
use conclave_proto::signal::{ClientMessage, ParticipantId, ServerMessage};
use conclave_room::delivery::MlsDelivery;

type Agent = E2eeAgent<OpenMlsMember>;

fn agent(id: ParticipantId) -> Agent {
    let member = OpenMlsMember::new(id.to_string().as_bytes()).unwrap();
    E2eeAgent::new(E2eeSession::new(member, CipherSuite::Aes128GcmSha256_128))
}

/// What the meeting actor does with a device's message.
fn submit(
    ds: &mut MlsDelivery,
    from: ParticipantId,
    message: ClientMessage,
    admitted: &BTreeSet<ParticipantId>,
) -> Vec<(ParticipantId, ServerMessage)> {
    match message {
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

    fn join(&mut self, id: ParticipantId) -> Vec<(ParticipantId, ServerMessage)> {
        self.agents.insert(id, agent(id));
        self.admitted.insert(id);
        let kp = self.agents[&id].key_package().unwrap();
        submit(&mut self.ds, id, kp, &self.admitted)
    }

    fn code(&self, id: ParticipantId) -> String {
        self.agents[&id].session().security_code().expect("in the group")
    }
}

#[test]
fn a_commit_that_loses_the_race_is_rolled_back_and_built_again() {
    let mut m = Meeting { ds: MlsDelivery::default(), agents: BTreeMap::new(), admitted: BTreeSet::new() };
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
    let mut m = Meeting { ds: MlsDelivery::default(), agents: BTreeMap::new(), admitted: BTreeSet::new() };
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
