//! The `.npy` format against files written by numpy (`tests/golden/make_golden.py`): every dtype,
//! both byte orders, Fortran order, 0-d and empty arrays, header versions 1.0–3.0, and the files
//! that must be refused.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Debug;

use dj_codec_npy::{
    ByteOrder, Complex, DType, NpyArray, NpyElement, NpyError, NpyVersion, parse_header,
};
use serde_json::Value as Json;

#[derive(Debug)]
struct Entry {
    file: String,
    dtype: String,
    shape: Vec<usize>,
    fortran_order: bool,
    big_endian: bool,
    version: NpyVersion,
    values: Vec<Json>,
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(common::golden_dir().join("manifest.json")).unwrap();
    let json: Json = serde_json::from_str(&text).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|e| Entry {
            file: e["file"].as_str().unwrap().into(),
            dtype: e["dtype"].as_str().unwrap().into(),
            shape: e["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect(),
            fortran_order: e["fortran_order"].as_bool().unwrap(),
            big_endian: e["big_endian"].as_bool().unwrap(),
            version: match e["version"][0].as_u64().unwrap() {
                1 => NpyVersion::V1,
                2 => NpyVersion::V2,
                _ => NpyVersion::V3,
            },
            values: e["values"].as_array().unwrap().clone(),
        })
        .collect()
}

/// Compare an array's values, in C order, with the manifest's.
fn check_values<T: NpyElement + PartialEq + Debug>(
    raw: &NpyArray,
    expected: &[Json],
    conv: impl Fn(&Json) -> T,
    file: &str,
) {
    let arr = raw.to_array::<T>().unwrap();
    let got: Vec<T> = arr.iter().copied().collect();
    let want: Vec<T> = expected.iter().map(conv).collect();
    assert_eq!(got, want, "{file}");
}

fn check_entry_values(raw: &NpyArray, e: &Entry) {
    let v = &e.values;
    let f = &e.file;
    let c32 = |j: &Json| Complex::new(j[0].as_f64().unwrap() as f32, j[1].as_f64().unwrap() as f32);
    let c64 = |j: &Json| Complex::new(j[0].as_f64().unwrap(), j[1].as_f64().unwrap());
    match raw.dtype() {
        DType::Bool => check_values(raw, v, |j| j.as_u64().unwrap() != 0, f),
        DType::Int8 => check_values(raw, v, |j| j.as_i64().unwrap() as i8, f),
        DType::Int16 => check_values(raw, v, |j| j.as_i64().unwrap() as i16, f),
        DType::Int32 => check_values(raw, v, |j| j.as_i64().unwrap() as i32, f),
        DType::Int64 => check_values(raw, v, |j| j.as_i64().unwrap(), f),
        DType::UInt8 => check_values(raw, v, |j| j.as_u64().unwrap() as u8, f),
        DType::UInt16 => check_values(raw, v, |j| j.as_u64().unwrap() as u16, f),
        DType::UInt32 => check_values(raw, v, |j| j.as_u64().unwrap() as u32, f),
        DType::UInt64 => check_values(raw, v, |j| j.as_u64().unwrap(), f),
        DType::Float32 => check_values(raw, v, |j| j.as_f64().unwrap() as f32, f),
        DType::Float64 => check_values(raw, v, |j| j.as_f64().unwrap(), f),
        DType::Complex64 => check_values(raw, v, c32, f),
        DType::Complex128 => check_values(raw, v, c64, f),
    }
}

/// Rebuild the file from values through `ndarray` (what the codec does) and return its bytes.
fn rewrite(raw: &NpyArray) -> Vec<u8> {
    fn via<T: NpyElement>(raw: &NpyArray) -> Vec<u8> {
        NpyArray::from_array(&raw.to_array::<T>().unwrap()).to_npy_bytes()
    }
    match raw.dtype() {
        DType::Bool => via::<bool>(raw),
        DType::Int8 => via::<i8>(raw),
        DType::Int16 => via::<i16>(raw),
        DType::Int32 => via::<i32>(raw),
        DType::Int64 => via::<i64>(raw),
        DType::UInt8 => via::<u8>(raw),
        DType::UInt16 => via::<u16>(raw),
        DType::UInt32 => via::<u32>(raw),
        DType::UInt64 => via::<u64>(raw),
        DType::Float32 => via::<f32>(raw),
        DType::Float64 => via::<f64>(raw),
        DType::Complex64 => via::<Complex<f32>>(raw),
        DType::Complex128 => via::<Complex<f64>>(raw),
    }
}

#[test]
fn numpy_files_parse_and_little_endian_ones_are_rewritten_byte_for_byte() {
    let entries = manifest();
    assert!(
        entries.len() >= 30,
        "manifest has {} entries",
        entries.len()
    );
    let mut exact = 0;
    for e in &entries {
        let bytes = common::golden(&e.file);
        let parsed = parse_header(&bytes).unwrap();
        assert_eq!(parsed.version, e.version, "{}", e.file);
        assert_eq!(
            parsed.data_offset % 64,
            0,
            "{}: data is 64-byte aligned",
            e.file
        );
        let h = &parsed.header;
        assert_eq!(h.shape, e.shape, "{}", e.file);
        assert_eq!(h.fortran_order, e.fortran_order, "{}", e.file);
        let order = if e.big_endian {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        };
        // The manifest's dtype is `str(arr.dtype)`, what DataJoint records.
        assert_eq!(h.dtype.numpy_str(order), e.dtype, "{}", e.file);
        if h.dtype.itemsize() > 1 {
            assert_eq!(h.byte_order, order, "{}", e.file);
        }

        let raw = NpyArray::from_npy_bytes(&bytes).unwrap();
        check_entry_values(&raw, e);

        if !e.big_endian {
            let mut header = raw.header();
            header.byte_order = ByteOrder::Little;
            match e.version {
                NpyVersion::V1 => {
                    assert_eq!(raw.to_npy_bytes(), bytes, "{}: NpyArray", e.file);
                    assert_eq!(rewrite(&raw), bytes, "{}: via ndarray", e.file);
                }
                v => {
                    let mut b = header.to_bytes_version(v).unwrap();
                    b.extend_from_slice(raw.data());
                    assert_eq!(b, bytes, "{}", e.file);
                }
            }
            exact += 1;
        } else {
            // Big-endian files come back as the same values; rewritten they are little-endian.
            let again = NpyArray::from_npy_bytes(&rewrite(&raw)).unwrap();
            assert_eq!(again, raw, "{}", e.file);
        }
    }
    assert!(exact >= 19, "{exact} files compared byte for byte");
}

#[test]
fn fortran_files_keep_their_order_and_values() {
    let raw = NpyArray::from_npy_bytes(&common::golden("float64_fortran.npy")).unwrap();
    assert!(raw.fortran_order());
    let a = raw.to_array::<f64>().unwrap();
    assert_eq!(a.shape(), &[2, 3, 4]);
    assert_eq!(a[[1, 2, 3]], 23.0);
    assert_eq!(a[[0, 1, 2]], 6.0);
    let raw = NpyArray::from_npy_bytes(&common::golden("int32_fortran_be.npy")).unwrap();
    let a = raw.to_array::<i32>().unwrap();
    assert_eq!(a, ndarray::array![[0, 1, 2], [3, 4, 5]].into_dyn());
}

#[test]
fn refused_files_give_clear_errors() {
    let e = NpyArray::from_npy_bytes(&common::golden("bad_object.npy")).unwrap_err();
    assert!(matches!(e, NpyError::ObjectDtype { .. }), "{e}");
    assert!(e.to_string().contains("pickle"), "{e}");
    let e = NpyArray::from_npy_bytes(&common::golden("bad_pickle.npy")).unwrap_err();
    assert_eq!(e, NpyError::Pickle);
    let e = NpyArray::from_npy_bytes(&common::golden("bad_truncated.npy")).unwrap_err();
    assert!(
        matches!(
            e,
            NpyError::Truncated {
                what: "array data",
                needed: 32,
                available: 29
            }
        ),
        "{e}"
    );
    let e: dj_core::Error = e.in_object("main", "x/y.npy").into();
    assert!(matches!(e, dj_core::Error::Integrity { .. }), "{e}");
    assert!(e.to_string().contains("x/y.npy"), "{e}");
}
