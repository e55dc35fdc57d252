//! Writing blobs.

use std::io::Write;

use flate2::Compression as Level;
use flate2::write::ZlibEncoder;

use crate::BlobError;
use crate::item::*;

/// How to compress blobs over 1000 bytes: the configuration's `blob_compression` modes
/// (`Compat` is byte-identical to DataJoint Python, `Fast` the default, `None` never compresses).
pub use dj_core::config::BlobCompression as Compression;

/// Options for writing.
#[derive(Clone, Copy, Debug, Default)]
pub struct EncodeOptions {
    /// The compression mode.
    pub compression: Compression,
}

/// Encode an item with the default options ([`Compression::Fast`]).
pub fn encode(item: &Item) -> Result<Vec<u8>, BlobError> {
    encode_with(item, EncodeOptions::default())
}

/// Encode an item.
pub fn encode_with(item: &Item, options: EncodeOptions) -> Result<Vec<u8>, BlobError> {
    let mut out = Vec::new();
    encode_into(item, options, &mut out)?;
    Ok(out)
}

/// Encode an item into `out`, replacing its contents and reusing its allocation.
///
/// Writing many large blobs through one buffer avoids faulting in fresh memory for each of them,
/// which for big arrays costs more than the copy itself.
pub fn encode_into(
    item: &Item,
    options: EncodeOptions,
    out: &mut Vec<u8>,
) -> Result<(), BlobError> {
    out.clear();
    let header: &[u8] = if is_classic(item) { b"mYm\0" } else { b"dj0\0" };
    out.reserve(header.len() + encoded_len_hint(item));
    crate::pages::advise_huge(out.as_ptr(), out.capacity());
    out.extend_from_slice(header);
    write_item(out, item)?;
    if out.len() <= 1000 {
        return Ok(());
    }
    let level = match options.compression {
        Compression::None => return Ok(()),
        Compression::Compat => Level::new(6),
        Compression::Fast => {
            // Estimated from a sample at memory speed, so an incompressible blob costs about a
            // copy (see `compressibility`); a blob that compresses worse than estimated is
            // still kept raw below.
            if !crate::compressibility::worth_compressing(out) {
                return Ok(());
            }
            Level::new(1)
        }
    };
    let compressed = zlib(out, level)?;
    if 6 + 8 + compressed.len() < out.len() {
        let raw_len = out.len() as u64;
        out.clear();
        out.reserve(14 + compressed.len());
        out.extend_from_slice(b"ZL123\0");
        out.extend_from_slice(&raw_len.to_le_bytes());
        out.extend_from_slice(&compressed);
    }
    Ok(())
}

fn zlib(data: &[u8], level: Level) -> Result<Vec<u8>, BlobError> {
    let mut e = ZlibEncoder::new(Vec::with_capacity(data.len() / 2 + 64), level);
    e.write_all(data).map_err(|err| BlobError::Zlib {
        message: err.to_string(),
    })?;
    e.finish().map_err(|err| BlobError::Zlib {
        message: err.to_string(),
    })
}

/// Whether only classic MATLAB (mYm) items occur: numeric and logical arrays with at least one
/// dimension, char arrays, and cell and struct arrays of those. Anything else (Python scalars and
/// containers, 0-d numeric arrays, object, unicode and `datetime64` arrays, record arrays) makes
/// the blob `dj0`, exactly as DataJoint decides.
///
/// The walk uses a stack on the heap, so any depth is fine.
pub fn is_classic(item: &Item) -> bool {
    let mut pending = vec![item];
    while let Some(item) = pending.pop() {
        let classic = match item {
            // DataJoint switches to dj0 for 0-d numeric arrays but not for 0-d char arrays.
            Item::Array(a) => match a.data {
                ArrayData::Object(_) | ArrayData::DateTime64 { .. } => false,
                ArrayData::Char(_) => true,
                _ => !a.shape.is_empty(),
            },
            Item::Cell(c) => {
                pending.extend(&c.items);
                true
            }
            Item::Struct(s) => {
                pending.extend(s.elements.iter().flatten());
                true
            }
            _ => false,
        };
        if !classic {
            return false;
        }
    }
    true
}

fn encoded_len_hint(item: &Item) -> usize {
    match item {
        Item::Array(a) => 32 + 8 * a.shape.len() + data_bytes(&a.data),
        _ => 64,
    }
}

/// The size of an array's element data in bytes (a guess for object arrays).
pub(crate) fn data_bytes(data: &ArrayData) -> usize {
    let n = data.len();
    match data {
        ArrayData::Bool(_) | ArrayData::I8(_) | ArrayData::U8(_) => n,
        ArrayData::Char(_) | ArrayData::I16(_) | ArrayData::U16(_) => n.saturating_mul(2),
        ArrayData::I32(_) | ArrayData::U32(_) | ArrayData::F32(_) => n.saturating_mul(4),
        ArrayData::I64(_)
        | ArrayData::U64(_)
        | ArrayData::F64(_)
        | ArrayData::DateTime64 { .. } => n.saturating_mul(8),
        // Only one level: parts that are complex themselves are refused when written.
        ArrayData::Complex(re, im)
            if !matches!(**re, ArrayData::Complex(..))
                && !matches!(**im, ArrayData::Complex(..)) =>
        {
            data_bytes(re).saturating_add(data_bytes(im))
        }
        ArrayData::Complex(..) => 0,
        ArrayData::Object(_) => n.saturating_mul(16),
    }
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_shape(out: &mut Vec<u8>, shape: &[u64]) {
    put_u64(out, shape.len() as u64);
    for &d in shape {
        put_u64(out, d);
    }
}

/// Fill in the u64 length reserved at `at`: the bytes written since.
fn patch_length(out: &mut [u8], at: usize) {
    let len = (out.len() - at - 8) as u64;
    out[at..at + 8].copy_from_slice(&len.to_le_bytes());
}

fn put_names(out: &mut Vec<u8>, names: &[String]) -> Result<(), BlobError> {
    if names.iter().any(|n| n.contains('\0')) {
        return Err(BlobError::Invalid {
            message: "field names must not contain NUL".into(),
        });
    }
    put_u32(
        out,
        u32::try_from(names.len()).map_err(|_| BlobError::Invalid {
            message: "too many fields".into(),
        })?,
    );
    if !names.is_empty() {
        out.extend_from_slice(names.join("\0").as_bytes());
        out.push(0);
    }
    Ok(())
}

fn class_id(data: &ArrayData) -> Result<u32, BlobError> {
    Ok(match data {
        ArrayData::Bool(_) => 3,
        ArrayData::Char(_) => 4,
        ArrayData::Object(_) => 5,
        ArrayData::F64(_) => 6,
        ArrayData::F32(_) => 7,
        ArrayData::I8(_) => 8,
        ArrayData::U8(_) => 9,
        ArrayData::I16(_) => 10,
        ArrayData::U16(_) => 11,
        ArrayData::I32(_) => 12,
        ArrayData::U32(_) => 13,
        ArrayData::I64(_) => 14,
        ArrayData::U64(_) => 15,
        ArrayData::DateTime64 { unit, .. } => {
            if usize::from(*unit) >= DATETIME64_UNITS.len() {
                return Err(BlobError::Invalid {
                    message: format!("datetime64 unit index {unit} is out of range"),
                });
            }
            65536 + u32::from(*unit)
        }
        ArrayData::Complex(re, im) => {
            if std::mem::discriminant(&**re) != std::mem::discriminant(&**im)
                || re.len() != im.len()
            {
                return Err(BlobError::Invalid {
                    message: "complex parts must have the same type and length".into(),
                });
            }
            match **re {
                ArrayData::Complex(..)
                | ArrayData::Object(_)
                | ArrayData::DateTime64 { .. }
                | ArrayData::Char(_) => {
                    return Err(BlobError::Invalid {
                        message: "complex parts must be numeric".into(),
                    });
                }
                _ => class_id(re)?,
            }
        }
    })
}

fn put_numeric(out: &mut Vec<u8>, data: &ArrayData) {
    match data {
        ArrayData::Bool(v) | ArrayData::U8(v) => out.extend_from_slice(v),
        ArrayData::Char(v) | ArrayData::U16(v) => out.extend_from_slice(bytemuck::cast_slice(v)),
        ArrayData::I8(v) => out.extend_from_slice(bytemuck::cast_slice(v)),
        ArrayData::I16(v) => out.extend_from_slice(bytemuck::cast_slice(v)),
        ArrayData::I32(v) => out.extend_from_slice(bytemuck::cast_slice(v)),
        ArrayData::U32(v) => out.extend_from_slice(bytemuck::cast_slice(v)),
        ArrayData::I64(v) => out.extend_from_slice(bytemuck::cast_slice(v)),
        ArrayData::U64(v) => out.extend_from_slice(bytemuck::cast_slice(v)),
        ArrayData::F32(v) => out.extend_from_slice(bytemuck::cast_slice(v)),
        ArrayData::F64(v) => out.extend_from_slice(bytemuck::cast_slice(v)),
        ArrayData::DateTime64 { ticks, .. } => out.extend_from_slice(bytemuck::cast_slice(ticks)),
        ArrayData::Complex(re, im) => {
            put_numeric(out, re);
            put_numeric(out, im);
        }
        ArrayData::Object(_) => {}
    }
}

/// Write an array; for an object array only its header (the caller writes the elements).
fn write_array(out: &mut Vec<u8>, a: &Array) -> Result<(), BlobError> {
    let n = element_count(&a.shape).ok_or(BlobError::Invalid {
        message: format!("shape {:?} overflows", a.shape),
    })?;
    if n != a.data.len() as u64 {
        return Err(BlobError::Invalid {
            message: format!(
                "array of shape {:?} needs {n} elements, has {}",
                a.shape,
                a.data.len()
            ),
        });
    }
    out.push(b'A');
    put_shape(out, &a.shape);
    put_u32(out, class_id(&a.data)?);
    put_u32(out, u32::from(matches!(a.data, ArrayData::Complex(..))));
    match &a.data {
        ArrayData::Object(_) => {}
        data => {
            out.reserve(data_bytes(data));
            put_numeric(out, data);
        }
    }
    Ok(())
}

/// The error for a value nested deeper than [`MAX_DEPTH`].
pub(crate) fn too_deep() -> BlobError {
    BlobError::Invalid {
        message: format!(
            "the value is nested more than {MAX_DEPTH} levels deep, deeper than a blob can be \
             read back"
        ),
    }
}

/// A container being written: its remaining items, whether each is preceded by its length (all
/// but record columns), and where its own length is to be filled in once it is complete.
struct Frame<'a> {
    items: Children<'a>,
    sized: bool,
    length_at: Option<usize>,
}

/// Write `item` and everything inside it. Containers are walked with a stack on the heap, so the
/// native stack stays flat however deep the value; an item inside more than [`MAX_DEPTH`]
/// containers is an error.
fn write_item(out: &mut Vec<u8>, item: &Item) -> Result<(), BlobError> {
    let mut open: Vec<Frame<'_>> = Vec::new();
    if write_head(out, item)? {
        open.push(Frame {
            items: children(item),
            sized: !matches!(item, Item::Record(_)),
            length_at: None,
        });
    }
    loop {
        // The depth of the next item: inside every open container.
        let child_depth = open.len();
        let Some(frame) = open.last_mut() else { break };
        let Some(child) = frame.items.next() else {
            if let Some(at) = frame.length_at {
                patch_length(out, at);
            }
            open.pop();
            continue;
        };
        if child_depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let length_at = frame.sized.then(|| {
            let at = out.len();
            put_u64(out, 0);
            at
        });
        if write_head(out, child)? {
            open.push(Frame {
                items: children(child),
                sized: !matches!(child, Item::Record(_)),
                length_at,
            });
        } else if let Some(at) = length_at {
            patch_length(out, at);
        }
    }
    Ok(())
}

/// Write an item that holds no other item, and say `false`; or check a container and write its
/// header, and say `true` (its items come next, in the order [`children`] gives them).
fn write_head(out: &mut Vec<u8>, item: &Item) -> Result<bool, BlobError> {
    match item {
        Item::None => out.push(0xFF),
        Item::Bool(b) => {
            out.push(0x0B);
            out.push(u8::from(*b));
        }
        Item::Int(i) => {
            let n = u16::try_from(i.0.len())
                .ok()
                .filter(|&n| n > 0)
                .ok_or(BlobError::Invalid {
                    message: "integers are limited to 1 to 65535 bytes".into(),
                })?;
            out.push(0x0A);
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&i.0);
        }
        Item::Float(f) => {
            out.push(0x0D);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Item::Complex(re, im) => {
            out.push(0x0C);
            out.extend_from_slice(&re.to_le_bytes());
            out.extend_from_slice(&im.to_le_bytes());
        }
        Item::Str(s) => {
            out.push(0x05);
            put_u64(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Item::Bytes(b) => {
            out.push(0x06);
            put_u64(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Item::Decimal(d) => {
            if !d.is_ascii() {
                return Err(BlobError::Invalid {
                    message: format!("decimal `{d}` is not ASCII"),
                });
            }
            out.push(b'd');
            put_u64(out, d.len() as u64);
            out.extend_from_slice(d.as_bytes());
        }
        Item::Temporal(t) => {
            out.push(b't');
            out.extend_from_slice(&t.date.to_le_bytes());
            out.extend_from_slice(&t.time.to_le_bytes());
        }
        Item::Uuid(u) => {
            out.push(b'u');
            out.extend_from_slice(u.as_bytes());
        }
        Item::Tuple(v) | Item::List(v) | Item::Set(v) => {
            out.push(match item {
                Item::Tuple(_) => 0x01,
                Item::List(_) => 0x02,
                _ => 0x03,
            });
            put_u64(out, v.len() as u64);
            return Ok(true);
        }
        Item::Dict(pairs) => {
            out.push(0x04);
            put_u64(out, pairs.len() as u64);
            return Ok(true);
        }
        Item::Array(a) => {
            write_array(out, a)?;
            return Ok(matches!(a.data, ArrayData::Object(_)));
        }
        Item::Cell(c) => {
            let n = element_count(&c.shape).unwrap_or(u64::MAX);
            if n != c.items.len() as u64 {
                return Err(BlobError::Invalid {
                    message: format!(
                        "cell array of shape {:?} has {} items",
                        c.shape,
                        c.items.len()
                    ),
                });
            }
            out.push(b'C');
            put_shape(out, &c.shape);
            return Ok(true);
        }
        Item::Struct(s) => {
            let n = element_count(&s.shape).unwrap_or(u64::MAX);
            if !s.fields.is_empty()
                && (n != s.elements.len() as u64
                    || s.elements.iter().any(|e| e.len() != s.fields.len()))
            {
                return Err(BlobError::Invalid {
                    message: format!(
                        "struct array of shape {:?} does not match its elements",
                        s.shape
                    ),
                });
            }
            out.push(b'S');
            put_shape(out, &s.shape);
            put_names(out, &s.fields)?;
            return Ok(true);
        }
        Item::Record(r) => {
            if r.fields.len() != r.columns.len() {
                return Err(BlobError::Invalid {
                    message: "record array needs one column per field".into(),
                });
            }
            if !r
                .columns
                .iter()
                .all(|c| matches!(c, Item::Array(_) | Item::Record(_)))
            {
                return Err(BlobError::Invalid {
                    message: "record columns must be arrays or record arrays".into(),
                });
            }
            out.push(b'F');
            put_names(out, &r.fields)?;
            return Ok(true);
        }
    }
    Ok(false)
}
