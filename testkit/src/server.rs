//! A gateway for tests: its configuration for the development PKI (written
//! to TOML by `serde`, as an operator's file is read), started in-process
//! on 127.0.0.1:0 or as the `ballot-gateway serve` binary.

use gateway::app::Serving;
use gateway::config::{
    AnchorConfig, Config, Limits, Logging, ServerConfig, TlsConfig, TrustConfig,
};
use shared::clock::Clock;
use shared::x509::IdentityRule;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A gateway configuration for the data folder `data` and the development
/// PKI written to `pki` (`devpki::DevPki::write_to`): both development
/// anchors, listening on 127.0.0.1:0.
pub fn config(data: &Path, pki: &Path, limits: Limits) -> Config {
    Config {
        data_dir: data.to_path_buf(),
        server: ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            health_listen: "127.0.0.1:0".parse().unwrap(),
            request_timeout_secs: 20,
            ..ServerConfig::default()
        },
        tls: TlsConfig {
            certificate: pki.join("server/localhost.cert.pem"),
            private_key: pki.join("server/localhost.key.pem"),
        },
        trust: TrustConfig {
            anchor: vec![
                AnchorConfig {
                    name: "Test DoD Root CA 3".into(),
                    certificate: pki.join("anchors/test-dod-root-ca-3.pem"),
                    identity: IdentityRule::Edipi,
                    policies: vec![],
                },
                AnchorConfig {
                    name: "Test County Voter CA".into(),
                    certificate: pki.join("anchors/test-county-voter-ca.pem"),
                    identity: IdentityRule::UriPrefix("urn:test-county:voter:".into()),
                    policies: vec![devpki::oid::DEV_COUNTY_VOTER.to_string()],
                },
            ],
            intermediates_dir: Some(pki.join("intermediates")),
            crls_dir: pki.join("crls"),
        },
        limits,
        logging: Logging::default(),
    }
}

/// Writes `config` as the TOML file `path` for the `ballot-gateway` binary.
pub fn write_config(config: &Config, path: &Path) -> PathBuf {
    std::fs::write(path, config.to_toml().unwrap()).unwrap();
    path.to_path_buf()
}

/// The real server in this process on 127.0.0.1:0; returns it and its port.
pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> (Serving, u16) {
    let (serving, port, _) = start_with_health(config, clock).await;
    (serving, port)
}

/// The real server in this process on 127.0.0.1:0 with its health and
/// metrics listener; returns it, its port and the health listener's port.
pub async fn start_with_health(config: &Config, clock: Arc<dyn Clock>) -> (Serving, u16, u16) {
    let gw = gateway::app::build(config, clock).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let health_port = health.local_addr().unwrap().port();
    (gw.spawn(listener, Some(health)), port, health_port)
}

/// `ballot-gateway serve` (the binary at `bin`) as a child process; returns
/// it and its port, read from the line the server prints when it listens.
pub fn spawn_server(bin: &Path, config: &Path) -> (std::process::Child, u16) {
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
