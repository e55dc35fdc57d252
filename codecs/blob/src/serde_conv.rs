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
use crate::encode::too_deep;
use crate::item::{Array, ArrayData, Item, MAX_DEPTH, PyInt};

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
///
/// Values nested deeper than [`MAX_DEPTH`] are refused as the serializer reaches that depth,
/// and so are chains of more than [`MAX_DEPTH`] `Option` and newtype wrappers, so a deeply
/// nested (or recursive) value is an error, never a stack overflow.
pub fn to_item<T: Serialize + ?Sized>(value: &T) -> Result<Item, BlobError> {
    value.serialize(ItemSerializer::default())
}

/// Read a value out of a blob item.
///
/// An item nested deeper than [`MAX_DEPTH`] (one built in memory; decoded blobs never are), or a
/// target type that wraps itself in `Option` or newtypes more than [`MAX_DEPTH`] times, is an
/// error as reading reaches that depth, never a stack overflow.
pub fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, BlobError> {
    T::deserialize(item)
}

/// Where a serializer or deserializer is: the depth of the item it is at (how many containers
/// enclose it) and how many `Option`/newtype wrappers it went through. Both are bounded by
/// [`MAX_DEPTH`], which bounds the recursion.
#[derive(Clone, Copy, Default)]
struct Level {
    depth: usize,
    wrappers: usize,
}

impl Level {
    /// `containers` containers further in, where an item must be: an error past [`MAX_DEPTH`].
    fn inside(self, containers: usize) -> Result<Level, BlobError> {
        let depth = self.depth + containers;
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        Ok(Level { depth, ..self })
    }

    /// One wrapper further in.
    fn wrapped(self) -> Result<Level, BlobError> {
        if self.wrappers >= MAX_DEPTH {
            return Err(BlobError::Invalid {
                message: format!(
                    "more than {MAX_DEPTH} nested Option or newtype wrappers (a recursive type?)"
                ),
            });
        }
        Ok(Level {
            wrappers: self.wrappers + 1,
            ..self
        })
    }
}

#[derive(Default)]
struct ItemSerializer(Level);

/// Collects a sequence, tuple or map.
#[doc(hidden)]
pub struct Collect {
    items: Vec<Item>,
    pairs: Vec<(Item, Item)>,
    key: Option<Item>,
    kind: Kind,
    variant: Option<&'static str>,
    /// Where the container is (its elements are one level further in, two for a variant).
    at: Level,
}

#[derive(PartialEq)]
enum Kind {
    List,
    Tuple,
    Dict,
}

impl Collect {
    /// A container at `at` (for a variant, the one-entry dict around the container is at `at`).
    fn new(kind: Kind, variant: Option<&'static str>, at: Level) -> Result<Self, BlobError> {
        Ok(Collect {
            items: Vec::new(),
            pairs: Vec::new(),
            key: None,
            kind,
            variant,
            // A variant's container sits inside a one-entry dict: it must fit too.
            at: at.inside(usize::from(variant.is_some()))?,
        })
    }

    /// Serialize one element (an error when it would be too deep, even if it is a scalar).
    fn element<T: Serialize + ?Sized>(&self, value: &T) -> Result<Item, BlobError> {
        value.serialize(ItemSerializer(self.at.inside(1)?))
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
        value.serialize(ItemSerializer(self.0.wrapped()?))
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
        value.serialize(ItemSerializer(self.0.wrapped()?))
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
            value.serialize(ItemSerializer(self.0.inside(1)?))?,
        )]))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Collect, BlobError> {
        Collect::new(Kind::List, None, self.0)
    }
    fn serialize_tuple(self, _: usize) -> Result<Collect, BlobError> {
        Collect::new(Kind::Tuple, None, self.0)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Collect, BlobError> {
        Collect::new(Kind::Tuple, None, self.0)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        v: &'static str,
        _: usize,
    ) -> Result<Collect, BlobError> {
        Collect::new(Kind::Tuple, Some(v), self.0)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Collect, BlobError> {
        Collect::new(Kind::Dict, None, self.0)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Collect, BlobError> {
        Collect::new(Kind::Dict, None, self.0)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        v: &'static str,
        _: usize,
    ) -> Result<Collect, BlobError> {
        Collect::new(Kind::Dict, Some(v), self.0)
    }
}

macro_rules! seq_like {
    ($($tr:ident :: $m:ident),*) => {$(
        impl ser::$tr for Collect {
            type Ok = Item;
            type Error = BlobError;
            fn $m<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BlobError> {
                let item = self.element(value)?;
                self.items.push(item);
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
        self.key = Some(self.element(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BlobError> {
        let key = self.key.take().ok_or(BlobError::Invalid {
            message: "map value without a key".into(),
        })?;
        let value = self.element(value)?;
        self.pairs.push((key, value));
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
                let value = self.element(value)?;
                self.pairs.push((Item::from(key), value));
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

/// The elements of a 1-D-like numeric array as items, for reading arrays as sequences (`None`
/// for object arrays, whose elements are read in place, and for arrays serde cannot read).
fn numeric_elements(a: &Array) -> Option<Vec<Item>> {
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
        _ => return None,
    })
}

/// An item being read, and where: every nested read goes through this, so the depth is known.
#[derive(Clone, Copy)]
struct Reading<'a> {
    item: &'a Item,
    at: Level,
}

impl<'a> Reading<'a> {
    fn top(item: &'a Item) -> Self {
        Reading {
            item,
            at: Level::default(),
        }
    }

    /// The same item, through one more `Option` or newtype wrapper.
    fn wrapped(self) -> Result<Self, BlobError> {
        Ok(Reading {
            item: self.item,
            at: self.at.wrapped()?,
        })
    }

    /// Where the items directly inside this one are: an error past [`MAX_DEPTH`], unless there
    /// are none.
    fn inside(self, any: bool) -> Result<Level, BlobError> {
        if any { self.at.inside(1) } else { Ok(self.at) }
    }

    /// Readers for the items directly inside this one.
    fn children(self, items: &'a [Item]) -> Result<impl Iterator<Item = Reading<'a>>, BlobError> {
        let at = self.inside(!items.is_empty())?;
        Ok(items.iter().map(move |item| Reading { item, at }))
    }
}

impl<'de> de::Deserializer<'de> for Reading<'_> {
    type Error = BlobError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BlobError> {
        let item = self.item;
        match item {
            Item::None => visitor.visit_unit(),
            Item::Bool(b) => visitor.visit_bool(*b),
            Item::Int(i) => match (i.to_i64(), i.to_i128()) {
                (Some(v), _) => visitor.visit_i64(v),
                (None, Some(v)) => visitor.visit_i128(v),
                _ => Err(mismatch("an integer that fits 128 bits", item)),
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
                visitor.visit_seq(de::value::SeqDeserializer::new(self.children(v)?))
            }
            Item::Dict(pairs) => {
                let at = self.inside(!pairs.is_empty())?;
                let entry = move |item| Reading { item, at };
                visitor.visit_map(de::value::MapDeserializer::new(
                    pairs.iter().map(move |(k, v)| (entry(k), entry(v))),
                ))
            }
            Item::Array(a) => match &a.data {
                ArrayData::Char(units) => visitor.visit_string(
                    String::from_utf16(units).map_err(|_| mismatch("a UTF-16 string", item))?,
                ),
                ArrayData::Object(v) => {
                    visitor.visit_seq(de::value::SeqDeserializer::new(self.children(v)?))
                }
                _ => match numeric_elements(a) {
                    // Numbers are not nested items: they stay at the array's level.
                    Some(items) => {
                        let at = self.at;
                        visitor.visit_seq(de::value::SeqDeserializer::new(
                            items.into_iter().map(move |item| OwnedItem { item, at }),
                        ))
                    }
                    None => Err(mismatch("a value serde can read", item)),
                },
            },
            Item::Struct(_) | Item::Cell(_) | Item::Record(_) => {
                Err(mismatch("a value serde can read", item))
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BlobError> {
        match self.item {
            Item::None => visitor.visit_none(),
            _ => visitor.visit_some(self.wrapped()?),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, BlobError> {
        visitor.visit_newtype_struct(self.wrapped()?)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BlobError> {
        match self.item {
            Item::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Item::Dict(pairs) if pairs.len() == 1 => {
                let at = self.at.inside(1)?;
                visitor.visit_enum(EnumAccess(
                    Reading {
                        item: &pairs[0].0,
                        at,
                    },
                    Reading {
                        item: &pairs[0].1,
                        at,
                    },
                ))
            }
            _ => Err(mismatch(
                "an enum variant (a name, or a one-entry dict)",
                self.item,
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq
        tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, BlobError> for Reading<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for &Item {
    type Error = BlobError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BlobError> {
        Reading::top(self).deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BlobError> {
        Reading::top(self).deserialize_option(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BlobError> {
        Reading::top(self).deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BlobError> {
        Reading::top(self).deserialize_enum(name, variants, visitor)
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
        OwnedItem {
            item: self,
            at: Level::default(),
        }
    }
}

/// An owned item as a deserializer (for array elements).
#[doc(hidden)]
pub struct OwnedItem {
    item: Item,
    at: Level,
}

impl OwnedItem {
    fn reading(&self) -> Reading<'_> {
        Reading {
            item: &self.item,
            at: self.at,
        }
    }
}

impl<'de> de::Deserializer<'de> for OwnedItem {
    type Error = BlobError;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BlobError> {
        self.reading().deserialize_any(visitor)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BlobError> {
        self.reading().deserialize_option(visitor)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BlobError> {
        self.reading().deserialize_newtype_struct(name, visitor)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BlobError> {
        self.reading().deserialize_enum(name, variants, visitor)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq
        tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, BlobError> for OwnedItem {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

struct EnumAccess<'a>(Reading<'a>, Reading<'a>);

impl<'de, 'a> de::EnumAccess<'de> for EnumAccess<'a> {
    type Error = BlobError;
    type Variant = Reading<'a>;
    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Reading<'a>), BlobError> {
        Ok((seed.deserialize(self.0)?, self.1))
    }
}

impl<'de> de::VariantAccess<'de> for Reading<'_> {
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

impl<'de> de::VariantAccess<'de> for &Item {
    type Error = BlobError;
    fn unit_variant(self) -> Result<(), BlobError> {
        Ok(())
    }
    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, BlobError> {
        Reading::top(self).newtype_variant_seed(seed)
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, BlobError> {
        Reading::top(self).tuple_variant(len, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BlobError> {
        Reading::top(self).struct_variant(fields, visitor)
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
        let hex = data_encoding::HEXLOWER.encode(&blob);
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
