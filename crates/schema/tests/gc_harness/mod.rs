//! What the garbage-collection tests share (`gc.rs`, `gc_incomplete.rs`): store kinds, a test
//! codec that holds path-addressed metadata, running a body on every database backend with
//! stores configured, and small helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use dj_config::StoreSpec;
use dj_core::codec::{Codec, CodecContext};
use dj_core::registry::{Registry, StoreSet};
use dj_core::store::{Store, StoreExt, StorePath};
use dj_core::typespec::TypeSpec;
use dj_core::value::Value;
use dj_schema::lifecycle::{Gc, GcOptions, GcReport};
use dj_schema::{Connection, Row, Schema};
use serde_json::{Value as Json, json};

use crate::common;

/// A store-only codec whose stored value is path-addressed JSON metadata (as `<object@>`'s is):
/// it takes the metadata and adds the store; `referenced_paths` is the default (`path`, `store`).
/// Tests use it to reference objects they wrote by hand.
#[derive(Debug)]
pub struct Ptr;

#[async_trait]
impl Codec for Ptr {
    fn name(&self) -> &str {
        "gcptr"
    }
    fn dtype(&self, is_store: bool) -> dj_core::Result<TypeSpec> {
        if !is_store {
            return Err(dj_core::Error::codec("gcptr", "store only"));
        }
        "json".parse()
    }
    async fn encode(&self, v: Value, cx: &CodecContext) -> dj_core::Result<Value> {
        let Value::Json(mut j) = v else {
            return Err(dj_core::Error::codec("gcptr", "takes JSON metadata"));
        };
        j["store"] = json!(cx.store);
        Ok(Value::Json(j))
    }
    async fn decode(&self, v: Value, _cx: &CodecContext) -> dj_core::Result<Value> {
        Ok(v)
    }
}

/// Register the test codecs once per process.
fn setup() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        Registry::global().register_codec(Arc::new(Ptr)).unwrap();
    });
}

pub fn file_spec(name: &str, dir: &Path) -> StoreSpec {
    let root = dir.join(name);
    std::fs::create_dir_all(&root).unwrap();
    StoreSpec::new(name, "file", root.to_string_lossy())
}

/// The store kinds a test runs on: a file store in `dir/name` always, S3 when the environment
/// provides one (required under CI, as in objects.rs), under a prefix of its own.
pub fn store_kinds(name: &str, dir: &Path) -> Vec<(&'static str, StoreSpec)> {
    let mut out = vec![("file", file_spec(name, dir))];
    if let Some(s3) = dj_testkit::s3_spec_from_env(
        name,
        "s3",
        &dj_testkit::unique_prefix(&format!("gc-{name}")),
    ) {
        out.push(("s3", s3));
    }
    out
}

/// Remove everything a test left in a store (S3 runs share one bucket; file stores live in a
/// temporary directory anyway).
pub async fn wipe(spec: &StoreSpec) {
    let mut config = dj_config::Config::default();
    config.stores.specs.insert(spec.name.clone(), spec.clone());
    let set = StoreSet::new(config);
    let store = set.get(&spec.name).unwrap();
    for m in store.list_all(None).await.unwrap() {
        store.delete(&m.path).await.unwrap();
    }
}

pub struct Ctx {
    pub label: String,
    pub conn: Connection,
    pub schema: Schema,
}

impl Ctx {
    pub fn store(&self, name: &str) -> Arc<dyn Store> {
        self.conn.stores().get(name).unwrap()
    }

    /// Every key of the store under `prefix`, sorted.
    pub async fn keys(&self, store: &str, prefix: &str) -> Vec<String> {
        let p = StorePath::parse(prefix).unwrap();
        let mut keys: Vec<String> = self
            .store(store)
            .list_all(Some(&p))
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.path.as_str().to_string())
            .collect();
        keys.sort();
        keys
    }

    /// A collection of `store` limited to this test's schema.
    pub fn gc(&self, store: &str) -> Gc {
        Gc::new(&self.conn, store).schemas([self.schema.name()])
    }
}

/// Run `body` on every database backend with `specs` configured; `wrap` may replace stores in
/// the connection's store set (fault injection). The schema is dropped afterwards.
pub async fn each_backend<W, F, Fut>(test: &str, specs: &[StoreSpec], wrap: W, body: F)
where
    W: Fn(&StoreSet),
    F: Fn(Ctx) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    setup();
    let downloads = tempfile::tempdir().unwrap();
    for (label, mut config, _dir) in common::configs() {
        for s in specs {
            config.stores.specs.insert(s.name.clone(), s.clone());
        }
        config.download_path = downloads.path().to_path_buf();
        config.transfer_concurrency = 4;
        let config = Arc::new(config);
        let set = StoreSet::new(config.core());
        wrap(&set);
        let conn = Connection::open_with(Arc::clone(&config), Arc::new(set))
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let name = common::schema_name(test);
        let schema = conn.schema(&name).await.unwrap();
        eprintln!("--- {test} on {label} (schema {name})");
        body(Ctx {
            label: label.to_string(),
            conn: conn.clone(),
            schema: schema.clone(),
        })
        .await;
        schema.drop().await.unwrap();
        conn.close().await;
    }
}

pub fn no_wrap(_: &StoreSet) {}

/// Delete with zero grace (explicitly allowed: these tests write nothing while it runs).
pub fn zero_grace() -> GcOptions {
    GcOptions::grace(Duration::ZERO)
        .allow_zero_grace(true)
        .dry_run(false)
}

/// Delete with `grace` (zero explicitly allowed).
pub fn deleting(grace: Duration) -> GcOptions {
    GcOptions::grace(grace)
        .allow_zero_grace(grace.is_zero())
        .dry_run(false)
}

pub fn assert_nothing_deleted(r: &GcReport, label: &str) {
    assert_eq!(r.deleted(), 0, "{label}: {r:#?}");
}

/// The JSON metadata stored for `attr` (a JSON value, or JSON text on MySQL).
pub fn meta_of(row: &Row, attr: &str) -> Json {
    match &row[attr] {
        Value::Json(j) => j.clone(),
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => panic!("{attr} stored as {other:?}"),
    }
}

/// The store path in the metadata stored for `attr`.
pub fn path_of(row: &Row, attr: &str) -> String {
    meta_of(row, attr)["path"].as_str().unwrap().to_string()
}

/// Pseudo-random bytes (xorshift), distinct per seed.
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Set a file's modification time `by` into the past (shared by all its hard links).
pub fn age_file(path: &Path, by: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - by).unwrap();
}

/// Move the modification time of every file under `root` back by `by`: what time passing does
/// to a store (file stores only; S3 servers keep their own times).
pub fn age_files(root: &Path, by: Duration) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            age_files(&path, by);
        } else {
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            let m = f.metadata().unwrap().modified().unwrap();
            f.set_modified(m - by).unwrap();
        }
    }
}
