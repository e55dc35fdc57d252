//! The memory store passes the conformance suite, and is reachable through its protocol.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::sync::Arc;

use dj_core::config::{Config, StoreSpec};
use dj_core::registry::StoreSet;
use dj_store_memory as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    dj_core::testkit::run_all(dj_store_memory::memory_store("mem")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_through_the_registry_with_a_location_prefix() {
    let mut config = Config::default();
    config
        .stores
        .specs
        .insert("m".into(), StoreSpec::new("m", "memory", "lab/prefix"));
    let set = StoreSet::new(Arc::new(config));
    let store = set.get("m").unwrap();
    assert_eq!(store.name(), "m");
    dj_core::testkit::run_all(store).await;
}
