//! TLS: the gateway's rustls configuration (TLS 1.3 only) and the voter
//! certificate verifier. (The voter's side is in the `voter` crate.)
//!
//! Client certificates are optional at the TLS layer, so auditors can read
//! checkpoints and proofs without a card. A certificate that *is* presented
//! must pass the shared path and revocation check (`shared::pki`) during
//! the handshake: an unknown CA, an expired, revoked or not-yet-valid
//! certificate, or one without clientAuth is refused with the matching TLS
//! alert. The content rules (card-auth, policy, identity) and the roster are
//! applied per request, so their refusals carry a JSON error code.

use crate::sequencer::Sequencer;
use crate::store::SecurityEvent;
use anyhow::{Context, Result};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use shared::clock::Clock;
use shared::pki::{ChainError, TrustStore, Usage};
use std::sync::{Arc, OnceLock};

/// The ALPN protocols offered: HTTP/2 and HTTP/1.1.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Verifies voter certificates during the handshake.
#[derive(Debug)]
pub struct VoterCertVerifier {
    trust: Arc<crate::reload::Live<TrustStore>>,
    clock: Arc<dyn Clock>,
    hints: Vec<DistinguishedName>,
    provider: Arc<CryptoProvider>,
    events: OnceLock<Sequencer>,
}

impl VoterCertVerifier {
    /// A verifier for the anchors of `trust`, checking at `clock`'s time.
    pub fn new(trust: Arc<crate::reload::Live<TrustStore>>, clock: Arc<dyn Clock>) -> Self {
        let hints = trust
            .get()
            .anchors()
            .iter()
            .filter_map(|a| {
                shared::x509::parse_cert(&a.cert_der)
                    .ok()
                    .map(|c| DistinguishedName::from(c.subject().as_raw().to_vec()))
            })
            .collect();
        VoterCertVerifier {
            trust,
            clock,
            hints,
            provider: provider(),
            events: OnceLock::new(),
        }
    }

    /// Where refusals are recorded as security events.
    pub fn set_events(&self, seq: Sequencer) {
        let _ = self.events.set(seq);
    }
}

fn tls_error(e: &ChainError) -> rustls::Error {
    use CertificateError as C;
    rustls::Error::InvalidCertificate(match e {
        ChainError::UnknownIssuer => C::UnknownIssuer,
        ChainError::Expired(_) => C::Expired,
        ChainError::NotYetValid(_) => C::NotValidYet,
        ChainError::Revoked { .. } => C::Revoked,
        ChainError::RevocationUnknown { .. } => C::UnknownRevocationStatus,
        ChainError::WrongUsage => C::InvalidPurpose,
        ChainError::BadSignature => C::BadSignature,
        ChainError::Malformed(_) => C::BadEncoding,
        _ => C::ApplicationVerificationFailure,
    })
}

impl ClientCertVerifier for VoterCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let now = self.clock.now();
        let presented: Vec<Vec<u8>> = intermediates.iter().take(8).map(|c| c.to_vec()).collect();
        match self
            .trust
            .get()
            .check_path(end_entity, &presented, Usage::ClientAuth, now, now)
        {
            Ok(_) => Ok(ClientCertVerified::assertion()),
            Err(e) => {
                let subject = shared::x509::parse_cert(end_entity)
                    .map(|c| c.subject().to_string())
                    .unwrap_or_else(|_| "unparseable certificate".into());
                tracing::info!(code = crate::server::chain_code(&e).as_str(), %subject, "client certificate refused during the TLS handshake");
                if let Some(seq) = self.events.get() {
                    seq.record(SecurityEvent {
                        at: now.0,
                        kind: "tls",
                        code: crate::server::chain_code(&e).as_str().into(),
                        identity: None,
                        peer: None,
                        detail: format!("{subject}: {e}"),
                    });
                }
                Err(tls_error(&e))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The gateway's TLS configuration: TLS 1.3 only, HTTP/2 and HTTP/1.1.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    verifier: Arc<VoterCertVerifier>,
) -> Result<rustls::ServerConfig> {
    let mut c = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(cert_chain, key)
        .context("the TLS certificate and key do not match")?;
    c.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    c.max_early_data_size = 0;
    Ok(c)
}
