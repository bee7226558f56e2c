//! Passkeys through the API, with a software authenticator that does what
//! a browser and a platform authenticator do (P-256 keys, CBOR attestation
//! "none", signed assertions with a counter): several registered, named,
//! removed; used alone and after the password; refused when the answer is
//! for another origin (a phishing page), another challenge, another
//! account, replayed, or from a clone whose counter fell behind; and an
//! organisation's demand for phishing-resistant factors.

use crate::support::{TestServer, PASSWORD};
use crate::{assert_problem, on_both_engines};
use conclave_proto::*;
use conclave_store::Engine;
use data_encoding::BASE64URL_NOPAD as B64;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// A credential the authenticator keeps.
#[derive(Clone)]
struct Credential {
    id: Vec<u8>,
    key: SigningKey,
    user_handle: Vec<u8>,
    counter: u32,
}

/// A platform authenticator in software, bound to the page origin a
/// browser would report.
#[derive(Clone)]
pub(crate) struct Authenticator {
    origin: String,
    credentials: Vec<Credential>,
}

/// Just enough CBOR (RFC 8949) for an attestation object and a COSE key.
fn cbor_head(major: u8, len: u64, out: &mut Vec<u8>) {
    let major = major << 5;
    match len {
        0..=23 => out.push(major | len as u8),
        24..=0xff => out.extend([major | 24, len as u8]),
        _ => {
            out.push(major | 25);
            out.extend((len as u16).to_be_bytes());
        }
    }
}
fn cbor_int(value: i64, out: &mut Vec<u8>) {
    if value >= 0 {
        cbor_head(0, value as u64, out)
    } else {
        cbor_head(1, (-1 - value) as u64, out)
    }
}
fn cbor_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    cbor_head(2, bytes.len() as u64, out);
    out.extend(bytes);
}
fn cbor_text(text: &str, out: &mut Vec<u8>) {
    cbor_head(3, text.len() as u64, out);
    out.extend(text.as_bytes());
}

impl Authenticator {
    pub(crate) fn at(origin: &str) -> Self {
        Self { origin: origin.to_owned(), credentials: Vec::new() }
    }

    fn rp_id(&self) -> String {
        let host = self.origin.split("://").nth(1).unwrap();
        host.split(':').next().unwrap().to_owned()
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        let challenge = options["publicKey"]["challenge"].as_str().expect("a challenge");
        json!({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    /// `navigator.credentials.create`: a new key pair for the account the
    /// options name, answered as `PublicKeyCredential.toJSON()` does.
    pub(crate) fn create(&mut self, options: &Value) -> Value {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let id: Vec<u8> = (0..16).map(|_| rand::random::<u8>()).collect();
        let user_handle = B64.decode(options["publicKey"]["user"]["id"].as_str().unwrap().as_bytes()).unwrap();
        let point = key.verifying_key().to_encoded_point(false);
        let mut cose = Vec::new();
        cbor_head(5, 5, &mut cose);
        cbor_int(1, &mut cose);
        cbor_int(2, &mut cose); // kty: EC2
        cbor_int(3, &mut cose);
        cbor_int(-7, &mut cose); // alg: ES256
        cbor_int(-1, &mut cose);
        cbor_int(1, &mut cose); // crv: P-256
        cbor_int(-2, &mut cose);
        cbor_bytes(point.x().unwrap(), &mut cose);
        cbor_int(-3, &mut cose);
        cbor_bytes(point.y().unwrap(), &mut cose);
        let mut auth_data = Sha256::digest(self.rp_id().as_bytes()).to_vec();
        auth_data.push(0x45); // user present, user verified, attested credential data
        auth_data.extend(0u32.to_be_bytes());
        auth_data.extend([0u8; 16]); // AAGUID
        auth_data.extend((id.len() as u16).to_be_bytes());
        auth_data.extend(&id);
        auth_data.extend(&cose);
        let mut attestation = Vec::new();
        cbor_head(5, 3, &mut attestation);
        cbor_text("fmt", &mut attestation);
        cbor_text("none", &mut attestation);
        cbor_text("attStmt", &mut attestation);
        cbor_head(5, 0, &mut attestation);
        cbor_text("authData", &mut attestation);
        cbor_bytes(&auth_data, &mut attestation);
        let client_data = self.client_data("webauthn.create", options);
        self.credentials.push(Credential { id: id.clone(), key, user_handle, counter: 0 });
        json!({
            "id": B64.encode(&id), "rawId": B64.encode(&id), "type": "public-key",
            "response": {"attestationObject": B64.encode(&attestation), "clientDataJSON": B64.encode(&client_data), "transports": ["internal"]},
            "clientExtensionResults": {},
        })
    }

    /// `navigator.credentials.get`: signs with an allowed credential, or
    /// (for a discoverable request) the first it holds.
    pub(crate) fn get(&mut self, options: &Value) -> Value {
        let allowed: Vec<Vec<u8>> = options["publicKey"]["allowCredentials"]
            .as_array()
            .map(|list| list.iter().map(|c| B64.decode(c["id"].as_str().unwrap().as_bytes()).unwrap()).collect())
            .unwrap_or_default();
        let index = self
            .credentials
            .iter()
            .position(|c| allowed.is_empty() || allowed.contains(&c.id))
            .expect("the authenticator holds an allowed credential");
        self.credentials[index].counter += 1;
        let client_data = self.client_data("webauthn.get", options);
        let credential = self.credentials[index].clone();
        let mut auth_data = Sha256::digest(self.rp_id().as_bytes()).to_vec();
        auth_data.push(0x05); // user present, user verified
        auth_data.extend(credential.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature: DerSignature = credential.key.sign(&signed);
        json!({
            "id": B64.encode(&credential.id), "rawId": B64.encode(&credential.id), "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(&auth_data), "clientDataJSON": B64.encode(&client_data),
                "signature": B64.encode(signature.as_bytes()), "userHandle": B64.encode(&credential.user_handle),
            },
            "clientExtensionResults": {},
        })
    }
}

/// A server whose public URL has a host name (browsers refuse IP
/// addresses as relying party ids), its organisation and owner.
async fn server(engine: Engine) -> (TestServer, conclave_client::Client, String, String) {
    let srv = TestServer::start_with(engine, |c| c.public_url = format!("http://localhost:{}", c.listen.port())).await;
    let origin = srv.state.config.public_url.clone();
    let (owner, login) = srv.org_with_owner("owner@acme.test", "Acme").await;
    (srv, owner, login.user.org_id.unwrap(), origin)
}

async fn register(client: &conclave_client::Client, authenticator: &mut Authenticator, name: &str) -> Passkey {
    let challenge = client.passkey_registration_challenge().await.expect("a registration challenge");
    let credential = authenticator.create(&challenge.options);
    client
        .register_passkey(&RegisterPasskeyRequest { ceremony_id: challenge.ceremony_id, credential, name: name.into() })
        .await
        .expect("the passkey registers")
}

fn password_login(email: &str, passkey: Option<PasskeyResponse>) -> LoginRequest {
    LoginRequest { email: email.into(), password: PASSWORD.into(), totp_code: None, recovery_code: None, passkey }
}

/// The passkey challenge a password sign-in is answered with.
async fn second_factor_challenge(srv: &TestServer, email: &str, code: &str) -> PasskeyChallenge {
    match srv.client().login(&password_login(email, None)).await {
        Err(conclave_client::ClientError::Api(problem)) => {
            assert_eq!(problem.code(), code);
            problem.passkey.expect("the problem carries a passkey challenge")
        }
        other => panic!("expected {code}, got {other:?}"),
    }
}

async fn passkeys_sign_in_alone_and_after_the_password(engine: Engine) {
    let (srv, owner, _, origin) = server(engine).await;
    let mut laptop = Authenticator::at(&origin);
    let first = register(&owner, &mut laptop, "  Laptop ").await;
    assert_eq!(first.name, "Laptop");
    srv.clock.advance(Duration::from_secs(1));
    let mut phone = Authenticator::at(&origin);
    register(&owner, &mut phone, "Phone").await;
    owner.rename_passkey(&first.id, "Work laptop").await.unwrap();
    let names: Vec<String> = owner.passkeys().await.unwrap().passkeys.into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["Work laptop", "Phone"]);
    assert_problem!(owner.rename_passkey(&first.id, "").await, 422, "validation-failed");
    // The same authenticator's credential again is refused (excluded, and unique).
    let again = owner.passkey_registration_challenge().await.unwrap();
    let excluded = again.options["publicKey"]["excludeCredentials"].as_array().unwrap();
    assert_eq!(excluded.len(), 2, "the browser is told which passkeys exist");

    // Alone: no address typed; the passkey names its account.
    let challenge = srv.client().passkey_sign_in_challenge().await.unwrap();
    assert!(challenge.options["publicKey"].get("allowCredentials").is_none_or(|c| c.as_array().unwrap().is_empty()));
    let answer =
        PasskeyResponse { ceremony_id: challenge.ceremony_id.clone(), credential: laptop.get(&challenge.options) };
    let signed_in = srv.client().passkey_sign_in(&answer).await.expect("signed in with the passkey alone");
    assert_eq!(signed_in.user.email, "owner@acme.test");
    assert!(!signed_in.two_factor_enrollment_required);
    // The same answer again: the challenge is used.
    assert_problem!(srv.client().passkey_sign_in(&answer).await, 401, "invalid-passkey");
    assert!(owner.passkeys().await.unwrap().passkeys[0].last_used_at_ms.is_some());

    // After the password, instead of a code.
    let challenge = second_factor_challenge(&srv, "owner@acme.test", "totp-required").await;
    let answer = PasskeyResponse { ceremony_id: challenge.ceremony_id, credential: phone.get(&challenge.options) };
    let login =
        srv.client().login(&password_login("owner@acme.test", Some(answer))).await.expect("password and passkey");
    assert_eq!(login.user.email, "owner@acme.test");
    // Without the passkey the password alone is not enough now.
    assert_problem!(srv.client().login(&password_login("owner@acme.test", None)).await, 401, "totp-required");

    // Removed, it signs in no more.
    owner.remove_passkey(&first.id).await.unwrap();
    let challenge = srv.client().passkey_sign_in_challenge().await.unwrap();
    let answer = PasskeyResponse { ceremony_id: challenge.ceremony_id, credential: laptop.get(&challenge.options) };
    assert_problem!(srv.client().passkey_sign_in(&answer).await, 401, "invalid-passkey");
    assert_problem!(owner.remove_passkey(&first.id).await, 404, "not-found");
    assert_eq!(srv.audit_count("auth.passkey", "success").await, 4, "two registered, one renamed, one removed");
}

async fn passkey_answers_that_do_not_hold_are_refused(engine: Engine) {
    let (srv, owner, org_id, origin) = server(engine).await;
    let mut laptop = Authenticator::at(&origin);
    register(&owner, &mut laptop, "Laptop").await;
    let (member, _) = srv.add_member(&owner, &org_id, "bob@acme.test", OrgRole::Member).await;
    let mut bobs = Authenticator::at(&origin);
    register(&member, &mut bobs, "Bob's key").await;

    let refused = |challenge: &PasskeyChallenge, credential: Value| {
        let answer = PasskeyResponse { ceremony_id: challenge.ceremony_id.clone(), credential };
        let client = srv.client();
        async move { client.passkey_sign_in(&answer).await }
    };
    // A phishing page's origin: the browser reports it, the server refuses it.
    let challenge = srv.client().passkey_sign_in_challenge().await.unwrap();
    let mut phished = laptop.clone();
    phished.origin = "http://acme-login.example".into();
    assert_problem!(refused(&challenge, phished.get(&challenge.options)).await, 401, "invalid-passkey");
    // An answer to another challenge.
    let one = srv.client().passkey_sign_in_challenge().await.unwrap();
    let other = srv.client().passkey_sign_in_challenge().await.unwrap();
    assert_problem!(refused(&one, laptop.get(&other.options)).await, 401, "invalid-passkey");
    // A clone whose counter fell behind the original's.
    let clone = laptop.clone();
    let challenge = srv.client().passkey_sign_in_challenge().await.unwrap();
    srv.client()
        .passkey_sign_in(&PasskeyResponse {
            ceremony_id: challenge.ceremony_id,
            credential: laptop.get(&challenge.options),
        })
        .await
        .expect("the original signs in");
    let mut clone = clone;
    let challenge = srv.client().passkey_sign_in_challenge().await.unwrap();
    assert_problem!(refused(&challenge, clone.get(&challenge.options)).await, 401, "invalid-passkey");
    // Bob's passkey for the owner's second-factor challenge.
    let challenge = second_factor_challenge(&srv, "owner@acme.test", "totp-required").await;
    let mut bob_for_owner = bobs.clone();
    bob_for_owner.credentials[0].id = laptop.credentials[0].id.clone();
    let answer = PasskeyResponse {
        ceremony_id: challenge.ceremony_id.clone(),
        credential: bobs.get(&json!({"publicKey": {"challenge": challenge.options["publicKey"]["challenge"]}})),
    };
    assert_problem!(srv.client().login(&password_login("owner@acme.test", Some(answer))).await, 401, "invalid-passkey");
    let answer =
        PasskeyResponse { ceremony_id: challenge.ceremony_id, credential: bob_for_owner.get(&challenge.options) };
    assert_problem!(srv.client().login(&password_login("owner@acme.test", Some(answer))).await, 401, "invalid-passkey");
    // Garbage is a clear refusal, not a failure of the server.
    let challenge = srv.client().passkey_sign_in_challenge().await.unwrap();
    assert_problem!(refused(&challenge, json!({"id": 7})).await, 401, "invalid-passkey");
    // A registration needs a recent sign-in, in a browser: not an access
    // token (made at any time, it would make an old session new).
    let token = owner
        .create_access_token(&CreateAccessTokenRequest { name: "script".into(), expires_in_days: None })
        .await
        .unwrap();
    let script = srv.client().authenticated(&token.token);
    assert_problem!(script.passkey_registration_challenge().await, 403, "forbidden");
    srv.clock.advance(Duration::from_secs(16 * 60));
    assert_problem!(owner.passkey_registration_challenge().await, 403, "forbidden");
}

async fn an_organisation_may_require_phishing_resistant_factors(engine: Engine) {
    let (srv, owner, org_id, origin) = server(engine).await;
    let (_, _) = srv.add_member(&owner, &org_id, "bob@acme.test", OrgRole::Member).await;
    let update = OrgPolicyUpdate { require_phishing_resistant: Some(Setting::locked(true)), ..Default::default() };
    owner.update_org_policy(&org_id, &update).await.unwrap();

    // Bob's password alone lets him do nothing but enrol a passkey.
    let login = srv.client().login(&password_login("bob@acme.test", None)).await.unwrap();
    assert!(login.two_factor_enrollment_required);
    let bob = srv.client().authenticated(&login.token);
    assert_problem!(bob.list_meetings(false).await, 403, "two-factor-enrollment-required");
    let mut key = Authenticator::at(&origin);
    let passkey = register(&bob, &mut key, "Bob's laptop").await;
    // Now that he has one, the password session (what a phishing page can
    // relay, with a recovery code) adds no other.
    assert_problem!(bob.passkey_registration_challenge().await, 403, "forbidden");
    // From now on the password needs the passkey after it, and a code will not do.
    let challenge = second_factor_challenge(&srv, "bob@acme.test", "passkey-required").await;
    let answer = PasskeyResponse { ceremony_id: challenge.ceremony_id, credential: key.get(&challenge.options) };
    let login = srv.client().login(&password_login("bob@acme.test", Some(answer))).await.unwrap();
    assert!(!login.two_factor_enrollment_required);
    let bob = srv.client().authenticated(&login.token);
    bob.list_meetings(false).await.expect("a passkey session does everything");
    let mut with_code = password_login("bob@acme.test", None);
    with_code.totp_code = Some("123456".into());
    assert_problem!(srv.client().login(&with_code).await, 401, "passkey-required");
    // His only passkey stays while the policy asks for one.
    assert_problem!(bob.remove_passkey(&passkey.id).await, 403, "forbidden");
    // His passkey session adds another.
    register(&bob, &mut Authenticator::at(&origin), "Bob's phone").await;
}

on_both_engines!(
    passkeys_sign_in_alone_and_after_the_password,
    passkey_answers_that_do_not_hold_are_refused,
    an_organisation_may_require_phishing_resistant_factors,
);
