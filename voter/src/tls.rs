//! The voter client's TLS configuration: TLS 1.3 only; the gateway's
//! certificate must chain to the given roots; the voter's certificate and
//! key, when given, authenticate the voter.

use anyhow::{Context, Result};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The client configuration. `alpn` lists the protocols offered.
pub fn client_config(
    server_roots: &[CertificateDer<'static>],
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: &[&[u8]],
) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for r in server_roots {
        roots
            .add(r.clone())
            .context("a server root certificate is not usable")?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
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
