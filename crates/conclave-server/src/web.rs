//! Serving the browser app: static files from the table the binary hands
//! over, `index.html` for every other page path (the app routes itself),
//! under a Content-Security-Policy that lets the page load nothing from any
//! other origin.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::SharedState;

/// The built app: `(path, bytes)` per file, e.g. `("/index.html", …)`.
#[derive(Debug, Clone, Copy)]
pub struct WebApp {
    pub files: &'static [(&'static str, &'static [u8])],
}

/// Only this origin, for everything. `wasm-unsafe-eval` lets the
/// background-blur model's WebAssembly compile (it evaluates no script);
/// `blob:` covers video frames and workers the app makes itself.
pub const APP_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; \
object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Conclave</title>\
<p>The web app is not built into this binary. Build it with <code>cargo xtask run</code> \
(which runs <code>npm run build</code> in <code>web/</code> first).</p>";

/// Everything the API does not claim: an app file, the app's page, or for
/// `/api/…` a problem.
pub async fn serve(State(state): State<SharedState>, method: axum::http::Method, uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || !(method == axum::http::Method::GET || method == axum::http::Method::HEAD) {
        return ApiError::not_found("route").into_response();
    }
    let files = state.config.web.map_or(&[][..], |w| w.files);
    let find = |p: &str| files.iter().find(|(f, _)| *f == p).map(|(_, bytes)| *bytes);
    let (bytes, content_type, immutable) = match find(path) {
        Some(bytes) => (bytes, mime(path), path.starts_with("/assets/")),
        // A page of the app (/, /j/<secret>, /meetings, …): the app decides.
        None if !path.contains('.') => match find("/index.html") {
            Some(index) => (index, "text/html; charset=utf-8", false),
            None => (NOT_BUILT.as_bytes(), "text/html; charset=utf-8", false),
        },
        None => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(APP_CSP));
    // Camera and microphone for this origin only; nothing else.
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(self), display-capture=(self), geolocation=()"),
    );
    if immutable {
        // Vite names assets by content hash.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    }
    response
}

fn mime(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}
