//! A signed note carrying a checkpoint: the note parser, the checkpoint
//! text, and verification against a real log key.
#![no_main]
use std::sync::OnceLock;

fn key() -> &'static shared::note::NoteVerifier {
    static K: OnceLock<shared::note::NoteVerifier> = OnceLock::new();
    K.get_or_init(|| {
        shared::note::NoteSigner::generate("fuzz.example/log", shared::note::TYPE_ED25519)
            .unwrap()
            .verifier()
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shared::note::Note::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = shared::checkpoint::Checkpoint::parse_text(text);
    }
    let _ = shared::checkpoint::SignedCheckpoint::verify(data, key());
});
