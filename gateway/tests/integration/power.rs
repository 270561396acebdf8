//! Power loss, not just a killed process: the gateway's data folder and the
//! export media on LazyFS, which drops every write that was not fsynced when
//! told to. The real `ballot-gateway serve` takes uploads while
//! `ballot-gateway export` writes bundles; at a random moment both are
//! killed and the power is cut; the gateway restarts on what survived.
//! Afterwards every receipt ever handed out still verifies, every
//! acknowledged ballot is stored, start-up verification passed, and the
//! bundles on the media import into the verifier one after another up to
//! the final log.
//!
//! `POWER_CUTS` sets the number of cuts (5 by default; `scripts/power-loss`
//! runs 100). Without LazyFS or FUSE the test prints SKIPPED and why.

use crate::crash::{every_receipt_holds, Load};
use crate::fixture::{heavy, spawn_server, Reaper, World};
use gateway::config::Limits;
use rand::{Rng, SeedableRng};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::lazyfs::LazyFs;

const VOTERS: usize = 4;

/// The bundles in `media`, by sequence (finished folders only).
pub fn bundles(media: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(media)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("bundle-"))
                .is_some_and(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    found.sort();
    found
}

/// Runs `ballot-gateway export` to its end; it must succeed.
pub fn export_ok(bin: &str, config: &std::path::Path, media: &std::path::Path) {
    let out = export(bin, config, media).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn export(bin: &str, config: &std::path::Path, media: &std::path::Path) -> std::process::Child {
    Command::new(bin)
        .args(["export", "--config"])
        .arg(config)
        .arg("--out")
        .arg(media)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cuts_lose_no_acknowledged_ballot_and_no_bundle() {
    let _heavy = heavy().await;
    let bin = env!("CARGO_BIN_EXE_ballot-gateway");
    let limits = Limits {
        uploads_per_voter_per_hour: 1_000_000,
        max_ballots_per_voter: 1_000_000,
    };
    let w = World::with_voters(limits, VOTERS, 300 * 1024);
    // What the gateway had before the first upload is on the backing
    // folder already: durable.
    let tmp = tempfile::tempdir().unwrap();
    testkit::copy_dir(&w.data(), &tmp.path().join("backing/data"));
    std::fs::create_dir_all(tmp.path().join("backing/usb")).unwrap();
    let mut fs = match LazyFs::mount(tmp.path()) {
        Ok(fs) => fs,
        Err(why) => {
            println!("SKIPPED: power_cuts_lose_no_acknowledged_ballot_and_no_bundle: {why}");
            return;
        }
    };
    let mut config = w.config.clone();
    config.data_dir = fs.mount.join("data");
    let config_file =
        testkit::server::write_config(&config, &tmp.path().join("gateway-on-lazyfs.toml"));
    let media = fs.mount.join("usb");

    let cuts: u32 = std::env::var("POWER_CUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // Different ballots for a long run (a voter's send of a ballot already
    // logged is answered as a retry, which must keep its receipt too): a
    // round takes about 500 uploads, so with 40 per voter per cut the log
    // of a 100-cut run grows for about its first third (with 8 it was full
    // by the sixth cut).
    let per_voter = 150.max(cuts as usize * 40);
    let pools = crate::crash::ballot_pools(&w, per_voter);
    let seed: u64 = std::env::var("POWER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("power-cut test seed: {seed} (rerun with POWER_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut exports_cut = 0;
    for round in 0..cuts {
        let (child, port) = spawn_server(bin.as_ref(), &config_file);
        let mut child = Reaper(child);
        let load = Load::start(&w, port, &pools, &mut rng, &acked);
        // Every other round an export runs beside the uploads: cut a few
        // milliseconds into it (an export takes a few hundred here), or
        // (every fourth round) left to finish first, so that a finished
        // bundle must survive the cut.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(50..800))).await;
        let mut exporting = None;
        if round % 2 == 1 {
            let mut e = export(bin, &config_file, &media);
            if round % 4 == 3 {
                while e.try_wait().unwrap().is_none() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            } else {
                tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
            }
            exporting = Some(e);
        }
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        if let Some(mut e) = exporting {
            if e.try_wait().unwrap().is_none() {
                exports_cut += 1;
            }
            let _ = e.kill();
            let out = e.wait_with_output().unwrap();
            // An export that finished before the cut finished well: a
            // failure here is the gateway's, not the power's.
            if out.status.code().is_some() {
                assert!(
                    out.status.success(),
                    "export failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        load.finish().await;
        fs.power_cut();
        println!(
            "cut {}: {} acknowledged so far, {} bundles on the media",
            round + 1,
            acked.lock().unwrap().len(),
            bundles(&media).len()
        );
    }

    // The restart after the last cut: its start-up check of the stored log
    // must pass (it refuses to serve otherwise).
    let (child, port) = spawn_server(bin.as_ref(), &config_file);
    let mut child = Reaper(child);
    let gw = w.client_at(port, &w.extra[0]);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.len() as u32 >= cuts,
        "too little load reached the gateway: {} acknowledged",
        acked.len()
    );
    let db = gateway::store::open(&config.db_path()).unwrap();
    let (checkpoints, size) = every_receipt_holds(&w, &db, &gw, &acked).await;
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    // An export after the cuts finishes whatever a cut interrupted, and the
    // media's bundles form one chain the verifier accepts, bundle after
    // bundle, up to the final log.
    export_ok(bin, &config_file, &media);
    let mut verifier = verifier::state::open(&verifier::state::db_path(&w.county.home)).unwrap();
    let mut log_size = 0;
    let found = bundles(&media);
    for b in &found {
        match verifier::import::import(&mut verifier, b, &w.county.clock, &mut |_, _| {}) {
            Ok(verifier::import::Imported::New { log_size: s, .. }) => log_size = s,
            other => panic!("bundle {} did not import: {other:?}", b.display()),
        }
    }
    assert_eq!(log_size, size, "the bundles do not reach the final log");
    println!(
        "{} power cuts ({exports_cut} during an export): {} acknowledged uploads, \
         {checkpoints} distinct checkpoints, final log size {size}, {} bundles imported",
        fs.cuts,
        acked.len(),
        found.len()
    );
}
