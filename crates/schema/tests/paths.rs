//! Path-addressed object storage through tables, on SQLite, PostgreSQL and MariaDB, with a file
//! store and the loopback S3 store: `<object@>` from every kind of input, lazy `ObjectRef`
//! reads, `update1` paths, staged inserts (commit, failure, abort, drop), `<filepath@>`, and
//! faults (an upload failing half-way, a checksum mismatch, a missing object).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::sync::Arc;

use dj_codec_object::ObjectInput;
use dj_config::{Config, StoreSpec};
use dj_core::registry::StoreSet;
use dj_core::store::{Store, StoreExt, StorePath};
use dj_core::value::Value;
use dj_object::ObjectRef;
use dj_schema::{Connection, Error, Schema, Tier, row};
use dj_testkit::{Fault, FaultyStore};
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use dj_codec_filepath as _;
use dj_store_file as _;
use dj_store_s3 as _;

fn file_spec(name: &str, dir: &Path) -> StoreSpec {
    std::fs::create_dir_all(dir).unwrap();
    StoreSpec::new(name, "file", dir.to_string_lossy())
}

/// The stores every test uses: `files` (local) and `s3` (the loopback S3 server; a second local
/// store when none runs outside CI).
fn with_stores(c: &mut Config, dir: &Path, s3: &Option<StoreSpec>) {
    c.stores
        .specs
        .insert("files".into(), file_spec("files", &dir.join("files")));
    c.stores.specs.insert(
        "s3".into(),
        s3.clone()
            .unwrap_or_else(|| file_spec("s3", &dir.join("s3-fallback"))),
    );
    c.stores.default = Some("files".into());
    c.stores.filepath_default = Some("files".into());
}

async fn each_backend<S, F, Fut>(test: &str, dir: &Path, stores: S, body: F)
where
    S: Fn(&Arc<Config>) -> Arc<StoreSet>,
    F: Fn(&'static str, Schema, &'static str) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let s3 = dj_testkit::s3_spec_from_env("s3", "s3", &dj_testkit::unique_prefix(test));
    for (label, mut config, _dbdir) in common::configs() {
        with_stores(&mut config, dir, &s3);
        let config = Arc::new(config);
        let conn = Connection::open_with(Arc::clone(&config), stores(&config))
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        for store in ["files", "s3"] {
            let name = common::schema_name(test);
            let schema = conn.schema(&name).await.unwrap();
            eprintln!("--- {test} on {label} / {store} (schema {name})");
            body(label, schema.clone(), store).await;
            schema.drop().await.unwrap();
        }
        conn.close().await;
    }
}

fn plain(config: &Arc<Config>) -> Arc<StoreSet> {
    Arc::new(StoreSet::new(config.core()))
}

fn obj(v: &Value) -> &ObjectRef {
    v.as_domain::<ObjectRef>()
        .unwrap_or_else(|| panic!("not an ObjectRef: {v:?}"))
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn stored_json(t: &dj_schema::Table, id: i32, field: &str) -> Json {
    let rows = t
        .restrict(row! {"rec_id" => id})
        .fetch_stored()
        .await
        .unwrap();
    match &rows[0][field] {
        Value::Json(j) => j.clone(),
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => panic!("stored metadata is {other:?}"),
    }
}

async fn keys_below(store: &Arc<dyn Store>, prefix: &str) -> Vec<String> {
    let p = StorePath::parse(prefix).unwrap();
    let mut keys: Vec<String> = store
        .list_all(Some(&p))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.path.as_str().to_string())
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_from_every_input_read_back_lazily() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("folder/sub")).unwrap();
    std::fs::write(src.join("trace.h5"), data(300_000, 1)).unwrap();
    std::fs::write(src.join("folder/a.txt"), b"alpha").unwrap();
    std::fs::write(src.join("folder/sub/b.bin"), data(70_000, 2)).unwrap();
    let src = &src;
    each_backend(
        "objinputs",
        dir.path(),
        plain,
        |label, s, store| async move {
            let t = s
                .declare(
                    "Rec",
                    Tier::Manual,
                    &format!("rec_id : int32\nname : varchar(16)\n---\nobj : <object@{store}>"),
                )
                .await
                .unwrap();
            let big = data(20 * 1024 * 1024 + 123, 7); // several multipart parts
            let inputs: Vec<(i32, Value)> = vec![
                (1, Value::Bytes(b"hello".to_vec().into())),
                (2, ObjectInput::bytes_with_ext("txt", "with ext").into()),
                (3, ObjectInput::file(src.join("trace.h5")).into()),
                (4, ObjectInput::folder(src.join("folder")).into()),
                (
                    5,
                    ObjectInput::reader(Some(".raw"), std::io::Cursor::new(big.clone())).into(),
                ),
                (6, Value::String(src.join("folder").display().to_string())),
            ];
            for (id, v) in inputs {
                t.insert1(&row! {"rec_id" => id, "name" => "a/b c", "obj" => v})
                    .await
                    .unwrap_or_else(|e| panic!("{label}/{store} insert {id}: {e}"));
            }
            // Paths and metadata as DataJoint writes them, plus the checksum.
            let schema = s.name().to_string();
            let m1 = stored_json(&t, 1, "obj").await;
            let p1 = m1["path"].as_str().unwrap();
            let prefix = format!("_schema/{schema}/rec/rec_id=1/name=a%2Fb%20c/obj_");
            assert!(p1.starts_with(&prefix), "{p1}");
            assert_eq!(p1.len(), prefix.len() + 8, "token of 8: {p1}");
            assert_eq!(m1["store"], store);
            assert_eq!(m1["size"], 5);
            assert_eq!(m1["ext"], Json::Null);
            assert_eq!(m1["is_dir"], false);
            assert_eq!(m1["item_count"], Json::Null);
            assert!(m1["timestamp"].as_str().unwrap().ends_with("+00:00"));
            assert_eq!(m1["checksum"].as_str().unwrap().len(), 52);
            let m2 = stored_json(&t, 2, "obj").await;
            assert_eq!(m2["ext"], ".txt");
            assert!(m2["path"].as_str().unwrap().ends_with(".txt"));
            let m3 = stored_json(&t, 3, "obj").await;
            assert_eq!(m3["ext"], ".h5");
            assert_eq!(m3["size"], 300_000);
            let m4 = stored_json(&t, 4, "obj").await;
            assert_eq!(m4["is_dir"], true);
            assert_eq!(m4["item_count"], 2);
            assert_eq!(m4["size"], 70_005);

            let rows = t.query().order_by(["rec_id"]).fetch_rows().await.unwrap();
            assert_eq!(rows.len(), 6);
            // bytes
            let o = obj(&rows[0]["obj"]);
            assert_eq!(o.size(), Some(5));
            assert_eq!(o.store_name(), store);
            assert_eq!(&o.read().await.unwrap()[..], b"hello");
            assert_eq!(&o.read_range(1..4).await.unwrap()[..], b"ell");
            assert!(o.exists().await.unwrap());
            o.verify().await.unwrap();
            // file: reader with seeks
            let o = obj(&rows[2]["obj"]);
            let mut r = o.reader().await.unwrap();
            r.seek(std::io::SeekFrom::Start(250_000)).await.unwrap();
            let mut buf = vec![0u8; 100];
            r.read_exact(&mut buf).await.unwrap();
            assert_eq!(buf, data(300_000, 1)[250_000..250_100]);
            r.seek(std::io::SeekFrom::End(-10)).await.unwrap();
            let mut tail = Vec::new();
            r.read_to_end(&mut tail).await.unwrap();
            assert_eq!(tail, data(300_000, 1)[299_990..]);
            let out = tempfile::tempdir().unwrap();
            let local = o.download(out.path()).await.unwrap();
            assert_eq!(
                local,
                out.path().join(Path::new(o.path()).file_name().unwrap())
            );
            assert_eq!(std::fs::read(&local).unwrap(), data(300_000, 1));
            o.verify().await.unwrap();
            // folder
            let o = obj(&rows[3]["obj"]);
            assert!(o.is_dir());
            assert!(
                o.read().await.is_err(),
                "a folder is not readable as a file"
            );
            let names: Vec<String> = o
                .listdir("")
                .await
                .unwrap()
                .into_iter()
                .map(|e| format!("{}{}", e.name, if e.is_dir { "/" } else { "" }))
                .collect();
            assert_eq!(names, ["a.txt", "sub/"]);
            let walked: Vec<(String, u64)> = o
                .walk()
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.path, e.size))
                .collect();
            assert_eq!(
                walked,
                [("a.txt".to_string(), 5), ("sub/b.bin".to_string(), 70_000)]
            );
            let mut member = o.open("sub/b.bin").await.unwrap();
            let mut got = Vec::new();
            member.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, data(70_000, 2));
            let out = tempfile::tempdir().unwrap();
            let tree = o.download(out.path().join("tree")).await.unwrap();
            assert_eq!(std::fs::read(tree.join("a.txt")).unwrap(), b"alpha");
            // Into an existing directory, a folder goes under its own name, as in DataJoint.
            let inside = o.download(out.path()).await.unwrap();
            assert_eq!(
                inside,
                out.path().join(Path::new(o.path()).file_name().unwrap())
            );
            assert_eq!(
                std::fs::read(inside.join("sub/b.bin")).unwrap(),
                data(70_000, 2)
            );
            assert_eq!(
                std::fs::read(tree.join("sub/b.bin")).unwrap(),
                data(70_000, 2)
            );
            o.verify().await.unwrap();
            // the manifest sits beside the folder
            let st = s.connection().stores().get(store).unwrap();
            let manifest = st
                .get(&StorePath::parse(format!("{}.manifest.json", o.path())).unwrap())
                .await
                .unwrap();
            let manifest: Json = serde_json::from_slice(&manifest).unwrap();
            assert_eq!(manifest["item_count"], 2);
            assert_eq!(manifest["total_size"], 70_005);
            assert_eq!(manifest["files"][0]["path"], "a.txt");
            // streamed reader of unknown length
            let o = obj(&rows[4]["obj"]);
            assert_eq!(o.size(), Some(big.len() as u64));
            assert_eq!(o.ext(), Some(".raw"));
            assert_eq!(o.read().await.unwrap().len(), big.len());
            assert_eq!(
                &o.read_range(20 * 1024 * 1024..20 * 1024 * 1024 + 123)
                    .await
                    .unwrap()[..],
                &big[20 * 1024 * 1024..]
            );
            o.verify().await.unwrap();
            // a path string names a local folder, as in DataJoint
            assert!(obj(&rows[5]["obj"]).is_dir());
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_keeps_key_segments_and_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    each_backend(
        "objupdate",
        dir.path(),
        plain,
        |label, s, store| async move {
            let t = s
                .declare(
                    "Rec",
                    Tier::Manual,
                    &format!("rec_id : int32\n---\nobj : <object@{store}>"),
                )
                .await
                .unwrap();
            t.insert1(&row! {"rec_id" => 7, "obj" => Value::Bytes(b"one".to_vec().into())})
                .await
                .unwrap();
            let before = stored_json(&t, 7, "obj").await;
            t.update1(&row! {"rec_id" => 7, "obj" => Value::Bytes(b"two!".to_vec().into())})
                .await
                .unwrap();
            let after = stored_json(&t, 7, "obj").await;
            let p = after["path"].as_str().unwrap();
            // DataJoint drops the key segments on update1; we keep them, with a fresh token.
            assert!(
                p.starts_with(&format!("_schema/{}/rec/rec_id=7/obj_", s.name())),
                "{label}: {p}"
            );
            assert_ne!(before["path"], after["path"]);
            let row = t.query().fetch_rows().await.unwrap().remove(0);
            assert_eq!(&obj(&row["obj"]).read().await.unwrap()[..], b"two!");

            // Bad input: in-table mode, wrong value types, missing local files; nothing is written.
            let err = s
                .declare("Bad", Tier::Manual, "bad_id : int32\n---\nobj : <object>")
                .await
                .unwrap_err();
            assert!(err.to_string().contains("object store only"), "{err}");
            let err = t
                .insert1(&row! {"rec_id" => 8, "obj" => 3})
                .await
                .unwrap_err();
            assert!(err.to_string().contains("obj"), "{err}");
            let err = t
                .insert1(&row! {"rec_id" => 8, "obj" => "/no/such/file.bin"})
                .await
                .unwrap_err();
            assert!(err.to_string().contains("/no/such/file.bin"), "{err}");
            assert_eq!(t.len().await.unwrap(), 1);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_inserts_commit_or_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    each_backend("staged", dir.path(), plain, |label, s, store| async move {
        let t = s
            .declare(
                "Scan",
                Tier::Manual,
                &format!(
                    "rec_id : int32\n---\nnote : varchar(32)\nvideo : <object@{store}>\nframes = null : <object@{store}>"
                ),
            )
            .await
            .unwrap();
        let st = s.connection().stores().get(store).unwrap();
        let section = format!("_schema/{}/scan", s.name());

        // Commit: a file and a folder, written in place.
        let mut staged = t.staged_insert1(row! {"rec_id" => 1}).unwrap();
        staged.set("note", "ok");
        let mut w = staged.file("video", Some("mp4")).unwrap();
        assert!(
            w.key().as_str().starts_with(&format!("{section}/rec_id=1/video_")),
            "{}",
            w.key()
        );
        w.write(&data(9 * 1024 * 1024, 3)).await.unwrap();
        w.write(b"end").await.unwrap();
        staged.finish_file(w).await.unwrap();
        let frames = staged.folder("frames", Some(".zarr")).unwrap();
        let (f1, f2) = (frames.clone(), frames.clone());
        let (a, b) = tokio::join!(
            f1.put("zarr.json", "{}".into()),
            f2.put("c/0/0", data(1000, 4).into())
        );
        a.unwrap();
        b.unwrap();
        staged.commit().await.unwrap();
        let row = t.query().fetch_rows().await.unwrap().remove(0);
        assert_eq!(row["note"], Value::from("ok"));
        let v = obj(&row["video"]);
        assert_eq!(v.ext(), Some(".mp4"));
        assert_eq!(v.size(), Some(9 * 1024 * 1024 + 3));
        v.verify().await.unwrap();
        let f = obj(&row["frames"]);
        assert!(f.is_dir());
        assert!(f.path().ends_with(".zarr"));
        assert_eq!(f.metadata().item_count, Some(2));
        f.verify().await.unwrap();
        let committed = keys_below(&st, &section).await;
        assert_eq!(committed.len(), 4, "{label}: {committed:?}");

        // Failure: the row is refused (duplicate key); what was written is removed.
        let mut staged = t.staged_insert1(row! {"rec_id" => 1, "note" => "dup"}).unwrap();
        let mut w = staged.file("video", None).unwrap();
        w.write(b"x").await.unwrap();
        staged.finish_file(w).await.unwrap();
        staged.folder("frames", None).unwrap().put("a", "b".into()).await.unwrap();
        let err = staged.commit().await.unwrap_err();
        assert!(matches!(err, Error::Duplicate { .. }), "{label}: {err}");
        assert_eq!(keys_below(&st, &section).await, committed);

        // Abort, and drop without commit.
        let mut staged = t.staged_insert1(row! {"rec_id" => 2, "note" => "no"}).unwrap();
        staged.folder("frames", None).unwrap().put("x", "y".into()).await.unwrap();
        staged.abort().await.unwrap();
        {
            let mut staged = t.staged_insert1(row! {"rec_id" => 3, "note" => "no"}).unwrap();
            let mut w = staged.file("video", None).unwrap();
            w.write(b"z").await.unwrap();
            staged.finish_file(w).await.unwrap();
        }
        for _ in 0..100 {
            if keys_below(&st, &section).await == committed {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(keys_below(&st, &section).await, committed);
        assert_eq!(t.len().await.unwrap(), 1);

        // Only <object@> attributes can be staged, and only with a whole key.
        let mut staged = t.staged_insert1(row! {"rec_id" => 4}).unwrap();
        assert!(staged.file("note", None).is_err());
        assert!(staged.file("nope", None).is_err());
        assert!(t.staged_insert1(row! {"note" => "no key"}).is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filepaths_reference_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    each_backend(
        "filepath",
        dir.path(),
        plain,
        |label, s, store| async move {
            let t = s
                .declare(
                    "Raw",
                    Tier::Manual,
                    &format!("rec_id : int32\n---\nsrc : <filepath@{store}>"),
                )
                .await
                .unwrap();
            let st = s.connection().stores().get(store).unwrap();
            let base = format!("acq/{}", s.name());
            st.put(
                &StorePath::parse(format!("{base}/f.bin")).unwrap(),
                data(10, 1).into(),
            )
            .await
            .unwrap();
            st.put(
                &StorePath::parse(format!("{base}/dir/x.bin")).unwrap(),
                data(3, 1).into(),
            )
            .await
            .unwrap();
            t.insert1(&row! {"rec_id" => 1, "src" => format!("{base}/f.bin")})
                .await
                .unwrap();
            t.insert1(&row! {"rec_id" => 2, "src" => format!("{base}/dir")})
                .await
                .unwrap();
            let m = stored_json(&t, 1, "src").await;
            assert_eq!(m["path"], format!("{base}/f.bin"));
            assert_eq!(m["size"], 10);
            assert_eq!(m["is_dir"], false);
            assert_eq!(m["store"], store);
            assert_eq!(stored_json(&t, 2, "src").await["is_dir"], true);
            for bad in [
                "/etc/passwd".to_string(),
                format!("{base}/../x"),
                format!("_hash/{}/x", s.name()),
                format!("_schema/{}/x", s.name()),
                format!("{base}/missing.bin"),
            ] {
                let err = t
                    .insert1(&row! {"rec_id" => 9, "src" => bad.clone()})
                    .await
                    .unwrap_err();
                assert!(err.to_string().contains("src"), "{label}: {bad}: {err}");
            }
            assert_eq!(t.len().await.unwrap(), 2);
            let rows = t.query().order_by(["rec_id"]).fetch_rows().await.unwrap();
            let f = obj(&rows[0]["src"]);
            assert_eq!(f.read().await.unwrap().len(), 10);
            f.verify().await.unwrap();
            assert_eq!(obj(&rows[1]["src"]).walk().await.unwrap().len(), 1);
            // The file changes behind our back: verify reports it with the path.
            st.put(
                &StorePath::parse(format!("{base}/f.bin")).unwrap(),
                data(11, 1).into(),
            )
            .await
            .unwrap();
            let err = f.verify().await.unwrap_err();
            assert!(err.to_string().contains(&format!("{base}/f.bin")), "{err}");
            assert!(err.to_string().contains("size"), "{err}");
            st.delete(&StorePath::parse(format!("{base}/f.bin")).unwrap())
                .await
                .unwrap();
            st.delete(&StorePath::parse(format!("{base}/dir/x.bin")).unwrap())
                .await
                .unwrap();
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_leave_no_row_and_no_partial_object() {
    let dir = tempfile::tempdir().unwrap();
    // Every second multipart part fails: a large upload fails half-way through.
    let faulty = |config: &Arc<Config>| {
        let set = StoreSet::new(config.core());
        for name in ["files", "s3"] {
            let real = set.get(name).unwrap();
            set.insert(name, Arc::new(FaultyStore::new(real, Fault::PartNth(2))));
        }
        Arc::new(set)
    };
    each_backend(
        "objfaults",
        dir.path(),
        faulty,
        |label, s, store| async move {
            let t = s
                .declare(
                    "Rec",
                    Tier::Manual,
                    &format!("rec_id : int32\n---\nobj : <object@{store}>"),
                )
                .await
                .unwrap();
            let st = s.connection().stores().get(store).unwrap();
            let section = format!("_schema/{}", s.name());
            let big = data(20 * 1024 * 1024, 9);
            let err = t
                .insert1(&row! {"rec_id" => 1, "obj" => Value::Bytes(big.clone().into())})
                .await
                .unwrap_err();
            assert!(err.to_string().contains("injected fault"), "{label}: {err}");
            assert_eq!(t.len().await.unwrap(), 0);
            assert!(
                keys_below(&st, &section).await.is_empty(),
                "{label}: partial object left"
            );

            // A checksum mismatch is reported with the path; a missing object is a clear error.
            t.insert1(&row! {"rec_id" => 2, "obj" => Value::Bytes(b"precious".to_vec().into())})
                .await
                .unwrap();
            let row = t.query().fetch_rows().await.unwrap().remove(0);
            let o = obj(&row["obj"]).clone();
            let key = StorePath::parse(o.path()).unwrap();
            st.put(&key, b"PRECIOUS".to_vec().into()).await.unwrap();
            let err = o.verify().await.unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(o.path()) && msg.contains("checksum"), "{msg}");
            st.delete(&key).await.unwrap();
            let err = o.read().await.unwrap_err();
            assert!(
                err.is_not_found() && err.to_string().contains(o.path()),
                "{err}"
            );
            assert!(!o.exists().await.unwrap());
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npy_arrays_read_lazily_in_slices() {
    use dj_codec_npy::NpyRef;
    use ndarray::{ArrayD, IxDyn, s};

    let dir = tempfile::tempdir().unwrap();
    each_backend("npy", dir.path(), plain, |label, s, store| async move {
        let t = s
            .declare(
                "Trace",
                Tier::Manual,
                &format!("rec_id : int32\n---\nsignal : <npy@{store}>"),
            )
            .await
            .unwrap();
        // 20 MiB of float64: above the streaming threshold, so it goes up in multipart parts.
        let rows = 20 * 1024 * 1024 / 8 / 64;
        let a = ArrayD::from_shape_fn(IxDyn(&[rows, 64]), |i| (i[0] * 64 + i[1]) as f64 * 0.25);
        t.insert1(&row! {"rec_id" => 1, "signal" => Value::domain(a.clone())})
            .await
            .unwrap();
        let m = stored_json(&t, 1, "signal").await;
        assert_eq!(m["dtype"], "float64", "{label}");
        assert_eq!(m["shape"], serde_json::json!([rows, 64]), "{label}");
        assert!(
            m["path"]
                .as_str()
                .unwrap()
                .starts_with(&format!("_schema/{}/trace/rec_id=1/signal_", s.name())),
            "{m}"
        );
        let row = t.query().fetch_rows().await.unwrap().remove(0);
        let n = row["signal"].as_domain::<NpyRef>().unwrap();
        assert_eq!(n.shape(), &[rows, 64]);
        assert_eq!(n.dtype().to_string(), "float64");
        let part: ArrayD<f64> = n.slice_rows(100..103).await.unwrap();
        assert_eq!(part, a.slice(s![100..103, ..]).into_dyn(), "{label}");
        let whole: ArrayD<f64> = n.load().await.unwrap();
        assert_eq!(whole, a, "{label}");
        n.verify().await.unwrap();
    })
    .await;
}
