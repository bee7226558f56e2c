//! Password rules in the spirit of NIST SP 800-63B: length over composition,
//! no very common passwords, nothing derived from the account itself; and
//! Argon2id hashing with the parameters OWASP recommends.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashSet;
use std::sync::OnceLock;

/// Shipped in the repository so the check needs no network: the most used
/// passwords from public breach corpora and their obvious variants.
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 256;
/// What an account with no password stores instead of a hash (one
/// provisioned by its organisation's identity provider, until its person
/// sets one): no password matches it.
pub const NO_PASSWORD: &str = "!no-password";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_LENGTH} characters long")]
    TooShort,
    #[error("password must be at most {MAX_LENGTH} characters long")]
    TooLong,
    #[error("password is one of the most commonly used passwords")]
    Common,
    #[error("password must not contain your email address or name")]
    ContainsIdentity,
    #[error("password is a single repeated character or a simple sequence")]
    Trivial,
}

/// What a new password must satisfy. Composition rules ("one digit, one
/// symbol") are deliberately absent: they make passwords worse, not better.
#[derive(Debug, Clone, Copy, Default)]
pub struct PasswordPolicy;

impl PasswordPolicy {
    /// Checks `password` for an account with this email and display name.
    pub fn check(&self, password: &str, email: &str, display_name: &str) -> Result<(), PasswordError> {
        let length = password.chars().count();
        if length < MIN_LENGTH {
            return Err(PasswordError::TooShort);
        }
        if length > MAX_LENGTH {
            return Err(PasswordError::TooLong);
        }
        let folded = password.to_lowercase();
        if is_common(&folded) {
            return Err(PasswordError::Common);
        }
        if is_trivial(&folded) {
            return Err(PasswordError::Trivial);
        }
        let local_part = email.split('@').next().unwrap_or_default().to_lowercase();
        let identity = [local_part, display_name.to_lowercase()];
        if identity.iter().any(|part| part.chars().count() >= 4 && folded.contains(part.as_str())) {
            return Err(PasswordError::ContainsIdentity);
        }
        Ok(())
    }
}

fn common_set() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).collect()
    })
}

/// A password is common when it, or it with trailing digits and punctuation
/// stripped ("password123!"), is on the list.
fn is_common(folded: &str) -> bool {
    let set = common_set();
    let stem = folded.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    set.contains(folded) || (stem.len() >= 4 && set.contains(stem))
}

/// One repeated character, or a run of consecutive code points ("abcdefghij",
/// "9876543210").
fn is_trivial(folded: &str) -> bool {
    let chars: Vec<char> = folded.chars().collect();
    let same = chars.windows(2).all(|w| w[0] == w[1]);
    let step = |d: i64| chars.windows(2).all(|w| w[1] as i64 - w[0] as i64 == d);
    same || step(1) || step(-1)
}

/// Argon2id with OWASP's minimum (19 MiB, 2 passes, 1 lane) by default.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    /// A hash of a random password, verified against when an account does not
    /// exist so that both cases cost the same time.
    decoy: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").finish_non_exhaustive()
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new(19 * 1024, 2, 1)
    }
}

impl PasswordHasher {
    pub fn new(memory_kib: u32, passes: u32, lanes: u32) -> Self {
        let params = Params::new(memory_kib, passes, lanes, None).expect("valid argon2 parameters");
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self { argon2, decoy: String::new() };
        hasher.decoy = hasher.hash(&crate::secret::OpaqueToken::generate().into_string());
        hasher
    }

    /// A PHC string (`$argon2id$v=19$m=...`) with a fresh random salt.
    pub fn hash(&self, password: &str) -> String {
        let salt = SaltString::generate(&mut OsRng);
        argon2::PasswordHasher::hash_password(&self.argon2, password.as_bytes(), &salt)
            .expect("argon2 hashing cannot fail with valid parameters")
            .to_string()
    }

    /// Constant-time verification against a stored PHC string. An unparsable
    /// stored hash never verifies.
    /// Whether `password` is the one `stored` was made from. An account
    /// with no password (`stored` is not a hash, e.g. [`NO_PASSWORD`])
    /// never matches, after the same work as a real verification, so the
    /// time taken does not tell which accounts have one.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        match PasswordHash::new(stored) {
            Ok(parsed) => self.argon2.verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => {
                self.verify_decoy(password);
                false
            }
        }
    }

    /// Spends the same effort as a real verification, for unknown accounts.
    pub fn verify_decoy(&self, password: &str) {
        if let Ok(parsed) = PasswordHash::new(&self.decoy) {
            let _ = self.argon2.verify_password(password.as_bytes(), &parsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(p: &str) -> Result<(), PasswordError> {
        PasswordPolicy.check(p, "ada.lovelace@example.org", "Ada Lovelace")
    }

    #[test]
    fn accepts_a_long_uncommon_passphrase() {
        assert_eq!(check("correct horse battery staple"), Ok(()));
    }

    #[test]
    fn rejects_short_common_trivial_and_identity_passwords() {
        assert_eq!(check("short"), Err(PasswordError::TooShort));
        assert_eq!(check("password123"), Err(PasswordError::Common));
        assert_eq!(check("Password1234!"), Err(PasswordError::Common));
        assert_eq!(check("qwertyuiop"), Err(PasswordError::Common));
        assert_eq!(check("aaaaaaaaaaaa"), Err(PasswordError::Trivial));
        assert_eq!(check("abcdefghijkl"), Err(PasswordError::Trivial));
        assert_eq!(check("ada.lovelace-rocks"), Err(PasswordError::ContainsIdentity));
        assert_eq!(check(&"x".repeat(300)), Err(PasswordError::TooLong));
    }

    #[test]
    fn common_list_is_large_and_normalised() {
        assert!(common_set().len() >= 500, "list has {}", common_set().len());
        assert!(common_set().iter().all(|p| *p == p.to_lowercase()));
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let hasher = PasswordHasher::new(1024, 1, 1);
        let a = hasher.hash("correct horse battery staple");
        let b = hasher.hash("correct horse battery staple");
        assert!(a.starts_with("$argon2id$v=19$"));
        assert_ne!(a, b, "each hash has its own salt");
        assert!(hasher.verify("correct horse battery staple", &a));
        assert!(!hasher.verify("correct horse battery stapler", &a));
        assert!(!hasher.verify("anything", "not a phc string"));
        assert!(!hasher.verify("", NO_PASSWORD) && !hasher.verify(NO_PASSWORD, NO_PASSWORD));
    }
}
