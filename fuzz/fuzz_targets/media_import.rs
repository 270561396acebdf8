//! The verifier's import of a bundle from hostile media, as a compromised
//! gateway would write it: the fuzzer's manifest is signed with the real
//! transfer key (which such a gateway holds), so everything after the
//! signature check is reached. Input: a 4-byte little-endian manifest
//! length, the manifest, then the contents of the first ballot file.
#![no_main]
use std::sync::{Mutex, OnceLock};

struct Setup {
    dir: tempfile::TempDir,
    transfer: sequoia_openpgp::Cert,
    conn: Mutex<rusqlite::Connection>,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let transfer = shared::pgp::generate_signing_key("Fuzz gateway transfer", None).unwrap();
        let log =
            shared::note::NoteSigner::generate("fuzz.example/log", shared::note::TYPE_ED25519)
                .unwrap();
        let conn = verifier::state::open(&verifier::state::db_path(dir.path())).unwrap();
        verifier::state::set_pins(
            &conn,
            &verifier::state::Pins {
                election_id: "fuzz-election".into(),
                transfer_cert: shared::pgp::public_bytes(&transfer).unwrap(),
                log_key: log.verifier().to_vkey(),
                // The fuzzer cannot cosign as this witness: the witnessed
                // checkpoints it writes reach the quorum check and fail it.
                witnesses: vec![shared::note::NoteSigner::generate(
                    "fuzz.example/witness",
                    shared::note::TYPE_COSIGNATURE,
                )
                .unwrap()
                .verifier()
                .to_vkey()],
                witness_quorum: 1,
            },
        )
        .unwrap();
        Setup {
            dir,
            transfer,
            conn: Mutex::new(conn),
        }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
    let (manifest, ballot) = rest.split_at(len);
    let s = setup();
    let bundle = s.dir.path().join("media").join("bundle-000001");
    let _ = std::fs::remove_dir_all(s.dir.path().join("media"));
    std::fs::create_dir_all(bundle.join("ballots")).unwrap();
    std::fs::write(bundle.join(shared::bundle::MANIFEST_FILE), manifest).unwrap();
    let sig = shared::pgp::sign_detached(&s.transfer, None, manifest).unwrap();
    std::fs::write(bundle.join(shared::bundle::SIGNATURE_FILE), sig).unwrap();
    std::fs::write(bundle.join(shared::bundle::ballot_file_name(0)), ballot).unwrap();
    let mut conn = s.conn.lock().unwrap();
    let _ = verifier::import::import(
        &mut conn,
        &bundle,
        &shared::clock::SystemClock,
        &mut |_, _| {},
    );
});
