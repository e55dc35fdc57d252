//! The memory store passes the conformance suite, directly and through its protocol.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use dj_core::config::{Config, StoreSpec};
use dj_core::registry::StoreSet;
use dj_core::store::{StoreExt, StorePath};
use dj_store_memory as _;
use dj_store_memory::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    dj_testkit::run_all(&MemoryStore::new("mem")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_through_the_registry_with_a_location_prefix() {
    let mut config = Config::default();
    config
        .stores
        .specs
        .insert("m".into(), StoreSpec::new("m", "memory", "lab/prefix"));
    let set = StoreSet::new(config);
    let store = set.get("m").unwrap();
    assert_eq!(store.name(), "m");
    dj_testkit::run_all(store.as_ref()).await;
}

#[tokio::test]
async fn clones_share_objects_and_stores_are_separate() {
    let a = MemoryStore::new("a");
    let a2 = a.clone();
    let b = MemoryStore::new("b");
    let k = StorePath::parse("k").unwrap();
    a.put(&k, Bytes::from_static(b"1")).await.unwrap();
    assert_eq!(&a2.get(&k).await.unwrap()[..], b"1");
    let err = b.get(&k).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.to_string(), "object `k` not found in store `b`");
}

#[test]
fn bad_location_prefix_is_an_error() {
    let err = MemoryStore::with_prefix("m", "a/../b").unwrap_err();
    assert!(err.to_string().contains("a/../b"), "{err}");
}
