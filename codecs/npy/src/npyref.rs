//! [`NpyRef`]: the lazy handle `<npy@>` returns on fetch.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use dj_core::config::HashAlgorithm;
use dj_core::error::{Error, Result};
use dj_core::store::{Store, StoreExt, StorePath};
use dj_layout::hash_blake3_base32;
use dj_rt::task::{BLOCKING_THRESHOLD, run_blocking};
use ndarray::{ArrayD, Axis, Slice};

use crate::array::{NpyArray, check_data_len, decode_array};
use crate::dtype::{DType, NpyElement};
use crate::error::NpyError;
use crate::header::{ParsedHeader, header_len, parse_header};
use crate::metadata::NpyMetadata;

/// How many bytes a header read fetches first; numpy's headers are 128 bytes, and anything up to
/// this size takes one request.
const HEADER_PROBE: u64 = 4096;

/// A lazy reference to an array stored as a `.npy` file, as `<npy@>` returns it on fetch.
///
/// Shape, dtype, path and store come from the stored metadata, with no I/O. Reading goes through
/// the store: [`load`](Self::load) reads the whole file, [`slice_rows`](Self::slice_rows) only the
/// rows asked for, [`read_header`](Self::read_header) only the header, and
/// [`verify`](Self::verify) checks the file against the metadata. Every read checks that the
/// file's header matches the metadata (dtype and shape); whole-file reads also check the BLAKE3
/// checksum when one was recorded (dj-rs records one; DataJoint Python does not).
///
/// Errors name the store and path: a missing file is [`Error::NotFound`], a damaged or
/// mismatched one [`Error::Integrity`].
#[derive(Clone)]
pub struct NpyRef {
    meta: NpyMetadata,
    store: Arc<dyn Store>,
}

impl fmt::Debug for NpyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NpyRef")
            .field("path", &self.meta.path)
            .field("store", &self.store.name())
            .field("dtype", &self.meta.dtype)
            .field("shape", &self.meta.shape)
            .finish()
    }
}

impl fmt::Display for NpyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NpyRef(shape={:?}, dtype={}, path={})",
            self.meta.shape,
            self.meta.dtype.numpy_str(self.meta.byte_order),
            self.meta.path
        )
    }
}

impl NpyRef {
    /// A reference to the file `meta` describes, read through `store`.
    pub fn new(meta: NpyMetadata, store: Arc<dyn Store>) -> NpyRef {
        NpyRef { meta, store }
    }

    /// The stored metadata.
    pub fn metadata(&self) -> &NpyMetadata {
        &self.meta
    }

    /// The shape (no I/O).
    pub fn shape(&self) -> &[usize] {
        &self.meta.shape
    }

    /// The element type (no I/O).
    pub fn dtype(&self) -> DType {
        self.meta.dtype
    }

    /// The number of dimensions (no I/O).
    pub fn ndim(&self) -> usize {
        self.meta.shape.len()
    }

    /// The length of the first dimension, as Python's `len(ref)`; `None` for a 0-d array, which
    /// has no rows (no I/O).
    pub fn len(&self) -> Option<usize> {
        self.meta.shape.first().copied()
    }

    /// Whether the first dimension is 0 (no I/O). A 0-d array is not empty: it holds one element.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The number of elements, saturating at `u64::MAX` (no I/O).
    pub fn size(&self) -> u64 {
        self.meta
            .shape
            .iter()
            .fold(1u64, |acc, &d| acc.saturating_mul(d as u64))
    }

    /// The size of the data in bytes (elements × item size, without the header), saturating
    /// (no I/O).
    pub fn nbytes(&self) -> u64 {
        self.size()
            .saturating_mul(self.meta.dtype.itemsize() as u64)
    }

    /// The file's key in its store (no I/O).
    pub fn path(&self) -> &str {
        &self.meta.path
    }

    /// The store name recorded in the metadata (no I/O).
    pub fn store(&self) -> Option<&str> {
        self.meta.store.as_deref()
    }

    /// The recorded BLAKE3 checksum of the file, if any (no I/O).
    pub fn checksum(&self) -> Option<&str> {
        self.meta.checksum.as_deref()
    }

    /// The store this reference reads through.
    pub fn store_handle(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn store_name(&self) -> &str {
        self.meta
            .store
            .as_deref()
            .unwrap_or_else(|| self.store.name())
    }

    fn key(&self) -> Result<StorePath> {
        StorePath::parse(&self.meta.path)
    }

    /// Attach this file's store and path to an error.
    fn fail(&self, e: NpyError) -> Error {
        e.in_object(self.store_name(), &self.meta.path).into()
    }

    /// Read and parse the file's header with ranged reads (one request for headers up to 4 KiB),
    /// without checking it against the metadata.
    pub async fn read_header(&self) -> Result<ParsedHeader> {
        let key = self.key()?;
        let first = match self.store.get_range(&key, 0..HEADER_PROBE).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(e),
            Err(e) => {
                // An empty object cannot serve a range; report it as what it is.
                match self.store.head(&key).await {
                    Ok(m) if m.size == 0 => {
                        return Err(self.fail(NpyError::Truncated {
                            what: "header",
                            needed: 10,
                            available: m.size,
                        }));
                    }
                    _ => return Err(e),
                }
            }
        };
        let total = header_len(&first).map_err(|e| self.fail(e))?;
        let bytes = if total > first.len() as u64 && first.len() as u64 == HEADER_PROBE {
            let rest = self.store.get_range(&key, HEADER_PROBE..total).await?;
            let mut buf = BytesMut::with_capacity(first.len() + rest.len());
            buf.extend_from_slice(&first);
            buf.extend_from_slice(&rest);
            buf.freeze()
        } else {
            first
        };
        parse_header(&bytes).map_err(|e| self.fail(e))
    }

    /// Read the header and check it against the metadata.
    async fn checked_header(&self) -> Result<ParsedHeader> {
        let parsed = self.read_header().await?;
        self.meta
            .check_header(&parsed.header)
            .map_err(|e| self.fail(e))?;
        Ok(parsed)
    }

    /// Read the whole file and check its checksum (when recorded) and header.
    async fn fetch_whole(&self) -> Result<Bytes> {
        let key = self.key()?;
        self.store.get(&key).await
    }

    fn check_file(&self, bytes: &[u8]) -> std::result::Result<ParsedHeader, NpyError> {
        if let Some(expected) = &self.meta.checksum {
            let actual = hash_blake3_base32(bytes);
            if &actual != expected {
                return Err(NpyError::Checksum {
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        let parsed = parse_header(bytes)?;
        self.meta.check_header(&parsed.header)?;
        Ok(parsed)
    }

    /// Read the whole array as `T`, which must be the stored dtype. Byte order is converted to
    /// native; a Fortran-order file gives an array with Fortran strides (same logical values).
    ///
    /// Checks the checksum (when recorded), that the header matches the metadata, and that the
    /// data is exactly as long as the header says.
    pub async fn load<T: NpyElement>(&self) -> Result<ArrayD<T>> {
        if T::DTYPE != self.meta.dtype {
            return Err(self.fail(NpyError::TypeMismatch {
                requested: T::DTYPE,
                stored: self.meta.dtype,
            }));
        }
        let bytes = self.fetch_whole().await?;
        let this = self.clone();
        let work = move || -> std::result::Result<ArrayD<T>, NpyError> {
            let parsed = this.check_file(&bytes)?;
            let offset = usize::try_from(parsed.data_offset).unwrap_or(usize::MAX);
            let data = bytes.get(offset..).unwrap_or_default();
            decode_array(&parsed.header, data)
        };
        let big = self.nbytes() > BLOCKING_THRESHOLD as u64;
        run_blocking(big, crate::NAME, "decoding task", work)
            .await?
            .map_err(|e| self.fail(e))
    }

    /// Read the whole file as an [`NpyArray`] (little-endian bytes), whatever its dtype. Checks as
    /// [`load`](Self::load) does.
    pub async fn load_raw(&self) -> Result<NpyArray> {
        let bytes = self.fetch_whole().await?;
        let this = self.clone();
        let work = move || -> std::result::Result<NpyArray, NpyError> {
            this.check_file(&bytes)?;
            NpyArray::from_npy(bytes)
        };
        let big = self.nbytes() > BLOCKING_THRESHOLD as u64;
        run_blocking(big, crate::NAME, "decoding task", work)
            .await?
            .map_err(|e| self.fail(e))
    }

    /// Read rows `rows.start..rows.end` along the first axis as `T`.
    ///
    /// For C-order files (what numpy and dj-rs write by default) this reads the header and then
    /// exactly the bytes of those rows with one ranged get. Fortran-order files keep a row's
    /// elements apart, so for them the whole file is read (as [`load`](Self::load)) and sliced.
    /// The checksum covers the whole file, so a ranged read cannot check it; use
    /// [`verify`](Self::verify) for that.
    ///
    /// Errors: a 0-d array, `start > end`, `end` past the first dimension, or a dtype other than
    /// `T`.
    pub async fn slice_rows<T: NpyElement>(&self, rows: Range<usize>) -> Result<ArrayD<T>> {
        if T::DTYPE != self.meta.dtype {
            return Err(self.fail(NpyError::TypeMismatch {
                requested: T::DTYPE,
                stored: self.meta.dtype,
            }));
        }
        let Some(n) = self.len() else {
            return Err(self.fail(NpyError::BadRange {
                message: "a 0-d array has no rows to slice".into(),
            }));
        };
        if rows.start > rows.end || rows.end > n {
            return Err(self.fail(NpyError::BadRange {
                message: format!(
                    "rows {}..{} are outside the array's {n} rows",
                    rows.start, rows.end
                ),
            }));
        }
        let parsed = self.checked_header().await?;
        let header = parsed.header;
        if header.fortran_order {
            let whole = self.load::<T>().await?;
            return Ok(whole
                .slice_axis(Axis(0), Slice::from(rows))
                .as_standard_layout()
                .into_owned());
        }
        let row_len = header
            .row_len()
            .map_err(|e| self.fail(e))?
            .unwrap_or_default();
        // Both fit: the header's data length (checked) is at least `row_len * n`.
        let start = parsed
            .data_offset
            .saturating_add(row_len.saturating_mul(rows.start as u64));
        let len = row_len.saturating_mul((rows.end - rows.start) as u64);
        let bytes = if len == 0 {
            Bytes::new()
        } else {
            self.store
                .get_range(&self.key()?, start..start.saturating_add(len))
                .await?
        };
        if (bytes.len() as u64) < len {
            return Err(self.fail(NpyError::Truncated {
                what: "array data",
                needed: start.saturating_add(len),
                available: start.saturating_add(bytes.len() as u64),
            }));
        }
        let mut shape = header.shape.clone();
        if let Some(first) = shape.first_mut() {
            *first = rows.end - rows.start;
        }
        let sub = crate::header::NpyHeader { shape, ..header };
        let work = move || decode_array::<T>(&sub, &bytes);
        run_blocking(
            len > BLOCKING_THRESHOLD as u64,
            crate::NAME,
            "decoding task",
            work,
        )
        .await?
        .map_err(|e| self.fail(e))
    }

    /// Check the stored file: it exists, its header matches the metadata, its size is exactly
    /// header plus data, and, when a checksum was recorded, the BLAKE3 of its bytes (read as a
    /// stream, never whole in memory) matches.
    pub async fn verify(&self) -> Result<()> {
        let key = self.key()?;
        let object = self.store.head(&key).await?;
        let parsed = self.checked_header().await?;
        let data = object.size.saturating_sub(parsed.data_offset);
        check_data_len(&parsed.header, data).map_err(|e| self.fail(e))?;
        let Some(expected) = &self.meta.checksum else {
            return Ok(());
        };
        let (_, actual) =
            dj_object::hash_stored(self.store.as_ref(), &key, HashAlgorithm::Blake3).await?;
        if &actual != expected {
            return Err(self.fail(NpyError::Checksum {
                expected: expected.clone(),
                actual,
            }));
        }
        Ok(())
    }
}
