//! The way into a meeting (`joinMeeting`), apart from HTTP: throttles on
//! the address and on the meeting's passcode, the invite link or the code
//! and passcode, who the joiner is (only what the server knows of them),
//! and a single-use ticket for the signaling connection.

use super::secrets::{self, constant_time_eq};
use crate::live::protocol::Entrant;
use crate::live::tickets::{self, TicketGrant};
use crate::state::{Audit, SharedState};
use conclave_auth::OpaqueToken;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::problem::FieldError;
use conclave_proto::{JoinMeetingRequest, Org, OrgRole};
use conclave_room::{Identity, Standing};
use conclave_store::{MeetingRow, StoreError, UserRow};
use std::net::IpAddr;
use std::time::Duration;

/// How long a join ticket stays valid.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(60);

/// Why a join did not yield a ticket.
#[derive(Debug, thiserror::Error)]
pub enum JoinRefusal {
    /// This address failed too often, or joins too fast.
    #[error("too many attempts; retry in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    /// No meeting has this link, or this code and passcode (the two are
    /// one answer, so guessing learns nothing).
    #[error("no meeting matches this link, or this code and passcode")]
    NoSuchMeeting,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A signed-in joiner, as the server knows them.
pub struct Account<'a> {
    pub user: &'a UserRow,
    pub org: Option<&'a Org>,
}

/// A ticket for the signaling connection.
pub struct Admission {
    pub meeting_id: String,
    pub ticket: OpaqueToken,
}

/// Checks a join and issues its ticket.
pub async fn join(
    state: &SharedState,
    req: &JoinMeetingRequest,
    account: Option<Account<'_>>,
    ip: IpAddr,
) -> Result<Admission, JoinRefusal> {
    let now = state.now_ms();
    may_try(state, ip, now)?;
    let display_name = check_request(req)?;
    let meeting = match (&req.link_secret, &req.code) {
        (Some(secret), _) => state.store.meeting_by_link_secret(secret.trim()).await?,
        (_, Some(code)) => match state.store.meeting_by_code(&secrets::normalize_code(code)).await? {
            Some(meeting) => opened_by_passcode(state, meeting, req.passcode.as_deref(), ip).await?,
            None => None,
        },
        _ => None,
    };
    let Some(meeting) = meeting else {
        return Err(no_such_meeting(state, ip, now, "no meeting matches the link, or the code and passcode").await);
    };
    let grant = TicketGrant {
        meeting_id: meeting.id.clone(),
        entrant: Entrant {
            display_name,
            identity: identity(account.as_ref(), &meeting, ip),
            standing: standing(account.as_ref(), &meeting),
        },
    };
    let ticket = tickets::issue(&state.store, &grant, now, now + TICKET_LIFETIME.as_millis() as i64).await?;
    state.throttles.join_failures.succeeded(&ip);
    Ok(Admission { meeting_id: meeting.id, ticket })
}

/// The meeting an invite link opens and the display name of its host, for
/// the join page. Guarded as a join is: the same throttles on the address,
/// and an unknown link counts as a failed join (guessing links by asking
/// for previews is as slow as guessing them by joining).
pub async fn preview(state: &SharedState, link_secret: &str, ip: IpAddr) -> Result<(MeetingRow, String), JoinRefusal> {
    let now = state.now_ms();
    may_try(state, ip, now)?;
    let Some(meeting) = state.store.meeting_by_link_secret(link_secret.trim()).await? else {
        return Err(no_such_meeting(state, ip, now, "a preview of a link that opens no meeting").await);
    };
    // An account deleted since is still named for what it was.
    let host_name = state.store.user_by_id(&meeting.host_user_id).await?.map(|u| u.display_name).unwrap_or_default();
    Ok((meeting, host_name))
}

/// Whether the address may try a link or code now: not locked out by its
/// failures, not over its rate.
fn may_try(state: &SharedState, ip: IpAddr, now: i64) -> Result<(), JoinRefusal> {
    if let Some(wait) = state.throttles.join_failures.locked(&ip, now) {
        return Err(JoinRefusal::Throttled(wait));
    }
    state.throttles.join_requests.check(ip, now).map_err(JoinRefusal::Throttled)
}

/// A link or code that opens nothing: counted against the address, and
/// audited.
async fn no_such_meeting(state: &SharedState, ip: IpAddr, now: i64, detail: &str) -> JoinRefusal {
    state.throttles.join_failures.failed(ip, now);
    let audit = Audit { source_ip: Some(ip), detail, ..Audit::new(AuditAction::MeetingJoin, AuditOutcome::Failure) };
    match state.audit(audit).await {
        Ok(()) => JoinRefusal::NoSuchMeeting,
        Err(err) => err.into(),
    }
}

/// The display name as it will be shown, and exactly one way in.
fn check_request(req: &JoinMeetingRequest) -> Result<String, JoinRefusal> {
    let mut errors = Vec::new();
    let name = conclave_proto::names::display_name(&req.display_name)
        .map_err(|e| errors.push(FieldError { field: "display_name".into(), message: e.to_string() }))
        .ok();
    if req.link_secret.is_some() == req.code.is_some() {
        errors.push(FieldError {
            field: "link_secret".into(),
            message: "give either the invite link's secret or the meeting code".into(),
        });
    }
    match name {
        Some(name) if errors.is_empty() => Ok(name),
        _ => Err(JoinRefusal::Invalid(errors)),
    }
}

/// Who is joining is what the server knows of them, never what the client
/// says: the account signed in (and its organisation, shown to the others,
/// marked external when it is not the meeting's) and the address the
/// request came from.
fn identity(account: Option<&Account<'_>>, meeting: &MeetingRow, ip: IpAddr) -> Identity {
    Identity {
        user_id: account.map(|a| a.user.id.clone()),
        email: account.map(|a| a.user.email.clone()),
        organisation: account.and_then(|a| a.org).map(|org| org.name.clone()),
        external: account.is_some_and(|a| a.user.org_id.as_deref() != Some(meeting.org_id.as_str())),
        ip: Some(ip.to_string()),
    }
}

/// The meeting's owner, an admin of its organisation, or neither.
fn standing(account: Option<&Account<'_>>, meeting: &MeetingRow) -> Standing {
    match account {
        Some(a) if a.user.id == meeting.host_user_id => Standing::Owner,
        Some(a)
            if a.user.org_id.as_deref() == Some(meeting.org_id.as_str())
                && a.user.role.is_some_and(|r| r >= OrgRole::Admin) =>
        {
            Standing::OrgAdmin
        }
        _ => Standing::Ordinary,
    }
}

/// The meeting if `passcode` opens it; wrong passcodes count against the
/// address and the meeting, so guessing from many addresses also stalls.
async fn opened_by_passcode(
    state: &SharedState,
    meeting: MeetingRow,
    passcode: Option<&str>,
    ip: IpAddr,
) -> Result<Option<MeetingRow>, StoreError> {
    let now = state.now_ms();
    let Some(expected) = meeting.secrets.passcode.clone() else {
        // No passcode: the waiting room stands behind the code, unless the
        // organisation has since locked waiting rooms off; then the code
        // alone would be enough, which it never is.
        let policy = state.store.org_by_id(&meeting.org_id).await?.map(|(_, p)| p);
        let forced_open = policy.is_some_and(|p| p.waiting_room.locked && !p.waiting_room.value);
        return Ok((!forced_open).then_some(meeting));
    };
    let failure = |detail| Audit {
        org_id: Some(&meeting.org_id),
        target: Some(&meeting.id),
        source_ip: Some(ip),
        detail,
        ..Audit::new(AuditAction::MeetingJoin, AuditOutcome::Failure)
    };
    // While the code path of a meeting is locked for guessing, every
    // attempt answers like an unknown code: a 429 here would confirm the
    // code exists. (The invite link is unaffected.)
    if state.throttles.passcode_failures.locked(&meeting.id, now).is_some() {
        state.audit(failure("code path locked after many wrong passcodes")).await?;
        return Ok(None);
    }
    if passcode.is_some_and(|p| constant_time_eq(p.trim(), &expected)) {
        return Ok(Some(meeting));
    }
    state.throttles.passcode_failures.failed(meeting.id.clone(), now);
    state.audit(failure("wrong passcode")).await?;
    Ok(None)
}
