//! Reading the organisation's audit log.

use super::orgs::authorize;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp};
use crate::state::SharedState;
use axum::extract::{Path, Query, State};
use conclave_proto::audit::AuditAction;
use conclave_proto::{AuditEventPage, OrgRole, Problem};
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only events older than this sequence number (from `next_before`).
    pub before: Option<i64>,
    /// Page size, 1–500 (default 100).
    pub limit: Option<i64>,
}

/// The organisation's audit events, newest first (admins and owners).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/audit", operation_id = "listAuditEvents", tag = "organisations",
    params(("org_id" = String, Path), AuditQuery),
    responses((status = 200, description = "A page of events", body = AuditEventPage),
        (status = 403, description = "Role too low", body = Problem), (status = 404, description = "Not found", body = Problem)))]
pub async fn list(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<AuditEventPage>> {
    let Query(query) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgAuditRead).await?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 500"));
    }
    let events = state.store.list_audit_events(Some(&org_id), query.before, limit).await?;
    let next_before = (events.len() as i64 == limit).then(|| events.last().map(|e| e.seq)).flatten();
    Ok(ApiJson(AuditEventPage { events, next_before }))
}
