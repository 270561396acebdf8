//! End-to-end tests: the gateway and the verifier together, with real TLS,
//! real SQLite and real OpenPGP on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_story_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let outcome = ballot_return_e2e::demo::run_demo(dir.path(), &mut |l| lines.push(l.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", lines.join("\n")));
    assert_eq!((outcome.accepted, outcome.superseded), (3, 1));
    assert!(
        outcome.report.contains("Accepted (to be counted):      3"),
        "{}",
        outcome.report
    );
    let text = lines.join("\n");
    assert!(text.contains("refused the connection at TLS"), "{text}");
    assert!(text.contains("not on this county's roster"), "{text}");
    assert!(
        text.contains("accepted: your ballot will be counted"),
        "{text}"
    );
}
