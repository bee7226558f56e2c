//! A deterministic world for the SFU: participants running the SDK's
//! sans-IO media session (`conclave_client::media::MediaSession`, what
//! tests, bots and load tests run over UDP) on an in-memory network that
//! loses datagrams when asked, the SFU's state machine, and simulated time
//! in 1 ms steps. This world plays the meeting too: it admits everyone and
//! carries the SDP between the sessions and the SFU at once.
// Each test binary uses its part of the world.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use conclave_client::media::synthetic::FrameClock;
use conclave_client::media::{MediaOptions, MediaSession, MediaStats};
use conclave_proto::media::MediaSource;
use conclave_proto::quality::SfuView;
use conclave_proto::signal::{ClientMessage, ParticipantId, ServerMessage};
use conclave_sfu::{Command, MeetingKey, Rights, Sfu, SfuConfig, SfuEvent};
use str0m::ice::{StunMessage, TransId};

const SFU: &str = "10.0.0.1:5000";

/// What a participant sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sends {
    /// Nothing: an inactive audio m-line, as a browser without devices offers.
    Nothing,
    Microphone,
    /// A camera of `frame_bytes` frames at 30 fps.
    Camera {
        frame_bytes: usize,
    },
    /// A simulcast camera (`q`, `h`, `f`) whose top layer's frames are
    /// `frame_bytes` (the lower ones a quarter and a sixteenth), at 30 fps.
    SimulcastCamera {
        frame_bytes: usize,
    },
}

impl Sends {
    fn options(self) -> MediaOptions {
        let (microphone, camera, camera_frame_bytes) = match self {
            Sends::Nothing => (false, false, 0),
            Sends::Microphone => (true, false, 0),
            Sends::Camera { frame_bytes } | Sends::SimulcastCamera { frame_bytes } => (false, true, frame_bytes),
        };
        let simulcast = match self {
            Sends::SimulcastCamera { .. } => ["q", "h", "f"].map(String::from).to_vec(),
            _ => Vec::new(),
        };
        MediaOptions { microphone, camera, camera_frame_bytes, simulcast, fps: 30, ..MediaOptions::default() }
    }
}

/// One participant: its session, and what the network holds for it.
pub struct Peer {
    pub id: ParticipantId,
    sends: Sends,
    addr: SocketAddr,
    pub session: MediaSession,
    inbox: VecDeque<Vec<u8>>,
    /// The last ICE check it sent.
    last_check: Option<Vec<u8>>,
}

impl Peer {
    pub fn stats(&self) -> &MediaStats {
        self.session.stats()
    }

    pub fn connected(&self) -> bool {
        self.stats().connected
    }

    /// Frames received from every sender and source.
    pub fn frames_received(&self) -> u64 {
        self.stats().total_frames()
    }

    /// Frames written so far, of every source and layer.
    pub fn frames_sent(&self) -> u64 {
        self.stats().sent_frames
    }
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
    /// Frames are stamped in simulated time: latency is in simulated µs.
    clock: FrameClock,
    loss: Loss,
    rng: u64,
    /// (peer, towards the SFU) whose first DTLS datagram was lost.
    handshake_lost: HashSet<(u64, bool)>,
    /// What the SFU told the meeting of each session's quality, in order.
    pub quality: Vec<(ParticipantId, SfuView)>,
    /// Participants whose network is down: everything to and from them is lost.
    pub cut: HashSet<u64>,
    /// Participants the server's next offer to is lost on the way (its
    /// signaling dropped and came back).
    pub lose_next_offer_to: HashSet<u64>,
    /// A participant whose next RTP packet to the SFU is lost, and whether
    /// its retransmissions are lost too (from then on, every one).
    lose_next_packet: Option<(ParticipantId, bool)>,
    /// The participant and SSRC of the packet lost, if its repairs are lost too.
    repairs_lost: Option<(ParticipantId, u32)>,
    /// A participant whose link takes this long each way.
    pub delay: HashMap<u64, Duration>,
    /// Datagrams on a delayed link: when each arrives, at which peer (by
    /// index) and whether towards the SFU.
    in_flight: Vec<(Instant, usize, bool, Vec<u8>)>,
    /// A participant the SFU's next video packet to is lost on the way
    /// (its retransmission is not).
    lose_next_forwarded: Option<ParticipantId>,
    /// A publisher whose packet is lost on the way in (and the SSRC it was
    /// lost on, once it was), and the subscriber the first copy of its
    /// repair is lost on the way to.
    repair_lost_on_the_way_out: Option<(ParticipantId, Option<u32>, ParticipantId)>,
}

impl Network {
    /// `peers` participants admitted to one meeting at once, sending what
    /// their entry says, over a network losing what `loss` says.
    pub fn new(peers: &[Sends], loss: Loss) -> Self {
        let start = Instant::now();
        let config = SfuConfig::new(SFU.parse().unwrap(), 2500);
        let sfu = Sfu::new(config, start);
        let mut net = Self {
            sfu,
            peers: Vec::new(),
            start,
            now: start,
            clock: FrameClock::starting_at(start, 0),
            loss,
            rng: 0x2545_f491_4f6c_dd1d,
            handshake_lost: HashSet::new(),
            quality: Vec::new(),
            cut: HashSet::new(),
            lose_next_offer_to: HashSet::new(),
            lose_next_packet: None,
            repairs_lost: None,
            delay: HashMap::new(),
            in_flight: Vec::new(),
            lose_next_forwarded: None,
            repair_lost_on_the_way_out: None,
        };
        for (n, sends) in peers.iter().enumerate() {
            let id = n as u64 + 1;
            net.join(id, *sends, address_of(id));
        }
        net
    }

    /// Whether `datagram` between `peer` and the SFU is lost.
    fn lost(&mut self, peer: u64, to_sfu: bool, datagram: &[u8]) -> bool {
        if self.cut.contains(&peer) {
            return true;
        }
        // A camera frame's packet is the only RTP datagram this large.
        if !to_sfu && self.lose_next_forwarded == Some(peer) && rtp_ssrc(datagram).is_some() && datagram.len() > 1000 {
            self.lose_next_forwarded = None;
            return true;
        }
        if to_sfu {
            if let Some(ssrc) = rtp_ssrc(datagram) {
                if let Some((_, for_good)) = self.lose_next_packet.filter(|(p, _)| *p == peer) {
                    self.lose_next_packet = None;
                    self.repairs_lost = for_good.then_some((peer, ssrc));
                    if let Some((publisher, lost, _)) = &mut self.repair_lost_on_the_way_out {
                        if *publisher == peer {
                            *lost = Some(ssrc);
                        }
                    }
                    return true;
                }
                // Retransmissions come on their own SSRC (RFC 4588).
                if self.repairs_lost.is_some_and(|(p, lost)| p == peer && ssrc != lost) {
                    return true;
                }
            }
        }
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

    /// Loses the next video packet the SFU sends `peer`; its
    /// retransmission, asked for by `peer`, goes through.
    pub fn lose_next_forwarded_packet(&mut self, peer: ParticipantId) {
        self.lose_next_forwarded = Some(peer);
    }

    /// Loses `peer`'s next RTP packet to the SFU; with `for_good`, every
    /// retransmission of it too.
    pub fn lose_next_packet(&mut self, peer: ParticipantId, for_good: bool) {
        self.lose_next_packet = Some((peer, for_good));
    }

    /// Loses `publisher`'s next RTP packet to the SFU, and the first video
    /// packet the SFU sends `subscriber` once the publisher's repair of it
    /// came (its retransmission on the way in, forwarded on the way out).
    pub fn lose_next_packet_and_its_repair_on_the_way_to(
        &mut self,
        publisher: ParticipantId,
        subscriber: ParticipantId,
    ) {
        self.lose_next_packet(publisher, false);
        self.repair_lost_on_the_way_out = Some((publisher, None, subscriber));
    }

    /// Participant `id` joins the meeting now, sending from `addr`: the
    /// meeting admits it, and its session's first offer reaches the SFU.
    pub fn join(&mut self, id: u64, sends: Sends, addr: SocketAddr) {
        let rights = Rights { microphone: true, camera: true, screen: false };
        self.sfu.handle_command(self.now, Command::Admit { meeting: MeetingKey::from("m"), participant: id, rights });
        let session = MediaSession::new(self.now, id, sends.options(), addr, self.clock).expect("a media session");
        self.peers.push(Peer { id, sends, addr, session, inbox: VecDeque::new(), last_check: None });
        let i = self.peers.len() - 1;
        self.carry_out(i);
    }

    /// Participant `id`'s app closes its peer connection and opens a new
    /// one on another port, on the same seat (no new join): the new
    /// session's first offer reaches the SFU.
    pub fn new_peer_connection(&mut self, id: u64, addr: SocketAddr) {
        let i = self.peers.iter().position(|p| p.id == id).expect("a peer of that id");
        let options = self.peers[i].sends.options();
        let session = MediaSession::new(self.now, id, options, addr, self.clock).expect("a media session");
        self.peers[i] =
            Peer { id, sends: self.peers[i].sends, addr, session, inbox: VecDeque::new(), last_check: None };
        self.carry_out(i);
    }

    /// Participant `id`'s session in the SFU fails, as an error inside
    /// str0m would make it.
    pub fn fail_session(&mut self, id: u64) {
        self.sfu.handle_command(self.now, Command::Fail { meeting: MeetingKey::from("m"), participant: id });
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
        self.peers.iter().all(Peer::connected)
    }

    /// One millisecond: sessions take what reached them and the time, and
    /// send what they queued; the SFU does the same; signaling is instant.
    pub fn step(&mut self) {
        self.now += Duration::from_millis(1);
        let (now, sfu_addr) = (self.now, SFU.parse::<SocketAddr>().unwrap());
        let arrived: Vec<_> = self.in_flight.extract_if(.., |(at, ..)| *at <= now).collect();
        for (_, peer, to_sfu, datagram) in arrived {
            self.arrive(peer, to_sfu, datagram);
        }
        for i in 0..self.peers.len() {
            let peer = &mut self.peers[i];
            while let Some(datagram) = peer.inbox.pop_front() {
                peer.session.handle_datagram(now, sfu_addr, peer.addr, &datagram);
            }
            if peer.session.poll_timeout() <= now {
                peer.session.handle_timeout(now);
            }
            self.carry_out(i);
        }
        if self.sfu.next_deadline() <= now {
            self.sfu.handle_timeout(now);
        }
        while let Some(t) = self.sfu.poll_transmit() {
            let Some(i) = self.peers.iter().position(|p| p.addr == t.destination) else { continue };
            if !self.lost(self.peers[i].id, false, &t.contents) {
                self.travel(i, false, t.contents.to_vec());
            }
        }
        while let Some(event) = self.sfu.poll_event() {
            if let SfuEvent::Quality { participant, view, .. } = event {
                self.quality.push((participant, view));
                continue;
            }
            let SfuEvent::Signal { participant, message, .. } = event else { continue };
            if matches!(message, ServerMessage::MediaOffer { .. }) && self.lose_next_offer_to.remove(&participant) {
                continue;
            }
            let Some(i) = self.peers.iter().position(|p| p.id == participant) else { continue };
            self.peers[i].session.handle_signal(now, message);
            self.carry_out(i);
        }
    }

    /// A datagram between peer `i` and the SFU sets off: it arrives now,
    /// or after the peer's link's delay.
    fn travel(&mut self, i: usize, to_sfu: bool, datagram: Vec<u8>) {
        match self.delay.get(&self.peers[i].id) {
            Some(delay) => self.in_flight.push((self.now + *delay, i, to_sfu, datagram)),
            None => self.arrive(i, to_sfu, datagram),
        }
    }

    fn arrive(&mut self, i: usize, to_sfu: bool, datagram: Vec<u8>) {
        if let Some((publisher, Some(lost), subscriber)) = self.repair_lost_on_the_way_out {
            // Retransmissions come on their own SSRC (RFC 4588); a camera
            // frame's packet is the only RTP datagram this large.
            let repair = rtp_ssrc(&datagram).is_some_and(|ssrc| ssrc != lost) && datagram.len() > 1000;
            if to_sfu && self.peers[i].id == publisher && repair {
                self.repair_lost_on_the_way_out = None;
                self.lose_next_forwarded = Some(subscriber);
            }
        }
        if to_sfu {
            self.sfu.handle_datagram(self.now, self.peers[i].addr, &datagram);
        } else {
            self.peers[i].inbox.push_back(datagram);
        }
    }

    /// What peer `i`'s session queued: its datagrams onto the network
    /// towards the SFU, its offers and answers to the SFU as the meeting
    /// would pass them on (its other messages have no one to hear them).
    fn carry_out(&mut self, i: usize) {
        let now = self.now;
        let id = self.peers[i].id;
        let datagrams: Vec<Vec<u8>> =
            std::iter::from_fn(|| self.peers[i].session.poll_transmit()).map(|datagram| datagram.contents).collect();
        if let Some(check) = datagrams.iter().rfind(|d| d.first().is_some_and(|b| *b < 4)) {
            self.peers[i].last_check = Some(check.clone());
        }
        for datagram in datagrams {
            if !self.lost(id, true, &datagram) {
                self.travel(i, true, datagram);
            }
        }
        let meeting = || MeetingKey::from("m");
        while let Some(message) = self.peers[i].session.poll_signal() {
            let command = match message {
                ClientMessage::MediaOffer { sdp, tracks } => {
                    Command::Offer { meeting: meeting(), participant: id, sdp, tracks }
                }
                ClientMessage::MediaAnswer { sdp } => Command::Answer { meeting: meeting(), participant: id, sdp },
                _ => continue,
            };
            self.sfu.handle_command(now, command);
        }
    }
}

/// The SSRC of an RTP packet (SRTP leaves the header in the clear); `None`
/// for anything else. RTP and RTCP share the first byte's range (RFC
/// 7983); RTCP's packet types, 192 to 223, fill the second byte.
fn rtp_ssrc(datagram: &[u8]) -> Option<u32> {
    let rtp = datagram.len() >= 12 && (128..=191).contains(&datagram[0]) && !(192..=223).contains(&datagram[1]);
    rtp.then(|| u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]))
}

/// Where participant `id` sends from unless a test says otherwise.
pub fn address_of(id: u64) -> SocketAddr {
    format!("10.0.1.{}:{}", id % 250 + 1, 6000 + id).parse().unwrap()
}

/// Camera frames `subscriber` received from `publisher`.
pub fn camera_frames(subscriber: &Peer, publisher: ParticipantId) -> u64 {
    subscriber.stats().frames_from(publisher, MediaSource::Camera)
}
