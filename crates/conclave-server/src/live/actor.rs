//! The task that owns one live meeting. It feeds the meeting's `Room` with
//! commands and with time, and carries out the room's effects: frames to
//! connections (through [`Deliver`], by connection id), closing them, audit
//! events, bans; and it keeps the media plane and the E2EE delivery service
//! in step with the room. Nothing else touches the room, so it needs no lock.

use super::directory::{LocalRooms, Opening};
use super::e2ee::MeetingE2ee;
use super::media_sync::MediaSync;
use super::protocol::{Attendee, Deliver, Frame, MediaEvent, MeetingCommand, MeetingOutput, Undeliverable};
use super::quality::QualityLog;
use super::seats::Seats;
use crate::state::{Audit, SharedState};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::signal::{ParticipantId, ServerMessage};
use conclave_room::{Effect, Input, Room};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// An audit event as the meeting reports it, before it gets its time and chain.
#[derive(Debug, Clone)]
pub struct MeetingAudit {
    pub action: AuditAction,
    pub actor: Option<ParticipantId>,
    pub target: Option<ParticipantId>,
    pub outcome: AuditOutcome,
    pub detail: String,
}

impl MeetingAudit {
    pub fn new(
        action: AuditAction,
        actor: Option<ParticipantId>,
        target: Option<ParticipantId>,
        outcome: AuditOutcome,
        detail: String,
    ) -> Self {
        Self { action, actor, target, outcome, detail }
    }
}

pub struct MeetingActor {
    state: SharedState,
    meeting_id: String,
    org_id: String,
    room: Room,
    commands: mpsc::Receiver<MeetingCommand>,
    deliver: Arc<dyn Deliver>,
    rooms: Arc<LocalRooms>,
    seats: Seats,
    media: MediaSync,
    e2ee: MeetingE2ee,
    quality: QualityLog,
}

impl MeetingActor {
    /// Starts the actor of a meeting on this node.
    pub fn spawn(
        state: SharedState,
        rooms: Arc<LocalRooms>,
        opening: Opening,
        commands: mpsc::Receiver<MeetingCommand>,
        deliver: Arc<dyn Deliver>,
    ) {
        let span = tracing::info_span!("meeting", id = %opening.meeting_id);
        tokio::spawn(
            async move {
                let authority = state.device_authority().await;
                let actor = MeetingActor {
                    media: MediaSync::new(&opening.meeting_id),
                    quality: QualityLog::new(&opening.meeting_id),
                    e2ee: MeetingE2ee::new(&opening.meeting_id, authority),
                    meeting_id: opening.meeting_id,
                    org_id: opening.org_id,
                    room: Room::new(opening.room),
                    seats: Seats::default(),
                    state,
                    commands,
                    deliver,
                    rooms,
                };
                actor.run().await
            }
            .instrument(span),
        );
    }

    async fn run(mut self) {
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
                    Some(command) => self.command(command),
                    None => break,
                },
                () = async { if let Some(w) = wait { tokio::time::sleep(w).await } else { std::future::pending().await } } => Some(Input::Tick),
                _ = policy_check.tick() => self.reread_policy().await,
            };
            let ended = match input {
                Some(input) => self.feed(input),
                None => false,
            };
            self.sync_planes();
            if ended
                || (self.room.is_empty()
                    && self.seats.is_empty()
                    && self.rooms.close_if_idle(&self.meeting_id, &self.commands))
            {
                break;
            }
        }
        for seat in self.seats.seats() {
            if let Some(connection) = self.seats.detach(seat) {
                let _ = self.deliver.deliver(MeetingOutput::close(connection));
            }
        }
        self.media.close(self.state.media.as_ref());
        self.write_quality(true);
        self.rooms.forget(&self.meeting_id);
        if let Err(err) = self.state.store.forget_resume_tokens(&self.meeting_id).await {
            tracing::warn!(error = %err, "could not forget the closed meeting's resume tokens");
        }
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
    fn command(&mut self, command: MeetingCommand) -> Option<Input> {
        match command {
            MeetingCommand::Media { event } => {
                self.media_event(event);
                None
            }
            MeetingCommand::Join { connection, entrant, resume_token } => {
                self.seats.attach(connection, connection);
                Some(Input::Join {
                    id: connection,
                    display_name: entrant.display_name,
                    identity: entrant.identity,
                    standing: entrant.standing,
                    resume_token,
                })
            }
            MeetingCommand::Resume { request, connection, resume_token } => {
                let seat = self.room.seat_of(&resume_token);
                let _ = self.deliver.deliver(MeetingOutput::Resumed { request, accepted: seat.is_some() });
                let seat = seat?;
                if let Some(old) = self.seats.attach(seat, connection) {
                    self.replaced(old);
                    // Whoever holds the token may take the seat over; that it
                    // happened is kept.
                    let detail = "the seat's resume token was presented while its connection was open".to_owned();
                    let audit = MeetingAudit::new(
                        AuditAction::MeetingSeatTakeover,
                        Some(seat),
                        None,
                        AuditOutcome::Success,
                        detail,
                    );
                    self.write_audits(vec![audit]);
                }
                Some(Input::Reconnected { id: seat })
            }
            MeetingCommand::Message { connection, message } => {
                let from = self.seats.seat_of(connection)?;
                Some(Input::Message { from, message })
            }
            MeetingCommand::Closed { connection } => {
                let seat = self.seats.seat_of(connection)?;
                self.seats.detach(seat);
                Some(Input::Disconnected { id: seat })
            }
            MeetingCommand::Policy { policy } => Some(Input::PolicyChanged { policy }),
            MeetingCommand::Terminate { reason } => Some(Input::Terminate { reason }),
            MeetingCommand::HostKey { host_key } => Some(Input::HostKeyChanged { host_key }),
            MeetingCommand::Report { request, resume_token, reported } => {
                Some(Input::Report { request, resume_token, reported })
            }
            MeetingCommand::Attendance { request } => {
                let present = self
                    .room
                    .admitted()
                    .filter_map(|id| {
                        let view = self.room.view(id)?;
                        let user_id = self.room.identity(id).and_then(|i| i.user_id.clone());
                        Some(Attendee { user_id, display_name: view.display_name })
                    })
                    .collect();
                let _ = self.deliver.deliver(MeetingOutput::Attendance { request, present });
                None
            }
            MeetingCommand::BansLifted { keys } => Some(Input::BansLifted { keys }),
            MeetingCommand::AccountClosed { user_id } => Some(Input::AccountClosed { user_id }),
            MeetingCommand::DeviceVouched { participant, outcome } => {
                let out = match outcome {
                    Ok(vouched) => self.e2ee.vouched(&self.room, participant, vouched),
                    Err(reason) => self.e2ee.refused(participant, reason),
                };
                for (to, message) in out {
                    let _ = self.send(to, message);
                }
                None
            }
        }
    }

    /// Tells a connection its seat was taken over, and closes it.
    fn replaced(&self, connection: super::protocol::ConnectionId) {
        let _ = self.deliver.deliver(MeetingOutput::message(connection, ServerMessage::Replaced));
        let _ = self.deliver.deliver(MeetingOutput::close(connection));
    }

    /// Hands `input` to the room and carries out every effect, including
    /// those of inputs the effects themselves cause (a slow connection cut
    /// off becomes a disconnection). Returns true when the meeting ended.
    fn feed(&mut self, input: Input) -> bool {
        let mut inputs = VecDeque::from([input]);
        let mut audits = Vec::new();
        let mut registrations = Vec::new();
        let mut ended = false;
        while let Some(input) = inputs.pop_front() {
            let now = self.state.now_ms();
            for effect in self.room.handle(now, input) {
                match effect {
                    Effect::Send { to, message } => {
                        if self.send(to, message) == Err(Undeliverable::Full) {
                            tracing::warn!(participant = to, "connection too slow; cutting it off");
                            if let Some(connection) = self.seats.detach(to) {
                                let _ = self.deliver.deliver(MeetingOutput::close(connection));
                            }
                            inputs.push_back(Input::Disconnected { id: to });
                        }
                    }
                    Effect::Rebind { connection, seat } => {
                        if let Some(old) = self.seats.rebind(connection, seat) {
                            self.replaced(old);
                        }
                        // A new app instance (tab, device, reload) took the
                        // seat: it negotiates media from scratch.
                        self.media.restart(self.state.media.as_ref(), seat);
                    }
                    Effect::Disconnect { id } => {
                        if let Some(connection) = self.seats.detach(id) {
                            let _ = self.deliver.deliver(MeetingOutput::close(connection));
                        }
                    }
                    Effect::Audit { action, actor, target, outcome, detail } => {
                        audits.push(MeetingAudit::new(action, actor, target, outcome, detail))
                    }
                    Effect::Banned { ban } => self.keep_ban(ban),
                    Effect::ReportChecked { request, verdict } => {
                        let _ = self
                            .deliver
                            .deliver(MeetingOutput::ReportVerdict { request, verdict: verdict.map(Box::new) });
                    }
                    Effect::Media { from, message } => {
                        // Admission now, before the request: the room may have
                        // admitted `from` earlier in this same batch.
                        self.sync_planes();
                        let handled = self.e2ee.handle(now, &self.room, from, message, &mut audits, &mut registrations);
                        let replies = match handled {
                            Ok(deliveries) => deliveries,
                            Err(media) => self
                                .media
                                .request(self.state.media.as_ref(), from, media)
                                .map(|r| (from, r))
                                .into_iter()
                                .collect(),
                        };
                        for (to, message) in replies {
                            let _ = self.send(to, message);
                        }
                    }
                    Effect::Quality { participant, level, report } => {
                        let name = self.room.view(participant).map(|v| v.display_name).unwrap_or_default();
                        self.quality.report(now, participant, &name, level, report);
                    }
                    Effect::Ended { reason } => {
                        tracing::info!(?reason, "meeting ended");
                        ended = true;
                    }
                }
            }
        }
        self.write_quality(false);
        if !audits.is_empty() {
            self.write_audits(audits);
        }
        for registration in registrations {
            self.register_device(registration);
        }
        ended
    }

    /// Registers a participant's account device and vouches for it, off the
    /// meeting's task (it takes the database); the outcome comes back as a
    /// command.
    fn register_device(&self, registration: super::e2ee::Registration) {
        let Some(authority) = self.e2ee.authority().cloned() else { return };
        let state = self.state.clone();
        let meeting_id = self.meeting_id.clone();
        tokio::spawn(async move {
            let super::e2ee::Registration { participant, user_id, signature_key } = registration;
            let outcome = async {
                let user = state.store.user_by_id(&user_id).await?.ok_or(crate::devices::DeviceError::Revoked)?;
                let key = data_encoding::BASE64.decode(signature_key.as_bytes()).unwrap_or_default();
                let print = conclave_proto::device::fingerprint(&key);
                let name = format!("Device {}", print.split(' ').next().unwrap_or_default());
                let now = state.now_ms();
                let (registration, vouched) = authority
                    .account_device(&state.store, &user.id, &user.display_name, &signature_key, &name, now)
                    .await?;
                if registration.new {
                    let device = &registration.device;
                    // A device the account did not have: it shows in the
                    // account's list, and its registration in the audit log.
                    let detail = format!("{} (in meeting {meeting_id})", device.name);
                    let mut audit = Audit::new(AuditAction::AuthDeviceRegister, AuditOutcome::Success)
                        .target(&device.id)
                        .detail(&detail);
                    audit.actor_id = Some(&user.id);
                    audit.org_id = user.org_id.as_deref();
                    state.audit(audit).await?;
                    // It belongs in the account's conversations too; the
                    // meeting goes on if they cannot be told now.
                    if let Err(err) = state.conversations.device_added(&user.id, &device.id, now).await {
                        tracing::warn!(error = %err, "a new device was not added to its account's conversations");
                    }
                }
                Ok::<_, crate::devices::DeviceError>(vouched.into())
            }
            .await
            .map_err(|err| err.to_string());
            state.live.tell(&meeting_id, MeetingCommand::DeviceVouched { participant, outcome });
        });
    }

    /// Brings the SFU and the E2EE group in line with the room, and sends
    /// what the delivery service has to say (removal requests).
    fn sync_planes(&mut self) {
        self.media.sync(self.state.media.as_ref(), &self.room);
        for (to, message) in self.e2ee.sync(&self.room) {
            let _ = self.send(to, message);
        }
    }

    /// Queues `message` for a seat's connection, if it has one.
    fn send(&self, to: ParticipantId, message: ServerMessage) -> Result<(), Undeliverable> {
        let connection = self.seats.holder(to).ok_or(Undeliverable::Gone)?;
        self.deliver
            .deliver(MeetingOutput::ToConnection { connection, frame: Frame::Message { message: Box::new(message) } })
    }

    /// Delivers what the media plane says to the participants it concerns.
    /// Writes the quality samples that are due, off the meeting's task.
    fn write_quality(&mut self, all: bool) {
        let Some(batch) = self.quality.take_due(self.state.now_ms(), all) else { return };
        let state = self.state.clone();
        tokio::spawn(async move {
            if let Err(err) = state.store.add_quality_samples(&batch).await {
                tracing::warn!(error = %err, samples = batch.len(), "could not keep call-quality samples");
            }
        });
    }

    fn media_event(&mut self, event: MediaEvent) {
        match event {
            MediaEvent::Quality { participant, view } => self.quality.sfu_view(participant, view),
            MediaEvent::Signal { participant, message } => {
                if self.room.presence(participant) == Some(conclave_room::Presence::Admitted) {
                    let _ = self.send(participant, message);
                }
            }
            MediaEvent::ActiveSpeaker { participant } => {
                for seat in self.room.admitted().collect::<Vec<_>>() {
                    let _ = self.send(seat, ServerMessage::ActiveSpeaker { participant_id: participant });
                }
            }
        }
    }

    /// Keeps a removal in the database, so it outlives this room and its
    /// owner can see and lift it.
    fn keep_ban(&self, ban: conclave_room::BanRecord) {
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

    /// Appends the meeting's audit events in order, off the meeting's task.
    fn write_audits(&self, audits: Vec<MeetingAudit>) {
        let state = self.state.clone();
        let org_id = self.org_id.clone();
        let meeting_id = self.meeting_id.clone();
        tokio::spawn(async move {
            for MeetingAudit { action, actor, target, outcome, detail } in audits {
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
                    ..Audit::new(action, outcome)
                };
                if let Err(err) = state.audit(event).await {
                    tracing::error!(error = %err, "could not write a meeting audit event");
                }
            }
        });
    }
}
