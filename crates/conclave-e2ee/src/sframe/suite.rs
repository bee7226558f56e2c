//! The cipher suites of RFC 9605 §4.5 (and AES-256 variants of the
//! CTR+HMAC suites that the published test vectors also cover).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    Aes128CtrHmacSha256_80,
    Aes128CtrHmacSha256_64,
    Aes128CtrHmacSha256_32,
    Aes128GcmSha256_128,
    Aes256GcmSha512_128,
    Aes256CtrHmacSha512_80,
    Aes256CtrHmacSha512_64,
    Aes256CtrHmacSha512_32,
}

/// The hash behind a suite's HKDF (and HMAC, for the CTR suites).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha512,
}

impl CipherSuite {
    pub fn from_id(id: u16) -> Option<Self> {
        Some(match id {
            1 => Self::Aes128CtrHmacSha256_80,
            2 => Self::Aes128CtrHmacSha256_64,
            3 => Self::Aes128CtrHmacSha256_32,
            4 => Self::Aes128GcmSha256_128,
            5 => Self::Aes256GcmSha512_128,
            6 => Self::Aes256CtrHmacSha512_80,
            7 => Self::Aes256CtrHmacSha512_64,
            8 => Self::Aes256CtrHmacSha512_32,
            _ => return None,
        })
    }

    pub fn id(self) -> u16 {
        match self {
            Self::Aes128CtrHmacSha256_80 => 1,
            Self::Aes128CtrHmacSha256_64 => 2,
            Self::Aes128CtrHmacSha256_32 => 3,
            Self::Aes128GcmSha256_128 => 4,
            Self::Aes256GcmSha512_128 => 5,
            Self::Aes256CtrHmacSha512_80 => 6,
            Self::Aes256CtrHmacSha512_64 => 7,
            Self::Aes256CtrHmacSha512_32 => 8,
        }
    }

    pub fn hash(self) -> Hash {
        match self {
            Self::Aes256GcmSha512_128
            | Self::Aes256CtrHmacSha512_80
            | Self::Aes256CtrHmacSha512_64
            | Self::Aes256CtrHmacSha512_32 => Hash::Sha512,
            _ => Hash::Sha256,
        }
    }

    /// Bytes of AES key (for CTR suites, of the encryption half).
    pub fn aes_key_len(self) -> usize {
        match self {
            Self::Aes256GcmSha512_128
            | Self::Aes256CtrHmacSha512_80
            | Self::Aes256CtrHmacSha512_64
            | Self::Aes256CtrHmacSha512_32 => 32,
            _ => 16,
        }
    }

    /// `Nk`: the whole key (for CTR suites, encryption key and HMAC key).
    pub fn key_len(self) -> usize {
        if self.is_ctr() {
            self.aes_key_len() + self.hash_len()
        } else {
            self.aes_key_len()
        }
    }

    /// `Nn`.
    pub fn nonce_len(self) -> usize {
        12
    }

    /// `Nt`.
    pub fn tag_len(self) -> usize {
        match self {
            Self::Aes128CtrHmacSha256_80 | Self::Aes256CtrHmacSha512_80 => 10,
            Self::Aes128CtrHmacSha256_64 | Self::Aes256CtrHmacSha512_64 => 8,
            Self::Aes128CtrHmacSha256_32 | Self::Aes256CtrHmacSha512_32 => 4,
            Self::Aes128GcmSha256_128 | Self::Aes256GcmSha512_128 => 16,
        }
    }

    pub fn hash_len(self) -> usize {
        match self.hash() {
            Hash::Sha256 => 32,
            Hash::Sha512 => 64,
        }
    }

    pub fn is_ctr(self) -> bool {
        !matches!(self, Self::Aes128GcmSha256_128 | Self::Aes256GcmSha512_128)
    }
}
