//! A real gateway on 127.0.0.1:0 with a generated PKI, an election key, a
//! signed manifest and roster, and TLS clients for each test voter.

use gateway::client::{Answer, Ballot, Credentials, Gateway};
use gateway::config::{
    AnchorConfig, Config, Limits, Logging, ServerConfig, TlsConfig, TrustConfig,
};
use http::Method;
use sequoia_openpgp::Cert;
use shared::clock::{ManualClock, UnixTime};
use shared::manifest::{ElectionManifest, MediaRule, ReplacementRule};
use shared::note::{NoteSigner, TYPE_COSIGNATURE};
use shared::roster::{Roster, RosterEntry};
use shared::x509::VoterIdentity;
use std::path::PathBuf;
use std::sync::Arc;

pub const ELECTION: &str = "2026-general";
pub const ORIGIN: &str = "ballots.test-county.example/2026-general";

/// Everything that outlives one server run.
pub struct World {
    pub dir: tempfile::TempDir,
    pub pki: devpki::DevPki,
    pub election_key: Cert,
    pub witness: NoteSigner,
    pub config: Config,
    pub clock: ManualClock,
    pub manifest: ElectionManifest,
    /// Extra CAC voters (for load), on the roster as V-X000000…
    pub extra: Vec<devpki::Issued>,
}

/// A running server.
pub struct Running {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    writer: Option<std::thread::JoinHandle<()>>,
    pub state: Arc<gateway::server::AppState>,
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

impl World {
    pub fn new(limits: Limits) -> World {
        Self::with_voters(limits, 0, 300 * 1024)
    }

    /// A world with `extra` more voters and ballots of up to `max_ballot` bytes.
    pub fn with_voters(limits: Limits, extra: usize, max_ballot: u32) -> World {
        let dir = tempfile::tempdir().unwrap();
        let pki = devpki::generate(now()).unwrap();
        pki.write_to(&dir.path().join("pki")).unwrap();
        let t = UnixTime(now().unix_timestamp() as u64);
        let clock = ManualClock::new(t);

        // The gateway's ceremony.
        let data = dir.path().join("data");
        let media = dir.path().join("media");
        gateway::setup::init(&data, ORIGIN, &media, &clock).unwrap();
        let transfer = shared::pgp::read_public_cert(
            &std::fs::read(media.join(shared::media::GATEWAY_TRANSFER_KEY)).unwrap(),
        )
        .unwrap();
        let log_vkey = std::fs::read_to_string(media.join(shared::media::GATEWAY_LOG_KEY)).unwrap();

        // The verifier's ceremony, as `ballot-verifier init` will do it.
        let election_key =
            shared::pgp::generate_election_key("Test County Election 2026", None).unwrap();
        let witness =
            NoteSigner::generate("county.test.example/witness", TYPE_COSIGNATURE).unwrap();
        let manifest = ElectionManifest {
            election_id: ELECTION.into(),
            title: "General Election, November 3, 2026".into(),
            jurisdiction: "Test County".into(),
            // After the development CRLs were issued (an hour ago), so the
            // moment before opening still has a current CRL.
            opens_at: UnixTime(t.0 - 1800),
            closes_at: UnixTime(t.0 + 5 * 86_400),
            election_cert: shared::pgp::public_bytes(&election_key).unwrap(),
            gateway_transfer_fpr: shared::pgp::fingerprint_hex(&transfer),
            log_origin: ORIGIN.into(),
            log_key: log_vkey.trim().into(),
            witness_key: witness.verifier().to_vkey(),
            accepted_media: vec![MediaRule {
                media_type: shared::ballot::MEDIA_PDF.into(),
                max_size: max_ballot,
            }],
            replacement_rule: ReplacementRule::LatestBeforeDeadline,
            declaration: "I swear or affirm that I am eligible to vote in this election.".into(),
        };
        let mut roster = Roster::new(ELECTION).unwrap();
        for (voter, edipi) in [
            ("V-0001", "1234567890"),
            ("V-0003", "3456789012"),
            ("V-0004", "4567890123"),
            ("V-0005", "5678901234"),
            ("V-0006", "6789012345"),
            ("V-0007", "7890123456"),
        ] {
            roster
                .insert(RosterEntry {
                    voter_id: voter.into(),
                    identity: VoterIdentity::Edipi(edipi.into()),
                    ballot_style: "style-1".into(),
                })
                .unwrap();
        }
        let mut extra_voters = Vec::with_capacity(extra);
        for i in 0..extra {
            let edipi = format!("{:010}", 9_000_000_000u64 + i as u64);
            let issued = pki
                .id_ca
                .issue(&devpki::cac_spec(
                    "LOAD",
                    "TEST",
                    "X",
                    &edipi,
                    devpki::KeyAlg::P256,
                    now(),
                ))
                .unwrap();
            roster
                .insert(RosterEntry {
                    voter_id: format!("V-X{i:06}"),
                    identity: VoterIdentity::Edipi(edipi),
                    ballot_style: "style-1".into(),
                })
                .unwrap();
            extra_voters.push(issued);
        }
        roster
            .insert(RosterEntry {
                voter_id: "TC-000123".into(),
                identity: VoterIdentity::County("TC-000123".into()),
                ballot_style: "style-2".into(),
            })
            .unwrap();
        std::fs::write(
            media.join(shared::media::ELECTION_MANIFEST),
            shared::signed::sign_document(&manifest.to_bytes().unwrap(), &election_key, None)
                .unwrap(),
        )
        .unwrap();
        std::fs::write(
            media.join(shared::media::ROSTER),
            shared::signed::sign_document(&roster.to_bytes().unwrap(), &election_key, None)
                .unwrap(),
        )
        .unwrap();
        gateway::setup::import_setup(
            &data,
            &media,
            &shared::pgp::fingerprint_hex(&election_key),
            &clock,
        )
        .unwrap();

        let p = dir.path().join("pki");
        let config = Config {
            data_dir: data,
            server: ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                health_listen: "127.0.0.1:0".parse().unwrap(),
                request_timeout_secs: 20,
                ..ServerConfig::default()
            },
            tls: TlsConfig {
                certificate: p.join("server/localhost.cert.pem"),
                private_key: p.join("server/localhost.key.pem"),
            },
            trust: TrustConfig {
                anchor: vec![
                    AnchorConfig {
                        name: "Test DoD Root CA 3".into(),
                        certificate: p.join("anchors/test-dod-root-ca-3.pem"),
                        identity: "edipi".into(),
                        policies: vec![],
                    },
                    AnchorConfig {
                        name: "Test County Voter CA".into(),
                        certificate: p.join("anchors/test-county-voter-ca.pem"),
                        identity: "uri-prefix:urn:test-county:voter:".into(),
                        policies: vec![devpki::oid::DEV_COUNTY_VOTER.to_string()],
                    },
                ],
                intermediates_dir: Some(p.join("intermediates")),
                crls_dir: p.join("crls"),
            },
            limits,
            logging: Logging::default(),
        };
        World {
            dir,
            pki,
            election_key,
            witness,
            config,
            clock,
            manifest,
            extra: extra_voters,
        }
    }

    pub async fn start(&self) -> Running {
        let gw = gateway::app::build(&self.config, Arc::new(self.clock.clone())).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, rx) = tokio::sync::oneshot::channel();
        let state = gw.state.clone();
        let task = tokio::spawn(async move {
            gateway::server::run(listener, gw.state, gw.tls, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Running {
            port,
            stop: Some(stop),
            task: Some(task),
            writer: Some(gw.writer),
            state,
        }
    }

    fn roots(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        vec![self.pki.root.issued.cert_der.clone().into()]
    }

    /// A client presenting no certificate.
    pub fn anonymous(&self, r: &Running) -> Gateway {
        let tls = gateway::tls::client_config(&self.roots(), None, &[b"http/1.1"]).unwrap();
        Gateway::new(&format!("https://localhost:{}", r.port), tls).unwrap()
    }

    /// A client presenting an issued certificate (with the ID CA).
    pub fn client_with(&self, r: &Running, issued: &devpki::Issued) -> Gateway {
        self.client_at(r.port, issued)
    }

    /// A client for a server on `port` of 127.0.0.1.
    pub fn client_at(&self, port: u16, issued: &devpki::Issued) -> Gateway {
        let tls = self.tls_for(issued, &[b"http/1.1"]);
        Gateway::new(&format!("https://localhost:{port}"), tls).unwrap()
    }

    /// A TLS client configuration presenting `issued` (with the ID CA).
    pub fn tls_for(&self, issued: &devpki::Issued, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let chain = vec![
            issued.cert_der.clone().into(),
            self.pki.id_ca.issued.cert_der.clone().into(),
        ];
        let key = gateway::tls::read_key(issued.key.pkcs8_pem().as_bytes()).unwrap();
        gateway::tls::client_config(&self.roots(), Some((chain, key)), alpn).unwrap()
    }

    /// A client for a development voter.
    pub fn client(&self, r: &Running, label: &str) -> Gateway {
        self.client_with(r, &self.pki.voter(label).unwrap().issued)
    }

    pub fn credentials(&self, label: &str) -> Credentials {
        let v = self.pki.voter(label).unwrap();
        Credentials {
            cert: v.issued.cert_der.clone(),
            chain: vec![self.pki.id_ca.issued.cert_der.clone()],
            key: shared::cms::VoterKey::from_pem(v.issued.key.pkcs8_pem().as_bytes()).unwrap(),
        }
    }

    /// A valid upload of `content` signed by an issued certificate.
    pub fn ballot_of(&self, issued: &devpki::Issued, content: Vec<u8>) -> Vec<u8> {
        gateway::client::prepare(
            &self.manifest,
            &Ballot {
                content,
                media_type: shared::ballot::MEDIA_PDF.into(),
                ballot_style: "style-1".into(),
            },
            &Credentials {
                cert: issued.cert_der.clone(),
                chain: vec![self.pki.id_ca.issued.cert_der.clone()],
                key: shared::cms::VoterKey::from_pem(issued.key.pkcs8_pem().as_bytes()).unwrap(),
            },
        )
        .unwrap()
    }

    /// A valid upload for a voter.
    pub fn ballot(&self, label: &str, marks: &str) -> Vec<u8> {
        gateway::client::prepare(
            &self.manifest,
            &Ballot {
                content: format!("%PDF-1.7 {marks}").into_bytes(),
                media_type: shared::ballot::MEDIA_PDF.into(),
                ballot_style: "style-1".into(),
            },
            &self.credentials(label),
        )
        .unwrap()
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.config.db_path()).unwrap()
    }

    pub fn ballots_stored(&self) -> i64 {
        self.db()
            .query_row("SELECT COUNT(*) FROM ballots", [], |r| r.get(0))
            .unwrap()
    }

    pub fn events(&self, code: &str) -> u64 {
        gateway::store::count_events(&self.db(), code).unwrap()
    }

    pub fn data(&self) -> PathBuf {
        self.config.data_dir.clone()
    }
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        self.state.seq.stop().await;
        if let Some(w) = self.writer.take() {
            tokio::task::spawn_blocking(move || w.join().unwrap())
                .await
                .unwrap();
        }
    }
}

pub async fn post(gw: &Gateway, body: Vec<u8>) -> anyhow::Result<Answer> {
    gw.request(Method::POST, "/v1/ballots", Some(body.into()))
        .await
}

/// Waits until the sequencer has written a security event (they are
/// recorded asynchronously).
pub async fn wait_for_event(w: &World, code: &str) -> u64 {
    for _ in 0..100 {
        let n = w.events(code);
        if n > 0 {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    0
}

impl World {
    /// Writes this world's configuration as a TOML file for the
    /// `ballot-gateway` binary (listening on 127.0.0.1:0) and returns its path.
    pub fn config_file(&self) -> PathBuf {
        let c = &self.config;
        let q = |p: &std::path::Path| format!("{:?}", p.to_str().unwrap());
        let mut text = format!(
            "data_dir = {}\n[server]\nlisten = \"127.0.0.1:0\"\nhealth_listen = \"127.0.0.1:0\"\n\
             request_timeout_secs = {}\n[tls]\ncertificate = {}\nprivate_key = {}\n\
             [trust]\nintermediates_dir = {}\ncrls_dir = {}\n\
             [limits]\nuploads_per_voter_per_hour = {}\nmax_ballots_per_voter = {}\n",
            q(&c.data_dir),
            c.server.request_timeout_secs,
            q(&c.tls.certificate),
            q(&c.tls.private_key),
            q(c.trust.intermediates_dir.as_ref().unwrap()),
            q(&c.trust.crls_dir),
            c.limits.uploads_per_voter_per_hour,
            c.limits.max_ballots_per_voter,
        );
        for a in &c.trust.anchor {
            text += &format!(
                "[[trust.anchor]]\nname = {:?}\ncertificate = {}\nidentity = {:?}\npolicies = {:?}\n",
                a.name,
                q(&a.certificate),
                a.identity,
                a.policies
            );
        }
        let path = self.dir.path().join("gateway.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Tests that load the machine (the crash and abuse tests) take this, so
/// they do not run at the same time and skew each other's timings.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

/// `ballot-gateway serve` (the binary at `bin`) as a child process; returns
/// it and its port.
pub fn spawn_server(bin: &std::path::Path, config: &std::path::Path) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("https://127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("the server did not say its port: {line:?}"));
    (child, port)
}
