//! The `btree` store passes the conformance suite every dj-rs store passes.
#![allow(clippy::unwrap_used, missing_docs)]

use dj_core::config::{SpecContext, StoreSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn btree_store_passes_the_conformance_suite() {
    let spec = StoreSpec::new("conformance", "btree", "conformance");
    let store = dj_store_btree::create(&spec, &SpecContext::default()).unwrap();
    dj_testkit::run_all(store.as_ref()).await;
}
