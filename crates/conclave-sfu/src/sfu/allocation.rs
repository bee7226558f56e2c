//! Decisions for a whole meeting: who the active speaker is, which
//! simulcast layer each subscriber gets of each video (under its bandwidth
//! estimate), with publishers told which layers anyone needs, and which
//! codec publishers send video in.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use conclave_proto::media::MediaSource;
use conclave_proto::signal::{ParticipantId, ServerMessage};
use str0m::bwe::Bitrate;
use str0m::media::{MediaKind, Mid, Rid};

use super::{request_keyframe, PeerKey, Sfu, SfuEvent, AUDIO_ALLOWANCE_BPS, UPGRADE_HOLD, VIDEO_SHARE};
use crate::layers::{self, LayerWant};
use crate::peer::OutState;
use crate::svc::SvcLayers;
use crate::MeetingKey;

impl Sfu {
    pub(super) fn evaluate_speakers(&mut self, now: Instant) {
        for (meeting, room) in &mut self.meetings {
            if let Some(participant) = room.speaker.evaluate(now) {
                self.events.push_back(SfuEvent::ActiveSpeaker { meeting: meeting.clone(), participant });
            }
        }
    }

    /// Chooses the simulcast layer of each video `key` receives (the
    /// caller then announces its meeting's layers).
    pub(super) fn allocate_layers(&mut self, now: Instant, key: PeerKey) {
        let Some(sub) = self.peers.get(&key) else { return };
        let meeting = sub.meeting.clone();
        let estimate = sub.estimate;
        let mut wants = Vec::new();
        let mut which = Vec::new();
        for (i, f) in sub.forwards.iter().enumerate() {
            if f.kind != MediaKind::Video || !matches!(f.state, OutState::Open(_)) {
                continue;
            }
            let Some(quality) = sub.wants(f.owner, f.source) else { continue };
            let Some(&pkey) = self.by_participant.get(&(meeting.clone(), f.owner)) else { continue };
            which.push((i, pkey, f.source_mid));
            wants.push((pkey, f.source_mid, quality, f.source == MediaSource::Screen));
        }
        let mut layer_wants = Vec::with_capacity(wants.len());
        // An SVC stream's rungs (layer index → layers), beside its want.
        let mut svc_rungs: Vec<Option<Vec<SvcLayers>>> = Vec::with_capacity(wants.len());
        for (pkey, mid, quality, is_screen) in &wants {
            let (quality, is_screen) = (*quality, *is_screen);
            let publisher = self.peers.get_mut(pkey);
            let window_needed = publisher.as_ref().and_then(|p| p.uplink.window_needed(now));
            let Some((participant, published)) =
                publisher.and_then(|p| Some((p.participant, p.published.get_mut(mid)?)))
            else {
                layer_wants.push(LayerWant { layer_bps: vec![0], quality, is_screen, reduced_rates: 0 });
                svc_rungs.push(None);
                continue;
            };
            if published.svc.is_scalable() {
                let (rungs, reduced_rates) = published.svc.ladder(now);
                layer_wants.push(LayerWant {
                    layer_bps: rungs.iter().map(|r| r.1).collect(),
                    quality,
                    is_screen,
                    reduced_rates,
                });
                svc_rungs.push(Some(rungs.into_iter().map(|r| r.0).collect()));
                continue;
            }
            let mut layer_bps = published.layer_bps(now);
            // A layer whose lost packets leave str0m's window before the
            // publisher's link repairs them freezes its subscribers every
            // few seconds: a lower layer moves instead (`crate::repair`).
            let held_back = published.held_back;
            let repairable = published.repairable_layers(now, window_needed);
            if published.held_back != held_back {
                tracing::debug!(
                    publisher = participant,
                    held_back = published.held_back,
                    ?window_needed,
                    "layers beyond repair"
                );
            }
            layer_bps.truncate(repairable);
            layer_wants.push(LayerWant { layer_bps, quality, is_screen, reduced_rates: 0 });
            svc_rungs.push(None);
        }
        let budget = estimate.map(|e| (e as f64 * VIDEO_SHARE) as u64);
        let chosen = layers::allocate(budget, &layer_wants);
        // Probe only while some video is below what its tile asks for, and
        // no further than that: probing is padding, which costs the
        // subscriber's link and our CPU for nothing once every video is
        // at its wanted layer.
        let wanted_bps = |w: &LayerWant| w.layer_bps[w.wanted()];
        let capped = chosen.iter().zip(&layer_wants).any(|(c, w)| *c < w.wanted());
        // Without a lower layer to fall back to (no simulcast), an estimate
        // below what is forwarded would hold packets in the pacer's queue:
        // probe up to what is forwarded instead.
        let forwarded_bps: u64 = chosen.iter().zip(&layer_wants).map(|(c, w)| w.layer_bps[*c]).sum();
        let short = budget.is_some_and(|b| b < forwarded_bps);
        let desired = if capped || short {
            (layer_wants.iter().map(wanted_bps).sum::<u64>() + AUDIO_ALLOWANCE_BPS) as f64 / VIDEO_SHARE
        } else {
            0.0
        };
        if let Some(sub) = self.peers.get_mut(&key) {
            // No sustained padding floor: str0m probes toward `desired` in
            // bursts, and the layers climb as the estimate follows.
            sub.rtc.bwe().set_bitrate(Bitrate::ZERO, Bitrate::bps(desired as u64));
        }
        let mut keyframes = Vec::new();
        for ((((i, pkey, mid), layer), want), rungs) in which.into_iter().zip(chosen).zip(&layer_wants).zip(svc_rungs) {
            // Below what the tile asks for: the bandwidth estimate capped it.
            let capped = layer < want.wanted();
            if let Some(rungs) = rungs {
                let sub = self.peers.get_mut(&key).expect("subscriber exists");
                let f = &mut sub.forwards[i];
                let target = rungs[layer];
                let before = f.svc.target();
                if target == before {
                    continue;
                }
                if !f.upgrades.may_retarget(target > before, capped, now, UPGRADE_HOLD) {
                    continue;
                }
                f.svc.set_target(target);
                tracing::debug!(subscriber = sub.participant, publisher = f.owner, ?target, "svc layers target");
                continue;
            }
            let rid =
                self.peers.get(&pkey).and_then(|p| p.published.get(&mid)).and_then(|p| p.rids.get(layer).copied());
            let rank_of = |rid: Option<Rid>| {
                self.peers
                    .get(&pkey)
                    .and_then(|p| p.published.get(&mid))
                    .and_then(|p| rid.and_then(|r| p.rids.iter().position(|x| *x == r)))
            };
            let (new_rank, old_rank) = (rank_of(rid), rank_of(self.peers[&key].forwards[i].target));
            let sub = self.peers.get_mut(&key).expect("subscriber exists");
            let f = &mut sub.forwards[i];
            if f.target == rid {
                continue;
            }
            if !f.upgrades.may_retarget(new_rank > old_rank, capped, now, UPGRADE_HOLD) {
                continue;
            }
            f.target = rid;
            tracing::debug!(subscriber = sub.participant, publisher = f.owner, rid = ?rid, "layer target");
            keyframes.push((pkey, mid, rid));
        }
        for (pkey, mid, rid) in keyframes {
            if let Some(p) = self.peers.get_mut(&pkey) {
                request_keyframe(p, mid, rid, now);
                self.dirty.push(pkey);
            }
        }
    }

    /// Allocates every subscriber's layers, then announces each meeting's
    /// once.
    pub(super) fn allocate_all_layers(&mut self, now: Instant) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.allocate_layers(now, key);
        }
        let meetings: Vec<MeetingKey> = self.meetings.keys().cloned().collect();
        for meeting in meetings {
            self.announce_layers(&meeting);
        }
    }

    /// Tells each publisher in `meeting` which simulcast layers someone
    /// watches, so it can pause the rest at the encoder.
    pub(super) fn announce_layers(&mut self, meeting: &MeetingKey) {
        let Some(room) = self.meetings.get(meeting) else { return };
        let mut needed: HashMap<(ParticipantId, Mid), HashSet<Rid>> = HashMap::new();
        for key in &room.peers {
            let sub = &self.peers[key];
            for f in &sub.forwards {
                if let (OutState::Open(_), Some(_)) = (f.state, sub.wants(f.owner, f.source)) {
                    needed.entry((f.owner, f.source_mid)).or_default().extend(f.layers_needed());
                }
            }
        }
        for key in room.peers.clone() {
            let peer = self.peers.get_mut(&key).expect("peer in room");
            for (mid, published) in &mut peer.published {
                if published.rids.is_empty() {
                    continue;
                }
                let wanted = needed.get(&(peer.participant, *mid));
                let rids: Vec<Rid> =
                    published.rids.iter().copied().filter(|r| wanted.is_some_and(|w| w.contains(r))).collect();
                if published.announced.as_ref() != Some(&rids) {
                    published.announced = Some(rids.clone());
                    tracing::debug!(publisher = peer.participant, ?rids, "layers needed");
                    let message = ServerMessage::PublishLayers {
                        mid: mid.to_string(),
                        rids: rids.iter().map(|r| r.to_string()).collect(),
                    };
                    self.events.push_back(SfuEvent::Signal {
                        meeting: meeting.clone(),
                        participant: peer.participant,
                        message,
                    });
                }
            }
        }
    }

    /// Chooses the codec `meeting` sends video in (one everyone decodes),
    /// and tells each participant whose media is up and who does not know
    /// it yet; nobody is told the default until it changes.
    pub(super) fn choose_codec(&mut self, meeting: &MeetingKey) {
        let Some(room) = self.meetings.get_mut(meeting) else { return };
        let peers = &self.peers;
        let codec =
            crate::codecs::meeting_codec(room.peers.iter().filter_map(|k| peers.get(k)).map(|p| p.decodes.as_deref()));
        if codec != room.video_codec {
            tracing::info!(?codec, "the meeting's video codec changes");
            room.video_codec = codec;
        }
        for key in &room.peers {
            let Some(peer) = self.peers.get_mut(key) else { continue };
            if !peer.ready || peer.told_codec.unwrap_or_default() == codec {
                continue;
            }
            peer.told_codec = Some(codec);
            let message = ServerMessage::PublishCodec { codec };
            self.events.push_back(SfuEvent::Signal {
                meeting: meeting.clone(),
                participant: peer.participant,
                message,
            });
        }
    }
}
