//! Opaque secrets handed to clients (session tokens, invitation tokens,
//! recovery codes). The server stores only their SHA-256: these secrets carry
//! 128+ bits of entropy, so a fast hash is enough and a leaked database yields
//! nothing usable.

use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A random 256-bit bearer secret, base64url without padding (43 chars).
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueToken(String);

impl std::fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpaqueToken(..)")
    }
}

impl OpaqueToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(BASE64URL_NOPAD.encode(&bytes))
    }

    /// A token of a known kind carries a short prefix (`cs_`, `pat_`, `inv_`)
    /// so that secret scanners and humans can tell what leaked.
    pub fn generate_with_prefix(prefix: &str) -> Self {
        Self(format!("{prefix}{}", Self::generate().0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

/// The stored form of a secret: hex SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

impl TokenHash {
    pub fn of(secret: &str) -> Self {
        Self(HEXLOWER.encode(&Sha256::digest(secret.as_bytes())))
    }
}

/// A one-time recovery code, `xxxxx-xxxxx` in lowercase base32 (50 bits):
/// typeable from paper, and only ever a second factor after the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCode(String);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode(..)")
    }
}

const RECOVERY_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

impl RecoveryCode {
    pub const COUNT: usize = 10;

    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let mut text = String::with_capacity(11);
        for i in 0..10 {
            if i == 5 {
                text.push('-');
            }
            text.push(RECOVERY_ALPHABET[(rng.next_u32() % 32) as usize] as char);
        }
        Self(text)
    }

    pub fn generate_set() -> Vec<Self> {
        (0..Self::COUNT).map(|_| Self::generate()).collect()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Hash of the normalised code, so `ABCDE FGHIJ` matches `abcde-fghij`.
    pub fn hash_input(input: &str) -> TokenHash {
        let normalised: String =
            input.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
        TokenHash::of(&normalised)
    }

    pub fn hash(&self) -> TokenHash {
        Self::hash_input(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_long_and_prefixed() {
        let a = OpaqueToken::generate_with_prefix("cs_");
        let b = OpaqueToken::generate_with_prefix("cs_");
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("cs_"));
        assert_eq!(a.as_str().len(), 3 + 43);
        assert_eq!(a.hash().0.len(), 64);
        assert!(!format!("{a:?}").contains(a.as_str()), "Debug never prints a secret");
    }

    #[test]
    fn recovery_codes_normalise_before_hashing() {
        let code = RecoveryCode::generate();
        assert_eq!(code.as_str().len(), 11);
        assert_eq!(RecoveryCode::hash_input(&code.as_str().to_uppercase().replace('-', " ")), code.hash());
        let set = RecoveryCode::generate_set();
        let unique: std::collections::HashSet<_> = set.iter().map(|c| c.as_str().to_owned()).collect();
        assert_eq!(unique.len(), RecoveryCode::COUNT);
    }
}
