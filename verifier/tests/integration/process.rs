//! Processing: one crafted ballot per rejection reason, the replacement
//! rule, a revocation after receipt, separation of identity from content,
//! and the signed, cosigned status file.

use crate::import::{run, verifier_db, Gw, Logged};
use devpki::{DevPki, Issued};
use shared::ballot::BallotPackage;
use shared::clock::{ManualClock, UnixTime};
use shared::manifest::ElectionManifest;
use shared::note::NoteSigner;
use shared::pki::Anchor;
use shared::roster::Roster;
use shared::status::{Reason, Status, StatusFile};
use shared::x509::IdentityPolicy;
use std::collections::HashSet;
use verifier::process::Decided;
use verifier::process::{process, Contents, Inputs};

const DECL: &str = "I am eligible.";

/// Signed without a signing time: the tests log ballots at times in the
/// past, and a signing time after them would be evidence of backdating.
fn cms_of(pki: &DevPki, v: &Issued, package: &BallotPackage) -> Vec<u8> {
    cms_at(pki, v, package, shared::cms::SigningTime::Omit)
}

fn cms_at(
    pki: &DevPki,
    v: &Issued,
    package: &BallotPackage,
    at: shared::cms::SigningTime,
) -> Vec<u8> {
    let key = shared::cms::VoterKey::from_pem(v.key.pkcs8_pem().as_bytes()).unwrap();
    shared::cms::sign_with(
        &package.to_bytes().unwrap(),
        &v.cert_der,
        std::slice::from_ref(&pki.id_ca.issued.cert_der),
        &key,
        at,
    )
    .unwrap()
}

fn package(election: &str, style: &str, marks: &str) -> BallotPackage {
    BallotPackage::new(
        election,
        style,
        "application/pdf",
        format!("%PDF-1.7 {marks}").into_bytes(),
        DECL,
    )
}

/// A county's test election over a fresh development PKI: the gateway the
/// tests log into directly, and what the verifier needs to process.
struct Election {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    /// Now, as the tests' clocks say.
    t: u64,
    pki: DevPki,
    g: Gw,
    manifest: ElectionManifest,
    roster: Roster,
    fpr: String,
    witness: NoteSigner,
    /// The time limit for opening one ballot.
    open_time_limit: std::cell::Cell<std::time::Duration>,
}

impl Election {
    /// An election with `roster_csv`, open during `window(now)`.
    fn new(roster_csv: &str, window: impl FnOnce(u64) -> (u64, u64)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let now = time::OffsetDateTime::now_utc();
        let t = now.unix_timestamp() as u64;
        let pki = devpki::generate(now).unwrap();
        let g = Gw::with_roster(
            &dir,
            roster_csv,
            window(t),
            Some(vec![testkit::election::dod_anchor(&pki)]),
        );
        let manifest = g.manifest();
        let fpr = shared::pgp::fingerprint_hex(&g.election_key);
        let roster =
            Roster::open_signed(&std::fs::read(g.media.join("roster.signed")).unwrap(), &fpr)
                .unwrap();
        let witness = NoteSigner::from_skey(&g.witness_skey).unwrap();
        Election {
            _tmp: tmp,
            dir,
            t,
            pki,
            g,
            manifest,
            roster,
            fpr,
            witness,
            open_time_limit: std::cell::Cell::new(verifier::process::OPEN_TIME_LIMIT),
        }
    }

    /// What processing takes.
    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            election_key: &self.g.election_key,
            password: None,
            witness: &self.witness,
            manifest: &self.manifest,
            roster: &self.roster,
            anchors: vec![Anchor {
                name: "Test DoD Root CA 3".into(),
                cert_der: self.pki.root.issued.cert_der.clone(),
                policy: IdentityPolicy::dod_default(),
            }],
            again: None,
            open_time_limit: self.open_time_limit.get(),
        }
    }

    /// Exports what the gateway logged (with the development CRLs and the
    /// ID CA) and imports it into a new verifier database.
    fn import(&self) -> rusqlite::Connection {
        let bundle = self.g.export_with(
            &self.dir.join("usb"),
            &[self.pki.root_crl.clone(), self.pki.id_ca_crl.clone()],
            std::slice::from_ref(&self.pki.id_ca.issued.cert_der),
        );
        let mut v = verifier_db(&self.dir, "v.db", &self.g.pins("2026-general"));
        run(&mut v, &bundle).unwrap();
        v
    }

    /// Processes into `canvass/` at the tests' time; returns the outcome
    /// and the signed status file, opened.
    fn process(&self, v: &rusqlite::Connection) -> (verifier::process::Outcome, Decisions) {
        self.process_at(v, "canvass", self.t)
    }

    /// The final canvass: processes into `canvass/` a minute after the
    /// deadline plus the grace period.
    fn canvass(&self, v: &rusqlite::Connection) -> (verifier::process::Outcome, Decisions) {
        self.process_at(v, "canvass", self.after_the_grace())
    }

    fn after_the_grace(&self) -> u64 {
        self.manifest.closing_bound().0 + 60
    }

    /// Processes into `out` at `at`.
    fn process_at(
        &self,
        v: &rusqlite::Connection,
        out: &str,
        at: u64,
    ) -> (verifier::process::Outcome, Decisions) {
        let out = self.dir.join(out);
        let clock = ManualClock::new(UnixTime(at));
        let outcome = process(v, &self.inputs(), &out, &clock, &mut |_, _, _| {}).unwrap();
        let public = StatusFile::open_signed(
            &std::fs::read(out.join("status.signed")).unwrap(),
            &self.fpr,
        )
        .unwrap();
        let statuses = decided_in(&out);
        // The public file says of each ballot what the county's record
        // says, less whether a valid ballot counted.
        assert_eq!(
            public.statuses,
            statuses.iter().map(|d| d.public()).collect::<Vec<Status>>()
        );
        (outcome, Decisions { statuses, public })
    }
}

/// What a run decided: the whole decision from `voters.csv` (the county's
/// record), and the public status file.
struct Decisions {
    statuses: Vec<Decided>,
    public: StatusFile,
}

/// Each leaf's decision, from `voters.csv` in `out`.
fn decided_in(out: &std::path::Path) -> Vec<Decided> {
    let csv = std::fs::read_to_string(out.join("voters.csv")).unwrap();
    let mut by_leaf: Vec<(u64, Decided)> = csv
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let d = match (f[2], f[3]) {
                ("accepted", "") => Decided::Accepted,
                ("superseded", "") => Decided::Superseded,
                ("rejected", r) => {
                    Decided::Rejected(*Reason::ALL.iter().find(|x| x.name() == r).unwrap())
                }
                other => panic!("voters.csv has {other:?}"),
            };
            assert_eq!(d.columns(), (f[2], f[3]));
            (f[1].parse().unwrap(), d)
        })
        .collect();
    by_leaf.sort_by_key(|(l, _)| *l);
    assert!(by_leaf.iter().enumerate().all(|(i, (l, _))| *l == i as u64));
    by_leaf.into_iter().map(|(_, d)| d).collect()
}

#[test]
fn every_reason_is_decided_and_no_output_links_a_voter_to_a_ballot() {
    // Opened ten days ago; closes in two days (before the CRLs expire).
    let el = Election::new(
        "voter_id,edipi,ballot_style\nV-JANE,1234567890,s1\nV-MARIA,3456789012,s1\nV-RICK,4567890123,s1\n",
        |t| (t - 10 * 86_400, t + 2 * 86_400),
    );
    let (g, pki, dir, t, fpr, manifest) = (
        &el.g,
        &el.pki,
        el.dir.as_path(),
        el.t,
        &el.fpr,
        &el.manifest,
    );
    let closes = manifest.closes_at.0;
    let enc = |cms: &[u8]| shared::pgp::encrypt(&g.election_key, cms).unwrap();
    let jane = &pki.voter("jane-p256").unwrap().issued;
    let maria = &pki.voter("maria-rsa").unwrap().issued;
    let rick = &pki.voter("rick-revoked").unwrap().issued;
    let john = &pki.voter("john-p384").unwrap().issued;
    let e = "2026-general";
    let mut bad_sig = cms_of(pki, jane, &package(e, "s1", "bad sig"));
    let n = bad_sig.len() - 5;
    bad_sig[n] ^= 1;
    let other_key = shared::pgp::generate_election_key("other", None).unwrap();
    let unsigned_garbage = {
        let key = shared::cms::VoterKey::from_pem(jane.key.pkcs8_pem().as_bytes()).unwrap();
        shared::cms::sign(b"not a ballot package", &jane.cert_der, &[], &key).unwrap()
    };
    let id = |s: &str| format!("edipi:{s}");
    let r = |v: &str, i: &str, m: Vec<u8>, at: u64| (v.to_owned(), id(i), m, Some(at));
    // (expected status, the ballot as the gateway logged it)
    let cases: Vec<(Decided, Logged)> = vec![
        // 0: rick's ballot from three days ago, before his card was revoked: it counts.
        (
            Decided::Accepted,
            r(
                "V-RICK",
                "4567890123",
                enc(&cms_of(pki, rick, &package(e, "s1", "rick counts"))),
                t - 3 * 86_400,
            ),
        ),
        // 1: jane's first ballot, later replaced.
        (
            Decided::Superseded,
            r(
                "V-JANE",
                "1234567890",
                enc(&cms_of(pki, jane, &package(e, "s1", "first"))),
                t - 86_400 - 300,
            ),
        ),
        // 2: a damaged signature.
        (
            Decided::Rejected(Reason::BadSignature),
            r("V-JANE", "1234567890", enc(&bad_sig), t - 86_400 - 200),
        ),
        // 3: signed by maria (on the roster), uploaded by jane: the
        // gateway relabelled maria's ballot.
        (
            Decided::Rejected(Reason::UploadedAsAnotherVoter),
            r(
                "V-JANE",
                "1234567890",
                enc(&cms_of(pki, maria, &package(e, "s1", "m"))),
                t - 86_400 - 100,
            ),
        ),
        // 4: rick's card was revoked two days ago; this came yesterday.
        (
            Decided::Rejected(Reason::CertificateRevoked),
            r(
                "V-RICK",
                "4567890123",
                enc(&cms_of(pki, rick, &package(e, "s1", "r"))),
                t - 86_400,
            ),
        ),
        // 5: john is not on the roster (a compromised gateway logged him anyway).
        (
            Decided::Rejected(Reason::NotOnRoster),
            r(
                "V-JOHN",
                "2345678901",
                enc(&cms_of(pki, john, &package(e, "s1", "j"))),
                t - 3300,
            ),
        ),
        // 6: the wrong ballot style.
        (
            Decided::Rejected(Reason::WrongBallotStyle),
            r(
                "V-MARIA",
                "3456789012",
                enc(&cms_of(pki, maria, &package(e, "s9", "m"))),
                t - 3200,
            ),
        ),
        // 7: another election's ballot.
        (
            Decided::Rejected(Reason::WrongElection),
            r(
                "V-MARIA",
                "3456789012",
                enc(&cms_of(pki, maria, &package("2024-general", "s1", "m"))),
                t - 3100,
            ),
        ),
        // 8: encrypted to another key.
        (
            Decided::Rejected(Reason::DecryptionFailed),
            r(
                "V-MARIA",
                "3456789012",
                shared::pgp::encrypt(&other_key, b"x").unwrap(),
                t - 3000,
            ),
        ),
        // 9: signed content that is not a ballot package.
        (
            Decided::Rejected(Reason::MalformedPackage),
            r("V-JANE", "1234567890", enc(&unsigned_garbage), t - 2900),
        ),
        // 10: maria's valid ballot.
        (
            Decided::Accepted,
            r(
                "V-MARIA",
                "3456789012",
                enc(&cms_of(pki, maria, &package(e, "s1", "maria counts"))),
                t - 2800,
            ),
        ),
        // 11: jane's replacement: the latest valid one counts.
        (
            Decided::Accepted,
            r(
                "V-JANE",
                "1234567890",
                enc(&cms_of(pki, jane, &package(e, "s1", "jane counts"))),
                t - 2000,
            ),
        ),
        // 12: after the deadline (jane again; it must not replace #11).
        (
            Decided::Rejected(Reason::AfterDeadline),
            r(
                "V-JANE",
                "1234567890",
                enc(&cms_of(pki, jane, &package(e, "s1", "too late"))),
                closes + 60,
            ),
        ),
        // 13: signed by john (not on the roster), uploaded by jane.
        (
            Decided::Rejected(Reason::SignerNotUploader),
            r(
                "V-JANE",
                "1234567890",
                enc(&cms_of(pki, john, &package(e, "s1", "j2"))),
                closes + 120,
            ),
        ),
    ];
    let logged: Vec<_> = cases.iter().map(|(_, b)| b.clone()).collect();
    g.submit_raw(&logged);
    let v = el.import();
    let inputs = el.inputs();
    let out = dir.join("canvass");
    let clock = ManualClock::new(UnixTime(el.after_the_grace()));
    let (outcome, status) = el.canvass(&v);
    assert_eq!(
        (outcome.total, outcome.accepted, outcome.superseded),
        (14, 3, 1)
    );
    assert_eq!(outcome.rejected_total(), 10);
    // The relabelled ballot is evidence for the board, with its leaf.
    assert_eq!(
        outcome.alarms,
        vec!["GATEWAY MISBEHAVIOUR: RELABELLED BALLOTS: 1 ballot(s) signed by a voter on the roster were recorded by the gateway as uploaded by another voter (leaves 3). They were rejected as uploaded-as-another-voter; the signer's other ballots were judged as usual. Contact the signers (voters.csv names the uploader the gateway claims) before certifying.".to_owned()]
    );
    assert_eq!(outcome.revoked_after_receipt, 1);

    // The status file: signed by the election key, its checkpoint cosigned.
    let expected: Vec<Decided> = cases.iter().map(|(s, _)| *s).collect();
    assert_eq!(status.statuses, expected);
    let log_key = shared::note::NoteVerifier::from_vkey(&manifest.log_key).unwrap();
    let cp =
        shared::checkpoint::SignedCheckpoint::verify(status.public.checkpoint.as_bytes(), &log_key)
            .unwrap();
    assert_eq!(
        cp.verify_cosignature(&el.witness.verifier()).unwrap(),
        el.after_the_grace()
    );
    // The gateway takes it back.
    gateway::export::import_status(&g.data, &out.join("status.signed"), &g.clock).unwrap();
    // An auditor checks jane's receipt offline against the status file.
    let receipt: String = rusqlite::Connection::open(gateway::store::db_path(&g.data))
        .unwrap()
        .query_row(
            "SELECT receipt FROM ballots WHERE leaf_index = 11",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let status_bytes = std::fs::read(out.join("status.signed")).unwrap();
    // The consistency proof from a receipt's checkpoint to the status
    // file's, as the gateway's public log gives it.
    let tree = gateway::sequencer::load_and_verify(
        &rusqlite::Connection::open(gateway::store::db_path(&g.data)).unwrap(),
        &log_key,
    )
    .unwrap()
    .tree;
    let proof_for = |receipt: &str| {
        let m = shared::receipt::Receipt::parse(receipt.as_bytes())
            .unwrap()
            .verify(&log_key)
            .unwrap()
            .checkpoint
            .size;
        let n = cp.checkpoint.size;
        if m == n {
            vec![]
        } else {
            tree.consistency_proof(m, n).unwrap()
        }
    };
    let report = verifier::audit::audit(
        receipt.as_bytes(),
        manifest,
        fpr,
        None,
        Some((&status_bytes, &proof_for(&receipt))),
    )
    .unwrap();
    assert_eq!(report.index, 11);
    let counted = report.status.unwrap();
    assert!(counted.starts_with("valid"), "{counted}");
    let superseded: String = rusqlite::Connection::open(gateway::store::db_path(&g.data))
        .unwrap()
        .query_row(
            "SELECT receipt FROM ballots WHERE leaf_index = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let report = verifier::audit::audit(
        superseded.as_bytes(),
        manifest,
        fpr,
        None,
        Some((&status_bytes, &proof_for(&superseded))),
    )
    .unwrap();
    // The superseded ballot's receipt audits exactly as the counted one's.
    assert_eq!(report.status.unwrap(), counted);
    // A receipt with a changed entry does not audit.
    let forged = receipt.replacen("index 11", "index 10", 1);
    assert!(verifier::audit::audit(
        forged.as_bytes(),
        manifest,
        fpr,
        None,
        Some((&status_bytes, &proof_for(&receipt)))
    )
    .is_err());

    // Separation: the ballots folder holds exactly the three counted
    // contents, under random names, with nothing else in the files.
    let mut contents = HashSet::new();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(out.join("ballots")).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name == "INDEX.csv" {
            continue;
        }
        assert_eq!(name.len(), 32 + 4, "random 128-bit names: {name}");
        assert_eq!(
            std::fs::metadata(&p).unwrap().modified().unwrap(),
            manifest.closes_at.to_system_time(),
            "one fixed timestamp"
        );
        contents.insert(String::from_utf8(std::fs::read(&p).unwrap()).unwrap());
        names.push(name);
    }
    let want: HashSet<String> = [
        "%PDF-1.7 maria counts",
        "%PDF-1.7 jane counts",
        "%PDF-1.7 rick counts",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(contents, want);
    // No output file other than ballots/ holds any ballot content, and no
    // file in ballots/ names a voter, a leaf or a time.
    let voters = std::fs::read_to_string(out.join("voters.csv")).unwrap();
    for text in [
        &voters,
        &std::fs::read_to_string(out.join("report.txt")).unwrap(),
        &std::fs::read_to_string(out.join("report.json")).unwrap(),
    ] {
        assert!(!text.contains("counts"), "ballot content outside ballots/");
        for n in &names {
            assert!(
                !text.contains(n.as_str()),
                "a ballot file name appears in an identity-side file"
            );
        }
    }
    let index = std::fs::read_to_string(out.join("ballots/INDEX.csv")).unwrap();
    for secret in ["V-JANE", "V-MARIA", "V-RICK", "1234567890", "edipi"] {
        assert!(!index.contains(secret));
        for c in &contents {
            assert!(!c.contains(secret));
        }
    }
    assert!(
        voters.contains("V-JANE,1,superseded,\n")
            && voters.contains("V-RICK,4,rejected,certificate-revoked\n"),
        "{voters}"
    );
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(
        report.contains("Accepted (to be counted):      3"),
        "{report}"
    );
    assert!(
        report.contains("revoked after the ballot was received"),
        "{report}"
    );
    // Issue 17, part 3: the report the board prints and signs says the
    // same, read back by poppler (another PDF implementation) and drawn.
    let pdf = out.join("report.pdf");
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    let root = hex::encode(cp.checkpoint.root);
    match testkit::pdf::render(&pdf) {
        Err(why) => println!("SKIPPED reading report.pdf back: {why}"),
        Ok(r) => {
            let text = r.text.split_whitespace().collect::<Vec<_>>().join(" ");
            for want in [
                manifest.title.as_str(),
                "Alarms for the board",
                "1 alarm(s): look into each before certifying.",
                "RELABELLED BALLOTS",
                "Ballots received and logged 14",
                "Accepted (to be counted) 3",
                "Superseded by a later ballot 1",
                "Rejected 10",
                "certificate had been revoked before the ballot was received",
                "came from a card revoked after the ballot was received",
                "voter V-RICK",
                "14 entries",
                root.as_str(),
                outcome.anchors[0].sha256_hex().as_str(),
                outcome.crls[0].sha256.as_str(),
                "Board member: signature",
            ] {
                assert!(
                    text.contains(want),
                    "report.pdf lacks {want:?}:\n{}",
                    r.text
                );
            }
            assert!(!text.contains("counts"), "ballot content in report.pdf");
            assert!(!r.pages.is_empty());
            for page in &r.pages {
                let png = std::fs::read(page).unwrap();
                assert!(
                    png.starts_with(b"\x89PNG") && png.len() > 5_000,
                    "{}",
                    page.display()
                );
            }
            println!("report.pdf: {} page(s) rendered", r.pages.len());
        }
    }
    // A second run refuses to overwrite.
    assert!(process(&v, &inputs, &out, &clock, &mut |_, _, _| {}).is_err());
}

/// Issue 11, part 4: the gateway's `received_at` is not the verifier's
/// clock. A compromised gateway backdates a ballot logged after the
/// deadline, and stamps a stolen card's ballot with a time before the card
/// was revoked; the witnesses cosigned both only later.
#[test]
fn a_backdated_ballot_is_late_and_a_card_revoked_before_it_was_witnessed_is_revoked() {
    // Closed an hour ago; the grace is ten minutes (the test election's).
    let el = Election::new(
        "voter_id,edipi,ballot_style\nV-JANE,1234567890,s1\nV-MARIA,3456789012,s1\nV-RICK,4567890123,s1\n",
        |t| (t - 10 * 86_400, t - 3600),
    );
    assert_eq!(el.manifest.grace_seconds, 600);
    let (g, pki, t) = (&el.g, &el.pki, el.t);
    let e = "2026-general";
    let ballot = |v: &Issued, marks: &str| {
        shared::pgp::encrypt(&g.election_key, &cms_of(pki, v, &package(e, "s1", marks))).unwrap()
    };
    let jane = &pki.voter("jane-p256").unwrap().issued;
    let maria = &pki.voter("maria-rsa").unwrap().issued;
    let rick = &pki.voter("rick-revoked").unwrap().issued;
    let logged = |voter_id: &str, edipi: &str, message: Vec<u8>, at: u64, witnessed: u64| {
        testkit::voters::Logged {
            voter_id: voter_id.into(),
            identity: format!("edipi:{edipi}"),
            client_cert: vec![0x30, 0x00],
            message,
            at: Some(at),
            witnessed_at: Some(witnessed),
        }
    };
    testkit::voters::log_directly(
        &g.data,
        &g.clock,
        e,
        10,
        &g.stand_in_keys,
        [
            // Rick's card was revoked two days ago. The gateway stamps his
            // ballot three days ago; the witnesses first saw it two hours
            // ago.
            logged(
                "V-RICK",
                "4567890123",
                ballot(rick, "stolen card"),
                t - 3 * 86_400,
                t - 7200,
            ),
            // Jane's, on time and witnessed at once.
            logged(
                "V-JANE",
                "1234567890",
                ballot(jane, "jane counts"),
                t - 7000,
                t - 7000,
            ),
            // Maria's came half an hour after the deadline; the gateway
            // stamps it before the deadline.
            logged(
                "V-MARIA",
                "3456789012",
                ballot(maria, "late"),
                t - 6900,
                t - 1800,
            ),
        ],
    );
    let v = el.import();
    let (outcome, status) = el.process(&v);
    let out = el.dir.join("canvass");
    assert_eq!(
        status.statuses,
        vec![
            Decided::Rejected(Reason::CertificateRevoked),
            Decided::Accepted,
            Decided::Rejected(Reason::AfterDeadline),
        ]
    );
    assert_eq!(outcome.late_by_witnesses_only, 1);
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    println!("{report}");
    // No checkpoint was cosigned between the deadline and the end of the
    // grace: the board is told.
    assert!(report.contains("ALARMS FOR THE BOARD"), "{report}");
    assert!(report.contains("LATE CLOSING CHECKPOINT"), "{report}");
    assert!(
        report.contains("1 ballot(s) the gateway stamped as received before the deadline are in no checkpoint the witnesses cosigned by the deadline plus the grace period"),
        "{report}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["alarms"].as_array().unwrap().len(), 2);
}

/// Issue 12, part 1: a voter's ballots are ordered by the log, never by the
/// gateway's `received_at`. A compromised gateway stamps Jane's second
/// ballot with a time before her first, so that the first would count.
#[test]
fn the_latest_ballot_is_the_last_in_the_log_whatever_its_time() {
    let el = Election::new("voter_id,edipi,ballot_style\nV-JANE,1234567890,s1\n", |t| {
        (t - 10 * 86_400, t + 2 * 86_400)
    });
    let (g, pki, t) = (&el.g, &el.pki, el.t);
    let jane = &pki.voter("jane-p256").unwrap().issued;
    let ballot = |marks: &str| {
        let cms = cms_of(pki, jane, &package("2026-general", "s1", marks));
        shared::pgp::encrypt(&g.election_key, &cms).unwrap()
    };
    g.submit_raw(&[
        (
            "V-JANE".into(),
            "edipi:1234567890".into(),
            ballot("first"),
            Some(t - 7200),
        ),
        (
            "V-JANE".into(),
            "edipi:1234567890".into(),
            ballot("second"),
            Some(t - 3600),
        ),
    ]);
    // The gateway rewrites the second's time to before the first's (and
    // has the rewritten log witnessed, as a gateway the witnesses trust
    // could before publishing).
    testkit::voters::rewrite_received_at(
        &g.data,
        1,
        UnixTime(t - 9000),
        &g.stand_in_keys,
        UnixTime(t - 3500),
    );
    let v = el.import();
    // The import names it, with both leaves.
    let found = verifier::state::misbehaviour(&v, Some(1)).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].kind.as_str(), found[0].leaves.as_slice()),
        ("received-at-backwards", &[0, 1][..])
    );
    let (outcome, status) = el.process(&v);
    let out = el.dir.join("canvass");
    assert_eq!(
        status.statuses,
        vec![Decided::Superseded, Decided::Accepted],
        "the last ballot in the log counts"
    );
    let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
    println!("{report}");
    assert!(
        outcome
            .alarms
            .iter()
            .any(|a| a.starts_with("GATEWAY MISBEHAVIOUR: leaf 1 is stamped")),
        "{report}"
    );
}

/// The contents the final canvass wrote (`ballots/` under `out`).
fn contents_in(out: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = contents_in_bytes(out)
        .into_iter()
        .map(|c| String::from_utf8(c).unwrap())
        .collect();
    v.sort();
    v
}

/// Issue 12, part 2: a compromised gateway appends a voter's earlier
/// ballot again, as the same ciphertext and as the same signed package in
/// new framing (here: encrypted again), so that the old choice is the
/// latest in the log. The copies never count; the board is told.
#[test]
fn a_replayed_ballot_never_counts_and_is_named() {
    let el = Election::new(
        "voter_id,edipi,ballot_style\nV-JANE,1234567890,s1\nV-MARIA,3456789012,s1\n",
        |t| (t - 10 * 86_400, t - 3600),
    );
    let (g, pki, t) = (&el.g, &el.pki, el.t);
    let jane = &pki.voter("jane-p256").unwrap().issued;
    let maria = &pki.voter("maria-rsa").unwrap().issued;
    let first = cms_of(pki, jane, &package("2026-general", "s1", "first choice"));
    let first_ct = shared::pgp::encrypt(&g.election_key, &first).unwrap();
    let second = shared::pgp::encrypt(
        &g.election_key,
        &cms_of(pki, jane, &package("2026-general", "s1", "second choice")),
    )
    .unwrap();
    let maria_ct = shared::pgp::encrypt(
        &g.election_key,
        &cms_of(pki, maria, &package("2026-general", "s1", "maria")),
    )
    .unwrap();
    let jane_at = |m: Vec<u8>, at: u64| {
        (
            "V-JANE".to_owned(),
            "edipi:1234567890".to_owned(),
            m,
            Some(at),
        )
    };
    g.submit_raw(&[
        jane_at(first_ct.clone(), t - 9000),
        jane_at(second, t - 8000),
        (
            "V-MARIA".into(),
            "edipi:3456789012".into(),
            maria_ct,
            Some(t - 7900),
        ),
        // The same ciphertext again (the gateway's own sequencer would
        // answer a retry by the same voter with the first receipt, so the
        // test logs the copy under maria; a compromised gateway needs no
        // such detour).
        (
            "V-MARIA".into(),
            "edipi:3456789012".into(),
            first_ct,
            Some(t - 7000),
        ),
        // The same signed package, encrypted again: other bytes.
        jane_at(
            shared::pgp::encrypt(&g.election_key, &first).unwrap(),
            t - 6000,
        ),
    ]);
    let v = el.import();
    let (outcome, status) = el.canvass(&v);
    assert_eq!(
        status.statuses,
        vec![
            Decided::Superseded,
            Decided::Accepted,
            Decided::Accepted,
            Decided::Rejected(Reason::Replayed),
            Decided::Rejected(Reason::Replayed),
        ]
    );
    // Only the second choice and maria's were written (the package copy,
    // opened first as jane's newest, was written and then taken back).
    let out = el.dir.join("canvass");
    assert_eq!(
        contents_in(&out),
        vec!["%PDF-1.7 maria", "%PDF-1.7 second choice"]
    );
    println!("{:#?}", outcome.alarms);
    assert!(outcome
        .alarms
        .contains(&"GATEWAY MISBEHAVIOUR: REPLAYED CIPHERTEXT: the gateway logged a ciphertext it had already logged (leaf 3 repeats leaf 0). A client retry returns the first receipt and is never logged twice. The copies are rejected as replayed and never count.".to_owned()));
    assert!(outcome
        .alarms
        .contains(&"GATEWAY MISBEHAVIOUR: REPLAYED BALLOT: the same signed ballot (the same package nonce) is at two leaves (leaf 4 repeats leaf 0). The later copy is rejected as replayed and never counts.".to_owned()));
    let voters = std::fs::read_to_string(out.join("voters.csv")).unwrap();
    assert!(
        voters.contains("V-MARIA,3,rejected,replayed\n")
            && voters.contains("V-JANE,4,rejected,replayed\n"),
        "{voters}"
    );
}

/// Issue 12, part 2: a signing time later than the gateway's time of
/// receipt (beyond an hour of clock error) is evidence that the gateway
/// backdated the ballot. It is judged as usual by the witnesses' time: a
/// rejection would let a gateway void ballots by skewing its clock.
#[test]
fn a_ballot_signed_after_its_stamped_receipt_is_evidence() {
    let el = Election::new(
        "voter_id,edipi,ballot_style\nV-JANE,1234567890,s1\nV-MARIA,3456789012,s1\n",
        |t| (t - 10 * 86_400, t + 86_400),
    );
    let (g, pki, t) = (&el.g, &el.pki, el.t);
    let at = |s: u64| {
        shared::cms::SigningTime::At(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s))
    };
    let jane = &pki.voter("jane-p256").unwrap().issued;
    let maria = &pki.voter("maria-rsa").unwrap().issued;
    let ballot = |v: &Issued, signed: u64| {
        let cms = cms_at(pki, v, &package("2026-general", "s1", "x"), at(signed));
        shared::pgp::encrypt(&g.election_key, &cms).unwrap()
    };
    g.submit_raw(&[
        // Signed 50 minutes after the stamp (a voter's clock off): fine.
        (
            "V-MARIA".into(),
            "edipi:3456789012".into(),
            ballot(maria, t - 9000 + 3000),
            Some(t - 9000),
        ),
        // Signed two hours after the gateway says it had it.
        (
            "V-JANE".into(),
            "edipi:1234567890".into(),
            ballot(jane, t - 8000 + 7200),
            Some(t - 8000),
        ),
    ]);
    let v = el.import();
    let (outcome, status) = el.process(&v);
    assert_eq!(status.statuses, vec![Decided::Accepted, Decided::Accepted]);
    assert_eq!(
        outcome.alarms,
        vec!["GATEWAY MISBEHAVIOUR: SIGNED AFTER RECEIPT: 1 ballot(s) carry a signing time more than 60 minutes after the time the gateway stamped as their receipt (leaves 1): the gateway backdated them, or the voter's computer clock was that far ahead. They were judged as usual, by the witnesses' time; the gateway's times are not to be trusted.".to_owned()]
    );
}

/// Issue 12, part 3: statuses during the election, contents once. The
/// county runs `process` before and after a new voter's ballot arrives to
/// return statuses; with contents in each run, the difference between the
/// two runs' ballots/ would be the new voter's ballot and voters.csv would
/// name her. Interim runs write no content; the final canvass writes it
/// once; a second content run needs an override the report records.
#[test]
fn interim_runs_write_no_content_and_the_final_canvass_writes_it_once() {
    let el = Election::new(
        "voter_id,edipi,ballot_style\nV-JANE,1234567890,s1\nV-MARIA,3456789012,s1\n",
        |t| (t - 10 * 86_400, t + 86_400),
    );
    let (g, pki, t) = (&el.g, &el.pki, el.t);
    let ballot = |who: &str, marks: &str| {
        let v = &pki.voter(who).unwrap().issued;
        let cms = cms_of(pki, v, &package("2026-general", "s1", marks));
        shared::pgp::encrypt(&g.election_key, &cms).unwrap()
    };
    g.submit_raw(&[(
        "V-JANE".into(),
        "edipi:1234567890".into(),
        ballot("jane-p256", "jane's choice"),
        Some(t - 7200),
    )]);
    let usb = el.dir.join("usb");
    let export = || {
        el.g.export_with(
            &usb,
            &[el.pki.root_crl.clone(), el.pki.id_ca_crl.clone()],
            std::slice::from_ref(&el.pki.id_ca.issued.cert_der),
        )
    };
    let mut v = verifier_db(&el.dir, "v.db", &el.g.pins("2026-general"));
    run(&mut v, &export()).unwrap();
    let (o1, s1) = el.process_at(&v, "interim-1", t);
    g.submit_raw(&[(
        "V-MARIA".into(),
        "edipi:3456789012".into(),
        ballot("maria-rsa", "maria's choice"),
        Some(t - 3600),
    )]);
    run(&mut v, &export()).unwrap();
    let (o2, s2) = el.process_at(&v, "interim-2", t + 60);
    assert_eq!((o1.accepted, o2.accepted), (1, 2));
    assert_eq!(s1.statuses, vec![Decided::Accepted]);
    assert_eq!(s2.statuses, vec![Decided::Accepted, Decided::Accepted]);
    // Nothing in either interim run holds a ballot's content.
    for run in ["interim-1", "interim-2"] {
        let out = el.dir.join(run);
        assert!(!out.join("ballots").exists(), "{run} wrote contents");
        for f in std::fs::read_dir(&out).unwrap() {
            let text =
                String::from_utf8_lossy(&std::fs::read(f.unwrap().path()).unwrap()).into_owned();
            assert!(!text.contains("choice"), "content in {run}");
        }
        let report = std::fs::read_to_string(out.join("report.txt")).unwrap();
        assert!(
            report.contains("INTERIM RUN: no ballot content was written"),
            "{report}"
        );
    }
    assert!(verifier::state::content_runs(&v).unwrap().is_empty());

    // The final canvass writes both, once.
    let (o3, _) = el.canvass(&v);
    assert_eq!(o3.contents, Contents::Written { again: None });
    let out = el.dir.join("canvass");
    assert_eq!(
        contents_in(&out),
        vec!["%PDF-1.7 jane's choice", "%PDF-1.7 maria's choice"]
    );
    let runs = verifier::state::content_runs(&v).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].log_size, 2);

    // A second content run is refused, and writes nothing.
    let clock = ManualClock::new(UnixTime(el.after_the_grace() + 60));
    let again = el.dir.join("canvass-again");
    let e = process(&v, &el.inputs(), &again, &clock, &mut |_, _, _| {}).unwrap_err();
    println!("a second final canvass: {e:#}");
    assert!(
        e.to_string()
            .contains("the ballots' contents were already written by the final canvass"),
        "{e:#}"
    );
    assert!(!again.exists());
    assert!(!el.dir.join(".canvass-again.partial").exists());
    // With the board's reason it runs, and the report says so.
    let mut inputs = el.inputs();
    inputs.again = Some("the first USB stick of contents was damaged (minutes of 3 Nov)");
    let o4 = process(&v, &inputs, &again, &clock, &mut |_, _, _| {}).unwrap();
    assert_eq!(
        o4.contents,
        Contents::Written {
            again: inputs.again.map(str::to_owned)
        }
    );
    let report = std::fs::read_to_string(again.join("report.txt")).unwrap();
    assert!(
        report.contains("WRITTEN AGAIN") && report.contains("the first USB stick"),
        "{report}"
    );
    assert_eq!(verifier::state::content_runs(&v).unwrap().len(), 2);
}

/// Issue 12, part 4: sizes. Two ballots of very different lengths
/// in one bucket give ciphertexts of one size (the gateway, the bundle and
/// the network see nothing more), and no output pairs a size with a voter.
#[test]
fn ballot_sizes_do_not_link_voters_to_contents() {
    let el = Election::new("voter_id,edipi,ballot_style\nV-JANE,1234567890,s1\n", |t| {
        (t - 10 * 86_400, t - 3600)
    });
    let (g, pki, t) = (&el.g, &el.pki, el.t);
    let jane = &pki.voter("jane-p256").unwrap().issued;
    let sized = |n: usize| {
        let mut p = package("2026-general", "s1", "");
        p.content = vec![b'x'; n];
        shared::pgp::encrypt(&g.election_key, &cms_of(pki, jane, &p)).unwrap()
    };
    let (small, large) = (sized(70_000), sized(120_000));
    // Equal up to the ECDSA signature's DER length, which varies by a byte
    // or two with the random signature (leading zeros of r and s), never
    // with the content. Unpadded, they would differ by 50,000 bytes.
    assert!(
        small.len().abs_diff(large.len()) <= 2,
        "a 70 KB and a 120 KB ballot are one size on the wire: {} and {}",
        small.len(),
        large.len()
    );
    assert!(small.len() > 128 * 1024 && small.len() < 128 * 1024 + 8 * 1024);
    g.submit_raw(&[(
        "V-JANE".into(),
        "edipi:1234567890".into(),
        small,
        Some(t - 9000),
    )]);
    let v = el.import();
    let sizes: Vec<i64> = v
        .prepare("SELECT length(ciphertext) FROM leaves")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let (_, status) = el.canvass(&v);
    assert_eq!(status.statuses, vec![Decided::Accepted]);
    let out = el.dir.join("canvass");
    for f in ["voters.csv", "report.txt", "report.json"] {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        for n in [sizes[0].to_string(), "70000".into(), "131072".into()] {
            assert!(!text.contains(&n), "{f} holds a size: {n}");
        }
    }
}

/// Issue 12, part 4: metadata. A PDF ballot carrying its author, its
/// software, dates, XMP and a document ID is written by the final canvass
/// without any of them, and still shows the marks. A ballot labelled PDF
/// that is no PDF at all (no header) is written as sent and counted.
#[test]
fn counted_pdfs_are_written_without_their_metadata() {
    let el = Election::new(
        "voter_id,edipi,ballot_style\nV-JANE,1234567890,s1\nV-MARIA,3456789012,s1\n",
        |t| (t - 10 * 86_400, t - 3600),
    );
    let (g, pki, t) = (&el.g, &el.pki, el.t);
    let jane = &pki.voter("jane-p256").unwrap().issued;
    let maria = &pki.voter("maria-rsa").unwrap().issued;
    let mut p = package("2026-general", "s1", "");
    p.content = testkit::pdf::with_metadata();
    let mut not_pdf = package("2026-general", "s1", "");
    not_pdf.content = b"scanned marks, no PDF header".to_vec();
    let enc = |cms: &[u8]| shared::pgp::encrypt(&g.election_key, cms).unwrap();
    g.submit_raw(&[
        (
            "V-JANE".into(),
            "edipi:1234567890".into(),
            enc(&cms_of(pki, jane, &p)),
            Some(t - 9000),
        ),
        (
            "V-MARIA".into(),
            "edipi:3456789012".into(),
            enc(&cms_of(pki, maria, &not_pdf)),
            Some(t - 8000),
        ),
    ]);
    let v = el.import();
    let (outcome, status) = el.canvass(&v);
    assert_eq!(status.statuses, vec![Decided::Accepted, Decided::Accepted]);
    assert_eq!(outcome.pdfs_with_metadata, 1);
    let mut written = contents_in_bytes(&el.dir.join("canvass"));
    assert_eq!(written.len(), 2);
    let sent_as_is = written
        .iter()
        .position(|w| *w == not_pdf.content)
        .expect("the ballot that is no PDF is written as sent");
    written.remove(sent_as_is);
    let text = String::from_utf8_lossy(&written[0]).into_owned();
    for s in [
        "Jane Doe",
        "DESKTOP-J4NE",
        "D:20261030",
        "2026-10-30",
        "/Info",
        "/Metadata",
    ] {
        assert!(!text.contains(s), "{s} is in the written ballot");
    }
    assert!(text.contains("(Candidate A) Tj"));
}

fn contents_in_bytes(out: &std::path::Path) -> Vec<Vec<u8>> {
    std::fs::read_dir(out.join("ballots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "INDEX.csv")
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

#[test]
fn a_sold_receipt_does_not_show_whether_it_was_replaced() {
    // A voter sells the first ballot (handing over its receipt), then sends
    // another: the re-vote defence. The buyer reads the public status file.
    let el = Election::new(
        "voter_id,edipi,ballot_style\nV-JANE,1234567890,s1\nV-MARIA,3456789012,s1\n",
        |t| (t - 86_400, t + 86_400),
    );
    let (g, pki, t) = (&el.g, &el.pki, el.t);
    let ballot = |who: &Issued, marks: &str| {
        shared::pgp::encrypt(
            &g.election_key,
            &cms_of(pki, who, &package("2026-general", "s1", marks)),
        )
        .unwrap()
    };
    let jane = &pki.voter("jane-p256").unwrap().issued;
    let maria = &pki.voter("maria-rsa").unwrap().issued;
    g.submit_raw(&[
        (
            "V-JANE".into(),
            "edipi:1234567890".into(),
            ballot(jane, "sold"),
            Some(t - 7200),
        ),
        (
            "V-MARIA".into(),
            "edipi:3456789012".into(),
            ballot(maria, "maria's only"),
            Some(t - 5400),
        ),
        (
            "V-JANE".into(),
            "edipi:1234567890".into(),
            ballot(jane, "own choice"),
            Some(t - 3600),
        ),
    ]);
    let v = el.import();
    let (outcome, status) = el.process(&v);
    // The county's own record keeps the full decision.
    let voters = std::fs::read_to_string(el.dir.join("canvass/voters.csv")).unwrap();
    assert!(voters.contains("V-JANE,0,superseded,"), "{voters}");
    assert!(voters.contains("V-JANE,2,accepted,"), "{voters}");
    assert!(voters.contains("V-MARIA,1,accepted,"), "{voters}");
    assert_eq!((outcome.accepted, outcome.superseded), (2, 1));
    // The public file: the sold leaf reads exactly as a counted one.
    assert_eq!(
        status.statuses,
        vec![Decided::Superseded, Decided::Accepted, Decided::Accepted]
    );
    let public = &status.public.statuses;
    assert_eq!(
        public[0], public[1],
        "the public status file tells the buyer the sold ballot was replaced"
    );
    assert_eq!(public[0], public[2]);
    // Its encoding too: one (status, reason) pair for all three.
    let codes: HashSet<(u8, u8)> = public.iter().map(|s| s.to_codes()).collect();
    assert_eq!(codes.len(), 1, "{codes:?}");
}

#[test]
fn a_ballot_that_takes_too_long_to_open_is_rejected_and_named_and_the_run_goes_on() {
    let el = Election::new(
        "voter_id,edipi,ballot_style\nV-JANE,1234567890,s1\nV-MARIA,3456789012,s1\n",
        |t| (t - 86_400, t + 86_400),
    );
    let (g, pki, t) = (&el.g, &el.pki, el.t);
    let jane = &pki.voter("jane-p256").unwrap().issued;
    // A ballot of a megabyte (a 2 MiB package): decrypting it, hashing it
    // for the signature and decoding it cannot be done in a microsecond.
    let big = BallotPackage::new(
        "2026-general",
        "s1",
        "application/pdf",
        vec![b'%'; 1 << 20],
        DECL,
    );
    g.submit_raw(&[(
        "V-JANE".into(),
        "edipi:1234567890".into(),
        shared::pgp::encrypt(&g.election_key, &cms_of(pki, jane, &big)).unwrap(),
        Some(t - 3600),
    )]);
    let v = el.import();
    el.open_time_limit.set(std::time::Duration::from_micros(1));
    let (outcome, status) = el.process(&v);
    assert_eq!(
        status.statuses,
        vec![Decided::Rejected(Reason::TookTooLong)]
    );
    assert_eq!(
        status.public.statuses,
        vec![Status::Rejected(Reason::TookTooLong)]
    );
    assert!(
        outcome.alarms.iter().any(|a| a.starts_with(
            "BALLOTS THAT TOOK TOO LONG: 1 ballot(s) could not be decrypted, their signature checked and their package read within 0 seconds each (leaves 0)"
        )),
        "{:?}",
        outcome.alarms
    );
    // With the default limit the same ballot opens and is valid: the limit
    // is what rejected it.
    el.open_time_limit.set(verifier::process::OPEN_TIME_LIMIT);
    let (_, status) = el.process_at(&v, "again", el.t);
    assert_eq!(status.statuses, vec![Decided::Accepted]);
}

#[test]
fn canvass_outputs_are_private_and_built_in_a_folder_no_one_can_predict() {
    use std::os::unix::fs::PermissionsExt;
    let el = Election::new("voter_id,edipi,ballot_style\nV-JANE,1234567890,s1\n", |t| {
        (t - 86_400, t + 60)
    });
    let (g, pki, t) = (&el.g, &el.pki, el.t);
    let jane = &pki.voter("jane-p256").unwrap().issued;
    g.submit_raw(&[(
        "V-JANE".into(),
        "edipi:1234567890".into(),
        shared::pgp::encrypt(
            &g.election_key,
            &cms_of(pki, jane, &package("2026-general", "s1", "private")),
        )
        .unwrap(),
        Some(t - 60),
    )]);
    let v = el.import();
    // Another local user prepared the old, predictable temporary name as a
    // link to a folder of theirs.
    let theirs = el.dir.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::symlink(&theirs, el.dir.join(".canvass.partial")).unwrap();
    let (_, status) = el.canvass(&v);
    assert_eq!(status.statuses, vec![Decided::Accepted]);
    assert_eq!(
        std::fs::read_dir(&theirs).unwrap().count(),
        0,
        "the outputs were written through the prepared link"
    );
    let out = el.dir.join("canvass");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&out.join("ballots")), 0o700);
    for f in [
        "voters.csv",
        "report.txt",
        "report.pdf",
        "report.json",
        "status.signed",
        "ballots/INDEX.csv",
    ] {
        assert_eq!(mode(&out.join(f)), 0o600, "{f}");
    }
    for f in std::fs::read_dir(out.join("ballots")).unwrap() {
        assert_eq!(mode(&f.unwrap().path()), 0o600);
    }
    // No partial folder is left behind.
    let partial: Vec<String> = std::fs::read_dir(&el.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial") && n != ".canvass.partial")
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
}

/// An election with Jane on the roster, who voted `marks` an hour ago.
fn jane_voted(marks: &str) -> Election {
    let el = Election::new("voter_id,edipi,ballot_style\nV-JANE,1234567890,s1\n", |t| {
        (t - 10 * 86_400, t + 2 * 86_400)
    });
    let jane = &el.pki.voter("jane-p256").unwrap().issued;
    let cms = cms_of(&el.pki, jane, &package("2026-general", "s1", marks));
    el.g.submit_raw(&[(
        "V-JANE".into(),
        "edipi:1234567890".into(),
        shared::pgp::encrypt(&el.g.election_key, &cms).unwrap(),
        Some(el.t - 3600),
    )]);
    el
}

#[test]
fn only_the_anchors_the_signed_manifest_pins_decide_who_may_vote() {
    let el = jane_voted("pinned");
    let (pki, t) = (&el.pki, el.t);
    let v = el.import();
    let clock = ManualClock::new(UnixTime(t));
    let refused = |anchors: Vec<Anchor>, out: &str, want: &str| {
        let inputs = Inputs {
            anchors,
            ..el.inputs()
        };
        let out = el.dir.join(out);
        let err = process(&v, &inputs, &out, &clock, &mut |_, _, _| {}).unwrap_err();
        assert!(format!("{err:#}").contains(want), "{want}: {err:#}");
        assert!(!out.exists(), "nothing written");
    };
    let pinned = el.inputs().anchors;
    // A root the manifest does not pin, even beside the pinned one.
    let rogue = Anchor {
        name: "Rogue Root".into(),
        cert_der: pki.rogue_ca.issued.cert_der.clone(),
        policy: IdentityPolicy::dod_default(),
    };
    refused(
        vec![pinned[0].clone(), rogue],
        "rogue",
        "\"Rogue Root\" (SHA-256 ",
    );
    // The pinned root with a policy the manifest does not accept.
    let mut widened = pinned[0].clone();
    widened
        .policy
        .accepted_policies
        .push("2.16.840.1.101.2.1.11.2".into());
    refused(vec![widened], "widened", "the manifest pins policies");
    // The pinned root naming voters by another rule.
    let mut renamed = pinned[0].clone();
    renamed.policy.rule = shared::x509::IdentityRule::UriPrefix("urn:elsewhere:".into());
    refused(
        vec![renamed],
        "renamed",
        "the manifest pins identity rule edipi",
    );
    refused(vec![], "none", "no trust anchor to validate voters with");
    // The pinned anchor validates Jane, and the report names it by hash.
    let (outcome, _) = el.process(&v);
    assert_eq!(outcome.accepted, 1);
    assert_eq!(outcome.anchors, el.manifest.trust_anchors);
    let report = std::fs::read_to_string(el.dir.join("canvass/report.txt")).unwrap();
    assert!(
        report.contains(&el.manifest.trust_anchors[0].sha256_hex()),
        "{report}"
    );
}

#[test]
fn an_unknown_revocation_status_stops_the_run_until_the_county_brings_its_crl() {
    use devpki::{CrlKind, CrlReason};
    let el = jane_voted("a ballot");
    let (g, pki, t) = (&el.g, &el.pki, el.t);
    // The gateway shipped the root's CRL but not the ID CA's.
    let bundle = g.export_with(
        &el.dir.join("usb"),
        std::slice::from_ref(&pki.root_crl),
        std::slice::from_ref(&pki.id_ca.issued.cert_der),
    );
    let mut v = verifier_db(&el.dir, "v.db", &g.pins("2026-general"));
    run(&mut v, &bundle).unwrap();
    let clock = ManualClock::new(UnixTime(t));
    let out = el.dir.join("canvass");
    let err = process(&v, &el.inputs(), &out, &clock, &mut |_, _, _| {}).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("revocation status unknown") && msg.contains("Test DOD ID CA-59"),
        "{msg}"
    );
    assert!(
        !out.exists(),
        "nothing written: no voter hears 'certificate invalid'"
    );

    // The county's own media: a delta CRL is refused by name, a CRL from a
    // CA the verifier does not know is refused, and either refusal imports
    // nothing.
    let media = el.dir.join("county-crls");
    std::fs::create_dir(&media).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let (from, to) = (
        now - time::Duration::hours(1),
        now + time::Duration::days(7),
    );
    std::fs::write(media.join("id-ca-59.crl"), &pki.id_ca_crl).unwrap();
    std::fs::write(
        media.join("id-ca-59-delta.crl"),
        pki.id_ca
            .crl_with(99, &[], from, to, CrlKind::Delta { base: 1 })
            .unwrap(),
    )
    .unwrap();
    let anchors = el.inputs().anchors;
    let e = verifier::import::crls::import_county_crls(&mut v, &media, &anchors).unwrap_err();
    assert!(format!("{e:#}").contains("a delta CRL from"), "{e:#}");
    std::fs::remove_file(media.join("id-ca-59-delta.crl")).unwrap();
    std::fs::write(
        media.join("stranger.crl"),
        pki.rogue_ca.crl(1, &[], from, to).unwrap(),
    )
    .unwrap();
    let e = verifier::import::crls::import_county_crls(&mut v, &media, &anchors).unwrap_err();
    assert!(
        format!("{e:#}").contains("not signed by any CA this verifier knows"),
        "{e:#}"
    );
    assert!(process(&v, &el.inputs(), &out, &clock, &mut |_, _, _| {}).is_err());
    std::fs::remove_file(media.join("stranger.crl")).unwrap();

    // The ID CA's CRL, on the county's media: the run goes through. It
    // lists Rick, revoked before the ballot; Jane counts.
    let imported = verifier::import::crls::import_county_crls(&mut v, &media, &anchors).unwrap();
    assert_eq!(imported.len(), 1);
    assert!(imported[0].issuer.contains("Test DOD ID CA-59"));
    let (outcome, _) = el.process(&v);
    assert_eq!(outcome.accepted, 1);

    // A key compromised before the ballot: a newer CRL from the county
    // revokes Jane from the invalidity date, and her ballot no longer
    // counts.
    let serial = {
        let c = shared::x509::parse_cert(&pki.voter("jane-p256").unwrap().issued.cert_der).unwrap();
        c.raw_serial().to_vec()
    };
    let compromised = pki
        .id_ca
        .crl_with(
            50,
            &[devpki::CrlEntry {
                reason: Some(CrlReason::KeyCompromise),
                invalidity: Some(now - time::Duration::days(1)),
                ..devpki::CrlEntry::new(&serial, now - time::Duration::minutes(30))
            }],
            now - time::Duration::minutes(20),
            to,
            CrlKind::Complete,
        )
        .unwrap();
    std::fs::write(media.join("id-ca-59.crl"), compromised).unwrap();
    verifier::import::crls::import_county_crls(&mut v, &media, &anchors).unwrap();
    let (outcome, decisions) = el.process_at(&v, "canvass-2", t);
    assert_eq!(outcome.accepted, 0);
    assert_eq!(
        decisions.statuses,
        vec![Decided::Rejected(Reason::CertificateRevoked)]
    );
}
