//! `ballot-witness`: an observer's witness for the ballot log (C2SP
//! tlog-witness). `init` makes its key, `add-log` trusts a log's key (from
//! the signed election manifest), `serve` answers the gateway.
#![forbid(unsafe_code)]

use anyhow::Result;
use clap::{Parser, Subcommand};
use shared::clock::SystemClock;
use std::path::PathBuf;
use std::sync::Arc;

/// An observer's witness: cosigns each checkpoint of the ballot log that is
/// consistent with every one it cosigned before.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The witness's folder (its key and its database).
    #[arg(long)]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the witness key; prints the verifier key to give the county.
    Init {
        /// The witness's name, e.g. observers.example-party.org/witness.
        #[arg(long)]
        name: String,
    },
    /// Trust a log: its verifier key, as the election manifest names it.
    AddLog {
        /// The log's verifier key (C2SP vkey, type 0x01).
        #[arg(long)]
        log_key: String,
    },
    /// Answer add-checkpoint requests until stopped (Ctrl-C or SIGTERM).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7380")]
        listen: String,
    },
}

fn main() -> std::process::ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", shared::text::printable(&format!("{e:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init { name } => {
            let vkey = observer::witness::init(&cli.dir, &name)?;
            println!("Witness key created. Give the county this verifier key:\n{vkey}");
        }
        Command::AddLog { log_key } => {
            let w = observer::witness::Witness::open(&cli.dir, Arc::new(SystemClock))?;
            let origin = w.add_log(&log_key)?;
            println!("Trusting the log {origin}");
        }
        Command::Serve { listen } => {
            let w = Arc::new(observer::witness::Witness::open(
                &cli.dir,
                Arc::new(SystemClock),
            )?);
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&listen).await?;
                println!(
                    "ballot-witness {} serving on http://{}/",
                    w.vkey(),
                    listener.local_addr()?
                );
                observer::serve::serve(listener, w, async {
                    let mut term =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                            .ok();
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {},
                        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
                    }
                })
                .await;
                anyhow::Ok(())
            })?;
        }
    }
    Ok(())
}
