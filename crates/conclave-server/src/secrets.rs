//! Secrets the server must read back (TOTP seeds) are kept in the database
//! sealed with a key that is not in the database: a copy of the database —
//! a backup, a replica, a dump handed to support — is not enough to produce
//! anyone's second factor.
//!
//! The key is 32 random bytes in a file (by default `secrets.key` in the data
//! directory, created on first start, readable by the server's user only).
//! Every node of a cluster needs the same key: the database keeps a sealed
//! check value, and a node whose key does not open it refuses to start
//! rather than lock everyone with two-factor out.
//!
//! A sealed value is `sealed:v1:` and the unpadded base64url of a 96-bit
//! nonce, the AES-256-GCM ciphertext and its tag. The associated data names
//! what the value is and whose it is, so a sealed seed copied onto another
//! person's row does not open there.

use data_encoding::{BASE64, BASE64URL_NOPAD};
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use std::path::{Path, PathBuf};

const PREFIX: &str = "sealed:v1:";
const KEY_LEN: usize = 32;
/// The setting holding a value sealed at first start, which proves the key.
const CHECK_SETTING: &str = "secrets_key_check";
const CHECK_PLAINTEXT: &[u8] = b"conclave secrets key check";

/// What a sealed value is, bound into its seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A person's TOTP seed (enrolled or pending), owned by their user id.
    TotpSeed,
    /// The database's proof of the key, owned by nobody.
    KeyCheck,
    /// An OpenID provider's client secret, owned by its organisation.
    ProviderClientSecret,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Self::TotpSeed => "totp-seed",
            Self::KeyCheck => "key-check",
            Self::ProviderClientSecret => "provider-client-secret",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read or create the secrets key file {path}: {source}")]
    KeyFile { path: PathBuf, source: std::io::Error },
    #[error("the secrets key file {path} does not hold a base64 key of 32 bytes")]
    MalformedKey { path: PathBuf },
    #[error(
        "the secrets key does not open the secrets in this database: every node needs the key file the \
         database was first used with (copy it, or point secrets_key_file at it)"
    )]
    WrongKey,
    #[error("a sealed secret is damaged or was sealed for something else")]
    Unopenable,
    #[error("the database: {0}")]
    Store(#[from] conclave_store::StoreError),
}

/// The key that seals secrets at rest.
pub struct SecretsKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(..)")
    }
}

impl SecretsKey {
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, bytes).expect("AES-256-GCM takes a 32-byte key");
        Self { key: LessSafeKey::new(key) }
    }

    /// Reads the key at `path`, or creates it (owner-only) when the file is
    /// absent. The key is written whole to a file of its own and then
    /// linked into place, which fails if another process got there first:
    /// two processes starting together both end up with the one key that
    /// was linked first, and neither ever reads a half-written file.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretsError> {
        let io = |source| SecretsError::KeyFile { path: path.to_owned(), source };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let mut bytes = [0u8; KEY_LEN];
                rand::thread_rng().fill_bytes(&mut bytes);
                let mut staging = path.as_os_str().to_owned();
                staging.push(format!(".{:016x}.new", rand::random::<u64>()));
                let staging = PathBuf::from(staging);
                write_owner_only(&staging, format!("{}\n", BASE64.encode(&bytes)).as_bytes()).map_err(io)?;
                let linked = std::fs::hard_link(&staging, path);
                let _ = std::fs::remove_file(&staging);
                match linked {
                    Ok(()) => Ok(Self::from_bytes(&bytes)),
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::parse(path, &std::fs::read_to_string(path).map_err(io)?)
                    }
                    Err(err) => Err(io(err)),
                }
            }
            Err(err) => Err(io(err)),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<Self, SecretsError> {
        let malformed = || SecretsError::MalformedKey { path: path.to_owned() };
        let bytes = BASE64.decode(text.trim().as_bytes()).map_err(|_| malformed())?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| malformed())?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Seals `plaintext` as `purpose` of `owner`.
    pub fn seal(&self, purpose: Purpose, owner: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad(purpose, owner), &mut in_out)
            .expect("a secret far below AES-GCM's limit seals");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&in_out);
        format!("{PREFIX}{}", BASE64URL_NOPAD.encode(&sealed))
    }

    /// Opens a value sealed by [`SecretsKey::seal`] with the same purpose and owner.
    pub fn open(&self, purpose: Purpose, owner: &str, sealed: &str) -> Result<Vec<u8>, SecretsError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(SecretsError::Unopenable)?;
        let mut bytes = BASE64URL_NOPAD.decode(body.as_bytes()).map_err(|_| SecretsError::Unopenable)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretsError::Unopenable);
        }
        let nonce: [u8; NONCE_LEN] = bytes[..NONCE_LEN].try_into().expect("length checked");
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), aad(purpose, owner), &mut bytes[NONCE_LEN..])
            .map_err(|_| SecretsError::Unopenable)?;
        Ok(plain.to_vec())
    }

    /// Seals a TOTP seed (base32 text) for `user_id`.
    pub fn seal_totp_seed(&self, user_id: &str, seed: &str) -> String {
        self.seal(Purpose::TotpSeed, user_id, seed.as_bytes())
    }

    /// The base32 TOTP seed sealed for `user_id`.
    pub fn open_totp_seed(&self, user_id: &str, sealed: &str) -> Result<String, SecretsError> {
        let plain = self.open(Purpose::TotpSeed, user_id, sealed)?;
        String::from_utf8(plain).map_err(|_| SecretsError::Unopenable)
    }
}

/// Whether a stored value is sealed (seeds from before sealing are not).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(PREFIX)
}

fn aad(purpose: Purpose, owner: &str) -> Aad<Vec<u8>> {
    Aad::from(format!("conclave\0{}\0{owner}", purpose.label()).into_bytes())
}

#[cfg(unix)]
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Before serving: proves the key against the database (recording the
/// proof on first use) and seals any TOTP seed still stored in the clear
/// by an earlier version. Returns how many seeds it sealed.
pub async fn prepare(store: &conclave_store::Store, key: &SecretsKey) -> Result<usize, SecretsError> {
    let proof = key.seal(Purpose::KeyCheck, "", CHECK_PLAINTEXT);
    let stored = store.setting_or_insert(CHECK_SETTING, &proof).await?;
    match key.open(Purpose::KeyCheck, "", &stored) {
        Ok(plain) if plain == CHECK_PLAINTEXT => {}
        _ => return Err(SecretsError::WrongKey),
    }
    let mut sealed = 0;
    for seeds in store.unsealed_totp_seeds(PREFIX).await? {
        let seal = |value: Option<String>| match value {
            Some(v) if !is_sealed(&v) => Some(key.seal_totp_seed(&seeds.user_id, &v)),
            _ => None,
        };
        let (secret, pending) = (seal(seeds.secret), seal(seeds.pending));
        if secret.is_some() || pending.is_some() {
            store.reseal_totp_seeds(&seeds.user_id, secret.as_deref(), pending.as_deref()).await?;
            sealed += 1;
        }
    }
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretsKey {
        SecretsKey::from_bytes(&[byte; KEY_LEN])
    }

    #[test]
    fn a_sealed_seed_opens_only_for_its_owner_and_with_its_key() {
        let sealed = key(1).seal_totp_seed("user-a", "JBSWY3DPEHPK3PXP");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(key(1).open_totp_seed("user-a", &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        assert!(matches!(key(1).open_totp_seed("user-b", &sealed), Err(SecretsError::Unopenable)));
        assert!(matches!(key(2).open_totp_seed("user-a", &sealed), Err(SecretsError::Unopenable)));
        assert!(matches!(key(1).open(Purpose::KeyCheck, "user-a", &sealed), Err(SecretsError::Unopenable)));
    }

    #[test]
    fn sealing_twice_gives_different_text() {
        let k = key(3);
        assert_ne!(k.seal_totp_seed("u", "SEED"), k.seal_totp_seed("u", "SEED"));
    }

    #[test]
    fn damaged_or_unsealed_values_are_refused() {
        let k = key(4);
        let sealed = k.seal_totp_seed("u", "SEED");
        let mut damaged = sealed.clone().into_bytes();
        let last = damaged.len() - 1;
        damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
        for bad in [String::from_utf8(damaged).unwrap(), "SEED".into(), PREFIX.into(), format!("{PREFIX}!!")] {
            assert!(matches!(k.open_totp_seed("u", &bad), Err(SecretsError::Unopenable)), "{bad}");
        }
    }

    #[test]
    fn the_key_file_is_created_once_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("secrets.key");
        let first = SecretsKey::load_or_create(&path).unwrap();
        let again = SecretsKey::load_or_create(&path).unwrap();
        let sealed = first.seal_totp_seed("u", "SEED");
        assert_eq!(again.open_totp_seed("u", &sealed).unwrap(), "SEED");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "nobody but the owner reads the key: {mode:o}");
        }
        // Processes starting together agree on one key.
        let raced = dir.path().join("raced.key");
        let keys: Vec<SecretsKey> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8).map(|_| scope.spawn(|| SecretsKey::load_or_create(&raced).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let sealed = keys[0].seal_totp_seed("u", "SEED");
        assert!(keys.iter().all(|k| k.open_totp_seed("u", &sealed).is_ok()), "one key for all");
        std::fs::write(&path, "not a key\n").unwrap();
        assert!(matches!(SecretsKey::load_or_create(&path), Err(SecretsError::MalformedKey { .. })));
    }
}
