//! `ballot-witness` plays C2SP tlog-witness: it cosigns consistent
//! checkpoints and refuses rollbacks and forks with the protocol's errors.

use observer::witness::{self, Witness};
use shared::checkpoint::Checkpoint;
use shared::clock::{ManualClock, UnixTime};
use shared::merkle::{leaf_hash, Tree};
use shared::note::{Note, NoteSigner, NoteVerifier, TYPE_ED25519};
use shared::witness::AddCheckpoint;
use std::sync::Arc;

const ORIGIN: &str = "ballots.test.example/2026";

struct Log {
    key: NoteSigner,
    tree: Tree,
}

impl Log {
    fn new() -> Self {
        Log {
            key: NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap(),
            tree: Tree::new(),
        }
    }
    fn grow(&mut self, n: usize) {
        for _ in 0..n {
            let i = self.tree.size();
            self.tree.push(leaf_hash(format!("leaf {i}").as_bytes()));
        }
    }
    fn checkpoint(&self) -> String {
        let size = self.tree.size();
        Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: self.tree.root(size).unwrap(),
            extensions: vec![],
        }
        .sign(&self.key)
        .unwrap()
    }
    fn request(&self, old: u64) -> Vec<u8> {
        let size = self.tree.size();
        let proof = if old == 0 || old == size {
            vec![]
        } else {
            self.tree.consistency_proof(old, size).unwrap()
        };
        AddCheckpoint {
            old_size: old,
            proof,
            checkpoint: self.checkpoint().into_bytes(),
        }
        .to_bytes()
    }
}

fn witness_in(dir: &std::path::Path, clock: &ManualClock) -> Witness {
    Witness::open(dir, Arc::new(clock.clone())).unwrap()
}

#[test]
fn cosigns_consistent_checkpoints_and_refuses_rollbacks_and_forks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let vkey = witness::init(dir, "observers.test.example/w1").unwrap();
    let wv = NoteVerifier::from_vkey(&vkey).unwrap();
    let clock = ManualClock::new(UnixTime(1_800_000_000));
    let w = witness_in(dir, &clock);
    let mut log = Log::new();
    log.grow(3);

    // An unknown log: 404.
    assert_eq!(w.add_checkpoint(&log.request(0)).status, 404);
    w.add_log(&log.key.verifier().to_vkey()).unwrap();

    // Signed by a key other than the log's: 403.
    let impostor = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
    let forged = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: Checkpoint {
            origin: ORIGIN.into(),
            size: 3,
            root: log.tree.root(3).unwrap(),
            extensions: vec![],
        }
        .sign(&impostor)
        .unwrap()
        .into_bytes(),
    };
    assert_eq!(w.add_checkpoint(&forged.to_bytes()).status, 403);
    // Malformed: 400.
    assert_eq!(w.add_checkpoint(b"old 0\nnot a hash\n\nx").status, 400);

    // The first checkpoint: cosigned at the witness's time.
    let a = w.add_checkpoint(&log.request(0));
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let body = String::from_utf8(a.body).unwrap();
    assert!(body.starts_with("— observers.test.example/w1 ") && body.ends_with('\n'));
    let cp = Note::parse(log.checkpoint().as_bytes()).unwrap();
    let joined = Note::parse(format!("{}{}", cp.to_text(), body).as_bytes()).unwrap();
    assert_eq!(joined.verify(&wv).unwrap(), Some(1_800_000_000));

    // A rollback to size 0 (the old size is stale): 409 with the size.
    let a = w.add_checkpoint(&log.request(0));
    assert_eq!(
        (a.status, a.content_type, a.body.as_slice()),
        (409, "text/x.tlog.size", &b"3\n"[..])
    );
    // A smaller checkpoint than the old size: 400.
    let mut small = Log {
        key: NoteSigner::from_skey(&log.key.to_skey()).unwrap(),
        tree: Tree::new(),
    };
    small.grow(2);
    let mut req = small.request(0);
    req.splice(0..5, b"old 3".iter().copied());
    assert_eq!(w.add_checkpoint(&req).status, 400);

    // A fork: the same size, another root. 422, kept as evidence.
    let mut fork = Log {
        key: NoteSigner::from_skey(&log.key.to_skey()).unwrap(),
        tree: Tree::new(),
    };
    fork.tree.push(leaf_hash(b"someone else's ballot"));
    fork.grow(2);
    assert_eq!(w.add_checkpoint(&fork.request(3)).status, 422);
    // A fork at a larger size: its consistency proof fails. 422.
    fork.grow(2);
    assert_eq!(w.add_checkpoint(&fork.request(3)).status, 422);
    assert_eq!(w.evidence_count().unwrap(), 2);

    // The honest log grows: cosigned, at the new time.
    log.grow(2);
    clock.set(UnixTime(1_800_000_100));
    assert_eq!(w.add_checkpoint(&log.request(3)).status, 200);
    // A wrong proof for a real extension: 422.
    log.grow(1);
    let mut bad = AddCheckpoint::parse(&log.request(5)).unwrap();
    bad.proof[0][0] ^= 1;
    assert_eq!(w.add_checkpoint(&bad.to_bytes()).status, 422);

    // A monitor reads the latest: the log's signature and the witness's.
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(ORIGIN.as_bytes()));
    let a = w.handle(&http::Method::GET, &format!("/{hash}/checkpoint"), b"");
    assert_eq!(a.status, 200);
    let latest = Note::parse(&a.body).unwrap();
    assert_eq!(latest.verify(&wv).unwrap(), Some(1_800_000_100));
    assert!(latest.verify(&log.key.verifier()).is_ok());
    assert!(latest.text().contains("\n5\n"));
    assert_eq!(
        w.handle(
            &http::Method::GET,
            &format!("/{}/checkpoint", "0".repeat(64)),
            b""
        )
        .status,
        404
    );

    // The state is durable: a restarted witness still refuses size 3.
    drop(w);
    let w = witness_in(dir, &clock);
    assert_eq!(w.add_checkpoint(&log.request(3)).body, b"5\n");
    assert_eq!(w.add_checkpoint(&log.request(5)).status, 200);
}

#[test]
fn an_empty_checkpoint_must_have_the_empty_root_and_a_lost_database_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    witness::init(tmp.path(), "w.test.example/w").unwrap();
    let clock = ManualClock::new(UnixTime(1_800_000_000));
    let w = witness_in(tmp.path(), &clock);
    let log = Log::new();
    w.add_log(&log.key.verifier().to_vkey()).unwrap();
    let bad = AddCheckpoint {
        old_size: 0,
        proof: vec![],
        checkpoint: Checkpoint {
            origin: ORIGIN.into(),
            size: 0,
            root: [1; 32],
            extensions: vec![],
        }
        .sign(&log.key)
        .unwrap()
        .into_bytes(),
    };
    assert_eq!(w.add_checkpoint(&bad.to_bytes()).status, 422);
    assert_eq!(w.add_checkpoint(&log.request(0)).status, 200);
    // The same log key under a second name is refused.
    let other = NoteSigner::generate(ORIGIN, TYPE_ED25519).unwrap();
    assert!(w.add_log(&other.verifier().to_vkey()).is_err());
    drop(w);
    std::fs::remove_file(tmp.path().join(witness::DB_FILE)).unwrap();
    let e = Witness::open(tmp.path(), Arc::new(clock)).unwrap_err();
    assert!(format!("{e:#}").contains("retired"), "{e:#}");
}

#[test]
fn the_witness_program_answers_curl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let bin = env!("CARGO_BIN_EXE_ballot-witness");
    let out = std::process::Command::new(bin)
        .arg("--dir")
        .arg(&dir)
        .args(["init", "--name", "civic.test.example/witness"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let vkey = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(dir.join(witness::KEY_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);
    let mut log = Log::new();
    log.grow(4);
    let out = std::process::Command::new(bin)
        .arg("--dir")
        .arg(&dir)
        .args(["add-log", "--log-key", &log.key.verifier().to_vkey()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut server = std::process::Command::new(bin)
        .arg("--dir")
        .arg(&dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line.split_whitespace().last().unwrap().to_owned();
    std::fs::write(tmp.path().join("req"), log.request(0)).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--data-binary"])
        .arg(format!("@{}", tmp.path().join("req").display()))
        .arg(format!("{url}add-checkpoint"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let (body, code) = text.rsplit_once('\n').unwrap();
    assert_eq!(code, "200", "{text}");
    let joined = Note::parse(format!("{}{body}", log.checkpoint()).as_bytes()).unwrap();
    assert!(joined
        .verify(&NoteVerifier::from_vkey(&vkey).unwrap())
        .unwrap()
        .is_some());
}
