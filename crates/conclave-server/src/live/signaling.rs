//! The signaling WebSocket: `GET /api/v1/signal?ticket=…&v=1` (or
//! `resume=…` after a dropped connection). The ticket is checked before the
//! upgrade, so a bad or replayed one never gets a socket. Each connection
//! then relays JSON messages between its participant and the meeting's
//! actor, refusing malformed, oversized and flooding input with an `error`
//! message that changes nothing.

use super::protocol::Frame;
use super::{DirectoryError, JoinError, Seated};
use crate::error::{ApiError, ApiResult};
use crate::extract::ClientIp;
use crate::state::{Audit, SharedState};
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use conclave_auth::TokenBucket;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::signal::{
    ClientMessage, ErrorCode, ServerMessage, MAX_MESSAGE_BYTES, MAX_SDP_MESSAGE_BYTES, PROTOCOL_VERSION,
};
use conclave_proto::ProblemCode;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;
use tracing::Instrument;

/// A connection that says nothing for this long is considered gone (clients ping every 20 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Read buffer per connection; larger messages still arrive, in several reads.
pub const SOCKET_BUFFER_BYTES: usize = 4 * 1024;
/// Consecutive refused messages after which the connection is closed.
const MAX_STRIKES: u32 = 50;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SignalQuery {
    /// A join ticket from joinMeeting.
    pub ticket: Option<String>,
    /// A resume token from an earlier `waiting` or `admitted` message.
    pub resume: Option<String>,
    /// Protocol version; must be 1.
    pub v: Option<u32>,
}

enum Entry {
    Join(super::tickets::TicketGrant),
    Resume { meeting_id: String, token: String },
}

/// Open the meeting's signaling WebSocket with a join ticket or a resume token.
#[utoipa::path(get, path = "/api/v1/signal", operation_id = "openSignaling", tag = "meetings", params(SignalQuery),
    responses((status = 101, description = "WebSocket upgrade; messages as in docs/protocol.md"),
        (status = 400, description = "Unsupported protocol version", body = conclave_proto::Problem),
        (status = 401, description = "Ticket or resume token unknown, used or expired", body = conclave_proto::Problem)))]
pub async fn signal(
    State(state): State<SharedState>,
    ClientIp(ip): ClientIp,
    query: Result<Query<SignalQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // Every refusal before the upgrade is a problem document, whatever was
    // wrong: the version first (so a bad one never spends a ticket).
    let unsupported = || {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            ProblemCode::UnsupportedProtocolVersion,
            "This server speaks signaling protocol version 1",
        )
        .with_detail("connect with v=1")
    };
    let Ok(Query(query)) = query else { return Err(unsupported()) };
    if query.v != Some(PROTOCOL_VERSION) {
        return Err(unsupported());
    }
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(rejection.status(), ProblemCode::WebsocketRequired, "This endpoint is a WebSocket")
            .with_detail(rejection.body_text())
    })?;
    let now = state.now_ms();
    let entry = match (query.ticket, query.resume) {
        (Some(ticket), None) => match super::tickets::redeem(&state.store, &ticket, now).await? {
            Some(grant) => Entry::Join(grant),
            None => {
                let audit = Audit {
                    source_ip: Some(ip),
                    detail: "unknown, used or expired join ticket",
                    ..Audit::new(AuditAction::MeetingSignal, AuditOutcome::Denied)
                };
                state.audit(audit).await?;
                return Err(invalid_ticket());
            }
        },
        (None, Some(resume)) => match super::tickets::resume_meeting(&state.store, &resume).await? {
            Some(meeting_id) if state.live.is_live(&meeting_id) => Entry::Resume { meeting_id, token: resume },
            _ => {
                let audit = Audit {
                    source_ip: Some(ip),
                    detail: "unknown resume token",
                    ..Audit::new(AuditAction::MeetingSignal, AuditOutcome::Denied)
                };
                state.audit(audit).await?;
                return Err(
                    invalid_ticket().with_detail("the resume token is unknown or its meeting has closed; join again")
                );
            }
        },
        _ => return Err(invalid_ticket().with_detail("give exactly one of ticket or resume")),
    };
    Ok(upgrade
        // Signaling messages are small; the WebSocket layer's default
        // 128 KiB buffers per direction would dominate an idle
        // connection's memory (see docs/benchmarks.md).
        .read_buffer_size(SOCKET_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(2 * MAX_SDP_MESSAGE_BYTES)
        .max_frame_size(2 * MAX_SDP_MESSAGE_BYTES)
        .on_upgrade(move |socket| connection(state, socket, entry, ip)))
}

fn invalid_ticket() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        ProblemCode::InvalidTicket,
        "The join ticket is unknown, used or expired",
    )
    .with_detail("call joinMeeting again for a new ticket")
}

async fn connection(state: SharedState, socket: WebSocket, entry: Entry, ip: IpAddr) {
    let meeting = match &entry {
        Entry::Join(grant) => grant.meeting_id.clone(),
        Entry::Resume { meeting_id, .. } => meeting_id.clone(),
    };
    let span = tracing::info_span!("participant", meeting = %meeting, connection = tracing::field::Empty);
    serve(state, socket, entry, ip).instrument(span).await
}

/// Seats the connection: a ticket's holder in a new seat (or their
/// account's seat), a resume token's holder in its seat.
async fn seat(state: &SharedState, entry: Entry) -> Result<Seated, String> {
    match entry {
        Entry::Join(grant) => {
            let token = super::tickets::new_resume_token(&state.store, &grant.meeting_id, state.now_ms())
                .await
                .map_err(|e| e.to_string())?;
            state.live.join(&state.store, &grant, &token).await.map_err(|e| match e {
                JoinError::Directory(DirectoryError::Busy) => "the meeting is busy; try again".to_owned(),
                other => format!("{other}; join again"),
            })
        }
        Entry::Resume { meeting_id, token } => state
            .live
            .resume(&meeting_id, &token)
            .await
            .ok_or_else(|| "the resume token is unknown or its seat is gone; join again".to_owned()),
    }
}

async fn serve(state: SharedState, socket: WebSocket, entry: Entry, ip: IpAddr) {
    let (mut sink, mut stream) = socket.split();
    let Seated { meeting_id, connection, mut frames } = match seat(&state, entry).await {
        Ok(seated) => seated,
        Err(message) => {
            let _ = send(&mut sink, &ServerMessage::error(ErrorCode::CannotJoin, message, None)).await;
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
    };
    tracing::Span::current().record("connection", connection);
    state.metrics.signaling_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let limits = &state.config.limits;
    let mut bucket = TokenBucket::new(limits.signaling_burst, limits.signaling_per_second, clock(&state));
    let mut strikes = 0u32;
    // Only what the participant sends keeps the connection alive.
    let mut heard_at = tokio::time::Instant::now();
    loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Some(Frame::Message { message }) => {
                    if send(&mut sink, &message).await.is_err() {
                        break;
                    }
                }
                Some(Frame::Close) | None => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            },
            frame = tokio::time::timeout_at(heard_at + IDLE_TIMEOUT, stream.next()) => {
                heard_at = tokio::time::Instant::now();
                let text = match frame {
                    Ok(Some(Ok(Message::Text(text)))) => text,
                    Ok(Some(Ok(Message::Binary(_)))) => {
                        strikes += 1;
                        let _ = send(&mut sink, &ServerMessage::error(ErrorCode::Malformed, "send JSON text frames", None)).await;
                        continue;
                    }
                    Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                    Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) | Err(_) => break,
                };
                match parse(&text, &mut bucket, clock(&state)) {
                    Ok(message) => {
                        strikes = 0;
                        if state.live.message(&meeting_id, connection, message).is_err() {
                            let _ = send(&mut sink, &ServerMessage::error(ErrorCode::Overloaded, "the meeting is overloaded; slow down", None)).await;
                        }
                    }
                    Err(refusal) => {
                        strikes += 1;
                        if strikes == 1 || strikes.is_multiple_of(10) {
                            tracing::debug!(code = refusal.code(), "refused a signaling message");
                        }
                        let _ = send(&mut sink, &refusal).await;
                    }
                }
                if strikes >= MAX_STRIKES {
                    let audit = Audit { source_ip: Some(ip), detail: "closed a signaling connection that kept sending refused messages", ..Audit::new(AuditAction::MeetingSignal, AuditOutcome::Denied) };
                    let _ = state.audit(audit).await;
                    close_flooding(&mut sink, &mut stream).await;
                    break;
                }
            }
        }
    }
    state.live.closed(&meeting_id, connection);
    state.metrics.signaling_connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

/// The server's clock for the rate limit (a test's manual clock moves it).
fn clock(state: &SharedState) -> u64 {
    state.now_ms().max(0) as u64
}

/// WebSocket close code for a policy violation (RFC 6455 §7.4.1).
const POLICY_VIOLATION: u16 = 1008;
/// How long a flooding client has to read the close and answer it.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Closes a connection that kept sending refused messages, saying why. What
/// it already sent is read and dropped first, until its own close comes (or
/// a short grace ends): closing with unread input would make the kernel
/// reset the connection, and the client would never see the reason.
async fn close_flooding(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
) {
    let frame = CloseFrame { code: POLICY_VIOLATION, reason: "too many refused messages".into() };
    let _ = sink.send(Message::Close(Some(frame))).await;
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

trait RefusalCode {
    fn code(&self) -> &str;
}

impl RefusalCode for ServerMessage {
    fn code(&self) -> &str {
        match self {
            ServerMessage::Error { code, .. } => code,
            _ => "",
        }
    }
}

/// Size, rate and shape checks for one incoming message.
fn parse(text: &str, bucket: &mut TokenBucket, now_ms: u64) -> Result<ClientMessage, Box<ServerMessage>> {
    if bucket.take(now_ms).is_err() {
        return Err(Box::new(ServerMessage::error(ErrorCode::RateLimited, "too many messages; slow down", None)));
    }
    let too_large = |limit: usize| {
        Box::new(ServerMessage::error(ErrorCode::TooLarge, format!("messages are at most {limit} bytes"), None))
    };
    if text.len() > MAX_SDP_MESSAGE_BYTES {
        return Err(too_large(MAX_SDP_MESSAGE_BYTES));
    }
    let message = ClientMessage::from_json(text)
        .map_err(|e| Box::new(ServerMessage::error(ErrorCode::Malformed, format!("not a valid message: {e}"), None)))?;
    let is_sdp = matches!(
        message,
        ClientMessage::MediaOffer { .. } | ClientMessage::MediaAnswer { .. } | ClientMessage::E2eeCommit { .. }
    );
    if text.len() > MAX_MESSAGE_BYTES && !is_sdp {
        return Err(too_large(MAX_MESSAGE_BYTES));
    }
    Ok(message)
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    message: &ServerMessage,
) -> Result<(), axum::Error> {
    let json = serde_json::to_string(message).expect("server messages serialise");
    sink.send(Message::Text(json.into())).await
}
