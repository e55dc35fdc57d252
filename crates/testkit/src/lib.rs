//! The store conformance suite, and a fault-injecting store wrapper for tests.
//!
//! Every store crate runs [`run_all`] against a real instance in its tests, the way
//! `object_store`'s `integration` module is used. Each check is a public async fn over
//! `&dyn Store` that panics, like `assert!`, with a message that names the store and what went
//! wrong (this crate is test support). Keys are
//! placed under a prefix unique to each run, so several runs can share one bucket or directory,
//! and [`run_all`] removes what it wrote.
//!
//! [`FaultyStore`] wraps any store and makes chosen operations fail, for tests of what callers
//! do when a store breaks half-way.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use dj_store_object_store::ObjectStoreAdapter;
//!
//! let store = ObjectStoreAdapter::new("mem", Arc::new(object_store::memory::InMemory::new()), None).unwrap();
//! dj_testkit::put_get_delete(&store, "doc").await;
//! # }
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;

use dj_core::config::StoreSpec;
use dj_core::error::{Error, Result};
use dj_core::store::{
    Capabilities, GetOptions, GetRange, GetResult, IncompleteRemoval, IncompleteWrite,
    MultipartUpload, ObjectMeta, PutOptions, PutOutcome, PutResult, Store, StoreExt, StorePath,
};

fn key(prefix: &str, rest: &str) -> StorePath {
    StorePath::parse(format!("{prefix}/{rest}")).unwrap()
}

fn pattern(len: usize, seed: u8) -> Bytes {
    pattern_at(0, len, seed)
}

/// Bytes `offset..offset + len` of a deterministic, non-repeating-per-part test pattern.
fn pattern_at(offset: usize, len: usize, seed: u8) -> Bytes {
    (offset..offset + len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 16) as u8))
        .collect::<Vec<u8>>()
        .into()
}

/// Read an object as a stream, returning its length and BLAKE3 hash.
async fn stream_hash(store: &dyn Store, k: &StorePath) -> (u64, blake3::Hash) {
    let s = store.name();
    let r = store
        .get_opts(k, GetOptions::default())
        .await
        .unwrap_or_else(|e| panic!("[{s}] get {k}: {e}"));
    let mut hasher = blake3::Hasher::new();
    let mut len = 0u64;
    let mut chunks = r.stream;
    while let Some(c) = chunks.next().await {
        let c = c.unwrap_or_else(|e| panic!("[{s}] reading {k}: {e}"));
        len += c.len() as u64;
        hasher.update(&c);
    }
    (len, hasher.finalize())
}

/// A spec for the loopback S3 server `cargo xtask` starts (`DJ_TEST_S3_ENDPOINT`, `_BUCKET`,
/// `_ACCESS_KEY`, `_SECRET_KEY`), as store `name` of `protocol` under `location`. `None`, with a
/// message, when `DJ_TEST_S3_ENDPOINT` is unset; under `CI=true` that fails the test instead.
pub fn s3_spec_from_env(name: &str, protocol: &str, location: &str) -> Option<StoreSpec> {
    let Ok(endpoint) = std::env::var("DJ_TEST_S3_ENDPOINT") else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "DJ_TEST_S3_ENDPOINT must be set under CI=true (run `cargo xtask test`)"
        );
        eprintln!("skipped: DJ_TEST_S3_ENDPOINT not set (run `cargo xtask test`)");
        return None;
    };
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| panic!("{k} must be set with DJ_TEST_S3_ENDPOINT"))
    };
    let mut spec = StoreSpec::new(name, protocol, location);
    spec.options.insert("endpoint".into(), endpoint.into());
    spec.options
        .insert("bucket".into(), var("DJ_TEST_S3_BUCKET").into());
    spec.options
        .insert("access_key".into(), var("DJ_TEST_S3_ACCESS_KEY").into());
    spec.options
        .insert("secret_key".into(), var("DJ_TEST_S3_SECRET_KEY").into());
    Some(spec)
}

/// `len` pseudo-random bytes (xorshift64, eight bytes per step), distinct per `seed` and cheap
/// enough for gigabytes of benchmark data, and incompressible.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut data = vec![0u8; len];
    let mut words = data.chunks_exact_mut(8);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x.to_le_bytes()
    };
    for w in &mut words {
        w.copy_from_slice(&next());
    }
    let tail = words.into_remainder();
    let last = next();
    tail.copy_from_slice(&last[..tail.len()]);
    data
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
    // A key that is only a prefix of other keys is not an object.
    store
        .put(&key(prefix, "dir/child"), Bytes::from_static(b"c"))
        .await
        .unwrap();
    let err = store.get(&key(prefix, "dir")).await.unwrap_err();
    assert!(
        err.is_not_found(),
        "[{s}] get of a key that only prefixes others: {err}"
    );
    assert!(
        matches!(
            store.head(&key(prefix, "dir")).await,
            Err(Error::NotFound { .. })
        ),
        "[{s}] head of a key that only prefixes others"
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
        .get_opts(&k, GetOptions::from(GetRange::Offset(99_990)))
        .await
        .unwrap();
    assert_eq!(r.range, 99_990..100_000, "[{s}] offset range reported");
    assert_eq!(
        r.bytes().await.unwrap(),
        data.slice(99_990..),
        "[{s}] offset range"
    );
    let r = store
        .get_opts(&k, GetOptions::from(GetRange::Suffix(5)))
        .await
        .unwrap();
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
    // A range that starts past the end is an error about the request: not "not found", and not
    // worth retrying.
    match store
        .get_opts(&k, GetOptions::from(GetRange::Offset(200_000)))
        .await
    {
        Ok(r) => panic!("[{s}] range past the end returned {:?}", r.range),
        Err(e) => assert!(
            !e.is_not_found() && !e.is_retryable(),
            "[{s}] range past the end: {e}"
        ),
    }
    let err = store
        .get_opts(
            &key(prefix, "no-such"),
            GetOptions::from(GetRange::Bounded(0..10)),
        )
        .await
        .unwrap_err();
    assert!(
        err.is_not_found(),
        "[{s}] ranged get of a missing key: {err}"
    );
}

/// Streaming reads yield the object in chunks that add up to it.
pub async fn stream(store: &dyn Store, prefix: &str) {
    let s = store.name().to_string();
    let k = key(prefix, "streamed");
    let data = pattern(3 * 1024 * 1024 + 7, 3);
    store.put(&k, data.clone()).await.unwrap();
    let r = store.get_opts(&k, GetOptions::default()).await.unwrap();
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

/// Create-if-absent: of `writers` concurrent puts to one key exactly one creates it, the others
/// are told it exists, and the stored content is the winner's.
///
/// The puts are started together and polled concurrently; stores that do blocking work
/// (`LocalFileSystem`) or network requests (S3) run them in parallel.
pub async fn create_if_absent_race(store: &dyn Store, prefix: &str, writers: usize) {
    let s = store.name().to_string();
    let k = key(prefix, "raced");
    let attempts = (0..writers).map(|i| {
        let k = k.clone();
        async move {
            let data = Bytes::from(format!("writer {i}").into_bytes());
            (i, store.put_if_absent(&k, data).await)
        }
    });
    let mut winners = Vec::new();
    for (i, r) in futures::future::join_all(attempts).await {
        match r.unwrap_or_else(|e| panic!("[{s}] racing put {i} failed: {e}")) {
            PutOutcome::Created => winners.push(i),
            PutOutcome::AlreadyExisted => {}
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "[{s}] exactly one of {writers} writers must create the object, got {winners:?}"
    );
    let stored = store.get(&k).await.unwrap();
    assert_eq!(
        stored,
        Bytes::from(format!("writer {}", winners[0]).into_bytes()),
        "[{s}] the stored content must be the winner's"
    );
    let err = store
        .put_opts(&k, Bytes::from_static(b"late"), PutOptions::create())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AlreadyExists { .. }),
        "[{s}] create on existing key: {err}"
    );
    assert!(
        err.to_string().contains(k.as_str()),
        "[{s}] AlreadyExists must name the key: {err}"
    );
    // Overwrite still replaces it.
    store.put(&k, Bytes::from_static(b"over")).await.unwrap();
    assert_eq!(
        &store.get(&k).await.unwrap()[..],
        b"over",
        "[{s}] overwrite after create"
    );
}

/// A multipart upload of `total` bytes in parts of the store's minimum size (at least 5 MiB) reads
/// back with the same length and BLAKE3 hash; nothing is visible before completion; an aborted
/// upload leaves nothing. Parts are generated one at a time, so the test holds at most the parts
/// in flight in memory.
pub async fn multipart(store: &dyn Store, prefix: &str, total: usize) {
    let s = store.name().to_string();
    let part = store.capabilities().min_part_size.max(5 * 1024 * 1024);
    let k = key(prefix, "multipart.bin");
    let mut up = store
        .put_multipart(&k)
        .await
        .unwrap_or_else(|e| panic!("[{s}] start multipart: {e}"));
    let mut hasher = blake3::Hasher::new();
    let mut offset = 0;
    let mut parts = 0;
    while offset < total {
        let len = part.min(total - offset);
        let chunk = pattern_at(offset, len, 4);
        hasher.update(&chunk);
        up.put_part(chunk)
            .await
            .unwrap_or_else(|e| panic!("[{s}] put part {parts}: {e}"));
        offset += len;
        parts += 1;
    }
    assert!(
        total <= part || parts > 1,
        "[{s}] the upload must have several parts"
    );
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
    let (len, hash) = stream_hash(store, &k).await;
    assert_eq!(len, total as u64, "[{s}] multipart bytes read back");
    assert_eq!(hash, hasher.finalize(), "[{s}] multipart content hash");
    // Ranged reads across a part boundary.
    if total > part + 8 {
        let got = store
            .get_range(&k, (part - 8) as u64..(part + 8) as u64)
            .await
            .unwrap();
        assert_eq!(
            got,
            pattern_at(part - 8, 16, 4),
            "[{s}] range across a part boundary"
        );
    }

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
    let (len, hash) = stream_hash(store, &k).await;
    assert_eq!(len, data.len() as u64, "[{s}] put_stream length");
    assert_eq!(hash, blake3::hash(&data), "[{s}] put_stream content hash");
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

/// The whole suite, with 8 racing writers and a 64 MiB multipart upload, under fresh prefixes
/// that are removed afterwards.
pub async fn run_all(store: &dyn Store) {
    let prefix = unique_prefix(store.name());
    put_get_delete(store, &prefix).await;
    ranges(store, &prefix).await;
    stream(store, &prefix).await;
    odd_keys(store, &prefix).await;
    create_if_absent_race(store, &prefix, 8).await;
    multipart(store, &prefix, 64 * 1024 * 1024).await;
    put_stream(store, &prefix).await;
    cleanup(store, &prefix).await;
    let left = store
        .list_all(Some(&StorePath::parse(&prefix).unwrap()))
        .await
        .unwrap();
    assert!(left.is_empty(), "[{}] cleanup left {left:?}", store.name());
    let list_prefix = unique_prefix(store.name());
    list(store, &list_prefix).await;
    cleanup(store, &list_prefix).await;
}

/// What a [`FaultyStore`] breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Only the Nth put (1-based) fails.
    PutNth(usize),
    /// The Nth put (1-based) and every later one fail.
    PutFromNth(usize),
    /// Every listing fails (of objects and of leftovers of interrupted writes).
    List,
    /// Only listings of leftovers of interrupted writes ([`Store::list_incomplete`]) fail.
    ListIncomplete,
    /// Every get fails.
    Get,
    /// The Nth multipart part (1-based, counted over all uploads) fails, half-way through an
    /// upload.
    PartNth(usize),
    /// The first N puts fail, the later ones succeed (a transient outage, for retry tests).
    PutFirst(usize),
    /// The first N gets fail, the later ones succeed.
    GetFirst(usize),
    /// The first N listings of objects fail before yielding anything, the later ones succeed.
    ListFirst(usize),
}

/// Wraps a store and fails chosen operations with a retryable [`Error::Store`] whose source says
/// `injected fault` (or a permanent one, after [`FaultyStore::permanent`]), for fault tests.
/// Puts, gets, listings and multipart parts are counted whether or not they fail; heads and
/// deletes pass through.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use dj_store_object_store::ObjectStoreAdapter;
/// use dj_core::store::{StoreExt, StorePath};
/// use dj_testkit::{Fault, FaultyStore};
///
/// let inner = Arc::new(ObjectStoreAdapter::unprefixed("m", Arc::new(object_store::memory::InMemory::new())));
/// let store = FaultyStore::new(inner, Fault::PutNth(2));
/// let k = StorePath::parse("k").unwrap();
/// assert!(store.put(&k, "1".into()).await.is_ok());
/// assert!(store.put(&k, "2".into()).await.unwrap_err().is_retryable());
/// assert!(store.put(&k, "3".into()).await.is_ok());
/// # }
/// ```
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    fault: Fault,
    retryable: bool,
    puts: AtomicUsize,
    gets: AtomicUsize,
    lists: AtomicUsize,
    parts: Arc<AtomicUsize>,
}

impl FaultyStore {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Store>, fault: Fault) -> Self {
        FaultyStore {
            inner,
            fault,
            retryable: true,
            puts: AtomicUsize::new(0),
            gets: AtomicUsize::new(0),
            lists: AtomicUsize::new(0),
            parts: Arc::default(),
        }
    }

    /// Make the injected faults permanent: not retryable.
    pub fn permanent(mut self) -> Self {
        self.retryable = false;
        self
    }

    /// How many puts were attempted.
    pub fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }

    /// How many gets were attempted.
    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    /// How many listings of objects were started.
    pub fn lists(&self) -> usize {
        self.lists.load(Ordering::SeqCst)
    }

    fn injected(&self, operation: &'static str, path: &str) -> Error {
        Error::Store {
            store: self.inner.name().to_string(),
            operation,
            path: path.to_string(),
            retryable: self.retryable,
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
    async fn put_opts(
        &self,
        path: &StorePath,
        payload: Bytes,
        options: PutOptions,
    ) -> Result<PutResult> {
        let n = self.puts.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = match self.fault {
            Fault::PutNth(k) => n == k,
            Fault::PutFromNth(k) => n >= k,
            Fault::PutFirst(k) => n <= k,
            _ => false,
        };
        if fail {
            return Err(self.injected("put", path.as_str()));
        }
        self.inner.put_opts(path, payload, options).await
    }
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        let n = self.gets.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fault == Fault::Get || matches!(self.fault, Fault::GetFirst(k) if n <= k) {
            return Err(self.injected("get", path.as_str()));
        }
        self.inner.get_opts(path, options).await
    }
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        self.inner.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.inner.delete(path).await
    }
    async fn delete_if_older(
        &self,
        path: &StorePath,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<dj_core::store::ConditionalDelete> {
        self.inner.delete_if_older(path, cutoff).await
    }
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        let n = self.lists.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fault == Fault::List || matches!(self.fault, Fault::ListFirst(k) if n <= k) {
            let err = self.injected("list", prefix.map_or("", StorePath::as_str));
            return futures::stream::once(async move { Err(err) }).boxed();
        }
        self.inner.list(prefix)
    }
    fn list_incomplete(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, Result<IncompleteWrite>> {
        if matches!(self.fault, Fault::List | Fault::ListIncomplete) {
            let err = self.injected(
                "list incomplete writes",
                prefix.map_or("", StorePath::as_str),
            );
            return futures::stream::once(async move { Err(err) }).boxed();
        }
        self.inner.list_incomplete(prefix)
    }
    async fn remove_incomplete(
        &self,
        write: &IncompleteWrite,
        not_after: DateTime<Utc>,
    ) -> Result<IncompleteRemoval> {
        self.inner.remove_incomplete(write, not_after).await
    }
    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart(path).await?;
        Ok(Box::new(FaultyUpload {
            inner,
            fail_at: match self.fault {
                Fault::PartNth(k) => Some(k),
                _ => None,
            },
            parts: Arc::clone(&self.parts),
            retryable: self.retryable,
            store: self.inner.name().to_string(),
            path: path.as_str().to_string(),
        }))
    }
}

/// A multipart upload of a [`FaultyStore`].
#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    fail_at: Option<usize>,
    parts: Arc<AtomicUsize>,
    retryable: bool,
    store: String,
    path: String,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    async fn put_part(&mut self, data: Bytes) -> Result<()> {
        let n = self.parts.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_at == Some(n) {
            return Err(Error::Store {
                store: self.store.clone(),
                operation: "put_part",
                path: self.path.clone(),
                retryable: self.retryable,
                source: "injected fault".into(),
            });
        }
        self.inner.put_part(data).await
    }
    async fn complete(self: Box<Self>) -> Result<PutResult> {
        self.inner.complete().await
    }
    async fn abort(self: Box<Self>) -> Result<()> {
        self.inner.abort().await
    }
}

/// What a [`CountingStore`] counted. Shared, so a test keeps it after handing the store away.
#[derive(Debug, Default)]
pub struct StoreCounts {
    gets: AtomicUsize,
    ranged_gets: AtomicUsize,
    bytes: std::sync::atomic::AtomicU64,
    heads: AtomicUsize,
    puts: AtomicUsize,
    multipart_uploads: AtomicUsize,
    parts: AtomicUsize,
}

impl StoreCounts {
    /// Reads started (`get_opts`).
    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }
    /// Reads of a range.
    pub fn ranged_gets(&self) -> usize {
        self.ranged_gets.load(Ordering::SeqCst)
    }
    /// Bytes the reads' streams returned.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }
    /// Heads.
    pub fn heads(&self) -> usize {
        self.heads.load(Ordering::SeqCst)
    }
    /// Requests that read: gets and heads.
    pub fn reads(&self) -> usize {
        self.gets() + self.heads()
    }
    /// Whole-object puts.
    pub fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }
    /// Multipart uploads started.
    pub fn multipart_uploads(&self) -> usize {
        self.multipart_uploads.load(Ordering::SeqCst)
    }
    /// Multipart parts sent.
    pub fn parts(&self) -> usize {
        self.parts.load(Ordering::SeqCst)
    }
    /// Start counting from zero.
    pub fn reset(&self) {
        for c in [
            &self.gets,
            &self.ranged_gets,
            &self.heads,
            &self.puts,
            &self.multipart_uploads,
            &self.parts,
        ] {
            c.store(0, Ordering::SeqCst);
        }
        self.bytes.store(0, Ordering::SeqCst);
    }
}

/// Wraps a store and counts requests and bytes ([`StoreCounts`]): reads (and how many bytes their
/// streams returned, so ranged reads count only what they fetched), heads, puts, multipart
/// uploads and parts. Deletes and listings pass through. For tests and benches that bound how
/// much a lazy read transfers or how an upload is split.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    counts: Arc<StoreCounts>,
}

impl CountingStore {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        CountingStore {
            inner,
            counts: Arc::default(),
        }
    }

    /// The counters.
    pub fn counts(&self) -> &Arc<StoreCounts> {
        &self.counts
    }

    /// Reads started since the last reset.
    pub fn gets(&self) -> usize {
        self.counts.gets()
    }

    /// Bytes returned by reads since the last reset.
    pub fn bytes(&self) -> u64 {
        self.counts.bytes()
    }

    /// Start counting from zero.
    pub fn reset(&self) {
        self.counts.reset();
    }
}

impl fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingStore")
            .field("inner", &self.inner)
            .field("counts", &self.counts)
            .finish()
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "counting {}", self.inner)
    }
}

/// A multipart upload of a [`CountingStore`].
#[derive(Debug)]
struct CountingUpload {
    inner: Box<dyn MultipartUpload>,
    counts: Arc<StoreCounts>,
}

#[async_trait]
impl MultipartUpload for CountingUpload {
    async fn put_part(&mut self, data: Bytes) -> Result<()> {
        self.counts.parts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_part(data).await
    }
    async fn complete(self: Box<Self>) -> Result<PutResult> {
        self.inner.complete().await
    }
    async fn abort(self: Box<Self>) -> Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl Store for CountingStore {
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
        self.counts.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.put_opts(path, payload, options).await
    }
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        self.counts.gets.fetch_add(1, Ordering::SeqCst);
        if options.range.is_some() {
            self.counts.ranged_gets.fetch_add(1, Ordering::SeqCst);
        }
        let mut r = self.inner.get_opts(path, options).await?;
        let counts = Arc::clone(&self.counts);
        r.stream = r
            .stream
            .inspect(move |b| {
                if let Ok(b) = b {
                    counts.bytes.fetch_add(b.len() as u64, Ordering::SeqCst);
                }
            })
            .boxed();
        Ok(r)
    }
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        self.counts.heads.fetch_add(1, Ordering::SeqCst);
        self.inner.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.inner.delete(path).await
    }
    async fn delete_if_older(
        &self,
        path: &StorePath,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<dj_core::store::ConditionalDelete> {
        self.inner.delete_if_older(path, cutoff).await
    }
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    fn list_incomplete(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, Result<IncompleteWrite>> {
        self.inner.list_incomplete(prefix)
    }
    async fn remove_incomplete(
        &self,
        write: &IncompleteWrite,
        not_after: DateTime<Utc>,
    ) -> Result<IncompleteRemoval> {
        self.inner.remove_incomplete(write, not_after).await
    }
    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        self.counts.multipart_uploads.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(CountingUpload {
            inner: self.inner.put_multipart(path).await?,
            counts: Arc::clone(&self.counts),
        }))
    }
}
