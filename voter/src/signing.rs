//! The voter's two keys, wherever they are: the connection that presents
//! the voter's certificate and the key that signs the ballot, from the card
//! (after the PIN) or, for development and tests, from PEM files.

use crate::card::{self, Card, Pin};
use crate::client::{Credentials, Gateway};
use anyhow::{Context, Result};
use rustls_pki_types::CertificateDer;
use std::sync::Arc;

/// The credentials of a certificate and key in PEM (development cards),
/// with `extra` issuing CA certificates to send along.
pub fn from_pem(
    url: &str,
    cert_pem: &[u8],
    key_pem: &[u8],
    extra: Vec<CertificateDer<'static>>,
    roots: &[CertificateDer<'static>],
) -> Result<(Gateway, Credentials)> {
    let mut chain = shared::pki::tls_chain_from_pem(cert_pem)?;
    let tls_key = shared::pki::tls_key_from_pem(key_pem)?;
    let signing_key = shared::cms::VoterKey::from_pem(key_pem).context("your key cannot sign")?;
    let cert = chain
        .first()
        .map(|c| c.to_vec())
        .context("your certificate file is empty")?;
    let others: Vec<Vec<u8>> = chain
        .iter()
        .skip(1)
        .chain(extra.iter())
        .map(|c| c.to_vec())
        .collect();
    chain.extend(extra);
    let tls = crate::tls::client_config(roots, Some((chain, tls_key)), &[b"http/1.1"])?;
    Ok((
        Gateway::new(url, tls)?,
        Credentials {
            cert,
            chain: others,
            key: Box::new(signing_key),
        },
    ))
}

/// The credentials of a card the voter has logged in to with `pin`: the
/// card signs the connection with its PIV Authentication key and the
/// ballot with its Digital Signature key.
pub fn from_card(
    url: &str,
    c: &Card,
    pin: Arc<Pin>,
    extra: Vec<CertificateDer<'static>>,
    roots: &[CertificateDer<'static>],
) -> Result<(Gateway, Credentials)> {
    let auth = c.authentication()?;
    let signing = c.signature()?;
    let tls_key = Arc::new(c.key(auth, "PIV Authentication", Some(pin.clone()))?);
    let sign_key = c.key(signing, "Digital Signature", Some(pin))?;
    let mut chain = vec![CertificateDer::from(auth.der.clone())];
    chain.extend(extra.iter().cloned());
    let tls = crate::tls::client_config_with_key(
        roots,
        chain,
        Arc::new(card::TlsKey(tls_key)),
        &[b"http/1.1"],
    )?;
    Ok((
        Gateway::new(url, tls)?,
        Credentials {
            cert: signing.der.clone(),
            chain: extra.iter().map(|c| c.to_vec()).collect(),
            key: Box::new(sign_key),
        },
    ))
}
