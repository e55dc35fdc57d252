//! One chunk of a 1 GiB Zarr array read lazily from an `<object@>` folder
//! (`cargo bench -p dj-codec-object --bench zarr_chunk --features zarr`; `cargo xtask bench`
//! runs it with all features).
//!
//! Writes a 512 × 512 × 1024 float32 array (1 GiB) in 64 × 64 × 64 uncompressed chunks (1 MiB
//! each) through a [`FolderWriter`] into a `file` store under `DJ_BENCH_DIR` (default: the working
//! directory), then opens it through [`ZarrReadStore`] over an [`ObjectRef`], the way a fetched row
//! is read, and retrieves one chunk, counting the bytes the store returned. Fails unless that is
//! under twice the chunk's size (plus the `zarr.json` the open reads).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::time::Instant;

use dj_codec_object::zarr::zarrs::array::{Array, ArrayBuilder, data_type};
use dj_codec_object::zarr::{ZarrReadStore, ZarrWriteStore};
use dj_core::store::{Store, StorePath};
use dj_object::{FolderWriter, ObjectRef};
use dj_testkit::CountingStore;

const SHAPE: [u64; 3] = [512, 512, 1024];
const CHUNK: u64 = 64;
const CHUNK_BYTES: u64 = CHUNK * CHUNK * CHUNK * 4;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = std::env::var("DJ_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let dir = tempfile::tempdir_in(base).unwrap();
    rt.block_on(async {
        let file: Arc<dyn Store> = dj_store_file::FileStore::open("files", dir.path()).unwrap();
        let counting = Arc::new(CountingStore::new(Arc::clone(&file)));
        let store: Arc<dyn Store> = counting.clone();
        let key = StorePath::parse("_schema/bench/vol/id=1/volume_Zarr0001.zarr").unwrap();

        let start = Instant::now();
        let folder = FolderWriter::new(Arc::clone(&store), key.clone());
        let array = ArrayBuilder::new(
            SHAPE.to_vec(),
            vec![CHUNK, CHUNK, CHUNK],
            data_type::float32(),
            0.0f32,
        )
        .build(Arc::new(ZarrWriteStore::new(folder.clone())), "/")
        .unwrap();
        array.async_store_metadata().await.unwrap();
        let per_chunk = (CHUNK * CHUNK * CHUNK) as usize;
        for cx in 0..SHAPE[0] / CHUNK {
            for cy in 0..SHAPE[1] / CHUNK {
                for cz in 0..SHAPE[2] / CHUNK {
                    let fill = (cx * 10_000 + cy * 100 + cz + 1) as f32;
                    array
                        .async_store_chunk(&[cx, cy, cz], vec![fill; per_chunk])
                        .await
                        .unwrap();
                }
            }
        }
        let meta = folder.finish(Some(".zarr".into())).await.unwrap();
        let write_s = start.elapsed().as_secs_f64();
        let total = meta.size.unwrap();
        assert!(total >= SHAPE.iter().product::<u64>() * 4);

        let obj = ObjectRef::new(meta, Arc::clone(&store));
        let zarr_json = file.head(&key.join("zarr.json").unwrap()).await.unwrap().size;
        counting.reset();
        let start = Instant::now();
        let array = Array::async_open(Arc::new(ZarrReadStore::new(obj).unwrap()), "/")
            .await
            .unwrap();
        let chunk: Vec<f32> = array.async_retrieve_chunk(&[3, 5, 7]).await.unwrap();
        let read_ms = start.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(chunk.len(), per_chunk);
        assert!(chunk.iter().all(|v| *v == 30_508.0));
        let fetched = counting.bytes();
        println!(
            "zarr chunk: 1 GiB array ({} files, written in {write_s:.1} s); opening it and reading \
             one {CHUNK_BYTES}-byte chunk fetched {fetched} bytes in {} requests ({:.3}x the chunk, \
             zarr.json {zarr_json} bytes) in {read_ms:.1} ms",
            SHAPE.iter().map(|d| d / CHUNK).product::<u64>() + 1,
            counting.gets(),
            fetched as f64 / CHUNK_BYTES as f64,
        );
        assert!(
            fetched < 2 * CHUNK_BYTES,
            "reading one chunk fetched {fetched} bytes, not under twice the chunk ({CHUNK_BYTES})"
        );
    });
}
