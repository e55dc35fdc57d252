//! Golden vectors packed by DataJoint Python 2.3.5 (`cargo xtask golden` regenerates them):
//! Rust decodes each to the value Python describes and, in `compat` mode, re-encodes the identical
//! bytes.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use dj_codec_blob::*;
use serde_json::{Value as J, json};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn float_text(f: f64) -> String {
    dj_layout::pyfmt::float_repr(f)
}

fn dtype(data: &ArrayData) -> String {
    match data {
        ArrayData::Bool(_) => "|b1".into(),
        ArrayData::I8(_) => "|i1".into(),
        ArrayData::U8(_) => "|u1".into(),
        ArrayData::I16(_) => "<i2".into(),
        ArrayData::U16(_) => "<u2".into(),
        ArrayData::I32(_) => "<i4".into(),
        ArrayData::U32(_) => "<u4".into(),
        ArrayData::I64(_) => "<i8".into(),
        ArrayData::U64(_) => "<u8".into(),
        ArrayData::F32(_) => "<f4".into(),
        ArrayData::F64(_) => "<f8".into(),
        ArrayData::Char(_) => "<U1".into(),
        ArrayData::Complex(re, _) => match **re {
            ArrayData::F32(_) => "<c8".into(),
            _ => "<c16".into(),
        },
        ArrayData::DateTime64 { unit, .. } => format!("<M8[{}]", DATETIME64_UNITS[*unit as usize]),
        ArrayData::Object(_) => "O".into(),
    }
}

fn raw(data: &ArrayData) -> Vec<u8> {
    // Re-encode a lone array and cut its data out: the same bytes Python's tobytes(order="F") gives.
    let item = Item::Array(Array {
        shape: vec![data.len() as u64],
        data: data.clone(),
    });
    let blob = encode_with(
        &item,
        EncodeOptions {
            compression: Compression::None,
        },
    )
    .unwrap();
    blob[4 + 1 + 16 + 8..].to_vec()
}

fn describe(item: &Item) -> J {
    match item {
        Item::None => json!({"t": "none"}),
        Item::Bool(b) => json!({"t": "bool", "v": b}),
        Item::Int(i) => json!({"t": "int", "v": i.to_string()}),
        Item::Float(f) => json!({"t": "float", "v": float_text(*f)}),
        Item::Complex(re, im) => {
            json!({"t": "complex", "re": float_text(*re), "im": float_text(*im)})
        }
        Item::Str(s) => json!({"t": "str", "v": s}),
        Item::Bytes(b) => json!({"t": "bytes", "hex": hex(b)}),
        Item::Decimal(d) => json!({"t": "decimal", "v": d}),
        Item::Temporal(t) => json!({"t": "temporal", "date": t.date, "time": t.time}),
        Item::Uuid(u) => json!({"t": "uuid", "hex": u.simple().to_string()}),
        Item::Tuple(v) => {
            json!({"t": "tuple", "items": v.iter().map(describe).collect::<Vec<_>>()})
        }
        Item::List(v) => json!({"t": "list", "items": v.iter().map(describe).collect::<Vec<_>>()}),
        Item::Set(v) => json!({"t": "set", "items": v.iter().map(describe).collect::<Vec<_>>()}),
        Item::Dict(p) => {
            json!({"t": "dict", "items": p.iter().map(|(k, v)| json!([describe(k), describe(v)])).collect::<Vec<_>>()})
        }
        Item::Array(a) => match &a.data {
            ArrayData::Char(units) => {
                let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
                json!({"t": "char", "shape": a.shape, "hex": hex(&bytes)})
            }
            ArrayData::Object(items) => {
                json!({"t": "array", "shape": a.shape, "dtype": "O", "items": items.iter().map(describe).collect::<Vec<_>>()})
            }
            data => {
                json!({"t": "array", "shape": a.shape, "dtype": dtype(data), "hex": hex(&raw(data))})
            }
        },
        Item::Record(r) => {
            json!({"t": "record", "fields": r.fields, "columns": r.columns.iter().map(describe).collect::<Vec<_>>()})
        }
        Item::Cell(c) => {
            json!({"t": "cell", "shape": c.shape, "items": c.items.iter().map(describe).collect::<Vec<_>>()})
        }
        Item::Struct(s) => json!({
            "t": "struct",
            "shape": s.shape,
            "fields": s.fields,
            "elements": s.elements.iter().map(|e| e.iter().map(describe).collect::<Vec<_>>()).collect::<Vec<_>>(),
        }),
    }
}

#[test]
fn every_golden_vector_decodes_and_reencodes_identically() {
    let text = include_str!("golden/vectors.json");
    let doc: J = serde_json::from_str(text).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 130, "too few vectors: {}", vectors.len());
    let mut compressed = 0;
    let mut failures = Vec::new();
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let bytes = unhex(v["hex"].as_str().unwrap());
        compressed += usize::from(bytes.starts_with(b"ZL123\0"));
        let item = match decode(&bytes) {
            Ok(item) => item,
            Err(e) => {
                failures.push(format!("{name}: decode: {e}"));
                continue;
            }
        };
        let got = describe(&item);
        if got != v["value"] {
            failures.push(format!(
                "{name}: decoded value differs:\n  got      {got}\n  expected {}",
                v["value"]
            ));
        }
        let again = encode_with(
            &item,
            EncodeOptions {
                compression: Compression::Compat,
            },
        )
        .unwrap();
        if again != bytes {
            failures.push(format!(
                "{name}: compat re-encoding differs:\n  got      {}\n  expected {}",
                hex(&again),
                hex(&bytes)
            ));
        }
        // The default mode writes something that reads back to the same item (DataJoint Python
        // reading fast-mode blobs is checked by the live interop test).
        let fast = encode(&item).unwrap();
        if encode_with(
            &decode(&fast).unwrap(),
            EncodeOptions {
                compression: Compression::None,
            },
        )
        .unwrap()
            != encode_with(
                &item,
                EncodeOptions {
                    compression: Compression::None,
                },
            )
            .unwrap()
        {
            failures.push(format!("{name}: fast round trip differs"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        compressed >= 3,
        "expected compressed vectors, found {compressed}"
    );
}

#[test]
fn big_ints_match_python_values() {
    // 2**100 and -(2**70) - 3, as Python packs them.
    let big = Item::Int(PyInt::from_le_bytes({
        let mut b = vec![0u8; 13];
        b[12] = 0x10;
        b
    }));
    let blob = encode(&big).unwrap();
    assert_eq!(hex(&blob[..7]), "646a30000a0d00");
    let n = Item::from(-(1i64 << 62));
    assert_eq!(i64::try_from(&n).unwrap(), -(1i64 << 62));
}
