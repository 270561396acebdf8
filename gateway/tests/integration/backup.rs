//! `ballot-gateway backup` while serving, and `restore`: the restored
//! gateway verifies its log at start and the verifier takes its next bundle
//! as an extension of the last one it imported; receipts handed out after
//! the backup contradict the restored log (a fork, which is what restoring
//! an older backup means); a damaged backup and a restore over a data
//! folder in use are refused and change nothing.

use crate::crash::{ballot_pools, every_receipt_holds, Acked, Load};
use crate::fixture::{heavy, spawn_server, Reaper, World};
use crate::power::{bundles, export_ok};
use gateway::config::Limits;
use http::Method;
use rand::SeedableRng;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn gateway_cmd(args: &[&str], config: &Path, dir_flag: &str, dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ballot-gateway"))
        .args(args)
        .arg("--config")
        .arg(config)
        .arg(dir_flag)
        .arg(dir)
        .output()
        .unwrap()
}

async fn wait_for_acks(acked: &Mutex<Vec<Acked>>, n: usize) {
    for _ in 0..6000 {
        if acked.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} uploads were acknowledged in a minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_to_a_log_the_verifier_extends() {
    let _heavy = heavy().await;
    let bin = env!("CARGO_BIN_EXE_ballot-gateway");
    let limits = Limits {
        uploads_per_voter_per_hour: 1_000_000,
        max_ballots_per_voter: 1_000_000,
    };
    let w = World::with_voters(limits, 2, 64 * 1024);
    let tmp = tempfile::tempdir().unwrap();
    let config_file = w.config_file();
    let media = tmp.path().join("usb");
    let pools = ballot_pools(&w, 60);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let acked = Arc::new(Mutex::new(Vec::new()));

    // Ballots, bundle 1 exported while serving, and a backup taken while
    // uploads go on.
    let (child, port) = spawn_server(bin.as_ref(), &config_file);
    let mut server = Reaper(child);
    let load = Load::start(&w, port, &pools, &mut rng, &acked);
    wait_for_acks(&acked, 10).await;
    export_ok(bin, &config_file, &media);
    let backup = tmp.path().join("backup");
    let out = gateway_cmd(&["backup"], &config_file, "--out", &backup);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("Backup written"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after_backup = acked.lock().unwrap().len();
    wait_for_acks(&acked, after_backup + 5).await;
    load.finish().await;
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    drop(server);

    // The backup: secret keys 0600, a manifest listing every file.
    use std::os::unix::fs::PermissionsExt;
    for f in [
        "keys/transfer.key",
        "keys/log.key",
        "gateway.db",
        "backup.json",
    ] {
        let mode = std::fs::metadata(backup.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f} is readable by others: {mode:o}");
    }
    let manifest = gateway::backup::read_manifest(&backup).unwrap();
    let b = manifest.log_size;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let (before, after): (Vec<Acked>, Vec<Acked>) = acked.into_iter().partition(|a| {
        voter::client::check_receipt(&w.county.manifest, &a.upload, &a.answer)
            .unwrap()
            .0
            .index
            < b
    });
    assert!(
        !before.is_empty() && !after.is_empty(),
        "{} {}",
        before.len(),
        after.len()
    );

    // The verifier has bundle 1 (taken before the backup).
    let mut verifier = verifier::state::open(&verifier::state::db_path(&w.county.home)).unwrap();
    let first = bundles(&media);
    assert_eq!(first.len(), 1);
    let Ok(verifier::import::Imported::New {
        log_size: imported, ..
    }) = verifier::import::import(&mut verifier, &first[0], &w.county.clock, &mut |_, _| {})
    else {
        panic!("bundle 1 did not import")
    };
    assert!(imported <= b);

    // A restore over the data folder in use is refused.
    let out = gateway_cmd(&["restore"], &config_file, "--from", &backup);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A damaged backup is refused and leaves nothing behind.
    let damaged = tmp.path().join("damaged");
    testkit::copy_dir(&backup, &damaged);
    let db = damaged.join("gateway.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&db, bytes).unwrap();
    let mut config = w.config.clone();
    config.data_dir = tmp.path().join("restored-damaged");
    let bad_config = testkit::server::write_config(&config, &tmp.path().join("bad.toml"));
    let out = gateway_cmd(&["restore"], &bad_config, "--from", &damaged);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("damaged or was changed"),
        "{err}"
    );
    assert!(!config.data_dir.exists());
    assert!(!tmp
        .path()
        .join(".restored-damaged.restore-partial")
        .exists());
    // So is one whose key file became a link, or a database of another size.
    let key = damaged.join("keys/log.key");
    std::fs::remove_file(&key).unwrap();
    std::os::unix::fs::symlink(backup.join("keys/log.key"), &key).unwrap();
    std::fs::remove_file(&db).unwrap();
    std::fs::copy(backup.join("gateway.db"), &db).unwrap();
    let out = gateway_cmd(&["restore"], &bad_config, "--from", &damaged);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("link or folder"),
        "{err}"
    );
    std::fs::remove_file(&key).unwrap();
    std::fs::copy(backup.join("keys/log.key"), &key).unwrap();
    let mut longer = std::fs::read(&db).unwrap();
    longer.extend_from_slice(&[0; 4096]);
    std::fs::write(&db, longer).unwrap();
    let out = gateway_cmd(&["restore"], &bad_config, "--from", &damaged);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("damaged or was changed"),
        "{err}"
    );
    assert!(!config.data_dir.exists());

    // The restore, into a new data folder.
    config.data_dir = tmp.path().join("restored");
    let restored_config = testkit::server::write_config(&config, &tmp.path().join("restored.toml"));
    let out = gateway_cmd(&["restore"], &restored_config, "--from", &backup);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("it is a fork"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // It starts (start-up verification of the log passed), and every receipt
    // from before the backup still holds.
    let (child, port) = spawn_server(bin.as_ref(), &restored_config);
    let mut server = Reaper(child);
    let gw = w.client_at(port, &w.extra[0]);
    let db = gateway::store::open(&config.db_path()).unwrap();
    let (_, size) = every_receipt_holds(&w, &db, &gw, &before).await;
    assert_eq!(size, b);

    // New ballots take the places the lost ones had: a receipt from after
    // the backup now contradicts the log.
    for i in 0..after.len() + 2 {
        let v = &w.extra[i % w.extra.len()];
        let body = w.ballot_of(v, format!("%PDF-1.7 after the restore {i}").into_bytes());
        let a = w
            .client_at(port, v)
            .request(Method::POST, shared::api::BALLOTS, Some(body.into()))
            .await
            .unwrap();
        assert_eq!(a.status, http::StatusCode::OK);
    }
    let log_key = shared::note::NoteVerifier::from_vkey(&w.county.manifest.log_key).unwrap();
    let latest = gw
        .request(Method::GET, shared::api::CHECKPOINT, None)
        .await
        .unwrap();
    let latest = shared::checkpoint::SignedCheckpoint::verify(&latest.body, &log_key)
        .unwrap()
        .checkpoint;
    for a in &after {
        let (_, cp) =
            voter::client::check_receipt(&w.county.manifest, &a.upload, &a.answer).unwrap();
        let proof = gw
            .request(
                Method::GET,
                &shared::api::consistency_path(cp.checkpoint.size, latest.size),
                None,
            )
            .await
            .unwrap()
            .json::<shared::api::ConsistencyAnswer>()
            .unwrap()
            .proof;
        assert!(
            shared::merkle::verify_consistency(
                cp.checkpoint.size,
                latest.size,
                &proof,
                &cp.checkpoint.root,
                &latest.root
            )
            .is_err(),
            "a receipt from after the backup (size {}) is consistent with the restored log",
            cp.checkpoint.size
        );
    }
    server.0.kill().unwrap();
    server.0.wait().unwrap();

    // The restored gateway's next bundle extends what the verifier imported.
    export_ok(bin, &restored_config, &media);
    let all = bundles(&media);
    assert_eq!(all.len(), 2);
    match verifier::import::import(&mut verifier, &all[1], &w.county.clock, &mut |_, _| {}) {
        Ok(verifier::import::Imported::New { log_size, .. }) => {
            assert_eq!(log_size, latest.size)
        }
        other => panic!("the restored gateway's bundle did not import: {other:?}"),
    }
}
