//! `ballot-demo serve`: a county's election on loopback that a person
//! drives by hand with the real `ballot-return`, as a service member
//! would: a gateway on a port they choose, three observers' witnesses, a
//! marked ballot to send and, where SoftHSM is installed, a software "CAC"
//! with its PIN. When they have sent, the county counts and publishes its
//! signed status file, and `ballot-return status` shows what became of the
//! ballot.
//!
//! Everything lives in one temporary folder, removed when the program ends.

use anyhow::{Context, Result};
use gateway::config::Limits;
use shared::clock::{Clock, SystemClock};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use testkit::observers::Observers;
use testkit::world::World;

/// What the person at the keyboard is told to do, once the gateway serves.
#[derive(Debug)]
pub struct Instructions {
    /// The gateway's address.
    pub gateway: String,
    /// The election key fingerprint, as the ballot instructions print it.
    pub fingerprint: String,
    /// The marked ballot to send.
    pub ballot: PathBuf,
    /// The CA file of the gateway's development TLS certificate.
    pub ca: PathBuf,
    /// The receipts folder the commands use (inside the temporary folder).
    pub receipts: PathBuf,
    /// The software card, when SoftHSM is installed: its module and the
    /// configuration file to give as `SOFTHSM2_CONF`.
    pub card: Option<(PathBuf, PathBuf)>,
    /// Why there is no card, when there is none.
    pub no_card: Option<String>,
    /// Jane's development certificate and key files (the way without a
    /// card).
    pub pem: (PathBuf, PathBuf),
}

impl Instructions {
    /// The commands, one per line, with the words around them.
    pub fn text(&self) -> String {
        let program = "cargo run -q -p ballot-voter --bin ballot-return --";
        let mut s = String::new();
        let common = format!(
            "--ca {} --receipts {}",
            self.ca.display(),
            self.receipts.display()
        );
        s.push_str(&format!(
            "The county's gateway is serving on {}.\n\
             Your ballot instructions give that address and the election key fingerprint:\n  {}\n\
             Your marked ballot is {}.\n\n",
            self.gateway,
            self.fingerprint,
            self.ballot.display()
        ));
        s.push_str("In another terminal, in this repository:\n\n");
        match (&self.card, &self.no_card) {
            (Some((module, conf)), _) => {
                s.push_str(&format!(
                    "  export SOFTHSM2_CONF={}\n\
                     \x20 {program} card --pkcs11-module {}\n\
                     \x20 {program} send {} '{}' {} --pkcs11-module {} {common}\n\n\
                     The card is Petty Officer Jane Doe's (a SoftHSM token standing in for a CAC); its PIN is {}.\n\
                     (Without a card: replace --pkcs11-module … with --cert {} --key {}.)\n",
                    conf.display(),
                    module.display(),
                    self.gateway,
                    self.fingerprint,
                    self.ballot.display(),
                    module.display(),
                    testkit::softhsm::PIN,
                    self.pem.0.display(),
                    self.pem.1.display(),
                ));
            }
            (None, why) => {
                s.push_str(&format!(
                    "  {program} send {} '{}' {} --cert {} --key {} {common}\n\n\
                     No software card: {}. Jane's development certificate and key files stand in for her CAC.\n",
                    self.gateway,
                    self.fingerprint,
                    self.ballot.display(),
                    self.pem.0.display(),
                    self.pem.1.display(),
                    why.as_deref().unwrap_or("none was made"),
                ));
            }
        }
        s.push_str(&format!(
            "\nThen list your receipts, and check them:\n\n\
             \x20 {program} receipts --receipts {}\n\
             \x20 {program} status {common}\n",
            self.receipts.display()
        ));
        s
    }
}

/// Runs the hands-on election on 127.0.0.1:`port` (0: any free port).
/// `input` is read for the Enter presses; `say` prints.
pub async fn serve(port: u16, input: &mut dyn BufRead, say: &mut dyn FnMut(&str)) -> Result<()> {
    say("Setting up: the development PKI, three observers' witnesses, the county's key ceremony…");
    let observers = Observers::bind(3, 2);
    let world = World::with_spec(Limits::default(), |s| s.observers(&observers));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    observers.start(&world.county.manifest.log_key, clock.clone());
    let dir = world.dir.path().to_path_buf();

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} (is it in use?)"))?;
    let port = listener.local_addr()?.port();
    let serving = gateway::app::build(&world.config, clock.clone())?.spawn(listener, None);

    let ballot = dir.join("marked-ballot.pdf");
    std::fs::write(
        &ballot,
        testkit::pdf::ballot(&[
            "General Election, November 3, 2026 - Test County",
            "Governor: Candidate A",
            "Measure 1: Yes",
        ]),
    )?;
    let jane = dir.join("pki/voters");
    let (card, no_card) = match testkit::softhsm::available() {
        Ok(module) => {
            let card = testkit::softhsm::cac(
                &module,
                &world.pki,
                &dir.join("card"),
                "CAC DOE JANE",
                ("DOE", "JANE", "1234567890"),
                devpki::KeyAlg::P256,
                testkit::softhsm::Carries::Both,
            );
            (Some((module, card.conf)), None)
        }
        Err(why) => (None, Some(why)),
    };
    let instructions = Instructions {
        gateway: format!("https://localhost:{port}"),
        fingerprint: spaced(&world.county.fpr),
        ballot,
        ca: dir.join("pki/anchors/test-dod-root-ca-3.pem"),
        receipts: dir.join("receipts"),
        card,
        no_card,
        pem: (
            jane.join("jane-p256.cert.pem"),
            jane.join("jane-p256.key.pem"),
        ),
    };
    for line in instructions.text().lines() {
        say(line);
    }
    say("");
    say("Press Enter when you have sent your ballot (as often as you like: the latest counts).");
    wait_for_enter(input)?;

    let size = log_size(&world.county.gw)?;
    say(&format!(
        "The log holds {size} ballot(s). Waiting for a quorum of the observers' witnesses to cosign it…"
    ));
    if world.witnessed(port, size).await.is_none() {
        say("The witnesses did not cosign within 30 seconds; the county counts anyway.");
    }
    say("The county exports the log to media, imports it on its offline verifier, decides and signs its status file…");
    world.county.clock.set(SystemClock.now());
    let status = world.county_decides(&world.county.gw, "canvass");
    let file = dir.join("status.signed");
    std::fs::write(&file, status)?;
    gateway::export::import_status(&world.county.gw, &file, &world.county.clock)?;
    let report = std::fs::read_to_string(dir.join("canvass/report.txt"))
        .context("reading the canvass report")?;
    say("");
    say("The county's canvass report:");
    say("");
    for line in report.lines() {
        say(&format!("  {line}"));
    }
    say("");
    say("The gateway now serves the county's signed status file. Check your ballot again:");
    say(&format!(
        "  cargo run -q -p ballot-voter --bin ballot-return -- status --ca {} --receipts {}",
        instructions.ca.display(),
        instructions.receipts.display()
    ));
    say("");
    say("Press Enter to stop the gateway and remove the folder.");
    wait_for_enter(input)?;
    serving.stop().await?;
    drop(observers);
    Ok(())
}

fn wait_for_enter(input: &mut dyn BufRead) -> Result<()> {
    let mut line = String::new();
    input.read_line(&mut line).context("reading the keyboard")?;
    Ok(())
}

/// A fingerprint in groups of four, as the voters' instructions print it.
fn spaced(fpr: &str) -> String {
    fpr.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn log_size(data: &Path) -> Result<u64> {
    let conn = gateway::store::open(&gateway::store::db_path(data))?;
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM ballots", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
