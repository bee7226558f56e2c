//! The crypto every media session runs on, given to str0m as its
//! `CryptoProvider`.
//!
//! - SRTP on OpenSSL ([`srtp`]): AES-GCM and AES-CM on the processor's AES
//!   instructions, one cipher context per direction.
//! - HMAC-SHA1 for STUN and SRTP tags, SHA-1 and SHA-256 for certificate
//!   fingerprints ([`digest`]).
//! - A self-signed ECDSA certificate per session ([`certificate`]).
//! - The DTLS handshake: str0m's own state machine, dimpl, which retransmits
//!   lost handshake flights (OpenSSL's DTLS as str0m drove it never
//!   retransmitted, so one lost datagram left a connection without keys for
//!   good).
//!
//! dimpl checks its crypto provider whenever a configuration is built (key
//! exchanges on every group: about 20 ms). Built once per session, that
//! would stall the SFU's one thread at every join; here it is built once per
//! process and shared.

mod certificate;
mod digest;
mod srtp;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, ProtocolVersion,
};
use str0m::crypto::{CryptoError, CryptoProvider};

/// The provider for `RtcConfig::set_crypto_provider`, built once.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static DTLS: SharedConfigDtls = SharedConfigDtls { config: OnceLock::new() };
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            Arc::new(CryptoProvider {
                srtp_provider: &srtp::OpensslSrtp,
                sha1_hmac_provider: &digest::Digests,
                sha1_provider: &digest::Digests,
                sha256_provider: &digest::Digests,
                dtls_provider: &DTLS,
            })
        })
        .clone()
}

/// DTLS instances sharing one validated dimpl configuration.
struct SharedConfigDtls {
    /// The configuration, for the MTU str0m asked for first (it always
    /// asks for the same).
    config: OnceLock<(Option<usize>, Arc<dimpl::Config>)>,
}

impl std::fmt::Debug for SharedConfigDtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedConfigDtls")
    }
}

fn build_config(mtu: Option<usize>) -> Result<Arc<dimpl::Config>, CryptoError> {
    // ICE has checked the peer's return path already: no server cookie.
    let mut builder = dimpl::Config::builder().use_server_cookie(false);
    if let Some(mtu) = mtu {
        builder = builder.mtu(mtu);
    }
    let config = builder
        .with_crypto_provider(dimpl::crypto::rust_crypto::default_provider())
        .build()
        .map_err(|e| CryptoError::Other(format!("DTLS configuration: {e}")))?;
    Ok(Arc::new(config))
}

impl SharedConfigDtls {
    fn config(&self, mtu: Option<usize>) -> Result<Arc<dimpl::Config>, CryptoError> {
        if let Some((for_mtu, config)) = self.config.get() {
            return if *for_mtu == mtu { Ok(config.clone()) } else { build_config(mtu) };
        }
        let config = build_config(mtu)?;
        Ok(self.config.get_or_init(|| (mtu, config)).1.clone())
    }
}

impl DtlsProvider for SharedConfigDtls {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        match certificate::self_signed() {
            Ok(cert) => Some(cert),
            Err(error) => {
                // str0m then fails the session with its own error.
                tracing::error!(%error, "no DTLS certificate");
                None
            }
        }
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let config = self.config(mtu)?;
        let dtls = match dtls_version {
            DtlsVersion::Dtls12 => dimpl::Dtls::new_12(config, cert.clone(), now),
            DtlsVersion::Dtls13 => dimpl::Dtls::new_13(config, cert.clone(), now),
            DtlsVersion::Auto => dimpl::Dtls::new_auto(config, cert.clone(), now),
            other => return Err(CryptoError::Other(format!("unknown DTLS version {other}"))),
        };
        Ok(Box::new(Session(dtls)))
    }
}

/// One connection's handshake and records.
struct Session(dimpl::Dtls);

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("active", &self.0.is_active()).finish()
    }
}

impl DtlsInstance for Session {
    fn set_active(&mut self, active: bool) {
        self.0.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.0.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        self.0.poll_output(buf)
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.0.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.0.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.0.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.0.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.0.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.0.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_share_one_configuration_per_mtu() {
        let dtls = SharedConfigDtls { config: OnceLock::new() };
        let first = dtls.config(Some(1150)).unwrap();
        assert!(Arc::ptr_eq(&first, &dtls.config(Some(1150)).unwrap()), "built once");
        let other = dtls.config(Some(1400)).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(other.mtu(), 1400);
    }

    #[test]
    fn makes_sessions_of_every_version_from_its_certificate() {
        let provider = crypto_provider();
        let cert = provider.dtls_provider.generate_certificate().expect("a certificate");
        for version in [DtlsVersion::Dtls12, DtlsVersion::Dtls13, DtlsVersion::Auto] {
            let session = provider.dtls_provider.new_dtls(&cert, Instant::now(), version, None).unwrap();
            assert!(!session.is_active(), "a new session waits in the server role");
        }
    }
}
