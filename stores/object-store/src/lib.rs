//! An adapter that turns any [`object_store::ObjectStore`] into a dj-rs [`Store`].
//!
//! The `file`, `memory` and `s3` store crates are thin constructors around this adapter. It does
//! four things:
//!
//! - **Keys.** A [`StorePath`] becomes an `object_store` [`Path`](object_store::path::Path) through
//!   `Path::parse`, which keeps the key byte for byte (spaces, unicode, `%`, `=`, `#` included).
//!   `Path::from` is never used: it percent-encodes `%`, `#`, `{` and others, so `a%2Fb` would be
//!   stored as `a%252Fb` and DataJoint Python would not find it. An optional key prefix (the
//!   store's `location` inside a bucket) is put in front of every key and stripped again from
//!   listings.
//! - **Errors.** `object_store` errors become [`Error::NotFound`], [`Error::AlreadyExists`],
//!   [`Error::NotSupported`] or [`Error::Store`], naming the store, the key and the backend. A
//!   [`Error::Store`] is marked retryable for timeouts, dropped or refused connections, HTTP 5xx
//!   and 429 and S3's throttling codes, never for 4xx answers or bad keys. A missing bucket is
//!   reported as such, not as a missing object, whenever the server says so.
//! - **Tracing.** The adapter opens no spans of its own: stores opened from configuration are
//!   wrapped in `dj-store-layers`' tracing layer, which gives every operation one. Part uploads
//!   run in the span current when `put_part` is called (they may run on tasks of their own).
//! - **Multipart.** Parts are uploaded with up to [`PARTS_IN_FLIGHT`] in flight at once; a
//!   further `put_part` waits for one to finish, so memory stays bounded. An upload dropped
//!   without `complete` or `abort` is aborted in the background (when a Tokio runtime is running).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! use std::sync::Arc;
//! use dj_store_object_store::ObjectStoreAdapter;
//! use dj_core::store::{Store, StoreExt, StorePath};
//!
//! let inner = Arc::new(object_store::memory::InMemory::new());
//! let store = ObjectStoreAdapter::new("scratch", inner, Some("lab/raw"))?;
//! let key = StorePath::parse("session 1/ünï.txt")?;
//! store.put(&key, "hello".into()).await?;
//! assert_eq!(&store.get(&key).await?[..], b"hello");
//! // Listings come back relative to the prefix.
//! let listed = store.list_all(None).await?;
//! assert_eq!(listed[0].path, key);
//! # Ok(()) }
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, FuturesUnordered, StreamExt, TryStreamExt};
use object_store::path::Path as OsPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tracing::Instrument;

use dj_core::error::{BoxError, Error, Result};

#[cfg(feature = "http")]
mod http;
use dj_core::store::{
    Capabilities, GetOptions, GetRange, GetResult, MultipartUpload, ObjectMeta, PutMode,
    PutOptions, PutResult, Store, StorePath,
};
#[cfg(feature = "http")]
pub use http::{classify_http, retry_config, retry_config_for};

/// How many parts of one multipart upload may be in flight at once.
pub const PARTS_IN_FLIGHT: usize = 4;

/// A backend-specific retry rule, asked about every error in an error's source chain before the
/// generic rules: `Some(answer)` decides, `None` defers. The HTTP stores (`s3`, `gcs`, `azure`)
/// use `classify_http` (feature `http`) to read the kind of `object_store`'s HTTP errors.
pub type RetryClassifier = fn(&(dyn StdError + 'static)) -> Option<bool>;

/// An `object_store` error together with a description of the backend it came from, so that a
/// message names the endpoint and bucket as well as the store and key.
#[derive(Debug)]
pub struct BackendError {
    backend: String,
    source: object_store::Error,
}

impl BackendError {
    /// The `object_store` error.
    pub fn inner(&self) -> &object_store::Error {
        &self.source
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.backend, self.source)
    }
}

impl StdError for BackendError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

/// What the adapter shares with its listings and uploads.
#[derive(Clone)]
struct Shared {
    name: String,
    store: Arc<dyn ObjectStore>,
    prefix: Option<OsPath>,
    backend: String,
    classifier: Option<RetryClassifier>,
}

/// A dj-rs store backed by an `object_store` implementation.
#[derive(Clone)]
pub struct ObjectStoreAdapter {
    shared: Arc<Shared>,
    capabilities: Capabilities,
}

impl fmt::Debug for ObjectStoreAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreAdapter")
            .field("name", &self.shared.name)
            .field("backend", &self.shared.backend)
            .field(
                "prefix",
                &self.shared.prefix.as_ref().map(|p| p.as_ref().to_string()),
            )
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

impl fmt::Display for ObjectStoreAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store `{}` ({})", self.shared.name, self.shared.backend)
    }
}

/// Whether an `object_store` error may go away on retry: the generic rules, after `classifier`.
///
/// Retryable: I/O errors of a transient kind ([`dj_core::error::is_transient_io`]: timed out,
/// refused, reset, aborted, interrupted) anywhere in the source chain; HTTP 5xx, 408 and 429
/// answers; S3's `SlowDown`, `InternalError`, `ServiceUnavailable` and `RequestTimeout` codes.
/// Not retryable: everything else (4xx answers, bad keys, missing objects, unsupported
/// operations), whatever its message says.
///
/// The decision is made from types (the `object_store` variant, [`std::io::ErrorKind`], and the
/// classifier's downcasts) with one exception: `object_store` 0.14 keeps its HTTP answer type
/// (`RetryError`, with the status code) private, so the status code and the S3 error code are
/// read from the answer as `object_store` words it (`non-2xx status code: NNN`, `<Code>..</Code>`).
pub fn is_retryable(e: &object_store::Error, classifier: Option<RetryClassifier>) -> bool {
    match e {
        object_store::Error::Generic { .. } => {}
        // A body stream that broke mid-read surfaces as an I/O error inside `Generic` too; the
        // other variants are answers about the request itself.
        _ => return false,
    }
    let mut link: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = link {
        if let Some(decided) = classifier.and_then(|c| c(err)) {
            return decided;
        }
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| dj_core::error::is_transient_io(io.kind()))
        {
            return true;
        }
        if retryable_answer(&err.to_string()) {
            return true;
        }
        link = err.source();
    }
    false
}

/// Whether an HTTP answer, as `object_store` 0.14's private `RetryError` renders it, asks to be
/// retried: its status code, or the S3 error code in its body.
fn retryable_answer(text: &str) -> bool {
    // `RequestError::Status`: "Server returned non-2xx status code: 503 Service Unavailable: …"
    if let Some(rest) = text.split("non-2xx status code: ").nth(1) {
        let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(code) = code.parse::<u16>() {
            return code >= 500 || code == 408 || code == 429;
        }
    }
    const S3_CODES: [&str; 4] = [
        "<Code>SlowDown</Code>",
        "<Code>InternalError</Code>",
        "<Code>ServiceUnavailable</Code>",
        "<Code>RequestTimeout</Code>",
    ];
    S3_CODES.iter().any(|c| text.contains(c))
}

/// Whether the server said the bucket (or container) does not exist.
fn says_no_bucket(e: &object_store::Error) -> bool {
    let mut link: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = link {
        let text = err.to_string();
        if text.contains("<Code>NoSuchBucket</Code>") || text.contains("ContainerNotFound") {
            return true;
        }
        link = err.source();
    }
    false
}

impl ObjectStoreAdapter {
    /// Wrap `inner` as the store called `name`; every key is placed below `prefix` when given
    /// (leading and trailing `/` are ignored; an empty prefix means none).
    ///
    /// The prefix must be a valid key (no empty, `.` or `..` segments, no control characters);
    /// otherwise an [`Error::InvalidPath`] names it.
    pub fn new(
        name: impl Into<String>,
        inner: Arc<dyn ObjectStore>,
        prefix: Option<&str>,
    ) -> Result<Self> {
        let prefix = match prefix
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
        {
            None => None,
            Some(p) => {
                let checked = StorePath::parse(p)?;
                Some(OsPath::parse(checked.as_str()).map_err(|e| Error::invalid_path(p, e))?)
            }
        };
        let backend = inner.to_string();
        Ok(ObjectStoreAdapter {
            shared: Arc::new(Shared {
                name: name.into(),
                store: inner,
                prefix,
                backend,
                classifier: None,
            }),
            capabilities: Capabilities::default(),
        })
    }

    /// Wrap `inner` as the store called `name`, with no key prefix.
    pub fn unprefixed(name: impl Into<String>, inner: Arc<dyn ObjectStore>) -> Self {
        let backend = inner.to_string();
        ObjectStoreAdapter {
            shared: Arc::new(Shared {
                name: name.into(),
                store: inner,
                prefix: None,
                backend,
                classifier: None,
            }),
            capabilities: Capabilities::default(),
        }
    }

    fn shared_mut(&mut self) -> &mut Shared {
        // Builders run before the adapter is shared; a clone is copied first.
        Arc::make_mut(&mut self.shared)
    }

    /// Declare what this backend can do (the default assumes everything).
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Describe the backend for error messages and `Display`, e.g.
    /// ``S3 bucket `raw` at https://s3.example.org`` (default: the inner store's `Display`).
    pub fn with_backend_description(mut self, description: impl Into<String>) -> Self {
        self.shared_mut().backend = description.into();
        self
    }

    /// Add a backend-specific retry rule (see [`RetryClassifier`]).
    pub fn with_retry_classifier(mut self, classifier: RetryClassifier) -> Self {
        self.shared_mut().classifier = Some(classifier);
        self
    }

    /// The key prefix inside the backend, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.shared.prefix.as_ref().map(|p| p.as_ref())
    }

    /// The wrapped `object_store`.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.shared.store
    }
}

impl Shared {
    /// The backend location of a key: prefix and key joined, kept byte for byte.
    fn location(&self, path: &StorePath) -> Result<OsPath> {
        let full = match &self.prefix {
            Some(p) => format!("{}/{}", p.as_ref(), path.as_str()),
            None => path.as_str().to_string(),
        };
        OsPath::parse(&full).map_err(|e| Error::invalid_path(path.as_str(), e))
    }

    /// The key of a backend location, relative to the prefix.
    fn relative(&self, location: &OsPath) -> Result<StorePath> {
        let raw = location.as_ref();
        let rel = match &self.prefix {
            Some(p) => raw
                .strip_prefix(p.as_ref())
                .and_then(|r| r.strip_prefix('/'))
                .ok_or_else(|| {
                    Error::invalid_path(
                        raw,
                        format!(
                            "store `{}` listed a key outside its location `{}`",
                            self.name,
                            p.as_ref()
                        ),
                    )
                })?,
            None => raw,
        };
        StorePath::parse(rel)
    }

    fn store_error(&self, operation: &'static str, path: &str, e: object_store::Error) -> Error {
        let retryable = is_retryable(&e, self.classifier);
        Error::Store {
            store: self.name.clone(),
            operation,
            path: path.to_string(),
            retryable,
            source: Box::new(BackendError {
                backend: self.backend.clone(),
                source: e,
            }) as BoxError,
        }
    }

    fn map_err(&self, operation: &'static str, path: &str, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. }
                if says_no_bucket(&e) || !matches!(operation, "get" | "head") =>
            {
                // A write or listing cannot miss its object: the bucket or directory is gone.
                Error::Store {
                    store: self.name.clone(),
                    operation,
                    path: path.to_string(),
                    retryable: false,
                    source: format!(
                        "{}: the bucket, container or directory does not exist ({e})",
                        self.backend
                    )
                    .into(),
                }
            }
            object_store::Error::NotFound { .. } => Error::NotFound {
                store: self.name.clone(),
                path: path.to_string(),
            },
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => Error::AlreadyExists {
                store: self.name.clone(),
                path: path.to_string(),
            },
            object_store::Error::NotSupported { .. }
            | object_store::Error::NotImplemented { .. } => Error::NotSupported {
                store: self.name.clone(),
                operation: format!("{operation} ({}: {e})", self.backend),
            },
            object_store::Error::InvalidPath { .. } => Error::invalid_path(
                path,
                format!(
                    "store `{}` ({}) cannot hold this key: {e}",
                    self.name, self.backend
                ),
            ),
            other if says_no_bucket(&other) => Error::Store {
                store: self.name.clone(),
                operation,
                path: path.to_string(),
                retryable: false,
                source: format!(
                    "{}: the bucket or container does not exist ({other})",
                    self.backend
                )
                .into(),
            },
            other => self.store_error(operation, path, other),
        }
    }

    fn meta(&self, m: object_store::ObjectMeta) -> Result<ObjectMeta> {
        Ok(ObjectMeta {
            path: self.relative(&m.location)?,
            size: m.size,
            last_modified: m.last_modified,
            e_tag: m.e_tag,
        })
    }
}

#[cfg(feature = "fs")]
/// The largest read [`file_stream`] makes at once: whole objects up to this size arrive as one
/// buffer (one copy from the page cache, into huge pages), larger ones in bounded chunks.
const FILE_CHUNK: u64 = 64 << 20;

#[cfg(feature = "fs")]
/// `range` of a local file as a stream of chunks of up to [`FILE_CHUNK`] bytes, each read on the
/// blocking pool (inline when there is no Tokio runtime).
fn file_stream(
    file: std::fs::File,
    range: std::ops::Range<u64>,
    shared: Arc<Shared>,
    key: String,
) -> BoxStream<'static, Result<Bytes>> {
    let end = range.end;
    futures::stream::try_unfold((Some(file), range.start), move |(file, pos)| {
        let shared = Arc::clone(&shared);
        let key = key.clone();
        async move {
            let Some(file) = file.filter(|_| pos < end) else {
                return Ok(None);
            };
            let len = usize::try_from((end - pos).min(FILE_CHUNK)).unwrap_or(usize::MAX);
            // Allocated here, on a runtime worker, not on the blocking thread that fills it: the
            // blocking pool has many threads, each with its own allocator arena, and buffers
            // freed into many arenas stay resident.
            // Not zeroed: `read_to_end` reads straight into the spare capacity, so the pages
            // are written once, by the read.
            let mut buf = Vec::with_capacity(len);
            dj_rt::pages::advise_huge(buf.as_ptr(), buf.capacity());
            let read = move || -> std::io::Result<(std::fs::File, Vec<u8>)> {
                use std::io::{Read, Seek, SeekFrom};
                let mut file = file;
                file.seek(SeekFrom::Start(pos))?;
                (&mut file).take(len as u64).read_to_end(&mut buf)?;
                if buf.len() < len {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "the file ended {} bytes early (it shrank while being read)",
                            len - buf.len()
                        ),
                    ));
                }
                Ok((file, buf))
            };
            let io_error = |e: std::io::Error| Error::Store {
                store: shared.name.clone(),
                operation: "read",
                path: key.clone(),
                retryable: false,
                source: Box::new(e) as BoxError,
            };
            let result = match tokio::runtime::Handle::try_current() {
                Ok(handle) => handle.spawn_blocking(read).await.map_err(|e| {
                    io_error(std::io::Error::other(format!("read task failed: {e}")))
                })?,
                Err(_) => read(),
            };
            let (file, buf) = result.map_err(io_error)?;
            let next = pos + buf.len() as u64;
            Ok(Some((Bytes::from(buf), (Some(file), next))))
        }
    })
    .boxed()
}

#[async_trait]
impl Store for ObjectStoreAdapter {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn put_opts(
        &self,
        path: &StorePath,
        payload: Bytes,
        options: PutOptions,
    ) -> Result<PutResult> {
        let s = &self.shared;
        let loc = s.location(path)?;
        let opts = object_store::PutOptions {
            mode: match options.mode {
                PutMode::Overwrite => object_store::PutMode::Overwrite,
                PutMode::Create => object_store::PutMode::Create,
            },
            ..Default::default()
        };
        let r = s
            .store
            .put_opts(&loc, PutPayload::from_bytes(payload), opts)
            .await;
        let r = r.map_err(|e| s.map_err("put", path.as_str(), e))?;
        Ok(PutResult { e_tag: r.e_tag })
    }

    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        let s = &self.shared;
        let loc = s.location(path)?;
        let opts = object_store::GetOptions {
            range: options.range.map(|r| match r {
                GetRange::Bounded(r) => object_store::GetRange::Bounded(r),
                GetRange::Offset(o) => object_store::GetRange::Offset(o),
                GetRange::Suffix(n) => object_store::GetRange::Suffix(n),
            }),
            ..Default::default()
        };
        let r = s
            .store
            .get_opts(&loc, opts)
            .await
            .map_err(|e| s.map_err("get", path.as_str(), e))?;
        let meta = s.meta(r.meta.clone())?;
        let range = r.range.clone();
        let shared = Arc::clone(s);
        let key = path.as_str().to_string();
        // A local file: read it in large blocking reads. object_store's own stream reads 8 KiB
        // per blocking task, and the thread hand-offs then cost more than the reads.
        #[cfg(feature = "fs")]
        let r = match r.payload {
            object_store::GetResultPayload::File(file, _) => {
                return Ok(GetResult {
                    meta,
                    stream: file_stream(file, range.clone(), shared, key),
                    range,
                });
            }
            payload => object_store::GetResult { payload, ..r },
        };
        let stream = r
            .into_stream()
            .map_err(move |e| shared.store_error("read", &key, e))
            .boxed();
        Ok(GetResult {
            meta,
            range,
            stream,
        })
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        let s = &self.shared;
        let loc = s.location(path)?;
        let r = s.store.head(&loc).await;
        s.meta(r.map_err(|e| s.map_err("head", path.as_str(), e))?)
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        let s = &self.shared;
        let loc = s.location(path)?;
        let r = s.store.delete(&loc).await;
        match r {
            // Deleting a missing object succeeds (S3 does the same); a missing bucket does not.
            Ok(()) => Ok(()),
            Err(e @ object_store::Error::NotFound { .. }) if !says_no_bucket(&e) => Ok(()),
            Err(e) => Err(s.map_err("delete", path.as_str(), e)),
        }
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        let s = Arc::clone(&self.shared);
        let loc = match prefix {
            Some(p) => match s.location(p) {
                Ok(l) => Some(l),
                Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
            },
            None => s.prefix.clone(),
        };
        let prefix_str = prefix.map(|p| p.as_str().to_string()).unwrap_or_default();
        s.store
            .list(loc.as_ref())
            .map(move |r| match r {
                Ok(m) => s.meta(m),
                Err(e) => Err(s.map_err("list", &prefix_str, e)),
            })
            .boxed()
    }

    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        let s = &self.shared;
        let loc = s.location(path)?;
        let upload = s
            .store
            .put_multipart(&loc)
            .await
            .map_err(|e| s.map_err("start multipart upload", path.as_str(), e))?;
        Ok(Box::new(Multipart {
            shared: Arc::clone(s),
            path: path.as_str().to_string(),
            upload: Some(upload),
            in_flight: FuturesUnordered::new(),
        }))
    }
}

/// A part upload in flight: a task of its own on the Tokio runtime (so parts make progress while
/// the caller produces the next one), or the plain future outside a runtime. Dropping it aborts
/// the task.
enum PartFuture {
    Task(tokio::task::JoinHandle<object_store::Result<()>>),
    Inline(tracing::instrument::Instrumented<object_store::UploadPart>),
}

impl PartFuture {
    fn start(fut: tracing::instrument::Instrumented<object_store::UploadPart>) -> Self {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => PartFuture::Task(handle.spawn(fut)),
            Err(_) => PartFuture::Inline(fut),
        }
    }
}

impl Future for PartFuture {
    type Output = object_store::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            PartFuture::Task(handle) => Pin::new(handle).poll(cx).map(|joined| {
                joined.unwrap_or_else(|e| {
                    Err(object_store::Error::Generic {
                        store: "multipart",
                        source: Box::new(e),
                    })
                })
            }),
            PartFuture::Inline(fut) => Pin::new(fut).poll(cx),
        }
    }
}

impl Drop for PartFuture {
    fn drop(&mut self) {
        if let PartFuture::Task(handle) = self {
            handle.abort();
        }
    }
}

struct Multipart {
    shared: Arc<Shared>,
    path: String,
    /// `None` once completed or aborted.
    upload: Option<Box<dyn object_store::MultipartUpload>>,
    in_flight: FuturesUnordered<PartFuture>,
}

impl fmt::Debug for Multipart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Multipart")
            .field("store", &self.shared.name)
            .field("path", &self.path)
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl Multipart {
    fn err(&self, operation: &'static str, e: object_store::Error) -> Error {
        self.shared.map_err(operation, &self.path, e)
    }

    fn finished(&self, operation: &'static str) -> Error {
        Error::Store {
            store: self.shared.name.clone(),
            operation,
            path: self.path.clone(),
            retryable: false,
            source: "the multipart upload was already completed or aborted".into(),
        }
    }

    /// Abort the backend upload after a failure, logging (not returning) a failed abort.
    async fn abort_after_failure(&mut self) {
        self.in_flight.clear();
        if let Some(mut upload) = self.upload.take()
            && let Err(e) = upload.abort().await
        {
            tracing::warn!(
                store = %self.shared.name, path = %self.path, error = %e,
                "aborting a failed multipart upload failed"
            );
        }
    }
}

#[async_trait]
impl MultipartUpload for Multipart {
    async fn put_part(&mut self, data: Bytes) -> Result<()> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            if let Some(Err(e)) = self.in_flight.next().await {
                let err = self.err("upload part", e);
                self.abort_after_failure().await;
                return Err(err);
            }
        }
        let Some(upload) = self.upload.as_mut() else {
            return Err(self.finished("upload part"));
        };
        // Parts may run on tasks of their own: carry the caller's span over.
        let fut = upload
            .put_part(PutPayload::from_bytes(data))
            .in_current_span();
        self.in_flight.push(PartFuture::start(fut));
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<PutResult> {
        while let Some(r) = self.in_flight.next().await {
            if let Err(e) = r {
                let err = self.err("upload part", e);
                self.abort_after_failure().await;
                return Err(err);
            }
        }
        let Some(mut upload) = self.upload.take() else {
            return Err(self.finished("complete multipart upload"));
        };
        let r = upload.complete().await;
        match r {
            Ok(r) => Ok(PutResult { e_tag: r.e_tag }),
            Err(e) => {
                let err = self.err("complete multipart upload", e);
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(
                        store = %self.shared.name, path = %self.path, error = %abort,
                        "aborting a failed multipart upload failed"
                    );
                }
                Err(err)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.in_flight.clear();
        match self.upload.take() {
            Some(mut upload) => upload
                .abort()
                .await
                .map_err(|e| self.err("abort multipart upload", e)),
            None => Ok(()),
        }
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        // Dropped without complete or abort: abort in the background so that no incomplete
        // upload lingers in the bucket. Without a runtime, the backend's own drop logic is all.
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        self.in_flight.clear();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let store = self.shared.name.clone();
            let path = self.path.clone();
            drop(handle.spawn(async move {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(%store, %path, error = %e, "aborting a dropped multipart upload failed");
                }
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dj_core::store::StoreExt;

    fn generic(source: impl Into<BoxError>) -> object_store::Error {
        object_store::Error::Generic {
            store: "test",
            source: source.into(),
        }
    }

    #[test]
    fn retry_classification() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(is_retryable(&generic(refused), None));
        let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        assert!(is_retryable(&generic(timed_out), None));
        for text in [
            "Server returned non-2xx status code: 503 Service Unavailable: ",
            "Server returned non-2xx status code: 500 Internal Server Error: x",
            "Server returned non-2xx status code: 429 Too Many Requests: ",
            "Server returned error response: <Error><Code>SlowDown</Code></Error>",
        ] {
            assert!(is_retryable(&generic(text), None), "{text}");
        }
        for text in [
            "Server returned non-2xx status code: 400 Bad Request: key 500 503",
            "Server returned non-2xx status code: 416 Range Not Satisfiable: ",
            "invalid key `a500/connection`",
            // Only the error's type says "timeout", never its wording.
            "operation timed out",
        ] {
            assert!(!is_retryable(&generic(text), None), "{text}");
        }
        let disk_full = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        assert!(!is_retryable(&generic(disk_full), None));
        let nf = object_store::Error::NotFound {
            path: "x".into(),
            source: "503".into(),
        };
        assert!(!is_retryable(&nf, None));
        // A classifier decides first.
        let never: RetryClassifier = |_| Some(false);
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(!is_retryable(&generic(refused), Some(never)));
    }

    #[test]
    fn errors_name_store_key_and_backend() {
        let a =
            ObjectStoreAdapter::unprefixed("main", Arc::new(object_store::memory::InMemory::new()))
                .with_backend_description("S3 bucket `b` at http://h:1");
        let e = a.shared.map_err(
            "put",
            "k/x",
            generic(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            )),
        );
        let text = e.to_string();
        assert!(e.is_retryable(), "{text}");
        assert!(
            text.contains("store `main` failed to put `k/x`")
                && text.contains("S3 bucket `b` at http://h:1"),
            "{text}"
        );
        let e = a.shared.map_err(
            "get",
            "k",
            object_store::Error::NotFound {
                path: "k".into(),
                source: "Server returned non-2xx status code: 404 Not Found: <Error><Code>NoSuchBucket</Code></Error>".into(),
            },
        );
        assert!(
            !e.is_not_found(),
            "a missing bucket is not a missing object: {e}"
        );
        assert!(e.to_string().contains("does not exist"), "{e}");
        let e = a.shared.map_err(
            "get",
            "k",
            object_store::Error::NotFound {
                path: "k".into(),
                source: "Server returned non-2xx status code: 404 Not Found: <Error><Code>NoSuchKey</Code></Error>".into(),
            },
        );
        assert!(e.is_not_found(), "{e}");
    }

    #[test]
    fn keys_keep_their_bytes() {
        // `Path::from` would re-encode these; the adapter must not.
        for key in [
            "a%2Fb/c d",
            "ü/日本/файл",
            "pk=a%20b/x#1",
            "{x}/[y]~^|`<>\"*?",
        ] {
            assert_ne!(
                OsPath::from(key).as_ref(),
                key,
                "{key}: Path::from keeps it too; pick a harder key"
            );
            let a = ObjectStoreAdapter::new(
                "m",
                Arc::new(object_store::memory::InMemory::new()),
                Some("pre fix/ü"),
            )
            .unwrap();
            let sp = StorePath::parse(key).unwrap();
            let loc = a.shared.location(&sp).unwrap();
            assert_eq!(loc.as_ref(), format!("pre fix/ü/{key}"));
            assert_eq!(a.shared.relative(&loc).unwrap(), sp);
        }
    }

    #[test]
    fn bad_prefixes_are_rejected() {
        for p in ["a/../b", "a//b", "a\\b", "x\n"] {
            let r = ObjectStoreAdapter::new(
                "m",
                Arc::new(object_store::memory::InMemory::new()),
                Some(p),
            );
            assert!(r.is_err(), "{p:?} accepted");
        }
    }

    #[tokio::test]
    async fn prefix_is_stripped_and_isolates() {
        let inner: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let a = ObjectStoreAdapter::new("a", Arc::clone(&inner), Some("/lab/a/")).unwrap();
        let b = ObjectStoreAdapter::new("b", Arc::clone(&inner), Some("lab/ab")).unwrap();
        let k = StorePath::parse("x/y").unwrap();
        a.put(&k, Bytes::from_static(b"a")).await.unwrap();
        b.put(&k, Bytes::from_static(b"b")).await.unwrap();
        let listed = a.list_all(None).await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].path, k);
        assert_eq!(&a.get(&k).await.unwrap()[..], b"a");
        assert!(
            inner
                .head(&OsPath::parse("lab/a/x/y").unwrap())
                .await
                .is_ok()
        );
    }
}
