//! A gateway's world for its tests and its load harness: the development
//! PKI, a county's real ceremony, a roster of the development voters (and
//! as many extra CAC voters as a load needs), and the gateway's
//! configuration.

use crate::election::{County, ElectionSpec};
use gateway::app::Serving;
use gateway::config::{Config, Limits};
use std::path::PathBuf;
use std::sync::Arc;
use voter::client::{Answer, Credentials, Gateway};

/// The election id of the world's election.
pub const ELECTION: &str = "2026-general";
/// The world's log origin.
pub const ORIGIN: &str = "ballots.test-county.example/2026-general";

/// The roster's development voters: (voter id, identity, ballot style).
const VOTERS: [(&str, &str, &str); 7] = [
    ("V-0001", "edipi:1234567890", "style-1"),
    ("V-0003", "edipi:3456789012", "style-1"),
    ("V-0004", "edipi:4567890123", "style-1"),
    ("V-0005", "edipi:5678901234", "style-1"),
    ("V-0006", "edipi:6789012345", "style-1"),
    ("V-0007", "edipi:7890123456", "style-1"),
    ("TC-000123", "county:TC-000123", "style-2"),
];

/// Everything that outlives one server run.
#[derive(Debug)]
pub struct World {
    /// The folder everything lives in.
    pub dir: tempfile::TempDir,
    /// The development PKI (written to `dir/pki`).
    pub pki: devpki::DevPki,
    /// The county after its ceremony: its manifest, clock, unlocked
    /// election key and witness key.
    pub county: County,
    /// The gateway's configuration.
    pub config: Config,
    /// Extra CAC voters (for load), on the roster as V-X000000…
    pub extra: Vec<devpki::Issued>,
}

/// A gateway serving in this process.
#[derive(Debug)]
pub struct Running {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its health and metrics listener's port on 127.0.0.1.
    pub health_port: u16,
    serving: Serving,
}

impl World {
    /// A world with ballots of up to 300 KiB.
    pub fn new(limits: Limits) -> World {
        Self::with_voters(limits, 0, 300 * 1024)
    }

    /// A world with `extra` more voters and ballots of up to `max_ballot` bytes.
    pub fn with_voters(limits: Limits, extra: usize, max_ballot: u32) -> World {
        Self::custom(limits, extra, max_ballot, |spec| spec)
    }

    /// A world whose election `spec` adjusts (its witnesses, window, grace).
    pub fn with_spec(limits: Limits, spec: impl FnOnce(ElectionSpec) -> ElectionSpec) -> World {
        Self::custom(limits, 0, 300 * 1024, spec)
    }

    fn custom(
        limits: Limits,
        extra: usize,
        max_ballot: u32,
        spec: impl FnOnce(ElectionSpec) -> ElectionSpec,
    ) -> World {
        let dir = tempfile::tempdir().unwrap();
        let pki = devpki::generate(crate::now()).unwrap();
        pki.write_to(&dir.path().join("pki")).unwrap();
        let mut csv = String::from("voter_id,identity,ballot_style\n");
        for (voter, identity, style) in VOTERS {
            csv.push_str(&format!("{voter},{identity},{style}\n"));
        }
        let mut extra_voters = Vec::with_capacity(extra);
        for i in 0..extra {
            let edipi = format!("{:010}", 9_000_000_000u64 + i as u64);
            extra_voters.push(crate::voters::issue_cac(&pki, &edipi));
            csv.push_str(&format!("V-X{i:06},edipi:{edipi},style-1\n"));
        }
        let county = spec(
            ElectionSpec::new(&csv)
                .anchors(crate::election::dev_anchors(&pki))
                .origin(ORIGIN)
                .max_ballot(max_ballot),
        )
        .set_up(dir.path());
        let config = crate::server::config(&county.gw, &dir.path().join("pki"), limits);
        World {
            pki,
            county,
            config,
            extra: extra_voters,
            dir,
        }
    }

    /// The county's side: export what `data` logged, import it on the
    /// verifier, decide, and return the signed status file.
    pub fn county_decides(&self, data: &std::path::Path, out: &str) -> Vec<u8> {
        let w = self;
        let (crls, inter) = gateway::config::pki_files(&w.config.trust).unwrap();
        let bundle = gateway::export::export(
            data,
            &crls,
            &inter,
            &w.dir.path().join(format!("usb-{out}")),
            false,
            &w.county.clock,
        )
        .unwrap()
        .unwrap();
        let mut conn = verifier::state::open(&verifier::state::db_path(&w.county.home)).unwrap();
        verifier::import::import(&mut conn, &bundle.dir, &w.county.clock, &mut |_, _| {}).unwrap();
        let loaded = verifier::ceremony::load(&w.county.home, &w.county.password).unwrap();
        let anchors = verifier::ceremony::pinned_anchors(&conn, &loaded.manifest).unwrap();
        let inputs = verifier::process::Inputs::new(&loaded, Some(&w.county.password), anchors);
        let dir = w.dir.path().join(out);
        verifier::process::process(&conn, &inputs, &dir, &w.county.clock, &mut |_, _, _| {})
            .unwrap();
        std::fs::read(dir.join(shared::media::STATUS_FILE)).unwrap()
    }

    /// Starts the real server in this process.
    pub async fn start(&self) -> Running {
        let (serving, port, health_port) =
            crate::server::start_with_health(&self.config, Arc::new(self.county.clock.clone()))
                .await;
        Running {
            port,
            health_port,
            serving,
        }
    }

    /// A client presenting no certificate.
    pub fn anonymous(&self, r: &Running) -> Gateway {
        crate::voters::client(&self.pki, None, r.port)
    }

    /// A client presenting an issued certificate (with the ID CA).
    pub fn client_with(&self, r: &Running, issued: &devpki::Issued) -> Gateway {
        self.client_at(r.port, issued)
    }

    /// A client for a server on `port` of 127.0.0.1.
    pub fn client_at(&self, port: u16, issued: &devpki::Issued) -> Gateway {
        crate::voters::client(&self.pki, Some(issued), port)
    }

    /// A TLS client configuration presenting `issued` (with the ID CA).
    pub fn tls_for(&self, issued: &devpki::Issued, alpn: &[&[u8]]) -> rustls::ClientConfig {
        crate::voters::tls(&self.pki, Some(issued), alpn)
    }

    /// A client for a development voter.
    pub fn client(&self, r: &Running, label: &str) -> Gateway {
        self.client_with(r, &self.pki.voter(label).unwrap().issued)
    }

    /// A development voter's signing credentials.
    pub fn credentials(&self, label: &str) -> Credentials {
        crate::voters::credentials(&self.pki, &self.pki.voter(label).unwrap().issued)
    }

    /// A valid upload of `content` signed by an issued certificate.
    pub fn ballot_of(&self, issued: &devpki::Issued, content: Vec<u8>) -> Vec<u8> {
        crate::voters::upload(&self.county.manifest, &self.pki, issued, "style-1", content)
    }

    /// A valid upload for a development voter.
    pub fn ballot(&self, label: &str, marks: &str) -> Vec<u8> {
        self.ballot_of(
            &self.pki.voter(label).unwrap().issued,
            format!("%PDF-1.7 {marks}").into_bytes(),
        )
    }

    /// Uploads `upload` through `gw` in one try, as the voter's client
    /// does, and checks the receipt against the election's manifest.
    pub async fn upload_checked(
        &self,
        gw: &Gateway,
        upload: &[u8],
    ) -> (shared::api::ReceiptAnswer, shared::receipt::Receipt) {
        let answer = voter::client::upload(
            gw,
            upload,
            voter::client::Retries::times(1),
            &mut |_| {},
            &mut |_| {},
        )
        .await
        .unwrap();
        let (receipt, _) =
            voter::client::check_receipt(&self.county.manifest, upload, &answer).unwrap();
        (answer, receipt)
    }

    /// Waits (at most 30 s) until the gateway on `port` serves a checkpoint
    /// of at least `size` leaves cosigned by a quorum of the manifest's
    /// witnesses, and returns it; `None` if it never does.
    pub async fn witnessed(&self, port: u16, size: u64) -> Option<shared::witness::Witnessed> {
        let gw = crate::voters::client(&self.pki, None, port);
        for _ in 0..300 {
            if let Some(w) = voter::client::witnessed(&gw, &self.county.manifest)
                .await
                .unwrap()
            {
                if w.checkpoint.checkpoint.size >= size {
                    return Some(w);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        None
    }

    /// A connection to the gateway's database.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.config.db_path()).unwrap()
    }

    /// How many ballots the gateway stored.
    pub fn ballots_stored(&self) -> i64 {
        self.db()
            .query_row("SELECT COUNT(*) FROM ballots", [], |r| r.get(0))
            .unwrap()
    }

    /// How many security events with `code` the gateway recorded.
    pub fn events(&self, code: &str) -> u64 {
        gateway::store::count_events(&self.db(), code).unwrap()
    }

    /// The gateway's data folder.
    pub fn data(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// Writes this world's configuration as `gateway.toml` for the
    /// `ballot-gateway` binary and returns its path.
    pub fn config_file(&self) -> PathBuf {
        crate::server::write_config(&self.config, &self.dir.path().join("gateway.toml"))
    }
}

impl Running {
    /// Stops the server in its shutdown order.
    pub async fn stop(self) {
        self.serving.stop().await.unwrap();
    }

    /// Its reloader (what SIGHUP and a change of the CRL files trigger).
    pub fn reloader(&self) -> Arc<gateway::reload::Reloader> {
        self.serving.reloader.clone()
    }
}

/// Uploads `body` as a ballot.
pub async fn post(gw: &Gateway, body: Vec<u8>) -> anyhow::Result<Answer> {
    gw.request(http::Method::POST, shared::api::BALLOTS, Some(body.into()))
        .await
}
