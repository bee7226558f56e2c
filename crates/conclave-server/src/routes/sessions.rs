//! The account's sessions and personal access tokens: list, revoke, create.

use crate::accounts;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp, CurrentSession, EnrollingSession};
use crate::state::SharedState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::{AccessTokenCreated, CreateAccessTokenRequest, Problem, SessionInfo, SessionKind, SessionList};
use conclave_store::SessionRow;
use std::time::Duration;

fn session_view(row: &SessionRow, current: &CurrentSession) -> SessionInfo {
    SessionInfo {
        id: row.id.clone(),
        kind: if row.kind == "access_token" { SessionKind::AccessToken } else { SessionKind::Login },
        name: row.name.clone(),
        created_at_ms: row.created_at_ms,
        last_seen_at_ms: row.last_seen_at_ms,
        expires_at_ms: row.expires_at_ms,
        ip: row.ip.clone(),
        user_agent: row.user_agent.clone(),
        current: row.id == current.session.id,
    }
}

/// The account's live sign-ins and access tokens.
#[utoipa::path(get, path = "/api/v1/me/sessions", operation_id = "listSessions", tag = "sessions",
    responses((status = 200, description = "Live sessions, newest first", body = SessionList),
        (status = 401, description = "Not signed in", body = Problem)))]
pub async fn list(
    State(state): State<SharedState>,
    EnrollingSession(current): EnrollingSession,
) -> ApiResult<ApiJson<SessionList>> {
    let rows = state.store.list_live_sessions(&current.user.id, state.now_ms()).await?;
    Ok(ApiJson(SessionList { sessions: rows.iter().map(|r| session_view(r, &current)).collect() }))
}

/// Revoke one of the account's sessions or access tokens (signing that
/// device out at once).
#[utoipa::path(delete, path = "/api/v1/me/sessions/{session_id}", operation_id = "revokeSession", tag = "sessions",
    params(("session_id" = String, Path, description = "Id from listSessions")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such live session of this account", body = Problem)))]
pub async fn revoke(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    EnrollingSession(current): EnrollingSession,
    Path(session_id): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.store.revoke_session(&current.user.id, &session_id, state.now_ms()).await? {
        return Err(ApiError::not_found("session"));
    }
    // Its live connections close.
    state.conversations.live.recheck(&current.user.id, None);
    state.audit(current.audit(ip, AuditAction::AuthSessionRevoke, AuditOutcome::Success).target(&session_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a personal access token for scripts (`Authorization: Bearer`).
#[utoipa::path(post, path = "/api/v1/me/tokens", operation_id = "createAccessToken", tag = "sessions",
    request_body = CreateAccessTokenRequest,
    responses((status = 201, description = "The token, shown once", body = AccessTokenCreated),
        (status = 422, description = "Invalid name or lifetime", body = Problem)))]
pub async fn create_token(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    ApiJson(req): ApiJson<CreateAccessTokenRequest>,
) -> ApiResult<(StatusCode, ApiJson<AccessTokenCreated>)> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::field("name", "must be 1 to 100 printable characters"));
    }
    let days = req.expires_in_days.unwrap_or(90);
    if !(1..=365).contains(&days) {
        return Err(ApiError::field("expires_in_days", "must be between 1 and 365"));
    }
    let lifetime = Duration::from_secs(u64::from(days) * 24 * 3600);
    let (token, row) =
        accounts::start_session(&state, &current.user.id, "access_token", Some(name), ip, None, lifetime).await?;
    state
        .audit(current.audit(ip, AuditAction::AuthTokenCreate, AuditOutcome::Success).target(&row.id).detail(name))
        .await?;
    let session = session_view(&row, &current);
    Ok((StatusCode::CREATED, ApiJson(AccessTokenCreated { token: token.into_string(), session })))
}
