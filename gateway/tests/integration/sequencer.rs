//! The sequencer against a real database file.

use gateway::sequencer::{NewBallot, Sequencer, SequencerConfig, SubmitError};
use shared::clock::{ManualClock, UnixTime};
use shared::note::{NoteSigner, TYPE_ED25519};
use shared::receipt::Receipt;
use std::sync::Arc;

const ORIGIN: &str = "ballots.test.example/2026-general";

fn ballot(voter: &str, bytes: &[u8]) -> NewBallot {
    NewBallot {
        voter_id: voter.into(),
        identity: format!("edipi:{:0>10}", voter.len()),
        client_cert: vec![0x30, 0x00],
        message: bytes::Bytes::copy_from_slice(bytes),
    }
}

fn start(
    dir: &std::path::Path,
    key: &NoteSigner,
    max: u64,
) -> (Sequencer, std::thread::JoinHandle<()>) {
    let key = NoteSigner::from_skey(&key.to_skey()).unwrap();
    Sequencer::start(
        &gateway::store::db_path(dir),
        key,
        Arc::new(ManualClock::new(UnixTime(1_793_700_000))),
        SequencerConfig {
            election_id: "2026-general".into(),
            max_ballots_per_voter: max,
            closes_at: None,
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_verify_retries_repeat_and_a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let key = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
    let (seq, handle) = start(dir.path(), &key, 5);

    // Many concurrent uploads end up in few groups, each with a checkpoint.
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let seq = seq.clone();
        tasks.push(tokio::spawn(async move {
            seq.submit(ballot(&format!("V-{i:04}"), &i.to_be_bytes()))
                .await
        }));
    }
    let mut receipts = Vec::new();
    for t in tasks {
        let a = t.await.unwrap().unwrap();
        assert!(!a.duplicate);
        let r = Receipt::parse(a.receipt.as_bytes()).unwrap();
        r.verify(&key.verifier()).unwrap();
        assert_eq!(r.index, a.leaf_index);
        receipts.push(a);
    }
    let mut indexes: Vec<u64> = receipts.iter().map(|a| a.leaf_index).collect();
    indexes.sort();
    assert_eq!(indexes, (0..40).collect::<Vec<_>>());

    // A retry of the same bytes by the same voter gets the same receipt.
    let again = seq
        .submit(ballot("V-0007", &7u32.to_be_bytes()))
        .await
        .unwrap();
    let first = receipts.iter().find(|a| a.voter_id == "V-0007").unwrap();
    assert!(again.duplicate);
    assert_eq!(again.receipt, first.receipt);
    assert_eq!(again.salt, first.salt);

    // The same bytes from another voter are a new ballot.
    let other = seq
        .submit(ballot("V-0099", &7u32.to_be_bytes()))
        .await
        .unwrap();
    assert_eq!(other.leaf_index, 40);

    // The per-voter cap.
    for n in 0..4u8 {
        seq.submit(ballot("V-0099", &[n; 3])).await.unwrap();
    }
    assert_eq!(
        seq.submit(ballot("V-0099", b"one too many")).await,
        Err(SubmitError::TooManyBallots(5))
    );
    let size = seq.log().read().unwrap().checkpoint_size;
    assert_eq!(size, 45);
    drop(seq);
    handle.join().unwrap();

    // Restart: the log is re-verified and every receipt still verifies
    // against the new checkpoints, which are consistent with the old ones.
    let (seq, handle) = start(dir.path(), &key, 5);
    assert_eq!(seq.log().read().unwrap().checkpoint_size, 45);
    let next = seq
        .submit(ballot("V-0100", b"after restart"))
        .await
        .unwrap();
    assert_eq!(next.leaf_index, 45);
    let latest = Receipt::parse(next.receipt.as_bytes())
        .unwrap()
        .verify(&key.verifier())
        .unwrap();
    for a in &receipts {
        let r = Receipt::parse(a.receipt.as_bytes()).unwrap();
        let old = r.verify(&key.verifier()).unwrap();
        let log = seq.log().read().unwrap();
        let proof = log.tree.consistency_proof(old.checkpoint.size, 46).unwrap();
        shared::merkle::verify_consistency(
            old.checkpoint.size,
            46,
            &proof,
            &old.checkpoint.root,
            &latest.checkpoint.root,
        )
        .unwrap();
    }
    drop(seq);
    handle.join().unwrap();
}

#[test]
fn refuses_to_start_on_a_tampered_database() {
    let dir = tempfile::tempdir().unwrap();
    let key = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    {
        let (seq, handle) = start(dir.path(), &key, 5);
        rt.block_on(async {
            for i in 0..3u8 {
                seq.submit(ballot(&format!("V-{i}"), &[i; 10]))
                    .await
                    .unwrap();
            }
        });
        drop(seq);
        handle.join().unwrap();
    }
    let db = gateway::store::db_path(dir.path());
    let tamper = |sql: &str| {
        let copy = dir.path().join("copy.db");
        let _ = std::fs::remove_file(&copy);
        std::fs::copy(&db, &copy).unwrap();
        let c = rusqlite::Connection::open(&copy).unwrap();
        c.execute_batch(sql).unwrap();
        drop(c);
        let err = gateway::sequencer::load_and_verify(
            &gateway::store::open(&copy).unwrap(),
            &key.verifier(),
        )
        .unwrap_err();
        err.to_string()
    };
    assert!(
        tamper("UPDATE ballots SET message = x'00' WHERE leaf_index = 1")
            .contains("does not match its log entry")
    );
    assert!(tamper("DELETE FROM ballots WHERE leaf_index = 1").contains("leaf 1 is missing"));
    assert!(tamper("DELETE FROM ballots WHERE leaf_index = 2").contains("larger than the log"));
    assert!(
        tamper("UPDATE checkpoints SET note = replace(note, 'general', 'generak')")
            .contains("checkpoint")
    );
    assert!(
        tamper("UPDATE ballots SET leaf_hash = x'00' WHERE leaf_index = 0").contains("leaf hash")
    );
}

/// A clock set back (by an operator, NTP or an attacker) never makes a
/// later leaf look older than an earlier one, in this run or after a
/// restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn received_at_never_goes_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let key = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
    let clock = ManualClock::new(UnixTime(1_793_700_000));
    let open = |clock: &ManualClock| {
        Sequencer::start(
            &gateway::store::db_path(dir.path()),
            NoteSigner::from_skey(&key.to_skey()).unwrap(),
            Arc::new(clock.clone()),
            SequencerConfig {
                election_id: "2026-general".into(),
                max_ballots_per_voter: 5,
                closes_at: None,
            },
        )
        .unwrap()
    };
    let at = |a: &gateway::sequencer::Accepted| {
        Receipt::parse(a.receipt.as_bytes())
            .unwrap()
            .entry
            .received_at
    };
    let (seq, handle) = open(&clock);
    let first = seq.submit(ballot("V-1", b"one")).await.unwrap();
    clock.set(UnixTime(1_793_600_000));
    let second = seq.submit(ballot("V-2", b"two")).await.unwrap();
    assert_eq!(at(&first), UnixTime(1_793_700_000));
    assert_eq!(at(&second), UnixTime(1_793_700_000), "stamped backwards");
    seq.stop().await;
    handle.join().unwrap();

    let (seq, handle) = open(&clock);
    let third = seq.submit(ballot("V-3", b"three")).await.unwrap();
    assert_eq!(
        at(&third),
        UnixTime(1_793_700_000),
        "backwards after a restart"
    );
    clock.set(UnixTime(1_793_700_100));
    let fourth = seq.submit(ballot("V-4", b"four")).await.unwrap();
    assert_eq!(at(&fourth), UnixTime(1_793_700_100));
    seq.stop().await;
    handle.join().unwrap();
}

/// An upload checked against the deadline when it arrived, but committed
/// after it (a long upload, a busy writer): no receipt is given for a
/// ballot the county would reject as late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_logged_after_the_deadline_even_if_it_arrived_before() {
    let dir = tempfile::tempdir().unwrap();
    let key = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
    let closes = UnixTime(1_793_700_000);
    let clock = ManualClock::new(UnixTime(closes.0 - 10));
    let (seq, handle) = Sequencer::start(
        &gateway::store::db_path(dir.path()),
        key,
        Arc::new(clock.clone()),
        SequencerConfig {
            election_id: "2026-general".into(),
            max_ballots_per_voter: 5,
            closes_at: Some(closes),
        },
    )
    .unwrap();
    assert!(seq.submit(ballot("V-1", b"in time")).await.is_ok());
    // The route let this one in at closes - 1; the writer gets to it at
    // the deadline.
    clock.set(closes);
    let late = seq
        .submit(ballot("V-2", b"committed at the deadline"))
        .await;
    assert!(matches!(late, Err(SubmitError::ElectionClosed)), "{late:?}");
    assert_eq!(seq.log().read().unwrap().tree.size(), 1);
    seq.stop().await;
    handle.join().unwrap();
}
