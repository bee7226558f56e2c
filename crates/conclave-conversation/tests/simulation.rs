//! A seeded, deterministic simulation of conversations. Each seed founds a
//! group or a channel, encrypted or not, and drives it through random
//! sends (retries, stale epochs and strangers' devices among them),
//! membership changes by members of every role, new and revoked devices,
//! deactivated accounts, devices reading the log at their own pace, the
//! group's committer carrying out what it is asked (sometimes late, so
//! its commits go stale), requests that cross on the wire (held back, then
//! arriving late, in any order, or never), and restarts (the state stored
//! and reloaded).
//! After every step it checks:
//!
//! 1. the log is one gapless sequence;
//! 2. a device reads an entry only if its account was a member when the
//!    entry was written (worked out here from the log's own membership
//!    entries) and, when encrypted, only after the group welcomed it;
//! 3. an encrypted message is accepted only in the group's current epoch
//!    and while every device in the group is a member's;
//! 4. a message is in the log once per device and client id, at the
//!    sequence number its sender was told, however often it is retried;
//! 5. every device that may read the log holds every entry it may read,
//!    once (after it reads);
//! 6. a group or channel with members of its organisation has an owner,
//!    and nobody of another organisation is owner or admin;
//! 7. the MLS handshake reaches only members' devices, and a request in the
//!    log names the account of the device it adds or removes;
//! 8. a conversation reloaded from storage is the one that was stored;
//! 9. a committer that leaves its work undone past its patience is replaced
//!    by the next device of the group that shows up.
//!
//! `CONCLAVE_SIM_SEEDS=1000000` runs more seeds (default 10,000);
//! `CONCLAVE_SIM_SEED=n` replays one; `CONCLAVE_SIM_STEPS` sets the steps.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use conclave_conversation::*;
use conclave_delivery::{Delivery, ProposedCommit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ACCOUNTS: usize = 6;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn ten_thousand_seeded_conversations_keep_every_invariant() {
    let steps = env_u64("CONCLAVE_SIM_STEPS").unwrap_or(80) as usize;
    let seeds: Vec<u64> = match env_u64("CONCLAVE_SIM_SEED") {
        Some(one) => vec![one],
        None => (0..env_u64("CONCLAVE_SIM_SEEDS").unwrap_or(10_000)).collect(),
    };
    let mut totals = Totals::default();
    for seed in seeds {
        let mut sim = Sim::new(seed);
        for step in 0..steps {
            if let Err(violation) = sim.step() {
                panic!(
                    "seed {seed}, step {step}: {violation}\nreplay with CONCLAVE_SIM_SEED={seed}\nlast inputs:\n{}",
                    sim.trace.join("\n")
                );
            }
        }
        totals.add(&sim);
    }
    eprintln!("{totals:?}");
    // The simulation must exercise what it claims to check.
    assert!(totals.messages > 0 && totals.encrypted_messages > 0, "{totals:?}");
    assert!(totals.commits > 0 && totals.removals > 0 && totals.retries > 0 && totals.reads > 0, "{totals:?}");
    assert!(totals.late_arrivals > 0, "{totals:?}");
}

#[derive(Debug, Default)]
struct Totals {
    messages: u64,
    encrypted_messages: u64,
    commits: u64,
    removals: u64,
    retries: u64,
    reads: u64,
    late_arrivals: u64,
}

impl Totals {
    fn add(&mut self, sim: &Sim) {
        for entry in &sim.log {
            match &entry.body {
                EntryBody::Message { epoch, .. } => {
                    self.messages += 1;
                    self.encrypted_messages += u64::from(epoch.is_some());
                }
                EntryBody::Commit { .. } => self.commits += 1,
                EntryBody::Membership { change: MembershipChange::Removed { .. } | MembershipChange::Left, .. } => {
                    self.removals += 1
                }
                _ => {}
            }
        }
        self.retries += sim.retries;
        self.late_arrivals += sim.late_arrivals;
        self.reads += sim.devices.values().map(|d| d.received.len() as u64).sum::<u64>();
    }
}

/// What one device knows and holds.
#[derive(Debug, Default)]
struct Device {
    account: String,
    revoked: bool,
    received: BTreeSet<Seq>,
    /// In the group (welcomed, or it created it), at this epoch.
    epoch: Option<u64>,
    key_package_sent: bool,
    /// Adds and removals the service asked of this device as committer.
    asked_add: BTreeSet<String>,
    asked_remove: BTreeSet<String>,
    /// Client ids sent, with the seq acknowledged.
    sent: Vec<(String, Seq)>,
}

struct Sim {
    rng: StdRng,
    now: i64,
    conversation: Conversation,
    encrypted: bool,
    log: Vec<Entry>,
    devices: BTreeMap<String, Device>,
    next_device: usize,
    retries: u64,
    /// Requests on the wire: sent, not yet arrived.
    in_flight: Vec<Input>,
    late_arrivals: u64,
    trace: Vec<String>,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let encrypted = rng.gen_bool(0.6);
        let kind = if rng.gen_bool(0.5) { Kind::Group } else { Kind::Channel };
        let policy = ConversationPolicy { newcomers_see_history: rng.gen_bool(0.5), ..ConversationPolicy::default() };
        let mut devices = BTreeMap::new();
        let newcomer = |account: usize, devices: &mut BTreeMap<String, Device>| {
            let ids: BTreeSet<String> = (0..2).map(|d| format!("a{account}-d{d}")).collect();
            for id in &ids {
                devices.insert(id.clone(), Device { account: format!("a{account}"), ..Device::default() });
            }
            Newcomer { account: format!("a{account}"), devices: ids, external: account == ACCOUNTS - 1 }
        };
        let founder = newcomer(0, &mut devices);
        let others: Vec<Newcomer> =
            (1..ACCOUNTS).filter(|_| rng.gen_bool(0.4)).map(|a| newcomer(a, &mut devices)).collect();
        // Devices of accounts not in it yet exist too.
        for a in 1..ACCOUNTS {
            for d in 0..2 {
                devices.entry(format!("a{a}-d{d}")).or_insert(Device { account: format!("a{a}"), ..Device::default() });
            }
        }
        let encryption = if encrypted { Encryption::Mls } else { Encryption::Plain };
        let (conversation, effects) =
            Conversation::found(kind, encryption, policy, founder, others, 0).expect("founded");
        let mut sim = Sim {
            rng,
            now: 0,
            conversation,
            encrypted,
            log: Vec::new(),
            devices,
            next_device: 2,
            retries: 0,
            in_flight: Vec::new(),
            late_arrivals: 0,
            trace: Vec::new(),
        };
        sim.apply(effects).expect("founding effects apply");
        sim
    }

    fn account(&mut self) -> String {
        format!("a{}", self.rng.gen_range(0..ACCOUNTS))
    }

    fn device_of(&mut self, account: &str) -> Option<String> {
        let ids: Vec<&String> =
            self.devices.iter().filter(|(_, d)| d.account == account && !d.revoked).map(|(id, _)| id).collect();
        (!ids.is_empty()).then(|| ids[self.rng.gen_range(0..ids.len())].clone())
    }

    fn newcomer(&mut self, account: &str) -> Newcomer {
        let devices =
            self.devices.iter().filter(|(_, d)| d.account == account && !d.revoked).map(|(id, _)| id.clone()).collect();
        Newcomer { account: account.to_string(), devices, external: account == format!("a{}", ACCOUNTS - 1) }
    }

    fn step(&mut self) -> Result<(), String> {
        self.now += self.rng.gen_range(0..60_000);
        let roll = self.rng.gen_range(0..100);
        let account = self.account();
        let input = match roll {
            0..=29 => return self.send(&account),
            30..=44 => return self.read_some(),
            45..=59 if self.encrypted => return (0..3).try_for_each(|_| self.device_acts()),
            45..=49 => Input::Lock { by: account, locked: self.rng.gen_bool(0.5) },
            50..=52 => Input::Archive { by: account, archived: self.rng.gen_bool(0.2) },
            60..=66 => {
                let who = self.account();
                Input::Add { by: account, newcomers: vec![self.newcomer(&who)] }
            }
            67..=68 => Input::Join { newcomer: self.newcomer(&account) },
            // The organisation's identity provider puts people in and out.
            69 => Input::Assign { newcomer: self.newcomer(&account), group: "Engineering".into() },
            70 => Input::Unassign { account, group: "Engineering".into() },
            71..=73 => Input::Leave { account },
            74..=78 => Input::Remove { by: self.account(), account },
            79..=81 => {
                let role = [Role::Member, Role::Admin, Role::Owner][self.rng.gen_range(0..3)];
                Input::SetRole { by: self.account(), account, role }
            }
            82..=85 => {
                let device = format!("{account}-d{}", self.next_device);
                self.next_device += 1;
                self.devices.insert(device.clone(), Device { account: account.clone(), ..Device::default() });
                Input::DeviceAdded { account, device }
            }
            86..=88 => match self.device_of(&account) {
                Some(device) => {
                    self.devices.get_mut(&device).expect("exists").revoked = true;
                    Input::DeviceRemoved { account, device }
                }
                None => return Ok(()),
            },
            89 => {
                for d in self.devices.values_mut().filter(|d| d.account == account) {
                    d.revoked = true;
                }
                Input::AccountDeactivated { account }
            }
            90..=92 => return self.restart(),
            93..=94 => return self.arrive_late(),
            95..=97 => return self.present(),
            _ => return self.delete(&account),
        };
        self.run(input).map(|_| ())
    }

    /// Hands `input` to the conversation, carries out its effects and checks.
    fn run(&mut self, input: Input) -> Result<Handled, String> {
        self.trace.push(format!("{input:?}"));
        if self.trace.len() > 30 {
            self.trace.remove(0);
        }
        let before = self.conversation.epoch();
        let group_before = self.conversation.group_devices();
        let handled = self.conversation.handle(input.clone(), self.now);
        if let (Input::Send(OutgoingMessage { epoch, device, client_id, .. }), Ok(effects)) = (&input, &handled) {
            if effects.iter().any(|e| matches!(e, Effect::Append(_))) {
                self.check_accepted_send(*epoch, before, &group_before)?;
                let seq =
                    effects.iter().find_map(|e| if let Effect::Append(entry) = e { Some(entry.seq) } else { None });
                self.devices.get_mut(device).expect("device").sent.push((client_id.clone(), seq.expect("appended")));
            }
        }
        if let Ok(effects) = &handled {
            self.apply(effects.clone())?;
        }
        self.check()?;
        Ok(handled)
    }

    /// Invariant 3, for a message just accepted.
    fn check_accepted_send(
        &self,
        epoch: Option<u64>,
        group_epoch: Option<u64>,
        group: &BTreeSet<String>,
    ) -> Result<(), String> {
        if !self.encrypted {
            return Ok(());
        }
        if epoch != group_epoch {
            return Err(format!("a message of epoch {epoch:?} accepted in epoch {group_epoch:?}"));
        }
        let members: BTreeSet<&String> = self.conversation.members().values().flat_map(|m| m.devices.iter()).collect();
        if let Some(outsider) = group.iter().find(|d| !members.contains(d)) {
            return Err(format!("a message accepted while {outsider}, no member's device, was in the group"));
        }
        Ok(())
    }

    fn apply(&mut self, effects: Vec<Effect>) -> Result<(), String> {
        let members: BTreeSet<String> =
            self.conversation.members().values().flat_map(|m| m.devices.iter().cloned()).collect();
        for effect in effects {
            match effect {
                Effect::Append(entry) => {
                    if entry.seq != self.log.len() as u64 + 1 {
                        return Err(format!("entry {} appended after {}", entry.seq, self.log.len()));
                    }
                    if let EntryBody::AddRequest { member, .. } | EntryBody::RemoveRequest { member, .. } = &entry.body
                    {
                        let owner = self.devices.get(&member.device_id).map(|d| d.account.as_str());
                        if owner != Some(member.user_id.as_str()) {
                            return Err(format!("a request names {member:?}, whose device is {owner:?}'s"));
                        }
                    }
                    self.log.push(entry);
                }
                Effect::Erase(_) | Effect::Duplicate(_) => {}
                Effect::ToDevice(delivery) => {
                    let to = delivery.recipient().clone();
                    if !members.contains(&to) {
                        return Err(format!("{delivery:?} reached {to}, not a member's device"));
                    }
                    self.receive(&to, delivery);
                }
            }
        }
        Ok(())
    }

    /// A device takes a message of the handshake meant for it.
    fn receive(&mut self, to: &str, delivery: Delivery<String>) {
        let device = self.devices.get_mut(to).expect("device");
        match delivery {
            Delivery::CreateGroup { .. } => device.epoch = Some(0),
            Delivery::Welcome { epoch, .. } => device.epoch = Some(epoch),
            Delivery::AddRequest { member, committer, .. } if committer == to => {
                device.asked_add.insert(member);
            }
            Delivery::RemoveRequest { member, committer, .. } if committer == to => {
                device.asked_remove.insert(member);
            }
            _ => {}
        }
    }

    fn send(&mut self, account: &str) -> Result<(), String> {
        // Now and then a stranger's device, or a retry.
        let device = if self.rng.gen_bool(0.1) {
            format!("stranger-{}", self.rng.gen_range(0..3))
        } else {
            match self.device_of(account) {
                Some(d) => d,
                None => return Ok(()),
            }
        };
        let retry = self.devices.get(&device).and_then(|d| d.sent.last().cloned()).filter(|_| self.rng.gen_bool(0.15));
        let client_id = match &retry {
            Some((id, _)) => id.clone(),
            None => format!("c{}", self.rng.gen::<u32>()),
        };
        let stale = self.rng.gen_bool(0.1);
        let epoch = match self.devices.get(&device) {
            Some(d) if self.encrypted => d.epoch.map(|e| if stale { e.saturating_sub(1) } else { e }),
            _ => None,
        };
        // The store's answer to whether it holds this one already.
        let earlier = self.log.iter().find_map(|e| match &e.body {
            EntryBody::Message { device: d, client_id: c, .. } if *d == device && *c == client_id => Some(e.seq),
            _ => None,
        });
        let content = format!("text {}", self.now);
        let input = Input::Send(OutgoingMessage {
            device: device.clone(),
            client_id,
            epoch,
            content,
            reference: None,
            earlier,
            history: None,
            control: false,
            files: Vec::new(),
        });
        // Held back on the wire, to arrive later among others.
        if self.rng.gen_bool(0.2) {
            self.in_flight.push(input);
            return Ok(());
        }
        let handled = self.run(input)?;
        if let (Some((_, seq)), Ok(effects)) = (retry, handled) {
            self.retries += 1;
            if effects != vec![Effect::Duplicate(seq)] {
                return Err(format!("a retry of entry {seq} answered {effects:?}"));
            }
        }
        Ok(())
    }

    fn delete(&mut self, account: &str) -> Result<(), String> {
        let messages: Vec<&Entry> = self.log.iter().filter(|e| matches!(e.body, EntryBody::Message { .. })).collect();
        if messages.is_empty() {
            return Ok(());
        }
        let entry = messages[self.rng.gen_range(0..messages.len())];
        let EntryBody::Message { from, .. } = &entry.body else { unreachable!() };
        let deleted =
            self.log.iter().any(|e| matches!(e.body, EntryBody::Deleted { target, .. } if target == entry.seq));
        let target = Target {
            seq: entry.seq,
            author: from.clone(),
            at_ms: entry.at_ms,
            deleted,
            thread: None,
            is_message: true,
        };
        self.run(Input::Delete { by: account.to_string(), target }).map(|_| ())
    }

    /// Some devices read what the log holds for them (invariants 2 and 5).
    fn read_some(&mut self) -> Result<(), String> {
        let ids: Vec<String> = self.devices.keys().cloned().collect();
        for id in ids.into_iter().filter(|_| self.rng.gen_bool(0.5)) {
            let Some(from) = self.conversation.readable_from(&id) else { continue };
            for seq in from..=self.log.len() as u64 {
                if !self.conversation.may_read(&id, seq) {
                    return Err(format!("{id} may read from {from} but not {seq}"));
                }
                let device = self.devices.get(&id).expect("device");
                if device.received.contains(&seq) {
                    continue;
                }
                let account = device.account.clone();
                // Plain history is the whole log for whoever is a member now.
                let history = !self.encrypted && self.conversation.policy().newcomers_see_history;
                let allowed = if history {
                    self.conversation.member(&account).is_some()
                } else {
                    member_at(&self.log, &account, seq)
                };
                if !allowed {
                    return Err(format!("{id} read entry {seq}, written while {account} was not a member"));
                }
                if self.encrypted && device.epoch.is_none() {
                    return Err(format!("{id} read entry {seq} before the group had it"));
                }
                let entry = &self.log[seq as usize - 1];
                let device = self.devices.get_mut(&id).expect("device");
                match &entry.body {
                    EntryBody::Commit { epoch, .. } => device.epoch = Some(*epoch),
                    EntryBody::AddRequest { member, committer, .. } if *committer == id => {
                        device.asked_add.insert(member.device_id.clone());
                    }
                    EntryBody::RemoveRequest { member, committer, .. } if *committer == id => {
                        device.asked_remove.insert(member.device_id.clone());
                    }
                    _ => {}
                }
                device.received.insert(seq);
            }
        }
        Ok(())
    }

    /// An encrypted conversation's devices do their part of the handshake:
    /// a device not in the group sends its KeyPackage, or the committer
    /// carries out what it was asked, built on the epoch it knows.
    fn device_acts(&mut self) -> Result<(), String> {
        let ids: Vec<String> = self.devices.iter().filter(|(_, d)| !d.revoked).map(|(id, _)| id.clone()).collect();
        let id = ids[self.rng.gen_range(0..ids.len())].clone();
        let device = self.devices.get(&id).expect("device");
        if device.epoch.is_none() || self.conversation.readable_from(&id).is_none() {
            if device.key_package_sent && self.rng.gen_bool(0.7) {
                return Ok(());
            }
            self.devices.get_mut(&id).expect("device").key_package_sent = true;
            return self.run(Input::KeyPackage { device: id.clone(), key_package: format!("kp-{id}") }).map(|_| ());
        }
        // Catch up first, most of the time (a late committer builds on an old epoch).
        if self.rng.gen_bool(0.8) {
            self.read_some()?;
        }
        let device = self.devices.get(&id).expect("device");
        if device.asked_add.is_empty() && device.asked_remove.is_empty() {
            return Ok(());
        }
        let added: Vec<String> = device.asked_add.iter().cloned().collect();
        let removed: Vec<String> = device.asked_remove.iter().cloned().collect();
        let epoch = device.epoch.expect("in the group");
        let commit = ProposedCommit {
            epoch,
            commit: format!("commit-{epoch}-{id}"),
            welcome: (!added.is_empty()).then(|| "welcome".to_string()),
            added: added.clone(),
            removed: removed.clone(),
        };
        let input = Input::Commit { device: id.clone(), commit };
        if self.rng.gen_bool(0.2) {
            self.in_flight.push(input);
            return Ok(());
        }
        let handled = self.run(input)?;
        self.committed(&id, handled);
        Ok(())
    }

    /// What a committer learns from the answer to its commit.
    fn committed(&mut self, id: &str, handled: Handled) {
        match handled {
            Ok(_) => {
                let device = self.devices.get_mut(id).expect("device");
                device.asked_add.clear();
                device.asked_remove.clear();
            }
            // What can no longer be done is forgotten; a stale commit is
            // built again once the device has caught up.
            Err(Refusal::Group(conclave_delivery::CommitRefusal::UnaskedAdd)) => {
                self.devices.get_mut(id).expect("device").asked_add.clear();
            }
            Err(Refusal::Group(conclave_delivery::CommitRefusal::UnaskedRemoval)) => {
                self.devices.get_mut(id).expect("device").asked_remove.clear();
            }
            Err(_) => {}
        }
    }

    /// Requests held on the wire arrive, in any order; a few are lost. A
    /// message's retry status is what the store says when it arrives.
    fn arrive_late(&mut self) -> Result<(), String> {
        let mut arriving = std::mem::take(&mut self.in_flight);
        // Fisher–Yates, on the simulation's own generator.
        for i in (1..arriving.len()).rev() {
            arriving.swap(i, self.rng.gen_range(0..=i));
        }
        for mut input in arriving {
            if self.rng.gen_bool(0.1) {
                continue;
            }
            self.late_arrivals += 1;
            if let Input::Send(message) = &mut input {
                message.earlier = self.log.iter().find_map(|e| match &e.body {
                    EntryBody::Message { device, client_id, .. }
                        if *device == message.device && *client_id == message.client_id =>
                    {
                        Some(e.seq)
                    }
                    _ => None,
                });
            }
            let committer = match &input {
                Input::Commit { device, .. } => Some(device.clone()),
                _ => None,
            };
            let handled = self.run(input)?;
            if let Some(device) = committer {
                self.committed(&device, handled);
            }
        }
        Ok(())
    }

    /// A device shows up (invariant 9): if the committer left its work
    /// undone past its patience, this device takes over.
    fn present(&mut self) -> Result<(), String> {
        let ids: Vec<String> = self.devices.iter().filter(|(_, d)| !d.revoked).map(|(id, _)| id.clone()).collect();
        let device = ids[self.rng.gen_range(0..ids.len())].clone();
        let overdue = self.conversation.committer_overdue(self.now);
        let eligible = self.conversation.holds_device(&device) && self.conversation.owner_of(&device).is_some();
        self.run(Input::Present { device: device.clone() })?.map_err(|r| format!("showing up was refused: {r:?}"))?;
        let committer = self.conversation.committer().cloned();
        if overdue && eligible && committer.as_ref() != Some(&device) {
            return Err(format!("{device} showed up while the committer was overdue, but {committer:?} still commits"));
        }
        if !overdue && self.conversation.committer_overdue(self.now) {
            return Err("showing up made the committer overdue".into());
        }
        Ok(())
    }

    /// The conversation is stored and loaded again (invariant 8).
    fn restart(&mut self) -> Result<(), String> {
        let stored = serde_json::to_string(&self.conversation).map_err(|e| e.to_string())?;
        let mut loaded: Conversation = serde_json::from_str(&stored).map_err(|e| e.to_string())?;
        loaded.set_log_position(self.log.len() as u64);
        if loaded != self.conversation {
            return Err("the reloaded conversation differs from the stored one".into());
        }
        self.conversation = loaded;
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        // 1. one gapless sequence.
        if self.conversation.last_seq() != self.log.len() as u64 {
            return Err(format!(
                "the conversation is at {} but the log holds {}",
                self.conversation.last_seq(),
                self.log.len()
            ));
        }
        // 4. once per device and client id, at the acknowledged seq.
        let mut seen = HashMap::new();
        for entry in &self.log {
            if let EntryBody::Message { device, client_id, .. } = &entry.body {
                if let Some(earlier) = seen.insert((device.clone(), client_id.clone()), entry.seq) {
                    return Err(format!("{device}'s {client_id} is in the log twice ({earlier} and {})", entry.seq));
                }
            }
        }
        for (id, device) in &self.devices {
            for (client_id, seq) in &device.sent {
                if seen.get(&(id.clone(), client_id.clone())) != Some(seq) {
                    return Err(format!("{id}'s {client_id} was acknowledged as {seq} but the log disagrees"));
                }
            }
        }
        // 2 and 5, for devices that may read now: everything they may read
        // that they have read is theirs to read (checked as they read).
        for (id, from) in self.conversation.readers() {
            let Some(device) = self.devices.get(id) else { return Err(format!("{id} reads but does not exist")) };
            if device.revoked {
                return Err(format!("{id} was revoked but still reads"));
            }
            if !self.conversation.members().contains_key(&device.account) {
                return Err(format!("{id} reads but {} is not a member", device.account));
            }
            if *from == 0 {
                return Err(format!("{id} reads from 0"));
            }
        }
        // 6. an owner whenever someone of the organisation is in it, and
        // never someone of another organisation as owner or admin.
        let members = self.conversation.members();
        if members.values().any(|m| !m.external) && !members.values().any(|m| m.role == Role::Owner) {
            return Err("members but no owner".into());
        }
        if let Some((who, _)) = members.iter().find(|(_, m)| m.external && m.role >= Role::Admin) {
            return Err(format!("{who}, of another organisation, governs the conversation"));
        }
        Ok(())
    }
}

/// Whether `account` was a member when entry `seq` was written, from the
/// log's membership entries alone.
fn member_at(log: &[Entry], account: &str, seq: Seq) -> bool {
    let mut member = false;
    for entry in &log[..seq as usize] {
        if let EntryBody::Membership { account: who, change } = &entry.body {
            if who == account {
                member = match change {
                    MembershipChange::Founded { .. }
                    | MembershipChange::Joined
                    | MembershipChange::Added { .. }
                    | MembershipChange::AssignedByGroup { .. } => true,
                    MembershipChange::Left
                    | MembershipChange::Removed { .. }
                    | MembershipChange::Deactivated
                    | MembershipChange::UnassignedByGroup { .. } => false,
                    MembershipChange::RoleChanged { .. } => member,
                };
            }
        }
    }
    member
}
