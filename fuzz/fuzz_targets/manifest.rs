//! The election manifest, bare and inside a signed document.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = shared::manifest::ElectionManifest::from_bytes(data) {
        assert_eq!(m.to_bytes().unwrap(), data);
    }
    let _ = shared::manifest::ElectionManifest::open_signed(data, &"A".repeat(64));
});
