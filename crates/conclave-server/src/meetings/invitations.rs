//! Calendar invitations by email for a scheduled meeting: everyone invited
//! gets an iCalendar `REQUEST` when it is made; a change to its time,
//! title, passcode or link sends a new one with a higher sequence (and a
//! `CANCEL` to anyone no longer invited); deleting it cancels it. The
//! invitation carries how to join (link, code, passcode), as a host would
//! write it by hand; it goes only to the addresses the host gave.

use crate::accounts;
use crate::calendar::{self, Event, Method};
use crate::mail::Email;
use crate::state::SharedState;
use conclave_proto::problem::FieldError;
use conclave_store::MeetingRow;

/// Most addresses one meeting invites.
pub const MAX_INVITEES: usize = 200;
/// The length of a meeting scheduled without one, for calendars.
const DEFAULT_MINUTES: i64 = 60;

/// The addresses to invite, normalised and without repeats; wrong ones
/// are reported as `invitees` errors.
pub fn check_invitees(given: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if given.len() > MAX_INVITEES {
        errors.push(FieldError { field: "invitees".into(), message: format!("{MAX_INVITEES} addresses at most") });
        return Vec::new();
    }
    let mut invitees = Vec::with_capacity(given.len());
    for address in given {
        match accounts::normalize_email(address) {
            Ok(email) if !invitees.contains(&email) => invitees.push(email),
            Ok(_) => {}
            Err(_) => errors
                .push(FieldError { field: "invitees".into(), message: format!("{address:?} is not an email address") }),
        }
    }
    invitees
}

/// Spends `count` of the organisation's daily invitation emails, or says
/// how long until it may send them.
pub fn spend_quota(state: &SharedState, org_id: &str, count: usize) -> Result<(), std::time::Duration> {
    if !state.mailer.is_enabled() {
        return Ok(());
    }
    let now = state.now_ms();
    for _ in 0..count {
        state.throttles.invitation_emails.check(org_id.to_owned(), now)?;
    }
    Ok(())
}

/// Sends `method` for `meeting` to `to`, in the background (the host's
/// answer does not wait for the mail server). Nothing without email set
/// up, a scheduled start, or anyone to send to.
pub async fn send(state: &SharedState, meeting: &MeetingRow, to: &[String], method: Method) {
    let Some(start) = meeting.scheduled_start_ms else { return };
    if to.is_empty() || !state.mailer.is_enabled() {
        return;
    }
    let (host_name, host_email) = match state.store.user_by_id(&meeting.host_user_id).await {
        Ok(Some(host)) => (host.display_name, host.email),
        _ => return,
    };
    let public = state.config.public_url.trim_end_matches('/').to_owned();
    let url = format!("{public}/j/{}", meeting.secrets.link_secret);
    let code = crate::meetings::secrets::display_code(&meeting.secrets.code);
    let mut how = format!("Join: {url}\nOr with the meeting code {code}");
    if let Some(passcode) = &meeting.secrets.passcode {
        how.push_str(&format!(" and the passcode {passcode}"));
    }
    let when = crate::clock::UtcTime::from_ms(start).minute();
    let host_of_url = url::Url::parse(&public).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    // A cancellation says nothing of how to join: its reader may be someone
    // no longer invited, and the link may still work for others.
    let (description, event_url) = match method {
        Method::Request => (how.as_str(), url.as_str()),
        Method::Cancel => ("This meeting was cancelled.", ""),
    };
    let event = Event {
        uid: format!("{}@{host_of_url}", meeting.id),
        sequence: meeting.calendar_sequence,
        start_ms: start,
        end_ms: start + meeting.duration_minutes.unwrap_or(DEFAULT_MINUTES) * 60_000,
        stamp_ms: state.now_ms(),
        title: &meeting.title,
        description,
        url: event_url,
        organizer_name: &host_name,
        organizer_email: &host_email,
        attendees: to,
    };
    let ics = calendar::invitation(&event, method);
    let (subject, lead) = match (method, meeting.calendar_sequence) {
        (Method::Request, 0) => (
            format!("Invitation: {} @ {when}", meeting.title),
            format!("{host_name} invited you to “{}” on {when}.", meeting.title),
        ),
        (Method::Request, _) => (
            format!("Updated invitation: {} @ {when}", meeting.title),
            format!("{host_name} changed “{}”: it is now on {when}.", meeting.title),
        ),
        (Method::Cancel, _) => (
            format!("Cancelled: {} @ {when}", meeting.title),
            format!("{host_name} cancelled “{}” on {when}.", meeting.title),
        ),
    };
    let state = state.clone();
    let to = to.to_vec();
    tokio::spawn(async move {
        for address in &to {
            let paragraphs: Vec<&str> = match method {
                Method::Request => vec![&lead, &how],
                Method::Cancel => vec![&lead],
            };
            let email = Email {
                to: address,
                subject: &subject,
                paragraphs: &paragraphs,
                action: (method == Method::Request).then_some(("Join the meeting", url.as_str())),
                calendar: Some((method, &ics)),
            };
            if let Err(err) = state.mailer.send(&email).await {
                tracing::warn!(error = %err, "a meeting invitation was not sent");
            }
        }
    });
}
