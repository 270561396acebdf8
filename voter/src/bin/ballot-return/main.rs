//! `ballot-return`: send your marked ballot to your county, and check on it later.
#![forbid(unsafe_code)]

mod cli;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{CardArgs, Cli, Command, Connection, SendArgs};
use rustls_pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use voter::card::{self, Card, CardError, Pin};
use voter::client::{self, Ballot, Credentials, Gateway, SavedReceipt};

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn gateway(conn: &Connection, card: &CardArgs) -> Result<(Gateway, Credentials)> {
    let roots = shared::pki::tls_chain_from_pem(&read(&conn.ca, "the gateway CA file")?)?;
    let extra = match &conn.chain {
        Some(p) => shared::pki::tls_chain_from_pem(&read(p, "the chain file")?)?,
        None => Vec::new(),
    };
    let (Some(cert_path), Some(key_path)) = (&conn.cert, &conn.key) else {
        return with_card(conn, card, &roots, extra);
    };
    let mut chain = shared::pki::tls_chain_from_pem(&read(cert_path, "your certificate")?)?;
    let key_pem = zeroize::Zeroizing::new(read(key_path, "your key")?);
    let tls_key = shared::pki::tls_key_from_pem(&key_pem)?;
    let signing_key = shared::cms::VoterKey::from_pem(&key_pem).context("your key cannot sign")?;
    let cert = chain
        .first()
        .map(|c| c.to_vec())
        .context("your certificate file is empty")?;
    let others: Vec<Vec<u8>> = chain
        .iter()
        .skip(1)
        .chain(extra.iter())
        .map(|c| c.to_vec())
        .collect();
    chain.extend(extra);
    let tls = voter::tls::client_config(&roots, Some((chain, tls_key)), &[b"http/1.1"])?;
    Ok((
        Gateway::new(&conn.gateway, tls)?,
        Credentials {
            cert,
            chain: others,
            key: Box::new(signing_key),
        },
    ))
}

/// The credentials of the voter's card: the PIN is asked once and tried
/// once, before anything is sent; the card signs the connection with its
/// PIV Authentication key and the ballot with its Digital Signature key.
fn with_card(
    conn: &Connection,
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
    let tls_key = Arc::new(c.key(auth, "PIV Authentication", Some(pin.clone()))?);
    let sign_key = c.key(signing, "Digital Signature", Some(pin))?;
    let mut chain = vec![CertificateDer::from(auth.der.clone())];
    chain.extend(extra.iter().cloned());
    let tls = voter::tls::client_config_with_key(
        roots,
        chain,
        Arc::new(card::TlsKey(tls_key)),
        &[b"http/1.1"],
    )?;
    Ok((
        Gateway::new(&conn.gateway, tls)?,
        Credentials {
            cert: signing.der.clone(),
            chain: extra.iter().map(|c| c.to_vec()).collect(),
            key: Box::new(sign_key),
        },
    ))
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
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("pdf") => Ok(shared::ballot::MEDIA_PDF.into()),
        Some("json") => Ok(shared::ballot::MEDIA_SELECTIONS.into()),
        _ => bail!("cannot tell the ballot's file type from its name; give --media-type"),
    }
}

async fn send(args: SendArgs) -> Result<()> {
    let SendArgs {
        conn,
        card,
        election_fingerprint: fpr,
        ballot,
        ballot_style: style,
        media_type,
        accept_declaration: accept,
        receipt: receipt_path,
        attempts,
    } = args;
    let (gw, creds) = gateway(&conn, &card)?;
    println!("Contacting the gateway and checking the election details…");
    let manifest = gw.manifest(&fpr).await?;
    println!("Election: {} ({})", manifest.title, manifest.jurisdiction);
    println!("Ballots are accepted until {}.", manifest.closes_at);
    println!(
        "\nVoter declaration:\n\n  {}\n",
        manifest.declaration.replace('\n', "\n  ")
    );
    if !accept {
        bail!("to send your ballot you must accept the declaration above: run again with --accept-declaration");
    }
    let media_type = match media_type {
        Some(m) => m,
        None => media_type_for(&ballot)?,
    };
    let content = read(&ballot, "your ballot")?;
    let upload = client::prepare(
        &manifest,
        &Ballot {
            content,
            media_type,
            ballot_style: style,
        },
        &creds,
    )?;
    println!(
        "Your ballot is signed and sealed ({} bytes). Sending…",
        upload.len()
    );
    let answer = client::upload(&gw, &upload, attempts, &mut |m| println!("{m}")).await?;
    let (receipt, cp) = client::check_receipt(&manifest, &upload, &answer)?;
    client::check_receipt_time(
        &receipt,
        shared::clock::Clock::now(&shared::clock::SystemClock),
    )?;
    let saved = SavedReceipt::new(&manifest, &fpr, &conn.gateway, &receipt, &answer)?;
    let json = serde_json::to_vec_pretty(&saved)?;
    std::fs::write(&receipt_path, json)
        .with_context(|| format!("cannot save the receipt to {}", receipt_path.display()))?;
    if answer.duplicate {
        println!("The gateway already had this ballot; it sent the same receipt again.");
    }
    println!(
        "Your ballot was received and logged as entry {} of the county's public log (log size {}).",
        receipt.index, cp.checkpoint.size
    );
    println!(
        "Receipt saved to {}. Keep it: with it you can check that your ballot stays in the log,",
        receipt_path.display()
    );
    println!(
        "and later see whether it was counted: ballot-return status --receipt {}",
        receipt_path.display()
    );
    Ok(())
}

async fn status(conn: Connection, receipt_path: PathBuf) -> Result<()> {
    // No client certificate: the gateway cannot tell whose check this is,
    // so it cannot show this voter a log of its own.
    let roots = shared::pki::tls_chain_from_pem(&read(&conn.ca, "the gateway CA file")?)?;
    let gw = Gateway::new(
        &conn.gateway,
        voter::tls::client_config(&roots, None, &[b"http/1.1"])?,
    )?;
    let saved: SavedReceipt = serde_json::from_slice(&read(&receipt_path, "the receipt")?)
        .context("the receipt file is not one saved by ballot-return")?;
    let r = client::status(&gw, &saved).await?;
    if let Some(size) = r.witnessed_size {
        if r.standing != client::Standing::NotYetWitnessed {
            println!(
                "Your ballot (entry {}) is in the log the county's witnesses cosigned ({size} entries), consistent with your receipt.",
                saved.leaf_index
            );
        }
    }
    println!("Status: {}", r.explanation);
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
        match cli.command {
            Command::Send(args) => send(args)
                .await
                .map_err(|e| e.context("your ballot was NOT sent")),
            Command::Status { conn, receipt } => status(conn, receipt)
                .await
                .map_err(|e| e.context("the check did not complete")),
            Command::Card { card } => {
                show_card(&card).map_err(|e| e.context("the card could not be read"))
            }
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
