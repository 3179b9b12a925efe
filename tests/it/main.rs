//! The integration and end-to-end tests, one binary (faster to link).

mod batches;
mod handshakes;
mod harness;
mod pipeline;
mod walking_skeleton;
