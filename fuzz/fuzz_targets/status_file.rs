//! The verifier's status file, bare and signed.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = shared::status::StatusFile::from_bytes(data) {
        assert_eq!(s.to_bytes().unwrap(), data);
    }
    let _ = shared::status::StatusFile::open_signed(data, &"A".repeat(64));
});
