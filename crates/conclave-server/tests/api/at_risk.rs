//! The at-risk meeting notifier against sources served on loopback: a
//! feed with a live meeting's link warns its owner by email within one
//! polling interval, the email's link rotates the meeting's secrets once,
//! the old link stops working; unrelated posts, hostile documents and
//! sources that have not changed raise nothing.

use crate::email::{token_after, SmtpServer};
use crate::meetings::{host_joins, new_meeting, WAIT};
use crate::support::TestServer;
use crate::{assert_problem, on_both_engines};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use conclave_proto::*;
use conclave_store::Engine;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the sources' server saw: each request's `If-None-Match`.
#[derive(Default)]
struct Seen {
    validators: Mutex<Vec<Option<String>>>,
}

/// Public sources on loopback: an RSS feed with the meeting's link (served
/// with an ETag), a Mastodon timeline with nothing of this server's, a
/// document too big to read and one full of entity declarations.
async fn sources(invite_url: String, other_org_url: String) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let feed = move |State(seen): State<Arc<Seen>>, headers: HeaderMap| {
        let invite_url = invite_url.clone();
        let other_org_url = other_org_url.clone();
        async move {
            let validator = headers.get("if-none-match").and_then(|v| v.to_str().ok()).map(str::to_owned);
            seen.validators.lock().unwrap().push(validator.clone());
            if validator.as_deref() == Some("\"v1\"") {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            let body = format!(
                r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Town news</title>
                <item><title>Come to our party!</title><link>https://blog.example/p/1</link>
                <description>&lt;p&gt;Everyone welcome: &lt;a href="{invite_url}"&gt;join here&lt;/a&gt;&lt;/p&gt;</description></item>
                <item><title>Something else</title><link>https://blog.example/p/2</link><description>nothing here</description></item>
                <item><title>Their call</title><link>https://blog.example/p/3</link><description>{other_org_url}</description></item>
                </channel></rss>"#
            );
            ([("etag", "\"v1\""), ("content-type", "application/rss+xml")], body).into_response()
        }
    };
    let timeline = || async {
        axum::Json(serde_json::json!([
            {"url": "https://social.example/@a/1", "visibility": "public",
             "content": "<p>my call: <a href=\"https://other.example/j/abcdefghijklmnopqrstuvwxyz012345\">x</a>, code 999 999 9999</p>"}
        ]))
    };
    let huge = || async { vec![b'<'; conclave_feeds::MAX_FEED_BYTES + 10] };
    let laughs = || async {
        r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
        <rss><channel><item><title>&lol2;&lol2;&lol2;</title></item></channel></rss>"#
    };
    let app = axum::Router::new()
        .route("/feed.xml", get(feed))
        .route("/api/v1/timelines/tag/meetings", get(timeline))
        .route("/huge", get(huge))
        .route("/laughs.xml", get(laughs))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

async fn a_meeting_posted_in_public_is_told_to_its_owner_who_rotates_it_once(engine: Engine) {
    let smtp = SmtpServer::start();
    let config = smtp.config();
    let srv = TestServer::start_with(engine, |c| {
        c.smtp = Some(config);
        c.watch_every = Some(Duration::from_millis(100));
        c.allow_local_outbound = true;
    })
    .await;
    let (owner, login) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let org = login.user.org_id.unwrap();
    // A live meeting with its waiting room off (so it has a passcode), as
    // the organisation lets its hosts choose.
    let open = OrgPolicyUpdate { waiting_room: Some(Setting { value: true, locked: false }), ..Default::default() };
    owner.update_org_policy(&org, &open).await.unwrap();
    let meeting = owner
        .create_meeting(&CreateMeetingRequest {
            settings: MeetingSettingsRequest { waiting_room: Some(false), ..Default::default() },
            ..new_meeting("Town hall")
        })
        .await
        .unwrap();
    let (_host, _) = host_joins(&owner, &meeting).await;

    // Another organisation's meeting, posted too: not this organisation's
    // to report, so its owner is not written to by a source Acme lists.
    let (other, _) = srv.org_with_owner("boss@other.test", "Other").await;
    let theirs = other.create_meeting(&new_meeting("Their stand-up")).await.unwrap();
    let (base, seen) = sources(meeting.invite_url.clone(), theirs.invite_url.clone()).await;
    let watch = |url: String| AddWatchSourceRequest { url };
    assert_problem!(
        owner.add_watch_source(&org, &watch("ftp://files.example/x".into())).await,
        422,
        "validation-failed"
    );
    for path in ["/feed.xml", "/api/v1/timelines/tag/meetings", "/huge", "/laughs.xml"] {
        owner.add_watch_source(&org, &watch(format!("{base}{path}"))).await.unwrap();
    }
    assert_problem!(owner.add_watch_source(&org, &watch(format!("{base}/feed.xml"))).await, 409, "conflict");

    // Within a polling interval, the owner is told, with a link.
    let warning = smtp.message_to("owner@acme.test", "was posted in public").await;
    assert!(warning.contains("https://blog.example/p/1"), "{warning}");
    assert!(warning.contains("waiting room is off") && warning.contains("live now"), "{warning}");
    let token = token_after(&warning, "/rotate#");
    assert!(token.starts_with("risk_"), "{token}");
    let warnings = owner.risk_warnings().await.unwrap().warnings;
    assert_eq!(warnings.len(), 1, "the unrelated post and the other sources raise nothing: {warnings:?}");
    assert!(other.risk_warnings().await.unwrap().warnings.is_empty(), "nothing about another organisation's meeting");
    assert_eq!((warnings[0].meeting_id.as_str(), warnings[0].resolved), (meeting.id.as_str(), false));
    assert_eq!(srv.audit_count("meeting.at_risk", "success").await, 1);
    // The sources that could not be read say why, and are tried again later.
    // They were added one by one, so the warning may come from a look that
    // began before the last of them was listed: wait for each one's first look.
    let deadline = tokio::time::Instant::now() + WAIT;
    let sources = loop {
        let sources = owner.watch_sources(&org).await.unwrap().sources;
        if sources.iter().all(|s| s.last_polled_at_ms.is_some()) {
            break sources;
        }
        assert!(tokio::time::Instant::now() < deadline, "a source was never looked at: {sources:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let huge = sources.iter().find(|s| s.url.ends_with("/huge")).unwrap();
    assert!(huge.last_error.as_deref().is_some_and(|e| e.contains("more than")), "{huge:?}");
    assert!(sources.iter().find(|s| s.url.ends_with("/laughs.xml")).unwrap().last_error.is_none());

    // The link rotates the meeting's secrets, once; the posted link is dead.
    let rotated = srv.client().rotate_from_warning(&token).await.unwrap();
    assert_eq!(rotated.meeting_id, meeting.id);
    assert_problem!(srv.client().rotate_from_warning(&token).await, 400, "invalid-invitation");
    let posted = JoinMeetingRequest {
        link_secret: Some(meeting.link_secret.clone()),
        code: None,
        passcode: None,
        display_name: "Troll".into(),
    };
    assert_problem!(srv.client().join_meeting(&posted).await, 404, "meeting-not-found");
    assert!(owner.risk_warnings().await.unwrap().warnings[0].resolved);

    // Looked at again, politely: the feed's ETag comes back, nothing changed,
    // nobody is told twice.
    srv.clock.advance(Duration::from_secs(1));
    let deadline = tokio::time::Instant::now() + WAIT;
    while !seen.validators.lock().unwrap().iter().any(|v| v.as_deref() == Some("\"v1\"")) {
        assert!(tokio::time::Instant::now() < deadline, "the feed was not asked again with its ETag");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let told = smtp.messages().iter().filter(|m| m.contains("was posted in public")).count();
    assert_eq!(told, 1);
}

on_both_engines!(a_meeting_posted_in_public_is_told_to_its_owner_who_rotates_it_once);
