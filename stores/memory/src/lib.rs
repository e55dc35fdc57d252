//! # dj-store-memory: the `memory` store protocol
//!
//! An object store held in process memory (`object_store`'s `InMemory`), for tests, examples and
//! throwaway pipelines. Everything is lost when the last handle is dropped; clones of a
//! [`MemoryStore`] share their objects. Create-if-absent is exclusive, multipart uploads accept
//! parts of any size, and writes are not durable (see [`Capabilities`]).
//!
//! The crate registers the protocol `memory`; a spec's `location`, if not empty, becomes a key
//! prefix. It has no error type of its own: everything is a [`dj_core::Error`] naming the store
//! and the key.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! use dj_core::store::{Store, StoreExt, StorePath};
//! use dj_store_memory::MemoryStore;
//!
//! let store = MemoryStore::new("scratch");
//! let key = StorePath::parse("notes/today.txt")?;
//! store.put(&key, "hello".into()).await?;
//! assert_eq!(&store.get(&key).await?[..], b"hello");
//! assert_eq!(store.list_all(None).await?.len(), 1);
//! store.delete(&key).await?;
//! assert!(store.get(&key).await.unwrap_err().is_not_found());
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use dj_core::Result;
use dj_core::config::{SpecContext, StoreSpec};
use dj_core::store::{
    Capabilities, GetOptions, GetResult, MultipartUpload, ObjectMeta, PutOptions, PutResult, Store,
    StorePath,
};
use dj_store_object_store::ObjectStoreAdapter;
use futures::stream::BoxStream;
use object_store::memory::InMemory;

fn capabilities() -> Capabilities {
    Capabilities::default()
        .with_create_if_absent(true)
        .with_native_multipart(true)
        .with_ranged_get(true)
        .with_durable_writes(false)
        .with_min_part_size(1)
}

/// A store in process memory.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    inner: ObjectStoreAdapter,
}

impl fmt::Display for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store `{}` (in memory)", self.inner.name())
    }
}

impl MemoryStore {
    /// A new, empty in-memory store called `name`.
    pub fn new(name: &str) -> MemoryStore {
        MemoryStore::wrap(ObjectStoreAdapter::unprefixed(
            name,
            Arc::new(InMemory::new()),
        ))
    }

    /// A new, empty in-memory store called `name` whose keys all live below `prefix`.
    ///
    /// The prefix must be a valid key; otherwise an [`dj_core::Error::InvalidPath`] names it.
    pub fn with_prefix(name: &str, prefix: &str) -> Result<MemoryStore> {
        Ok(MemoryStore::wrap(ObjectStoreAdapter::new(
            name,
            Arc::new(InMemory::new()),
            Some(prefix),
        )?))
    }

    fn wrap(adapter: ObjectStoreAdapter) -> MemoryStore {
        MemoryStore {
            inner: adapter
                .with_capabilities(capabilities())
                .with_backend_description("in memory"),
        }
    }
}

/// A new, empty in-memory store called `name`, boxed as a shareable `dyn Store`.
pub fn memory_store(name: &str) -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(name))
}

#[async_trait]
impl Store for MemoryStore {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn put_opts(
        &self,
        path: &StorePath,
        payload: Bytes,
        options: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(path, payload, options).await
    }
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(path, options).await
    }
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        self.inner.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.inner.delete(path).await
    }
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart(path).await
    }
}

/// Build a `memory` store from its spec (the factory registered for the protocol).
pub fn create(spec: &StoreSpec, _cx: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
    let location = spec.location.trim_matches('/');
    let store = if location.is_empty() {
        MemoryStore::new(&spec.name)
    } else {
        MemoryStore::with_prefix(&spec.name, location)?
    };
    // In memory: nothing to retry.
    Ok(dj_store_layers::standard(
        Arc::new(store),
        dj_store_layers::Retries::Backend,
    ))
}

dj_core::submit_store_protocol!("memory", create, allowed = &[], required = &[]);
