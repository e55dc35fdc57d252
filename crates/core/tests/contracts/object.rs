//! `dj_core::object`: the metadata and manifest formats.

use chrono::{DateTime, Utc};
use dj_core::object::{Manifest, ManifestEntry, ObjectMetadata};
use dj_core::value::Value;
use serde_json::json;

#[test]
fn metadata_json_order_and_round_trip() {
    let mut m = ObjectMetadata::new("_schema/s/t/id=1/f_AbCd1234.txt", Some("main".into()));
    m.size = Some(5);
    m.ext = Some(".txt".into());
    m.timestamp = DateTime::parse_from_rfc3339("2026-11-23T22:05:46.367583+00:00")
        .ok()
        .map(|t| t.with_timezone(&Utc));
    m.checksum = Some("abc".into());
    let j = m.to_json();
    let text = j.to_string();
    assert_eq!(
        text,
        r#"{"path":"_schema/s/t/id=1/f_AbCd1234.txt","store":"main","size":5,"ext":".txt","is_dir":false,"item_count":null,"timestamp":"2026-11-23T22:05:46.367583+00:00","checksum":"abc"}"#
    );
    let back = ObjectMetadata::from_json(&j, "object").unwrap();
    assert_eq!(back, m);
    let from_text = ObjectMetadata::from_stored(&Value::String(text), "object").unwrap();
    assert_eq!(from_text, m);
}

#[test]
fn metadata_keeps_extra_keys_and_rejects_bad_input() {
    let j = json!({"path": "a/b.npy", "store": "s", "dtype": "float64", "shape": [2, 2]});
    let m = ObjectMetadata::from_json(&j, "npy").unwrap();
    assert_eq!(m.extra["dtype"], "float64");
    assert_eq!(m.to_json()["shape"], json!([2, 2]));
    assert!(ObjectMetadata::from_json(&json!({"size": 1}), "object").is_err());
    assert!(ObjectMetadata::from_json(&json!([1]), "object").is_err());
    assert!(
        ObjectMetadata::from_json(&json!({"path": "a", "timestamp": "yesterday"}), "object")
            .is_err()
    );
    // DataJoint may record an empty store name.
    let m = ObjectMetadata::from_json(&json!({"path": "a", "store": ""}), "object").unwrap();
    assert_eq!(m.store, None);
    let err = ObjectMetadata::from_json(&json!({"size": 1}), "object").unwrap_err();
    assert!(err.to_string().contains("`path`"), "{err}");
    let err = ObjectMetadata::from_json(&json!({"path": "a", "timestamp": "yesterday"}), "x")
        .unwrap_err();
    assert!(err.to_string().contains("`yesterday`"), "{err}");
}

#[test]
fn metadata_values_of_the_wrong_type_read_as_absent() {
    let j = json!({
        "path": "a/b.bin", "store": 7, "size": -3, "ext": null, "is_dir": "yes",
        "item_count": 2.5, "timestamp": 12, "hash": false, "checksum": ["x"],
    });
    let m = ObjectMetadata::from_json(&j, "object").unwrap();
    assert_eq!(m, ObjectMetadata::new("a/b.bin", None));
    // A naive timestamp (Python's isoformat without an offset) is UTC.
    let j = json!({"path": "a", "timestamp": "2026-01-02T03:04:05", "size": 4, "is_dir": true});
    let m = ObjectMetadata::from_json(&j, "object").unwrap();
    assert_eq!(
        m.timestamp.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-01-02T03:04:05+00:00")
    );
    assert_eq!((m.size, m.is_dir), (Some(4), true));
}

#[test]
fn metadata_extra_keys_never_override_fields() {
    let mut m = ObjectMetadata::new("a", Some("s".into()));
    m.hash = Some("h".into());
    m.extra.insert("path".into(), json!("elsewhere"));
    m.extra.insert("shape".into(), json!([3]));
    let text = m.to_json().to_string();
    assert_eq!(
        text,
        r#"{"path":"a","store":"s","size":null,"ext":null,"is_dir":false,"item_count":null,"timestamp":null,"hash":"h","shape":[3]}"#
    );
}

#[test]
fn manifest_round_trip() {
    let m = Manifest::new(vec![
        ManifestEntry {
            path: "b/c.bin".into(),
            size: 3,
            checksum: None,
        },
        ManifestEntry {
            path: "a.txt".into(),
            size: 2,
            checksum: Some("x".into()),
        },
    ]);
    assert_eq!(m.total_size, 5);
    assert_eq!(m.files[0].path, "a.txt");
    let back = Manifest::parse(&m.to_bytes(), "s", "p").unwrap();
    assert_eq!(back.files, m.files);
    assert_eq!(back.item_count, 2);
    assert!(Manifest::parse(b"{}", "s", "p").is_err());
    assert!(Manifest::parse(b"not json", "s", "p").is_err());
}
