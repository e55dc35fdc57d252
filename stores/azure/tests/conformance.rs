//! The Azure store against Azurite on loopback (`cargo xtask test` starts it and sets
//! `DJ_TEST_AZURE_*`). Requests are real HTTP with real Shared Key signatures.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use dj_store_azure as _;

use bytes::Bytes;
use dj_config::Config;
use dj_core::config::{SpecContext, StoreSpec};
use dj_core::registry::StoreSet;
use dj_core::store::{StoreExt, StorePath};

struct Env {
    endpoint: String,
    account: String,
    key: String,
    container: String,
}

fn env() -> Option<Env> {
    let Ok(endpoint) = std::env::var("DJ_TEST_AZURE_ENDPOINT") else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "DJ_TEST_AZURE_ENDPOINT must be set under CI=true (run `cargo xtask test`)"
        );
        eprintln!("skipped: DJ_TEST_AZURE_ENDPOINT not set (run `cargo xtask test`)");
        return None;
    };
    let var = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| panic!("{k} must be set with DJ_TEST_AZURE_ENDPOINT"))
    };
    Some(Env {
        endpoint,
        account: var("DJ_TEST_AZURE_ACCOUNT"),
        key: var("DJ_TEST_AZURE_KEY"),
        container: var("DJ_TEST_AZURE_CONTAINER"),
    })
}

fn spec(location: &str) -> Option<StoreSpec> {
    let e = env()?;
    let mut spec = StoreSpec::new("aztest", "azure", location);
    spec.options.insert("endpoint".into(), e.endpoint.into());
    spec.options.insert("container".into(), e.container.into());
    spec.options.insert("account_name".into(), e.account.into());
    spec.options.insert("account_key".into(), e.key.into());
    Some(spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_location_prefix() {
    let Some(spec) = spec("dj/conformance") else {
        return;
    };
    let store = dj_store_azure::create(&spec, &SpecContext::default()).unwrap();
    dj_testkit::run_all(store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_at_container_root() {
    let Some(spec) = spec("") else { return };
    let store = dj_store_azure::create(&spec, &SpecContext::default()).unwrap();
    dj_testkit::run_all(store.as_ref()).await;
}

/// `datajoint.json` → config → registry → store, with the endpoint and credentials in a
/// connection string (the way a DataJoint user points at Azurite).
#[tokio::test]
async fn config_registry_store() {
    let Some(e) = env() else { return };
    let cs = format!(
        "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={};",
        e.account, e.key, e.endpoint
    );
    let json = serde_json_text(&e.container, &cs);
    let dir = std::env::temp_dir();
    let config = Config::from_json_str(&json, &dir).unwrap();
    let spec = config.stores.get("lab").unwrap();
    assert_eq!(spec.protocol, "azure");
    assert!(
        !format!("{spec:?}").contains(&e.key),
        "the key must not show in Debug"
    );
    let store = StoreSet::new(config).get("lab").unwrap();
    let k = StorePath::parse(dj_testkit::unique_prefix("cfg")).unwrap();
    store
        .put(&k, Bytes::from_static(b"via config"))
        .await
        .unwrap();
    assert_eq!(&store.get(&k).await.unwrap()[..], b"via config");
    store.delete(&k).await.unwrap();
    assert!(!store.exists(&k).await.unwrap());
}

fn serde_json_text(container: &str, connection_string: &str) -> String {
    // Hand-built to avoid a serde_json dev-dependency; the values contain no quotes.
    format!(
        r#"{{"stores": {{"default": "lab", "lab": {{"protocol": "azure", "container": "{container}",
            "location": "dj/config", "connection_string": "{connection_string}"}}}}}}"#
    )
}

#[tokio::test]
async fn missing_container_is_a_clear_error() {
    let Some(mut s) = spec("x") else { return };
    s.options
        .insert("container".into(), "no-such-container-dj".into());
    let endpoint = s.options["endpoint"].as_str().unwrap().to_string();
    let store = dj_store_azure::create(&s, &SpecContext::default()).unwrap();
    let k = StorePath::parse("k").unwrap();
    let err = store.put(&k, Bytes::from_static(b"1")).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("store `aztest` failed to put `k`"), "{text}");
    assert!(
        text.contains("Azure container `no-such-container-dj`")
            && text.contains(&endpoint)
            && text.contains("does not exist"),
        "{text}"
    );
    assert!(!err.is_retryable(), "{text}");
    let err = store.get(&k).await.unwrap_err();
    assert!(
        !err.is_not_found(),
        "a missing container is not a missing object: {err}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = store.list_all(None).await.unwrap_err();
    assert!(
        err.to_string().contains("no-such-container-dj") && !err.is_retryable(),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_key_is_refused_without_leaking() {
    let Some(mut s) = spec("x") else { return };
    let wrong = "d3JvbmcgYnV0IHZhbGlkIGJhc2U2NCBrZXkgZm9yIGF6dXJpdGU=";
    s.options.insert("account_key".into(), (wrong).into());
    let store = dj_store_azure::create(&s, &SpecContext::default()).unwrap();
    let err = store
        .put(&StorePath::parse("k").unwrap(), Bytes::from_static(b"1"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("store `aztest` failed to put `k`"), "{text}");
    assert!(!text.contains(wrong), "{text}");
    assert!(!err.is_retryable(), "{text}");
}

#[tokio::test]
async fn unreachable_endpoint_is_a_clear_retryable_error() {
    let Some(mut s) = spec("x") else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.options.insert(
        "endpoint".into(),
        format!("http://127.0.0.1:{port}/devstoreaccount1").into(),
    );
    let store = dj_store_azure::create(&s, &SpecContext::default()).unwrap();
    let err = store
        .get(&StorePath::parse("k").unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("store `aztest` failed to get `k`"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(err.is_retryable(), "{text}");
}
