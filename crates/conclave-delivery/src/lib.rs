//! The MLS delivery service of one group: the server's whole part in a
//! group's end-to-end encryption. It never sees a key. It orders commits
//! (one per epoch; a stale one is refused, so members never fork),
//! designates one committer (the first member, then the longest present),
//! asks it to add every device the group should have and to remove every
//! device it should not, and hands Welcomes only to those it asked to add.
//!
//! It also decides who may change the group: a commit is accepted only from
//! the designated committer, adding only KeyPackages the service asked it to
//! add and removing only members the service asked it to remove. Every
//! request goes to every member, naming the committer, so each device can
//! hold a relayed commit to the same rule (a relay passing on what the
//! service would refuse gets nowhere; see conclave-e2ee's group agent).
//!
//! Generic over the member, a device of the group: a participant's seat in
//! a meeting ([`meeting`]), a device id in a conversation. Pure, and its
//! whole state serialises: a conversation's group is stored between
//! messages and reloaded by whichever node serves it next.

pub mod meeting;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// Largest application message or key package accepted.
pub const MAX_BLOB: usize = 60 * 1024;

/// Largest commit or Welcome accepted (base64). A Welcome carries the whole
/// ratchet tree, which grows with every device in the group (`cargo bench -p
/// conclave-e2ee --bench mls` shows its size for 200 and 2,000 devices), and
/// a commit adding many devices carries each one's key package: a channel
/// of a thousand people with two devices each must still take newcomers.
pub const MAX_HANDSHAKE: usize = 4 << 20;

/// A member of a group: one device.
pub trait Member: Ord + Clone + Debug + Serialize + DeserializeOwned {}
impl<T: Ord + Clone + Debug + Serialize + DeserializeOwned> Member for T {}

/// What the service sends, and to whom. MLS blobs are carried as the text
/// the devices sent (base64), never read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "delivery", rename_all = "snake_case")]
pub enum Delivery<M> {
    /// You are the first: create the group (epoch 0).
    CreateGroup { to: M },
    /// The service asks `committer` to add `member`'s device.
    AddRequest { to: M, member: M, key_package: String, committer: M },
    /// The service asks `committer` to remove `member`'s device.
    RemoveRequest { to: M, member: M, committer: M },
    /// A commit the service accepted; `epoch` is the one it starts.
    Commit { to: M, from: M, epoch: u64, commit: String },
    /// You were added: join with this. `members` is who is in the group now.
    Welcome { to: M, epoch: u64, welcome: String, committer: M, members: Vec<M> },
    /// Your commit was not taken: build on `epoch` (or drop it).
    Rejected { to: M, epoch: u64, reason: CommitRefusal },
    /// An application message (encrypted chat) from `from`.
    Application { to: M, from: M, message: String },
}

impl<M> Delivery<M> {
    pub fn recipient(&self) -> &M {
        match self {
            Self::CreateGroup { to }
            | Self::AddRequest { to, .. }
            | Self::RemoveRequest { to, .. }
            | Self::Commit { to, .. }
            | Self::Welcome { to, .. }
            | Self::Rejected { to, .. }
            | Self::Application { to, .. } => to,
        }
    }
}

/// A commit as a member sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposedCommit<M> {
    /// The epoch it was built on.
    pub epoch: u64,
    pub commit: String,
    pub welcome: Option<String>,
    pub added: Vec<M>,
    pub removed: Vec<M>,
}

/// Why a commit, or a message to the group, was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitRefusal {
    NoGroup,
    NotCommitter,
    Stale,
    Malformed,
    /// It adds someone the service did not ask to add (or without a Welcome).
    UnaskedAdd,
    /// It removes someone the service did not ask to remove.
    UnaskedRemoval,
    /// A KeyPackage from a device already in the group, or unusable.
    UnneededKeyPackage,
    /// An application message from outside the group.
    NotMember,
}

impl CommitRefusal {
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoGroup => "there is no group yet",
            Self::NotCommitter => "only the designated committer commits",
            Self::Stale => "another commit was first; build on the new epoch",
            Self::Malformed => "malformed commit",
            Self::UnaskedAdd => "a commit may add only members the server asked to add, with a Welcome",
            Self::UnaskedRemoval => "a commit may remove only members the server asked to remove",
            Self::UnneededKeyPackage => "not a KeyPackage this group needs",
            Self::NotMember => "only members send to the group",
        }
    }

    /// A refusal that says the sender tried to change the group against
    /// the rules (worth auditing), not merely that it was late or broken.
    pub fn is_rogue(self) -> bool {
        matches!(self, Self::NotCommitter | Self::UnaskedAdd | Self::UnaskedRemoval)
    }
}

/// The delivery service of one group; its whole state serialises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "M: Member"))]
pub struct DeliveryService<M: Ord> {
    /// The epoch the next commit must be built on; `None` before the group exists.
    epoch: Option<u64>,
    /// Devices in the group, each with its order of arrival.
    in_group: BTreeMap<M, u64>,
    arrivals: u64,
    /// KeyPackages of devices to add, until a commit adds them.
    pending: BTreeMap<M, String>,
    /// Members the committer was asked to remove, until a commit removes them.
    leaving: BTreeSet<M>,
    /// Who builds commits: the first member, then the longest present.
    committer: Option<M>,
    /// The leaf each device holds in the group's MLS tree, so the server can
    /// propose a removal itself, as the group's external sender. MLS puts a
    /// newcomer in the leftmost empty leaf once the commit's removals are
    /// done (RFC 9420 §12.1.1): the service follows that from the commits it
    /// orders. `None` for a group whose leaves it did not follow from the
    /// start (one stored before it did); members then remove devices by
    /// proposals of their own, as before.
    #[serde(default)]
    leaves: Option<BTreeMap<M, u32>>,
}

impl<M: Ord> Default for DeliveryService<M> {
    fn default() -> Self {
        Self {
            epoch: None,
            in_group: BTreeMap::new(),
            arrivals: 0,
            pending: BTreeMap::new(),
            leaving: BTreeSet::new(),
            committer: None,
            leaves: None,
        }
    }
}

pub type Deliveries<M> = Vec<Delivery<M>>;

impl<M: Member> DeliveryService<M> {
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// The devices in the group.
    pub fn members(&self) -> BTreeSet<M> {
        self.in_group.keys().cloned().collect()
    }

    pub fn committer(&self) -> Option<&M> {
        self.committer.as_ref()
    }

    /// Whether `member`'s device is in the group and staying.
    pub fn holds(&self, member: &M) -> bool {
        self.in_group.contains_key(member) && !self.leaving.contains(member)
    }

    /// Whether `member`'s KeyPackage waits for a commit to add it.
    pub fn is_pending(&self, member: &M) -> bool {
        self.pending.contains_key(member)
    }

    /// How many devices wait to be added.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Where the server's own proposal to remove `member` applies: the
    /// group's epoch and the member's leaf, while its removal is asked for
    /// and not yet committed (and the service knows its leaf).
    pub fn removal_at(&self, member: &M) -> Option<(u64, u32)> {
        if !self.leaving.contains(member) {
            return None;
        }
        Some((self.epoch?, *self.leaves.as_ref()?.get(member)?))
    }

    /// The leaf `member`'s device holds, where the service knows it.
    pub fn leaf(&self, member: &M) -> Option<u32> {
        self.leaves.as_ref()?.get(member).copied()
    }

    /// Whether anything asked of the committer is still to be done.
    pub fn has_outstanding(&self) -> bool {
        !self.pending.is_empty() || !self.leaving.is_empty()
    }

    /// Another member takes over as committer (the one named has not done
    /// what it was asked, as when its device is offline for days): every
    /// member hears all that is still to be done, now asked of `to`.
    /// Nothing happens unless `to` is in the group and staying.
    pub fn reassign(&mut self, to: &M) -> Deliveries<M> {
        if !self.holds(to) || self.committer.as_ref() == Some(to) {
            return Deliveries::new();
        }
        self.committer = Some(to.clone());
        let outstanding = self.outstanding();
        outstanding.iter().flat_map(|request| self.to_members(|member| request.to(member))).collect()
    }

    /// Whether members were asked to be removed and the commit that removes
    /// them has not come yet: what is encrypted now could still be read by them.
    pub fn removals_pending(&self) -> bool {
        !self.leaving.is_empty()
    }

    /// A KeyPackage from a device that should be in the group.
    pub fn key_package(&mut self, from: M, key_package: String) -> Deliveries<M> {
        if key_package.is_empty() || key_package.len() > MAX_BLOB || self.holds(&from) {
            return self.reject(from, CommitRefusal::UnneededKeyPackage);
        }
        match self.committer.clone() {
            None => {
                // The first: it makes the group.
                self.epoch = Some(0);
                self.arrive(from.clone());
                self.committer = Some(from.clone());
                self.leaves = Some(BTreeMap::from([(from.clone(), 0)]));
                vec![Delivery::CreateGroup { to: from }]
            }
            Some(committer) => {
                self.pending.insert(from.clone(), key_package.clone());
                self.to_members(|to| Delivery::AddRequest {
                    to,
                    member: from.clone(),
                    key_package: key_package.clone(),
                    committer: committer.clone(),
                })
            }
        }
    }

    /// A commit from a member. `present` says who may be welcomed now (in
    /// a meeting, whom the room admits; in a conversation, its members).
    pub fn commit(&mut self, from: M, proposed: ProposedCommit<M>, present: impl Fn(&M) -> bool) -> Deliveries<M> {
        match self.check(&from, &proposed, present) {
            Ok(()) => self.apply(from, proposed),
            Err(refusal) => self.reject(from, refusal),
        }
    }

    /// What is wrong with a commit, if anything, without accepting it.
    pub fn check(
        &self,
        from: &M,
        proposed: &ProposedCommit<M>,
        present: impl Fn(&M) -> bool,
    ) -> Result<(), CommitRefusal> {
        let current = self.epoch.ok_or(CommitRefusal::NoGroup)?;
        if self.committer.as_ref() != Some(from) {
            return Err(CommitRefusal::NotCommitter);
        }
        if proposed.epoch != current {
            return Err(CommitRefusal::Stale);
        }
        let too_big = |b: &String| b.is_empty() || b.len() > MAX_HANDSHAKE;
        if too_big(&proposed.commit) || proposed.welcome.as_ref().is_some_and(too_big) {
            return Err(CommitRefusal::Malformed);
        }
        // A Welcome reaches only those the service asked to add, still present.
        let asked = |p: &M| {
            present(p)
                && self.pending.contains_key(p)
                && (!self.in_group.contains_key(p) || proposed.removed.contains(p))
        };
        if !proposed.added.iter().all(asked) || proposed.added.is_empty() != proposed.welcome.is_none() {
            return Err(CommitRefusal::UnaskedAdd);
        }
        if proposed.removed.iter().any(|p| !self.leaving.contains(p) || p == from) {
            return Err(CommitRefusal::UnaskedRemoval);
        }
        Ok(())
    }

    fn apply(&mut self, from: M, proposed: ProposedCommit<M>) -> Deliveries<M> {
        let next = proposed.epoch + 1;
        self.epoch = Some(next);
        for p in &proposed.removed {
            self.in_group.remove(p);
            self.leaving.remove(p);
            if let Some(leaves) = &mut self.leaves {
                leaves.remove(p);
            }
        }
        // Every member gets it, the committer too: that is its confirmation
        // (it applies its commit only once the order is known). So do the
        // removed, still reachable or not: it is how a device learns it is out.
        let commit = proposed.commit;
        let echo = |to: M| Delivery::Commit { to, from: from.clone(), epoch: next, commit: commit.clone() };
        let mut out = self.to_members(echo);
        out.extend(proposed.removed.iter().cloned().map(echo));
        if self.leaves.is_some() {
            // The server's proposals were for the epoch this commit ended:
            // removals still to be done are proposed again for the new one
            // (newcomers hear them after their Welcome, as every request).
            let committer = self.committer.clone().expect("a group has a committer");
            for p in self.leaving.clone() {
                out.extend(self.removal(&p, &committer));
            }
        }
        for p in &proposed.added {
            self.pending.remove(p);
            self.arrive(p.clone());
            if let Some(leaves) = &mut self.leaves {
                let taken: BTreeSet<u32> = leaves.values().copied().collect();
                let leftmost_empty = (0..).find(|leaf| !taken.contains(leaf)).expect("a leaf is free");
                leaves.insert(p.clone(), leftmost_empty);
            }
        }
        let committer = self.committer.clone().expect("a group has a committer");
        let welcome = proposed.welcome.unwrap_or_default();
        let members: Vec<M> = self.in_group.keys().filter(|m| !self.leaving.contains(m)).cloned().collect();
        let outstanding = self.outstanding();
        for p in proposed.added {
            out.push(Delivery::Welcome {
                to: p.clone(),
                epoch: next,
                welcome: welcome.clone(),
                committer: committer.clone(),
                members: members.clone(),
            });
            // A newcomer hears what is still to be done, like every member.
            out.extend(outstanding.iter().map(|request| request.to(p.clone())));
        }
        out
    }

    /// An application message for every other member.
    pub fn application(&mut self, from: M, message: String) -> Deliveries<M> {
        if !self.in_group.contains_key(&from) || message.len() > MAX_BLOB {
            return self.reject(from, CommitRefusal::NotMember);
        }
        self.in_group
            .keys()
            .filter(|p| **p != from)
            .map(|p| Delivery::Application { to: p.clone(), from: from.clone(), message: message.clone() })
            .collect()
    }

    /// Who should be in the group changed: every member not `present` is
    /// to be removed (asked of the committer, or of a new one if it was the
    /// committer who left), and KeyPackages of absent devices are dropped.
    pub fn membership(&mut self, present: impl Fn(&M) -> bool) -> Deliveries<M> {
        self.pending.retain(|p, _| present(p));
        let gone: Vec<M> = self.in_group.keys().filter(|p| !present(p) && !self.leaving.contains(p)).cloned().collect();
        if gone.is_empty() {
            return Deliveries::new();
        }
        self.leaving.extend(gone.iter().cloned());
        if self.committer.as_ref().is_some_and(|c| !present(c)) {
            return self.hand_over(&present);
        }
        let committer = self.committer.clone().expect("a group has a committer");
        gone.iter().flat_map(|p| self.removal(p, &committer)).collect()
    }

    /// A removal request to every staying member, and to the device being
    /// removed (so that, if it still listens, it knows the commit that
    /// removes it was asked for).
    fn removal(&self, member: &M, committer: &M) -> Deliveries<M> {
        let request = |to| Delivery::RemoveRequest { to, member: member.clone(), committer: committer.clone() };
        let mut out = self.to_members(request);
        out.push(request(member.clone()));
        out
    }

    /// A member came back with a new device (it has no MLS state): the old
    /// device's leaf is removed, by another member if it was the committer,
    /// and the new device joins like anyone else once its KeyPackage comes.
    pub fn device_replaced(&mut self, who: &M, present: impl Fn(&M) -> bool) -> Deliveries<M> {
        self.pending.remove(who);
        if !self.holds(who) {
            return Deliveries::new();
        }
        self.leaving.insert(who.clone());
        if self.committer.as_ref() == Some(who) {
            return self.hand_over(&present);
        }
        let committer = self.committer.clone().expect("a group has a committer");
        self.removal(who, &committer)
    }

    /// The committer is gone: the longest-present member still here and
    /// staying takes over, and every member hears all that is still to be
    /// done, now asked of it. With nobody left the group ends; a new one
    /// starts with the next device.
    fn hand_over(&mut self, present: &impl Fn(&M) -> bool) -> Deliveries<M> {
        self.committer = self
            .in_group
            .iter()
            .filter(|(p, _)| present(p) && !self.leaving.contains(p))
            .min_by_key(|(_, arrival)| **arrival)
            .map(|(p, _)| p.clone());
        if self.committer.is_none() {
            *self = Self::default();
            return Deliveries::new();
        }
        let outstanding = self.outstanding();
        outstanding.iter().flat_map(|request| self.to_members(|to| request.to(to))).collect()
    }

    /// Every removal and addition still to be committed, as requests.
    fn outstanding(&self) -> Vec<Request<M>> {
        let Some(committer) = self.committer.clone() else { return Vec::new() };
        let removals = self.leaving.iter().map(|p| Request::Remove { member: p.clone(), committer: committer.clone() });
        let additions = self.pending.iter().map(|(p, kp)| Request::Add {
            member: p.clone(),
            key_package: kp.clone(),
            committer: committer.clone(),
        });
        removals.chain(additions).collect()
    }

    /// One delivery to every member staying in the group (those being
    /// removed have gone, or their seat holds a new device not in it yet).
    fn to_members(&self, delivery: impl Fn(M) -> Delivery<M>) -> Deliveries<M> {
        self.in_group.keys().filter(|m| !self.leaving.contains(m)).map(|m| delivery(m.clone())).collect()
    }

    fn arrive(&mut self, member: M) {
        self.arrivals += 1;
        self.in_group.insert(member, self.arrivals);
    }

    fn reject(&self, to: M, reason: CommitRefusal) -> Deliveries<M> {
        vec![Delivery::Rejected { to, epoch: self.epoch.unwrap_or(0), reason }]
    }
}

/// A request not yet addressed.
#[derive(Debug, Clone)]
enum Request<M> {
    Add { member: M, key_package: String, committer: M },
    Remove { member: M, committer: M },
}

impl<M: Clone> Request<M> {
    fn to(&self, to: M) -> Delivery<M> {
        match self.clone() {
            Self::Add { member, key_package, committer } => Delivery::AddRequest { to, member, key_package, committer },
            Self::Remove { member, committer } => Delivery::RemoveRequest { to, member, committer },
        }
    }
}

#[cfg(test)]
mod tests;
