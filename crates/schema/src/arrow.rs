//! Arrow record batches (feature `arrow`): [`Query::to_arrow`] and [`Table::insert_arrow`].
//!
//! The batch has one field per fetched attribute, in heading order, every field nullable. Types:
//!
//! | attribute | Arrow type |
//! |---|---|
//! | `int8` … `int64`, `uint8` … `uint64` | `Int8` … `Int64`, `UInt8` … `UInt64` |
//! | `float32`, `float64` | `Float32`, `Float64` |
//! | `bool` | `Boolean` |
//! | `char`, `varchar`, `enum` | `Utf8` |
//! | `decimal(p, s)` | `Decimal128(p, s)` (`Utf8` when `p > 38`) |
//! | `date` | `Date32` |
//! | `datetime` | `Timestamp(Microsecond, None)` |
//! | `uuid` | `FixedSizeBinary(16)`, extension `arrow.uuid` |
//! | `json` | `Utf8` (JSON text), extension `arrow.json` |
//! | `bytes`, `<hash@>` | `Binary` |
//! | `<blob>`, `<blob@>`: numeric arrays | `List<T>` of the element type, each row's elements in row-major (numpy's C) order; `FixedSizeList<T>` when every row has the same shape; with two or more dimensions longer than one, also the `arrow.fixed_shape_tensor` extension with that `shape` |
//! | `<blob>`, `<blob@>`: Python floats, ints, bools, strings | `Float64`, `Int64`, `Boolean`, `Utf8` |
//! | `<blob>`, `<blob@>`: anything else | `Binary` holding DataJoint blob bytes, extension `datajoint.blob` |
//! | `<object@>`, `<npy@>`, `<filepath@>`, `<attach@>` | `Utf8` with the stored JSON metadata (path, size, …), extension `arrow.json`; nothing is downloaded |
//! | `<attach>` | `Binary`, the stored bytes (`filename\0content`) |
//! | an attribute without declared type | the type of its values |
//!
//! DataJoint 2.3.5's `to_arrow` lets pyarrow infer types from Python values (so `int32` comes
//! out as `int64`, a `uuid` fails to convert, a 2-D array fails); dj-rs keeps each declared type.
//!
//! [`Table::insert_arrow`] takes the same forms back (and `LargeUtf8`, `Utf8View`,
//! `LargeBinary`, `LargeList`, other timestamp units): a list cell becomes a numeric blob
//! array (shaped by `arrow.fixed_shape_tensor`), `datajoint.blob` bytes are decoded to their
//! item, `arrow.json` text is parsed as JSON.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array as _, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    FixedSizeBinaryArray, FixedSizeListArray, Float32Array, Float64Array, Int8Array, Int16Array,
    Int32Array, Int64Array, ListArray, NullArray, RecordBatch, RecordBatchOptions, StringArray,
    TimestampMicrosecondArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use dj_core::value::Value;

use crate::Row;
use crate::error::{Error, Result};
use crate::frame::{
    self, BLOB_EXTENSION, ColData, Column, EXTENSION_METADATA, EXTENSION_NAME, Prims,
};
use crate::query::Query;
use crate::table::{InsertOptions, Table};

pub use arrow_array;
pub use arrow_schema;

fn frame_err(table: &str, attribute: &str, message: impl Into<String>) -> Error {
    Error::BadValue {
        table: table.to_string(),
        attribute: attribute.to_string(),
        message: message.into(),
    }
}

fn prims_array(p: Prims) -> (DataType, ArrayRef) {
    match p {
        Prims::Bool(v) => (DataType::Boolean, Arc::new(BooleanArray::from(v))),
        Prims::I8(v) => (DataType::Int8, Arc::new(Int8Array::from(v))),
        Prims::U8(v) => (DataType::UInt8, Arc::new(UInt8Array::from(v))),
        Prims::I16(v) => (DataType::Int16, Arc::new(Int16Array::from(v))),
        Prims::U16(v) => (DataType::UInt16, Arc::new(UInt16Array::from(v))),
        Prims::I32(v) => (DataType::Int32, Arc::new(Int32Array::from(v))),
        Prims::U32(v) => (DataType::UInt32, Arc::new(UInt32Array::from(v))),
        Prims::I64(v) => (DataType::Int64, Arc::new(Int64Array::from(v))),
        Prims::U64(v) => (DataType::UInt64, Arc::new(UInt64Array::from(v))),
        Prims::F32(v) => (DataType::Float32, Arc::new(Float32Array::from(v))),
        Prims::F64(v) => (DataType::Float64, Arc::new(Float64Array::from(v))),
    }
}

fn extension(name: &str, metadata: Option<String>) -> HashMap<String, String> {
    let mut m = HashMap::from([(EXTENSION_NAME.to_string(), name.to_string())]);
    if let Some(md) = metadata {
        m.insert(EXTENSION_METADATA.to_string(), md);
    }
    m
}

fn binary(v: &[Option<Vec<u8>>]) -> ArrayRef {
    Arc::new(BinaryArray::from_opt_vec(
        v.iter().map(|b| b.as_deref()).collect(),
    ))
}

/// One column as an Arrow field and array.
fn to_array(table: &str, c: Column) -> Result<(Field, ArrayRef)> {
    let err = |m: String| frame_err(table, &c.name, m);
    let mut meta = HashMap::new();
    let (dt, array): (DataType, ArrayRef) = match c.data {
        ColData::Null(n) => (DataType::Null, Arc::new(NullArray::new(n))),
        ColData::Bool(v) => (DataType::Boolean, Arc::new(BooleanArray::from(v))),
        ColData::Int8(v) => (DataType::Int8, Arc::new(Int8Array::from(v))),
        ColData::Int16(v) => (DataType::Int16, Arc::new(Int16Array::from(v))),
        ColData::Int32(v) => (DataType::Int32, Arc::new(Int32Array::from(v))),
        ColData::Int64(v) => (DataType::Int64, Arc::new(Int64Array::from(v))),
        ColData::UInt8(v) => (DataType::UInt8, Arc::new(UInt8Array::from(v))),
        ColData::UInt16(v) => (DataType::UInt16, Arc::new(UInt16Array::from(v))),
        ColData::UInt32(v) => (DataType::UInt32, Arc::new(UInt32Array::from(v))),
        ColData::UInt64(v) => (DataType::UInt64, Arc::new(UInt64Array::from(v))),
        ColData::Float32(v) => (DataType::Float32, Arc::new(Float32Array::from(v))),
        ColData::Float64(v) => (DataType::Float64, Arc::new(Float64Array::from(v))),
        ColData::Decimal {
            precision,
            scale,
            values,
        } => {
            let scale = i8::try_from(scale).map_err(|_| err(format!("scale {scale}")))?;
            let a = Decimal128Array::from(values)
                .with_precision_and_scale(precision, scale)
                .map_err(|e| err(e.to_string()))?;
            (DataType::Decimal128(precision, scale), Arc::new(a))
        }
        ColData::Utf8(v) => (DataType::Utf8, Arc::new(StringArray::from(v))),
        ColData::Json(v) => {
            meta = extension("arrow.json", None);
            (DataType::Utf8, Arc::new(StringArray::from(v)))
        }
        ColData::Binary(v) => (DataType::Binary, binary(&v)),
        ColData::Blob(v) => {
            meta = extension(BLOB_EXTENSION, None);
            (DataType::Binary, binary(&v))
        }
        ColData::Uuid(v) => {
            meta = extension("arrow.uuid", None);
            let a = if v.iter().all(Option::is_none) {
                FixedSizeBinaryArray::new_null(16, v.len())
            } else {
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(v.into_iter(), 16)
                    .map_err(|e| err(e.to_string()))?
            };
            (DataType::FixedSizeBinary(16), Arc::new(a))
        }
        ColData::Date(v) => (DataType::Date32, Arc::new(Date32Array::from(v))),
        ColData::DateTime(v) => (
            DataType::Timestamp(TimeUnit::Microsecond, None),
            Arc::new(TimestampMicrosecondArray::from(v)),
        ),
        ColData::List {
            values,
            lengths,
            fixed,
            shape,
        } => {
            let (item_type, values) = prims_array(values);
            let item = Arc::new(Field::new("item", item_type, false));
            match fixed {
                Some(size) => {
                    let size = i32::try_from(size).map_err(|_| err("list too long".into()))?;
                    if let Some(shape) = shape {
                        let shape = serde_json::json!({ "shape": shape }).to_string();
                        meta = extension("arrow.fixed_shape_tensor", Some(shape));
                    }
                    let a = FixedSizeListArray::try_new(item.clone(), size, values, None)
                        .map_err(|e| err(e.to_string()))?;
                    (DataType::FixedSizeList(item, size), Arc::new(a))
                }
                None => {
                    let nulls = lengths
                        .iter()
                        .any(Option::is_none)
                        .then(|| NullBuffer::from_iter(lengths.iter().map(Option::is_some)));
                    let offsets =
                        OffsetBuffer::<i32>::from_lengths(lengths.iter().map(|l| l.unwrap_or(0)));
                    let a = ListArray::try_new(item.clone(), offsets, values, nulls)
                        .map_err(|e| err(e.to_string()))?;
                    (DataType::List(item), Arc::new(a))
                }
            }
        }
    };
    Ok((Field::new(&c.name, dt, true).with_metadata(meta), array))
}

/// A record batch of typed columns.
pub(crate) fn batch_of(table: &str, columns: Vec<Column>) -> Result<RecordBatch> {
    let rows = columns.first().map_or(0, |c| c.data.len());
    let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns
        .into_iter()
        .map(|c| to_array(table, c))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| Error::Serde {
        table: Some(table.to_string()),
        message: format!("building the Arrow record batch: {e}"),
    })
}

impl Query {
    /// The matching rows as one Arrow [`RecordBatch`], a column per attribute in heading order,
    /// typed as the [module docs](crate::arrow) list.
    ///
    /// ```
    /// # use dj_schema::{Connection, Tier, row};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let mut config = dj_config::Config::default();
    /// # config.database.path = Some(":memory:".into());
    /// # let conn = Connection::open(&config).await?;
    /// let lab = conn.schema("lab").await?;
    /// let subject = lab
    ///     .declare("Subject", Tier::Manual, "subject_id : int32\n---\nweight : float32")
    ///     .await?;
    /// subject.insert1(&row! { "subject_id" => 1, "weight" => 20.5 }).await?;
    /// let batch = subject.query().to_arrow().await?;
    /// assert_eq!(batch.num_rows(), 1);
    /// assert_eq!(batch.schema().field(0).data_type(), &dj_schema::arrow::arrow_schema::DataType::Int32);
    /// # Ok::<(), dj_schema::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn to_arrow(&self) -> Result<RecordBatch> {
        let columns = frame::fetch_columns(self).await?;
        batch_of(&self.label(), columns)
    }
}

/// The values of one Arrow column, a [`Value`] per row.
fn column_values(table: &str, field: &Field, a: &ArrayRef) -> Result<Vec<Value>> {
    let name = field.name();
    let err = |m: String| frame_err(table, name, m);
    let ext = field.metadata().get(EXTENSION_NAME).map(String::as_str);
    let n = a.len();
    macro_rules! prim {
        ($t:ty, $f:expr) => {{
            let p = a.as_primitive::<$t>();
            (0..n)
                .map(|i| {
                    if p.is_null(i) {
                        Value::Null
                    } else {
                        $f(p.value(i))
                    }
                })
                .collect::<Vec<Value>>()
        }};
    }
    let texts = |get: &dyn Fn(usize) -> Option<String>| -> Result<Vec<Value>> {
        (0..n)
            .map(|i| match get(i) {
                None => Ok(Value::Null),
                Some(s) if ext == Some("arrow.json") => serde_json::from_str(&s)
                    .map(Value::Json)
                    .map_err(|e| err(format!("row {i}: not JSON: {e}"))),
                Some(s) => Ok(Value::String(s)),
            })
            .collect()
    };
    let bytes = |get: &dyn Fn(usize) -> Option<Vec<u8>>| -> Result<Vec<Value>> {
        (0..n)
            .map(|i| match get(i) {
                None => Ok(Value::Null),
                Some(b) if ext == Some(BLOB_EXTENSION) => dj_codec_blob::decode(&b)
                    .map(Value::domain)
                    .map_err(|e| err(format!("row {i}: {e}"))),
                Some(b) => Ok(Value::Bytes(b.into())),
            })
            .collect()
    };
    Ok(match a.data_type() {
        DataType::Null => vec![Value::Null; n],
        DataType::Boolean => {
            let b = a.as_boolean();
            (0..n)
                .map(|i| {
                    if b.is_null(i) {
                        Value::Null
                    } else {
                        Value::Bool(b.value(i))
                    }
                })
                .collect()
        }
        DataType::Int8 => prim!(Int8Type, |x: i8| Value::Int(x.into())),
        DataType::Int16 => prim!(Int16Type, |x: i16| Value::Int(x.into())),
        DataType::Int32 => prim!(Int32Type, |x: i32| Value::Int(x.into())),
        DataType::Int64 => prim!(Int64Type, Value::Int),
        DataType::UInt8 => prim!(UInt8Type, |x: u8| Value::Int(x.into())),
        DataType::UInt16 => prim!(UInt16Type, |x: u16| Value::Int(x.into())),
        DataType::UInt32 => prim!(UInt32Type, |x: u32| Value::Int(x.into())),
        DataType::UInt64 => prim!(UInt64Type, Value::from),
        DataType::Float32 => prim!(Float32Type, |x: f32| Value::Float(x.into())),
        DataType::Float64 => prim!(Float64Type, Value::Float),
        DataType::Decimal128(_, s) => {
            let s = u8::try_from(*s).map_err(|_| err(format!("negative scale {s}")))?;
            prim!(Decimal128Type, |x: i128| Value::Decimal(
                frame::decimal_text(x, s)
            ))
        }
        DataType::Date32 => {
            let p = a.as_primitive::<Date32Type>();
            (0..n)
                .map(|i| {
                    if p.is_null(i) {
                        return Ok(Value::Null);
                    }
                    frame::days_date(p.value(i))
                        .map(Value::Date)
                        .ok_or_else(|| err(format!("row {i}: date out of range")))
                })
                .collect::<Result<_>>()?
        }
        DataType::Date64 => {
            let p = a.as_primitive::<Date64Type>();
            (0..n)
                .map(|i| {
                    if p.is_null(i) {
                        return Ok(Value::Null);
                    }
                    frame::micros_datetime(p.value(i).saturating_mul(1000))
                        .map(|d| Value::Date(d.date()))
                        .ok_or_else(|| err(format!("row {i}: date out of range")))
                })
                .collect::<Result<_>>()?
        }
        DataType::Timestamp(unit, _) => {
            let raw: Vec<Option<i64>> = match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().iter().collect(),
                TimeUnit::Millisecond => a
                    .as_primitive::<TimestampMillisecondType>()
                    .iter()
                    .collect(),
                TimeUnit::Microsecond => a
                    .as_primitive::<TimestampMicrosecondType>()
                    .iter()
                    .collect(),
                TimeUnit::Nanosecond => {
                    a.as_primitive::<TimestampNanosecondType>().iter().collect()
                }
            };
            raw.into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let Some(v) = v else {
                        return Ok(Value::Null);
                    };
                    let micros = match unit {
                        TimeUnit::Second => v.checked_mul(1_000_000),
                        TimeUnit::Millisecond => v.checked_mul(1000),
                        TimeUnit::Microsecond => Some(v),
                        TimeUnit::Nanosecond => Some(v.div_euclid(1000)),
                    };
                    micros
                        .and_then(frame::micros_datetime)
                        .map(Value::DateTime)
                        .ok_or_else(|| err(format!("row {i}: timestamp out of range")))
                })
                .collect::<Result<_>>()?
        }
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            texts(&|i| (!s.is_null(i)).then(|| s.value(i).to_string()))?
        }
        DataType::LargeUtf8 => {
            let s = a.as_string::<i64>();
            texts(&|i| (!s.is_null(i)).then(|| s.value(i).to_string()))?
        }
        DataType::Utf8View => {
            let s = a.as_string_view();
            texts(&|i| (!s.is_null(i)).then(|| s.value(i).to_string()))?
        }
        DataType::Binary => {
            let b = a.as_binary::<i32>();
            bytes(&|i| (!b.is_null(i)).then(|| b.value(i).to_vec()))?
        }
        DataType::LargeBinary => {
            let b = a.as_binary::<i64>();
            bytes(&|i| (!b.is_null(i)).then(|| b.value(i).to_vec()))?
        }
        DataType::BinaryView => {
            let b = a.as_binary_view();
            bytes(&|i| (!b.is_null(i)).then(|| b.value(i).to_vec()))?
        }
        DataType::FixedSizeBinary(16) if ext == Some("arrow.uuid") => {
            let b = a.as_fixed_size_binary();
            (0..n)
                .map(|i| {
                    if b.is_null(i) {
                        return Ok(Value::Null);
                    }
                    uuid::Uuid::from_slice(b.value(i))
                        .map(Value::Uuid)
                        .map_err(|e| err(e.to_string()))
                })
                .collect::<Result<_>>()?
        }
        DataType::FixedSizeBinary(_) => {
            let b = a.as_fixed_size_binary();
            bytes(&|i| (!b.is_null(i)).then(|| b.value(i).to_vec()))?
        }
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            cells(
                table,
                name,
                (0..n).map(|i| (!l.is_null(i)).then(|| l.value(i))),
                None,
            )?
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            cells(
                table,
                name,
                (0..n).map(|i| (!l.is_null(i)).then(|| l.value(i))),
                None,
            )?
        }
        DataType::FixedSizeList(..) => {
            let l = a.as_fixed_size_list();
            let shape = match ext {
                Some("arrow.fixed_shape_tensor") => field
                    .metadata()
                    .get(EXTENSION_METADATA)
                    .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
                    .and_then(|m| serde_json::from_value::<Vec<u64>>(m["shape"].clone()).ok()),
                _ => None,
            };
            cells(
                table,
                name,
                (0..n).map(|i| (!l.is_null(i)).then(|| l.value(i))),
                shape.as_deref(),
            )?
        }
        other => {
            return Err(err(format!(
                "Arrow type {other} has no DataJoint form; cast the column first"
            )));
        }
    })
}

/// List cells (arrays of numbers) as blob arrays.
fn cells(
    table: &str,
    name: &str,
    cells: impl Iterator<Item = Option<ArrayRef>>,
    shape: Option<&[u64]>,
) -> Result<Vec<Value>> {
    cells
        .enumerate()
        .map(|(i, c)| {
            let Some(c) = c else {
                return Ok(Value::Null);
            };
            let err = |m: String| frame_err(table, name, format!("row {i}: {m}"));
            if c.null_count() > 0 {
                return Err(err("a list cell holds nulls; blob arrays cannot".into()));
            }
            macro_rules! p {
                ($t:ty, $v:ident) => {
                    Prims::$v(c.as_primitive::<$t>().values().to_vec())
                };
            }
            let values = match c.data_type() {
                DataType::Boolean => Prims::Bool(c.as_boolean().values().iter().collect()),
                DataType::Int8 => p!(Int8Type, I8),
                DataType::UInt8 => p!(UInt8Type, U8),
                DataType::Int16 => p!(Int16Type, I16),
                DataType::UInt16 => p!(UInt16Type, U16),
                DataType::Int32 => p!(Int32Type, I32),
                DataType::UInt32 => p!(UInt32Type, U32),
                DataType::Int64 => p!(Int64Type, I64),
                DataType::UInt64 => p!(UInt64Type, U64),
                DataType::Float32 => p!(Float32Type, F32),
                DataType::Float64 => p!(Float64Type, F64),
                other => {
                    return Err(err(format!(
                        "lists of {other} have no blob form; only numeric and boolean lists do"
                    )));
                }
            };
            frame::list_value(values, shape).map_err(err)
        })
        .collect()
}

/// Rows of a record batch, a [`Row`] per batch row keyed by field name.
pub(crate) fn rows_of(table: &str, batch: &RecordBatch) -> Result<Vec<Row>> {
    let schema = batch.schema();
    let columns: Vec<Vec<Value>> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, a)| column_values(table, f, a))
        .collect::<Result<_>>()?;
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    let mut iters: Vec<_> = columns.into_iter().map(Vec::into_iter).collect();
    Ok((0..batch.num_rows())
        .map(|_| {
            names
                .iter()
                .zip(iters.iter_mut())
                .map(|(n, it)| ((*n).clone(), it.next().unwrap_or(Value::Null)))
                .collect()
        })
        .collect())
}

impl Table {
    /// Every row as one Arrow [`RecordBatch`]: `self.query().to_arrow()`.
    pub async fn to_arrow(&self) -> Result<RecordBatch> {
        self.query().to_arrow().await
    }

    /// Insert the rows of an Arrow [`RecordBatch`] (fields named as attributes) in one
    /// transaction, through the normal insert path. Returns the number of rows written.
    /// The forms are those [`Query::to_arrow`] produces (see the [module docs](crate::arrow)).
    pub async fn insert_arrow(&self, batch: &RecordBatch) -> Result<u64> {
        self.insert_arrow_with(batch, InsertOptions::default())
            .await
    }

    /// [`Table::insert_arrow`] with options.
    pub async fn insert_arrow_with(&self, batch: &RecordBatch, opts: InsertOptions) -> Result<u64> {
        let mut rows = rows_of(&self.full_name(), batch)?;
        frame::adapt_to(self, &mut rows)?;
        self.insert_with(&rows, opts).await
    }
}
