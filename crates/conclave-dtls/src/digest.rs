//! The hashes str0m asks of its provider: HMAC-SHA1 for STUN's message
//! integrity and SRTP's AES-CM tags, SHA-1 and SHA-256 for DTLS certificate
//! fingerprints. RustCrypto's, which the rest of the server already builds
//! (and which use the processor's SHA instructions where it has them).

use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use str0m::crypto::{Sha1HmacProvider, Sha1Provider, Sha256Provider};

#[derive(Debug)]
pub(crate) struct Digests;

impl Sha1HmacProvider for Digests {
    fn sha1_hmac(&self, key: &[u8], payloads: &[&[u8]]) -> [u8; 20] {
        let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes a key of any length");
        for payload in payloads {
            mac.update(payload);
        }
        mac.finalize().into_bytes().into()
    }
}

impl Sha1Provider for Digests {
    fn sha1(&self, data: &[u8]) -> [u8; 20] {
        Sha1::digest(data).into()
    }
}

impl Sha256Provider for Digests {
    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 2202 test case 2, given in two pieces as STUN gives it.
    #[test]
    fn hmac_sha1_over_pieces_is_hmac_over_their_concatenation() {
        let tag = Digests.sha1_hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex(&tag), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }

    #[test]
    fn hashes_match_the_fips_180_examples() {
        assert_eq!(hex(&Digests.sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(hex(&Digests.sha256(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
