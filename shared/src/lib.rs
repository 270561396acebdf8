//! The formats and checks that the gateway, the verifier, the voter client
//! and auditors all speak. One module per wire format; each format's
//! specification is in `docs/spec/`.
#![forbid(unsafe_code)]

pub mod api;
pub mod ballot;
pub mod bundle;
pub mod checkpoint;
pub mod cli_docs;
pub mod clock;
pub mod cms;
pub mod codec;
mod crl_index;
pub mod der_limits;
pub mod files;
pub mod linkage;
pub mod log_entry;
pub mod manifest;
pub mod media;
pub mod merkle;
pub mod note;
pub mod pgp;
pub mod pins;
pub mod pki;
pub mod policy;
pub mod printed;
pub mod receipt;
pub mod roster;
pub mod signed;
pub mod status;
pub mod text;
pub mod witness;
pub mod x509;
