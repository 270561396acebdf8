//! A CRL, as the gateway and the verifier index it (streamed entry by
//! entry, `shared::crl_index`): never a panic, and the listing and the
//! trust store agree on whether it can be used.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let info = shared::pki::crl_info(data);
    let store = shared::pki::TrustStore::new(vec![], vec![], vec![data.to_vec()]);
    assert_eq!(info.is_ok(), store.is_ok());
});
