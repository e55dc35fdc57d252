//! Conversions between blob arrays and `ndarray` arrays (feature `ndarray`).
//!
//! Blob arrays are column-major (Fortran order), as MATLAB and DataJoint store them. Converting to
//! `ndarray` keeps the data where it is and gives an array with Fortran strides, so `a[[i, j]]` is
//! row `i`, column `j`, exactly as in numpy after `blob.unpack`. Converting from `ndarray` copies
//! once into Fortran order (no copy when the array is already Fortran-contiguous).
//!
//! ```
//! use dj_codec_blob::{decode, encode, Item};
//! use ndarray::{ArrayD, IxDyn, array};
//!
//! let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
//! let blob = encode(&Item::from(a.clone()))?;
//! let back = ArrayD::<f64>::try_from(&decode(&blob)?)?;
//! assert_eq!(back, a);
//! assert_eq!(back[IxDyn(&[1, 0])], 4.0);
//! # Ok::<(), dj_codec_blob::BlobError>(())
//! ```

use ndarray::{ArrayD, IxDyn, ShapeBuilder};

use crate::BlobError;
use crate::convert::describe;
use crate::item::{Array, ArrayData, Item};

/// The elements of `a` in Fortran order, moving the buffer when it already is.
fn fortran_vec<T: Clone>(a: ArrayD<T>) -> Vec<T> {
    let t = a.reversed_axes();
    let n = t.len();
    if t.is_standard_layout() {
        // Contiguous in Fortran order already: take the buffer, or the part the array covers.
        let (v, offset) = t.into_raw_vec_and_offset();
        let start = offset.unwrap_or(0);
        if start == 0 && v.len() == n {
            return v;
        }
        return v
            .get(start..start + n)
            .map(<[T]>::to_vec)
            .unwrap_or_default();
    }
    t.as_standard_layout()
        .into_owned()
        .into_raw_vec_and_offset()
        .0
}

macro_rules! ndarray_conv {
    ($($t:ty => $variant:ident),*) => {$(
        impl From<ArrayD<$t>> for Item {
            fn from(a: ArrayD<$t>) -> Self {
                let shape = a.shape().iter().map(|&d| d as u64).collect();
                Item::Array(Array { shape, data: ArrayData::$variant(fortran_vec(a)) })
            }
        }

        impl TryFrom<&Item> for ArrayD<$t> {
            type Error = BlobError;
            fn try_from(item: &Item) -> Result<Self, BlobError> {
                let Item::Array(Array { shape, data: ArrayData::$variant(v) }) = item else {
                    return Err(BlobError::Invalid {
                        message: format!("expected an array of {}, found {}", stringify!($t), describe(item)),
                    });
                };
                let dims: Vec<usize> = shape
                    .iter()
                    .map(|&d| usize::try_from(d))
                    .collect::<Result<_, _>>()
                    .map_err(|_| BlobError::Invalid { message: format!("shape {shape:?} too large") })?;
                ArrayD::from_shape_vec(IxDyn(&dims).f(), v.clone())
                    .map_err(|e| BlobError::Invalid { message: format!("shape {shape:?}: {e}") })
            }
        }
    )*};
}
ndarray_conv!(f64 => F64, f32 => F32, i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, i64 => I64, u64 => U64);

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, array};

    #[test]
    fn fortran_order_without_surprises() {
        let c = array![[1.0, 2.0], [3.0, 4.0]].into_dyn();
        let item = Item::from(c.clone());
        let Item::Array(a) = &item else { panic!() };
        assert_eq!(
            a.data,
            ArrayData::F64(vec![1.0, 3.0, 2.0, 4.0]),
            "stored column-major, as DataJoint"
        );
        let back = ArrayD::<f64>::try_from(&item).unwrap();
        assert_eq!(back, c);

        // A Fortran-ordered input and a transposed view give the same blob as their C copies.
        let f =
            Array3::<i32>::from_shape_fn((2, 3, 4).f(), |(i, j, k)| (i * 100 + j * 10 + k) as i32)
                .into_dyn();
        let c3 = f.as_standard_layout().into_owned();
        assert_eq!(Item::from(f.clone()), Item::from(c3.clone()));
        let t = c3.clone().reversed_axes();
        let back = ArrayD::<i32>::try_from(&Item::from(t.clone())).unwrap();
        assert_eq!(back, t);
        assert!(ArrayD::<f32>::try_from(&Item::from(c3.clone())).is_err());

        // A sliced view that starts inside a larger buffer.
        let big = ArrayD::from_shape_vec(IxDyn(&[4, 3]), (0..12).map(f64::from).collect()).unwrap();
        let tail = big.slice(ndarray::s![2.., ..]).to_owned().into_dyn();
        let back = ArrayD::<f64>::try_from(&Item::from(tail.clone())).unwrap();
        assert_eq!(back, tail);
    }
}
