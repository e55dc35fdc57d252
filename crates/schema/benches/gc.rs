//! Garbage collection at scale (`cargo bench -p dj-schema --bench gc`; `cargo xtask bench` runs
//! it too), side by side with DataJoint 2.3.5's `GarbageCollector` on the same store and schema.
//!
//! A `file` store under `DJ_BENCH_DIR` (default: the working directory) holds
//! `DJ_BENCH_GC_REFS` (default 100,000) `<object@>` files referenced by rows of one table and
//! `DJ_BENCH_GC_ORPHANS` (default 10,000) orphans. The files are made directly in the store's
//! directory and the rows carry their metadata, so setting up is quick; the table is on
//! PostgreSQL (`DJ_TEST_POSTGRES_URL`), else SQLite. A dry run with zero grace (so that every
//! orphan is reported as one) is timed, and must find exactly the orphans; then, when
//! `DJ_TEST_PYTHON` names a Python with DataJoint (PostgreSQL only), `py_gc_bench.py` runs
//! DataJoint's dry run on the same schema and store, and the ratio is printed.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dj_core::value::Value;
use dj_object::ObjectMetadata;
use dj_schema::lifecycle::{Gc, GcOptions};
use dj_schema::{Connection, Row, Tier, row};

use dj_codec_object as _;
use dj_store_file as _;

fn env_n(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Write `n` small files for rows `first..first + n` of `schema.rec`; return their metadata.
fn make_files(root: &Path, schema: &str, first: usize, n: usize) -> Vec<serde_json::Value> {
    (first..first + n)
        .map(|id| {
            let rel = format!("_schema/{schema}/rec/id={id}/data_T{id:07}.bin");
            let path = root.join(&rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let body = format!("object {id}\n");
            std::fs::write(&path, &body).unwrap();
            let mut meta = ObjectMetadata::new(rel, Some("files".into()));
            meta.size = Some(body.len() as u64);
            meta.ext = Some(".bin".into());
            meta.to_json()
        })
        .collect()
}

fn main() {
    let refs = env_n("DJ_BENCH_GC_REFS", 100_000);
    let orphans = env_n("DJ_BENCH_GC_ORPHANS", 10_000);
    let base = std::env::var("DJ_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let dir = tempfile::tempdir_in(base).unwrap();
    let (label, config) = common::postgres_or_sqlite_with_files(dir.path());
    let root = dir.path().join("files");
    let pg_url = std::env::var("DJ_TEST_POSTGRES_URL").ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let schema_name = format!("djbench_gc_{}", std::process::id());
    rt.block_on(async {
        let conn = Connection::open_with(
            Arc::new(config.clone()),
            Arc::new(dj_core::registry::StoreSet::new(config.clone())),
        )
        .await
        .unwrap();
        let schema = conn.schema(&schema_name).await.unwrap();
        let table = schema
            .declare("Rec", Tier::Manual, "id : int32\n---\ndata : <object@files>")
            .await
            .unwrap();
        let setup = Instant::now();
        let metas = make_files(&root, &schema_name, 0, refs);
        let _ = make_files(&root, &schema_name, refs, orphans);
        let rows: Vec<Row> = metas
            .into_iter()
            .enumerate()
            .map(|(id, m)| row! { "id" => id as i32, "data" => Value::Json(m) })
            .collect();
        for chunk in rows.chunks(20_000) {
            table.insert(chunk).await.unwrap();
        }
        println!(
            "gc bench ({label}): {refs} referenced + {orphans} orphaned files set up in {:.1} s",
            setup.elapsed().as_secs_f64()
        );

        let options = GcOptions::grace(Duration::ZERO).dry_run(true);
        let start = Instant::now();
        let report = Gc::new(&conn, "files")
            .schemas([schema_name.as_str()])
            .options(options)
            .run()
            .await
            .unwrap();
        let rust_s = start.elapsed().as_secs_f64();
        assert!(!report.refused, "{report:#?}");
        assert_eq!(report.schema.referenced as usize, refs);
        assert_eq!(report.schema.orphaned as usize, orphans);
        assert_eq!(report.deleted(), 0);
        println!(
            "gc bench ({label}): dj-rs dry run over {} stored files: {rust_s:.2} s, {} orphans found \
             (bound: 30 s)",
            report.schema.stored, report.schema.orphaned
        );
        assert!(rust_s < 30.0, "the dry run took {rust_s:.1} s");

        let python = std::env::var_os("DJ_TEST_PYTHON").filter(|p| !p.is_empty());
        if let (Some(python), Some(url)) = (python, pg_url.as_ref()) {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/py_gc_bench.py");
            let out = std::process::Command::new(&python)
                .arg(&script)
                .env("DJ_BENCH_GC_SCHEMA", &schema_name)
                .env("DJ_BENCH_GC_STORE", &root)
                .env("DJ_BENCH_GC_ORPHANS", orphans.to_string())
                .env("DJ_TEST_POSTGRES_URL", url)
                .output();
            let (text, errors) = match &out {
                Ok(o) => (
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                ),
                Err(e) => (String::new(), format!("{}: {e}", python.to_string_lossy())),
            };
            match text.lines().find_map(|l| l.strip_prefix("seconds ")) {
                Some(s) => {
                    let py_s: f64 = s.trim().parse().unwrap();
                    println!(
                        "gc bench ({label}): DataJoint 2.3.5 GarbageCollector dry run: {py_s:.2} s; \
                         dj-rs {:.1}x faster",
                        py_s / rust_s
                    );
                }
                // Reported, not fatal: the schema is still dropped below.
                None => println!("gc bench: the DataJoint run failed: {text}{errors}"),
            }
        }
        schema.drop().await.unwrap();
        conn.close().await;
    });
}
