//! # dj-codec-hash: content-addressed object storage
//!
//! The `<hash@>` codec stores bytes in an object store at a path derived from their hash and keeps
//! only metadata in the table, as DataJoint 2.x does:
//!
//! ```text
//! {hash_prefix}/{schema}/[folds/]{hash}        e.g. _hash/lab/mh/mc/mhmckyclcrjf5zaexdm2zxjwiu
//! {"hash": "mhmc…", "path": "_hash/lab/mh/mc/mhmc…", "schema": "lab", "store": "main", "size": 69}
//! ```
//!
//! Identical content in one schema is stored once. An object is uploaded only when absent (a `head`,
//! then a create-if-absent put; "already exists" counts as success), and every read re-hashes the
//! bytes and fails on a mismatch, naming the path. By default the hash is DataJoint's MD5 in base32
//! (26 characters), so DataJoint Python reads what we write; a store configured with
//! `"hash_algorithm": "blake3"` addresses new objects by BLAKE3 instead (52 characters), records
//! `"hash_algorithm": "blake3"` in the metadata and verifies with it. Both kinds can live in one
//! store.
//!
//! MD5-addressed metadata written by dj-rs also carries a `checksum`: the BLAKE3 of the same bytes
//! (base32, as `<object@>` writes it; DataJoint ignores the extra key). A read verifies against it
//! when it is there, which proves the same content as the MD5 does (and more strongly) at several
//! times the speed; rows without it (written by DataJoint Python) are verified by their MD5.
//!
//! `<blob@>` and `<attach@>` chain into this codec. On its own it takes [`Value::Bytes`] and gives
//! them back:
//!
//! ```
//! use std::sync::Arc;
//! use dj_core::codec::{CodecContext, ResolvedType};
//! use dj_core::config::{Config, StoreSpec};
//! use dj_core::registry::Registry;
//! use dj_core::value::Value;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! let mut config = Config::default();
//! config.stores.specs.insert("main".into(), StoreSpec::new("main", "memory", ""));
//! let config = Arc::new(config);
//! let mut cx = CodecContext::for_tests(Arc::clone(&config));
//! cx.schema = "lab".into();
//! # use dj_codec_hash as _; use dj_store_memory as _;
//!
//! let ty = ResolvedType::resolve(&"<hash@main>".parse()?, Registry::global(), &config)?;
//! let stored = ty.encode(Value::from(b"hello world".to_vec()), &cx).await?;
//! let meta = stored.as_json().unwrap();
//! assert_eq!(meta["path"], "_hash/lab/l23dxo7ad3xnbe6lek5y6wwnym");
//! assert_eq!(ty.decode(stored, &cx).await?, Value::from(b"hello world".to_vec()));
//! # Ok(()) }
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use dj_core::codec::{Codec, CodecContext, StoredRef};
use dj_core::config::HashAlgorithm;
use dj_core::error::{Error, Result};
use dj_core::store::{ExpectedDigest, GetOptions, Store, StoreExt, StorePath};
use dj_core::typespec::TypeSpec;
use dj_core::value::Value;
use dj_layout as layout;
use dj_rt::task::run_blocking;
use serde_json::{Map, json};

/// The codec name.
pub const NAME: &str = "hash";

/// An existing object older than this is written again when an insert reuses it (see
/// [`put_hashed`]), so that garbage collection never deletes an object a new row is about to
/// reference. The rule and its bound on GC's grace period are in [`dj_core::reuse`].
pub use dj_core::reuse::REFRESH_AFTER;

/// The `<hash@>` codec. Stateless; register it once (the crate does so at link time).
#[derive(Debug, Default, Clone, Copy)]
pub struct HashCodec;

dj_core::submit_codec!(NAME, || Arc::new(HashCodec));

/// Metadata of a hash-addressed object, as stored in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashMetadata {
    /// The content hash.
    pub hash: String,
    /// The object's key in the store.
    pub path: String,
    /// The schema it was written for.
    pub schema: String,
    /// The store's name.
    pub store: Option<String>,
    /// Size of the stored bytes.
    pub size: u64,
    /// The hash algorithm.
    pub algorithm: HashAlgorithm,
    /// The BLAKE3 checksum (lowercase base32) of the content, recorded beside an MD5 `hash` by
    /// dj-rs; `None` in metadata written by DataJoint Python and for BLAKE3-addressed objects,
    /// whose `hash` already is that checksum.
    pub checksum: Option<String>,
}

impl HashMetadata {
    /// The JSON DataJoint stores, keys in DataJoint's order: `hash, path, schema, store, size`,
    /// plus `hash_algorithm` for BLAKE3 objects and `checksum` when there is one.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = Map::new();
        m.insert("hash".into(), json!(self.hash));
        m.insert("path".into(), json!(self.path));
        m.insert("schema".into(), json!(self.schema));
        m.insert("store".into(), json!(self.store));
        m.insert("size".into(), json!(self.size));
        if self.algorithm == HashAlgorithm::Blake3 {
            m.insert("hash_algorithm".into(), json!("blake3"));
        }
        if let Some(checksum) = &self.checksum {
            m.insert("checksum".into(), json!(checksum));
        }
        serde_json::Value::Object(m)
    }

    /// Read metadata from a stored value (a JSON document, or JSON text as MySQL returns it).
    pub fn from_stored(stored: &Value) -> Result<HashMetadata> {
        let json = stored.stored_json().map_err(|m| Error::codec(NAME, m))?;
        let field = |k: &str| -> Result<&str> {
            json.get(k)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| {
                    Error::codec(
                        NAME,
                        format!("stored metadata lacks a string `{k}`: {json}"),
                    )
                })
        };
        let algorithm = match json
            .get("hash_algorithm")
            .and_then(serde_json::Value::as_str)
        {
            None | Some("md5") => HashAlgorithm::Md5,
            Some("blake3") => HashAlgorithm::Blake3,
            Some(other) => {
                return Err(Error::codec(
                    NAME,
                    format!("stored metadata names unknown hash_algorithm `{other}`"),
                ));
            }
        };
        Ok(HashMetadata {
            hash: field("hash")?.to_string(),
            path: field("path")?.to_string(),
            schema: json
                .get("schema")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string(),
            store: json
                .get("store")
                .and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            size: json
                .get("size")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            algorithm,
            checksum: json
                .get("checksum")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
        })
    }
}

/// Hashing this many bytes or more goes to the blocking pool. MD5 runs at well under a gigabyte a
/// second, so 32 KiB is tens of microseconds, several times the hand-off; and on the pool the
/// values of one insert or fetch (which tables handle many at a time) are hashed on every core
/// instead of one after another on the runtime thread that polls them.
const HASH_POOL_MIN: usize = 32 * 1024;

/// Run `f` over `data`, on the blocking pool when `data` is [`HASH_POOL_MIN`] bytes or more.
async fn on_pool<T: Send + 'static>(
    data: &Bytes,
    f: impl FnOnce(&[u8]) -> T + Send + 'static,
) -> Result<T> {
    let big = data.len() >= HASH_POOL_MIN;
    let data = data.clone();
    run_blocking(big, NAME, "hashing task", move || f(&data)).await
}

/// Below this many bytes the BLAKE3 checksum beside an MD5 address is computed on the runtime
/// thread, while the object's `head` and write run on the blocking pool: BLAKE3 hashes several
/// gigabytes a second on one core, so 256 KiB is tens of microseconds, about what a second trip
/// to the pool would cost.
const CHECKSUM_INLINE_MAX: usize = 256 * 1024;

/// The BLAKE3 checksum recorded beside an address of `algorithm` (`None` when the address is
/// BLAKE3 already), computed on the blocking pool for large `data`.
async fn checksum_of(algorithm: HashAlgorithm, data: Bytes) -> Result<Option<String>> {
    if algorithm == HashAlgorithm::Blake3 {
        return Ok(None);
    }
    let big = data.len() >= CHECKSUM_INLINE_MAX;
    run_blocking(big, NAME, "hashing task", move || {
        Some(layout::content_hash(HashAlgorithm::Blake3, &data))
    })
    .await
}

/// Write `data` to `store` hash-addressed under `schema`, unless it is already there, and return
/// its metadata. This is what `<hash@>` does on insert; other codecs may call it directly.
///
/// An object already there with the wrong size is damaged and is rewritten. One older than
/// [`REFRESH_AFTER`] is written again too: it may be an orphan that a garbage collection has
/// listed, and the rewrite makes it young before the row that reuses it commits (the rule is
/// [`dj_core::reuse`]'s).
pub async fn put_hashed(
    store_name: &str,
    store: &dyn Store,
    spec: &dj_core::config::StoreSpec,
    schema: &str,
    data: Bytes,
) -> Result<HashMetadata> {
    let algorithm = spec.hash_algorithm;
    // The address first (the key depends on it); the checksum beside it is computed while the
    // object is looked up and written.
    let hash = on_pool(&data, move |d| layout::content_hash(algorithm, d)).await?;
    let path = layout::hash_path(spec, schema, &hash)?;
    let size = data.len() as u64;
    let checksum = checksum_of(algorithm, data.clone());
    let (checksum, written) =
        futures::join!(checksum, write_hashed(store_name, store, &path, data));
    let (checksum, ()) = (checksum?, written?);
    Ok(HashMetadata {
        hash,
        path: path.as_str().to_string(),
        schema: schema.to_string(),
        store: Some(store_name.to_string()),
        size,
        algorithm,
        checksum,
    })
}

/// Write `data` at `path` unless it is there already (see [`put_hashed`]).
async fn write_hashed(
    store_name: &str,
    store: &dyn Store,
    path: &StorePath,
    data: Bytes,
) -> Result<()> {
    let path = path.clone();
    let size = data.len() as u64;
    match store.head(&path).await {
        Ok(meta) if meta.size == size => {
            if dj_core::reuse::must_refresh(meta.last_modified, chrono::Utc::now()) {
                // An old object may be an orphan that a garbage collection is about to delete.
                // Writing the same bytes again makes it young, so the collection's grace period
                // (and its age check just before deleting) spares it for the row about to
                // reference it.
                tracing::debug!(store = store_name, path = %path, "refreshing an old hash object");
                store.put(&path, data).await?;
            } else {
                tracing::debug!(store = store_name, path = %path, "hash object already stored");
            }
        }
        Ok(meta) => {
            // Same name, different size: the stored object is damaged. The bytes we hold hash to
            // this name, so replacing it repairs it.
            tracing::warn!(store = store_name, path = %path, stored = meta.size, expected = size,
                "hash object has the wrong size; rewriting it");
            store.put(&path, data).await?;
        }
        Err(Error::NotFound { .. }) => {
            store.put_if_absent(&path, data).await?;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Read and verify a hash-addressed object: against its BLAKE3 `checksum` when the metadata has
/// one, otherwise against its `hash`.
pub async fn get_hashed(meta: &HashMetadata, store_name: &str, store: &dyn Store) -> Result<Bytes> {
    let path = StorePath::parse(&meta.path)?;
    let (what, algorithm, expected) = match &meta.checksum {
        Some(checksum) => ("BLAKE3 checksum", HashAlgorithm::Blake3, checksum),
        None => ("content hash", meta.algorithm, &meta.hash),
    };
    if store.capabilities().verified_get {
        // The store hashes each chunk as it reads it (a file store: in the same blocking task),
        // and fails the read on a mismatch.
        let want = ExpectedDigest::new(algorithm, expected.clone(), what);
        let options = GetOptions::default().with_verify(Some(want));
        return store.get_opts(&path, options).await?.bytes().await;
    }
    let data = store.get(&path).await?;
    let actual = on_pool(&data, move |d| layout::content_hash(algorithm, d)).await?;
    if &actual != expected {
        return Err(Error::Integrity {
            store: store_name.to_string(),
            path: meta.path.clone(),
            message: format!("{what} is {actual}, expected {expected} (the object is corrupted)"),
        });
    }
    Ok(data)
}

#[async_trait]
impl Codec for HashCodec {
    fn name(&self) -> &str {
        NAME
    }

    fn dtype(&self, is_store: bool) -> Result<TypeSpec> {
        dj_core::codec::store_only_json(NAME, is_store)
    }

    fn validate(&self, value: &Value) -> Result<()> {
        match value {
            Value::Bytes(_) => Ok(()),
            other => Err(Error::codec(
                NAME,
                format!("<hash@> takes bytes, found {}", other.kind()),
            )),
        }
    }

    async fn encode(&self, value: Value, ctx: &CodecContext) -> Result<Value> {
        let Value::Bytes(data) = value else {
            return Err(Error::codec(
                NAME,
                format!("<hash@> takes bytes, found {}", value.kind()),
            ));
        };
        let (store_name, store) = ctx.store(NAME)?;
        let spec = ctx.stores.spec(&store_name)?;
        let meta = put_hashed(&store_name, store.as_ref(), spec, &ctx.schema, data).await?;
        Ok(Value::Json(meta.to_json()))
    }

    async fn decode(&self, stored: Value, ctx: &CodecContext) -> Result<Value> {
        let meta = HashMetadata::from_stored(&stored)?;
        // The metadata names where the object is; fall back to the attribute's store.
        let store_name = match meta.store.clone().or_else(|| ctx.store.clone()) {
            Some(s) => s,
            None => {
                return Err(Error::codec(
                    NAME,
                    format!("stored metadata for `{}` names no store", meta.path),
                ));
            }
        };
        let store = ctx.stores.get(&store_name)?;
        Ok(Value::Bytes(
            get_hashed(&meta, &store_name, store.as_ref()).await?,
        ))
    }

    fn referenced_paths(&self, stored: &Value) -> Vec<StoredRef> {
        dj_core::codec::default_referenced_paths(stored)
    }
}
