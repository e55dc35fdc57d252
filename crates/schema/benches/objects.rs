//! Object-storage throughput (`cargo bench -p dj-schema --bench objects`, or `cargo xtask bench`,
//! which also runs `py_objects_bench.py`: DataJoint Python 2.3.5 on the same work, database and
//! stores, and prints the ratios).
//!
//! 100 random 1 MiB float64 arrays in one `insert` into a `<blob@…>` column, and fetching them
//! back, with the table on PostgreSQL and the objects in a `file` store and in a bucket on the
//! loopback S3 server. Every insert round writes new arrays, so deduplication never skips an
//! upload. Needs `DJ_TEST_POSTGRES_URL` and, for S3, `DJ_TEST_S3_*` (`cargo xtask bench` sets
//! them); without PostgreSQL it runs on SQLite.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dj_codec_blob::Item;
use dj_config::{Config, StoreSpec};
use dj_core::store::{Store, StoreExt};
use dj_core::value::Value;
use dj_schema::{Connection, Row, Table, Tier, row};

use dj_codec_hash as _;
use dj_store_file as _;
use dj_store_s3 as _;

const ROWS: usize = 100;

fn arrays(seed: u64) -> Vec<Row> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..ROWS as i32)
        .map(|i| {
            let data = common::uniform(&mut x, 1024 * 1024 / 8);
            row! { "id" => i, "data" => Value::domain(Item::from(data)) }
        })
        .collect()
}

fn config(dir: &std::path::Path) -> (&'static str, Config, bool) {
    let (label, mut c) = common::postgres_or_sqlite_with_files(dir);
    let mut s3 = false;
    if let Ok(endpoint) = std::env::var("DJ_TEST_S3_ENDPOINT") {
        let var = |k: &str| std::env::var(k).unwrap();
        let mut spec = StoreSpec::new("s3", "s3", format!("bench-{}", std::process::id()));
        spec.options.insert("endpoint".into(), endpoint.into());
        spec.options
            .insert("bucket".into(), var("DJ_TEST_S3_BUCKET").into());
        spec.options
            .insert("access_key".into(), var("DJ_TEST_S3_ACCESS_KEY").into());
        spec.options
            .insert("secret_key".into(), var("DJ_TEST_S3_SECRET_KEY").into());
        c.stores.specs.insert("s3".into(), spec);
        s3 = true;
    }
    (label, c, s3)
}

/// Empty the table and remove its objects from the store (not timed).
async fn clear(table: &Table, store: &dyn Store) {
    table.delete().await.unwrap();
    for o in store.list_all(None).await.unwrap() {
        store.delete(&o.path).await.unwrap();
    }
}

/// `iters` rounds of inserting fresh arrays (timed), emptying table and store before each.
async fn insert_rounds(table: &Table, store: &dyn Store, iters: u64, seed: &mut u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        clear(table, store).await;
        *seed += 1;
        let rows = arrays(*seed);
        let start = Instant::now();
        table.insert(&rows).await.unwrap();
        total += start.elapsed();
    }
    total
}

async fn fetch_rounds(table: &Table, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let n = table.query().fetch_rows().await.unwrap().len();
        total += start.elapsed();
        assert_eq!(n, ROWS);
    }
    total
}

fn objects(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (label, config, has_s3) = config(dir.path());
    let conn = rt.block_on(Connection::open(&config)).unwrap();
    let schema = rt
        .block_on(conn.schema(&format!("djbench_obj_{}", std::process::id())))
        .unwrap();
    let mut stores = vec!["files"];
    if has_s3 {
        stores.push("s3");
    }
    let mut seed = 0u64;
    for store in stores {
        let table = rt
            .block_on(schema.declare(
                &format!("Sig{}", store.len()),
                Tier::Manual,
                &format!("id : int32\n---\ndata : <blob@{store}>"),
            ))
            .unwrap();
        let store_handle = conn.stores().get(store).unwrap();
        let mut g = c.benchmark_group(format!(
            "{label}: 100 x 1 MiB float64 in <blob@{}>",
            if store == "files" { "file" } else { "s3" }
        ));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(20));
        g.throughput(Throughput::Bytes((ROWS * 1024 * 1024) as u64));
        // Fetch first, after one fill, then the insert rounds: criterion runs far more rounds
        // than the Python script, and a fetch timed after them would also time what they leave
        // behind (dead tuples on PostgreSQL, the S3 server's churn), not the client.
        rt.block_on(insert_rounds(&table, store_handle.as_ref(), 1, &mut seed));
        g.bench_function("fetch", |b| {
            b.iter_custom(|iters| rt.block_on(fetch_rounds(&table, iters)))
        });
        g.bench_function("insert", |b| {
            b.iter_custom(|iters| {
                rt.block_on(insert_rounds(
                    &table,
                    store_handle.as_ref(),
                    iters,
                    &mut seed,
                ))
            })
        });
        g.finish();
        rt.block_on(clear(&table, store_handle.as_ref()));
    }
    rt.block_on(async {
        schema.drop().await.unwrap();
        conn.close().await;
    });
}

criterion_group!(benches, objects);
criterion_main!(benches);
