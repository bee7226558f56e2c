//! One participant's media session: its own `Rtc`, the tracks it publishes,
//! the tracks forwarded to it, and the state of its SDP negotiation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use conclave_proto::media::{ForwardedTrack, MediaSource, Quality, Tile};
use conclave_proto::signal::ParticipantId;
use str0m::change::SdpPendingOffer;
use str0m::media::{Direction, MediaKind, Mid, Rid};
use str0m::Rtc;

use crate::layers::BitrateMeter;
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
    pub last_keyframe_request: HashMap<Option<Rid>, Instant>,
    /// The layers last reported to the sender as needed.
    pub announced: Option<Vec<Rid>>,
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
            let floor = [150_000, 500_000, 1_500_000][i.min(2)];
            out.push(if measured == 0 { floor } else { measured });
        }
        out
    }
}

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
    /// When the allocation last stepped this video down: it is not
    /// stepped up again soon, or a link at its limit would flap.
    pub stepped_down: Option<Instant>,
}

impl Forward {
    pub fn mid(&self) -> Option<Mid> {
        match self.state {
            OutState::ToOpen => None,
            OutState::Negotiating(m) | OutState::Open(m) | OutState::ToStop(m) | OutState::NegotiatingStop(m) => {
                Some(m)
            }
        }
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
    /// The participant's first offer was accepted: the server may offer.
    pub ready: bool,
    /// The videos the participant has on screen; `None` until it says.
    pub tiles: Option<Vec<Tile>>,
    /// The latest egress bandwidth estimate, bits per second.
    pub estimate: Option<u64>,
    /// The time of this peer's entry in the timer heap.
    pub scheduled: Option<Instant>,
    pub addr: Option<SocketAddr>,
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

    /// Starts forwarding every track `owner` publishes (audio always; what
    /// video is actually sent follows the subscription).
    pub fn add_forward(&mut self, owner: ParticipantId, source_mid: Mid, published: &Published) {
        if self.forwards.iter().any(|f| f.owner == owner && f.source_mid == source_mid) {
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
            stepped_down: None,
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

    /// The participant's answer settled the outstanding offer.
    pub fn settle_offer(&mut self, accepted: bool) {
        for f in &mut self.forwards {
            f.state = match (f.state, accepted) {
                (OutState::Negotiating(m), true) => OutState::Open(m),
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
