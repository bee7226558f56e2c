//! AV1's RTP payload (the AOM "RTP Payload Format for AV1", §4.4): one
//! aggregation header byte, Z|Y|W|W|N|-|-|-, before the OBU elements. Z says
//! the first element continues an OBU from the previous packet; N marks the
//! first packet of a coded video sequence, which a decoder can start from.

use super::VideoPacket;

const Z: u8 = 0x80;
const N: u8 = 0x08;

/// Reads an AV1 RTP payload; `None` when it has no OBU data after its
/// aggregation header.
pub(crate) fn read(payload: &[u8]) -> Option<VideoPacket> {
    let header = *payload.first()?;
    payload.get(1)?;
    let starts_frame = header & Z == 0;
    Some(VideoPacket {
        starts_frame,
        starts_keyframe: starts_frame && header & N != 0,
        picture_id: None,
        tl0_pic_idx: None,
        svc: None,
        data_offset: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_packet_of_a_coded_video_sequence_is_a_keyframe() {
        let packet = read(&[N | 0x10, 0x0a, 0x0b]).unwrap();
        assert!(packet.starts_frame && packet.starts_keyframe);
        assert_eq!(packet.data_offset, 1);
    }

    #[test]
    fn a_continued_obu_or_a_plain_frame_is_no_keyframe() {
        assert!(!read(&[Z | N, 0x00]).unwrap().starts_keyframe, "N only counts where an OBU begins");
        let delta = read(&[0x10, 0x32]).unwrap();
        assert!(delta.starts_frame && !delta.starts_keyframe);
    }

    #[test]
    fn an_aggregation_header_alone_is_refused() {
        assert_eq!(read(&[]), None);
        assert_eq!(read(&[N]), None);
    }
}
