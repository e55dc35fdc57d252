//! The opendal store passes the conformance suite on OpenDAL's memory and fs services, directly
//! and through the configuration and the registry.
#![cfg(all(feature = "memory", feature = "fs"))]
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use dj_config::Config;
use dj_core::config::{SpecContext, StoreSpec};
use dj_core::registry::{Registry, StoreSet};
use dj_core::store::{PutOptions, Store, StoreExt, StorePath};
use dj_store_opendal as _;
use dj_store_opendal::OpendalStore;

fn key(k: &str) -> StorePath {
    StorePath::parse(k).unwrap()
}

#[cfg(feature = "memory")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_memory_service() {
    let op = opendal::Operator::new(opendal::services::Memory::default()).unwrap();
    let store = OpendalStore::new("odmem", op);
    let caps = store.capabilities();
    assert!(caps.create_if_absent && !caps.durable_writes, "{caps:?}");
    dj_testkit::run_all(&store).await;
}

#[cfg(feature = "memory")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_memory_service_through_the_registry_with_a_location() {
    let mut config = Config::default();
    config.stores.specs.insert(
        "m".into(),
        StoreSpec::new("m", "opendal-memory", "lab/prefix"),
    );
    let set = StoreSet::new(config);
    let store = set.get("m").unwrap();
    assert_eq!(store.name(), "m");
    dj_testkit::run_all(store.as_ref()).await;
}

#[cfg(feature = "fs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_fs_service() {
    let dir = tempfile::tempdir().unwrap();
    let spec = StoreSpec::new("odfs", "opendal-fs", dir.path().to_str().unwrap());
    let store = dj_store_opendal::create_fs(&spec, &SpecContext::default()).unwrap();
    // The fs service's exclusive create is a check then a rename: not atomic across processes.
    let caps = store.capabilities();
    assert!(!caps.create_if_absent && caps.native_multipart && caps.durable_writes);
    dj_testkit::run_all(store.as_ref()).await;
    // Nothing is left behind, staged files included.
    let staged: Vec<_> = std::fs::read_dir(dir.path().join(dj_store_opendal::STAGING_DIR))
        .unwrap()
        .collect();
    assert!(staged.is_empty(), "staging directory not empty: {staged:?}");
}

#[cfg(feature = "fs")]
#[tokio::test]
async fn fs_objects_are_plain_files_and_staging_is_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let spec = StoreSpec::new("odfs", "opendal-fs", dir.path().to_str().unwrap());
    let store = dj_store_opendal::create_fs(&spec, &SpecContext::default()).unwrap();
    let k = key("_hash/s/ab/cd/abcd");
    store.put(&k, Bytes::from_static(b"bytes")).await.unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("_hash/s/ab/cd/abcd")).unwrap(),
        b"bytes"
    );
    // A stray file in the staging directory is not an object of the store.
    std::fs::write(
        dir.path().join(dj_store_opendal::STAGING_DIR).join("x.tmp"),
        b"partial",
    )
    .unwrap();
    let listed = store.list_all(None).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].path, k);
    assert_eq!(listed[0].size, 5);
    let err = store
        .put(&key(".dj-staging/x"), Bytes::from_static(b"1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
    // Create on an existing key is refused and leaves the content alone.
    let err = store
        .put_opts(&k, Bytes::from_static(b"other"), PutOptions::create())
        .await
        .unwrap_err();
    assert!(
        err.to_string() == "object `_hash/s/ab/cd/abcd` already exists in store `odfs`",
        "{err}"
    );
    assert_eq!(&store.get(&k).await.unwrap()[..], b"bytes");
}

/// `datajoint.json` → configuration → registry → store, for every protocol of this crate that is
/// enabled; the plugin keys are validated by the registry's allowed and required keys.
#[cfg(all(feature = "memory", feature = "fs"))]
#[tokio::test]
async fn config_to_registry_to_store() {
    let dir = tempfile::tempdir().unwrap();
    let json = r#"{
        "stores": {
            "default": "mem",
            "mem": {"protocol": "opendal-memory", "location": "lab"},
            "disk": {"protocol": "opendal-fs", "location": "objects", "subfolding": [2, 2]}
        }
    }"#;
    let path = dir.path().join("datajoint.json");
    std::fs::write(&path, json).unwrap();
    let config = Config::from_file(&path).unwrap();
    let set = StoreSet::new(config.core());
    for name in ["mem", "disk"] {
        let store = set.get(name).unwrap();
        assert_eq!(store.name(), name);
        let k = key("a/b.txt");
        store.put(&k, Bytes::from_static(b"hi")).await.unwrap();
        assert_eq!(&store.get(&k).await.unwrap()[..], b"hi");
        assert_eq!(store.list_all(None).await.unwrap().len(), 1);
    }
    // The fs location is relative to the configuration file.
    assert_eq!(
        std::fs::read(dir.path().join("objects/a/b.txt")).unwrap(),
        b"hi"
    );
    assert_eq!(config.stores.specs["disk"].subfolding, Some(vec![2, 2]));

    let protocols = Registry::global().list_protocols();
    for p in ["opendal-memory", "opendal-fs"] {
        assert!(
            protocols.contains(&p.to_string()),
            "{p} missing: {protocols:?}"
        );
    }
    #[cfg(feature = "s3")]
    assert!(protocols.contains(&"opendal-s3".to_string()));
    #[cfg(feature = "webdav")]
    assert!(protocols.contains(&"webdav".to_string()));
    #[cfg(feature = "sftp")]
    assert!(protocols.contains(&"sftp".to_string()));
    assert!(Registry::global().conflicts().is_empty());

    // Unknown and missing keys are configuration errors that name the key.
    let err = Config::from_json_str(
        r#"{"stores": {"m": {"protocol": "opendal-memory", "bucket": "b"}}}"#,
        dir.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("stores.m.bucket"), "{err}");
    let err = Config::from_json_str(
        r#"{"stores": {"d": {"protocol": "opendal-fs"}}}"#,
        dir.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("stores.d.location"), "{err}");
}

/// WebDAV and SFTP specs are read from `datajoint.json`, with their keys in `options`, and a bad
/// spec is an error naming the key, without secrets. (No server is contacted: building an
/// operator sends nothing.)
#[cfg(all(feature = "webdav", feature = "sftp"))]
#[tokio::test]
async fn webdav_and_sftp_specs_build_stores() {
    let json = r#"{
        "stores": {
            "dav": {"protocol": "webdav", "endpoint": "127.0.0.1:1/remote.php/dav",
                    "secure": false, "location": "lab", "user": "ann", "password": "pw-SECRET"},
            "ssh": {"protocol": "sftp", "endpoint": "127.0.0.1:1", "location": "/srv/dj",
                    "user": "ann", "known_hosts_strategy": "accept"}
        }
    }"#;
    let config = Config::from_json_str(json, ".").unwrap();
    assert!(!format!("{config:?}").contains("pw-SECRET"));
    let set = StoreSet::new(config.core());
    let dav = set.get("dav").unwrap();
    assert!(
        dav.to_string()
            .contains("http://127.0.0.1:1/remote.php/dav"),
        "{dav}"
    );
    assert!(
        !dav.capabilities().create_if_absent,
        "{:?}",
        dav.capabilities()
    );
    // Nothing listens there: the error names store, operation and key, and may be retried.
    let err = dav.get(&key("x/y")).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("store `dav` failed to get `x/y`"), "{text}");
    assert!(!text.contains("pw-SECRET"), "{text}");
    assert!(err.is_retryable(), "{text}");
    let ssh = set.get("ssh").unwrap();
    assert!(
        ssh.to_string().contains("SFTP server `127.0.0.1:1`"),
        "{ssh}"
    );

    let err = Config::from_json_str(
        r#"{"stores": {"d": {"protocol": "webdav", "endpoint": "h", "location": "l", "user": "u"}}}"#,
        ".",
    )
    .and_then(|c| StoreSet::new(c).get("d").map(|_| ()))
    .unwrap_err()
    .to_string();
    assert!(err.contains("stores.d.password"), "{err}");
    let err = Config::from_json_str(
        r#"{"stores": {"s": {"protocol": "sftp", "endpoint": "h", "location": "/l", "password": "p"}}}"#,
        ".",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("stores.s.password"), "{err}");
}
