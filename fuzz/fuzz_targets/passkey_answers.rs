//! What a browser sends back from its authenticator, fed arbitrary bytes:
//! the JSON, then the attestation object (CBOR, COSE key) and assertion
//! inside it, through the same relying party the server runs. Nothing
//! panics; anything that is not a genuine answer is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use webauthn_rs::prelude::{
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

struct Ceremonies {
    webauthn: Webauthn,
    registration: PasskeyRegistration,
}

fn ceremonies() -> &'static Ceremonies {
    static CEREMONIES: OnceLock<Ceremonies> = OnceLock::new();
    CEREMONIES.get_or_init(|| {
        let origin = Url::parse("https://meet.example.org").unwrap();
        let webauthn = WebauthnBuilder::new("meet.example.org", &origin).unwrap().build().unwrap();
        let (_, registration) =
            webauthn.start_passkey_registration(Uuid::nil(), "ada@example.org", "Ada", None).unwrap();
        Ceremonies { webauthn, registration }
    })
}

fuzz_target!(|data: &[u8]| {
    let c = ceremonies();
    if let Ok(credential) = serde_json::from_slice::<RegisterPublicKeyCredential>(data) {
        assert!(c.webauthn.finish_passkey_registration(&credential, &c.registration).is_err());
    }
    if let Ok(credential) = serde_json::from_slice::<PublicKeyCredential>(data) {
        let _ = c.webauthn.identify_discoverable_authentication(&credential);
    }
    let _ = serde_json::from_slice::<conclave_proto::PasskeyResponse>(data);
    let _ = serde_json::from_slice::<conclave_proto::RegisterPasskeyRequest>(data);
    let _ = serde_json::from_slice::<conclave_proto::CreateIdentityProviderRequest>(data);
    let _ = serde_json::from_slice::<conclave_proto::UpdateIdentityProviderRequest>(data);
});
