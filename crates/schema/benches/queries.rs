//! Query throughput on PostgreSQL and MariaDB (`cargo bench -p dj-schema --bench queries`, or
//! `cargo xtask bench`, which also runs `py_queries_bench.py`: DataJoint Python 2.3.5 on the same
//! tables, and prints the ratios).
//!
//! - **join**: `Child * Parent & "value < 0.5"`, 100,000 children of 1,000 parents, about half of
//!   them kept, fetched into a serde struct, as rows, and (feature `arrow`) as an Arrow
//!   `RecordBatch`;
//! - **aggregate**: `U("grp").aggr(Big, count, avg)` over 1,000,000 rows in 1,000 groups, next to
//!   the same `GROUP BY` written by hand and run through the same driver (sqlx), so that the ratio
//!   is dj-rs's own cost;
//! - **stream**: 10,000,000 small rows read through `Query::stream` in a child process, whose peak
//!   resident memory (`VmHWM` in `/proc/self/status`) is printed (goal: under 100 MiB).
//!
//! The tables are declared with dj-rs and filled on the server (`generate_series` on PostgreSQL,
//! the `seq` engine on MariaDB), with the same values `py_queries_bench.py` uses. Set
//! `DJ_BENCH_STREAM_ROWS` to stream fewer rows. PostgreSQL and MariaDB run when
//! `DJ_TEST_POSTGRES_URL` / `DJ_TEST_MYSQL_URL` are set; SQLite is not part of this bench.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
mod common;

use dj_config::Config;
use dj_config::{DatabaseBackend, Secret};
use dj_schema::query::U;
use dj_schema::{Connection, Query, Schema, Table, Tier};
use futures::StreamExt;
use serde::Deserialize;
use sqlx::AssertSqlSafe;

const PARENTS: u64 = 1_000;
const CHILDREN: u64 = 100_000;
const BIG: u64 = 1_000_000;
const STREAM: u64 = 10_000_000;
const STREAM_CHILD: &str = "DJ_BENCH_QUERIES_STREAM_CHILD";

/// One row of the join, only the attributes the program wants.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct JoinRow {
    parent_id: i32,
    child_id: i32,
    value: f64,
    label: String,
}

/// One row of the streamed table.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Small {
    id: i64,
    a: i32,
    b: f64,
}

fn config(backend: DatabaseBackend, url: &str) -> Config {
    let mut c = Config::default();
    c.database.backend = backend;
    c.database.url = Some(Secret::new(url.to_string()));
    c
}

/// Run statements through sqlx directly (fills, and the hand-written aggregate).
enum Raw {
    Pg(sqlx::PgPool),
    My(sqlx::MySqlPool),
}

impl Raw {
    async fn open(backend: DatabaseBackend, url: &str) -> Raw {
        match backend {
            DatabaseBackend::Postgresql => Raw::Pg(sqlx::PgPool::connect(url).await.unwrap()),
            _ => Raw::My(sqlx::MySqlPool::connect(url).await.unwrap()),
        }
    }

    async fn exec(&self, sql: &str) {
        match self {
            Raw::Pg(p) => {
                sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
                    .execute(p)
                    .await
                    .unwrap();
            }
            Raw::My(p) => {
                sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
                    .execute(p)
                    .await
                    .unwrap();
            }
        }
    }

    /// The aggregate by hand: every group's row decoded into native values.
    async fn aggregate(&self, schema: &str) -> Vec<(i32, i64, f64)> {
        match self {
            Raw::Pg(p) => sqlx::query_as(AssertSqlSafe(format!(
                "SELECT grp, count(*), avg(x) FROM \"{schema}\".\"big\" GROUP BY grp"
            )))
            .fetch_all(p)
            .await
            .unwrap(),
            Raw::My(p) => sqlx::query_as(AssertSqlSafe(format!(
                "SELECT grp, count(*), CAST(avg(x) AS DOUBLE) FROM `{schema}`.`big` GROUP BY grp"
            )))
            .fetch_all(p)
            .await
            .unwrap(),
        }
    }

    async fn close(self) {
        match self {
            Raw::Pg(p) => p.close().await,
            Raw::My(p) => p.close().await,
        }
    }
}

/// `n` integers 0..n as a row source on this server.
fn series(backend: DatabaseBackend, schema: &str, n: u64) -> String {
    match backend {
        DatabaseBackend::Postgresql => {
            format!("(SELECT i FROM generate_series(0, {}) AS s(i)) AS s", n - 1)
        }
        _ => format!("(SELECT seq AS i FROM `{schema}`.seq_0_to_{}) AS s", n - 1),
    }
}

fn qualified(backend: DatabaseBackend, schema: &str, table: &str) -> String {
    match backend {
        DatabaseBackend::Postgresql => format!("\"{schema}\".\"{table}\""),
        _ => format!("`{schema}`.`{table}`"),
    }
}

struct Fixture {
    schema: Schema,
    parent: Table,
    child: Table,
    big: Table,
    stream: Table,
}

async fn declare_and_fill(
    conn: &Connection,
    raw: &Raw,
    backend: DatabaseBackend,
    name: &str,
) -> Fixture {
    let schema = conn.schema(name).await.unwrap();
    let parent = schema
        .declare(
            "Parent",
            Tier::Manual,
            "parent_id : int32\n---\nlabel : varchar(16)\ngrp : int16",
        )
        .await
        .unwrap();
    let child = schema
        .declare(
            "Child",
            Tier::Manual,
            "-> Parent\nchild_id : int32\n---\nvalue : float64\nflag : int16",
        )
        .await
        .unwrap();
    let big = schema
        .declare(
            "Big",
            Tier::Manual,
            "id : int32\n---\ngrp : int32\nx : float64",
        )
        .await
        .unwrap();
    let stream = schema
        .declare(
            "Stream",
            Tier::Manual,
            "id : int64\n---\na : int32\nb : float64",
        )
        .await
        .unwrap();
    let q = |t: &str| qualified(backend, name, t);
    let concat = match backend {
        DatabaseBackend::Postgresql => "'p' || i",
        _ => "CONCAT('p', i)",
    };
    raw.exec(&format!(
        "INSERT INTO {} (parent_id, label, grp) SELECT i, {concat}, i % 10 FROM {}",
        q("parent"),
        series(backend, name, PARENTS)
    ))
    .await;
    raw.exec(&format!(
        "INSERT INTO {} (parent_id, child_id, value, flag) \
         SELECT i % {PARENTS}, i, ((i * 7919) % 1000) / 1000.0, i % 3 FROM {}",
        q("child"),
        series(backend, name, CHILDREN)
    ))
    .await;
    raw.exec(&format!(
        "INSERT INTO {} (id, grp, x) SELECT i, i % 1000, ((i * 37) % 10007) / 100.0 FROM {}",
        q("big"),
        series(backend, name, BIG)
    ))
    .await;
    let rows = stream_rows();
    raw.exec(&format!(
        "INSERT INTO {} (id, a, b) SELECT i, i % 1000, i * 0.5 FROM {}",
        q("stream"),
        series(backend, name, rows)
    ))
    .await;
    if backend == DatabaseBackend::Postgresql {
        raw.exec("ANALYZE").await;
    }
    Fixture {
        schema,
        parent,
        child,
        big,
        stream,
    }
}

fn stream_rows() -> u64 {
    std::env::var("DJ_BENCH_STREAM_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(STREAM)
}

fn join(f: &Fixture) -> Query {
    &(&f.child * &f.parent) & "value < 0.5"
}

fn aggregate(f: &Fixture) -> Query {
    U::new(["grp"]).aggr(&f.big, ["count(*) -> n", "avg(x) -> mean_x"])
}

async fn time<F, Fut>(iters: u64, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    for _ in 0..iters {
        f().await;
    }
    start.elapsed()
}

/// The child process: stream every row of the `stream` table, then print the row count, the
/// seconds it took and the peak resident memory.
fn stream_child(spec: &str) {
    let mut parts = spec.splitn(3, '|');
    let (backend, url, schema) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let backend = if backend == "postgres" {
        DatabaseBackend::Postgresql
    } else {
        DatabaseBackend::Mysql
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = Connection::open(&config(backend, url)).await.unwrap();
        let t = conn
            .existing_schema(schema)
            .await
            .unwrap()
            .table_by_class("Stream")
            .await
            .unwrap();
        let start = Instant::now();
        let mut n = 0u64;
        let mut sum = 0i64;
        let mut s = std::pin::pin!(t.query().stream::<Small>());
        while let Some(row) = s.next().await {
            let row = row.unwrap();
            sum += i64::from(row.a);
            n += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .map(|v| v.trim().trim_end_matches("kB").trim().to_string())
            .unwrap_or_else(|| "?".into());
        println!("rows {n} sum {sum} seconds {secs:.3} vmhwm_kib {hwm}");
        conn.close().await;
    });
}

fn queries(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (label, backend, url) in common::server_backends() {
        let name = format!("djbench_q_{}", std::process::id());
        let (conn, raw, f) = rt.block_on(async {
            let conn = Connection::open(&config(backend, &url)).await.unwrap();
            let raw = Raw::open(backend, &url).await;
            let f = declare_and_fill(&conn, &raw, backend, &name).await;
            (conn, raw, f)
        });
        let expected = rt.block_on(async { join(&f).len().await.unwrap() }) as usize;

        let mut g = c.benchmark_group(format!("{label}: join 100,000 x 1,000 restricted"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(expected as u64));
        g.bench_function("structs", |b| {
            b.iter_custom(|iters| {
                rt.block_on(time(iters, || async {
                    let rows: Vec<JoinRow> = join(&f).fetch().await.unwrap();
                    assert_eq!(rows.len(), expected);
                }))
            })
        });
        #[cfg(feature = "arrow")]
        g.bench_function("arrow", |b| {
            b.iter_custom(|iters| {
                rt.block_on(time(iters, || async {
                    let batch = join(&f).to_arrow().await.unwrap();
                    assert_eq!(batch.num_rows(), expected);
                }))
            })
        });
        g.bench_function("rows", |b| {
            b.iter_custom(|iters| {
                rt.block_on(time(iters, || async {
                    let rows = join(&f).fetch_rows().await.unwrap();
                    assert_eq!(rows.len(), expected);
                }))
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("{label}: aggregate 1,000,000 rows"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(BIG));
        g.bench_function("dj-rs", |b| {
            b.iter_custom(|iters| {
                rt.block_on(time(iters, || async {
                    let rows = aggregate(&f).fetch_rows().await.unwrap();
                    assert_eq!(rows.len(), 1000);
                }))
            })
        });
        g.bench_function("raw SQL", |b| {
            b.iter_custom(|iters| {
                rt.block_on(time(iters, || async {
                    assert_eq!(raw.aggregate(&name).await.len(), 1000);
                }))
            })
        });
        g.finish();

        // Streaming, in a child process so that its peak memory is its own.
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .env(STREAM_CHILD, format!("{label}|{url}|{name}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        match text.lines().find(|l| l.starts_with("rows ")) {
            Some(line) => {
                let field = |k: &str| {
                    line.split_whitespace()
                        .skip_while(|w| *w != k)
                        .nth(1)
                        .unwrap_or("?")
                        .to_string()
                };
                let kib: f64 = field("vmhwm_kib").parse().unwrap_or(f64::NAN);
                println!(
                    "{label}: stream {} rows: {} s, peak RSS {:.1} MiB (goal: under 100 MiB)",
                    field("rows"),
                    field("seconds"),
                    kib / 1024.0
                );
                assert_eq!(field("rows"), stream_rows().to_string());
            }
            None => println!(
                "{label}: the stream child failed: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }

        rt.block_on(async {
            let Fixture {
                schema,
                parent,
                child,
                big,
                stream,
            } = f;
            drop((parent, child, big, stream));
            schema.drop().await.unwrap();
            raw.close().await;
            conn.close().await;
        });
    }
}

fn main() {
    if let Ok(spec) = std::env::var(STREAM_CHILD) {
        stream_child(&spec);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    queries(&mut c);
    c.final_summary();
}
