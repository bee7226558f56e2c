//! A meeting's end-to-end encryption, the server's side: vouching for each
//! admitted participant's device key, and the delivery service of the
//! meeting's MLS group (`conclave_delivery::meeting`), kept in step with
//! who the room admits. One of the meeting actor's two jobs (the other is
//! `media_sync.rs`). The server never holds a key here: it vouches for
//! public keys, and orders and forwards what devices send.
//!
//! A guest's device is vouched for this meeting at once. A signed-in
//! participant's device is the account's: it is registered with the account
//! (once; the same key later is the same device) off the meeting's task,
//! since that takes the database, and the credential comes back to the
//! meeting as a command ([`MeetingCommand::DeviceVouched`]).

use super::actor::MeetingAudit;
use super::protocol::VouchedDevice;
use crate::devices::DeviceAuthority;
use conclave_delivery::meeting::MeetingGroup;
use conclave_delivery::ProposedCommit;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::credential::DeviceOwner;
use conclave_proto::signal::{ClientMessage, ErrorCode, ParticipantId, ServerMessage};
use conclave_room::Room;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Messages for participants, by seat.
pub type Deliveries = Vec<(ParticipantId, ServerMessage)>;

/// An account device to register and vouch for, off the meeting's task.
#[derive(Debug, Clone)]
pub struct Registration {
    pub participant: ParticipantId,
    pub user_id: String,
    pub signature_key: String,
}

pub struct MeetingE2ee {
    meeting_id: String,
    group: MeetingGroup,
    authority: Option<Arc<DeviceAuthority>>,
}

const REQUEST: Option<&str> = Some("e2ee_credential_request");

impl MeetingE2ee {
    pub fn new(meeting_id: &str, authority: Option<Arc<DeviceAuthority>>) -> Self {
        Self { meeting_id: meeting_id.to_owned(), group: MeetingGroup::default(), authority }
    }

    pub fn authority(&self) -> Option<&Arc<DeviceAuthority>> {
        self.authority.as_ref()
    }

    /// The room's admitted set may have changed: whoever left is to be
    /// removed from the group (the delivery service asks the committer).
    pub fn sync(&mut self, room: &Room) -> Deliveries {
        let out = self.group.membership(&admitted(room));
        self.propose(out)
    }

    /// An admitted participant's E2EE message; the message back if it is
    /// not one. Account devices to register go into `registrations`.
    pub fn handle(
        &mut self,
        now_ms: i64,
        room: &Room,
        from: ParticipantId,
        message: ClientMessage,
        audits: &mut Vec<MeetingAudit>,
        registrations: &mut Vec<Registration>,
    ) -> Result<Deliveries, ClientMessage> {
        let admitted = admitted(room);
        let out = match message {
            ClientMessage::E2eeCredentialRequest { signature_key } => {
                let Some(authority) = &self.authority else {
                    return Ok(vec![(
                        from,
                        ServerMessage::error(ErrorCode::Unavailable, "no credential authority", REQUEST),
                    )]);
                };
                match room.identity(from).and_then(|i| i.user_id.clone()) {
                    Some(user_id) => {
                        registrations.push(Registration { participant: from, user_id, signature_key });
                        Deliveries::new()
                    }
                    None => {
                        let name = room.view(from).map(|v| v.display_name).unwrap_or_default();
                        let owner = DeviceOwner::Guest { meeting_id: self.meeting_id.clone(), participant_id: from };
                        match authority.vouch(owner, &name, &signature_key, now_ms) {
                            Ok(vouched) => self.vouched(room, from, vouched.into()),
                            Err(err) => {
                                vec![(from, ServerMessage::error(ErrorCode::Invalid, err.to_string(), REQUEST))]
                            }
                        }
                    }
                }
            }
            ClientMessage::E2eeKeyPackage { key_package } => self.group.key_package(from, key_package),
            ClientMessage::E2eeCommit { epoch, commit, welcome, added, removed } => {
                let proposed = ProposedCommit { epoch, commit, welcome, added, removed };
                if let Err(refusal) = self.group.check(from, &proposed, &admitted) {
                    if refusal.is_rogue() {
                        // Someone tried to change the encryption group against
                        // the rules: nobody was evicted or added, but it is kept.
                        let detail = format!("refused an E2EE commit: {refusal:?}");
                        audits.push(MeetingAudit::new(
                            AuditAction::MeetingE2eeCommit,
                            Some(from),
                            None,
                            AuditOutcome::Denied,
                            detail,
                        ));
                    }
                }
                self.group.commit(from, proposed, &admitted)
            }
            ClientMessage::E2eeApplication { message } => self.group.application(from, message),
            ClientMessage::E2eeCommitRefused { epoch, from: committer, reason } => {
                let reason: String = reason.chars().take(200).collect();
                let detail = format!("a device refused participant {committer}'s commit on epoch {epoch}: {reason}");
                let audit = MeetingAudit::new(
                    AuditAction::MeetingE2eeCommitRefused,
                    Some(from),
                    Some(committer),
                    AuditOutcome::Denied,
                    detail,
                );
                audits.push(audit);
                Deliveries::new()
            }
            other => return Err(other),
        };
        Ok(self.propose(out))
    }

    /// Signs the server's own proposal into each removal request, as the
    /// group's external sender: for the group's epoch now and the leaf the
    /// departing device holds (one signature per device, however many
    /// members are told).
    fn propose(&self, mut out: Deliveries) -> Deliveries {
        let Some(authority) = &self.authority else { return out };
        let mut signed: Vec<(ParticipantId, Option<String>)> = Vec::new();
        for (_, message) in &mut out {
            let ServerMessage::E2eeRemoveRequest { participant_id, proposal, .. } = message else { continue };
            let made = match signed.iter().find(|(p, _)| p == participant_id) {
                Some((_, made)) => made.clone(),
                None => {
                    let at = self.group.service().removal_at(participant_id);
                    let made = at.and_then(|(epoch, leaf)| authority.propose_removal(epoch, leaf));
                    signed.push((*participant_id, made.clone()));
                    made
                }
            };
            *proposal = made;
        }
        out
    }

    /// The server vouched for a participant's device: it is told, and the
    /// group learns whose device the seat now has (a second device for a
    /// seat replaces the first).
    pub fn vouched(&mut self, room: &Room, participant: ParticipantId, vouched: VouchedDevice) -> Deliveries {
        let admitted = admitted(room);
        if !admitted.contains(&participant) {
            return Deliveries::new();
        }
        let mut out = self.group.vouched(participant, vouched.owner, &admitted);
        out = self.propose(out);
        out.push((
            participant,
            ServerMessage::E2eeCredential {
                credential: vouched.credential,
                authority: vouched.authority,
                participant_id: participant,
            },
        ));
        out
    }

    /// A device could not be vouched for (not a key, or revoked).
    pub fn refused(&self, participant: ParticipantId, reason: String) -> Deliveries {
        vec![(participant, ServerMessage::error(ErrorCode::Invalid, reason, REQUEST))]
    }
}

fn admitted(room: &Room) -> BTreeSet<ParticipantId> {
    room.admitted().collect()
}

impl From<crate::devices::Vouched> for VouchedDevice {
    fn from(vouched: crate::devices::Vouched) -> Self {
        Self { credential: vouched.credential, authority: vouched.authority, owner: vouched.owner }
    }
}
