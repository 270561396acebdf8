//! `ballot-gateway`: the internet-facing ballot gateway.
#![forbid(unsafe_code)]

mod cli;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Command};
use gateway::config::{self, Config};
use shared::clock::{Clock, SystemClock};
use std::sync::Arc;

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a pipe gets plain text.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
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
    println!(
        "Listening on https://{addr} (health: http://{health_addr}{})",
        shared::api::HEALTH
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    gw.serve(listener, Some(health), shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Causes may carry text from the network or the media.
            eprintln!("error: {}", shared::text::printable(&e.to_string()));
            for cause in e.chain().skip(1) {
                eprintln!("  because: {}", shared::text::printable(&cause.to_string()));
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let clock = SystemClock;
    match cli.command {
        Command::GenerateDocs { out } => {
            let files = shared::cli_docs::write(
                <Cli as clap::CommandFactory>::command(),
                env!("CARGO_BIN_NAME"),
                &out,
            )?;
            println!("{} files written under {}", files.len(), out.display());
            Ok(())
        }
        Command::Init {
            data_dir,
            log_origin,
            media_out,
        } => {
            gateway::setup::init(&data_dir, &log_origin, &media_out, &clock)?;
            println!(
                "Gateway keys created in {}.",
                data_dir.join(gateway::setup::KEYS_DIR).display()
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
            let c = Config::load(&config.path)?;
            println!(
                "{}",
                gateway::setup::import_setup(
                    &c.data_dir,
                    &gateway::config::load_anchors(&c.trust)?,
                    &media,
                    &election_fingerprint,
                    &clock
                )?
            );
            Ok(())
        }
        Command::Serve { config } => {
            let c = Config::load(&config.path)?;
            init_tracing(&c.logging.format);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve(c))
        }
        Command::Export { config, out, all } => {
            let c = Config::load(&config.path)?;
            let (crls, inter) = config::pki_files(&c.trust)?;
            match gateway::export::export(&c.data_dir, &crls, &inter, &out, all, &clock)? {
                Some(s) => println!(
                    "Bundle {} written to {}: {} ballots (log entries {} to {}) and {} witnessed checkpoints.",
                    s.sequence,
                    s.dir.display(),
                    s.entries,
                    s.first_index,
                    s.first_index + s.entries,
                    s.witnessed
                ),
                None => {
                    println!("Nothing new to export: every logged ballot and witnessed checkpoint is in an earlier bundle.")
                }
            }
            Ok(())
        }
        Command::Backup { config, out } => {
            let c = Config::load(&config.path)?;
            let s = gateway::backup::backup(&c.data_dir, &out, &clock)?;
            println!(
                "Backup written to {} and checked: the log up to size {} ({} bytes of database), \
                 and the gateway's secret keys. Keep it as safe as the keys themselves.",
                out.display(),
                s.log_size,
                s.db_bytes
            );
            Ok(())
        }
        Command::Restore { config, from } => {
            let c = Config::load(&config.path)?;
            let s = gateway::backup::restore(&from, &c.data_dir, &clock)?;
            println!(
                "Restored {} from {} and checked: the log up to size {}.",
                c.data_dir.display(),
                from.display(),
                s.log_size
            );
            println!(
                "If this gateway acknowledged any ballot after the backup was taken (its log \
                 was larger than {}), those ballots are not here and their voters' receipts \
                 now contradict this log: it is a fork. Witnesses will refuse to cosign it, \
                 the verifier will refuse bundles that do not extend what it imported, and \
                 voters checking their receipts will see it. Announce it and follow \
                 \"Restoring from a backup\" in docs/operations.md before serving.",
                s.log_size
            );
            Ok(())
        }
        Command::ImportStatus { config, file } => {
            let c = Config::load(&config.path)?;
            println!(
                "{}",
                gateway::export::import_status(&c.data_dir, &file, &clock)?
            );
            Ok(())
        }
    }
}
