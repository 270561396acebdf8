//! The verifier's integration tests, in one binary. Bundles are made by the
//! real gateway code (sequencer and export), not by hand.

// A test that meets an unexpected error should stop with it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod binary;
mod ceremony;
mod custody;
mod import;
mod power;
mod process;
