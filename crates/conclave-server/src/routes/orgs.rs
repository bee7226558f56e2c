//! Organisations, their members and invitations. Every `{org_id}` route
//! first checks that the caller belongs to that organisation with a high
//! enough role; another organisation's id is answered exactly like an id
//! that does not exist.

use crate::accounts::{self, user_view};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp, CurrentSession};
use crate::mail::Email;
use crate::state::{Audit, SharedState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use conclave_auth::OpaqueToken;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::ProblemCode;
use conclave_proto::{
    AccountStatus, CreateOrgRequest, Invitation, InvitationCreated, InvitationList, InviteMemberRequest, MemberList,
    Org, OrgPolicy, OrgRole, Plan, Problem, UpdateMemberRequest, User,
};
use conclave_store::{InvitationRow, UserRow};
use std::net::IpAddr;

/// The caller's organisation if it is `org_id` and the caller's role is at
/// least `min`; refusals are audited.
pub(crate) async fn authorize(
    state: &SharedState,
    current: &CurrentSession,
    org_id: &str,
    min: OrgRole,
    ip: IpAddr,
    action: AuditAction,
) -> ApiResult<(Org, OrgPolicy)> {
    let denied = |detail: &'static str| Audit {
        org_id: current.org_id(),
        actor_id: Some(&current.user.id),
        target: Some(org_id),
        source_ip: Some(ip),
        detail,
        ..Audit::new(action, AuditOutcome::Denied)
    };
    let Some((org, policy)) = current.org.clone().filter(|(org, _)| org.id == org_id) else {
        state.audit(denied("not a member of this organisation")).await?;
        return Err(ApiError::not_found("organisation"));
    };
    if current.user.role.is_none_or(|role| role < min) {
        state.audit(denied("role too low")).await?;
        return Err(ApiError::forbidden(format!("this needs the {} role or higher", min.as_str())));
    }
    Ok((org, policy))
}

fn invitation_view(row: &InvitationRow) -> Invitation {
    Invitation {
        id: row.id.clone(),
        org_id: row.org_id.clone(),
        email: row.email.clone(),
        role: row.role,
        created_at_ms: row.created_at_ms,
        expires_at_ms: row.expires_at_ms,
        accepted: row.accepted_at_ms.is_some(),
    }
}

/// Create an organisation owned by the caller, who must not belong to one.
#[utoipa::path(post, path = "/api/v1/orgs", operation_id = "createOrg", tag = "organisations",
    request_body = CreateOrgRequest,
    responses((status = 201, description = "Created; the caller is its owner", body = Org),
        (status = 409, description = "The caller already belongs to an organisation", body = Problem),
        (status = 422, description = "Invalid name", body = Problem)))]
pub async fn create(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    ApiJson(req): ApiJson<CreateOrgRequest>,
) -> ApiResult<(StatusCode, ApiJson<Org>)> {
    let name = accounts::validate_org_name(&req.name)?;
    if current.user.org_id.is_some() {
        return Err(ApiError::conflict(ProblemCode::AlreadyInOrg, "this account already belongs to an organisation"));
    }
    // A guest's account is for the conversations they were invited to.
    if state.store.is_guest(&current.user.id).await? {
        return Err(ApiError::forbidden("a guest's account cannot start an organisation"));
    }
    let plan = Plan::Free;
    let policy = OrgPolicy::defaults(plan, &state.config.regions);
    let org =
        state.store.create_org_for_user(&name, plan, &policy, &current.user.id, state.now_ms()).await.map_err(|e| {
            match e {
                conclave_store::StoreError::Conflict(_) => {
                    ApiError::conflict(ProblemCode::AlreadyInOrg, "this account already belongs to an organisation")
                }
                other => other.into(),
            }
        })?;
    state
        .audit(
            current.audit(ip, AuditAction::OrgCreate, AuditOutcome::Success).org(&org.id).target(&org.id).detail(&name),
        )
        .await?;
    Ok((StatusCode::CREATED, ApiJson(org)))
}

/// The organisation, for any of its members.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}", operation_id = "getOrg", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 200, description = "The organisation", body = Org), (status = 404, description = "Not found", body = Problem)))]
pub async fn get(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<ApiJson<Org>> {
    let (org, _) = authorize(&state, &current, &org_id, OrgRole::Member, ip, AuditAction::OrgRead).await?;
    Ok(ApiJson(org))
}

/// Members, with roles and status (admins and owners).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/members", operation_id = "listMembers", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 200, description = "Members", body = MemberList), (status = 403, description = "Role too low", body = Problem),
        (status = 404, description = "Not found", body = Problem)))]
pub async fn list_members(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<ApiJson<MemberList>> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgMembersList).await?;
    let members = state.store.list_org_members(&org_id).await?;
    Ok(ApiJson(MemberList { members: members.iter().map(user_view).collect() }))
}

/// Loads a member of `org_id` that the caller may manage: never oneself,
/// and an owner only by an owner.
async fn managed_member(
    state: &SharedState,
    current: &CurrentSession,
    org_id: &str,
    user_id: &str,
) -> ApiResult<UserRow> {
    let member = state
        .store
        .user_by_id(user_id)
        .await?
        .filter(|u| u.org_id.as_deref() == Some(org_id))
        .ok_or_else(|| ApiError::not_found("member"))?;
    if member.id == current.user.id {
        return Err(ApiError::forbidden("you cannot change your own role or status"));
    }
    if member.role == Some(OrgRole::Owner) && current.user.role != Some(OrgRole::Owner) {
        return Err(ApiError::forbidden("only an owner can change another owner"));
    }
    Ok(member)
}

/// Change a member's role. Admins manage members and admins; owners manage everyone.
#[utoipa::path(patch, path = "/api/v1/orgs/{org_id}/members/{user_id}", operation_id = "updateMember", tag = "organisations",
    params(("org_id" = String, Path), ("user_id" = String, Path)),
    request_body = UpdateMemberRequest,
    responses((status = 200, description = "Updated member", body = User), (status = 403, description = "Not allowed", body = Problem),
        (status = 404, description = "Not found", body = Problem)))]
pub async fn update_member(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path((org_id, user_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<UpdateMemberRequest>,
) -> ApiResult<ApiJson<User>> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgMemberRole).await?;
    let member = managed_member(&state, &current, &org_id, &user_id).await?;
    if req.role == OrgRole::Owner && current.user.role != Some(OrgRole::Owner) {
        return Err(ApiError::forbidden("only an owner can make someone an owner"));
    }
    state.store.set_user_role(&member.id, req.role).await?;
    let detail = format!("{} -> {}", member.role.map_or("none", OrgRole::as_str), req.role.as_str());
    state
        .audit(
            current
                .audit(ip, AuditAction::OrgMemberRole, AuditOutcome::Success)
                .org(&org_id)
                .target(&member.id)
                .detail(&detail),
        )
        .await?;
    let updated = state.store.user_by_id(&member.id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    Ok(ApiJson(user_view(&updated)))
}

/// Deactivate a member: signed out everywhere at once and unable to sign in.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/members/{user_id}/deactivate", operation_id = "deactivateMember", tag = "organisations",
    params(("org_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, description = "Deactivated", body = User), (status = 403, description = "Not allowed", body = Problem),
        (status = 404, description = "Not found", body = Problem)))]
pub async fn deactivate_member(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path((org_id, user_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<User>> {
    set_member_status(state, ip, current, org_id, user_id, AccountStatus::Deactivated).await
}

/// Reactivate a deactivated or dormant member.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/members/{user_id}/reactivate", operation_id = "reactivateMember", tag = "organisations",
    params(("org_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, description = "Active again", body = User), (status = 403, description = "Not allowed", body = Problem),
        (status = 404, description = "Not found", body = Problem)))]
pub async fn reactivate_member(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path((org_id, user_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<User>> {
    set_member_status(state, ip, current, org_id, user_id, AccountStatus::Active).await
}

async fn set_member_status(
    state: SharedState,
    ip: IpAddr,
    current: CurrentSession,
    org_id: String,
    user_id: String,
    status: AccountStatus,
) -> ApiResult<ApiJson<User>> {
    let action = if status == AccountStatus::Active {
        AuditAction::OrgMemberReactivate
    } else {
        AuditAction::OrgMemberDeactivate
    };
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, action).await?;
    let member = managed_member(&state, &current, &org_id, &user_id).await?;
    let detail = if status == AccountStatus::Active {
        state.store.reactivate_user(&member.id, state.now_ms()).await?;
        String::new()
    } else {
        crate::offboarding::close_account(&state, &member.id).await?.describe()
    };
    state
        .audit(current.audit(ip, action, AuditOutcome::Success).org(&org_id).target(&member.id).detail(&detail))
        .await?;
    let updated = state.store.user_by_id(&member.id).await?.ok_or_else(|| ApiError::not_found("member"))?;
    Ok(ApiJson(user_view(&updated)))
}

/// Invite someone by email. The response carries the invitation link,
/// shown once, to send to them.
#[utoipa::path(post, path = "/api/v1/orgs/{org_id}/invitations", operation_id = "inviteMember", tag = "organisations",
    params(("org_id" = String, Path)),
    request_body = InviteMemberRequest,
    responses((status = 201, description = "Invitation and its link", body = InvitationCreated),
        (status = 403, description = "Role too low", body = Problem), (status = 404, description = "Not found", body = Problem),
        (status = 409, description = "That email already has an account", body = Problem),
        (status = 422, description = "Invalid email", body = Problem)))]
pub async fn invite(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
    ApiJson(req): ApiJson<InviteMemberRequest>,
) -> ApiResult<(StatusCode, ApiJson<InvitationCreated>)> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgInvite).await?;
    let email = accounts::normalize_email(&req.email)?;
    if current.user.role.is_none_or(|mine| req.role > mine) {
        return Err(ApiError::forbidden("you cannot invite someone with a higher role than yours"));
    }
    if state.store.user_by_email(&email).await?.is_some() {
        return Err(ApiError::conflict(ProblemCode::AccountExists, "this email already has an account on this server"));
    }
    let token = OpaqueToken::generate_with_prefix("inv_");
    let now = state.now_ms();
    let expires = now + state.config.limits.invitation_lifetime.as_millis() as i64;
    let row = state
        .store
        .create_invitation(&org_id, &email, req.role, &token.hash().0, &current.user.id, now, expires)
        .await?;
    state
        .audit(
            current
                .audit(ip, AuditAction::OrgInvite, AuditOutcome::Success)
                .org(&org_id)
                .target(&row.id)
                .detail(req.role.as_str()),
        )
        .await?;
    let invite_url = format!("{}/signup?invite={}", state.config.public_url.trim_end_matches('/'), token.as_str());
    if state.mailer.is_enabled() {
        let (state, url, inviter, org) =
            (state.clone(), invite_url.clone(), current.user.display_name.clone(), org_id.clone());
        let org_name = state.store.org_by_id(&org).await?.map(|(o, _)| o.name).unwrap_or_default();
        tokio::spawn(async move {
            let line =
                format!("{inviter} invited you to {org_name} on Conclave: secure meetings and encrypted messaging.");
            let note = "The link works once, for a week. If you did not expect this, ignore this email.";
            let invitation = Email {
                to: &email,
                subject: &format!("{inviter} invited you to {org_name} on Conclave"),
                paragraphs: &[&line, note],
                action: Some(("Create your account", &url)),
                calendar: None,
            };
            if let Err(err) = state.mailer.send(&invitation).await {
                tracing::warn!(error = %err, "an invitation email was not sent");
            }
        });
    }
    Ok((
        StatusCode::CREATED,
        ApiJson(InvitationCreated { invitation: invitation_view(&row), invite_token: token.into_string(), invite_url }),
    ))
}

/// Open and accepted invitations.
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/invitations", operation_id = "listInvitations", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 200, description = "Invitations", body = InvitationList), (status = 403, description = "Role too low", body = Problem),
        (status = 404, description = "Not found", body = Problem)))]
pub async fn list_invitations(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<ApiJson<InvitationList>> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgInvitationsList).await?;
    let rows = state.store.list_invitations(&org_id).await?;
    Ok(ApiJson(InvitationList { invitations: rows.iter().map(invitation_view).collect() }))
}

/// Revoke an invitation that has not been used.
#[utoipa::path(delete, path = "/api/v1/orgs/{org_id}/invitations/{invitation_id}", operation_id = "revokeInvitation", tag = "organisations",
    params(("org_id" = String, Path), ("invitation_id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such open invitation", body = Problem)))]
pub async fn revoke_invitation(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path((org_id, invitation_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgInvitationRevoke).await?;
    if !state.store.revoke_invitation(&org_id, &invitation_id, state.now_ms()).await? {
        return Err(ApiError::not_found("invitation"));
    }
    state
        .audit(
            current
                .audit(ip, AuditAction::OrgInvitationRevoke, AuditOutcome::Success)
                .org(&org_id)
                .target(&invitation_id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
