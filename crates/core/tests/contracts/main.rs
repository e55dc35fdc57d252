//! Tests of dj-core's contracts through its public API, one module per source module.

mod codec;
mod error;
mod object;
mod registry;
mod reuse;
mod store;
mod typespec;
mod value;
