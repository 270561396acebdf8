//! Assembling a gateway from its configuration: what `serve` does before it
//! binds, and what tests use to drive the real server on port 0.

use crate::config::{self, Config};
use crate::sequencer::{Sequencer, SequencerConfig};
use crate::server::AppState;
use crate::{setup, store, tls};
use anyhow::{Context, Result};
use shared::clock::Clock;
use std::sync::Arc;

/// A gateway ready to serve.
#[derive(Debug)]
pub struct Gateway {
    /// The request handlers' state.
    pub state: Arc<AppState>,
    /// The TLS configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// The sequencer's writer thread; it ends when every handle to the
    /// sequencer is dropped.
    pub writer: std::thread::JoinHandle<()>,
}

/// Loads keys, the imported election, the trust store and the TLS
/// certificate, re-verifies the stored log, and starts the sequencer.
pub fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<Gateway> {
    let keys = setup::load_keys(&config.data_dir)?;
    let reader = store::open(&config.db_path())?;
    let election = setup::load_election(&reader)?;
    let trust =
        Arc::new(config::load_trust(&config.trust).context("loading trust anchors and CRLs")?);
    let (seq, writer) = Sequencer::start(
        &config.db_path(),
        keys.log,
        clock.clone(),
        SequencerConfig {
            election_id: election.manifest.election_id.clone(),
            max_ballots_per_voter: config.limits.max_ballots_per_voter,
        },
    )
    .context("opening and verifying the ballot log")?;
    let verifier = Arc::new(tls::VoterCertVerifier::new(trust.clone(), clock.clone()));
    verifier.set_events(seq.clone());
    let chain = tls::read_chain(&std::fs::read(&config.tls.certificate).with_context(|| {
        format!(
            "cannot read the TLS certificate {}",
            config.tls.certificate.display()
        )
    })?)?;
    let key = tls::read_key(&std::fs::read(&config.tls.private_key).with_context(|| {
        format!(
            "cannot read the TLS key {}",
            config.tls.private_key.display()
        )
    })?)?;
    let tls = Arc::new(tls::server_config(chain, key, verifier)?);
    let state = Arc::new(AppState::new(
        config.server.clone(),
        config.limits.clone(),
        election,
        trust,
        seq,
        clock,
        reader,
    ));
    Ok(Gateway { state, tls, writer })
}
