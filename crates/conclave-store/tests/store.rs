//! The store's contract, on SQLite and PostgreSQL alike.

use conclave_auth::Backoff;
use conclave_proto::{AccountStatus, OrgPolicy, OrgRole, Plan};
use conclave_store::testing::TestDatabase;
use conclave_store::{test_both_engines, AuditVerdict, NewAuditEvent, NewSession, NewUser, StoreError};
use std::time::Duration;

fn user<'a>(email: &'a str, now_ms: i64) -> NewUser<'a> {
    NewUser { email, display_name: "Someone", password_hash: "$argon2id$fake", org_id: None, role: None, now_ms }
}

fn policy() -> OrgPolicy {
    OrgPolicy::defaults(Plan::Free, &["eu".to_owned()])
}

fn event(action: &str, org: Option<&'static str>) -> NewAuditEvent<'static> {
    let action: &'static str = Box::leak(action.to_owned().into_boxed_str());
    NewAuditEvent {
        at_ms: 1,
        org_id: org,
        actor_id: None,
        action,
        target: None,
        source_ip: Some("127.0.0.1"),
        outcome: "success",
        detail: "",
    }
}

test_both_engines!(migrations_are_idempotent_and_concurrent);
async fn migrations_are_idempotent_and_concurrent(db: TestDatabase) {
    // Several starters on a brand-new database at once (the server and
    // `conclave admin`, or several nodes).
    let (a, b) = tokio::join!(db.store(), db.store());
    let (c, d) = tokio::join!(db.store(), db.store());
    c.ping().await.unwrap();
    d.ping().await.unwrap();
    a.ping().await.unwrap();
    b.ping().await.unwrap();
    assert_eq!(a.count_orgs().await.unwrap(), 0);
}

test_both_engines!(bootstrap_creates_org_and_owner_and_emails_are_unique);
async fn bootstrap_creates_org_and_owner_and_emails_are_unique(db: TestDatabase) {
    let store = db.store().await;
    let (org, owner) =
        store.create_org_with_new_owner("Acme", Plan::Free, &policy(), &user("o@acme.test", 5)).await.unwrap();
    assert_eq!(owner.org_id.as_deref(), Some(org.id.as_str()));
    assert_eq!(owner.role, Some(OrgRole::Owner));
    assert_eq!(owner.status, AccountStatus::Active);
    let (loaded, loaded_policy) = store.org_by_id(&org.id).await.unwrap().unwrap();
    assert_eq!(loaded, org);
    assert_eq!(loaded_policy, policy());
    let dup = store.create_user(&user("o@acme.test", 6)).await;
    assert!(matches!(dup, Err(StoreError::Conflict("account"))), "{dup:?}");
    assert_eq!(store.count_org_owners(&org.id).await.unwrap(), 1);
}

test_both_engines!(a_user_can_own_only_one_org);
async fn a_user_can_own_only_one_org(db: TestDatabase) {
    let store = db.store().await;
    let u = store.create_user(&user("solo@x.test", 1)).await.unwrap();
    store.create_org_for_user("One", Plan::Free, &policy(), &u.id, 2).await.unwrap();
    let again = store.create_org_for_user("Two", Plan::Free, &policy(), &u.id, 3).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))));
    assert_eq!(store.count_orgs().await.unwrap(), 1, "the failed creation left nothing behind");
}

test_both_engines!(sessions_list_revoke_and_expire);
async fn sessions_list_revoke_and_expire(db: TestDatabase) {
    let store = db.store().await;
    let u = store.create_user(&user("s@x.test", 1)).await.unwrap();
    let new = |hash: &'static str, expires| NewSession {
        user_id: &u.id,
        token_hash: hash,
        kind: "login",
        name: None,
        csrf_token: "c",
        now_ms: 10,
        expires_at_ms: expires,
        ip: Some("127.0.0.9"),
        user_agent: None,
    };
    let a = store.create_session(&new("h1", 1_000)).await.unwrap();
    let b = store.create_session(&new("h2", 1_000)).await.unwrap();
    let _expired = store.create_session(&new("h3", 50)).await.unwrap();
    assert_eq!(store.list_live_sessions(&u.id, 100).await.unwrap().len(), 2);
    assert!(store.revoke_session(&u.id, &b.id, 100).await.unwrap());
    assert!(!store.revoke_session(&u.id, &b.id, 100).await.unwrap(), "already revoked");
    assert!(!store.revoke_session("someone-else", &a.id, 100).await.unwrap(), "only the owner revokes");
    let signed_in = store.signed_in("h1").await.unwrap().unwrap();
    assert_eq!((signed_in.session.id.as_str(), signed_in.session.ip.as_deref()), (a.id.as_str(), Some("127.0.0.9")));
    assert_eq!((signed_in.user.id.as_str(), signed_in.user.email.as_str()), (u.id.as_str(), "s@x.test"));
    assert!(signed_in.org.is_none(), "an account of no organisation");
    assert!(store.signed_in("h2").await.unwrap().unwrap().session.revoked_at_ms.is_some(), "revoked, as it is");
    assert!(store.signed_in("nobody's").await.unwrap().is_none());
    let (org, owner) =
        store.create_org_with_new_owner("Acme", Plan::Free, &policy(), &user("o@acme.test", 5)).await.unwrap();
    store.create_session(&NewSession { user_id: &owner.id, ..new("h5", 1_000) }).await.unwrap();
    let (read_org, read_policy) = store.signed_in("h5").await.unwrap().unwrap().org.expect("the owner's organisation");
    assert_eq!((read_org.id, read_org.name), (org.id, "Acme".to_owned()));
    assert_eq!(read_policy, policy());
    let c = store.create_session(&new("h4", 1_000)).await.unwrap();
    assert_eq!(store.revoke_sessions_except(&u.id, Some(&c.id), 200).await.unwrap(), 2);
    let live: Vec<_> = store.list_live_sessions(&u.id, 300).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(live, vec![c.id]);
}

test_both_engines!(totp_steps_and_recovery_codes_are_single_use);
async fn totp_steps_and_recovery_codes_are_single_use(db: TestDatabase) {
    let store = db.store().await;
    let u = store.create_user(&user("t@x.test", 1)).await.unwrap();
    store.set_pending_totp(&u.id, "SECRET").await.unwrap();
    store.enable_totp(&u.id, "SECRET", 100, &["r1".into(), "r2".into()]).await.unwrap();
    let loaded = store.user_by_id(&u.id).await.unwrap().unwrap();
    assert_eq!(
        (loaded.totp_secret.as_deref(), loaded.totp_pending_secret, loaded.totp_last_step),
        (Some("SECRET"), None, Some(100))
    );
    assert!(!store.claim_totp_step(&u.id, 100).await.unwrap());
    assert!(store.claim_totp_step(&u.id, 101).await.unwrap());
    assert!(!store.claim_totp_step(&u.id, 101).await.unwrap());
    assert!(store.use_recovery_code(&u.id, "r1", 5).await.unwrap());
    assert!(!store.use_recovery_code(&u.id, "r1", 6).await.unwrap());
    assert_eq!(store.unused_recovery_codes(&u.id).await.unwrap(), 1);
}

test_both_engines!(invitations_create_exactly_one_account);
async fn invitations_create_exactly_one_account(db: TestDatabase) {
    let store = db.store().await;
    let (org, owner) =
        store.create_org_with_new_owner("Acme", Plan::Free, &policy(), &user("o@acme.test", 1)).await.unwrap();
    let inv =
        store.create_invitation(&org.id, "new@acme.test", OrgRole::Admin, "tok", &owner.id, 10, 1_000).await.unwrap();
    let found = store.invitation_by_token_hash("tok").await.unwrap().unwrap();
    assert!(found.is_open(20));
    let created = store.accept_invitation(&found, &user("new@acme.test", 20)).await.unwrap();
    assert_eq!((created.org_id.as_deref(), created.role), (Some(org.id.as_str()), Some(OrgRole::Admin)));
    let again = store.accept_invitation(&found, &user("other@acme.test", 21)).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))));
    assert!(store.user_by_email("other@acme.test").await.unwrap().is_none(), "nothing half-created");
    let second =
        store.create_invitation(&org.id, "x@acme.test", OrgRole::Member, "tok2", &owner.id, 10, 1_000).await.unwrap();
    assert!(store.revoke_invitation(&org.id, &second.id, 30).await.unwrap());
    assert!(matches!(store.accept_invitation(&second, &user("x@acme.test", 31)).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.list_invitations(&org.id).await.unwrap().len(), 1, "revoked ones are not listed");
    assert!(!store.invitation_by_token_hash("tok2").await.unwrap().unwrap().is_open(31));
    let _ = inv;
}

test_both_engines!(login_failures_lock_out_and_concurrent_failures_all_count);
async fn login_failures_lock_out_and_concurrent_failures_all_count(db: TestDatabase) {
    let store = db.store().await;
    let backoff = Backoff { free_attempts: 5, base: Duration::from_secs(60), max: Duration::from_secs(3600) };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(
            async move { store.record_login_failure("k", 1_000, 900_000, &backoff).await.unwrap() },
        ));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let row = store.login_throttle("k").await.unwrap().unwrap();
    assert_eq!(row.failures, 8);
    assert_eq!(row.locked_until_ms, 1_000 + 8 * 60_000, "backoff doubled for each failure past five");
    // After the quiet period the count starts over.
    let fresh = store.record_login_failure("k", 10_000_000, 900_000, &backoff).await.unwrap();
    assert_eq!(fresh.failures, 1);
    store.clear_login_failures("k").await.unwrap();
    assert!(store.login_throttle("k").await.unwrap().is_none());
}

test_both_engines!(dormant_members_are_disabled_by_cutoff);
async fn dormant_members_are_disabled_by_cutoff(db: TestDatabase) {
    let store = db.store().await;
    let (org, owner) =
        store.create_org_with_new_owner("Acme", Plan::Free, &policy(), &user("o@acme.test", 1_000)).await.unwrap();
    let inv =
        store.create_invitation(&org.id, "old@acme.test", OrgRole::Member, "t", &owner.id, 0, 10_000).await.unwrap();
    let old = store.accept_invitation(&inv, &user("old@acme.test", 100)).await.unwrap();
    let disabled = store.disable_dormant_members(&org.id, 500).await.unwrap();
    assert_eq!(disabled, vec![old.id.clone()]);
    assert_eq!(store.user_by_id(&old.id).await.unwrap().unwrap().status, AccountStatus::Dormant);
    assert_eq!(store.user_by_id(&owner.id).await.unwrap().unwrap().status, AccountStatus::Active);
    store.reactivate_user(&old.id, 2_000).await.unwrap();
    assert!(store.disable_dormant_members(&org.id, 900).await.unwrap().is_empty());
}

test_both_engines!(audit_chain_survives_concurrent_appends_and_detects_tampering);
async fn audit_chain_survives_concurrent_appends_and_detects_tampering(db: TestDatabase) {
    let store = db.store().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append_audit(&event(&format!("test.{i}"), if i % 2 == 0 { Some("org-a") } else { None }))
                .await
                .unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>(), "every append got its own sequence number");
    let mut progress_calls = 0;
    match store.verify_audit_chain(|_, _| progress_calls += 1).await.unwrap() {
        AuditVerdict::Intact(head) => assert_eq!(head.seq, 40),
        AuditVerdict::Broken(e) => panic!("fresh chain broken: {e}"),
    }
    assert!(progress_calls > 0);
    let page = store.list_audit_events(Some("org-a"), None, 5).await.unwrap();
    assert_eq!(page.len(), 5);
    assert!(page.iter().all(|e| e.org_id.as_deref() == Some("org-a")));
    assert!(page.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    let older = store.list_audit_events(Some("org-a"), Some(page[4].seq), 100).await.unwrap();
    assert_eq!(older.len(), 15);

    sqlx::query("UPDATE audit_events SET outcome = 'failure' WHERE seq = 7").execute(store.raw_pool()).await.unwrap();
    assert!(matches!(
        store.verify_audit_chain(|_, _| {}).await.unwrap(),
        AuditVerdict::Broken(conclave_auth::ChainError::Tampered { seq: 7 })
    ));
    sqlx::query("UPDATE audit_events SET outcome = 'success' WHERE seq = 7").execute(store.raw_pool()).await.unwrap();
    sqlx::query("DELETE FROM audit_events WHERE seq = 40").execute(store.raw_pool()).await.unwrap();
    assert!(matches!(
        store.verify_audit_chain(|_, _| {}).await.unwrap(),
        AuditVerdict::Broken(conclave_auth::ChainError::HeadMismatch { .. })
    ));
}

fn secrets(tag: &str) -> conclave_store::MeetingSecrets {
    conclave_store::MeetingSecrets {
        link_secret: format!("link-{tag}"),
        code: format!("code-{tag}"),
        passcode: Some("pass".into()),
        host_key: "123456".into(),
    }
}

test_both_engines!(meetings_are_found_by_secret_and_rotation_retires_old_secrets);
async fn meetings_are_found_by_secret_and_rotation_retires_old_secrets(db: TestDatabase) {
    let store = db.store().await;
    let (org, owner) =
        store.create_org_with_new_owner("Acme", Plan::Free, &policy(), &user("o@acme.test", 1)).await.unwrap();
    let settings = conclave_proto::MeetingSettings::default();
    let new = conclave_store::NewMeeting {
        invitees: &[],
        org_id: &org.id,
        host_user_id: &owner.id,
        title: "Standup",
        scheduled_start_ms: None,
        duration_minutes: Some(30),
        settings: &settings,
        secrets: &secrets("a"),
        now_ms: 5,
        invited: &[],
    };
    let meeting = store.create_meeting(&new).await.unwrap();
    assert_eq!(store.meeting_by_link_secret("link-a").await.unwrap().unwrap().id, meeting.id);
    assert_eq!(store.meeting_by_code("code-a").await.unwrap().unwrap().secrets.passcode.as_deref(), Some("pass"));
    let clash = store.create_meeting(&conclave_store::NewMeeting { title: "Other", ..new.clone() }).await;
    assert!(matches!(clash, Err(StoreError::Conflict("meeting secret"))), "secrets are unique");
    store.rotate_meeting_secrets(&meeting.id, &secrets("b")).await.unwrap();
    assert!(store.meeting_by_link_secret("link-a").await.unwrap().is_none());
    assert!(store.meeting_by_code("code-a").await.unwrap().is_none());
    assert_eq!(store.meeting_by_code("code-b").await.unwrap().unwrap().id, meeting.id);
    let mut changed = store.meeting_by_id(&meeting.id).await.unwrap().unwrap();
    changed.title = "Daily standup".into();
    changed.secrets.passcode = None;
    store.update_meeting(&changed).await.unwrap();
    let loaded = store.meeting_by_id(&meeting.id).await.unwrap().unwrap();
    assert_eq!((loaded.title.as_str(), loaded.secrets.passcode), ("Daily standup", None));
    assert_eq!(store.list_meetings(&org.id, Some(&owner.id)).await.unwrap().len(), 1);
    let report = conclave_store::NewReport {
        org_id: &org.id,
        meeting_id: &meeting.id,
        reporter_name: "Ada",
        reporter_user_id: None,
        reported_name: "Troll",
        reported_user_id: None,
        reason: "drew on the screen share",
        now_ms: 9,
    };
    store.create_report(&report).await.unwrap();
    // Two guests behind one address are removed, and an account.
    let address = ["ip:203.0.113.9".to_owned()];
    let guest = |name| conclave_store::NewBan { keys: &address, display_name: name, user_id: None, removed_by: "Host" };
    let troll = store.add_meeting_ban(&meeting.id, &guest("Troll"), 10).await.unwrap();
    let twin = store.add_meeting_ban(&meeting.id, &guest("Troll 2"), 11).await.unwrap();
    let account = ["user:u9".to_owned()];
    let member =
        conclave_store::NewBan { keys: &account, display_name: "Mallory", user_id: Some("u9"), removed_by: "Host" };
    let mallory = store.add_meeting_ban(&meeting.id, &member, 12).await.unwrap();
    assert_eq!(store.meeting_bans(&meeting.id).await.unwrap(), ["ip:203.0.113.9", "user:u9"]);
    let bans = store.list_meeting_bans(&meeting.id).await.unwrap();
    assert_eq!(bans.iter().map(|b| b.display_name.as_str()).collect::<Vec<_>>(), ["Mallory", "Troll 2", "Troll"]);
    assert_eq!((bans[0].user_id.as_deref(), bans[0].removed_by.as_str(), bans[0].at_ms), (Some("u9"), "Host", 12));
    // Lifting one guest's ban frees nothing while the other still holds the address.
    assert_eq!(store.lift_meeting_ban(&meeting.id, &troll).await.unwrap(), Some(vec![]));
    assert_eq!(store.lift_meeting_ban(&meeting.id, &troll).await.unwrap(), None, "already lifted");
    assert_eq!(store.lift_meeting_ban(&meeting.id, &twin).await.unwrap(), Some(address.to_vec()));
    assert_eq!(store.lift_meeting_ban("another-meeting", &mallory).await.unwrap(), None, "only its own meeting's");
    assert_eq!(store.meeting_bans(&meeting.id).await.unwrap(), ["user:u9"]);
    assert_eq!(store.list_reports(&org.id).await.unwrap()[0].reported_name, "Troll");
    assert!(store.delete_meeting(&meeting.id).await.unwrap());
    assert!(store.meeting_by_id(&meeting.id).await.unwrap().is_none());
}

/// The race that once failed with SQLITE_BUSY: many starters on a fresh file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_sqlite_files_survive_simultaneous_starters() {
    for _ in 0..20 {
        let db = TestDatabase::new(conclave_store::Engine::Sqlite).await;
        let (a, b, c, d) = tokio::join!(db.store(), db.store(), db.store(), db.store());
        for store in [a, b, c, d] {
            assert_eq!(store.count_orgs().await.unwrap(), 0);
        }
    }
}

test_both_engines!(a_setting_made_by_racing_nodes_has_one_value);
async fn a_setting_made_by_racing_nodes_has_one_value(db: TestDatabase) {
    // Two nodes make the cluster's E2EE credential authority key at once.
    let (a, b) = tokio::join!(db.store(), db.store());
    let (first, second) =
        tokio::join!(a.setting_or_insert("authority", "key-a"), b.setting_or_insert("authority", "key-b"));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first, second, "both nodes use the one key stored");
    assert!(first == "key-a" || first == "key-b");
    assert_eq!(a.setting_or_insert("authority", "key-c").await.unwrap(), first, "kept, not replaced");
}

test_both_engines!(a_join_ticket_is_taken_once_by_whichever_node_comes_first);
async fn a_join_ticket_is_taken_once_by_whichever_node_comes_first(db: TestDatabase) {
    let (a, b) = tokio::join!(db.store(), db.store());
    a.add_join_ticket("hash-1", "m-1", r#"{"who":"ada"}"#, 1_000, 0).await.unwrap();
    // Two nodes redeem it at the same moment: exactly one gets it.
    let (first, second) = tokio::join!(a.take_join_ticket("hash-1", 10), b.take_join_ticket("hash-1", 10));
    let taken: Vec<_> = [first.unwrap(), second.unwrap()].into_iter().flatten().collect();
    assert_eq!(taken.len(), 1, "single use across nodes");
    assert_eq!((taken[0].meeting_id.as_str(), taken[0].entrant_json.as_str()), ("m-1", r#"{"who":"ada"}"#));
    // An expired ticket is gone too, and useless.
    a.add_join_ticket("hash-2", "m-1", "{}", 1_000, 0).await.unwrap();
    assert_eq!(b.take_join_ticket("hash-2", 1_000).await.unwrap(), None);
    assert_eq!(b.take_join_ticket("hash-2", 10).await.unwrap(), None, "taken even when expired");
    // Rotating a meeting's secrets revokes what it issued.
    a.add_join_ticket("hash-3", "m-1", "{}", 1_000, 0).await.unwrap();
    a.add_join_ticket("hash-4", "m-2", "{}", 1_000, 0).await.unwrap();
    a.revoke_join_tickets("m-1").await.unwrap();
    assert_eq!(b.take_join_ticket("hash-3", 10).await.unwrap(), None);
    assert!(b.take_join_ticket("hash-4", 10).await.unwrap().is_some(), "another meeting's is kept");
    // Resume tokens lead to their meeting until its room closes.
    a.add_resume_token("rs-1", "m-1", 0).await.unwrap();
    assert_eq!(b.resume_token_meeting("rs-1").await.unwrap().as_deref(), Some("m-1"));
    b.forget_resume_tokens("m-1").await.unwrap();
    assert_eq!(a.resume_token_meeting("rs-1").await.unwrap(), None);
    // What a node that stopped without closing its rooms left behind goes
    // by age: old resume tokens and expired tickets, not the fresh ones.
    a.add_resume_token("rs-old", "m-3", 100).await.unwrap();
    a.add_resume_token("rs-new", "m-3", 5_000).await.unwrap();
    a.add_join_ticket("hash-old", "m-3", "{}", 2_000, 0).await.unwrap();
    a.add_join_ticket("hash-new", "m-3", "{}", 9_000, 0).await.unwrap();
    assert_eq!(b.forget_stale_entry_tokens(1_000, 3_000).await.unwrap(), 2);
    assert_eq!(a.resume_token_meeting("rs-old").await.unwrap(), None);
    assert_eq!(a.resume_token_meeting("rs-new").await.unwrap().as_deref(), Some("m-3"));
    assert!(a.take_join_ticket("hash-new", 3_000).await.unwrap().is_some());
}

test_both_engines!(a_device_is_registered_once_listed_and_revoked);
async fn a_device_is_registered_once_listed_and_revoked(db: TestDatabase) {
    let store = db.store().await;
    let user = store
        .create_user(&NewUser {
            email: "ada@acme.test",
            display_name: "Ada",
            password_hash: "x",
            org_id: None,
            role: None,
            now_ms: 1,
        })
        .await
        .unwrap();
    let laptop = store.register_device(&user.id, "key-1", "Laptop", 10).await.unwrap();
    assert!(laptop.new);
    let laptop = laptop.device;
    // The same key again is the same device: its name kept, its use noted.
    let again = store.register_device(&user.id, "key-1", "Renamed", 10).await.unwrap();
    assert!(!again.new, "not new, even within the same millisecond");
    let again = store.register_device(&user.id, "key-1", "Renamed", 20).await.unwrap().device;
    assert_eq!((again.id.as_str(), again.name.as_str(), again.last_used_at_ms), (laptop.id.as_str(), "Laptop", 20));
    let phone = store.register_device(&user.id, "key-2", "Phone", 30).await.unwrap().device;
    let listed: Vec<_> = store.devices_of(&user.id).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(listed, [laptop.id.clone(), phone.id.clone()]);
    assert!(store.revoke_device(&user.id, &laptop.id, 40).await.unwrap());
    assert!(!store.revoke_device(&user.id, &laptop.id, 41).await.unwrap(), "once");
    assert!(!store.revoke_device("someone-else", &phone.id, 41).await.unwrap(), "only one's own");
    assert_eq!(store.devices_of(&user.id).await.unwrap().len(), 1);
    // A revoked key stays revoked: registering it again finds it revoked.
    assert_eq!(store.register_device(&user.id, "key-1", "Laptop", 50).await.unwrap().device.revoked_at_ms, Some(40));
}

test_both_engines!(changes_to_several_conversations_commit_together_each_on_its_own_terms);
async fn changes_to_several_conversations_commit_together_each_on_its_own_terms(db: TestDatabase) {
    use conclave_store::{ConversationChange, EntryRow, NewConversation};
    let store = db.store().await;
    let (org, owner) =
        store.create_org_with_new_owner("Acme", Plan::Free, &policy(), &user("o@acme.test", 5)).await.unwrap();
    let message = |seq: i64, client_id: &str| EntryRow {
        seq,
        at_ms: 10 + seq,
        author: Some(owner.id.clone()),
        device_id: Some("laptop".to_owned()),
        client_id: Some(client_id.to_owned()),
        thread_seq: None,
        reference_kind: None,
        refers_to: None,
        is_message: true,
        deleted: false,
        body_json: format!("\"body {client_id}\""),
        segment_id: None,
    };
    let change = |seq: i64, client_id: &str| ConversationChange {
        last_seq: seq,
        entries: vec![message(seq, client_id)],
        reads: vec![(owner.id.clone(), seq)],
        at_ms: 10 + seq,
        ..ConversationChange::default()
    };
    for id in ["a", "b", "c"] {
        let new = NewConversation {
            id: id.to_owned(),
            org_id: org.id.clone(),
            kind: "group".to_owned(),
            name: Some(id.to_owned()),
            direct_pair: None,
            created_at_ms: 1,
        };
        let founding =
            ConversationChange { state_json: Some("{}".to_owned()), at_ms: 1, ..ConversationChange::default() };
        store.create_conversation(&new, &founding).await.unwrap();
    }
    let version = store.conversation("a").await.unwrap().unwrap().version;
    // "b" was changed meanwhile, and "c" gets a retry of a message it already holds.
    assert!(store.change_conversation("b", version, &change(1, "b-1")).await.unwrap());
    assert!(store.change_conversation("c", version, &change(1, "c-1")).await.unwrap());
    let (a, b, c) = (change(1, "a-1"), change(1, "b-2"), change(2, "c-1"));
    let bodies = |id: &'static str| {
        let store = &store;
        async move {
            store
                .conversation_entries(id, 0, 100, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.body_json)
                .collect::<Vec<_>>()
        }
    };
    let row = |id: &'static str| {
        let store = &store;
        async move { store.conversation(id).await.unwrap().unwrap() }
    };
    // An error fails the transaction whole: nothing of it is written, and
    // the caller writes the changes one by one.
    let failed = store.change_conversations(&[("a", version, &a), ("c", version + 1, &c)]).await;
    assert!(matches!(failed, Err(StoreError::Conflict(_))), "c's retry is refused: {failed:?}");
    assert!(bodies("a").await.is_empty(), "a's change went with the failed transaction");
    assert_eq!(row("a").await.version, version);
    assert_eq!(bodies("c").await, ["\"body c-1\""], "c holds its message once");
    assert_eq!((row("c").await.version, row("c").await.last_seq), (version + 1, 1), "c's version stays");
    // A version taken meanwhile writes nothing of that change, and the others are in.
    let outcomes = store.change_conversations(&[("a", version, &a), ("b", version, &b)]).await.unwrap();
    assert_eq!(outcomes, [true, false], "b's version was taken");
    assert_eq!(bodies("a").await, ["\"body a-1\""], "a's change is in");
    assert_eq!(bodies("b").await, ["\"body b-1\""], "b's is not");
    assert_eq!((row("a").await.version, row("a").await.last_seq), (version + 1, 1));
    assert_eq!((row("b").await.version, row("b").await.last_seq), (version + 1, 1));
    let read = |id: &'static str| {
        let store = &store;
        async move { store.read_positions(id).await.unwrap() }
    };
    assert_eq!(read("a").await, [(owner.id.clone(), 1)], "the author has read what they sent");
    // Several messages of one conversation, and a read position that would
    // go backwards (it stays where it was).
    let mut a = change(3, "a-3");
    a.entries.insert(0, message(2, "a-2"));
    a.reads = vec![(owner.id.clone(), 0)];
    let c = change(2, "c-2");
    let outcomes = store.change_conversations(&[("c", version + 1, &c), ("a", version + 1, &a)]).await.unwrap();
    assert_eq!(outcomes, [true, true]);
    assert_eq!(bodies("a").await, ["\"body a-1\"", "\"body a-2\"", "\"body a-3\""]);
    assert_eq!(bodies("c").await, ["\"body c-1\"", "\"body c-2\""]);
    assert_eq!((row("a").await.version, row("a").await.last_seq), (version + 2, 3));
    assert_eq!((row("c").await.version, row("c").await.last_seq), (version + 2, 2));
    assert_eq!(read("a").await, [(owner.id.clone(), 1)], "never backwards");
    assert_eq!(read("c").await, [(owner.id.clone(), 2)]);
    // A change that is more than a message (a new state) goes beside them.
    let mut b = change(2, "b-3");
    b.state_json = Some("{\"renamed\":true}".to_owned());
    let (a, c) = (change(4, "a-4"), change(3, "c-3"));
    let outcomes = store
        .change_conversations(&[("a", version + 2, &a), ("b", version + 1, &b), ("c", version + 2, &c)])
        .await
        .unwrap();
    assert_eq!(outcomes, [true, true, true]);
    assert_eq!(row("b").await.state_json, "{\"renamed\":true}");
    assert_eq!((row("b").await.version, row("a").await.last_seq, row("c").await.last_seq), (version + 2, 4, 3));
}

test_both_engines!(an_erasure_makes_the_segment_holding_it_stale);
/// A segment's bookkeeping where an erasure races it: an entry erased
/// between the mover reading it and recording its segment leaves that
/// segment stale from the start, and erasing an entry whose body is in a
/// segment makes the segment stale in the same transaction. Either way the
/// segment is written again without it (`segments_to_tidy`), so no deleted
/// message stays in the bucket.
async fn an_erasure_makes_the_segment_holding_it_stale(db: TestDatabase) {
    use conclave_store::{ConversationChange, EntryRow, NewConversation, SegmentRow, StorageRow};
    let store = db.store().await;
    let (org, owner) =
        store.create_org_with_new_owner("Acme", Plan::Free, &policy(), &user("o@acme.test", 5)).await.unwrap();
    let bucket = StorageRow {
        id: "bucket-1".into(),
        org_id: org.id.clone(),
        endpoint: Some("http://127.0.0.1:9".into()),
        region: "eu-west-1".into(),
        bucket: "acme".into(),
        access_key_id: "key".into(),
        secret_access_key: "secret".into(),
        created_at_ms: 1,
    };
    let new = NewConversation {
        id: "s".into(),
        org_id: org.id.clone(),
        kind: "group".into(),
        name: Some("s".into()),
        direct_pair: None,
        created_at_ms: 1,
    };
    store
        .create_conversation(&new, &ConversationChange { state_json: Some("{}".into()), ..Default::default() })
        .await
        .unwrap();
    let entry = |seq: i64| EntryRow {
        seq,
        at_ms: 10 + seq,
        author: Some(owner.id.clone()),
        device_id: Some("laptop".into()),
        client_id: Some(format!("m{seq}")),
        thread_seq: None,
        reference_kind: None,
        refers_to: None,
        is_message: true,
        deleted: false,
        body_json: format!("\"body {seq}\""),
        segment_id: None,
    };
    let write = async |change: ConversationChange| {
        let version = store.conversation("s").await.unwrap().unwrap().version;
        assert!(store.change_conversation("s", version, &change).await.unwrap());
    };
    write(ConversationChange { last_seq: 3, entries: (1..=3).map(entry).collect(), ..Default::default() }).await;
    assert!(store.conversations_to_segment(100, 10).await.unwrap().is_empty(), "no bucket, nothing to move");
    store.set_org_storage(&org.id, Some(&bucket), 20).await.unwrap();
    assert!(store.conversations_to_segment(11, 10).await.unwrap().is_empty(), "nothing old enough yet");
    let due = store.conversations_to_segment(100, 10).await.unwrap();
    assert_eq!((due.len(), due[0].through, due[0].storage_id.as_str()), (1, 0, "bucket-1"));

    // The mover has read entries 1 to 3; entry 2 is erased before it records them.
    write(ConversationChange { last_seq: 3, erase: vec![2], ..Default::default() }).await;
    let segment = |id: &str| SegmentRow {
        id: id.into(),
        conversation_id: "s".into(),
        org_id: org.id.clone(),
        storage_id: "bucket-1".into(),
        first_seq: 1,
        last_seq: 3,
        stale: false,
        erasing: false,
        created_at_ms: 30,
    };
    store.record_segment("s", Some(&segment("first")), 3, 3).await.unwrap();
    let first = store.segment("first").await.unwrap().unwrap();
    assert!(first.stale, "it holds entry 2's body");
    assert_eq!(store.entries_in_segment(&first).await.unwrap(), [1, 3]);
    let rows = store.conversation_entries("s", 0, 10, 10).await.unwrap();
    let in_segment: Vec<Option<&str>> = rows.iter().map(EntryRow::in_segment).collect();
    assert_eq!(in_segment, [Some("first"), None, Some("first")], "entry 2 keeps its erased marker");
    assert!(store.conversations_to_segment(100, 10).await.unwrap().is_empty(), "moved through 3");

    // Written again without it: the new segment is current, the old one to delete.
    store.replace_segment(&first, Some(&segment("second")), 2).await.unwrap();
    let tidy: Vec<(String, bool, bool)> =
        store.segments_to_tidy(10).await.unwrap().into_iter().map(|s| (s.id, s.stale, s.erasing)).collect();
    assert_eq!(tidy, [("first".to_owned(), false, true)]);
    store.forget_segment("first").await.unwrap();
    assert!(store.segments_to_tidy(10).await.unwrap().is_empty());

    // Erasing entry 3, whose body is in "second", makes "second" stale at once.
    write(ConversationChange { last_seq: 3, erase: vec![3], ..Default::default() }).await;
    let second = store.segment("second").await.unwrap().unwrap();
    assert!(second.stale && !second.erasing);
    assert_eq!(store.entries_in_segment(&second).await.unwrap(), [1]);
    assert_eq!(store.segments_to_tidy(10).await.unwrap(), [second]);
}
