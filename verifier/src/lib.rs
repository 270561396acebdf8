//! The offline side of the ballot return system, run by county election
//! staff on an air-gapped machine: the key ceremony, the import of transfer
//! bundles from hostile media, decryption, the rules, the separation of
//! identity from ballot content, reports, the status file, and receipt
//! audits.
#![forbid(unsafe_code)]

pub mod airgap;
pub mod audit;
pub mod ceremony;
pub mod custody;
pub mod import;
pub mod process;
pub mod state;
