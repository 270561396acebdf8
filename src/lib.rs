//! The root package: the end-to-end demo (`ballot-demo`), and in `tests/`
//! the end-to-end tests that drive the gateway and the verifier together.
#![forbid(unsafe_code)]

pub mod demo;
pub mod hands_on;
