//! The `<npy@>` codec: writing arrays to the store and decoding metadata into [`NpyRef`]s.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use dj_core::codec::{Codec, CodecContext, StoredRef};
use dj_core::config::HashAlgorithm;
use dj_core::error::{Error, Result};
use dj_core::store::{Store, StoreExt, StorePath};
use dj_core::typespec::TypeSpec;
use dj_core::value::Value;
use dj_layout::{ContentHasher, StoreLayout};
use dj_rt::task::{BLOCKING_THRESHOLD, run_blocking};
use futures::StreamExt;

use crate::NAME;
use crate::array::{Source, source_of};
use crate::dtype::ByteOrder;
use crate::header::NpyHeader;
use crate::metadata::NpyMetadata;
use crate::npyref::NpyRef;

/// Files with more data than this are streamed through a multipart upload by default.
pub const DEFAULT_STREAM_THRESHOLD: u64 = 16 * 1024 * 1024;

/// The default part size of streamed uploads (raised to the store's minimum when smaller).
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// The `<npy@>` codec. The crate registers one with the default settings at link time.
///
/// Encoding takes a [`Value::Domain`] holding an `ndarray::ArrayD<T>` of a supported element type
/// ([`NpyElement`](crate::NpyElement)) or an [`NpyArray`](crate::NpyArray), writes a standard
/// `.npy` file (what `numpy.save` writes) to
/// `{schema_prefix}/[partition/]{schema}/{table}/{pk=value…}/{field}_{token}.npy`, and returns the
/// metadata JSON ([`NpyMetadata`]). Arrays over the streaming threshold are converted on the
/// blocking pool chunk by chunk and uploaded in parts, so the file is never whole in memory.
/// Decoding does no I/O and returns a [`Value::Domain`] holding an [`NpyRef`].
#[derive(Debug, Clone, Copy)]
pub struct NpyCodec {
    /// Files with more data bytes than this are streamed through a multipart upload.
    pub stream_threshold: u64,
    /// The part size for streamed uploads.
    pub part_size: usize,
}

impl Default for NpyCodec {
    fn default() -> Self {
        NpyCodec {
            stream_threshold: DEFAULT_STREAM_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
        }
    }
}

dj_core::submit_codec!(NAME, || Arc::new(NpyCodec::default()));

/// Check that the bytes seen equal the bytes announced; otherwise end the upload with an error, so
/// a writer that stops early can never leave a short file behind.
fn length_guard(seen: u64, total: u64, path: &StorePath) -> Result<()> {
    if seen == total {
        Ok(())
    } else {
        Err(Error::codec(
            NAME,
            format!("writing `{path}` stopped after {seen} of {total} bytes"),
        ))
    }
}

impl NpyCodec {
    /// Write a `.npy` file for `header` with data from `source` and return its BLAKE3 checksum.
    async fn write_file(
        &self,
        store: &Arc<dyn Store>,
        path: &StorePath,
        header: &NpyHeader,
        source: Source,
    ) -> Result<String> {
        let head = Bytes::from(header.to_bytes());
        let data_len = header.data_len()?;
        let total = head.len() as u64 + data_len;
        let runtime = tokio::runtime::Handle::try_current().is_ok();

        if data_len <= self.stream_threshold || !runtime {
            let capacity = usize::try_from(total).unwrap_or(0);
            let build = move || {
                let mut buf = Vec::with_capacity(capacity);
                buf.extend_from_slice(&head);
                source.write(usize::MAX, &mut |chunk| {
                    buf.extend_from_slice(&chunk);
                    true
                });
                let checksum = dj_layout::hash_blake3_base32(&buf);
                (Bytes::from(buf), checksum)
            };
            let (bytes, checksum) =
                run_blocking(capacity > BLOCKING_THRESHOLD, NAME, "encoding task", build).await?;
            length_guard(bytes.len() as u64, total, path)?;
            store.put(path, bytes).await?;
            return Ok(checksum);
        }

        let part_size = self
            .part_size
            .max(store.capabilities().min_part_size)
            .max(1);
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
        let producer = tokio::task::spawn_blocking(move || {
            let mut hasher = ContentHasher::new(HashAlgorithm::Blake3);
            hasher.update(&head);
            if tx.blocking_send(head).is_err() {
                return None;
            }
            let mut open = true;
            source.write(part_size, &mut |chunk| {
                hasher.update(&chunk);
                open = tx.blocking_send(chunk).is_ok();
                open
            });
            open.then(|| hasher.finalize())
        });
        let guard_path = path.clone();
        let chunks = futures::stream::unfold((rx, 0u64, false), move |(mut rx, seen, done)| {
            let guard_path = guard_path.clone();
            async move {
                if done {
                    return None;
                }
                match rx.recv().await {
                    Some(chunk) => {
                        let seen = seen + chunk.len() as u64;
                        Some((Ok(chunk), (rx, seen, false)))
                    }
                    None => match length_guard(seen, total, &guard_path) {
                        Ok(()) => None,
                        Err(e) => Some((Err(e), (rx, seen, true))),
                    },
                }
            }
        })
        .boxed();
        let put = store.put_stream(path, chunks, part_size).await;
        let checksum = producer
            .await
            .map_err(|e| Error::codec_context(NAME, format!("encoding task failed: {e}"), e))?;
        put?;
        checksum.ok_or_else(|| {
            Error::codec(
                NAME,
                format!("writing `{path}` stopped before the end of the array"),
            )
        })
    }
}

#[async_trait]
impl Codec for NpyCodec {
    fn name(&self) -> &str {
        NAME
    }

    fn dtype(&self, is_store: bool) -> Result<TypeSpec> {
        dj_core::codec::store_only_json(NAME, is_store)
    }

    fn validate(&self, value: &Value) -> Result<()> {
        source_of(value).map(|_| ()).map_err(Error::from)
    }

    async fn encode(&self, value: Value, ctx: &CodecContext) -> Result<Value> {
        let (header, source) = source_of(&value)?;
        let (store_name, store) = ctx.store(NAME)?;
        let spec = ctx.stores.spec(&store_name)?;
        let (path, _token) = StoreLayout::from(spec).new_schema_path(
            &ctx.schema,
            &ctx.table,
            &ctx.field,
            ctx.key.iter(),
            Some(".npy"),
        )?;
        let checksum = self.write_file(&store, &path, &header, source).await?;
        tracing::debug!(store = %store_name, path = %path, dtype = %header.dtype,
            shape = ?header.shape, "npy array stored");
        let meta = NpyMetadata {
            path: path.as_str().to_string(),
            store: Some(store_name),
            dtype: header.dtype,
            byte_order: ByteOrder::Little,
            shape: header.shape,
            checksum: Some(checksum),
        };
        Ok(Value::Json(meta.to_json()))
    }

    async fn decode(&self, stored: Value, ctx: &CodecContext) -> Result<Value> {
        let meta = NpyMetadata::from_stored(&stored)?;
        let Some(store_name) = meta.store.clone().or_else(|| ctx.store.clone()) else {
            return Err(Error::codec(
                NAME,
                format!("stored metadata for `{}` names no store", meta.path),
            ));
        };
        let store = ctx.stores.get(&store_name)?;
        Ok(Value::domain(NpyRef::new(meta, store)))
    }

    fn referenced_paths(&self, stored: &Value) -> Vec<StoredRef> {
        dj_core::codec::default_referenced_paths(stored)
    }
}
