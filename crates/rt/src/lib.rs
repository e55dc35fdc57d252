//! # dj-rt: runtime helpers shared by dj-rs crates
//!
//! Not part of dj-rs's public API: the codec, store and object crates use these helpers so that
//! each does not carry its own copy, and they may change between any two versions.
//!
//! - [`task`]: keeping CPU-heavy work (hashing, encoding, local file I/O) off the async runtime;
//! - [`pages`]: fresh large buffers backed by transparent huge pages.

pub mod pages;
pub mod task;
