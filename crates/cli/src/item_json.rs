//! Blob items as JSON, for `dj blob cat`.
//!
//! | blob item | JSON |
//! |---|---|
//! | `None` | `null` |
//! | bool, str | boolean, string |
//! | int | a number; a string of digits when it does not fit 64 bits |
//! | float | a number; `"nan"`, `"inf"`, `"-inf"` (Python's spelling) when not finite |
//! | complex | `{"real": r, "imag": i}` |
//! | bytes | `{"bytes": "<base64>"}` |
//! | decimal, uuid | a string |
//! | date / time / datetime | an ISO 8601 string: `2024-05-01`, `13:45:00.250000`, `2024-05-01T13:45:00` |
//! | tuple, list, set | an array |
//! | dict | an object; keys that are not strings are written as text (as Python's `json.dumps`), and a dict with other keys (tuples, arrays) becomes `{"dict": [[key, value], …]}` |
//! | N-d array | `{"dtype": "float64", "shape": [2, 3], "data": [[…], […]]}` |
//! | MATLAB struct array | `{"dtype": "struct", "shape": […], "fields": […], "data": [[{field: value}, …], …]}` |
//! | MATLAB cell array | `{"dtype": "cell", "shape": […], "data": […]}` |
//! | numpy record array | `{"dtype": "record", "fields": […], "data": {field: column, …}}` |
//!
//! Array `data` is nested lists in the array's logical index order, as numpy's `tolist()` gives
//! them (the outermost list runs over the first dimension), whatever the storage order; a 0-d
//! array's `data` is the scalar, and an array with no elements has `data` `[]` (its `shape`
//! says which dimension is empty). `dtype` is numpy's name (`bool`, `int8` … `uint64`, `float32`,
//! `float64`, `complex64`, `complex128`, `datetime64[ns]`, `object`), or `char` for a MATLAB
//! char array, whose `data` is a string when it has at most one dimension longer than 1.
//!
//! ```
//! use dj_cli::item_json::item_to_json;
//! use datajoint::blob::{Array, ArrayData, Item};
//!
//! // [[1, 2, 3], [4, 5, 6]] stored in Fortran order.
//! let a = Array::new(vec![2, 3], ArrayData::I32(vec![1, 4, 2, 5, 3, 6])).unwrap();
//! assert_eq!(
//!     item_to_json(&Item::Array(a)),
//!     serde_json::json!({"dtype": "int32", "shape": [2, 3], "data": [[1, 2, 3], [4, 5, 6]]})
//! );
//! ```

use datajoint::blob::{Array, ArrayData, DATETIME64_UNITS, Item, Temporal};
use serde_json::{Map, Value as Json, json};

/// The JSON form of a blob item (see the module documentation for the mapping).
pub fn item_to_json(item: &Item) -> Json {
    match item {
        Item::None => Json::Null,
        Item::Bool(b) => Json::Bool(*b),
        Item::Int(i) => match i.to_i128() {
            Some(v) => i64::try_from(v)
                .map(Json::from)
                .or_else(|_| u64::try_from(v).map(Json::from))
                .unwrap_or_else(|_| Json::String(i.to_string())),
            None => Json::String(i.to_string()),
        },
        Item::Float(f) => float(*f),
        Item::Complex(re, im) => complex(*re, *im),
        Item::Str(s) => Json::String(s.clone()),
        Item::Bytes(b) => json!({ "bytes": data_encoding::BASE64.encode(b) }),
        Item::Decimal(d) => Json::String(d.clone()),
        Item::Temporal(t) => Json::String(temporal(t)),
        Item::Uuid(u) => Json::String(u.to_string()),
        Item::Tuple(v) | Item::List(v) | Item::Set(v) => {
            Json::Array(v.iter().map(item_to_json).collect())
        }
        Item::Dict(pairs) => dict(pairs),
        Item::Array(a) => array(a),
        Item::Struct(s) => {
            let elements: Vec<Json> = s
                .elements
                .iter()
                .map(|e| {
                    let mut m = Map::new();
                    for (name, v) in s.fields.iter().zip(e) {
                        m.insert(name.clone(), item_to_json(v));
                    }
                    Json::Object(m)
                })
                .collect();
            json!({
                "dtype": "struct",
                "shape": s.shape,
                "fields": s.fields,
                "data": nest(&s.shape, &|i| elements.get(i).cloned().unwrap_or(Json::Null)),
            })
        }
        Item::Cell(c) => json!({
            "dtype": "cell",
            "shape": c.shape,
            "data": nest(&c.shape, &|i| c.items.get(i).map_or(Json::Null, item_to_json)),
        }),
        Item::Record(r) => {
            let mut data = Map::new();
            for (name, column) in r.fields.iter().zip(&r.columns) {
                data.insert(name.clone(), item_to_json(column));
            }
            json!({ "dtype": "record", "fields": r.fields, "data": data })
        }
    }
}

fn float(f: f64) -> Json {
    if f.is_nan() {
        Json::String("nan".into())
    } else if f.is_infinite() {
        Json::String(if f > 0.0 { "inf" } else { "-inf" }.into())
    } else {
        serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
    }
}

fn complex(re: f64, im: f64) -> Json {
    json!({ "real": float(re), "imag": float(im) })
}

fn temporal(t: &Temporal) -> String {
    let date = (t.date >= 0).then(|| {
        let d = t.date;
        format!("{:04}-{:02}-{:02}", d / 10_000, d / 100 % 100, d % 100)
    });
    let time = (t.time >= 0).then(|| {
        let micros = t.time % 1_000_000;
        let hms = t.time / 1_000_000;
        let base = format!(
            "{:02}:{:02}:{:02}",
            hms / 10_000,
            hms / 100 % 100,
            hms % 100
        );
        if micros == 0 {
            base
        } else {
            format!("{base}.{micros:06}")
        }
    });
    match (date, time) {
        (Some(d), Some(t)) => format!("{d}T{t}"),
        (Some(d), None) => d,
        (None, Some(t)) => t,
        (None, None) => String::new(),
    }
}

/// The object key a dict key becomes, when it has a text form.
fn key_text(k: &Item) -> Option<String> {
    match k {
        Item::Str(s) => Some(s.clone()),
        Item::Int(i) => Some(i.to_string()),
        Item::Bool(b) => Some(b.to_string()),
        Item::None => Some("null".into()),
        Item::Float(f) => Some(match float(*f) {
            Json::String(s) => s,
            other => other.to_string(),
        }),
        Item::Decimal(d) => Some(d.clone()),
        Item::Uuid(u) => Some(u.to_string()),
        _ => None,
    }
}

fn dict(pairs: &[(Item, Item)]) -> Json {
    let mut m = Map::new();
    for (k, v) in pairs {
        match key_text(k) {
            Some(key) if !m.contains_key(&key) => {
                m.insert(key, item_to_json(v));
            }
            _ => {
                let list: Vec<Json> = pairs
                    .iter()
                    .map(|(k, v)| json!([item_to_json(k), item_to_json(v)]))
                    .collect();
                return json!({ "dict": list });
            }
        }
    }
    Json::Object(m)
}

/// Nested lists over `shape` (outermost over the first dimension), each element taken from
/// the Fortran-order linear index by `get`. A 0-d shape gives the one element itself.
fn nest(shape: &[u64], get: &dyn Fn(usize) -> Json) -> Json {
    let dims: Vec<usize> = shape
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    // An empty array is `[]`: a shape like (10**12, 0) must not become 10**12 empty lists.
    if dims.contains(&0) {
        return Json::Array(Vec::new());
    }
    let mut strides = Vec::with_capacity(dims.len());
    let mut stride = 1usize;
    for d in &dims {
        strides.push(stride);
        stride = stride.saturating_mul(*d);
    }
    fn level(
        dim: usize,
        offset: usize,
        dims: &[usize],
        strides: &[usize],
        get: &dyn Fn(usize) -> Json,
    ) -> Json {
        match (dims.get(dim), strides.get(dim)) {
            (Some(&n), Some(&s)) => Json::Array(
                (0..n)
                    .map(|i| level(dim + 1, offset + i * s, dims, strides, get))
                    .collect(),
            ),
            _ => get(offset),
        }
    }
    level(0, 0, &dims, &strides, get)
}

/// numpy's dtype name of numeric array data.
fn dtype(data: &ArrayData) -> String {
    match data {
        ArrayData::Bool(_) => "bool".into(),
        ArrayData::Char(_) => "char".into(),
        ArrayData::I8(_) => "int8".into(),
        ArrayData::U8(_) => "uint8".into(),
        ArrayData::I16(_) => "int16".into(),
        ArrayData::U16(_) => "uint16".into(),
        ArrayData::I32(_) => "int32".into(),
        ArrayData::U32(_) => "uint32".into(),
        ArrayData::I64(_) => "int64".into(),
        ArrayData::U64(_) => "uint64".into(),
        ArrayData::F32(_) => "float32".into(),
        ArrayData::F64(_) => "float64".into(),
        ArrayData::Complex(re, _) => match re.as_ref() {
            ArrayData::F32(_) => "complex64".into(),
            ArrayData::F64(_) => "complex128".into(),
            other => format!("complex[{}]", dtype(other)),
        },
        ArrayData::DateTime64 { unit, .. } => format!(
            "datetime64[{}]",
            DATETIME64_UNITS.get(usize::from(*unit)).unwrap_or(&"?")
        ),
        ArrayData::Object(_) => "object".into(),
    }
}

/// Element `i` of numeric array data as JSON.
fn element(data: &ArrayData, i: usize) -> Json {
    fn at<T: Copy>(v: &[T], i: usize, f: impl Fn(T) -> Json) -> Json {
        v.get(i).map_or(Json::Null, |x| f(*x))
    }
    match data {
        ArrayData::Bool(v) => at(v, i, |x| Json::Bool(x != 0)),
        ArrayData::Char(v) => at(v, i, |x| {
            Json::String(
                char::decode_utf16([x])
                    .map(|c| c.unwrap_or('\u{FFFD}'))
                    .collect(),
            )
        }),
        ArrayData::I8(v) => at(v, i, Json::from),
        ArrayData::U8(v) => at(v, i, Json::from),
        ArrayData::I16(v) => at(v, i, Json::from),
        ArrayData::U16(v) => at(v, i, Json::from),
        ArrayData::I32(v) => at(v, i, Json::from),
        ArrayData::U32(v) => at(v, i, Json::from),
        ArrayData::I64(v) => at(v, i, Json::from),
        ArrayData::U64(v) => at(v, i, Json::from),
        ArrayData::F32(v) => at(v, i, |x| float(f64::from(x))),
        ArrayData::F64(v) => at(v, i, float),
        ArrayData::Complex(re, im) => {
            let part = |d: &ArrayData| match element(d, i) {
                Json::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                _ => f64::NAN,
            };
            complex(part(re), part(im))
        }
        ArrayData::DateTime64 { ticks, .. } => at(ticks, i, Json::from),
        ArrayData::Object(v) => v.get(i).map_or(Json::Null, item_to_json),
    }
}

fn array(a: &Array) -> Json {
    let data = match &a.data {
        // A char row or column is text.
        ArrayData::Char(units) if a.shape.iter().filter(|&&d| d > 1).count() <= 1 => {
            Json::String(String::from_utf16_lossy(units))
        }
        d => nest(&a.shape, &|i| element(d, i)),
    };
    json!({ "dtype": dtype(&a.data), "shape": a.shape, "data": data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datajoint::blob::{CellArray, PyInt, StructArray};

    #[test]
    fn scalars_and_containers() {
        assert_eq!(item_to_json(&Item::None), Json::Null);
        assert_eq!(item_to_json(&Item::from(7_i64)), json!(7));
        assert_eq!(
            item_to_json(&Item::Int(PyInt::from(i128::from(u64::MAX) + 1))),
            json!("18446744073709551616")
        );
        assert_eq!(item_to_json(&Item::Float(f64::NAN)), json!("nan"));
        assert_eq!(
            item_to_json(&Item::Complex(1.0, -2.0)),
            json!({"real": 1.0, "imag": -2.0})
        );
        assert_eq!(
            item_to_json(&Item::Bytes(b"hi".to_vec())),
            json!({"bytes": "aGk="})
        );
        assert_eq!(
            item_to_json(&Item::Temporal(Temporal {
                date: 20240501,
                time: 134500250000
            })),
            json!("2024-05-01T13:45:00.250000")
        );
        assert_eq!(
            item_to_json(&Item::Dict(vec![
                (Item::from("a"), Item::from(1_i64)),
                (Item::from(2_i64), Item::List(vec![Item::from(true)])),
            ])),
            json!({"a": 1, "2": [true]})
        );
        assert_eq!(
            item_to_json(&Item::Dict(vec![(
                Item::Tuple(vec![Item::from(1_i64)]),
                Item::None
            )])),
            json!({"dict": [[[1], null]]})
        );
    }

    #[test]
    fn arrays_nest_in_index_order() {
        // shape (2, 2, 2), Fortran order: element (i, j, k) at i + 2j + 4k.
        let data: Vec<f64> = (0..8).map(f64::from).collect();
        let a = Array::new(vec![2, 2, 2], ArrayData::F64(data)).unwrap();
        assert_eq!(
            item_to_json(&Item::Array(a))["data"],
            json!([[[0.0, 4.0], [2.0, 6.0]], [[1.0, 5.0], [3.0, 7.0]]])
        );
        let scalar = Array::new(vec![], ArrayData::I64(vec![5])).unwrap();
        assert_eq!(item_to_json(&Item::Array(scalar))["data"], json!(5));
        let empty = Array::new(vec![0, 3], ArrayData::F64(vec![])).unwrap();
        assert_eq!(item_to_json(&Item::Array(empty))["data"], json!([]));
        let wide = Array::new(vec![1 << 40, 0], ArrayData::F64(vec![])).unwrap();
        assert_eq!(item_to_json(&Item::Array(wide))["data"], json!([]));
        let text: Vec<u16> = "hello".encode_utf16().collect();
        let chars = Array::new(vec![1, 5], ArrayData::Char(text)).unwrap();
        assert_eq!(
            item_to_json(&Item::Array(chars)),
            json!({"dtype": "char", "shape": [1, 5], "data": "hello"})
        );
        let c = Array::new(
            vec![1],
            ArrayData::Complex(
                Box::new(ArrayData::F64(vec![1.0])),
                Box::new(ArrayData::F64(vec![2.0])),
            ),
        )
        .unwrap();
        assert_eq!(
            item_to_json(&Item::Array(c)),
            json!({"dtype": "complex128", "shape": [1], "data": [{"real": 1.0, "imag": 2.0}]})
        );
    }

    #[test]
    fn matlab_structs_and_cells() {
        let s = StructArray {
            shape: vec![1, 1],
            fields: vec!["a".into()],
            elements: vec![vec![Item::from("x")]],
        };
        assert_eq!(
            item_to_json(&Item::Struct(s)),
            json!({"dtype": "struct", "shape": [1, 1], "fields": ["a"], "data": [[{"a": "x"}]]})
        );
        let c = CellArray {
            shape: vec![2],
            items: vec![Item::from(1_i64), Item::from("b")],
        };
        assert_eq!(
            item_to_json(&Item::Cell(c)),
            json!({"dtype": "cell", "shape": [2], "data": [1, "b"]})
        );
    }
}
