//! The `<spike_train>` codec.

use std::sync::Arc;

use async_trait::async_trait;
use dj_codec_blob::Item;
use dj_core::codec::{Codec, CodecContext};
use dj_core::error::{Error, Result};
use dj_core::typespec::TypeSpec;
use dj_core::value::Value;

use crate::{NAME, SpikeTrain};

/// The `<spike_train>` codec: takes and returns a [`SpikeTrain`] domain value and stores it as a
/// `<blob>` dict, in the table or (with `@`) hash-addressed in a store.
///
/// Stateless. It is registered at link time; construct it yourself only to register it in a
/// [`Registry`](dj_core::registry::Registry) of your own.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpikeTrainCodec;

// Link-time registration: a const entry (name + constructor) that `inventory` collects when this
// crate is linked. Nothing runs until the registry is first used.
dj_core::submit_codec!(NAME, || Arc::new(SpikeTrainCodec));

fn not_a_train(found: &Value) -> Error {
    Error::codec(
        NAME,
        format!(
            "expects a dj_codec_spike_train::SpikeTrain (Value::domain(train) or \
             Value::from(train)), found {}",
            found.kind()
        ),
    )
}

#[async_trait]
impl Codec for SpikeTrainCodec {
    fn name(&self) -> &str {
        NAME
    }

    /// `<blob>` in both modes. With `@`, the attribute's store propagates into the blob codec,
    /// which then chains into `<hash@store>`: `<spike_train@s>` is spike_train → blob → hash →
    /// `json`.
    fn dtype(&self, _is_store: bool) -> Result<TypeSpec> {
        Ok(TypeSpec::Codec {
            name: dj_codec_blob::NAME.into(),
            store: None,
        })
    }

    /// Accepts only a [`SpikeTrain`] that passes [`SpikeTrain::check`].
    fn validate(&self, value: &Value) -> Result<()> {
        match value.as_domain::<SpikeTrain>() {
            Some(train) => train.check(),
            None => Err(not_a_train(value)),
        }
    }

    async fn encode(&self, value: Value, _ctx: &CodecContext) -> Result<Value> {
        let train = match value {
            // Takes the train without a copy when the row held the only handle.
            Value::Domain(d) => d
                .downcast::<SpikeTrain>()
                .map_err(|d| not_a_train(&Value::Domain(d)))?,
            other => return Err(not_a_train(&other)),
        };
        Ok(Value::domain(train.into_item()))
    }

    async fn decode(&self, stored: Value, _ctx: &CodecContext) -> Result<Value> {
        // `<blob>` decodes first and hands over its item.
        let item = match stored {
            Value::Domain(d) => d.downcast::<Item>().map_err(|d| {
                Error::codec(
                    NAME,
                    format!("expected a blob item to decode, found `{}`", d.type_name()),
                )
            })?,
            other => {
                return Err(Error::codec(
                    NAME,
                    format!("expected a blob item to decode, found {}", other.kind()),
                ));
            }
        };
        Ok(Value::domain(SpikeTrain::from_item(item)?))
    }

    // `referenced_paths` keeps its default (read `path`/`store` from JSON metadata). Garbage
    // collection asks every codec of the resolved chain, and `<hash@>` reports the object.
}
