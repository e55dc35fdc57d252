//! `<hash@>` end to end on real stores: dedup, verification, BLAKE3, bad input.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use dj_codec_hash::{HashCodec, HashMetadata};
use dj_core::codec::{CodecContext, ResolvedType};
use dj_core::config::{Config, HashAlgorithm, StoreSpec};
use dj_core::registry::{Registry, StoreSet};
use dj_core::store::{StoreExt, StorePath};
use dj_core::value::Value;
use dj_store_file as _;
use dj_store_memory as _;

fn setup(
    algorithm: HashAlgorithm,
    subfolding: Option<Vec<usize>>,
) -> (tempfile::TempDir, CodecContext, ResolvedType) {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = StoreSpec::new("main", "file", dir.path().to_str().unwrap());
    spec.hash_algorithm = algorithm;
    spec.subfolding = subfolding;
    let mut config = Config::default();
    config.stores.specs.insert("main".into(), spec);
    config.stores.default = Some("main".into());
    let config = Arc::new(config);
    let ty =
        ResolvedType::resolve(&"<hash@>".parse().unwrap(), Registry::global(), &config).unwrap();
    let cx = CodecContext {
        schema: "lab".into(),
        table: "rec".into(),
        field: "data".into(),
        key: Default::default(),
        store: None,
        stores: Arc::new(StoreSet::new(Arc::clone(&config))),
        config,
    };
    (dir, cx, ty)
}

#[tokio::test]
async fn md5_layout_matches_datajoint_and_dedups() {
    let (dir, cx, ty) = setup(HashAlgorithm::Md5, Some(vec![2, 2]));
    assert_eq!(
        ty.store.as_deref(),
        Some("main"),
        "bare @ resolves to stores.default"
    );
    let stored = ty
        .encode(Value::from(b"hello world".to_vec()), &cx)
        .await
        .unwrap();
    let json = stored.as_json().unwrap();
    assert_eq!(
        serde_json::to_string(json).unwrap(),
        r#"{"hash":"l23dxo7ad3xnbe6lek5y6wwnym","path":"_hash/lab/l2/3d/l23dxo7ad3xnbe6lek5y6wwnym","schema":"lab","store":"main","size":11,"checksum":"25eyd35hbigiqc4nrqmyludv3pf7m6nztjpzsfhfvl4wxay2tysa"}"#,
        "DataJoint's keys in its order, then the BLAKE3 checksum of b\"hello world\""
    );
    let on_disk = dir
        .path()
        .join("_hash/lab/l2/3d/l23dxo7ad3xnbe6lek5y6wwnym");
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"hello world");
    let mtime = std::fs::metadata(&on_disk).unwrap().modified().unwrap();

    // Same content again: same metadata, no second write.
    let again = ty
        .encode(Value::from(b"hello world".to_vec()), &cx)
        .await
        .unwrap();
    assert_eq!(again, stored);
    assert_eq!(
        std::fs::metadata(&on_disk).unwrap().modified().unwrap(),
        mtime
    );
    let files: Vec<_> = walk(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");

    assert_eq!(
        ty.decode(stored, &cx).await.unwrap(),
        Value::from(b"hello world".to_vec())
    );
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test]
async fn corruption_and_missing_objects_are_clear_errors() {
    let (dir, cx, ty) = setup(HashAlgorithm::Md5, None);
    let stored = ty.encode(Value::from(vec![7u8; 1000]), &cx).await.unwrap();
    let meta = HashMetadata::from_stored(&stored).unwrap();
    let file = dir.path().join(&meta.path);
    std::fs::write(&file, vec![8u8; 1000]).unwrap();
    let err = ty
        .decode(stored.clone(), &cx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("integrity check failed")
            && err.contains("BLAKE3 checksum is")
            && err.contains(&meta.path),
        "{err}"
    );
    assert!(
        err.contains("attribute `data`") || err.contains(&meta.path),
        "{err}"
    );

    // A damaged object (wrong size) is repaired by the next insert of the same content.
    std::fs::write(&file, b"short").unwrap();
    ty.encode(Value::from(vec![7u8; 1000]), &cx).await.unwrap();
    assert_eq!(
        ty.decode(stored.clone(), &cx).await.unwrap(),
        Value::from(vec![7u8; 1000])
    );

    // Metadata without a checksum (as DataJoint Python writes it) is verified by its MD5.
    let mut python_meta = stored.as_json().unwrap().clone();
    python_meta.as_object_mut().unwrap().remove("checksum");
    std::fs::write(&file, vec![8u8; 1000]).unwrap();
    let err = ty
        .decode(Value::Json(python_meta.clone()), &cx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("content hash is") && err.contains(&meta.path),
        "{err}"
    );
    std::fs::write(&file, vec![7u8; 1000]).unwrap();
    assert_eq!(
        ty.decode(Value::Json(python_meta), &cx).await.unwrap(),
        Value::from(vec![7u8; 1000])
    );

    // With a checksum, the checksum is what is verified: a wrong one fails on intact content.
    let mut wrong = stored.as_json().unwrap().clone();
    wrong["checksum"] = serde_json::json!("a".repeat(52));
    let err = ty
        .decode(Value::Json(wrong), &cx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BLAKE3 checksum is") && err.contains(&meta.path),
        "{err}"
    );

    std::fs::remove_file(&file).unwrap();
    let err = ty.decode(stored, &cx).await.unwrap_err().to_string();
    assert!(
        err.contains("not found") && err.contains(&meta.path),
        "{err}"
    );
}

#[tokio::test]
async fn blake3_objects_record_their_algorithm_and_live_beside_md5() {
    let (dir, cx, ty) = setup(HashAlgorithm::Blake3, None);
    let stored = ty
        .encode(Value::from(b"hello world".to_vec()), &cx)
        .await
        .unwrap();
    let meta = HashMetadata::from_stored(&stored).unwrap();
    assert_eq!(meta.algorithm, HashAlgorithm::Blake3);
    assert_eq!(stored.as_json().unwrap()["hash_algorithm"], "blake3");
    assert_eq!(
        meta.checksum, None,
        "the BLAKE3 hash is the checksum already"
    );
    assert_ne!(meta.hash, "l23dxo7ad3xnbe6lek5y6wwnym");
    assert!(dir.path().join(&meta.path).exists());
    assert_eq!(
        ty.decode(stored, &cx).await.unwrap(),
        Value::from(b"hello world".to_vec())
    );

    // An MD5 object in the same store still reads.
    let store = cx.stores.get("main").unwrap();
    let md5_path = StorePath::parse("_hash/lab/l23dxo7ad3xnbe6lek5y6wwnym").unwrap();
    store
        .put(&md5_path, bytes::Bytes::from_static(b"hello world"))
        .await
        .unwrap();
    let md5_meta = serde_json::json!({"hash": "l23dxo7ad3xnbe6lek5y6wwnym", "path": md5_path.as_str(), "schema": "lab", "store": "main", "size": 11});
    assert_eq!(
        ty.decode(Value::Json(md5_meta), &cx).await.unwrap(),
        Value::from(b"hello world".to_vec())
    );
}

#[tokio::test]
async fn only_bytes_in_and_only_with_a_store() {
    let (_dir, cx, ty) = setup(HashAlgorithm::Md5, None);
    let err = ty
        .encode(Value::from("text"), &cx)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("takes bytes") && err.contains("attribute `data`"),
        "{err}"
    );
    let config = Config::default();
    let err = ResolvedType::resolve(&"<hash>".parse().unwrap(), Registry::global(), &config)
        .unwrap_err()
        .to_string();
    assert!(err.contains("object store only"), "{err}");
    let _ = HashCodec;
}

#[tokio::test]
async fn metadata_from_mysql_json_text() {
    let text = r#"{"hash": "l23dxo7ad3xnbe6lek5y6wwnym", "path": "_hash/s/l23dxo7ad3xnbe6lek5y6wwnym", "schema": "s", "store": "main", "size": 11}"#;
    let meta = HashMetadata::from_stored(&Value::from(text)).unwrap();
    assert_eq!(meta.size, 11);
    assert_eq!(meta.store.as_deref(), Some("main"));
    assert!(HashMetadata::from_stored(&Value::from("{not json")).is_err());
    assert!(HashMetadata::from_stored(&Value::Json(serde_json::json!({"path": "x"}))).is_err());
}

/// An insert that reuses an old object writes it again, so that a garbage collection which
/// listed it as an orphan finds it young (within its grace period) before deleting; a recent one
/// is left alone.
#[tokio::test]
async fn reusing_an_old_object_makes_it_young_again() {
    use std::time::{Duration, SystemTime};

    let (dir, cx, ty) = setup(HashAlgorithm::Md5, None);
    let stored = ty
        .encode(Value::from(b"shared content".to_vec()), &cx)
        .await
        .unwrap();
    let path = dir
        .path()
        .join(stored.as_json().unwrap()["path"].as_str().unwrap());
    let set_age = |age: Duration| {
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    };
    let age = || {
        SystemTime::now()
            .duration_since(std::fs::metadata(&path).unwrap().modified().unwrap())
            .unwrap_or_default()
    };

    // Ten minutes old: reused as it is.
    set_age(Duration::from_secs(600));
    ty.encode(Value::from(b"shared content".to_vec()), &cx)
        .await
        .unwrap();
    assert!(age() >= Duration::from_secs(590), "{:?}", age());

    // Older than REFRESH_AFTER: written again, so it is young.
    set_age(dj_codec_hash::REFRESH_AFTER + Duration::from_secs(3600 * 24));
    let again = ty
        .encode(Value::from(b"shared content".to_vec()), &cx)
        .await
        .unwrap();
    assert_eq!(again, stored);
    assert!(age() < Duration::from_secs(60), "{:?}", age());
    assert_eq!(std::fs::read(&path).unwrap(), b"shared content");
}
