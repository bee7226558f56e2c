//! Account flows that both the HTTP API and `conclave admin` use: signing in
//! against credential stuffing, signing up, first-run bootstrap, sessions,
//! and disabling dormant accounts. They know nothing of HTTP: they fail with
//! an [`AccountError`], which the API turns into a problem document at its
//! edge (`error.rs`) and the CLI prints as it is.
//!
//! Against credential stuffing, every login attempt for an email — whether or
//! not an account has it — takes the same path: the same per-address and
//! per-email throttles, one Argon2id verification (against a decoy when there
//! is no account), and the same `invalid-credentials` answer.

use crate::state::{Audit, SharedState};
use conclave_auth::{OpaqueToken, PasswordPolicy, RecoveryCode, TokenHash, Totp, TotpError};
use conclave_proto::audit::{AuditAction, AuditOutcome};
use conclave_proto::problem::FieldError;
use conclave_proto::{AccountStatus, LoginRequest, OrgPolicy, OrgRole, PasskeyChallenge, Plan, User};
use conclave_store::{NewSession, NewUser, SessionRow, StoreError, UserRow};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Why an account flow did not go through.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Fields that are not acceptable, each with why (all at once).
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// Wrong email or password (the same answer whether or not the account exists).
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// A signed-in person's password, asked again, was wrong.
    #[error("the password is wrong")]
    WrongPassword,
    /// With the challenge one of the account's passkeys may answer, if it has any.
    #[error("enter the code from your authenticator app or a recovery code, or use a passkey")]
    SecondFactorRequired(Option<PasskeyChallenge>),
    #[error("{0}")]
    InvalidSecondFactor(&'static str),
    /// The organisation takes a passkey, not a code, after the password.
    #[error("your organisation requires a passkey after the password (or a recovery code)")]
    PasskeyRequired(PasskeyChallenge),
    #[error("{0}")]
    InvalidPasskey(&'static str),
    /// The organisation signs this account in through its identity provider only.
    #[error("your organisation signs you in through its identity provider; use \"Sign in with your organisation\"")]
    ProviderSignInRequired,
    /// Locked out for a while, or over a request budget.
    #[error("too many attempts; retry in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    #[error("{}", disabled_because(*.0))]
    Disabled(AccountStatus),
    #[error("an account with this email already exists")]
    AccountExists,
    #[error("the stored two-factor secret cannot be read")]
    CorruptSecret,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

fn disabled_because(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Dormant => "this account was disabled after a long time unused; ask an administrator",
        _ => "an administrator deactivated this account",
    }
}

impl AccountError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError { field: field.to_owned(), message: message.into() }])
    }
}

pub type AccountResult<T> = Result<T, AccountError>;

pub const MAX_EMAIL_LEN: usize = 254;

/// Lower-cased and trimmed, with a plausible `local@domain.tld` shape.
pub fn normalize_email(email: &str) -> AccountResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(AccountError::field("email", "must be an email address such as name@example.org"))
    }
}

/// An account's display name, under the one rule every name people show
/// each other follows (`conclave_proto::names`).
pub fn validate_display_name(name: &str) -> AccountResult<String> {
    conclave_proto::names::display_name(name).map_err(|e| AccountError::field("display_name", e.to_string()))
}

pub fn validate_new_password(password: &str, email: &str, display_name: &str) -> AccountResult<()> {
    PasswordPolicy.check(password, email, display_name).map_err(|e| AccountError::field("password", e.to_string()))
}

/// The throttle key of an email: a hash, so the table holds no addresses.
fn email_key(email: &str) -> String {
    TokenHash::of(&format!("login:{email}")).0
}

pub fn user_view(user: &UserRow) -> User {
    User {
        id: user.id.clone(),
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        org_id: user.org_id.clone(),
        role: user.role,
        status: user.status,
        two_factor_enabled: user.totp_secret.is_some(),
        created_at_ms: user.created_at_ms,
        last_active_at_ms: user.last_active_at_ms,
    }
}

/// How a session was signed in, kept as its kind: what the organisation's
/// policies on factors ask of it depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A password, with an authenticator app's code or a recovery code when asked.
    Password,
    /// A passkey: alone, or after the password.
    Passkey,
    /// The organisation's identity provider, which answers for its own factors.
    Provider,
    /// A personal access token, made from a session that met the policies.
    AccessToken,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "login",
            Self::Passkey => "passkey",
            Self::Provider => "provider",
            Self::AccessToken => "access_token",
        }
    }

    pub fn parse(kind: &str) -> Self {
        match kind {
            "passkey" => Self::Passkey,
            "provider" => Self::Provider,
            "access_token" => Self::AccessToken,
            _ => Self::Password,
        }
    }
}

/// True when the session does not meet the organisation's policy on
/// factors and may do nothing but enrol one: two-factor required and the
/// account has neither an authenticator app nor a passkey; or a
/// phishing-resistant factor required and the session was signed in with
/// a password and a code (or a password alone).
pub async fn needs_enrollment(
    state: &SharedState,
    user: &UserRow,
    policy: Option<&OrgPolicy>,
    kind: SessionKind,
) -> AccountResult<bool> {
    let Some(policy) = policy else { return Ok(false) };
    match kind {
        SessionKind::Passkey | SessionKind::Provider => Ok(false),
        SessionKind::Password if policy.require_phishing_resistant.value => Ok(true),
        SessionKind::Password | SessionKind::AccessToken => {
            Ok(policy.require_2fa.value && user.totp_secret.is_none() && !state.store.has_passkey(&user.id).await?)
        }
    }
}

/// Refuses an account that is deactivated or dormant, marking it dormant
/// first if it has been unused past its organisation's cutoff.
pub async fn ensure_usable(state: &SharedState, user: &UserRow, policy: Option<&OrgPolicy>) -> AccountResult<()> {
    if user.status != AccountStatus::Active {
        return Err(AccountError::Disabled(user.status));
    }
    let cutoff_days = policy.and_then(|p| p.dormant_account_days.value);
    if let (Some(days), Some(org_id)) = (cutoff_days, user.org_id.as_deref()) {
        if user.last_active_at_ms < state.now_ms() - days_ms(days) {
            state.store.set_user_status(&user.id, AccountStatus::Dormant).await?;
            state.store.revoke_sessions_except(&user.id, None, state.now_ms()).await?;
            state.metrics.accounts_disabled_dormant.fetch_add(1, Ordering::Relaxed);
            let detail = format!("unused for more than {days} days");
            state
                .audit(Audit {
                    org_id: Some(org_id),
                    target: Some(&user.id),
                    detail: &detail,
                    ..Audit::new(AuditAction::AccountDormant, AuditOutcome::Success)
                })
                .await?;
            return Err(AccountError::Disabled(AccountStatus::Dormant));
        }
    }
    Ok(())
}

fn days_ms(days: u32) -> i64 {
    i64::from(days) * 24 * 3600 * 1000
}

/// The refusal for a locked source or email, counted and identical for all.
fn throttled(state: &SharedState, wait: Duration) -> AccountError {
    state.metrics.logins_throttled.fetch_add(1, Ordering::Relaxed);
    AccountError::Throttled(wait)
}

/// Spends one token of the per-address budget for sensitive requests.
pub fn check_sensitive_rate(state: &SharedState, ip: IpAddr) -> AccountResult<()> {
    state.throttles.sensitive_requests.check(ip, state.now_ms()).map_err(AccountError::Throttled)
}

pub struct LoginOutcome {
    pub token: OpaqueToken,
    pub session: SessionRow,
    pub user: UserRow,
    pub needs_enrollment: bool,
}

/// Signs in with email, password and, when enabled, a second factor.
pub async fn login(
    state: &SharedState,
    req: LoginRequest,
    ip: IpAddr,
    user_agent: Option<&str>,
) -> AccountResult<LoginOutcome> {
    let now = state.now_ms();
    if let Some(wait) = state.throttles.sign_in_failures.locked(&ip, now) {
        audit_login_failure(state, None, None, ip, "source address locked out").await?;
        return Err(throttled(state, wait));
    }
    check_sensitive_rate(state, ip).inspect_err(|_| {
        state.metrics.logins_throttled.fetch_add(1, Ordering::Relaxed);
    })?;
    // An unparsable email takes the unknown-account path, not a 422 that
    // would differ from a wrong password.
    let email = normalize_email(&req.email).unwrap_or_else(|_| req.email.trim().to_lowercase());
    let key = email_key(&email);
    if let Some(row) = state.store.login_throttle(&key).await? {
        if row.locked_until_ms > now {
            audit_login_failure(state, None, None, ip, "email locked out").await?;
            return Err(throttled(state, Duration::from_millis((row.locked_until_ms - now) as u64)));
        }
    }

    let user = state.store.user_by_email(&email).await?;
    let password_ok = state.verify_password(req.password.clone(), user.as_ref().map(|u| u.password_hash.clone())).await;
    let Some(user) = user.filter(|_| password_ok) else {
        record_failure(state, &key, ip).await?;
        audit_login_failure(state, None, None, ip, "wrong email or password").await?;
        return Err(AccountError::InvalidCredentials);
    };
    let org = match &user.org_id {
        Some(id) => state.store.org_by_id(id).await?,
        None => None,
    };
    let org_id = user.org_id.as_deref();
    if let Err(err) = ensure_usable(state, &user, org.as_ref().map(|(_, p)| p)).await {
        audit_login_failure(state, org_id, Some(&user.id), ip, "account disabled").await?;
        return Err(err);
    }

    let policy = org.as_ref().map(|(_, p)| p);
    // Where passwords are off, even the right one gets the answer a wrong
    // one gets (and counts as one): it must not confirm an old password,
    // which may well be the one the provider still takes. The sign-in page
    // learns from the address's domain that the provider is the way in.
    if policy.is_some_and(|p| p.provider_only_sign_in.value) && user.role != Some(OrgRole::Owner) {
        record_failure(state, &key, ip).await?;
        audit_login_failure(state, org_id, Some(&user.id), ip, "password refused: provider sign-in only").await?;
        return Err(AccountError::InvalidCredentials);
    }

    let kind = match check_second_factor(state, &user, policy, &req).await {
        Ok(kind) => kind,
        Err(err) => {
            // Asking for the factor is not a failure; a wrong one is.
            if !matches!(err, AccountError::SecondFactorRequired(_) | AccountError::PasskeyRequired(_)) {
                record_failure(state, &key, ip).await?;
            }
            audit_login_failure(state, org_id, Some(&user.id), ip, &err.to_string()).await?;
            return Err(err);
        }
    };

    state.store.clear_login_failures(&key).await?;
    let detail = if kind == SessionKind::Passkey { "signed in with password and passkey" } else { "signed in" };
    finish_sign_in(state, user, kind, ip, user_agent, detail).await
}

/// Signs in with a passkey alone: the account its answer names, if usable
/// and not one whose organisation signs it in through its provider only
/// (a passkey must not keep someone in whom the provider let go). Failures
/// count against the source address, as wrong passwords do.
pub async fn sign_in_with_passkey(
    state: &SharedState,
    answer: &conclave_proto::PasskeyResponse,
    ip: IpAddr,
    user_agent: Option<&str>,
) -> AccountResult<LoginOutcome> {
    if let Some(wait) = state.throttles.sign_in_failures.locked(&ip, state.now_ms()) {
        return Err(throttled(state, wait));
    }
    check_sensitive_rate(state, ip)?;
    let user = match crate::passkeys::finish_sign_in(state, answer).await {
        Ok(user) => user,
        Err(err) => return passkey_refused(state, ip, None, &format!("passkey sign-in refused: {err}"), err).await,
    };
    let org = match &user.org_id {
        Some(id) => state.store.org_by_id(id).await?,
        None => None,
    };
    if let Err(err) = ensure_usable(state, &user, org.as_ref().map(|(_, p)| p)).await {
        return passkey_refused(state, ip, Some(&user), "passkey sign-in of a disabled account", err).await;
    }
    if passwords_off(state, &user).await? {
        let err = AccountError::ProviderSignInRequired;
        return passkey_refused(state, ip, Some(&user), "passkey refused: provider sign-in only", err).await;
    }
    finish_sign_in(state, user, SessionKind::Passkey, ip, user_agent, "signed in with a passkey").await
}

/// A passkey sign-in refused: counted against the source address, audited.
async fn passkey_refused<T>(
    state: &SharedState,
    ip: IpAddr,
    user: Option<&UserRow>,
    detail: &str,
    err: AccountError,
) -> AccountResult<T> {
    state.throttles.sign_in_failures.failed(ip, state.now_ms());
    let (org, actor) = (user.and_then(|u| u.org_id.as_deref()), user.map(|u| u.id.as_str()));
    audit_login_failure(state, org, actor, ip, detail).await?;
    Err(err)
}

/// What every sign-in (a password, a passkey alone, the identity provider)
/// does once its factors held: the source address's failures forgotten, a
/// session of `kind`, a notice when the device is new, the counters and the
/// audit log.
pub async fn finish_sign_in(
    state: &SharedState,
    user: UserRow,
    kind: SessionKind,
    ip: IpAddr,
    user_agent: Option<&str>,
    detail: &str,
) -> AccountResult<LoginOutcome> {
    state.throttles.sign_in_failures.succeeded(&ip);
    let now = state.now_ms();
    let org = match &user.org_id {
        Some(id) => state.store.org_by_id(id).await?,
        None => None,
    };
    let needs_enrollment = needs_enrollment(state, &user, org.as_ref().map(|(_, p)| p), kind).await?;
    let from_new_device = is_new_sign_in_origin(state, &user.id, ip, user_agent).await?;
    let lifetime = state.config.limits.session_lifetime;
    let (token, session) = start_session(state, &user.id, kind.as_str(), None, ip, user_agent, lifetime).await?;
    if from_new_device {
        tell_of_new_sign_in(state, &user.email, ip, session.user_agent.as_deref(), now);
    }
    state.metrics.logins_succeeded.fetch_add(1, Ordering::Relaxed);
    let detail =
        if needs_enrollment { format!("{detail}; a second factor must be enrolled") } else { detail.to_owned() };
    state
        .audit(Audit {
            org_id: user.org_id.as_deref(),
            actor_id: Some(&user.id),
            target: Some(&session.id),
            source_ip: Some(ip),
            detail: &detail,
            ..Audit::new(AuditAction::AuthLogin, AuditOutcome::Success)
        })
        .await?;
    Ok(LoginOutcome { token, session, user, needs_enrollment })
}

/// Whether the account's organisation has turned passwords off for it:
/// it signs in through the identity provider only (owners keep theirs).
pub async fn passwords_off(state: &SharedState, user: &UserRow) -> AccountResult<bool> {
    if user.role == Some(OrgRole::Owner) {
        return Ok(false);
    }
    let Some(org_id) = &user.org_id else { return Ok(false) };
    Ok(state.store.org_by_id(org_id).await?.is_some_and(|(_, policy)| policy.provider_only_sign_in.value))
}

/// Re-verifies a signed-in person's password before a sensitive change
/// (a new password, new recovery codes, two-factor off). Throttled exactly
/// like sign-in, on the same counters: the account's lockout (so a stolen
/// session gets no guesses beyond the five sign-in allows, and its guesses
/// lock sign-in too), the source address's lockout, and the per-address
/// budget. Every outcome but success is audited under `action`.
pub async fn confirm_password(
    state: &SharedState,
    user: &UserRow,
    password: String,
    ip: IpAddr,
    action: AuditAction,
) -> AccountResult<()> {
    let now = state.now_ms();
    let failure = |detail| Audit {
        org_id: user.org_id.as_deref(),
        actor_id: Some(&user.id),
        source_ip: Some(ip),
        detail,
        ..Audit::new(action, AuditOutcome::Failure)
    };
    if let Some(wait) = state.throttles.sign_in_failures.locked(&ip, now) {
        state.audit(failure("source address locked out")).await?;
        return Err(throttled(state, wait));
    }
    check_sensitive_rate(state, ip)?;
    let key = email_key(&user.email);
    if let Some(row) = state.store.login_throttle(&key).await? {
        if row.locked_until_ms > now {
            state.audit(failure("account locked out after wrong passwords")).await?;
            return Err(throttled(state, Duration::from_millis((row.locked_until_ms - now) as u64)));
        }
    }
    if !state.verify_password(password, Some(user.password_hash.clone())).await {
        record_failure(state, &key, ip).await?;
        state.audit(failure("password wrong")).await?;
        return Err(AccountError::WrongPassword);
    }
    state.store.clear_login_failures(&key).await?;
    state.throttles.sign_in_failures.succeeded(&ip);
    Ok(())
}

/// The second factor, when the account has one or its organisation asks
/// for a passkey: a passkey's answer, an authenticator app's code, or a
/// recovery code. Returns what the session is.
async fn check_second_factor(
    state: &SharedState,
    user: &UserRow,
    policy: Option<&OrgPolicy>,
    req: &LoginRequest,
) -> AccountResult<SessionKind> {
    let passkeys = state.store.passkeys_of(&user.id).await?;
    if user.totp_secret.is_none() && passkeys.is_empty() {
        return Ok(SessionKind::Password);
    }
    // A phishing-resistant policy takes a passkey where the account has one
    // (an account without one signs in to enrol one).
    let passkey_only = policy.is_some_and(|p| p.require_phishing_resistant.value) && !passkeys.is_empty();
    let challenge = || async {
        if passkeys.is_empty() {
            Ok(None)
        } else {
            crate::passkeys::start_second_factor(state, user, &passkeys).await.map(Some)
        }
    };
    let now = state.now_ms();
    let totp_code = req.totp_code.as_deref().filter(|c| !c.trim().is_empty());
    let recovery_code = req.recovery_code.as_deref().filter(|c| !c.trim().is_empty());
    if let Some(answer) = &req.passkey {
        crate::passkeys::finish_second_factor(state, user, answer).await?;
        return Ok(SessionKind::Passkey);
    }
    match (totp_code, recovery_code, &user.totp_secret) {
        (Some(_), _, _) if passkey_only => {
            Err(AccountError::PasskeyRequired(challenge().await?.expect("the account has passkeys")))
        }
        (Some(code), _, Some(secret)) => {
            let seed = state.secrets.open_totp_seed(&user.id, secret).map_err(|_| AccountError::CorruptSecret)?;
            let totp = Totp::from_base32(&seed).ok_or(AccountError::CorruptSecret)?;
            let last = user.totp_last_step.and_then(|s| u64::try_from(s).ok());
            let step = totp.verify(code, (now / 1000).max(0) as u64, last).map_err(|e| match e {
                TotpError::Malformed => AccountError::InvalidSecondFactor("the code must be 6 digits"),
                TotpError::Wrong => AccountError::InvalidSecondFactor("the code is wrong or expired"),
                TotpError::Replayed => AccountError::InvalidSecondFactor(REPLAYED),
            })?;
            // The claim is atomic: of two logins racing with one code, one wins.
            if !state.store.claim_totp_step(&user.id, step as i64).await? {
                return Err(AccountError::InvalidSecondFactor(REPLAYED));
            }
            Ok(SessionKind::Password)
        }
        (Some(_), _, None) => {
            Err(AccountError::InvalidSecondFactor("this account has no authenticator app; use a passkey"))
        }
        (None, Some(code), _) => {
            if state.store.use_recovery_code(&user.id, &RecoveryCode::hash_input(code).0, now).await? {
                Ok(SessionKind::Password)
            } else {
                Err(AccountError::InvalidSecondFactor("the recovery code is wrong or was already used"))
            }
        }
        (None, None, _) if passkey_only => {
            Err(AccountError::PasskeyRequired(challenge().await?.expect("the account has passkeys")))
        }
        (None, None, _) => Err(AccountError::SecondFactorRequired(challenge().await?)),
    }
}

const REPLAYED: &str = "this code was already used; wait for the next one";

async fn record_failure(state: &SharedState, key: &str, ip: IpAddr) -> AccountResult<()> {
    let now = state.now_ms();
    state.metrics.logins_failed.fetch_add(1, Ordering::Relaxed);
    let forget = state.config.limits.forget_failures_after.as_millis() as i64;
    let row = state.store.record_login_failure(key, now, forget, &state.account_backoff()).await?;
    let ip_lock = state.throttles.sign_in_failures.failed(ip, now);
    if row.locked_until_ms > now || ip_lock.is_some() {
        state.metrics.lockouts.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

async fn audit_login_failure(
    state: &SharedState,
    org_id: Option<&str>,
    actor: Option<&str>,
    ip: IpAddr,
    detail: &str,
) -> AccountResult<()> {
    let event = Audit {
        org_id,
        actor_id: actor,
        source_ip: Some(ip),
        detail,
        ..Audit::new(AuditAction::AuthLogin, AuditOutcome::Failure)
    };
    Ok(state.audit(event).await?)
}

/// Issues a new session token (`cs_…` for sign-ins, `pat_…` for access tokens).
/// The longest user agent kept with a session.
const USER_AGENT_CHARS: usize = 200;

/// Whether a sign-in comes from somewhere the account never signed in from:
/// no earlier sign-in had the same browser (user agent) in the same network
/// (IPv4 /24, IPv6 /64). An account's first sign-in is not news.
async fn is_new_sign_in_origin(
    state: &SharedState,
    user_id: &str,
    ip: IpAddr,
    user_agent: Option<&str>,
) -> AccountResult<bool> {
    let origins = state.store.sign_in_origins(user_id).await?;
    let agent: Option<String> = user_agent.map(|ua| ua.chars().take(USER_AGENT_CHARS).collect());
    let seen = origins.iter().any(|(seen_ip, seen_agent)| {
        *seen_agent == agent && seen_ip.as_deref().and_then(|i| i.parse().ok()).is_some_and(|i| same_network(i, ip))
    });
    Ok(!origins.is_empty() && !seen)
}

fn same_network(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets()[..3] == b.octets()[..3],
        (IpAddr::V6(a), IpAddr::V6(b)) => a.segments()[..4] == b.segments()[..4],
        _ => false,
    }
}

/// Emails the account's owner that it was signed in to from a new device,
/// with what to do if it was not them.
fn tell_of_new_sign_in(state: &SharedState, email: &str, ip: IpAddr, user_agent: Option<&str>, now_ms: i64) {
    let what = format!(
        "Your Conclave account {email} was signed in to on {} from a device it was not used on before: {}, at the address {ip}.",
        crate::clock::UtcTime::from_ms(now_ms).minute(),
        user_agent.unwrap_or("an unnamed program"),
    );
    notify_holder(
        state,
        email,
        "New sign-in to your Conclave account",
        vec![
            what,
            "If it was you, there is nothing to do.".into(),
            "If it was not, change your password now and end the sessions you do not know (your account's security settings), and turn on two-factor sign-in.".into(),
        ],
    );
}

/// Tells an account's holder by email of something done to their account
/// (a new sign-in, a passkey added, a link to the provider), with a link
/// to open Conclave. Sent in the background: what it tells of never waits
/// for (or fails with) the mail server; without SMTP, nothing is sent.
pub fn notify_holder(state: &SharedState, email: &str, subject: &'static str, paragraphs: Vec<String>) {
    if !state.mailer.is_enabled() {
        return;
    }
    let (state, email) = (state.clone(), email.to_owned());
    let link = format!("{}/", state.config.public_url.trim_end_matches('/'));
    tokio::spawn(async move {
        let paragraphs: Vec<&str> = paragraphs.iter().map(String::as_str).collect();
        let notice = crate::mail::Email {
            to: &email,
            subject,
            paragraphs: &paragraphs,
            action: Some(("Open Conclave", &link)),
            calendar: None,
        };
        if let Err(err) = state.mailer.send(&notice).await {
            tracing::warn!(error = %err, subject, "a notice to an account's holder was not sent");
        }
    });
}

pub async fn start_session(
    state: &SharedState,
    user_id: &str,
    kind: &str,
    name: Option<&str>,
    ip: IpAddr,
    user_agent: Option<&str>,
    lifetime: Duration,
) -> AccountResult<(OpaqueToken, SessionRow)> {
    let prefix = if kind == SessionKind::AccessToken.as_str() { "pat_" } else { "cs_" };
    let token = OpaqueToken::generate_with_prefix(prefix);
    let csrf = OpaqueToken::generate();
    let now = state.now_ms();
    let ip = ip.to_string();
    let user_agent = user_agent.map(|ua| ua.chars().take(USER_AGENT_CHARS).collect::<String>());
    let session = state
        .store
        .create_session(&NewSession {
            user_id,
            token_hash: &token.hash().0,
            kind,
            name,
            csrf_token: csrf.as_str(),
            now_ms: now,
            expires_at_ms: now + lifetime.as_millis() as i64,
            ip: Some(&ip),
            user_agent: user_agent.as_deref(),
        })
        .await?;
    Ok((token, session))
}

/// Everything a new account needs, validated together so one response lists
/// every problem.
pub struct NewAccount {
    pub email: String,
    pub display_name: String,
    pub password: String,
}

impl NewAccount {
    pub fn validate(email: &str, display_name: &str, password: &str) -> AccountResult<Self> {
        let mut errors = Vec::new();
        let mut keep = |err: AccountError| {
            if let AccountError::Invalid(fields) = err {
                errors.extend(fields);
            }
        };
        let email = normalize_email(email).map_err(&mut keep).ok();
        let name = validate_display_name(display_name).map_err(&mut keep).ok();
        let password_ok =
            validate_new_password(password, email.as_deref().unwrap_or_default(), name.as_deref().unwrap_or_default())
                .map_err(&mut keep)
                .is_ok();
        match (email, name) {
            (Some(email), Some(display_name)) if password_ok && errors.is_empty() => {
                Ok(Self { email, display_name, password: password.to_owned() })
            }
            _ => Err(AccountError::Invalid(errors)),
        }
    }
}

/// An organisation's name: shown beside its members' names in meetings, so
/// under the same rule as theirs.
pub fn validate_org_name(name: &str) -> AccountResult<String> {
    conclave_proto::names::organisation_name(name).map_err(|e| AccountError::field("name", e.to_string()))
}

/// Creates the first organisation and its owner. Used by `conclave admin
/// bootstrap` and by the one-time setup token.
pub async fn bootstrap(
    state: &SharedState,
    org_name: &str,
    account: NewAccount,
    ip: Option<IpAddr>,
) -> AccountResult<UserRow> {
    let org_name = validate_org_name(org_name)?;
    if state.store.user_by_email(&account.email).await?.is_some() {
        return Err(AccountError::AccountExists);
    }
    let hash = state.hash_password(account.password).await;
    let plan = Plan::Free;
    let policy = OrgPolicy::defaults(plan, &state.config.regions);
    let (org, owner) = state
        .store
        .create_org_with_new_owner(
            &org_name,
            plan,
            &policy,
            &NewUser {
                email: &account.email,
                display_name: &account.display_name,
                password_hash: &hash,
                org_id: None,
                role: Some(OrgRole::Owner),
                now_ms: state.now_ms(),
            },
        )
        .await?;
    state.store.delete_setting(SETUP_TOKEN_SETTING).await?;
    state
        .audit(Audit {
            org_id: Some(&org.id),
            actor_id: Some(&owner.id),
            target: Some(&org.id),
            source_ip: ip,
            detail: "first organisation and owner created",
            ..Audit::new(AuditAction::ServerBootstrap, AuditOutcome::Success)
        })
        .await?;
    Ok(owner)
}

/// Where the hash of the one-time setup token lives until it is used.
pub const SETUP_TOKEN_SETTING: &str = "setup_token_hash";

/// On a server with no organisation, issues a fresh one-time setup token
/// (replacing any earlier one) and returns it to print.
pub async fn issue_setup_token(state: &SharedState) -> AccountResult<Option<OpaqueToken>> {
    if state.store.count_orgs().await? > 0 {
        state.store.delete_setting(SETUP_TOKEN_SETTING).await?;
        return Ok(None);
    }
    let token = OpaqueToken::generate_with_prefix("setup_");
    state.store.put_setting(SETUP_TOKEN_SETTING, &token.hash().0).await?;
    Ok(Some(token))
}

/// Disables members unused past their organisation's cutoff; returns how many.
pub async fn sweep_dormant_accounts(state: &SharedState) -> AccountResult<usize> {
    let now = state.now_ms();
    let mut disabled = 0;
    for (org, policy) in state.store.list_orgs().await? {
        let Some(days) = policy.dormant_account_days.value else { continue };
        for user_id in state.store.disable_dormant_members(&org.id, now - days_ms(days)).await? {
            state.store.revoke_sessions_except(&user_id, None, now).await?;
            let detail = format!("unused for more than {days} days");
            state
                .audit(Audit {
                    org_id: Some(&org.id),
                    target: Some(&user_id),
                    detail: &detail,
                    ..Audit::new(AuditAction::AccountDormant, AuditOutcome::Success)
                })
                .await?;
            disabled += 1;
        }
    }
    state.metrics.accounts_disabled_dormant.fetch_add(disabled as u64, Ordering::Relaxed);
    Ok(disabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_is_a_slash_24_or_a_slash_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(same_network(ip("203.0.113.7"), ip("203.0.113.200")));
        assert!(!same_network(ip("203.0.113.7"), ip("203.0.114.7")));
        assert!(same_network(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9")));
        assert!(!same_network(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1")));
        assert!(!same_network(ip("203.0.113.7"), ip("::ffff:203.0.113.7")));
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalize_email("  Ada@Example.ORG ").unwrap(), "ada@example.org");
        for bad in ["", "ada", "ada@", "@example.org", "ada@example", "a b@example.org", "a@b@example.org", "ada@.org"]
        {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn new_accounts_report_every_problem_at_once() {
        let Err(AccountError::Invalid(errors)) = NewAccount::validate("nope", "", "short") else { panic!("accepted") };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "display_name", "password"]);
    }
}
