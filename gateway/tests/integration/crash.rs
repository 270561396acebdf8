//! Crash safety: the real `ballot-gateway serve` process under upload load,
//! killed with SIGKILL at random moments and restarted, again and again.
//! Every receipt it ever handed out must still hold against the log that
//! the last restart serves, and every checkpoint it ever signed must be
//! consistent with the final one.

use crate::fixture::{spawn_server, World};
use gateway::config::Limits;
use http::{Method, StatusCode};
use rand::{Rng, SeedableRng};
use shared::note::NoteVerifier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use voter::client::Gateway;

const ROUNDS: usize = 20;
const VOTERS: usize = 6;
const PER_VOTER: usize = 150;

/// An upload the gateway acknowledged: its bytes and the answer.
/// For each extra voter, `per_voter` different 20 KB ballots, prepared once.
pub fn ballot_pools(w: &World, per_voter: usize) -> Vec<Arc<Vec<Arc<Vec<u8>>>>> {
    w.extra
        .iter()
        .map(|v| {
            Arc::new(
                (0..per_voter)
                    .map(|i| {
                        let mut content = format!("%PDF-1.7 ballot {i} ").into_bytes();
                        content.resize(20_000, b'.');
                        Arc::new(w.ballot_of(v, content))
                    })
                    .collect(),
            )
        })
        .collect()
}

/// One uploader per extra voter, each sending its pool's ballots in turn
/// from a random place, until [`Load::finish`].
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(
        w: &World,
        port: u16,
        pools: &[Arc<Vec<Arc<Vec<u8>>>>],
        rng: &mut impl Rng,
        acked: &Arc<Mutex<Vec<Acked>>>,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = w
            .extra
            .iter()
            .zip(pools)
            .map(|(v, pool)| {
                tokio::spawn(uploader(
                    w.client_at(port, v),
                    pool.clone(),
                    rng.gen_range(0..pool.len()),
                    stop.clone(),
                    acked.clone(),
                ))
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops the uploaders (after the server is gone) and waits for them.
    pub async fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

pub struct Acked {
    pub upload: Arc<Vec<u8>>,
    pub answer: shared::api::ReceiptAnswer,
}

pub async fn uploader(
    gw: Gateway,
    pool: Arc<Vec<Arc<Vec<u8>>>>,
    start: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
) {
    let mut i = start;
    while !stop.load(Ordering::SeqCst) {
        let upload = pool[i % pool.len()].clone();
        i += 1;
        match gw
            .request(Method::POST, "/v1/ballots", Some(upload.to_vec().into()))
            .await
        {
            Ok(a) if a.status == StatusCode::OK => {
                let answer = serde_json::from_slice(&a.body).unwrap();
                acked.lock().unwrap().push(Acked { upload, answer });
            }
            Ok(a) => panic!(
                "unexpected refusal {}: {}",
                a.status,
                String::from_utf8_lossy(&a.body)
            ),
            // The server was killed under us: expected, and this upload was
            // not acknowledged, so nothing is owed for it.
            Err(_) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_never_loses_an_acknowledged_ballot() {
    let _heavy = crate::fixture::heavy().await;
    let limits = Limits {
        uploads_per_voter_per_hour: 1_000_000,
        max_ballots_per_voter: 1_000_000,
    };
    let w = World::with_voters(limits, VOTERS, 300 * 1024);
    let config = w.config_file();
    // Uploads are prepared once; a voter sends each of theirs in turn and
    // starts over, so some sends are retries of a ballot the gateway already
    // holds (which must come back with the same receipt, across crashes).
    let pools = ballot_pools(&w, PER_VOTER);

    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test seed: {seed} (rerun with CRASH_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut kills = 0;
    for round in 0..ROUNDS {
        let (mut child, port) =
            spawn_server(env!("CARGO_BIN_EXE_ballot-gateway").as_ref(), &config);
        let load = Load::start(&w, port, &pools, &mut rng, &acked);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..600))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        load.finish().await;
        println!(
            "round {round}: {} acknowledged so far",
            acked.lock().unwrap().len()
        );
    }
    assert_eq!(kills, ROUNDS);

    // The last restart: its start-up check of the stored log must pass (it
    // refuses to serve otherwise), and everything acknowledged must be in it.
    let (mut child, port) = spawn_server(env!("CARGO_BIN_EXE_ballot-gateway").as_ref(), &config);
    let gw = w.client_at(port, &w.extra[0]);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.len() >= ROUNDS,
        "too little load reached the gateway: {} acknowledged",
        acked.len()
    );
    let (checkpoints, size) = every_receipt_holds(&w, &w.db(), &gw, &acked).await;
    println!(
        "{ROUNDS} SIGKILLs: {} acknowledged uploads, {checkpoints} distinct checkpoints, final log size {size}",
        acked.len(),
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Checks every acknowledged upload against the gateway serving at `gw` and
/// its database `db`: stored with the same bytes at its index, included in
/// the latest checkpoint, and every checkpoint a receipt carried a prefix
/// of it; the database passes SQLite's integrity check. Returns the number
/// of distinct checkpoints and the final log size.
pub async fn every_receipt_holds(
    w: &World,
    db: &rusqlite::Connection,
    gw: &Gateway,
    acked: &[Acked],
) -> (usize, u64) {
    let log_key = NoteVerifier::from_vkey(&w.county.manifest.log_key).unwrap();
    let latest = gw
        .request(Method::GET, "/v1/log/checkpoint", None)
        .await
        .unwrap();
    assert_eq!(latest.status, StatusCode::OK);
    let latest = shared::checkpoint::SignedCheckpoint::verify(&latest.body, &log_key)
        .unwrap()
        .checkpoint;
    let mut sizes = std::collections::BTreeMap::new();
    for a in acked {
        let (receipt, cp) =
            voter::client::check_receipt(&w.county.manifest, &a.upload, &a.answer).unwrap();
        // The ballot is stored at its index with the acknowledged bytes.
        let stored: Vec<u8> = db
            .query_row(
                "SELECT message FROM ballots WHERE leaf_index = ?1",
                [receipt.index],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("acknowledged ballot {} is missing: {e}", receipt.index));
        assert_eq!(stored, *a.upload, "ballot {} changed", receipt.index);
        // Still included in the final tree.
        let leaf = shared::merkle::leaf_hash(&receipt.entry.to_bytes().unwrap());
        let p = gw
            .request(
                Method::GET,
                &shared::api::inclusion_path(receipt.index, latest.size),
                None,
            )
            .await
            .unwrap();
        let proof = p.json::<shared::api::InclusionAnswer>().unwrap().proof;
        shared::merkle::verify_inclusion(receipt.index, latest.size, &leaf, &proof, &latest.root)
            .unwrap_or_else(|e| panic!("ballot {} is not in the final log: {e}", receipt.index));
        sizes.insert(cp.checkpoint.size, cp.checkpoint.root);
    }
    // Every checkpoint a receipt carried is a prefix of the final log.
    for (size, root) in &sizes {
        let p = gw
            .request(
                Method::GET,
                &shared::api::consistency_path(*size, latest.size),
                None,
            )
            .await
            .unwrap();
        let proof = p.json::<shared::api::ConsistencyAnswer>().unwrap().proof;
        shared::merkle::verify_consistency(*size, latest.size, &proof, root, &latest.root)
            .unwrap_or_else(|e| {
                panic!(
                    "checkpoint {size} is inconsistent with {}: {e}",
                    latest.size
                )
            });
    }
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    (sizes.len(), latest.size)
}
