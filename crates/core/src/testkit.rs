//! The store conformance suite, and a fault-injecting store wrapper for tests.
//!
//! Every store crate runs [`run_all`] against a real instance in its tests. Each check panics with
//! a message naming the store and what went wrong, like `assert!` (this module is test support;
//! it is compiled only with the `testkit` feature). Keys are placed under a prefix unique to each
//! run, so several runs can share one bucket or directory.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use dj_core::object_store_adapter::ObjectStoreAdapter;
//! # #[cfg(feature = "object-store")] {
//! let store = ObjectStoreAdapter::new("mem", Arc::new(object_store::memory::InMemory::new()), None).unwrap();
//! dj_core::testkit::put_get_delete(&store, "doc").await;
//! # }
//! # }
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::error::{Error, Result};
use crate::store::{
    Capabilities, GetRange, GetResult, MultipartUpload, ObjectMeta, PutMode, PutOutcome, PutResult,
    Store, StoreExt, StorePath,
};

fn key(prefix: &str, rest: &str) -> StorePath {
    StorePath::parse(format!("{prefix}/{rest}")).unwrap()
}

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

/// A unique key prefix for one run of the suite.
pub fn unique_prefix(label: &str) -> String {
    format!("conformance-{label}-{}", uuid::Uuid::new_v4().simple())
}

/// put, get, head, overwrite, delete; missing keys give `NotFound` on get and head, and deleting a
/// missing key succeeds.
pub async fn put_get_delete(store: &dyn Store, prefix: &str) {
    let s = store.name().to_string();
    let k = key(prefix, "a/object.bin");
    let data = pattern(10_000, 1);
    store
        .put(&k, data.clone())
        .await
        .unwrap_or_else(|e| panic!("[{s}] put failed: {e}"));
    assert_eq!(
        store.get(&k).await.unwrap(),
        data,
        "[{s}] get returned other bytes"
    );
    let meta = store.head(&k).await.unwrap();
    assert_eq!(meta.size, 10_000, "[{s}] head size");
    assert_eq!(meta.path, k, "[{s}] head path");
    store.put(&k, Bytes::from_static(b"second")).await.unwrap();
    assert_eq!(
        &store.get(&k).await.unwrap()[..],
        b"second",
        "[{s}] overwrite did not replace"
    );
    store.delete(&k).await.unwrap();
    assert!(
        matches!(store.get(&k).await, Err(Error::NotFound { .. })),
        "[{s}] get after delete"
    );
    assert!(
        matches!(store.head(&k).await, Err(Error::NotFound { .. })),
        "[{s}] head after delete"
    );
    assert!(
        !store.exists(&k).await.unwrap(),
        "[{s}] exists after delete"
    );
    store
        .delete(&k)
        .await
        .unwrap_or_else(|e| panic!("[{s}] delete of a missing key must succeed: {e}"));
    let err = store.get(&key(prefix, "never/written")).await.unwrap_err();
    assert!(err.is_not_found(), "[{s}] missing key: {err}");
    assert!(
        err.to_string().contains("never/written"),
        "[{s}] NotFound must name the key: {err}"
    );
    // Empty objects are objects too.
    let e = key(prefix, "empty");
    store.put(&e, Bytes::new()).await.unwrap();
    assert_eq!(
        store.head(&e).await.unwrap().size,
        0,
        "[{s}] empty object size"
    );
    assert!(
        store.get(&e).await.unwrap().is_empty(),
        "[{s}] empty object content"
    );
}

/// Byte ranges: bounded, offset, suffix, and a range past the end is clamped.
pub async fn ranges(store: &dyn Store, prefix: &str) {
    let s = store.name().to_string();
    let k = key(prefix, "ranged");
    let data = pattern(100_000, 2);
    store.put(&k, data.clone()).await.unwrap();
    assert_eq!(
        store.get_range(&k, 10..20).await.unwrap(),
        data.slice(10..20),
        "[{s}] bounded range"
    );
    let r = store
        .get_opts(&k, Some(GetRange::Offset(99_990)))
        .await
        .unwrap();
    assert_eq!(r.range, 99_990..100_000, "[{s}] offset range reported");
    assert_eq!(
        r.bytes().await.unwrap(),
        data.slice(99_990..),
        "[{s}] offset range"
    );
    let r = store.get_opts(&k, Some(GetRange::Suffix(5))).await.unwrap();
    assert_eq!(
        r.bytes().await.unwrap(),
        data.slice(99_995..),
        "[{s}] suffix range"
    );
    assert_eq!(
        store.get_range(&k, 99_000..200_000).await.unwrap(),
        data.slice(99_000..),
        "[{s}] clamped range"
    );
}

/// Streaming reads yield the object in chunks that add up to it.
pub async fn stream(store: &dyn Store, prefix: &str) {
    let s = store.name().to_string();
    let k = key(prefix, "streamed");
    let data = pattern(3 * 1024 * 1024 + 7, 3);
    store.put(&k, data.clone()).await.unwrap();
    let r = store.get_opts(&k, None).await.unwrap();
    assert_eq!(r.meta.size, data.len() as u64, "[{s}] stream meta size");
    let mut got = Vec::with_capacity(data.len());
    let mut chunks = r.stream;
    while let Some(c) = chunks.next().await {
        got.extend_from_slice(&c.unwrap());
    }
    assert_eq!(got, &data[..], "[{s}] streamed bytes");
}

/// Listing by prefix is recursive and segment-wise (`a/b` does not list `a/bc`).
pub async fn list(store: &dyn Store, prefix: &str) {
    let s = store.name().to_string();
    for k in ["d/x", "d/sub/y", "dd/z"] {
        store
            .put(&key(prefix, k), Bytes::from_static(b"1"))
            .await
            .unwrap();
    }
    let mut listed: Vec<String> = store
        .list_all(Some(&key(prefix, "d")))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path.to_string())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![format!("{prefix}/d/sub/y"), format!("{prefix}/d/x")],
        "[{s}] list by prefix"
    );
    let all = store
        .list_all(Some(&StorePath::parse(prefix).unwrap()))
        .await
        .unwrap();
    assert_eq!(all.len(), 3, "[{s}] list of the run prefix: {all:?}");
    assert!(all.iter().all(|m| m.size == 1), "[{s}] listed sizes");
    let none = store
        .list_all(Some(&key(prefix, "nothing-here")))
        .await
        .unwrap();
    assert!(none.is_empty(), "[{s}] listing an empty prefix");
}

/// Keys with spaces, unicode, `=` and `%` round-trip exactly, through put, get and list.
pub async fn odd_keys(store: &dyn Store, prefix: &str) {
    let s = store.name().to_string();
    for rest in [
        "with space/file name.txt",
        "ünïcødé/日本語/файл",
        "pk=a%2Fb%20c/obj_ZkRa_cGg.txt",
        "subject=m 1/x",
    ] {
        let k = key(prefix, rest);
        store
            .put(&k, Bytes::from(rest.as_bytes().to_vec()))
            .await
            .unwrap_or_else(|e| panic!("[{s}] put {rest:?}: {e}"));
        assert_eq!(
            &store.get(&k).await.unwrap()[..],
            rest.as_bytes(),
            "[{s}] get {rest:?}"
        );
        let parent = key(prefix, rest.split('/').next().unwrap_or(rest));
        let listed = store.list_all(Some(&parent)).await.unwrap();
        assert!(
            listed.iter().any(|m| m.path == k),
            "[{s}] {rest:?} not listed under its parent: {listed:?}"
        );
    }
}

/// Create-if-absent: of `writers` racing puts to one key exactly one creates it, the others are
/// told it exists, and the stored content is the winner's.
pub async fn create_if_absent_race(store: Arc<dyn Store>, prefix: &str, writers: usize) {
    let s = store.name().to_string();
    let k = key(prefix, "raced");
    let mut tasks = Vec::new();
    for i in 0..writers {
        let store = Arc::clone(&store);
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            let data = Bytes::from(format!("writer {i}").into_bytes());
            (i, store.put_if_absent(&k, data).await)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match r.unwrap_or_else(|e| panic!("[{s}] racing put failed: {e}")) {
            PutOutcome::Created => winners.push(i),
            PutOutcome::AlreadyExisted => {}
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "[{s}] exactly one writer must create the object, got {winners:?}"
    );
    let stored = store.get(&k).await.unwrap();
    assert_eq!(
        stored,
        Bytes::from(format!("writer {}", winners[0]).into_bytes()),
        "[{s}] winner's content"
    );
    let err = store
        .put_opts(&k, Bytes::from_static(b"late"), PutMode::Create)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AlreadyExists { .. }),
        "[{s}] create on existing key: {err}"
    );
}

/// A multipart upload of `total` bytes in several parts reads back identically, and nothing is
/// visible before completion; an aborted upload leaves nothing.
pub async fn multipart(store: &dyn Store, prefix: &str, total: usize) {
    let s = store.name().to_string();
    let part = store.capabilities().min_part_size.max(5 * 1024 * 1024);
    let k = key(prefix, "multipart.bin");
    let data = pattern(total, 4);
    let mut up = store.put_multipart(&k).await.unwrap();
    for chunk in data.chunks(part) {
        up.put_part(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert!(
        !store.exists(&k).await.unwrap(),
        "[{s}] multipart object visible before complete"
    );
    up.complete()
        .await
        .unwrap_or_else(|e| panic!("[{s}] complete: {e}"));
    assert_eq!(
        store.head(&k).await.unwrap().size,
        total as u64,
        "[{s}] multipart size"
    );
    let back = store.get(&k).await.unwrap();
    assert!(back == data, "[{s}] multipart content differs");

    let k2 = key(prefix, "aborted.bin");
    let mut up = store.put_multipart(&k2).await.unwrap();
    up.put_part(pattern(part, 5)).await.unwrap();
    up.abort()
        .await
        .unwrap_or_else(|e| panic!("[{s}] abort: {e}"));
    assert!(
        !store.exists(&k2).await.unwrap(),
        "[{s}] aborted upload left an object"
    );
}

/// `put_stream` of data of unknown length, in odd-sized chunks.
pub async fn put_stream(store: &dyn Store, prefix: &str) {
    let s = store.name().to_string();
    let k = key(prefix, "streamed-in.bin");
    let data = pattern(12 * 1024 * 1024 + 13, 6);
    let chunks: Vec<Result<Bytes>> = data
        .chunks(777_777)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    store
        .put_stream(&k, futures::stream::iter(chunks).boxed(), 5 * 1024 * 1024)
        .await
        .unwrap();
    assert!(
        store.get(&k).await.unwrap() == data,
        "[{s}] put_stream content differs"
    );
    // A failing source aborts and leaves nothing.
    let k2 = key(prefix, "failed-stream.bin");
    let bad: Vec<Result<Bytes>> = vec![
        Ok(pattern(6 * 1024 * 1024, 7)),
        Err(Error::invalid_path("src", "boom")),
    ];
    let err = store
        .put_stream(&k2, futures::stream::iter(bad).boxed(), 5 * 1024 * 1024)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("boom"),
        "[{s}] stream error passed through: {err}"
    );
    assert!(
        !store.exists(&k2).await.unwrap(),
        "[{s}] failed stream left an object"
    );
}

/// Remove everything below `prefix`.
pub async fn cleanup(store: &dyn Store, prefix: &str) {
    for m in store
        .list_all(Some(&StorePath::parse(prefix).unwrap()))
        .await
        .unwrap()
    {
        store.delete(&m.path).await.unwrap();
    }
}

/// The whole suite, with a 64 MiB multipart upload.
pub async fn run_all(store: Arc<dyn Store>) {
    let prefix = unique_prefix(store.name());
    put_get_delete(store.as_ref(), &prefix).await;
    ranges(store.as_ref(), &prefix).await;
    stream(store.as_ref(), &prefix).await;
    odd_keys(store.as_ref(), &prefix).await;
    create_if_absent_race(Arc::clone(&store), &prefix, 8).await;
    multipart(store.as_ref(), &prefix, 64 * 1024 * 1024).await;
    put_stream(store.as_ref(), &prefix).await;
    cleanup(store.as_ref(), &prefix).await;
    let list_prefix = unique_prefix(store.name());
    list(store.as_ref(), &list_prefix).await;
    cleanup(store.as_ref(), &list_prefix).await;
}

/// What a [`FaultyStore`] breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The Nth put (1-based) and every later one fail.
    PutFromNth(usize),
    /// Every listing fails.
    List,
    /// Every get fails.
    Get,
}

/// Wraps a store and fails chosen operations with a retryable store error, for fault tests.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    fault: Fault,
    puts: AtomicUsize,
}

impl FaultyStore {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Store>, fault: Fault) -> Self {
        FaultyStore {
            inner,
            fault,
            puts: AtomicUsize::new(0),
        }
    }

    /// How many puts were attempted.
    pub fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }

    fn injected(&self, operation: &'static str, path: &str) -> Error {
        Error::Store {
            store: self.inner.name().to_string(),
            operation,
            path: path.to_string(),
            retryable: true,
            source: "injected fault".into(),
        }
    }
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .field("fault", &self.fault)
            .finish()
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "faulty {}", self.inner)
    }
}

#[async_trait]
impl Store for FaultyStore {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn put_opts(&self, path: &StorePath, payload: Bytes, mode: PutMode) -> Result<PutResult> {
        let n = self.puts.fetch_add(1, Ordering::SeqCst) + 1;
        if let Fault::PutFromNth(k) = self.fault
            && n >= k
        {
            return Err(self.injected("put", path.as_str()));
        }
        self.inner.put_opts(path, payload, mode).await
    }
    async fn get_opts(&self, path: &StorePath, range: Option<GetRange>) -> Result<GetResult> {
        if self.fault == Fault::Get {
            return Err(self.injected("get", path.as_str()));
        }
        self.inner.get_opts(path, range).await
    }
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        self.inner.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.inner.delete(path).await
    }
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.fault == Fault::List {
            let err = self.injected("list", prefix.map_or("", StorePath::as_str));
            return futures::stream::once(async move { Err(err) }).boxed();
        }
        self.inner.list(prefix)
    }
    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart(path).await
    }
}
