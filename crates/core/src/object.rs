//! The formats of path-addressed objects that codecs, staged inserts and garbage collection share.
//!
//! `<object@>`, `<npy@>` and `<filepath@>` keep a file or a folder at a readable path in a store
//! and only JSON metadata in the table:
//!
//! - [`ObjectMetadata`]: the JSON DataJoint 2.x writes, `{path, store, size, ext, is_dir,
//!   item_count, timestamp}`, plus dj-rs's `checksum` (BLAKE3, lowercase base32), an extra key
//!   DataJoint ignores;
//! - [`Manifest`]: the `{path}.manifest.json` sidecar of a folder object.
//!
//! The machinery that reads and writes such objects (`ObjectRef`, `ObjectWriter`,
//! `FolderWriter`, uploads and downloads, and `WrittenFile`, what a writer reports) is the
//! `dj-object` crate.
//!
//! ```
//! use dj_core::object::ObjectMetadata;
//!
//! let json = serde_json::json!({"path": "_schema/lab/rec/rec_id=1/trace_AbCd1234.bin", "store": "main", "size": 11});
//! let meta = ObjectMetadata::from_json(&json, "object")?;
//! assert_eq!(meta.size, Some(11));
//! assert_eq!(meta.to_json()["path"], json["path"]);
//! # Ok::<(), dj_core::Error>(())
//! ```

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Map;

use crate::error::{Error, Result};
use crate::store::StorePath;
use crate::value::Value;

/// The suffix of a folder object's manifest sidecar.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

// ------------------------------------------------------------------------------------------------
// Metadata
// ------------------------------------------------------------------------------------------------

/// The JSON metadata of a path-addressed object, as stored in the table.
///
/// Serialized (through serde) in DataJoint's key order, `path, store, size, ext, is_dir,
/// item_count, timestamp`, then `hash` and `checksum` when set, then the extra keys. Read
/// leniently, as DataJoint's own and older rows need: only `path` is required; a value of the
/// wrong type reads as absent (an empty `store` too), except a `timestamp` string that is not
/// a time, which is an error.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMetadata {
    /// The key inside the store.
    pub path: String,
    /// The store's name.
    #[serde(default, deserialize_with = "lenient::nonempty_string")]
    pub store: Option<String>,
    /// Size in bytes: of the file, or the sum of a folder's files. `None` when not recorded.
    #[serde(default, deserialize_with = "lenient::count")]
    pub size: Option<u64>,
    /// The file extension with its leading dot, e.g. `.zarr`, `.h5`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub ext: Option<String>,
    /// Whether the object is a folder.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub is_dir: bool,
    /// How many files a folder holds.
    #[serde(default, deserialize_with = "lenient::count")]
    pub item_count: Option<u64>,
    /// When the object was written.
    #[serde(
        default,
        serialize_with = "lenient::serialize_timestamp",
        deserialize_with = "lenient::timestamp"
    )]
    pub timestamp: Option<DateTime<Utc>>,
    /// DataJoint's MD5-base32 `hash` field; its built-in codecs never fill it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::string"
    )]
    pub hash: Option<String>,
    /// BLAKE3 of the file (of the manifest, for folders), lowercase base32. dj-rs only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::string"
    )]
    pub checksum: Option<String>,
    /// Any other keys, kept as they were (codecs such as `<npy@>` add their own). A key that
    /// names one of the fields above is not written.
    #[serde(flatten, serialize_with = "lenient::serialize_extra")]
    pub extra: Map<String, serde_json::Value>,
}

/// The lenient readers of [`ObjectMetadata`]'s fields, and the writers of timestamps (as
/// Python's `isoformat`) and of the extra keys.
mod lenient {
    use chrono::{DateTime, Utc};
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::{Map, Value as Json};

    /// The keys of the named fields, which extra keys never override.
    const FIELDS: &[&str] = &[
        "path",
        "store",
        "size",
        "ext",
        "is_dir",
        "item_count",
        "timestamp",
        "hash",
        "checksum",
    ];

    pub(super) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Json::deserialize(d)? {
            Json::String(s) => Some(s),
            _ => None,
        })
    }

    pub(super) fn nonempty_string<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<String>, D::Error> {
        Ok(string(d)?.filter(|s| !s.is_empty()))
    }

    pub(super) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(Json::deserialize(d)?.as_u64())
    }

    pub(super) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        Ok(Json::deserialize(d)?.as_bool().unwrap_or(false))
    }

    pub(super) fn timestamp<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        match string(d)? {
            None => Ok(None),
            Some(t) => super::parse_timestamp(&t)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("bad timestamp `{t}`"))),
        }
    }

    pub(super) fn serialize_timestamp<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::python_timestamp(t)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn serialize_created<S: Serializer>(
        t: &DateTime<Utc>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::python_timestamp(t))
    }

    pub(super) fn serialize_extra<S: Serializer>(
        extra: &Map<String, Json>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in extra {
            if !FIELDS.contains(&k.as_str()) {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

impl ObjectMetadata {
    /// Metadata for a file or folder at `path`, with nothing else recorded yet.
    pub fn new(path: impl Into<String>, store: Option<String>) -> Self {
        ObjectMetadata {
            path: path.into(),
            store,
            size: None,
            ext: None,
            is_dir: false,
            item_count: None,
            timestamp: None,
            checksum: None,
            hash: None,
            extra: Map::new(),
        }
    }

    /// The JSON document, keys in DataJoint's order (`path, store, size, ext, is_dir,
    /// item_count, timestamp`), then `hash` and `checksum` when set, then any extra keys.
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing strings, numbers and maps into a JSON value cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Read metadata from a stored value: a JSON document, or JSON text as MySQL returns it.
    /// `codec` names the codec in errors.
    pub fn from_stored(stored: &Value, codec: &str) -> Result<ObjectMetadata> {
        let json = stored.stored_json().map_err(|m| Error::codec(codec, m))?;
        Self::from_json(&json, codec)
    }

    /// Read metadata from a JSON document. `path` is required; every other key is optional
    /// (see [`ObjectMetadata`] for how leniently each is read).
    pub fn from_json(json: &serde_json::Value, codec: &str) -> Result<ObjectMetadata> {
        if !json.is_object() {
            return Err(Error::codec(codec, "stored metadata is not a JSON object"));
        }
        ObjectMetadata::deserialize(json)
            .map_err(|e| Error::codec(codec, format!("stored metadata is not valid: {e}")))
    }

    /// The object's key, checked.
    pub fn key(&self) -> Result<StorePath> {
        StorePath::parse(&self.path)
    }
}

/// A timestamp as Python's `datetime.isoformat()` prints an aware UTC time:
/// `2026-11-23T22:05:46.367583+00:00`. (For the object crates; not part of the documented API.)
#[doc(hidden)]
pub fn python_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// The current time as [`python_timestamp`] prints it.
#[doc(hidden)]
pub fn python_timestamp_now() -> String {
    python_timestamp(&Utc::now())
}

fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // Python's isoformat of a naive datetime has no offset; read it as UTC.
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

// ------------------------------------------------------------------------------------------------
// Manifest
// ------------------------------------------------------------------------------------------------

/// One file of a folder object's manifest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ManifestEntry {
    /// The path relative to the folder, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the file, lowercase base32 (dj-rs only; DataJoint ignores it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// The `{path}.manifest.json` sidecar of a folder object, as DataJoint writes it:
/// `{files: [{path, size}], total_size, item_count, created}` (serialized in that key order).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Manifest {
    /// The files, sorted by path.
    pub files: Vec<ManifestEntry>,
    /// Sum of the files' sizes.
    pub total_size: u64,
    /// Number of files.
    pub item_count: u64,
    /// When the folder was written.
    #[serde(serialize_with = "lenient::serialize_created")]
    pub created: DateTime<Utc>,
}

impl Manifest {
    /// A manifest for `files` (sorted here), created now.
    pub fn new(mut files: Vec<ManifestEntry>) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest {
            total_size: files.iter().map(|f| f.size).sum(),
            item_count: files.len() as u64,
            files,
            created: Utc::now(),
        }
    }

    /// The key of the manifest of the folder at `folder`.
    pub fn key_for(folder: &StorePath) -> Result<StorePath> {
        StorePath::parse(format!("{}{MANIFEST_SUFFIX}", folder.as_str()))
    }

    /// The JSON bytes, as written to the store.
    pub fn to_bytes(&self) -> Bytes {
        // Serializing strings, numbers and lists into JSON cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parse manifest bytes; `path` names the manifest in errors.
    pub fn parse(bytes: &[u8], store: &str, path: &str) -> Result<Manifest> {
        let bad = |message: String| Error::Integrity {
            store: store.to_string(),
            path: path.to_string(),
            message,
        };
        let doc: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("manifest is not JSON: {e}")))?;
        let files = doc
            .get("files")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| bad("manifest has no `files` list".into()))?;
        let mut entries = Vec::with_capacity(files.len());
        for f in files {
            let p = f
                .get("path")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| bad("a manifest entry has no `path`".into()))?;
            let size = f
                .get("size")
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| bad(format!("manifest entry `{p}` has no `size`")))?;
            entries.push(ManifestEntry {
                path: p.to_string(),
                size,
                checksum: f
                    .get("checksum")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string),
            });
        }
        let created = doc
            .get("created")
            .and_then(serde_json::Value::as_str)
            .and_then(parse_timestamp)
            .unwrap_or_default();
        Ok(Manifest {
            total_size: doc
                .get("total_size")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or_else(|| entries.iter().map(|e| e.size).sum()),
            item_count: doc
                .get("item_count")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(entries.len() as u64),
            files: entries,
            created,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_timestamps() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(python_timestamp(&t), "2026-01-02T03:04:05.000000+00:00");
        assert_eq!(
            parse_timestamp("2026-01-02T03:04:05.5"),
            Some(t + chrono::Duration::milliseconds(500))
        );
    }
}
