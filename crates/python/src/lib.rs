//! # dj-rs-python: the `dj_rs._native` extension module
//!
//! DataJoint 2.3.5's `blob.pack` / `blob.unpack` for Python, on top of `dj-codec-blob`, and the
//! `dj` command (`dj-cli`) for `dj_rs.gc`/`verify`/`migrate` and the `dj` console script. Python
//! values become a [`dj_codec_blob::Item`] (under the GIL, following DataJoint's `pack_blob`
//! dispatch order), the item is encoded with the GIL released, and the other way round for
//! reading. The Python package `dj_rs` (in `python/`) wraps this module; see `docs/python.md`.

use std::sync::atomic::{AtomicU64, Ordering};

use dj_codec_blob::{BlobError, Compression, DecodeOptions, EncodeOptions};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

mod from_py;
mod to_py;
mod tools;

create_exception!(
    _native,
    NativeBlobError,
    PyValueError,
    "A blob that cannot be read or a value that cannot be written; args are (message, byte offset or None)."
);

/// The default for [`MAX_SIZE`]: 4 GiB.
const DEFAULT_MAX_SIZE: u64 = 4 << 30;

/// The largest blob body (after inflating a `ZL123` blob) that `unpack` accepts.
static MAX_SIZE: AtomicU64 = AtomicU64::new(DEFAULT_MAX_SIZE);

/// The deepest nesting `pack` writes: what `dj-codec-blob`'s reader accepts (256 levels below
/// the top-level item), so that everything written can be read back.
pub(crate) const MAX_DEPTH: usize = 256;

/// The byte offset a [`BlobError`] reports, if any.
fn offset_of(e: &BlobError) -> Option<usize> {
    match e {
        BlobError::UnknownHeader { .. } => Some(0),
        BlobError::Truncated { offset, .. }
        | BlobError::UnknownCode { offset, .. }
        | BlobError::LengthMismatch { offset, .. }
        | BlobError::TrailingBytes { offset, .. }
        | BlobError::Unsupported { offset, .. }
        | BlobError::Malformed { offset, .. } => Some(*offset),
        // The u64 uncompressed length of a `ZL123` blob, and the zlib stream after it.
        BlobError::SizeMismatch { .. } => Some(6),
        BlobError::Zlib { .. } => Some(14),
        _ => None,
    }
}

/// A Python `NativeBlobError(message, offset)`.
pub(crate) fn blob_err(message: String, offset: Option<usize>) -> PyErr {
    NativeBlobError::new_err((message, offset))
}

fn from_blob_error(e: BlobError) -> PyErr {
    let offset = offset_of(&e);
    let mut message = e.to_string();
    if let Some(at) = offset.filter(|_| !message.contains(" at byte ")) {
        message.push_str(&format!(" (at byte {at})"));
    }
    blob_err(message, offset)
}

/// Pack a Python value into a blob, as DataJoint's `blob.pack(obj, compress)`.
///
/// `compat=True` compresses exactly as DataJoint does (byte-identical output); `compat=False`
/// uses dj-rs's fast mode (zlib level 1, skipped for incompressible data). `cell` and `struct_`
/// are the `MatCell` and `MatStruct` classes to recognise.
#[pyfunction]
#[pyo3(signature = (obj, compress, compat, cell, struct_))]
fn pack<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    compress: bool,
    compat: bool,
    cell: &Bound<'py, PyAny>,
    struct_: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let ctx = from_py::Ctx::new(py, cell, struct_)?;
    let item = ctx.item(obj, 0)?;
    let compression = match (compress, compat) {
        (false, _) => Compression::None,
        (true, true) => Compression::Compat,
        (true, false) => Compression::Fast,
    };
    let blob = py
        .detach(|| dj_codec_blob::encode_with(&item, EncodeOptions { compression }))
        .map_err(from_blob_error)?;
    Ok(PyBytes::new(py, &blob))
}

/// Check a `ZL123` blob's declared size against the limit before anything is inflated.
fn check_size(blob: &[u8], dims32: bool) -> PyResult<()> {
    let limit = MAX_SIZE.load(Ordering::Relaxed);
    let width = if dims32 { 4 } else { 8 };
    let size = match blob.strip_prefix(b"ZL123\0") {
        Some(rest) if rest.len() >= width => {
            let mut n = [0u8; 8];
            n[..width].copy_from_slice(&rest[..width]);
            u64::from_le_bytes(n)
        }
        Some(_) => return Ok(()), // truncated: the decoder reports where
        None => blob.len() as u64,
    };
    if size > limit {
        return Err(blob_err(
            format!(
                "blob of {size} bytes (uncompressed) is over the limit of {limit} bytes \
                 (dj_rs.set_max_blob_size) at byte 6"
            ),
            Some(6),
        ));
    }
    Ok(())
}

/// Unpack a blob, as DataJoint's `blob.unpack(blob, squeeze)`. `cell` and `struct_` are the
/// `MatCell` and `MatStruct` classes to build; `dims32` reads legacy 32-bit MATLAB blobs
/// (DataJoint's `blob.use_32bit_dims`).
#[pyfunction]
#[pyo3(signature = (blob, squeeze, cell, struct_, dims32=false))]
fn unpack<'py>(
    py: Python<'py>,
    blob: &Bound<'py, PyBytes>,
    squeeze: bool,
    cell: &Bound<'py, PyAny>,
    struct_: &Bound<'py, PyAny>,
    dims32: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let bytes = blob.as_bytes();
    check_size(bytes, dims32)?;
    let options = DecodeOptions {
        legacy_32bit_dims: dims32,
        max_decompressed_size: MAX_SIZE.load(Ordering::Relaxed),
    };
    let item = match py.detach(|| dj_codec_blob::decode_with(bytes, options)) {
        Ok(item) => item,
        // DataJoint returns None for a blob (or an inflated body) whose header it does not know.
        Err(BlobError::UnknownHeader { .. }) => return Ok(py.None().into_bound(py)),
        Err(e) => return Err(from_blob_error(e)),
    };
    let ctx = to_py::Ctx::new(py, squeeze, cell, struct_)?;
    ctx.value(item)
}

/// Set the largest uncompressed blob `unpack` accepts, in bytes.
#[pyfunction]
fn set_max_blob_size(n: u64) {
    MAX_SIZE.store(n, Ordering::Relaxed);
}

/// The largest uncompressed blob `unpack` accepts, in bytes.
#[pyfunction]
fn max_blob_size() -> u64 {
    MAX_SIZE.load(Ordering::Relaxed)
}

/// The module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pack, m)?)?;
    m.add_function(wrap_pyfunction!(unpack, m)?)?;
    m.add_function(wrap_pyfunction!(set_max_blob_size, m)?)?;
    m.add_function(wrap_pyfunction!(max_blob_size, m)?)?;
    m.add("NativeBlobError", m.py().get_type::<NativeBlobError>())?;
    m.add_function(wrap_pyfunction!(tools::cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(tools::run_json, m)?)?;
    m.add(
        "NativeToolError",
        m.py().get_type::<tools::NativeToolError>(),
    )?;
    m.add("DEFAULT_MAX_BLOB_SIZE", DEFAULT_MAX_SIZE)?;
    m.add("MAX_DEPTH", MAX_DEPTH)?;
    Ok(())
}
