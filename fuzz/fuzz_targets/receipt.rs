//! A voter's receipt (C2SP tlog-proof with the log entry).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shared::receipt::Receipt::parse(data);
    let _ = shared::log_entry::LogEntry::from_bytes(data);
});
