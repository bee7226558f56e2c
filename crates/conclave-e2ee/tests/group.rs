//! The group layer on its own, with a group that is not a meeting (a
//! conversation's, as team messaging will have): its members are devices,
//! named by device id, two users with two devices each, all registered with
//! their accounts. Devices are added and removed, one is replaced, and both
//! the server's delivery service and a device stop in the middle, are
//! stored, reloaded and carry on, one of them with a commit in flight.
//! Real MLS throughout; the server's part is `conclave_delivery`.

use std::collections::{BTreeMap, BTreeSet};

use conclave_delivery::{Delivery, DeliveryService, ProposedCommit};
use conclave_e2ee::credential::KnownDevices;
use conclave_e2ee::group::{GroupAgent, GroupEvent, GroupInput, GroupOutput};
use conclave_e2ee::mls::{server_removal, GroupMember, OpenMlsMember};
use conclave_proto::credential::{DeviceCredential, DeviceOwner, SignedCredential};
use data_encoding::BASE64;
use ed25519_dalek::{Signer, SigningKey};

type DeviceId = String;

/// A delivery as the server sends it: a removal request carries the
/// server's signed proposal, made when the service asked for it.
type Sent = (Delivery<DeviceId>, Option<Vec<u8>>);

/// One device: its MLS state and its side of the delivery service.
struct Device {
    mls: OpenMlsMember,
    agent: GroupAgent<DeviceId>,
    events: Vec<GroupEvent<DeviceId>>,
}

/// The server (its authority and the group's delivery service), the
/// devices, and who should be in the group.
struct World {
    authority: SigningKey,
    service: DeliveryService<DeviceId>,
    owners: BTreeMap<DeviceId, DeviceOwner>,
    devices: BTreeMap<DeviceId, Device>,
    members: BTreeSet<DeviceId>,
    /// The owner of a member's old device while its new one waits to be
    /// added (what the removal request names).
    replaced: BTreeMap<DeviceId, DeviceOwner>,
    /// The key the server signs its removal proposals with: the authority's
    /// own (the group's external sender), another (a forger's), or none.
    proposer: Option<[u8; 32]>,
    /// Every commit the service ordered: who made it, whom it removed, and
    /// the leaves the server's proposals it carried out removed.
    commits: Vec<(DeviceId, Vec<DeviceId>, Vec<u32>)>,
}

fn owner(user: &str, device: &str) -> DeviceOwner {
    DeviceOwner::Account { user_id: user.into(), device_id: device.into() }
}

impl World {
    fn new() -> Self {
        Self {
            authority: SigningKey::from_bytes(&[5; 32]),
            service: DeliveryService::default(),
            owners: BTreeMap::new(),
            devices: BTreeMap::new(),
            members: BTreeSet::new(),
            replaced: BTreeMap::new(),
            proposer: Some([5; 32]),
            commits: Vec::new(),
        }
    }

    /// The server's proposals for the removals among `out`, signed for the
    /// service's state now (as the server does before sending them).
    fn sign(&self, out: Vec<Delivery<DeviceId>>) -> Vec<Sent> {
        out.into_iter()
            .map(|delivery| {
                let proposal = match (&delivery, self.proposer) {
                    (Delivery::RemoveRequest { member, .. }, Some(seed)) => {
                        self.service.removal_at(member).map(|(epoch, leaf)| server_removal(&seed, epoch, leaf).unwrap())
                    }
                    _ => None,
                };
                (delivery, proposal)
            })
            .collect()
    }

    /// The server's credential for a device's key, owned by `owner`.
    fn vouch(&self, owner: &DeviceOwner, key: &[u8]) -> Vec<u8> {
        let body = serde_json::to_string(&DeviceCredential {
            owner: owner.clone(),
            display_name: format!("{owner:?}"),
            signature_key: BASE64.encode(key),
            issued_at_ms: 0,
        })
        .unwrap();
        let signature = BASE64.encode(&self.authority.sign(&SignedCredential::signing_input(&body)).to_bytes());
        SignedCredential { body, signature }.to_bytes()
    }

    /// A device registered to `user` joins the conversation.
    fn join(&mut self, user: &str, id: &str) {
        self.join_as(id, owner(user, id));
    }

    /// A new device for member `id`, owned by `owner`.
    fn join_as(&mut self, id: &str, owner: DeviceOwner) {
        let mut mls = OpenMlsMember::new(b"").unwrap();
        let mut agent = GroupAgent::new(KnownDevices::default());
        let credential = self.vouch(&owner, &mls.signature_key());
        let authority = BASE64.encode(self.authority.verifying_key().as_bytes());
        let Some(GroupOutput::KeyPackage(key_package)) = agent.vouched(&mut mls, &credential, &authority, id.into())
        else {
            panic!("a vouched device offers its KeyPackage")
        };
        self.members.insert(id.into());
        self.owners.insert(id.into(), owner);
        self.devices.insert(id.into(), Device { mls, agent, events: Vec::new() });
        let out = self.service.key_package(id.into(), BASE64.encode(&key_package));
        self.run(out);
    }

    /// Delivers until nothing more is sent.
    fn run(&mut self, out: Vec<Delivery<DeviceId>>) {
        let mut out = self.sign(out);
        while !out.is_empty() {
            let mut next = Vec::new();
            for sent in out {
                let to = sent.0.recipient().clone();
                let input = self.input(sent);
                let Some(device) = self.devices.get_mut(&to) else { continue };
                let handled = device.agent.handle(&mut device.mls, input);
                device.events.extend(handled.events);
                for output in handled.send {
                    let produced = self.submit(&to, output);
                    next.extend(self.sign(produced));
                }
            }
            out = next;
        }
    }

    /// What the service's delivery says to a device.
    fn input(&self, (delivery, proposal): Sent) -> GroupInput<DeviceId> {
        let blob = |text: String| BASE64.decode(text.as_bytes()).unwrap();
        match delivery {
            Delivery::CreateGroup { .. } => GroupInput::CreateGroup,
            Delivery::AddRequest { member, key_package, committer, .. } => GroupInput::AddRequest {
                owner: self.owners[&member].clone(),
                member,
                key_package: blob(key_package),
                committer,
            },
            Delivery::RemoveRequest { member, committer, .. } => {
                GroupInput::RemoveRequest { owner: self.departing_owner(&member), member, committer, proposal }
            }
            Delivery::Commit { from, epoch, commit, .. } => GroupInput::Commit { from, epoch, commit: blob(commit) },
            Delivery::Welcome { welcome, committer, members, .. } => GroupInput::Welcome {
                welcome: blob(welcome),
                committer,
                members: members.into_iter().map(|m| (m.clone(), self.owners[&m].clone())).collect(),
            },
            Delivery::Rejected { epoch, .. } => GroupInput::Rejected { epoch },
            Delivery::Application { from, message, .. } => GroupInput::Application { from, message: blob(message) },
        }
    }

    /// The owner of the device a removal is about: the one in the group.
    fn departing_owner(&self, member: &DeviceId) -> DeviceOwner {
        self.replaced.get(member).cloned().unwrap_or_else(|| self.owners[member].clone())
    }

    /// What the server does with a device's message.
    fn submit(&mut self, from: &DeviceId, output: GroupOutput<DeviceId>) -> Vec<Delivery<DeviceId>> {
        let members = self.members.clone();
        match output {
            GroupOutput::KeyPackage(kp) => self.service.key_package(from.clone(), BASE64.encode(&kp)),
            GroupOutput::Commit { epoch, commit, welcome, added, removed } => {
                let proposed = ProposedCommit {
                    epoch,
                    commit: BASE64.encode(&commit),
                    welcome: welcome.map(|w| BASE64.encode(&w)),
                    added,
                    removed: removed.clone(),
                };
                // The server's proposals a commit carries out stay kept by its
                // maker until the service orders the commit.
                let carried = self.devices[from].mls.pending_removals();
                let out = self.service.commit(from.clone(), proposed, |m| members.contains(m));
                if out.iter().any(|d| matches!(d, Delivery::Commit { .. })) {
                    self.commits.push((from.clone(), removed.clone(), carried));
                    for member in removed {
                        self.replaced.remove(&member);
                    }
                }
                out
            }
            GroupOutput::CommitRefused { from, reason, .. } => panic!("a device refused {from}'s commit: {reason}"),
        }
    }

    fn leave(&mut self, id: &str) {
        self.members.remove(id);
        let members = self.members.clone();
        let out = self.service.membership(|m| members.contains(m));
        self.run(out);
    }

    /// Every device in the group agrees on the epoch and its authenticator.
    fn agreed(&self) -> u64 {
        let in_group: Vec<&Device> = self.members.iter().map(|m| &self.devices[m]).collect();
        let epoch = in_group[0].mls.epoch().expect("in the group");
        for device in &in_group {
            assert_eq!(device.mls.epoch(), Some(epoch));
            assert_eq!(device.mls.epoch_authenticator(), in_group[0].mls.epoch_authenticator());
        }
        assert_eq!(self.service.epoch(), Some(epoch));
        assert_eq!(in_group[0].mls.members().len(), self.members.len());
        // The service follows each device's leaf from the commits it orders,
        // so its proposals name the right one.
        for member in &self.members {
            assert_eq!(self.service.leaf(member), self.devices[member].mls.leaf_index(), "{member}'s leaf");
        }
        epoch
    }

    /// Sends an application message from `from`; returns who read it.
    fn say(&mut self, from: &str, text: &str) -> BTreeSet<DeviceId> {
        let sealed = self.devices.get_mut(from).unwrap().mls.encrypt(text.as_bytes()).unwrap();
        let out = self.service.application(from.into(), BASE64.encode(&sealed));
        self.run(out);
        self.devices
            .iter()
            .filter(|(_, d)| {
                d.events
                    .iter()
                    .any(|e| matches!(e, GroupEvent::Application { plaintext, .. } if plaintext == text.as_bytes()))
            })
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[test]
fn two_users_with_two_devices_each_add_remove_and_replace_devices() {
    let mut w = World::new();
    w.join("ada", "ada-laptop");
    w.join("ada", "ada-phone");
    w.join("bob", "bob-laptop");
    w.join("bob", "bob-phone");
    assert_eq!(w.agreed(), 3, "three additions after the group was made");
    let everyone: BTreeSet<DeviceId> = ["ada-laptop", "ada-phone", "bob-laptop", "bob-phone"].map(Into::into).into();
    let mut others = everyone.clone();
    others.remove("bob-phone");
    assert_eq!(w.say("bob-phone", "hello from the phone"), others);

    // Bob loses his phone: it leaves the group, and reads nothing after.
    w.leave("bob-phone");
    assert!(w.devices["bob-phone"].events.contains(&GroupEvent::Removed));
    assert_eq!(w.agreed(), 4);
    let readers = w.say("ada-phone", "after the phone was lost");
    assert!(!readers.contains("bob-phone"));
    assert_eq!(readers.len(), 2);

    // Bob's laptop is reinstalled: the same member with a new device (new
    // key, new registration). The old device goes, the new one comes.
    let old = w.owners["bob-laptop"].clone();
    w.replaced.insert("bob-laptop".into(), old);
    let members = w.members.clone();
    let out = w.service.device_replaced(&"bob-laptop".to_owned(), |m| members.contains(m));
    w.devices.remove("bob-laptop");
    w.run(out);
    w.join_as("bob-laptop", owner("bob", "bob-laptop-2"));
    assert_eq!(w.agreed(), 6, "one commit removed the old laptop, one added the new");
    assert_eq!(w.say("bob-laptop", "back"), ["ada-laptop", "ada-phone"].map(Into::into).into());
    // Nobody refused anything, and Bob's new laptop is a new device key of
    // a known account to those who saw the old one.
    for id in ["ada-laptop", "ada-phone"] {
        let told = &w.devices[id].events;
        assert!(told.iter().any(|e| matches!(e, GroupEvent::NewDevice { member, .. } if member == "bob-laptop")));
    }
}

#[test]
fn the_service_and_a_device_are_stored_reloaded_and_carry_on_with_a_commit_in_flight() {
    let mut w = World::new();
    w.join("ada", "ada-laptop");
    w.join("ada", "ada-phone");
    w.join("bob", "bob-laptop");
    let before = w.agreed();

    // Bob's phone asks to join; the committer (Ada's laptop) builds the
    // commit, and everything stops before the server orders it.
    let phone = {
        let mut mls = OpenMlsMember::new(b"").unwrap();
        let mut agent = GroupAgent::new(KnownDevices::default());
        let bob_phone = owner("bob", "bob-phone");
        let credential = w.vouch(&bob_phone, &mls.signature_key());
        let authority = BASE64.encode(w.authority.verifying_key().as_bytes());
        let Some(GroupOutput::KeyPackage(kp)) = agent.vouched(&mut mls, &credential, &authority, "bob-phone".into())
        else {
            panic!()
        };
        w.members.insert("bob-phone".into());
        w.owners.insert("bob-phone".into(), bob_phone);
        (Device { mls, agent, events: Vec::new() }, kp)
    };
    w.devices.insert("bob-phone".into(), phone.0);
    let requests = w.service.key_package("bob-phone".into(), BASE64.encode(&phone.1));
    let mut in_flight = None;
    for delivery in w.sign(requests) {
        let to = delivery.0.recipient().clone();
        let input = w.input(delivery);
        let device = w.devices.get_mut(&to).unwrap();
        let handled = device.agent.handle(&mut device.mls, input);
        if to == "ada-laptop" {
            in_flight = handled.send.into_iter().next();
        }
    }
    let Some(GroupOutput::Commit { epoch, .. }) = &in_flight else { panic!("the committer builds a commit") };
    assert_eq!(*epoch, before);

    // Stored: the server's delivery service, and Ada's laptop whole (its
    // agent, and its MLS state with the pending commit). Reloaded.
    let stored_service = serde_json::to_string(&w.service).unwrap();
    let laptop = w.devices.remove("ada-laptop").unwrap();
    let stored_agent = serde_json::to_string(&laptop.agent).unwrap();
    let stored_mls = laptop.mls.export_state();
    drop(laptop);
    w.service = serde_json::from_str(&stored_service).unwrap();
    let reloaded = Device {
        mls: OpenMlsMember::import_state(&stored_mls).unwrap(),
        agent: serde_json::from_str(&stored_agent).unwrap(),
        events: Vec::new(),
    };
    assert_eq!(reloaded.mls.epoch(), Some(before), "at the epoch it stopped at");
    w.devices.insert("ada-laptop".into(), reloaded);

    // The commit it had in flight is ordered by the reloaded service, and
    // the reloaded device applies it on the echo: the epoch goes on.
    let out = w.submit(&"ada-laptop".to_owned(), in_flight.unwrap());
    w.run(out);
    assert_eq!(w.agreed(), before + 1);
    let readers = w.say("ada-laptop", "after the restart");
    assert_eq!(readers, ["ada-phone", "bob-laptop", "bob-phone"].map(Into::into).into());
    // And a later change is made by the reloaded committer as any other.
    w.leave("ada-phone");
    assert_eq!(w.agreed(), before + 2);
}

/// Two users with two devices each, in a group made with the server as
/// its external sender.
fn four_devices() -> World {
    let mut w = World::new();
    for (user, device) in [("ada", "ada-laptop"), ("ada", "ada-phone"), ("bob", "bob-laptop"), ("bob", "bob-phone")] {
        w.join(user, device);
    }
    w.agreed();
    w
}

#[test]
fn the_server_removes_devices_itself_as_the_groups_external_sender() {
    let mut w = four_devices();
    let phone = w.service.leaf(&"bob-phone".to_owned()).unwrap();

    // Bob's phone is taken out (its account closed, or it left): the server
    // proposes its removal, signed; the committer's commit carries the
    // proposal out, and every other device applies it (a device refusing
    // it would fail the test where the world submits the refusal).
    w.leave("bob-phone");
    let (from, removed, carried) = w.commits.last().unwrap().clone();
    assert_eq!((from.as_str(), removed), ("ada-laptop", vec!["bob-phone".to_owned()]));
    assert_eq!(carried, vec![phone], "the commit carried out the server's proposal");
    assert!(w.devices["bob-phone"].events.contains(&GroupEvent::Removed));
    let on_the_servers_word = GroupEvent::DeviceRemoved { member: "bob-phone".into(), by_server: true };
    for id in ["ada-laptop", "ada-phone", "bob-laptop"] {
        assert!(w.devices[id].events.contains(&on_the_servers_word), "{id} saw the server's removal");
    }
    w.agreed();
    assert!(!w.say("bob-laptop", "after the phone left").contains("bob-phone"));

    // The committer itself goes: the next one carries out the server's
    // proposal to remove it.
    let laptop = w.service.leaf(&"ada-laptop".to_owned()).unwrap();
    w.leave("ada-laptop");
    let (from, removed, carried) = w.commits.last().unwrap().clone();
    assert_eq!((from.as_str(), removed), ("ada-phone", vec!["ada-laptop".to_owned()]));
    assert_eq!(carried, vec![laptop]);
    w.agreed();

    // Newcomers take the leftmost empty leaves, as the service expects.
    w.join("carol", "carol-laptop");
    w.join("carol", "carol-phone");
    assert_eq!(w.service.leaf(&"carol-laptop".to_owned()), Some(laptop.min(phone)));
    w.agreed();
}

#[test]
fn a_removal_proposal_not_signed_by_the_server_is_not_kept_and_the_committer_removes_the_device_itself() {
    let mut w = four_devices();
    // Someone else's key signs the proposals: no device keeps them, and
    // the committer removes the device by a proposal of its own.
    w.proposer = Some([9; 32]);
    w.leave("bob-phone");
    let (from, removed, carried) = w.commits.last().unwrap().clone();
    assert_eq!((from.as_str(), removed), ("ada-laptop", vec!["bob-phone".to_owned()]));
    assert!(carried.is_empty(), "no forged proposal was kept");
    let on_the_committers_word = GroupEvent::DeviceRemoved { member: "bob-phone".into(), by_server: false };
    assert!(w.devices["bob-laptop"].events.contains(&on_the_committers_word));
    w.agreed();
    assert!(!w.say("ada-phone", "still private").contains("bob-phone"));
}

#[test]
fn a_proposal_removing_another_device_than_the_one_named_is_not_kept() {
    let mut w = four_devices();
    w.members.remove("bob-phone");
    let members = w.members.clone();
    let out = w.service.membership(|m| members.contains(m));
    let epoch = w.service.epoch().unwrap();
    // The server's own signature, on a proposal to remove Ada's phone, sent
    // with the request to remove Bob's: the device keeps only what matches.
    let wrong = server_removal(&[5; 32], epoch, w.service.leaf(&"ada-phone".to_owned()).unwrap()).unwrap();
    let right = server_removal(&[5; 32], epoch, w.service.leaf(&"bob-phone".to_owned()).unwrap()).unwrap();
    let request = out.into_iter().find(|d| d.recipient() == "bob-laptop").unwrap();
    let device = w.devices.get_mut("bob-laptop").unwrap();
    let input = |proposal: Vec<u8>| match request.clone() {
        Delivery::RemoveRequest { member, committer, .. } => {
            GroupInput::RemoveRequest { member, owner: owner("bob", "bob-phone"), committer, proposal: Some(proposal) }
        }
        other => panic!("expected a removal request, got {other:?}"),
    };
    device.agent.handle(&mut device.mls, input(wrong));
    assert!(device.mls.pending_removals().is_empty());
    device.agent.handle(&mut device.mls, input(right));
    assert_eq!(device.mls.pending_removals(), vec![w.service.leaf(&"bob-phone".to_owned()).unwrap()]);
}

#[test]
fn a_removal_asked_for_while_another_commit_is_in_flight_is_proposed_again_for_the_next_epoch() {
    let mut w = four_devices();
    let before = w.agreed();
    // Carol's laptop asks to join; the committer builds the commit that
    // adds it, and before the server has it, Bob's phone is taken out.
    let carol = owner("carol", "carol-laptop");
    let mut mls = OpenMlsMember::new(b"").unwrap();
    let mut agent = GroupAgent::new(KnownDevices::default());
    let credential = w.vouch(&carol, &mls.signature_key());
    let authority = BASE64.encode(w.authority.verifying_key().as_bytes());
    let Some(GroupOutput::KeyPackage(kp)) = agent.vouched(&mut mls, &credential, &authority, "carol-laptop".into())
    else {
        panic!("a vouched device offers its KeyPackage")
    };
    w.members.insert("carol-laptop".into());
    w.owners.insert("carol-laptop".into(), carol);
    w.devices.insert("carol-laptop".into(), Device { mls, agent, events: Vec::new() });
    let requests = w.service.key_package("carol-laptop".into(), BASE64.encode(&kp));
    let mut in_flight = None;
    for sent in w.sign(requests) {
        let to = sent.0.recipient().clone();
        let input = w.input(sent);
        let device = w.devices.get_mut(&to).unwrap();
        let handled = device.agent.handle(&mut device.mls, input);
        if to == "ada-laptop" {
            in_flight = handled.send.into_iter().next();
        }
    }
    w.members.remove("bob-phone");
    let members = w.members.clone();
    let removal = w.service.membership(|m| members.contains(m));
    let removal = w.sign(removal);
    assert!(removal.iter().all(|(_, p)| p.is_some()), "the server proposes the removal at epoch {before}");
    for sent in removal {
        let to = sent.0.recipient().clone();
        let input = w.input(sent);
        let device = w.devices.get_mut(&to).unwrap();
        assert!(device.agent.handle(&mut device.mls, input).send.is_empty(), "one commit in flight at a time");
    }

    // The addition is ordered first; its epoch ends the proposal's, so the
    // server proposes the removal again, and it is carried out after.
    let out = w.submit(&"ada-laptop".to_owned(), in_flight.unwrap());
    assert!(out.iter().any(|d| matches!(d, Delivery::RemoveRequest { member, .. } if member == "bob-phone")));
    w.run(out);
    assert_eq!(w.agreed(), before + 2);
    let (_, removed, carried) = w.commits.last().unwrap().clone();
    assert_eq!(removed, vec!["bob-phone".to_owned()]);
    assert_eq!(carried.len(), 1, "the committer waited for the server's proposal for the new epoch");
    let readers = w.say("carol-laptop", "hello");
    assert_eq!(readers, ["ada-laptop", "ada-phone", "bob-laptop"].map(Into::into).into());
}

#[test]
fn devices_leaving_together_are_all_removed_on_the_servers_word() {
    let mut w = four_devices();
    // Bob's account is closed: both his devices go at once. The committer
    // takes the first proposal out at once; the second proposal's epoch is
    // over by then, and it waits for the server's next instead of removing
    // the device on its own word.
    w.members.remove("bob-laptop");
    w.members.remove("bob-phone");
    let members = w.members.clone();
    let out = w.service.membership(|m| members.contains(m));
    w.run(out);
    w.agreed();
    for gone in ["bob-laptop", "bob-phone"] {
        let on_the_servers_word = GroupEvent::DeviceRemoved { member: gone.into(), by_server: true };
        assert!(w.devices["ada-phone"].events.contains(&on_the_servers_word), "{gone}");
    }
    assert_eq!(w.say("ada-phone", "just us"), ["ada-laptop"].map(Into::into).into());
}
