//! The real binaries, as an operator and a voter run them: `ballot-gateway
//! init`, `import-setup`, `serve` (a child process on port 0), `export`,
//! and `ballot-return send` and `status`.

use crate::fixture::{ELECTION, ORIGIN};
use shared::clock::UnixTime;
use shared::manifest::{ElectionManifest, MediaRule, ReplacementRule};
use shared::note::{NoteSigner, TYPE_COSIGNATURE};
use shared::roster::Roster;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn gateway_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ballot-gateway"))
}

fn return_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ballot-return"))
}

fn ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn send(dir: &Path, port: u16, fpr: &str, voter: &str, receipt: &str) -> std::process::Output {
    let pki = dir.join("pki");
    return_bin()
        .args(["send", "--gateway", &format!("https://localhost:{port}")])
        .arg("--ca")
        .arg(pki.join("anchors/test-dod-root-ca-3.pem"))
        .arg("--cert")
        .arg(pki.join(format!("voters/{voter}.cert.pem")))
        .arg("--key")
        .arg(pki.join(format!("voters/{voter}.key.pem")))
        .arg("--chain")
        .arg(pki.join("intermediates/test-dod-id-ca-59.pem"))
        .args([
            "--election-fingerprint",
            fpr,
            "--ballot-style",
            "style-1",
            "--accept-declaration",
        ])
        .arg("--ballot")
        .arg(dir.join("ballot.pdf"))
        .arg("--receipt")
        .arg(dir.join(receipt))
        .output()
        .unwrap()
}

#[test]
fn an_operator_and_a_voter_use_the_real_programs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = devpki::generate(time::OffsetDateTime::now_utc()).unwrap();
    pki.write_to(&dir.join("pki")).unwrap();
    let data = dir.join("data");
    let media = dir.join("media");
    let out = ok(gateway_bin()
        .args(["init", "--log-origin", ORIGIN])
        .arg("--data-dir")
        .arg(&data)
        .arg("--media-out")
        .arg(&media));
    assert!(out.contains("Gateway keys created"), "{out}");
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(data.join("keys/transfer.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);

    // What the county's verifier would put on the media.
    let transfer =
        shared::pgp::read_public_cert(&std::fs::read(media.join("gateway-transfer.pgp")).unwrap())
            .unwrap();
    let election_key = shared::pgp::generate_election_key("Test County Election", None).unwrap();
    let fpr = shared::pgp::fingerprint_hex(&election_key);
    let t = time::OffsetDateTime::now_utc().unix_timestamp() as u64;
    let manifest = ElectionManifest {
        election_id: ELECTION.into(),
        title: "General Election".into(),
        jurisdiction: "Test County".into(),
        opens_at: UnixTime(t - 600),
        closes_at: UnixTime(t + 86_400),
        election_cert: shared::pgp::public_bytes(&election_key).unwrap(),
        gateway_transfer_fpr: shared::pgp::fingerprint_hex(&transfer),
        log_origin: ORIGIN.into(),
        log_key: std::fs::read_to_string(media.join("gateway-log.vkey"))
            .unwrap()
            .trim()
            .into(),
        witness_key: NoteSigner::generate("county.test.example/witness", TYPE_COSIGNATURE)
            .unwrap()
            .verifier()
            .to_vkey(),
        accepted_media: vec![MediaRule {
            media_type: "application/pdf".into(),
            max_size: 1 << 20,
        }],
        replacement_rule: ReplacementRule::LatestBeforeDeadline,
        declaration: "I am eligible to vote in this election.".into(),
    };
    let roster = Roster::from_csv(
        ELECTION,
        "voter_id,edipi,ballot_style\nV-1,1234567890,style-1\nV-4,4567890123,style-1\n",
    )
    .unwrap();
    std::fs::write(
        media.join("election-manifest.signed"),
        shared::signed::sign_document(&manifest.to_bytes().unwrap(), &election_key, None).unwrap(),
    )
    .unwrap();
    std::fs::write(
        media.join("roster.signed"),
        shared::signed::sign_document(&roster.to_bytes().unwrap(), &election_key, None).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("gateway.toml"),
        r#"
data_dir = "data"
[server]
listen = "127.0.0.1:0"
health_listen = "127.0.0.1:0"
[tls]
certificate = "pki/server/localhost.cert.pem"
private_key = "pki/server/localhost.key.pem"
[trust]
intermediates_dir = "pki/intermediates"
crls_dir = "pki/crls"
[[trust.anchor]]
name = "Test DoD Root CA 3"
certificate = "pki/anchors/test-dod-root-ca-3.pem"
identity = "edipi"
"#,
    )
    .unwrap();
    let config = dir.join("gateway.toml");
    // A wrong fingerprint is refused.
    let bad = gateway_bin()
        .args(["import-setup", "--election-fingerprint", &"0".repeat(64)])
        .arg("--config")
        .arg(&config)
        .arg("--media")
        .arg(&media)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("does not verify"));
    let out = ok(gateway_bin()
        .args(["import-setup", "--election-fingerprint", &fpr])
        .arg("--config")
        .arg(&config)
        .arg("--media")
        .arg(&media));
    assert!(out.contains("2 voters"), "{out}");

    let mut server = gateway_bin()
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .split("https://127.0.0.1:")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let health: String = line
        .split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches(")\n")
        .into();

    std::fs::write(dir.join("ballot.pdf"), b"%PDF-1.7 a marked ballot").unwrap();
    let sent = send(dir, port, &fpr, "jane-p256", "jane.json");
    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(
        stdout.contains("received and logged as entry 0"),
        "{stdout}"
    );

    let refused = send(dir, port, &fpr, "rick-revoked", "rick.json");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("NOT sent"));

    let status = return_bin()
        .args(["status", "--gateway", &format!("https://localhost:{port}")])
        .arg("--ca")
        .arg(dir.join("pki/anchors/test-dod-root-ca-3.pem"))
        .arg("--cert")
        .arg(dir.join("pki/voters/jane-p256.cert.pem"))
        .arg("--key")
        .arg(dir.join("pki/voters/jane-p256.key.pem"))
        .arg("--chain")
        .arg(dir.join("pki/intermediates/test-dod-id-ca-59.pem"))
        .arg("--receipt")
        .arg(dir.join("jane.json"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(stdout.contains("has not processed it yet"), "{stdout}");

    // curl, an independent client, reads the health endpoint.
    let h = Command::new("curl")
        .args(["-s", &format!("http://{health}")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&h.stdout).contains("\"log_size\":1"),
        "{h:?}"
    );

    // SIGTERM drains and stops the server.
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());

    let out = ok(gateway_bin()
        .args(["export", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.join("usb")));
    assert!(out.contains("Bundle 1 written"), "{out}");
    assert!(dir.join("usb/bundle-000001/manifest.sig").is_file());
    let out = ok(gateway_bin()
        .args(["export", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.join("usb")));
    assert!(out.contains("Nothing new"), "{out}");
}
