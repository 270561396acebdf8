//! CRLs and the TLS certificate reloaded without a restart: DoD CRLs are
//! reissued daily and expire within a week, and a gateway whose CRL
//! expires refuses every voter. When the files change (checked every
//! `reload_check_secs`) or on SIGHUP, everything is read again and checked
//! before it replaces anything: the anchors must still be the pinned ones,
//! every CRL must be complete, current and signed by a configured CA, every
//! configured CA must have a current CRL, and the TLS key must match its
//! certificate. Then the trust store and the TLS configuration are swapped
//! in one step each; a handshake or request already running keeps the set
//! it started with, the next one gets the new set. If anything fails, the
//! old set stays and the refusal is logged as a security event.

use crate::config::{self, Config};
use crate::sequencer::Sequencer;
use crate::store::SecurityEvent;
use crate::tls::VoterCertVerifier;
use anyhow::{bail, Context, Result};
use shared::clock::Clock;
use shared::manifest::ElectionManifest;
use shared::pki::TrustStore;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// A value replaced as a whole while readers hold the one they got.
#[derive(Debug)]
pub struct Live<T>(RwLock<Arc<T>>);

impl<T> Live<T> {
    /// Starts with `value`.
    pub fn new(value: T) -> Self {
        Live(RwLock::new(Arc::new(value)))
    }

    /// The current value.
    pub fn get(&self) -> Arc<T> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set(&self, value: T) {
        let value = Arc::new(value);
        match self.0.write() {
            Ok(mut g) => *g = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

/// Reloads the trust store and the TLS configuration.
#[derive(Debug)]
pub struct Reloader {
    config: Config,
    manifest: ElectionManifest,
    trust: Arc<Live<TrustStore>>,
    tls: Arc<Live<rustls::ServerConfig>>,
    verifier: Arc<VoterCertVerifier>,
    clock: Arc<dyn Clock>,
    seq: Sequencer,
    seen: Mutex<u64>,
}

impl Reloader {
    /// A reloader for what [`crate::app::build`] loaded from `config`.
    pub(crate) fn new(
        config: Config,
        manifest: ElectionManifest,
        trust: Arc<Live<TrustStore>>,
        tls: Arc<Live<rustls::ServerConfig>>,
        verifier: Arc<VoterCertVerifier>,
        clock: Arc<dyn Clock>,
        seq: Sequencer,
    ) -> Self {
        let seen = Mutex::new(files_fingerprint(&config));
        Reloader {
            config,
            manifest,
            trust,
            tls,
            verifier,
            clock,
            seq,
            seen,
        }
    }

    /// Whether the files changed since the last load.
    pub fn changed(&self) -> bool {
        let now = files_fingerprint(&self.config);
        self.seen.lock().map(|s| *s != now).unwrap_or(true)
    }

    /// Reads and checks everything again; replaces the current set only if
    /// all of it passes. Returns a summary, or why the old set was kept.
    pub fn reload(&self) -> Result<String> {
        let fingerprint = files_fingerprint(&self.config);
        let outcome = self.load();
        if let Ok(mut s) = self.seen.lock() {
            // A refused set is not retried until its files change again.
            *s = fingerprint;
        }
        let (code, detail) = match &outcome {
            Ok((summary, _, _)) => ("reload".to_owned(), summary.clone()),
            Err(e) => (
                "reload-refused".to_owned(),
                format!("kept the previous CRLs and TLS certificate: {e:#}"),
            ),
        };
        match &outcome {
            Ok(_) => tracing::info!(%detail, "CRLs and TLS certificate reloaded"),
            Err(_) => tracing::error!(%detail, "reload refused"),
        }
        self.seq.record(SecurityEvent {
            at: self.clock.now().0,
            kind: "admin",
            code,
            identity: None,
            peer: None,
            detail,
        });
        let (summary, trust, tls) = outcome?;
        self.trust.set(trust);
        self.tls.set(tls);
        Ok(summary)
    }

    fn load(&self) -> Result<(String, TrustStore, rustls::ServerConfig)> {
        let t = &self.config.trust;
        let anchors = config::load_anchors(t)?;
        crate::setup::check_anchors(&anchors, &self.manifest)?;
        let (crls, intermediates) = config::pki_files(t)?;
        let now = self.clock.now().0 as i64;
        let mut cas: Vec<&[u8]> = anchors.iter().map(|a| a.cert_der.as_slice()).collect();
        cas.extend(intermediates.iter().map(Vec::as_slice));
        let mut covered = vec![false; cas.len()];
        for crl in &crls {
            let info = shared::pki::crl_info(crl).context("a CRL cannot be used")?;
            let Some(i) = cas
                .iter()
                .position(|ca| shared::pki::crl_signed_by(crl, ca))
            else {
                bail!(
                    "the CRL from {} is not signed by a configured CA",
                    info.issuer
                );
            };
            if info.points_to_delta {
                bail!(
                    "the CRL from {} names a delta CRL: it is not complete on its own",
                    info.issuer
                );
            }
            let current = info.this_update <= now && info.next_update.is_some_and(|n| n >= now);
            if !current {
                bail!(
                    "the CRL from {} is not current (thisUpdate {}, nextUpdate {:?})",
                    info.issuer,
                    info.this_update,
                    info.next_update
                );
            }
            if let Some(c) = covered.get_mut(i) {
                *c = true;
            }
        }
        if let Some(i) = covered.iter().position(|c| !c) {
            let name = cas
                .get(i)
                .and_then(|d| shared::x509::parse_cert(d).ok())
                .map(|c| c.subject().to_string())
                .unwrap_or_default();
            bail!("no current CRL from {name}: its voters would all be refused");
        }
        let n_crls = crls.len();
        let trust = TrustStore::new(anchors, intermediates, crls)?;
        let read = |path: &Path, what: &str| {
            std::fs::read(path)
                .with_context(|| format!("cannot read the TLS {what} {}", path.display()))
        };
        let chain =
            shared::pki::tls_chain_from_pem(&read(&self.config.tls.certificate, "certificate")?)?;
        let key = shared::pki::tls_key_from_pem(&zeroize::Zeroizing::new(read(
            &self.config.tls.private_key,
            "key",
        )?))?;
        let tls = crate::tls::server_config(chain, key, self.verifier.clone())?;
        Ok((
            format!("{n_crls} CRL(s) and the TLS certificate loaded and checked"),
            trust,
            tls,
        ))
    }

    /// Reloads when the files change or on SIGHUP, until `stop` is set.
    pub async fn watch(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let every = std::time::Duration::from_secs(self.config.server.reload_check_secs.max(1));
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let signalled = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let due = tokio::select! {
                () = tokio::time::sleep(every) => self.changed(),
                () = signalled => true,
                _ = stop.changed() => return,
            };
            if due {
                let me = self.clone();
                // Reading a DoD-sized CRL takes a while: off the runtime.
                let _ = tokio::task::spawn_blocking(move || me.reload()).await;
            }
        }
    }
}

/// Names, sizes and modification times of every file a reload reads.
fn files_fingerprint(c: &Config) -> u64 {
    let mut paths: Vec<PathBuf> = vec![c.tls.certificate.clone(), c.tls.private_key.clone()];
    paths.extend(c.trust.anchor.iter().map(|a| a.certificate.clone()));
    for dir in std::iter::once(&c.trust.crls_dir).chain(c.trust.intermediates_dir.as_ref()) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            // Only the files a load reads: a refresh job's temporary file
            // is not a change until it is renamed into place.
            let mut found: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                        ["crl", "pem", "der", "crt", "cer"]
                            .contains(&x.to_ascii_lowercase().as_str())
                    })
                })
                .collect();
            found.sort();
            paths.extend(found);
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in paths {
        p.hash(&mut h);
        if let Ok(m) = std::fs::metadata(&p) {
            m.len().hash(&mut h);
            m.modified().ok().hash(&mut h);
        }
    }
    h.finish()
}
