//! The SFU as a state machine: commands from meetings, datagrams and time
//! in; datagrams to send and events for meetings out. It owns one `Rtc`
//! per admitted participant and never does IO itself.

mod allocation;
mod forwarding;
mod negotiation;

use forwarding::request_keyframe;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use conclave_proto::media::{MediaSource, PublishedTrack, Tile, VideoCodec, MAX_TILES};
use conclave_proto::quality::SfuView;
use conclave_proto::signal::{ErrorCode, ParticipantId, ServerMessage};
use str0m::bwe::{Bitrate, BweKind};
use str0m::config::DtlsCert;
use str0m::media::{Direction, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive, TcpType, Transmit};
use str0m::rtp::RtpPacket;
use str0m::{
    Candidate, Event as RtcEvent, IceConnectionState, IceCreds, Input, Output, PacerReason, Reason, Rtc, RtcConfig,
};

use crate::demux;
use crate::layers;
use crate::peer::{Peer, Published, Rights};
use crate::repair::UplinkRepair;
use crate::speaker::SpeakerDetector;
use crate::svc::SvcMeters;
use crate::MeetingKey;

/// Least time between keyframe requests for one layer: a keyframe is big,
/// and every subscriber that lost a packet would otherwise ask at once.
const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(300);
/// How often speakers and simulcast layers are re-evaluated.
const HOUSEKEEPING: Duration = Duration::from_millis(200);
const LAYER_EVERY: Duration = Duration::from_millis(500);
/// Silence from a session after which its bandwidth estimate starts over.
const SILENCE_RESETS_ESTIMATE: Duration = Duration::from_secs(2);
/// How often meetings hear the SFU's view of each session (as often as
/// apps report theirs).
const QUALITY_EVERY: Duration = Duration::from_secs(5);
/// After a step down, a video stays down at least this long.
const UPGRADE_HOLD: Duration = Duration::from_secs(8);
/// Share of the bandwidth estimate given to video; the rest is for audio,
/// RTCP and the estimate's own error.
const VIDEO_SHARE: f64 = 0.85;
/// Bandwidth set aside for the audio a subscriber receives.
const AUDIO_ALLOWANCE_BPS: u64 = 100_000;

#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The address peers reach the server at (its ICE host candidate).
    pub advertised: SocketAddr,
    /// Bandwidth estimation's starting point for each subscriber.
    pub initial_bitrate_kbps: u64,
    /// Where peers reach the server over TCP (ICE over TCP, RFC 6544):
    /// offered as a passive candidate beside the UDP one when set.
    pub tcp: Option<SocketAddr>,
    /// Records the payload of the first frames forwarded, exactly as the
    /// SFU sees them: for tests that prove an end-to-end encrypted meeting
    /// is opaque to the server. Absent from production builds.
    #[cfg(feature = "test-hooks")]
    tap: Option<FrameTap>,
}

impl SfuConfig {
    pub fn new(advertised: SocketAddr, initial_bitrate_kbps: u64) -> Self {
        Self {
            advertised,
            initial_bitrate_kbps,
            tcp: None,
            #[cfg(feature = "test-hooks")]
            tap: None,
        }
    }

    /// Offers ICE over TCP at `advertised` as well.
    pub fn with_tcp(mut self, advertised: SocketAddr) -> Self {
        self.tcp = Some(advertised);
        self
    }

    /// Records forwarded frames into `tap` (the first [`TAP_FRAMES`]).
    #[cfg(feature = "test-hooks")]
    pub fn with_tap(mut self, tap: FrameTap) -> Self {
        self.tap = Some(tap);
        self
    }
}

/// What a tap has recorded (see [`SfuConfig::with_tap`]).
#[cfg(feature = "test-hooks")]
pub type FrameTap = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// A timeout to handle now: one already due, or the pacer's request for
/// the next microsecond after a packet, which releases the next.
fn is_due(at: Instant, now: Instant, reason: Reason) -> bool {
    at <= now || reason == Reason::Pacer(PacerReason::Immediate)
}

/// Due timeouts one peer handles in a row before the rest wait for the
/// next wake-up, so one session cannot hold the others up.
const DUE_TIMEOUTS_PER_DRIVE: usize = 1024;

/// Frames a tap keeps at most.
#[cfg(feature = "test-hooks")]
const TAP_FRAMES: usize = 10_000;

/// What a meeting asks of the media plane.
#[derive(Debug, Clone)]
pub enum Command {
    /// The participant is admitted: it may have a media session.
    Admit {
        meeting: MeetingKey,
        participant: ParticipantId,
        rights: Rights,
    },
    Rights {
        meeting: MeetingKey,
        participant: ParticipantId,
        rights: Rights,
    },
    /// Gone (left, removed, meeting ended): tear everything down now.
    Leave {
        meeting: MeetingKey,
        participant: ParticipantId,
    },
    Offer {
        meeting: MeetingKey,
        participant: ParticipantId,
        sdp: String,
        tracks: Vec<PublishedTrack>,
    },
    Answer {
        meeting: MeetingKey,
        participant: ParticipantId,
        sdp: String,
    },
    Subscribe {
        meeting: MeetingKey,
        participant: ParticipantId,
        tiles: Vec<Tile>,
    },
    /// Fails the participant's session as an error inside it would: the
    /// recovery tests' way in.
    #[cfg(feature = "test-hooks")]
    Fail {
        meeting: MeetingKey,
        participant: ParticipantId,
    },
}

/// What the media plane tells meetings.
#[derive(Debug, Clone, PartialEq)]
pub enum SfuEvent {
    /// A message for one participant's signaling connection.
    Signal {
        meeting: MeetingKey,
        participant: ParticipantId,
        message: ServerMessage,
    },
    ActiveSpeaker {
        meeting: MeetingKey,
        participant: Option<ParticipantId>,
    },
    /// What the SFU sees of a participant's session, every few seconds.
    Quality {
        meeting: MeetingKey,
        participant: ParticipantId,
        view: SfuView,
    },
}

/// Counters for metrics and load tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct SfuStats {
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    /// RTP packets written to subscribers.
    pub packets_forwarded: u64,
    /// Datagrams from addresses no admitted participant holds.
    pub datagrams_unrouted: u64,
    /// RTP packets refused because the host muted or stopped their source.
    pub packets_blocked: u64,
    /// Sessions closed because their `Rtc` failed.
    pub peer_faults: u64,
    /// Sessions restarted because ICE lost the participant.
    pub sessions_lost: u64,
    /// Sessions replaced because the participant opened a new peer connection.
    pub sessions_replaced: u64,
    /// Bandwidth estimates started over after a session fell silent (an outage).
    pub estimates_reset: u64,
    /// Keyframes asked of publishers because a packet of theirs never
    /// arrived, even after retransmission (`crate::holes`).
    pub keyframes_for_lost_packets: u64,
    /// Of those packets, the ones that came after all: the judgement came
    /// too soon.
    pub packets_judged_lost_too_soon: u64,
    /// Repairs from publishers written twice to a subscriber, as they came
    /// a round trip late (`forwarding::SEND_REPAIRS_TWICE_AFTER`).
    pub late_repairs_sent_twice: u64,
    pub peers: u64,
}

#[derive(Default)]
struct MeetingMedia {
    peers: Vec<PeerKey>,
    speaker: SpeakerDetector,
    /// The codec its video is sent in: one everyone decodes (`codecs.rs`).
    video_codec: VideoCodec,
}

type PeerKey = u64;

/// Where packets come from: the protocol and the remote address.
pub(crate) type Route = (Protocol, SocketAddr);

/// Peers to poll, each once however often it was touched.
#[derive(Default)]
struct Dirty {
    queue: VecDeque<PeerKey>,
    queued: HashSet<PeerKey>,
}

impl Dirty {
    fn push(&mut self, key: PeerKey) {
        if self.queued.insert(key) {
            self.queue.push_back(key);
        }
    }

    fn pop(&mut self) -> Option<PeerKey> {
        while let Some(key) = self.queue.pop_front() {
            if self.queued.remove(&key) {
                return Some(key);
            }
        }
        None
    }

    /// The peer is being driven now: it needs no later turn.
    fn remove(&mut self, key: PeerKey) {
        self.queued.remove(&key);
    }

    fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }
}

/// An RTP packet a publisher sent, and which of its tracks and layers it is.
struct Incoming {
    mid: Mid,
    rid: Option<Rid>,
    packet: RtpPacket,
}

/// What one peer's output means for the others.
enum Propagated {
    /// Boxed: packets are the common case, and a queue slot stays small.
    Rtp(PeerKey, Box<Incoming>),
    Keyframe {
        publisher: ParticipantId,
        meeting: MeetingKey,
        mid: Mid,
        rid: Option<Rid>,
    },
    Published(PeerKey, Mid),
    /// ICE lost the participant (its app vanished or its network changed).
    Lost(PeerKey),
}

/// Addresses one session is reached at, at most: a host and a relayed
/// candidate, and a network change or two.
const ADDRESSES_PER_SESSION: usize = 4;

/// How every participant's session is set up: ICE-lite on the server's one
/// port, the shared DTLS configuration (`conclave-dtls`), and RTP mode, so packets are forwarded as they came (renumbered
/// per subscriber) instead of being reassembled into frames and cut up
/// again for everyone. Opus, and the video codecs whose payload headers
/// `video` reads to switch layers at keyframes: VP8 first (the browser's
/// end-to-end encryption leaves exactly its payload header in the clear),
/// then VP9, H.264 (room systems and hardware encoders) and AV1.
pub(crate) fn session_config() -> RtcConfig {
    Rtc::builder()
        .set_ice_lite(true)
        .set_crypto_provider(conclave_dtls::crypto_provider())
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_vp9(true)
        .enable_h264(true)
        .enable_av1(true)
}

pub struct Sfu {
    config: SfuConfig,
    cert: DtlsCert,
    peers: HashMap<PeerKey, Peer>,
    next_key: PeerKey,
    by_participant: HashMap<(MeetingKey, ParticipantId), PeerKey>,
    by_ufrag: HashMap<String, PeerKey>,
    /// Where each session's packets come from: a UDP address, or a TCP
    /// connection's remote address (ICE over TCP).
    by_addr: HashMap<Route, PeerKey>,
    meetings: HashMap<MeetingKey, MeetingMedia>,
    timers: BinaryHeap<Reverse<(Instant, PeerKey)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SfuEvent>,
    dirty: Dirty,
    /// The time of the latest input, for work left to the next poll.
    now: Instant,
    next_housekeeping: Instant,
    next_layers: Instant,
    next_quality: Instant,
    pub stats: SfuStats,
}

impl Sfu {
    pub fn new(config: SfuConfig, now: Instant) -> Self {
        // One certificate for every session: generating a key per peer
        // would cost milliseconds on each join.
        let cert = conclave_dtls::crypto_provider()
            .dtls_provider
            .generate_certificate()
            .expect("the crypto provider makes DTLS certificates");
        Self {
            config,
            cert,
            peers: HashMap::new(),
            next_key: 1,
            by_participant: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            meetings: HashMap::new(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            dirty: Dirty::default(),
            now,
            next_housekeeping: now + HOUSEKEEPING,
            next_layers: now + LAYER_EVERY,
            next_quality: now + QUALITY_EVERY,
            stats: SfuStats::default(),
        }
    }

    /// The next datagram to send. Sessions that datagrams touched are
    /// polled here, once, after a whole batch of input: a subscriber that
    /// got several packets in one batch sends them in one turn.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.transmits.is_empty() {
            self.flush(self.now);
        }
        let t = self.transmits.pop_front();
        self.stats.datagrams_out += u64::from(t.is_some());
        t
    }

    pub fn poll_event(&mut self) -> Option<SfuEvent> {
        if self.events.is_empty() {
            self.flush(self.now);
        }
        self.events.pop_front()
    }

    /// When `handle_timeout` must next be called: at once while sessions
    /// wait to be polled.
    pub fn next_deadline(&self) -> Instant {
        if !self.dirty.is_empty() {
            return self.now;
        }
        let timer = self.timers.peek().map(|Reverse((t, _))| *t);
        timer.map_or(self.next_housekeeping, |t| t.min(self.next_housekeeping))
    }

    pub fn has_participant(&self, meeting: &str, participant: ParticipantId) -> bool {
        self.by_participant.contains_key(&(MeetingKey::from(meeting), participant))
    }

    /// Routes datagrams from `addr` to a participant's session as if its
    /// ICE check had arrived from there: lets fuzzing reach the session's
    /// parsers without guessing the random ICE credentials.
    #[cfg(feature = "test-hooks")]
    pub fn bind_address_for_fuzzing(&mut self, meeting: &str, participant: ParticipantId, addr: SocketAddr) {
        if let Some(&key) = self.by_participant.get(&(MeetingKey::from(meeting), participant)) {
            self.by_addr.insert((Protocol::Udp, addr), key);
            self.peers.get_mut(&key).expect("indexed peer").addrs.push((Protocol::Udp, addr));
        }
    }

    // Commands.

    pub fn handle_command(&mut self, now: Instant, command: Command) {
        self.now = self.now.max(now);
        match command {
            Command::Admit { meeting, participant, rights } => self.admit(now, meeting, participant, rights),
            Command::Rights { meeting, participant, rights } => self.set_rights(now, &meeting, participant, rights),
            Command::Leave { meeting, participant } => self.leave(&meeting, participant),
            Command::Offer { meeting, participant, sdp, tracks } => self.offer(&meeting, participant, &sdp, tracks),
            Command::Answer { meeting, participant, sdp } => self.answer(&meeting, participant, &sdp),
            Command::Subscribe { meeting, participant, mut tiles } => {
                if let Some(&key) = self.by_participant.get(&(meeting.clone(), participant)) {
                    tiles.truncate(MAX_TILES);
                    self.peers.get_mut(&key).expect("indexed peer").tiles = Some(tiles);
                    self.allocate_layers(now, key);
                    self.announce_layers(&meeting);
                }
            }
            #[cfg(feature = "test-hooks")]
            Command::Fail { meeting, participant } => {
                if let Some(&key) = self.by_participant.get(&(meeting, participant)) {
                    self.fault(key, "a test's request");
                }
            }
        }
        self.flush(now);
    }

    fn admit(&mut self, now: Instant, meeting: MeetingKey, participant: ParticipantId, rights: Rights) {
        if self.by_participant.contains_key(&(meeting.clone(), participant)) {
            return self.set_rights(now, &meeting, participant, rights);
        }
        let creds = IceCreds::new();
        let mut rtc = session_config()
            .set_local_ice_credentials(creds.clone())
            .set_dtls_cert(self.cert.clone())
            .enable_bwe(Some(Bitrate::kbps(self.config.initial_bitrate_kbps)))
            .build(now);
        let candidate = Candidate::host(self.config.advertised, "udp").expect("a host candidate for the UDP port");
        rtc.add_local_candidate(candidate);
        if let Some(tcp) = self.config.tcp {
            // ICE over TCP (RFC 6544), for networks that block UDP; ranked
            // below UDP, so only they use it.
            let candidate = Candidate::builder()
                .tcp()
                .host(tcp)
                .tcptype(TcpType::Passive)
                .build()
                .expect("a passive TCP host candidate");
            rtc.add_local_candidate(candidate);
        }
        let key = self.next_key;
        self.next_key += 1;
        let mut peer = Peer {
            meeting: meeting.clone(),
            participant,
            rtc,
            ufrag: creds.ufrag.clone(),
            rights,
            published: HashMap::new(),
            declared: HashMap::new(),
            forwards: Vec::new(),
            pending: None,
            offered_at: None,
            ready: false,
            tiles: None,
            estimate: None,
            scheduled: None,
            unsent: false,
            addrs: Vec::new(),
            remote_fingerprint: None,
            negotiated_mids: Vec::new(),
            forwarded_bytes: 0,
            last_heard: None,
            decodes: None,
            told_codec: None,
            uplink: UplinkRepair::default(),
        };
        let room = self.meetings.entry(meeting.clone()).or_default();
        for other in &room.peers {
            let other = &self.peers[other];
            for (mid, published) in &other.published {
                peer.add_forward(other.participant, *mid, published);
            }
        }
        room.peers.push(key);
        self.by_ufrag.insert(creds.ufrag, key);
        self.by_participant.insert((meeting, participant), key);
        self.peers.insert(key, peer);
        self.stats.peers = self.peers.len() as u64;
        self.dirty.push(key);
        tracing::debug!(participant, "media session admitted");
    }

    fn set_rights(&mut self, now: Instant, meeting: &MeetingKey, participant: ParticipantId, rights: Rights) {
        let Some(&key) = self.by_participant.get(&(meeting.clone(), participant)) else { return };
        let peer = self.peers.get_mut(&key).expect("indexed peer");
        let before = peer.rights;
        peer.rights = rights;
        // Video allowed again: subscribers need a keyframe to start from.
        let resumed: Vec<Mid> = peer
            .published
            .iter()
            .filter(|(_, p)| rights.allows(p.source) && !before.allows(p.source) && p.kind == MediaKind::Video)
            .map(|(mid, _)| *mid)
            .collect();
        for mid in resumed {
            let rids: Vec<Option<Rid>> = {
                let p = &peer.published[&mid];
                if p.rids.is_empty() {
                    vec![None]
                } else {
                    p.rids.iter().copied().map(Some).collect()
                }
            };
            for rid in rids {
                request_keyframe(peer, mid, rid, now);
            }
        }
        self.dirty.push(key);
    }

    fn leave(&mut self, meeting: &MeetingKey, participant: ParticipantId) {
        let Some(key) = self.by_participant.remove(&(meeting.clone(), participant)) else { return };
        self.remove_peer(key);
    }

    fn remove_peer(&mut self, key: PeerKey) {
        let Some(mut peer) = self.peers.remove(&key) else { return };
        peer.rtc.disconnect();
        self.by_participant.remove(&(peer.meeting.clone(), peer.participant));
        self.by_ufrag.remove(&peer.ufrag);
        // Only the addresses still routed to this session: another may
        // have taken one over since (a port reused after this one's
        // socket closed).
        for addr in &peer.addrs {
            if self.by_addr.get(addr) == Some(&key) {
                self.by_addr.remove(addr);
            }
        }
        self.stats.peers = self.peers.len() as u64;
        let Some(room) = self.meetings.get_mut(&peer.meeting) else { return };
        room.peers.retain(|k| *k != key);
        let before = room.speaker.current();
        room.speaker.forget(peer.participant);
        if room.speaker.current() != before {
            self.events.push_back(SfuEvent::ActiveSpeaker { meeting: peer.meeting.clone(), participant: None });
        }
        let others = room.peers.clone();
        if others.is_empty() {
            self.meetings.remove(&peer.meeting);
        }
        for other in others {
            if let Some(o) = self.peers.get_mut(&other) {
                o.drop_forwards_from(peer.participant, None);
                self.dirty.push(other);
            }
        }
        // Whoever decoded least may have left.
        self.choose_codec(&peer.meeting);
        tracing::debug!(participant = peer.participant, "media session closed");
    }

    /// The participant's connection went silent: its session is replaced
    /// by a fresh one (nothing is sent into the void meanwhile, not even
    /// bandwidth probes) and its app is told to offer again.
    fn restart_session(&mut self, key: PeerKey, now: Instant) {
        let Some(peer) = self.peers.get(&key) else { return };
        let (meeting, participant, rights) = (peer.meeting.clone(), peer.participant, peer.rights);
        tracing::info!(participant, "media connection lost; waiting for a new offer");
        self.stats.sessions_lost += 1;
        self.remove_peer(key);
        self.admit(now, meeting.clone(), participant, rights);
        let message =
            ServerMessage::error(ErrorCode::MediaLost, "the media connection was lost; send a new media_offer", None);
        self.events.push_back(SfuEvent::Signal { meeting, participant, message });
    }

    /// Replaces a session its participant closed with a fresh one, quietly.
    fn replace_session(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get(&key) else { return };
        let (meeting, participant, rights) = (peer.meeting.clone(), peer.participant, peer.rights);
        tracing::debug!(participant, "media session closed by the participant; a fresh one waits");
        self.remove_peer(key);
        self.admit(self.now, meeting, participant, rights);
    }

    /// A peer's `Rtc` failed or panicked: that session alone is replaced
    /// by a fresh one, with the same rights, and the participant is told
    /// to offer again. Its seat keeps a session at all times, so the next
    /// offer is answered.
    fn fault(&mut self, key: PeerKey, during: &str) {
        self.stats.peer_faults += 1;
        let Some(peer) = self.peers.get(&key) else { return };
        let (meeting, participant, rights) = (peer.meeting.clone(), peer.participant, peer.rights);
        tracing::warn!(participant, during, "media session failed; replacing it");
        self.remove_peer(key);
        self.admit(self.now, meeting.clone(), participant, rights);
        let message = ServerMessage::error(ErrorCode::MediaFailed, "the media session failed; offer again", None);
        self.events.push_back(SfuEvent::Signal { meeting, participant, message });
    }

    // Network and time.

    /// The address of ours a packet of `proto` arrived at.
    fn local_address(&self, proto: Protocol) -> SocketAddr {
        match (proto, self.config.tcp) {
            (Protocol::Tcp, Some(tcp)) => tcp,
            _ => self.config.advertised,
        }
    }

    /// One datagram from the shared UDP port.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, bytes: &[u8]) {
        self.handle_packet(now, Protocol::Udp, source, bytes);
    }

    /// One packet from the UDP port or, with `Protocol::Tcp`, one RFC 4571
    /// frame from a TCP connection to the media port (`source` is the
    /// connection's remote address). The session it belongs to is polled
    /// at once (str0m holds one received packet at a time); what that makes
    /// other sessions send waits for the next poll.
    pub fn handle_packet(&mut self, now: Instant, proto: Protocol, source: SocketAddr, bytes: &[u8]) {
        self.now = self.now.max(now);
        self.stats.datagrams_in += 1;
        // An ICE check names its session (the ufrag) wherever it comes
        // from; everything else is routed by the address checks came from.
        let stun = demux::is_stun(bytes);
        let route = (proto, source);
        let by_ufrag = || demux::stun_local_ufrag(bytes).and_then(|ufrag| self.by_ufrag.get(ufrag));
        let Some(&key) = stun.then(by_ufrag).flatten().or_else(|| self.by_addr.get(&route)) else {
            self.stats.datagrams_unrouted += 1;
            return;
        };
        let Ok(contents) = bytes.try_into() else { return };
        let input = Input::Receive(now, Receive { proto, source, destination: self.local_address(proto), contents });
        let Some(peer) = self.peers.get_mut(&key) else { return };
        if !peer.rtc.accepts(&input) {
            self.stats.datagrams_unrouted += 1;
            return;
        }
        match catch_unwind(AssertUnwindSafe(|| peer.rtc.handle_input(input))) {
            Ok(Ok(())) => {
                if peer.last_heard.is_some_and(|t| now.saturating_duration_since(t) >= SILENCE_RESETS_ESTIMATE) {
                    // Back after an outage. What the estimator learned while
                    // every packet was lost says nothing of the path now, and
                    // climbing back from its floor takes tens of seconds
                    // with the video held in the pacer meanwhile: start
                    // again from the initial estimate.
                    peer.rtc.bwe().reset(Bitrate::kbps(self.config.initial_bitrate_kbps));
                    peer.estimate = None;
                    self.stats.estimates_reset += 1;
                }
                peer.last_heard = Some(now);
                // A check (its integrity verified by `accepts`) maps where it
                // came from to this session, also when the address was
                // another's (a port reused) or the peer's network changed;
                // at most a few per session, the oldest forgotten first.
                if stun && self.by_addr.insert(route, key) != Some(key) && !peer.addrs.contains(&route) {
                    if peer.addrs.len() == ADDRESSES_PER_SESSION {
                        let oldest = peer.addrs.remove(0);
                        if self.by_addr.get(&oldest) == Some(&key) {
                            self.by_addr.remove(&oldest);
                        }
                    }
                    peer.addrs.push(route);
                }
            }
            // One bad packet is that packet's problem, not the session's.
            Ok(Err(err)) => tracing::debug!(participant = peer.participant, error = %err, "datagram refused"),
            Err(_) => return self.fault(key, "handling a datagram"),
        }
        self.dirty.remove(key);
        for p in self.drive(key, now) {
            self.propagate(p, now);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.peers.get_mut(&key) else { continue };
            if peer.scheduled != Some(at) {
                continue; // Superseded by an earlier entry.
            }
            peer.scheduled = None;
            match catch_unwind(AssertUnwindSafe(|| peer.rtc.handle_input(Input::Timeout(now)))) {
                Ok(_) => self.dirty.push(key),
                Err(_) => self.fault(key, "a timeout"),
            }
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING;
            // A peer whose offer waits too long is driven, to offer again.
            let overdue = self.peers.iter().filter(|(_, p)| {
                p.pending.is_some()
                    && p.offered_at.is_some_and(|at| now.saturating_duration_since(at) >= negotiation::OFFER_PATIENCE)
            });
            let overdue: Vec<PeerKey> = overdue.map(|(k, _)| *k).collect();
            for key in overdue {
                self.dirty.push(key);
            }
            self.evaluate_speakers(now);
            self.restart_broken_layers(now);
            if now >= self.next_layers {
                self.next_layers = now + LAYER_EVERY;
                self.allocate_all_layers(now);
            }
            if now >= self.next_quality {
                let period = now.saturating_duration_since(self.next_quality - QUALITY_EVERY);
                self.next_quality = now + QUALITY_EVERY;
                self.report_quality(period);
            }
        }
        self.flush(now);
    }

    /// Tells each meeting what the SFU sees of its participants' sessions
    /// over the last `period`, for the call-quality graphs.
    fn report_quality(&mut self, period: Duration) {
        let millis = period.as_millis().max(1) as u64;
        for peer in self.peers.values_mut() {
            let forwarded_kbps = (std::mem::take(&mut peer.forwarded_bytes) * 8 / millis) as u32;
            let view = SfuView { estimate_kbps: peer.estimate.map(|bps| (bps / 1000) as u32), forwarded_kbps };
            self.events.push_back(SfuEvent::Quality {
                meeting: peer.meeting.clone(),
                participant: peer.participant,
                view,
            });
        }
    }

    /// Polls every peer touched since the last flush until it is idle,
    /// carrying what each produced to the others.
    fn flush(&mut self, now: Instant) {
        while let Some(key) = self.dirty.pop() {
            let propagated = self.drive(key, now);
            for p in propagated {
                self.propagate(p, now);
            }
        }
    }

    /// Polls one peer's `Rtc` until it waits for time.
    ///
    /// str0m releases one queued packet per timeout it handles, so a
    /// timeout already due is handled here at once: a subscriber's share of
    /// a wake-up goes out in that wake-up, not one packet per turn of the
    /// driver.
    fn drive(&mut self, key: PeerKey, now: Instant) -> Vec<Propagated> {
        let mut out = Vec::new();
        let mut due_timeouts = 0;
        let Some(peer) = self.peers.get_mut(&key) else { return out };
        if std::mem::take(&mut peer.unsent) {
            // Packets were written since it last ran: its pacer must see
            // them before it can release one.
            if catch_unwind(AssertUnwindSafe(|| peer.rtc.handle_input(Input::Timeout(now)))).is_err() {
                self.fault(key, "a timeout");
                return out;
            }
        }
        if peer.withdraw_unanswered_offer(now, negotiation::OFFER_PATIENCE) {
            tracing::info!(participant = peer.participant, "an offer went unanswered; offering again");
        }
        if let Some(sdp) = peer.offer_changes() {
            peer.offered_at = Some(now);
            #[cfg(feature = "test-hooks")]
            crate::sdp_grammar::assert_offer_is_valid(&sdp);
            let message = ServerMessage::MediaOffer { sdp, tracks: peer.forwarded_tracks() };
            self.events.push_back(SfuEvent::Signal {
                meeting: peer.meeting.clone(),
                participant: peer.participant,
                message,
            });
        }
        loop {
            let peer = self.peers.get_mut(&key).expect("driven peer exists");
            let output = match catch_unwind(AssertUnwindSafe(|| peer.rtc.poll_output())) {
                Ok(Ok(output)) => output,
                Ok(Err(err)) => {
                    tracing::debug!(participant = peer.participant, error = %err, "media session error");
                    self.fault(key, "polling");
                    return out;
                }
                Err(_) => {
                    self.fault(key, "polling");
                    return out;
                }
            };
            match output {
                Output::Transmit(t) => self.transmits.push_back(t),
                Output::Timeout(at)
                    if is_due(at, now, peer.rtc.last_timeout_reason()) && due_timeouts < DUE_TIMEOUTS_PER_DRIVE =>
                {
                    due_timeouts += 1;
                    // The pacer asks for the next microsecond, so that packets
                    // sent in one go still get distinct send times.
                    let at = at.max(now);
                    if catch_unwind(AssertUnwindSafe(|| peer.rtc.handle_input(Input::Timeout(at)))).is_err() {
                        self.fault(key, "a timeout");
                        return out;
                    }
                }
                Output::Timeout(at) => {
                    if peer.scheduled.is_none_or(|s| at < s) {
                        peer.scheduled = Some(at);
                        self.timers.push(Reverse((at, key)));
                    }
                    if !peer.rtc.is_alive() {
                        // The participant's app closed this connection (its
                        // DTLS said goodbye): it offers again on a new one,
                        // which a fresh session waits for; nothing to tell.
                        self.replace_session(key);
                    }
                    return out;
                }
                Output::Event(event) => self.on_rtc_event(key, event, &mut out),
            }
        }
    }

    fn on_rtc_event(&mut self, key: PeerKey, event: RtcEvent, out: &mut Vec<Propagated>) {
        let peer = self.peers.get_mut(&key).expect("peer with an event exists");
        match event {
            RtcEvent::MediaAdded(added) if matches!(added.direction, Direction::RecvOnly | Direction::SendRecv) => {
                let source = peer.declared.get(&added.mid.to_string()).copied().unwrap_or(match added.kind {
                    MediaKind::Audio => MediaSource::Microphone,
                    MediaKind::Video => MediaSource::Camera,
                });
                let mut rids: Vec<(usize, Rid)> =
                    added.simulcast.map(|s| s.recv.iter().map(|l| l.rid).enumerate().collect()).unwrap_or_default();
                rids.sort_by_key(|(i, rid)| layers::rank(rid, *i));
                let published = Published {
                    source,
                    kind: added.kind,
                    rids: rids.into_iter().map(|(_, r)| r).collect(),
                    meters: HashMap::new(),
                    last_keyframe_request: HashMap::new(),
                    holes: HashMap::new(),
                    svc: SvcMeters::default(),
                    announced: None,
                    held_back: 0,
                };
                peer.published.insert(added.mid, published);
                out.push(Propagated::Published(key, added.mid));
            }
            // The participant stopped sending this track (e.g. ended a share).
            RtcEvent::MediaChanged(changed)
                if matches!(changed.direction, Direction::Inactive | Direction::SendOnly)
                    && peer.published.remove(&changed.mid).is_some() =>
            {
                let (owner, meeting) = (peer.participant, peer.meeting.clone());
                for other in self.meetings.get(&meeting).map(|m| m.peers.clone()).unwrap_or_default() {
                    if let Some(o) = self.peers.get_mut(&other) {
                        o.drop_forwards_from(owner, Some(changed.mid));
                        self.dirty.push(other);
                    }
                }
            }
            RtcEvent::RtpPacket(packet) => {
                // str0m only reports packets of streams it has mapped to an m-line.
                if let Some(stream) = peer.rtc.direct_api().stream_rx(&packet.header.ssrc) {
                    let (mid, rid) = (stream.mid(), stream.rid());
                    out.push(Propagated::Rtp(key, Box::new(Incoming { mid, rid, packet })));
                }
            }
            RtcEvent::KeyframeRequest(req) => {
                if let Some(f) = peer.forwards.iter().find(|f| f.mid() == Some(req.mid)) {
                    let rid = f.current.flatten().or(f.target);
                    tracing::debug!(
                        subscriber = peer.participant,
                        publisher = f.owner,
                        ?rid,
                        "a subscriber asked for a keyframe"
                    );
                    out.push(Propagated::Keyframe {
                        publisher: f.owner,
                        meeting: peer.meeting.clone(),
                        mid: f.source_mid,
                        rid,
                    });
                }
            }
            RtcEvent::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                peer.estimate = Some(estimate.as_u64());
            }
            RtcEvent::Connected => tracing::debug!(participant = peer.participant, "media connected"),
            RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected) => out.push(Propagated::Lost(key)),
            _ => {}
        }
    }
}
