//! The `populate-traces` binary end to end: seed, populate in one process on SQLite (the
//! embedded defaults: an SQLite file and a file store), and `--workers 2` on PostgreSQL and
//! MariaDB, where every key must be made exactly once.
//!
//! Each run happens in a fresh git repository with `DJ_JOBS_VERSION_METHOD=git`, so that the
//! job versions recorded are the repository's commit; `DJ_JOBS_*` variables set the other job
//! settings (`keep_completed`, `add_job_metadata`), as DataJoint's names.
//!
//! PostgreSQL and MariaDB come from `DJ_TEST_POSTGRES_URL` and `DJ_TEST_MYSQL_URL`
//! (`source /work/test-env.sh`); an unset one is skipped with a message, unless `CI=true`,
//! where it is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use datajoint::Config;
use datajoint::schema::populate::{JobStatus, Jobs};
use datajoint::schema::{Connection, Row};
use populate_traces::{FilteredTrace, Session, declare, load_config_with, moving_average, trace};
use serde_json::{Value as Json, json};

fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "{var} is not set, and CI=true: every service must run"
            );
            eprintln!("SKIP: {var} is not set");
            None
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A fresh git repository with one commit; returns its short hash.
fn git_repo(dir: &Path) -> String {
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "pipeline v1"]);
    git(&["rev-parse", "--short", "HEAD"])
}

/// Run the binary in `dir` with only these `DJ_*` variables.
fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_populate-traces"));
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("DJ_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

fn run_json(dir: &Path, env: &[(&str, &str)], args: &[&str], code: i32) -> Json {
    let o = run(dir, env, args);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(code),
        "{args:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"))
}

/// The config the binary sees in `dir` (without the `DJ_*` variables, which only set jobs
/// settings here).
fn config_in(dir: &Path) -> Config {
    load_config_with(dir, None, &|_: &str| None).unwrap()
}

fn ids(v: &Json) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

#[test]
fn direct_mode_on_sqlite_with_the_embedded_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let version = git_repo(d);
    let env = [
        ("DJ_JOBS_ADD_JOB_METADATA", "true"),
        ("DJ_JOBS_VERSION_METHOD", "git"),
    ];
    let j = run_json(
        d,
        &env,
        &[
            "--json",
            "seed",
            "--sessions",
            "12",
            "--samples",
            "500",
            "--nan-every",
            "5",
        ],
        0,
    );
    assert_eq!(j, json!({"inserted": 12, "sessions": 12}));
    // The embedded defaults: an SQLite file and a file store holding the traces.
    assert!(d.join("populate_traces.sqlite").is_file());
    assert!(d.join("populate_traces_store").is_dir());

    // SQLite cannot be a job queue for several processes.
    let o = run(d, &env, &["populate", "--workers", "2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--workers needs a database server") && err.contains("SQLite"),
        "{err}"
    );

    // One process: sessions 5 and 10 have a NaN sample and fail; the others are made.
    let j = run_json(d, &env, &["--json", "populate", "--window", "5"], 1);
    assert_eq!(j["mode"], "direct");
    assert_eq!(j["backend"], "sqlite");
    assert_eq!(
        (j["made"].as_u64(), j["failed"].as_u64()),
        (Some(10), Some(2))
    );
    assert_eq!(
        (j["remaining"].as_u64(), j["total"].as_u64()),
        (Some(2), Some(12))
    );
    let made: BTreeSet<i64> = ids(&j["workers"][0]["made"]).into_iter().collect();
    let want: BTreeSet<i64> = (1..=12).filter(|i| i % 5 != 0).collect();
    assert_eq!(made, want);
    let errors = j["workers"][0]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["session_id"], 5, "{j}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("session 5: sample 250 of the trace is NaN"),
        "{j}"
    );

    // What was stored: the filter of each trace, with the job's version.
    let config = config_in(d);
    runtime().block_on(async {
        let conn = Connection::open(&config).await.unwrap();
        let p = declare(&conn, populate_traces::DEFAULT_SCHEMA)
            .await
            .unwrap();
        assert_eq!(p.filtered.len().await.unwrap(), 10);
        let rows: Vec<Row> = p
            .filtered
            .query()
            .order_by(["session_id"])
            .fetch_rows()
            .await
            .unwrap();
        for r in rows.iter().map(|r| FilteredTrace::from_row(r).unwrap()) {
            assert_eq!(r.window, 5);
            assert_eq!(
                r.filtered,
                moving_average(&trace(r.session_id, 500, false), 5)
            );
        }
        let s: Row = p
            .session
            .restrict(datajoint::schema::row! {"session_id" => 3})
            .fetch1()
            .await
            .unwrap();
        let s = Session::from_row(&s).unwrap();
        assert_eq!(s.trace, trace(3, 500, false));
        let meta: Vec<Row> = p
            .filtered
            .query()
            .attrs(["_job_version", "_job_duration"])
            .fetch_rows()
            .await
            .unwrap();
        assert_eq!(meta.len(), 10);
        for m in &meta {
            assert_eq!(m["_job_version"].as_str(), Some(version.as_str()), "{m:?}");
        }
        conn.close().await;
    });

    // Again: nothing new is made, the two broken sessions fail again.
    let j = run_json(d, &env, &["--json", "populate", "--no-progress"], 1);
    assert_eq!(
        (j["made"].as_u64(), j["failed"].as_u64()),
        (Some(0), Some(2))
    );
    let j = run_json(d, &env, &["--json", "status"], 0);
    assert_eq!(j, json!({"remaining": 2, "total": 12, "jobs": null}));
}

/// `populate --workers 2` on a server: every key made exactly once, by one of the workers.
fn workers_on(label: &str, url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let version = git_repo(d);
    // The server from the file; the store from the embedded defaults.
    std::fs::write(
        d.join("datajoint.json"),
        json!({"database": {"url": url}}).to_string(),
    )
    .unwrap();
    let schema = format!("populate_traces_{label}_{}", std::process::id());
    let env = [
        ("DJ_JOBS_KEEP_COMPLETED", "true"),
        ("DJ_JOBS_VERSION_METHOD", "git"),
    ];
    let config = config_in(d);
    runtime().block_on(async {
        let conn = Connection::open(&config).await.unwrap();
        if let Ok(old) = conn.existing_schema(&schema).await {
            old.drop().await.unwrap();
        }
        conn.close().await;
    });
    let j = run_json(
        d,
        &env,
        &[
            "--json",
            "--schema",
            &schema,
            "seed",
            "--sessions",
            "60",
            "--samples",
            "2000",
            "--nan-every",
            "25",
        ],
        0,
    );
    assert_eq!(j["sessions"], 60, "{label}");
    let j = run_json(
        d,
        &env,
        &[
            "--json",
            "--schema",
            &schema,
            "populate",
            "--workers",
            "2",
            "--no-progress",
        ],
        1,
    );
    eprintln!("{label}: {j}");
    assert_eq!(j["mode"], "workers", "{label}");
    let workers = j["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{label}");
    let mut all = Vec::new();
    let mut pids = BTreeSet::new();
    for w in workers {
        assert!(w.get("failure").is_none(), "{label}: {w}");
        all.extend(ids(&w["made"]));
        pids.insert(w["pid"].as_i64().unwrap());
    }
    all.sort_unstable();
    let want: Vec<i64> = (1..=60).filter(|i| i % 25 != 0).collect();
    assert_eq!(all, want, "{label}: every key made exactly once");
    assert_eq!(j["made_twice"], json!([]), "{label}");
    assert_eq!(
        (j["made"].as_u64(), j["failed"].as_u64()),
        (Some(58), Some(2))
    );
    assert_eq!(
        (j["remaining"].as_u64(), j["total"].as_u64()),
        (Some(2), Some(60))
    );

    runtime().block_on(async {
        let conn = Connection::open(&config).await.unwrap();
        let p = declare(&conn, &schema).await.unwrap();
        assert_eq!(p.filtered.len().await.unwrap(), 58, "{label}");
        let jobs = Jobs::new(&p.filtered).await.unwrap();
        // DJ_JOBS_KEEP_COMPLETED kept a `success` row per key, with the workers' pids and the
        // repository's commit as the version.
        let done = jobs
            .with_status(JobStatus::Success)
            .fetch_rows()
            .await
            .unwrap();
        assert_eq!(done.len(), 58, "{label}");
        for r in &done {
            assert_eq!(
                r["version"].as_str(),
                Some(version.as_str()),
                "{label}: {r:?}"
            );
            assert!(pids.contains(&r["pid"].as_i64().unwrap()), "{label}: {r:?}");
        }
        let failed = jobs
            .with_status(JobStatus::Error)
            .fetch_rows()
            .await
            .unwrap();
        assert_eq!(failed.len(), 2, "{label}");
        for r in &failed {
            let msg = r["error_message"].as_str().unwrap();
            assert!(
                msg.contains("the filter needs finite samples"),
                "{label}: {msg}"
            );
        }
        conn.existing_schema(&schema)
            .await
            .unwrap()
            .drop()
            .await
            .unwrap();
        conn.close().await;
    });
}

#[test]
fn workers_on_postgres() {
    if let Some(url) = service("DJ_TEST_POSTGRES_URL") {
        workers_on("pg", &url);
    }
}

#[test]
fn workers_on_mariadb() {
    if let Some(url) = service("DJ_TEST_MYSQL_URL") {
        workers_on("my", &url);
    }
}
