//! Media-plane messages carried over the signaling WebSocket: SDP offers
//! and answers, which participant each forwarded track belongs to, what a
//! participant wants to see, and which simulcast layers are needed.

use serde::{Deserialize, Serialize};

use crate::signal::ParticipantId;

/// Most tiles a subscription may name (a 49-tile gallery page plus shares and pins).
pub const MAX_TILES: usize = 64;
/// Most tracks one participant may publish.
pub const MAX_PUBLISHED_TRACKS: usize = 8;

/// What a published track carries. The host's "mute" and "stop video"
/// apply to microphone and camera; a share needs the room's permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MediaSource {
    Microphone,
    Camera,
    Screen,
}

impl MediaSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Microphone => "microphone",
            Self::Camera => "camera",
            Self::Screen => "screen",
        }
    }
}

/// A video codec the SFU forwards (without transcoding: every participant
/// who watches a camera must decode the codec it is sent in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    /// The default: every browser decodes it, and its payload header is
    /// what stays in the clear under end-to-end encryption.
    #[default]
    Vp8,
    /// H.264 (constrained baseline, packetization mode 1): room systems
    /// and hardware encoders.
    H264,
    Vp9,
    Av1,
}

impl VideoCodec {
    /// In the order a meeting prefers them.
    pub const PREFERENCE: [VideoCodec; 4] = [VideoCodec::Vp8, VideoCodec::H264, VideoCodec::Vp9, VideoCodec::Av1];

    /// Its name in SDP (`a=rtpmap`), which is also WebRTC's `video/<name>`.
    pub fn sdp_name(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "VP8",
            VideoCodec::H264 => "H264",
            VideoCodec::Vp9 => "VP9",
            VideoCodec::Av1 => "AV1",
        }
    }

    /// The codec an SDP encoding name (`VP8`, `h264`, ...) names, if forwarded.
    pub fn from_sdp_name(name: &str) -> Option<VideoCodec> {
        VideoCodec::PREFERENCE.into_iter().find(|c| c.sdp_name().eq_ignore_ascii_case(name))
    }
}

/// The size a subscriber draws a video at; it decides the simulcast layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// A tile in a 25- or 49-tile gallery.
    Low,
    /// A tile in a small gallery.
    Medium,
    /// Speaker view, a pinned participant or a screen share.
    High,
}

/// A track in the sender's offer, by its `a=mid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PublishedTrack {
    pub mid: String,
    pub source: MediaSource,
}

/// One video a subscriber has on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Tile {
    pub participant_id: ParticipantId,
    pub source: MediaSource,
    pub quality: Quality,
}

/// A track the server sends, by its `a=mid` in the server's offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ForwardedTrack {
    pub mid: String,
    pub participant_id: ParticipantId,
    pub source: MediaSource,
}

/// An ICE server for `RTCPeerConnection`: TURN with time-limited credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}
