//! What the session publishes: synthetic frames for each negotiated source
//! on their schedule (audio every 20 ms, camera at the options' frame rate,
//! screen at 10 fps), a keyframe when asked, and each simulcast layer the
//! server wants, written to str0m one layer at a time.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use conclave_proto::media::MediaSource;
use str0m::media::{Frequency, MediaTime, Mid, Pt, Rid};

use super::machine::MediaSession;
use crate::media::synthetic::{self, FrameHeader, NO_LAYER};

/// Audio frames are 20 ms of sound.
const AUDIO_GAP: Duration = Duration::from_millis(20);
/// Screen shares change slowly: 10 frames a second.
const SCREEN_GAP: Duration = Duration::from_millis(100);
/// A keyframe every this many frames even when nobody asks.
const KEYFRAME_EVERY: u32 = 90;

/// One published source's negotiation and sending state.
pub(super) struct Outgoing {
    pub mid: Mid,
    pt: Option<Pt>,
    /// Layers the server wants; `None` until it says (send all).
    pub active: Option<HashSet<String>>,
    seq: u32,
    pub force_keyframe: bool,
}

impl Outgoing {
    pub fn new(mid: Mid, pt: Option<Pt>) -> Self {
        Self { mid, pt, active: None, seq: 0, force_keyframe: true }
    }
}

/// One encoding of a frame: its simulcast rid (if any), layer index and size.
struct Layer {
    rid: Option<Rid>,
    index: u8,
    bytes: usize,
}

impl MediaSession {
    /// When the next frame is due; `None` while nothing is to be sent
    /// (paused, not connected, or publishing nothing), so an idle receiver
    /// does not wake for nothing.
    pub(super) fn next_media_at(&self) -> Option<Instant> {
        if self.options.paused || !self.stats.connected {
            return None;
        }
        [
            (MediaSource::Microphone, self.next_audio),
            (MediaSource::Camera, self.next_video),
            (MediaSource::Screen, self.next_screen),
        ]
        .into_iter()
        .filter(|(source, _)| self.published.contains_key(source))
        .map(|(_, at)| at)
        .min()
    }

    /// Sends every source's frame that is due at `now`. A schedule that
    /// fell behind catches up by a few frames, not by all it missed.
    pub(super) fn send_media_due(&mut self, now: Instant) {
        if self.options.paused || !self.stats.connected {
            return;
        }
        let frame_gap = Duration::from_secs(1) / self.options.fps.max(1);
        if now >= self.next_audio {
            self.next_audio = (self.next_audio + AUDIO_GAP).max(now - AUDIO_GAP * 5);
            self.send_frame(MediaSource::Microphone, now);
        }
        if now >= self.next_video {
            self.next_video = (self.next_video + frame_gap).max(now - frame_gap * 3);
            self.send_frame(MediaSource::Camera, now);
        }
        if now >= self.next_screen {
            self.next_screen = (self.next_screen + SCREEN_GAP).max(now - SCREEN_GAP * 3);
            self.send_frame(MediaSource::Screen, now);
        }
    }

    fn send_frame(&mut self, source: MediaSource, now: Instant) {
        let Some(out) = self.published.get_mut(&source) else { return };
        let Some(pt) = out.pt else { return };
        out.seq = out.seq.wrapping_add(1);
        let keyframe = source != MediaSource::Microphone && (out.force_keyframe || out.seq % KEYFRAME_EVERY == 1);
        out.force_keyframe &= !keyframe;
        let (mid, seq) = (out.mid, out.seq);
        let elapsed = now.saturating_duration_since(self.started);
        let video_time = MediaTime::from_90khz(elapsed.as_micros() as u64 * 9 / 100);
        let (time, layers) = match source {
            MediaSource::Microphone => (
                MediaTime::from_micros(elapsed.as_micros() as u64).rebase(Frequency::FORTY_EIGHT_KHZ),
                vec![Layer { rid: None, index: NO_LAYER, bytes: 120 }],
            ),
            MediaSource::Screen => (video_time, vec![Layer { rid: None, index: NO_LAYER, bytes: 3000 }]),
            MediaSource::Camera => (video_time, self.camera_layers(source)),
        };
        let level = self.options.audio_level;
        // Each layer is its own write, and so its own drain: str0m takes one
        // change at a time.
        for layer in layers {
            let bytes = if keyframe { layer.bytes * 2 } else { layer.bytes };
            let header = FrameHeader {
                keyframe,
                sender: self.id,
                source,
                layer: layer.index,
                seq,
                sent_us: self.clock.unix_us(now),
            };
            let mut payload = synthetic::frame(&header, bytes);
            if let Some(e2ee) = self.e2ee.as_mut() {
                // Never send in the clear what is meant to be encrypted: no
                // keys yet (not in the group) means no media.
                match e2ee.session_mut().encrypt_frame(&payload, b"") {
                    Ok(sealed) => payload = sealed,
                    Err(_) => return,
                }
            }
            let written = self.rtc.mutate(now, |rtc| {
                let Some(mut writer) = rtc.writer(mid) else { return false };
                if let Some(rid) = layer.rid {
                    writer = writer.rid(rid);
                }
                if source == MediaSource::Microphone {
                    writer = writer.audio_level(level, level > -50);
                }
                writer.write(pt, now, time, payload).is_ok()
            });
            self.stats.sent_frames += u64::from(written);
        }
    }

    /// The camera's layers: one, or each simulcast layer the server wants,
    /// a quarter of the size of the one above it.
    fn camera_layers(&self, source: MediaSource) -> Vec<Layer> {
        let top = self.options.camera_frame_bytes;
        let rids = &self.options.simulcast;
        if rids.is_empty() {
            return vec![Layer { rid: None, index: NO_LAYER, bytes: top }];
        }
        let active = self.published.get(&source).and_then(|out| out.active.as_ref());
        let n = rids.len();
        rids.iter()
            .enumerate()
            .filter(|(_, rid)| active.is_none_or(|a| a.contains(*rid)))
            .map(|(i, rid)| Layer {
                rid: Some(Rid::from(rid.as_str())),
                index: i as u8,
                bytes: (top >> (2 * (n - 1 - i))).max(64),
            })
            .collect()
    }
}
