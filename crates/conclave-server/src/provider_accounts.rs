//! Which account an identity the organisation's provider vouched for signs
//! in to. In order:
//!
//! 1. its address must be in one of the provider's allowed domains;
//! 2. a subject seen before signs in to the account it was linked to;
//! 3. an account of the provider's organisation with the same address is
//!    linked — only when the provider says the address is verified (a
//!    provider that lets people type any address must not hand them
//!    someone else's account), never an owner's (whoever runs a provider
//!    must not become the organisation's owner by naming them), and never
//!    one already linked to another subject of the same provider (an
//!    address handed on to a newcomer does not bring its old account);
//!    its holder is told by email;
//! 4. otherwise, where the provider creates accounts, a new member account
//!    is made (again only for a verified address, so nobody claims an
//!    address that is not theirs), without a password.
//!
//! The account must be usable (not closed, not dormant). When the token
//! carries groups, the person's membership of the organisation's provider
//! groups follows them (roles and team channels with it, C2).

use crate::accounts::{self, AccountError, LoginOutcome};
use crate::sso::VerifiedIdentity;
use crate::state::{Audit, SharedState};
use conclave_auth::NO_PASSWORD;
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::OrgRole;
use conclave_store::{IdentityProviderRow, NewUser, UserRow};
use std::net::IpAddr;

/// Why a verified identity may not sign in.
#[derive(Debug, thiserror::Error)]
pub enum ProviderSignInError {
    #[error("the provider did not give an email address")]
    NoEmail,
    #[error("{0} is not among the domains this provider signs in")]
    DomainNotAllowed(String),
    #[error("the provider has not verified this address, so it is not linked to an existing account")]
    EmailNotVerified,
    #[error("an account with this address belongs to another organisation")]
    OtherOrganisation,
    #[error("an owner's account is not linked to a provider by its address; owners sign in with their password")]
    OwnerNotLinked,
    #[error("this account is linked to another of the provider's identities")]
    LinkedElsewhere,
    #[error("no account has this address, and this provider does not create accounts")]
    NoAccount,
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Groups(#[from] crate::conversations::ConversationError),
}

impl ProviderSignInError {
    /// The short code the app shows a message for.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoEmail => "no-email",
            Self::DomainNotAllowed(_) => "domain-not-allowed",
            Self::EmailNotVerified => "email-not-verified",
            Self::OtherOrganisation => "other-organisation",
            Self::OwnerNotLinked => "owner-not-linked",
            Self::LinkedElsewhere => "linked-elsewhere",
            Self::NoAccount => "no-account",
            Self::Account(AccountError::Disabled(_)) => "account-disabled",
            Self::Account(_) | Self::Groups(_) => "internal",
        }
    }
}

/// Signs in the person the provider vouched for (see the module's rules).
pub async fn sign_in(
    state: &SharedState,
    provider: &IdentityProviderRow,
    identity: &VerifiedIdentity,
    ip: IpAddr,
    user_agent: Option<&str>,
) -> Result<LoginOutcome, ProviderSignInError> {
    let email = identity.email.as_deref().ok_or(ProviderSignInError::NoEmail)?;
    let email = accounts::normalize_email(email).map_err(|_| ProviderSignInError::NoEmail)?;
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if !provider.allowed_domains.iter().any(|allowed| allowed == domain) {
        return Err(ProviderSignInError::DomainNotAllowed(domain.to_owned()));
    }
    let now = state.now_ms();
    let user = match state.store.external_identity_user(&provider.id, &identity.subject, now).await.map_err(store)? {
        Some(user_id) => {
            state.store.user_by_id(&user_id).await.map_err(store)?.ok_or(ProviderSignInError::NoAccount)?
        }
        None => match state.store.user_by_email(&email).await.map_err(store)? {
            Some(existing) => link(state, provider, identity, existing, ip).await?,
            None => create(state, provider, identity, &email, ip).await?,
        },
    };
    // A link made for another organisation's provider never signs in here.
    if user.org_id.as_deref() != Some(provider.org_id.as_str()) {
        return Err(ProviderSignInError::OtherOrganisation);
    }
    let org = state.store.org_by_id(&provider.org_id).await.map_err(store)?;
    accounts::ensure_usable(state, &user, org.as_ref().map(|(_, p)| p)).await?;
    if let Some(groups) = &identity.groups {
        crate::provider_groups::claimed_by_provider(state, &provider.org_id, &provider.id, &user.id, groups).await?;
    }
    let detail = format!("signed in through {}", provider.name);
    Ok(accounts::finish_sign_in(state, user, accounts::SessionKind::Provider, ip, user_agent, &detail).await?)
}

async fn link(
    state: &SharedState,
    provider: &IdentityProviderRow,
    identity: &VerifiedIdentity,
    existing: UserRow,
    ip: IpAddr,
) -> Result<UserRow, ProviderSignInError> {
    if !identity.email_verified {
        return Err(ProviderSignInError::EmailNotVerified);
    }
    if existing.org_id.as_deref() != Some(provider.org_id.as_str()) {
        return Err(ProviderSignInError::OtherOrganisation);
    }
    if existing.role == Some(OrgRole::Owner) {
        return Err(ProviderSignInError::OwnerNotLinked);
    }
    if state.store.external_identities_of(&existing.id).await.map_err(store)?.contains(&provider.id) {
        return Err(ProviderSignInError::LinkedElsewhere);
    }
    state
        .store
        .link_external_identity(&provider.id, &identity.subject, &existing.id, state.now_ms())
        .await
        .map_err(store)?;
    let detail = format!("linked to {} (subject {})", provider.name, identity.subject);
    let event = Audit {
        actor_id: Some(&existing.id),
        source_ip: Some(ip),
        ..Audit::new(AuditAction::AuthProviderLink, AuditOutcome::Success)
    };
    state.audit(event.org(&provider.org_id).target(&existing.id).detail(&detail)).await.map_err(store)?;
    let what = format!(
        "Your Conclave account {} was linked to your organisation's identity provider, {}: signing in there now signs you in to Conclave.",
        existing.email, provider.name
    );
    let advice = "If you did not expect this, tell your organisation's administrators.".to_owned();
    let subject = "Your Conclave account signs in through your organisation";
    accounts::notify_holder(state, &existing.email, subject, vec![what, advice]);
    Ok(existing)
}

async fn create(
    state: &SharedState,
    provider: &IdentityProviderRow,
    identity: &VerifiedIdentity,
    email: &str,
    ip: IpAddr,
) -> Result<UserRow, ProviderSignInError> {
    if !provider.create_accounts {
        return Err(ProviderSignInError::NoAccount);
    }
    if !identity.email_verified {
        return Err(ProviderSignInError::EmailNotVerified);
    }
    // The provider's name for the person when it is a good one, else the
    // address's local part.
    let local = email.split('@').next().unwrap_or(email);
    let display_name = identity
        .name
        .as_deref()
        .and_then(|name| accounts::validate_display_name(name).ok())
        .or_else(|| accounts::validate_display_name(local).ok())
        .unwrap_or_else(|| "New member".to_owned());
    let new = NewUser {
        email,
        display_name: &display_name,
        password_hash: NO_PASSWORD,
        org_id: Some(&provider.org_id),
        role: Some(OrgRole::Member),
        now_ms: state.now_ms(),
    };
    let user = state.store.create_provider_account(&new, &provider.id, &identity.subject).await.map_err(store)?;
    let detail = format!("account created at the first sign-in through {}", provider.name);
    let event = Audit {
        actor_id: Some(&user.id),
        source_ip: Some(ip),
        ..Audit::new(AuditAction::AuthSignup, AuditOutcome::Success)
    };
    state.audit(event.org(&provider.org_id).target(&user.id).detail(&detail)).await.map_err(store)?;
    Ok(user)
}

fn store(err: conclave_store::StoreError) -> ProviderSignInError {
    ProviderSignInError::Account(AccountError::Store(err))
}
