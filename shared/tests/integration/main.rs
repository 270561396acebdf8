//! The integration tests of the `shared` crate, in one binary.

// A test that meets an unexpected error should stop with it: panicking on
// `unwrap` is the point in test code, including its helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod bombs;
mod cms_openssl;
mod cms_shapes;
mod common;
mod dod_pki;
mod limbo;
mod merkle_vectors;
mod policy;
mod revocation;
mod vectors;
