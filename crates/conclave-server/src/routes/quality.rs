//! Call quality for the organisation's administrators: the meetings with
//! samples, and one meeting's samples per participant, for the graphs of
//! the admin pages. Samples are figures only, kept for
//! `ServerConfig::quality_retention` (`live/quality.rs` writes them).

use super::orgs::authorize;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp};
use crate::state::SharedState;
use axum::extract::{Path, State};
use conclave_proto::audit::AuditAction;
use conclave_proto::quality::{MeetingQuality, ParticipantQuality, QualitySample, QualitySummary, QualitySummaryList};
use conclave_proto::{OrgRole, Problem};

/// Meetings listed at most.
const MEETINGS_LISTED: i64 = 100;

/// The organisation's meetings with call-quality samples, latest first (admins and owners).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/quality", operation_id = "listCallQuality", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 200, description = "Meetings with samples", body = QualitySummaryList),
        (status = 403, description = "Role too low", body = Problem), (status = 404, description = "Not found", body = Problem)))]
pub async fn list(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<ApiJson<QualitySummaryList>> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgQualityRead).await?;
    let meetings = state
        .store
        .quality_summaries(&org_id, MEETINGS_LISTED)
        .await?
        .into_iter()
        .map(|row| QualitySummary {
            meeting_id: row.meeting_id,
            title: row.title,
            first_ms: row.first_ms,
            last_ms: row.last_ms,
            participants: row.participants as u32,
            samples: row.samples as u32,
            poor_samples: row.poor_samples as u32,
        })
        .collect();
    Ok(ApiJson(QualitySummaryList { meetings }))
}

/// One meeting's samples, per participant, oldest first (admins and owners).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/meetings/{meeting_id}/quality", operation_id = "getMeetingQuality",
    tag = "organisations", params(("org_id" = String, Path), ("meeting_id" = String, Path)),
    responses((status = 200, description = "The meeting's samples", body = MeetingQuality),
        (status = 403, description = "Role too low", body = Problem), (status = 404, description = "Not found", body = Problem)))]
pub async fn meeting(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path((org_id, meeting_id)): Path<(String, String)>,
) -> ApiResult<ApiJson<MeetingQuality>> {
    authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgQualityRead).await?;
    // Another organisation's meeting is as unknown as one that never was.
    let meeting = state
        .store
        .meeting_by_id(&meeting_id)
        .await?
        .filter(|m| m.org_id == org_id)
        .ok_or_else(|| ApiError::not_found("meeting"))?;
    let mut participants: Vec<ParticipantQuality> = Vec::new();
    for row in state.store.meeting_quality(&meeting.id).await? {
        let Ok(sample) = serde_json::from_str::<QualitySample>(&row.sample_json) else {
            tracing::warn!(meeting = %meeting.id, "a call-quality sample that no longer reads; skipped");
            continue;
        };
        let id = row.participant_id as u64;
        match participants.last_mut() {
            Some(last) if last.participant_id == id => last.samples.push(sample),
            _ => participants.push(ParticipantQuality {
                participant_id: id,
                display_name: row.display_name,
                samples: vec![sample],
            }),
        }
    }
    Ok(ApiJson(MeetingQuality { meeting_id: meeting.id, title: meeting.title, participants }))
}
