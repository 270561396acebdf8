//! Test support for every crate's tests, the end-to-end tests and the
//! benchmarks (like rustls's own test crate): one place that runs the real
//! key ceremonies, issues the development PKI, configures a gateway (its
//! TOML written by `serde`, as an operator's file is read), and starts the
//! real server, in-process or as the `ballot-gateway serve` binary.
//!
//! Nothing here is a mock: the ceremony is `gateway::setup::init`,
//! `verifier::ceremony::init` and `gateway::setup::import_setup`, the same
//! code the programs run.
#![forbid(unsafe_code)]
// Test support: a failed setup step should stop the test with its error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod browser;
pub mod election;
pub mod hostile;
pub mod lazyfs;
pub mod observers;
pub mod pdf;
pub mod poor_link;
pub mod server;
pub mod softhsm;
pub mod voters;
pub mod world;

pub use election::{County, ElectionSpec};

use std::path::Path;

/// Copies a folder tree (files and folders only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// The current time.
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
