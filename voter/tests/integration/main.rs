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

/// The options of a development voter (a key in a file instead of a card),
/// with paths under `dir` (which may be relative to the working folder).
fn key_files(c: &mut Command, dir: &Path, voter: &str) {
    let pki = dir.join("pki");
    c.arg("--cert")
        .arg(pki.join(format!("voters/{voter}.cert.pem")))
        .arg("--key")
        .arg(pki.join(format!("voters/{voter}.key.pem")))
        .arg("--chain")
        .arg(pki.join("intermediates/test-dod-id-ca-59.pem"));
}

/// `ballot-return` as a voter's computer runs it: receipts in the user's
/// data folder (`XDG_DATA_HOME` under `dir`), the gateway's certificate
/// checked against the system trust store, which `SSL_CERT_FILE` points at
/// the development gateway CA (what a county's own test machine would do).
fn as_user(dir: &Path, trust: &str) -> Command {
    let mut c = return_bin();
    c.current_dir(dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("SSL_CERT_FILE", dir.join(trust))
        .env_remove("SSL_CERT_DIR");
    c
}

/// The gateway CA the development PKI's server certificate chains to.
const GATEWAY_CA: &str = "pki/anchors/test-dod-root-ca-3.pem";

/// The short command of the ballot instructions: address, fingerprint,
/// file; every path relative to the working folder, as voters type them.
fn send(dir: &Path, port: u16, fpr: &str, voter: &str, trust: &str) -> std::process::Output {
    let mut c = as_user(dir, trust);
    c.args([
        "send",
        &format!("https://localhost:{port}"),
        fpr,
        "ballot.pdf",
    ]);
    key_files(&mut c, Path::new(""), voter);
    c.arg("--accept-declaration").output().unwrap()
}

fn said(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
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
    let status_of =
        move |dir: std::path::PathBuf| as_user(&dir, GATEWAY_CA).arg("status").output().unwrap();
    let (sent, untrusted, refused, again, listed, status) =
        tokio::task::spawn_blocking(move || {
            let sent = send(&dir, port, &fpr, "jane-p256", GATEWAY_CA);
            // A computer that does not trust the gateway's certificate.
            let untrusted = send(
                &dir,
                port,
                &fpr,
                "jane-p256",
                "pki/anchors/test-county-voter-ca.pem",
            );
            let refused = send(&dir, port, &fpr, "rick-revoked", GATEWAY_CA);
            // The same voter sends again: a second receipt beside the first.
            let again = send(&dir, port, &fpr, "jane-p256", GATEWAY_CA);
            let listed = as_user(&dir, GATEWAY_CA).arg("receipts").output().unwrap();
            let status = status_of(dir.clone());
            (sent, untrusted, refused, again, listed, status)
        })
        .await
        .unwrap();

    let text = said(&sent);
    assert!(sent.status.success(), "{text}");
    assert!(text.contains("received and logged as entry 0"), "{text}");
    // The style was the roster's; the receipt went to the user's folder.
    assert!(
        text.contains("Voter V-0001; ballot style style-1 (from the county's roster"),
        "{text}"
    );
    let folder = w.dir.path().join("data/ballot-return/receipts");
    assert!(
        text.contains(&format!("Receipt saved as {}", folder.join("").display())),
        "{text}"
    );

    let text = said(&untrusted);
    assert!(!untrusted.status.success(), "{text}");
    assert!(text.contains("NOT sent"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");

    assert!(!refused.status.success());
    assert!(said(&refused).contains("NOT sent"));
    // Refused for what it is, whether the TLS 1.3 alert came during the
    // handshake or after the request had left; and never retried.
    assert!(
        said(&refused).contains("the gateway refused your card: the certificate has been revoked"),
        "{}",
        said(&refused)
    );
    assert!(
        !said(&refused).contains("Trying again"),
        "{}",
        said(&refused)
    );

    let text = said(&again);
    assert!(again.status.success(), "{text}");
    assert!(text.contains("received and logged as entry 1"), "{text}");
    let mut files: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].ends_with("-entry-0.json") && files[1].ends_with("-entry-1.json"));

    let text = said(&listed);
    assert!(listed.status.success(), "{text}");
    assert!(text.contains("Receipts in"), "{text}");
    assert!(text.contains(&format!("{}: election", files[0])), "{text}");
    assert!(text.contains("entry 1, received 20"), "{text}");

    // Issue 17, part 3: the receipt on paper, read back by poppler.
    let printed = as_user(w.dir.path(), GATEWAY_CA)
        .args(["print", "--out", "."])
        .output()
        .unwrap();
    let text = said(&printed);
    assert!(printed.status.success(), "{text}");
    let pdf = w.dir.path().join(files[0].replace(".json", ".pdf"));
    let saved: voter::client::SavedReceipt =
        serde_json::from_slice(&std::fs::read(folder.join(&files[0])).unwrap()).unwrap();
    match testkit::pdf::render(&pdf) {
        Err(why) => println!("SKIPPED reading the printed receipt back: {why}"),
        Ok(r) => {
            assert_eq!(r.pages.len(), 1, "one page: {}", r.text);
            let flat = r.text.split_whitespace().collect::<Vec<_>>().join(" ");
            for want in [
                "Receipt for your returned ballot",
                "written into the county's public log as entry number 0",
                "It does not show how you voted",
                saved.message_sha256.as_str(),
                "ballot-return status",
                "The county's ballot-audit program is the authoritative check",
                "tlog-proof",
            ] {
                assert!(
                    flat.contains(want),
                    "the receipt lacks {want:?}:\n{}",
                    r.text
                );
            }
            // Every line of the receipt is on the paper (long lines broken
            // at the margin).
            let squeezed: String = r.text.split_whitespace().collect();
            for line in saved.receipt.lines().filter(|l| !l.is_empty()) {
                let line: String = line.split_whitespace().collect();
                assert!(
                    squeezed.contains(&line),
                    "{line:?} not on the paper:\n{}",
                    r.text
                );
            }
        }
    }
    // Printing again does not overwrite the paper copy.
    let again_printed = as_user(w.dir.path(), GATEWAY_CA)
        .args(["print", "--out", "."])
        .output()
        .unwrap();
    assert!(!again_printed.status.success());
    assert!(
        said(&again_printed).contains("exists"),
        "{}",
        said(&again_printed)
    );

    let text = said(&status);
    assert!(status.status.success(), "{text}");
    // Witnesses down: the voter is told each ballot is logged, not yet
    // witnessed.
    assert!(
        text.contains("your ballot is logged (entry 0), but the county's witnesses have not cosigned any checkpoint yet"),
        "{text}"
    );
    assert!(text.contains("your ballot is logged (entry 1)"), "{text}");

    // The witnesses come up and cosign: the check now links the receipts
    // to the witnessed log.
    obs.start(
        &w.county.manifest.log_key,
        std::sync::Arc::new(w.county.clock.clone()),
    );
    let dir = w.dir.path().to_path_buf();
    let mut text = String::new();
    for _ in 0..300 {
        let d = dir.clone();
        let out = tokio::task::spawn_blocking(move || status_of(d))
            .await
            .unwrap();
        text = said(&out);
        if out.status.success() && text.matches("and witnessed").count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        text.contains("is in the log the county's witnesses cosigned (2 entries)"),
        "{text}"
    );
    assert!(
        text.contains("witnessed; the county has not processed it yet"),
        "{text}"
    );
    r.stop().await;
}

#[test]
fn the_declaration_must_be_accepted_and_a_missing_receipts_folder_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing to check yet.
    let out = as_user(dir.path(), "none.pem")
        .arg("status")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        said(&out).contains("you have no receipts yet"),
        "{}",
        said(&out)
    );
    let out = as_user(dir.path(), "none.pem")
        .arg("receipts")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        said(&out).contains("You have no receipts yet"),
        "{}",
        said(&out)
    );
}

#[test]
fn a_mistyped_fingerprint_is_refused_before_anything_is_sent() {
    let out = return_bin()
        .args(["send", "https://localhost:1", "0123 XYZ", "x", "--ca", "x"])
        .args(["--cert", "x", "--key", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only the digits 0-9 and letters A-F"), "{err}");
}

mod card;
mod page;
mod poor_link;
