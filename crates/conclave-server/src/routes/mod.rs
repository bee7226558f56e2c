//! The HTTP surface: every route, the OpenAPI document describing it, and
//! the middleware every response passes through.

mod at_risk;
mod audit;
mod auth;
mod conversations;
mod devices;
mod directory;
mod files;
mod guests;
mod meetings;
mod ops;
mod orgs;
mod passkeys;
mod password_reset;
mod policy;
mod quality;
mod scim;
mod sessions;
mod sso;
mod storage;
mod two_factor;

use crate::error::ApiError;
use crate::state::SharedState;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use std::sync::OnceLock;
use tracing::Instrument;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Conclave API", description = "Secure meetings and end-to-end-encrypted messaging. Errors are RFC 9457 problem details."),
    paths(
        auth::signup, auth::login, password_reset::request, password_reset::confirm, auth::logout, auth::me, auth::change_password, auth::setup_status, auth::setup,
        two_factor::enroll, two_factor::confirm, two_factor::regenerate_recovery_codes, two_factor::disable,
        passkeys::list, passkeys::challenge, passkeys::register, passkeys::rename, passkeys::remove,
        passkeys::sign_in_challenge, passkeys::sign_in,
        sso::options, sso::start, sso::callback, sso::list, sso::create, sso::update, sso::remove,
        sessions::list, sessions::revoke, sessions::create_token,
        devices::list, devices::register, devices::revoke, devices::push_key, devices::subscribe_push,
        devices::unsubscribe_push,
        conversations::create, conversations::list, conversations::get, conversations::update,
        conversations::add_members, conversations::join, conversations::remove_member, conversations::set_role,
        conversations::send, conversations::delete_message, conversations::entries,
        conversations::mark_read, conversations::mute, conversations::live, conversations::start_call,
        conversations::key_package, conversations::commit, conversations::inbox, directory::people, directory::channels,
        files::start_upload, files::status, files::put_part, files::complete, files::abandon, files::get_part,
        storage::get, storage::set, guests::invite, guests::signup, guests::accept,
        orgs::create, orgs::get, orgs::list_members, orgs::update_member, orgs::deactivate_member, orgs::reactivate_member,
        scim::status, scim::create_token, scim::revoke_token, scim::list_group_mappings, scim::map_group,
        at_risk::list_sources, at_risk::add_source, at_risk::remove_source, at_risk::my_warnings, at_risk::rotate,
        orgs::invite, orgs::list_invitations, orgs::revoke_invitation,
        policy::get, policy::update, audit::list, quality::list, quality::meeting,
        meetings::create, meetings::list, meetings::get, meetings::update, meetings::delete, meetings::rotate,
        meetings::preview, meetings::join, meetings::report, meetings::list_reports, meetings::list_bans, meetings::lift_ban,
        crate::live::signaling::signal,
    ),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("session_cookie" = []))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::extract::SESSION_COOKIE,
                "Browser session; state-changing requests also need the X-CSRF-Token header",
            ))),
        );
    }
}

/// The OpenAPI document, rendered once.
pub fn openapi_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| ApiDoc::openapi().to_json().expect("the OpenAPI document serialises"))
}

pub fn router(state: SharedState) -> Router {
    let api = Router::new()
        .route("/setup", get(auth::setup_status).post(auth::setup))
        .route("/auth/signup", post(auth::signup))
        .route("/auth/login", post(auth::login))
        .route("/auth/guest-signup", post(guests::signup))
        .route("/auth/password-reset", post(password_reset::request))
        .route("/auth/password-reset/confirm", post(password_reset::confirm))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/passkey/challenge", post(passkeys::sign_in_challenge))
        .route("/auth/passkey", post(passkeys::sign_in))
        .route("/auth/sign-in-options", get(sso::options))
        .route("/auth/oidc/{provider_id}/start", post(sso::start))
        .route("/auth/oidc/{provider_id}/callback", get(sso::callback))
        .route("/me/passkeys", get(passkeys::list).post(passkeys::register))
        .route("/me/passkeys/challenge", post(passkeys::challenge))
        .route("/me/passkeys/{passkey_id}", patch(passkeys::rename).delete(passkeys::remove))
        .route("/me", get(auth::me))
        .route("/me/password", post(auth::change_password))
        .route("/me/guest-invitations", post(guests::accept))
        .route("/me/totp/enroll", post(two_factor::enroll))
        .route("/me/totp/confirm", post(two_factor::confirm))
        .route("/me/totp", delete(two_factor::disable))
        .route("/me/recovery-codes", post(two_factor::regenerate_recovery_codes))
        .route("/me/sessions", get(sessions::list))
        .route("/me/sessions/{session_id}", delete(sessions::revoke))
        .route("/me/tokens", post(sessions::create_token))
        .route("/me/devices", get(devices::list).post(devices::register))
        .route("/me/devices/{device_id}", delete(devices::revoke))
        .route("/me/devices/{device_id}/inbox", get(conversations::inbox))
        .route("/me/devices/{device_id}/live", get(conversations::live))
        .route("/me/devices/{device_id}/push", put(devices::subscribe_push).delete(devices::unsubscribe_push))
        .route("/push/key", get(devices::push_key))
        .route("/conversations", post(conversations::create).get(conversations::list))
        .route("/people", get(directory::people))
        .route("/channels", get(directory::channels))
        .route("/conversations/{conversation_id}", get(conversations::get).patch(conversations::update))
        .route("/conversations/{conversation_id}/members", post(conversations::add_members))
        .route("/conversations/{conversation_id}/members/{user_id}", delete(conversations::remove_member))
        .route("/conversations/{conversation_id}/members/{user_id}/role", put(conversations::set_role))
        .route("/conversations/{conversation_id}/join", post(conversations::join))
        .route("/conversations/{conversation_id}/read", put(conversations::mark_read))
        .route("/conversations/{conversation_id}/calls", post(conversations::start_call))
        .route("/conversations/{conversation_id}/mute", put(conversations::mute))
        .route("/conversations/{conversation_id}/messages", post(conversations::send))
        .route("/conversations/{conversation_id}/messages/{seq}", delete(conversations::delete_message))
        .route("/conversations/{conversation_id}/entries", get(conversations::entries))
        .route("/conversations/{conversation_id}/key-packages", post(conversations::key_package))
        .route(
            "/conversations/{conversation_id}/commits",
            post(conversations::commit).layer(DefaultBodyLimit::max(conversations::COMMIT_BODY_LIMIT)),
        )
        .route("/conversations/{conversation_id}/files", post(files::start_upload))
        .route("/conversations/{conversation_id}/guests", post(guests::invite))
        .route("/files/{file_id}", get(files::status).delete(files::abandon))
        .route("/files/{file_id}/complete", post(files::complete))
        // A part is the one body larger than the API's limit.
        .route(
            "/files/{file_id}/parts/{part}",
            put(files::put_part).layer(DefaultBodyLimit::max(files::PART_BODY_LIMIT)).get(files::get_part),
        )
        .route("/orgs", post(orgs::create))
        .route("/orgs/{org_id}", get(orgs::get))
        .route("/orgs/{org_id}/members", get(orgs::list_members))
        .route("/orgs/{org_id}/members/{user_id}", patch(orgs::update_member))
        .route("/orgs/{org_id}/members/{user_id}/deactivate", post(orgs::deactivate_member))
        .route("/orgs/{org_id}/members/{user_id}/reactivate", post(orgs::reactivate_member))
        .route("/orgs/{org_id}/invitations", post(orgs::invite).get(orgs::list_invitations))
        .route("/orgs/{org_id}/invitations/{invitation_id}", delete(orgs::revoke_invitation))
        .route("/orgs/{org_id}/policy", get(policy::get).patch(policy::update))
        .route("/orgs/{org_id}/storage", get(storage::get).put(storage::set))
        .route("/orgs/{org_id}/audit", get(audit::list))
        .route("/orgs/{org_id}/reports", get(meetings::list_reports))
        .route("/orgs/{org_id}/quality", get(quality::list))
        .route("/orgs/{org_id}/meetings/{meeting_id}/quality", get(quality::meeting))
        .route("/orgs/{org_id}/identity-providers", get(sso::list).post(sso::create))
        .route("/orgs/{org_id}/identity-providers/{provider_id}", patch(sso::update).delete(sso::remove))
        .route("/orgs/{org_id}/scim", get(scim::status))
        .route("/orgs/{org_id}/scim/token", post(scim::create_token).delete(scim::revoke_token))
        .route("/orgs/{org_id}/scim/groups", get(scim::list_group_mappings))
        .route("/orgs/{org_id}/watch-sources", get(at_risk::list_sources).post(at_risk::add_source))
        .route("/orgs/{org_id}/watch-sources/{source_id}", delete(at_risk::remove_source))
        .route("/me/risk-warnings", get(at_risk::my_warnings))
        .route("/risk-warnings/rotate", post(at_risk::rotate))
        .route("/orgs/{org_id}/scim/groups/{group_id}", put(scim::map_group))
        .route("/meetings", post(meetings::create).get(meetings::list))
        .route("/meetings/preview", post(meetings::preview))
        .route("/meetings/join", post(meetings::join))
        .route("/meetings/{meeting_id}", get(meetings::get).patch(meetings::update).delete(meetings::delete))
        .route("/meetings/{meeting_id}/rotate", post(meetings::rotate))
        .route("/meetings/{meeting_id}/reports", post(meetings::report))
        .route("/meetings/{meeting_id}/bans", get(meetings::list_bans))
        .route("/meetings/{meeting_id}/bans/{ban_id}", delete(meetings::lift_ban))
        .route("/signal", get(crate::live::signaling::signal))
        .layer(middleware::from_fn_with_state(state.clone(), origin_guard));

    Router::new()
        .nest("/api/v1", api)
        .nest(scim::BASE_PATH, scim::router())
        .route("/api/openapi.json", get(ops::openapi))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(crate::web::serve)
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The metrics listener's whole surface: `/metrics`, to whoever reaches it
/// (operators bind it to a private address).
pub fn metrics_router(state: SharedState) -> Router {
    Router::new()
        .route("/metrics", get(ops::open_metrics))
        .fallback(|| async { ApiError::not_found("page") })
        .with_state(state)
}

/// Refuses state-changing requests whose `Origin` is another site: with the
/// SameSite cookie and the CSRF token, the third lock against cross-site
/// requests (and the one that covers sign-in itself). A WebSocket opens
/// with a `GET` but changes state on it (a meeting's signaling, a device
/// sending its messages), and carries no CSRF token: its `Origin` is
/// checked the same way.
async fn origin_guard(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let unsafe_method =
        !matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS);
    let websocket =
        request.headers().get(header::UPGRADE).is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if unsafe_method || websocket {
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            if origin.as_bytes() != state.config.public_origin().as_bytes() {
                return axum::response::IntoResponse::into_response(ApiError::csrf(
                    "the request came from another site",
                ));
            }
        }
    }
    next.run(request).await
}

/// A span per request (method and route, never headers or bodies), the
/// response counters, and the security headers every response carries.
async fn observe(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let span = tracing::info_span!("http", method = %request.method(), route = %route, status = tracing::field::Empty);
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("status", status);
    span.in_scope(|| tracing::debug!(elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "response"));
    state.metrics.count_response(status);
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    response
}
