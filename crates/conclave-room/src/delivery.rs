//! The meeting's MLS delivery service: the server's whole part in end-to-end
//! encryption. It never sees a key. It orders commits (one per epoch; a
//! stale one is refused, so members never fork), asks the designated
//! committer to add each admitted participant and to remove each one who
//! leaves, and hands Welcomes only to participants the room has admitted.
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
    /// Participants who left while in the group, until a commit removes them.
    leaving: BTreeSet<ParticipantId>,
    /// Who builds commits: the first member, then the longest present.
    committer: Option<ParticipantId>,
}

fn reject(to: ParticipantId, epoch: u64, reason: &str) -> Outbox {
    vec![(to, ServerMessage::E2eeRejected { epoch, reason: reason.to_owned() })]
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
                vec![(committer, ServerMessage::E2eeAddRequest { participant_id: from, key_package })]
            }
        }
    }

    /// A commit from a member. `admitted` is the room's admitted participants now.
    #[allow(clippy::too_many_arguments)]
    pub fn commit(
        &mut self,
        from: ParticipantId,
        epoch: u64,
        commit: String,
        welcome: Option<String>,
        added: Vec<ParticipantId>,
        removed: Vec<ParticipantId>,
        admitted: &BTreeSet<ParticipantId>,
    ) -> Outbox {
        let Some(current) = self.epoch else { return reject(from, 0, "there is no group yet") };
        if !self.in_group.contains(&from) {
            return reject(from, current, "only members commit");
        }
        if epoch != current {
            return reject(from, current, "another commit was first; build on the new epoch");
        }
        if commit.is_empty() || commit.len() > MAX_BLOB || welcome.as_ref().is_some_and(|w| w.len() > MAX_BLOB) {
            return reject(from, current, "malformed commit");
        }
        // A Welcome reaches only admitted participants who asked to join.
        let welcome_ok = added.iter().all(|p| {
            admitted.contains(p) && self.pending.contains_key(p) && (!self.in_group.contains(p) || removed.contains(p))
        });
        if !welcome_ok || (added.is_empty() != welcome.is_none()) {
            return reject(from, current, "a commit may add only admitted participants, with a Welcome");
        }
        if removed.iter().any(|p| !self.in_group.contains(p) || *p == from) {
            return reject(from, current, "a commit may remove only other members");
        }
        let next = current + 1;
        self.epoch = Some(next);
        for p in &removed {
            self.in_group.remove(p);
            self.leaving.remove(p);
        }
        let mut out = Outbox::new();
        // Every member gets it, the committer too: that is its confirmation
        // (it applies its commit only once the order is known).
        for p in &self.in_group {
            out.push((*p, ServerMessage::E2eeCommit { from, epoch: next, commit: commit.clone() }));
        }
        for p in &added {
            self.pending.remove(p);
            self.in_group.insert(*p);
            let welcome = welcome.clone().expect("checked above");
            out.push((*p, ServerMessage::E2eeWelcome { epoch: next, welcome }));
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
            self.committer = self.next_committer(admitted);
        }
        let Some(committer) = self.committer else {
            // Nobody left in the group: it ends; a new one starts with the next member.
            *self = Self::default();
            return Outbox::new();
        };
        self.requests_for(committer)
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
        if self.committer != Some(who) {
            let committer = self.committer.expect("a group has a committer");
            return vec![(committer, ServerMessage::E2eeRemoveRequest { participant_id: who })];
        }
        self.committer = self.next_committer(admitted);
        match self.committer {
            Some(committer) => self.requests_for(committer),
            None => {
                // It was alone: the group starts over with the new device.
                *self = Self::default();
                Outbox::new()
            }
        }
    }

    /// The longest-present member still here and staying.
    fn next_committer(&self, admitted: &BTreeSet<ParticipantId>) -> Option<ParticipantId> {
        self.in_group.iter().find(|p| admitted.contains(p) && !self.leaving.contains(p)).copied()
    }

    /// Every removal and addition still to be committed, asked of `committer`.
    fn requests_for(&self, committer: ParticipantId) -> Outbox {
        let mut out: Outbox =
            self.leaving.iter().map(|p| (committer, ServerMessage::E2eeRemoveRequest { participant_id: *p })).collect();
        // Those still waiting to be added are asked of the new committer too.
        out.extend(
            self.pending.iter().map(|(p, kp)| {
                (committer, ServerMessage::E2eeAddRequest { participant_id: *p, key_package: kp.clone() })
            }),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[ParticipantId]) -> BTreeSet<ParticipantId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn the_first_creates_the_group_and_later_ones_are_added_by_it() {
        let mut ds = MlsDelivery::default();
        assert_eq!(ds.key_package(1, "kp1".into()), vec![(1, ServerMessage::E2eeCreateGroup)]);
        let ask = ds.key_package(2, "kp2".into());
        assert_eq!(ask, vec![(1, ServerMessage::E2eeAddRequest { participant_id: 2, key_package: "kp2".into() })]);
        let out = ds.commit(1, 0, "c1".into(), Some("w".into()), vec![2], vec![], &set(&[1, 2]));
        assert_eq!(
            out,
            vec![
                // The committer's confirmation: only now does it apply its commit.
                (1, ServerMessage::E2eeCommit { from: 1, epoch: 1, commit: "c1".into() }),
                (2, ServerMessage::E2eeWelcome { epoch: 1, welcome: "w".into() }),
            ]
        );
        assert_eq!(ds.epoch(), Some(1));
        assert_eq!(ds.members(), &set(&[1, 2]));
    }

    #[test]
    fn a_stale_commit_is_refused_so_nobody_forks() {
        let mut ds = MlsDelivery::default();
        ds.key_package(1, "kp".into());
        ds.key_package(2, "kp".into());
        ds.commit(1, 0, "c".into(), Some("w".into()), vec![2], vec![], &set(&[1, 2]));
        let out = ds.commit(2, 0, "late".into(), None, vec![], vec![], &set(&[1, 2]));
        assert!(matches!(out.as_slice(), [(2, ServerMessage::E2eeRejected { epoch: 1, .. })]));
        assert_eq!(ds.epoch(), Some(1));
    }

    #[test]
    fn no_welcome_for_anyone_not_admitted() {
        let mut ds = MlsDelivery::default();
        ds.key_package(1, "kp".into());
        ds.key_package(2, "kp".into());
        // Participant 2 was sent back to the waiting room (or left) meanwhile.
        let out = ds.commit(1, 0, "c".into(), Some("w".into()), vec![2], vec![], &set(&[1]));
        assert!(matches!(out.as_slice(), [(1, ServerMessage::E2eeRejected { .. })]));
        // Nor for someone who never asked.
        let out = ds.commit(1, 0, "c".into(), Some("w".into()), vec![3], vec![], &set(&[1, 3]));
        assert!(matches!(out.as_slice(), [(1, ServerMessage::E2eeRejected { .. })]));
        assert_eq!(ds.epoch(), Some(0));
    }

    #[test]
    fn a_departure_asks_for_a_removal_and_a_departed_committer_is_replaced() {
        let mut ds = MlsDelivery::default();
        ds.key_package(1, "kp".into());
        ds.key_package(2, "kp".into());
        ds.key_package(3, "kp".into());
        ds.commit(1, 0, "c".into(), Some("w".into()), vec![2, 3], vec![], &set(&[1, 2, 3]));
        let out = ds.membership(&set(&[1, 2]));
        assert_eq!(out, vec![(1, ServerMessage::E2eeRemoveRequest { participant_id: 3 })]);
        // The committer leaves before removing anyone: the next member takes over both.
        let out = ds.membership(&set(&[2]));
        assert_eq!(ds.committer(), Some(2));
        assert!(out.contains(&(2, ServerMessage::E2eeRemoveRequest { participant_id: 1 })));
        assert!(out.contains(&(2, ServerMessage::E2eeRemoveRequest { participant_id: 3 })));
        let out = ds.commit(2, 1, "rm".into(), None, vec![], vec![1, 3], &set(&[2]));
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
        assert!(matches!(
            ds.commit(9, 0, "c".into(), None, vec![], vec![], &set(&[1, 9]))[..],
            [(9, ServerMessage::E2eeRejected { .. })]
        ));
        assert!(matches!(ds.application(9, "x".into())[..], [(9, ServerMessage::E2eeRejected { .. })]));
        assert!(ds.application(1, "hello".into()).is_empty(), "alone: nobody to tell");
    }

    #[test]
    fn a_member_on_a_new_device_is_removed_then_added_again() {
        let mut ds = MlsDelivery::default();
        ds.key_package(1, "kp".into());
        ds.key_package(2, "kp".into());
        ds.commit(1, 0, "c".into(), Some("w".into()), vec![2], vec![], &set(&[1, 2]));
        // Participant 2's seat is taken over by a new device: its old leaf goes.
        let out = ds.device_replaced(2, &set(&[1, 2]));
        assert_eq!(out, vec![(1, ServerMessage::E2eeRemoveRequest { participant_id: 2 })]);
        // The new device's KeyPackage is taken, though the old one is still in the group...
        let out = ds.key_package(2, "kp-new".into());
        assert_eq!(out, vec![(1, ServerMessage::E2eeAddRequest { participant_id: 2, key_package: "kp-new".into() })]);
        // ...but it can be added only once the old leaf is removed (or in the same commit).
        let early = ds.commit(1, 1, "c".into(), Some("w".into()), vec![2], vec![], &set(&[1, 2]));
        assert!(matches!(early[..], [(1, ServerMessage::E2eeRejected { .. })]));
        ds.commit(1, 1, "rm".into(), None, vec![], vec![2], &set(&[1, 2]));
        let out = ds.commit(1, 2, "add".into(), Some("w2".into()), vec![2], vec![], &set(&[1, 2]));
        assert!(out.contains(&(2, ServerMessage::E2eeWelcome { epoch: 3, welcome: "w2".into() })));
    }

    #[test]
    fn a_committer_on_a_new_device_hands_its_work_to_another_member() {
        let mut ds = MlsDelivery::default();
        ds.key_package(1, "kp".into());
        ds.key_package(2, "kp".into());
        ds.commit(1, 0, "c".into(), Some("w".into()), vec![2], vec![], &set(&[1, 2]));
        let out = ds.device_replaced(1, &set(&[1, 2]));
        assert_eq!(ds.committer(), Some(2));
        assert_eq!(out, vec![(2, ServerMessage::E2eeRemoveRequest { participant_id: 1 })]);
        // Alone, a member on a new device simply starts the group again.
        let mut alone = MlsDelivery::default();
        alone.key_package(1, "kp".into());
        assert!(alone.device_replaced(1, &set(&[1])).is_empty());
        assert_eq!(alone.key_package(1, "kp-new".into()), vec![(1, ServerMessage::E2eeCreateGroup)]);
    }
}
