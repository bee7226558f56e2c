//! Sign-up, sign-in, sign-out, the current account, password change and the
//! one-time setup of a new server.

use crate::accounts::{self, user_view, LoginOutcome, NewAccount};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientIp, EnrollingSession, SESSION_COOKIE};
use crate::state::{Audit, SharedState};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use conclave_auth::TokenHash;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::ProblemCode;
use conclave_proto::{
    ChangePasswordRequest, LoginRequest, LoginResponse, MeResponse, Problem, SetupRequest, SetupStatus, SignupRequest,
};
use conclave_store::NewUser;

fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok())
}

/// The session cookie: HttpOnly so scripts cannot read it, SameSite=Strict
/// so other sites cannot send it, Secure wherever browsers allow.
pub(super) fn session_cookie(state: &SharedState, token: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if state.config.secure_cookies() { "; Secure" } else { "" };
    let value = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}");
    HeaderValue::from_str(&value).expect("cookie values are ASCII")
}

pub(super) fn signed_in(state: &SharedState, outcome: LoginOutcome, status: StatusCode) -> Response {
    let max_age = state.config.limits.session_lifetime.as_secs();
    let cookie = session_cookie(state, outcome.token.as_str(), max_age);
    let body = LoginResponse {
        token: outcome.token.into_string(),
        csrf_token: outcome.session.csrf_token.clone(),
        session_id: outcome.session.id.clone(),
        user: user_view(&outcome.user),
        two_factor_enrollment_required: outcome.needs_enrollment,
    };
    (status, [(header::SET_COOKIE, cookie)], axum::Json(body)).into_response()
}

/// Create an account, from an invitation or (when the server allows it) on
/// one's own; signs the new account in.
#[utoipa::path(post, path = "/api/v1/auth/signup", operation_id = "signup", tag = "auth",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Account created and signed in", body = LoginResponse),
        (status = 400, description = "Invitation unknown, used or expired", body = Problem),
        (status = 403, description = "Registration is by invitation only", body = Problem),
        (status = 409, description = "Email already has an account", body = Problem),
        (status = 422, description = "Invalid email, name or password", body = Problem),
        (status = 429, description = "Too many requests from this address", body = Problem)))]
pub async fn signup(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SignupRequest>,
) -> ApiResult<Response> {
    accounts::check_sensitive_rate(&state, ip)?;
    let account = NewAccount::validate(&req.email, &req.display_name, &req.password)?;
    let invitation = match req.invite_token.as_deref() {
        Some(token) => {
            let invitation = state.store.invitation_by_token_hash(&TokenHash::of(token.trim()).0).await?;
            let invitation =
                invitation.filter(|i| i.is_open(state.now_ms())).ok_or_else(ApiError::invalid_invitation)?;
            if invitation.email != account.email {
                return Err(ApiError::field("email", "must be the address the invitation was sent to"));
            }
            // Where the organisation signs its people in through its
            // provider, an invitation is taken there, not with a password.
            let provider_only = state
                .store
                .org_by_id(&invitation.org_id)
                .await?
                .is_some_and(|(_, policy)| policy.provider_only_sign_in.value);
            if provider_only && invitation.role != conclave_proto::OrgRole::Owner {
                return Err(accounts::AccountError::ProviderSignInRequired.into());
            }
            Some(invitation)
        }
        None if state.config.registration == crate::config::Registration::Open => None,
        None => return Err(ApiError::registration_closed()),
    };
    if state.store.user_by_email(&account.email).await?.is_some() {
        return Err(ApiError::conflict(
            ProblemCode::AccountExists,
            "an account with this email already exists; sign in instead",
        ));
    }
    let hash = state.hash_password(account.password).await;
    let new = NewUser {
        email: &account.email,
        display_name: &account.display_name,
        password_hash: &hash,
        org_id: None,
        role: None,
        now_ms: state.now_ms(),
    };
    let user = match &invitation {
        Some(invitation) => state.store.accept_invitation(invitation, &new).await.map_err(|e| match e {
            conclave_store::StoreError::NotFound(_) => ApiError::invalid_invitation(),
            other => other.into(),
        })?,
        None => state.store.create_user(&new).await?,
    };
    let detail = if invitation.is_some() { "from invitation" } else { "open registration" };
    state
        .audit(Audit {
            org_id: user.org_id.as_deref(),
            actor_id: Some(&user.id),
            target: invitation.as_ref().map(|i| i.id.as_str()),
            source_ip: Some(ip),
            detail,
            ..Audit::new(AuditAction::AuthSignup, AuditOutcome::Success)
        })
        .await?;
    let org = match &user.org_id {
        Some(id) => state.store.org_by_id(id).await?,
        None => None,
    };
    let policy = org.as_ref().map(|(_, p)| p);
    let needs_enrollment = accounts::needs_enrollment(&state, &user, policy, accounts::SessionKind::Password).await?;
    let lifetime = state.config.limits.session_lifetime;
    let (token, session) =
        accounts::start_session(&state, &user.id, "login", None, ip, user_agent(&headers), lifetime).await?;
    Ok(signed_in(&state, LoginOutcome { token, session, user, needs_enrollment }, StatusCode::CREATED))
}

/// Sign in. Returns the session token (also set as an HttpOnly cookie) and a
/// CSRF token for cookie-authenticated requests.
#[utoipa::path(post, path = "/api/v1/auth/login", operation_id = "login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = LoginResponse),
        (status = 401, description = "Wrong credentials, or a second factor is required or wrong", body = Problem),
        (status = 403, description = "Account disabled", body = Problem),
        (status = 429, description = "Locked out for a while after repeated failures", body = Problem)))]
pub async fn login(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let outcome = accounts::login(&state, req, ip, user_agent(&headers)).await?;
    Ok(signed_in(&state, outcome, StatusCode::OK))
}

/// Sign out: revokes this session and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", operation_id = "logout", tag = "auth",
    responses((status = 204, description = "Signed out"), (status = 401, description = "Not signed in", body = Problem)))]
pub async fn logout(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    EnrollingSession(current): EnrollingSession,
) -> ApiResult<Response> {
    state.store.revoke_session(&current.user.id, &current.session.id, state.now_ms()).await?;
    state.audit(current.audit(ip, AuditAction::AuthLogout, AuditOutcome::Success).target(&current.session.id)).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, session_cookie(&state, "", 0))]).into_response())
}

/// The signed-in account, this session's id and its CSRF token.
#[utoipa::path(get, path = "/api/v1/me", operation_id = "me", tag = "auth",
    responses((status = 200, description = "The current account", body = MeResponse),
        (status = 401, description = "Not signed in", body = Problem)))]
pub async fn me(EnrollingSession(current): EnrollingSession) -> ApiJson<MeResponse> {
    ApiJson(MeResponse {
        user: user_view(&current.user),
        session_id: current.session.id.clone(),
        csrf_token: current.session.csrf_token.clone(),
        two_factor_enrollment_required: current.needs_enrollment,
    })
}

/// Change the password. Every other session and access token is revoked.
#[utoipa::path(post, path = "/api/v1/me/password", operation_id = "changePassword", tag = "auth",
    request_body = ChangePasswordRequest,
    responses((status = 204, description = "Changed; other sessions revoked"),
        (status = 401, description = "Current password wrong", body = Problem),
        (status = 422, description = "New password rejected", body = Problem),
        (status = 429, description = "Too many wrong passwords: the account is locked for a while, as at sign-in", body = Problem)))]
pub async fn change_password(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    EnrollingSession(current): EnrollingSession,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let user = &current.user;
    let audit = |outcome, detail| Audit {
        org_id: current.org_id(),
        actor_id: Some(&user.id),
        source_ip: Some(ip),
        detail,
        ..Audit::new(AuditAction::AuthPasswordChange, outcome)
    };
    if accounts::passwords_off(&state, user).await? {
        return Err(accounts::AccountError::ProviderSignInRequired.into());
    }
    accounts::confirm_password(&state, user, req.current_password.clone(), ip, AuditAction::AuthPasswordChange).await?;
    accounts::validate_new_password(&req.new_password, &user.email, &user.display_name)?;
    if req.new_password == req.current_password {
        return Err(ApiError::field("new_password", "must differ from the current password"));
    }
    let hash = state.hash_password(req.new_password).await;
    state.store.set_password_hash(&user.id, &hash).await?;
    let revoked = state.store.revoke_sessions_except(&user.id, Some(&current.session.id), state.now_ms()).await?;
    state.conversations.live.recheck(&user.id, None);
    let detail = format!("{revoked} other sessions revoked");
    state.audit(audit(AuditOutcome::Success, &detail)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the server waits for its first organisation. Public: the app
/// asks before anyone signs in, and what it says is visible anyway to
/// whoever opens a fresh server's page.
#[utoipa::path(get, path = "/api/v1/setup", operation_id = "setupStatus", tag = "auth",
    responses((status = 200, description = "Whether setup is still to be done", body = SetupStatus)))]
pub async fn setup_status(State(state): State<SharedState>) -> ApiResult<ApiJson<SetupStatus>> {
    Ok(ApiJson(SetupStatus { setup_required: state.store.count_orgs().await? == 0 }))
}

/// First run: create the first organisation and its owner with the one-time
/// setup token printed on the server's console.
#[utoipa::path(post, path = "/api/v1/setup", operation_id = "bootstrap", tag = "auth",
    request_body = SetupRequest,
    responses((status = 201, description = "Organisation and owner created; signed in", body = LoginResponse),
        (status = 403, description = "Setup token wrong or already used", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem)))]
pub async fn setup(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SetupRequest>,
) -> ApiResult<Response> {
    accounts::check_sensitive_rate(&state, ip)?;
    let account = NewAccount::validate(&req.email, &req.display_name, &req.password)?;
    accounts::validate_org_name(&req.org_name)?;
    let token_hash = TokenHash::of(req.setup_token.trim()).0;
    if !state.store.take_setting(accounts::SETUP_TOKEN_SETTING, &token_hash).await? {
        let failure = Audit {
            source_ip: Some(ip),
            detail: "wrong or used setup token",
            ..Audit::new(AuditAction::ServerBootstrap, AuditOutcome::Failure)
        };
        state.audit(failure).await?;
        return Err(ApiError::forbidden("the setup token is wrong or was already used"));
    }
    let user = accounts::bootstrap(&state, &req.org_name, account, Some(ip)).await?;
    let lifetime = state.config.limits.session_lifetime;
    let (token, session) =
        accounts::start_session(&state, &user.id, "login", None, ip, user_agent(&headers), lifetime).await?;
    Ok(signed_in(&state, LoginOutcome { token, session, user, needs_enrollment: false }, StatusCode::CREATED))
}
