//! # dj-codec-blob: DataJoint's blob format
//!
//! `<blob>` is the codec most values go through: numeric arrays, MATLAB structs and cells, and
//! Python-style scalars and containers, serialized in DataJoint's blob format so that DataJoint
//! Python (and MATLAB's mYm) read what dj-rs writes and the other way round. In the table the
//! column holds the blob bytes; `<blob@>` chains into `<hash@>`, content-addressed in a store.
//!
//! The format (see `docs/blob-format.md`): a `mYm\0` or `dj0\0` header and one item, optionally
//! wrapped as `ZL123\0` + the u64 uncompressed length + a zlib stream. Decoding checks every
//! length and reports the byte offset of anything malformed; it never panics and never trusts a
//! declared size for an allocation. Numeric arrays are copied as whole buffers, never element by
//! element.
//!
//! ```
//! use dj_codec_blob::{decode, encode_with, Array, Compression, EncodeOptions, Item};
//!
//! // [[1., 2.], [3., 4.]] in Fortran order: 1, 3, 2, 4.
//! let item = Item::Array(Array::new(vec![2, 2], dj_codec_blob::ArrayData::F64(vec![1., 3., 2., 4.]))?);
//! let blob = encode_with(&item, EncodeOptions { compression: Compression::Compat })?;
//! assert_eq!(&blob[..4], b"mYm\0");
//! assert_eq!(decode(&blob)?, item);
//!
//! // Python scalars and containers make the blob `dj0`.
//! let dict = Item::Dict(vec![(Item::from("channels"), Item::from(32_i64))]);
//! assert_eq!(&dj_codec_blob::encode(&dict)?[..4], b"dj0\0");
//! # Ok::<(), dj_codec_blob::BlobError>(())
//! ```

mod codec;
mod compressibility;
mod convert;
mod decode;
mod encode;
mod item;
#[cfg(feature = "ndarray")]
mod ndarray_conv;
mod pages;
#[cfg(feature = "serde")]
mod serde_conv;
#[cfg(feature = "serde")]
pub use serde_conv::{from_item, to_item};

pub use codec::{BlobCodec, NAME};
pub use decode::{DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE, DecodeOptions, decode, decode_with};
pub use encode::{Compression, EncodeOptions, encode, encode_into, encode_with, is_classic};
pub use item::{
    Array, ArrayData, CellArray, DATETIME64_UNITS, Item, MAX_DEPTH, PyInt, RecordArray,
    StructArray, Temporal, element_count,
};

/// What can go wrong reading or writing a blob. Offsets count bytes from the start of the blob.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobError {
    /// The blob does not start with `mYm\0`, `dj0\0` or `ZL123\0`.
    #[error("unknown blob header {found:02x?}: expected `mYm\\0`, `dj0\\0` or `ZL123\\0`")]
    UnknownHeader {
        /// The first bytes.
        found: Vec<u8>,
    },
    /// The input ends before an expected field.
    #[error(
        "truncated blob at byte {offset}: expected {expected} ({needed} bytes), {available} left"
    )]
    Truncated {
        /// Where the field starts.
        offset: usize,
        /// What was expected.
        expected: &'static str,
        /// How many bytes it needs.
        needed: u64,
        /// How many remain.
        available: u64,
    },
    /// An item code that the format does not define.
    #[error("unknown item code 0x{code:02x} at byte {offset}")]
    UnknownCode {
        /// Where.
        offset: usize,
        /// The code.
        code: u8,
    },
    /// A length prefix disagrees with the item it announces.
    #[error("item length mismatch at byte {offset}: declared {declared} bytes, item used {actual}")]
    LengthMismatch {
        /// Where the length prefix is.
        offset: usize,
        /// The declared length.
        declared: u64,
        /// The bytes the item used.
        actual: u64,
    },
    /// Bytes remain after the top-level item.
    #[error("{remaining} trailing bytes after the blob's item, at byte {offset}")]
    TrailingBytes {
        /// Where the extra bytes start.
        offset: usize,
        /// How many.
        remaining: usize,
    },
    /// The inflated size differs from the `ZL123` header.
    #[error("compressed blob inflates to {actual} bytes, header says {expected}")]
    SizeMismatch {
        /// From the header.
        expected: u64,
        /// After inflating.
        actual: u64,
    },
    /// A `ZL123` header announces more than the decompressed-size limit allows.
    #[error(
        "compressed blob would inflate to {declared} bytes, over the limit of {limit} bytes \
         (configuration key `blob_max_decompressed_size`)"
    )]
    TooLarge {
        /// The uncompressed length the header states.
        declared: u64,
        /// The limit in force.
        limit: u64,
    },
    /// zlib failed.
    #[error("zlib: {message}")]
    Zlib {
        /// zlib's message.
        message: String,
    },
    /// Well-formed but not supported (MATLAB sparse arrays, unknown array classes).
    #[error("unsupported at byte {offset}: {what}")]
    Unsupported {
        /// Where.
        offset: usize,
        /// What.
        what: String,
    },
    /// Malformed content (bad UTF-8, overflowing shapes, too deep nesting).
    #[error("malformed blob at byte {offset}: {message}")]
    Malformed {
        /// Where.
        offset: usize,
        /// What.
        message: String,
    },
    /// A value that cannot be written, or converted to the requested Rust type.
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
}

impl From<BlobError> for dj_core::Error {
    fn from(e: BlobError) -> Self {
        dj_core::Error::codec_source(NAME, e)
    }
}
