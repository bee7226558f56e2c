//! Operational endpoints: liveness, readiness, metrics and the API description.

use crate::error::ApiError;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve: its database answers.
pub async fn readyz(State(state): State<SharedState>) -> Response {
    match state.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            ApiError::unavailable("the database does not answer").into_response()
        }
    }
}

/// `/metrics` on the public listener: only with the configured bearer
/// token; without one configured, as if there were no such page.
pub async fn metrics(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let Some(token) = &state.config.metrics.token else {
        return ApiError::not_found("page").into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
        return ApiError::unauthenticated().with_detail("/metrics needs the metrics bearer token").into_response();
    }
    metrics_page(&state)
}

/// `/metrics` on the metrics listener of its own: anyone who reaches it.
pub async fn open_metrics(State(state): State<SharedState>) -> Response {
    metrics_page(&state)
}

fn metrics_page(state: &crate::state::AppState) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render_metrics(state)).into_response()
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi_json()).into_response()
}

/// The server's counters, the media plane's, and the process's CPU time.
fn render_metrics(state: &crate::state::AppState) -> String {
    use std::fmt::Write;
    let mut out = state.metrics.render();
    if let Some(media) = &state.media {
        let s = media.stats();
        for (name, value, help) in [
            ("conclave_media_datagrams_received_total", s.datagrams_in, "UDP datagrams received by the SFU."),
            ("conclave_media_datagrams_sent_total", s.datagrams_out, "UDP datagrams sent by the SFU."),
            ("conclave_media_packets_forwarded_total", s.packets_forwarded, "RTP packets written to subscribers."),
            (
                "conclave_media_packets_blocked_total",
                s.packets_blocked,
                "RTP packets dropped because a host muted or stopped their source.",
            ),
            (
                "conclave_media_datagrams_unrouted_total",
                s.datagrams_unrouted,
                "Datagrams from no admitted participant.",
            ),
            ("conclave_media_session_faults_total", s.peer_faults, "Media sessions closed after a failure."),
            (
                "conclave_media_keyframes_for_lost_packets_total",
                s.keyframes_for_lost_packets,
                "Keyframes asked of publishers because a video packet never arrived, even after retransmission.",
            ),
            (
                "conclave_media_packets_judged_lost_too_soon_total",
                s.packets_judged_lost_too_soon,
                "Video packets judged lost (their keyframe asked for) that still came.",
            ),
            (
                "conclave_media_late_repairs_sent_twice_total",
                s.late_repairs_sent_twice,
                "Retransmitted video packets written twice to a subscriber, having come a round trip late.",
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        let _ = writeln!(out, "# HELP conclave_media_sessions Media sessions open now.\n# TYPE conclave_media_sessions gauge\nconclave_media_sessions {}", s.peers);
    }
    if let Some(cpu) = crate::metrics::process_cpu_seconds(None) {
        let _ = writeln!(out, "# HELP process_cpu_seconds_total User and system CPU time.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu}");
    }
    out
}
