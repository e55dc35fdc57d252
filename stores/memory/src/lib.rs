//! # dj-store-memory: the `memory` store protocol
//!
//! An object store held in process memory (`object_store`'s `InMemory`), for tests, examples and
//! throwaway pipelines. Everything is lost when the process ends. It registers the protocol
//! `memory`; the spec's `location`, if any, becomes a key prefix. Errors are `dj_core::Error`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! use dj_core::store::{StoreExt, StorePath};
//!
//! let store = dj_store_memory::memory_store("scratch");
//! let key = StorePath::parse("notes/today.txt")?;
//! store.put(&key, "hello".into()).await?;
//! assert_eq!(&store.get(&key).await?[..], b"hello");
//! # Ok(()) }
//! ```

use std::sync::Arc;

use dj_core::Result;
use dj_core::config::{Config, StoreSpec};
use dj_core::object_store_adapter::ObjectStoreAdapter;
use dj_core::store::{Capabilities, Store};

fn capabilities() -> Capabilities {
    Capabilities {
        durable_writes: false,
        min_part_size: 1,
        ..Capabilities::default()
    }
}

/// A new, empty in-memory store called `name`.
pub fn memory_store(name: &str) -> Arc<dyn Store> {
    let inner = Arc::new(object_store::memory::InMemory::new());
    Arc::new(ObjectStoreAdapter::unprefixed(name, inner).with_capabilities(capabilities()))
}

/// Build a `memory` store from its spec (the factory registered for the protocol).
pub fn create(spec: &StoreSpec, _config: &Config) -> Result<Arc<dyn Store>> {
    let prefix = Some(spec.location.as_str()).filter(|l| !l.is_empty());
    let store = ObjectStoreAdapter::new(
        spec.name.as_str(),
        Arc::new(object_store::memory::InMemory::new()),
        prefix,
    )?
    .with_capabilities(capabilities());
    Ok(Arc::new(store))
}

dj_core::submit_store_protocol!("memory", create, allowed = &[], required = &[]);
