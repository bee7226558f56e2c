//! H.264's RTP payload (RFC 6184): one NAL unit, several in a STAP-A, or one
//! cut into FU-A fragments (packetization mode 1, what browsers and room
//! systems send). There is no descriptor before the NAL units, so frames
//! are told apart by the NAL unit types: a keyframe begins with a sequence
//! parameter set (browsers send it, with the picture parameter set, in a
//! STAP-A before every IDR picture) or with an IDR slice.

use super::VideoPacket;

const IDR_SLICE: u8 = 5;
const SEQUENCE_PARAMETER_SET: u8 = 7;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// Reads an H.264 RTP payload; `None` when it is empty or an aggregate's
/// lengths run past its end.
pub(crate) fn read(payload: &[u8]) -> Option<VideoPacket> {
    let nal_type = payload.first()? & 0x1f;
    let (starts_frame, starts_keyframe) = match nal_type {
        1..=23 => (true, starts_keyframe(nal_type)),
        STAP_A => {
            let mut keyframe = false;
            let mut rest = &payload[1..];
            while !rest.is_empty() {
                let size = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
                let unit = rest.get(2..2 + size)?;
                keyframe |= unit.first().is_some_and(|header| starts_keyframe(header & 0x1f));
                rest = &rest[2 + size..];
            }
            (true, keyframe)
        }
        FU_A => {
            let fu_header = *payload.get(1)?;
            let first_fragment = fu_header & 0x80 != 0;
            (first_fragment, first_fragment && starts_keyframe(fu_header & 0x1f))
        }
        // STAP-B, MTAP and FU-B belong to interleaved mode, which nobody
        // negotiates with the SFU; forwarded as they are.
        _ => (false, false),
    };
    Some(VideoPacket { starts_frame, starts_keyframe, picture_id: None, tl0_pic_idx: None, svc: None, data_offset: 0 })
}

fn starts_keyframe(nal_type: u8) -> bool {
    nal_type == SEQUENCE_PARAMETER_SET || nal_type == IDR_SLICE
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A NAL unit header: forbidden bit clear, NRI 3.
    fn nal(nal_type: u8) -> u8 {
        0x60 | nal_type
    }

    #[test]
    fn a_stap_a_with_the_parameter_sets_starts_a_keyframe() {
        let sps = [nal(7), 0x42, 0xe0, 0x1f];
        let pps = [nal(8), 0xce, 0x3c, 0x80];
        let mut stap = vec![nal(STAP_A)];
        for unit in [&sps[..], &pps[..]] {
            stap.extend_from_slice(&(unit.len() as u16).to_be_bytes());
            stap.extend_from_slice(unit);
        }
        let packet = read(&stap).unwrap();
        assert!(packet.starts_frame && packet.starts_keyframe);
        assert_eq!(packet.data_offset, 0);
    }

    #[test]
    fn an_idr_slice_starts_a_keyframe_only_in_its_first_fragment() {
        assert!(read(&[nal(IDR_SLICE), 0x88, 0x84]).unwrap().starts_keyframe);
        let first = read(&[nal(FU_A), 0x80 | IDR_SLICE, 0x88]).unwrap();
        assert!(first.starts_frame && first.starts_keyframe);
        let middle = read(&[nal(FU_A), IDR_SLICE, 0x00]).unwrap();
        assert!(!middle.starts_frame && !middle.starts_keyframe);
        let last = read(&[nal(FU_A), 0x40 | IDR_SLICE, 0x00]).unwrap();
        assert!(!last.starts_keyframe);
    }

    #[test]
    fn a_delta_slice_is_no_keyframe() {
        let single = read(&[nal(1), 0x9a, 0x00]).unwrap();
        assert!(single.starts_frame && !single.starts_keyframe);
        assert!(!read(&[nal(FU_A), 0x80 | 1, 0x9a]).unwrap().starts_keyframe);
    }

    #[test]
    fn refuses_what_is_cut_short() {
        assert_eq!(read(&[]), None);
        assert_eq!(read(&[nal(FU_A)]), None, "a fragment without its header");
        assert_eq!(read(&[nal(STAP_A), 0x00, 0x09, nal(7)]), None, "an aggregate claiming more than it holds");
        assert_eq!(read(&[nal(STAP_A), 0x00]), None, "half a length");
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = read(&bytes);
        }
    }
}
