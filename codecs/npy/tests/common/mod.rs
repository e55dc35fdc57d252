//! Shared test helpers: a store wrapper that counts requests and bytes, and codec setup.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use dj_core::Result;
use dj_core::codec::{CodecContext, ResolvedType};
use dj_core::config::{Config, StoreSpec};
use dj_core::registry::{Registry, StoreSet};
use dj_core::store::{
    Capabilities, GetRange, GetResult, MultipartUpload, ObjectMeta, PutMode, PutResult, Store,
    StorePath,
};
use dj_core::value::Value;
use futures::stream::BoxStream;
// Link the store protocols the setups use.
use dj_store_file as _;
use dj_store_memory as _;

/// Request and byte counters of a [`CountingStore`].
#[derive(Debug, Default)]
pub struct Counts {
    pub gets: AtomicUsize,
    pub ranged_gets: AtomicUsize,
    pub bytes_read: AtomicU64,
    pub heads: AtomicUsize,
    pub puts: AtomicUsize,
    pub multipart_uploads: AtomicUsize,
    pub parts: AtomicUsize,
}

impl Counts {
    pub fn get(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::SeqCst)
    }
    pub fn reads(&self) -> usize {
        Counts::get(&self.gets) + Counts::get(&self.heads)
    }
    pub fn reset(&self) {
        for c in [
            &self.gets,
            &self.ranged_gets,
            &self.heads,
            &self.puts,
            &self.multipart_uploads,
            &self.parts,
        ] {
            c.store(0, Ordering::SeqCst);
        }
        self.bytes_read.store(0, Ordering::SeqCst);
    }
}

/// Wraps a store and counts what goes through it.
pub struct CountingStore {
    pub inner: Arc<dyn Store>,
    pub counts: Arc<Counts>,
}

impl fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountingStore({:?})", self.inner)
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "counting {}", self.inner)
    }
}

#[derive(Debug)]
struct CountingUpload {
    inner: Box<dyn MultipartUpload>,
    counts: Arc<Counts>,
}

#[async_trait]
impl MultipartUpload for CountingUpload {
    async fn put_part(&mut self, data: Bytes) -> Result<()> {
        self.counts.parts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_part(data).await
    }
    async fn complete(self: Box<Self>) -> Result<PutResult> {
        self.inner.complete().await
    }
    async fn abort(self: Box<Self>) -> Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl Store for CountingStore {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn put_opts(&self, path: &StorePath, payload: Bytes, mode: PutMode) -> Result<PutResult> {
        self.counts.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_opts(path, payload, mode).await
    }
    async fn get_opts(&self, path: &StorePath, range: Option<GetRange>) -> Result<GetResult> {
        self.counts.gets.fetch_add(1, Ordering::SeqCst);
        if range.is_some() {
            self.counts.ranged_gets.fetch_add(1, Ordering::SeqCst);
        }
        let r = self.inner.get_opts(path, range).await?;
        self.counts
            .bytes_read
            .fetch_add(r.range.end - r.range.start, Ordering::SeqCst);
        Ok(r)
    }
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        self.counts.heads.fetch_add(1, Ordering::SeqCst);
        self.inner.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.inner.delete(path).await
    }
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        self.counts.multipart_uploads.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(CountingUpload {
            inner: self.inner.put_multipart(path).await?,
            counts: Arc::clone(&self.counts),
        }))
    }
}

/// Which store backend a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    File,
}

pub const BACKENDS: [Backend; 2] = [Backend::Memory, Backend::File];

/// A configured store `main` of the given backend, wrapped in a [`CountingStore`], with a codec
/// context for `lab.recording` row `rec_id=1`, attribute `waveform`.
pub struct Setup {
    pub dir: Option<tempfile::TempDir>,
    pub cx: CodecContext,
    pub store: Arc<dyn Store>,
    pub counts: Arc<Counts>,
    pub config: Arc<Config>,
}

impl Setup {
    pub fn new(backend: Backend) -> Setup {
        Setup::with_spec(backend, |_| {})
    }

    pub fn with_spec(backend: Backend, tweak: impl FnOnce(&mut StoreSpec)) -> Setup {
        let (dir, mut spec) = match backend {
            Backend::Memory => (None, StoreSpec::new("main", "memory", "")),
            Backend::File => {
                let dir = tempfile::tempdir().unwrap();
                let spec = StoreSpec::new("main", "file", dir.path().to_str().unwrap());
                (Some(dir), spec)
            }
        };
        tweak(&mut spec);
        let mut config = Config::default();
        config.stores.specs.insert("main".into(), spec);
        config.stores.default = Some("main".into());
        let config = Arc::new(config);
        let stores = Arc::new(StoreSet::new(Arc::clone(&config)));
        let inner = stores.get("main").unwrap();
        let counts = Arc::new(Counts::default());
        let store: Arc<dyn Store> = Arc::new(CountingStore {
            inner,
            counts: Arc::clone(&counts),
        });
        stores.insert("main", Arc::clone(&store));
        let mut cx = CodecContext {
            schema: "lab".into(),
            table: "recording".into(),
            field: "waveform".into(),
            key: Default::default(),
            store: None,
            stores,
            config: Arc::clone(&config),
        };
        cx.key.insert("rec_id".to_string(), Value::Int(1));
        Setup {
            dir,
            cx,
            store,
            counts,
            config,
        }
    }

    /// `spec` resolved with the global registry.
    pub fn resolve(&self, spec: &str) -> ResolvedType {
        ResolvedType::resolve(&spec.parse().unwrap(), Registry::global(), &self.config).unwrap()
    }

    /// `spec` resolved with a registry whose `npy` codec is `codec`.
    pub fn resolve_with(
        &self,
        spec: &str,
        codec: Arc<dyn dj_core::codec::Codec>,
    ) -> (Registry, ResolvedType) {
        let registry = Registry::new();
        registry.register_codec(codec).unwrap();
        let ty = ResolvedType::resolve(&spec.parse().unwrap(), &registry, &self.config).unwrap();
        (registry, ty)
    }
}

/// The golden-file folder.
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The bytes of a golden file.
pub fn golden(name: &str) -> Vec<u8> {
    std::fs::read(golden_dir().join(name)).unwrap()
}
