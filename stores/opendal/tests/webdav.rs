//! The `webdav` protocol against a WebDAV server named by `DJ_TEST_WEBDAV_ENDPOINT` (for
//! example `wsgidav --host 127.0.0.1 --port 8080 --root /tmp/dav --auth anonymous`), with
//! `DJ_TEST_WEBDAV_USER` / `DJ_TEST_WEBDAV_PASSWORD` when it needs them. `cargo xtask test`
//! starts WsgiDAV on loopback and sets it; skipped when unset, except under `CI=true`.
#![cfg(feature = "webdav")]
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use dj_store_opendal as _;

use dj_core::config::{SpecContext, StoreSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_webdav() {
    let Ok(endpoint) = std::env::var("DJ_TEST_WEBDAV_ENDPOINT") else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "DJ_TEST_WEBDAV_ENDPOINT must be set under CI=true (run `cargo xtask test`)"
        );
        eprintln!("skipped: DJ_TEST_WEBDAV_ENDPOINT not set (run `cargo xtask test`)");
        return;
    };
    let mut spec = StoreSpec::new("dav", "webdav", "dj/conformance");
    spec.options.insert("endpoint".into(), endpoint.into());
    if let (Ok(user), Ok(password)) = (
        std::env::var("DJ_TEST_WEBDAV_USER"),
        std::env::var("DJ_TEST_WEBDAV_PASSWORD"),
    ) {
        spec.options.insert("user".into(), user.into());
        spec.options.insert("password".into(), password.into());
    }
    let store = dj_store_opendal::create_webdav(&spec, &SpecContext::default()).unwrap();
    dj_testkit::run_all(store.as_ref()).await;
}
