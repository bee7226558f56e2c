//! A device's side of a group's delivery service, for any group: a
//! meeting's (see `agent.rs`, its adapter) or a conversation's. Sans IO:
//! what the service sends in ([`GroupInput`]), what to send back
//! ([`GroupOutput`]) and what happened ([`GroupEvent`]) out. Members are
//! whatever the group calls its devices (a meeting's seats, a
//! conversation's device ids); every request from the service names the
//! owner the device's credential must have.
//!
//! The service sends every request to every member, naming the committer
//! it asks to carry it out. Each device keeps what was asked and applies a
//! commit relayed to it only if it comes from that committer, signed under
//! its own credential, and adds and removes exactly what was asked: a
//! member who is not the committer, or a committer going beyond its
//! requests (or a relay passing either along), cannot evict or add anyone.
//! A refused commit is reported and shown; the device stays at its epoch,
//! so its security code no longer matches the others'.
//!
//! The committer's own commits stay pending until the service echoes them
//! back in order; a refused one is discarded and, when it was refused only
//! for being stale, built again on the new epoch. One commit is in flight
//! at a time; requests that arrive meanwhile wait their turn.
//!
//! The agent's state serialises (with the member's MLS state, kept by
//! `OpenMlsMember::export_state`), so a device can stop and carry on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;

use conclave_proto::credential::{DeviceCredential, DeviceOwner, SignedCredential};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::credential::{fingerprint, Authority, KnownDevices, Sighting};
use crate::mls::{Commit, CommitChanges, GroupMember, LeafCredential, MlsError, Processed, GROUP_ID};

/// What a group calls one of its devices.
pub trait Member: Ord + Clone + Debug + Serialize + DeserializeOwned {}
impl<T: Ord + Clone + Debug + Serialize + DeserializeOwned> Member for T {}

/// What the delivery service tells this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupInput<M> {
    /// This device is the first: it creates the group.
    CreateGroup,
    /// The service asks `committer` to add `member`'s device, owned by `owner`.
    AddRequest { member: M, owner: DeviceOwner, key_package: Vec<u8>, committer: M },
    /// The service asks `committer` to remove `member`'s device, owned by
    /// `owner`; `proposal` is the server's own MLS proposal to remove it,
    /// signed as the group's external sender, when the group has one.
    RemoveRequest { member: M, owner: DeviceOwner, committer: M, proposal: Option<Vec<u8>> },
    /// A commit the service ordered (this device's own, or another's).
    Commit { from: M, epoch: u64, commit: Vec<u8> },
    /// This device was added; `members` is who holds each device now.
    Welcome { welcome: Vec<u8>, committer: M, members: Vec<(M, DeviceOwner)> },
    /// This device's commit was not taken; the group is at `epoch`.
    Rejected { epoch: u64 },
    /// An application message from the group.
    Application { from: M, message: Vec<u8> },
}

/// What this device sends the delivery service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOutput<M> {
    /// Add me, with this.
    KeyPackage(Vec<u8>),
    /// A commit built on `epoch`, adding and removing these members.
    Commit { epoch: u64, commit: Vec<u8>, welcome: Option<Vec<u8>>, added: Vec<M>, removed: Vec<M> },
    /// This device refused a relayed commit (so the server keeps a record).
    CommitRefused { epoch: u64, from: M, reason: String },
}

/// What handling a message changed, for the device to show or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent<M> {
    /// The group is at a new epoch: new keys and a new security code.
    NewEpoch(u64),
    Application {
        from: M,
        plaintext: Vec<u8>,
    },
    /// This device was removed from the group; it can read nothing more.
    Removed,
    /// Another device left the group, by a commit that removed it at the
    /// server's own signed proposal (`by_server`) or at the committer's.
    DeviceRemoved {
        member: M,
        by_server: bool,
    },
    /// Who is in the group now (after every new epoch).
    Roster(Vec<MemberInfo<M>>),
    /// An account seen before is here with a device key never seen for it:
    /// a new device, or someone else holding the account. Shown to the user.
    NewDevice {
        member: M,
        display_name: String,
        fingerprint: String,
    },
    /// A relayed commit was refused (see the module's docs). Shown as a warning.
    CommitRefused {
        from: M,
        reason: String,
    },
}

/// One device of the group as this device sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo<M> {
    pub leaf: u32,
    /// Who the service says holds it, when it said.
    pub member: Option<M>,
    /// Whose device its credential says it is (believed only if `verified`).
    pub owner: Option<DeviceOwner>,
    pub display_name: String,
    /// The device key, as people compare it.
    pub fingerprint: String,
    /// The server's authority vouches for this device key.
    pub verified: bool,
    pub is_self: bool,
}

/// What handling one input produced.
#[derive(Debug)]
pub struct Handled<M> {
    pub send: Vec<GroupOutput<M>>,
    pub events: Vec<GroupEvent<M>>,
}

impl<M> Default for Handled<M> {
    fn default() -> Self {
        Self { send: Vec::new(), events: Vec::new() }
    }
}

/// A change the service asked of this device, as committer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Request<M> {
    Add { member: M, owner: DeviceOwner, key_package: Vec<u8> },
    Remove { member: M, owner: DeviceOwner },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "M: Member"))]
struct InFlight<M> {
    request: Request<M>,
    /// The epoch it was built on.
    epoch: u64,
    commit: Vec<u8>,
    /// Members removed at the server's own proposals in this commit.
    #[serde(default)]
    swept: Vec<(M, DeviceOwner)>,
    /// Every member this commit removes.
    #[serde(default)]
    removed: Vec<M>,
}

/// What the service asked for and no commit has done yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "M: Member"))]
struct Asked<M: Ord> {
    /// Devices to add: each member's owner and KeyPackage signature key.
    adds: BTreeMap<M, (DeviceOwner, Vec<u8>)>,
    /// Devices to remove, by member, with their owner.
    removals: BTreeMap<M, DeviceOwner>,
    /// Members whose removal the server proposes itself: it proposes it
    /// again for every epoch until a commit carries it out, so the
    /// committer waits for the proposal of the epoch it builds on.
    #[serde(default)]
    proposed: BTreeSet<M>,
}

impl<M: Ord> Default for Asked<M> {
    fn default() -> Self {
        Self { adds: BTreeMap::new(), removals: BTreeMap::new(), proposed: BTreeSet::new() }
    }
}

/// This device's credential, once the server vouched for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "M: Member"))]
struct Me<M> {
    authority: Authority,
    member: M,
    owner: DeviceOwner,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "M: Member"))]
pub struct GroupAgent<M: Ord> {
    me: Option<Me<M>>,
    /// Who the service asks to commit.
    committer: Option<M>,
    asked: Asked<M>,
    /// Who holds each device in the group, by its owner, in the service's word.
    #[serde(with = "pairs")]
    holders: BTreeMap<DeviceOwner, M>,
    in_flight: Option<InFlight<M>>,
    queued: VecDeque<Request<M>>,
    known: KnownDevices,
}

impl<M: Member> GroupAgent<M> {
    /// An agent that has seen these device keys per account before.
    pub fn new(known: KnownDevices) -> Self {
        Self {
            me: None,
            committer: None,
            asked: Asked::default(),
            holders: BTreeMap::new(),
            in_flight: None,
            queued: VecDeque::new(),
            known,
        }
    }

    /// Every device key seen per account, for the device to keep.
    pub fn known_devices(&self) -> &KnownDevices {
        &self.known
    }

    /// Whether the server has vouched for this device yet.
    pub fn is_vouched(&self) -> bool {
        self.me.is_some()
    }

    /// The server vouched for this device as `member`: take the credential
    /// (if it is for this device's key) and say what to be added with.
    pub fn vouched<G: GroupMember>(
        &mut self,
        device: &mut G,
        credential: &[u8],
        authority: &str,
        member: M,
    ) -> Option<GroupOutput<M>> {
        let authority = Authority::from_base64(authority).ok()?;
        let checked = authority.verify(credential, &device.signature_key()).ok()?;
        if self.me.is_none() {
            device.set_identity(credential).ok()?;
        }
        self.me = Some(Me { authority, member, owner: checked.owner });
        device.key_package().ok().map(GroupOutput::KeyPackage)
    }

    /// Who is in the group, each credential checked.
    pub fn roster<G: GroupMember>(&self, device: &G) -> Vec<MemberInfo<M>> {
        let me = device.leaf_index();
        device.roster().into_iter().map(|(leaf, credential)| self.describe(leaf, &credential, me)).collect()
    }

    fn describe(&self, leaf: u32, credential: &LeafCredential, me: Option<u32>) -> MemberInfo<M> {
        let checked = self.check(credential);
        // An unchecked credential still says who it claims to be, for the
        // warning next to it; its claim is not trusted for anything.
        let claimed = checked.clone().or_else(|| claimed(credential));
        MemberInfo {
            leaf,
            member: checked.as_ref().and_then(|c| self.holders.get(&c.owner).cloned()),
            owner: claimed.as_ref().map(|c| c.owner.clone()),
            display_name: claimed.map(|c| c.display_name).unwrap_or_default(),
            fingerprint: fingerprint(&credential.signature_key),
            verified: checked.is_some(),
            is_self: me == Some(leaf),
        }
    }

    /// A leaf's credential, if the server's authority vouches for it.
    fn check(&self, credential: &LeafCredential) -> Option<DeviceCredential> {
        self.me.as_ref()?.authority.verify(&credential.identity, &credential.signature_key).ok()
    }

    fn is_me(&self, member: &M) -> bool {
        self.me.as_ref().is_some_and(|me| me.member == *member)
    }

    /// Handles one message from the service; whatever cannot be used
    /// changes nothing.
    pub fn handle<G: GroupMember>(&mut self, device: &mut G, input: GroupInput<M>) -> Handled<M> {
        let mut out = Handled::default();
        match input {
            GroupInput::CreateGroup => {
                if let Some(me) = &self.me {
                    // The server is the group's external sender: it proposes
                    // removals itself, signed with the key that vouches for
                    // every device, and each member checks them.
                    if device.create_group(GROUP_ID, Some(&me.authority.key())).is_ok() {
                        self.holders.insert(me.owner.clone(), me.member.clone());
                        self.committer = Some(me.member.clone());
                        out.events.extend(self.epoch_events(device));
                    }
                }
            }
            GroupInput::AddRequest { member, owner, key_package, committer } => {
                let Ok(credential) = device.key_package_credential(&key_package) else { return out };
                self.asked.adds.insert(member.clone(), (owner.clone(), credential.signature_key));
                if self.is_me(&committer) {
                    self.queued.push_back(Request::Add { member, owner, key_package });
                }
                self.committer = Some(committer);
            }
            GroupInput::RemoveRequest { member, owner, committer, proposal } => {
                if let Some(proposal) = proposal {
                    // One that does not check out is dropped: the committer
                    // then removes the device by a proposal of its own.
                    if self.take_removal_proposal(device, &proposal, &owner).is_ok() {
                        self.asked.proposed.insert(member.clone());
                    }
                }
                self.asked.removals.insert(member.clone(), owner.clone());
                if self.is_me(&committer) {
                    self.queued.push_back(Request::Remove { member, owner });
                }
                self.committer = Some(committer);
            }
            GroupInput::Commit { from, epoch, commit } => {
                if self.in_flight.as_ref().is_some_and(|f| f.commit == commit) {
                    // Ours, ordered by the service: apply it.
                    let done = self.in_flight.take().expect("checked above");
                    if device.confirm_commit().is_ok() {
                        self.fulfilled(&done.request);
                        for (member, owner) in &done.swept {
                            self.forget(member, owner);
                        }
                        out.events.extend(done.removed.iter().map(|member| GroupEvent::DeviceRemoved {
                            member: member.clone(),
                            by_server: done.swept.iter().any(|(m, _)| m == member),
                        }));
                        out.events.extend(self.epoch_events(device));
                    }
                } else {
                    let (events, refusal) = self.process(device, from.clone(), &commit);
                    out.events.extend(events);
                    if let Some(reason) = refusal {
                        out.send.push(GroupOutput::CommitRefused { epoch: epoch.saturating_sub(1), from, reason });
                    }
                }
            }
            GroupInput::Rejected { epoch } => {
                if let Some(refused) = self.in_flight.take() {
                    let _ = device.discard_commit();
                    // Stale (another commit was first): build it again on
                    // the new epoch. Refused for what it is: drop it.
                    if epoch != refused.epoch {
                        self.queued.push_front(refused.request);
                    }
                }
            }
            GroupInput::Welcome { welcome, committer, members } => {
                if self.me.is_some() && device.join(&welcome).is_ok() {
                    // What was asked before is in the tree this device got;
                    // the service tells a newcomer what is still to be done.
                    self.asked = Asked::default();
                    self.committer = Some(committer);
                    self.holders = members.into_iter().map(|(member, owner)| (owner, member)).collect();
                    out.events.extend(self.epoch_events(device));
                }
            }
            GroupInput::Application { from, message } => {
                // An application message is never a commit: nothing to judge.
                let mut no_commits = |_: &CommitChanges| Err("not a commit".to_owned());
                if let Ok(Processed::Application { plaintext, .. }) = device.process(&message, &mut no_commits) {
                    out.events.push(GroupEvent::Application { from, plaintext });
                }
            }
        }
        out.send.extend(self.next_commit(device));
        out
    }

    /// Applies another member's commit if it is what the service asked of
    /// the committer it named; returns the events and, when refused, why.
    fn process<G: GroupMember>(
        &mut self,
        device: &mut G,
        from: M,
        commit: &[u8],
    ) -> (Vec<GroupEvent<M>>, Option<String>) {
        let mut judged = None;
        let result = {
            let mut judge = |changes: &CommitChanges| {
                let verdict = self.judge(&from, changes);
                if let Ok(done) = &verdict {
                    judged = Some(done.clone());
                }
                verdict.map(|_| ())
            };
            device.process(commit, &mut judge)
        };
        match result {
            Ok(Processed::NewEpoch(_)) => {
                let mut events = Vec::new();
                if let Some((added, removed)) = judged {
                    for (member, owner) in &added {
                        self.asked.adds.remove(member);
                        self.holders.insert(owner.clone(), member.clone());
                    }
                    for (member, owner, by_server) in removed {
                        self.forget(&member, &owner);
                        events.push(GroupEvent::DeviceRemoved { member, by_server });
                    }
                }
                events.extend(self.epoch_events(device));
                (events, None)
            }
            Ok(Processed::Removed) => {
                self.in_flight = None;
                self.queued.clear();
                (vec![GroupEvent::Removed], None)
            }
            Err(MlsError::Vetoed(reason)) => {
                (vec![GroupEvent::CommitRefused { from, reason: reason.clone() }], Some(reason))
            }
            _ => (Vec::new(), None),
        }
    }

    /// Whether another member's commit is what the delivery service asked
    /// of the committer it named: sent by that committer under its own
    /// credential, adding exactly the devices whose KeyPackages the service
    /// forwarded (each vouched for by the server, one device per member),
    /// removing only the devices the service asked to remove, and nothing
    /// else. Returns the members added and removed, with their owners (and
    /// for each removal, whether the server proposed it).
    #[allow(clippy::type_complexity)]
    fn judge(
        &self,
        from: &M,
        changes: &CommitChanges,
    ) -> Result<(Vec<(M, DeviceOwner)>, Vec<(M, DeviceOwner, bool)>), String> {
        if self.me.is_none() {
            return Err("this device has no credential yet".into());
        }
        if self.committer.as_ref() != Some(from) {
            return Err(format!("{from:?} is not the committer the server named"));
        }
        let committer = changes.committer.as_ref().ok_or("the commit is not from a member")?;
        let signer = self.check(committer).ok_or("the committer's credential is not the server's")?;
        if self.holders.get(&signer.owner) != Some(from) {
            return Err(format!("the commit is not signed by {from:?}'s device"));
        }
        if changes.committer_after.as_ref().is_some_and(|after| after.identity != committer.identity) {
            return Err("the committer changes its own credential".into());
        }
        if changes.other_proposals > 0 {
            return Err("the commit makes changes nobody asked for".into());
        }
        let mut removed = Vec::new();
        let server = self.me.as_ref().map(|me| me.authority.key());
        for (leaf, signer) in &changes.removed_by_external {
            if server.as_ref().map(|k| &k[..]) != Some(&signer[..]) {
                return Err("it carries out a removal proposed by someone other than this server".into());
            }
            // The server proposed it, signed: it needs no other word.
            if let Some((member, owner)) = claimed(leaf).and_then(|c| self.member_of(&c.owner)) {
                removed.push((member, owner, true));
            }
        }
        for leaf in &changes.removed {
            let owner = claimed(leaf).map(|c| c.owner);
            match self.asked.removals.iter().find(|(_, asked)| Some(*asked) == owner.as_ref()) {
                Some((member, owner)) => removed.push((member.clone(), owner.clone(), false)),
                None => {
                    let who = owner.map_or_else(|| "a member".to_owned(), |o| format!("{o:?}"));
                    return Err(format!("it removes {who}, whom the server did not ask to remove"));
                }
            }
        }
        let mut added = Vec::new();
        for leaf in &changes.added {
            let credential = self.check(leaf).ok_or("it adds a device the server did not vouch for")?;
            let asked = self
                .asked
                .adds
                .iter()
                .find(|(_, (owner, key))| *owner == credential.owner && *key == leaf.signature_key);
            let Some((member, (owner, _))) = asked else {
                return Err(format!("it adds a device of {:?} that the server did not ask to add", credential.owner));
            };
            // One device per member: an older one must leave in this commit.
            let stays = changes.before.iter().any(|(_, l)| {
                let holder = claimed(l).and_then(|c| self.holders.get(&c.owner));
                let leaves = !changes.removed.contains(l) && !changes.removed_by_external.iter().any(|(r, _)| r == l);
                holder == Some(member) && leaves
            });
            if stays || added.iter().any(|(m, _)| m == member) {
                return Err(format!("{member:?} would have two devices in the group"));
            }
            added.push((member.clone(), owner.clone()));
        }
        Ok((added, removed))
    }

    fn fulfilled(&mut self, request: &Request<M>) {
        match request {
            Request::Add { member, owner, .. } => {
                self.asked.adds.remove(member);
                self.holders.insert(owner.clone(), member.clone());
            }
            Request::Remove { member, owner } => self.forget(member, owner),
        }
    }

    /// `member`'s device, owned by `owner`, is out of the group.
    fn forget(&mut self, member: &M, owner: &DeviceOwner) {
        self.asked.removals.remove(member);
        self.asked.proposed.remove(member);
        if self.holders.get(owner) == Some(member) {
            self.holders.remove(owner);
        }
    }

    /// Which member a device owned by `owner` is, by the service's word.
    fn member_of(&self, owner: &DeviceOwner) -> Option<(M, DeviceOwner)> {
        let asked = self.asked.removals.iter().find(|(_, o)| *o == owner).map(|(m, _)| m.clone());
        asked.or_else(|| self.holders.get(owner).cloned()).map(|m| (m, owner.clone()))
    }

    /// Keeps the server's proposal to remove the device `owner` holds, if
    /// it is the server's (signed with the authority's key, as the group's
    /// external sender) and removes that device and no other.
    fn take_removal_proposal<G: GroupMember>(
        &self,
        device: &mut G,
        proposal: &[u8],
        owner: &DeviceOwner,
    ) -> Result<u32, MlsError> {
        let server = self.me.as_ref().ok_or(MlsError::NoGroup)?.authority.key();
        let mut judge = |removed: &LeafCredential, signer: &[u8]| {
            if signer != server {
                return Err("the proposal is not signed by this server".to_owned());
            }
            if claimed(removed).map(|c| c.owner).as_ref() != Some(owner) {
                return Err("the proposal removes another device than the one named".to_owned());
            }
            Ok(())
        };
        device.take_removal_proposal(proposal, &mut judge)
    }

    /// Whether `request` removes a device whose removal the server proposes
    /// and whose proposal for this epoch has not come yet.
    fn awaits_proposal<G: GroupMember>(&self, device: &G, request: &Request<M>) -> bool {
        let Request::Remove { member, owner } = request else { return false };
        if !self.asked.proposed.contains(member) {
            return false;
        }
        let pending = device.pending_removals();
        let leaf = device.roster().into_iter().find(|(_, c)| claimed(c).is_some_and(|c| c.owner == *owner));
        // Gone already: nothing to wait for (the request is skipped).
        leaf.is_some_and(|(leaf, _)| !pending.contains(&leaf))
    }

    /// Members whose removal the server proposed and this device keeps:
    /// whatever commit it builds next carries those proposals out.
    fn swept<G: GroupMember>(&self, device: &G) -> Vec<(M, DeviceOwner)> {
        let pending = device.pending_removals();
        if pending.is_empty() {
            // The common case: no roster to read (each credential parsed).
            return Vec::new();
        }
        device
            .roster()
            .into_iter()
            .filter(|(leaf, _)| pending.contains(leaf))
            .filter_map(|(_, credential)| claimed(&credential).and_then(|c| self.member_of(&c.owner)))
            .collect()
    }

    /// A new epoch, who is in the group now, and any account seen on a new
    /// device.
    fn epoch_events<G: GroupMember>(&mut self, device: &G) -> Vec<GroupEvent<M>> {
        let Some(epoch) = device.epoch() else { return Vec::new() };
        let roster = self.roster(device);
        let mut events = vec![GroupEvent::NewEpoch(epoch)];
        for info in roster.iter().filter(|m| m.verified && !m.is_self) {
            let (Some(DeviceOwner::Account { user_id, .. }), Some(member)) = (&info.owner, &info.member) else {
                continue;
            };
            if self.known.observe(user_id, &info.fingerprint) == Sighting::NewDevice {
                events.push(GroupEvent::NewDevice {
                    member: member.clone(),
                    display_name: info.display_name.clone(),
                    fingerprint: info.fingerprint.clone(),
                });
            }
        }
        events.push(GroupEvent::Roster(roster));
        events
    }

    /// Builds the next queued commit, unless one is in flight. Requests that
    /// no longer apply (someone already gone) are skipped.
    fn next_commit<G: GroupMember>(&mut self, device: &mut G) -> Option<GroupOutput<M>> {
        if self.in_flight.is_some() {
            return None;
        }
        let epoch = device.epoch()?;
        while let Some(request) = self.queued.pop_front() {
            if self.awaits_proposal(device, &request) {
                // The epoch moved on since the server's proposal: its
                // proposal for this one follows (see `Asked::proposed`).
                self.queued.push_front(request);
                return None;
            }
            // Any commit carries out the server's proposals this device keeps.
            let swept = self.swept(device);
            let Ok((built, added, mut removed)) = self.build(device, &request) else { continue };
            for (member, _) in &swept {
                if !removed.contains(member) {
                    removed.push(member.clone());
                }
            }
            let commit = built.commit.clone();
            self.in_flight = Some(InFlight { request, epoch, commit, swept, removed: removed.clone() });
            return Some(GroupOutput::Commit { epoch, commit: built.commit, welcome: built.welcome, added, removed });
        }
        None
    }

    #[allow(clippy::type_complexity)]
    fn build<G: GroupMember>(
        &self,
        device: &mut G,
        request: &Request<M>,
    ) -> Result<(Commit, Vec<M>, Vec<M>), MlsError> {
        match request {
            Request::Add { member, owner, key_package } => {
                // Only a device the server vouches for, owned as the server
                // says the member's device is, gets into the group.
                let credential = device.key_package_credential(key_package)?;
                let vouched = self.check(&credential).ok_or_else(|| MlsError::Refused("not vouched for".into()))?;
                if vouched.owner != *owner {
                    return Err(MlsError::Refused("the credential names another owner".into()));
                }
                let commit = device.add(std::slice::from_ref(key_package))?;
                Ok((commit, vec![member.clone()], Vec::new()))
            }
            Request::Remove { member, owner } => {
                let leaf = device
                    .roster()
                    .into_iter()
                    .find(|(leaf, credential)| {
                        Some(*leaf) != device.leaf_index() && claimed(credential).is_some_and(|c| c.owner == *owner)
                    })
                    .ok_or(MlsError::NoGroup)?
                    .0;
                let commit = if device.pending_removals().contains(&leaf) {
                    device.commit_pending()?
                } else {
                    device.remove(&[leaf])?
                };
                Ok((commit, Vec::new(), vec![member.clone()]))
            }
        }
    }
}

/// A map kept as a list of pairs: its keys are not strings, which JSON
/// object keys must be.
mod pairs {
    use serde::de::Deserialize;
    use serde::ser::Serialize;
    use std::collections::BTreeMap;

    pub fn serialize<K: Serialize, V: Serialize, S: serde::Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: serde::Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?.into_iter().collect())
    }
}

/// What a leaf's credential says, read without checking the signature.
fn claimed(credential: &LeafCredential) -> Option<DeviceCredential> {
    SignedCredential::from_bytes(&credential.identity)?.credential()
}
