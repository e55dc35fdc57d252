//! From a `datajoint.json` to working stores, through the facade's registry: every linked
//! protocol (`file`, `memory`, and `s3` against the loopback server `cargo xtask test` starts)
//! is built from configuration alone and passes the core conformance checks.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use datajoint::{Config, StoreSet};
use dj_testkit as testkit;

fn s3_section() -> Option<String> {
    let Ok(endpoint) = std::env::var("DJ_TEST_S3_ENDPOINT") else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "DJ_TEST_S3_ENDPOINT must be set under CI=true"
        );
        eprintln!("skipped the s3 store: DJ_TEST_S3_ENDPOINT not set (run `cargo xtask test`)");
        return None;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} must be set"));
    Some(format!(
        r#", "stores.cold": {{"protocol": "s3", "endpoint": "{endpoint}", "bucket": "{}", "location": "dj/integration",
             "access_key": "{}", "secret_key": "{}"}}"#,
        var("DJ_TEST_S3_BUCKET"),
        var("DJ_TEST_S3_ACCESS_KEY"),
        var("DJ_TEST_S3_SECRET_KEY"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_from_a_config_file() {
    datajoint::check_registry().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("hot")).unwrap();
    let s3 = s3_section();
    let json = format!(
        r#"{{"stores": {{"default": "hot", "hot": {{"protocol": "file", "location": "hot"}},
             "scratch": {{"protocol": "memory", "location": ""}}}}{}}}"#,
        s3.as_deref().unwrap_or("")
    );
    let file = dir.path().join("datajoint.json");
    std::fs::write(&file, json).unwrap();
    let config = Config::from_file(&file).unwrap();
    let stores = StoreSet::new(config);
    let mut names = vec!["hot", "scratch"];
    if s3.is_some() {
        names.push("cold");
    }
    for name in names {
        let store = stores.get(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(store.name(), name);
        let prefix = testkit::unique_prefix(name);
        testkit::put_get_delete(store.as_ref(), &prefix).await;
        testkit::ranges(store.as_ref(), &prefix).await;
        testkit::stream(store.as_ref(), &prefix).await;
        testkit::odd_keys(store.as_ref(), &prefix).await;
        testkit::cleanup(store.as_ref(), &prefix).await;
    }
    // The file store's relative location resolved against the config file's folder.
    assert!(
        dir.path().join("hot").read_dir().unwrap().next().is_none(),
        "cleanup left files"
    );
}
