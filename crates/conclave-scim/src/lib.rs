//! SCIM 2.0 (RFC 7643, RFC 7644) as pure logic, for provisioning by an
//! organisation's identity provider: [`Filter`] parses and judges list
//! filters, [`patch`] applies PATCH operations to a resource's JSON,
//! [`discovery`] writes the documents a client reads first, and
//! [`ScimError`] is every way a request can be wrong, with the `scimType`
//! and status RFC 7644 §3.12 gives it.
//!
//! The server owns the resources: it renders its records as SCIM JSON,
//! lets this crate change or judge that JSON, and reads the result back
//! with its own validation.

pub mod discovery;
pub mod filter;
pub mod patch;
pub mod path;
pub mod projection;

pub use filter::Filter;
pub use path::{AttrPath, PatchPath};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The media type of every SCIM body.
pub const CONTENT_TYPE: &str = "application/scim+json";
/// The most resources one page of a list holds.
pub const MAX_PAGE: usize = 200;

/// What is wrong with a request, as RFC 7644 §3.12 names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScimError {
    #[error("{0}")]
    InvalidFilter(String),
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}")]
    InvalidSyntax(String),
    #[error("{0}")]
    InvalidValue(String),
    #[error("{0}")]
    NoTarget(String),
    #[error("{0}")]
    Uniqueness(String),
    #[error("{0}")]
    Mutability(String),
    #[error("{0}")]
    TooMany(String),
    #[error("{0}")]
    NotFound(String),
    /// The resource changed since the version the request names (`If-Match`).
    #[error("{0}")]
    PreconditionFailed(String),
}

impl ScimError {
    /// The `scimType` of the error response, where RFC 7644 gives one.
    pub fn scim_type(&self) -> Option<&'static str> {
        Some(match self {
            Self::InvalidFilter(_) => "invalidFilter",
            Self::InvalidPath(_) => "invalidPath",
            Self::InvalidSyntax(_) => "invalidSyntax",
            Self::InvalidValue(_) => "invalidValue",
            Self::NoTarget(_) => "noTarget",
            Self::Uniqueness(_) => "uniqueness",
            Self::Mutability(_) => "mutability",
            Self::TooMany(_) => "tooMany",
            Self::NotFound(_) | Self::PreconditionFailed(_) => return None,
        })
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::Uniqueness(_) => 409,
            Self::PreconditionFailed(_) => 412,
            _ => 400,
        }
    }

    /// The error response body.
    pub fn body(&self) -> serde_json::Value {
        error_body(self.status(), self.scim_type(), &self.to_string())
    }
}

/// An RFC 7644 §3.12 error body.
pub fn error_body(status: u16, scim_type: Option<&str>, detail: &str) -> serde_json::Value {
    let mut body = serde_json::json!({"schemas": [ERROR_SCHEMA], "status": status.to_string(), "detail": detail});
    if let Some(t) = scim_type {
        body["scimType"] = serde_json::Value::String(t.to_owned());
    }
    body
}

/// One page of a list: `startIndex` is 1-based, as the client asked.
pub fn list_body(total: usize, start_index: usize, resources: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// `startIndex` and `count` from a query, clamped as RFC 7644 §3.4.2.4
/// says (below 1 means 1; a negative count means 0), `count` at most
/// [`MAX_PAGE`].
pub fn page(start_index: Option<i64>, count: Option<i64>) -> (usize, usize) {
    let start = start_index.unwrap_or(1).max(1) as usize;
    let count = count.unwrap_or(MAX_PAGE as i64).clamp(0, MAX_PAGE as i64) as usize;
    (start, count)
}
