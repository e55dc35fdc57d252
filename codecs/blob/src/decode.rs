//! Reading blobs.

use flate2::read::ZlibDecoder;
use std::io::Read;

use crate::BlobError;
use crate::item::*;

/// Options for reading.
#[derive(Clone, Copy, Debug, Default)]
pub struct DecodeOptions {
    /// Read legacy MATLAB blobs whose dims, lengths and sizes are 32-bit (DataJoint's
    /// `use_32bit_dims`). It cannot be detected; only set it for such data.
    pub legacy_32bit_dims: bool,
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
        let body = &rest[r.pos..];
        // Never trust the declared length for the allocation: inflate into a growing buffer,
        // reading at most one byte more than declared.
        // zlib expands at most about 1032:1, so a larger declared length is a lie we need not
        // reserve for.
        let bound = (body.len() as u64).saturating_mul(1032).saturating_add(64);
        let mut out = Vec::with_capacity(usize::try_from(expected.min(bound)).unwrap_or(0));
        crate::pages::advise_huge(out.as_ptr(), out.capacity());
        ZlibDecoder::new(body)
            .take(expected.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| BlobError::Zlib {
                message: e.to_string(),
            })?;
        if out.len() as u64 != expected {
            return Err(BlobError::SizeMismatch {
                expected,
                actual: out.len() as u64,
            });
        }
        return decode_plain(&out, options);
    }
    decode_plain(blob, options)
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
    let item = r.item(0)?;
    if r.pos != blob.len() {
        return Err(BlobError::TrailingBytes {
            offset: r.pos,
            remaining: blob.len() - r.pos,
        });
    }
    Ok(item)
}

const MAX_DEPTH: usize = 256;

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

    /// An item prefixed by its length (inside containers); the item must use exactly that length.
    fn sized_item(&mut self, depth: usize) -> Result<Item, BlobError> {
        let at = self.offset();
        let len = self.size("an item length")?;
        let start = self.pos;
        let remaining = (self.buf.len() - self.pos) as u64;
        if len > remaining {
            return Err(BlobError::Truncated {
                offset: at,
                expected: "an item",
                needed: len,
                available: remaining,
            });
        }
        let item = self.item(depth + 1)?;
        let used = (self.pos - start) as u64;
        if used != len {
            return Err(BlobError::LengthMismatch {
                offset: at,
                declared: len,
                actual: used,
            });
        }
        Ok(item)
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
        // Large buffers get huge pages, so faulting them in does not dominate the copy.
        let mut out: Vec<T> = crate::pages::zeroed_vec(n);
        bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(bytes);
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

    fn array(&mut self, depth: usize) -> Result<Array, BlobError> {
        let at = self.offset();
        let shape = self.shape()?;
        let class = self.u32("the array class id")?;
        let is_complex = self.u32("the complex flag")?;
        let data = match class {
            5 => {
                let n = self.elements(at, &shape, 9)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.sized_item(depth)?);
                }
                ArrayData::Object(items)
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
        Ok(Array { shape, data })
    }

    fn item(&mut self, depth: usize) -> Result<Item, BlobError> {
        if depth > MAX_DEPTH {
            return Err(BlobError::Malformed {
                offset: self.offset(),
                message: format!("nesting deeper than {MAX_DEPTH}"),
            });
        }
        let at = self.offset();
        let code = self.u8("an item code")?;
        Ok(match code {
            b'A' => Item::Array(self.array(depth)?),
            b'P' => {
                return Err(BlobError::Unsupported {
                    offset: at,
                    what: "MATLAB sparse arrays".into(),
                });
            }
            b'S' => {
                let shape = self.shape()?;
                let n_fields = self.u32("the number of struct fields")? as usize;
                if n_fields == 0 {
                    return Ok(Item::Struct(StructArray {
                        shape,
                        fields: vec![],
                        elements: vec![],
                    }));
                }
                let fields = self.names(n_fields)?;
                let n = self.elements(at, &shape, 9 * n_fields as u64)?;
                let mut elements = Vec::with_capacity(n);
                for _ in 0..n {
                    let mut values = Vec::with_capacity(n_fields);
                    for _ in 0..n_fields {
                        values.push(self.sized_item(depth)?);
                    }
                    elements.push(values);
                }
                Item::Struct(StructArray {
                    shape,
                    fields,
                    elements,
                })
            }
            b'C' => {
                let shape = self.shape()?;
                let n = self.elements(at, &shape, 9)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.sized_item(depth)?);
                }
                Item::Cell(CellArray { shape, items })
            }
            b'F' => {
                let n_fields = self.u32("the number of record fields")? as usize;
                if n_fields == 0 {
                    return Ok(Item::Record(RecordArray {
                        fields: vec![],
                        columns: vec![],
                    }));
                }
                let fields = self.names(n_fields)?;
                let mut columns = Vec::with_capacity(n_fields.min(4096));
                for _ in 0..n_fields {
                    columns.push(self.item(depth + 1)?);
                }
                Item::Record(RecordArray { fields, columns })
            }
            0xFF => Item::None,
            0x01..=0x03 => {
                let n = self.count("the number of elements", 9)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.sized_item(depth)?);
                }
                match code {
                    0x01 => Item::Tuple(items),
                    0x02 => Item::List(items),
                    _ => Item::Set(items),
                }
            }
            0x04 => {
                let n = self.count("the number of dict entries", 18)?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.sized_item(depth)?;
                    let v = self.sized_item(depth)?;
                    pairs.push((k, v));
                }
                Item::Dict(pairs)
            }
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
