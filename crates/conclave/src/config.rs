//! Configuration layering: built-in defaults < TOML file < `CONCLAVE_*`
//! environment < command-line flags. Clap reads flags and the environment;
//! the file fills in whatever neither gave.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use conclave_server::{Registration, ServerConfig};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "conclave-data";

/// Where the server keeps its data; shared by `serve` and `admin`.
#[derive(Args, Debug, Clone, Default)]
pub struct StorageArgs {
    /// TOML configuration file (lowest precedence after the defaults).
    #[arg(long, env = "CONCLAVE_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database and other local data [default: ./conclave-data].
    #[arg(long, env = "CONCLAVE_DATA_DIR", value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Use PostgreSQL instead of the SQLite file, e.g. postgres://user@host/db.
    #[arg(long, env = "CONCLAVE_DATABASE_URL", value_name = "URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// The key sealing secrets the database keeps (TOTP seeds); created on first start. Every node needs the same one [default: <data-dir>/secrets.key].
    #[arg(long, env = "CONCLAVE_SECRETS_KEY_FILE", value_name = "FILE", global = true)]
    pub secrets_key_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CONCLAVE_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// The URL users reach this server at (for links and the CSRF origin check) [default: http://<listen>].
    #[arg(long, env = "CONCLAVE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Who may create accounts: invitees only, or anyone [default: invite-only].
    #[arg(long, env = "CONCLAVE_REGISTRATION", value_enum)]
    pub registration: Option<RegistrationArg>,
    /// Regions this deployment serves, comma-separated [default: local].
    #[arg(long, env = "CONCLAVE_REGIONS", value_delimiter = ',', value_name = "REGION,...")]
    pub regions: Option<Vec<String>>,
    /// S3-compatible services organisations may keep their files at, besides Amazon S3, comma-separated.
    #[arg(long, env = "CONCLAVE_STORAGE_ENDPOINTS", value_delimiter = ',', value_name = "URL,...")]
    pub storage_endpoints: Option<Vec<String>>,
    /// Reverse proxies whose X-Forwarded-For is trusted, comma-separated.
    #[arg(long, env = "CONCLAVE_TRUSTED_PROXIES", value_delimiter = ',', value_name = "IP,...")]
    pub trusted_proxies: Option<Vec<IpAddr>>,
    /// UDP address for media (one port for every participant) [default: the listen address and port].
    #[arg(long, env = "CONCLAVE_MEDIA_LISTEN", value_name = "ADDR:PORT")]
    pub media_listen: Option<SocketAddr>,
    /// Days call-quality samples are kept for the administrators' graphs [default: 30].
    #[arg(long, env = "CONCLAVE_QUALITY_RETENTION_DAYS", value_name = "DAYS")]
    pub quality_retention_days: Option<u64>,
    /// Minutes after which messages' ciphertext moves to the organisation's bucket, where it chose one [default: 10].
    #[arg(long, env = "CONCLAVE_MESSAGES_TO_BUCKET_AFTER", value_name = "MINUTES")]
    pub messages_to_bucket_after: Option<u64>,
    /// TCP address for media when a participant's network blocks UDP (ICE over TCP), or `off` [default: the listen address, port + 1].
    #[arg(long, env = "CONCLAVE_MEDIA_TCP_LISTEN", value_name = "ADDR:PORT|off")]
    pub media_tcp_listen: Option<TcpListen>,
    /// The address participants send media to, e.g. the public IP behind NAT [default: the bound address].
    #[arg(long, env = "CONCLAVE_MEDIA_ADVERTISE", value_name = "IP")]
    pub media_advertise: Option<IpAddr>,
    /// The SMTP server email goes out through (invitations, password resets); none: no email.
    #[arg(long, env = "CONCLAVE_SMTP_HOST", value_name = "HOST")]
    pub smtp_host: Option<String>,
    /// Its port [default: 587, or 465 with --smtp-security tls].
    #[arg(long, env = "CONCLAVE_SMTP_PORT", value_name = "PORT")]
    pub smtp_port: Option<u16>,
    /// STARTTLS (required) or TLS from the first byte [default: starttls].
    #[arg(long, env = "CONCLAVE_SMTP_SECURITY", value_enum)]
    pub smtp_security: Option<SmtpSecurityArg>,
    /// The SMTP user name, if the server wants one.
    #[arg(long, env = "CONCLAVE_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    /// Its password.
    #[arg(long, env = "CONCLAVE_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// A CA certificate (PEM) to trust besides the system's, for a private relay.
    #[arg(long, env = "CONCLAVE_SMTP_CA_FILE", value_name = "FILE")]
    pub smtp_ca_file: Option<PathBuf>,
    /// The sender of every email, e.g. "Conclave <noreply@example.org>".
    #[arg(long, env = "CONCLAVE_MAIL_FROM", value_name = "MAILBOX")]
    pub mail_from: Option<String>,
    /// TURN servers handed to participants, comma-separated (turn:host:3478?transport=udp,...).
    #[arg(long, env = "CONCLAVE_TURN_URLS", value_delimiter = ',', value_name = "URL,...")]
    pub turn_urls: Option<Vec<String>>,
    /// The secret shared with the TURN server (coturn's static-auth-secret).
    #[arg(long, env = "CONCLAVE_TURN_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,
    /// How long minted TURN credentials stay valid, in seconds [default: 3600].
    #[arg(long, env = "CONCLAVE_TURN_TTL", value_name = "SECONDS")]
    pub turn_ttl: Option<u64>,
    /// Serve /metrics on a listener of its own, to anyone who reaches it: bind it to a private address.
    #[arg(long, env = "CONCLAVE_METRICS_LISTEN", value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve /metrics on the main listener too, to requests with this bearer token.
    #[arg(long, env = "CONCLAVE_METRICS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Let the server reach addresses inside this network for what others name: identity providers over
    /// plain http://, watched feeds, Web Push endpoints. For tests and closed networks only.
    #[arg(long, env = "CONCLAVE_ALLOW_LOCAL_OUTBOUND")]
    pub allow_local_outbound: bool,
    /// Log format on stderr [default: text]. Levels come from CONCLAVE_LOG (e.g. "info,conclave_server=debug").
    #[arg(long, env = "CONCLAVE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpSecurityArg {
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationArg {
    InviteOnly,
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where ICE over TCP listens: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpListen {
    Off,
    At(SocketAddr),
}

impl std::str::FromStr for TcpListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "off" {
            return Ok(Self::Off);
        }
        s.parse().map(Self::At).map_err(|_| format!("expected ADDR:PORT or `off`, got {s:?}"))
    }
}

impl<'de> Deserialize<'de> for TcpListen {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The TOML file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub secrets_key_file: Option<PathBuf>,
    pub public_url: Option<String>,
    pub registration: Option<RegistrationArg>,
    pub regions: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<IpAddr>>,
    pub storage_endpoints: Option<Vec<String>>,
    pub log_format: Option<LogFormat>,
    pub media_listen: Option<SocketAddr>,
    pub media_tcp_listen: Option<TcpListen>,
    pub quality_retention_days: Option<u64>,
    pub messages_to_bucket_after: Option<u64>,
    pub media_advertise: Option<IpAddr>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub smtp_security: Option<SmtpSecurityArg>,
    pub smtp_username: Option<String>,
    pub smtp_ca_file: Option<PathBuf>,
    pub mail_from: Option<String>,
    pub turn_urls: Option<Vec<String>>,
    pub turn_secret: Option<String>,
    pub turn_ttl: Option<u64>,
    pub metrics_listen: Option<SocketAddr>,
    pub metrics_token: Option<String>,
    pub allow_local_outbound: Option<bool>,
}

pub fn read_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else { return Ok(FileConfig::default()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// Storage location after layering: (data dir, optional database URL).
fn resolve_storage(args: &StorageArgs, file: &FileConfig) -> anyhow::Result<(PathBuf, Option<String>)> {
    let data_dir =
        args.data_dir.clone().or_else(|| file.data_dir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let database_url = args.database_url.clone().or_else(|| file.database_url.clone());
    if let Some(url) = &database_url {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://") || url.starts_with("sqlite:")) {
            bail!("--database-url must start with postgres:// (or sqlite:), got {}", conclave_store::redact_url(url));
        }
    }
    Ok((data_dir, database_url))
}

/// The server's configuration as far as storage goes: data directory,
/// database and the secrets key; shared by `serve` and `admin`.
pub fn storage_config(args: &StorageArgs, file: &FileConfig, listen: SocketAddr) -> anyhow::Result<ServerConfig> {
    let (data_dir, database_url) = resolve_storage(args, file)?;
    let mut config = ServerConfig::new(listen, data_dir);
    config.database_url = database_url;
    if let Some(path) = args.secrets_key_file.clone().or_else(|| file.secrets_key_file.clone()) {
        config.secrets_key_file = path;
    }
    Ok(config)
}

pub fn resolve_serve(args: &ServeArgs) -> anyhow::Result<(ServerConfig, LogFormat)> {
    let file = read_file(args.storage.config.as_deref())?;
    let listen = match args.listen.or(file.listen) {
        Some(addr) => addr,
        None => DEFAULT_LISTEN.parse().expect("default listen address parses"),
    };
    let mut config = storage_config(&args.storage, &file, listen)?;
    config.web = Some(conclave_server::web::WebApp { files: conclave_web::FILES });
    if let Some(url) = args.public_url.clone().or(file.public_url) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--public-url must start with http:// or https://");
        }
        config.public_url = url.trim_end_matches('/').to_owned();
    }
    config.registration = match args.registration.or(file.registration) {
        Some(RegistrationArg::Open) => Registration::Open,
        _ => Registration::InviteOnly,
    };
    if let Some(regions) = args.regions.clone().or(file.regions) {
        let regions: Vec<String> = regions.into_iter().map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).collect();
        if regions.is_empty() {
            bail!("--regions must name at least one region");
        }
        config.regions = regions;
    }
    if let Some(endpoints) = args.storage_endpoints.clone().or(file.storage_endpoints) {
        for endpoint in &endpoints {
            if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                bail!("--storage-endpoints: {endpoint} must start with https:// or http://");
            }
        }
        config.storage_endpoints = endpoints;
    }
    if let Some(proxies) = args.trusted_proxies.clone().or(file.trusted_proxies) {
        config.trusted_proxies = proxies;
    }
    config.allow_local_outbound = args.allow_local_outbound || file.allow_local_outbound.unwrap_or(false);
    if let Some(days) = args.quality_retention_days.or(file.quality_retention_days) {
        if days == 0 {
            bail!("--quality-retention-days must be at least 1");
        }
        config.quality_retention = std::time::Duration::from_secs(days.saturating_mul(24 * 3600));
    }
    if let Some(minutes) = args.messages_to_bucket_after.or(file.messages_to_bucket_after) {
        config.segment_after = std::time::Duration::from_secs(minutes.saturating_mul(60));
    }
    let media = config.media.get_or_insert_with(Default::default);
    media.listen = args.media_listen.or(file.media_listen);
    if let Some(host) = args.smtp_host.clone().or(file.smtp_host) {
        let security = match args.smtp_security.or(file.smtp_security) {
            Some(SmtpSecurityArg::Tls) => conclave_server::mail::SmtpSecurity::Tls,
            _ => conclave_server::mail::SmtpSecurity::StartTls,
        };
        let port = args.smtp_port.or(file.smtp_port).unwrap_or(match security {
            conclave_server::mail::SmtpSecurity::Tls => 465,
            conclave_server::mail::SmtpSecurity::StartTls => 587,
        });
        let Some(from) = args.mail_from.clone().or(file.mail_from) else {
            bail!("--smtp-host needs --mail-from, the sender of every email");
        };
        config.smtp = Some(conclave_server::mail::SmtpConfig {
            host,
            port,
            security,
            username: args.smtp_username.clone().or(file.smtp_username),
            // Secrets come from the environment or a flag, never the file.
            password: args.smtp_password.clone(),
            ca_file: args.smtp_ca_file.clone().or(file.smtp_ca_file),
            from,
        });
    }
    media.advertise = args.media_advertise.or(file.media_advertise);
    media.tcp_listen = match args.media_tcp_listen.or(file.media_tcp_listen) {
        Some(TcpListen::Off) => None,
        Some(TcpListen::At(addr)) => Some(addr),
        // Beside the HTTP port (an ephemeral one beside an ephemeral one).
        None => {
            let http = config.listen;
            let port = if http.port() == 0 { 0 } else { http.port().checked_add(1).unwrap_or(0) };
            Some(SocketAddr::new(http.ip(), port))
        }
    };
    let turn_urls = args.turn_urls.clone().or(file.turn_urls).unwrap_or_default();
    let turn_secret = args.turn_secret.clone().or(file.turn_secret);
    media.turn = match (turn_urls.is_empty(), turn_secret) {
        (true, None) => None,
        (false, Some(secret)) if !secret.is_empty() => {
            if let Some(bad) = turn_urls.iter().find(|u| !(u.starts_with("turn:") || u.starts_with("turns:"))) {
                bail!("--turn-urls must be turn: or turns: URLs, got {bad}");
            }
            let ttl = args.turn_ttl.or(file.turn_ttl).unwrap_or(3600);
            Some(conclave_server::TurnConfig { urls: turn_urls, secret, ttl: std::time::Duration::from_secs(ttl) })
        }
        _ => bail!("TURN needs both --turn-urls and --turn-secret"),
    };
    config.metrics.listen = args.metrics_listen.or(file.metrics_listen);
    config.metrics.token = args.metrics_token.clone().or(file.metrics_token);
    if config.metrics.token.as_ref().is_some_and(|t| t.len() < 16) {
        bail!("--metrics-token must be at least 16 characters");
    }
    Ok((config, args.log_format.or(file.log_format).unwrap_or_default()))
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONCLAVE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("conclave.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nregions = [\"eu\", \"us\"]\nregistration = \"open\"\n")
            .unwrap();
        let args = Wrapper::parse_from(["x", "--config", file.to_str().unwrap(), "--listen", "127.0.0.1:9100"]).serve;
        let (config, _) = resolve_serve(&args).unwrap();
        assert_eq!(config.listen.port(), 9100, "flag wins");
        assert_eq!(config.regions, ["eu", "us"], "file fills in");
        assert_eq!(config.registration, Registration::Open);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR), "default last");
        assert_eq!(config.public_url, "http://127.0.0.1:9100");
        assert_eq!(config.segment_after, std::time::Duration::from_secs(600), "ten minutes unless told");
        std::fs::write(&file, "messages_to_bucket_after = 60\n").unwrap();
        let args = Wrapper::parse_from(["x", "--config", file.to_str().unwrap()]).serve;
        assert_eq!(resolve_serve(&args).unwrap().0.segment_after, std::time::Duration::from_secs(3600));
    }

    #[test]
    fn unknown_file_keys_and_bad_urls_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let args = Wrapper::parse_from(["x", "--config", file.to_str().unwrap()]).serve;
        assert!(format!("{:#}", resolve_serve(&args).unwrap_err()).contains("unknown field"));
        let args = Wrapper::parse_from(["x", "--database-url", "mysql://x"]).serve;
        assert!(resolve_serve(&args).is_err());
    }

    #[test]
    fn email_needs_a_sender_and_secures_its_connection() {
        let args = Wrapper::parse_from(["x", "--smtp-host", "smtp.example.org"]).serve;
        assert!(format!("{:#}", resolve_serve(&args).unwrap_err()).contains("--mail-from"));
        let args =
            Wrapper::parse_from(["x", "--smtp-host", "smtp.example.org", "--mail-from", "Conclave <n@example.org>"])
                .serve;
        let smtp = resolve_serve(&args).unwrap().0.smtp.expect("email on");
        assert_eq!((smtp.port, smtp.security), (587, conclave_server::mail::SmtpSecurity::StartTls));
        let args =
            Wrapper::parse_from(["x", "--smtp-host", "h", "--smtp-security", "tls", "--mail-from", "n@example.org"])
                .serve;
        assert_eq!(resolve_serve(&args).unwrap().0.smtp.unwrap().port, 465);
    }

    #[test]
    fn turn_needs_urls_and_a_secret_together() {
        let args = Wrapper::parse_from(["x", "--turn-urls", "turn:turn.example.org:3478"]).serve;
        assert!(format!("{:#}", resolve_serve(&args).unwrap_err()).contains("both"));
        let args = Wrapper::parse_from(["x", "--turn-urls", "http://x", "--turn-secret", "s"]).serve;
        assert!(resolve_serve(&args).is_err());
        let args = Wrapper::parse_from([
            "x",
            "--turn-urls",
            "turn:t.example.org:3478",
            "--turn-secret",
            "s",
            "--media-listen",
            "0.0.0.0:3479",
        ])
        .serve;
        let (config, _) = resolve_serve(&args).unwrap();
        let media = config.media.unwrap();
        assert_eq!(media.listen, Some("0.0.0.0:3479".parse().unwrap()));
        assert_eq!(media.turn.unwrap().ttl.as_secs(), 3600);
    }

    #[test]
    fn ice_over_tcp_listens_beside_the_http_port_unless_told_otherwise() {
        let media = |argv: &[&str]| {
            let args = Wrapper::parse_from(["x"].iter().chain(argv)).serve;
            resolve_serve(&args).unwrap().0.media.unwrap().tcp_listen
        };
        assert_eq!(media(&["--listen", "127.0.0.1:9100"]), Some("127.0.0.1:9101".parse().unwrap()));
        assert_eq!(
            media(&["--listen", "127.0.0.1:0"]),
            Some("127.0.0.1:0".parse().unwrap()),
            "ephemeral beside ephemeral"
        );
        assert_eq!(media(&["--media-tcp-listen", "0.0.0.0:443"]), Some("0.0.0.0:443".parse().unwrap()));
        assert_eq!(media(&["--media-tcp-listen", "off"]), None);
        let refused = Wrapper::try_parse_from(["x", "--media-tcp-listen", "sometimes"]);
        assert!(refused.is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "media_tcp_listen = \"off\"\n").unwrap();
        assert_eq!(media(&["--config", file.to_str().unwrap()]), None);
    }
}
