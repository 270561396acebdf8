//! The real server, one test per acceptance check of DESIGN section 5:
//! each refusal has its own status and stable code (or TLS alert), is
//! recorded as a security event, and stores nothing.
//!
//! Why one file of ~750 lines: one test per acceptance check of the gateway, in the order of
//! DESIGN section 5, so the list can be read against the design.

use crate::fixture::{post, wait_for_event, World, ELECTION};
use devpki::{cac_spec, CertSpec, KeyAlg};
use gateway::config::Limits;
use http::{Method, StatusCode};
use sequoia_openpgp as openpgp;
use shared::receipt::Receipt;
use std::io::Write;
use voter::client;

fn code(a: &voter::client::Answer) -> String {
    a.error().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_ballot_gets_a_receipt_that_verifies_and_a_retry_gets_the_same_one() {
    let w = World::new(Limits::default());
    let r = w.start().await;
    for label in ["jane-p256", "maria-rsa"] {
        let upload = w.ballot(label, "candidate A");
        let gw = w.client(&r, label);
        let a = post(&gw, upload.clone()).await.unwrap();
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&a.body)
        );
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        let (receipt, _) = client::check_receipt(
            &w.county.manifest,
            &upload,
            &serde_json::from_value(v.clone()).unwrap(),
        )
        .unwrap();
        let again = post(&gw, upload.clone()).await.unwrap();
        let v2: serde_json::Value = serde_json::from_slice(&again.body).unwrap();
        assert_eq!(
            v2["receipt"], v["receipt"],
            "a retry returns the same receipt"
        );
        assert_eq!(v2["duplicate"], true);
        assert_eq!(
            Receipt::parse(v2["receipt"].as_str().unwrap().as_bytes()).unwrap(),
            receipt
        );
    }
    // A county voter certificate (URI identity) is accepted too.
    let gw = w.client_with(&r, &w.pki.voter("omar-county").unwrap().issued);
    let upload = voter::client::prepare(
        &w.county.manifest,
        &client::Ballot {
            content: b"%PDF-1.7 county".to_vec(),
            media_type: "application/pdf".into(),
            ballot_style: "style-2".into(),
        },
        &client::Credentials {
            cert: w.pki.voter("omar-county").unwrap().issued.cert_der.clone(),
            chain: vec![],
            key: Box::new(
                shared::cms::VoterKey::from_pem(
                    w.pki
                        .voter("omar-county")
                        .unwrap()
                        .issued
                        .key
                        .pkcs8_pem()
                        .as_bytes(),
                )
                .unwrap(),
            ),
        },
    )
    .unwrap();
    assert_eq!(post(&gw, upload).await.unwrap().status, StatusCode::OK);
    assert_eq!(w.ballots_stored(), 3);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_own_code_and_stores_nothing() {
    let w = World::new(Limits::default());
    let r = w.start().await;
    let jane_upload = w.ballot("jane-p256", "x");

    // No client certificate.
    let a = post(&w.anonymous(&r), jane_upload.clone()).await.unwrap();
    assert_eq!(
        (a.status, code(&a).as_str()),
        (StatusCode::UNAUTHORIZED, "client-certificate-required")
    );

    // Certificates refused during the TLS handshake, each with its own reason.
    let stranger_ca = devpki::Ca::new_root(&CertSpec {
        ca: Some(None),
        ..CertSpec::leaf(
            "CN=Some Other Root,O=Elsewhere,C=US",
            KeyAlg::P256,
            time::OffsetDateTime::now_utc(),
            365,
        )
    })
    .unwrap();
    let stranger = stranger_ca
        .issue(&cac_spec(
            "DOE",
            "JANE",
            "Q",
            "1234567890",
            KeyAlg::P256,
            time::OffsetDateTime::now_utc(),
        ))
        .unwrap();
    for (gw, event) in [
        (w.client_with(&r, &stranger), "unknown-issuer"),
        (w.client(&r, "mallory-rogue"), "bad-certificate-signature"),
        (w.client(&r, "ed-expired"), "certificate-expired"),
        (w.client(&r, "rick-revoked"), "certificate-revoked"),
        (
            w.client(&r, "nora-noclientauth"),
            "client-auth-not-permitted",
        ),
    ] {
        let result = post(&gw, jane_upload.clone()).await;
        assert!(
            result.is_err(),
            "{event}: the handshake should fail, got {:?}",
            result.map(|a| a.status)
        );
        assert!(
            wait_for_event(&w, event).await >= 1,
            "{event} was not recorded"
        );
    }

    // Refusals after the handshake carry a JSON code.
    for (label, status, expected) in [
        (
            "jane-cardauth",
            StatusCode::FORBIDDEN,
            "card-authentication-certificate",
        ),
        ("ned-nopolicy", StatusCode::FORBIDDEN, "policy-not-accepted"),
        ("john-p384", StatusCode::FORBIDDEN, "not-on-roster"),
    ] {
        let a = post(&w.client(&r, label), jane_upload.clone())
            .await
            .unwrap();
        assert_eq!((a.status, code(&a).as_str()), (status, expected), "{label}");
    }

    let jane = w.client(&r, "jane-p256");
    // Not OpenPGP.
    let a = post(&jane, b"%PDF-1.7 an unencrypted ballot".to_vec())
        .await
        .unwrap();
    assert_eq!(
        (a.status, code(&a).as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-openpgp")
    );
    // Encrypted to another key.
    let other = shared::pgp::generate_election_key("Not the election", None).unwrap();
    let a = post(&jane, shared::pgp::encrypt(&other, b"x").unwrap())
        .await
        .unwrap();
    assert_eq!(
        (a.status, code(&a).as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "wrong-recipient")
    );
    // SEIPD v1 (what a v4 OpenPGP key without AEAD support gets).
    let (v4, _) = openpgp::cert::CertBuilder::general_purpose(Some("old"))
        .set_profile(openpgp::Profile::RFC4880)
        .unwrap()
        .set_features(openpgp::types::Features::empty().set_seipdv1())
        .unwrap()
        .generate()
        .unwrap();
    let a = post(&jane, shared::pgp::encrypt(&v4, b"x").unwrap())
        .await
        .unwrap();
    assert_eq!(
        (a.status, code(&a).as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "seipd-v1-not-accepted")
    );
    // Encrypted to the election key, but with a cipher outside the set
    // docs/spec/election-encryption.md accepts.
    let mut twofish = Vec::new();
    {
        use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message};
        let p = openpgp::policy::StandardPolicy::new();
        let vc = w.county.election_key.with_policy(&p, None).unwrap();
        let recipients = vc.keys().subkeys().for_transport_encryption();
        let m = Encryptor::for_recipients(Message::new(&mut twofish), recipients)
            .symmetric_algo(openpgp::types::SymmetricAlgorithm::Twofish)
            .build()
            .unwrap();
        let mut l = LiteralWriter::new(m).build().unwrap();
        l.write_all(b"x").unwrap();
        l.finalize().unwrap();
    }
    let a = post(&jane, twofish).await.unwrap();
    assert_eq!(
        (a.status, code(&a).as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "cipher-not-accepted")
    );
    // Password-encrypted.
    let mut pw = Vec::new();
    {
        use openpgp::serialize::stream::{Encryptor, LiteralWriter, Message};
        let m = Encryptor::with_passwords(
            Message::new(&mut pw),
            vec![openpgp::crypto::Password::from("pw")],
        )
        .build()
        .unwrap();
        let mut l = LiteralWriter::new(m).build().unwrap();
        l.write_all(b"x").unwrap();
        l.finalize().unwrap();
    }
    let a = post(&jane, pw).await.unwrap();
    assert_eq!(
        (a.status, code(&a).as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "password-encrypted")
    );
    // Oversized: the limit is the largest accepted ballot's package, padded
    // to its bucket (300 KiB -> 512 KiB), plus 64 KiB.
    assert_eq!(shared::ballot::max_padded(300 * 1024), 512 * 1024);
    let a = post(&jane, vec![0xc1; 512 * 1024 + 64 * 1024 + 1])
        .await
        .unwrap();
    assert_eq!(
        (a.status, code(&a).as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "ballot-too-large")
    );

    // Election not open yet, and closed.
    let now = shared::clock::Clock::now(&w.county.clock);
    w.county
        .clock
        .set(shared::clock::UnixTime(w.county.manifest.opens_at.0 - 10));
    let a = post(&jane, jane_upload.clone()).await;
    w.county.clock.set(now);
    // The certificate is checked against the same clock; it is valid then.
    let a = a.unwrap();
    assert_eq!(
        (a.status, code(&a).as_str()),
        (StatusCode::FORBIDDEN, "election-not-open")
    );
    w.county.clock.set(w.county.manifest.closes_at);
    let a = post(&jane, jane_upload.clone()).await.unwrap();
    w.county.clock.set(now);
    assert_eq!(
        (a.status, code(&a).as_str()),
        (StatusCode::FORBIDDEN, "election-closed")
    );

    assert_eq!(w.ballots_stored(), 0, "no refused upload was stored");
    assert!(wait_for_event(&w, "not-on-roster").await >= 1);
    assert!(w.events("wrong-recipient") >= 1);
    // Security events never hold ballot bytes.
    let details: Vec<String> = w
        .db()
        .prepare("SELECT detail FROM security_events UNION ALL SELECT sample FROM refusals")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|d| d.unwrap())
        .collect();
    assert!(details
        .iter()
        .all(|d| !d.contains("%PDF") && d.len() < 2000));

    // And a valid ballot still goes through.
    assert_eq!(
        post(&jane, jane_upload).await.unwrap().status,
        StatusCode::OK
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_over_the_rate_limit_is_told_to_wait() {
    let w = World::new(Limits {
        uploads_per_voter_per_hour: 3,
        max_ballots_per_voter: 10,
    });
    let r = w.start().await;
    let jane = w.client(&r, "jane-p256");
    for i in 0..3 {
        let a = post(&jane, w.ballot("jane-p256", &format!("try {i}")))
            .await
            .unwrap();
        assert_eq!(a.status, StatusCode::OK);
    }
    let a = post(&jane, w.ballot("jane-p256", "one more"))
        .await
        .unwrap();
    assert_eq!(
        (a.status, code(&a).as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate-limited")
    );
    // Another voter is not affected.
    let maria = w.client(&r, "maria-rsa");
    assert_eq!(
        post(&maria, w.ballot("maria-rsa", "m"))
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
    // An hour later the voter may send again.
    w.county.clock.advance(3600);
    assert_eq!(
        post(&jane, w.ballot("jane-p256", "later"))
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
    assert_eq!(w.ballots_stored(), 5);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_survive_a_restart_and_new_checkpoints_extend_old_ones() {
    let obs = testkit::observers::Observers::bind(3, 2);
    let w = World::with_spec(Limits::default(), |s| s.observers(&obs));
    obs.start(
        &w.county.manifest.log_key,
        std::sync::Arc::new(w.county.clock.clone()),
    );
    let r = w.start().await;
    let mut saved = Vec::new();
    for (label, marks) in [("jane-p256", "a"), ("maria-rsa", "b"), ("jane-p256", "c")] {
        let upload = w.ballot(label, marks);
        let a = post(&w.client(&r, label), upload.clone()).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        client::check_receipt(
            &w.county.manifest,
            &upload,
            &serde_json::from_value(v.clone()).unwrap(),
        )
        .unwrap();
        saved.push(client::SavedReceipt {
            election_id: ELECTION.into(),
            election_fingerprint: shared::pgp::fingerprint_hex(&w.county.election_key),
            gateway: String::new(),
            leaf_index: v["leaf_index"].as_u64().unwrap(),
            voter_id: v["voter_id"].as_str().unwrap().into(),
            salt: v["salt"].as_str().unwrap().into(),
            message_sha256: String::new(),
            receipt: v["receipt"].as_str().unwrap().into(),
        });
    }
    r.stop().await;

    let r = w.start().await;
    let a = post(&w.client(&r, "maria-rsa"), w.ballot("maria-rsa", "d"))
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    // Each earlier receipt: still verifies, and the checkpoint the
    // witnesses cosigned after the restart is consistent with it (what
    // `ballot-return status` checks, without a client certificate).
    assert!(w.witnessed(r.port, 4).await.is_some());
    for s in &saved {
        let report = client::status(&w.anonymous(&r), s).await.unwrap();
        assert_eq!(report.standing, client::Standing::NotProcessedYet);
        assert_eq!(report.witnessed_size, Some(4));
    }
    // Only the owner sees a ballot's status.
    let a = w
        .client(&r, "maria-rsa")
        .request(
            Method::GET,
            &format!("/v1/ballots/{}/status", saved[0].leaf_index),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (a.status, code(&a).as_str()),
        (StatusCode::NOT_FOUND, "not-found")
    );
    // Public endpoints need no certificate.
    let a = w
        .anonymous(&r)
        .request(Method::GET, "/v1/log/checkpoint", None)
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    // An inclusion proof from the public endpoint verifies; a size beyond the
    // log is refused.
    let latest = shared::checkpoint::SignedCheckpoint::verify(
        &a.body,
        &shared::note::NoteVerifier::from_vkey(&w.county.manifest.log_key).unwrap(),
    )
    .unwrap();
    let first = Receipt::parse(saved[0].receipt.as_bytes()).unwrap();
    let p = w
        .anonymous(&r)
        .request(
            Method::GET,
            &format!("/v1/log/inclusion?index={}&size=4", first.index),
            None,
        )
        .await
        .unwrap();
    let proof = p.json::<shared::api::InclusionAnswer>().unwrap().proof;
    shared::merkle::verify_inclusion(
        first.index,
        4,
        &first.entry.leaf_hash().unwrap(),
        &proof,
        &latest.checkpoint.root,
    )
    .unwrap();
    let bad = w
        .anonymous(&r)
        .request(Method::GET, "/v1/log/inclusion?index=0&size=5", None)
        .await
        .unwrap();
    assert_eq!(
        (bad.status, code(&bad).as_str()),
        (StatusCode::BAD_REQUEST, "bad-size")
    );
    assert!(String::from_utf8_lossy(&a.body)
        .starts_with("ballots.test-county.example/2026-general\n4\n"));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_then_more_ballots_then_an_export_that_continues() {
    let w = World::new(Limits::default());
    let r = w.start().await;
    for (label, marks) in [("jane-p256", "a"), ("maria-rsa", "b")] {
        assert_eq!(
            post(&w.client(&r, label), w.ballot(label, marks))
                .await
                .unwrap()
                .status,
            StatusCode::OK
        );
    }
    let out = w.dir.path().join("usb");
    let (crls, inter) = gateway::config::pki_files(&w.config.trust).unwrap();
    let clock = w.county.clock.clone();
    let first = gateway::export::export(&w.data(), &crls, &inter, &out, false, &clock)
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.sequence, first.first_index, first.entries),
        (1, 0, 2)
    );
    assert!(
        gateway::export::export(&w.data(), &crls, &inter, &out, false, &clock)
            .unwrap()
            .is_none()
    );

    for (label, marks) in [("jane-p256", "c"), ("omar-county", "d")] {
        let upload = if label == "omar-county" {
            let v = w.pki.voter(label).unwrap();
            voter::client::prepare(
                &w.county.manifest,
                &client::Ballot {
                    content: marks.as_bytes().to_vec(),
                    media_type: "application/pdf".into(),
                    ballot_style: "style-2".into(),
                },
                &client::Credentials {
                    cert: v.issued.cert_der.clone(),
                    chain: vec![],
                    key: Box::new(
                        shared::cms::VoterKey::from_pem(v.issued.key.pkcs8_pem().as_bytes())
                            .unwrap(),
                    ),
                },
            )
            .unwrap()
        } else {
            w.ballot(label, marks)
        };
        assert_eq!(
            post(&w.client(&r, label), upload).await.unwrap().status,
            StatusCode::OK
        );
    }
    let second = gateway::export::export(&w.data(), &crls, &inter, &out, false, &clock)
        .unwrap()
        .unwrap();
    assert_eq!(
        (second.sequence, second.first_index, second.entries),
        (2, 2, 2)
    );

    // The second bundle: signed by the transfer key, continuing the first
    // checkpoint with a valid consistency proof, with every file listed.
    let transfer = shared::pgp::read_public_cert(
        &std::fs::read(w.county.gw_media.join(shared::media::GATEWAY_TRANSFER_KEY)).unwrap(),
    )
    .unwrap();
    let dir = &second.dir;
    let manifest = std::fs::read(dir.join("manifest.bin")).unwrap();
    let sig = std::fs::read(dir.join("manifest.sig")).unwrap();
    shared::pgp::verify_detached(&transfer, &manifest, &sig).unwrap();
    let mut rd = manifest.as_slice();
    let header = shared::bundle::BundleHeader::read(&mut rd).unwrap();
    assert_eq!(
        (header.sequence, header.first_index, header.entry_count),
        (2, 2, 2)
    );
    let log_key = shared::note::NoteVerifier::from_vkey(&w.county.manifest.log_key).unwrap();
    let prev = shared::checkpoint::SignedCheckpoint::verify(
        header.previous_checkpoint.unwrap().as_bytes(),
        &log_key,
    )
    .unwrap();
    let new =
        shared::checkpoint::SignedCheckpoint::verify(header.new_checkpoint.as_bytes(), &log_key)
            .unwrap();
    shared::merkle::verify_consistency(
        2,
        4,
        &header.consistency_proof,
        &prev.checkpoint.root,
        &new.checkpoint.root,
    )
    .unwrap();
    assert!(!header.crls.is_empty() && !header.intermediates.is_empty());
    let mut n = 0;
    while let Some(e) = shared::bundle::BundleEntry::read(&mut rd).unwrap() {
        let ballot = std::fs::read(dir.join(&e.ballot_file)).unwrap();
        use sha2::Digest;
        assert_eq!(
            <[u8; 32]>::from(sha2::Sha256::digest(&ballot)),
            e.ballot_sha256
        );
        n += 1;
    }
    assert_eq!(n, 2);
    // --all starts again from leaf 0 with the next sequence number.
    let all = gateway::export::export(&w.data(), &crls, &inter, &out, true, &clock)
        .unwrap()
        .unwrap();
    assert_eq!((all.sequence, all.first_index, all.entries), (3, 0, 4));
    // No temporary folder is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifiers_status_file_is_checked_imported_and_shown_to_voters() {
    use shared::status::{Reason, Status, StatusFile};
    let w = World::new(Limits::default());
    let r = w.start().await;
    let mut leaves = Vec::new();
    for label in ["jane-p256", "maria-rsa"] {
        let a = post(&w.client(&r, label), w.ballot(label, "x"))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        leaves.push(v.pointer("/leaf_index").unwrap().as_u64().unwrap());
    }
    let cp = w
        .anonymous(&r)
        .request(Method::GET, "/v1/log/checkpoint", None)
        .await
        .unwrap()
        .body;
    let note = shared::note::Note::parse(&cp).unwrap();
    let cosigned = w.county.witness.cosign(&note, 1_800_000_000).unwrap();
    let status = StatusFile {
        election_id: ELECTION.into(),
        checkpoint: cosigned.clone(),
        statuses: vec![Status::Valid, Status::Rejected(Reason::CertificateRevoked)],
    };
    let write = |name: &str, s: &StatusFile, key: &sequoia_openpgp::Cert| {
        let path = w.dir.path().join(name);
        std::fs::write(
            &path,
            shared::signed::sign_document(&s.to_bytes().unwrap(), key, None).unwrap(),
        )
        .unwrap();
        path
    };
    let clock = w.county.clock.clone();
    // Signed by a key other than the election key.
    let impostor = shared::pgp::generate_election_key("impostor", None).unwrap();
    let bad = write("impostor.signed", &status, &impostor);
    assert!(gateway::export::import_status(&w.data(), &bad, &clock).is_err());
    // Without the verifier's cosignature.
    let uncosigned = StatusFile {
        checkpoint: String::from_utf8(cp.to_vec()).unwrap(),
        ..status.clone()
    };
    let bad = write("uncosigned.signed", &uncosigned, &w.county.election_key);
    let e = gateway::export::import_status(&w.data(), &bad, &clock).unwrap_err();
    assert!(format!("{e:#}").contains("cosignature"), "{e:#}");
    // A checkpoint of a forked log (signed with the log key, another root).
    let keys = gateway::setup::load_keys(&w.data()).unwrap();
    let forked = shared::checkpoint::Checkpoint {
        origin: crate::fixture::ORIGIN.into(),
        size: 2,
        root: [7; 32],
        extensions: vec![],
    }
    .sign(&keys.log)
    .unwrap();
    let forked = w
        .county
        .witness
        .cosign(
            &shared::note::Note::parse(forked.as_bytes()).unwrap(),
            1_800_000_000,
        )
        .unwrap();
    let bad = write(
        "forked.signed",
        &StatusFile {
            checkpoint: forked,
            ..status.clone()
        },
        &w.county.election_key,
    );
    let e = gateway::export::import_status(&w.data(), &bad, &clock).unwrap_err();
    assert!(format!("{e:#}").contains("forked"), "{e:#}");

    let good = write("status.signed", &status, &w.county.election_key);
    gateway::export::import_status(&w.data(), &good, &clock).unwrap();
    let jane = w
        .client(&r, "jane-p256")
        .request(
            Method::GET,
            &format!("/v1/ballots/{}/status", leaves[0]),
            None,
        )
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&jane.body).unwrap();
    assert_eq!(v.pointer("/status").unwrap(), "valid");
    let maria = w
        .client(&r, "maria-rsa")
        .request(
            Method::GET,
            &format!("/v1/ballots/{}/status", leaves[1]),
            None,
        )
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&maria.body).unwrap();
    assert_eq!(v.pointer("/status").unwrap(), "rejected");
    assert!(v
        .pointer("/explanation")
        .unwrap()
        .as_str()
        .unwrap()
        .contains("revoked"));
    // Auditors can fetch the signed status file.
    let a = w
        .anonymous(&r)
        .request(Method::GET, "/v1/status-file", None)
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        StatusFile::open_signed(
            &a.body,
            &shared::pgp::fingerprint_hex(&w.county.election_key)
        )
        .unwrap(),
        status
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_served_with_the_same_rules() {
    use http_body_util::BodyExt;
    let w = World::new(Limits::default());
    let r = w.start().await;
    let v = w.pki.voter("jane-p256").unwrap();
    let chain = vec![
        v.issued.cert_der.clone().into(),
        w.pki.id_ca.issued.cert_der.clone().into(),
    ];
    let key = shared::pki::tls_key_from_pem(v.issued.key.pkcs8_pem().as_bytes()).unwrap();
    let tls = voter::tls::client_config(
        &[w.pki.root.issued.cert_der.clone().into()],
        Some((chain, key)),
        &[b"h2"],
    )
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", r.port))
        .await
        .unwrap();
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let upload = w.ballot("jane-p256", "over h2");
    let req = http::Request::post("https://localhost/v1/ballots")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            upload.clone(),
        )))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    client::check_receipt(
        &w.county.manifest,
        &upload,
        &serde_json::from_value(v.clone()).unwrap(),
    )
    .unwrap();
    r.stop().await;
}

/// Bombs and malformed OpenPGP sent over the real HTTPS endpoint: each gets
/// a specific refusal and nothing is stored. (The same inputs against the
/// check itself and against the verifier's decryption are in
/// shared/tests/integration/bombs.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bombs_and_malformed_openpgp_are_refused_at_the_door() {
    let w = World::new(Limits {
        uploads_per_voter_per_hour: 1000,
        ..Limits::default()
    });
    let r = w.start().await;
    let gw = w.client(&r, "jane-p256");
    let packet = |tag: u8, body: &[u8]| {
        let mut p = vec![0xc0 | tag, 0xff];
        p.extend((body.len() as u32).to_be_bytes());
        p.extend_from_slice(body);
        p
    };
    // 2,000 nested Compressed Data packets (algorithm 0) around a literal.
    let mut nested = packet(11, b"b\0\0\0\0\0%PDF");
    for _ in 0..2000 {
        nested = packet(8, &[&[0u8][..], &nested].concat());
    }
    // A literal packet claiming 4 GiB.
    let mut huge = vec![0xcb, 0xff];
    huge.extend(u32::MAX.to_be_bytes());
    huge.extend_from_slice(b"b\0\0\0\0\0abcd");
    // A valid ballot cut short inside its encrypted packet.
    let valid = w.ballot("jane-p256", "cut");
    let cut = valid[..valid.len() / 2].to_vec();
    // Compressed data with a DEFLATE stream where a ballot should be.
    let zip = packet(8, &[1u8, 0x63, 0x60, 0x18, 0x05, 0xa3, 0x60]);
    let (structure, not_openpgp) = (
        (StatusCode::UNPROCESSABLE_ENTITY, "bad-ballot-structure"),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-openpgp"),
    );
    for (what, body, expected) in [
        ("nested", nested, structure),
        ("4 GiB literal", huge, structure),
        // The parser cannot read past the cut: not an OpenPGP message.
        ("truncated", cut, not_openpgp),
        ("compressed", zip, structure),
    ] {
        let a = post(&gw, body).await.unwrap();
        assert_eq!(
            (a.status, code(&a).as_str()),
            expected,
            "{what}: {}",
            String::from_utf8_lossy(&a.body)
        );
    }
    assert_eq!(w.ballots_stored(), 0);
    r.stop().await;
}

/// With TLS 1.3 a client sends its request right behind its certificate,
/// before the gateway's verdict: a revoked card's upload is already on the
/// wire when the alert comes back. The voter must still read that the card
/// was refused (not that the line broke), and nothing is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_card_hears_why_even_with_its_upload_in_flight() {
    let w = World::new(Limits::default());
    let r = w.start().await;
    // A body far larger than the socket buffers, so that most of it is
    // still unread when the gateway gives up on the handshake.
    let big = vec![0x5a_u8; 4 << 20];
    let gw = w.client(&r, "rick-revoked");
    for round in 0..8 {
        let mut tries = 0;
        let outcome = client::upload(
            &gw,
            &big,
            client::Retries {
                attempts: 3,
                first_wait: std::time::Duration::from_millis(10),
            },
            &mut |_| {},
            &mut |m| {
                eprintln!("{m}");
                tries += 1
            },
        )
        .await;
        match outcome {
            Err(client::NotSent::CardRefused(why)) => {
                assert_eq!(why.0, rustls::AlertDescription::CertificateRevoked);
                assert!(why.to_string().contains("has been revoked"), "{why}");
            }
            other => panic!("round {round}: {other:?}"),
        }
        assert_eq!(tries, 0, "round {round}: a refused card was retried");
    }
    assert_eq!(w.ballots_stored(), 0);
    r.stop().await;
}
