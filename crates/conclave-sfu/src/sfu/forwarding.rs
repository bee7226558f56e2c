//! Forwarding: a publisher's RTP packets to every subscriber that should
//! get them (admitted, allowed by the room, on screen, at the chosen
//! simulcast layer and SVC layers), renumbered into each subscriber's continuous stream, and
//! subscribers' keyframe requests back to the publisher, throttled.
//!
//! A packet's payload is shared by every subscriber it goes to: only its
//! header (and, after a layer switch, a few descriptor bytes that str0m
//! patches as it writes) differs per subscriber.

use std::time::Instant;

use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::rtp::{ExtensionValues, RtpWrite};

use super::{Incoming, PeerKey, Propagated, Sfu, KEYFRAME_REQUEST_GAP};
use crate::layers::BitrateMeter;
use crate::peer::{OutState, Peer, VideoVerdict};
use crate::rewrite::IncomingPacket;
use crate::svc::SvcVerdict;
use crate::video;

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
            Propagated::Rtp(key, incoming) => self.forward(key, *incoming, now),
            Propagated::Lost(key) => self.restart_session(key, now),
        }
    }

    /// Writes one packet from `key` to everyone in its meeting who should get it.
    pub(super) fn forward(&mut self, key: PeerKey, incoming: Incoming, now: Instant) {
        let Incoming { mid, rid, packet } = incoming;
        let Some(publisher) = self.peers.get_mut(&key) else { return };
        let Some(published) = publisher.published.get_mut(&mid) else { return };
        if !publisher.rights.allows(published.source) {
            self.stats.packets_blocked += 1;
            return;
        }
        let (owner, source, kind) = (publisher.participant, published.source, published.kind);
        let Some(params) = publisher.rtc.codec_config().find(|p| p.pt() == packet.header.payload_type).copied() else {
            return;
        };
        let video = match kind {
            // A video packet whose payload header cannot be read cannot be
            // placed in a layer switch either.
            MediaKind::Video => match video::read(params.spec().codec, &packet.payload) {
                Some(video) => Some(video),
                None => return,
            },
            MediaKind::Audio => None,
        };
        published.meters.entry(rid).or_insert_with(|| BitrateMeter::new(now)).record(packet.payload.len(), now);
        // Whether this packet is a repair that came a round trip late (see
        // `SEND_REPAIRS_TWICE_AFTER`).
        let mut late_repair = false;
        if kind == MediaKind::Video {
            let holes = published.holes.entry(rid).or_default();
            let missed_before = holes.missed();
            let repair = holes.arrived(*packet.seq_no, now);
            publisher.uplink.received(holes.missed() - missed_before, now);
            if let Some(repair) = repair {
                // A repair that came after its packet was judged lost counts
                // too: the link's repair time is theirs as well, or the
                // judgement would only learn from the repairs it waited for.
                publisher.uplink.repaired(repair.after, now);
                late_repair = repair.after >= SEND_REPAIRS_TWICE_AFTER;
                tracing::trace!(publisher = publisher.participant, ?rid, after = ?repair.after, "a missing packet came");
                if repair.judged_lost {
                    tracing::debug!(publisher = publisher.participant, ?rid, after = ?repair.after, "a packet judged lost came after all");
                    self.stats.packets_judged_lost_too_soon += 1;
                }
            }
        }
        if let Some(layer) = video.and_then(|v| v.svc) {
            published.svc.record(&layer, packet.payload.len(), now);
        }
        #[cfg(feature = "test-hooks")]
        if let Some(tap) = &self.config.tap {
            let frame_start = video.map_or(Some(0), |v| v.starts_frame.then_some(v.data_offset));
            let mut frames = tap.lock().expect("tap lock");
            if let Some(offset) = frame_start.filter(|_| frames.len() < super::TAP_FRAMES) {
                frames.push(packet.payload[offset..].to_vec());
            }
        }
        let meeting = publisher.meeting.clone();
        let Some(room) = self.meetings.get_mut(&meeting) else { return };
        let header = &packet.header;
        if let (MediaKind::Audio, Some(level)) = (kind, header.ext_vals.audio_level) {
            room.speaker.observe(owner, level, now);
        }
        let placing = IncomingPacket {
            ssrc: *header.ssrc,
            seq: *packet.seq_no,
            timestamp: header.timestamp,
            arrival: packet.timestamp,
            picture_id: video.and_then(|v| v.picture_id).map(|p| p.value),
            tl0_pic_idx: video.and_then(|v| v.tl0_pic_idx),
        };
        let keyframe = video.is_some_and(|v| v.starts_keyframe);
        let mut keyframes_wanted = Vec::new();
        for &other in &room.peers {
            if other == key {
                continue;
            }
            let Some(sub) = self.peers.get_mut(&other) else { continue };
            let (subscriber, wanted) = (sub.participant, sub.wants(owner, source).is_some());
            let Peer { rtc, forwards, unsent, forwarded_bytes, .. } = sub;
            let Some(f) = forwards.iter_mut().find(|f| f.carries(owner, mid)) else { continue };
            if !matches!(f.state, OutState::Open(_)) {
                continue;
            }
            if !wanted {
                f.pause();
                continue;
            }
            if kind == MediaKind::Video {
                let before = f.current;
                match f.admit_video(rid, keyframe, now) {
                    VideoVerdict::Forward if f.current != before => {
                        tracing::debug!(subscriber, publisher = owner, rid = ?rid, "layer switched");
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
            // Within the stream, an SVC publisher's layers above the
            // subscriber's are left out, and the marker moves to the end
            // of the highest layer it gets.
            let mut marker = header.marker;
            if let Some(layer) = video.and_then(|v| v.svc) {
                match f.svc.admit(&layer, keyframe, header.marker) {
                    SvcVerdict::Forward { ends_picture } => marker = ends_picture,
                    SvcVerdict::Skip => {
                        if let Some(out) = f.out.as_mut() {
                            out.rewriter.skip(&placing);
                        }
                        if f.svc.wants_keyframe() && !keyframes_wanted.contains(&rid) {
                            keyframes_wanted.push(rid);
                        }
                        continue;
                    }
                }
            }
            let Some(out) = f.out.as_mut() else { continue };
            let Some(pt) = out.payload_type(&params, rtc) else { continue };
            let Some(placed) = out.rewriter.rewrite(&placing) else { continue };
            let write = || {
                let mut write =
                    RtpWrite::new(pt, placed.seq.into(), placed.timestamp, packet.timestamp, packet.payload.clone())
                        .marker(marker)
                        .ext_vals(forwarded_extensions(&header.ext_vals))
                        .nackable(kind == MediaKind::Video);
                // Only VP8 packets carry a picture id and TL0PICIDX to continue.
                if let Some(v) = video
                    .filter(|_| (placed.picture_id, placed.tl0_pic_idx) != (placing.picture_id, placing.tl0_pic_idx))
                {
                    let picture_id = v.picture_id.zip(placed.picture_id).map(|(width, id)| width.wrap(id));
                    if let Some(patch) = video::vp8::renumber(&packet.payload, picture_id, placed.tl0_pic_idx) {
                        write = write.vp8_patch(patch);
                    }
                }
                write
            };
            let mut api = rtc.direct_api();
            let Some(stream) = api.stream_tx(&out.ssrc) else { continue };
            stream.write_rtp(write());
            if late_repair {
                stream.write_rtp(write());
                self.stats.late_repairs_sent_twice += 1;
            }
            *forwarded_bytes += packet.payload.len() as u64;
            *unsent = true;
            self.stats.packets_forwarded += 1;
            self.dirty.push(other);
        }
        if !keyframes_wanted.is_empty() {
            let publisher = self.peers.get_mut(&key).expect("publisher exists");
            for rid in keyframes_wanted {
                request_keyframe(publisher, mid, rid, now);
            }
            self.dirty.push(key);
        }
    }

    /// Asks for a keyframe of every video layer with a packet lost for
    /// good: its subscribers cannot decode on until one comes.
    pub(super) fn restart_broken_layers(&mut self, now: Instant) {
        for (key, peer) in &mut self.peers {
            // Most publishers miss nothing at most wake-ups: their link's
            // patience (a sort of its recent repairs) is not worked out then.
            if !peer.published.values().any(|p| p.holes.values().any(|h| h.any_missing())) {
                continue;
            }
            let patience = peer.uplink.patience(now);
            let broken: Vec<(Mid, Option<Rid>)> = peer
                .published
                .iter_mut()
                .flat_map(|(mid, p)| p.holes.iter_mut().map(move |(rid, holes)| (*mid, *rid, holes)))
                .filter_map(|(mid, rid, holes)| holes.unrepairable(now, patience).then_some((mid, rid)))
                .collect();
            for (mid, rid) in broken {
                tracing::debug!(publisher = peer.participant, ?rid, "a packet lost for good: keyframe asked");
                self.stats.keyframes_for_lost_packets += 1;
                request_keyframe(peer, mid, rid, now);
                self.dirty.push(*key);
            }
        }
    }
}

/// A repair that comes this long after its packet was missed is written
/// twice to each subscriber. It is already a round trip of the
/// publisher's link late; lost again on a subscriber's link, it would wait
/// for that subscriber to ask for it (which it did when the gap showed,
/// before the SFU had it, and does again only a round trip later), and
/// then for the answer: on a link losing 5 % with a 400 ms round trip
/// that is about 1.2 s, past the hold a receiver keeps for repairs
/// (web/src/playout.ts), and the picture freezes. A second copy makes that
/// one in 400 instead of one in 20, for a few percent more of the video
/// sent, and only while the publisher's link loses packets. Packets merely
/// reordered come sooner than this.
const SEND_REPAIRS_TWICE_AFTER: std::time::Duration = std::time::Duration::from_millis(30);

/// The header extensions a forwarded packet keeps: what the receiver shows
/// or plays from (str0m adds the transport's own, such as the congestion
/// control sequence number and the mid).
fn forwarded_extensions(from: &ExtensionValues) -> ExtensionValues {
    ExtensionValues {
        audio_level: from.audio_level,
        voice_activity: from.voice_activity,
        video_orientation: from.video_orientation,
        ..ExtensionValues::default()
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
    if let Some(stream) = peer.rtc.direct_api().stream_rx_by_mid(mid, rid) {
        stream.request_keyframe(KeyframeRequestKind::Pli);
    }
}
