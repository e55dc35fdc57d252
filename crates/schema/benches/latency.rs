//! Per-query latency and many-row inserts on PostgreSQL and MariaDB, side by side with
//! DataJoint Python 2.3.5 and with the floors of the driver itself (`cargo bench -p dj-schema
//! --bench latency --all-features`, or `cargo xtask bench`):
//!
//! - **fetch1**: `fetch1` of each of 1000 small rows by key (`id : int32`, `a : int32`,
//!   `b : float64`, `c : varchar(32)`), one after the other; the floor is the same 1000
//!   `SELECT … WHERE id = ?` through sqlx on one connection, prepared once;
//! - **insert**: one `insert` of 10,000 such rows into an empty table; the floors are sqlx on one
//!   connection in one transaction: multi-row `INSERT`s of 1000 rows with column-typed binds,
//!   and on PostgreSQL a binary `COPY`.
//!
//! The rounds alternate: each round times dj-rs, then DataJoint (a Python process this bench
//! drives through `_py_latency_worker.py`, started once per server), then the floors, so all
//! of them run under the same load. Each figure is the median of the rounds
//! (`DJ_BENCH_ROUNDS`, default 7). `DJ_BENCH_BATCH_SWEEP=1` also times the INSERT floor at
//! other batch sizes. DataJoint's column is skipped when `DJ_TEST_PYTHON` (or the project's
//! `.cache/venv`) has no `datajoint`. PostgreSQL and MariaDB run when `DJ_TEST_POSTGRES_URL` /
//! `DJ_TEST_MYSQL_URL` are set.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use dj_config::Config;
use dj_config::{DatabaseBackend, Secret};
use dj_schema::{Connection, Row, Table, Tier, row};
use sqlx::{AssertSqlSafe, Connection as _, Row as _};

const FETCH_ROWS: i32 = 1000;
const INSERT_ROWS: i32 = 10_000;
const FLOOR_BATCH: usize = 1000;
const DEFINITION: &str = "id : int32\n---\na : int32\nb : float64\nc : varchar(32)";

fn rounds() -> usize {
    std::env::var("DJ_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
        .max(1)
}

fn value_a(i: i32) -> i32 {
    i.wrapping_mul(7919) & i32::MAX
}

fn rows(n: i32) -> Vec<Row> {
    (0..n)
        .map(|i| row! { "id" => i, "a" => value_a(i), "b" => f64::from(i) * 0.5, "c" => format!("row {i}") })
        .collect()
}

/// DataJoint Python, driven a command at a time.
struct Py {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Py {
    fn python() -> Option<PathBuf> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let p = std::env::var_os("DJ_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".cache/venv/bin/python"));
        p.exists().then_some(p)
    }

    fn start(url: &str) -> Option<Py> {
        let python = Self::python()?;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches");
        let mut child = Command::new(python)
            .current_dir(&dir)
            .arg("_py_latency_worker.py")
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let stdin = child.stdin.take()?;
        let mut stdout = BufReader::new(child.stdout.take()?);
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line).ok()? == 0 {
                let _ = child.wait();
                return None;
            }
            if line.trim() == "ready" {
                break;
            }
        }
        Some(Py {
            child,
            stdin,
            stdout,
        })
    }

    fn run(&mut self, cmd: &str) -> Duration {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let secs: f64 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("DataJoint worker answered {line:?} to {cmd}"));
        Duration::from_secs_f64(secs)
    }

    fn quit(mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

/// The driver alone on one connection: the floors.
enum Raw {
    Pg(sqlx::PgConnection),
    My(sqlx::MySqlConnection),
}

impl Raw {
    async fn open(backend: DatabaseBackend, url: &str) -> Raw {
        match backend {
            DatabaseBackend::Postgresql => Raw::Pg(sqlx::PgConnection::connect(url).await.unwrap()),
            _ => Raw::My(sqlx::MySqlConnection::connect(url).await.unwrap()),
        }
    }

    fn table(&self, schema: &str, table: &str) -> String {
        match self {
            Raw::Pg(_) => format!("\"{schema}\".\"{table}\""),
            Raw::My(_) => format!("`{schema}`.`{table}`"),
        }
    }

    async fn fetch1_all(&mut self, table: &str) -> Duration {
        let start = Instant::now();
        match self {
            Raw::Pg(c) => {
                let sql = format!("SELECT id, a, b, c FROM {table} WHERE id = $1");
                for i in 0..FETCH_ROWS {
                    let r = sqlx::query(AssertSqlSafe(sql.as_str()))
                        .bind(i)
                        .fetch_one(&mut *c)
                        .await
                        .unwrap();
                    let (id, _a, _b, _c): (i32, i32, f64, String) =
                        (r.get(0), r.get(1), r.get(2), r.get(3));
                    assert_eq!(id, i);
                }
            }
            Raw::My(c) => {
                let sql = format!("SELECT id, a, b, c FROM {table} WHERE id = ?");
                for i in 0..FETCH_ROWS {
                    let r = sqlx::query(AssertSqlSafe(sql.as_str()))
                        .bind(i)
                        .fetch_one(&mut *c)
                        .await
                        .unwrap();
                    let (id, _a, _b, _c): (i32, i32, f64, String) =
                        (r.get(0), r.get(1), r.get(2), r.get(3));
                    assert_eq!(id, i);
                }
            }
        }
        start.elapsed()
    }

    async fn empty(&mut self, table: &str) {
        let sql = AssertSqlSafe(format!("DELETE FROM {table}"));
        match self {
            Raw::Pg(c) => {
                sqlx::raw_sql(sql).execute(c).await.unwrap();
            }
            Raw::My(c) => {
                sqlx::raw_sql(sql).execute(c).await.unwrap();
            }
        }
    }

    /// 10,000 rows in one transaction, `batch` rows per prepared multi-row INSERT.
    async fn insert_batched(&mut self, table: &str, batch: usize) -> Duration {
        self.empty(table).await;
        let ids: Vec<i32> = (0..INSERT_ROWS).collect();
        let texts: Vec<String> = ids.iter().map(|i| format!("row {i}")).collect();
        let start = Instant::now();
        macro_rules! run {
            ($c:expr, $ph:expr) => {{
                let mut tx = $c.begin().await.unwrap();
                for chunk in ids.chunks(batch) {
                    let mut sql = format!("INSERT INTO {table} (id, a, b, c) VALUES ");
                    let mut n = 0;
                    for k in 0..chunk.len() {
                        if k > 0 {
                            sql.push(',');
                        }
                        sql.push('(');
                        for j in 0..4 {
                            if j > 0 {
                                sql.push(',');
                            }
                            n += 1;
                            sql.push_str(&$ph(n));
                        }
                        sql.push(')');
                    }
                    let mut q = sqlx::query(AssertSqlSafe(sql));
                    for &i in chunk {
                        q = q
                            .bind(i)
                            .bind(value_a(i))
                            .bind(f64::from(i) * 0.5)
                            .bind(texts[i as usize].as_str());
                    }
                    q.execute(&mut *tx).await.unwrap();
                }
                tx.commit().await.unwrap();
            }};
        }
        match self {
            Raw::Pg(c) => run!(c, |n: usize| format!("${n}")),
            Raw::My(c) => run!(c, |_: usize| "?".to_string()),
        }
        start.elapsed()
    }

    /// 10,000 rows in one transaction through a binary `COPY` (PostgreSQL).
    async fn insert_copy(&mut self, table: &str) -> Option<Duration> {
        self.empty(table).await;
        let Raw::Pg(c) = self else { return None };
        let start = Instant::now();
        let mut buf = Vec::with_capacity(INSERT_ROWS as usize * 48);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
        for i in 0..INSERT_ROWS {
            buf.extend_from_slice(&4i16.to_be_bytes());
            buf.extend_from_slice(&4i32.to_be_bytes());
            buf.extend_from_slice(&i.to_be_bytes());
            buf.extend_from_slice(&4i32.to_be_bytes());
            buf.extend_from_slice(&value_a(i).to_be_bytes());
            buf.extend_from_slice(&8i32.to_be_bytes());
            buf.extend_from_slice(&(f64::from(i) * 0.5).to_be_bytes());
            let s = format!("row {i}");
            buf.extend_from_slice(&(s.len() as i32).to_be_bytes());
            buf.extend_from_slice(s.as_bytes());
        }
        buf.extend_from_slice(&(-1i16).to_be_bytes());
        let mut tx = c.begin().await.unwrap();
        let mut copy = tx
            .copy_in_raw(&format!(
                "COPY {table} (id, a, b, c) FROM STDIN (FORMAT binary)"
            ))
            .await
            .unwrap();
        copy.send(buf).await.unwrap();
        let n = copy.finish().await.unwrap();
        assert_eq!(n, INSERT_ROWS as u64);
        tx.commit().await.unwrap();
        Some(start.elapsed())
    }

    async fn close(self) {
        match self {
            Raw::Pg(c) => c.close().await.unwrap(),
            Raw::My(c) => c.close().await.unwrap(),
        }
    }
}

/// The same lookups through a sqlx pool like dj-rs's (no health check on acquire), acquiring a
/// connection per lookup: what the pool alone costs (sqlx checks a connection with a round trip
/// when it goes back to the pool, in a task of its own).
async fn pool_fetch1_all(backend: DatabaseBackend, url: &str, table: &str) -> Duration {
    macro_rules! run {
        ($opts:ty, $ph:expr) => {{
            let pool = <$opts>::new()
                .max_connections(5)
                .test_before_acquire(false)
                .connect(url)
                .await
                .unwrap();
            let sql = format!("SELECT id, a, b, c FROM {table} WHERE id = {}", $ph);
            // Warm: every pooled connection prepares the statement.
            for i in 0..20 {
                sqlx::query(AssertSqlSafe(sql.as_str()))
                    .bind(i)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            }
            let start = Instant::now();
            for i in 0..FETCH_ROWS {
                let r = sqlx::query(AssertSqlSafe(sql.as_str()))
                    .bind(i)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                let id: i32 = r.get(0);
                assert_eq!(id, i);
            }
            let d = start.elapsed();
            pool.close().await;
            d
        }};
    }
    match backend {
        DatabaseBackend::Postgresql => run!(sqlx::postgres::PgPoolOptions, "$1"),
        _ => run!(sqlx::mysql::MySqlPoolOptions, "?"),
    }
}

async fn dj_fetch1_all(t: &Table) -> Duration {
    let start = Instant::now();
    for i in 0..FETCH_ROWS {
        let r: Row = t.restrict(row! { "id" => i }).fetch1().await.unwrap();
        assert_eq!(r["id"].as_i64(), Some(i64::from(i)));
    }
    start.elapsed()
}

async fn dj_insert(t: &Table, rows: &[Row]) -> Duration {
    t.delete().await.unwrap();
    let start = Instant::now();
    let n = t.insert(rows).await.unwrap();
    let d = start.elapsed();
    assert_eq!(n as usize, rows.len());
    d
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[derive(Default)]
struct Times {
    dj: Vec<Duration>,
    py: Vec<Duration>,
    floor: Vec<Duration>,
    copy: Vec<Duration>,
    pool: Vec<Duration>,
}

fn report(label: &str, work: &str, t: &mut Times, floor_name: &str) {
    let dj = median(&mut t.dj);
    let mut line = format!("{label}: {work}: dj-rs {:.1} ms", ms(dj));
    if !t.py.is_empty() {
        let py = median(&mut t.py);
        line += &format!(
            "; DataJoint 2.3.5 {:.1} ms ({:.1}x faster)",
            ms(py),
            py.as_secs_f64() / dj.as_secs_f64()
        );
    } else {
        line += "; DataJoint 2.3.5 not run";
    }
    let floor = median(&mut t.floor);
    line += &format!(
        "; floor ({floor_name}) {:.1} ms (dj-rs {:.2}x the floor)",
        ms(floor),
        dj.as_secs_f64() / floor.as_secs_f64()
    );
    if !t.pool.is_empty() {
        let pool = median(&mut t.pool);
        line += &format!(
            "; sqlx pool, acquire per lookup {:.1} ms (dj-rs {:.2}x)",
            ms(pool),
            dj.as_secs_f64() / pool.as_secs_f64()
        );
    }
    if !t.copy.is_empty() {
        let copy = median(&mut t.copy);
        line += &format!(
            "; COPY floor {:.1} ms (dj-rs {:.2}x)",
            ms(copy),
            dj.as_secs_f64() / copy.as_secs_f64()
        );
    }
    println!("{line}");
}

fn main() {
    // `cargo bench` passes `--bench`; a `cargo test --benches` run passes nothing and should not
    // spend minutes here.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let n = rounds();
    let sweep = std::env::var("DJ_BENCH_BATCH_SWEEP").is_ok_and(|v| v == "1");
    let insert_rows = rows(INSERT_ROWS);
    for (label, backend, url) in common::server_backends() {
        let mut c = Config::default();
        c.database.backend = backend;
        c.database.url = Some(Secret::new(url.clone()));
        let schema_name = format!("djbench_lat_{}", std::process::id());
        let (conn, schema, small, bulk, mut raw) = rt.block_on(async {
            let conn = Connection::open(&c).await.unwrap();
            let schema = conn.schema(&schema_name).await.unwrap();
            let small = schema
                .declare("Small", Tier::Manual, DEFINITION)
                .await
                .unwrap();
            let bulk = schema
                .declare("Bulk", Tier::Manual, DEFINITION)
                .await
                .unwrap();
            schema
                .declare("RawBulk", Tier::Manual, DEFINITION)
                .await
                .unwrap();
            small.insert(&rows(FETCH_ROWS)).await.unwrap();
            let raw = Raw::open(backend, &url).await;
            (conn, schema, small, bulk, raw)
        });
        let small_t = raw.table(&schema_name, "small");
        let raw_t = raw.table(&schema_name, "raw_bulk");
        let mut py = Py::start(&url);
        if py.is_none() {
            println!("{label}: DataJoint 2.3.5 is not available; its column is skipped");
        }
        let mut fetch = Times::default();
        let mut insert = Times::default();
        let mut sweeps: Vec<(usize, Vec<Duration>)> = [100, 250, 500, 1000, 2000, 7500]
            .into_iter()
            .map(|b| (b, Vec::new()))
            .collect();
        // One warm-up round (statements prepared, pools filled), then the timed rounds.
        for round in 0..=n {
            let (f_dj, f_raw, f_pool, i_dj, i_raw, i_copy) = rt.block_on(async {
                let f_dj = dj_fetch1_all(&small).await;
                let f_raw = raw.fetch1_all(&small_t).await;
                let f_pool = pool_fetch1_all(backend, &url, &small_t).await;
                let i_dj = dj_insert(&bulk, &insert_rows).await;
                let i_raw = raw.insert_batched(&raw_t, FLOOR_BATCH).await;
                let i_copy = raw.insert_copy(&raw_t).await;
                if sweep {
                    for (b, times) in &mut sweeps {
                        times.push(raw.insert_batched(&raw_t, *b).await);
                    }
                }
                (f_dj, f_raw, f_pool, i_dj, i_raw, i_copy)
            });
            let (f_py, i_py) = match &mut py {
                Some(p) => (Some(p.run("fetch1")), Some(p.run("insert"))),
                None => (None, None),
            };
            if round == 0 {
                continue;
            }
            fetch.dj.push(f_dj);
            fetch.floor.push(f_raw);
            fetch.pool.push(f_pool);
            insert.dj.push(i_dj);
            insert.floor.push(i_raw);
            insert.copy.extend(i_copy);
            fetch.py.extend(f_py);
            insert.py.extend(i_py);
        }
        report(
            label,
            &format!("fetch1 of {FETCH_ROWS} small rows by key"),
            &mut fetch,
            "sqlx, one connection, prepared",
        );
        report(
            label,
            &format!("insert of {INSERT_ROWS} small rows"),
            &mut insert,
            &format!("sqlx, one connection, {FLOOR_BATCH}-row INSERTs"),
        );
        if sweep {
            for (b, times) in &mut sweeps {
                println!(
                    "{label}: INSERT floor at {b} rows per statement: {:.1} ms",
                    ms(median(times))
                );
            }
        }
        if let Some(p) = py {
            p.quit();
        }
        rt.block_on(async {
            raw.close().await;
            schema.drop().await.unwrap();
            conn.close().await;
        });
    }
}
