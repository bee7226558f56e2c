//! One participant's media session: its own `Rtc`, the tracks it publishes,
//! the tracks forwarded to it, and the state of its SDP negotiation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use conclave_proto::media::{ForwardedTrack, MediaSource, Quality, Tile, VideoCodec};
use conclave_proto::signal::ParticipantId;
use str0m::change::SdpPendingOffer;
use str0m::format::PayloadParams;
use str0m::media::{Direction, MediaKind, Mid, Pt, Rid};
use str0m::rtp::Ssrc;
use str0m::Rtc;

use crate::holes::Holes;
use crate::layers::{BitrateMeter, Upgrades};
use crate::repair::UplinkRepair;
use crate::rewrite::StreamRewriter;
use crate::svc::{SvcMeters, SvcSelector};
use crate::MeetingKey;

/// What the room lets this participant send (see `conclave_room::MediaRights`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rights {
    pub microphone: bool,
    pub camera: bool,
    pub screen: bool,
}

impl Rights {
    pub fn allows(&self, source: MediaSource) -> bool {
        match source {
            MediaSource::Microphone => self.microphone,
            MediaSource::Camera => self.camera,
            MediaSource::Screen => self.screen,
        }
    }
}

/// A track the participant sends to the server.
#[derive(Debug)]
pub(crate) struct Published {
    pub source: MediaSource,
    pub kind: MediaKind,
    /// Simulcast layers, lowest first; empty without simulcast.
    pub rids: Vec<Rid>,
    pub meters: HashMap<Option<Rid>, BitrateMeter>,
    /// The bitrate of each SVC layer, when the stream codes several.
    pub svc: SvcMeters,
    pub last_keyframe_request: HashMap<Option<Rid>, Instant>,
    /// Each video layer's packets that never arrived.
    pub holes: HashMap<Option<Rid>, Holes>,
    /// The layers last reported to the sender as needed.
    pub announced: Option<Vec<Rid>>,
    /// How many of its top layers are not forwarded, their lost packets
    /// being beyond its link's repair (`crate::repair`).
    pub held_back: usize,
}

impl Published {
    /// Measured bitrate per layer, lowest first, with a floor so a layer
    /// not yet measured is not taken as free.
    pub fn layer_bps(&mut self, now: Instant) -> Vec<u64> {
        let layers: Vec<Option<Rid>> =
            if self.rids.is_empty() { vec![None] } else { self.rids.iter().copied().map(Some).collect() };
        let mut out = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            let measured = self.meters.get_mut(layer).map_or(0, |m| m.bps(now));
            let floor = LAYER_FLOOR_BPS[i.min(2)];
            out.push(if measured == 0 { floor } else { measured });
        }
        out
    }

    /// How many of its layers, from the lowest, may be forwarded: on a
    /// lossy link (`window_needed`, `None` when the link is not), those
    /// that keep a lost packet in str0m's window that long
    /// (`crate::repair`), and at least the lowest. A layer is taken at its
    /// measured packet rate, never below that of its floor bitrate: a
    /// layer its publisher's bandwidth estimate starves (a 720p layer
    /// barely started, or paused after a few slow seconds) measures a
    /// fraction of what it sends once the estimate lets it go, and a
    /// subscriber switched to it then freezes for the keyframe, and again
    /// for the switch back a few seconds later when its rate is measured.
    pub fn repairable_layers(&mut self, now: Instant, window_needed: Option<Duration>) -> usize {
        let layers = self.rids.len().max(1);
        let Some(window) = window_needed else {
            self.held_back = 0;
            return layers;
        };
        let mut repairable = 1;
        for (i, rid) in self.rids.iter().enumerate().skip(1) {
            let floor_pps = LAYER_FLOOR_BPS[i.min(2)] / 8 / TYPICAL_PACKET_BYTES;
            let measured = self.meters.get_mut(&Some(*rid)).and_then(|m| m.sending_pps(now));
            let pps = measured.unwrap_or(0).max(floor_pps);
            if !crate::repair::window_lasts(pps, window) {
                break;
            }
            repairable = i + 1;
        }
        self.held_back = layers - repairable;
        repairable
    }
}

/// What a simulcast layer is assumed to send until it is measured, lowest
/// first (bits per second).
const LAYER_FLOOR_BPS: [u64; 3] = [150_000, 500_000, 1_500_000];
/// The size of a full video packet, for a layer's packet rate from its bitrate.
const TYPICAL_PACKET_BYTES: u64 = 1100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutState {
    /// Needs an m-line in the next offer.
    ToOpen,
    Negotiating(Mid),
    Open(Mid),
    /// The source is gone; stop the m-line in the next offer.
    ToStop(Mid),
    NegotiatingStop(Mid),
}

/// A track forwarded to this participant from another one.
#[derive(Debug)]
pub(crate) struct Forward {
    pub owner: ParticipantId,
    pub source_mid: Mid,
    pub source: MediaSource,
    pub kind: MediaKind,
    pub state: OutState,
    /// The layer being forwarded now; `None` until a keyframe starts it.
    pub current: Option<Option<Rid>>,
    /// The layer the allocation chose; switched to at its next keyframe.
    pub target: Option<Rid>,
    /// The layers of an SVC stream the subscriber gets, and the ones the
    /// allocation chose (within whichever simulcast layer is forwarded).
    pub svc: SvcSelector,
    /// When the allocation may step this video up again.
    pub upgrades: Upgrades,
    /// When the subscriber last got a packet of this video, or began to
    /// wait for one (at its first packet, or after a pause).
    pub progressed: Option<Instant>,
    /// The subscriber's stream for this track, once its m-line is open.
    pub out: Option<OutStream>,
}

/// Where a forward's packets go: the subscriber's sending stream, the
/// numbering that keeps it one continuous stream across layer switches
/// and pauses, and the subscriber's payload type for the publisher's.
#[derive(Debug)]
pub(crate) struct OutStream {
    pub ssrc: Ssrc,
    pub rewriter: StreamRewriter,
    /// The publisher's payload type last seen, and the subscriber's for it.
    pt: Option<(Pt, Pt)>,
}

impl OutStream {
    /// The subscriber's payload type for a packet the publisher sent as
    /// `params`; `None` when the subscriber did not negotiate that codec.
    pub fn payload_type(&mut self, params: &PayloadParams, subscriber: &Rtc) -> Option<Pt> {
        match self.pt {
            Some((from, to)) if from == params.pt() => Some(to),
            _ => {
                let to = subscriber.codec_config().match_params(*params)?.pt();
                self.pt = Some((params.pt(), to));
                Some(to)
            }
        }
    }
}

/// How long a subscriber goes without a packet of a video before any
/// layer's keyframe may restart it: long enough for the target's keyframe
/// to answer a request, short enough that a frozen picture is a blip.
pub(crate) const LAYER_STALL: Duration = Duration::from_secs(1);

/// What to do with one packet of a forwarded video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VideoVerdict {
    Forward,
    /// Not this subscriber's layer; if `keyframe_for` is set, the layer it
    /// waits for needs a keyframe to start from.
    Skip {
        keyframe_for: Option<Option<Rid>>,
    },
}

impl Forward {
    /// Still carrying (or about to carry) the source's media; a stopping
    /// forward only waits for its m-line to close.
    pub fn is_live(&self) -> bool {
        matches!(self.state, OutState::ToOpen | OutState::Negotiating(_) | OutState::Open(_))
    }

    /// Carries `owner`'s track `source_mid`. A seat taken over by a new
    /// device publishes under the same participant and often the same mids
    /// while the old device's forwards are still closing, so those never do.
    pub fn carries(&self, owner: ParticipantId, source_mid: Mid) -> bool {
        self.is_live() && self.owner == owner && self.source_mid == source_mid
    }

    /// The video went off the subscriber's screen: it restarts at a
    /// keyframe, continuing the outgoing numbering without a hole.
    pub fn pause(&mut self) {
        self.current = None;
        self.progressed = None;
        self.svc.reset();
        if let Some(out) = &mut self.out {
            out.rewriter.pause();
        }
    }

    pub fn mid(&self) -> Option<Mid> {
        match self.state {
            OutState::ToOpen => None,
            OutState::Negotiating(m) | OutState::Open(m) | OutState::ToStop(m) | OutState::NegotiatingStop(m) => {
                Some(m)
            }
        }
    }

    /// Decides on a packet of layer `rid` (`keyframe`: the first packet of
    /// a keyframe): the subscriber moves to its target at the target's next
    /// keyframe, and keeps getting the layer it has until then. A publisher
    /// may stop a layer on its own (a browser drops simulcast layers when
    /// its camera's picture gets small or its CPU busy): once nothing has
    /// reached the subscriber for [`LAYER_STALL`], any layer's keyframe
    /// restarts the picture while the target is still waited for.
    pub fn admit_video(&mut self, rid: Option<Rid>, keyframe: bool, now: Instant) -> VideoVerdict {
        let since = *self.progressed.get_or_insert(now);
        let stalled = now.saturating_duration_since(since) >= LAYER_STALL;
        if keyframe && (rid == self.target || stalled) {
            self.current = Some(rid);
        }
        if self.current == Some(rid) {
            self.progressed = Some(now);
            return VideoVerdict::Forward;
        }
        let waiting = self.current != Some(self.target);
        VideoVerdict::Skip { keyframe_for: waiting.then_some(self.target) }
    }

    /// The layers this forward needs the publisher to send: its target, and
    /// during a switch the layer it still forwards, or the subscriber's
    /// picture would freeze until the target's keyframe came.
    pub fn layers_needed(&self) -> impl Iterator<Item = Rid> {
        let current = self.current.flatten().filter(|c| Some(*c) != self.target);
        self.target.into_iter().chain(current)
    }
}

pub(crate) struct Peer {
    pub meeting: MeetingKey,
    pub participant: ParticipantId,
    pub rtc: Rtc,
    pub ufrag: String,
    pub rights: Rights,
    pub published: HashMap<Mid, Published>,
    /// Sources named in the participant's offers, by mid, until the track appears.
    pub declared: HashMap<String, MediaSource>,
    pub forwards: Vec<Forward>,
    pub pending: Option<SdpPendingOffer>,
    /// When the outstanding offer was sent.
    pub offered_at: Option<Instant>,
    /// The participant's first offer was accepted: the server may offer.
    pub ready: bool,
    /// The videos the participant has on screen; `None` until it says.
    pub tiles: Option<Vec<Tile>>,
    /// The latest egress bandwidth estimate, bits per second.
    pub estimate: Option<u64>,
    /// The time of this peer's entry in the timer heap.
    pub scheduled: Option<Instant>,
    /// Packets were written to it since it was last polled.
    pub unsent: bool,
    /// The addresses its ICE checks came from (one, unless its network
    /// changed): where its datagrams are routed from.
    pub addrs: Vec<crate::sfu::Route>,
    /// The DTLS fingerprint of the participant's peer connection, once
    /// negotiated: an offer naming another comes from a new one.
    pub remote_fingerprint: Option<String>,
    /// The media sections negotiated so far, by mid, in order: a later
    /// offer may add sections but never drop or reorder these (JSEP).
    pub negotiated_mids: Vec<String>,
    /// Payload bytes forwarded to it since the SFU last reported quality.
    pub forwarded_bytes: u64,
    /// When a packet of this session last arrived.
    pub last_heard: Option<Instant>,
    /// The video codecs its descriptions say it receives; `None` until one does.
    pub decodes: Option<Vec<VideoCodec>>,
    /// The codec it was last told to send video in (`None`: the default, VP8).
    pub told_codec: Option<VideoCodec>,
    /// How its link repairs the losses of what it publishes.
    pub uplink: UplinkRepair,
}

impl Peer {
    /// The quality this participant wants `owner`'s `source` at, or `None`
    /// when it is not on its screen. Before it says, everything is wanted.
    pub fn wants(&self, owner: ParticipantId, source: MediaSource) -> Option<Quality> {
        if source == MediaSource::Microphone {
            return Some(Quality::High);
        }
        match &self.tiles {
            None => Some(Quality::High),
            Some(tiles) => {
                tiles.iter().filter(|t| t.participant_id == owner && t.source == source).map(|t| t.quality).max()
            }
        }
    }

    /// The tracks this participant receives, for the `media_offer` message.
    pub fn forwarded_tracks(&self) -> Vec<ForwardedTrack> {
        self.forwards
            .iter()
            .filter_map(|f| match f.state {
                OutState::Negotiating(m) | OutState::Open(m) => {
                    Some(ForwardedTrack { mid: m.to_string(), participant_id: f.owner, source: f.source })
                }
                _ => None,
            })
            .collect()
    }

    /// The forward carrying `owner`'s track `source_mid`, if any.
    pub fn live_forward_mut(&mut self, owner: ParticipantId, source_mid: Mid) -> Option<&mut Forward> {
        self.forwards.iter_mut().find(|f| f.carries(owner, source_mid))
    }

    /// Starts forwarding every track `owner` publishes (audio always; what
    /// video is actually sent follows the subscription).
    pub fn add_forward(&mut self, owner: ParticipantId, source_mid: Mid, published: &Published) {
        if self.live_forward_mut(owner, source_mid).is_some() {
            return;
        }
        self.forwards.push(Forward {
            owner,
            source_mid,
            source: published.source,
            kind: published.kind,
            state: OutState::ToOpen,
            current: None,
            target: published.rids.last().copied(),
            upgrades: Upgrades::default(),
            svc: SvcSelector::default(),
            progressed: None,
            out: None,
        });
    }

    /// Stops every track forwarded from `owner` (it left, or stopped sending them).
    pub fn drop_forwards_from(&mut self, owner: ParticipantId, only_mid: Option<Mid>) {
        self.forwards.retain_mut(|f| {
            if f.owner != owner || only_mid.is_some_and(|m| m != f.source_mid) {
                return true;
            }
            match f.state {
                OutState::ToOpen => false,
                OutState::Negotiating(m) | OutState::Open(m) => {
                    f.state = OutState::ToStop(m);
                    true
                }
                OutState::ToStop(_) | OutState::NegotiatingStop(_) => true,
            }
        });
    }

    /// Builds and sends an offer for pending track changes, if any and if
    /// no offer is outstanding. Returns the offer's SDP.
    pub fn offer_changes(&mut self) -> Option<String> {
        if !self.ready || self.pending.is_some() {
            return None;
        }
        // Called on every poll: the common case must cost nothing.
        if !self.forwards.iter().any(|f| matches!(f.state, OutState::ToOpen | OutState::ToStop(_))) {
            return None;
        }
        let Peer { rtc, forwards, .. } = self;
        let mut api = rtc.sdp_api();
        for f in forwards.iter_mut() {
            match f.state {
                OutState::ToOpen => {
                    let stream = format!("p{}", f.owner);
                    let track = format!("{}-{}", f.source.as_str(), f.source_mid);
                    // str0m never gives two sections of one offer the same mid.
                    let mid = api.add_media(f.kind, Direction::SendOnly, Some(stream), Some(track), None);
                    f.state = OutState::Negotiating(mid);
                }
                OutState::ToStop(m) => {
                    api.stop_media(m);
                    f.state = OutState::NegotiatingStop(m);
                }
                _ => {}
            }
        }
        if !api.has_changes() {
            return None;
        }
        let (offer, pending) = api.apply()?;
        self.pending = Some(pending);
        Some(offer.to_sdp_string())
    }

    /// Withdraws the outstanding offer if it has waited `patience` for an
    /// answer by `now` (lost on the way, or the app never answered): its
    /// changes are offered again, and the participant's own offers are
    /// answered meanwhile. Whether it withdrew one.
    pub fn withdraw_unanswered_offer(&mut self, now: Instant, patience: Duration) -> bool {
        let overdue = self.offered_at.is_some_and(|at| now.saturating_duration_since(at) >= patience);
        if self.pending.is_none() || !overdue {
            return false;
        }
        self.pending = None;
        self.offered_at = None;
        self.settle_offer(false);
        true
    }

    /// The participant's answer settled the outstanding offer.
    pub fn settle_offer(&mut self, accepted: bool) {
        for f in &mut self.forwards {
            f.state = match (f.state, accepted) {
                (OutState::Negotiating(m), true) => {
                    f.out = open_stream(&mut self.rtc, m, f.kind);
                    OutState::Open(m)
                }
                (OutState::Negotiating(_), false) => OutState::ToOpen,
                (OutState::NegotiatingStop(m), false) => OutState::ToStop(m),
                (state, _) => state,
            };
        }
        if accepted {
            self.forwards.retain(|f| !matches!(f.state, OutState::NegotiatingStop(_)));
        }
    }
}

/// The mids of a description's media sections, in order.
pub(crate) fn mids(sdp: &str) -> Vec<String> {
    sdp.lines().filter_map(|line| line.trim_end().strip_prefix("a=mid:")).map(str::to_owned).collect()
}

/// How long a forwarded packet is kept for a subscriber's NACK. A lost
/// packet of a frame that later frames refer to stalls the subscriber's
/// video until it comes, however late, or until a keyframe, which Chromium
/// asks for only after 3 s; on a link that loses a first resend too and
/// takes 400 ms a round trip, the third request comes more than a second
/// after the packet. Two seconds cover four requests there.
const RESEND_WINDOW: Duration = Duration::from_secs(2);
/// Packets kept for resends per forwarded stream: two seconds of a
/// 1.5 Mbit/s camera (str0m's default keeps 1024 for 3 s).
const RESEND_PACKETS: usize = 512;
/// Queued resends are dropped once they pass this share of what a stream
/// sent over the last second, so a link is not buried in its own repairs.
/// Not lower: a link losing 10 % spends 10 to 20 % on resends (a request
/// repeated while its resend is on the way is answered twice), and on a
/// slow layer of 20 packets a second a few resends of a keyframe pass 15 %
/// (str0m's default), which dropped the very repairs a stalled picture
/// waited for.
const RESEND_SHARE_CAP: Option<f32> = Some(0.5);

/// The subscriber's sending stream for the m-line `mid` just opened.
///
/// Its resend cache holds only what a NACK can still use. Forwarded media
/// is not paced: a packet goes out in the wake-up that received it, as
/// LiveKit's SFU forwards, and the bandwidth estimate chooses simulcast
/// layers instead of holding packets back (a paced subscriber's first
/// seconds queued behind an estimate still ramping up).
fn open_stream(rtc: &mut Rtc, mid: Mid, kind: MediaKind) -> Option<OutStream> {
    let mut api = rtc.direct_api();
    let stream = api.stream_tx_by_mid(mid, None)?;
    stream.set_rtx_cache(RESEND_PACKETS, RESEND_WINDOW, RESEND_SHARE_CAP);
    stream.set_unpaced(true);
    let clock_hz = match kind {
        MediaKind::Audio => 48_000,
        MediaKind::Video => 90_000,
    };
    Some(OutStream { ssrc: stream.ssrc(), rewriter: StreamRewriter::new(clock_hz), pt: None })
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::change::SdpOffer;

    /// A subscriber whose app has published its microphone, and that app.
    fn subscriber(now: Instant) -> (Peer, Rtc) {
        subscriber_with(Rtc::builder().set_crypto_provider(conclave_dtls::crypto_provider()).build(now), now)
    }

    /// A subscriber whose app is `app`, once it has published its microphone.
    fn subscriber_with(mut app: Rtc, now: Instant) -> (Peer, Rtc) {
        let mut changes = app.sdp_api();
        changes.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, pending) = changes.apply().expect("an offer");
        let mut rtc = crate::sfu::session_config().build(now);
        let answer = rtc.sdp_api().accept_offer(offer).unwrap();
        app.sdp_api().accept_answer(pending, answer).unwrap();
        let peer = Peer {
            meeting: MeetingKey::from("m"),
            participant: 1,
            rtc,
            ufrag: String::new(),
            rights: Rights::default(),
            published: HashMap::new(),
            declared: HashMap::new(),
            forwards: Vec::new(),
            pending: None,
            offered_at: None,
            ready: true,
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
        (peer, app)
    }

    fn camera() -> Published {
        Published {
            source: MediaSource::Camera,
            kind: MediaKind::Video,
            rids: Vec::new(),
            meters: HashMap::new(),
            last_keyframe_request: HashMap::new(),
            holes: HashMap::new(),
            svc: SvcMeters::default(),
            announced: None,
            held_back: 0,
        }
    }

    /// The subscriber's app answers the server's outstanding `offer`.
    fn answer_offer(peer: &mut Peer, app: &mut Rtc, offer: &str) {
        let answer = app.sdp_api().accept_offer(SdpOffer::from_sdp_string(offer).unwrap()).unwrap();
        let pending = peer.pending.take().expect("an outstanding offer");
        peer.rtc.sdp_api().accept_answer(pending, answer).unwrap();
        peer.settle_offer(true);
    }

    /// The server offers its pending changes and the subscriber's app answers.
    fn answer(peer: &mut Peer, app: &mut Rtc) {
        let offer = peer.offer_changes().expect("changes to offer");
        answer_offer(peer, app, &offer);
    }

    #[test]
    fn a_seat_taken_over_mid_negotiation_is_forwarded_again() {
        let now = Instant::now();
        let (mut peer, mut app) = subscriber(now);
        let mid = Mid::from("1");
        peer.add_forward(2, mid, &camera());
        answer(&mut peer, &mut app);
        let [Forward { state: OutState::Open(mid_out), out: Some(ref out), .. }] = peer.forwards[..] else {
            panic!("one open forward with its stream")
        };
        let ssrc = peer.rtc.direct_api().stream_tx_by_mid(mid_out, None).map(|s| s.ssrc());
        assert_eq!(ssrc, Some(out.ssrc), "the forward writes to its m-line's stream");

        // Participant 2's device is replaced: the old forward starts closing,
        // and before the subscriber has answered, the new device publishes
        // under the same participant and the same mid.
        peer.drop_forwards_from(2, None);
        let offer = peer.offer_changes().expect("the stop is offered");
        peer.add_forward(2, mid, &camera());
        assert!(peer.live_forward_mut(2, mid).is_some(), "the new device's track is forwarded");

        answer_offer(&mut peer, &mut app, &offer);
        answer(&mut peer, &mut app);
        let tracks = peer.forwarded_tracks();
        assert_eq!(tracks.len(), 1, "{tracks:?}");
        assert_eq!((tracks[0].participant_id, tracks[0].source), (2, MediaSource::Camera));
        assert!(matches!(peer.live_forward_mut(2, mid).map(|f| f.state), Some(OutState::Open(_))));
    }

    /// A subscriber's app that takes no video answers a camera's section
    /// closed; every later offer still names that section, which must carry
    /// a format, or Chromium refuses the offer and every change to the
    /// participant's media after it waits forever (seen after an outage,
    /// when a participant's new peer connection was offered the others'
    /// tracks again).
    #[test]
    fn offers_after_a_rejected_section_keep_to_the_grammar() {
        let now = Instant::now();
        // An app that takes no video: it answers the camera's section closed.
        let (mut peer, mut app) = subscriber_with(
            Rtc::builder()
                .set_crypto_provider(conclave_dtls::crypto_provider())
                .clear_codecs()
                .enable_opus(true, false)
                .build(now),
            now,
        );
        peer.add_forward(2, Mid::from("1"), &camera());
        let first = peer.offer_changes().expect("the camera is offered");
        answer_offer(&mut peer, &mut app, &first);
        peer.add_forward(
            2,
            Mid::from("2"),
            &Published { source: MediaSource::Microphone, kind: MediaKind::Audio, ..camera() },
        );
        let next = peer.offer_changes().expect("the microphone is offered");
        crate::sdp_grammar::check(&next).unwrap_or_else(|e| panic!("{e}\n{next}"));
    }

    fn forward_to(target: &str) -> Forward {
        Forward {
            owner: 2,
            source_mid: Mid::from("1"),
            source: MediaSource::Camera,
            kind: MediaKind::Video,
            state: OutState::Open(Mid::from("5")),
            current: None,
            target: Some(Rid::from(target)),
            upgrades: Upgrades::default(),
            svc: SvcSelector::default(),
            progressed: None,
            out: None,
        }
    }

    #[test]
    fn a_subscriber_keeps_its_layer_until_the_targets_keyframe() {
        let (q, h) = (Some(Rid::from("q")), Some(Rid::from("h")));
        let now = Instant::now();
        let mut fwd = forward_to("h");
        let skip_for_h = VideoVerdict::Skip { keyframe_for: Some(h) };
        assert_eq!(fwd.admit_video(q, true, now), skip_for_h, "not the target");
        assert_eq!(fwd.admit_video(h, false, now), skip_for_h, "nothing to start from yet");
        assert_eq!(fwd.admit_video(h, true, now), VideoVerdict::Forward);
        assert_eq!(fwd.current, Some(h));
        // Moving down: the current layer flows until the new one's keyframe.
        fwd.target = q;
        let skip_for_q = VideoVerdict::Skip { keyframe_for: Some(q) };
        assert_eq!(fwd.admit_video(h, false, now), VideoVerdict::Forward);
        assert_eq!(fwd.admit_video(q, false, now), skip_for_q);
        assert_eq!(fwd.admit_video(q, true, now), VideoVerdict::Forward);
        assert_eq!(fwd.admit_video(h, false, now), VideoVerdict::Skip { keyframe_for: None }, "switched");
    }

    #[test]
    fn a_layer_the_publisher_stopped_gives_way_to_any_keyframe() {
        let (q, h, f) = (Some(Rid::from("q")), Some(Rid::from("h")), Some(Rid::from("f")));
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut fwd = forward_to("h");
        assert_eq!(fwd.admit_video(h, true, at(0)), VideoVerdict::Forward);
        fwd.target = f;
        // h keeps coming: q's keyframes are not taken.
        assert_eq!(fwd.admit_video(h, false, at(900)), VideoVerdict::Forward);
        assert!(matches!(fwd.admit_video(q, true, at(1500)), VideoVerdict::Skip { .. }));
        // h stops (the browser dropped it) and f never starts: after a
        // second of nothing, q's next keyframe restarts the picture.
        assert!(matches!(fwd.admit_video(q, true, at(1800)), VideoVerdict::Skip { .. }));
        assert_eq!(fwd.admit_video(q, true, at(2000)), VideoVerdict::Forward);
        assert_eq!(fwd.current, Some(q));
        assert_eq!(fwd.admit_video(q, false, at(2030)), VideoVerdict::Forward);
        // f's keyframe still moves it to the target.
        assert_eq!(fwd.admit_video(f, true, at(2100)), VideoVerdict::Forward);
        assert_eq!(fwd.current, Some(f));
    }

    #[test]
    fn a_new_subscriber_waits_a_while_for_its_targets_keyframe() {
        let q = Some(Rid::from("q"));
        let start = Instant::now();
        let mut fwd = forward_to("f");
        assert!(matches!(fwd.admit_video(q, true, start), VideoVerdict::Skip { .. }));
        assert!(matches!(fwd.admit_video(q, true, start + Duration::from_millis(900)), VideoVerdict::Skip { .. }));
        assert_eq!(fwd.admit_video(q, true, start + LAYER_STALL), VideoVerdict::Forward, "the target never came");
    }

    #[test]
    fn the_layer_being_watched_stays_needed_until_the_switch_is_done() {
        let mut fwd = forward_to("f");
        assert_eq!(fwd.layers_needed().collect::<Vec<_>>(), [Rid::from("f")]);
        fwd.current = Some(Some(Rid::from("f")));
        fwd.target = Some(Rid::from("q"));
        assert_eq!(fwd.layers_needed().collect::<Vec<_>>(), [Rid::from("q"), Rid::from("f")]);
        fwd.current = Some(Some(Rid::from("q")));
        assert_eq!(fwd.layers_needed().collect::<Vec<_>>(), [Rid::from("q")]);
    }

    /// A simulcast camera whose layers each send `pps` packets a second
    /// over the second before `now`.
    fn simulcast_sending(pps: [u64; 3], start: Instant, now: Instant) -> Published {
        let mut camera = camera();
        camera.rids = ["q", "h", "f"].map(Rid::from).to_vec();
        for (rid, pps) in camera.rids.clone().into_iter().zip(pps) {
            let mut meter = BitrateMeter::new(start);
            for i in 0..pps {
                meter.record(1100, start + Duration::from_millis(1000 * i / pps));
            }
            meter.bps(now);
            camera.meters.insert(Some(rid), meter);
        }
        camera
    }

    #[test]
    fn on_a_lossy_link_the_layers_that_pass_their_window_too_soon_are_held_back() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        // Repairs take 1.2 s: a window of 100 packets lasts that long up to
        // 83 packets a second.
        let slow = Some(Duration::from_millis(1200));
        let mut camera = simulcast_sending([20, 60, 120], start, at(1000));
        assert_eq!(camera.repairable_layers(at(1000), slow), 2, "f passes its window in 0.8 s");
        assert_eq!(camera.held_back, 1);
        // The link stops losing packets (no window is needed): every layer.
        assert_eq!(camera.repairable_layers(at(1000), None), 3);
        assert_eq!(camera.held_back, 0);
        // Never below the lowest layer.
        let mut fast = simulcast_sending([120, 120, 120], start, at(1000));
        assert_eq!(fast.repairable_layers(at(1000), slow), 1);
        assert_eq!(fast.held_back, 2);
    }

    #[test]
    fn a_layer_starved_by_its_publishers_estimate_is_judged_at_the_rate_it_will_send() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let slow = Some(Duration::from_millis(1200));
        // The 720p layer crawls at 30 packets a second while the
        // publisher's estimate cannot carry it: a window lasting 3.3 s
        // now, which the layer's 1.5 Mbit/s (170 packets a second) passes
        // in 0.6 s as soon as the estimate lets it go.
        let mut camera = simulcast_sending([20, 60, 30], start, at(1000));
        assert_eq!(camera.repairable_layers(at(1000), slow), 2);
        assert_eq!(camera.held_back, 1);
        // A link that needs a shorter window takes it.
        assert_eq!(camera.repairable_layers(at(1000), Some(Duration::from_millis(400))), 3);
    }
}
