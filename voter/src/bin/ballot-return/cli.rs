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
    /// For development and tests, instead of a card: your certificate (PEM).
    #[arg(long, requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// For development and tests, instead of a card: your private key (PEM).
    #[arg(long, requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// Your card's issuing CA certificates, to include (PEM).
    #[arg(long)]
    pub(crate) chain: Option<PathBuf>,
}

/// Which card, and how to reach it.
#[derive(clap::Args, Debug)]
pub(crate) struct CardArgs {
    /// The card software's PKCS #11 module (OpenSC, ActivClient); found in
    /// the usual places if not given.
    #[arg(long)]
    pub(crate) pkcs11_module: Option<PathBuf>,
    /// The label of your card, when several are inserted.
    #[arg(long = "card")]
    pub(crate) card_label: Option<String>,
    /// Read the PIN from this file descriptor (its first line) instead of
    /// asking; for automation. The PIN is never taken from the command line
    /// or the environment.
    #[arg(long)]
    pub(crate) pin_fd: Option<u32>,
}

/// What `send` needs.
#[derive(clap::Args, Debug)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) conn: Connection,
    #[command(flatten)]
    pub(crate) card: CardArgs,
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
    /// Show what is on your card (for you or a support desk): the card, its
    /// certificates, your EDIPI, expiry dates, and the PIN's state. No PIN
    /// is asked.
    Card {
        #[command(flatten)]
        card: CardArgs,
    },
}
