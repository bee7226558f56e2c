//! Bad input, cross-site requests and the surface every response carries.

use crate::on_both_engines;
use crate::support::{TestServer, PASSWORD};
use conclave_proto::*;
use conclave_store::Engine;
use reqwest::header;
use serde_json::{json, Value};

async fn problem_of(resp: reqwest::Response) -> (u16, String, Value) {
    let status = resp.status().as_u16();
    let content_type =
        resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

/// Sends a request, again if the connection broke before the answer came:
/// a server refusing a body it will not read closes the connection with
/// that body unread, and the kernel's reset can then swallow the answer it
/// already sent (a transport race, not the server's answer).
async fn send_until_answered(request: reqwest::RequestBuilder) -> reqwest::Response {
    let mut last = None;
    for _ in 0..5 {
        match request.try_clone().expect("a buffered body clones").send().await {
            Ok(response) => return response,
            Err(err) if err.is_request() => last = Some(err),
            Err(err) => panic!("{err}"),
        }
    }
    panic!("no answer in five tries: {last:?}")
}

on_both_engines!(bad_input_gets_a_clear_problem_and_changes_nothing);
async fn bad_input_gets_a_clear_problem_and_changes_nothing(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (_, login) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let org = login.user.org_id.clone().unwrap();
    let http = reqwest::Client::new();
    let policy_url = format!("{}/api/v1/orgs/{org}/policy", srv.url);
    let before = srv.state.store.org_by_id(&org).await.unwrap().unwrap().1;
    let patch = |body: reqwest::Body, content_type: &'static str| {
        http.patch(&policy_url).bearer_auth(&login.token).header(header::CONTENT_TYPE, content_type).body(body)
    };
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (patch("{\"chat_allowed\": ".into(), "application/json"), 400, "malformed-json"),
        (
            patch("{\"chat_allowed\": {\"value\": \"yes\", \"locked\": false}}".into(), "application/json"),
            422,
            "invalid-body",
        ),
        (
            patch("{\"chat_alowed\": {\"value\": false, \"locked\": false}}".into(), "application/json"),
            422,
            "invalid-body",
        ),
        (patch("{\"chat_allowed\": {\"value\": false}}".into(), "application/json"), 422, "invalid-body"),
        (
            patch("{\"chat_allowed\": {\"value\": false, \"locked\": false}}".into(), "text/plain"),
            415,
            "unsupported-media-type",
        ),
        (patch(vec![b' '; 200 * 1024].into(), "application/json"), 413, "payload-too-large"),
        (patch("[1, 2, 3]".into(), "application/json"), 422, "invalid-body"),
    ];
    for (request, status, code) in cases {
        let (got, content_type, body) = problem_of(send_until_answered(request).await).await;
        assert_eq!(
            (got, body["type"].as_str()),
            (status, Some(format!("https://conclave.dev/problems/{code}").as_str())),
            "{body}"
        );
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["status"], status);
        assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    }
    // The unknown field is named in the detail.
    let (_, _, body) = problem_of(
        patch("{\"chat_alowed\": {\"value\": false, \"locked\": false}}".into(), "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("chat_alowed"), "{body}");
    assert_eq!(srv.state.store.org_by_id(&org).await.unwrap().unwrap().1, before, "no bad request changed the policy");

    let users_before = srv.state.store.list_org_members(&org).await.unwrap().len();
    let signup = http
        .post(format!("{}/api/v1/auth/signup", srv.url))
        .json(&json!({"email": "x@acme.test", "password": 12345, "display_name": "X"}));
    let (status, _, body) = problem_of(signup.send().await.unwrap()).await;
    assert_eq!((status, body["type"].as_str().unwrap().ends_with("invalid-body")), (422, true));
    assert_eq!(srv.state.store.list_org_members(&org).await.unwrap().len(), users_before);
    // Unknown routes and methods are problems too.
    let (status, content_type, _) =
        problem_of(http.get(format!("{}/api/v1/nowhere", srv.url)).send().await.unwrap()).await;
    assert_eq!((status, content_type.as_str()), (404, "application/problem+json"));
    let (status, _, body) = problem_of(http.put(format!("{}/api/v1/auth/login", srv.url)).send().await.unwrap()).await;
    assert_eq!((status, body["type"].as_str()), (405, Some("https://conclave.dev/problems/method-not-allowed")));
}

on_both_engines!(cookie_sessions_need_the_csrf_token_and_same_origin);
async fn cookie_sessions_need_the_csrf_token_and_same_origin(engine: Engine) {
    let srv = TestServer::start(engine).await;
    srv.org_with_owner("owner@acme.test", "Acme").await;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/api/v1/auth/login", srv.url))
        .json(&json!({"email": "owner@acme.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers().get(header::SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(attribute), "cookie lacks {attribute}: {cookie}");
    }
    let login: LoginResponse = resp.json().await.unwrap();
    let session_cookie = cookie.split(';').next().unwrap().to_owned();
    let token_url = format!("{}/api/v1/me/tokens", srv.url);
    let body = json!({"name": "from the browser"});
    let with_cookie = || http.post(&token_url).header(header::COOKIE, &session_cookie).json(&body);

    // Reading with the cookie needs nothing more.
    let me = http.get(format!("{}/api/v1/me", srv.url)).header(header::COOKIE, &session_cookie).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let (status, _, problem) = problem_of(with_cookie().send().await.unwrap()).await;
    assert_eq!((status, problem["type"].as_str()), (403, Some("https://conclave.dev/problems/csrf-failed")));
    let (status, _, _) = problem_of(with_cookie().header("x-csrf-token", "forged").send().await.unwrap()).await;
    assert_eq!(status, 403);
    // Even the right token is refused from another site.
    let (status, _, _) = problem_of(
        with_cookie()
            .header("x-csrf-token", &login.csrf_token)
            .header(header::ORIGIN, "https://evil.example")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    // A cross-site sign-in attempt is refused too.
    let cross = http
        .post(format!("{}/api/v1/auth/login", srv.url))
        .header(header::ORIGIN, "https://evil.example")
        .json(&json!({"email": "owner@acme.test", "password": PASSWORD}));
    assert_eq!(cross.send().await.unwrap().status(), 403);
    let ok =
        with_cookie().header("x-csrf-token", &login.csrf_token).header(header::ORIGIN, &srv.url).send().await.unwrap();
    assert_eq!(ok.status(), 201);
    // A WebSocket carries no CSRF token, and a device's live connection
    // sends messages: one opened from another site is refused.
    let live_url = format!("{}/api/v1/me/devices/no-such-device/live", srv.url);
    let upgrade = |origin: &str| {
        http.get(&live_url)
            .header(header::COOKIE, &session_cookie)
            .header(header::ORIGIN, origin)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
    };
    let (status, _, problem) = problem_of(upgrade("https://evil.example").await.unwrap()).await;
    assert_eq!((status, problem["type"].as_str()), (403, Some("https://conclave.dev/problems/csrf-failed")));
    let (status, _, _) = problem_of(upgrade(&srv.url).await.unwrap()).await;
    assert_eq!(status, 404, "from its own site it goes on (to a device that does not exist)");
    // Bearer tokens are not ambient, so they need no CSRF token.
    let bearer = http.post(&token_url).bearer_auth(&login.token).json(&body).send().await.unwrap();
    assert_eq!(bearer.status(), 201);
    // Nothing refused created a token: two were made, by the two accepted calls.
    let sessions = srv.client().authenticated(&login.token).list_sessions().await.unwrap().sessions;
    assert_eq!(sessions.iter().filter(|s| s.kind == SessionKind::AccessToken).count(), 2);
}

on_both_engines!(ops_endpoints_headers_and_openapi_are_served);
async fn ops_endpoints_headers_and_openapi_are_served(engine: Engine) {
    let srv = TestServer::start_with(engine, |c| c.metrics.token = Some("ops-token-0123456789".into())).await;
    let http = reqwest::Client::new();
    let health = http.get(format!("{}/healthz", srv.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    for (name, value) in
        [("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"), ("referrer-policy", "no-referrer")]
    {
        assert_eq!(health.headers().get(name).unwrap(), value);
    }
    assert!(health
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("default-src 'self'"));
    assert_eq!(http.get(format!("{}/readyz", srv.url)).send().await.unwrap().status(), 200);
    let metrics = http
        .get(format!("{}/metrics", srv.url))
        .bearer_auth("ops-token-0123456789")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("conclave_http_requests_total{class=\"2xx\"}"));
    assert!(metrics.contains("conclave_logins_total{outcome=\"failure\"}"));

    let spec: Value = http.get(format!("{}/api/openapi.json", srv.url)).send().await.unwrap().json().await.unwrap();
    let mut operations = std::collections::HashMap::new();
    for (_, item) in spec["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            operations.insert(op["operationId"].as_str().unwrap().to_owned(), op.clone());
        }
    }
    let schema_fields = |op: &str| -> Vec<String> {
        let reference =
            operations[op]["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str().unwrap().to_owned();
        let name = reference.rsplit('/').next().unwrap();
        spec["components"]["schemas"][name]["properties"].as_object().unwrap().keys().cloned().collect()
    };
    let required = [
        ("signup", &["email", "password", "display_name", "invite_token"][..]),
        ("login", &["email", "password", "totp_code"]),
        ("totpConfirm", &["code"]),
        ("createOrg", &["name"]),
        ("inviteMember", &["email", "role"]),
        ("updateOrgPolicy", &["waiting_room", "require_2fa", "dormant_account_days"]),
    ];
    for (op, fields) in required {
        let present = schema_fields(op);
        for field in fields {
            assert!(present.iter().any(|p| p == field), "{op} lacks {field}: {present:?}");
        }
    }
    let required = [
        ("createMeeting", &["title", "scheduled_start_ms", "passcode", "settings"][..]),
        ("updateMeeting", &["title", "passcode", "settings"]),
        ("joinMeeting", &["link_secret", "code", "passcode", "display_name"]),
        ("reportParticipant", &["participant_token", "participant_id", "reason"]),
    ];
    for (op, fields) in required {
        let present = schema_fields(op);
        for field in fields {
            assert!(present.iter().any(|p| p == field), "{op} lacks {field}: {present:?}");
        }
    }
    for op in ["getMeeting", "listMeetings", "deleteMeeting", "rotateMeetingSecrets", "listReports", "openSignaling"] {
        assert!(operations.contains_key(op), "missing operation {op}");
    }
    for op in ["logout", "me", "totpEnroll", "listSessions", "revokeSession", "getOrgPolicy", "listAuditEvents"] {
        assert!(operations.contains_key(op), "missing operation {op}");
    }
}
