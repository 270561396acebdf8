//! A whole gateway: [`build`] assembles it from its configuration (what
//! `serve` does before it binds, and what tests and the demo use to drive
//! the real server on port 0); [`Gateway::serve`] runs it and owns the
//! shutdown order.

use crate::config::{self, Config};
use crate::sequencer::{Sequencer, SequencerConfig};
use crate::server::AppState;
use crate::{setup, store, tls};
use anyhow::{Context, Result};
use shared::clock::Clock;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A gateway ready to serve.
#[derive(Debug)]
pub struct Gateway {
    /// The request handlers' state.
    pub state: Arc<AppState>,
    /// The TLS configuration (reloaded without a restart).
    pub tls: Arc<crate::reload::Live<rustls::ServerConfig>>,
    /// The sequencer's writer thread; it ends when every handle to the
    /// sequencer is dropped.
    pub writer: std::thread::JoinHandle<()>,
    /// The background task that has checkpoints witnessed.
    pub witnessing: crate::witnessing::Witnessing,
    /// Reloads CRLs and the TLS certificate when their files change or on
    /// SIGHUP.
    pub reloader: Arc<crate::reload::Reloader>,
}

/// Loads keys, the imported election, the trust store and the TLS
/// certificate, re-verifies the stored log, and starts the sequencer.
pub fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<Gateway> {
    let keys = setup::load_keys(&config.data_dir)?;
    let reader = store::open(&config.db_path())?;
    let election = setup::load_election(&reader)?;
    setup::check_anchors(&config::load_anchors(&config.trust)?, &election.manifest)?;
    let trust = Arc::new(crate::reload::Live::new(
        config::load_trust(&config.trust).context("loading trust anchors and CRLs")?,
    ));
    let (seq, writer) = Sequencer::start(
        &config.db_path(),
        keys.log,
        clock.clone(),
        SequencerConfig {
            election_id: election.manifest.election_id.clone(),
            max_ballots_per_voter: config.limits.max_ballots_per_voter,
            closes_at: Some(election.manifest.closes_at),
        },
    )
    .context("opening and verifying the ballot log")?;
    let verifier = Arc::new(tls::VoterCertVerifier::new(trust.clone(), clock.clone()));
    verifier.set_events(seq.clone());
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path)
            .with_context(|| format!("cannot read the TLS {what} {}", path.display()))
    };
    let chain = shared::pki::tls_chain_from_pem(&read(&config.tls.certificate, "certificate")?)?;
    let key = shared::pki::tls_key_from_pem(&zeroize::Zeroizing::new(read(
        &config.tls.private_key,
        "key",
    )?))?;
    let tls = Arc::new(crate::reload::Live::new(tls::server_config(
        chain,
        key,
        verifier.clone(),
    )?));
    let reloader = Arc::new(crate::reload::Reloader::new(
        config.clone(),
        election.manifest.clone(),
        trust.clone(),
        tls.clone(),
        verifier,
        clock.clone(),
        seq.clone(),
    ));
    let latest_witnessed = crate::witnessing::load_latest(&reader)?;
    let state = Arc::new(AppState::new(
        config.server.clone(),
        &config.limits,
        election,
        trust,
        seq,
        clock.clone(),
        reader,
        config.data_dir.clone(),
    ));
    if let Ok(mut w) = state.witnessed.write() {
        *w = latest_witnessed;
    }
    let witnessing = crate::witnessing::Witnessing::new(
        &state.election.manifest,
        state.seq.log().clone(),
        clock,
        &config.db_path(),
        state.witnessed.clone(),
    )?;
    Ok(Gateway {
        state,
        tls,
        writer,
        witnessing,
        reloader,
    })
}

impl Gateway {
    /// Serves voters on `listener` (and health checks on `health`) until
    /// `shutdown` completes, then stops in this order: no new connections;
    /// open requests finish (up to the drain period); the health listener
    /// stops; the sequencer commits what it holds and its writer thread
    /// ends.
    pub async fn serve(
        self,
        listener: TcpListener,
        health: Option<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let Gateway {
            state,
            tls,
            writer,
            witnessing,
            reloader,
        } = self;
        let (stop_witnessing, witnessing_stopped) = tokio::sync::watch::channel(false);
        let witnessing_task = tokio::spawn(witnessing.run(witnessing_stopped));
        let (stop_reloading, reloading_stopped) = tokio::sync::watch::channel(false);
        let reload_task = tokio::spawn(reloader.watch(reloading_stopped));
        let (stop_health, mut health_stopped) = tokio::sync::watch::channel(false);
        let health_task = health.map(|h| {
            let state = state.clone();
            tokio::spawn(async move {
                crate::server::run_health(h, state, async move {
                    let _ = health_stopped.changed().await;
                })
                .await;
            })
        });
        let served = crate::server::run(listener, state.clone(), tls, shutdown).await;
        let _ = stop_health.send(true);
        if let Some(t) = health_task {
            let _ = t.await;
        }
        let _ = stop_reloading.send(true);
        let _ = reload_task.await;
        let _ = stop_witnessing.send(true);
        let _ = witnessing_task.await;
        state.seq.stop().await;
        drop(state);
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .context("the log writer could not be joined")?
            .map_err(|_| anyhow::anyhow!("the log writer thread panicked"))?;
        served
    }

    /// Serves in a background task (tests and the demo); the handle stops
    /// it through [`Gateway::serve`]'s shutdown order.
    pub fn spawn(self, listener: TcpListener, health: Option<TcpListener>) -> Serving {
        let state = self.state.clone();
        let reloader = self.reloader.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.serve(listener, health, async move {
            let _ = stopped.await;
        }));
        Serving {
            state,
            reloader,
            stop,
            task,
        }
    }
}

/// A gateway serving in the background.
#[derive(Debug)]
pub struct Serving {
    /// The request handlers' state.
    pub state: Arc<AppState>,
    /// Reloads the CRLs and the TLS certificate (as SIGHUP does).
    pub reloader: Arc<crate::reload::Reloader>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Serving {
    /// Stops serving and waits until the log writer has finished.
    pub async fn stop(self) -> Result<()> {
        let Serving {
            state, stop, task, ..
        } = self;
        drop(state);
        let _ = stop.send(());
        task.await.context("the server task failed")?
    }
}
