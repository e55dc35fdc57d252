//! The value model: what flows into and out of attributes and through codec chains.
//!
//! A [`Value`] is either a *core* value (an integer, a string, bytes, JSON, …), which a database
//! column can hold, or a *domain* value ([`DomainValue`]): any Rust type a codec accepts, such as a
//! blob item tree, an `ndarray` array or a user's own `Graph` struct. Codecs turn domain values into
//! the value their inner type expects, one link of the chain at a time, until a core value remains.
//!
//! ```
//! use dj_core::value::{DomainValue, Value};
//!
//! #[derive(Debug, Clone, PartialEq)]
//! struct Graph { edges: Vec<(u32, u32)> }
//!
//! let v = Value::domain(Graph { edges: vec![(0, 1)] });
//! assert!(v.kind().contains("Graph"));
//! let g: &Graph = v.as_domain::<Graph>().unwrap();
//! assert_eq!(g.edges.len(), 1);
//! assert_eq!(Value::from(3_i32), Value::Int(3));
//! ```

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{NaiveDate, NaiveDateTime};
use uuid::Uuid;

/// A value held by an attribute, or passed along a codec chain.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Value {
    /// SQL NULL / Python `None`.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer too large for `i64`, or from an unsigned column.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// An exact decimal number in its text form, e.g. `"12.50"`.
    Decimal(String),
    /// Text.
    String(String),
    /// Raw bytes.
    Bytes(Bytes),
    /// A UUID.
    Uuid(Uuid),
    /// A calendar date.
    Date(NaiveDate),
    /// A date and time without time zone.
    DateTime(NaiveDateTime),
    /// A JSON document (the `json` core type, and the metadata of store codecs).
    Json(serde_json::Value),
    /// A value of any other Rust type, for codecs that take domain types.
    Domain(DomainValue),
}

impl Value {
    /// The JSON document a stored value holds: a JSON value, or JSON text (MySQL and MariaDB
    /// return `json` columns as text). Store codecs keep their metadata this way. The error says
    /// what was found instead, for the caller's message.
    pub fn stored_json(&self) -> std::result::Result<Cow<'_, serde_json::Value>, String> {
        match self {
            Value::Json(j) => Ok(Cow::Borrowed(j)),
            Value::String(s) => serde_json::from_str(s)
                .map(Cow::Owned)
                .map_err(|e| format!("stored metadata is not JSON: {e}")),
            other => Err(format!(
                "stored metadata must be JSON, found {}",
                other.kind()
            )),
        }
    }

    /// Wrap any Rust value as a domain value.
    pub fn domain<T: Any + Send + Sync + fmt::Debug>(value: T) -> Self {
        Value::Domain(DomainValue::new(value))
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short description of the value's kind, for error messages.
    pub fn kind(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::UInt(_) => "unsigned int".into(),
            Value::Float(_) => "float".into(),
            Value::Decimal(_) => "decimal".into(),
            Value::String(_) => "string".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Uuid(_) => "uuid".into(),
            Value::Date(_) => "date".into(),
            Value::DateTime(_) => "datetime".into(),
            Value::Json(_) => "json".into(),
            Value::Domain(d) => format!("domain value `{}`", d.type_name()),
        }
    }

    /// Borrow a domain value of type `T`, if this is one.
    pub fn as_domain<T: Any>(&self) -> Option<&T> {
        match self {
            Value::Domain(d) => d.downcast_ref::<T>(),
            _ => None,
        }
    }

    /// Borrow the bytes, if this is [`Value::Bytes`].
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// Borrow the string, if this is [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Borrow the JSON document, if this is [`Value::Json`].
    pub fn as_json(&self) -> Option<&serde_json::Value> {
        match self {
            Value::Json(j) => Some(j),
            _ => None,
        }
    }

    /// The value as `i64`, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::UInt(u) => i64::try_from(u).ok(),
            Value::Bool(b) => Some(i64::from(b)),
            _ => None,
        }
    }

    /// The value as `f64`, if it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(f) => Some(f),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(i) => Some(i as f64),
            #[allow(clippy::cast_precision_loss)]
            Value::UInt(u) => Some(u as f64),
            _ => None,
        }
    }
}

impl PartialEq for Value {
    /// Core values compare by content. Domain values compare equal only when they share the same
    /// allocation, since arbitrary Rust types need not implement `PartialEq`.
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (UInt(a), UInt(b)) => a == b,
            (Int(a), UInt(b)) | (UInt(b), Int(a)) => u64::try_from(*a).is_ok_and(|a| a == *b),
            (Float(a), Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Decimal(a), Decimal(b)) => a == b,
            (String(a), String(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Uuid(a), Uuid(b)) => a == b,
            (Date(a), Date(b)) => a == b,
            (DateTime(a), DateTime(b)) => a == b,
            (Json(a), Json(b)) => a == b,
            (Domain(a), Domain(b)) => a.ptr_eq(b),
            _ => false,
        }
    }
}

/// A value of an arbitrary Rust type, carried through codec chains.
///
/// Cloning is cheap (the value sits behind an `Arc`).
#[derive(Clone)]
pub struct DomainValue {
    type_name: &'static str,
    debug: fn(&(dyn Any + Send + Sync), &mut fmt::Formatter<'_>) -> fmt::Result,
    inner: Arc<dyn Any + Send + Sync>,
}

fn debug_as<T: Any + fmt::Debug>(
    v: &(dyn Any + Send + Sync),
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    match v.downcast_ref::<T>() {
        Some(t) => fmt::Debug::fmt(t, f),
        None => f.write_str("<?>"),
    }
}

impl DomainValue {
    /// Wrap a value.
    pub fn new<T: Any + Send + Sync + fmt::Debug>(value: T) -> Self {
        DomainValue {
            type_name: std::any::type_name::<T>(),
            debug: debug_as::<T>,
            inner: Arc::new(value),
        }
    }

    /// The Rust type name of the wrapped value.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// Whether the wrapped value is a `T`.
    pub fn is<T: Any>(&self) -> bool {
        self.inner.is::<T>()
    }

    /// Borrow the wrapped value as a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.inner.downcast_ref::<T>()
    }

    /// Take the wrapped value as a `T`: without a copy when this is the only handle, by cloning
    /// otherwise. Returns `self` unchanged when the type does not match.
    pub fn downcast<T: Any + Send + Sync + Clone>(self) -> Result<T, Self> {
        if !self.inner.is::<T>() {
            return Err(self);
        }
        let DomainValue {
            type_name,
            debug,
            inner,
        } = self;
        match inner.downcast::<T>() {
            Ok(arc) => Ok(Arc::try_unwrap(arc).unwrap_or_else(|arc| (*arc).clone())),
            Err(inner) => Err(DomainValue {
                type_name,
                debug,
                inner,
            }),
        }
    }

    /// Whether two handles share the same allocation.
    pub(crate) fn ptr_eq(&self, other: &DomainValue) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for DomainValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.debug)(&*self.inner, f)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Int(i64::from(v)) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::UInt(v),
        }
    }
}

/// `From<T> for Value` for each `T => Variant`, converting with `Into` (`f32` widens to `f64`,
/// `&str` and `Vec<u8>` are copied or moved into `String` and `Bytes`).
macro_rules! from_variant {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::$variant(v.into()) }
        }
    )*};
}
from_variant!(
    bool => Bool, f32 => Float, f64 => Float, String => String, &str => String,
    Vec<u8> => Bytes, Bytes => Bytes, Uuid => Uuid, NaiveDate => Date,
    NaiveDateTime => DateTime, serde_json::Value => Json,
);
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Serde support, so that a row (`IndexMap<String, Value>`) meets `Serialize`/`Deserialize`
/// bounds. Core values map onto serde's data model (bytes as bytes, uuid, date and datetime as
/// ISO text, decimal as text, JSON as nested data); a [`Value::Domain`] cannot be serialized.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Decimal(d) | Value::String(d) => s.serialize_str(d),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::Uuid(u) => s.collect_str(&u.hyphenated()),
            Value::Date(d) => s.collect_str(&d.format("%Y-%m-%d")),
            Value::DateTime(d) => s.collect_str(&d.format("%Y-%m-%dT%H:%M:%S%.f")),
            Value::Json(j) => j.serialize(s),
            Value::Domain(d) => Err(serde::ser::Error::custom(format_args!(
                "a domain value `{}` cannot be serialized; encode it with its codec",
                d.type_name()
            ))),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    /// Scalars become the matching core value, strings become [`Value::String`], bytes
    /// [`Value::Bytes`], and sequences or maps [`Value::Json`].
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
                Ok(Value::from(v))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
                Ok(Value::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
                Ok(Value::String(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
                Ok(Value::String(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> std::result::Result<Value, E> {
                Ok(Value::Bytes(Bytes::copy_from_slice(v)))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> std::result::Result<Value, E> {
                Ok(Value::Bytes(Bytes::from(v)))
            }
            fn visit_none<E>(self) -> std::result::Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_unit<E>(self) -> std::result::Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> std::result::Result<Value, D::Error> {
                serde::Deserialize::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<Value, A::Error> {
                let j = serde_json::Value::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(Value::Json(j))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Value, A::Error> {
                let j = serde_json::Value::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(Value::Json(j))
            }
        }
        use serde::Deserialize as _;
        d.deserialize_any(V)
    }
}
