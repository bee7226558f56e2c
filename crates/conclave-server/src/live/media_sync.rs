//! Keeps the SFU's view of who may send what equal to the room's: a
//! participant gets a media session on admission and loses it the moment
//! the room no longer lists them (left, removed, ended). One of the meeting
//! actor's two jobs (the other is `e2ee.rs`).

use conclave_proto::signal::{ClientMessage, ErrorCode, ParticipantId, ServerMessage};
use conclave_room::{MediaRights, Room};
use conclave_sfu::{MediaPlane, MeetingKey};
use std::collections::HashMap;

pub struct MediaSync {
    meeting: MeetingKey,
    /// What the SFU was last told each participant may send.
    told: HashMap<ParticipantId, MediaRights>,
}

impl MediaSync {
    pub fn new(meeting_id: &str) -> Self {
        Self { meeting: MeetingKey::from(meeting_id), told: HashMap::new() }
    }

    /// Makes the SFU's sessions and rights those the room lists.
    pub fn sync(&mut self, plane: Option<&MediaPlane>, room: &Room) {
        let Some(plane) = plane else { return };
        let now: HashMap<ParticipantId, MediaRights> = room.media_rights().collect();
        let meeting = &self.meeting;
        self.told.retain(|participant, _| {
            let stays = now.contains_key(participant);
            if !stays {
                plane.send(conclave_sfu::Command::Leave { meeting: meeting.clone(), participant: *participant });
            }
            stays
        });
        for (participant, rights) in now {
            let sfu_rights =
                conclave_sfu::Rights { microphone: rights.microphone, camera: rights.camera, screen: rights.screen };
            match self.told.insert(participant, rights) {
                None => plane.send(conclave_sfu::Command::Admit {
                    meeting: meeting.clone(),
                    participant,
                    rights: sfu_rights,
                }),
                Some(before) if before != rights => plane.send(conclave_sfu::Command::Rights {
                    meeting: meeting.clone(),
                    participant,
                    rights: sfu_rights,
                }),
                Some(_) => {}
            }
        }
    }

    /// Closes a participant's media session; the next sync opens a fresh
    /// one for whoever holds the seat now (another tab or device took it).
    pub fn restart(&mut self, plane: Option<&MediaPlane>, participant: ParticipantId) {
        if let (Some(plane), Some(_)) = (plane, self.told.remove(&participant)) {
            plane.send(conclave_sfu::Command::Leave { meeting: self.meeting.clone(), participant });
        }
    }

    /// Passes an admitted participant's media request (`media_offer`,
    /// `media_answer`, `subscribe`) to the SFU; without one, the refusal
    /// to send back.
    pub fn request(
        &mut self,
        plane: Option<&MediaPlane>,
        from: ParticipantId,
        message: ClientMessage,
    ) -> Option<ServerMessage> {
        let Some(plane) = plane else {
            let kind = message.kind();
            return Some(ServerMessage::error(
                ErrorCode::Unavailable,
                "this server does not forward media",
                Some(kind),
            ));
        };
        let meeting = self.meeting.clone();
        let command = match message {
            ClientMessage::MediaOffer { sdp, tracks } => {
                conclave_sfu::Command::Offer { meeting, participant: from, sdp, tracks }
            }
            ClientMessage::MediaAnswer { sdp } => conclave_sfu::Command::Answer { meeting, participant: from, sdp },
            ClientMessage::Subscribe { tiles } => {
                conclave_sfu::Command::Subscribe { meeting, participant: from, tiles }
            }
            _ => return None,
        };
        plane.send(command);
        None
    }

    /// The meeting closed: every session goes.
    pub fn close(&mut self, plane: Option<&MediaPlane>) {
        if let Some(plane) = plane {
            for participant in self.told.drain().map(|(p, _)| p) {
                plane.send(conclave_sfu::Command::Leave { meeting: self.meeting.clone(), participant });
            }
        }
    }
}
