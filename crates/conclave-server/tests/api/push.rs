//! Web Push through the real server, to a push service on loopback that
//! checks what a real one checks: a device that is not connected is woken
//! with a push that carries nothing, signed with the server's VAPID key; a
//! connected device is not pushed; an expired subscription is dropped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use data_encoding::BASE64URL_NOPAD;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

use crate::conversations::{all_in_group, group_request, team_on, WAIT};
use crate::support::{TestServer, START_MS};
use crate::{assert_problem, on_both_engines};
use conclave_store::Engine;

/// What the push service received: each push's subscription (the last
/// part of its path), headers and body.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Push>>>);

type Push = (String, HeaderMap, Vec<u8>);

/// A push service on loopback; `gone` makes it answer 410 (the browser
/// unsubscribed). Returns its origin.
async fn push_service(received: Received, gone: Arc<Mutex<bool>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/push/{id}",
        axum::routing::post(
            move |axum::extract::Path(id): axum::extract::Path<String>, headers: HeaderMap, body: axum::body::Bytes| {
                let received = received.clone();
                let gone = gone.clone();
                async move {
                    // The answer is decided before the push is counted, so a
                    // test that saw the push knows which answer it got.
                    let status = if *gone.lock().unwrap() { StatusCode::GONE } else { StatusCode::CREATED };
                    received.0.lock().unwrap().push((id, headers, body.to_vec()));
                    status
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    origin
}

/// Checks a push as a push service does (RFC 8292): the VAPID token is
/// signed by the key the server publishes, for this service, not expired.
fn check_vapid(headers: &HeaderMap, public_key: &str, audience: &str) {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).expect("Authorization");
    let rest = authorization.strip_prefix("vapid ").expect("the vapid scheme");
    let (mut token, mut key) = (None, None);
    for part in rest.split(", ") {
        match part.split_once('=') {
            Some(("t", t)) => token = Some(t),
            Some(("k", k)) => key = Some(k),
            _ => {}
        }
    }
    assert_eq!(key, Some(public_key), "the key the server publishes");
    let token = token.expect("a token");
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let public = BASE64URL_NOPAD.decode(public_key.as_bytes()).unwrap();
    let signature = BASE64URL_NOPAD.decode(signature.as_bytes()).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
        .verify(signing_input.as_bytes(), &signature)
        .expect("signed by the server's VAPID key");
    let claims = signing_input.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(claims.as_bytes()).unwrap()).unwrap();
    assert_eq!(claims["aud"], audience);
    let exp = claims["exp"].as_i64().unwrap();
    assert!(exp > START_MS / 1000 && exp <= START_MS / 1000 + 24 * 3600, "expires within a day: {exp}");
    assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
}

async fn pushes(received: &Received, at_least: usize) -> Vec<Push> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = received.0.lock().unwrap().clone();
        if got.len() >= at_least {
            return got;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} pushes, not {at_least}", got.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_device_that_is_not_connected_is_woken_by_an_empty_push(engine: Engine) {
    let srv = TestServer::start_with(engine, |c| c.allow_local_outbound = true).await;
    let mut t = team_on(srv).await;
    let group = t.ada.create_conversation(&group_request("Wake", &[&t.grace_id])).await.unwrap();
    all_in_group(&mut t.devices, &group.id).await;
    let (received, gone) = (Received::default(), Arc::new(Mutex::new(false)));
    let origin = push_service(received.clone(), gone.clone()).await;
    let key = t.grace.push_key().await.unwrap().public_key;
    assert_eq!(key, t.ada.push_key().await.unwrap().public_key, "one key for the server");

    // Only a device's owner subscribes it, and only to a usable endpoint.
    let (laptop, phone) = (t.devices[2].device_id.clone(), t.devices[3].device_id.clone());
    assert_problem!(t.ada.subscribe_push(&phone, &format!("{origin}/push/x")).await, 404, "not-found");
    assert_problem!(t.grace.subscribe_push(&phone, "ftp://example.com/x").await, 422, "validation-failed");
    t.grace.subscribe_push(&phone, &format!("{origin}/push/phone")).await.unwrap();
    t.grace.subscribe_push(&laptop, &format!("{origin}/push/laptop")).await.unwrap();
    // The laptop is connected (its live WebSocket open); the phone is not.
    let _live = t.grace.device_live(&laptop).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    t.devices[0].send_text(&group.id, "the figures are in", None).await.unwrap();
    let got = pushes(&received, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_all = received.0.lock().unwrap().clone();
    assert_eq!(got_all.len(), got.len(), "one push");
    let (woken, headers, body) = &got[0];
    assert_eq!(woken, "phone", "the connected laptop is not pushed");
    assert!(body.is_empty(), "a push carries nothing");
    assert_eq!(headers.get("ttl").and_then(|v| v.to_str().ok()), Some("86400"));
    check_vapid(headers, &key, &origin);

    // A subscription the push service says is gone is dropped: no more pushes to it.
    *gone.lock().unwrap() = true;
    t.srv.clock.advance(Duration::from_secs(60));
    t.devices[0].send_text(&group.id, "second", None).await.unwrap();
    pushes(&received, 2).await;
    // The server reads the 410 and drops the subscription after the push
    // service counted it: give it that moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    *gone.lock().unwrap() = false;
    t.srv.clock.advance(Duration::from_secs(60));
    t.devices[0].send_text(&group.id, "third", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(received.0.lock().unwrap().len(), 2, "the dropped subscription is not pushed again");

    // Unsubscribed, the laptop is not pushed either once it disconnects.
    t.grace.unsubscribe_push(&laptop).await.unwrap();
    drop(_live);
    tokio::time::sleep(Duration::from_millis(200)).await;
    t.srv.clock.advance(Duration::from_secs(60));
    t.devices[0].send_text(&group.id, "fourth", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(received.0.lock().unwrap().len(), 2);
}

on_both_engines!(a_device_that_is_not_connected_is_woken_by_an_empty_push);
