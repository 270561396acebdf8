//! The verifier's decryption with the election key. The input is tried
//! twice: as a whole message, and as the packet stream inside a SEIPD v2
//! container encrypted to the key (what only a voter, or an attacker with
//! a stolen card, can put there): nested, compressed, truncated or
//! huge-length packets must be refused, with bounded output.
#![no_main]
use std::sync::OnceLock;

fn key() -> &'static sequoia_openpgp::Cert {
    static K: OnceLock<sequoia_openpgp::Cert> = OnceLock::new();
    K.get_or_init(|| shared::pgp::generate_election_key("Fuzz County", None).unwrap())
}

const MAX: usize = 1 << 20;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(out) = shared::pgp::decrypt(data, key(), None, MAX) {
        assert!(out.len() <= MAX);
    }
    let wrapped = shared::pgp::encrypt_packets(key(), data).unwrap();
    if let Ok(out) = shared::pgp::decrypt(&wrapped, key(), None, MAX) {
        assert!(out.len() <= MAX);
    }
});
