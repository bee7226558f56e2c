//! A meeting's group: its members are participants' seats, and each seat's
//! device carries a credential naming the owner the server vouched for (an
//! account's registered device, or the guest in this seat). Every request
//! and Welcome says, in the server's word, which owner each seat's device
//! must have, so devices can hold commits to it. What goes out is the
//! signaling protocol's `e2ee_*` messages.

use crate::{CommitRefusal, Delivery, DeliveryService, ProposedCommit};
use conclave_proto::credential::DeviceOwner;
use conclave_proto::signal::{E2eeMember, ParticipantId, ServerMessage};
use std::collections::{BTreeMap, BTreeSet};

/// Messages for participants, by seat.
pub type Outbox = Vec<(ParticipantId, ServerMessage)>;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MeetingGroup {
    service: DeliveryService<ParticipantId>,
    /// The owner of each seat's device in the group (kept after the seat
    /// empties, until the removal is committed).
    owners: BTreeMap<ParticipantId, DeviceOwner>,
    /// The owner of each seat's device waiting to be added.
    arriving: BTreeMap<ParticipantId, DeviceOwner>,
}

impl MeetingGroup {
    pub fn service(&self) -> &DeliveryService<ParticipantId> {
        &self.service
    }

    /// The server vouched for a seat's device, owned by `owner`. A second
    /// device for a seat already in the group (another tab or device took it
    /// over, or the page reloaded: it has no MLS state) replaces it: the old
    /// one is removed, and the new one joins like anyone once its
    /// KeyPackage arrives.
    pub fn vouched(&mut self, seat: ParticipantId, owner: DeviceOwner, admitted: &BTreeSet<ParticipantId>) -> Outbox {
        self.arriving.insert(seat, owner);
        let replaced = self.service.device_replaced(&seat, |p| admitted.contains(p));
        self.render(replaced)
    }

    pub fn key_package(&mut self, from: ParticipantId, key_package: String) -> Outbox {
        if !self.arriving.contains_key(&from) {
            // No credential yet: nothing to say who the device is.
            return self.render(vec![Delivery::Rejected {
                to: from,
                epoch: self.service.epoch().unwrap_or(0),
                reason: CommitRefusal::UnneededKeyPackage,
            }]);
        }
        let out = self.service.key_package(from, key_package);
        if out.iter().any(|d| matches!(d, Delivery::CreateGroup { .. })) {
            self.settle(&[from], &[]);
        }
        self.render(out)
    }

    /// What is wrong with a commit, if anything.
    pub fn check(
        &self,
        from: ParticipantId,
        proposed: &ProposedCommit<ParticipantId>,
        admitted: &BTreeSet<ParticipantId>,
    ) -> Result<(), CommitRefusal> {
        self.service.check(&from, proposed, |p| admitted.contains(p))
    }

    pub fn commit(
        &mut self,
        from: ParticipantId,
        proposed: ProposedCommit<ParticipantId>,
        admitted: &BTreeSet<ParticipantId>,
    ) -> Outbox {
        let (added, removed) = (proposed.added.clone(), proposed.removed.clone());
        let before = self.service.epoch();
        let out = self.service.commit(from, proposed, |p| admitted.contains(p));
        if self.service.epoch() != before {
            self.settle(&added, &removed);
        }
        self.render(out)
    }

    pub fn application(&mut self, from: ParticipantId, message: String) -> Outbox {
        let out = self.service.application(from, message);
        self.render(out)
    }

    /// The room's admitted participants changed.
    pub fn membership(&mut self, admitted: &BTreeSet<ParticipantId>) -> Outbox {
        self.arriving.retain(|p, _| admitted.contains(p));
        let out = self.service.membership(|p| admitted.contains(p));
        if self.service.epoch().is_none() {
            // Everyone left: the group is over.
            self.owners.clear();
        }
        self.render(out)
    }

    /// A commit took effect: removed devices' owners go, added ones' come.
    fn settle(&mut self, added: &[ParticipantId], removed: &[ParticipantId]) {
        for p in removed {
            self.owners.remove(p);
        }
        for p in added {
            if let Some(owner) = self.arriving.remove(p) {
                self.owners.insert(*p, owner);
            }
        }
    }

    fn render(&self, deliveries: Vec<Delivery<ParticipantId>>) -> Outbox {
        deliveries.into_iter().filter_map(|d| self.message(d)).collect()
    }

    fn message(&self, delivery: Delivery<ParticipantId>) -> Option<(ParticipantId, ServerMessage)> {
        Some(match delivery {
            Delivery::CreateGroup { to } => (to, ServerMessage::E2eeCreateGroup),
            Delivery::AddRequest { to, member, key_package, committer } => (
                to,
                ServerMessage::E2eeAddRequest {
                    participant_id: member,
                    owner: self.arriving.get(&member)?.clone(),
                    key_package,
                    committer,
                },
            ),
            Delivery::RemoveRequest { to, member, committer } => (
                to,
                ServerMessage::E2eeRemoveRequest {
                    participant_id: member,
                    owner: self.owners.get(&member)?.clone(),
                    committer,
                    // Signed by the server's driver, which holds the key (see
                    // `DeliveryService::removal_at`).
                    proposal: None,
                },
            ),
            Delivery::Commit { to, from, epoch, commit } => (to, ServerMessage::E2eeCommit { from, epoch, commit }),
            Delivery::Welcome { to, epoch, welcome, committer, members } => (
                to,
                ServerMessage::E2eeWelcome {
                    epoch,
                    welcome,
                    committer,
                    members: members
                        .into_iter()
                        .filter_map(|p| Some(E2eeMember { participant_id: p, owner: self.owners.get(&p)?.clone() }))
                        .collect(),
                },
            ),
            Delivery::Rejected { to, epoch, reason } => {
                (to, ServerMessage::E2eeRejected { epoch, reason: reason.reason().to_owned() })
            }
            Delivery::Application { to, from, message } => (to, ServerMessage::E2eeApplication { from, message }),
        })
    }
}
