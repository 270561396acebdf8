//! `ballot-return`: send your marked ballot to your county, and check on it later.
#![forbid(unsafe_code)]

mod cli;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{CardArgs, Cli, Command, Connection, OpenArgs, ReceiptsArgs, SendArgs};
use rustls_pki_types::CertificateDer;
use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use voter::card::{self, Card, CardError, Pin};
use voter::client::{self, Ballot, Credentials, Gateway, Progress, SavedReceipt};
use voter::receipts::{self, Folder, Saved};

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// The connection that presents the voter's certificate, and the key that
/// signs the ballot: from the card, or (development) from PEM files.
fn credentials(
    url: &str,
    conn: &Connection,
    card: &CardArgs,
    roots: &[CertificateDer<'static>],
) -> Result<(Gateway, Credentials)> {
    let extra = match &conn.chain {
        Some(p) => shared::pki::tls_chain_from_pem(&read(p, "the chain file")?)?,
        None => Vec::new(),
    };
    let (Some(cert_path), Some(key_path)) = (&conn.cert, &conn.key) else {
        return with_card(url, card, roots, extra);
    };
    let key_pem = zeroize::Zeroizing::new(read(key_path, "your key")?);
    voter::signing::from_pem(
        url,
        &read(cert_path, "your certificate")?,
        &key_pem,
        extra,
        roots,
    )
}

/// The credentials of the voter's card: the PIN is asked once and tried
/// once, before anything is sent; the card signs the connection with its
/// PIV Authentication key and the ballot with its Digital Signature key.
fn with_card(
    url: &str,
    args: &CardArgs,
    roots: &[CertificateDer<'static>],
    extra: Vec<CertificateDer<'static>>,
) -> Result<(Gateway, Credentials)> {
    let module = card::find_module(args.pkcs11_module.as_deref())?;
    let c = Card::open(&module, args.card_label.as_deref())?;
    println!("Card: '{}' ({})", c.token.label, c.token.manufacturer);
    let auth = c.authentication()?;
    let signing = c.signature()?;
    if let Ok(s) = &auth.summary {
        println!(
            "Your certificate: {} (EDIPI {})",
            s.subject,
            s.edipi.as_deref().unwrap_or("none")
        );
    }
    let state = c.pin_state()?;
    if state.locked {
        return Err(CardError::Locked.into());
    }
    if state.final_try {
        println!("{}", card::TriesLeft::Last);
    }
    let pin = Arc::new(Pin::read(
        args.pin_fd,
        &format!("PIN for card '{}': ", c.token.label),
    )?);
    c.login(&pin)?;
    println!(
        "The card logs in with '{}' and signs your ballot with '{}'.",
        auth.label, signing.label
    );
    voter::signing::from_card(url, &c, pin, extra, roots)
}

fn show_card(args: &CardArgs) -> Result<()> {
    let module = card::find_module(args.pkcs11_module.as_deref())?;
    let c = Card::open(&module, args.card_label.as_deref())?;
    println!("Card: '{}'", c.token.label);
    println!(
        "  made by {}, model {}, serial number {}",
        c.token.manufacturer, c.token.model, c.token.serial
    );
    println!("  card software: {}", module.display());
    let state = c.pin_state()?;
    println!(
        "  PIN: {}",
        if state.locked {
            "LOCKED (it must be unlocked at an ID card office)"
        } else if state.final_try {
            "ONE try left before it locks"
        } else if state.count_low {
            "a wrong PIN was entered; few tries are left"
        } else {
            "not locked"
        }
    );
    let now = shared::clock::Clock::now(&shared::clock::SystemClock).0 as i64;
    println!("Certificates on the card: {}", c.certificates.len());
    for (i, o) in c.certificates.iter().enumerate() {
        println!("  {}. '{}'", i + 1, o.label);
        match &o.summary {
            Err(e) => println!("     cannot be read: {e}"),
            Ok(s) => {
                println!("     for:     {}", s.role.describe());
                println!("     name:    {}", shared::text::printable(&s.subject));
                println!("     EDIPI:   {}", s.edipi.as_deref().unwrap_or("none"));
                println!("     issuer:  {}", shared::text::printable(&s.issuer));
                println!("     key:     {}", s.key);
                let date = |t: i64| shared::clock::UnixTime(t.max(0) as u64).to_rfc3339();
                let when = if s.not_after < now {
                    "EXPIRED".to_owned()
                } else if s.not_before > now {
                    "NOT YET VALID".to_owned()
                } else {
                    format!("{} days left", (s.not_after - now) / 86_400)
                };
                println!(
                    "     valid:   {} to {} ({when})",
                    date(s.not_before),
                    date(s.not_after)
                );
            }
        }
    }
    match (c.authentication(), c.signature()) {
        (Ok(a), Ok(s)) => println!(
            "ballot-return logs in with '{}' and signs ballots with '{}'.",
            a.label, s.label
        ),
        (Err(e), _) | (_, Err(e)) => println!("This card cannot be used to vote: {e}"),
    }
    Ok(())
}

fn media_type_for(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(client::media_type_for_name)
        .map(str::to_owned)
        .context("cannot tell the ballot's file type from its name; give --media-type")
}

/// Shows an upload's progress: one line redrawn on a terminal, a line at
/// each tenth otherwise (a log, a support desk's transcript).
struct Meter {
    terminal: bool,
    open_line: bool,
    shown_tenth: Option<u64>,
}

impl Meter {
    fn new() -> Self {
        Meter {
            terminal: std::io::stdout().is_terminal(),
            open_line: false,
            shown_tenth: None,
        }
    }

    fn show(&mut self, p: Progress) {
        let pct = (p.sent * 100).checked_div(p.total).unwrap_or(100);
        let secs = p.elapsed.as_secs_f64().max(0.001);
        let rate = p.sent as f64 / secs;
        let left = if rate > 0.0 && p.sent < p.total {
            format!(
                ", about {} left",
                duration_words(((p.total - p.sent) as f64 / rate) as u64)
            )
        } else {
            String::new()
        };
        let line = format!(
            "  sent {} of {} ({pct} %), {}/s{left}",
            size_words(p.sent),
            size_words(p.total),
            size_words(rate as u64)
        );
        if self.terminal {
            print!("\r{line:<72}");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            self.open_line = true;
        } else {
            let tenth = pct / 10;
            if self.shown_tenth != Some(tenth) {
                self.shown_tenth = Some(tenth);
                println!("{}", line.trim_start());
            }
        }
    }

    /// Ends a redrawn line before anything else is printed.
    fn end_line(&mut self) {
        if self.open_line {
            println!();
            self.open_line = false;
        }
        self.shown_tenth = None;
    }
}

fn size_words(n: u64) -> String {
    match n {
        0..=9_999 => format!("{n} bytes"),
        10_000..=9_999_999 => format!("{:.0} kB", n as f64 / 1e3),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}

fn duration_words(s: u64) -> String {
    match s {
        0..=89 => format!("{s} s"),
        _ => format!("{} min", s.div_ceil(60)),
    }
}

/// Asks the voter to accept the declaration at the keyboard.
fn ask_acceptance() -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("to send your ballot you must accept the declaration above: run again with --accept-declaration");
    }
    print!("Do you make this declaration? Type yes to accept it and send your ballot: ");
    std::io::Write::flush(&mut std::io::stdout())?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim().to_ascii_lowercase().as_str(), "yes" | "y") {
        bail!("you did not accept the declaration");
    }
    Ok(())
}

fn receipts_folder(args: &ReceiptsArgs) -> Result<PathBuf> {
    match &args.receipts {
        Some(p) => Ok(p.clone()),
        None => receipts::default_place(),
    }
}

async fn send(args: SendArgs) -> Result<()> {
    let SendArgs {
        gateway: url,
        election_fingerprint: fpr,
        ballot,
        conn,
        card,
        receipts,
        ballot_style,
        media_type,
        accept_declaration,
        attempts,
        stall_timeout,
    } = args;
    let roots = voter::tls::server_roots(conn.ca.as_deref())?;
    let stall = std::time::Duration::from_secs(stall_timeout);
    // The election details come over a connection that shows no card: the
    // PIN is asked only once the voter has seen what they sign.
    let mut open = Gateway::new(
        &url,
        voter::tls::client_config(&roots, None, &[b"http/1.1"])?,
    )?;
    open.timing.stall = stall;
    println!("Contacting the gateway and checking the election details…");
    let manifest = open.manifest(&fpr).await?;
    println!("Election: {} ({})", manifest.title, manifest.jurisdiction);
    println!("Ballots are accepted until {}.", manifest.closes_at);
    let media_type = match media_type {
        Some(m) => m,
        None => media_type_for(&ballot)?,
    };
    let content = read(&ballot, "your ballot")?;
    match manifest.media_limit(&media_type) {
        Some(limit) if content.len() as u64 > u64::from(limit) => bail!(
            "your ballot file is {} bytes; this election accepts at most {limit}",
            content.len()
        ),
        _ => {}
    }
    println!(
        "\nVoter declaration:\n\n  {}\n",
        manifest.declaration.replace('\n', "\n  ")
    );
    if accept_declaration {
        println!("You accepted the declaration (--accept-declaration).");
    } else {
        ask_acceptance()?;
    }
    let folder = Folder::open(&receipts_folder(&receipts)?)?;

    let (mut gw, creds) = credentials(&url, &conn, &card, &roots)?;
    gw.timing.stall = stall;
    let ballot_style = match ballot_style {
        Some(s) => s,
        None => {
            let me = gw.voter().await?;
            println!(
                "Voter {}; ballot style {} (from the county's roster: it should match the style printed on your ballot).",
                me.voter_id, me.ballot_style
            );
            me.ballot_style
        }
    };
    let upload = client::prepare(
        &manifest,
        &Ballot {
            content,
            media_type,
            ballot_style,
        },
        &creds,
    )?;
    println!(
        "Your ballot is signed and sealed ({}). Sending…",
        size_words(upload.len() as u64)
    );
    let meter = RefCell::new(Meter::new());
    let answer = client::upload(
        &gw,
        &upload,
        client::Retries::times(attempts),
        &mut |p| meter.borrow_mut().show(p),
        &mut |m| {
            meter.borrow_mut().end_line();
            println!("{m}");
        },
    )
    .await;
    meter.borrow_mut().end_line();
    let answer = answer?;
    let (receipt, cp) = client::check_receipt(&manifest, &upload, &answer)?;
    client::check_receipt_time(
        &receipt,
        shared::clock::Clock::now(&shared::clock::SystemClock),
    )?;
    let saved = SavedReceipt::new(&manifest, &fpr, &url, &receipt, &answer)?;
    let kept = folder.save(&saved)?;
    if answer.duplicate {
        println!("The gateway already had this ballot (an earlier try reached it); it sent the same receipt again.");
    }
    println!(
        "Your ballot was received and logged as entry {} of the county's public log (log size {}).",
        receipt.index, cp.checkpoint.size
    );
    match &kept {
        Saved::New(p) => println!("Receipt saved as {}.", p.display()),
        Saved::AlreadyThere(p) => println!("This receipt was already saved as {}.", p.display()),
    }
    println!("Keep it: with it you can check that your ballot stays in the log, and later");
    match &receipts.receipts {
        Some(f) => println!(
            "see whether it was counted: ballot-return status --receipts {}",
            f.display()
        ),
        None => println!("see whether it was counted: ballot-return status"),
    }
    Ok(())
}

/// Serves the voter's page until the voter closes it.
async fn open(args: OpenArgs) -> Result<()> {
    let OpenArgs {
        gateway,
        election_fingerprint,
        conn,
        card,
        receipts,
        attempts,
        no_browser,
    } = args;
    let pem = match (conn.cert, conn.key) {
        (Some(c), Some(k)) => Some((c, k)),
        _ => None,
    };
    let serving = voter::page::serve(voter::page::Options {
        gateway,
        fingerprint: election_fingerprint,
        ca: conn.ca,
        pem,
        chain: conn.chain,
        pkcs11_module: card.pkcs11_module,
        card_label: card.card_label,
        receipts: receipts_folder(&receipts)?,
        attempts,
    })
    .await?;
    // The address carries a one-time token: printed for the voter only
    // when asked, never put on another program's command line.
    let _forwarder = if no_browser {
        println!("Open this address in your browser (it works once, on this computer only):");
        println!("{}", serving.url);
        None
    } else {
        match voter::page::open_browser(&serving.url) {
            Ok(f) => {
                println!(
                    "ballot-return's page is open in your browser (http://127.0.0.1:{}).",
                    serving.port
                );
                Some(f)
            }
            Err(e) => {
                println!("Your browser could not be opened ({e:#}). Open this address in it (it works once, on this computer only):");
                println!("{}", serving.url);
                None
            }
        }
    };
    println!("Keep this window open while you use the page; close it with the page's Close button or Ctrl+C.");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    serving
        .done
        .await
        .map_err(|e| anyhow::anyhow!("the page stopped: {e}"))
}

/// Each receipt as a printable PDF, beside its file or in `out`; an
/// existing PDF is not overwritten.
fn print_receipts(files: &[PathBuf], out: Option<&Path>, args: &ReceiptsArgs) -> Result<()> {
    for (path, saved) in receipts_to_check(files, args)? {
        let pdf = voter::printable::receipt_pdf(&saved)
            .with_context(|| format!("cannot lay out {}", path.display()))?;
        let target = match out {
            Some(dir) => dir.join(path.with_extension("pdf").file_name().unwrap_or_default()),
            None => path.with_extension("pdf"),
        };
        shared::files::write_new(&target, &pdf, 0o600)
            .with_context(|| format!("cannot write {}", target.display()))?;
        println!(
            "Entry {} of election {}: {}",
            saved.leaf_index,
            shared::text::printable(&saved.election_id),
            target.display()
        );
    }
    Ok(())
}

/// The receipts to check: the files given, or every one in the folder.
fn receipts_to_check(
    files: &[PathBuf],
    args: &ReceiptsArgs,
) -> Result<Vec<(PathBuf, SavedReceipt)>> {
    if !files.is_empty() {
        return files
            .iter()
            .map(|p| {
                let saved =
                    serde_json::from_slice(&read(p, "the receipt")?).with_context(|| {
                        format!("{} is not a receipt saved by ballot-return", p.display())
                    })?;
                Ok((p.clone(), saved))
            })
            .collect();
    }
    let dir = receipts_folder(args)?;
    let Some(folder) = Folder::existing(&dir) else {
        bail!(
            "you have no receipts yet ({} does not exist)",
            dir.display()
        );
    };
    let mut out = Vec::new();
    for l in folder.list()? {
        match l.receipt {
            Ok(r) => out.push((l.path, r)),
            Err(e) => println!("Skipped {}: {e:#}", l.path.display()),
        }
    }
    if out.is_empty() {
        bail!("you have no receipts yet ({} holds none)", dir.display());
    }
    Ok(out)
}

async fn status(files: Vec<PathBuf>, ca: Option<PathBuf>, args: ReceiptsArgs) -> Result<()> {
    let receipts = receipts_to_check(&files, &args)?;
    let roots = voter::tls::server_roots(ca.as_deref())?;
    // No client certificate: the gateway cannot tell whose check this is,
    // so it cannot show this voter a log of its own. The county's word is
    // fetched once per gateway and election.
    let mut words: Vec<(String, String, client::CountyWord)> = Vec::new();
    let mut failed = 0;
    for (path, saved) in &receipts {
        println!(
            "\nEntry {} of election {} ({}):",
            saved.leaf_index,
            shared::text::printable(&saved.election_id),
            path.display()
        );
        let result: Result<client::StatusReport> = async {
            let gw = Gateway::new(
                &saved.gateway,
                voter::tls::client_config(&roots, None, &[b"http/1.1"])?,
            )?;
            let known = words
                .iter()
                .find(|(g, f, _)| *g == saved.gateway && *f == saved.election_fingerprint)
                .map(|(_, _, w)| w.clone());
            let word = match known {
                Some(w) => w,
                None => {
                    let w = client::county_word(&gw, &saved.election_fingerprint).await?;
                    words.push((
                        saved.gateway.clone(),
                        saved.election_fingerprint.clone(),
                        w.clone(),
                    ));
                    w
                }
            };
            client::standing(&gw, &word, saved).await
        }
        .await;
        match result {
            Ok(r) => {
                if let Some(size) = r.witnessed_size {
                    if r.standing != client::Standing::NotYetWitnessed {
                        println!(
                            "  Your ballot (entry {}) is in the log the county's witnesses cosigned ({size} entries), consistent with your receipt.",
                            saved.leaf_index
                        );
                    }
                }
                println!("  Status: {}", r.explanation);
            }
            Err(e) => {
                failed += 1;
                println!(
                    "  THE CHECK FAILED: {}",
                    shared::text::printable(&format!("{e:#}"))
                );
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} checks failed (above)", receipts.len());
    }
    Ok(())
}

fn list_receipts(args: ReceiptsArgs) -> Result<()> {
    let dir = receipts_folder(&args)?;
    let Some(folder) = Folder::existing(&dir) else {
        println!(
            "You have no receipts yet ({} does not exist).",
            dir.display()
        );
        return Ok(());
    };
    let listed = folder.list()?;
    println!("Receipts in {}: {}", dir.display(), listed.len());
    for l in listed {
        let name = l
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match l.receipt {
            Err(e) => println!("  {name}: cannot be read: {e:#}"),
            Ok(r) => {
                let received = shared::receipt::Receipt::parse(r.receipt.as_bytes())
                    .map(|p| p.entry.received_at.to_rfc3339())
                    .unwrap_or_else(|_| "unreadable receipt".into());
                println!(
                    "  {name}: election {}, entry {}, received {received}, gateway {}",
                    shared::text::printable(&r.election_id),
                    r.leaf_index,
                    shared::text::printable(&r.gateway)
                );
            }
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command.unwrap_or_else(|| Command::Open(Box::default())) {
            Command::Open(args) => open(*args)
                .await
                .map_err(|e| e.context("the page could not be opened")),
            Command::Send(args) => send(*args)
                .await
                .map_err(|e| e.context("your ballot was NOT sent")),
            Command::Status {
                files,
                ca,
                receipts,
            } => status(files, ca, receipts)
                .await
                .map_err(|e| e.context("the check did not complete")),
            Command::Print {
                files,
                out,
                receipts,
            } => print_receipts(&files, out.as_deref(), &receipts)
                .map_err(|e| e.context("the receipts could not be written as PDF")),
            Command::Receipts { receipts } => {
                list_receipts(receipts).map_err(|e| e.context("the receipts could not be listed"))
            }
            Command::Card { card } => {
                show_card(&card).map_err(|e| e.context("the card could not be read"))
            }
            Command::GenerateDocs { out } => shared::cli_docs::write(
                <Cli as clap::CommandFactory>::command(),
                env!("CARGO_BIN_NAME"),
                &out,
            )
            .map(|files| println!("{} files written under {}", files.len(), out.display()))
            .map_err(|e| anyhow::Error::from(e).context("the documentation could not be written")),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Causes may carry the gateway's words: shown escaped.
            eprintln!("{}", shared::text::printable(&e.to_string()));
            for cause in e.chain().skip(1) {
                eprintln!("  because: {}", shared::text::printable(&cause.to_string()));
            }
            std::process::ExitCode::FAILURE
        }
    }
}
