//! Files in conversations through the real server: sealed on the sender's
//! device, kept where the organisation chose (the server's disk, or its
//! own bucket at a real S3-compatible server on loopback), opened only by
//! members' devices, and erased with the message that shared them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::conversations::{all_in_group, group_request, opaque_message, team, team_on, Team, WAIT};
use crate::support::TestServer;
use crate::{assert_problem, on_both_engines};
use conclave_blob::testing::S3Server;
use conclave_client::chat::{Attached, ChatEvent};
use conclave_e2ee::file::seal_one;
use conclave_proto::conversation::SendMessageRequest;
use conclave_proto::file::{StorageSettings, FILE_CHUNK_BYTES};
use conclave_proto::{OrgPolicyUpdate, OrgRole, Setting};
use conclave_store::Engine;

/// A file whose every kilobyte says what it is, so that any copy of its
/// plaintext is found by searching for `marker`.
fn confidential_file(dir: &Path, name: &str, size: usize, marker: &str) -> PathBuf {
    let line = format!("{marker} line of the quarterly figures\n");
    let bytes: Vec<u8> = line.bytes().cycle().take(size).collect();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every file under a folder, recursively, with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            match std::fs::read(&path) {
                Ok(bytes) => found.push((path.clone(), bytes)),
                // Gone between listing and reading (a journal or a part
                // renamed into place while the server works): nothing kept.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("{}: {e}", path.display()),
            }
        }
    }
    found
}

/// The file a device read in the conversation, waiting for it to arrive.
async fn shared_file_seen_by(device: &mut conclave_client::chat::ChatDevice, id: &str) -> (String, Attached) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        for event in device.sync().await.unwrap() {
            if let ChatEvent::Message { conversation_id, text, file: Some(file), .. } = event {
                if conversation_id == id {
                    return (text, file);
                }
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "{} never saw the file", device.device_id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn files_are_shared_sealed_and_erased_with_their_message(engine: Engine) {
    let logs = crate::key_material::captured_logs();
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Figures", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let dir = tempfile::tempdir().unwrap();
    let size = 2 * FILE_CHUNK_BYTES as usize + 123;
    let source = confidential_file(dir.path(), "figures.csv", size, "CONFIDENTIAL-FIGURES");
    let preview = confidential_file(dir.path(), "preview.png", 3000, "PREVIEW-PIXELS");

    let mut reported = Vec::new();
    let (accepted, sent) = t.devices[0]
        .send_file(&group.id, &source, Some(&preview), Some("the figures"), |done, total| reported.push((done, total)))
        .await
        .unwrap();
    assert_eq!(reported.len(), 3, "progress after every part: {reported:?}");
    assert_eq!(reported.last(), Some(&(size as u64, size as u64)));
    assert_eq!(
        (sent.file.name.as_str(), sent.file.mime.as_str(), sent.file.size),
        ("figures.csv", "text/csv", size as u64)
    );

    // Every device of both people reads the message with its file, the
    // sender's other device too, and the sender's own device keeps it.
    for device in t.devices.iter_mut() {
        let (caption, file) = shared_file_seen_by(device, &group.id).await;
        assert_eq!((caption.as_str(), &file), ("the figures", &sent), "{}", device.device_id);
    }
    let held = t.devices[0].history(&group.id).iter().find(|m| m.seq == accepted.seq).unwrap();
    assert_eq!(held.file.as_ref(), Some(&sent));

    // Grace's phone downloads both, opened and checked on the device.
    let (file, thumbnail) = (&sent.file, sent.thumbnail.as_ref().unwrap());
    let saved = dir.path().join("saved.csv");
    t.grace.download_file(file, &saved, |_, _| {}).await.unwrap();
    assert_eq!(std::fs::read(&saved).unwrap(), std::fs::read(&source).unwrap());
    t.grace.download_file(thumbnail, &dir.path().join("preview-saved.png"), |_, _| {}).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("preview-saved.png")).unwrap(), std::fs::read(&preview).unwrap());
    assert!(!dir.path().join("saved.csv.partial").exists(), "the partial file took its name");

    // What the server keeps is sealed: its disk holds the parts, none of
    // the plaintext; its database holds neither plaintext nor key.
    let stored = files_under(&t.srv.data_dir.path().join("files"));
    assert_eq!(
        stored.len(),
        3 + 1,
        "three parts and the preview's one: {:?}",
        stored.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    for (path, bytes) in &stored {
        assert!(
            !holds(bytes, "CONFIDENTIAL-FIGURES") && !holds(bytes, "PREVIEW-PIXELS"),
            "{} holds plaintext",
            path.display()
        );
    }
    let logged = logs.bytes();
    for secret in ["CONFIDENTIAL-FIGURES", "PREVIEW-PIXELS", "figures.csv", file.key.as_str(), thumbnail.key.as_str()] {
        assert!(!holds(&logged, secret), "the logs hold {secret}");
    }
    if engine == Engine::Sqlite {
        let database = t.srv.sqlite_bytes();
        for secret in ["CONFIDENTIAL-FIGURES", "figures.csv", file.key.as_str(), thumbnail.key.as_str()] {
            assert!(!holds(&database, secret), "the database holds {secret}");
        }
    }

    // Someone of the organisation who is not in the conversation learns
    // nothing of the file, not even that it exists.
    let (eve, _) = t.srv.add_member(&t.ada, &t.org, "eve@acme.test", OrgRole::Member).await;
    assert_problem!(eve.file_status(&file.file_id).await, 404, "not-found");
    assert_problem!(eve.file_part(&file.file_id, 0).await, 404, "not-found");
    let status = t.grace.file_status(&file.file_id).await.unwrap();
    assert_eq!((status.complete, status.message_seq, status.parts), (true, Some(accepted.seq), 3));

    // Deleting the message deletes the file's ciphertext, preview included.
    t.grace.delete_message(&group.id, accepted.seq).await.map(drop).expect_err("only the author or an admin deletes");
    t.ada.delete_message(&group.id, accepted.seq).await.unwrap();
    let files = t.srv.data_dir.path().join("files");
    eventually("the deleted message's file is erased", async || files_under(&files).is_empty()).await;
    let left: Vec<_> = files_under(&files).into_iter().map(|f| f.0).collect();
    assert!(left.is_empty(), "{left:?}");
    assert_problem!(t.grace.file_status(&file.file_id).await, 404, "not-found");
    let gone = t.grace.download_file(file, &dir.path().join("again.csv"), |_, _| {}).await;
    assert!(gone.is_err(), "nothing left to download");
    assert!(!dir.path().join("again.csv").exists() && !dir.path().join("again.csv.partial").exists());
}

on_both_engines!(files_are_shared_sealed_and_erased_with_their_message);

/// A raw message sharing `files` (the content is not checked by the
/// server: it cannot read it).
fn sharing(device_id: &str, epoch: Option<u64>, files: &[&str]) -> SendMessageRequest {
    SendMessageRequest {
        files: files.iter().map(|f| f.to_string()).collect(),
        ..opaque_message(device_id, &format!("{:032x}", rand_id()), epoch)
    }
}

fn rand_id() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    u128::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn uploads_resume_and_wrong_uses_are_refused(engine: Engine) {
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Uploads", &[&t.grace_id])).await.unwrap();
    let other = t.ada.create_conversation(&group_request("Elsewhere", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let dir = tempfile::tempdir().unwrap();
    let size = 2 * FILE_CHUNK_BYTES + 10;
    let source = confidential_file(dir.path(), "big.bin", size as usize, "RESUMED");
    let (ada_device, grace_device) = (t.devices[0].device_id.clone(), t.devices[2].device_id.clone());

    // An upload cut short after its middle part; the server says what it holds.
    let upload = t.ada.begin_upload(&group.id, &ada_device, &source).await.unwrap();
    let plain = std::fs::read(&source).unwrap();
    let middle = &plain[FILE_CHUNK_BYTES as usize..2 * FILE_CHUNK_BYTES as usize];
    let key = upload.key().unwrap();
    t.ada.put_file_part(&upload.file_id, 1, seal_one(&key, size, 1, middle).unwrap()).await.unwrap();
    let status = t.ada.file_status(&upload.file_id).await.unwrap();
    assert_eq!((status.received.clone(), status.parts, status.complete), (vec![1], 3, false));
    assert_problem!(t.ada.complete_upload(&upload.file_id).await, 409, "upload-incomplete");
    // Parts of the wrong length or past the end, and parts from anyone but
    // the uploader, are refused; nothing changes.
    assert_problem!(t.ada.put_file_part(&upload.file_id, 0, vec![0; 100]).await, 422, "validation-failed");
    assert_problem!(t.ada.put_file_part(&upload.file_id, 3, vec![0; 26]).await, 422, "validation-failed");
    let forged = seal_one(&key, size, 0, &plain[..FILE_CHUNK_BYTES as usize]).unwrap();
    assert_problem!(t.grace.put_file_part(&upload.file_id, 0, forged).await, 404, "not-found");
    // An incomplete file cannot be shared.
    let epoch = t.devices[0].epoch(&group.id);
    assert_problem!(
        t.ada.send_message(&group.id, &sharing(&ada_device, epoch, &[&upload.file_id])).await,
        409,
        "upload-incomplete"
    );

    // Resumed: only the missing parts travel, and the file opens whole.
    let mut reported = Vec::new();
    let uploaded = t.ada.resume_upload(&upload, &source, |done, total| reported.push((done, total))).await.unwrap();
    assert_eq!(reported.last(), Some(&(size, size)));
    let shared = uploaded.shared("big.bin", "application/octet-stream");
    let saved = dir.path().join("big-saved.bin");
    t.ada.download_file(&shared, &saved, |_, _| {}).await.unwrap();
    assert_eq!(std::fs::read(&saved).unwrap(), plain);
    // A file shared with a wrong digest (a sender lying about it) does not
    // pass the check, and leaves nothing behind.
    let lying = conclave_proto::file::SharedFile { sha256: "00".repeat(32), ..shared.clone() };
    assert!(t.ada.download_file(&lying, &dir.path().join("lie.bin"), |_, _| {}).await.is_err());
    assert!(!dir.path().join("lie.bin").exists() && !dir.path().join("lie.bin.partial").exists());
    assert_problem!(t.ada.put_file_part(&upload.file_id, 0, vec![0; 16]).await, 409, "conflict");

    // Only its uploader shares it, only in its conversation, and only once.
    let grace_epoch = t.devices[2].epoch(&group.id);
    assert_problem!(
        t.grace.send_message(&group.id, &sharing(&grace_device, grace_epoch, &[&upload.file_id])).await,
        409,
        "file-not-shareable"
    );
    assert_problem!(
        t.ada.send_message(&other.id, &sharing(&ada_device, None, &[&upload.file_id])).await,
        409,
        "file-not-shareable"
    );
    let first = t.ada.send_message(&group.id, &sharing(&ada_device, epoch, &[&upload.file_id])).await.unwrap();
    assert_problem!(
        t.ada.send_message(&group.id, &sharing(&ada_device, epoch, &[&upload.file_id])).await,
        409,
        "file-not-shareable"
    );
    assert_eq!(t.ada.file_status(&upload.file_id).await.unwrap().message_seq, Some(first.seq));
    assert_problem!(t.ada.abandon_upload(&upload.file_id).await, 409, "file-not-shareable");

    // An upload given up is deleted from storage.
    let small = confidential_file(dir.path(), "small.txt", 100, "ABANDONED");
    let dropped = t.ada.begin_upload(&group.id, &ada_device, &small).await.unwrap();
    let key = dropped.key().unwrap();
    t.ada
        .put_file_part(&dropped.file_id, 0, seal_one(&key, 100, 0, &std::fs::read(&small).unwrap()).unwrap())
        .await
        .unwrap();
    t.ada.abandon_upload(&dropped.file_id).await.unwrap();
    assert_problem!(t.ada.file_status(&dropped.file_id).await, 404, "not-found");
    let folder = t.srv.data_dir.path().join("files").join(&t.org).join(&dropped.file_id);
    eventually("the abandoned upload is erased", async || !folder.exists()).await;

    // The organisation's size limit holds, and is itself checked.
    let limit = OrgPolicyUpdate { max_file_mib: Some(Setting::unlocked(1)), ..Default::default() };
    t.ada.update_org_policy(&t.org, &limit).await.unwrap();
    assert_problem!(
        t.ada.begin_upload(&group.id, &ada_device, &source).await.map_err(client_error),
        413,
        "file-too-large"
    );
    let zero = OrgPolicyUpdate { max_file_mib: Some(Setting::unlocked(0)), ..Default::default() };
    assert_problem!(t.ada.update_org_policy(&t.org, &zero).await, 422, "validation-failed");

    // A member removed from the conversation reads none of its files.
    t.ada.remove_conversation_member(&group.id, &t.grace_id).await.unwrap();
    assert_problem!(t.grace.file_status(&upload.file_id).await, 404, "not-found");
    assert_problem!(t.grace.file_part(&upload.file_id, 0).await, 404, "not-found");
}

on_both_engines!(uploads_resume_and_wrong_uses_are_refused);

fn client_error(err: conclave_client::files::FileTransferError) -> conclave_client::ClientError {
    match err {
        conclave_client::files::FileTransferError::Api(err) => err,
        other => panic!("not a refusal by the server: {other}"),
    }
}

fn bucket_settings(s3: &S3Server, bucket: &str) -> StorageSettings {
    let b = s3.bucket(bucket);
    StorageSettings::S3 {
        endpoint: b.endpoint,
        region: b.region,
        bucket: b.name,
        access_key_id: b.access_key_id,
        secret_access_key: b.secret_access_key,
    }
}

async fn an_organisation_keeps_its_files_in_its_own_bucket(engine: Engine) {
    let s3 = S3Server::start();
    s3.create_bucket("acme-files").await;
    s3.create_bucket("globex-files").await;
    let endpoint = s3.endpoint.clone();
    let srv = TestServer::start_with(engine, |c| c.storage_endpoints = vec![endpoint]).await;
    let mut t: Team = team_on(srv).await;

    // Only admins choose, only services the operator listed, and only
    // buckets that work: each refusal changes nothing.
    let view = t.ada.org_storage(&t.org).await.unwrap();
    assert_eq!((view.kind.as_str(), view.bucket), ("server", None));
    assert_problem!(t.grace.set_org_storage(&t.org, &bucket_settings(&s3, "acme-files")).await, 403, "forbidden");
    let mut elsewhere = bucket_settings(&s3, "acme-files");
    if let StorageSettings::S3 { endpoint, .. } = &mut elsewhere {
        *endpoint = Some("http://169.254.169.254".into());
    }
    assert_problem!(t.ada.set_org_storage(&t.org, &elsewhere).await, 422, "storage-refused");
    assert_problem!(
        t.ada.set_org_storage(&t.org, &bucket_settings(&s3, "no-such-bucket")).await,
        422,
        "storage-refused"
    );
    assert_eq!(t.ada.org_storage(&t.org).await.unwrap().kind, "server");

    let view = t.ada.set_org_storage(&t.org, &bucket_settings(&s3, "acme-files")).await.unwrap();
    assert_eq!((view.kind.as_str(), view.bucket.as_deref()), ("s3", Some("acme-files")));
    let shown = serde_json::to_string(&t.ada.org_storage(&t.org).await.unwrap()).unwrap();
    assert!(!shown.contains(conclave_blob::testing::SECRET_ACCESS_KEY), "the secret is never shown again: {shown}");
    assert_eq!(t.srv.audit_count("org.storage.update", "success").await, 1);
    assert_eq!(t.srv.audit_count("org.storage.update", "failure").await, 2);

    // Another organisation, with its own bucket.
    let (hal, hal_login) = t.srv.org_with_owner("hal@globex.test", "Globex").await;
    let globex = hal_login.user.org_id.clone().unwrap();
    hal.set_org_storage(&globex, &bucket_settings(&s3, "globex-files")).await.unwrap();
    let mut hal_device = conclave_client::chat::ChatDevice::register(&hal, "Hal's laptop").await.unwrap();
    let notes = hal.create_conversation(&group_request("Notes", &[])).await.unwrap();
    all_in_group(std::slice::from_mut(&mut hal_device), &notes.id).await;

    let group = t.ada.create_conversation(&group_request("Plans", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let dir = tempfile::tempdir().unwrap();
    let acme_source = confidential_file(dir.path(), "acme.txt", FILE_CHUNK_BYTES as usize + 5, "ACME-SECRET-PLAN");
    let globex_source = confidential_file(dir.path(), "globex.txt", 5000, "GLOBEX-SECRET-PLAN");
    let (acme_message, acme_file) =
        t.devices[0].send_file(&group.id, &acme_source, None, None, |_, _| {}).await.unwrap();
    let (_, globex_file) = hal_device.send_file(&notes.id, &globex_source, None, None, |_, _| {}).await.unwrap();

    // Each organisation's objects are in its bucket alone, sealed; none on
    // the server's disk.
    let acme_keys = s3.keys("acme-files").await;
    let globex_keys = s3.keys("globex-files").await;
    let prefix = |file: &Attached| format!("conclave-files/{}/", file.file.file_id);
    assert_eq!(acme_keys.len(), 2, "{acme_keys:?}");
    assert!(acme_keys.iter().all(|k| k.starts_with(&prefix(&acme_file))), "{acme_keys:?}");
    assert_eq!(globex_keys.len(), 1, "{globex_keys:?}");
    assert!(globex_keys.iter().all(|k| k.starts_with(&prefix(&globex_file))), "{globex_keys:?}");
    for (bucket, keys) in [("acme-files", &acme_keys), ("globex-files", &globex_keys)] {
        for key in keys {
            let object = s3.object(bucket, key).await;
            assert!(!holds(&object, "SECRET-PLAN"), "{bucket}/{key} holds plaintext");
        }
    }
    assert!(files_under(&t.srv.data_dir.path().join("files")).is_empty(), "nothing on the server's disk");
    let (_, seen) = shared_file_seen_by(&mut t.devices[3], &group.id).await;
    let saved = dir.path().join("acme-saved.txt");
    t.grace.download_file(&seen.file, &saved, |_, _| {}).await.unwrap();
    assert_eq!(std::fs::read(&saved).unwrap(), std::fs::read(&acme_source).unwrap());

    // Back to the server's disk for new files: the file already in the
    // bucket stays there and still opens.
    let view = t.ada.set_org_storage(&t.org, &StorageSettings::Server).await.unwrap();
    assert_eq!(view.kind, "server");
    std::fs::remove_file(&saved).unwrap();
    t.grace.download_file(&seen.file, &saved, |_, _| {}).await.unwrap();
    assert_eq!(std::fs::read(&saved).unwrap(), std::fs::read(&acme_source).unwrap());

    // Deleting the message empties the bucket of it.
    t.ada.delete_message(&group.id, acme_message.seq).await.unwrap();
    eventually("the file's objects leave the bucket", async || s3.keys("acme-files").await.is_empty()).await;
    assert_eq!(s3.keys("globex-files").await.len(), 1, "the other organisation's file stays");
}

on_both_engines!(an_organisation_keeps_its_files_in_its_own_bucket);

/// The whole log as `device` reads it, page after page.
async fn whole_log(
    client: &conclave_client::Client,
    id: &str,
    device: &str,
) -> Vec<conclave_proto::conversation::Entry> {
    let mut entries: Vec<conclave_proto::conversation::Entry> = Vec::new();
    loop {
        let after = entries.last().map_or(0, |e| e.seq);
        let page = client.read_conversation(id, device, after, 500, 0).await.unwrap();
        if page.entries.is_empty() {
            return entries;
        }
        entries.extend(page.entries);
    }
}

/// The ciphertext of message `seq` as the log holds it.
fn ciphertext_of(log: &[conclave_proto::conversation::Entry], seq: u64) -> String {
    let entry = log.iter().find(|e| e.seq == seq).expect("the message is in the log");
    match &entry.body {
        conclave_proto::conversation::EntryBody::Message { content, .. } => content.clone(),
        other => panic!("not a message: {other:?}"),
    }
}

/// An organisation that keeps its files in its own bucket keeps its
/// messages' ciphertext there too: once older than the server's setting,
/// a conversation's entries move to the bucket in segments, and the
/// database keeps their order and references but no body. Every device
/// reads the same log as before (a device added later included, through
/// the history copies); a deleted message leaves the bucket as well; and
/// an organisation without a bucket keeps its messages in the database.
async fn an_organisation_keeps_its_messages_in_its_own_bucket(engine: Engine) {
    use conclave_client::chat::ChatDevice;
    let s3 = S3Server::start();
    s3.create_bucket("acme-files").await;
    let endpoint = s3.endpoint.clone();
    let srv = TestServer::start_with(engine, |c| {
        c.storage_endpoints = vec![endpoint];
        c.segment_after = Duration::from_secs(60);
        c.segment_every = Duration::from_millis(100);
    })
    .await;
    let mut t: Team = team_on(srv).await;
    t.ada.set_org_storage(&t.org, &bucket_settings(&s3, "acme-files")).await.unwrap();
    let (hal, _) = t.srv.org_with_owner("hal@globex.test", "Globex").await;
    let mut hal_device = ChatDevice::register(&hal, "Hal's laptop").await.unwrap();
    let notes = hal.create_conversation(&group_request("Notes", &[])).await.unwrap();
    all_in_group(std::slice::from_mut(&mut hal_device), &notes.id).await;
    hal_device.send_text(&notes.id, "GLOBEX-SECRET-NOTE", None).await.unwrap();

    let group = t.ada.create_conversation(&group_request("Plans", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    // More than a segment holds, so the log moves in two.
    let texts: Vec<String> = (0..300).map(|i| format!("SEGMENT-SECRET-{i:03}")).collect();
    let mut seqs = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        seqs.push(t.devices[i % 2].send_text(&group.id, text, None).await.unwrap().seq);
    }
    let grace_laptop = t.devices[2].device_id.clone();
    let before = whole_log(&t.grace, &group.id, &grace_laptop).await;
    let segment_keys = async || {
        s3.keys("acme-files")
            .await
            .into_iter()
            .filter(|k| k.starts_with("conclave-files/segments/"))
            .collect::<Vec<_>>()
    };

    // Recent messages stay in the database.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(segment_keys().await.is_empty(), "nothing moves before it is due");

    t.srv.clock.advance(Duration::from_secs(120));
    let store = t.srv.state.store.clone();
    let log_rows = async |id: &str| store.conversation_entries(id, 0, i64::MAX, 10_000).await.unwrap();
    eventually("the conversation's entries move to the bucket", async || {
        log_rows(&group.id).await.iter().all(|r| r.in_segment().is_some())
    })
    .await;
    let keys = segment_keys().await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with(&format!("conclave-files/segments/{}/", group.id))), "{keys:?}");
    for key in &keys {
        let object = s3.object("acme-files", key).await;
        assert!(!holds(&object, "SEGMENT-SECRET"), "{key} holds plaintext");
    }
    assert!(
        log_rows(&notes.id).await.iter().all(|r| r.in_segment().is_none() && !r.body_json.is_empty()),
        "the organisation without a bucket keeps its messages in the database"
    );

    // Read from the bucket, the log is what it was.
    let after = whole_log(&t.grace, &group.id, &grace_laptop).await;
    assert_eq!(serde_json::to_value(&after).unwrap(), serde_json::to_value(&before).unwrap());
    // A device added later reads the history through the moved copies.
    let mut tablet = ChatDevice::register(&t.grace, "Grace's tablet").await.unwrap();
    tablet.open(&group.id).await.unwrap();
    t.devices.push(tablet);
    all_in_group(&mut t.devices, &group.id).await;
    let tablet = t.devices.last_mut().unwrap();
    for _ in 0..3 {
        tablet.sync().await.unwrap();
    }
    let held: Vec<&str> = tablet.history(&group.id).iter().map(|m| m.text.as_str()).collect();
    assert_eq!(held, texts.iter().map(String::as_str).collect::<Vec<_>>());

    // Deleting a message takes its ciphertext out of the bucket too.
    let deleted = seqs[5];
    let sealed = ciphertext_of(&before, deleted);
    let in_bucket = async || s3.objects("acme-files").await.iter().any(|(_, object)| holds(object, &sealed));
    assert!(in_bucket().await, "the message's ciphertext was in the bucket");
    t.ada.delete_message(&group.id, deleted).await.unwrap();
    eventually("the deleted message's ciphertext leaves the bucket", async || !in_bucket().await).await;
    assert_eq!(segment_keys().await.len(), 2, "its segment is written again, the old one deleted");
    let now = whole_log(&t.grace, &group.id, &grace_laptop).await;
    assert!(matches!(
        now.iter().find(|e| e.seq == deleted).unwrap().body,
        conclave_proto::conversation::EntryBody::Erased
    ));
    assert_eq!(ciphertext_of(&now, seqs[6]), ciphertext_of(&before, seqs[6]), "its neighbours read as before");
}

on_both_engines!(an_organisation_keeps_its_messages_in_its_own_bucket);
