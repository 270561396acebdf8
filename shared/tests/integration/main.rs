//! The integration tests of the `shared` crate, in one binary.

mod common;
mod merkle_vectors;
