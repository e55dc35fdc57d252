//! Reading blobs.

use flate2::{Decompress, FlushDecompress, Status};

use crate::BlobError;
use crate::item::*;
pub use dj_core::config::DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE;

/// Options for reading.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions {
    /// Read legacy MATLAB blobs whose dims, lengths and sizes are 32-bit (DataJoint's
    /// `use_32bit_dims`). It cannot be detected; only set it for such data.
    pub legacy_32bit_dims: bool,
    /// The largest size in bytes a `ZL123` blob may inflate to (the configuration's
    /// `blob_max_decompressed_size`). A header announcing more is refused before anything is
    /// allocated, and inflating stops one byte past the announced size, so a header that lies
    /// cannot make the decoder hold more than this either.
    pub max_decompressed_size: u64,
}

impl Default for DecodeOptions {
    /// 64-bit dims and [`DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE`] bytes.
    fn default() -> Self {
        DecodeOptions {
            legacy_32bit_dims: false,
            max_decompressed_size: DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE,
        }
    }
}

const ZL123: &[u8] = b"ZL123\0";

/// Decode a blob (`mYm`/`dj0`, possibly `ZL123`-compressed). The whole input must be one blob.
pub fn decode(blob: &[u8]) -> Result<Item, BlobError> {
    decode_with(blob, DecodeOptions::default())
}

/// Decode with options.
pub fn decode_with(blob: &[u8], options: DecodeOptions) -> Result<Item, BlobError> {
    if let Some(rest) = blob.strip_prefix(ZL123) {
        let mut r = Reader {
            buf: rest,
            pos: 0,
            base: ZL123.len(),
            dims32: options.legacy_32bit_dims,
        };
        let expected = r.size("the uncompressed length")?;
        if expected > options.max_decompressed_size {
            return Err(BlobError::TooLarge {
                declared: expected,
                limit: options.max_decompressed_size,
            });
        }
        let out = inflate(&rest[r.pos..], expected)?;
        return decode_plain(&out, options);
    }
    decode_plain(blob, options)
}

/// Inflate a zlib stream that should give exactly `expected` bytes (already checked against the
/// limit) into a buffer that never grows past `expected`; the one byte more that would reveal a
/// longer stream goes to a scratch buffer.
fn inflate(body: &[u8], expected: u64) -> Result<Vec<u8>, BlobError> {
    let expected_len = usize::try_from(expected).map_err(|_| BlobError::TooLarge {
        declared: expected,
        limit: usize::MAX as u64,
    })?;
    // zlib expands at most about 1032:1, so a larger declared length is a lie we need not
    // reserve for up front; the buffer then grows (by doubling, up to `expected`) as data arrives.
    let bound = body.len().saturating_mul(1032).saturating_add(64);
    let mut out: Vec<u8> = Vec::with_capacity(expected_len.min(bound));
    crate::pages::advise_huge(out.as_ptr(), out.capacity());
    let mut zlib = Decompress::new(true);
    let mut input = body;
    let mut ended = false;
    while !ended {
        if out.len() == out.capacity() {
            if out.len() == expected_len {
                break;
            }
            let grow_to = expected_len.min(out.len().saturating_mul(2).max(64 * 1024));
            out.try_reserve_exact(grow_to - out.len())
                .map_err(|_| BlobError::Zlib {
                    message: format!("cannot allocate {grow_to} bytes for the inflated blob"),
                })?;
        }
        let (progressed, end) = inflate_step(&mut zlib, &mut input, &mut out)?;
        ended = end;
        if !progressed {
            // The input is used up before the stream's end: a truncated stream.
            break;
        }
    }
    if out.len() == expected_len && !ended {
        // The declared size is reached: only the end of the stream (its checksum) may follow.
        let mut extra = Vec::with_capacity(1);
        while !ended {
            let (progressed, end) = inflate_step(&mut zlib, &mut input, &mut extra)?;
            if !extra.is_empty() {
                return Err(BlobError::SizeMismatch {
                    expected,
                    actual: expected.saturating_add(1),
                });
            }
            ended = end;
            if !progressed {
                break;
            }
        }
    }
    if out.len() != expected_len {
        return Err(BlobError::SizeMismatch {
            expected,
            actual: out.len() as u64,
        });
    }
    if !ended {
        return Err(BlobError::Zlib {
            message: "the compressed stream is truncated".into(),
        });
    }
    Ok(out)
}

/// One call into zlib, writing into the spare capacity of `out`: whether it made progress, and
/// whether the stream ended.
fn inflate_step(
    zlib: &mut Decompress,
    input: &mut &[u8],
    out: &mut Vec<u8>,
) -> Result<(bool, bool), BlobError> {
    let (in_before, out_before) = (zlib.total_in(), zlib.total_out());
    let status = zlib
        .decompress_vec(input, out, FlushDecompress::None)
        .map_err(|e| BlobError::Zlib {
            message: e.to_string(),
        })?;
    let consumed = usize::try_from(zlib.total_in() - in_before).unwrap_or(input.len());
    *input = &input[consumed.min(input.len())..];
    let progressed = zlib.total_in() != in_before || zlib.total_out() != out_before;
    Ok((progressed, status == Status::StreamEnd))
}

fn decode_plain(blob: &[u8], options: DecodeOptions) -> Result<Item, BlobError> {
    let header_len = match blob.iter().position(|&b| b == 0) {
        Some(n) if &blob[..n] == b"mYm" || &blob[..n] == b"dj0" => n + 1,
        _ => {
            let shown: Vec<u8> = blob.iter().take(8).copied().collect();
            return Err(BlobError::UnknownHeader { found: shown });
        }
    };
    let mut r = Reader {
        buf: blob,
        pos: header_len,
        base: 0,
        dims32: options.legacy_32bit_dims,
    };
    let item = r.item_tree()?;
    if r.pos != blob.len() {
        return Err(BlobError::TrailingBytes {
            offset: r.pos,
            remaining: blob.len() - r.pos,
        });
    }
    Ok(item)
}

/// What [`Reader::begin`] read: a whole item, or a container whose items follow.
enum Begun {
    Done(Item),
    Open(Open),
}

/// A container being read, with the items read so far and how many are still to come.
enum Open {
    Sequence {
        code: u8,
        items: Vec<Item>,
        left: usize,
    },
    Dict {
        pairs: Vec<(Item, Item)>,
        key: Option<Item>,
        /// Keys and values still to come.
        left: usize,
    },
    Cell {
        shape: Vec<u64>,
        items: Vec<Item>,
        left: usize,
    },
    Struct {
        shape: Vec<u64>,
        fields: Vec<String>,
        elements: Vec<Vec<Item>>,
        /// The element being filled, one item per field.
        row: Vec<Item>,
        n_fields: usize,
        left: usize,
    },
    Object {
        shape: Vec<u64>,
        items: Vec<Item>,
        left: usize,
    },
    Record {
        fields: Vec<String>,
        columns: Vec<Item>,
        left: usize,
    },
}

impl Open {
    fn left(&self) -> usize {
        match self {
            Open::Sequence { left, .. }
            | Open::Dict { left, .. }
            | Open::Cell { left, .. }
            | Open::Struct { left, .. }
            | Open::Object { left, .. }
            | Open::Record { left, .. } => *left,
        }
    }

    fn push(&mut self, item: Item) {
        match self {
            Open::Sequence { items, left, .. }
            | Open::Cell { items, left, .. }
            | Open::Object { items, left, .. } => {
                items.push(item);
                *left -= 1;
            }
            Open::Dict { pairs, key, left } => {
                match key.take() {
                    None => *key = Some(item),
                    Some(k) => pairs.push((k, item)),
                }
                *left -= 1;
            }
            Open::Struct {
                elements,
                row,
                n_fields,
                left,
                ..
            } => {
                row.push(item);
                if row.len() == *n_fields {
                    elements.push(std::mem::replace(row, Vec::with_capacity(*n_fields)));
                }
                *left -= 1;
            }
            Open::Record { columns, left, .. } => {
                columns.push(item);
                *left -= 1;
            }
        }
    }

    fn finish(self) -> Item {
        match self {
            Open::Sequence { code, items, .. } => match code {
                0x01 => Item::Tuple(items),
                0x02 => Item::List(items),
                _ => Item::Set(items),
            },
            Open::Dict { pairs, .. } => Item::Dict(pairs),
            Open::Cell { shape, items, .. } => Item::Cell(CellArray { shape, items }),
            Open::Struct {
                shape,
                fields,
                elements,
                ..
            } => Item::Struct(StructArray {
                shape,
                fields,
                elements,
            }),
            Open::Object { shape, items, .. } => Item::Array(Array {
                shape,
                data: ArrayData::Object(items),
            }),
            Open::Record {
                fields, columns, ..
            } => Item::Record(RecordArray { fields, columns }),
        }
    }
}

/// An open container and, while one of its items is being read, that item's length prefix:
/// where it is, what it declares, and where the item starts.
struct Frame {
    container: Open,
    child: Option<(usize, u64, usize)>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Added to offsets in errors (the compressed envelope's header).
    base: usize,
    dims32: bool,
}

macro_rules! read_fixed {
    ($name:ident, $t:ty) => {
        fn $name(&mut self, what: &'static str) -> Result<$t, BlobError> {
            const N: usize = std::mem::size_of::<$t>();
            let b = self.take(N, what)?;
            let mut a = [0u8; N];
            a.copy_from_slice(b);
            Ok(<$t>::from_le_bytes(a))
        }
    };
}

impl<'a> Reader<'a> {
    fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], BlobError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(BlobError::Truncated {
                offset: self.offset(),
                expected: what,
                needed: n as u64,
                available: (self.buf.len() - self.pos) as u64,
            }),
        }
    }

    read_fixed!(u8, u8);
    read_fixed!(u16, u16);
    read_fixed!(u32, u32);
    read_fixed!(u64, u64);
    read_fixed!(i32, i32);
    read_fixed!(i64, i64);
    read_fixed!(f64, f64);

    /// A default-width value (u64, or u32 in legacy mode).
    fn size(&mut self, what: &'static str) -> Result<u64, BlobError> {
        if self.dims32 {
            self.u32(what).map(u64::from)
        } else {
            self.u64(what)
        }
    }

    /// A count of elements each taking at least `min_bytes`, checked against the remaining input so
    /// that a corrupt count cannot make us allocate without bound.
    fn count(&mut self, what: &'static str, min_bytes: u64) -> Result<usize, BlobError> {
        let at = self.offset();
        let n = self.size(what)?;
        self.check_count(at, what, n, min_bytes)
    }

    fn check_count(
        &self,
        at: usize,
        what: &'static str,
        n: u64,
        min_bytes: u64,
    ) -> Result<usize, BlobError> {
        let remaining = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_bytes.max(1)) > remaining {
            return Err(BlobError::Truncated {
                offset: at,
                expected: what,
                needed: n.saturating_mul(min_bytes),
                available: remaining,
            });
        }
        usize::try_from(n).map_err(|_| BlobError::Truncated {
            offset: at,
            expected: what,
            needed: n,
            available: remaining,
        })
    }

    fn shape(&mut self) -> Result<Vec<u64>, BlobError> {
        let ndim = self.count("the number of dimensions", if self.dims32 { 4 } else { 8 })?;
        let mut shape = Vec::with_capacity(ndim);
        for _ in 0..ndim {
            shape.push(self.size("a dimension")?);
        }
        Ok(shape)
    }

    fn elements(&self, at: usize, shape: &[u64], bytes_each: u64) -> Result<usize, BlobError> {
        let n = element_count(shape).ok_or(BlobError::Malformed {
            offset: at,
            message: format!("shape {shape:?} overflows"),
        })?;
        self.check_count(at, "array elements", n, bytes_each)
    }

    fn names(&mut self, n: usize) -> Result<Vec<String>, BlobError> {
        let mut names = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let at = self.offset();
            let rest = &self.buf[self.pos..];
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or(BlobError::Truncated {
                    offset: at,
                    expected: "a NUL-terminated field name",
                    needed: 1,
                    available: rest.len() as u64,
                })?;
            let name = std::str::from_utf8(&rest[..end]).map_err(|_| BlobError::Malformed {
                offset: at,
                message: "field name is not UTF-8".into(),
            })?;
            names.push(name.to_string());
            self.pos += end + 1;
        }
        Ok(names)
    }

    fn numeric<T: bytemuck::Pod>(
        &mut self,
        n: usize,
        what: &'static str,
    ) -> Result<Vec<T>, BlobError> {
        let size = std::mem::size_of::<T>();
        let bytes = self.take(
            n.checked_mul(size).ok_or(BlobError::Malformed {
                offset: self.offset(),
                message: "array too large".into(),
            })?,
            what,
        )?;
        // One copy into an aligned buffer; the format is little-endian like every supported host.
        // The buffer is not zeroed first (each element is written once, by the copy), and large
        // buffers get huge pages, so faulting them in does not dominate the copy.
        let mut out: Vec<T> = Vec::with_capacity(n);
        crate::pages::advise_huge(out.as_ptr().cast(), n.saturating_mul(size));
        out.extend(
            bytes
                .chunks_exact(size)
                .map(bytemuck::pod_read_unaligned::<T>),
        );
        Ok(out)
    }

    fn numeric_data(&mut self, class: u32, n: usize, at: usize) -> Result<ArrayData, BlobError> {
        let what = "array data";
        Ok(match class {
            3 => ArrayData::Bool(self.numeric::<u8>(n, what)?),
            6 => ArrayData::F64(self.numeric(n, what)?),
            7 => ArrayData::F32(self.numeric(n, what)?),
            8 => ArrayData::I8(self.numeric(n, what)?),
            9 => ArrayData::U8(self.numeric(n, what)?),
            10 => ArrayData::I16(self.numeric(n, what)?),
            11 => ArrayData::U16(self.numeric(n, what)?),
            12 => ArrayData::I32(self.numeric(n, what)?),
            13 => ArrayData::U32(self.numeric(n, what)?),
            14 => ArrayData::I64(self.numeric(n, what)?),
            15 => ArrayData::U64(self.numeric(n, what)?),
            other => {
                return Err(BlobError::Unsupported {
                    offset: at,
                    what: format!("array class id {other}"),
                });
            }
        })
    }

    /// An array after its `A` code: the whole of a numeric one, or the header of an object array,
    /// whose elements follow as items.
    fn array(&mut self) -> Result<Begun, BlobError> {
        let at = self.offset();
        let shape = self.shape()?;
        let class = self.u32("the array class id")?;
        let is_complex = self.u32("the complex flag")?;
        let data = match class {
            5 => {
                let n = self.elements(at, &shape, 9)?;
                return Ok(Begun::Open(Open::Object {
                    shape,
                    items: Vec::with_capacity(n),
                    left: n,
                }));
            }
            4 => {
                let n = self.elements(at, &shape, 2)?;
                ArrayData::Char(self.numeric(n, "char data")?)
            }
            c if (65536..65549).contains(&c) => {
                if is_complex != 0 {
                    return Err(BlobError::Unsupported {
                        offset: at,
                        what: "complex datetime64 arrays".into(),
                    });
                }
                let n = self.elements(at, &shape, 8)?;
                ArrayData::DateTime64 {
                    unit: (c - 65536) as u8,
                    ticks: self.numeric(n, "datetime64 data")?,
                }
            }
            _ => {
                let width = match class {
                    3 | 8 | 9 => 1,
                    10 | 11 => 2,
                    7 | 12 | 13 => 4,
                    _ => 8,
                };
                let n = self.elements(at, &shape, width)?;
                let re = self.numeric_data(class, n, at)?;
                if is_complex != 0 {
                    let im = self.numeric_data(class, n, at)?;
                    ArrayData::Complex(Box::new(re), Box::new(im))
                } else {
                    re
                }
            }
        };
        Ok(Begun::Done(Item::Array(Array { shape, data })))
    }

    /// The item at the current position with everything inside it.
    ///
    /// Containers are read with a stack on the heap, not by recursion, so the native stack stays
    /// flat whatever the input; an item inside more than [`MAX_DEPTH`] containers is an error.
    fn item_tree(&mut self) -> Result<Item, BlobError> {
        let mut open: Vec<Frame> = Vec::new();
        loop {
            // Read the next item, at the depth of the containers open around it.
            if open.len() > MAX_DEPTH {
                return Err(BlobError::Malformed {
                    offset: self.offset(),
                    message: format!("nesting deeper than {MAX_DEPTH}"),
                });
            }
            let mut done = match self.begin()? {
                Begun::Done(item) => item,
                Begun::Open(container) if container.left() == 0 => container.finish(),
                Begun::Open(container) => {
                    open.push(Frame {
                        container,
                        child: None,
                    });
                    self.start_child(&mut open)?;
                    continue;
                }
            };
            // Hand finished items to their containers, closing those that are complete.
            loop {
                let Some(mut frame) = open.pop() else {
                    return Ok(done);
                };
                if let Some((at, declared, start)) = frame.child.take() {
                    let used = (self.pos - start) as u64;
                    if used != declared {
                        return Err(BlobError::LengthMismatch {
                            offset: at,
                            declared,
                            actual: used,
                        });
                    }
                }
                frame.container.push(done);
                if frame.container.left() > 0 {
                    open.push(frame);
                    self.start_child(&mut open)?;
                    break;
                }
                done = frame.container.finish();
            }
        }
    }

    /// Before the next child of the innermost open container: read its length prefix when the
    /// container's children have one (all but record columns) and check it against the input.
    fn start_child(&mut self, open: &mut [Frame]) -> Result<(), BlobError> {
        let Some(frame) = open.last_mut() else {
            return Ok(());
        };
        if matches!(frame.container, Open::Record { .. }) {
            return Ok(());
        }
        let at = self.offset();
        let len = self.size("an item length")?;
        let remaining = (self.buf.len() - self.pos) as u64;
        if len > remaining {
            return Err(BlobError::Truncated {
                offset: at,
                expected: "an item",
                needed: len,
                available: remaining,
            });
        }
        frame.child = Some((at, len, self.pos));
        Ok(())
    }

    /// Read an item's code and then either the whole item (scalars and numeric arrays) or a
    /// container's header.
    fn begin(&mut self) -> Result<Begun, BlobError> {
        let at = self.offset();
        let code = self.u8("an item code")?;
        match code {
            b'A' => self.array(),
            b'S' => {
                let shape = self.shape()?;
                let n_fields = self.u32("the number of struct fields")? as usize;
                if n_fields == 0 {
                    return Ok(Begun::Done(Item::Struct(StructArray {
                        shape,
                        fields: vec![],
                        elements: vec![],
                    })));
                }
                let fields = self.names(n_fields)?;
                let n = self.elements(at, &shape, 9 * n_fields as u64)?;
                Ok(Begun::Open(Open::Struct {
                    shape,
                    fields,
                    elements: Vec::with_capacity(n),
                    row: Vec::with_capacity(n_fields),
                    n_fields,
                    left: n * n_fields,
                }))
            }
            b'C' => {
                let shape = self.shape()?;
                let n = self.elements(at, &shape, 9)?;
                Ok(Begun::Open(Open::Cell {
                    shape,
                    items: Vec::with_capacity(n),
                    left: n,
                }))
            }
            b'F' => {
                let n_fields = self.u32("the number of record fields")? as usize;
                if n_fields == 0 {
                    return Ok(Begun::Done(Item::Record(RecordArray {
                        fields: vec![],
                        columns: vec![],
                    })));
                }
                let fields = self.names(n_fields)?;
                Ok(Begun::Open(Open::Record {
                    fields,
                    columns: Vec::with_capacity(n_fields.min(4096)),
                    left: n_fields,
                }))
            }
            0x01..=0x03 => {
                let n = self.count("the number of elements", 9)?;
                Ok(Begun::Open(Open::Sequence {
                    code,
                    items: Vec::with_capacity(n),
                    left: n,
                }))
            }
            0x04 => {
                let n = self.count("the number of dict entries", 18)?;
                Ok(Begun::Open(Open::Dict {
                    pairs: Vec::with_capacity(n),
                    key: None,
                    left: 2 * n,
                }))
            }
            _ => self.scalar(code, at).map(Begun::Done),
        }
    }

    /// An item that holds no other item, after its code.
    fn scalar(&mut self, code: u8, at: usize) -> Result<Item, BlobError> {
        Ok(match code {
            b'P' => {
                return Err(BlobError::Unsupported {
                    offset: at,
                    what: "MATLAB sparse arrays".into(),
                });
            }
            0xFF => Item::None,
            0x05 => {
                let n = self.count("a string length", 1)?;
                let s = self.take(n, "string bytes")?;
                Item::Str(
                    String::from_utf8(s.to_vec()).map_err(|_| BlobError::Malformed {
                        offset: at,
                        message: "string is not UTF-8".into(),
                    })?,
                )
            }
            0x06 => {
                let n = self.count("a bytes length", 1)?;
                Item::Bytes(self.take(n, "bytes")?.to_vec())
            }
            0x0A => {
                let n = self.u16("an int length")? as usize;
                Item::Int(PyInt(self.take(n, "int bytes")?.to_vec()))
            }
            0x0B => Item::Bool(self.u8("a bool")? != 0),
            0x0C => Item::Complex(
                self.f64("a complex real part")?,
                self.f64("a complex imaginary part")?,
            ),
            0x0D => Item::Float(self.f64("a float")?),
            b'd' => {
                let n = self.count("a decimal length", 1)?;
                let s = self.take(n, "decimal text")?;
                Item::Decimal(
                    String::from_utf8(s.to_vec()).map_err(|_| BlobError::Malformed {
                        offset: at,
                        message: "decimal is not ASCII".into(),
                    })?,
                )
            }
            b't' => Item::Temporal(Temporal {
                date: self.i32("a date")?,
                time: self.i64("a time")?,
            }),
            b'u' => {
                let b = self.take(16, "a UUID")?;
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Item::Uuid(uuid::Uuid::from_bytes(a))
            }
            other => {
                return Err(BlobError::UnknownCode {
                    offset: at,
                    code: other,
                });
            }
        })
    }
}
