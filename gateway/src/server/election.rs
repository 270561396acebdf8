//! What the gateway knows about the election after `import-setup`, and the
//! upload-size rule that follows from it.

use sequoia_openpgp::Fingerprint;
use shared::manifest::ElectionManifest;
use shared::roster::Roster;

/// Room in an upload beyond the largest accepted ballot: the package
/// fields, the voter's certificates in the signature and the OpenPGP
/// envelope.
pub const UPLOAD_OVERHEAD: usize = 64 * 1024;

/// The election, as imported.
#[derive(Debug)]
pub struct Election {
    /// The manifest.
    pub manifest: ElectionManifest,
    /// The signed manifest, served as is.
    pub manifest_signed: Vec<u8>,
    /// The roster.
    pub roster: Roster,
    /// The election encryption subkeys.
    pub subkeys: Vec<Fingerprint>,
}

impl Election {
    /// The largest upload accepted: the largest accepted ballot, padded to
    /// its bucket, plus [`UPLOAD_OVERHEAD`].
    pub fn max_upload(&self) -> usize {
        let largest = self
            .manifest
            .accepted_media
            .iter()
            .map(|m| m.max_size as usize)
            .max()
            .unwrap_or(0);
        // A ballot package is padded to a bucket (docs/spec/ballot-package.md).
        shared::ballot::max_padded(largest) + UPLOAD_OVERHEAD
    }
}
