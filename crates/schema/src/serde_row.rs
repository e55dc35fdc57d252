//! Rows to and from Rust types through serde.
//!
//! A struct (or map) serializes to a [`Row`]: scalars become the matching [`Value`], byte
//! buffers `Value::Bytes`, `None` and `()` `Value::Null`, unit enum variants their name, and
//! sequences, maps and nested structs `Value::Json`
//! (or, when they hold NaN or an infinity, which JSON cannot represent, the blob item DataJoint
//! would pack for them, with the `blob` feature, and an error without it). Deserializing reads a `Row` back: uuid, date
//! and datetime values are offered as ISO text (which `uuid` and `chrono` parse), decimals as text,
//! JSON as nested data. Domain values (a codec's Rust type) cannot pass through serde.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use dj_schema::serde_row::{from_row, to_row};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Subject { subject_id: i32, name: String, weight: Option<f64> }
//!
//! let s = Subject { subject_id: 1, name: "Ann".into(), weight: None };
//! let row = to_row(&s)?;
//! assert_eq!(row["subject_id"], dj_core::value::Value::Int(1));
//! assert_eq!(from_row::<Subject>(row)?, s);
//! # Ok::<(), dj_schema::Error>(())
//! ```

use std::any::Any;
use std::borrow::Cow;
use std::fmt;

use dj_core::value::Value;
use serde::de::{self, DeserializeOwned, IntoDeserializer};
use serde::ser::{self, Serialize};

use crate::Row;
use crate::error::Error;

#[derive(Debug)]
struct SerdeError(String);

impl fmt::Display for SerdeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SerdeError {}
impl ser::Error for SerdeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        SerdeError(msg.to_string())
    }
}
impl de::Error for SerdeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        SerdeError(msg.to_string())
    }
}

fn serde_err(e: SerdeError) -> Error {
    Error::Serde {
        table: None,
        message: e.0,
    }
}

/// Turn a serializable value (a struct or a map with string keys) into a row. A [`Row`] itself
/// is taken as it is, domain values included.
pub fn to_row<T: Serialize + Any>(value: &T) -> Result<Row, Error> {
    to_row_cow(value).map(Cow::into_owned)
}

/// [`to_row`] without copying a [`Row`]: it is borrowed; anything else is serialized.
pub(crate) fn to_row_cow<T: Serialize + Any>(value: &T) -> Result<Cow<'_, Row>, Error> {
    if let Some(row) = (value as &dyn Any).downcast_ref::<Row>() {
        return Ok(Cow::Borrowed(row));
    }
    let v = value.serialize(RowSerializer).map_err(serde_err)?;
    Ok(Cow::Owned(v))
}

/// Build a `T` from a row. For `T = Row` the row is returned as it is.
pub fn from_row<T: DeserializeOwned + Any>(row: Row) -> Result<T, Error> {
    let boxed: Box<dyn Any> = Box::new(row);
    match boxed.downcast::<T>() {
        Ok(t) => Ok(*t),
        Err(boxed) => match boxed.downcast::<Row>() {
            Ok(row) => T::deserialize(RowDeserializer { row: *row }).map_err(serde_err),
            Err(_) => Err(Error::Serde {
                table: None,
                message: "internal: row lost its type".into(),
            }),
        },
    }
}

// ------------------------------------------------------------------------------------------------
// Serializer: T -> Row
// ------------------------------------------------------------------------------------------------

struct RowSerializer;

struct RowMap {
    row: Row,
    key: Option<String>,
}

macro_rules! not_a_row {
    ($($f:ident($($t:ty),*)),* $(,)?) => {$(
        fn $f(self, $(_: $t),*) -> Result<Row, SerdeError> {
            Err(SerdeError("a row must be a struct or a map with string keys".into()))
        }
    )*};
}

impl ser::Serializer for RowSerializer {
    type Ok = Row;
    type Error = SerdeError;
    type SerializeSeq = ser::Impossible<Row, SerdeError>;
    type SerializeTuple = ser::Impossible<Row, SerdeError>;
    type SerializeTupleStruct = ser::Impossible<Row, SerdeError>;
    type SerializeTupleVariant = ser::Impossible<Row, SerdeError>;
    type SerializeMap = RowMap;
    type SerializeStruct = RowMap;
    type SerializeStructVariant = ser::Impossible<Row, SerdeError>;

    not_a_row!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Row, SerdeError> {
        v.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Row, SerdeError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Row, SerdeError> {
        Err(SerdeError("a row cannot be an enum variant".into()))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, SerdeError> {
        Err(SerdeError(
            "a row must be a struct or a map, not a sequence".into(),
        ))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, SerdeError> {
        Err(SerdeError(
            "a row must be a struct or a map, not a tuple".into(),
        ))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, SerdeError> {
        Err(SerdeError(
            "a row must be a struct or a map, not a tuple struct".into(),
        ))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, SerdeError> {
        Err(SerdeError("a row cannot be an enum variant".into()))
    }
    fn serialize_map(self, n: Option<usize>) -> Result<RowMap, SerdeError> {
        Ok(RowMap {
            row: Row::with_capacity(n.unwrap_or(0)),
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, n: usize) -> Result<RowMap, SerdeError> {
        self.serialize_map(Some(n))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, SerdeError> {
        Err(SerdeError("a row cannot be an enum variant".into()))
    }
}

impl ser::SerializeMap for RowMap {
    type Ok = Row;
    type Error = SerdeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerdeError> {
        match key.serialize(ValueSerializer)? {
            Value::String(s) => {
                self.key = Some(s);
                Ok(())
            }
            other => Err(SerdeError(format!(
                "row keys must be strings, found {}",
                other.kind()
            ))),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerdeError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| SerdeError("map value without key".into()))?;
        let v = field_value(value)?;
        self.row.insert(key, v);
        Ok(())
    }
    fn end(self) -> Result<Row, SerdeError> {
        Ok(self.row)
    }
}

impl ser::SerializeStruct for RowMap {
    type Ok = Row;
    type Error = SerdeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerdeError> {
        let v = field_value(value)?;
        self.row.insert(key.to_string(), v);
        Ok(())
    }
    fn skip_field(&mut self, _: &'static str) -> Result<(), SerdeError> {
        Ok(())
    }
    fn end(self) -> Result<Row, SerdeError> {
        Ok(self.row)
    }
}

/// One field value → [`Value`]; composite data goes to JSON.
struct ValueSerializer;

fn json<T: Serialize + ?Sized>(v: &T) -> Result<Value, SerdeError> {
    serde_json::to_value(v)
        .map(Value::Json)
        .map_err(|e| SerdeError(e.to_string()))
}

const COMPOSITE: &str = "\u{0}composite";

/// A field value: a scalar through [`ValueSerializer`], anything composite as JSON, except that
/// composite data holding NaN or an infinity (which JSON cannot represent, and `serde_json` would
/// silently turn into `null`) becomes a blob item (feature `blob`) or an error.
fn field_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, SerdeError> {
    match value.serialize(ValueSerializer) {
        Err(SerdeError(m)) if m == COMPOSITE => {
            if holds_non_finite(value)? {
                non_finite_composite(value)
            } else {
                json(value)
            }
        }
        other => other,
    }
}

/// Composite data with NaN or an infinity: the blob item DataJoint Python would pack for the same
/// Python value (floats stay floats, NaN stays NaN), for `<blob>` and `<blob@>` attributes.
#[cfg(feature = "blob")]
fn non_finite_composite<T: Serialize + ?Sized>(value: &T) -> Result<Value, SerdeError> {
    dj_codec_blob::to_item(value)
        .map(Value::domain)
        .map_err(|e| SerdeError(e.to_string()))
}

#[cfg(not(feature = "blob"))]
fn non_finite_composite<T: Serialize + ?Sized>(_: &T) -> Result<Value, SerdeError> {
    Err(SerdeError(
        "composite value holds NaN or an infinity, which JSON cannot represent (build with \
         the `blob` feature to store it in a <blob> attribute)"
            .into(),
    ))
}

/// Whether serializing `value` reaches a NaN or infinite float.
fn holds_non_finite<T: Serialize + ?Sized>(value: &T) -> Result<bool, SerdeError> {
    match value.serialize(FloatScan) {
        Ok(()) => Ok(false),
        Err(SerdeError(m)) if m == NON_FINITE => Ok(true),
        Err(e) => Err(e),
    }
}

const NON_FINITE: &str = "\u{0}non-finite";

/// A serializer that only looks for non-finite floats (stopping at the first).
struct FloatScan;

macro_rules! scan_ok {
    ($($f:ident($($t:ty),*);)*) => {$(
        fn $f(self, $(_: $t),*) -> Result<(), SerdeError> { Ok(()) }
    )*};
}

impl ser::Serializer for FloatScan {
    type Ok = ();
    type Error = SerdeError;
    type SerializeSeq = FloatScan;
    type SerializeTuple = FloatScan;
    type SerializeTupleStruct = FloatScan;
    type SerializeTupleVariant = FloatScan;
    type SerializeMap = FloatScan;
    type SerializeStruct = FloatScan;
    type SerializeStructVariant = FloatScan;

    scan_ok! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_i128(i128); serialize_u8(u8); serialize_u16(u16);
        serialize_u32(u32); serialize_u64(u64); serialize_u128(u128); serialize_char(char);
        serialize_str(&str); serialize_bytes(&[u8]); serialize_none(); serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }
    fn serialize_f32(self, v: f32) -> Result<(), SerdeError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), SerdeError> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(SerdeError(NON_FINITE.into()))
        }
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), SerdeError> {
        v.serialize(self)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), SerdeError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> Result<(), SerdeError> {
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<FloatScan, SerdeError> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<FloatScan, SerdeError> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<FloatScan, SerdeError> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<FloatScan, SerdeError> {
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<FloatScan, SerdeError> {
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<FloatScan, SerdeError> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<FloatScan, SerdeError> {
        Ok(self)
    }
}

/// The compound forms of [`FloatScan`]: every element, key and value is scanned.
macro_rules! scan_compound {
    ($($tr:ident :: $f:ident $(($k:ty))?;)*) => {$(
        impl ser::$tr for FloatScan {
            type Ok = ();
            type Error = SerdeError;
            fn $f<T: Serialize + ?Sized>(&mut self, $(_: $k,)? v: &T) -> Result<(), SerdeError> {
                v.serialize(FloatScan)
            }
            fn end(self) -> Result<(), SerdeError> {
                Ok(())
            }
        }
    )*};
}

scan_compound! {
    SerializeSeq::serialize_element;
    SerializeTuple::serialize_element;
    SerializeTupleStruct::serialize_field;
    SerializeTupleVariant::serialize_field;
    SerializeStruct::serialize_field(&'static str);
    SerializeStructVariant::serialize_field(&'static str);
}

impl ser::SerializeMap for FloatScan {
    type Ok = ();
    type Error = SerdeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), SerdeError> {
        k.serialize(FloatScan)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), SerdeError> {
        v.serialize(FloatScan)
    }
    fn end(self) -> Result<(), SerdeError> {
        Ok(())
    }
}

fn composite<T>() -> Result<T, SerdeError> {
    Err(SerdeError(COMPOSITE.into()))
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = SerdeError;
    type SerializeSeq = ser::Impossible<Value, SerdeError>;
    type SerializeTuple = ser::Impossible<Value, SerdeError>;
    type SerializeTupleStruct = ser::Impossible<Value, SerdeError>;
    type SerializeTupleVariant = ser::Impossible<Value, SerdeError>;
    type SerializeMap = ser::Impossible<Value, SerdeError>;
    type SerializeStruct = ser::Impossible<Value, SerdeError>;
    type SerializeStructVariant = ser::Impossible<Value, SerdeError>;

    fn serialize_bool(self, v: bool) -> Result<Value, SerdeError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, SerdeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, SerdeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, SerdeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, SerdeError> {
        Ok(Value::Int(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, SerdeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, SerdeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, SerdeError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, SerdeError> {
        Ok(Value::from(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, SerdeError> {
        Ok(Value::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, SerdeError> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, SerdeError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, SerdeError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, SerdeError> {
        Ok(Value::Bytes(bytes::Bytes::copy_from_slice(v)))
    }
    fn serialize_none(self) -> Result<Value, SerdeError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, SerdeError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, SerdeError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, SerdeError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, SerdeError> {
        Ok(Value::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<Value, SerdeError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Value, SerdeError> {
        composite()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, SerdeError> {
        composite()
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, SerdeError> {
        composite()
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, SerdeError> {
        composite()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, SerdeError> {
        composite()
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, SerdeError> {
        composite()
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, SerdeError> {
        composite()
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, SerdeError> {
        composite()
    }
}

// ------------------------------------------------------------------------------------------------
// Deserializer: Row -> T
// ------------------------------------------------------------------------------------------------

struct RowDeserializer {
    row: Row,
}

impl<'de> de::Deserializer<'de> for RowDeserializer {
    type Error = SerdeError;
    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        visitor.visit_map(de::value::MapDeserializer::new(
            self.row.into_iter().map(|(k, v)| (k, ValueDe(v))),
        ))
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct ValueDe(Value);

impl<'de> IntoDeserializer<'de, SerdeError> for ValueDe {
    type Deserializer = ValueDe;
    fn into_deserializer(self) -> ValueDe {
        self
    }
}

fn json_de<'de, V: de::Visitor<'de>>(
    j: serde_json::Value,
    visitor: V,
    how: &str,
) -> Result<V::Value, SerdeError> {
    let r = match how {
        "option" => de::Deserializer::deserialize_option(j, visitor),
        _ => de::Deserializer::deserialize_any(j, visitor),
    };
    r.map_err(|e| SerdeError(e.to_string()))
}

/// Hand a blob item to [`blob_de::ItemDe`] (which knows numeric arrays and ndarray's serde form);
/// every other value stays with [`ValueDe`].
macro_rules! item_first {
    ($self:ident, $method:ident($($arg:expr),*)) => {
        #[cfg(feature = "blob")]
        if let Value::Domain(d) = &$self.0
            && let Some(item) = d.downcast_ref::<dj_codec_blob::Item>()
        {
            return blob_de::ItemDe(item).$method($($arg),*);
        }
    };
}

/// Methods that only look for a blob item, then read the value as `deserialize_any` does.
macro_rules! item_or_any {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
            item_first!(self, $method(visitor));
            self.deserialize_any(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for ValueDe {
    type Error = SerdeError;
    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        item_first!(self, deserialize_any(visitor));
        match self.0 {
            Value::Null => visitor.visit_none(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::UInt(u) => visitor.visit_u64(u),
            Value::Float(f) => visitor.visit_f64(f),
            Value::Decimal(s) | Value::String(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b.to_vec()),
            Value::Uuid(u) => visitor.visit_string(u.hyphenated().to_string()),
            Value::Date(d) => visitor.visit_string(d.format("%Y-%m-%d").to_string()),
            Value::DateTime(d) => {
                visitor.visit_string(d.format("%Y-%m-%dT%H:%M:%S%.f").to_string())
            }
            Value::Json(j) => json_de(j, visitor, "any"),
            other => Err(SerdeError(format!(
                "{} cannot be deserialized through serde; fetch a Row instead",
                other.kind()
            ))),
        }
    }
    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        item_first!(self, deserialize_option(visitor));
        match self.0 {
            Value::Null => visitor.visit_none(),
            Value::Json(serde_json::Value::Null) => visitor.visit_none(),
            other => visitor.visit_some(ValueDe(other)),
        }
    }
    fn deserialize_seq<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        item_first!(self, deserialize_seq(visitor));
        match self.0 {
            Value::Bytes(b) => {
                visitor.visit_seq(de::value::SeqDeserializer::new(b.iter().copied()))
            }
            other => ValueDe(other).deserialize_any(visitor),
        }
    }
    fn deserialize_f64<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        item_first!(self, deserialize_f64(visitor));
        match self.0 {
            Value::Decimal(s) => visitor.visit_f64(
                s.parse::<f64>()
                    .map_err(|e| SerdeError(format!("decimal `{s}`: {e}")))?,
            ),
            other => ValueDe(other).deserialize_any(visitor),
        }
    }
    fn deserialize_f32<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        item_first!(self, deserialize_f32(visitor));
        self.deserialize_f64(visitor)
    }
    fn deserialize_bool<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
        item_first!(self, deserialize_bool(visitor));
        match self.0 {
            Value::Int(i) => visitor.visit_bool(i != 0),
            other => ValueDe(other).deserialize_any(visitor),
        }
    }
    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        item_first!(self, deserialize_enum(name, variants, visitor));
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            Value::Json(j) => de::Deserializer::deserialize_enum(j, name, variants, visitor)
                .map_err(|e| SerdeError(e.to_string())),
            other => Err(SerdeError(format!(
                "expected an enum variant, found {}",
                other.kind()
            ))),
        }
    }
    fn deserialize_newtype_struct<V: de::Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        item_first!(self, deserialize_struct(name, fields, visitor));
        let _ = (name, fields);
        self.deserialize_any(visitor)
    }
    fn deserialize_unit_struct<V: de::Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        self.deserialize_unit(visitor)
    }
    fn deserialize_tuple<V: de::Visitor<'de>>(
        self,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_tuple_struct<V: de::Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, SerdeError> {
        self.deserialize_seq(visitor)
    }
    item_or_any!(
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_unit,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );
}

// ------------------------------------------------------------------------------------------------
// Which attributes a type reads
// ------------------------------------------------------------------------------------------------

/// The attribute names a `T` reads, as serde tells them: the fields of a struct (renamed as serde
/// renames them; through newtype wrappers too). `None` when the type reads every attribute: a
/// [`Row`], a map, a struct with a `#[serde(flatten)]` field, anything serde does not describe as
/// a struct.
///
/// ```
/// # use serde::Deserialize;
/// #[derive(Deserialize)]
/// struct Brief { subject_id: i32, #[serde(rename = "weight")] grams: f64 }
/// assert_eq!(dj_schema::serde_row::wanted_fields::<Brief>(), Some(&["subject_id", "weight"][..]));
/// assert_eq!(dj_schema::serde_row::wanted_fields::<dj_schema::Row>(), None);
/// ```
pub fn wanted_fields<T: DeserializeOwned + Any>() -> Option<&'static [&'static str]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<Row>() {
        return None;
    }
    match T::deserialize(FieldProbe) {
        Err(Probe(fields)) => fields,
        Ok(_) => None,
    }
}

/// What [`FieldProbe`] learnt: the fields of the struct asked for, or nothing.
#[derive(Debug)]
struct Probe(Option<&'static [&'static str]>);

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field probe")
    }
}
impl std::error::Error for Probe {}
impl de::Error for Probe {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Probe(None)
    }
}

/// A deserializer that reads nothing: it stops at the first request, recording the field names
/// when that is a struct.
struct FieldProbe;

impl<'de> de::Deserializer<'de> for FieldProbe {
    type Error = Probe;
    fn deserialize_any<V: de::Visitor<'de>>(self, _: V) -> Result<V::Value, Probe> {
        Err(Probe(None))
    }
    fn deserialize_struct<V: de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probe> {
        Err(Probe(Some(fields)))
    }
    fn deserialize_newtype_struct<V: de::Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Probe> {
        visitor.visit_newtype_struct(self)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(feature = "blob")]
pub(crate) mod blob_de {
    //! Blob items (what `<blob>` and `<blob@>` decode to) into serde types.
    //!
    //! Numeric arrays read as sequences straight from their buffers (Fortran order, as stored),
    //! a one-element array reads as a scalar, and a numeric array asked for as ndarray's serde form
    //! (`ArrayD<T>` with ndarray's `serde` feature) gets its shape and its elements in the logical
    //! (row-major) order ndarray expects. Everything else goes through the blob crate's reader.

    use dj_codec_blob::{Array, ArrayData, BlobError, Item};
    use serde::de::{self, Deserializer as _, IntoDeserializer, Visitor};

    use super::SerdeError;

    fn blob_err(e: BlobError) -> SerdeError {
        SerdeError(e.to_string())
    }

    /// A borrowed blob item as a deserializer.
    pub(super) struct ItemDe<'a>(pub(super) &'a Item);

    /// Visit the elements of a numeric array as a sequence, in the order given (`None` for the
    /// stored order). `None` when the array is not numeric.
    fn numeric_seq<'de, V: Visitor<'de>>(
        a: &Array,
        c_order: bool,
        visitor: V,
    ) -> Option<Result<V::Value, SerdeError>> {
        let shape = a.shape.clone();
        macro_rules! seq {
            ($v:expr) => {{
                let v = $v;
                if c_order && needs_reorder(&shape) {
                    let v = reorder(v, &shape);
                    visitor.visit_seq(de::value::SeqDeserializer::<_, SerdeError>::new(
                        v.into_iter(),
                    ))
                } else {
                    visitor.visit_seq(de::value::SeqDeserializer::<_, SerdeError>::new(
                        v.iter().copied(),
                    ))
                }
            }};
        }
        Some(match &a.data {
            ArrayData::F64(v) => seq!(v.as_slice()),
            ArrayData::F32(v) => seq!(v.as_slice()),
            ArrayData::I8(v) => seq!(v.as_slice()),
            ArrayData::U8(v) => seq!(v.as_slice()),
            ArrayData::I16(v) => seq!(v.as_slice()),
            ArrayData::U16(v) => seq!(v.as_slice()),
            ArrayData::I32(v) => seq!(v.as_slice()),
            ArrayData::U32(v) => seq!(v.as_slice()),
            ArrayData::I64(v) => seq!(v.as_slice()),
            ArrayData::U64(v) => seq!(v.as_slice()),
            ArrayData::Bool(v) => {
                let b: Vec<bool> = v.iter().map(|&x| x != 0).collect();
                seq!(b.as_slice())
            }
            _ => return None,
        })
    }

    /// Whether more than one dimension is longer than 1 (only then do the orders differ).
    fn needs_reorder(shape: &[u64]) -> bool {
        shape.iter().filter(|&&d| d > 1).count() > 1
    }

    /// Fortran-ordered elements in row-major (C) order.
    pub(crate) fn reorder<T: Copy>(v: &[T], shape: &[u64]) -> Vec<T> {
        let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let n = v.len();
        if dims.is_empty() || dims.iter().product::<usize>() != n || n == 0 {
            return v.to_vec();
        }
        // Fortran strides: the first index moves fastest in storage.
        let mut strides = vec![1usize; dims.len()];
        for k in 1..dims.len() {
            strides[k] = strides[k - 1] * dims[k - 1];
        }
        let mut out = Vec::with_capacity(n);
        let mut index = vec![0usize; dims.len()];
        let mut offset = 0usize;
        for _ in 0..n {
            if let Some(&x) = v.get(offset) {
                out.push(x);
            }
            // Odometer: the last index moves fastest in C order.
            for k in (0..dims.len()).rev() {
                index[k] += 1;
                offset += strides[k];
                if index[k] < dims[k] {
                    break;
                }
                offset -= strides[k] * dims[k];
                index[k] = 0;
            }
        }
        out
    }

    /// The one element of a one-element numeric array, as a scalar item.
    fn single(a: &Array) -> Option<Item> {
        if a.data.len() != 1 {
            return None;
        }
        Some(match &a.data {
            ArrayData::F64(v) => Item::Float(v[0]),
            ArrayData::F32(v) => Item::Float(f64::from(v[0])),
            ArrayData::I8(v) => Item::from(i64::from(v[0])),
            ArrayData::U8(v) => Item::from(i64::from(v[0])),
            ArrayData::I16(v) => Item::from(i64::from(v[0])),
            ArrayData::U16(v) => Item::from(i64::from(v[0])),
            ArrayData::I32(v) => Item::from(i64::from(v[0])),
            ArrayData::U32(v) => Item::from(i64::from(v[0])),
            ArrayData::I64(v) => Item::from(v[0]),
            ArrayData::U64(v) => Item::from(v[0]),
            ArrayData::Bool(v) => Item::Bool(v[0] != 0),
            _ => return None,
        })
    }

    /// Read a scalar: a one-element array gives its element.
    macro_rules! scalar {
        ($($method:ident),*) => {$(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
                if let Item::Array(a) = self.0
                    && let Some(one) = single(a)
                {
                    return (&one).$method(visitor).map_err(blob_err);
                }
                self.0.$method(visitor).map_err(blob_err)
            }
        )*};
    }

    macro_rules! delegate {
        ($($method:ident),*) => {$(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
                self.0.$method(visitor).map_err(blob_err)
            }
        )*};
    }

    impl<'de> de::Deserializer<'de> for ItemDe<'_> {
        type Error = SerdeError;

        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
            self.deserialize_seq_or(visitor, false)
        }

        fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
            self.deserialize_seq_or(visitor, true)
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
            match self.0 {
                Item::None => visitor.visit_none(),
                _ => visitor.visit_some(self),
            }
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, SerdeError> {
            if name == "Array"
                && fields == ["v", "dim", "data"]
                && let Item::Array(a) = self.0
                && is_numeric(&a.data)
            {
                let entries = [
                    ("v", NdEntry::Version),
                    ("dim", NdEntry::Dim(&a.shape)),
                    ("data", NdEntry::Data(a)),
                ];
                return visitor.visit_map(de::value::MapDeserializer::new(entries.into_iter()));
            }
            self.0
                .deserialize_struct(name, fields, visitor)
                .map_err(blob_err)
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            visitor: V,
        ) -> Result<V::Value, SerdeError> {
            self.0
                .deserialize_newtype_struct(name, visitor)
                .map_err(blob_err)
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, SerdeError> {
            self.0
                .deserialize_enum(name, variants, visitor)
                .map_err(blob_err)
        }

        fn deserialize_tuple<V: Visitor<'de>>(
            self,
            _: usize,
            visitor: V,
        ) -> Result<V::Value, SerdeError> {
            self.deserialize_seq(visitor)
        }

        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            _: usize,
            visitor: V,
        ) -> Result<V::Value, SerdeError> {
            self.deserialize_seq(visitor)
        }

        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            visitor: V,
        ) -> Result<V::Value, SerdeError> {
            self.0.deserialize_unit(visitor).map_err(blob_err)
        }

        scalar!(
            deserialize_bool,
            deserialize_i8,
            deserialize_i16,
            deserialize_i32,
            deserialize_i64,
            deserialize_i128,
            deserialize_u8,
            deserialize_u16,
            deserialize_u32,
            deserialize_u64,
            deserialize_u128,
            deserialize_f32,
            deserialize_f64
        );
        delegate!(
            deserialize_char,
            deserialize_str,
            deserialize_string,
            deserialize_bytes,
            deserialize_byte_buf,
            deserialize_unit,
            deserialize_map,
            deserialize_identifier,
            deserialize_ignored_any
        );
    }

    impl ItemDe<'_> {
        /// A numeric array straight from its buffer (never an item per element); anything else
        /// through the blob crate's reader.
        fn deserialize_seq_or<'de, V: Visitor<'de>>(
            self,
            visitor: V,
            seq: bool,
        ) -> Result<V::Value, SerdeError> {
            match self.0 {
                Item::Array(a) if is_numeric(&a.data) => numeric_seq(a, false, visitor)
                    .unwrap_or_else(|| {
                        Err(SerdeError("internal: numeric array lost its type".into()))
                    }),
                item if seq => item.deserialize_seq(visitor).map_err(blob_err),
                item => item.deserialize_any(visitor).map_err(blob_err),
            }
        }
    }

    /// The numeric array ndarray's serde form describes (`v` 1, `dim` the shape, `data` the
    /// elements in row-major order), or `None` when `j` is not that form.
    pub(crate) fn ndarray_item(j: &serde_json::Value) -> Option<Item> {
        let obj = j.as_object()?;
        if obj.len() != 3 || obj.get("v")?.as_u64()? != 1 {
            return None;
        }
        let dim: Vec<u64> = obj
            .get("dim")?
            .as_array()?
            .iter()
            .map(serde_json::Value::as_u64)
            .collect::<Option<_>>()?;
        let data = obj.get("data")?.as_array()?;
        let n = dim.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
        if n != data.len() as u64 {
            return None;
        }
        let reversed: Vec<u64> = dim.iter().rev().copied().collect();
        let array_data = if data.iter().all(|x| x.is_i64()) {
            let v: Vec<i64> = data.iter().filter_map(serde_json::Value::as_i64).collect();
            ArrayData::I64(reorder(&v, &reversed))
        } else {
            let v: Vec<f64> = data
                .iter()
                .map(serde_json::Value::as_f64)
                .collect::<Option<_>>()?;
            ArrayData::F64(reorder(&v, &reversed))
        };
        Array::new(dim, array_data).ok().map(Item::Array)
    }

    /// Whether [`numeric_seq`] reads this array.
    pub(crate) fn is_numeric(data: &ArrayData) -> bool {
        !matches!(
            data,
            ArrayData::Object(_)
                | ArrayData::Char(_)
                | ArrayData::Complex(..)
                | ArrayData::DateTime64 { .. }
        )
    }

    /// One entry of ndarray's serde form: `v` (the format version, 1), `dim` (the shape) and
    /// `data` (the elements, row-major).
    enum NdEntry<'a> {
        Version,
        Dim(&'a [u64]),
        Data(&'a Array),
    }

    impl<'de> IntoDeserializer<'de, SerdeError> for NdEntry<'_> {
        type Deserializer = Self;
        fn into_deserializer(self) -> Self {
            self
        }
    }

    impl<'de> de::Deserializer<'de> for NdEntry<'_> {
        type Error = SerdeError;
        fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SerdeError> {
            match self {
                NdEntry::Version => visitor.visit_u8(1),
                NdEntry::Dim(shape) => visitor.visit_seq(
                    de::value::SeqDeserializer::<_, SerdeError>::new(shape.iter().copied()),
                ),
                NdEntry::Data(a) => numeric_seq(a, true, visitor).unwrap_or_else(|| {
                    Err(SerdeError("internal: numeric array lost its type".into()))
                }),
            }
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map struct enum identifier ignored_any
        }
    }
}

/// A value bound for a codec attribute, as that codec should see it. For `<blob>` (and
/// `<blob@>`): ndarray's serde form (the `{"v": 1, "dim": [..], "data": [..]}` document an
/// `ndarray::ArrayD` field serializes to, with ndarray's `serde` feature) becomes the numeric
/// array it describes, so that DataJoint reads a numpy array of that shape rather than a dict.
/// The elements are `float64` when any is a float, `int64` otherwise (serde does not carry the
/// element type through). Anything else passes unchanged.
pub(crate) fn for_codec(info: &crate::table::AttrInfo, value: Value) -> Value {
    #[cfg(feature = "blob")]
    {
        let is_blob = info
            .resolved
            .as_ref()
            .and_then(|r| r.chain.first())
            .is_some_and(|c| c.name() == "blob");
        if is_blob
            && let Value::Json(j) = &value
            && let Some(item) = blob_de::ndarray_item(j)
        {
            return Value::domain(item);
        }
    }
    #[cfg(not(feature = "blob"))]
    let _ = info;
    value
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        a: i32,
        #[serde(rename = "bee")]
        b: i32,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Wrapper(Inner);

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Flat {
        a: i32,
        #[serde(flatten)]
        rest: HashMap<String, i32>,
    }

    #[test]
    fn wanted_fields_of_structs_only() {
        assert_eq!(wanted_fields::<Inner>(), Some(&["a", "bee"][..]));
        assert_eq!(wanted_fields::<Wrapper>(), Some(&["a", "bee"][..]));
        assert_eq!(wanted_fields::<Flat>(), None);
        assert_eq!(wanted_fields::<HashMap<String, i32>>(), None);
        assert_eq!(wanted_fields::<Row>(), None);
        assert_eq!(wanted_fields::<i32>(), None);
    }

    #[cfg(feature = "blob")]
    #[test]
    fn orders_and_ndarray_documents() {
        use dj_codec_blob::{Array, ArrayData, Item};
        // Column-major 2x3 [[1, 2, 3], [4, 5, 6]] is 1 4 2 5 3 6.
        assert_eq!(
            blob_de::reorder(&[1, 4, 2, 5, 3, 6], &[2, 3]),
            [1, 2, 3, 4, 5, 6]
        );
        assert_eq!(blob_de::reorder(&[1, 2, 3], &[3]), [1, 2, 3]);
        let j = serde_json::json!({"v": 1, "dim": [2, 3], "data": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]});
        assert_eq!(
            blob_de::ndarray_item(&j),
            Some(Item::Array(
                Array::new(
                    vec![2, 3],
                    ArrayData::F64(vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0])
                )
                .unwrap()
            ))
        );
        let wrong = serde_json::json!({"v": 1, "dim": [2, 2], "data": [1.0]});
        assert_eq!(blob_de::ndarray_item(&wrong), None);
        let ints = serde_json::json!({"v": 1, "dim": [2], "data": [1, -2]});
        assert_eq!(
            blob_de::ndarray_item(&ints),
            Some(Item::from(vec![1_i64, -2]))
        );
    }
}
