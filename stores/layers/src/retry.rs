//! The retry layer: exponential backoff with jitter on retryable errors.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};

use dj_core::Result;
use dj_core::config::{RetrySettings, StoreSpec};
use dj_core::store::{
    Capabilities, ConditionalDelete, GetOptions, GetResult, IncompleteRemoval, IncompleteWrite,
    Layer, MultipartUpload, ObjectMeta, PutOptions, PutResult, Store, StorePath,
};

/// How a [`RetryLayer`] retries: at most [`max_attempts`](Self::max_attempts) attempts in all,
/// waiting between them an exponentially growing backoff
/// ([`initial_backoff`](Self::initial_backoff), doubled each time, capped at
/// [`max_backoff`](Self::max_backoff)) of which a random part is dropped (jitter, so that clients
/// that failed together do not retry together), and never starting an attempt that would begin
/// after [`max_elapsed`](Self::max_elapsed) since the first one.
///
/// The default: 4 attempts, 100 ms initial backoff, 5 s maximum backoff, 30 s in all.
///
/// ```
/// use std::time::Duration;
/// use dj_store_layers::RetryPolicy;
/// let p = RetryPolicy::default().with_max_attempts(6).with_initial_backoff(Duration::from_millis(50));
/// assert_eq!(p.max_attempts, 6);
/// assert_eq!(RetryPolicy::never().max_attempts, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1; 1 means no retry).
    pub max_attempts: u32,
    /// The backoff before the first retry (before jitter).
    pub initial_backoff: Duration,
    /// The largest backoff (before jitter).
    pub max_backoff: Duration,
    /// No attempt starts later than this after the first one.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        RetryPolicy::default().with_max_attempts(1)
    }

    /// With [`max_attempts`](Self::max_attempts) set to `n` (at least 1).
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// With [`initial_backoff`](Self::initial_backoff) set to `d`.
    pub fn with_initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        self
    }

    /// With [`max_backoff`](Self::max_backoff) set to `d`.
    pub fn with_max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// With [`max_elapsed`](Self::max_elapsed) set to `d`.
    pub fn with_max_elapsed(mut self, d: Duration) -> Self {
        self.max_elapsed = d;
        self
    }

    /// This policy with a store's `retry` settings over it: each field the settings give
    /// replaces this policy's.
    ///
    /// ```
    /// use std::time::Duration;
    /// use dj_core::config::RetrySettings;
    /// use dj_store_layers::RetryPolicy;
    /// let p = RetryPolicy::default().with_settings(&RetrySettings::default().with_max_attempts(7));
    /// assert_eq!(p.max_attempts, 7);
    /// assert_eq!(p.initial_backoff, Duration::from_millis(100));
    /// assert_eq!(RetryPolicy::default().with_settings(&RetrySettings::never()), RetryPolicy::never());
    /// ```
    pub fn with_settings(mut self, settings: &RetrySettings) -> Self {
        if let Some(n) = settings.max_attempts {
            self = self.with_max_attempts(n);
        }
        if let Some(d) = settings.initial_backoff {
            self.initial_backoff = d;
        }
        if let Some(d) = settings.max_backoff {
            self.max_backoff = d;
        }
        if let Some(d) = settings.max_elapsed {
            self.max_elapsed = d;
        }
        self
    }

    /// The policy of a store opened from `spec`: the [default](RetryPolicy::default) with the
    /// spec's [`retry`](StoreSpec::retry) settings over it. What protocols whose backend does
    /// not retry pass to [`standard`](crate::standard) as [`Retries::Layer`](crate::Retries).
    pub fn for_spec(spec: &StoreSpec) -> Self {
        RetryPolicy::default().with_settings(&spec.retry)
    }

    /// The backoff before retry number `retry` (1 for the first), before jitter: the initial
    /// backoff doubled `retry - 1` times, capped at the maximum.
    pub fn backoff(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }

    /// The wait before retry number `retry`: a random duration between half the
    /// [`backoff`](Self::backoff) and all of it.
    pub fn jittered(&self, retry: u32) -> Duration {
        let full = self.backoff(retry);
        let half = full / 2;
        let spread = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=spread))
    }
}

/// Wraps a store so that operations failing with a retryable error are tried again, as a
/// [`RetryPolicy`] says. What is retried:
///
/// - `put` (whole-object writes), `get` (the request; a stream that breaks after it began is not
///   resumed), `head`, `delete`, `delete_if_older`, `remove_incomplete`, and starting a
///   multipart upload;
/// - a listing, when it fails before yielding anything (a listing that breaks midway is not
///   restarted, since it would repeat entries).
///
/// Parts of a multipart upload are not retried: whether a failed part left the upload usable is
/// the backend's business. A create-if-absent put whose first attempt reached the store but
/// whose answer was lost is answered [`dj_core::Error::AlreadyExists`] by the retry; callers that
/// write content-addressed objects (`put_if_absent`) treat that as success, as they should.
///
/// Each retry is logged as a `warn` event with the store, operation, key, attempt and error.
#[derive(Clone, Debug, Default)]
pub struct RetryLayer {
    policy: RetryPolicy,
}

impl RetryLayer {
    /// A layer retrying as `policy` says.
    pub fn new(policy: RetryPolicy) -> Self {
        RetryLayer { policy }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

impl Layer for RetryLayer {
    fn layer(&self, inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(RetryingStore {
            inner,
            policy: self.policy.clone(),
        })
    }
}

/// A store wrapped by the [`RetryLayer`].
#[derive(Debug)]
pub struct RetryingStore {
    inner: Arc<dyn Store>,
    policy: RetryPolicy,
}

impl RetryingStore {
    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }
}

impl fmt::Display for RetryingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

/// Run `attempt` until it succeeds, fails with an error that is not retryable, or the policy
/// gives up; the last error is returned.
async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    store: &str,
    op: &'static str,
    path: &str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let first = Instant::now();
    let mut tried = 1u32;
    loop {
        match attempt().await {
            Err(e) if e.is_retryable() && tried < policy.max_attempts => {
                let wait = policy.jittered(tried);
                if first.elapsed() + wait > policy.max_elapsed {
                    return Err(e);
                }
                tracing::warn!(
                    store,
                    op,
                    path,
                    attempt = tried,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    error = %e,
                    "retrying a store operation"
                );
                tokio::time::sleep(wait).await;
                tried += 1;
            }
            other => return other,
        }
    }
}

/// Open a listing with `open`, opening it again when it fails before its first item.
fn retry_listing<T: Send + 'static>(
    policy: RetryPolicy,
    store: String,
    op: &'static str,
    shown: String,
    open: impl Fn() -> BoxStream<'static, Result<T>> + Send + Sync + 'static,
) -> BoxStream<'static, Result<T>> {
    futures::stream::once(async move {
        let first = retry(&policy, &store, op, &shown, || {
            let mut listing = open();
            async move {
                match listing.next().await {
                    Some(Err(e)) => Err(e),
                    head => Ok((head, listing)),
                }
            }
        })
        .await;
        match first {
            Ok((head, rest)) => futures::stream::iter(head).chain(rest).boxed(),
            Err(e) => futures::stream::iter([Err(e)]).boxed(),
        }
    })
    .flatten()
    .boxed()
}

#[async_trait]
impl Store for RetryingStore {
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
        retry(&self.policy, self.name(), "put", path.as_str(), || {
            self.inner.put_opts(path, payload.clone(), options.clone())
        })
        .await
    }

    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        retry(&self.policy, self.name(), "get", path.as_str(), || {
            self.inner.get_opts(path, options.clone())
        })
        .await
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        retry(&self.policy, self.name(), "head", path.as_str(), || {
            self.inner.head(path)
        })
        .await
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        retry(&self.policy, self.name(), "delete", path.as_str(), || {
            self.inner.delete(path)
        })
        .await
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        let inner = Arc::clone(&self.inner);
        let prefix = prefix.cloned();
        retry_listing(
            self.policy.clone(),
            self.name().to_string(),
            "list",
            prefix.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            move || inner.list(prefix.as_ref()),
        )
    }

    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        retry(
            &self.policy,
            self.name(),
            "put_multipart",
            path.as_str(),
            || self.inner.put_multipart(path),
        )
        .await
    }

    async fn delete_if_older(
        &self,
        path: &StorePath,
        cutoff: DateTime<Utc>,
    ) -> Result<ConditionalDelete> {
        retry(
            &self.policy,
            self.name(),
            "delete_if_older",
            path.as_str(),
            || self.inner.delete_if_older(path, cutoff),
        )
        .await
    }

    fn list_incomplete(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, Result<IncompleteWrite>> {
        let inner = Arc::clone(&self.inner);
        let prefix = prefix.cloned();
        retry_listing(
            self.policy.clone(),
            self.name().to_string(),
            "list_incomplete",
            prefix.as_ref().map(|p| p.to_string()).unwrap_or_default(),
            move || inner.list_incomplete(prefix.as_ref()),
        )
    }

    async fn remove_incomplete(
        &self,
        write: &IncompleteWrite,
        not_after: DateTime<Utc>,
    ) -> Result<IncompleteRemoval> {
        retry(
            &self.policy,
            self.name(),
            "remove_incomplete",
            write.path.as_str(),
            || self.inner.remove_incomplete(write, not_after),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default()
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(350));
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(350));
        assert_eq!(p.backoff(40), Duration::from_millis(350));
        for retry in 1..6 {
            let w = p.jittered(retry);
            assert!(w >= p.backoff(retry) / 2 && w <= p.backoff(retry), "{w:?}");
        }
        assert_eq!(RetryPolicy::default().with_max_attempts(0).max_attempts, 1);
    }
}
