//! Query results as typed columns: the step `to_arrow` and `to_polars` share, and rows from
//! typed columns for `insert_arrow` and `insert_polars`.
//!
//! The column types (documented for users in `docs/fetch-forms.md`):
//! - core types map to the native type of the same width: `int8`…`uint64`, `float32`/`float64`,
//!   `bool`, `char`/`varchar`/`enum` as UTF-8, `bytes` as binary, `date` as days since the
//!   epoch, `datetime` as microseconds since the epoch (no time zone), `decimal(p, s)` as a
//!   128-bit decimal of that precision and scale (text when `p > 38`), `uuid` as 16 bytes
//!   (Arrow's `arrow.uuid` extension; a hyphenated string in Polars), `json` as JSON text;
//! - `<blob>`/`<blob@>` values are decoded: numeric arrays (and lists of numbers) become list
//!   columns of their element type, elements in row-major order; when every row has the same
//!   shape the column is fixed-size (a tensor when that shape has several dimensions); columns of
//!   Python scalars become scalar columns; anything else is the DataJoint blob bytes;
//! - `<hash@>` gives its bytes; `<object@>`, `<npy@>`, `<filepath@>` and `<attach>` give their
//!   stored form (the JSON metadata that locates the object, or the in-table bytes), never
//!   downloading anything;
//! - attributes without a declared type (computed ones) take the type of their values.

use chrono::{NaiveDate, NaiveDateTime};
use dj_codec_blob::{Array, ArrayData, Item};
use dj_core::typespec::{CoreType, TypeSpec};
use dj_core::value::Value;

use crate::Row;
use crate::error::{Error, Result};
use crate::query::Query;
use crate::serde_row::blob_de::reorder;
use crate::table::AttrInfo;

/// Codecs whose values are references to objects or files: a frame carries their stored form.
const STORED_FORM: &[&str] = &["object", "npy", "filepath", "attach"];

/// Field metadata key of Arrow extension types.
pub(crate) const EXTENSION_NAME: &str = "ARROW:extension:name";
/// Field metadata key of an extension type's parameters.
pub(crate) const EXTENSION_METADATA: &str = "ARROW:extension:metadata";
/// Extension name of a column of DataJoint blobs (bytes in DataJoint's blob format).
pub(crate) const BLOB_EXTENSION: &str = "datajoint.blob";

/// Flat numeric values of a list column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Prims {
    Bool(Vec<bool>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Prims {
    fn same_kind(&self, other: &Prims) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    fn len(&self) -> usize {
        match self {
            Prims::Bool(v) => v.len(),
            Prims::I8(v) => v.len(),
            Prims::U8(v) => v.len(),
            Prims::I16(v) => v.len(),
            Prims::U16(v) => v.len(),
            Prims::I32(v) => v.len(),
            Prims::U32(v) => v.len(),
            Prims::I64(v) => v.len(),
            Prims::U64(v) => v.len(),
            Prims::F32(v) => v.len(),
            Prims::F64(v) => v.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn empty_like(&self) -> Prims {
        match self {
            Prims::Bool(_) => Prims::Bool(Vec::new()),
            Prims::I8(_) => Prims::I8(Vec::new()),
            Prims::U8(_) => Prims::U8(Vec::new()),
            Prims::I16(_) => Prims::I16(Vec::new()),
            Prims::U16(_) => Prims::U16(Vec::new()),
            Prims::I32(_) => Prims::I32(Vec::new()),
            Prims::U32(_) => Prims::U32(Vec::new()),
            Prims::I64(_) => Prims::I64(Vec::new()),
            Prims::U64(_) => Prims::U64(Vec::new()),
            Prims::F32(_) => Prims::F32(Vec::new()),
            Prims::F64(_) => Prims::F64(Vec::new()),
        }
    }

    /// Append `other` (of the same kind) in row-major order of `shape`.
    fn extend_c_order(&mut self, other: &Prims, shape: &[u64]) {
        macro_rules! ext {
            ($($v:ident),*) => {
                match (self, other) {
                    $((Prims::$v(a), Prims::$v(b)) => a.extend(reorder(b, shape)),)*
                    _ => {}
                }
            };
        }
        ext!(Bool, I8, U8, I16, U16, I32, U32, I64, U64, F32, F64);
    }

    /// The blob array data of these values, in the order given.
    pub(crate) fn into_array_data(self) -> ArrayData {
        match self {
            Prims::Bool(v) => ArrayData::Bool(v.into_iter().map(u8::from).collect()),
            Prims::I8(v) => ArrayData::I8(v),
            Prims::U8(v) => ArrayData::U8(v),
            Prims::I16(v) => ArrayData::I16(v),
            Prims::U16(v) => ArrayData::U16(v),
            Prims::I32(v) => ArrayData::I32(v),
            Prims::U32(v) => ArrayData::U32(v),
            Prims::I64(v) => ArrayData::I64(v),
            Prims::U64(v) => ArrayData::U64(v),
            Prims::F32(v) => ArrayData::F32(v),
            Prims::F64(v) => ArrayData::F64(v),
        }
    }

    /// Row-major values of shape `shape` as a blob array (stored column-major).
    pub(crate) fn into_item(self, shape: Vec<u64>) -> Result<Item, String> {
        let reversed: Vec<u64> = shape.iter().rev().copied().collect();
        // Row-major data of `shape` is column-major data of the reversed shape: reordering that
        // to row-major gives the column-major order of `shape`.
        let data = match self {
            Prims::Bool(v) => Prims::Bool(reorder(&v, &reversed)),
            Prims::I8(v) => Prims::I8(reorder(&v, &reversed)),
            Prims::U8(v) => Prims::U8(reorder(&v, &reversed)),
            Prims::I16(v) => Prims::I16(reorder(&v, &reversed)),
            Prims::U16(v) => Prims::U16(reorder(&v, &reversed)),
            Prims::I32(v) => Prims::I32(reorder(&v, &reversed)),
            Prims::U32(v) => Prims::U32(reorder(&v, &reversed)),
            Prims::I64(v) => Prims::I64(reorder(&v, &reversed)),
            Prims::U64(v) => Prims::U64(reorder(&v, &reversed)),
            Prims::F32(v) => Prims::F32(reorder(&v, &reversed)),
            Prims::F64(v) => Prims::F64(reorder(&v, &reversed)),
        };
        Array::new(shape, data.into_array_data())
            .map(Item::Array)
            .map_err(|e| e.to_string())
    }
}

/// The numeric values and shape of a blob item that is a numeric array or a list of numbers.
fn numeric(item: &Item) -> Option<(Prims, Vec<u64>)> {
    match item {
        Item::Array(a) => {
            let p = match &a.data {
                ArrayData::Bool(v) => Prims::Bool(v.iter().map(|&b| b != 0).collect()),
                ArrayData::I8(v) => Prims::I8(v.clone()),
                ArrayData::U8(v) => Prims::U8(v.clone()),
                ArrayData::I16(v) => Prims::I16(v.clone()),
                ArrayData::U16(v) => Prims::U16(v.clone()),
                ArrayData::I32(v) => Prims::I32(v.clone()),
                ArrayData::U32(v) => Prims::U32(v.clone()),
                ArrayData::I64(v) => Prims::I64(v.clone()),
                ArrayData::U64(v) => Prims::U64(v.clone()),
                ArrayData::F32(v) => Prims::F32(v.clone()),
                ArrayData::F64(v) => Prims::F64(v.clone()),
                _ => return None,
            };
            Some((p, a.shape.clone()))
        }
        // An empty list (an empty Rust `Vec` is written as one): no elements of any kind.
        Item::List(v) | Item::Tuple(v) if v.is_empty() => Some((Prims::F64(Vec::new()), vec![0])),
        Item::List(v) | Item::Tuple(v) => {
            let n = v.len() as u64;
            if v.iter().all(|i| matches!(i, Item::Float(_))) {
                Some((
                    Prims::F64(
                        v.iter()
                            .filter_map(|i| match i {
                                Item::Float(f) => Some(*f),
                                _ => None,
                            })
                            .collect(),
                    ),
                    vec![n],
                ))
            } else if v
                .iter()
                .all(|i| matches!(i, Item::Int(x) if x.to_i64().is_some()))
            {
                Some((
                    Prims::I64(
                        v.iter()
                            .filter_map(|i| match i {
                                Item::Int(x) => x.to_i64(),
                                _ => None,
                            })
                            .collect(),
                    ),
                    vec![n],
                ))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// One column's values, typed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ColData {
    /// Only nulls (a computed attribute that is always NULL).
    Null(usize),
    Bool(Vec<Option<bool>>),
    Int8(Vec<Option<i8>>),
    Int16(Vec<Option<i16>>),
    Int32(Vec<Option<i32>>),
    Int64(Vec<Option<i64>>),
    UInt8(Vec<Option<u8>>),
    UInt16(Vec<Option<u16>>),
    UInt32(Vec<Option<u32>>),
    UInt64(Vec<Option<u64>>),
    Float32(Vec<Option<f32>>),
    Float64(Vec<Option<f64>>),
    Decimal {
        precision: u8,
        scale: u8,
        values: Vec<Option<i128>>,
    },
    Utf8(Vec<Option<String>>),
    /// JSON documents as text.
    Json(Vec<Option<String>>),
    Binary(Vec<Option<Vec<u8>>>),
    Uuid(Vec<Option<[u8; 16]>>),
    /// Days since 1970-01-01.
    Date(Vec<Option<i32>>),
    /// Microseconds since 1970-01-01T00:00:00, no time zone.
    DateTime(Vec<Option<i64>>),
    /// Numeric arrays: flat values (row-major per row) and each row's length (`None`: null).
    List {
        values: Prims,
        lengths: Vec<Option<usize>>,
        /// The common length, when every row has one and no row is null.
        fixed: Option<usize>,
        /// The common shape, when it has more than one dimension longer than 1.
        shape: Option<Vec<u64>>,
    },
    /// DataJoint blob bytes (values a list column cannot hold).
    Blob(Vec<Option<Vec<u8>>>),
}

impl ColData {
    /// The number of rows.
    pub(crate) fn len(&self) -> usize {
        match self {
            ColData::Null(n) => *n,
            ColData::Bool(v) => v.len(),
            ColData::Int8(v) => v.len(),
            ColData::Int16(v) => v.len(),
            ColData::Int32(v) => v.len(),
            ColData::Int64(v) => v.len(),
            ColData::UInt8(v) => v.len(),
            ColData::UInt16(v) => v.len(),
            ColData::UInt32(v) => v.len(),
            ColData::UInt64(v) => v.len(),
            ColData::Float32(v) => v.len(),
            ColData::Float64(v) => v.len(),
            ColData::Decimal { values, .. } => values.len(),
            ColData::Utf8(v) | ColData::Json(v) => v.len(),
            ColData::Binary(v) | ColData::Blob(v) => v.len(),
            ColData::Uuid(v) => v.len(),
            ColData::Date(v) => v.len(),
            ColData::DateTime(v) => v.len(),
            ColData::List { lengths, .. } => lengths.len(),
        }
    }
}

/// A named, typed column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    pub name: String,
    pub data: ColData,
}

/// Whether a codec attribute appears in frames in its stored form.
fn stored_form(info: &AttrInfo) -> bool {
    info.resolved
        .as_ref()
        .and_then(|r| r.chain.first())
        .is_some_and(|c| STORED_FORM.contains(&c.name()))
}

/// Fetch a query's rows as typed columns (codec columns decoded where frames show their
/// values, see the module docs).
pub(crate) async fn fetch_columns(q: &Query) -> Result<Vec<Column>> {
    let names = q.selected_names()?;
    let rows = q.fetch_rows_decoding(&names, |i| !stored_form(i)).await?;
    let h = q.heading_ref()?;
    let hints: Vec<Option<TypeSpec>> = names
        .iter()
        .map(|n| {
            let a = h.any_attribute(n)?;
            let info = a.source.as_ref().and_then(|s| s.info())?;
            if info.has_codec && !stored_form(info) {
                None
            } else {
                Some(info.final_type.clone())
            }
        })
        .collect();
    columns_from_rows(&q.label(), &names, &hints, rows)
}

/// Typed columns from rows whose values come in `names` order. `hints` gives each column's
/// declared final type, when it has one whose values these are.
pub(crate) fn columns_from_rows(
    table: &str,
    names: &[String],
    hints: &[Option<TypeSpec>],
    rows: Vec<Row>,
) -> Result<Vec<Column>> {
    let mut cols: Vec<Vec<Value>> = names
        .iter()
        .map(|_| Vec::with_capacity(rows.len()))
        .collect();
    for row in rows {
        for (j, (_, v)) in row.into_iter().enumerate() {
            if let Some(c) = cols.get_mut(j) {
                c.push(v);
            }
        }
    }
    names
        .iter()
        .zip(cols)
        .enumerate()
        .map(|(j, (name, values))| {
            let hint = hints.get(j).and_then(Option::as_ref);
            let data = column(hint, values).map_err(|message| Error::BadValue {
                table: table.to_string(),
                attribute: name.clone(),
                message,
            })?;
            Ok(Column {
                name: name.clone(),
                data,
            })
        })
        .collect()
}

fn ints<T: TryFrom<i64> + TryFrom<u64>>(values: Vec<Value>) -> Result<Vec<Option<T>>, String> {
    values
        .into_iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::Int(i) => T::try_from(i)
                .map(Some)
                .map_err(|_| format!("{i} is out of range")),
            Value::UInt(u) => T::try_from(u)
                .map(Some)
                .map_err(|_| format!("{u} is out of range")),
            Value::Bool(b) => T::try_from(i64::from(b))
                .map(Some)
                .map_err(|_| "bool out of range".to_string()),
            other => Err(format!("expected an integer, found {}", other.kind())),
        })
        .collect()
}

fn floats(values: Vec<Value>) -> Result<Vec<Option<f64>>, String> {
    values
        .into_iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::Decimal(s) => s
                .parse::<f64>()
                .map(Some)
                .map_err(|e| format!("decimal `{s}`: {e}")),
            other => other
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("expected a number, found {}", other.kind())),
        })
        .collect()
}

/// A decimal's text as an integer scaled by `10^scale`.
pub(crate) fn scaled_decimal(text: &str, scale: u8) -> Result<i128, String> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let bad = || format!("`{text}` is not a decimal number");
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let scale = usize::from(scale);
    let mut digits = String::with_capacity(int.len() + scale);
    digits.push_str(int);
    if frac.len() > scale {
        // More digits than the scale: DataJoint's columns never hold these; refuse to round.
        if frac[scale..].bytes().any(|b| b != b'0') {
            return Err(format!("`{text}` has more than {scale} decimal places"));
        }
        digits.push_str(&frac[..scale]);
    } else {
        digits.push_str(frac);
        digits.extend(std::iter::repeat_n('0', scale - frac.len()));
    }
    let digits = digits.trim_start_matches('0');
    let v: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| bad())?
    };
    Ok(if neg { -v } else { v })
}

/// An integer scaled by `10^scale` as decimal text.
pub(crate) fn decimal_text(v: i128, scale: u8) -> String {
    let s = v.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let sign = if v < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{s}");
    }
    let padded = if s.len() <= scale {
        format!("{}{s}", "0".repeat(scale + 1 - s.len()))
    } else {
        s
    };
    let (i, f) = padded.split_at(padded.len() - scale);
    format!("{sign}{i}.{f}")
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

/// Days since the epoch.
pub(crate) fn date_days(d: NaiveDate) -> i32 {
    i32::try_from(d.signed_duration_since(epoch()).num_days()).unwrap_or(i32::MAX)
}

/// Microseconds since the epoch.
pub(crate) fn datetime_micros(d: NaiveDateTime) -> i64 {
    d.and_utc().timestamp_micros()
}

/// The date `days` after the epoch.
pub(crate) fn days_date(days: i32) -> Option<NaiveDate> {
    epoch().checked_add_signed(chrono::Duration::days(i64::from(days)))
}

/// The date and time `micros` after the epoch.
pub(crate) fn micros_datetime(micros: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
        .map_err(|e| format!("`{s}` is not a date: {e}"))
}

fn parse_datetime(s: &str) -> Result<NaiveDateTime, String> {
    crate::db::parse_datetime_text(s).ok_or_else(|| format!("`{s}` is not a date and time"))
}

/// A column of a known core type.
fn core_column(c: &CoreType, values: Vec<Value>) -> Result<ColData, String> {
    use CoreType as C;
    Ok(match c {
        C::Int8 => ColData::Int8(ints(values)?),
        C::Int16 => ColData::Int16(ints(values)?),
        C::Int32 => ColData::Int32(ints(values)?),
        C::Int64 => ColData::Int64(ints(values)?),
        C::UInt8 => ColData::UInt8(ints(values)?),
        C::UInt16 => ColData::UInt16(ints(values)?),
        C::UInt32 => ColData::UInt32(ints(values)?),
        C::UInt64 => ColData::UInt64(ints(values)?),
        #[allow(clippy::cast_possible_truncation)]
        C::Float32 => ColData::Float32(
            floats(values)?
                .into_iter()
                .map(|f| f.map(|f| f as f32))
                .collect(),
        ),
        C::Float64 => ColData::Float64(floats(values)?),
        C::Bool => ColData::Bool(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Bool(b) => Ok(Some(b)),
                    Value::Int(i) => Ok(Some(i != 0)),
                    Value::UInt(u) => Ok(Some(u != 0)),
                    other => Err(format!("expected a bool, found {}", other.kind())),
                })
                .collect::<Result<_, String>>()?,
        ),
        C::Decimal(p, s) if *p <= 38 => ColData::Decimal {
            precision: *p,
            scale: *s,
            values: values
                .into_iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Decimal(t) | Value::String(t) => scaled_decimal(&t, *s).map(Some),
                    Value::Int(i) => scaled_decimal(&i.to_string(), *s).map(Some),
                    Value::UInt(u) => scaled_decimal(&u.to_string(), *s).map(Some),
                    other => Err(format!("expected a decimal, found {}", other.kind())),
                })
                .collect::<Result<_, String>>()?,
        },
        C::Decimal(..) | C::Char(_) | C::Varchar(_) | C::Enum(_) => ColData::Utf8(texts(values)?),
        C::Uuid => ColData::Uuid(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Uuid(u) => Ok(Some(*u.as_bytes())),
                    Value::String(s) => uuid::Uuid::parse_str(&s)
                        .map(|u| Some(*u.as_bytes()))
                        .map_err(|e| format!("`{s}` is not a UUID: {e}")),
                    Value::Bytes(b) => <[u8; 16]>::try_from(b.as_ref())
                        .map(Some)
                        .map_err(|_| format!("{} bytes are not a UUID", b.len())),
                    other => Err(format!("expected a UUID, found {}", other.kind())),
                })
                .collect::<Result<_, String>>()?,
        ),
        C::Json => ColData::Json(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Json(j) => Ok(Some(j.to_string())),
                    Value::String(s) => Ok(Some(s)),
                    other => Err(format!("expected JSON, found {}", other.kind())),
                })
                .collect::<Result<_, String>>()?,
        ),
        C::Bytes => ColData::Binary(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Bytes(b) => Ok(Some(b.to_vec())),
                    other => Err(format!("expected bytes, found {}", other.kind())),
                })
                .collect::<Result<_, String>>()?,
        ),
        C::Date => ColData::Date(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::Date(d) => Ok(Some(date_days(d))),
                    Value::DateTime(d) => Ok(Some(date_days(d.date()))),
                    Value::String(s) => parse_date(&s).map(|d| Some(date_days(d))),
                    other => Err(format!("expected a date, found {}", other.kind())),
                })
                .collect::<Result<_, String>>()?,
        ),
        C::DateTime(_) => ColData::DateTime(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::DateTime(d) => Ok(Some(datetime_micros(d))),
                    Value::Date(d) => Ok(Some(datetime_micros(d.and_time(Default::default())))),
                    Value::String(s) => parse_datetime(&s).map(|d| Some(datetime_micros(d))),
                    other => Err(format!("expected a datetime, found {}", other.kind())),
                })
                .collect::<Result<_, String>>()?,
        ),
    })
}

fn texts(values: Vec<Value>) -> Result<Vec<Option<String>>, String> {
    values
        .into_iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::String(s) | Value::Decimal(s) => Ok(Some(s)),
            other => Err(format!("expected text, found {}", other.kind())),
        })
        .collect()
}

/// A column's data from its values and, when known, its declared final type.
fn column(hint: Option<&TypeSpec>, values: Vec<Value>) -> Result<ColData, String> {
    if let Some(TypeSpec::Core(c)) = hint {
        return core_column(c, values);
    }
    infer(values)
}

/// The type of a column nothing declares, from its values.
fn infer(values: Vec<Value>) -> Result<ColData, String> {
    let n = values.len();
    let present: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
    let Some(first) = present.first() else {
        return Ok(ColData::Null(n));
    };
    let all = |f: fn(&Value) -> bool| present.iter().all(|v| f(v));
    if all(|v| matches!(v, Value::Domain(d) if d.is::<Item>())) {
        return blob_column(&values);
    }
    if let Value::Domain(d) = first {
        return Err(format!(
            "values of type `{}` have no column form; fetch rows instead",
            d.type_name()
        ));
    }
    let core = if all(|v| matches!(v, Value::Bool(_))) {
        CoreType::Bool
    } else if all(|v| matches!(v, Value::Int(_) | Value::Bool(_))) {
        CoreType::Int64
    } else if all(|v| matches!(v, Value::UInt(_) | Value::Int(0..))) {
        CoreType::UInt64
    } else if all(|v| matches!(v, Value::Int(_) | Value::UInt(_) | Value::Float(_))) {
        CoreType::Float64
    } else if all(|v| matches!(v, Value::Decimal(_) | Value::Int(_))) {
        let scale = present
            .iter()
            .filter_map(|v| match v {
                Value::Decimal(s) => s.split_once('.').map(|(_, f)| f.len()),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        CoreType::Decimal(38, u8::try_from(scale.min(38)).unwrap_or(38))
    } else if all(|v| matches!(v, Value::String(_))) {
        CoreType::Varchar(0)
    } else if all(|v| matches!(v, Value::Bytes(_))) {
        CoreType::Bytes
    } else if all(|v| matches!(v, Value::Uuid(_))) {
        CoreType::Uuid
    } else if all(|v| matches!(v, Value::Date(_))) {
        CoreType::Date
    } else if all(|v| matches!(v, Value::DateTime(_) | Value::Date(_))) {
        CoreType::DateTime(None)
    } else if all(|v| matches!(v, Value::Json(_))) {
        CoreType::Json
    } else {
        // Mixed scalar kinds (SQLite's dynamic typing): their text.
        return Ok(ColData::Utf8(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Null => None,
                    Value::String(s) | Value::Decimal(s) => Some(s),
                    Value::Int(i) => Some(i.to_string()),
                    Value::UInt(u) => Some(u.to_string()),
                    Value::Float(f) => Some(f.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    Value::Uuid(u) => Some(u.to_string()),
                    Value::Date(d) => Some(d.to_string()),
                    Value::DateTime(d) => Some(d.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
                    Value::Json(j) => Some(j.to_string()),
                    other => Some(other.kind()),
                })
                .collect(),
        ));
    };
    core_column(&core, values)
}

/// A column of blob items (and nulls).
fn blob_column(values: &[Value]) -> Result<ColData, String> {
    let items: Vec<Option<&Item>> = values.iter().map(|v| v.as_domain::<Item>()).collect();
    let present = || items.iter().flatten();
    // Numeric arrays of one element type: a list column.
    let nums: Vec<Option<(Prims, Vec<u64>)>> = items.iter().map(|i| i.and_then(numeric)).collect();
    let numeric_rows = nums.iter().flatten().count();
    if numeric_rows > 0 && numeric_rows == present().count() {
        // Empty arrays hold no elements: they take the kind of the others.
        let first = nums
            .iter()
            .flatten()
            .find(|(p, _)| !p.is_empty())
            .or_else(|| nums.iter().flatten().next());
        let kinds_agree = nums
            .iter()
            .flatten()
            .all(|(p, _)| p.is_empty() || first.is_some_and(|(f, _)| f.same_kind(p)));
        if kinds_agree && let Some((first, first_shape)) = first {
            let mut values = first.empty_like();
            let mut lengths = Vec::with_capacity(nums.len());
            let mut same_shape = true;
            for n in &nums {
                match n {
                    Some((p, shape)) => {
                        values.extend_c_order(p, shape);
                        lengths.push(Some(p.len()));
                        same_shape &= shape == first_shape;
                    }
                    None => lengths.push(None),
                }
            }
            let all_present = lengths.iter().all(Option::is_some);
            let fixed = if all_present && same_shape {
                Some(first.len())
            } else {
                None
            };
            let multi = first_shape.iter().filter(|&&d| d > 1).count() > 1;
            let shape = (fixed.is_some() && multi).then(|| first_shape.clone());
            debug_assert_eq!(values.len(), lengths.iter().flatten().sum::<usize>());
            return Ok(ColData::List {
                values,
                lengths,
                fixed,
                shape,
            });
        }
    }
    // Python scalars: a scalar column.
    if present().all(|i| matches!(i, Item::Float(_) | Item::Int(_)))
        && present().any(|i| matches!(i, Item::Float(_)))
    {
        return Ok(ColData::Float64(
            items
                .iter()
                .map(|i| match i {
                    Some(Item::Float(f)) => Some(*f),
                    Some(Item::Int(x)) => x.to_i64().map(|x| x as f64),
                    _ => None,
                })
                .collect(),
        ));
    }
    if present().all(|i| matches!(i, Item::Int(x) if x.to_i64().is_some())) {
        return Ok(ColData::Int64(
            items
                .iter()
                .map(|i| match i {
                    Some(Item::Int(x)) => x.to_i64(),
                    _ => None,
                })
                .collect(),
        ));
    }
    if present().all(|i| matches!(i, Item::Bool(_))) {
        return Ok(ColData::Bool(
            items
                .iter()
                .map(|i| match i {
                    Some(Item::Bool(b)) => Some(*b),
                    _ => None,
                })
                .collect(),
        ));
    }
    if present().all(|i| matches!(i, Item::Str(_))) {
        return Ok(ColData::Utf8(
            items
                .iter()
                .map(|i| match i {
                    Some(Item::Str(s)) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
        ));
    }
    // Anything else: the blob bytes, which `dj_codec_blob::decode` (or DataJoint's
    // `blob.unpack`) reads back.
    Ok(ColData::Blob(
        items
            .iter()
            .map(|i| i.map(dj_codec_blob::encode).transpose())
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?,
    ))
}

/// Values for a row from a list cell: a blob array of the cell's values with `shape` (or a
/// vector when `None`).
pub(crate) fn list_value(values: Prims, shape: Option<&[u64]>) -> Result<Value, String> {
    let shape = match shape {
        Some(s) => s.to_vec(),
        None => vec![values.len() as u64],
    };
    values.into_item(shape).map(Value::domain)
}

/// Adjust rows read from a frame to the table they go into: bytes bound for a `<blob>` column
/// that are DataJoint blob bytes become their item again (a frame keeps non-array blobs as
/// bytes), and text bound for a `json` column is parsed (Polars has no JSON type).
pub(crate) fn adapt_to(table: &crate::table::Table, rows: &mut [Row]) -> Result<()> {
    let full = table.full_name();
    for a in &table.heading().attributes {
        let Some(info) = table.attr_info(&a.name) else {
            continue;
        };
        let blob = info
            .resolved
            .as_ref()
            .and_then(|r| r.chain.first())
            .is_some_and(|c| c.name() == "blob");
        let json = !info.has_codec && info.final_type == TypeSpec::Core(CoreType::Json);
        if !blob && !json {
            continue;
        }
        for (i, row) in rows.iter_mut().enumerate() {
            let Some(v) = row.get_mut(&a.name) else {
                continue;
            };
            match v {
                Value::Bytes(b)
                    if blob
                        && [&b"mYm\0"[..], b"dj0\0", b"ZL123\0"]
                            .iter()
                            .any(|h| b.starts_with(h)) =>
                {
                    let item = dj_codec_blob::decode(b).map_err(|e| Error::BadValue {
                        table: full.clone(),
                        attribute: a.name.clone(),
                        message: format!("row {i}: {e}"),
                    })?;
                    *v = Value::domain(item);
                }
                Value::String(s) if json => {
                    let j = serde_json::from_str(s).map_err(|e| Error::BadValue {
                        table: full.clone(),
                        attribute: a.name.clone(),
                        message: format!("row {i}: not JSON: {e}"),
                    })?;
                    *v = Value::Json(j);
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decimals_scale_both_ways() {
        assert_eq!(scaled_decimal("12.5", 2), Ok(1250));
        assert_eq!(scaled_decimal("-0.05", 2), Ok(-5));
        assert_eq!(scaled_decimal("3", 3), Ok(3000));
        assert_eq!(scaled_decimal("1.230", 2), Ok(123));
        assert!(scaled_decimal("1.234", 2).is_err());
        assert!(scaled_decimal("1e3", 2).is_err());
        assert!(scaled_decimal("", 2).is_err());
        assert_eq!(decimal_text(1250, 2), "12.50");
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(decimal_text(7, 0), "7");
    }

    #[test]
    fn dates_and_times_from_the_epoch() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        assert_eq!(date_days(d), 19723);
        assert_eq!(days_date(19723), Some(d));
        let t = d.and_hms_micro_opt(1, 2, 3, 4).unwrap();
        assert_eq!(micros_datetime(datetime_micros(t)), Some(t));
    }

    #[test]
    fn blob_columns_by_content() {
        let v = |i: Item| Value::domain(i);
        // Vectors of one kind, an empty one among them: a list column.
        let data = infer(vec![
            v(Item::from(vec![1.0, 2.0])),
            Value::Null,
            v(Item::List(vec![])),
            v(Item::List(vec![Item::Float(3.0)])),
        ])
        .unwrap();
        let ColData::List {
            values,
            lengths,
            fixed,
            ..
        } = data
        else {
            panic!("{data:?}");
        };
        assert_eq!(values, Prims::F64(vec![1.0, 2.0, 3.0]));
        assert_eq!(lengths, [Some(2), None, Some(0), Some(1)]);
        assert_eq!(fixed, None);
        // Matrices of one shape: fixed size, row-major, with the shape.
        let m = |k: f64| {
            Item::Array(
                Array::new(
                    vec![2, 2],
                    ArrayData::F64(vec![k, k + 2.0, k + 1.0, k + 3.0]),
                )
                .unwrap(),
            )
        };
        let ColData::List {
            values,
            fixed,
            shape,
            ..
        } = infer(vec![v(m(0.0)), v(m(10.0))]).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            values,
            Prims::F64(vec![0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0])
        );
        assert_eq!(fixed, Some(4));
        assert_eq!(shape, Some(vec![2, 2]));
        // And back: row-major values of a shape give the same blob array.
        let back = Prims::F64(vec![0.0, 1.0, 2.0, 3.0])
            .into_item(vec![2, 2])
            .unwrap();
        assert_eq!(back, m(0.0));
        // Mixed kinds, dicts: blob bytes.
        let ColData::Blob(b) =
            infer(vec![v(Item::from(vec![1_i32])), v(Item::from(vec![1.0]))]).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            dj_codec_blob::decode(b[0].as_ref().unwrap()).unwrap(),
            Item::from(vec![1_i32])
        );
        // Python scalars.
        assert_eq!(
            infer(vec![v(Item::Float(0.5)), v(Item::from(2_i64))]).unwrap(),
            ColData::Float64(vec![Some(0.5), Some(2.0)])
        );
        // Other domain values have no column form.
        assert!(infer(vec![Value::domain(7_u8)]).is_err());
    }
}
