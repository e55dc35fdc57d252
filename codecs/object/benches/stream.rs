//! Streaming a large object through `<object@>`'s writer and reader in bounded memory
//! (`cargo bench -p dj-codec-object --bench stream`; `cargo xtask bench` runs it too).
//!
//! Writes `DJ_BENCH_STREAM_GIB` GiB (default 4) of generated data through an [`ObjectWriter`] to a
//! `file` store in a temporary directory (multipart parts of 8 MiB, BLAKE3 while writing), then
//! reads it back through [`ObjectRef::reader`] (`AsyncRead`, 8 MiB ranged blocks) and checks the
//! checksum. Prints both throughputs next to a plain `std::fs` write of the same bytes (what the
//! disk itself takes), and the process's peak resident memory (`VmHWM`); fails when the peak
//! reaches 128 MiB, the bound the reader and writer keep whatever the size. The store lives in a
//! temporary directory under `DJ_BENCH_DIR` (default: the working directory); point it at a
//! tmpfs such as `/dev/shm` to measure the pipeline rather than the disk.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::time::Instant;

use dj_core::config::{Config, HashAlgorithm, StoreSpec};
use dj_core::registry::StoreSet;
use dj_core::store::StorePath;
use dj_layout::ContentHasher;
use dj_object::{ObjectRef, ObjectWriter};
use tokio::io::AsyncReadExt;

use dj_store_file as _;

const CHUNK: usize = 1024 * 1024;
const POOL: usize = 4 * 1024 * 1024;

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A pool of pseudo-random bytes; chunk `i` of the stream is a window into it, so making the data
/// costs nothing inside the timed part.
fn pool() -> Vec<u8> {
    dj_testkit::noise(1, POOL)
}

fn chunk(pool: &[u8], i: u64) -> &[u8] {
    let start = (i as usize * 4099 * 8) % (POOL - CHUNK);
    &pool[start..start + CHUNK]
}

fn main() {
    let gib: u64 = std::env::var("DJ_BENCH_STREAM_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let total = gib * 1024 * 1024 * 1024;
    let chunks = total / CHUNK as u64;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir =
        tempfile::tempdir_in(std::env::var("DJ_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let mut config = Config::default();
    config.stores.specs.insert(
        "files".into(),
        StoreSpec::new("files", "file", dir.path().to_string_lossy()),
    );
    let stores = StoreSet::new(config);
    let store = stores.get("files").unwrap();
    let key = StorePath::parse("_schema/bench/big/id=1/data_Stream01.bin").unwrap();

    let pool = pool();
    // The same bytes written with plain `std::fs` (and fsync'd, as the file store does): what the
    // disk under the store can take, for comparison.
    let raw_s = {
        use std::io::Write;
        let path = dir.path().join("raw-baseline.bin");
        let start = Instant::now();
        let mut f = std::fs::File::create(&path).unwrap();
        for i in 0..chunks {
            f.write_all(chunk(&pool, i)).unwrap();
        }
        f.sync_all().unwrap();
        let s = start.elapsed().as_secs_f64();
        drop(f);
        std::fs::remove_file(&path).unwrap();
        s
    };
    rt.block_on(async {
        let mut buf = vec![0u8; CHUNK];
        let start = Instant::now();
        let mut w = ObjectWriter::new(Arc::clone(&store), key.clone());
        for i in 0..chunks {
            w.write(chunk(&pool, i)).await.unwrap();
        }
        let meta = w.finish(Some(".bin".into())).await.unwrap();
        let write_s = start.elapsed().as_secs_f64();
        assert_eq!(meta.size, Some(total));

        let obj = ObjectRef::new(meta, Arc::clone(&store));
        let start = Instant::now();
        let mut r = obj.reader().await.unwrap();
        let mut got = ContentHasher::new(HashAlgorithm::Blake3);
        let mut read = 0u64;
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.update(&buf[..n]);
            read += n as u64;
        }
        let read_s = start.elapsed().as_secs_f64();
        assert_eq!(read, total);
        let mut expected = ContentHasher::new(HashAlgorithm::Blake3);
        for i in 0..chunks {
            expected.update(chunk(&pool, i));
        }
        let (got, expected) = (got.finalize(), expected.finalize());
        assert_eq!(got, expected, "read-back differs");
        assert_eq!(obj.checksum(), Some(expected.as_str()));
        let rss = peak_rss_mib().unwrap_or(f64::NAN);
        let gibs = total as f64 / (1u64 << 30) as f64;
        println!(
            "stream {gib} GiB through <object@file> in {}: write {write_s:.2} s ({:.2} GiB/s, BLAKE3 \
             included; plain std::fs write + fsync of the same bytes {raw_s:.2} s, {:.2} GiB/s), read \
             through the reader {read_s:.2} s ({:.2} GiB/s), peak RSS {rss:.1} MiB",
            dir.path().display(),
            gibs / write_s,
            gibs / raw_s,
            gibs / read_s
        );
        assert!(rss < 128.0, "peak RSS {rss:.1} MiB reached the 128 MiB bound");
    });
}
