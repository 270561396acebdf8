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

/// The number of a transfer bundle folder named by [`bundle_dir`]: exactly
/// `bundle-` and six digits. Any other name is not a bundle.
pub fn parse_bundle_dir(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("bundle-")?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_folder_names_round_trip_and_nothing_else_parses() {
        assert_eq!(bundle_dir(7), "bundle-000007");
        assert_eq!(parse_bundle_dir(&bundle_dir(7)), Some(7));
        for bad in [
            "bundle-7",
            "bundle-0000007",
            "bundle-00000a",
            "Bundle-000001",
            "bundle-000001 ",
        ] {
            assert_eq!(parse_bundle_dir(bad), None, "{bad}");
        }
    }
}
