//! An adapter that turns any [`object_store::ObjectStore`] into a dj-rs [`Store`].
//!
//! The `file`, `memory` and `s3` store crates are thin constructors around this adapter. It maps
//! keys (with an optional key prefix, the store's `location` inside a bucket), errors (with the
//! store name and key, and whether a retry may help), and emits one `tracing` span per operation.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! use std::sync::Arc;
//! use dj_core::object_store_adapter::ObjectStoreAdapter;
//! use dj_core::store::{StoreExt, StorePath};
//!
//! let store = ObjectStoreAdapter::new("scratch", Arc::new(object_store::memory::InMemory::new()), None)?;
//! let key = StorePath::parse("a/b.txt")?;
//! store.put(&key, "hello".into()).await?;
//! assert_eq!(&store.get(&key).await?[..], b"hello");
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, FuturesUnordered, StreamExt, TryStreamExt};
use object_store::path::Path as OsPath;
use object_store::{ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use tracing::Instrument;

use crate::error::{BoxError, Error, Result};
use crate::store::{
    Capabilities, GetRange, GetResult, MultipartUpload, ObjectMeta, PutMode, PutResult, Store,
    StorePath,
};

/// How many parts of one multipart upload may be in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// A dj-rs store backed by an `object_store` implementation.
pub struct ObjectStoreAdapter {
    name: String,
    inner: Arc<dyn ObjectStore>,
    prefix: Option<OsPath>,
    capabilities: Capabilities,
}

impl fmt::Debug for ObjectStoreAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreAdapter")
            .field("name", &self.name)
            .field("inner", &self.inner.to_string())
            .field(
                "prefix",
                &self.prefix.as_ref().map(|p| p.as_ref().to_string()),
            )
            .finish()
    }
}

impl fmt::Display for ObjectStoreAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store `{}` ({})", self.name, self.inner)
    }
}

/// Whether an `object_store` error may go away on retry.
fn retryable(e: &object_store::Error) -> bool {
    match e {
        object_store::Error::Generic { source, .. } => {
            let text = source.to_string().to_ascii_lowercase();
            // HTTP 5xx, throttling, timeouts and connection failures.
            [
                "timed out",
                "timeout",
                "connection",
                "500",
                "502",
                "503",
                "504",
                "slowdown",
                "retry",
            ]
            .iter()
            .any(|w| text.contains(w))
        }
        _ => false,
    }
}

impl ObjectStoreAdapter {
    /// Wrap `inner` as the store called `name`; every key is placed below `prefix` when given.
    pub fn new(
        name: impl Into<String>,
        inner: Arc<dyn ObjectStore>,
        prefix: Option<&str>,
    ) -> Result<Self> {
        let name = name.into();
        let prefix = match prefix
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
        {
            None => None,
            Some(p) => Some(OsPath::parse(p).map_err(|e| Error::invalid_path(p, e))?),
        };
        Ok(ObjectStoreAdapter {
            name,
            inner,
            prefix,
            capabilities: Capabilities::default(),
        })
    }

    /// Wrap `inner` as the store called `name`, with no key prefix.
    pub fn unprefixed(name: impl Into<String>, inner: Arc<dyn ObjectStore>) -> Self {
        ObjectStoreAdapter {
            name: name.into(),
            inner,
            prefix: None,
            capabilities: Capabilities::default(),
        }
    }

    /// Declare what this backend can do (the default assumes everything).
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    fn location(&self, path: &StorePath) -> Result<OsPath> {
        let full = match &self.prefix {
            Some(p) => format!("{}/{}", p.as_ref(), path.as_str()),
            None => path.as_str().to_string(),
        };
        OsPath::parse(&full).map_err(|e| Error::invalid_path(path.as_str(), e))
    }

    fn relative(&self, location: &OsPath) -> Result<StorePath> {
        let raw = location.as_ref();
        let rel = match &self.prefix {
            Some(p) => raw
                .strip_prefix(p.as_ref())
                .and_then(|r| r.strip_prefix('/'))
                .ok_or_else(|| {
                    Error::invalid_path(raw, "listed key lies outside the store's location")
                })?,
            None => raw,
        };
        StorePath::parse(rel)
    }

    fn map_err(&self, operation: &'static str, path: &str, e: object_store::Error) -> Error {
        match e {
            // A write cannot miss its object; "not found" means the bucket or directory is gone.
            object_store::Error::NotFound { .. } if operation != "get" && operation != "head" => {
                Error::Store {
                    store: self.name.clone(),
                    operation,
                    path: path.to_string(),
                    retryable: false,
                    source: format!(
                        "the bucket or container was not found ({}): {e}",
                        self.inner
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
                operation: format!("{operation}: {e}"),
            },
            other => {
                let retryable = retryable(&other);
                Error::Store {
                    store: self.name.clone(),
                    operation,
                    path: path.to_string(),
                    retryable,
                    source: Box::new(other) as BoxError,
                }
            }
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

fn span(op: &'static str, store: &str, path: &str) -> tracing::Span {
    tracing::debug_span!(
        "store",
        op,
        store,
        path,
        bytes = tracing::field::Empty,
        elapsed_us = tracing::field::Empty
    )
}

fn finish(span: &tracing::Span, started: Instant, bytes: Option<u64>) {
    if let Some(b) = bytes {
        span.record("bytes", b);
    }
    span.record(
        "elapsed_us",
        u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    );
}

#[async_trait]
impl Store for ObjectStoreAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn put_opts(&self, path: &StorePath, payload: Bytes, mode: PutMode) -> Result<PutResult> {
        let sp = span("put", &self.name, path.as_str());
        let started = Instant::now();
        let len = payload.len() as u64;
        let loc = self.location(path)?;
        let opts = PutOptions {
            mode: match mode {
                PutMode::Overwrite => object_store::PutMode::Overwrite,
                PutMode::Create => object_store::PutMode::Create,
            },
            ..Default::default()
        };
        let r = self
            .inner
            .put_opts(&loc, PutPayload::from_bytes(payload), opts)
            .instrument(sp.clone())
            .await
            .map_err(|e| self.map_err("put", path.as_str(), e))?;
        finish(&sp, started, Some(len));
        Ok(PutResult { e_tag: r.e_tag })
    }

    async fn get_opts(&self, path: &StorePath, range: Option<GetRange>) -> Result<GetResult> {
        let sp = span("get", &self.name, path.as_str());
        let started = Instant::now();
        let loc = self.location(path)?;
        let opts = object_store::GetOptions {
            range: range.map(|r| match r {
                GetRange::Bounded(r) => object_store::GetRange::Bounded(r),
                GetRange::Offset(o) => object_store::GetRange::Offset(o),
                GetRange::Suffix(n) => object_store::GetRange::Suffix(n),
            }),
            ..Default::default()
        };
        let r = self
            .inner
            .get_opts(&loc, opts)
            .instrument(sp.clone())
            .await
            .map_err(|e| self.map_err("get", path.as_str(), e))?;
        let meta = self.meta(r.meta.clone())?;
        let range = r.range.clone();
        finish(&sp, started, Some(range.end - range.start));
        let store = self.name.clone();
        let key = path.as_str().to_string();
        let stream = r
            .into_stream()
            .map_err(move |e| Error::Store {
                store: store.clone(),
                operation: "read",
                path: key.clone(),
                retryable: retryable(&e),
                source: Box::new(e),
            })
            .boxed();
        Ok(GetResult {
            meta,
            range,
            stream,
        })
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        let sp = span("head", &self.name, path.as_str());
        let loc = self.location(path)?;
        let m = self
            .inner
            .head(&loc)
            .instrument(sp)
            .await
            .map_err(|e| self.map_err("head", path.as_str(), e))?;
        self.meta(m)
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        let sp = span("delete", &self.name, path.as_str());
        let loc = self.location(path)?;
        match self.inner.delete(&loc).instrument(sp).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.map_err("delete", path.as_str(), e)),
        }
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        let loc = match prefix {
            Some(p) => match self.location(p) {
                Ok(l) => Some(l),
                Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
            },
            None => self.prefix.clone(),
        };
        let name = self.name.clone();
        let prefix_str = prefix.map(|p| p.as_str().to_string()).unwrap_or_default();
        let this_prefix = self.prefix.clone();
        let inner = Arc::clone(&self.inner);
        let mapper = ObjectStoreAdapter {
            name: name.clone(),
            inner,
            prefix: this_prefix,
            capabilities: self.capabilities,
        };
        self.inner
            .list(loc.as_ref())
            .map(move |r| match r {
                Ok(m) => mapper.meta(m),
                Err(e) => Err(mapper.map_err("list", &prefix_str, e)),
            })
            .boxed()
    }

    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        let loc = self.location(path)?;
        let upload = self
            .inner
            .put_multipart(&loc)
            .await
            .map_err(|e| self.map_err("start multipart upload", path.as_str(), e))?;
        Ok(Box::new(Multipart {
            store: self.name.clone(),
            path: path.as_str().to_string(),
            upload,
            in_flight: FuturesUnordered::new(),
            bytes: 0,
            started: Instant::now(),
        }))
    }
}

struct Multipart {
    store: String,
    path: String,
    upload: Box<dyn object_store::MultipartUpload>,
    in_flight: FuturesUnordered<object_store::UploadPart>,
    bytes: u64,
    started: Instant,
}

impl fmt::Debug for Multipart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Multipart")
            .field("store", &self.store)
            .field("path", &self.path)
            .finish()
    }
}

impl Multipart {
    fn err(&self, operation: &'static str, e: object_store::Error) -> Error {
        Error::Store {
            store: self.store.clone(),
            operation,
            path: self.path.clone(),
            retryable: retryable(&e),
            source: Box::new(e),
        }
    }
}

#[async_trait]
impl MultipartUpload for Multipart {
    async fn put_part(&mut self, data: Bytes) -> Result<()> {
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            if let Some(Err(e)) = self.in_flight.next().await {
                return Err(self.err("upload part", e));
            }
        }
        self.bytes += data.len() as u64;
        let fut = self.upload.put_part(PutPayload::from_bytes(data));
        self.in_flight.push(fut);
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<PutResult> {
        while let Some(r) = self.in_flight.next().await {
            if let Err(e) = r {
                let err = self.err("upload part", e);
                let _ = self.upload.abort().await;
                return Err(err);
            }
        }
        let r = self
            .upload
            .complete()
            .await
            .map_err(|e| self.err("complete multipart upload", e))?;
        let sp = span("put_multipart", &self.store, &self.path);
        finish(&sp, self.started, Some(self.bytes));
        Ok(PutResult { e_tag: r.e_tag })
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        while self.in_flight.next().await.is_some() {}
        self.upload
            .abort()
            .await
            .map_err(|e| self.err("abort multipart upload", e))
    }
}
