//! The Conclave server: the REST API, authentication and organisations, on
//! top of `conclave-store` and `conclave-auth`. [`run`] is what
//! `conclave serve` calls; [`App`] assembles the same thing for tests.

pub mod accounts;
pub mod at_risk;
pub mod calendar;
pub mod clock;
pub mod config;
pub mod conversations;
pub mod devices;
pub mod error;
pub mod extract;
pub mod files;
pub mod live;
pub mod mail;
pub mod media;
pub mod meetings;
pub mod metrics;
pub mod offboarding;
pub mod org_policy;
pub mod outbound;
pub mod passkeys;
pub mod provider_accounts;
pub mod provider_groups;
pub mod push;
pub mod routes;
pub mod secrets;
pub mod sso;
pub mod state;
pub mod throttles;
pub mod web;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Limits, MediaConfig, Registration, ServerConfig, TurnConfig};
pub use state::{AppState, SharedState};

use conclave_store::Store;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the database: {0}")]
    Store(#[from] conclave_store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("start-up task failed: {0}")]
    Startup(String),
    #[error(transparent)]
    Secrets(#[from] secrets::SecretsError),
}

/// Opens the configured database: PostgreSQL when a URL is given, the
/// SQLite file in the data directory otherwise.
pub async fn open_store(config: &ServerConfig) -> Result<Store, conclave_store::StoreError> {
    match &config.database_url {
        Some(url) => Store::connect(url).await,
        None => Store::open_sqlite_dir(&config.data_dir).await,
    }
}

/// An assembled server: state and router.
pub struct App {
    pub state: SharedState,
    pub router: axum::Router,
}

impl App {
    /// Assembles the server, starting its media plane when configured
    /// (which needs a tokio runtime). Panics if the media port cannot be
    /// bound; [`App::try_new`] reports it instead.
    pub fn new(store: Store, config: ServerConfig, clock: Arc<dyn Clock>) -> Self {
        Self::try_new(store, config, clock).expect("the secrets key loads and the media port binds")
    }

    pub fn try_new(store: Store, config: ServerConfig, clock: Arc<dyn Clock>) -> Result<Self, ServeError> {
        let secrets = secrets::SecretsKey::load_or_create(&config.secrets_key_file)?;
        let media = match &config.media {
            Some(media) => Some(
                media::start(media, config.listen)
                    .map_err(|source| ServeError::Bind { addr: media.listen.unwrap_or(config.listen), source })?,
            ),
            None => None,
        };
        let (plane, events) = media.unzip();
        let watch_every = config.watch_every;
        let state = AppState::new(store, config, secrets, clock, plane);
        if let Some(every) = watch_every {
            at_risk::start(Arc::downgrade(&state), every);
        }
        tokio::spawn(conversations::segments::run_forever(Arc::downgrade(&state)));
        if let Some(events) = events {
            tokio::spawn(media::route_events(Arc::downgrade(&state), events));
        }
        let router = routes::router(state.clone());
        Ok(Self { state, router })
    }

    /// Serves on `listener` until `shutdown` resolves, then finishes the
    /// requests in flight.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).with_graceful_shutdown(shutdown).await
    }
}

/// `conclave serve`: open storage, print how to reach the server (and the
/// one-time setup token on a fresh install), sweep dormant accounts in the
/// background, serve until `shutdown`.
pub async fn run(
    mut config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = open_store(&config).await?;
    if !config.secure_cookies() {
        tracing::warn!(
            "public URL is plain HTTP on a non-loopback host: put TLS in front, or browsers will leak sessions"
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind { addr: config.listen, source })?;
    // With port 0 the system picks the port; a public URL derived from the
    // listen address must name the real one.
    let bound = listener.local_addr()?;
    if config.public_url == format!("http://{}", config.listen) {
        config.public_url = format!("http://{bound}");
    }
    config.listen = bound;
    let app = App::try_new(store, config, Arc::new(SystemClock))?;
    let state = app.state.clone();
    let sealed = secrets::prepare(&state.store, &state.secrets).await?;
    if sealed > 0 {
        tracing::info!(accounts = sealed, "sealed TOTP seeds an earlier version stored in the clear");
    }
    let setup = accounts::issue_setup_token(&state).await.map_err(|e| ServeError::Startup(format!("{e:?}")))?;
    let engine = match state.store.engine() {
        conclave_store::Engine::Sqlite => format!("SQLite at {}", state.config.data_dir.join("conclave.db").display()),
        conclave_store::Engine::Postgres => "PostgreSQL".to_owned(),
    };
    println!("Conclave is running at {}  (storage: {engine})", state.config.public_url);
    if let Some(media) = &state.media {
        println!("Media (UDP) at {}", media.advertised());
        if let Some(tcp) = media.advertised_tcp() {
            println!("Media (TCP, for networks that block UDP) at {tcp}");
        }
    }
    if let Some(token) = setup {
        println!();
        println!(
            "No organisation exists yet. Open {} to create the first one and its owner with this one-time setup token:",
            state.config.public_url
        );
        println!("  {}", token.as_str());
        println!("(or, from a terminal on this machine: conclave admin bootstrap --email you@example.org --password '<passphrase>' --org 'Your organisation')");
        println!();
    }
    if let Some(addr) = state.config.metrics.listen {
        let metrics = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { addr, source })?;
        println!("Metrics at http://{}/metrics", metrics.local_addr()?);
        let router = routes::metrics_router(state.clone());
        tokio::spawn(async move {
            if let Err(err) = axum::serve(metrics, router).await {
                tracing::error!(error = %err, "the metrics listener stopped");
            }
        });
    }
    tokio::spawn(sweep_dormant_accounts_forever(state.clone()));
    app.serve(listener, shutdown).await?;
    state.store.close().await;
    Ok(())
}

/// Forgets the call-quality samples older than the retention period;
/// how many went.
pub async fn forget_expired_quality(state: &SharedState) -> Result<u64, conclave_store::StoreError> {
    let cutoff = state.now_ms() - state.config.quality_retention.as_millis() as i64;
    state.store.forget_quality_before(cutoff).await
}

async fn sweep_dormant_accounts_forever(state: SharedState) {
    let mut every = tokio::time::interval(state.config.dormant_sweep_every);
    loop {
        every.tick().await;
        match accounts::sweep_dormant_accounts(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(disabled = n, "disabled dormant accounts"),
            Err(err) => tracing::warn!(error = %err, "dormant-account sweep failed"),
        }
        match files::sweep(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "erased files of deleted messages and abandoned uploads"),
            Err(err) => tracing::warn!(error = %err, "file sweep failed"),
        }
        match forget_expired_quality(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(samples = n, "forgot call-quality samples past their retention"),
            Err(err) => tracing::warn!(error = %err, "call-quality sweep failed"),
        }
        match live::tickets::forget_stale(&state.store, state.now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(tokens = n, "forgot resume tokens and tickets left by stopped nodes"),
            Err(err) => tracing::warn!(error = %err, "resume-token sweep failed"),
        }
    }
}
