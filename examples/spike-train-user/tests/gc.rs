//! `<spike_train>` from an application's point of view: declare, insert, fetch, delete and
//! garbage-collect on SQLite, PostgreSQL and MariaDB, with a file store and (when the
//! `DJ_TEST_S3_*` variables name one) an S3 store. Live spike trains survive every collection,
//! dry or real; the objects of deleted rows are reclaimed; `Verify` finds every live object
//! intact.
//!
//! PostgreSQL and MariaDB come from `DJ_TEST_POSTGRES_URL` and `DJ_TEST_MYSQL_URL`, S3 from
//! `DJ_TEST_S3_ENDPOINT`, `_BUCKET`, `_ACCESS_KEY` and `_SECRET_KEY` (`source /work/env.sh`). An
//! unset service is skipped with a message, unless `CI=true`, where it is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use datajoint::config::DatabaseBackend;
use datajoint::schema::lifecycle::{Gc, GcOptions, Verify};
use datajoint::schema::{Connection, Row, Table, Tier, row};
use datajoint::{
    Config, Registry, ResolvedType, Secret, StoreExt, StorePath, StoreSet, StoreSpec, Value,
};
use dj_codec_spike_train::SpikeTrain;

// Without this line (and without any other use of the crate) `<spike_train>` would not be
// registered; `the_codec_is_linked` and every scenario check that it is.
use dj_codec_spike_train as _;

const DEFINITION: &str = "
unit_id : int32
---
train : <spike_train>
train_ext = null : <spike_train@>
";

// ------------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------------

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// An environment variable naming a service, or `None` (with a message) when it is unset.
fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                !ci(),
                "{var} is not set, and CI=true: every service must run"
            );
            eprintln!("SKIP: {var} is not set");
            None
        }
    }
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "spike-train-user-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A configuration per available database backend.
fn backends(dir: &Path) -> Vec<(&'static str, Config)> {
    let mut sqlite = Config::default();
    sqlite.database.path = Some(dir.join("test.sqlite"));
    let mut out = vec![("sqlite", sqlite)];
    for (label, var, backend) in [
        (
            "postgres",
            "DJ_TEST_POSTGRES_URL",
            DatabaseBackend::Postgresql,
        ),
        ("mariadb", "DJ_TEST_MYSQL_URL", DatabaseBackend::Mysql),
    ] {
        if let Some(url) = service(var) {
            let mut c = Config::default();
            c.database.backend = backend;
            c.database.url = Some(Secret::new(url));
            out.push((label, c));
        }
    }
    out
}

/// A unique schema name for this process.
fn schema_name(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "spk_{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// An S3 store spec under a fresh prefix, from `DJ_TEST_S3_*`. (The facade does not expose
/// `dj_core::testkit`, so the spec is built here.)
fn s3_spec(name: &str) -> Option<StoreSpec> {
    let endpoint = service("DJ_TEST_S3_ENDPOINT")?;
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} must be set too"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("spike-train-user-{}-{nanos}", std::process::id());
    let mut spec = StoreSpec::new(name, "s3", prefix);
    spec.options.insert("endpoint".into(), endpoint.into());
    spec.options
        .insert("bucket".into(), var("DJ_TEST_S3_BUCKET").into());
    spec.options
        .insert("access_key".into(), var("DJ_TEST_S3_ACCESS_KEY").into());
    spec.options
        .insert("secret_key".into(), var("DJ_TEST_S3_SECRET_KEY").into());
    Some(spec)
}

/// Delete everything under a store's location (S3 runs share one bucket).
async fn wipe(spec: &StoreSpec) {
    let mut config = Config::default();
    config.stores.specs.insert(spec.name.clone(), spec.clone());
    let store = StoreSet::new(config).get(&spec.name).unwrap();
    for meta in store.list_all(None).await.unwrap() {
        store.delete(&meta.path).await.unwrap();
    }
}

// ------------------------------------------------------------------------------------------------
// The scenario
// ------------------------------------------------------------------------------------------------

fn spike_train(unit_id: u32, n: u32) -> SpikeTrain {
    let times = (0..n)
        .map(|i| f64::from(i) * 0.01 + f64::from(unit_id) * 1e-4)
        .collect();
    SpikeTrain::new(unit_id, 20_000.0, times)
}

fn train_of<'r>(row: &'r Row, attr: &str) -> Option<&'r SpikeTrain> {
    row.get(attr).and_then(Value::as_domain::<SpikeTrain>)
}

/// The rows, by unit id: `(unit_id, train, train_ext)`.
async fn contents(t: &Table) -> Vec<(i64, SpikeTrain, Option<SpikeTrain>)> {
    let rows: Vec<Row> = t.query().order_by(["unit_id"]).fetch().await.unwrap();
    rows.iter()
        .map(|r| {
            let ext = match &r["train_ext"] {
                Value::Null => None,
                _ => Some(train_of(r, "train_ext").expect("a SpikeTrain").clone()),
            };
            (
                r["unit_id"].as_i64().unwrap(),
                train_of(r, "train").expect("a SpikeTrain").clone(),
                ext,
            )
        })
        .collect()
}

async fn exists(conn: &Connection, store: &str, path: &str) -> bool {
    let store = conn.stores().get(store).unwrap();
    store
        .exists(&StorePath::parse(path).unwrap())
        .await
        .unwrap()
}

fn zero_grace() -> GcOptions {
    GcOptions::grace(Duration::ZERO)
        .allow_zero_grace(true)
        .dry_run(false)
}

/// Declare, insert, collect (nothing to delete), delete rows, collect (the orphan goes), verify.
async fn scenario(label: &str, mut config: Config, spec: &StoreSpec) {
    assert!(
        Registry::global().codec("spike_train").is_ok(),
        "dj-codec-spike-train is not linked: `<spike_train>` is not registered"
    );
    let store = spec.name.as_str();
    config.stores.specs.insert(spec.name.clone(), spec.clone());
    config.stores.default = Some(spec.name.clone());
    let conn = Connection::open(&config)
        .await
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let name = schema_name(store);
    let schema = conn.schema(&name).await.unwrap();
    eprintln!("--- {label} (schema {name})");

    let unit = schema
        .declare("Unit", Tier::Manual, DEFINITION)
        .await
        .unwrap();
    let ext = unit
        .heading()
        .attributes
        .iter()
        .find(|a| a.name == "train_ext")
        .unwrap();
    // The bare `@` was resolved to the default store and recorded.
    assert_eq!(
        ext.spec.to_string(),
        format!("<spike_train@{store}>"),
        "{label}"
    );
    let ty = ResolvedType::resolve(&ext.spec, Registry::global(), &config).unwrap();
    let chain: Vec<&str> = ty.chain.iter().map(|c| c.name()).collect();
    assert_eq!(chain, ["spike_train", "blob", "hash"], "{label}");
    assert_eq!(ty.store.as_deref(), Some(store), "{label}");

    // Units 1 and 3 share one stored train (A); unit 2 has its own (B); unit 4 has none.
    let (a, b) = (spike_train(1, 300), spike_train(2, 500));
    let rows = vec![
        row! {"unit_id" => 1, "train" => a.clone(), "train_ext" => a.clone()},
        row! {"unit_id" => 2, "train" => b.clone(), "train_ext" => b.clone()},
        row! {"unit_id" => 3, "train" => spike_train(3, 10), "train_ext" => a.clone()},
        row! {"unit_id" => 4, "train" => spike_train(4, 0)},
    ];
    assert_eq!(unit.insert(&rows).await.unwrap(), 4, "{label}");
    let want = vec![
        (1, a.clone(), Some(a.clone())),
        (2, b.clone(), Some(b.clone())),
        (3, spike_train(3, 10), Some(a.clone())),
        (4, spike_train(4, 0), None),
    ];
    assert_eq!(contents(&unit).await, want, "{label}");

    let stored = unit
        .query()
        .order_by(["unit_id"])
        .fetch_stored()
        .await
        .unwrap();
    let path = |i: usize| -> String {
        let refs = ty.referenced_paths(&stored[i]["train_ext"]);
        assert_eq!(refs.len(), 1, "{label}: {refs:?}");
        assert_eq!(refs[0].store.as_deref(), Some(store), "{label}");
        refs[0].path.clone()
    };
    let (path_a, path_b) = (path(0), path(1));
    assert_eq!(path(2), path_a, "{label}: equal trains share an object");
    assert!(
        path_a.starts_with(&format!("_hash/{name}/")),
        "{label}: {path_a}"
    );

    // Nothing is orphaned yet: dry runs and real runs (default and zero grace) delete nothing.
    let gc = || Gc::new(&conn, store).schemas([name.as_str()]);
    let dry = gc().run().await.unwrap();
    assert!(dry.dry_run, "{label}");
    assert_eq!(
        (dry.hash.referenced, dry.hash.stored, dry.orphaned()),
        (2, 2, 0),
        "{label}: {dry:#?}"
    );
    assert!(
        dry.scan_errors.is_empty() && !dry.refused,
        "{label}: {dry:#?}"
    );
    for options in [GcOptions::default().dry_run(false), zero_grace()] {
        let real = gc().options(options).run().await.unwrap();
        assert_eq!(real.deleted(), 0, "{label}: {real:#?}");
        assert!(real.is_clean(), "{label}: {real:#?}");
    }
    assert_eq!(contents(&unit).await, want, "{label}: after collections");

    // A value that is not a spike train is refused, naming the codec; nothing is written.
    let err = unit
        .insert1(&row! {"unit_id" => 9, "train" => "not a spike train"})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("codec <spike_train>"), "{label}: {err}");
    let unsorted = SpikeTrain::new(9, 1.0, vec![2.0, 1.0]);
    let err = unit
        .insert1(&row! {"unit_id" => 9, "train" => a.clone(), "train_ext" => unsorted})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ascending order"), "{label}: {err}");
    assert_eq!(unit.len().await.unwrap(), 4, "{label}");

    // Delete units 1 and 2: A is still referenced by unit 3, B is orphaned.
    assert_eq!(
        unit.restrict(row! {"unit_id" => 1}).delete().await.unwrap(),
        1
    );
    assert_eq!(
        unit.restrict(row! {"unit_id" => 2}).delete().await.unwrap(),
        1
    );

    // The default grace protects the young orphan; a zero-grace dry run names it, deletes nothing.
    let dry = gc().run().await.unwrap();
    assert_eq!(
        (dry.hash.referenced, dry.hash.skipped_young, dry.deleted()),
        (1, 1, 0),
        "{label}: {dry:#?}"
    );
    let dry = gc()
        .options(GcOptions::grace(Duration::ZERO).allow_zero_grace(true))
        .run()
        .await
        .unwrap();
    assert_eq!(
        dry.hash.orphaned_paths,
        std::slice::from_ref(&path_b),
        "{label}: {dry:#?}"
    );
    assert_eq!(dry.deleted(), 0, "{label}: {dry:#?}");
    assert!(
        exists(&conn, store, &path_b).await,
        "{label}: a dry run deleted"
    );

    let real = gc().options(zero_grace()).run().await.unwrap();
    assert_eq!(
        (real.hash.referenced, real.hash.deleted),
        (1, 1),
        "{label}: {real:#?}"
    );
    assert!(real.is_clean(), "{label}: {real:#?}");
    assert!(!exists(&conn, store, &path_b).await, "{label}: orphan kept");
    assert!(
        exists(&conn, store, &path_a).await,
        "{label}: live object deleted"
    );
    assert_eq!(
        contents(&unit).await,
        want[2..].to_vec(),
        "{label}: after GC"
    );

    // A second collection finds nothing more; Verify finds the live object intact.
    let again = gc().options(zero_grace()).run().await.unwrap();
    assert_eq!(
        (again.orphaned(), again.deleted()),
        (0, 0),
        "{label}: {again:#?}"
    );
    let verified = Verify::new(&conn)
        .store(store)
        .schemas([name.as_str()])
        .run()
        .await
        .unwrap();
    assert!(verified.is_clean(), "{label}: {verified:#?}");
    assert_eq!(
        (verified.ok, verified.missing, verified.corrupt),
        (1, 0, 0),
        "{label}: {verified:#?}"
    );

    schema.drop().await.unwrap();
    conn.close().await;
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

#[test]
fn the_codec_is_linked() {
    let registry = Registry::global();
    registry
        .codec("spike_train")
        .expect("dj-codec-spike-train is linked and registered");
    datajoint::check_registry().unwrap();
    assert!(
        registry.conflicts().is_empty(),
        "{:?}",
        registry.conflicts()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_on_every_backend_with_a_file_store() {
    let scratch = Scratch::new("file");
    let root = scratch.0.join("store");
    std::fs::create_dir_all(&root).unwrap();
    let spec = StoreSpec::new("spkfile", "file", root.to_string_lossy());
    for (label, config) in backends(&scratch.0) {
        scenario(&format!("{label} + file"), config, &spec).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_on_every_backend_with_an_s3_store() {
    let Some(spec) = s3_spec("spks3") else {
        return;
    };
    let scratch = Scratch::new("s3");
    for (label, config) in backends(&scratch.0) {
        scenario(&format!("{label} + s3"), config, &spec).await;
    }
    wipe(&spec).await;
}
