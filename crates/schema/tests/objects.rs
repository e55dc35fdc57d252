//! Hash-addressed object storage through tables, on SQLite, PostgreSQL and MariaDB: `<blob@>`,
//! `<blob@store>`, `<attach>`, `<attach@>`, named stores on different protocols side by side,
//! deduplication, concurrent transfers, and faults (a store failing mid-batch, corrupted and
//! missing objects, an unreachable endpoint, a missing bucket).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use dj_codec_attach::Attachment;
use dj_codec_blob::Item;
use dj_config::{Config, StoreSpec};
use dj_core::registry::StoreSet;
use dj_core::store::{
    Capabilities, GetOptions, GetResult, MultipartUpload, ObjectMeta, PutOptions, PutResult, Store,
    StoreExt, StorePath,
};
use dj_core::value::Value;
use dj_schema::{Connection, Row, Schema, Tier, row};
use dj_testkit::{Fault, FaultyStore};
use futures::stream::BoxStream;
use serde_json::Value as Json;

use dj_codec_hash as _;
use dj_store_file as _;
use dj_store_s3 as _;

/// An S3 store spec for the loopback server, if `cargo xtask` started one (required under CI).
fn s3_spec(name: &str, location: &str) -> Option<StoreSpec> {
    dj_testkit::s3_spec_from_env(name, "s3", location)
}

fn file_spec(name: &str, dir: &Path) -> StoreSpec {
    std::fs::create_dir_all(dir).unwrap();
    StoreSpec::new(name, "file", dir.to_string_lossy())
}

/// Run `body` on every backend with the stores `stores` builds for that configuration.
async fn each_backend_stored<S, F, Fut>(
    test: &str,
    adjust: impl Fn(&mut Config),
    stores: S,
    body: F,
) where
    S: Fn(&Arc<Config>) -> Arc<StoreSet>,
    F: Fn(&'static str, Schema) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for (label, mut config, _dir) in common::configs() {
        adjust(&mut config);
        let config = Arc::new(config);
        let set = stores(&config);
        let conn = Connection::open_with(Arc::clone(&config), set)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let name = common::schema_name(test);
        let schema = conn.schema(&name).await.unwrap();
        eprintln!("--- {test} on {label} (schema {name})");
        body(label, schema.clone()).await;
        schema.drop().await.unwrap();
        conn.close().await;
    }
}

fn default_stores(config: &Arc<Config>) -> Arc<StoreSet> {
    Arc::new(StoreSet::new(config.core()))
}

fn array(seed: u64, n: usize) -> Item {
    let mut x = seed | 1;
    Item::from(
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 11) as f64
            })
            .collect::<Vec<f64>>(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_in_named_stores_side_by_side_and_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    let s3 = s3_spec("cold", &dj_testkit::unique_prefix("objects"));
    let has_s3 = s3.is_some();
    let adjust = |c: &mut Config| {
        c.stores
            .specs
            .insert("local".into(), file_spec("local", &local));
        c.stores.specs.insert(
            "cold".into(),
            s3.clone()
                .unwrap_or_else(|| file_spec("cold", &dir.path().join("cold"))),
        );
        c.stores.default = Some("local".into());
    };
    each_backend_stored("stores", adjust, default_stores, |label, s| {
        let local = local.clone();
        async move {
            let t = s
                .declare(
                    "Recording",
                    Tier::Manual,
                    "recording_id : int32\n---\nmetadata : <blob>\nraw : <blob@>\narchive = null : <blob@cold>",
                )
                .await
                .unwrap();
            // The bare `@` is recorded as the store it resolved to.
            assert_eq!(
                t.heading().attribute("raw").unwrap().spec.to_string(),
                "<blob@local>"
            );
            let a = array(1, 20_000);
            let b = array(2, 20_000);
            t.insert(&[
                row! {"recording_id" => 1, "metadata" => Value::from("m1"),
                "raw" => Value::domain(a.clone()), "archive" => Value::domain(b.clone())},
                // Same content again: stored once.
                row! {"recording_id" => 2, "metadata" => Value::from("m2"),
                "raw" => Value::domain(a.clone()), "archive" => Value::domain(b.clone())},
                row! {"recording_id" => 3, "metadata" => Value::from("m3"),
                "raw" => Value::domain(b.clone())},
            ])
            .await
            .unwrap();
            let rows: Vec<Row> = t.query().order_by(["recording_id"]).fetch().await.unwrap();
            assert_eq!(rows[0]["raw"].as_domain::<Item>(), Some(&a), "{label}");
            assert_eq!(rows[1]["archive"].as_domain::<Item>(), Some(&b), "{label}");
            assert_eq!(rows[2]["raw"].as_domain::<Item>(), Some(&b), "{label}");
            assert_eq!(rows[2]["archive"], Value::Null, "{label}");
            // Each attribute went to its own store, hash-addressed under the schema.
            let stored = t.query().order_by(["recording_id"]).fetch_stored().await.unwrap();
            let meta = |r: usize, k: &str| -> Json {
                let Value::Json(j) = &stored[r][k] else {
                    panic!("{label}: {k} stored as {:?}", stored[r][k]);
                };
                j.clone()
            };
            assert_eq!(meta(0, "raw")["store"], "local");
            assert_eq!(meta(0, "archive")["store"], "cold");
            assert_eq!(meta(0, "raw")["schema"], s.name());
            assert_eq!(meta(0, "raw"), meta(1, "raw"), "{label}: same content, same object");
            let path = meta(0, "raw")["path"].as_str().unwrap().to_string();
            assert!(path.starts_with(&format!("_hash/{}/", s.name())), "{path}");
            // Two distinct arrays in the local store (a and b), deduplicated across rows.
            let local_files = common::files_under(&local.join("_hash").join(s.name()));
            assert_eq!(local_files.len(), 2, "{label}: {local_files:?}");
            let cold = s.connection().stores().get("cold").unwrap();
            let prefix = StorePath::parse(format!("_hash/{}", s.name())).unwrap();
            assert_eq!(cold.list_all(Some(&prefix)).await.unwrap().len(), 1, "{label}");
            // Deleting rows leaves the objects (garbage collection reclaims them).
            t.delete().await.unwrap();
            assert_eq!(common::files_under(&local.join("_hash").join(s.name())).len(), 2);
        }
    })
    .await;
    if !has_s3 {
        eprintln!("(the `cold` store was a second file store)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_in_the_table_and_in_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let src = dir.path().join("notes.txt");
    std::fs::write(&src, b"hello from a file").unwrap();
    let adjust = |c: &mut Config| {
        c.stores
            .specs
            .insert("main".into(), file_spec("main", &store_dir));
        c.stores.default = Some("main".into());
        c.download_path = downloads.clone();
    };
    each_backend_stored("attach", adjust, default_stores, |label, s| {
        let src = src.clone();
        let downloads = downloads.clone();
        async move {
            let t = s
                .declare(
                    "Doc",
                    Tier::Manual,
                    "doc_id : int32\n---\ninline : <attach>\nstored : <attach@>",
                )
                .await
                .unwrap();
            t.insert1(&row! {
                "doc_id" => 1,
                "inline" => src.to_string_lossy().into_owned(),
                "stored" => Value::domain(Attachment::new("data.bin", vec![1u8, 2, 3])),
            })
            .await
            .unwrap();
            // A different file with the same name: fetch must not overwrite the first.
            t.insert1(&row! {
                "doc_id" => 2,
                "inline" => Value::domain(Attachment::new("notes.txt", b"other".to_vec())),
                "stored" => Value::domain(Attachment::new("data.bin", vec![1u8, 2, 3])),
            })
            .await
            .unwrap();
            let rows: Vec<Row> = t.query().order_by(["doc_id"]).fetch().await.unwrap();
            let saved = |r: &Row, k: &str| -> std::path::PathBuf {
                let a = r[k]
                    .as_domain::<Attachment>()
                    .unwrap_or_else(|| panic!("{label}: {k} fetched as {:?}", r[k]));
                assert_eq!(
                    std::fs::read(a.saved_to.as_ref().unwrap()).unwrap(),
                    &a.data[..],
                    "{label}: {k}: the saved file holds the fetched bytes"
                );
                a.saved_to.clone().unwrap()
            };
            assert_eq!(
                rows[0]["inline"]
                    .as_domain::<Attachment>()
                    .unwrap()
                    .filename,
                "notes.txt"
            );
            let first = saved(&rows[0], "inline");
            assert_eq!(std::fs::read(&first).unwrap(), b"hello from a file");
            assert!(
                first.starts_with(&downloads),
                "{label}: {}",
                first.display()
            );
            let second = saved(&rows[1], "inline");
            assert_eq!(std::fs::read(&second).unwrap(), b"other");
            // Rows decode concurrently, so either may claim the plain name; the other gets
            // DataJoint's `stem_1.ext`, and neither overwrites the other.
            let mut names = [first.file_name().unwrap(), second.file_name().unwrap()];
            names.sort();
            assert_eq!(names, ["notes.txt", "notes_1.txt"], "{label}");
            // Identical content under the same name is reused, not duplicated.
            assert_eq!(
                saved(&rows[0], "stored"),
                saved(&rows[1], "stored"),
                "{label}"
            );
            assert_eq!(std::fs::read(saved(&rows[0], "stored")).unwrap(), [1, 2, 3]);
            // Bad file names are refused before anything is written.
            for bad in ["../escape.txt", "a/b.txt", "/abs.txt", "nul\0.txt"] {
                let err = t
                    .insert1(&row! {
                        "doc_id" => 9,
                        "inline" => Value::domain(Attachment::new(bad, b"x".to_vec())),
                        "stored" => Value::domain(Attachment::new("ok.txt", b"x".to_vec())),
                    })
                    .await
                    .unwrap_err();
                assert!(
                    err.to_string().contains("inline"),
                    "{label}: {bad:?}: {err}"
                );
            }
            assert_eq!(t.len().await.unwrap(), 2);
            for f in common::files_under(&downloads) {
                std::fs::remove_file(f).unwrap();
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_at_without_a_default_store_says_what_to_set() {
    each_backend_stored(
        "nodefault",
        |_| {},
        default_stores,
        |label, s| async move {
            let err = s
                .declare("Raw", Tier::Manual, "raw_id : int32\n---\nraw : <blob@>")
                .await
                .unwrap_err();
            let m = err.to_string();
            assert!(m.contains("stores.default"), "{label}: {m}");
            assert!(m.contains("raw"), "{label}: {m}");
            let err = s
                .declare(
                    "Raw",
                    Tier::Manual,
                    "raw_id : int32\n---\nraw : <blob@nowhere>",
                )
                .await
                .unwrap_err();
            assert!(err.to_string().contains("nowhere"), "{label}: {err}");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failing_mid_batch_writes_no_row_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let adjust = |c: &mut Config| {
        c.stores
            .specs
            .insert("main".into(), file_spec("main", &store_dir));
        c.stores.default = Some("main".into());
        c.transfer_concurrency = 4;
    };
    let stores = |config: &Arc<Config>| {
        let set = StoreSet::new(config.core());
        let real = set.get("main").unwrap();
        set.insert("main", Arc::new(FaultyStore::new(real, Fault::PutNth(5))));
        Arc::new(set)
    };
    each_backend_stored("faulty", adjust, stores, |label, s| async move {
        let t = s
            .declare("Sig", Tier::Manual, "sig_id : int32\n---\ndata : <blob@>")
            .await
            .unwrap();
        t.insert1(&row! {"sig_id" => 0, "data" => Value::domain(array(100, 1000))})
            .await
            .unwrap();
        let rows: Vec<Row> = (1..=10)
            .map(|i| row! {"sig_id" => i, "data" => Value::domain(array(i as u64, 1000))})
            .collect();
        let err = t.insert(&rows).await.unwrap_err();
        let m = err.to_string();
        assert!(m.contains("data") && m.contains("sig"), "{label}: {m}");
        assert!(
            m.contains("injected fault") || m.contains("main"),
            "{label}: {m}"
        );
        // No row of the failed batch; the earlier row and its object are intact.
        assert_eq!(t.len().await.unwrap(), 1, "{label}");
        let r: Row = t.restrict(row! {"sig_id" => 0}).fetch1().await.unwrap();
        assert_eq!(r["data"].as_domain::<Item>(), Some(&array(100, 1000)));
        // The store works again (only the 5th put failed): the same batch now goes in.
        assert_eq!(t.insert(&rows).await.unwrap(), 10, "{label}");
        assert_eq!(t.len().await.unwrap(), 11);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_and_missing_objects_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let adjust = |c: &mut Config| {
        c.stores
            .specs
            .insert("main".into(), file_spec("main", &store_dir));
        c.stores.default = Some("main".into());
    };
    each_backend_stored("corrupt", adjust, default_stores, |label, s| {
        let store_dir = store_dir.clone();
        async move {
            let t = s
                .declare("Sig", Tier::Manual, "sig_id : int32\n---\ndata : <blob@>")
                .await
                .unwrap();
            t.insert(&[
                row! {"sig_id" => 1, "data" => Value::domain(array(1, 5000))},
                row! {"sig_id" => 2, "data" => Value::domain(array(2, 5000))},
            ])
            .await
            .unwrap();
            let stored = t.query().order_by(["sig_id"]).fetch_stored().await.unwrap();
            let path_of = |r: usize| match &stored[r]["data"] {
                Value::Json(j) => store_dir.join(j["path"].as_str().unwrap()),
                other => panic!("{other:?}"),
            };
            // Flip one byte: same size, different content.
            let p1 = path_of(0);
            let mut bytes = std::fs::read(&p1).unwrap();
            bytes[100] ^= 0xff;
            std::fs::write(&p1, &bytes).unwrap();
            let err = t
                .restrict(row! {"sig_id" => 1})
                .fetch1::<Row>()
                .await
                .unwrap_err();
            let m = err.to_string();
            eprintln!("{label}, corrupted: {m}");
            assert!(m.contains("corrupt") && m.contains("main"), "{label}: {m}");
            assert!(
                m.contains(p1.file_name().unwrap().to_str().unwrap()),
                "{label}: {m}"
            );
            // Remove the other object altogether.
            let p2 = path_of(1);
            std::fs::remove_file(&p2).unwrap();
            let err = t
                .restrict(row! {"sig_id" => 2})
                .fetch1::<Row>()
                .await
                .unwrap_err();
            let m = err.to_string();
            eprintln!("{label}, missing: {m}");
            assert!(m.contains("main") && m.contains("data"), "{label}: {m}");
            assert!(
                m.contains(p2.file_name().unwrap().to_str().unwrap()),
                "{label}: {m}"
            );
            // Inserting the same content again repairs neither silently nor wrongly: the
            // missing object is written back, and the row fetches.
            t.insert1(&row! {"sig_id" => 3, "data" => Value::domain(array(2, 5000))})
                .await
                .unwrap();
            let r: Row = t.restrict(row! {"sig_id" => 2}).fetch1().await.unwrap();
            assert_eq!(
                r["data"].as_domain::<Item>(),
                Some(&array(2, 5000)),
                "{label}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_and_missing_bucket_write_no_row() {
    let Some(good) = s3_spec("s3", "x") else {
        return;
    };
    let mut unreachable = good.clone();
    unreachable.name = "down".into();
    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    unreachable
        .options
        .insert("endpoint".into(), format!("http://127.0.0.1:{port}").into());
    let mut missing = good.clone();
    missing.name = "nobucket".into();
    missing
        .options
        .insert("bucket".into(), "dj-no-such-bucket".into());
    let adjust = |c: &mut Config| {
        c.stores.specs.insert("down".into(), unreachable.clone());
        c.stores.specs.insert("nobucket".into(), missing.clone());
    };
    each_backend_stored(
        "unreachable",
        adjust,
        default_stores,
        |label, s| async move {
            for store in ["down", "nobucket"] {
                let t = s
                    .declare(
                        &format!("T{}", store.len()),
                        Tier::Manual,
                        &format!("t_id : int32\n---\ndata : <blob@{store}>"),
                    )
                    .await
                    .unwrap();
                let started = std::time::Instant::now();
                let err = t
                    .insert1(&row! {"t_id" => 1, "data" => Value::domain(array(9, 100))})
                    .await
                    .unwrap_err();
                let m = err.to_string();
                eprintln!("{label}, store `{store}`: {m}");
                assert!(m.contains(store) && m.contains("data"), "{label}: {m}");
                if store == "nobucket" {
                    assert!(m.contains("dj-no-such-bucket"), "{label}: {m}");
                }
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "{label}: {store} took {:?}",
                    started.elapsed()
                );
                assert_eq!(t.len().await.unwrap(), 0, "{label}");
            }
        },
    )
    .await;
}

/// A memory store that records how many puts are in flight at once.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Store>,
    now: AtomicUsize,
    max: AtomicUsize,
}

impl std::fmt::Display for Counting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "counting {}", self.inner)
    }
}

#[async_trait]
impl Store for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn put_opts(
        &self,
        path: &StorePath,
        payload: Bytes,
        options: PutOptions,
    ) -> dj_core::Result<PutResult> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = self.inner.put_opts(path, payload, options).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        r
    }
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> dj_core::Result<GetResult> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = self.inner.get_opts(path, options).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        r
    }
    async fn head(&self, path: &StorePath) -> dj_core::Result<ObjectMeta> {
        self.inner.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> dj_core::Result<()> {
        self.inner.delete(path).await
    }
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, dj_core::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn put_multipart(&self, path: &StorePath) -> dj_core::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart(path).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_run_concurrently_within_the_bound() {
    let counters: std::sync::Mutex<Vec<Arc<Counting>>> = std::sync::Mutex::new(Vec::new());
    let adjust = |c: &mut Config| {
        c.stores
            .specs
            .insert("mem".into(), StoreSpec::new("mem", "memory", ""));
        c.stores.default = Some("mem".into());
        c.transfer_concurrency = 6;
    };
    let stores = |config: &Arc<Config>| {
        let set = StoreSet::new(config.core());
        let counting = Arc::new(Counting {
            inner: dj_store_memory::memory_store("mem"),
            now: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
        });
        counters.lock().unwrap().push(Arc::clone(&counting));
        set.insert("mem", counting);
        Arc::new(set)
    };
    each_backend_stored("concurrent", adjust, stores, |label, s| {
        let counting = counters.lock().unwrap().last().cloned().unwrap();
        async move {
            let t = s
                .declare("Sig", Tier::Manual, "sig_id : int32\n---\ndata : <blob@>")
                .await
                .unwrap();
            let rows: Vec<Row> = (0..30)
                .map(|i| row! {"sig_id" => i, "data" => Value::domain(array(i as u64 + 7, 200))})
                .collect();
            t.insert(&rows).await.unwrap();
            let puts = counting.max.swap(0, Ordering::SeqCst);
            assert!(
                (2..=6).contains(&puts),
                "{label}: {puts} puts in flight at most"
            );
            let back: Vec<Row> = t.query().order_by(["sig_id"]).fetch().await.unwrap();
            assert_eq!(back.len(), 30);
            assert_eq!(back[29]["data"].as_domain::<Item>(), Some(&array(36, 200)));
            let gets = counting.max.load(Ordering::SeqCst);
            assert!(
                (2..=6).contains(&gets),
                "{label}: {gets} gets in flight at most"
            );
        }
    })
    .await;
}
