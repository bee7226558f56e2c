//! Account security as pure logic, with no IO: what a password must be and how
//! it is hashed, TOTP codes, opaque secrets and recovery codes, the backoff that
//! throttles guessing, and the hash chain that makes the audit log
//! tamper-evident.
//!
//! Everything here takes the current time as an argument instead of reading a
//! clock, so the server, the CLI and the tests decide what "now" is.

pub mod audit_chain;
pub mod password;
pub mod secret;
pub mod throttle;
pub mod totp;

pub use audit_chain::{AuditLink, ChainError, ChainVerifier, GENESIS_HASH};
pub use password::{PasswordError, PasswordHasher, PasswordPolicy, NO_PASSWORD};
pub use secret::{OpaqueToken, RecoveryCode, TokenHash};
pub use throttle::{Backoff, FailureTracker, RateLimiter, TokenBucket};
pub use totp::{Totp, TotpError};
