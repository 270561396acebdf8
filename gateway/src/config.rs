//! The gateway's configuration file (TOML). Every setting has a safe
//! default except the paths that name this deployment's files;
//! `docs/gateway-config.toml` is a commented example.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use shared::pki::{certs_from_pem_or_der, crls_from_pem_or_der, AnchorSpec, TrustStore};
use shared::x509::IdentityRule;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the database, keys and setup files live.
    pub data_dir: PathBuf,
    /// Network settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// The TLS server certificate.
    pub tls: TlsConfig,
    /// Trust anchors for voter certificates.
    pub trust: TrustConfig,
    /// Per-voter limits.
    #[serde(default)]
    pub limits: Limits,
    /// Log output.
    #[serde(default)]
    pub logging: Logging,
}

/// Listeners and protocol limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The public HTTPS listener.
    pub listen: SocketAddr,
    /// The health listener: plain HTTP, meant for loopback only.
    pub health_listen: SocketAddr,
    /// Connections served at once; more are closed at once.
    pub max_connections: usize,
    /// Seconds a client has to finish the TLS handshake.
    pub tls_handshake_timeout_secs: u64,
    /// Seconds a client has to send the request headers (slowloris guard).
    pub header_read_timeout_secs: u64,
    /// Seconds a whole request may take, uploads excepted (they follow the
    /// three `upload_` limits below).
    pub request_timeout_secs: u64,
    /// Seconds an upload's body may go without a byte arriving before the
    /// upload is given up (408 `request-timeout`). Also the time an upload
    /// has before [`Self::upload_min_rate_bytes_per_sec`] starts to count.
    pub upload_stall_timeout_secs: u64,
    /// The slowest an upload may be on average: each this many bytes
    /// received give it one more second (as Apache's `mod_reqtimeout`
    /// `MinRate`). 1,000 bytes a second (8 kbit/s) lets the largest ballot
    /// through a poor satellite link while a client trickling bytes to hold
    /// a connection is cut off.
    pub upload_min_rate_bytes_per_sec: u64,
    /// The longest a whole upload may take however steadily its bytes flow.
    pub upload_time_limit_secs: u64,
    /// Seconds an idle HTTP/1.1 keep-alive or HTTP/2 connection stays open.
    pub idle_timeout_secs: u64,
    /// The largest request head (HTTP/1.1) or header list (HTTP/2).
    pub max_header_bytes: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2 streams reset by the client before being served, per
    /// connection, before the connection is closed (rapid-reset guard).
    pub http2_max_pending_reset_streams: usize,
    /// Requests (HTTP/1.1 keep-alive) or streams (HTTP/2) one connection may
    /// start; then it is closed gracefully and the client reconnects. A
    /// voter needs a handful; this bounds what a client can make the
    /// gateway do per TLS handshake (HTTP/2 rapid reset, request floods).
    pub max_requests_per_connection: u32,
    /// Uploads whose bodies are read and checked at the same time; others
    /// wait (held back by TCP flow control) within the request timeout.
    /// Bounds the memory uploads take: about this many times the largest
    /// upload, whatever the number of connections.
    pub max_uploads_in_memory: usize,
    /// How often the CRL, intermediate, anchor and TLS files are checked
    /// for changes; a change (or SIGHUP) reloads them without a restart.
    pub reload_check_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            health_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: 2048,
            tls_handshake_timeout_secs: 15,
            header_read_timeout_secs: 15,
            request_timeout_secs: 300,
            upload_stall_timeout_secs: 60,
            upload_min_rate_bytes_per_sec: 1000,
            upload_time_limit_secs: 3600,
            idle_timeout_secs: 60,
            max_header_bytes: 16 * 1024,
            http2_max_concurrent_streams: 8,
            http2_max_pending_reset_streams: 20,
            max_requests_per_connection: 100,
            max_uploads_in_memory: 256,
            reload_check_secs: 30,
        }
    }
}

/// The TLS server certificate and key (PEM).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub certificate: PathBuf,
    /// The private key (PKCS #8). Must not be readable by others.
    pub private_key: PathBuf,
}

/// Trust anchors, intermediates and CRLs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// The anchors.
    pub anchor: Vec<AnchorConfig>,
    /// A folder of intermediate CA certificates (`*.pem`, `*.der`, `*.crt`).
    pub intermediates_dir: Option<PathBuf>,
    /// A folder of CRLs (`*.crl`, `*.pem`, `*.der`). Every issuing CA needs a
    /// current CRL, or its certificates are refused.
    pub crls_dir: PathBuf,
}

/// One trust anchor and the rules for certificates under it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorConfig {
    /// A short name for logs.
    pub name: String,
    /// The anchor certificate (PEM or DER).
    pub certificate: PathBuf,
    /// `edipi` (DoD) or `uri-prefix:<prefix>` (a county voter CA).
    #[serde(default = "default_identity", with = "rule_text")]
    pub identity: IdentityRule,
    /// Accepted certificate policy OIDs; defaults to the DoD mediumHardware set.
    #[serde(default)]
    pub policies: Vec<String>,
}

fn default_identity() -> IdentityRule {
    IdentityRule::Edipi
}

/// The identity rule in its text form (`shared::x509::IdentityRule`).
mod rule_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use shared::x509::IdentityRule;

    pub(super) fn serialize<S: Serializer>(r: &IdentityRule, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(r)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IdentityRule, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl AnchorConfig {
    /// The anchor as the shared type both sides load.
    pub fn spec(&self) -> AnchorSpec {
        AnchorSpec {
            name: self.name.clone(),
            certificate: self.certificate.clone(),
            identity: self.identity.clone(),
            policies: self.policies.clone(),
        }
    }
}

/// Per-voter limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Uploads a voter may start per hour (a token bucket; retries count).
    pub uploads_per_voter_per_hour: u32,
    /// Ballots one voter may have logged in the whole election.
    pub max_ballots_per_voter: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            uploads_per_voter_per_hour: 20,
            max_ballots_per_voter: 10,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Logging {
    /// `human` or `json`.
    pub format: String,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            format: "human".into(),
        }
    }
}

impl Config {
    /// Reads a configuration file; relative paths are relative to its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut c: Config = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid configuration", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut c.data_dir);
        fix(&mut c.tls.certificate);
        fix(&mut c.tls.private_key);
        fix(&mut c.trust.crls_dir);
        if let Some(d) = c.trust.intermediates_dir.as_mut() {
            fix(d);
        }
        for a in &mut c.trust.anchor {
            fix(&mut a.certificate);
        }
        Ok(c)
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        crate::store::db_path(&self.data_dir)
    }

    /// The keys folder.
    pub fn keys_dir(&self) -> PathBuf {
        self.data_dir.join(crate::setup::KEYS_DIR)
    }

    /// The configuration as TOML, as [`Config::load`] reads it.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }
}

fn files_with(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?
    {
        let p = e?.path();
        let ok = p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| exts.contains(&x.to_ascii_lowercase().as_str()));
        if ok && p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The configured trust anchors, read from their files.
pub fn load_anchors(t: &TrustConfig) -> Result<Vec<shared::pki::Anchor>> {
    if t.anchor.is_empty() {
        bail!("no trust anchor is configured ([[trust.anchor]])");
    }
    let mut anchors = Vec::new();
    for a in &t.anchor {
        anchors.extend(a.spec().load()?);
    }
    Ok(anchors)
}

/// Builds the trust store from the configuration.
pub fn load_trust(t: &TrustConfig) -> Result<TrustStore> {
    let anchors = load_anchors(t)?;
    let mut intermediates = Vec::new();
    if let Some(dir) = &t.intermediates_dir {
        for f in files_with(dir, &["pem", "der", "crt", "cer"])? {
            let data = std::fs::read(&f)?;
            intermediates
                .extend(certs_from_pem_or_der(&data).with_context(|| format!("{}", f.display()))?);
        }
    }
    let mut crls = Vec::new();
    for f in files_with(&t.crls_dir, &["crl", "pem", "der"])? {
        let data = std::fs::read(&f)?;
        crls.extend(crls_from_pem_or_der(&data).with_context(|| format!("{}", f.display()))?);
    }
    Ok(TrustStore::new(anchors, intermediates, crls)?)
}

/// DER blobs (certificates or CRLs).
pub type DerList = Vec<Vec<u8>>;

/// The CRL and intermediate files as DER, for transfer bundles.
pub fn pki_files(t: &TrustConfig) -> Result<(DerList, DerList)> {
    let mut crls = Vec::new();
    for f in files_with(&t.crls_dir, &["crl", "pem", "der"])? {
        crls.extend(crls_from_pem_or_der(&std::fs::read(&f)?)?);
    }
    let mut inter = Vec::new();
    if let Some(dir) = &t.intermediates_dir {
        for f in files_with(dir, &["pem", "der", "crt", "cer"])? {
            inter.extend(certs_from_pem_or_der(&std::fs::read(&f)?)?);
        }
    }
    Ok((crls, inter))
}
