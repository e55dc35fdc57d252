//! # dj-codec-spike-train: a third-party codec for dj-rs
//!
//! This crate adds the `<spike_train>` attribute type: a neuron's spike times as a Rust
//! [`SpikeTrain`]. It is also the worked example of a codec published outside dj-rs (see
//! `docs/custom-codecs.md`). The codec chains into `<blob>`, so a spike train is stored as a
//! DataJoint blob dict `{"unit_id": int, "sampling_rate": float, "spike_times": float64 array}`
//! that DataJoint Python reads as a plain `dict`:
//!
//! | declared as | chain | column |
//! |---|---|---|
//! | `<spike_train>` | spike_train → blob → `bytes` | the blob, in the table |
//! | `<spike_train@>`, `<spike_train@s>` | spike_train → blob → hash → `json` | metadata; blob in the store |
//!
//! ```
//! use std::sync::Arc;
//! use dj_codec_spike_train::SpikeTrain;
//! use dj_core::codec::{Codec, CodecContext, ResolvedType};
//! use dj_core::registry::Registry;
//! use dj_core::value::Value;
//! use dj_core::Config;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! // Naming the crate links it, and linking registers `<spike_train>`: no set-up call.
//! assert!(Registry::global().codec("spike_train").is_ok());
//!
//! let config = Arc::new(Config::default());
//! let ty = ResolvedType::resolve(&"<spike_train>".parse()?, Registry::global(), &config)?;
//! let chain: Vec<&str> = ty.chain.iter().map(|c| c.name()).collect();
//! assert_eq!(chain, ["spike_train", "blob"]);
//! assert_eq!(ty.final_type.to_string(), "bytes");
//!
//! let train = SpikeTrain::new(7, 30_000.0, vec![0.0012, 0.0345, 1.5]);
//! let cx = CodecContext::for_tests(Arc::clone(&config));
//! let stored = ty.encode(Value::from(train.clone()), &cx).await?;
//! assert_eq!(&stored.as_bytes().unwrap()[..4], b"dj0\0"); // a Python-style blob: a dict
//! let fetched = ty.decode(stored, &cx).await?;
//! assert_eq!(fetched.as_domain::<SpikeTrain>(), Some(&train));
//!
//! // Anything else is refused before a byte is written, with the codec named.
//! let err = ty.encode(Value::from("not a spike train"), &cx).await.unwrap_err();
//! assert!(err.to_string().starts_with("codec <spike_train>"), "{err}");
//! # Ok(()) }
//! ```
//!
//! ## In a store
//!
//! [`SpikeTrainCodec`]'s [`dtype`](dj_core::codec::Codec::dtype) returns `<blob>` whether or
//! not the attribute names a store. DataJoint's store-propagation rule does the rest: the store
//! of `<spike_train@cold>` passes inward, `<blob@cold>` chains into `<hash@cold>`, and the blob
//! lands hash-addressed (and deduplicated) in the store. Garbage collection needs nothing from
//! this crate: it classifies the attribute by its resolved chain, which ends in `<hash@>`.
//!
//! ```
//! use dj_core::codec::{Codec, ResolvedType};
//! use dj_core::config::{Config, StoreSpec};
//! use dj_core::registry::Registry;
//! # use dj_codec_spike_train as _; use dj_codec_hash as _;
//!
//! let mut config = Config::default();
//! config.stores.specs.insert("cold".into(), StoreSpec::new("cold", "memory", ""));
//! config.stores.default = Some("cold".into());
//! let ty = ResolvedType::resolve(&"<spike_train@>".parse()?, Registry::global(), &config)?;
//! let chain: Vec<&str> = ty.chain.iter().map(|c| c.name()).collect();
//! assert_eq!(chain, ["spike_train", "blob", "hash"]);
//! assert_eq!(ty.store.as_deref(), Some("cold"));
//! assert_eq!(ty.final_type.to_string(), "json");
//! # Ok::<(), dj_core::Error>(())
//! ```
//!
//! ## Linking: name this crate in your code
//!
//! The codec registers itself at link time with `inventory` (through
//! [`dj_core::submit_codec!`]). `inventory` only sees crates that end up in the binary, and a
//! crate listed in `Cargo.toml` but never named in code is not linked: `<spike_train>` would
//! then be an "unknown codec" at declare or fetch time, with no warning before. The
//! `datajoint` facade names its own plugins for you, but it cannot know about this one. So name
//! it once, anywhere in the binary (or the test):
//!
//! ```
//! use dj_codec_spike_train as _;
//! // or, equivalently, call the no-op:
//! dj_codec_spike_train::link();
//! ```
//!
//! Using any item of the crate (such as [`SpikeTrain`]) links it too. A test that asserts
//! `Registry::global().codec("spike_train").is_ok()` catches a missing link.
//!
//! To register the codec at run time instead (or to replace it), pass it to
//! [`Registry::register_codec`](dj_core::registry::Registry::register_codec): run-time entries
//! win over link-time ones, and a second run-time registration of the same name is an error.
//!
//! ## Interoperability
//!
//! DataJoint Python reads a `<spike_train>` column with a codec of the same name that returns
//! `<blob>` from `get_dtype` (without one it reports a missing codec). Its `decode` receives the
//! dict described above; its `encode` must produce the same keys. This crate reads what such a
//! codec writes: `unit_id` may be a Python `int` or a numpy integer scalar, `sampling_rate` any
//! number, `spike_times` a numeric vector (any float or integer dtype, or a list of numbers).
//! Keys it does not know are ignored, so later versions may add some.

mod codec;

use dj_codec_blob::{Array, ArrayData, Item};
use dj_core::error::{Error, Result};
use dj_core::value::Value;

pub use codec::SpikeTrainCodec;

/// The codec name, as used inside `<…>`.
pub const NAME: &str = "spike_train";

/// Does nothing, and by being called makes sure this crate is linked (so `<spike_train>` is
/// registered). `use dj_codec_spike_train as _;` does the same.
pub fn link() {}

/// The spike times of one unit (a sorted neuron) in one recording.
///
/// Spike times are in seconds from the start of the recording; `sampling_rate` (Hz) is the rate
/// of the recording they were detected in. [`SpikeTrain::check`] lists what the codec accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeTrain {
    /// The unit's identifier.
    pub unit_id: u32,
    /// The sampling rate of the recording, in Hz.
    pub sampling_rate: f64,
    /// Spike times in seconds, in ascending order.
    pub spike_times: Vec<f64>,
}

/// The blob dict's keys, in the order they are written.
const UNIT_ID: &str = "unit_id";
const SAMPLING_RATE: &str = "sampling_rate";
const SPIKE_TIMES: &str = "spike_times";

impl SpikeTrain {
    /// A spike train.
    pub fn new(unit_id: u32, sampling_rate: f64, spike_times: Vec<f64>) -> Self {
        SpikeTrain {
            unit_id,
            sampling_rate,
            spike_times,
        }
    }

    /// Check that the train can be stored: a positive, finite sampling rate and finite spike
    /// times in ascending order (equal neighbours allowed). The codec runs this before encoding.
    pub fn check(&self) -> Result<()> {
        if !(self.sampling_rate.is_finite() && self.sampling_rate > 0.0) {
            return Err(Error::codec(
                NAME,
                format!(
                    "unit {}: sampling_rate must be a positive, finite number of Hz, found {}",
                    self.unit_id, self.sampling_rate
                ),
            ));
        }
        if let Some(i) = self.spike_times.iter().position(|t| !t.is_finite()) {
            return Err(Error::codec(
                NAME,
                format!(
                    "unit {}: spike_times[{i}] is {}; spike times must be finite",
                    self.unit_id, self.spike_times[i]
                ),
            ));
        }
        if let Some(i) = self.spike_times.windows(2).position(|w| w[1] < w[0]) {
            return Err(Error::codec(
                NAME,
                format!(
                    "unit {}: spike_times must be in ascending order, but spike_times[{}] = {} \
                     follows {}",
                    self.unit_id,
                    i + 1,
                    self.spike_times[i + 1],
                    self.spike_times[i]
                ),
            ));
        }
        Ok(())
    }

    /// The blob item this train is stored as: a dict (`dj0` blob) that DataJoint Python unpacks
    /// as `{"unit_id": int, "sampling_rate": float, "spike_times": numpy.ndarray[float64]}`.
    /// The spike times move into the item without a copy.
    pub fn into_item(self) -> Item {
        Item::Dict(vec![
            (Item::from(UNIT_ID), Item::from(i64::from(self.unit_id))),
            (Item::from(SAMPLING_RATE), Item::Float(self.sampling_rate)),
            (Item::from(SPIKE_TIMES), Item::from(self.spike_times)),
        ])
    }

    /// Read a train from the blob item of [`SpikeTrain::into_item`], or from what a Python codec
    /// of the same name wrote (see the crate docs). Unknown keys are ignored.
    pub fn from_item(mut item: Item) -> Result<SpikeTrain> {
        // `Item` implements `Drop` (deep values drop without recursion), so its contents are
        // taken out with `std::mem::take` rather than moved out by a pattern.
        let Item::Dict(pairs) = &mut item else {
            return Err(Error::codec(
                NAME,
                format!(
                    "a stored spike train must be a blob dict, found {}",
                    describe(&item)
                ),
            ));
        };
        let (mut unit_id, mut sampling_rate, mut spike_times) = (None, None, None);
        let mut keys = Vec::new();
        for (mut key, value) in std::mem::take(pairs) {
            let Item::Str(key) = &mut key else { continue };
            let key = std::mem::take(key);
            match key.as_str() {
                UNIT_ID => unit_id = Some(read_unit_id(&value)?),
                SAMPLING_RATE => sampling_rate = Some(read_rate(&value)?),
                SPIKE_TIMES => spike_times = Some(read_times(value)?),
                _ => {}
            }
            keys.push(key);
        }
        let missing = |field: &str| {
            Error::codec(
                NAME,
                format!(
                    "the stored dict has no `{field}` (its keys: {})",
                    keys.join(", ")
                ),
            )
        };
        Ok(SpikeTrain {
            unit_id: unit_id.ok_or_else(|| missing(UNIT_ID))?,
            sampling_rate: sampling_rate.ok_or_else(|| missing(SAMPLING_RATE))?,
            spike_times: spike_times.ok_or_else(|| missing(SPIKE_TIMES))?,
        })
    }
}

impl From<SpikeTrain> for Value {
    /// A domain value, ready for a `<spike_train>` attribute.
    fn from(train: SpikeTrain) -> Value {
        Value::domain(train)
    }
}

fn describe(item: &Item) -> String {
    match item {
        Item::None => "None".into(),
        Item::Bool(_) => "a bool".into(),
        Item::Int(_) => "an int".into(),
        Item::Float(_) => "a float".into(),
        Item::Complex(..) => "a complex number".into(),
        Item::Str(_) => "a str".into(),
        Item::Bytes(_) => "bytes".into(),
        Item::Decimal(_) => "a Decimal".into(),
        Item::Temporal(_) => "a date/time".into(),
        Item::Uuid(_) => "a UUID".into(),
        Item::Tuple(_) => "a tuple".into(),
        Item::List(_) => "a list".into(),
        Item::Set(_) => "a set".into(),
        Item::Dict(_) => "a dict".into(),
        Item::Array(a) => format!("an array of shape {:?}", a.shape),
        Item::Struct(_) => "a struct array".into(),
        Item::Cell(_) => "a cell array".into(),
        Item::Record(_) => "a record array".into(),
    }
}

fn field_error(field: &str, expected: &str, found: &Item) -> Error {
    Error::codec(
        NAME,
        format!(
            "stored `{field}` must be {expected}, found {}",
            describe(found)
        ),
    )
}

/// `unit_id`: a Python `int`, or a numpy integer scalar (a one-element integer array).
fn read_unit_id(item: &Item) -> Result<u32> {
    let wide: Option<i128> = match item {
        Item::Int(i) => i.to_i128(),
        Item::Array(Array { data, .. }) if data.len() == 1 => match data {
            ArrayData::I8(v) => Some(i128::from(v[0])),
            ArrayData::U8(v) => Some(i128::from(v[0])),
            ArrayData::I16(v) => Some(i128::from(v[0])),
            ArrayData::U16(v) => Some(i128::from(v[0])),
            ArrayData::I32(v) => Some(i128::from(v[0])),
            ArrayData::U32(v) => Some(i128::from(v[0])),
            ArrayData::I64(v) => Some(i128::from(v[0])),
            ArrayData::U64(v) => Some(i128::from(v[0])),
            _ => None,
        },
        _ => None,
    };
    let wide = wide.ok_or_else(|| field_error(UNIT_ID, "an integer", item))?;
    u32::try_from(wide).map_err(|_| {
        Error::codec(
            NAME,
            format!("stored `{UNIT_ID}` {wide} does not fit an unsigned 32-bit integer"),
        )
    })
}

/// `sampling_rate`: any number (a float, an int, or a one-element numeric array).
fn read_rate(item: &Item) -> Result<f64> {
    if let Ok(f) = f64::try_from(item) {
        return Ok(f);
    }
    match item {
        Item::Array(Array { data, .. }) if data.len() == 1 => numbers(data.clone()),
        _ => None,
    }
    .and_then(|v| v.first().copied())
    .ok_or_else(|| field_error(SAMPLING_RATE, "a number", item))
}

/// `spike_times`: a numeric vector (shape `(n,)`, `(n, 1)` or `(1, n)`) or a list of numbers.
fn read_times(mut item: Item) -> Result<Vec<f64>> {
    match &mut item {
        Item::Array(Array { shape, data })
            if shape.iter().filter(|&&d| d != 1).count() <= 1 && !shape.is_empty() =>
        {
            let described = format!("an array of shape {shape:?}");
            numbers(std::mem::take(data)).ok_or_else(|| {
                Error::codec(
                    NAME,
                    format!("stored `{SPIKE_TIMES}` must be numeric, found {described}"),
                )
            })
        }
        Item::List(items) => items
            .iter()
            .map(|i| f64::try_from(i).map_err(|_| field_error(SPIKE_TIMES, "a list of numbers", i)))
            .collect(),
        other => Err(field_error(SPIKE_TIMES, "a numeric vector", other)),
    }
}

/// The elements of a real numeric array as `f64` (`float64` moves without a copy).
#[allow(clippy::cast_precision_loss)]
fn numbers(data: ArrayData) -> Option<Vec<f64>> {
    fn widen<T: Copy>(v: Vec<T>, f: impl Fn(T) -> f64) -> Option<Vec<f64>> {
        Some(v.into_iter().map(f).collect())
    }
    match data {
        ArrayData::F64(v) => Some(v),
        ArrayData::F32(v) => widen(v, f64::from),
        ArrayData::I8(v) => widen(v, f64::from),
        ArrayData::U8(v) => widen(v, f64::from),
        ArrayData::I16(v) => widen(v, f64::from),
        ArrayData::U16(v) => widen(v, f64::from),
        ArrayData::I32(v) => widen(v, f64::from),
        ArrayData::U32(v) => widen(v, f64::from),
        ArrayData::I64(v) => widen(v, |x| x as f64),
        ArrayData::U64(v) => widen(v, |x| x as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn item_round_trip_and_python_variants() {
        let train = SpikeTrain::new(12, 25_000.0, vec![0.1, 0.2, 0.2, 3.0]);
        let item = train.clone().into_item();
        let blob = dj_codec_blob::encode(&item).unwrap();
        assert_eq!(&blob[..4], b"dj0\0");
        let back = SpikeTrain::from_item(dj_codec_blob::decode(&blob).unwrap()).unwrap();
        assert_eq!(back, train);

        // As numpy would write it: a uint32 scalar, an int rate, int32 times in a column
        // vector, and an extra key.
        let item = Item::Dict(vec![
            (Item::from("note"), Item::from("extra keys are ignored")),
            (
                Item::from("unit_id"),
                Item::Array(Array::new(vec![], ArrayData::U32(vec![4])).unwrap()),
            ),
            (Item::from("sampling_rate"), Item::from(1000_i64)),
            (
                Item::from("spike_times"),
                Item::Array(Array::new(vec![3, 1], ArrayData::I32(vec![1, 2, 5])).unwrap()),
            ),
        ]);
        let t = SpikeTrain::from_item(item).unwrap();
        assert_eq!(t, SpikeTrain::new(4, 1000.0, vec![1.0, 2.0, 5.0]));
        let list = Item::Dict(vec![
            (Item::from("unit_id"), Item::from(1_i64)),
            (Item::from("sampling_rate"), Item::from(2.5)),
            (Item::from("spike_times"), Item::List(vec![])),
        ]);
        assert!(SpikeTrain::from_item(list).unwrap().spike_times.is_empty());
    }

    #[test]
    fn bad_items_are_explained() {
        let err = SpikeTrain::from_item(Item::from(3_i64)).unwrap_err();
        assert!(err.to_string().contains("must be a blob dict"), "{err}");
        let err =
            SpikeTrain::from_item(Item::Dict(vec![(Item::from("unit_id"), Item::from(1_i64))]))
                .unwrap_err();
        assert!(
            err.to_string()
                .contains("no `sampling_rate` (its keys: unit_id)"),
            "{err}"
        );
        let err = SpikeTrain::from_item(Item::Dict(vec![(
            Item::from("unit_id"),
            Item::from(-1_i64),
        )]))
        .unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        let grid = Item::Array(Array::new(vec![2, 2], ArrayData::F64(vec![0.0; 4])).unwrap());
        let err =
            SpikeTrain::from_item(Item::Dict(vec![(Item::from("spike_times"), grid)])).unwrap_err();
        assert!(err.to_string().contains("numeric vector"), "{err}");
    }

    #[test]
    fn check_rejects_what_is_not_a_spike_train() {
        assert!(SpikeTrain::new(1, 1.0, vec![]).check().is_ok());
        for (t, want) in [
            (SpikeTrain::new(1, 0.0, vec![]), "sampling_rate must be"),
            (
                SpikeTrain::new(1, f64::NAN, vec![]),
                "sampling_rate must be",
            ),
            (
                SpikeTrain::new(1, 1.0, vec![0.0, f64::INFINITY]),
                "spike_times[1] is inf",
            ),
            (
                SpikeTrain::new(1, 1.0, vec![0.0, 2.0, 1.0]),
                "spike_times[2] = 1 follows 2",
            ),
        ] {
            let err = t.check().unwrap_err().to_string();
            assert!(err.starts_with("codec <spike_train>"), "{err}");
            assert!(err.contains(want), "{err}");
        }
    }
}
