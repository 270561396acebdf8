//! The transfer bundle manifest: its header, then entry frames to the end.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut r = data;
    if shared::bundle::BundleHeader::read(&mut r).is_ok() {
        // At most as many entries as there are bytes (each frame has a
        // length prefix), so this ends.
        for _ in 0..=data.len() {
            match shared::bundle::BundleEntry::read(&mut r) {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
});
