//! Serving the browser app: static files from the table the binary hands
//! over, `index.html` for every other page path (the app routes itself),
//! under a Content-Security-Policy that lets the page load nothing from any
//! other origin.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
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
pub async fn serve(
    State(state): State<SharedState>,
    method: axum::http::Method,
    uri: Uri,
    request_headers: HeaderMap,
) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || !(method == axum::http::Method::GET || method == axum::http::Method::HEAD) {
        return ApiError::not_found("route").into_response();
    }
    let files = state.config.web.map_or(&[][..], |w| w.files);
    let find = |p: &str| files.iter().find(|(f, _)| *f == p).map(|(_, bytes)| *bytes);
    let (file, bytes, content_type, immutable) = match find(path) {
        Some(bytes) => (path, bytes, mime(path), path.starts_with("/assets/")),
        // A page of the app (/, /j/<secret>, /meetings, …): the app decides.
        None if !path.contains('.') => match find("/index.html") {
            Some(index) => ("/index.html", index, "text/html; charset=utf-8", false),
            None => ("", NOT_BUILT.as_bytes(), "text/html; charset=utf-8", false),
        },
        None => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    let accepted = request_headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (bytes, encoding) = match precompressed(find, file, accepted) {
        Some((bytes, encoding)) => (bytes, Some(encoding)),
        None => (bytes, None),
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The same path answers differently by what the browser takes.
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(encoding) = encoding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
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

/// The copy of `file` compressed at build time (`web/vite.config.ts`) that
/// the browser takes, Brotli first: no file is compressed per request.
fn precompressed<'a>(
    find: impl Fn(&str) -> Option<&'a [u8]>,
    file: &str,
    accepted: &str,
) -> Option<(&'a [u8], &'static str)> {
    if file.is_empty() {
        return None;
    }
    [("br", ".br"), ("gzip", ".gz")]
        .into_iter()
        .filter(|(coding, _)| accepts(accepted, coding))
        .find_map(|(coding, suffix)| find(&format!("{file}{suffix}")).map(|bytes| (bytes, coding)))
}

/// Whether an `Accept-Encoding` value takes `coding` (named, with a
/// quality above zero; `*` counts).
fn accepts(accepted: &str, coding: &str) -> bool {
    accepted.split(',').any(|part| {
        let mut pieces = part.split(';');
        let name = pieces.next().unwrap_or_default().trim();
        let quality =
            pieces.find_map(|p| p.trim().strip_prefix("q=")).map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
        (name.eq_ignore_ascii_case(coding) || name == "*") && quality > 0.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILES: &[(&str, &[u8])] = &[
        ("/assets/app.js", b"plain"),
        ("/assets/app.js.br", b"brotli"),
        ("/assets/app.js.gz", b"gzip"),
        ("/index.html", b"page"),
        ("/index.html.gz", b"gzipped page"),
    ];

    fn find(path: &str) -> Option<&'static [u8]> {
        FILES.iter().find(|(f, _)| *f == path).map(|(_, b)| *b)
    }

    #[test]
    fn the_smallest_copy_the_browser_takes_is_sent() {
        let pick = |file, accepted| precompressed(find, file, accepted).map(|(b, c)| (b, c));
        assert_eq!(pick("/assets/app.js", "gzip, deflate, br, zstd"), Some((&b"brotli"[..], "br")));
        assert_eq!(pick("/assets/app.js", "gzip"), Some((&b"gzip"[..], "gzip")));
        assert_eq!(pick("/assets/app.js", "br;q=0, gzip;q=0.5"), Some((&b"gzip"[..], "gzip")), "refused by quality");
        assert_eq!(pick("/assets/app.js", "*"), Some((&b"brotli"[..], "br")));
        assert_eq!(pick("/assets/app.js", ""), None, "nothing said: the file itself");
        assert_eq!(pick("/assets/app.js", "identity"), None);
        assert_eq!(pick("/index.html", "br, gzip"), Some((&b"gzipped page"[..], "gzip")), "only the copies that exist");
        assert_eq!(pick("", "br"), None, "the page shown when no app is built has no copies");
    }
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
