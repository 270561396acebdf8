//! `ballot-return`'s command line, resolved by clap into typed values
//! before any work starts. What the commands do is in `main.rs` and the
//! `voter` library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Send your marked ballot to your county election office over the
/// internet, signed with your CAC and sealed so only the county can open it.
#[derive(Parser, Debug)]
#[command(version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(clap::Args, Debug)]
pub(crate) struct Connection {
    /// The gateway address from your ballot instructions (https://…).
    #[arg(long)]
    pub(crate) gateway: String,
    /// The certificate authority of the gateway's TLS certificate (PEM).
    #[arg(long)]
    pub(crate) ca: PathBuf,
    /// Your certificate (PEM): the PIV authentication certificate of your CAC.
    #[arg(long)]
    pub(crate) cert: PathBuf,
    /// Your private key (PEM).
    #[arg(long)]
    pub(crate) key: PathBuf,
    /// Your card's issuing CA certificates, to include (PEM).
    #[arg(long)]
    pub(crate) chain: Option<PathBuf>,
}

/// What `send` needs.
#[derive(clap::Args, Debug)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) conn: Connection,
    /// The election key fingerprint printed in your ballot instructions.
    #[arg(long, value_parser = shared::pgp::parse_fingerprint)]
    pub(crate) election_fingerprint: String,
    /// Your marked ballot (PDF, or a selections file).
    #[arg(long)]
    pub(crate) ballot: PathBuf,
    /// Your ballot style, printed on your blank ballot.
    #[arg(long)]
    pub(crate) ballot_style: String,
    /// The ballot's file type; guessed from the file name if absent.
    #[arg(long)]
    pub(crate) media_type: Option<String>,
    /// Confirms that you accept the voter declaration (it is printed first).
    #[arg(long)]
    pub(crate) accept_declaration: bool,
    /// Where to save the receipt.
    #[arg(long, default_value = "ballot-receipt.json")]
    pub(crate) receipt: PathBuf,
    /// How many times to try on a poor connection.
    #[arg(long, default_value_t = 8)]
    pub(crate) attempts: u32,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Sign, seal and send your marked ballot; save the receipt.
    Send(SendArgs),
    /// Check that your ballot is still in the county's log, and what became of it.
    Status {
        #[command(flatten)]
        conn: Connection,
        /// The receipt saved when you sent your ballot.
        #[arg(long, default_value = "ballot-receipt.json")]
        receipt: PathBuf,
    },
}
