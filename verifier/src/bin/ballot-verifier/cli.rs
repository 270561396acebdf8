//! `ballot-verifier`'s command line, resolved by clap into typed values
//! (times, fingerprints, trust anchors) before any work starts. What the
//! commands do is in `main.rs` and the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use shared::clock::UnixTime;
use shared::pki::AnchorSpec;
use shared::x509::IdentityRule;
use std::path::PathBuf;

fn rfc3339(s: &str) -> Result<UnixTime, String> {
    UnixTime::parse_rfc3339(s).ok_or_else(|| format!("{s} is not a time like 2026-11-03T19:00:00Z"))
}

/// Trust anchors for voter certificates. At `init` they are pinned in the
/// signed manifest (the gateway must be configured with exactly these); at
/// `process` they may be given again to confirm them, and an anchor the
/// manifest does not pin is refused.
#[derive(clap::Args, Debug)]
pub(crate) struct TrustArgs {
    /// A DoD trust anchor (PEM); repeat for several.
    #[arg(long)]
    anchor: Vec<PathBuf>,
    /// A county voter CA (PEM).
    #[arg(long)]
    county_anchor: Option<PathBuf>,
    /// The county CA's subjectAltName URI prefix for voter ids.
    #[arg(long)]
    county_uri_prefix: Option<String>,
    /// The county CA's accepted policy OID.
    #[arg(long)]
    county_policy: Vec<String>,
}

impl TrustArgs {
    /// The anchors as the shared type the gateway's configuration also
    /// resolves to.
    pub(crate) fn anchors(&self) -> Result<Vec<AnchorSpec>> {
        let named = |p: &PathBuf| {
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string())
        };
        let mut out: Vec<AnchorSpec> = self
            .anchor
            .iter()
            .map(|p| AnchorSpec {
                name: named(p),
                ..AnchorSpec::dod(p.clone())
            })
            .collect();
        if let Some(c) = &self.county_anchor {
            let prefix = self
                .county_uri_prefix
                .clone()
                .context("--county-anchor needs --county-uri-prefix")?;
            out.push(AnchorSpec {
                name: named(c),
                certificate: c.clone(),
                identity: IdentityRule::UriPrefix(prefix),
                policies: self.county_policy.clone(),
            });
        }
        Ok(out)
    }
}

/// The county's offline verifier: holds the election key, imports transfer
/// bundles from media, decides every ballot, and writes the canvass outputs.
#[derive(Parser, Debug)]
#[command(version, about)]
pub(crate) struct Cli {
    /// The verifier's folder (keys, state).
    #[arg(long, global = true, default_value = "verifier-home")]
    pub(crate) home: PathBuf,
    /// Use the election key even though a network interface is up (tests only).
    #[arg(long, global = true)]
    pub(crate) allow_network: bool,
    /// Read the passphrases from this open file descriptor instead of prompts,
    /// one per line, in the order the prompts would ask them.
    #[arg(long, global = true)]
    pub(crate) passphrase_fd: Option<u32>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    /// Write the manual pages and shell completions (for packaging).
    #[command(hide = true)]
    GenerateDocs {
        /// The folder to write man/ and completions/ into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Create the election and witness keys, pin the gateway's keys, and write
    /// the signed election manifest and roster onto media for the gateway.
    Init {
        /// The media from `ballot-gateway init` (its public keys).
        #[arg(long)]
        gateway_media: PathBuf,
        /// Where to write the manifest, roster and public election key.
        #[arg(long)]
        out_media: PathBuf,
        /// Election id (letters, digits, - _ . :).
        #[arg(long)]
        election_id: String,
        /// Title shown to voters.
        #[arg(long)]
        title: String,
        /// County or state.
        #[arg(long)]
        jurisdiction: String,
        /// First moment ballots are accepted (RFC 3339, e.g. 2026-09-19T00:00:00Z).
        #[arg(long, value_parser = rfc3339)]
        opens: UnixTime,
        /// Deadline (RFC 3339).
        #[arg(long, value_parser = rfc3339)]
        closes: UnixTime,
        /// A text file with the voter declaration.
        #[arg(long)]
        declaration_file: PathBuf,
        /// The county's roster CSV (voter_id,edipi,ballot_style).
        #[arg(long)]
        roster_csv: PathBuf,
        /// The name of the verifier's own witness key (it cosigns each
        /// imported checkpoint and the status file's).
        #[arg(long)]
        witness_name: String,
        /// An observer's witness, as URL,KEY: its submission URL and its
        /// cosignature verifier key (C2SP vkey, type 0x04). Repeat for each.
        #[arg(long = "witness", value_parser = witness, required = true)]
        witnesses: Vec<shared::manifest::ManifestWitness>,
        /// How many witnesses must cosign a checkpoint (default: a majority).
        #[arg(long)]
        witness_quorum: Option<u8>,
        /// How long after the deadline the closing checkpoint may be cosigned.
        #[arg(long, default_value_t = 600)]
        grace_seconds: u32,
        /// Largest accepted PDF ballot, bytes.
        #[arg(long, default_value_t = 5 * 1024 * 1024)]
        max_pdf_bytes: u32,
        #[command(flatten)]
        custody: CustodyArgs,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Hand the custody of the election key to a new set of trustees (one
    /// leaves, one joins, or the threshold changes): k current trustees give
    /// their shares, every new trustee gets a new share. The election key and
    /// its fingerprint do not change; the old shares open nothing any more.
    Reshare {
        /// A current trustee's media holding their share; repeat for k of them.
        #[arg(long = "share", value_name = "MEDIA", required = true)]
        shares: Vec<PathBuf>,
        #[command(flatten)]
        custody: CustodyArgs,
    },
    /// Import every transfer bundle on the media (in order; one imported before is checked again: the same bytes are a no-op, anything else is refused as tampering).
    Import {
        /// The media folder holding bundle-NNNNNN folders (or one bundle folder).
        media: PathBuf,
    },
    /// Import the county's own CRLs from its own media (every *.crl, *.pem
    /// and *.der at the top of the folder): complete CRLs only, each from a
    /// CA this verifier knows and verified with its key; all or none.
    ImportCrls {
        /// The media folder holding the CRL files.
        media: PathBuf,
    },
    /// Decide every imported ballot and write the canvass outputs. Before the
    /// deadline plus the grace period: statuses, counts and the signed
    /// status file only. After it: the final canvass, with the ballots'
    /// contents, once.
    Process {
        /// A new folder for this run's outputs.
        #[arg(long)]
        out: PathBuf,
        /// Write the ballots' contents although a final canvass already did,
        /// for this reason (recorded in the report and the verifier's state).
        #[arg(long, value_name = "REASON")]
        again: Option<String>,
        /// A trustee's media holding their share of the election key; repeat
        /// for k trustees (asked at the keyboard when not given).
        #[arg(long = "share", value_name = "MEDIA")]
        shares: Vec<PathBuf>,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Verify a voter's receipt offline.
    Audit {
        /// The receipt (ballot-receipt.json from ballot-return, or a .tlog-proof).
        #[arg(long)]
        receipt: PathBuf,
        /// The signed election manifest.
        #[arg(long)]
        manifest: PathBuf,
        /// The election key fingerprint.
        #[arg(long, value_parser = shared::pgp::parse_fingerprint)]
        election_fingerprint: String,
        /// A later published checkpoint.
        #[arg(long)]
        later_checkpoint: Option<PathBuf>,
        /// The consistency proof to it (one base64 hash per line).
        #[arg(long)]
        consistency_proof: Option<PathBuf>,
        /// The signed status file.
        #[arg(long, requires = "status_proof")]
        status_file: Option<PathBuf>,
        /// The consistency proof between the receipt's checkpoint and the
        /// status file's: the gateway's JSON answer to
        /// GET /v1/log/consistency?from=M&to=N, or one base64 hash per line
        /// (an empty file when the sizes are equal).
        #[arg(long)]
        status_proof: Option<PathBuf>,
    },
}

/// Who holds the election key: the board's choice at `init` and `reshare`.
#[derive(clap::Args, Debug)]
pub(crate) struct CustodyArgs {
    /// A trustee, as "NAME=MEDIA": their name and the folder of their own
    /// media, where their share is written. Repeat for each (n trustees).
    #[arg(long = "trustee", value_parser = trustee, required = true)]
    pub(crate) trustees: Vec<verifier::custody::Trustee>,
    /// How many trustees together open the election key (k).
    #[arg(long)]
    pub(crate) threshold: u8,
}

fn trustee(s: &str) -> Result<verifier::custody::Trustee, String> {
    let (name, media) = s
        .split_once('=')
        .ok_or("expected NAME=MEDIA (the trustee's name, =, their media folder)")?;
    Ok(verifier::custody::Trustee {
        name: name.trim().to_owned(),
        media: PathBuf::from(media.trim()),
    })
}

/// `URL,KEY`: split at the last comma (a key has none).
fn witness(s: &str) -> Result<shared::manifest::ManifestWitness, String> {
    let (url, key) = s
        .rsplit_once(',')
        .ok_or("expected URL,KEY (the witness's URL, a comma, its verifier key)")?;
    let k = shared::note::NoteVerifier::from_vkey(key.trim())
        .map_err(|e| format!("the witness key is not a verifier key: {e}"))?;
    if k.sig_type() != shared::note::TYPE_COSIGNATURE {
        return Err("the witness key is not a cosignature (type 0x04) key".into());
    }
    Ok(shared::manifest::ManifestWitness {
        key: key.trim().to_owned(),
        url: url.trim().to_owned(),
    })
}
