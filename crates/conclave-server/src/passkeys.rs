//! Passkeys (WebAuthn), the relying party's half: registering one, and the
//! two ways of using one — after the password in place of an authenticator
//! app's code, or alone (a discoverable credential names its account, so
//! nobody types an address and nothing tells whether an address has an
//! account). The ceremonies' state is kept in the database between their
//! halves, single use, for five minutes; the browser never holds it.
//!
//! A passkey is bound to the server's public URL: its host name is the
//! relying party id, and only pages of its origin can use it, which is what
//! makes a passkey resistant to phishing. Browsers refuse IP addresses as
//! relying party ids, so a server reached by address has no passkeys.

use crate::accounts::{AccountError, AccountResult};
use crate::state::SharedState;
use conclave_proto::{PasskeyChallenge, PasskeyResponse};
use conclave_store::{PasskeyRow, UserRow};
use data_encoding::BASE64URL_NOPAD;
use serde_json::Value;
use std::time::Duration;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// How long the person has to answer their authenticator.
const CEREMONY_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// The most passkeys one account keeps.
pub const MAX_PASSKEYS: usize = 20;
pub const MAX_NAME_CHARS: usize = 64;

const REGISTER: &str = "register";
const SECOND_FACTOR: &str = "second_factor";
const SIGN_IN: &str = "sign_in";

/// The relying party, when the public URL allows passkeys.
pub fn relying_party(public_url: &str) -> Option<Webauthn> {
    let url = Url::parse(public_url).ok()?;
    let host = url.domain()?.to_owned();
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    match WebauthnBuilder::new(&host, &origin).and_then(|b| b.rp_name("Conclave").build()) {
        Ok(webauthn) => Some(webauthn),
        Err(err) => {
            tracing::warn!(error = %err, public_url, "passkeys are off: the public URL cannot be a relying party");
            None
        }
    }
}

fn authority(state: &SharedState) -> AccountResult<&Webauthn> {
    state.webauthn.as_ref().ok_or(AccountError::InvalidPasskey(
        "passkeys need the server's public URL to have a host name (not an IP address)",
    ))
}

fn user_handle(user: &UserRow) -> AccountResult<Uuid> {
    Uuid::parse_str(&user.id).map_err(|_| AccountError::InvalidPasskey("this account cannot hold passkeys"))
}

pub fn credential_id_text(id: &[u8]) -> String {
    BASE64URL_NOPAD.encode(id)
}

async fn keep(
    state: &SharedState,
    user: Option<&str>,
    purpose: &str,
    ceremony: &impl serde::Serialize,
) -> AccountResult<String> {
    let now = state.now_ms();
    let text = serde_json::to_string(ceremony).expect("ceremony state serialises");
    Ok(state.store.put_passkey_ceremony(user, purpose, &text, now + CEREMONY_LIFETIME.as_millis() as i64, now).await?)
}

async fn take<T: serde::de::DeserializeOwned>(
    state: &SharedState,
    id: &str,
    purpose: &str,
) -> AccountResult<(Option<String>, T)> {
    let (user, text) = state
        .store
        .take_passkey_ceremony(id, purpose, state.now_ms())
        .await?
        .ok_or(AccountError::InvalidPasskey("this challenge is unknown, used or expired; start again"))?;
    let ceremony =
        serde_json::from_str(&text).map_err(|_| AccountError::InvalidPasskey("this challenge is damaged"))?;
    Ok((user, ceremony))
}

fn options(challenge: &impl serde::Serialize) -> Value {
    let mut options = serde_json::to_value(challenge).expect("WebAuthn options serialise");
    strip_nulls(&mut options);
    options
}

/// Browsers' option parsers take absent members, not `null` ones.
fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Starts registering a passkey for `user` (not one it already has).
pub async fn start_registration(state: &SharedState, user: &UserRow) -> AccountResult<PasskeyChallenge> {
    let webauthn = authority(state)?;
    let existing = state.store.passkeys_of(&user.id).await?;
    if existing.len() >= MAX_PASSKEYS {
        return Err(AccountError::field("passkeys", format!("an account keeps at most {MAX_PASSKEYS} passkeys")));
    }
    let exclude = existing
        .iter()
        .map(|p| BASE64URL_NOPAD.decode(p.credential_id.as_bytes()).unwrap_or_default().into())
        .collect();
    let (creation, registration) = webauthn
        .start_passkey_registration(user_handle(user)?, &user.email, &user.display_name, Some(exclude))
        .map_err(|_| AccountError::InvalidPasskey("a passkey cannot be registered now"))?;
    let mut options = options(&creation);
    // A passkey that names its account lets its owner sign in without
    // typing anything: ask the authenticator to keep it (discoverable).
    if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(Value::as_object_mut) {
        selection.insert("residentKey".into(), "preferred".into());
    }
    let ceremony_id = keep(state, Some(&user.id), REGISTER, &registration).await?;
    Ok(PasskeyChallenge { ceremony_id, options })
}

/// Finishes registering: the authenticator's answer must hold for the
/// challenge given to this same account.
pub async fn finish_registration(
    state: &SharedState,
    user: &UserRow,
    answer: &PasskeyResponse,
    name: &str,
) -> AccountResult<PasskeyRow> {
    let webauthn = authority(state)?;
    let name = passkey_name(name)?;
    let (owner, registration): (_, PasskeyRegistration) = take(state, &answer.ceremony_id, REGISTER).await?;
    if owner.as_deref() != Some(user.id.as_str()) {
        return Err(AccountError::InvalidPasskey("this challenge was given to another account"));
    }
    let credential: RegisterPublicKeyCredential = serde_json::from_value(answer.credential.clone())
        .map_err(|_| AccountError::InvalidPasskey("the authenticator's answer is not a WebAuthn credential"))?;
    let passkey = webauthn
        .finish_passkey_registration(&credential, &registration)
        .map_err(|_| AccountError::InvalidPasskey("the authenticator's answer does not hold"))?;
    let id = credential_id_text(passkey.cred_id().as_ref());
    let stored = serde_json::to_string(&passkey).expect("a passkey serialises");
    state.store.add_passkey(&user.id, &id, &name, &stored, state.now_ms()).await.map_err(|err| match err {
        conclave_store::StoreError::Conflict(_) => AccountError::InvalidPasskey("this passkey is registered already"),
        other => other.into(),
    })
}

/// A passkey's name: trimmed, 1–64 characters, no control characters.
pub fn passkey_name(name: &str) -> AccountResult<String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AccountError::field(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters, without control characters"),
        ));
    }
    Ok(name.to_owned())
}

fn stored(row: &PasskeyRow) -> AccountResult<Passkey> {
    serde_json::from_str(&row.credential).map_err(|_| AccountError::CorruptSecret)
}

/// The challenge one of `user`'s passkeys answers after the password.
pub async fn start_second_factor(
    state: &SharedState,
    user: &UserRow,
    passkeys: &[PasskeyRow],
) -> AccountResult<PasskeyChallenge> {
    let webauthn = authority(state)?;
    let keys: Vec<Passkey> = passkeys.iter().map(stored).collect::<AccountResult<_>>()?;
    let (request, authentication) = webauthn
        .start_passkey_authentication(&keys)
        .map_err(|_| AccountError::InvalidPasskey("a passkey cannot be used now"))?;
    let ceremony_id = keep(state, Some(&user.id), SECOND_FACTOR, &authentication).await?;
    Ok(PasskeyChallenge { ceremony_id, options: options(&request) })
}

/// Checks a passkey's answer after the password: for this account's
/// challenge, by one of its passkeys, signed, with the person verified.
pub async fn finish_second_factor(state: &SharedState, user: &UserRow, answer: &PasskeyResponse) -> AccountResult<()> {
    let webauthn = authority(state)?;
    let (owner, authentication): (_, PasskeyAuthentication) = take(state, &answer.ceremony_id, SECOND_FACTOR).await?;
    if owner.as_deref() != Some(user.id.as_str()) {
        return Err(AccountError::InvalidPasskey("this challenge was given to another account"));
    }
    let credential = assertion(answer)?;
    let row = state
        .store
        .passkey_by_credential_id(&credential_id_text(credential.get_credential_id()))
        .await?
        .filter(|row| row.user_id == user.id)
        .ok_or(AccountError::InvalidPasskey("this passkey is not one of this account's"))?;
    let result = webauthn
        .finish_passkey_authentication(&credential, &authentication)
        .map_err(|_| AccountError::InvalidPasskey("the passkey's answer does not hold"))?;
    used(state, &row, &result).await
}

/// The challenge for signing in with a passkey alone.
pub async fn start_sign_in(state: &SharedState) -> AccountResult<PasskeyChallenge> {
    let webauthn = authority(state)?;
    let (request, authentication) = webauthn
        .start_discoverable_authentication()
        .map_err(|_| AccountError::InvalidPasskey("a passkey cannot be used now"))?;
    let mut options = options(&request);
    // Asked for by a button, not offered in the address field's autofill.
    if let Some(map) = options.as_object_mut() {
        map.remove("mediation");
    }
    let ceremony_id = keep(state, None, SIGN_IN, &authentication).await?;
    Ok(PasskeyChallenge { ceremony_id, options })
}

/// Checks a passkey's answer to a sign-in challenge and returns the account
/// it names (the passkey's own account, checked against the handle it gave).
pub async fn finish_sign_in(state: &SharedState, answer: &PasskeyResponse) -> AccountResult<UserRow> {
    let webauthn = authority(state)?;
    let (_, authentication): (_, DiscoverableAuthentication) = take(state, &answer.ceremony_id, SIGN_IN).await?;
    let credential = assertion(answer)?;
    let (handle, credential_id) = webauthn
        .identify_discoverable_authentication(&credential)
        .map_err(|_| AccountError::InvalidPasskey("the passkey did not say whose it is"))?;
    let row = state
        .store
        .passkey_by_credential_id(&credential_id_text(credential_id))
        .await?
        .filter(|row| Uuid::parse_str(&row.user_id).is_ok_and(|id| id == handle))
        .ok_or(AccountError::InvalidPasskey("this passkey is not registered here"))?;
    let passkey = stored(&row)?;
    let result = webauthn
        .finish_discoverable_authentication_v2(&credential, authentication, &passkey)
        .map_err(|_| AccountError::InvalidPasskey("the passkey's answer does not hold"))?;
    used(state, &row, &result).await?;
    state.store.user_by_id(&row.user_id).await?.ok_or(AccountError::InvalidPasskey("this passkey's account is gone"))
}

fn assertion(answer: &PasskeyResponse) -> AccountResult<PublicKeyCredential> {
    serde_json::from_value(answer.credential.clone())
        .map_err(|_| AccountError::InvalidPasskey("the authenticator's answer is not a WebAuthn assertion"))
}

/// Keeps the passkey's new counter (a clone would fall behind it).
async fn used(
    state: &SharedState,
    row: &PasskeyRow,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> AccountResult<()> {
    let mut passkey = stored(row)?;
    passkey.update_credential(result);
    let text = serde_json::to_string(&passkey).expect("a passkey serialises");
    Ok(state.store.passkey_used(&row.id, &text, state.now_ms()).await?)
}
