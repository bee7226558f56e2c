//! The task that owns one live meeting. It feeds the meeting's `Room` with
//! commands from connections and with time, and carries out the room's
//! effects: frames to connections, closing them, audit events. Nothing else
//! touches the room, so it needs no lock.

use super::credentials::{CredentialAuthority, Subject};
use super::hub::Command;
use crate::state::{Audit, SharedState};
use conclave_proto::signal::{ClientMessage, ParticipantId, ServerMessage};
use conclave_room::delivery::ProposedCommit;
use conclave_room::{Effect, Input, MediaRights, ReportParties, ReportRefusal, RequestId, Room};
use conclave_sfu::{MeetingKey, SfuEvent};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::oneshot;
use tracing::Instrument;

/// What a connection task receives from its meeting.
#[derive(Debug)]
pub enum Outbound {
    /// Boxed: a queue slot is then a pointer, not the largest message.
    Message(Box<ServerMessage>),
    Close,
}

pub type Outbox = mpsc::Sender<Outbound>;
pub type ConnId = u64;

/// An audit event as the room reports it: action, actor, target, outcome, detail.
type RoomAudit = (&'static str, Option<ParticipantId>, Option<ParticipantId>, conclave_room::Outcome, String);

/// Frames queued for one connection before it is judged too slow and cut.
pub const OUTBOX_CAPACITY: usize = 512;

/// Which connection holds which seat. A seat's id is the id of the
/// connection that first took it; a second tab or a resumed connection
/// takes over the seat.
#[derive(Default)]
struct Connections {
    seats: HashMap<ParticipantId, (ConnId, Outbox)>,
    conn_seat: HashMap<ConnId, ParticipantId>,
}

impl Connections {
    /// Gives `seat` to `conn`; true when that took it from an open connection.
    fn attach(&mut self, seat: ParticipantId, conn: ConnId, outbox: Outbox) -> bool {
        let mut replaced = false;
        if let Some((old, old_outbox)) = self.seats.insert(seat, (conn, outbox)) {
            if old != conn {
                let _ = old_outbox.try_send(Outbound::Message(Box::new(ServerMessage::Replaced)));
                let _ = old_outbox.try_send(Outbound::Close);
                self.conn_seat.remove(&old);
                replaced = true;
            }
        }
        self.conn_seat.insert(conn, seat);
        replaced
    }

    fn detach(&mut self, seat: ParticipantId) {
        if let Some((conn, outbox)) = self.seats.remove(&seat) {
            let _ = outbox.try_send(Outbound::Close);
            self.conn_seat.remove(&conn);
        }
    }

    /// The seat `conn` speaks for, if it still holds one.
    fn seat_of(&self, conn: ConnId) -> Option<ParticipantId> {
        let seat = *self.conn_seat.get(&conn)?;
        (self.seats.get(&seat).map(|(c, _)| *c) == Some(conn)).then_some(seat)
    }
}

pub struct MeetingActor {
    pub state: SharedState,
    pub meeting_id: String,
    pub org_id: String,
    pub room: Room,
    pub commands: mpsc::Receiver<Command>,
}

/// Reports waiting for the room's verdict, by request.
#[derive(Default)]
struct PendingReports {
    next: RequestId,
    replies: HashMap<RequestId, oneshot::Sender<Result<ReportParties, ReportRefusal>>>,
}

impl MeetingActor {
    pub async fn run(self) {
        let span = tracing::info_span!("meeting", id = %self.meeting_id);
        self.run_inner().instrument(span).await
    }

    async fn run_inner(mut self) {
        let mut connections = Connections::default();
        let mut reports = PendingReports::default();
        let mut media = MediaSync::new(&self.meeting_id, self.state.credential_authority().await);
        // Policy changed through the API reaches the room at once; changes
        // made elsewhere (`conclave admin`, another node) within this period.
        let every = self.state.config.policy_refresh_every;
        let mut policy_check = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tracing::info!("meeting room opened");
        self.state.metrics.live_meetings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        loop {
            // Poll at least once a second while a deadline is pending, so a
            // clock moved by tests (or a suspended host) is noticed promptly.
            let wait = self
                .room
                .next_deadline()
                .map(|d| Duration::from_millis((d - self.state.now_ms()).clamp(0, 1000) as u64));
            let input = tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command, &mut connections, &mut reports),
                    None => break,
                },
                () = async { if let Some(w) = wait { tokio::time::sleep(w).await } else { std::future::pending().await } } => Some(Input::Tick),
                _ = policy_check.tick() => self.reread_policy().await,
            };
            let ended = match input {
                Some(input) => self.feed(input, &mut connections, &mut media, &mut reports),
                None => false,
            };
            for (to, message) in media.sync(&self.state, &self.room) {
                send(&connections, to, message);
            }
            if ended
                || (self.room.is_empty()
                    && connections.seats.is_empty()
                    && self.state.hub.close_if_idle(&self.meeting_id, &self.commands))
            {
                break;
            }
        }
        for seat in connections.seats.keys().copied().collect::<Vec<_>>() {
            connections.detach(seat);
        }
        media.close(&self.state);
        self.state.hub.forget(&self.meeting_id);
        self.state.metrics.live_meetings.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!("meeting room closed");
    }

    /// The organisation's policy from storage, as input if it differs from the room's.
    async fn reread_policy(&self) -> Option<Input> {
        match self.state.store.org_by_id(&self.org_id).await {
            Ok(Some((_, policy))) => {
                let policy = conclave_room::PolicyView::from_policy(&policy);
                (policy != *self.room.policy()).then_some(Input::PolicyChanged { policy })
            }
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(error = %err, "could not re-read the organisation's policy");
                None
            }
        }
    }

    /// Turns a command into room input, handling the parts only the driver knows.
    fn command(
        &mut self,
        command: Command,
        connections: &mut Connections,
        reports: &mut PendingReports,
    ) -> Option<Input> {
        match command {
            Command::Media(event) => {
                self.media_event(event, connections);
                None
            }
            Command::Join { conn, display_name, identity, standing, resume_token, outbox } => {
                connections.attach(conn, conn, outbox);
                Some(Input::Join { id: conn, display_name, identity, standing, resume_token })
            }
            Command::Resume { conn, resume_token, outbox, reply } => match self.room.seat_of(&resume_token) {
                Some(seat) => {
                    if connections.attach(seat, conn, outbox) {
                        // Whoever holds the token may take the seat over;
                        // that it happened is kept.
                        let detail = "the seat's resume token was presented while its connection was open";
                        self.write_audits(vec![(
                            "meeting.seat.takeover",
                            Some(seat),
                            None,
                            conclave_room::Outcome::Success,
                            detail.into(),
                        )]);
                    }
                    let _ = reply.send(true);
                    Some(Input::Reconnected { id: seat })
                }
                None => {
                    let _ = reply.send(false);
                    None
                }
            },
            Command::Message { conn, message } => {
                let from = connections.seat_of(conn)?;
                Some(Input::Message { from, message })
            }
            Command::Closed { conn } => {
                let seat = connections.seat_of(conn)?;
                connections.seats.remove(&seat);
                connections.conn_seat.remove(&conn);
                Some(Input::Disconnected { id: seat })
            }
            Command::Policy(policy) => Some(Input::PolicyChanged { policy }),
            Command::Terminate(reason) => Some(Input::Terminate { reason }),
            Command::HostKey(host_key) => Some(Input::HostKeyChanged { host_key }),
            Command::Report { resume_token, reported, reply } => {
                reports.next += 1;
                reports.replies.insert(reports.next, reply);
                Some(Input::Report { request: reports.next, resume_token, reported })
            }
            Command::BansLifted(keys) => Some(Input::BansLifted { keys }),
        }
    }

    /// Hands `input` to the room and carries out every effect, including
    /// those of inputs the effects themselves cause (a slow connection cut
    /// off becomes a disconnection). Returns true when the meeting ended.
    fn feed(
        &mut self,
        input: Input,
        connections: &mut Connections,
        media: &mut MediaSync,
        reports: &mut PendingReports,
    ) -> bool {
        let mut inputs = VecDeque::from([input]);
        let mut audits = Vec::new();
        let mut ended = false;
        while let Some(input) = inputs.pop_front() {
            let now = self.state.now_ms();
            for effect in self.room.handle(now, input) {
                match effect {
                    Effect::Send { to, message } => {
                        if let Some((_, outbox)) = connections.seats.get(&to) {
                            if outbox.try_send(Outbound::Message(Box::new(message))).is_err() {
                                tracing::warn!(participant = to, "connection too slow; cutting it off");
                                connections.detach(to);
                                inputs.push_back(Input::Disconnected { id: to });
                            }
                        }
                    }
                    Effect::Rebind { connection, seat } => {
                        if let Some((conn, outbox)) = connections.seats.remove(&connection) {
                            connections.conn_seat.remove(&connection);
                            let _ = connections.attach(seat, conn, outbox);
                        }
                        // A new app instance (tab, device, reload) took the
                        // seat: it negotiates media from scratch.
                        media.restart(&self.state, seat);
                    }
                    Effect::Disconnect { id } => connections.detach(id),
                    Effect::Audit { action, actor, target, outcome, detail } => {
                        audits.push((action, actor, target, outcome, detail))
                    }
                    Effect::Banned { ban } => {
                        // Kept in the database so the removal outlives this
                        // room, and its owner can see and lift it.
                        let state = self.state.clone();
                        let meeting_id = self.meeting_id.clone();
                        tokio::spawn(async move {
                            let new = conclave_store::NewBan {
                                keys: &ban.keys,
                                display_name: &ban.display_name,
                                user_id: ban.user_id.as_deref(),
                                removed_by: &ban.removed_by,
                            };
                            if let Err(err) = state.store.add_meeting_ban(&meeting_id, &new, state.now_ms()).await {
                                tracing::error!(error = %err, "could not record a removal");
                            }
                        });
                    }
                    Effect::ReportChecked { request, verdict } => {
                        if let Some(reply) = reports.replies.remove(&request) {
                            let _ = reply.send(verdict);
                        }
                    }
                    Effect::Media { from, message } => {
                        // Admission now, before the request: the room may have
                        // admitted `from` earlier in this same batch.
                        let mut out = media.sync(&self.state, &self.room);
                        out.extend(media.request(&self.state, &self.room, from, message, &mut audits));
                        for (to, message) in out {
                            send(connections, to, message);
                        }
                    }
                    Effect::Ended { reason } => {
                        tracing::info!(?reason, "meeting ended");
                        ended = true;
                    }
                }
            }
        }
        if !audits.is_empty() {
            self.write_audits(audits);
        }
        ended
    }

    /// Delivers what the media plane says to the participants it concerns.
    fn media_event(&self, event: SfuEvent, connections: &mut Connections) {
        match event {
            SfuEvent::Signal { participant, message, .. } => {
                if self.room.presence(participant) == Some(conclave_room::Presence::Admitted) {
                    send(connections, participant, message);
                }
            }
            SfuEvent::ActiveSpeaker { participant, .. } => {
                for seat in self.room.admitted().collect::<Vec<_>>() {
                    send(connections, seat, ServerMessage::ActiveSpeaker { participant_id: participant });
                }
            }
        }
    }

    /// Appends the room's audit events in order, off the meeting's task.
    fn write_audits(&self, audits: Vec<RoomAudit>) {
        let state = self.state.clone();
        let org_id = self.org_id.clone();
        let meeting_id = self.meeting_id.clone();
        tokio::spawn(async move {
            for (action, actor, target, outcome, detail) in audits {
                let detail = match (actor, target) {
                    (Some(a), Some(t)) => format!("meeting {meeting_id}: participant {a} on {t}; {detail}"),
                    (Some(a), None) => format!("meeting {meeting_id}: participant {a}; {detail}"),
                    (None, Some(t)) => format!("meeting {meeting_id}: on participant {t}; {detail}"),
                    (None, None) => format!("meeting {meeting_id}; {detail}"),
                };
                let event = Audit {
                    org_id: Some(&org_id),
                    target: Some(&meeting_id),
                    detail: &detail,
                    ..Audit::new(action, outcome.as_str())
                };
                if let Err(err) = state.audit(event).await {
                    tracing::error!(error = ?err.code, "could not write a meeting audit event");
                }
            }
        });
    }
}

/// Queues `message` for a seat's connection, if it has one (a slow one is
/// dealt with when the room next sends to it).
fn send(connections: &Connections, to: ParticipantId, message: ServerMessage) {
    if let Some((_, outbox)) = connections.seats.get(&to) {
        let _ = outbox.try_send(Outbound::Message(Box::new(message)));
    }
}

/// Keeps the SFU's view of who may send what equal to the room's: a
/// participant gets a media session on admission and loses it the moment
/// the room no longer lists them (left, removed, ended).
struct MediaSync {
    meeting: MeetingKey,
    told: HashMap<ParticipantId, MediaRights>,
    /// The MLS delivery service of the meeting's end-to-end encryption.
    delivery: conclave_room::delivery::MlsDelivery,
    authority: Option<Arc<CredentialAuthority>>,
    /// The device key last vouched for, per admitted participant.
    devices: HashMap<ParticipantId, String>,
}

type Deliveries = Vec<(ParticipantId, ServerMessage)>;

impl MediaSync {
    fn new(meeting_id: &str, authority: Option<Arc<CredentialAuthority>>) -> Self {
        Self {
            meeting: MeetingKey::from(meeting_id),
            told: HashMap::new(),
            delivery: Default::default(),
            authority,
            devices: HashMap::new(),
        }
    }

    /// Vouches for an admitted participant's device key, named as the room
    /// knows them. A second request from the same seat is a new device
    /// (another tab or device took the seat over): its old leaf is removed
    /// from the group, and the new one joins like anyone else.
    fn vouch(&mut self, state: &crate::state::AppState, room: &Room, from: ParticipantId, key: String) -> Deliveries {
        let kind = Some("e2ee_credential_request");
        let (Some(authority), Some(view)) = (&self.authority, room.view(from)) else {
            return vec![(from, ServerMessage::error("unavailable", "no credential authority", kind))];
        };
        let subject = Subject {
            meeting_id: &self.meeting,
            participant_id: from,
            user_id: room.identity(from).and_then(|i| i.user_id.as_deref()),
            display_name: &view.display_name,
            signature_key: &key,
        };
        match authority.vouch(&subject, state.now_ms()) {
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

    /// Brings the SFU and the MLS delivery service in line with the room;
    /// returns what the delivery service has to say (removal requests).
    fn sync(&mut self, state: &crate::state::AppState, room: &Room) -> Deliveries {
        let admitted: std::collections::BTreeSet<ParticipantId> = room.admitted().collect();
        let out = self.delivery.membership(&admitted);
        self.devices.retain(|p, _| admitted.contains(p));
        self.sync_sfu(state, room);
        out
    }

    /// Closes a participant's media session; the next sync opens a fresh
    /// one for whoever holds the seat now.
    fn restart(&mut self, state: &crate::state::AppState, participant: ParticipantId) {
        if let (Some(plane), Some(_)) = (&state.media, self.told.remove(&participant)) {
            plane.send(conclave_sfu::Command::Leave { meeting: self.meeting.clone(), participant });
        }
    }

    fn sync_sfu(&mut self, state: &crate::state::AppState, room: &Room) {
        let Some(plane) = &state.media else { return };
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

    /// Passes an admitted participant's media request to the SFU, or its
    /// end-to-end encryption message to the delivery service; returns what
    /// is to be sent to whom.
    fn request(
        &mut self,
        state: &crate::state::AppState,
        room: &Room,
        from: ParticipantId,
        message: ClientMessage,
        audits: &mut Vec<RoomAudit>,
    ) -> Deliveries {
        use conclave_room::Outcome;
        match message {
            ClientMessage::E2eeCredentialRequest { signature_key } => {
                return self.vouch(state, room, from, signature_key)
            }
            ClientMessage::E2eeKeyPackage { key_package } => return self.delivery.key_package(from, key_package),
            ClientMessage::E2eeCommit { epoch, commit, welcome, added, removed } => {
                let admitted = room.admitted().collect();
                let proposed = ProposedCommit { epoch, commit, welcome, added, removed };
                if let Err(refusal) = self.delivery.check(from, &proposed, &admitted) {
                    if refusal.is_rogue() {
                        // Someone tried to change the encryption group against
                        // the rules: nobody was evicted or added, but it is kept.
                        let detail = format!("refused an E2EE commit: {refusal:?}");
                        audits.push(("meeting.e2ee.commit", Some(from), None, Outcome::Denied, detail));
                    }
                }
                return self.delivery.commit(from, proposed, &admitted);
            }
            ClientMessage::E2eeApplication { message } => return self.delivery.application(from, message),
            ClientMessage::E2eeCommitRefused { epoch, from: committer, reason } => {
                let reason: String = reason.chars().take(200).collect();
                let detail = format!("a device refused participant {committer}'s commit on epoch {epoch}: {reason}");
                audits.push(("meeting.e2ee.commit_refused", Some(from), Some(committer), Outcome::Denied, detail));
                return Deliveries::new();
            }
            _ => {}
        }
        let Some(plane) = &state.media else {
            let kind = message.kind();
            return vec![(from, ServerMessage::error("unavailable", "this server does not forward media", Some(kind)))];
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
            _ => return Deliveries::new(),
        };
        plane.send(command);
        Deliveries::new()
    }

    /// The meeting closed: every session goes.
    fn close(&mut self, state: &crate::state::AppState) {
        if let Some(plane) = &state.media {
            for participant in self.told.drain().map(|(p, _)| p) {
                plane.send(conclave_sfu::Command::Leave { meeting: self.meeting.clone(), participant });
            }
        }
    }
}
