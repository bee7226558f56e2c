//! The self-signed certificate a media session presents in its DTLS
//! handshake. Nobody checks it against an authority: its fingerprint travels
//! in the signed-in signaling (SDP's `a=fingerprint`), and that binds it to
//! the session. ECDSA on P-256, which every browser accepts and dimpl signs
//! with.

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::{X509Builder, X509NameBuilder};
use str0m::crypto::dtls::DtlsCert;

/// How long a certificate is valid. A session lasts hours at most, but the
/// peer's clock may be wrong by days.
const VALID_DAYS: u32 = 30;

/// A fresh key pair and a certificate for it: the certificate in DER, the
/// private key in PKCS #8 DER, as dimpl reads them.
pub(crate) fn self_signed() -> Result<DtlsCert, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;

    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, "Conclave media session")?;
    let name = name.build();

    let mut serial = BigNum::new()?;
    serial.rand(63, MsbOption::MAYBE_ZERO, false)?;

    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let serial = Asn1Integer::from_bn(&serial)?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    // A day back, for peers whose clocks run behind.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (not_before, not_after) =
        (Asn1Time::from_unix(now.saturating_sub(86_400) as i64)?, Asn1Time::days_from_now(VALID_DAYS)?);
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.sign(&key, MessageDigest::sha256())?;

    Ok(DtlsCert { certificate: builder.build().to_der()?, private_key: key.private_key_to_pkcs8()? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::X509;

    #[test]
    fn each_certificate_is_new_signed_by_its_own_key_and_valid_now() {
        let first = self_signed().unwrap();
        let second = self_signed().unwrap();
        assert_ne!(first.certificate, second.certificate);
        assert_ne!(first.private_key, second.private_key);

        let certificate = X509::from_der(&first.certificate).unwrap();
        let key = PKey::private_key_from_pkcs8(&first.private_key).unwrap();
        assert!(certificate.verify(&key).unwrap(), "self-signed with the key it carries");
        assert!(certificate.public_key().unwrap().public_eq(&key));
        let now = Asn1Time::days_from_now(0).unwrap();
        assert!(certificate.not_before() < now && now < certificate.not_after());
    }
}
