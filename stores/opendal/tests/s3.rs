//! The opendal S3 service against a real S3-compatible server on loopback (`cargo xtask test`
//! starts one and sets `DJ_TEST_S3_*`).
#![cfg(feature = "s3")]
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use dj_store_opendal as _;

use bytes::Bytes;
use dj_core::config::{SpecContext, StoreSpec};

fn spec(location: &str) -> Option<StoreSpec> {
    dj_testkit::s3_spec_from_env("ods3", "opendal-s3", location)
}
use dj_core::store::{StoreExt, StorePath};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_location_prefix() {
    let Some(spec) = spec("dj/opendal-conformance") else {
        return;
    };
    let store = dj_store_opendal::create_s3(&spec, &SpecContext::default()).unwrap();
    let caps = store.capabilities();
    assert!(caps.create_if_absent && caps.native_multipart, "{caps:?}");
    assert_eq!(caps.min_part_size, 5 * 1024 * 1024);
    dj_testkit::run_all(store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_at_bucket_root() {
    let Some(spec) = spec("") else { return };
    let store = dj_store_opendal::create_s3(&spec, &SpecContext::default()).unwrap();
    dj_testkit::run_all(store.as_ref()).await;
}

#[tokio::test]
async fn missing_bucket_is_not_a_missing_object() {
    let Some(mut s) = spec("x") else { return };
    s.options
        .insert("bucket".into(), "no-such-bucket-dj-opendal".into());
    let store = dj_store_opendal::create_s3(&s, &SpecContext::default()).unwrap();
    let k = StorePath::parse("k").unwrap();
    let err = store.put(&k, Bytes::from_static(b"1")).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("store `ods3` failed to put `k`"), "{text}");
    assert!(text.contains("no-such-bucket-dj-opendal"), "{text}");
    assert!(!err.is_retryable(), "{text}");
    let err = store.list_all(None).await.unwrap_err();
    assert!(
        err.to_string().contains("no-such-bucket-dj-opendal") && !err.is_retryable(),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_endpoint_is_a_clear_retryable_error() {
    let Some(mut s) = spec("x") else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.options
        .insert("endpoint".into(), format!("127.0.0.1:{port}").into());
    s.options.insert("secure".into(), false.into());
    let store = dj_store_opendal::create_s3(&s, &SpecContext::default()).unwrap();
    let err = store
        .get(&StorePath::parse("k").unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("store `ods3` failed to get `k`"), "{text}");
    assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
    assert!(
        err.is_retryable(),
        "a refused connection may succeed later: {text}"
    );
}
