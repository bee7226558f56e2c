//! A meeting sends video in a codec everyone in it decodes: a room system
//! that decodes nothing but H.264 joins a browser, the browser is told to
//! send H.264; the room system leaves, the browser goes back to VP8.

use conclave_proto::media::{MediaSource, PublishedTrack, VideoCodec};
use conclave_proto::signal::{ParticipantId, ServerMessage};
use conclave_sfu::{Command, MeetingKey, Rights, Sfu, SfuConfig, SfuEvent};
use std::time::Instant;

const BROWSER: &str = include_str!("sdp/chromium-all-codecs.sdp");
const ROOM_SYSTEM: &str = include_str!("sdp/h264-only.sdp");

/// Who was told which codec, in order, since the last call.
fn codecs_told(sfu: &mut Sfu) -> Vec<(ParticipantId, VideoCodec)> {
    std::iter::from_fn(|| sfu.poll_event())
        .filter_map(|event| match event {
            SfuEvent::Signal { participant, message: ServerMessage::PublishCodec { codec }, .. } => {
                Some((participant, codec))
            }
            _ => None,
        })
        .collect()
}

fn join(sfu: &mut Sfu, now: Instant, participant: ParticipantId, offer: &str) {
    let meeting = MeetingKey::from("m");
    let rights = Rights { microphone: true, camera: true, screen: true };
    sfu.handle_command(now, Command::Admit { meeting: meeting.clone(), participant, rights });
    let tracks = vec![
        PublishedTrack { mid: "0".into(), source: MediaSource::Microphone },
        PublishedTrack { mid: "1".into(), source: MediaSource::Camera },
    ];
    sfu.handle_command(now, Command::Offer { meeting, participant, sdp: offer.to_owned(), tracks });
}

#[test]
fn a_participant_who_decodes_only_h264_moves_the_meeting_to_h264_and_back() {
    let now = Instant::now();
    let mut sfu = Sfu::new(SfuConfig::new("127.0.0.1:4000".parse().unwrap(), 1000), now);
    join(&mut sfu, now, 1, BROWSER);
    join(&mut sfu, now, 2, BROWSER);
    assert_eq!(codecs_told(&mut sfu), [], "browsers decode VP8: nobody hears of codecs");

    join(&mut sfu, now, 3, ROOM_SYSTEM);
    let told = codecs_told(&mut sfu);
    for participant in [1, 2, 3] {
        assert!(told.contains(&(participant, VideoCodec::H264)), "{participant} told to send H.264: {told:?}");
    }
    assert_eq!(told.len(), 3, "each once: {told:?}");

    // Someone else joining changes nothing, but is told the meeting's codec.
    join(&mut sfu, now, 4, BROWSER);
    assert_eq!(codecs_told(&mut sfu), [(4, VideoCodec::H264)]);

    sfu.handle_command(now, Command::Leave { meeting: MeetingKey::from("m"), participant: 3 });
    let mut told = codecs_told(&mut sfu);
    told.sort_by_key(|(participant, _)| *participant);
    assert_eq!(told, [(1, VideoCodec::Vp8), (2, VideoCodec::Vp8), (4, VideoCodec::Vp8)], "back to VP8");
}
