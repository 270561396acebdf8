//! Power loss on the verifier: its home folder on LazyFS, which drops every
//! write that was not fsynced when told to. The real `ballot-verifier
//! import` and `process` are killed at random moments and the power is cut;
//! afterwards the state is what an uninterrupted run leaves (never half a
//! bundle), an output folder is there complete or not at all, and the runs
//! finish as if nothing had happened.
//!
//! `VERIFIER_CUTS` sets the number of cuts (4 by default; `scripts/power-loss`
//! runs 100). Without LazyFS or FUSE the test prints SKIPPED and why.

use crate::binary::{bin, init_county, with_passphrases, County, ALICE, CAROL};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testkit::lazyfs::LazyFs;

/// What an import leaves in the state: leaves, bundles, PKI files, witnessed
/// checkpoints and misbehaviour rows, each row as its table, first column
/// and a digest of the rest (all but `imported_at`, the verifier's own
/// clock).
fn state_of(home: &Path) -> Vec<String> {
    use sha2::Digest;
    let c = verifier::state::open(&verifier::state::db_path(home)).unwrap();
    let mut all = Vec::new();
    for table in [
        "leaves",
        "bundles",
        "pki_files",
        "witnessed",
        "misbehaviour",
    ] {
        let mut stmt = c.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let names: Vec<String> = stmt.column_names().iter().map(|n| n.to_string()).collect();
        let rows = stmt
            .query_map([], |r| {
                let mut digest = sha2::Sha256::new();
                let mut first = String::new();
                for (i, name) in names.iter().enumerate() {
                    let v: rusqlite::types::Value = r.get(i)?;
                    if i == 0 {
                        first = format!("{v:?}");
                    }
                    if name != "imported_at" {
                        digest.update(format!("{name}={v:?};"));
                    }
                }
                Ok(format!(
                    "{table} {first} {}",
                    hex::encode(digest.finalize())
                ))
            })
            .unwrap();
        for row in rows {
            all.push(row.unwrap());
        }
    }
    all.sort();
    all
}

/// `process` by Alice and Carol into `out`.
fn process(d: &Path, home: &Path, out: &Path) -> Command {
    let mut c = with_passphrases(&[ALICE, CAROL]);
    c.arg("--home")
        .arg(home)
        .args(["--allow-network", "process"]);
    c.arg("--share").arg(d.join("trustee-a"));
    c.arg("--share").arg(d.join("trustee-c"));
    c.arg("--anchor")
        .arg(d.join("pki/anchors/test-dod-root-ca-3.pem"));
    c.arg("--out").arg(out);
    c
}

/// Runs `c` to its end; returns its exit status and standard output.
fn finish(c: &mut Command) -> (i32, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Starts `c`, kills it after `after`, and says whether it was still running.
fn cut_short(c: &mut Command, after: Duration) -> bool {
    let mut child = c
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    child.wait().unwrap();
    running
}

/// The report's lines that count ballots (the rest names times and paths).
fn counts(report: &str) -> Vec<&str> {
    report
        .lines()
        .filter(|l| l.contains(':') && l.trim_end().ends_with(|c: char| c.is_ascii_digit()))
        .filter(|l| !l.contains("time") && !l.contains("at:"))
        .collect()
}

#[test]
fn power_cuts_during_import_and_process_leave_whole_state_and_whole_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut fs = match LazyFs::mount(&d.join("lazyfs")) {
        Ok(fs) => fs,
        Err(why) => {
            println!(
                "SKIPPED: power_cuts_during_import_and_process_leave_whole_state_and_whole_outputs: {why}"
            );
            return;
        }
    };
    let home = fs.mount.join("home");
    let County {
        pki, clock, fpr, ..
    } = init_county(d, &home);
    // What init wrote must survive a cut straight after it.
    fs.power_cut();

    // Eight bundles of ballots by Jane (each replacing the one before): an
    // import that is cut has committed some of them.
    let manifest = shared::manifest::ElectionManifest::open_signed(
        &std::fs::read(d.join("media/election-manifest.signed")).unwrap(),
        &fpr,
    )
    .unwrap();
    let jane = &pki.voter("jane-p256").unwrap().issued;
    let usb = d.join("usb");
    for b in 0..8 {
        let ballots: Vec<_> = (0..10)
            .map(|i| {
                let mut content = format!("%PDF-1.7 ballot {b}-{i} ").into_bytes();
                content.resize(30_000, b'.');
                testkit::voters::Logged {
                    voter_id: "V-1".into(),
                    identity: "edipi:1234567890".into(),
                    client_cert: vec![],
                    message: testkit::voters::upload(&manifest, &pki, jane, "s1", content),
                    at: None,
                    witnessed_at: None,
                }
            })
            .collect();
        testkit::voters::log_directly(&d.join("gw"), &clock, "2026-general", 100, &[], ballots);
        gateway::export::export(
            &d.join("gw"),
            &[pki.root_crl.clone(), pki.id_ca_crl.clone()],
            std::slice::from_ref(&pki.id_ca.issued.cert_der),
            &usb,
            false,
            &clock,
        )
        .unwrap();
    }

    // The reference: the same home, never cut, on an ordinary disk.
    let reference = d.join("reference-home");
    testkit::copy_dir(&home, &reference);
    let started = std::time::Instant::now();
    let (code, out) = finish(bin().arg("--home").arg(&reference).arg("import").arg(&usb));
    assert_eq!(code, 0, "{out}");
    let import_takes = started.elapsed();
    let started = std::time::Instant::now();
    let (code, out) = finish(&mut process(d, &reference, &d.join("reference-canvass")));
    assert_eq!(code, 0, "{out}");
    let process_takes = started.elapsed();
    let want_state = state_of(&reference);
    let want_report = std::fs::read_to_string(d.join("reference-canvass/report.txt")).unwrap();
    assert!(!counts(&want_report).is_empty(), "{want_report}");

    let cuts: u32 = std::env::var("VERIFIER_CUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let seed: u64 = std::env::var("POWER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("verifier power-cut test seed: {seed} (rerun with POWER_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut imports_cut, mut processes_cut) = (0, 0);
    let mut outs: Vec<PathBuf> = Vec::new();
    for i in 0..cuts {
        // Half the cuts hit an import (until everything is imported), the
        // other half a process run, at a random moment within the time an
        // uncut run took (on LazyFS it takes longer: most cuts land inside).
        let imported = state_of(&home) == want_state;
        if i % 2 == 0 && !imported {
            let after = import_takes.mul_f64(rng.gen_range(0.0..1.0));
            if cut_short(
                bin().arg("--home").arg(&home).arg("import").arg(&usb),
                after,
            ) {
                imports_cut += 1;
            }
        } else {
            let out = fs.mount.join(format!("canvass-{i}"));
            let after = process_takes.mul_f64(rng.gen_range(0.0..1.5));
            if cut_short(&mut process(d, &home, &out), after) {
                processes_cut += 1;
            }
            outs.push(out);
        }
        fs.power_cut();
        // A state after a cut is always a prefix of whole bundles: every
        // bundle row has all its leaves.
        let c = verifier::state::open(&verifier::state::db_path(&home)).unwrap();
        let (bundled, leaves): (i64, i64) = c
            .query_row(
                "SELECT (SELECT COALESCE(SUM(entry_count), 0) FROM bundles), (SELECT COUNT(*) FROM leaves)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(bundled, leaves, "cut {i}: half a bundle in the state");
        // Each output folder is whole or absent.
        for out in &outs {
            if out.exists() {
                let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
                assert!(
                    report.ends_with('\n') && !counts(&report).is_empty(),
                    "cut {i}: {} is there but its report is not whole: {report:?}",
                    out.display()
                );
                let status = std::fs::read(out.join(shared::media::STATUS_FILE)).unwrap();
                assert!(
                    shared::signed::open_document(&status, &fpr, usize::MAX).is_ok(),
                    "cut {i}: {} is there but its status file does not verify",
                    out.display()
                );
            }
        }
        println!("cut {}: {} leaves imported", i + 1, leaves);
    }

    // Finishing after the cuts gives what the uninterrupted runs gave.
    let (code, out) = finish(bin().arg("--home").arg(&home).arg("import").arg(&usb));
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        state_of(&home),
        want_state,
        "the state differs from an uncut import"
    );
    let last = fs.mount.join("canvass-after");
    let (code, out) = finish(&mut process(d, &home, &last));
    assert_eq!(code, 0, "{out}");
    let report = std::fs::read_to_string(last.join("report.txt")).unwrap();
    assert_eq!(counts(&report), counts(&want_report));
    let outputs_whole = outs.iter().filter(|o| o.exists()).count();
    println!(
        "{} power cuts on the verifier ({imports_cut} during an import, {processes_cut} during \
         a process run); {outputs_whole} of {} output folders there (whole) after the cuts, none half",
        fs.cuts,
        outs.len()
    );
}
