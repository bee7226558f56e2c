//! TOTP two-factor authentication: enrol, confirm (which yields one-time
//! recovery codes), regenerate codes, turn off.

use crate::accounts;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientIp, EnrollingSession};
use crate::state::{Audit, SharedState};
use axum::extract::State;
use axum::http::StatusCode;
use conclave_auth::{RecoveryCode, Totp};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::ProblemCode;
use conclave_proto::{PasswordConfirmation, Problem, RecoveryCodesResponse, TotpConfirmRequest, TotpEnrollResponse};

const ISSUER: &str = "Conclave";

/// Start enrolling an authenticator app: a new secret to scan or type. It
/// takes effect once confirmed with a code.
#[utoipa::path(post, path = "/api/v1/me/totp/enroll", operation_id = "totpEnroll", tag = "two-factor",
    responses((status = 200, description = "Secret to add to the authenticator", body = TotpEnrollResponse),
        (status = 409, description = "Two-factor is already on", body = Problem)))]
pub async fn enroll(
    State(state): State<SharedState>,
    EnrollingSession(current): EnrollingSession,
) -> ApiResult<ApiJson<TotpEnrollResponse>> {
    if current.user.totp_secret.is_some() {
        return Err(ApiError::conflict(
            ProblemCode::TotpAlreadyEnabled,
            "two-factor authentication is already on; turn it off first to change the device",
        ));
    }
    let totp = Totp::generate();
    let sealed = state.secrets.seal_totp_seed(&current.user.id, &totp.to_base32());
    state.store.set_pending_totp(&current.user.id, &sealed).await?;
    Ok(ApiJson(TotpEnrollResponse {
        otpauth_uri: totp.provisioning_uri(ISSUER, &current.user.email),
        secret: totp.to_base32(),
    }))
}

/// Confirm enrolment with a code from the app; returns ten recovery codes,
/// shown once.
#[utoipa::path(post, path = "/api/v1/me/totp/confirm", operation_id = "totpConfirm", tag = "two-factor",
    request_body = TotpConfirmRequest,
    responses((status = 200, description = "Two-factor on", body = RecoveryCodesResponse),
        (status = 401, description = "Code wrong", body = Problem),
        (status = 409, description = "No enrolment in progress", body = Problem)))]
pub async fn confirm(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    EnrollingSession(current): EnrollingSession,
    ApiJson(req): ApiJson<TotpConfirmRequest>,
) -> ApiResult<ApiJson<RecoveryCodesResponse>> {
    let user = &current.user;
    let pending = user
        .totp_pending_secret
        .as_deref()
        .ok_or_else(|| ApiError::conflict(ProblemCode::NoEnrollment, "call totpEnroll first"))?;
    let seed = state.secrets.open_totp_seed(&user.id, pending).map_err(|err| {
        tracing::error!(error = %err, user = %user.id, "a pending TOTP seed does not open");
        ApiError::internal()
    })?;
    let totp = Totp::from_base32(&seed).ok_or_else(ApiError::internal)?;
    let step = totp
        .verify(&req.code, (state.now_ms() / 1000).max(0) as u64, None)
        .map_err(|e| ApiError::invalid_second_factor(e.to_string()))?;
    let codes = RecoveryCode::generate_set();
    let hashes: Vec<String> = codes.iter().map(|c| c.hash().0).collect();
    state.store.enable_totp(&user.id, pending, step as i64, &hashes).await?;
    state
        .audit(Audit {
            org_id: current.org_id(),
            actor_id: Some(&user.id),
            source_ip: Some(ip),
            ..Audit::new(AuditAction::Auth2faEnable, AuditOutcome::Success)
        })
        .await?;
    Ok(ApiJson(RecoveryCodesResponse { recovery_codes: codes.iter().map(|c| c.as_str().to_owned()).collect() }))
}

/// Replace the recovery codes (the old ones stop working). Needs the password.
#[utoipa::path(post, path = "/api/v1/me/recovery-codes", operation_id = "regenerateRecoveryCodes", tag = "two-factor",
    request_body = PasswordConfirmation,
    responses((status = 200, description = "New codes", body = RecoveryCodesResponse),
        (status = 401, description = "Password wrong", body = Problem),
        (status = 409, description = "Two-factor is off", body = Problem),
        (status = 429, description = "Too many wrong passwords: the account is locked for a while", body = Problem)))]
pub async fn regenerate_recovery_codes(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    EnrollingSession(current): EnrollingSession,
    ApiJson(req): ApiJson<PasswordConfirmation>,
) -> ApiResult<ApiJson<RecoveryCodesResponse>> {
    let user = &current.user;
    if user.totp_secret.is_none() {
        return Err(ApiError::conflict(ProblemCode::TotpNotEnabled, "two-factor authentication is off"));
    }
    accounts::confirm_password(&state, user, req.password, ip, AuditAction::Auth2faRecoveryCodes).await?;
    let codes = RecoveryCode::generate_set();
    let hashes: Vec<String> = codes.iter().map(|c| c.hash().0).collect();
    state.store.replace_recovery_codes(&user.id, &hashes).await?;
    state
        .audit(Audit {
            org_id: current.org_id(),
            actor_id: Some(&user.id),
            source_ip: Some(ip),
            ..Audit::new(AuditAction::Auth2faRecoveryCodes, AuditOutcome::Success)
        })
        .await?;
    Ok(ApiJson(RecoveryCodesResponse { recovery_codes: codes.iter().map(|c| c.as_str().to_owned()).collect() }))
}

/// Turn two-factor off (refused where the organisation requires it).
#[utoipa::path(delete, path = "/api/v1/me/totp", operation_id = "totpDisable", tag = "two-factor",
    request_body = PasswordConfirmation,
    responses((status = 204, description = "Two-factor off"),
        (status = 401, description = "Password wrong", body = Problem),
        (status = 403, description = "The organisation requires two-factor", body = Problem),
        (status = 429, description = "Too many wrong passwords: the account is locked for a while", body = Problem)))]
pub async fn disable(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    EnrollingSession(current): EnrollingSession,
    ApiJson(req): ApiJson<PasswordConfirmation>,
) -> ApiResult<StatusCode> {
    let user = &current.user;
    if current.org.as_ref().is_some_and(|(_, p)| p.require_2fa.value) {
        return Err(ApiError::forbidden("your organisation requires two-factor authentication"));
    }
    accounts::confirm_password(&state, user, req.password, ip, AuditAction::Auth2faDisable).await?;
    state.store.disable_totp(&user.id).await?;
    state
        .audit(Audit {
            org_id: current.org_id(),
            actor_id: Some(&user.id),
            source_ip: Some(ip),
            ..Audit::new(AuditAction::Auth2faDisable, AuditOutcome::Success)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
