//! The `<blob>` codec.

use std::sync::Arc;

use async_trait::async_trait;
use dj_core::codec::{Codec, CodecContext};
use dj_core::error::{Error, Result};
use dj_core::task::{BLOCKING_THRESHOLD, run_blocking};
use dj_core::typespec::{CoreType, TypeSpec};
use dj_core::value::Value;

use crate::encode::{Compression, EncodeOptions};
use crate::item::Item;
use crate::{decode, encode_with};

/// The codec name.
pub const NAME: &str = "blob";

/// The `<blob>` codec: in the table it stores `bytes`; with `@` it chains into `<hash@>`.
///
/// It accepts an [`Item`] as a domain value, and the core values with an obvious blob form
/// (`Null`, bools, integers, floats, strings, bytes, UUIDs, decimals, JSON documents). Fetch
/// returns an [`Item`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BlobCodec {
    /// How blobs over 1000 bytes are compressed; `None` (the registered codec) follows the
    /// configuration's `blob_compression` (`fast` unless set).
    pub compression: Option<Compression>,
}

dj_core::submit_codec!(NAME, || Arc::new(BlobCodec::default()));

fn to_item(value: Value) -> Result<Item> {
    match value {
        Value::Domain(d) => match d.downcast::<Item>() {
            Ok(item) => Ok(item),
            Err(d) => Err(Error::codec(
                NAME,
                format!(
                    "<blob> cannot store `{}`; convert it to a blob Item",
                    d.type_name()
                ),
            )),
        },
        other => Item::try_from(other).map_err(Error::from),
    }
}

#[async_trait]
impl Codec for BlobCodec {
    fn name(&self) -> &str {
        NAME
    }

    fn dtype(&self, is_store: bool) -> Result<TypeSpec> {
        Ok(if is_store {
            TypeSpec::Codec {
                name: "hash".into(),
                store: None,
            }
        } else {
            TypeSpec::Core(CoreType::Bytes)
        })
    }

    fn validate(&self, value: &Value) -> Result<()> {
        match value {
            Value::Domain(d) if !d.is::<Item>() => Err(Error::codec(
                NAME,
                format!(
                    "<blob> cannot store `{}`; convert it to a blob Item",
                    d.type_name()
                ),
            )),
            _ => Ok(()),
        }
    }

    async fn encode(&self, value: Value, ctx: &CodecContext) -> Result<Value> {
        let item = to_item(value)?;
        let big = matches!(&item, Item::Array(a) if a.data.len() * 8 > BLOCKING_THRESHOLD);
        let compression = self.compression.unwrap_or(ctx.config.blob_compression);
        let options = EncodeOptions { compression };
        let bytes = run_blocking(big, NAME, "task", move || {
            encode_with(&item, options).map_err(Error::from)
        })
        .await??;
        Ok(Value::Bytes(bytes.into()))
    }

    async fn decode(&self, stored: Value, _ctx: &CodecContext) -> Result<Value> {
        let Value::Bytes(bytes) = stored else {
            return Err(Error::codec(
                NAME,
                format!("stored blob must be bytes, found {}", stored.kind()),
            ));
        };
        let big = bytes.len() > BLOCKING_THRESHOLD;
        let item = run_blocking(big, NAME, "task", move || {
            decode(&bytes).map_err(Error::from)
        })
        .await??;
        Ok(Value::domain(item))
    }
}
