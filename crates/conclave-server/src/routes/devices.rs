//! The account's E2EE devices: list, register, revoke.

use crate::devices::{device_view, DeviceError};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp};
use crate::state::SharedState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::ProblemCode;
use conclave_proto::{DeviceList, DeviceRegistration, Problem, RegisterDeviceRequest};

/// The account's devices: every browser or app that holds an E2EE key for it.
#[utoipa::path(get, path = "/api/v1/me/devices", operation_id = "listDevices", tag = "devices",
    responses((status = 200, description = "The devices not revoked, oldest first", body = DeviceList),
        (status = 401, description = "Not signed in", body = Problem)))]
pub async fn list(State(state): State<SharedState>, Authed(current): Authed) -> ApiResult<ApiJson<DeviceList>> {
    let rows = state.store.devices_of(&current.user.id).await?;
    Ok(ApiJson(DeviceList { devices: rows.iter().map(device_view).collect() }))
}

/// Register this device's key with the account (once: the same key again is
/// the same device) and get the server's credential for it, good in every
/// meeting and conversation of the account.
#[utoipa::path(post, path = "/api/v1/me/devices", operation_id = "registerDevice", tag = "devices",
    request_body = RegisterDeviceRequest,
    responses((status = 201, description = "The new device and its credential", body = DeviceRegistration),
        (status = 200, description = "The account's device with this key (registered before), and its credential", body = DeviceRegistration),
        (status = 409, description = "The account revoked this key's device, or has as many devices as it may", body = Problem),
        (status = 422, description = "Not an Ed25519 public key, or a name that is not allowed", body = Problem)))]
pub async fn register(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    ApiJson(req): ApiJson<RegisterDeviceRequest>,
) -> ApiResult<(StatusCode, ApiJson<DeviceRegistration>)> {
    let authority = state.device_authority().await.ok_or_else(|| ApiError::unavailable("no credential authority"))?;
    let user = &current.user;
    let registered = authority
        .account_device(&state.store, &user.id, &user.display_name, &req.signature_key, &req.name, state.now_ms())
        .await;
    let (registration, vouched) = registered.map_err(|err| match err {
        DeviceError::NotAKey => ApiError::field("signature_key", err.to_string()),
        DeviceError::Name(name) => ApiError::field("name", name.to_string()),
        DeviceError::Revoked => ApiError::conflict(ProblemCode::DeviceRevoked, err.to_string()),
        DeviceError::TooMany => ApiError::conflict(ProblemCode::Conflict, err.to_string()),
        DeviceError::Store(err) => err.into(),
    })?;
    let device = &registration.device;
    let status = if registration.new {
        let audit = current.audit(ip, AuditAction::AuthDeviceRegister, AuditOutcome::Success);
        state.audit(audit.target(&device.id).detail(&device.name)).await?;
        state.conversations.device_added(&user.id, &device.id, state.now_ms()).await?;
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = DeviceRegistration {
        device: device_view(device),
        credential: vouched.credential,
        authority: vouched.authority,
    };
    Ok((status, ApiJson(body)))
}

/// Revoke one of the account's devices: the server vouches for its key no
/// more (it can join no new meeting or conversation as the account).
#[utoipa::path(delete, path = "/api/v1/me/devices/{device_id}", operation_id = "revokeDevice", tag = "devices",
    params(("device_id" = String, Path, description = "Id from listDevices")),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such device of this account", body = Problem)))]
pub async fn revoke(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(device_id): Path<String>,
) -> ApiResult<StatusCode> {
    if !state.store.revoke_device(&current.user.id, &device_id, state.now_ms()).await? {
        // Revoked before: asking again finishes taking it out of the
        // account's conversations, should that have stopped halfway.
        if state.store.device_is_revoked(&current.user.id, &device_id).await? {
            state.conversations.device_removed(&current.user.id, &device_id, state.now_ms()).await?;
        }
        return Err(ApiError::not_found("device"));
    }
    state.conversations.device_removed(&current.user.id, &device_id, state.now_ms()).await?;
    state.audit(current.audit(ip, AuditAction::AuthDeviceRevoke, AuditOutcome::Success).target(&device_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The server's VAPID public key, to subscribe a browser to push with.
#[utoipa::path(get, path = "/api/v1/push/key", operation_id = "pushKey", tag = "devices",
    responses((status = 200, description = "The key", body = conclave_proto::device::PushKey)))]
pub async fn push_key(
    State(state): State<SharedState>,
    Authed(_): Authed,
) -> ApiResult<ApiJson<conclave_proto::device::PushKey>> {
    let public_key = state.conversations.push.public_key().await?;
    Ok(ApiJson(conclave_proto::device::PushKey { public_key }))
}

/// Wake this device through its push service while it is not connected
/// (a push with no content; the device then syncs).
#[utoipa::path(put, path = "/api/v1/me/devices/{device_id}/push", operation_id = "subscribePush", tag = "devices",
    params(("device_id" = String, Path)), request_body = conclave_proto::device::PushSubscriptionRequest,
    responses((status = 204, description = "Subscribed (replacing any earlier endpoint)"),
        (status = 404, description = "Not one of the caller's devices", body = Problem),
        (status = 422, description = "Not an https endpoint on a public host", body = Problem)))]
pub async fn subscribe_push(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(device_id): Path<String>,
    ApiJson(req): ApiJson<conclave_proto::device::PushSubscriptionRequest>,
) -> ApiResult<StatusCode> {
    super::conversations::own_device(&state, &current, &device_id).await?;
    if req.endpoint.len() > 2048 {
        return Err(ApiError::field("endpoint", "at most 2,048 characters"));
    }
    state.conversations.push.check_endpoint(&req.endpoint).map_err(|e| ApiError::field("endpoint", e.to_string()))?;
    state.store.set_push_subscription(&device_id, &req.endpoint, state.now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stop waking this device by push.
#[utoipa::path(delete, path = "/api/v1/me/devices/{device_id}/push", operation_id = "unsubscribePush", tag = "devices",
    params(("device_id" = String, Path)),
    responses((status = 204, description = "No more pushes"),
        (status = 404, description = "Not one of the caller's devices", body = Problem)))]
pub async fn unsubscribe_push(
    State(state): State<SharedState>,
    Authed(current): Authed,
    Path(device_id): Path<String>,
) -> ApiResult<StatusCode> {
    super::conversations::own_device(&state, &current, &device_id).await?;
    state.store.delete_push_subscription(&device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
