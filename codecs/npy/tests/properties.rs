//! Property tests: round trips for every dtype, shape, order, byte order and header version, and
//! no panic on arbitrary or damaged input.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use dj_codec_npy::{
    ALL_DTYPES, ByteOrder, Complex, DType, NpyArray, NpyElement, NpyHeader, NpyVersion, header_len,
    parse_header,
};
use dj_core::value::Value;
use ndarray::{ArrayD, Axis, Slice};
use proptest::prelude::*;

/// A random array: dtype, shape (up to 4 dimensions of up to 5), order, and fitting bytes
/// (booleans as 0 or 1).
fn arb_array() -> impl Strategy<Value = NpyArray> {
    (
        prop::sample::select(ALL_DTYPES.to_vec()),
        prop::collection::vec(0usize..5, 0..4),
        any::<bool>(),
    )
        .prop_flat_map(|(dtype, shape, fortran)| {
            let n: usize = shape.iter().product::<usize>() * dtype.itemsize();
            prop::collection::vec(any::<u8>(), n).prop_map(move |mut data| {
                if dtype == DType::Bool {
                    data.iter_mut().for_each(|b| *b &= 1);
                }
                NpyArray::new(dtype, shape.clone(), fortran && shape.len() > 1, data).unwrap()
            })
        })
}

fn swapped(raw: &NpyArray) -> Vec<u8> {
    let unit = match raw.dtype() {
        DType::Complex64 => 4,
        DType::Complex128 => 8,
        d => d.itemsize(),
    };
    let mut data = raw.data().to_vec();
    for c in data.chunks_exact_mut(unit) {
        c.reverse();
    }
    data
}

/// Through `ndarray` and back must give the same bytes.
fn via_ndarray(raw: &NpyArray) -> NpyArray {
    fn go<T: NpyElement>(raw: &NpyArray) -> NpyArray {
        let a: ArrayD<T> = raw.to_array().unwrap();
        NpyArray::from_array(&a)
    }
    match raw.dtype() {
        DType::Bool => go::<bool>(raw),
        DType::Int8 => go::<i8>(raw),
        DType::Int16 => go::<i16>(raw),
        DType::Int32 => go::<i32>(raw),
        DType::Int64 => go::<i64>(raw),
        DType::UInt8 => go::<u8>(raw),
        DType::UInt16 => go::<u16>(raw),
        DType::UInt32 => go::<u32>(raw),
        DType::UInt64 => go::<u64>(raw),
        DType::Float32 => go::<f32>(raw),
        DType::Float64 => go::<f64>(raw),
        DType::Complex64 => go::<Complex<f32>>(raw),
        DType::Complex128 => go::<Complex<f64>>(raw),
    }
}

/// Exercise every reader on `bytes`; they may fail but must not panic, and whatever parses must
/// be consistent.
fn read_everything(bytes: &[u8]) {
    let _ = header_len(bytes);
    if let Ok(p) = parse_header(bytes) {
        assert!(p.data_offset <= bytes.len() as u64);
        let _ = p.header.data_len();
        let _ = p.header.row_len();
    }
    if let Ok(raw) = NpyArray::from_npy_bytes(bytes) {
        assert_eq!(raw.data().len() as u64, raw.header().data_len().unwrap());
        let again = NpyArray::from_npy_bytes(&raw.to_npy_bytes()).unwrap();
        assert_eq!(again, raw);
        let _ = via_ndarray(&raw);
    }
    let _ = NpyArray::from_npy(bytes::Bytes::copy_from_slice(bytes));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn files_round_trip(raw in arb_array()) {
        let file = raw.to_npy_bytes();
        let parsed = parse_header(&file).unwrap();
        prop_assert_eq!(parsed.data_offset % 64, 0);
        prop_assert_eq!(parsed.version, NpyVersion::V1);
        prop_assert_eq!(NpyArray::from_npy_bytes(&file).unwrap(), raw.clone());
        prop_assert_eq!(via_ndarray(&raw).to_npy_bytes().len(), file.len());
        // C-order data is the same bytes after a trip through ndarray; Fortran data may come
        // back in C order when the shape makes both orders the same.
        let back = via_ndarray(&raw);
        if !raw.fortran_order() {
            prop_assert_eq!(back.to_npy_bytes(), file.clone());
        }
        prop_assert_eq!(via_ndarray(&back), back.clone());

        // Big-endian and the other header versions read back to the same array.
        let mut header = raw.header();
        header.byte_order = ByteOrder::Big;
        let mut be = header.to_bytes();
        be.extend_from_slice(&swapped(&raw));
        prop_assert_eq!(NpyArray::from_npy_bytes(&be).unwrap(), raw.clone());
        for v in [NpyVersion::V2, NpyVersion::V3] {
            let mut f = raw.header().to_bytes_version(v).unwrap();
            f.extend_from_slice(raw.data());
            prop_assert_eq!(NpyArray::from_npy_bytes(&f).unwrap(), raw.clone());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        read_everything(&bytes);
    }

    #[test]
    fn arbitrary_headers_never_panic(
        version in 1u8..4,
        text in "[{}()\\[\\]':, 0-9a-zA-Z<>|=_\"\\-\n]{0,120}",
        tail in prop::collection::vec(any::<u8>(), 0..64),
        extra_len in 0u32..3,
    ) {
        let mut b = b"\x93NUMPY".to_vec();
        b.push(version);
        b.push(0);
        let len = text.len() as u32 + extra_len;
        if version == 1 {
            b.extend_from_slice(&(len as u16).to_le_bytes());
        } else {
            b.extend_from_slice(&len.to_le_bytes());
        }
        b.extend_from_slice(text.as_bytes());
        b.extend_from_slice(&tail);
        read_everything(&b);
    }

    #[test]
    fn damaged_files_never_panic(
        raw in arb_array(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut file = raw.to_npy_bytes();
        for (at, byte) in edits {
            let i = at.index(file.len());
            file[i] = byte;
        }
        if truncate {
            file.truncate(cut.index(file.len() + 1));
        }
        read_everything(&file);
    }

    #[test]
    fn sane_headers_parse_back(
        dtype in prop::sample::select(ALL_DTYPES.to_vec()),
        shape in prop::collection::vec(0usize..100_000, 0..8),
        fortran in any::<bool>(),
        big in any::<bool>(),
    ) {
        let header = NpyHeader {
            dtype,
            byte_order: if big { ByteOrder::Big } else { ByteOrder::Little },
            fortran_order: fortran,
            shape,
        };
        let bytes = header.to_bytes();
        prop_assert_eq!(bytes.len() % 64, 0);
        match parse_header(&bytes) {
            Ok(p) => {
                let mut want = header.clone();
                if dtype.itemsize() == 1 {
                    want.byte_order = ByteOrder::NATIVE;
                }
                prop_assert_eq!(p.header, want);
            }
            // Only when the byte size overflows.
            Err(e) => prop_assert!(header.data_len().is_err(), "{}", e),
        }
    }
}

/// Compare by bytes: random bytes make NaNs, which are not equal to themselves.
async fn slice_as<T: NpyElement>(
    r: &dj_codec_npy::NpyRef,
    raw: &NpyArray,
    rows: std::ops::Range<usize>,
) {
    let whole: ArrayD<T> = raw.to_array().unwrap();
    let want = whole.slice_axis(Axis(0), Slice::from(rows.clone()));
    let got = r.slice_rows::<T>(rows).await.unwrap();
    assert_eq!(
        NpyArray::from_array(&got),
        NpyArray::from_array(&want.as_standard_layout())
    );
}

async fn check_slice(r: &dj_codec_npy::NpyRef, raw: &NpyArray, rows: std::ops::Range<usize>) {
    match raw.dtype() {
        DType::Bool => slice_as::<bool>(r, raw, rows).await,
        DType::Int8 => slice_as::<i8>(r, raw, rows).await,
        DType::Int16 => slice_as::<i16>(r, raw, rows).await,
        DType::Int32 => slice_as::<i32>(r, raw, rows).await,
        DType::Int64 => slice_as::<i64>(r, raw, rows).await,
        DType::UInt8 => slice_as::<u8>(r, raw, rows).await,
        DType::UInt16 => slice_as::<u16>(r, raw, rows).await,
        DType::UInt32 => slice_as::<u32>(r, raw, rows).await,
        DType::UInt64 => slice_as::<u64>(r, raw, rows).await,
        DType::Float32 => slice_as::<f32>(r, raw, rows).await,
        DType::Float64 => slice_as::<f64>(r, raw, rows).await,
        DType::Complex64 => slice_as::<Complex<f32>>(r, raw, rows).await,
        DType::Complex128 => slice_as::<Complex<f64>>(r, raw, rows).await,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn codec_round_trips_and_slices(
        raw in arb_array(),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
        backend in prop::sample::select(common::BACKENDS.to_vec()),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let setup = common::Setup::new(backend);
            let ty = setup.resolve("<npy@>");
            let stored = ty.encode(Value::domain(raw.clone()), &setup.cx).await.unwrap();
            let fetched = ty.decode(stored, &setup.cx).await.unwrap();
            let r: &dj_codec_npy::NpyRef = fetched.as_domain().unwrap();
            assert_eq!(r.shape(), raw.shape());
            assert_eq!(r.load_raw().await.unwrap(), raw);
            r.verify().await.unwrap();
            if let Some(n) = r.len() {
                let (x, y) = (a.index(n + 1), b.index(n + 1));
                check_slice(r, &raw, x.min(y)..x.max(y)).await;
            }
        });
    }
}
