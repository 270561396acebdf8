//! The ballot package inside a voter's signature (DESIGN 5.1).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(p) = shared::ballot::BallotPackage::from_bytes(data) {
        // What parses must write back to the same bytes.
        assert_eq!(p.to_bytes().unwrap(), data);
    }
});
