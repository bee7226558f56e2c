//! Synthetic media for headless participants: frames that carry who sent
//! them, which source and layer, a sequence number and the send time, so a
//! receiver can check where everything came from and measure latency.
//!
//! Video frames begin with a VP8 payload header byte whose P bit marks
//! keyframes (RFC 6386 §9.1), which is all an SFU looks at.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use conclave_proto::media::MediaSource;
use conclave_proto::signal::ParticipantId;

const MAGIC: &[u8; 4] = b"CNCL";
pub const HEADER_LEN: usize = 27;
/// Layer index meaning "not simulcast".
pub const NO_LAYER: u8 = 255;

/// What a synthetic frame says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub keyframe: bool,
    pub sender: ParticipantId,
    pub source: MediaSource,
    pub layer: u8,
    pub seq: u32,
    /// Microseconds since the Unix epoch when it was sent.
    pub sent_us: u64,
}

pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The clock frames are stamped with and their latency measured by: Unix
/// microseconds, read from the `Instant`s a session is given, so that a
/// session driven in simulated time stamps simulated time.
#[derive(Debug, Clone, Copy)]
pub struct FrameClock {
    origin: Instant,
    origin_unix_us: u64,
}

impl FrameClock {
    /// The machine's clock, anchored once per process: every participant of
    /// a process reads the same clock, so the latency between two of them is
    /// exactly the time between their `Instant`s.
    pub fn system() -> Self {
        static ANCHOR: OnceLock<FrameClock> = OnceLock::new();
        *ANCHOR.get_or_init(|| Self { origin: Instant::now(), origin_unix_us: now_us() })
    }

    /// A clock that reads `unix_us` at `origin` (simulated time).
    pub fn starting_at(origin: Instant, unix_us: u64) -> Self {
        Self { origin, origin_unix_us: unix_us }
    }

    /// Unix microseconds at `at`.
    pub fn unix_us(&self, at: Instant) -> u64 {
        match at.checked_duration_since(self.origin) {
            Some(after) => self.origin_unix_us + after.as_micros() as u64,
            None => self.origin_unix_us.saturating_sub(self.origin.duration_since(at).as_micros() as u64),
        }
    }
}

fn source_byte(source: MediaSource) -> u8 {
    match source {
        MediaSource::Microphone => 0,
        MediaSource::Camera => 1,
        MediaSource::Screen => 2,
    }
}

/// A frame of `size` bytes (at least the header) described by `header`.
pub fn frame(header: &FrameHeader, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(HEADER_LEN));
    out.push(if header.keyframe { 0x10 } else { 0x11 });
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&header.sender.to_be_bytes());
    out.push(source_byte(header.source));
    out.push(header.layer);
    out.extend_from_slice(&header.seq.to_be_bytes());
    out.extend_from_slice(&header.sent_us.to_be_bytes());
    // Filler that does not compress, like real encoded media.
    let mut x = u64::from(header.seq).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    out
}

/// Reads a synthetic frame's header; `None` for anything else.
pub fn parse(frame: &[u8]) -> Option<FrameHeader> {
    if frame.len() < HEADER_LEN || &frame[1..5] != MAGIC {
        return None;
    }
    let source = match frame[13] {
        0 => MediaSource::Microphone,
        1 => MediaSource::Camera,
        2 => MediaSource::Screen,
        _ => return None,
    };
    Some(FrameHeader {
        keyframe: frame[0] & 1 == 0,
        sender: u64::from_be_bytes(frame[5..13].try_into().ok()?),
        source,
        layer: frame[14],
        seq: u32::from_be_bytes(frame[15..19].try_into().ok()?),
        sent_us: u64::from_be_bytes(frame[19..27].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_clock_reads_unix_time_from_instants() {
        let origin = Instant::now();
        let clock = FrameClock::starting_at(origin + std::time::Duration::from_millis(5), 1_000_000);
        assert_eq!(clock.unix_us(origin + std::time::Duration::from_millis(7)), 1_002_000);
        assert_eq!(clock.unix_us(origin), 995_000, "before the origin too");
    }

    #[test]
    fn frames_round_trip() {
        let header =
            FrameHeader { keyframe: true, sender: 42, source: MediaSource::Screen, layer: 2, seq: 9, sent_us: 123 };
        let bytes = frame(&header, 1000);
        assert_eq!(bytes.len(), 1000);
        assert_eq!(bytes[0] & 1, 0, "VP8 P bit clear on keyframes");
        assert_eq!(parse(&bytes), Some(header));
        assert_eq!(parse(&bytes[..10]), None);
        assert_eq!(parse(&[0u8; 64]), None);
    }
}
