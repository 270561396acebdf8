//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// `../shared/testdata` beside the repository: third-party vectors that are
/// read in place, never copied into the repository.
pub(crate) fn testdata() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata");
    if dir.is_dir() {
        Some(dir)
    } else {
        None
    }
}

/// The testdata folder, or a printed reason for skipping the test.
#[macro_export]
macro_rules! testdata_or_skip {
    ($sub:expr) => {{
        match $crate::common::testdata().map(|d| d.join($sub)) {
            Some(d) if d.exists() => d,
            _ => {
                eprintln!(
                    "SKIPPED: ../shared/testdata/{} is absent; these vectors come from outside the repository",
                    $sub
                );
                return;
            }
        }
    }};
}
