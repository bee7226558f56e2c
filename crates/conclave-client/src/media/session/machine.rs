//! The headless participant's media session as a sans-IO state machine.
//!
//! In: the time, each datagram received (with its addresses), each server
//! message, and what the application asks (a screen share, a receive
//! limit, pausing). Out: datagrams to send, messages for the server,
//! messages for the application, and when it next wants the time. It owns
//! a str0m `Rtc` through [`DrainedRtc`], so str0m is drained after every
//! single input, and it never reads a clock or touches a socket: a tokio
//! task (`driver.rs`) or a simulated network (the SFU's tests) moves the
//! bytes and the time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use conclave_e2ee::agent::E2eeAgent;
use conclave_e2ee::mls::{MlsError, OpenMlsMember};
use conclave_proto::media::MediaSource;
use conclave_proto::signal::{ClientMessage, ErrorCode, ParticipantId, ServerMessage};
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::{Candidate, Event, Input};

use super::bottleneck::Bottleneck;
use super::negotiation::PendingOffer;
use super::rtc::DrainedRtc;
use super::sending::Outgoing;
use super::MediaOptions;
use crate::media::stats::MediaStats;
use crate::media::synthetic::{self, FrameClock};
use crate::media::turn::{TurnClient, TurnEvent};

/// How often a track still waiting for its first keyframe asks again, as
/// a browser's decoder does when what it got cannot be decoded.
const KEYFRAME_ASK_GAP: Duration = Duration::from_millis(250);

/// How far ahead `poll_timeout` looks when nothing at all is due.
const IDLE: Duration = Duration::from_secs(3600);

/// A datagram for the driver to send from the session's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no ICE candidate for the session's address: {0}")]
    Candidate(#[from] str0m::error::IceError),
    #[error("no MLS device for end-to-end encryption: {0}")]
    E2ee(#[from] MlsError),
}

pub struct MediaSession {
    pub(super) id: ParticipantId,
    pub(super) options: MediaOptions,
    pub(super) clock: FrameClock,
    /// The session's one ICE candidate: its socket, or its relay.
    candidate: Candidate,
    pub(super) rtc: DrainedRtc,
    pub(super) stats: MediaStats,
    /// Sources the participant wants to publish.
    pub(super) wanted: HashSet<MediaSource>,
    /// Sources negotiated (answer accepted).
    pub(super) published: HashMap<MediaSource, Outgoing>,
    pub(super) pending: Option<PendingOffer>,
    /// An offer of ours was answered.
    pub(super) ready: bool,
    bottleneck: Option<Bottleneck>,
    /// The relay everything goes through, when relay-only.
    pub(super) turn: Option<TurnClient>,
    /// The meeting's end-to-end encryption, when on.
    pub(super) e2ee: Option<E2eeAgent<OpenMlsMember>>,
    pub(super) transmits: VecDeque<Datagram>,
    pub(super) signals: VecDeque<ClientMessage>,
    /// Server messages that are the application's (chat, roster, refusals…).
    pub(super) messages: VecDeque<ServerMessage>,
    pub(super) next_audio: Instant,
    pub(super) next_video: Instant,
    pub(super) next_screen: Instant,
    pub(super) started: Instant,
    /// The latest time given, for the deadline of a session with nothing due.
    now: Instant,
    /// Incoming video tracks by mid: when each last asked for a keyframe
    /// while none had come, `None` once one did.
    video_in: HashMap<Mid, Option<Instant>>,
}

impl MediaSession {
    /// Participant `id`'s session, sending from and receiving at `local`.
    /// Its first offer (and its unmute, and its E2EE key when E2EE is on)
    /// wait in [`poll_signal`](Self::poll_signal).
    pub fn new(
        now: Instant,
        id: ParticipantId,
        options: MediaOptions,
        local: SocketAddr,
        clock: FrameClock,
    ) -> Result<Self, SessionError> {
        let candidate = Candidate::host(local, "udp")?;
        Self::build(now, id, options, candidate, None, clock)
    }

    /// A session that reaches the server only through `turn`'s relay,
    /// allocated from the socket at `socket`.
    pub(crate) fn relayed(
        now: Instant,
        id: ParticipantId,
        options: MediaOptions,
        socket: SocketAddr,
        turn: TurnClient,
        clock: FrameClock,
    ) -> Result<Self, SessionError> {
        // The relayed address is our only candidate, and what str0m sends
        // from and receives at.
        let relay = turn.relay.unwrap_or(socket);
        let candidate = Candidate::relayed(relay, socket, "udp")?;
        Self::build(now, id, options, candidate, Some(turn), clock)
    }

    fn build(
        now: Instant,
        id: ParticipantId,
        options: MediaOptions,
        candidate: Candidate,
        turn: Option<TurnClient>,
        clock: FrameClock,
    ) -> Result<Self, SessionError> {
        let e2ee = match options.e2ee {
            true => Some(E2eeAgent::for_device(options.e2ee_device_key.as_deref(), Default::default())?),
            false => None,
        };
        let mut wanted = HashSet::new();
        if options.microphone {
            wanted.insert(MediaSource::Microphone);
        }
        if options.camera {
            wanted.insert(MediaSource::Camera);
        }
        let mut session = Self {
            id,
            options,
            clock,
            rtc: DrainedRtc::new(now, candidate.clone()),
            candidate,
            stats: MediaStats::default(),
            wanted,
            published: HashMap::new(),
            pending: None,
            ready: false,
            bottleneck: None,
            turn,
            e2ee,
            transmits: VecDeque::new(),
            signals: VecDeque::new(),
            messages: VecDeque::new(),
            next_audio: now,
            next_video: now,
            next_screen: now,
            started: now,
            now,
            video_in: HashMap::new(),
        };
        session.start_publishing(now);
        session.settle(now);
        Ok(session)
    }

    pub fn id(&self) -> ParticipantId {
        self.id
    }

    /// What was sent and received so far.
    pub fn stats(&self) -> &MediaStats {
        &self.stats
    }

    // Inputs.

    /// A datagram that arrived at `destination` (the session's socket) from
    /// `source`: unwrapped when relayed, dropped past a receive limit,
    /// otherwise handed to str0m.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, datagram: &[u8]) {
        self.advance(now);
        self.stats.datagrams_received += 1;
        self.stats.rtp_received += u64::from(is_rtp(datagram));
        let (source, destination, datagram) = match self.turn.as_mut() {
            Some(turn) if turn.server == source => {
                if turn.is_control(datagram) {
                    if let Some(TurnEvent::Send(next)) = turn.handle(datagram) {
                        // A lost reply is a lost datagram: TURN retries.
                        self.transmits.push_back(Datagram { destination: source, contents: next });
                    }
                    return;
                }
                match turn.unwrap(datagram) {
                    Some((peer, inner)) => (peer, self.candidate.addr(), inner),
                    None => return,
                }
            }
            // Relay-only: whatever else arrives is not for str0m's address.
            Some(_) => return,
            None => (source, destination, datagram),
        };
        if !self.bottleneck.as_mut().is_none_or(|b| b.admits(datagram.len(), now)) {
            self.stats.dropped_by_limit += 1;
            return;
        }
        let Ok(contents) = datagram.try_into() else { return };
        let receive = Receive { proto: Protocol::Udp, source, destination, contents };
        self.rtc.mutate(now, |rtc| rtc.handle_input(Input::Receive(now, receive)).is_ok());
        self.settle(now);
    }

    /// A message from the server (or the adapter standing for one).
    pub fn handle_signal(&mut self, now: Instant, message: ServerMessage) {
        self.advance(now);
        match message {
            ServerMessage::MediaOffer { sdp, tracks } => self.on_offer(now, &sdp, tracks),
            ServerMessage::MediaAnswer { sdp } => self.on_answer(now, &sdp),
            ServerMessage::PublishLayers { mid, rids } => {
                if let Some(out) = self.published.values_mut().find(|o| o.mid.to_string() == mid) {
                    out.active = Some(rids.iter().cloned().collect());
                    out.force_keyframe = true;
                }
                self.stats.requested_layers.insert(mid, rids);
            }
            // The synthetic camera makes VP8-shaped frames only: the
            // request is kept for tests and the load generator to read.
            ServerMessage::PublishCodec { codec } => self.stats.requested_codec = Some(codec),
            ServerMessage::E2eeCredential { .. }
            | ServerMessage::E2eeCreateGroup
            | ServerMessage::E2eeAddRequest { .. }
            | ServerMessage::E2eeRemoveRequest { .. }
            | ServerMessage::E2eeCommit { .. }
            | ServerMessage::E2eeWelcome { .. }
            | ServerMessage::E2eeRejected { .. }
            | ServerMessage::E2eeApplication { .. } => {
                let replies = self.on_e2ee(message);
                self.signals.extend(replies);
                self.publish_e2ee_state();
            }
            // The server lost us (a network change) or our session failed
            // there: start a fresh one, which it answers.
            ServerMessage::Error { code, .. }
                if code == ErrorCode::MediaLost.as_str() || code == ErrorCode::MediaFailed.as_str() =>
            {
                self.restart(now)
            }
            ServerMessage::Admitted { .. } if !self.ready => {
                // Offers made while waiting were refused; start now.
                self.pending = None;
                self.messages.push_back(message);
                self.start_publishing(now);
            }
            other => self.messages.push_back(other),
        }
        self.settle(now);
    }

    /// The signaling connection closed (removed, meeting ended, left). The
    /// session goes on receiving: a removed participant must see the media
    /// stop by itself.
    pub fn handle_signaling_closed(&mut self) {
        self.stats.signaling_closed = true;
    }

    /// The time has come for what [`poll_timeout`](Self::poll_timeout) said:
    /// str0m's timers, and the frames due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.rtc.handle_timeout(now);
        self.send_media_due(now);
        self.settle(now);
    }

    /// Starts or stops sharing the screen: asks the room, then offers it.
    pub fn share_screen(&mut self, now: Instant, on: bool) {
        self.advance(now);
        if on {
            self.signals.push_back(ClientMessage::StartScreenShare);
            self.wanted.insert(MediaSource::Screen);
        } else {
            self.signals.push_back(ClientMessage::StopScreenShare { participant_id: None });
            self.wanted.remove(&MediaSource::Screen);
        }
        self.offer_changes(now);
        self.settle(now);
    }

    /// Limits the bandwidth received at (`None`: no limit), dropping what
    /// exceeds it, as a congested last mile would.
    pub fn limit_receive(&mut self, now: Instant, kbps: Option<u64>) {
        self.advance(now);
        self.bottleneck = kbps.map(|kbps| Bottleneck::new(kbps, now));
        self.stats.dropped_by_limit = 0;
    }

    /// Sends frames on what is negotiated, or pauses them.
    pub fn set_sending(&mut self, on: bool) {
        self.options.paused = !on;
    }

    /// The level sent in the audio-level extension: -127 silent, 0 loudest.
    pub fn set_audio_level(&mut self, level: i8) {
        self.options.audio_level = level;
    }

    // Outputs.

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.transmits.pop_front()
    }

    /// The next message for the server, in order.
    pub fn poll_signal(&mut self) -> Option<ClientMessage> {
        self.signals.pop_front()
    }

    /// The next server message for the application: everything that is not
    /// the media negotiation or the end-to-end encryption's.
    pub fn poll_message(&mut self) -> Option<ServerMessage> {
        self.messages.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due: str0m's
    /// deadline, or the next frame to send.
    pub fn poll_timeout(&self) -> Instant {
        let media = self.next_media_at().unwrap_or(self.now + IDLE);
        self.rtc.deadline().min(media)
    }

    // Internals.

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// The first offer, once the session starts or the participant is
    /// admitted: what it publishes, its unmute, its E2EE key.
    fn start_publishing(&mut self, now: Instant) {
        self.offer_changes(now);
        self.signals.push_back(self.unmute());
        if let Some(start) = self.e2ee_start() {
            self.signals.push_back(start);
        }
    }

    /// A fresh str0m session on the same address, negotiated from scratch.
    fn restart(&mut self, now: Instant) {
        self.settle(now);
        self.rtc = DrainedRtc::new(now, self.candidate.clone());
        self.published.clear();
        self.pending = None;
        self.ready = false;
        self.stats.connected = false;
        self.offer_changes(now);
    }

    /// Takes what str0m's drains left: handles its events (which may make
    /// further changes, each drained in turn) and queues its datagrams.
    fn settle(&mut self, now: Instant) {
        while let Some(event) = self.rtc.poll_event() {
            self.on_event(event, now);
        }
        while let Some(transmit) = self.rtc.poll_transmit() {
            self.route(transmit);
        }
    }

    /// A datagram str0m sends: straight to its destination, or wrapped for
    /// the relay when relay-only.
    fn route(&mut self, transmit: Transmit) {
        match &self.turn {
            None => {
                self.stats.datagrams_sent += 1;
                self.transmits
                    .push_back(Datagram { destination: transmit.destination, contents: transmit.contents.into() });
            }
            Some(turn) => {
                // Until the channel is bound, str0m's retries cover the loss.
                if let Some(wrapped) = turn.wrap(&transmit.contents).filter(|_| turn.peer == Some(transmit.destination))
                {
                    self.transmits.push_back(Datagram { destination: turn.server, contents: wrapped });
                }
            }
        }
    }

    fn on_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Connected => self.stats.connected = true,
            Event::MediaData(data) => {
                let plain = match self.e2ee.as_mut() {
                    Some(e2ee) => match e2ee.session_mut().decrypt_frame(&data.data, b"") {
                        Ok(plain) => plain,
                        Err(_) => {
                            self.stats.undecryptable += 1;
                            return;
                        }
                    },
                    None => data.data.to_vec(),
                };
                let Some(header) = synthetic::parse(&plain) else {
                    self.stats.unreadable += 1;
                    return;
                };
                if header.source != MediaSource::Microphone {
                    self.ask_for_keyframe_until_one_came(data.mid, header.keyframe, now);
                }
                self.stats.record(&data.mid.to_string(), &header, data.data.len(), now, self.clock.unix_us(now));
            }
            Event::KeyframeRequest(request) => {
                self.stats.keyframe_requests += 1;
                if let Some(out) = self.published.values_mut().find(|o| o.mid == request.mid) {
                    out.force_keyframe = true;
                }
            }
            _ => {}
        }
    }

    /// A video can only be shown from a keyframe: a track whose first
    /// frames are not one (its keyframe was lost, or came before the
    /// track was set up) asks the server for one, like a browser's decoder.
    fn ask_for_keyframe_until_one_came(&mut self, mid: Mid, keyframe: bool, now: Instant) {
        if keyframe {
            self.video_in.insert(mid, None);
            return;
        }
        match self.video_in.get(&mid) {
            Some(None) => return,
            Some(Some(asked)) if now.saturating_duration_since(*asked) < KEYFRAME_ASK_GAP => return,
            _ => {}
        }
        self.video_in.insert(mid, Some(now));
        self.rtc.mutate(now, |rtc| {
            if let Some(mut writer) = rtc.writer(mid) {
                // Cannot fail: the track just delivered a frame, so it receives.
                let _ = writer.request_keyframe(None, KeyframeRequestKind::Pli);
            }
        });
    }

    /// Meetings may start everyone muted; a participant that publishes
    /// unmutes, as a person would (the room may refuse).
    fn unmute(&self) -> ClientMessage {
        ClientMessage::SetMedia { audio_muted: Some(!self.options.microphone), video_muted: Some(!self.options.camera) }
    }
}

/// An SRTP packet rather than SRTCP, STUN, DTLS or TURN (RFC 7983's first
/// byte, then RFC 5761's payload types: RTCP's are 192–223).
fn is_rtp(datagram: &[u8]) -> bool {
    matches!(datagram, [128..=191, second, ..] if !(64..=95).contains(&(second & 0x7f)))
}
