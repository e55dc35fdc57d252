//! Shared test helpers: codec setup over a store that counts requests and bytes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use dj_core::codec::{CodecContext, ResolvedType};
use dj_core::config::{Config, StoreSpec};
use dj_core::registry::{Registry, StoreSet};
use dj_core::store::Store;
use dj_core::value::Value;
use dj_testkit::{CountingStore, StoreCounts};
// Link the store protocols the setups use.
use dj_store_file as _;
use dj_store_memory as _;

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
    pub counts: Arc<StoreCounts>,
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
        let counting = CountingStore::new(inner);
        let counts = Arc::clone(counting.counts());
        let store: Arc<dyn Store> = Arc::new(counting);
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
