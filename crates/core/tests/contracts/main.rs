//! Tests of dj-core's contracts through its public API, one module per source module.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod codec;
mod error;
mod object;
mod registry;
mod reuse;
mod store;
mod typespec;
mod value;
