//! Runs every transparency-dev/merkle vector under
//! `../shared/testdata/merkle/{inclusion,consistency}`: each happy path must
//! verify and each mutation (`wantErr: true`) must be refused.

use base64::prelude::*;
use serde_json::Value;
use shared::merkle::{verify_consistency, verify_inclusion, Hash};
use std::path::{Path, PathBuf};

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A vector's hash; `None` when it is not 32 bytes (the vectors use short
/// or empty values as mutations, which no real proof can contain).
fn hash(v: &Value) -> Option<Hash> {
    let s = v.as_str().unwrap_or("");
    BASE64_STANDARD.decode(s).ok()?.try_into().ok()
}

/// A consistency vector's root. Some vectors use short placeholder roots
/// ("don't care") in cases where only their byte equality matters; our API
/// takes 32-byte roots, so a root of another length is mapped injectively
/// (by hashing it with a prefix) to a 32-byte value. Equal placeholders stay
/// equal, and none can equal a real root.
fn root(v: &Value) -> Option<Hash> {
    let s = v.as_str().unwrap_or("");
    let bytes = BASE64_STANDARD.decode(s).ok()?;
    Some(match <Hash>::try_from(bytes.as_slice()) {
        Ok(h) => h,
        Err(_) => {
            use sha2::Digest;
            sha2::Sha256::new_with_prefix(b"placeholder root:")
                .chain_update(&bytes)
                .finalize()
                .into()
        }
    })
}

fn proof(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(a) => a.iter().map(hash).collect(),
        _ => None,
    }
}

#[test]
fn every_inclusion_vector_gives_its_expected_result() {
    let dir = crate::testdata_or_skip!("merkle/inclusion");
    let files = json_files(&dir);
    assert!(
        files.len() > 50,
        "expected the full vector set, found {}",
        files.len()
    );
    let (mut accepted, mut refused) = (0, 0);
    for f in &files {
        let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let result = match (hash(&v["leafHash"]), hash(&v["root"]), proof(&v["proof"])) {
            (Some(leaf), Some(root), Some(proof)) => verify_inclusion(
                v["leafIdx"].as_u64().unwrap(),
                v["treeSize"].as_u64().unwrap(),
                &leaf,
                &proof,
                &root,
            )
            .is_ok(),
            _ => false,
        };
        assert_eq!(result, !want_err, "{}: {}", f.display(), v["desc"]);
        if result {
            accepted += 1
        } else {
            refused += 1
        }
    }
    eprintln!("inclusion vectors: {accepted} accepted, {refused} refused as expected");
    assert!(accepted > 0 && refused > 0);
}

#[test]
fn every_consistency_vector_gives_its_expected_result() {
    let dir = crate::testdata_or_skip!("merkle/consistency");
    let files = json_files(&dir);
    assert!(
        files.len() > 50,
        "expected the full vector set, found {}",
        files.len()
    );
    let (mut accepted, mut refused) = (0, 0);
    for f in &files {
        let v: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        let want_err = v["wantErr"].as_bool().unwrap();
        let result = match (root(&v["root1"]), root(&v["root2"]), proof(&v["proof"])) {
            (Some(r1), Some(r2), Some(proof)) => verify_consistency(
                v["size1"].as_u64().unwrap(),
                v["size2"].as_u64().unwrap(),
                &proof,
                &r1,
                &r2,
            )
            .is_ok(),
            _ => false,
        };
        assert_eq!(result, !want_err, "{}: {}", f.display(), v["desc"]);
        if result {
            accepted += 1
        } else {
            refused += 1
        }
    }
    eprintln!("consistency vectors: {accepted} accepted, {refused} refused as expected");
    assert!(accepted > 0 && refused > 0);
}
