//! Runs every format vector under `shared/tests/vectors/` (written by
//! `cargo run -p ballot-shared --example make-vectors`): a success vector
//! must decode and re-encode to the same bytes; a refusal vector must be
//! refused for the stated reason, so a parse error never hides behind a
//! later check.

use serde_json::Value;
use shared::bundle::BundleEntry;
use shared::checkpoint::SignedCheckpoint;
use shared::codec::DecodeError;
use shared::note::NoteVerifier;
use std::path::PathBuf;

fn variant(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::Truncated { .. } => "Truncated",
        DecodeError::TooLong { .. } => "TooLong",
        DecodeError::TrailingBytes { .. } => "TrailingBytes",
        DecodeError::BadMagic { .. } => "BadMagic",
        DecodeError::UnknownVersion { .. } => "UnknownVersion",
        DecodeError::InvalidValue { .. } => "InvalidValue",
        _ => "other",
    }
}

/// Decodes a binary vector; on success returns the re-encoding.
fn decode(format: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let d = |e: DecodeError| variant(&e).to_owned();
    match format {
        "log-entry" => Ok(shared::log_entry::LogEntry::from_bytes(bytes)
            .map_err(d)?
            .to_bytes()
            .unwrap()),
        "ballot-package" => Ok(shared::ballot::BallotPackage::from_bytes(bytes)
            .map_err(d)?
            .to_bytes()
            .unwrap()),
        "roster" => Ok(shared::roster::Roster::from_bytes(bytes)
            .map_err(d)?
            .to_bytes()
            .unwrap()),
        "status-file" => Ok(shared::status::StatusFile::from_bytes(bytes)
            .map_err(d)?
            .to_bytes()
            .unwrap()),
        "bundle-entry" => {
            let e = match BundleEntry::read(&mut &bytes[..]) {
                Ok(Some(e)) => e,
                Ok(None) => return Err("empty".into()),
                Err(shared::bundle::BundleError::Decode(e)) => return Err(d(e)),
                Err(e) => return Err(e.to_string()),
            };
            let mut out = Vec::new();
            e.write(&mut out).unwrap();
            Ok(out)
        }
        other => panic!("no decoder for {other}"),
    }
}

fn check_signed(format: &str, text: &str, key: &str) -> Result<(), String> {
    let v = NoteVerifier::from_vkey(key).unwrap();
    match format {
        "checkpoint" => SignedCheckpoint::verify(text.as_bytes(), &v)
            .map(|_| ())
            .map_err(|_| "signature".into()),
        "receipt" => {
            let r = shared::receipt::Receipt::parse(text.as_bytes())
                .map_err(|e| format!("parse: {e}"))?;
            match r.verify(&v) {
                Ok(_) => {
                    assert_eq!(
                        r.to_text().unwrap(),
                        text,
                        "a receipt re-encodes to the same text"
                    );
                    Ok(())
                }
                Err(shared::receipt::ReceiptError::Inclusion(_)) => Err("inclusion".into()),
                Err(e) => Err(format!("other: {e}")),
            }
        }
        other => panic!("no checker for {other}"),
    }
}

#[test]
fn every_format_vector_gives_its_stated_result() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut count = 0;
    for dir in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let format = v["format"].as_str().unwrap();
            let expect = v["expect"].as_str().unwrap();
            let got = if let Some(h) = v["hex"].as_str() {
                let bytes = hex::decode(h).unwrap();
                decode(format, &bytes)
                    .map(|re| assert_eq!(re, bytes, "{}: re-encoding differs", path.display()))
            } else {
                check_signed(
                    format,
                    v["text"].as_str().unwrap(),
                    v["key"].as_str().unwrap(),
                )
            };
            let got = match got {
                Ok(()) => "success".to_owned(),
                Err(reason) => format!("refuse:{reason}"),
            };
            assert_eq!(got, expect, "{}: {}", path.display(), v["description"]);
            count += 1;
        }
    }
    assert!(count >= 28, "only {count} vectors found; run the generator");
}
