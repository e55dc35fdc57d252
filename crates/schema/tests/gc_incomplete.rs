//! Garbage collection of leftovers of interrupted writes, on SQLite, PostgreSQL and MariaDB: the
//! staging files a killed writer leaves in a file store (one of them a hard link of the object it
//! had just published) and the multipart uploads nobody finished on S3 (where
//! `DJ_TEST_S3_*` provide a server). Listings hide both, so before this a collection never saw
//! them. Past the grace period they are removed and their bytes reported truthfully; a write
//! that showed a sign of life within the grace period is never touched, not even one that comes
//! back to life between the listing and the removal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
mod gc_harness;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use dj_codec_blob::Item;
use dj_core::registry::StoreSet;
use dj_core::store::{
    Capabilities, GetOptions, GetResult, IncompleteKind, IncompleteRemoval, IncompleteWrite,
    MultipartUpload, ObjectMeta, PutOptions, PutResult, Store, StorePath,
};
use dj_core::value::Value;
use dj_schema::lifecycle::{Gc, GcOptions, GcReport};
use dj_schema::{Connection, Row, Tier, row};
use dj_store_file::FileStore;
use dj_testkit::{Fault, FaultyStore};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value as Json, json};

use dj_codec_hash as _;
use dj_store_s3 as _;
use gc_harness::{age_file, each_backend, file_spec, no_wrap, path_of, store_kinds, zero_grace};

// ------------------------------------------------------------------------------------------------
// A store wrapper with hooks: start a write while leftovers are listed, revive one just before
// it is removed
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Hooks {
    /// Start an upload to this key (with one part) when leftovers are listed; kept here.
    start_on_list: Mutex<Option<StorePath>>,
    started: tokio::sync::Mutex<Option<Box<dyn MultipartUpload>>>,
    /// Put one more part into this upload of this key just before its removal is attempted.
    revive: tokio::sync::Mutex<Option<(StorePath, Box<dyn MultipartUpload>)>>,
    /// The upload after it was revived, for the test to complete.
    revived: tokio::sync::Mutex<Option<Box<dyn MultipartUpload>>>,
}

#[derive(Debug)]
struct Hooked {
    inner: Arc<dyn Store>,
    hooks: Arc<Hooks>,
}

impl std::fmt::Display for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "hooked {}", self.inner)
    }
}

#[async_trait]
impl Store for Hooked {
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
        self.inner.put_opts(path, payload, options).await
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
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, dj_core::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn put_multipart(&self, path: &StorePath) -> dj_core::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart(path).await
    }
    fn list_incomplete(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, dj_core::Result<IncompleteWrite>> {
        let inner = Arc::clone(&self.inner);
        let hooks = Arc::clone(&self.hooks);
        let listing = self.inner.list_incomplete(prefix);
        let start = hooks.start_on_list.lock().unwrap().take();
        futures::stream::once(async move {
            if let Some(key) = start {
                // File times come from the kernel's coarse clock, which may lag the collection's
                // cutoff by a few milliseconds: start clearly after it.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let mut up = inner.put_multipart(&key).await.unwrap();
                put_part_and_wait(inner.as_ref(), up.as_mut(), &key, PART).await;
                *hooks.started.lock().await = Some(up);
            }
        })
        .filter_map(|_| async { None::<dj_core::Result<IncompleteWrite>> })
        .chain(listing)
        .boxed()
    }
    async fn remove_incomplete(
        &self,
        write: &IncompleteWrite,
        not_after: DateTime<Utc>,
    ) -> dj_core::Result<IncompleteRemoval> {
        let mut revive = self.hooks.revive.lock().await;
        if revive.as_ref().is_some_and(|(k, _)| *k == write.path) {
            let (key, mut up) = revive.take().unwrap();
            let before = write.size;
            put_part_and_wait(self.inner.as_ref(), up.as_mut(), &key, before + 10).await;
            *self.hooks.revived.lock().await = Some(up);
        }
        drop(revive);
        self.inner.remove_incomplete(write, not_after).await
    }
}

// ------------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------------

/// The first part of every upload here: the smallest S3 accepts for a part that is not the last.
const PART: u64 = 5 * 1024 * 1024;

fn key(k: impl AsRef<str>) -> StorePath {
    StorePath::parse(k).unwrap()
}

/// A hash-section key beside `like` (`_hash/{schema}/[folds/]{hash}`): the same folds, and a
/// made-up hash of the same length that starts with them, as the layout's grammar wants.
fn hash_key_beside(like: &str, fill: char) -> StorePath {
    let segments: Vec<&str> = like.split('/').collect();
    let (hash, head) = segments.split_last().unwrap();
    let folds: String = head[2..].concat();
    let made_up = format!(
        "{folds}{}",
        fill.to_string().repeat(hash.len() - folds.len())
    );
    key(format!("{}/{made_up}", head.join("/")))
}

async fn incomplete(store: &dyn Store, prefix: &str) -> Vec<IncompleteWrite> {
    let p = key(prefix);
    let mut v: Vec<IncompleteWrite> = store.list_incomplete(Some(&p)).try_collect().await.unwrap();
    v.sort_by_key(ToString::to_string);
    v
}

/// Put a part and wait until the store shows the upload to `key` holding at least `size` bytes
/// (parts are sent in the background).
async fn put_part_and_wait(
    store: &dyn Store,
    up: &mut dyn MultipartUpload,
    k: &StorePath,
    size: u64,
) {
    let have = store
        .list_incomplete(Some(k))
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .iter()
        .filter(|w| w.path == *k)
        .map(|w| w.size)
        .max()
        .unwrap_or(0);
    let len = usize::try_from(size.saturating_sub(have)).unwrap().max(1);
    up.put_part(Bytes::from(vec![b'p'; len])).await.unwrap();
    wait_for_size(store, k, size).await;
}

/// Wait until the store shows the upload to `k` holding `size` bytes.
async fn wait_for_size(store: &dyn Store, k: &StorePath, size: u64) {
    let started = Instant::now();
    loop {
        let listed: Vec<IncompleteWrite> =
            store.list_incomplete(Some(k)).try_collect().await.unwrap();
        if listed.iter().any(|w| w.path == *k && w.size == size) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the upload to {k} never held {size} bytes: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const DAY: Duration = Duration::from_secs(24 * 3600);

fn incomplete_json(r: &GcReport) -> Json {
    serde_json::to_value(r).unwrap()["incomplete"].clone()
}

// ------------------------------------------------------------------------------------------------
// File store: staging files
// ------------------------------------------------------------------------------------------------

/// The writer the kill test starts as a child process (this test binary, running only this
/// test): a multipart upload to `DJ_KILL_KEY` in the file store at `DJ_KILL_DIR` that never ends.
/// Without those variables (a test run with `--include-ignored`) it does nothing.
#[tokio::test]
#[ignore = "the child process of `staging_files_of_killed_writes_are_collected_after_the_grace`"]
async fn kill_child_writer() {
    let (Ok(dir), Ok(k)) = (std::env::var("DJ_KILL_DIR"), std::env::var("DJ_KILL_KEY")) else {
        return;
    };
    let store = FileStore::new("w", dir).unwrap();
    let mut up = store.put_multipart(&key(k)).await.unwrap();
    for i in 0..256u32 {
        up.put_part(Bytes::from(vec![i as u8; 1 << 20]))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(600)).await;
    panic!("the writer was not killed");
}

/// Start this test binary as a writer of `k` under `root` and SIGKILL it once it has written
/// 4 MiB; the staging file it leaves and its size.
fn kill_a_writer(root: &Path, k: &StorePath) -> (PathBuf, u64) {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_child_writer", "--ignored", "--nocapture"])
        .env("DJ_KILL_DIR", root)
        .env("DJ_KILL_KEY", k.as_str())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let staging = root.join(format!("{k}#1"));
    let started = Instant::now();
    while !std::fs::metadata(&staging).is_ok_and(|m| m.len() >= 4 << 20) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the writer exited on its own: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the writer wrote nothing"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let size = std::fs::metadata(&staging).unwrap().len();
    (staging, size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_files_of_killed_writes_are_collected_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let spec = file_spec("gcstage", dir.path());
    let root = std::fs::canonicalize(dir.path().join("gcstage")).unwrap();
    each_backend("gcstage", std::slice::from_ref(&spec), no_wrap, |cx| {
        let root = root.clone();
        async move {
            let label = cx.label.clone();
            let s = cx.schema.name().to_string();
            let t = cx
                .schema
                .declare(
                    "Rec",
                    Tier::Manual,
                    "rid : int32\n---\ndata : <blob@gcstage>\nobj = null : <gcptr@gcstage>",
                )
                .await
                .unwrap();
            t.insert(&[
                row! {"rid" => 1, "data" => Value::domain(Item::from("kept: referenced"))},
                row! {"rid" => 2, "data" => Value::domain(Item::from("orphaned by a delete"))},
            ])
            .await
            .unwrap();
            let stored = t.query().order_by(["rid"]).fetch_stored().await.unwrap();
            let live = key(path_of(&stored[0], "data"));
            let orphan = key(path_of(&stored[1], "data"));
            t.restrict(row! {"rid" => 2}).delete().await.unwrap();
            let file = |k: &str| root.join(k);
            let live_size = std::fs::metadata(file(live.as_str())).unwrap().len();
            let orphan_size = std::fs::metadata(file(orphan.as_str())).unwrap().len();

            // Writers killed after publishing with a hard link, before removing the staging name:
            // of an object a row references, and of one no row references.
            std::fs::hard_link(file(live.as_str()), file(&format!("{live}#1"))).unwrap();
            std::fs::hard_link(file(orphan.as_str()), file(&format!("{orphan}#1"))).unwrap();
            // A writer killed before publishing (a real process, SIGKILLed mid-write) and one
            // simulated in the schema section.
            let killed = hash_key_beside(live.as_str(), 'a');
            let (killed_file, killed_size) = kill_a_writer(&root, &killed);
            // A leftover of an `obj` object (an attribute of the table: GC touches only keys of
            // the layout of a known table and store attribute).
            let schema_leftover = format!("_schema/{s}/rec/rid=9/obj_AbCdEfGh.bin#3");
            std::fs::create_dir_all(file(&schema_leftover).parent().unwrap()).unwrap();
            std::fs::write(file(&schema_leftover), vec![3u8; 7000]).unwrap();
            // A young one: kept.
            let young = format!("{}#2", hash_key_beside(live.as_str(), 'b'));
            std::fs::write(file(&young), vec![4u8; 900]).unwrap();
            // A file of a referenced folder object that is named like a staging file (DataJoint
            // Python may write one): never touched.
            let folder = format!("_schema/{s}/rec/rid=3/obj_FoLdEr01");
            std::fs::create_dir_all(file(&folder)).unwrap();
            std::fs::write(file(&format!("{folder}/frame#1")), vec![5u8; 300]).unwrap();
            t.insert1(&row! {
                "rid" => 3,
                "data" => Value::domain(Item::from("folder row")),
                "obj" => Value::Json(json!({"path": folder, "size": 300, "is_dir": true})),
            })
            .await
            .unwrap();
            // Leftovers of other schemas and outside the sections: never listed for collection.
            let foreign = format!("_hash/{s}x/{}#1", "c".repeat(26));
            std::fs::create_dir_all(file(&foreign).parent().unwrap()).unwrap();
            std::fs::write(file(&foreign), b"other schema").unwrap();
            std::fs::create_dir_all(file("user/raw")).unwrap();
            std::fs::write(file("user/raw/f.bin#1"), b"user").unwrap();

            // Everything but the young one is two days old (the hard links share their objects'
            // age, so the objects are too).
            for f in [
                file(live.as_str()),
                file(orphan.as_str()),
                killed_file.clone(),
                file(&schema_leftover),
                file(&format!("{folder}/frame#1")),
                file(&foreign),
                file("user/raw/f.bin#1"),
            ] {
                age_file(&f, 2 * DAY);
            }

            // A dry run reports them; the bytes are what the disk holds.
            let dry = cx
                .gc("gcstage")
                .options(GcOptions::grace(DAY))
                .run()
                .await
                .unwrap();
            let inc = &dry.incomplete;
            assert!(dry.scan_errors.is_empty(), "{label}: {dry:#?}");
            assert_eq!(inc.found, 6, "{label}: {inc:#?}");
            assert_eq!(inc.linked, 2, "{label}: {inc:#?}");
            assert_eq!(inc.linked_bytes, live_size + orphan_size, "{label}");
            assert_eq!(
                inc.found_bytes,
                killed_size + 7000 + 900 + 300,
                "{label}: {inc:#?}"
            );
            assert_eq!(inc.referenced, 1, "{label}: {inc:#?}");
            assert_eq!(
                (inc.skipped_young, inc.skipped_young_bytes),
                (1, 900),
                "{label}"
            );
            assert_eq!(inc.stale, 4, "{label}: {inc:#?}");
            assert_eq!(inc.stale_bytes, killed_size + 7000, "{label}: {inc:#?}");
            let mut expected = vec![
                format!("{live}#1"),
                format!("{orphan}#1"),
                format!("{killed}#1"),
                schema_leftover.clone(),
            ];
            expected.sort();
            assert_eq!(inc.stale_paths, expected, "{label}");
            assert_eq!((inc.removed, inc.bytes_freed), (0, 0), "{label}");
            assert!(
                killed_file.exists() && file(&format!("{orphan}#1")).exists(),
                "{label}"
            );
            let j = incomplete_json(&dry);
            assert_eq!(j["stale"], 4, "{label}: {j}");

            // A failed listing of leftovers is a scan error: nothing at all is deleted.
            let faulty: Arc<dyn Store> =
                Arc::new(FaultyStore::new(cx.store("gcstage"), Fault::ListIncomplete));
            let set = StoreSet::new(cx.conn.config().core());
            set.insert("gcstage", faulty);
            let conn = Connection::open_with(Arc::clone(cx.conn.config()), Arc::new(set))
                .await
                .unwrap();
            let r = Gc::new(&conn, "gcstage")
                .schemas([s.as_str()])
                .options(zero_grace())
                .run()
                .await
                .unwrap();
            conn.close().await;
            assert!(r.refused, "{label}: {r:#?}");
            assert!(
                r.scan_errors.iter().any(|e| e.contains("injected fault")),
                "{label}: {:?}",
                r.scan_errors
            );
            assert_eq!(
                (r.deleted(), r.incomplete.removed),
                (0, 0),
                "{label}: {r:#?}"
            );
            assert!(
                killed_file.exists() && file(orphan.as_str()).exists(),
                "{label}"
            );

            // A real collection with a one-day grace: the stale leftovers go, before the orphan.
            let r = cx
                .gc("gcstage")
                .options(GcOptions::grace(DAY).dry_run(false))
                .run()
                .await
                .unwrap();
            assert!(r.is_clean() && !r.refused, "{label}: {r:#?}");
            let inc = &r.incomplete;
            assert_eq!(inc.removed, 4, "{label}: {inc:#?}");
            // The two hard links free nothing; the orphan's bytes are freed once, by the sweep,
            // which deletes the last name of its data.
            assert_eq!(inc.bytes_freed, killed_size + 7000, "{label}: {inc:#?}");
            assert_eq!(r.hash.deleted, 1, "{label}: {r:#?}");
            assert_eq!(r.bytes_freed(), orphan_size, "{label}: {r:#?}");
            for gone in [
                file(&format!("{live}#1")),
                file(&format!("{orphan}#1")),
                killed_file.clone(),
                file(&schema_leftover),
                file(orphan.as_str()),
            ] {
                assert!(!gone.exists(), "{label}: {} is still there", gone.display());
            }
            // The referenced object has one name again and is intact.
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                assert_eq!(std::fs::metadata(file(live.as_str())).unwrap().nlink(), 1);
            }
            let rows: Vec<Row> = t.query().order_by(["rid"]).fetch().await.unwrap();
            assert_eq!(
                rows[0]["data"].as_domain::<Item>(),
                Some(&Item::from("kept: referenced")),
                "{label}"
            );
            for kept in [
                file(&young),
                file(&format!("{folder}/frame#1")),
                file(&foreign),
                file("user/raw/f.bin#1"),
            ] {
                assert!(kept.exists(), "{label}: {} was removed", kept.display());
            }
            // The young one goes once it is old enough for the grace asked for.
            let r = cx.gc("gcstage").options(zero_grace()).run().await.unwrap();
            assert_eq!(r.incomplete.removed, 1, "{label}: {r:#?}");
            assert_eq!(r.incomplete.bytes_freed, 900, "{label}: {r:#?}");
            assert!(!file(&young).exists(), "{label}");
            assert!(file(&format!("{folder}/frame#1")).exists(), "{label}");
            std::fs::remove_file(file(&foreign)).unwrap();
            std::fs::remove_file(file("user/raw/f.bin#1")).unwrap();
        }
    })
    .await;
}

// ------------------------------------------------------------------------------------------------
// Every store kind: unfinished writes, a write started during the collection, and one revived
// between the listing and the removal
// ------------------------------------------------------------------------------------------------

/// Wait until every part time an S3 server reports (whole seconds) is in the past.
async fn past_the_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_uploads_are_aborted_after_the_grace_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, spec) in store_kinds("gcupl", dir.path()) {
        eprintln!("=== store kind {kind}");
        let hooks: Mutex<Vec<Arc<Hooks>>> = Mutex::new(Vec::new());
        let wrap = |set: &StoreSet| {
            let h = Arc::new(Hooks::default());
            let real = set.get("gcupl").unwrap();
            set.insert(
                "gcupl",
                Arc::new(Hooked {
                    inner: real,
                    hooks: Arc::clone(&h),
                }),
            );
            hooks.lock().unwrap().push(h);
        };
        each_backend("gcupl", std::slice::from_ref(&spec), wrap, |cx| {
            let hooks = hooks.lock().unwrap().last().cloned().unwrap();
            async move {
                let label = format!("{} on {kind}", cx.label);
                let s = cx.schema.name().to_string();
                let t = cx
                    .schema
                    .declare("Rec", Tier::Manual, "rid : int32\n---\ndata : <blob@gcupl>")
                    .await
                    .unwrap();
                t.insert1(&row! {"rid" => 1, "data" => Value::domain(Item::from("live"))})
                    .await
                    .unwrap();
                let stored = t.query().fetch_stored().await.unwrap();
                let live = path_of(&stored[0], "data");
                let store = cx.store("gcupl");
                let section = format!("_hash/{s}");

                // An abandoned upload: its writer died (nothing will ever abort it).
                let abandoned = hash_key_beside(&live, 'a');
                let mut up = store.put_multipart(&abandoned).await.unwrap();
                put_part_and_wait(store.as_ref(), up.as_mut(), &abandoned, PART).await;
                std::mem::forget(up);
                // One that will come back to life between the listing and the removal.
                let revived = hash_key_beside(&live, 'b');
                let mut up = store.put_multipart(&revived).await.unwrap();
                put_part_and_wait(store.as_ref(), up.as_mut(), &revived, PART).await;
                *hooks.revive.lock().await = Some((revived.clone(), up));
                past_the_second().await;
                let listed = incomplete(store.as_ref(), &section).await;
                assert_eq!(listed.len(), 2, "{label}: {listed:#?}");
                // And one that starts while the collection lists leftovers.
                let late = hash_key_beside(&live, 'c');
                *hooks.start_on_list.lock().unwrap() = Some(late.clone());
                let r = cx.gc("gcupl").options(zero_grace()).run().await.unwrap();
                assert!(r.is_clean() && !r.refused, "{label}: {r:#?}");
                let inc = &r.incomplete;
                assert_eq!(inc.found, 3, "{label}: {inc:#?}");
                // The abandoned upload is aborted and its bytes reported; the revived one and the
                // late one are young.
                assert_eq!(inc.removed, 1, "{label}: {inc:#?}");
                assert_eq!(inc.bytes_freed, PART, "{label}: {inc:#?}");
                assert_eq!(inc.skipped_young, 2, "{label}: {inc:#?}");
                assert_eq!(inc.stale, 1, "{label}: {inc:#?}");
                assert_eq!(inc.stale_paths.len(), 1, "{label}: {inc:#?}");
                assert!(
                    inc.stale_paths[0].starts_with(abandoned.as_str()),
                    "{label}: {inc:#?}"
                );
                assert_eq!(r.deleted(), 0, "{label}: {r:#?}");

                // What is left: the two live writes, which complete untouched.
                let left = incomplete(store.as_ref(), &section).await;
                let left_keys: Vec<&StorePath> = left.iter().map(|w| &w.path).collect();
                assert_eq!(left_keys, [&revived, &late], "{label}: {left:#?}");
                if kind == "s3" {
                    assert!(
                        left.iter()
                            .all(|w| w.kind == IncompleteKind::MultipartUpload)
                    );
                }
                let up = hooks.revived.lock().await.take().unwrap();
                up.complete().await.unwrap();
                assert_eq!(
                    store.head(&revived).await.unwrap().size,
                    PART + 10,
                    "{label}"
                );
                let mut up = hooks.started.lock().await.take().unwrap();
                up.put_part(Bytes::from_static(b"tail")).await.unwrap();
                up.complete().await.unwrap();
                assert_eq!(store.head(&late).await.unwrap().size, PART + 4, "{label}");
                assert!(
                    incomplete(store.as_ref(), &section).await.is_empty(),
                    "{label}"
                );
                store.delete(&revived).await.unwrap();
                store.delete(&late).await.unwrap();
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_progress_survives_a_concurrent_collection() {
    // A writer sends parts the whole time deleting collections run, with a grace period longer
    // than the time since its last part but shorter than the time since it started: judged by
    // its last sign of life, it is never removed.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("gcrace");
    for (kind, spec) in store_kinds("gcrace", dir.path()) {
        eprintln!("=== store kind {kind}");
        let root = &root;
        each_backend(
            "gcrace",
            std::slice::from_ref(&spec),
            no_wrap,
            |cx| async move {
                let label = format!("{} on {kind}", cx.label);
                let s = cx.schema.name().to_string();
                let t = cx
                    .schema
                    .declare(
                        "Rec",
                        Tier::Manual,
                        "rid : int32\n---\ndata : <blob@gcrace>",
                    )
                    .await
                    .unwrap();
                t.insert1(&row! {"rid" => 1, "data" => Value::domain(Item::from("live"))})
                    .await
                    .unwrap();
                let live = path_of(&t.query().fetch_stored().await.unwrap()[0], "data");
                let store = cx.store("gcrace");
                let k = hash_key_beside(&live, 'd');
                let mut up = store.put_multipart(&k).await.unwrap();
                put_part_and_wait(store.as_ref(), up.as_mut(), &k, 1000).await;
                // Older than the grace period by its start (the shortest a deleting collection
                // accepts; moto reports every upload as started in 2010, and a file store's staging
                // file is aged here)...
                let grace = dj_core::reuse::MIN_GC_GRACE;
                if kind == "file" {
                    for w in incomplete(store.as_ref(), k.as_str()).await {
                        age_file(&root.join(w.to_string()), 3 * grace);
                    }
                }
                let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let (resumed, has_resumed) = tokio::sync::oneshot::channel();
                let writer = {
                    let store = Arc::clone(&store);
                    let k = k.clone();
                    let stop = Arc::clone(&stop);
                    tokio::spawn(async move {
                        // ...but a part every 100 ms while the collections run (from before the
                        // first one starts: idle for longer than the grace, it would be fair game).
                        let mut size = 1001;
                        put_part_and_wait(store.as_ref(), up.as_mut(), &k, size).await;
                        resumed.send(()).unwrap();
                        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            up.put_part(Bytes::from_static(b"p")).await.unwrap();
                            size += 1;
                        }
                        wait_for_size(store.as_ref(), &k, size).await;
                        (up, size)
                    })
                };
                has_resumed.await.unwrap();
                for _ in 0..3 {
                    let r = cx
                        .gc("gcrace")
                        .options(GcOptions::grace(grace).dry_run(false))
                        .run()
                        .await
                        .unwrap();
                    assert!(r.is_clean(), "{label}: {r:#?}");
                    assert_eq!(r.incomplete.found, 1, "{label}: {r:#?}");
                    assert_eq!(r.incomplete.removed, 0, "{label}: {r:#?}");
                    assert_eq!(r.incomplete.skipped_young, 1, "{label}: {r:#?}");
                }
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                let (up, size) = writer.await.unwrap();
                // Every part is still there.
                let left = incomplete(store.as_ref(), &format!("_hash/{s}")).await;
                assert_eq!(left.len(), 1, "{label}: {left:#?}");
                assert_eq!((&left[0].path, left[0].size), (&k, size), "{label}");
                if kind == "file" {
                    up.complete().await.unwrap();
                    assert_eq!(store.head(&k).await.unwrap().size, size, "{label}");
                    store.delete(&k).await.unwrap();
                } else {
                    // S3 completes only uploads whose parts but the last have 5 MiB.
                    up.abort().await.unwrap();
                }
                assert!(
                    incomplete(store.as_ref(), &format!("_hash/{s}"))
                        .await
                        .is_empty()
                );
            },
        )
        .await;
    }
}
