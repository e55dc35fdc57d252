//! The JSON kept in the table for an `<npy@>` value.

use dj_core::config::HashAlgorithm;
use dj_core::value::Value;
use dj_layout::hash_algorithm_of;
use serde_json::{Map, json};

use crate::dtype::{ByteOrder, DType};
use crate::error::NpyError;
use crate::header::NpyHeader;

/// Metadata of a stored `.npy` file, as kept in the table.
///
/// DataJoint writes `{"path", "store", "dtype", "shape"}`, with `dtype` as numpy's
/// `str(arr.dtype)` (`float64`; `>f8` for big-endian data). dj-rs adds `checksum`, the BLAKE3 of
/// the whole file in lowercase base32 (52 characters); DataJoint ignores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyMetadata {
    /// The file's key in the store.
    pub path: String,
    /// The store's name, when recorded.
    pub store: Option<String>,
    /// The element type.
    pub dtype: DType,
    /// The byte order the `dtype` text names (native when it gives a plain name).
    pub byte_order: ByteOrder,
    /// The shape.
    pub shape: Vec<usize>,
    /// BLAKE3 of the file, lowercase base32, when recorded (dj-rs writes it; DataJoint does not).
    pub checksum: Option<String>,
}

impl NpyMetadata {
    /// The JSON stored in the table, keys in DataJoint's order (`path`, `store`, `dtype`,
    /// `shape`), then `checksum` when known.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = Map::new();
        m.insert("path".into(), json!(self.path));
        m.insert("store".into(), json!(self.store));
        m.insert("dtype".into(), json!(self.dtype.numpy_str(self.byte_order)));
        m.insert("shape".into(), json!(self.shape));
        if let Some(c) = &self.checksum {
            m.insert("checksum".into(), json!(c));
        }
        serde_json::Value::Object(m)
    }

    /// Read metadata from a stored value: a JSON document, or JSON text as some databases return
    /// it. A `store` of `null` or `""` counts as not recorded.
    pub fn from_stored(stored: &Value) -> Result<NpyMetadata, NpyError> {
        let json = stored
            .stored_json()
            .map_err(|message| NpyError::BadMetadata { message })?;
        NpyMetadata::from_json(&json)
    }

    /// Read metadata from its JSON document.
    pub fn from_json(json: &serde_json::Value) -> Result<NpyMetadata, NpyError> {
        let bad = |message: String| NpyError::BadMetadata { message };
        let text = |k: &str| -> Result<&str, NpyError> {
            json.get(k)
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| bad(format!("it lacks a string `{k}`: {json}")))
        };
        let path = text("path")?.to_string();
        let (dtype, byte_order) = DType::parse_with_order(text("dtype")?)?;
        let shape = json
            .get("shape")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| bad(format!("it lacks a `shape` list: {json}")))?
            .iter()
            .map(|d| {
                d.as_u64()
                    .and_then(|d| usize::try_from(d).ok())
                    .ok_or_else(|| bad(format!("`shape` holds {d}, not a dimension")))
            })
            .collect::<Result<Vec<usize>, NpyError>>()?;
        let store = json
            .get("store")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let checksum = match json.get("checksum") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(c))
                if hash_algorithm_of(c) == Some(HashAlgorithm::Blake3) =>
            {
                Some(c.clone())
            }
            Some(other) => {
                return Err(bad(format!(
                    "`checksum` {other} is not a BLAKE3 hash in lowercase base32"
                )));
            }
        };
        Ok(NpyMetadata {
            path,
            store,
            dtype,
            byte_order,
            shape,
            checksum,
        })
    }

    /// Check that a file's header describes the array this metadata records (dtype and shape).
    pub fn check_header(&self, header: &NpyHeader) -> Result<(), NpyError> {
        if header.dtype != self.dtype {
            return Err(NpyError::MetadataMismatch {
                field: "dtype",
                metadata: self.dtype.numpy_str(self.byte_order),
                file: header.dtype.numpy_str(header.byte_order),
            });
        }
        if header.shape != self.shape {
            return Err(NpyError::MetadataMismatch {
                field: "shape",
                metadata: format!("{:?}", self.shape),
                file: format!("{:?}", header.shape),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_in_datajoints_key_order() {
        let m = NpyMetadata {
            path: "_schema/s/t/id=1/arr_abcdEFGH.npy".into(),
            store: Some("main".into()),
            dtype: DType::Float64,
            byte_order: ByteOrder::Little,
            shape: vec![2, 2],
            checksum: None,
        };
        let j = m.to_json();
        assert_eq!(
            j.to_string(),
            r#"{"path":"_schema/s/t/id=1/arr_abcdEFGH.npy","store":"main","dtype":"float64","shape":[2,2]}"#
        );
        assert_eq!(NpyMetadata::from_json(&j).unwrap(), m);
        assert_eq!(
            NpyMetadata::from_stored(&Value::String(j.to_string())).unwrap(),
            m
        );
    }

    #[test]
    fn python_variants_and_bad_metadata() {
        let j = json!({"path": "p.npy", "dtype": ">i2", "shape": [], "store": ""});
        let m = NpyMetadata::from_json(&j).unwrap();
        assert_eq!(
            (m.dtype, m.byte_order, m.store.clone()),
            (DType::Int16, ByteOrder::Big, None)
        );
        assert_eq!(m.to_json()["dtype"], ">i2");
        for bad in [
            json!({"dtype": "float64", "shape": [1]}),
            json!({"path": "p", "dtype": "object", "shape": [1]}),
            json!({"path": "p", "dtype": "float64", "shape": [-1]}),
            json!({"path": "p", "dtype": "float64"}),
            json!({"path": "p", "dtype": "float64", "shape": [1], "checksum": "xyz"}),
        ] {
            assert!(NpyMetadata::from_json(&bad).is_err(), "{bad}");
        }
        assert!(NpyMetadata::from_stored(&Value::Int(1)).is_err());
    }
}
