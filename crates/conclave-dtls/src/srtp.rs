//! SRTP's ciphers on OpenSSL: AES in counter mode (with str0m's HMAC-SHA1
//! tag), AES-GCM (RFC 7714) and the one-block AES rounds of key derivation.
//!
//! Every packet of every session passes through here, so each cipher keeps
//! one OpenSSL context with its key schedule and only sets a new IV per
//! packet; OpenSSL runs AES and GHASH on the processor's AES-NI and
//! carry-less multiply instructions.

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use openssl::error::ErrorStack;
use str0m::crypto::{
    AeadAes128GcmCipher, AeadAes256GcmCipher, Aes128CmSha1_80Cipher, CryptoError, SrtpProvider, SupportedAeadAes128Gcm,
    SupportedAeadAes256Gcm, SupportedAes128CmSha1_80,
};

/// Length of an AES-GCM authentication tag (RFC 7714 §7.2).
const GCM_TAG_LEN: usize = 16;

/// The SRTP provider str0m is given.
#[derive(Debug)]
pub(crate) struct OpensslSrtp;

impl SrtpProvider for OpensslSrtp {
    fn aes_128_cm_sha1_80(&self) -> &'static dyn SupportedAes128CmSha1_80 {
        &CounterModeFactory
    }

    fn aead_aes_128_gcm(&self) -> &'static dyn SupportedAeadAes128Gcm {
        &GcmFactory
    }

    fn aead_aes_256_gcm(&self) -> &'static dyn SupportedAeadAes256Gcm {
        &GcmFactory
    }

    fn srtp_aes_128_ecb_round(&self, key: &[u8], input: &[u8], output: &mut [u8]) {
        aes_block(Cipher::aes_128_ecb(), key, input, output);
    }

    fn srtp_aes_256_ecb_round(&self, key: &[u8], input: &[u8], output: &mut [u8]) {
        aes_block(Cipher::aes_256_ecb(), key, input, output);
    }
}

/// Encrypts one 16-byte block (RFC 3711 §4.3's key derivation). Keys and
/// blocks come from str0m at their fixed lengths, so a failure here is a
/// broken OpenSSL, not bad input.
fn aes_block(cipher: &CipherRef, key: &[u8], input: &[u8], output: &mut [u8]) {
    let mut ctx = CipherCtx::new().expect("an OpenSSL cipher context");
    ctx.encrypt_init(Some(cipher), Some(key), None).expect("an AES key of the profile's length");
    ctx.set_padding(false);
    // OpenSSL wants room for one more block than it is given.
    let mut block = [0u8; 32];
    let written = ctx.cipher_update(input, Some(&mut block)).expect("one AES block");
    output[..written].copy_from_slice(&block[..written]);
}

fn crypto_error(error: ErrorStack) -> CryptoError {
    CryptoError::Other(format!("SRTP cipher: {error}"))
}

#[derive(Debug)]
struct CounterModeFactory;

impl SupportedAes128CmSha1_80 for CounterModeFactory {
    fn create_cipher(&self, key: [u8; 16], _encrypt: bool) -> Box<dyn Aes128CmSha1_80Cipher> {
        // Counter mode is its own inverse: both directions encrypt the
        // keystream onto the input.
        let mut ctx = CipherCtx::new().expect("an OpenSSL cipher context");
        ctx.encrypt_init(Some(Cipher::aes_128_ctr()), Some(&key), None).expect("a 128-bit AES key");
        Box::new(CounterMode(ctx))
    }
}

/// AES-128 in counter mode for one direction of one session. Authentication
/// (HMAC-SHA1, 80 bits) is str0m's, with [`crate::digest`]'s HMAC.
struct CounterMode(CipherCtx);

impl std::fmt::Debug for CounterMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CounterMode")
    }
}

impl CounterMode {
    fn apply(&mut self, iv: &[u8; 16], input: &[u8], output: &mut [u8]) -> Result<(), CryptoError> {
        self.0.encrypt_init(None, None, Some(iv)).map_err(crypto_error)?;
        self.0.cipher_update(input, Some(output)).map_err(crypto_error)?;
        Ok(())
    }
}

impl Aes128CmSha1_80Cipher for CounterMode {
    fn encrypt(&mut self, iv: &[u8; 16], input: &[u8], output: &mut [u8]) -> Result<(), CryptoError> {
        self.apply(iv, input, output)
    }

    fn decrypt(&mut self, iv: &[u8; 16], input: &[u8], output: &mut [u8]) -> Result<(), CryptoError> {
        self.apply(iv, input, output)
    }
}

#[derive(Debug)]
struct GcmFactory;

impl SupportedAeadAes128Gcm for GcmFactory {
    fn create_cipher(&self, key: [u8; 16], encrypt: bool) -> Box<dyn AeadAes128GcmCipher> {
        Box::new(Gcm::new(Cipher::aes_128_gcm(), &key, encrypt))
    }
}

impl SupportedAeadAes256Gcm for GcmFactory {
    fn create_cipher(&self, key: [u8; 32], encrypt: bool) -> Box<dyn AeadAes256GcmCipher> {
        Box::new(Gcm::new(Cipher::aes_256_gcm(), &key, encrypt))
    }
}

/// AES-GCM for one direction of one session (RFC 7714): the RTP or RTCP
/// header is authenticated, the payload encrypted, and the 16-byte tag
/// follows the ciphertext.
/// Its direction is fixed when the key is set ([`Gcm::new`]).
struct Gcm {
    ctx: CipherCtx,
}

impl std::fmt::Debug for Gcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gcm")
    }
}

impl Gcm {
    fn new(cipher: &CipherRef, key: &[u8], encrypt: bool) -> Self {
        let mut ctx = CipherCtx::new().expect("an OpenSSL cipher context");
        let init = if encrypt {
            ctx.encrypt_init(Some(cipher), Some(key), None)
        } else {
            ctx.decrypt_init(Some(cipher), Some(key), None)
        };
        init.expect("an AES key of the profile's length");
        Gcm { ctx }
    }

    /// Writes the ciphertext of `input` and then its tag into `output`,
    /// which holds `input.len() + 16` bytes.
    fn seal(&mut self, iv: &[u8; 12], aad: &[u8], input: &[u8], output: &mut [u8]) -> Result<(), CryptoError> {
        if output.len() < input.len() + GCM_TAG_LEN {
            return Err(CryptoError::Other("SRTP: no room for the GCM tag".into()));
        }
        let (ciphertext, tag) = output.split_at_mut(input.len());
        self.ctx.encrypt_init(None, None, Some(iv)).map_err(crypto_error)?;
        self.ctx.cipher_update(aad, None).map_err(crypto_error)?;
        self.ctx.cipher_update(input, Some(ciphertext)).map_err(crypto_error)?;
        self.ctx.cipher_final(&mut []).map_err(crypto_error)?;
        self.ctx.tag(&mut tag[..GCM_TAG_LEN]).map_err(crypto_error)
    }

    /// Checks the tag at the end of `input` over `aads` and the ciphertext,
    /// and writes the plaintext into `output`. A forged or damaged packet is
    /// an error, and what was written must then be ignored.
    fn open(&mut self, iv: &[u8; 12], aads: &[&[u8]], input: &[u8], output: &mut [u8]) -> Result<usize, CryptoError> {
        let Some(plaintext_len) = input.len().checked_sub(GCM_TAG_LEN) else {
            return Err(CryptoError::Other("SRTP: a GCM packet shorter than its tag".into()));
        };
        if output.len() < plaintext_len {
            return Err(CryptoError::Other("SRTP: no room for the GCM plaintext".into()));
        }
        let (ciphertext, tag) = input.split_at(plaintext_len);
        self.ctx.decrypt_init(None, None, Some(iv)).map_err(crypto_error)?;
        for aad in aads {
            self.ctx.cipher_update(aad, None).map_err(crypto_error)?;
        }
        let written = self.ctx.cipher_update(ciphertext, Some(&mut output[..plaintext_len])).map_err(crypto_error)?;
        self.ctx.set_tag(tag).map_err(crypto_error)?;
        self.ctx.cipher_final(&mut []).map_err(|_| CryptoError::Other("SRTP: GCM tag does not match".into()))?;
        Ok(written)
    }
}

/// The two key sizes differ only in their keys, which [`Gcm::new`] took.
macro_rules! gcm_cipher {
    ($($profile:ident),+) => {$(
        impl $profile for Gcm {
            fn encrypt(&mut self, iv: &[u8; 12], aad: &[u8], input: &[u8], output: &mut [u8]) -> Result<(), CryptoError> {
                self.seal(iv, aad, input, output)
            }

            fn decrypt(&mut self, iv: &[u8; 12], aads: &[&[u8]], input: &[u8], output: &mut [u8]) -> Result<usize, CryptoError> {
                self.open(iv, aads, input, output)
            }
        }
    )+};
}

gcm_cipher!(AeadAes128GcmCipher, AeadAes256GcmCipher);

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let text: String = text.split_whitespace().collect();
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 3711 Appendix B.2: the AES-CM keystream for a known key and IV.
    #[test]
    fn counter_mode_gives_rfc_3711s_keystream() {
        let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap();
        let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
        let mut cipher = CounterModeFactory.create_cipher(key, true);
        let zeros = [0u8; 48];
        let mut keystream = [0u8; 48];
        cipher.encrypt(&iv, &zeros, &mut keystream).unwrap();
        assert_eq!(
            keystream.to_vec(),
            hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0")
        );
        let mut back = [0u8; 48];
        CounterModeFactory.create_cipher(key, false).decrypt(&iv, &keystream, &mut back).unwrap();
        assert_eq!(back, zeros, "the same keystream takes it back");
    }

    /// RFC 3711 Appendix B.3: key derivation's AES rounds.
    #[test]
    fn one_aes_block_derives_rfc_3711s_session_key() {
        let master_key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
        // The master salt with label 0x00 (encryption key) and index 0,
        // padded with a zero counter.
        let input = hex("0EC675AD498AFEEBB6960B3AABE60000");
        let mut output = [0u8; 16];
        OpensslSrtp.srtp_aes_128_ecb_round(&master_key, &input, &mut output);
        assert_eq!(output.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    }

    /// RFC 7714 §16.1.1 (AEAD_AES_128_GCM, RTP): the exact ciphertext and
    /// tag, and the plaintext back.
    #[test]
    fn gcm_seals_and_opens_rfc_7714s_packet() {
        let key: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let iv: [u8; 12] = hex("51753c6580c2726f20718414").try_into().unwrap();
        let header = hex("8040f17b8041f8d35501a0b2");
        let payload = hex("47616c6c696120657374206f6d6e6973 20646976697361 20696e207061727465732074726573");
        let sealed = hex("f24de3a3fb34de6cacba861c9d7e4bca be633bd50d294e6f42a5f47a51c7d19b 36de3adf8833
             899d7f27beb16a9152cf765ee4390cce");
        let mut out = vec![0u8; payload.len() + GCM_TAG_LEN];
        let mut sealer = Gcm::new(Cipher::aes_128_gcm(), &key, true);
        AeadAes128GcmCipher::encrypt(&mut sealer, &iv, &header, &payload, &mut out).unwrap();
        assert_eq!(out, sealed);

        let mut opener = Gcm::new(Cipher::aes_128_gcm(), &key, false);
        let mut plain = vec![0u8; payload.len()];
        // The header may come in pieces: the tag covers them in order.
        let n =
            AeadAes128GcmCipher::decrypt(&mut opener, &iv, &[&header[..4], &header[4..]], &sealed, &mut plain).unwrap();
        assert_eq!(&plain[..n], &payload[..]);

        let mut forged = sealed.clone();
        forged[3] ^= 1;
        assert!(AeadAes128GcmCipher::decrypt(&mut opener, &iv, &[&header], &forged, &mut plain).is_err());
        let mut other_header = header.clone();
        other_header[1] ^= 1;
        assert!(AeadAes128GcmCipher::decrypt(&mut opener, &iv, &[&other_header], &sealed, &mut plain).is_err());
        assert!(
            AeadAes128GcmCipher::decrypt(&mut opener, &iv, &[&header], &sealed[..8], &mut plain).is_err(),
            "shorter than a tag"
        );
        // A good packet still opens after the bad ones.
        let n = AeadAes128GcmCipher::decrypt(&mut opener, &iv, &[&header], &sealed, &mut plain).unwrap();
        assert_eq!(&plain[..n], &payload[..]);
    }

    #[test]
    fn gcm_256_round_trips_and_refuses_another_key() {
        let key = [7u8; 32];
        let iv = [9u8; 12];
        let payload = b"a frame of video".to_vec();
        let mut sealed = vec![0u8; payload.len() + GCM_TAG_LEN];
        let cipher = |key: [u8; 32], encrypt| SupportedAeadAes256Gcm::create_cipher(&GcmFactory, key, encrypt);
        cipher(key, true).encrypt(&iv, b"header", &payload, &mut sealed).unwrap();
        let mut plain = vec![0u8; payload.len()];
        let n = cipher(key, false).decrypt(&iv, &[b"header"], &sealed, &mut plain).unwrap();
        assert_eq!(&plain[..n], &payload[..]);
        assert!(cipher([8u8; 32], false).decrypt(&iv, &[b"header"], &sealed, &mut plain).is_err());
    }
}
