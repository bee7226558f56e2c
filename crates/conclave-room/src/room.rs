//! The room: inputs in, effects out.

use crate::chat::{ChatLog, MAX_CLIENT_ID_LEN};
use crate::member::{clean_name, Identity, Member, Presence, Standing};
use crate::settings::{apply_change, PolicyView};
use crate::{
    KNOCK_WINDOW_MS, MAX_HOST_KEY_ATTEMPTS, MIN_QUALITY_REPORT_GAP_MS, RECONNECT_GRACE_MS, REPORTS_PER_MEETING,
    REPORTS_PER_REPORTER, REPORT_WINDOW_MS,
};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::quality::{QualityLevel, QualityReport};
use conclave_proto::signal::*;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

const MINUTE_MS: i64 = 60_000;
/// Minutes before the end at which everyone is warned.
const WARNINGS: [u32; 3] = [10, 5, 1];

/// What a room starts from: the meeting's settings and the organisation's policy.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub settings: RoomSettings,
    pub mute_on_entry: bool,
    pub policy: PolicyView,
    /// The meeting's host key; `ClaimHost` with it makes one host.
    pub host_key: String,
    /// Whether joining by code needs a passcode; if not, the waiting room
    /// is what stands behind the code and cannot be turned off.
    pub has_passcode: bool,
    /// Ban keys from earlier sessions of this meeting (see `Effect::Banned`).
    pub banned: Vec<String>,
    /// Guests from one network address the waiting room holds at most
    /// (signed-in people are one seat per account anyway).
    pub waiting_per_address: u32,
    /// Accounts the meeting was started for (the members of the
    /// conversation a call came from): known, so a live meeting lets them
    /// in without the waiting room. A lock and a ban still keep them out.
    pub invited: Vec<String>,
}

/// Which request a report's verdict answers (the driver's numbering).
pub type RequestId = u64;

#[derive(Debug, Clone)]
pub enum Input {
    /// A new connection, already authenticated by a join ticket. `id` is
    /// fresh; `standing` says whether the meeting's owner or an admin of its
    /// organisation is joining.
    Join {
        id: ParticipantId,
        display_name: String,
        identity: Identity,
        standing: Standing,
        resume_token: String,
    },
    Message {
        from: ParticipantId,
        message: ClientMessage,
    },
    /// The participant's connection dropped; the seat is kept for a while.
    Disconnected {
        id: ParticipantId,
    },
    /// The participant came back with its resume token.
    Reconnected {
        id: ParticipantId,
    },
    /// The organisation's policy changed.
    PolicyChanged {
        policy: PolicyView,
    },
    /// The meeting is over from outside (deleted, or shut down).
    Terminate {
        reason: EndReason,
    },
    /// The meeting's secrets were rotated: the old host key stops working.
    HostKeyChanged {
        host_key: String,
    },
    /// Someone holding a seat's resume token reports a participant (through
    /// the REST API). Answered with [`Effect::ReportChecked`].
    Report {
        request: RequestId,
        resume_token: String,
        reported: ParticipantId,
    },
    /// The owner or an admin lifted bans: these keys may join again.
    BansLifted {
        keys: Vec<String>,
    },
    /// The organisation closed an account (deactivated or deprovisioned):
    /// every seat of it leaves the meeting now, waiting or admitted. Not a
    /// ban: the account cannot sign in, and if it is reactivated it may
    /// come back like anyone else.
    AccountClosed {
        user_id: String,
    },
    /// Time passed; deadlines may have come.
    Tick,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send {
        to: ParticipantId,
        message: ServerMessage,
    },
    /// Attach connection `connection` (a fresh join) to the existing seat
    /// `seat`, replacing whatever connection the seat had.
    Rebind {
        connection: ParticipantId,
        seat: ParticipantId,
    },
    /// Close this participant's connection after what was sent; the seat is gone.
    Disconnect {
        id: ParticipantId,
    },
    Audit {
        action: AuditAction,
        actor: Option<ParticipantId>,
        target: Option<ParticipantId>,
        outcome: AuditOutcome,
        detail: String,
    },
    /// The meeting is over; the driver may drop the room.
    Ended {
        reason: EndReason,
    },
    /// Someone was removed for good; keep the ban, so it outlives this room
    /// (see `RoomConfig::banned`).
    Banned {
        ban: BanRecord,
    },
    /// The verdict on an [`Input::Report`]: who the two parties are (for the
    /// organisation's administrators, never for the reporter), or why not.
    ReportChecked {
        request: RequestId,
        verdict: Result<ReportParties, ReportRefusal>,
    },
    /// A participant's quality report, checked and leveled, for the driver
    /// to keep beside the SFU's view.
    Quality {
        participant: ParticipantId,
        level: QualityLevel,
        report: QualityReport,
    },
    /// A media-plane request (`media_offer`, `media_answer`, `subscribe`)
    /// from an admitted participant, for the driver's SFU. Waiting
    /// participants' requests are refused here and never reach it.
    Media {
        from: ParticipantId,
        message: ClientMessage,
    },
}

/// What the SFU may forward from one admitted participant. Host controls
/// are enforced by the SFU from this, not only in the participants' apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediaRights {
    pub microphone: bool,
    pub camera: bool,
    pub screen: bool,
}

/// A removal as the room records it, for the ban list its owner can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRecord {
    pub keys: Vec<String>,
    pub display_name: String,
    pub user_id: Option<String>,
    /// The name of whoever removed them.
    pub removed_by: String,
}

/// The two ends of an accepted report, as the room knows them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReportParties {
    pub reporter: ParticipantView,
    pub reporter_identity: Identity,
    pub reported: ParticipantView,
    pub reported_identity: Identity,
}

/// Why a report was not accepted. The reporter learns only this, and
/// `NoSuchParticipant` covers both an id nobody has and one the reporter
/// could not see, so reporting probes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportRefusal {
    /// The token is no seat's, or the seat is still waiting.
    NotAdmitted,
    NoSuchParticipant,
    Yourself,
    /// Too many reports from this person, or in this meeting, lately.
    Throttled {
        retry_after_ms: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No host has arrived yet; everyone waits.
    NotStarted,
    Live,
    Ended,
}

pub struct Room {
    config: RoomConfig,
    settings: RoomSettings,
    phase: Phase,
    members: BTreeMap<ParticipantId, Member>,
    banned: HashSet<String>,
    /// Wrong host keys per identity key, and in all.
    host_key_failures: HashMap<String, u32>,
    host_key_failures_total: u32,
    /// When each person (by identity key) and the meeting filed reports,
    /// within the last report window.
    reports_by: HashMap<String, VecDeque<i64>>,
    reports: VecDeque<i64>,
    /// Knocks are told to moderators at most once a window: those arriving
    /// meanwhile wait here and are told together when it closes.
    knock_window_ends: Option<i64>,
    held_knocks: Vec<ParticipantId>,
    chat: ChatLog,
    next_seq: u64,
    started_at: Option<i64>,
    ends_at: Option<i64>,
    warned: Vec<u32>,
    out: Vec<Effect>,
}

/// Why a request was refused: an error code for the sender and whether the
/// refusal is a permission failure worth auditing.
struct Refusal {
    code: ErrorCode,
    message: String,
    audit: bool,
}

fn forbidden(message: impl Into<String>) -> Refusal {
    Refusal { code: ErrorCode::Forbidden, message: message.into(), audit: true }
}

fn invalid(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into(), audit: false }
}

type Handled = Result<(), Refusal>;

impl Room {
    pub fn new(config: RoomConfig) -> Self {
        let mut settings = config.settings.clone();
        config.policy.enforce(&mut settings);
        Self {
            banned: config.banned.iter().cloned().collect(),
            config,
            settings,
            phase: Phase::NotStarted,
            members: BTreeMap::new(),
            host_key_failures: HashMap::new(),
            host_key_failures_total: 0,
            reports_by: HashMap::new(),
            reports: VecDeque::new(),
            knock_window_ends: None,
            held_knocks: Vec::new(),
            chat: ChatLog::default(),
            next_seq: 0,
            started_at: None,
            ends_at: None,
            warned: Vec::new(),
            out: Vec::new(),
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn settings(&self) -> &RoomSettings {
        &self.settings
    }

    pub fn policy(&self) -> &PolicyView {
        &self.config.policy
    }

    pub fn host(&self) -> Option<ParticipantId> {
        self.members.values().find(|m| m.role == Role::Host).map(|m| m.id)
    }

    pub fn presence(&self, id: ParticipantId) -> Option<Presence> {
        self.members.get(&id).map(|m| m.presence)
    }

    pub fn view(&self, id: ParticipantId) -> Option<ParticipantView> {
        self.members.get(&id).map(Member::view)
    }

    pub fn identity(&self, id: ParticipantId) -> Option<&Identity> {
        self.members.get(&id).map(|m| &m.identity)
    }

    pub fn standing(&self, id: ParticipantId) -> Option<Standing> {
        self.members.get(&id).map(|m| m.standing)
    }

    pub fn admitted(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.members.values().filter(|m| m.admitted()).map(|m| m.id)
    }

    /// Every admitted participant with what the SFU may forward from them.
    /// Anyone not listed (waiting, removed, gone) has no media path at all.
    pub fn media_rights(&self) -> impl Iterator<Item = (ParticipantId, MediaRights)> + '_ {
        self.members.values().filter(|m| m.admitted()).map(|m| {
            let rights = MediaRights { microphone: !m.audio_muted, camera: !m.video_muted, screen: m.sharing_screen };
            (m.id, rights)
        })
    }

    pub fn waiting(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.members.values().filter(|m| !m.admitted()).map(|m| m.id)
    }

    pub fn is_banned(&self, identity: &Identity) -> bool {
        identity.ban_keys().iter().any(|k| self.banned.contains(k))
    }

    /// The seat a resume token belongs to.
    pub fn seat_of(&self, resume_token: &str) -> Option<ParticipantId> {
        self.members
            .values()
            .find(|m| constant_time_eq(m.resume_token.as_bytes(), resume_token.as_bytes()))
            .map(|m| m.id)
    }

    pub fn ends_at(&self) -> Option<i64> {
        self.ends_at
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// When the room next needs a `Tick`, if nothing else happens first.
    pub fn next_deadline(&self) -> Option<i64> {
        if self.phase == Phase::Ended {
            return None;
        }
        let grace = self.members.values().filter_map(|m| m.disconnected_at).map(|at| at + RECONNECT_GRACE_MS).min();
        let timed = self.ends_at.map(|end| {
            WARNINGS
                .iter()
                .filter(|w| !self.warned.contains(w))
                .map(|w| end - i64::from(*w) * MINUTE_MS)
                .filter(|at| *at < end)
                .min()
                .unwrap_or(end)
                .min(end)
        });
        let knocks = self.knock_window_ends.filter(|_| !self.held_knocks.is_empty());
        [grace, timed, knocks].into_iter().flatten().min()
    }

    pub fn handle(&mut self, now: i64, input: Input) -> Vec<Effect> {
        if self.phase == Phase::Ended {
            match input {
                Input::Join { id, .. } => {
                    self.send(id, ServerMessage::Refused { reason: RefusalReason::Ended });
                    self.out.push(Effect::Disconnect { id });
                }
                Input::Report { request, .. } => {
                    self.out.push(Effect::ReportChecked { request, verdict: Err(ReportRefusal::NotAdmitted) })
                }
                _ => {}
            }
            return std::mem::take(&mut self.out);
        }
        match input {
            Input::Join { id, display_name, identity, standing, resume_token } => {
                self.join(now, id, display_name, identity, standing, resume_token)
            }
            Input::Message { from, message } => self.message(now, from, message),
            Input::Disconnected { id } => {
                if let Some(m) = self.members.get_mut(&id) {
                    if m.disconnected_at.is_none() {
                        m.disconnected_at = Some(now);
                        if m.admitted() {
                            self.broadcast_update(id);
                        }
                    }
                }
            }
            Input::Reconnected { id } => {
                if let Some(m) = self.members.get_mut(&id) {
                    m.disconnected_at = None;
                    self.send_snapshot(id);
                    if self.members[&id].admitted() {
                        self.broadcast_update(id);
                    }
                }
            }
            Input::PolicyChanged { policy } => self.policy_changed(now, policy),
            Input::Terminate { reason } => self.end(reason),
            Input::HostKeyChanged { host_key } => self.config.host_key = host_key,
            Input::Report { request, resume_token, reported } => {
                let verdict = self.check_report(now, &resume_token, reported);
                self.out.push(Effect::ReportChecked { request, verdict });
            }
            Input::BansLifted { keys } => {
                for key in &keys {
                    self.banned.remove(key);
                }
            }
            Input::AccountClosed { user_id } => self.close_account(&user_id),
            Input::Tick => {}
        }
        self.tick(now);
        std::mem::take(&mut self.out)
    }

    // Joining and leaving.

    fn join(
        &mut self,
        now: i64,
        id: ParticipantId,
        display_name: String,
        identity: Identity,
        standing: Standing,
        resume_token: String,
    ) {
        let name = clean_name(&display_name).unwrap_or_else(|| "Guest".to_owned());
        // The owner is never kept out by a ban: nobody in the meeting can
        // ban them (see `Remove`), and a ban that names them anyway (kept
        // from before that rule) must not lock them out of their meeting.
        if standing != Standing::Owner && self.is_banned(&identity) {
            self.refuse(id, RefusalReason::Removed, "removed participant tried to rejoin");
            return;
        }
        // The same account again (a second tab or device): the new
        // connection takes over their seat, keeping their place. Only an
        // account can do this; a guest's seat is taken over only with its
        // resume token.
        if let Some(seat) = self.members.values().find(|m| m.identity.same_account(&identity)).map(|m| m.id) {
            self.out.push(Effect::Rebind { connection: id, seat });
            let was_reconnecting = self.members.get_mut(&seat).and_then(|m| m.disconnected_at.take()).is_some();
            self.send_snapshot(seat);
            if was_reconnecting {
                self.broadcast_update(seat);
            }
            self.audit(
                AuditAction::MeetingSeatTakeover,
                Some(seat),
                None,
                AuditOutcome::Success,
                "the same account joined again from another connection".into(),
            );
            return;
        }
        let is_owner = standing == Standing::Owner;
        if self.settings.locked && !is_owner {
            self.refuse(id, RefusalReason::Locked, "meeting is locked");
            return;
        }
        // Everyone but the owner waits, unless the meeting is live and has
        // no waiting room or was started for them.
        let invited = identity.user_id.as_ref().is_some_and(|user| self.config.invited.contains(user));
        let will_wait = !is_owner && (self.phase != Phase::Live || (self.settings.waiting_room && !invited));
        if will_wait {
            if let Some(detail) = self.waiting_room_full(&identity) {
                self.refuse(id, RefusalReason::WaitingRoomFull, detail);
                return;
            }
        }
        self.next_seq += 1;
        let member = Member {
            id,
            display_name: name,
            identity,
            standing,
            resume_token,
            role: Role::Participant,
            presence: Presence::Waiting,
            disconnected_at: None,
            audio_muted: self.config.mute_on_entry,
            video_muted: false,
            hand_raised: false,
            sharing_screen: false,
            unmute_invited: false,
            joined_seq: self.next_seq,
            share_seq: 0,
            quality: None,
        };
        self.members.insert(id, member);
        if is_owner {
            self.owner_arrives(now, id);
        } else if !will_wait {
            self.admit(id);
        } else {
            self.send_snapshot(id);
            if self.phase == Phase::Live {
                self.knock(now, id);
            }
        }
    }

    /// Why the waiting room cannot take `identity` now, if it cannot.
    fn waiting_room_full(&self, identity: &Identity) -> Option<&'static str> {
        let waiting = self.members.values().filter(|m| !m.admitted());
        let mut total = 0u32;
        let mut same_address = 0u32;
        for m in waiting {
            total += 1;
            if identity.user_id.is_none() && m.identity.user_id.is_none() && m.identity.ip == identity.ip {
                same_address += 1;
            }
        }
        if total >= self.config.policy.waiting_capacity {
            Some("the waiting room is full")
        } else if identity.user_id.is_none() && same_address >= self.config.waiting_per_address {
            Some("the waiting room holds as many guests from this address as it may")
        } else {
            None
        }
    }

    /// A participant's quality report: kept (through the driver) for the
    /// organisation's administrators, and its level told to moderators
    /// when it changes. Reports closer together than the app's period
    /// allows are refused, so nobody fills the store.
    fn quality_report(&mut self, now: i64, from: ParticipantId, report: QualityReport) -> Handled {
        report.validate().map_err(|why| invalid(ErrorCode::Invalid, why.to_string()))?;
        let member = self.members.get_mut(&from).expect("the sender is a member");
        if member.quality.is_some_and(|(_, at)| now - at < MIN_QUALITY_REPORT_GAP_MS) {
            return Err(invalid(ErrorCode::RateLimited, "one quality report every few seconds"));
        }
        let level = report.level();
        let changed = member.quality.is_none_or(|(before, _)| before != level);
        member.quality = Some((level, now));
        if changed {
            self.send_to_moderators(ServerMessage::ParticipantQuality {
                participant_id: from,
                level,
                report: report.clone(),
            });
        }
        self.out.push(Effect::Quality { participant: from, level, report });
        Ok(())
    }

    /// Tells moderators someone knocked: at once when the last knock was a
    /// while ago, else together with everyone else who knocks before the
    /// window closes (a flood of knocks is one notice a second).
    fn knock(&mut self, now: i64, id: ParticipantId) {
        if self.knock_window_ends.is_some_and(|end| now < end) {
            self.held_knocks.push(id);
            return;
        }
        let knock = ServerMessage::Knock { participant: self.members[&id].waiting_view() };
        self.send_to_moderators(knock);
        self.send_waiting_list();
        self.knock_window_ends = Some(now + KNOCK_WINDOW_MS);
    }

    /// Tells moderators about the knocks held while the window was open.
    fn release_knocks(&mut self, now: i64) {
        if self.knock_window_ends.is_none_or(|end| now < end) {
            return;
        }
        let held: Vec<ParticipantId> = std::mem::take(&mut self.held_knocks);
        let still_waiting: Vec<WaitingView> = held
            .iter()
            .filter_map(|id| self.members.get(id).filter(|m| !m.admitted()).map(Member::waiting_view))
            .collect();
        if still_waiting.is_empty() {
            self.knock_window_ends = None;
            return;
        }
        self.send_to_moderators(knocks_message(still_waiting));
        self.send_waiting_list();
        self.knock_window_ends = Some(now + KNOCK_WINDOW_MS);
    }

    /// The meeting's owner becomes host (the current host, if another, steps
    /// down to co-host) and a meeting that had not started starts.
    fn owner_arrives(&mut self, now: i64, id: ParticipantId) {
        if let Some(current) = self.host().filter(|h| *h != id) {
            self.set_role(current, Role::CoHost);
        }
        if let Some(m) = self.members.get_mut(&id) {
            m.role = Role::Host;
            m.audio_muted = false;
        }
        self.admit(id);
        if self.phase == Phase::NotStarted {
            self.phase = Phase::Live;
            self.started_at = Some(now);
            self.ends_at = self.config.policy.time_limit_minutes.map(|m| now + i64::from(m) * MINUTE_MS);
            self.audit(AuditAction::MeetingStart, Some(id), None, AuditOutcome::Success, String::new());
            if self.settings.waiting_room {
                self.send_waiting_list();
                let knocks: Vec<_> =
                    self.members.values().filter(|m| !m.admitted()).map(Member::waiting_view).collect();
                if !knocks.is_empty() {
                    self.send(id, knocks_message(knocks));
                    self.knock_window_ends = Some(now + KNOCK_WINDOW_MS);
                }
            } else {
                let waiting: Vec<_> = self.waiting().collect();
                for w in waiting {
                    self.admit(w);
                }
            }
        }
    }

    fn refuse(&mut self, id: ParticipantId, reason: RefusalReason, detail: &str) {
        self.send(id, ServerMessage::Refused { reason });
        self.out.push(Effect::Disconnect { id });
        self.audit(AuditAction::MeetingJoin, Some(id), None, AuditOutcome::Denied, detail.to_owned());
    }

    fn admit(&mut self, id: ParticipantId) {
        let Some(m) = self.members.get_mut(&id) else { return };
        if m.admitted() {
            return;
        }
        m.presence = Presence::Admitted;
        let joined = m.view();
        for other in self.admitted().filter(|o| *o != id).collect::<Vec<_>>() {
            self.send(other, ServerMessage::ParticipantJoined { participant: joined.clone() });
        }
        self.send_snapshot(id);
        self.send_waiting_list();
    }

    /// Everything a (re)connecting participant needs: the full meeting if
    /// admitted, only "you are waiting" if not.
    fn send_snapshot(&mut self, id: ParticipantId) {
        let Some(m) = self.members.get(&id) else { return };
        let message = if m.admitted() {
            ServerMessage::Admitted {
                protocol_version: PROTOCOL_VERSION,
                participant_id: id,
                resume_token: m.resume_token.clone(),
                you: m.view(),
                roster: self.members.values().filter(|o| o.admitted()).map(Member::view).collect(),
                settings: self.settings.clone(),
                chat: self.chat.visible_to(id),
                ends_at_ms: self.ends_at,
            }
        } else {
            ServerMessage::Waiting {
                protocol_version: PROTOCOL_VERSION,
                participant_id: id,
                resume_token: m.resume_token.clone(),
            }
        };
        let moderator = m.admitted() && m.role.moderates();
        self.send(id, message);
        if moderator {
            let waiting: Vec<_> = self.members.values().filter(|o| !o.admitted()).map(Member::waiting_view).collect();
            self.send(id, ServerMessage::WaitingRoom { waiting });
        }
    }

    /// Every seat of a closed account is removed, as a host would remove it
    /// but without a ban.
    fn close_account(&mut self, user_id: &str) {
        let seats: Vec<ParticipantId> =
            self.members.values().filter(|m| m.identity.user_id.as_deref() == Some(user_id)).map(|m| m.id).collect();
        for id in seats {
            self.send(id, ServerMessage::Removed);
            self.depart(id);
            self.audit(
                AuditAction::MeetingRemove,
                None,
                Some(id),
                AuditOutcome::Success,
                "the organisation closed the account".into(),
            );
        }
    }

    /// Someone is gone for good (left, removed, denied, or never came back).
    fn depart(&mut self, id: ParticipantId) {
        let Some(member) = self.members.remove(&id) else { return };
        self.out.push(Effect::Disconnect { id });
        if member.admitted() {
            self.broadcast(ServerMessage::ParticipantLeft { participant_id: id });
            if member.role == Role::Host {
                self.choose_new_host();
            }
        } else {
            self.send_waiting_list();
        }
        if self.phase == Phase::Live && self.members.is_empty() {
            self.end(EndReason::NoHost);
        }
    }

    /// After the host leaves: the longest-present co-host, else the
    /// longest-present participant; with nobody admitted left, the meeting ends.
    fn choose_new_host(&mut self) {
        let candidate = self
            .members
            .values()
            .filter(|m| m.admitted())
            .min_by_key(|m| (m.role != Role::CoHost, m.disconnected_at.is_some(), m.joined_seq))
            .map(|m| m.id);
        match candidate {
            Some(next) => {
                self.set_role(next, Role::Host);
                self.audit(
                    AuditAction::MeetingHostAssign,
                    None,
                    Some(next),
                    AuditOutcome::Success,
                    "previous host left".into(),
                );
            }
            None => self.end(EndReason::NoHost),
        }
    }

    fn end(&mut self, reason: EndReason) {
        if self.phase == Phase::Ended {
            return;
        }
        self.phase = Phase::Ended;
        let everyone: Vec<_> = self.members.keys().copied().collect();
        for id in everyone {
            self.send(id, ServerMessage::Ended { reason });
            self.out.push(Effect::Disconnect { id });
        }
        self.members.clear();
        self.audit(AuditAction::MeetingEnd, None, None, AuditOutcome::Success, format!("{reason:?}"));
        self.out.push(Effect::Ended { reason });
    }

    // Time.

    fn tick(&mut self, now: i64) {
        if self.phase == Phase::Ended {
            return;
        }
        let expired: Vec<_> = self
            .members
            .values()
            .filter(|m| m.disconnected_at.is_some_and(|at| now >= at + RECONNECT_GRACE_MS))
            .map(|m| m.id)
            .collect();
        for id in expired {
            self.depart(id);
        }
        if self.phase == Phase::Live {
            self.release_knocks(now);
        }
        let Some(end) = self.ends_at else { return };
        if now >= end {
            self.end(EndReason::TimeLimit);
            return;
        }
        // When several warnings are due at once (a late tick), only the
        // closest to the end is worth showing.
        let due = WARNINGS
            .iter()
            .copied()
            .filter(|w| now >= end - i64::from(*w) * MINUTE_MS && !self.warned.contains(w))
            .min();
        if let Some(minutes) = due {
            self.warned.extend(WARNINGS.iter().filter(|w| **w >= minutes));
            let left = ((end - now + MINUTE_MS - 1) / MINUTE_MS) as u32;
            self.broadcast(ServerMessage::TimeWarning { minutes_left: left, ends_at_ms: end });
        }
    }

    fn policy_changed(&mut self, now: i64, policy: PolicyView) {
        let limit_changed = policy.time_limit_minutes != self.config.policy.time_limit_minutes;
        self.config.policy = policy;
        // Sent even when no value changed: the list of locked names may have.
        self.config.policy.enforce(&mut self.settings);
        self.broadcast_settings();
        if limit_changed {
            if let Some(start) = self.started_at {
                self.ends_at = self.config.policy.time_limit_minutes.map(|m| start + i64::from(m) * MINUTE_MS);
                self.warned.clear();
                if let Some(end) = self.ends_at {
                    // Warnings already past are not replayed.
                    self.warned.extend(WARNINGS.iter().filter(|w| now >= end - i64::from(**w) * MINUTE_MS - MINUTE_MS));
                }
                self.broadcast(ServerMessage::TimeLimit { ends_at_ms: self.ends_at });
            }
        }
        self.audit(AuditAction::MeetingPolicy, None, None, AuditOutcome::Success, String::new());
    }

    // Messages from participants.

    fn message(&mut self, now: i64, from: ParticipantId, message: ClientMessage) {
        let kind = message.kind();
        let Some(sender) = self.members.get(&from) else { return };
        let result = if !sender.admitted() {
            match message {
                ClientMessage::Ping => {
                    self.send(from, ServerMessage::Pong);
                    Ok(())
                }
                ClientMessage::Leave => {
                    self.depart(from);
                    Ok(())
                }
                _ => Err(forbidden("you are in the waiting room; a host must admit you first")),
            }
        } else {
            self.admitted_message(now, from, message)
        };
        if let Err(refusal) = result {
            if refusal.audit {
                self.audit(
                    AuditAction::MeetingCommand,
                    Some(from),
                    None,
                    AuditOutcome::Denied,
                    format!("{kind}: {}", refusal.message),
                );
            }
            self.send(from, ServerMessage::error(refusal.code, refusal.message, Some(kind)));
        }
    }

    fn role_of(&self, id: ParticipantId) -> Role {
        self.members.get(&id).map_or(Role::Participant, |m| m.role)
    }

    fn require(&self, from: ParticipantId, role: Role) -> Handled {
        if self.role_of(from) >= role {
            Ok(())
        } else if role == Role::Host {
            Err(forbidden("only the host can do this"))
        } else {
            Err(forbidden("only hosts and co-hosts can do this"))
        }
    }

    /// An admitted target that `from` may act on: never the host, unless
    /// `from` is the host.
    fn target(&self, from: ParticipantId, target: ParticipantId) -> Result<(), Refusal> {
        let Some(t) = self.members.get(&target).filter(|t| t.admitted()) else {
            return Err(invalid(ErrorCode::NotFound, "no such participant in the meeting"));
        };
        if t.role == Role::Host && self.role_of(from) != Role::Host {
            return Err(forbidden("co-hosts cannot act on the host"));
        }
        Ok(())
    }

    fn admitted_message(&mut self, now: i64, from: ParticipantId, message: ClientMessage) -> Handled {
        use ClientMessage as M;
        match message {
            M::Ping => {
                self.send(from, ServerMessage::Pong);
                Ok(())
            }
            M::Leave => {
                self.depart(from);
                Ok(())
            }
            M::QualityReport { report } => self.quality_report(now, from, report),
            M::SetMedia { audio_muted, video_muted } => self.set_media(from, audio_muted, video_muted),
            M::RaiseHand | M::LowerHand => {
                let raised = matches!(message, M::RaiseHand);
                self.update(from, |m| m.hand_raised = raised);
                Ok(())
            }
            M::React { emoji } => {
                if !REACTIONS.contains(&emoji.as_str()) {
                    return Err(invalid(ErrorCode::Invalid, format!("reactions are {}", REACTIONS.join(" "))));
                }
                self.broadcast(ServerMessage::Reaction { from, emoji });
                Ok(())
            }
            M::Chat { client_msg_id, text, to } => self.chat(now, from, client_msg_id, text, to),
            M::StartScreenShare => self.start_share(from),
            M::StopScreenShare { participant_id } => {
                let target = participant_id.unwrap_or(from);
                if target != from {
                    self.require(from, Role::CoHost)?;
                    self.target(from, target)?;
                }
                self.update(target, |m| m.sharing_screen = false);
                Ok(())
            }
            M::Rename { participant_id, display_name } => {
                if participant_id != from {
                    self.require(from, Role::CoHost)?;
                    self.target(from, participant_id)?;
                } else if !self.settings.allow_rename && !self.role_of(from).moderates() {
                    return Err(forbidden("the host does not allow renaming"));
                }
                let name = clean_name(&display_name)
                    .ok_or_else(|| invalid(ErrorCode::Invalid, "names are 1 to 64 printable characters"))?;
                self.update(participant_id, |m| m.display_name = name);
                Ok(())
            }
            M::Admit { participant_id } => {
                self.require(from, Role::CoHost)?;
                if self.presence(participant_id) != Some(Presence::Waiting) {
                    return Err(invalid(ErrorCode::NotFound, "nobody with that id is waiting"));
                }
                self.admit(participant_id);
                self.audit(
                    AuditAction::MeetingAdmit,
                    Some(from),
                    Some(participant_id),
                    AuditOutcome::Success,
                    String::new(),
                );
                Ok(())
            }
            M::AdmitAll => {
                self.require(from, Role::CoHost)?;
                let waiting: Vec<_> = self.waiting().collect();
                for id in &waiting {
                    self.admit(*id);
                }
                self.audit(
                    AuditAction::MeetingAdmitAll,
                    Some(from),
                    None,
                    AuditOutcome::Success,
                    format!("{} admitted", waiting.len()),
                );
                Ok(())
            }
            M::Deny { participant_id } => {
                self.require(from, Role::CoHost)?;
                if self.presence(participant_id) != Some(Presence::Waiting) {
                    return Err(invalid(ErrorCode::NotFound, "nobody with that id is waiting"));
                }
                self.send(participant_id, ServerMessage::Refused { reason: RefusalReason::Denied });
                self.depart(participant_id);
                self.audit(
                    AuditAction::MeetingDeny,
                    Some(from),
                    Some(participant_id),
                    AuditOutcome::Success,
                    String::new(),
                );
                Ok(())
            }
            M::Remove { participant_id } => {
                self.require(from, Role::CoHost)?;
                if participant_id == from {
                    return Err(invalid(ErrorCode::Invalid, "leave instead of removing yourself"));
                }
                let Some(member) = self.members.get(&participant_id) else {
                    return Err(invalid(ErrorCode::NotFound, "no such participant"));
                };
                if member.role == Role::Host {
                    return Err(forbidden("the host cannot be removed"));
                }
                match member.standing {
                    Standing::Owner => return Err(forbidden("the meeting's owner cannot be removed")),
                    Standing::OrgAdmin if self.members[&from].standing != Standing::Owner => {
                        return Err(forbidden("only the meeting's owner can remove an admin of its organisation"));
                    }
                    _ => {}
                }
                let ban = BanRecord {
                    keys: member.identity.ban_keys(),
                    display_name: member.display_name.clone(),
                    user_id: member.identity.user_id.clone(),
                    removed_by: self.members[&from].display_name.clone(),
                };
                self.banned.extend(ban.keys.iter().cloned());
                self.out.push(Effect::Banned { ban });
                self.send(participant_id, ServerMessage::Removed);
                self.depart(participant_id);
                self.audit(
                    AuditAction::MeetingRemove,
                    Some(from),
                    Some(participant_id),
                    AuditOutcome::Success,
                    String::new(),
                );
                Ok(())
            }
            M::Mute { participant_id } => {
                self.require(from, Role::CoHost)?;
                self.target(from, participant_id)?;
                self.update(participant_id, |m| {
                    m.audio_muted = true;
                    m.unmute_invited = false;
                });
                Ok(())
            }
            M::MuteAll => {
                self.require(from, Role::CoHost)?;
                let others: Vec<_> = self
                    .members
                    .values()
                    .filter(|m| m.admitted() && !m.role.moderates() && !m.audio_muted)
                    .map(|m| m.id)
                    .collect();
                for id in others {
                    self.update(id, |m| {
                        m.audio_muted = true;
                        m.unmute_invited = false;
                    });
                }
                self.audit(AuditAction::MeetingMuteAll, Some(from), None, AuditOutcome::Success, String::new());
                Ok(())
            }
            M::AskToUnmute { participant_id } => {
                self.require(from, Role::CoHost)?;
                self.target(from, participant_id)?;
                if let Some(m) = self.members.get_mut(&participant_id) {
                    m.unmute_invited = true;
                }
                self.send(participant_id, ServerMessage::UnmuteRequested { by: from });
                Ok(())
            }
            M::StopVideo { participant_id } => {
                self.require(from, Role::CoHost)?;
                self.target(from, participant_id)?;
                self.update(participant_id, |m| m.video_muted = true);
                Ok(())
            }
            M::Lock | M::Unlock => {
                self.require(from, Role::CoHost)?;
                self.settings.locked = matches!(message, M::Lock);
                self.broadcast_settings();
                let action = if self.settings.locked { AuditAction::MeetingLock } else { AuditAction::MeetingUnlock };
                self.audit(action, Some(from), None, AuditOutcome::Success, String::new());
                Ok(())
            }
            M::UpdateSettings { settings } => self.update_settings(from, settings),
            M::TransferHost { participant_id } => {
                self.require(from, Role::Host)?;
                self.target(from, participant_id)?;
                if participant_id == from {
                    return Ok(());
                }
                self.set_role(from, Role::Participant);
                self.set_role(participant_id, Role::Host);
                self.audit(
                    AuditAction::MeetingHostTransfer,
                    Some(from),
                    Some(participant_id),
                    AuditOutcome::Success,
                    String::new(),
                );
                Ok(())
            }
            M::SetCoHost { participant_id, co_host } => {
                self.require(from, Role::Host)?;
                self.target(from, participant_id)?;
                if participant_id == from {
                    return Err(invalid(ErrorCode::Invalid, "the host is already in charge"));
                }
                self.set_role(participant_id, if co_host { Role::CoHost } else { Role::Participant });
                self.audit(
                    AuditAction::MeetingCoHost,
                    Some(from),
                    Some(participant_id),
                    AuditOutcome::Success,
                    co_host.to_string(),
                );
                Ok(())
            }
            M::SuspendAll => {
                self.require(from, Role::Host)?;
                self.suspend_all();
                self.audit(AuditAction::MeetingSuspendAll, Some(from), None, AuditOutcome::Success, String::new());
                Ok(())
            }
            M::EndForAll => {
                self.require(from, Role::Host)?;
                self.audit(AuditAction::MeetingEndForAll, Some(from), None, AuditOutcome::Success, String::new());
                self.end(EndReason::EndedByHost);
                Ok(())
            }
            M::ClaimHost { host_key } => self.claim_host(from, &host_key),
            M::MediaOffer { .. }
            | M::MediaAnswer { .. }
            | M::Subscribe { .. }
            | M::E2eeCredentialRequest { .. }
            | M::E2eeKeyPackage { .. }
            | M::E2eeCommit { .. }
            | M::E2eeApplication { .. }
            | M::E2eeCommitRefused { .. } => {
                self.out.push(Effect::Media { from, message });
                Ok(())
            }
        }
    }

    fn set_media(&mut self, from: ParticipantId, audio_muted: Option<bool>, video_muted: Option<bool>) -> Handled {
        let m = &self.members[&from];
        let moderator = m.role.moderates();
        if audio_muted == Some(false)
            && m.audio_muted
            && !moderator
            && !self.settings.allow_self_unmute
            && !m.unmute_invited
        {
            return Err(forbidden("the host does not allow unmuting yourself; ask them to"));
        }
        if video_muted == Some(false) && m.video_muted && !moderator && !self.settings.allow_video {
            return Err(forbidden("the host does not allow starting video now"));
        }
        self.update(from, |m| {
            if let Some(a) = audio_muted {
                if !a {
                    m.unmute_invited = false;
                }
                m.audio_muted = a;
            }
            if let Some(v) = video_muted {
                m.video_muted = v;
            }
        });
        Ok(())
    }

    fn chat(
        &mut self,
        now: i64,
        from: ParticipantId,
        client_msg_id: String,
        text: String,
        to: Option<ParticipantId>,
    ) -> Handled {
        if client_msg_id.is_empty() || client_msg_id.chars().count() > MAX_CLIENT_ID_LEN {
            return Err(invalid(
                ErrorCode::Invalid,
                format!("client_msg_id must be 1 to {MAX_CLIENT_ID_LEN} characters"),
            ));
        }
        if let Some(seq) = self.chat.already_sent(from, &client_msg_id) {
            self.send(from, ServerMessage::ChatAck { client_msg_id, seq });
            return Ok(());
        }
        let text = text.trim().to_owned();
        if text.is_empty() || text.chars().count() > MAX_CHAT_CHARS {
            return Err(invalid(ErrorCode::Invalid, format!("messages are 1 to {MAX_CHAT_CHARS} characters")));
        }
        let sender_moderates = self.role_of(from).moderates();
        match to {
            None if !sender_moderates && self.settings.chat != ChatMode::Everyone => {
                return Err(forbidden("chat to everyone is turned off"));
            }
            Some(target) => {
                let Some(recipient) = self.members.get(&target).filter(|m| m.admitted() && m.id != from) else {
                    return Err(invalid(ErrorCode::NotFound, "no such participant to write to"));
                };
                let either_moderates = sender_moderates || recipient.role.moderates();
                let allowed = match self.settings.chat {
                    _ if sender_moderates => true,
                    ChatMode::Off => false,
                    ChatMode::HostsOnly => recipient.role.moderates(),
                    ChatMode::Everyone => self.settings.private_chat || either_moderates,
                };
                if !allowed {
                    return Err(forbidden("private messages to this participant are turned off"));
                }
            }
            None => {}
        }
        let name = self.members[&from].display_name.clone();
        let message = self.chat.append(from, name, to, client_msg_id.clone(), text, now);
        self.send(from, ServerMessage::ChatAck { client_msg_id, seq: message.seq });
        match to {
            None => self.broadcast(ServerMessage::Chat { message }),
            Some(target) => {
                self.send(target, ServerMessage::Chat { message: message.clone() });
                self.send(from, ServerMessage::Chat { message });
            }
        }
        Ok(())
    }

    fn start_share(&mut self, from: ParticipantId) -> Handled {
        let moderator = self.role_of(from).moderates();
        let others_sharing = self.members.values().any(|m| m.sharing_screen && m.id != from);
        match self.settings.screen_share {
            ScreenShareMode::HostOnly if !moderator => return Err(forbidden("only hosts may share their screen")),
            ScreenShareMode::OneAtATime if others_sharing => {
                return Err(invalid(ErrorCode::Busy, "someone else is sharing; only one share at a time"));
            }
            _ => {}
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        self.update(from, |m| {
            m.sharing_screen = true;
            m.share_seq = seq;
        });
        Ok(())
    }

    fn update_settings(&mut self, from: ParticipantId, change: SettingsChange) -> Handled {
        self.require(from, Role::CoHost)?;
        let refused = self.config.policy.refused_in(&change, &self.settings);
        if !refused.is_empty() {
            return Err(forbidden(format!("locked by your organisation: {}", refused.join(", "))));
        }
        if change.waiting_room == Some(false) && !self.config.has_passcode {
            return Err(invalid(
                ErrorCode::Invalid,
                "this meeting has no passcode, so its waiting room stays on; set a passcode first",
            ));
        }
        apply_change(&mut self.settings, &change);
        self.config.policy.enforce(&mut self.settings);
        self.enforce_share_mode();
        self.broadcast_settings();
        self.audit(AuditAction::MeetingSettings, Some(from), None, AuditOutcome::Success, String::new());
        Ok(())
    }

    /// Stops shares the current mode no longer allows.
    fn enforce_share_mode(&mut self) {
        let sharers: Vec<_> = {
            let mut s: Vec<_> = self
                .members
                .values()
                .filter(|m| m.sharing_screen)
                .map(|m| (m.share_seq, m.id, m.role.moderates()))
                .collect();
            s.sort();
            s
        };
        let stop: Vec<ParticipantId> = match self.settings.screen_share {
            ScreenShareMode::HostOnly => {
                sharers.iter().filter(|(_, _, moderates)| !moderates).map(|(_, id, _)| *id).collect()
            }
            ScreenShareMode::OneAtATime => sharers.iter().skip(1).map(|(_, id, _)| *id).collect(),
            ScreenShareMode::Several => Vec::new(),
        };
        for id in stop {
            self.update(id, |m| m.sharing_screen = false);
        }
    }

    /// The emergency button: everyone but hosts muted, cameras and shares
    /// stopped, the meeting locked, chat and renaming off.
    fn suspend_all(&mut self) {
        self.settings.locked = true;
        self.settings.allow_self_unmute = false;
        self.settings.allow_video = false;
        self.settings.allow_rename = false;
        self.settings.screen_share = ScreenShareMode::HostOnly;
        self.settings.chat = ChatMode::Off;
        self.settings.private_chat = false;
        self.config.policy.enforce(&mut self.settings);
        let affected: Vec<_> =
            self.members.values().filter(|m| m.admitted() && !m.role.moderates()).map(|m| m.id).collect();
        for id in affected {
            self.update(id, |m| {
                m.audio_muted = true;
                m.video_muted = true;
                m.sharing_screen = false;
                m.hand_raised = false;
                m.unmute_invited = false;
            });
        }
        self.broadcast_settings();
    }

    fn claim_host(&mut self, from: ParticipantId, key: &str) -> Handled {
        // Counted per person (account, device, address), so leaving and
        // rejoining does not buy more guesses; and in all, so many people
        // together cannot try more than a few times each of 10^6 keys.
        let keys = self.members[&from].identity.ban_keys();
        let failures = keys.iter().filter_map(|k| self.host_key_failures.get(k)).max().copied().unwrap_or(0);
        if failures >= MAX_HOST_KEY_ATTEMPTS || self.host_key_failures_total >= MAX_HOST_KEY_ATTEMPTS * 10 {
            return Err(forbidden("too many wrong host keys"));
        }
        if !constant_time_eq(key.as_bytes(), self.config.host_key.as_bytes()) {
            for k in keys {
                *self.host_key_failures.entry(k).or_default() += 1;
            }
            self.host_key_failures_total += 1;
            return Err(forbidden("wrong host key"));
        }
        // The host key never outranks the meeting's owner: while the owner
        // is here, it makes a co-host.
        let owner_here = self.members.values().any(|m| m.standing == Standing::Owner && m.admitted() && m.id != from);
        if owner_here {
            if self.role_of(from) < Role::CoHost {
                self.set_role(from, Role::CoHost);
            }
            let detail = "the meeting's owner is here: co-host, not host".to_owned();
            self.audit(AuditAction::MeetingHostClaim, Some(from), None, AuditOutcome::Success, detail);
            return Ok(());
        }
        if let Some(current) = self.host().filter(|h| *h != from) {
            self.set_role(current, Role::CoHost);
        }
        self.set_role(from, Role::Host);
        self.audit(AuditAction::MeetingHostClaim, Some(from), None, AuditOutcome::Success, String::new());
        Ok(())
    }

    /// Whether a report may be filed: the reporter holds an admitted seat,
    /// the reported person is someone they could see (admitted, or waiting
    /// for a moderator), and neither they nor the meeting have reported too
    /// much lately. Counted per identity key, so rejoining buys nothing.
    fn check_report(
        &mut self,
        now: i64,
        resume_token: &str,
        reported: ParticipantId,
    ) -> Result<ReportParties, ReportRefusal> {
        let reporter = self
            .seat_of(resume_token)
            .and_then(|id| self.members.get(&id))
            .filter(|m| m.admitted())
            .ok_or(ReportRefusal::NotAdmitted)?;
        let keys = reporter.identity.ban_keys();
        let window_start = now - REPORT_WINDOW_MS;
        for times in self.reports_by.values_mut().chain(std::iter::once(&mut self.reports)) {
            while times.front().is_some_and(|t| *t <= window_start) {
                times.pop_front();
            }
        }
        self.reports_by.retain(|_, times| !times.is_empty());
        let mine = keys.iter().filter_map(|k| self.reports_by.get(k)).max_by_key(|t| t.len());
        let full =
            |times: &VecDeque<i64>, limit: usize| (times.len() >= limit).then(|| times[0] + REPORT_WINDOW_MS - now);
        if let Some(wait) =
            mine.and_then(|t| full(t, REPORTS_PER_REPORTER)).or_else(|| full(&self.reports, REPORTS_PER_MEETING))
        {
            return Err(ReportRefusal::Throttled { retry_after_ms: wait.max(1) });
        }
        if reporter.id == reported {
            return Err(ReportRefusal::Yourself);
        }
        let sees_waiting = reporter.role.moderates();
        let target = self
            .members
            .get(&reported)
            .filter(|t| t.admitted() || sees_waiting)
            .ok_or(ReportRefusal::NoSuchParticipant)?;
        let parties = ReportParties {
            reporter: reporter.view(),
            reporter_identity: reporter.identity.clone(),
            reported: target.view(),
            reported_identity: target.identity.clone(),
        };
        for key in keys {
            self.reports_by.entry(key).or_default().push_back(now);
        }
        self.reports.push_back(now);
        Ok(parties)
    }

    // Output helpers.

    fn send(&mut self, to: ParticipantId, message: ServerMessage) {
        self.out.push(Effect::Send { to, message });
    }

    fn broadcast(&mut self, message: ServerMessage) {
        let admitted: Vec<_> = self.admitted().collect();
        for id in admitted {
            self.send(id, message.clone());
        }
    }

    fn send_to_moderators(&mut self, message: ServerMessage) {
        let moderators: Vec<_> =
            self.members.values().filter(|m| m.admitted() && m.role.moderates()).map(|m| m.id).collect();
        for id in moderators {
            self.send(id, message.clone());
        }
    }

    fn send_waiting_list(&mut self) {
        if self.phase != Phase::Live {
            return;
        }
        let waiting: Vec<_> = self.members.values().filter(|m| !m.admitted()).map(Member::waiting_view).collect();
        self.send_to_moderators(ServerMessage::WaitingRoom { waiting });
    }

    fn broadcast_settings(&mut self) {
        self.broadcast(ServerMessage::SettingsChanged { settings: self.settings.clone() });
    }

    fn broadcast_update(&mut self, id: ParticipantId) {
        if let Some(participant) = self.members.get(&id).filter(|m| m.admitted()).map(Member::view) {
            self.broadcast(ServerMessage::ParticipantUpdated { participant });
        }
    }

    fn update(&mut self, id: ParticipantId, change: impl FnOnce(&mut Member)) {
        if let Some(m) = self.members.get_mut(&id) {
            change(m);
            self.broadcast_update(id);
        }
    }

    fn set_role(&mut self, id: ParticipantId, role: Role) {
        let was_moderator = self.role_of(id).moderates();
        self.update(id, |m| m.role = role);
        // A new moderator needs the waiting room's current state.
        if role.moderates() && !was_moderator {
            let waiting: Vec<_> = self.members.values().filter(|m| !m.admitted()).map(Member::waiting_view).collect();
            self.send(id, ServerMessage::WaitingRoom { waiting });
        }
        if !role.moderates() {
            self.enforce_share_mode();
        }
    }

    fn audit(
        &mut self,
        action: AuditAction,
        actor: Option<ParticipantId>,
        target: Option<ParticipantId>,
        outcome: AuditOutcome,
        detail: String,
    ) {
        self.out.push(Effect::Audit { action, actor, target, outcome, detail });
    }
}

/// One knock, or several at once (naming the first few).
fn knocks_message(mut waiting: Vec<WaitingView>) -> ServerMessage {
    if waiting.len() == 1 {
        return ServerMessage::Knock { participant: waiting.remove(0) };
    }
    let count = waiting.len() as u32;
    waiting.truncate(5);
    ServerMessage::Knocks { count, first: waiting }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
