//! Malformed input gives errors with offsets, never panics; every item round-trips.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use dj_codec_blob::*;
use proptest::prelude::*;

#[test]
fn malformed_blobs_name_the_offset_and_the_problem() {
    let e = decode(b"xyz\0\xff").unwrap_err();
    assert!(matches!(e, BlobError::UnknownHeader { .. }), "{e}");
    assert!(e.to_string().contains("unknown blob header"), "{e}");

    let e = decode(b"dj0\0").unwrap_err();
    assert_eq!(
        e.to_string(),
        "truncated blob at byte 4: expected an item code (1 bytes), 0 left"
    );

    let e = decode(b"dj0\0\xff\x00").unwrap_err();
    assert_eq!(
        e.to_string(),
        "1 trailing bytes after the blob's item, at byte 5"
    );

    let e = decode(b"dj0\0\x99").unwrap_err();
    assert_eq!(e.to_string(), "unknown item code 0x99 at byte 4");

    // A string claiming 2^60 bytes must not allocate; it is a truncation.
    let mut b = b"dj0\0\x05".to_vec();
    b.extend_from_slice(&(1u64 << 60).to_le_bytes());
    let e = decode(&b).unwrap_err();
    assert!(e.to_string().starts_with("truncated blob at byte 5"), "{e}");

    // A list whose element length prefix lies.
    let good = encode(&Item::List(vec![Item::from(5_i64)])).unwrap();
    let mut bad = good.clone();
    bad[4 + 1 + 8] = 9; // the element's u64 length
    let e = decode(&bad).unwrap_err();
    assert!(e.to_string().contains("at byte 13"), "{e}");

    // Compressed blob whose header lies about its size.
    let big = encode_with(
        &Item::from(vec![0.0f64; 2000]),
        EncodeOptions {
            compression: Compression::Compat,
        },
    )
    .unwrap();
    assert_eq!(&big[..6], b"ZL123\0");
    let mut lying = big.clone();
    lying[6] ^= 1;
    let e = decode(&lying).unwrap_err();
    assert!(matches!(e, BlobError::SizeMismatch { .. }), "{e}");
    let e = decode(&big[..big.len() - 4]).unwrap_err();
    assert!(
        matches!(e, BlobError::Zlib { .. } | BlobError::SizeMismatch { .. }),
        "{e}"
    );

    // A complex flag on a datetime64 array is refused (DataJoint cannot read it either).
    let mut b = b"dj0\0A".to_vec();
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&1u64.to_le_bytes());
    b.extend_from_slice(&65539u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&0i64.to_le_bytes());
    let e = decode(&b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported at byte 5: complex datetime64 arrays"
    );

    // A compressed blob declaring an absurd size is refused by the size limit before anything
    // is allocated, and without the limit it is a mismatch, not an allocation.
    let mut lie = b"ZL123\0".to_vec();
    lie.extend_from_slice(&(1u64 << 50).to_le_bytes());
    lie.extend_from_slice(&big[14..]);
    let e = decode(&lie).unwrap_err();
    assert!(
        matches!(e, BlobError::TooLarge { declared, limit } if declared == 1 << 50 && limit == DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE),
        "{e}"
    );
    let unlimited = DecodeOptions {
        max_decompressed_size: u64::MAX,
        ..DecodeOptions::default()
    };
    let e = decode_with(&lie, unlimited).unwrap_err();
    assert!(
        matches!(e, BlobError::SizeMismatch { expected, .. } if expected == 1 << 50),
        "{e}"
    );

    // MATLAB sparse arrays are refused, not misread.
    let e = decode(b"mYm\0P").unwrap_err();
    assert_eq!(e.to_string(), "unsupported at byte 4: MATLAB sparse arrays");
}

#[test]
fn legacy_32bit_dims() {
    // A 1x1 double 2.0 with 32-bit dims, as old MATLAB mYm wrote it.
    let mut b = b"mYm\0A".to_vec();
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&6u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&2.0f64.to_le_bytes());
    assert!(decode(&b).is_err());
    let item = decode_with(
        &b,
        DecodeOptions {
            legacy_32bit_dims: true,
            ..DecodeOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        item,
        Item::Array(Array::new(vec![1, 1], ArrayData::F64(vec![2.0])).unwrap())
    );
}

#[test]
fn header_follows_datajoints_rule() {
    let arr = Item::from(vec![1.0f64, 2.0]);
    assert_eq!(&encode(&arr).unwrap()[..4], b"mYm\0");
    let cell = Item::Cell(CellArray {
        shape: vec![1, 1],
        items: vec![arr.clone()],
    });
    assert_eq!(&encode(&cell).unwrap()[..4], b"mYm\0");
    let scalar = Item::Array(Array::new(vec![], ArrayData::F64(vec![3.5])).unwrap());
    assert_eq!(&encode(&scalar).unwrap()[..4], b"dj0\0");
    let nested = Item::Cell(CellArray {
        shape: vec![1, 1],
        items: vec![Item::from("x")],
    });
    assert_eq!(&encode(&nested).unwrap()[..4], b"dj0\0");
}

#[test]
fn fast_mode_skips_incompressible_data_and_compresses_the_rest() {
    let mut x = 0x1234_5678_u64;
    let noise: Vec<f64> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f64::from_bits((x >> 12) | 0x3ff0_0000_0000_0000)
        })
        .collect();
    let blob = encode(&Item::from(noise.clone())).unwrap();
    assert_eq!(
        &blob[..4],
        b"mYm\0",
        "random floats stay uncompressed in fast mode"
    );
    let zeros = encode(&Item::from(vec![0.0f64; 100_000])).unwrap();
    assert_eq!(&zeros[..6], b"ZL123\0");
    assert!(zeros.len() < 10_000);
    assert_eq!(decode(&zeros).unwrap(), Item::from(vec![0.0f64; 100_000]));
    let none = encode_with(
        &Item::from(vec![0.0f64; 1000]),
        EncodeOptions {
            compression: Compression::None,
        },
    )
    .unwrap();
    assert_eq!(&none[..4], b"mYm\0");
}

#[test]
fn encode_into_reuses_the_buffer_and_writes_the_same_bytes() {
    let items = [
        Item::from(vec![0.0f64; 5000]),
        Item::from("short"),
        Item::from((0..3000).map(f64::from).collect::<Vec<_>>()),
    ];
    let mut out = Vec::new();
    for compression in [Compression::Compat, Compression::Fast, Compression::None] {
        let opts = EncodeOptions { compression };
        for item in &items {
            encode_into(item, opts, &mut out).unwrap();
            assert_eq!(out, encode_with(item, opts).unwrap());
            assert_eq!(&decode(&out).unwrap(), item);
        }
    }
    assert!(
        out.capacity() >= 5000 * 8,
        "the buffer keeps its allocation"
    );
}

fn leaf() -> impl Strategy<Value = Item> {
    prop_oneof![
        Just(Item::None),
        any::<bool>().prop_map(Item::Bool),
        any::<i64>().prop_map(Item::from),
        any::<i128>().prop_map(|i| Item::Int(PyInt::from(i))),
        any::<f64>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(Item::Float),
        (any::<f64>(), any::<f64>())
            .prop_filter("no NaN", |(a, b)| !a.is_nan() && !b.is_nan())
            .prop_map(|(a, b)| Item::Complex(a, b)),
        "\\PC{0,12}".prop_map(Item::Str),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(Item::Bytes),
        "-?[0-9]{1,8}\\.[0-9]{0,4}".prop_map(Item::Decimal),
        (any::<i32>(), any::<i64>())
            .prop_map(|(date, time)| Item::Temporal(Temporal { date, time })),
        any::<u128>().prop_map(|u| Item::Uuid(uuid::Uuid::from_u128(u))),
        proptest::collection::vec(any::<f64>().prop_filter("no NaN", |f| !f.is_nan()), 0..20)
            .prop_map(Item::from),
        (1u64..4, 1u64..4).prop_flat_map(|(r, c)| proptest::collection::vec(
            any::<i32>(),
            (r * c) as usize
        )
        .prop_map(move |v| Item::Array(Array::new(vec![r, c], ArrayData::I32(v)).unwrap()))),
        proptest::collection::vec(any::<i64>(), 0..5).prop_map(|t| Item::Array(
            Array::new(
                vec![t.len() as u64],
                ArrayData::DateTime64 { unit: 8, ticks: t }
            )
            .unwrap()
        )),
        proptest::collection::vec(any::<bool>(), 0..9).prop_map(|b| {
            let n = b.len() as u64;
            Item::Array(
                Array::new(
                    vec![n],
                    ArrayData::Bool(b.into_iter().map(u8::from).collect()),
                )
                .unwrap(),
            )
        }),
    ]
}

/// A shape of up to 3 dimensions (sometimes 0-d, sometimes empty) and its element count.
fn shape() -> impl Strategy<Value = (Vec<u64>, usize)> {
    proptest::collection::vec(0u64..4, 0..4).prop_map(|s| {
        let n = s.iter().product::<u64>() as usize;
        (s, n)
    })
}

fn no_nan() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan())
}

/// Numeric array data of every class, `n` elements.
fn numeric(n: usize) -> impl Strategy<Value = ArrayData> {
    use proptest::collection::vec;
    prop_oneof![
        vec(0u8..2, n).prop_map(ArrayData::Bool),
        vec(any::<u16>(), n).prop_map(ArrayData::Char),
        vec(any::<i8>(), n).prop_map(ArrayData::I8),
        vec(any::<u8>(), n).prop_map(ArrayData::U8),
        vec(any::<i16>(), n).prop_map(ArrayData::I16),
        vec(any::<u16>(), n).prop_map(ArrayData::U16),
        vec(any::<i32>(), n).prop_map(ArrayData::I32),
        vec(any::<u32>(), n).prop_map(ArrayData::U32),
        vec(any::<i64>(), n).prop_map(ArrayData::I64),
        vec(any::<u64>(), n).prop_map(ArrayData::U64),
        vec(any::<f32>().prop_filter("no NaN", |f| !f.is_nan()), n).prop_map(ArrayData::F32),
        vec(no_nan(), n).prop_map(ArrayData::F64),
        (vec(no_nan(), n), vec(no_nan(), n)).prop_map(|(re, im)| ArrayData::Complex(
            Box::new(ArrayData::F64(re)),
            Box::new(ArrayData::F64(im))
        )),
        (vec(any::<i16>(), n), vec(any::<i16>(), n)).prop_map(|(re, im)| ArrayData::Complex(
            Box::new(ArrayData::I16(re)),
            Box::new(ArrayData::I16(im))
        )),
        (0u8..13, vec(any::<i64>(), n))
            .prop_map(|(unit, ticks)| ArrayData::DateTime64 { unit, ticks }),
    ]
}

fn array() -> impl Strategy<Value = Item> {
    shape().prop_flat_map(|(s, n)| {
        numeric(n).prop_map(move |data| Item::Array(Array::new(s.clone(), data).unwrap()))
    })
}

fn record() -> impl Strategy<Value = Item> {
    (shape(), 1usize..4).prop_flat_map(|((s, n), k)| {
        proptest::collection::vec(numeric(n), k).prop_map(move |cols| {
            Item::Record(RecordArray {
                fields: (0..cols.len()).map(|i| format!("f{i}")).collect(),
                columns: cols
                    .into_iter()
                    .map(|d| Item::Array(Array::new(s.clone(), d).unwrap()))
                    .collect(),
            })
        })
    })
}

fn big_int() -> impl Strategy<Value = Item> {
    proptest::collection::vec(any::<u8>(), 1..40).prop_map(|b| Item::Int(PyInt::from_le_bytes(b)))
}

fn tree() -> impl Strategy<Value = Item> {
    prop_oneof![leaf(), array(), record(), big_int()].prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Item::Set),
            (shape(), proptest::collection::vec(inner.clone(), 27)).prop_map(|((s, n), mut v)| {
                v.truncate(n);
                Item::Cell(CellArray { shape: s, items: v })
            }),
            (shape(), proptest::collection::vec(inner.clone(), 27)).prop_map(|((s, n), mut v)| {
                v.truncate(n);
                Item::Array(Array::new(s, ArrayData::Object(v)).unwrap())
            }),
            (
                shape(),
                proptest::collection::vec((inner.clone(), inner.clone()), 27)
            )
                .prop_map(|((s, n), mut v)| {
                    v.truncate(n);
                    Item::Struct(StructArray {
                        shape: s,
                        fields: vec!["x".into(), "why".into()],
                        elements: v.into_iter().map(|(a, b)| vec![a, b]).collect(),
                    })
                }),
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Item::List),
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Item::Tuple),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Item::Dict),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|v| {
                let n = v.len() as u64;
                Item::Cell(CellArray {
                    shape: vec![1, n],
                    items: v,
                })
            }),
            proptest::collection::vec(inner.clone(), 1..4).prop_map(|v| {
                let n = v.len() as u64;
                Item::Array(Array::new(vec![n], ArrayData::Object(v)).unwrap())
            }),
            (inner.clone(), inner).prop_map(|(a, b)| Item::Struct(StructArray {
                shape: vec![1, 1],
                fields: vec!["a".into(), "b".into()],
                elements: vec![vec![a, b]],
            })),
        ]
    })
}

proptest! {
    #[test]
    fn every_item_round_trips_in_every_mode(item in tree()) {
        for compression in [Compression::Compat, Compression::Fast, Compression::None] {
            let blob = encode_with(&item, EncodeOptions { compression }).unwrap();
            prop_assert_eq!(decode(&blob).unwrap(), item.clone());
        }
    }

    #[test]
    fn int_text_matches_i128(v in any::<i128>(), extra in 0usize..20) {
        let mut bytes = PyInt::from(v).as_le_bytes().to_vec();
        // Non-minimal (sign-extended) encodings print the same.
        bytes.resize(bytes.len() + extra, if v < 0 { 0xFF } else { 0 });
        prop_assert_eq!(PyInt::from_le_bytes(bytes).to_string(), v.to_string());
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..200), header in 0usize..3) {
        let prefix: &[u8] = [&b"mYm\0"[..], b"dj0\0", b"ZL123\0"][header];
        let mut b = prefix.to_vec();
        b.append(&mut bytes);
        let _ = decode(&b);
        let _ = decode_with(&b, DecodeOptions { legacy_32bit_dims: true, ..DecodeOptions::default() });
    }

    #[test]
    fn truncations_of_valid_blobs_are_errors(item in tree(), cut in 0.0f64..1.0) {
        let blob = encode_with(&item, EncodeOptions { compression: Compression::None }).unwrap();
        let n = ((blob.len() as f64) * cut) as usize;
        if n < blob.len() {
            prop_assert!(decode(&blob[..n]).is_err());
        }
    }
}
