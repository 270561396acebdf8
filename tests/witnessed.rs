//! Issue 11's attacks, each played against the real gateway, the observers'
//! real witnesses on loopback and the county's real verifier: what voters
//! and auditors check is the county's signed word, not the gateway's.

use gateway::config::Limits;
use http::{Method, StatusCode};
use shared::api::ConsistencyAnswer;
use shared::clock::Clock;
use std::sync::Arc;
use testkit::observers::Observers;
use testkit::world::{post, World};
use voter::client::SavedReceipt;

/// A world whose manifest names three real witnesses (a quorum of two),
/// running on the county's clock, and the attacker's second log: a copy
/// of the gateway's data folder before anything was logged (the same keys
/// and election). Call inside a tokio runtime.
pub(crate) fn watched_world_with_a_second_log(
) -> (Observers, World, Arc<dyn Clock>, std::path::PathBuf) {
    let obs = Observers::bind(3, 2);
    let w = World::with_spec(Limits::default(), |s| s.observers(&obs));
    let clock: Arc<dyn Clock> = Arc::new(w.county.clock.clone());
    let fork_data = w.dir.path().join("gw-fork");
    testkit::copy_dir(&w.county.gw, &fork_data);
    obs.start(&w.county.manifest.log_key, clock.clone());
    (obs, w, clock, fork_data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_keeps_two_logs_is_caught_by_the_voter_and_the_auditor() {
    let (_obs, w, clock, fork_data) = watched_world_with_a_second_log();

    // The log the witnesses and the county see: two other voters' ballots.
    let r = w.start().await;
    for (label, marks) in [("maria-rsa", "maria"), ("jane-cardauth", "x")] {
        let _ = post(&w.client(&r, label), w.ballot(label, marks)).await;
    }
    let a = post(&w.client(&r, "maria-rsa"), w.ballot("maria-rsa", "again"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    w.witnessed(r.port, 2).await.expect("witnessed within 30 s");

    // The log shown to Jane: her ballot alone, at entry 0. The attacker
    // also serves the county's public, witnessed checkpoint from it.
    testkit::voters::copy_witnessed(&w.county.gw, &fork_data);
    let mut fork_config = w.config.clone();
    fork_config.data_dir = fork_data.clone();
    let (fork, fork_port) = testkit::server::start(&fork_config, clock.clone()).await;
    let jane = &w.pki.voter("jane-p256").unwrap().issued;
    let upload = w.ballot("jane-p256", "jane's choices");
    let (answer, receipt) = w
        .upload_checked(&w.client_at(fork_port, jane), &upload)
        .await;
    assert_eq!(receipt.index, 0);
    let saved =
        SavedReceipt::new(&w.county.manifest, &w.county.fpr, "", &receipt, &answer).unwrap();

    // The county decides the log it was given; the gateway serves the
    // signed status file.
    let status_file = w.county_decides(&w.county.gw, "canvass");
    gateway::export::import_status(
        &w.county.gw,
        &{
            let p = w.dir.path().join("status.signed");
            std::fs::write(&p, &status_file).unwrap();
            p
        },
        &w.county.clock,
    )
    .unwrap();

    // Jane checks from the ship, on the fork the gateway shows her.
    let e = voter::client::status(&w.client_at(fork_port, jane), &saved)
        .await
        .expect_err("the fork must be caught");
    let said = format!("{e:#}");
    println!("ballot-return status says: {said}");
    assert!(
        said.contains("the gateway showed you a log that the county's witnesses did not see"),
        "{said}"
    );

    // An auditor with Jane's receipt and the county's status file, and a
    // consistency proof fetched from the gateway's public log.
    let public = testkit::voters::client(&w.pki, None, r.port);
    let proof: ConsistencyAnswer = public
        .request(Method::GET, &shared::api::consistency_path(1, 2), None)
        .await
        .unwrap()
        .json()
        .unwrap();
    let e = verifier::audit::audit(
        saved.receipt.as_bytes(),
        &w.county.manifest,
        &w.county.fpr,
        None,
        Some((&status_file, &proof.proof)),
    )
    .expect_err("the audit must fail");
    let said = format!("{e:#}");
    println!("ballot-verifier audit says: {said}");
    assert!(said.contains("not the log the county decided"), "{said}");

    fork.stop().await.unwrap();
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_voter_sees_the_signed_status_not_the_gateways_word() {
    let obs = Observers::bind(3, 2);
    let w = World::with_spec(Limits::default(), |s| s.observers(&obs));
    let clock: Arc<dyn Clock> = Arc::new(w.county.clock.clone());
    obs.start(&w.county.manifest.log_key, clock.clone());
    let r = w.start().await;
    // Jane marks the other precinct's ballot style: the county rejects it.
    let jane = &w.pki.voter("jane-p256").unwrap().issued;
    let upload = testkit::voters::upload(
        &w.county.manifest,
        &w.pki,
        jane,
        "style-2",
        b"%PDF-1.7 wrong style".to_vec(),
    );
    let (answer, receipt) = w.upload_checked(&w.client(&r, "jane-p256"), &upload).await;
    voter::client::check_receipt_time(&receipt, clock.now()).unwrap();
    w.witnessed(r.port, 1).await.expect("witnessed within 30 s");
    let status_file = w.county_decides(&w.county.gw, "canvass");
    let p = w.dir.path().join("status.signed");
    std::fs::write(&p, &status_file).unwrap();
    gateway::export::import_status(&w.county.gw, &p, &w.county.clock).unwrap();

    // The compromised gateway rewrites its own answer to "valid".
    let (valid, reason) = shared::status::Status::Valid.to_codes();
    w.db()
        .execute(
            "UPDATE statuses SET status = ?1, reason = ?2 WHERE leaf_index = 0",
            rusqlite::params![valid, reason],
        )
        .unwrap();
    let unsigned: shared::api::StatusAnswer = w
        .client(&r, "jane-p256")
        .request(Method::GET, &shared::api::ballot_status_path(0), None)
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(unsigned.status, shared::api::BallotState::Valid);

    let saved =
        SavedReceipt::new(&w.county.manifest, &w.county.fpr, "", &receipt, &answer).unwrap();
    let report = voter::client::status(&w.anonymous(&r), &saved)
        .await
        .unwrap();
    println!("ballot-return status says: {}", report.explanation);
    assert!(
        matches!(
            report.standing,
            voter::client::Standing::Decided(shared::status::Status::Rejected(_))
        ),
        "{report:?}"
    );
    assert!(report.explanation.starts_with("rejected"), "{report:?}");

    // A receipt whose time is far from the voter's clock is refused.
    let e =
        voter::client::check_receipt_time(&receipt, shared::clock::UnixTime(clock.now().0 + 3600))
            .unwrap_err();
    println!("ballot-return send says: {e}");
    assert!(e.to_string().contains("your computer's clock says"), "{e}");
    r.stop().await;
}

/// Waits (at most 30 s) until the gateway stored a checkpoint a quorum
/// cosigned at or after `t`.
async fn witnessed_after(w: &World, t: u64) {
    for _ in 0..300 {
        let latest: Option<i64> = w
            .db()
            .query_row("SELECT MAX(quorum_time) FROM witnessed", [], |r| r.get(0))
            .unwrap();
        if latest.is_some_and(|l| l as u64 >= t) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no checkpoint was witnessed at or after {t} within 30 s");
}

/// Issue 11, part 4, against the real gateway and the observers' real
/// witnesses: the gateway's clock says one thing, the witnesses' another.
/// The gateway logs a stolen card's ballot stamped before the card was
/// revoked, and after the deadline logs a ballot stamped before it. The
/// county rejects the first as revoked and the second as late, and the
/// board is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backdated_ballot_is_late_and_a_revoked_cards_ballot_is_revoked() {
    let t = testkit::now().unix_timestamp() as u64;
    let closes = t + 600;
    let obs = Observers::bind(3, 2);
    let w = World::with_spec(Limits::default(), |s| {
        s.observers(&obs).window(t - 10 * 86_400, closes)
    });
    let gateway_clock = w.county.clock.clone();
    gateway_clock.set(shared::clock::UnixTime(t));
    // The witnesses keep their own time.
    let witness_clock = shared::clock::ManualClock::new(shared::clock::UnixTime(t));
    obs.start(&w.county.manifest.log_key, Arc::new(witness_clock.clone()));
    let log_directly = |label: &str, voter_id: &str, at: u64| {
        let v = &w.pki.voter(label).unwrap().issued;
        let identity = shared::x509::voter_facts(
            &v.cert_der,
            &shared::x509::IdentityPolicy::dod_default(),
            shared::x509::Purpose::Authentication,
        )
        .unwrap()
        .identity
        .to_canonical();
        // The sequencer runs its own runtime: on a thread of its own.
        std::thread::scope(|s| {
            s.spawn(|| {
                testkit::voters::log_directly(
                    &w.county.gw,
                    &gateway_clock,
                    testkit::world::ELECTION,
                    5,
                    &[],
                    [testkit::voters::Logged {
                        voter_id: voter_id.into(),
                        identity,
                        client_cert: v.cert_der.clone(),
                        message: w.ballot(label, "marks"),
                        at: Some(at),
                        witnessed_at: None,
                    }],
                );
            })
            .join()
            .unwrap()
        });
        gateway_clock.set(shared::clock::UnixTime(t.max(at)));
    };

    // Rick's card was revoked two days ago; the gateway logs a ballot made
    // with it now, stamped three days ago.
    log_directly("rick-revoked", "V-0004", t - 3 * 86_400);
    gateway_clock.set(shared::clock::UnixTime(t));
    let r = w.start().await;
    let a = post(&w.client(&r, "jane-p256"), w.ballot("jane-p256", "jane"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    w.witnessed(r.port, 2).await.expect("witnessed within 30 s");
    // The deadline passes; the closing checkpoint is cosigned in time.
    gateway_clock.set(shared::clock::UnixTime(closes + 1));
    witness_clock.set(shared::clock::UnixTime(closes + 1));
    witnessed_after(&w, closes).await;
    r.stop().await;

    // An hour after the deadline the gateway logs Maria's ballot stamped
    // ten seconds before it, and has it witnessed.
    witness_clock.set(shared::clock::UnixTime(closes + 3600));
    log_directly("maria-rsa", "V-0003", closes - 10);
    gateway_clock.set(shared::clock::UnixTime(closes + 3600));
    let r = w.start().await;
    w.witnessed(r.port, 3).await.expect("witnessed within 30 s");
    r.stop().await;

    let status = w.county_decides(&w.county.gw, "canvass");
    let status = shared::status::StatusFile::open_signed(&status, &w.county.fpr).unwrap();
    use shared::status::{Reason, Status};
    assert_eq!(
        status.statuses,
        vec![
            Status::Rejected(Reason::CertificateRevoked),
            Status::Valid,
            Status::Rejected(Reason::AfterDeadline),
        ]
    );
    let report = std::fs::read_to_string(w.dir.path().join("canvass/report.txt")).unwrap();
    println!("ballot-verifier process says:\n{report}");
    assert!(
        report.contains("BACKDATED OR UNWITNESSED BALLOTS: 1 ballot(s) the gateway stamped as received before the deadline"),
        "{report}"
    );
    assert!(!report.contains("CLOSING CHECKPOINT"), "{report}");
}
