//! The offline side.
#![forbid(unsafe_code)]
