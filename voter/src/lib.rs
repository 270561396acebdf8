//! The voter's side of the ballot return system: `ballot-return` and the
//! library it is built from. It signs the marked ballot with the voter's
//! certificate, seals it to the election key, uploads it over mutual TLS,
//! and checks everything the gateway answers. It speaks the gateway's HTTP
//! contract (`shared::api`, `docs/spec/http-api.md`) and links no server
//! code.
#![forbid(unsafe_code)]

pub mod card;
pub mod client;
pub mod page;
pub mod printable;
pub mod receipts;
pub mod signing;
pub mod tls;
