//! The `<blob>` codec.

use std::sync::Arc;

use async_trait::async_trait;
use dj_core::codec::{Codec, CodecContext};
use dj_core::error::{Error, Result};
use dj_core::typespec::{CoreType, TypeSpec};
use dj_core::value::{DomainValue, Value};
use dj_rt::task::{BLOCKING_THRESHOLD, run_blocking};

use crate::decode::{DecodeOptions, decode_with};
use crate::encode::{Compression, EncodeOptions};
use crate::encode_with;
use crate::item::Item;

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

/// The item to encode: a domain value's own (borrowed, never copied: the caller's row still
/// holds it) or one converted from a core value.
enum Source {
    Shared(DomainValue),
    Owned(Item),
}

impl Source {
    fn new(value: Value) -> Result<Source> {
        match value {
            Value::Domain(d) if d.is::<Item>() => Ok(Source::Shared(d)),
            Value::Domain(d) => Err(Error::codec(
                NAME,
                format!(
                    "<blob> cannot store `{}`; convert it to a blob Item",
                    d.type_name()
                ),
            )),
            other => Ok(Source::Owned(Item::try_from(other)?)),
        }
    }

    fn item(&self) -> Option<&Item> {
        match self {
            Source::Shared(d) => d.downcast_ref::<Item>(),
            Source::Owned(item) => Some(item),
        }
    }
}

/// Work on a value whose blob compresses (or may: `fast` estimates first) goes to the blocking
/// pool from about this many bytes. zlib runs at tens of megabytes per second, so 32 KiB is
/// hundreds of microseconds to several milliseconds of work, far more than the hand-off; and on
/// the pool the values of one insert (which the table encodes many at a time) are compressed on
/// every core instead of one after another on the runtime thread that polls them.
const COMPRESSING_POOL_MIN: usize = 32 * 1024;

/// Whether encoding `item` is worth a trip to the blocking pool: when compression may run on a
/// blob of [`COMPRESSING_POOL_MIN`] bytes or more, or when the copy alone is big.
fn encode_on_pool(item: &Item, compression: Compression) -> bool {
    let Item::Array(a) = item else {
        return false;
    };
    let bytes = crate::encode::data_bytes(&a.data);
    match compression {
        Compression::None => bytes > BLOCKING_THRESHOLD,
        _ => bytes >= COMPRESSING_POOL_MIN,
    }
}

/// Whether decoding `blob` is worth a trip to the blocking pool: when it must be inflated and is
/// [`COMPRESSING_POOL_MIN`] bytes or more, or when the copy alone is big.
fn decode_on_pool(blob: &[u8]) -> bool {
    blob.len() > BLOCKING_THRESHOLD
        || (blob.len() >= COMPRESSING_POOL_MIN && blob.starts_with(b"ZL123\0"))
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
        let source = Source::new(value)?;
        let compression = self.compression.unwrap_or(ctx.config.blob_compression);
        let big = source
            .item()
            .is_some_and(|item| encode_on_pool(item, compression));
        let options = EncodeOptions { compression };
        let bytes = run_blocking(big, NAME, "task", move || {
            let item = source
                .item()
                .ok_or_else(|| Error::codec(NAME, "the domain value is not a blob Item"))?;
            encode_with(item, options).map_err(Error::from)
        })
        .await??;
        Ok(Value::Bytes(bytes.into()))
    }

    async fn decode(&self, stored: Value, ctx: &CodecContext) -> Result<Value> {
        let Value::Bytes(bytes) = stored else {
            return Err(Error::codec(
                NAME,
                format!("stored blob must be bytes, found {}", stored.kind()),
            ));
        };
        let big = decode_on_pool(&bytes);
        let options = DecodeOptions {
            max_decompressed_size: ctx.config.blob_max_decompressed_size,
            ..DecodeOptions::default()
        };
        let item = run_blocking(big, NAME, "task", move || {
            decode_with(&bytes, options).map_err(Error::from)
        })
        .await??;
        Ok(Value::domain(item))
    }
}
