//! From a `datajoint.json` to a working `btree` store: the protocol registered by linking the
//! crate, its option read and checked at load time, the store opened by name.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use dj_config::Config;
use dj_core::registry::Registry;
use dj_core::registry::StoreSet;
use dj_core::store::{StoreExt, StorePath};

#[tokio::test]
async fn a_configured_btree_store_works() {
    // Linking the crate registers the protocol.
    assert_eq!(dj_store_btree::PROTOCOL, "btree");
    assert!(
        Registry::global()
            .list_protocols()
            .contains(&"btree".to_string())
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("datajoint.json");
    std::fs::write(
        &path,
        r#"{"stores": {"default": "scratch",
                      "scratch": {"protocol": "btree", "location": "cfg-test", "max_object_size": 16}}}"#,
    )
    .unwrap();
    let config = Config::from_file(&path).unwrap().core();
    let stores = StoreSet::new(Arc::clone(&config));
    let store = stores.get("scratch").unwrap();
    let key = StorePath::parse("a/b.txt").unwrap();
    store.put(&key, "small".into()).await.unwrap();
    assert_eq!(&store.get(&key).await.unwrap()[..], b"small");
    // The option is in force.
    let err = store.put(&key, vec![0u8; 17].into()).await.unwrap_err();
    assert!(err.to_string().contains("max_object_size"), "{err}");
    // A second connection sees the same map.
    let again = StoreSet::new(config).get("scratch").unwrap();
    assert!(again.exists(&key).await.unwrap());
}

#[test]
fn bad_options_are_named_at_load_time() {
    let dir = tempfile::tempdir().unwrap();
    for (json, key) in [
        (
            r#"{"stores": {"s": {"protocol": "btree", "max_objet_size": 1}}}"#,
            "stores.s.max_objet_size",
        ),
        (
            r#"{"stores": {"s": {"protocol": "btree", "max_object_size": "big"}}}"#,
            "stores.s.max_object_size",
        ),
    ] {
        let err = Config::from_json_str(json, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{json}: {err}");
    }
}
