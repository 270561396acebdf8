//! The gateway's secret-free check of an encrypted upload's OpenPGP
//! structure, against a real election key's encryption subkeys.
#![no_main]
use std::sync::OnceLock;

fn subkeys() -> &'static Vec<sequoia_openpgp::Fingerprint> {
    static K: OnceLock<Vec<sequoia_openpgp::Fingerprint>> = OnceLock::new();
    K.get_or_init(|| {
        let cert = shared::pgp::generate_election_key("Fuzz County", None).unwrap();
        shared::pgp::encryption_subkeys(&cert).unwrap()
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shared::pgp::check_structure(data, subkeys(), 1 << 20);
});
