//! # dj-codec-object: path-addressed files and folders
//!
//! The `<object@>` codec keeps a file or a whole folder at a readable path in an object store and
//! only JSON metadata in the table, as DataJoint 2.x does. It is the type for data too large to
//! hold in memory: Zarr and HDF5 files, videos, folders of recordings.
//!
//! ```text
//! {schema_prefix}/[partition/]{schema}/{table}/{pk=value…}/{field}_{token}{ext}
//! {"path": "_schema/lab/rec/rec_id=1/raw_ZkRa_cGg.bin", "store": "main", "size": 5,
//!  "ext": ".bin", "is_dir": false, "item_count": null,
//!  "timestamp": "2026-11-23T22:05:46.367583+00:00", "checksum": "…"}
//! ```
//!
//! A fresh random token is drawn on every write, so a rewrite lands at a new path and never
//! clobbers what an earlier row points to. dj-rs also records a BLAKE3 `checksum` (of the file, or
//! of a folder's manifest, whose entries carry per-file checksums); DataJoint ignores the extra key
//! and [`ObjectRef::verify`] checks it.
//!
//! **Inputs** ([`ObjectInput`]): bytes (no extension), bytes with an extension, a local file
//! (its suffix becomes `ext`), a local folder (copied with a `{path}.manifest.json` sidecar), or an
//! async reader of unknown length, streamed in multipart parts. A plain [`Value::Bytes`] and a
//! [`Value::String`] naming a local file or folder work too, as in DataJoint, and a JSON metadata
//! document passes through unchanged (that is how staged inserts hand over what they wrote).
//! Nothing is visible at the final path until an upload completes; a folder whose upload fails
//! half-way is removed again.
//!
//! **Fetch** returns an [`ObjectRef`] without any I/O.
//!
//! ```
//! use std::sync::Arc;
//! use dj_core::codec::{CodecContext, ResolvedType};
//! use dj_core::config::{Config, StoreSpec};
//! use dj_object::ObjectRef;
//! use dj_core::registry::Registry;
//! use dj_core::value::Value;
//! use dj_codec_object::ObjectInput;
//! # use dj_store_memory as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! let mut config = Config::default();
//! config.stores.specs.insert("main".into(), StoreSpec::new("main", "memory", ""));
//! let config = Arc::new(config);
//! let mut cx = CodecContext::for_tests(Arc::clone(&config));
//! (cx.schema, cx.table, cx.field) = ("lab".into(), "rec".into(), "raw".into());
//! cx.key.insert("rec_id".into(), Value::Int(1));
//!
//! let ty = ResolvedType::resolve(&"<object@main>".parse()?, Registry::global(), &config)?;
//! let stored = ty.encode(ObjectInput::bytes_with_ext(".txt", "hello").into(), &cx).await?;
//! let path = stored.as_json().unwrap()["path"].as_str().unwrap().to_string();
//! assert!(path.starts_with("_schema/lab/rec/rec_id=1/raw_") && path.ends_with(".txt"));
//!
//! let fetched = ty.decode(stored, &cx).await?;
//! let obj = fetched.as_domain::<ObjectRef>().unwrap();
//! assert_eq!(obj.size(), Some(5));
//! assert_eq!(&obj.read().await?[..], b"hello");
//! # Ok(()) }
//! ```

#[cfg(feature = "zarr")]
pub mod zarr;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use dj_core::codec::{Codec, CodecContext};
use dj_core::error::{Error, Result};
use dj_core::store::{Store, StorePath};
use dj_core::typespec::TypeSpec;
use dj_core::value::Value;
use dj_layout::StoreLayout;
use dj_object::{self as object, ObjectMetadata, ObjectRef, ObjectWriter};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The codec name.
pub const NAME: &str = "object";

/// The `<object@>` codec. Stateless; the crate registers it at link time.
#[derive(Debug, Default, Clone, Copy)]
pub struct ObjectCodec;

dj_core::submit_codec!(NAME, || Arc::new(ObjectCodec));

/// A boxed async reader, as [`ObjectInput::reader`] takes it.
pub type BoxReader = Box<dyn AsyncRead + Send + Unpin>;

/// What `<object@>` accepts on insert. Convert into a [`Value`] with `.into()`.
pub enum ObjectInput {
    /// Bytes in memory, with an optional extension (`.txt` or `txt`).
    Bytes {
        /// The extension.
        ext: Option<String>,
        /// The content.
        data: Bytes,
    },
    /// A local file, streamed; its suffix becomes the extension.
    File(PathBuf),
    /// A local folder, copied file by file with a manifest.
    Folder(PathBuf),
    /// A reader of unknown length, streamed in multipart parts. It is taken by the first encode.
    Reader {
        /// The extension.
        ext: Option<String>,
        /// The reader.
        reader: Mutex<Option<BoxReader>>,
    },
}

impl fmt::Debug for ObjectInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectInput::Bytes { ext, data } => f
                .debug_struct("Bytes")
                .field("ext", ext)
                .field("len", &data.len())
                .finish(),
            ObjectInput::File(p) => f.debug_tuple("File").field(p).finish(),
            ObjectInput::Folder(p) => f.debug_tuple("Folder").field(p).finish(),
            ObjectInput::Reader { ext, .. } => f
                .debug_struct("Reader")
                .field("ext", ext)
                .finish_non_exhaustive(),
        }
    }
}

impl ObjectInput {
    /// Bytes with no extension.
    pub fn bytes(data: impl Into<Bytes>) -> Self {
        ObjectInput::Bytes {
            ext: None,
            data: data.into(),
        }
    }

    /// Bytes with an extension, like DataJoint's `(ext, bytes)` tuple.
    pub fn bytes_with_ext(ext: &str, data: impl Into<Bytes>) -> Self {
        ObjectInput::Bytes {
            ext: Some(ext.to_string()),
            data: data.into(),
        }
    }

    /// A local file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        ObjectInput::File(path.into())
    }

    /// A local folder.
    pub fn folder(path: impl Into<PathBuf>) -> Self {
        ObjectInput::Folder(path.into())
    }

    /// An async reader of unknown length.
    pub fn reader(ext: Option<&str>, reader: impl AsyncRead + Send + Unpin + 'static) -> Self {
        ObjectInput::Reader {
            ext: ext.map(str::to_string),
            reader: Mutex::new(Some(Box::new(reader))),
        }
    }
}

impl From<ObjectInput> for Value {
    fn from(input: ObjectInput) -> Value {
        Value::domain(input)
    }
}

/// `ext` normalised by `dj_layout::normalize_ext`, refused when too long or when it holds a
/// path separator.
fn normalize_ext(ext: Option<&str>) -> Result<Option<String>> {
    let Some(ext) = dj_layout::normalize_ext(ext) else {
        return Ok(None);
    };
    if ext.len() > 32 {
        return Err(Error::codec(
            NAME,
            format!("extension `{ext}` is longer than 32 characters"),
        ));
    }
    if ext.contains(['/', '\\', '\0']) {
        return Err(Error::codec(
            NAME,
            format!("extension `{ext}` must not contain a path separator or NUL"),
        ));
    }
    Ok(Some(ext))
}

/// Python's `Path(p).suffix`: the last `.xyz` of the file name, unless the name starts with it.
fn suffix_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let dot = name.rfind('.')?;
    if dot == 0 || dot + 1 == name.len() {
        return None;
    }
    Some(name[dot..].to_string())
}

fn target(ctx: &CodecContext, ext: Option<&str>) -> Result<(Arc<dyn Store>, StorePath)> {
    let (name, store) = ctx.store(NAME)?;
    let spec = ctx.stores.spec(&name)?;
    if ctx.schema.is_empty() || ctx.table.is_empty() || ctx.field.is_empty() {
        return Err(Error::codec(
            NAME,
            "<object@> needs the schema, table and attribute to build its path",
        ));
    }
    let (key, _token) = StoreLayout::from(spec).new_schema_path(
        &ctx.schema,
        &ctx.table,
        &ctx.field,
        ctx.key.iter().map(|(k, v)| (k.as_str(), v)),
        ext,
    )?;
    Ok((store, key))
}

async fn local_kind(path: &Path) -> Result<bool> {
    let meta = tokio::fs::metadata(path).await.map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    Ok(meta.is_dir())
}

async fn write_reader(
    store: Arc<dyn Store>,
    key: StorePath,
    mut reader: BoxReader,
    ext: Option<String>,
) -> Result<ObjectMetadata> {
    let mut w = ObjectWriter::new(store, key);
    let mut buf = vec![0u8; 1024 * 1024];
    let copied: Result<()> = async {
        loop {
            let n = reader.read(&mut buf).await.map_err(|e| Error::Io {
                path: format!("<reader for {}>", w.key()),
                source: e,
            })?;
            if n == 0 {
                return Ok(());
            }
            w.write(&buf[..n]).await?;
        }
    }
    .await;
    match copied {
        Ok(()) => w.finish(ext).await,
        Err(e) => {
            let _ = w.abort().await;
            Err(e)
        }
    }
}

async fn write_file(
    store: Arc<dyn Store>,
    key: StorePath,
    local: &Path,
    ext: Option<String>,
) -> Result<ObjectMetadata> {
    let name = store.name().to_string();
    let written = object::upload_file(store, key, local).await?;
    Ok(written.into_metadata(&name, ext))
}

#[async_trait]
impl Codec for ObjectCodec {
    fn name(&self) -> &str {
        NAME
    }

    fn dtype(&self, is_store: bool) -> Result<TypeSpec> {
        dj_core::codec::store_only_json(NAME, is_store)
    }

    fn validate(&self, value: &Value) -> Result<()> {
        match value {
            Value::Bytes(_) | Value::String(_) => Ok(()),
            Value::Json(j) => ObjectMetadata::from_json(j, NAME).map(|_| ()),
            Value::Domain(d) if d.is::<ObjectInput>() => Ok(()),
            other => Err(Error::codec(
                NAME,
                format!(
                    "<object@> takes bytes, a local file or folder path, an ObjectInput or object metadata, not {}",
                    other.kind()
                ),
            )),
        }
    }

    async fn encode(&self, value: Value, ctx: &CodecContext) -> Result<Value> {
        let meta = match value {
            // Metadata of an object already written (a staged insert): pass it through.
            Value::Json(j) => {
                ObjectMetadata::from_json(&j, NAME)?;
                return Ok(Value::Json(j));
            }
            Value::Bytes(data) => {
                let (store, key) = target(ctx, None)?;
                let mut w = ObjectWriter::new(store, key);
                w.write(&data).await?;
                w.finish(None).await?
            }
            Value::String(p) => encode_path(ctx, Path::new(&p), None).await?,
            Value::Domain(d) => {
                let Some(input) = d.downcast_ref::<ObjectInput>() else {
                    return Err(Error::codec(
                        NAME,
                        format!("<object@> cannot store `{}`", d.type_name()),
                    ));
                };
                match input {
                    ObjectInput::Bytes { ext, data } => {
                        let ext = normalize_ext(ext.as_deref())?;
                        let (store, key) = target(ctx, ext.as_deref())?;
                        let mut w = ObjectWriter::new(store, key);
                        w.write(data).await?;
                        w.finish(ext).await?
                    }
                    ObjectInput::File(p) => encode_path(ctx, p, Some(false)).await?,
                    ObjectInput::Folder(p) => encode_path(ctx, p, Some(true)).await?,
                    ObjectInput::Reader { ext, reader } => {
                        let ext = normalize_ext(ext.as_deref())?;
                        let taken = reader.lock().unwrap_or_else(|e| e.into_inner()).take();
                        let Some(reader) = taken else {
                            return Err(Error::codec(
                                NAME,
                                "this reader was already consumed by an earlier insert",
                            ));
                        };
                        let (store, key) = target(ctx, ext.as_deref())?;
                        write_reader(store, key, reader, ext).await?
                    }
                }
            }
            other => {
                return Err(Error::codec(
                    NAME,
                    format!("<object@> cannot store {}", other.kind()),
                ));
            }
        };
        Ok(Value::Json(meta.to_json()))
    }

    async fn decode(&self, stored: Value, ctx: &CodecContext) -> Result<Value> {
        let obj = ObjectRef::from_stored(&stored, &ctx.stores, ctx.store.as_deref(), NAME)?;
        Ok(Value::domain(obj))
    }
}

/// Encode a local path; `want_dir` says what the caller asked for (`None`: whatever it is).
async fn encode_path(
    ctx: &CodecContext,
    path: &Path,
    want_dir: Option<bool>,
) -> Result<ObjectMetadata> {
    let is_dir = local_kind(path).await?;
    match (want_dir, is_dir) {
        (Some(false), true) => {
            return Err(Error::codec(
                NAME,
                format!("{} is a folder; use ObjectInput::folder", path.display()),
            ));
        }
        (Some(true), false) => {
            return Err(Error::codec(
                NAME,
                format!("{} is a file; use ObjectInput::file", path.display()),
            ));
        }
        _ => {}
    }
    if is_dir {
        let (store, key) = target(ctx, None)?;
        object::upload_dir(store, key, path, None, ctx.config.transfer_concurrency).await
    } else {
        let ext = suffix_of(path);
        let (store, key) = target(ctx, ext.as_deref())?;
        write_file(store, key, path, ext).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(normalize_ext(Some("txt")).unwrap().as_deref(), Some(".txt"));
        assert_eq!(
            normalize_ext(Some(".zarr")).unwrap().as_deref(),
            Some(".zarr")
        );
        assert_eq!(normalize_ext(Some("")).unwrap(), None);
        assert!(normalize_ext(Some("a/b")).is_err());
        assert_eq!(suffix_of(Path::new("/x/a.tar.gz")).as_deref(), Some(".gz"));
        assert_eq!(suffix_of(Path::new("/x/.hidden")), None);
        assert_eq!(suffix_of(Path::new("/x/noext")), None);
    }
}
