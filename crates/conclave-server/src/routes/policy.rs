//! Organisation policies: read by every member, changed by admins. Each
//! setting carries a lock that later stops hosts and members overriding it.

use super::orgs::authorize;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp};
use crate::org_policy::apply_update;
use crate::state::SharedState;
use axum::extract::{Path, State};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::{OrgPolicy, OrgPolicyUpdate, OrgRole, Problem};

/// The organisation's policy.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/policy", operation_id = "getOrgPolicy", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 200, description = "Current policy", body = OrgPolicy), (status = 404, description = "Not found", body = Problem)))]
pub async fn get(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<ApiJson<OrgPolicy>> {
    let (_, policy) = authorize(&state, &current, &org_id, OrgRole::Member, ip, AuditAction::OrgPolicyRead).await?;
    Ok(ApiJson(policy))
}

/// Change some settings and their locks; absent settings stay as they are.
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/policy", operation_id = "updateOrgPolicy", tag = "organisations",
    params(("org_id" = String, Path)),
    request_body = OrgPolicyUpdate,
    responses((status = 200, description = "The policy after the change", body = OrgPolicy),
        (status = 403, description = "Role too low", body = Problem), (status = 404, description = "Not found", body = Problem),
        (status = 422, description = "A setting is out of range", body = Problem)))]
pub async fn update(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
    ApiJson(update): ApiJson<OrgPolicyUpdate>,
) -> ApiResult<ApiJson<OrgPolicy>> {
    let (org, policy) = authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgPolicyUpdate).await?;
    let changed = serde_json::to_string(&update).unwrap_or_default();
    let next = apply_update(policy, update, org.plan, &state.config.regions).map_err(|e| ApiError::validation(e.0))?;
    state.store.update_org_policy(&org_id, &next).await?;
    super::meetings::policy_changed(&state, &org_id, &next);
    state
        .audit(
            current
                .audit(ip, AuditAction::OrgPolicyUpdate, AuditOutcome::Success)
                .org(&org_id)
                .target(&org_id)
                .detail(&changed),
        )
        .await?;
    Ok(ApiJson(next))
}
