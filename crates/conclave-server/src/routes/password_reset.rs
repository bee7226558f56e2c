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

use crate::accounts::{self, AccountError};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientIp};
use crate::mail::Email;
use crate::state::{Audit, SharedState};
use conclave_store::{StoreError, UserRow};

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
    // The same answer for an account whose organisation turned passwords
    // off: it signs in through the provider, and no link is sent.
    if user.status != AccountStatus::Active || accounts::passwords_off(&state, &user).await? {
        return Ok(StatusCode::ACCEPTED);
    }
    state
        .audit(Audit {
            org_id: user.org_id.as_deref(),
            actor_id: Some(&user.id),
            source_ip: Some(ip),
            detail: "link emailed",
            ..Audit::new(AuditAction::AuthPasswordResetRequest, AuditOutcome::Success)
        })
        .await?;
    email_link(&state, &user, LinkPurpose::Reset).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Why a person gets a link that sets their password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// They asked to reset it.
    Reset,
    /// Their organisation's identity provider made their account, without
    /// a password.
    Welcome,
}

/// How long a welcome link works: a new colleague may not read email the
/// day they are provisioned.
const WELCOME_LINK_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

/// Emails `user` a single-use link that sets their password (in the
/// background: the caller's answer does not wait for the mail server).
pub(crate) async fn email_link(state: &SharedState, user: &UserRow, purpose: LinkPurpose) -> Result<(), StoreError> {
    let token = OpaqueToken::generate_with_prefix("rst_");
    let now = state.now_ms();
    let lifetime_ms = match purpose {
        LinkPurpose::Reset => state.config.password_reset_lifetime.as_millis() as i64,
        LinkPurpose::Welcome => WELCOME_LINK_LIFETIME_MS,
    };
    state.store.create_password_reset(&user.id, &token.hash().0, now, now + lifetime_ms).await?;
    let link = format!("{}/reset#{}", state.config.public_url.trim_end_matches('/'), token.as_str());
    let email = user.email.clone();
    let state = state.clone();
    tokio::spawn(async move {
        let (subject, first, valid, label) = match purpose {
            LinkPurpose::Reset => (
                "Reset your Conclave password",
                format!("Someone (we hope you) asked to reset the password of your Conclave account {email}."),
                format!("The link works once, for {} minutes, and signs you out everywhere.", lifetime_ms / 60_000),
                "Set a new password",
            ),
            LinkPurpose::Welcome => (
                "Your Conclave account is ready",
                format!("Your organisation made you a Conclave account, {email}. Choose its password to sign in."),
                "The link works once, for 7 days.".to_owned(),
                "Choose your password",
            ),
        };
        let email_body = Email {
            to: &email,
            subject,
            paragraphs: &[&first, &valid, "If you did not expect this email, ignore it: nothing changes."],
            action: Some((label, &link)),
            calendar: None,
        };
        if let Err(err) = state.mailer.send(&email_body).await {
            tracing::warn!(error = %err, "a password link email was not sent");
        }
    });
    Ok(())
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
    if accounts::passwords_off(&state, &user).await? {
        return Err(AccountError::ProviderSignInRequired.into());
    }
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
