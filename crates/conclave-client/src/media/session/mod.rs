//! The task behind a [`MediaParticipant`]: it owns the signaling connection
//! (through its pump), a UDP socket and a str0m `Rtc`, and runs the participant's side of the
//! negotiation as the polite peer (it yields when offers cross).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conclave_proto::media::{MediaSource, PublishedTrack};
use conclave_proto::signal::{ClientMessage, ParticipantId, ServerMessage};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, MediaTime, Mid, Pt, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::stats::MediaStats;
use super::synthetic::{self, FrameHeader, NO_LAYER};
use super::turn::{allocate, TurnClient, TurnEvent};
use crate::signaling::{SignalChannel, SignalError};
use conclave_e2ee::agent::E2eeAgent;
use conclave_e2ee::mls::OpenMlsMember;

mod e2ee;
mod pump;

use pump::Signaling;

#[derive(Debug, Clone)]
pub struct MediaOptions {
    pub microphone: bool,
    pub camera: bool,
    /// Simulcast rids for the camera, lowest first; empty for a single layer.
    pub simulcast: Vec<String>,
    /// Bytes per frame of the camera's top layer (lower layers are 1/4, 1/16).
    pub camera_frame_bytes: usize,
    pub fps: u32,
    /// The level sent in the audio-level extension: -127 silent, 0 loudest.
    pub audio_level: i8,
    /// The local address to send from.
    pub bind: IpAddr,
    /// Reach the SFU only through this TURN relay (no host candidate).
    pub relay: Option<RelayOptions>,
    /// End-to-end encrypt media with SFrame under the meeting's MLS group.
    pub e2ee: bool,
    /// The device's signature key pair kept from an earlier meeting
    /// (`OpenMlsMember::export_signature_key`); a new device when `None`.
    pub e2ee_device_key: Option<Vec<u8>>,
    /// Never offer: the server offers what it sends (a Janus subscriber).
    pub await_offer: bool,
    /// Negotiate but send no frames until `resume_sending` (a load test
    /// brings everyone up before the load starts).
    pub paused: bool,
}

/// A TURN server and the credentials the join response handed out.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    pub server: SocketAddr,
    pub username: String,
    pub password: String,
}

impl Default for MediaOptions {
    fn default() -> Self {
        Self {
            microphone: true,
            camera: true,
            simulcast: Vec::new(),
            camera_frame_bytes: 4000,
            fps: 30,
            audio_level: -30,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            relay: None,
            e2ee: false,
            e2ee_device_key: None,
            await_offer: false,
            paused: false,
        }
    }
}

/// Datagrams read in one wake-up before the session is polled.
const RECEIVE_BATCH: usize = 32;
/// The socket's kernel receive buffer.
const RECEIVE_BUFFER: usize = 1 << 20;

enum Control {
    Signal(ClientMessage),
    Screen(bool),
    AudioLevel(i8),
    ReceiveLimit(Option<u64>),
    Paused(bool),
}

/// A bottleneck on the way in: datagrams beyond `bps` (with a 100 ms
/// burst) are dropped, as a congested last mile would.
struct Bottleneck {
    bps: u64,
    tokens: f64,
    refilled: Instant,
}

impl Bottleneck {
    fn admits(&mut self, bytes: usize, now: Instant) -> bool {
        let burst = self.bps as f64 / 8.0 / 10.0;
        self.tokens =
            (self.tokens + now.duration_since(self.refilled).as_secs_f64() * self.bps as f64 / 8.0).min(burst);
        self.refilled = now;
        if self.tokens >= bytes as f64 {
            self.tokens -= bytes as f64;
            true
        } else {
            false
        }
    }
}

/// A headless participant with media, running in its own task.
pub struct MediaParticipant {
    pub id: ParticipantId,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<Mutex<MediaStats>>,
    messages: mpsc::UnboundedReceiver<ServerMessage>,
    task: JoinHandle<()>,
}

impl MediaParticipant {
    /// Starts media on an admitted participant's connection.
    pub async fn start(
        connection: impl SignalChannel,
        id: ParticipantId,
        options: MediaOptions,
    ) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(SocketAddr::new(options.bind, 0)).await?;
        // Room for a burst while this participant's task waits its turn (a
        // load test runs hundreds of them on one core).
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(RECEIVE_BUFFER);
        let turn = match &options.relay {
            Some(relay) => Some(allocate(&socket, relay).await?),
            None => None,
        };
        let (control, control_rx) = mpsc::unbounded_channel();
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(MediaStats::default()));
        let session = Session::new(id, socket, options, stats.clone(), turn);
        let task = tokio::spawn(session.run(connection, control_rx, messages_tx));
        Ok(Self { id, control, stats, messages, task })
    }

    pub fn send(&self, message: ClientMessage) {
        let _ = self.control.send(Control::Signal(message));
    }

    /// Starts or stops sharing the screen (asks the room, then publishes).
    pub fn share_screen(&self, on: bool) {
        let _ = self.control.send(Control::Screen(on));
    }

    /// Limits the bandwidth this participant receives at (`None`: no limit),
    /// dropping what exceeds it.
    pub fn limit_receive(&self, kbps: Option<u64>) {
        let _ = self.control.send(Control::ReceiveLimit(kbps));
    }

    /// Starts (or pauses) sending frames on what is negotiated.
    pub fn resume_sending(&self, on: bool) {
        let _ = self.control.send(Control::Paused(!on));
    }

    pub fn set_audio_level(&self, level: i8) {
        let _ = self.control.send(Control::AudioLevel(level));
    }

    pub fn stats(&self) -> MediaStats {
        self.stats.lock().expect("stats lock").clone()
    }

    /// Waits for a signaling message (other than media negotiation).
    pub async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        wanted: impl Fn(&ServerMessage) -> bool,
    ) -> Result<ServerMessage, SignalError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.messages.recv()).await {
                Ok(Some(message)) if wanted(&message) => return Ok(message),
                Ok(Some(_)) => continue,
                Ok(None) => return Err(SignalError::Closed),
                Err(_) => return Err(SignalError::Timeout(what.to_owned())),
            }
        }
    }

    /// Waits until the received media satisfies `done`.
    pub async fn wait_until(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&MediaStats) -> bool,
    ) -> Result<MediaStats, String> {
        let deadline = Instant::now() + within;
        loop {
            let stats = self.stats();
            if done(&stats) {
                return Ok(stats);
            }
            if Instant::now() >= deadline {
                return Err(format!("timed out waiting for {what}; stats: {stats:#?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the participant's media and drops its connection.
    pub fn stop(self) {
        self.task.abort();
    }

    /// Leaves the meeting (the server tears the media session down), then stops.
    pub async fn leave(self) {
        self.send(ClientMessage::Leave);
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.stop();
    }
}

/// Our outstanding offer: str0m's handle, the sources it adds (by mid) and
/// the sources it stops.
type PendingOffer = (SdpPendingOffer, Vec<(MediaSource, Mid)>, Vec<MediaSource>);

/// One published source's negotiation and sending state.
struct Outgoing {
    mid: Mid,
    pt: Option<Pt>,
    /// Layers the server wants; `None` until it says (send all).
    active: Option<HashSet<String>>,
    seq: u32,
    force_keyframe: bool,
}

struct Session {
    id: ParticipantId,
    socket: UdpSocket,
    local: SocketAddr,
    rtc: Rtc,
    options: MediaOptions,
    stats: Arc<Mutex<MediaStats>>,
    /// Sources the participant wants to publish.
    wanted: HashSet<MediaSource>,
    /// Sources negotiated (answer accepted).
    published: HashMap<MediaSource, Outgoing>,
    pending: Option<PendingOffer>,
    /// The first offer was answered.
    ready: bool,
    bottleneck: Option<Bottleneck>,
    /// The relay everything goes through, when relay-only.
    turn: Option<TurnClient>,
    /// The meeting's end-to-end encryption, when on.
    e2ee: Option<E2eeAgent<OpenMlsMember>>,
    /// TURN requests to send (made while handling signaling).
    turn_outbox: Vec<Vec<u8>>,
    next_audio: Instant,
    next_video: Instant,
    next_screen: Instant,
    started: Instant,
    /// Incoming video tracks by mid: when each last asked for a keyframe
    /// while none had come, `None` once one did.
    video_in: HashMap<Mid, Option<Instant>>,
}

/// How often a track still waiting for its first keyframe asks again, as
/// a browser's decoder does when what it got cannot be decoded.
const KEYFRAME_ASK_GAP: Duration = Duration::from_millis(250);

impl Session {
    fn new(
        id: ParticipantId,
        socket: UdpSocket,
        options: MediaOptions,
        stats: Arc<Mutex<MediaStats>>,
        turn: Option<TurnClient>,
    ) -> Self {
        let now = Instant::now();
        let e2ee = options.e2ee.then(|| {
            E2eeAgent::for_device(options.e2ee_device_key.as_deref(), Default::default()).expect("an MLS device")
        });
        let socket_addr = socket.local_addr().expect("a bound socket has an address");
        // Relay-only: the relayed address is our only candidate, and what
        // str0m sends from and receives at.
        let local = turn.as_ref().and_then(|t| t.relay).unwrap_or(socket_addr);
        let mut rtc = new_rtc(now);
        rtc.add_local_candidate(local_candidate(local, socket_addr, turn.is_some()));
        let mut wanted = HashSet::new();
        if options.microphone {
            wanted.insert(MediaSource::Microphone);
        }
        if options.camera {
            wanted.insert(MediaSource::Camera);
        }
        Self {
            id,
            socket,
            local,
            rtc,
            options,
            stats,
            wanted,
            published: HashMap::new(),
            pending: None,
            ready: false,
            bottleneck: None,
            e2ee,
            turn,
            turn_outbox: Vec::new(),
            next_audio: now,
            next_video: now,
            next_screen: now,
            started: now,
            video_in: HashMap::new(),
        }
    }

    async fn run(
        mut self,
        connection: impl SignalChannel,
        mut control: mpsc::UnboundedReceiver<Control>,
        messages: mpsc::UnboundedSender<ServerMessage>,
    ) {
        let mut buf = vec![0u8; 2048];
        let mut connection = Signaling::start(connection);
        let mut signaling_open = true;
        let e2ee_start = self.e2ee_start();
        for message in self.offer_changes().into_iter().chain([self.unmute()]).chain(e2ee_start) {
            signaling_open &= connection.send(message);
        }
        loop {
            let timeout = self.poll(Instant::now()).await;
            // Waiting on str0m's timeout alone has been seen to stall a
            // negotiation under load; a 100 ms tick keeps ICE and DTLS moving.
            let tick = Instant::now() + Duration::from_millis(100);
            let wake = timeout.min(self.next_media_at()).min(tick);
            let wake = tokio::time::Instant::from_std(wake.max(Instant::now()));
            tokio::select! {
                received = connection.next(), if signaling_open => match received {
                    Some(message) => {
                        for reply in self.on_server_message(message, &messages) {
                            signaling_open &= connection.send(reply);
                        }
                        if let Some(server) = self.turn.as_ref().map(|t| t.server) {
                            for request in std::mem::take(&mut self.turn_outbox) {
                                let _ = self.socket.send_to(&request, server).await;
                            }
                        }
                    }
                    None => {
                        // Keep receiving on the UDP socket: a removed
                        // participant must see the media stop by itself.
                        signaling_open = false;
                        self.stats.lock().expect("stats lock").signaling_closed = true;
                    }
                },
                command = control.recv() => match command {
                    Some(Control::Signal(message)) => {
                        signaling_open &= connection.send(message);
                    }
                    Some(Control::Screen(on)) => {
                        let request = if on {
                            ClientMessage::StartScreenShare
                        } else {
                            ClientMessage::StopScreenShare { participant_id: None }
                        };
                        signaling_open &= connection.send(request);
                        if on { self.wanted.insert(MediaSource::Screen); } else { self.wanted.remove(&MediaSource::Screen); }
                        if let Some(offer) = self.offer_changes() {
                            signaling_open &= connection.send(offer);
                        }
                    }
                    Some(Control::AudioLevel(level)) => self.options.audio_level = level,
                    Some(Control::Paused(paused)) => self.options.paused = paused,
                    Some(Control::ReceiveLimit(kbps)) => {
                        self.bottleneck = kbps.map(|k| Bottleneck { bps: k * 1000, tokens: 0.0, refilled: Instant::now() });
                        self.stats.lock().expect("stats lock").dropped_by_limit = 0;
                    }
                    None => return,
                },
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, source)) = received {
                        self.on_datagram(&buf[..n], source);
                        // What else has arrived goes in before the session is
                        // polled again: one wake-up for a burst, not one each.
                        for _ in 1..RECEIVE_BATCH {
                            match self.socket.try_recv_from(&mut buf) {
                                Ok((n, source)) => self.on_datagram(&buf[..n], source),
                                Err(_) => break,
                            }
                        }
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
                }
            }
            self.send_media_due(Instant::now());
        }
    }

    /// One datagram from the socket: unwrapped when relayed, dropped past a
    /// receive limit, otherwise handed to the `Rtc`.
    fn on_datagram(&mut self, mut datagram: &[u8], mut source: SocketAddr) {
        let now = Instant::now();
        {
            let mut stats = self.stats.lock().expect("stats lock");
            stats.datagrams_received += 1;
            stats.rtp_received += u64::from(is_rtp(datagram));
        }
        if let Some(turn) = self.turn.as_mut().filter(|t| t.server == source) {
            if turn.is_control(datagram) {
                if let Some(TurnEvent::Send(next)) = turn.handle(datagram) {
                    // A lost reply is a lost datagram: TURN retries.
                    let _ = self.socket.try_send_to(&next, source);
                }
                return;
            }
            match turn.unwrap(datagram) {
                Some((peer, inner)) => (source, datagram) = (peer, inner),
                None => return,
            }
        }
        let admitted = self.bottleneck.as_mut().is_none_or(|b| b.admits(datagram.len(), now));
        if !admitted {
            self.stats.lock().expect("stats lock").dropped_by_limit += 1;
        } else if let Ok(contents) = datagram.try_into() {
            let input =
                Input::Receive(now, Receive { proto: Protocol::Udp, source, destination: self.local, contents });
            let _ = self.rtc.handle_input(input);
        }
    }

    /// Handles output until the `Rtc` waits; returns when it wants time.
    async fn poll(&mut self, now: Instant) -> Instant {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => return t,
                Ok(Output::Transmit(t)) => match &self.turn {
                    None => {
                        self.stats.lock().expect("stats lock").datagrams_sent += 1;
                        let _ = self.socket.send_to(&t.contents, t.destination).await;
                    }
                    Some(turn) => {
                        // Until the channel is bound, str0m's retries cover the loss.
                        if let Some(wrapped) = turn.wrap(&t.contents).filter(|_| turn.peer == Some(t.destination)) {
                            let _ = self.socket.send_to(&wrapped, turn.server).await;
                        }
                    }
                },
                Ok(Output::Event(event)) => self.on_event(event, now),
                Err(_) => return now + Duration::from_millis(50),
            }
        }
    }

    fn on_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Connected => self.stats.lock().expect("stats lock").connected = true,
            Event::MediaData(data) => {
                let plain = match self.e2ee.as_mut() {
                    Some(e2ee) => match e2ee.session_mut().decrypt_frame(&data.data, b"") {
                        Ok(plain) => plain,
                        Err(_) => {
                            self.stats.lock().expect("stats lock").undecryptable += 1;
                            return;
                        }
                    },
                    None => data.data.to_vec(),
                };
                let Some(header) = synthetic::parse(&plain) else {
                    self.stats.lock().expect("stats lock").unreadable += 1;
                    return;
                };
                if header.source != MediaSource::Microphone {
                    self.ask_for_keyframe_until_one_came(data.mid, header.keyframe, now);
                }
                let mut stats = self.stats.lock().expect("stats lock");
                stats.record(&data.mid.to_string(), &header, data.data.len(), now, synthetic::now_us());
            }
            Event::KeyframeRequest(req) => {
                self.stats.lock().expect("stats lock").keyframe_requests += 1;
                if let Some(out) = self.published.values_mut().find(|o| o.mid == req.mid) {
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
        if let Some(mut writer) = self.rtc.writer(mid) {
            // Cannot fail: the track just delivered a frame, so it receives.
            let _ = writer.request_keyframe(None, KeyframeRequestKind::Pli);
        }
    }

    fn on_server_message(
        &mut self,
        message: ServerMessage,
        messages: &mpsc::UnboundedSender<ServerMessage>,
    ) -> Vec<ClientMessage> {
        let mut replies = Vec::new();
        match message {
            ServerMessage::MediaOffer { sdp, tracks } => {
                self.stats.lock().expect("stats lock").negotiations += 1;
                // The polite peer: a crossing offer of ours is dropped and redone.
                self.pending = None;
                let Ok(offer) = SdpOffer::from_sdp_string(&sdp) else { return replies };
                if let Ok(answer) = self.rtc.sdp_api().accept_offer(offer) {
                    let mut stats = self.stats.lock().expect("stats lock");
                    stats.tracks = tracks.into_iter().map(|t| (t.mid.clone(), t)).collect();
                    replies.push(ClientMessage::MediaAnswer { sdp: answer.to_sdp_string() });
                }
                replies.extend(self.offer_changes());
            }
            ServerMessage::MediaAnswer { sdp } => {
                self.stats.lock().expect("stats lock").negotiations += 1;
                if let (Some((pending, added, stopped)), Ok(answer)) =
                    (self.pending.take(), SdpAnswer::from_sdp_string(&sdp))
                {
                    if let Some(turn) = self.turn.as_mut().filter(|t| t.peer.is_none()) {
                        if let Some(sfu) = first_candidate(&sdp) {
                            self.turn_outbox.push(turn.bind(sfu));
                        }
                    }
                    if self.rtc.sdp_api().accept_answer(pending, answer).is_ok() {
                        self.ready = true;
                        for source in stopped {
                            self.published.remove(&source);
                        }
                        for (source, mid) in added {
                            let pt = self.payload_type(mid, source);
                            self.published
                                .insert(source, Outgoing { mid, pt, active: None, seq: 0, force_keyframe: true });
                        }
                    }
                }
                replies.extend(self.offer_changes());
            }
            ServerMessage::PublishLayers { mid, rids } => {
                if let Some(out) = self.published.values_mut().find(|o| o.mid.to_string() == mid) {
                    out.active = Some(rids.iter().cloned().collect());
                    out.force_keyframe = true;
                }
                self.stats.lock().expect("stats lock").requested_layers.insert(mid, rids);
            }
            ServerMessage::E2eeCredential { .. }
            | ServerMessage::E2eeCreateGroup
            | ServerMessage::E2eeAddRequest { .. }
            | ServerMessage::E2eeRemoveRequest { .. }
            | ServerMessage::E2eeCommit { .. }
            | ServerMessage::E2eeWelcome { .. }
            | ServerMessage::E2eeRejected { .. }
            | ServerMessage::E2eeApplication { .. } => {
                replies.extend(self.on_e2ee(message));
                self.publish_e2ee_state();
            }
            ServerMessage::Error { code, .. } if code == "media_lost" => {
                // The server lost us (a network change): start a fresh session.
                self.rtc = new_rtc(Instant::now());
                let base = self.socket.local_addr().unwrap_or(self.local);
                self.rtc.add_local_candidate(local_candidate(self.local, base, self.turn.is_some()));
                self.published.clear();
                self.pending = None;
                self.ready = false;
                self.stats.lock().expect("stats lock").connected = false;
                replies.extend(self.offer_changes());
            }
            ServerMessage::Admitted { .. } if !self.ready => {
                // Offers made while waiting were refused; start now.
                self.pending = None;
                let _ = messages.send(message);
                replies.extend(self.offer_changes());
                replies.push(self.unmute());
                replies.extend(self.e2ee_start());
            }
            other => {
                let _ = messages.send(other);
            }
        }
        replies
    }

    /// Meetings may start everyone muted; a participant that publishes
    /// unmutes, as a person would (the room may refuse).
    fn unmute(&self) -> ClientMessage {
        ClientMessage::SetMedia { audio_muted: Some(!self.options.microphone), video_muted: Some(!self.options.camera) }
    }

    fn payload_type(&mut self, mid: Mid, source: MediaSource) -> Option<Pt> {
        let codec = if source == MediaSource::Microphone { Codec::Opus } else { Codec::Vp8 };
        let writer = self.rtc.writer(mid)?;
        let pt = writer.payload_params().find(|p| p.spec().codec == codec).map(|p| p.pt());
        pt
    }

    /// An offer for what changed in what we publish, if nothing is outstanding.
    fn offer_changes(&mut self) -> Option<ClientMessage> {
        if self.pending.is_some() || self.options.await_offer {
            return None;
        }
        let mut api = self.rtc.sdp_api();
        let mut added = Vec::new();
        let mut stopped = Vec::new();
        for source in [MediaSource::Microphone, MediaSource::Camera, MediaSource::Screen] {
            let want = self.wanted.contains(&source);
            match (want, self.published.get(&source)) {
                (true, None) => {
                    let kind = if source == MediaSource::Microphone { MediaKind::Audio } else { MediaKind::Video };
                    let simulcast = (source == MediaSource::Camera && !self.options.simulcast.is_empty()).then(|| {
                        let mut s = Simulcast::new();
                        for rid in &self.options.simulcast {
                            s.add_send_layer(SimulcastLayer::new(rid));
                        }
                        s
                    });
                    let stream = format!("p{}", self.id);
                    let mid =
                        api.add_media(kind, Direction::SendOnly, Some(stream), Some(source.as_str().into()), simulcast);
                    added.push((source, mid));
                }
                (false, Some(out)) => {
                    api.set_direction(out.mid, Direction::Inactive);
                    stopped.push(source);
                }
                _ => {}
            }
        }
        if !self.ready && added.is_empty() && self.published.is_empty() {
            // Nothing to send: an inactive audio m-line gives the offer a
            // transport to set up, as the browser app's does.
            api.add_media(MediaKind::Audio, Direction::Inactive, None, None, None);
        }
        if !api.has_changes() {
            return None;
        }
        let (offer, pending) = api.apply()?;
        let mut tracks: Vec<PublishedTrack> =
            added.iter().map(|(source, mid)| PublishedTrack { mid: mid.to_string(), source: *source }).collect();
        tracks.extend(
            self.published.iter().map(|(source, o)| PublishedTrack { mid: o.mid.to_string(), source: *source }),
        );
        self.pending = Some((pending, added, stopped));
        Some(ClientMessage::MediaOffer { sdp: offer.to_sdp_string(), tracks })
    }

    /// When the next frame is due; an hour away while nothing is to be sent
    /// (paused, not connected, or publishing nothing), so an idle receiver
    /// does not wake for nothing.
    fn next_media_at(&self) -> Instant {
        let idle = Instant::now() + Duration::from_secs(3600);
        if self.options.paused || !self.stats.lock().expect("stats lock").connected {
            return idle;
        }
        [
            (MediaSource::Microphone, self.next_audio),
            (MediaSource::Camera, self.next_video),
            (MediaSource::Screen, self.next_screen),
        ]
        .into_iter()
        .filter(|(source, _)| self.published.contains_key(source))
        .map(|(_, at)| at)
        .fold(idle, Instant::min)
    }

    fn send_media_due(&mut self, now: Instant) {
        if self.options.paused || !self.stats.lock().expect("stats lock").connected {
            return;
        }
        let frame_gap = Duration::from_secs(1) / self.options.fps.max(1);
        if now >= self.next_audio {
            self.next_audio = (self.next_audio + Duration::from_millis(20)).max(now - Duration::from_millis(100));
            self.send_frame(MediaSource::Microphone, now);
        }
        if now >= self.next_video {
            self.next_video = (self.next_video + frame_gap).max(now - frame_gap * 3);
            self.send_frame(MediaSource::Camera, now);
        }
        if now >= self.next_screen {
            let gap = Duration::from_millis(100);
            self.next_screen = (self.next_screen + gap).max(now - gap * 3);
            self.send_frame(MediaSource::Screen, now);
        }
    }

    fn send_frame(&mut self, source: MediaSource, now: Instant) {
        let Some(out) = self.published.get_mut(&source) else { return };
        let Some(pt) = out.pt else { return };
        out.seq = out.seq.wrapping_add(1);
        let keyframe = source != MediaSource::Microphone && (out.force_keyframe || out.seq % 90 == 1);
        out.force_keyframe &= !keyframe;
        let elapsed = now.saturating_duration_since(self.started);
        let (time, layers): (MediaTime, Vec<(Option<Rid>, u8, usize)>) = match source {
            MediaSource::Microphone => (
                MediaTime::from_micros(elapsed.as_micros() as u64).rebase(str0m::media::Frequency::FORTY_EIGHT_KHZ),
                vec![(None, NO_LAYER, 120)],
            ),
            MediaSource::Screen => {
                (MediaTime::from_90khz(elapsed.as_micros() as u64 * 9 / 100), vec![(None, NO_LAYER, 3000)])
            }
            MediaSource::Camera => {
                let top = self.options.camera_frame_bytes;
                let rids = &self.options.simulcast;
                let layers = if rids.is_empty() {
                    vec![(None, NO_LAYER, top)]
                } else {
                    let n = rids.len();
                    rids.iter()
                        .enumerate()
                        .filter(|(_, rid)| out.active.as_ref().is_none_or(|a| a.contains(*rid)))
                        .map(|(i, rid)| (Some(Rid::from(rid.as_str())), i as u8, (top >> (2 * (n - 1 - i))).max(64)))
                        .collect()
                };
                (MediaTime::from_90khz(elapsed.as_micros() as u64 * 9 / 100), layers)
            }
        };
        let (mid, seq, level) = (out.mid, out.seq, self.options.audio_level);
        for (rid, layer, size) in layers {
            let size = if keyframe { size * 2 } else { size };
            let header = FrameHeader { keyframe, sender: self.id, source, layer, seq, sent_us: synthetic::now_us() };
            let mut payload = synthetic::frame(&header, size);
            if let Some(e2ee) = self.e2ee.as_mut() {
                // Never send in the clear what is meant to be encrypted: no
                // keys yet (not in the group) means no media.
                match e2ee.session_mut().encrypt_frame(&payload, b"") {
                    Ok(sealed) => payload = sealed,
                    Err(_) => return,
                }
            }
            let Some(mut writer) = self.rtc.writer(mid) else { return };
            if let Some(rid) = rid {
                writer = writer.rid(rid);
            }
            if source == MediaSource::Microphone {
                writer = writer.audio_level(level, level > -50);
            }
            if writer.write(pt, now, time, payload).is_ok() {
                self.stats.lock().expect("stats lock").sent_frames += 1;
            }
        }
    }
}

/// An SRTP packet rather than SRTCP, STUN, DTLS or TURN (RFC 7983's first
/// byte, then RFC 5761's payload types: RTCP's are 192–223).
fn is_rtp(datagram: &[u8]) -> bool {
    matches!(datagram, [128..=191, second, ..] if !(64..=95).contains(&(second & 0x7f)))
}

/// A peer connection as a browser's would be, on the shared DTLS
/// configuration (`conclave-dtls`).
fn new_rtc(now: Instant) -> Rtc {
    Rtc::builder().set_crypto_provider(conclave_dtls::crypto_provider()).build(now)
}

/// The participant's one ICE candidate: its socket, or its relay when relay-only.
fn local_candidate(addr: SocketAddr, base: SocketAddr, relayed: bool) -> Candidate {
    if relayed {
        Candidate::relayed(addr, base, "udp").expect("a relayed candidate")
    } else {
        Candidate::host(addr, "udp").expect("a host candidate")
    }
}

/// The address of the first ICE candidate in an SDP (the SFU's one port).
fn first_candidate(sdp: &str) -> Option<SocketAddr> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .filter(|l| l.starts_with("candidate:"))
        .find_map(|l| Candidate::from_sdp_string(l).ok())
        .map(|c| c.addr())
}
