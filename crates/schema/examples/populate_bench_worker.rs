//! A populate worker process for `benches/py_populate_bench.py` (run by `cargo xtask bench`).
//!
//! It populates `Result` of an existing schema (declared by DataJoint 2.3.5 as in
//! `tests/interop/populate_worker.py`: `Item(n : int32 --- x : int64)` and the Computed
//! `Result(-> Item --- y : int64, worker : varchar(8))`) with a trivial `make` that inserts one
//! row, optionally after sleeping to model real work, and prints one JSON line:
//!
//! ```text
//! populate_bench_worker URL SCHEMA [--direct] [--refresh] [--random] [--sleep-ms N]
//! -> {"start": unix seconds, "end": unix seconds, "seconds": f, "cpu_seconds": f,
//!     "success_count": n, "skipped": n}
//! ```
//!
//! `start`/`end` bracket the `populate` call only (not process start or connecting), so that the
//! bench can compute the throughput of several workers from the earliest start to the latest end;
//! `cpu_seconds` is the CPU time the process used in that call.
//! Without `--direct` it works through the job table `~~result` (`reserve_jobs`), without
//! refreshing it unless `--refresh` is given (the bench fills the queue first, as a pipeline
//! operator would before starting workers); `--random` takes the keys in random order (several
//! workers then rarely try the same key), otherwise in DataJoint's order.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dj_config::Config;
use dj_config::{DatabaseBackend, Secret};
use dj_schema::populate::{Make, MakeContext, MakeResult, Order, Populate};
use dj_schema::{Connection, Row};

/// Inserts `key` with `y = 0`, `worker = "rs"`, after `sleep` (inside the job's transaction, as
/// a Python `make` that sleeps).
struct Trivial {
    sleep: Duration,
}

impl Make for Trivial {
    async fn make(&self, key: &Row, cx: &MakeContext<'_>) -> MakeResult<()> {
        if !self.sleep.is_zero() {
            tokio::time::sleep(self.sleep).await;
        }
        let mut out = key.clone();
        out.insert("y".into(), 0.into());
        out.insert("worker".into(), "rs".into());
        cx.insert1(cx.target(), &out).await?;
        Ok(())
    }
}

/// CPU time (user + system) this process used so far, in seconds, from `/proc/self/stat`
/// (0 where there is none).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The fields after the parenthesised command name; utime and stime are the 14th and 15th
    // fields of the line, in clock ticks (100 per second on Linux).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

async fn run(args: &[String]) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let [url, schema_name, flags @ ..] = args else {
        return Err("usage: populate_bench_worker URL SCHEMA [--direct] [--refresh] [--random] [--sleep-ms N]".into());
    };
    let mut direct = false;
    let mut refresh = false;
    let mut random = false;
    let mut sleep = Duration::ZERO;
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        match f.as_str() {
            "--direct" => direct = true,
            "--refresh" => refresh = true,
            "--random" => random = true,
            "--sleep-ms" => {
                let ms: u64 = it.next().ok_or("--sleep-ms needs a value")?.parse()?;
                sleep = Duration::from_millis(ms);
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let mut config = Config::default();
    config.database.backend = if url.starts_with("postgres") {
        DatabaseBackend::Postgresql
    } else {
        DatabaseBackend::Mysql
    };
    config.database.url = Some(Secret::new(url.clone()));
    let conn = Connection::open(&config).await?;
    let schema = conn.existing_schema(schema_name).await?;
    let result = schema.table("__result").await?;
    let maker = Trivial { sleep };
    let start = unix_now();
    let cpu_start = cpu_seconds();
    let clock = Instant::now();
    let report = if direct {
        Populate::new(&result, &maker).run().await?
    } else {
        Populate::new(&result, &maker)
            .reserve_jobs(true)
            .refresh(refresh)
            .order(if random {
                Order::Random
            } else {
                Order::Original
            })
            .run()
            .await?
    };
    let seconds = clock.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    let end = unix_now();
    conn.close().await;
    Ok(serde_json::json!({
        "start": start,
        "end": end,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "success_count": report.success_count,
        "skipped": report.skipped,
    }))
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("populate_bench_worker: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&args)) {
        Ok(v) => {
            println!("{v}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("populate_bench_worker: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
