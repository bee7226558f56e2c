//! SFrame keys from MLS (RFC 9605 §5.2): every epoch of the meeting's MLS
//! group exports one secret; each member's base key is expanded from it
//! with the member's leaf index, and its KID carries the index and the low
//! bits of the epoch, so a receiver knows which key a frame needs and keys
//! of the previous epoch can be told apart while a rekey spreads.

use hkdf::Hkdf;

use crate::sframe::CipherSuite;

/// The exporter label and length the MLS group is asked for.
pub const EXPORTER_LABEL: &str = "SFrame 1.0 Base Key";

/// Low bits of the epoch carried in the KID.
pub const EPOCH_BITS: u32 = 8;

/// The KID of `leaf_index`'s frames in `epoch`.
pub fn kid(leaf_index: u32, epoch: u64) -> u64 {
    (u64::from(leaf_index) << EPOCH_BITS) | (epoch & ((1 << EPOCH_BITS) - 1))
}

/// `(leaf index, epoch low bits)` of a KID.
pub fn split_kid(kid: u64) -> (u32, u64) {
    ((kid >> EPOCH_BITS) as u32, kid & ((1 << EPOCH_BITS) - 1))
}

/// A member's base key: `HKDF-Expand(epoch_secret, leaf_index (u32 BE), Nh)`.
pub fn base_key(suite: CipherSuite, epoch_secret: &[u8], leaf_index: u32) -> Vec<u8> {
    let info = leaf_index.to_be_bytes();
    let mut out = vec![0u8; suite.hash_len()];
    match suite.hash() {
        crate::sframe::Hash::Sha256 => Hkdf::<sha2::Sha256>::from_prk(epoch_secret)
            .expect("the exporter secret is a full hash long")
            .expand(&info, &mut out)
            .expect("valid length"),
        crate::sframe::Hash::Sha512 => Hkdf::<sha2::Sha512>::from_prk(epoch_secret)
            .expect("the exporter secret is a full hash long")
            .expand(&info, &mut out)
            .expect("valid length"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_carry_index_and_epoch() {
        assert_eq!(split_kid(kid(7, 258)), (7, 2));
        assert_ne!(kid(1, 5), kid(2, 5));
        assert_ne!(kid(1, 5), kid(1, 6));
    }

    #[test]
    fn each_member_and_epoch_has_its_own_key() {
        let suite = CipherSuite::Aes128GcmSha256_128;
        let epoch_a = [1u8; 32];
        let epoch_b = [2u8; 32];
        let a0 = base_key(suite, &epoch_a, 0);
        assert_eq!(a0.len(), 32);
        assert_ne!(a0, base_key(suite, &epoch_a, 1));
        assert_ne!(a0, base_key(suite, &epoch_b, 0));
        assert_eq!(a0, base_key(suite, &epoch_a, 0));
    }
}
