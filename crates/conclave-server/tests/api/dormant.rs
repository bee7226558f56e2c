//! Accounts unused past the organisation's cutoff are disabled, at sign-in
//! and by the periodic sweep, and stay so until an admin reactivates them.

use crate::support::{TestServer, PASSWORD};
use crate::{assert_problem, on_both_engines};
use conclave_proto::*;
use conclave_store::Engine;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 3600);

on_both_engines!(dormant_accounts_are_disabled_until_reactivated);
async fn dormant_accounts_are_disabled_until_reactivated(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (owner, owner_login) = srv.org_with_owner("owner@a.test", "A").await;
    let org = owner_login.user.org_id.clone().unwrap();
    let (_, sleeper) = srv.add_member(&owner, &org, "sleeper@a.test", OrgRole::Member).await;
    let (stolen_member, _) = srv.add_member(&owner, &org, "stolen@a.test", OrgRole::Member).await;
    let token = stolen_member
        .create_access_token(&CreateAccessTokenRequest { name: "laptop".into(), expires_in_days: Some(90) })
        .await
        .unwrap();
    let stolen = srv.client().authenticated(&token.token);
    owner
        .update_org_policy(
            &org,
            &OrgPolicyUpdate { dormant_account_days: Some(Setting::locked(Some(30))), ..Default::default() },
        )
        .await
        .unwrap();

    // The owner stays active (signing in now and then, as sessions
    // last two weeks); the others go unused for a month.
    let mut owner = owner;
    for day in 1..=31 {
        srv.clock.advance(DAY);
        if day % 10 == 0 {
            owner = srv.login("owner@a.test").await.0;
        }
        owner.me().await.unwrap();
    }
    let login = |email: &str| LoginRequest {
        email: email.into(),
        password: PASSWORD.into(),
        totp_code: None,
        recovery_code: None,
        passkey: None,
    };
    // Signing in with the right password no longer works...
    assert_problem!(srv.client().login(&login("sleeper@a.test")).await, 403, "account-disabled");
    // ...nor does a long-lived token someone kept (or bought) from before.
    assert_problem!(stolen.me().await, 403, "account-disabled");
    let members = owner.list_members(&org).await.unwrap().members;
    let status = |email: &str| members.iter().find(|m| m.email == email).unwrap().status;
    assert_eq!(status("sleeper@a.test"), AccountStatus::Dormant);
    assert_eq!(status("stolen@a.test"), AccountStatus::Dormant);
    assert_eq!(status("owner@a.test"), AccountStatus::Active);
    assert_eq!(srv.audit_count("account.dormant", "success").await, 2);

    owner.reactivate_member(&org, &sleeper.user.id).await.unwrap();
    srv.client().login(&login("sleeper@a.test")).await.expect("reactivated accounts sign in");
}

on_both_engines!(the_sweep_disables_unused_accounts_without_waiting_for_a_sign_in);
async fn the_sweep_disables_unused_accounts_without_waiting_for_a_sign_in(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (owner, owner_login) = srv.org_with_owner("owner@a.test", "A").await;
    let org = owner_login.user.org_id.clone().unwrap();
    srv.add_member(&owner, &org, "idle@a.test", OrgRole::Member).await;
    owner
        .update_org_policy(
            &org,
            &OrgPolicyUpdate { dormant_account_days: Some(Setting::unlocked(Some(7))), ..Default::default() },
        )
        .await
        .unwrap();
    srv.clock.advance(6 * DAY);
    assert_eq!(conclave_server::accounts::sweep_dormant_accounts(&srv.state).await.unwrap(), 0);
    srv.clock.advance(2 * DAY);
    // Both are past the cutoff now; the sweep catches them.
    assert_eq!(conclave_server::accounts::sweep_dormant_accounts(&srv.state).await.unwrap(), 2);
    let idle = srv.state.store.user_by_email("idle@a.test").await.unwrap().unwrap();
    assert_eq!(idle.status, AccountStatus::Dormant);
    // An organisation that turns the cutoff off keeps its accounts.
    let (other, other_login) = srv.org_with_owner("owner@b.test", "B").await;
    let org_b = other_login.user.org_id.unwrap();
    other
        .update_org_policy(
            &org_b,
            &OrgPolicyUpdate { dormant_account_days: Some(Setting::unlocked(None)), ..Default::default() },
        )
        .await
        .unwrap();
    srv.clock.advance(400 * DAY);
    assert_eq!(conclave_server::accounts::sweep_dormant_accounts(&srv.state).await.unwrap(), 0);
}
