//! Path-addressed objects through a table (`cargo bench -p dj-schema --bench paths`, or
//! `cargo xtask bench`, which also runs `py_paths_bench.py`: DataJoint Python 2.3.5 on the same
//! work, database and store, and prints the ratios).
//!
//! 20 local files of 50 MiB inserted into an `<object@…>` column in one `insert` (streamed,
//! checksummed, up to `transfer_concurrency` files at a time), then fetched and read back in full
//! through their `ObjectRef`s, with the table on PostgreSQL (SQLite without
//! `DJ_TEST_POSTGRES_URL`) and the objects in a `file` store under `DJ_BENCH_DIR` (default: the
//! working directory).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dj_codec_object::ObjectInput;
use dj_core::store::{Store, StoreExt};
use dj_object::ObjectRef;
use dj_schema::{Connection, Row, Table, Tier, row};
use futures::{StreamExt, TryStreamExt};

use dj_store_file as _;

const FILES: usize = 20;
const SIZE: usize = 50 * 1024 * 1024;

/// The source files, made once (pseudo-random, distinct).
fn sources(dir: &Path) -> Vec<PathBuf> {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    (0..FILES)
        .map(|i| {
            let p = src.join(format!("rec{i:02}.bin"));
            std::fs::write(&p, dj_testkit::noise(i as u64 + 1, SIZE)).unwrap();
            p
        })
        .collect()
}

async fn clear(table: &Table, store: &dyn Store) {
    table.delete().await.unwrap();
    for o in store.list_all(None).await.unwrap() {
        store.delete(&o.path).await.unwrap();
    }
}

async fn insert_rounds(table: &Table, store: &dyn Store, src: &[PathBuf], iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        clear(table, store).await;
        let rows: Vec<Row> = src
            .iter()
            .enumerate()
            .map(|(i, p)| row! { "id" => i as i32, "data" => ObjectInput::file(p) })
            .collect();
        let start = Instant::now();
        table.insert(&rows).await.unwrap();
        total += start.elapsed();
    }
    total
}

async fn fetch_rounds(table: &Table, iters: u64, concurrency: usize) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let rows = table.query().fetch_rows().await.unwrap();
        let bytes: usize = futures::stream::iter(rows)
            .map(|r| async move {
                let o = r["data"].as_domain::<ObjectRef>().unwrap().clone();
                o.read().await.map(|b| b.len())
            })
            .buffer_unordered(concurrency)
            .try_fold(0, |acc, n| async move { Ok(acc + n) })
            .await
            .unwrap();
        total += start.elapsed();
        assert_eq!(bytes, FILES * SIZE);
    }
    total
}

fn paths(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = std::env::var("DJ_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let dir = tempfile::tempdir_in(base).unwrap();
    let (label, config) = common::postgres_or_sqlite_with_files(dir.path());
    let concurrency = config.transfer_concurrency;
    let src = sources(dir.path());
    let conn = rt.block_on(Connection::open(&config)).unwrap();
    let schema = rt
        .block_on(conn.schema(&format!("djbench_paths_{}", std::process::id())))
        .unwrap();
    let table = rt
        .block_on(schema.declare(
            "Rec",
            Tier::Manual,
            "id : int32\n---\ndata : <object@files>",
        ))
        .unwrap();
    let store = conn.stores().get("files").unwrap();
    let mut g = c.benchmark_group(format!("{label}: {FILES} x 50 MiB files in <object@file>"));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Bytes((FILES * SIZE) as u64));
    g.bench_function("insert", |b| {
        b.iter_custom(|iters| rt.block_on(insert_rounds(&table, store.as_ref(), &src, iters)))
    });
    g.bench_function("fetch and read", |b| {
        b.iter_custom(|iters| rt.block_on(fetch_rounds(&table, iters, concurrency)))
    });
    g.finish();
    rt.block_on(async {
        clear(&table, store.as_ref()).await;
        schema.drop().await.unwrap();
        conn.close().await;
    });
}

criterion_group!(benches, paths);
criterion_main!(benches);
