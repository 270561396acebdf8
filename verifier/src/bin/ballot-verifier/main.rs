//! `ballot-verifier`: the county's offline, air-gapped program.
#![forbid(unsafe_code)]

mod cli;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Command};
use shared::clock::SystemClock;
use shared::manifest::MediaRule;
use verifier::ceremony::{self, ElectionParams};

/// Whether a progress line was started and not ended: an error printed
/// then starts on a new line.
static PROGRESS_OPEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn progress(label: &'static str) -> impl FnMut(u64, u64) {
    use std::sync::atomic::Ordering;
    let mut last = u64::MAX;
    move |done, total| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        if pct / 5 != last / 5 || done == total {
            eprint!("\r{label}: {done} of {total} ({pct}%)   ");
            PROGRESS_OPEN.store(true, Ordering::SeqCst);
            if done == total {
                eprintln!();
                PROGRESS_OPEN.store(false, Ordering::SeqCst);
            }
            last = pct;
        }
    }
}

/// The verifier's state in `home`, which `init` created.
fn open_state(home: &std::path::Path) -> Result<rusqlite::Connection> {
    if !home.is_dir() {
        anyhow::bail!(
            "the verifier's folder {} does not exist: run `ballot-verifier init` first, or give the right --home",
            home.display()
        );
    }
    let path = verifier::state::db_path(home);
    if !path.is_file() {
        anyhow::bail!(
            "{} holds no verifier state ({} is missing): run `ballot-verifier init` first, or give the right --home",
            home.display(),
            path.display()
        );
    }
    verifier::state::open(&path)
        .with_context(|| format!("cannot open the verifier's state {}", path.display()))
}

fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only on a terminal: a log file or a pipe gets plain text.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            if PROGRESS_OPEN.swap(false, std::sync::atomic::Ordering::SeqCst) {
                eprintln!();
            }
            // Causes may carry text from the network or the media.
            eprintln!("error: {}", shared::text::printable(&e.to_string()));
            for cause in e.chain().skip(1) {
                eprintln!("  because: {}", shared::text::printable(&cause.to_string()));
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<std::process::ExitCode> {
    let clock = SystemClock;
    let ok = std::process::ExitCode::SUCCESS;
    match cli.command {
        Command::GenerateDocs { out } => {
            let files = shared::cli_docs::write(
                <Cli as clap::CommandFactory>::command(),
                env!("CARGO_BIN_NAME"),
                &out,
            )?;
            println!("{} files written under {}", files.len(), out.display());
            Ok(ok)
        }
        Command::Init {
            gateway_media,
            out_media,
            election_id,
            title,
            jurisdiction,
            opens,
            closes,
            declaration_file,
            roster_csv,
            witness_name,
            witnesses,
            witness_quorum,
            grace_seconds,
            max_pdf_bytes,
            custody,
            trust,
        } => {
            verifier::airgap::air_gap_guard(cli.allow_network)?;
            let mut anchors = Vec::new();
            for spec in trust.anchors()? {
                anchors.extend(spec.load()?);
            }
            anyhow::ensure!(
                !anchors.is_empty(),
                "give the trust anchors voters' certificates chain to (--anchor, --county-anchor): the manifest pins them"
            );
            let params = ElectionParams {
                election_id,
                title,
                jurisdiction,
                opens_at: opens,
                closes_at: closes,
                declaration: std::fs::read_to_string(&declaration_file)?
                    .trim()
                    .to_owned(),
                accepted_media: vec![MediaRule {
                    media_type: shared::ballot::MEDIA_PDF.into(),
                    max_size: max_pdf_bytes,
                }],
                witness_name,
                witness_quorum: witness_quorum
                    .unwrap_or_else(|| u8::try_from(witnesses.len() / 2 + 1).unwrap_or(u8::MAX)),
                witnesses,
                grace_seconds,
                anchors,
            };
            let csv = std::fs::read_to_string(&roster_csv)
                .with_context(|| format!("cannot read {}", roster_csv.display()))?;
            verifier::custody::check_plan(custody.threshold, &custody.trustees)?;
            let passphrases = trustee_passphrases(cli.passphrase_fd, &custody.trustees, None)?;
            let (fpr, transcript) = verifier::custody::init_with_trustees(
                &cli.home,
                &gateway_media,
                &out_media,
                &params,
                &csv,
                custody.threshold,
                &custody.trustees,
                &passphrases,
                &clock,
            )?;
            // The board checks the pinned anchors' hashes against the
            // published ones before signing.
            let mut pinned = String::from("Trust anchors pinned in the signed manifest (voters are validated under these only):\n");
            for a in params.anchors.iter().map(shared::pins::pin_of) {
                pinned.push_str(&format!(
                    "  {}  SHA-256 {}\n    identity {}; policies {}\n",
                    a.name,
                    a.sha256_hex(),
                    a.identity,
                    a.policies.join(", ")
                ));
            }
            pinned.push('\n');
            let transcript = match transcript.split_once("Checks made:") {
                Some((before, after)) => format!("{before}{pinned}Checks made:{after}"),
                None => format!("{transcript}\n{pinned}"),
            };
            keep_transcript(&cli.home, 1, &transcript)?;
            println!("The election key was created. Its fingerprint, to print in the voters' instructions and to");
            println!("give to the gateway operator for import-setup:\n\n  {fpr}\n");
            println!(
                "The signed election manifest and roster are on {}.",
                out_media.display()
            );
            Ok(ok)
        }
        Command::ImportCrls { media } => {
            let mut conn = open_state(&cli.home)?;
            let manifest = ceremony::read_manifest(&cli.home)?;
            let anchors = ceremony::pinned_anchors(&conn, &manifest)?;
            let imported = verifier::import::crls::import_county_crls(&mut conn, &media, &anchors)?;
            for c in &imported {
                println!(
                    "{}: CRL from {}, {} to {}, {} revoked certificate(s){}\n  SHA-256 {}",
                    c.file,
                    c.issuer,
                    shared::clock::UnixTime(c.this_update.max(0) as u64),
                    shared::clock::UnixTime(c.next_update.max(0) as u64),
                    c.entries,
                    if c.known { " (already imported)" } else { "" },
                    c.sha256
                );
            }
            println!(
                "{} CRL(s) checked and imported; process uses them with the bundles' CRLs \
                 (per CA, the newest covering each ballot's time of receipt).",
                imported.len()
            );
            Ok(ok)
        }
        Command::Import { media } => {
            let mut conn = open_state(&cli.home)?;
            let mut dirs = verifier::import::bundles_on(&media).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow::anyhow!(
                        "the media folder {} does not exist: is the drive mounted, and is the path right?",
                        media.display()
                    )
                } else {
                    anyhow::anyhow!(
                        "cannot list the media folder {}: {}",
                        media.display(),
                        e.kind()
                    )
                }
            })?;
            if dirs.is_empty() {
                dirs.push(media.clone());
            }
            for d in dirs {
                let name = d.display().to_string();
                let mut p = progress("checking ballots");
                match verifier::import::import(&mut conn, &d, &clock, &mut p).with_context(
                    || format!("bundle {name} was refused; nothing from it was imported"),
                )? {
                    verifier::import::Imported::New {
                        sequence,
                        entries,
                        log_size,
                    } => {
                        println!("Imported bundle {sequence}: {entries} ballots; the log now has {log_size} entries.");
                        for m in verifier::state::misbehaviour(&conn, Some(sequence))? {
                            println!("  GATEWAY MISBEHAVIOUR (for the board): {}", m.detail);
                        }
                    }
                    verifier::import::Imported::AlreadyImported(s) => {
                        println!("Bundle {s} was imported before; checked again, it is the same, byte for byte: nothing to do.")
                    }
                }
            }
            Ok(ok)
        }
        Command::Reshare { shares, custody } => {
            verifier::airgap::air_gap_guard(cli.allow_network)?;
            verifier::custody::check_plan(custody.threshold, &custody.trustees)?;
            let mut source = ceremony::Passphrases::new(cli.passphrase_fd)?;
            let offered = offered_shares(&cli.home, &mut source, &shares, cli.passphrase_fd)?;
            let passphrases =
                trustee_passphrases(cli.passphrase_fd, &custody.trustees, Some(&mut source))?;
            let record = verifier::custody::read_record(&cli.home.join("keys"))?;
            let title = shared::manifest::ElectionManifest::open_signed(
                &verifier::state::meta_get(&open_state(&cli.home)?, "manifest")?
                    .context("the verifier holds no manifest")?,
                &record.election_fingerprint,
            )?
            .title;
            let transcript = verifier::custody::reshare(
                &cli.home,
                &offered,
                custody.threshold,
                &custody.trustees,
                &passphrases,
                &title,
                shared::clock::Clock::now(&clock).0,
            )?;
            let generation = verifier::custody::read_record(&cli.home.join("keys"))?.generation;
            keep_transcript(&cli.home, generation, &transcript)?;
            Ok(ok)
        }
        Command::Process {
            out,
            again,
            shares,
            trust,
        } => {
            verifier::airgap::air_gap_guard(cli.allow_network)?;
            let mut offered_anchors = Vec::new();
            for spec in trust.anchors()? {
                offered_anchors.extend(spec.load()?);
            }
            // Before any trustee types a passphrase.
            ceremony::check_offered_anchors(
                &offered_anchors,
                &ceremony::read_manifest(&cli.home)?,
            )?;
            let mut source = ceremony::Passphrases::new(cli.passphrase_fd)?;
            let offered = offered_shares(&cli.home, &mut source, &shares, cli.passphrase_fd)?;
            let pw = verifier::custody::open_keys(&cli.home, &offered)?;
            drop(offered);
            let loaded = ceremony::load(&cli.home, &pw)?;
            let conn = open_state(&cli.home)?;
            let anchors = ceremony::pinned_anchors(&conn, &loaded.manifest)?;
            let mut inputs = verifier::process::Inputs::new(&loaded, Some(&pw), anchors);
            inputs.again = again.as_deref();
            let mut p1 = progress("checking ballots");
            let outcome =
                verifier::process::process(&conn, &inputs, &out, &clock, &mut |d, t, _| p1(d, t))?;
            print!("{}", std::fs::read_to_string(out.join("report.txt"))?);
            println!(
                "\nThe report to print, review and sign: {}",
                out.join("report.pdf").display()
            );
            if !outcome.alarms.is_empty() {
                println!("\nThe report opens with ALARMS for the board to look into before certifying; exit status 4 says so.");
                return Ok(std::process::ExitCode::from(4));
            }
            if outcome.rejected_total() > 0 {
                println!("\nSome ballots were rejected (see voters.csv); exit status 3 says so.");
                return Ok(std::process::ExitCode::from(3));
            }
            Ok(ok)
        }
        Command::Audit {
            receipt,
            manifest,
            election_fingerprint,
            later_checkpoint,
            consistency_proof,
            status_file,
            status_proof,
        } => {
            let raw = std::fs::read(&receipt)?;
            // Accept ballot-return's JSON or a bare tlog-proof.
            let receipt_text = match serde_json_receipt(&raw) {
                Some(t) => t.into_bytes(),
                None => raw,
            };
            let m = shared::manifest::ElectionManifest::open_signed(
                &std::fs::read(&manifest)?,
                &election_fingerprint,
            )
            .context("the manifest does not verify with the election fingerprint")?;
            let later = match (&later_checkpoint, &consistency_proof) {
                (Some(c), proof) => {
                    let hashes = match proof {
                        Some(p) => parse_proof(&std::fs::read_to_string(p)?)?,
                        None => Vec::new(),
                    };
                    Some((std::fs::read(c)?, hashes))
                }
                (None, _) => None,
            };
            let status = match (status_file, status_proof) {
                (Some(f), Some(p)) => Some((std::fs::read(f)?, read_proof(&std::fs::read(p)?)?)),
                _ => None,
            };
            let r = verifier::audit::audit(
                &receipt_text,
                &m,
                &election_fingerprint,
                later.as_ref().map(|(c, p)| (c.as_slice(), p.as_slice())),
                status.as_ref().map(|(f, p)| (f.as_slice(), p.as_slice())),
            )?;
            println!("The receipt is valid: entry {} of a log of {} entries signed by the gateway's log key.", r.index, r.size);
            if let Some(n) = r.later_size {
                println!("The later checkpoint ({n} entries) is consistent with it: the entry is still in the log.");
            }
            if let Some(s) = r.status {
                println!("Status in the county's signed status file: {s}");
            }
            Ok(ok)
        }
    }
}

/// Each new trustee's passphrase, chosen at the prompt (typed twice) or read
/// from the file descriptor, in the trustees' order.
fn trustee_passphrases(
    fd: Option<u32>,
    trustees: &[verifier::custody::Trustee],
    source: Option<&mut ceremony::Passphrases>,
) -> Result<Vec<sequoia_openpgp::crypto::Password>> {
    let mut own;
    let source = match source {
        Some(s) => s,
        None => {
            own = ceremony::Passphrases::new(fd)?;
            &mut own
        }
    };
    if fd.is_none() {
        println!("Each trustee now chooses a passphrase for their share, typed out of sight of the others.");
    }
    trustees
        .iter()
        .map(|t| {
            source.ask(
                &format!("{}, choose the passphrase for your share: ", t.name),
                true,
            )
        })
        .collect()
}

/// The trustees' shares offered to open the keys: the media folders given
/// with --share, or asked for at the keyboard until k are given; each
/// share's passphrase is asked as it is read.
fn offered_shares(
    home: &std::path::Path,
    source: &mut ceremony::Passphrases,
    given: &[std::path::PathBuf],
    passphrase_fd: Option<u32>,
) -> Result<Vec<(std::path::PathBuf, sequoia_openpgp::crypto::Password)>> {
    let record = verifier::custody::read_record(&home.join("keys"))?;
    let k = usize::from(record.threshold);
    if given.len() < k && passphrase_fd == Some(0) {
        // Folders asked on standard input would be read from the
        // passphrase lines.
        anyhow::bail!(
            "standard input carries the passphrases (--passphrase-fd 0): give each of the {k} \
             trustees' media with --share"
        );
    }
    println!(
        "The election key is held by {} trustees; {} of them open it.",
        record.trustees.len(),
        k
    );
    let mut media = given.to_vec();
    while media.len() < k {
        print!(
            "Trustee {} of {}: insert your media and type its folder: ",
            media.len() + 1,
            k
        );
        std::io::Write::flush(&mut std::io::stdout())?;
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line)? == 0 {
            anyhow::bail!(
                "{} of {k} trustees' media were given; {k} are needed",
                media.len()
            );
        }
        media.push(std::path::PathBuf::from(line.trim()));
    }
    let mut out = Vec::new();
    for m in media {
        let path = verifier::custody::find_share(&record, &m)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let holder = record
            .trustees
            .iter()
            .find(|t| name.ends_with(&format!("-share-{}.pgp", t.share)))
            .map(|t| t.name.clone())
            .unwrap_or_else(|| "the trustee".into());
        let pw = source.ask(&format!("{holder}, your share's passphrase: "), false)?;
        out.push((m, pw));
    }
    Ok(out)
}

/// Prints the custody transcript and keeps a copy beside the keys.
fn keep_transcript(home: &std::path::Path, generation: u32, text: &str) -> Result<()> {
    let path = home.join(format!("custody-transcript-g{generation}.txt"));
    shared::files::write_new(&path, text.as_bytes(), 0o644)?;
    println!("{text}");
    println!(
        "This transcript is also in {}: print it for the board and the trustees to sign.",
        path.display()
    );
    Ok(())
}

/// The receipt text inside `ballot-return`'s saved JSON, if `raw` is that.
fn serde_json_receipt(raw: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    v.get("receipt")?.as_str().map(str::to_owned)
}

/// A consistency proof file: the gateway's JSON answer, or base64 lines.
fn read_proof(raw: &[u8]) -> Result<Vec<[u8; 32]>> {
    if let Ok(a) = serde_json::from_slice::<shared::api::ConsistencyAnswer>(raw) {
        return Ok(a.proof);
    }
    parse_proof(std::str::from_utf8(raw).context("the proof file is not text")?)
}

fn parse_proof(text: &str) -> Result<Vec<[u8; 32]>> {
    use base64::prelude::*;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            BASE64_STANDARD
                .decode(l.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .context("a consistency proof line is not a base64 hash")
        })
        .collect()
}
