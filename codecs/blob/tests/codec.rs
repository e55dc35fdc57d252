//! `<blob>` and `<blob@>` as codecs: chain resolution, encode/decode, dedup in a store.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dj_codec_blob::{Array, ArrayData, Item};
use dj_codec_hash as _;
use dj_core::codec::{CodecContext, ResolvedType};
use dj_core::config::{Config, StoreSpec};
use dj_core::registry::Registry;
use dj_core::store::StoreExt;
use dj_core::value::Value;
use dj_store_memory as _;

#[tokio::test]
async fn blob_in_table_and_in_a_store() {
    let mut config = Config::default();
    config
        .stores
        .specs
        .insert("main".into(), StoreSpec::new("main", "memory", ""));
    config.stores.default = Some("main".into());
    let config = Arc::new(config);
    let mut cx = CodecContext::for_tests(Arc::clone(&config));
    cx.schema = "lab".into();
    cx.field = "raw".into();

    let recording = Item::Array(
        Array::new(
            vec![32, 300],
            ArrayData::F64((0..9600).map(f64::from).collect()),
        )
        .unwrap(),
    );
    let table =
        ResolvedType::resolve(&"<blob>".parse().unwrap(), Registry::global(), &config).unwrap();
    assert_eq!(table.final_type.to_string(), "bytes");
    let stored = table
        .encode(Value::domain(recording.clone()), &cx)
        .await
        .unwrap();
    assert!(matches!(stored, Value::Bytes(_)));
    let back = table.decode(stored, &cx).await.unwrap();
    assert_eq!(back.as_domain::<Item>(), Some(&recording));

    // Plain values become Python-equivalent items.
    let meta = table
        .encode(
            Value::Json(serde_json::json!({"channels": 32, "rate": 30000})),
            &cx,
        )
        .await
        .unwrap();
    let Value::Bytes(b) = &meta else { panic!() };
    assert_eq!(&b[..4], b"dj0\0");

    let store =
        ResolvedType::resolve(&"<blob@>".parse().unwrap(), Registry::global(), &config).unwrap();
    assert_eq!(store.final_type.to_string(), "json");
    assert_eq!(
        store
            .chain
            .iter()
            .map(|c| c.name().to_string())
            .collect::<Vec<_>>(),
        ["blob", "hash"]
    );
    let m1 = store
        .encode(Value::domain(recording.clone()), &cx)
        .await
        .unwrap();
    let m2 = store
        .encode(Value::domain(recording.clone()), &cx)
        .await
        .unwrap();
    assert_eq!(m1, m2, "identical content is stored once");
    let objects = cx.stores.get("main").unwrap().list_all(None).await.unwrap();
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(objects[0].path.as_str().starts_with("_hash/lab/"));
    let back = store.decode(m1, &cx).await.unwrap();
    assert_eq!(back.as_domain::<Item>(), Some(&recording));

    let err = table
        .encode(Value::domain(vec![1u8]), &cx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("<blob> cannot store") && err.contains("attribute `raw`"),
        "{err}"
    );
    let err = table
        .decode(Value::from(b"garbage".to_vec()), &cx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown blob header") && err.contains("attribute `raw`"),
        "{err}"
    );
}
