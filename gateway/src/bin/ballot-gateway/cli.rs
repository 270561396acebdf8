//! `ballot-gateway`'s command line: what each command takes, resolved by
//! clap into typed values before any work starts. What the commands do is
//! in `main.rs` and the library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The ballot gateway: accepts encrypted, signed ballots over mutual TLS,
/// logs them in an append-only Merkle log, and exports them on signed media.
#[derive(Parser, Debug)]
#[command(version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The configuration file option every command after `init` takes.
#[derive(clap::Args, Debug)]
pub(crate) struct ConfigArg {
    /// The configuration file.
    #[arg(long = "config", default_value = "gateway.toml")]
    pub(crate) path: PathBuf,
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
        #[command(flatten)]
        config: ConfigArg,
        /// The media folder written by `ballot-verifier init`.
        #[arg(long)]
        media: PathBuf,
        /// The election key's fingerprint, read out at the setup ceremony.
        #[arg(long, value_parser = shared::pgp::parse_fingerprint)]
        election_fingerprint: String,
    },
    /// Serve voters until stopped (Ctrl-C or SIGTERM drains open requests).
    Serve {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Write a signed transfer bundle of every ballot logged since the last export.
    Export {
        #[command(flatten)]
        config: ConfigArg,
        /// The media folder; the bundle is written as bundle-NNNNNN inside it.
        #[arg(long)]
        out: PathBuf,
        /// Export every ballot from the start of the log.
        #[arg(long)]
        all: bool,
    },
    /// Copy the keys and a consistent snapshot of the database to a new
    /// folder, while the gateway serves (checked before it says done).
    Backup {
        #[command(flatten)]
        config: ConfigArg,
        /// A new or empty folder for the backup (keep it as safe as the keys).
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a backup the gateway's data folder (which must not exist or be
    /// empty). Ballots acknowledged after the backup are not in it: read
    /// docs/operations.md before restoring an older backup.
    Restore {
        #[command(flatten)]
        config: ConfigArg,
        /// The backup folder written by `ballot-gateway backup`.
        #[arg(long)]
        from: PathBuf,
    },
    /// Import the verifier's signed status file.
    ImportStatus {
        #[command(flatten)]
        config: ConfigArg,
        /// The status file (status.signed).
        #[arg(long)]
        file: PathBuf,
    },
}
