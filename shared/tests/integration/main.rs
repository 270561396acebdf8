//! The integration tests of the `shared` crate, in one binary.

mod cms_openssl;
mod common;
mod dod_pki;
mod merkle_vectors;
