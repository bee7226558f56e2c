//! A deterministic world for the SFU: str0m peers (as a participant's app
//! runs them) on an in-memory network that loses datagrams when asked, the
//! SFU's state machine, and simulated time in 1 ms steps.
// Each test binary uses its part of the world.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use conclave_proto::media::{MediaSource, PublishedTrack};
use conclave_proto::signal::ServerMessage;
use conclave_sfu::{Command, MeetingKey, Rights, Sfu, SfuConfig, SfuEvent};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::ice::{StunMessage, TransId};
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

const SFU: &str = "10.0.0.1:5000";

/// What a peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sends {
    /// Nothing: an inactive audio m-line, as a browser without devices offers.
    Nothing,
    Microphone,
    /// A camera of `frame_bytes` frames at 30 fps.
    Camera {
        frame_bytes: usize,
    },
}

pub struct Peer {
    pub id: u64,
    addr: SocketAddr,
    rtc: Rtc,
    pending: Option<SdpPendingOffer>,
    pub connected: bool,
    pub ice: Option<IceConnectionState>,
    inbox: VecDeque<Vec<u8>>,
    timeout: Instant,
    sends: Sends,
    /// The m-line it publishes on, and whether its offer was answered.
    publishing: Option<Mid>,
    answered: bool,
    frames_sent: u32,
    /// Frames received: (the frame's number, simulated ms from sending to receiving).
    pub received: Vec<(u32, u64)>,
    /// The last ICE check it sent.
    last_check: Option<Vec<u8>>,
}

/// What the network loses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loss {
    /// One datagram in this many, each way (none when 0).
    pub one_in: u64,
    /// Every peer's first DTLS datagram, each way: no handshake completes
    /// unless the lost flight is sent again.
    pub first_handshake_datagram: bool,
}

pub struct Network {
    pub sfu: Sfu,
    pub peers: Vec<Peer>,
    pub start: Instant,
    pub now: Instant,
    loss: Loss,
    rng: u64,
    /// (peer, towards the SFU) whose first DTLS datagram was lost.
    handshake_lost: HashSet<(u64, bool)>,
}

impl Network {
    /// `peers` participants admitted to one meeting at once, sending what
    /// their entry says, over a network losing what `loss` says.
    pub fn new(peers: &[Sends], loss: Loss) -> Self {
        let start = Instant::now();
        let config = SfuConfig { advertised: SFU.parse().unwrap(), initial_bitrate_kbps: 2500, tap: None };
        let sfu = Sfu::new(config, start);
        let mut net = Self {
            sfu,
            peers: Vec::new(),
            start,
            now: start,
            loss,
            rng: 0x2545_f491_4f6c_dd1d,
            handshake_lost: HashSet::new(),
        };
        for (n, sends) in peers.iter().enumerate() {
            let id = n as u64 + 1;
            net.join(id, *sends, address_of(id));
        }
        net
    }

    /// Whether `datagram` between `peer` and the SFU is lost.
    fn lost(&mut self, peer: u64, to_sfu: bool, datagram: &[u8]) -> bool {
        // DTLS records begin with a content type of 20 to 63 (RFC 7983).
        let dtls = datagram.first().is_some_and(|b| (20..=63).contains(b));
        if dtls && self.loss.first_handshake_datagram && self.handshake_lost.insert((peer, to_sfu)) {
            return true;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.loss.one_in > 0 && self.rng.is_multiple_of(self.loss.one_in)
    }

    /// Participant `id` joins the meeting now, sending from `addr`.
    pub fn join(&mut self, id: u64, sends: Sends, addr: SocketAddr) {
        let rights = Rights { microphone: true, camera: true, screen: false };
        self.sfu.handle_command(self.now, Command::Admit { meeting: MeetingKey::from("m"), participant: id, rights });
        let (peer, offer) = Peer::new(id, self.now, sends, addr);
        self.sfu.handle_command(self.now, offer);
        self.peers.push(peer);
    }

    /// Participant `id`'s app vanishes without a word (its socket closed):
    /// the SFU still has its session until told otherwise.
    pub fn vanish(&mut self, id: u64) {
        self.peers.retain(|p| p.id != id);
    }

    /// An ICE check to participant `id`'s session, naming its ufrags as
    /// the real ones do (they travel in the clear) but sealed with a
    /// password that is not the session's.
    pub fn forged_check(&self, id: u64) -> Vec<u8> {
        let real = self.peer(id).last_check.as_deref().expect("the peer sent an ICE check");
        let real = StunMessage::parse(real).unwrap();
        let username = real.username().expect("checks name their ufrags");
        let check = StunMessage::binding_request(username, TransId::new(), true, 7, 1 << 24, true);
        let hmac = conclave_dtls::crypto_provider().sha1_hmac_provider;
        let mut buf = vec![0u8; 1500];
        let n = check.to_bytes(Some(b"not the session's password"), &mut buf, |k, p| hmac.sha1_hmac(k, p)).unwrap();
        buf.truncate(n);
        buf
    }

    pub fn peer(&self, id: u64) -> &Peer {
        self.peers.iter().find(|p| p.id == id).expect("a peer of that id")
    }

    /// Steps until `done` holds or `within` has passed; whether it held.
    pub fn run_until(&mut self, within: Duration, done: impl Fn(&Network) -> bool) -> bool {
        let end = self.now + within;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    pub fn all_connected(&self) -> bool {
        self.peers.iter().all(|p| p.connected)
    }

    /// One millisecond: peers take what reached them, send their media and
    /// what str0m wants sent; the SFU does the same; signaling is instant.
    pub fn step(&mut self) {
        self.now += Duration::from_millis(1);
        let (now, sfu_addr) = (self.now, SFU.parse::<SocketAddr>().unwrap());
        let elapsed_ms = now.duration_since(self.start).as_millis() as u64;
        for i in 0..self.peers.len() {
            let p = &mut self.peers[i];
            while let Some(d) = p.inbox.pop_front() {
                let Ok(contents) = d.as_slice().try_into() else { continue };
                let receive = Receive { proto: Protocol::Udp, source: sfu_addr, destination: p.addr, contents };
                let _ = p.rtc.handle_input(Input::Receive(now, receive));
            }
            if p.timeout <= now {
                let _ = p.rtc.handle_input(Input::Timeout(now));
            }
            p.send_media(now, elapsed_ms);
            let mut sent = Vec::new();
            loop {
                match self.peers[i].rtc.poll_output().unwrap() {
                    // str0m releases one queued packet per timeout handled.
                    Output::Timeout(t) if t <= now => {
                        let _ = self.peers[i].rtc.handle_input(Input::Timeout(now));
                    }
                    Output::Timeout(t) => {
                        self.peers[i].timeout = t;
                        break;
                    }
                    Output::Transmit(t) => sent.push(t.contents.to_vec()),
                    Output::Event(event) => self.peers[i].on_event(event, elapsed_ms),
                }
            }
            let (from, id) = (self.peers[i].addr, self.peers[i].id);
            if let Some(check) = sent.iter().rfind(|d| d.first().is_some_and(|b| *b < 4)) {
                self.peers[i].last_check = Some(check.clone());
            }
            for datagram in sent {
                if !self.lost(id, true, &datagram) {
                    self.sfu.handle_datagram(now, from, &datagram);
                }
            }
        }
        if self.sfu.next_deadline() <= now {
            self.sfu.handle_timeout(now);
        }
        while let Some(t) = self.sfu.poll_transmit() {
            let Some(i) = self.peers.iter().position(|p| p.addr == t.destination) else { continue };
            if !self.lost(self.peers[i].id, false, &t.contents) {
                self.peers[i].inbox.push_back(t.contents.to_vec());
            }
        }
        while let Some(event) = self.sfu.poll_event() {
            let SfuEvent::Signal { participant, message, .. } = event else { continue };
            let Some(p) = self.peers.iter_mut().find(|p| p.id == participant) else { continue };
            if let Some(command) = p.on_signal(message) {
                self.sfu.handle_command(now, command);
            }
        }
    }
}

impl Peer {
    fn new(id: u64, now: Instant, sends: Sends, addr: SocketAddr) -> (Self, Command) {
        let mut rtc = Rtc::builder().set_crypto_provider(conclave_dtls::crypto_provider()).build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut api = rtc.sdp_api();
        let mut tracks = Vec::new();
        let publishing = match sends {
            Sends::Nothing => {
                api.add_media(MediaKind::Audio, Direction::Inactive, None, None, None);
                None
            }
            Sends::Microphone => {
                let mid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
                tracks.push(PublishedTrack { mid: mid.to_string(), source: MediaSource::Microphone });
                Some(mid)
            }
            Sends::Camera { .. } => {
                let mid = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
                tracks.push(PublishedTrack { mid: mid.to_string(), source: MediaSource::Camera });
                Some(mid)
            }
        };
        let (offer, pending) = api.apply().unwrap();
        let sdp = offer.to_sdp_string();
        let command = Command::Offer { meeting: MeetingKey::from("m"), participant: id, sdp, tracks };
        let peer = Self {
            id,
            addr,
            rtc,
            pending: Some(pending),
            connected: false,
            ice: None,
            inbox: VecDeque::new(),
            timeout: now,
            sends,
            publishing,
            answered: false,
            frames_sent: 0,
            received: Vec::new(),
            last_check: None,
        };
        (peer, command)
    }

    /// Sends a frame when one is due: a camera every 33 ms, a microphone
    /// every 20 ms. A frame carries its number and when it was sent.
    fn send_media(&mut self, now: Instant, elapsed_ms: u64) {
        let (Some(mid), true, true) = (self.publishing, self.answered, self.connected) else { return };
        let (gap, size, codec) = match self.sends {
            Sends::Nothing => return,
            Sends::Microphone => (20, 120, Codec::Opus),
            Sends::Camera { frame_bytes } => (33, frame_bytes, Codec::Vp8),
        };
        if !elapsed_ms.is_multiple_of(gap) {
            return;
        }
        let number = self.frames_sent;
        self.frames_sent += 1;
        let mut frame = vec![0u8; size];
        // A VP8 payload header with the P bit clear: every frame a keyframe.
        frame[0] = 0x10;
        frame[1..5].copy_from_slice(&number.to_be_bytes());
        frame[5..13].copy_from_slice(&elapsed_ms.to_be_bytes());
        let Some(writer) = self.rtc.writer(mid) else { return };
        let Some(pt) = writer.payload_params().find(|p| p.spec().codec == codec).map(|p| p.pt()) else { return };
        let time = MediaTime::from_90khz(elapsed_ms * 90);
        writer.write(pt, now, time, frame).unwrap();
    }

    fn on_event(&mut self, event: Event, elapsed_ms: u64) {
        match event {
            Event::Connected => self.connected = true,
            Event::IceConnectionStateChange(state) => self.ice = Some(state),
            Event::MediaData(data) if data.data.len() >= 13 => {
                let number = u32::from_be_bytes(data.data[1..5].try_into().unwrap());
                let sent_ms = u64::from_be_bytes(data.data[5..13].try_into().unwrap());
                self.received.push((number, elapsed_ms - sent_ms));
            }
            _ => {}
        }
    }

    /// The app's side of the negotiation; a command for the SFU if it answers.
    fn on_signal(&mut self, message: ServerMessage) -> Option<Command> {
        match message {
            ServerMessage::MediaAnswer { sdp } => {
                let pending = self.pending.take().expect("an offer was outstanding");
                self.rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&sdp).unwrap()).unwrap();
                self.answered = true;
                None
            }
            ServerMessage::MediaOffer { sdp, .. } => {
                self.pending = None;
                let answer = self.rtc.sdp_api().accept_offer(SdpOffer::from_sdp_string(&sdp).unwrap()).unwrap();
                let sdp = answer.to_sdp_string();
                Some(Command::Answer { meeting: MeetingKey::from("m"), participant: self.id, sdp })
            }
            _ => None,
        }
    }
}

impl Peer {
    pub fn frames_sent(&self) -> u32 {
        self.frames_sent
    }
}

/// The frames a peer received, by number, with their delay in ms.
/// Where participant `id` sends from unless a test says otherwise.
pub fn address_of(id: u64) -> SocketAddr {
    format!("10.0.1.{}:{}", id % 250 + 1, 6000 + id).parse().unwrap()
}

pub fn frames_by_number(peer: &Peer) -> HashMap<u32, u64> {
    peer.received.iter().copied().collect()
}
