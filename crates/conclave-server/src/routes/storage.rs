//! Where an organisation keeps its files (C4): the server's disk, or a
//! bucket of its own at an S3-compatible service in its region. Admins
//! choose; new files go there, files stored before stay where they are.

use axum::extract::{Path, State};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::file::{StorageSettings, StorageView};
use conclave_proto::{OrgRole, Problem};
use conclave_store::StorageRow;

use super::orgs::authorize;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp};
use crate::files::Location;
use crate::state::SharedState;

fn view(storage: &conclave_store::OrgStorage) -> StorageView {
    match &storage.storage {
        None => StorageView {
            kind: "server".into(),
            endpoint: None,
            region: None,
            bucket: None,
            access_key_id: None,
            since_ms: storage.since_ms,
        },
        Some(row) => StorageView {
            kind: "s3".into(),
            endpoint: row.endpoint.clone(),
            region: Some(row.region.clone()),
            bucket: Some(row.bucket.clone()),
            access_key_id: Some(row.access_key_id.clone()),
            since_ms: storage.since_ms,
        },
    }
}

/// Where the organisation's new files go (never the secret key).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/storage", operation_id = "getOrgStorage", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 200, description = "Where files go", body = StorageView),
        (status = 403, description = "Role too low", body = Problem), (status = 404, description = "Not found", body = Problem)))]
pub async fn get(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<ApiJson<StorageView>> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgStorageRead).await?;
    Ok(ApiJson(view(&state.store.org_storage(&org_id).await?)))
}

/// Sends the organisation's new files somewhere else. A bucket is checked
/// first (an object written, read back and deleted): settings that do not
/// work are refused, and nothing changes.
#[utoipa::path(put, path = "/api/v1/orgs/{org_id}/storage", operation_id = "setOrgStorage", tag = "organisations",
    params(("org_id" = String, Path)), request_body = StorageSettings,
    responses((status = 200, description = "Where files go from now on", body = StorageView),
        (status = 403, description = "Role too low", body = Problem), (status = 404, description = "Not found", body = Problem),
        (status = 422, description = "The service is not allowed, or the bucket cannot be used", body = Problem)))]
pub async fn set(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
    ApiJson(settings): ApiJson<StorageSettings>,
) -> ApiResult<ApiJson<StorageView>> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgStorageUpdate).await?;
    let now = state.now_ms();
    let row = match settings {
        StorageSettings::Server => None,
        StorageSettings::S3 { endpoint, region, bucket, access_key_id, secret_access_key } => Some(StorageRow {
            id: conclave_store::new_id(),
            org_id: org_id.clone(),
            endpoint: endpoint.map(|e| e.trim().trim_end_matches('/').to_owned()).filter(|e| !e.is_empty()),
            region: region.trim().to_owned(),
            bucket: bucket.trim().to_owned(),
            access_key_id: access_key_id.trim().to_owned(),
            secret_access_key,
            created_at_ms: now,
        }),
    };
    if let Some(row) = &row {
        if let Some(endpoint) = &row.endpoint {
            if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                return Err(ApiError::field("endpoint", "must start with https:// (or http:// where allowed)"));
            }
        }
        let location = Location::bucket(row.clone());
        if let Err(err) = state.blobs.probe(location.place()).await {
            let refused = format!("{err}");
            state
                .audit(
                    current
                        .audit(ip, AuditAction::OrgStorageUpdate, AuditOutcome::Failure)
                        .org(&org_id)
                        .target(&org_id)
                        .detail(&refused),
                )
                .await?;
            return Err(match err {
                conclave_blob::BlobError::Unavailable(_) | conclave_blob::BlobError::NotFound => {
                    ApiError::storage_refused(format!("the bucket could not be written and read back: {refused}"))
                }
                other => other.into(),
            });
        }
    }
    state.store.set_org_storage(&org_id, row.as_ref(), now).await?;
    let where_to = row.as_ref().map_or_else(
        || "the server's disk".to_owned(),
        |r| format!("bucket {} in {} at {}", r.bucket, r.region, r.endpoint.as_deref().unwrap_or("Amazon S3")),
    );
    state
        .audit(
            current
                .audit(ip, AuditAction::OrgStorageUpdate, AuditOutcome::Success)
                .org(&org_id)
                .target(&org_id)
                .detail(&where_to),
        )
        .await?;
    Ok(ApiJson(view(&state.store.org_storage(&org_id).await?)))
}
