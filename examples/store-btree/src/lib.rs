//! # dj-store-btree: a third-party dj-rs store
//!
//! The `btree` protocol keeps objects in an ordered map in the process's memory, one map per
//! `location`, shared by every store opened with that location (so two connections of one
//! process see the same objects). It is written from scratch against the [`Store`] contract, not
//! on an adapter, to show every operation a store implements; `docs/custom-stores.md` walks
//! through it.
//!
//! It registers itself with `inventory` when linked, so a `datajoint.json` can name it:
//!
//! ```json
//! {"stores": {"scratch": {"protocol": "btree", "location": "lab", "max_object_size": 1048576}}}
//! ```
//!
//! `max_object_size` is the protocol's own option: read into [`BtreeOptions`] when the
//! configuration is loaded, with unknown keys rejected by name.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! use dj_core::config::{SpecContext, StoreSpec};
//! use dj_core::store::{StoreExt, StorePath};
//!
//! let spec = StoreSpec::new("scratch", "btree", "doc-example").with_option("max_object_size", 64);
//! let store = dj_store_btree::create(&spec, &SpecContext::default())?;
//! let key = StorePath::parse("notes/a.txt")?;
//! store.put(&key, "hello".into()).await?;
//! assert_eq!(&store.get(&key).await?[..], b"hello");
//! assert!(store.put(&key, vec![0u8; 65].into()).await.is_err());
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use dj_core::config::{SpecContext, StoreSpec};
use dj_core::error::{Error, Result};
use dj_core::store::{
    Capabilities, GetOptions, GetResult, MultipartUpload, ObjectMeta, PutMode, PutOptions,
    PutResult, Store, StorePath,
};
use futures::StreamExt;
use futures::stream::BoxStream;

/// The protocol name, as written in `stores.<name>.protocol`.
pub const PROTOCOL: &str = "btree";

/// The `btree` protocol's own settings (`stores.<name>.*` beyond the common keys).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BtreeOptions {
    /// The largest object the store accepts, in bytes; no limit when absent.
    #[serde(default)]
    pub max_object_size: Option<u64>,
}

#[derive(Clone)]
struct Object {
    data: Bytes,
    last_modified: DateTime<Utc>,
    e_tag: u64,
}

/// One location's objects.
#[derive(Default)]
struct Map {
    objects: BTreeMap<String, Object>,
    next_tag: u64,
}

type Shared = Arc<Mutex<Map>>;

/// The map of `location`, created on first use.
fn map_for(location: &str) -> Shared {
    static MAPS: OnceLock<Mutex<HashMap<String, Shared>>> = OnceLock::new();
    let maps = MAPS.get_or_init(Default::default);
    let mut maps = maps.lock().unwrap_or_else(|e| e.into_inner());
    Arc::clone(maps.entry(location.to_string()).or_default())
}

/// A `btree` store.
pub struct BtreeStore {
    name: String,
    location: String,
    max_object_size: Option<u64>,
    map: Shared,
}

impl fmt::Debug for BtreeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BtreeStore")
            .field("name", &self.name)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for BtreeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "btree store `{}` (location `{}`)",
            self.name, self.location
        )
    }
}

impl BtreeStore {
    /// The store called `name` over the map of `location`.
    pub fn new(name: &str, location: &str, options: BtreeOptions) -> Self {
        BtreeStore {
            name: name.to_string(),
            location: location.to_string(),
            max_object_size: options.max_object_size,
            map: map_for(location),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_size(&self, path: &StorePath, size: u64) -> Result<()> {
        match self.max_object_size {
            Some(max) if size > max => Err(Error::Store {
                store: self.name.clone(),
                operation: "put",
                path: path.to_string(),
                retryable: false,
                source: format!("{size} bytes exceed this store's max_object_size of {max}").into(),
            }),
            _ => Ok(()),
        }
    }

    fn write(&self, path: &StorePath, data: Bytes, mode: PutMode) -> Result<PutResult> {
        self.check_size(path, data.len() as u64)?;
        let mut map = self.lock();
        if mode == PutMode::Create && map.objects.contains_key(path.as_str()) {
            return Err(Error::AlreadyExists {
                store: self.name.clone(),
                path: path.to_string(),
            });
        }
        map.next_tag += 1;
        let e_tag = map.next_tag;
        map.objects.insert(
            path.to_string(),
            Object {
                data,
                last_modified: Utc::now(),
                e_tag,
            },
        );
        Ok(PutResult {
            e_tag: Some(e_tag.to_string()),
        })
    }

    fn meta(path: &str, o: &Object) -> Result<ObjectMeta> {
        Ok(ObjectMeta {
            path: StorePath::parse(path)?,
            size: o.data.len() as u64,
            last_modified: o.last_modified,
            e_tag: Some(o.e_tag.to_string()),
        })
    }

    fn not_found(&self, path: &StorePath) -> Error {
        Error::NotFound {
            store: self.name.clone(),
            path: path.to_string(),
        }
    }
}

#[async_trait]
impl Store for BtreeStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_create_if_absent(true)
            // Parts are buffered and written as one object on completion.
            .with_native_multipart(false)
            .with_ranged_get(true)
            // Memory does not survive the process.
            .with_durable_writes(false)
            .with_min_part_size(0)
    }

    async fn put_opts(
        &self,
        path: &StorePath,
        payload: Bytes,
        options: PutOptions,
    ) -> Result<PutResult> {
        self.write(path, payload, options.mode)
    }

    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        let (meta, data) = {
            let map = self.lock();
            let o = map
                .objects
                .get(path.as_str())
                .ok_or_else(|| self.not_found(path))?;
            (Self::meta(path.as_str(), o)?, o.data.clone())
        };
        let range = match options.range {
            Some(r) => r.resolve(meta.size, path.as_str())?,
            None => 0..meta.size,
        };
        let slice = data.slice(
            usize::try_from(range.start).unwrap_or(usize::MAX)
                ..usize::try_from(range.end).unwrap_or(usize::MAX),
        );
        Ok(GetResult {
            meta,
            range,
            stream: futures::stream::once(async move { Ok(slice) }).boxed(),
        })
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        let map = self.lock();
        let o = map
            .objects
            .get(path.as_str())
            .ok_or_else(|| self.not_found(path))?;
        Self::meta(path.as_str(), o)
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.lock().objects.remove(path.as_str());
        Ok(())
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        // Segment-wise: `a/b` lists `a/b` and `a/b/…`, never `a/bc`.
        let below = prefix.map(|p| format!("{p}/"));
        let exact = prefix.map(|p| p.to_string());
        let items: Vec<Result<ObjectMeta>> = self
            .lock()
            .objects
            .iter()
            .filter(|(k, _)| match (&exact, &below) {
                (Some(e), Some(b)) => *k == e || k.starts_with(b.as_str()),
                _ => true,
            })
            .map(|(k, o)| Self::meta(k, o))
            .collect();
        futures::stream::iter(items).boxed()
    }

    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        Ok(Box::new(Upload {
            store: BtreeStore {
                name: self.name.clone(),
                location: self.location.clone(),
                max_object_size: self.max_object_size,
                map: Arc::clone(&self.map),
            },
            path: path.clone(),
            buf: BytesMut::new(),
        }))
    }
}

/// A multipart upload: parts are buffered and the object appears whole on `complete`.
struct Upload {
    store: BtreeStore,
    path: StorePath,
    buf: BytesMut,
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("path", &self.path)
            .field("buffered", &self.buf.len())
            .finish()
    }
}

#[async_trait]
impl MultipartUpload for Upload {
    async fn put_part(&mut self, data: Bytes) -> Result<()> {
        self.store
            .check_size(&self.path, (self.buf.len() + data.len()) as u64)?;
        self.buf.extend_from_slice(&data);
        Ok(())
    }

    async fn complete(self: Box<Self>) -> Result<PutResult> {
        let Upload { store, path, buf } = *self;
        store.write(&path, buf.freeze(), PutMode::Overwrite)
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// Check a `btree` spec when the configuration is loaded: its options must read as
/// [`BtreeOptions`] (an unknown key is an error naming `stores.<name>.<key>`).
pub fn check(spec: &mut StoreSpec, _cx: &SpecContext<'_>) -> Result<()> {
    let _: BtreeOptions = spec.options_as()?;
    Ok(())
}

/// Build a `btree` store from its spec (the factory registered for the protocol).
pub fn create(spec: &StoreSpec, _cx: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
    let options: BtreeOptions = spec.options_as()?;
    let store = Arc::new(BtreeStore::new(
        &spec.name,
        spec.location.trim_matches('/'),
        options,
    ));
    // Spans for every operation, like the built-in stores; in memory, so nothing to retry.
    Ok(dj_store_layers::standard(
        store,
        dj_store_layers::Retries::Backend,
    ))
}

dj_core::submit_store_protocol!(PROTOCOL, create, check = check);
