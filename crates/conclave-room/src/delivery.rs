//! The meeting's MLS delivery service: the server's whole part in end-to-end
//! encryption. It never sees a key. It orders commits (one per epoch; a
//! stale one is refused, so members never fork), designates one committer
//! (the first member, then the longest present) and asks it to add each
//! admitted participant and to remove each one who leaves, and hands
//! Welcomes only to participants the room has admitted.
//!
//! It also decides who may change the group: a commit is accepted only from
//! the designated committer, adding only KeyPackages the service asked it to
//! add and removing only members the service asked it to remove. Every
//! request goes to every member, naming the committer, so each device can
//! hold a commit the server relays to the same rule (a compromised relay
//! cannot slip in what the service would refuse; see the E2EE agent).
//!
//! Pure: the meeting actor feeds it the admitted participants' requests and
//! the room's membership, and sends what it returns.

use std::collections::{BTreeMap, BTreeSet};

use conclave_proto::signal::{ParticipantId, ServerMessage};

/// Largest MLS blob accepted (a Welcome for a large meeting is the biggest).
pub const MAX_BLOB: usize = 60 * 1024;

pub type Outbox = Vec<(ParticipantId, ServerMessage)>;

#[derive(Debug, Default)]
pub struct MlsDelivery {
    /// The epoch the next commit must be built on; `None` before the group exists.
    epoch: Option<u64>,
    /// Participants whose devices are in the group.
    in_group: BTreeSet<ParticipantId>,
    /// Admitted participants' KeyPackages, until a commit adds them.
    pending: BTreeMap<ParticipantId, String>,
    /// Members the committer was asked to remove (they left, or their seat
    /// has a new device), until a commit removes them.
    leaving: BTreeSet<ParticipantId>,
    /// Who builds commits: the first member, then the longest present.
    committer: Option<ParticipantId>,
}

/// Why a commit was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitRefusal {
    NoGroup,
    NotCommitter,
    Stale,
    Malformed,
    /// It adds someone the service did not ask to add (or without a Welcome).
    UnaskedAdd,
    /// It removes someone the service did not ask to remove.
    UnaskedRemoval,
}

impl CommitRefusal {
    fn reason(self) -> &'static str {
        match self {
            Self::NoGroup => "there is no group yet",
            Self::NotCommitter => "only the designated committer commits",
            Self::Stale => "another commit was first; build on the new epoch",
            Self::Malformed => "malformed commit",
            Self::UnaskedAdd => "a commit may add only admitted participants the server asked to add, with a Welcome",
            Self::UnaskedRemoval => "a commit may remove only members the server asked to remove",
        }
    }

    /// A refusal that says the sender tried to change the group against
    /// the rules (worth auditing), not merely that it was late or broken.
    pub fn is_rogue(self) -> bool {
        matches!(self, Self::NotCommitter | Self::UnaskedAdd | Self::UnaskedRemoval)
    }
}

fn reject(to: ParticipantId, epoch: u64, reason: &str) -> Outbox {
    vec![(to, ServerMessage::E2eeRejected { epoch, reason: reason.to_owned() })]
}

/// A commit as a member sends it.
#[derive(Debug, Clone)]
pub struct ProposedCommit {
    pub epoch: u64,
    pub commit: String,
    pub welcome: Option<String>,
    pub added: Vec<ParticipantId>,
    pub removed: Vec<ParticipantId>,
}

impl MlsDelivery {
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    pub fn members(&self) -> &BTreeSet<ParticipantId> {
        &self.in_group
    }

    pub fn committer(&self) -> Option<ParticipantId> {
        self.committer
    }

    /// An admitted participant's KeyPackage.
    pub fn key_package(&mut self, from: ParticipantId, key_package: String) -> Outbox {
        let in_group = self.in_group.contains(&from) && !self.leaving.contains(&from);
        if key_package.is_empty() || key_package.len() > MAX_BLOB || in_group {
            return reject(from, self.epoch.unwrap_or(0), "not a KeyPackage this group needs");
        }
        match self.committer {
            None => {
                // The first: it makes the group.
                self.epoch = Some(0);
                self.in_group.insert(from);
                self.committer = Some(from);
                vec![(from, ServerMessage::E2eeCreateGroup)]
            }
            Some(committer) => {
                self.pending.insert(from, key_package.clone());
                let request = ServerMessage::E2eeAddRequest { participant_id: from, key_package, committer };
                self.to_members(&request)
            }
        }
    }

    /// A commit from a member. `admitted` is the room's admitted participants now.
    pub fn commit(
        &mut self,
        from: ParticipantId,
        proposed: ProposedCommit,
        admitted: &BTreeSet<ParticipantId>,
    ) -> Outbox {
        match self.check(from, &proposed, admitted) {
            Ok(()) => self.apply(from, proposed),
            Err(refusal) => reject(from, self.epoch.unwrap_or(0), refusal.reason()),
        }
    }

    /// What is wrong with a commit, if anything, without accepting it.
    pub fn check(
        &self,
        from: ParticipantId,
        proposed: &ProposedCommit,
        admitted: &BTreeSet<ParticipantId>,
    ) -> Result<(), CommitRefusal> {
        let current = self.epoch.ok_or(CommitRefusal::NoGroup)?;
        if self.committer != Some(from) {
            return Err(CommitRefusal::NotCommitter);
        }
        if proposed.epoch != current {
            return Err(CommitRefusal::Stale);
        }
        let too_big = |b: &String| b.is_empty() || b.len() > MAX_BLOB;
        if too_big(&proposed.commit) || proposed.welcome.as_ref().is_some_and(too_big) {
            return Err(CommitRefusal::Malformed);
        }
        // A Welcome reaches only admitted participants the service asked to add.
        let asked = |p: &ParticipantId| {
            admitted.contains(p)
                && self.pending.contains_key(p)
                && (!self.in_group.contains(p) || proposed.removed.contains(p))
        };
        if !proposed.added.iter().all(asked) || proposed.added.is_empty() != proposed.welcome.is_none() {
            return Err(CommitRefusal::UnaskedAdd);
        }
        if proposed.removed.iter().any(|p| !self.leaving.contains(p) || *p == from) {
            return Err(CommitRefusal::UnaskedRemoval);
        }
        Ok(())
    }

    fn apply(&mut self, from: ParticipantId, proposed: ProposedCommit) -> Outbox {
        let next = proposed.epoch + 1;
        self.epoch = Some(next);
        for p in &proposed.removed {
            self.in_group.remove(p);
            self.leaving.remove(p);
        }
        let mut out = Outbox::new();
        // Every member gets it, the committer too: that is its confirmation
        // (it applies its commit only once the order is known).
        let echo = ServerMessage::E2eeCommit { from, epoch: next, commit: proposed.commit };
        out.extend(self.to_members(&echo));
        let welcome = proposed.welcome.unwrap_or_default();
        for p in &proposed.added {
            self.pending.remove(p);
            self.in_group.insert(*p);
        }
        let committer = self.committer.expect("a group has a committer");
        for p in &proposed.added {
            out.push((*p, ServerMessage::E2eeWelcome { epoch: next, welcome: welcome.clone(), committer }));
            // A newcomer hears what is still to be done, like every member.
            out.extend(self.outstanding().into_iter().map(|request| (*p, request)));
        }
        out
    }

    /// An application message (the MLS chat) for every other member.
    pub fn application(&mut self, from: ParticipantId, message: String) -> Outbox {
        if !self.in_group.contains(&from) || message.len() > MAX_BLOB {
            return reject(from, self.epoch.unwrap_or(0), "only members send to the group");
        }
        self.in_group
            .iter()
            .filter(|p| **p != from)
            .map(|p| (*p, ServerMessage::E2eeApplication { from, message: message.clone() }))
            .collect()
    }

    /// The room's admitted set changed: whoever is gone must be removed by
    /// a commit (asked of the committer, or of a new one if it was the
    /// committer who left).
    pub fn membership(&mut self, admitted: &BTreeSet<ParticipantId>) -> Outbox {
        self.pending.retain(|p, _| admitted.contains(p));
        let gone: Vec<ParticipantId> =
            self.in_group.iter().filter(|p| !admitted.contains(p) && !self.leaving.contains(p)).copied().collect();
        if gone.is_empty() {
            return Outbox::new();
        }
        self.leaving.extend(gone.iter().copied());
        if self.committer.is_some_and(|c| !admitted.contains(&c)) {
            return self.hand_over(admitted);
        }
        let committer = self.committer.expect("a group has a committer");
        gone.iter()
            .flat_map(|p| self.to_members(&ServerMessage::E2eeRemoveRequest { participant_id: *p, committer }))
            .collect()
    }

    /// A participant in the group came back with a new device (another tab
    /// or device took over their seat, with no MLS state): the old device's
    /// leaf is removed, by another member if it was the committer, and the
    /// new device joins like anyone else once its KeyPackage arrives.
    pub fn device_replaced(&mut self, who: ParticipantId, admitted: &BTreeSet<ParticipantId>) -> Outbox {
        self.pending.remove(&who);
        if !self.in_group.contains(&who) || self.leaving.contains(&who) {
            return Outbox::new();
        }
        self.leaving.insert(who);
        if self.committer == Some(who) {
            return self.hand_over(admitted);
        }
        let committer = self.committer.expect("a group has a committer");
        self.to_members(&ServerMessage::E2eeRemoveRequest { participant_id: who, committer })
    }

    /// The committer is gone: the longest-present member still here and
    /// staying takes over, and every member hears all that is still to be
    /// done, now asked of it. With nobody left the group ends; a new one
    /// starts with the next member.
    fn hand_over(&mut self, admitted: &BTreeSet<ParticipantId>) -> Outbox {
        self.committer = self.in_group.iter().find(|p| admitted.contains(p) && !self.leaving.contains(p)).copied();
        if self.committer.is_none() {
            *self = Self::default();
            return Outbox::new();
        }
        self.outstanding().iter().flat_map(|request| self.to_members(request)).collect()
    }

    /// Every removal and addition still to be committed, as requests.
    fn outstanding(&self) -> Vec<ServerMessage> {
        let Some(committer) = self.committer else { return Vec::new() };
        let removals = self.leaving.iter().map(|p| ServerMessage::E2eeRemoveRequest { participant_id: *p, committer });
        let additions = self.pending.iter().map(|(p, kp)| ServerMessage::E2eeAddRequest {
            participant_id: *p,
            key_package: kp.clone(),
            committer,
        });
        removals.chain(additions).collect()
    }

    /// Every member staying in the group (those being removed have gone, or
    /// their seat holds a new device that is not in the group yet).
    fn to_members(&self, message: &ServerMessage) -> Outbox {
        self.in_group.iter().filter(|m| !self.leaving.contains(m)).map(|m| (*m, message.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[ParticipantId]) -> BTreeSet<ParticipantId> {
        ids.iter().copied().collect()
    }

    fn proposed(epoch: u64, commit: &str, welcome: Option<&str>, added: &[u64], removed: &[u64]) -> ProposedCommit {
        ProposedCommit {
            epoch,
            commit: commit.into(),
            welcome: welcome.map(Into::into),
            added: added.to_vec(),
            removed: removed.to_vec(),
        }
    }

    fn add_request(p: u64, kp: &str, committer: u64) -> ServerMessage {
        ServerMessage::E2eeAddRequest { participant_id: p, key_package: kp.into(), committer }
    }

    fn remove_request(p: u64, committer: u64) -> ServerMessage {
        ServerMessage::E2eeRemoveRequest { participant_id: p, committer }
    }

    fn refused(out: &Outbox, to: u64) -> bool {
        matches!(out.as_slice(), [(t, ServerMessage::E2eeRejected { .. })] if *t == to)
    }

    /// A group of 1, 2 and 3, made by 1.
    fn three() -> MlsDelivery {
        let mut ds = MlsDelivery::default();
        ds.key_package(1, "kp".into());
        ds.key_package(2, "kp".into());
        ds.key_package(3, "kp".into());
        ds.commit(1, proposed(0, "c", Some("w"), &[2, 3], &[]), &set(&[1, 2, 3]));
        ds
    }

    #[test]
    fn the_first_creates_the_group_and_later_ones_are_added_by_it() {
        let mut ds = MlsDelivery::default();
        assert_eq!(ds.key_package(1, "kp1".into()), vec![(1, ServerMessage::E2eeCreateGroup)]);
        let ask = ds.key_package(2, "kp2".into());
        assert_eq!(ask, vec![(1, add_request(2, "kp2", 1))]);
        let out = ds.commit(1, proposed(0, "c1", Some("w"), &[2], &[]), &set(&[1, 2]));
        assert_eq!(
            out,
            vec![
                // The committer's confirmation: only now does it apply its commit.
                (1, ServerMessage::E2eeCommit { from: 1, epoch: 1, commit: "c1".into() }),
                (2, ServerMessage::E2eeWelcome { epoch: 1, welcome: "w".into(), committer: 1 }),
            ]
        );
        assert_eq!(ds.epoch(), Some(1));
        assert_eq!(ds.members(), &set(&[1, 2]));
    }

    #[test]
    fn every_member_hears_each_request_and_who_is_to_carry_it_out() {
        let mut ds = three();
        let out = ds.key_package(4, "kp4".into());
        assert_eq!(
            out,
            vec![(1, add_request(4, "kp4", 1)), (2, add_request(4, "kp4", 1)), (3, add_request(4, "kp4", 1))]
        );
        let out = ds.membership(&set(&[1, 2, 4]));
        assert_eq!(out, vec![(1, remove_request(3, 1)), (2, remove_request(3, 1))], "not to the one who left");
    }

    #[test]
    fn a_newcomer_hears_what_is_still_to_be_done() {
        let mut ds = three();
        ds.key_package(4, "kp4".into());
        ds.key_package(5, "kp5".into());
        ds.membership(&set(&[1, 2, 4, 5]));
        let out = ds.commit(1, proposed(1, "add4", Some("w"), &[4], &[]), &set(&[1, 2, 4, 5]));
        let to_newcomer: Vec<_> = out.iter().filter(|(to, _)| *to == 4).map(|(_, m)| m.clone()).collect();
        assert_eq!(
            to_newcomer,
            vec![
                ServerMessage::E2eeWelcome { epoch: 2, welcome: "w".into(), committer: 1 },
                remove_request(3, 1),
                add_request(5, "kp5", 1),
            ]
        );
    }

    #[test]
    fn a_stale_commit_is_refused_so_nobody_forks() {
        let mut ds = MlsDelivery::default();
        ds.key_package(1, "kp".into());
        ds.key_package(2, "kp".into());
        ds.commit(1, proposed(0, "c", Some("w"), &[2], &[]), &set(&[1, 2]));
        ds.key_package(3, "kp".into());
        let out = ds.commit(1, proposed(0, "late", Some("w"), &[3], &[]), &set(&[1, 2, 3]));
        assert!(matches!(out.as_slice(), [(1, ServerMessage::E2eeRejected { epoch: 1, .. })]));
        assert_eq!(ds.epoch(), Some(1));
    }

    #[test]
    fn only_the_designated_committer_commits() {
        let mut ds = three();
        // Member 3 tries to cut the host (1) out of the group.
        let rogue = proposed(1, "rm1", None, &[], &[1]);
        assert_eq!(ds.check(3, &rogue, &set(&[1, 2, 3])), Err(CommitRefusal::NotCommitter));
        assert!(refused(&ds.commit(3, rogue, &set(&[1, 2, 3])), 3));
        // Even a harmless-looking commit from a non-committer is refused.
        assert!(refused(&ds.commit(2, proposed(1, "update", None, &[], &[]), &set(&[1, 2, 3])), 2));
        assert_eq!((ds.epoch(), ds.members()), (Some(1), &set(&[1, 2, 3])));
    }

    #[test]
    fn the_committer_removes_only_whom_the_service_asked_to_remove() {
        let mut ds = three();
        let rogue = proposed(1, "rm3", None, &[], &[3]);
        assert_eq!(ds.check(1, &rogue, &set(&[1, 2, 3])), Err(CommitRefusal::UnaskedRemoval));
        assert!(refused(&ds.commit(1, rogue, &set(&[1, 2, 3])), 1));
        // Once 3 has left, its removal is what the service asked for.
        ds.membership(&set(&[1, 2]));
        let out = ds.commit(1, proposed(1, "rm3", None, &[], &[3]), &set(&[1, 2]));
        assert!(out.iter().all(|(_, m)| matches!(m, ServerMessage::E2eeCommit { .. })));
        assert_eq!(ds.members(), &set(&[1, 2]));
    }

    #[test]
    fn no_welcome_for_anyone_not_admitted_or_not_asked_for() {
        let mut ds = MlsDelivery::default();
        ds.key_package(1, "kp".into());
        ds.key_package(2, "kp".into());
        // Participant 2 was sent back to the waiting room (or left) meanwhile.
        let out = ds.commit(1, proposed(0, "c", Some("w"), &[2], &[]), &set(&[1]));
        assert!(refused(&out, 1));
        // Nor for someone who never asked.
        assert_eq!(ds.check(1, &proposed(0, "c", Some("w"), &[3], &[]), &set(&[1, 3])), Err(CommitRefusal::UnaskedAdd));
        assert_eq!(ds.epoch(), Some(0));
    }

    #[test]
    fn a_departure_asks_for_a_removal_and_a_departed_committer_is_replaced() {
        let mut ds = three();
        let out = ds.membership(&set(&[1, 2]));
        assert!(out.contains(&(1, remove_request(3, 1))));
        // The committer leaves before removing anyone: the next member takes
        // over both, and every member hears it.
        let out = ds.membership(&set(&[2]));
        assert_eq!(ds.committer(), Some(2));
        assert!(out.contains(&(2, remove_request(1, 2))));
        assert!(out.contains(&(2, remove_request(3, 2))));
        let out = ds.commit(2, proposed(1, "rm", None, &[], &[1, 3]), &set(&[2]));
        assert_eq!(
            out,
            vec![(2, ServerMessage::E2eeCommit { from: 2, epoch: 2, commit: "rm".into() })],
            "only its confirmation"
        );
        assert_eq!(ds.members(), &set(&[2]));
    }

    #[test]
    fn outsiders_cannot_commit_or_talk_to_the_group() {
        let mut ds = MlsDelivery::default();
        ds.key_package(1, "kp".into());
        assert!(refused(&ds.commit(9, proposed(0, "c", None, &[], &[]), &set(&[1, 9])), 9));
        assert!(refused(&ds.application(9, "x".into()), 9));
        assert!(ds.application(1, "hello".into()).is_empty(), "alone: nobody to tell");
    }

    #[test]
    fn a_member_on_a_new_device_is_removed_then_added_again() {
        let mut ds = MlsDelivery::default();
        ds.key_package(1, "kp".into());
        ds.key_package(2, "kp".into());
        ds.commit(1, proposed(0, "c", Some("w"), &[2], &[]), &set(&[1, 2]));
        // Participant 2's seat is taken over by a new device: its old leaf goes.
        let out = ds.device_replaced(2, &set(&[1, 2]));
        assert_eq!(out, vec![(1, remove_request(2, 1))], "the seat's new device is not in the group yet");
        // The new device's KeyPackage is taken, though the old one is still in the group...
        let out = ds.key_package(2, "kp-new".into());
        assert!(out.contains(&(1, add_request(2, "kp-new", 1))));
        // ...but it can be added only once the old leaf is removed (or in the same commit).
        assert!(refused(&ds.commit(1, proposed(1, "c", Some("w"), &[2], &[]), &set(&[1, 2])), 1));
        ds.commit(1, proposed(1, "rm", None, &[], &[2]), &set(&[1, 2]));
        let out = ds.commit(1, proposed(2, "add", Some("w2"), &[2], &[]), &set(&[1, 2]));
        assert!(out.contains(&(2, ServerMessage::E2eeWelcome { epoch: 3, welcome: "w2".into(), committer: 1 })));
    }

    #[test]
    fn a_committer_on_a_new_device_hands_its_work_to_another_member() {
        let mut ds = MlsDelivery::default();
        ds.key_package(1, "kp".into());
        ds.key_package(2, "kp".into());
        ds.commit(1, proposed(0, "c", Some("w"), &[2], &[]), &set(&[1, 2]));
        let out = ds.device_replaced(1, &set(&[1, 2]));
        assert_eq!(ds.committer(), Some(2));
        assert_eq!(out, vec![(2, remove_request(1, 2))]);
        // Alone, a member on a new device simply starts the group again.
        let mut alone = MlsDelivery::default();
        alone.key_package(1, "kp".into());
        assert!(alone.device_replaced(1, &set(&[1])).is_empty());
        assert_eq!(alone.key_package(1, "kp-new".into()), vec![(1, ServerMessage::E2eeCreateGroup)]);
    }
}
