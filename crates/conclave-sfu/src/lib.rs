//! The Conclave media plane: a selective forwarding unit built on str0m.
//!
//! [`Sfu`] is a deterministic state machine with no IO: commands from
//! meetings (admit, rights, offer, answer, subscribe, leave), datagrams
//! from the shared UDP port, and time go in; datagrams to send and events
//! for meetings come out. [`MediaPlane`] is the thin tokio driver that owns
//! the socket.
//!
//! Invariants:
//! - a participant has a media session only between `Admit` and `Leave`;
//!   datagrams from anyone else are dropped before any parsing but STUN's;
//! - media is written to a subscriber only for tracks it receives an
//!   m-line for and, for video, only while the track is on its screen;
//! - a source the room has muted or stopped is never forwarded;
//! - a failure or panic in one participant's `Rtc` closes that session alone.

mod batch_send;
mod codecs;
mod demux;
mod driver;
mod holes;
pub mod layers;
mod peer;
mod repair;
mod rewrite;
pub mod sdp_grammar;
mod sfu;
pub mod speaker;
mod svc;
mod tcp;
mod video;

pub use demux::{is_stun, stun_local_ufrag};
pub use driver::MediaPlane;
pub use peer::Rights;
#[cfg(feature = "test-hooks")]
pub use sfu::FrameTap;
pub use sfu::{Command, Sfu, SfuConfig, SfuEvent, SfuStats};

/// Reads `payload` as a forwarded packet of every video codec and, where a
/// VP8 packet has the fields, renumbers it as a layer switch would: lets
/// fuzzing reach the readers of every video packet without a DTLS session.
#[doc(hidden)]
pub fn read_and_renumber_for_fuzzing(payload: &[u8], picture_id: u16, tl0_pic_idx: u8) {
    use str0m::format::Codec;
    for codec in [Codec::Vp9, Codec::H264, Codec::Av1] {
        if let Some(packet) = video::read(codec, payload) {
            assert!(packet.data_offset <= payload.len(), "the frame's bytes start inside the payload");
        }
    }
    if let Some(packet) = video::read(Codec::Vp8, payload) {
        assert!(packet.data_offset < payload.len(), "the frame's bytes start inside the payload");
        let picture_id = packet.picture_id.map(|p| p.wrap(picture_id));
        let tl0_pic_idx = packet.tl0_pic_idx.map(|_| tl0_pic_idx);
        let _ = video::vp8::renumber(payload, picture_id, tl0_pic_idx);
    }
}

/// A meeting's id, shared cheaply between the sessions of its participants.
pub type MeetingKey = std::sync::Arc<str>;
