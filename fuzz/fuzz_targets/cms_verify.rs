//! The voter's CMS SignedData signature: parsing and verification.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shared::cms::verify(data, shared::cms::MAX_VOTER_SIGNATURE);
});
