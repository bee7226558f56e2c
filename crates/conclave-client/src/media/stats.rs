//! What a headless participant received, per sender and source.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use conclave_proto::media::{ForwardedTrack, MediaSource, VideoCodec};
use conclave_proto::signal::ParticipantId;

use super::synthetic::FrameHeader;

/// How much later than usual a frame must come, at least, to be a freeze.
const FREEZE_MARGIN: Duration = Duration::from_millis(150);

/// Latency samples kept per track (the newest win).
const MAX_SAMPLES: usize = 20_000;

#[derive(Debug, Clone, Default)]
pub struct TrackStats {
    pub frames: u64,
    pub bytes: u64,
    pub keyframes: u64,
    /// Frames received per simulcast layer index.
    pub layers: BTreeMap<u8, u64>,
    pub last_layer: Option<u8>,
    pub first_at: Option<Instant>,
    pub last_at: Option<Instant>,
    /// Frames missing by sequence number (within a run of one layer).
    pub missing: u64,
    last_seq: HashMap<u8, u32>,
    /// Send-to-receive time of each frame, microseconds (same machine clock).
    pub latency_us: Vec<u64>,
    /// Freezes as Chromium counts them (`freezeCount`,
    /// `totalFreezesDuration`): a frame later than three usual gaps, or
    /// the usual gap and 150 ms, after the one before.
    pub freezes: u64,
    pub frozen: Duration,
    /// The longest time between two frames.
    pub longest_gap: Duration,
    /// The usual gap between frames (a moving average of the unfrozen ones).
    usual_gap: Option<Duration>,
}

impl TrackStats {
    fn count_freeze(&mut self, gap: Duration) {
        self.longest_gap = self.longest_gap.max(gap);
        match self.usual_gap {
            Some(usual) if gap > (usual * 3).max(usual + FREEZE_MARGIN) => {
                self.freezes += 1;
                self.frozen += gap;
            }
            Some(usual) => self.usual_gap = Some(usual.mul_f64(0.9) + gap.mul_f64(0.1)),
            None => self.usual_gap = Some(gap),
        }
    }

    /// The sequence number of the latest frame received.
    pub fn last_seq(&self) -> Option<u32> {
        self.last_seq.get(&self.last_layer?).copied()
    }

    fn record(&mut self, header: &FrameHeader, bytes: usize, now: Instant, now_us: u64) {
        self.frames += 1;
        self.bytes += bytes as u64;
        self.keyframes += u64::from(header.keyframe);
        *self.layers.entry(header.layer).or_default() += 1;
        // A gap counts as loss only within a run of one layer: switching
        // layers (simulcast) skips the frames of the layer left on purpose.
        let continuing = self.last_layer == Some(header.layer);
        if let Some(prev) = self.last_seq.insert(header.layer, header.seq).filter(|_| continuing) {
            self.missing += u64::from(header.seq.saturating_sub(prev).saturating_sub(1));
        }
        self.last_layer = Some(header.layer);
        if let Some(last) = self.last_at {
            self.count_freeze(now.saturating_duration_since(last));
        }
        self.first_at.get_or_insert(now);
        self.last_at = Some(now);
        if self.latency_us.len() == MAX_SAMPLES {
            self.latency_us.remove(0);
        }
        self.latency_us.push(now_us.saturating_sub(header.sent_us));
    }
}

#[derive(Debug, Clone, Default)]
pub struct MediaStats {
    /// ICE and DTLS are up.
    pub connected: bool,
    /// Received frames by (sender, source).
    pub received: HashMap<(ParticipantId, MediaSource), TrackStats>,
    pub sent_frames: u64,
    /// Datagrams that arrived at the participant's socket (RTP, RTCP, STUN,
    /// DTLS): what a server sent it, counted the same way whatever the server.
    pub datagrams_received: u64,
    /// Of those, RTP packets: the media a server forwarded.
    pub rtp_received: u64,
    /// SDP offers and answers received from the server.
    pub negotiations: u64,
    /// Datagrams sent straight to the server (not through a relay).
    pub datagrams_sent: u64,
    /// The server's map of the tracks it sends, by mid.
    pub tracks: HashMap<String, ForwardedTrack>,
    /// Frames whose sender was not the participant the server said the track is from.
    pub misrouted: u64,
    /// Frames that were not synthetic frames at all.
    pub unreadable: u64,
    pub keyframe_requests: u64,
    /// The layers the server last asked for, per published mid.
    pub requested_layers: HashMap<String, Vec<String>>,
    /// The codec the server last asked this participant to send its video in.
    pub requested_codec: Option<VideoCodec>,
    /// End-to-end encryption: the security code shown now, every code
    /// shown so far, frames that did not decrypt, and the MLS chat received.
    pub security_code: Option<String>,
    pub security_codes: Vec<String>,
    pub undecryptable: u64,
    pub e2ee_chat: Vec<(ParticipantId, String)>,
    pub welcomed: bool,
    /// The group as this device last saw it, credentials checked.
    pub e2ee_roster: Vec<conclave_e2ee::agent::MemberInfo>,
    /// Participants whose account came back with a device key never seen for it.
    pub e2ee_new_devices: Vec<(ParticipantId, String)>,
    /// Commits this device refused (from whom, and why): a warning the
    /// person would see.
    pub e2ee_refused_commits: Vec<(ParticipantId, String)>,
    /// Participants whose device left the group, and whether the commit
    /// carried out the server's own signed proposal (as external sender).
    pub e2ee_removed: Vec<(ParticipantId, bool)>,
    /// This device's signature key pair, to come back as the same device.
    pub e2ee_device_key: Vec<u8>,
    /// Each epoch's SFrame exporter secret and this device's base key, as
    /// derived: kept only so a test can search a server's storage and logs
    /// for them. Never sent anywhere.
    pub key_material: Vec<Vec<u8>>,
    /// Datagrams dropped by the receive limit (`limit_receive`).
    pub dropped_by_limit: u64,
    /// The signaling connection has closed (removed, meeting ended, left).
    pub signaling_closed: bool,
}

impl MediaStats {
    pub fn from(&self, sender: ParticipantId, source: MediaSource) -> Option<&TrackStats> {
        self.received.get(&(sender, source))
    }

    /// Frames received from `sender`'s `source` (0 when none).
    pub fn frames_from(&self, sender: ParticipantId, source: MediaSource) -> u64 {
        self.from(sender, source).map_or(0, |t| t.frames)
    }

    pub fn total_frames(&self) -> u64 {
        self.received.values().map(|t| t.frames).sum()
    }

    pub(crate) fn record(&mut self, mid: &str, header: &FrameHeader, bytes: usize, now: Instant, now_us: u64) {
        if let Some(track) = self.tracks.get(mid) {
            if track.participant_id != header.sender || track.source != header.source {
                self.misrouted += 1;
            }
        }
        self.received.entry((header.sender, header.source)).or_default().record(header, bytes, now, now_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_far_later_than_usual_is_a_freeze() {
        let mut track = TrackStats::default();
        let frame = Duration::from_millis(33);
        for _ in 0..30 {
            track.count_freeze(frame);
        }
        track.count_freeze(Duration::from_millis(120));
        assert_eq!(track.freezes, 0, "120 ms is within three frames and 150 ms of the usual 33");
        track.count_freeze(Duration::from_millis(400));
        assert_eq!(
            (track.freezes, track.frozen, track.longest_gap),
            (1, Duration::from_millis(400), Duration::from_millis(400))
        );
        // A freeze does not make freezes look usual.
        track.count_freeze(Duration::from_millis(400));
        assert_eq!(track.freezes, 2);
    }
}
