//! The county's own CRLs, from its own media (`ballot-verifier import-crls
//! MEDIA`): revocation is not only what the gateway chose to ship. The
//! media is read as hostile, like a bundle (no links followed, sizes
//! bounded, names shown escaped). Every CRL must be complete (a delta CRL
//! is refused, loudly), come from a CA the verifier knows (a pinned anchor
//! or an intermediate from the bundles) and verify with that CA's key.
//! All or nothing: one bad file imports none.

use super::media::Folder;
use super::ImportError;
use anyhow::{bail, Result};
use rusqlite::params;
use sha2::{Digest, Sha256};
use shared::pki::{crls_from_pem_or_der, Anchor};
use std::path::Path;

/// The largest CRL file read: DoD CRLs run to tens of megabytes.
pub const MAX_CRL_FILE: u64 = 256 * 1024 * 1024;
/// The most CRL files one import takes.
pub const MAX_CRL_FILES: usize = 1024;
/// The most CRL bytes one import holds before writing them (all or none).
pub const MAX_CRL_TOTAL: u64 = 1024 * 1024 * 1024;

/// One CRL imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedCrl {
    /// The file it came from.
    pub file: String,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its issuer.
    pub issuer: String,
    /// thisUpdate and nextUpdate (Unix seconds).
    pub this_update: i64,
    /// nextUpdate (Unix seconds; 0 when absent).
    pub next_update: i64,
    /// Revoked certificates it lists.
    pub entries: usize,
    /// Whether the verifier had it already.
    pub known: bool,
}

/// Imports the CRL files (`*.crl`, `*.pem`, `*.der`, any case) at the top of
/// `media`; other files are left alone. `anchors` are the pinned anchors.
pub fn import_county_crls(
    conn: &mut rusqlite::Connection,
    media: &Path,
    anchors: &[Anchor],
) -> Result<Vec<ImportedCrl>> {
    let root = Folder::open_root(media).map_err(anyhow::Error::from)?;
    let mut names = Vec::new();
    root.each_entry(|n| {
        let lower = n.to_ascii_lowercase();
        if [".crl", ".pem", ".der"].iter().any(|x| lower.ends_with(x)) {
            if names.len() >= MAX_CRL_FILES {
                return Err(ImportError::Malformed(format!(
                    "more than {MAX_CRL_FILES} CRL files on the media"
                )));
            }
            names.push(n.to_owned());
        }
        Ok(())
    })?;
    names.sort();
    if names.is_empty() {
        bail!(
            "no CRL file (*.crl, *.pem, *.der) in {}",
            shared::text::printable(&media.display().to_string())
        );
    }
    // The CAs a CRL may come from: the pinned anchors and the
    // intermediates the bundles brought.
    let mut cas: Vec<Vec<u8>> = anchors.iter().map(|a| a.cert_der.clone()).collect();
    {
        let mut stmt = conn.prepare("SELECT der FROM pki_files WHERE kind = 'intermediate'")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        for r in rows {
            cas.push(r?);
        }
    }
    let mut found = Vec::new();
    let mut total: u64 = 0;
    for name in &names {
        let shown = shared::text::printable(name);
        let data = root.read(name, MAX_CRL_FILE)?;
        total += data.len() as u64;
        if total > MAX_CRL_TOTAL {
            bail!("the CRL files on the media hold more than {MAX_CRL_TOTAL} bytes together");
        }
        let ders = crls_from_pem_or_der(&data).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        if ders.is_empty() {
            bail!("{shown} holds no CRL");
        }
        for der in ders {
            // Read with the rules revocation checks use: a delta CRL or an
            // unknown critical extension is refused here, by name.
            let info = shared::pki::crl_info(&der)
                .map_err(|e| anyhow::anyhow!("{shown}: refused: {e}"))?;
            cas.iter()
                .find(|ca| shared::pki::crl_signed_by(&der, ca))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{shown}: refused: the CRL from {} is not signed by any CA this verifier knows \
                         (the pinned anchors and the intermediates the bundles brought)",
                        info.issuer
                    )
                })?;
            if info.points_to_delta {
                bail!(
                    "{shown}: refused: the CRL from {} names a delta CRL (Freshest CRL), so it is not \
                     complete on its own, and delta CRLs are not applied; bring a complete CRL",
                    info.issuer
                );
            }
            let sha256: [u8; 32] = Sha256::digest(&der).into();
            found.push((
                ImportedCrl {
                    file: shown.to_string(),
                    sha256: hex::encode(sha256),
                    issuer: info.issuer,
                    this_update: info.this_update,
                    next_update: info.next_update.unwrap_or(0),
                    entries: info.entries,
                    known: false,
                },
                sha256,
                der,
            ));
        }
    }
    let tx = conn.transaction()?;
    let mut out = Vec::with_capacity(found.len());
    for (mut crl, sha256, der) in found {
        let added = tx.execute(
            "INSERT OR IGNORE INTO pki_files (sha256, kind, der) VALUES (?1, 'crl', ?2)",
            params![sha256.as_slice(), der],
        )?;
        crl.known = added == 0;
        out.push(crl);
    }
    tx.commit()?;
    Ok(out)
}
