//! The integration tests of the `shared` crate, in one binary.

mod common;
mod dod_pki;
mod merkle_vectors;
