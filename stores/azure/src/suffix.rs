//! Suffix ranges (`bytes=-n`) for Azure, which does not serve them: a HEAD for the size and ETag,
//! then a bounded range pinned to that ETag, so that the bytes come from the object the size was
//! read from. A replacement between the two requests is retried.

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// How often a suffix read is retried when the object changed between its two requests.
const ATTEMPTS: usize = 3;

/// Wraps a store that rejects [`GetRange::Suffix`] and serves such reads in two requests.
#[derive(Debug)]
pub(crate) struct SuffixRanges<T>(pub(crate) T);

impl<T: fmt::Display> fmt::Display for SuffixRanges<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[async_trait]
impl<T: ObjectStore> ObjectStore for SuffixRanges<T> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let n = match options.range {
            Some(GetRange::Suffix(n)) if n > 0 => n,
            _ => return self.0.get_opts(location, options).await,
        };
        let pin = options.if_match.is_none() && options.version.is_none();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut head = options.clone();
            head.range = None;
            head.head = true;
            let meta = self.0.get_opts(location, head).await?.meta;
            let mut get = options.clone();
            get.range =
                (meta.size > 0).then(|| GetRange::Bounded(meta.size.saturating_sub(n)..meta.size));
            if pin {
                get.if_match = meta.e_tag.clone();
            }
            match self.0.get_opts(location, get).await {
                Err(object_store::Error::Precondition { .. }) if pin && attempt < ATTEMPTS => {}
                other => return other,
            }
        }
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.0.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.0.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.0.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn suffix_reads_the_tail() {
        let store = SuffixRanges(InMemory::new());
        let p = Path::from("a");
        store
            .put(&p, Bytes::from_static(b"0123456789").into())
            .await
            .unwrap();
        for (n, want) in [
            (3u64, &b"789"[..]),
            (10, b"0123456789"),
            (50, b"0123456789"),
        ] {
            let opts = GetOptions {
                range: Some(GetRange::Suffix(n)),
                ..Default::default()
            };
            let got = store
                .get_opts(&p, opts)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(&got[..], want, "suffix {n}");
        }
        let empty = Path::from("empty");
        store.put(&empty, Bytes::new().into()).await.unwrap();
        let opts = GetOptions {
            range: Some(GetRange::Suffix(4)),
            ..Default::default()
        };
        let got = store
            .get_opts(&empty, opts)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(got.is_empty());
        let opts = GetOptions {
            range: Some(GetRange::Suffix(4)),
            ..Default::default()
        };
        let err = store
            .get_opts(&Path::from("missing"), opts)
            .await
            .unwrap_err();
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    }
}
