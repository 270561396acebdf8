//! Writes the format test vectors under `shared/tests/vectors/`, one file per
//! behaviour: `cargo run -p ballot-shared --example make-vectors`.
//!
//! Every input is fixed (nonces, salts, an Ed25519 seed), so running it again
//! writes the same files; `shared/tests/integration/vectors.rs` checks them.
//! Each file is JSON: `format`, `description`, `expect` (`success`, or
//! `refuse:<DecodeError variant>` / `refuse:<reason>` for signed formats),
//! `hex` or `text` (the input), and `key` where a signature is involved.

// A developer tool: any failure should stop it with the message.
#![allow(clippy::expect_used, clippy::indexing_slicing)]

use shared::ballot::BallotPackage;
use shared::bundle::{ballot_file_name, BundleEntry};
use shared::checkpoint::Checkpoint;
use shared::clock::UnixTime;
use shared::log_entry::{voter_commitment, LogEntry};
use shared::merkle::Tree;
use shared::note::NoteSigner;
use shared::receipt::Receipt;
use shared::roster::{Roster, RosterEntry};
use shared::status::{Reason, Status, StatusFile};
use shared::x509::VoterIdentity;
use std::path::{Path, PathBuf};

/// The prefix of the vectors' log keys, as Go-style signer keys.
const LOG_SKEY: &str = "PRIVATE+KEY+ballots.test.example/2026-general+";

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn write(
    format: &str,
    name: &str,
    description: &str,
    expect: &str,
    field: (&str, String),
    key: Option<&str>,
) {
    let dir = out_dir().join(format);
    std::fs::create_dir_all(&dir).expect("create vector folder");
    let mut obj = serde_json::Map::new();
    obj.insert("format".into(), format.into());
    obj.insert("description".into(), description.into());
    obj.insert("expect".into(), expect.into());
    obj.insert(field.0.into(), field.1.into());
    if let Some(k) = key {
        obj.insert("key".into(), k.into());
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(obj)).expect("json") + "\n";
    std::fs::write(dir.join(format!("{name}.json")), text).expect("write vector");
}

/// Writes a success vector and the standard mutations of a binary encoding.
fn binary_family(format: &str, good: &[u8], version_at: usize, long_len_at: Option<usize>) {
    let hex = |b: &[u8]| hex::encode(b);
    write(
        format,
        "success",
        "a well-formed encoding",
        "success",
        ("hex", hex(good)),
        None,
    );
    let mut trailing = good.to_vec();
    trailing.push(0);
    write(
        format,
        "trailing-byte",
        "one byte after the end",
        "refuse:TrailingBytes",
        ("hex", hex(&trailing)),
        None,
    );
    write(
        format,
        "truncated",
        "the last byte is missing",
        "refuse:Truncated",
        ("hex", hex(&good[..good.len() - 1])),
        None,
    );
    let mut version = good.to_vec();
    version[version_at] = version[version_at].wrapping_add(1);
    write(
        format,
        "unknown-version",
        "the version is one more than 1",
        "refuse:UnknownVersion",
        ("hex", hex(&version)),
        None,
    );
    if version_at > 0 {
        let mut magic = good.to_vec();
        magic[0] ^= 0x20;
        write(
            format,
            "bad-magic",
            "the magic string's first letter changed case",
            "refuse:BadMagic",
            ("hex", hex(&magic)),
            None,
        );
    }
    if let Some(at) = long_len_at {
        let mut long = good[..at].to_vec();
        long.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        write(
            format,
            "length-over-limit",
            "a 4-byte length field declares 4 GiB",
            "refuse:TooLong",
            ("hex", hex(&long)),
            None,
        );
    }
}

fn log_key(seed_byte: u8) -> NoteSigner {
    // A fixed seed, so the signatures (Ed25519 is deterministic) are too.
    let seed = [seed_byte; 32];
    let name = "ballots.test.example/2026-general";
    let mut raw = vec![shared::note::TYPE_ED25519];
    raw.extend_from_slice(&seed);
    let pk = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let id = shared::note::key_id(name, shared::note::TYPE_ED25519, pk.as_bytes());
    use base64::prelude::*;
    NoteSigner::from_skey(&format!(
        "{LOG_SKEY}{id:08x}+{}",
        BASE64_STANDARD.encode(raw)
    ))
    .expect("log key")
}

fn entry(i: u8) -> LogEntry {
    LogEntry {
        election_id: "2026-general".into(),
        received_at: UnixTime(1_793_700_000 + u64::from(i)),
        message_sha256: [i; 32],
        voter_commitment: voter_commitment(&[i ^ 0x5a; 32], &format!("V-{i:04}")),
    }
}

fn main() {
    let _ = std::fs::remove_dir_all(out_dir());

    // Log entry: version byte at 0; no 4-byte lengths.
    binary_family("log-entry", &entry(1).to_bytes().expect("encode"), 0, None);

    // Ballot package: magic 14 bytes, version at 14; content length after
    // magic(14) + version(1) + 3 short strings.
    let pkg = BallotPackage {
        election_id: "2026-general".into(),
        ballot_style: "style-7".into(),
        media_type: "application/pdf".into(),
        content: b"%PDF-1.7 test ballot".to_vec(),
        declaration: "I am eligible to vote in this election.".into(),
        nonce: [0x11; 32],
    };
    let good = pkg.to_bytes().expect("encode");
    let content_len_at = 15 + 1 + 12 + 1 + 7 + 1 + 15;
    binary_family("ballot-package", &good, 14, Some(content_len_at));
    let mut dirty = good.clone();
    let last = dirty.len() - 1;
    dirty[last] = 1;
    write(
        "ballot-package",
        "padding-not-zero",
        "the last padding byte is 1",
        "refuse:InvalidValue",
        ("hex", hex::encode(&dirty)),
        None,
    );
    // One byte short of the 4 KiB bucket, with consistent lengths: the
    // padding's length field (the 4 bytes before it) says one byte less.
    let unpadded = content_len_at + 4 + pkg.content.len() + 2 + pkg.declaration.len() + 32;
    let mut short = good[..good.len() - 1].to_vec();
    let pad = (good.len() - unpadded - 4 - 1) as u32;
    short[unpadded..unpadded + 4].copy_from_slice(&pad.to_be_bytes());
    write(
        "ballot-package",
        "not-a-bucket-size",
        "4095 bytes: the padding stops one byte short of the bucket",
        "refuse:InvalidValue",
        ("hex", hex::encode(&short)),
        None,
    );
    // The same package padded to 8 KiB: a bucket size, all zeros, but not
    // the smallest bucket that holds it (a writer never makes it; found by
    // fuzzing the round trip).
    let mut over = good[..unpadded].to_vec();
    over.extend_from_slice(&((8192 - unpadded - 4) as u32).to_be_bytes());
    over.resize(8192, 0);
    write(
        "ballot-package",
        "padded-past-its-bucket",
        "8192 bytes of a package that fits in 4096: padded past the smallest bucket",
        "refuse:InvalidValue",
        ("hex", hex::encode(&over)),
        None,
    );

    // Roster.
    let mut roster = Roster::new("2026-general").expect("roster");
    for (v, e, s) in [
        ("V-0001", "1234567890", "style-1"),
        ("V-0002", "2345678901", "style-2"),
    ] {
        roster
            .insert(RosterEntry {
                voter_id: v.into(),
                identity: VoterIdentity::Edipi(e.into()),
                ballot_style: s.into(),
            })
            .expect("insert");
    }
    roster
        .insert(RosterEntry {
            voter_id: "V-0003".into(),
            identity: VoterIdentity::County("TC-000123".into()),
            ballot_style: "style-1".into(),
        })
        .expect("insert");
    binary_family("roster", &roster.to_bytes().expect("encode"), 12, None);

    // Status file body.
    let status = StatusFile {
        election_id: "2026-general".into(),
        checkpoint: "ballots.test.example/2026-general\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— ballots.test.example/2026-general AAAAAAAA\n".into(),
        statuses: vec![Status::Valid, Status::Rejected(Reason::NotOnRoster), Status::Valid],
    };
    binary_family("status-file", &status.to_bytes().expect("encode"), 13, None);
    // The last entry says "accepted" (1), a code version 1 used to tell a
    // counted ballot from a superseded one; version 2 publishes "valid".
    let mut told = status.to_bytes().expect("encode");
    let status_at = told.len() - 2;
    told[status_at] = 1;
    write(
        "status-file",
        "accepted-not-published",
        "the last entry's status is 1 (accepted), which the public file no longer tells",
        "refuse:InvalidValue",
        ("hex", hex::encode(&told)),
        None,
    );

    // Bundle entry (one frame, as in the manifest stream).
    let e = BundleEntry {
        leaf_index: 3,
        log_entry: entry(3),
        salt: [3 ^ 0x5a; 32],
        voter_id: "V-0003".into(),
        identity: VoterIdentity::Edipi("1234567890".into()),
        client_cert: vec![0x30, 0x00],
        ballot_file: ballot_file_name(3),
        ballot_size: 4242,
        ballot_sha256: [3; 32],
    };
    let mut frame = Vec::new();
    e.write(&mut frame).expect("encode");
    write(
        "bundle-entry",
        "success",
        "one entry frame",
        "success",
        ("hex", hex::encode(&frame)),
        None,
    );
    let mut renamed = e.clone();
    renamed.ballot_file = "ballots/../../etc/passwd".into();
    let mut bad = Vec::new();
    renamed.write(&mut bad).expect("encode");
    write(
        "bundle-entry",
        "file-name-not-derived",
        "the recorded ballot file name is not ballots/<index>.pgp",
        "refuse:InvalidValue",
        ("hex", hex::encode(&bad)),
        None,
    );

    // Checkpoint and receipt, signed with the fixed log key.
    let key = log_key(0x42);
    let vkey = key.verifier().to_vkey();
    let mut tree = Tree::new();
    for i in 0..5 {
        tree.push(entry(i).leaf_hash().expect("leaf"));
    }
    let cp = Checkpoint {
        origin: key.name().into(),
        size: 5,
        root: tree.root(5).expect("root"),
        extensions: vec![],
    };
    let signed = cp.sign(&key).expect("sign");
    write(
        "checkpoint",
        "success",
        "a checkpoint of 5 leaves signed by the log key",
        "success",
        ("text", signed.clone()),
        Some(&vkey),
    );
    write(
        "checkpoint",
        "changed-size",
        "the tree size is changed after signing",
        "refuse:signature",
        ("text", signed.replacen("\n5\n", "\n6\n", 1)),
        Some(&vkey),
    );
    let other = log_key(0x43);
    write(
        "checkpoint",
        "other-key-same-name",
        "signed by a different key with the log's name",
        "refuse:signature",
        ("text", cp.sign(&other).expect("sign")),
        Some(&vkey),
    );
    let receipt = Receipt {
        entry: entry(2),
        index: 2,
        proof: tree.inclusion_proof(2, 5).expect("proof"),
        checkpoint: signed.clone(),
    };
    let text = receipt.to_text().expect("receipt");
    write(
        "receipt",
        "success",
        "leaf 2 of 5",
        "success",
        ("text", text.clone()),
        Some(&vkey),
    );
    let wrong_index = Receipt {
        index: 3,
        ..receipt.clone()
    };
    write(
        "receipt",
        "wrong-index",
        "the proof is for index 2 but the receipt says 3",
        "refuse:inclusion",
        ("text", wrong_index.to_text().expect("receipt")),
        Some(&vkey),
    );
    let other_entry = Receipt {
        entry: entry(4),
        ..receipt
    };
    write(
        "receipt",
        "other-entry",
        "the entry is not the one at index 2",
        "refuse:inclusion",
        ("text", other_entry.to_text().expect("receipt")),
        Some(&vkey),
    );
    println!("vectors written to {}", out_dir().display());
}
