//! The video codec a meeting sends in.
//!
//! The SFU forwards video as it came, without transcoding, so a camera
//! sent in a codec that someone cannot decode is lost to them: a room
//! system that decodes nothing but H.264 would see no one. Each
//! participant's answers to the server's offers say what it decodes (the
//! formats it keeps in the sections it receives on); the meeting then
//! sends in the first codec, in [`VideoCodec::PREFERENCE`] order, that
//! everyone decodes, and publishers are told (`publish_codec`) whenever
//! that changes.

use conclave_proto::media::VideoCodec;

/// The video codecs a participant's description says it receives: the
/// formats of its video sections marked `recvonly` or `sendrecv` (or with
/// no direction, which means both). `None` when it receives no video in
/// it, which says nothing about what it decodes.
pub(crate) fn received_video_codecs(sdp: &str) -> Option<Vec<VideoCodec>> {
    let mut codecs = Vec::new();
    let mut any_section = false;
    for section in sdp.split("\nm=").skip(1) {
        let mut lines = section.lines().map(str::trim_end);
        let Some(media) = lines.next() else { continue };
        let mut words = media.split(' ');
        if words.next() != Some("video") || words.next() == Some("0") {
            continue;
        }
        let mut receives = true;
        let mut formats = Vec::new();
        for line in lines {
            match line {
                "a=sendonly" | "a=inactive" => receives = false,
                _ => {
                    let name = line
                        .strip_prefix("a=rtpmap:")
                        .and_then(|map| map.split_once(' '))
                        .and_then(|(_, encoding)| encoding.split('/').next());
                    formats.extend(name.and_then(VideoCodec::from_sdp_name));
                }
            }
        }
        if receives {
            any_section = true;
            for codec in formats {
                if !codecs.contains(&codec) {
                    codecs.push(codec);
                }
            }
        }
    }
    any_section.then_some(codecs)
}

/// The codec a meeting sends in, given what each participant decodes
/// (`None`: not known yet, taken as everything): the first in preference
/// order that everyone decodes, or, when none is, the one the most do.
pub(crate) fn meeting_codec<'a>(decoders: impl IntoIterator<Item = Option<&'a [VideoCodec]>>) -> VideoCodec {
    let mut decoded_by = [0usize; VideoCodec::PREFERENCE.len()];
    for decodes in decoders {
        for (i, codec) in VideoCodec::PREFERENCE.iter().enumerate() {
            if decodes.is_none_or(|d| d.contains(codec)) {
                decoded_by[i] += 1;
            }
        }
    }
    // When everyone decodes one, the most are everyone.
    let most = decoded_by.iter().copied().max().unwrap_or(0);
    VideoCodec::PREFERENCE[decoded_by.iter().position(|&n| n == most).unwrap_or(0)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use VideoCodec::*;

    #[test]
    fn the_sections_a_participant_receives_on_say_what_it_decodes() {
        let answer = "v=0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=recvonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 102 103\r\na=recvonly\r\na=rtpmap:102 H264/90000\r\na=rtpmap:103 rtx/90000\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 98\r\na=rtpmap:98 VP9/90000\r\n";
        assert_eq!(received_video_codecs(answer), Some(vec![H264]), "its own camera's section says what it sends");
        let none = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\nm=video 9 X 96\r\na=inactive\r\n";
        assert_eq!(received_video_codecs(none), None);
        let both = "v=0\r\nm=video 9 X 96 45\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:45 AV1/90000\r\n";
        assert_eq!(received_video_codecs(both), Some(vec![Vp8, Av1]), "no direction is sendrecv");
    }

    #[test]
    fn the_meeting_sends_what_everyone_decodes_vp8_first() {
        let browser: &[VideoCodec] = &[Vp8, Vp9, H264, Av1];
        let room_system: &[VideoCodec] = &[H264];
        assert_eq!(meeting_codec([Some(browser), Some(browser)]), Vp8);
        assert_eq!(meeting_codec([Some(browser), Some(room_system), None]), H264);
        assert_eq!(meeting_codec([]), Vp8);
        assert_eq!(meeting_codec([None]), Vp8);
        // Nothing in common: the codec the most decode.
        let vp9_only: &[VideoCodec] = &[Vp9];
        assert_eq!(meeting_codec([Some(vp9_only), Some(room_system), Some(browser), Some(browser)]), H264);
        assert_eq!(meeting_codec([Some(vp9_only), Some(vp9_only), Some(room_system)]), Vp9);
    }
}
