//! `ballot-return`'s command line, resolved by clap into typed values
//! before any work starts. What the commands do is in `main.rs` and the
//! `voter` library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Send your marked ballot to your county election office over the
/// internet, signed with your CAC and sealed so only the county can open it.
#[derive(Parser, Debug)]
#[command(name = "ballot-return", version, about)]
pub(crate) struct Cli {
    /// What to do; with none, the page opens in your browser (`open`).
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// How the gateway is trusted, and, for development, a key in a file.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct Connection {
    /// The certificate authority of the gateway's TLS certificate (PEM),
    /// for test setups; otherwise this computer's trust store is used.
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
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

/// Where receipts are kept.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct ReceiptsArgs {
    /// The receipts folder; your own data folder's ballot-return/receipts
    /// if not given.
    #[arg(long, value_name = "FOLDER")]
    pub(crate) receipts: Option<PathBuf>,
}

/// Which card, and how to reach it.
#[derive(clap::Args, Debug, Default)]
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

/// What `open` takes: all optional.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct OpenArgs {
    /// The gateway address from your ballot instructions, to fill in.
    pub(crate) gateway: Option<String>,
    /// The election key fingerprint from your instructions, to fill in.
    pub(crate) election_fingerprint: Option<String>,
    #[command(flatten)]
    pub(crate) conn: Connection,
    #[command(flatten)]
    pub(crate) card: CardArgs,
    #[command(flatten)]
    pub(crate) receipts: ReceiptsArgs,
    /// How many times to try on a poor connection.
    #[arg(long, default_value_t = 8)]
    pub(crate) attempts: u32,
    /// Print the page's one-time address instead of opening a browser.
    #[arg(long)]
    pub(crate) no_browser: bool,
}

/// What `send` needs.
#[derive(clap::Args, Debug)]
pub(crate) struct SendArgs {
    /// The gateway address from your ballot instructions (https://…).
    pub(crate) gateway: String,
    /// The election key fingerprint printed in your ballot instructions
    /// (spaces allowed: put it in quotes).
    #[arg(value_parser = shared::pgp::parse_fingerprint)]
    pub(crate) election_fingerprint: String,
    /// Your marked ballot (PDF, or a selections file).
    pub(crate) ballot: PathBuf,
    #[command(flatten)]
    pub(crate) conn: Connection,
    #[command(flatten)]
    pub(crate) card: CardArgs,
    #[command(flatten)]
    pub(crate) receipts: ReceiptsArgs,
    /// Your ballot style, if the county's roster should not be asked for it.
    #[arg(long)]
    pub(crate) ballot_style: Option<String>,
    /// The ballot's file type; guessed from the file name if absent.
    #[arg(long)]
    pub(crate) media_type: Option<String>,
    /// Accepts the voter declaration without asking (it is still printed).
    /// Without it you are asked at the keyboard.
    #[arg(long)]
    pub(crate) accept_declaration: bool,
    /// How many times to try on a poor connection.
    #[arg(long, default_value_t = 8)]
    pub(crate) attempts: u32,
    /// Seconds without any progress before a try is given up (the upload
    /// itself may take as long as it needs while bytes move).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=3600))]
    pub(crate) stall_timeout: u64,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Write the manual pages and shell completions (for packaging).
    #[command(hide = true)]
    GenerateDocs {
        /// The folder to write man/ and completions/ into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Open ballot-return's page in your browser (what running it with no
    /// command does): it walks you through sending your ballot and checking
    /// on it later. It is served on this computer only (127.0.0.1).
    Open(Box<OpenArgs>),
    /// Sign, seal and send your marked ballot; save the receipt.
    Send(Box<SendArgs>),
    /// Check that your ballots are still in the county's log, and what
    /// became of them: every receipt in your receipts folder, or the files
    /// given.
    Status {
        /// Receipt files; all of your receipts folder if none are given.
        files: Vec<PathBuf>,
        /// The certificate authority of the gateway's TLS certificate (PEM),
        /// for test setups; otherwise this computer's trust store is used.
        #[arg(long)]
        ca: Option<PathBuf>,
        #[command(flatten)]
        receipts: ReceiptsArgs,
    },
    /// Write a receipt as a one-page PDF to print and keep: every receipt
    /// in your receipts folder, or the files given, each beside its file
    /// (or in --out).
    Print {
        /// Receipt files; all of your receipts folder if none are given.
        files: Vec<PathBuf>,
        /// The folder to write the PDFs into.
        #[arg(long, value_name = "FOLDER")]
        out: Option<PathBuf>,
        #[command(flatten)]
        receipts: ReceiptsArgs,
    },
    /// List the receipts you have kept.
    Receipts {
        #[command(flatten)]
        receipts: ReceiptsArgs,
    },
    /// Show what is on your card (for you or a support desk): the card, its
    /// certificates, your EDIPI, expiry dates, and the PIN's state. No PIN
    /// is asked.
    Card {
        #[command(flatten)]
        card: CardArgs,
    },
}
