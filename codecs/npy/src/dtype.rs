//! Element types: the numpy dtypes `<npy@>` supports and the Rust types that hold them.

use std::fmt;
use std::str::FromStr;

use num_complex::Complex;

use crate::error::NpyError;

/// A numpy dtype supported by `<npy@>`.
///
/// [`Display`](fmt::Display) gives numpy's name (`str(np.dtype)` for native byte order), which is
/// what DataJoint records in the metadata: `bool`, `int32`, `float64`, `complex128`, …
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// `bool` (`|b1`): one byte, 0 or 1.
    Bool,
    /// `int8` (`|i1`).
    Int8,
    /// `int16` (`<i2`).
    Int16,
    /// `int32` (`<i4`).
    Int32,
    /// `int64` (`<i8`).
    Int64,
    /// `uint8` (`|u1`).
    UInt8,
    /// `uint16` (`<u2`).
    UInt16,
    /// `uint32` (`<u4`).
    UInt32,
    /// `uint64` (`<u8`).
    UInt64,
    /// `float32` (`<f4`).
    Float32,
    /// `float64` (`<f8`).
    Float64,
    /// `complex64` (`<c8`): two `float32`, real then imaginary.
    Complex64,
    /// `complex128` (`<c16`): two `float64`, real then imaginary.
    Complex128,
}

/// Every supported dtype, in the order listed by [`DType`].
pub const ALL_DTYPES: [DType; 13] = [
    DType::Bool,
    DType::Int8,
    DType::Int16,
    DType::Int32,
    DType::Int64,
    DType::UInt8,
    DType::UInt16,
    DType::UInt32,
    DType::UInt64,
    DType::Float32,
    DType::Float64,
    DType::Complex64,
    DType::Complex128,
];

/// The byte order of multi-byte elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Least significant byte first (`<`), what numpy writes on every common machine.
    Little,
    /// Most significant byte first (`>`).
    Big,
}

impl ByteOrder {
    /// The byte order of this machine, which numpy's `=` and `|` stand for.
    pub const NATIVE: ByteOrder = if cfg!(target_endian = "big") {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    };
}

impl DType {
    /// Bytes per element.
    pub const fn itemsize(self) -> usize {
        match self {
            DType::Bool | DType::Int8 | DType::UInt8 => 1,
            DType::Int16 | DType::UInt16 => 2,
            DType::Int32 | DType::UInt32 | DType::Float32 => 4,
            DType::Int64 | DType::UInt64 | DType::Float64 | DType::Complex64 => 8,
            DType::Complex128 => 16,
        }
    }

    /// numpy's name for the dtype in native byte order (`str(np.dtype)`), e.g. `float64`.
    pub const fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Complex64 => "complex64",
            DType::Complex128 => "complex128",
        }
    }

    /// The type code after the byte-order character, e.g. `f8`.
    const fn code(self) -> &'static str {
        match self {
            DType::Bool => "b1",
            DType::Int8 => "i1",
            DType::Int16 => "i2",
            DType::Int32 => "i4",
            DType::Int64 => "i8",
            DType::UInt8 => "u1",
            DType::UInt16 => "u2",
            DType::UInt32 => "u4",
            DType::UInt64 => "u8",
            DType::Float32 => "f4",
            DType::Float64 => "f8",
            DType::Complex64 => "c8",
            DType::Complex128 => "c16",
        }
    }

    /// The size of the units whose bytes a byte-order change swaps: the item size, or half of it
    /// for complex numbers (two floats).
    pub(crate) const fn swap_unit(self) -> usize {
        match self {
            DType::Complex64 => 4,
            DType::Complex128 => 8,
            other => other.itemsize(),
        }
    }

    /// numpy's `dtype.str` for this dtype in `order`, as written in a header's `descr`:
    /// `|b1`, `|i1`, `|u1` for one-byte types, `<f8` / `>f8` for the others.
    pub fn descr(self, order: ByteOrder) -> String {
        let prefix = if self.itemsize() == 1 {
            '|'
        } else {
            match order {
                ByteOrder::Little => '<',
                ByteOrder::Big => '>',
            }
        };
        format!("{prefix}{}", self.code())
    }

    /// What `str(np.dtype)` gives for this dtype in `order`: the name for native byte order and
    /// one-byte types, the descr (`>f8`) otherwise. This is the `dtype` DataJoint records.
    pub fn numpy_str(self, order: ByteOrder) -> String {
        if self.itemsize() == 1 || order == ByteOrder::NATIVE {
            self.name().to_string()
        } else {
            self.descr(order)
        }
    }

    /// Parse a numpy descr (`<f8`, `>i2`, `|b1`, `=u4`, `?`, `f8`) or dtype name (`float64`),
    /// returning the dtype and its byte order (native when the text does not say).
    ///
    /// Object dtypes (`O`, `|O`, `object`) are [`NpyError::ObjectDtype`]; any other dtype outside
    /// the supported set is [`NpyError::UnsupportedDtype`].
    pub fn parse_with_order(text: &str) -> Result<(DType, ByteOrder), NpyError> {
        let unsupported = || NpyError::UnsupportedDtype {
            descr: text.to_string(),
        };
        if let Some(d) = ALL_DTYPES.iter().find(|d| d.name() == text) {
            return Ok((*d, ByteOrder::NATIVE));
        }
        let (order, code) = match text.chars().next() {
            Some('<') => (ByteOrder::Little, &text[1..]),
            Some('>') => (ByteOrder::Big, &text[1..]),
            Some('|' | '=') => (ByteOrder::NATIVE, &text[1..]),
            _ => (ByteOrder::NATIVE, text),
        };
        if code == "object" || code.starts_with('O') {
            return Err(NpyError::ObjectDtype {
                descr: text.to_string(),
            });
        }
        if code == "?" {
            return Ok((DType::Bool, order));
        }
        let dtype = ALL_DTYPES
            .iter()
            .find(|d| d.code() == code)
            .copied()
            .ok_or_else(unsupported)?;
        Ok((dtype, order))
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = NpyError;

    /// Parse a dtype name or descr, ignoring its byte order (see [`DType::parse_with_order`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DType::parse_with_order(s).map(|(d, _)| d)
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust element type with a `.npy` dtype: `bool`, `i8`–`i64`, `u8`–`u64`, `f32`, `f64`,
/// `Complex<f32>` and `Complex<f64>`.
///
/// Sealed: the set matches [`DType`] exactly.
pub trait NpyElement: Copy + Send + Sync + fmt::Debug + 'static + sealed::Sealed {
    /// The dtype of this element type.
    const DTYPE: DType;

    /// Append the element's little-endian bytes.
    fn push_le(self, out: &mut Vec<u8>);

    /// Read one element from exactly [`DType::itemsize`] bytes in `order`.
    fn read(bytes: &[u8], order: ByteOrder) -> Self;

    /// Decode every whole element of `bytes` (stored in `order`) into `out`.
    fn decode_into(bytes: &[u8], order: ByteOrder, out: &mut Vec<Self>) {
        out.extend(
            bytes
                .chunks_exact(Self::DTYPE.itemsize())
                .map(|c| Self::read(c, order)),
        );
    }
}

/// Copy up to `N` bytes into an array (missing bytes are zero; callers always pass `N`).
fn fixed<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    for (d, s) in a.iter_mut().zip(bytes) {
        *d = *s;
    }
    a
}

macro_rules! numeric {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl NpyElement for $t {
            const DTYPE: DType = DType::$d;
            fn push_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read(bytes: &[u8], order: ByteOrder) -> Self {
                let a = fixed::<{ std::mem::size_of::<$t>() }>(bytes);
                match order {
                    ByteOrder::Little => <$t>::from_le_bytes(a),
                    ByteOrder::Big => <$t>::from_be_bytes(a),
                }
            }
        }
    )*};
}

numeric!(
    i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64,
    u8 => UInt8, u16 => UInt16, u32 => UInt32, u64 => UInt64,
    f32 => Float32, f64 => Float64,
);

impl sealed::Sealed for bool {}
impl NpyElement for bool {
    const DTYPE: DType = DType::Bool;
    fn push_le(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }
    fn read(bytes: &[u8], _order: ByteOrder) -> Self {
        bytes.first().is_some_and(|b| *b != 0)
    }
}

macro_rules! complex {
    ($($f:ty => $d:ident),*) => {$(
        impl sealed::Sealed for Complex<$f> {}
        impl NpyElement for Complex<$f> {
            const DTYPE: DType = DType::$d;
            fn push_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.re.to_le_bytes());
                out.extend_from_slice(&self.im.to_le_bytes());
            }
            fn read(bytes: &[u8], order: ByteOrder) -> Self {
                const H: usize = std::mem::size_of::<$f>();
                let (re, im) = bytes.split_at(bytes.len().min(H));
                Complex::new(<$f>::read(re, order), <$f>::read(im, order))
            }
        }
    )*};
}

complex!(f32 => Complex64, f64 => Complex128);

/// Swap every `unit`-byte group of `data` in place (a byte-order change).
pub(crate) fn swap_bytes(data: &mut [u8], unit: usize) {
    if unit > 1 {
        for c in data.chunks_exact_mut(unit) {
            c.reverse();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descrs_match_numpy() {
        assert_eq!(DType::Float64.descr(ByteOrder::Little), "<f8");
        assert_eq!(DType::Float64.descr(ByteOrder::Big), ">f8");
        assert_eq!(DType::Bool.descr(ByteOrder::Big), "|b1");
        assert_eq!(DType::Int8.descr(ByteOrder::Little), "|i1");
        assert_eq!(DType::Complex128.descr(ByteOrder::Little), "<c16");
        assert_eq!(DType::Complex64.numpy_str(ByteOrder::Little), "complex64");
        assert_eq!(DType::Int16.numpy_str(ByteOrder::Big), ">i2");
        assert_eq!(DType::UInt8.numpy_str(ByteOrder::Big), "uint8");
        for d in ALL_DTYPES {
            assert_eq!(DType::parse_with_order(d.name()).unwrap().0, d);
            for o in [ByteOrder::Little, ByteOrder::Big] {
                let (p, po) = DType::parse_with_order(&d.descr(o)).unwrap();
                assert_eq!(p, d);
                if d.itemsize() > 1 {
                    assert_eq!(po, o);
                }
                assert_eq!(DType::parse_with_order(&d.numpy_str(o)).unwrap().0, d);
            }
        }
        assert_eq!("?".parse::<DType>().unwrap(), DType::Bool);
        assert_eq!("f8".parse::<DType>().unwrap(), DType::Float64);
    }

    #[test]
    fn object_and_unknown_dtypes_are_refused() {
        for o in ["|O", "O", "object", "O8"] {
            assert!(matches!(
                o.parse::<DType>(),
                Err(NpyError::ObjectDtype { .. })
            ));
        }
        for u in ["<f2", "<U5", "|S3", "<M8[ns]", "", "<", "float16", "<i3"] {
            let e = u.parse::<DType>().unwrap_err();
            assert!(matches!(e, NpyError::UnsupportedDtype { .. }), "{u}: {e}");
        }
    }

    #[test]
    fn elements_round_trip_in_both_orders() {
        let mut le = Vec::new();
        (-2i32).push_le(&mut le);
        assert_eq!(le, [0xfe, 0xff, 0xff, 0xff]);
        assert_eq!(i32::read(&le, ByteOrder::Little), -2);
        let mut be = le.clone();
        swap_bytes(&mut be, 4);
        assert_eq!(i32::read(&be, ByteOrder::Big), -2);

        let c = Complex::new(1.5f32, -2.0);
        let mut out = Vec::new();
        c.push_le(&mut out);
        assert_eq!(out.len(), 8);
        assert_eq!(Complex::<f32>::read(&out, ByteOrder::Little), c);
        swap_bytes(&mut out, DType::Complex64.swap_unit());
        assert_eq!(Complex::<f32>::read(&out, ByteOrder::Big), c);

        assert!(bool::read(&[2], ByteOrder::Little));
        assert!(!bool::read(&[0], ByteOrder::Little));
    }
}
