//! Zarr arrays in `<object@>` folders, through the [`zarrs`] crate (feature `zarr`).
//!
//! A Zarr v3 array or group is a folder of small files: `zarr.json` metadata documents and one
//! file per chunk (`c/0/0/0`, …). An `<object@>` folder holds exactly that layout, so any Zarr
//! implementation — zarrs here, zarr-python through fsspec on the DataJoint side — can read what
//! the other wrote. This module adapts dj-rs's folder objects to zarrs' async storage traits:
//!
//! - [`ZarrWriteStore`] wraps a [`FolderWriter`] (the folder of a staged insert, or one made by
//!   hand) and implements [`AsyncWritableStorageTraits`]: each `set` writes one key with
//!   [`FolderWriter::put`], so it lands in the folder's manifest; `erase` deletes the key and
//!   [`FolderWriter::forget`]s it. It also reads and lists what was written, so partial chunk
//!   writes (`async_store_array_subset` and friends) work.
//! - [`ZarrReadStore`] wraps the [`ObjectRef`] of a folder that a fetch returned and implements
//!   [`AsyncReadableStorageTraits`] and [`AsyncListableStorageTraits`]. A `get` reads
//!   `{folder}/{key}`; partial reads are ranged requests; `size_key` is a `head`. Nothing is read
//!   before zarrs asks for it, so reading one chunk costs the array's `zarr.json` plus that
//!   chunk's bytes, however large the array.
//!
//! zarrs' async API is runtime-agnostic, but dj-rs stores run on Tokio: drive these stores from a
//! Tokio runtime. The [`zarrs`] crate is re-exported so callers use the version these traits were
//! implemented for.
//!
//! Store errors become [`StorageError::Other`] naming the store, the folder and the key; a missing
//! key is not an error but `None`, as zarrs expects (missing chunks read as the fill value).
//!
//! On a store alone (an in-memory one here); with tables, a staged insert's
//! `folder("volume", Some(".zarr"))` is the [`FolderWriter`] and a fetched row holds the
//! [`ObjectRef`] (the `datajoint` facade's `zarr` example does that on SQLite):
//!
//! ```
//! use std::sync::Arc;
//! use dj_codec_object::zarr::{ZarrReadStore, ZarrWriteStore, zarrs};
//! use dj_core::store::StorePath;
//! use dj_object::{FolderWriter, ObjectRef};
//! use zarrs::array::{Array, ArrayBuilder, data_type};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = dj_store_memory::memory_store("main");
//! let folder = StorePath::parse("_schema/lab/scan/scan_id=1/volume_Tok3n.zarr")?;
//!
//! // Write: the folder is a zarrs store; finishing it writes the manifest.
//! let writer = FolderWriter::new(Arc::clone(&store), folder);
//! let array = ArrayBuilder::new(vec![64, 64], vec![16, 16], data_type::float32(), 0.0f32)
//!     .build(Arc::new(ZarrWriteStore::new(writer.clone())), "/")?;
//! array.async_store_metadata().await?;
//! array.async_store_chunk(&[0, 0], vec![1.0f32; 16 * 16]).await?;
//! let meta = writer.finish(Some(".zarr".into())).await?;
//!
//! // Read lazily: only `zarr.json` and chunk (0, 0) are fetched.
//! let obj = ObjectRef::new(meta, store);
//! let array = Array::async_open(Arc::new(ZarrReadStore::new(obj)?), "/").await?;
//! let chunk: Vec<f32> = array.async_retrieve_chunk(&[0, 0]).await?;
//! assert_eq!(chunk, vec![1.0f32; 256]);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use dj_core::error::Error;
use dj_core::store::{GetOptions, GetRange, Store, StorePath};
use dj_object::{FolderWriter, ObjectRef};
use futures::{StreamExt, TryStreamExt, stream};
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator, InvalidByteRangeError};
use zarrs::storage::{
    AsyncListableStorageTraits, AsyncMaybeBytesIterator, AsyncReadableStorageTraits,
    AsyncWritableStorageTraits, Bytes, MaybeBytes, OffsetBytesIterator, StorageError, StoreKey,
    StoreKeys, StoreKeysPrefixes, StorePrefix, async_store_set_partial_many,
};

pub use zarrs;

/// How many ranged requests or deletions one call keeps in flight.
const CONCURRENCY: usize = 8;

// ------------------------------------------------------------------------------------------------
// The folder both adapters address
// ------------------------------------------------------------------------------------------------

/// A folder in a store: the base every zarrs key is joined to.
#[derive(Clone, Debug)]
struct Folder {
    store: Arc<dyn Store>,
    key: StorePath,
}

impl Folder {
    /// A zarrs error naming the store, the folder and the key.
    fn error(&self, operation: &str, key: &str, message: impl fmt::Display) -> StorageError {
        StorageError::Other(format!(
            "store `{}` failed to {operation} zarr key `{key}` of folder `{}`: {message}",
            self.store.name(),
            self.key,
        ))
    }

    /// The store key of a zarrs key.
    fn path_of(&self, key: &str) -> Result<StorePath, StorageError> {
        if key.is_empty() {
            return Err(self.error("address", key, "the root key names no file"));
        }
        self.key
            .join(key)
            .map_err(|e| self.error("address", key, e))
    }

    /// The store key of a zarrs prefix (`""` is the folder itself).
    fn path_of_prefix(&self, prefix: &StorePrefix) -> Result<StorePath, StorageError> {
        match prefix.as_str().strip_suffix('/') {
            None | Some("") => Ok(self.key.clone()),
            Some(p) => self
                .key
                .join(p)
                .map_err(|e| self.error("address", prefix.as_str(), e)),
        }
    }

    /// The whole value at `key`, or `None` when there is none.
    async fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        let path = self.path_of(key.as_str())?;
        self.get_range(key, &path, ByteRange::FromStart(0, None))
            .await
    }

    /// One range of the value at `path`, or `None` when there is no value.
    async fn get_range(
        &self,
        key: &StoreKey,
        path: &StorePath,
        range: ByteRange,
    ) -> Result<MaybeBytes, StorageError> {
        let (request, want) = match range {
            ByteRange::FromStart(0, None) => (None, None),
            ByteRange::FromStart(offset, None) => (Some(GetRange::Offset(offset)), None),
            ByteRange::FromStart(offset, Some(length)) => {
                let end = offset.checked_add(length).ok_or_else(|| {
                    self.error(
                        "read",
                        key.as_str(),
                        format!("byte range {range} overflows"),
                    )
                })?;
                (Some(GetRange::Bounded(offset..end)), Some(length))
            }
            ByteRange::Suffix(length) => (Some(GetRange::Suffix(length)), Some(length)),
        };
        if want == Some(0) {
            // Stores refuse empty ranges at the end of a value; answer those from its size.
            let Some(size) = self.size_key(key).await? else {
                return Ok(None);
            };
            let ByteRange::FromStart(offset, _) = range else {
                return Ok(Some(Bytes::new()));
            };
            if offset > size {
                return Err(self.error(
                    "read",
                    key.as_str(),
                    InvalidByteRangeError::new(range, size),
                ));
            }
            return Ok(Some(Bytes::new()));
        }
        let result = match self
            .store
            .get_opts(path, GetOptions::default().with_range(request))
            .await
        {
            Ok(r) => r,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error("read", key.as_str(), e)),
        };
        // The store clamps ranges that run past the end; zarrs wants them refused.
        let size = result.meta.size;
        if want.is_some_and(|w| result.range.end.saturating_sub(result.range.start) != w) {
            return Err(self.error(
                "read",
                key.as_str(),
                InvalidByteRangeError::new(range, size),
            ));
        }
        match result.bytes().await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("read", key.as_str(), e)),
        }
    }

    /// Several ranges of the value at `key`, fetched concurrently; `None` when there is no value.
    async fn get_ranges(
        &self,
        key: &StoreKey,
        ranges: Vec<ByteRange>,
    ) -> Result<Option<Vec<Bytes>>, StorageError> {
        let path = self.path_of(key.as_str())?;
        if ranges.is_empty() {
            return Ok(self.size_key(key).await?.map(|_| Vec::new()));
        }
        let parts: Vec<MaybeBytes> = stream::iter(ranges)
            .map(|r| self.get_range(key, &path, r))
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(parts.into_iter().collect())
    }

    /// The size of the value at `key`, or `None` when there is none.
    async fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        let path = self.path_of(key.as_str())?;
        match self.store.head(&path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("size", key.as_str(), e)),
        }
    }

    /// Every file below the folder (or below `prefix` inside it), relative to the folder, with
    /// its size, as the store lists it.
    async fn list_store(&self, prefix: &StorePrefix) -> Result<Vec<(String, u64)>, StorageError> {
        let under = self.path_of_prefix(prefix)?;
        let base = format!("{}/", self.key.as_str());
        let listed: Vec<_> = self
            .store
            .list(Some(&under))
            .try_collect()
            .await
            .map_err(|e| self.error("list", prefix.as_str(), e))?;
        Ok(listed
            .into_iter()
            .filter_map(|m| {
                m.path
                    .as_str()
                    .strip_prefix(&base)
                    .map(|rel| (rel.to_string(), m.size))
            })
            .collect())
    }
}

/// Answer zarrs' listing calls from a list of `(relative path, size)` files.
struct Listing(BTreeMap<String, u64>);

impl Listing {
    fn new(files: impl IntoIterator<Item = (String, u64)>) -> Self {
        Listing(files.into_iter().collect())
    }

    fn under<'a>(&'a self, prefix: &'a StorePrefix) -> impl Iterator<Item = (&'a str, u64)> + 'a {
        self.0
            .iter()
            .filter(move |(p, _)| p.starts_with(prefix.as_str()))
            .map(|(p, s)| (p.as_str(), *s))
    }

    fn keys(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.under(prefix)
            .map(|(p, _)| StoreKey::new(p).map_err(StorageError::from))
            .collect()
    }

    fn dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        let mut keys = Vec::new();
        let mut prefixes = BTreeSet::new();
        for (p, _) in self.under(prefix) {
            let rest = p.strip_prefix(prefix.as_str()).unwrap_or(p);
            match rest.split_once('/') {
                Some((dir, _)) => {
                    prefixes.insert(format!("{}{dir}/", prefix.as_str()));
                }
                None => keys.push(StoreKey::new(p)?),
            }
        }
        let prefixes = prefixes
            .into_iter()
            .map(|p| StorePrefix::new(p).map_err(StorageError::from))
            .collect::<Result<_, _>>()?;
        Ok(StoreKeysPrefixes::new(keys, prefixes))
    }

    fn size(&self, prefix: &StorePrefix) -> u64 {
        self.under(prefix).map(|(_, s)| s).sum()
    }
}

// ------------------------------------------------------------------------------------------------
// ZarrWriteStore
// ------------------------------------------------------------------------------------------------

/// A zarrs store that writes into a folder object through its [`FolderWriter`].
///
/// Every `set` writes one file with [`FolderWriter::put`], so it is recorded in the manifest the
/// folder's `finish` (or the staged insert's `commit`) writes. `erase` and `erase_prefix` delete
/// the files and [`FolderWriter::forget`] them. Reads go to the store; listings come from the
/// files recorded so far. Partial writes read, patch and rewrite the whole value (object stores
/// cannot patch in place).
///
/// Wrap it in an [`Arc`] and hand it to zarrs, e.g. `ArrayBuilder::build(Arc::new(store), "/")`.
#[derive(Clone, Debug)]
pub struct ZarrWriteStore {
    writer: FolderWriter,
    folder: Folder,
}

impl ZarrWriteStore {
    /// A store writing into `writer`'s folder. Clones of a [`FolderWriter`] share its list of
    /// files, so the writer kept by a staged insert sees everything written here.
    pub fn new(writer: FolderWriter) -> Self {
        let folder = Folder {
            store: Arc::clone(writer.store()),
            key: writer.key().clone(),
        };
        ZarrWriteStore { writer, folder }
    }

    /// The folder writer.
    pub fn writer(&self) -> &FolderWriter {
        &self.writer
    }

    fn listing(&self) -> Listing {
        Listing::new(self.writer.entries().into_iter().map(|e| (e.path, e.size)))
    }

    /// Delete one file (relative to the folder) and forget it.
    async fn remove(&self, relative: &str) -> Result<(), StorageError> {
        let path = self.folder.path_of(relative)?;
        self.folder
            .store
            .delete(&path)
            .await
            .map_err(|e| self.folder.error("erase", relative, e))?;
        self.writer.forget(relative);
        Ok(())
    }
}

#[async_trait::async_trait]
impl AsyncWritableStorageTraits for ZarrWriteStore {
    async fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        self.writer
            .put(key.as_str(), value)
            .await
            .map_err(|e| self.folder.error("write", key.as_str(), e))
    }

    async fn set_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator<'a>,
    ) -> Result<(), StorageError> {
        async_store_set_partial_many(self, key, offset_values).await
    }

    async fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.remove(key.as_str()).await
    }

    async fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        // What the store holds, and what was recorded (a listing may lag a write).
        let mut files: BTreeSet<String> = self
            .folder
            .list_store(prefix)
            .await?
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        files.extend(self.listing().under(prefix).map(|(p, _)| p.to_string()));
        let results: Vec<Result<(), StorageError>> = stream::iter(files)
            .map(|f| async move { self.remove(&f).await })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}

/// Reads through a [`Folder`] are the same for both stores: one request per key (ranged for
/// partial reads), sizes from `head`.
macro_rules! readable_through_folder {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl AsyncReadableStorageTraits for $store {
            async fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
                self.folder.get(key).await
            }

            async fn get_partial_many<'a>(
                &'a self,
                key: &StoreKey,
                byte_ranges: ByteRangeIterator<'a>,
            ) -> Result<AsyncMaybeBytesIterator<'a>, StorageError> {
                let parts = self.folder.get_ranges(key, byte_ranges.collect()).await?;
                Ok(parts.map(|p| stream::iter(p.into_iter().map(Ok)).boxed()))
            }

            async fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
                self.folder.size_key(key).await
            }

            fn supports_get_partial(&self) -> bool {
                self.folder.store.capabilities().ranged_get
            }
        }
    };
}

readable_through_folder!(ZarrWriteStore);

#[async_trait::async_trait]
impl AsyncListableStorageTraits for ZarrWriteStore {
    async fn list(&self) -> Result<StoreKeys, StorageError> {
        self.listing().keys(&StorePrefix::root())
    }

    async fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.listing().keys(prefix)
    }

    async fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.listing().dir(prefix)
    }

    async fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        Ok(self.listing().size(prefix))
    }
}

// ------------------------------------------------------------------------------------------------
// ZarrReadStore
// ------------------------------------------------------------------------------------------------

/// A read-only zarrs store over a folder object, as a fetch returns it.
///
/// Every read is a request for one key of the folder: whole values with one `get`, partial reads
/// with one ranged request per range (concurrently), sizes with a `head`. Listings list the
/// store below the folder. Nothing is cached: wrap it in zarrs' chunk caches if chunks are read
/// repeatedly.
#[derive(Clone, Debug)]
pub struct ZarrReadStore {
    object: ObjectRef,
    folder: Folder,
}

impl ZarrReadStore {
    /// A store over the folder `object`. Fails, naming the path, when `object` is a file or its
    /// recorded path is not a valid key.
    pub fn new(object: ObjectRef) -> dj_core::Result<Self> {
        if !object.is_dir() {
            return Err(Error::invalid_path(
                object.path(),
                "is a file; a Zarr store needs a folder object",
            ));
        }
        let folder = Folder {
            store: Arc::clone(object.store()),
            key: StorePath::parse(object.path())?,
        };
        Ok(ZarrReadStore { object, folder })
    }

    /// The folder object read.
    pub fn object(&self) -> &ObjectRef {
        &self.object
    }
}

readable_through_folder!(ZarrReadStore);

#[async_trait::async_trait]
impl AsyncListableStorageTraits for ZarrReadStore {
    async fn list(&self) -> Result<StoreKeys, StorageError> {
        self.list_prefix(&StorePrefix::root()).await
    }

    async fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        Listing::new(self.folder.list_store(prefix).await?).keys(prefix)
    }

    async fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        Listing::new(self.folder.list_store(prefix).await?).dir(prefix)
    }

    async fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        Ok(Listing::new(self.folder.list_store(prefix).await?).size(prefix))
    }
}
