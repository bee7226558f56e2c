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

use conclave_e2ee::mls::GroupMember;
use conclave_e2ee::session::E2eeSession;
use conclave_e2ee::SframeError;

/// The layout of an encoded frame, as the worker names it: a VP8 frame of
/// the browser's encoded-transform type (`RTCEncodedVideoFrame.type`), or a
/// frame sealed whole (audio, VP9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Key,
    Delta,
    Whole,
}

impl FrameKind {
    pub fn parse(kind: &str) -> Option<Self> {
        match kind {
            "key" => Some(Self::Key),
            "delta" => Some(Self::Delta),
            // "audio" is what workers before VP9 said for the same layout.
            "whole" | "audio" => Some(Self::Whole),
            _ => None,
        }
    }

    /// Bytes left in the clear at the start of a frame of this kind.
    pub fn clear_len(self) -> usize {
        match self {
            Self::Key => 10,
            Self::Delta => 3,
            Self::Whole => 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("a {0:?} frame is shorter than its codec header")]
    TooShort(FrameKind),
    #[error(transparent)]
    Sframe(#[from] SframeError),
}

fn split(kind: FrameKind, frame: &[u8]) -> Result<(&[u8], &[u8]), FrameError> {
    if frame.len() < kind.clear_len() {
        return Err(FrameError::TooShort(kind));
    }
    Ok(frame.split_at(kind.clear_len()))
}

/// `clear header ‖ SFrame(rest)`, the header authenticated.
pub fn seal<M: GroupMember>(
    session: &mut E2eeSession<M>,
    kind: FrameKind,
    frame: &[u8],
) -> Result<Vec<u8>, FrameError> {
    let (clear, rest) = split(kind, frame)?;
    let sealed = session.encrypt_frame(rest, clear)?;
    Ok([clear, &sealed].concat())
}

/// The inverse of [`seal`]; any change to the clear header fails it.
pub fn open<M: GroupMember>(
    session: &mut E2eeSession<M>,
    kind: FrameKind,
    frame: &[u8],
) -> Result<Vec<u8>, FrameError> {
    let (clear, sealed) = split(kind, frame)?;
    let plain = session.decrypt_frame(sealed, clear)?;
    Ok([clear, &plain].concat())
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
}
