//! Path-addressed objects: lazy references, readers, writers, uploads and downloads.
//!
//! `<object@>`, `<npy@>` and `<filepath@>` keep a file or a folder at a readable path in a store
//! and only JSON metadata in the table. This crate holds the machinery that reads and writes them
//! (the metadata formats themselves are [`dj_core::object`]):
//!
//! - [`ObjectMetadata`]: the JSON DataJoint 2.x writes, `{path, store, size, ext, is_dir,
//!   item_count, timestamp}`, plus dj-rs's `checksum` (BLAKE3, lowercase base32), an extra key
//!   DataJoint ignores;
//! - [`Manifest`]: the `{path}.manifest.json` sidecar of a folder object;
//! - [`ObjectRef`]: what a fetch returns. Its fields are read with no I/O; [`ObjectRef::read`],
//!   [`ObjectRef::read_range`], [`ObjectRef::reader`] (an `AsyncRead + AsyncSeek` that fetches
//!   ranges on demand), [`ObjectRef::download`], [`ObjectRef::listdir`], [`ObjectRef::walk`],
//!   [`ObjectRef::exists`] and [`ObjectRef::verify`] go to the store;
//! - [`ObjectWriter`] and [`FolderWriter`]: streaming writers that upload in multipart parts,
//!   count bytes and hash while they write, so nothing large sits in memory and nothing is visible
//!   at the final key until the writer finishes.
//!
//! ```
//! use std::sync::Arc;
//! use dj_object::{ObjectRef, ObjectWriter};
//! use dj_core::store::{Store, StorePath};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! let store: Arc<dyn Store> = dj_store_memory::memory_store("main");
//! let key = StorePath::parse("_schema/lab/rec/rec_id=1/trace_AbCd1234.bin")?;
//! let mut w = ObjectWriter::new(Arc::clone(&store), key.clone());
//! w.write(b"hello ").await?;
//! w.write(b"world").await?;
//! let meta = w.finish(Some(".bin".into())).await?;
//! assert_eq!(meta.size, Some(11));
//!
//! let obj = ObjectRef::new(meta, store);
//! assert_eq!(&obj.read_range(6..11).await?[..], b"world");
//! obj.verify().await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWriteExt, ReadBuf};

use dj_core::config::HashAlgorithm;
use dj_core::error::{Error, Result};
use dj_core::registry::StoreSet;
use dj_core::store::{GetOptions, MultipartUpload, Store, StoreExt, StorePath};
use dj_core::value::Value;
use dj_layout::ContentHasher;

pub use dj_core::object::{
    MANIFEST_SUFFIX, Manifest, ManifestEntry, ObjectMetadata, python_timestamp,
    python_timestamp_now,
};

mod written;
pub use written::WrittenFile;

/// The size of the parts writers upload and the blocks readers fetch.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

// ------------------------------------------------------------------------------------------------
// ObjectRef
// ------------------------------------------------------------------------------------------------

/// A lazy reference to a path-addressed object, as fetch returns it for `<object@>` and
/// `<filepath@>`. Its fields are known without I/O; the methods that read go to the store.
#[derive(Clone)]
pub struct ObjectRef {
    meta: ObjectMetadata,
    store: Arc<dyn Store>,
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectRef")
            .field("path", &self.meta.path)
            .field("store", &self.store.name())
            .field("size", &self.meta.size)
            .field("is_dir", &self.meta.is_dir)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.meta.path)
    }
}

/// An entry of [`ObjectRef::listdir`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (one path segment).
    pub name: String,
    /// Whether it is a sub-folder.
    pub is_dir: bool,
    /// Size in bytes (files only; the sum of the files below, for folders).
    pub size: u64,
}

/// A file of a folder object, as [`ObjectRef::walk`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkEntry {
    /// The path relative to the folder, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

impl ObjectRef {
    /// A reference to the object described by `meta` in `store`.
    pub fn new(meta: ObjectMetadata, store: Arc<dyn Store>) -> Self {
        ObjectRef { meta, store }
    }

    /// A reference from stored metadata, opening the store it names (or `default_store`, for
    /// metadata that records none) from `stores`.
    pub fn from_stored(
        stored: &Value,
        stores: &StoreSet,
        default_store: Option<&str>,
        codec: &str,
    ) -> Result<ObjectRef> {
        let meta = ObjectMetadata::from_stored(stored, codec)?;
        let name = meta
            .store
            .as_deref()
            .or(default_store)
            .ok_or_else(|| {
                Error::codec(codec, format!("metadata of `{}` names no store", meta.path))
            })?
            .to_string();
        let store = stores.get(&name)?;
        Ok(ObjectRef { meta, store })
    }

    /// The metadata, as stored.
    pub fn metadata(&self) -> &ObjectMetadata {
        &self.meta
    }

    /// The key inside the store.
    pub fn path(&self) -> &str {
        &self.meta.path
    }

    /// The recorded size in bytes.
    pub fn size(&self) -> Option<u64> {
        self.meta.size
    }

    /// The extension, with its dot.
    pub fn ext(&self) -> Option<&str> {
        self.meta.ext.as_deref()
    }

    /// Whether the object is a folder.
    pub fn is_dir(&self) -> bool {
        self.meta.is_dir
    }

    /// When it was written.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.meta.timestamp
    }

    /// The store's name.
    pub fn store_name(&self) -> &str {
        self.store.name()
    }

    /// The store itself.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The recorded BLAKE3 checksum.
    pub fn checksum(&self) -> Option<&str> {
        self.meta.checksum.as_deref()
    }

    fn key(&self) -> Result<StorePath> {
        self.meta.key()
    }

    fn not_a_file(&self, what: &str) -> Error {
        Error::invalid_path(
            &self.meta.path,
            format!("is a folder; {what} needs a file (use `child` or `open` with a sub-path)"),
        )
    }

    /// A reference to one file inside a folder object (no I/O; the size is unknown until read).
    pub fn child(&self, subpath: &str) -> Result<ObjectRef> {
        if !self.meta.is_dir {
            return Err(Error::invalid_path(
                &self.meta.path,
                format!("is a file, so it has no member `{subpath}`"),
            ));
        }
        let key = self
            .key()?
            .join(dj_layout::check_relative_path(subpath)?.as_str())?;
        Ok(ObjectRef {
            meta: ObjectMetadata::new(key.as_str(), self.meta.store.clone()),
            store: Arc::clone(&self.store),
        })
    }

    /// Read the whole file.
    pub async fn read(&self) -> Result<Bytes> {
        if self.meta.is_dir {
            return Err(self.not_a_file("read"));
        }
        self.store.get(&self.key()?).await
    }

    /// Read `range` of the file, with one ranged request.
    pub async fn read_range(&self, range: Range<u64>) -> Result<Bytes> {
        if self.meta.is_dir {
            return Err(self.not_a_file("read_range"));
        }
        self.store.get_range(&self.key()?, range).await
    }

    /// The file as a stream of chunks, as the store delivers them.
    pub async fn stream(&self) -> Result<futures::stream::BoxStream<'static, Result<Bytes>>> {
        if self.meta.is_dir {
            return Err(self.not_a_file("stream"));
        }
        Ok(self
            .store
            .get_opts(&self.key()?, GetOptions::default())
            .await?
            .stream)
    }

    /// An `AsyncRead + AsyncSeek` reader over the file that fetches blocks of
    /// [`DEFAULT_PART_SIZE`] bytes on demand, so it holds at most one block in memory.
    pub async fn reader(&self) -> Result<ObjectReader> {
        if self.meta.is_dir {
            return Err(self.not_a_file("reader"));
        }
        let key = self.key()?;
        let size = match self.meta.size {
            Some(s) => s,
            None => self.store.head(&key).await?.size,
        };
        Ok(ObjectReader::new(Arc::clone(&self.store), key, size))
    }

    /// A reader over one file inside a folder object.
    pub async fn open(&self, subpath: &str) -> Result<ObjectReader> {
        let child = self.child(subpath)?;
        child.reader().await
    }

    /// Whether the object exists: the file, or for a folder its manifest or any file in it.
    pub async fn exists(&self) -> Result<bool> {
        let key = self.key()?;
        if !self.meta.is_dir {
            return self.store.exists(&key).await;
        }
        if self.store.exists(&Manifest::key_for(&key)?).await? {
            return Ok(true);
        }
        let mut listing = self.store.list(Some(&key));
        Ok(listing.try_next().await?.is_some())
    }

    /// Every file of a folder object (or the file itself, with path `""`), sorted by path.
    pub async fn walk(&self) -> Result<Vec<WalkEntry>> {
        let key = self.key()?;
        if !self.meta.is_dir {
            let meta = self.store.head(&key).await?;
            return Ok(vec![WalkEntry {
                path: String::new(),
                size: meta.size,
            }]);
        }
        let base = format!("{}/", key.as_str());
        let mut out: Vec<WalkEntry> = self
            .store
            .list(Some(&key))
            .map_ok(|m| WalkEntry {
                path: m
                    .path
                    .as_str()
                    .strip_prefix(&base)
                    .unwrap_or("")
                    .to_string(),
                size: m.size,
            })
            .try_filter(|e| futures::future::ready(!e.path.is_empty()))
            .try_collect()
            .await?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The entries directly inside `subpath` (`""` for the folder itself), sorted by name.
    pub async fn listdir(&self, subpath: &str) -> Result<Vec<DirEntry>> {
        if !self.meta.is_dir {
            return Err(Error::invalid_path(
                &self.meta.path,
                "is a file; listdir needs a folder",
            ));
        }
        let prefix = if subpath.is_empty() {
            String::new()
        } else {
            format!("{}/", dj_layout::check_relative_path(subpath)?.as_str())
        };
        let mut entries: BTreeMap<String, DirEntry> = BTreeMap::new();
        for f in self.walk().await? {
            let Some(rest) = f.path.strip_prefix(&prefix) else {
                continue;
            };
            let (name, is_dir) = match rest.split_once('/') {
                Some((dir, _)) => (dir, true),
                None => (rest, false),
            };
            let e = entries.entry(name.to_string()).or_insert(DirEntry {
                name: name.to_string(),
                is_dir,
                size: 0,
            });
            e.size += f.size;
        }
        if entries.is_empty() && !prefix.is_empty() {
            return Err(Error::NotFound {
                store: self.store.name().to_string(),
                path: format!("{}/{}", self.meta.path, subpath),
            });
        }
        Ok(entries.into_values().collect())
    }

    /// Download the object and return its local path. When `dest` is an existing directory the
    /// object goes inside it under its own name (the key's last segment), as DataJoint does;
    /// otherwise `dest` becomes the file, or the folder holding the object's files. Files are
    /// streamed to a temporary name and renamed into place.
    pub async fn download(&self, dest: impl AsRef<Path>) -> Result<PathBuf> {
        let dest = dest.as_ref();
        let key = self.key()?;
        if !self.meta.is_dir {
            let target = if tokio::fs::metadata(dest).await.is_ok_and(|m| m.is_dir()) {
                dest.join(key.file_name())
            } else {
                dest.to_path_buf()
            };
            download_file(&self.store, &key, &target).await?;
            return Ok(target);
        }
        let dest = &if tokio::fs::metadata(dest).await.is_ok_and(|m| m.is_dir()) {
            dest.join(key.file_name())
        } else {
            dest.to_path_buf()
        };
        let files = self.walk().await?;
        tokio::fs::create_dir_all(dest)
            .await
            .map_err(|e| io_error(dest, e))?;
        let store = Arc::clone(&self.store);
        futures::stream::iter(files)
            .map(|f| {
                let store = Arc::clone(&store);
                let key = key.clone();
                async move {
                    let rel = dj_layout::check_relative_path(&f.path)?;
                    let target = rel
                        .as_str()
                        .split('/')
                        .fold(dest.to_path_buf(), |p, seg| p.join(seg));
                    download_file(&store, &key.join(rel.as_str())?, &target).await
                }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(dest.to_path_buf())
    }

    /// Check the object against its metadata: it exists; a file has the recorded size and, when a
    /// checksum is recorded, the recorded BLAKE3; a folder's manifest (required when a checksum is
    /// recorded for it) matches its checksum and every file it lists exists with the listed size
    /// and checksum. Errors are [`Error::Integrity`] or [`Error::NotFound`], naming the path.
    pub async fn verify(&self) -> Result<()> {
        let key = self.key()?;
        let store_name = self.store.name().to_string();
        let integrity = |path: &str, message: String| Error::Integrity {
            store: store_name.clone(),
            path: path.to_string(),
            message,
        };
        if !self.meta.is_dir {
            let head = self.store.head(&key).await?;
            if let Some(size) = self.meta.size
                && head.size != size
            {
                return Err(integrity(
                    key.as_str(),
                    format!("size is {} bytes, {size} recorded", head.size),
                ));
            }
            if let Some(expected) = &self.meta.checksum {
                let actual = checksum_of(&self.store, &key).await?;
                if &actual != expected {
                    return Err(integrity(
                        key.as_str(),
                        format!("BLAKE3 checksum is {actual}, {expected} recorded"),
                    ));
                }
            }
            return Ok(());
        }
        let manifest_key = Manifest::key_for(&key)?;
        let bytes = match self.store.get(&manifest_key).await {
            Ok(b) => b,
            Err(Error::NotFound { .. }) if self.meta.checksum.is_none() => {
                // DataJoint counts a folder without a manifest as valid; so do we, when nothing
                // says there should be one.
                return if self.exists().await? {
                    Ok(())
                } else {
                    Err(Error::NotFound {
                        store: store_name.clone(),
                        path: key.as_str().to_string(),
                    })
                };
            }
            Err(e) => return Err(e),
        };
        if let Some(expected) = &self.meta.checksum {
            let mut h = ContentHasher::new(HashAlgorithm::Blake3);
            h.update(&bytes);
            let actual = h.finalize();
            if &actual != expected {
                return Err(integrity(
                    manifest_key.as_str(),
                    format!("manifest BLAKE3 checksum is {actual}, {expected} recorded"),
                ));
            }
        }
        let manifest = Manifest::parse(&bytes, &store_name, manifest_key.as_str())?;
        if let Some(size) = self.meta.size
            && manifest.total_size != size
        {
            return Err(integrity(
                manifest_key.as_str(),
                format!(
                    "manifest lists {} bytes, {size} recorded",
                    manifest.total_size
                ),
            ));
        }
        let store = Arc::clone(&self.store);
        futures::stream::iter(manifest.files)
            .map(|f| {
                let store = Arc::clone(&store);
                let key = key.clone();
                let integrity = &integrity;
                async move {
                    let file_key = key.join(dj_layout::check_relative_path(&f.path)?.as_str())?;
                    let head = store.head(&file_key).await?;
                    if head.size != f.size {
                        return Err(integrity(
                            file_key.as_str(),
                            format!("size is {} bytes, the manifest lists {}", head.size, f.size),
                        ));
                    }
                    if let Some(expected) = &f.checksum {
                        let actual = checksum_of(&store, &file_key).await?;
                        if &actual != expected {
                            return Err(integrity(
                                file_key.as_str(),
                                format!(
                                    "BLAKE3 checksum is {actual}, the manifest lists {expected}"
                                ),
                            ));
                        }
                    }
                    Ok(())
                }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}

fn io_error(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The BLAKE3 checksum (lowercase base32) of a stored object, streamed.
pub async fn checksum_of(store: &Arc<dyn Store>, key: &StorePath) -> Result<String> {
    Ok(hash_stored(store.as_ref(), key, HashAlgorithm::Blake3)
        .await?
        .1)
}

/// Stream a stored object and hash it with `algorithm` (large chunks on the blocking pool):
/// its length and its hash in lowercase base32.
pub async fn hash_stored(
    store: &dyn Store,
    key: &StorePath,
    algorithm: HashAlgorithm,
) -> Result<(u64, String)> {
    let mut stream = store.get_opts(key, GetOptions::default()).await?.stream;
    let mut hasher = ContentHasher::new(algorithm);
    let mut len = 0u64;
    let mut next = stream.try_next().await?;
    while let Some(chunk) = next {
        len += chunk.len() as u64;
        // The next chunk is read while this one is hashed.
        let (hashed, read) =
            futures::future::join(hash_chunk(hasher, chunk), stream.try_next()).await;
        hasher = hashed?;
        next = read?;
    }
    Ok((len, hasher.finalize()))
}

/// Hash a chunk, on the blocking pool when it is large.
async fn hash_chunk(mut hasher: ContentHasher, chunk: Bytes) -> Result<ContentHasher> {
    dj_rt::task::run_blocking(
        chunk.len() >= 1024 * 1024,
        "object",
        "hashing task",
        move || {
            hasher.update(&chunk);
            hasher
        },
    )
    .await
}

async fn download_file(store: &Arc<dyn Store>, key: &StorePath, target: &Path) -> Result<()> {
    let parent = match target.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io_error(parent, e))?;
            parent.to_path_buf()
        }
        None => PathBuf::from("."),
    };
    // A short temporary name beside the target, independent of the target's name (which may
    // already be as long as the file system allows). The file is removed when `tmp` is
    // dropped: on an error, and also when this future is dropped half-way (a cancelled
    // download leaves no `.part` file behind).
    let (file, tmp) = tempfile::Builder::new()
        .prefix(".dj-")
        .suffix(".part")
        .tempfile_in(&parent)
        .map_err(|e| io_error(&parent, e))?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut stream = store.get_opts(key, GetOptions::default()).await?.stream;
    while let Some(chunk) = stream.try_next().await? {
        file.write_all(&chunk)
            .await
            .map_err(|e| io_error(&tmp, e))?;
    }
    file.flush().await.map_err(|e| io_error(&tmp, e))?;
    drop(file);
    tmp.persist(target).map_err(|e| io_error(target, e.error))
}

// ------------------------------------------------------------------------------------------------
// Reader
// ------------------------------------------------------------------------------------------------

/// An `AsyncRead + AsyncSeek` over a stored file that fetches one block at a time with ranged
/// gets, starting at the current position. Seeking is free until the next read.
pub struct ObjectReader {
    store: Arc<dyn Store>,
    key: StorePath,
    size: u64,
    pos: u64,
    block_size: u64,
    /// The block held, and the offset of its first byte.
    block: Bytes,
    block_start: u64,
    pending: Option<BoxFuture<'static, Result<(u64, Bytes)>>>,
    seek_to: Option<u64>,
}

impl fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectReader")
            .field("store", &self.store.name())
            .field("key", &self.key.as_str())
            .field("size", &self.size)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl ObjectReader {
    /// A reader over the `size`-byte object at `key`.
    pub fn new(store: Arc<dyn Store>, key: StorePath, size: u64) -> Self {
        ObjectReader {
            store,
            key,
            size,
            pos: 0,
            block_size: DEFAULT_PART_SIZE as u64,
            block: Bytes::new(),
            block_start: 0,
            pending: None,
            seek_to: None,
        }
    }

    /// Fetch blocks of `bytes` bytes instead of [`DEFAULT_PART_SIZE`] (at least 4 KiB). Smaller
    /// blocks suit scattered reads such as chunk lookups; larger ones suit sequential reads.
    pub fn with_block_size(mut self, bytes: usize) -> Self {
        self.block_size = (bytes as u64).max(4096);
        self
    }

    /// The object's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The current position.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

fn to_io(e: Error) -> io::Error {
    let kind = if e.is_not_found() {
        io::ErrorKind::NotFound
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, e)
}

impl AsyncRead for ObjectReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos >= this.size || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let block_end = this.block_start + this.block.len() as u64;
            if this.pos >= this.block_start && this.pos < block_end {
                let offset = usize::try_from(this.pos - this.block_start).unwrap_or(usize::MAX);
                let avail = &this.block[offset.min(this.block.len())..];
                let n = avail.len().min(buf.remaining());
                buf.put_slice(&avail[..n]);
                this.pos += n as u64;
                return Poll::Ready(Ok(()));
            }
            if this.pending.is_none() {
                let start = this.pos;
                let end = (start + this.block_size).min(this.size);
                let store = Arc::clone(&this.store);
                let key = this.key.clone();
                this.pending = Some(Box::pin(async move {
                    let data = store.get_range(&key, start..end).await?;
                    Ok((start, data))
                }));
            }
            let Some(fut) = this.pending.as_mut() else {
                continue;
            };
            let result = ready!(fut.as_mut().poll(cx));
            this.pending = None;
            let (start, data) = result.map_err(to_io)?;
            if data.is_empty() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "object `{}` in store `{}` ended at {start}, before its {} bytes",
                        this.key,
                        this.store.name(),
                        this.size
                    ),
                )));
            }
            this.block_start = start;
            this.block = data;
        }
    }
}

impl AsyncSeek for ObjectReader {
    fn start_seek(self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        let target = match position {
            io::SeekFrom::Start(p) => Some(p),
            io::SeekFrom::End(d) => this.size.checked_add_signed(d),
            io::SeekFrom::Current(d) => this.pos.checked_add_signed(d),
        };
        let Some(target) = target else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative position",
            ));
        };
        this.seek_to = Some(target);
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        if let Some(p) = this.seek_to.take() {
            if this.pending.is_some() {
                // A fetch for the old position is abandoned.
                this.pending = None;
            }
            this.pos = p;
        }
        Poll::Ready(Ok(this.pos))
    }
}

// ------------------------------------------------------------------------------------------------
// Writers
// ------------------------------------------------------------------------------------------------

enum Upload {
    /// Nothing sent yet: small objects go up in one put at the end.
    NotStarted,
    Idle(Box<dyn MultipartUpload>),
    /// A part is being hashed and uploaded; the hasher comes back with the upload.
    Sending(BoxFuture<'static, Result<(Box<dyn MultipartUpload>, ContentHasher)>>),
    Failed,
}

/// A streaming writer to one key of a store. Bytes are buffered into parts of
/// [`DEFAULT_PART_SIZE`] bytes and uploaded as a multipart upload while the next part fills
/// (a small object goes up in one put); the size is counted as it goes and each part is hashed
/// (BLAKE3, on the blocking pool when large) while it uploads.
/// Nothing is visible at the key until [`ObjectWriter::finish`] returns. Dropping a writer without
/// finishing abandons the upload; [`ObjectWriter::abort`] does so deterministically.
///
/// It is also a [`tokio::io::AsyncWrite`], so `tokio::io::copy` can fill it.
pub struct ObjectWriter {
    store: Arc<dyn Store>,
    key: StorePath,
    part_size: usize,
    buf: BytesMut,
    upload: Upload,
    hasher: Option<ContentHasher>,
    size: u64,
}

impl fmt::Debug for ObjectWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectWriter")
            .field("store", &self.store.name())
            .field("key", &self.key.as_str())
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl ObjectWriter {
    /// A writer to `key` in `store`.
    pub fn new(store: Arc<dyn Store>, key: StorePath) -> Self {
        let part_size = DEFAULT_PART_SIZE.max(store.capabilities().min_part_size);
        ObjectWriter {
            store,
            key,
            part_size,
            buf: BytesMut::new(),
            upload: Upload::NotStarted,
            hasher: Some(ContentHasher::new(HashAlgorithm::Blake3)),
            size: 0,
        }
    }

    /// The key being written.
    pub fn key(&self) -> &StorePath {
        &self.key
    }

    /// Bytes accepted so far.
    pub fn bytes_written(&self) -> u64 {
        self.size
    }

    fn failed(&self, what: &str) -> Error {
        Error::Store {
            store: self.store.name().to_string(),
            operation: "put",
            path: self.key.as_str().to_string(),
            retryable: false,
            source: format!("the writer failed earlier ({what})").into(),
        }
    }

    /// Start sending the full part in `buf` (the upload must be idle or not started).
    fn poll_send_part(&mut self, cx: &mut Context<'_>, force: bool) -> Poll<Result<()>> {
        loop {
            match std::mem::replace(&mut self.upload, Upload::Failed) {
                Upload::Sending(mut fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => {
                        self.upload = Upload::Sending(fut);
                        return Poll::Pending;
                    }
                    Poll::Ready(Ok((up, hasher))) => {
                        self.hasher = Some(hasher);
                        self.upload = Upload::Idle(up);
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                },
                Upload::Failed => return Poll::Ready(Err(self.failed("a part upload failed"))),
                state @ (Upload::NotStarted | Upload::Idle(_)) => {
                    if !(force || self.buf.len() >= self.part_size) || self.buf.is_empty() {
                        self.upload = state;
                        return Poll::Ready(Ok(()));
                    }
                    let Some(hasher) = self.hasher.take() else {
                        return Poll::Ready(Err(self.failed("its checksum was lost")));
                    };
                    let take = self.buf.len().min(self.part_size);
                    let part = self.buf.split_to(take).freeze();
                    let store = Arc::clone(&self.store);
                    let key = self.key.clone();
                    // The part is hashed (on the blocking pool) while it uploads.
                    self.upload = Upload::Sending(Box::pin(async move {
                        let mut up = match state {
                            Upload::Idle(up) => up,
                            _ => store.put_multipart(&key).await?,
                        };
                        let (hasher, sent) =
                            futures::join!(hash_chunk(hasher, part.clone()), up.put_part(part));
                        sent?;
                        Ok((up, hasher?))
                    }));
                }
            }
        }
    }

    fn accept(&mut self, data: &[u8]) {
        if self.buf.capacity() == 0 && self.size > 0 {
            // A part was just taken: start the next one at full size instead of growing.
            self.buf.reserve(self.part_size);
            dj_rt::pages::advise_huge(self.buf.as_ptr(), self.buf.capacity());
        }
        self.buf.extend_from_slice(data);
        self.size += data.len() as u64;
    }

    /// Write bytes. Waits only when a full part is buffered and the previous part is still
    /// uploading.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        let mut rest = data;
        while !rest.is_empty() {
            std::future::poll_fn(|cx| self.poll_send_part(cx, false)).await?;
            let room = self.part_size.saturating_sub(self.buf.len()).max(1);
            let n = room.min(rest.len());
            self.accept(&rest[..n]);
            rest = &rest[n..];
        }
        std::future::poll_fn(|cx| self.poll_send_part(cx, false)).await
    }

    /// Write a buffer the caller filled: taken over as the next part, without a copy, when no
    /// partial part is buffered and it fits in one part; otherwise copied as by
    /// [`write`](Self::write).
    async fn write_buf(&mut self, data: BytesMut) -> Result<()> {
        if !self.buf.is_empty() || data.len() > self.part_size {
            return self.write(&data).await;
        }
        self.size += data.len() as u64;
        self.buf = data;
        std::future::poll_fn(|cx| self.poll_send_part(cx, false)).await
    }

    /// Upload what is left and make the object visible. Returns metadata for a file object
    /// with `ext`, size, checksum and a timestamp of now; the store is the writer's store.
    pub async fn finish(self, ext: Option<String>) -> Result<ObjectMetadata> {
        let store = self.store.name().to_string();
        let written = self.finish_file().await?;
        Ok(written.into_metadata(&store, ext))
    }

    /// Feed `data` to the checksum (on the blocking pool when large).
    async fn hash(&mut self, data: Bytes) -> Result<()> {
        let hasher = self
            .hasher
            .take()
            .ok_or_else(|| self.failed("its checksum was lost"))?;
        self.hasher = Some(hash_chunk(hasher, data).await?);
        Ok(())
    }

    /// Upload what is left and make the object visible; report path, size and checksum.
    pub async fn finish_file(mut self) -> Result<WrittenFile> {
        // Wait for a part in flight, then decide between one put and the last part.
        loop {
            match std::mem::replace(&mut self.upload, Upload::Failed) {
                Upload::Sending(fut) => {
                    let (up, hasher) = fut.await?;
                    self.hasher = Some(hasher);
                    self.upload = Upload::Idle(up);
                }
                Upload::Failed => return Err(self.failed("a part upload failed")),
                Upload::NotStarted => {
                    let data = std::mem::take(&mut self.buf).freeze();
                    self.hash(data.clone()).await?;
                    self.store.put(&self.key, data).await?;
                    break;
                }
                Upload::Idle(mut up) => {
                    while !self.buf.is_empty() {
                        let take = self.buf.len().min(self.part_size);
                        let part = self.buf.split_to(take).freeze();
                        let sent = match self.hash(part.clone()).await {
                            Ok(()) => up.put_part(part).await,
                            Err(e) => Err(e),
                        };
                        if let Err(e) = sent {
                            let _ = up.abort().await;
                            return Err(e);
                        }
                    }
                    up.complete().await?;
                    break;
                }
            }
        }
        let checksum = self
            .hasher
            .take()
            .map(ContentHasher::finalize)
            .unwrap_or_default();
        Ok(WrittenFile {
            path: self.key.clone(),
            size: self.size,
            checksum,
        })
    }

    /// Abandon the write; nothing appears at the key.
    pub async fn abort(mut self) -> Result<()> {
        match std::mem::replace(&mut self.upload, Upload::Failed) {
            Upload::Sending(fut) => match fut.await {
                Ok((up, _)) => up.abort().await,
                Err(_) => Ok(()),
            },
            Upload::Idle(up) => up.abort().await,
            Upload::NotStarted | Upload::Failed => Ok(()),
        }
    }
}

impl tokio::io::AsyncWrite for ObjectWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Send a full part first (waiting while the previous one is in flight); a write never
        // returns 0 for a non-empty buffer, which callers would take for a closed writer.
        let room = loop {
            ready!(this.poll_send_part(cx, false)).map_err(to_io)?;
            let room = this.part_size.saturating_sub(this.buf.len());
            if room > 0 {
                break room;
            }
        };
        let n = room.min(data.len());
        this.accept(&data[..n]);
        // Start the part now if it is full; its progress is polled on the next call.
        if let Poll::Ready(Err(e)) = this.poll_send_part(cx, false) {
            return Poll::Ready(Err(to_io(e)));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Wait for a part in flight; a partial part stays buffered (parts have a minimum size).
        let this = self.get_mut();
        match std::mem::replace(&mut this.upload, Upload::Failed) {
            Upload::Sending(mut fut) => match fut.as_mut().poll(cx) {
                Poll::Pending => {
                    this.upload = Upload::Sending(fut);
                    Poll::Pending
                }
                Poll::Ready(Ok((up, hasher))) => {
                    this.hasher = Some(hasher);
                    this.upload = Upload::Idle(up);
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(to_io(e))),
            },
            other => {
                this.upload = other;
                Poll::Ready(Ok(()))
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The object is published by `finish`, not by shutdown.
        self.poll_flush(cx)
    }
}

/// A writer for a folder object: one [`ObjectWriter`] per file, then a manifest.
///
/// A cheap, clonable handle: clones share the list of finished files, so files may be written
/// concurrently from several tasks. Report each finished file with [`FolderWriter::add`] (or use
/// [`FolderWriter::put`]). [`FolderWriter::finish`] writes `{folder}.manifest.json` and returns the
/// folder's metadata; [`FolderWriter::abort`] removes every file written so far.
#[derive(Clone, Debug)]
pub struct FolderWriter {
    store: Arc<dyn Store>,
    key: StorePath,
    files: Arc<std::sync::Mutex<BTreeMap<String, ManifestEntry>>>,
}

impl FolderWriter {
    /// A folder object at `key` in `store`.
    pub fn new(store: Arc<dyn Store>, key: StorePath) -> Self {
        FolderWriter {
            store,
            key,
            files: Arc::default(),
        }
    }

    /// The folder's key.
    pub fn key(&self) -> &StorePath {
        &self.key
    }

    /// The store written to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A writer for the file at `relative` (a `/`-separated path inside the folder, checked).
    pub fn file(&self, relative: &str) -> Result<ObjectWriter> {
        let rel = dj_layout::check_relative_path(relative)?;
        Ok(ObjectWriter::new(
            Arc::clone(&self.store),
            self.key.join(rel.as_str())?,
        ))
    }

    /// Record a finished file (a file written again replaces its earlier entry).
    pub fn add(&self, written: WrittenFile) {
        let base = format!("{}/", self.key.as_str());
        let path = written
            .path
            .as_str()
            .strip_prefix(&base)
            .unwrap_or(written.path.as_str())
            .to_string();
        let entry = ManifestEntry {
            path: path.clone(),
            size: written.size,
            checksum: Some(written.checksum),
        };
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path, entry);
    }

    /// Forget a file (after deleting it from the store).
    pub fn forget(&self, relative: &str) {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(relative);
    }

    /// The files recorded so far.
    pub fn entries(&self) -> Vec<ManifestEntry> {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Write a whole file and record it.
    pub async fn put(&self, relative: &str, data: Bytes) -> Result<()> {
        let mut w = self.file(relative)?;
        w.write(&data).await?;
        let written = w.finish_file().await?;
        self.add(written);
        Ok(())
    }

    /// Write the manifest and return the folder's metadata (`is_dir`, size, item count, the
    /// manifest's checksum, `ext` as given).
    pub async fn finish(&self, ext: Option<String>) -> Result<ObjectMetadata> {
        let manifest = Manifest::new(self.entries());
        let bytes = manifest.to_bytes();
        let mut h = ContentHasher::new(HashAlgorithm::Blake3);
        h.update(&bytes);
        self.store
            .put(&Manifest::key_for(&self.key)?, bytes)
            .await?;
        let mut meta = ObjectMetadata::new(self.key.as_str(), Some(self.store.name().to_string()));
        meta.size = Some(manifest.total_size);
        meta.ext = ext;
        meta.is_dir = true;
        meta.item_count = Some(manifest.item_count);
        meta.timestamp = Some(manifest.created);
        meta.checksum = Some(h.finalize());
        Ok(meta)
    }

    /// Remove every file below the folder's key and its manifest (every deletion is tried; the
    /// first error is returned).
    pub async fn abort(&self) -> Result<()> {
        remove_object(&self.store, &self.key, true).await
    }
}

/// Remove an object: the file at `key`, or with `is_dir` every file below it and its manifest.
/// Every deletion is tried; the first error is returned.
pub async fn remove_object(store: &Arc<dyn Store>, key: &StorePath, is_dir: bool) -> Result<()> {
    if !is_dir {
        return store.delete(key).await;
    }
    let listed: Vec<_> = store.list(Some(key)).collect().await;
    let mut first_error = None;
    let mut keys = Vec::new();
    for item in listed {
        match item {
            Ok(meta) => keys.push(meta.path),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    keys.push(Manifest::key_for(key)?);
    let results: Vec<Result<()>> = futures::stream::iter(keys)
        .map(|k| {
            let store = Arc::clone(store);
            async move { store.delete(&k).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for r in results {
        if let Err(e) = r {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Upload a local file to `key`, streaming it in parts. Returns what was written.
///
/// Each part is read on the blocking pool straight into the buffer that is then uploaded (and
/// hashed), so the bytes are copied once on their way from the file to the store.
pub async fn upload_file(
    store: Arc<dyn Store>,
    key: StorePath,
    local: &Path,
) -> Result<WrittenFile> {
    let file = tokio::fs::File::open(local)
        .await
        .map_err(|e| io_error(local, e))?
        .into_std()
        .await;
    let mut w = ObjectWriter::new(store, key);
    let part_size = w.part_size;
    let result: Result<()> = async {
        let mut file = file;
        loop {
            let (f, data) = tokio::task::spawn_blocking(move || read_up_to(file, part_size))
                .await
                .map_err(|e| io_error(local, io::Error::other(e)))?
                .map_err(|e| io_error(local, e))?;
            let n = data.len();
            if n > 0 {
                // A fresh Vec is unique, so this takes its allocation over without copying.
                let data = Bytes::from(data)
                    .try_into_mut()
                    .unwrap_or_else(|b| BytesMut::from(&b[..]));
                w.write_buf(data).await?;
            }
            if n < part_size {
                return Ok(());
            }
            file = f;
        }
    }
    .await;
    match result {
        Ok(()) => w.finish_file().await,
        Err(e) => {
            let _ = w.abort().await;
            Err(e)
        }
    }
}

/// Read from `file` until `len` bytes or the end, into a fresh buffer (fewer bytes only at the
/// end of the file).
fn read_up_to(mut file: std::fs::File, len: usize) -> io::Result<(std::fs::File, Vec<u8>)> {
    use std::io::Read as _;
    // Not zeroed first: `read_to_end` reads into the spare capacity, so each page is written
    // once, by the read.
    let mut data = Vec::with_capacity(len);
    dj_rt::pages::advise_huge(data.as_ptr(), data.capacity());
    (&mut file).take(len as u64).read_to_end(&mut data)?;
    Ok((file, data))
}

/// Every regular file below a local directory, as (`/`-separated relative path, local path),
/// sorted. Symbolic links are followed for files; anything else (sockets, devices) is an error.
pub fn local_tree(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            let path = entry.path();
            let meta = std::fs::metadata(&path).map_err(|e| io_error(&path, e))?;
            if meta.is_dir() {
                walk(base, &path, out)?;
            } else if meta.is_file() {
                let rel = path.strip_prefix(base).map_err(|_| {
                    Error::invalid_path(path.display().to_string(), "is outside the folder")
                })?;
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let rel = parts.join("/");
                dj_layout::check_relative_path(&rel)?;
                out.push((rel, path));
            } else {
                return Err(Error::invalid_path(
                    path.display().to_string(),
                    "is neither a file nor a folder",
                ));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// Upload a local directory as a folder object at `key`: every file (up to `concurrency` at a
/// time), then the manifest. On any error the files already uploaded are removed.
pub async fn upload_dir(
    store: Arc<dyn Store>,
    key: StorePath,
    local: &Path,
    ext: Option<String>,
    concurrency: usize,
) -> Result<ObjectMetadata> {
    let local_owned = local.to_path_buf();
    let files = tokio::task::spawn_blocking(move || local_tree(&local_owned))
        .await
        .map_err(|e| Error::codec_context("object", format!("listing task failed: {e}"), e))??;
    let folder = FolderWriter::new(Arc::clone(&store), key.clone());
    let results: Vec<Result<WrittenFile>> = futures::stream::iter(files)
        .map(|(rel, path)| {
            let store = Arc::clone(&store);
            let key = key.clone();
            async move {
                let file_key = key.join(&rel)?;
                upload_file(store, file_key, &path).await
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(w) => folder.add(w),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        if let Err(cleanup) = folder.abort().await {
            tracing::warn!(path = %key, error = %cleanup, "cleanup after a failed folder upload failed");
        }
        return Err(e);
    }
    folder.finish(ext).await
}
