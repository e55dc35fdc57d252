//! Object-storage throughput (`cargo bench -p dj-schema --bench objects`, or `cargo xtask bench`,
//! which also runs `py_objects_bench.py`: DataJoint Python 2.3.5 on the same work, database and
//! stores, and prints the ratios, and the ratios to the machine's floors).
//!
//! - 100 random 1 MiB float64 arrays in one `insert` into a `<blob@…>` column, and fetching them
//!   back, with the table on PostgreSQL and the objects in a `file` store and in a bucket on the
//!   loopback S3 server;
//! - 1000 random 64 KiB float64 arrays into `<blob@file>`, inserted and fetched the same way;
//! - the 100 x 1 MiB `<blob@file>` insert and fetch with `blob_compression` `compat` (DataJoint's
//!   exact bytes: zlib level 6 on every array);
//! - the floors for the same bytes, with the same fan-out as the store transfers: the durable
//!   write (a staging file created, written and fsync'd, hard-linked to its name, the staging
//!   name removed, the directory fsync'd), the read of the same files into fresh buffers, and
//!   PostgreSQL's binary `COPY` of 100 x 1 MiB `bytea` values in one transaction (the floor of
//!   the in-table insert that `benches/tables.rs` times).
//!
//! Every insert round writes new arrays, so deduplication never skips an upload. Needs
//! `DJ_TEST_POSTGRES_URL` and, for S3, `DJ_TEST_S3_*` (`cargo xtask bench` sets them); without
//! PostgreSQL it runs on SQLite.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dj_codec_blob::{Compression, EncodeOptions, Item};
use dj_config::{Config, StoreSpec};
use dj_core::config::BlobCompression;
use dj_core::store::{Store, StoreExt};
use dj_core::value::Value;
use dj_schema::{Connection, Row, Table, Tier, row};
use futures::{StreamExt, TryStreamExt};

use dj_codec_hash as _;
use dj_store_file as _;
use dj_store_s3 as _;

const ROWS: usize = 100;
const MIB: usize = 1024 * 1024;
/// The small-object workload: this many rows of [`SMALL_BYTES`] each.
const SMALL_ROWS: usize = 1000;
const SMALL_BYTES: usize = 64 * 1024;
/// The fan-out of the floors: the configuration's default `transfer_concurrency`.
const FAN_OUT: usize = 16;

/// `n` fresh random float64 arrays of `bytes` bytes each, keyed 0..n.
fn random_rows(seed: u64, n: usize, bytes: usize) -> Vec<Row> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n as i32)
        .map(|i| {
            let data = common::uniform(&mut x, bytes / 8);
            row! { "id" => i, "data" => Value::domain(Item::from(data)) }
        })
        .collect()
}

fn arrays(seed: u64) -> Vec<Row> {
    random_rows(seed, ROWS, MIB)
}

fn small_arrays(seed: u64) -> Vec<Row> {
    random_rows(seed, SMALL_ROWS, SMALL_BYTES)
}

/// The blobs `<blob>` stores for `n` random arrays of `bytes` bytes (`fast`: random floats stay
/// uncompressed), i.e. the bytes the floors write.
fn blobs(n: usize, bytes: usize) -> Vec<Arc<Vec<u8>>> {
    let mut x = 0x5bd1_e995_u64;
    let fast = EncodeOptions {
        compression: Compression::Fast,
    };
    (0..n)
        .map(|_| {
            let item = Item::from(common::uniform(&mut x, bytes / 8));
            Arc::new(dj_codec_blob::encode_with(&item, fast).unwrap())
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
    insert_rounds_of(table, store, iters, seed, arrays).await
}

/// [`insert_rounds`] with the rows `make` builds from a seed.
async fn insert_rounds_of(
    table: &Table,
    store: &dyn Store,
    iters: u64,
    seed: &mut u64,
    make: fn(u64) -> Vec<Row>,
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        clear(table, store).await;
        *seed += 1;
        let rows = make(*seed);
        let start = Instant::now();
        table.insert(&rows).await.unwrap();
        total += start.elapsed();
    }
    total
}

async fn fetch_rounds(table: &Table, iters: u64) -> Duration {
    fetch_rounds_of(table, iters, ROWS).await
}

async fn fetch_rounds_of(table: &Table, iters: u64, rows: usize) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let n = table.query().fetch_rows().await.unwrap().len();
        total += start.elapsed();
        assert_eq!(n, rows);
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

/// The 1000 x 64 KiB `<blob@file>` workload, and the 100 x 1 MiB one with `compat` compression.
fn small_and_compat(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (label, config, _) = config(dir.path());
    let mut compat_config = config.clone();
    compat_config.blob_compression = BlobCompression::Compat;
    let schema_name = format!("djbench_objs_{}", std::process::id());
    let (conn, schema, small) = rt.block_on(async {
        let conn = Connection::open(&config).await.unwrap();
        let schema = conn.schema(&schema_name).await.unwrap();
        let small = schema
            .declare(
                "Small",
                Tier::Manual,
                "id : int32\n---\ndata : <blob@files>",
            )
            .await
            .unwrap();
        (conn, schema, small)
    });
    let store = conn.stores().get("files").unwrap();
    let mut seed = 1_000_000u64;

    let mut g = c.benchmark_group(format!(
        "{label}: {SMALL_ROWS} x {} KiB float64 in <blob@file>",
        SMALL_BYTES / 1024
    ));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Bytes((SMALL_ROWS * SMALL_BYTES) as u64));
    rt.block_on(insert_rounds_of(
        &small,
        store.as_ref(),
        1,
        &mut seed,
        small_arrays,
    ));
    g.bench_function("fetch", |b| {
        b.iter_custom(|iters| rt.block_on(fetch_rounds_of(&small, iters, SMALL_ROWS)))
    });
    g.bench_function("insert", |b| {
        b.iter_custom(|iters| {
            rt.block_on(insert_rounds_of(
                &small,
                store.as_ref(),
                iters,
                &mut seed,
                small_arrays,
            ))
        })
    });
    g.finish();
    rt.block_on(clear(&small, store.as_ref()));

    // The same schema through a second connection that writes DataJoint's exact bytes.
    let (compat_conn, compat) = rt.block_on(async {
        let conn = Connection::open(&compat_config).await.unwrap();
        let schema = conn.schema(&schema_name).await.unwrap();
        let table = schema
            .declare(
                "Compat",
                Tier::Manual,
                "id : int32\n---\ndata : <blob@files>",
            )
            .await
            .unwrap();
        (conn, table)
    });
    let compat_store = compat_conn.stores().get("files").unwrap();
    let mut g = c.benchmark_group(format!(
        "{label}: 100 x 1 MiB float64 in <blob@file>, compat"
    ));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Bytes((ROWS * MIB) as u64));
    rt.block_on(insert_rounds(&compat, compat_store.as_ref(), 1, &mut seed));
    g.bench_function("fetch", |b| {
        b.iter_custom(|iters| rt.block_on(fetch_rounds(&compat, iters)))
    });
    g.bench_function("insert", |b| {
        b.iter_custom(|iters| {
            rt.block_on(insert_rounds(
                &compat,
                compat_store.as_ref(),
                iters,
                &mut seed,
            ))
        })
    });
    g.finish();
    rt.block_on(async {
        clear(&compat, compat_store.as_ref()).await;
        schema.drop().await.unwrap();
        compat_conn.close().await;
        conn.close().await;
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Write `data` durably as `dir/name`, the way a durable create-if-absent must: a staging file
/// created, written and fsync'd, hard-linked to its name, the staging name removed, and the
/// directory fsync'd.
fn durable_write(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let staging = dir.join(format!("{name}#1"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&staging)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::hard_link(&staging, dir.join(name))?;
    std::fs::remove_file(&staging)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Read a whole file into a fresh buffer (not zeroed first).
fn read_file(path: &Path) -> std::io::Result<usize> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len() as usize;
    let mut buf = Vec::with_capacity(len);
    f.read_to_end(&mut buf)?;
    Ok(buf.len())
}

/// Run `f(i)` for every `i` in `0..n` on the blocking pool, [`FAN_OUT`] at a time.
async fn fan_out(n: usize, f: impl Fn(usize) -> std::io::Result<()> + Send + Sync + 'static) {
    let f = Arc::new(f);
    futures::stream::iter(0..n)
        .map(|i| {
            let f = Arc::clone(&f);
            async move { tokio::task::spawn_blocking(move || f(i)).await.unwrap() }
        })
        .buffer_unordered(FAN_OUT)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
}

/// `iters` rounds of durably writing `blobs` into a fresh directory `root/floor` (timed); the
/// last round's files stay for the read floor.
async fn durable_rounds(root: &Path, blobs: &Arc<Vec<Arc<Vec<u8>>>>, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let dir = root.join("floor");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::File::open(root).unwrap().sync_all().unwrap();
        let blobs = Arc::clone(blobs);
        let d = dir.clone();
        let start = Instant::now();
        fan_out(blobs.len(), move |i| {
            durable_write(&d, &format!("o{i}"), &blobs[i])
        })
        .await;
        total += start.elapsed();
    }
    total
}

async fn read_rounds(dir: PathBuf, n: usize, iters: u64) -> Duration {
    let dir = Arc::new(dir);
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let d = Arc::clone(&dir);
        let start = Instant::now();
        fan_out(n, move |i| read_file(&d.join(format!("o{i}"))).map(|_| ())).await;
        total += start.elapsed();
    }
    total
}

/// The machine's floors for the bytes the object workloads move.
fn floors(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("floors");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    for (n, bytes, what) in [
        (SMALL_ROWS, SMALL_BYTES, "1000 x 64 KiB"),
        (ROWS, MIB, "100 x 1 MiB"),
    ] {
        let blobs = Arc::new(blobs(n, bytes));
        g.throughput(Throughput::Bytes((n * bytes) as u64));
        g.bench_function(format!("durable write {what}"), |b| {
            b.iter_custom(|iters| rt.block_on(durable_rounds(dir.path(), &blobs, iters)))
        });
        // Reads the files the last durable-write round left.
        g.bench_function(format!("read {what}"), |b| {
            b.iter_custom(|iters| rt.block_on(read_rounds(dir.path().join("floor"), n, iters)))
        });
    }
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("DJ_TEST_POSTGRES_URL") {
        let blobs = blobs(ROWS, MIB);
        g.throughput(Throughput::Bytes((ROWS * MIB) as u64));
        g.bench_function("postgres COPY 100 x 1 MiB bytea", |b| {
            b.iter_custom(|iters| rt.block_on(copy_rounds(&url, &blobs, iters)))
        });
    }
    g.finish();
}

/// `iters` rounds of PostgreSQL's binary `COPY` of `blobs` as `bytea` rows in one transaction
/// (timed), into a table emptied before each.
#[cfg(feature = "postgres")]
async fn copy_rounds(url: &str, blobs: &[Arc<Vec<u8>>], iters: u64) -> Duration {
    use sqlx::{AssertSqlSafe, Connection as _, Executor as _};
    let mut pg = sqlx::PgConnection::connect(url).await.unwrap();
    let table = format!("djbench_copy_{}", std::process::id());
    pg.execute(AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {table} (id int4 PRIMARY KEY, data bytea NOT NULL)"
    )))
    .await
    .unwrap();
    // The binary COPY stream: header, one (id, data) tuple per blob, trailer.
    let mut payload = Vec::with_capacity(blobs.iter().map(|b| b.len() + 14).sum::<usize>() + 32);
    payload.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    payload.extend_from_slice(&0i32.to_be_bytes());
    payload.extend_from_slice(&0i32.to_be_bytes());
    for (i, b) in blobs.iter().enumerate() {
        payload.extend_from_slice(&2i16.to_be_bytes());
        payload.extend_from_slice(&4i32.to_be_bytes());
        payload.extend_from_slice(&(i as i32).to_be_bytes());
        payload.extend_from_slice(&(b.len() as i32).to_be_bytes());
        payload.extend_from_slice(b);
    }
    payload.extend_from_slice(&(-1i16).to_be_bytes());
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        pg.execute(AssertSqlSafe(format!("TRUNCATE {table}")))
            .await
            .unwrap();
        let start = Instant::now();
        let mut tx = pg.begin().await.unwrap();
        let mut copy = tx
            .copy_in_raw(&format!(
                "COPY {table} (id, data) FROM STDIN (FORMAT binary)"
            ))
            .await
            .unwrap();
        // In messages of about 1 MiB, as a client streaming a COPY sends them.
        for part in payload.chunks(MIB) {
            copy.send(part).await.unwrap();
        }
        let n = copy.finish().await.unwrap();
        tx.commit().await.unwrap();
        total += start.elapsed();
        assert_eq!(n as usize, blobs.len());
    }
    pg.execute(AssertSqlSafe(format!("DROP TABLE {table}")))
        .await
        .unwrap();
    pg.close().await.unwrap();
    total
}

criterion_group!(benches, objects, small_and_compat, floors);
criterion_main!(benches);
