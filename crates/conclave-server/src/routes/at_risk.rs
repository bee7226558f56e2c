//! The at-risk meeting notifier's REST side: an organisation's watched
//! sources (its admins), a person's warnings (their home page), and the
//! warning link that rotates a meeting's secrets.

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp};
use crate::routes::orgs::authorize;
use crate::state::{Audit, SharedState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use conclave_auth::TokenHash;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::{
    AddWatchSourceRequest, OrgRole, Problem, ProblemCode, RiskWarning, RiskWarningList, RotateFromWarningRequest,
    RotatedFromWarning, WatchSource, WatchSourceList,
};
use conclave_store::{StoreError, WatchSourceRow};

/// Most sources one organisation watches.
const MAX_SOURCES: usize = 50;

fn source_view(row: &WatchSourceRow) -> WatchSource {
    WatchSource {
        id: row.id.clone(),
        url: row.url.clone(),
        last_polled_at_ms: row.last_polled_at_ms,
        last_error: row.last_error.clone(),
    }
}

/// The public sources watched for the organisation's meetings.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/watch-sources", operation_id = "listWatchSources", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 200, description = "Watched sources", body = WatchSourceList),
        (status = 403, description = "Not an admin", body = Problem), (status = 404, description = "Not found", body = Problem)))]
pub async fn list_sources(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<ApiJson<WatchSourceList>> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgWatchSources).await?;
    let sources = state.store.watch_sources(&org_id).await?;
    Ok(ApiJson(WatchSourceList { sources: sources.iter().map(source_view).collect() }))
}

/// Watch a public source (an RSS, Atom or JSON feed, or a Mastodon
/// timeline's API URL such as `https://mastodon.social/api/v1/timelines/tag/zoom`).
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/watch-sources", operation_id = "addWatchSource", tag = "organisations",
    params(("org_id" = String, Path)), request_body = AddWatchSourceRequest,
    responses((status = 201, description = "Watched from now on", body = WatchSource),
        (status = 403, description = "Not an admin", body = Problem), (status = 409, description = "Already watched", body = Problem),
        (status = 422, description = "Not a public https:// URL, or too many sources", body = Problem)))]
pub async fn add_source(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
    ApiJson(req): ApiJson<AddWatchSourceRequest>,
) -> ApiResult<(StatusCode, ApiJson<WatchSource>)> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgWatchSources).await?;
    let url = req.url.trim();
    if url.len() > 2048 {
        return Err(ApiError::field("url", "2048 characters at most"));
    }
    crate::outbound::allowed(url, state.config.allow_local_outbound)
        .map_err(|e| ApiError::field("url", e.to_string()))?;
    if state.store.watch_sources(&org_id).await?.len() >= MAX_SOURCES {
        return Err(ApiError::field("url", format!("an organisation watches {MAX_SOURCES} sources at most")));
    }
    let row = match state.store.add_watch_source(&org_id, url, state.now_ms()).await {
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict(ProblemCode::Conflict, "this source is watched already"));
        }
        other => other?,
    };
    let event = current.audit(ip, AuditAction::OrgWatchSources, AuditOutcome::Success).org(&org_id);
    state.audit(event.target(&row.id).detail(url)).await?;
    Ok((StatusCode::CREATED, ApiJson(source_view(&row))))
}

/// Stop watching a source.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/watch-sources/{source_id}", operation_id = "removeWatchSource", tag = "organisations",
    params(("org_id" = String, Path), ("source_id" = String, Path)),
    responses((status = 204, description = "No longer watched"), (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "Not found", body = Problem)))]
pub async fn remove_source(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path((org_id, source_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgWatchSources).await?;
    if !state.store.delete_watch_source(&org_id, &source_id).await? {
        return Err(ApiError::not_found("watched source"));
    }
    let event = current.audit(ip, AuditAction::OrgWatchSources, AuditOutcome::Success).org(&org_id);
    state.audit(event.target(&source_id).detail("removed")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Warnings about the caller's meetings found in public posts, newest first.
#[utoipa::path(get, path = "/api/v1/me/risk-warnings", operation_id = "listRiskWarnings", tag = "meetings",
    responses((status = 200, description = "Warnings", body = RiskWarningList)))]
pub async fn my_warnings(
    State(state): State<SharedState>,
    Authed(current): Authed,
) -> ApiResult<ApiJson<RiskWarningList>> {
    let rows = state.store.risk_warnings_for(&current.user.id).await?;
    let warnings = rows
        .into_iter()
        .map(|row| RiskWarning {
            id: row.id,
            meeting_id: row.meeting_id,
            post_url: row.post_url,
            score: row.score.clamp(0, i64::from(u32::MAX)) as u32,
            reasons: row.reasons.lines().map(str::to_owned).collect(),
            created_at_ms: row.created_at_ms,
            resolved: row.used_at_ms.is_some(),
        })
        .collect();
    Ok(ApiJson(RiskWarningList { warnings }))
}

/// The warning email's link: rotates the meeting's link, code, passcode
/// and host key, once. Whoever holds the link may do only this.
#[utoipa::path(post, path = "/api/v1/risk-warnings/rotate", operation_id = "rotateFromWarning", tag = "meetings",
    request_body = RotateFromWarningRequest,
    responses((status = 200, description = "The meeting's secrets are new", body = RotatedFromWarning),
        (status = 400, description = "The link is unknown or was used", body = Problem),
        (status = 429, description = "Too many requests from this address", body = Problem)))]
pub async fn rotate(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<RotateFromWarningRequest>,
) -> ApiResult<ApiJson<RotatedFromWarning>> {
    crate::accounts::check_sensitive_rate(&state, ip)?;
    let spent = || {
        ApiError::new(StatusCode::BAD_REQUEST, ProblemCode::InvalidInvitation, "This link does not work")
            .with_detail("the link is unknown or was used already")
    };
    let Some(warning) = state.store.take_risk_warning(&TokenHash::of(req.token.trim()).0, state.now_ms()).await? else {
        return Err(spent());
    };
    let mut meeting = state.store.meeting_by_id(&warning.meeting_id).await?.ok_or_else(spent)?;
    crate::meetings::rotate_secrets(&state, &mut meeting).await?;
    let event = Audit {
        source_ip: Some(ip),
        actor_id: Some(&warning.owner_id),
        detail: "from an at-risk warning's link",
        ..Audit::new(AuditAction::MeetingRotate, AuditOutcome::Success)
    };
    state.audit(event.org(&meeting.org_id).target(&meeting.id)).await?;
    Ok(ApiJson(RotatedFromWarning { meeting_id: meeting.id, title: meeting.title }))
}
