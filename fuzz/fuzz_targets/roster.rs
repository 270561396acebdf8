//! The roster: the binary form, the signed form and the county's CSV.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(r) = shared::roster::Roster::from_bytes(data) {
        assert_eq!(r.to_bytes().unwrap(), data);
    }
    let _ = shared::roster::Roster::open_signed(data, &"A".repeat(64));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = shared::roster::Roster::from_csv("fuzz-election", text);
    }
});
