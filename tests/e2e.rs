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
        text.contains("ballot-return status: valid: your ballot passed every check"),
        "{text}"
    );
}

/// A compromised gateway: it holds the log key and the transfer key and can
/// write anything into its own database. These tests play that attacker.
mod witnessed;

mod audit;

mod compromised {
    use shared::clock::ManualClock;
    use shared::manifest::ElectionManifest;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    struct County {
        dir: tempfile::TempDir,
        pki: devpki::DevPki,
        clock: ManualClock,
        fpr: String,
        manifest: ElectionManifest,
        password: sequoia_openpgp::crypto::Password,
        stand_in_keys: Vec<String>,
    }

    impl County {
        /// The dev PKI and the county's real ceremony (test-support crate).
        fn new() -> County {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let pki = devpki::generate(testkit::now()).unwrap();
            pki.write_to(&d.join("pki")).unwrap();
            let c = testkit::ElectionSpec::new(
                "voter_id,edipi,ballot_style\nV-1,1234567890,s\nV-3,3456789012,s\n",
            )
            .origin("ballots.e2e.example/2026")
            .declaration("I am eligible.")
            .anchors(testkit::election::dev_anchors(&pki))
            .set_up(d);
            County {
                dir,
                pki,
                clock: c.clock,
                fpr: c.fpr,
                manifest: c.manifest,
                password: c.password,
                stand_in_keys: c.stand_in_keys,
            }
        }

        fn gw(&self) -> PathBuf {
            self.dir.path().join("gw")
        }

        /// A voter's real upload (signed, encrypted).
        fn upload(&self, label: &str, marks: &str) -> Vec<u8> {
            let v = &self.pki.voter(label).unwrap().issued;
            testkit::voters::upload(
                &self.manifest,
                &self.pki,
                v,
                "s",
                format!("%PDF-1.7 {marks}").into_bytes(),
            )
        }

        /// Logs messages through the gateway's own sequencer (as voter V-1
        /// or V-3), returning the receipts.
        fn log(&self, data: &Path, items: Vec<(&str, &str, Vec<u8>)>) -> Vec<String> {
            testkit::voters::log_directly(
                data,
                &self.clock,
                "2026-general",
                10,
                &self.stand_in_keys,
                items
                    .into_iter()
                    .map(|(voter, identity, message)| testkit::voters::Logged {
                        voter_id: voter.into(),
                        identity: identity.into(),
                        client_cert: vec![],
                        message,
                        at: None,
                        witnessed_at: None,
                    }),
            )
            .into_iter()
            .map(|a| a.receipt)
            .collect()
        }

        fn export(&self, data: &Path, name: &str) -> PathBuf {
            gateway::export::export(
                data,
                &[self.pki.root_crl.clone(), self.pki.id_ca_crl.clone()],
                std::slice::from_ref(&self.pki.id_ca.issued.cert_der),
                &self.dir.path().join(name),
                false,
                &self.clock,
            )
            .unwrap()
            .unwrap()
            .dir
        }

        fn verifier(&self) -> rusqlite::Connection {
            verifier::state::open(&verifier::state::db_path(&self.dir.path().join("home"))).unwrap()
        }

        fn process(
            &self,
            conn: &rusqlite::Connection,
            out: &str,
        ) -> (verifier::process::Outcome, Vec<shared::status::Status>) {
            let loaded =
                verifier::ceremony::load(&self.dir.path().join("home"), &self.password).unwrap();
            let anchors = verifier::ceremony::pinned_anchors(conn, &loaded.manifest).unwrap();
            let inputs = verifier::process::Inputs::new(&loaded, Some(&self.password), anchors);
            let dir = self.dir.path().join(out);
            let o = verifier::process::process(conn, &inputs, &dir, &self.clock, &mut |_, _, _| {})
                .unwrap();
            let s = shared::status::StatusFile::open_signed(
                &std::fs::read(dir.join("status.signed")).unwrap(),
                &self.fpr,
            )
            .unwrap();
            (o, s.statuses)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_ballot_made_with_openssl_and_uploaded_with_curl_is_accepted_end_to_end() {
        use std::process::Command;
        let c = County::new();
        let d = c.dir.path().to_path_buf();
        let config =
            testkit::server::config(&c.gw(), &d.join("pki"), gateway::config::Limits::default());
        let (server, port) = testkit::server::start(&config, Arc::new(c.clock.clone())).await;

        // 1. The package in our format, signed by openssl (not our CMS code).
        let package = shared::ballot::BallotPackage::new(
            "2026-general",
            "s",
            "application/pdf",
            b"%PDF-1.7 signed by openssl".to_vec(),
            "I am eligible.",
        )
        .to_bytes()
        .unwrap();
        std::fs::write(d.join("package.bin"), &package).unwrap();
        testkit::voters::openssl_cms_sign(
            &d.join("pki"),
            "jane-p256",
            &d.join("package.bin"),
            &d.join("package.p7m"),
        );
        // 2. Our code only encrypts it to the election key.
        let cert = shared::pgp::read_public_cert(&c.manifest.election_cert).unwrap();
        let upload =
            shared::pgp::encrypt(&cert, &std::fs::read(d.join("package.p7m")).unwrap()).unwrap();
        std::fs::write(d.join("upload.pgp"), &upload).unwrap();
        // 3. curl uploads it with the voter's certificate.
        let url = format!("https://localhost:{port}{}", shared::api::BALLOTS);
        let dd = d.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("curl")
                .current_dir(&dd)
                .args([
                    "-sS",
                    "--fail-with-body",
                    "--cacert",
                    "pki/anchors/test-dod-root-ca-3.pem",
                ])
                .args([
                    "--cert",
                    "pki/voters/jane-p256.cert.pem",
                    "--key",
                    "pki/voters/jane-p256.key.pem",
                ])
                .args([
                    "-H",
                    "Content-Type: application/octet-stream",
                    "--data-binary",
                    "@upload.pgp",
                    &url,
                ])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "curl: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: shared::api::ReceiptAnswer = serde_json::from_slice(&out.stdout).unwrap();
        voter::client::check_receipt(&c.manifest, &upload, &answer).unwrap();
        server.stop().await.unwrap();

        // 4. Through the media to the verifier: counted.
        let bundle = c.export(&c.gw(), "usb");
        let mut v = c.verifier();
        import(&c, &mut v, &bundle).unwrap();
        let (o, _) = c.process(&v, "canvass");
        assert_eq!((o.accepted, o.rejected_total()), (1, 0));
    }

    fn import(
        c: &County,
        conn: &mut rusqlite::Connection,
        bundle: &Path,
    ) -> Result<verifier::import::Imported, verifier::import::ImportError> {
        verifier::import::import(conn, bundle, &c.clock, &mut |_, _| {})
    }

    #[test]
    fn a_ballot_the_gateway_writes_without_a_voter_signature_is_rejected() {
        let c = County::new();
        let real = c.upload("jane-p256", "jane's real ballot");
        // The attacker seals an unsigned ballot package for maria (V-3).
        let forged_package = shared::ballot::BallotPackage::new(
            "2026-general",
            "s",
            "application/pdf",
            b"%PDF forged".to_vec(),
            "I am eligible.",
        )
        .to_bytes()
        .unwrap();
        let cert = shared::pgp::read_public_cert(&c.manifest.election_cert).unwrap();
        let forged = shared::pgp::encrypt(&cert, &forged_package).unwrap();
        c.log(
            &c.gw(),
            vec![
                ("V-1", "edipi:1234567890", real),
                ("V-3", "edipi:3456789012", forged),
            ],
        );
        let bundle = c.export(&c.gw(), "usb");
        let mut v = c.verifier();
        import(&c, &mut v, &bundle).unwrap();
        let (o, statuses) = c.process(&v, "canvass");
        assert_eq!(o.accepted, 1);
        assert_eq!(
            statuses[1],
            shared::status::Status::Rejected(shared::status::Reason::BadSignature)
        );
    }

    #[test]
    fn a_ballot_deleted_after_its_receipt_makes_the_next_import_fail_consistency() {
        let c = County::new();
        c.log(
            &c.gw(),
            vec![("V-1", "edipi:1234567890", c.upload("jane-p256", "a"))],
        );
        // The attacker keeps a copy of the database from before maria's ballot.
        let before = c.dir.path().join("gw-before");
        testkit::copy_dir(&c.gw(), &before);
        let receipts = c.log(
            &c.gw(),
            vec![("V-3", "edipi:3456789012", c.upload("maria-rsa", "b"))],
        );
        let b1 = c.export(&c.gw(), "usb1");
        let mut v = c.verifier();
        import(&c, &mut v, &b1).unwrap();
        // Now the attacker drops maria's ballot: it goes on from the old copy
        // (renumbering everything after it), forges the export record so the
        // next bundle looks like bundle 2, and logs new ballots.
        let conn = rusqlite::Connection::open(gateway::store::db_path(&before)).unwrap();
        conn.execute(
            "INSERT INTO exports (sequence, first_index, entry_count, checkpoint_size, created_at) VALUES (1, 0, 2, 2, 0)",
            [],
        )
        .unwrap();
        drop(conn);
        c.log(
            &before,
            vec![
                ("V-3", "edipi:3456789012", c.upload("maria-rsa", "c")),
                ("V-1", "edipi:1234567890", c.upload("jane-p256", "d")),
            ],
        );
        let b2 = c.export(&before, "usb2");
        let e = import(&c, &mut v, &b2).unwrap_err();
        assert!(
            matches!(e, verifier::import::ImportError::Inconsistent(_)),
            "{e}"
        );
        // Maria's own receipt shows it too: the gateway's new checkpoint is
        // not an extension of the one in her receipt.
        let log_key = shared::note::NoteVerifier::from_vkey(&c.manifest.log_key).unwrap();
        let r = shared::receipt::Receipt::parse(receipts[0].as_bytes()).unwrap();
        let old = r.verify(&log_key).unwrap();
        let conn = rusqlite::Connection::open(gateway::store::db_path(&before)).unwrap();
        let latest: String = conn
            .query_row(
                "SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let latest =
            shared::checkpoint::SignedCheckpoint::verify(latest.as_bytes(), &log_key).unwrap();
        let tree = gateway::sequencer::load_and_verify(&conn, &log_key)
            .unwrap()
            .tree;
        let proof = tree
            .consistency_proof(old.checkpoint.size, latest.checkpoint.size)
            .unwrap();
        assert!(shared::merkle::verify_consistency(
            old.checkpoint.size,
            latest.checkpoint.size,
            &proof,
            &old.checkpoint.root,
            &latest.checkpoint.root
        )
        .is_err());
    }

    #[test]
    fn a_ballots_bytes_altered_in_the_database_are_caught() {
        let c = County::new();
        c.log(
            &c.gw(),
            vec![
                ("V-1", "edipi:1234567890", c.upload("jane-p256", "a")),
                ("V-3", "edipi:3456789012", c.upload("maria-rsa", "b")),
            ],
        );
        // The gateway itself refuses to start on the altered database.
        let altered = c.dir.path().join("gw-altered");
        testkit::copy_dir(&c.gw(), &altered);
        let conn = rusqlite::Connection::open(gateway::store::db_path(&altered)).unwrap();
        conn.execute(
            "UPDATE ballots SET message = x'c1c2c3' WHERE leaf_index = 1",
            [],
        )
        .unwrap();
        drop(conn);
        let keys = gateway::setup::load_keys(&altered).unwrap();
        assert!(gateway::sequencer::load_and_verify(
            &gateway::store::open(&gateway::store::db_path(&altered)).unwrap(),
            &keys.log.verifier()
        )
        .is_err());
        // Exported anyway, the bundle is refused by the verifier.
        let b = c.export(&altered, "usb");
        let mut v = c.verifier();
        let e = import(&c, &mut v, &b).unwrap_err();
        assert!(
            matches!(
                e,
                verifier::import::ImportError::Malformed(_)
                    | verifier::import::ImportError::FileMismatch { .. }
            ),
            "{e}"
        );
        // Altering the log entry too (re-hashing the leaf) breaks the root.
        let both = c.dir.path().join("gw-both");
        testkit::copy_dir(&c.gw(), &both);
        let conn = rusqlite::Connection::open(gateway::store::db_path(&both)).unwrap();
        let entry: Vec<u8> = conn
            .query_row(
                "SELECT log_entry FROM ballots WHERE leaf_index = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mut e1 = shared::log_entry::LogEntry::from_bytes(&entry).unwrap();
        let fake = b"\xc1\xc2\xc3".to_vec();
        use sha2::Digest;
        e1.message_sha256 = sha2::Sha256::digest(&fake).into();
        let eb = e1.to_bytes().unwrap();
        conn.execute(
            "UPDATE ballots SET message = ?1, message_sha256 = ?2, log_entry = ?3, leaf_hash = ?4 WHERE leaf_index = 1",
            rusqlite::params![fake, e1.message_sha256.as_slice(), eb, shared::merkle::leaf_hash(&eb).as_slice()],
        )
        .unwrap();
        drop(conn);
        let b = c.export(&both, "usb-both");
        let mut v2 = verifier::state::open(&c.dir.path().join("v2.db")).unwrap();
        verifier::state::set_pins(&v2, &verifier::state::pins(&c.verifier()).unwrap()).unwrap();
        let e = import(&c, &mut v2, &b).unwrap_err();
        assert!(
            matches!(e, verifier::import::ImportError::Inconsistent(_)),
            "{e}"
        );
    }
}
