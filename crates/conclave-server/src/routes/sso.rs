//! Sign-in through the organisation's OpenID provider, over HTTP: the
//! providers an owner connects, how an address may sign in, and the
//! browser's round trip (start → provider → callback). The start is a POST
//! from the app's own page (another site cannot start a sign-in for the
//! browser and land it in someone else's account); the callback is a page
//! the browser lands on, so it answers with a redirect into the app:
//! signed in, or to the sign-in page with a short reason (`sso_error`) the
//! app explains; the full reason is in the audit log.
//!
//! Connecting a provider is an owner's act: whoever controls a provider
//! can sign in as any of the organisation's people it names. And a domain
//! belongs to one organisation: another organisation's provider, or its
//! people's addresses, keep it from being claimed.

use crate::accounts;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp};
use crate::routes::orgs::authorize;
use crate::sso::{self, SsoError, BROWSER_COOKIE};
use crate::state::{Audit, SharedState};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::{
    CreateIdentityProviderRequest, IdentityProvider, IdentityProviderList, OrgRole, Problem, ProblemCode,
    ProviderSignInOption, ProviderSignInStart, SignInOptions, StartProviderSignInRequest,
    UpdateIdentityProviderRequest,
};
use conclave_store::{IdentityProviderRow, ProviderSettings, StoreError};
use serde::Deserialize;
use std::net::IpAddr;

/// Most providers one organisation connects.
const MAX_PROVIDERS: usize = 10;
const MAX_DOMAINS: usize = 50;

fn provider_view(state: &SharedState, row: &IdentityProviderRow) -> IdentityProvider {
    IdentityProvider {
        id: row.id.clone(),
        org_id: row.org_id.clone(),
        name: row.name.clone(),
        issuer: row.issuer.clone(),
        client_id: row.client_id.clone(),
        allowed_domains: row.allowed_domains.clone(),
        create_accounts: row.create_accounts,
        redirect_uri: sso::callback_url(state, &row.id),
        created_at_ms: row.created_at_ms,
    }
}

/// The fields of a provider, checked together (every problem at once).
struct Checked {
    name: String,
    issuer: String,
    client_id: String,
    client_secret: String,
    domains: Vec<String>,
}

impl Checked {
    /// The client secret sealed for the organisation, as it is stored.
    fn sealed_secret(&self, state: &SharedState, org_id: &str) -> String {
        state.secrets.seal(crate::secrets::Purpose::ProviderClientSecret, org_id, self.client_secret.as_bytes())
    }

    fn settings<'a>(&'a self, sealed_client_secret: &'a str, create_accounts: bool) -> ProviderSettings<'a> {
        ProviderSettings {
            name: &self.name,
            issuer: &self.issuer,
            client_id: &self.client_id,
            sealed_client_secret,
            allowed_domains: &self.domains,
            create_accounts,
        }
    }
}

fn check(
    state: &SharedState,
    name: &str,
    issuer: &str,
    client_id: &str,
    secret: &str,
    domains: &[String],
) -> ApiResult<Checked> {
    let mut errors = Vec::new();
    let mut error = |field: &str, message: &str| {
        errors.push(conclave_proto::problem::FieldError { field: field.into(), message: message.into() })
    };
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        error("name", "must be 1 to 64 characters");
    }
    let issuer = issuer.trim().trim_end_matches('/');
    match url::Url::parse(issuer) {
        Ok(url) if url.scheme() == "https" || (url.scheme() == "http" && state.config.allow_local_outbound) => {
            if url.query().is_some() || url.fragment().is_some() || issuer.len() > 512 {
                error("issuer", "must be the provider's issuer identifier, without query or fragment");
            }
        }
        _ => error("issuer", "must be an https:// URL (the provider's issuer identifier)"),
    }
    let client_id = client_id.trim();
    if client_id.is_empty() || client_id.len() > 512 {
        error("client_id", "must be 1 to 512 characters");
    }
    if secret.is_empty() || secret.len() > 2048 {
        error("client_secret", "must be 1 to 2048 characters");
    }
    let mut normalised: Vec<String> = Vec::new();
    for domain in domains {
        let domain = domain.trim().trim_start_matches('@').to_lowercase();
        let plausible = !domain.is_empty()
            && domain.len() <= 253
            && domain.contains('.')
            && domain
                .split('.')
                .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !plausible {
            error("allowed_domains", "each must be a domain name such as acme.example");
        } else if !normalised.contains(&domain) {
            normalised.push(domain);
        }
    }
    if normalised.is_empty() || normalised.len() > MAX_DOMAINS {
        error("allowed_domains", "name 1 to 50 email domains whose people sign in through this provider");
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(Checked {
        name: name.to_owned(),
        issuer: issuer.to_owned(),
        client_id: client_id.to_owned(),
        client_secret: secret.to_owned(),
        domains: normalised,
    })
}

/// A domain is the organisation's to claim only when nothing outside it
/// speaks for addresses there.
async fn claimable(state: &SharedState, org_id: &str, domains: &[String]) -> ApiResult<()> {
    for domain in domains {
        if state.store.domain_belongs_elsewhere(org_id, domain).await? {
            return Err(ApiError::field(
                "allowed_domains",
                format!("{domain} belongs to another organisation on this server (its provider or its people)"),
            ));
        }
    }
    Ok(())
}

/// The provider's discovery must work before it is saved: a typo is
/// caught by the administrator, not by everyone at sign-in.
async fn discoverable(state: &SharedState, issuer: &str) -> ApiResult<()> {
    state.relying_party.discover(issuer).await.map(|_| ()).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            ProblemCode::ProviderUnavailable,
            "The identity provider did not answer as one",
        )
        .with_detail(err.to_string())
    })
}

/// The organisation's OpenID providers.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/identity-providers", operation_id = "listIdentityProviders", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 200, description = "Connected providers", body = IdentityProviderList),
        (status = 403, description = "Not an admin", body = Problem), (status = 404, description = "Not found", body = Problem)))]
pub async fn list(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<ApiJson<IdentityProviderList>> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgIdentityProvider).await?;
    let rows = state.store.identity_providers(Some(&org_id)).await?;
    Ok(ApiJson(IdentityProviderList { providers: rows.iter().map(|r| provider_view(&state, r)).collect() }))
}

/// Connects an OpenID provider. Register `redirect_uri` (in the answer) at
/// the provider for this client.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/identity-providers", operation_id = "addIdentityProvider", tag = "organisations",
    params(("org_id" = String, Path)), request_body = CreateIdentityProviderRequest,
    responses((status = 201, description = "Connected", body = IdentityProvider),
        (status = 403, description = "Not an owner", body = Problem), (status = 409, description = "This client is connected already", body = Problem),
        (status = 422, description = "Invalid fields, or a domain another organisation speaks for", body = Problem),
        (status = 502, description = "The issuer's discovery document could not be read", body = Problem)))]
pub async fn create(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
    ApiJson(req): ApiJson<CreateIdentityProviderRequest>,
) -> ApiResult<(StatusCode, ApiJson<IdentityProvider>)> {
    authorize(&state, &current, &org_id, OrgRole::Owner, ip, AuditAction::OrgIdentityProvider).await?;
    let id = req.id.trim();
    let short_name = (2..=40).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !short_name {
        return Err(ApiError::field("id", "must be 2 to 40 of a-z, 0-9 and -, starting with a letter or digit"));
    }
    let checked = check(&state, &req.name, &req.issuer, &req.client_id, &req.client_secret, &req.allowed_domains)?;
    claimable(&state, &org_id, &checked.domains).await?;
    if state.store.identity_providers(Some(&org_id)).await?.len() >= MAX_PROVIDERS {
        return Err(ApiError::field("issuer", format!("an organisation connects {MAX_PROVIDERS} providers at most")));
    }
    discoverable(&state, &checked.issuer).await?;
    let sealed = checked.sealed_secret(&state, &org_id);
    let settings = checked.settings(&sealed, req.create_accounts);
    let row = match state.store.create_identity_provider(id, &org_id, &settings, state.now_ms()).await {
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict(
                ProblemCode::Conflict,
                "this short name is taken on this server, or this provider's client is connected already",
            ));
        }
        other => other?,
    };
    let event = current.audit(ip, AuditAction::OrgIdentityProvider, AuditOutcome::Success).org(&org_id);
    state.audit(event.target(&row.id).detail(&format!("connected {} ({})", row.name, row.issuer))).await?;
    Ok((StatusCode::CREATED, ApiJson(provider_view(&state, &row))))
}

async fn own_provider(state: &SharedState, org_id: &str, provider_id: &str) -> ApiResult<IdentityProviderRow> {
    state
        .store
        .identity_provider(provider_id)
        .await?
        .filter(|p| p.org_id == org_id)
        .ok_or_else(|| ApiError::not_found("identity provider"))
}

/// Changes a provider; only the fields sent change.
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/identity-providers/{provider_id}", operation_id = "updateIdentityProvider", tag = "organisations",
    params(("org_id" = String, Path), ("provider_id" = String, Path)), request_body = UpdateIdentityProviderRequest,
    responses((status = 200, description = "Changed", body = IdentityProvider),
        (status = 403, description = "Not an admin", body = Problem), (status = 404, description = "Not found", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
        (status = 502, description = "The new issuer's discovery document could not be read", body = Problem)))]
pub async fn update(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path((org_id, provider_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<UpdateIdentityProviderRequest>,
) -> ApiResult<ApiJson<IdentityProvider>> {
    authorize(&state, &current, &org_id, OrgRole::Owner, ip, AuditAction::OrgIdentityProvider).await?;
    let row = own_provider(&state, &org_id, &provider_id).await?;
    let secret = match &req.client_secret {
        Some(secret) => secret.clone(),
        None => state
            .secrets
            .open(crate::secrets::Purpose::ProviderClientSecret, &org_id, &row.client_secret)
            .ok()
            .and_then(|s| String::from_utf8(s).ok())
            .ok_or_else(|| ApiError::field("client_secret", "the stored secret does not open; send it again"))?,
    };
    let checked = check(
        &state,
        req.name.as_deref().unwrap_or(&row.name),
        req.issuer.as_deref().unwrap_or(&row.issuer),
        req.client_id.as_deref().unwrap_or(&row.client_id),
        &secret,
        req.allowed_domains.as_deref().unwrap_or(&row.allowed_domains),
    )?;
    claimable(&state, &org_id, &checked.domains).await?;
    if checked.issuer != row.issuer {
        discoverable(&state, &checked.issuer).await?;
    }
    let sealed = checked.sealed_secret(&state, &org_id);
    let settings = checked.settings(&sealed, req.create_accounts.unwrap_or(row.create_accounts));
    state.store.update_identity_provider(&row.id, &settings).await?;
    state.relying_party.forget(&row.id);
    // Another issuer or client names people by other subjects: the old
    // links would hand its subjects accounts they are not.
    if checked.issuer != row.issuer || checked.client_id != row.client_id {
        state.store.forget_external_identities(&row.id).await?;
    }
    let event = current.audit(ip, AuditAction::OrgIdentityProvider, AuditOutcome::Success).org(&org_id);
    state.audit(event.target(&row.id).detail(&format!("changed {}", checked.name))).await?;
    let row = own_provider(&state, &org_id, &provider_id).await?;
    Ok(ApiJson(provider_view(&state, &row)))
}

/// Disconnects a provider: the sessions it started end; its people sign in
/// some other way (or not).
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/identity-providers/{provider_id}", operation_id = "removeIdentityProvider", tag = "organisations",
    params(("org_id" = String, Path), ("provider_id" = String, Path)),
    responses((status = 204, description = "Disconnected"),
        (status = 403, description = "Not an admin", body = Problem), (status = 404, description = "Not found", body = Problem)))]
pub async fn remove(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path((org_id, provider_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    authorize(&state, &current, &org_id, OrgRole::Owner, ip, AuditAction::OrgIdentityProvider).await?;
    let row = own_provider(&state, &org_id, &provider_id).await?;
    // Whoever it signed in is signed out: its say ends with it.
    let now = state.now_ms();
    for user_id in state.store.linked_accounts(&row.id).await? {
        state.store.revoke_sessions_of_kind(&user_id, accounts::SessionKind::Provider.as_str(), now).await?;
    }
    state.store.delete_identity_provider(&row.id).await?;
    state.relying_party.forget(&row.id);
    let event = current.audit(ip, AuditAction::OrgIdentityProvider, AuditOutcome::Success).org(&org_id);
    state.audit(event.target(&row.id).detail(&format!("disconnected {}", row.name))).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct OptionsQuery {
    email: String,
}

/// How an address may sign in: the identity providers of the organisations
/// that take its domain. It says nothing of whether the address has an
/// account.
#[utoipa::path(get, path = "/api/v1/auth/sign-in-options", operation_id = "signInOptions", tag = "auth",
    params(("email" = String, Query)),
    responses((status = 200, description = "Ways to sign in", body = SignInOptions),
        (status = 429, description = "Too many requests from this address", body = Problem)))]
pub async fn options(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Query(query): Query<OptionsQuery>,
) -> ApiResult<ApiJson<SignInOptions>> {
    accounts::check_sensitive_rate(&state, ip)?;
    let domain = accounts::normalize_email(&query.email)
        .ok()
        .and_then(|e| e.rsplit_once('@').map(|(_, d)| d.to_owned()))
        .unwrap_or_default();
    let mut providers = Vec::new();
    let mut password_allowed = true;
    for row in state.store.identity_providers(None).await? {
        if !row.allowed_domains.contains(&domain) {
            continue;
        }
        if let Some((_, policy)) = state.store.org_by_id(&row.org_id).await? {
            password_allowed &= !policy.provider_only_sign_in.value;
        }
        providers.push(ProviderSignInOption { provider_id: row.id, name: row.name });
    }
    Ok(ApiJson(SignInOptions { providers, password_allowed }))
}

/// Starts signing in through a provider: where to send the browser, and a
/// cookie that binds the sign-in to it.
#[utoipa::path(post, path = "/api/v1/auth/oidc/{provider_id}/start", operation_id = "startProviderSignIn", tag = "auth",
    params(("provider_id" = String, Path)), request_body = StartProviderSignInRequest,
    responses((status = 200, description = "The identity provider's page to send the browser to", body = ProviderSignInStart),
        (status = 404, description = "No such provider", body = Problem),
        (status = 429, description = "Too many requests from this address", body = Problem),
        (status = 502, description = "The identity provider cannot be reached", body = Problem)))]
pub async fn start(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Path(provider_id): Path<String>,
    ApiJson(req): ApiJson<StartProviderSignInRequest>,
) -> ApiResult<Response> {
    accounts::check_sensitive_rate(&state, ip)?;
    let provider =
        state.store.identity_provider(&provider_id).await?.ok_or_else(|| ApiError::not_found("identity provider"))?;
    let (url, browser) = sso::begin(&state, &provider, req.login_hint.as_deref()).await.map_err(|err| match err {
        SsoError::Store(err) => err.into(),
        other => {
            // The details are the administrators' (logged); whoever signs in learns only that it failed.
            tracing::warn!(provider = %provider.id, error = %other, "a provider sign-in could not start");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                ProblemCode::ProviderUnavailable,
                "The identity provider cannot be reached",
            )
        }
    })?;
    // Lax, not Strict: the provider sends the browser back from its own
    // site, and the callback must see the cookie then.
    let secure = if state.config.secure_cookies() { "; Secure" } else { "" };
    let max_age = sso::SIGN_IN_LIFETIME.as_secs();
    let cookie = format!(
        "{BROWSER_COOKIE}={}; Path=/api/v1/auth/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        browser.as_str()
    );
    let cookie = HeaderValue::from_str(&cookie).expect("cookie values are ASCII");
    Ok(([(header::SET_COOKIE, cookie)], ApiJson(ProviderSignInStart { url })).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    iss: Option<String>,
}

/// Where the provider sends the browser back: the sign-in finishes and the
/// browser lands in the app, signed in (or told why not).
#[utoipa::path(get, path = "/api/v1/auth/oidc/{provider_id}/callback", operation_id = "providerSignInCallback", tag = "auth",
    params(("provider_id" = String, Path), ("code" = Option<String>, Query), ("state" = Option<String>, Query), ("error" = Option<String>, Query), ("iss" = Option<String>, Query)),
    responses((status = 303, description = "Into the app: signed in, or to the sign-in page with `sso_error`")))]
pub async fn callback(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Path(provider_id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let clear = HeaderValue::from_static("conclave_sso=; Path=/api/v1/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=0");
    let (location, cookie) = match finish(&state, ip, &provider_id, &headers, &query).await {
        Ok(outcome) => {
            let max_age = state.config.limits.session_lifetime.as_secs();
            let cookie = super::auth::session_cookie(&state, outcome.token.as_str(), max_age);
            ("/".to_owned(), Some(cookie))
        }
        // Refusals before any sign-in was found (throttled, unknown or
        // replayed state) are not audited: anyone can send those, and the
        // log is for what happened to the organisation's sign-ins.
        Err((code, _, None)) => (format!("/?sso_error={code}"), None),
        Err((code, detail, provider)) => {
            let failure = Audit {
                org_id: provider.as_ref().map(|p| p.org_id.as_str()),
                target: provider.as_ref().map(|p| p.id.as_str()),
                source_ip: Some(ip),
                detail: &detail,
                ..Audit::new(AuditAction::AuthLogin, AuditOutcome::Failure)
            };
            if let Err(err) = state.audit(failure).await {
                tracing::error!(error = ?err, "a failed provider sign-in was not audited");
            }
            (format!("/?sso_error={code}"), None)
        }
    };
    let mut response =
        (StatusCode::SEE_OTHER, [(header::LOCATION, HeaderValue::from_str(&location).expect("ASCII"))]).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, clear);
    if let Some(cookie) = cookie {
        headers.append(header::SET_COOKIE, cookie);
    }
    response
}

type Refusal = (&'static str, String, Option<IdentityProviderRow>);

async fn finish(
    state: &SharedState,
    ip: IpAddr,
    provider_id: &str,
    headers: &HeaderMap,
    query: &CallbackQuery,
) -> Result<accounts::LoginOutcome, Refusal> {
    let sso_failure = |err: SsoError, provider: Option<&IdentityProviderRow>| {
        (err.code(), format!("provider sign-in: {err}"), provider.cloned())
    };
    accounts::check_sensitive_rate(state, ip)
        .map_err(|_| ("too-many-requests", "provider sign-in throttled".to_owned(), None))?;
    let state_param = query.state.as_deref().ok_or_else(|| sso_failure(SsoError::UnknownSignIn, None))?;
    let browser = browser_cookie(headers);
    let (sign_in, provider) =
        sso::take(state, provider_id, state_param, browser).await.map_err(|e| sso_failure(e, None))?;
    // A provider that names itself in its answer (RFC 9207) must be the one
    // the sign-in was started with: an answer mixed up from another
    // provider is refused.
    if let Some(iss) = &query.iss {
        if iss.trim_end_matches('/') != provider.issuer.trim_end_matches('/') {
            let named: String = iss.chars().take(200).collect();
            let err = SsoError::InvalidToken(format!("the answer came from {named}, not {}", provider.issuer));
            return Err(sso_failure(err, Some(&provider)));
        }
    }
    if let Some(error) = &query.error {
        let err = SsoError::ProviderRefused(error.chars().take(100).collect());
        return Err(sso_failure(err, Some(&provider)));
    }
    let code = query
        .code
        .as_deref()
        .ok_or_else(|| sso_failure(SsoError::ProviderRefused("no code".into()), Some(&provider)))?;
    let identity = sso::finish(state, &provider, &sign_in, code).await.map_err(|e| sso_failure(e, Some(&provider)))?;
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    crate::provider_accounts::sign_in(state, &provider, &identity, ip, user_agent).await.map_err(|err| {
        let email = identity.email.as_deref().unwrap_or("no address");
        (
            err.code(),
            format!("provider sign-in of {email} (subject {}): {err}", identity.subject),
            Some(provider.clone()),
        )
    })
}

fn browser_cookie(headers: &HeaderMap) -> Option<&str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == BROWSER_COOKIE).then_some(value)
    })
}
