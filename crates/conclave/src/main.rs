//! `conclave`: the single binary. `serve` runs the server; `admin` manages a
//! server's database directly (bootstrap, users, organisations, policies,
//! audit), on the same storage `serve` uses, even while it runs.

mod admin;
mod bot;
mod chat;
mod config;
mod impair;
mod loadtest;
mod loadtest_chat;
mod loadtest_media;
mod progress;
mod thumbnail;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "conclave", version, about = "Secure video meetings and end-to-end-encrypted messaging, self-hosted.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded defaults: one SQLite file, one node).
    Serve(Box<config::ServeArgs>),
    /// Administer a server's storage: bootstrap, users, organisations, policies, audit.
    Admin(admin::AdminArgs),
    /// Join a meeting as a headless participant, wait to be admitted, chat, leave.
    Bot(bot::BotArgs),
    /// Team messaging from a terminal, end-to-end encrypted on this machine.
    Chat(chat::ChatArgs),
    /// Load the server and measure it beside a floor measured in the same run.
    Loadtest(loadtest::LoadtestArgs),
    /// Relay UDP with loss, jitter, a bandwidth cap or an outage, for media tests on bad networks.
    Impair(impair::ImpairArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Bot(args) => bot::run(args).await,
            Command::Chat(args) => chat::run(args).await,
            Command::Loadtest(args) => loadtest::run(args).await,
            Command::Impair(args) => impair::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: config::ServeArgs) -> anyhow::Result<()> {
    let (config, log_format) = config::resolve_serve(&args)?;
    config::init_logging(log_format);
    tracing::info!(listen = %config.listen, data_dir = %config.data_dir.display(), database = %config.database_url.as_deref().map(conclave_store::redact_url).unwrap_or_else(|| "sqlite".into()), "starting");
    conclave_server::run(config, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, finish what is in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
