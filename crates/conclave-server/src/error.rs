//! API errors as RFC 9457 problem details. Each kind has a stable `type` URI
//! (`https://conclave.dev/problems/<code>`) and a fixed title; `detail` says
//! what went wrong this time. Internal errors are logged, never echoed.

use crate::accounts::AccountError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use conclave_proto::problem::{FieldError, Problem, ProblemCode, PROBLEM_BASE};
use conclave_store::StoreError;
use std::time::Duration;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ProblemCode,
    pub title: &'static str,
    pub detail: Option<String>,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<Duration>,
    /// The passkey challenge a second-factor problem offers.
    pub passkey: Option<conclave_proto::PasskeyChallenge>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ProblemCode, title: &'static str) -> Self {
        Self { status, code, title, detail: None, errors: Vec::new(), retry_after: None, passkey: None }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn malformed_json(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ProblemCode::MalformedJson, "The request body is not valid JSON")
            .with_detail(detail)
    }
    pub fn invalid_body(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ProblemCode::InvalidBody,
            "The request body does not match the expected shape",
        )
        .with_detail(detail)
    }
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
        Self {
            errors,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, ProblemCode::ValidationFailed, "Some fields are invalid")
        }
        .with_detail(detail)
    }
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError { field: field.to_owned(), message: message.into() }])
    }
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemCode::UnsupportedMediaType,
            "Send the body as application/json",
        )
    }
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, ProblemCode::PayloadTooLarge, "The request body is too large")
            .with_detail(format!("at most {limit} bytes are accepted"))
    }
    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ProblemCode::Unauthenticated, "Sign in to continue")
    }
    pub fn invalid_credentials() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ProblemCode::InvalidCredentials, "The email or password is wrong")
    }
    pub fn totp_required() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ProblemCode::TotpRequired,
            "Enter the code from your authenticator app or a recovery code",
        )
    }
    pub fn invalid_second_factor(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ProblemCode::InvalidSecondFactor, "The two-factor code is not valid")
            .with_detail(detail)
    }
    pub fn account_disabled(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ProblemCode::AccountDisabled, "This account is disabled").with_detail(detail)
    }
    pub fn enrollment_required() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ProblemCode::TwoFactorEnrollmentRequired,
            "Your organisation requires a second factor",
        )
        .with_detail(
            "enrol a passkey (passkeyRegistrationStart, then passkeyRegister) or, unless the organisation requires \
             phishing-resistant factors, an authenticator app (totpEnroll, then totpConfirm) before anything else",
        )
    }
    pub fn csrf(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ProblemCode::CsrfFailed, "The request did not prove it came from this site")
            .with_detail(detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ProblemCode::Forbidden, "You are not allowed to do this").with_detail(detail)
    }
    pub fn registration_closed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ProblemCode::RegistrationClosed,
            "Accounts on this server are created by invitation",
        )
    }
    pub fn invalid_invitation() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ProblemCode::InvalidInvitation,
            "The invitation is unknown, used, revoked or expired",
        )
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, ProblemCode::NotFound, "Not found").with_detail(format!("no such {what}"))
    }
    pub fn conflict(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, "The request conflicts with the current state").with_detail(detail)
    }
    pub fn throttled(retry_after: Duration) -> Self {
        let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
        Self {
            retry_after: Some(Duration::from_secs(seconds)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ProblemCode::TooManyRequests,
                "Too many attempts; wait before trying again",
            )
        }
        .with_detail(format!("retry in {seconds} s"))
    }
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, ProblemCode::MethodNotAllowed, "This method is not allowed here")
    }
    pub fn storage_refused(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ProblemCode::StorageRefused,
            "These storage settings cannot be used",
        )
        .with_detail(detail)
    }
    pub fn file_not_shareable(detail: impl Into<String>) -> Self {
        Self::conflict(ProblemCode::FileNotShareable, detail)
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ProblemCode::Internal, "Something went wrong on the server")
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, ProblemCode::Unavailable, "The server is not ready")
            .with_detail(detail)
    }

    pub fn to_problem(&self) -> Problem {
        Problem {
            kind: format!("{PROBLEM_BASE}{}", self.code.as_str()),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
            retry_after: self.retry_after.map(|d| d.as_secs()),
            passkey: self.passkey.clone(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => Self::conflict(ProblemCode::Conflict, format!("{what} already exists")),
            StoreError::NotFound(what) => Self::not_found(what),
            other => {
                tracing::error!(error = %other, "storage failure");
                Self::internal()
            }
        }
    }
}

/// The file storage's failures, as the API states them. A service that
/// fails is the server's problem to report, not the caller's.
impl From<conclave_blob::BlobError> for ApiError {
    fn from(err: conclave_blob::BlobError) -> Self {
        use conclave_blob::BlobError as B;
        match err {
            B::NotFound => Self::not_found("file part"),
            err @ (B::EndpointNotAllowed { .. } | B::BadSettings(_)) => Self::storage_refused(err.to_string()),
            B::Unavailable(why) => {
                tracing::error!(error = %why, "file storage failure");
                Self::unavailable("the file storage cannot be reached; try again shortly")
            }
        }
    }
}

impl From<crate::files::EraseError> for ApiError {
    fn from(err: crate::files::EraseError) -> Self {
        match err {
            crate::files::EraseError::Store(err) => err.into(),
            crate::files::EraseError::Blob(err) => err.into(),
        }
    }
}

impl From<crate::conversations::segments::SegmentError> for ApiError {
    fn from(err: crate::conversations::segments::SegmentError) -> Self {
        use crate::conversations::segments::SegmentError as E;
        match err {
            E::Store(err) => err.into(),
            // A segment gone is not the caller's missing file part.
            E::Blob(conclave_blob::BlobError::NotFound) | E::Corrupt(_) => {
                tracing::error!(error = %err, "a message segment is missing or unreadable");
                Self::internal()
            }
            E::Blob(err) => err.into(),
        }
    }
}

/// A conversation's refusals, as the API states them.
impl From<crate::conversations::ConversationError> for ApiError {
    fn from(err: crate::conversations::ConversationError) -> Self {
        use crate::conversations::ConversationError as E;
        use conclave_conversation::Refusal as R;
        let detail = err.to_string();
        match err {
            // Whoever is not a member is not told the conversation exists.
            E::NotFound | E::Refused(R::NotMember) => Self::not_found("conversation"),
            E::Invalid { field, message } => Self::field(field, message),
            E::Contended => Self::unavailable(detail),
            E::Store(err) => err.into(),
            E::Refused(refusal) => match refusal {
                R::NotMember => unreachable!("matched above"),
                R::AlreadyMember => Self::conflict(ProblemCode::Conflict, detail),
                R::NotAllowed | R::NotAuthor => Self::forbidden(detail),
                R::Locked => Self::new(StatusCode::FORBIDDEN, ProblemCode::ConversationLocked, "Membership is locked")
                    .with_detail(detail),
                R::Archived => Self::conflict(ProblemCode::ConversationArchived, detail),
                R::UnknownDevice => Self::conflict(ProblemCode::DeviceNotInGroup, detail),
                R::EpochMismatch => Self::conflict(ProblemCode::StaleEpoch, detail),
                R::BadReference => Self::field("reference", detail),
                R::TooLate => Self::new(StatusCode::FORBIDDEN, ProblemCode::TooLate, "Too late").with_detail(detail),
                R::LastOwner => Self::conflict(ProblemCode::LastOwner, detail),
                R::TooManyWaiting => Self::throttled(std::time::Duration::from_secs(30)).with_detail(detail),
                R::Malformed => Self::invalid_body(detail),
                R::Group(_) => Self::conflict(ProblemCode::GroupRefused, detail),
            },
        }
    }
}

/// The account flows' refusals, as the API states them.
impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::Invalid(errors) => Self::validation(errors),
            AccountError::InvalidCredentials => Self::invalid_credentials(),
            AccountError::WrongPassword => Self::invalid_credentials().with_detail("the password is wrong"),
            AccountError::SecondFactorRequired(passkey) => Self { passkey, ..Self::totp_required() },
            err @ AccountError::PasskeyRequired(_) => {
                let AccountError::PasskeyRequired(challenge) = &err else { unreachable!() };
                Self {
                    passkey: Some(challenge.clone()),
                    ..Self::new(StatusCode::UNAUTHORIZED, ProblemCode::PasskeyRequired, "Use your passkey")
                }
                .with_detail(err.to_string())
            }
            AccountError::InvalidPasskey(why) => {
                Self::new(StatusCode::UNAUTHORIZED, ProblemCode::InvalidPasskey, "The passkey did not sign in")
                    .with_detail(why)
            }
            err @ AccountError::ProviderSignInRequired => Self::new(
                StatusCode::FORBIDDEN,
                ProblemCode::ProviderSignInRequired,
                "Sign in through your organisation's identity provider",
            )
            .with_detail(err.to_string()),
            AccountError::InvalidSecondFactor(why) => Self::invalid_second_factor(why),
            AccountError::Throttled(wait) => Self::throttled(wait),
            err @ AccountError::Disabled(_) => Self::account_disabled(err.to_string()),
            err @ AccountError::AccountExists => Self::conflict(ProblemCode::AccountExists, err.to_string()),
            err @ AccountError::CorruptSecret => {
                tracing::error!(error = %err, "an account's stored secret is unreadable");
                Self::internal()
            }
            AccountError::Store(err) => err.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(retry) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry.as_secs()));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
