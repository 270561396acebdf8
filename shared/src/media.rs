//! File names on the removable media between the gateway and the verifier
//! (DESIGN sections 4 and 7). Both programs derive every name from here;
//! neither takes a file name from the media.

/// The gateway transfer key's public certificate (armored OpenPGP).
pub const GATEWAY_TRANSFER_KEY: &str = "gateway-transfer.pgp";
/// The gateway log key (C2SP verifier key text).
pub const GATEWAY_LOG_KEY: &str = "gateway-log.vkey";
/// The signed election manifest.
pub const ELECTION_MANIFEST: &str = "election-manifest.signed";
/// The signed roster.
pub const ROSTER: &str = "roster.signed";
/// The signed status file.
pub const STATUS_FILE: &str = "status.signed";

/// The folder name of transfer bundle number `sequence`.
pub fn bundle_dir(sequence: u64) -> String {
    format!("bundle-{sequence:06}")
}
