//! Passkeys over HTTP: a person's own (register, name, remove), and
//! signing in with one alone. Using one after the password goes through
//! `/auth/login` (its second-factor problem carries the challenge).

use crate::accounts::{self, SessionKind};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientIp, EnrollingSession};
use crate::passkeys;
use crate::state::SharedState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::{
    LoginResponse, Passkey, PasskeyChallenge, PasskeyList, PasskeyResponse, Problem, RegisterPasskeyRequest,
    RenamePasskeyRequest,
};
use conclave_store::PasskeyRow;
use std::time::Duration;

/// How recent the sign-in must be to add a passkey: a passkey signs in for
/// good, so a session stolen long after its sign-in must not add one.
const RECENT_SIGN_IN: Duration = Duration::from_secs(15 * 60);

fn view(row: &PasskeyRow) -> Passkey {
    Passkey {
        id: row.id.clone(),
        name: row.name.clone(),
        created_at_ms: row.created_at_ms,
        last_used_at_ms: row.last_used_at_ms,
    }
}

/// The signed-in account's passkeys.
#[utoipa::path(get, path = "/api/v1/me/passkeys", operation_id = "listPasskeys", tag = "passkeys",
    responses((status = 200, description = "Passkeys", body = PasskeyList),
        (status = 401, description = "Not signed in", body = Problem)))]
pub async fn list(
    State(state): State<SharedState>,
    EnrollingSession(current): EnrollingSession,
) -> ApiResult<ApiJson<PasskeyList>> {
    let rows = state.store.passkeys_of(&current.user.id).await?;
    Ok(ApiJson(PasskeyList { passkeys: rows.iter().map(view).collect() }))
}

/// Starts registering a passkey: options for `navigator.credentials.create`.
#[utoipa::path(post, path = "/api/v1/me/passkeys/challenge", operation_id = "passkeyRegistrationStart", tag = "passkeys",
    responses((status = 200, description = "The registration challenge", body = PasskeyChallenge),
        (status = 401, description = "Not signed in, or passkeys are off on this server", body = Problem),
        (status = 403, description = "The sign-in is too old: sign in again", body = Problem),
        (status = 422, description = "Too many passkeys", body = Problem)))]
pub async fn challenge(
    State(state): State<SharedState>,
    EnrollingSession(current): EnrollingSession,
) -> ApiResult<ApiJson<PasskeyChallenge>> {
    recent_sign_in(&state, &current)?;
    vouched_for(&state, &current).await?;
    Ok(ApiJson(passkeys::start_registration(&state, &current.user).await?))
}

/// Passkeys are changed from a sign-in under 15 minutes old, never with a
/// personal access token (made at any time, from any session, it would
/// turn an old stolen session into a fresh one).
fn recent_sign_in(state: &SharedState, current: &crate::extract::CurrentSession) -> ApiResult<()> {
    if SessionKind::parse(&current.session.kind) == SessionKind::AccessToken {
        return Err(ApiError::forbidden("passkeys are changed from a signed-in browser, not with an access token"));
    }
    if state.now_ms() - current.session.created_at_ms > RECENT_SIGN_IN.as_millis() as i64 {
        return Err(ApiError::forbidden("sign in again to change passkeys (the sign-in must be under 15 minutes old)"));
    }
    Ok(())
}

/// Where the organisation requires phishing-resistant factors and the
/// account has a passkey, another is added only from a session a passkey
/// (or the provider) signed in: a password and a recovery code, which a
/// phishing page can relay, must not be enough to plant one. Whoever lost
/// every passkey asks an operator (`conclave admin user reset-2fa`).
async fn vouched_for(state: &SharedState, current: &crate::extract::CurrentSession) -> ApiResult<()> {
    let required = current.org.as_ref().is_some_and(|(_, p)| p.require_phishing_resistant.value);
    if required
        && SessionKind::parse(&current.session.kind) == SessionKind::Password
        && state.store.has_passkey(&current.user.id).await?
    {
        return Err(ApiError::forbidden(
            "sign in with one of your passkeys to add another (lost them all? ask your administrator)",
        ));
    }
    Ok(())
}

/// Registers a passkey with the authenticator's answer and a name.
#[utoipa::path(post, path = "/api/v1/me/passkeys", operation_id = "passkeyRegister", tag = "passkeys",
    request_body = RegisterPasskeyRequest,
    responses((status = 201, description = "Registered", body = Passkey),
        (status = 401, description = "The answer does not hold", body = Problem),
        (status = 403, description = "The sign-in is too old: sign in again", body = Problem),
        (status = 422, description = "Invalid name", body = Problem)))]
pub async fn register(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    EnrollingSession(current): EnrollingSession,
    ApiJson(req): ApiJson<RegisterPasskeyRequest>,
) -> ApiResult<(StatusCode, ApiJson<Passkey>)> {
    recent_sign_in(&state, &current)?;
    vouched_for(&state, &current).await?;
    let answer = PasskeyResponse { ceremony_id: req.ceremony_id, credential: req.credential };
    let row = match passkeys::finish_registration(&state, &current.user, &answer, &req.name).await {
        Ok(row) => row,
        Err(err) => {
            let detail = format!("registration refused: {err}");
            state.audit(current.audit(ip, AuditAction::AuthPasskey, AuditOutcome::Failure).detail(&detail)).await?;
            return Err(err.into());
        }
    };
    let detail = format!("registered \"{}\"", row.name);
    state
        .audit(current.audit(ip, AuditAction::AuthPasskey, AuditOutcome::Success).target(&row.id).detail(&detail))
        .await?;
    let email = &current.user.email;
    let what = format!(
        "A passkey named \"{}\" was added to your Conclave account {email}. It can sign in to it without the password.",
        row.name
    );
    let advice = "If it was not you, remove it now in your account's security settings, change your password and end the sessions you do not know.";
    accounts::notify_holder(&state, email, "A passkey was added to your Conclave account", vec![what, advice.into()]);
    Ok((StatusCode::CREATED, ApiJson(view(&row))))
}

/// Renames one of the account's passkeys.
#[utoipa::path(patch, path = "/api/v1/me/passkeys/{passkey_id}", operation_id = "renamePasskey", tag = "passkeys",
    params(("passkey_id" = String, Path)), request_body = RenamePasskeyRequest,
    responses((status = 204, description = "Renamed"), (status = 404, description = "No such passkey", body = Problem),
        (status = 422, description = "Invalid name", body = Problem)))]
pub async fn rename(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    EnrollingSession(current): EnrollingSession,
    Path(passkey_id): Path<String>,
    ApiJson(req): ApiJson<RenamePasskeyRequest>,
) -> ApiResult<StatusCode> {
    let name = passkeys::passkey_name(&req.name)?;
    if !state.store.rename_passkey(&current.user.id, &passkey_id, &name).await? {
        return Err(ApiError::not_found("passkey"));
    }
    let detail = format!("renamed \"{name}\"");
    state
        .audit(current.audit(ip, AuditAction::AuthPasskey, AuditOutcome::Success).target(&passkey_id).detail(&detail))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one of the account's passkeys (not the last one where the
/// organisation requires phishing-resistant factors).
#[utoipa::path(delete, path = "/api/v1/me/passkeys/{passkey_id}", operation_id = "removePasskey", tag = "passkeys",
    params(("passkey_id" = String, Path)),
    responses((status = 204, description = "Removed"),
        (status = 403, description = "The organisation requires a passkey, or the sign-in is too old", body = Problem),
        (status = 404, description = "No such passkey", body = Problem)))]
pub async fn remove(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    EnrollingSession(current): EnrollingSession,
    Path(passkey_id): Path<String>,
) -> ApiResult<StatusCode> {
    recent_sign_in(&state, &current)?;
    let keys = state.store.passkeys_of(&current.user.id).await?;
    if !keys.iter().any(|k| k.id == passkey_id) {
        return Err(ApiError::not_found("passkey"));
    }
    let policy = current.org.as_ref().map(|(_, p)| p);
    let last_factor = keys.len() == 1 && current.user.totp_secret.is_none();
    if keys.len() == 1 && policy.is_some_and(|p| p.require_phishing_resistant.value)
        || last_factor && policy.is_some_and(|p| p.require_2fa.value)
    {
        return Err(ApiError::forbidden("your organisation requires this factor; add another passkey first"));
    }
    state.store.delete_passkey(&current.user.id, &passkey_id).await?;
    state
        .audit(current.audit(ip, AuditAction::AuthPasskey, AuditOutcome::Success).target(&passkey_id).detail("removed"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The challenge for signing in with a passkey alone (no address asked).
#[utoipa::path(post, path = "/api/v1/auth/passkey/challenge", operation_id = "passkeySignInStart", tag = "auth",
    responses((status = 200, description = "Options for navigator.credentials.get", body = PasskeyChallenge),
        (status = 401, description = "Passkeys are off on this server", body = Problem),
        (status = 429, description = "Too many requests from this address", body = Problem)))]
pub async fn sign_in_challenge(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
) -> ApiResult<ApiJson<PasskeyChallenge>> {
    accounts::check_sensitive_rate(&state, ip)?;
    Ok(ApiJson(passkeys::start_sign_in(&state).await?))
}

/// Signs in with a passkey alone.
#[utoipa::path(post, path = "/api/v1/auth/passkey", operation_id = "passkeySignIn", tag = "auth",
    request_body = PasskeyResponse,
    responses((status = 200, description = "Signed in", body = LoginResponse),
        (status = 401, description = "The passkey's answer does not hold", body = Problem),
        (status = 403, description = "Account disabled, or the organisation signs in through its provider", body = Problem),
        (status = 429, description = "Too many attempts", body = Problem)))]
pub async fn sign_in(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PasskeyResponse>,
) -> ApiResult<Response> {
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let outcome = accounts::sign_in_with_passkey(&state, &req, ip, user_agent).await?;
    Ok(super::auth::signed_in(&state, outcome, StatusCode::OK))
}
