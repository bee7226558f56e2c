//! VP9's RTP payload descriptor (RFC 9628 §4.2): the first byte's flags,
//! then the picture id, layer indices, reference indices and scalability
//! structure when present. A keyframe is a frame that predicts from no
//! other (P clear), in its lowest spatial layer, starting (B set). A
//! sender coding scalable layers (SVC) names each packet's spatial and
//! temporal layer, which lets the SFU forward each subscriber only the
//! layers it chose (`crate::svc`).

use super::{SvcLayer, VideoPacket};

const I: u8 = 0x80;
const P: u8 = 0x40;
const L: u8 = 0x20;
const F: u8 = 0x10;
const B: u8 = 0x08;
const E: u8 = 0x04;
const V: u8 = 0x02;
/// In the layer indices' byte: a switching-up point.
const U: u8 = 0x10;

/// Reads a VP9 RTP payload; `None` when it ends inside its descriptor.
pub(crate) fn read(payload: &[u8]) -> Option<VideoPacket> {
    let flags = *payload.first()?;
    let mut at = 1;
    if flags & I != 0 {
        // M: a 15-bit picture id in two bytes.
        at += if *payload.get(at)? & 0x80 != 0 { 2 } else { 1 };
    }
    let mut spatial_layer = 0;
    let mut svc = None;
    if flags & L != 0 {
        let layers = *payload.get(at)?;
        spatial_layer = (layers >> 1) & 0x07;
        svc = Some(SvcLayer {
            spatial: spatial_layer,
            temporal: layers >> 5,
            starts_layer_frame: flags & B != 0,
            ends_layer_frame: flags & E != 0,
            inter_picture: flags & P != 0,
            switch_up: layers & U != 0,
        });
        at += 1;
        // Non-flexible mode carries TL0PICIDX.
        if flags & F == 0 {
            at += 1;
        }
    }
    if flags & F != 0 && flags & P != 0 {
        // Up to three reference differences, each saying whether another follows.
        for _ in 0..3 {
            let reference = *payload.get(at)?;
            at += 1;
            if reference & 0x01 == 0 {
                break;
            }
        }
    }
    if flags & V != 0 {
        at = skip_scalability_structure(payload, at)?;
    }
    payload.get(at..)?;
    let starts_frame = flags & B != 0;
    Some(VideoPacket {
        starts_frame,
        starts_keyframe: starts_frame && flags & P == 0 && spatial_layer == 0,
        picture_id: None,
        tl0_pic_idx: None,
        svc,
        data_offset: at,
    })
}

/// The end of the scalability structure starting at `at`: N_S, and the
/// resolutions (Y) and picture groups (G) it says follow.
fn skip_scalability_structure(payload: &[u8], mut at: usize) -> Option<usize> {
    let header = *payload.get(at)?;
    at += 1;
    let spatial_layers = usize::from(header >> 5) + 1;
    if header & 0x10 != 0 {
        at += 4 * spatial_layers;
    }
    if header & 0x08 != 0 {
        let pictures = *payload.get(at)?;
        at += 1;
        for _ in 0..pictures {
            let picture = *payload.get(at)?;
            at += 1 + usize::from((picture >> 2) & 0x03);
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_keyframe_with_its_scalability_structure() {
        // I (15-bit id), L (SID 0, non-flexible: TL0PICIDX), B, E, V:
        // one spatial layer with its resolution, one picture group.
        let mut p = vec![I | L | B | 0x04 | V, 0x80 | 0x12, 0x34, 0x00, 0x07];
        p.extend_from_slice(&[0x18, 0x05, 0x00, 0x02, 0xd0, 0x01, 0x04, 0x00]);
        p.extend_from_slice(&[0x82, 0x49, 0x83]);
        let packet = read(&p).unwrap();
        assert!(packet.starts_frame && packet.starts_keyframe);
        assert_eq!(packet.data_offset, p.len() - 3);
    }

    #[test]
    fn an_inter_frame_or_a_higher_spatial_layer_is_no_keyframe() {
        let inter = read(&[I | P | B, 0x05, 0xaa]).unwrap();
        assert!(inter.starts_frame && !inter.starts_keyframe);
        // Spatial layer 1 of a keyframe predicts from layer 0.
        let upper = read(&[I | L | B, 0x05, 0x02, 0x00, 0xaa]).unwrap();
        assert!(!upper.starts_keyframe);
        let middle = read(&[I, 0x05, 0xaa]).unwrap();
        assert!(!middle.starts_frame);
    }

    #[test]
    fn reads_each_packets_layers() {
        // L: TID 2, U, SID 1, D; non-flexible: TL0PICIDX; P and E set.
        let packet = read(&[I | P | L | E, 0x05, 0x40 | U | 0x02 | 0x01, 0x09, 0xaa]).unwrap();
        let svc = packet.svc.unwrap();
        assert_eq!((svc.spatial, svc.temporal), (1, 2));
        assert!(svc.switch_up && svc.inter_picture && svc.ends_layer_frame && !svc.starts_layer_frame);
        assert_eq!(packet.data_offset, 4);
        // Without layer indices there is one layer, and nothing to choose.
        assert_eq!(read(&[I | B, 0x05, 0xaa]).unwrap().svc, None);
    }

    #[test]
    fn flexible_mode_reference_indices_are_skipped() {
        // F and P: two references (the first says another follows).
        let packet = read(&[I | P | F | B, 0x05, 0x03, 0x02, 0xaa]).unwrap();
        assert_eq!(packet.data_offset, 4);
    }

    #[test]
    fn refuses_what_ends_inside_the_descriptor() {
        assert_eq!(read(&[]), None);
        assert_eq!(read(&[I | B]), None);
        assert_eq!(read(&[I | B, 0x80]), None, "half a long picture id");
        assert_eq!(read(&[V | B, 0x10, 0x00]), None, "a resolution cut short");
    }

    proptest! {
        #[test]
        fn never_panics_and_points_inside(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Some(packet) = read(&bytes) {
                prop_assert!(packet.data_offset <= bytes.len());
            }
        }
    }
}
