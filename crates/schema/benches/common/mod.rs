//! Shared by the schema benches: the database and `files` store they run on, and the arrays they
//! write.
#![allow(dead_code)]

use std::path::Path;

use dj_config::{Config, DatabaseBackend, Secret, StoreSpec};

/// PostgreSQL when `DJ_TEST_POSTGRES_URL` is set (`cargo xtask bench` sets it), else SQLite in
/// `dir`; plus a `file` store called `files` at `dir/files`. Returns the backend's label.
pub fn postgres_or_sqlite_with_files(dir: &Path) -> (&'static str, Config) {
    let mut c = Config::default();
    let label = match std::env::var("DJ_TEST_POSTGRES_URL") {
        Ok(url) => {
            c.database.backend = DatabaseBackend::Postgresql;
            c.database.url = Some(Secret::new(url));
            "postgres"
        }
        Err(_) => {
            c.database.path = Some(dir.join("bench.sqlite"));
            "sqlite"
        }
    };
    let files = dir.join("files");
    std::fs::create_dir_all(&files).expect("create the bench store directory");
    c.stores.specs.insert(
        "files".into(),
        StoreSpec::new("files", "file", files.to_string_lossy()),
    );
    (label, c)
}

/// `n` pseudo-random floats in [-0.5, 0.5) from the xorshift state `x` (advanced), so that
/// successive calls give fresh values.
pub fn uniform(x: &mut u64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            (*x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

/// The test servers the environment names (`DJ_TEST_POSTGRES_URL`, `DJ_TEST_MYSQL_URL`), with
/// their labels and backends.
pub fn server_backends() -> Vec<(&'static str, DatabaseBackend, String)> {
    [
        (
            "postgres",
            DatabaseBackend::Postgresql,
            "DJ_TEST_POSTGRES_URL",
        ),
        ("mariadb", DatabaseBackend::Mysql, "DJ_TEST_MYSQL_URL"),
    ]
    .into_iter()
    .filter_map(|(l, b, var)| {
        std::env::var(var)
            .ok()
            .filter(|u| !u.is_empty())
            .map(|u| (l, b, u))
    })
    .collect()
}
