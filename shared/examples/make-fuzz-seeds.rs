//! Writes the fuzz targets' seed corpora under `fuzz/corpus/<target>/`:
//! `cargo run -p ballot-shared --example make-fuzz-seeds`.
//!
//! Seeds are valid inputs of each format (and the format vectors under
//! `shared/tests/vectors/`, refusals included), so the fuzzers start from
//! inputs that reach deep into each parser. Keys are generated afresh, so a
//! rerun writes different (equally valid) files.

// A developer tool: any failure should stop it with the message.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use shared::ballot::BallotPackage;
use shared::bundle::{ballot_file_name, BundleEntry, BundleHeader, FileRef};
use shared::clock::UnixTime;
use shared::log_entry::{voter_commitment, LogEntry};
use shared::manifest::{ElectionManifest, MediaRule, ReplacementRule};
use shared::note::{NoteSigner, TYPE_COSIGNATURE, TYPE_ED25519};
use shared::x509::VoterIdentity;
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

fn seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus().join(target);
    std::fs::create_dir_all(&dir).expect("create corpus folder");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

/// The inputs of the format vectors of one format.
fn vectors(format: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(format);
    let mut out = Vec::new();
    for f in std::fs::read_dir(&dir).expect("vectors") {
        let path = f.expect("entry").path();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        let bytes = match (v.pointer("/hex"), v.pointer("/text")) {
            (Some(h), _) => hex::decode(h.as_str().expect("hex")).expect("hex"),
            (_, Some(t)) => t.as_str().expect("text").as_bytes().to_vec(),
            _ => continue,
        };
        let name = path
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        out.push((format!("vector-{name}"), bytes));
    }
    out
}

fn main() {
    let _ = std::fs::remove_dir_all(corpus());
    for (target, format) in [
        ("ballot_package", "ballot-package"),
        ("roster", "roster"),
        ("status_file", "status-file"),
        ("checkpoint", "checkpoint"),
        ("receipt", "receipt"),
        ("receipt", "log-entry"),
        ("bundle", "bundle-entry"),
    ] {
        for (name, bytes) in vectors(format) {
            seed(target, &format!("{format}-{name}"), &bytes);
        }
    }

    let now = time::OffsetDateTime::now_utc();
    let t = UnixTime(now.unix_timestamp() as u64);
    let election = shared::pgp::generate_election_key("Seed County", None).expect("key");
    let fpr = shared::pgp::fingerprint_hex(&election);

    // A voter's signed and encrypted ballot.
    let pki = devpki::generate(now).expect("dev PKI");
    let jane = pki.voter("jane-p256").expect("jane");
    let package = BallotPackage::new(
        "seed-election",
        "style-1",
        shared::ballot::MEDIA_PDF,
        b"%PDF-1.7 a seed ballot".to_vec(),
        "I am eligible to vote in this election.",
    )
    .to_bytes()
    .expect("package");
    seed("ballot_package", "fresh", &package);
    let key = shared::cms::VoterKey::from_pem(jane.issued.key.pkcs8_pem().as_bytes()).expect("key");
    for (name, chain) in [
        ("with-chain", vec![pki.id_ca.issued.cert_der.clone()]),
        ("alone", vec![]),
    ] {
        let signed =
            shared::cms::sign(&package, &jane.issued.cert_der, &chain, &key).expect("sign");
        seed("cms_verify", name, &signed);
        let encrypted = shared::pgp::encrypt(&election, &signed).expect("encrypt");
        seed("pgp_structure", name, &encrypted);
        seed("pgp_decrypt", name, &encrypted);
        // The inner packet stream alone (the target also wraps its input).
        seed("pgp_decrypt", &format!("{name}-packets"), &signed);
    }
    let maria = pki.voter("maria-rsa").expect("maria");
    let rsa =
        shared::cms::VoterKey::from_pem(maria.issued.key.pkcs8_pem().as_bytes()).expect("key");
    seed(
        "cms_verify",
        "rsa",
        &shared::cms::sign(&package, &maria.issued.cert_der, &[], &rsa).expect("sign"),
    );

    // CRLs: the development ones (empty and one revocation) and one whose
    // entries carry a reason and an invalidity date.
    seed("crl", "root-empty", &pki.root_crl);
    seed("crl", "id-ca-one-revoked", &pki.id_ca_crl);
    {
        let now = time::OffsetDateTime::now_utc();
        let serial = [0x12u8, 0x34, 0x56];
        let crl = pki
            .id_ca
            .crl_with(
                7,
                &[devpki::CrlEntry {
                    reason: Some(devpki::CrlReason::KeyCompromise),
                    invalidity: Some(now - time::Duration::days(2)),
                    ..devpki::CrlEntry::new(&serial, now - time::Duration::days(1))
                }],
                now - time::Duration::hours(1),
                now + time::Duration::days(7),
                devpki::CrlKind::Complete,
            )
            .expect("crl");
        seed("crl", "reason-and-invalidity", &crl);
    }

    // The election manifest, bare and signed, and a signed roster and status
    // file (the targets pin another fingerprint, so these stop at the
    // signer check; the bare forms go deeper).
    let log = NoteSigner::generate("seed.example/log", TYPE_ED25519).expect("log key");
    let manifest = ElectionManifest {
        election_id: "seed-election".into(),
        title: "Seed Election".into(),
        jurisdiction: "Seed County".into(),
        opens_at: t,
        closes_at: UnixTime(t.0 + 86_400),
        election_cert: shared::pgp::public_bytes(&election).expect("cert"),
        gateway_transfer_fpr: fpr.clone(),
        log_origin: log.name().into(),
        log_key: log.verifier().to_vkey(),
        witness_key: NoteSigner::generate("seed.example/witness", TYPE_COSIGNATURE)
            .expect("witness")
            .verifier()
            .to_vkey(),
        accepted_media: vec![MediaRule {
            media_type: shared::ballot::MEDIA_PDF.into(),
            max_size: 1 << 20,
        }],
        replacement_rule: ReplacementRule::LatestBeforeDeadline,
        declaration: "I am eligible to vote in this election.".into(),
        witnesses: vec![shared::manifest::ManifestWitness {
            key: NoteSigner::generate("seed.example/observer", TYPE_COSIGNATURE)
                .expect("observer")
                .verifier()
                .to_vkey(),
            url: "https://observer.seed.example/".into(),
        }],
        witness_quorum: 1,
        grace_seconds: 600,
        trust_anchors: vec![
            shared::manifest::PinnedAnchor {
                name: "Seed DoD Root".into(),
                cert_sha256: [0x5e; 32],
                identity: shared::x509::IdentityRule::Edipi,
                policies: vec!["2.16.840.1.101.2.1.11.42".into()],
            },
            shared::manifest::PinnedAnchor {
                name: "Seed County CA".into(),
                cert_sha256: [0xc0; 32],
                identity: shared::x509::IdentityRule::UriPrefix("urn:seed:voter:".into()),
                policies: vec!["1.3.6.1.4.1.99999.1".into(), "1.3.6.1.4.1.99999.2".into()],
            },
        ],
    };
    let bare = manifest.to_bytes().expect("manifest");
    seed("manifest", "bare", &bare);
    seed(
        "manifest",
        "signed",
        &shared::signed::sign_document(&bare, &election, None).expect("sign"),
    );
    for (name, bytes) in vectors("roster") {
        if name.ends_with("success") {
            seed(
                "roster",
                "signed",
                &shared::signed::sign_document(&bytes, &election, None).expect("sign"),
            );
        }
    }
    seed(
        "roster",
        "county.csv",
        b"voter_id,edipi,ballot_style\nV-1,1234567890,style-1\nV-2,,style-2\n",
    );

    // A transfer bundle manifest: header and two entries, for the parser
    // and for the import (which signs it with its own transfer key).
    let entry = |i: u64| BundleEntry {
        leaf_index: i,
        log_entry: LogEntry {
            election_id: "fuzz-election".into(),
            received_at: UnixTime(t.0 + i),
            message_sha256: [i as u8; 32],
            voter_commitment: voter_commitment(&[7; 32], &format!("V-{i}")),
        },
        salt: [7; 32],
        voter_id: format!("V-{i}"),
        identity: VoterIdentity::Edipi(format!("{:010}", 1_234_567_890 + i)),
        client_cert: jane.issued.cert_der.clone(),
        ballot_file: ballot_file_name(i),
        ballot_size: 22,
        ballot_sha256: [i as u8; 32],
    };
    let fuzz_log = NoteSigner::generate("fuzz.example/log", TYPE_ED25519).expect("log key");
    let cp = shared::checkpoint::Checkpoint {
        origin: "fuzz.example/log".into(),
        size: 2,
        root: [0; 32],
        extensions: vec![],
    };
    let header = BundleHeader {
        election_id: "fuzz-election".into(),
        sequence: 1,
        log_origin: "fuzz.example/log".into(),
        previous_checkpoint: None,
        new_checkpoint: cp.sign(&fuzz_log).expect("checkpoint"),
        consistency_proof: vec![],
        witnessed: vec![cp.sign(&fuzz_log).expect("checkpoint")],
        crls: vec![FileRef {
            size: pki.id_ca_crl.len() as u64,
            sha256: [1; 32],
        }],
        intermediates: vec![],
        first_index: 0,
        entry_count: 2,
    };
    let mut bundle = Vec::new();
    header.write(&mut bundle).expect("header");
    for i in 0..2 {
        entry(i).write(&mut bundle).expect("entry");
    }
    seed("bundle", "two-entries", &bundle);
    let mut import = (bundle.len() as u32).to_le_bytes().to_vec();
    import.extend_from_slice(&bundle);
    import.extend_from_slice(b"-----not a ballot-----");
    seed("media_import", "two-entries", &import);
    println!("seeds written to {}", corpus().display());
}
