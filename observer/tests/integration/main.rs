//! The observer's programs against real logs' checkpoints: the witness's
//! protocol answers, its durability, and its HTTP listener.

// A test that meets an unexpected error should stop with it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod witness;
