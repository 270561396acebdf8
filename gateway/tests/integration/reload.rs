//! CRLs reloaded without a restart, under load: a new CRL takes effect when
//! its file changes, no upload is refused while it happens, and a CRL that
//! does not verify leaves the previous set in force.

use crate::fixture::{post, World};
use gateway::config::Limits;
use http::StatusCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Uploads as `label` until `stop`; every answer must be 200.
async fn keep_uploading(
    w: Arc<World>,
    port: u16,
    label: &'static str,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) {
    let gw = w.client_at(port, &w.pki.voter(label).unwrap().issued);
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let a = post(&gw, w.ballot(label, &format!("ballot {n}")))
            .await
            .unwrap_or_else(|e| panic!("{label}'s upload {n} failed during a reload: {e:#}"));
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{label}'s upload {n}: {}",
            String::from_utf8_lossy(&a.body)
        );
        n += 1;
        done.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits (up to 60 s) until the event `code` was recorded `n` times.
async fn events_reach(w: &World, code: &str, n: u64) -> bool {
    for _ in 0..600 {
        if w.events(code) >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_crl_takes_effect_under_load_and_a_bad_one_changes_nothing() {
    let mut w = World::new(Limits {
        uploads_per_voter_per_hour: 100_000,
        max_ballots_per_voter: 100_000,
    });
    w.config.server.reload_check_secs = 1;
    let w = Arc::new(w);
    let r = w.start().await;
    let crls = w.dir.path().join("pki/crls");

    // Maria's card is good before the reload.
    let maria = w.client(&r, "maria-rsa");
    let a = post(&maria, w.ballot("maria-rsa", "before")).await.unwrap();
    assert_eq!(a.status, StatusCode::OK);

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let loops: Vec<_> = ["jane-p256", "omar-county"]
        .into_iter()
        .map(|label| {
            tokio::spawn(keep_uploading(
                w.clone(),
                r.port,
                label,
                stop.clone(),
                done.clone(),
            ))
        })
        .collect();
    while done.load(Ordering::SeqCst) < 4 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The ID CA reissues its CRL, now listing Maria; the file is replaced
    // the way an operator's refresh job does it (write, then rename).
    let now = time::OffsetDateTime::now_utc();
    let maria_serial = shared::x509::parse_cert(&w.pki.voter("maria-rsa").unwrap().issued.cert_der)
        .unwrap()
        .raw_serial()
        .to_vec();
    let rick_serial =
        shared::x509::parse_cert(&w.pki.voter("rick-revoked").unwrap().issued.cert_der)
            .unwrap()
            .raw_serial()
            .to_vec();
    let new_crl = w
        .pki
        .id_ca
        .crl(
            2,
            &[
                (&rick_serial, now - time::Duration::days(2)),
                (&maria_serial, now - time::Duration::minutes(5)),
            ],
            now - time::Duration::minutes(10),
            now + time::Duration::days(7),
        )
        .unwrap();
    let tmp = crls.join(".refresh.tmp");
    std::fs::write(&tmp, &new_crl).unwrap();
    std::fs::rename(&tmp, crls.join("test-dod-id-ca-59.crl")).unwrap();
    assert!(
        events_reach(&w, "reload", 1).await,
        "the changed CRL file was not reloaded"
    );
    // A card the new CRL revokes is refused at the handshake (within a
    // poll or two of the change).
    let mut refused = false;
    for i in 0..60 {
        if post(&maria, w.ballot("maria-rsa", &format!("after {i}")))
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(refused, "Maria's revoked card was still accepted");
    let before = done.load(Ordering::SeqCst);

    // A CRL file that does not verify (here: cut short) is refused as a
    // whole; the set in force stays, Maria stays refused, voters go on.
    std::fs::write(
        crls.join("test-county-voter-ca.crl"),
        &new_crl[..new_crl.len() / 2],
    )
    .unwrap();
    assert!(
        events_reach(&w, "reload-refused", 1).await,
        "the bad CRL was not refused"
    );
    assert!(post(&maria, w.ballot("maria-rsa", "again")).await.is_err());
    while done.load(Ordering::SeqCst) < before + 4 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGHUP's path: an explicit reload says why it keeps the old set.
    let e = r.reloader().reload().unwrap_err();
    assert!(format!("{e:#}").contains("CRL"), "{e:#}");

    stop.store(true, Ordering::SeqCst);
    for l in loops {
        l.await.unwrap();
    }
    assert!(done.load(Ordering::SeqCst) >= 8);
    r.stop().await;
}

/// The leaf certificate the gateway on `port` presents.
async fn served_certificate(w: &World, port: u16) -> Vec<u8> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let cfg = w.tls_for(&w.pki.voter("jane-p256").unwrap().issued, &[b"http/1.1"]);
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_tls_certificate_is_served_after_a_reload_and_a_mismatched_key_is_refused() {
    let w = World::new(Limits::default());
    let r = w.start().await;
    let server = w.dir.path().join("pki/server");
    assert_eq!(served_certificate(&w, r.port).await, w.pki.server.cert_der);

    // The certificate is renewed (a new key, a new certificate for the
    // same name), written beside the old files and renamed into place.
    let now = time::OffsetDateTime::now_utc();
    let renewed = w
        .pki
        .root
        .issue(&devpki::CertSpec {
            ekus: vec![devpki::oid::SERVER_AUTH],
            dns: vec!["localhost".into()],
            ..devpki::CertSpec::leaf(
                "CN=localhost,O=Renewed Gateway,C=US",
                devpki::KeyAlg::P256,
                now,
                90,
            )
        })
        .unwrap();
    let put = |name: &str, data: &[u8]| {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = server.join(format!(".{name}.new"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .unwrap();
        std::io::Write::write_all(&mut f, data).unwrap();
        std::fs::rename(&tmp, server.join(name)).unwrap();
    };
    put("localhost.key.pem", renewed.key.pkcs8_pem().as_bytes());
    put("localhost.cert.pem", renewed.cert_pem().as_bytes());
    r.reloader().reload().unwrap();
    assert_eq!(served_certificate(&w, r.port).await, renewed.cert_der);

    // A key that does not match its certificate: refused whole, and the
    // renewed certificate stays in service.
    put("localhost.key.pem", w.pki.server.key.pkcs8_pem().as_bytes());
    let e = r.reloader().reload().unwrap_err();
    assert!(format!("{e:#}").contains("do not match"), "{e:#}");
    assert_eq!(served_certificate(&w, r.port).await, renewed.cert_der);
    r.stop().await;
}
