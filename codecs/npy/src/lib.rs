//! # dj-codec-npy: numeric arrays as `.npy` files with lazy reads
//!
//! The `<npy@>` codec stores an `ndarray` array in an object store as a standard NumPy `.npy`
//! file, byte for byte what `numpy.save(..., allow_pickle=False)` writes, and keeps only its
//! metadata in the table, exactly as DataJoint 2.x does:
//!
//! ```text
//! _schema/lab/recording/rec_id=1/waveform_Xy3_k9Qa.npy
//! {"path": "_schema/lab/recording/rec_id=1/waveform_Xy3_k9Qa.npy", "store": "main",
//!  "dtype": "float64", "shape": [1000, 32], "checksum": "…52 base32 characters…"}
//! ```
//!
//! DataJoint Python reads what this crate writes and the other way round. `checksum`, the BLAKE3
//! of the whole file computed while writing, is a dj-rs addition that DataJoint ignores; rows
//! written by DataJoint have none and are verified by size and header only.
//!
//! Fetching gives an [`NpyRef`] without touching the store: shape and dtype come from the
//! metadata. [`NpyRef::load`] reads the array, [`NpyRef::slice_rows`] reads only some rows with a
//! ranged get, and [`NpyRef::verify`] checks the file. Large arrays are converted on the blocking
//! thread pool and streamed to the store in multipart parts.
//!
//! Supported dtypes: `bool`, `int8`–`int64`, `uint8`–`uint64`, `float32`, `float64`,
//! `complex64`, `complex128` ([`DType`], [`NpyElement`]), little- or big-endian, C or Fortran
//! order, `.npy` format versions 1.0, 2.0 and 3.0. Object arrays and pickles are refused. The
//! format itself is usable on its own through [`NpyArray`], [`NpyHeader`] and [`parse_header`].
//!
//! ```
//! use std::sync::Arc;
//! use dj_codec_npy::NpyRef;
//! use dj_core::codec::{CodecContext, ResolvedType};
//! use dj_core::config::{Config, StoreSpec};
//! use dj_core::registry::Registry;
//! use dj_core::value::Value;
//! use ndarray::array;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! # use dj_store_memory as _;
//! let mut config = Config::default();
//! config.stores.specs.insert("main".into(), StoreSpec::new("main", "memory", ""));
//! let config = Arc::new(config);
//! let mut cx = CodecContext::for_tests(Arc::clone(&config));
//! (cx.schema, cx.table, cx.field) = ("lab".into(), "recording".into(), "waveform".into());
//! cx.key.insert("rec_id".into(), Value::Int(1));
//!
//! let ty = ResolvedType::resolve(&"<npy@main>".parse()?, Registry::global(), &config)?;
//! let waveform = array![[1.0, 2.0], [3.0, 4.0]].into_dyn();
//! let stored = ty.encode(Value::domain(waveform.clone()), &cx).await?;
//! let meta = stored.as_json().unwrap();
//! assert!(meta["path"].as_str().unwrap().starts_with("_schema/lab/recording/rec_id=1/waveform_"));
//! assert_eq!((&meta["dtype"], &meta["shape"]), (&"float64".into(), &serde_json::json!([2, 2])));
//!
//! let fetched = ty.decode(stored, &cx).await?;
//! let npy: &NpyRef = fetched.as_domain().unwrap();
//! assert_eq!(npy.shape(), &[2, 2]);
//! assert_eq!(npy.load::<f64>().await?, waveform);
//! assert_eq!(npy.slice_rows::<f64>(1..2).await?, array![[3.0, 4.0]].into_dyn());
//! npy.verify().await?;
//! # Ok(()) }
//! ```

mod array;
mod codec;
mod dtype;
mod error;
mod header;
mod metadata;
mod npyref;

pub use array::NpyArray;
pub use codec::{DEFAULT_PART_SIZE, DEFAULT_STREAM_THRESHOLD, NpyCodec};
pub use dtype::{ALL_DTYPES, ByteOrder, DType, NpyElement};
pub use error::NpyError;
pub use header::{
    ARRAY_ALIGN, MAGIC, MAX_HEADER_LEN, MAX_NDIM, NpyHeader, NpyVersion, ParsedHeader, header_len,
    parse_header,
};
pub use metadata::NpyMetadata;
pub use npyref::NpyRef;

/// Re-exported so users can name complex element types without another dependency.
pub use num_complex::Complex;

/// The codec name.
pub const NAME: &str = "npy";
