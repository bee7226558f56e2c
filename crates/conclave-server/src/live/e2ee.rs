//! A meeting's end-to-end encryption, the server's side: vouching for each
//! admitted participant's device key, and the MLS delivery service of the
//! meeting's group, kept in step with who the room admits. One of the
//! meeting actor's two jobs (the other is `media_sync.rs`). The server
//! never holds a key here: it orders and forwards what devices send.

use super::actor::MeetingAudit;
use crate::meetings::credentials::{CredentialAuthority, Subject};
use conclave_proto::signal::{ClientMessage, ParticipantId, ServerMessage};
use conclave_room::delivery::{MlsDelivery, ProposedCommit};
use conclave_room::{Outcome, Room};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Messages for participants, by seat.
pub type Deliveries = Vec<(ParticipantId, ServerMessage)>;

pub struct MeetingE2ee {
    meeting_id: String,
    delivery: MlsDelivery,
    authority: Option<Arc<CredentialAuthority>>,
    /// The device key last vouched for, per admitted participant.
    devices: HashMap<ParticipantId, String>,
}

impl MeetingE2ee {
    pub fn new(meeting_id: &str, authority: Option<Arc<CredentialAuthority>>) -> Self {
        Self { meeting_id: meeting_id.to_owned(), delivery: MlsDelivery::default(), authority, devices: HashMap::new() }
    }

    /// The room's admitted set may have changed: whoever left is to be
    /// removed from the group (the delivery service asks the committer).
    pub fn sync(&mut self, room: &Room) -> Deliveries {
        let admitted: BTreeSet<ParticipantId> = room.admitted().collect();
        self.devices.retain(|p, _| admitted.contains(p));
        self.delivery.membership(&admitted)
    }

    /// An admitted participant's E2EE message; `None` if it is not one.
    pub fn handle(
        &mut self,
        now_ms: i64,
        room: &Room,
        from: ParticipantId,
        message: ClientMessage,
        audits: &mut Vec<MeetingAudit>,
    ) -> Result<Deliveries, ClientMessage> {
        Ok(match message {
            ClientMessage::E2eeCredentialRequest { signature_key } => self.vouch(now_ms, room, from, signature_key),
            ClientMessage::E2eeKeyPackage { key_package } => self.delivery.key_package(from, key_package),
            ClientMessage::E2eeCommit { epoch, commit, welcome, added, removed } => {
                let admitted = room.admitted().collect();
                let proposed = ProposedCommit { epoch, commit, welcome, added, removed };
                if let Err(refusal) = self.delivery.check(from, &proposed, &admitted) {
                    if refusal.is_rogue() {
                        // Someone tried to change the encryption group against
                        // the rules: nobody was evicted or added, but it is kept.
                        let detail = format!("refused an E2EE commit: {refusal:?}");
                        audits.push(MeetingAudit::new(
                            "meeting.e2ee.commit",
                            Some(from),
                            None,
                            Outcome::Denied,
                            detail,
                        ));
                    }
                }
                self.delivery.commit(from, proposed, &admitted)
            }
            ClientMessage::E2eeApplication { message } => self.delivery.application(from, message),
            ClientMessage::E2eeCommitRefused { epoch, from: committer, reason } => {
                let reason: String = reason.chars().take(200).collect();
                let detail = format!("a device refused participant {committer}'s commit on epoch {epoch}: {reason}");
                audits.push(MeetingAudit::new(
                    "meeting.e2ee.commit_refused",
                    Some(from),
                    Some(committer),
                    Outcome::Denied,
                    detail,
                ));
                Deliveries::new()
            }
            other => return Err(other),
        })
    }

    /// Vouches for an admitted participant's device key, named as the room
    /// knows them. A second request from the same seat is a new device
    /// (another tab or device took the seat over): its old leaf is removed
    /// from the group, and the new one joins like anyone else.
    fn vouch(&mut self, now_ms: i64, room: &Room, from: ParticipantId, key: String) -> Deliveries {
        let kind = Some("e2ee_credential_request");
        let (Some(authority), Some(view)) = (&self.authority, room.view(from)) else {
            return vec![(from, ServerMessage::error("unavailable", "no credential authority", kind))];
        };
        let subject = Subject {
            meeting_id: &self.meeting_id,
            participant_id: from,
            user_id: room.identity(from).and_then(|i| i.user_id.as_deref()),
            display_name: &view.display_name,
            signature_key: &key,
        };
        match authority.vouch(&subject, now_ms) {
            Ok(credential) => {
                let mut out = Deliveries::new();
                if self.devices.insert(from, key).is_some() {
                    out = self.delivery.device_replaced(from, &room.admitted().collect());
                }
                out.push((from, credential));
                out
            }
            Err(reason) => vec![(from, ServerMessage::error("invalid", reason, kind))],
        }
    }
}
