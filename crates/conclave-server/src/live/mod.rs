//! The live-meeting runtime: everything a meeting is while people are in
//! it. Each live meeting is one actor task owning its `Room` (`actor.rs`),
//! found through a [`MeetingDirectory`] and spoken to only in plain data
//! (`protocol.rs`): commands in, outputs out, addressed by connection and
//! request ids. The channels to connections and to whoever waits for an
//! answer stay on this node, in [`Endpoints`]. Join tickets and resume
//! tokens are kept hashed in the database (`tickets.rs`), so any node
//! sharing it can check them. The WebSocket (`signaling.rs`) is one
//! transport onto this runtime; a recorder or a phone gateway would be
//! another connection like it.

mod actor;
mod directory;
mod e2ee;
mod endpoints;
mod media_sync;
pub mod protocol;
mod quality;
mod seats;
pub mod signaling;
pub mod tickets;

pub use directory::{DirectoryError, MeetingDirectory, Opening};
pub use endpoints::{Endpoints, OUTBOX_CAPACITY};

use crate::state::AppState;
use conclave_proto::signal::{ClientMessage, EndReason, ParticipantId, RoomSettings};
use conclave_proto::{MeetingSettings, OrgPolicy};
use conclave_room::{PolicyView, ReportParties, ReportRefusal, RoomConfig};
use conclave_store::{Store, StoreError};
use directory::{LocalRooms, Loopback, LoopbackDeliver};
use protocol::{ConnectionId, Deliver, Frame, MediaEvent, MeetingCommand};
use std::sync::{Arc, Weak};
use tokio::sync::mpsc;

/// How commands reach the rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// Straight to the room's task on this node.
    #[default]
    InProcess,
    /// Through JSON and back, both ways, as across nodes: for tests that
    /// keep the runtime's boundary plain data.
    Loopback,
}

/// This node's way into its live meetings.
pub struct LiveMeetings {
    directory: Arc<dyn MeetingDirectory>,
    endpoints: Arc<Endpoints>,
}

/// A connection seated in a meeting: where its commands go, and the frames
/// it is sent.
pub struct Seated {
    pub meeting_id: String,
    pub connection: ConnectionId,
    pub frames: mpsc::Receiver<Frame>,
}

impl LiveMeetings {
    /// The runtime of the server whose state `state` will be (its actors
    /// need the state, which holds this).
    pub fn new(transport: Transport, state: Weak<AppState>) -> Self {
        let endpoints = Arc::new(Endpoints::default());
        let deliver: Arc<dyn Deliver> = match transport {
            Transport::InProcess => endpoints.clone(),
            Transport::Loopback => Arc::new(LoopbackDeliver(endpoints.clone())),
        };
        let rooms = Arc::new_cyclic(|rooms: &Weak<LocalRooms>| {
            let rooms = rooms.clone();
            LocalRooms::new(
                Box::new(move |opening, commands, deliver| {
                    let (Some(state), Some(rooms)) = (state.upgrade(), rooms.upgrade()) else { return };
                    actor::MeetingActor::spawn(state, rooms, opening, commands, deliver);
                }),
                deliver,
            )
        });
        let directory: Arc<dyn MeetingDirectory> = match transport {
            Transport::InProcess => rooms,
            Transport::Loopback => Arc::new(Loopback(rooms)),
        };
        Self { directory, endpoints }
    }

    pub fn is_live(&self, meeting_id: &str) -> bool {
        self.directory.is_live(meeting_id)
    }

    /// Seats a redeemed ticket's holder in its meeting, opening the room
    /// (from the stored meeting) if it is not live.
    pub async fn join(
        &self,
        store: &Store,
        grant: &tickets::TicketGrant,
        resume_token: &str,
    ) -> Result<Seated, JoinError> {
        let (connection, frames) = self.endpoints.connect();
        let mut opening = None;
        loop {
            let join = MeetingCommand::Join {
                connection,
                entrant: grant.entrant.clone(),
                resume_token: resume_token.to_owned(),
            };
            let sent = match opening.clone() {
                Some(opening) => self.directory.open_and_send(opening, join),
                None => self.directory.send(&grant.meeting_id, join),
            };
            let error = match sent {
                Ok(()) => return Ok(Seated { meeting_id: grant.meeting_id.clone(), connection, frames }),
                // Read the meeting only when its room must be opened.
                Err(DirectoryError::NotLive) if opening.is_none() => match load_opening(store, &grant.meeting_id).await
                {
                    Ok(loaded) => {
                        opening = Some(loaded);
                        continue;
                    }
                    Err(error) => error,
                },
                Err(error) => error.into(),
            };
            self.endpoints.disconnect(connection);
            return Err(error);
        }
    }

    /// Reattaches a connection to the seat whose resume token it presents;
    /// `None` when the meeting has no such seat (any more).
    pub async fn resume(&self, meeting_id: &str, resume_token: &str) -> Option<Seated> {
        let (connection, frames) = self.endpoints.connect();
        let (request, answer) = self.endpoints.await_resume();
        let command = MeetingCommand::Resume { request, connection, resume_token: resume_token.to_owned() };
        let accepted = match self.directory.send(meeting_id, command) {
            Ok(()) => answer.await.unwrap_or(false),
            Err(_) => {
                self.endpoints.give_up(request);
                false
            }
        };
        if !accepted {
            self.endpoints.disconnect(connection);
            return None;
        }
        Some(Seated { meeting_id: meeting_id.to_owned(), connection, frames })
    }

    /// A participant's message, from their connection.
    pub fn message(
        &self,
        meeting_id: &str,
        connection: ConnectionId,
        message: ClientMessage,
    ) -> Result<(), DirectoryError> {
        self.directory.send(meeting_id, MeetingCommand::Message { connection, message })
    }

    /// The connection is gone; its seat waits for a resume.
    pub fn closed(&self, meeting_id: &str, connection: ConnectionId) {
        self.endpoints.disconnect(connection);
        let _ = self.directory.send(meeting_id, MeetingCommand::Closed { connection });
    }

    /// The room's verdict on a report: the reporter (by resume token) and
    /// the reported participant, if the report may be filed.
    pub async fn report(
        &self,
        meeting_id: &str,
        resume_token: &str,
        reported: ParticipantId,
    ) -> Result<ReportParties, ReportRefusal> {
        let (request, answer) = self.endpoints.await_report();
        let command = MeetingCommand::Report { request, resume_token: resume_token.to_owned(), reported };
        if self.directory.send(meeting_id, command).is_err() {
            // A meeting that is not live has nobody in it to report.
            self.endpoints.give_up(request);
            return Err(ReportRefusal::NotAdmitted);
        }
        answer.await.unwrap_or(Err(ReportRefusal::NotAdmitted))
    }

    /// Everyone admitted to the meeting now; `None` when it is not live.
    pub async fn attendance(&self, meeting_id: &str) -> Option<Vec<protocol::Attendee>> {
        let (request, answer) = self.endpoints.await_attendance();
        if self.directory.send(meeting_id, MeetingCommand::Attendance { request }).is_err() {
            self.endpoints.give_up(request);
            return None;
        }
        // A meeting that ends before it answers has nobody in it.
        answer.await.ok()
    }

    /// Tells every live meeting of `org_id` that its policy changed.
    pub fn policy_changed(&self, org_id: &str, policy: PolicyView) {
        for meeting_id in self.directory.live_in(org_id) {
            let _ = self.directory.send(&meeting_id, MeetingCommand::Policy { policy: policy.clone() });
        }
    }

    /// Hands a media-plane event to its meeting.
    pub fn media_event(&self, event: conclave_sfu::SfuEvent) {
        let (meeting, event) = match event {
            conclave_sfu::SfuEvent::Signal { meeting, participant, message } => {
                (meeting, MediaEvent::Signal { participant, message })
            }
            conclave_sfu::SfuEvent::ActiveSpeaker { meeting, participant } => {
                (meeting, MediaEvent::ActiveSpeaker { participant })
            }
            conclave_sfu::SfuEvent::Quality { meeting, participant, view } => {
                (meeting, MediaEvent::Quality { participant, view })
            }
        };
        let _ = self.directory.send(&meeting, MeetingCommand::Media { event });
    }

    pub fn host_key_changed(&self, meeting_id: &str, host_key: &str) {
        let _ = self.directory.send(meeting_id, MeetingCommand::HostKey { host_key: host_key.to_owned() });
    }

    pub fn terminate(&self, meeting_id: &str, reason: EndReason) {
        let _ = self.directory.send(meeting_id, MeetingCommand::Terminate { reason });
    }

    /// A command from the server itself to a meeting (the outcome of work
    /// its actor handed off).
    pub(crate) fn tell(&self, meeting_id: &str, command: MeetingCommand) {
        let _ = self.directory.send(meeting_id, command);
    }

    /// Every seat of a closed account, in every live meeting, leaves now
    /// (the account may be a guest in another organisation's meeting).
    pub fn account_closed(&self, user_id: &str) {
        for meeting_id in self.directory.every_live() {
            let _ = self.directory.send(&meeting_id, MeetingCommand::AccountClosed { user_id: user_id.to_owned() });
        }
    }

    /// The live room of a meeting forgets these bans.
    pub fn bans_lifted(&self, meeting_id: &str, keys: Vec<String>) {
        let _ = self.directory.send(meeting_id, MeetingCommand::BansLifted { keys });
    }
}

/// Why a ticket's holder could not be seated.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the meeting no longer exists")]
    MeetingGone,
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A meeting's room as it opens: the stored meeting, its organisation's
/// policy, and the bans from its earlier sessions.
async fn load_opening(store: &Store, meeting_id: &str) -> Result<Opening, JoinError> {
    let meeting = store.meeting_by_id(meeting_id).await?.ok_or(JoinError::MeetingGone)?;
    let (_, policy) = store.org_by_id(&meeting.org_id).await?.ok_or(JoinError::MeetingGone)?;
    let banned = store.meeting_bans(&meeting.id).await?;
    let has_passcode = meeting.secrets.passcode.is_some();
    Ok(Opening {
        room: RoomConfig {
            invited: meeting.invited.clone(),
            ..room_config(&meeting.settings, &policy, &meeting.secrets.host_key, has_passcode, banned)
        },
        meeting_id: meeting.id,
        org_id: meeting.org_id,
    })
}

/// The room's starting point from the stored meeting and its organisation's policy.
pub fn room_config(
    settings: &MeetingSettings,
    policy: &OrgPolicy,
    host_key: &str,
    has_passcode: bool,
    banned: Vec<String>,
) -> RoomConfig {
    RoomConfig {
        settings: RoomSettings {
            locked: false,
            waiting_room: settings.waiting_room,
            allow_self_unmute: settings.allow_self_unmute,
            allow_rename: true,
            allow_video: true,
            screen_share: settings.screen_share,
            chat: settings.chat,
            private_chat: settings.private_chat,
            e2ee: settings.e2ee,
            locked_by_policy: Vec::new(),
        },
        mute_on_entry: settings.mute_on_entry,
        policy: PolicyView::from_policy(policy),
        host_key: host_key.to_owned(),
        has_passcode,
        banned,
        waiting_per_address: conclave_room::WAITING_PER_ADDRESS,
        invited: Vec::new(),
    }
}
