//! The secrets that open a meeting. The link secret is the only thing that
//! alone lets someone knock: 160 random bits. The code is for typing on a
//! phone (10 random digits, never sequential or time-derived) and is never
//! enough alone: a passcode or the waiting room always stands behind it.

use conclave_store::MeetingSecrets;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};

const PASSCODE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

pub fn link_secret() -> String {
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase()
}

/// 10 digits, the first never 0 so it is never mistaken for shorter.
pub fn code() -> String {
    let mut rng = OsRng;
    let first = rng.gen_range(1..10u8);
    let rest: String = (0..9).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
    format!("{first}{rest}")
}

pub fn passcode() -> String {
    let mut rng = OsRng;
    (0..8).map(|_| PASSCODE_ALPHABET[rng.gen_range(0..PASSCODE_ALPHABET.len())] as char).collect()
}

pub fn host_key() -> String {
    let mut rng = OsRng;
    (0..6).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

pub fn fresh(passcode: Option<String>) -> MeetingSecrets {
    MeetingSecrets { link_secret: link_secret(), code: code(), passcode, host_key: host_key() }
}

/// A typed code with spaces or dashes ("123 456 7890") as stored.
pub fn normalize_code(typed: &str) -> String {
    typed.chars().filter(char::is_ascii_digit).collect()
}

/// Shown to people as `123 456 7890`.
pub fn display_code(code: &str) -> String {
    if code.len() == 10 {
        format!("{} {} {}", &code[..3], &code[3..6], &code[6..])
    } else {
        code.to_owned()
    }
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn secrets_have_their_shapes_and_do_not_repeat() {
        let links: HashSet<_> = (0..1000).map(|_| link_secret()).collect();
        assert_eq!(links.len(), 1000);
        assert!(links.iter().all(|l| l.len() == 32), "160 bits in base32");
        let codes: Vec<_> = (0..1000).map(|_| code()).collect();
        assert!(codes.iter().all(|c| c.len() == 10 && !c.starts_with('0') && c.bytes().all(|b| b.is_ascii_digit())));
        let unique: HashSet<_> = codes.iter().collect();
        assert!(unique.len() > 990, "random, not sequential");
        assert_eq!(normalize_code("123 456-7890"), "1234567890");
        assert_eq!(display_code("1234567890"), "123 456 7890");
        assert_eq!(passcode().len(), 8);
    }
}
