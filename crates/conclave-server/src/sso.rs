//! Signing in through an organisation's OpenID provider (OpenID Connect
//! authorization code flow with PKCE), the relying party's half: discovery,
//! the request sent to the provider, and the answer's checks — the code
//! exchanged once with its PKCE verifier, the ID token's signature against
//! the provider's published keys (fetched again once when a token names a
//! key the server has not seen, which is how providers rotate), its issuer,
//! audience, expiry and nonce. What the verified identity may then do
//! (which account, whether one is made) is `provider_accounts.rs`.
//!
//! A sign-in under way is kept in the database (any node may finish it),
//! single use, ten minutes at most, and bound to the browser that started
//! it by a cookie: an answer carried to another browser (login CSRF, or a
//! victim signed in to an attacker's account) finds no sign-in to finish.

use crate::state::SharedState;
use conclave_auth::{OpaqueToken, TokenHash};
use conclave_store::{IdentityProviderRow, ProviderSignIn};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IdToken,
    IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a provider has to send the person back.
pub const SIGN_IN_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// How long a provider's discovery document and keys are trusted before
/// they are fetched again (a token naming an unknown key fetches at once).
const METADATA_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// The cookie binding a sign-in to the browser that started it.
pub const BROWSER_COOKIE: &str = "conclave_sso";
/// Below the public URL, where the browser comes back from provider `{id}`:
/// each provider has its own, so an answer from one is never taken to
/// another's token endpoint (the mix-up attack).
pub const CALLBACK_PATH: &str = "/api/v1/auth/oidc/{id}/callback";
/// The most groups a token may bring, and the longest group name, kept.
const MAX_GROUPS: usize = 1000;
const MAX_GROUP_NAME: usize = 256;

/// Why a sign-in through a provider did not go through.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("the identity provider cannot be reached or answered something unusable: {0}")]
    Unreachable(String),
    #[error("the identity provider refused: {0}")]
    ProviderRefused(String),
    #[error("the ID token does not hold: {0}")]
    InvalidToken(String),
    #[error("this sign-in is unknown, used, expired or was started in another browser")]
    UnknownSignIn,
    #[error("the provider's client secret does not open (was the secrets key replaced?)")]
    Secret,
    #[error(transparent)]
    Store(#[from] conclave_store::StoreError),
}

impl SsoError {
    /// The short code the app shows a message for.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "provider-unavailable",
            Self::ProviderRefused(_) => "provider-refused",
            Self::InvalidToken(_) => "invalid-token",
            Self::UnknownSignIn => "sign-in-expired",
            Self::Secret | Self::Store(_) => "internal",
        }
    }
}

/// What the provider vouched for, once every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// Present when the token carried a `groups` claim (even empty).
    pub groups: Option<Vec<String>>,
}

/// The claims beyond the standard ones Conclave reads: `groups`, as
/// Okta, Entra ID and Keycloak send them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct GroupClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<serde_json::Value>>,
}
impl AdditionalClaims for GroupClaims {}

type GroupIdToken = IdToken<GroupClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// The largest answer read from a provider (a discovery document, its
/// keys, a token response): far above any real one, far below harm.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Why a request to a provider did not get an answer to read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Refused(#[from] crate::outbound::OutboundError),
    #[error("the request failed: {0}")]
    Failed(String),
    #[error("the answer is larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
}

/// How the relying party reaches providers: every address it is given (the
/// issuer, and whatever endpoints its discovery document names) under the
/// rules for sending where someone else says (`outbound.rs`: public HTTPS
/// hosts, resolved, checked and pinned), no redirects (a provider endpoint
/// that redirects is misconfigured), answers read up to a bound.
struct ProviderHttp {
    allow_local: bool,
}

impl<'c> openidconnect::AsyncHttpClient<'c> for ProviderHttp {
    type Error = FetchError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, FetchError>> + Send + 'c>,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(self.fetch(request))
    }
}

impl ProviderHttp {
    async fn fetch(&self, request: openidconnect::HttpRequest) -> Result<openidconnect::HttpResponse, FetchError> {
        let url = request.uri().to_string();
        let pinned = crate::outbound::pinned_address(&url, self.allow_local).await?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5));
        if let Some((name, address)) = pinned {
            builder = builder.resolve(&name, address);
        }
        let client = builder.build().map_err(|e| FetchError::Failed(e.to_string()))?;
        let (parts, body) = request.into_parts();
        let mut response = client
            .request(parts.method, &url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| FetchError::Failed(e.to_string()))?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Failed(e.to_string()))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let mut answer = openidconnect::HttpResponse::new(body);
        *answer.status_mut() = response.status();
        *answer.headers_mut() = response.headers().clone();
        Ok(answer)
    }
}

/// The relying party: how it reaches providers, and their metadata, cached.
pub struct RelyingParty {
    http: ProviderHttp,
    metadata: Mutex<HashMap<String, (CoreProviderMetadata, Instant)>>,
}

impl RelyingParty {
    /// `allow_local`: providers inside the server's own network (and over
    /// plain http) may be used — for tests and closed networks.
    pub fn new(allow_local: bool) -> Self {
        Self { http: ProviderHttp { allow_local }, metadata: Mutex::new(HashMap::new()) }
    }

    /// Fetches and checks a provider's discovery document and keys.
    pub async fn discover(&self, issuer: &str) -> Result<CoreProviderMetadata, SsoError> {
        let issuer = IssuerUrl::new(issuer.to_owned()).map_err(|e| SsoError::Unreachable(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer.clone(), &self.http)
            .await
            .map_err(|e| SsoError::Unreachable(describe_chain(&e)))?;
        // The page people are sent to is the provider's own: a discovery
        // document pointing them elsewhere would make this an open redirect.
        if metadata.authorization_endpoint().url().origin() != issuer.url().origin() {
            return Err(SsoError::Unreachable("the authorization endpoint is not on the issuer's host".into()));
        }
        Ok(metadata)
    }

    async fn metadata(&self, provider: &IdentityProviderRow, fresh: bool) -> Result<CoreProviderMetadata, SsoError> {
        if !fresh {
            let cached = self.metadata.lock().expect("metadata lock").get(&provider.id).cloned();
            if let Some((metadata, at)) = cached {
                if at.elapsed() < METADATA_LIFETIME && metadata.issuer().as_str() == provider.issuer {
                    return Ok(metadata);
                }
            }
        }
        let metadata = self.discover(&provider.issuer).await?;
        self.metadata.lock().expect("metadata lock").insert(provider.id.clone(), (metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    /// Forgets what is cached of a provider (changed or removed).
    pub fn forget(&self, provider_id: &str) {
        self.metadata.lock().expect("metadata lock").remove(provider_id);
    }
}

/// A provider's client, as discovery sets its endpoints.
type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

fn client(
    state: &SharedState,
    provider: &IdentityProviderRow,
    metadata: CoreProviderMetadata,
) -> Result<Client, SsoError> {
    let secret = state
        .secrets
        .open(crate::secrets::Purpose::ProviderClientSecret, &provider.org_id, &provider.client_secret)
        .map_err(|_| SsoError::Secret)?;
    let secret = String::from_utf8(secret).map_err(|_| SsoError::Secret)?;
    // Basic authentication unless the provider says it takes only the body.
    let body_only = metadata.token_endpoint_auth_methods_supported().is_some_and(|methods| {
        methods.contains(&CoreClientAuthMethod::ClientSecretPost)
            && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
    });
    let redirect =
        RedirectUrl::new(callback_url(state, &provider.id)).map_err(|e| SsoError::Unreachable(e.to_string()))?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(provider.client_id.clone()),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(redirect);
    Ok(if body_only { client.set_auth_type(AuthType::RequestBody) } else { client })
}

/// The redirect URI provider `provider_id` sends people back to.
pub fn callback_url(state: &SharedState, provider_id: &str) -> String {
    let path = CALLBACK_PATH.replace("{id}", provider_id);
    format!("{}{path}", state.config.public_url.trim_end_matches('/'))
}

/// Starts a sign-in: keeps its secrets, and returns the provider's URL to
/// send the browser to, with the secret the browser's cookie must carry.
pub async fn begin(
    state: &SharedState,
    provider: &IdentityProviderRow,
    login_hint: Option<&str>,
) -> Result<(String, OpaqueToken), SsoError> {
    let metadata = state.relying_party.metadata(provider, false).await?;
    let wants_groups = metadata.scopes_supported().is_some_and(|scopes| scopes.iter().any(|s| s.as_str() == "groups"));
    let client = client(state, provider, metadata)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge);
    if wants_groups {
        request = request.add_scope(Scope::new("groups".into()));
    }
    if let Some(hint) = login_hint.filter(|h| !h.is_empty() && h.len() <= crate::accounts::MAX_EMAIL_LEN) {
        request = request.add_extra_param("login_hint", hint.to_owned());
    }
    let (url, csrf, nonce) = request.url();
    let browser = OpaqueToken::generate();
    let now = state.now_ms();
    let sign_in = ProviderSignIn {
        state_hash: TokenHash::of(csrf.secret()).0,
        provider_id: provider.id.clone(),
        browser_hash: TokenHash::of(browser.as_str()).0,
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        expires_at_ms: now + SIGN_IN_LIFETIME.as_millis() as i64,
    };
    state.store.put_provider_sign_in(&sign_in, now).await?;
    Ok((url.to_string(), browser))
}

/// Takes the sign-in a provider's answer names, if this browser started it
/// and it has not expired; with its provider.
pub async fn take(
    state: &SharedState,
    provider_id: &str,
    state_param: &str,
    browser_secret: Option<&str>,
) -> Result<(ProviderSignIn, IdentityProviderRow), SsoError> {
    let sign_in =
        state.store.take_provider_sign_in(&TokenHash::of(state_param).0).await?.ok_or(SsoError::UnknownSignIn)?;
    // An answer arriving at another provider's address than the one the
    // sign-in was started with is someone's mix-up: nothing is redeemed.
    if sign_in.provider_id != provider_id {
        return Err(SsoError::UnknownSignIn);
    }
    let same_browser = browser_secret.is_some_and(|secret| {
        bool::from(subtle::ConstantTimeEq::ct_eq(TokenHash::of(secret).0.as_bytes(), sign_in.browser_hash.as_bytes()))
    });
    if !same_browser || sign_in.expires_at_ms < state.now_ms() {
        return Err(SsoError::UnknownSignIn);
    }
    let provider = state.store.identity_provider(&sign_in.provider_id).await?.ok_or(SsoError::UnknownSignIn)?;
    Ok((sign_in, provider))
}

/// Exchanges the code and verifies the ID token it brings.
pub async fn finish(
    state: &SharedState,
    provider: &IdentityProviderRow,
    sign_in: &ProviderSignIn,
    code: &str,
) -> Result<VerifiedIdentity, SsoError> {
    let metadata = state.relying_party.metadata(provider, false).await?;
    let rp_client = client(state, provider, metadata)?;
    let response = rp_client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| SsoError::Unreachable(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(sign_in.pkce_verifier.clone()))
        .request_async(&state.relying_party.http)
        .await
        .map_err(|e| match e {
            openidconnect::RequestTokenError::ServerResponse(refusal) => {
                SsoError::ProviderRefused(refusal.error().as_ref().to_owned())
            }
            other => SsoError::Unreachable(describe_chain(&other)),
        })?;
    let raw = response.id_token().ok_or_else(|| SsoError::InvalidToken("the provider sent no ID token".into()))?;
    let token = GroupIdToken::from_str(&raw.to_string()).map_err(|e| SsoError::InvalidToken(e.to_string()))?;
    let nonce = Nonce::new(sign_in.nonce.clone());
    let claims = match token.claims(&verifier(&rp_client), &nonce) {
        Ok(claims) => claims.clone(),
        // A key the server has not seen: the provider may have rotated.
        // Its keys are fetched again, once, and the token checked again.
        Err(ClaimsVerificationError::SignatureVerification(_)) => {
            let metadata = state.relying_party.metadata(provider, true).await?;
            let rp_client = client(state, provider, metadata)?;
            let verified = token.claims(&verifier(&rp_client), &nonce).cloned();
            verified.map_err(|e| SsoError::InvalidToken(describe_chain(&e)))?
        }
        Err(err) => return Err(SsoError::InvalidToken(describe_chain(&err))),
    };
    let groups = claims.additional_claims().groups.as_ref().map(|values| {
        values
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|name| !name.trim().is_empty() && name.len() <= MAX_GROUP_NAME)
            .take(MAX_GROUPS)
            .map(|name| name.trim().to_owned())
            .collect()
    });
    Ok(VerifiedIdentity {
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().to_owned()),
        email_verified: claims.email_verified().unwrap_or(false),
        name: claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned()),
        groups,
    })
}

/// The ID-token checks: issuer, audience, expiry, signature — by the
/// provider's public keys only (a MAC keyed by the client secret is not a
/// provider's signature: whoever holds the secret could make one).
fn verifier<'a>(client: &'a Client) -> openidconnect::IdTokenVerifier<'a, openidconnect::core::CoreJsonWebKey> {
    use CoreJwsSigningAlgorithm as A;
    client.id_token_verifier().set_allowed_algs([
        A::RsaSsaPkcs1V15Sha256,
        A::RsaSsaPkcs1V15Sha384,
        A::RsaSsaPkcs1V15Sha512,
        A::RsaSsaPssSha256,
        A::RsaSsaPssSha384,
        A::RsaSsaPssSha512,
        A::EcdsaP256Sha256,
        A::EcdsaP384Sha384,
        A::EdDsa,
    ])
}

/// An error with its causes, for the audit log and the administrator.
fn describe_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn providers_inside_the_network_are_not_reached_unless_allowed() {
        let party = RelyingParty::new(false);
        for issuer in
            ["https://127.0.0.1:9", "https://169.254.169.254/latest", "https://localhost/x", "http://example.org"]
        {
            match party.discover(issuer).await {
                Err(SsoError::Unreachable(why)) => {
                    assert!(why.contains("public host") || why.contains("https://"), "{issuer}: {why}")
                }
                other => panic!("{issuer}: {other:?}"),
            }
        }
    }
}
