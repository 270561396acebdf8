//! The real binary, as an operator runs it: `ballot-gateway init`,
//! `import-setup`, `serve` (a child process on port 0), `export`. (The
//! voter's `ballot-return` is run as a program by the `voter` crate's
//! tests.)

use crate::fixture::ORIGIN;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn gateway_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ballot-gateway"))
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

#[test]
fn an_operator_and_a_voter_use_the_real_programs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pki = devpki::generate(time::OffsetDateTime::now_utc()).unwrap();
    pki.write_to(&dir.join("pki")).unwrap();
    let data = dir.join("data");
    let media = dir.join("media");
    // Every path relative to the working folder, as operators type them.
    let out = ok(gateway_bin()
        .current_dir(dir)
        .args(["init", "--log-origin", ORIGIN])
        .args(["--data-dir", "data", "--media-out", "media"]));
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

    // The county's ceremony, on the gateway's media.
    let spec = testkit::ElectionSpec::new(
        "voter_id,edipi,ballot_style\nV-1,1234567890,style-1\nV-4,4567890123,style-1\n",
    )
    .origin(ORIGIN)
    .anchors(vec![testkit::election::dod_anchor(&pki)]);
    let county = testkit::County::for_gateway(&spec, &dir.join("county"), &data, &media);
    let (fpr, media) = (county.fpr.clone(), county.media.clone());
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
    let toml = std::fs::read_to_string(&config).unwrap();
    // A configuration that trusts an anchor the signed manifest does not
    // pin (here the county voter CA besides the DoD root) is refused, and
    // the anchor is named with its hash.
    let rogue = format!(
        "{toml}[[trust.anchor]]\nname = \"County CA\"\ncertificate = \"pki/anchors/test-county-voter-ca.pem\"\nidentity = \"uri-prefix:urn:test-county:voter:\"\npolicies = [\"{}\"]\n",
        devpki::oid::DEV_COUNTY_VOTER
    );
    std::fs::write(dir.join("rogue.toml"), &rogue).unwrap();
    // `import-setup` with a configuration file; its error output.
    let import_refused = |config: &str| {
        let out = gateway_bin()
            .current_dir(dir)
            .args(["import-setup", "--election-fingerprint", &fpr])
            .args(["--config", config, "--media"])
            .arg(&media)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{config} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = import_refused("rogue.toml");
    assert!(
        err.contains("\"County CA\"") && err.contains("is not pinned in the signed manifest"),
        "{err}"
    );
    // So is one that widens the pinned anchor's policies.
    std::fs::write(
        dir.join("widened.toml"),
        format!("{toml}policies = [\"2.5.29.32.0\"]\n"),
    )
    .unwrap();
    let err = import_refused("widened.toml");
    assert!(err.contains("the manifest pins policies"), "{err}");
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
    let relative_media = media.strip_prefix(dir).unwrap();
    let out = ok(gateway_bin()
        .current_dir(dir)
        .args(["import-setup", "--election-fingerprint", &fpr])
        .args(["--config", "gateway.toml", "--media"])
        .arg(relative_media));
    assert!(out.contains("2 voters"), "{out}");
    // After the import, a configuration changed to disagree with the pins
    // does not start.
    let refused = gateway_bin()
        .current_dir(dir)
        .args(["serve", "--config", "rogue.toml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        err.contains("is not pinned in the signed manifest"),
        "{err}"
    );

    let mut server = gateway_bin()
        .current_dir(dir)
        .args(["serve", "--config", "gateway.toml"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("serve.log")).unwrap())
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

    // A voter's ballot, sent by the voter's library (the program itself
    // is tested in the voter crate).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let jane = &pki.voter("jane-p256").unwrap().issued;
    let upload = testkit::voters::upload(
        &county.manifest,
        &pki,
        jane,
        "style-1",
        b"%PDF-1.7 a marked ballot".to_vec(),
    );
    let answer = rt
        .block_on(voter::client::upload(
            &testkit::voters::client(&pki, Some(jane), port),
            &upload,
            voter::client::Retries::times(1),
            &mut |_| {},
            &mut |_| {},
        ))
        .unwrap();
    assert_eq!(answer.leaf_index, 0);

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
    // Its log, written to a file, is plain text: no terminal colour codes.
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    assert!(log.contains("serving"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file: {log:?}"
    );

    let out = ok(gateway_bin().current_dir(dir).args([
        "export",
        "--config",
        "gateway.toml",
        "--out",
        "usb",
    ]));
    assert!(out.contains("Bundle 1 written"), "{out}");
    assert!(dir.join("usb/bundle-000001/manifest.sig").is_file());
    let out = ok(gateway_bin()
        .args(["export", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.join("usb")));
    assert!(out.contains("Nothing new"), "{out}");

    // The county's signed status file for that bundle, imported back.
    let header = shared::bundle::BundleHeader::read(
        &mut std::fs::File::open(dir.join("usb/bundle-000001/manifest.bin")).unwrap(),
    )
    .unwrap();
    let note = shared::note::Note::parse(header.new_checkpoint.as_bytes()).unwrap();
    let status = shared::status::StatusFile {
        election_id: county.manifest.election_id.clone(),
        checkpoint: county.witness.cosign(&note, 1_800_000_000).unwrap(),
        statuses: vec![shared::status::Status::Valid],
    };
    std::fs::write(
        dir.join("status.signed"),
        shared::signed::sign_document(&status.to_bytes().unwrap(), &county.election_key, None)
            .unwrap(),
    )
    .unwrap();
    let out = ok(gateway_bin()
        .current_dir(dir)
        .args(["import-status", "--config", "gateway.toml"])
        .args(["--file", "status.signed"]));
    assert!(
        out.contains("imported the status of each of the 1 ballot(s) the county decided"),
        "{out}"
    );
}
