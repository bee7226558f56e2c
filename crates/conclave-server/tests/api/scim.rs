//! Provisioning by an identity provider through SCIM 2.0, with the request
//! sequences Okta and Entra ID send, and offboarding: a person the provider
//! deactivates is out of every session, conversation and live meeting
//! within a second.

use crate::conversations::{all_in_group, channel_request, direct_request, group_request, team, Team};
use crate::meetings::{admit, host_joins, new_meeting, WAIT};
use crate::support::{TestServer, PASSWORD};
use crate::{assert_problem, on_both_engines};
use conclave_client::chat::ChatEvent;
use conclave_proto::conversation::{ConversationSettingsUpdate, EntryBody};
use conclave_proto::signal::{ClientMessage, ServerMessage};
use conclave_proto::*;
use conclave_store::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The identity provider's side: SCIM requests with the organisation's token.
struct Provider {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Provider {
    async fn of(srv: &TestServer, admin: &conclave_client::Client, org: &str) -> Self {
        let created = admin.create_scim_token(org).await.expect("an admin makes the SCIM token");
        assert_eq!(created.base_url, format!("{}/scim/v2", srv.url));
        assert!(created.token.starts_with("scim_"));
        Self { http: reqwest::Client::new(), base: created.base_url, token: created.token }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_with(method, path, body, &[]).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/scim+json").body(body.to_string());
        }
        let response = request.send().await.expect("the SCIM request is answered");
        let status = response.status();
        if status != StatusCode::NO_CONTENT {
            let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
            assert!(kind.starts_with("application/scim+json"), "{path}: {kind}");
        }
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    /// Users matching `filter`, as a provider looks someone up before creating them.
    async fn find(&self, resource: &str, filter: &str) -> Vec<Value> {
        let query = format!("/{resource}?filter={}&startIndex=1&count=100", urlencode(filter));
        let (status, list) = self.get(&query).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"]));
        list["Resources"].as_array().unwrap().clone()
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

fn assert_scim_error(answer: &(StatusCode, Value), status: u16, scim_type: Option<&str>) {
    assert_eq!(answer.0.as_u16(), status, "{}", answer.1);
    assert_eq!(answer.1["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{}", answer.1);
    assert_eq!(answer.1["status"], json!(status.to_string()));
    assert_eq!(answer.1["scimType"].as_str(), scim_type, "{}", answer.1);
    assert!(answer.1["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

on_both_engines!(okta_provisions_finds_changes_and_deactivates_people);
async fn okta_provisions_finds_changes_and_deactivates_people(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (admin, login) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let org = login.user.org_id.unwrap();
    assert_eq!(admin.scim_status(&org).await.unwrap().token_created_at_ms, None);
    let okta = Provider::of(&srv, &admin, &org).await;
    assert!(admin.scim_status(&org).await.unwrap().token_created_at_ms.is_some());

    // Okta reads what the server supports, then looks the person up.
    let (status, config) = okta.get("/ServiceProviderConfig").await;
    assert_eq!(status, 200);
    assert_eq!(
        (config["patch"]["supported"].as_bool(), config["bulk"]["supported"].as_bool()),
        (Some(true), Some(false))
    );
    let (_, types) = okta.get("/ResourceTypes").await;
    assert_eq!(types["totalResults"], json!(2));
    let (_, schemas) = okta.get("/Schemas").await;
    assert!(schemas["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"] == "urn:ietf:params:scim:schemas:core:2.0:User"));
    assert!(okta.find("Users", r#"userName eq "ada@acme.test""#).await.is_empty());

    // Created as Okta sends it: active, with name parts and a work email;
    // no password, so Ada will choose one.
    let (status, ada) = okta
        .call(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "Ada@acme.test",
                "name": {"givenName": "Ada", "familyName": "Lovelace"},
                "emails": [{"primary": true, "value": "ada@acme.test", "type": "work"}],
                "displayName": "Ada Lovelace",
                "locale": "en-GB",
                "externalId": "00u1okta",
                "groups": [],
                "password": null,
                "active": true
            })),
        )
        .await;
    assert_eq!(status, 201, "{ada}");
    let id = ada["id"].as_str().unwrap().to_owned();
    assert_eq!(ada["userName"], json!("Ada@acme.test"));
    assert_eq!(ada["active"], json!(true));
    assert_eq!(ada["meta"]["location"], json!(format!("{}/Users/{id}", okta.base)));
    assert!(ada["meta"]["version"].as_str().unwrap().starts_with("W/\""));
    assert!(ada.get("password").is_none(), "a password is never returned");
    // The account is in the organisation, and has no password yet.
    let members = admin.list_members(&org).await.unwrap().members;
    let member = members.iter().find(|m| m.id == id).expect("a member of the organisation");
    assert_eq!((member.display_name.as_str(), member.role), ("Ada Lovelace", Some(OrgRole::Member)));
    assert_problem!(srv.client().login(&login_req("ada@acme.test", "")).await, 401, "invalid-credentials");
    assert_eq!(srv.audit_count("scim.user.provision", "success").await, 1);

    // Found by userName (any case), externalId (exactly) and displayName.
    for filter in [r#"userName eq "ADA@acme.test""#, r#"externalId eq "00u1okta""#, r#"displayName eq "Ada Lovelace""#]
    {
        let found = okta.find("Users", filter).await;
        assert_eq!(found.len(), 1, "{filter}");
        assert_eq!(found[0]["id"], json!(id));
    }
    assert!(okta.find("Users", r#"externalId eq "00U1OKTA""#).await.is_empty());
    // People who were there before the provider are found too, to be adopted.
    assert_eq!(okta.find("Users", r#"userName eq "owner@acme.test""#).await.len(), 1);

    // Okta's profile push: a PUT of the whole user.
    let (status, renamed) = okta
        .call(
            Method::PUT,
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": id,
                "userName": "Ada@acme.test",
                "name": {"givenName": "Augusta", "familyName": "King"},
                "emails": [{"primary": true, "value": "ada@acme.test", "type": "work"}],
                "active": true
            })),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    // The provider reads back what it wrote; people see the name it makes.
    assert_eq!(renamed["name"], json!({"givenName": "Augusta", "familyName": "King"}));
    let members = admin.list_members(&org).await.unwrap().members;
    assert_eq!(members.iter().find(|m| m.id == id).unwrap().display_name, "Augusta King");
    // A PUT against an old version is refused.
    let stale = okta
        .call_with(
            Method::PUT,
            &format!("/Users/{id}"),
            Some(renamed.clone()),
            &[("if-match", ada["meta"]["version"].as_str().unwrap())],
        )
        .await;
    assert_scim_error(&stale, 412, None);

    // Okta deactivates: PATCH replace active false. Ada's sessions end at once.
    let ada_client = sign_in_after_choosing_password(&srv, &id, "ada@acme.test").await;
    let (status, off) = okta
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch_body(json!([{"op": "replace", "value": {"active": false}}]))),
        )
        .await;
    assert_eq!(status, 200, "{off}");
    assert_eq!(off["active"], json!(false));
    assert_problem!(ada_client.me().await, 401, "unauthenticated");
    assert_problem!(srv.client().login(&login_req("ada@acme.test", PASSWORD)).await, 403, "account-disabled");
    assert!(srv.audit_count("org.member.deactivate", "success").await >= 1);
    // And back: she signs in again.
    let (status, on) = okta
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch_body(json!([{"op": "replace", "value": {"active": true}}]))),
        )
        .await;
    assert_eq!((status.as_u16(), on["active"].clone()), (200, json!(true)));
    srv.client().login(&login_req("ada@acme.test", PASSWORD)).await.expect("reactivated, Ada signs in");

    // Owners are Conclave's: the provider (and whoever holds its token)
    // reads them but never closes them, gives them a password or an address.
    let owner_id = login.user.id;
    for change in [
        json!([{"op": "replace", "path": "active", "value": false}]),
        json!([{"op": "replace", "value": {"password": "a new passphrase for the owner"}}]),
        json!([{"op": "replace", "path": "emails", "value": [{"value": "attacker@evil.test", "primary": true}]}]),
    ] {
        let refused = okta.call(Method::PATCH, &format!("/Users/{owner_id}"), Some(patch_body(change))).await;
        assert_scim_error(&refused, 400, Some("mutability"));
    }
    assert_scim_error(&okta.call(Method::DELETE, &format!("/Users/{owner_id}"), None).await, 400, Some("mutability"));
    admin.me().await.expect("the owner is still signed in");
    // Someone who chose a password keeps it: a provider's password is taken
    // only until its person has one. A PUT without an address or `active`
    // keeps the account's address and standing.
    let (status, _) = okta
        .call(
            Method::PUT,
            &format!("/Users/{id}"),
            Some(json!({"userName": "kf-ada", "password": "the provider's own passphrase"})),
        )
        .await;
    assert_eq!(status, 200);
    let members = admin.list_members(&org).await.unwrap().members;
    let ada_now = members.iter().find(|m| m.id == id).unwrap();
    assert_eq!((ada_now.email.as_str(), ada_now.status), ("ada@acme.test", AccountStatus::Active));
    srv.client().login(&login_req("ada@acme.test", PASSWORD)).await.expect("her own password still works");

    // Deleted: closed, gone from SCIM, kept for the audit log.
    let (status, _) = okta.call(Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(status, 204);
    assert_scim_error(&okta.get(&format!("/Users/{id}")).await, 404, None);
    assert!(okta.find("Users", r#"userName eq "ada@acme.test""#).await.is_empty());
    assert_problem!(srv.client().login(&login_req("ada@acme.test", PASSWORD)).await, 403, "account-disabled");
    // Provisioned again (a returning colleague), she has her account back.
    let (status, back) = okta
        .call(Method::POST, "/Users", Some(json!({"userName": "ada@acme.test", "active": true, "displayName": "Ada"})))
        .await;
    assert_eq!(status, 201, "{back}");
    assert_eq!(back["id"], json!(id));
    srv.client().login(&login_req("ada@acme.test", PASSWORD)).await.expect("back, with her password");

    // A revoked token opens nothing.
    admin.revoke_scim_token(&org).await.unwrap();
    assert_scim_error(&okta.get("/Users").await, 401, None);

    // An admin's token does not outlive the admin: closing them revokes it.
    let (second, _) = srv.add_member(&admin, &org, "it@acme.test", OrgRole::Admin).await;
    let their_token = second.create_scim_token(&org).await.unwrap().token;
    let theirs = Provider { http: reqwest::Client::new(), base: okta.base.clone(), token: their_token };
    assert_eq!(theirs.get("/Users").await.0, 200);
    let it_id =
        admin.list_members(&org).await.unwrap().members.into_iter().find(|m| m.email == "it@acme.test").unwrap().id;
    admin.deactivate_member(&org, &it_id).await.unwrap();
    assert_scim_error(&theirs.get("/Users").await, 401, None);
}

on_both_engines!(entra_id_patches_with_paths_filters_and_strings);
async fn entra_id_patches_with_paths_filters_and_strings(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (admin, login) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let org = login.user.org_id.unwrap();
    let entra = Provider::of(&srv, &admin, &org).await;
    // Entra ID looks up by externalId first, then creates.
    assert!(entra.find("Users", r#"externalId eq "7c0b-grace""#).await.is_empty());
    let (status, grace) = entra
        .call(
            Method::POST,
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "externalId": "7c0b-grace",
                "userName": "grace.hopper@acme.test",
                "active": true,
                "displayName": "Grace Hopper",
                "emails": [{"primary": true, "type": "work", "value": "grace.hopper@acme.test"}],
                "name": {"formatted": "Grace Hopper", "familyName": "Hopper", "givenName": "Grace"},
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Navy"}
            })),
        )
        .await;
    assert_eq!(status, 201, "{grace}");
    let id = grace["id"].as_str().unwrap().to_owned();
    // Entra's PATCH: capitalised ops, paths, a filtered email, booleans as strings.
    let (status, patched) = entra
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch_body(json!([
                {"op": "Replace", "path": "displayName", "value": "Rear Admiral Hopper"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "admiral@acme.test"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Computing"},
                {"op": "Replace", "path": "active", "value": "False"}
            ]))),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["displayName"], json!("Rear Admiral Hopper"));
    assert_eq!(patched["emails"][0]["value"], json!("admiral@acme.test"));
    assert_eq!(patched["active"], json!(false));
    let member = admin.list_members(&org).await.unwrap().members.into_iter().find(|m| m.id == id).unwrap();
    assert_eq!((member.email.as_str(), member.status), ("admiral@acme.test", AccountStatus::Deactivated));
    let (status, on) = entra
        .call(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(patch_body(json!([{"op": "Replace", "path": "active", "value": "True"}]))),
        )
        .await;
    assert_eq!((status.as_u16(), on["active"].clone()), (200, json!(true)));

    // Groups, as Entra ID manages them: created empty, members added and
    // removed one PATCH at a time, looked up by displayName.
    let (status, group) = entra
        .call(Method::POST, "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering", "externalId": "g-eng", "members": []})))
        .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_owned();
    let owner_id = login.user.id.clone();
    let add = patch_body(json!([{"op": "Add", "path": "members", "value": [{"value": id}, {"value": owner_id}]}]));
    let (status, group) = entra.call(Method::PATCH, &format!("/Groups/{gid}"), Some(add)).await;
    assert_eq!(status, 200, "{group}");
    assert_eq!(group["members"].as_array().unwrap().len(), 2);
    let (_, grace) = entra.get(&format!("/Users/{id}")).await;
    assert_eq!(grace["groups"][0]["display"], json!("Engineering"), "a user shows the groups it is in");
    let remove = patch_body(json!([{"op": "Remove", "path": format!("members[value eq \"{id}\"]")}]));
    let (status, group) = entra.call(Method::PATCH, &format!("/Groups/{gid}"), Some(remove)).await;
    assert_eq!(status, 200);
    assert_eq!(group["members"], json!([{"value": owner_id, "$ref": format!("{}/Users/{owner_id}", entra.base)}]));
    let found = entra.find("Groups", r#"displayName eq "Engineering""#).await;
    assert_eq!(found.len(), 1);
    let renamed = patch_body(json!([{"op": "Replace", "value": {"id": gid, "displayName": "Platform"}}]));
    let (_, group) = entra.call(Method::PATCH, &format!("/Groups/{gid}"), Some(renamed)).await;
    assert_eq!(group["displayName"], json!("Platform"));
    assert_eq!(srv.audit_count("scim.group.update", "success").await, 4);
    let (status, _) = entra.call(Method::DELETE, &format!("/Groups/{gid}"), None).await;
    assert_eq!(status, 204);
    assert_scim_error(&entra.get(&format!("/Groups/{gid}")).await, 404, None);
}

on_both_engines!(the_providers_groups_give_roles_and_team_channels);
async fn the_providers_groups_give_roles_and_team_channels(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (admin, login) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let org = login.user.org_id.unwrap();
    let owner_id = login.user.id;
    let okta = Provider::of(&srv, &admin, &org).await;
    let mut ids = Vec::new();
    for who in ["ada", "bob"] {
        let (status, user) = okta
            .call(Method::POST, "/Users", Some(json!({"userName": format!("{who}@acme.test"), "displayName": who})))
            .await;
        assert_eq!(status, 201);
        ids.push(user["id"].as_str().unwrap().to_owned());
    }
    let (ada, bob) = (ids[0].clone(), ids[1].clone());
    // A team channel the admins govern: locked, so nobody joins it alone.
    let channel = admin.create_conversation(&channel_request("engineering")).await.unwrap();
    let lock = ConversationSettingsUpdate { locked: Some(true), archived: None };
    admin.update_conversation(&channel.id, &lock).await.unwrap();
    let (status, group) = okta
        .call(
            Method::POST,
            "/Groups",
            Some(json!({"displayName": "Engineering", "members": [{"value": ada}, {"value": owner_id}]})),
        )
        .await;
    assert_eq!(status, 201);
    let gid = group["id"].as_str().unwrap().to_owned();
    let role_of = |id: String| {
        let admin = &admin;
        let org = &org;
        async move { admin.list_members(org).await.unwrap().members.into_iter().find(|m| m.id == id).unwrap().role }
    };
    let in_channel = |id: String| {
        let admin = &admin;
        let channel = &channel.id;
        async move { admin.get_conversation(channel).await.unwrap().members.iter().any(|m| m.user_id == id) }
    };
    assert_eq!(role_of(ada.clone()).await, Some(OrgRole::Member), "a group means nothing until mapped");

    // Mapped: admins, and in the channel, at once.
    let listed = admin.list_scim_groups(&org).await.unwrap().groups;
    assert_eq!((listed.len(), listed[0].member_count), (1, 2));
    let mapping = MapScimGroupRequest { role: Some(OrgRole::Admin), channel_id: Some(channel.id.clone()) };
    let mapped = admin.map_scim_group(&org, &gid, &mapping).await.unwrap();
    assert_eq!((mapped.role, mapped.channel_id.as_deref()), (Some(OrgRole::Admin), Some(channel.id.as_str())));
    assert_eq!(role_of(ada.clone()).await, Some(OrgRole::Admin));
    assert!(in_channel(ada.clone()).await, "put in a locked channel by the organisation");
    assert_eq!(role_of(owner_id.clone()).await, Some(OrgRole::Owner), "an owner stays owner");

    // The provider adds Bob and takes Ada out: both follow.
    let change = patch_body(json!([
        {"op": "add", "path": "members", "value": [{"value": bob}]},
        {"op": "remove", "path": format!("members[value eq \"{ada}\"]")}
    ]));
    assert_eq!(okta.call(Method::PATCH, &format!("/Groups/{gid}"), Some(change)).await.0, 200);
    assert_eq!((role_of(bob.clone()).await, in_channel(bob.clone()).await), (Some(OrgRole::Admin), true));
    assert_eq!((role_of(ada.clone()).await, in_channel(ada.clone()).await), (Some(OrgRole::Member), false));

    // Deactivated and back: Bob returns to the channel and the role.
    for active in [false, true] {
        let body = patch_body(json!([{"op": "replace", "value": {"active": active}}]));
        assert_eq!(okta.call(Method::PATCH, &format!("/Users/{bob}"), Some(body)).await.0, 200);
        assert_eq!(in_channel(bob.clone()).await, active);
    }
    assert_eq!(role_of(bob.clone()).await, Some(OrgRole::Admin));

    // What a group cannot mean.
    let owners = MapScimGroupRequest { role: Some(OrgRole::Owner), channel_id: None };
    assert_problem!(admin.map_scim_group(&org, &gid, &owners).await, 422, "validation-failed");
    let dm = admin.create_conversation(&crate::conversations::direct_request(&bob)).await.unwrap();
    let not_a_channel = MapScimGroupRequest { role: None, channel_id: Some(dm.id) };
    assert_problem!(admin.map_scim_group(&org, &gid, &not_a_channel).await, 422, "validation-failed");
    assert_problem!(admin.map_scim_group(&org, "no-such-group", &mapping).await, 404, "not-found");

    // The group deleted: its meaning goes with it.
    assert_eq!(okta.call(Method::DELETE, &format!("/Groups/{gid}"), None).await.0, 204);
    assert_eq!((role_of(bob.clone()).await, in_channel(bob).await), (Some(OrgRole::Member), false));
}

on_both_engines!(bad_scim_requests_get_scim_errors_and_change_nothing);
async fn bad_scim_requests_get_scim_errors_and_change_nothing(engine: Engine) {
    // A budget of sensitive requests per address small enough to run out.
    let srv = TestServer::start_with(engine, |c| c.limits.sensitive_burst = 30).await;
    let (admin, login) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let org = login.user.org_id.unwrap();
    let scim = Provider::of(&srv, &admin, &org).await;
    let before = admin.list_members(&org).await.unwrap().members.len();
    let post = |body: Value| scim.call(Method::POST, "/Users", Some(body));
    // Malformed bodies, missing and wrong fields.
    let raw = scim
        .http
        .post(format!("{}/Users", scim.base))
        .bearer_auth(&scim.token)
        .header("content-type", "application/scim+json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(raw.json::<Value>().await.unwrap()["scimType"], json!("invalidSyntax"));
    assert_scim_error(&post(json!(["an", "array"])).await, 400, Some("invalidSyntax"));
    assert_scim_error(&post(json!({"displayName": "No Name"})).await, 400, Some("invalidValue"));
    assert_scim_error(
        &post(json!({"userName": "x@acme.test", "emails": [{"value": "nope"}]})).await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(&post(json!({"userName": "x@acme.test", "active": 3})).await, 400, Some("invalidValue"));
    assert_scim_error(
        &post(json!({"userName": "x@acme.test", "displayName": "Own\u{202E}er"})).await,
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &post(json!({"userName": "x@acme.test", "password": "password1234"})).await,
        400,
        Some("invalidValue"),
    );
    // An address someone has is a conflict.
    assert_scim_error(&post(json!({"userName": "owner@acme.test"})).await, 409, Some("uniqueness"));
    // Filters: malformed, oversized, too deep.
    for filter in [
        "userName xx \"a\"".to_owned(),
        format!("userName eq \"{}\"", "a".repeat(5000)),
        format!("{}userName pr{}", "(".repeat(200), ")".repeat(200)),
    ] {
        let answer = scim.get(&format!("/Users?filter={}", urlencode(&filter))).await;
        assert_scim_error(&answer, 400, Some("invalidFilter"));
    }
    // Paging is clamped, not refused.
    let (status, page) = scim.get("/Users?startIndex=-5&count=100000").await;
    assert_eq!((status.as_u16(), page["startIndex"].clone(), page["totalResults"].clone()), (200, json!(1), json!(1)));
    // PATCH: no schema, unknown op, bad path, no value.
    let (_, owner) = scim.get("/Users").await;
    let owner_id = owner["Resources"][0]["id"].as_str().unwrap().to_owned();
    let user_path = format!("/Users/{owner_id}");
    for (body, scim_type) in [
        (json!({"Operations": []}), "invalidSyntax"),
        (patch_body(json!([{"op": "move", "path": "x"}])), "invalidSyntax"),
        (patch_body(json!([{"op": "replace", "path": "emails[type eq", "value": "x"}])), "invalidPath"),
        (patch_body(json!([{"op": "add", "path": "displayName"}])), "invalidValue"),
        (patch_body(json!([{"op": "replace", "path": "userName", "value": ""}])), "invalidValue"),
    ] {
        assert_scim_error(&scim.call(Method::PATCH, &user_path, Some(body)).await, 400, Some(scim_type));
    }
    // Groups with someone who is not in the organisation.
    let (other, other_login) = srv.org_with_owner("boss@other.test", "Other").await;
    let stranger = other_login.user.id;
    let group = json!({"displayName": "Mixed", "members": [{"value": stranger}]});
    assert_scim_error(&scim.call(Method::POST, "/Groups", Some(group)).await, 400, Some("invalidValue"));
    // Another organisation's people do not exist for this token, and its
    // own token sees only its own.
    assert_scim_error(&scim.get(&format!("/Users/{stranger}")).await, 404, None);
    let other_scim = Provider::of(&srv, &other, &other_login.user.org_id.unwrap()).await;
    let (_, theirs) = other_scim.get("/Users").await;
    assert_eq!(theirs["totalResults"], json!(1));
    assert_scim_error(&other_scim.get(&format!("/Users/{owner_id}")).await, 404, None);
    assert_scim_error(&scim.get("/Nothing").await, 404, None);
    // Nothing changed.
    assert_eq!(admin.list_members(&org).await.unwrap().members.len(), before);
    assert_eq!(srv.audit_count("scim.user.provision", "success").await, 0);

    // Someone provisioned without any email address has none: no address
    // is made up for them to be mailed at or to sign in with.
    let (status, nameless) = post(json!({"userName": "kf-00042", "displayName": "Contractor"})).await;
    assert_eq!(status, 201, "{nameless}");
    assert!(nameless.get("emails").is_none(), "{nameless}");
    let (status, renamed) = scim
        .call(
            Method::PATCH,
            &format!("/Users/{}", nameless["id"].as_str().unwrap()),
            Some(patch_body(json!([{"op": "replace", "path": "displayName", "value": "Contractor Two"}]))),
        )
        .await;
    assert_eq!((status.as_u16(), renamed["displayName"].clone()), (200, json!("Contractor Two")));
    let members = admin.list_members(&org).await.unwrap().members;
    let member = members.iter().find(|m| m.display_name == "Contractor Two").unwrap();
    assert!(member.email.ends_with(".invalid"), "{}", member.email);

    // A member may not make tokens.
    let (member, _) = srv.add_member(&admin, &org, "m@acme.test", OrgRole::Member).await;
    assert_problem!(member.create_scim_token(&org).await, 403, "forbidden");

    // Without a token, or with a wrong one: 401, audited, and guesses run out.
    let anonymous = reqwest::get(format!("{}/Users", scim.base)).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let guesser = Provider { http: reqwest::Client::new(), base: scim.base.clone(), token: "scim_guess".into() };
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(guesser.get("/Users").await.0.as_u16());
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(statuses.last(), Some(&429), "guessing tokens is throttled: {statuses:?}");
    assert!(srv.audit_count("scim.auth", "failure").await >= 10);
}

on_both_engines!(an_independent_conformance_checker_finds_nothing_wrong);
async fn an_independent_conformance_checker_finds_nothing_wrong(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let (admin, login) = srv.org_with_owner("owner@acme.test", "Acme").await;
    let scim = Provider::of(&srv, &admin, &login.user.org_id.unwrap()).await;
    // scim2-tester (PyPI; `cargo xtask test` installs it): discovery, then
    // create, read, query, replace, patch and delete of every resource type,
    // with values it makes up.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scim/conformance.py");
    let (base, token) = (scim.base.clone(), scim.token.clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3").args([script, &base, &token]).output().expect("python3 runs")
    })
    .await
    .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the conformance checker found errors (or is not installed: `cargo xtask test` installs scim2-tester):\n{printed}"
    );
    let summary: Value = serde_json::from_str(printed.lines().rfind(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(summary["errors"], json!(0), "{printed}");
    assert!(summary["checks"].as_u64().unwrap() >= 60, "{printed}");
}

// The offboarding test of the identity issue: a member in five
// conversations and one live meeting is deactivated by SCIM; within one
// second every session is refused, every device is out of every group and
// the meeting, and the devices decrypt nothing sent afterwards.
on_both_engines!(a_member_deactivated_by_scim_is_out_of_everything_within_a_second);
async fn a_member_deactivated_by_scim_is_out_of_everything_within_a_second(engine: Engine) {
    let mut t: Team = team(engine).await;
    let okta = Provider::of(&t.srv, &t.ada, &t.org).await;
    let grace_token = t
        .grace
        .create_access_token(&CreateAccessTokenRequest { name: "build bot".into(), expires_in_days: None })
        .await
        .unwrap()
        .token;
    let grace_bot = t.srv.client().authenticated(&grace_token);

    // Five conversations: three groups, a direct message and a channel.
    let mut conversations = Vec::new();
    for name in ["Launch", "Design", "Ops"] {
        conversations.push(t.ada.create_conversation(&group_request(name, &[&t.grace_id])).await.unwrap().id);
    }
    conversations.push(t.ada.create_conversation(&direct_request(&t.grace_id)).await.unwrap().id);
    let channel = t.ada.create_conversation(&channel_request("general")).await.unwrap();
    t.grace.join_conversation(&channel.id).await.unwrap();
    conversations.push(channel.id);
    for id in &conversations {
        all_in_group(&mut t.devices, id).await;
    }
    // One live meeting, Grace admitted.
    let meeting = t.ada.create_meeting(&new_meeting("Stand-up")).await.unwrap();
    let (mut host, _) = host_joins(&t.ada, &meeting).await;
    let mut grace_conn = t.grace.join_by_link(&meeting.link_secret, "Grace").await.unwrap();
    let grace_seat = match grace_conn.next(WAIT).await.unwrap() {
        ServerMessage::Admitted { participant_id, .. } => participant_id,
        ServerMessage::Waiting { participant_id, .. } => {
            admit(&mut host, &mut grace_conn, participant_id).await;
            participant_id
        }
        other => panic!("{other:?}"),
    };

    // A meeting Grace hosts: its link and host key are in her hands.
    let hers = t.grace.create_meeting(&new_meeting("Grace's office hours")).await.unwrap();

    // Okta deactivates Grace. Everything below holds as soon as the
    // provider's request is answered: the server closes the account
    // everywhere before it answers (the meeting's removal is queued to the
    // meeting by then), so "within a second" is the time of one request.
    let (status, _) = okta
        .call(
            Method::PATCH,
            &format!("/Users/{}", t.grace_id),
            Some(patch_body(json!([{"op": "replace", "value": {"active": false}}]))),
        )
        .await;
    assert_eq!(status, 200);
    // Every session and token is refused.
    assert_problem!(t.grace.me().await, 401, "unauthenticated");
    assert_problem!(grace_bot.me().await, 401, "unauthenticated");
    // Out of the meeting: told, and the others see her leave.
    grace_conn.wait_for("removal", WAIT, |m| matches!(m, ServerMessage::Removed)).await.unwrap();
    host.wait_for(
        "her leaving",
        WAIT,
        |m| matches!(m, ServerMessage::ParticipantLeft { participant_id } if *participant_id == grace_seat),
    )
    .await
    .unwrap();
    // The meetings she hosted have new secrets: her copy of the link is dead.
    let by_her_link = JoinMeetingRequest {
        link_secret: Some(hers.link_secret.clone()),
        code: None,
        passcode: None,
        display_name: "Grace, anonymously".into(),
    };
    assert_problem!(t.srv.client().join_meeting(&by_her_link).await, 404, "meeting-not-found");
    // Out of every conversation, and her devices read none of them.
    for id in &conversations {
        let after = t.ada.get_conversation(id).await.unwrap();
        assert!(after.members.iter().all(|m| m.user_id != t.grace_id), "{id}: {:?}", after.members);
    }

    // Nothing sent afterwards opens with the keys her devices kept.
    let mut grace_kept = t.devices.split_off(2);
    let ada_devices = &mut t.devices;
    for id in &conversations {
        ada_devices[0].send_text(id, "after Grace left", None).await.unwrap();
        let page = t.ada.read_conversation(id, &ada_devices[0].device_id, 0, 500, 0).await.unwrap();
        let (from, content) = page
            .entries
            .iter()
            .rev()
            .find_map(|e| match &e.body {
                EntryBody::Message { device, content, .. } => Some((device.clone(), content.clone())),
                _ => None,
            })
            .unwrap();
        for device in grace_kept.iter_mut() {
            assert_eq!(device.open_ciphertext(id, &from, &content), None, "{id}: Grace's keys open nothing new");
        }
        assert_problem!(
            t.srv.client().authenticated(&grace_token).read_conversation(id, &grace_kept[0].device_id, 0, 10, 0).await,
            401,
            "unauthenticated"
        );
    }
    // Her device left every group on the server's own signed word: Ada's
    // other device applied, in each, a commit carrying out the proposal the
    // server made as the group's external sender.
    let seen = ada_devices[1].sync().await.unwrap();
    for id in &conversations {
        let device = grace_kept[0].device_id.clone();
        let removed = ChatEvent::DeviceRemoved { conversation_id: id.clone(), device, by_server: true };
        assert!(seen.contains(&removed), "{id}: {seen:?}");
    }
    host.send(&ClientMessage::Leave).await.ok();
}

async fn sign_in_after_choosing_password(srv: &TestServer, user_id: &str, email: &str) -> conclave_client::Client {
    // What the welcome email's link does, done directly: a password set.
    let hash = srv.state.hash_password(PASSWORD.into()).await;
    srv.state.store.set_password_hash(user_id, &hash).await.unwrap();
    let (client, _) = srv.login(email).await;
    client
}

fn login_req(email: &str, password: &str) -> LoginRequest {
    LoginRequest { email: email.into(), password: password.into(), totp_code: None, recovery_code: None, passkey: None }
}
