//! The `.npy` header: parsing (versions 1.0, 2.0, 3.0) and writing byte for byte as numpy does.
//!
//! A `.npy` file is the magic string `\x93NUMPY`, two version bytes, the header length (a
//! little-endian `u16` in version 1.0, `u32` in 2.0 and 3.0), and the header: a Python dictionary
//! literal `{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }` padded with spaces and a
//! final `\n` so that the data starts at a multiple of 64 bytes. Version 3.0 differs from 2.0 only
//! in that the header is UTF-8 instead of Latin-1.

use std::fmt::Write as _;

use crate::dtype::{ByteOrder, DType};
use crate::error::NpyError;

/// The magic string every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// numpy pads headers so that the data starts at a multiple of this.
pub const ARRAY_ALIGN: usize = 64;

/// The longest header this crate reads (1 MiB). numpy itself refuses headers over 10 000
/// characters unless told otherwise; the limit only guards against absurd length fields.
pub const MAX_HEADER_LEN: u64 = 1 << 20;

/// The most dimensions a header may declare (numpy 2's limit).
pub const MAX_NDIM: usize = 64;

/// numpy leaves room for the growth axis to reach this many digits (`GROWTH_AXIS_MAX_DIGITS`).
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// Bytes before the header text: magic, version and length field.
const fn preamble_len(version: NpyVersion) -> usize {
    match version {
        NpyVersion::V1 => 10,
        NpyVersion::V2 | NpyVersion::V3 => 12,
    }
}

/// Nesting deeper than this in a header literal is refused (headers nest at most two levels).
const MAX_LITERAL_DEPTH: usize = 16;

/// A `.npy` format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NpyVersion {
    /// 1.0: `u16` header length, Latin-1 header. What numpy writes unless the header is huge.
    V1,
    /// 2.0: `u32` header length, Latin-1 header.
    V2,
    /// 3.0: `u32` header length, UTF-8 header.
    V3,
}

impl NpyVersion {
    /// The `(major, minor)` bytes.
    pub const fn bytes(self) -> (u8, u8) {
        match self {
            NpyVersion::V1 => (1, 0),
            NpyVersion::V2 => (2, 0),
            NpyVersion::V3 => (3, 0),
        }
    }
}

/// What a `.npy` header says about the array that follows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NpyHeader {
    /// The element type.
    pub dtype: DType,
    /// The byte order of the data.
    pub byte_order: ByteOrder,
    /// Whether the data is in column-major (Fortran) order instead of row-major (C) order.
    pub fortran_order: bool,
    /// The shape; empty for a 0-d array (one element).
    pub shape: Vec<usize>,
}

/// A header read from the start of a file, with where the data begins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedHeader {
    /// The header.
    pub header: NpyHeader,
    /// The format version it was written in.
    pub version: NpyVersion,
    /// The offset of the first data byte.
    pub data_offset: u64,
}

impl NpyHeader {
    /// A little-endian, C-order header.
    pub fn new(dtype: DType, shape: Vec<usize>) -> NpyHeader {
        NpyHeader {
            dtype,
            byte_order: ByteOrder::Little,
            fortran_order: false,
            shape,
        }
    }

    /// The number of elements (1 for a 0-d array), or an error when it overflows.
    pub fn element_count(&self) -> Result<usize, NpyError> {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| self.overflow())
    }

    /// The data length in bytes, or an error when it overflows.
    pub fn data_len(&self) -> Result<u64, NpyError> {
        let n = self.element_count()?;
        n.checked_mul(self.dtype.itemsize())
            .and_then(|b| u64::try_from(b).ok())
            .ok_or_else(|| self.overflow())
    }

    /// The bytes of one row (one index along the first axis) in C order; `None` for a 0-d array.
    pub fn row_len(&self) -> Result<Option<u64>, NpyError> {
        let Some((_, rest)) = self.shape.split_first() else {
            return Ok(None);
        };
        rest.iter()
            .try_fold(self.dtype.itemsize(), |acc, &d| acc.checked_mul(d))
            .and_then(|b| u64::try_from(b).ok())
            .map(Some)
            .ok_or_else(|| self.overflow())
    }

    fn overflow(&self) -> NpyError {
        NpyError::ShapeOverflow {
            shape: self.shape.iter().map(|&d| d as u64).collect(),
        }
    }

    /// The header dictionary as numpy writes it, including the spare spaces numpy leaves after it
    /// for the growth axis, without the final padding.
    pub fn dict_text(&self) -> String {
        let mut s = String::with_capacity(96);
        let _ = write!(
            s,
            "{{'descr': '{}', 'fortran_order': {}, 'shape': (",
            self.dtype.descr(self.byte_order),
            if self.fortran_order { "True" } else { "False" }
        );
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{d}");
        }
        if self.shape.len() == 1 {
            s.push(',');
        }
        s.push_str("), }");
        let growth = if self.fortran_order {
            self.shape.last()
        } else {
            self.shape.first()
        };
        if let Some(g) = growth {
            let digits = g.to_string().len();
            s.extend(std::iter::repeat_n(
                ' ',
                GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits),
            ));
        }
        s
    }

    /// The complete header bytes (magic to final `\n`) in the version numpy would choose: 1.0
    /// unless the header does not fit its 16-bit length field, then 2.0.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self.to_bytes_version(NpyVersion::V1) {
            Ok(b) => b,
            Err(_) => wrap(&self.dict_text(), NpyVersion::V2),
        }
    }

    /// The complete header bytes in a given version. Fails only when the header is too long for
    /// version 1.0's 16-bit length field.
    pub fn to_bytes_version(&self, version: NpyVersion) -> Result<Vec<u8>, NpyError> {
        let text = self.dict_text();
        if version == NpyVersion::V1 {
            let total = padded_len(text.len(), version);
            if total - preamble_len(version) > usize::from(u16::MAX) {
                return Err(NpyError::BadHeader {
                    message: format!(
                        "a header of {} bytes does not fit format version 1.0",
                        text.len()
                    ),
                });
            }
        }
        Ok(wrap(&text, version))
    }
}

/// The total header size (preamble, text, padding, `\n`) for header text of `text_len` bytes.
fn padded_len(text_len: usize, version: NpyVersion) -> usize {
    let pre = preamble_len(version);
    let hlen = text_len + 1;
    let padlen = ARRAY_ALIGN - ((pre + hlen) % ARRAY_ALIGN);
    pre + hlen + padlen
}

fn wrap(text: &str, version: NpyVersion) -> Vec<u8> {
    let total = padded_len(text.len(), version);
    let pre = preamble_len(version);
    let field = total - pre;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    let (major, minor) = version.bytes();
    out.push(major);
    out.push(minor);
    match version {
        NpyVersion::V1 => {
            out.extend_from_slice(&u16::try_from(field).unwrap_or(u16::MAX).to_le_bytes());
        }
        NpyVersion::V2 | NpyVersion::V3 => {
            out.extend_from_slice(&u32::try_from(field).unwrap_or(u32::MAX).to_le_bytes());
        }
    }
    out.extend_from_slice(text.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

fn check_magic(bytes: &[u8]) -> Result<(), NpyError> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] == MAGIC[..n] {
        return Ok(());
    }
    if bytes.first() == Some(&0x80) {
        return Err(NpyError::Pickle);
    }
    Err(NpyError::BadMagic {
        found: bytes.iter().take(8).copied().collect(),
    })
}

/// Read the preamble: the version, the offset of the header text and its length.
fn preamble(bytes: &[u8]) -> Result<(NpyVersion, usize, u64), NpyError> {
    check_magic(bytes)?;
    let truncated = |needed: usize| NpyError::Truncated {
        what: "header",
        needed: needed as u64,
        available: bytes.len() as u64,
    };
    let (Some(&major), Some(&minor)) = (bytes.get(6), bytes.get(7)) else {
        return Err(truncated(10));
    };
    let version = match (major, minor) {
        (1, 0) => NpyVersion::V1,
        (2, 0) => NpyVersion::V2,
        (3, 0) => NpyVersion::V3,
        _ => return Err(NpyError::UnsupportedVersion { major, minor }),
    };
    let pre = preamble_len(version);
    let field = bytes.get(8..pre).ok_or_else(|| truncated(pre))?;
    let len = match *field {
        [a, b] => u64::from(u16::from_le_bytes([a, b])),
        [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])),
        _ => return Err(truncated(pre)),
    };
    if len > MAX_HEADER_LEN {
        return Err(NpyError::HeaderTooLarge {
            len,
            max: MAX_HEADER_LEN,
        });
    }
    Ok((version, pre, len))
}

/// How many bytes the whole header occupies (where the data starts), judged from the first bytes
/// of a file: 10 bytes are enough for version 1.0 files, 12 for the others.
///
/// Errors: not a `.npy` file (or a pickle), an unknown version, a header over
/// [`MAX_HEADER_LEN`], or too few bytes to tell ([`NpyError::Truncated`]).
pub fn header_len(prefix: &[u8]) -> Result<u64, NpyError> {
    let (_, pre, len) = preamble(prefix)?;
    Ok(pre as u64 + len)
}

/// Parse the header at the start of `bytes` (which may continue with the data).
///
/// ```
/// use dj_codec_npy::{DType, NpyHeader, parse_header};
///
/// let header = NpyHeader::new(DType::Float64, vec![2, 2]);
/// let bytes = header.to_bytes();
/// assert_eq!(bytes.len(), 128);
/// assert_eq!(&bytes[10..69], b"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }");
/// let parsed = parse_header(&bytes)?;
/// assert_eq!(parsed.header, header);
/// assert_eq!(parsed.data_offset, 128);
/// # Ok::<(), dj_codec_npy::NpyError>(())
/// ```
pub fn parse_header(bytes: &[u8]) -> Result<ParsedHeader, NpyError> {
    let (version, pre, len) = preamble(bytes)?;
    let end = pre as u64 + len;
    let raw = usize::try_from(end)
        .ok()
        .and_then(|end| bytes.get(pre..end))
        .ok_or(NpyError::Truncated {
            what: "header",
            needed: end,
            available: bytes.len() as u64,
        })?;
    let text: String = match version {
        NpyVersion::V1 | NpyVersion::V2 => raw.iter().map(|&b| char::from(b)).collect(),
        NpyVersion::V3 => std::str::from_utf8(raw)
            .map_err(|e| NpyError::BadHeader {
                message: format!("a version 3.0 header must be UTF-8: {e}"),
            })?
            .to_string(),
    };
    let header = header_from_text(&text)?;
    Ok(ParsedHeader {
        header,
        version,
        data_offset: end,
    })
}

/// A Python literal, as far as `.npy` headers use them.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Bool(bool),
    Int(i128),
    None,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

impl Lit {
    fn kind(&self) -> &'static str {
        match self {
            Lit::Str(_) => "a string",
            Lit::Bool(_) => "a bool",
            Lit::Int(_) => "an integer",
            Lit::None => "None",
            Lit::Tuple(_) => "a tuple",
            Lit::List(_) => "a list",
            Lit::Dict(_) => "a dict",
        }
    }
}

struct LitParser {
    chars: Vec<char>,
    pos: usize,
}

impl LitParser {
    fn err(&self, what: impl std::fmt::Display) -> NpyError {
        NpyError::BadHeader {
            message: format!("{what} at character {}", self.pos),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), NpyError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format_args!("expected `{c}`")))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Lit, NpyError> {
        if depth > MAX_LITERAL_DEPTH {
            return Err(self.err("literal nested too deeply"));
        }
        self.skip_ws();
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.peek() == Some('}') {
                        self.pos += 1;
                        return Ok(Lit::Dict(items));
                    }
                    let k = self.value(depth + 1)?;
                    self.expect(':')?;
                    let v = self.value(depth + 1)?;
                    items.push((k, v));
                    self.skip_ws();
                    match self.peek() {
                        Some(',') => self.pos += 1,
                        Some('}') => {}
                        _ => return Err(self.err("expected `,` or `}` in dict")),
                    }
                }
            }
            Some(open @ ('(' | '[')) => {
                self.pos += 1;
                let close = if open == '(' { ')' } else { ']' };
                let mut items = Vec::new();
                let mut comma = false;
                loop {
                    self.skip_ws();
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    match self.peek() {
                        Some(',') => {
                            self.pos += 1;
                            comma = true;
                        }
                        Some(c) if c == close => {}
                        _ => return Err(self.err(format_args!("expected `,` or `{close}`"))),
                    }
                }
                if open == '[' {
                    Ok(Lit::List(items))
                } else if items.len() == 1 && !comma {
                    // `(x)` is just x in Python.
                    Ok(items.pop().unwrap_or(Lit::None))
                } else {
                    Ok(Lit::Tuple(items))
                }
            }
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                let mut s = String::new();
                loop {
                    match self.peek() {
                        None => return Err(self.err("unterminated string")),
                        Some('\\') => {
                            return Err(self.err("escape sequences in strings are not supported"));
                        }
                        Some('\n') => return Err(self.err("newline inside a string")),
                        Some(c) if c == q => {
                            self.pos += 1;
                            return Ok(Lit::Str(s));
                        }
                        Some(c) => {
                            s.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => {
                let negative = c == '-';
                if c == '-' || c == '+' {
                    self.pos += 1;
                }
                let start = self.pos;
                let mut n: i128 = 0;
                while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(i128::from(d)))
                        .ok_or_else(|| self.err("integer too large"))?;
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(self.err("expected digits"));
                }
                // Python 2 long suffix, as old numpy wrote it.
                if matches!(self.peek(), Some('L' | 'l')) {
                    self.pos += 1;
                }
                if self
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '_')
                {
                    return Err(self.err("only integers are allowed here"));
                }
                Ok(Lit::Int(if negative { -n } else { n }))
            }
            Some(c) if c.is_alphabetic() || c == '_' => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "True" => Ok(Lit::Bool(true)),
                    "False" => Ok(Lit::Bool(false)),
                    "None" => Ok(Lit::None),
                    _ => {
                        self.pos = start;
                        Err(self.err(format_args!("unexpected name `{word}`")))
                    }
                }
            }
            Some(c) => Err(self.err(format_args!("unexpected character {c:?}"))),
            None => Err(self.err("unexpected end")),
        }
    }
}

fn header_from_text(text: &str) -> Result<NpyHeader, NpyError> {
    let mut p = LitParser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let lit = p.value(0)?;
    p.skip_ws();
    // Some writers pad with NULs; numpy would refuse them, so do we.
    if p.pos != p.chars.len() {
        return Err(p.err("unexpected text after the header dictionary"));
    }
    let Lit::Dict(items) = lit else {
        return Err(NpyError::BadHeader {
            message: format!("the header is {}, not a dictionary", lit.kind()),
        });
    };
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (k, v) in items {
        let slot = match &k {
            Lit::Str(s) if s == "descr" => &mut descr,
            Lit::Str(s) if s == "fortran_order" => &mut fortran,
            Lit::Str(s) if s == "shape" => &mut shape,
            other => {
                return Err(NpyError::BadHeader {
                    message: format!(
                        "unexpected key {other:?}; the header must have exactly `descr`, `fortran_order` and `shape`"
                    ),
                });
            }
        };
        if slot.replace(v).is_some() {
            return Err(NpyError::BadHeader {
                message: format!("key {k:?} appears twice"),
            });
        }
    }
    let missing = |key: &str| NpyError::BadHeader {
        message: format!("the header lacks `{key}`"),
    };
    let (dtype, byte_order) = match descr.ok_or_else(|| missing("descr"))? {
        Lit::Str(s) => DType::parse_with_order(&s)?,
        Lit::List(_) => {
            return Err(NpyError::UnsupportedDtype {
                descr: "a structured dtype (list descr)".into(),
            });
        }
        other => {
            return Err(NpyError::BadHeader {
                message: format!("`descr` is {}, not a string", other.kind()),
            });
        }
    };
    let fortran_order = match fortran.ok_or_else(|| missing("fortran_order"))? {
        Lit::Bool(b) => b,
        other => {
            return Err(NpyError::BadHeader {
                message: format!("`fortran_order` is {}, not a bool", other.kind()),
            });
        }
    };
    let dims = match shape.ok_or_else(|| missing("shape"))? {
        Lit::Tuple(items) => items,
        other => {
            return Err(NpyError::BadHeader {
                message: format!("`shape` is {}, not a tuple", other.kind()),
            });
        }
    };
    if dims.len() > MAX_NDIM {
        return Err(NpyError::BadHeader {
            message: format!(
                "`shape` has {} dimensions, more than {MAX_NDIM}",
                dims.len()
            ),
        });
    }
    let shape = dims
        .into_iter()
        .map(|d| match d {
            Lit::Int(n) => usize::try_from(n).map_err(|_| NpyError::BadHeader {
                message: format!("`shape` has the dimension {n}, which is negative or too large"),
            }),
            other => Err(NpyError::BadHeader {
                message: format!("`shape` holds {}, not an integer", other.kind()),
            }),
        })
        .collect::<Result<Vec<usize>, NpyError>>()?;
    let header = NpyHeader {
        dtype,
        byte_order,
        fortran_order,
        shape,
    };
    header.data_len()?;
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(dtype: DType, shape: &[usize], fortran: bool) -> NpyHeader {
        NpyHeader {
            dtype,
            byte_order: ByteOrder::Little,
            fortran_order: fortran,
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn writes_what_numpy_writes() {
        let b = h(DType::Float64, &[2, 2], false).to_bytes();
        let mut want =
            b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }"
                .to_vec();
        want.resize(127, b' ');
        want.push(b'\n');
        assert_eq!(b, want);

        let b = h(DType::Float64, &[], false).to_bytes();
        assert!(b.starts_with(
            b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (), }   "
        ));
        assert_eq!(b.len(), 128);
        let b = h(DType::Int32, &[3], true).to_bytes();
        assert!(b[10..].starts_with(b"{'descr': '<i4', 'fortran_order': True, 'shape': (3,), }"));
        for shape in [vec![], vec![1], vec![123_456_789, 3], vec![2; 30]] {
            for v in [NpyVersion::V1, NpyVersion::V2, NpyVersion::V3] {
                let hd = h(DType::UInt16, &shape, false);
                let b = hd.to_bytes_version(v).unwrap();
                assert_eq!(b.len() % ARRAY_ALIGN, 0);
                assert_eq!(b.last(), Some(&b'\n'));
                let p = parse_header(&b).unwrap();
                assert_eq!(p.header, hd);
                assert_eq!(p.version, v);
                assert_eq!(p.data_offset, b.len() as u64);
                assert_eq!(header_len(&b[..12]).unwrap(), b.len() as u64);
            }
        }
    }

    fn text_header(text: &str) -> Vec<u8> {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(text.len() as u16).to_le_bytes());
        b.extend_from_slice(text.as_bytes());
        b
    }

    #[test]
    fn reads_header_variants() {
        let p = parse_header(&text_header(
            "{\"shape\": (3L, 4), \"fortran_order\": True, \"descr\": \">c16\"}\n",
        ))
        .unwrap();
        assert_eq!(p.header.shape, vec![3, 4]);
        assert_eq!(p.header.dtype, DType::Complex128);
        assert_eq!(p.header.byte_order, ByteOrder::Big);
        assert!(p.header.fortran_order);
        let p = parse_header(&text_header(
            "{'descr':'|b1','fortran_order':False,'shape':(),}",
        ))
        .unwrap();
        assert_eq!(p.header.shape, Vec::<usize>::new());
    }

    #[test]
    fn bad_headers_are_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }",
                "object",
            ),
            (
                "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (3,), }",
                "structured",
            ),
            (
                "{'descr': '<U3', 'fortran_order': False, 'shape': (3,), }",
                "unsupported dtype",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (3), }",
                "not a tuple",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }",
                "negative",
            ),
            (
                "{'descr': '<f8', 'fortran_order': 0, 'shape': (3,), }",
                "not a bool",
            ),
            ("{'descr': '<f8', 'shape': (3,), }", "lacks `fortran_order`"),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}",
                "unexpected key",
            ),
            (
                "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (3,)}",
                "twice",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), } x",
                "after",
            ),
            ("[1, 2]", "not a dictionary"),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (3.5,), }",
                "only integers",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999999999999999999999,), }",
                "too large",
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
                "overflows",
            ),
            (
                "{'descr': 'a\\'b', 'fortran_order': False, 'shape': (3,), }",
                "escape",
            ),
            (
                "((((((((((((((((((((((((((((1))))))))))))))))))))))))))))",
                "nested",
            ),
            ("{'descr': '<f8'", "expected"),
        ];
        for (text, want) in cases {
            let e = parse_header(&text_header(text)).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn bad_preambles_are_errors() {
        assert!(matches!(
            parse_header(b"\x80\x02}q\x00."),
            Err(NpyError::Pickle)
        ));
        assert!(matches!(
            parse_header(b"PK\x03\x04"),
            Err(NpyError::BadMagic { .. })
        ));
        assert!(matches!(
            parse_header(b"\x93NUM"),
            Err(NpyError::Truncated { .. })
        ));
        assert!(matches!(
            parse_header(b"\x93NUMPY\x04\x00\x10\x00"),
            Err(NpyError::UnsupportedVersion { major: 4, minor: 0 })
        ));
        assert!(matches!(
            parse_header(b"\x93NUMPY\x02\x00\xff\xff\xff\xff"),
            Err(NpyError::HeaderTooLarge { .. })
        ));
        assert!(matches!(
            parse_header(b"\x93NUMPY\x01\x00\x10\x00{'de"),
            Err(NpyError::Truncated { needed: 26, .. })
        ));
        let mut v3 = b"\x93NUMPY\x03\x00\x02\x00\x00\x00".to_vec();
        v3.extend_from_slice(&[0xff, 0xfe]);
        assert!(parse_header(&v3).unwrap_err().to_string().contains("UTF-8"));
    }
}
