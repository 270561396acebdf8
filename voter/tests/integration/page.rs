//! Issue 17, parts 1 and 2: the voter's page, in a real browser (headless
//! Chromium through WebDriver), against the real gateway on loopback, with
//! a SoftHSM card: the whole flow, a wrong file, a wrong PIN, a closed
//! election, a gateway that is down; and who may use the page. Each step's
//! screenshot is written to target/screenshots (the README shows them).

use gateway::config::Limits;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use testkit::browser::{Browser, KillOnDrop, Locator};
use testkit::softhsm::{self, Carries};
use testkit::world::World;

const GATEWAY_CA: &str = "pki/anchors/test-dod-root-ca-3.pem";

/// `ballot-return open` (as the voter's shortcut would run it, but
/// printing its one-time address instead of opening a browser); returns
/// the program and the address.
fn open_page(
    mut c: Command,
    dir: &Path,
    gateway: &str,
    fpr: &str,
    extra: &[std::ffi::OsString],
) -> (KillOnDrop, String) {
    c.current_dir(dir)
        .args(["open", gateway, fpr, "--no-browser", "--ca", GATEWAY_CA])
        .args(["--receipts", "receipts"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = c.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("ballot-return printed no address")
            .unwrap();
        if line.starts_with("http://127.0.0.1:") {
            break line;
        }
    };
    // The rest of its output is not needed; keep the pipe drained.
    std::thread::spawn(move || for _ in lines {});
    (KillOnDrop(child), url)
}

async fn click(b: &Browser, id: &str) {
    b.client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn type_into(b: &Browser, id: &str, text: &str) {
    let e = b.client.find(Locator::Id(id)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn visible(b: &Browser, id: &str) {
    for _ in 0..600 {
        if let Ok(e) = b.client.find(Locator::Id(id)).await {
            if e.is_displayed().await.unwrap_or(false) {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("#{id} never showed");
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_returns_a_ballot_through_the_page() {
    let module = match softhsm::available() {
        Ok(m) => m,
        Err(why) => {
            println!("SKIPPED the voter's page: {why}");
            return;
        }
    };
    let w = World::new(Limits::default());
    let r = w.start().await;
    let dir = w.dir.path().to_path_buf();
    std::fs::write(dir.join("ballot.pdf"), testkit::pdf::ballot(&["page"])).unwrap();
    std::fs::write(dir.join("notes.txt"), b"my notes").unwrap();
    std::fs::write(dir.join("fake.pdf"), b"GIF89a not a pdf").unwrap();
    let card = softhsm::cac(
        &module,
        &w.pki,
        &dir.join("card"),
        "CAC jane",
        ("DOE", "JANE", "1234567890"),
        devpki::KeyAlg::P256,
        Carries::Both,
    );
    let c = card.command(env!("CARGO_BIN_EXE_ballot-return"));
    let gateway = format!("https://localhost:{}", r.port);
    let (child, url) = open_page(
        c,
        &dir,
        &gateway,
        &w.county.fpr,
        &["--pkcs11-module".into(), module.clone().into_os_string()],
    );
    let origin = url.split("/?").next().unwrap().to_owned();
    let port = origin.rsplit(':').next().unwrap().to_owned();

    let b = match Browser::start("").await {
        Ok(b) => b,
        Err(why) => {
            println!("SKIPPED the voter's page in a browser: {why}");
            drop(child);
            r.stop().await;
            return;
        }
    };
    b.client.goto(&url).await.unwrap();
    visible(&b, "election").await;
    // The one-time address was exchanged: a second visit (another
    // browser, another user of this computer) is refused, and so is
    // anything without the session, or under another host name.
    assert_eq!(curl(&[&url]), "403");
    assert_eq!(curl(&[&format!("{origin}/api/start")]), "403");
    assert_eq!(
        curl(&[
            "-H",
            &format!("Host: attacker.example:{port}"),
            &format!("{origin}/")
        ]),
        "421"
    );
    // The address is filled in from the instructions.
    let filled = b
        .client
        .find(Locator::Id("gateway"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(filled, gateway);
    b.screenshot("voter-1-election").await;

    // 1-2. The election from the signed manifest, and the declaration.
    click(&b, "election-go").await;
    visible(&b, "declaration").await;
    let facts = b
        .wait_text("#election-facts", &w.county.manifest.title)
        .await;
    assert!(facts.contains("Ballots accepted until"), "{facts}");
    b.screenshot("voter-2-declaration").await;
    assert_eq!(b.contrast_failures().await, Vec::<String>::new());
    click(&b, "declaration-go").await;
    let e = b.wait_text("#error", "you must make the declaration").await;
    assert!(e.contains("I make this declaration"), "{e}");
    // By keyboard: Space ticks the box, Enter on the focused button goes on.
    b.client
        .find(Locator::Id("accept"))
        .await
        .unwrap()
        .send_keys(" ")
        .await
        .unwrap();
    b.client
        .find(Locator::Id("declaration-go"))
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    visible(&b, "ballot").await;
    // Each step takes the focus to its heading, for keyboard and screen
    // reader users; every field has a label.
    let focus = b
        .client
        .execute("return document.activeElement.id;", vec![])
        .await
        .unwrap();
    assert_eq!(focus, serde_json::json!("ballot-h"));
    let unlabelled = b
        .client
        .execute(
            "return Array.from(document.querySelectorAll('input, textarea, select, progress'))\
               .filter(e => e.labels === null || e.labels.length === 0).map(e => e.id);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(unlabelled, serde_json::json!([]), "fields without a label");

    // 3. A wrong file type, then a file that only pretends to be a PDF,
    // then the marked ballot.
    let file = b.client.find(Locator::Id("file")).await.unwrap();
    file.send_keys(&dir.join("notes.txt").display().to_string())
        .await
        .unwrap();
    let e = b
        .wait_text("#error", "is not a file this election accepts")
        .await;
    assert!(e.contains("notes.txt"), "{e}");
    b.screenshot("voter-3-wrong-file").await;
    file.send_keys(&dir.join("fake.pdf").display().to_string())
        .await
        .unwrap();
    b.wait_text(
        "#error",
        "is named like a application/pdf file but is not one",
    )
    .await;
    // Dropped on the page (a drop event carrying a file, as the browser
    // makes one when a file is dragged from the desktop).
    let drop_file = |name: &str, text: &str| {
        format!(
            "const dt = new DataTransfer(); dt.items.add(new File([{text:?}], {name:?})); \
             document.getElementById('drop').dispatchEvent(new DragEvent('drop', {{dataTransfer: dt, bubbles: true, cancelable: true}}));"
        )
    };
    b.client
        .execute(&drop_file("dropped.pdf", "%PDF-1.7 dropped"), vec![])
        .await
        .unwrap();
    b.wait_text("#file-chosen", "dropped.pdf").await;
    b.wait_text("#file-chosen", "is ready to be signed and sent")
        .await;
    // The file picker: the marked ballot replaces the dropped one.
    file.send_keys(&dir.join("ballot.pdf").display().to_string())
        .await
        .unwrap();
    b.wait_text("#file-chosen", "ballot.pdf (").await;
    click(&b, "ballot-go").await;

    // 4. The card, and a wrong PIN: told with the tries left, nothing sent.
    visible(&b, "card").await;
    b.wait_text("#card-facts", "CAC jane").await;
    type_into(&b, "pin", "999999").await;
    click(&b, "send").await;
    let e = b.wait_text("#error", "Wrong PIN.").await;
    assert!(e.contains("Nothing was sent"), "{e}");
    assert!(e.contains("tries are left"), "{e}");
    b.wait_text("#card-tries", "few tries are left").await;
    b.screenshot("voter-4-wrong-pin").await;
    assert_eq!(b.contrast_failures().await, Vec::<String>::new());
    assert_eq!(w.ballots_stored(), 0);

    // 5-6. The right PIN: sent, with progress, and the receipt.
    // Enter in the PIN field sends.
    type_into(&b, "pin", &format!("{}\u{E007}", softhsm::PIN)).await;
    let words = b
        .wait_text("#receipt-words", "Your ballot was received")
        .await;
    assert!(words.contains("entry 0"), "{words}");
    let facts = b.wait_text("#receipt-facts", "Receipt saved as").await;
    assert!(facts.contains("receipts"), "{facts}");
    b.screenshot("voter-5-receipt").await;
    assert_eq!(b.contrast_failures().await, Vec::<String>::new());
    assert_eq!(w.ballots_stored(), 1);
    let kept: Vec<_> = std::fs::read_dir(dir.join("receipts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    // The printable receipt is a PDF of one page.
    let pdf = b
        .client
        .execute(
            "return fetch('/api/receipt.pdf').then(r => r.arrayBuffer()).then(a => Array.from(new Uint8Array(a.slice(0, 5))));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(pdf, serde_json::json!([37, 80, 68, 70, 45]), "%PDF-");

    // 7. Check my ballot: logged, not yet witnessed (no witnesses here).
    click(&b, "check-now").await;
    let st = b.wait_text("#status-list", "Entry 0").await;
    assert!(st.contains("your ballot is logged (entry 0)"), "{st}");
    b.screenshot("voter-6-status").await;

    // A request from another page is refused even when the browser sends
    // the session cookie along: its Origin gives it away.
    let cookie = b
        .client
        .get_named_cookie("ballot_return_session")
        .await
        .unwrap();
    let cookie = format!("Cookie: ballot_return_session={}", cookie.value());
    // The page may load and reach nothing but ballot-return itself.
    let head = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-H",
            &cookie,
            &format!("{origin}/"),
        ])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).to_lowercase();
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'"),
        "{head}"
    );
    let quit = format!("{origin}/api/quit");
    assert_eq!(
        curl(&[
            "-X",
            "POST",
            "-H",
            &cookie,
            "-H",
            "Origin: https://attacker.example",
            "-d",
            "{}",
            &quit
        ]),
        "403"
    );
    assert_eq!(
        curl(&["-X", "POST", "-H", &cookie, "-d", "{}", &quit]),
        "403"
    );
    // The page's own Close button ends ballot-return.
    click(&b, "close").await;
    let mut child = child;
    let status = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    b.close().await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_plainly_when_the_election_is_closed_or_the_gateway_is_down() {
    let now = testkit::now().unix_timestamp() as u64;
    let w = World::with_spec(Limits::default(), |s| {
        s.window(now - 10 * 86_400, now - 3600)
    });
    let r = w.start().await;
    let dir = w.dir.path().to_path_buf();
    let pki = dir.join("pki");
    let dev: Vec<std::ffi::OsString> = vec![
        "--cert".into(),
        pki.join("voters/jane-p256.cert.pem").into(),
        "--key".into(),
        pki.join("voters/jane-p256.key.pem").into(),
    ];
    let b = match Browser::start("").await {
        Ok(b) => b,
        Err(why) => {
            println!("SKIPPED the voter's page in a browser: {why}");
            r.stop().await;
            return;
        }
    };
    // A closed election: said before anything else is asked.
    let c = Command::new(env!("CARGO_BIN_EXE_ballot-return"));
    let gateway = format!("https://localhost:{}", r.port);
    let (child, url) = open_page(c, &dir, &gateway, &w.county.fpr, &dev);
    b.client.goto(&url).await.unwrap();
    visible(&b, "election").await;
    click(&b, "election-go").await;
    let e = b.wait_text("#error", "Voting closed at").await;
    assert!(e.contains("contact your election office"), "{e}");
    b.screenshot("voter-7-closed").await;
    drop(child);

    // A gateway that is down.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = down.local_addr().unwrap().port();
    drop(down);
    let c = Command::new(env!("CARGO_BIN_EXE_ballot-return"));
    let (child, url) = open_page(
        c,
        &dir,
        &format!("https://localhost:{port}"),
        &w.county.fpr,
        &dev,
    );
    b.client.goto(&url).await.unwrap();
    visible(&b, "election").await;
    click(&b, "election-go").await;
    let e = b
        .wait_text("#error", "Cannot get the election from the gateway at")
        .await;
    assert!(e.contains(&format!("localhost:{port}")), "{e}");
    b.screenshot("voter-8-gateway-down").await;
    drop(child);
    b.close().await;
    r.stop().await;
}

/// With no command, `ballot-return` opens the page in the system browser
/// (xdg-open here, a stand-in that records what it was given): the
/// one-time address travels in a private file, never on a command line
/// that other users of the computer can read.
#[test]
fn with_no_command_the_browser_opens_the_page_and_the_token_stays_off_command_lines() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("opened.log");
    let opener = bin.join("xdg-open");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\nprintf 'arg %s\\nmode %s\\n' \"$*\" \"$(stat -c %a \"$1\")\" >> {log}\ncat \"$1\" >> {log}\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_ballot-return"))
        .env("PATH", path)
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let child = KillOnDrop(child);
    let mut lines = std::io::BufReader::new(out).lines();
    let said = lines.next().unwrap().unwrap();
    assert!(
        said.starts_with("ballot-return's page is open in your browser (http://127.0.0.1:"),
        "{said}"
    );
    let opened = std::fs::read_to_string(&log).unwrap();
    let arg = opened.lines().next().unwrap();
    assert!(
        arg.starts_with("arg /") && arg.ends_with("/open-ballot-return.html"),
        "{opened}"
    );
    assert!(
        !arg.contains("?t="),
        "the token was on a command line: {arg}"
    );
    assert!(opened.contains("\nmode 600\n"), "{opened}");
    let url = opened
        .split("url=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("/?t="),
        "{url}"
    );
    // It is the page's real one-time address: it works once.
    assert_eq!(curl(&[&url]), "303");
    assert_eq!(curl(&[&url]), "403");
    drop(child);
}
