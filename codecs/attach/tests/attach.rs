//! `<attach>` in the table and `<attach@>` chained into `<hash@>`.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
use std::sync::Arc;

use dj_codec_attach::Attachment;
use dj_codec_hash as _;
use dj_core::codec::{CodecContext, ResolvedType};
use dj_core::config::{Config, StoreSpec};
use dj_core::registry::Registry;
use dj_core::value::Value;
use dj_store_memory as _;

fn context(download: &std::path::Path) -> (Arc<Config>, CodecContext) {
    let mut config = Config::default();
    config
        .stores
        .specs
        .insert("main".into(), StoreSpec::new("main", "memory", ""));
    config.stores.default = Some("main".into());
    config.download_path = download.to_path_buf();
    let config = Arc::new(config);
    let mut cx = CodecContext::for_tests(Arc::clone(&config));
    cx.schema = "lab".into();
    cx.field = "report".into();
    (config, cx)
}

#[tokio::test]
async fn in_table_and_in_store_round_trip_with_the_collision_rule() {
    let downloads = tempfile::tempdir().unwrap();
    let (config, cx) = context(downloads.path());
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("report.pdf");
    std::fs::write(&file, b"%PDF one").unwrap();

    let table =
        ResolvedType::resolve(&"<attach>".parse().unwrap(), Registry::global(), &config).unwrap();
    assert_eq!(table.final_type.to_string(), "bytes");
    let stored = table
        .encode(Value::from(file.to_str().unwrap()), &cx)
        .await
        .unwrap();
    assert_eq!(stored, Value::from(b"report.pdf\0%PDF one".to_vec()));

    let store =
        ResolvedType::resolve(&"<attach@>".parse().unwrap(), Registry::global(), &config).unwrap();
    assert_eq!(store.final_type.to_string(), "json");
    assert_eq!(store.store.as_deref(), Some("main"));
    let meta = store
        .encode(Value::from(file.to_str().unwrap()), &cx)
        .await
        .unwrap();
    assert_eq!(meta.as_json().unwrap()["store"], "main");
    let again = store
        .encode(
            Value::domain(Attachment::new("report.pdf", b"%PDF one".to_vec())),
            &cx,
        )
        .await
        .unwrap();
    assert_eq!(
        again, meta,
        "same name and content dedups to the same object"
    );

    let got = store.decode(meta.clone(), &cx).await.unwrap();
    let a = got.as_domain::<Attachment>().unwrap();
    assert_eq!(a.filename, "report.pdf");
    assert_eq!(&a.data[..], b"%PDF one");
    assert_eq!(
        a.saved_to.as_deref(),
        Some(downloads.path().join("report.pdf").as_path())
    );

    // Different content under the same name lands beside it.
    let other = store
        .encode(
            Value::domain(Attachment::new("report.pdf", b"%PDF two".to_vec())),
            &cx,
        )
        .await
        .unwrap();
    let got = store.decode(other, &cx).await.unwrap();
    let saved = got
        .as_domain::<Attachment>()
        .unwrap()
        .saved_to
        .clone()
        .unwrap();
    assert_eq!(saved, downloads.path().join("report_1.pdf"));
    assert_eq!(std::fs::read(saved).unwrap(), b"%PDF two");
}

#[tokio::test]
async fn bad_input_is_rejected_naming_the_attribute() {
    let downloads = tempfile::tempdir().unwrap();
    let (config, cx) = context(downloads.path());
    let ty =
        ResolvedType::resolve(&"<attach@>".parse().unwrap(), Registry::global(), &config).unwrap();
    let err = ty.encode(Value::Int(3), &cx).await.unwrap_err().to_string();
    assert!(
        err.contains("attribute `report`") && err.contains("file path or an Attachment"),
        "{err}"
    );
    let err = ty
        .encode(
            Value::domain(Attachment::new("../../etc/passwd", vec![1])),
            &cx,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("contains a path separator"), "{err}");
    let err = ty
        .encode(Value::from(downloads.path().to_str().unwrap()), &cx)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a directory"), "{err}");
    let err = ty
        .encode(Value::from("/no/such/file.txt"), &cx)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/no/such/file.txt"), "{err}");
    // A stored value with a hostile name is refused on fetch too.
    let table =
        ResolvedType::resolve(&"<attach>".parse().unwrap(), Registry::global(), &config).unwrap();
    let err = table
        .decode(Value::from(b"../evil\0x".to_vec()), &cx)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("../evil"), "{err}");
    assert!(!downloads.path().parent().unwrap().join("evil").exists());
}
