//! [`OpendalStore`]: the [`Store`] contract over an [`opendal::Operator`].

use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::future::IntoFuture;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use dj_core::Result;
use dj_core::error::Error;
use dj_core::store::{
    Capabilities, GetOptions, GetResult, MultipartUpload, ObjectMeta, PutMode, PutOptions,
    PutResult, Store, StorePath,
};
use futures::lock::Mutex;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use opendal::{Buffer, ErrorKind, Metadata, Operator};

use crate::error::map_error;

/// How many parts of one multipart upload OpenDAL may have in flight at once.
pub const PARTS_IN_FLIGHT: usize = 4;

/// How many locks serialize create-if-absent puts on services whose own check is not exclusive.
const CREATE_LOCK_STRIPES: usize = 64;

/// What a store shares with its listings and uploads.
struct Shared {
    name: String,
    op: Operator,
    backend: String,
    /// Keys below this prefix are the backend's scratch space (e.g. the fs service's
    /// `atomic_write_dir`): never listed, never written by callers.
    hidden: Option<String>,
    /// Present when create-if-absent needs in-process serialization (see the crate docs).
    create_locks: Option<Box<[Mutex<()>]>>,
    /// Whether to use OpenDAL's `if_not_exists` for create-if-absent puts.
    use_if_not_exists: bool,
    /// Whether OpenDAL's writer accepts several writes (a native multipart upload or a streamed
    /// file); otherwise uploads are collected in memory and written once.
    write_can_multi: bool,
    /// Whether reads can be pinned to the ETag seen by the preceding `stat`.
    read_with_if_match: bool,
}

impl Clone for Shared {
    fn clone(&self) -> Self {
        Shared {
            name: self.name.clone(),
            op: self.op.clone(),
            backend: self.backend.clone(),
            hidden: self.hidden.clone(),
            // Fresh locks: a copy is made only before the store is shared.
            create_locks: self.create_locks.as_ref().map(|l| new_locks(l.len())),
            use_if_not_exists: self.use_if_not_exists,
            write_can_multi: self.write_can_multi,
            read_with_if_match: self.read_with_if_match,
        }
    }
}

fn new_locks(n: usize) -> Box<[Mutex<()>]> {
    (0..n).map(|_| Mutex::new(())).collect()
}

/// A dj-rs [`Store`] over any [`opendal::Operator`].
///
/// Keys are relative to the operator's root. Cloning is cheap and clones share the operator.
#[derive(Clone)]
pub struct OpendalStore {
    shared: Arc<Shared>,
    capabilities: Capabilities,
}

impl fmt::Debug for OpendalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpendalStore")
            .field("name", &self.shared.name)
            .field("backend", &self.shared.backend)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for OpendalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store `{}` ({})", self.shared.name, self.shared.backend)
    }
}

/// A description of an operator for messages: service, bucket or container, root.
fn describe(op: &Operator) -> String {
    let info = op.info();
    let name = info.name();
    if name.is_empty() {
        format!("opendal {} service, root `{}`", info.scheme(), info.root())
    } else {
        format!(
            "opendal {} service `{name}`, root `{}`",
            info.scheme(),
            info.root()
        )
    }
}

impl OpendalStore {
    /// Wrap `operator` as the store called `name`.
    ///
    /// The store's [`Capabilities`] are read from the operator's OpenDAL capability:
    /// create-if-absent is exclusive where the service supports `if_not_exists` (except the `fs`
    /// service, whose check is not atomic when it stages writes), multipart uploads are native
    /// where it supports multi-part writes, and writes are durable unless the service is
    /// `memory`. Where the service cannot do an exclusive create, create-if-absent puts are
    /// serialized within this process (see the crate docs).
    pub fn new(name: impl Into<String>, operator: Operator) -> OpendalStore {
        let info = operator.info();
        let cap = info.capability();
        let scheme = info.scheme();
        let backend = describe(&operator);
        let exclusive_create = cap.write_with_if_not_exists && scheme != "fs";
        let create_locks = (!exclusive_create).then(|| new_locks(CREATE_LOCK_STRIPES));
        let capabilities = Capabilities::default()
            .with_create_if_absent(exclusive_create)
            .with_native_multipart(cap.write_can_multi)
            .with_ranged_get(cap.read)
            .with_durable_writes(scheme != "memory")
            .with_min_part_size(cap.write_multi_min_size.unwrap_or(1).max(1));
        OpendalStore {
            shared: Arc::new(Shared {
                name: name.into(),
                op: operator,
                backend,
                hidden: None,
                create_locks,
                use_if_not_exists: cap.write_with_if_not_exists,
                write_can_multi: cap.write_can_multi,
                read_with_if_match: cap.read_with_if_match,
            }),
            capabilities,
        }
    }

    fn shared_mut(&mut self) -> &mut Shared {
        // Builders run before the store is shared; a shared one is copied first.
        Arc::make_mut(&mut self.shared)
    }

    /// Override the capabilities derived from the operator (for example when a layer or the
    /// service's configuration changes what it guarantees).
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Describe the backend for error messages and `Display` (default: the OpenDAL scheme,
    /// bucket and root).
    pub fn with_backend_description(mut self, description: impl Into<String>) -> Self {
        self.shared_mut().backend = description.into();
        self
    }

    /// Reserve the keys below `prefix` for the backend's own scratch files (the `opendal-fs`
    /// protocol stages its writes there): they are left out of listings, and putting or
    /// uploading to them is an [`Error::InvalidPath`].
    pub fn with_hidden_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into().trim_matches('/').to_string();
        self.shared_mut().hidden = Some(prefix).filter(|p| !p.is_empty());
        self
    }

    /// The wrapped operator.
    pub fn operator(&self) -> &Operator {
        &self.shared.op
    }
}

impl Shared {
    fn err(&self, operation: &'static str, path: &str, e: opendal::Error) -> Error {
        map_error(&self.name, &self.backend, operation, path, e)
    }

    fn is_hidden(&self, key: &str) -> bool {
        self.hidden.as_deref().is_some_and(|h| {
            key == h || (key.starts_with(h) && key.as_bytes().get(h.len()) == Some(&b'/'))
        })
    }

    fn check_writable(&self, path: &StorePath) -> Result<()> {
        if self.is_hidden(path.as_str()) {
            return Err(Error::invalid_path(
                path.as_str(),
                format!(
                    "keys below `{}` are reserved for the scratch files of store `{}`",
                    self.hidden.as_deref().unwrap_or_default(),
                    self.name
                ),
            ));
        }
        Ok(())
    }

    fn create_lock(&self, path: &StorePath) -> Option<&Mutex<()>> {
        let locks = self.create_locks.as_ref()?;
        let mut h = DefaultHasher::new();
        path.as_str().hash(&mut h);
        let i = usize::try_from(h.finish() % locks.len() as u64).unwrap_or(0);
        locks.get(i)
    }

    /// Metadata of the object at `path`, or `NotFound` when nothing (or only a directory) is
    /// there.
    async fn stat(&self, operation: &'static str, path: &StorePath) -> Result<Metadata> {
        let meta = self
            .op
            .stat(path.as_str())
            .await
            .map_err(|e| self.err(operation, path.as_str(), e))?;
        if meta.is_dir() {
            return Err(Error::NotFound {
                store: self.name.clone(),
                path: path.to_string(),
            });
        }
        Ok(meta)
    }

    fn object_meta(&self, path: StorePath, meta: &Metadata) -> ObjectMeta {
        ObjectMeta {
            path,
            size: meta.content_length(),
            last_modified: last_modified(meta),
            e_tag: meta.etag().map(str::to_string),
        }
    }

    /// A listed entry as object metadata: directories and hidden keys are skipped, and entries
    /// listed without their size or time are looked up.
    async fn listed(&self, entry: opendal::Entry) -> Result<Option<ObjectMeta>> {
        let (key, meta) = entry.into_parts();
        if meta.is_dir() || key.ends_with('/') || self.is_hidden(&key) {
            return Ok(None);
        }
        let path = StorePath::parse(&key).map_err(|e| {
            Error::invalid_path(
                &key,
                format!("store `{}` listed a key it cannot address: {e}", self.name),
            )
        })?;
        if meta.is_file() && meta.last_modified().is_some() {
            return Ok(Some(self.object_meta(path, &meta)));
        }
        match self.stat("list", &path).await {
            Ok(m) => Ok(Some(self.object_meta(path, &m))),
            // Deleted between the listing and the lookup.
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The object's modification time. A service that reports none gets "now": such an object then
/// always looks freshly written, so that no grace period can treat it as old.
fn last_modified(meta: &Metadata) -> DateTime<Utc> {
    meta.last_modified()
        .map(|t| DateTime::<Utc>::from(SystemTime::from(t)))
        .unwrap_or_else(Utc::now)
}

#[async_trait]
impl Store for OpendalStore {
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
        s.check_writable(path)?;
        let r = async {
            match options.mode {
                PutMode::Overwrite => s.op.write(path.as_str(), payload).await,
                PutMode::Create => {
                    // Services whose own check is not exclusive are serialized per key here;
                    // across processes the check-then-write race remains (see crate docs).
                    let _guard = match s.create_lock(path) {
                        Some(lock) => Some(lock.lock().await),
                        None => None,
                    };
                    if s.use_if_not_exists {
                        s.op.write_with(path.as_str(), payload)
                            .if_not_exists(true)
                            .await
                    } else {
                        match s.op.stat(path.as_str()).await {
                            Ok(_) => Err(opendal::Error::new(
                                ErrorKind::AlreadyExists,
                                "an object is already at the key",
                            )),
                            Err(e) if e.kind() == ErrorKind::NotFound => {
                                s.op.write(path.as_str(), payload).await
                            }
                            Err(e) => Err(e),
                        }
                    }
                }
            }
        }
        .await;
        let meta = r.map_err(|e| s.err("put", path.as_str(), e))?;
        Ok(PutResult {
            e_tag: meta.etag().map(str::to_string),
        })
    }

    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        let s = &self.shared;
        let meta = s.stat("get", path).await?;
        let size = meta.content_length();
        let range = match options.range {
            Some(r) => r.resolve(size, path.as_str())?,
            None => 0..size,
        };
        let object = s.object_meta(path.clone(), &meta);
        if range.start == range.end {
            return Ok(GetResult {
                meta: object,
                range,
                stream: stream::empty().boxed(),
            });
        }
        let mut reader = s.op.reader_with(path.as_str());
        // Pin the read to the version the stat saw, so that the bytes match the metadata.
        if let (true, Some(etag)) = (s.read_with_if_match, meta.etag()) {
            reader = reader.if_match(etag);
        }
        let chunks = async { reader.await?.into_stream(range.start..range.end).await }
            .await
            .map_err(|e| s.err("get", path.as_str(), e))?;
        let shared = Arc::clone(s);
        let key = path.as_str().to_string();
        let stream = chunks
            .map_ok(|b: Buffer| b.to_bytes())
            .map_err(move |e| shared.err("read", &key, e))
            .boxed();
        Ok(GetResult {
            meta: object,
            range,
            stream,
        })
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        let s = &self.shared;
        let meta = s.stat("head", path).await?;
        Ok(s.object_meta(path.clone(), &meta))
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        let s = &self.shared;
        let r = s.op.delete(path.as_str()).await;
        match r {
            Ok(()) => Ok(()),
            // Deleting a missing object succeeds.
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(s.err("delete", path.as_str(), e)),
        }
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        let s = Arc::clone(&self.shared);
        // A directory path lists segment-wise: `a/b/` never matches `a/bc`.
        let dir = prefix.map_or_else(|| "/".to_string(), |p| format!("{p}/"));
        let prefix_str = prefix.map(|p| p.as_str().to_string()).unwrap_or_default();
        let lister = {
            let s = Arc::clone(&s);
            let prefix_str = prefix_str.clone();
            async move {
                s.op.lister_with(&dir)
                    .recursive(true)
                    .await
                    .map_err(|e| s.err("list", &prefix_str, e))
            }
        };
        stream::once(lister)
            .map_ok(move |entries| {
                let on_err = Arc::clone(&s);
                let prefix_str = prefix_str.clone();
                let per_entry = Arc::clone(&s);
                entries
                    .map_err(move |e| on_err.err("list", &prefix_str, e))
                    .and_then(move |entry| {
                        let s = Arc::clone(&per_entry);
                        async move { s.listed(entry).await }
                    })
                    .try_filter_map(|m| async move { Ok(m) })
            })
            .try_flatten()
            .boxed()
    }

    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        let s = &self.shared;
        s.check_writable(path)?;
        let inner = if s.write_can_multi {
            let writer =
                s.op.writer_with(path.as_str())
                    .concurrent(PARTS_IN_FLIGHT)
                    .into_future()
                    .await
                    .map_err(|e| s.err("start multipart upload", path.as_str(), e))?;
            Upload::Native(writer)
        } else {
            Upload::Buffered(Vec::new())
        };
        Ok(Box::new(Multipart {
            shared: Arc::clone(s),
            path: path.as_str().to_string(),
            inner: Some(inner),
            bytes: 0,
        }))
    }
}

/// The state of one upload.
enum Upload {
    /// OpenDAL's writer: a native multipart upload (S3), a staged file (fs) or a streamed file
    /// (SFTP).
    Native(opendal::Writer),
    /// Parts collected in memory, written at once on completion, for services that take each
    /// object in one request (memory, WebDAV).
    Buffered(Vec<Bytes>),
}

struct Multipart {
    shared: Arc<Shared>,
    path: String,
    /// `None` once completed or aborted.
    inner: Option<Upload>,
    bytes: u64,
}

impl fmt::Debug for Multipart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Multipart")
            .field("store", &self.shared.name)
            .field("path", &self.path)
            .field("bytes", &self.bytes)
            .field(
                "kind",
                &match self.inner {
                    Some(Upload::Native(_)) => "native",
                    Some(Upload::Buffered(_)) => "buffered",
                    None => "finished",
                },
            )
            .finish()
    }
}

impl Multipart {
    fn finished(&self, operation: &'static str) -> Error {
        Error::Store {
            store: self.shared.name.clone(),
            operation,
            path: self.path.clone(),
            retryable: false,
            source: "the multipart upload was already completed or aborted".into(),
        }
    }

    /// Abort OpenDAL's writer. Services that cannot abort (SFTP writes in place) get the partial
    /// object deleted instead.
    async fn abort_writer(shared: &Shared, path: &str, writer: &mut opendal::Writer) -> Result<()> {
        match writer.abort().await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Unsupported => match shared.op.delete(path).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(shared.err("abort multipart upload", path, e)),
            },
            Err(e) => Err(shared.err("abort multipart upload", path, e)),
        }
    }

    /// Abort after a failure, logging (not returning) a failed abort.
    async fn abort_after_failure(&mut self) {
        if let Some(Upload::Native(mut w)) = self.inner.take()
            && let Err(e) = Multipart::abort_writer(&self.shared, &self.path, &mut w).await
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
        let len = data.len() as u64;
        let r = match self.inner.as_mut() {
            None => return Err(self.finished("upload part")),
            Some(Upload::Buffered(parts)) => {
                parts.push(data);
                Ok(())
            }
            Some(Upload::Native(w)) => w.write(data).await,
        };
        match r {
            Ok(()) => {
                self.bytes += len;
                Ok(())
            }
            Err(e) => {
                let err = self.shared.err("upload part", &self.path, e);
                self.abort_after_failure().await;
                Err(err)
            }
        }
    }

    async fn complete(mut self: Box<Self>) -> Result<PutResult> {
        let r = match self.inner.take() {
            None => return Err(self.finished("complete multipart upload")),
            Some(Upload::Buffered(parts)) => {
                self.shared.op.write(&self.path, Buffer::from(parts)).await
            }
            Some(Upload::Native(mut w)) => {
                let r = w.close().await;
                if r.is_err() {
                    self.inner = Some(Upload::Native(w));
                }
                r
            }
        };
        match r {
            Ok(meta) => Ok(PutResult {
                e_tag: meta.etag().map(str::to_string),
            }),
            Err(e) => {
                let err = self.shared.err("complete multipart upload", &self.path, e);
                self.abort_after_failure().await;
                Err(err)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        match self.inner.take() {
            Some(Upload::Native(mut w)) => {
                Multipart::abort_writer(&self.shared, &self.path, &mut w).await
            }
            Some(Upload::Buffered(_)) | None => Ok(()),
        }
    }
}

impl Drop for Multipart {
    fn drop(&mut self) {
        // Dropped without complete or abort: abort in the background so that no incomplete
        // upload lingers. Without a Tokio runtime, OpenDAL's own drop logic is all there is.
        let Some(Upload::Native(mut w)) = self.inner.take() else {
            return;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let shared = Arc::clone(&self.shared);
            let path = self.path.clone();
            drop(handle.spawn(async move {
                if let Err(e) = Multipart::abort_writer(&shared, &path, &mut w).await {
                    tracing::warn!(store = %shared.name, %path, error = %e, "aborting a dropped multipart upload failed");
                }
            }));
        }
    }
}
