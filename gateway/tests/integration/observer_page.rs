//! Issue 17, part 4: the observer's page, in a real browser (headless
//! Chromium through WebDriver). The page shows the log, the witnesses'
//! cosignatures and the status counts, each signature checked in the
//! browser, and checks pasted receipts with Web Crypto: a genuine one
//! passes, a tampered one and one from a forged checkpoint are refused
//! with their reason.

use crate::fixture::{post, World};
use gateway::config::Limits;
use http::StatusCode;
use testkit::browser::{spki_pin, Browser, Locator};

async fn check(b: &Browser, receipt: &str) -> String {
    let area = b.client.find(Locator::Id("receipt")).await.unwrap();
    area.clear().await.unwrap();
    area.send_keys(receipt).await.unwrap();
    b.client
        .find(Locator::Id("check"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The verdict replaces "Checking…".
    b.wait_text("#result", "This receipt").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_see_the_log_and_check_receipts_in_their_browser() {
    let obs = testkit::observers::Observers::bind(3, 2);
    let w = World::with_spec(Limits::default(), |s| s.observers(&obs));
    obs.start(
        &w.county.manifest.log_key,
        std::sync::Arc::new(w.county.clock.clone()),
    );
    let r = w.start().await;
    // Jane's receipt is made at log size 1; two more ballots follow, so
    // the page must prove the receipt's checkpoint is extended by the
    // latest one.
    let (jane, _) = w
        .upload_checked(&w.client(&r, "jane-p256"), &w.ballot("jane-p256", "a"))
        .await;
    for (label, marks) in [("maria-rsa", "b"), ("jane-p256", "c")] {
        let a = post(&w.client(&r, label), w.ballot(label, marks))
            .await
            .unwrap();
        assert_eq!(a.status, StatusCode::OK);
    }
    assert!(w.witnessed(r.port, 3).await.is_some());
    let status = w.county_decides(&w.data(), "canvass");
    let status_path = w.dir.path().join("status.signed");
    std::fs::write(&status_path, status).unwrap();
    gateway::export::import_status(&w.data(), &status_path, &w.county.clock).unwrap();

    // The page's headers (curl, as an observer's tool): only this
    // origin's script, style and connections; no framing.
    let head = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", "--cacert"])
        .arg(w.dir.path().join("pki/anchors/test-dod-root-ca-3.pem"))
        .arg(format!("https://localhost:{}/", r.port))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).to_lowercase();
    assert!(head.starts_with("http/") && head.contains(" 200"), "{head}");
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'")
            && head.contains("connect-src 'self'")
            && head.contains("frame-ancestors 'none'"),
        "{head}"
    );

    let pem = std::fs::read(w.dir.path().join("pki/server/localhost.cert.pem")).unwrap();
    let b = match Browser::start(&spki_pin(&pem)).await {
        Ok(b) => b,
        Err(why) => {
            println!("SKIPPED the observer's page in a browser: {why}");
            r.stop().await;
            return;
        }
    };
    b.client
        .goto(&format!("https://localhost:{}/", r.port))
        .await
        .unwrap();
    let verdict = b
        .wait_text("#log-check", "signature on this checkpoint is valid")
        .await;
    assert!(verdict.contains("checked in this browser"), "{verdict}");
    let log = b.wait_text("#log", "Entries").await;
    assert!(
        log.contains("Entries\n3") || log.contains("Entries 3"),
        "{log}"
    );
    let title = b.wait_text("#title", "").await;
    assert_eq!(title, w.county.manifest.title);
    // Every witness the manifest names is listed; a quorum cosigned, each
    // cosignature verified in the browser.
    let witnesses = b.wait_text("#witnesses", "valid").await;
    assert!(
        witnesses.matches("\u{2713} valid").count() >= 2,
        "{witnesses}"
    );
    let counts = b.wait_text("#counts", "Status").await;
    assert!(counts.contains("3 ballots"), "{counts}");
    b.screenshot("observer-1-log").await;
    assert_eq!(b.contrast_failures().await, Vec::<String>::new());

    // Jane's genuine receipt.
    let said = check(&b, &jane.receipt).await;
    assert!(
        said.contains("This receipt is valid: the ballot it names is in the log."),
        "{said}"
    );
    assert!(
        said.contains("latest log (3 entries) still holds it"),
        "{said}"
    );
    assert!(said.contains("ballot-audit program is the authoritative check"));
    b.screenshot_at("observer-2-receipt-valid", "#result").await;

    // Tampered: the entry's time changed (a receipt doctored to look on
    // time). Its leaf no longer leads to the signed root.
    let mut lines: Vec<String> = jane.receipt.lines().map(str::to_owned).collect();
    let extra = &lines[1];
    assert!(extra.starts_with("extra "));
    let mut entry = base64::Engine::decode(
        &base64::prelude::BASE64_STANDARD,
        extra.trim_start_matches("extra "),
    )
    .unwrap();
    let at = 2 + usize::from(entry[1]);
    entry[at + 7] ^= 0x01;
    lines[1] = format!(
        "extra {}",
        base64::Engine::encode(&base64::prelude::BASE64_STANDARD, &entry)
    );
    let tampered = lines.join("\n") + "\n";
    let said = check(&b, &tampered).await;
    assert!(said.contains("This receipt did NOT check"), "{said}");
    assert!(
        said.contains("proof does not lead to its checkpoint"),
        "{said}"
    );
    b.screenshot_at("observer-3-receipt-tampered", "#result")
        .await;

    // A checkpoint whose root was replaced: the log's signature fails.
    let root_line = lines
        .iter()
        .position(|l| l == &w.county.manifest.log_origin)
        .unwrap()
        + 2;
    let mut root =
        base64::Engine::decode(&base64::prelude::BASE64_STANDARD, &lines[root_line]).unwrap();
    root[0] ^= 0xff;
    lines[1] = jane.receipt.lines().nth(1).unwrap().to_owned();
    lines[root_line] = base64::Engine::encode(&base64::prelude::BASE64_STANDARD, &root);
    let said = check(&b, &(lines.join("\n") + "\n")).await;
    assert!(
        said.contains("the log's signature on the checkpoint is not valid"),
        "{said}"
    );
    // Not a receipt at all.
    let said = check(&b, "hello").await;
    assert!(
        said.contains("must begin with c2sp.org/tlog-proof@v1"),
        "{said}"
    );
    b.close().await;
    r.stop().await;
}
