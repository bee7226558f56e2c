//! Signing in without a password: through the organisation's OpenID
//! provider, or with a passkey (WebAuthn).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// An OpenID provider an organisation's people sign in with. Its client
/// secret is never shown again after it is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct IdentityProvider {
    pub id: String,
    pub org_id: String,
    /// What the sign-in button says ("Okta", "Google Workspace").
    pub name: String,
    /// The issuer identifier; its discovery document is below it.
    pub issuer: String,
    pub client_id: String,
    /// Lower-case email domains whose people sign in through it.
    pub allowed_domains: Vec<String>,
    /// Whether a first sign-in creates the account (just in time).
    pub create_accounts: bool,
    /// The redirect URI to register at the provider for this client (each
    /// provider has its own, so an answer cannot be passed off as another's).
    pub redirect_uri: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct IdentityProviderList {
    pub providers: Vec<IdentityProvider>,
}

/// Connects an OpenID provider (its discovery document is fetched and
/// checked before anything is saved).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateIdentityProviderRequest {
    /// A short name that becomes the provider's id and part of its redirect
    /// URI (`<public URL>/api/v1/auth/oidc/<id>/callback`), known before
    /// the client is registered at the provider: 2–40 of `a-z`, `0-9`, `-`,
    /// unique on the server.
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// At least one domain, such as `acme.example`.
    pub allowed_domains: Vec<String>,
    #[serde(default = "yes")]
    pub create_accounts: bool,
}

fn yes() -> bool {
    true
}

/// Changes a provider: only the fields present change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateIdentityProviderRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_domains: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_accounts: Option<bool>,
}

/// One way to sign in through a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ProviderSignInOption {
    pub provider_id: String,
    pub name: String,
}

/// Starts a sign-in through a provider (from the app's own page: a POST
/// another site cannot make for the browser).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StartProviderSignInRequest {
    /// The address typed, passed on so the provider need not ask again.
    #[serde(default)]
    pub login_hint: Option<String>,
}

/// Where to send the browser: the provider's sign-in page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct ProviderSignInStart {
    pub url: String,
}

/// How someone with an email address may sign in: the providers of the
/// organisation that claimed its domain, and whether a password may be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct SignInOptions {
    pub providers: Vec<ProviderSignInOption>,
    /// False where the domain's organisation signs in only through its provider.
    pub password_allowed: bool,
}

/// A passkey of the signed-in account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct Passkey {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct PasskeyList {
    pub passkeys: Vec<Passkey>,
}

/// The first half of a WebAuthn ceremony: `options` go to
/// `navigator.credentials.create` or `.get` (as `{publicKey}` with its
/// binary fields base64url), and `ceremony_id` comes back with the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
pub struct PasskeyChallenge {
    pub ceremony_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub options: Value,
}

/// The authenticator's answer to a [`PasskeyChallenge`]: the credential
/// as `PublicKeyCredential.toJSON()` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PasskeyResponse {
    pub ceremony_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: Value,
}

/// Registers a new passkey: the answer to the registration challenge, and
/// a name for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterPasskeyRequest {
    pub ceremony_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: Value,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[cfg_attr(feature = "ts", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RenamePasskeyRequest {
    pub name: String,
}
