//! RFC 9457 problem details. `type` is a stable URI per kind of error that
//! clients may match on; `title` is its fixed human summary and `detail` says
//! what went wrong this time.

use serde::{Deserialize, Serialize};

use crate::string_enum::string_enum;

/// Prefix of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://conclave.dev/problems/";

string_enum! {
    /// The code at the end of a problem's `type` URI (`PROBLEM_BASE` + code),
    /// which clients match on. Codes are kebab-case: lowercase words joined
    /// by `-` (`invalid-credentials`, `too-many-requests`). A code, once
    /// sent, keeps its meaning; a new kind of error gets a new code.
    pub enum ProblemCode {
        /// 400: the body is not JSON.
        MalformedJson = "malformed-json",
        /// 422: the body is JSON of the wrong shape (a missing, mistyped or unknown field).
        InvalidBody = "invalid-body",
        /// 422: the fields named in `errors` are invalid.
        ValidationFailed = "validation-failed",
        /// 415: the body is not `application/json`.
        UnsupportedMediaType = "unsupported-media-type",
        /// 413: the body is larger than the server accepts.
        PayloadTooLarge = "payload-too-large",
        /// 401: no valid session or access token.
        Unauthenticated = "unauthenticated",
        /// 401: the email or password is wrong (the two are never told apart).
        InvalidCredentials = "invalid-credentials",
        /// 401: the account has two-factor authentication: send a TOTP or recovery code.
        TotpRequired = "totp-required",
        /// 401: the TOTP or recovery code is wrong or already used.
        InvalidSecondFactor = "invalid-second-factor",
        /// 403: the account is deactivated or dormant.
        AccountDisabled = "account-disabled",
        /// 403: the organisation requires two-factor authentication; enrol first.
        TwoFactorEnrollmentRequired = "two-factor-enrollment-required",
        /// 403: a cookie-authenticated write without the CSRF token, or from another origin.
        CsrfFailed = "csrf-failed",
        /// 403: the caller's role does not allow this.
        Forbidden = "forbidden",
        /// 403: accounts are created by invitation only.
        RegistrationClosed = "registration-closed",
        /// 400: the invitation is unknown, used, revoked or expired.
        InvalidInvitation = "invalid-invitation",
        /// 404: no such resource (or one the caller may not know of).
        NotFound = "not-found",
        /// 429: throttled; `retry_after` says when to try again.
        TooManyRequests = "too-many-requests",
        /// 405: the path does not take this method.
        MethodNotAllowed = "method-not-allowed",
        /// 500: something failed on the server (logged there, never described).
        Internal = "internal",
        /// 503: the server is not ready (or a service it needs is not).
        Unavailable = "unavailable",
        /// 409: the request conflicts with what exists.
        Conflict = "conflict",
        /// 409: an account with this email exists.
        AccountExists = "account-exists",
        /// 409: the account revoked this key's device; register a new key.
        DeviceRevoked = "device-revoked",
        /// 409: the account already belongs to an organisation.
        AlreadyInOrg = "already-in-org",
        /// 404: no meeting with this link, or this code and passcode.
        MeetingNotFound = "meeting-not-found",
        /// 409: confirming two-factor authentication before enrolling.
        NoEnrollment = "no-enrollment",
        /// 409: two-factor authentication is off.
        TotpNotEnabled = "totp-not-enabled",
        /// 409: two-factor authentication is already on.
        TotpAlreadyEnabled = "totp-already-enabled",
        /// 401: the join ticket or resume token is unknown, used or expired.
        InvalidTicket = "invalid-ticket",
        /// 400: the signaling connection asked for a protocol version the server does not speak.
        UnsupportedProtocolVersion = "unsupported-protocol-version",
        /// 400: the signaling endpoint was not asked for a WebSocket upgrade.
        WebsocketRequired = "websocket-required",
        /// 403: the channel's membership is locked; its admins add people.
        ConversationLocked = "conversation-locked",
        /// 409: the conversation is archived; unarchive it first.
        ConversationArchived = "conversation-archived",
        /// 409: the message was encrypted in an epoch the group has left, or
        /// while a removal waits for its commit: encrypt it again after the commit.
        StaleEpoch = "stale-epoch",
        /// 409: the device is not in the conversation's group yet (send its KeyPackage and wait for the Welcome).
        DeviceNotInGroup = "device-not-in-group",
        /// 409: the MLS commit or KeyPackage was refused (`detail` says why).
        GroupRefused = "group-refused",
        /// 403: the time the policy allows for editing or deleting has passed.
        TooLate = "too-late",
        /// 409: the last owner hands over ownership before stepping down.
        LastOwner = "last-owner",
        /// Larger than the organisation allows.
        FileTooLarge = "file-too-large",
        /// Parts of the file are still missing.
        UploadIncomplete = "upload-incomplete",
        /// The file is not the sender's completed upload to this
        /// conversation, or another message shares it already.
        FileNotShareable = "file-not-shareable",
        /// The storage settings cannot be used.
        StorageRefused = "storage-refused",
        /// 403: the organisation signs its members in only through its identity provider.
        ProviderSignInRequired = "provider-sign-in-required",
        /// 401: the organisation requires a passkey (not an authenticator app's code) after the password; `passkey` carries the challenge.
        PasskeyRequired = "passkey-required",
        /// 401: the passkey's answer does not hold (unknown passkey, wrong challenge, origin or signature).
        InvalidPasskey = "invalid-passkey",
        /// 502: the identity provider could not be reached or answered something unusable.
        ProviderUnavailable = "provider-unavailable",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct Problem {
    /// `PROBLEM_BASE` followed by a `ProblemCode`'s text.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Per-field validation messages, for 422 responses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Seconds until a throttled request may be retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// With `totp-required` (when the account has passkeys) and with
    /// `passkey-required`: the challenge one of its passkeys may answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey: Option<crate::identity::PasskeyChallenge>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl Problem {
    /// The short code at the end of the `type` URI (`invalid-credentials`).
    pub fn code(&self) -> &str {
        self.kind.strip_prefix(PROBLEM_BASE).unwrap_or(&self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::string_enum::testing::{check, words_joined_by};

    #[test]
    fn problem_codes_are_kebab_case_and_round_trip() {
        check::<ProblemCode>("kebab-case", |code| words_joined_by(code, '-'));
    }

    #[test]
    fn a_problem_names_its_code() {
        let problem = Problem {
            kind: format!("{PROBLEM_BASE}{}", ProblemCode::TotpRequired),
            title: "Enter the code".into(),
            status: 401,
            detail: None,
            errors: Vec::new(),
            retry_after: None,
            passkey: None,
        };
        assert_eq!(problem.code(), "totp-required");
        assert_eq!(ProblemCode::parse(problem.code()), Some(ProblemCode::TotpRequired));
    }
}
