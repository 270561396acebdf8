//! Issue 11, part 5: `ballot-audit`, the auditor's program, against the
//! real gateway and the observers' real witnesses on loopback, and against
//! a gateway that keeps a second log.

use http::StatusCode;
use observer::audit::{self, Monitor};
use std::path::Path;
use testkit::world::{post, World};
use voter::client::SavedReceipt;

/// Uploads `label`'s ballot to the gateway on `port` with the voter's own
/// client and saves the receipt as `ballot-return send` does.
async fn send_and_save(w: &World, port: u16, label: &str, marks: &str, file: &Path) {
    let v = &w.pki.voter(label).unwrap().issued;
    let upload = w.ballot(label, marks);
    let (answer, receipt) = w.upload_checked(&w.client_at(port, v), &upload).await;
    let saved =
        SavedReceipt::new(&w.county.manifest, &w.county.fpr, "", &receipt, &answer).unwrap();
    std::fs::write(file, serde_json::to_vec_pretty(&saved).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditors_program_checks_receipts_follows_the_log_and_counts_the_status_file() {
    let (_obs, w, clock, fork_data) = crate::witnessed::watched_world_with_a_second_log();
    let r = w.start().await;
    let receipts = w.dir.path().join("receipts");
    std::fs::create_dir_all(&receipts).unwrap();
    send_and_save(&w, r.port, "jane-p256", "jane", &receipts.join("jane.json")).await;
    send_and_save(
        &w,
        r.port,
        "maria-rsa",
        "maria",
        &receipts.join("maria.json"),
    )
    .await;
    w.witnessed(r.port, 2).await.expect("witnessed within 30 s");
    let public = w.anonymous(&r);

    // The monitor follows the log: every new checkpoint is stored.
    let mut monitor = Monitor::open(&w.dir.path().join("monitor")).unwrap();
    let o = monitor
        .observe(&public, &w.county.manifest, clock.now())
        .await
        .unwrap();
    assert_eq!(audit::problems(&o.findings), 0, "{:?}", o.findings);
    let a = post(&w.client(&r, "maria-rsa"), w.ballot("maria-rsa", "again"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    w.witnessed(r.port, 3).await.expect("witnessed within 30 s");
    let o = monitor
        .observe(&public, &w.county.manifest, clock.now())
        .await
        .unwrap();
    assert_eq!(audit::problems(&o.findings), 0, "{:?}", o.findings);
    let stored = monitor.stored().unwrap();
    assert_eq!(
        stored.iter().map(|(_, s, _)| *s).collect::<Vec<_>>(),
        vec![2, 3],
        "{stored:?}"
    );

    // The county decides; the auditor counts the signed status file.
    let status_file = w.county_decides(&w.county.gw, "canvass");
    let p = w.dir.path().join("status.signed");
    std::fs::write(&p, &status_file).unwrap();
    gateway::export::import_status(&w.county.gw, &p, &w.county.clock).unwrap();
    let (findings, counts) = audit::check_status_file(&public, &w.county.fpr, None, clock.now())
        .await
        .unwrap();
    assert_eq!(audit::problems(&findings), 0, "{findings:?}");
    let counts = counts.unwrap();
    assert_eq!((counts.size, counts.valid), (3, 3));
    println!(
        "ballot-audit status-file says:\n{}",
        audit::describe_counts(&counts)
    );
    // A ballot logged after the county decided: the file covers 3 of 4.
    let a = post(
        &w.client(&r, "jane-p256"),
        w.ballot("jane-p256", "a replacement"),
    )
    .await
    .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    w.witnessed(r.port, 4).await.expect("witnessed within 30 s");
    let (findings, _) = audit::check_status_file(&public, &w.county.fpr, None, clock.now())
        .await
        .unwrap();
    let coverage = findings.iter().find(|f| f.subject == "coverage").unwrap();
    println!("ballot-audit status-file says: {coverage}");
    assert!(
        coverage
            .message
            .contains("covers 3 of the 4 ballots in the witnessed log; 1 have no status yet"),
        "{coverage}"
    );

    // The receipts folder: both honest receipts check out.
    let findings = audit::check_receipts(&public, &w.county.fpr, &receipts)
        .await
        .unwrap();
    assert_eq!(audit::problems(&findings), 0, "{findings:?}");
    assert!(findings
        .iter()
        .any(|f| f.message.contains("valid: your ballot passed")));

    // A receipt whose ballot hash was changed, and junk.
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(receipts.join("maria.json")).unwrap()).unwrap();
    forged["message_sha256"] = serde_json::Value::String("00".repeat(32));
    std::fs::write(
        receipts.join("maria-forged.json"),
        serde_json::to_vec(&forged).unwrap(),
    )
    .unwrap();
    std::fs::write(receipts.join("notes.txt"), b"not a receipt").unwrap();

    // The gateway's second log, shown to Jane: her other ballot at entry 0.
    testkit::voters::copy_witnessed(&w.county.gw, &fork_data);
    let mut fork_config = w.config.clone();
    fork_config.data_dir = fork_data.clone();
    let (fork, fork_port) = testkit::server::start(&fork_config, clock.clone()).await;
    send_and_save(
        &w,
        fork_port,
        "jane-p256",
        "other",
        &receipts.join("jane-fork.json"),
    )
    .await;

    let findings = audit::check_receipts(&public, &w.county.fpr, &receipts)
        .await
        .unwrap();
    for f in &findings {
        println!("ballot-audit receipts says: {f}");
    }
    let about = |name: &str| -> Vec<&audit::Finding> {
        findings
            .iter()
            .filter(|f| f.subject == name && !f.ok)
            .collect()
    };
    assert!(
        !about("jane-fork.json and jane.json").is_empty(),
        "{findings:?}"
    );
    assert!(
        findings.iter().any(|f| f.message.starts_with(
            "FORK: receipts jane-fork.json and jane.json are both signed by the gateway for log entry 0 but the entries differ"
        )),
        "{findings:?}"
    );
    assert!(
        about("jane-fork.json").iter().any(|f| f
            .message
            .contains("the gateway showed you a log that the county's witnesses did not see")),
        "{findings:?}"
    );
    assert!(
        about("maria-forged.json")
            .iter()
            .any(|f| f.message.contains("forged or damaged")),
        "{findings:?}"
    );
    assert!(!about("notes.txt").is_empty());
    assert!(about("jane.json").is_empty() && about("maria.json").is_empty());

    // The monitor, later shown the second log: a fork, with both signed
    // checkpoints written down.
    let fork_public = testkit::voters::client(&w.pki, None, fork_port);
    let o = monitor
        .observe(&fork_public, &w.county.manifest, clock.now())
        .await
        .unwrap();
    let alarm = o.findings.iter().find(|f| !f.ok).expect("a fork alarm");
    println!("ballot-audit monitor says: {alarm}");
    assert!(
        alarm.message.starts_with("FORK: the gateway signed a log of 4 entries and one of 3 entries, and does not prove that the larger extends the smaller"),
        "{alarm}"
    );
    // Its own latest checkpoint (Jane's entry alone) is caught the same way.
    assert!(
        o.findings.iter().any(|f| !f.ok
            && f.subject == "latest checkpoint of size 1"
            && f.message.starts_with("FORK")),
        "{:?}",
        o.findings
    );
    let evidence = std::fs::read_to_string(&o.evidence[0]).unwrap();
    let log_key = shared::note::NoteVerifier::from_vkey(&w.county.manifest.log_key).unwrap();
    let notes: Vec<&str> = evidence.split("== ").skip(1).take(2).collect();
    for n in &notes {
        let body = n.split_once('\n').unwrap().1;
        shared::checkpoint::SignedCheckpoint::verify(body.trim_end().as_bytes(), &log_key)
            .map(|_| ())
            .or_else(|_| {
                shared::checkpoint::SignedCheckpoint::verify(
                    format!("{}\n", body.trim_end()).as_bytes(),
                    &log_key,
                )
                .map(|_| ())
            })
            .expect("both checkpoints in the evidence verify with the log key");
    }

    // A witnessed checkpoint short of the quorum is refused by the monitor.
    {
        let real_latest: String = w
            .db()
            .query_row(
                "SELECT note FROM witnessed ORDER BY size DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let one =
            shared::note::NoteVerifier::from_vkey(&w.county.manifest.witnesses[0].key).unwrap();
        let short = shared::note::Note::parse(real_latest.as_bytes())
            .unwrap()
            .keep_signatures_of(&[&log_key, &one])
            .unwrap()
            .to_text();
        rusqlite::Connection::open(gateway::store::db_path(&fork_data))
            .unwrap()
            .execute(
                "INSERT INTO witnessed (size, quorum_time, note) VALUES (99, 0, ?1)",
                [short],
            )
            .unwrap();
    }
    fork.stop().await.unwrap();
    let (fork, fork_port) = testkit::server::start(&fork_config, clock.clone()).await;
    let fork_public = testkit::voters::client(&w.pki, None, fork_port);
    let mut fresh = Monitor::open(&w.dir.path().join("monitor-2")).unwrap();
    let o = fresh
        .observe(&fork_public, &w.county.manifest, clock.now())
        .await
        .unwrap();
    let refused = o
        .findings
        .iter()
        .find(|f| f.subject == "witnessed checkpoint")
        .unwrap();
    println!("ballot-audit monitor says: {refused}");
    assert!(!refused.ok);
    assert!(
        refused
            .message
            .contains("cosigned by 1 of the election's witnesses; 2 are needed"),
        "{refused}"
    );
    assert!(fresh
        .stored()
        .unwrap()
        .iter()
        .all(|(k, _, _)| k != "witnessed"));
    // The voter's client refuses it too.
    let jane: SavedReceipt =
        serde_json::from_slice(&std::fs::read(receipts.join("jane.json")).unwrap()).unwrap();
    let e = voter::client::status(&fork_public, &jane)
        .await
        .expect_err("short of the quorum");
    println!("ballot-return status says: {e:#}");
    assert!(
        format!("{e:#}").starts_with("the gateway's checkpoint is not the county's word: the checkpoint is cosigned by 1 of the election's witnesses; 2 are needed"),
        "{e:#}"
    );

    // The program itself, as an auditor runs it.
    cli(&w, r.port, &receipts);
    fork.stop().await.unwrap();
    r.stop().await;
}

/// Runs the `ballot-audit` binary (built by `cargo test --workspace`).
fn cli(w: &World, port: u16, receipts: &Path) {
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("ballot-audit"))
        .unwrap();
    if !bin.exists() {
        println!(
            "SKIPPED: the ballot-audit program is not built at {} (run the workspace's tests: cargo test --workspace)",
            bin.display()
        );
        return;
    }
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin)
            .args(["--gateway", &format!("https://localhost:{port}")])
            .arg("--ca")
            .arg(w.dir.path().join("pki/anchors/test-dod-root-ca-3.pem"))
            .args(["--election-fingerprint", &w.county.fpr])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = run(&["status-file"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("valid:      3"), "{text}");
    let (code, text) = run(&["receipts", receipts.to_str().unwrap()]);
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("PROBLEM jane-fork.json and jane.json: FORK"),
        "{text}"
    );
    let state = w.dir.path().join("monitor-cli");
    let (code, text) = run(&[
        "monitor",
        "--state",
        state.to_str().unwrap(),
        "--rounds",
        "1",
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("new, consistent"), "{text}");
}
