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

/// The offer's session part and its sections, each with its lines (CRLF
/// kept), to build offers with sections added or taken away.
fn sections(offer: &str) -> (String, Vec<String>) {
    let mut parts = offer.split_inclusive("\r\n").fold(vec![String::new()], |mut parts, line| {
        if line.starts_with("m=") {
            parts.push(String::new());
        }
        parts.last_mut().expect("a part").push_str(line);
        parts
    });
    let session = parts.remove(0);
    (session, parts)
}

/// A copy of `section` as another m-line: its own mid and stream id.
fn another(section: &str, mid: &str) -> String {
    section
        .split_inclusive("\r\n")
        .map(|line| match line {
            l if l.starts_with("a=mid:") => format!("a=mid:{mid}\r\n"),
            l if l.starts_with("a=msid:") => format!("a=msid:stream v{mid}\r\n"),
            l if l.starts_with("a=ssrc") || l.starts_with("a=ssrc-group") => String::new(),
            l => l.to_owned(),
        })
        .collect()
}

#[test]
fn an_offer_with_more_sections_than_usual_is_answered_section_by_section() {
    let offer = include_str!("sdp/chromium-all-codecs.sdp");
    let (session, sections) = sections(offer);
    // A second camera (a screen share offered in the same breath) and a
    // data channel, which the SFU has no use for.
    let data = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:Xk3p\r\n\
                a=ice-pwd:8cQn2mLk3ZVwqvRtu5HbYp0g\r\na=ice-options:trickle\r\n\
                a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC\r\n\
                a=setup:actpass\r\na=mid:3\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";
    let offer = format!(
        "{}{}{}{}{data}",
        session.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2 3"),
        sections[0],
        sections[1],
        another(&sections[1], "2"),
    );
    check(&offer).unwrap_or_else(|v| panic!("the test's offer: {v}\n{offer}"));
    let answer = answer_to(&offer);
    check_answer(&offer, &answer).unwrap_or_else(|v| panic!("{v}\n{answer}"));
    let description = check(&answer).unwrap();
    assert_eq!(description.sections.len(), 4, "one answer section per offered one:\n{answer}");
    assert!(!description.sections[0].is_rejected() && !description.sections[1].is_rejected(), "{answer}");
    assert!(!description.sections[2].is_rejected(), "the second video is taken too:\n{answer}");
}

#[test]
fn an_offer_with_audio_alone_is_answered() {
    let offer = include_str!("sdp/chromium-all-codecs.sdp");
    let (session, sections) = sections(offer);
    let offer = format!("{}{}", session.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0"), sections[0]);
    let answer = answer_to(&offer);
    check_answer(&offer, &answer).unwrap_or_else(|v| panic!("{v}\n{answer}"));
    let description = check(&answer).unwrap();
    assert_eq!(description.sections.len(), 1);
    assert!(!description.sections[0].is_rejected(), "{answer}");
}

/// An offer that drops a section it negotiated before breaks JSEP's rule
/// that m-lines are never removed: it is refused with a reason, not left
/// unanswered, and the participant's next valid offer is answered.
#[test]
fn an_offer_missing_a_negotiated_section_is_refused_aloud_and_the_next_one_answered() {
    let now = Instant::now();
    let mut sfu = Sfu::new(SfuConfig::new("127.0.0.1:4000".parse().unwrap(), 1000), now);
    let meeting = MeetingKey::from("m");
    let rights = Rights { microphone: true, camera: true, screen: true };
    sfu.handle_command(now, Command::Admit { meeting: meeting.clone(), participant: 1, rights });
    let full = include_str!("sdp/chromium-all-codecs.sdp");
    let (session, sections) = sections(full);
    let audio_only = format!("{}{}", session.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0"), sections[0]);
    let mut offer = |sdp: &str| {
        let tracks = vec![PublishedTrack { mid: "0".into(), source: MediaSource::Microphone }];
        sfu.handle_command(
            now,
            Command::Offer { meeting: meeting.clone(), participant: 1, sdp: sdp.to_owned(), tracks },
        );
        std::iter::from_fn(|| sfu.poll_event())
            .find_map(|event| match event {
                SfuEvent::Signal {
                    message: m @ (ServerMessage::MediaAnswer { .. } | ServerMessage::Error { .. }),
                    ..
                } => Some(m),
                _ => None,
            })
            .expect("every offer is answered or refused")
    };
    assert!(matches!(offer(full), ServerMessage::MediaAnswer { .. }));
    let refused = offer(&audio_only);
    let ServerMessage::Error { code, message, .. } = &refused else { panic!("refused, not answered: {refused:?}") };
    assert_eq!(code, "invalid_media", "{message}");
    assert!(matches!(offer(full), ServerMessage::MediaAnswer { .. }), "the session goes on");
}
