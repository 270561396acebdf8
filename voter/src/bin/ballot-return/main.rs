//! `ballot-return`: send your marked ballot to your county, and check on it later.
#![forbid(unsafe_code)]

mod cli;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{Cli, Command, Connection, SendArgs};
use std::path::{Path, PathBuf};
use voter::client::{self, Ballot, Credentials, Gateway, SavedReceipt};

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn gateway(conn: &Connection) -> Result<(Gateway, Credentials)> {
    let roots = shared::pki::tls_chain_from_pem(&read(&conn.ca, "the gateway CA file")?)?;
    let mut chain = shared::pki::tls_chain_from_pem(&read(&conn.cert, "your certificate")?)?;
    let extra = match &conn.chain {
        Some(p) => shared::pki::tls_chain_from_pem(&read(p, "the chain file")?)?,
        None => Vec::new(),
    };
    let key_pem = zeroize::Zeroizing::new(read(&conn.key, "your key")?);
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
            key: signing_key,
        },
    ))
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
        election_fingerprint: fpr,
        ballot,
        ballot_style: style,
        media_type,
        accept_declaration: accept,
        receipt: receipt_path,
        attempts,
    } = args;
    let (gw, creds) = gateway(&conn)?;
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
