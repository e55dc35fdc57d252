//! `<npy@>` end to end through `ResolvedType`, on the memory and file stores: DataJoint's metadata
//! and bytes, lazy decode, ranged reads, streamed uploads, and bad input.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{BACKENDS, Backend, Setup};
use dj_codec_npy::{DType, NpyArray, NpyCodec, NpyRef};
use dj_core::store::{StoreExt, StorePath};
use dj_core::value::Value;
use dj_layout::{TOKEN_ALPHABET, hash_blake3_base32};
use ndarray::{Array, ArrayD, IxDyn, ShapeBuilder, s};
use serde_json::json;

/// The array numpy wrote to `golden/float64.npy`.
fn sample() -> ArrayD<f64> {
    Array::from_shape_vec(IxDyn(&[2, 3]), vec![0.0, 0.25, -0.5, 0.75, 31.75, -32.0]).unwrap()
}

fn npy_ref(v: &Value) -> &NpyRef {
    v.as_domain::<NpyRef>().expect("decode gives an NpyRef")
}

async fn put(setup: &Setup, path: &str, bytes: Vec<u8>) {
    setup
        .store
        .put(&StorePath::parse(path).unwrap(), Bytes::from(bytes))
        .await
        .unwrap();
}

/// Decode DataJoint-style metadata (as Python would have stored it) into an `NpyRef`.
async fn decode(setup: &Setup, meta: serde_json::Value) -> NpyRef {
    let ty = setup.resolve("<npy@>");
    let v = ty.decode(Value::Json(meta), &setup.cx).await.unwrap();
    npy_ref(&v).clone()
}

#[tokio::test]
async fn metadata_and_bytes_match_datajoint_and_numpy() {
    for backend in BACKENDS {
        let setup = Setup::new(backend);
        let ty = setup.resolve("<npy@>");
        assert_eq!(ty.final_type.to_string(), "json");
        let stored = ty.encode(Value::domain(sample()), &setup.cx).await.unwrap();
        let json = stored.as_json().unwrap();
        let path = json["path"].as_str().unwrap().to_string();
        let token = path
            .strip_prefix("_schema/lab/recording/rec_id=1/waveform_")
            .and_then(|t| t.strip_suffix(".npy"))
            .unwrap_or_else(|| panic!("{path}"));
        assert_eq!(token.len(), 8, "{path}");
        assert!(token.bytes().all(|b| TOKEN_ALPHABET.contains(&b)), "{path}");

        let file = setup
            .store
            .get(&StorePath::parse(&path).unwrap())
            .await
            .unwrap();
        assert_eq!(&file[..], &common::golden("float64.npy")[..], "{backend:?}");
        let checksum = hash_blake3_base32(&file);
        assert_eq!(
            serde_json::to_string(json).unwrap(),
            format!(
                r#"{{"path":"{path}","store":"main","dtype":"float64","shape":[2,3],"checksum":"{checksum}"}}"#
            )
        );
        if let Some(dir) = &setup.dir {
            assert_eq!(
                std::fs::read(dir.path().join(&path)).unwrap(),
                common::golden("float64.npy")
            );
        }

        // Decoding does no I/O.
        setup.counts.reset();
        let fetched = ty.decode(stored.clone(), &setup.cx).await.unwrap();
        let r = npy_ref(&fetched);
        assert_eq!(setup.counts.reads(), 0, "decode read the store");
        assert_eq!(r.shape(), &[2, 3]);
        assert_eq!(r.dtype(), DType::Float64);
        assert_eq!((r.ndim(), r.len(), r.is_empty()), (2, Some(2), false));
        assert_eq!((r.size(), r.nbytes()), (6, 48));
        assert_eq!((r.path(), r.store()), (path.as_str(), Some("main")));
        assert_eq!(r.checksum(), Some(checksum.as_str()));
        assert_eq!(setup.counts.reads(), 0);

        assert_eq!(r.load::<f64>().await.unwrap(), sample());
        r.verify().await.unwrap();
        let header = r.read_header().await.unwrap();
        assert_eq!(header.data_offset, 128);
        assert_eq!(
            ty.referenced_paths(&stored),
            vec![dj_core::codec::StoredRef {
                path: path.clone(),
                store: Some("main".into())
            }]
        );
    }
}

#[tokio::test]
async fn every_dtype_round_trips_byte_for_byte() {
    let setup = Setup::new(Backend::Memory);
    let ty = setup.resolve("<npy@main>");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::golden_dir().join("manifest.json")).unwrap(),
    )
    .unwrap();
    let mut n = 0;
    for e in manifest.as_array().unwrap() {
        if e["big_endian"].as_bool().unwrap() || e["version"][0] != 1 {
            continue;
        }
        let name = e["file"].as_str().unwrap();
        let golden = common::golden(name);
        let raw = NpyArray::from_npy_bytes(&golden).unwrap();
        let stored = ty
            .encode(Value::domain(raw.clone()), &setup.cx)
            .await
            .unwrap();
        let json = stored.as_json().unwrap();
        assert_eq!(json["dtype"], e["dtype"], "{name}");
        assert_eq!(json["shape"], e["shape"], "{name}");
        let path = StorePath::parse(json["path"].as_str().unwrap()).unwrap();
        assert_eq!(
            &setup.store.get(&path).await.unwrap()[..],
            &golden[..],
            "{name}"
        );
        let fetched = ty.decode(stored, &setup.cx).await.unwrap();
        assert_eq!(npy_ref(&fetched).load_raw().await.unwrap(), raw, "{name}");
        n += 1;
    }
    assert_eq!(n, 18, "every little-endian version 1.0 golden file");
}

#[tokio::test]
async fn slice_rows_reads_only_the_rows_asked_for() {
    for backend in BACKENDS {
        let setup = Setup::new(backend);
        let ty = setup.resolve("<npy@>");
        let arr = Array::from_shape_vec(IxDyn(&[1000, 50]), (0..50_000u16).collect()).unwrap();
        let stored = ty
            .encode(Value::domain(arr.clone()), &setup.cx)
            .await
            .unwrap();
        let fetched = ty.decode(stored, &setup.cx).await.unwrap();
        let r = npy_ref(&fetched);

        setup.counts.reset();
        let rows = r.slice_rows::<u16>(10..13).await.unwrap();
        assert_eq!(rows, arr.slice(s![10..13, ..]).into_owned().into_dyn());
        // One ranged get for the header (up to 4 KiB), one for exactly 3 rows of 100 bytes.
        assert_eq!(setup.counts.gets(), 2, "{backend:?}");
        assert_eq!(setup.counts.ranged_gets(), 2, "{backend:?}");
        assert_eq!(setup.counts.heads(), 0, "{backend:?}");
        assert_eq!(setup.counts.bytes(), 4096 + 300, "{backend:?}");

        setup.counts.reset();
        let none = r.slice_rows::<u16>(1000..1000).await.unwrap();
        assert_eq!(none.shape(), &[0, 50]);
        assert_eq!(setup.counts.bytes(), 4096, "only the header");

        let last = r.slice_rows::<u16>(999..1000).await.unwrap();
        assert_eq!(last[[0, 49]], 49_999);

        for (a, b) in [(5, 1001), (7, 3)] {
            let e = r.slice_rows::<u16>(a..b).await.unwrap_err().to_string();
            assert!(e.contains("outside the array's 1000 rows"), "{e}");
        }
        let e = r.slice_rows::<i16>(0..1).await.unwrap_err().to_string();
        assert!(e.contains("holds uint16, not int16"), "{e}");
    }
}

#[tokio::test]
async fn fortran_order_is_kept_and_slices_fall_back_to_a_whole_read() {
    let setup = Setup::new(Backend::File);
    let ty = setup.resolve("<npy@>");
    let c = Array::from_shape_vec(IxDyn(&[4, 3]), (0..12i64).collect()).unwrap();
    let f = Array::from_shape_vec(IxDyn(&[4, 3]).f(), c.t().iter().copied().collect()).unwrap();
    assert_eq!(f, c);
    let stored = ty
        .encode(Value::domain(f.clone()), &setup.cx)
        .await
        .unwrap();
    let fetched = ty.decode(stored, &setup.cx).await.unwrap();
    let r = npy_ref(&fetched);
    let header = r.read_header().await.unwrap();
    assert!(header.header.fortran_order);
    assert_eq!(r.load::<i64>().await.unwrap(), c);

    setup.counts.reset();
    let rows = r.slice_rows::<i64>(1..3).await.unwrap();
    assert_eq!(rows, c.slice(s![1..3, ..]).into_owned().into_dyn());
    // Header probe plus the whole file (128 + 96 bytes).
    assert_eq!(setup.counts.bytes(), 224 + 224);
}

#[tokio::test]
async fn large_arrays_stream_through_multipart_uploads() {
    for backend in BACKENDS {
        let setup = Setup::new(backend);
        let codec = NpyCodec {
            stream_threshold: 64 * 1024,
            part_size: 16 * 1024,
        };
        let (_registry, ty) = setup.resolve_with("<npy@>", Arc::new(codec));
        let c = Array::from_shape_vec(IxDyn(&[1000, 100]), (0..100_000).map(f64::from).collect())
            .unwrap();
        let f = c.t().as_standard_layout().into_owned().reversed_axes();
        let mut strided = c.clone();
        strided.slice_collapse(s![.., ..;2]);
        assert!(!strided.is_standard_layout() && !strided.t().is_standard_layout());
        for (name, arr, expect_fortran) in [
            ("c", c.clone(), false),
            ("fortran", f.clone(), true),
            ("strided", strided.clone(), false),
        ] {
            setup.counts.reset();
            let stored = ty
                .encode(Value::domain(arr.clone()), &setup.cx)
                .await
                .unwrap();
            let json = stored.as_json().unwrap();
            let path = StorePath::parse(json["path"].as_str().unwrap()).unwrap();
            let file = setup.store.get(&path).await.unwrap();
            let want = NpyArray::from_array(&arr).to_npy_bytes();
            assert_eq!(&file[..], &want[..], "{backend:?} {name}");
            assert_eq!(json["checksum"], hash_blake3_base32(&want), "{name}");
            assert_eq!(setup.counts.multipart_uploads(), 1, "{name}");
            assert_eq!(setup.counts.puts(), 0, "{name}");
            let parts = want.len().div_ceil(16 * 1024);
            assert_eq!(setup.counts.parts(), parts, "{name}");

            let fetched = ty.decode(stored, &setup.cx).await.unwrap();
            let r = npy_ref(&fetched);
            assert_eq!(
                r.read_header().await.unwrap().header.fortran_order,
                expect_fortran
            );
            assert_eq!(r.load::<f64>().await.unwrap(), arr, "{name}");
            r.verify().await.unwrap();
        }
    }
}

#[tokio::test]
async fn zero_d_and_empty_arrays() {
    let setup = Setup::new(Backend::Memory);
    let ty = setup.resolve("<npy@>");
    let scalar = ArrayD::from_elem(IxDyn(&[]), 1.5f32);
    let stored = ty
        .encode(Value::domain(scalar.clone()), &setup.cx)
        .await
        .unwrap();
    assert_eq!(stored.as_json().unwrap()["shape"], json!([]));
    let fetched = ty.decode(stored, &setup.cx).await.unwrap();
    let r = npy_ref(&fetched);
    assert_eq!((r.ndim(), r.len(), r.size()), (0, None, 1));
    assert_eq!(r.load::<f32>().await.unwrap(), scalar);
    let e = r.slice_rows::<f32>(0..1).await.unwrap_err().to_string();
    assert!(e.contains("0-d array has no rows"), "{e}");

    let empty = ArrayD::<i64>::zeros(IxDyn(&[0, 3]));
    let stored = ty
        .encode(Value::domain(empty.clone()), &setup.cx)
        .await
        .unwrap();
    let path = stored.as_json().unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        &setup
            .store
            .get(&StorePath::parse(&path).unwrap())
            .await
            .unwrap()[..],
        &common::golden("int64_empty.npy")[..]
    );
    let fetched = ty.decode(stored, &setup.cx).await.unwrap();
    let r = npy_ref(&fetched);
    assert!(r.is_empty());
    assert_eq!(r.load::<i64>().await.unwrap(), empty);
    assert_eq!(r.slice_rows::<i64>(0..0).await.unwrap(), empty);
    r.verify().await.unwrap();
}

#[tokio::test]
async fn rows_written_by_datajoint_python_read_and_verify() {
    for backend in BACKENDS {
        let setup = Setup::new(backend);
        let path = "_schema/lab/recording/rec_id=7/waveform_PyThOn01.npy";
        put(&setup, path, common::golden("float64_be.npy")).await;
        // What DataJoint 2.3.5 stores for a big-endian float64 array: no checksum.
        let r = decode(
            &setup,
            json!({"path": path, "store": "main", "dtype": ">f8", "shape": [2, 3]}),
        )
        .await;
        assert_eq!(r.checksum(), None);
        assert_eq!(r.load::<f64>().await.unwrap(), sample());
        assert_eq!(
            r.slice_rows::<f64>(1..2).await.unwrap(),
            sample().slice(s![1..2, ..]).into_owned().into_dyn()
        );
        r.verify().await.unwrap();

        // `store` null: the attribute's store is used.
        let r = decode(
            &setup,
            json!({"path": path, "store": null, "dtype": ">f8", "shape": [2, 3]}),
        )
        .await;
        assert_eq!(r.load::<f64>().await.unwrap(), sample());
    }
}

#[tokio::test]
async fn partition_patterns_move_key_parts_in_front_of_the_schema() {
    let setup = Setup::with_spec(Backend::Memory, |spec| {
        spec.partition_pattern = Some("{rec_id}".into());
    });
    let ty = setup.resolve("<npy@>");
    let stored = ty.encode(Value::domain(sample()), &setup.cx).await.unwrap();
    let path = stored.as_json().unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        path.starts_with("_schema/rec_id=1/lab/recording/waveform_"),
        "{path}"
    );
}

#[tokio::test]
async fn bad_values_and_modes_are_refused_before_anything_is_written() {
    let setup = Setup::new(Backend::Memory);
    let err = dj_core::codec::ResolvedType::resolve(
        &"<npy>".parse().unwrap(),
        dj_core::registry::Registry::global(),
        &setup.config,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("<npy@>") && err.contains("object store"),
        "{err}"
    );

    let ty = setup.resolve("<npy@>");
    for v in [
        Value::Int(3),
        Value::from(b"\x93NUMPY".to_vec()),
        Value::domain(vec![1.0f64]),
        Value::domain(ndarray::array![1.0f64, 2.0]),
    ] {
        let err = ty.encode(v, &setup.cx).await.unwrap_err().to_string();
        assert!(
            err.contains("ArrayD<T>") && err.contains("attribute `waveform`"),
            "{err}"
        );
    }
    assert_eq!(setup.counts.puts(), 0);
    assert!(setup.store.list_all(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn damaged_missing_and_mismatched_files_name_their_path() {
    for backend in BACKENDS {
        let setup = Setup::new(backend);
        let meta = |path: &str, dtype: &str, shape: serde_json::Value| json!({"path": path, "store": "main", "dtype": dtype, "shape": shape});

        // Object dtype.
        let p = "_schema/lab/recording/rec_id=1/waveform_objectAA.npy";
        put(&setup, p, common::golden("bad_object.npy")).await;
        let r = decode(&setup, meta(p, "float64", json!([3]))).await;
        let e = r.load::<f64>().await.unwrap_err().to_string();
        assert!(e.contains("object arrays") && e.contains(p), "{e}");
        let e = r.read_header().await.unwrap_err().to_string();
        assert!(e.contains("object arrays") && e.contains(p), "{e}");

        // A pickle.
        let p = "_schema/lab/recording/rec_id=1/waveform_pickleAA.npy";
        put(&setup, p, common::golden("bad_pickle.npy")).await;
        let r = decode(&setup, meta(p, "float64", json!([3]))).await;
        let e = r.load::<f64>().await.unwrap_err().to_string();
        assert!(e.contains("pickle") && e.contains(p), "{e}");

        // Truncated.
        let p = "_schema/lab/recording/rec_id=1/waveform_truncAAA.npy";
        put(&setup, p, common::golden("bad_truncated.npy")).await;
        let r = decode(&setup, meta(p, "float64", json!([2, 2]))).await;
        for e in [
            r.load::<f64>().await.unwrap_err(),
            r.verify().await.unwrap_err(),
            r.slice_rows::<f64>(1..2).await.unwrap_err(),
        ] {
            assert!(matches!(e, dj_core::Error::Integrity { .. }), "{e}");
            let e = e.to_string();
            assert!(e.contains("truncated") && e.contains(p), "{e}");
        }
        assert!(
            r.slice_rows::<f64>(0..1).await.is_ok(),
            "intact rows still read"
        );

        // Empty file.
        let p = "_schema/lab/recording/rec_id=1/waveform_emptyAAA.npy";
        put(&setup, p, Vec::new()).await;
        let r = decode(&setup, meta(p, "float64", json!([2, 2]))).await;
        let e = r.read_header().await.unwrap_err().to_string();
        assert!(e.contains("truncated") && e.contains(p), "{e}");
        let e = r.load::<f64>().await.unwrap_err().to_string();
        assert!(e.contains("truncated") && e.contains(p), "{e}");

        // Header and metadata disagree.
        let p = "_schema/lab/recording/rec_id=1/waveform_mismatch.npy";
        put(&setup, p, common::golden("float64.npy")).await;
        let r = decode(&setup, meta(p, "float64", json!([3, 2]))).await;
        for e in [
            r.load::<f64>().await.unwrap_err(),
            r.verify().await.unwrap_err(),
            r.slice_rows::<f64>(0..1).await.unwrap_err(),
        ] {
            assert!(matches!(e, dj_core::Error::Integrity { .. }), "{e}");
            let e = e.to_string();
            assert!(
                e.contains("shape") && e.contains("[2, 3]") && e.contains(p),
                "{e}"
            );
        }
        let r = decode(&setup, meta(p, "int64", json!([2, 3]))).await;
        let e = r.load::<i64>().await.unwrap_err().to_string();
        assert!(e.contains("dtype is float64") && e.contains(p), "{e}");
        let r = decode(&setup, meta(p, "float64", json!([2, 3]))).await;
        let e = r.load::<f32>().await.unwrap_err().to_string();
        assert!(e.contains("holds float64, not float32"), "{e}");

        // Trailing bytes.
        let p = "_schema/lab/recording/rec_id=1/waveform_trailing.npy";
        let mut long = common::golden("float64.npy");
        long.extend_from_slice(b"junk");
        put(&setup, p, long).await;
        let r = decode(&setup, meta(p, "float64", json!([2, 3]))).await;
        let e = r.verify().await.unwrap_err().to_string();
        assert!(e.contains("52 bytes") && e.contains(p), "{e}");

        // Missing.
        let p = "_schema/lab/recording/rec_id=1/waveform_missing.npy";
        let r = decode(&setup, meta(p, "float64", json!([2, 3]))).await;
        for e in [
            r.load::<f64>().await.unwrap_err(),
            r.verify().await.unwrap_err(),
            r.read_header().await.unwrap_err(),
            r.slice_rows::<f64>(0..1).await.unwrap_err(),
        ] {
            assert!(e.is_not_found(), "{e}");
            assert!(e.to_string().contains(p), "{e}");
        }
    }
}

#[tokio::test]
async fn checksums_catch_silent_corruption() {
    for backend in BACKENDS {
        let setup = Setup::new(backend);
        let ty = setup.resolve("<npy@>");
        let stored = ty.encode(Value::domain(sample()), &setup.cx).await.unwrap();
        let path = stored.as_json().unwrap()["path"]
            .as_str()
            .unwrap()
            .to_string();
        let mut bytes = common::golden("float64.npy");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        put(&setup, &path, bytes).await;
        let fetched = ty.decode(stored, &setup.cx).await.unwrap();
        let r = npy_ref(&fetched);
        for e in [
            r.load::<f64>().await.unwrap_err(),
            r.verify().await.unwrap_err(),
            r.load_raw().await.unwrap_err(),
        ] {
            assert!(matches!(e, dj_core::Error::Integrity { .. }), "{e}");
            let e = e.to_string();
            assert!(e.contains("checksum") && e.contains(&path), "{e}");
        }
        // A ranged read cannot see it (documented); the header still matches.
        assert!(r.slice_rows::<f64>(0..1).await.is_ok());
    }
}

#[tokio::test]
async fn headers_longer_than_one_probe_are_read_in_two_requests() {
    let setup = Setup::new(Backend::Memory);
    // A version 2.0 header padded past 4 KiB, as another writer might produce.
    let text = format!(
        "{{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }}{}\n",
        " ".repeat(6000)
    );
    let mut file = b"\x93NUMPY\x02\x00".to_vec();
    file.extend_from_slice(&(text.len() as u32).to_le_bytes());
    file.extend_from_slice(text.as_bytes());
    for v in 0..6i32 {
        file.extend_from_slice(&v.to_le_bytes());
    }
    let p = "_schema/lab/recording/rec_id=1/waveform_longhead.npy";
    put(&setup, p, file.clone()).await;
    let r = decode(
        &setup,
        json!({"path": p, "store": "main", "dtype": "int32", "shape": [3, 2]}),
    )
    .await;
    setup.counts.reset();
    let header = r.read_header().await.unwrap();
    assert_eq!(header.data_offset, 12 + text.len() as u64);
    assert_eq!(setup.counts.ranged_gets(), 2);
    assert_eq!(setup.counts.bytes(), header.data_offset);
    assert_eq!(
        r.slice_rows::<i32>(2..3).await.unwrap(),
        ndarray::array![[4, 5]].into_dyn()
    );
    r.verify().await.unwrap();
}
