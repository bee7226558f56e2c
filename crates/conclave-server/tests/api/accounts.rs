//! Sign-up, invitations, sign-in, sessions, access tokens and passwords.

use crate::support::{TestServer, PASSWORD};
use crate::{assert_problem, on_both_engines};
use conclave_client::ClientError;
use conclave_proto::*;
use conclave_server::Registration;
use conclave_store::Engine;

fn login_req(email: &str, password: &str) -> LoginRequest {
    LoginRequest { email: email.into(), password: password.into(), totp_code: None, recovery_code: None, passkey: None }
}

on_both_engines!(invited_people_sign_up_into_the_org_with_the_invited_role);
async fn invited_people_sign_up_into_the_org_with_the_invited_role(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (owner, login) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let org_id = login.user.org_id.clone().unwrap();
    let invite = owner
        .invite_member(&org_id, &InviteMemberRequest { email: "Ada@Acme.test".into(), role: OrgRole::Admin })
        .await
        .unwrap();
    assert!(invite.invite_url.contains(&invite.invite_token));
    assert_eq!(invite.invitation.email, "ada@acme.test");
    let signup = |email: &str, token: Option<String>| SignupRequest {
        email: email.into(),
        password: PASSWORD.into(),
        display_name: "Ada".into(),
        invite_token: token,
    };
    // The invitation is for one address only.
    assert_problem!(
        srv.client().signup(&signup("eve@acme.test", Some(invite.invite_token.clone()))).await,
        422,
        "validation-failed"
    );
    let ada = srv.client().signup(&signup("ada@acme.test", Some(invite.invite_token.clone()))).await.unwrap();
    assert_eq!((ada.user.org_id.as_deref(), ada.user.role), (Some(org_id.as_str()), Some(OrgRole::Admin)));
    // Single use.
    assert_problem!(
        srv.client().signup(&signup("ada2@acme.test", Some(invite.invite_token.clone()))).await,
        400,
        "invalid-invitation"
    );
    assert_problem!(
        srv.client().signup(&signup("x@acme.test", Some("inv_guess".into()))).await,
        400,
        "invalid-invitation"
    );
    // Without an invitation, an invite-only server refuses.
    assert_problem!(srv.client().signup(&signup("walkin@acme.test", None)).await, 403, "registration-closed");
    // A revoked invitation is dead; an expired one too.
    let revoked = owner
        .invite_member(&org_id, &InviteMemberRequest { email: "r@acme.test".into(), role: OrgRole::Member })
        .await
        .unwrap();
    owner.revoke_invitation(&org_id, &revoked.invitation.id).await.unwrap();
    assert_problem!(
        srv.client().signup(&signup("r@acme.test", Some(revoked.invite_token))).await,
        400,
        "invalid-invitation"
    );
    let expiring = owner
        .invite_member(&org_id, &InviteMemberRequest { email: "late@acme.test".into(), role: OrgRole::Member })
        .await
        .unwrap();
    srv.clock.advance(std::time::Duration::from_secs(8 * 24 * 3600));
    assert_problem!(
        srv.client().signup(&signup("late@acme.test", Some(expiring.invite_token))).await,
        400,
        "invalid-invitation"
    );
    assert_eq!(srv.audit_count("auth.signup", "success").await, 1);
}

on_both_engines!(open_registration_lets_people_create_their_own_org);
async fn open_registration_lets_people_create_their_own_org(engine: Engine) {
    let srv = TestServer::start_with(engine, |c| c.registration = Registration::Open).await;
    let new = srv
        .client()
        .signup(&SignupRequest {
            email: "founder@new.test".into(),
            password: PASSWORD.into(),
            display_name: "Founder".into(),
            invite_token: None,
        })
        .await
        .unwrap();
    assert_eq!(new.user.org_id, None);
    let founder = srv.client().authenticated(&new.token);
    let org = founder.create_org("Newco").await.unwrap();
    assert_eq!(founder.me().await.unwrap().user.role, Some(OrgRole::Owner));
    assert_eq!(founder.get_org(&org.id).await.unwrap().plan, Plan::Free);
    assert_problem!(founder.create_org("Second").await, 409, "already-in-org");
    assert_problem!(founder.create_org("  ").await, 422, "validation-failed");
    // The same email cannot sign up twice.
    assert_problem!(
        srv.client()
            .signup(&SignupRequest {
                email: "FOUNDER@new.test".into(),
                password: PASSWORD.into(),
                display_name: "Again".into(),
                invite_token: None
            })
            .await,
        409,
        "account-exists"
    );
}

on_both_engines!(weak_passwords_are_refused_with_reasons);
async fn weak_passwords_are_refused_with_reasons(engine: Engine) {
    let srv = TestServer::start_with(engine, |c| c.registration = Registration::Open).await;
    for (password, reason) in [
        ("short", "at least"),
        ("password123!", "commonly used"),
        ("qwertyuiop", "commonly used"),
        ("mary.smith-2026", "email address or name"),
        ("zzzzzzzzzzzz", "repeated"),
    ] {
        let err = srv
            .client()
            .signup(&SignupRequest {
                email: "mary.smith@x.test".into(),
                password: password.into(),
                display_name: "Mary".into(),
                invite_token: None,
            })
            .await
            .unwrap_err();
        let ClientError::Api(problem) = err else { panic!("{err}") };
        assert_eq!(problem.code(), "validation-failed");
        assert!(
            problem.errors.iter().any(|e| e.field == "password" && e.message.contains(reason)),
            "{password}: {:?}",
            problem.errors
        );
    }
    assert!(srv.state.store.user_by_email("mary.smith@x.test").await.unwrap().is_none(), "nothing was created");
}

on_both_engines!(sessions_are_listed_revoked_and_logged_out);
async fn sessions_are_listed_revoked_and_logged_out(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (laptop, first) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let (phone, second) = srv.login("owner@acme.test").await;
    let sessions = laptop.list_sessions().await.unwrap().sessions;
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().any(|s| s.id == first.session_id && s.current));
    assert!(sessions.iter().all(|s| s.ip.as_deref() == Some("127.0.0.1")));
    // Revoking the phone's session signs the phone out at once.
    laptop.revoke_session(&second.session_id).await.unwrap();
    assert_problem!(phone.me().await, 401, "unauthenticated");
    assert_problem!(laptop.revoke_session(&second.session_id).await, 404, "not-found");
    // Another account cannot revoke my session.
    let (_, other) = srv.org_with_owner("other@beta.test", "Beta").await;
    let other_client = srv.client().authenticated(&other.token);
    assert_problem!(other_client.revoke_session(&first.session_id).await, 404, "not-found");
    laptop.logout().await.unwrap();
    assert_problem!(laptop.me().await, 401, "unauthenticated");
    // Sessions end by themselves after their lifetime.
    let (later, _) = srv.login("owner@acme.test").await;
    srv.clock.advance(srv.state.config.limits.session_lifetime + std::time::Duration::from_secs(1));
    assert_problem!(later.me().await, 401, "unauthenticated");
    assert!(srv.audit_count("auth.session.revoke", "success").await >= 1);
    assert_eq!(srv.audit_count("auth.logout", "success").await, 1);
}

on_both_engines!(access_tokens_work_as_bearer_and_can_be_revoked);
async fn access_tokens_work_as_bearer_and_can_be_revoked(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (owner, _) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let created = owner
        .create_access_token(&CreateAccessTokenRequest { name: "ci script".into(), expires_in_days: Some(30) })
        .await
        .unwrap();
    assert!(created.token.starts_with("pat_"));
    assert_eq!(created.session.kind, SessionKind::AccessToken);
    let script = srv.client().authenticated(&created.token);
    assert_eq!(script.me().await.unwrap().user.email, "owner@acme.test");
    assert_problem!(
        owner.create_access_token(&CreateAccessTokenRequest { name: "x".into(), expires_in_days: Some(1000) }).await,
        422,
        "validation-failed"
    );
    owner.revoke_session(&created.session.id).await.unwrap();
    assert_problem!(script.me().await, 401, "unauthenticated");
    // A token that was never issued gets the same answer as a revoked one.
    assert_problem!(srv.client().authenticated("pat_made_up").me().await, 401, "unauthenticated");
}

on_both_engines!(changing_the_password_revokes_every_other_session);
async fn changing_the_password_revokes_every_other_session(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (here, _) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let (elsewhere, _) = srv.login("owner@acme.test").await;
    let token =
        here.create_access_token(&CreateAccessTokenRequest { name: "t".into(), expires_in_days: None }).await.unwrap();
    let new_password = "a different long passphrase";
    assert_problem!(
        here.change_password(&ChangePasswordRequest {
            current_password: "wrong wrong wrong".into(),
            new_password: new_password.into()
        })
        .await,
        401,
        "invalid-credentials"
    );
    assert_problem!(
        here.change_password(&ChangePasswordRequest {
            current_password: PASSWORD.into(),
            new_password: "password1".into()
        })
        .await,
        422,
        "validation-failed"
    );
    here.change_password(&ChangePasswordRequest {
        current_password: PASSWORD.into(),
        new_password: new_password.into(),
    })
    .await
    .unwrap();
    here.me().await.expect("the session that changed it stays");
    assert_problem!(elsewhere.me().await, 401, "unauthenticated");
    assert_problem!(srv.client().authenticated(&token.token).me().await, 401, "unauthenticated");
    assert_problem!(srv.client().login(&login_req("owner@acme.test", PASSWORD)).await, 401, "invalid-credentials");
    srv.client().login(&login_req("owner@acme.test", new_password)).await.unwrap();
    assert_eq!(srv.audit_count("auth.password.change", "success").await, 1);
    assert_eq!(srv.audit_count("auth.password.change", "failure").await, 1);
}

on_both_engines!(the_one_time_setup_token_creates_the_first_org_once);
async fn the_one_time_setup_token_creates_the_first_org_once(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let token =
        conclave_server::accounts::issue_setup_token(&srv.state).await.unwrap().expect("a fresh server issues a token");
    let http = reqwest::Client::new();
    let anon = srv.client();
    assert!(anon.setup_status().await.unwrap().setup_required, "a fresh server asks for setup");
    let body = |token: &str| serde_json::json!({"setup_token": token, "org_name": "Acme", "email": "first@acme.test", "password": PASSWORD, "display_name": "First"});
    let wrong = http.post(format!("{}/api/v1/setup", srv.url)).json(&body("setup_guess")).send().await.unwrap();
    assert_eq!(wrong.status(), 403);
    assert!(anon.setup_status().await.unwrap().setup_required, "a refused attempt creates nothing");
    let weak = SetupRequest {
        setup_token: token.as_str().into(),
        org_name: "Acme".into(),
        email: "first@acme.test".into(),
        password: "password1234".into(),
        display_name: "First".into(),
    };
    assert_problem!(anon.bootstrap(&weak).await, 422, "validation-failed");
    let created =
        anon.bootstrap(&SetupRequest { password: PASSWORD.into(), ..weak }).await.expect("the token still works");
    assert_eq!(created.user.role, Some(OrgRole::Owner));
    assert!(!anon.setup_status().await.unwrap().setup_required);
    anon.authenticated(&created.token).me().await.expect("the owner is signed in");
    let again = http.post(format!("{}/api/v1/setup", srv.url)).json(&body(token.as_str())).send().await.unwrap();
    assert_eq!(again.status(), 403, "the token works once");
    assert!(
        conclave_server::accounts::issue_setup_token(&srv.state).await.unwrap().is_none(),
        "no token once an org exists"
    );
    assert_eq!(srv.audit_count("server.bootstrap", "failure").await, 2);
}
