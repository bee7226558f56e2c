//! Account flows that both the HTTP API and `conclave admin` use: signing in
//! against credential stuffing, signing up, first-run bootstrap, sessions,
//! and disabling dormant accounts.
//!
//! Against credential stuffing, every login attempt for an email — whether or
//! not an account has it — takes the same path: the same per-address and
//! per-email throttles, one Argon2id verification (against a decoy when there
//! is no account), and the same `invalid-credentials` answer.

use crate::error::{ApiError, ApiResult};
use crate::extract::status_error;
use crate::state::{Audit, SharedState};
use conclave_auth::{OpaqueToken, PasswordPolicy, RecoveryCode, TokenHash, Totp, TotpError};
use conclave_proto::{AccountStatus, LoginRequest, OrgPolicy, OrgRole, Plan, User};
use conclave_store::{NewSession, NewUser, SessionRow, UserRow};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub const MAX_EMAIL_LEN: usize = 254;

/// Lower-cased and trimmed, with a plausible `local@domain.tld` shape.
pub fn normalize_email(email: &str) -> ApiResult<String> {
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
        Err(ApiError::field("email", "must be an email address such as name@example.org"))
    }
}

/// An account's display name, under the one rule every name people show
/// each other follows (`conclave_proto::names`).
pub fn validate_display_name(name: &str) -> ApiResult<String> {
    conclave_proto::names::display_name(name).map_err(|e| ApiError::field("display_name", e.to_string()))
}

pub fn validate_new_password(password: &str, email: &str, display_name: &str) -> ApiResult<()> {
    PasswordPolicy.check(password, email, display_name).map_err(|e| ApiError::field("password", e.to_string()))
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

/// True when the organisation requires 2FA and this account has not enrolled:
/// such a session may do nothing but enrol.
pub fn needs_enrollment(user: &UserRow, policy: Option<&OrgPolicy>) -> bool {
    user.totp_secret.is_none() && policy.is_some_and(|p| p.require_2fa.value)
}

/// Refuses an account that is deactivated or dormant, marking it dormant
/// first if it has been unused past its organisation's cutoff.
pub async fn ensure_usable(state: &SharedState, user: &UserRow, policy: Option<&OrgPolicy>) -> ApiResult<()> {
    if let Some(err) = status_error(user.status) {
        return Err(err);
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
                    ..Audit::new("account.dormant", "success")
                })
                .await?;
            return Err(status_error(AccountStatus::Dormant).expect("dormant is an error"));
        }
    }
    Ok(())
}

fn days_ms(days: u32) -> i64 {
    i64::from(days) * 24 * 3600 * 1000
}

/// The 429 for a locked source or email, counted and identical for all.
fn throttled(state: &SharedState, wait: Duration) -> ApiError {
    state.metrics.logins_throttled.fetch_add(1, Ordering::Relaxed);
    ApiError::throttled(wait)
}

/// Spends one token of the per-address budget for sensitive requests.
pub fn check_sensitive_rate(state: &SharedState, ip: IpAddr) -> ApiResult<()> {
    let now = state.now_ms().max(0) as u64;
    let mut limiter = state.sensitive_requests.lock().unwrap_or_else(|p| p.into_inner());
    limiter.check(ip, now).map_err(ApiError::throttled)
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
) -> ApiResult<LoginOutcome> {
    let now = state.now_ms();
    let now_u = now.max(0) as u64;
    let ip_locked = state.ip_failures.lock().unwrap_or_else(|p| p.into_inner()).locked(&ip, now_u);
    if let Some(wait) = ip_locked {
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
    let password_ok = state.verify_password(req.password, user.as_ref().map(|u| u.password_hash.clone())).await;
    let Some(user) = user.filter(|_| password_ok) else {
        record_failure(state, &key, ip).await?;
        audit_login_failure(state, None, None, ip, "wrong email or password").await?;
        return Err(ApiError::invalid_credentials());
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

    if let Some(secret) = &user.totp_secret {
        if let Err(err) = check_second_factor(state, &user, secret, &req.totp_code, &req.recovery_code).await {
            if err.code != "totp-required" {
                record_failure(state, &key, ip).await?;
            }
            let detail = err.detail.clone().unwrap_or_else(|| err.code.to_owned());
            audit_login_failure(state, org_id, Some(&user.id), ip, &detail).await?;
            return Err(err);
        }
    }

    state.store.clear_login_failures(&key).await?;
    state.ip_failures.lock().unwrap_or_else(|p| p.into_inner()).record_success(&ip);
    let needs_enrollment = needs_enrollment(&user, org.as_ref().map(|(_, p)| p));
    let (token, session) =
        start_session(state, &user.id, "login", None, ip, user_agent, state.config.limits.session_lifetime).await?;
    state.metrics.logins_succeeded.fetch_add(1, Ordering::Relaxed);
    let detail = if needs_enrollment { "signed in; 2FA enrolment required" } else { "signed in" };
    state
        .audit(Audit {
            org_id,
            actor_id: Some(&user.id),
            target: Some(&session.id),
            source_ip: Some(ip),
            detail,
            ..Audit::new("auth.login", "success")
        })
        .await?;
    Ok(LoginOutcome { token, session, user, needs_enrollment })
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
    action: &str,
) -> ApiResult<()> {
    let now = state.now_ms();
    let failure = |detail| Audit {
        org_id: user.org_id.as_deref(),
        actor_id: Some(&user.id),
        source_ip: Some(ip),
        detail,
        ..Audit::new(action, "failure")
    };
    let ip_locked = state.ip_failures.lock().unwrap_or_else(|p| p.into_inner()).locked(&ip, now.max(0) as u64);
    if let Some(wait) = ip_locked {
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
        return Err(ApiError::invalid_credentials().with_detail("the password is wrong"));
    }
    state.store.clear_login_failures(&key).await?;
    state.ip_failures.lock().unwrap_or_else(|p| p.into_inner()).record_success(&ip);
    Ok(())
}

async fn check_second_factor(
    state: &SharedState,
    user: &UserRow,
    secret: &str,
    totp_code: &Option<String>,
    recovery_code: &Option<String>,
) -> ApiResult<()> {
    let now = state.now_ms();
    match (
        totp_code.as_deref().filter(|c| !c.trim().is_empty()),
        recovery_code.as_deref().filter(|c| !c.trim().is_empty()),
    ) {
        (Some(code), _) => {
            let totp = Totp::from_base32(secret).ok_or_else(ApiError::internal)?;
            let last = user.totp_last_step.and_then(|s| u64::try_from(s).ok());
            let step = totp.verify(code, (now / 1000).max(0) as u64, last).map_err(|e| match e {
                TotpError::Malformed => ApiError::invalid_second_factor("the code must be 6 digits"),
                TotpError::Wrong => ApiError::invalid_second_factor("the code is wrong or expired"),
                TotpError::Replayed => {
                    ApiError::invalid_second_factor("this code was already used; wait for the next one")
                }
            })?;
            // The claim is atomic: of two logins racing with one code, one wins.
            if !state.store.claim_totp_step(&user.id, step as i64).await? {
                return Err(ApiError::invalid_second_factor("this code was already used; wait for the next one"));
            }
            Ok(())
        }
        (None, Some(code)) => {
            if state.store.use_recovery_code(&user.id, &RecoveryCode::hash_input(code).0, now).await? {
                Ok(())
            } else {
                Err(ApiError::invalid_second_factor("the recovery code is wrong or was already used"))
            }
        }
        (None, None) => Err(ApiError::totp_required()),
    }
}

async fn record_failure(state: &SharedState, key: &str, ip: IpAddr) -> ApiResult<()> {
    let now = state.now_ms();
    state.metrics.logins_failed.fetch_add(1, Ordering::Relaxed);
    let forget = state.config.limits.forget_failures_after.as_millis() as i64;
    let row = state.store.record_login_failure(key, now, forget, &state.account_backoff()).await?;
    let ip_lock = state.ip_failures.lock().unwrap_or_else(|p| p.into_inner()).record_failure(ip, now.max(0) as u64);
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
) -> ApiResult<()> {
    state
        .audit(Audit { org_id, actor_id: actor, source_ip: Some(ip), detail, ..Audit::new("auth.login", "failure") })
        .await
}

/// Issues a new session token (`cs_…` for sign-ins, `pat_…` for access tokens).
pub async fn start_session(
    state: &SharedState,
    user_id: &str,
    kind: &str,
    name: Option<&str>,
    ip: IpAddr,
    user_agent: Option<&str>,
    lifetime: Duration,
) -> ApiResult<(OpaqueToken, SessionRow)> {
    let prefix = if kind == "access_token" { "pat_" } else { "cs_" };
    let token = OpaqueToken::generate_with_prefix(prefix);
    let csrf = OpaqueToken::generate();
    let now = state.now_ms();
    let ip = ip.to_string();
    let user_agent = user_agent.map(|ua| ua.chars().take(200).collect::<String>());
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
    pub fn validate(email: &str, display_name: &str, password: &str) -> ApiResult<Self> {
        let mut errors = Vec::new();
        let email = normalize_email(email).map_err(|e| errors.extend(e.errors)).ok();
        let name = validate_display_name(display_name).map_err(|e| errors.extend(e.errors)).ok();
        if let Err(e) =
            validate_new_password(password, email.as_deref().unwrap_or_default(), name.as_deref().unwrap_or_default())
        {
            errors.extend(e.errors);
        }
        match (email, name) {
            (Some(email), Some(display_name)) if errors.is_empty() => {
                Ok(Self { email, display_name, password: password.to_owned() })
            }
            _ => Err(ApiError::validation(errors)),
        }
    }
}

/// An organisation's name: shown beside its members' names in meetings, so
/// under the same rule as theirs.
pub fn validate_org_name(name: &str) -> ApiResult<String> {
    conclave_proto::names::organisation_name(name).map_err(|e| ApiError::field("name", e.to_string()))
}

/// Creates the first organisation and its owner. Used by `conclave admin
/// bootstrap` and by the one-time setup token.
pub async fn bootstrap(
    state: &SharedState,
    org_name: &str,
    account: NewAccount,
    ip: Option<IpAddr>,
) -> ApiResult<UserRow> {
    let org_name = validate_org_name(org_name)?;
    if state.store.user_by_email(&account.email).await?.is_some() {
        return Err(ApiError::conflict("account-exists", "an account with this email already exists"));
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
            ..Audit::new("server.bootstrap", "success")
        })
        .await?;
    Ok(owner)
}

/// Where the hash of the one-time setup token lives until it is used.
pub const SETUP_TOKEN_SETTING: &str = "setup_token_hash";

/// On a server with no organisation, issues a fresh one-time setup token
/// (replacing any earlier one) and returns it to print.
pub async fn issue_setup_token(state: &SharedState) -> ApiResult<Option<OpaqueToken>> {
    if state.store.count_orgs().await? > 0 {
        state.store.delete_setting(SETUP_TOKEN_SETTING).await?;
        return Ok(None);
    }
    let token = OpaqueToken::generate_with_prefix("setup_");
    state.store.put_setting(SETUP_TOKEN_SETTING, &token.hash().0).await?;
    Ok(Some(token))
}

/// Disables members unused past their organisation's cutoff; returns how many.
pub async fn sweep_dormant_accounts(state: &SharedState) -> ApiResult<usize> {
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
                    ..Audit::new("account.dormant", "success")
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
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalize_email("  Ada@Example.ORG ").unwrap(), "ada@example.org");
        for bad in ["", "ada", "ada@", "@example.org", "ada@example", "a b@example.org", "a@b@example.org", "ada@.org"]
        {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn new_accounts_report_every_problem_at_once() {
        let err = NewAccount::validate("nope", "", "short").err().unwrap();
        let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "display_name", "password"]);
    }
}
