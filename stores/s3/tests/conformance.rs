//! The S3 store against a real S3-compatible server on loopback (`cargo xtask test` starts one
//! and sets `DJ_TEST_S3_*`). Requests are real HTTP with real SigV4 signatures.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use dj_store_s3 as _;

use bytes::Bytes;
use dj_core::config::{SpecContext, StoreSpec};

fn spec(location: &str) -> Option<StoreSpec> {
    dj_testkit::s3_spec_from_env("s3test", "s3", location)
}
use dj_core::store::{StoreExt, StorePath};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_location_prefix() {
    let Some(spec) = spec("dj/conformance") else {
        return;
    };
    let store = dj_store_s3::create(&spec, &SpecContext::default()).unwrap();
    dj_testkit::run_all(store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_at_bucket_root() {
    let Some(spec) = spec("") else { return };
    let store = dj_store_s3::create(&spec, &SpecContext::default()).unwrap();
    dj_testkit::run_all(store.as_ref()).await;
}

#[tokio::test]
async fn missing_bucket_is_a_clear_error() {
    let Some(mut s) = spec("x") else { return };
    s.options
        .insert("bucket".into(), "no-such-bucket-dj".into());
    let endpoint = s.options["endpoint"].as_str().unwrap().to_string();
    let store = dj_store_s3::create(&s, &SpecContext::default()).unwrap();
    let k = StorePath::parse("k").unwrap();
    let err = store.put(&k, Bytes::from_static(b"1")).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("store `s3test` failed to put `k`"), "{text}");
    assert!(
        text.contains("S3 bucket `no-such-bucket-dj`")
            && text.contains(&endpoint)
            && text.contains("does not exist"),
        "{text}"
    );
    assert!(!err.is_retryable(), "{text}");
    // A GET's error body says NoSuchBucket: that is not a missing object.
    let err = store.get(&k).await.unwrap_err();
    assert!(!err.is_not_found(), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = store.list_all(None).await.unwrap_err();
    assert!(
        err.to_string().contains("no-such-bucket-dj") && !err.is_retryable(),
        "{err}"
    );
    let err = store.delete(&k).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn unreachable_endpoint_is_a_clear_retryable_error() {
    let Some(mut s) = spec("x") else { return };
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.options
        .insert("endpoint".into(), format!("127.0.0.1:{port}").into());
    s.options.insert("secure".into(), false.into());
    let store = dj_store_s3::create(&s, &SpecContext::default()).unwrap();
    let err = store
        .get(&StorePath::parse("k").unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("store `s3test` failed to get `k`"), "{text}");
    assert!(
        text.contains(&format!("at http://127.0.0.1:{port}")),
        "the endpoint must be named: {text}"
    );
    assert!(
        err.is_retryable(),
        "a refused connection may succeed later: {text}"
    );
}

/// The ambient credential chain: neither key in the spec, credentials from the environment. The
/// test re-runs this binary with `AWS_*` set (the test process itself must not change its own
/// environment); without them the client would fall back to instance metadata and fail.
#[test]
fn ambient_credentials_from_the_environment() {
    let Some(s) = spec("ambient") else { return };
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "ambient_child", "--ignored", "--nocapture"])
        .env("DJ_TEST_AMBIENT_CHILD", "1")
        .env(
            "AWS_ACCESS_KEY_ID",
            s.options["access_key"].as_str().unwrap(),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            s.options["secret_key"].as_str().unwrap(),
        )
        .env("AWS_METADATA_ENDPOINT", "http://127.0.0.1:1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ambient child: ok"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
#[ignore = "helper, run by ambient_credentials_from_the_environment with AWS_* set"]
async fn ambient_child() {
    assert!(
        std::env::var("DJ_TEST_AMBIENT_CHILD").is_ok(),
        "run through ambient_credentials_from_the_environment"
    );
    let mut s = spec("ambient").unwrap();
    s.options.shift_remove("access_key");
    s.options.shift_remove("secret_key");
    let store = dj_store_s3::create(&s, &SpecContext::default()).unwrap();
    let k = StorePath::parse(dj_testkit::unique_prefix("ambient")).unwrap();
    store.put(&k, Bytes::from_static(b"amb")).await.unwrap();
    assert_eq!(&store.get(&k).await.unwrap()[..], b"amb");
    store.delete(&k).await.unwrap();
    println!("ambient child: ok");
}

#[tokio::test]
async fn half_credentials_are_rejected_without_leaking() {
    let mut s = StoreSpec::new("s3test", "s3", "");
    s.options.insert("endpoint".into(), "127.0.0.1:1".into());
    s.options.insert("bucket".into(), "b".into());
    s.options
        .insert("access_key".into(), "AKIA-VISIBLE-NOWHERE".into());
    let err = dj_store_s3::create(&s, &SpecContext::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("stores.s3test.secret_key"), "{err}");
    assert!(!err.contains("AKIA-VISIBLE-NOWHERE"), "{err}");
}
