//! Test harness: every test runs on SQLite, PostgreSQL and MariaDB/MySQL.
//!
//! PostgreSQL and MySQL come from `DJ_TEST_POSTGRES_URL` and `DJ_TEST_MYSQL_URL`. When one is
//! unset the backend is skipped with a message, unless `CI=true`, where that is a failure.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use dj_config::Config;
use dj_config::{DatabaseBackend, Secret};
use dj_schema::{Connection, Schema};

use dj_codec_blob as _;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique schema name for this test and process.
pub fn schema_name(test: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("djt_{test}_{}_{n}", std::process::id())
}

fn env_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{var} is not set, and CI=true: the database tests must run on every backend"
                );
            }
            eprintln!("SKIP backend: {var} is not set (set it to run these tests on that server)");
            None
        }
    }
}

/// Configs for every available backend, with a label.
pub fn configs() -> Vec<(&'static str, Config, Option<tempfile::TempDir>)> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = Config::default();
    sqlite.database.path = Some(dir.path().join("test.sqlite"));
    out.push(("sqlite", sqlite, Some(dir)));
    if let Some(url) = env_url("DJ_TEST_POSTGRES_URL") {
        let mut c = Config::default();
        c.database.backend = DatabaseBackend::Postgresql;
        c.database.url = Some(Secret::new(url));
        out.push(("postgres", c, None));
    }
    if let Some(url) = env_url("DJ_TEST_MYSQL_URL") {
        let mut c = Config::default();
        c.database.backend = DatabaseBackend::Mysql;
        c.database.url = Some(Secret::new(url));
        out.push(("mysql", c, None));
    }
    out
}

/// Run `body` once per backend with a fresh schema, dropping the schema afterwards.
pub async fn each_backend<F, Fut>(test: &str, body: F)
where
    F: Fn(&'static str, Schema) -> Fut,
    Fut: Future<Output = ()>,
{
    each_backend_with(test, |c| c, body).await
}

/// As [`each_backend`], adjusting each configuration first (stores, for instance).
pub async fn each_backend_with<F, Fut, C>(test: &str, adjust: C, body: F)
where
    C: Fn(Config) -> Config,
    F: Fn(&'static str, Schema) -> Fut,
    Fut: Future<Output = ()>,
{
    for (label, config, _dir) in configs() {
        let config = adjust(config);
        let conn = Connection::open(&config)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let name = schema_name(test);
        let schema = conn
            .schema(&name)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        eprintln!("--- {test} on {label} (schema {name})");
        body(label, schema.clone()).await;
        schema
            .drop()
            .await
            .unwrap_or_else(|e| panic!("{label}: drop: {e}"));
        conn.close().await;
    }
}

/// Every file under `dir`, recursively, sorted (none when `dir` does not exist).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                pending.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
