//! # dj-codec-filepath: references to files already in a store
//!
//! The `<filepath@>` codec records a path, relative to the store root, of a file or folder that
//! something else put there (an acquisition system, a sync job). Nothing is copied and nothing is
//! ever deleted by dj-rs: garbage collection only sweeps the hash and schema sections, and this
//! codec refuses paths into them. The stored JSON is DataJoint's:
//!
//! ```text
//! {"path": "raw/session1/f.bin", "store": "main", "size": 10, "is_dir": false,
//!  "timestamp": "2026-11-23T22:05:46.367583+00:00"}
//! ```
//!
//! On insert the path must be relative, free of `..`, outside the store's `hash_prefix` and
//! `schema_prefix` sections, under `filepath_prefix` when one is configured, and it must exist.
//! The size is recorded (not for folders) and checked by [`ObjectRef::verify`]. A bare `@` uses
//! `stores.filepath_default`. Fetch returns an [`ObjectRef`] without any I/O.
//!
//! **Symbolic links in `file` stores.** A path in a `file` store is resolved (every symbolic link
//! followed) and must end inside the store's directory: on insert, and again on every read,
//! listing or write through the fetched [`ObjectRef`] (a link created after insert is caught when
//! the file is read). Links that stay inside the directory work as usual. Other protocols have no
//! links and are not affected. (A link swapped in between the check and the open is not caught:
//! whoever can do that already writes to the store's directory.)
//!
//! ```
//! use std::sync::Arc;
//! use dj_core::codec::{CodecContext, ResolvedType};
//! use dj_core::config::{Config, StoreSpec};
//! use dj_object::ObjectRef;
//! use dj_core::registry::Registry;
//! use dj_core::store::{StoreExt, StorePath};
//! use dj_core::value::Value;
//! # use dj_store_memory as _; use dj_codec_filepath as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! let mut config = Config::default();
//! config.stores.specs.insert("raw".into(), StoreSpec::new("raw", "memory", ""));
//! let config = Arc::new(config);
//! let cx = CodecContext::for_tests(Arc::clone(&config));
//! let store = cx.stores.get("raw")?;
//! store.put(&StorePath::parse("acq/s1/f.bin")?, "0123456789".into()).await?;
//!
//! let ty = ResolvedType::resolve(&"<filepath@raw>".parse()?, Registry::global(), &config)?;
//! let stored = ty.encode(Value::from("acq/s1/f.bin"), &cx).await?;
//! assert_eq!(stored.as_json().unwrap()["size"], 10);
//! assert!(ty.encode(Value::from("../etc/passwd"), &cx).await.is_err());
//! assert!(ty.encode(Value::from("_hash/lab/x"), &cx).await.is_err());
//!
//! let fetched = ty.decode(stored, &cx).await?;
//! let obj = fetched.as_domain::<ObjectRef>().unwrap();
//! obj.verify().await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use dj_core::codec::{Codec, CodecContext};
use dj_core::config::StoreSpec;
use dj_core::error::{Error, Result};
use dj_core::store::{
    Capabilities, GetOptions, GetResult, MultipartUpload, ObjectMeta, PutOptions, PutResult, Store,
    StorePath,
};
use dj_core::typespec::TypeSpec;
use dj_core::value::Value;
use dj_layout::StoreLayout;
use dj_object::{ObjectRef, python_timestamp_now};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, json};

/// The codec name.
pub const NAME: &str = "filepath";

/// The `<filepath@>` codec. Stateless; the crate registers it at link time.
#[derive(Debug, Default, Clone, Copy)]
pub struct FilepathCodec;

dj_core::submit_codec!(NAME, || Arc::new(FilepathCodec));

#[async_trait]
impl Codec for FilepathCodec {
    fn name(&self) -> &str {
        NAME
    }

    fn dtype(&self, is_store: bool) -> Result<TypeSpec> {
        dj_core::codec::store_only_json(NAME, is_store)
    }

    fn uses_filepath_default(&self) -> bool {
        true
    }

    fn validate(&self, value: &Value) -> Result<()> {
        match value {
            Value::String(_) => Ok(()),
            other => Err(Error::codec(
                NAME,
                format!(
                    "<filepath@> takes a path relative to the store root, not {}",
                    other.kind()
                ),
            )),
        }
    }

    async fn encode(&self, value: Value, ctx: &CodecContext) -> Result<Value> {
        let Value::String(path) = value else {
            return Err(Error::codec(
                NAME,
                format!(
                    "<filepath@> takes a path relative to the store root, not {}",
                    value.kind()
                ),
            ));
        };
        let (name, store) = ctx.store(NAME)?;
        let spec = ctx.stores.spec(&name)?;
        let key = StoreLayout::from(spec).check_filepath(&path)?;
        if let Some(root) = StoreRoot::of(spec) {
            root.check(&name, &key).await?;
        }
        let (size, is_dir) = match store.head(&key).await {
            Ok(meta) => (Some(meta.size), false),
            Err(Error::NotFound { .. }) => {
                // Not a file: a folder when anything lies below it.
                let first = store.list(Some(&key)).try_next().await?;
                match first {
                    Some(_) => (None, true),
                    None => {
                        return Err(Error::NotFound {
                            store: name,
                            path: format!("{path} (a <filepath@> must exist before insert)"),
                        });
                    }
                }
            }
            Err(e) => return Err(e),
        };
        let mut m = Map::new();
        m.insert("path".into(), json!(key.as_str()));
        m.insert("store".into(), json!(name));
        m.insert("size".into(), json!(size));
        m.insert("is_dir".into(), json!(is_dir));
        m.insert("timestamp".into(), json!(python_timestamp_now()));
        Ok(Value::Json(serde_json::Value::Object(m)))
    }

    async fn decode(&self, stored: Value, ctx: &CodecContext) -> Result<Value> {
        let obj = ObjectRef::from_stored(&stored, &ctx.stores, ctx.store.as_deref(), NAME)?;
        let root = ctx
            .stores
            .spec(obj.store_name())
            .ok()
            .and_then(StoreRoot::of);
        let Some(root) = root else {
            return Ok(Value::domain(obj));
        };
        // Reads of a `file` store go through a store that checks where each path resolves.
        let confined = Confined {
            inner: Arc::clone(obj.store()),
            root: Arc::new(root),
        };
        Ok(Value::domain(ObjectRef::new(
            obj.metadata().clone(),
            Arc::new(confined),
        )))
    }
}

/// The directory of a `file` store, canonicalized on first use.
#[derive(Debug)]
struct StoreRoot {
    location: PathBuf,
    canonical: OnceLock<PathBuf>,
}

impl StoreRoot {
    /// The root of `spec` when it is a `file` store.
    fn of(spec: &StoreSpec) -> Option<StoreRoot> {
        spec.protocol
            .eq_ignore_ascii_case("file")
            .then(|| StoreRoot {
                location: PathBuf::from(&spec.location),
                canonical: OnceLock::new(),
            })
    }

    /// Check, off the async runtime, that `key` resolves inside the store's directory.
    async fn check(&self, store: &str, key: &StorePath) -> Result<()> {
        let location = self.location.clone();
        let known = self.canonical.get().cloned();
        let key = key.clone();
        let store = store.to_string();
        let root = dj_rt::task::run_blocking(true, NAME, "path check", move || {
            let root = match known {
                Some(root) => root,
                None => std::fs::canonicalize(&location).map_err(|source| Error::Io {
                    path: location.display().to_string(),
                    source,
                })?,
            };
            check_inside(&root, &store, &key)?;
            Ok::<_, Error>(root)
        })
        .await??;
        let _ = self.canonical.set(root);
        Ok(())
    }
}

/// Whether the file or folder `key` names under `root` (canonical) ends inside `root` once every
/// symbolic link is followed. A path that does not exist yet is judged by its nearest existing
/// ancestor; a link that leads nowhere is refused.
fn check_inside(root: &Path, store: &str, key: &StorePath) -> Result<()> {
    let full = key
        .as_str()
        .split('/')
        .fold(root.to_path_buf(), |p, segment| p.join(segment));
    let escape = |reason: String| {
        Error::invalid_path(
            key.as_str(),
            format!(
                "{reason}, outside the directory of store `{store}`; <filepath@> follows no link out of its store"
            ),
        )
    };
    let mut at: &Path = &full;
    loop {
        match std::fs::canonicalize(at) {
            Ok(real) if real.starts_with(root) => return Ok(()),
            Ok(real) => return Err(escape(format!("resolves to {}", real.display()))),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                if std::fs::symlink_metadata(at).is_ok() {
                    return Err(escape(format!(
                        "passes through {}, a symbolic link to nothing",
                        at.display()
                    )));
                }
                match at.parent() {
                    Some(parent) if parent.starts_with(root) => at = parent,
                    _ => return Err(escape("cannot be resolved".into())),
                }
            }
            Err(source) => {
                return Err(Error::Io {
                    path: at.display().to_string(),
                    source,
                });
            }
        }
    }
}

/// A `file` store seen through a fetched `<filepath@>`: every path is checked to resolve inside
/// the store's directory before the store is asked.
struct Confined {
    inner: Arc<dyn Store>,
    root: Arc<StoreRoot>,
}

impl Confined {
    async fn check(&self, key: &StorePath) -> Result<()> {
        self.root.check(self.inner.name(), key).await
    }
}

impl fmt::Debug for Confined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Confined")
            .field("inner", &self.inner)
            .field("root", &self.root.location)
            .finish()
    }
}

impl fmt::Display for Confined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

#[async_trait]
impl Store for Confined {
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
        self.check(path).await?;
        self.inner.put_opts(path, payload, options).await
    }
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        self.check(path).await?;
        self.inner.get_opts(path, options).await
    }
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        self.check(path).await?;
        self.inner.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.check(path).await?;
        self.inner.delete(path).await
    }
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        // Each listed file is checked too: a link inside a folder may lead out of the store.
        let root = Arc::clone(&self.root);
        let name = self.inner.name().to_string();
        let prefix_check = {
            let root = Arc::clone(&root);
            let name = name.clone();
            let prefix = prefix.cloned();
            async move {
                match &prefix {
                    Some(p) => root.check(&name, p).await,
                    None => Ok(()),
                }
            }
        };
        let listing = self.inner.list(prefix).and_then(move |meta| {
            let root = Arc::clone(&root);
            let name = name.clone();
            async move {
                root.check(&name, &meta.path).await?;
                Ok(meta)
            }
        });
        futures::stream::once(prefix_check)
            .try_filter_map(|()| futures::future::ready(Ok(None)))
            .chain(listing)
            .boxed()
    }
    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        self.check(path).await?;
        self.inner.put_multipart(path).await
    }
}
