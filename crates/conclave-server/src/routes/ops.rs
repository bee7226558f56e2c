//! Operational endpoints: liveness, readiness, metrics and the API description.

use crate::error::ApiError;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

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

pub async fn metrics(State(state): State<SharedState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi_json()).into_response()
}
