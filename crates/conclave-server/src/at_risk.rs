//! The at-risk meeting notifier (S4), as Zoom ran one in 2020: the public
//! sources an organisation's administrators list (RSS, Atom and JSON feeds,
//! Mastodon timelines) are polled politely — their `ETag` and
//! `Last-Modified` sent back, a growing pause after failures, a size cap —
//! and every link or typed code of one of this server's meetings in a
//! public post is scored (live or soon, no waiting room, no passcode, how
//! public) and, when it matters, told to the meeting's owner by email with
//! advice and a single-use link that rotates the meeting's secrets. Each
//! warning is audited and listed on the owner's home page.
//!
//! Parsing is `conclave-feeds`' (bounded, no entity expansion); what the
//! server may fetch follows the same rules as Web Push endpoints (public
//! HTTPS hosts only).

use crate::mail::Email;
use crate::state::{Audit, SharedState};
use conclave_auth::OpaqueToken;
use conclave_feeds::{Post, Reference};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_store::{MeetingRow, Polled, StoreError, WatchSourceRow};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The longest pause after failures.
const MAX_BACKOFF_MS: i64 = 6 * 3600 * 1000;
/// Warnings start at this score.
const WARN_AT: u32 = 3;
/// How far ahead a scheduled meeting counts as upcoming.
const UPCOMING_MS: i64 = 14 * 24 * 3600 * 1000;
/// Meetings looked up for one post, and for one look at a source: a
/// document stuffed with codes costs no more than this.
const LOOKUPS_PER_POST: usize = 16;
const LOOKUPS_PER_POLL: usize = 256;

/// Polls due sources every `every`, for as long as the server runs.
pub fn start(state: Weak<crate::state::AppState>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else { return };
            if let Err(err) = poll_due(&state, every).await {
                tracing::warn!(error = %err, "the at-risk notifier could not read its sources");
            }
        }
    });
}

/// Sources read at once: a slow source (or a hundred) does not hold up
/// every other organisation's.
const CONCURRENT_POLLS: usize = 8;

/// Polls every source that is due, a few at a time.
pub async fn poll_due(state: &SharedState, every: Duration) -> Result<(), StoreError> {
    use futures_util::StreamExt;
    let due = state.store.due_watch_sources(state.now_ms()).await?;
    futures_util::stream::iter(due)
        .for_each_concurrent(CONCURRENT_POLLS, |source| async move {
            if let Err(err) = poll_one(state, &source, every).await {
                tracing::warn!(source = %source.url, error = %err, "a watched source's look could not be recorded");
            }
        })
        .await;
    Ok(())
}

async fn poll_one(state: &SharedState, source: &WatchSourceRow, every: Duration) -> Result<(), StoreError> {
    let outcome = fetch(state, source).await;
    let now = state.now_ms();
    match outcome {
        Ok(fetched) => {
            if let Some(body) = &fetched.body {
                match conclave_feeds::parse(body) {
                    Ok(posts) => look_at(state, source, &posts).await?,
                    Err(err) => {
                        // What the document said stays out of the message
                        // admins read: only what kind of trouble.
                        let why = match err {
                            conclave_feeds::FeedError::TooLarge => "the document is too large",
                            conclave_feeds::FeedError::TooDeep => "the document nests too deep",
                            conclave_feeds::FeedError::Malformed(_) => {
                                "not a feed that can be read (RSS, Atom, JSON Feed or a Mastodon timeline)"
                            }
                        };
                        return record_failure(state, source, why).await;
                    }
                }
            }
            let polled = Polled {
                etag: fetched.etag.as_deref(),
                last_modified: fetched.last_modified.as_deref(),
                failures: 0,
                next_poll_at_ms: now + every.as_millis() as i64 / 2,
                error: None,
                now_ms: now,
            };
            state.store.record_poll(&source.id, &polled).await
        }
        Err(err) => record_failure(state, source, &err).await,
    }
}

async fn record_failure(state: &SharedState, source: &WatchSourceRow, error: &str) -> Result<(), StoreError> {
    let failures = source.failures + 1;
    let backoff = (60_000i64 << failures.min(20)).min(MAX_BACKOFF_MS);
    let now = state.now_ms();
    let polled = Polled {
        etag: None,
        last_modified: None,
        failures,
        next_poll_at_ms: now + backoff,
        error: Some(error),
        now_ms: now,
    };
    tracing::info!(source = %source.url, error, "a watched source could not be read");
    state.store.record_poll(&source.id, &polled).await
}

struct Fetched {
    /// `None`: not modified since the last look.
    body: Option<Vec<u8>>,
    etag: Option<String>,
    last_modified: Option<String>,
}

/// One polite GET: the validators of the last look, a timeout, and no
/// more than the feed parser takes.
/// Failures are described by kind only: the text of a network or parser
/// error could carry what an internal host answered.
async fn fetch(state: &SharedState, source: &WatchSourceRow) -> Result<Fetched, String> {
    let pinned = crate::outbound::pinned_address(&source.url, state.config.allow_local_outbound)
        .await
        .map_err(|e| e.to_string())?;
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(format!("Conclave at-risk meeting notifier (+{})", state.config.public_url));
    if let Some((name, address)) = pinned {
        builder = builder.resolve(&name, address);
    }
    let unreachable = |_| "the source could not be reached".to_owned();
    let client = builder.build().map_err(unreachable)?;
    let mut request = client.get(&source.url);
    if let Some(etag) = &source.etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    if let Some(modified) = &source.last_modified {
        request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified);
    }
    let mut response = request.send().await.map_err(unreachable)?;
    let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (etag, last_modified) = (header(reqwest::header::ETAG), header(reqwest::header::LAST_MODIFIED));
    if response.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Fetched { body: None, etag, last_modified });
    }
    if !response.status().is_success() {
        return Err(format!("the source answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > conclave_feeds::MAX_FEED_BYTES {
            return Err(format!("the source sent more than {} bytes", conclave_feeds::MAX_FEED_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { body: Some(body), etag, last_modified })
}

/// Every meeting the posts refer to, scored, warned about when at risk.
/// Only the watching organisation's own meetings: a source one
/// organisation lists never makes the server write to another's people.
async fn look_at(state: &SharedState, source: &WatchSourceRow, posts: &[Post]) -> Result<(), StoreError> {
    let mut lookups = 0;
    for post in posts {
        let references = conclave_feeds::references(&post.text, &state.config.public_url);
        for reference in references.into_iter().take(LOOKUPS_PER_POST) {
            lookups += 1;
            if lookups > LOOKUPS_PER_POLL {
                return Ok(());
            }
            let meeting = match &reference {
                Reference::Link(secret) => state.store.meeting_by_link_secret(secret).await?,
                Reference::Code(code) => state.store.meeting_by_code(code).await?,
            };
            let Some(meeting) = meeting.filter(|m| m.org_id == source.org_id) else { continue };
            let (score, reasons) = assess(state, &meeting, post, &reference);
            if score >= WARN_AT {
                warn(state, source, &meeting, post, score, &reasons).await?;
            }
        }
    }
    Ok(())
}

/// How much a post puts a meeting at risk, and why.
fn assess(state: &SharedState, meeting: &MeetingRow, post: &Post, reference: &Reference) -> (u32, Vec<String>) {
    let now = state.now_ms();
    let mut score: u32 = 0;
    let mut reasons = Vec::new();
    let live = state.live.is_live(&meeting.id);
    let ends = meeting.scheduled_start_ms.map(|s| s + meeting.duration_minutes.unwrap_or(60) * 60_000);
    if live {
        score += 3;
        reasons.push("the meeting is live now".to_owned());
    } else if let (Some(start), Some(end)) = (meeting.scheduled_start_ms, ends) {
        if end < now {
            // Over: a link to a past meeting is little risk.
            return (0, Vec::new());
        }
        if start - now < UPCOMING_MS {
            score += 2;
            reasons.push(format!("it is scheduled for {}", crate::clock::UtcTime::from_ms(start).minute()));
        }
    } else {
        score += 1;
        reasons.push("it can be started at any time".to_owned());
    }
    if !meeting.settings.waiting_room {
        score += 2;
        reasons.push("its waiting room is off: whoever has the link is let straight in".to_owned());
    }
    if meeting.secrets.passcode.is_none() {
        score += 1;
        reasons.push("it has no passcode".to_owned());
    } else if matches!(reference, Reference::Link(_)) {
        reasons.push("the passcode does not protect the link, which carries its own secret".to_owned());
    }
    if post.public {
        score += 1;
        reasons.push("the post is public".to_owned());
    } else {
        score = score.saturating_sub(1);
    }
    (score, reasons)
}

async fn warn(
    state: &SharedState,
    source: &WatchSourceRow,
    meeting: &MeetingRow,
    post: &Post,
    score: u32,
    reasons: &[String],
) -> Result<(), StoreError> {
    let token = OpaqueToken::generate_with_prefix("risk_");
    let post_url = post.url.clone().unwrap_or_else(|| source.url.clone());
    let now = state.now_ms();
    let new = state
        .store
        .add_risk_warning(
            &meeting.id,
            &meeting.host_user_id,
            &meeting.org_id,
            &source.url,
            &post_url,
            i64::from(score),
            &reasons.join("\n"),
            &token.hash().0,
            now,
        )
        .await?;
    if !new {
        return Ok(());
    }
    let detail = format!("found in {post_url} (score {score})");
    let event = Audit::new(AuditAction::MeetingAtRisk, AuditOutcome::Success).org(&meeting.org_id).target(&meeting.id);
    state.audit(event.detail(&detail)).await?;
    let Some(owner) = state.store.user_by_id(&meeting.host_user_id).await? else { return Ok(()) };
    let link = format!("{}/rotate#{}", state.config.public_url.trim_end_matches('/'), token.as_str());
    let state = Arc::clone(state);
    let title = meeting.title.clone();
    let reasons = reasons.to_vec();
    tokio::spawn(async move {
        let found =
            format!("The link or code of your meeting “{title}” was posted where anyone can see it: {post_url}");
        let why = format!("Why this matters: {}.", reasons.join("; "));
        let advice = "Rotate the meeting's link and code (the button below does it once, and anyone who was \
                      invited by email gets the new link), keep the waiting room on, and share meeting links \
                      privately rather than in public posts.";
        let email = Email {
            to: &owner.email,
            subject: &format!("Your meeting “{title}” was posted in public"),
            paragraphs: &[&found, &why, advice],
            action: Some(("Rotate the meeting's link and code", &link)),
            calendar: None,
        };
        if let Err(err) = state.mailer.send(&email).await {
            tracing::warn!(error = %err, "an at-risk warning was not sent");
        }
    });
    Ok(())
}
