//! Guests: people from outside the organisation, invited into a group or
//! channel by a link and a one-time code (the link by email, the code by
//! another way, so that a forwarded email alone lets nobody in). A guest
//! has an account of their own, in no organisation: they see only the
//! conversations they were invited to, marked external there, and cannot
//! start conversations, join channels or be added by anyone else. The first
//! invitation makes the account; each later one, into another conversation,
//! the guest takes signed in, with its link and code like the first.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use conclave_auth::{OpaqueToken, TokenHash};
use conclave_conversation::{roles, Input, Kind, Refusal};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::conversation::{
    AcceptGuestInvitationRequest, Conversation, GuestInvitation, GuestSignupRequest, InviteGuestRequest,
};
use conclave_proto::{LoginResponse, Problem, ProblemCode};
use conclave_store::{GuestInvitationRow, NewUser, MAX_FAILED_GUEST_CODES};
use rand::Rng;

use crate::accounts::{self, LoginOutcome, NewAccount};
use crate::conversations::{conversation_view, Changed, ConversationError, Loaded};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp};
use crate::state::{Audit, SharedState};

/// The code's hash, bound to its invitation.
fn code_hash(invitation_id: &str, code: &str) -> String {
    TokenHash::of(&format!("{invitation_id}:{}", code.trim())).0
}

/// Whether `inviter` may still bring someone into the conversation.
fn may_invite(loaded: &Loaded, inviter: &str) -> Result<(), ConversationError> {
    let state = &loaded.state;
    let role = state.member(inviter).map(|m| m.role).ok_or(Refusal::NotMember)?;
    if state.kind() == Kind::Direct {
        return Err(Refusal::NotAllowed.into());
    }
    if state.is_archived() {
        return Err(Refusal::Archived.into());
    }
    if !roles::may_add(state.kind(), state.is_locked(), role) {
        return Err(if state.is_locked() { Refusal::Locked } else { Refusal::NotAllowed }.into());
    }
    Ok(())
}

/// Invites someone from outside into a group or channel, where the
/// organisation's policy allows guests. The answer holds the link (for the
/// guest's email) and the code (to give them another way); neither is
/// shown again.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/guests", operation_id = "inviteGuest",
    tag = "conversations", params(("conversation_id" = String, Path)), request_body = InviteGuestRequest,
    responses((status = 201, description = "The invitation, with its link and code", body = GuestInvitation),
        (status = 403, description = "Guests are not allowed here, or the caller may not add people", body = Problem),
        (status = 404, description = "Not a conversation the caller is in", body = Problem),
        (status = 409, description = "That email has an account already (add them as a member)", body = Problem)))]
pub async fn invite(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(conversation_id): Path<String>,
    ApiJson(req): ApiJson<InviteGuestRequest>,
) -> ApiResult<(StatusCode, ApiJson<GuestInvitation>)> {
    let loaded = state.conversations.load(&conversation_id).await?;
    may_invite(&loaded, &current.user.id)?;
    let (_, policy) =
        state.store.org_by_id(&loaded.row.org_id).await?.ok_or_else(|| ApiError::not_found("organisation"))?;
    if !policy.guest_access.value {
        return Err(ApiError::forbidden("this organisation does not let members invite guests"));
    }
    let email = accounts::normalize_email(&req.email)?;
    // A guest already (of this conversation or another) is invited again
    // like a newcomer; anyone else with an account is added as a member.
    if let Some(user) = state.store.user_by_email(&email).await? {
        if !state.store.is_guest(&user.id).await? {
            return Err(ApiError::conflict(
                ProblemCode::AccountExists,
                "this email has an account on this server already: add them as a member instead",
            ));
        }
        if loaded.state.member(&user.id).is_some() {
            return Err(ConversationError::from(Refusal::AlreadyMember).into());
        }
    }
    let token = OpaqueToken::generate_with_prefix("gst_");
    let code = format!("{:08}", rand::thread_rng().gen_range(0..100_000_000u32));
    let now = state.now_ms();
    let row = GuestInvitationRow {
        id: conclave_store::new_id(),
        conversation_id: conversation_id.clone(),
        email: email.clone(),
        code_hash: String::new(),
        invited_by: current.user.id.clone(),
        failed_codes: 0,
        created_at_ms: now,
        expires_at_ms: now + state.config.limits.invitation_lifetime.as_millis() as i64,
        accepted_at_ms: None,
        accepted_by: None,
    };
    let row = GuestInvitationRow { code_hash: code_hash(&row.id, &code), ..row };
    state.store.create_guest_invitation(&row, &token.hash().0).await?;
    state
        .audit(
            current
                .audit(ip, AuditAction::GuestInvite, AuditOutcome::Success)
                .org(&loaded.row.org_id)
                .target(&conversation_id),
        )
        .await?;
    let invite_url = format!("{}/guest#{}", state.config.public_url.trim_end_matches('/'), token.as_str());
    Ok((
        StatusCode::CREATED,
        ApiJson(GuestInvitation {
            invitation_id: row.id,
            conversation_id,
            email,
            invite_url,
            code,
            expires_at_ms: row.expires_at_ms,
        }),
    ))
}

/// The open invitation the link's token names (else `400`, as for any
/// unknown, used, expired or spent one).
async fn open_invitation(state: &SharedState, token: &str, now_ms: i64) -> ApiResult<GuestInvitationRow> {
    let invitation = state.store.guest_invitation_by_token_hash(&TokenHash::of(token.trim()).0).await?;
    invitation.filter(|i| i.is_open(now_ms)).ok_or_else(ApiError::invalid_invitation)
}

/// An invitation another request took (or spent) between reading and taking it.
fn spent_meanwhile(err: conclave_store::StoreError) -> ApiError {
    match err {
        conclave_store::StoreError::NotFound(_) => ApiError::invalid_invitation(),
        other => other.into(),
    }
}

/// The guest is added to the invitation's conversation, by whoever invited them.
async fn add_guest(
    state: &SharedState,
    invitation: &GuestInvitationRow,
    guest_id: &str,
    now_ms: i64,
) -> Result<Changed, ConversationError> {
    let guest = state.conversations.newcomer(guest_id, true).await?;
    let by = invitation.invited_by.clone();
    let add =
        |_: &conclave_conversation::Conversation| Ok(Input::Add { by: by.clone(), newcomers: vec![guest.clone()] });
    state.conversations.change(&invitation.conversation_id, now_ms, add).await
}

/// The invitation's code, checked in constant time; a wrong one counts
/// against the invitation, and the answer says how many tries are left.
async fn check_code(state: &SharedState, invitation: &GuestInvitationRow, code: &str) -> ApiResult<()> {
    let expected = invitation.code_hash.as_bytes();
    let given = code_hash(&invitation.id, code);
    if bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected)) {
        return Ok(());
    }
    let failed = state.store.fail_guest_code(&invitation.id).await?;
    let left = MAX_FAILED_GUEST_CODES - failed;
    let detail = if left > 0 {
        format!("the code is wrong; {left} more tries")
    } else {
        "the code was wrong too often; ask for a new invitation".to_owned()
    };
    Err(ApiError::invalid_invitation().with_detail(detail))
}

/// A guest takes an invitation: the link's token and the code make an
/// account (with the invitation's email) in the conversation, signed in.
/// A few wrong codes spend the invitation.
#[utoipa::path(post, path = "/api/v1/auth/guest-signup", operation_id = "guestSignup", tag = "auth",
    request_body = GuestSignupRequest,
    responses((status = 201, description = "The guest's account, signed in and in the conversation", body = LoginResponse),
        (status = 400, description = "The invitation is unknown, used, expired or spent, or the code is wrong", body = Problem),
        (status = 409, description = "The email has an account already", body = Problem),
        (status = 422, description = "Invalid name or password", body = Problem),
        (status = 429, description = "Too many requests from this address", body = Problem)))]
pub async fn signup(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<GuestSignupRequest>,
) -> ApiResult<Response> {
    accounts::check_sensitive_rate(&state, ip)?;
    let now = state.now_ms();
    let invitation = open_invitation(&state, &req.token, now).await?;
    let audit = |outcome, detail| Audit {
        target: Some(invitation.conversation_id.as_str()),
        source_ip: Some(ip),
        detail,
        ..Audit::new(AuditAction::GuestSignup, outcome)
    };
    if let Err(refused) = check_code(&state, &invitation, &req.code).await {
        state.audit(audit(AuditOutcome::Failure, "wrong code")).await?;
        return Err(refused);
    }
    let account = NewAccount::validate(&invitation.email, &req.display_name, &req.password)?;
    if state.store.user_by_email(&account.email).await?.is_some() {
        return Err(ApiError::conflict(ProblemCode::AccountExists, "this email has an account already; sign in"));
    }
    // The inviter must still be able to bring someone in.
    let conversation = &invitation.conversation_id;
    may_invite(&state.conversations.load(conversation).await?, &invitation.invited_by)?;
    let hash = state.hash_password(account.password).await;
    let new = NewUser {
        email: &account.email,
        display_name: &account.display_name,
        password_hash: &hash,
        org_id: None,
        role: None,
        now_ms: now,
    };
    let user = state.store.accept_guest_invitation(&invitation.id, &new).await.map_err(spent_meanwhile)?;
    add_guest(&state, &invitation, &user.id, now).await?;
    state.audit(Audit { actor_id: Some(&user.id), ..audit(AuditOutcome::Success, "guest") }).await?;
    let lifetime = state.config.limits.session_lifetime;
    let user_agent = headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok());
    let (token, session) = accounts::start_session(&state, &user.id, "login", None, ip, user_agent, lifetime).await?;
    let outcome = LoginOutcome { token, session, user, needs_enrollment: false };
    Ok(super::auth::signed_in(&state, outcome, StatusCode::CREATED))
}

/// A guest, signed in, takes an invitation into another conversation: the
/// link's token and the code, for the address of the guest's own account.
/// An invitation for another address is as unknown as a wrong link.
#[utoipa::path(post, path = "/api/v1/me/guest-invitations", operation_id = "acceptGuestInvitation",
    tag = "conversations", request_body = AcceptGuestInvitationRequest,
    responses((status = 200, description = "The conversation, with the guest in it", body = Conversation),
        (status = 400, description = "The invitation is unknown, used, expired, spent or for another address, or the code is wrong", body = Problem),
        (status = 403, description = "The caller is not a guest (members are added by members), or the inviter may no longer add people", body = Problem),
        (status = 409, description = "Already in the conversation", body = Problem),
        (status = 429, description = "Too many requests from this address", body = Problem)))]
pub async fn accept(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    ApiJson(req): ApiJson<AcceptGuestInvitationRequest>,
) -> ApiResult<ApiJson<Conversation>> {
    accounts::check_sensitive_rate(&state, ip)?;
    let now = state.now_ms();
    let invitation = open_invitation(&state, &req.token, now).await?;
    if invitation.email != current.user.email {
        return Err(ApiError::invalid_invitation());
    }
    let audit = |outcome, detail| {
        current.audit(ip, AuditAction::GuestSignup, outcome).target(&invitation.conversation_id).detail(detail)
    };
    if let Err(refused) = check_code(&state, &invitation, &req.code).await {
        state.audit(audit(AuditOutcome::Failure, "wrong code")).await?;
        return Err(refused);
    }
    if current.user.org_id.is_some() || !state.store.is_guest(&current.user.id).await? {
        return Err(ApiError::forbidden("only guests take guest invitations; members are added by members"));
    }
    let conversation = &invitation.conversation_id;
    let loaded = state.conversations.load(conversation).await?;
    may_invite(&loaded, &invitation.invited_by)?;
    if loaded.state.member(&current.user.id).is_some() {
        return Err(ConversationError::from(Refusal::AlreadyMember).into());
    }
    state.store.take_guest_invitation(&invitation.id, &current.user.id, now).await.map_err(spent_meanwhile)?;
    let changed = add_guest(&state, &invitation, &current.user.id, now).await?;
    state.audit(audit(AuditOutcome::Success, "guest, another conversation")).await?;
    Ok(ApiJson(conversation_view(&state, &changed.loaded.row, &changed.loaded.state, &current.user.id).await?))
}
