//! `ballot-return` as a voter runs it, against the real gateway on
//! 127.0.0.1 (in this process, from the test-support crate).

// A test that meets an unexpected error should stop with it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use gateway::config::Limits;
use std::path::Path;
use std::process::Command;
use testkit::world::World;

fn return_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ballot-return"))
}

/// The connection options for a development voter, with paths under
/// `dir` (which may be relative to the program's working folder).
fn connection(c: &mut Command, dir: &Path, port: u16, voter: &str) {
    let pki = dir.join("pki");
    c.args(["--gateway", &format!("https://localhost:{port}")])
        .arg("--ca")
        .arg(pki.join("anchors/test-dod-root-ca-3.pem"))
        .arg("--cert")
        .arg(pki.join(format!("voters/{voter}.cert.pem")))
        .arg("--key")
        .arg(pki.join(format!("voters/{voter}.key.pem")))
        .arg("--chain")
        .arg(pki.join("intermediates/test-dod-id-ca-59.pem"));
}

fn send(dir: &Path, port: u16, fpr: &str, voter: &str, receipt: &str) -> std::process::Output {
    // Every path relative to the working folder, as voters type them.
    let mut c = return_bin();
    c.current_dir(dir).arg("send");
    connection(&mut c, Path::new(""), port, voter);
    c.args([
        "--election-fingerprint",
        fpr,
        "--ballot-style",
        "style-1",
        "--accept-declaration",
    ])
    .args(["--ballot", "ballot.pdf", "--receipt", receipt])
    .output()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_sends_and_checks_with_the_real_program() {
    // The observers' witnesses are named in the manifest but down at first.
    let obs = testkit::observers::Observers::bind(3, 2);
    let w = World::with_spec(Limits::default(), |s| s.observers(&obs));
    let r = w.start().await;
    let dir = w.dir.path().to_path_buf();
    let fpr = w.county.fpr.clone();
    let port = r.port;
    std::fs::write(dir.join("ballot.pdf"), b"%PDF-1.7 a marked ballot").unwrap();
    let status_of = move |dir: std::path::PathBuf| {
        let mut c = return_bin();
        c.current_dir(&dir).arg("status");
        connection(&mut c, Path::new(""), port, "jane-p256");
        c.args(["--receipt", "jane.json"]).output().unwrap()
    };
    let (sent, refused, status) = tokio::task::spawn_blocking(move || {
        let sent = send(&dir, port, &fpr, "jane-p256", "jane.json");
        let refused = send(&dir, port, &fpr, "rick-revoked", "rick.json");
        let mut c = return_bin();
        c.current_dir(&dir).arg("status");
        connection(&mut c, Path::new(""), port, "jane-p256");
        let status = c.args(["--receipt", "jane.json"]).output().unwrap();
        (sent, refused, status)
    })
    .await
    .unwrap();

    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(
        stdout.contains("received and logged as entry 0"),
        "{stdout}"
    );

    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("NOT sent"));

    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    // Witnesses down: the voter is told the ballot is logged, not yet
    // witnessed.
    assert!(
        stdout.contains("your ballot is logged (entry 0), but the county's witnesses have not cosigned any checkpoint yet"),
        "{stdout}"
    );

    // The witnesses come up and cosign: the check now links the receipt to
    // the witnessed log.
    obs.start(
        &w.county.manifest.log_key,
        std::sync::Arc::new(w.county.clock.clone()),
    );
    let dir = w.dir.path().to_path_buf();
    let mut stdout = String::new();
    for _ in 0..300 {
        let d = dir.clone();
        let out = tokio::task::spawn_blocking(move || status_of(d))
            .await
            .unwrap();
        stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && stdout.contains("and witnessed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        stdout.contains("is in the log the county's witnesses cosigned (1 entries)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("witnessed; the county has not processed it yet"),
        "{stdout}"
    );
    r.stop().await;
}

#[test]
fn a_mistyped_fingerprint_is_refused_before_anything_is_sent() {
    let out = return_bin()
        .args(["send", "--gateway", "https://localhost:1", "--ca", "x"])
        .args(["--cert", "x", "--key", "x", "--ballot", "x"])
        .args(["--ballot-style", "s", "--election-fingerprint", "0123 XYZ"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only the digits 0-9 and letters A-F"), "{err}");
}

mod card;
