//! The online side.
#![forbid(unsafe_code)]
