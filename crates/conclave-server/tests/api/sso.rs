//! Signing in through an organisation's OpenID provider, against a real
//! provider on loopback (npm's `oidc-provider`, `tests/oidc/provider.mjs`):
//! the first sign-in makes the account in the provider's organisation; a
//! stranger's domain, an address the provider has not verified, and ID
//! tokens with a wrong audience, nonce, issuer, signature or an expired
//! time are refused; a rotated signing key is followed; an answer carried
//! to another browser or used twice signs nobody in; and "provider only"
//! turns members' passwords off.

use crate::support::{TestServer, PASSWORD};
use crate::{assert_problem, on_both_engines};
use conclave_proto::*;
use conclave_store::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// Where provider `id` sends people back, below the server's URL.
fn callback(server: &str, id: &str) -> String {
    format!("{server}/api/v1/auth/oidc/{id}/callback")
}

/// The provider, a Node process; it exits when this is dropped (its stdin closes).
pub(crate) struct OidcProvider {
    child: Child,
    pub(crate) issuer: String,
    http: reqwest::Client,
}

/// `npm install` once per test process, when the provider's packages are missing.
fn ensure_packages(dir: &std::path::Path) {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap();
    if *installed || dir.join("node_modules/oidc-provider").exists() {
        *installed = true;
        return;
    }
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent"])
        .current_dir(dir)
        .status()
        .expect("npm runs (Node.js is needed for the OpenID provider the tests sign in with)");
    assert!(status.success(), "npm install in {} failed", dir.display());
    *installed = true;
}

impl OidcProvider {
    pub(crate) fn start() -> Self {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        ensure_packages(&dir);
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs the OpenID provider");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the provider says where it is");
        let ready: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("the provider did not start: {line:?}"));
        let issuer = ready["issuer"].as_str().unwrap().to_owned();
        Self { child, issuer, http: reqwest::Client::new() }
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let response = self.http.post(format!("{}/__test/{path}", self.issuer)).json(&body).send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }

    /// Someone the provider knows (verified address unless said otherwise).
    pub(crate) async fn person(&self, email: &str, name: &str, verified: bool, groups: &[&str]) {
        let body = json!({"email": email, "name": name, "email_verified": verified, "groups": groups});
        self.control("accounts", body).await;
    }

    pub(crate) async fn tamper(&self, mode: &str) {
        self.control("tamper", json!({"mode": mode})).await;
    }

    async fn rotate(&self) -> String {
        self.control("rotate", json!({})).await["kid"].as_str().unwrap().to_owned()
    }

    /// Registers Conclave as a client (dynamic registration), sending
    /// people back to `server`'s callback for provider `id`.
    pub(crate) async fn register_client(&self, server: &str, id: &str) -> (String, String) {
        let body = json!({
            "redirect_uris": [callback(server, id)],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
        });
        let reply: Value =
            self.http.post(format!("{}/reg", self.issuer)).json(&body).send().await.unwrap().json().await.unwrap();
        (reply["client_id"].as_str().unwrap().to_owned(), reply["client_secret"].as_str().unwrap().to_owned())
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser, as far as a sign-in needs one: it follows redirects by hand
/// and keeps cookies per host (the provider's and the server's share one
/// host, which only means each gets the other's cookies too).
pub(crate) struct Browser {
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
}

impl Browser {
    pub(crate) fn new() -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, cookies: Vec::new() }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }

    /// One GET: its status and where it redirects.
    async fn get(&mut self, url: &str) -> (u16, Option<String>) {
        let header = self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
        let response = self.http.get(url).header("cookie", header).send().await.unwrap();
        self.keep_cookies(&response);
        let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
        let status = response.status().as_u16();
        let location = location.map(|l| if l.starts_with('/') { format!("{}{l}", origin(url)) } else { l });
        (status, location)
    }

    /// What the app's page does to start: a POST, then the browser goes
    /// where the answer says.
    async fn start(&mut self, srv: &TestServer, provider_id: &str, email: &str) -> String {
        let url = format!("{}/api/v1/auth/oidc/{provider_id}/start", srv.url);
        let response = self.http.post(&url).json(&json!({"login_hint": email})).send().await.unwrap();
        assert_eq!(response.status(), 200, "the sign-in starts");
        self.keep_cookies(&response);
        let started: ProviderSignInStart = response.json().await.unwrap();
        started.url
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            let expired = set.to_str().unwrap().to_ascii_lowercase().contains("max-age=0") || value.is_empty();
            if !expired {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    /// Starts a sign-in and follows redirects until one leads back to the
    /// server; returns that URL (not visited).
    pub(crate) async fn to_callback(&mut self, srv: &TestServer, provider_id: &str, email: &str) -> String {
        let mut next = self.start(srv, provider_id, email).await;
        for _ in 0..10 {
            let (status, location) = self.get(&next).await;
            let location = location.unwrap_or_else(|| panic!("{next} answered {status} without a redirect"));
            if location.starts_with(&srv.url) {
                return location;
            }
            next = location;
        }
        panic!("too many redirects");
    }

    /// Visits the callback: where the app is entered, and the session token
    /// when one was set.
    pub(crate) async fn land(&mut self, callback: &str) -> (String, Option<String>) {
        self.cookies.retain(|(n, _)| n != "conclave_session");
        let (status, location) = self.get(callback).await;
        assert_eq!(status, 303, "the callback redirects into the app");
        (location.unwrap(), self.cookie("conclave_session"))
    }

    /// A whole sign-in through `provider_id` as `email`.
    pub(crate) async fn sign_in(
        &mut self,
        srv: &TestServer,
        provider_id: &str,
        email: &str,
    ) -> (String, Option<String>) {
        let callback = self.to_callback(srv, provider_id, email).await;
        self.land(&callback).await
    }
}

fn origin(url: &str) -> String {
    let after = url.find("://").unwrap() + 3;
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    url[..end].to_owned()
}

/// A server that trusts loopback providers, an organisation with its
/// owner, and the provider connected for `acme.test`.
async fn connected(
    engine: Engine,
    provider: &OidcProvider,
) -> (TestServer, conclave_client::Client, String, IdentityProvider) {
    let srv = TestServer::start_with(engine, |c| c.allow_local_outbound = true).await;
    let (owner, login) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let org_id = login.user.org_id.clone().unwrap();
    let (client_id, client_secret) = provider.register_client(&srv.url, "acme").await;
    let request = CreateIdentityProviderRequest {
        id: "acme".into(),
        name: "Acme SSO".into(),
        issuer: provider.issuer.clone(),
        client_id,
        client_secret,
        allowed_domains: vec!["ACME.test".into()],
        create_accounts: true,
    };
    let connected = owner.add_identity_provider(&org_id, &request).await.expect("the provider connects");
    assert_eq!(connected.allowed_domains, ["acme.test"]);
    assert_eq!(connected.redirect_uri, callback(&srv.url, "acme"));
    (srv, owner, org_id, connected)
}

async fn first_sign_in_makes_the_account_in_the_providers_organisation(engine: Engine) {
    let provider = OidcProvider::start();
    let (srv, owner, org_id, idp) = connected(engine, &provider).await;
    provider.person("grace@acme.test", "Grace Hopper", true, &["Engineering"]).await;

    let options = srv.client().sign_in_options("Grace@Acme.test").await.unwrap();
    assert_eq!(options.providers.len(), 1);
    assert_eq!(options.providers[0].name, "Acme SSO");
    assert!(options.password_allowed);
    assert!(srv.client().sign_in_options("someone@other.test").await.unwrap().providers.is_empty());

    let mut browser = Browser::new();
    let (landed, token) = browser.sign_in(&srv, &idp.id, "grace@acme.test").await;
    assert_eq!(landed, format!("{}/", srv.url));
    let grace = srv.client().authenticated(token.expect("signed in"));
    let me = grace.me().await.unwrap();
    assert_eq!(me.user.email, "grace@acme.test");
    assert_eq!(me.user.display_name, "Grace Hopper");
    assert_eq!((me.user.org_id.as_deref(), me.user.role), (Some(org_id.as_str()), Some(OrgRole::Member)));
    assert!(!me.two_factor_enrollment_required);
    // The account has no password: nobody signs in to it with one.
    let guess = LoginRequest {
        email: "grace@acme.test".into(),
        password: "".into(),
        totp_code: None,
        recovery_code: None,
        passkey: None,
    };
    assert_problem!(srv.client().login(&guess).await, 401, "invalid-credentials");

    // The provider's group is the organisation's, for an admin to give a meaning.
    let groups = owner.list_scim_groups(&org_id).await.unwrap();
    let engineering = groups.groups.iter().find(|g| g.display_name == "Engineering").expect("the group is known");
    assert_eq!(engineering.member_count, 1);
    owner
        .map_scim_group(&org_id, &engineering.id, &MapScimGroupRequest { role: Some(OrgRole::Admin), channel_id: None })
        .await
        .unwrap();
    assert_eq!(grace.me().await.unwrap().user.role, Some(OrgRole::Admin), "the group's meaning reaches its members");
    // The group is the provider's: SCIM neither sees nor changes it.
    let scim = owner.create_scim_token(&org_id).await.unwrap();
    let groups: Value = reqwest::Client::new()
        .get(format!("{}/scim/v2/Groups", srv.url))
        .bearer_auth(&scim.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(groups["totalResults"], 0, "{groups}");

    // Signing in again finds the same account; leaving the group at the
    // provider takes its role away at the next sign-in.
    provider.person("grace@acme.test", "Grace Hopper", true, &[]).await;
    let (_, token) = Browser::new().sign_in(&srv, &idp.id, "grace@acme.test").await;
    let again = srv.client().authenticated(token.unwrap()).me().await.unwrap();
    assert_eq!(again.user.id, me.user.id);
    assert_eq!(again.user.role, Some(OrgRole::Member));
    assert_eq!(srv.audit_count("auth.signup", "success").await, 1);
    assert_eq!(srv.state.store.list_org_members(&org_id).await.unwrap().len(), 2, "no second account");
}

async fn the_provider_is_trusted_only_as_far_as_it_should_be(engine: Engine) {
    let provider = OidcProvider::start();
    let (srv, owner, org_id, idp) = connected(engine, &provider).await;
    let sign_in = |email: &'static str| {
        let srv = &srv;
        let id = idp.id.clone();
        async move { Browser::new().sign_in(srv, &id, email).await }
    };
    let refused = |(landed, token): (String, Option<String>), code: &str| {
        assert_eq!(landed, format!("{}/?sso_error={code}", srv.url));
        assert!(token.is_none(), "{code}: nobody signed in");
    };

    // A stranger's domain, even verified.
    provider.person("eve@elsewhere.test", "Eve", true, &[]).await;
    refused(sign_in("eve@elsewhere.test").await, "domain-not-allowed");
    assert!(srv.state.store.user_by_email("eve@elsewhere.test").await.unwrap().is_none());

    // An address the provider has not verified is linked to nobody's
    // account, and makes none.
    srv.add_member(&owner, &org_id, "bob@acme.test", OrgRole::Member).await;
    provider.person("bob@acme.test", "Bob", false, &[]).await;
    refused(sign_in("bob@acme.test").await, "email-not-verified");
    provider.person("carol@acme.test", "Carol", false, &[]).await;
    refused(sign_in("carol@acme.test").await, "email-not-verified");
    assert!(srv.state.store.user_by_email("carol@acme.test").await.unwrap().is_none());
    // Verified, it links to Bob's account (which keeps its password).
    provider.person("bob@acme.test", "Bob", true, &[]).await;
    let (_, token) = sign_in("bob@acme.test").await;
    let bob = srv.client().authenticated(token.expect("linked"));
    assert_eq!(bob.me().await.unwrap().user.email, "bob@acme.test");
    assert_eq!(srv.audit_count("auth.provider.link", "success").await, 1);
    srv.login("bob@acme.test").await;

    // ID tokens that do not hold, each refused.
    provider.person("dan@acme.test", "Dan", true, &[]).await;
    for mode in ["wrong_audience", "wrong_nonce", "expired", "bad_signature", "wrong_issuer"] {
        provider.tamper(mode).await;
        refused(sign_in("dan@acme.test").await, "invalid-token");
    }
    provider.tamper("none").await;
    assert!(srv.state.store.user_by_email("dan@acme.test").await.unwrap().is_none());

    // A new signing key (the old one unpublished) is fetched and followed.
    provider.rotate().await;
    let (_, token) = sign_in("dan@acme.test").await;
    assert!(token.is_some(), "signed in after the provider rotated its key");

    // An answer carried to another browser, or used twice, signs nobody in.
    let mut victim = Browser::new();
    let mut attacker = Browser::new();
    let answer = attacker.to_callback(&srv, &idp.id, "dan@acme.test").await;
    refused(victim.land(&answer).await, "sign-in-expired");
    refused(attacker.land(&answer).await, "sign-in-expired");
    let answer = attacker.to_callback(&srv, &idp.id, "dan@acme.test").await;
    assert!(attacker.land(&answer).await.1.is_some());
    refused(attacker.land(&answer).await, "sign-in-expired");
    // An answer for this provider brought to another provider's address
    // (the mix-up attack) is not redeemed anywhere.
    let answer = attacker.to_callback(&srv, &idp.id, "dan@acme.test").await;
    let mixed_up = answer.replace("/oidc/acme/", "/oidc/elsewhere/");
    refused(attacker.land(&mixed_up).await, "sign-in-expired");
    refused(attacker.land(&answer).await, "sign-in-expired");

    // Whoever runs the provider does not become the owner by naming them.
    provider.person("owner@acme.test", "Owner", true, &[]).await;
    refused(sign_in("owner@acme.test").await, "owner-not-linked");

    // Another issuer or client: the old links go, and people are linked
    // again (by verified address) at their next sign-in.
    let bob_id = srv.state.store.user_by_email("bob@acme.test").await.unwrap().unwrap().id;
    assert_eq!(srv.state.store.external_identities_of(&bob_id).await.unwrap(), [idp.id.clone()]);
    let (client_id, client_secret) = provider.register_client(&srv.url, "acme").await;
    let change = UpdateIdentityProviderRequest {
        client_id: Some(client_id),
        client_secret: Some(client_secret),
        ..Default::default()
    };
    owner.update_identity_provider(&org_id, &idp.id, &change).await.unwrap();
    assert!(srv.state.store.external_identities_of(&bob_id).await.unwrap().is_empty());

    // An account the organisation closed does not come back through the provider.
    let dan = srv.state.store.user_by_email("dan@acme.test").await.unwrap().unwrap();
    owner.deactivate_member(&org_id, &dan.id).await.unwrap();
    refused(sign_in("dan@acme.test").await, "account-disabled");

    // Every refusal is in the audit log with its reason.
    let events = srv.state.store.list_audit_events(Some(&org_id), None, 1000).await.unwrap();
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e.action == "auth.login" && e.outcome == "failure")
        .map(|e| e.detail.as_str())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("Invalid audiences")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("nonce")), "{reasons:?}");
}

async fn connecting_a_provider_is_checked(engine: Engine) {
    let provider = OidcProvider::start();
    let (srv, owner, org_id, idp) = connected(engine, &provider).await;
    let mut request = CreateIdentityProviderRequest {
        id: "nowhere".into(),
        name: "Nowhere".into(),
        issuer: "http://127.0.0.1:9/nothing".into(),
        client_id: "x".into(),
        client_secret: "y".into(),
        allowed_domains: vec!["acme.test".into()],
        create_accounts: true,
    };
    assert_problem!(owner.add_identity_provider(&org_id, &request).await, 502, "provider-unavailable");
    request.issuer = provider.issuer.clone();
    request.allowed_domains = vec!["not a domain".into()];
    assert_problem!(owner.add_identity_provider(&org_id, &request).await, 422, "validation-failed");
    request.allowed_domains = vec!["acme.test".into()];
    request.issuer = "ftp://example.org".into();
    assert_problem!(owner.add_identity_provider(&org_id, &request).await, 422, "validation-failed");
    request.issuer = provider.issuer.clone();
    request.id = "Not A Short Name".into();
    assert_problem!(owner.add_identity_provider(&org_id, &request).await, 422, "validation-failed");
    request.id = idp.id.clone();
    assert_problem!(owner.add_identity_provider(&org_id, &request).await, 409, "conflict");
    // Whoever runs a provider signs in as anyone it names: only owners connect one.
    let (admin, _) = srv.add_member(&owner, &org_id, "admin@acme.test", OrgRole::Admin).await;
    request.id = "second".into();
    assert_problem!(admin.add_identity_provider(&org_id, &request).await, 403, "forbidden");
    assert_eq!(admin.identity_providers(&org_id).await.unwrap().providers.len(), 1, "admins see them");
    let (member, _) = srv.add_member(&owner, &org_id, "m@acme.test", OrgRole::Member).await;
    assert_problem!(member.identity_providers(&org_id).await, 403, "forbidden");

    // A domain is one organisation's: another cannot claim it for its provider.
    let (other, login) = srv.org_with_owner("boss@other.test", "Other").await;
    let other_org = login.user.org_id.unwrap();
    let (client_id, client_secret) = provider.register_client(&srv.url, "other").await;
    let mut theirs = CreateIdentityProviderRequest {
        id: "other".into(),
        name: "Acme SSO".into(),
        issuer: provider.issuer.clone(),
        client_id,
        client_secret,
        allowed_domains: vec!["acme.test".into()],
        create_accounts: true,
    };
    assert_problem!(other.add_identity_provider(&other_org, &theirs).await, 422, "validation-failed");
    theirs.allowed_domains = vec!["other.test".into()];
    other.add_identity_provider(&other_org, &theirs).await.expect("its own domain");
    let options = srv.client().sign_in_options("someone@acme.test").await.unwrap();
    assert_eq!(options.providers.iter().map(|p| p.provider_id.as_str()).collect::<Vec<_>>(), ["acme"]);

    // The secret is sealed, never stored or shown as it was sent.
    let row = srv.state.store.identity_provider(&idp.id).await.unwrap().unwrap();
    assert!(!row.client_secret.is_empty() && conclave_server::secrets::is_sealed(&row.client_secret));

    // Disconnected, the provider's sessions end with it.
    provider.person("grace@acme.test", "Grace", true, &[]).await;
    let (_, token) = Browser::new().sign_in(&srv, &idp.id, "grace@acme.test").await;
    let grace = srv.client().authenticated(token.unwrap());
    grace.me().await.unwrap();
    owner.remove_identity_provider(&org_id, &idp.id).await.unwrap();
    assert!(owner.identity_providers(&org_id).await.unwrap().providers.is_empty());
    assert_problem!(grace.me().await, 401, "unauthenticated");
}

async fn provider_only_sign_in_turns_passwords_off(engine: Engine) {
    let provider = OidcProvider::start();
    let (srv, owner, org_id, idp) = connected(engine, &provider).await;
    let (member, _) = srv.add_member(&owner, &org_id, "bob@acme.test", OrgRole::Member).await;
    let update = OrgPolicyUpdate { provider_only_sign_in: Some(Setting::unlocked(true)), ..Default::default() };
    owner.update_org_policy(&org_id, &update).await.unwrap();

    let password = LoginRequest {
        email: "bob@acme.test".into(),
        password: PASSWORD.into(),
        totp_code: None,
        recovery_code: None,
        passkey: None,
    };
    // Even the right password gets the wrong password's answer: it must
    // not confirm an old password the provider may still take.
    assert_problem!(srv.client().login(&password).await, 401, "invalid-credentials");
    // Sessions signed in with a password before the policy end.
    assert_problem!(member.me().await, 401, "unauthenticated");
    assert!(!srv.client().sign_in_options("bob@acme.test").await.unwrap().password_allowed);
    // An invitation is taken through the provider, not with a new password.
    let invite = owner
        .invite_member(&org_id, &InviteMemberRequest { email: "carl@acme.test".into(), role: OrgRole::Member })
        .await
        .unwrap();
    let signup = SignupRequest {
        email: "carl@acme.test".into(),
        password: PASSWORD.into(),
        display_name: "Carl".into(),
        invite_token: Some(invite.invite_token),
    };
    assert_problem!(srv.client().signup(&signup).await, 403, "provider-sign-in-required");
    // The owner keeps a password, to repair the connection when the provider fails.
    srv.login("owner@acme.test").await;
    // Bob signs in through the provider.
    provider.person("bob@acme.test", "Bob", true, &[]).await;
    let (_, token) = Browser::new().sign_in(&srv, &idp.id, "bob@acme.test").await;
    let bob = srv.client().authenticated(token.unwrap());
    // A provider's account has no password to change while passwords are off.
    let change = ChangePasswordRequest {
        current_password: PASSWORD.into(),
        new_password: "another long passphrase here".into(),
    };
    assert_problem!(bob.change_password(&change).await, 403, "provider-sign-in-required");
}

on_both_engines!(
    first_sign_in_makes_the_account_in_the_providers_organisation,
    the_provider_is_trusted_only_as_far_as_it_should_be,
    connecting_a_provider_is_checked,
    provider_only_sign_in_turns_passwords_off,
);
