//! The real `ballot-verifier` program as county staff run it.

use base64::prelude::*;
use sha2::Digest;
use shared::clock::{ManualClock, UnixTime};
use std::io::{Seek, Write};
use std::process::Command;

/// The program, with `passphrases` on its standard input, one per line, and
/// `--passphrase-fd 0` (never in argv or the environment).
pub(crate) fn with_passphrases(passphrases: &[&str]) -> Command {
    let mut file = tempfile::tempfile().unwrap();
    for p in passphrases {
        writeln!(file, "{p}").unwrap();
    }
    file.rewind().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_ballot-verifier"));
    c.stdin(file).args(["--passphrase-fd", "0"]);
    c
}

/// Runs a command that must fail with exit status 1; returns its standard
/// error. No line may say only what the system said ("(os error N)").
fn refused_with(c: &mut Command) -> String {
    let out = c.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{c:?}: {err}");
    assert!(!err.contains("(os error"), "a bare system error: {err}");
    err
}

/// The three trustees' passphrases, in their order at `init`.
pub(crate) const ALICE: &str = "alice's long passphrase";
const BOB: &str = "bob's long passphrase";
pub(crate) const CAROL: &str = "carol's long passphrase";

pub(crate) fn bin() -> Command {
    with_passphrases(&[])
}

/// `process` opened by two of the three trustees, Alice and Carol.
fn by_two_trustees(d: &std::path::Path) -> Command {
    let mut c = with_passphrases(&[ALICE, CAROL]);
    c.arg("--home")
        .arg(d.join("home"))
        .arg("--allow-network")
        .arg("process");
    c.arg("--share").arg(d.join("trustee-a"));
    c.arg("--share").arg(d.join("trustee-c"));
    c
}

fn ok(c: &mut Command) -> (String, i32) {
    let out = c.output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 3,
        "{c:?} failed ({code}):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Written to a pipe, the report and the log are plain text.
    for stream in [&out.stdout, &out.stderr] {
        assert!(!stream.contains(&0x1b), "terminal colour codes in {c:?}");
    }
    (String::from_utf8_lossy(&out.stdout).into_owned(), code)
}

/// The county's setup as staff run it, in `d`: the development PKI in
/// `d/pki`, the gateway's keys (`d/gw`, `d/gw-media`), `ballot-verifier init`
/// with three trustees (two open the key) writing the verifier's `home` and
/// the signed `d/media`, and the gateway's import of that setup.
pub(crate) struct County {
    pub(crate) pki: devpki::DevPki,
    pub(crate) clock: ManualClock,
    pub(crate) fpr: String,
    /// What `init` printed.
    pub(crate) out: String,
}

pub(crate) fn init_county(d: &std::path::Path, home: &std::path::Path) -> County {
    let now = time::OffsetDateTime::now_utc();
    let t = now.unix_timestamp() as u64;
    let clock = ManualClock::new(UnixTime(t));
    let pki = devpki::generate(now).unwrap();
    pki.write_to(&d.join("pki")).unwrap();
    gateway::setup::init(
        &d.join("gw"),
        "ballots.test.example/2026",
        &d.join("gw-media"),
        &clock,
    )
    .unwrap();
    std::fs::write(
        d.join("declaration.txt"),
        "I am eligible to vote in this election.\n",
    )
    .unwrap();
    std::fs::write(
        d.join("roster.csv"),
        "voter_id,edipi,ballot_style\nV-1,1234567890,s1\nV-3,3456789012,s1\n",
    )
    .unwrap();
    let fmt = |s: u64| UnixTime(s).to_rfc3339();
    // Every path relative to the working folder, as staff type them.
    for m in ["trustee-a", "trustee-b", "trustee-c"] {
        std::fs::create_dir(d.join(m)).unwrap();
    }
    let (out, _) = ok(with_passphrases(&[ALICE, BOB, CAROL])
        .current_dir(d)
        .arg("--home")
        .arg(home)
        .arg("--allow-network")
        .args([
            "init",
            "--threshold",
            "2",
            "--trustee",
            "Alice Adams=trustee-a",
            "--trustee",
            "Bob Brown=trustee-b",
            "--trustee",
            "Carol Chen=trustee-c",
            "--election-id",
            "2026-general",
            "--title",
            "General Election",
            "--jurisdiction",
            "Test County",
        ])
        .args([
            "--opens",
            &fmt(t - 3600),
            "--closes",
            &fmt(t + 86_400),
            "--witness-name",
            "county.test.example/witness",
        ])
        .arg("--witness")
        .arg(format!(
            "http://127.0.0.1:9/,{}",
            shared::note::NoteSigner::generate(
                "observer.test.example/w",
                shared::note::TYPE_COSIGNATURE
            )
            .unwrap()
            .verifier()
            .to_vkey()
        ))
        .args(["--gateway-media", "gw-media", "--out-media", "media"])
        .args(["--declaration-file", "declaration.txt"])
        .args(["--anchor", "pki/anchors/test-dod-root-ca-3.pem"])
        .args(["--roster-csv", "roster.csv"]));
    let fpr: String = out
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .expect("the fingerprint is printed")
        .into();
    gateway::setup::import_setup(
        &d.join("gw"),
        &[testkit::election::dod_anchor(&pki)],
        &d.join("media"),
        &fpr,
        &clock,
    )
    .unwrap();
    County {
        pki,
        clock,
        fpr,
        out,
    }
}

#[test]
fn county_staff_run_init_import_process_and_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let home = d.join("home");
    let County {
        pki,
        clock,
        fpr,
        out,
        ..
    } = init_county(d, &home);
    assert!(
        home.join("verifier.db").is_file(),
        "init made the home folder"
    );
    // The transcript for the board: every trustee, the threshold, the checks.
    for want in [
        "any 2 of these 3 trustees",
        "Share 1: Alice Adams",
        "Share 3: Carol Chen",
        "1 shares were refused as too few",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    assert!(home.join("custody-transcript-g1.txt").is_file());
    for m in ["trustee-a", "trustee-b", "trustee-c"] {
        let shares: Vec<_> = std::fs::read_dir(d.join(m)).unwrap().collect();
        assert_eq!(shares.len(), 1, "one share on {m}'s media");
    }

    // Two ballots through the gateway's sequencer: one valid, one by a voter
    // whose signature is not the uploader's.
    let manifest = shared::manifest::ElectionManifest::open_signed(
        &std::fs::read(d.join("media/election-manifest.signed")).unwrap(),
        &fpr,
    )
    .unwrap();
    // (John is not on the roster: a ballot he signed, uploaded by another,
    // is a routine rejection. Had a voter on the roster signed it, it would
    // be gateway misbehaviour, an alarm.)
    let prep = |who: &str| {
        let v = &pki.voter(who).unwrap().issued;
        testkit::voters::upload(&manifest, &pki, v, "s1", b"%PDF-1.7 a ballot".to_vec())
    };
    let logged = |voter_id: &str, edipi: &str, signer: &str| testkit::voters::Logged {
        voter_id: voter_id.into(),
        identity: format!("edipi:{edipi}"),
        client_cert: vec![],
        message: prep(signer),
        at: None,
        witnessed_at: None,
    };
    let receipt = testkit::voters::log_directly(
        &d.join("gw"),
        &clock,
        "2026-general",
        5,
        &[],
        [
            logged("V-1", "1234567890", "jane-p256"),
            logged("V-3", "3456789012", "john-p384"),
        ],
    )
    .swap_remove(0)
    .receipt;
    gateway::export::export(
        &d.join("gw"),
        &[pki.root_crl.clone(), pki.id_ca_crl.clone()],
        std::slice::from_ref(&pki.id_ca.issued.cert_der),
        &d.join("usb"),
        false,
        &clock,
    )
    .unwrap();

    let (out, _) = ok(bin()
        .arg("--home")
        .arg(&home)
        .arg("import")
        .arg(d.join("usb")));
    assert!(out.contains("Imported bundle 1: 2 ballots"), "{out}");
    let (out, _) = ok(bin()
        .current_dir(d)
        .args(["--home", "home", "import", "usb"]));
    assert!(out.contains("imported before"), "{out}");
    // A second bundle whose last ballot was damaged on the media: the
    // refusal starts on a line of its own, after the progress line.
    testkit::voters::log_directly(
        &d.join("gw"),
        &clock,
        "2026-general",
        5,
        &[],
        [
            logged("V-1", "1234567890", "jane-p256"),
            logged("V-3", "3456789012", "john-p384"),
        ],
    );
    let b2 = gateway::export::export(
        &d.join("gw"),
        &[pki.root_crl.clone(), pki.id_ca_crl.clone()],
        std::slice::from_ref(&pki.id_ca.issued.cert_der),
        &d.join("usb2"),
        false,
        &clock,
    )
    .unwrap()
    .unwrap();
    std::fs::write(b2.dir.join(shared::bundle::ballot_file_name(3)), b"damaged").unwrap();
    let err = refused_with(
        bin()
            .arg("--home")
            .arg(&home)
            .arg("import")
            .arg(d.join("usb2")),
    );
    assert!(err.contains("checking ballots: 1 of 2"), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("error: bundle")),
        "the error is not at the start of a line: {err:?}"
    );
    // Wrong folders: named, with what was expected, and no bare system
    // error.
    let err = refused_with(
        bin()
            .arg("--home")
            .arg(&home)
            .arg("import")
            .arg(d.join("no-such-media")),
    );
    assert!(
        err.contains("no-such-media") && err.contains("does not exist"),
        "{err}"
    );
    let err = refused_with(
        bin()
            .arg("--home")
            .arg(d.join("no-such-home"))
            .arg("import")
            .arg(d.join("usb")),
    );
    assert!(
        err.contains("no-such-home") && err.contains("ballot-verifier init"),
        "{err}"
    );
    assert_eq!(err.matches("unable to open").count(), 0, "{err}");
    let (out, code) = ok(by_two_trustees(d)
        .arg("--out")
        .arg(d.join("canvass"))
        .arg("--anchor")
        .arg(d.join("pki/anchors/test-dod-root-ca-3.pem")));
    assert_eq!(code, 3, "a rejection makes the exit status 3:\n{out}");
    assert!(out.contains("Accepted (to be counted):      1"), "{out}");
    // The report names the anchors used, by the hash the manifest pins.
    let root_sha256 = hex::encode(<[u8; 32]>::from(sha2::Sha256::digest(
        &pki.root.issued.cert_der,
    )));
    assert!(
        out.contains(&format!("{root_sha256}  test-dod-root-ca-3")),
        "{out}"
    );
    assert!(
        out.contains("signed by someone other than the voter"),
        "{out}"
    );

    // The county's own CRLs, from its own media: the ID CA's (a CA the
    // bundles brought); the gateway had shipped the same bytes.
    std::fs::create_dir(d.join("county-crls")).unwrap();
    std::fs::copy(
        d.join("pki/crls/test-dod-id-ca-59.crl"),
        d.join("county-crls/id-ca-59.crl"),
    )
    .unwrap();
    let (out, _) = ok(bin()
        .current_dir(d)
        .args(["--home", "home", "import-crls", "county-crls"]));
    assert!(
        out.contains("CRL from C=US, O=U.S. Government, OU=DoD, OU=PKI, CN=Test DOD ID CA-59")
            && out.contains("(already imported)")
            && out.contains("1 CRL(s) checked and imported"),
        "{out}"
    );
    // A CRL from a CA the verifier does not know (the county voter CA is not
    // pinned in this election) is refused, naming the file.
    std::fs::copy(
        d.join("pki/crls/test-county-voter-ca.crl"),
        d.join("county-crls/county.crl"),
    )
    .unwrap();
    let refused = bin()
        .current_dir(d)
        .args(["--home", "home", "import-crls", "county-crls"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains("county.crl") && err.contains("not signed by any CA this verifier knows"),
        "{err}"
    );

    // Passphrases on standard input leave no room to ask for the media
    // there: --share is required, and nothing is read or written.
    let clash = with_passphrases(&[BOB, CAROL])
        .current_dir(d)
        .args(["--home", "home", "--allow-network", "process"])
        .args(["--out", "canvass-clash"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&clash.stderr);
    assert_eq!(clash.status.code(), Some(1), "{err}");
    assert!(
        err.contains("give each of the 2 trustees' media with --share"),
        "{err}"
    );
    assert!(!d.join("canvass-clash").exists());

    // A rogue anchor offered at process is refused before any trustee
    // types a passphrase: the manifest decides who may vote as whom.
    let rogue = bin()
        .current_dir(d)
        .args(["--home", "home", "--allow-network", "process"])
        .args(["--share", "trustee-b", "--share", "trustee-c"])
        .args(["--out", "canvass-rogue"])
        .args(["--anchor", "pki/anchors/test-county-voter-ca.pem"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&rogue.stderr);
    assert_eq!(rogue.status.code(), Some(1), "{err}");
    assert!(
        err.contains("test-county-voter-ca")
            && err.contains("is not pinned in the signed manifest"),
        "{err}"
    );
    assert!(!err.contains("passphrase"), "refused before asking: {err}");
    assert!(!d.join("canvass-rogue").exists());

    // The same run with every path relative, as staff type them, and no
    // anchor given: the pinned ones are used.
    let (out, code) = ok(with_passphrases(&[BOB, CAROL])
        .current_dir(d)
        .args(["--home", "home", "--allow-network", "process"])
        .args(["--share", "trustee-b", "--share", "trustee-c"])
        .args(["--out", "canvass-relative"]));
    assert_eq!(code, 3, "relative paths end like absolute ones:\n{out}");
    assert!(d.join("canvass-relative/report.txt").is_file());
    assert!(
        out.contains("The report to print, review and sign: canvass-relative/report.pdf"),
        "{out}"
    );
    assert!(std::fs::read(d.join("canvass-relative/report.pdf"))
        .unwrap()
        .starts_with(b"%PDF-"));

    std::fs::write(d.join("receipt.tlog-proof"), &receipt).unwrap();
    // The consistency proof from the receipt's checkpoint (1 entry) to the
    // status file's (2), as the gateway's public log gives it.
    let log_key = shared::note::NoteVerifier::from_vkey(&manifest.log_key).unwrap();
    let tree = gateway::sequencer::load_and_verify(
        &rusqlite::Connection::open(gateway::store::db_path(&d.join("gw"))).unwrap(),
        &log_key,
    )
    .unwrap()
    .tree;
    let proof: String = tree
        .consistency_proof(1, 2)
        .unwrap()
        .iter()
        .map(|h| format!("{}\n", BASE64_STANDARD.encode(h)))
        .collect();
    std::fs::write(d.join("status.proof"), proof).unwrap();
    let (out, _) = ok(bin()
        .arg("audit")
        .arg("--receipt")
        .arg(d.join("receipt.tlog-proof"))
        .arg("--manifest")
        .arg(d.join("media/election-manifest.signed"))
        .args(["--election-fingerprint", &fpr])
        .arg("--status-file")
        .arg(d.join("canvass/status.signed"))
        .arg("--status-proof")
        .arg(d.join("status.proof")));
    assert!(
        out.contains("The receipt is valid")
            && out.contains("valid: your ballot passed every check"),
        "{out}"
    );
    let (relative, _) = ok(bin()
        .current_dir(d)
        .args(["audit", "--receipt", "receipt.tlog-proof"])
        .args(["--manifest", "media/election-manifest.signed"])
        .args(["--election-fingerprint", &fpr])
        .args(["--status-file", "canvass-relative/status.signed"])
        .args(["--status-proof", "status.proof"]));
    assert_eq!(relative, out, "relative paths audit the same");
    // A wrong passphrase is refused with a clear message naming the share.
    let out = with_passphrases(&[ALICE, "not the right passphrase"])
        .arg("--home")
        .arg(&home)
        .arg("--allow-network")
        .arg("process")
        .arg("--share")
        .arg(d.join("trustee-a"))
        .arg("--share")
        .arg(d.join("trustee-b"))
        .arg("--out")
        .arg(d.join("canvass2"))
        .arg("--anchor")
        .arg(d.join("pki/anchors/test-dod-root-ca-3.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did not open: the passphrase is wrong"),
        "{out:?}"
    );
    assert!(!d.join("canvass2").exists(), "no partial output");
}
