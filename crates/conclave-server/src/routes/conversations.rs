//! Team conversations: create and list them, their members, messages
//! into their log and the log as each device reads it, and the MLS
//! handshake between their devices. Every decision is the conversation's
//! (`crate::conversations`); these handlers check who is asking and with
//! which of their devices.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::conversations::{self, conversation_view, entry_from_row, summary_view, ConversationError};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp, CurrentSession};
use crate::state::SharedState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use conclave_conversation::{Effect, Encryption, Input, Kind, Newcomer, OutgoingMessage};
use conclave_delivery::ProposedCommit;
use conclave_proto::conversation::*;
use conclave_proto::{AccountStatus, Problem};
use conclave_store::StoreError;
use serde::Deserialize;

/// Longest a reader waits for the log to grow.
const MAX_WAIT_MS: u64 = 30_000;

type Query_<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn query<T>(query: Query_<T>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|e| ApiError::field("query", e.body_text()))
}

/// The caller's organisation: conversations belong to one.
pub(super) fn org_of(current: &CurrentSession) -> Result<&str, ApiError> {
    current.org_id().ok_or_else(|| ApiError::forbidden("conversations belong to an organisation; join one first"))
}

/// Checks that `device_id` is one of the caller's devices (not revoked).
pub(super) async fn own_device(state: &SharedState, current: &CurrentSession, device_id: &str) -> Result<(), ApiError> {
    let devices = state.store.devices_of(&current.user.id).await?;
    if devices.iter().any(|d| d.id == device_id) {
        Ok(())
    } else {
        Err(ApiError::not_found("device"))
    }
}

/// People to add, with all their devices: active accounts of the
/// conversation's organisation, or of another one when both
/// organisations' policies allow it (then marked external).
async fn newcomers(state: &SharedState, org_id: &str, user_ids: &[String]) -> Result<Vec<Newcomer>, ApiError> {
    if user_ids.len() > MAX_ADDED_AT_ONCE {
        return Err(ApiError::field("members", format!("at most {MAX_ADDED_AT_ONCE} at once")));
    }
    let allows_external = |org: &str| {
        let store = state.store.clone();
        let org = org.to_owned();
        async move { Ok::<_, ApiError>(store.org_by_id(&org).await?.is_some_and(|(_, p)| p.external_conversations.value)) }
    };
    let mut out: Vec<Newcomer> = Vec::with_capacity(user_ids.len());
    for id in user_ids {
        let user = state.store.user_by_id(id).await?;
        // Someone the caller may not add is told apart from nobody by no one.
        let not_addable = || ApiError::field("members", format!("{id} is not someone you can add"));
        let Some(user) = user else { return Err(not_addable()) };
        let Some(their_org) = user.org_id.as_deref() else { return Err(not_addable()) };
        let external = their_org != org_id;
        if external && !(allows_external(org_id).await? && allows_external(their_org).await?) {
            return Err(not_addable());
        }
        if user.status != AccountStatus::Active {
            return Err(ApiError::field("members", format!("{id}'s account is not active")));
        }
        if out.iter().any(|n| n.account == user.id) {
            return Err(ApiError::field("members", format!("{id} is listed twice")));
        }
        out.push(state.conversations.newcomer(&user.id, external).await?);
    }
    Ok(out)
}

/// Loads a conversation the caller may see: one they are in, or a
/// channel of their organisation.
async fn visible(state: &SharedState, current: &CurrentSession, id: &str) -> Result<conversations::Loaded, ApiError> {
    let loaded = state.conversations.load(id).await?;
    let member = loaded.state.member(&current.user.id).is_some();
    let listed = loaded.state.kind() == Kind::Channel && current.org_id() == Some(loaded.row.org_id.as_str());
    if !member && !listed {
        return Err(ApiError::not_found("conversation"));
    }
    Ok(loaded)
}

async fn view(
    state: &SharedState,
    current: &CurrentSession,
    loaded: &conversations::Loaded,
) -> ApiResult<ApiJson<Conversation>> {
    Ok(ApiJson(conversation_view(&state, &loaded.row, &loaded.state, &current.user.id).await?))
}

/// Start a direct message, a private group or a channel. A direct message
/// with someone the caller already has one with is that one (200).
#[utoipa::path(post, path = "/api/v1/conversations", operation_id = "createConversation", tag = "conversations",
    request_body = CreateConversationRequest,
    responses((status = 201, description = "Created", body = Conversation),
        (status = 200, description = "The direct message these two people already have", body = Conversation),
        (status = 403, description = "Not in an organisation, or unencrypted channels are not allowed", body = Problem),
        (status = 422, description = "A name or member that is not allowed", body = Problem)))]
pub async fn create(
    State(state): State<SharedState>,
    Authed(current): Authed,
    ApiJson(req): ApiJson<CreateConversationRequest>,
) -> ApiResult<(StatusCode, ApiJson<Conversation>)> {
    let org_id = org_of(&current)?.to_owned();
    let name = conversations::check_name(req.kind, req.name)?;
    if req.members.contains(&current.user.id) {
        return Err(ApiError::field("members", "the others in it, not yourself"));
    }
    if req.kind == Kind::Direct && req.members.len() != 1 {
        return Err(ApiError::field("members", "a direct message is with exactly one other person"));
    }
    let encryption = if req.encrypted {
        Encryption::Mls
    } else {
        let allowed = current.org.as_ref().is_some_and(|(_, policy)| policy.unencrypted_channels.value);
        if req.kind != Kind::Channel || !allowed {
            return Err(ApiError::forbidden(
                "conversations are end-to-end encrypted; only channels may be plain, where the organisation's policy allows",
            ));
        }
        Encryption::Plain
    };
    let others = newcomers(&state, &org_id, &req.members).await?;
    let founder = state.conversations.newcomer(&current.user.id, false).await?;
    let policy = current.org.as_ref().map(|(_, org)| conversations::conversation_policy(org)).unwrap_or_default();
    let founding = conversations::Founding { org_id, policy, kind: req.kind, name, encryption, founder, others };
    let (loaded, new) = state.conversations.create(founding, state.now_ms()).await?;
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, view(&state, &current, &loaded).await?))
}

/// The caller's conversations, most recently active first.
#[utoipa::path(get, path = "/api/v1/conversations", operation_id = "listConversations", tag = "conversations",
    responses((status = 200, description = "The conversations the caller is in", body = ConversationList)))]
pub async fn list(State(state): State<SharedState>, Authed(current): Authed) -> ApiResult<ApiJson<ConversationList>> {
    let me = &current.user.id;
    let mut conversations = Vec::new();
    for membership in state.store.conversations_of(me).await? {
        let unread = state.store.unread_count(&membership.conversation.id, me, membership.read_seq).await?;
        conversations.push(summary_view(&membership, unread)?);
    }
    Ok(ApiJson(ConversationList { conversations }))
}

/// One conversation with its members (a channel also to people of its
/// organisation who are not in it, so they can join).
#[utoipa::path(get, path = "/api/v1/conversations/{conversation_id}", operation_id = "getConversation", tag = "conversations",
    params(("conversation_id" = String, Path)),
    responses((status = 200, description = "The conversation", body = Conversation),
        (status = 404, description = "No such conversation the caller may see", body = Problem)))]
pub async fn get(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Conversation>> {
    let loaded = visible(&state, &current, &id).await?;
    view(&state, &current, &loaded).await
}

/// Add people (any member of a group; in a channel, anyone unless an admin
/// locked its membership).
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/members", operation_id = "addConversationMembers",
    tag = "conversations", params(("conversation_id" = String, Path)), request_body = AddMembersRequest,
    responses((status = 200, description = "The conversation with them in it", body = Conversation),
        (status = 403, description = "The caller's role, or a locked channel, does not allow it", body = Problem),
        (status = 404, description = "Not a conversation the caller is in", body = Problem)))]
pub async fn add_members(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AddMembersRequest>,
) -> ApiResult<ApiJson<Conversation>> {
    let loaded = state.conversations.load(&id).await?;
    if loaded.state.member(&current.user.id).is_none() {
        return Err(ApiError::not_found("conversation"));
    }
    let people = newcomers(&state, &loaded.row.org_id, &req.user_ids).await?;
    let by = current.user.id.clone();
    let changed = state
        .conversations
        .change(&id, state.now_ms(), |_| Ok(Input::Add { by: by.clone(), newcomers: people.clone() }))
        .await?;
    view(&state, &current, &changed.loaded).await
}

/// Join a channel of the caller's organisation.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/join", operation_id = "joinConversation",
    tag = "conversations", params(("conversation_id" = String, Path)),
    responses((status = 200, description = "The channel, with the caller in it", body = Conversation),
        (status = 403, description = "Not a channel anyone may join, or its membership is locked", body = Problem),
        (status = 404, description = "No such channel in the caller's organisation", body = Problem)))]
pub async fn join(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<Conversation>> {
    visible(&state, &current, &id).await?;
    let newcomer = state.conversations.newcomer(&current.user.id, false).await?;
    let changed =
        state.conversations.change(&id, state.now_ms(), |_| Ok(Input::Join { newcomer: newcomer.clone() })).await?;
    view(&state, &current, &changed.loaded).await
}

/// Remove a member, or leave (the caller's own id).
#[utoipa::path(delete, path = "/api/v1/conversations/{conversation_id}/members/{user_id}",
    operation_id = "removeConversationMember", tag = "conversations",
    params(("conversation_id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204, description = "Out: their devices read nothing more"),
        (status = 403, description = "The caller's role does not allow it", body = Problem),
        (status = 404, description = "Not a conversation the caller is in", body = Problem)))]
pub async fn remove_member(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path((id, user_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let me = current.user.id.clone();
    let input = move |_: &conclave_conversation::Conversation| {
        Ok(if user_id == me {
            Input::Leave { account: me.clone() }
        } else {
            Input::Remove { by: me.clone(), account: user_id.clone() }
        })
    };
    state.conversations.change(&id, state.now_ms(), input).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give a member a role (owners only).
#[utoipa::path(put, path = "/api/v1/conversations/{conversation_id}/members/{user_id}/role",
    operation_id = "setConversationRole", tag = "conversations",
    params(("conversation_id" = String, Path), ("user_id" = String, Path)), request_body = SetConversationRoleRequest,
    responses((status = 200, description = "The conversation", body = Conversation),
        (status = 403, description = "Only owners give roles", body = Problem),
        (status = 409, description = "The last owner cannot step down", body = Problem)))]
pub async fn set_role(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path((id, user_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<SetConversationRoleRequest>,
) -> ApiResult<ApiJson<Conversation>> {
    let by = current.user.id.clone();
    let input = |_: &conclave_conversation::Conversation| {
        Ok(Input::SetRole { by: by.clone(), account: user_id.clone(), role: req.role })
    };
    let changed = state.conversations.change(&id, state.now_ms(), input).await?;
    view(&state, &current, &changed.loaded).await
}

/// Lock a channel's membership, archive a conversation, or undo either (admins).
#[utoipa::path(patch, path = "/api/v1/conversations/{conversation_id}", operation_id = "updateConversation",
    tag = "conversations", params(("conversation_id" = String, Path)), request_body = ConversationSettingsUpdate,
    responses((status = 200, description = "The conversation", body = Conversation),
        (status = 403, description = "Admins only", body = Problem)))]
pub async fn update(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ConversationSettingsUpdate>,
) -> ApiResult<ApiJson<Conversation>> {
    let by = current.user.id.clone();
    let mut loaded = state.conversations.load(&id).await?;
    if loaded.state.member(&by).is_none() {
        return Err(ApiError::not_found("conversation"));
    }
    let changes = [
        req.archived.map(|archived| Input::Archive { by: by.clone(), archived }),
        req.locked.map(|locked| Input::Lock { by: by.clone(), locked }),
    ];
    for input in changes.into_iter().flatten() {
        loaded = state.conversations.change(&id, state.now_ms(), |_| Ok(input.clone())).await?.loaded;
    }
    view(&state, &current, &loaded).await
}

/// Send a message from one of the caller's devices: MLS ciphertext in an
/// encrypted conversation. Durable when answered; sent again with the same
/// client id, it is the same message (200).
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/messages", operation_id = "sendMessage",
    tag = "conversations", params(("conversation_id" = String, Path)), request_body = SendMessageRequest,
    responses((status = 201, description = "In the log", body = MessageAccepted),
        (status = 200, description = "A retry of a message already in the log", body = MessageAccepted),
        (status = 409, description = "Encrypted in an epoch the group has left, or the device is not in the group yet", body = Problem),
        (status = 404, description = "Not a conversation the caller is in, or not the caller's device", body = Problem)))]
pub async fn send(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SendMessageRequest>,
) -> ApiResult<(StatusCode, ApiJson<MessageAccepted>)> {
    own_device(&state, &current, &req.device_id).await?;
    let accepted = send_message(&state, &current.user.id, &id, req).await?;
    let status = if accepted.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, ApiJson(accepted)))
}

/// A message from `account`'s device `req.device_id` (known to be the
/// account's) into conversation `id`, durable when this returns; sent
/// over the API or the device's live connection alike.
async fn send_message(
    state: &SharedState,
    account: &str,
    id: &str,
    req: SendMessageRequest,
) -> ApiResult<MessageAccepted> {
    if matches!(req.reference, Some(Reference::Edit(_))) {
        state.conversations.follow_policy(id, state.now_ms()).await?;
    }
    let reference = match req.reference {
        Some(reference) => Some((reference, state.conversations.target(id, reference.target()).await?)),
        None => None,
    };
    // A retry is recognised by its client id only once the send is refused
    // (its files are shared already, its epoch is gone, its entry is in):
    // a first send, nearly every one, costs no lookup.
    let (device_id, client_id) = (req.device_id.clone(), req.client_id.clone());
    let retry = || retry_of(state, id, &device_id, &client_id);
    if let Err(refused) = shareable(state, account, id, &req.files).await {
        return retry().await?.ok_or(refused);
    }
    let message = OutgoingMessage {
        device: req.device_id,
        client_id: req.client_id,
        epoch: req.epoch,
        content: req.content,
        reference,
        earlier: None,
        history: req.history,
        control: req.control,
        files: req.files,
    };
    // Written in a task of its own: this send may be writing the sends of
    // others waiting behind it (group commit), and a client that goes away
    // must not cancel their writes with its own.
    let writing = {
        let (state, id, now) = (state.clone(), id.to_owned(), state.now_ms());
        tokio::spawn(async move { state.conversations.send(&id, now, message).await })
    };
    let effects = match writing.await.map_err(|_| ApiError::internal())? {
        Ok(effects) => effects,
        Err(refused) => {
            if let Some(retried) = retry().await? {
                return Ok(retried);
            }
            return Err(match refused {
                // Another message took a file between the check and the write.
                ConversationError::Store(StoreError::Conflict("file")) => {
                    ApiError::file_not_shareable("another message shares one of these files already")
                }
                refused => refused.into(),
            });
        }
    };
    // A retry is answered above (`retry_of`), never decided as one here.
    let seq = effects.iter().find_map(|effect| match effect {
        Effect::Append(entry) => Some(entry.seq),
        _ => None,
    });
    let seq = seq.ok_or_else(ApiError::internal)?;
    Ok(MessageAccepted { seq, duplicate: false })
}

/// The answer to a retry: the message `device_id` sent under `client_id`,
/// if the log holds it (what it got the first time, whatever changed since).
async fn retry_of(
    state: &SharedState,
    id: &str,
    device_id: &str,
    client_id: &str,
) -> ApiResult<Option<MessageAccepted>> {
    let earlier = state.store.message_by_client_id(id, device_id, client_id).await?;
    Ok(earlier.map(|seq| MessageAccepted { seq: seq as u64, duplicate: true }))
}

/// Files a new message may share: the sender's own completed uploads to
/// this conversation, shared by no message yet.
async fn shareable(state: &SharedState, account: &str, id: &str, files: &[String]) -> ApiResult<()> {
    for file_id in files {
        let file = state.store.file(file_id).await?;
        let ok = file.as_ref().is_some_and(|f| {
            f.conversation_id == id && f.uploaded_by == account && f.message_seq.is_none() && !f.erasing
        });
        if !ok {
            return Err(ApiError::file_not_shareable(format!(
                "file {file_id} is not an upload of yours to this conversation that no message shares"
            )));
        }
        if !file.is_some_and(|f| f.complete) {
            return Err(ApiError::conflict(
                conclave_proto::problem::ProblemCode::UploadIncomplete,
                format!("file {file_id} is not completely uploaded"),
            ));
        }
    }
    Ok(())
}

/// The caller has read the conversation up to `seq`: their read receipt,
/// seen by the other members, and what is unread for them.
#[utoipa::path(put, path = "/api/v1/conversations/{conversation_id}/read", operation_id = "markConversationRead",
    tag = "conversations", params(("conversation_id" = String, Path)), request_body = MarkReadRequest,
    responses((status = 204, description = "Noted (a position before an earlier one changes nothing)"),
        (status = 404, description = "Not a conversation the caller is in", body = Problem),
        (status = 422, description = "Past the end of the log", body = Problem)))]
pub async fn mark_read(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<MarkReadRequest>,
) -> ApiResult<StatusCode> {
    let loaded = state.conversations.load(&id).await?;
    if loaded.state.member(&current.user.id).is_none() {
        return Err(ApiError::not_found("conversation"));
    }
    if req.seq > loaded.state.last_seq() {
        return Err(ApiError::field("seq", "past the end of the conversation"));
    }
    state.store.mark_read(&id, &current.user.id, req.seq as i64).await?;
    let event = LiveEvent::Read { conversation_id: id.clone(), user_id: current.user.id.clone(), seq: req.seq };
    state.conversations.live.publish(loaded.state.members().keys().map(String::as_str), None, event);
    Ok(StatusCode::NO_CONTENT)
}

/// Mute or unmute a conversation for the caller.
#[utoipa::path(put, path = "/api/v1/conversations/{conversation_id}/mute", operation_id = "muteConversation",
    tag = "conversations", params(("conversation_id" = String, Path)), request_body = MuteRequest,
    responses((status = 204, description = "Done"), (status = 404, description = "Not a conversation the caller is in", body = Problem)))]
pub async fn mute(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<MuteRequest>,
) -> ApiResult<StatusCode> {
    let loaded = state.conversations.load(&id).await?;
    if loaded.state.member(&current.user.id).is_none() {
        return Err(ApiError::not_found("conversation"));
    }
    state.store.set_muted(&id, &current.user.id, req.muted).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start a call from the conversation: a meeting the caller hosts, under
/// the organisation's policy, that lets the conversation's members in
/// without its waiting room (anyone else with the link still waits).
/// Everyone in the conversation sees that a call started; its link is the
/// caller's to share, encrypted, in the conversation.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/calls", operation_id = "startCall",
    tag = "conversations", params(("conversation_id" = String, Path)),
    responses((status = 201, description = "The meeting, with its link", body = conclave_proto::Meeting),
        (status = 404, description = "Not a conversation the caller is in", body = Problem),
        (status = 409, description = "The conversation is archived", body = Problem)))]
pub async fn start_call(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, ApiJson<conclave_proto::Meeting>)> {
    let loaded = state.conversations.load(&id).await?;
    if loaded.state.member(&current.user.id).is_none() {
        return Err(ApiError::not_found("conversation"));
    }
    if loaded.state.is_archived() {
        return Err(conversations::ConversationError::Refused(conclave_conversation::Refusal::Archived).into());
    }
    let invited: Vec<String> = loaded.state.members().keys().filter(|a| **a != current.user.id).cloned().collect();
    let request = conclave_proto::CreateMeetingRequest {
        title: loaded.row.name.clone().unwrap_or_else(|| "Call".to_owned()),
        scheduled_start_ms: None,
        duration_minutes: None,
        passcode: None,
        settings: Default::default(),
        invitees: Vec::new(),
    };
    let meeting = super::meetings::create_meeting(&state, &current, ip, &request, &invited).await?;
    let by = current.user.id.clone();
    let call =
        |_: &conclave_conversation::Conversation| Ok(Input::Call { by: by.clone(), meeting_id: meeting.id.clone() });
    state.conversations.change(&id, state.now_ms(), call).await?;
    Ok((StatusCode::CREATED, ApiJson(super::meetings::view(&state, &meeting))))
}

/// Delete a message for everyone (its author within the policy's time, or
/// an admin): its content is erased from the server.
#[utoipa::path(delete, path = "/api/v1/conversations/{conversation_id}/messages/{seq}", operation_id = "deleteMessage",
    tag = "conversations", params(("conversation_id" = String, Path), ("seq" = u64, Path)),
    responses((status = 204, description = "Deleted for everyone"),
        (status = 403, description = "Not the author, or too late", body = Problem)))]
pub async fn delete_message(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path((id, seq)): Path<(String, u64)>,
) -> ApiResult<StatusCode> {
    state.conversations.follow_policy(&id, state.now_ms()).await?;
    let target = state.conversations.target(&id, seq).await?;
    let by = current.user.id.clone();
    let input = |_: &conclave_conversation::Conversation| Ok(Input::Delete { by: by.clone(), target: target.clone() });
    let changed = state.conversations.change(&id, state.now_ms(), input).await?;
    if changed.effects.iter().any(|e| matches!(e, Effect::Erase(_))) {
        crate::files::erase_soon(&state);
        conversations::segments::tidy_soon(&state);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    /// The caller's device reading.
    pub device_id: String,
    /// Entries after this one (0: from the first this device may read).
    #[serde(default)]
    pub after: u64,
    /// Page size, 1–500 (default 100).
    pub limit: Option<u32>,
    /// With nothing new, wait this long (at most 30,000 ms) for something.
    #[serde(default)]
    pub wait_ms: u64,
    /// The messages from before this device joined the group instead, as
    /// their history copies (the MLS ciphertext left out): from the
    /// account's own start in the conversation, or from the first if the
    /// conversation lets newcomers see earlier history.
    #[serde(default)]
    pub earlier: bool,
}

/// The log as one of the caller's devices may read it: every entry from
/// the one its group membership starts at (nothing while it is not in the
/// group), in order. With `wait_ms`, an empty page waits for the next entry.
#[utoipa::path(get, path = "/api/v1/conversations/{conversation_id}/entries", operation_id = "readConversation",
    tag = "conversations", params(("conversation_id" = String, Path), EntriesQuery),
    responses((status = 200, description = "A page of the log", body = EntryPage),
        (status = 404, description = "Not a conversation the caller is in, or not the caller's device", body = Problem)))]
pub async fn entries(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(id): Path<String>,
    q: Query_<EntriesQuery>,
) -> ApiResult<ApiJson<EntryPage>> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_ENTRIES_PER_PAGE).contains(&limit) {
        return Err(ApiError::field("limit", format!("must be between 1 and {MAX_ENTRIES_PER_PAGE}")));
    }
    own_device(&state, &current, &q.device_id).await?;
    let wait = Duration::from_millis(q.wait_ms.min(MAX_WAIT_MS));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let loaded = state.conversations.read(&id).await?;
        if loaded.state.member(&current.user.id).is_none() {
            return Err(ApiError::not_found("conversation"));
        }
        // A device of the group is here: if the committer has left the
        // group's work undone too long (its device offline), this one takes over.
        let now = state.now_ms();
        let loaded = if loaded.state.committer_overdue(now) && loaded.state.holds_device(&q.device_id) {
            let present = |_: &conclave_conversation::Conversation| Ok(Input::Present { device: q.device_id.clone() });
            std::sync::Arc::new(state.conversations.change(&id, now, present).await?.loaded)
        } else {
            loaded
        };
        let last_seq = loaded.state.last_seq();
        let Some(from) = loaded.state.readable_from(&q.device_id) else {
            return Ok(ApiJson(EntryPage { entries: Vec::new(), readable_from: None, last_seq }));
        };
        if q.earlier {
            return earlier_entries(&state, &loaded, &current.user.id, from, q.after, limit).await.map(ApiJson);
        }
        // Nothing before what this device may read, nothing past what it
        // was allowed when checked (a removal may land meanwhile).
        let after = q.after.min(last_seq).max(from.saturating_sub(1));
        if after < last_seq || tokio::time::Instant::now() >= deadline {
            let mut rows =
                state.store.conversation_entries(&id, after as i64, last_seq as i64, i64::from(limit)).await?;
            conversations::segments::fill(&state, &id, &mut rows).await?;
            let entries = rows.iter().map(entry_from_row).collect::<Result<_, _>>()?;
            return Ok(ApiJson(EntryPage { entries, readable_from: Some(from), last_seq }));
        }
        let mut grown = state.conversations.watch(&id, last_seq);
        // Woken by a write on this node, or by the deadline (then read once more).
        let _ = tokio::time::timeout_at(deadline, grown.wait_for(|seq| *seq > last_seq)).await;
    }
}

/// The history copies of the messages before `from` that the caller's
/// account may see, after `after`.
async fn earlier_entries(
    state: &SharedState,
    loaded: &conversations::Loaded,
    account: &str,
    from: u64,
    after: u64,
    limit: u32,
) -> Result<EntryPage, ApiError> {
    let member = loaded.state.member(account).ok_or_else(|| ApiError::not_found("conversation"))?;
    let start = if loaded.state.policy().newcomers_see_history { 0 } else { member.since.saturating_sub(1) };
    let after = after.max(start).min(from.saturating_sub(1));
    let mut rows =
        state.store.conversation_entries(&loaded.row.id, after as i64, from as i64 - 1, i64::from(limit)).await?;
    conversations::segments::fill(state, &loaded.row.id, &mut rows).await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut entry = entry_from_row(row)?;
        // MLS messages of epochs before it are no use to this device.
        match &mut entry.body {
            EntryBody::Message { content, .. } => content.clear(),
            EntryBody::Commit { commit, .. } => commit.clear(),
            EntryBody::AddRequest { key_package, .. } => key_package.clear(),
            _ => {}
        }
        entries.push(entry);
    }
    Ok(EntryPage { entries, readable_from: Some(from), last_seq: loaded.state.last_seq() })
}

/// One of the caller's devices asks to be added to the conversation's MLS
/// group: the first device creates it, later ones are added by the
/// committer the server names (answers arrive in the device's inbox).
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/key-packages", operation_id = "uploadKeyPackage",
    tag = "conversations", params(("conversation_id" = String, Path)), request_body = KeyPackageRequest,
    responses((status = 202, description = "Taken: the device's inbox will have what follows"),
        (status = 409, description = "Not a KeyPackage this group needs", body = Problem)))]
pub async fn key_package(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<KeyPackageRequest>,
) -> ApiResult<StatusCode> {
    own_device(&state, &current, &req.device_id).await?;
    let input = |_: &conclave_conversation::Conversation| {
        Ok(Input::KeyPackage { device: req.device_id.clone(), key_package: req.key_package.clone() })
    };
    state.conversations.change(&id, state.now_ms(), input).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The largest body a commit may have: the commit and its Welcome, each as
/// large as the delivery service takes, and the devices named.
pub const COMMIT_BODY_LIMIT: usize = 2 * conclave_delivery::MAX_HANDSHAKE + 64 * 1024;

/// An MLS commit from the committer the server named, adding and removing
/// exactly the devices it was asked to.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/commits", operation_id = "sendCommit",
    tag = "conversations", params(("conversation_id" = String, Path)), request_body = CommitRequest,
    responses((status = 201, description = "In the log: the group is at the next epoch", body = Conversation),
        (status = 409, description = "Refused: not the committer, stale, or beyond what was asked", body = Problem)))]
pub async fn commit(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CommitRequest>,
) -> ApiResult<(StatusCode, ApiJson<Conversation>)> {
    own_device(&state, &current, &req.device_id).await?;
    let proposed = ProposedCommit {
        epoch: req.epoch,
        commit: req.commit,
        welcome: req.welcome,
        added: req.added,
        removed: req.removed,
    };
    let input = |_: &conclave_conversation::Conversation| {
        Ok(Input::Commit { device: req.device_id.clone(), commit: proposed.clone() })
    };
    let changed = state.conversations.change(&id, state.now_ms(), input).await?;
    Ok((StatusCode::CREATED, view(&state, &current, &changed.loaded).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// Messages after this id; those up to it are taken (deleted).
    #[serde(default)]
    pub after: i64,
    /// Page size, 1–500 (default 100).
    pub limit: Option<u32>,
}

/// What the MLS handshake has for one of the caller's devices, in every
/// conversation: asking past a message acknowledges it.
#[utoipa::path(get, path = "/api/v1/me/devices/{device_id}/inbox", operation_id = "readDeviceInbox",
    tag = "conversations", params(("device_id" = String, Path), InboxQuery),
    responses((status = 200, description = "The device's handshake messages", body = InboxPage),
        (status = 404, description = "Not the caller's device", body = Problem)))]
pub async fn inbox(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(device_id): Path<String>,
    q: Query_<InboxQuery>,
) -> ApiResult<ApiJson<InboxPage>> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_ENTRIES_PER_PAGE).contains(&limit) {
        return Err(ApiError::field("limit", format!("must be between 1 and {MAX_ENTRIES_PER_PAGE}")));
    }
    own_device(&state, &current, &device_id).await?;
    let rows = state.store.device_inbox(&device_id, q.after, i64::from(limit)).await?;
    let mut messages = Vec::with_capacity(rows.len());
    for row in rows {
        let mut handshake = serde_json::from_str(&row.handshake_json).map_err(|_| {
            conclave_store::StoreError::Corrupt { column: "device_inbox.handshake_json", value: row.id.to_string() }
        })?;
        // A Welcome is kept once for all the devices it adds.
        if let (Handshake::Welcome { welcome, .. }, Some(stored)) = (&mut handshake, row.welcome) {
            *welcome = stored;
        }
        messages.push(InboxMessage { id: row.id, conversation_id: row.conversation_id, handshake });
    }
    Ok(ApiJson(InboxPage { messages }))
}

/// One of the caller's devices, live: a WebSocket on which the server says
/// when a conversation of the account grows, when the device's inbox has
/// something, and who is typing or has read what; the device says when
/// its person types, and may send its messages on it (each answered on it)
/// instead of one request apiece.
#[utoipa::path(get, path = "/api/v1/me/devices/{device_id}/live", operation_id = "deviceLive", tag = "conversations",
    params(("device_id" = String, Path)),
    responses((status = 101, description = "Switching to the live WebSocket"),
        (status = 404, description = "Not the caller's device", body = Problem)))]
pub async fn live(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(device_id): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    own_device(&state, &current, &device_id).await?;
    let upgrade = upgrade.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            conclave_proto::ProblemCode::WebsocketRequired,
            "A WebSocket is required",
        )
    })?;
    let (account, session) = (current.user.id.clone(), current.session.id.clone());
    // A message sent on it is as large as the API's request bodies may be.
    let largest = state.config.limits.max_body_bytes.max(LIVE_BUFFER_BYTES);
    Ok(upgrade
        .read_buffer_size(LIVE_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(largest)
        .max_frame_size(largest)
        .on_upgrade(move |socket| {
            let listener = Listener { account, session, device: device_id, checked_until: Default::default() };
            live_connection(state, socket, listener)
        }))
}

/// Live events and typing notices are a few hundred bytes.
const LIVE_BUFFER_BYTES: usize = 4 * 1024;
/// How often a live connection checks that its session, account and device
/// still stand (signed out, deactivated or revoked: it closes).
const LIVE_RECHECK: Duration = Duration::from_secs(15);
/// Typing notices (and frames that are no command) a device may send a
/// second (and at once); more closes the connection. Counted by the same
/// token bucket as signaling, on the server's clock. Messages have a
/// budget of their own (`LIVE_SENDS_PER_SECOND`), refused past it.
const LIVE_FRAMES_PER_SECOND: u32 = 10;
/// Conversations a connection remembers typing in (past it, it starts over).
const LIVE_TYPING_REMEMBERED: usize = 256;

/// How long a live connection's sends trust their last check that the
/// session, account and device stand. A sign-out, revocation or
/// deactivation on this node ends the trust (and the connection) at once;
/// one on another node is seen by the next send after this long.
const LIVE_SEND_CHECK_MS: i64 = 1_000;

/// Who is listening on a live connection.
struct Listener {
    account: String,
    session: String,
    device: String,
    /// Until when (server clock, ms) a send needs no check of its own.
    checked_until: std::sync::atomic::AtomicI64,
}

impl Listener {
    /// Sends a message from this connection's device: checked as the API
    /// checks a send (in one read: the session signed in, the account
    /// active, the device not revoked; at most `LIVE_SEND_CHECK_MS` before),
    /// then written as the API writes it.
    async fn send(&self, state: &SharedState, conversation_id: String, message: SendMessageRequest) -> LiveEvent {
        let client_id = message.client_id.clone();
        let sent = async {
            if message.device_id != self.device {
                return Err(ApiError::not_found("device"));
            }
            let now = state.now_ms();
            if now >= self.checked_until.load(Ordering::Acquire) {
                if !self.still_stands(state).await {
                    return Err(ApiError::unauthenticated());
                }
                self.checked_until.fetch_max(now + LIVE_SEND_CHECK_MS, Ordering::AcqRel);
            }
            send_message(state, &self.account, &conversation_id, message).await
        };
        match sent.await {
            Ok(MessageAccepted { seq, duplicate }) => LiveEvent::Sent { conversation_id, client_id, seq, duplicate },
            Err(refused) => {
                if refused.status.is_server_error() {
                    tracing::error!(status = %refused.status, "a message sent on a live connection failed");
                }
                LiveEvent::NotSent { conversation_id, client_id, problem: refused.to_problem() }
            }
        }
    }

    /// Whether the session is still signed in, the account active and the device not revoked.
    async fn still_stands(&self, state: &SharedState) -> bool {
        let now = state.now_ms();
        let stands = state.store.device_session_stands(&self.session, &self.account, &self.device, now).await;
        stands.unwrap_or(false)
    }
}

async fn live_connection(state: SharedState, socket: WebSocket, listener: Listener) {
    use futures_util::{SinkExt, StreamExt};
    let listener = std::sync::Arc::new(listener);
    let Listener { account, device, .. } = &*listener;
    let mut events = state.conversations.live.subscribe(account);
    let _connected = state.conversations.live.connect(device);
    let (mut out, mut incoming) = socket.split();
    let mut last_typing: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut recheck = tokio::time::interval(LIVE_RECHECK);
    recheck.tick().await;
    let clock = |state: &SharedState| state.now_ms().max(0) as u64;
    let rate = f64::from(LIVE_FRAMES_PER_SECOND);
    let mut frames = conclave_auth::TokenBucket::new(LIVE_FRAMES_PER_SECOND, rate, clock(&state));
    let mut send_budget =
        conclave_auth::TokenBucket::new(2 * LIVE_SENDS_PER_SECOND, f64::from(LIVE_SENDS_PER_SECOND), clock(&state));
    // Sends being written, each in a task of its own (a slow one holds up
    // neither the others nor the events); their answers come back here.
    let (answers_tx, mut answers) = tokio::sync::mpsc::channel::<LiveEvent>(LIVE_SENDS_IN_FLIGHT);
    let mut in_flight = 0usize;
    loop {
        let said: String = tokio::select! {
            // In this order when several are ready: a revocation heard
            // before a send that came after it ends the send's trust first.
            biased;
            event = events.recv() => match event {
                Ok(addressed) if addressed.is_for(device) => match addressed.event {
                    Some(event) => event.as_ref().into(),
                    None => {
                        listener.checked_until.store(0, Ordering::Release);
                        if listener.still_stands(&state).await {
                            continue;
                        }
                        let _ = out.send(Message::Close(None)).await;
                        break;
                    }
                },
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    serde_json::to_string(&LiveEvent::Resync).expect("live events serialise")
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = recheck.tick() => {
                if !listener.still_stands(&state).await {
                    let _ = out.send(Message::Close(None)).await;
                    break;
                }
                continue;
            }
            Some(answer) = answers.recv() => {
                in_flight -= 1;
                serde_json::to_string(&answer).expect("live events serialise")
            }
            frame = incoming.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let now = state.now_ms();
                    match serde_json::from_str::<LiveCommand>(&text) {
                        Ok(LiveCommand::Send { conversation_id, message }) => {
                            if send_budget.take(clock(&state)).is_err() || in_flight >= LIVE_SENDS_IN_FLIGHT {
                                let problem = ApiError::throttled(Duration::from_secs(1)).to_problem();
                                let refused = LiveEvent::NotSent { conversation_id, client_id: message.client_id, problem };
                                serde_json::to_string(&refused).expect("live events serialise")
                            } else {
                                in_flight += 1;
                                let (state, listener, answers) = (state.clone(), listener.clone(), answers_tx.clone());
                                tokio::spawn(async move {
                                    let answer = listener.send(&state, conversation_id, message).await;
                                    let _ = answers.send(answer).await;
                                });
                                continue;
                            }
                        }
                        Ok(LiveCommand::Typing { conversation_id }) if frames.take(clock(&state)).is_ok() => {
                            typing(&state, account, conversation_id, now, &mut last_typing).await;
                            continue;
                        }
                        // Too many notices, or no command at all.
                        _ => {
                            let _ = out.send(Message::Close(None)).await;
                            break;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
        };
        if out.send(Message::Text(said.into())).await.is_err() {
            break;
        }
    }
}

/// Tells the conversation's other members that `account` is typing: one
/// notice per conversation every few seconds, and only to a conversation
/// the account is in.
async fn typing(
    state: &SharedState,
    account: &str,
    conversation_id: String,
    now: i64,
    last_typing: &mut std::collections::HashMap<String, i64>,
) {
    let due = last_typing.get(&conversation_id).is_none_or(|at| now.saturating_sub(*at) >= TYPING_EVERY_MS as i64);
    if !due {
        return;
    }
    let Ok(loaded) = state.conversations.load(&conversation_id).await else { return };
    if loaded.state.member(account).is_none() {
        return;
    }
    if last_typing.len() >= LIVE_TYPING_REMEMBERED {
        last_typing.clear();
    }
    last_typing.insert(conversation_id.clone(), now);
    let others = loaded.state.members().keys().map(String::as_str).filter(|a| *a != account);
    let event = LiveEvent::Typing { conversation_id, user_id: account.to_owned() };
    state.conversations.live.publish(others, None, event);
}
