//! The conformance suite catches broken stores, and `FaultyStore` fails what it is told to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use dj_core::Result;
use dj_core::store::{
    Capabilities, GetOptions, GetResult, MultipartUpload, ObjectMeta, PutMode, PutOptions,
    PutResult, Store, StoreExt, StorePath,
};
use dj_store_object_store::ObjectStoreAdapter;
use dj_testkit::{self as testkit, Fault, FaultyStore};
use futures::StreamExt;
use futures::stream::BoxStream;

fn memory(name: &str) -> Arc<dyn Store> {
    Arc::new(ObjectStoreAdapter::unprefixed(
        name,
        Arc::new(object_store::memory::InMemory::new()),
    ))
}

/// Ways to get the contract wrong.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bug {
    /// Create-if-absent overwrites.
    CreateOverwrites,
    /// Listing matches string prefixes, not segments.
    StringPrefixList,
    /// A missing key is a generic error, not NotFound.
    MissingIsGeneric,
    /// The last byte of every read is flipped.
    CorruptReads,
}

#[derive(Debug)]
struct Broken {
    inner: Arc<dyn Store>,
    bug: Bug,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "broken {}", self.inner)
    }
}

#[async_trait]
impl Store for Broken {
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
        let options = if self.bug == Bug::CreateOverwrites {
            options.with_mode(PutMode::Overwrite)
        } else {
            options
        };
        self.inner.put_opts(path, payload, options).await
    }
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        match self.inner.get_opts(path, options).await {
            Err(dj_core::Error::NotFound { store, path }) if self.bug == Bug::MissingIsGeneric => {
                Err(dj_core::Error::Store {
                    store,
                    operation: "get",
                    path,
                    retryable: false,
                    source: "gone".into(),
                })
            }
            Ok(mut r) if self.bug == Bug::CorruptReads => {
                let mut data = r
                    .stream
                    .next()
                    .await
                    .transpose()?
                    .unwrap_or_default()
                    .to_vec();
                while let Some(c) = r.stream.next().await {
                    data.extend_from_slice(&c?);
                }
                if let Some(last) = data.last_mut() {
                    *last ^= 1;
                }
                r.stream = futures::stream::once(async move { Ok(Bytes::from(data)) }).boxed();
                Ok(r)
            }
            other => other,
        }
    }
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        self.inner.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.inner.delete(path).await
    }
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.bug != Bug::StringPrefixList {
            return self.inner.list(prefix);
        }
        let p = prefix.map(|p| p.as_str().to_string()).unwrap_or_default();
        self.inner
            .list(None)
            .filter(move |m| {
                let keep = m.as_ref().map_or(true, |m| m.path.as_str().starts_with(&p));
                async move { keep }
            })
            .boxed()
    }
    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart(path).await
    }
}

/// Run one suite function on a broken store in its own task and return the panic message.
async fn must_fail<F, Fut>(bug: Bug, check: F) -> String
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let store: Arc<dyn Store> = Arc::new(Broken {
        inner: memory("wonky"),
        bug,
    });
    let err = tokio::spawn(check(store))
        .await
        .expect_err("the suite accepted a broken store");
    let payload = err.into_panic();
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        msg.contains("[wonky]"),
        "{bug:?}: message must name the store: {msg}"
    );
    msg
}

#[tokio::test]
async fn the_suite_passes_a_correct_store() {
    testkit::run_all(memory("fine").as_ref()).await;
}

#[tokio::test]
async fn the_suite_catches_broken_stores() {
    let msg = must_fail(Bug::CreateOverwrites, |s| async move {
        testkit::create_if_absent_race(s.as_ref(), "p", 4).await
    })
    .await;
    assert!(msg.contains("exactly one"), "{msg}");
    let msg = must_fail(Bug::StringPrefixList, |s| async move {
        testkit::list(s.as_ref(), "p").await
    })
    .await;
    assert!(msg.contains("list by prefix"), "{msg}");
    let msg = must_fail(Bug::MissingIsGeneric, |s| async move {
        testkit::put_get_delete(s.as_ref(), "p").await
    })
    .await;
    assert!(msg.contains("get after delete"), "{msg}");
    let msg = must_fail(Bug::CorruptReads, |s| async move {
        testkit::multipart(s.as_ref(), "p", 12 * 1024 * 1024).await
    })
    .await;
    assert!(msg.contains("multipart content hash"), "{msg}");
}

#[tokio::test]
async fn faulty_store_fails_the_nth_put_only() {
    let store = FaultyStore::new(memory("m"), Fault::PutNth(2));
    let k = StorePath::parse("k").unwrap();
    store.put(&k, Bytes::from_static(b"1")).await.unwrap();
    let err = store.put(&k, Bytes::from_static(b"2")).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("store `m` failed to put `k`")
            && err.to_string().contains("injected fault"),
        "{err}"
    );
    store.put(&k, Bytes::from_static(b"3")).await.unwrap();
    assert_eq!(&store.get(&k).await.unwrap()[..], b"3");
    assert_eq!(store.puts(), 3);
}

#[tokio::test]
async fn faulty_store_fails_from_the_nth_put_on() {
    let store = FaultyStore::new(memory("m"), Fault::PutFromNth(2));
    let k = StorePath::parse("k").unwrap();
    store.put(&k, Bytes::from_static(b"1")).await.unwrap();
    for _ in 0..3 {
        assert!(store.put(&k, Bytes::from_static(b"x")).await.is_err());
    }
    assert_eq!(&store.get(&k).await.unwrap()[..], b"1");
}

#[tokio::test]
async fn faulty_store_fails_lists_and_gets() {
    let inner = memory("m");
    let k = StorePath::parse("a/k").unwrap();
    inner.put(&k, Bytes::from_static(b"1")).await.unwrap();
    let store = FaultyStore::new(Arc::clone(&inner), Fault::List);
    let err = store.list_all(None).await.unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("list"),
        "{err}"
    );
    assert_eq!(&store.get(&k).await.unwrap()[..], b"1");
    let store = FaultyStore::new(inner, Fault::Get);
    assert!(store.get(&k).await.unwrap_err().is_retryable());
    assert_eq!(store.list_all(None).await.unwrap().len(), 1);
    assert!(store.exists(&k).await.unwrap());
}

#[test]
fn noise_has_the_length_asked_for_and_differs_per_seed() {
    for len in [0, 1, 7, 8, 9, 1000] {
        assert_eq!(testkit::noise(3, len).len(), len);
    }
    assert_eq!(testkit::noise(3, 1000), testkit::noise(3, 1000));
    assert_ne!(testkit::noise(3, 1000), testkit::noise(4, 1000));
    // A prefix of a longer run is the shorter run.
    assert_eq!(testkit::noise(5, 1003)[..13], testkit::noise(5, 13)[..]);
}
