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
