//! The crate's one error type.

use crate::NAME;
use crate::dtype::DType;

/// Everything that can be wrong with a `.npy` file, an array handed to `<npy@>`, or the metadata
/// stored for one.
///
/// Converts into [`dj_core::Error`]: problems with a stored object ([`NpyError::InObject`]) become
/// [`dj_core::Error::Integrity`] (for damaged or mismatched files) or
/// [`dj_core::Error::Codec`] naming the store and path; everything else becomes an
/// [`dj_core::Error::Codec`] for `<npy>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NpyError {
    /// The bytes do not start with the `.npy` magic string `\x93NUMPY`.
    #[error(
        "not a .npy file: it does not start with the magic string `\\x93NUMPY` (found {found:?})"
    )]
    BadMagic {
        /// The first bytes found (at most 8).
        found: Vec<u8>,
    },

    /// The bytes are a Python pickle, which is never loaded.
    #[error(
        "the data is a Python pickle, not a .npy array; pickles are refused because loading one \
         can run arbitrary code"
    )]
    Pickle,

    /// The header names a format version this crate does not read.
    #[error("unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)")]
    UnsupportedVersion {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },

    /// The data ends before something it announces.
    #[error(
        "truncated .npy data: the {what} needs {needed} bytes but only {available} are present"
    )]
    Truncated {
        /// What was being read (`header`, `array data`, …).
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        available: u64,
    },

    /// The header's length field exceeds [`MAX_HEADER_LEN`](crate::MAX_HEADER_LEN).
    #[error("the .npy header claims {len} bytes, more than the {max} allowed")]
    HeaderTooLarge {
        /// The claimed header length.
        len: u64,
        /// The limit.
        max: u64,
    },

    /// The header dictionary could not be parsed or lacks the required keys.
    #[error("malformed .npy header: {message}")]
    BadHeader {
        /// What is wrong.
        message: String,
    },

    /// The header describes an array of Python objects (`descr` `|O`), stored as a pickle.
    #[error(
        "object arrays (dtype descr `{descr}`) are refused: their data is a Python pickle; \
         store a numeric array instead"
    )]
    ObjectDtype {
        /// The descr as written.
        descr: String,
    },

    /// A dtype outside the supported set (bool, int8–int64, uint8–uint64, float32, float64,
    /// complex64, complex128).
    #[error(
        "unsupported dtype `{descr}`; <npy@> supports bool, int8, int16, int32, int64, uint8, \
         uint16, uint32, uint64, float32, float64, complex64 and complex128"
    )]
    UnsupportedDtype {
        /// The descr or dtype name as written.
        descr: String,
    },

    /// The shape's element or byte count does not fit in memory addresses.
    #[error("array shape {shape:?} is too large: its byte size overflows")]
    ShapeOverflow {
        /// The shape.
        shape: Vec<u64>,
    },

    /// The data is not as long as shape × item size says.
    #[error("array data is {actual} bytes, but shape and dtype say {expected}")]
    DataLength {
        /// Bytes expected.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },

    /// An array was requested as a different element type than it holds.
    #[error("the array holds {stored}, not {requested}; load it as {stored}")]
    TypeMismatch {
        /// The element type asked for.
        requested: DType,
        /// The element type stored.
        stored: DType,
    },

    /// The file's header disagrees with the stored metadata.
    #[error("the file's header says {field} is {file}, but the stored metadata says {metadata}")]
    MetadataMismatch {
        /// `dtype` or `shape`.
        field: &'static str,
        /// What the metadata records.
        metadata: String,
        /// What the file's header says.
        file: String,
    },

    /// The stored metadata is not usable.
    #[error("stored <npy> metadata is invalid: {message}")]
    BadMetadata {
        /// What is wrong.
        message: String,
    },

    /// The file's checksum differs from the one recorded at write time.
    #[error("BLAKE3 checksum is {actual}, but {expected} was recorded at write time")]
    Checksum {
        /// The recorded checksum.
        expected: String,
        /// The checksum of the bytes read.
        actual: String,
    },

    /// A row range outside the array, or rows of a 0-d array.
    #[error("{message}")]
    BadRange {
        /// What is wrong.
        message: String,
    },

    /// A value `<npy@>` cannot store.
    #[error("{message}")]
    BadValue {
        /// What is wrong.
        message: String,
    },

    /// A problem with one stored object, naming it.
    #[error("`{path}` in store `{store}`: {source}")]
    InObject {
        /// The store name.
        store: String,
        /// The object's key.
        path: String,
        /// The problem.
        #[source]
        source: Box<NpyError>,
    },
}

impl NpyError {
    /// Attach the store and path of the object this error is about.
    pub fn in_object(self, store: impl Into<String>, path: impl Into<String>) -> NpyError {
        match self {
            e @ NpyError::InObject { .. } => e,
            other => NpyError::InObject {
                store: store.into(),
                path: path.into(),
                source: Box::new(other),
            },
        }
    }

    /// Whether this says stored bytes are damaged or disagree with their metadata.
    fn is_integrity(&self) -> bool {
        matches!(
            self,
            NpyError::Truncated { .. }
                | NpyError::DataLength { .. }
                | NpyError::MetadataMismatch { .. }
                | NpyError::Checksum { .. }
        )
    }
}

impl From<NpyError> for dj_core::Error {
    fn from(e: NpyError) -> Self {
        match e {
            NpyError::InObject {
                store,
                path,
                source,
            } if source.is_integrity() => dj_core::Error::Integrity {
                store,
                path,
                message: source.to_string(),
            },
            other => dj_core::Error::codec_source(NAME, other),
        }
    }
}
