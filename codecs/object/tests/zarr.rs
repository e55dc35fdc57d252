//! Zarr arrays in folder objects through zarrs, without a database: write a chunked 3-D array
//! into a [`FolderWriter`] through [`ZarrWriteStore`], finish the folder, then read one chunk back
//! through [`ZarrReadStore`] over an [`ObjectRef`], counting the bytes the store returns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use bytes::Bytes;
use dj_codec_object::zarr::zarrs::array::{Array, ArrayBuilder, ArraySubset, data_type};
use dj_codec_object::zarr::zarrs::storage::byte_range::ByteRange;
use dj_codec_object::zarr::zarrs::storage::{
    AsyncListableStorageTraits, AsyncReadableStorageTraits, AsyncWritableStorageTraits, StoreKey,
    StorePrefix,
};
use dj_codec_object::zarr::{ZarrReadStore, ZarrWriteStore};
use dj_core::store::{Store, StoreExt, StorePath};
use dj_object::{FolderWriter, ObjectRef};
use dj_testkit::{CountingStore, Fault, FaultyStore};
use futures::stream::TryStreamExt;

const N: u64 = 64;
const C: u64 = 16;
const CHUNK_BYTES: u64 = C * C * C * 4;

/// The value at `(x, y, z)`; exact in `f32`.
fn value(x: u64, y: u64, z: u64) -> f32 {
    ((x * N * N + y * N + z) as f32) * 0.5 - 1000.0
}

/// The elements of chunk `(cx, cy, cz)` in C order.
fn chunk_values(cx: u64, cy: u64, cz: u64) -> Vec<f32> {
    let mut out = Vec::with_capacity((C * C * C) as usize);
    for i in 0..C {
        for j in 0..C {
            for k in 0..C {
                out.push(value(cx * C + i, cy * C + j, cz * C + k));
            }
        }
    }
    out
}

fn key(s: &str) -> StoreKey {
    StoreKey::new(s).unwrap()
}

fn folder_key() -> StorePath {
    StorePath::parse("_schema/lab/scan/scan_id=1/volume_Tok3n.zarr").unwrap()
}

/// Write the 64³ float32 array with 16³ chunks into `writer`, chunk by chunk.
async fn write_volume(writer: &FolderWriter) {
    let store = Arc::new(ZarrWriteStore::new(writer.clone()));
    let array = ArrayBuilder::new(vec![N, N, N], vec![C, C, C], data_type::float32(), f32::NAN)
        .dimension_names(Some(["z", "y", "x"]))
        .build(store, "/")
        .unwrap();
    array.async_store_metadata().await.unwrap();
    for cx in 0..N / C {
        for cy in 0..N / C {
            for cz in 0..N / C {
                array
                    .async_store_chunk(&[cx, cy, cz], chunk_values(cx, cy, cz))
                    .await
                    .unwrap();
            }
        }
    }
}

async fn round_trip(label: &str, inner: Arc<dyn Store>) {
    let counting = Arc::new(CountingStore::new(inner));
    let store: Arc<dyn Store> = counting.clone();
    let writer = FolderWriter::new(Arc::clone(&store), folder_key());
    write_volume(&writer).await;
    let meta = writer.finish(Some(".zarr".into())).await.unwrap();
    assert!(meta.is_dir);
    assert_eq!(meta.item_count, Some(1 + 4 * 4 * 4), "{label}");
    assert!(meta.size.unwrap() > 64 * CHUNK_BYTES, "{label}");

    let obj = ObjectRef::new(meta, Arc::clone(&store));
    obj.verify().await.unwrap();
    let metadata_size = store
        .head(&folder_key().join("zarr.json").unwrap())
        .await
        .unwrap()
        .size;
    let chunk_size = store
        .head(&folder_key().join("c/1/2/3").unwrap())
        .await
        .unwrap()
        .size;
    assert_eq!(chunk_size, CHUNK_BYTES, "{label}: uncompressed chunk");

    counting.reset();
    let array = Array::async_open(Arc::new(ZarrReadStore::new(obj.clone()).unwrap()), "/")
        .await
        .unwrap();
    assert_eq!(array.shape(), &[N, N, N]);
    let chunk: Vec<f32> = array.async_retrieve_chunk(&[1, 2, 3]).await.unwrap();
    assert_eq!(chunk, chunk_values(1, 2, 3), "{label}: chunk values");
    let fetched = counting.bytes();
    eprintln!(
        "{label}: fetched {fetched} bytes in {} gets (chunk {chunk_size}, zarr.json {metadata_size})",
        counting.gets()
    );
    assert!(
        fetched < 2 * chunk_size + metadata_size,
        "{label}: fetched {fetched} bytes for a {chunk_size}-byte chunk"
    );
    assert_eq!(fetched, chunk_size + metadata_size, "{label}");

    // A subset inside one chunk reads ranges of that chunk, not all of it.
    counting.reset();
    let subset = ArraySubset::new_with_ranges(&[17..19, 40..41, 60..64]);
    let part: Vec<f32> = array.async_retrieve_array_subset(&subset).await.unwrap();
    let mut expect = Vec::new();
    for x in 17..19 {
        for z in 60..64 {
            expect.push(value(x, 40, z));
        }
    }
    assert_eq!(part, expect, "{label}: subset values");
    eprintln!(
        "{label}: subset of 8 values: fetched {} bytes in {} gets",
        counting.bytes(),
        counting.gets()
    );
    // zarrs decodes uncompressed chunks partially: only the runs asked for are fetched.
    assert!(counting.bytes() < 1024, "{label}: subset read");

    // A subset across chunk boundaries.
    let subset = ArraySubset::new_with_ranges(&[14..18, 0..1, 30..34]);
    let part: Vec<f32> = array.async_retrieve_array_subset(&subset).await.unwrap();
    let mut expect = Vec::new();
    for x in 14..18 {
        for z in 30..34 {
            expect.push(value(x, 0, z));
        }
    }
    assert_eq!(part, expect, "{label}: subset across chunks");
}

#[tokio::test]
async fn one_chunk_is_read_lazily_from_a_memory_store() {
    round_trip("memory", dj_store_memory::memory_store("main")).await;
}

#[tokio::test]
async fn one_chunk_is_read_lazily_from_a_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dj_store_file::FileStore::open("local", dir.path()).unwrap();
    round_trip("file", store).await;
}

#[tokio::test]
async fn erased_chunks_are_forgotten_and_read_as_the_fill_value() {
    let store = dj_store_memory::memory_store("main");
    let writer = FolderWriter::new(Arc::clone(&store), folder_key());
    write_volume(&writer).await;
    let zarr = ZarrWriteStore::new(writer.clone());
    zarr.erase(&key("c/0/0/1")).await.unwrap();
    zarr.erase(&key("c/9/9/9")).await.unwrap(); // absent: fine
    zarr.erase_prefix(&StorePrefix::new("c/3/").unwrap())
        .await
        .unwrap();
    let meta = writer.finish(None).await.unwrap();
    assert_eq!(meta.item_count, Some(1 + 64 - 1 - 16));
    assert!(
        !store
            .exists(&folder_key().join("c/0/0/1").unwrap())
            .await
            .unwrap()
    );
    assert!(
        !store
            .exists(&folder_key().join("c/3/0/0").unwrap())
            .await
            .unwrap()
    );

    let obj = ObjectRef::new(meta, store);
    obj.verify().await.unwrap();
    let array = Array::async_open(Arc::new(ZarrReadStore::new(obj).unwrap()), "/")
        .await
        .unwrap();
    let gone: Vec<f32> = array.async_retrieve_chunk(&[0, 0, 1]).await.unwrap();
    assert!(gone.iter().all(|v| v.is_nan()));
    let kept: Vec<f32> = array.async_retrieve_chunk(&[0, 0, 2]).await.unwrap();
    assert_eq!(kept, chunk_values(0, 0, 2));
}

#[tokio::test]
async fn partial_writes_across_chunks_go_through_the_folder() {
    let store = dj_store_memory::memory_store("main");
    let writer = FolderWriter::new(Arc::clone(&store), folder_key());
    let zarr = Arc::new(ZarrWriteStore::new(writer.clone()));
    let array = ArrayBuilder::new(vec![8, 8], vec![4, 4], data_type::int32(), 0i32)
        .build(zarr, "/")
        .unwrap();
    array.async_store_metadata().await.unwrap();
    // Rows 2..6, columns 3..5: touches all four chunks, each only in part.
    let subset = ArraySubset::new_with_ranges(&[2..6, 3..5]);
    let data: Vec<i32> = (0..8).collect();
    array
        .async_store_array_subset(&subset, data.clone())
        .await
        .unwrap();
    let meta = writer.finish(None).await.unwrap();
    assert_eq!(meta.item_count, Some(5));

    let obj = ObjectRef::new(meta, store);
    let array = Array::async_open(Arc::new(ZarrReadStore::new(obj).unwrap()), "/")
        .await
        .unwrap();
    let all: Vec<i32> = array
        .async_retrieve_array_subset(&ArraySubset::new_with_shape(vec![8, 8]))
        .await
        .unwrap();
    let mut expect = vec![0i32; 64];
    let mut it = data.into_iter();
    for r in 2..6 {
        for c in 3..5 {
            expect[r * 8 + c] = it.next().unwrap();
        }
    }
    assert_eq!(all, expect);
}

#[tokio::test]
async fn raw_reads_sizes_and_listings() {
    let store = dj_store_memory::memory_store("main");
    let writer = FolderWriter::new(Arc::clone(&store), folder_key());
    writer
        .put("zarr.json", Bytes::from_static(b"{\"zarr_format\":3}"))
        .await
        .unwrap();
    writer
        .put("a/c/0", Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    writer
        .put("a/c/1", Bytes::from_static(b"xy"))
        .await
        .unwrap();
    writer
        .put("b/zarr.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();

    let w = ZarrWriteStore::new(writer.clone());
    let meta = writer.finish(None).await.unwrap();
    let r = ZarrReadStore::new(ObjectRef::new(meta, store)).unwrap();
    assert!(r.supports_get_partial());

    for (label, listed) in [
        ("write", w.list_dir(&StorePrefix::root()).await.unwrap()),
        ("read", r.list_dir(&StorePrefix::root()).await.unwrap()),
    ] {
        assert_eq!(listed.keys(), &vec![key("zarr.json")], "{label}");
        let prefixes: Vec<&str> = listed.prefixes().iter().map(|p| p.as_str()).collect();
        assert_eq!(prefixes, ["a/", "b/"], "{label}");
    }
    let a = StorePrefix::new("a/").unwrap();
    assert_eq!(
        r.list_prefix(&a).await.unwrap(),
        [key("a/c/0"), key("a/c/1")]
    );
    assert_eq!(
        w.list_prefix(&a).await.unwrap(),
        [key("a/c/0"), key("a/c/1")]
    );
    assert_eq!(r.list().await.unwrap().len(), 4);
    assert_eq!(r.size_prefix(&a).await.unwrap(), 12);
    assert_eq!(w.size_prefix(&a).await.unwrap(), 12);
    let a_c = r
        .list_dir(&StorePrefix::new("a/c/").unwrap())
        .await
        .unwrap();
    assert_eq!(a_c.keys(), &vec![key("a/c/0"), key("a/c/1")]);

    let k = key("a/c/0");
    assert_eq!(r.size_key(&k).await.unwrap(), Some(10));
    assert_eq!(r.size_key(&key("nope")).await.unwrap(), None);
    assert_eq!(r.get(&key("nope")).await.unwrap(), None);
    assert_eq!(&r.get(&k).await.unwrap().unwrap()[..], b"0123456789");
    assert_eq!(
        &w.get_partial(&k, ByteRange::FromStart(2, Some(3)))
            .await
            .unwrap()
            .unwrap()[..],
        b"234"
    );
    let parts: Vec<Bytes> = r
        .get_partial_many(
            &k,
            Box::new(
                [
                    ByteRange::FromStart(0, Some(2)),
                    ByteRange::FromStart(7, None),
                    ByteRange::Suffix(4),
                    ByteRange::FromStart(0, None),
                ]
                .into_iter(),
            ),
        )
        .await
        .unwrap()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let parts: Vec<&[u8]> = parts.iter().map(|b| &b[..]).collect();
    assert_eq!(
        parts,
        [&b"01"[..], &b"789"[..], &b"6789"[..], &b"0123456789"[..]]
    );
    assert!(
        r.get_partial_many(
            &key("nope"),
            Box::new([ByteRange::FromStart(0, Some(1))].into_iter())
        )
        .await
        .unwrap()
        .is_none()
    );
    // Empty ranges, also at the very end.
    for empty in [
        ByteRange::FromStart(10, Some(0)),
        ByteRange::FromStart(3, Some(0)),
        ByteRange::Suffix(0),
    ] {
        let got = r.get_partial(&k, empty).await.unwrap().unwrap();
        assert!(got.is_empty(), "{empty:?}");
    }
    assert!(
        r.get_partial(&key("nope"), ByteRange::Suffix(0))
            .await
            .unwrap()
            .is_none()
    );
    // Past the end: refused, not clamped.
    for bad in [
        ByteRange::FromStart(8, Some(5)),
        ByteRange::Suffix(11),
        ByteRange::FromStart(11, Some(0)),
    ] {
        let err = r.get_partial(&k, bad).await.unwrap_err().to_string();
        assert!(err.contains("a/c/0") && err.contains("main"), "{err}");
    }
}

#[tokio::test]
async fn errors_name_the_store_and_the_key() {
    let inner = dj_store_memory::memory_store("main");
    let writer = FolderWriter::new(Arc::clone(&inner), folder_key());
    writer
        .put("zarr.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let meta = writer.finish(None).await.unwrap();

    let faulty: Arc<dyn Store> = Arc::new(FaultyStore::new(Arc::clone(&inner), Fault::Get));
    let r = ZarrReadStore::new(ObjectRef::new(meta.clone(), faulty)).unwrap();
    let err = r.get(&key("zarr.json")).await.unwrap_err().to_string();
    assert!(
        err.contains("store `main`") && err.contains("`zarr.json`") && err.contains(&meta.path),
        "{err}"
    );
    assert!(Array::async_open(Arc::new(r), "/").await.is_err());

    let faulty: Arc<dyn Store> = Arc::new(FaultyStore::new(inner, Fault::PutNth(1)));
    let w = ZarrWriteStore::new(FolderWriter::new(faulty, folder_key()));
    let err = w
        .set(&key("c/0/0"), Bytes::from_static(b"x"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("store `main`") && err.contains("`c/0/0`"),
        "{err}"
    );
    assert!(w.writer().entries().is_empty());
    assert!(w.get(&StoreKey::root()).await.is_err());
}

#[tokio::test]
async fn a_file_object_is_not_a_zarr_store() {
    let store = dj_store_memory::memory_store("main");
    let mut w =
        dj_object::ObjectWriter::new(Arc::clone(&store), StorePath::parse("f.bin").unwrap());
    w.write(b"abc").await.unwrap();
    let meta = w.finish(None).await.unwrap();
    let err = ZarrReadStore::new(ObjectRef::new(meta, store)).unwrap_err();
    assert!(err.to_string().contains("f.bin"), "{err}");
}
