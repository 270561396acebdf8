//! The gateway's integration tests, in one binary: real SQLite files, real
//! TLS on 127.0.0.1, generated certificates.

// A test that meets an unexpected error should stop with it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Helpers are shared between the test modules of this one binary.
#![allow(unreachable_pub, dead_code)]

mod abuse;
mod backup;
mod binaries;
mod crash;
mod disk;
mod fixture;
mod metrics;
mod observer_page;
mod packaging;
mod power;
mod reload;
mod sequencer;
mod server;
mod witnessing;
