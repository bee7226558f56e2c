//! Organisations: every endpoint against every role and against another
//! organisation's members; member management; policies; the audit log.

use crate::support::{TestServer, PASSWORD};
use crate::{assert_problem, on_both_engines};
use conclave_proto::*;
use conclave_store::Engine;
use reqwest::Method;
use serde_json::{json, Value};

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    min: OrgRole,
}

async fn call(srv: &TestServer, token: &str, case: &Case) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(case.method.clone(), format!("{}/api/v1{}", srv.url, case.path))
        .bearer_auth(token);
    if let Some(body) = &case.body {
        req = req.json(body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

on_both_engines!(every_org_endpoint_refuses_lower_roles_and_other_orgs);
async fn every_org_endpoint_refuses_lower_roles_and_other_orgs(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (owner, owner_login) = srv.org_with_owner("owner@a.test", "A").await;
    let org = owner_login.user.org_id.clone().unwrap();
    let (_, admin) = srv.add_member(&owner, &org, "admin@a.test", OrgRole::Admin).await;
    let (_, member) = srv.add_member(&owner, &org, "member@a.test", OrgRole::Member).await;
    let (_, target) = srv.add_member(&owner, &org, "target@a.test", OrgRole::Member).await;
    let (_, outsider) = srv.org_with_owner("owner@b.test", "B").await;
    let invitation = owner
        .invite_member(&org, &InviteMemberRequest { email: "pending@a.test".into(), role: OrgRole::Member })
        .await
        .unwrap();
    let t = &target.user.id;
    let inv = &invitation.invitation.id;
    let cases = [
        Case { method: Method::GET, path: format!("/orgs/{org}"), body: None, min: OrgRole::Member },
        Case { method: Method::GET, path: format!("/orgs/{org}/policy"), body: None, min: OrgRole::Member },
        Case { method: Method::GET, path: format!("/orgs/{org}/members"), body: None, min: OrgRole::Admin },
        Case { method: Method::GET, path: format!("/orgs/{org}/invitations"), body: None, min: OrgRole::Admin },
        Case { method: Method::GET, path: format!("/orgs/{org}/audit"), body: None, min: OrgRole::Admin },
        Case {
            method: Method::PATCH,
            path: format!("/orgs/{org}/policy"),
            body: Some(json!({"chat_allowed": {"value": false, "locked": true}})),
            min: OrgRole::Admin,
        },
        Case {
            method: Method::POST,
            path: format!("/orgs/{org}/invitations"),
            body: Some(json!({"email": "new@a.test"})),
            min: OrgRole::Admin,
        },
        Case {
            method: Method::PATCH,
            path: format!("/orgs/{org}/members/{t}"),
            body: Some(json!({"role": "admin"})),
            min: OrgRole::Admin,
        },
        Case {
            method: Method::POST,
            path: format!("/orgs/{org}/members/{t}/deactivate"),
            body: None,
            min: OrgRole::Admin,
        },
        Case {
            method: Method::POST,
            path: format!("/orgs/{org}/members/{t}/reactivate"),
            body: None,
            min: OrgRole::Admin,
        },
        Case {
            method: Method::DELETE,
            path: format!("/orgs/{org}/invitations/{inv}"),
            body: None,
            min: OrgRole::Admin,
        },
    ];
    let policy_before = srv.state.store.org_by_id(&org).await.unwrap().unwrap().1;
    let invitations_before = srv.state.store.list_invitations(&org).await.unwrap().len();
    let denied_before = srv
        .state
        .store
        .list_audit_events(None, None, 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.outcome == "denied")
        .count();
    let mut refusals = 0;
    for case in &cases {
        // Another organisation's owner: answered exactly as a made-up id would be.
        let (status, body) = call(&srv, &outsider.token, case).await;
        let made_up = Case {
            path: case.path.replace(&org, "00000000-0000-0000-0000-000000000000"),
            body: case.body.clone(),
            method: case.method.clone(),
            min: case.min,
        };
        let (made_up_status, made_up_body) = call(&srv, &outsider.token, &made_up).await;
        assert_eq!((status, &body), (404, &made_up_body), "{} {} by another org", case.method, case.path);
        assert_eq!(made_up_status, 404);
        refusals += 2;
        if case.min > OrgRole::Member {
            let (status, body) = call(&srv, &member.token, case).await;
            assert_eq!(
                (status, body["type"].as_str()),
                (403, Some("https://conclave.dev/problems/forbidden")),
                "{} {} by a member",
                case.method,
                case.path
            );
            refusals += 1;
        }
    }
    // Nothing the refused calls asked for happened, and each was logged.
    assert_eq!(srv.state.store.org_by_id(&org).await.unwrap().unwrap().1, policy_before);
    assert_eq!(srv.state.store.user_by_id(t).await.unwrap().unwrap().status, AccountStatus::Active);
    assert_eq!(srv.state.store.user_by_id(t).await.unwrap().unwrap().role, Some(OrgRole::Member));
    assert_eq!(
        srv.state.store.list_invitations(&org).await.unwrap().len(),
        invitations_before,
        "no invitation was added"
    );
    let denied_after = srv
        .state
        .store
        .list_audit_events(None, None, 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.outcome == "denied")
        .count();
    assert_eq!(denied_after - denied_before, refusals, "every refusal is in the audit log");
    // The admin may do all of it.
    for case in &cases {
        let (status, body) = call(&srv, &admin.token, case).await;
        assert!((200..300).contains(&status), "{} {} by an admin: {status} {body}", case.method, case.path);
    }
}

on_both_engines!(roles_cannot_be_escalated_and_owners_are_protected);
async fn roles_cannot_be_escalated_and_owners_are_protected(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (owner, owner_login) = srv.org_with_owner("owner@a.test", "A").await;
    let org = owner_login.user.org_id.clone().unwrap();
    let (admin, admin_login) = srv.add_member(&owner, &org, "admin@a.test", OrgRole::Admin).await;
    let (_, member_login) = srv.add_member(&owner, &org, "member@a.test", OrgRole::Member).await;
    let owner_id = owner_login.user.id.clone();
    assert_problem!(
        admin.invite_member(&org, &InviteMemberRequest { email: "boss@a.test".into(), role: OrgRole::Owner }).await,
        403,
        "forbidden"
    );
    assert_problem!(admin.update_member(&org, &member_login.user.id, OrgRole::Owner).await, 403, "forbidden");
    assert_problem!(admin.update_member(&org, &owner_id, OrgRole::Member).await, 403, "forbidden");
    assert_problem!(admin.deactivate_member(&org, &owner_id).await, 403, "forbidden");
    assert_problem!(admin.update_member(&org, &admin_login.user.id, OrgRole::Owner).await, 403, "forbidden");
    assert_problem!(owner.update_member(&org, &owner_id, OrgRole::Member).await, 403, "forbidden");
    assert_problem!(owner.update_member(&org, "no-such-user", OrgRole::Member).await, 404, "not-found");
    assert_problem!(
        admin.invite_member(&org, &InviteMemberRequest { email: "owner@a.test".into(), role: OrgRole::Member }).await,
        409,
        "account-exists"
    );
    assert_problem!(
        admin.invite_member(&org, &InviteMemberRequest { email: "not-an-email".into(), role: OrgRole::Member }).await,
        422,
        "validation-failed"
    );
    let promoted = owner.update_member(&org, &admin_login.user.id, OrgRole::Owner).await.unwrap();
    assert_eq!(promoted.role, Some(OrgRole::Owner));
    assert_eq!(srv.audit_count("org.member.role", "success").await, 1);
}

on_both_engines!(deactivated_members_are_signed_out_and_kept_out);
async fn deactivated_members_are_signed_out_and_kept_out(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (owner, owner_login) = srv.org_with_owner("owner@a.test", "A").await;
    let org = owner_login.user.org_id.clone().unwrap();
    let (member, member_login) = srv.add_member(&owner, &org, "member@a.test", OrgRole::Member).await;
    let user_id = member_login.user.id.clone();
    let done = owner.deactivate_member(&org, &user_id).await.unwrap();
    assert_eq!(done.status, AccountStatus::Deactivated);
    assert_problem!(member.me().await, 401, "unauthenticated");
    let login = LoginRequest {
        email: "member@a.test".into(),
        password: PASSWORD.into(),
        totp_code: None,
        recovery_code: None,
        passkey: None,
    };
    assert_problem!(srv.client().login(&login).await, 403, "account-disabled");
    // A wrong password still says only "wrong credentials".
    assert_problem!(
        srv.client().login(&LoginRequest { password: "wrong wrong wrong".into(), ..login.clone() }).await,
        401,
        "invalid-credentials"
    );
    owner.reactivate_member(&org, &user_id).await.unwrap();
    srv.client().login(&login).await.expect("reactivated");
    let members = owner.list_members(&org).await.unwrap().members;
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(|m| m.status == AccountStatus::Active));
}

on_both_engines!(policies_are_validated_locked_and_served_to_members);
async fn policies_are_validated_locked_and_served_to_members(engine: Engine) {
    let srv = TestServer::start_with(engine, |c| c.regions = vec!["eu-west".into(), "us-east".into()]).await;
    let (owner, owner_login) = srv.org_with_owner("owner@a.test", "A").await;
    let org = owner_login.user.org_id.clone().unwrap();
    let (member, _) = srv.add_member(&owner, &org, "member@a.test", OrgRole::Member).await;
    let defaults = member.get_org_policy(&org).await.unwrap();
    assert_eq!(defaults.waiting_room, Setting::locked(true), "waiting room on and locked by default");
    assert_eq!(defaults.meeting_time_limit_minutes.value, Some(40), "free plan: 40 minutes");
    assert_eq!(defaults.allowed_regions.value, ["eu-west", "us-east"]);
    let update = OrgPolicyUpdate {
        passcode_required: Some(Setting::locked(true)),
        e2ee: Some(Setting::locked(E2eeMode::Enforced)),
        allowed_regions: Some(Setting::locked(vec!["eu-west".into()])),
        meeting_time_limit_minutes: Some(Setting::unlocked(Some(30))),
        dormant_account_days: Some(Setting::unlocked(None)),
        ..Default::default()
    };
    let after = owner.update_org_policy(&org, &update).await.unwrap();
    assert_eq!(after.e2ee, Setting::locked(E2eeMode::Enforced));
    assert_eq!(member.get_org_policy(&org).await.unwrap(), after, "members see the stored policy");
    // Invalid changes are refused whole, with every reason, and change nothing.
    let bad = OrgPolicyUpdate {
        chat_allowed: Some(Setting::unlocked(false)),
        allowed_regions: Some(Setting::unlocked(vec!["moon".into()])),
        meeting_time_limit_minutes: Some(Setting::unlocked(None)),
        ..Default::default()
    };
    let err = owner.update_org_policy(&org, &bad).await.unwrap_err();
    let conclave_client::ClientError::Api(problem) = err else { panic!("{err}") };
    let fields: Vec<_> = problem.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["allowed_regions", "meeting_time_limit_minutes"]);
    assert_eq!(owner.get_org_policy(&org).await.unwrap(), after);
    let events = owner.list_audit_events(&org, None, None).await.unwrap().events;
    assert!(events
        .iter()
        .any(|e| e.action == "org.policy.update" && e.outcome == "success" && e.detail.contains("eu-west")));
}

on_both_engines!(the_audit_log_pages_and_stays_within_the_org);
async fn the_audit_log_pages_and_stays_within_the_org(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (owner_a, a) = srv.org_with_owner("owner@a.test", "A").await;
    let (owner_b, b) = srv.org_with_owner("owner@b.test", "B").await;
    let org_a = a.user.org_id.unwrap();
    let org_b = b.user.org_id.unwrap();
    for i in 0..7 {
        owner_a
            .invite_member(&org_a, &InviteMemberRequest { email: format!("p{i}@a.test"), role: OrgRole::Member })
            .await
            .unwrap();
    }
    owner_b
        .invite_member(&org_b, &InviteMemberRequest { email: "q@b.test".into(), role: OrgRole::Member })
        .await
        .unwrap();
    let first = owner_a.list_audit_events(&org_a, None, Some(5)).await.unwrap();
    assert_eq!(first.events.len(), 5);
    let second = owner_a.list_audit_events(&org_a, first.next_before, Some(5)).await.unwrap();
    let all: Vec<_> = first.events.iter().chain(&second.events).collect();
    assert!(all.iter().all(|e| e.org_id.as_deref() == Some(org_a.as_str())));
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq));
    assert_eq!(all.iter().filter(|e| e.action == "org.invite").count(), 7);
    assert_problem!(owner_a.list_audit_events(&org_a, None, Some(0)).await, 422, "validation-failed");
    assert_problem!(owner_a.list_audit_events(&org_b, None, None).await, 404, "not-found");
}
