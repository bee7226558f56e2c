//! A Rust client for the Conclave REST API: one method per `operationId`,
//! errors as the server's problem details. Used by `conclave` tooling, bots,
//! tests and load tests.

pub mod chat;
mod conversations;
pub mod files;
pub mod media;
pub mod signaling;

pub use conversations::{DeviceLive, LiveSender};
pub use signaling::{MeetingConnection, SignalError};

use conclave_proto::*;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a problem document.
    #[error("{} ({}): {}", .0.title, .0.status, .0.detail.as_deref().unwrap_or(""))]
    Api(Problem),
    /// Said in full here and not as a source, so a chain of causes does not
    /// print it twice.
    #[error("request failed: {}", with_causes(.0))]
    Transport(reqwest::Error),
    #[error("unexpected response {status}: {body}")]
    Unexpected { status: u16, body: String },
}

/// An error and every cause under it, as one line: `a: b: c`.
pub(crate) fn with_causes(err: &dyn std::error::Error) -> String {
    let mut said = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        said.push_str(&format!(": {next}"));
        cause = next.source();
    }
    said
}

impl From<reqwest::Error> for ClientError {
    fn from(err: reqwest::Error) -> Self {
        Self::Transport(err)
    }
}

impl ClientError {
    /// The problem's short code (`invalid-credentials`), if the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api(p) => Some(p.code()),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(p) => Some(p.status),
            Self::Unexpected { status, .. } => Some(*status),
            Self::Transport(e) => e.status().map(|s| s.as_u16()),
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// Joining fails either at the REST call or at the WebSocket.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Api(#[from] ClientError),
    #[error(transparent)]
    Signal(#[from] SignalError),
}

#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: &str) -> Self {
        Self::with_local_address(base_url, None)
    }

    /// A client whose connections leave from `local` (useful on loopback to
    /// appear as many source addresses).
    pub fn with_local_address(base_url: &str, local: Option<IpAddr>) -> Self {
        let http = reqwest::Client::builder()
            .local_address(local)
            .user_agent(concat!("conclave-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds with static settings");
        Self { http, base: base_url.trim_end_matches('/').to_owned(), token: None }
    }

    /// The same client, authenticated with a session or access token.
    pub fn authenticated(&self, token: impl Into<String>) -> Self {
        Self { token: Some(token.into()), ..self.clone() }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::finish(request).await
    }

    /// Sends a request; anything but success becomes the problem the
    /// server stated.
    async fn finish(request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request.send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().await?;
        Err(match serde_json::from_str::<Problem>(&body) {
            Ok(problem) => ClientError::Api(problem),
            Err(_) => ClientError::Unexpected { status, body },
        })
    }

    async fn json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        Ok(self.send(method, path, body).await?.json().await?)
    }

    async fn empty<B: Serialize + ?Sized>(&self, method: Method, path: &str, body: Option<&B>) -> Result<()> {
        self.send(method, path, body).await.map(drop)
    }

    // Password reset by email.

    pub async fn request_password_reset(&self, email: &str) -> Result<()> {
        let req = PasswordResetRequest { email: email.to_owned() };
        self.empty(Method::POST, "/api/v1/auth/password-reset", Some(&req)).await
    }
    pub async fn confirm_password_reset(&self, token: &str, new_password: &str) -> Result<()> {
        let req = PasswordResetConfirm { token: token.to_owned(), new_password: new_password.to_owned() };
        self.empty(Method::POST, "/api/v1/auth/password-reset/confirm", Some(&req)).await
    }

    // Web Push.

    pub async fn push_key(&self) -> Result<conclave_proto::device::PushKey> {
        self.json::<_, ()>(Method::GET, "/api/v1/push/key", None).await
    }
    pub async fn subscribe_push(&self, device_id: &str, endpoint: &str) -> Result<()> {
        let req = conclave_proto::device::PushSubscriptionRequest { endpoint: endpoint.to_owned() };
        self.empty(Method::PUT, &format!("/api/v1/me/devices/{device_id}/push"), Some(&req)).await
    }
    pub async fn unsubscribe_push(&self, device_id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/me/devices/{device_id}/push"), None).await
    }

    // Signing in without a password.

    /// How an address may sign in: its organisation's identity providers.
    pub async fn sign_in_options(&self, email: &str) -> Result<conclave_proto::SignInOptions> {
        let request = self.request(Method::GET, "/api/v1/auth/sign-in-options").query(&[("email", email)]);
        Ok(Self::finish(request).await?.json().await?)
    }
    pub async fn passkeys(&self) -> Result<conclave_proto::PasskeyList> {
        self.json::<_, ()>(Method::GET, "/api/v1/me/passkeys", None).await
    }
    /// Options for `navigator.credentials.create` (or a software authenticator).
    pub async fn passkey_registration_challenge(&self) -> Result<conclave_proto::PasskeyChallenge> {
        self.json::<_, ()>(Method::POST, "/api/v1/me/passkeys/challenge", None).await
    }
    pub async fn register_passkey(
        &self,
        req: &conclave_proto::RegisterPasskeyRequest,
    ) -> Result<conclave_proto::Passkey> {
        self.json(Method::POST, "/api/v1/me/passkeys", Some(req)).await
    }
    pub async fn rename_passkey(&self, passkey_id: &str, name: &str) -> Result<()> {
        let req = conclave_proto::RenamePasskeyRequest { name: name.to_owned() };
        self.empty(Method::PATCH, &format!("/api/v1/me/passkeys/{passkey_id}"), Some(&req)).await
    }
    pub async fn remove_passkey(&self, passkey_id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/me/passkeys/{passkey_id}"), None).await
    }
    /// Options for `navigator.credentials.get`, to sign in with a passkey alone.
    pub async fn passkey_sign_in_challenge(&self) -> Result<conclave_proto::PasskeyChallenge> {
        self.json::<_, ()>(Method::POST, "/api/v1/auth/passkey/challenge", None).await
    }
    pub async fn passkey_sign_in(&self, answer: &conclave_proto::PasskeyResponse) -> Result<LoginResponse> {
        self.json(Method::POST, "/api/v1/auth/passkey", Some(answer)).await
    }

    // Accounts and sessions.

    /// Whether the server still waits for its first organisation.
    pub async fn setup_status(&self) -> Result<SetupStatus> {
        self.json::<_, ()>(Method::GET, "/api/v1/setup", None).await
    }
    /// First run: the first organisation and its owner, signed in.
    pub async fn bootstrap(&self, req: &SetupRequest) -> Result<LoginResponse> {
        self.json(Method::POST, "/api/v1/setup", Some(req)).await
    }
    pub async fn signup(&self, req: &SignupRequest) -> Result<LoginResponse> {
        self.json(Method::POST, "/api/v1/auth/signup", Some(req)).await
    }
    pub async fn login(&self, req: &LoginRequest) -> Result<LoginResponse> {
        self.json(Method::POST, "/api/v1/auth/login", Some(req)).await
    }
    pub async fn logout(&self) -> Result<()> {
        self.empty::<()>(Method::POST, "/api/v1/auth/logout", None).await
    }
    pub async fn me(&self) -> Result<MeResponse> {
        self.json::<_, ()>(Method::GET, "/api/v1/me", None).await
    }
    pub async fn change_password(&self, req: &ChangePasswordRequest) -> Result<()> {
        self.empty(Method::POST, "/api/v1/me/password", Some(req)).await
    }
    pub async fn totp_enroll(&self) -> Result<TotpEnrollResponse> {
        self.json::<_, ()>(Method::POST, "/api/v1/me/totp/enroll", None).await
    }
    pub async fn totp_confirm(&self, code: &str) -> Result<RecoveryCodesResponse> {
        self.json(Method::POST, "/api/v1/me/totp/confirm", Some(&TotpConfirmRequest { code: code.to_owned() })).await
    }
    pub async fn totp_disable(&self, password: &str) -> Result<()> {
        self.empty(Method::DELETE, "/api/v1/me/totp", Some(&PasswordConfirmation { password: password.to_owned() }))
            .await
    }
    pub async fn regenerate_recovery_codes(&self, password: &str) -> Result<RecoveryCodesResponse> {
        self.json(
            Method::POST,
            "/api/v1/me/recovery-codes",
            Some(&PasswordConfirmation { password: password.to_owned() }),
        )
        .await
    }
    pub async fn list_sessions(&self) -> Result<SessionList> {
        self.json::<_, ()>(Method::GET, "/api/v1/me/sessions", None).await
    }
    pub async fn revoke_session(&self, session_id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/me/sessions/{session_id}"), None).await
    }
    pub async fn create_access_token(&self, req: &CreateAccessTokenRequest) -> Result<AccessTokenCreated> {
        self.json(Method::POST, "/api/v1/me/tokens", Some(req)).await
    }

    // Organisations.

    pub async fn create_org(&self, name: &str) -> Result<Org> {
        self.json(Method::POST, "/api/v1/orgs", Some(&CreateOrgRequest { name: name.to_owned() })).await
    }
    pub async fn get_org(&self, org_id: &str) -> Result<Org> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/orgs/{org_id}"), None).await
    }
    pub async fn list_members(&self, org_id: &str) -> Result<MemberList> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/orgs/{org_id}/members"), None).await
    }
    pub async fn update_member(&self, org_id: &str, user_id: &str, role: OrgRole) -> Result<User> {
        self.json(
            Method::PATCH,
            &format!("/api/v1/orgs/{org_id}/members/{user_id}"),
            Some(&UpdateMemberRequest { role }),
        )
        .await
    }
    pub async fn deactivate_member(&self, org_id: &str, user_id: &str) -> Result<User> {
        self.json::<_, ()>(Method::POST, &format!("/api/v1/orgs/{org_id}/members/{user_id}/deactivate"), None).await
    }
    /// The organisation's SCIM base URL, and whether it has a token.
    pub async fn scim_status(&self, org_id: &str) -> Result<ScimStatus> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/orgs/{org_id}/scim"), None).await
    }
    /// A new SCIM token for the organisation's identity provider (replacing any).
    pub async fn create_scim_token(&self, org_id: &str) -> Result<ScimTokenCreated> {
        self.json::<_, ()>(Method::POST, &format!("/api/v1/orgs/{org_id}/scim/token"), None).await
    }
    /// The organisation's OpenID providers.
    pub async fn identity_providers(&self, org_id: &str) -> Result<conclave_proto::IdentityProviderList> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/orgs/{org_id}/identity-providers"), None).await
    }
    pub async fn add_identity_provider(
        &self,
        org_id: &str,
        req: &conclave_proto::CreateIdentityProviderRequest,
    ) -> Result<conclave_proto::IdentityProvider> {
        self.json(Method::POST, &format!("/api/v1/orgs/{org_id}/identity-providers"), Some(req)).await
    }
    pub async fn update_identity_provider(
        &self,
        org_id: &str,
        provider_id: &str,
        req: &conclave_proto::UpdateIdentityProviderRequest,
    ) -> Result<conclave_proto::IdentityProvider> {
        self.json(Method::PATCH, &format!("/api/v1/orgs/{org_id}/identity-providers/{provider_id}"), Some(req)).await
    }
    pub async fn remove_identity_provider(&self, org_id: &str, provider_id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/orgs/{org_id}/identity-providers/{provider_id}"), None).await
    }
    /// The public sources watched for the organisation's meetings.
    pub async fn watch_sources(&self, org_id: &str) -> Result<WatchSourceList> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/orgs/{org_id}/watch-sources"), None).await
    }
    pub async fn add_watch_source(&self, org_id: &str, req: &AddWatchSourceRequest) -> Result<WatchSource> {
        self.json(Method::POST, &format!("/api/v1/orgs/{org_id}/watch-sources"), Some(req)).await
    }
    pub async fn remove_watch_source(&self, org_id: &str, source_id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/orgs/{org_id}/watch-sources/{source_id}"), None).await
    }
    /// Warnings about the caller's meetings found in public posts.
    pub async fn risk_warnings(&self) -> Result<RiskWarningList> {
        self.json::<_, ()>(Method::GET, "/api/v1/me/risk-warnings", None).await
    }
    /// What a warning email's link does: rotates the meeting's secrets, once.
    pub async fn rotate_from_warning(&self, token: &str) -> Result<RotatedFromWarning> {
        let req = RotateFromWarningRequest { token: token.to_owned() };
        self.json(Method::POST, "/api/v1/risk-warnings/rotate", Some(&req)).await
    }
    /// The identity provider's groups and what each means here.
    pub async fn list_scim_groups(&self, org_id: &str) -> Result<ScimGroupList> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/orgs/{org_id}/scim/groups"), None).await
    }
    pub async fn map_scim_group(
        &self,
        org_id: &str,
        group_id: &str,
        req: &MapScimGroupRequest,
    ) -> Result<ScimGroupMapping> {
        self.json(Method::PUT, &format!("/api/v1/orgs/{org_id}/scim/groups/{group_id}"), Some(req)).await
    }
    pub async fn revoke_scim_token(&self, org_id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/orgs/{org_id}/scim/token"), None).await
    }
    pub async fn reactivate_member(&self, org_id: &str, user_id: &str) -> Result<User> {
        self.json::<_, ()>(Method::POST, &format!("/api/v1/orgs/{org_id}/members/{user_id}/reactivate"), None).await
    }
    pub async fn invite_member(&self, org_id: &str, req: &InviteMemberRequest) -> Result<InvitationCreated> {
        self.json(Method::POST, &format!("/api/v1/orgs/{org_id}/invitations"), Some(req)).await
    }
    pub async fn list_invitations(&self, org_id: &str) -> Result<InvitationList> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/orgs/{org_id}/invitations"), None).await
    }
    pub async fn revoke_invitation(&self, org_id: &str, invitation_id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/orgs/{org_id}/invitations/{invitation_id}"), None).await
    }
    pub async fn get_org_policy(&self, org_id: &str) -> Result<OrgPolicy> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/orgs/{org_id}/policy"), None).await
    }
    pub async fn update_org_policy(&self, org_id: &str, update: &OrgPolicyUpdate) -> Result<OrgPolicy> {
        self.json(Method::PATCH, &format!("/api/v1/orgs/{org_id}/policy"), Some(update)).await
    }
    // Meetings.

    pub async fn create_meeting(&self, req: &CreateMeetingRequest) -> Result<Meeting> {
        self.json(Method::POST, "/api/v1/meetings", Some(req)).await
    }
    pub async fn list_meetings(&self, org_scope: bool) -> Result<MeetingList> {
        let path = if org_scope { "/api/v1/meetings?scope=org" } else { "/api/v1/meetings" };
        self.json::<_, ()>(Method::GET, path, None).await
    }
    pub async fn get_meeting(&self, meeting_id: &str) -> Result<Meeting> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/meetings/{meeting_id}"), None).await
    }
    pub async fn update_meeting(&self, meeting_id: &str, req: &UpdateMeetingRequest) -> Result<Meeting> {
        self.json(Method::PATCH, &format!("/api/v1/meetings/{meeting_id}"), Some(req)).await
    }
    pub async fn delete_meeting(&self, meeting_id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/meetings/{meeting_id}"), None).await
    }
    pub async fn rotate_meeting_secrets(&self, meeting_id: &str) -> Result<Meeting> {
        self.json::<_, ()>(Method::POST, &format!("/api/v1/meetings/{meeting_id}/rotate"), None).await
    }
    /// Which meeting an invite link opens (title, host), before joining it.
    pub async fn preview_meeting(&self, link_secret: &str) -> Result<MeetingPreview> {
        let req = MeetingPreviewRequest { link_secret: link_secret.to_owned() };
        self.json(Method::POST, "/api/v1/meetings/preview", Some(&req)).await
    }
    pub async fn join_meeting(&self, req: &JoinMeetingRequest) -> Result<JoinTicket> {
        self.json(Method::POST, "/api/v1/meetings/join", Some(req)).await
    }
    pub async fn report_participant(&self, meeting_id: &str, req: &ReportParticipantRequest) -> Result<ReportReceipt> {
        self.json(Method::POST, &format!("/api/v1/meetings/{meeting_id}/reports"), Some(req)).await
    }

    pub async fn list_devices(&self) -> Result<DeviceList> {
        self.json::<_, ()>(Method::GET, "/api/v1/me/devices", None).await
    }

    pub async fn register_device(&self, req: &RegisterDeviceRequest) -> Result<DeviceRegistration> {
        self.json(Method::POST, "/api/v1/me/devices", Some(req)).await
    }

    pub async fn revoke_device(&self, device_id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/me/devices/{device_id}"), None).await
    }

    pub async fn list_meeting_bans(&self, meeting_id: &str) -> Result<MeetingBanList> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/meetings/{meeting_id}/bans"), None).await
    }

    pub async fn lift_meeting_ban(&self, meeting_id: &str, ban_id: &str) -> Result<()> {
        self.empty::<()>(Method::DELETE, &format!("/api/v1/meetings/{meeting_id}/bans/{ban_id}"), None).await
    }
    pub async fn list_reports(&self, org_id: &str) -> Result<ReportList> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/orgs/{org_id}/reports"), None).await
    }

    /// The organisation's meetings with call-quality samples (admins).
    pub async fn quality_summaries(&self, org_id: &str) -> Result<conclave_proto::quality::QualitySummaryList> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/orgs/{org_id}/quality"), None).await
    }

    /// One meeting's call-quality samples, per participant (admins).
    pub async fn meeting_quality(
        &self,
        org_id: &str,
        meeting_id: &str,
    ) -> Result<conclave_proto::quality::MeetingQuality> {
        self.json::<_, ()>(Method::GET, &format!("/api/v1/orgs/{org_id}/meetings/{meeting_id}/quality"), None).await
    }

    /// Joins by invite link secret and opens the signaling connection.
    pub async fn join_by_link(
        &self,
        link_secret: &str,
        display_name: &str,
    ) -> std::result::Result<MeetingConnection, JoinError> {
        let ticket = self
            .join_meeting(&JoinMeetingRequest {
                link_secret: Some(link_secret.to_owned()),
                code: None,
                passcode: None,
                display_name: display_name.to_owned(),
            })
            .await?;
        Ok(MeetingConnection::connect(&ticket.signaling_url).await?)
    }

    pub async fn list_audit_events(
        &self,
        org_id: &str,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> Result<AuditEventPage> {
        let mut query = Vec::new();
        if let Some(b) = before {
            query.push(format!("before={b}"));
        }
        if let Some(l) = limit {
            query.push(format!("limit={l}"));
        }
        let path = format!("/api/v1/orgs/{org_id}/audit{}{}", if query.is_empty() { "" } else { "?" }, query.join("&"));
        self.json::<_, ()>(Method::GET, &path, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed request says why once, down to the cause, whether printed
    /// alone or as a chain of causes (`{:#}` in the CLI).
    #[tokio::test]
    async fn a_transport_error_says_its_cause_once() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err: ClientError = reqwest::get(format!("http://127.0.0.1:{port}/")).await.unwrap_err().into();
        let said = err.to_string();
        assert!(said.starts_with("request failed: error sending request"), "{said}");
        assert_eq!(said.matches("error sending request").count(), 1, "{said}");
        assert!(said.to_lowercase().contains("connection refused"), "the cause: {said}");
        assert!(std::error::Error::source(&err).is_none(), "not said again as a source");
    }
}
