//! The root package of the workspace. It has no code of its own: its
//! `tests/` directory holds the end-to-end tests that drive the gateway and
//! the verifier together.
#![forbid(unsafe_code)]
