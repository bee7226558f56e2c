//! Team conversations through the real server, end-to-end encrypted with
//! real MLS on every device: people with two devices each talk in groups,
//! direct messages and channels; a device that was offline catches up in
//! order; removed and deactivated people read nothing more; and what the
//! server keeps holds none of what was said.

use std::time::Duration;

use crate::key_material::{captured_logs, contains};
use crate::support::TestServer;
use crate::{assert_problem, on_both_engines};
use conclave_client::chat::{ChatDevice, ChatEvent};
use conclave_client::Client;
use conclave_proto::conversation::*;
use conclave_proto::{OrgPolicyUpdate, OrgRole, Setting};
use conclave_store::Engine;

pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// Two people of one organisation, each with two devices.
pub(crate) struct Team {
    pub srv: TestServer,
    pub org: String,
    pub ada: Client,
    pub grace: Client,
    pub ada_id: String,
    pub grace_id: String,
    pub devices: Vec<ChatDevice>,
}

pub(crate) async fn team(engine: Engine) -> Team {
    team_on(TestServer::start(engine).await).await
}

/// The same team on a server started as the test needs.
pub(crate) async fn team_on(srv: TestServer) -> Team {
    let (ada, login) = srv.org_with_owner("ada@acme.test", "Acme").await;
    let org = login.user.org_id.clone().unwrap();
    let (grace, grace_login) = srv.add_member(&ada, &org, "grace@acme.test", OrgRole::Member).await;
    let mut devices = Vec::new();
    for (client, name) in
        [(&ada, "Ada's laptop"), (&ada, "Ada's phone"), (&grace, "Grace's laptop"), (&grace, "Grace's phone")]
    {
        devices.push(ChatDevice::register(client, name).await.expect("a device"));
    }
    Team { srv, org, ada, grace, ada_id: login.user.id, grace_id: grace_login.user.id, devices }
}

/// A message as a device sends it, with content the server cannot read.
pub(crate) fn opaque_message(device_id: &str, client_id: &str, epoch: Option<u64>) -> SendMessageRequest {
    SendMessageRequest {
        device_id: device_id.to_owned(),
        client_id: client_id.to_owned(),
        epoch,
        content: "Y2lwaGVydGV4dA==".into(),
        reference: None,
        history: None,
        control: false,
        files: Vec::new(),
    }
}

pub(crate) fn group_request(name: &str, members: &[&str]) -> CreateConversationRequest {
    CreateConversationRequest {
        kind: ConversationKind::Group,
        name: Some(name.into()),
        members: members.iter().map(|m| m.to_string()).collect(),
        encrypted: true,
    }
}

pub(crate) fn channel_request(name: &str) -> CreateConversationRequest {
    CreateConversationRequest {
        kind: ConversationKind::Channel,
        name: Some(name.into()),
        members: vec![],
        encrypted: true,
    }
}

pub(crate) fn direct_request(with: &str) -> CreateConversationRequest {
    CreateConversationRequest {
        kind: ConversationKind::Direct,
        name: None,
        members: vec![with.to_owned()],
        encrypted: true,
    }
}

/// Every device asks to be in the conversation, and all sync until every
/// one of them is in its group.
pub(crate) async fn all_in_group(devices: &mut [ChatDevice], id: &str) {
    for d in devices.iter_mut() {
        d.open(id).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while !devices.iter().all(|d| d.in_group(id)) {
        assert!(tokio::time::Instant::now() < deadline, "devices not all in the group");
        for d in devices.iter_mut() {
            d.sync().await.unwrap();
        }
    }
    // Everyone at the same epoch: the last commit read by all.
    for _ in 0..3 {
        for d in devices.iter_mut() {
            d.sync().await.unwrap();
        }
    }
    let epochs: Vec<_> = devices.iter().map(|d| d.epoch(id)).collect();
    assert!(epochs.windows(2).all(|w| w[0] == w[1]), "one epoch for all: {epochs:?}");
}

/// The texts a device reads, in order, from one sync.
async fn texts(device: &mut ChatDevice) -> Vec<String> {
    let events = device.sync().await.unwrap();
    events.into_iter().filter_map(|e| if let ChatEvent::Message { text, .. } = e { Some(text) } else { None }).collect()
}

async fn everyone_in_a_group_reads_every_message_on_every_device(engine: Engine) {
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Launch", &[&t.grace_id])).await.unwrap();
    assert!(group.encrypted, "end-to-end encrypted by default");
    assert_eq!(group.members.len(), 2);
    all_in_group(&mut t.devices, &group.id).await;
    let seen = t.grace.get_conversation(&group.id).await.unwrap();
    assert_eq!(seen.members.iter().map(|m| m.devices.len()).sum::<usize>(), 4, "every device of each member");
    let mut names: Vec<&str> = seen.members.iter().map(|m| m.display_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Member", "Owner"], "named as their accounts are");

    let hello = t.devices[0].send_text(&group.id, "hello from Ada's laptop", None).await.unwrap();
    t.devices[3].send_text(&group.id, "hi from Grace's phone", None).await.unwrap();
    // A reply in a thread, and a reaction, refer to the first message.
    t.devices[2].send_text(&group.id, "in the thread", Some(Reference::Thread(hello.seq))).await.unwrap();
    t.devices[1].send_text(&group.id, "👍", Some(Reference::Reaction(hello.seq))).await.unwrap();
    let expected = ["hello from Ada's laptop", "hi from Grace's phone", "in the thread", "👍"];
    for device in t.devices.iter_mut() {
        assert_eq!(texts(device).await, expected, "{} reads everything, in order", device.device_id);
    }

    // Grace deletes her message for everyone: every device hears it.
    let grace_message = t.grace.read_conversation(&group.id, &t.devices[2].device_id, 0, 100, 0).await.unwrap();
    let seq = grace_message
        .entries
        .iter()
        .find_map(|e| matches!(&e.body, EntryBody::Message { from, .. } if *from == t.grace_id).then_some(e.seq))
        .unwrap();
    assert_problem!(t.ada.delete_message(&group.id, seq + 1000).await, 422, "validation-failed");
    t.grace.delete_message(&group.id, seq).await.unwrap();
    for device in t.devices.iter_mut() {
        let events = device.sync().await.unwrap();
        assert!(events.contains(&ChatEvent::Deleted { conversation_id: group.id.clone(), target: seq }));
    }
    // Its ciphertext is gone from the server; the entry keeps its place.
    let page = t.ada.read_conversation(&group.id, &t.devices[0].device_id, seq - 1, 1, 0).await.unwrap();
    assert_eq!(page.entries[0].body, EntryBody::Erased);
    assert_problem!(t.ada.delete_message(&group.id, seq).await, 422, "validation-failed");
    // Deleting a message erases its edits and the reactions to it as well:
    // nothing of what it said, before or after an edit, stays on the server.
    let edit = t.devices[0].send_text(&group.id, "hello, edited", Some(Reference::Edit(hello.seq))).await.unwrap();
    t.ada.delete_message(&group.id, hello.seq).await.unwrap();
    let log = t.ada.read_conversation(&group.id, &t.devices[0].device_id, 0, 500, 0).await.unwrap();
    let body = |seq: u64| log.entries.iter().find(|e| e.seq == seq).map(|e| e.body.clone()).unwrap();
    assert_eq!(body(hello.seq), EntryBody::Erased);
    assert_eq!(body(edit.seq), EntryBody::Erased, "the edit too");
    let reactions = log
        .entries
        .iter()
        .filter(|e| matches!(&e.body, EntryBody::Message { reference: Some(Reference::Reaction(_)), .. }));
    assert_eq!(reactions.count(), 0, "and the reaction");
    assert!(
        log.entries.iter().any(|e| matches!(&e.body, EntryBody::Message { reference: Some(Reference::Thread(_)), .. })),
        "others' replies stay"
    );
}

async fn a_retried_message_is_delivered_once(engine: Engine) {
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Ops", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let epoch = t.devices[0].epoch(&group.id);
    let req = opaque_message(&t.devices[0].device_id, "retry-me", epoch);
    let first = t.ada.send_message(&group.id, &req).await.unwrap();
    let again = t.ada.send_message(&group.id, &req).await.unwrap();
    assert_eq!((first.duplicate, again.duplicate, again.seq), (false, true, first.seq));
    // Retries racing each other (a flaky network sending one request many
    // times at once) still make one message.
    let racing = SendMessageRequest { client_id: "racing".into(), ..req.clone() };
    let answers = futures_util::future::join_all((0..6).map(|_| t.ada.send_message(&group.id, &racing))).await;
    let answers: Vec<MessageAccepted> = answers.into_iter().map(Result::unwrap).collect();
    assert!(answers.iter().all(|a| a.seq == answers[0].seq), "{answers:?}");
    assert_eq!(answers.iter().filter(|a| !a.duplicate).count(), 1, "{answers:?}");
    let page = t.grace.read_conversation(&group.id, &t.devices[2].device_id, 0, 500, 0).await.unwrap();
    for id in ["retry-me", "racing"] {
        let copies =
            page.entries.iter().filter(|e| matches!(&e.body, EntryBody::Message { client_id, .. } if client_id == id));
        assert_eq!(copies.count(), 1, "{id} once");
    }
    // Another person's device id is not the caller's to send with.
    let stolen = SendMessageRequest { device_id: t.devices[2].device_id.clone(), client_id: "x".into(), ..req.clone() };
    assert_problem!(t.ada.send_message(&group.id, &stolen).await, 404, "not-found");
    // A stale epoch is refused, and the device learns to encrypt again.
    let stale = SendMessageRequest { client_id: "y".into(), epoch: epoch.map(|e| e.wrapping_sub(1)), ..req };
    assert_problem!(t.ada.send_message(&group.id, &stale).await, 409, "stale-epoch");
}

/// Sends that arrive together are written together (one transaction for all
/// that wait their turn), yet each is judged on its own: a send that must be
/// refused is refused alone, and every other one lands exactly once, in an
/// order every device reads alike.
async fn sends_arriving_together_each_land_once_and_a_bad_one_fails_alone(engine: Engine) {
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Ops", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let epoch = t.devices[0].epoch(&group.id);
    let request = |device: &ChatDevice, n: usize| opaque_message(&device.device_id, &format!("burst-{n}"), epoch);
    let mut sends = Vec::new();
    for n in 0..60 {
        let (client, device) = if n % 2 == 0 { (&t.ada, &t.devices[0]) } else { (&t.grace, &t.devices[2]) };
        let mut req = request(device, n);
        if n == 31 {
            // In the middle of the burst, a send built on an old epoch.
            req.epoch = epoch.map(|e| e.wrapping_sub(1));
        }
        let id = &group.id;
        sends.push(async move { (n, client.send_message(id, &req).await) });
    }
    let answers = futures_util::future::join_all(sends).await;
    let (mut seqs, mut graces_last) = (Vec::new(), 0);
    for (n, answer) in answers {
        if n == 31 {
            assert_problem!(answer, 409, "stale-epoch");
        } else {
            let accepted = answer.unwrap_or_else(|e| panic!("send {n}: {e}"));
            assert!(!accepted.duplicate);
            if n % 2 == 1 {
                graces_last = graces_last.max(accepted.seq);
            }
            seqs.push(accepted.seq);
        }
    }
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 59, "one seq per accepted send");
    // Every device reads the same 59 messages, each once, in the same order.
    let mut orders = Vec::new();
    for (client, device) in [(&t.ada, &t.devices[1]), (&t.grace, &t.devices[3])] {
        let page = client.read_conversation(&group.id, &device.device_id, 0, 500, 0).await.unwrap();
        let order: Vec<String> = page
            .entries
            .iter()
            .filter_map(|e| match &e.body {
                EntryBody::Message { client_id, .. } if client_id.starts_with("burst-") => Some(client_id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(order.len(), 59);
        assert!(!order.contains(&"burst-31".to_owned()));
        orders.push(order);
    }
    assert_eq!(orders[0], orders[1]);
    // Each author read up to their own last message as they sent it.
    let listed = t.grace.list_conversations().await.unwrap();
    let mine = listed.conversations.iter().find(|c| c.id == group.id).unwrap();
    assert_eq!(mine.read_seq, graces_last, "Grace has read up to her last message");
}

/// Senders that hang up mid-burst take nobody else's message with them: the
/// one whose request writes a batch may be among them, and every send that
/// stayed is answered as written; those that hung up find theirs on retry.
async fn senders_hanging_up_mid_burst_take_no_other_message_with_them(engine: Engine) {
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Ops", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let epoch = t.devices[0].epoch(&group.id);
    let request = |n: usize| opaque_message(&t.devices[0].device_id, &format!("burst-{n}"), epoch);
    for round in 0..5 {
        let mut sends = Vec::new();
        for n in round * 40..(round + 1) * 40 {
            // Every other sender gives up after a moment, as a closed tab does.
            let patience = if n % 2 == 0 { Duration::from_micros(200 * (n % 7) as u64) } else { WAIT };
            let (client, req, id) = (&t.ada, request(n), &group.id);
            sends.push(async move { (n, tokio::time::timeout(patience, client.send_message(id, &req)).await) });
        }
        for (n, answer) in futures_util::future::join_all(sends).await {
            if let Ok(answer) = answer {
                let accepted = answer.unwrap_or_else(|e| panic!("send {n} stayed but was not written: {e}"));
                assert!(!accepted.duplicate);
            }
        }
    }
    // Retried, every message is in the log once.
    for n in 0..200 {
        t.ada.send_message(&group.id, &request(n)).await.unwrap();
    }
    let page = t.grace.read_conversation(&group.id, &t.devices[2].device_id, 0, 500, 0).await.unwrap();
    let burst = page
        .entries
        .iter()
        .filter(|e| matches!(&e.body, EntryBody::Message { client_id, .. } if client_id.starts_with("burst-")));
    assert_eq!(burst.count(), 200);
}

/// A Welcome carries the group's whole ratchet tree, so for a large channel
/// it is far beyond a message's size; the server takes one of a few MiB and
/// hands it to the new device as it came, and refuses what exceeds its limit.
async fn a_large_channels_welcome_reaches_the_new_device_whole(engine: Engine) {
    let t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Big", &[&t.grace_id])).await.unwrap();
    // Ada's laptop commits; her phone and Grace's two devices are added.
    let owners = [&t.ada, &t.ada, &t.grace, &t.grace];
    let devices: Vec<(&String, _)> = t.devices.iter().map(|d| &d.device_id).zip(owners).collect();
    for (device, client) in &devices {
        let kp = KeyPackageRequest { device_id: (*device).clone(), key_package: "a2V5LXBhY2thZ2U=".into() };
        client.upload_key_package(&group.id, &kp).await.unwrap();
    }
    let first = devices[0].0;
    let added: Vec<String> = devices[1..].iter().map(|(d, _)| (*d).clone()).collect();
    let welcome = "QUFB".repeat(3 << 18); // 3 MiB of base64
    let commit = |welcome: &str| CommitRequest {
        device_id: first.clone(),
        epoch: 0,
        commit: "Y29tbWl0".into(),
        welcome: Some(welcome.to_owned()),
        added: added.clone(),
        removed: Vec::new(),
    };
    let too_large = "QUFB".repeat(5 << 18);
    assert!(t.ada.send_commit(&group.id, &commit(&too_large)).await.is_err(), "a 5 MiB Welcome is refused");
    t.ada.send_commit(&group.id, &commit(&welcome)).await.unwrap();

    // One Welcome for the three devices it adds, stored once.
    let pool = t.srv.state.store.raw_pool().clone();
    let stored = || async {
        let welcomes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM group_welcomes").fetch_one(&pool).await.unwrap();
        let inbox_bytes: i64 =
            sqlx::query_scalar("SELECT CAST(COALESCE(SUM(LENGTH(handshake_json)), 0) AS BIGINT) FROM device_inbox")
                .fetch_one(&pool)
                .await
                .unwrap();
        (welcomes, inbox_bytes)
    };
    let (welcomes, inbox_bytes) = stored().await;
    assert_eq!(welcomes, 1, "the Welcome is kept once");
    assert!(inbox_bytes < 10_000, "the inbox messages point at it ({inbox_bytes} bytes for three)");

    for (i, (device, client)) in devices[1..].iter().enumerate() {
        let inbox = client.read_device_inbox(device, 0).await.unwrap();
        let (id, delivered) = inbox
            .messages
            .iter()
            .find_map(|m| match &m.handshake {
                Handshake::Welcome { welcome, .. } => Some((m.id, welcome.clone())),
                _ => None,
            })
            .expect("a Welcome in the inbox");
        assert_eq!(delivered.len(), welcome.len());
        assert!(delivered == welcome, "the Welcome arrives byte for byte");
        // Taking it (asking past it) lets it go once every device has.
        client.read_device_inbox(device, id).await.unwrap();
        let left = if i + 1 < added.len() { 1 } else { 0 };
        assert_eq!(stored().await.0, left, "kept while a device has yet to take it");
    }
}

async fn an_offline_device_catches_up_in_order_with_nothing_lost_or_doubled(engine: Engine) {
    let mut t = team(engine).await;
    let dm = t.ada.create_conversation(&direct_request(&t.grace_id)).await.unwrap();
    // One direct message per pair: Grace starting one with Ada gets the same.
    let again = t.grace.create_conversation(&direct_request(&t.ada_id)).await.unwrap();
    assert_eq!(again.id, dm.id);
    assert_eq!(again.role, ConversationRole::Member);
    all_in_group(&mut t.devices, &dm.id).await;
    // Grace's phone is off while Ada writes thirty messages.
    let mut phone = t.devices.remove(3);
    let sent: Vec<String> = (0..30).map(|i| format!("message {i:02}")).collect();
    for text in &sent {
        t.devices[0].send_text(&dm.id, text, None).await.unwrap();
    }
    assert_eq!(texts(&mut t.devices[2]).await, sent, "Grace's laptop reads them live");
    assert_eq!(texts(&mut phone).await, sent, "her phone catches up: all of them, in order, once");
    assert!(texts(&mut phone).await.is_empty(), "and nothing twice");
}

async fn a_removed_member_reads_nothing_more_and_cannot_open_what_follows(engine: Engine) {
    let mut t = team(engine).await;
    let (cy_client, cy_login) = t.srv.add_member(&t.ada, &t.org, "cy@acme.test", OrgRole::Member).await;
    let cy = ChatDevice::register(&cy_client, "Cy's laptop").await.unwrap();
    let group = t.ada.create_conversation(&group_request("Board", &[&t.grace_id, &cy_login.user.id])).await.unwrap();
    let mut all: Vec<ChatDevice> = t.devices.drain(..).collect();
    all.push(cy);
    all_in_group(&mut all, &group.id).await;
    let mut cy = all.pop().unwrap();
    t.devices = all;

    // Grace (not an admin) cannot remove Cy; Ada (the owner) can.
    assert_problem!(t.grace.remove_conversation_member(&group.id, &cy_login.user.id).await, 403, "forbidden");
    t.ada.remove_conversation_member(&group.id, &cy_login.user.id).await.unwrap();
    // Until the removal is committed, nothing can be sent; Ada's device,
    // asked to commit it, does so as it syncs, and then sends.
    t.devices[0].send_text(&group.id, "after Cy left", None).await.unwrap();
    assert!(texts(&mut t.devices[0]).await.contains(&"after Cy left".to_string()));
    // The server asked for the removal with its own signed MLS proposal, as
    // the group's external sender, and the other devices applied a commit
    // that carried that proposal out.
    let log = t.ada.read_conversation(&group.id, &t.devices[0].device_id, 0, 500, 0).await.unwrap();
    let request = log.entries.iter().find_map(|e| match &e.body {
        EntryBody::RemoveRequest { member, proposal, .. } if member.device_id == cy.device_id => proposal.clone(),
        _ => None,
    });
    assert!(request.is_some(), "the removal request carries the server's proposal");
    for d in t.devices[1..].iter_mut() {
        let seen = d.sync().await.unwrap();
        let on_the_servers_word = ChatEvent::DeviceRemoved {
            conversation_id: group.id.clone(),
            device: cy.device_id.clone(),
            by_server: true,
        };
        assert!(seen.contains(&on_the_servers_word), "{seen:?}");
        assert!(seen.iter().any(|e| matches!(e, ChatEvent::Message { text, .. } if text == "after Cy left")));
    }
    // Cy's device reads nothing more, and is told so.
    assert_problem!(cy_client.read_conversation(&group.id, &cy.device_id, 0, 10, 0).await, 404, "not-found");
    let told = cy.sync().await.unwrap();
    assert!(told.contains(&ChatEvent::Removed { conversation_id: group.id.clone() }), "{told:?}");
    assert!(!told.iter().any(|e| matches!(e, ChatEvent::Message { .. })), "{told:?}");
    // Even given the ciphertext, the keys Cy kept open nothing sent after.
    let page = t.ada.read_conversation(&group.id, &t.devices[0].device_id, 0, 500, 0).await.unwrap();
    let (from, content, client_id, history) = page
        .entries
        .iter()
        .rev()
        .find_map(|e| match &e.body {
            EntryBody::Message { device, content, client_id, history: Some(history), .. } => {
                Some((device.clone(), content.clone(), client_id.clone(), history.clone()))
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(cy.open_ciphertext(&group.id, &from, &content), None, "Cy's old keys open nothing new");
    // Nor do the history keys Cy kept open its history copy; Grace's do.
    assert_eq!(cy.open_history_copy(&group.id, &client_id, &history), None);
    assert_eq!(t.devices[2].open_history_copy(&group.id, &client_id, &history).as_deref(), Some("after Cy left"));

    // An account the organisation deactivates is out of every conversation.
    let dm = direct_request(&t.grace_id);
    let dm = t.ada.create_conversation(&dm).await.unwrap();
    t.ada.deactivate_member(&t.org, &t.grace_id).await.unwrap();
    for id in [&group.id, &dm.id] {
        let after = t.ada.get_conversation(id).await.unwrap();
        assert_eq!(after.members.iter().map(|m| m.user_id.as_str()).collect::<Vec<_>>(), [t.ada_id.as_str()]);
    }
    // Reactivated, Grace is back in her direct message with Ada when either starts it again (not in the group).
    t.ada.reactivate_member(&t.org, &t.grace_id).await.unwrap();
    let (grace, _) = t.srv.login("grace@acme.test").await;
    let back = grace.create_conversation(&direct_request(&t.ada_id)).await.unwrap();
    assert_eq!(back.id, dm.id);
    assert_eq!(back.members.len(), 2);
    assert_problem!(grace.get_conversation(&group.id).await, 404, "not-found");
}

async fn channels_are_joined_freely_until_locked_and_hidden_from_outsiders(engine: Engine) {
    let t = team(engine).await;
    let channel = t.ada.create_conversation(&channel_request("general")).await.unwrap();
    // Grace sees the channel of her organisation and joins it.
    assert_eq!(t.grace.get_conversation(&channel.id).await.unwrap().members.len(), 1);
    let joined = t.grace.join_conversation(&channel.id).await.unwrap();
    assert_eq!(joined.role, ConversationRole::Member);
    assert!(t.grace.list_conversations().await.unwrap().conversations.iter().any(|c| c.id == channel.id));
    // The owner locks it; a newcomer of the organisation may no longer join.
    let (cy, _) = t.srv.add_member(&t.ada, &t.org, "cy@acme.test", OrgRole::Member).await;
    assert_problem!(
        t.grace
            .update_conversation(&channel.id, &ConversationSettingsUpdate { locked: Some(true), archived: None })
            .await,
        403,
        "forbidden"
    );
    t.ada
        .update_conversation(&channel.id, &ConversationSettingsUpdate { locked: Some(true), archived: None })
        .await
        .unwrap();
    assert_problem!(cy.join_conversation(&channel.id).await, 403, "conversation-locked");
    // Someone of another organisation does not see it at all.
    let (other, _) = t.srv.org_with_owner("eve@elsewhere.test", "Elsewhere").await;
    assert_problem!(other.get_conversation(&channel.id).await, 404, "not-found");
    assert_problem!(other.join_conversation(&channel.id).await, 404, "not-found");
    let eve_device = ChatDevice::register(&other, "Eve's laptop").await.unwrap();
    assert_problem!(other.read_conversation(&channel.id, &eve_device.device_id, 0, 10, 0).await, 404, "not-found");
    // Nor can anyone be added from there.
    let eve_id = other.me().await.unwrap().user.id;
    assert_problem!(t.ada.add_conversation_members(&channel.id, &[&eve_id]).await, 422, "validation-failed");
    // Plain channels need the organisation's policy.
    let plain = CreateConversationRequest {
        kind: ConversationKind::Channel,
        name: Some("announcements".into()),
        members: vec![],
        encrypted: false,
    };
    assert_problem!(t.ada.create_conversation(&plain).await, 403, "forbidden");
}

async fn a_device_added_later_reads_the_history_its_account_may_see(engine: Engine) {
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Later", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    t.devices[0].send_text(&group.id, "before the tablet", None).await.unwrap();
    t.devices[3].send_text(&group.id, "also before", None).await.unwrap();
    let mut tablet = ChatDevice::register(&t.grace, "Grace's tablet").await.unwrap();
    let tablet_id = tablet.device_id.clone();
    // Everyone else's devices are told Grace is on a new device, with its key.
    tablet.open(&group.id).await.unwrap();
    let announced = |e: &ChatEvent| matches!(e, ChatEvent::NewDevice { device, fingerprint, .. } if *device == tablet_id && !fingerprint.is_empty());
    let mut told = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !told.iter().any(announced) {
        assert!(tokio::time::Instant::now() < deadline, "the new device was never announced: {told:?}");
        for (i, d) in t.devices.iter_mut().enumerate() {
            let events = d.sync().await.unwrap();
            if i == 0 {
                told.extend(events);
            }
        }
    }
    t.devices.push(tablet);
    all_in_group(&mut t.devices, &group.id).await;
    t.devices[1].send_text(&group.id, "after the tablet", None).await.unwrap();
    let tablet = t.devices.last_mut().unwrap();
    for _ in 0..3 {
        tablet.sync().await.unwrap();
    }
    // The member that added it gave it the history keys; the server's
    // history copies of what came before open with them.
    let held: Vec<&str> = tablet.history(&group.id).iter().map(|m| m.text.as_str()).collect();
    assert_eq!(held, ["before the tablet", "also before", "after the tablet"]);
    // The server holds no plaintext of it: the copies are sealed too.
    let earlier = t.grace.read_conversation_earlier(&group.id, &tablet.device_id, 0, 500).await.unwrap();
    assert!(earlier
        .entries
        .iter()
        .any(|e| matches!(&e.body, EntryBody::Message { history: Some(_), content, .. } if content.is_empty())));
}

/// Where the organisation keeps earlier history from people who join later,
/// a newcomer's devices get none of it (their own later devices still see
/// what the person could).
async fn newcomers_see_no_earlier_history_where_the_organisation_says_so(engine: Engine) {
    use conclave_proto::{OrgPolicyUpdate, Setting};
    let mut t = team(engine).await;
    let off = OrgPolicyUpdate { history_for_newcomers: Some(Setting::unlocked(false)), ..Default::default() };
    t.ada.update_org_policy(&t.org, &off).await.unwrap();
    let (ada, _) = t.srv.login("ada@acme.test").await;
    let group = ada.create_conversation(&group_request("Closed book", &[])).await.unwrap();
    let mut ada_devices: Vec<ChatDevice> = t.devices.drain(..2).collect();
    all_in_group(&mut ada_devices, &group.id).await;
    ada_devices[0].send_text(&group.id, "before Grace came", None).await.unwrap();
    ada.add_conversation_members(&group.id, &[&t.grace_id]).await.unwrap();
    let mut all: Vec<ChatDevice> = ada_devices.into_iter().chain(t.devices.drain(..)).collect();
    all_in_group(&mut all, &group.id).await;
    all[0].send_text(&group.id, "after Grace came", None).await.unwrap();
    for _ in 0..3 {
        all[2].sync().await.unwrap();
    }
    let held: Vec<&str> = all[2].history(&group.id).iter().map(|m| m.text.as_str()).collect();
    assert_eq!(held, ["after Grace came"]);
    let earlier = t.grace.read_conversation_earlier(&group.id, &all[2].device_id, 0, 500).await.unwrap();
    assert!(
        !earlier.entries.iter().any(|e| matches!(&e.body, EntryBody::Message { history: Some(_), .. })),
        "the server serves none of it"
    );
}

/// What the server keeps and logs holds none of what was said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_keeps_no_plaintext_of_a_conversation() {
    let logs = captured_logs();
    let mut t = team(Engine::Sqlite).await;
    let group = t.ada.create_conversation(&group_request("Secrets", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let secrets = ["the merger closes on Friday", "wire 4,200,000 to the escrow account", "tell nobody about Orion"];
    for (i, text) in secrets.iter().enumerate() {
        t.devices[i % 4].send_text(&group.id, text, None).await.unwrap();
    }
    for device in t.devices.iter_mut() {
        assert_eq!(texts(device).await, secrets, "{} reads them", device.device_id);
    }
    let database = t.srv.sqlite_bytes();
    let logs = logs.bytes();
    assert!(contains(&database, b"Secrets"), "the search finds what is there (the group's name)");
    for secret in secrets {
        assert!(!contains(&database, secret.as_bytes()), "{secret:?} is in the database");
        assert!(!contains(&logs, secret.as_bytes()), "{secret:?} is in the logs");
    }
}

/// Ada removes Cy and closes her laptop, the group's committer: once its
/// patience is out, Grace's device takes over, commits the removal, and
/// everyone can write again.
async fn an_offline_committer_does_not_hold_the_conversation_back(engine: Engine) {
    let mut t = team(engine).await;
    let (cy_client, cy_login) = t.srv.add_member(&t.ada, &t.org, "cy@acme.test", OrgRole::Member).await;
    let group = t.ada.create_conversation(&group_request("Board", &[&t.grace_id, &cy_login.user.id])).await.unwrap();
    let mut all: Vec<ChatDevice> = t.devices.drain(..).collect();
    all.push(ChatDevice::register(&cy_client, "Cy's laptop").await.unwrap());
    all_in_group(&mut all, &group.id).await;
    let cy = all.pop().unwrap();
    let before = t.ada.get_conversation(&group.id).await.unwrap().epoch;
    t.ada.remove_conversation_member(&group.id, &cy_login.user.id).await.unwrap();
    // Ada's devices are gone from here on. Grace cannot write yet: the
    // removal waits for its commit, and the committer has time left.
    let mut grace = all.split_off(2);
    assert!(grace[0].send_text(&group.id, "too soon", None).await.is_err());
    t.srv.clock.advance(Duration::from_millis(conclave_conversation::COMMITTER_PATIENCE_MS as u64 + 1_000));
    grace[0].send_text(&group.id, "Grace took over", None).await.unwrap();
    let after = t.ada.get_conversation(&group.id).await.unwrap();
    assert!(after.epoch > before, "the removal was committed: {before:?} → {:?}", after.epoch);
    assert_eq!(texts(&mut grace[1]).await, ["Grace took over"]);
    // Ada's devices, back online, follow the new epoch and read it too.
    for ada in all.iter_mut() {
        assert_eq!(texts(ada).await, ["Grace took over"]);
    }
    drop(cy);
}

/// What is unread, read receipts, and muting.
async fn unread_counts_and_read_receipts_follow_what_each_person_read(engine: Engine) {
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Team", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let mut last = 0;
    for i in 0..3 {
        last = t.devices[0].send_text(&group.id, &format!("news {i}"), None).await.unwrap().seq;
    }
    let summary = |list: ConversationList| list.conversations.into_iter().find(|c| c.id == group.id).unwrap();
    let grace_sees = summary(t.grace.list_conversations().await.unwrap());
    assert_eq!((grace_sees.unread, grace_sees.read_seq), (3, 0), "three messages from Ada, unread");
    assert_eq!(summary(t.ada.list_conversations().await.unwrap()).unread, 0, "her own are read");
    // Grace reads up to the second: one left; her receipt is what Ada sees.
    t.grace.mark_conversation_read(&group.id, last - 1).await.unwrap();
    assert_eq!(summary(t.grace.list_conversations().await.unwrap()).unread, 1);
    let receipts = t.ada.get_conversation(&group.id).await.unwrap();
    let grace_member = receipts.members.iter().find(|m| m.user_id == t.grace_id).unwrap();
    assert_eq!(grace_member.read_seq, last - 1);
    // A receipt never moves back, nor past the end.
    t.grace.mark_conversation_read(&group.id, 1).await.unwrap();
    assert_eq!(summary(t.grace.list_conversations().await.unwrap()).read_seq, last - 1);
    assert_problem!(t.grace.mark_conversation_read(&group.id, last + 50).await, 422, "validation-failed");
    // A deleted message is not unread any more; replying reads everything before.
    t.ada.delete_message(&group.id, last).await.unwrap();
    assert_eq!(summary(t.grace.list_conversations().await.unwrap()).unread, 0);
    t.devices[0].send_text(&group.id, "one more", None).await.unwrap();
    t.grace.mute_conversation(&group.id, true).await.unwrap();
    let muted = summary(t.grace.list_conversations().await.unwrap());
    assert!(muted.muted && muted.unread == 1, "muted, and still counted: {muted:?}");
    t.devices[2].send_text(&group.id, "got it", None).await.unwrap();
    assert_eq!(summary(t.grace.list_conversations().await.unwrap()).unread, 0);
    // Outsiders neither mark nor mute.
    let (other, _) = t.srv.org_with_owner("eve@elsewhere.test", "Elsewhere").await;
    assert_problem!(other.mark_conversation_read(&group.id, 1).await, 404, "not-found");
    assert_problem!(other.mute_conversation(&group.id, true).await, 404, "not-found");
}

/// A device's live connection: it hears at once that a conversation grew,
/// that its inbox has something, who types and who read; never anything
/// of a conversation its account is not in.
async fn a_devices_live_connection_hears_what_happens_as_it_happens(engine: Engine) {
    use conclave_proto::conversation::LiveEvent;
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Live", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let mut grace_live = t.grace.device_live(&t.devices[2].device_id).await.unwrap();
    let mut ada_live = t.ada.device_live(&t.devices[0].device_id).await.unwrap();
    // Someone of another organisation, connected too, in nothing of theirs.
    let (other, _) = t.srv.org_with_owner("eve@elsewhere.test", "Elsewhere").await;
    let eve_device = ChatDevice::register(&other, "Eve's laptop").await.unwrap();
    let mut eve_live = other.device_live(&eve_device.device_id).await.unwrap();
    // Another person's device is not the caller's to listen on.
    assert!(t.ada.device_live(&t.devices[2].device_id).await.is_err());

    let sent = t.devices[0].send_text(&group.id, "ping", None).await.unwrap();
    let heard = grace_live.next(WAIT).await.unwrap();
    // The new entry comes along, exactly as the log gives it to her device.
    let page = t.grace.read_conversation(&group.id, &t.devices[2].device_id, sent.seq - 1, 10, 0).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(
        heard,
        LiveEvent::Changed { conversation_id: group.id.clone(), last_seq: sent.seq, entries: page.entries }
    );
    ada_live.typing(&group.id).await.unwrap();
    ada_live.typing(&group.id).await.unwrap();
    let typing = LiveEvent::Typing { conversation_id: group.id.clone(), user_id: t.ada_id.clone() };
    assert_eq!(grace_live.next(WAIT).await.unwrap(), typing);
    t.grace.mark_conversation_read(&group.id, sent.seq).await.unwrap();
    let read = LiveEvent::Read { conversation_id: group.id.clone(), user_id: t.grace_id.clone(), seq: sent.seq };
    // Ada hears her own message's growth first, then Grace's receipt.
    let mut heard_by_ada = Vec::new();
    while heard_by_ada.last() != Some(&read) {
        heard_by_ada.push(ada_live.next(WAIT).await.unwrap());
    }
    assert!(!heard_by_ada.contains(&typing), "her own typing is not told to her");
    // The second typing notice, too soon after the first, was not relayed.
    assert_eq!(grace_live.next(WAIT).await.unwrap(), read);
    // Typing into someone else's conversation reaches nobody.
    eve_live.typing(&group.id).await.unwrap();
    // A new device's inbox: Grace's tablet asks to join, the committer hears the log grow, and the tablet its Welcome.
    let mut tablet = ChatDevice::register(&t.grace, "tablet").await.unwrap();
    let mut tablet_live = t.grace.device_live(&tablet.device_id).await.unwrap();
    tablet.open(&group.id).await.unwrap();
    for d in t.devices.iter_mut() {
        d.sync().await.unwrap();
    }
    let mut heard_by_tablet = Vec::new();
    while !heard_by_tablet.contains(&LiveEvent::Inbox) {
        heard_by_tablet.push(tablet_live.next(WAIT).await.unwrap());
    }
    // Until its Welcome the tablet may read nothing of the log: it hears
    // that the log grew (its own request, the commit adding it), never what.
    let grew: Vec<_> = heard_by_tablet.iter().filter(|e| matches!(e, LiveEvent::Changed { .. })).collect();
    assert!(!grew.is_empty(), "the tablet heard the log grow: {heard_by_tablet:?}");
    assert!(
        grew.iter().all(|e| matches!(e, LiveEvent::Changed { entries, .. } if entries.is_empty())),
        "no entry reaches a device before it may read it: {grew:?}"
    );
    assert!(eve_live.next(Duration::from_millis(500)).await.is_err(), "Eve heard nothing");
    // Revoking a device closes its live connection at once; frames beyond
    // what a person types close it too.
    t.grace.revoke_device(&t.devices[2].device_id).await.unwrap();
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match grace_live.next(WAIT).await {
                Err(conclave_client::SignalError::Closed) => break,
                Ok(_) => continue,
                Err(other) => panic!("{other:?}"),
            }
        }
    });
    closed.await.expect("the revoked device's connection closes");
    for _ in 0..30 {
        if tablet_live.typing(&group.id).await.is_err() {
            break;
        }
    }
    let flooded = tokio::time::timeout(WAIT, async {
        while !matches!(tablet_live.next(WAIT).await, Err(conclave_client::SignalError::Closed)) {}
    });
    flooded.await.expect("a flood of frames closes the connection");
}

/// The answer to the send of `client_id` on a live connection, skipping
/// the other events.
async fn answer_to(live: &mut conclave_client::DeviceLive, client_id: &str) -> LiveEvent {
    loop {
        let event = live.next(WAIT).await.unwrap();
        if let LiveEvent::Sent { client_id: id, .. } | LiveEvent::NotSent { client_id: id, .. } = &event {
            if id == client_id {
                return event;
            }
        }
    }
}

/// Messages sent on a device's live connection instead of one request
/// apiece: durable when answered, a retry answered with the first seq, a
/// refusal with the problem the API would give; only the connection's own
/// device sends, a revoked one sends nothing more, and a flood is refused
/// past the connection's budget.
async fn a_device_sends_its_messages_on_its_live_connection(engine: Engine) {
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Socket", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let mut ada_live = t.ada.device_live(&t.devices[0].device_id).await.unwrap();
    let mut grace_live = t.grace.device_live(&t.devices[2].device_id).await.unwrap();
    let sender = ada_live.sender();

    let hello = t.devices[0].seal_text(&group.id, "over the live connection").unwrap();
    sender.send_message(&group.id, &hello).unwrap();
    let LiveEvent::Sent { seq, duplicate: false, .. } = answer_to(&mut ada_live, &hello.client_id).await else {
        panic!("the message was not sent");
    };
    // It is in the log, and the others hear of it as of any message.
    let heard = grace_live.next(WAIT).await.unwrap();
    assert!(matches!(&heard, LiveEvent::Changed { last_seq, .. } if *last_seq == seq), "{heard:?}");
    assert_eq!(texts(&mut t.devices[2]).await, ["over the live connection"]);
    // Sent again (the answer lost on the way), it is the same message.
    sender.send_message(&group.id, &hello).unwrap();
    assert_eq!(
        answer_to(&mut ada_live, &hello.client_id).await,
        LiveEvent::Sent { conversation_id: group.id.clone(), client_id: hello.client_id.clone(), seq, duplicate: true }
    );
    assert!(texts(&mut t.devices[2]).await.is_empty(), "delivered once");

    // Refusals carry the API's problem, and nothing is kept of them.
    let refused = |event: LiveEvent| match event {
        LiveEvent::NotSent { problem, .. } => (problem.status, problem.code().to_owned()),
        other => panic!("{other:?}"),
    };
    let mut as_grace = t.devices[0].seal_text(&group.id, "as if from Grace's laptop").unwrap();
    as_grace.device_id = t.devices[2].device_id.clone();
    sender.send_message(&group.id, &as_grace).unwrap();
    assert_eq!(refused(answer_to(&mut ada_live, &as_grace.client_id).await), (404, "not-found".into()));
    let elsewhere = t.ada.create_conversation(&group_request("Elsewhere", &[])).await.unwrap();
    let wrong_place = t.devices[0].seal_text(&group.id, "into a group it is not in").unwrap();
    sender.send_message(&elsewhere.id, &wrong_place).unwrap();
    let (status, _) = refused(answer_to(&mut ada_live, &wrong_place.client_id).await);
    assert!(status == 404 || status == 409, "{status}");
    let mut stale = t.devices[0].seal_text(&group.id, "from an epoch long gone").unwrap();
    stale.epoch = Some(0);
    sender.send_message(&group.id, &stale).unwrap();
    assert_eq!(refused(answer_to(&mut ada_live, &stale.client_id).await).0, 409);
    assert!(texts(&mut t.devices[2]).await.is_empty(), "nothing refused reached anyone");

    // A device revoked while connected sends nothing more, whichever comes
    // first: its connection closing, or the send's own check.
    let mut phone_live = t.ada.device_live(&t.devices[1].device_id).await.unwrap();
    let phone = phone_live.sender();
    let late = t.devices[1].seal_text(&group.id, "after the revocation").unwrap();
    t.ada.revoke_device(&t.devices[1].device_id).await.unwrap();
    if phone.send_message(&group.id, &late).is_ok() {
        loop {
            match phone_live.next(WAIT).await {
                Ok(LiveEvent::NotSent { client_id, problem, .. }) if client_id == late.client_id => {
                    assert_eq!(problem.status, 401);
                    break;
                }
                Ok(LiveEvent::Sent { client_id, .. }) if client_id == late.client_id => panic!("a revoked device sent"),
                Ok(_) => continue,
                Err(conclave_client::SignalError::Closed) => break,
                Err(other) => panic!("{other:?}"),
            }
        }
    }
    assert!(texts(&mut t.devices[2]).await.is_empty(), "nothing from the revoked device");

    // A flood: the server's clock stands still here, so the budget (twice
    // a second's worth at once) never refills, and every send past it is
    // refused at once; each is answered, none closes the connection.
    let mut flood_live = t.ada.device_live(&t.devices[0].device_id).await.unwrap();
    let flood = flood_live.sender();
    let budget = 2 * LIVE_SENDS_PER_SECOND as usize;
    let mut not_mine = t.devices[0].seal_text(&group.id, "flood").unwrap();
    not_mine.device_id = t.devices[2].device_id.clone();
    for n in 0..budget + 500 {
        not_mine.client_id = format!("flood-{n}");
        flood.send_message(&group.id, &not_mine).unwrap();
    }
    let (mut statuses, mut answered) = (std::collections::BTreeMap::new(), std::collections::HashSet::new());
    while answered.len() < budget + 500 {
        if let LiveEvent::NotSent { client_id, problem, .. } = flood_live.next(WAIT).await.unwrap() {
            assert!(answered.insert(client_id), "answered once");
            *statuses.entry(problem.status).or_insert(0) += 1;
        }
    }
    assert!(statuses.get(&429).copied().unwrap_or(0) >= 500, "{statuses:?}");
    assert_eq!(statuses.keys().copied().collect::<Vec<_>>(), [404, 429], "{statuses:?}");
    // Still open: typing is heard.
    flood_live.typing(&group.id).await.unwrap();
    let typing = LiveEvent::Typing { conversation_id: group.id.clone(), user_id: t.ada_id.clone() };
    while grace_live.next(WAIT).await.unwrap() != typing {}

    // A sign-out made on another node (straight in the database here: this
    // node hears nothing of it) is seen by the first send once the last
    // check is a second old; within that second a send is trusted.
    // (The phone's removal moved the group on: the devices catch up first.)
    for _ in 0..3 {
        for d in [0, 2, 3] {
            t.devices[d].sync().await.unwrap();
        }
    }
    let sessions = t.ada.list_sessions().await.unwrap().sessions;
    let current = sessions.iter().find(|s| s.current).unwrap();
    let now = t.srv.state.now_ms();
    assert!(t.srv.state.store.revoke_session(&t.ada_id, &current.id, now).await.unwrap());
    let trusted = t.devices[0].seal_text(&group.id, "within the second").unwrap();
    sender.send_message(&group.id, &trusted).unwrap();
    let answer = answer_to(&mut ada_live, &trusted.client_id).await;
    assert!(matches!(answer, LiveEvent::Sent { .. }), "{answer:?}");
    t.srv.clock.advance(Duration::from_millis(1_000));
    let late = t.devices[0].seal_text(&group.id, "after the sign-out").unwrap();
    sender.send_message(&group.id, &late).unwrap();
    assert_eq!(refused(answer_to(&mut ada_live, &late.client_id).await), (401, "unauthenticated".into()));
}

/// A call started from a conversation: everyone in it sees that it started
/// and its link (encrypted); the members come in without the waiting room,
/// anyone else with the link still waits.
async fn a_call_from_a_conversation_lets_its_members_in_directly(engine: Engine) {
    use conclave_proto::signal::ServerMessage;
    let mut t = team(engine).await;
    let (cy, _) = t.srv.add_member(&t.ada, &t.org, "cy@acme.test", OrgRole::Member).await;
    let group = t.ada.create_conversation(&group_request("Standup", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let meeting = t.devices[0].start_call(&group.id).await.unwrap();
    assert!(meeting.settings.waiting_room, "the organisation's waiting room stays on");
    let events = t.devices[2].sync().await.unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(e, ChatEvent::Call { meeting_id, by, .. } if *meeting_id == meeting.id && *by == t.ada_id)));
    let link = events
        .iter()
        .find_map(|e| match e {
            ChatEvent::Message { text, .. } if text.contains(&meeting.invite_url) => Some(text.clone()),
            _ => None,
        })
        .expect("the link, decrypted on Grace's device");
    assert!(link.starts_with("📞 Standup"));
    assert_eq!(t.grace.get_conversation(&group.id).await.unwrap().call, None, "nobody is in the call yet");
    let (_host, _) = crate::meetings::host_joins(&t.ada, &meeting).await;
    let mut grace = t.grace.join_by_link(&meeting.link_secret, "Grace").await.unwrap();
    assert!(matches!(grace.next(WAIT).await.unwrap(), ServerMessage::Admitted { .. }), "a member comes straight in");
    let mut outsider = cy.join_by_link(&meeting.link_secret, "Cy").await.unwrap();
    assert!(matches!(outsider.next(WAIT).await.unwrap(), ServerMessage::Waiting { .. }), "anyone else waits");
    // The conversation's banner: who started it and who is in it (not
    // whoever waits outside).
    let call = t.grace.get_conversation(&group.id).await.unwrap().call.expect("the call is live");
    assert_eq!((call.meeting_id.as_str(), call.started_by.as_str()), (meeting.id.as_str(), t.ada_id.as_str()));
    let mut present: Vec<(Option<&str>, &str)> =
        call.in_call.iter().map(|a| (a.user_id.as_deref(), a.display_name.as_str())).collect();
    present.sort();
    let mut expected = vec![(Some(t.ada_id.as_str()), "Host"), (Some(t.grace_id.as_str()), "Grace")];
    expected.sort();
    assert_eq!(present, expected);
    // Over: the banner goes.
    t.ada.delete_meeting(&meeting.id).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while t.grace.get_conversation(&group.id).await.unwrap().call.is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the ended call is still shown");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A stranger to the conversation cannot start a call from it.
    assert_problem!(cy.start_call(&group.id).await, 404, "not-found");
}

/// A trader's client at another company: a conversation may include them
/// when both organisations allow it, and they are marked external.
async fn people_of_another_organisation_join_when_both_allow_it(engine: Engine) {
    use conclave_proto::{OrgPolicyUpdate, Setting};
    let mut t = team(engine).await;
    let (eve, eve_login) = t.srv.org_with_owner("eve@client.test", "Client Corp").await;
    let eve_org = eve_login.user.org_id.clone().unwrap();
    let eve_id = eve_login.user.id.clone();
    let request = group_request("Deal room", &[&t.grace_id, &eve_id]);
    assert_problem!(t.ada.create_conversation(&request).await, 422, "validation-failed");
    let allow = OrgPolicyUpdate { external_conversations: Some(Setting::unlocked(true)), ..Default::default() };
    t.ada.update_org_policy(&t.org, &allow).await.unwrap();
    assert_problem!(t.ada.create_conversation(&request).await, 422, "validation-failed");
    eve.update_org_policy(&eve_org, &allow).await.unwrap();
    let room = t.ada.create_conversation(&request).await.unwrap();
    let external: Vec<_> = room.members.iter().filter(|m| m.external).map(|m| m.user_id.as_str()).collect();
    assert_eq!(external, [eve_id.as_str()], "Eve, and only Eve, is external");
    t.devices.push(ChatDevice::register(&eve, "Eve's laptop").await.unwrap());
    all_in_group(&mut t.devices, &room.id).await;
    t.devices[0].send_text(&room.id, "terms attached", None).await.unwrap();
    assert_eq!(texts(t.devices.last_mut().unwrap()).await, ["terms attached"]);
    // She sees the conversation she is in, and nothing else of Acme's.
    let general = t.ada.create_conversation(&channel_request("general")).await.unwrap();
    assert_problem!(eve.get_conversation(&general.id).await, 404, "not-found");
    assert_problem!(eve.join_conversation(&general.id).await, 404, "not-found");
    let listed: Vec<String> = eve.list_conversations().await.unwrap().conversations.into_iter().map(|c| c.id).collect();
    assert_eq!(listed, std::slice::from_ref(&room.id));
}

/// Two nodes serve one conversation: a change made on the other node is
/// never overwritten by this node's older copy of the conversation. Here
/// the other node removes Grace; this node, which last saw her as a
/// member, refuses her message instead of forking the log.
async fn a_node_with_an_older_copy_of_a_conversation_never_forks_it(engine: Engine) {
    use conclave_conversation::Input;
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Two nodes", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    t.devices[2].send_text(&group.id, "from this node", None).await.unwrap();
    let store = t.srv.state.store.clone();
    let pusher = conclave_server::push::Pusher::new(store.clone(), t.srv.url.clone(), false);
    let authority = conclave_server::devices::AuthorityCell::new(store.clone());
    let other_node = conclave_server::conversations::Conversations::new(store, authority, pusher);
    let removal = |_: &conclave_conversation::Conversation| {
        Ok(Input::Remove { by: t.ada_id.clone(), account: t.grace_id.clone() })
    };
    other_node.change(&group.id, t.srv.state.now_ms(), removal).await.unwrap();
    let epoch = t.devices[2].epoch(&group.id);
    let late = opaque_message(&t.devices[2].device_id, "after-removal", epoch);
    assert_problem!(t.grace.send_message(&group.id, &late).await, 404, "not-found");
    let log = t.ada.read_conversation(&group.id, &t.devices[0].device_id, 0, 500, 0).await.unwrap();
    assert!(!log
        .entries
        .iter()
        .any(|e| matches!(&e.body, EntryBody::Message { client_id, .. } if client_id == "after-removal")));
    let seqs: Vec<u64> = log.entries.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "one gapless log: {seqs:?}");
}

/// The organisation's edit and delete windows hold in conversations that
/// existed before the policy changed, and a wider window reopens them.
async fn edit_and_delete_windows_follow_the_organisations_policy(engine: Engine) {
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Windows", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let first = t.devices[2].send_text(&group.id, "first draft", None).await.unwrap();
    let second = t.devices[2].send_text(&group.id, "second draft", None).await.unwrap();
    let minutes = |edit: Option<u32>, delete: Option<u32>| OrgPolicyUpdate {
        message_edit_minutes: Some(Setting::unlocked(edit)),
        message_delete_minutes: Some(Setting::unlocked(delete)),
        ..Default::default()
    };
    t.ada.update_org_policy(&t.org, &minutes(Some(5), Some(10))).await.unwrap();
    assert_problem!(t.ada.update_org_policy(&t.org, &minutes(Some(0), None)).await, 422, "validation-failed");

    // Six minutes on: too late to edit, still time to delete.
    t.srv.clock.advance(Duration::from_secs(6 * 60));
    let late_edit = t.devices[2].send_text(&group.id, "edited", Some(Reference::Edit(first.seq))).await;
    assert!(
        matches!(&late_edit, Err(conclave_client::chat::ChatError::Api(e)) if e.code() == Some("too-late")),
        "{late_edit:?}"
    );
    t.grace.delete_message(&group.id, first.seq).await.unwrap();
    // Eleven minutes on: too late to delete one's own; an admin still may.
    t.srv.clock.advance(Duration::from_secs(5 * 60));
    assert_problem!(t.grace.delete_message(&group.id, second.seq).await, 403, "too-late");
    // No limit: editing is open again.
    t.ada.update_org_policy(&t.org, &minutes(None, None)).await.unwrap();
    t.devices[2].send_text(&group.id, "second, edited", Some(Reference::Edit(second.seq))).await.unwrap();
    t.grace.delete_message(&group.id, second.seq).await.unwrap();
}

/// A mention, written in the text, reaches every device of the person
/// mentioned as such, and nobody else is told they were.
async fn a_mention_reaches_the_person_mentioned(engine: Engine) {
    let mut t = team(engine).await;
    let group = t.ada.create_conversation(&group_request("Review", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let text = format!("{}, can you look at the figures?", conclave_proto::markup::mention("Grace", &t.grace_id));
    let sent = t.devices[0].send_text(&group.id, &text, None).await.unwrap();
    t.devices[1].send_text(&group.id, "no mention here", None).await.unwrap();
    for device in t.devices.iter_mut() {
        device.sync().await.unwrap();
        let mentioned: Vec<u64> = device.mentioning_me(&group.id).iter().map(|m| m.seq).collect();
        let expected = if device.user_id == t.grace_id { vec![sent.seq] } else { Vec::new() };
        assert_eq!(mentioned, expected, "{}", device.device_id);
        let held = device.history(&group.id).iter().find(|m| m.seq == sent.seq).expect("the message");
        assert_eq!((held.text.as_str(), held.mentions.as_slice()), (text.as_str(), [t.grace_id.clone()].as_slice()));
    }
}

/// Where the organisation allows it, a channel may be plain (announcements
/// to very many people): no MLS group, the log holds each message as it is,
/// and every member's device reads, replies, reacts, edits and deletes as
/// in an encrypted one; a newcomer reads the earlier messages, as the
/// organisation's policy lets newcomers do. Without the policy, no plain
/// channel is made.
async fn a_plain_channel_works_where_the_organisation_allows_it(engine: Engine) {
    let mut t = team(engine).await;
    let plain_request = CreateConversationRequest {
        kind: ConversationKind::Channel,
        name: Some("announcements".into()),
        members: vec![],
        encrypted: false,
    };
    assert_problem!(t.ada.create_conversation(&plain_request).await, 403, "forbidden");
    let allow = OrgPolicyUpdate { unencrypted_channels: Some(Setting::unlocked(true)), ..Default::default() };
    t.ada.update_org_policy(&t.org, &allow).await.unwrap();
    let (ada, _) = t.srv.login("ada@acme.test").await;
    let channel = ada.create_conversation(&plain_request).await.unwrap();
    assert!(!channel.encrypted, "the conversation says it is plain");
    let (ada_devices, grace_devices) = t.devices.split_at_mut(2);
    let laptop = &mut ada_devices[0];
    laptop.open(&channel.id).await.unwrap();
    assert!(laptop.in_group(&channel.id), "a plain channel needs no group to write in");
    let first = laptop.send_text(&channel.id, "The office is closed on Friday", None).await.unwrap();
    // The server holds the message as it is: that is what plain means.
    let entries = t.ada.read_conversation(&channel.id, &laptop.device_id, 0, 50, 0).await.unwrap();
    let held = entries.entries.iter().find_map(|e| match &e.body {
        EntryBody::Message { content, epoch, .. } if e.seq == first.seq => Some((content.clone(), *epoch)),
        _ => None,
    });
    let (content, epoch) = held.expect("the message in the log");
    assert_eq!(epoch, None);
    let payload: MessagePayload =
        serde_json::from_slice(&data_encoding::BASE64.decode(content.as_bytes()).unwrap()).unwrap();
    assert_eq!(payload, conclave_e2ee::conversations::text_payload("The office is closed on Friday"));
    // Grace joins later and reads what came before, replies and reacts.
    t.grace.join_conversation(&channel.id).await.unwrap();
    let grace_laptop = &mut grace_devices[0];
    grace_laptop.open(&channel.id).await.unwrap();
    let texts = |d: &ChatDevice| d.history(&channel.id).iter().map(|m| m.text.clone()).collect::<Vec<_>>();
    assert_eq!(texts(grace_laptop), ["The office is closed on Friday"], "the newcomer reads the earlier message");
    let reply =
        grace_laptop.send_text(&channel.id, "Thanks for the notice", Some(Reference::Thread(first.seq))).await.unwrap();
    grace_laptop.send_text(&channel.id, "👍", Some(Reference::Reaction(first.seq))).await.unwrap();
    let events = laptop.sync().await.unwrap();
    assert!(events.iter().any(|e| matches!(e, ChatEvent::Membership { account, .. } if *account == t.grace_id)));
    assert_eq!(texts(laptop), ["The office is closed on Friday", "Thanks for the notice", "👍"]);
    // Ada's other device follows it too; an edit and a delete reach everyone.
    let phone = &mut ada_devices[1];
    phone.open(&channel.id).await.unwrap();
    phone
        .send_text(&channel.id, "The office is closed on Friday and Monday", Some(Reference::Edit(first.seq)))
        .await
        .unwrap();
    t.grace.delete_message(&channel.id, reply.seq).await.unwrap();
    let laptop = &mut ada_devices[0];
    let events = laptop.sync().await.unwrap();
    assert!(events.iter().any(|e| matches!(e, ChatEvent::Deleted { target, .. } if *target == reply.seq)));
    let grace_laptop = &mut grace_devices[0];
    grace_laptop.sync().await.unwrap();
    for device in [&*laptop, &*grace_laptop] {
        let held = device.history(&channel.id);
        assert!(held.iter().any(|m| m.text == "The office is closed on Friday and Monday"), "the edit everywhere");
        assert!(held.iter().all(|m| m.seq != reply.seq), "the deleted reply nowhere");
    }
    // A device keeps what it read of a plain channel across a restart, and
    // finds it by search.
    let kept = grace_laptop.export();
    let restored = ChatDevice::restore(&t.grace, &kept).unwrap();
    assert_eq!(texts(&restored), texts(grace_laptop));
    let found = restored.search("office friday");
    assert_eq!(
        found.iter().map(|f| f.text.as_str()).collect::<Vec<_>>(),
        ["The office is closed on Friday and Monday"]
    );
    // Removed, Grace's devices read nothing more of it.
    t.ada.remove_conversation_member(&channel.id, &t.grace_id).await.unwrap();
    let events = grace_laptop.sync().await.unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(e, ChatEvent::Removed { conversation_id } if *conversation_id == channel.id)));
    assert!(!grace_laptop.in_group(&channel.id));
    ada_devices[0].send_text(&channel.id, "Only for those still here", None).await.unwrap();
    grace_devices[0].sync().await.unwrap();
    assert!(grace_devices[0].history(&channel.id).iter().all(|m| m.text != "Only for those still here"));
}

on_both_engines!(
    sends_arriving_together_each_land_once_and_a_bad_one_fails_alone,
    senders_hanging_up_mid_burst_take_no_other_message_with_them,
    a_large_channels_welcome_reaches_the_new_device_whole,
    a_mention_reaches_the_person_mentioned,
    edit_and_delete_windows_follow_the_organisations_policy,
    a_node_with_an_older_copy_of_a_conversation_never_forks_it,
    people_of_another_organisation_join_when_both_allow_it,
    a_call_from_a_conversation_lets_its_members_in_directly,
    a_devices_live_connection_hears_what_happens_as_it_happens,
    a_device_sends_its_messages_on_its_live_connection,
    unread_counts_and_read_receipts_follow_what_each_person_read,
    an_offline_committer_does_not_hold_the_conversation_back,
    everyone_in_a_group_reads_every_message_on_every_device,
    a_retried_message_is_delivered_once,
    an_offline_device_catches_up_in_order_with_nothing_lost_or_doubled,
    a_removed_member_reads_nothing_more_and_cannot_open_what_follows,
    channels_are_joined_freely_until_locked_and_hidden_from_outsiders,
    a_device_added_later_reads_the_history_its_account_may_see,
    newcomers_see_no_earlier_history_where_the_organisation_says_so,
    a_plain_channel_works_where_the_organisation_allows_it,
);
