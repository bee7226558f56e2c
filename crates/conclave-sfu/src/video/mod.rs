//! What the SFU reads of a forwarded video packet, per codec: whether it
//! starts a frame and a keyframe (where a subscriber may switch layers or
//! start watching), for VP8 the picture numbering a switch continues, and
//! for VP9 the spatial and temporal layer a packet belongs to.
//! Each codec's RTP payload format has its own few header bytes for this;
//! the rest of the packet is never looked at (and is ciphertext in an
//! end-to-end encrypted meeting).
//!
//! Nothing here allocates: it runs for every video packet received.

pub(crate) mod av1;
pub(crate) mod h264;
pub(crate) mod vp8;
pub(crate) mod vp9;

use str0m::format::Codec;

pub(crate) use vp8::PictureId;

/// What one video packet says about the frame it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VideoPacket {
    /// The first packet of a frame.
    pub starts_frame: bool,
    /// The first packet of a frame a decoder can start from.
    pub starts_keyframe: bool,
    /// VP8's picture numbering, which a layer switch rewrites.
    pub picture_id: Option<PictureId>,
    pub tl0_pic_idx: Option<u8>,
    /// VP9's layer indices, when the sender codes scalable layers.
    pub svc: Option<SvcLayer>,
    /// Where the frame's own bytes begin, after the payload descriptor.
    pub data_offset: usize,
}

/// Where one packet sits in a scalable (SVC) stream: the layer frame it
/// belongs to, and what that frame depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SvcLayer {
    pub spatial: u8,
    pub temporal: u8,
    /// The first packet of its layer frame.
    pub starts_layer_frame: bool,
    /// The last packet of its layer frame.
    pub ends_layer_frame: bool,
    /// The frame predicts from earlier pictures (not only from the lower
    /// spatial layer of its own): a subscriber cannot start this layer here.
    pub inter_picture: bool,
    /// A switching-up point: frames of this temporal layer and above from
    /// here on refer to nothing before it in those layers.
    pub switch_up: bool,
}

/// Reads `payload` as `codec`'s RTP payload; `None` when it is too short
/// for its payload header, or the codec is not one the SFU forwards.
pub(crate) fn read(codec: Codec, payload: &[u8]) -> Option<VideoPacket> {
    match codec {
        Codec::Vp8 => vp8::read(payload),
        Codec::Vp9 => vp9::read(payload),
        Codec::H264 => h264::read(payload),
        Codec::Av1 => av1::read(payload),
        _ => None,
    }
}
