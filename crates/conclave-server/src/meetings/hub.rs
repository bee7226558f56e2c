//! The node's live meetings: one actor task per meeting with people in it,
//! the join tickets and resume tokens that lead to them, and the way in for
//! connections and for the REST API (policy changes, deletion, reports).

use super::actor::{ConnId, MeetingActor, Outbox};
use super::tickets::{TicketGrant, Tickets};
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use conclave_auth::TokenHash;
use conclave_proto::signal::{ClientMessage, EndReason, ParticipantId, RoomSettings};
use conclave_proto::MeetingSettings;
use conclave_room::{Identity, PolicyView, ReportParties, ReportRefusal, Room, RoomConfig, Standing};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// Commands queued for one meeting before new ones are refused as a flood.
const COMMAND_CAPACITY: usize = 4096;

pub enum Command {
    Join {
        conn: ConnId,
        display_name: String,
        identity: Identity,
        standing: Standing,
        resume_token: String,
        outbox: Outbox,
    },
    Resume {
        conn: ConnId,
        resume_token: String,
        outbox: Outbox,
        reply: oneshot::Sender<bool>,
    },
    Message {
        conn: ConnId,
        message: ClientMessage,
    },
    Closed {
        conn: ConnId,
    },
    Policy(PolicyView),
    Terminate(EndReason),
    HostKey(String),
    Report {
        resume_token: String,
        reported: ParticipantId,
        reply: oneshot::Sender<Result<ReportParties, ReportRefusal>>,
    },
    /// The owner or an admin lifted bans: these keys may join again.
    BansLifted(Vec<String>),
    /// Something the media plane has for this meeting's participants.
    Media(conclave_sfu::SfuEvent),
}

struct LiveMeeting {
    org_id: String,
    commands: mpsc::Sender<Command>,
}

#[derive(Default)]
pub struct MeetingHub {
    live: Mutex<HashMap<String, LiveMeeting>>,
    /// Hash of each resume token → its meeting.
    resume: Mutex<HashMap<String, String>>,
    pub tickets: Tickets,
    next_conn: AtomicU64,
}

/// The room's starting point from the stored meeting and its organisation's policy.
pub fn room_config(
    settings: &MeetingSettings,
    policy: &conclave_proto::OrgPolicy,
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
        waiting_capacity: policy.waiting_room_capacity.value,
        waiting_per_address: conclave_room::WAITING_PER_ADDRESS,
    }
}

impl MeetingHub {
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn is_live(&self, meeting_id: &str) -> bool {
        self.lock().contains_key(meeting_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveMeeting>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seats a ticket holder's connection in its meeting, opening the room
    /// if nobody is there yet. Returns the meeting's command queue.
    pub async fn join(
        &self,
        state: &SharedState,
        grant: TicketGrant,
        conn: ConnId,
        resume_token: String,
        outbox: Outbox,
    ) -> ApiResult<mpsc::Sender<Command>> {
        if !self.is_live(&grant.meeting_id) {
            // Built outside the lock; if another join opened the room
            // meanwhile, this one is dropped unused.
            let meeting =
                state.store.meeting_by_id(&grant.meeting_id).await?.ok_or_else(|| ApiError::not_found("meeting"))?;
            let (_, policy) =
                state.store.org_by_id(&meeting.org_id).await?.ok_or_else(|| ApiError::not_found("organisation"))?;
            let banned = state.store.meeting_bans(&meeting.id).await?;
            let has_passcode = meeting.secrets.passcode.is_some();
            let config = room_config(&meeting.settings, &policy, &meeting.secrets.host_key, has_passcode, banned);
            let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
            let mut live = self.lock();
            if !live.contains_key(&grant.meeting_id) {
                live.insert(grant.meeting_id.clone(), LiveMeeting { org_id: meeting.org_id.clone(), commands: tx });
                let actor = MeetingActor {
                    state: state.clone(),
                    meeting_id: meeting.id.clone(),
                    org_id: meeting.org_id.clone(),
                    room: Room::new(config),
                    commands: rx,
                };
                tokio::spawn(actor.run());
            }
        }
        self.resume
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(TokenHash::of(&resume_token).0, grant.meeting_id.clone());
        let join = Command::Join {
            conn,
            display_name: grant.display_name,
            identity: grant.identity,
            standing: grant.standing,
            resume_token,
            outbox,
        };
        // Sent under the lock, so the actor cannot close between our look-up and the send.
        let live = self.lock();
        let meeting =
            live.get(&grant.meeting_id).ok_or_else(|| ApiError::unavailable("the meeting closed; join again"))?;
        meeting.commands.try_send(join).map_err(|_| ApiError::unavailable("the meeting is busy; try again"))?;
        Ok(meeting.commands.clone())
    }

    /// Whether a resume token belongs to a live meeting (checked before a
    /// WebSocket upgrade, so an unknown token gets a plain 401).
    pub fn knows_resume_token(&self, resume_token: &str) -> bool {
        self.resume.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&TokenHash::of(resume_token).0)
    }

    /// Reattaches a dropped participant by resume token.
    pub async fn resume(&self, resume_token: &str, conn: ConnId, outbox: Outbox) -> Option<mpsc::Sender<Command>> {
        let meeting_id =
            self.resume.lock().unwrap_or_else(|p| p.into_inner()).get(&TokenHash::of(resume_token).0).cloned()?;
        let (reply, answer) = oneshot::channel();
        let commands = {
            let live = self.lock();
            let meeting = live.get(&meeting_id)?;
            meeting
                .commands
                .try_send(Command::Resume { conn, resume_token: resume_token.to_owned(), outbox, reply })
                .ok()?;
            meeting.commands.clone()
        };
        answer.await.ok()?.then_some(commands)
    }

    /// The room's verdict on a report: the reporter (by resume token) and
    /// the reported participant, if the report may be filed.
    pub async fn report_parties(
        &self,
        meeting_id: &str,
        resume_token: &str,
        reported: ParticipantId,
    ) -> Result<ReportParties, ReportRefusal> {
        let (reply, answer) = oneshot::channel();
        self.send(meeting_id, Command::Report { resume_token: resume_token.to_owned(), reported, reply });
        // A meeting that is not live has nobody in it to report.
        answer.await.unwrap_or(Err(ReportRefusal::NotAdmitted))
    }

    /// The live room of a meeting forgets these bans.
    pub fn bans_lifted(&self, meeting_id: &str, keys: Vec<String>) {
        self.send(meeting_id, Command::BansLifted(keys));
    }

    /// Tells every live meeting of `org_id` that its policy changed.
    pub fn policy_changed(&self, org_id: &str, policy: PolicyView) {
        for meeting in self.lock().values().filter(|m| m.org_id == org_id) {
            let _ = meeting.commands.try_send(Command::Policy(policy.clone()));
        }
    }

    /// Hands a media-plane event to its meeting.
    pub fn media_event(&self, event: conclave_sfu::SfuEvent) {
        let meeting = match &event {
            conclave_sfu::SfuEvent::Signal { meeting, .. } | conclave_sfu::SfuEvent::ActiveSpeaker { meeting, .. } => {
                meeting.clone()
            }
        };
        self.send(&meeting, Command::Media(event));
    }

    pub fn host_key_changed(&self, meeting_id: &str, host_key: &str) {
        self.send(meeting_id, Command::HostKey(host_key.to_owned()));
    }

    pub fn terminate(&self, meeting_id: &str, reason: EndReason) {
        self.send(meeting_id, Command::Terminate(reason));
    }

    fn send(&self, meeting_id: &str, command: Command) {
        if let Some(meeting) = self.lock().get(meeting_id) {
            let _ = meeting.commands.try_send(command);
        }
    }

    /// Called by an empty meeting's actor: closes it unless a command is
    /// already on its way (checked under the lock every sender takes).
    pub(crate) fn close_if_idle(&self, meeting_id: &str, commands: &mpsc::Receiver<Command>) -> bool {
        let mut live = self.lock();
        if commands.is_empty() {
            live.remove(meeting_id);
            true
        } else {
            false
        }
    }

    /// Drops what the hub holds for a meeting that closed.
    pub(crate) fn forget(&self, meeting_id: &str) {
        self.lock().remove(meeting_id);
        self.resume.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, m| m != meeting_id);
    }
}
