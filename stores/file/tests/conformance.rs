//! The file store passes the conformance suite and lays keys out as plain files.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use dj_core::config::{Config, StoreSpec};
use dj_core::registry::StoreSet;
use dj_core::store::{StoreExt, StorePath};
use dj_store_file as _;
use dj_store_file::FileStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new("files", dir.path()).unwrap();
    dj_testkit::run_all(&store).await;
    // Everything was cleaned up, directories included.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_if_absent_is_exclusive_under_contention() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new("files", dir.path()).unwrap();
    for round in 0..20 {
        dj_testkit::create_if_absent_race(&store, &format!("round{round}"), 16).await;
    }
}

#[tokio::test]
async fn staging_file_names_are_refused_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new("files", dir.path()).unwrap();
    let k = StorePath::parse("a/b#12").unwrap();
    let err = store.put(&k, Bytes::from_static(b"x")).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("a/b#12") && text.contains("files"), "{text}");
    assert!(!err.is_retryable(), "{text}");
    // `#` elsewhere is fine.
    let k = StorePath::parse("a#1/b#x").unwrap();
    store.put(&k, Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(store.file_path(&k), store.root().join("a#1").join("b#x"));
    assert!(store.file_path(&k).is_file());
}

#[tokio::test]
async fn keys_are_literal_file_paths() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new("files", dir.path()).unwrap();
    for key in [
        "_schema/subject=m 1/s/t/o_b1JJ_ZgS",
        "_schema/s/rec/name=a%2Fb%20c/obj_ZkRa_cGg.txt",
        "ü/日本",
    ] {
        store
            .put(&StorePath::parse(key).unwrap(), Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert!(
            dir.path().join(key).is_file(),
            "{key} is not at its literal path"
        );
    }
    // No temporary files are left behind.
    let mut names = Vec::new();
    for e in walk(dir.path()) {
        names.push(e.file_name().unwrap().to_string_lossy().into_owned());
    }
    assert!(names.iter().all(|n| !n.contains('#')), "{names:?}");
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test]
async fn missing_location_is_a_clear_error() {
    let err = FileStore::new("main", "/definitely/not/here")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stores.main.location") && err.contains("/definitely/not/here"),
        "{err}"
    );
    let mut config = Config::default();
    let dir = tempfile::tempdir().unwrap();
    config.stores.specs.insert(
        "main".into(),
        StoreSpec::new("main", "file", dir.path().to_str().unwrap()),
    );
    let store = StoreSet::new(config).get("main").unwrap();
    store
        .put(&StorePath::parse("a").unwrap(), Bytes::from_static(b"1"))
        .await
        .unwrap();
    assert!(dir.path().join("a").is_file());
}
