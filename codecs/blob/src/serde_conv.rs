//! serde support (feature `serde`): any `Serialize` value becomes a blob item, and any
//! `Deserialize` type can be read from one.
//!
//! The mapping is what DataJoint Python would produce for the equivalent Python value: structs and
//! maps become dicts (keys in field order), sequences become lists, tuples become tuples, integers
//! become Python ints, floats become floats, `None`/`()` become `None`, unit enum variants become
//! their name and other variants a one-entry dict `{variant: value}`. Reading also accepts numeric
//! arrays where a sequence is expected (a `Vec<f64>` field reads a numpy vector).
//!
//! ```
//! use dj_codec_blob::{decode, encode, from_item, to_item};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Meta { channels: u32, rate: u32 }
//!
//! let item = to_item(&Meta { channels: 32, rate: 30000 })?;
//! // The bytes Python's blob.pack({'channels': 32, 'rate': 30000}) gives.
//! let blob = encode(&item)?;
//! let back: Meta = from_item(&decode(&blob)?)?;
//! assert_eq!(back, Meta { channels: 32, rate: 30000 });
//! # Ok::<(), dj_codec_blob::BlobError>(())
//! ```

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

use crate::BlobError;
use crate::convert::describe;
use crate::item::{Array, ArrayData, Item, PyInt};

impl ser::Error for BlobError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        BlobError::Invalid {
            message: msg.to_string(),
        }
    }
}

impl de::Error for BlobError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        BlobError::Invalid {
            message: msg.to_string(),
        }
    }
}

/// Serialize a value into a blob item.
pub fn to_item<T: Serialize + ?Sized>(value: &T) -> Result<Item, BlobError> {
    value.serialize(ItemSerializer)
}

/// Read a value out of a blob item.
pub fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, BlobError> {
    T::deserialize(item)
}

struct ItemSerializer;

/// Collects a sequence, tuple or map.
#[doc(hidden)]
pub struct Collect {
    items: Vec<Item>,
    pairs: Vec<(Item, Item)>,
    key: Option<Item>,
    kind: Kind,
    variant: Option<&'static str>,
}

#[derive(PartialEq)]
enum Kind {
    List,
    Tuple,
    Dict,
}

impl Collect {
    fn new(kind: Kind, variant: Option<&'static str>) -> Self {
        Collect {
            items: Vec::new(),
            pairs: Vec::new(),
            key: None,
            kind,
            variant,
        }
    }
    fn finish(self) -> Item {
        let inner = match self.kind {
            Kind::List => Item::List(self.items),
            Kind::Tuple => Item::Tuple(self.items),
            Kind::Dict => Item::Dict(self.pairs),
        };
        match self.variant {
            Some(v) => Item::Dict(vec![(Item::from(v), inner)]),
            None => inner,
        }
    }
}

impl ser::Serializer for ItemSerializer {
    type Ok = Item;
    type Error = BlobError;
    type SerializeSeq = Collect;
    type SerializeTuple = Collect;
    type SerializeTupleStruct = Collect;
    type SerializeTupleVariant = Collect;
    type SerializeMap = Collect;
    type SerializeStruct = Collect;
    type SerializeStructVariant = Collect;

    fn serialize_bool(self, v: bool) -> Result<Item, BlobError> {
        Ok(Item::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Item, BlobError> {
        Ok(Item::from(i64::from(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<Item, BlobError> {
        Ok(Item::from(i64::from(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<Item, BlobError> {
        Ok(Item::from(i64::from(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<Item, BlobError> {
        Ok(Item::from(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Item, BlobError> {
        Ok(Item::Int(PyInt::from(v)))
    }
    fn serialize_u8(self, v: u8) -> Result<Item, BlobError> {
        Ok(Item::from(i64::from(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<Item, BlobError> {
        Ok(Item::from(i64::from(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<Item, BlobError> {
        Ok(Item::from(i64::from(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<Item, BlobError> {
        Ok(Item::from(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Item, BlobError> {
        Ok(Item::Float(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Item, BlobError> {
        Ok(Item::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Item, BlobError> {
        Ok(Item::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Item, BlobError> {
        Ok(Item::from(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Item, BlobError> {
        Ok(Item::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Item, BlobError> {
        Ok(Item::None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Item, BlobError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Item, BlobError> {
        Ok(Item::None)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Item, BlobError> {
        Ok(Item::None)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Item, BlobError> {
        Ok(Item::from(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Item, BlobError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Item, BlobError> {
        Ok(Item::Dict(vec![(
            Item::from(variant),
            value.serialize(self)?,
        )]))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Collect, BlobError> {
        Ok(Collect::new(Kind::List, None))
    }
    fn serialize_tuple(self, _: usize) -> Result<Collect, BlobError> {
        Ok(Collect::new(Kind::Tuple, None))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Collect, BlobError> {
        Ok(Collect::new(Kind::Tuple, None))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        v: &'static str,
        _: usize,
    ) -> Result<Collect, BlobError> {
        Ok(Collect::new(Kind::Tuple, Some(v)))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Collect, BlobError> {
        Ok(Collect::new(Kind::Dict, None))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Collect, BlobError> {
        Ok(Collect::new(Kind::Dict, None))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        v: &'static str,
        _: usize,
    ) -> Result<Collect, BlobError> {
        Ok(Collect::new(Kind::Dict, Some(v)))
    }
}

macro_rules! seq_like {
    ($($tr:ident :: $m:ident),*) => {$(
        impl ser::$tr for Collect {
            type Ok = Item;
            type Error = BlobError;
            fn $m<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BlobError> {
                self.items.push(value.serialize(ItemSerializer)?);
                Ok(())
            }
            fn end(self) -> Result<Item, BlobError> {
                Ok(self.finish())
            }
        }
    )*};
}
seq_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Collect {
    type Ok = Item;
    type Error = BlobError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), BlobError> {
        self.key = Some(key.serialize(ItemSerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BlobError> {
        let key = self.key.take().ok_or(BlobError::Invalid {
            message: "map value without a key".into(),
        })?;
        self.pairs.push((key, value.serialize(ItemSerializer)?));
        Ok(())
    }
    fn end(self) -> Result<Item, BlobError> {
        Ok(self.finish())
    }
}

macro_rules! struct_like {
    ($($tr:ident),*) => {$(
        impl ser::$tr for Collect {
            type Ok = Item;
            type Error = BlobError;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), BlobError> {
                self.pairs.push((Item::from(key), value.serialize(ItemSerializer)?));
                Ok(())
            }
            fn end(self) -> Result<Item, BlobError> {
                Ok(self.finish())
            }
        }
    )*};
}
struct_like!(SerializeStruct, SerializeStructVariant);

fn mismatch(expected: &str, item: &Item) -> BlobError {
    BlobError::Invalid {
        message: format!("expected {expected}, found {}", describe(item)),
    }
}

/// The elements of a 1-D-like numeric array as items, for reading arrays as sequences.
fn array_elements(a: &Array) -> Option<Vec<Item>> {
    Some(match &a.data {
        ArrayData::F64(v) => v.iter().map(|&x| Item::Float(x)).collect(),
        ArrayData::F32(v) => v.iter().map(|&x| Item::Float(f64::from(x))).collect(),
        ArrayData::I8(v) => v.iter().map(|&x| Item::from(i64::from(x))).collect(),
        ArrayData::U8(v) => v.iter().map(|&x| Item::from(i64::from(x))).collect(),
        ArrayData::I16(v) => v.iter().map(|&x| Item::from(i64::from(x))).collect(),
        ArrayData::U16(v) => v.iter().map(|&x| Item::from(i64::from(x))).collect(),
        ArrayData::I32(v) => v.iter().map(|&x| Item::from(i64::from(x))).collect(),
        ArrayData::U32(v) => v.iter().map(|&x| Item::from(i64::from(x))).collect(),
        ArrayData::I64(v) => v.iter().map(|&x| Item::from(x)).collect(),
        ArrayData::U64(v) => v.iter().map(|&x| Item::from(x)).collect(),
        ArrayData::Bool(v) => v.iter().map(|&x| Item::Bool(x != 0)).collect(),
        ArrayData::Object(v) => v.clone(),
        _ => return None,
    })
}

impl<'de> de::Deserializer<'de> for &Item {
    type Error = BlobError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BlobError> {
        match self {
            Item::None => visitor.visit_unit(),
            Item::Bool(b) => visitor.visit_bool(*b),
            Item::Int(i) => match (i.to_i64(), i.to_i128()) {
                (Some(v), _) => visitor.visit_i64(v),
                (None, Some(v)) => visitor.visit_i128(v),
                _ => Err(mismatch("an integer that fits 128 bits", self)),
            },
            Item::Float(f) => visitor.visit_f64(*f),
            Item::Complex(re, im) => {
                visitor.visit_seq(de::value::SeqDeserializer::new([*re, *im].into_iter()))
            }
            Item::Str(s) | Item::Decimal(s) => visitor.visit_str(s),
            Item::Bytes(b) => visitor.visit_bytes(b),
            Item::Uuid(u) => visitor.visit_string(u.to_string()),
            Item::Temporal(t) => visitor.visit_seq(de::value::SeqDeserializer::new(
                [i64::from(t.date), t.time].into_iter(),
            )),
            Item::Tuple(v) | Item::List(v) | Item::Set(v) => {
                visitor.visit_seq(de::value::SeqDeserializer::new(v.iter()))
            }
            Item::Dict(pairs) => visitor.visit_map(de::value::MapDeserializer::new(
                pairs.iter().map(|(k, v)| (k, v)),
            )),
            Item::Array(a) => match (&a.data, a.shape.len()) {
                (ArrayData::Char(units), _) => visitor.visit_string(
                    String::from_utf16(units).map_err(|_| mismatch("a UTF-16 string", self))?,
                ),
                _ => match array_elements(a) {
                    Some(items) => {
                        visitor.visit_seq(de::value::SeqDeserializer::new(items.into_iter()))
                    }
                    None => Err(mismatch("a value serde can read", self)),
                },
            },
            Item::Struct(_) | Item::Cell(_) | Item::Record(_) => {
                Err(mismatch("a value serde can read", self))
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BlobError> {
        match self {
            Item::None => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, BlobError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BlobError> {
        match self {
            Item::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Item::Dict(pairs) if pairs.len() == 1 => {
                visitor.visit_enum(EnumAccess(&pairs[0].0, &pairs[0].1))
            }
            _ => Err(mismatch(
                "an enum variant (a name, or a one-entry dict)",
                self,
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq
        tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, BlobError> for &Item {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> IntoDeserializer<'de, BlobError> for Item {
    type Deserializer = OwnedItem;
    fn into_deserializer(self) -> OwnedItem {
        OwnedItem(self)
    }
}

/// An owned item as a deserializer (for array elements).
#[doc(hidden)]
pub struct OwnedItem(Item);

impl<'de> de::Deserializer<'de> for OwnedItem {
    type Error = BlobError;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BlobError> {
        (&self.0).deserialize_any(visitor)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BlobError> {
        (&self.0).deserialize_option(visitor)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq
        tuple tuple_struct map struct identifier ignored_any newtype_struct enum
    }
}

struct EnumAccess<'a>(&'a Item, &'a Item);

impl<'de, 'a> de::EnumAccess<'de> for EnumAccess<'a> {
    type Error = BlobError;
    type Variant = &'a Item;
    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, &'a Item), BlobError> {
        Ok((seed.deserialize(self.0)?, self.1))
    }
}

impl<'de> de::VariantAccess<'de> for &Item {
    type Error = BlobError;
    fn unit_variant(self) -> Result<(), BlobError> {
        Ok(())
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, BlobError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, BlobError> {
        de::Deserializer::deserialize_any(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BlobError> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Shape {
        Dot,
        Circle(f64),
        Rect { w: u32, h: u32 },
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Recording {
        channels: u32,
        rate: f64,
        name: String,
        gain: Option<f32>,
        tags: Vec<String>,
        samples: Vec<f64>,
        pair: (i64, bool),
        shapes: Vec<Shape>,
        extra: BTreeMap<String, i64>,
        raw: serde_bytes_like::Raw,
    }

    mod serde_bytes_like {
        use serde::{Deserialize, Serialize};
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        pub struct Raw(pub Vec<u8>);
    }

    #[test]
    fn struct_is_a_dict_exactly_as_python_packs_it() {
        #[derive(Serialize)]
        struct Meta {
            channels: u32,
            rate: u32,
        }
        let blob = crate::encode(
            &to_item(&Meta {
                channels: 32,
                rate: 30000,
            })
            .unwrap(),
        )
        .unwrap();
        // datajoint.blob.pack({'channels': 32, 'rate': 30000}) in 2.3.5:
        let python = "646a300004020000000000000011000000000000000508000000000000006368616e6e656c73\
                      04000000000000000a0100200d000000000000000504000000000000007261746505000000\
                      000000000a02003075";
        let hex: String = blob.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, python.replace(' ', ""));
    }

    #[test]
    fn round_trip_through_bytes() {
        let r = Recording {
            channels: 32,
            rate: 30000.0,
            name: "probe ü".into(),
            gain: None,
            tags: vec!["a".into(), "b".into()],
            samples: vec![0.5, -1.25],
            pair: (-7, true),
            shapes: vec![Shape::Dot, Shape::Circle(2.0), Shape::Rect { w: 3, h: 4 }],
            extra: [("x".to_string(), 1)].into(),
            raw: serde_bytes_like::Raw(vec![1, 2, 3]),
        };
        let item = to_item(&r).unwrap();
        let back: Recording =
            from_item(&crate::decode(&crate::encode(&item).unwrap()).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn numpy_vectors_read_as_sequences_and_mismatches_say_why() {
        let v: Vec<f64> = from_item(&Item::from(vec![1.0, 2.0])).unwrap();
        assert_eq!(v, [1.0, 2.0]);
        let err = from_item::<u32>(&Item::from("x")).unwrap_err().to_string();
        assert!(err.contains("invalid type"), "{err}");
    }
}
