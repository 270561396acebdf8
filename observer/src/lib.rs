//! What observers run, holding no county secret: a witness that cosigns the
//! ballot log's checkpoints ([`witness`], served by [`serve`]), and the
//! auditor's checks ([`audit`], the `ballot-audit` program).
#![forbid(unsafe_code)]

pub mod audit;
pub mod serve;
pub mod witness;
