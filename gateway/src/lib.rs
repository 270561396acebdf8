//! The online side of the ballot return system: the internet-facing
//! gateway (mutual TLS, acceptance checks, durable storage, the Merkle log
//! and receipts, bundle export). The voter's program is the `voter` crate.
#![forbid(unsafe_code)]

pub mod app;
pub mod backup;
pub mod config;
pub mod export;
mod h2guard;
pub mod metrics;
pub mod refusals;
pub mod reload;
pub mod sequencer;
pub mod server;
pub mod setup;
pub mod store;
pub mod tls;
pub mod witnessing;
