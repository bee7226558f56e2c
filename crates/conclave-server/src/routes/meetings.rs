//! Meetings over REST: schedule, list, change, delete, rotate secrets, join
//! (which yields a signaling ticket) and report a participant.
//!
//! Managing a meeting takes its host or an admin of its organisation;
//! another organisation's meeting is answered like one that does not exist.
//! Joining takes only the invite link's secret, or the code and passcode.

use crate::accounts;
use crate::calendar::Method;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed, ClientIp, CurrentSession, MaybeAuthed};
use crate::meetings::joining::{self, Account, JoinRefusal};
use crate::meetings::{invitations, secrets};
use crate::state::{Audit, SharedState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::problem::FieldError;
use conclave_proto::signal::{ChatMode, EndReason, PROTOCOL_VERSION};
use conclave_proto::*;
use conclave_room::{PolicyView, ReportRefusal};
use conclave_store::{MeetingRow, NewMeeting, NewReport, StoreError};
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;

const MAX_TITLE: usize = 200;

pub(crate) fn view(state: &SharedState, row: &MeetingRow) -> Meeting {
    Meeting {
        id: row.id.clone(),
        org_id: row.org_id.clone(),
        host_user_id: row.host_user_id.clone(),
        title: row.title.clone(),
        scheduled_start_ms: row.scheduled_start_ms,
        duration_minutes: row.duration_minutes.map(|d| d as u32),
        settings: row.settings.clone(),
        invite_url: format!("{}/j/{}", state.config.public_url.trim_end_matches('/'), row.secrets.link_secret),
        link_secret: row.secrets.link_secret.clone(),
        code: secrets::display_code(&row.secrets.code),
        passcode: row.secrets.passcode.clone(),
        host_key: row.secrets.host_key.clone(),
        created_at_ms: row.created_at_ms,
        live: state.live.is_live(&row.id),
        invitees: row.invitees.clone(),
    }
}

/// The meeting if the caller may manage it: its host, or an admin of its organisation.
async fn managed(
    state: &SharedState,
    current: &CurrentSession,
    meeting_id: &str,
    ip: IpAddr,
    action: AuditAction,
) -> ApiResult<MeetingRow> {
    let denied = |detail: &'static str| Audit {
        org_id: current.org_id(),
        actor_id: Some(&current.user.id),
        target: Some(meeting_id),
        source_ip: Some(ip),
        detail,
        ..Audit::new(action, AuditOutcome::Denied)
    };
    let meeting = state.store.meeting_by_id(meeting_id).await?;
    let Some(meeting) = meeting.filter(|m| Some(m.org_id.as_str()) == current.org_id()) else {
        state.audit(denied("no such meeting in the caller's organisation")).await?;
        return Err(ApiError::not_found("meeting"));
    };
    let admin = current.user.role.is_some_and(|r| r >= OrgRole::Admin);
    if meeting.host_user_id != current.user.id && !admin {
        state.audit(denied("neither the host nor an admin")).await?;
        return Err(ApiError::forbidden("only the meeting's host or an organisation admin can do this"));
    }
    Ok(meeting)
}

fn org_policy(current: &CurrentSession) -> ApiResult<&OrgPolicy> {
    current
        .org
        .as_ref()
        .map(|(_, p)| p)
        .ok_or_else(|| ApiError::forbidden("join or create an organisation before hosting meetings"))
}

/// Settings after a request, under the organisation's policy: what is
/// locked cannot be asked otherwise.
fn resolve_settings(
    base: MeetingSettings,
    req: &MeetingSettingsRequest,
    policy: &OrgPolicy,
    errors: &mut Vec<FieldError>,
) -> MeetingSettings {
    let mut locked = |field: &str| {
        errors.push(FieldError {
            field: format!("settings.{field}"),
            message: "locked by your organisation's policy".into(),
        })
    };
    let mut s = base;
    if policy.waiting_room.locked {
        if req.waiting_room.is_some_and(|v| v != policy.waiting_room.value) {
            locked("waiting_room");
        }
        s.waiting_room = policy.waiting_room.value;
    } else if let Some(v) = req.waiting_room {
        s.waiting_room = v;
    }
    if !policy.chat_allowed.value {
        if req.chat.is_some_and(|c| c != ChatMode::Off) || req.private_chat == Some(true) {
            locked("chat");
        }
        s.chat = ChatMode::Off;
        s.private_chat = false;
    } else {
        if policy.chat_allowed.locked && req.chat == Some(ChatMode::Off) {
            locked("chat");
        } else if let Some(c) = req.chat {
            s.chat = c;
        }
        if let Some(p) = req.private_chat {
            s.private_chat = p;
        }
    }
    if policy.e2ee.value == E2eeMode::Enforced {
        if req.e2ee == Some(false) {
            locked("e2ee");
        }
        s.e2ee = true;
    } else if let Some(v) = req.e2ee {
        s.e2ee = v;
    }
    if let Some(v) = req.mute_on_entry {
        s.mute_on_entry = v;
    }
    if let Some(v) = req.allow_self_unmute {
        s.allow_self_unmute = v;
    }
    if let Some(v) = req.screen_share {
        s.screen_share = v;
    }
    s
}

fn check_passcode(passcode: &str, errors: &mut Vec<FieldError>) {
    let ok = (6..=32).contains(&passcode.chars().count()) && passcode.chars().all(|c| c.is_ascii_graphic());
    if !ok {
        errors.push(FieldError {
            field: "passcode".into(),
            message: "must be 6 to 32 printable characters without spaces".into(),
        });
    }
}

fn check_title(title: &str, errors: &mut Vec<FieldError>) -> String {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE || title.chars().any(char::is_control) {
        errors.push(FieldError {
            field: "title".into(),
            message: format!("must be 1 to {MAX_TITLE} printable characters"),
        });
    }
    title.to_owned()
}

fn check_schedule(start: Option<i64>, duration: Option<u32>, errors: &mut Vec<FieldError>) {
    if start.is_some_and(|s| s <= 0) {
        errors.push(FieldError {
            field: "scheduled_start_ms".into(),
            message: "must be a Unix time in milliseconds".into(),
        });
    }
    if duration.is_some_and(|d| !(1..=1440).contains(&d)) {
        errors.push(FieldError { field: "duration_minutes".into(), message: "must be between 1 and 1440".into() });
    }
}

/// A code alone never opens a meeting: without a waiting room it needs a passcode.
fn passcode_needed(settings: &MeetingSettings, policy: &OrgPolicy) -> bool {
    policy.passcode_required.value || !settings.waiting_room
}

/// Schedule a meeting, or start an instant one (no start time).
#[utoipa::path(post, path = "/api/v1/meetings", operation_id = "createMeeting", tag = "meetings",
    request_body = CreateMeetingRequest,
    responses((status = 201, description = "The meeting, with its invite link, code, passcode and host key", body = Meeting),
        (status = 403, description = "Not in an organisation", body = Problem),
        (status = 422, description = "Invalid fields, or settings the organisation locked", body = Problem)))]
pub async fn create(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    ApiJson(req): ApiJson<CreateMeetingRequest>,
) -> ApiResult<(StatusCode, ApiJson<Meeting>)> {
    let row = create_meeting(&state, &current, ip, &req, &[]).await?;
    Ok((StatusCode::CREATED, ApiJson(view(&state, &row))))
}

/// Creates a meeting the caller hosts, under their organisation's policy;
/// `invited` accounts are let in without the waiting room once it is live
/// (a call started from a conversation). Audited.
pub(crate) async fn create_meeting(
    state: &SharedState,
    current: &CurrentSession,
    ip: IpAddr,
    req: &CreateMeetingRequest,
    invited: &[String],
) -> Result<MeetingRow, ApiError> {
    let policy = org_policy(current)?;
    let org_id = current.org_id().expect("members have an organisation").to_owned();
    let mut errors = Vec::new();
    let title = check_title(&req.title, &mut errors);
    check_schedule(req.scheduled_start_ms, req.duration_minutes, &mut errors);
    let invitees = invitations::check_invitees(&req.invitees, &mut errors);
    if !invitees.is_empty() && req.scheduled_start_ms.is_none() {
        errors.push(FieldError { field: "invitees".into(), message: "invitations need a scheduled start".into() });
    }
    if let Some(p) = &req.passcode {
        check_passcode(p, &mut errors);
    }
    let base = MeetingSettings {
        waiting_room: policy.waiting_room.value,
        e2ee: policy.e2ee.value != E2eeMode::Optional,
        ..MeetingSettings::default()
    };
    let settings = resolve_settings(base, &req.settings, policy, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    invitations::spend_quota(state, &org_id, invitees.len()).map_err(ApiError::throttled)?;
    // Secure by default: where a passcode is needed and none was given, one is made.
    let passcode = req.passcode.clone().or_else(|| passcode_needed(&settings, policy).then(secrets::passcode));
    let row = loop {
        let fresh = secrets::fresh(passcode.clone());
        let new = NewMeeting {
            org_id: &org_id,
            host_user_id: &current.user.id,
            title: &title,
            scheduled_start_ms: req.scheduled_start_ms,
            duration_minutes: req.duration_minutes.map(i64::from),
            settings: &settings,
            secrets: &fresh,
            now_ms: state.now_ms(),
            invited,
            invitees: &invitees,
        };
        match state.store.create_meeting(&new).await {
            Err(StoreError::Conflict(_)) => continue,
            other => break other?,
        }
    };
    let audit = current
        .audit(ip, AuditAction::MeetingCreate, AuditOutcome::Success)
        .org(&org_id)
        .target(&row.id)
        .detail(&title);
    state.audit(audit).await?;
    invitations::send(state, &row, &row.invitees, Method::Request).await;
    Ok(row)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `org` lists every meeting of the organisation (admins); by default only one's own.
    pub scope: Option<String>,
}

/// Meetings the caller hosts (or, for admins with `scope=org`, the organisation's).
#[utoipa::path(get, path = "/api/v1/meetings", operation_id = "listMeetings", tag = "meetings", params(ListQuery),
    responses((status = 200, description = "Meetings, newest first", body = MeetingList), (status = 403, description = "Not allowed", body = Problem)))]
pub async fn list(
    State(state): State<SharedState>,
    Authed(current): Authed,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ApiJson<MeetingList>> {
    let Query(query) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    let org_id = current.org_id().ok_or_else(|| ApiError::forbidden("join or create an organisation first"))?;
    let host = match query.scope.as_deref() {
        None | Some("mine") => Some(current.user.id.as_str()),
        Some("org") if current.user.role.is_some_and(|r| r >= OrgRole::Admin) => None,
        Some("org") => return Err(ApiError::forbidden("listing every meeting takes an admin")),
        Some(_) => return Err(ApiError::field("scope", "must be mine or org")),
    };
    let rows = state.store.list_meetings(org_id, host).await?;
    Ok(ApiJson(MeetingList { meetings: rows.iter().map(|r| view(&state, r)).collect() }))
}

/// One meeting, secrets included (its host and the organisation's admins).
#[utoipa::path(get, path = "/api/v1/meetings/{meeting_id}", operation_id = "getMeeting", tag = "meetings",
    params(("meeting_id" = String, Path)),
    responses((status = 200, description = "The meeting", body = Meeting), (status = 403, description = "Not the host or an admin", body = Problem),
        (status = 404, description = "Not found", body = Problem)))]
pub async fn get(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(meeting_id): Path<String>,
) -> ApiResult<ApiJson<Meeting>> {
    let row = managed(&state, &current, &meeting_id, ip, AuditAction::MeetingRead).await?;
    Ok(ApiJson(view(&state, &row)))
}

/// Change a meeting's title, schedule, passcode or settings.
#[utoipa::path(patch, path = "/api/v1/meetings/{meeting_id}", operation_id = "updateMeeting", tag = "meetings",
    params(("meeting_id" = String, Path)),
    request_body = UpdateMeetingRequest,
    responses((status = 200, description = "The meeting after the change", body = Meeting),
        (status = 403, description = "Not the host or an admin", body = Problem), (status = 404, description = "Not found", body = Problem),
        (status = 422, description = "Invalid fields, or settings the organisation locked", body = Problem)))]
pub async fn update(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(meeting_id): Path<String>,
    ApiJson(req): ApiJson<UpdateMeetingRequest>,
) -> ApiResult<ApiJson<Meeting>> {
    let mut row = managed(&state, &current, &meeting_id, ip, AuditAction::MeetingUpdate).await?;
    let before = row.clone();
    let policy = org_policy(&current)?;
    let mut errors = Vec::new();
    if let Some(given) = &req.invitees {
        row.invitees = invitations::check_invitees(given, &mut errors);
    }
    if let Some(title) = &req.title {
        row.title = check_title(title, &mut errors);
    }
    check_schedule(req.scheduled_start_ms, req.duration_minutes, &mut errors);
    if let Some(start) = req.scheduled_start_ms {
        row.scheduled_start_ms = Some(start);
    }
    if let Some(duration) = req.duration_minutes {
        row.duration_minutes = Some(i64::from(duration));
    }
    if let Some(settings) = &req.settings {
        row.settings = resolve_settings(row.settings.clone(), settings, policy, &mut errors);
    }
    match req.passcode.as_deref() {
        Some("") => row.secrets.passcode = None,
        Some(p) => {
            check_passcode(p, &mut errors);
            row.secrets.passcode = Some(p.to_owned());
        }
        None => {}
    }
    if row.secrets.passcode.is_none() && passcode_needed(&row.settings, policy) {
        let message = if policy.passcode_required.value {
            "your organisation requires a passcode"
        } else {
            "a meeting without a waiting room needs a passcode"
        };
        errors.push(FieldError { field: "passcode".into(), message: message.into() });
    }
    if !row.invitees.is_empty() && row.scheduled_start_ms.is_none() {
        errors.push(FieldError { field: "invitees".into(), message: "invitations need a scheduled start".into() });
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    // What calendars show changed: a new invitation replaces the old one.
    let dropped: Vec<String> = before.invitees.iter().filter(|a| !row.invitees.contains(a)).cloned().collect();
    let rescheduled = (&row.title, row.scheduled_start_ms, row.duration_minutes, &row.secrets.passcode)
        != (&before.title, before.scheduled_start_ms, before.duration_minutes, &before.secrets.passcode);
    let newcomers = row.invitees.iter().any(|a| !before.invitees.contains(a));
    let tell = rescheduled || newcomers || !dropped.is_empty();
    if tell {
        let told = if rescheduled {
            row.invitees.len()
        } else {
            row.invitees.iter().filter(|a| !before.invitees.contains(a)).count()
        };
        let emails = told + dropped.len();
        invitations::spend_quota(&state, &row.org_id, emails).map_err(ApiError::throttled)?;
        row.calendar_sequence += 1;
    }
    state.store.update_meeting(&row).await?;
    if tell {
        let to = if rescheduled {
            row.invitees.clone()
        } else {
            row.invitees.iter().filter(|a| !before.invitees.contains(a)).cloned().collect()
        };
        invitations::send(&state, &row, &to, Method::Request).await;
        invitations::send(&state, &row, &dropped, Method::Cancel).await;
    }
    let detail = serde_json::to_string(&req.settings).unwrap_or_default();
    let audit = current
        .audit(ip, AuditAction::MeetingUpdate, AuditOutcome::Success)
        .org(&row.org_id)
        .target(&row.id)
        .detail(&detail);
    state.audit(audit).await?;
    Ok(ApiJson(view(&state, &row)))
}

/// Delete a meeting; anyone in it is told it ended.
#[utoipa::path(delete, path = "/api/v1/meetings/{meeting_id}", operation_id = "deleteMeeting", tag = "meetings",
    params(("meeting_id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 403, description = "Not the host or an admin", body = Problem),
        (status = 404, description = "Not found", body = Problem)))]
pub async fn delete(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(meeting_id): Path<String>,
) -> ApiResult<StatusCode> {
    let row = managed(&state, &current, &meeting_id, ip, AuditAction::MeetingDelete).await?;
    state.store.revoke_join_tickets(&row.id).await?;
    state.live.terminate(&row.id, EndReason::Deleted);
    state.store.delete_meeting(&row.id).await?;
    let cancelled = MeetingRow { calendar_sequence: row.calendar_sequence + 1, ..row.clone() };
    invitations::send(&state, &cancelled, &row.invitees, Method::Cancel).await;
    let audit = current.audit(ip, AuditAction::MeetingDelete, AuditOutcome::Success).org(&row.org_id).target(&row.id);
    state.audit(audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the invite link's secret, the code, the passcode (if any) and the
/// host key; the old ones, and tickets not yet used, stop working at once.
#[utoipa::path(post, path = "/api/v1/meetings/{meeting_id}/rotate", operation_id = "rotateMeetingSecrets", tag = "meetings",
    params(("meeting_id" = String, Path)),
    responses((status = 200, description = "The meeting with its new secrets", body = Meeting),
        (status = 403, description = "Not the host or an admin", body = Problem), (status = 404, description = "Not found", body = Problem)))]
pub async fn rotate(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(meeting_id): Path<String>,
) -> ApiResult<ApiJson<Meeting>> {
    let mut row = managed(&state, &current, &meeting_id, ip, AuditAction::MeetingRotate).await?;
    crate::meetings::rotate_secrets(&state, &mut row).await?;
    let audit = current.audit(ip, AuditAction::MeetingRotate, AuditOutcome::Success).org(&row.org_id).target(&row.id);
    state.audit(audit).await?;
    Ok(ApiJson(view(&state, &row)))
}

/// Which meeting an invite link opens: its title, host and what to expect,
/// for the join page. No sign-in needed (the link is the invitation);
/// throttled as joins are.
#[utoipa::path(post, path = "/api/v1/meetings/preview", operation_id = "previewMeeting", tag = "meetings",
    request_body = MeetingPreviewRequest,
    responses((status = 200, description = "The meeting the link opens", body = MeetingPreview),
        (status = 404, description = "No meeting has this link", body = Problem),
        (status = 429, description = "Too many failed attempts", body = Problem)))]
pub async fn preview(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<MeetingPreviewRequest>,
) -> ApiResult<ApiJson<MeetingPreview>> {
    let (row, host_name) = joining::preview(&state, &req.link_secret, ip).await.map_err(join_refusal)?;
    Ok(ApiJson(MeetingPreview {
        title: row.title.clone(),
        host_name,
        scheduled_start_ms: row.scheduled_start_ms,
        live: state.live.is_live(&row.id),
        waiting_room: row.settings.waiting_room,
        e2ee: row.settings.e2ee,
    }))
}

/// A refused join (or preview) as the API answers it.
fn join_refusal(refusal: JoinRefusal) -> ApiError {
    match refusal {
        JoinRefusal::Throttled(wait) => ApiError::throttled(wait),
        JoinRefusal::Invalid(errors) => ApiError::validation(errors),
        refusal @ JoinRefusal::NoSuchMeeting => {
            ApiError::new(StatusCode::NOT_FOUND, ProblemCode::MeetingNotFound, "No meeting matches")
                .with_detail(refusal.to_string())
        }
        JoinRefusal::Store(err) => err.into(),
    }
}

/// Join a meeting by its invite link's secret, or by code and passcode.
/// Returns a single-use ticket for the signaling WebSocket. Signing in is
/// optional; signed-in people are known by their account in the meeting.
#[utoipa::path(post, path = "/api/v1/meetings/join", operation_id = "joinMeeting", tag = "meetings",
    request_body = JoinMeetingRequest,
    responses((status = 200, description = "A join ticket and where to use it", body = JoinTicket),
        (status = 404, description = "No meeting matches the link, or the code and passcode", body = Problem),
        (status = 422, description = "Invalid fields", body = Problem),
        (status = 429, description = "Too many failed attempts", body = Problem)))]
pub async fn join(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    MaybeAuthed(current): MaybeAuthed,
    ApiJson(req): ApiJson<JoinMeetingRequest>,
) -> ApiResult<ApiJson<JoinTicket>> {
    let account = current.as_ref().map(|c| Account { user: &c.user, org: c.org.as_ref().map(|(org, _)| org) });
    let admission = joining::join(&state, &req, account, ip).await.map_err(join_refusal)?;
    let ws_origin = state.config.public_origin().replacen("http", "ws", 1);
    let ticket = admission.ticket;
    Ok(ApiJson(JoinTicket {
        meeting_id: admission.meeting_id,
        signaling_url: format!("{ws_origin}/api/v1/signal?ticket={}&v={PROTOCOL_VERSION}", ticket.as_str()),
        ticket: ticket.into_string(),
        expires_in_seconds: joining::TICKET_LIFETIME.as_secs(),
        ice_servers: crate::media::ice_servers(
            state.config.media.as_ref().and_then(|m| m.turn.as_ref()),
            state.now_ms(),
            &format!("{:016x}", rand::random::<u64>()),
        ),
    }))
}

/// Report a participant to the organisation's owners and admins. The
/// reporter proves they are admitted to the meeting with their own resume
/// token, and may report only someone they can see (moderators: the waiting
/// room too). The answer says the report was filed and nothing more.
#[utoipa::path(post, path = "/api/v1/meetings/{meeting_id}/reports", operation_id = "reportParticipant", tag = "meetings",
    params(("meeting_id" = String, Path)),
    request_body = ReportParticipantRequest,
    responses((status = 201, description = "Filed", body = ReportReceipt),
        (status = 403, description = "The reporter is not admitted to this meeting", body = Problem),
        (status = 404, description = "No such meeting, or nobody the reporter can see with that id", body = Problem),
        (status = 422, description = "Invalid reason, or reporting oneself", body = Problem),
        (status = 429, description = "Too many reports from this person or in this meeting lately", body = Problem)))]
pub async fn report(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Path(meeting_id): Path<String>,
    ApiJson(req): ApiJson<ReportParticipantRequest>,
) -> ApiResult<(StatusCode, ApiJson<ReportReceipt>)> {
    accounts::check_sensitive_rate(&state, ip)?;
    let reason = req.reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(ApiError::field("reason", "must be 1 to 1000 characters"));
    }
    let meeting = state.store.meeting_by_id(&meeting_id).await?.ok_or_else(|| ApiError::not_found("meeting"))?;
    let verdict = state.live.report(&meeting.id, &req.participant_token, req.participant_id).await;
    let parties = match verdict {
        Ok(parties) => parties,
        Err(refusal) => {
            let (detail, error) = match refusal {
                ReportRefusal::NotAdmitted => (
                    "report from someone not admitted to the meeting",
                    ApiError::forbidden("only people admitted to the meeting can report someone in it"),
                ),
                ReportRefusal::NoSuchParticipant => {
                    ("report about nobody the reporter can see", ApiError::not_found("participant"))
                }
                ReportRefusal::Yourself => {
                    ("report about oneself", ApiError::field("participant_id", "you cannot report yourself"))
                }
                ReportRefusal::Throttled { retry_after_ms } => (
                    "too many reports lately",
                    ApiError::throttled(Duration::from_millis(retry_after_ms.max(1) as u64)),
                ),
            };
            let audit = Audit {
                org_id: Some(&meeting.org_id),
                target: Some(&meeting.id),
                source_ip: Some(ip),
                detail,
                ..Audit::new(AuditAction::MeetingReport, AuditOutcome::Denied)
            };
            state.audit(audit).await?;
            return Err(error);
        }
    };
    let report = state
        .store
        .create_report(&NewReport {
            org_id: &meeting.org_id,
            meeting_id: &meeting.id,
            reporter_name: &parties.reporter.display_name,
            reporter_user_id: parties.reporter_identity.user_id.as_deref(),
            reported_name: &parties.reported.display_name,
            reported_user_id: parties.reported_identity.user_id.as_deref(),
            reason,
            now_ms: state.now_ms(),
        })
        .await?;
    let detail = format!("{} reported {}", parties.reporter.display_name, parties.reported.display_name);
    let audit = Audit {
        org_id: Some(&meeting.org_id),
        target: Some(&report.id),
        source_ip: Some(ip),
        detail: &detail,
        ..Audit::new(AuditAction::MeetingReport, AuditOutcome::Success)
    };
    state.audit(audit).await?;
    Ok((StatusCode::CREATED, ApiJson(ReportReceipt { id: report.id, meeting_id: meeting.id, at_ms: report.at_ms })))
}

/// Who is banned from a meeting (its owner and the organisation's admins).
#[utoipa::path(get, path = "/api/v1/meetings/{meeting_id}/bans", operation_id = "listMeetingBans", tag = "meetings",
    params(("meeting_id" = String, Path)),
    responses((status = 200, description = "Bans, newest first", body = MeetingBanList),
        (status = 403, description = "Not the meeting's owner or an admin", body = Problem),
        (status = 404, description = "Not found", body = Problem)))]
pub async fn list_bans(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(meeting_id): Path<String>,
) -> ApiResult<ApiJson<MeetingBanList>> {
    let row = managed(&state, &current, &meeting_id, ip, AuditAction::MeetingBansRead).await?;
    Ok(ApiJson(MeetingBanList { bans: state.store.list_meeting_bans(&row.id).await? }))
}

/// Lift a ban: the person may join again (through the waiting room, as
/// anyone). Takes the meeting's owner or an admin of its organisation.
#[utoipa::path(delete, path = "/api/v1/meetings/{meeting_id}/bans/{ban_id}", operation_id = "liftMeetingBan", tag = "meetings",
    params(("meeting_id" = String, Path), ("ban_id" = String, Path)),
    responses((status = 204, description = "Lifted"),
        (status = 403, description = "Not the meeting's owner or an admin", body = Problem),
        (status = 404, description = "No such meeting or ban", body = Problem)))]
pub async fn lift_ban(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path((meeting_id, ban_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let row = managed(&state, &current, &meeting_id, ip, AuditAction::MeetingBanLift).await?;
    let lifted = state.store.lift_meeting_ban(&row.id, &ban_id).await?.ok_or_else(|| ApiError::not_found("ban"))?;
    state.live.bans_lifted(&row.id, lifted);
    let audit = current
        .audit(ip, AuditAction::MeetingBanLift, AuditOutcome::Success)
        .org(&row.org_id)
        .target(&row.id)
        .detail(&ban_id);
    state.audit(audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reports about the organisation's meetings (owners and admins).
#[utoipa::path(get, path = "/api/v1/orgs/{org_id}/reports", operation_id = "listReports", tag = "organisations",
    params(("org_id" = String, Path)),
    responses((status = 200, description = "Reports, newest first", body = ReportList), (status = 403, description = "Role too low", body = Problem),
        (status = 404, description = "Not found", body = Problem)))]
pub async fn list_reports(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    Authed(current): Authed,
    Path(org_id): Path<String>,
) -> ApiResult<ApiJson<ReportList>> {
    super::orgs::authorize(&state, &current, &org_id, OrgRole::Admin, ip, AuditAction::OrgReportsRead).await?;
    Ok(ApiJson(ReportList { reports: state.store.list_reports(&org_id).await? }))
}

/// The live room of every meeting of `org_id` learns the new policy.
pub fn policy_changed(state: &SharedState, org_id: &str, policy: &OrgPolicy) {
    state.live.policy_changed(org_id, PolicyView::from_policy(policy));
}
