//! A credential-stuffing run: hundreds of breached passwords tried against
//! real and made-up emails from many source addresses. Nothing gets in,
//! lockouts engage, and nothing an attacker sees (status, body, or the work
//! the server does) tells real emails from made-up ones.

use crate::on_both_engines;
use crate::support::{TestServer, PASSWORD};
use conclave_client::ClientError;
use conclave_proto::*;
use conclave_store::Engine;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

const REAL: usize = 10;
const MADE_UP: usize = 10;
const SOURCES: usize = 40;
const ATTEMPTS: usize = 400;

fn attempt(email: &str, i: usize) -> LoginRequest {
    LoginRequest {
        email: email.into(),
        password: format!("breached password {i}"),
        totp_code: None,
        recovery_code: None,
        passkey: None,
    }
}

/// What an attacker observes of one attempt.
fn observe(result: Result<LoginResponse, ClientError>) -> Problem {
    match result {
        Ok(_) => panic!("a stuffed credential got in"),
        Err(ClientError::Api(problem)) => problem,
        Err(other) => panic!("unexpected failure: {other}"),
    }
}

on_both_engines!(stuffing_gets_nowhere_and_reveals_nothing);
async fn stuffing_gets_nowhere_and_reveals_nothing(engine: Engine) {
    let srv = TestServer::start_with(engine, |c| {
        c.limits.account_free_failures = 5;
        c.limits.ip_free_failures = 20;
    })
    .await;
    let (owner, login) = srv.org_with_owner("user0@acme.test", "Acme").await;
    let org_id = login.user.org_id.unwrap();
    for n in 1..REAL {
        srv.add_member(&owner, &org_id, &format!("user{n}@acme.test"), OrgRole::Member).await;
    }
    let emails: Vec<(String, bool)> = (0..REAL)
        .map(|n| (format!("user{n}@acme.test"), true))
        .chain((0..MADE_UP).map(|n| (format!("ghost{n}@acme.test"), false)))
        .collect();
    let clients: Vec<_> = (1..=SOURCES).map(|n| srv.client_from(&format!("127.0.1.{n}"))).collect();
    let verifications_before = srv.state.metrics.password_verifications.load(Ordering::SeqCst);
    let failures_before = srv.audit_count("auth.login", "failure").await;

    let mut seen: BTreeMap<String, Vec<Problem>> = BTreeMap::new();
    for i in 0..ATTEMPTS {
        let (email, _) = &emails[i % emails.len()];
        let problem = observe(clients[i % SOURCES].login(&attempt(email, i)).await);
        seen.entry(email.clone()).or_default().push(problem);
    }

    // Only "wrong credentials" or "locked out", never anything else.
    let all: Vec<&Problem> = seen.values().flatten().collect();
    assert!(all.iter().all(|p| matches!(p.code(), "invalid-credentials" | "too-many-requests")));
    let locked = all.iter().filter(|p| p.code() == "too-many-requests").count();
    assert!(locked >= ATTEMPTS / 2, "lockouts engaged for every email: {locked} of {ATTEMPTS}");
    // Every email, real or not, saw exactly the same sequence of answers.
    let reference = &seen[&emails[0].0];
    for (email, answers) in &seen {
        assert_eq!(answers, reference, "{email} was answered differently");
    }
    // And cost the server the same work: one Argon2id verification per
    // attempt that was not locked out, whether or not the account exists.
    let verifications = srv.state.metrics.password_verifications.load(Ordering::SeqCst) - verifications_before;
    let answered = all.iter().filter(|p| p.code() == "invalid-credentials").count() as u64;
    assert_eq!(verifications, answered);
    // Every failure is in the audit log.
    assert_eq!(srv.audit_count("auth.login", "failure").await - failures_before, ATTEMPTS);

    // A spray from one address across fresh emails locks that address.
    let sprayer = srv.client_from("127.0.2.1");
    let spray: Vec<Problem> = {
        let mut out = Vec::new();
        for i in 0..30 {
            out.push(observe(sprayer.login(&attempt(&format!("spray{i}@acme.test"), i)).await));
        }
        out
    };
    assert!(spray[..20].iter().all(|p| p.code() == "invalid-credentials"));
    assert!(spray[20..].iter().all(|p| p.code() == "too-many-requests" && p.retry_after.is_some()));
    // Other addresses are not affected by that lock.
    let bystander = observe(srv.client_from("127.0.2.2").login(&attempt("spray99@acme.test", 0)).await);
    assert_eq!(bystander.code(), "invalid-credentials");

    // The lockout ends; the real owner gets in with the real password.
    srv.clock.advance(Duration::from_secs(2 * 3600));
    srv.client_from("127.0.3.1")
        .login(&LoginRequest {
            email: "user3@acme.test".into(),
            password: PASSWORD.into(),
            totp_code: None,
            recovery_code: None,
            passkey: None,
        })
        .await
        .expect("the rightful user signs in once the lockout has passed");
}

on_both_engines!(a_locked_account_stays_locked_even_with_the_right_password);
async fn a_locked_account_stays_locked_even_with_the_right_password(engine: Engine) {
    let srv = TestServer::start_with(engine, |c| c.limits.account_free_failures = 3).await;
    srv.org_with_owner("owner@acme.test", "Acme").await;
    for i in 0..3 {
        let p = observe(srv.client_from(&format!("127.0.4.{}", i + 1)).login(&attempt("owner@acme.test", i)).await);
        assert_eq!(p.code(), "invalid-credentials");
    }
    let right = LoginRequest {
        email: "owner@acme.test".into(),
        password: PASSWORD.into(),
        totp_code: None,
        recovery_code: None,
        passkey: None,
    };
    let p = observe(srv.client_from("127.0.4.9").login(&right).await);
    assert_eq!((p.status, p.code()), (429, "too-many-requests"));
    assert_eq!(p.retry_after, Some(60));
    srv.clock.advance(Duration::from_secs(61));
    srv.client_from("127.0.4.9").login(&right).await.expect("after the lockout");
}
