//! Media frames as a receiving browser's E2EE worker is handed them: any
//! bytes, read as every layout (an H.264 access unit, an AV1 temporal unit,
//! a VP8 keyframe or delta frame, a frame sealed whole). Opening never
//! panics and refuses what was not sealed in the group; an H.264 frame
//! sealed for real stays Annex B with no start code in what is sealed, an
//! AV1 frame stays a sequence of OBUs, and both open.
#![no_main]

use conclave_e2ee::agent::MEETING_SUITE;
use conclave_e2ee::mls::{GroupMember, OpenMlsMember};
use conclave_e2ee::session::E2eeSession;
use conclave_e2ee_wasm::frame::{open, seal, FrameKind};
use conclave_e2ee_wasm::{av1, h264};
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};

type Pair = (E2eeSession<OpenMlsMember>, E2eeSession<OpenMlsMember>);

/// Two members of one group, made once: MLS set-up is slow next to a run.
fn pair() -> &'static Mutex<Pair> {
    static PAIR: OnceLock<Mutex<Pair>> = OnceLock::new();
    PAIR.get_or_init(|| {
        let mut host = E2eeSession::new(OpenMlsMember::new(b"1").unwrap(), MEETING_SUITE);
        host.member.create_group(b"g", None).unwrap();
        let mut guest = E2eeSession::new(OpenMlsMember::new(b"2").unwrap(), MEETING_SUITE);
        let commit = host.member.add(&[guest.member.key_package().unwrap()]).unwrap();
        host.confirm_commit().unwrap();
        guest.member.join(&commit.welcome.unwrap()).unwrap();
        guest.rekey().unwrap();
        Mutex::new((host, guest))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut sessions = pair().lock().unwrap();
    let (host, guest) = &mut *sessions;
    for kind in [FrameKind::H264, FrameKind::Av1, FrameKind::Key, FrameKind::Delta, FrameKind::Whole] {
        assert!(open(guest, kind, data).is_err(), "a frame nobody sealed opened as {kind:?}");
    }
    // The same bytes as an encoder's slice (escaped, as encoders write
    // them) behind a parameter set: sealed, still one slice to the
    // packetiser, and back whole.
    let slice = [&[0x65, 0x88, 0x84][..], &h264::escape(0, data)].concat();
    let frame = [&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1][..], &slice].concat();
    let sealed = seal(host, FrameKind::H264, &frame).unwrap();
    assert_eq!(h264::nal_units(&sealed).len(), 2, "a start code inside the sealed slice");
    assert_eq!(open(guest, FrameKind::H264, &sealed).unwrap(), frame);
    // The same bytes as an AV1 frame OBU after a sequence header: sealed,
    // still OBUs with the same headers and sizes, and back whole.
    let mut frame = vec![0x0a, 0x02, 0x00, 0x01, 0x32];
    av1::write_leb128(data.len(), &mut frame);
    frame.extend_from_slice(data);
    let sealed = seal(host, FrameKind::Av1, &frame).unwrap();
    let obus = av1::obus(&sealed).expect("a sealed AV1 frame is OBUs");
    assert_eq!(obus.iter().map(|o| (o.kind(), o.payload.len())).take(2).collect::<Vec<_>>(), [(1, 2), (6, data.len())]);
    assert_eq!(open(guest, FrameKind::Av1, &sealed).unwrap(), frame);
});
