//! Files shared in conversations: a device uploads a file's sealed parts
//! (resumably: each part is put on its own, and the file's status says
//! which are in), completes the upload, then shares it in a message; the
//! conversation's members download the parts and open them with the key in
//! that message. The server never sees a key, a name or a type.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use conclave_proto::file::{file_parts, sealed_part_len, FileStatus, StartUploadRequest};
use conclave_proto::problem::ProblemCode;
use conclave_proto::Problem;
use conclave_store::FileRow;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, CurrentSession};
use crate::files::{erase_soon, Location};
use crate::state::SharedState;

/// The largest body a part upload may have: a whole sealed part.
pub const PART_BODY_LIMIT: usize =
    (conclave_proto::file::FILE_CHUNK_BYTES + conclave_proto::file::FILE_TAG_BYTES) as usize;

const MIB: u64 = 1 << 20;

async fn status_of(state: &SharedState, file: &FileRow) -> ApiResult<FileStatus> {
    let received = state.store.file_parts(&file.id).await?;
    Ok(FileStatus {
        file_id: file.id.clone(),
        conversation_id: file.conversation_id.clone(),
        uploaded_by: file.uploaded_by.clone(),
        size: file.size as u64,
        parts: file.parts as u32,
        received: received.into_iter().map(|p| p as u32).collect(),
        complete: file.complete,
        message_seq: file.message_seq.map(|s| s as u64),
        created_at_ms: file.created_at_ms,
    })
}

/// A file the caller may read: one of a conversation they are in now, not
/// being erased. Anything else is not found, so file ids tell outsiders
/// nothing.
async fn readable(state: &SharedState, current: &CurrentSession, file_id: &str) -> ApiResult<FileRow> {
    let file = state.store.file(file_id).await?.filter(|f| !f.erasing).ok_or_else(|| ApiError::not_found("file"))?;
    let loaded = state.conversations.load(&file.conversation_id).await?;
    if loaded.state.member(&current.user.id).is_none() {
        return Err(ApiError::not_found("file"));
    }
    Ok(file)
}

/// An upload of the caller's own, still open to parts.
async fn own_upload(state: &SharedState, current: &CurrentSession, file_id: &str) -> ApiResult<FileRow> {
    let file = readable(state, current, file_id).await?;
    if file.uploaded_by != current.user.id {
        return Err(ApiError::not_found("file"));
    }
    Ok(file)
}

/// Makes room for a file in the conversation, in the storage its
/// organisation chose; the parts follow.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/files", operation_id = "startUpload",
    tag = "files", params(("conversation_id" = String, Path)), request_body = StartUploadRequest,
    responses((status = 201, description = "Upload the parts next", body = FileStatus),
        (status = 404, description = "Not a conversation the caller is in, or not the caller's device", body = Problem),
        (status = 409, description = "The conversation is archived", body = Problem),
        (status = 413, description = "Larger than the organisation allows", body = Problem)))]
pub async fn start_upload(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(conversation_id): Path<String>,
    ApiJson(req): ApiJson<StartUploadRequest>,
) -> ApiResult<(StatusCode, ApiJson<FileStatus>)> {
    super::conversations::own_device(&state, &current, &req.device_id).await?;
    let loaded = state.conversations.load(&conversation_id).await?;
    if loaded.state.member(&current.user.id).is_none() {
        return Err(ApiError::not_found("conversation"));
    }
    if loaded.state.is_archived() {
        let refused = conclave_conversation::Refusal::Archived;
        return Err(crate::conversations::ConversationError::Refused(refused).into());
    }
    // The conversation's organisation keeps it and sets its limit.
    let org_id = &loaded.row.org_id;
    let (_, policy) = state.store.org_by_id(org_id).await?.ok_or_else(|| ApiError::not_found("organisation"))?;
    let limit = u64::from(policy.max_file_mib.value) * MIB;
    if req.size > limit {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ProblemCode::FileTooLarge, "The file is too large")
            .with_detail(format!("this organisation allows files up to {} MiB", policy.max_file_mib.value)));
    }
    let storage = state.store.org_storage(org_id).await?.storage.map(|s| s.id);
    let file = FileRow {
        id: conclave_store::new_id(),
        conversation_id,
        org_id: org_id.clone(),
        storage_id: storage,
        uploaded_by: current.user.id.clone(),
        device_id: req.device_id,
        size: req.size as i64,
        parts: i64::from(file_parts(req.size)),
        complete: false,
        message_seq: None,
        erasing: false,
        created_at_ms: state.now_ms(),
    };
    state.store.create_file(&file).await?;
    Ok((StatusCode::CREATED, ApiJson(status_of(&state, &file).await?)))
}

/// A file's status: for its uploader, which parts are in (to resume); for
/// members, whether it is complete and which message shares it.
#[utoipa::path(get, path = "/api/v1/files/{file_id}", operation_id = "getFile", tag = "files",
    params(("file_id" = String, Path)),
    responses((status = 200, description = "The file", body = FileStatus),
        (status = 404, description = "No file the caller may see", body = Problem)))]
pub async fn status(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(file_id): Path<String>,
) -> ApiResult<ApiJson<FileStatus>> {
    let file = readable(&state, &current, &file_id).await?;
    Ok(ApiJson(status_of(&state, &file).await?))
}

/// Stores one sealed part (`application/octet-stream`, exactly as long as
/// its place in the file says). Putting a part again replaces it.
#[utoipa::path(put, path = "/api/v1/files/{file_id}/parts/{part}", operation_id = "putFilePart", tag = "files",
    params(("file_id" = String, Path), ("part" = u32, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 204, description = "Stored"),
        (status = 404, description = "No upload of the caller's", body = Problem),
        (status = 409, description = "The upload is complete already", body = Problem),
        (status = 422, description = "No such part, or the wrong length for it", body = Problem)))]
pub async fn put_part(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path((file_id, part)): Path<(String, u32)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let file = own_upload(&state, &current, &file_id).await?;
    if file.complete {
        return Err(ApiError::conflict(ProblemCode::Conflict, "the upload is complete; its parts cannot change"));
    }
    let Some(expected) = sealed_part_len(file.size as u64, part) else {
        return Err(ApiError::field("part", format!("the file has parts 0 to {}", file.parts - 1)));
    };
    if body.len() as u64 != expected {
        return Err(ApiError::field("body", format!("part {part} is {expected} bytes sealed, not {}", body.len())));
    }
    let location = Location::of(&state, &file).await?;
    state.blobs.put_part(location.place(), &file.id, part, body).await?;
    state.store.add_file_part(&file.id, i64::from(part)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every part is in: the file may be shared.
#[utoipa::path(post, path = "/api/v1/files/{file_id}/complete", operation_id = "completeUpload", tag = "files",
    params(("file_id" = String, Path)),
    responses((status = 200, description = "Complete", body = FileStatus),
        (status = 404, description = "No upload of the caller's", body = Problem),
        (status = 409, description = "Parts are missing (the detail says which)", body = Problem)))]
pub async fn complete(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(file_id): Path<String>,
) -> ApiResult<ApiJson<FileStatus>> {
    let file = own_upload(&state, &current, &file_id).await?;
    if !file.complete && !state.store.complete_file(&file.id).await? {
        let held = state.store.file_parts(&file.id).await?;
        let missing: Vec<String> =
            (0..file.parts).filter(|p| !held.contains(p)).take(20).map(|p| p.to_string()).collect();
        return Err(ApiError::conflict(
            ProblemCode::UploadIncomplete,
            format!("missing parts: {}", missing.join(", ")),
        ));
    }
    let file = own_upload(&state, &current, &file_id).await?;
    Ok(ApiJson(status_of(&state, &file).await?))
}

/// Gives up an upload no message shares (a shared file goes with its
/// message's deletion).
#[utoipa::path(delete, path = "/api/v1/files/{file_id}", operation_id = "abandonUpload", tag = "files",
    params(("file_id" = String, Path)),
    responses((status = 204, description = "Given up; its parts are being deleted"),
        (status = 404, description = "No upload of the caller's", body = Problem),
        (status = 409, description = "A message shares it: delete the message", body = Problem)))]
pub async fn abandon(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(file_id): Path<String>,
) -> ApiResult<StatusCode> {
    let file = own_upload(&state, &current, &file_id).await?;
    if !state.store.abandon_file(&file.id).await? {
        return Err(ApiError::file_not_shareable("a message shares this file: delete the message instead"));
    }
    erase_soon(&state);
    Ok(StatusCode::NO_CONTENT)
}

/// One sealed part of a completed file, for the conversation's members.
#[utoipa::path(get, path = "/api/v1/files/{file_id}/parts/{part}", operation_id = "getFilePart", tag = "files",
    params(("file_id" = String, Path), ("part" = u32, Path)),
    responses((status = 200, description = "The sealed part", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 404, description = "No such part of a file the caller may read", body = Problem),
        (status = 409, description = "The upload is not complete", body = Problem)))]
pub async fn get_part(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path((file_id, part)): Path<(String, u32)>,
) -> ApiResult<Response> {
    let file = readable(&state, &current, &file_id).await?;
    if !file.complete && file.uploaded_by != current.user.id {
        return Err(ApiError::conflict(ProblemCode::UploadIncomplete, "the file is still being uploaded"));
    }
    if i64::from(part) >= file.parts {
        return Err(ApiError::not_found("file part"));
    }
    let location = Location::of(&state, &file).await?;
    let bytes = state.blobs.get_part(location.place(), &file.id, part).await?;
    // Members come and go: a cache must not serve a part to someone who left.
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "private, no-store")], bytes)
        .into_response())
}
