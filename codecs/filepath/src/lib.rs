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
//! ```
//! use std::sync::Arc;
//! use dj_core::codec::{CodecContext, ResolvedType};
//! use dj_core::config::{Config, StoreSpec};
//! use dj_core::object::ObjectRef;
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

use std::sync::Arc;

use async_trait::async_trait;
use dj_core::codec::{Codec, CodecContext};
use dj_core::error::{Error, Result};
use dj_core::layout::StoreLayout;
use dj_core::object::{ObjectRef, python_timestamp_now};
use dj_core::typespec::TypeSpec;
use dj_core::value::Value;
use futures::TryStreamExt;
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
        Ok(Value::domain(obj))
    }
}
