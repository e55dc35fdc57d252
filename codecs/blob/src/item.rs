//! The blob value tree.

/// A decoded blob item: everything DataJoint's blob format can hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// Python `None` (code `0xFF`).
    None,
    /// Python `bool` (`0x0B`).
    Bool(bool),
    /// Python `int` of any size (`0x0A`).
    Int(PyInt),
    /// Python `float` (`0x0D`).
    Float(f64),
    /// Python `complex` (`0x0C`): real and imaginary parts.
    Complex(f64, f64),
    /// Python `str` (`0x05`).
    Str(String),
    /// Python `bytes` (`0x06`).
    Bytes(Vec<u8>),
    /// `decimal.Decimal`, as its text (`d`).
    Decimal(String),
    /// `datetime.date`, `.time` or `.datetime` (`t`).
    Temporal(Temporal),
    /// `uuid.UUID` (`u`).
    Uuid(uuid::Uuid),
    /// `tuple` (`0x01`).
    Tuple(Vec<Item>),
    /// `list` (`0x02`).
    List(Vec<Item>),
    /// `set` (`0x03`); order as stored.
    Set(Vec<Item>),
    /// `dict` (`0x04`): insertion-ordered pairs; keys may be any item.
    Dict(Vec<(Item, Item)>),
    /// An N-d array (`A`).
    Array(Array),
    /// A MATLAB struct array (`S`).
    Struct(StructArray),
    /// A MATLAB cell array (`C`).
    Cell(CellArray),
    /// A numpy record array (`F`).
    Record(RecordArray),
}

/// An arbitrary-size integer: little-endian two's complement bytes, minimal as DataJoint writes them
/// (`bit_length // 8 + 1` bytes), at most 65535 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PyInt(pub(crate) Vec<u8>);

impl PyInt {
    /// From little-endian two's complement bytes (any length ≥ 1).
    pub fn from_le_bytes(bytes: Vec<u8>) -> Self {
        PyInt(bytes)
    }

    /// The little-endian two's complement bytes.
    pub fn as_le_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value as `i64`, if it fits.
    pub fn to_i64(&self) -> Option<i64> {
        let v = self.to_i128()?;
        i64::try_from(v).ok()
    }

    /// The value as `i128`, if it fits.
    pub fn to_i128(&self) -> Option<i128> {
        let b = &self.0;
        if b.is_empty() {
            return Some(0);
        }
        let negative = b.last().is_some_and(|x| x & 0x80 != 0);
        let fill = if negative { 0xFF } else { 0x00 };
        if b.len() > 16 && b[16..].iter().any(|&x| x != fill) {
            return None;
        }
        let mut buf = [fill; 16];
        let n = b.len().min(16);
        buf[..n].copy_from_slice(&b[..n]);
        let v = i128::from_le_bytes(buf);
        // A 16-byte prefix of a longer number must keep its sign.
        if b.len() > 16 && ((v < 0) != negative) {
            return None;
        }
        Some(v)
    }
}

impl std::fmt::Display for PyInt {
    /// The decimal value, as Python's `str(int)` prints it, for any size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(v) = self.to_i128() {
            return write!(f, "{v}");
        }
        // Magnitude as base-2^32 limbs, most significant first.
        let negative = self.0.last().is_some_and(|x| x & 0x80 != 0);
        let mut bytes = self.0.clone();
        if negative {
            // Two's complement negation: invert and add one.
            let mut carry = true;
            for b in &mut bytes {
                let (v, c) = (!*b).overflowing_add(u8::from(carry));
                *b = v;
                carry = c;
            }
        }
        let mut limbs: Vec<u32> = bytes
            .chunks(4)
            .rev()
            .map(|c| {
                let mut a = [0u8; 4];
                a[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(a)
            })
            .collect();
        // Repeated division by 10^9 gives the decimal digits nine at a time.
        let mut groups = Vec::new();
        while limbs.iter().any(|&l| l != 0) {
            let mut rem = 0u64;
            for l in &mut limbs {
                let cur = (rem << 32) | u64::from(*l);
                *l = (cur / 1_000_000_000) as u32;
                rem = cur % 1_000_000_000;
            }
            groups.push(rem as u32);
            while limbs.first() == Some(&0) {
                limbs.remove(0);
            }
        }
        let mut s = String::with_capacity(groups.len() * 9 + 1);
        if negative {
            s.push('-');
        }
        for (i, g) in groups.iter().rev().enumerate() {
            if i == 0 {
                s.push_str(&g.to_string());
            } else {
                s.push_str(&format!("{g:09}"));
            }
        }
        f.write_str(&s)
    }
}

impl From<i128> for PyInt {
    /// Minimal encoding as Python's `int.to_bytes(bit_length // 8 + 1, signed=True)`.
    fn from(v: i128) -> Self {
        let magnitude_bits = 128 - v.unsigned_abs().leading_zeros();
        let n = (magnitude_bits / 8 + 1) as usize;
        let mut bytes = v.to_le_bytes().to_vec();
        bytes.resize(n.max(16), if v < 0 { 0xFF } else { 0 });
        bytes.truncate(n);
        PyInt(bytes)
    }
}

impl From<i64> for PyInt {
    fn from(v: i64) -> Self {
        PyInt::from(i128::from(v))
    }
}

/// A date, a time of day, or both (DataJoint's `t` item; time zones are not stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Temporal {
    /// `YYYYMMDD`, or -1 for none.
    pub date: i32,
    /// `HHMMSSffffff` (microseconds), or -1 for none.
    pub time: i64,
}

/// numpy `datetime64` units, by DataJoint class id (65536 + index).
pub const DATETIME64_UNITS: [&str; 13] = [
    "Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as",
];

/// An N-d array: shape and column-major (Fortran-order) data.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// The dimensions. Empty for a 0-d (scalar) array.
    pub shape: Vec<u64>,
    /// The elements, in Fortran order.
    pub data: ArrayData,
}

/// Typed, contiguous array data in Fortran order.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum ArrayData {
    /// MATLAB logical / numpy bool, one byte each (0 or 1).
    Bool(Vec<u8>),
    /// MATLAB char: UTF-16 code units.
    Char(Vec<u16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// A complex array: the real and the imaginary parts, each a numeric variant of equal length.
    Complex(Box<ArrayData>, Box<ArrayData>),
    /// numpy `datetime64[unit]` ticks; `unit` indexes [`DATETIME64_UNITS`].
    DateTime64 {
        unit: u8,
        ticks: Vec<i64>,
    },
    /// Object and unicode arrays: one item per element.
    Object(Vec<Item>),
}

impl ArrayData {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            ArrayData::Bool(v) | ArrayData::U8(v) => v.len(),
            ArrayData::Char(v) | ArrayData::U16(v) => v.len(),
            ArrayData::I8(v) => v.len(),
            ArrayData::I16(v) => v.len(),
            ArrayData::I32(v) => v.len(),
            ArrayData::U32(v) => v.len(),
            ArrayData::I64(v) => v.len(),
            ArrayData::U64(v) => v.len(),
            ArrayData::F32(v) => v.len(),
            ArrayData::F64(v) => v.len(),
            ArrayData::Complex(re, _) => re.len(),
            ArrayData::DateTime64 { ticks, .. } => ticks.len(),
            ArrayData::Object(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Array {
    /// A 1-D `float64` array.
    pub fn from_f64(values: Vec<f64>) -> Self {
        Array {
            shape: vec![values.len() as u64],
            data: ArrayData::F64(values),
        }
    }

    /// An array of `shape` with Fortran-order `data`; errors when the sizes disagree.
    pub fn new(shape: Vec<u64>, data: ArrayData) -> Result<Self, crate::BlobError> {
        let n = element_count(&shape).ok_or(crate::BlobError::Invalid {
            message: format!("shape {shape:?} overflows"),
        })?;
        if n != data.len() as u64 {
            return Err(crate::BlobError::Invalid {
                message: format!(
                    "shape {shape:?} holds {n} elements but {} were given",
                    data.len()
                ),
            });
        }
        Ok(Array { shape, data })
    }
}

/// The product of the dimensions, or `None` on overflow.
pub fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// A MATLAB struct array: field names and, for each element (Fortran order), one item per field.
#[derive(Clone, Debug, PartialEq)]
pub struct StructArray {
    /// The dimensions.
    pub shape: Vec<u64>,
    /// The field names.
    pub fields: Vec<String>,
    /// `elements[i][f]` is field `f` of element `i`.
    pub elements: Vec<Vec<Item>>,
}

/// A MATLAB cell array: items in Fortran order.
#[derive(Clone, Debug, PartialEq)]
pub struct CellArray {
    /// The dimensions.
    pub shape: Vec<u64>,
    /// The items.
    pub items: Vec<Item>,
}

/// A numpy record array: one column (an `A` array or a nested record array) per field.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordArray {
    /// The field names.
    pub fields: Vec<String>,
    /// The columns, one per field.
    pub columns: Vec<Item>,
}
