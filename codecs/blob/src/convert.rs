//! Conversions between blob items and Rust values.

use dj_core::value::Value;

use crate::BlobError;
use crate::item::*;

impl From<i64> for Item {
    fn from(v: i64) -> Self {
        Item::Int(PyInt::from(v))
    }
}
impl From<i32> for Item {
    fn from(v: i32) -> Self {
        Item::Int(PyInt::from(i64::from(v)))
    }
}
impl From<u64> for Item {
    fn from(v: u64) -> Self {
        Item::Int(PyInt::from(i128::from(v)))
    }
}
impl From<f64> for Item {
    fn from(v: f64) -> Self {
        Item::Float(v)
    }
}
impl From<bool> for Item {
    fn from(v: bool) -> Self {
        Item::Bool(v)
    }
}
impl From<&str> for Item {
    fn from(v: &str) -> Self {
        Item::Str(v.to_string())
    }
}
impl From<String> for Item {
    fn from(v: String) -> Self {
        Item::Str(v)
    }
}
impl From<uuid::Uuid> for Item {
    fn from(v: uuid::Uuid) -> Self {
        Item::Uuid(v)
    }
}
impl<T: Into<Item>> From<Option<T>> for Item {
    fn from(v: Option<T>) -> Self {
        v.map_or(Item::None, Into::into)
    }
}

macro_rules! vec_to_array {
    ($($t:ty => $variant:ident),*) => {$(
        /// A 1-D array.
        impl From<Vec<$t>> for Item {
            fn from(v: Vec<$t>) -> Self {
                Item::Array(Array { shape: vec![v.len() as u64], data: ArrayData::$variant(v) })
            }
        }
        impl TryFrom<&Item> for Vec<$t> {
            type Error = BlobError;
            /// The elements of a numeric array of this element type, in Fortran order.
            fn try_from(item: &Item) -> Result<Self, BlobError> {
                match item {
                    Item::Array(Array { data: ArrayData::$variant(v), .. }) => Ok(v.clone()),
                    other => Err(BlobError::Invalid {
                        message: format!("expected an array of {}, found {}", stringify!($t), describe(other)),
                    }),
                }
            }
        }
    )*};
}
vec_to_array!(f64 => F64, f32 => F32, i8 => I8, i16 => I16, i32 => I32, i64 => I64, u16 => U16, u32 => U32, u64 => U64);

impl TryFrom<&Item> for f64 {
    type Error = BlobError;
    fn try_from(item: &Item) -> Result<Self, BlobError> {
        match item {
            Item::Float(f) => Ok(*f),
            #[allow(clippy::cast_precision_loss)]
            Item::Int(i) => i
                .to_i64()
                .map(|i| i as f64)
                .ok_or_else(|| invalid("a float", item)),
            Item::Array(Array {
                shape,
                data: ArrayData::F64(v),
            }) if v.len() == 1 && shape.iter().all(|&d| d == 1) => Ok(v[0]),
            _ => Err(invalid("a float", item)),
        }
    }
}

impl TryFrom<&Item> for i64 {
    type Error = BlobError;
    fn try_from(item: &Item) -> Result<Self, BlobError> {
        match item {
            Item::Int(i) => i
                .to_i64()
                .ok_or_else(|| invalid("an integer that fits i64", item)),
            Item::Bool(b) => Ok(i64::from(*b)),
            _ => Err(invalid("an integer", item)),
        }
    }
}

impl TryFrom<&Item> for String {
    type Error = BlobError;
    fn try_from(item: &Item) -> Result<Self, BlobError> {
        match item {
            Item::Str(s) => Ok(s.clone()),
            Item::Array(Array {
                data: ArrayData::Char(units),
                shape,
            }) if shape.len() <= 2 => {
                String::from_utf16(units).map_err(|_| invalid("a string", item))
            }
            _ => Err(invalid("a string", item)),
        }
    }
}

fn invalid(expected: &str, found: &Item) -> BlobError {
    BlobError::Invalid {
        message: format!("expected {expected}, found {}", describe(found)),
    }
}

/// A short description of an item, for errors.
pub(crate) fn describe(item: &Item) -> String {
    match item {
        Item::None => "None".into(),
        Item::Bool(_) => "bool".into(),
        Item::Int(_) => "int".into(),
        Item::Float(_) => "float".into(),
        Item::Complex(..) => "complex".into(),
        Item::Str(_) => "str".into(),
        Item::Bytes(_) => "bytes".into(),
        Item::Decimal(_) => "Decimal".into(),
        Item::Temporal(_) => "date/time".into(),
        Item::Uuid(_) => "UUID".into(),
        Item::Tuple(_) => "tuple".into(),
        Item::List(_) => "list".into(),
        Item::Set(_) => "set".into(),
        Item::Dict(_) => "dict".into(),
        Item::Array(a) => format!("array of shape {:?}", a.shape),
        Item::Struct(_) => "struct array".into(),
        Item::Cell(_) => "cell array".into(),
        Item::Record(_) => "record array".into(),
    }
}

fn date_number(d: &chrono::NaiveDate) -> i32 {
    use chrono::Datelike;
    // Months and days are < 100, so these casts are exact.
    (d.year() * 100 + d.month() as i32) * 100 + d.day() as i32
}

fn time_number(t: &chrono::NaiveTime) -> i64 {
    use chrono::Timelike;
    ((i64::from(t.hour()) * 100 + i64::from(t.minute())) * 100 + i64::from(t.second())) * 1_000_000
        + i64::from(t.nanosecond() / 1000)
}

/// Whether a JSON document is nested at most `limit` levels deep, found without recursion.
fn json_within(j: &serde_json::Value, limit: usize) -> bool {
    use serde_json::Value as J;
    fn inner(j: &J) -> Option<Box<dyn Iterator<Item = &J> + '_>> {
        match j {
            J::Array(v) if !v.is_empty() => Some(Box::new(v.iter())),
            J::Object(m) if !m.is_empty() => Some(Box::new(m.values())),
            _ => None,
        }
    }
    let mut stack: Vec<Box<dyn Iterator<Item = &J> + '_>> = inner(j).into_iter().collect();
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(child) => {
                if let Some(below) = inner(child) {
                    if stack.len() >= limit {
                        return false;
                    }
                    stack.push(below);
                }
            }
            None => {
                stack.pop();
            }
        }
    }
    true
}

/// Drop a JSON document without recursion (serde_json's own drop recurses once per level).
fn dismantle(j: serde_json::Value) {
    use serde_json::Value as J;
    let mut stack = vec![j];
    while let Some(j) = stack.pop() {
        match j {
            J::Array(v) => stack.extend(v),
            J::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// Convert a JSON document nested at most [`MAX_DEPTH`] levels deep (the recursion is bounded by
/// that).
fn json_to_item(j: serde_json::Value) -> Item {
    use serde_json::Value as J;
    match j {
        J::Null => Item::None,
        J::Bool(b) => Item::Bool(b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Item::from(i),
            (None, Some(u)) => Item::from(u),
            _ => Item::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Item::Str(s),
        J::Array(v) => Item::List(v.into_iter().map(json_to_item).collect()),
        J::Object(m) => Item::Dict(
            m.into_iter()
                .map(|(k, v)| (Item::Str(k), json_to_item(v)))
                .collect(),
        ),
    }
}

impl TryFrom<Value> for Item {
    type Error = BlobError;

    /// Core values with an obvious blob form, as DataJoint Python packs the matching Python value.
    fn try_from(v: Value) -> Result<Self, BlobError> {
        Ok(match v {
            Value::Null => Item::None,
            Value::Bool(b) => Item::Bool(b),
            Value::Int(i) => Item::from(i),
            Value::UInt(u) => Item::from(u),
            Value::Float(f) => Item::Float(f),
            Value::Decimal(d) => Item::Decimal(d),
            Value::String(s) => Item::Str(s),
            Value::Bytes(b) => Item::Bytes(b.to_vec()),
            Value::Uuid(u) => Item::Uuid(u),
            Value::Json(j) => {
                if !json_within(&j, MAX_DEPTH) {
                    dismantle(j);
                    return Err(crate::encode::too_deep());
                }
                json_to_item(j)
            }
            Value::Date(d) => Item::Temporal(Temporal {
                date: date_number(&d),
                time: -1,
            }),
            Value::DateTime(dt) => Item::Temporal(Temporal {
                date: date_number(&dt.date()),
                time: time_number(&dt.time()),
            }),
            other => {
                return Err(BlobError::Invalid {
                    message: format!("<blob> cannot store a {}", other.kind()),
                });
            }
        })
    }
}
