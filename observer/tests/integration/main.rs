//! The observer's programs against real logs' checkpoints: the witness's
//! protocol answers, its durability, and its HTTP listener.

mod witness;
