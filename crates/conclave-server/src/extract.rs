//! Request extractors: JSON bodies whose every rejection is a problem
//! document, the client's address, and the authenticated session with its
//! CSRF check.

use crate::error::ApiError;
use crate::state::{Audit, SharedState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method};
use conclave_auth::TokenHash;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::{Org, OrgPolicy};
use conclave_store::{SessionRow, SignedIn, UserRow};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

pub const SESSION_COOKIE: &str = "conclave_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// `Json<T>` whose rejections are problem+json with a useful detail.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::unsupported_media_type()),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::malformed_json(e.body_text())),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::invalid_body(e.body_text())),
            Err(JsonRejection::BytesRejection(e)) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::payload_too_large(0).with_detail("the body exceeds the server's size limit"))
            }
            Err(other) => Err(ApiError::malformed_json(other.body_text())),
        }
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for ApiJson<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// The address the request came from: the TCP peer, or the last untrusted
/// hop of `X-Forwarded-For` when the peer is a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<SharedState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(ApiError::internal)?;
        Ok(Self(client_ip(peer, parts.headers.get("x-forwarded-for"), &state.config.trusted_proxies)))
    }
}

pub(crate) fn client_ip(peer: IpAddr, forwarded: Option<&header::HeaderValue>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(list) = forwarded.and_then(|v| v.to_str().ok()) else { return peer };
    list.rsplit(',')
        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
        .find(|hop| !trusted.contains(hop))
        .unwrap_or(peer)
}

/// A signed-in request: the live session, its account and organisation.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub session: SessionRow,
    pub user: UserRow,
    pub org: Option<(Org, OrgPolicy)>,
    pub needs_enrollment: bool,
}

impl CurrentSession {
    pub fn org_id(&self) -> Option<&str> {
        self.user.org_id.as_deref()
    }

    /// An audit event done by this session's person, from `ip`, in their
    /// organisation. (Here rather than on `Audit`, so the state knows
    /// nothing of requests.)
    pub fn audit(&self, ip: IpAddr, action: AuditAction, outcome: AuditOutcome) -> Audit<'_> {
        Audit {
            org_id: self.org_id(),
            actor_id: Some(&self.user.id),
            source_ip: Some(ip),
            ..Audit::new(action, outcome)
        }
    }
}

/// Any live session, including one that must still enrol in 2FA.
pub struct EnrollingSession(pub CurrentSession);

/// A live session with nothing outstanding.
pub struct Authed(pub CurrentSession);

/// The session if the request carries a valid one; anonymous otherwise
/// (an expired cookie does not stop a guest from joining a meeting).
pub struct MaybeAuthed(pub Option<CurrentSession>);

impl FromRequestParts<SharedState> for MaybeAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        Ok(Self(authenticate(parts, state).await.ok().filter(|c| !c.needs_enrollment)))
    }
}

impl FromRequestParts<SharedState> for EnrollingSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        authenticate(parts, state).await.map(Self)
    }
}

impl FromRequestParts<SharedState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let current = authenticate(parts, state).await?;
        if current.needs_enrollment {
            return Err(ApiError::enrollment_required());
        }
        Ok(Self(current))
    }
}

fn session_cookie(parts: &Parts) -> Option<&str> {
    parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(
        |pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value)
        },
    )
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

async fn authenticate(parts: &Parts, state: &SharedState) -> Result<CurrentSession, ApiError> {
    // A bearer token is never sent by a browser on its own, so it needs no
    // CSRF proof; the ambient cookie does.
    let (token, via_cookie) = match (bearer(parts), session_cookie(parts)) {
        (Some(token), _) => (token, false),
        (None, Some(token)) => (token, true),
        (None, None) => return Err(ApiError::unauthenticated()),
    };
    let now = state.now_ms();
    let signed_in = state.store.signed_in(&TokenHash::of(token).0).await?;
    let SignedIn { session, user, org } =
        signed_in.filter(|s| s.session.is_live(now)).ok_or_else(ApiError::unauthenticated)?;
    if via_cookie && is_state_changing(&parts.method) {
        let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), session.csrf_token.as_bytes())) {
            return Err(ApiError::csrf("send the session's CSRF token in the X-CSRF-Token header"));
        }
    }
    crate::accounts::ensure_usable(state, &user, org.as_ref().map(|(_, p)| p)).await?;
    // Once the organisation signs its people in through its provider only,
    // sessions signed in otherwise end (owners' excepted, as their sign-in is).
    let kind = crate::accounts::SessionKind::parse(&session.kind);
    let provider_only = org.as_ref().is_some_and(|(_, p)| p.provider_only_sign_in.value);
    if provider_only
        && user.role != Some(conclave_proto::OrgRole::Owner)
        && matches!(kind, crate::accounts::SessionKind::Password | crate::accounts::SessionKind::Passkey)
    {
        return Err(ApiError::unauthenticated());
    }
    // Activity is kept to the minute: most requests write nothing.
    let stale = |at: i64| now - at >= conclave_store::TOUCH_INTERVAL_MS;
    if stale(session.last_seen_at_ms) {
        state.store.touch_session(&session.id, now).await?;
    }
    if stale(user.last_active_at_ms) {
        state.store.touch_user(&user.id, now).await?;
    }
    let needs_enrollment = crate::accounts::needs_enrollment(state, &user, org.as_ref().map(|(_, p)| p), kind).await?;
    Ok(CurrentSession { session, user, org, needs_enrollment })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let header = header::HeaderValue::from_static("203.0.113.9, 198.51.100.7, 10.0.0.1");
        assert_eq!(client_ip(proxy, Some(&header), &[proxy]), "198.51.100.7".parse::<IpAddr>().unwrap());
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_ip(stranger, Some(&header), &[proxy]), stranger, "spoofed header ignored");
    }
}
