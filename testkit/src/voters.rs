//! Voters of the development PKI: their signing credentials, their
//! uploads made by the voter's own code, TLS clients that present their
//! certificates, and ballots logged straight through the gateway's
//! sequencer (what a gateway records, with or without its checks).

use devpki::{DevPki, Issued};
use gateway::sequencer::{Accepted, NewBallot, Sequencer, SequencerConfig};
use rustls_pki_types::CertificateDer;
use shared::clock::{Clock, ManualClock, UnixTime};
use shared::manifest::ElectionManifest;
use std::path::Path;
use std::sync::Arc;
use voter::client::{Ballot, Credentials, Gateway};

/// A P-256 CAC for the EDIPI `edipi`, issued by the development ID CA.
pub fn issue_cac(pki: &DevPki, edipi: &str) -> Issued {
    pki.id_ca
        .issue(&devpki::cac_spec(
            "LOAD",
            "TEST",
            "X",
            edipi,
            devpki::KeyAlg::P256,
            crate::now(),
        ))
        .unwrap()
}

/// The signing credentials of `issued`, with the ID CA as its chain.
pub fn credentials(pki: &DevPki, issued: &Issued) -> Credentials {
    Credentials {
        cert: issued.cert_der.clone(),
        chain: vec![pki.id_ca.issued.cert_der.clone()],
        key: Box::new(shared::cms::VoterKey::from_pem(issued.key.pkcs8_pem().as_bytes()).unwrap()),
    }
}

/// A signed and sealed upload of a PDF ballot `content` in `style`.
pub fn upload(
    manifest: &ElectionManifest,
    pki: &DevPki,
    issued: &Issued,
    style: &str,
    content: Vec<u8>,
) -> Vec<u8> {
    voter::client::prepare(
        manifest,
        &Ballot {
            content,
            media_type: shared::ballot::MEDIA_PDF.into(),
            ballot_style: style.into(),
        },
        &credentials(pki, issued),
    )
    .unwrap()
}

/// The roots a client trusts for the gateway's TLS certificate.
fn roots(pki: &DevPki) -> Vec<CertificateDer<'static>> {
    vec![pki.root.issued.cert_der.clone().into()]
}

/// A TLS client configuration presenting `issued` (with the ID CA), or no
/// certificate.
pub fn tls(pki: &DevPki, issued: Option<&Issued>, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let client = issued.map(|i| {
        let chain = vec![
            i.cert_der.clone().into(),
            pki.id_ca.issued.cert_der.clone().into(),
        ];
        let key = shared::pki::tls_key_from_pem(i.key.pkcs8_pem().as_bytes()).unwrap();
        (chain, key)
    });
    voter::tls::client_config(&roots(pki), client, alpn).unwrap()
}

/// A voter client of the gateway on `port` of localhost, presenting
/// `issued` (or no certificate), over HTTP/1.1.
pub fn client(pki: &DevPki, issued: Option<&Issued>, port: u16) -> Gateway {
    Gateway::new(
        &format!("https://localhost:{port}"),
        tls(pki, issued, &[b"http/1.1"]),
    )
    .unwrap()
}

/// A ballot as a gateway records it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// The roster's voter id.
    pub voter_id: String,
    /// The canonical identity of the uploading certificate.
    pub identity: String,
    /// The uploading certificate (DER).
    pub client_cert: Vec<u8>,
    /// The uploaded message.
    pub message: Vec<u8>,
    /// The time of receipt to set on the clock first, if any.
    pub at: Option<u64>,
    /// When the stand-in witnesses cosign the checkpoint that first
    /// includes it (by default its time of receipt).
    pub witnessed_at: Option<u64>,
}

/// Logs ballots through the gateway's own sequencer in the data folder
/// `gw`, with none of the server's checks (what a compromised gateway could
/// log), and returns what the sequencer answered for each. With
/// `stand_ins` (the stand-in witnesses' secret keys), each new checkpoint
/// is cosigned by all of them at the ballot's `witnessed_at` (or its time
/// of receipt) and stored as witnessed, as honest witnesses answering at
/// once would have it.
pub fn log_directly(
    gw: &Path,
    clock: &ManualClock,
    election_id: &str,
    max_ballots_per_voter: u64,
    stand_ins: &[String],
    ballots: impl IntoIterator<Item = Logged>,
) -> Vec<Accepted> {
    let keys = gateway::setup::load_keys(gw).unwrap();
    let (seq, writer) = Sequencer::start(
        &gateway::store::db_path(gw),
        keys.log,
        Arc::new(clock.clone()),
        SequencerConfig {
            election_id: election_id.into(),
            max_ballots_per_voter,
            // Tests log at any time they choose, as a compromised gateway
            // could (late and backdated ballots).
            closes_at: None,
        },
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let accepted = rt.block_on(async {
        let mut out = Vec::new();
        for b in ballots {
            if let Some(t) = b.at {
                clock.set(UnixTime(t));
            }
            let witnessed_at = b.witnessed_at.map_or(clock.now(), UnixTime);
            out.push(
                seq.submit(NewBallot {
                    voter_id: b.voter_id,
                    identity: b.identity,
                    client_cert: b.client_cert,
                    message: b.message.into(),
                })
                .await
                .unwrap(),
            );
            if !stand_ins.is_empty() {
                witness_latest(gw, stand_ins, witnessed_at);
            }
        }
        seq.stop().await;
        out
    });
    writer.join().unwrap();
    accepted
}

/// Cosigns the latest checkpoint in the gateway's data folder `gw` with
/// every stand-in witness key in `stand_ins` at time `at`, and stores it
/// in the gateway's `witnessed` table as its witnessing task would.
pub fn witness_latest(gw: &Path, stand_ins: &[String], at: UnixTime) {
    let conn = gateway::store::open(&gateway::store::db_path(gw)).unwrap();
    let (size, mut note): (i64, String) = conn
        .query_row(
            "SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    for key in stand_ins {
        let signer = shared::note::NoteSigner::from_skey(key).unwrap();
        note = signer
            .cosign(&shared::note::Note::parse(note.as_bytes()).unwrap(), at.0)
            .unwrap();
    }
    conn.execute(
        "INSERT INTO witnessed (size, quorum_time, note) VALUES (?1, ?2, ?3)",
        rusqlite::params![size, at.0 as i64, note],
    )
    .unwrap();
}

/// Rewrites the `received_at` of leaf `index` in the gateway's data folder
/// `gw` to `at`, as a compromised gateway holding the log key can before it
/// publishes anything: the leaf, every checkpoint (signed again with the
/// log key) and, with `stand_ins`, the witnessed checkpoint (cosigned again
/// at `witnessed_at`) all follow. Receipts already given out go stale.
pub fn rewrite_received_at(
    gw: &Path,
    index: u64,
    at: UnixTime,
    stand_ins: &[String],
    witnessed_at: UnixTime,
) {
    let keys = gateway::setup::load_keys(gw).unwrap();
    let conn = gateway::store::open(&gateway::store::db_path(gw)).unwrap();
    let entry: Vec<u8> = conn
        .query_row(
            "SELECT log_entry FROM ballots WHERE leaf_index = ?1",
            [index as i64],
            |r| r.get(0),
        )
        .unwrap();
    let mut entry = shared::log_entry::LogEntry::from_bytes(&entry).unwrap();
    entry.received_at = at;
    let bytes = entry.to_bytes().unwrap();
    conn.execute(
        "UPDATE ballots SET log_entry = ?1, leaf_hash = ?2, received_at = ?3 WHERE leaf_index = ?4",
        rusqlite::params![
            bytes,
            shared::merkle::leaf_hash(&bytes).as_slice(),
            at.0 as i64,
            index as i64
        ],
    )
    .unwrap();
    let mut tree = shared::merkle::Tree::new();
    let hashes: Vec<Vec<u8>> = conn
        .prepare("SELECT leaf_hash FROM ballots ORDER BY leaf_index")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for h in hashes {
        tree.push(h.try_into().unwrap());
    }
    let sizes: Vec<i64> = conn
        .prepare("SELECT size FROM checkpoints")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for size in sizes {
        let note = shared::checkpoint::Checkpoint {
            origin: keys.log.name().to_owned(),
            size: size as u64,
            root: tree.root(size as u64).unwrap(),
            extensions: vec![],
        }
        .sign(&keys.log)
        .unwrap();
        conn.execute(
            "UPDATE checkpoints SET note = ?1 WHERE size = ?2",
            rusqlite::params![note, size],
        )
        .unwrap();
    }
    conn.execute("DELETE FROM witnessed", []).unwrap();
    drop(conn);
    if !stand_ins.is_empty() {
        witness_latest(gw, stand_ins, witnessed_at);
    }
}

/// Copies every witnessed checkpoint the gateway in data folder `from`
/// stored into the one in `to` (what a gateway keeping a second log does to
/// serve the county's witnessed checkpoint from it).
pub fn copy_witnessed(from: &Path, to: &Path) {
    let from = gateway::store::open(&gateway::store::db_path(from)).unwrap();
    let to = gateway::store::open(&gateway::store::db_path(to)).unwrap();
    let rows: Vec<(i64, i64, String)> = from
        .prepare("SELECT size, quorum_time, note FROM witnessed ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (size, time, note) in rows {
        to.execute(
            "INSERT INTO witnessed (size, quorum_time, note) VALUES (?1, ?2, ?3)",
            rusqlite::params![size, time, note],
        )
        .unwrap();
    }
}

/// Signs `input` into `out` with `openssl cms -sign` (an implementation
/// independent of ours) as the development voter `label`, from the PKI
/// written to `pki_dir`, with the ID CA included; the same structure a CAC
/// makes (`docs/spec/voter-signature.md`).
pub fn openssl_cms_sign(pki_dir: &Path, label: &str, input: &Path, out: &Path) {
    let o = std::process::Command::new("openssl")
        .args(["cms", "-sign", "-binary", "-nodetach", "-md", "sha256"])
        .args(["-outform", "DER", "-in"])
        .arg(input)
        .arg("-signer")
        .arg(pki_dir.join(format!("voters/{label}.cert.pem")))
        .arg("-inkey")
        .arg(pki_dir.join(format!("voters/{label}.key.pem")))
        .arg("-certfile")
        .arg(pki_dir.join("intermediates/test-dod-id-ca-59.pem"))
        .arg("-out")
        .arg(out)
        .output()
        .expect("openssl is part of every machine this project runs on");
    assert!(
        o.status.success(),
        "openssl cms -sign failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
