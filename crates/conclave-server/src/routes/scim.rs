//! SCIM 2.0 (RFC 7643, RFC 7644) at `/scim/v2`, for an organisation's
//! identity provider (Okta, Entra ID, Keycloak, …): it creates accounts,
//! changes them, and closes them when someone leaves — `active: false` or
//! `DELETE` close the account everywhere at once (`offboarding.rs`). The
//! provider authenticates with the organisation's own bearer token, which
//! an administrator makes through `/api/v1/orgs/{id}/scim` and which only
//! reaches that organisation. Errors are SCIM error documents, as SCIM
//! clients expect, not problem details.
//!
//! Accounts the provider creates have no password: their person gets an
//! email with a link to choose one (or, once the organisation signs in
//! through its provider, never needs one). A provider that sends a
//! `password` sets it, under the same policy as everyone's.

use crate::accounts::{self, AccountError};
use crate::conversations::ConversationError;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp};
use crate::routes::orgs::authorize;
use crate::routes::password_reset::{email_link, LinkPurpose};
use crate::state::{Audit, SharedState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use conclave_auth::{OpaqueToken, TokenHash, NO_PASSWORD};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::{
    AccountStatus, MapScimGroupRequest, OrgRole, Problem, ScimGroupList, ScimGroupMapping, ScimStatus, ScimTokenCreated,
};
use conclave_scim::{discovery, patch, projection, AttrPath, Filter, ScimError, GROUP_SCHEMA, USER_SCHEMA};
use conclave_store::{Lookup, ProvisionedUser, ScimGroupRow, StoreError, UserRow};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// Where the SCIM API lives, below the public URL.
pub const BASE_PATH: &str = "/scim/v2";

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .route("/.search", post(|s, p, b| search(s, p, b, Listing::All)))
        .route("/Users", get(|s, p, q| list(s, p, q, Listing::Users)).post(create_user))
        .route("/Users/.search", post(|s, p, b| search(s, p, b, Listing::Users)))
        .route("/Users/{id}", get(get_user).put(replace_user).patch(patch_user).delete(delete_user))
        .route("/Groups", get(|s, p, q| list(s, p, q, Listing::Groups)).post(create_group))
        .route("/Groups/.search", post(|s, p, b| search(s, p, b, Listing::Groups)))
        .route("/Groups/{id}", get(get_group).put(replace_group).patch(patch_group).delete(delete_group))
        .fallback(|| async { Failure::Scim(ScimError::NotFound("no such SCIM endpoint".into())) })
}

// Errors.

/// Why a SCIM request failed.
#[derive(Debug)]
pub enum Failure {
    Scim(ScimError),
    Unauthorized,
    Throttled(std::time::Duration),
    Internal,
}

impl From<ScimError> for Failure {
    fn from(err: ScimError) -> Self {
        Self::Scim(err)
    }
}

impl From<StoreError> for Failure {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => Self::Scim(ScimError::Uniqueness(format!("that {what} exists already"))),
            err => {
                tracing::error!(error = %err, "a SCIM request failed in the store");
                Self::Internal
            }
        }
    }
}

impl From<ConversationError> for Failure {
    fn from(err: ConversationError) -> Self {
        match err {
            ConversationError::Store(err) => err.into(),
            err => {
                tracing::error!(error = %err, "closing an account's conversations failed");
                Self::Internal
            }
        }
    }
}

impl From<AccountError> for Failure {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::Invalid(fields) => Self::Scim(ScimError::InvalidValue(
                fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "),
            )),
            AccountError::AccountExists => Self::Scim(ScimError::Uniqueness("an account has this email".into())),
            AccountError::Throttled(wait) => Self::Throttled(wait),
            AccountError::Store(err) => err.into(),
            err => {
                tracing::error!(error = %err, "a SCIM request failed");
                Self::Internal
            }
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            Self::Scim(err) => (err.status(), err.body()),
            Self::Unauthorized => (401, conclave_scim::error_body(401, None, "a valid SCIM bearer token is required")),
            Self::Throttled(_) => (429, conclave_scim::error_body(429, None, "too many requests; try again later")),
            Self::Internal => (500, conclave_scim::error_body(500, None, "something went wrong on the server")),
        };
        let mut response = scim_json(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), &body, None);
        if let Self::Unauthorized = self {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::Throttled(wait) = self {
            if let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

type ScimResult<T> = Result<T, Failure>;

fn scim_json(status: StatusCode, body: &Value, etag: Option<&str>) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(conclave_scim::CONTENT_TYPE));
    if let Some(value) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// A resource with its ETag (RFC 7644 §3.14: weak, from its content).
fn resource_response(status: StatusCode, resource: Value) -> Response {
    let etag = resource["meta"]["version"].as_str().map(str::to_owned);
    scim_json(status, &resource, etag.as_deref())
}

fn version_of(resource: &Value) -> String {
    let digest = Sha256::digest(resource.to_string().as_bytes());
    format!("W/\"{}\"", data_encoding::HEXLOWER.encode(&digest[..8]))
}

/// Refuses a change to a resource that is no longer the version the
/// request names (`If-Match`), so two provisioning runs cannot overwrite
/// each other unseen.
fn check_if_match(headers: &HeaderMap, resource: &Value) -> ScimResult<()> {
    let Some(wanted) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else { return Ok(()) };
    let current = resource["meta"]["version"].as_str().unwrap_or_default();
    if wanted.split(',').map(str::trim).any(|w| w == "*" || w == current) {
        Ok(())
    } else {
        Err(Failure::Scim(ScimError::PreconditionFailed("the resource changed since that version".into())))
    }
}

fn read_json(body: &Bytes) -> ScimResult<Value> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ScimError::InvalidSyntax(format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ScimError::InvalidSyntax("the body is a JSON object".into()).into());
    }
    Ok(value)
}

// Authentication.

/// The identity provider a request comes from: the organisation whose
/// token it carries, and the address it came from. Wrong tokens spend the
/// source address's budget of sensitive requests, so tokens cannot be
/// guessed at speed; every refusal is audited.
pub struct Provider {
    org_id: String,
    ip: IpAddr,
}

impl axum::extract::FromRequestParts<SharedState> for Provider {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &SharedState) -> ScimResult<Self> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await.map_err(|_| Failure::Internal)?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if let Some(token) = token {
            if let Some(org_id) = state.store.scim_token_org(&TokenHash::of(token).0).await? {
                return Ok(Self { org_id, ip });
            }
        }
        accounts::check_sensitive_rate(state, ip)?;
        let refused = Audit {
            source_ip: Some(ip),
            detail: "unknown SCIM token",
            ..Audit::new(AuditAction::ScimAuth, AuditOutcome::Failure)
        };
        state.audit(refused).await.map_err(Failure::from)?;
        Err(Failure::Unauthorized)
    }
}

fn base_url(state: &SharedState) -> String {
    format!("{}{BASE_PATH}", state.config.public_url.trim_end_matches('/'))
}

// Discovery.

async fn service_provider_config(State(state): State<SharedState>, _: Provider) -> ScimResult<Response> {
    Ok(scim_json(StatusCode::OK, &discovery::service_provider_config(&base_url(&state)), None))
}

async fn resource_types(State(state): State<SharedState>, _: Provider) -> ScimResult<Response> {
    Ok(scim_json(StatusCode::OK, &discovery::list(discovery::resource_types(&base_url(&state))), None))
}

async fn resource_type(State(state): State<SharedState>, _: Provider, Path(id): Path<String>) -> ScimResult<Response> {
    let found = discovery::resource_types(&base_url(&state)).into_iter().find(|r| r["id"] == id.as_str());
    let found = found.ok_or_else(|| ScimError::NotFound(format!("no resource type {id}")))?;
    Ok(scim_json(StatusCode::OK, &found, None))
}

async fn schemas(State(state): State<SharedState>, _: Provider) -> ScimResult<Response> {
    Ok(scim_json(StatusCode::OK, &discovery::list(discovery::schemas(&base_url(&state))), None))
}

async fn schema(State(state): State<SharedState>, _: Provider, Path(id): Path<String>) -> ScimResult<Response> {
    let found = discovery::schemas(&base_url(&state)).into_iter().find(|s| s["id"] == id.as_str());
    let found = found.ok_or_else(|| ScimError::NotFound(format!("no schema {id}")))?;
    Ok(scim_json(StatusCode::OK, &found, None))
}

// Lists.

/// A query: from the URL of a `GET`, or the body of a `POST …/.search`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Option<String>,
    excluded_attributes: Option<String>,
}

/// What a response shows of each resource.
struct Projection {
    attributes: Vec<AttrPath>,
    excluded: Vec<AttrPath>,
}

impl ListQuery {
    fn projection(&self) -> ScimResult<Projection> {
        let list = |text: &Option<String>| text.as_deref().map(projection::parse_list).transpose();
        Ok(Projection {
            attributes: list(&self.attributes)?.unwrap_or_default(),
            excluded: list(&self.excluded_attributes)?.unwrap_or_default(),
        })
    }

    /// A `SearchRequest` body (RFC 7644 §3.4.3), whose attribute lists are arrays.
    fn from_search(body: &Value) -> ScimResult<Self> {
        let text = |name: &str| conclave_scim::path::get(body, name).and_then(Value::as_str).map(str::to_owned);
        let number = |name: &str| conclave_scim::path::get(body, name).and_then(Value::as_i64);
        let names = |name: &str| -> ScimResult<Option<String>> {
            match conclave_scim::path::get(body, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => {
                    let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                    names.map(|n| Some(n.join(","))).ok_or_else(|| {
                        Failure::Scim(ScimError::InvalidValue(format!("{name} is an array of attribute names")))
                    })
                }
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::InvalidValue(format!("{name} is an array of attribute names")).into()),
            }
        };
        Ok(Self {
            filter: text("filter"),
            start_index: number("startIndex"),
            count: number("count"),
            attributes: names("attributes")?,
            excluded_attributes: names("excludedAttributes")?,
        })
    }
}

impl Projection {
    fn apply(&self, mut resource: Value) -> Value {
        projection::project(&mut resource, &self.attributes, &self.excluded);
        resource
    }
}

/// Which resources a list or search covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    Users,
    Groups,
    /// A search from the root (RFC 7644 §3.4.3): users and groups alike.
    All,
}

async fn list(
    State(state): State<SharedState>,
    Provider { org_id, .. }: Provider,
    Query(query): Query<ListQuery>,
    listing: Listing,
) -> ScimResult<Response> {
    listed(&state, &org_id, listing, &query).await
}

async fn search(
    State(state): State<SharedState>,
    Provider { org_id, .. }: Provider,
    body: Bytes,
    listing: Listing,
) -> ScimResult<Response> {
    listed(&state, &org_id, listing, &ListQuery::from_search(&read_json(&body)?)?).await
}

/// One page of the resources the query's filter matches, as it asks to
/// see them.
async fn listed(state: &SharedState, org_id: &str, listing: Listing, query: &ListQuery) -> ScimResult<Response> {
    let filter = query.filter.as_deref().filter(|f| !f.trim().is_empty()).map(Filter::parse).transpose()?;
    let mut resources = Vec::new();
    if listing != Listing::Groups {
        resources.extend(matching_users(state, org_id, filter.as_ref()).await?);
    }
    if listing != Listing::Users {
        let base = base_url(state);
        resources.extend(provisioned_groups(state, org_id).await?.iter().map(|g| render_group(&base, g)));
    }
    Ok(scim_json(StatusCode::OK, &page_of(resources, filter.as_ref(), query)?, None))
}

fn page_of(resources: Vec<Value>, filter: Option<&Filter>, query: &ListQuery) -> ScimResult<Value> {
    let shown = query.projection()?;
    let matching: Vec<Value> = resources.into_iter().filter(|r| filter.is_none_or(|f| f.matches(r))).collect();
    let (start, count) = conclave_scim::page(query.start_index, query.count);
    let total = matching.len();
    let page = matching.into_iter().skip(start - 1).take(count).map(|r| shown.apply(r)).collect();
    Ok(conclave_scim::list_body(total, start, page))
}

// Users.

/// The domain of the address an account provisioned without one gets:
/// `.invalid` never resolves (RFC 2606), so no mail goes there and nobody
/// can sign in with it.
const NO_EMAIL_DOMAIN: &str = "no-email.invalid";

fn has_no_email(user: &UserRow) -> bool {
    user.email.ends_with(&format!("@{NO_EMAIL_DOMAIN}"))
}

/// An account as SCIM shows it: as the provider last described it, with
/// what the server decides (id, userName, standing, groups, meta) laid
/// over. Accounts the provider did not create are shown too (their
/// `userName` is their email), so the provider can find and adopt the
/// people who were there before it.
fn render_user(base: &str, user: &UserRow, groups: &[&ScimGroupRow]) -> Value {
    let described = user.scim_resource.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok());
    // `active` is shown when the provider said it, or when it is not the default.
    let said_active = described.as_ref().is_some_and(|d| conclave_scim::path::get(d, "active").is_some());
    let mut resource = match described {
        Some(Value::Object(mut given)) => {
            if given.keys().any(|k| k.eq_ignore_ascii_case("displayName")) {
                given.retain(|k, _| !k.eq_ignore_ascii_case("displayName"));
                given.insert("displayName".into(), json!(user.display_name));
            }
            Value::Object(given)
        }
        _ => {
            let mut own = json!({"displayName": user.display_name, "name": {"formatted": user.display_name}});
            if !has_no_email(user) {
                own["emails"] = json!([{"value": user.email, "type": "work", "primary": true}]);
            }
            own
        }
    };
    let object = resource.as_object_mut().expect("a resource is an object");
    object.retain(|k, _| !["userName", "externalId", "active", "groups"].iter().any(|n| n.eq_ignore_ascii_case(k)));
    object.insert("schemas".into(), json!([USER_SCHEMA]));
    object.insert("id".into(), json!(user.id));
    object.insert("userName".into(), json!(user.scim_user_name.as_deref().unwrap_or(&user.email)));
    if let Some(external) = &user.scim_external_id {
        object.insert("externalId".into(), json!(external));
    }
    if said_active || user.scim_resource.is_none() || user.status != AccountStatus::Active {
        object.insert("active".into(), json!(user.status == AccountStatus::Active));
    }
    if !groups.is_empty() {
        let groups: Vec<Value> = groups
            .iter()
            .map(|g| json!({"value": g.id, "display": g.display_name, "$ref": format!("{base}/Groups/{}", g.id)}))
            .collect();
        object.insert("groups".into(), Value::Array(groups));
    }
    let version = version_of(&resource);
    resource["meta"] = json!({
        "resourceType": "User",
        "created": rfc3339(user.created_at_ms),
        "lastModified": rfc3339(user.created_at_ms),
        "location": format!("{base}/Users/{}", user.id),
        "version": version,
    });
    resource
}

/// What a request says an account should be.
struct UserFields {
    user_name: String,
    email: String,
    display_name: String,
    external_id: Option<String>,
    /// `None`: the description does not say (a new account is active; an
    /// existing one keeps its standing).
    active: Option<bool>,
    password: Option<String>,
    /// The description to keep, as JSON (without what the server decides).
    resource: String,
}

fn string_at<'a>(resource: &'a Value, name: &str) -> Option<&'a str> {
    AttrPath::simple(name).values(resource).first().and_then(|v| v.as_str())
}

/// Booleans as JSON booleans, or as the strings Entra ID sends.
fn boolean_at(resource: &Value, name: &str) -> ScimResult<Option<bool>> {
    match AttrPath::simple(name).values(resource).first() {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(ScimError::InvalidValue(format!("{name} is a boolean, not {other}")).into()),
    }
}

/// What `resource` says the account is. `current_email` is the account's
/// address now, kept when the description names none and the account had
/// none either.
fn read_user(resource: &Value, current_email: Option<&str>) -> ScimResult<UserFields> {
    let user_name = string_at(resource, "userName")
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ScimError::InvalidValue("userName is required".into()))?
        .to_owned();
    // The address mail goes to: the primary email, else a work one, else
    // the first, else the userName when it is one. A person may have none
    // (then no mail reaches them, and they sign in through the provider).
    let emails: Vec<&Value> = AttrPath::simple("emails").values(resource);
    let value_of = |e: &Value| AttrPath::simple("value").values(e).first().and_then(|v| v.as_str()).map(str::to_owned);
    let chosen = emails
        .iter()
        .find(|e| boolean_at(e, "primary").ok().flatten() == Some(true))
        .or_else(|| emails.iter().find(|e| string_at(e, "type").is_some_and(|t| t.eq_ignore_ascii_case("work"))))
        .or_else(|| emails.first())
        .map(|e| value_of(e).ok_or_else(|| ScimError::InvalidValue("each email has a value".into())))
        .transpose()?;
    let email = match chosen {
        Some(address) => accounts::normalize_email(&address)
            .map_err(|_| ScimError::InvalidValue(format!("{address:?} is not an email address")))?,
        // No address given: the userName when it is one, else the one the
        // account has (a real address is never swapped for none), else none.
        None => match (accounts::normalize_email(&user_name), current_email) {
            (Ok(address), _) => address,
            (Err(_), Some(kept)) => kept.to_owned(),
            (Err(_), None) => {
                format!("{}@{NO_EMAIL_DOMAIN}", data_encoding::HEXLOWER.encode(&rand::random::<[u8; 12]>()))
            }
        },
    };
    let name = AttrPath::simple("name").values(resource).first().cloned().cloned();
    let from_parts = name.as_ref().map(|n| {
        [string_at(n, "givenName"), string_at(n, "familyName")].into_iter().flatten().collect::<Vec<_>>().join(" ")
    });
    let display_name = string_at(resource, "displayName")
        .map(str::to_owned)
        .or_else(|| name.as_ref().and_then(|n| string_at(n, "formatted")).map(str::to_owned))
        .or(from_parts)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| user_name.split('@').next().unwrap_or_default().to_owned());
    let display_name = accounts::validate_display_name(&display_name)?;
    let mut kept = resource.clone();
    if let Some(object) = kept.as_object_mut() {
        object
            .retain(|k, _| !["id", "meta", "schemas", "password", "groups"].iter().any(|n| n.eq_ignore_ascii_case(k)));
    }
    Ok(UserFields {
        user_name,
        email,
        display_name,
        external_id: string_at(resource, "externalId").map(str::to_owned),
        active: boolean_at(resource, "active")?,
        password: string_at(resource, "password").map(str::to_owned),
        resource: kept.to_string(),
    })
}

/// The organisation's account `id`, unless the provider deleted it.
async fn provisioned(state: &SharedState, org_id: &str, id: &str) -> ScimResult<UserRow> {
    state
        .store
        .user_by_id(id)
        .await?
        .filter(|u| u.org_id.as_deref() == Some(org_id) && u.scim_deleted_at_ms.is_none())
        .ok_or_else(|| Failure::Scim(ScimError::NotFound(format!("no user {id}"))))
}

async fn user_resource(state: &SharedState, org_id: &str, user: &UserRow) -> ScimResult<Value> {
    let groups = provisioned_groups(state, org_id).await?;
    let theirs: Vec<&ScimGroupRow> = groups.iter().filter(|g| g.members.contains(&user.id)).collect();
    Ok(render_user(&base_url(state), user, &theirs))
}

/// The accounts a filter can match, rendered. A lookup by userName,
/// externalId or id (what providers send before creating each person)
/// reads only who it can match.
async fn matching_users(state: &SharedState, org_id: &str, filter: Option<&Filter>) -> ScimResult<Vec<Value>> {
    let lookup = filter.and_then(|f| f.simple_equality()).and_then(|(path, value)| {
        if path.urn.is_some() || path.sub.is_some() {
            return None;
        }
        match path.name.to_ascii_lowercase().as_str() {
            "username" => Some(Lookup::UserName(value)),
            "externalid" => Some(Lookup::ExternalId(value)),
            "id" => Some(Lookup::Id(value)),
            _ => None,
        }
    });
    let users = match lookup {
        Some(lookup) => state.store.provisioned_candidates(org_id, lookup).await?,
        None => state.store.list_org_members(org_id).await?,
    };
    render_users(state, org_id, &users).await
}

async fn render_users(state: &SharedState, org_id: &str, users: &[UserRow]) -> ScimResult<Vec<Value>> {
    let base = base_url(state);
    let groups = provisioned_groups(state, org_id).await?;
    // Each account's groups, found once for the whole page.
    let mut groups_of: std::collections::HashMap<&str, Vec<&ScimGroupRow>> = std::collections::HashMap::new();
    for group in &groups {
        for member in &group.members {
            groups_of.entry(member.as_str()).or_default().push(group);
        }
    }
    Ok(users
        .iter()
        .filter(|u| u.scim_deleted_at_ms.is_none())
        .map(|u| render_user(&base, u, groups_of.get(u.id.as_str()).map_or(&[][..], Vec::as_slice)))
        .collect())
}

async fn get_user(
    State(state): State<SharedState>,
    Provider { org_id, .. }: Provider,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> ScimResult<Response> {
    let user = provisioned(&state, &org_id, &id).await?;
    let resource = user_resource(&state, &org_id, &user).await?;
    let etag = resource["meta"]["version"].as_str().map(str::to_owned);
    Ok(scim_json(StatusCode::OK, &query.projection()?.apply(resource), etag.as_deref()))
}

async fn create_user(
    State(state): State<SharedState>,
    Provider { org_id, ip }: Provider,
    body: Bytes,
) -> ScimResult<Response> {
    let fields = read_user(&read_json(&body)?, None)?;
    if let Some(password) = &fields.password {
        accounts::validate_new_password(password, &fields.email, &fields.display_name)?;
    }
    // Someone the provider deleted and now provisions again (a returning
    // colleague) gets their account back; any other existing address is
    // a conflict.
    if let Some(existing) = state.store.user_by_email(&fields.email).await? {
        if existing.org_id.as_deref() == Some(org_id.as_str()) && existing.scim_deleted_at_ms.is_some() {
            let user = apply_user(&state, &org_id, existing, &fields, ip).await?;
            return Ok(resource_response(StatusCode::CREATED, user_resource(&state, &org_id, &user).await?));
        }
        return Err(ScimError::Uniqueness(format!("an account has the email {}", fields.email)).into());
    }
    let password_hash = match &fields.password {
        Some(password) => state.hash_password(password.clone()).await,
        None => NO_PASSWORD.to_owned(),
    };
    let active = fields.active.unwrap_or(true);
    let record = ProvisionedUser {
        email: &fields.email,
        display_name: &fields.display_name,
        user_name: &fields.user_name,
        external_id: fields.external_id.as_deref(),
        active,
        resource: &fields.resource,
    };
    let user = state.store.provision_user(&org_id, &record, &password_hash, state.now_ms()).await?;
    audit(&state, &org_id, ip, AuditAction::ScimUserProvision, &user.id, "created").await?;
    // Where passwords are off, the person signs in through the provider and
    // has no password to choose.
    let passwords_off = accounts::passwords_off(&state, &user).await?;
    if fields.password.is_none() && active && state.mailer.is_enabled() && !passwords_off {
        email_link(&state, &user, LinkPurpose::Welcome).await?;
    }
    Ok(resource_response(StatusCode::CREATED, user_resource(&state, &org_id, &user).await?))
}

/// Makes `user` what `fields` say: names and address, password when given,
/// and its standing (closing it everywhere, or opening it again).
async fn apply_user(
    state: &SharedState,
    org_id: &str,
    user: UserRow,
    fields: &UserFields,
    ip: IpAddr,
) -> ScimResult<UserRow> {
    // Owners are the organisation's in Conclave: an identity provider (and
    // whoever holds its token) reads them but never changes or closes them.
    if user.role == Some(OrgRole::Owner) {
        return Err(ScimError::Mutability("owners are managed in Conclave, not by the identity provider".into()).into());
    }
    // A password is the provider's to give only until its person has one
    // (else the token would take over accounts).
    let password = fields.password.as_ref().filter(|_| user.password_hash == NO_PASSWORD);
    if let Some(password) = password {
        accounts::validate_new_password(password, &fields.email, &fields.display_name)?;
    }
    let active = fields.active.unwrap_or(user.status == AccountStatus::Active);
    let deactivating = !active && user.status == AccountStatus::Active;
    let record = ProvisionedUser {
        email: &fields.email,
        display_name: &fields.display_name,
        user_name: &fields.user_name,
        external_id: fields.external_id.as_deref(),
        active,
        resource: &fields.resource,
    };
    let revived = user.scim_deleted_at_ms.is_some();
    state.store.update_provisioned_user(&user.id, &record).await?;
    if let Some(password) = password {
        let hash = state.hash_password(password.clone()).await;
        state.store.set_password_hash(&user.id, &hash).await?;
    }
    let detail = if revived { "provisioned again" } else { "changed" };
    let action = if revived { AuditAction::ScimUserProvision } else { AuditAction::ScimUserUpdate };
    audit(state, org_id, ip, action, &user.id, detail).await?;
    if deactivating {
        let closed = crate::offboarding::close_account(state, &user.id).await?;
        let detail = format!("by the identity provider: {}", closed.describe());
        audit(state, org_id, ip, AuditAction::OrgMemberDeactivate, &user.id, &detail).await?;
    } else if active && user.status != AccountStatus::Active {
        state.store.reactivate_user(&user.id, state.now_ms()).await?;
        audit(state, org_id, ip, AuditAction::OrgMemberReactivate, &user.id, "by the identity provider").await?;
        crate::provider_groups::account_returned(state, org_id, &user.id).await?;
    }
    state.store.user_by_id(&user.id).await?.ok_or_else(|| Failure::Scim(ScimError::NotFound("no such user".into())))
}

async fn replace_user(
    State(state): State<SharedState>,
    Provider { org_id, ip }: Provider,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult<Response> {
    let user = provisioned(&state, &org_id, &id).await?;
    check_if_match(&headers, &user_resource(&state, &org_id, &user).await?)?;
    let fields = read_user(&read_json(&body)?, Some(&user.email))?;
    let user = apply_user(&state, &org_id, user, &fields, ip).await?;
    Ok(resource_response(StatusCode::OK, user_resource(&state, &org_id, &user).await?))
}

async fn patch_user(
    State(state): State<SharedState>,
    Provider { org_id, ip }: Provider,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult<Response> {
    let user = provisioned(&state, &org_id, &id).await?;
    let mut resource = user_resource(&state, &org_id, &user).await?;
    check_if_match(&headers, &resource)?;
    let ops = patch::parse(&read_json(&body)?)?;
    let said_active = conclave_scim::path::get(&resource, "active").is_some();
    patch::apply(&mut resource, &ops)?;
    let mut fields = read_user(&resource, Some(&user.email))?;
    // `active` removed outright is the default again (an open account);
    // a description that never spoke of it changes nothing.
    if said_active && fields.active.is_none() {
        fields.active = Some(true);
    }
    let user = apply_user(&state, &org_id, user, &fields, ip).await?;
    Ok(resource_response(StatusCode::OK, user_resource(&state, &org_id, &user).await?))
}

/// The provider deleted the person: the account is closed everywhere, out
/// of every group, and gone from SCIM; it stays for the audit log.
async fn delete_user(
    State(state): State<SharedState>,
    Provider { org_id, ip }: Provider,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ScimResult<Response> {
    let user = provisioned(&state, &org_id, &id).await?;
    check_if_match(&headers, &user_resource(&state, &org_id, &user).await?)?;
    if user.role == Some(OrgRole::Owner) {
        return Err(ScimError::Mutability("owners are managed in Conclave, not by the identity provider".into()).into());
    }
    let closed = crate::offboarding::close_account(&state, &user.id).await?;
    state.store.leave_scim_groups(&user.id).await?;
    state.store.mark_scim_deleted(&user.id, state.now_ms()).await?;
    let detail = format!("deleted by the identity provider: {}", closed.describe());
    audit(&state, &org_id, ip, AuditAction::OrgMemberDeactivate, &user.id, &detail).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// Groups.

fn render_group(base: &str, group: &ScimGroupRow) -> Value {
    let mut resource = json!({
        "schemas": [GROUP_SCHEMA],
        "id": group.id,
        "displayName": group.display_name,
        "members": group.members.iter().map(|id| json!({"value": id, "$ref": format!("{base}/Users/{id}")})).collect::<Vec<_>>(),
    });
    if let Some(external) = &group.external_id {
        resource["externalId"] = json!(external);
    }
    let version = version_of(&resource);
    resource["meta"] = json!({
        "resourceType": "Group",
        "created": rfc3339(group.created_at_ms),
        "lastModified": rfc3339(group.updated_at_ms),
        "location": format!("{base}/Groups/{}", group.id),
        "version": version,
    });
    resource
}

struct GroupFields {
    display_name: String,
    external_id: Option<String>,
    members: Vec<String>,
}

/// A group as the request describes it; its members must be accounts of
/// the organisation the provider still manages.
fn read_group(resource: &Value, users: &[UserRow]) -> ScimResult<GroupFields> {
    let display_name = string_at(resource, "displayName")
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.chars().count() <= 200)
        .ok_or_else(|| ScimError::InvalidValue("displayName is required (200 characters at most)".into()))?
        .to_owned();
    let mut members = Vec::new();
    for member in conclave_scim::path::AttrPath::simple("members").values(resource) {
        let id = conclave_scim::path::AttrPath::simple("value")
            .values(member)
            .first()
            .and_then(|v| v.as_str())
            .ok_or_else(|| ScimError::InvalidValue("each member has a value: a user's id".into()))?;
        if !users.iter().any(|u| u.id == id && u.scim_deleted_at_ms.is_none()) {
            return Err(ScimError::InvalidValue(format!("no user {id} in this organisation")).into());
        }
        members.push(id.to_owned());
    }
    members.sort();
    members.dedup();
    Ok(GroupFields { display_name, external_id: string_at(resource, "externalId").map(str::to_owned), members })
}

async fn group_of(state: &SharedState, org_id: &str, id: &str) -> ScimResult<ScimGroupRow> {
    state
        .store
        .scim_group(org_id, id)
        .await?
        .filter(|g| g.provider_id.is_none())
        .ok_or_else(|| Failure::Scim(ScimError::NotFound(format!("no group {id}"))))
}

/// The groups SCIM provisions: not those an OpenID provider's `groups`
/// claim named, which are that provider's alone.
async fn provisioned_groups(state: &SharedState, org_id: &str) -> ScimResult<Vec<ScimGroupRow>> {
    let mut groups = state.store.scim_groups(org_id).await?;
    groups.retain(|g| g.provider_id.is_none());
    Ok(groups)
}

async fn get_group(
    State(state): State<SharedState>,
    Provider { org_id, .. }: Provider,
    Path(id): Path<String>,
    Query(query): Query<ListQuery>,
) -> ScimResult<Response> {
    let group = group_of(&state, &org_id, &id).await?;
    let resource = render_group(&base_url(&state), &group);
    let etag = resource["meta"]["version"].as_str().map(str::to_owned);
    Ok(scim_json(StatusCode::OK, &query.projection()?.apply(resource), etag.as_deref()))
}

async fn create_group(
    State(state): State<SharedState>,
    Provider { org_id, ip }: Provider,
    body: Bytes,
) -> ScimResult<Response> {
    let users = state.store.list_org_members(&org_id).await?;
    let fields = read_group(&read_json(&body)?, &users)?;
    let taken = provisioned_groups(&state, &org_id).await?.into_iter().any(|g| g.display_name == fields.display_name);
    if taken {
        return Err(ScimError::Uniqueness(format!("a group is called {}", fields.display_name)).into());
    }
    let group = state
        .store
        .create_scim_group(
            &org_id,
            &fields.display_name,
            fields.external_id.as_deref(),
            &fields.members,
            state.now_ms(),
        )
        .await?;
    audit(&state, &org_id, ip, AuditAction::ScimGroupUpdate, &group.id, "created").await?;
    crate::provider_groups::group_changed(&state, &org_id, None, Some(&group)).await?;
    Ok(resource_response(StatusCode::CREATED, render_group(&base_url(&state), &group)))
}

async fn store_group(
    state: &SharedState,
    org_id: &str,
    before: &ScimGroupRow,
    fields: &GroupFields,
    ip: IpAddr,
) -> ScimResult<Response> {
    let id = before.id.as_str();
    state
        .store
        .replace_scim_group(
            org_id,
            id,
            &fields.display_name,
            fields.external_id.as_deref(),
            &fields.members,
            state.now_ms(),
        )
        .await?;
    let detail = format!("{} members", fields.members.len());
    audit(state, org_id, ip, AuditAction::ScimGroupUpdate, id, &detail).await?;
    let group = group_of(state, org_id, id).await?;
    crate::provider_groups::group_changed(state, org_id, Some(before), Some(&group)).await?;
    Ok(resource_response(StatusCode::OK, render_group(&base_url(state), &group)))
}

async fn replace_group(
    State(state): State<SharedState>,
    Provider { org_id, ip }: Provider,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult<Response> {
    let group = group_of(&state, &org_id, &id).await?;
    let users = state.store.list_org_members(&org_id).await?;
    check_if_match(&headers, &render_group(&base_url(&state), &group))?;
    let fields = read_group(&read_json(&body)?, &users)?;
    store_group(&state, &org_id, &group, &fields, ip).await
}

async fn patch_group(
    State(state): State<SharedState>,
    Provider { org_id, ip }: Provider,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult<Response> {
    let group = group_of(&state, &org_id, &id).await?;
    let users = state.store.list_org_members(&org_id).await?;
    let mut resource = render_group(&base_url(&state), &group);
    check_if_match(&headers, &resource)?;
    let ops = patch::parse(&read_json(&body)?)?;
    patch::apply(&mut resource, &ops)?;
    let fields = read_group(&resource, &users)?;
    store_group(&state, &org_id, &group, &fields, ip).await
}

async fn delete_group(
    State(state): State<SharedState>,
    Provider { org_id, ip }: Provider,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ScimResult<Response> {
    let group = group_of(&state, &org_id, &id).await?;
    check_if_match(&headers, &render_group(&base_url(&state), &group))?;
    state.store.delete_scim_group(&org_id, &id).await?;
    audit(&state, &org_id, ip, AuditAction::ScimGroupUpdate, &id, "deleted").await?;
    crate::provider_groups::group_changed(&state, &org_id, Some(&group), None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn audit(
    state: &SharedState,
    org_id: &str,
    ip: IpAddr,
    action: AuditAction,
    target: &str,
    detail: &str,
) -> ScimResult<()> {
    let event = Audit::new(action, AuditOutcome::Success).org(org_id).target(target).detail(detail);
    state.audit(Audit { source_ip: Some(ip), ..event }).await.map_err(Failure::from)
}

/// RFC 3339 in UTC, as SCIM's `meta` dates are written.
fn rfc3339(ms: i64) -> String {
    crate::clock::UtcTime::from_ms(ms).rfc3339()
}

// The organisation's side: its administrators make the provider's token.

/// Where the identity provider provisions this organisation, and whether
/// it has a token.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/scim", operation_id = "scimStatus", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 200, description = "The SCIM base URL and token state", body = ScimStatus),
        (status = 403, description = "Not an admin", body = Problem), (status = 404, description = "Not found", body = Problem)))]
pub async fn status(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<ApiJson<ScimStatus>> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgScimToken).await?;
    let token_created_at_ms = state.store.scim_token_created(&org_id).await?;
    Ok(ApiJson(ScimStatus { base_url: base_url(&state), token_created_at_ms }))
}

/// Make the identity provider's SCIM token (shown once; any earlier token
/// stops working).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/scim/token", operation_id = "createScimToken", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 201, description = "The new token, shown once", body = ScimTokenCreated),
        (status = 403, description = "Not an admin", body = Problem), (status = 404, description = "Not found", body = Problem)))]
pub async fn create_token(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<(StatusCode, ApiJson<ScimTokenCreated>)> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgScimToken).await?;
    let token = OpaqueToken::generate_with_prefix("scim_");
    state.store.put_scim_token(&org_id, &token.hash().0, &current.user.id, state.now_ms()).await?;
    state
        .audit(current.audit(ip, AuditAction::OrgScimToken, AuditOutcome::Success).org(&org_id).detail("made"))
        .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(ScimTokenCreated { base_url: base_url(&state), token: token.as_str().to_owned() }),
    ))
}

/// Revoke the identity provider's SCIM token.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/scim/token", operation_id = "revokeScimToken", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No token, or not found", body = Problem)))]
pub async fn revoke_token(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<StatusCode> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgScimToken).await?;
    if !state.store.delete_scim_token(&org_id).await? {
        return Err(ApiError::not_found("SCIM token"));
    }
    state
        .audit(current.audit(ip, AuditAction::OrgScimToken, AuditOutcome::Success).org(&org_id).detail("revoked"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn mapping_view(group: &ScimGroupRow) -> ScimGroupMapping {
    ScimGroupMapping {
        id: group.id.clone(),
        display_name: group.display_name.clone(),
        member_count: group.members.len() as u32,
        role: group.role,
        channel_id: group.channel_id.clone(),
    }
}

/// The identity provider's groups, and what each means here.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/scim/groups", operation_id = "listScimGroups", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 200, description = "The provider's groups", body = ScimGroupList),
        (status = 403, description = "Not an admin", body = Problem), (status = 404, description = "Not found", body = Problem)))]
pub async fn list_group_mappings(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<ApiJson<ScimGroupList>> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgScimToken).await?;
    let groups = state.store.scim_groups(&org_id).await?;
    Ok(ApiJson(ScimGroupList { groups: groups.iter().map(mapping_view).collect() }))
}

/// Say what one of the provider's groups means: a role for its members
/// (`admin` or `member`), a team channel they are put in; its members are
/// brought in line at once, and whenever the group changes.
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/scim/groups/{group_id}", operation_id = "mapScimGroup", tag = "organisations",
    params(("org_id" = String, Path), ("group_id" = String, Path)), request_body = MapScimGroupRequest,
    responses((status = 200, description = "What the group now means", body = ScimGroupMapping),
        (status = 403, description = "Not an admin", body = Problem), (status = 404, description = "No such group", body = Problem),
        (status = 422, description = "Not a role a group can give, or not a channel of this organisation", body = Problem)))]
pub async fn map_group(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path((org_id, group_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<MapScimGroupRequest>,
) -> ApiResult<ApiJson<ScimGroupMapping>> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::ScimGroupUpdate).await?;
    if req.role == Some(OrgRole::Owner) {
        return Err(ApiError::field("role", "a group makes admins or members, never owners"));
    }
    if let Some(channel_id) = &req.channel_id {
        let channel = state.store.conversation(channel_id).await?;
        if !channel.is_some_and(|c| c.org_id == org_id && c.kind == "channel") {
            return Err(ApiError::field("channel_id", "not a channel of this organisation"));
        }
    }
    let before = state.store.scim_group(&org_id, &group_id).await?.ok_or_else(|| ApiError::not_found("group"))?;
    state.store.map_scim_group(&org_id, &group_id, req.role, req.channel_id.as_deref()).await?;
    let after = state.store.scim_group(&org_id, &group_id).await?.ok_or_else(|| ApiError::not_found("group"))?;
    crate::provider_groups::group_changed(&state, &org_id, Some(&before), Some(&after)).await?;
    let detail = format!(
        "means role {}, channel {}",
        after.role.map_or("none", OrgRole::as_str),
        after.channel_id.as_deref().unwrap_or("none")
    );
    let event = current.audit(ip, AuditAction::ScimGroupUpdate, AuditOutcome::Success).org(&org_id);
    state.audit(event.target(&group_id).detail(&detail)).await?;
    Ok(ApiJson(mapping_view(&after)))
}
