//! # dj-store-layers: behaviour every store shares, as layers
//!
//! A [`Layer`] wraps an `Arc<dyn Store>` into another store that adds one behaviour and forwards
//! everything else, in the style of OpenDAL's layers. This crate has three:
//!
//! - [`TracingLayer`]: every operation runs in an `info`-level span named `dj_store` with the
//!   fields `op`, `store`, `path`, `bytes` and `elapsed_us`. This is the one place where dj-rs
//!   keeps its promise that every store operation has a span; stores do not emit their own.
//! - [`RetryLayer`]: operations that fail with a retryable error
//!   ([`Error::is_retryable`](dj_core::Error::is_retryable)) are tried again after an
//!   exponential backoff with jitter, a bounded number of times and for a bounded time
//!   ([`RetryPolicy`]).
//! - [`PrefixLayer`]: a store rooted at a sub-path of another.
//!
//! The built-in protocols open their stores through [`standard`]: the tracing layer always, the
//! retry layer for backends that do not retry by themselves. Which backends retry where:
//!
//! | protocol | retries |
//! |---|---|
//! | `s3`, `gcs`, `azure` | inside `object_store`'s HTTP client (its `RetryConfig`, set from the spec's `retry`), so no retry layer |
//! | `file`, `memory`, `opendal-fs`, `opendal-memory` | nothing to retry (local), so no retry layer |
//! | `opendal-s3`, `webdav`, `sftp` | the retry layer ([`RetryPolicy::for_spec`]: the default with the spec's `retry`) |
//!
//! A store's `retry` settings (`stores.<name>.retry` in `datajoint.json`, read into
//! [`StoreSpec::retry`](dj_core::config::StoreSpec::retry)) give the same numbers to either
//! kind: attempts in all, the first and the largest backoff, and the time after which no retry
//! starts.
//!
//! A third-party store's factory should return `standard(store, ..)` too (see
//! `docs/custom-stores.md`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! use std::sync::Arc;
//! use dj_core::store::{Store, StoreExt, StorePath};
//! use dj_store_layers::{LayerExt, PrefixLayer, RetryLayer, TracingLayer};
//!
//! let bucket: Arc<dyn Store> = Arc::new(dj_store_memory::MemoryStore::new("lab"));
//! let store = bucket
//!     .clone()
//!     .layer(PrefixLayer::new(StorePath::parse("raw/2024")?))
//!     .layer(RetryLayer::default())
//!     .layer(TracingLayer);
//! let key = StorePath::parse("mouse 1/trace.bin")?;
//! store.put(&key, "spikes".into()).await?;
//! assert!(bucket.exists(&StorePath::parse("raw/2024/mouse 1/trace.bin")?).await?);
//! assert_eq!(store.list_all(None).await?[0].path, key);
//! # Ok(()) }
//! ```

mod prefix;
mod retry;
mod tracing_layer;

use std::sync::Arc;

pub use dj_core::store::Layer;
use dj_core::store::Store;

pub use prefix::{PrefixLayer, PrefixedStore};
pub use retry::{RetryLayer, RetryPolicy, RetryingStore};
pub use tracing_layer::{SPAN_NAME, TracedStore, TracingLayer};

/// `store.layer(l)` for an `Arc<dyn Store>`: wrap it in a layer, innermost first.
pub trait LayerExt {
    /// This store wrapped in `layer`.
    fn layer(self, layer: impl Layer) -> Arc<dyn Store>;
}

impl LayerExt for Arc<dyn Store> {
    fn layer(self, layer: impl Layer) -> Arc<dyn Store> {
        layer.layer(self)
    }
}

/// Whether the backend behind a store retries transient failures itself (and so must not be
/// wrapped in a [`RetryLayer`], which would multiply the attempts).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retries {
    /// The backend retries by itself, or has nothing to retry (local stores).
    Backend,
    /// The backend does not retry: wrap it in a [`RetryLayer`] with this policy.
    Layer(RetryPolicy),
}

/// The layers every built-in protocol applies when it opens a store from its configuration: a
/// [`RetryLayer`] with the given policy when `retries` says the backend does not retry by
/// itself, then (outermost) a [`TracingLayer`], so that one span covers all attempts of an
/// operation and each retry is an event inside it.
pub fn standard(store: Arc<dyn Store>, retries: Retries) -> Arc<dyn Store> {
    let store = match retries {
        Retries::Backend => store,
        Retries::Layer(policy) => store.layer(RetryLayer::new(policy)),
    };
    store.layer(TracingLayer)
}
