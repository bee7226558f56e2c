//! TOTP enrolment, second-factor sign-in, replay, recovery codes and an
//! organisation that requires 2FA.

use crate::support::{TestServer, PASSWORD};
use crate::{assert_problem, on_both_engines};
use conclave_auth::Totp;
use conclave_client::{Client, ClientError};
use conclave_proto::*;
use conclave_server::Clock;
use conclave_store::Engine;
use std::time::Duration;

pub(crate) fn code(srv: &TestServer, secret: &str) -> String {
    Totp::from_base32(secret).unwrap().code_at((srv.clock.now_ms() / 1000) as u64)
}

fn login(email: &str, totp: Option<String>, recovery: Option<String>) -> LoginRequest {
    LoginRequest {
        email: email.into(),
        password: PASSWORD.into(),
        totp_code: totp,
        recovery_code: recovery,
        passkey: None,
    }
}

/// Enrols `client` and returns (secret, recovery codes).
pub(crate) async fn enrol(srv: &TestServer, client: &Client) -> (String, Vec<String>) {
    let enrolment = client.totp_enroll().await.unwrap();
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/Conclave:"));
    assert_problem!(client.totp_confirm("000000").await, 401, "invalid-second-factor");
    let codes = client.totp_confirm(&code(srv, &enrolment.secret)).await.unwrap().recovery_codes;
    (enrolment.secret, codes)
}

on_both_engines!(totp_sign_in_refuses_replay_and_recovery_codes_work_once);
async fn totp_sign_in_refuses_replay_and_recovery_codes_work_once(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (owner, _) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let (secret, codes) = enrol(&srv, &owner).await;
    assert_eq!(codes.len(), 10);
    assert!(owner.me().await.unwrap().user.two_factor_enabled);
    assert_problem!(owner.totp_enroll().await, 409, "totp-already-enabled");

    let anon = srv.client();
    assert_problem!(anon.login(&login("owner@acme.test", None, None)).await, 401, "totp-required");
    assert_problem!(
        anon.login(&login("owner@acme.test", Some("123456".into()), None)).await,
        401,
        "invalid-second-factor"
    );
    // The code used to confirm enrolment is already spent.
    assert_problem!(
        anon.login(&login("owner@acme.test", Some(code(&srv, &secret)), None)).await,
        401,
        "invalid-second-factor"
    );
    srv.clock.advance(Duration::from_secs(30));
    let fresh = code(&srv, &secret);
    anon.login(&login("owner@acme.test", Some(fresh.clone()), None)).await.expect("a fresh code signs in");
    let replay = anon.login(&login("owner@acme.test", Some(fresh), None)).await.unwrap_err();
    assert_eq!(replay.code(), Some("invalid-second-factor"));
    let ClientError::Api(problem) = replay else { unreachable!() };
    assert!(problem.detail.unwrap().contains("already used"));

    let recovery = codes[3].to_uppercase();
    anon.login(&login("owner@acme.test", None, Some(recovery.clone()))).await.expect("recovery code signs in");
    assert_problem!(anon.login(&login("owner@acme.test", None, Some(recovery))).await, 401, "invalid-second-factor");
    // Regenerating replaces every code.
    let new_codes = owner.regenerate_recovery_codes(PASSWORD).await.unwrap().recovery_codes;
    assert_problem!(
        anon.login(&login("owner@acme.test", None, Some(codes[4].clone()))).await,
        401,
        "invalid-second-factor"
    );
    anon.login(&login("owner@acme.test", None, Some(new_codes[0].clone()))).await.unwrap();
    assert_eq!(srv.audit_count("auth.2fa.enable", "success").await, 1);
    assert!(srv.audit_count("auth.login", "failure").await >= 5);
}

on_both_engines!(an_org_that_requires_2fa_makes_members_enrol_before_anything_else);
async fn an_org_that_requires_2fa_makes_members_enrol_before_anything_else(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (owner, login_resp) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let org_id = login_resp.user.org_id.clone().unwrap();
    let (_, _) = srv.add_member(&owner, &org_id, "member@acme.test", OrgRole::Member).await;
    let policy = owner
        .update_org_policy(&org_id, &OrgPolicyUpdate { require_2fa: Some(Setting::locked(true)), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(policy.require_2fa, Setting::locked(true));

    // The member signs in, but until enrolled can only enrol.
    let signed_in = srv.client().login(&login("member@acme.test", None, None)).await.unwrap();
    assert!(signed_in.two_factor_enrollment_required);
    let member = srv.client().authenticated(&signed_in.token);
    assert!(member.me().await.unwrap().two_factor_enrollment_required);
    assert_problem!(member.get_org_policy(&org_id).await, 403, "two-factor-enrollment-required");
    assert_problem!(
        member.create_access_token(&CreateAccessTokenRequest { name: "x".into(), expires_in_days: None }).await,
        403,
        "two-factor-enrollment-required"
    );
    let (secret, _) = enrol(&srv, &member).await;
    member.get_org_policy(&org_id).await.expect("enrolled members proceed");
    // 2FA cannot be turned off while the organisation requires it.
    assert_problem!(member.totp_disable(PASSWORD).await, 403, "forbidden");
    // And from now on a code is needed to sign in.
    assert_problem!(srv.client().login(&login("member@acme.test", None, None)).await, 401, "totp-required");
    srv.clock.advance(Duration::from_secs(30));
    srv.client().login(&login("member@acme.test", Some(code(&srv, &secret)), None)).await.unwrap();
    // The owner, enrolled nowhere yet, is held to the same rule.
    assert_problem!(owner.list_members(&org_id).await, 403, "two-factor-enrollment-required");
}

on_both_engines!(two_factor_can_be_turned_off_with_the_password_when_not_required);
async fn two_factor_can_be_turned_off_with_the_password_when_not_required(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (owner, _) = srv.org_with_owner("owner@acme.test", "Acme").await;
    enrol(&srv, &owner).await;
    assert_problem!(owner.totp_disable("not my password at all").await, 401, "invalid-credentials");
    owner.totp_disable(PASSWORD).await.unwrap();
    srv.client().login(&login("owner@acme.test", None, None)).await.expect("password alone again");
    assert_eq!(srv.audit_count("auth.2fa.disable", "success").await, 1);
}

on_both_engines!(totp_seeds_are_sealed_with_a_key_outside_the_database);
async fn totp_seeds_are_sealed_with_a_key_outside_the_database(engine: Engine) {
    use conclave_server::secrets::{self, SecretsError, SecretsKey};
    let srv = TestServer::start(engine).await;
    let (owner, login_resp) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let user_id = login_resp.user.id.clone();
    let (seed, _) = enrol(&srv, &owner).await;

    // What the database holds is no use without the key: not the seed, and
    // not something that opens for anyone else or with another key.
    let stored = srv.state.store.user_by_id(&user_id).await.unwrap().unwrap().totp_secret.unwrap();
    assert!(secrets::is_sealed(&stored), "{stored}");
    assert!(!stored.contains(&seed) && !stored.to_uppercase().contains(&seed));
    assert!(srv.state.secrets.open_totp_seed("someone-else", &stored).is_err());
    assert!(SecretsKey::from_bytes(&[7; 32]).open_totp_seed(&user_id, &stored).is_err());
    let key_file = std::fs::read_to_string(&srv.state.config.secrets_key_file).expect("the key is in its file");
    assert!(key_file.trim().len() >= 43);

    // The first start records a proof of the key; the same key passes again,
    // and a node with another key refuses to start instead of locking
    // everyone with two-factor out.
    secrets::prepare(&srv.state.store, &srv.state.secrets).await.unwrap();
    secrets::prepare(&srv.state.store, &srv.state.secrets).await.unwrap();
    let other = SecretsKey::from_bytes(&[9; 32]);
    assert!(matches!(secrets::prepare(&srv.state.store, &other).await, Err(SecretsError::WrongKey)));

    // A seed an earlier version stored in the clear is sealed at start and
    // still signs in; a pending enrolment is sealed too.
    srv.state.store.enable_totp(&user_id, &seed, 0, &[]).await.unwrap();
    srv.state.store.set_pending_totp(&user_id, "JBSWY3DPEHPK3PXP").await.unwrap();
    assert_eq!(secrets::prepare(&srv.state.store, &srv.state.secrets).await.unwrap(), 1);
    let row = srv.state.store.user_by_id(&user_id).await.unwrap().unwrap();
    assert!(secrets::is_sealed(row.totp_secret.as_deref().unwrap()));
    assert!(secrets::is_sealed(row.totp_pending_secret.as_deref().unwrap()));
    assert_eq!(
        srv.state.secrets.open_totp_seed(&user_id, row.totp_pending_secret.as_deref().unwrap()).unwrap(),
        "JBSWY3DPEHPK3PXP"
    );
    srv.clock.advance(Duration::from_secs(30));
    srv.client()
        .login(&login("owner@acme.test", Some(code(&srv, &seed)), None))
        .await
        .expect("the resealed seed signs in");
    assert_eq!(secrets::prepare(&srv.state.store, &srv.state.secrets).await.unwrap(), 0, "nothing left to seal");

    // A seed whose seal was damaged is an error the server reports, not a
    // way in.
    srv.state.store.enable_totp(&user_id, &format!("{stored}x"), 0, &[]).await.unwrap();
    srv.clock.advance(Duration::from_secs(30));
    assert_problem!(
        srv.client().login(&login("owner@acme.test", Some(code(&srv, &seed)), None)).await,
        500,
        "internal"
    );
}
