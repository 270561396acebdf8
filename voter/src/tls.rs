//! The voter client's TLS configuration: TLS 1.3 only; the gateway's
//! certificate must chain to the given roots; the voter's certificate and
//! key, when given, authenticate the voter.

use anyhow::{bail, Context, Result};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// The certificate authorities the gateway's TLS certificate must chain
/// to: those in the PEM file `ca` when given (test setups, a county's own
/// CA), else the computer's own trust store (what its browser trusts: on
/// Linux the distribution's bundle, or `SSL_CERT_FILE`/`SSL_CERT_DIR` when
/// set; the system keychain on macOS and Windows).
pub fn server_roots(ca: Option<&std::path::Path>) -> Result<Vec<CertificateDer<'static>>> {
    if let Some(path) = ca {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the gateway CA file {}", path.display()))?;
        return Ok(shared::pki::tls_chain_from_pem(&pem)?);
    }
    let found = rustls_native_certs::load_native_certs();
    // Kept: the ones rustls can use (a system bundle may hold others).
    let mut check = rustls::RootCertStore::empty();
    let usable: Vec<_> = found
        .certs
        .into_iter()
        .filter(|c| check.add(c.clone()).is_ok())
        .collect();
    if usable.is_empty() {
        let why = found
            .errors
            .first()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        bail!("no trusted certificate authorities were found on this computer{why}; give the gateway's CA file with --ca");
    }
    Ok(usable)
}

fn root_store(server_roots: &[CertificateDer<'static>]) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for r in server_roots {
        roots
            .add(r.clone())
            .context("a server root certificate is not usable")?;
    }
    Ok(roots)
}

/// The client configuration. `alpn` lists the protocols offered.
pub fn client_config(
    server_roots: &[CertificateDer<'static>],
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: &[&[u8]],
) -> Result<rustls::ClientConfig> {
    let roots = root_store(server_roots)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots);
    let mut c = match client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .context("the voter certificate and key do not match")?,
        None => builder.with_no_client_auth(),
    };
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(c)
}

/// A client certificate chain and a key that signs with it (a card's, say):
/// always sent, whatever the server hints.
#[derive(Debug)]
struct Always(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Always {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// [`client_config`] with a client certificate whose key is not in memory
/// (a card's: [`crate::card::TlsKey`]).
pub fn client_config_with_key(
    server_roots: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: Arc<dyn rustls::sign::SigningKey>,
    alpn: &[&[u8]],
) -> Result<rustls::ClientConfig> {
    let roots = root_store(server_roots)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, key));
    let mut c = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(Always(certified)));
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(c)
}
