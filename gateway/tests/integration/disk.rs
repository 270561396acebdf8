//! A full disk: the gateway's data folder on a small tmpfs that the test
//! fills. Uploads must be refused with 503 `storage-full` and store nothing,
//! what was acknowledged before must be intact, and service must resume by
//! itself once space returns.

use crate::fixture::{post, World};
use gateway::config::Limits;
use http::StatusCode;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mount that is unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn new(at: &Path, size: &str) -> Result<Mount, String> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(Mount(at.to_owned()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Writes zeros until the file system refuses more.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the disk failed: {e}"),
        }
    }
    // Also the last few bytes smaller than a chunk.
    while let Ok(n) = f.write(&[0u8; 512]) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    written
}

fn ballot(w: &World, i: usize) -> Vec<u8> {
    let mut content = format!("%PDF-1.7 ballot {i} ").into_bytes();
    content.resize(60_000, b'.');
    w.ballot_of(&w.extra[i % w.extra.len()], content)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_uploads_with_503_and_service_resumes() {
    let limits = Limits {
        uploads_per_voter_per_hour: 10_000,
        max_ballots_per_voter: 10_000,
    };
    let mut w = World::with_voters(limits, 4, 300 * 1024);
    let at = w.dir.path().join("small-disk");
    let mount = match Mount::new(&at, "16m") {
        Ok(m) => m,
        Err(e) => {
            // Mounting needs root (CAP_SYS_ADMIN); CI machines have it.
            println!("SKIPPED: cannot mount a small tmpfs for the disk-full test: {e}");
            return;
        }
    };
    let data = at.join("data");
    testkit::copy_dir(&w.config.data_dir, &data);
    w.config.data_dir = data.clone();

    let r = w.start().await;
    let mut acked = Vec::new();
    for i in 0..3 {
        let up = ballot(&w, i);
        let a = post(&w.client_with(&r, &w.extra[i]), up.clone())
            .await
            .unwrap();
        assert_eq!(a.status, StatusCode::OK);
        acked.push((up, a.json().unwrap()));
    }

    let filler = at.join("filler");
    let filled = fill(&filler);
    println!("filled the disk with {filled} bytes");
    let stored_before = w.ballots_stored();
    // SQLite may still fit a write or two into pages it already holds; the
    // disk must refuse one soon, and every answer until then is either a
    // real receipt or the specific refusal.
    let mut refused = None;
    for i in 3..60 {
        let up = ballot(&w, i);
        let a = post(&w.client_with(&r, &w.extra[i % 4]), up.clone())
            .await
            .unwrap();
        match a.status {
            StatusCode::OK => acked.push((up, a.json().unwrap())),
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = Some((i, up, a));
                break;
            }
            s => panic!(
                "unexpected answer {s}: {}",
                String::from_utf8_lossy(&a.body)
            ),
        }
    }
    let (i, refused_upload, answer) = refused.expect("the full disk never refused an upload");
    println!(
        "after the disk filled: {} upload(s) still fit, then upload {i} was refused",
        acked.len() - 3
    );
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        body.pointer("/error/code").and_then(|v| v.as_str()),
        Some("storage-full"),
        "{body}"
    );
    assert!(body.to_string().contains("nothing was stored"), "{body}");
    let stored_full = w.ballots_stored();
    assert_eq!(
        stored_full,
        stored_before + (acked.len() as i64 - 3),
        "the refused upload left something behind"
    );
    // The same refusal again, while the disk stays full.
    let again = post(&w.client_with(&r, &w.extra[i % 4]), refused_upload.clone())
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::SERVICE_UNAVAILABLE);
    // Reads still work.
    let cp = w
        .client_with(&r, &w.extra[0])
        .request(http::Method::GET, "/v1/log/checkpoint", None)
        .await
        .unwrap();
    assert_eq!(cp.status, StatusCode::OK);

    // Space returns: the same upload now goes through, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let a = post(&w.client_with(&r, &w.extra[i % 4]), refused_upload.clone())
        .await
        .unwrap();
    assert_eq!(
        a.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&a.body)
    );
    acked.push((refused_upload, a.json().unwrap()));
    r.stop().await;

    // Nothing is corrupted: the database passes its own check, the gateway's
    // start-up verification of the log passes, and every receipt holds.
    let integrity: String = w
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let r = w.start().await;
    for (up, answer) in &acked {
        let (receipt, _) = voter::client::check_receipt(&w.county.manifest, up, answer).unwrap();
        let stored: Vec<u8> = w
            .db()
            .query_row(
                "SELECT message FROM ballots WHERE leaf_index = ?1",
                [receipt.index],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(&stored, up);
    }
    assert_eq!(w.ballots_stored(), acked.len() as i64);
    r.stop().await;
    drop(mount);
}
