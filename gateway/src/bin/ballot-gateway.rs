//! `ballot-gateway`: the internet-facing ballot gateway.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gateway::config::{self, Config};
use shared::clock::{Clock, SystemClock};
use std::path::PathBuf;
use std::sync::Arc;

/// The ballot gateway: accepts encrypted, signed ballots over mutual TLS,
/// logs them in an append-only Merkle log, and exports them on signed media.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the gateway's transfer key and log key, and write their public
    /// halves to the media folder for the county's verifier.
    Init {
        /// The gateway's data folder (keys, database).
        #[arg(long)]
        data_dir: PathBuf,
        /// The log's origin name, e.g. ballots.example-county.gov/2026-general.
        #[arg(long)]
        log_origin: String,
        /// Where to write the public keys (removable media).
        #[arg(long)]
        media_out: PathBuf,
    },
    /// Import the signed election manifest and roster from the verifier's media.
    ImportSetup {
        /// The configuration file.
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
        /// The media folder written by `ballot-verifier init`.
        #[arg(long)]
        media: PathBuf,
        /// The election key's fingerprint, read out at the setup ceremony.
        #[arg(long)]
        election_fingerprint: String,
    },
    /// Serve voters until stopped (Ctrl-C or SIGTERM drains open requests).
    Serve {
        /// The configuration file.
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
    },
    /// Write a signed transfer bundle of every ballot logged since the last export.
    Export {
        /// The configuration file.
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
        /// The media folder; the bundle is written as bundle-NNNNNN inside it.
        #[arg(long)]
        out: PathBuf,
        /// Export every ballot from the start of the log.
        #[arg(long)]
        all: bool,
    },
    /// Import the verifier's signed status file.
    ImportStatus {
        /// The configuration file.
        #[arg(long, default_value = "gateway.toml")]
        config: PathBuf,
        /// The status file (status.signed).
        #[arg(long)]
        file: PathBuf,
    },
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping: draining open requests");
}

async fn serve(config: Config) -> Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let gw = gateway::app::build(&config, clock)?;
    gateway::server::raise_file_limit(config.server.max_connections);
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let health = tokio::net::TcpListener::bind(config.server.health_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.health_listen))?;
    let (addr, health_addr) = (listener.local_addr()?, health.local_addr()?);
    tracing::info!(listen = %addr, health = %health_addr, "serving");
    println!("Listening on https://{addr} (health: http://{health_addr}/healthz)");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let health_state = gw.state.clone();
    let mut health_stop = stop_rx.clone();
    let health_task = tokio::spawn(async move {
        gateway::server::run_health(health, health_state, async move {
            let _ = health_stop.changed().await;
        })
        .await
    });
    gateway::server::run(
        listener,
        gw.state.clone(),
        gw.tls.clone(),
        shutdown_signal(),
    )
    .await?;
    let _ = stop_tx.send(true);
    let _ = health_task.await;
    gw.state.seq.stop().await;
    let _ = tokio::task::spawn_blocking(move || gw.writer.join()).await;
    tracing::info!("stopped");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = run(cli);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  because: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let clock = SystemClock;
    match cli.command {
        Command::Init {
            data_dir,
            log_origin,
            media_out,
        } => {
            gateway::setup::init(&data_dir, &log_origin, &media_out, &clock)?;
            println!(
                "Gateway keys created in {}.",
                data_dir.join("keys").display()
            );
            println!(
                "Public keys written to {}: give this media to the county's verifier.",
                media_out.display()
            );
            Ok(())
        }
        Command::ImportSetup {
            config,
            media,
            election_fingerprint,
        } => {
            let c = Config::load(&config)?;
            println!(
                "{}",
                gateway::setup::import_setup(&c.data_dir, &media, &election_fingerprint, &clock)?
            );
            Ok(())
        }
        Command::Serve { config } => {
            let c = Config::load(&config)?;
            init_tracing(&c.logging.format);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve(c))
        }
        Command::Export { config, out, all } => {
            let c = Config::load(&config)?;
            let (crls, inter) = config::pki_files(&c.trust)?;
            match gateway::export::export(&c.data_dir, &crls, &inter, &out, all, &clock)? {
                Some(s) => println!(
                    "Bundle {} written to {}: {} ballots (log entries {} to {}).",
                    s.sequence,
                    s.dir.display(),
                    s.entries,
                    s.first_index,
                    s.first_index + s.entries
                ),
                None => {
                    println!("Nothing new to export: every logged ballot is in an earlier bundle.")
                }
            }
            Ok(())
        }
        Command::ImportStatus { config, file } => {
            let c = Config::load(&config)?;
            println!(
                "{}",
                gateway::export::import_status(&c.data_dir, &file, &clock)?
            );
            Ok(())
        }
    }
}
