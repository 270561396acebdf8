//! The end-to-end demo: the whole system on loopback, with real TLS, real
//! SQLite and real post-quantum OpenPGP, narrated step by step. It returns
//! an error unless every expected outcome happened.

use anyhow::{bail, ensure, Context, Result};
use gateway::config::{
    AnchorConfig, Config, Limits, Logging, ServerConfig, TlsConfig, TrustConfig,
};
use sequoia_openpgp::crypto::Password;
use shared::clock::{Clock, SystemClock, UnixTime};
use shared::manifest::{ElectionManifest, MediaRule};
use shared::pki::Anchor;
use shared::x509::IdentityPolicy;
use std::path::Path;
use std::sync::Arc;
use voter::client::{self, Ballot, Credentials, Gateway, SavedReceipt};

const ORIGIN: &str = "ballots.demo-county.example/2026-general";
/// The demo's passphrase: fixed so the demo needs no prompt. A real
/// ceremony reads it from a prompt, never from the command line.
const DEMO_PASSPHRASE: &str = "demo passphrase - never use in an election";

/// What the demo ends with.
#[derive(Debug)]
pub struct DemoOutcome {
    /// The canvass report, as county staff read it.
    pub report: String,
    /// Ballots accepted.
    pub accepted: u64,
    /// Ballots superseded.
    pub superseded: u64,
}

struct Voter {
    label: &'static str,
    name: &'static str,
}

/// How long the demo's election is open from the key ceremony on, in
/// seconds (the uploads take a few; the rest is waited out).
const ELECTION_SECONDS: u64 = 30;
/// The grace period after the deadline for the closing checkpoint.
const GRACE_SECONDS: u32 = 5;

/// Runs the whole story in `dir`. `say` narrates.
pub async fn run_demo(dir: &Path, say: &mut dyn FnMut(&str)) -> Result<DemoOutcome> {
    let clock = SystemClock;
    let now = time::OffsetDateTime::now_utc();
    let t = clock.now().0;

    say("1. The county's development PKI: a Test DoD root and ID CA, service members' CAC certificates, CRLs.");
    let pki = devpki::generate(now)?;
    pki.write_to(&dir.join("pki"))?;
    // A valid CAC for someone who is not on this county's roster.
    let sam = pki.id_ca.issue(&devpki::cac_spec(
        "ROE",
        "SAM",
        "T",
        "9876543210",
        devpki::KeyAlg::P256,
        now,
    ))?;

    say(
        "   Three observers (two parties and a civic group) each set up a witness: its own key and",
    );
    say("   database, on its own port; the county will name them and a quorum of 2 in the manifest.");
    let mut witnesses = Vec::new();
    let mut witness_listeners = Vec::new();
    for (i, who) in ["party-a", "party-b", "civic-group"].iter().enumerate() {
        let wdir = dir.join(format!("witness-{i}"));
        let key = observer::witness::init(&wdir, &format!("{who}.demo-observers.example/witness"))?;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        witnesses.push(shared::manifest::ManifestWitness {
            key,
            url: format!("http://{}/", l.local_addr()?),
        });
        witness_listeners.push((wdir, l));
    }

    say("2. The gateway operator creates the gateway's transfer key and log key.");
    let gw_data = dir.join("gateway");
    gateway::setup::init(&gw_data, ORIGIN, &dir.join("media-to-county"), &clock)?;

    say("3. County staff hold the key ceremony on the offline verifier: a post-quantum election key");
    say("   (ML-KEM-768+X25519, ML-DSA-65+Ed25519) protected by a passphrase, a witness key, and the");
    say("   signed election manifest and roster for the gateway.");
    let home = dir.join("verifier");
    let password = Password::from(DEMO_PASSPHRASE);
    let params = verifier::ceremony::ElectionParams {
        election_id: "2026-general".into(),
        title: "General Election, November 3, 2026".into(),
        jurisdiction: "Demo County".into(),
        opens_at: UnixTime(t - 600),
        // A short election, so that the demo reaches the final canvass.
        closes_at: UnixTime(t + ELECTION_SECONDS),
        declaration: "I swear or affirm that I am a qualified voter of Demo County and have not voted elsewhere.".into(),
        accepted_media: vec![MediaRule {
            media_type: shared::ballot::MEDIA_PDF.into(),
            max_size: 5 * 1024 * 1024,
        }],
        witness_name: "elections.demo-county.example/verifier".into(),
        witnesses,
        witness_quorum: 2,
        grace_seconds: GRACE_SECONDS,
        // The manifest pins who may vote as whom: the (development) DoD
        // root, EDIPI identities, the DoD mediumHardware policies.
        anchors: vec![Anchor {
            name: "Test DoD Root CA 3".into(),
            cert_der: pki.root.issued.cert_der.clone(),
            policy: IdentityPolicy::dod_default(),
        }],
    };
    let roster = "voter_id,edipi,ballot_style\n\
                  DC-0001,1234567890,precinct-4\n\
                  DC-0002,2345678901,precinct-4\n\
                  DC-0003,3456789012,precinct-7\n\
                  DC-0004,4567890123,precinct-7\n";
    let fpr = verifier::ceremony::init(
        &home,
        &dir.join("media-to-county"),
        &dir.join("media-to-gateway"),
        &params,
        roster,
        &password,
        &clock,
    )?;
    say(&format!(
        "   Election key fingerprint (printed in the voters' instructions): {fpr}"
    ));

    let p = dir.join("pki");
    let config = Config {
        data_dir: gw_data.clone(),
        server: ServerConfig {
            listen: "127.0.0.1:0".parse()?,
            health_listen: "127.0.0.1:0".parse()?,
            ..ServerConfig::default()
        },
        tls: TlsConfig {
            certificate: p.join("server/localhost.cert.pem"),
            private_key: p.join("server/localhost.key.pem"),
        },
        trust: TrustConfig {
            anchor: vec![AnchorConfig {
                name: "Test DoD Root CA 3".into(),
                certificate: p.join("anchors/test-dod-root-ca-3.pem"),
                identity: shared::x509::IdentityRule::Edipi,
                policies: vec![],
            }],
            intermediates_dir: Some(p.join("intermediates")),
            crls_dir: p.join("crls"),
        },
        limits: Limits::default(),
        logging: Logging::default(),
    };
    say("4. The gateway imports the signed manifest and roster, checked against that fingerprint,");
    say("   and checks that its configured trust anchors are the ones the manifest pins.");
    say(&format!(
        "   {}",
        gateway::setup::import_setup(
            &gw_data,
            &gateway::config::load_anchors(&config.trust)?,
            &dir.join("media-to-gateway"),
            &fpr,
            &clock
        )?
    ));

    let log_vkey = std::fs::read_to_string(
        dir.join("media-to-county")
            .join(shared::media::GATEWAY_LOG_KEY),
    )?;
    let mut stop_witnesses = Vec::new();
    for (wdir, listener) in witness_listeners {
        let w = observer::witness::Witness::open(&wdir, Arc::new(SystemClock))?;
        w.add_log(&log_vkey)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(observer::serve::serve(listener, Arc::new(w), async move {
            let _ = stopped.await;
        }));
        stop_witnesses.push(stop);
    }
    say("   The observers' witnesses trust the gateway's log key and are serving.");

    let running = start_gateway(&config).await?;
    let port = running.port;
    say(&format!(
        "5. The gateway is serving on https://localhost:{port} (TLS 1.3, client certificates)."
    ));

    let manifest_bytes = std::fs::read(
        dir.join("media-to-gateway")
            .join(shared::media::ELECTION_MANIFEST),
    )?;
    let manifest = ElectionManifest::open_signed(&manifest_bytes, &fpr)?;
    let roots = vec![pki.root.issued.cert_der.clone().into()];
    let connect = |issued: &devpki::Issued| -> Result<Gateway> {
        let chain = vec![
            issued.cert_der.clone().into(),
            pki.id_ca.issued.cert_der.clone().into(),
        ];
        let key = shared::pki::tls_key_from_pem(issued.key.pkcs8_pem().as_bytes())?;
        let tls = voter::tls::client_config(&roots, Some((chain, key)), &[b"http/1.1"])?;
        Gateway::new(&format!("https://localhost:{port}"), tls)
    };
    let send = |issued: &devpki::Issued, style: &str, marks: &str| -> Result<Vec<u8>> {
        client::prepare(
            &manifest,
            &Ballot {
                content: testkit::pdf::ballot(&[&format!("Demo County ballot, {style}"), marks]),
                media_type: shared::ballot::MEDIA_PDF.into(),
                ballot_style: style.into(),
            },
            &Credentials {
                cert: issued.cert_der.clone(),
                chain: vec![pki.id_ca.issued.cert_der.clone()],
                key: Box::new(shared::cms::VoterKey::from_pem(
                    issued.key.pkcs8_pem().as_bytes(),
                )?),
            },
        )
    };

    say("6. Service members send their ballots, signed with their CACs and sealed to the election key.");
    let mut quiet = |_: &str| {};
    let mut unseen = |_: client::Progress| {};
    let tries = client::Retries::times;
    let voters = [
        Voter {
            label: "jane-p256",
            name: "Petty Officer Jane Doe (USS Example, P-256 CAC)",
        },
        Voter {
            label: "john-p384",
            name: "Sergeant John Smith (forward base, P-384 CAC)",
        },
        Voter {
            label: "maria-rsa",
            name: "Lieutenant Maria Garcia (embassy duty, RSA CAC)",
        },
    ];
    for v in &voters {
        let issued = &pki.voter(v.label).context("demo voter")?.issued;
        let style = if v.label == "maria-rsa" {
            "precinct-7"
        } else {
            "precinct-4"
        };
        let upload = send(issued, style, "first choices")?;
        let answer = client::upload(
            &connect(issued)?,
            &upload,
            tries(3),
            &mut unseen,
            &mut quiet,
        )
        .await?;
        let (receipt, cp) = client::check_receipt(&manifest, &upload, &answer)?;
        say(&format!(
            "   {}: received, entry {} of the log (checkpoint of {} entries); receipt verified.",
            v.name, receipt.index, cp.checkpoint.size
        ));
    }
    say("   Petty Officer Doe changes her mind and sends a replacement ballot.");
    let jane = &pki.voter("jane-p256").context("jane")?.issued;
    let upload = send(jane, "precinct-4", "replacement choices")?;
    let answer =
        client::upload(&connect(jane)?, &upload, tries(3), &mut unseen, &mut quiet).await?;
    let (replacement, replacement_cp) = client::check_receipt(&manifest, &upload, &answer)?;
    say(&format!(
        "   Replacement received as entry {}.",
        replacement.index
    ));
    let jane_receipt = SavedReceipt::new(&manifest, &fpr, "", &replacement, &answer)?;

    let rick = &pki.voter("rick-revoked").context("rick")?.issued;
    let upload = send(rick, "precinct-7", "x")?;
    match client::upload(&connect(rick)?, &upload, tries(1), &mut unseen, &mut quiet).await {
        Err(client::NotSent::CardRefused(r)) => say(&format!(
            "   Specialist Rick Brown's card was revoked: the gateway refused the connection at TLS ({:?}).",
            r.0
        )),
        other => bail!("a revoked card was not refused at TLS: {other:?}"),
    }
    match client::upload(
        &connect(&sam)?,
        &send(&sam, "precinct-4", "x")?,
        tries(1),
        &mut unseen,
        &mut quiet,
    )
    .await
    {
        Ok(_) => bail!("a voter not on the roster was accepted"),
        Err(e) => {
            ensure!(
                e.to_string().contains("not-on-roster"),
                "unexpected refusal: {e}"
            );
            say(&format!("   Airman Sam Roe has a valid CAC but is not on this county's roster: refused ({e})."));
        }
    }

    let anonymous = Gateway::new(
        &format!("https://localhost:{port}"),
        voter::tls::client_config(&roots, None, &[b"http/1.1"])?,
    )?;
    let mut witnessed = None;
    for _ in 0..300 {
        match client::witnessed(&anonymous, &manifest).await? {
            Some(w) if w.checkpoint.checkpoint.size > replacement.index => {
                witnessed = Some(w);
                break;
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let witnessed = witnessed.context("the witnesses did not cosign within 30 seconds")?;
    say(&format!(
        "   The observers' witnesses cosigned the checkpoint of {} entries ({} of 3, quorum 2): from now on",
        witnessed.checkpoint.checkpoint.size,
        witnessed.cosigners.len()
    ));
    say(
        "   the gateway cannot rewrite those entries or their time without the witnesses noticing.",
    );

    let closes_at = manifest.closes_at;
    say(&format!(
        "   The polls close at {closes_at} (this demo's election lasts {ELECTION_SECONDS} seconds); the gateway has the"
    ));
    say("   witnesses cosign its closing checkpoint at the deadline. Waiting for it...");
    let mut closing = None;
    let wait_until = closes_at.0 + u64::from(GRACE_SECONDS);
    while closing.is_none() && clock.now().0 <= wait_until + 30 {
        match client::witnessed(&anonymous, &manifest).await? {
            Some(w) if w.time >= closes_at => closing = Some(w),
            _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    let closing = closing.context("the witnesses did not cosign a closing checkpoint")?;
    say(&format!(
        "   Closing checkpoint: {} entries, cosigned by a quorum at {}.",
        closing.checkpoint.checkpoint.size, closing.time
    ));
    // The final canvass runs after the deadline plus the grace period.
    while clock.now().0 <= wait_until {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    say("7. The gateway operator exports the ballots onto removable media as a signed transfer bundle.");
    running.shut_down().await?;
    let (crls, inter) = gateway::config::pki_files(&config.trust)?;
    let bundle = gateway::export::export(&gw_data, &crls, &inter, &dir.join("usb"), false, &clock)?
        .context("nothing to export")?;
    say(&format!(
        "   {} ballots in {}.",
        bundle.entries,
        bundle.dir.display()
    ));

    say("8. On the offline verifier, staff import the media (checked as hostile) and process the ballots.");
    let mut conn = verifier::state::open(&verifier::state::db_path(&home))?;
    match verifier::import::import(&mut conn, &bundle.dir, &clock, &mut |_, _| {})? {
        verifier::import::Imported::New { sequence, entries, log_size } => say(&format!(
            "   Bundle {sequence} passed every check: {entries} ballots imported; the log has {log_size} entries."
        )),
        other => bail!("unexpected import result {other:?}"),
    }
    let loaded = verifier::ceremony::load(&home, &password)?;
    let out = dir.join("canvass");
    // The anchors the signed manifest pins, kept by the ceremony.
    let anchors = verifier::ceremony::pinned_anchors(&conn, &loaded.manifest)?;
    let inputs = verifier::process::Inputs::new(&loaded, Some(&password), anchors);
    let outcome = verifier::process::process(&conn, &inputs, &out, &clock, &mut |_, _, _| {})?;
    ensure!(
        (
            outcome.accepted,
            outcome.superseded,
            outcome.rejected_total()
        ) == (3, 1, 0),
        "unexpected outcome: {outcome:?}"
    );
    ensure!(
        matches!(
            outcome.contents,
            verifier::process::Contents::Written { again: None }
        ) && outcome.alarms.is_empty(),
        "the final canvass did not write the contents, or raised alarms: {outcome:?}"
    );
    say("   3 ballots accepted, 1 superseded by its voter's replacement, none rejected.");
    say("   This is the final canvass (after the deadline plus the grace period): the accepted ballots");
    say("   are in canvass/ballots/ under random names, apart from the voter list, written this once.");

    say("9. The signed status file goes back to the gateway, which serves it to voters and auditors.");
    say(&format!(
        "   {}",
        gateway::export::import_status(&gw_data, &out.join(shared::media::STATUS_FILE), &clock)?
    ));
    let running = start_gateway(&config).await?;
    let port = running.port;
    let jane_gw = {
        let chain = vec![
            jane.cert_der.clone().into(),
            pki.id_ca.issued.cert_der.clone().into(),
        ];
        let key = shared::pki::tls_key_from_pem(jane.key.pkcs8_pem().as_bytes())?;
        Gateway::new(
            &format!("https://localhost:{port}"),
            voter::tls::client_config(&roots, Some((chain, key)), &[b"http/1.1"])?,
        )?
    };

    say("10. Petty Officer Doe checks her ballot from the ship and audits her receipt.");
    let anonymous = Gateway::new(
        &format!("https://localhost:{port}"),
        voter::tls::client_config(&roots, None, &[b"http/1.1"])?,
    )?;
    let status = client::status(&anonymous, &jane_receipt).await?;
    ensure!(
        status.standing == client::Standing::Decided(shared::status::Status::Valid),
        "jane's ballot is {:?}",
        status.standing
    );
    say(&format!("   ballot-return status: {}", status.explanation));
    let latest = jane_gw
        .request(http::Method::GET, shared::api::CHECKPOINT, None)
        .await?
        .body;
    let status_file = std::fs::read(out.join(shared::media::STATUS_FILE))?;
    let decided = shared::linkage::CheckedStatusFile::open(&status_file, &manifest, &fpr)?
        .checkpoint
        .checkpoint
        .size;
    let mine = replacement_cp.checkpoint.size;
    let status_proof = if mine == decided {
        Vec::new()
    } else {
        anonymous
            .request(
                http::Method::GET,
                &shared::api::consistency_path(mine.min(decided), mine.max(decided)),
                None,
            )
            .await?
            .json::<shared::api::ConsistencyAnswer>()?
            .proof
    };
    let audit = verifier::audit::audit(
        jane_receipt.receipt.as_bytes(),
        &manifest,
        &fpr,
        Some((&latest, &[])),
        Some((&status_file, &status_proof)),
    )?;
    say(&format!(
        "   Offline audit: entry {} is in the log, consistent with the published checkpoint; {}",
        audit.index,
        audit.status.unwrap_or_default()
    ));
    running.shut_down().await?;
    for stop in stop_witnesses {
        let _ = stop.send(());
    }

    let report = std::fs::read_to_string(out.join("report.txt"))?;
    Ok(DemoOutcome {
        report,
        accepted: outcome.accepted,
        superseded: outcome.superseded,
    })
}

/// A gateway serving in the background, and its port.
struct Running {
    port: u16,
    serving: gateway::app::Serving,
}

impl Running {
    async fn shut_down(self) -> Result<()> {
        self.serving.stop().await
    }
}

async fn start_gateway(config: &Config) -> Result<Running> {
    let gw = gateway::app::build(config, Arc::new(SystemClock))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    Ok(Running {
        port,
        serving: gw.spawn(listener, None),
    })
}
