//! [`NpyArray`]: an array as raw little-endian bytes, and the conversions between `.npy` bytes,
//! raw arrays and `ndarray` arrays.

use bytes::Bytes;
use dj_core::value::{DomainValue, Value};
use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn, ShapeBuilder};
use num_complex::Complex;

use crate::dtype::{ByteOrder, DType, NpyElement, swap_bytes};
use crate::error::NpyError;
use crate::header::{NpyHeader, parse_header};

/// An array held as raw bytes: little-endian elements of one [`DType`] in C (row-major) or
/// Fortran (column-major) order, with a shape.
///
/// It is what `<npy@>` writes when the element type is only known at run time, and what
/// [`NpyRef::load_raw`](crate::NpyRef::load_raw) returns. Cloning is cheap (the data is
/// [`Bytes`]).
///
/// ```
/// use dj_codec_npy::{DType, NpyArray};
/// use ndarray::array;
///
/// let a = array![[1.0f32, 2.0], [3.0, 4.0]].into_dyn();
/// let raw = NpyArray::from_array(&a);
/// assert_eq!((raw.dtype(), raw.shape()), (DType::Float32, &[2usize, 2][..]));
/// let file = raw.to_npy_bytes();
/// let back = NpyArray::from_npy_bytes(&file)?;
/// assert_eq!(back.to_array::<f32>()?, a);
/// # Ok::<(), dj_codec_npy::NpyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyArray {
    dtype: DType,
    shape: Vec<usize>,
    fortran_order: bool,
    data: Bytes,
}

impl NpyArray {
    /// An array from little-endian `data` in C order (`fortran_order == false`) or Fortran order.
    ///
    /// Fails when `data` is not exactly shape × item size bytes.
    pub fn new(
        dtype: DType,
        shape: Vec<usize>,
        fortran_order: bool,
        data: impl Into<Bytes>,
    ) -> Result<NpyArray, NpyError> {
        let data = data.into();
        let header = NpyHeader {
            dtype,
            byte_order: ByteOrder::Little,
            fortran_order,
            shape,
        };
        let expected = header.data_len()?;
        if data.len() as u64 != expected {
            return Err(NpyError::DataLength {
                expected,
                actual: data.len() as u64,
            });
        }
        Ok(NpyArray {
            dtype,
            shape: header.shape,
            fortran_order,
            data,
        })
    }

    /// Copy an `ndarray` array. Like numpy's `save`, a Fortran-contiguous array keeps Fortran
    /// order and anything else is written in C order.
    pub fn from_array<T, S, D>(array: &ArrayBase<S, D>) -> NpyArray
    where
        T: NpyElement,
        S: Data<Elem = T>,
        D: Dimension,
    {
        let fortran_order = is_fortran(array);
        let mut data = Vec::with_capacity(array.len() * T::DTYPE.itemsize());
        write_elements(array, usize::MAX, &mut |chunk| {
            data.extend_from_slice(&chunk);
            true
        });
        NpyArray {
            dtype: T::DTYPE,
            shape: array.shape().to_vec(),
            fortran_order,
            data: Bytes::from(data),
        }
    }

    /// Read a whole `.npy` file. Big-endian data is converted to little-endian.
    pub fn from_npy_bytes(bytes: &[u8]) -> Result<NpyArray, NpyError> {
        let (header, data) = split_npy(bytes)?;
        let mut data = data.to_vec();
        if header.byte_order == ByteOrder::Big {
            swap_bytes(&mut data, header.dtype.swap_unit());
        }
        NpyArray::new(header.dtype, header.shape, header.fortran_order, data)
    }

    /// As [`from_npy_bytes`](Self::from_npy_bytes), without copying little-endian data.
    pub fn from_npy(bytes: Bytes) -> Result<NpyArray, NpyError> {
        let (header, data) = split_npy(&bytes)?;
        if header.byte_order == ByteOrder::Big && header.dtype.swap_unit() > 1 {
            return NpyArray::from_npy_bytes(&bytes);
        }
        let start = bytes.len() - data.len();
        let data = bytes.slice(start..);
        NpyArray::new(header.dtype, header.shape, header.fortran_order, data)
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape; empty for a 0-d array.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn element_count(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the data is in Fortran (column-major) order.
    pub fn fortran_order(&self) -> bool {
        self.fortran_order
    }

    /// The little-endian data, in memory order (see [`fortran_order`](Self::fortran_order)).
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The size of the data in bytes.
    pub fn nbytes(&self) -> usize {
        self.data.len()
    }

    /// The `.npy` header describing this array.
    pub fn header(&self) -> NpyHeader {
        NpyHeader {
            dtype: self.dtype,
            byte_order: ByteOrder::Little,
            fortran_order: self.fortran_order,
            shape: self.shape.clone(),
        }
    }

    /// The complete `.npy` file, byte for byte what `numpy.save` writes for the same array.
    pub fn to_npy_bytes(&self) -> Vec<u8> {
        let mut out = self.header().to_bytes();
        out.extend_from_slice(&self.data);
        out
    }

    /// Convert to an `ndarray` array of `T`, which must match [`dtype`](Self::dtype).
    /// A Fortran-order array comes back with Fortran strides.
    pub fn to_array<T: NpyElement>(&self) -> Result<ArrayD<T>, NpyError> {
        decode_array(&self.header(), &self.data)
    }
}

/// Split a whole `.npy` file into its header and exactly its data.
fn split_npy(bytes: &[u8]) -> Result<(NpyHeader, &[u8]), NpyError> {
    let parsed = parse_header(bytes)?;
    let offset = usize::try_from(parsed.data_offset).unwrap_or(usize::MAX);
    let data = bytes.get(offset..).unwrap_or_default();
    check_data_len(&parsed.header, data.len() as u64)?;
    Ok((parsed.header, data))
}

/// Check that `actual` data bytes are what the header announces.
pub(crate) fn check_data_len(header: &NpyHeader, actual: u64) -> Result<(), NpyError> {
    let expected = header.data_len()?;
    if actual < expected {
        return Err(NpyError::Truncated {
            what: "array data",
            needed: expected,
            available: actual,
        });
    }
    if actual > expected {
        return Err(NpyError::DataLength { expected, actual });
    }
    Ok(())
}

/// Decode exactly the data of `header` (in its byte order) into an array of `T`.
pub(crate) fn decode_array<T: NpyElement>(
    header: &NpyHeader,
    data: &[u8],
) -> Result<ArrayD<T>, NpyError> {
    if T::DTYPE != header.dtype {
        return Err(NpyError::TypeMismatch {
            requested: T::DTYPE,
            stored: header.dtype,
        });
    }
    check_data_len(header, data.len() as u64)?;
    let mut values = Vec::with_capacity(data.len() / T::DTYPE.itemsize());
    T::decode_into(data, header.byte_order, &mut values);
    let shape = IxDyn(&header.shape);
    let result = if header.fortran_order {
        ArrayD::from_shape_vec(shape.f(), values)
    } else {
        ArrayD::from_shape_vec(shape, values)
    };
    result.map_err(|e| NpyError::BadValue {
        message: format!("cannot build an array of shape {:?}: {e}", header.shape),
    })
}

/// Whether numpy would write this array in Fortran order: not C-contiguous but F-contiguous.
fn is_fortran<S: Data, D: Dimension>(a: &ArrayBase<S, D>) -> bool {
    a.ndim() > 1 && !a.is_standard_layout() && a.t().is_standard_layout()
}

/// Feed an array's little-endian bytes to `sink` in chunks of about `chunk_bytes`, in the order
/// numpy writes them (memory order when C- or F-contiguous, logical C order otherwise). Stops
/// early when `sink` returns false.
fn write_elements<T, S, D>(
    a: &ArrayBase<S, D>,
    chunk_bytes: usize,
    sink: &mut dyn FnMut(Bytes) -> bool,
) where
    T: NpyElement,
    S: Data<Elem = T>,
    D: Dimension,
{
    let per_chunk = (chunk_bytes / T::DTYPE.itemsize()).max(1);
    let mut emit = |elems: &mut dyn Iterator<Item = &T>| -> bool {
        let mut buf = Vec::with_capacity(per_chunk.min(a.len()) * T::DTYPE.itemsize());
        let mut n = 0;
        for e in elems {
            e.push_le(&mut buf);
            n += 1;
            if n == per_chunk {
                let full = std::mem::replace(
                    &mut buf,
                    Vec::with_capacity(per_chunk * T::DTYPE.itemsize()),
                );
                if !sink(Bytes::from(full)) {
                    return false;
                }
                n = 0;
            }
        }
        buf.is_empty() || sink(Bytes::from(buf))
    };
    if let Some(s) = a.as_slice() {
        emit(&mut s.iter());
    } else if is_fortran(a) {
        let t = a.t();
        match t.as_slice() {
            Some(s) => emit(&mut s.iter()),
            None => emit(&mut t.iter()),
        };
    } else {
        emit(&mut a.iter());
    }
}

/// Where the bytes of a value being stored come from.
#[derive(Clone)]
pub(crate) enum Source {
    /// An `ndarray` array inside a domain value, with the writer for its element type.
    Array {
        value: DomainValue,
        write: fn(&DomainValue, usize, &mut dyn FnMut(Bytes) -> bool),
    },
    /// Raw little-endian bytes.
    Raw(Bytes),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Array { value, .. } => write!(f, "Source::Array({})", value.type_name()),
            Source::Raw(b) => write!(f, "Source::Raw({} bytes)", b.len()),
        }
    }
}

fn write_domain<T: NpyElement>(
    d: &DomainValue,
    chunk_bytes: usize,
    sink: &mut dyn FnMut(Bytes) -> bool,
) {
    if let Some(a) = d.downcast_ref::<ArrayD<T>>() {
        write_elements(a, chunk_bytes, sink);
    }
}

impl Source {
    /// Feed the data (not the header) to `sink` in chunks of about `chunk_bytes`.
    pub(crate) fn write(&self, chunk_bytes: usize, sink: &mut dyn FnMut(Bytes) -> bool) {
        match self {
            Source::Array { value, write } => write(value, chunk_bytes, sink),
            Source::Raw(data) => {
                let step = chunk_bytes.max(1);
                let mut at = 0;
                while at < data.len() {
                    let end = at.saturating_add(step).min(data.len());
                    if !sink(data.slice(at..end)) {
                        return;
                    }
                    at = end;
                }
            }
        }
    }
}

/// The error for a value `<npy@>` cannot store.
pub(crate) fn not_an_array(found: &str) -> NpyError {
    NpyError::BadValue {
        message: format!(
            "<npy@> takes an ndarray `ArrayD<T>` (T one of bool, i8, i16, i32, i64, u8, u16, u32, \
             u64, f32, f64, Complex<f32>, Complex<f64>; use `.into_dyn()` for fixed-dimension \
             arrays) or an `NpyArray`, wrapped with `Value::domain`; found {found}"
        ),
    }
}

/// What a value to store is: its header and where its data comes from.
pub(crate) fn source_of(value: &Value) -> Result<(NpyHeader, Source), NpyError> {
    let Value::Domain(d) = value else {
        return Err(not_an_array(&value.kind()));
    };
    if let Some(raw) = d.downcast_ref::<NpyArray>() {
        return Ok((raw.header(), Source::Raw(raw.data.clone())));
    }
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if let Some(a) = d.downcast_ref::<ArrayD<$t>>() {
                let header = NpyHeader {
                    dtype: <$t as NpyElement>::DTYPE,
                    byte_order: ByteOrder::Little,
                    fortran_order: is_fortran(a),
                    shape: a.shape().to_vec(),
                };
                header.data_len()?;
                return Ok((header, Source::Array { value: d.clone(), write: write_domain::<$t> }));
            }
        )*};
    }
    try_types!(
        bool,
        i8,
        i16,
        i32,
        i64,
        u8,
        u16,
        u32,
        u64,
        f32,
        f64,
        Complex<f32>,
        Complex<f64>
    );
    Err(not_an_array(&format!("`{}`", d.type_name())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, Array2, array};

    #[test]
    fn c_fortran_and_strided_arrays_are_written_as_numpy_does() {
        let c = Array::from_shape_vec((2, 3), (0..6).collect::<Vec<i32>>()).unwrap();
        let raw = NpyArray::from_array(&c);
        assert!(!raw.fortran_order());
        assert_eq!(raw.data().len(), 24);
        assert_eq!(&raw.data()[4..8], &1i32.to_le_bytes());

        let f: Array2<i32> = c.t().as_standard_layout().into_owned().reversed_axes();
        assert_eq!(f, c);
        let raw_f = NpyArray::from_array(&f);
        assert!(raw_f.fortran_order());
        // Column-major: 0, 3, 1, 4, 2, 5.
        assert_eq!(&raw_f.data()[4..8], &3i32.to_le_bytes());
        assert_eq!(raw_f.to_array::<i32>().unwrap(), c.clone().into_dyn());

        let strided = c.slice(ndarray::s![.., ..;2]);
        let raw_s = NpyArray::from_array(&strided);
        assert!(!raw_s.fortran_order());
        assert_eq!(
            raw_s.to_array::<i32>().unwrap(),
            array![[0, 2], [3, 5]].into_dyn()
        );
    }

    #[test]
    fn npy_bytes_round_trip_and_convert_big_endian() {
        let a = array![[1.0f64, -2.5], [3.25, 4.0]].into_dyn();
        let raw = NpyArray::from_array(&a);
        let file = raw.to_npy_bytes();
        assert_eq!(file.len(), 128 + 32);
        assert_eq!(NpyArray::from_npy(Bytes::from(file.clone())).unwrap(), raw);

        let mut header = raw.header();
        header.byte_order = ByteOrder::Big;
        let mut be = header.to_bytes();
        for v in [1.0f64, -2.5, 3.25, 4.0] {
            be.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(NpyArray::from_npy(Bytes::from(be.clone())).unwrap(), raw);
        let parsed = parse_header(&be).unwrap();
        let data = &be[parsed.data_offset as usize..];
        assert_eq!(decode_array::<f64>(&parsed.header, data).unwrap(), a);
        assert!(matches!(
            decode_array::<f32>(&parsed.header, data),
            Err(NpyError::TypeMismatch { .. })
        ));
    }

    #[test]
    fn lengths_are_checked() {
        assert!(matches!(
            NpyArray::new(DType::Int16, vec![3], false, vec![0u8; 5]),
            Err(NpyError::DataLength {
                expected: 6,
                actual: 5
            })
        ));
        let raw = NpyArray::new(DType::Int16, vec![3], false, vec![0u8; 6]).unwrap();
        let mut file = raw.to_npy_bytes();
        file.pop();
        assert!(matches!(
            NpyArray::from_npy_bytes(&file),
            Err(NpyError::Truncated { .. })
        ));
        file.extend_from_slice(&[0, 0]);
        assert!(matches!(
            NpyArray::from_npy_bytes(&file),
            Err(NpyError::DataLength { .. })
        ));
    }

    #[test]
    fn sources_chunk_their_data() {
        let a = Array::from_shape_vec(vec![10], (0..10u16).collect()).unwrap();
        let (header, src) = source_of(&Value::domain(a)).unwrap();
        assert_eq!(header.shape, vec![10]);
        let mut chunks = Vec::new();
        src.write(6, &mut |c| {
            chunks.push(c);
            true
        });
        assert_eq!(
            chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
            [6, 6, 6, 2]
        );
        let raw = NpyArray::new(DType::UInt8, vec![5], false, vec![1u8; 5]).unwrap();
        let (_, src) = source_of(&Value::domain(raw)).unwrap();
        let mut n = 0;
        src.write(2, &mut |_| {
            n += 1;
            n < 2
        });
        assert_eq!(n, 2, "stops when the sink says so");
        let e = source_of(&Value::domain(vec![1.0f64])).unwrap_err();
        assert!(e.to_string().contains("Vec<f64>"), "{e}");
        assert!(source_of(&Value::Int(3)).is_err());
    }
}
