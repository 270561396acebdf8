//! The key ceremony, passphrase handling, the air-gap guard, and audits.

use shared::clock::{ManualClock, UnixTime};
use shared::manifest::MediaRule;
use std::os::unix::fs::PermissionsExt;
use verifier::ceremony::{self, ElectionParams};

pub(crate) fn params() -> ElectionParams {
    ElectionParams {
        election_id: "2026-general".into(),
        title: "General Election".into(),
        jurisdiction: "Test County".into(),
        opens_at: UnixTime(1_790_000_000),
        closes_at: UnixTime(1_793_732_400),
        declaration: "I am eligible to vote in this election.".into(),
        accepted_media: vec![MediaRule {
            media_type: "application/pdf".into(),
            max_size: 5 << 20,
        }],
        witness_name: "elections.test-county.example/verifier".into(),
        witnesses: vec![shared::manifest::ManifestWitness {
            key: shared::note::NoteSigner::generate(
                "observer.test.example/w",
                shared::note::TYPE_COSIGNATURE,
            )
            .unwrap()
            .verifier()
            .to_vkey(),
            url: "https://observer.test.example/".into(),
        }],
        witness_quorum: 1,
        grace_seconds: 600,
        anchors: vec![testkit::election::throwaway_anchor()],
    }
}

#[test]
fn init_creates_protected_keys_and_signed_media_the_gateway_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let clock = ManualClock::new(UnixTime(1_789_000_000));
    gateway::setup::init(
        &d.join("gw"),
        "ballots.test-county.example/2026-general",
        &d.join("gw-media"),
        &clock,
    )
    .unwrap();
    let pw = sequoia_openpgp::crypto::Password::from("correct horse battery staple");
    // A bad roster: every problem reported with its line, nothing created.
    let e = ceremony::init(
        &d.join("home"),
        &d.join("gw-media"),
        &d.join("out"),
        &params(),
        "voter_id,edipi,ballot_style\nV-1,12345,s\nV-2,1234567890\n",
        &pw,
        &clock,
    )
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("2 problem(s)") && msg.contains("line 2") && msg.contains("line 3"),
        "{msg}"
    );
    assert!(!d.join("home/keys").exists());

    let fpr = ceremony::init(
        &d.join("home"),
        &d.join("gw-media"),
        &d.join("out"),
        &params(),
        "voter_id,edipi,ballot_style\nV-1,1234567890,s\n",
        &pw,
        &clock,
    )
    .unwrap();
    for k in ["election.key", ceremony::WITNESS_KEY_FILE] {
        let mode = std::fs::metadata(d.join("home/keys").join(k))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{k}");
    }
    // The secret key file is passphrase-protected: unusable without it.
    // The witness key is protected too: sealed, nothing opens without the
    // passphrase, and its secret is not in the file.
    let e = ceremony::load(&d.join("home"), &"wrong passphrase!".into()).unwrap_err();
    assert!(
        format!("{e:#}").contains("the witness key did not open"),
        "{e:#}"
    );
    let loaded = ceremony::load(&d.join("home"), &pw).unwrap();
    let skey = loaded.witness.to_skey();
    // PRIVATE+KEY+<name>+<id>+<base64 key> (the base64 may hold '+' too).
    let secret_part = skey.splitn(5, '+').nth(4).unwrap();
    assert!(secret_part.len() > 40, "{}", secret_part.len());
    let sealed = std::fs::read(d.join("home/keys").join(ceremony::WITNESS_KEY_FILE)).unwrap();
    assert!(!sealed
        .windows(secret_part.len())
        .any(|w| w == secret_part.as_bytes()));
    assert!(loaded
        .election_key
        .keys()
        .secret()
        .all(|k| k.key().secret().is_encrypted()));
    let msg = shared::pgp::encrypt(&loaded.election_key, b"x").unwrap();
    assert!(shared::pgp::decrypt(&msg, &loaded.election_key, None, 100).is_err());
    assert!(shared::pgp::decrypt(
        &msg,
        &loaded.election_key,
        Some(&"wrong passphrase!".into()),
        100
    )
    .is_err());
    assert_eq!(
        shared::pgp::decrypt(&msg, &loaded.election_key, Some(&pw), 100).unwrap(),
        b"x"
    );
    // The passphrase appears nowhere in the key file.
    let file = std::fs::read(d.join("home/keys/election.key")).unwrap();
    assert!(!file.windows(8).any(|w| w == b"correct "));
    // A second init refuses to replace the key.
    assert!(ceremony::init(
        &d.join("home"),
        &d.join("gw-media"),
        &d.join("out2"),
        &params(),
        "voter_id,edipi,ballot_style\n",
        &pw,
        &clock
    )
    .is_err());
    // The gateway imports what init wrote, pinned by the fingerprint.
    let summary = gateway::setup::import_setup(
        &d.join("gw"),
        &params().anchors,
        &d.join("out"),
        &fpr,
        &clock,
    )
    .unwrap();
    assert!(summary.contains("1 voters"), "{summary}");
}

#[test]
fn passphrases_come_from_a_file_descriptor_or_the_environment_never_argv() {
    // A file descriptor: open a file and pass its number.
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        tmp.path(),
        "a long enough passphrase\nignored second line\n",
    )
    .unwrap();
    let f = std::fs::File::open(tmp.path()).unwrap();
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd() as u32;
    let pw = ceremony::read_passphrase(Some(fd), "", false).unwrap();
    pw.map(|p| assert_eq!(&p[..], b"a long enough passphrase"));
    // Too short is refused.
    std::fs::write(tmp.path(), "short\n").unwrap();
    let f2 = std::fs::File::open(tmp.path()).unwrap();
    assert!(ceremony::read_passphrase(Some(f2.as_raw_fd() as u32), "", false).is_err());
}

#[test]
fn the_air_gap_guard_names_the_interfaces_that_are_up() {
    let up = verifier::airgap::interfaces_up();
    assert!(!up.contains(&"lo".to_owned()));
    match verifier::airgap::air_gap_guard(false) {
        Ok(()) => assert!(up.is_empty()),
        Err(e) => {
            let m = e.to_string();
            assert!(up.iter().all(|i| m.contains(i.as_str())), "{m}");
            assert!(m.contains("air-gapped"));
        }
    }
    verifier::airgap::air_gap_guard(true).unwrap();
}
