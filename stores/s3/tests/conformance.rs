//! The S3 store against a real S3-compatible server on loopback (`cargo xtask test` starts one
//! and sets `DJ_TEST_S3_*`). Requests are real HTTP with real SigV4 signatures.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use bytes::Bytes;
use dj_core::config::{Config, Secret, StoreSpec};
use dj_core::store::{StoreExt, StorePath};

fn spec(location: &str) -> Option<StoreSpec> {
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
    let mut spec = StoreSpec::new("s3test", "s3", location);
    spec.endpoint = Some(endpoint);
    spec.bucket = Some(var("DJ_TEST_S3_BUCKET"));
    spec.access_key = Some(Secret::new(var("DJ_TEST_S3_ACCESS_KEY")));
    spec.secret_key = Some(Secret::new(var("DJ_TEST_S3_SECRET_KEY")));
    Some(spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_location_prefix() {
    let Some(spec) = spec("dj/conformance") else {
        return;
    };
    let store = dj_store_s3::create(&spec, &Config::default()).unwrap();
    dj_core::testkit::run_all(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_at_bucket_root() {
    let Some(spec) = spec("") else { return };
    dj_core::testkit::run_all(dj_store_s3::create(&spec, &Config::default()).unwrap()).await;
}

#[tokio::test]
async fn missing_bucket_and_unreachable_endpoint_are_clear_errors() {
    let Some(mut s) = spec("x") else { return };
    s.bucket = Some("no-such-bucket-dj".into());
    let store = dj_store_s3::create(&s, &Config::default()).unwrap();
    let err = store
        .put(&StorePath::parse("k").unwrap(), Bytes::from_static(b"1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("store `s3test` failed to put `k`"), "{err}");
    assert!(
        err.contains("no-such-bucket-dj") && err.to_lowercase().contains("bucket"),
        "{err}"
    );

    let Some(mut s) = spec("x") else { return };
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.endpoint = Some(format!("127.0.0.1:{port}"));
    s.secure = false;
    let store = dj_store_s3::create(&s, &Config::default()).unwrap();
    let err = store
        .get(&StorePath::parse("k").unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("store `s3test` failed to get `k`"), "{text}");
    assert!(
        err.is_retryable(),
        "a refused connection may succeed later: {text}"
    );
}

#[tokio::test]
async fn half_credentials_are_rejected_without_leaking() {
    let mut s = StoreSpec::new("s3test", "s3", "");
    s.endpoint = Some("127.0.0.1:1".into());
    s.bucket = Some("b".into());
    s.access_key = Some(Secret::new("AKIA-VISIBLE-NOWHERE"));
    let err = dj_store_s3::create(&s, &Config::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("stores.s3test.secret_key"), "{err}");
    assert!(!err.contains("AKIA-VISIBLE-NOWHERE"), "{err}");
}
