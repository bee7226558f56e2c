//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP), as every
//! authenticator app implements them: HMAC-SHA1, 6 digits, 30-second steps.
//!
//! Verification returns the time step that matched so the caller can refuse
//! any code from that step or an earlier one: a TOTP code is single-use.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: u32 = 6;
/// Steps either side of now that are accepted, for clock skew and typing time.
pub const SKEW_STEPS: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("the code must be {DIGITS} digits")]
    Malformed,
    #[error("the code is wrong or expired")]
    Wrong,
    #[error("the code has already been used")]
    Replayed,
}

/// A TOTP secret (20 random bytes, as RFC 4226 recommends for SHA-1).
#[derive(Clone, PartialEq, Eq)]
pub struct Totp {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Totp(..)")
    }
}

impl Totp {
    pub fn generate() -> Self {
        let mut secret = vec![0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Self { secret }
    }

    pub fn from_bytes(secret: Vec<u8>) -> Self {
        Self { secret }
    }

    /// Parses the base32 form shown to users (spaces and case ignored).
    pub fn from_base32(text: &str) -> Option<Self> {
        let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
        let cleaned = cleaned.trim_end_matches('=');
        BASE32_NOPAD.decode(cleaned.as_bytes()).ok().filter(|s| !s.is_empty()).map(Self::from_bytes)
    }

    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.secret)
    }

    /// The `otpauth://` URI that authenticator apps read from a QR code.
    pub fn provisioning_uri(&self, issuer: &str, account: &str) -> String {
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            percent_encode(issuer),
            percent_encode(account),
            self.to_base32(),
            percent_encode(issuer),
        )
    }

    pub fn step_at(unix_seconds: u64) -> u64 {
        unix_seconds / STEP_SECONDS
    }

    /// The code for a time step (HOTP with the step as counter).
    pub fn code_at_step(&self, step: u64, digits: u32) -> String {
        let mut mac = Hmac::<Sha1>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(&step.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let offset = (digest[digest.len() - 1] & 0x0f) as usize;
        let binary =
            u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
        format!("{:0width$}", binary % 10u32.pow(digits), width = digits as usize)
    }

    pub fn code_at(&self, unix_seconds: u64) -> String {
        self.code_at_step(Self::step_at(unix_seconds), DIGITS)
    }

    /// Checks `code` at `unix_seconds`, refusing steps at or before
    /// `last_used_step`. Returns the matched step, which the caller stores.
    pub fn verify(&self, code: &str, unix_seconds: u64, last_used_step: Option<u64>) -> Result<u64, TotpError> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TotpError::Malformed);
        }
        let now = Self::step_at(unix_seconds);
        let mut replayed = false;
        for step in now.saturating_sub(SKEW_STEPS)..=now + SKEW_STEPS {
            let candidate = self.code_at_step(step, DIGITS);
            if subtle::ConstantTimeEq::ct_eq(candidate.as_bytes(), code.as_bytes()).into() {
                if last_used_step.is_some_and(|last| step <= last) {
                    replayed = true;
                    continue;
                }
                return Ok(step);
            }
        }
        Err(if replayed { TotpError::Replayed } else { TotpError::Wrong })
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 column (8 digits).
    #[test]
    fn matches_rfc6238_vectors() {
        let totp = Totp::from_bytes(b"12345678901234567890".to_vec());
        for (time, expected) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.code_at_step(Totp::step_at(time), 8), expected, "t={time}");
        }
    }

    #[test]
    fn accepts_adjacent_steps_and_refuses_replay() {
        let totp = Totp::generate();
        let now = 1_700_000_000;
        let code = totp.code_at(now);
        let step = totp.verify(&code, now, None).expect("fresh code verifies");
        assert_eq!(totp.verify(&code, now, Some(step)), Err(TotpError::Replayed));
        let previous = totp.code_at(now - STEP_SECONDS);
        assert_eq!(totp.verify(&previous, now, Some(step)), Err(TotpError::Replayed));
        let next = totp.code_at(now + STEP_SECONDS);
        assert_eq!(totp.verify(&next, now, Some(step)), Ok(step + 1));
        assert_eq!(totp.verify(&totp.code_at(now - 5 * STEP_SECONDS), now, None), Err(TotpError::Wrong));
        assert_eq!(totp.verify("12a456", now, None), Err(TotpError::Malformed));
    }

    #[test]
    fn base32_round_trips_and_uri_names_the_issuer() {
        let totp = Totp::generate();
        let parsed = Totp::from_base32(&totp.to_base32().to_lowercase()).unwrap();
        assert_eq!(parsed, totp);
        let uri = totp.provisioning_uri("Conclave", "ada@example.org");
        assert!(uri.starts_with("otpauth://totp/Conclave:ada@example.org?secret="));
        assert!(uri.contains("issuer=Conclave"));
    }
}
