//! A seeded, deterministic simulation of meetings. Each seed drives one room
//! through random joins (some by people removed earlier, under new names),
//! host and participant commands (many of them not allowed), disconnects,
//! reconnects, policy changes and the passing of time, and checks the
//! room's invariants after every step:
//!
//! 1. only admitted participants ever receive anything of the meeting;
//! 2. a removed participant never gets back in;
//! 3. a live meeting has exactly one host, who is admitted, or it has ended;
//! 4. settings the organisation locked are never overridden;
//! 5. chat is strictly ordered; screen sharing obeys the share mode;
//! 6. a seat is taken over only by a join of the same account;
//! 7. a report reaches nobody and is accepted only from an admitted seat,
//!    about someone that seat could see;
//! 8. nobody bans the meeting's owner, only the owner bans an admin of the
//!    organisation, and the owner is never refused as removed;
//! 9. the waiting room never holds more than its capacity, nor more guests
//!    from one address than it may;
//! 10. call-quality reports are kept only from admitted seats, and only as
//!     measured, and their levels reach moderators only.
//!
//! `CONCLAVE_SIM_SEEDS=1000000` runs more seeds (default 10,000);
//! `CONCLAVE_SIM_SEED=n` replays one seed; `CONCLAVE_SIM_STEPS` sets the steps per seed.

use conclave_proto::signal::*;
use conclave_room::{Effect, Identity, Input, Phase, PolicyView, Presence, ReportRefusal, Room, RoomConfig, Standing};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

const HOST_KEY: &str = "482913";
const WAITING_CAPACITY: u32 = 6;
const WAITING_PER_ADDRESS: u32 = 2;
/// Person 0 owns the meeting; person 1, when signed in, is an admin of its
/// organisation.
const OWNER: usize = 0;
const ADMIN: usize = 1;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn ten_thousand_seeded_meetings_keep_every_invariant() {
    let steps = env_u64("CONCLAVE_SIM_STEPS").unwrap_or(120) as usize;
    let seeds: Vec<u64> = match env_u64("CONCLAVE_SIM_SEED") {
        Some(one) => vec![one],
        None => (0..env_u64("CONCLAVE_SIM_SEEDS").unwrap_or(10_000)).collect(),
    };
    let mut totals = Totals::default();
    for seed in seeds {
        let mut sim = Sim::new(seed);
        for step in 0..steps {
            if let Err(violation) = sim.step() {
                panic!(
                    "seed {seed}, step {step}: {violation}\nreplay with CONCLAVE_SIM_SEED={seed}\nlast inputs:\n{}",
                    sim.trace.join("\n")
                );
            }
        }
        totals.add(&sim);
    }
    // The simulation must actually reach the interesting states.
    eprintln!("{totals:?}");
    assert!(totals.admitted > 0 && totals.removed > 0 && totals.rejoins_refused > 0 && totals.denied_commands > 0);
    assert!(
        totals.ended > 0
            && totals.host_changes > 0
            && totals.chats > 0
            && totals.policy_changes > 0
            && totals.reopened > 0
            && totals.media_requests > 0
            && totals.quality_reports > 0
    );
    assert!(
        totals.takeovers > 0
            && totals.reports_filed > 0
            && totals.reports_refused > 0
            && totals.protected_removals_refused > 0
            && totals.waiting_room_full > 0
    );
}

#[derive(Debug, Default)]
struct Totals {
    reopened: u64,
    admitted: u64,
    removed: u64,
    rejoins_refused: u64,
    denied_commands: u64,
    ended: u64,
    host_changes: u64,
    chats: u64,
    policy_changes: u64,
    media_requests: u64,
    quality_reports: u64,
    takeovers: u64,
    reports_filed: u64,
    reports_refused: u64,
    protected_removals_refused: u64,
    waiting_room_full: u64,
}

impl Totals {
    fn add(&mut self, sim: &Sim) {
        self.admitted += sim.stats.admitted;
        self.removed += sim.stats.removed;
        self.rejoins_refused += sim.stats.rejoins_refused;
        self.denied_commands += sim.stats.denied_commands;
        self.ended += sim.total_ended;
        self.reopened += sim.stats.reopened;
        self.host_changes += sim.stats.host_changes;
        self.chats += sim.stats.chats;
        self.policy_changes += sim.stats.policy_changes;
        self.media_requests += sim.stats.media_requests;
        self.quality_reports += sim.stats.quality_reports;
        self.takeovers += sim.stats.takeovers;
        self.reports_filed += sim.stats.reports_filed;
        self.reports_refused += sim.stats.reports_refused;
        self.protected_removals_refused += sim.stats.protected_removals_refused;
        self.waiting_room_full += sim.stats.waiting_room_full;
    }
}

#[derive(Default)]
struct Stats {
    reopened: u64,
    admitted: u64,
    removed: u64,
    rejoins_refused: u64,
    denied_commands: u64,
    host_changes: u64,
    chats: u64,
    policy_changes: u64,
    media_requests: u64,
    quality_reports: u64,
    takeovers: u64,
    reports_filed: u64,
    reports_refused: u64,
    protected_removals_refused: u64,
    waiting_room_full: u64,
}

struct Sim {
    rng: StdRng,
    room: Room,
    now: i64,
    next_id: ParticipantId,
    /// People who may join: index 0 is the meeting's owner.
    people: Vec<Identity>,
    /// The person behind each seat, and the step at which it joined.
    seats: BTreeMap<ParticipantId, (usize, usize)>,
    /// Seats the harness believes are admitted, from the messages it saw.
    admitted: BTreeSet<ParticipantId>,
    /// Seats alive (waiting or admitted).
    alive: BTreeSet<ParticipantId>,
    disconnected: BTreeSet<ParticipantId>,
    /// Removed people, with the step of their removal.
    banned: BTreeMap<usize, usize>,
    /// What the room asked to keep across sessions (`Effect::Banned`).
    persisted_bans: Vec<String>,
    step: usize,
    policy: PolicyView,
    last_chat_seq: u64,
    ended: bool,
    total_ended: u64,
    last_host: Option<ParticipantId>,
    stats: Stats,
    trace: Vec<String>,
}

impl Sim {
    /// After a meeting ends, the same meeting opens again later, with the
    /// bans its earlier room asked to keep: a removal outlives the room.
    fn reopen(&mut self) {
        let mut settings = self.room.settings().clone();
        settings.locked = false;
        let config = RoomConfig {
            settings,
            mute_on_entry: false,
            policy: self.policy.clone(),
            host_key: HOST_KEY.into(),
            has_passcode: self.rng.gen_bool(0.5),
            banned: self.persisted_bans.clone(),
            waiting_per_address: WAITING_PER_ADDRESS,
            invited: vec![],
        };
        self.room = Room::new(config);
        self.ended = false;
        self.admitted.clear();
        self.alive.clear();
        self.disconnected.clear();
        self.last_host = None;
        // A new session of the meeting has a chat of its own.
        self.last_chat_seq = 0;
        self.stats.reopened += 1;
    }

    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let policy = random_policy(&mut rng);
        let settings = RoomSettings {
            locked: false,
            waiting_room: rng.gen_bool(0.7),
            allow_self_unmute: rng.gen_bool(0.7),
            allow_rename: true,
            allow_video: true,
            screen_share: [ScreenShareMode::HostOnly, ScreenShareMode::OneAtATime, ScreenShareMode::Several]
                [rng.gen_range(0..3)],
            chat: ChatMode::Everyone,
            private_chat: true,
            e2ee: false,
            locked_by_policy: vec![],
        };
        let config = RoomConfig {
            settings,
            mute_on_entry: rng.gen_bool(0.5),
            policy: policy.clone(),
            host_key: HOST_KEY.into(),
            has_passcode: rng.gen_bool(0.5),
            banned: vec![],
            waiting_per_address: WAITING_PER_ADDRESS,
            invited: vec![],
        };
        let people = (0..8)
            .map(|i| {
                let user_id = (i == OWNER || rng.gen_bool(0.5)).then(|| format!("user-{i}"));
                Identity {
                    organisation: user_id.as_ref().map(|_| "Acme".to_owned()),
                    external: false,
                    user_id,
                    email: None,
                    ip: Some(format!("198.51.100.{}", i % 4)),
                }
            })
            .collect();
        Self {
            rng,
            room: Room::new(config),
            now: 0,
            next_id: 1,
            people,
            seats: BTreeMap::new(),
            admitted: BTreeSet::new(),
            alive: BTreeSet::new(),
            disconnected: BTreeSet::new(),
            banned: BTreeMap::new(),
            persisted_bans: Vec::new(),
            step: 0,
            policy,
            last_chat_seq: 0,
            ended: false,
            total_ended: 0,
            last_host: None,
            stats: Stats::default(),
            trace: Vec::new(),
        }
    }

    fn standing_of(&self, person: usize) -> Standing {
        match person {
            OWNER => Standing::Owner,
            ADMIN if self.people[ADMIN].user_id.is_some() => Standing::OrgAdmin,
            _ => Standing::Ordinary,
        }
    }

    fn person(&self, seat: ParticipantId) -> Option<usize> {
        self.seats.get(&seat).map(|(person, _)| *person)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.rng.gen_range(0..items.len())])
    }

    /// Any id: alive seats mostly, sometimes a stale or made-up one.
    fn some_id(&mut self) -> ParticipantId {
        let alive: Vec<_> = self.alive.iter().copied().collect();
        if self.rng.gen_bool(0.9) {
            if let Some(id) = self.pick(&alive) {
                return id;
            }
        }
        self.rng.gen_range(0..self.next_id + 2)
    }

    fn random_input(&mut self) -> Input {
        let roll = self.rng.gen_range(0..100);
        let alive: Vec<_> = self.alive.iter().copied().collect();
        if roll < 22 || alive.is_empty() {
            let who = if self.rng.gen_bool(0.15) { 0 } else { self.rng.gen_range(0..self.people.len()) };
            let mut identity = self.people[who].clone();
            // Signed-in people come back from other addresses, and everyone
            // under new names.
            if identity.user_id.is_some() && self.rng.gen_bool(0.2) {
                identity.ip = Some(format!("203.0.113.{}", self.next_id % 250));
            }
            let id = self.next_id;
            self.next_id += 1;
            self.seats.insert(id, (who, self.step));
            let standing = self.standing_of(who);
            let display_name = format!("name-{}", self.rng.gen_range(0..1000));
            return Input::Join { id, display_name, identity, standing, resume_token: format!("resume-{id}") };
        }
        if roll < 25 {
            // Anyone may report: live seats (waiting or admitted), seats long
            // gone, or a token nobody was given.
            let reporter = self.some_id();
            let resume_token =
                if self.rng.gen_bool(0.05) { "made-up".to_owned() } else { format!("resume-{reporter}") };
            let reported = self.some_id();
            return Input::Report { request: reporter, resume_token, reported };
        }
        if roll < 27 {
            let id = self.pick(&alive).unwrap();
            return Input::Disconnected { id };
        }
        if roll < 31 {
            let gone: Vec<_> = self.disconnected.iter().copied().collect();
            if let Some(id) = self.pick(&gone) {
                return Input::Reconnected { id };
            }
        }
        if roll < 40 {
            self.now += self.rng.gen_range(0..120_000);
            return Input::Tick;
        }
        if roll < 42 {
            self.policy = random_policy(&mut self.rng);
            self.stats.policy_changes += 1;
            return Input::PolicyChanged { policy: self.policy.clone() };
        }
        let from = self.pick(&alive).unwrap();
        Input::Message { from, message: self.random_message() }
    }

    fn random_message(&mut self) -> ClientMessage {
        let target = self.some_id();
        let flag = self.rng.gen_bool(0.5);
        match self.rng.gen_range(0..32) {
            0 => ClientMessage::Ping,
            1 => ClientMessage::SetMedia {
                audio_muted: Some(flag),
                video_muted: self.rng.gen_bool(0.5).then_some(!flag),
            },
            2 => ClientMessage::RaiseHand,
            3 => ClientMessage::LowerHand,
            4 => ClientMessage::React { emoji: if flag { "👍".into() } else { "spam".into() } },
            5..=7 => ClientMessage::Chat {
                client_msg_id: format!("m{}", self.rng.gen_range(0..6)),
                text: "hello".into(),
                to: self.rng.gen_bool(0.3).then_some(target),
            },
            8 => ClientMessage::StartScreenShare,
            9 => ClientMessage::StopScreenShare { participant_id: flag.then_some(target) },
            10 => ClientMessage::Rename { participant_id: target, display_name: "renamed".into() },
            11 => ClientMessage::Leave,
            12 | 13 => ClientMessage::Admit { participant_id: target },
            14 => ClientMessage::AdmitAll,
            15 => ClientMessage::Deny { participant_id: target },
            16 | 17 => ClientMessage::Remove { participant_id: target },
            18 => ClientMessage::Mute { participant_id: target },
            19 => ClientMessage::MuteAll,
            20 => ClientMessage::AskToUnmute { participant_id: target },
            21 => ClientMessage::StopVideo { participant_id: target },
            22 => {
                if flag {
                    ClientMessage::Lock
                } else {
                    ClientMessage::Unlock
                }
            }
            23 => ClientMessage::UpdateSettings {
                settings: SettingsChange {
                    waiting_room: Some(self.rng.gen_bool(0.5)),
                    chat: Some([ChatMode::Everyone, ChatMode::HostsOnly, ChatMode::Off][self.rng.gen_range(0..3)]),
                    screen_share: Some(
                        [ScreenShareMode::HostOnly, ScreenShareMode::OneAtATime, ScreenShareMode::Several]
                            [self.rng.gen_range(0..3)],
                    ),
                    private_chat: Some(flag),
                    allow_self_unmute: Some(!flag),
                    ..Default::default()
                },
            },
            24 => ClientMessage::TransferHost { participant_id: target },
            25 => ClientMessage::SetCoHost { participant_id: target, co_host: flag },
            26 => ClientMessage::SuspendAll,
            27 if self.rng.gen_bool(0.2) => ClientMessage::EndForAll,
            28 => ClientMessage::ClaimHost {
                host_key: if self.rng.gen_bool(0.3) { HOST_KEY.into() } else { "000000".into() },
            },
            29 => ClientMessage::Subscribe { tiles: Vec::new() },
            30 => ClientMessage::QualityReport {
                report: conclave_proto::quality::QualityReport {
                    period_ms: 5000,
                    sent_kbps: 800,
                    received_kbps: 1600,
                    // Now and then figures no measurement gives.
                    loss_permille: [0, 40, 150, 1200][self.rng.gen_range(0..4)],
                    rtt_ms: Some(self.rng.gen_range(10..800)),
                    jitter_ms: None,
                    freezes: 0,
                    frozen_ms: 0,
                    sent_height: None,
                    codec: None,
                },
            },
            _ => ClientMessage::AdmitAll,
        }
    }

    fn step(&mut self) -> Result<(), String> {
        self.step += 1;
        let input = self.random_input();
        self.trace.push(format!("t={} {input:?}", self.now));
        if self.trace.len() > 40 {
            self.trace.remove(0);
        }
        let joining = match &input {
            Input::Join { id, .. } => Some(*id),
            _ => None,
        };
        // What the harness knows before the input, to judge its effects.
        let report = match &input {
            Input::Report { request, resume_token, reported } => {
                Some(self.may_report(*request, resume_token, *reported))
            }
            _ => None,
        };
        let removal = match &input {
            Input::Message { from, message: ClientMessage::Remove { participant_id } } => {
                Some((*from, *participant_id))
            }
            _ => None,
        };
        let effects = self.room.handle(self.now, input);
        if let Some(allowed) = report {
            self.judge_report(&effects, allowed)?;
        }
        if let Some((from, target)) = removal {
            self.judge_removal(&effects, from, target)?;
        }
        self.apply(&effects, joining)?;
        self.check()?;
        if self.ended {
            self.total_ended += 1;
            self.reopen();
        }
        Ok(())
    }

    /// Whether the harness, from what it saw, would let this report through.
    fn may_report(&self, reporter: ParticipantId, token: &str, reported: ParticipantId) -> bool {
        let holds_seat = token == format!("resume-{reporter}") && self.alive.contains(&reporter);
        let moderates = self.room.view(reporter).is_some_and(|v| v.role.moderates());
        let waiting = self.alive.contains(&reported) && self.room.presence(reported) == Some(Presence::Waiting);
        let sees = self.admitted.contains(&reported) || (moderates && waiting);
        holds_seat && self.admitted.contains(&reporter) && reporter != reported && sees
    }

    /// Invariant 7: a report reaches nobody, and is accepted only when allowed.
    fn judge_report(&mut self, effects: &[Effect], allowed: bool) -> Result<(), String> {
        if let Some(sent) = effects.iter().find(|e| matches!(e, Effect::Send { .. })) {
            return Err(format!("a report sent something to a participant: {sent:?}"));
        }
        let verdicts: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::ReportChecked { verdict, .. } => Some(verdict),
                _ => None,
            })
            .collect();
        match verdicts.as_slice() {
            [Ok(parties)] if allowed => {
                self.stats.reports_filed += 1;
                let _ = parties;
                Ok(())
            }
            [Ok(parties)] => Err(format!("a report was accepted that should not have been: {parties:?}")),
            [Err(ReportRefusal::Throttled { .. })] => Ok(()),
            [Err(_)] => {
                self.stats.reports_refused += 1;
                Ok(())
            }
            other => Err(format!("a report got {} verdicts", other.len())),
        }
    }

    /// Invariant 8: nobody bans the owner, and only the owner bans an admin.
    fn judge_removal(&mut self, effects: &[Effect], from: ParticipantId, target: ParticipantId) -> Result<(), String> {
        let banned = effects.iter().any(|e| matches!(e, Effect::Banned { .. }));
        let target_person = self.person(target);
        let protected = match target_person {
            Some(OWNER) => true,
            Some(ADMIN) => self.standing_of(ADMIN) == Standing::OrgAdmin && self.person(from) != Some(OWNER),
            _ => false,
        };
        if banned && protected {
            return Err(format!("seat {from} banned seat {target}, who is protected (person {target_person:?})"));
        }
        let moderates = self.room.view(from).is_some_and(|v| v.role.moderates());
        if protected && moderates && self.alive.contains(&target) && from != target {
            self.stats.protected_removals_refused += 1;
        }
        Ok(())
    }

    fn apply(&mut self, effects: &[Effect], joining: Option<ParticipantId>) -> Result<(), String> {
        if let Some(id) = joining {
            self.alive.insert(id);
        }
        for effect in effects {
            match effect {
                Effect::Send { to, message } => self.receive(*to, message)?,
                Effect::Rebind { connection, seat } => {
                    // Invariant 6: only the same account takes a seat over.
                    let account = |seat| self.person(seat).and_then(|p| self.people[p].user_id.clone());
                    if account(*connection).is_none() || account(*connection) != account(*seat) {
                        return Err(format!("join {connection} took over seat {seat} of another person"));
                    }
                    self.stats.takeovers += 1;
                    // The fresh connection now speaks for the existing seat.
                    self.alive.remove(connection);
                    self.disconnected.remove(seat);
                }
                Effect::Disconnect { id } => {
                    self.alive.remove(id);
                    self.admitted.remove(id);
                    self.disconnected.remove(id);
                }
                Effect::Audit { outcome, action, .. } => {
                    if *outcome == conclave_proto::audit::AuditOutcome::Denied {
                        if *action == conclave_proto::audit::AuditAction::MeetingJoin {
                            self.stats.rejoins_refused += 1;
                        } else {
                            self.stats.denied_commands += 1;
                        }
                    }
                }
                Effect::Ended { .. } => self.ended = true,
                Effect::Banned { ban } => self.persisted_bans.extend(ban.keys.iter().cloned()),
                Effect::Media { from, .. } => {
                    if !self.admitted.contains(from) {
                        return Err(format!("a media request from {from}, who is not admitted, reached the SFU"));
                    }
                    self.stats.media_requests += 1;
                }
                Effect::ReportChecked { .. } => {}
                Effect::Quality { participant, report, .. } => {
                    // Invariant 10: only admitted seats' checked reports are kept.
                    if !self.admitted.contains(participant) || report.validate().is_err() {
                        return Err(format!("a quality report from {participant} was kept: {report:?}"));
                    }
                    self.stats.quality_reports += 1;
                }
            }
        }
        Ok(())
    }

    /// True when `seat` is a removed person who came back after the removal.
    fn returned_after_removal(&self, seat: ParticipantId) -> bool {
        self.seats
            .get(&seat)
            .is_some_and(|(person, joined)| self.banned.get(person).is_some_and(|removed| joined > removed))
    }

    /// Checks one message against what the harness knows of its recipient.
    fn receive(&mut self, to: ParticipantId, message: &ServerMessage) -> Result<(), String> {
        let banned = self.returned_after_removal(to);
        match message {
            ServerMessage::Admitted { .. } => {
                if banned {
                    return Err(format!("removed person admitted again as {to}"));
                }
                self.stats.admitted += 1;
                self.admitted.insert(to);
                return Ok(());
            }
            ServerMessage::Waiting { .. } if banned => {
                return Err(format!("removed person back in the waiting room as {to}"))
            }
            ServerMessage::Removed => {
                if let Some((person, _)) = self.seats.get(&to) {
                    self.banned.entry(*person).or_insert(self.step);
                }
                self.stats.removed += 1;
                self.admitted.remove(&to);
            }
            ServerMessage::Refused { reason } => {
                if *reason == RefusalReason::Removed && self.person(to) == Some(OWNER) {
                    return Err(format!("the owner was refused as removed at seat {to}"));
                }
                if *reason == RefusalReason::WaitingRoomFull {
                    self.stats.waiting_room_full += 1;
                }
                self.admitted.remove(&to);
            }
            ServerMessage::Ended { .. } => {
                self.admitted.remove(&to);
            }
            // Invariant 10: levels reach moderators only.
            ServerMessage::ParticipantQuality { .. }
                if self.room.view(to).is_none_or(|v| v.role == Role::Participant) =>
            {
                return Err(format!("{to}, not a moderator, was told a participant's call quality"));
            }
            ServerMessage::Chat { message } => {
                if message.seq < self.last_chat_seq {
                    return Err(format!("chat seq went back from {} to {}", self.last_chat_seq, message.seq));
                }
                if message.seq > self.last_chat_seq {
                    self.stats.chats += 1;
                }
                self.last_chat_seq = message.seq;
            }
            _ => {}
        }
        if message.reveals_meeting() && !self.admitted.contains(&to) {
            return Err(format!("{to} is not admitted but received {message:?}"));
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), String> {
        let room_admitted: BTreeSet<_> = self.room.admitted().collect();
        if room_admitted != self.admitted {
            return Err(format!("room admits {room_admitted:?}, messages said {:?}", self.admitted));
        }
        let media: BTreeSet<_> = self.room.media_rights().map(|(id, _)| id).collect();
        if media != self.admitted {
            return Err(format!("media paths for {media:?}, but only {:?} are admitted", self.admitted));
        }
        let members: Vec<_> = self.room.admitted().chain(self.room.waiting()).collect();
        for id in &members {
            if self.returned_after_removal(*id) {
                return Err(format!("a removed person is back in the room as {id}"));
            }
            if !self.alive.contains(id) {
                return Err(format!("{id} is in the room but its connection was closed"));
            }
        }
        match self.room.phase() {
            Phase::Live => {
                let hosts: Vec<_> =
                    members.iter().filter(|id| self.room.view(**id).unwrap().role == Role::Host).collect();
                if hosts.len() != 1 || self.room.presence(*hosts[0]) != Some(Presence::Admitted) {
                    return Err(format!("live meeting with hosts {hosts:?}"));
                }
                if self.last_host != Some(*hosts[0]) {
                    self.stats.host_changes += u64::from(self.last_host.is_some());
                    self.last_host = Some(*hosts[0]);
                }
            }
            Phase::Ended => {
                if !members.is_empty() {
                    return Err("an ended meeting still has people".into());
                }
            }
            Phase::NotStarted => {
                if !room_admitted.is_empty() {
                    return Err("someone admitted before the meeting started".into());
                }
            }
        }
        // Invariant 9: the waiting room stays within its bounds.
        let waiting: Vec<_> = self.room.waiting().collect();
        if waiting.len() > WAITING_CAPACITY as usize {
            return Err(format!("{} people wait, more than {WAITING_CAPACITY}", waiting.len()));
        }
        let mut guests_per_address = BTreeMap::<String, u32>::new();
        for id in &waiting {
            let identity = self.room.identity(*id).expect("a waiting seat has an identity");
            if identity.user_id.is_none() {
                *guests_per_address.entry(identity.ip.clone().unwrap_or_default()).or_default() += 1;
            }
        }
        if let Some((address, n)) = guests_per_address.iter().find(|(_, n)| **n > WAITING_PER_ADDRESS) {
            return Err(format!("{n} guests from {address} wait, more than {WAITING_PER_ADDRESS}"));
        }
        if !self.policy.is_obeyed_by(self.room.settings()) {
            return Err(format!("settings {:?} override policy {:?}", self.room.settings(), self.policy));
        }
        let sharers: Vec<_> =
            members.iter().filter_map(|id| self.room.view(*id)).filter(|v| v.sharing_screen).collect();
        let share_ok = match self.room.settings().screen_share {
            ScreenShareMode::HostOnly => sharers.iter().all(|v| v.role.moderates()),
            ScreenShareMode::OneAtATime => sharers.len() <= 1,
            ScreenShareMode::Several => true,
        };
        if !share_ok {
            return Err(format!("sharing {sharers:?} breaks {:?}", self.room.settings().screen_share));
        }
        Ok(())
    }
}

fn random_policy(rng: &mut StdRng) -> PolicyView {
    PolicyView {
        waiting_room: rng.gen_bool(0.8),
        waiting_room_locked: rng.gen_bool(0.5),
        chat_allowed: rng.gen_bool(0.7),
        chat_locked: rng.gen_bool(0.4),
        time_limit_minutes: [None, Some(40), Some(15), Some(3)][rng.gen_range(0..4)],
        waiting_capacity: WAITING_CAPACITY,
    }
}
