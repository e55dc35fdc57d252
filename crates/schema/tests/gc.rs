//! Garbage collection, verification and migration of stored objects, on SQLite, PostgreSQL and
//! MariaDB, with a file store (and S3 where `DJ_TEST_S3_*` provide one). The point is safety:
//! live data survives every collection, including objects of codecs that chain into `<blob@>`,
//! objects of inserts still in flight, and collections whose scan failed; orphans (failed
//! inserts, deletes, `update1`, partitioned schema-section objects) are reclaimed; one
//! collection runs per store at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
mod gc_harness;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use dj_codec_attach::Attachment;
use dj_codec_blob::Item;
use dj_config::StoreSpec;
use dj_core::codec::{Codec, CodecContext};
use dj_core::registry::{Registry, StoreSet};
use dj_core::store::{
    Capabilities, GetOptions, GetResult, MultipartUpload, ObjectMeta, PutOptions, PutResult, Store,
    StoreExt, StorePath,
};
use dj_core::typespec::TypeSpec;
use dj_core::value::Value;
use dj_layout::{self as layout, StoreLayout};
use dj_schema::lifecycle::{
    Gc, GcOptions, Migration, Phase, Status, StoreLock, Verify, VerifyReport,
};
use dj_schema::{Connection, Error, Row, Tier, row};
use dj_testkit::{Fault, FaultyStore};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value as Json, json};
use tokio::sync::{Notify, Semaphore};

use dj_codec_filepath as _;
use dj_codec_hash as _;
use dj_store_file as _;
use dj_store_s3 as _;
use gc_harness::{
    Ctx, age_files, assert_nothing_deleted, deleting, file_spec, meta_of, no_wrap, noise, path_of,
    store_kinds, wipe, zero_grace,
};

// ------------------------------------------------------------------------------------------------
// Test codecs, registered at run time
// ------------------------------------------------------------------------------------------------

/// A codec of the user's own that chains into `<blob>`: with `@` its objects land in the hash
/// section. DataJoint 2.3.5's GC does not recognise such codecs (its live objects look orphaned).
#[derive(Debug)]
struct Model;

#[async_trait]
impl Codec for Model {
    fn name(&self) -> &str {
        "gcmodel"
    }
    fn dtype(&self, _is_store: bool) -> dj_core::Result<TypeSpec> {
        Ok(TypeSpec::Codec {
            name: "blob".into(),
            store: None,
        })
    }
    async fn encode(&self, v: Value, _cx: &CodecContext) -> dj_core::Result<Value> {
        let Value::String(s) = v else {
            return Err(dj_core::Error::codec("gcmodel", "takes a string"));
        };
        Ok(Value::domain(Item::from(format!("model:{s}"))))
    }
    async fn decode(&self, v: Value, _cx: &CodecContext) -> dj_core::Result<Value> {
        Ok(v)
    }
}

/// A codec that exists only while one test declares its table, then is unregistered: its
/// attribute cannot be resolved afterwards.
#[derive(Debug)]
struct Vanishing(String);

#[async_trait]
impl Codec for Vanishing {
    fn name(&self) -> &str {
        &self.0
    }
    fn dtype(&self, _is_store: bool) -> dj_core::Result<TypeSpec> {
        Ok(TypeSpec::Codec {
            name: "hash".into(),
            store: None,
        })
    }
    async fn encode(&self, v: Value, _cx: &CodecContext) -> dj_core::Result<Value> {
        Ok(v)
    }
    async fn decode(&self, v: Value, _cx: &CodecContext) -> dj_core::Result<Value> {
        Ok(v)
    }
}

/// [`gc_harness::each_backend`], with this file's own test codec registered.
async fn each_backend<W, F, Fut>(test: &str, specs: &[StoreSpec], wrap: W, body: F)
where
    W: Fn(&StoreSet),
    F: Fn(Ctx) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    setup();
    gc_harness::each_backend(test, specs, wrap, body).await;
}

fn setup() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        Registry::global().register_codec(Arc::new(Model)).unwrap();
    });
}

// ------------------------------------------------------------------------------------------------
// A store wrapper with knobs: pause after a put, slow listings
// ------------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Knobs {
    /// Pause after the next put under `_hash/` until `release` gets a permit.
    pause_next_put: AtomicBool,
    written: Notify,
    release: Semaphore,
    /// Delay every listing this long.
    list_delay_ms: AtomicUsize,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            pause_next_put: AtomicBool::new(false),
            written: Notify::new(),
            release: Semaphore::new(0),
            list_delay_ms: AtomicUsize::new(0),
        }
    }
}

#[derive(Debug)]
struct Knobbed {
    inner: Arc<dyn Store>,
    knobs: Arc<Knobs>,
}

impl std::fmt::Display for Knobbed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "knobbed {}", self.inner)
    }
}

#[async_trait]
impl Store for Knobbed {
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
        let r = self.inner.put_opts(path, payload, options).await;
        if path.as_str().starts_with("_hash/")
            && self.knobs.pause_next_put.swap(false, Ordering::SeqCst)
        {
            self.knobs.written.notify_one();
            self.knobs.release.acquire().await.unwrap().forget();
        }
        r
    }
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> dj_core::Result<GetResult> {
        self.inner.get_opts(path, options).await
    }
    async fn head(&self, path: &StorePath) -> dj_core::Result<ObjectMeta> {
        self.inner.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> dj_core::Result<()> {
        self.inner.delete(path).await
    }
    async fn delete_if_older(
        &self,
        path: &StorePath,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> dj_core::Result<dj_core::store::ConditionalDelete> {
        self.inner.delete_if_older(path, cutoff).await
    }
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, dj_core::Result<ObjectMeta>> {
        let inner = self.inner.list(prefix);
        let ms = self.knobs.list_delay_ms.load(Ordering::SeqCst) as u64;
        futures::stream::once(tokio::time::sleep(Duration::from_millis(ms)))
            .filter_map(|_| async { None::<dj_core::Result<ObjectMeta>> })
            .chain(inner)
            .boxed()
    }
    async fn put_multipart(&self, path: &StorePath) -> dj_core::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart(path).await
    }
}

// ------------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------------

// ------------------------------------------------------------------------------------------------
// Live data survives
// ------------------------------------------------------------------------------------------------

async fn check_rows(t: &dj_schema::Table, n: i32, label: &str) {
    let rows: Vec<Row> = t.query().order_by(["rid"]).fetch().await.unwrap();
    assert_eq!(rows.len(), n as usize, "{label}");
    for (i, r) in rows.iter().enumerate() {
        let i = i as i32 + 1;
        assert_eq!(
            r["blob"].as_domain::<Item>(),
            Some(&Item::from(format!("blob {i}"))),
            "{label}"
        );
        let a = r["att"].as_domain::<Attachment>().unwrap();
        assert_eq!(&a.data[..], format!("attached {i}").as_bytes(), "{label}");
        assert_eq!(
            r["raw"].as_bytes().map(|b| b.to_vec()),
            Some(format!("raw {i}").into_bytes()),
            "{label}"
        );
        assert_eq!(
            r["model"].as_domain::<Item>(),
            Some(&Item::from(format!("model:m{i}"))),
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_data_survives_dry_and_real_collections() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, spec) in store_kinds("gclive", dir.path()) {
        eprintln!("=== store kind {kind}");
        each_backend("gclive", std::slice::from_ref(&spec), no_wrap, |cx| async move {
            let label = format!("{} on {kind}", cx.label);
            let t = cx
                .schema
                .declare(
                    "Rec",
                    Tier::Manual,
                    "rid : int32\n---\nblob : <blob@gclive>\natt : <attach@gclive>\n\
                     raw : <hash@gclive>\nmodel : <gcmodel@gclive>\nnote = null : <blob@gclive>",
                )
                .await
                .unwrap();
            let rows: Vec<Row> = (1..=3)
                .map(|i| {
                    row! {
                        "rid" => i,
                        "blob" => Value::domain(Item::from(format!("blob {i}"))),
                        "att" => Value::domain(Attachment::new(format!("f{i}.txt"), format!("attached {i}").into_bytes())),
                        "raw" => Value::Bytes(format!("raw {i}").into_bytes().into()),
                        "model" => format!("m{i}"),
                    }
                })
                .collect();
            t.insert(&rows).await.unwrap();
            // A user file outside the sections, and a stray file inside the hash section that
            // follows no grammar: never collected.
            let store = cx.store("gclive");
            let user = StorePath::parse("user/raw/f.bin").unwrap();
            store.put(&user, Bytes::from_static(b"user data")).await.unwrap();
            let stray = StorePath::parse(format!("_hash/{}/README.txt", cx.schema.name())).unwrap();
            store.put(&stray, Bytes::from_static(b"notes")).await.unwrap();

            // Every attribute's objects are referenced, the custom codec's included.
            let stored = t.query().order_by(["rid"]).fetch_stored().await.unwrap();
            let model_path = path_of(&stored[0], "model");
            assert!(model_path.starts_with(&format!("_hash/{}/", cx.schema.name())), "{model_path}");

            // Dry runs, explicit schema and discovered schemas.
            let dry = cx.gc("gclive").run().await.unwrap();
            assert!(dry.dry_run);
            assert_eq!(dry.hash.referenced, 12, "{label}: {dry:#?}");
            assert_eq!(dry.hash.stored, 12, "{label}: {dry:#?}");
            assert_eq!(dry.hash.orphaned + dry.hash.skipped_young, 0, "{label}: {dry:#?}");
            assert!(dry.scan_errors.is_empty(), "{label}: {dry:#?}");
            assert!(dry.other_keys >= 1, "{label}: the stray file is seen, not counted");
            let zero_dry = cx
                .gc("gclive")
                .options(GcOptions::grace(Duration::ZERO))
                .run()
                .await
                .unwrap();
            assert_eq!(zero_dry.orphaned(), 0, "{label}: {zero_dry:#?}");
            let discovered = Gc::new(&cx.conn, "gclive").run().await.unwrap();
            assert!(
                discovered.schemas.iter().any(|s| s == cx.schema.name()),
                "{label}: {:?}",
                discovered.schemas
            );
            assert!(
                !discovered.scan_errors.iter().any(|e| e.contains(cx.schema.name())),
                "{label}: {:?}",
                discovered.scan_errors
            );
            assert_eq!(discovered.hash.referenced, 12, "{label}: {discovered:#?}");
            assert_eq!(discovered.orphaned(), 0, "{label}: {discovered:#?}");
            // The report serializes for a command line.
            let j = serde_json::to_value(&dry).unwrap();
            assert_eq!(j["hash"]["referenced"], 12);
            assert_eq!(j["store"], "gclive");

            // Real collections, with the default grace and with none.
            let real = cx.gc("gclive").options(GcOptions::default().dry_run(false)).run().await.unwrap();
            assert_nothing_deleted(&real, &label);
            assert!(!real.refused && real.is_clean(), "{label}: {real:#?}");
            let real = cx.gc("gclive").options(zero_grace()).run().await.unwrap();
            assert_nothing_deleted(&real, &label);
            check_rows(&t, 3, &label).await;
            assert!(store.exists(&user).await.unwrap(), "{label}: user file");
            assert!(store.exists(&stray).await.unwrap(), "{label}: stray file");
            let v = Verify::new(&cx.conn).store("gclive").schemas([cx.schema.name()]).run().await.unwrap();
            assert!(v.is_clean(), "{label}: {v:#?}");
            assert_eq!(v.ok, 12, "{label}: {v:#?}");
            store.delete(&user).await.unwrap();
            store.delete(&stray).await.unwrap();
        })
        .await;
        wipe(&spec).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_in_flight_survives_a_concurrent_collection() {
    let dir = tempfile::tempdir().unwrap();
    let spec = file_spec("gcflight", dir.path());
    let knobs: Mutex<Vec<Arc<Knobs>>> = Mutex::new(Vec::new());
    let wrap = |set: &StoreSet| {
        let k = Arc::new(Knobs::default());
        let real = set.get("gcflight").unwrap();
        set.insert(
            "gcflight",
            Arc::new(Knobbed {
                inner: real,
                knobs: Arc::clone(&k),
            }),
        );
        knobs.lock().unwrap().push(k);
    };
    each_backend("gcflight", &[spec], wrap, |cx| {
        let k = knobs.lock().unwrap().last().cloned().unwrap();
        async move {
            let label = cx.label.clone();
            let t = cx
                .schema
                .declare(
                    "Sig",
                    Tier::Manual,
                    "sid : int32\n---\ndata : <blob@gcflight>",
                )
                .await
                .unwrap();
            t.insert1(&row! {"sid" => 1, "data" => "first"})
                .await
                .unwrap();
            // The next insert writes its object, then stalls before its row exists.
            k.pause_next_put.store(true, Ordering::SeqCst);
            let t2 = t.clone();
            let insert =
                tokio::spawn(
                    async move { t2.insert1(&row! {"sid" => 2, "data" => "in flight"}).await },
                );
            tokio::time::timeout(Duration::from_secs(30), k.written.notified())
                .await
                .expect("the insert wrote its object");
            assert_eq!(
                t.len().await.unwrap(),
                1,
                "{label}: the row is not there yet"
            );
            // A real collection with the default grace keeps the young object.
            let r = cx
                .gc("gcflight")
                .options(GcOptions::default().dry_run(false))
                .run()
                .await
                .unwrap();
            assert_nothing_deleted(&r, &label);
            assert_eq!(r.hash.skipped_young, 1, "{label}: {r:#?}");
            // Without the grace period it would have gone: the grace period is what saves it.
            let r = cx
                .gc("gcflight")
                .options(GcOptions::grace(Duration::ZERO))
                .run()
                .await
                .unwrap();
            assert_eq!(r.hash.orphaned, 1, "{label}: {r:#?}");
            k.release.add_permits(1);
            insert.await.unwrap().unwrap();
            let rows: Vec<Row> = t.query().order_by(["sid"]).fetch().await.unwrap();
            assert_eq!(
                rows[1]["data"].as_domain::<Item>(),
                Some(&Item::from("in flight"))
            );
            // Once committed, the object is referenced: even zero grace keeps it.
            let r = cx.gc("gcflight").options(zero_grace()).run().await.unwrap();
            assert_nothing_deleted(&r, &label);
            assert_eq!(r.hash.referenced, 2, "{label}: {r:#?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_listing_or_query_refuses_to_delete() {
    let dir = tempfile::tempdir().unwrap();
    let spec = file_spec("gcfault", dir.path());
    each_backend("gcfault", &[spec], no_wrap, |cx| async move {
        let label = cx.label.clone();
        let t = cx
            .schema
            .declare(
                "Sig",
                Tier::Manual,
                "sid : int32\n---\ndata : <blob@gcfault>",
            )
            .await
            .unwrap();
        t.insert(&[
            row! {"sid" => 1, "data" => "keep"},
            row! {"sid" => 2, "data" => "orphan"},
        ])
        .await
        .unwrap();
        t.restrict(row! {"sid" => 2}).delete().await.unwrap();
        let before = cx
            .keys("gcfault", &format!("_hash/{}", cx.schema.name()))
            .await;
        assert_eq!(before.len(), 2);

        // The same store, failing every listing.
        let faulty: Arc<dyn Store> = Arc::new(FaultyStore::new(cx.store("gcfault"), Fault::List));
        let set = StoreSet::new(cx.conn.config().core());
        set.insert("gcfault", faulty);
        let conn = Connection::open_with(Arc::clone(cx.conn.config()), Arc::new(set))
            .await
            .unwrap();
        let r = Gc::new(&conn, "gcfault")
            .schemas([cx.schema.name()])
            .options(zero_grace())
            .run()
            .await
            .unwrap();
        assert!(r.refused, "{label}: {r:#?}");
        assert_nothing_deleted(&r, &label);
        assert!(
            r.scan_errors
                .iter()
                .any(|e| e.contains("injected fault") && e.contains("gcfault")),
            "{label}: {:?}",
            r.scan_errors
        );
        conn.close().await;
        assert_eq!(
            cx.keys("gcfault", &format!("_hash/{}", cx.schema.name()))
                .await,
            before
        );

        // A table whose codec this process cannot resolve: its references are unknown.
        let gone = format!("gcgone{}", std::process::id());
        Registry::global()
            .register_codec(Arc::new(Vanishing(gone.clone())))
            .unwrap();
        let v = cx
            .schema
            .declare(
                "Opaque",
                Tier::Manual,
                &format!("oid : int32\n---\nx : <{gone}@gcfault>"),
            )
            .await;
        Registry::global().unregister_codec(&gone);
        v.unwrap();
        let r = cx.gc("gcfault").options(zero_grace()).run().await.unwrap();
        assert!(r.refused, "{label}: {r:#?}");
        assert_nothing_deleted(&r, &label);
        assert!(
            r.scan_errors
                .iter()
                .any(|e| e.contains(&gone) && e.contains("opaque")),
            "{label}: {:?}",
            r.scan_errors
        );
        assert_eq!(
            cx.keys("gcfault", &format!("_hash/{}", cx.schema.name()))
                .await,
            before
        );
        // Zero grace without the opt-in is refused outright when deleting.
        let err = cx
            .gc("gcfault")
            .options(GcOptions::grace(Duration::ZERO).dry_run(false))
            .run()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Gc { .. }), "{label}: {err}");
        assert!(
            err.to_string().contains("allow_zero_grace"),
            "{label}: {err}"
        );
    })
    .await;
}

// ------------------------------------------------------------------------------------------------
// Orphans are reclaimed
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_of_failed_inserts_deletes_and_updates_are_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, spec) in store_kinds("gcorphan", dir.path()) {
        eprintln!("=== store kind {kind}");
        each_backend(
            "gcorphan",
            std::slice::from_ref(&spec),
            no_wrap,
            |cx| async move {
                let label = format!("{} on {kind}", cx.label);
                let t = cx
                    .schema
                    .declare(
                        "Sig",
                        Tier::Manual,
                        "sid : int32\n---\ndata : <blob@gcorphan>\nfile = null : <attach@gcorphan>",
                    )
                    .await
                    .unwrap();
                t.insert1(&row! {"sid" => 1, "data" => "A"}).await.unwrap();
                // A duplicate key: the object is written, the row is not.
                let err = t
                    .insert1(&row! {"sid" => 1, "data" => "B (duplicate)"})
                    .await
                    .unwrap_err();
                assert!(err.is_duplicate(), "{label}: {err}");
                // A delete.
                t.insert1(&row! {"sid" => 2, "data" => "C (deleted)",
                "file" => Value::domain(Attachment::new("c.txt", b"attached C".to_vec()))})
                    .await
                    .unwrap();
                t.restrict(row! {"sid" => 2}).delete().await.unwrap();
                // An update1 replaces the object.
                t.insert1(&row! {"sid" => 3, "data" => "D (updated away)"})
                    .await
                    .unwrap();
                t.update1(&row! {"sid" => 3, "data" => "E"}).await.unwrap();
                let stored = t.query().order_by(["sid"]).fetch_stored().await.unwrap();
                let live = [path_of(&stored[0], "data"), path_of(&stored[1], "data")];
                let section = format!("_hash/{}", cx.schema.name());
                assert_eq!(cx.keys("gcorphan", &section).await.len(), 6, "{label}");

                // The default grace keeps the fresh orphans.
                let r = cx
                    .gc("gcorphan")
                    .options(GcOptions::default().dry_run(false))
                    .run()
                    .await
                    .unwrap();
                assert_nothing_deleted(&r, &label);
                assert_eq!(r.hash.skipped_young, 4, "{label}: {r:#?}");
                // A zero-grace dry run names them; nothing goes.
                let r = cx
                    .gc("gcorphan")
                    .options(GcOptions::grace(Duration::ZERO))
                    .run()
                    .await
                    .unwrap();
                assert_eq!(r.hash.orphaned, 4, "{label}: {r:#?}");
                assert!(r.hash.orphaned_bytes > 0);
                assert!(
                    live.iter().all(|p| !r.hash.orphaned_paths.contains(p)),
                    "{label}: {r:#?}"
                );
                assert_eq!(cx.keys("gcorphan", &section).await.len(), 6, "{label}");
                // A real zero-grace run reclaims them, reporting progress.
                let phases: Arc<Mutex<Vec<Phase>>> = Arc::default();
                let seen = Arc::clone(&phases);
                let r = cx
                    .gc("gcorphan")
                    .options(zero_grace())
                    .progress(move |p| {
                        let mut s = seen.lock().unwrap();
                        if s.last() != Some(&p.phase) {
                            s.push(p.phase);
                        }
                    })
                    .run()
                    .await
                    .unwrap();
                assert_eq!(r.hash.deleted, 4, "{label}: {r:#?}");
                assert_eq!(r.bytes_freed(), r.hash.orphaned_bytes, "{label}: {r:#?}");
                assert!(r.is_clean(), "{label}: {r:#?}");
                let phases = phases.lock().unwrap().clone();
                for p in [Phase::List, Phase::Mark, Phase::Remark, Phase::Sweep] {
                    assert!(phases.contains(&p), "{label}: {phases:?}");
                }
                let mut left = cx.keys("gcorphan", &section).await;
                let mut want = live.to_vec();
                left.sort();
                want.sort();
                assert_eq!(left, want, "{label}");
                let rows: Vec<Row> = t.query().order_by(["sid"]).fetch().await.unwrap();
                assert_eq!(rows[0]["data"].as_domain::<Item>(), Some(&Item::from("A")));
                assert_eq!(rows[1]["data"].as_domain::<Item>(), Some(&Item::from("E")));
                // Nothing more to do.
                let r = cx.gc("gcorphan").options(zero_grace()).run().await.unwrap();
                assert_eq!((r.orphaned(), r.deleted()), (0, 0), "{label}: {r:#?}");
            },
        )
        .await;
        wipe(&spec).await;
    }
}

/// Write a file object (and return its metadata) at a schema-section path.
async fn put_file(store: &dyn Store, key: &StorePath, data: &[u8]) -> Json {
    store.put(key, Bytes::copy_from_slice(data)).await.unwrap();
    json!({
        "path": key.as_str(),
        "size": data.len(),
        "is_dir": false,
        "checksum": layout::hash_blake3_base32(data),
    })
}

/// Write a folder object with its manifest (and return its metadata).
async fn put_folder(store: &dyn Store, key: &StorePath, files: &[(&str, &[u8])]) -> Json {
    let mut entries = Vec::new();
    let mut total = 0;
    for (rel, data) in files {
        store
            .put(&key.join(rel).unwrap(), Bytes::copy_from_slice(data))
            .await
            .unwrap();
        entries.push(json!({"path": rel, "size": data.len()}));
        total += data.len();
    }
    let manifest = json!({"files": entries, "total_size": total, "item_count": files.len()});
    store
        .put(
            &StorePath::parse(format!("{key}.manifest.json")).unwrap(),
            Bytes::from(manifest.to_string()),
        )
        .await
        .unwrap();
    json!({"path": key.as_str(), "size": total, "is_dir": true, "item_count": files.len()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_schema_objects_are_found_and_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, mut spec) in store_kinds("gcpart", dir.path()) {
        spec.partition_pattern = Some("{subject}".into());
        eprintln!("=== store kind {kind}");
        each_backend("gcpart", &[spec.clone()], no_wrap, |cx| {
            let spec = spec.clone();
            async move {
                let label = format!("{} on {kind}", cx.label);
                let s = cx.schema.name().to_string();
                let t = cx
                    .schema
                    .declare(
                        "Rec",
                        Tier::Manual,
                        "subject : varchar(16)\nrid : int32\n---\nobj : <gcptr@gcpart>",
                    )
                    .await
                    .unwrap();
                let store = cx.store("gcpart");
                let lay = StoreLayout::from(&spec);
                let key = |subject: &str, rid: i64, token: &str, ext: Option<&str>| {
                    lay.schema_path(
                        &s,
                        "rec",
                        "obj",
                        [("subject", Value::from(subject)), ("rid", Value::Int(rid))],
                        ext,
                        token,
                    )
                    .unwrap()
                };
                let live_file = key("m 1", 1, "LiveFile", Some("bin"));
                assert!(
                    live_file
                        .as_str()
                        .starts_with(&format!("_schema/subject=m 1/{s}/rec/rid=1/")),
                    "{live_file}"
                );
                let live_dir = key("m 1", 2, "LiveDirx", None);
                let orphan_file = key("m 2", 3, "Orphan01", Some("npy"));
                let orphan_dir = key("m 2", 4, "OrphanDr", None);
                let meta = put_file(store.as_ref(), &live_file, b"live file").await;
                t.insert1(&row! {"subject" => "m 1", "rid" => 1, "obj" => Value::Json(meta)})
                    .await
                    .unwrap();
                let meta = put_folder(
                    store.as_ref(),
                    &live_dir,
                    &[("a.bin", b"aaa"), ("sub/b.bin", b"bbbb")],
                )
                .await;
                t.insert1(&row! {"subject" => "m 1", "rid" => 2, "obj" => Value::Json(meta)})
                    .await
                    .unwrap();
                put_file(store.as_ref(), &orphan_file, b"orphan file").await;
                put_folder(
                    store.as_ref(),
                    &orphan_dir,
                    &[("x.bin", b"x"), ("y.bin", b"yy")],
                )
                .await;
                // An orphan without partition segments (written before the pattern was set).
                let unpartitioned =
                    StorePath::parse(format!("_schema/{s}/rec/subject=m 3/rid=5/obj_Unparted"))
                        .unwrap();
                put_file(store.as_ref(), &unpartitioned, b"old layout").await;
                // A stray file at the section root and a user file: never touched.
                let stray = StorePath::parse("_schema/README").unwrap();
                store
                    .put(&stray, Bytes::from_static(b"readme"))
                    .await
                    .unwrap();
                let user = StorePath::parse("user/raw/f.bin").unwrap();
                store.put(&user, Bytes::from_static(b"user")).await.unwrap();

                let dry = cx
                    .gc("gcpart")
                    .options(GcOptions::grace(Duration::ZERO))
                    .run()
                    .await
                    .unwrap();
                assert_eq!(dry.schema.referenced, 2, "{label}: {dry:#?}");
                // 1 + 3 (two files and the manifest) + 1 live; 1 + 3 + 1 orphaned.
                assert_eq!(dry.schema.stored, 9, "{label}: {dry:#?}");
                assert_eq!(dry.schema.orphaned, 5, "{label}: {dry:#?}");
                assert!(dry.schema.orphaned_paths.contains(&orphan_file.to_string()));
                assert!(
                    dry.schema
                        .orphaned_paths
                        .contains(&format!("{orphan_dir}.manifest.json")),
                    "{label}: {dry:#?}"
                );
                assert!(
                    dry.schema
                        .orphaned_paths
                        .contains(&unpartitioned.to_string())
                );

                let r = cx.gc("gcpart").options(zero_grace()).run().await.unwrap();
                assert_eq!(r.schema.deleted, 5, "{label}: {r:#?}");
                assert!(r.is_clean(), "{label}: {r:#?}");
                for k in [&orphan_file, &unpartitioned] {
                    assert!(!store.exists(k).await.unwrap(), "{label}: {k}");
                }
                assert!(
                    cx.keys("gcpart", orphan_dir.as_str()).await.is_empty(),
                    "{label}"
                );
                for k in [&live_file, &stray, &user] {
                    assert!(store.exists(k).await.unwrap(), "{label}: {k}");
                }
                assert_eq!(
                    cx.keys("gcpart", live_dir.as_str()).await.len(),
                    2,
                    "{label}"
                );
                let v = Verify::new(&cx.conn)
                    .schemas([s.as_str()])
                    .run()
                    .await
                    .unwrap();
                assert!(v.is_clean(), "{label}: {v:#?}");
                assert_eq!(v.ok, 2, "{label}: {v:#?}");
                store.delete(&stray).await.unwrap();
                store.delete(&user).await.unwrap();
            }
        })
        .await;
        wipe(&spec).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_section_prefixes_user_files_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = file_spec("gcbare", dir.path());
    spec.hash_prefix = String::new();
    spec.schema_prefix = String::new();
    each_backend(
        "gcbare",
        std::slice::from_ref(&spec),
        no_wrap,
        |cx| async move {
            let label = cx.label.clone();
            let s = cx.schema.name().to_string();
            let t = cx
                .schema
                .declare(
                    "Rec",
                    Tier::Manual,
                    "rid : int32\n---\ndata : <blob@gcbare>\nobj = null : <gcptr@gcbare>",
                )
                .await
                .unwrap();
            t.insert(&[
                row! {"rid" => 1, "data" => "live"},
                row! {"rid" => 2, "data" => "gone"},
            ])
            .await
            .unwrap();
            t.restrict(row! {"rid" => 2}).delete().await.unwrap();
            let live = path_of(&t.query().fetch_stored().await.unwrap()[0], "data");
            assert!(live.starts_with(&format!("{s}/")), "{live}");
            let store = cx.store("gcbare");
            // Files of the user's own under the schema's name, and a schema-section orphan.
            // Only a key of a known table, with its primary-key segments and one of its store
            // attributes, is an object GC may delete: the others look alike but are not.
            let user: Vec<StorePath> = [
                format!("{s}/raw/f.bin"),
                format!("{s}/raw/session1/f.bin"),
                format!("{s}/notes.txt"),
                format!("{s}/raw/rid=1/obj_Orphaned"),
                format!("{s}/raw/subject=1/f_abcdefgh.bin"),
                format!("{s}/rec/rid=9/notes_abcdefgh.txt"),
                format!("{s}/rec/session=9/obj_Orphaned"),
                format!("{s}/rec/rid=9/obj_x"),
                format!("{s}/rec/obj_Orphaned"),
            ]
            .iter()
            .map(|k| StorePath::parse(k).unwrap())
            .collect();
            for k in &user {
                store.put(k, Bytes::from_static(b"mine")).await.unwrap();
            }
            let orphan = StorePath::parse(format!("{s}/rec/rid=9/obj_Orphaned")).unwrap();
            store
                .put(&orphan, Bytes::from_static(b"orphan"))
                .await
                .unwrap();
            let r = cx.gc("gcbare").options(zero_grace()).run().await.unwrap();
            assert_eq!(
                (r.hash.deleted, r.schema.deleted),
                (1, 1),
                "{label}: {r:#?}"
            );
            assert!(r.is_clean(), "{label}: {r:#?}");
            assert!(!store.exists(&orphan).await.unwrap());
            for k in &user {
                assert!(store.exists(k).await.unwrap(), "{label}: {k} was deleted");
            }
            let row: Row = t.restrict(row! {"rid" => 1}).fetch1().await.unwrap();
            assert_eq!(row["data"].as_domain::<Item>(), Some(&Item::from("live")));
        },
    )
    .await;
}

// ------------------------------------------------------------------------------------------------
// One collection at a time
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_blocks_a_second_collection() {
    let dir = tempfile::tempdir().unwrap();
    let spec = file_spec("gclock", dir.path());
    let knobs: Mutex<Vec<Arc<Knobs>>> = Mutex::new(Vec::new());
    let wrap = |set: &StoreSet| {
        let k = Arc::new(Knobs::default());
        let real = set.get("gclock").unwrap();
        set.insert(
            "gclock",
            Arc::new(Knobbed {
                inner: real,
                knobs: Arc::clone(&k),
            }),
        );
        knobs.lock().unwrap().push(k);
    };
    each_backend("gclock", &[spec], wrap, |cx| {
        let k = knobs.lock().unwrap().last().cloned().unwrap();
        async move {
            let label = cx.label.clone();
            let t = cx
                .schema
                .declare(
                    "Sig",
                    Tier::Manual,
                    "sid : int32\n---\ndata : <blob@gclock>",
                )
                .await
                .unwrap();
            t.insert1(&row! {"sid" => 1, "data" => "x"}).await.unwrap();
            // Held by hand: a deleting collection fails at once, naming the store.
            let lock = StoreLock::acquire(&cx.conn, "gclock").await.unwrap();
            let err = cx
                .gc("gclock")
                .options(zero_grace())
                .run()
                .await
                .unwrap_err();
            assert!(matches!(err, Error::GcLocked { .. }), "{label}: {err}");
            assert!(err.to_string().contains("`gclock`"), "{label}: {err}");
            assert!(
                StoreLock::acquire(&cx.conn, "gclock").await.is_err(),
                "{label}"
            );
            // A dry run needs no lock; another store's lock is independent.
            cx.gc("gclock").run().await.unwrap();
            StoreLock::acquire(&cx.conn, "gclock_other")
                .await
                .unwrap()
                .release()
                .await
                .unwrap();
            lock.release().await.unwrap();
            cx.gc("gclock").options(zero_grace()).run().await.unwrap();

            // Two collections at once: one runs, the other is refused.
            k.list_delay_ms.store(500, Ordering::SeqCst);
            let (g1, g2) = (
                cx.gc("gclock").options(zero_grace()),
                cx.gc("gclock").options(zero_grace()),
            );
            let (a, b) = tokio::join!(g1.run(), g2.run());
            k.list_delay_ms.store(0, Ordering::SeqCst);
            let locked = [&a, &b]
                .iter()
                .filter(|r| matches!(r, Err(Error::GcLocked { .. })))
                .count();
            assert_eq!(locked, 1, "{label}: {a:?} / {b:?}");
            assert!(a.is_ok() || b.is_ok(), "{label}");
            // Released afterwards: a third one runs.
            cx.gc("gclock").options(zero_grace()).run().await.unwrap();
            // A dropped (unreleased) lock does not stay held.
            let lock = StoreLock::acquire(&cx.conn, "gclock").await.unwrap();
            drop(lock);
            let mut ok = false;
            for _ in 0..50 {
                if let Ok(l) = StoreLock::acquire(&cx.conn, "gclock").await {
                    l.release().await.unwrap();
                    ok = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(ok, "{label}: a dropped lock was not freed");
            assert!(!StoreLock::force_release(&cx.conn, "gclock").await.unwrap());
        }
    })
    .await;
}

// ------------------------------------------------------------------------------------------------
// Verify
// ------------------------------------------------------------------------------------------------

fn attr_report<'a>(
    v: &'a VerifyReport,
    attribute: &str,
) -> &'a dj_schema::lifecycle::AttributeReport {
    v.attributes
        .iter()
        .find(|a| a.attribute == attribute)
        .unwrap_or_else(|| panic!("no report for {attribute}: {v:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_missing_and_corrupt_objects() {
    let dir = tempfile::tempdir().unwrap();
    let spec = file_spec("gcverify", dir.path());
    each_backend("gcverify", std::slice::from_ref(&spec), no_wrap, |cx| {
        let spec = spec.clone();
        async move {
            let label = cx.label.clone();
            let s = cx.schema.name().to_string();
            let t = cx
                .schema
                .declare(
                    "Rec",
                    Tier::Manual,
                    "rid : int32\n---\ndata : <blob@gcverify>\nobj = null : <gcptr@gcverify>",
                )
                .await
                .unwrap();
            let store = cx.store("gcverify");
            let lay = StoreLayout::from(&spec);
            let key = |rid: i64, token: &str| {
                lay.schema_path(&s, "rec", "obj", [("rid", Value::Int(rid))], None, token)
                    .unwrap()
            };
            let f1 = key(1, "FileOne1");
            let d2 = key(2, "DirTwo22");
            let f3 = key(3, "FileThr3");
            let m1 = put_file(store.as_ref(), &f1, b"file one").await;
            let m2 = put_folder(store.as_ref(), &d2, &[("a", b"aa"), ("b", b"bbb")]).await;
            let m3 = put_file(store.as_ref(), &f3, b"file three").await;
            t.insert(&[
                row! {"rid" => 1, "data" => "one", "obj" => Value::Json(m1)},
                row! {"rid" => 2, "data" => "two", "obj" => Value::Json(m2)},
                row! {"rid" => 3, "data" => "three", "obj" => Value::Json(m3)},
                row! {"rid" => 4, "data" => "four"},
            ])
            .await
            .unwrap();
            let v = Verify::new(&cx.conn)
                .schemas([s.as_str()])
                .run()
                .await
                .unwrap();
            assert!(v.is_clean(), "{label}: {v:#?}");
            assert_eq!((v.ok, v.objects), (7, 7), "{label}: {v:#?}");

            let stored = t.query().order_by(["rid"]).fetch_stored().await.unwrap();
            // Blob of row 1: one byte flipped (same size). Blob of row 2: gone.
            let p1 = StorePath::parse(path_of(&stored[0], "data")).unwrap();
            let mut b = store.get(&p1).await.unwrap().to_vec();
            let last = b.len() - 1;
            b[last] ^= 0x55;
            store.put(&p1, Bytes::from(b)).await.unwrap();
            let p2 = StorePath::parse(path_of(&stored[1], "data")).unwrap();
            store.delete(&p2).await.unwrap();
            // Path-addressed: a file with a checksum corrupted, a folder missing a file, and a
            // file gone.
            store
                .put(&f1, Bytes::from_static(b"file ONE"))
                .await
                .unwrap();
            store.delete(&d2.join("b").unwrap()).await.unwrap();
            store.delete(&f3).await.unwrap();

            let v = Verify::new(&cx.conn)
                .store("gcverify")
                .schemas([s.as_str()])
                .run()
                .await
                .unwrap();
            assert!(!v.is_clean());
            let data = attr_report(&v, "data");
            assert_eq!(
                (data.ok, data.missing, data.corrupt),
                (2, 1, 1),
                "{label}: {data:#?}"
            );
            let corrupt = data
                .problems
                .iter()
                .find(|p| p.status == Status::Corrupt)
                .unwrap();
            assert_eq!(corrupt.path, p1.as_str());
            assert!(
                corrupt.reason.contains("BLAKE3 checksum"),
                "{label}: {corrupt:?}"
            );
            assert_eq!(corrupt.key, r#"{"rid":1}"#);
            let missing = data
                .problems
                .iter()
                .find(|p| p.status == Status::Missing)
                .unwrap();
            assert_eq!(missing.path, p2.as_str());
            let obj = attr_report(&v, "obj");
            assert_eq!(
                (obj.ok, obj.missing, obj.corrupt),
                (0, 2, 1),
                "{label}: {obj:#?}"
            );
            let find = |p: &StorePath| obj.problems.iter().find(|x| x.path == p.as_str()).unwrap();
            assert_eq!(find(&f1).status, Status::Corrupt);
            assert!(find(&f1).reason.contains("checksum"), "{:?}", find(&f1));
            assert_eq!(find(&d2).status, Status::Missing);
            // The missing member of the folder is named by its full key.
            assert!(
                find(&d2).reason.contains(&format!("{d2}/b`")),
                "{:?}",
                find(&d2)
            );
            assert_eq!(find(&f3).status, Status::Missing);
            assert_eq!((v.ok, v.missing, v.corrupt), (2, 3, 2), "{label}");
            let j = serde_json::to_value(&v).unwrap();
            assert_eq!(j["missing"], 3);
            assert!(j["attributes"][0]["problems"][0]["status"].is_string());
        }
    })
    .await;
}

// ------------------------------------------------------------------------------------------------
// Migrate
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_an_attribute_to_another_store() {
    let dir = tempfile::tempdir().unwrap();
    let hot = file_spec("gchot", dir.path());
    let colds = store_kinds("gccold", dir.path());
    for (kind, cold) in colds {
        eprintln!("=== cold store kind {kind}");
        each_backend("gcmigrate", &[hot.clone(), cold.clone()], no_wrap, |cx| async move {
            let label = format!("{} to {kind}", cx.label);
            let s = cx.schema.name().to_string();
            let t = cx
                .schema
                .declare(
                    "Rec",
                    Tier::Manual,
                    "rid : int32\n---\ndata : <blob@gchot>\nraw = null : <hash@gchot>\nkeep = null : <blob@gchot>",
                )
                .await
                .unwrap();
            // Row 1's `keep` holds the same content as its `data`: one shared object in gchot,
            // which must survive the collection after `data` moves.
            let big = noise(7, 9 << 20);
            t.insert(&[
                row! {"rid" => 1, "data" => "one", "keep" => "one"},
                row! {"rid" => 2, "data" => "two", "raw" => Value::Bytes(big.clone().into())},
                row! {"rid" => 3, "data" => "three"},
            ])
            .await
            .unwrap();
            let before = t.query().order_by(["rid"]).fetch_stored().await.unwrap();

            // A dry run changes nothing.
            let r = Migration::new(&t, "data", "gchot", "gccold").dry_run(true).run().await.unwrap();
            assert_eq!((r.rows_to_migrate, r.objects, r.rows_migrated), (3, 3, 0), "{label}: {r:#?}");
            assert_eq!(t.query().order_by(["rid"]).fetch_stored().await.unwrap(), before);
            assert!(cx.keys("gccold", &format!("_hash/{s}")).await.is_empty());

            let r = Migration::new(&t, "data", "gchot", "gccold").run().await.unwrap();
            assert_eq!((r.rows_migrated, r.objects_copied, r.rows_changed), (3, 3, 0), "{label}: {r:#?}");
            let r = Migration::new(&t, "raw", "gchot", "gccold").run().await.unwrap();
            assert_eq!((r.rows_migrated, r.objects_copied), (1, 1), "{label}: {r:#?}");
            assert_eq!(r.bytes_copied, big.len() as u64, "{label}: streamed");
            let after = t.query().order_by(["rid"]).fetch_stored().await.unwrap();
            for (b, a) in before.iter().zip(&after) {
                let (mb, ma) = (meta_of(b, "data"), meta_of(a, "data"));
                assert_eq!(ma["store"], "gccold", "{label}");
                assert_eq!(ma["path"], mb["path"], "{label}: same relative path");
                assert_eq!(ma["hash"], mb["hash"], "{label}");
                assert_eq!(a["keep"], b["keep"], "{label}: another attribute is left alone");
            }
            // The declared store stays; rows read from where their metadata points.
            assert_eq!(t.heading().attribute("data").unwrap().spec.to_string(), "<blob@gchot>");
            let rows: Vec<Row> = t.query().order_by(["rid"]).fetch().await.unwrap();
            assert_eq!(rows[1]["data"].as_domain::<Item>(), Some(&Item::from("two")), "{label}");
            assert_eq!(rows[1]["raw"].as_bytes().map(|b| b.len()), Some(big.len()), "{label}");
            assert!(rows[1]["raw"].as_bytes().is_some_and(|b| b[..] == big[..]), "{label}");
            // A second run has nothing left to move.
            let r = Migration::new(&t, "data", "gchot", "gccold").run().await.unwrap();
            assert_eq!(r.rows_to_migrate, 0, "{label}: {r:#?}");
            let v = Verify::new(&cx.conn).schemas([s.as_str()]).run().await.unwrap();
            assert!(v.is_clean(), "{label}: {v:#?}");

            // The old copies are garbage now, except the one `keep` still references.
            let r = cx.gc("gchot").options(zero_grace()).run().await.unwrap();
            assert_eq!(r.hash.deleted, 3, "{label}: {r:#?}");
            assert_eq!(cx.keys("gchot", &format!("_hash/{s}")).await, vec![path_of(&after[0], "keep")]);
            let r = cx.gc("gccold").options(zero_grace()).run().await.unwrap();
            assert_nothing_deleted(&r, &label);
            assert_eq!(r.hash.referenced, 4, "{label}: {r:#?}");
            let rows: Vec<Row> = t.query().order_by(["rid"]).fetch().await.unwrap();
            assert_eq!(rows[0]["data"].as_domain::<Item>(), Some(&Item::from("one")));
            assert_eq!(rows[0]["keep"].as_domain::<Item>(), Some(&Item::from("one")));
            assert_eq!(rows[2]["data"].as_domain::<Item>(), Some(&Item::from("three")));
        })
        .await;
        wipe(&cold).await;
    }
}

// ------------------------------------------------------------------------------------------------
// The path-addressed codecs: <object@>, <npy@>, <filepath@>
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_addressed_objects_survive_and_their_orphans_are_reclaimed() {
    use dj_codec_npy::NpyRef;
    use dj_codec_object::ObjectInput;
    use dj_object::ObjectRef;

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("f/sub")).unwrap();
    std::fs::write(src.join("f/a.bin"), noise(1, 5000)).unwrap();
    std::fs::write(src.join("f/sub/b.bin"), noise(2, 7000)).unwrap();
    let src = &src;
    for (kind, mut spec) in store_kinds("gcpath", dir.path()) {
        // Partitioned by subject: these objects live outside `_schema/{schema}/`.
        spec.partition_pattern = Some("{subject}".into());
        eprintln!("=== store kind {kind}");
        each_backend("gcpath", &[spec.clone()], no_wrap, |cx| async move {
            let label = format!("{} on {kind}", cx.label);
            let t = cx
                .schema
                .declare(
                    "Sess",
                    Tier::Manual,
                    "subject : varchar(16)\nsid : int32\n---\nvideo : <object@gcpath>\nframes = null : <object@gcpath>\narr = null : <npy@gcpath>\nsrc = null : <filepath@gcpath>",
                )
                .await
                .unwrap();
            let store = cx.store("gcpath");
            let user_file = StorePath::parse(format!("acq/{}/raw.bin", cx.schema.name())).unwrap();
            store.put(&user_file, noise(3, 100).into()).await.unwrap();
            let arr = ndarray::ArrayD::from_shape_vec(vec![3, 4], (0..12).map(f64::from).collect())
                .unwrap();
            for sid in 1..=3 {
                t.insert1(&row! {
                    "subject" => "m 1", "sid" => sid,
                    "video" => Value::Bytes(noise(10 + sid as u64, 20_000).into()),
                    "frames" => ObjectInput::folder(src.join("f")),
                    "arr" => Value::domain(arr.clone()),
                    "src" => user_file.as_str(),
                })
                .await
                .unwrap();
            }
            // A staged insert abandoned mid-way leaves nothing for GC to worry about, but a
            // failed insert (duplicate key) leaves its objects: orphans.
            let err = t
                .insert1(&row! {
                    "subject" => "m 1", "sid" => 1,
                    "video" => Value::Bytes(noise(99, 999).into()),
                    "arr" => Value::domain(arr.clone()),
                })
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Duplicate { .. }), "{label}: {err}");
            // update1 and delete leave orphans too.
            t.update1(&row! {"subject" => "m 1", "sid" => 2, "video" => Value::Bytes(noise(50, 3000).into())})
                .await
                .unwrap();
            t.restrict(row! {"subject" => "m 1", "sid" => 3}).delete().await.unwrap();
            let partition_root = format!("_schema/subject=m 1/{}", cx.schema.name());
            let before = cx.keys("gcpath", &partition_root).await;
            assert!(!before.is_empty(), "{label}: nothing under {partition_root}");

            // A dry run with the default grace deletes nothing.
            let dry = cx.gc("gcpath").run().await.unwrap();
            assert_nothing_deleted(&dry, &label);
            assert_eq!(cx.keys("gcpath", &partition_root).await, before, "{label}");

            let report = cx.gc("gcpath").options(zero_grace()).run().await.unwrap();
            assert!(!report.refused, "{label}: {report:#?}");
            // Orphans: the failed insert's video and array, sid 2's old video, and sid 3's
            // video, array and folder (two files and a manifest).
            assert_eq!(report.schema.deleted, 2 + 1 + 2 + 3, "{label}: {report:#?}");

            // Everything live is intact and reads back.
            let rows: Vec<Row> = t.query().order_by(["sid"]).fetch().await.unwrap();
            assert_eq!(rows.len(), 2, "{label}");
            for r in &rows {
                let v = r["video"].as_domain::<ObjectRef>().unwrap();
                v.verify().await.unwrap_or_else(|e| panic!("{label}: {e}"));
                let f = r["frames"].as_domain::<ObjectRef>().unwrap();
                f.verify().await.unwrap_or_else(|e| panic!("{label}: {e}"));
                assert_eq!(f.walk().await.unwrap().len(), 2, "{label}");
                let a = r["arr"].as_domain::<NpyRef>().unwrap();
                assert_eq!(a.load::<f64>().await.unwrap(), arr, "{label}");
                let s = r["src"].as_domain::<ObjectRef>().unwrap();
                s.verify().await.unwrap_or_else(|e| panic!("{label}: {e}"));
            }
            assert_eq!(
                &rows[1]["video"].as_domain::<ObjectRef>().unwrap().read().await.unwrap()[..],
                &noise(50, 3000)[..]
            );
            // The user's file behind <filepath@> is never touched.
            assert!(store.exists(&user_file).await.unwrap(), "{label}");
            let verified = Verify::new(&cx.conn)
                .store("gcpath")
                .schemas([cx.schema.name()])
                .run()
                .await
                .unwrap();
            assert_eq!((verified.missing, verified.corrupt), (0, 0), "{label}: {verified:#?}");
            // A second collection finds nothing more.
            let again = cx.gc("gcpath").options(zero_grace()).run().await.unwrap();
            assert_eq!(again.deleted(), 0, "{label}: {again:#?}");
            store.delete(&user_file).await.unwrap();
        })
        .await;
        wipe(&spec).await;
    }
}

// ------------------------------------------------------------------------------------------------
// Safety: missing schemas, short graces, random interleavings
// ------------------------------------------------------------------------------------------------

/// `(rid, raw bytes, object bytes)` of every row, sorted, read through the codecs (so every
/// object is fetched and verified).
async fn contents(t: &dj_schema::Table) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    let rows: Vec<Row> = t.query().order_by(["rid"]).fetch().await.unwrap();
    let mut out = Vec::new();
    for r in rows {
        let rid = match &r["rid"] {
            Value::Int(i) => *i as i32,
            other => panic!("rid is {other:?}"),
        };
        let raw = r["raw"].as_bytes().unwrap().to_vec();
        let obj = r["obj"]
            .as_domain::<dj_object::ObjectRef>()
            .unwrap()
            .read()
            .await
            .unwrap()
            .to_vec();
        out.push((rid, raw, obj));
    }
    out
}

/// Defect: a collection whose configuration points at a database without the schema counted
/// every object of that schema as an orphan and deleted them. Named schemas must exist, and
/// without names every schema that owns objects in the store must exist, or GC refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_missing_from_the_database_makes_gc_refuse() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, spec) in store_kinds("gcmiss", dir.path()) {
        eprintln!("=== store kind {kind}");
        let root = dir.path().join("gcmiss");
        each_backend("gcmiss", std::slice::from_ref(&spec), no_wrap, |cx| {
            let spec = spec.clone();
            let root = root.clone();
            async move {
                let label = format!("{} on {kind}", cx.label);
                let s = cx.schema.name().to_string();
                let t = cx
                    .schema
                    .declare(
                        "Rec",
                        Tier::Manual,
                        "rid : int32\n---\nraw : <hash@gcmiss>\nobj : <object@gcmiss>",
                    )
                    .await
                    .unwrap();
                for i in 1..=3 {
                    t.insert1(&row! {
                        "rid" => i,
                        "raw" => Value::Bytes(noise(700 + i as u64, 64).into()),
                        "obj" => Value::Bytes(noise(800 + i as u64, 64).into()),
                    })
                    .await
                    .unwrap();
                }
                let before = contents(&t).await;
                // Old enough for the default grace period where the store lets us say so; on
                // S3, zero grace (explicitly allowed) makes every object old enough.
                let grace = if kind == "file" {
                    age_files(&root, Duration::from_secs(48 * 3600));
                    GcOptions::DEFAULT_GRACE
                } else {
                    Duration::ZERO
                };
                // Another database (an empty SQLite file) with the same store.
                let other_dir = tempfile::tempdir().unwrap();
                let mut config = dj_config::Config::default();
                config.database.path = Some(other_dir.path().join("other.sqlite"));
                config.stores.specs.insert(spec.name.clone(), spec.clone());
                let other = Connection::open(&config).await.unwrap();
                let named = Gc::new(&other, "gcmiss")
                    .schemas([s.as_str()])
                    .options(deleting(grace))
                    .run()
                    .await
                    .unwrap();
                assert!(named.refused, "{label}: {named:#?}");
                assert_nothing_deleted(&named, &label);
                assert!(
                    named
                        .scan_errors
                        .iter()
                        .any(|e| e.contains(&s) && e.contains("does not exist")),
                    "{label}: {named:#?}"
                );
                let discovered = Gc::new(&other, "gcmiss")
                    .options(deleting(grace))
                    .run()
                    .await
                    .unwrap();
                assert!(discovered.refused, "{label}: {discovered:#?}");
                assert_nothing_deleted(&discovered, &label);
                assert!(
                    discovered.scan_errors.iter().any(|e| e.contains(&s)),
                    "{label}: {discovered:#?}"
                );
                other.close().await;
                assert_eq!(contents(&t).await, before, "{label}");
                // The right database collects as usual (nothing is an orphan).
                let r = cx
                    .gc("gcmiss")
                    .options(deleting(grace))
                    .run()
                    .await
                    .unwrap();
                assert!(r.is_clean() && !r.refused, "{label}: {r:#?}");
                assert_nothing_deleted(&r, &label);
            }
        })
        .await;
        wipe(&spec).await;
    }
}

/// Defect: an insert reused an orphan younger than an hour as it was, while a collection with a
/// shorter grace period deleted it; the committed row then pointed at nothing. Here the insert
/// reusing the orphans commits at the worst moment (after the collection read the references for
/// the last time, before it deletes), at graces from a minute to a day: each collection either
/// refuses its grace period or leaves every committed row readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_reusing_an_orphan_survives_a_collection_at_every_grace() {
    let dir = tempfile::tempdir().unwrap();
    let spec = file_spec("gcreuse", dir.path());
    let root = dir.path().join("gcreuse");
    each_backend("gcreuse", std::slice::from_ref(&spec), no_wrap, |cx| {
        let root = root.clone();
        async move {
            let label = cx.label.clone();
            let t = cx
                .schema
                .declare("Rec", Tier::Manual, "rid : int32\n---\nraw : <hash@gcreuse>")
                .await
                .unwrap();
            let minutes = |m: u64| Duration::from_secs(60 * m);
            // (grace, age of the orphans): old enough to be collected at that grace.
            let cases = [
                (minutes(1), minutes(45)),
                (minutes(30), minutes(45)),
                (minutes(120), minutes(150)),
                (minutes(6 * 60), minutes(7 * 60)),
                (minutes(24 * 60), minutes(25 * 60)),
            ];
            for (n, (grace, age)) in cases.into_iter().enumerate() {
                let case = format!("{label}, grace {}s", grace.as_secs());
                let base = 100 * (n as i32 + 1);
                let data: Vec<Vec<u8>> = (0..4).map(|i| noise(base as u64 + i, 256)).collect();
                let rows = |offset: i32| -> Vec<Row> {
                    data.iter()
                        .enumerate()
                        .map(|(i, d)| row! {"rid" => base + offset + i as i32, "raw" => Value::Bytes(d.clone().into())})
                        .collect()
                };
                t.insert(&rows(0)).await.unwrap();
                t.query().delete().await.unwrap();
                age_files(&root, age);
                let fired = Arc::new(AtomicBool::new(false));
                let (hook_fired, hook_table) = (Arc::clone(&fired), t.clone());
                let reinsert = rows(50);
                let handle = tokio::runtime::Handle::current();
                let outcome = cx
                    .gc("gcreuse")
                    .options(deleting(grace))
                    .progress(move |p| {
                        if p.phase == Phase::Remark
                            && p.total == Some(p.done)
                            && !hook_fired.swap(true, Ordering::SeqCst)
                        {
                            tokio::task::block_in_place(|| {
                                handle.block_on(hook_table.insert(&reinsert)).unwrap();
                            });
                        }
                    })
                    .run()
                    .await;
                match outcome {
                    Err(Error::Gc { message, .. }) => {
                        assert!(grace < dj_core::reuse::MIN_GC_GRACE, "{case}: {message}");
                        assert!(message.contains("minimum"), "{case}: {message}");
                        t.insert(&rows(50)).await.unwrap();
                    }
                    Err(e) => panic!("{case}: {e}"),
                    Ok(r) => {
                        assert!(fired.load(Ordering::SeqCst), "{case}: {r:#?}");
                        assert!(r.is_clean(), "{case}: {r:#?}");
                    }
                }
                let got: Vec<Row> = t.query().order_by(["rid"]).fetch().await.unwrap();
                assert_eq!(got.len(), data.len(), "{case}");
                for (r, d) in got.iter().zip(&data) {
                    assert_eq!(r["raw"].as_bytes().map(|b| b.to_vec()).as_ref(), Some(d), "{case}");
                }
                let v = Verify::new(&cx.conn)
                    .schemas([cx.schema.name()])
                    .run()
                    .await
                    .unwrap();
                assert!(v.is_clean(), "{case}: {v:#?}");
                t.query().delete().await.unwrap();
            }
        }
    })
    .await;
}

/// The grace periods a deleting collection accepts, on every store kind (S3 included: the
/// refusal comes before anything is listed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graces_below_the_minimum_are_refused_when_deleting() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, spec) in store_kinds("gcmin", dir.path()) {
        each_backend(
            "gcmin",
            std::slice::from_ref(&spec),
            no_wrap,
            |cx| async move {
                let label = format!("{} on {kind}", cx.label);
                for secs in [1, 60, 1800, 3600, 7199] {
                    let e = cx
                        .gc("gcmin")
                        .options(GcOptions::grace(Duration::from_secs(secs)).dry_run(false))
                        .run()
                        .await
                        .unwrap_err();
                    assert!(
                        matches!(&e, Error::Gc { message, .. } if message.contains("minimum")),
                        "{label}, {secs}s: {e}"
                    );
                    // A dry run may look with any grace.
                    cx.gc("gcmin")
                        .options(GcOptions::grace(Duration::from_secs(secs)))
                        .run()
                        .await
                        .unwrap();
                }
                let e = cx
                    .gc("gcmin")
                    .options(GcOptions::grace(Duration::ZERO).dry_run(false))
                    .run()
                    .await
                    .unwrap_err();
                assert!(matches!(e, Error::Gc { .. }), "{label}: {e}");
                for ok in [
                    deleting(Duration::ZERO),
                    deleting(dj_core::reuse::MIN_GC_GRACE),
                ] {
                    cx.gc("gcmin").options(ok).run().await.unwrap();
                }
            },
        )
        .await;
        wipe(&spec).await;
    }
}

/// A small deterministic generator for the interleavings (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The GC safety property: random interleavings of inserts (fresh and deduplicated content,
/// including content whose rows were deleted, so orphans are reused), deletes, `update1`s, time
/// passing (file stores: objects aged by up to a day) and collections at graces from zero
/// (explicitly allowed, run while nothing writes) to a day, some of them concurrent with inserts
/// (at graces GC accepts for that). After every collection each committed row reads back
/// bit-identical through its codecs; at the end `Verify` is clean. More seeds:
/// `DJ_GC_SEEDS=1,2,3`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_rows_survive_random_interleavings_of_writes_and_collections() {
    let seeds: Vec<u64> = std::env::var("DJ_GC_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![0x5eed_0001, 0x5eed_0002]);
    let dir = tempfile::tempdir().unwrap();
    let collected = Arc::new(AtomicUsize::new(0));
    for (kind, spec) in store_kinds("gcprop", dir.path()) {
        let root = dir.path().join("gcprop");
        for &seed in &seeds {
            eprintln!("=== store kind {kind}, seed {seed:#x}");
            each_backend("gcprop", std::slice::from_ref(&spec), no_wrap, |cx| {
                let (root, collected) = (root.clone(), Arc::clone(&collected));
                async move {
                    let n = interleave(&cx, kind, &root, seed).await;
                    collected.fetch_add(n as usize, Ordering::SeqCst);
                }
            })
            .await;
            wipe(&spec).await;
        }
    }
    // The collections did collect: the property was tested against real deletions.
    assert!(collected.load(Ordering::SeqCst) > 0);
}

/// One interleaving; returns how many objects its collections deleted.
async fn interleave(cx: &Ctx, kind: &str, root: &Path, seed: u64) -> u64 {
    let t = cx
        .schema
        .declare(
            "Item",
            Tier::Manual,
            "rid : int32\n---\nraw : <hash@gcprop>\nobj : <object@gcprop>",
        )
        .await
        .unwrap();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    // A small pool of contents, so that inserts often deduplicate, also against orphans.
    let pool: Vec<Vec<u8>> = (0..5).map(|i| noise(seed ^ (i + 1), 512)).collect();
    let mut model: std::collections::BTreeMap<i32, (Vec<u8>, Vec<u8>)> = Default::default();
    let mut next_rid = 1;
    let mut fresh = 0u64;
    let mut log: Vec<String> = Vec::new();
    let mut deleted = 0u64;
    let hours = |h: u64| Duration::from_secs(3600 * h);
    let graces = [Duration::ZERO, hours(2), hours(6), hours(24)];
    let content = |rng: &mut Rng, fresh: &mut u64| -> Vec<u8> {
        if rng.below(3) == 0 {
            *fresh += 1;
            noise(
                seed.wrapping_add(1000 + *fresh),
                300 + rng.below(300) as usize,
            )
        } else {
            pool[rng.below(pool.len() as u64) as usize].clone()
        }
    };
    for step in 0..36 {
        let op = rng.below(10);
        let ctx = format!("{} on {kind}, seed {seed:#x}, step {step}", cx.label);
        match op {
            // Insert one or two rows.
            0..=2 => {
                let mut rows = Vec::new();
                for _ in 0..=rng.below(2) {
                    let (raw, obj) = (content(&mut rng, &mut fresh), content(&mut rng, &mut fresh));
                    rows.push(row! {"rid" => next_rid, "raw" => Value::Bytes(raw.clone().into()), "obj" => Value::Bytes(obj.clone().into())});
                    model.insert(next_rid, (raw, obj));
                    next_rid += 1;
                }
                log.push(format!("insert {}", rows.len()));
                t.insert(&rows).await.unwrap();
            }
            // Delete a row.
            3 if !model.is_empty() => {
                let rid = *model
                    .keys()
                    .nth(rng.below(model.len() as u64) as usize)
                    .unwrap();
                log.push(format!("delete {rid}"));
                t.restrict(row! {"rid" => rid}).delete().await.unwrap();
                model.remove(&rid);
            }
            // Replace a row's values.
            4 if !model.is_empty() => {
                let rid = *model
                    .keys()
                    .nth(rng.below(model.len() as u64) as usize)
                    .unwrap();
                let (raw, obj) = (content(&mut rng, &mut fresh), content(&mut rng, &mut fresh));
                log.push(format!("update {rid}"));
                t.update1(&row! {"rid" => rid, "raw" => Value::Bytes(raw.clone().into()), "obj" => Value::Bytes(obj.clone().into())})
                    .await
                    .unwrap();
                model.insert(rid, (raw, obj));
            }
            // Time passes (only a file store lets the test say so).
            5 if kind == "file" => {
                let by = Duration::from_secs(60 * (30 + rng.below(24 * 60)));
                log.push(format!("age {}m", by.as_secs() / 60));
                age_files(root, by);
            }
            // A collection while nothing writes, at any grace (zero explicitly allowed).
            5..=7 => {
                // Half of them at zero grace, which collects whatever is unreferenced.
                let grace = if rng.below(2) == 0 {
                    Duration::ZERO
                } else {
                    graces[1 + rng.below(graces.len() as u64 - 1) as usize]
                };
                log.push(format!("gc {}s", grace.as_secs()));
                let r = cx
                    .gc("gcprop")
                    .options(deleting(grace))
                    .run()
                    .await
                    .unwrap();
                assert!(r.is_clean() && !r.refused, "{ctx}: {log:?}\n{r:#?}");
                deleted += r.deleted();
            }
            // A collection racing inserts that reuse the pool's contents, at a grace GC accepts
            // while writers run.
            _ => {
                let grace = graces[1 + rng.below(graces.len() as u64 - 1) as usize];
                let mut rows = Vec::new();
                for _ in 0..3 {
                    let raw = pool[rng.below(pool.len() as u64) as usize].clone();
                    let obj = content(&mut rng, &mut fresh);
                    rows.push((next_rid, raw, obj));
                    next_rid += 1;
                }
                log.push(format!(
                    "gc {}s racing {} inserts",
                    grace.as_secs(),
                    rows.len()
                ));
                let gc = cx.gc("gcprop").options(deleting(grace));
                let writer = async {
                    for (rid, raw, obj) in &rows {
                        t.insert1(&row! {"rid" => *rid, "raw" => Value::Bytes(raw.clone().into()), "obj" => Value::Bytes(obj.clone().into())})
                            .await
                            .unwrap();
                        tokio::task::yield_now().await;
                    }
                };
                let (r, ()) = tokio::join!(gc.run(), writer);
                let r = r.unwrap();
                assert!(r.is_clean() && !r.refused, "{ctx}: {log:?}\n{r:#?}");
                deleted += r.deleted();
                for (rid, raw, obj) in rows {
                    model.insert(rid, (raw, obj));
                }
            }
        }
        if log.last().is_some_and(|l| l.starts_with("gc")) {
            let want: Vec<(i32, Vec<u8>, Vec<u8>)> = model
                .iter()
                .map(|(k, (a, b))| (*k, a.clone(), b.clone()))
                .collect();
            assert_eq!(contents(&t).await, want, "{ctx}: {log:?}");
        }
    }
    let want: Vec<(i32, Vec<u8>, Vec<u8>)> = model
        .iter()
        .map(|(k, (a, b))| (*k, a.clone(), b.clone()))
        .collect();
    assert_eq!(contents(&t).await, want, "{} on {kind}: {log:?}", cx.label);
    let v = Verify::new(&cx.conn)
        .schemas([cx.schema.name()])
        .run()
        .await
        .unwrap();
    assert!(v.is_clean(), "{} on {kind}: {log:?}\n{v:#?}", cx.label);
    eprintln!(
        "    {} ops, {deleted} objects collected: {log:?}",
        log.len()
    );
    deleted
}
