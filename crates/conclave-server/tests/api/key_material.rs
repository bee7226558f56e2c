//! The server never holds an end-to-end key: the participants' actual
//! SFrame secrets, searched for raw, in hex and in base64, are in neither the
//! server's database nor its logs.

use crate::media::{meeting_with_media, MEDIA_WAIT};
use crate::support::{CapturedLogs, TestServer};
use conclave_client::media::MediaOptions;
use conclave_proto::media::MediaSource;
use conclave_store::Engine;
use data_encoding::{BASE64, BASE64URL_NOPAD, HEXLOWER, HEXUPPER};
use std::sync::OnceLock;

/// Everything the server logs from now on, at debug level (once per test binary).
pub(crate) fn captured_logs() -> CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        let filter =
            "conclave_server=debug,conclave_room=debug,conclave_sfu=debug,conclave_store=debug,conclave_blob=debug";
        tracing::subscriber::set_global_default(logs.subscriber(filter))
            .expect("no other global log subscriber in this test binary");
        logs
    })
    .clone()
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_e2ee_meetings_keys_are_in_neither_the_database_nor_the_logs() {
    let logs = captured_logs();
    let srv = TestServer::start(Engine::Sqlite).await;
    let people =
        meeting_with_media(&srv, &["Ada", "Grace"], |_| MediaOptions { e2ee: true, ..Default::default() }).await;
    for p in &people {
        for other in people.iter().filter(|o| o.id != p.id) {
            p.wait_until("decrypted video from everyone", MEDIA_WAIT, |s| {
                s.frames_from(other.id, MediaSource::Camera) >= 5
            })
            .await
            .unwrap();
        }
    }
    // Grace leaves: the others rekey, and the new epoch's secrets join the search.
    let epochs_before = people[0].stats().key_material.len();
    let mut people = people;
    people.pop().unwrap().leave().await;
    people[0]
        .wait_until("the epoch after Grace left", MEDIA_WAIT, |s| s.key_material.len() > epochs_before)
        .await
        .unwrap();

    let secrets: Vec<Vec<u8>> = people.iter().flat_map(|p| p.stats().key_material).collect();
    assert!(secrets.len() >= 6, "secrets of at least three epochs: {}", secrets.len());
    let database = srv.sqlite_bytes();
    let logs = logs.bytes();
    // The searches can find things: the meeting's log lines and its stored rows are there.
    assert!(contains(&logs, b"meeting room opened"), "the server's logs were captured");
    assert!(contains(&database, b"host@acme.test"), "the database holds the host's account");
    for secret in &secrets {
        for form in [
            secret.clone(),
            HEXLOWER.encode(secret).into_bytes(),
            HEXUPPER.encode(secret).into_bytes(),
            BASE64.encode(secret).into_bytes(),
            BASE64URL_NOPAD.encode(secret).into_bytes(),
        ] {
            assert!(!contains(&database, &form), "a key in the database: {}", HEXLOWER.encode(secret));
            assert!(!contains(&logs, &form), "a key in the logs: {}", HEXLOWER.encode(secret));
        }
    }
}
