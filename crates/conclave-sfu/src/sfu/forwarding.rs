//! Forwarding: a publisher's frames to every subscriber that should get
//! them (admitted, allowed by the room, on screen, at the chosen layer),
//! and subscribers' keyframe requests back to the publisher, throttled.

use std::time::Instant;

use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, Mid, Rid};

use super::{PeerKey, Propagated, Sfu, KEYFRAME_REQUEST_GAP};
use crate::layers::BitrateMeter;
use crate::peer::{OutState, Peer, VideoVerdict};

impl Sfu {
    pub(super) fn propagate(&mut self, p: Propagated, now: Instant) {
        match p {
            Propagated::Published(key, mid) => {
                let Some(publisher) = self.peers.get(&key) else { return };
                let (owner, meeting) = (publisher.participant, publisher.meeting.clone());
                let others: Vec<PeerKey> =
                    self.meetings[&meeting].peers.iter().copied().filter(|k| *k != key).collect();
                for other in others {
                    let [Some(publisher), Some(o)] = self.peers.get_disjoint_mut([&key, &other]) else { continue };
                    o.add_forward(owner, mid, &publisher.published[&mid]);
                    self.dirty.push(other);
                }
            }
            Propagated::Keyframe { publisher, meeting, mid, rid } => {
                if let Some(&key) = self.by_participant.get(&(meeting, publisher)) {
                    let peer = self.peers.get_mut(&key).expect("indexed peer");
                    request_keyframe(peer, mid, rid, now);
                    self.dirty.push(key);
                }
            }
            Propagated::Media(key, data) => self.forward(key, *data, now),
            Propagated::Lost(key) => self.restart_session(key, now),
        }
    }

    /// Writes one frame from `key` to everyone in its meeting who should get it.
    pub(super) fn forward(&mut self, key: PeerKey, data: MediaData, now: Instant) {
        let Some(publisher) = self.peers.get_mut(&key) else { return };
        let Some(published) = publisher.published.get_mut(&data.mid) else { return };
        if !publisher.rights.allows(published.source) {
            self.stats.frames_blocked += 1;
            return;
        }
        published.meters.entry(data.rid).or_insert_with(|| BitrateMeter::new(now)).record(data.data.len(), now);
        if let Some(tap) = &self.config.tap {
            let mut frames = tap.lock().expect("tap lock");
            if frames.len() < super::TAP_FRAMES {
                frames.push(data.data.to_vec());
            }
        }
        let (owner, source, kind) = (publisher.participant, published.source, published.kind);
        let meeting = publisher.meeting.clone();
        let Some(room) = self.meetings.get_mut(&meeting) else { return };
        let level = data.ext_vals.audio_level;
        if let (MediaKind::Audio, Some(level)) = (kind, level) {
            room.speaker.observe(owner, level, now);
        }
        let mut keyframes_wanted = Vec::new();
        for &other in &room.peers {
            if other == key {
                continue;
            }
            let Some(sub) = self.peers.get_mut(&other) else { continue };
            let (subscriber, wanted) = (sub.participant, sub.wants(owner, source).is_some());
            let Some(f) = sub.live_forward_mut(owner, data.mid) else {
                continue;
            };
            let OutState::Open(mid_out) = f.state else { continue };
            if !wanted {
                f.current = None;
                continue;
            }
            if kind == MediaKind::Video {
                let before = f.current;
                match f.admit_video(data.rid, data.is_keyframe()) {
                    VideoVerdict::Forward if f.current != before => {
                        tracing::debug!(subscriber, publisher = owner, rid = ?data.rid, "layer switched");
                    }
                    VideoVerdict::Forward => {}
                    VideoVerdict::Skip { keyframe_for } => {
                        if let Some(rid) = keyframe_for.filter(|r| !keyframes_wanted.contains(r)) {
                            keyframes_wanted.push(rid);
                        }
                        continue;
                    }
                }
            }
            let Some(writer) = sub.rtc.writer(mid_out) else { continue };
            let Some(pt) = writer.match_params(data.params) else { continue };
            let writer = match level {
                Some(level) => writer.audio_level(level, data.ext_vals.voice_activity.unwrap_or(level > -50)),
                None => writer,
            };
            if writer.write(pt, data.network_time, data.time, data.data.clone()).is_ok() {
                self.stats.frames_forwarded += 1;
                self.dirty.push(other);
            }
        }
        if !keyframes_wanted.is_empty() {
            let publisher = self.peers.get_mut(&key).expect("publisher exists");
            for rid in keyframes_wanted {
                request_keyframe(publisher, data.mid, rid, now);
            }
            self.dirty.push(key);
        }
    }
}

/// Asks a publisher for a keyframe on one layer, at most once per gap.
pub(super) fn request_keyframe(peer: &mut Peer, mid: Mid, rid: Option<Rid>, now: Instant) {
    let Some(published) = peer.published.get_mut(&mid) else { return };
    if published.kind != MediaKind::Video {
        return;
    }
    let last = published.last_keyframe_request.get(&rid);
    if last.is_some_and(|t| now.saturating_duration_since(*t) < KEYFRAME_REQUEST_GAP) {
        return;
    }
    published.last_keyframe_request.insert(rid, now);
    if let Some(mut writer) = peer.rtc.writer(mid) {
        let _ = writer.request_keyframe(rid, KeyframeRequestKind::Pli);
    }
}
