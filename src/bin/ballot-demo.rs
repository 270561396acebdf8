//! `ballot-demo`: the whole system on loopback, in a temporary folder, with
//! no prompts; exits 0 only if every expected outcome happened.
//! `ballot-demo serve`: the same county's election left running, for a
//! person to send a ballot by hand with the real `ballot-return`.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The ballot return system on this computer's loopback, with the
/// development PKI, real TLS, SQLite and post-quantum OpenPGP.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the whole story unattended and checks every outcome (the
    /// default).
    Story,
    /// Serves an election for you to send a ballot with `ballot-return`,
    /// as a service member would, then counts it when you press Enter.
    Serve {
        /// The gateway's port on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 8443)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command.unwrap_or(Command::Story) {
        Command::Story => story(&rt),
        Command::Serve { port } => {
            let stdin = std::io::stdin();
            let result = rt.block_on(ballot_return_e2e::hands_on::serve(
                port,
                &mut stdin.lock(),
                &mut |line| println!("{line}"),
            ));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => failed(&e),
            }
        }
    }
}

fn story(rt: &tokio::runtime::Runtime) -> ExitCode {
    let dir = match tempfile::Builder::new().prefix("ballot-demo-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temporary folder: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("Ballot return demo, in {}\n", dir.path().display());
    let result = rt.block_on(ballot_return_e2e::demo::run_demo(dir.path(), &mut |line| {
        println!("{line}")
    }));
    match result {
        Ok(outcome) => {
            println!("\nThe canvass report:\n\n{}", outcome.report);
            println!("Every expected outcome happened. (The demo's folder is removed on exit.)");
            ExitCode::SUCCESS
        }
        Err(e) => failed(&e),
    }
}

fn failed(e: &anyhow::Error) -> ExitCode {
    eprintln!("\nTHE DEMO FAILED: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  because: {cause}");
    }
    ExitCode::FAILURE
}
