//! The SFU's answers to offers shaped as Chromium writes them, one per
//! video codec a client may be limited to: every answer is valid SDP that
//! mirrors its offer (Chromium refuses a whole answer for one bad line),
//! the audio is always taken, and a video codec the SFU does not forward
//! is rejected with a line Chromium can parse.

use conclave_proto::media::{MediaSource, PublishedTrack};
use conclave_proto::signal::ServerMessage;
use conclave_sfu::sdp_grammar::{check, check_answer};
use conclave_sfu::{Command, MeetingKey, Rights, Sfu, SfuConfig, SfuEvent};
use std::time::Instant;

/// The SFU's answer to `offer` from a freshly admitted participant.
fn answer_to(offer: &str) -> String {
    let now = Instant::now();
    let mut sfu = Sfu::new(SfuConfig::new("127.0.0.1:4000".parse().unwrap(), 1000), now);
    let meeting = MeetingKey::from("m");
    let rights = Rights { microphone: true, camera: true, screen: true };
    sfu.handle_command(now, Command::Admit { meeting: meeting.clone(), participant: 1, rights });
    let tracks = vec![
        PublishedTrack { mid: "0".into(), source: MediaSource::Microphone },
        PublishedTrack { mid: "1".into(), source: MediaSource::Camera },
    ];
    sfu.handle_command(now, Command::Offer { meeting, participant: 1, sdp: offer.to_owned(), tracks });
    std::iter::from_fn(|| sfu.poll_event())
        .find_map(|event| match event {
            SfuEvent::Signal { message: ServerMessage::MediaAnswer { sdp }, .. } => Some(sdp),
            _ => None,
        })
        .expect("the offer is answered")
}

/// The answer's video section's formats, or `None` when it is rejected.
fn video_formats(offer: &str) -> Option<Vec<String>> {
    let answer = answer_to(offer);
    check_answer(offer, &answer).unwrap_or_else(|v| panic!("{v}\n{answer}"));
    let description = check(&answer).unwrap();
    let audio = &description.sections[0];
    assert!(!audio.is_rejected(), "the audio is taken whatever the video:\n{answer}");
    let video = &description.sections[1];
    (!video.is_rejected()).then(|| video.formats.clone())
}

/// The payload type the offer gives `codec` first.
fn payload_type(offer: &str, codec: &str) -> String {
    offer
        .lines()
        .find_map(|l| l.strip_prefix("a=rtpmap:").filter(|l| l.contains(&format!(" {codec}/"))))
        .and_then(|l| l.split(' ').next())
        .expect("the codec is offered")
        .to_owned()
}

#[test]
fn a_browser_offering_everything_sends_vp8() {
    let offer = include_str!("sdp/chromium-all-codecs.sdp");
    let formats = video_formats(offer).expect("video taken");
    assert_eq!(formats[0], payload_type(offer, "VP8"), "VP8 first: its payload header stays clear under E2EE");
}

#[test]
fn a_client_that_only_speaks_h264_is_answered_with_h264() {
    let offer = include_str!("sdp/h264-only.sdp");
    assert_eq!(video_formats(offer).expect("video taken")[0], payload_type(offer, "H264"));
}

#[test]
fn a_client_that_only_speaks_vp9_is_answered_with_vp9() {
    let offer = include_str!("sdp/vp9-only.sdp");
    assert_eq!(video_formats(offer).expect("video taken")[0], payload_type(offer, "VP9"));
}

#[test]
fn a_client_that_only_speaks_av1_is_answered_with_av1() {
    let offer = include_str!("sdp/av1-only.sdp");
    assert_eq!(video_formats(offer).expect("video taken")[0], payload_type(offer, "AV1"));
}

#[test]
fn a_codec_the_sfu_does_not_forward_is_rejected_in_valid_sdp() {
    assert_eq!(video_formats(include_str!("sdp/h265-only.sdp")), None, "H.265 is not forwarded");
}
