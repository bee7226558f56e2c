//! What the SFU reads of a forwarded VP8 packet: whether it starts a frame
//! and a keyframe, where the frame's bytes begin, and the picture numbering
//! a layer switch has to continue (RFC 7741 §4.2's payload descriptor, and
//! RFC 6386 §9.1's payload header right after it).
//!
//! An end-to-end encrypted frame keeps the payload header in the clear
//! (`conclave-e2ee-wasm`'s `frame.rs`), so this works on ciphertext too.
//! Nothing here allocates: it runs for every video packet received.

use str0m::rtp::{Vp8Descriptor, Vp8Patch};

use super::VideoPacket;

/// A picture id and how many bits the sender gave it (7 or 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PictureId {
    pub value: u16,
    pub long: bool,
}

impl PictureId {
    /// `value` in this picture id's width.
    pub fn wrap(self, value: u16) -> u16 {
        value & if self.long { 0x7fff } else { 0x7f }
    }
}

/// Reads a VP8 RTP payload; `None` when it is too short for its descriptor
/// or carries no frame bytes. A frame starts with the S bit on partition 0;
/// a keyframe's payload header has its P bit clear.
pub(crate) fn read(payload: &[u8]) -> Option<VideoPacket> {
    let required = *payload.first()?;
    let mut at = 1;
    let mut picture_id = None;
    let mut tl0_pic_idx = None;
    if required & 0x80 != 0 {
        let extension = *payload.get(at)?;
        at += 1;
        if extension & 0x80 != 0 {
            let first = *payload.get(at)?;
            at += 1;
            picture_id = Some(if first & 0x80 != 0 {
                let second = *payload.get(at)?;
                at += 1;
                PictureId { value: u16::from(first & 0x7f) << 8 | u16::from(second), long: true }
            } else {
                PictureId { value: u16::from(first), long: false }
            });
        }
        if extension & 0x40 != 0 {
            tl0_pic_idx = Some(*payload.get(at)?);
            at += 1;
        }
        // TID/Y/KEYIDX share one byte.
        if extension & 0x30 != 0 {
            at += 1;
        }
    }
    let header = *payload.get(at)?;
    let starts_frame = required & 0x10 != 0 && required & 0x07 == 0;
    Some(VideoPacket {
        starts_frame,
        starts_keyframe: starts_frame && header & 0x01 == 0,
        picture_id,
        tl0_pic_idx,
        svc: None,
        data_offset: at,
    })
}

/// The byte replacements that renumber `payload`'s picture id and TL0PICIDX
/// as it is sent (str0m applies them while writing the packet, so the
/// payload shared by every subscriber is never copied). `None` when the
/// descriptor lacks a field asked for.
pub(crate) fn renumber(payload: &[u8], picture_id: Option<u16>, tl0_pic_idx: Option<u8>) -> Option<Vp8Patch> {
    let mut patch = Vp8Descriptor::parse(payload).ok()?.patch();
    if let Some(id) = picture_id {
        patch = patch.picture_id(id);
    }
    if let Some(idx) = tl0_pic_idx {
        patch = patch.tl0_pic_idx(idx);
    }
    patch.build().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A descriptor with a 15-bit picture id and TL0PICIDX, then a payload header.
    fn packet(start: bool, keyframe: bool, picture_id: u16, tl0: u8) -> Vec<u8> {
        let required = 0x80 | if start { 0x10 } else { 0 };
        let mut p = vec![required, 0xe0, 0x80 | (picture_id >> 8) as u8, picture_id as u8, tl0, 0x20];
        p.push(if keyframe { 0x10 } else { 0x11 });
        p.extend_from_slice(&[0xaa; 20]);
        p
    }

    #[test]
    fn reads_a_keyframes_first_packet() {
        let p = read(&packet(true, true, 0x1234, 7)).unwrap();
        assert!(p.starts_frame && p.starts_keyframe);
        assert_eq!(p.picture_id, Some(PictureId { value: 0x1234, long: true }));
        assert_eq!(p.tl0_pic_idx, Some(7));
        assert_eq!(p.data_offset, 6);
    }

    #[test]
    fn only_a_frames_first_packet_starts_a_keyframe() {
        let middle = read(&packet(false, true, 5, 0)).unwrap();
        assert!(!middle.starts_frame && !middle.starts_keyframe);
        let delta = read(&packet(true, false, 5, 0)).unwrap();
        assert!(delta.starts_frame && !delta.starts_keyframe);
        // Partition 1 starting is not the frame's start.
        assert!(!read(&[0x11, 0x10]).unwrap().starts_frame);
    }

    #[test]
    fn reads_the_shortest_descriptor_and_a_short_picture_id() {
        assert_eq!(read(&[0x10, 0x00]).unwrap().data_offset, 1);
        let short = read(&[0x90, 0x80, 0x05, 0x10]).unwrap();
        assert_eq!(short.picture_id, Some(PictureId { value: 5, long: false }));
        assert_eq!(short.picture_id.unwrap().wrap(130), 2);
    }

    #[test]
    fn refuses_what_ends_inside_the_descriptor() {
        let full = packet(true, true, 300, 1);
        for len in 0..=5 {
            assert_eq!(read(&full[..len]), None, "{len} bytes");
        }
    }

    #[test]
    fn renumbering_needs_the_fields_it_rewrites() {
        let p = packet(true, true, 300, 1);
        assert!(renumber(&p, Some(0x7001), Some(9)).is_some());
        assert_ne!(renumber(&p, Some(0x7001), None), renumber(&p, Some(0x7002), None));
        assert!(renumber(&[0x10, 0x00], Some(1), None).is_none(), "no picture id to rewrite");
        assert!(renumber(&[0x90, 0x80, 0x05, 0x10], Some(200), None).is_none(), "a 7-bit picture id");
    }

    proptest! {
        #[test]
        fn never_panics_and_agrees_with_str0m(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            let ours = read(&bytes);
            let theirs = Vp8Descriptor::parse(&bytes);
            if let (Some(ours), Ok(theirs)) = (ours, theirs) {
                prop_assert_eq!(ours.picture_id.map(|p| p.value), theirs.picture_id());
                prop_assert_eq!(ours.tl0_pic_idx, theirs.tl0_pic_idx());
                prop_assert_eq!(ours.starts_keyframe, theirs.starts_keyframe(&bytes));
            }
        }
    }
}
