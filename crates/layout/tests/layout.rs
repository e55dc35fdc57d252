//! Layout golden tests (paths from the DataJoint 2.x reference) and properties.

use chrono::{NaiveDate, NaiveDateTime};
use dj_core::config::{HashAlgorithm, StoreSpec};
use dj_core::store::StorePath;
use dj_core::value::Value;
use dj_layout::{self as layout, ContentHasher, KeyClass, StoreLayout, encode_pk_value};
use proptest::prelude::*;
use uuid::Uuid;

fn spec() -> StoreSpec {
    StoreSpec::new("main", "memory", "")
}

const HELLO_MD5: &str = "l23dxo7ad3xnbe6lek5y6wwnym";
const HELLO_BLAKE3: &str = "25eyd35hbigiqc4nrqmyludv3pf7m6nztjpzsfhfvl4wxay2tysa";

#[test]
fn md5_base32_matches_datajoint() {
    assert_eq!(layout::hash_md5_base32(b"hello world"), HELLO_MD5);
    assert_eq!(layout::hash_md5_base32(b""), "2qoyzwmpaczaj2mabgmoz6ccpy");
    assert_eq!(
        layout::content_hash(HashAlgorithm::Md5, b"hello world"),
        HELLO_MD5
    );
}

#[test]
fn blake3_base32_is_52_lowercase_chars() {
    let h = layout::hash_blake3_base32(b"hello world");
    assert_eq!(h, HELLO_BLAKE3);
    assert_eq!(h.len(), layout::BLAKE3_HASH_LEN);
    assert_eq!(
        layout::content_hash(HashAlgorithm::Blake3, b"hello world"),
        h
    );
}

#[test]
fn streaming_hasher_equals_one_shot() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    for alg in [HashAlgorithm::Md5, HashAlgorithm::Blake3] {
        let mut h = ContentHasher::new(alg);
        assert_eq!(h.algorithm(), alg);
        for chunk in data.chunks(65_536 + 7) {
            h.update(chunk);
        }
        assert_eq!(h.finalize(), layout::content_hash(alg, &data), "{alg}");
    }
}

#[test]
fn hash_validation_per_algorithm() {
    assert!(layout::validate_hash(HashAlgorithm::Md5, HELLO_MD5).is_ok());
    assert!(layout::validate_hash(HashAlgorithm::Blake3, HELLO_BLAKE3).is_ok());
    assert!(layout::validate_hash(HashAlgorithm::Md5, HELLO_BLAKE3).is_err());
    assert!(layout::validate_hash(HashAlgorithm::Blake3, HELLO_MD5).is_err());
    assert!(layout::validate_hash(HashAlgorithm::Md5, &HELLO_MD5.to_uppercase()).is_err());
    // `1`, `8`, `9`, `0` are not in the base32 alphabet.
    assert!(layout::validate_hash(HashAlgorithm::Md5, "l23dxo7ad3xnbe6lek5y6wwny1").is_err());
    assert_eq!(
        layout::hash_algorithm_of(HELLO_MD5),
        Some(HashAlgorithm::Md5)
    );
    assert_eq!(
        layout::hash_algorithm_of(HELLO_BLAKE3),
        Some(HashAlgorithm::Blake3)
    );
    assert_eq!(layout::hash_algorithm_of("abc"), None);
}

#[test]
fn hash_paths_match_the_reference() {
    let mut s = spec();
    assert_eq!(
        layout::hash_path(&s, "oas_demo", "mhmckyclcrjf5zaexdm2zxjwiu")
            .unwrap()
            .as_str(),
        "_hash/oas_demo/mhmckyclcrjf5zaexdm2zxjwiu"
    );
    s.subfolding = Some(vec![2, 2]);
    assert_eq!(
        layout::hash_path(&s, "oas_demo", "mhmckyclcrjf5zaexdm2zxjwiu")
            .unwrap()
            .as_str(),
        "_hash/oas_demo/mh/mc/mhmckyclcrjf5zaexdm2zxjwiu"
    );
    s.subfolding = Some(vec![1, 3]);
    assert_eq!(
        layout::hash_path(&s, "lab", HELLO_MD5).unwrap().as_str(),
        "_hash/lab/l/23d/l23dxo7ad3xnbe6lek5y6wwnym"
    );
    // An empty prefix drops the section.
    s.subfolding = None;
    s.hash_prefix = String::new();
    assert_eq!(
        layout::hash_path(&s, "lab", HELLO_MD5).unwrap().as_str(),
        "lab/l23dxo7ad3xnbe6lek5y6wwnym"
    );
    // A multi-segment prefix.
    s.hash_prefix = "objects/_hash".into();
    assert_eq!(
        layout::hash_path(&s, "lab", HELLO_BLAKE3).unwrap().as_str(),
        format!("objects/_hash/lab/{HELLO_BLAKE3}")
    );
}

#[test]
fn hash_path_rejects_bad_input() {
    let s = spec();
    for bad_hash in [
        "",
        "abc",
        "../../../../../../../../etc",
        &HELLO_MD5.to_uppercase(),
    ] {
        assert!(
            layout::hash_path(&s, "lab", bad_hash).is_err(),
            "{bad_hash}"
        );
    }
    for bad_schema in ["", "..", ".", "a/b", "a\0b"] {
        let err = layout::hash_path(&s, bad_schema, HELLO_MD5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("schema name"), "{err}");
    }
    let mut s = spec();
    s.subfolding = Some(vec![20, 20]);
    assert!(layout::hash_path(&s, "lab", HELLO_MD5).is_err());
    assert!(layout::hash_path(&s, "lab", HELLO_BLAKE3).is_ok());
}

#[test]
fn schema_paths_match_the_reference() {
    let s = spec();
    let lay = StoreLayout::from(&s);
    let pk = vec![("rec_id", Value::Int(1)), ("name", Value::from("a/b c"))];
    let p = lay
        .schema_path("oas_demo", "rec", "obj", pk, Some("txt"), "ZkRa_cGg")
        .unwrap();
    assert_eq!(
        p.as_str(),
        "_schema/oas_demo/rec/rec_id=1/name=a%2Fb%20c/obj_ZkRa_cGg.txt"
    );

    let mut s = spec();
    s.partition_pattern = Some("{subject}".into());
    let pk = vec![
        ("subject", Value::from("m 1")),
        (
            "sess",
            Value::Date(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()),
        ),
    ];
    let p = StoreLayout::from(&s)
        .schema_path("oas_demo3", "t", "o", pk, None, "b1JJ_ZgS")
        .unwrap();
    assert_eq!(
        p.as_str(),
        "_schema/subject=m 1/oas_demo3/t/sess=2024-01-02/o_b1JJ_ZgS"
    );
}

#[test]
fn partitions_follow_pattern_order_and_allow_partial() {
    let mut s = spec();
    s.partition_pattern = Some("{b}/{a}/{zzz}".into());
    let pk = vec![
        ("a", Value::Int(1)),
        ("b", Value::Int(2)),
        ("c", Value::Int(3)),
    ];
    let p = StoreLayout::from(&s)
        .schema_path("sch", "__proc", "f", &pk_map(pk), Some(".npy"), "abcd")
        .unwrap();
    assert_eq!(p.as_str(), "_schema/b=2/a=1/sch/__proc/c=3/f_abcd.npy");
    // An empty schema prefix: the pre-2.3.1 root-level layout.
    s.schema_prefix = String::new();
    s.partition_pattern = None;
    let p = StoreLayout::from(&s)
        .schema_path("sch", "t", "f", [("a", Value::Int(1))], Some(""), "abcd")
        .unwrap();
    assert_eq!(p.as_str(), "sch/t/a=1/f_abcd");
}

fn pk_map(pairs: Vec<(&str, Value)>) -> indexmap::IndexMap<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[test]
fn pk_encoding_matches_datajoint() {
    let dt = NaiveDateTime::parse_from_str("2024-01-02 03:04:05.123456", "%Y-%m-%d %H:%M:%S%.f")
        .unwrap();
    let uuid = Uuid::parse_str("6ba7b810-9dad-11d1-80b4-00c04fd430c8").unwrap();
    let cases: Vec<(Value, &str)> = vec![
        (Value::Int(-7), "-7"),
        (Value::UInt(u64::MAX), "18446744073709551615"),
        (Value::Float(1.0), "1.0"),
        (Value::Float(1e-5), "1e-05"),
        (Value::Float(0.1), "0.1"),
        (Value::Float(123456789012345678.0), "1.2345678901234568e+17"),
        (Value::Bool(true), "True"),
        (Value::DateTime(dt), "2024-01-02T03-04-05"),
        (
            Value::Date(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap()),
            "2024-01-02",
        ),
        (Value::Uuid(uuid), "6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
        (Value::Decimal("12.50".into()), "12.50"),
        (Value::from("m 1"), "m 1"),
        (Value::from("ünï cödé"), "ünï cödé"),
        (Value::from("a:b"), "a%3Ab"),
        (Value::from("a/b c"), "a%2Fb%20c"),
        (
            Value::from("x".repeat(120)),
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_fb98667f",
        ),
    ];
    for (v, want) in cases {
        assert_eq!(encode_pk_value(&v).unwrap(), want, "{v:?}");
    }
    // Exactly 100 characters is still raw; 101 is shortened.
    assert_eq!(
        encode_pk_value(&Value::from("x".repeat(100))).unwrap(),
        "x".repeat(100)
    );
    assert_eq!(
        encode_pk_value(&Value::from("x".repeat(101)))
            .unwrap()
            .len(),
        59
    );
    // Truncation counts characters and happens before percent-encoding.
    let long = format!("{}/{}", "é".repeat(60), "b".repeat(50));
    let want = format!("{}_7e359f9c", "%C3%A9".repeat(50));
    assert_eq!(encode_pk_value(&Value::from(long)).unwrap(), want);
}

#[test]
fn pk_values_that_cannot_be_keys_are_errors() {
    for v in [
        Value::Null,
        Value::from(vec![1u8, 2]),
        Value::Json(serde_json::json!({"a": 1})),
    ] {
        assert!(encode_pk_value(&v).is_err(), "{v:?}");
    }
    let err = encode_pk_value(&Value::from("a\0b"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("control character"), "{err}");
    let err = StoreLayout::default()
        .schema_path(
            "s",
            "t",
            "f",
            [("name", Value::from("line\nbreak"))],
            None,
            "abcd",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("control character"), "{err}");
}

#[test]
fn dot_values_stay_inside_their_segment() {
    // DataJoint treats `..` as a safe string; the segment is `name=..`, never `..` itself.
    for v in ["..", ".", "../..", "/etc/passwd", "..\\..", "C:\\x"] {
        let p = StoreLayout::default()
            .schema_path("s", "t", "f", [("name", Value::from(v))], None, "abcd")
            .unwrap();
        let segments: Vec<&str> = p.as_str().split('/').collect();
        assert_eq!(segments.len(), 5, "{p}");
        assert!(segments[3].starts_with("name="), "{p}");
    }
}

#[test]
fn names_and_tokens_are_checked() {
    let l = StoreLayout::default();
    let pk = [("a", Value::Int(1))];
    assert!(
        l.schema_path("..", "t", "f", pk.clone(), None, "abcd")
            .is_err()
    );
    assert!(
        l.schema_path("s", "a/b", "f", pk.clone(), None, "abcd")
            .is_err()
    );
    assert!(
        l.schema_path("s", "t", "", pk.clone(), None, "abcd")
            .is_err()
    );
    assert!(
        l.schema_path("s", "t", "f", pk.clone(), None, "ab/cd")
            .is_err()
    );
    assert!(
        l.schema_path("s", "t", "f", pk.clone(), Some("x/y"), "abcd")
            .is_err()
    );
    assert!(
        l.schema_path("s", "t", "f", [("a/b", Value::Int(1))], None, "abcd")
            .is_err()
    );
    assert_eq!(
        l.schema_path("s", "t", "f", pk, Some(".tar.gz"), "abcd")
            .unwrap()
            .file_name(),
        "f_abcd.tar.gz"
    );
}

#[test]
fn tokens_use_the_alphabet_and_clamp() {
    for (asked, got) in [(0, 4), (3, 4), (8, 8), (16, 16), (40, 16)] {
        let t = layout::generate_token(asked);
        assert_eq!(t.len(), got);
        assert!(
            t.bytes().all(|b| layout::TOKEN_ALPHABET.contains(&b)),
            "{t}"
        );
    }
    // Fresh on every call.
    assert_ne!(layout::generate_token(16), layout::generate_token(16));
    let mut s = spec();
    s.token_length = 12;
    let (p, token) =
        layout::new_schema_path(&s, "s", "t", "f", [("a", Value::Int(1))], Some("bin")).unwrap();
    assert_eq!(token.len(), 12);
    assert_eq!(p.as_str(), format!("_schema/s/t/a=1/f_{token}.bin"));
}

#[test]
fn partition_patterns_are_validated() {
    assert_eq!(
        layout::partition_attributes("{subject_id}/{session_date}").unwrap(),
        vec!["subject_id", "session_date"]
    );
    for bad in [
        "subject_id/session_date",
        "{a}{b}",
        "x{a}",
        "{a}/{a}",
        "{}",
        "{a-b}",
        "",
    ] {
        assert!(layout::partition_attributes(bad).is_err(), "{bad}");
    }
}

#[test]
fn filepaths_are_checked() {
    let mut s = spec();
    let l = StoreLayout::from(&s);
    assert_eq!(
        l.check_filepath("raw/a b/c.dat").unwrap().as_str(),
        "raw/a b/c.dat"
    );
    assert_eq!(l.check_filepath("raw/dir/").unwrap().as_str(), "raw/dir");
    assert!(l.check_filepath("_hashes/x").is_ok());
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a//b",
        "./a",
        "a\\b",
        "C:/x",
        "a\0b",
        "_hash/lab/x",
        "_schema/x",
    ] {
        assert!(l.check_filepath(bad).is_err(), "{bad:?}");
    }
    s.filepath_prefix = Some("raw".into());
    let l = StoreLayout::from(&s);
    assert!(l.check_filepath("raw/x").is_ok());
    let err = l.check_filepath("rawdata/x").unwrap_err().to_string();
    assert!(err.contains("filepath_prefix"), "{err}");
    assert!(l.check_filepath("raw").is_err());
}

#[test]
fn file_names_are_checked() {
    assert!(layout::check_file_name("data.bin").is_ok());
    for bad in ["", ".", "..", "a/b", "a\\b", "a\0b", "C:x"] {
        assert!(layout::check_file_name(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn keys_are_classified_for_gc() {
    let mut s = spec();
    s.subfolding = Some(vec![2, 2]);
    s.partition_pattern = Some("{subject}".into());
    let l = StoreLayout::from(&s);
    let class = |k: &str| l.classify(&StorePath::parse(k).unwrap());
    assert_eq!(
        class("_hash/lab/l2/3d/l23dxo7ad3xnbe6lek5y6wwnym"),
        KeyClass::Hash {
            schema: "lab".into(),
            hash: HELLO_MD5.into(),
            algorithm: HashAlgorithm::Md5
        }
    );
    // Written before subfolding was turned on: still a hash object.
    assert!(matches!(
        class(&format!("_hash/lab/{HELLO_BLAKE3}")),
        KeyClass::Hash {
            algorithm: HashAlgorithm::Blake3,
            ..
        }
    ));
    // Folds that do not spell the hash's start, or a non-hash name: not ours.
    assert_eq!(
        class("_hash/lab/zz/zz/l23dxo7ad3xnbe6lek5y6wwnym"),
        KeyClass::Other
    );
    assert_eq!(class("_hash/lab/notes.txt"), KeyClass::Other);
    assert_eq!(
        class("_schema/subject=m 1/oas_demo3/t/sess=2024-01-02/o_b1JJ_ZgS"),
        KeyClass::Schema {
            schema: "oas_demo3".into(),
            table: "t".into(),
            partition: vec![("subject".into(), "m 1".into())]
        }
    );
    assert_eq!(
        class("_schema/oas_demo/rec/rec_id=1/obj_ZkRa_cGg.txt.manifest.json"),
        KeyClass::Schema {
            schema: "oas_demo".into(),
            table: "rec".into(),
            partition: vec![]
        }
    );
    assert_eq!(class("_schema/oas_demo/rec"), KeyClass::Other);
    assert_eq!(class("raw/session1/data.bin"), KeyClass::Other);
    assert_eq!(
        class("_hashes/lab/l23dxo7ad3xnbe6lek5y6wwnym"),
        KeyClass::Other
    );

    assert_eq!(l.hash_section("lab").unwrap().as_str(), "_hash/lab");
    assert_eq!(
        l.schema_listing_prefix("lab").unwrap().unwrap().as_str(),
        "_schema"
    );
    s.partition_pattern = None;
    assert_eq!(
        StoreLayout::from(&s)
            .schema_listing_prefix("lab")
            .unwrap()
            .unwrap()
            .as_str(),
        "_schema/lab"
    );
}

fn pk_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        "\\PC{0,130}".prop_map(Value::String),
        "[./\\\\:a]{0,6}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ]
}

proptest! {
    #[test]
    fn schema_keys_never_escape_the_root(
        values in proptest::collection::vec(pk_value(), 1..4),
        partition in any::<bool>(),
        ext in proptest::option::of("[a-z.]{0,5}"),
    ) {
        let mut s = spec();
        if partition {
            s.partition_pattern = Some("{k0}".into());
        }
        let pk: Vec<(String, Value)> = values.into_iter().enumerate().map(|(i, v)| (format!("k{i}"), v)).collect();
        let n = pk.len();
        if let Ok((path, _)) = layout::new_schema_path(&s, "sch", "tbl", "fld", pk, ext.as_deref()) {
            let segments: Vec<&str> = path.as_str().split('/').collect();
            prop_assert_eq!(segments.len(), 1 + 2 + n + 1);
            prop_assert_eq!(segments[0], "_schema");
            for seg in &segments {
                prop_assert!(!seg.is_empty() && *seg != "." && *seg != "..");
                prop_assert!(!seg.contains('\\') && !seg.chars().any(char::is_control));
            }
            let is_schema = matches!(StoreLayout::from(&s).classify(&path), KeyClass::Schema { .. });
            prop_assert!(is_schema);
        }
    }

    #[test]
    fn hash_paths_round_trip(data in proptest::collection::vec(any::<u8>(), 0..256), folds in proptest::collection::vec(1usize..4, 0..4), blake in any::<bool>()) {
        let alg = if blake { HashAlgorithm::Blake3 } else { HashAlgorithm::Md5 };
        let mut s = spec();
        s.subfolding = Some(folds);
        let hash = layout::content_hash(alg, &data);
        let path = layout::hash_path(&s, "lab", &hash).unwrap();
        prop_assert_eq!(path.file_name(), hash.as_str());
        prop_assert_eq!(
            StoreLayout::from(&s).classify(&path),
            KeyClass::Hash { schema: "lab".into(), hash: hash.clone(), algorithm: alg }
        );
    }

    #[test]
    fn user_paths_are_safe_or_rejected(path in "[a./\\\\\\x00]{0,12}") {
        if let Ok(key) = layout::check_relative_path(&path) {
            for seg in key.as_str().split('/') {
                prop_assert!(!seg.is_empty() && seg != "." && seg != "..");
            }
            prop_assert!(!key.as_str().starts_with('/'));
        }
    }
}

/// GC deletes a schema-section key only when it is exactly what `schema_path` writes for a known
/// table and attribute: every key `schema_path` builds is recognised, and near misses are not.
#[test]
fn object_keys_are_recognised_exactly() {
    let key = |k: &str| StorePath::parse(k).unwrap();
    for (prefix, pattern) in [
        ("_schema", None),
        ("", None),
        ("_schema", Some("{subject}")),
        ("", Some("{subject}/{date}")),
    ] {
        let l = StoreLayout {
            schema_prefix: prefix,
            partition_pattern: pattern,
            ..StoreLayout::default()
        };
        let pk = [("subject", Value::from("m 1")), ("rid", Value::Int(3))];
        let names = ["subject", "rid"];
        for ext in [None, Some(".h5"), Some(".tar.gz")] {
            let (p, _) = l
                .new_schema_path("lab", "rec", "raw_data", pk.clone(), ext)
                .unwrap();
            let ours = |k: &StorePath| l.is_object_key(k, "lab", "rec", &names, &["raw_data"]);
            assert!(ours(&p), "{prefix:?} {pattern:?}: {p}");
            assert!(ours(&key(&format!("{p}/inner/f.bin"))), "{p}");
            assert!(ours(&key(&format!("{p}.manifest.json"))), "{p}");
            // Another attribute, table, schema, or primary key does not match.
            assert!(
                !l.is_object_key(&p, "lab", "rec", &names, &["video"]),
                "{p}"
            );
            assert!(
                !l.is_object_key(&p, "lab", "other", &names, &["raw_data"]),
                "{p}"
            );
            assert!(
                !l.is_object_key(&p, "lab2", "rec", &names, &["raw_data"]),
                "{p}"
            );
            assert!(
                !l.is_object_key(&p, "lab", "rec", &["rid"], &["raw_data"]),
                "{p}"
            );
            // Primary-key order matters, except for attributes that move into the partition.
            assert_eq!(
                l.is_object_key(&p, "lab", "rec", &["rid", "subject"], &["raw_data"]),
                pattern.is_some(),
                "{p}"
            );
        }
        let section = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        for near_miss in [
            "lab/rec/subject=m 1/rid=3/notes.txt",
            "lab/rec/subject=m 1/rid=3/raw_data_ab",
            "lab/rec/subject=m 1/rid=3/raw_data_abcdefghijklmnopq",
            "lab/rec/subject=m 1/rid=3/raw_data_ab*d",
            "lab/rec/subject=m 1/raw_data_abcd1234",
            "lab/rec/rid=3/subject=m 1/raw_data_abcd1234",
            "lab/raw/subject=m 1/rid=3/raw_data_abcd1234",
            "lab/rec/subject=m 1/rid=3",
        ] {
            let k = key(&format!("{section}{near_miss}"));
            assert!(
                !l.is_object_key(&k, "lab", "rec", &["subject", "rid"], &["raw_data"]),
                "{prefix:?} {pattern:?}: {k}"
            );
        }
    }
}
