//! How the browser lays out an encrypted media frame.
//!
//! VP8 keeps its payload header in the clear (RFC 6386 §9.1: 3 bytes, 10 on
//! a keyframe: frame type, version, partition size and, for a keyframe, its
//! dimensions). The receiving browser's depacketiser reads it to tell
//! keyframes apart before the frame reaches the decrypting worker, and the
//! SFU reads it to switch simulcast layers on a keyframe. The clear bytes
//! are authenticated as SFrame metadata, so they cannot be altered;
//! everything after them (the picture itself) is encrypted.
//!
//! VP9 and audio are encrypted whole. What the SFU and the receiving
//! browser read of a VP9 frame (keyframe, spatial and temporal layer,
//! switching points) travels in its RTP payload descriptor, which the
//! sending browser writes from the encoder's own account after the frame
//! left the worker: nothing of the picture needs to stay readable for SVC
//! layers to be chosen per viewer.
//!
//! H.264 keeps its parameter sets and the first slice's header readable,
//! and stays Annex B with no start code inside its ciphertext, because the
//! sending browser's packetiser splits the frame at its start codes
//! ([`crate::h264`]).
//!
//! AV1 stays a sequence of OBUs, each one's header and size readable and
//! its payload sealed in place, with the SFrame header and tag in one more
//! OBU at the end, because its packetiser too walks the frame after the
//! worker ([`crate::av1`]).

use crate::{av1, h264};
use conclave_e2ee::mls::GroupMember;
use conclave_e2ee::session::E2eeSession;
use conclave_e2ee::sframe::Header;
use conclave_e2ee::SframeError;

/// The layout of an encoded frame, as the worker names it: a VP8 frame of
/// the browser's encoded-transform type (`RTCEncodedVideoFrame.type`), a
/// frame sealed whole (audio, VP9), an H.264 access unit or an AV1
/// temporal unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Key,
    Delta,
    Whole,
    H264,
    Av1,
}

impl FrameKind {
    pub fn parse(kind: &str) -> Option<Self> {
        match kind {
            "key" => Some(Self::Key),
            "delta" => Some(Self::Delta),
            // "audio" is what workers before VP9 said for the same layout.
            "whole" | "audio" => Some(Self::Whole),
            "h264" => Some(Self::H264),
            "av1" => Some(Self::Av1),
            _ => None,
        }
    }

    /// Bytes left in the clear at the start of `frame`, of this kind.
    fn clear_len(self, frame: &[u8]) -> Result<usize, FrameError> {
        let len = match self {
            Self::Key => 10,
            Self::Delta => 3,
            Self::Whole => 0,
            Self::H264 => return crate::h264::clear_len(frame).ok_or(FrameError::NoSlice),
            // Readable parts lie between the sealed ones ([`seal_av1`]).
            Self::Av1 => 0,
        };
        if frame.len() < len {
            return Err(FrameError::TooShort(self));
        }
        Ok(len)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("a {0:?} frame is shorter than its codec header")]
    TooShort(FrameKind),
    #[error("an H.264 frame without a coded slice")]
    NoSlice,
    #[error("an AV1 frame that is no sequence of OBUs, or has none to send")]
    NotObus,
    #[error("an AV1 frame without its sealed-frame metadata")]
    NotSealed,
    #[error(transparent)]
    Sframe(#[from] SframeError),
}

fn split(kind: FrameKind, frame: &[u8]) -> Result<(&[u8], &[u8]), FrameError> {
    Ok(frame.split_at(kind.clear_len(frame)?))
}

/// `clear header ‖ SFrame(rest)`, the header authenticated (an H.264
/// frame's as its NAL units, its sealed part escaped).
pub fn seal<M: GroupMember>(
    session: &mut E2eeSession<M>,
    kind: FrameKind,
    frame: &[u8],
) -> Result<Vec<u8>, FrameError> {
    if kind == FrameKind::Av1 {
        return seal_av1(session, frame);
    }
    let (clear, rest) = split(kind, frame)?;
    if kind == FrameKind::H264 {
        let sealed = session.encrypt_frame(rest, &h264::authenticated(clear))?;
        return Ok([clear, &h264::escape(h264::trailing_zeros(clear), &sealed)].concat());
    }
    let sealed = session.encrypt_frame(rest, clear)?;
    Ok([clear, &sealed].concat())
}

/// The inverse of [`seal`]; any change to the clear header fails it.
pub fn open<M: GroupMember>(
    session: &mut E2eeSession<M>,
    kind: FrameKind,
    frame: &[u8],
) -> Result<Vec<u8>, FrameError> {
    if kind == FrameKind::Av1 {
        return open_av1(session, frame);
    }
    let (clear, sealed) = split(kind, frame)?;
    if kind == FrameKind::H264 {
        let sealed = h264::unescape(h264::trailing_zeros(clear), sealed);
        let plain = session.decrypt_frame(&sealed, &h264::authenticated(clear))?;
        return Ok([clear, &plain].concat());
    }
    let plain = session.decrypt_frame(sealed, clear)?;
    Ok([clear, &plain].concat())
}

/// The OBUs the packetiser carries, each payload sealed in place (one
/// SFrame ciphertext across them all), then the SFrame header and tag.
fn seal_av1<M: GroupMember>(session: &mut E2eeSession<M>, frame: &[u8]) -> Result<Vec<u8>, FrameError> {
    let obus: Vec<_> = av1::obus(frame).ok_or(FrameError::NotObus)?.into_iter().filter(av1::Obu::is_carried).collect();
    if obus.is_empty() {
        return Err(FrameError::NotObus);
    }
    let plain = av1::payloads(&obus);
    let sealed = session.encrypt_frame(&plain, &av1::authenticated(&obus))?;
    let (_, header_len) = Header::decode(&sealed)?;
    let (header, rest) = sealed.split_at(header_len);
    let (ciphertext, tag) = rest.split_at(plain.len());
    Ok(av1::assemble(&obus, ciphertext, Some(&[header, tag].concat())))
}

fn open_av1<M: GroupMember>(session: &mut E2eeSession<M>, frame: &[u8]) -> Result<Vec<u8>, FrameError> {
    let obus = av1::obus(frame).ok_or(FrameError::NotObus)?;
    let (carried, trailer) = av1::split_trailer(&obus).ok_or(FrameError::NotSealed)?;
    let (_, header_len) = Header::decode(trailer)?;
    let (header, tag) = trailer.split_at(header_len);
    let sealed = [header, &av1::payloads(carried), tag].concat();
    let plain = session.decrypt_frame(&sealed, &av1::authenticated(carried))?;
    Ok(av1::assemble(carried, &plain, None))
}

#[cfg(test)]
mod tests {
    use conclave_e2ee::agent::MEETING_SUITE as SUITE;
    use conclave_e2ee::mls::OpenMlsMember;

    use super::*;

    fn pair() -> (E2eeSession<OpenMlsMember>, E2eeSession<OpenMlsMember>) {
        let mut host = E2eeSession::new(OpenMlsMember::new(b"1").unwrap(), SUITE);
        host.member.create_group(b"g", None).unwrap();
        let mut guest = E2eeSession::new(OpenMlsMember::new(b"2").unwrap(), SUITE);
        let commit = host.member.add(&[guest.member.key_package().unwrap()]).unwrap();
        host.confirm_commit().unwrap();
        guest.member.join(&commit.welcome.unwrap()).unwrap();
        guest.rekey().unwrap();
        (host, guest)
    }

    #[test]
    fn keyframes_keep_their_vp8_header_in_the_clear_and_the_picture_sealed() {
        let (mut host, mut guest) = pair();
        let picture: Vec<u8> = (0..200u8).collect();
        let keyframe = [&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01][..], &picture].concat();
        let sealed = seal(&mut host, FrameKind::Key, &keyframe).unwrap();
        assert_eq!(&sealed[..10], &keyframe[..10], "the VP8 keyframe header stays readable");
        assert!(!sealed.windows(16).any(|w| picture.windows(16).any(|p| p == w)), "no run of the picture shows");
        assert_eq!(open(&mut guest, FrameKind::Key, &sealed).unwrap(), keyframe);
    }

    #[test]
    fn a_changed_clear_header_or_kind_is_refused() {
        let (mut host, mut guest) = pair();
        let delta = b"\x31\x02\x00 the rest of a delta frame".to_vec();
        let mut sealed = seal(&mut host, FrameKind::Delta, &delta).unwrap();
        assert!(open(&mut guest, FrameKind::Key, &sealed).is_err(), "read as the wrong kind");
        sealed[0] ^= 1;
        assert!(open(&mut guest, FrameKind::Delta, &sealed).is_err(), "the header is authenticated");
    }

    #[test]
    fn audio_and_vp9_are_sealed_whole_and_truncated_vp8_refused() {
        let (mut host, mut guest) = pair();
        let audio = b"\xfc opus".to_vec();
        let sealed = seal(&mut host, FrameKind::Whole, &audio).unwrap();
        assert_ne!(sealed[0], audio[0]);
        assert_eq!(open(&mut guest, FrameKind::Whole, &sealed).unwrap(), audio);
        // A VP9 keyframe's uncompressed header (frame marker, profile, sync
        // code 0x49 0x83 0x42) shows nothing of itself once sealed.
        let vp9: Vec<u8> = [&[0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0][..], &(0..120u8).collect::<Vec<_>>()].concat();
        let sealed = seal(&mut host, FrameKind::Whole, &vp9).unwrap();
        assert!(!sealed.windows(3).any(|w| w == [0x49, 0x83, 0x42]), "the sync code is sealed");
        assert_eq!(open(&mut guest, FrameKind::Whole, &sealed).unwrap(), vp9);
        assert!(open(&mut guest, FrameKind::Key, &sealed).is_err(), "read with VP8's layout");
        assert_eq!(FrameKind::parse("audio"), Some(FrameKind::Whole), "as older workers name it");
        assert!(matches!(seal(&mut host, FrameKind::Key, b"\x10\x02"), Err(FrameError::TooShort(FrameKind::Key))));
        assert!(open(&mut guest, FrameKind::Delta, b"\x31").is_err());
    }

    #[test]
    fn h264_keeps_its_parameter_sets_and_slice_header_readable_and_no_start_code_in_what_is_sealed() {
        let (mut host, mut guest) = pair();
        // A slice as an encoder writes it: escaped already, so with no start
        // code, but with many zero bytes.
        let raw: Vec<u8> = (0..3000u32).map(|i| [0, 0, 1, 0, 0, 3, (i % 251) as u8][i as usize % 7]).collect();
        let picture = h264::escape(0, &raw);
        let frame = h264::tests::idr_frame(&picture);
        let clear = h264::clear_len(&frame).unwrap();
        for _ in 0..50 {
            let sealed = seal(&mut host, FrameKind::H264, &frame).unwrap();
            assert_eq!(&sealed[..clear], &frame[..clear], "SPS, PPS and the slice's header stay readable");
            let units = h264::nal_units(&sealed);
            assert_eq!(units.len(), 3, "the sealed slice is one NAL unit: no start code in it");
            assert_eq!(sealed[units[2].start] & 0x1f, 5, "still an IDR slice to the depacketiser and the SFU");
            // The receiving browser rebuilds NAL units after four-byte start codes.
            let rebuilt: Vec<u8> =
                units.iter().flat_map(|r| [&[0u8, 0, 0, 1][..], &sealed[r.clone()]].concat()).collect();
            let opened = open(&mut guest, FrameKind::H264, &rebuilt).unwrap();
            let units = |f: &[u8]| -> Vec<Vec<u8>> { h264::nal_units(f).into_iter().map(|r| f[r].to_vec()).collect() };
            assert_eq!(units(&opened), units(&frame), "every NAL unit back, the picture included");
        }
        let mut sealed = seal(&mut host, FrameKind::H264, &frame).unwrap();
        let runs: std::collections::HashSet<&[u8]> = picture.windows(16).collect();
        assert!(!sealed[clear..].windows(16).any(|w| runs.contains(w)), "no run of the picture shows");
        sealed[7] ^= 1; // inside the SPS
        assert!(open(&mut guest, FrameKind::H264, &sealed).is_err(), "the parameter sets are authenticated");
        let sps_only = &frame[..frame.len() - picture.len() - 7];
        assert!(matches!(seal(&mut host, FrameKind::H264, sps_only), Err(FrameError::NoSlice)));
        // Whatever a frame from the network holds, opening refuses it without panicking.
        for forged in [&b"\x00\x00\x01"[..], b"\x00\x00\x00\x01\x65", b"\x00\x00\x01\x65\x88\x84\x00\x00\x03", b""] {
            assert!(open(&mut guest, FrameKind::H264, forged).is_err(), "{forged:?}");
        }
        assert_eq!(FrameKind::parse("h264"), Some(FrameKind::H264));
    }

    #[test]
    fn av1_keeps_its_obu_headers_and_sizes_readable_and_every_payload_sealed() {
        let (mut host, mut guest) = pair();
        let picture: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        let frame = av1::tests::keyframe(&picture);
        let original = av1::obus(&frame).unwrap();
        let carried: Vec<_> = original.iter().copied().filter(av1::Obu::is_carried).collect();
        let sealed = seal(&mut host, FrameKind::Av1, &frame).unwrap();
        let obus = av1::obus(&sealed).expect("still a sequence of OBUs for the packetiser");
        // The temporal delimiter is gone (the packetiser drops it); the
        // sequence header and the frame keep their headers and sizes; a
        // metadata OBU of a private type ends the frame.
        assert_eq!(obus.iter().map(av1::Obu::kind).collect::<Vec<_>>(), [1, 6, 5]);
        for (sealed, plain) in obus.iter().zip(&carried) {
            assert_eq!(sealed.header & !0x02, plain.header & !0x02);
            assert_eq!(sealed.payload.len(), plain.payload.len());
            assert_ne!(sealed.payload, plain.payload, "every payload is sealed, the sequence header's too");
        }
        assert_eq!(obus[2].payload[0], av1::SEALED_METADATA_TYPE);
        let runs: std::collections::HashSet<&[u8]> = picture.windows(16).collect();
        assert!(!sealed.windows(16).any(|w| runs.contains(w)), "no run of the picture shows");
        // The receiving depacketiser writes every OBU it carried back with a
        // size field: what the worker opens is the frame as it was sent.
        let received = av1::assemble(&obus, &av1::payloads(&obus), None);
        let opened = open(&mut guest, FrameKind::Av1, &received).unwrap();
        assert_eq!(opened, av1::assemble(&carried, &av1::payloads(&carried), None), "every carried OBU back, sized");
        assert_eq!(av1::obus(&opened).unwrap().last().unwrap().payload, picture.as_slice());
        assert_eq!(FrameKind::parse("av1"), Some(FrameKind::Av1));
    }

    #[test]
    fn an_av1_frame_with_a_changed_layer_size_or_trailer_is_refused() {
        let (mut host, mut guest) = pair();
        // A delta frame of the middle temporal layer: an OBU_FRAME with an
        // extension byte (temporal id 1) and a two-byte size.
        let frame = [&[0x36, 0x20, 0x90, 0x01][..], &[0x5a; 144]].concat();
        let sealed = seal(&mut host, FrameKind::Av1, &frame).unwrap();
        assert_eq!(&sealed[..2], &[0x36, 0x20], "the layer stays readable");
        let mut relayered = sealed.clone();
        relayered[1] = 0x40;
        assert!(open(&mut guest, FrameKind::Av1, &relayered).is_err(), "the extension is authenticated");
        // The same bytes cut into two OBUs at another place.
        let obus = av1::obus(&sealed).unwrap();
        let body = obus[0].payload;
        let cut = [&[0x32, 0x10][..], &body[..16], &[0x36, 0x20, 0x80, 0x01], &body[16..]].concat();
        let resized = [&cut[..], &sealed[sealed.len() - (2 + obus[1].payload.len())..]].concat();
        assert!(
            matches!(open(&mut guest, FrameKind::Av1, &resized), Err(FrameError::Sframe(_))),
            "OBU sizes are authenticated"
        );
        let untrailed = av1::assemble(&obus[..1], obus[0].payload, None);
        assert!(matches!(open(&mut guest, FrameKind::Av1, &untrailed), Err(FrameError::NotSealed)));
        assert!(matches!(open(&mut guest, FrameKind::Av1, b"\x32\x09"), Err(FrameError::NotObus)));
        assert!(
            matches!(seal(&mut host, FrameKind::Av1, b"\x12\x00"), Err(FrameError::NotObus)),
            "a temporal delimiter alone"
        );
        assert_eq!(open(&mut guest, FrameKind::Av1, &sealed).unwrap(), frame);
    }
}
