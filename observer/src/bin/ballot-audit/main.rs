//! `ballot-audit`: an auditor's or observer's checks of a ballot-return
//! gateway, with no secret and no county access: a folder of receipts
//! voters handed in, the log followed over time, the county's signed status
//! file. Exit status: 0 when everything checked holds, 3 when something
//! does not (each finding marked PROBLEM says what), 1 when the checks could
//! not run.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use observer::audit::{self, Finding};
use shared::clock::{Clock, SystemClock};
use std::path::PathBuf;
use std::process::ExitCode;

/// Check a ballot-return gateway as an auditor: receipts, the log, the
/// county's status file.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The gateway's address, `https://host[:port]`.
    #[arg(long)]
    gateway: String,
    /// The CA certificate(s) the gateway's TLS certificate chains to (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// The election key's fingerprint, as the county published it (hex).
    #[arg(long, value_parser = parse_fpr)]
    election_fingerprint: String,
    #[command(subcommand)]
    command: Command,
}

fn parse_fpr(s: &str) -> Result<String, String> {
    shared::pgp::parse_fingerprint(s)
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check every receipt file (as `ballot-return send` saved it) in a
    /// folder.
    Receipts {
        /// The folder of receipts voters handed in.
        folder: PathBuf,
    },
    /// Follow the gateway's log: store every checkpoint seen, check each
    /// against the ones before, and raise the alarm on a fork.
    Monitor {
        /// The monitor's folder (its database and fork evidence).
        #[arg(long)]
        state: PathBuf,
        /// Seconds between looks.
        #[arg(long, default_value_t = 60)]
        every: u64,
        /// Stop after this many looks (0: until stopped).
        #[arg(long, default_value_t = 0)]
        rounds: u64,
    },
    /// Check the county's signed status file: signatures, coverage, counts.
    StatusFile {
        /// A status file to check instead of the one the gateway serves.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

fn print(findings: &[Finding]) {
    for f in findings {
        println!("{f}");
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let roots = shared::pki::tls_chain_from_pem(
        &std::fs::read(&cli.ca)
            .with_context(|| format!("cannot read the CA file {}", cli.ca.display()))?,
    )?;
    // No client certificate: the gateway cannot tell who is checking.
    let tls = voter::tls::client_config(&roots, None, &[b"http/1.1"])?;
    let gw = voter::client::Gateway::new(&cli.gateway, tls)?;
    let clock = SystemClock;
    let fpr = &cli.election_fingerprint;
    let problems = match cli.command {
        Command::Receipts { folder } => {
            let findings = audit::check_receipts(&gw, fpr, &folder).await?;
            print(&findings);
            println!(
                "\n{} receipt check(s), {} problem(s).",
                findings.len(),
                audit::problems(&findings)
            );
            audit::problems(&findings)
        }
        Command::Monitor {
            state,
            every,
            rounds,
        } => {
            let manifest = gw.manifest(fpr).await?;
            let mut monitor = audit::Monitor::open(&state)?;
            let mut problems = 0;
            let mut round = 0u64;
            loop {
                round += 1;
                let now = clock.now();
                match monitor.observe(&gw, &manifest, now).await {
                    Ok(obs) => {
                        for f in &obs.findings {
                            println!("{now} {f}");
                        }
                        problems += audit::problems(&obs.findings);
                        if !obs.evidence.is_empty() {
                            // A fork is proven: stop and hand it to people.
                            break;
                        }
                    }
                    // The gateway unreachable is not a fork: say so, go on.
                    Err(e) => println!("{now} could not look at the gateway: {e:#}"),
                }
                if rounds != 0 && round >= rounds {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_secs(every.max(1))).await;
            }
            problems
        }
        Command::StatusFile { file } => {
            let bytes = match &file {
                Some(p) => Some(
                    shared::files::read_bounded(p, audit::MAX_STATUS_FILE)
                        .with_context(|| format!("cannot read {}", p.display()))?,
                ),
                None => None,
            };
            let (findings, counts) = audit::check_status_file(&gw, fpr, bytes, clock.now()).await?;
            print(&findings);
            if let Some(c) = counts {
                print!("\n{}", audit::describe_counts(&c));
            }
            audit::problems(&findings)
        }
    };
    Ok(if problems > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(Cli::parse())) {
        Ok(code) => code,
        Err(e) => {
            // The gateway's words may be in the chain: shown escaped.
            eprintln!("error: {}", shared::text::printable(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
