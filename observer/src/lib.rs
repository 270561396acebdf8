//! What observers run, holding no county secret: a witness that cosigns the
//! ballot log's checkpoints ([`witness`], served by [`serve`]). The
//! auditor's program (`ballot-audit`) is not written yet.
#![forbid(unsafe_code)]

pub mod serve;
pub mod witness;
