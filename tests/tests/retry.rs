//! `stores.<name>.retry` from a `datajoint.json` to the attempts a store makes: through the
//! retry layer (a protocol registered here whose backend is a `FaultyStore`, opened the way
//! `webdav`, `sftp` and `opendal-s3` open theirs) and through `object_store`'s own retries (the
//! `s3` protocol against a local HTTP server that answers every request with a 503).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use datajoint::{Config, StoreSet};
use dj_config::ConfigLoader;
use dj_core::config::{SpecContext, StoreSpec};
use dj_core::registry::{ProtocolEntry, Registry};
use dj_core::store::{Store, StoreExt, StorePath};
use dj_core::{Error, Result};
use dj_store_layers::{Retries, RetryPolicy, standard};
use dj_testkit::{Fault, FaultyStore};

/// The `FaultyStore` the last `faulty` store was opened on, by store name.
static OPENED: Mutex<Vec<(String, Arc<FaultyStore>)>> = Mutex::new(Vec::new());

/// A protocol whose every put fails with a retryable error, wrapped as the built-in protocols
/// without retries of their own wrap theirs.
fn faulty(spec: &StoreSpec, _: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
    let inner = Arc::new(dj_store_memory::MemoryStore::new(&spec.name));
    let store = Arc::new(FaultyStore::new(inner, Fault::PutFirst(usize::MAX)));
    OPENED
        .lock()
        .unwrap()
        .push((spec.name.clone(), Arc::clone(&store)));
    Ok(standard(store, Retries::Layer(RetryPolicy::for_spec(spec))))
}

fn opened(name: &str) -> Arc<FaultyStore> {
    let opened = OPENED.lock().unwrap();
    let (_, s) = opened.iter().rev().find(|(n, _)| n == name).unwrap();
    Arc::clone(s)
}

fn load(dir: &std::path::Path, json: &str, registry: &Registry) -> Result<dj_config::Config> {
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::write(dir.join("datajoint.json"), json).unwrap();
    let env = |_: &str| None;
    ConfigLoader::new(dir)
        .env(&env)
        .system_secrets_dir(None)
        .registry(registry)
        .load()
}

#[tokio::test]
async fn the_retry_layer_makes_the_configured_attempts() {
    let reg = Registry::new();
    reg.register_protocol(ProtocolEntry::with_keys("faulty", faulty, &[], &[]))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = load(
        dir.path(),
        r#"{"stores": {
            "three": {"protocol": "faulty", "location": "x",
                      "retry": {"max_attempts": 3, "initial_backoff_ms": 1, "max_backoff_ms": 2}},
            "seven": {"protocol": "faulty", "location": "x",
                      "retry": {"max_attempts": 7, "initial_backoff_ms": 0, "max_backoff_ms": 0}},
            "once": {"protocol": "faulty", "location": "x", "retry": false},
            "usual": {"protocol": "faulty", "location": "x",
                        "retry": {"initial_backoff_ms": 1, "max_backoff_ms": 1}}}}"#,
        &reg,
    )
    .unwrap();
    let stores = StoreSet::new(config);
    let key = StorePath::parse("k").unwrap();
    let default_attempts = RetryPolicy::default().max_attempts as usize;
    for (name, attempts) in [
        ("three", 3),
        ("seven", 7),
        ("once", 1),
        ("usual", default_attempts),
    ] {
        let store = stores.get_with(name, &reg).unwrap();
        let err = store.put(&key, "v".into()).await.unwrap_err();
        assert!(
            err.is_retryable(),
            "{name}: the last error comes back: {err}"
        );
        assert_eq!(opened(name).puts(), attempts, "store `{name}`");
    }
}

/// An HTTP server on loopback that answers every request with `503 Service Unavailable` and
/// counts the requests.
fn unavailable_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let counter = Arc::clone(&counter);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = conn.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    (url, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_makes_the_configured_attempts() {
    datajoint::check_registry().unwrap();
    for (retry, attempts) in [
        (
            r#"{"max_attempts": 3, "initial_backoff_ms": 1, "max_backoff_ms": 2}"#,
            3,
        ),
        (
            r#"{"max_attempts": 5, "initial_backoff_ms": 1, "max_backoff_ms": 1}"#,
            5,
        ),
        ("false", 1),
    ] {
        let (url, requests) = unavailable_server();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("datajoint.json");
        std::fs::write(
            &file,
            format!(
                r#"{{"stores": {{"busy": {{"protocol": "s3", "endpoint": "{url}", "bucket": "b",
                     "location": "lab", "access_key": "a", "secret_key": "s", "retry": {retry}}}}}}}"#
            ),
        )
        .unwrap();
        let stores = StoreSet::new(Config::from_file(&file).unwrap());
        let store = stores.get("busy").unwrap();
        let err: Error = store
            .get(&StorePath::parse("k").unwrap())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("503"), "{err}");
        assert_eq!(
            requests.load(Ordering::SeqCst),
            attempts,
            "`retry: {retry}`: {err}"
        );
    }
}
