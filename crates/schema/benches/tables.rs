//! Table throughput on every configured backend (`cargo bench -p dj-schema`, or
//! `cargo xtask bench`, which also runs `py_tables_bench.py`: DataJoint Python 2.3.5 on the same
//! work and the same servers).
//!
//! - 10,000 small rows (`int32` key, `int32`, `float64`, `varchar(32)`) inserted in one `insert`,
//!   and fetched back;
//! - 100 rows of a 1 MiB float64 array in a `<blob>` column, inserted in one `insert`, and
//!   fetched back.
//!
//! SQLite runs always (a file in a temporary directory); PostgreSQL and MariaDB when
//! `DJ_TEST_POSTGRES_URL` / `DJ_TEST_MYSQL_URL` are set (`cargo xtask bench` sets them).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dj_codec_blob::Item;
use dj_config::Config;
use dj_config::{DatabaseBackend, Secret};
use dj_core::value::Value;
use dj_schema::{Connection, Row, Table, Tier, row};

const SMALL_ROWS: usize = 10_000;
const BLOB_ROWS: usize = 100;

fn backends(dir: &std::path::Path) -> Vec<(&'static str, Config)> {
    let mut out = Vec::new();
    let mut sqlite = Config::default();
    sqlite.database.path = Some(dir.join("bench.sqlite"));
    out.push(("sqlite", sqlite));
    for (label, var, backend) in [
        (
            "postgres",
            "DJ_TEST_POSTGRES_URL",
            DatabaseBackend::Postgresql,
        ),
        ("mariadb", "DJ_TEST_MYSQL_URL", DatabaseBackend::Mysql),
    ] {
        if let Ok(url) = std::env::var(var) {
            let mut c = Config::default();
            c.database.backend = backend;
            c.database.url = Some(Secret::new(url));
            out.push((label, c));
        }
    }
    out
}

fn small_rows() -> Vec<Row> {
    (0..SMALL_ROWS as i32)
        .map(|i| {
            row! {
                "id" => i,
                "a" => i.wrapping_mul(7919),
                "b" => f64::from(i) * 0.5,
                "c" => format!("row {i}"),
            }
        })
        .collect()
}

fn blob_rows() -> Vec<Row> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    (0..BLOB_ROWS as i32)
        .map(|i| {
            let data = common::uniform(&mut x, 1024 * 1024 / 8);
            row! { "id" => i, "data" => Value::domain(Item::from(data)) }
        })
        .collect()
}

/// Time `iters` inserts of `rows` into `table`, emptying the table before each (not timed).
async fn time_inserts(table: &Table, iters: u64, rows: &[Row]) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        table.delete().await.unwrap();
        let start = Instant::now();
        let n = table.insert(rows).await.unwrap();
        total += start.elapsed();
        assert_eq!(n as usize, rows.len());
    }
    total
}

/// Time `iters` fetches of every row of `table` (filled once beforehand, not timed: refilling
/// between fetches would measure the server's background clean-up of the previous round).
async fn time_fetches(table: &Table, iters: u64, expected: usize) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let n = table.query().fetch_rows().await.unwrap().len();
        total += start.elapsed();
        assert_eq!(n, expected);
    }
    total
}

async fn refill(table: &Table, rows: &[Row]) {
    table.delete().await.unwrap();
    table.insert(rows).await.unwrap();
}

fn tables(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let small = small_rows();
    let blobs = blob_rows();
    for (label, config) in backends(dir.path()) {
        let (conn, schema, small_t, blob_t) = rt.block_on(async {
            let conn = Connection::open(&config).await.unwrap();
            let schema = conn
                .schema(&format!("djbench_{}", std::process::id()))
                .await
                .unwrap();
            let small_t = schema
                .declare(
                    "Small",
                    Tier::Manual,
                    "id : int32\n---\na : int32\nb : float64\nc : varchar(32)",
                )
                .await
                .unwrap();
            let blob_t = schema
                .declare("Signal", Tier::Manual, "id : int32\n---\ndata : <blob>")
                .await
                .unwrap();
            (conn, schema, small_t, blob_t)
        });

        let mut g = c.benchmark_group(format!("{label}: 10,000 small rows"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(SMALL_ROWS as u64));
        // Fetch first, from a table filled once: after the insert rounds a PostgreSQL table
        // holds every deleted round as dead tuples until autovacuum, and scanning those would
        // time the server's bloat (criterion runs far more rounds than the Python script).
        rt.block_on(refill(&small_t, &small));
        g.bench_function("fetch", |b| {
            b.iter_custom(|iters| rt.block_on(time_fetches(&small_t, iters, SMALL_ROWS)))
        });
        g.bench_function("insert", |b| {
            b.iter_custom(|iters| rt.block_on(time_inserts(&small_t, iters, &small)))
        });
        g.finish();

        let mut g = c.benchmark_group(format!("{label}: 100 rows of 1 MiB <blob>"));
        g.sample_size(10);
        g.throughput(Throughput::Bytes((BLOB_ROWS * 1024 * 1024) as u64));
        // Fetch first, from a table filled once: after the insert rounds a PostgreSQL table
        // holds every deleted round as dead tuples until autovacuum, and scanning those would
        // time the server's bloat (criterion runs far more rounds than the Python script).
        rt.block_on(refill(&blob_t, &blobs));
        g.bench_function("fetch", |b| {
            b.iter_custom(|iters| rt.block_on(time_fetches(&blob_t, iters, BLOB_ROWS)))
        });
        g.bench_function("insert", |b| {
            b.iter_custom(|iters| rt.block_on(time_inserts(&blob_t, iters, &blobs)))
        });
        g.finish();
        rt.block_on(async {
            schema.drop().await.unwrap();
            conn.close().await;
        });
    }
}

criterion_group!(benches, tables);
criterion_main!(benches);
