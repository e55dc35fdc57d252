//! The prefix layer: a store rooted at a sub-path of another.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, StreamExt};

use dj_core::store::{
    Capabilities, ConditionalDelete, GetOptions, GetResult, IncompleteRemoval, IncompleteWrite,
    Layer, MultipartUpload, ObjectMeta, PutOptions, PutResult, Store, StorePath,
};
use dj_core::{Error, Result};

/// Roots a store at a sub-path of another: key `k` of the layered store is key `prefix/k` of the
/// inner one, and listings (of objects and of incomplete writes) come back relative to the
/// prefix. Errors keep naming the inner store's full key, which is where the object is.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> dj_core::Result<()> {
/// use std::sync::Arc;
/// use dj_core::store::{Layer, Store, StoreExt, StorePath};
/// use dj_store_layers::PrefixLayer;
///
/// let bucket: Arc<dyn Store> = Arc::new(dj_store_memory::MemoryStore::new("b"));
/// let lab = PrefixLayer::new(StorePath::parse("labs/lab a")?).layer(Arc::clone(&bucket));
/// lab.put(&StorePath::parse("x.bin")?, "1".into()).await?;
/// assert!(bucket.exists(&StorePath::parse("labs/lab a/x.bin")?).await?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PrefixLayer {
    prefix: StorePath,
}

impl PrefixLayer {
    /// A layer placing every key below `prefix`.
    pub fn new(prefix: StorePath) -> Self {
        PrefixLayer { prefix }
    }

    /// A layer placing every key below `prefix`, given as text (leading and trailing `/`
    /// ignored); an [`Error::InvalidPath`] names a prefix that is not a valid key.
    pub fn parse(prefix: &str) -> Result<Self> {
        Ok(PrefixLayer::new(StorePath::parse(
            prefix.trim_matches('/'),
        )?))
    }
}

impl Layer for PrefixLayer {
    fn layer(&self, inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(PrefixedStore {
            inner,
            prefix: self.prefix.clone(),
        })
    }
}

/// A store wrapped by the [`PrefixLayer`].
#[derive(Debug)]
pub struct PrefixedStore {
    inner: Arc<dyn Store>,
    prefix: StorePath,
}

impl PrefixedStore {
    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// The prefix every key is placed below.
    pub fn prefix(&self) -> &StorePath {
        &self.prefix
    }

    fn full(&self, path: &StorePath) -> Result<StorePath> {
        self.prefix.join(path.as_str())
    }
}

impl fmt::Display for PrefixedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} under `{}`", self.inner, self.prefix)
    }
}

/// The key of `full` relative to `prefix`, or an error naming the store when the inner store
/// returned a key outside the prefix.
fn relative(store: &str, prefix: &StorePath, full: &StorePath) -> Result<StorePath> {
    full.as_str()
        .strip_prefix(prefix.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| {
            Error::invalid_path(
                full.as_str(),
                format!("store `{store}` listed a key outside its prefix `{prefix}`"),
            )
        })
        .and_then(StorePath::parse)
}

#[async_trait]
impl Store for PrefixedStore {
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
        self.inner
            .put_opts(&self.full(path)?, payload, options)
            .await
    }

    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        let mut r = self.inner.get_opts(&self.full(path)?, options).await?;
        r.meta.path = path.clone();
        Ok(r)
    }

    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        let mut meta = self.inner.head(&self.full(path)?).await?;
        meta.path = path.clone();
        Ok(meta)
    }

    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.inner.delete(&self.full(path)?).await
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        let under = match prefix {
            Some(p) => match self.full(p) {
                Ok(full) => full,
                Err(e) => return futures::stream::iter([Err(e)]).boxed(),
            },
            None => self.prefix.clone(),
        };
        let store = self.inner.name().to_string();
        let root = self.prefix.clone();
        self.inner
            .list(Some(&under))
            .map(move |item| {
                let mut meta = item?;
                meta.path = relative(&store, &root, &meta.path)?;
                Ok(meta)
            })
            .boxed()
    }

    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart(&self.full(path)?).await
    }

    async fn delete_if_older(
        &self,
        path: &StorePath,
        cutoff: DateTime<Utc>,
    ) -> Result<ConditionalDelete> {
        self.inner.delete_if_older(&self.full(path)?, cutoff).await
    }

    fn list_incomplete(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, Result<IncompleteWrite>> {
        let under = match prefix {
            Some(p) => match self.full(p) {
                Ok(full) => full,
                Err(e) => return futures::stream::iter([Err(e)]).boxed(),
            },
            None => self.prefix.clone(),
        };
        let store = self.inner.name().to_string();
        let root = self.prefix.clone();
        self.inner
            .list_incomplete(Some(&under))
            .map(move |item| {
                let mut write = item?;
                write.path = relative(&store, &root, &write.path)?;
                Ok(write)
            })
            .boxed()
    }

    async fn remove_incomplete(
        &self,
        write: &IncompleteWrite,
        not_after: DateTime<Utc>,
    ) -> Result<IncompleteRemoval> {
        let mut inner_write = write.clone();
        inner_write.path = self.full(&write.path)?;
        self.inner.remove_incomplete(&inner_write, not_after).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_keys_are_segment_wise() {
        let root = StorePath::parse("a/b").unwrap();
        let k = StorePath::parse("a/b/c/d").unwrap();
        assert_eq!(relative("s", &root, &k).unwrap().as_str(), "c/d");
        let outside = StorePath::parse("a/bc/d").unwrap();
        assert!(relative("s", &root, &outside).is_err());
        assert!(relative("s", &root, &root).is_err());
        assert!(PrefixLayer::parse("/x/y/").is_ok());
        assert!(PrefixLayer::parse("x/../y").is_err());
    }
}
