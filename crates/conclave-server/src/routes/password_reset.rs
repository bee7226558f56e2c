//! Password reset by email: a link with a single-use token, valid for half
//! an hour, that sets a new password and ends every session of the
//! account. Asking is answered the same whether or not the address has an
//! account (the email is sent in the background, so not even the time
//! taken tells), and throttled per source address.

use axum::extract::State;
use axum::http::StatusCode;
use conclave_auth::{OpaqueToken, TokenHash};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::AccountStatus;
use conclave_proto::{PasswordResetConfirm, PasswordResetRequest, Problem, ProblemCode};

use crate::accounts;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientIp};
use crate::mail::Email;
use crate::state::{Audit, SharedState};

/// Ask for a password-reset link by email.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", operation_id = "requestPasswordReset", tag = "auth",
    request_body = PasswordResetRequest,
    responses((status = 202, description = "If the address has an account, a link is on its way"),
        (status = 429, description = "Too many requests from this address", body = Problem),
        (status = 503, description = "This server sends no email", body = Problem)))]
pub async fn request(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<PasswordResetRequest>,
) -> ApiResult<StatusCode> {
    accounts::check_sensitive_rate(&state, ip)?;
    if !state.mailer.is_enabled() {
        return Err(ApiError::unavailable("this server sends no email; ask an administrator to reset your password"));
    }
    let Ok(email) = accounts::normalize_email(&req.email) else { return Ok(StatusCode::ACCEPTED) };
    let Some(user) = state.store.user_by_email(&email).await? else { return Ok(StatusCode::ACCEPTED) };
    if user.status != AccountStatus::Active {
        return Ok(StatusCode::ACCEPTED);
    }
    let token = OpaqueToken::generate_with_prefix("rst_");
    let now = state.now_ms();
    let expires = now + state.config.password_reset_lifetime.as_millis() as i64;
    state.store.create_password_reset(&user.id, &token.hash().0, now, expires).await?;
    state
        .audit(Audit {
            org_id: user.org_id.as_deref(),
            actor_id: Some(&user.id),
            source_ip: Some(ip),
            detail: "link emailed",
            ..Audit::new(AuditAction::AuthPasswordResetRequest, AuditOutcome::Success)
        })
        .await?;
    let link = format!("{}/reset#{}", state.config.public_url.trim_end_matches('/'), token.as_str());
    let minutes = state.config.password_reset_lifetime.as_secs() / 60;
    let state = state.clone();
    tokio::spawn(async move {
        let asked = format!("Someone (we hope you) asked to reset the password of your Conclave account {email}.");
        let valid = format!("The link works once, for {minutes} minutes, and signs you out everywhere.");
        let email_body = Email {
            to: &email,
            subject: "Reset your Conclave password",
            paragraphs: &[&asked, &valid, "If it was not you, ignore this email: nothing changes."],
            action: Some(("Set a new password", &link)),
        };
        if let Err(err) = state.mailer.send(&email_body).await {
            tracing::warn!(error = %err, "a password-reset email was not sent");
        }
    });
    Ok(StatusCode::ACCEPTED)
}

/// Set a new password with the emailed link's token.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", operation_id = "confirmPasswordReset", tag = "auth",
    request_body = PasswordResetConfirm,
    responses((status = 204, description = "The new password is set; every session ended"),
        (status = 400, description = "The link is unknown, used or expired", body = Problem),
        (status = 422, description = "The new password is not allowed", body = Problem),
        (status = 429, description = "Too many requests from this address", body = Problem)))]
pub async fn confirm(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<PasswordResetConfirm>,
) -> ApiResult<StatusCode> {
    accounts::check_sensitive_rate(&state, ip)?;
    let expired = || {
        ApiError::new(StatusCode::BAD_REQUEST, ProblemCode::InvalidInvitation, "This link does not work")
            .with_detail("the link is unknown, used or expired; ask for a new one")
    };
    let hash = TokenHash::of(req.token.trim()).0;
    // The password is checked before the token is used, so a refused
    // password leaves the link working.
    let now = state.now_ms();
    let Some(user_id) = state.store.password_reset_user(&hash, now).await? else { return Err(expired()) };
    let user = state.store.user_by_id(&user_id).await?.ok_or_else(expired)?;
    accounts::validate_new_password(&req.new_password, &user.email, &user.display_name)?;
    if state.store.take_password_reset(&hash, now).await?.as_deref() != Some(user.id.as_str()) {
        return Err(expired());
    }
    let password_hash = state.hash_password(req.new_password).await;
    state.store.set_password_hash(&user.id, &password_hash).await?;
    let ended = state.store.revoke_sessions_except(&user.id, None, now).await?;
    let detail = format!("{ended} sessions ended");
    state
        .audit(Audit {
            org_id: user.org_id.as_deref(),
            actor_id: Some(&user.id),
            source_ip: Some(ip),
            detail: &detail,
            ..Audit::new(AuditAction::AuthPasswordReset, AuditOutcome::Success)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
