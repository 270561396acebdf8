//! Hostile media: every way a bundle can be wrong is refused with its own
//! error, and the verifier's state stays exactly as it was.

use rusqlite::Connection;
use shared::clock::{ManualClock, UnixTime};
use std::path::{Path, PathBuf};
use testkit::voters::{log_directly, Logged as Recorded};
use verifier::import::{import, ImportError, Imported};
use verifier::state::{self, Pins};

const ORIGIN: &str = "ballots.test-county.example/2026-general";

/// A ballot as a gateway logs it: voter id, identity, message, and the
/// time of receipt (or the clock's time).
pub(crate) type Logged = (String, String, Vec<u8>, Option<u64>);

/// A gateway after the county's real ceremony (from the test-support
/// crate), whose log the tests fill directly.
pub(crate) struct Gw {
    pub(crate) data: PathBuf,
    /// The signed manifest and roster.
    pub(crate) media: PathBuf,
    /// The gateway's public keys.
    pub(crate) gw_media: PathBuf,
    pub(crate) clock: ManualClock,
    /// The election key, unlocked.
    pub(crate) election_key: sequoia_openpgp::Cert,
    /// The witness key named in the manifest.
    pub(crate) witness_skey: String,
    /// The stand-in witnesses' keys (they cosign what is logged).
    pub(crate) stand_in_keys: Vec<String>,
}

impl Gw {
    pub(crate) fn new(dir: &Path) -> Gw {
        Self::with_roster(
            dir,
            "voter_id,edipi,ballot_style\nV-1,1234567890,s\n",
            (1_792_000_000, 1_794_000_000),
            None,
        )
    }

    /// With `anchors` pinned (a throwaway root when `None`).
    pub(crate) fn with_roster(
        dir: &Path,
        csv: &str,
        window: (u64, u64),
        anchors: Option<Vec<shared::pki::Anchor>>,
    ) -> Gw {
        let spec = testkit::ElectionSpec::new(csv);
        let spec = match anchors {
            Some(a) => spec.anchors(a),
            None => spec,
        };
        let c = spec
            .window(window.0, window.1)
            .origin(ORIGIN)
            .declaration("I am eligible.")
            .set_up(dir);
        Gw {
            data: c.gw,
            media: c.media,
            gw_media: c.gw_media,
            clock: c.clock,
            election_key: c.election_key,
            witness_skey: c.witness.to_skey().to_string(),
            stand_in_keys: c.stand_in_keys,
        }
    }

    fn fork(&self, dir: &Path) -> Gw {
        let data = dir.join("gw-fork");
        testkit::copy_dir(&self.data, &data);
        Gw {
            data,
            media: self.media.clone(),
            gw_media: self.gw_media.clone(),
            clock: self.clock.clone(),
            election_key: self.election_key.clone(),
            witness_skey: self.witness_skey.clone(),
            stand_in_keys: self.stand_in_keys.clone(),
        }
    }

    /// Logs ballots with these contents.
    pub(crate) fn submit(&self, contents: &[&str]) {
        let ballots: Vec<Logged> = contents
            .iter()
            .map(|c| {
                (
                    "V-1".to_owned(),
                    "edipi:1234567890".to_owned(),
                    shared::pgp::encrypt(&self.election_key, c.as_bytes()).unwrap(),
                    None,
                )
            })
            .collect();
        self.submit_raw(&ballots);
    }

    /// Logs (voter id, identity, message, received_at) as a gateway would
    /// record them, with no checks: what a compromised gateway could log.
    pub(crate) fn submit_raw(&self, ballots: &[Logged]) {
        log_directly(
            &self.data,
            &self.clock,
            "2026-general",
            100,
            &self.stand_in_keys,
            ballots
                .iter()
                .map(|(voter_id, identity, message, at)| Recorded {
                    voter_id: voter_id.clone(),
                    identity: identity.clone(),
                    client_cert: vec![0x30, 0x00],
                    message: message.clone(),
                    at: *at,
                    witnessed_at: None,
                }),
        );
    }

    pub(crate) fn export_with(&self, out: &Path, crls: &[Vec<u8>], inter: &[Vec<u8>]) -> PathBuf {
        gateway::export::export(&self.data, crls, inter, out, false, &self.clock)
            .unwrap()
            .unwrap()
            .dir
    }

    pub(crate) fn export(&self, out: &Path) -> PathBuf {
        gateway::export::export(&self.data, &[b"crl".to_vec()], &[], out, false, &self.clock)
            .unwrap()
            .unwrap()
            .dir
    }

    pub(crate) fn pins(&self, election_id: &str) -> Pins {
        let media = &self.gw_media;
        let transfer = shared::pgp::read_public_cert(
            &std::fs::read(media.join(shared::media::GATEWAY_TRANSFER_KEY)).unwrap(),
        )
        .unwrap();
        Pins {
            election_id: election_id.into(),
            transfer_cert: shared::pgp::public_bytes(&transfer).unwrap(),
            log_key: std::fs::read_to_string(media.join(shared::media::GATEWAY_LOG_KEY))
                .unwrap()
                .trim()
                .into(),
            witnesses: self
                .manifest()
                .witnesses
                .iter()
                .map(|w| w.key.clone())
                .collect(),
            witness_quorum: self.manifest().witness_quorum,
        }
    }

    /// The signed manifest the ceremony wrote.
    pub(crate) fn manifest(&self) -> shared::manifest::ElectionManifest {
        shared::manifest::ElectionManifest::open_signed(
            &std::fs::read(self.media.join(shared::media::ELECTION_MANIFEST)).unwrap(),
            &shared::pgp::fingerprint_hex(&self.election_key),
        )
        .unwrap()
    }
}

pub(crate) fn verifier_db(dir: &Path, name: &str, pins: &Pins) -> Connection {
    let c = state::open(&dir.join(name)).unwrap();
    state::set_pins(&c, pins).unwrap();
    c
}

/// Everything the verifier has imported, as a comparable snapshot.
fn snapshot(c: &Connection) -> (i64, i64, i64, Vec<u8>) {
    let leaves: i64 = c
        .query_row("SELECT COUNT(*) FROM leaves", [], |r| r.get(0))
        .unwrap();
    let bundles: i64 = c
        .query_row("SELECT COUNT(*) FROM bundles", [], |r| r.get(0))
        .unwrap();
    let witnessed: i64 = c
        .query_row("SELECT COUNT(*) FROM witnessed", [], |r| r.get(0))
        .unwrap();
    let mut hashes = Vec::new();
    let mut stmt = c
        .prepare("SELECT leaf_hash FROM leaves ORDER BY leaf_index")
        .unwrap();
    for h in stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap() {
        hashes.extend(h.unwrap());
    }
    (leaves, bundles, witnessed, hashes)
}

pub(crate) fn run(c: &mut Connection, dir: &Path) -> Result<Imported, ImportError> {
    let clock = ManualClock::new(UnixTime(1_793_500_000));
    import(c, dir, &clock, &mut |_, _| {})
}

/// Expects a refusal and an unchanged state.
fn refused(c: &mut Connection, dir: &Path) -> ImportError {
    let before = snapshot(c);
    let e = run(c, dir).expect_err("the bundle should be refused");
    assert_eq!(
        snapshot(c),
        before,
        "a refused bundle changed the state ({e})"
    );
    e
}

#[test]
fn bundles_import_in_order_once_and_every_media_attack_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let g = Gw::new(dir);
    let f = g.fork(dir);
    let usb = dir.join("usb");
    let fork_usb = dir.join("usb-fork");
    g.submit(&["a", "b"]);
    let b1 = g.export(&usb);
    g.submit(&["c"]);
    let b2 = g.export(&usb);
    g.submit(&["d", "e"]);
    let b3 = g.export(&usb);
    f.submit(&["x"]);
    let f1 = f.export(&fork_usb);
    f.submit(&["y"]);
    let f2 = f.export(&fork_usb);

    let mut v = verifier_db(dir, "v.db", &g.pins("2026-general"));
    let mut seen = Vec::new();
    let clock = ManualClock::new(UnixTime(1_793_500_000));
    assert_eq!(
        import(&mut v, &b1, &clock, &mut |i, n| seen.push((i, n))).unwrap(),
        Imported::New {
            sequence: 1,
            entries: 2,
            log_size: 2
        }
    );
    assert_eq!(seen, vec![(1, 2), (2, 2)], "progress is reported per entry");
    assert_eq!(
        run(&mut v, &b1).unwrap(),
        Imported::AlreadyImported(1),
        "importing twice is a no-op"
    );
    assert!(matches!(
        refused(&mut v, &b3),
        ImportError::Gap {
            expected: 2,
            found: 3
        }
    ));
    assert!(matches!(
        run(&mut v, &b2).unwrap(),
        Imported::New { sequence: 2, .. }
    ));
    assert!(matches!(
        refused(&mut v, &f1),
        ImportError::Rollback { last: 2, found: 1 }
    ));
    assert!(matches!(refused(&mut v, &f2), ImportError::Replay(2)));
    assert!(matches!(
        run(&mut v, &b3).unwrap(),
        Imported::New {
            sequence: 3,
            log_size: 5,
            ..
        }
    ));

    // A verifier that followed the fork cannot take the real log's bundle 2.
    let mut v2 = verifier_db(dir, "v2.db", &g.pins("2026-general"));
    run(&mut v2, &f1).unwrap();
    assert!(matches!(
        refused(&mut v2, &b2),
        ImportError::Inconsistent(_)
    ));
    // Another election.
    let mut v3 = verifier_db(dir, "v3.db", &g.pins("2026-primary"));
    assert!(matches!(
        refused(&mut v3, &b1),
        ImportError::WrongElection { .. }
    ));
}

/// A fresh verifier and a fresh copy of bundle 1 for each attack.
fn attack(name: &str, damage: impl FnOnce(&Path)) -> ImportError {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let g = Gw::new(dir);
    g.submit(&["first ballot", "second ballot"]);
    let b1 = g.export(&dir.join("usb"));
    damage(&b1);
    let mut v = verifier_db(dir, "v.db", &g.pins("2026-general"));
    let e = refused(&mut v, &b1);
    eprintln!("{name}: {e}");
    e
}

fn ballot(b: &Path, i: u64) -> PathBuf {
    b.join(shared::bundle::ballot_file_name(i))
}

#[test]
fn a_tampered_manifest_is_refused_before_it_is_parsed() {
    let e = attack("tampered manifest", |b| {
        let p = b.join("manifest.bin");
        let mut m = std::fs::read(&p).unwrap();
        let n = m.len() - 10;
        m[n] ^= 1;
        std::fs::write(p, m).unwrap();
    });
    assert!(matches!(e, ImportError::BadSignature(_)), "{e}");
}

#[test]
fn a_missing_or_foreign_signature_is_refused() {
    let e = attack("missing signature", |b| {
        std::fs::remove_file(b.join("manifest.sig")).unwrap()
    });
    assert!(
        matches!(e, ImportError::Missing(ref n) if n == "manifest.sig"),
        "{e}"
    );
    let e = attack("signature by another key", |b| {
        let other = shared::pgp::generate_signing_key("someone", None).unwrap();
        let m = std::fs::read(b.join("manifest.bin")).unwrap();
        std::fs::write(
            b.join("manifest.sig"),
            shared::pgp::sign_detached(&other, None, &m).unwrap(),
        )
        .unwrap();
    });
    assert!(matches!(e, ImportError::BadSignature(_)), "{e}");
}

#[test]
fn missing_extra_swapped_linked_and_oversized_files_are_refused() {
    let e = attack("missing ballot", |b| {
        std::fs::remove_file(ballot(b, 1)).unwrap()
    });
    assert!(matches!(e, ImportError::Missing(_)), "{e}");
    let e = attack("extra ballot", |b| {
        std::fs::write(b.join("ballots/0000000000000002.pgp"), b"extra").unwrap()
    });
    assert!(matches!(e, ImportError::ExtraFile(_)), "{e}");
    let e = attack("extra top-level file", |b| {
        std::fs::write(b.join("autorun.inf"), b"x").unwrap()
    });
    assert!(
        matches!(e, ImportError::ExtraFile(ref n) if n == "autorun.inf"),
        "{e}"
    );
    let e = attack("swapped ballots", |b| {
        let (p0, p1) = (ballot(b, 0), ballot(b, 1));
        let (a, c) = (std::fs::read(&p0).unwrap(), std::fs::read(&p1).unwrap());
        std::fs::write(&p0, c).unwrap();
        std::fs::write(&p1, a).unwrap();
    });
    assert!(
        matches!(
            e,
            ImportError::FileMismatch { .. } | ImportError::TooLarge { .. }
        ),
        "{e}"
    );
    let e = attack("symlink", |b| {
        let p = ballot(b, 0);
        let moved = b.parent().unwrap().join("elsewhere.pgp");
        std::fs::rename(&p, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &p).unwrap();
    });
    assert!(matches!(e, ImportError::NotRegular(_)), "{e}");
    let e = attack("linked folder", |b| {
        let d = b.join("ballots");
        let moved = b.parent().unwrap().join("ballots-elsewhere");
        std::fs::rename(&d, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &d).unwrap();
    });
    assert!(matches!(e, ImportError::NotFolder(_)), "{e}");
    let e = attack("oversized ballot", |b| {
        let p = ballot(b, 1);
        let mut data = std::fs::read(&p).unwrap();
        data.extend(std::iter::repeat_n(0u8, 100_000));
        std::fs::write(p, data).unwrap();
    });
    assert!(matches!(e, ImportError::TooLarge { .. }), "{e}");
    let e = attack("a CRL beyond the listed count", |b| {
        std::fs::write(b.join("crls/0002.crl"), b"x").unwrap()
    });
    assert!(
        matches!(e, ImportError::ExtraFile(ref n) if n == "crls/0002.crl"),
        "{e}"
    );
    let e = attack("a ballot name in another form", |b| {
        std::fs::write(b.join("ballots/1.pgp"), b"x").unwrap()
    });
    assert!(
        matches!(e, ImportError::ExtraFile(ref n) if n == "ballots/1.pgp"),
        "{e}"
    );
    let e = attack("altered CRL", |b| {
        std::fs::write(b.join("crls/0001.crl"), b"crX").unwrap()
    });
    assert!(matches!(e, ImportError::FileMismatch { .. }), "{e}");
}

/// Issue 11: the witnessed checkpoints a bundle carries are the county's
/// only source of time, so each must be this log's and cosigned by a quorum.
#[test]
fn witnessed_checkpoints_of_another_log_or_short_of_the_quorum_are_refused() {
    // The gateway had the witnesses cosign a fork (the log it shows voters)
    // and exports the county's log with the fork's witnessed checkpoints.
    let tmp = tempfile::tempdir().unwrap();
    let g = Gw::new(tmp.path());
    let f = g.fork(tmp.path());
    g.submit(&["a", "b"]);
    f.submit(&["x", "y"]);
    let c = Connection::open(gateway::store::db_path(&g.data)).unwrap();
    c.execute("DELETE FROM witnessed", []).unwrap();
    drop(c);
    testkit::voters::copy_witnessed(&f.data, &g.data);
    let b = g.export(&tmp.path().join("usb"));
    let mut v = verifier_db(tmp.path(), "v.db", &g.pins("2026-general"));
    let e = refused(&mut v, &b);
    println!("ballot-verifier import says: {e}");
    assert!(matches!(e, ImportError::Witnessed(_)), "{e}");
    assert!(e.to_string().contains("(fork)"), "{e}");

    // A checkpoint only one of the three witnesses cosigned (the quorum is
    // two).
    let tmp = tempfile::tempdir().unwrap();
    let g = Gw::new(tmp.path());
    g.submit(&["a"]);
    let c = Connection::open(gateway::store::db_path(&g.data)).unwrap();
    c.execute("DELETE FROM witnessed", []).unwrap();
    drop(c);
    testkit::voters::witness_latest(&g.data, &g.stand_in_keys[..1], UnixTime(1_793_000_100));
    let b = g.export(&tmp.path().join("usb"));
    let mut v = verifier_db(tmp.path(), "v.db", &g.pins("2026-general"));
    let e = refused(&mut v, &b);
    println!("ballot-verifier import says: {e}");
    assert!(
        e.to_string()
            .contains("1 of the election's witnesses; 2 are needed"),
        "{e}"
    );

    // Honest: each checkpoint cosigned, then at the deadline the closing
    // checkpoint cosigned again with nothing new logged: a bundle with no
    // entries carries it, and imports.
    let tmp = tempfile::tempdir().unwrap();
    let g = Gw::new(tmp.path());
    g.submit(&["a", "b"]);
    let usb = tmp.path().join("usb");
    let b1 = g.export(&usb);
    assert!(
        gateway::export::export(&g.data, &[], &[], &usb, false, &g.clock)
            .unwrap()
            .is_none(),
        "nothing new: no bundle"
    );
    testkit::voters::witness_latest(&g.data, &g.stand_in_keys, UnixTime(1_794_000_060));
    let b2 = g.export(&usb);
    let mut v = verifier_db(tmp.path(), "v.db", &g.pins("2026-general"));
    run(&mut v, &b1).unwrap();
    assert_eq!(
        run(&mut v, &b2).unwrap(),
        Imported::New {
            sequence: 2,
            entries: 0,
            log_size: 2
        }
    );
    let stored: Vec<(i64, i64)> = v
        .prepare("SELECT size, quorum_time FROM witnessed ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert_eq!(stored[2], (2, 1_794_000_060));
}

/// A busy gateway witnesses far more checkpoints between two exports than a
/// bundle carries: the bundle keeps 64 of them, the last one among them,
/// and imports.
#[test]
fn a_bundle_carries_at_most_64_witnessed_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let g = Gw::new(tmp.path());
    g.submit(&["a"]);
    for i in 0..200 {
        testkit::voters::witness_latest(&g.data, &g.stand_in_keys, UnixTime(1_793_000_200 + i));
    }
    let b = g.export(&tmp.path().join("usb"));
    let mut v = verifier_db(tmp.path(), "v.db", &g.pins("2026-general"));
    run(&mut v, &b).unwrap();
    let times: Vec<i64> = v
        .prepare("SELECT quorum_time FROM witnessed ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(times.len(), shared::bundle::MAX_WITNESSED);
    assert_eq!(times.last(), Some(&(1_793_000_200 + 199)));
    assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first");
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .unwrap();
}

#[test]
fn fifos_and_links_swapped_in_during_import_never_hang_it_and_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let g = Gw::new(dir);
    g.submit(&["first ballot", "second ballot", "third ballot"]);
    let b1 = g.export(&dir.join("usb"));
    let target = ballot(&b1, 1);
    let real = std::fs::read(&target).unwrap();
    // The swap-ins are made beside the bundle (same file system) and
    // renamed over ballot 1, which is then put back. The link points to a
    // FIFO: following it would block the import.
    let swap = dir.join("swap");
    std::fs::create_dir(&swap).unwrap();
    mkfifo(&swap.join("target-fifo"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, swap, target, real) = (stop.clone(), swap.clone(), target.clone(), real.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let odd = swap.join(format!("odd-{n}"));
                if n % 2 == 0 {
                    mkfifo(&odd);
                } else {
                    std::os::unix::fs::symlink(swap.join("target-fifo"), &odd).unwrap();
                }
                std::fs::rename(&odd, &target).unwrap();
                std::thread::yield_now();
                let back = swap.join(format!("real-{n}"));
                std::fs::write(&back, &real).unwrap();
                std::fs::rename(&back, &target).unwrap();
                std::thread::yield_now();
                n += 1;
            }
            n
        })
    };
    let pins = g.pins("2026-general");
    let mut outcomes: std::collections::BTreeMap<String, u32> = Default::default();
    for i in 0..150 {
        let mut v = verifier_db(dir, &format!("v{i}.db"), &pins);
        let b = b1.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            let r = run(&mut v, &b);
            let stored: Option<Vec<u8>> = r.as_ref().ok().map(|_| {
                v.query_row(
                    "SELECT ciphertext FROM leaves WHERE leaf_index = 1",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
            });
            let _ = tx.send((r.map_err(|e| e.to_string()), stored));
        });
        let Ok((r, stored)) = rx.recv_timeout(std::time::Duration::from_secs(60)) else {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            panic!("import {i} hung (opened a FIFO, or followed a link to one)");
        };
        worker.join().unwrap();
        let key = match r {
            Ok(_) => {
                assert_eq!(stored.as_deref(), Some(&real[..]), "import {i}");
                "imported".to_owned()
            }
            Err(e) => {
                assert!(
                    e.contains("is not a regular file") || e.contains("is missing"),
                    "import {i}: {e}"
                );
                e
            }
        };
        *outcomes.entry(key).or_default() += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let swaps = swapper.join().unwrap();
    println!("{swaps} swaps during 150 imports: {outcomes:#?}");
}

#[test]
fn names_on_the_media_reach_the_operator_escaped() {
    let forged = "x\u{1b}[2K\r\u{1b}[32mImported bundle 3: all checks passed\n\u{202e}";
    for (what, damage) in [
        (
            "an extra ballot file",
            Box::new(|b: &Path| std::fs::write(b.join("ballots").join(forged), b"x").unwrap())
                as Box<dyn FnOnce(&Path)>,
        ),
        (
            "an extra top-level file",
            Box::new(|b: &Path| std::fs::write(b.join(forged), b"x").unwrap()),
        ),
        (
            "a name that is not UTF-8",
            Box::new(|b: &Path| {
                use std::os::unix::ffi::OsStrExt;
                let name = std::ffi::OsStr::from_bytes(b"\xff\x1b[2Kfake\n");
                std::fs::write(b.join("ballots").join(name), b"x").unwrap()
            }),
        ),
    ] {
        let e = attack(what, damage).to_string();
        println!("{what}: {e}");
        assert!(
            !e.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{what}: {e:?}"
        );
        assert!(e.contains("\\u{1b}[2K"), "{what}: {e}");
    }
}

#[test]
fn a_bundle_imported_before_is_checked_again_and_tampering_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let g = Gw::new(dir);
    g.submit(&["first ballot", "second ballot"]);
    let b1 = g.export(&dir.join("usb"));
    let mut v = verifier_db(dir, "v.db", &g.pins("2026-general"));
    assert!(matches!(run(&mut v, &b1).unwrap(), Imported::New { .. }));
    // The same bytes: a no-op.
    assert_eq!(run(&mut v, &b1).unwrap(), Imported::AlreadyImported(1));
    let pristine = dir.join("pristine");
    testkit::copy_dir(&b1, &pristine);
    let other = std::fs::read(ballot(&b1, 0)).unwrap();
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "a ballot replaced",
            Box::new(move |b| std::fs::write(ballot(b, 1), &other).unwrap()),
        ),
        (
            "an extra file",
            Box::new(|b| std::fs::write(b.join("ballots/extra.pgp"), b"x").unwrap()),
        ),
        (
            "a FIFO for a ballot",
            Box::new(|b| {
                std::fs::remove_file(ballot(b, 1)).unwrap();
                mkfifo(&ballot(b, 1));
            }),
        ),
        (
            "ballots/ pointing to /etc",
            Box::new(|b| {
                std::fs::remove_dir_all(b.join("ballots")).unwrap();
                std::os::unix::fs::symlink("/etc", b.join("ballots")).unwrap();
            }),
        ),
        (
            "a CRL changed",
            Box::new(|b| std::fs::write(b.join(shared::bundle::crl_file_name(0)), b"lrc").unwrap()),
        ),
    ];
    for (what, damage) in cases {
        damage(&b1);
        let e = refused(&mut v, &b1);
        println!("{what}: {e}");
        assert!(
            matches!(e, ImportError::Tampered { sequence: 1, .. }),
            "{what}: {e}"
        );
        // Put back, it is a no-op again.
        std::fs::remove_dir_all(&b1)
            .or_else(|_| std::fs::remove_file(&b1))
            .unwrap();
        testkit::copy_dir(&pristine, &b1);
        assert_eq!(run(&mut v, &b1).unwrap(), Imported::AlreadyImported(1));
    }
}

#[test]
fn a_bundle_may_bring_only_so_many_crls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let g = Gw::new(dir);
    g.submit(&["a ballot"]);
    let crls: Vec<Vec<u8>> = (0..=verifier::import::MAX_CRLS)
        .map(|i| format!("crl {i}").into_bytes())
        .collect();
    let b1 = g.export_with(&dir.join("usb"), &crls, &[]);
    let mut v = verifier_db(dir, "v.db", &g.pins("2026-general"));
    let e = refused(&mut v, &b1);
    println!("{e}");
    assert!(
        matches!(e, ImportError::TooManyCrls { count: 65, .. }),
        "{e}"
    );
}

#[test]
fn an_export_interrupted_before_its_move_is_finished_by_the_next_and_the_verifier_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let g = Gw::new(dir);
    let usb = dir.join("usb");
    let mut v = verifier_db(dir, "v.db", &g.pins("2026-general"));
    g.submit(&["a", "b"]);
    let b1 = g.export(&usb);
    assert!(matches!(
        run(&mut v, &b1).unwrap(),
        Imported::New { sequence: 1, .. }
    ));
    let db = || rusqlite::Connection::open(gateway::store::db_path(&g.data)).unwrap();

    // The gateway stopped after recording bundle 2 and before moving its
    // finished folder into place: put it back where it was finished.
    g.submit(&["c"]);
    let b2 = g.export(&usb);
    let partial: String = db()
        .query_row(
            "SELECT partial_dir FROM exports WHERE sequence = 2",
            [],
            |r| r.get(0),
        )
        .unwrap();
    std::fs::rename(&b2, &partial).unwrap();
    db().execute("UPDATE exports SET state = 'moving' WHERE sequence = 2", [])
        .unwrap();
    g.submit(&["d"]);
    // The next export finishes the move of bundle 2 (and writes nothing
    // new); the one after writes bundle 3.
    let again = g.export(&usb);
    assert_eq!(again, b2);
    assert!(!Path::new(&partial).exists());
    assert!(matches!(
        run(&mut v, &b2).unwrap(),
        Imported::New { sequence: 2, .. }
    ));
    let b3 = g.export(&usb);
    assert!(matches!(
        run(&mut v, &b3).unwrap(),
        Imported::New {
            sequence: 3,
            log_size: 4,
            ..
        }
    ));

    // Stopped after the move, before noting it done: the next export
    // notes it and goes on with bundle 4.
    g.submit(&["e"]);
    db().execute("UPDATE exports SET state = 'moving' WHERE sequence = 3", [])
        .unwrap();
    let b4 = g.export(&usb);
    assert!(
        b4.ends_with(shared::media::bundle_dir(4)),
        "{}",
        b4.display()
    );
    assert!(matches!(
        run(&mut v, &b4).unwrap(),
        Imported::New { sequence: 4, .. }
    ));
}
