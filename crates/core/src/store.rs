//! The object-store contract every storage backend implements.
//!
//! [`Store`] is narrow and object-safe: put (overwrite or create-if-absent), get (whole, ranged,
//! streamed), head, delete, list by prefix, and multipart upload; plus, for garbage collection,
//! listing and removing the leftovers of writes that never finished ([`IncompleteWrite`]),
//! which stores without such leftovers need not implement. Conveniences live in
//! [`StoreExt`], implemented for every store. Keys are [`StorePath`]s, which are validated so that
//! they can never escape the store root.
//!
//! ```
//! use dj_core::store::StorePath;
//!
//! let p = StorePath::parse("_hash/my_schema/ab/cd/abcdef").unwrap();
//! assert_eq!(p.as_str(), "_hash/my_schema/ab/cd/abcdef");
//! assert!(StorePath::parse("../etc/passwd").is_err());
//! assert!(StorePath::parse("/abs").is_err());
//! ```

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};

use crate::error::{Error, Result};

/// A validated key inside a store: `/`-separated, relative, with no empty, `.` or `..` segments,
/// no NUL or other control characters, and no backslashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorePath(String);

impl StorePath {
    /// Validate a key.
    pub fn parse(path: impl AsRef<str>) -> Result<StorePath> {
        let path = path.as_ref();
        if path.is_empty() {
            return Err(Error::invalid_path(path, "the key is empty"));
        }
        if path.starts_with('/') {
            return Err(Error::invalid_path(path, "absolute keys are not allowed"));
        }
        if path.contains('\\') {
            return Err(Error::invalid_path(
                path,
                "backslashes are not allowed in keys",
            ));
        }
        if path.chars().any(char::is_control) {
            return Err(Error::invalid_path(
                path,
                "NUL and control characters are not allowed",
            ));
        }
        for segment in path.split('/') {
            match segment {
                "" => {
                    return Err(Error::invalid_path(
                        path,
                        "empty path segment (`//` or trailing `/`)",
                    ));
                }
                "." | ".." => {
                    return Err(Error::invalid_path(
                        path,
                        "`.` and `..` segments are not allowed",
                    ));
                }
                _ => {}
            }
        }
        Ok(StorePath(path.to_string()))
    }

    /// Append a relative key.
    pub fn join(&self, rest: impl AsRef<str>) -> Result<StorePath> {
        StorePath::parse(format!("{}/{}", self.0, rest.as_ref()))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Whether `self` equals `prefix` or lies below it.
    pub fn starts_with(&self, prefix: &StorePath) -> bool {
        self.0 == prefix.0
            || (self.0.starts_with(&prefix.0)
                && self.0.as_bytes().get(prefix.0.len()) == Some(&b'/'))
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for StorePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// How a put treats an existing object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PutMode {
    /// Replace whatever is there.
    #[default]
    Overwrite,
    /// Write only if nothing is at the key; otherwise fail with [`Error::AlreadyExists`]. Exactly
    /// one of several racing writers succeeds.
    Create,
}

/// How to write an object: the options of [`Store::put_opts`].
///
/// The struct is `#[non_exhaustive]` so that options can be added (a content type, a
/// conditional write on an entity tag) without breaking stores or callers: build it from
/// [`PutOptions::default`] or [`PutOptions::create`] and the `with_*` methods, and read it through
/// its fields. A store that meets an option it cannot honour fails with
/// [`Error::NotSupported`] rather than ignoring it.
///
/// ```
/// use dj_core::store::{PutMode, PutOptions};
/// assert_eq!(PutOptions::default().mode, PutMode::Overwrite);
/// assert_eq!(PutOptions::create().mode, PutMode::Create);
/// assert_eq!(PutOptions::default().with_mode(PutMode::Create), PutOptions::create());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PutOptions {
    /// What to do when an object is already at the key (default: overwrite it).
    pub mode: PutMode,
}

impl PutOptions {
    /// Options that write only if nothing is at the key ([`PutMode::Create`]).
    pub fn create() -> Self {
        PutOptions::default().with_mode(PutMode::Create)
    }

    /// With [`mode`](Self::mode) set to `mode`.
    pub fn with_mode(mut self, mode: PutMode) -> Self {
        self.mode = mode;
        self
    }
}

impl From<PutMode> for PutOptions {
    fn from(mode: PutMode) -> Self {
        PutOptions::default().with_mode(mode)
    }
}

/// How to read an object: the options of [`Store::get_opts`].
///
/// `#[non_exhaustive]` for the same reason as [`PutOptions`]: build it from
/// [`GetOptions::default`] (the whole object) or [`GetOptions::range`] and the `with_*` methods.
///
/// ```
/// use dj_core::store::{GetOptions, GetRange};
/// assert_eq!(GetOptions::default().range, None);
/// assert_eq!(GetOptions::range(2..5).range, Some(GetRange::Bounded(2..5)));
/// let tail = GetOptions::default().with_range(Some(GetRange::Suffix(4)));
/// assert_eq!(tail.range, Some(GetRange::Suffix(4)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GetOptions {
    /// The part of the object to read; `None` reads all of it.
    pub range: Option<GetRange>,
    /// A digest the whole object must have, checked by the store while it reads (each chunk is
    /// hashed as it arrives, while it is in cache). Only a store whose
    /// [`Capabilities::verified_get`] is set honours it; others ignore it, so a caller sets it
    /// only after checking that capability, and verifies the bytes itself otherwise.
    pub verify: Option<ExpectedDigest>,
}

impl GetOptions {
    /// Options that read the bytes `range` (end exclusive, clamped to the object's size).
    pub fn range(range: Range<u64>) -> Self {
        GetOptions::default().with_range(Some(GetRange::Bounded(range)))
    }

    /// With [`range`](Self::range) set to `range`.
    pub fn with_range(mut self, range: Option<GetRange>) -> Self {
        self.range = range;
        self
    }

    /// With [`verify`](Self::verify) set to `verify`.
    pub fn with_verify(mut self, verify: Option<ExpectedDigest>) -> Self {
        self.verify = verify;
        self
    }
}

/// The digest a verified read must find ([`GetOptions::verify`]).
///
/// A store that honours it reads the whole object, hashes its bytes with `algorithm` as they
/// arrive, and fails the read with [`Error::Integrity`] naming the store and the key, with the
/// message `"{what} is {actual}, expected {digest} (the object is corrupted)"`, when they differ.
/// A ranged read cannot be verified: asking for both is [`Error::NotSupported`].
///
/// ```
/// use dj_core::config::HashAlgorithm;
/// use dj_core::store::{ExpectedDigest, GetOptions};
/// let want = ExpectedDigest::new(HashAlgorithm::Blake3, "abc", "BLAKE3 checksum");
/// let opts = GetOptions::default().with_verify(Some(want.clone()));
/// assert_eq!(opts.verify, Some(want));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpectedDigest {
    /// The hash algorithm.
    pub algorithm: crate::config::HashAlgorithm,
    /// The expected digest, lowercase base32 without padding (as `dj_layout::content_hash`
    /// writes it).
    pub digest: String,
    /// What the digest is, for the error message (`"BLAKE3 checksum"`, `"content hash"`).
    pub what: String,
}

impl ExpectedDigest {
    /// The digest `digest` of `algorithm`, described as `what` in errors.
    pub fn new(
        algorithm: crate::config::HashAlgorithm,
        digest: impl Into<String>,
        what: impl Into<String>,
    ) -> Self {
        ExpectedDigest {
            algorithm,
            digest: digest.into(),
            what: what.into(),
        }
    }
}

impl From<GetRange> for GetOptions {
    fn from(range: GetRange) -> Self {
        GetOptions::default().with_range(Some(range))
    }
}

/// What a completed put reports.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PutResult {
    /// The entity tag, when the store has one.
    pub e_tag: Option<String>,
}

/// Metadata of a stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key.
    pub path: StorePath,
    /// Size in bytes.
    pub size: u64,
    /// When the object was last written.
    pub last_modified: DateTime<Utc>,
    /// The entity tag, when the store has one.
    pub e_tag: Option<String>,
}

/// A byte range to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GetRange {
    /// `start..end` (end exclusive).
    Bounded(Range<u64>),
    /// From an offset to the end.
    Offset(u64),
    /// The last `n` bytes.
    Suffix(u64),
}

impl GetRange {
    /// The concrete range within an object of `size` bytes, or an error naming the path when the
    /// range is not satisfiable.
    pub fn resolve(&self, size: u64, path: &str) -> Result<Range<u64>> {
        let r = match *self {
            GetRange::Bounded(ref r) => r.start..r.end.min(size),
            GetRange::Offset(o) => o..size,
            GetRange::Suffix(n) => size.saturating_sub(n)..size,
        };
        if r.start > r.end || (r.start >= size && size > 0) || (size == 0 && r.start > 0) {
            return Err(Error::invalid_path(
                path,
                format!("range {self:?} is outside the object of {size} bytes"),
            ));
        }
        Ok(r)
    }
}

/// The result of a get: metadata, the byte range returned, and the data as a stream.
pub struct GetResult {
    /// The object's metadata.
    pub meta: ObjectMeta,
    /// The range of the object that `stream` yields.
    pub range: Range<u64>,
    /// The data, in chunks.
    pub stream: BoxStream<'static, Result<Bytes>>,
}

impl fmt::Debug for GetResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetResult")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish()
    }
}

impl GetResult {
    /// Collect the whole stream into one buffer.
    pub async fn bytes(self) -> Result<Bytes> {
        let expected = usize::try_from(self.range.end - self.range.start).unwrap_or(0);
        let mut chunks: Vec<Bytes> = self.stream.try_collect().await?;
        if chunks.len() == 1 {
            return Ok(chunks.pop().unwrap_or_default());
        }
        let mut buf = BytesMut::with_capacity(expected);
        crate::pages::advise_huge(buf.as_ptr(), buf.capacity());
        for c in chunks {
            buf.extend_from_slice(&c);
        }
        Ok(buf.freeze())
    }
}

/// What a store can do; tests and callers branch on it.
///
/// New capabilities may be added in minor releases, so the struct is `#[non_exhaustive]`: start
/// from [`Capabilities::default`] (everything an object store has) and change what differs.
///
/// ```
/// use dj_core::store::Capabilities;
/// let caps = Capabilities::default().with_durable_writes(false).with_min_part_size(0);
/// assert!(caps.create_if_absent && !caps.durable_writes);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`PutMode::Create`] is atomic and exclusive.
    pub create_if_absent: bool,
    /// Multipart uploads are native (not emulated by buffering).
    pub native_multipart: bool,
    /// Ranged reads are served without reading the whole object.
    pub ranged_get: bool,
    /// Writes are durable when they return (fsync or a remote acknowledgement).
    pub durable_writes: bool,
    /// The smallest part a multipart upload accepts, except the last.
    pub min_part_size: usize,
    /// [`GetOptions::verify`] is honoured: the store hashes what it reads and fails a read whose
    /// digest differs. A wrapper that changes the bytes it passes on must not report it.
    pub verified_get: bool,
}

impl Capabilities {
    /// With [`create_if_absent`](Self::create_if_absent) set to `yes`.
    pub const fn with_create_if_absent(mut self, yes: bool) -> Self {
        self.create_if_absent = yes;
        self
    }
    /// With [`native_multipart`](Self::native_multipart) set to `yes`.
    pub const fn with_native_multipart(mut self, yes: bool) -> Self {
        self.native_multipart = yes;
        self
    }
    /// With [`ranged_get`](Self::ranged_get) set to `yes`.
    pub const fn with_ranged_get(mut self, yes: bool) -> Self {
        self.ranged_get = yes;
        self
    }
    /// With [`durable_writes`](Self::durable_writes) set to `yes`.
    pub const fn with_durable_writes(mut self, yes: bool) -> Self {
        self.durable_writes = yes;
        self
    }
    /// With [`min_part_size`](Self::min_part_size) set to `bytes`.
    pub const fn with_min_part_size(mut self, bytes: usize) -> Self {
        self.min_part_size = bytes;
        self
    }
    /// With [`verified_get`](Self::verified_get) set to `yes`.
    pub const fn with_verified_get(mut self, yes: bool) -> Self {
        self.verified_get = yes;
        self
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            create_if_absent: true,
            native_multipart: true,
            ranged_get: true,
            durable_writes: true,
            min_part_size: 5 * 1024 * 1024,
            verified_get: false,
        }
    }
}

/// What [`Store::delete_if_older`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConditionalDelete {
    /// The object was deleted; it held this many bytes.
    Deleted(u64),
    /// The object was modified after the cutoff and is kept; it holds this many bytes.
    Kept(u64),
    /// There was no object at the key.
    Missing,
}

/// An upload in parts, for objects too large to hold in memory.
///
/// Parts are uploaded in order of [`MultipartUpload::put_part`] calls; an implementation may
/// upload several concurrently. Nothing is visible at the key until
/// [`MultipartUpload::complete`] succeeds. Dropping an upload without completing it should abort it
/// (best effort); call [`MultipartUpload::abort`] to do so deterministically.
#[async_trait]
pub trait MultipartUpload: Send + fmt::Debug {
    /// Add the next part. Every part but the last must be at least
    /// [`Capabilities::min_part_size`] bytes.
    async fn put_part(&mut self, data: Bytes) -> Result<()>;
    /// Finish the upload, making the object visible.
    async fn complete(self: Box<Self>) -> Result<PutResult>;
    /// Abandon the upload and remove what was uploaded.
    async fn abort(self: Box<Self>) -> Result<()>;
}

/// What kind of leftover an [`IncompleteWrite`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IncompleteKind {
    /// A staging file beside the target (`<key>#<digits>` on a file store): the write was killed
    /// before the file was renamed into place, or after it was hard-linked into place but
    /// before the staging name was removed.
    StagingFile,
    /// A multipart upload that was started and neither completed nor aborted (S3).
    MultipartUpload,
    /// An object a conditional delete ([`Store::delete_if_older`]) moved aside and a killed
    /// process never put back nor removed (`<key>#gc<digits>` on a file store). Removing it puts
    /// it back when its key is free (it may be an object a writer had just rewritten) and drops
    /// it otherwise, whatever its age: that is always safe.
    MovedAside,
}

/// A leftover of a write that never finished: a staging file a killed process left behind, or a
/// multipart upload nobody completed or aborted. Ordinary listings ([`Store::list`]) never show
/// these; [`Store::list_incomplete`] does, and [`Store::remove_incomplete`] removes one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IncompleteWrite {
    /// The key the write was for.
    pub path: StorePath,
    /// What kind of leftover this is.
    pub kind: IncompleteKind,
    /// The store's handle for it, which [`Store::remove_incomplete`] takes back: the staging
    /// suffix (the digits after `#`) for a staging file, the upload id for a multipart upload.
    pub id: String,
    /// Bytes it holds: the staging file's size, or the uploaded parts' total.
    pub size: u64,
    /// How many names the data has, this one included: 1, unless the staging file is a hard link
    /// of another file (the published object, when the write was killed after publishing it and
    /// before removing the staging name). While another name lives, removing this one frees no
    /// space, and deleting the other name frees none while this one lives.
    pub links: u64,
    /// Its last sign of life: the staging file's modification time (shared with every hard
    /// link of it); for an upload, the later of its start and its newest part.
    pub last_modified: DateTime<Utc>,
}

impl IncompleteWrite {
    /// A leftover with one name (see [`IncompleteWrite::with_links`]).
    pub fn new(
        path: StorePath,
        kind: IncompleteKind,
        id: impl Into<String>,
        size: u64,
        last_modified: DateTime<Utc>,
    ) -> Self {
        IncompleteWrite {
            path,
            kind,
            id: id.into(),
            size,
            links: 1,
            last_modified,
        }
    }

    /// Set how many names the data has (at least 1).
    pub fn with_links(mut self, links: u64) -> Self {
        self.links = links.max(1);
        self
    }

    /// The bytes removing this leftover would free now: its size when no other name holds the
    /// data, otherwise nothing.
    pub fn exclusive_bytes(&self) -> u64 {
        if self.links > 1 { 0 } else { self.size }
    }
}

impl fmt::Display for IncompleteWrite {
    /// The staging file's key (`<key>#<digits>`), or `<key> (upload <id>)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            IncompleteKind::StagingFile => write!(f, "{}#{}", self.path, self.id),
            IncompleteKind::MultipartUpload => write!(f, "{} (upload {})", self.path, self.id),
            IncompleteKind::MovedAside => write!(f, "{}#{}", self.path, self.id),
        }
    }
}

/// What [`Store::remove_incomplete`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IncompleteRemoval {
    /// Removed (or aborted).
    Removed {
        /// The space the store got back, measured at the removal: the leftover's size when it
        /// was the data's only name, otherwise 0.
        bytes_freed: u64,
    },
    /// It was gone already (finished, aborted or removed meanwhile).
    Gone,
    /// It showed a sign of life after the cutoff: kept.
    Young,
}

/// The narrow, object-safe store contract.
///
/// Implementations map their native errors into [`Error`], with [`Error::NotFound`] for missing
/// objects, [`Error::AlreadyExists`] for create-if-absent conflicts and [`Error::Store`] (with the
/// `retryable` flag set for timeouts and throttling, decided from the native error's type) for
/// the rest.
///
/// Cross-cutting behaviour is not the store's business but a [`Layer`]'s: the built-in
/// protocols open their stores wrapped in the tracing layer of `dj-store-layers` (a span with the
/// store, path, bytes and duration for every operation) and, for backends that do not retry by
/// themselves, its retry layer. Options may be added to [`PutOptions`] and [`GetOptions`] in
/// minor releases; a store that cannot honour an option it meets fails with
/// [`Error::NotSupported`].
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + fmt::Display + 'static {
    /// The configured name of this store (e.g. `main`), used in errors and metadata.
    fn name(&self) -> &str;

    /// What this store can do.
    fn capabilities(&self) -> Capabilities;

    /// Write a whole object, as `options` say (see [`PutOptions`]).
    async fn put_opts(
        &self,
        path: &StorePath,
        payload: Bytes,
        options: PutOptions,
    ) -> Result<PutResult>;

    /// Read an object, or part of it, as `options` say (see [`GetOptions`]).
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult>;

    /// Read an object's metadata.
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta>;

    /// Delete an object. Deleting a missing object succeeds.
    async fn delete(&self, path: &StorePath) -> Result<()>;

    /// List every object whose key starts with `prefix` (segment-wise), recursively; `None`
    /// lists the whole store. Order is unspecified.
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>>;

    /// Start a multipart upload to `path`.
    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>>;

    /// Delete an object only if it was last modified at or before `cutoff`: what garbage
    /// collection does to an orphan, which a writer reusing it may be rewriting at that moment
    /// (`crate::reuse`). A rewrite after the cutoff must survive.
    ///
    /// The default implementation reads the object's metadata, then deletes it, so a rewrite that
    /// lands between the two is lost. Stores that can check and delete as one step override it
    /// (the file store moves the object aside, checks the file it moved and puts it back when it
    /// is young), and wrappers must forward it.
    async fn delete_if_older(
        &self,
        path: &StorePath,
        cutoff: DateTime<Utc>,
    ) -> Result<ConditionalDelete> {
        let meta = match self.head(path).await {
            Ok(m) => m,
            Err(e) if e.is_not_found() => return Ok(ConditionalDelete::Missing),
            Err(e) => return Err(e),
        };
        if meta.last_modified > cutoff {
            return Ok(ConditionalDelete::Kept(meta.size));
        }
        self.delete(path).await?;
        Ok(ConditionalDelete::Deleted(meta.size))
    }

    /// List the leftovers of writes that never finished (see [`IncompleteWrite`]) whose target
    /// key equals `prefix` or lies below it (segment-wise); `None` lists the whole store. Order
    /// is unspecified.
    ///
    /// The default lists nothing: right for stores whose writes leave nothing behind when the
    /// writer dies (memory) or that cannot tell. A store that can leave leftovers implements
    /// this and [`Store::remove_incomplete`]; a store that wraps another forwards both.
    fn list_incomplete(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, Result<IncompleteWrite>> {
        let _ = prefix;
        futures::stream::empty().boxed()
    }

    /// Remove (or abort) one leftover that [`Store::list_incomplete`] reported, unless it showed
    /// a sign of life after `not_after`: the store looks at it again just before removing it,
    /// and answers [`IncompleteRemoval::Young`] without touching it when it is younger now, or
    /// [`IncompleteRemoval::Gone`] when it is not there any more.
    ///
    /// The default (for stores whose listing is empty) answers [`Error::NotSupported`].
    async fn remove_incomplete(
        &self,
        write: &IncompleteWrite,
        not_after: DateTime<Utc>,
    ) -> Result<IncompleteRemoval> {
        let _ = (write, not_after);
        Err(Error::NotSupported {
            store: self.name().to_string(),
            operation: "removing leftovers of interrupted writes".into(),
        })
    }
}

/// Wraps a store into another that adds one behaviour (spans, retries, a key prefix) and
/// forwards the rest, in the style of OpenDAL's layers. Implementations live outside the core
/// (`dj-store-layers`); the trait is here so that any crate can write and accept one.
///
/// A wrapper must forward every [`Store`] method, including the ones with defaults
/// ([`Store::delete_if_older`], [`Store::list_incomplete`], [`Store::remove_incomplete`]), so
/// that the wrapped store's own implementations are not replaced by the defaults.
pub trait Layer: Send + Sync {
    /// `inner` with this layer's behaviour added.
    fn layer(&self, inner: Arc<dyn Store>) -> Arc<dyn Store>;
}

impl<L: Layer + ?Sized> Layer for &L {
    fn layer(&self, inner: Arc<dyn Store>) -> Arc<dyn Store> {
        (**self).layer(inner)
    }
}

impl<L: Layer + ?Sized> Layer for Arc<L> {
    fn layer(&self, inner: Arc<dyn Store>) -> Arc<dyn Store> {
        (**self).layer(inner)
    }
}

/// Whether a create-if-absent put wrote the object or found it already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// This call wrote the object.
    Created,
    /// An object was already at the key; nothing was written.
    AlreadyExisted,
}

/// Conveniences over [`Store`], implemented for every store. Do not implement it yourself.
#[async_trait]
pub trait StoreExt: Store {
    /// Write (overwriting) a whole object.
    async fn put(&self, path: &StorePath, payload: Bytes) -> Result<PutResult> {
        self.put_opts(path, payload, PutOptions::default()).await
    }

    /// Write an object only if absent; "already exists" is reported, not an error.
    async fn put_if_absent(&self, path: &StorePath, payload: Bytes) -> Result<PutOutcome> {
        match self.put_opts(path, payload, PutOptions::create()).await {
            Ok(_) => Ok(PutOutcome::Created),
            Err(Error::AlreadyExists { .. }) => Ok(PutOutcome::AlreadyExisted),
            Err(e) => Err(e),
        }
    }

    /// Read a whole object.
    async fn get(&self, path: &StorePath) -> Result<Bytes> {
        self.get_opts(path, GetOptions::default())
            .await?
            .bytes()
            .await
    }

    /// Read `range` of an object.
    async fn get_range(&self, path: &StorePath, range: Range<u64>) -> Result<Bytes> {
        self.get_opts(path, GetOptions::range(range))
            .await?
            .bytes()
            .await
    }

    /// Whether an object exists at `path`.
    async fn exists(&self, path: &StorePath) -> Result<bool> {
        match self.head(path).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// List everything below `prefix` into a vector.
    async fn list_all(&self, prefix: Option<&StorePath>) -> Result<Vec<ObjectMeta>> {
        self.list(prefix).try_collect().await
    }

    /// Upload a stream of chunks of unknown total length through a multipart upload, in parts of
    /// `part_size` bytes (at least the store's minimum), holding at most one part in memory.
    /// On any error the upload is aborted and the error returned.
    async fn put_stream(
        &self,
        path: &StorePath,
        mut chunks: BoxStream<'_, Result<Bytes>>,
        part_size: usize,
    ) -> Result<PutResult> {
        let part_size = part_size.max(self.capabilities().min_part_size).max(1);
        let mut upload = self.put_multipart(path).await?;
        let mut buf = BytesMut::with_capacity(part_size);
        let result: Result<()> = async {
            while let Some(chunk) = chunks.next().await {
                let mut chunk = chunk?;
                while !chunk.is_empty() {
                    let take = (part_size - buf.len()).min(chunk.len());
                    buf.extend_from_slice(&chunk.split_to(take));
                    if buf.len() == part_size {
                        let part = std::mem::replace(&mut buf, BytesMut::with_capacity(part_size));
                        upload.put_part(part.freeze()).await?;
                    }
                }
            }
            if !buf.is_empty() {
                upload.put_part(std::mem::take(&mut buf).freeze()).await?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => upload.complete().await,
            Err(e) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(store = self.name(), path = %path, error = %abort, "abort failed");
                }
                Err(e)
            }
        }
    }
}

impl<T: Store + ?Sized> StoreExt for T {}
