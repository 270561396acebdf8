//! `ballot-return` with a card: SoftHSM2 tokens stand in for CACs (keys
//! generated on the token, never extractable; certificates from the
//! development PKI), reached through the real PKCS #11 module, against the
//! real gateway; the county's real verifier counts what arrives.

use super::return_bin;
use devpki::KeyAlg;
use gateway::config::Limits;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use testkit::softhsm::{self, Carries, SoftCard};
use testkit::world::World;

/// SoftHSM2's module, or `None` after printing why the test is skipped.
fn softhsm() -> Option<PathBuf> {
    match softhsm::available() {
        Ok(m) => Some(m),
        Err(why) => {
            println!("SKIPPED: {why}");
            None
        }
    }
}

/// Runs `c` with `pin` on its standard input (`--pin-fd 0`).
fn with_pin(mut c: Command, pin: &str) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{pin}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `ballot-return send` with `card` through `module` (SoftHSM's, or the
/// spy in front of it), the PIN on standard input, the receipt kept in
/// `receipts`; the ballot style comes from the roster.
fn send_with_card(
    dir: &Path,
    port: u16,
    fpr: &str,
    card: &SoftCard,
    module: &Path,
    receipts: &str,
) -> Command {
    let mut c = card.command(env!("CARGO_BIN_EXE_ballot-return"));
    c.current_dir(dir)
        .args([
            "send",
            &format!("https://localhost:{port}"),
            fpr,
            "ballot.pdf",
        ])
        .args(["--ca", "pki/anchors/test-dod-root-ca-3.pem"])
        .arg("--pkcs11-module")
        .arg(module)
        .args(["--pin-fd", "0", "--accept-declaration"])
        .args(["--receipts", receipts]);
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ballots_sent_with_cards_are_counted_by_the_county() {
    let Some(module) = softhsm() else { return };
    let w = World::new(Limits::default());
    let r = w.start().await;
    let dir = w.dir.path().to_path_buf();
    std::fs::write(dir.join("ballot.pdf"), testkit::pdf::ballot(&["card"])).unwrap();
    // Jane's card has P-256 keys, Maria's RSA 2048 (TLS 1.3 signs with
    // RSA-PSS on it, the ballot with PKCS #1 v1.5).
    let cards = [
        ("jane", ("DOE", "JANE", "1234567890"), KeyAlg::P256),
        ("maria", ("GARCIA", "MARIA", "3456789012"), KeyAlg::Rsa2048),
    ];
    for (name, who, alg) in cards {
        let card = softhsm::cac(
            &module,
            &w.pki,
            &dir.join(format!("card-{name}")),
            &format!("CAC {name}"),
            who,
            alg,
            Carries::Both,
        );
        let (d, port, fpr, m) = (dir.clone(), r.port, w.county.fpr.clone(), module.clone());
        let out = tokio::task::spawn_blocking(move || {
            with_pin(
                send_with_card(&d, port, &fpr, &card, &m, &format!("receipts-{name}")),
                softhsm::PIN,
            )
        })
        .await
        .unwrap();
        let said = text(&out);
        assert!(out.status.success(), "{said}");
        assert!(
            said.contains("The card logs in with 'Certificate for PIV Authentication' and signs your ballot with 'Certificate for Digital Signature'"),
            "{said}"
        );
        assert!(said.contains("received and logged as entry"), "{said}");
        // The style came from the roster (the verifier below checks it).
        assert!(
            said.contains("ballot style style-1 (from the county's roster"),
            "{said}"
        );
        // The PIN never reaches the output.
        assert!(!said.contains(softhsm::PIN), "{said}");
    }
    testkit::voters::witness_latest(
        &w.county.gw,
        &w.county.stand_in_keys,
        shared::clock::Clock::now(&w.county.clock),
    );
    w.county_decides(&w.county.gw, "canvass");
    let voters = std::fs::read_to_string(dir.join("canvass/voters.csv")).unwrap();
    assert!(voters.contains("V-0001,0,accepted,"), "{voters}");
    assert!(voters.contains("V-0003,1,accepted,"), "{voters}");
    r.stop().await;
}

/// A running gateway with a marked ballot in its world's folder, and
/// Jane's card carrying `carries`.
async fn world_with_janes_card(
    module: &Path,
    carries: Carries,
) -> (World, testkit::world::Running, PathBuf, SoftCard) {
    let w = World::new(Limits::default());
    let r = w.start().await;
    let dir = w.dir.path().to_path_buf();
    std::fs::write(dir.join("ballot.pdf"), testkit::pdf::ballot(&["card"])).unwrap();
    let card = softhsm::cac(
        module,
        &w.pki,
        &dir.join("card"),
        "CAC jane",
        ("DOE", "JANE", "1234567890"),
        KeyAlg::P256,
        carries,
    );
    (w, r, dir, card)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_tried_once_and_nothing_is_sent() {
    let Some(module) = softhsm() else { return };
    let Some(spy) = softhsm::spy() else {
        println!("SKIPPED: OpenSC's pkcs11-spy is not installed (Debian package opensc), so PIN tries cannot be counted");
        return;
    };
    let (w, r, dir, card) = world_with_janes_card(&module, Carries::Both).await;
    assert!(!card.flags().contains("count low"), "{}", card.flags());
    let log = dir.join("pkcs11-spy.log");
    let run = |pin: &'static str| {
        let (d, port, fpr) = (dir.clone(), r.port, w.county.fpr.clone());
        let mut c = send_with_card(&d, port, &fpr, &card, &spy, "receipts-jane");
        c.env("PKCS11SPY", &module).env("PKCS11SPY_OUTPUT", &log);
        with_pin(c, pin)
    };
    let logins = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("C_Login")
            .count()
    };

    // A PIN the card's length limits rule out is not tried at all.
    let out = tokio::task::block_in_place(|| run("12"));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("it was not tried, so no attempt was used"),
        "{said}"
    );
    assert_eq!(logins(), 0);

    // A wrong PIN: exactly one C_Login, the card's counter says so, and
    // the voter reads what happened.
    let out = tokio::task::block_in_place(|| run("999999"));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("wrong PIN."), "{said}");
    assert!(said.contains("NOT sent"), "{said}");
    assert_eq!(logins(), 1, "the PIN was tried more than once");
    assert!(
        card.flags().contains("user PIN count low"),
        "{}",
        card.flags()
    );
    assert_eq!(w.ballots_stored(), 0);
    // The receipts folder is made before anything is sent (so a receipt
    // cannot be lost to a folder that cannot be made); it holds none.
    assert_eq!(
        std::fs::read_dir(dir.join("receipts-jane"))
            .unwrap()
            .count(),
        0
    );

    // `ballot-return card` shows the state to a support desk.
    let out = tokio::task::block_in_place(|| {
        card.command(env!("CARGO_BIN_EXE_ballot-return"))
            .args(["card", "--pkcs11-module"])
            .arg(&module)
            .output()
            .unwrap()
    });
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("PIN: a wrong PIN was entered; few tries are left"),
        "{said}"
    );

    // The right PIN then works, and the card's counter is reset.
    let out = tokio::task::block_in_place(|| run(softhsm::PIN));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(logins(), 2);
    assert!(!card.flags().contains("count low"), "{}", card.flags());
    assert_eq!(w.ballots_stored(), 1);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_with_only_a_card_authentication_certificate_is_refused_before_the_pin() {
    let Some(module) = softhsm() else { return };
    let (w, r, dir, card) = world_with_janes_card(&module, Carries::CardAuthenticationOnly).await;
    let out = tokio::task::block_in_place(|| {
        with_pin(
            send_with_card(&dir, r.port, &w.county.fpr, &card, &module, "receipts-x"),
            softhsm::PIN,
        )
    });
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("this card has only a card-authentication certificate"),
        "{said}"
    );
    assert!(!said.contains("PIN for card"), "{said}");
    assert_eq!(w.ballots_stored(), 0);
    r.stop().await;
}

#[test]
fn the_card_command_shows_a_support_desk_what_is_on_the_card() {
    let Some(module) = softhsm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pki = devpki::generate(testkit::now()).unwrap();
    let card = softhsm::cac(
        &module,
        &pki,
        dir.path(),
        "CAC maria",
        ("GARCIA", "MARIA", "3456789012"),
        KeyAlg::Rsa2048,
        Carries::Both,
    );
    let out = card
        .command(env!("CARGO_BIN_EXE_ballot-return"))
        .args(["card", "--pkcs11-module"])
        .arg(&module)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for expected in [
        "Card: 'CAC maria'",
        "PIN: not locked",
        "Certificates on the card: 2",
        "for:     PIV Authentication",
        "for:     Digital Signature",
        "EDIPI:   3456789012",
        "CN=GARCIA.MARIA.X.3456789012",
        "key:     RSA 2048",
        "days left",
        "ballot-return logs in with 'Certificate for PIV Authentication' and signs ballots with 'Certificate for Digital Signature'",
    ] {
        assert!(said.contains(expected), "{expected:?} not in:\n{said}");
    }

    // A reader with no initialised card, and a module that is not there.
    let empty = SoftCard::new(&module, &dir.path().join("other"), "x");
    std::fs::remove_dir_all(dir.path().join("other/tokens")).unwrap();
    std::fs::create_dir_all(dir.path().join("other/tokens")).unwrap();
    let out = empty
        .command(env!("CARGO_BIN_EXE_ballot-return"))
        .args(["card", "--pkcs11-module"])
        .arg(&module)
        .output()
        .unwrap();
    assert!(
        text(&out).contains("no card was found: insert your CAC"),
        "{}",
        text(&out)
    );
    let out = return_bin()
        .args(["card", "--pkcs11-module", "/nonexistent/module.so"])
        .output()
        .unwrap();
    assert!(
        text(&out).contains(
            "the card software /nonexistent/module.so could not be started: no such file"
        ),
        "{}",
        text(&out)
    );
}
