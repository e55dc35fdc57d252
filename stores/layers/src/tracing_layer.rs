//! The tracing layer: one span per store operation.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};
use tracing::Instrument;

use dj_core::store::{
    Capabilities, ConditionalDelete, GetOptions, GetResult, IncompleteRemoval, IncompleteWrite,
    Layer, MultipartUpload, ObjectMeta, PutOptions, PutResult, Store, StorePath,
};
use dj_core::{Error, Result};

/// The name of every span the [`TracingLayer`] opens.
pub const SPAN_NAME: &str = "dj_store";

/// Runs every operation of a store in an `info`-level span named [`SPAN_NAME`] with the fields
/// `op` (`put`, `get`, `head`, `delete`, `list`, `put_multipart`, `delete_if_older`,
/// `list_incomplete`, `remove_incomplete`), `store`, `path` (the key, or the listing's prefix),
/// `bytes` (written, or to be read; empty when unknown) and `elapsed_us` (for a get, the time to
/// the first byte; for a listing or an upload, until it ends). Nothing is printed unless the
/// application installs a subscriber. Failures are recorded as an `error` event inside the span.
///
/// ```
/// use std::sync::Arc;
/// use dj_core::store::{Layer, Store};
/// use dj_store_layers::TracingLayer;
///
/// let store: Arc<dyn Store> = Arc::new(dj_store_memory::MemoryStore::new("m"));
/// let traced = TracingLayer.layer(store);
/// assert_eq!(traced.name(), "m");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingLayer;

impl Layer for TracingLayer {
    fn layer(&self, inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(TracedStore { inner })
    }
}

/// A store wrapped by the [`TracingLayer`].
#[derive(Debug)]
pub struct TracedStore {
    inner: Arc<dyn Store>,
}

impl TracedStore {
    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }
}

impl fmt::Display for TracedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

fn span(op: &'static str, store: &str, path: &str) -> tracing::Span {
    tracing::info_span!(
        "dj_store",
        op,
        store,
        path,
        bytes = tracing::field::Empty,
        elapsed_us = tracing::field::Empty
    )
}

fn finish(span: &tracing::Span, started: Instant, bytes: Option<u64>, error: Option<&Error>) {
    if let Some(b) = bytes {
        span.record("bytes", b);
    }
    span.record(
        "elapsed_us",
        u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    );
    if let Some(e) = error {
        span.in_scope(|| tracing::debug!(error = %e, retryable = e.is_retryable(), "failed"));
    }
}

#[async_trait]
impl Store for TracedStore {
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
        let sp = span("put", self.inner.name(), path.as_str());
        let started = Instant::now();
        let len = payload.len() as u64;
        let r = self
            .inner
            .put_opts(path, payload, options)
            .instrument(sp.clone())
            .await;
        finish(&sp, started, Some(len), r.as_ref().err());
        r
    }

    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        let sp = span("get", self.inner.name(), path.as_str());
        let started = Instant::now();
        let r = self
            .inner
            .get_opts(path, options)
            .instrument(sp.clone())
            .await;
        let bytes = r.as_ref().ok().map(|g| g.range.end - g.range.start);
        finish(&sp, started, bytes, r.as_ref().err());
        r
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        let sp = span("head", self.inner.name(), path.as_str());
        let started = Instant::now();
        let r = self.inner.head(path).instrument(sp.clone()).await;
        finish(
            &sp,
            started,
            r.as_ref().ok().map(|m| m.size),
            r.as_ref().err(),
        );
        r
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        let sp = span("delete", self.inner.name(), path.as_str());
        let started = Instant::now();
        let r = self.inner.delete(path).instrument(sp.clone()).await;
        finish(&sp, started, None, r.as_ref().err());
        r
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        let shown = prefix.map(StorePath::as_str).unwrap_or_default();
        let sp = span("list", self.inner.name(), shown);
        let started = Instant::now();
        let inner = {
            let _entered = sp.enter();
            self.inner.list(prefix)
        };
        traced_listing(inner, sp, started)
    }

    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        let sp = span("put_multipart", self.inner.name(), path.as_str());
        let started = Instant::now();
        let upload = self.inner.put_multipart(path).instrument(sp.clone()).await;
        if let Err(e) = &upload {
            finish(&sp, started, None, Some(e));
        }
        Ok(Box::new(TracedUpload {
            inner: upload?,
            span: sp,
            started,
            bytes: 0,
        }))
    }

    async fn delete_if_older(
        &self,
        path: &StorePath,
        cutoff: DateTime<Utc>,
    ) -> Result<ConditionalDelete> {
        let sp = span("delete_if_older", self.inner.name(), path.as_str());
        let started = Instant::now();
        let r = self
            .inner
            .delete_if_older(path, cutoff)
            .instrument(sp.clone())
            .await;
        let bytes = match &r {
            Ok(ConditionalDelete::Deleted(n)) => Some(*n),
            _ => None,
        };
        finish(&sp, started, bytes, r.as_ref().err());
        r
    }

    fn list_incomplete(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, Result<IncompleteWrite>> {
        let shown = prefix.map(StorePath::as_str).unwrap_or_default();
        let sp = span("list_incomplete", self.inner.name(), shown);
        let started = Instant::now();
        let inner = {
            let _entered = sp.enter();
            self.inner.list_incomplete(prefix)
        };
        traced_listing(inner, sp, started)
    }

    async fn remove_incomplete(
        &self,
        write: &IncompleteWrite,
        not_after: DateTime<Utc>,
    ) -> Result<IncompleteRemoval> {
        let shown = write.to_string();
        let sp = span("remove_incomplete", self.inner.name(), &shown);
        let started = Instant::now();
        let r = self
            .inner
            .remove_incomplete(write, not_after)
            .instrument(sp.clone())
            .await;
        let bytes = match &r {
            Ok(IncompleteRemoval::Removed { bytes_freed }) => Some(*bytes_freed),
            _ => None,
        };
        finish(&sp, started, bytes, r.as_ref().err());
        r
    }
}

/// A listing whose items are polled inside `span`, which records the listing's duration when the
/// listing ends.
fn traced_listing<T: Send + 'static>(
    mut inner: BoxStream<'static, Result<T>>,
    span: tracing::Span,
    started: Instant,
) -> BoxStream<'static, Result<T>> {
    let mut done = false;
    futures::stream::poll_fn(move |cx| {
        if done {
            return std::task::Poll::Ready(None);
        }
        let polled = {
            let _entered = span.enter();
            inner.poll_next_unpin(cx)
        };
        match &polled {
            std::task::Poll::Ready(None) => {
                done = true;
                finish(&span, started, None, None);
            }
            std::task::Poll::Ready(Some(Err(e))) => {
                span.in_scope(|| tracing::debug!(error = %e, "listing failed"));
            }
            _ => {}
        }
        polled
    })
    .boxed()
}

/// An upload whose parts and completion run inside the span of the `put_multipart` that started
/// it; the span records the bytes uploaded and the time until completion or abort.
struct TracedUpload {
    inner: Box<dyn MultipartUpload>,
    span: tracing::Span,
    started: Instant,
    bytes: u64,
}

impl fmt::Debug for TracedUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracedUpload")
            .field("inner", &self.inner)
            .field("bytes", &self.bytes)
            .finish()
    }
}

#[async_trait]
impl MultipartUpload for TracedUpload {
    async fn put_part(&mut self, data: Bytes) -> Result<()> {
        let len = data.len() as u64;
        let r = self
            .inner
            .put_part(data)
            .instrument(self.span.clone())
            .await;
        if r.is_ok() {
            self.bytes += len;
        }
        r
    }

    async fn complete(self: Box<Self>) -> Result<PutResult> {
        let TracedUpload {
            inner,
            span,
            started,
            bytes,
        } = *self;
        let r = inner.complete().instrument(span.clone()).await;
        finish(&span, started, Some(bytes), r.as_ref().err());
        r
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        let TracedUpload {
            inner,
            span,
            started,
            bytes,
        } = *self;
        let r = inner.abort().instrument(span.clone()).await;
        finish(&span, started, Some(bytes), r.as_ref().err());
        r
    }
}
