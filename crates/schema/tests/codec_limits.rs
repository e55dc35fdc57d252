//! What insert accepts, fetch must read, through real tables on SQLite, PostgreSQL and MariaDB,
//! with a file store and the loopback S3 store:
//!
//! - attachments with names up to 255 bytes (the file-system limit) round-trip, in the table and
//!   in both stores, and are saved under their own name; longer names are refused at insert;
//! - `<filepath@>` never follows a symbolic link out of a `file` store, on insert or on read;
//! - `<blob>` values nested deeper than the decoder reads are refused at insert, naming the
//!   attribute, without overflowing the stack;
//! - a compressed blob inflating past `blob_max_decompressed_size` is refused at fetch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dj_codec_attach::Attachment;
use dj_codec_blob::{Item, MAX_DEPTH};
use dj_config::{Config, StoreSpec};
use dj_core::registry::StoreSet;
use dj_core::store::{StoreExt, StorePath};
use dj_core::value::Value;
use dj_object::ObjectRef;
use dj_schema::{Connection, Row, Schema, Tier, row};
use tokio::io::AsyncReadExt;

use dj_codec_filepath as _;
use dj_codec_hash as _;
use dj_store_file as _;
use dj_store_s3 as _;

fn file_spec(name: &str, dir: &Path) -> StoreSpec {
    std::fs::create_dir_all(dir).unwrap();
    StoreSpec::new(name, "file", dir.to_string_lossy())
}

/// Run `body` on every backend, once with the `files` store and once with the `s3` store (the
/// loopback S3 server; a second file store when none runs outside CI). `adjust` may change the
/// configuration further.
async fn each_backend<F, Fut>(test: &str, dir: &Path, adjust: impl Fn(&mut Config), body: F)
where
    F: Fn(&'static str, Schema, &'static str) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let s3 = dj_testkit::s3_spec_from_env("s3", "s3", &dj_testkit::unique_prefix(test));
    for (label, mut config, _dbdir) in common::configs() {
        config
            .stores
            .specs
            .insert("files".into(), file_spec("files", &dir.join("files")));
        config.stores.specs.insert(
            "s3".into(),
            s3.clone()
                .unwrap_or_else(|| file_spec("s3", &dir.join("s3-fallback"))),
        );
        config.stores.default = Some("files".into());
        config.download_path = dir.join("downloads");
        adjust(&mut config);
        let config = Arc::new(config);
        let conn =
            Connection::open_with(Arc::clone(&config), Arc::new(StoreSet::new(config.core())))
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

/// Run an async test body on a runtime whose threads have the normal 2 MiB stack.
fn on_small_stacks<F: std::future::Future<Output = ()> + Send + 'static>(
    body: impl FnOnce() -> F + Send + 'static,
) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(2 << 20)
                .enable_all()
                .build()
                .unwrap()
                .block_on(body())
        })
        .unwrap()
        .join()
        .unwrap_or_else(|_| panic!("the test panicked (see above)"));
}

fn attachment<'a>(r: &'a Row, k: &str) -> &'a Attachment {
    r[k].as_domain::<Attachment>()
        .unwrap_or_else(|| panic!("{k} fetched as {:?}", r[k]))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

// ------------------------------------------------------------------------------------------------
// Attachments with long names
// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_with_255_byte_names_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let src_dir = dir.path().join("src");
    std::fs::create_dir_all(&src_dir).unwrap();
    // 255 bytes: ASCII with an extension, and two-byte characters without one.
    let ascii = format!("{}.txt", "n".repeat(251));
    let wide = format!("{}z", "é".repeat(127));
    assert_eq!((ascii.len(), wide.len()), (255, 255));
    let from_disk = src_dir.join(&ascii);
    std::fs::write(&from_disk, b"read from a file").unwrap();
    let downloads = dir.path().join("downloads");
    let (ascii, wide, from_disk, downloads) = (&ascii, &wide, &from_disk, &downloads);
    each_backend(
        "attachlong",
        dir.path(),
        |_| {},
        |label, s, store| async move {
            let t = s
                .declare(
                    "Doc",
                    Tier::Manual,
                    &format!("doc_id : int32\n---\ninline : <attach>\nstored : <attach@{store}>"),
                )
                .await
                .unwrap();
            t.insert(&[
                row! {
                    "doc_id" => 1,
                    "inline" => from_disk.to_string_lossy().into_owned(),
                    "stored" => Value::domain(Attachment::new(wide.clone(), b"wide".to_vec())),
                },
                // The same names with other contents: fetch must number them, within 255 bytes.
                row! {
                    "doc_id" => 2,
                    "inline" => Value::domain(Attachment::new(ascii.clone(), b"second".to_vec())),
                    "stored" => Value::domain(Attachment::new(wide.clone(), b"other".to_vec())),
                },
            ])
            .await
            .unwrap_or_else(|e| panic!("{label}/{store}: {e}"));
            let rows: Vec<Row> = t
                .query()
                .order_by(["doc_id"])
                .fetch()
                .await
                .unwrap_or_else(|e| panic!("{label}/{store}: fetch: {e}"));
            let expect = [
                (0, "inline", ascii, &b"read from a file"[..]),
                (0, "stored", wide, b"wide"),
                (1, "inline", ascii, b"second"),
                (1, "stored", wide, b"other"),
            ];
            let mut saved = Vec::new();
            for (r, k, name, data) in expect {
                let a = attachment(&rows[r], k);
                assert_eq!(&a.filename, name, "{label}/{store}: {k}");
                assert_eq!(&a.data[..], data, "{label}/{store}: {k}");
                let path = a.saved_to.clone().unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), data, "{label}/{store}: {k}");
                assert_eq!(path.parent(), Some(downloads.as_path()));
                let file_name = path.file_name().unwrap().to_str().unwrap().to_string();
                assert!(file_name.len() <= 255, "{file_name}");
                saved.push(file_name);
            }
            // Each name is saved as itself once; the other contents went to a numbered name.
            for name in [ascii, wide] {
                let plain = saved.iter().filter(|n| *n == name).count();
                assert_eq!(plain, 1, "{label}/{store}: {saved:?}");
            }
            // Longer names are refused at insert, naming the attribute; nothing is written.
            let long = "x".repeat(256);
            for (k, other) in [("inline", "stored"), ("stored", "inline")] {
                let err = t
                    .insert1(&row! {
                        "doc_id" => 3,
                        k => Value::domain(Attachment::new(long.clone(), b"x".to_vec())),
                        other => Value::domain(Attachment::new("ok.txt", b"x".to_vec())),
                    })
                    .await
                    .unwrap_err()
                    .to_string();
                assert!(
                    err.contains(k) && err.contains("255"),
                    "{label}/{store}: {err}"
                );
            }
            assert_eq!(t.len().await.unwrap(), 2);
            // No temporary file is left in the download directory.
            for f in files_in(downloads) {
                let n = f.file_name().unwrap().to_string_lossy().into_owned();
                assert!(!n.starts_with('.'), "{label}/{store}: left behind: {n}");
                std::fs::remove_file(f).unwrap();
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_with_255_byte_names_download_under_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{}.bin", "d".repeat(251));
    let name = &name;
    let root = dir.path().to_path_buf();
    let root = &root;
    each_backend(
        "dllong",
        dir.path(),
        |_| {},
        |label, s, store| async move {
            let t = s
                .declare(
                    "Raw",
                    Tier::Manual,
                    &format!("rec_id : int32\n---\nsrc : <filepath@{store}>"),
                )
                .await
                .unwrap();
            let key = format!("acq/{}/{name}", s.name());
            if store == "files" {
                let p = root.join("files").join("acq").join(s.name());
                std::fs::create_dir_all(&p).unwrap();
                std::fs::write(p.join(name), b"payload").unwrap();
            } else {
                let st = s.connection().stores().get(store).unwrap();
                st.put(&StorePath::parse(&key).unwrap(), "payload".into())
                    .await
                    .unwrap();
            }
            t.insert1(&row! {"rec_id" => 1, "src" => key.clone()})
                .await
                .unwrap_or_else(|e| panic!("{label}/{store}: {e}"));
            let rows = t.query().fetch_rows().await.unwrap();
            let obj = rows[0]["src"].as_domain::<ObjectRef>().unwrap();
            let dest = root.join(format!("dl-{}", s.name()));
            std::fs::create_dir_all(&dest).unwrap();
            let got = obj
                .download(&dest)
                .await
                .unwrap_or_else(|e| panic!("{label}/{store}: download: {e}"));
            assert_eq!(got, dest.join(name));
            assert_eq!(std::fs::read(&got).unwrap(), b"payload");
            assert_eq!(
                files_in(&dest),
                vec![got],
                "{label}/{store}: no temporary left"
            );
        },
    )
    .await;
}

// ------------------------------------------------------------------------------------------------
// <filepath@> and symbolic links
// ------------------------------------------------------------------------------------------------

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filepaths_never_follow_a_link_out_of_a_file_store() {
    use std::os::unix::fs::symlink;

    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("sub")).unwrap();
    std::fs::write(elsewhere.join("secret.txt"), b"secret").unwrap();
    std::fs::write(elsewhere.join("f.bin"), b"secret too").unwrap();
    std::fs::write(elsewhere.join("sub/x.bin"), b"secret three").unwrap();
    let files_root = dir.path().join("files");
    let (elsewhere, files_root) = (&elsewhere, &files_root);
    each_backend(
        "fplinks",
        dir.path(),
        |_| {},
        |label, s, store| async move {
            let t = s
                .declare(
                    "Raw",
                    Tier::Manual,
                    &format!("rec_id : int32\n---\nsrc : <filepath@{store}>"),
                )
                .await
                .unwrap();
            let base = format!("acq/{}", s.name());
            let st = s.connection().stores().get(store).unwrap();
            for (k, v) in [("real/f.bin", "inside"), ("later/f.bin", "inside, then")] {
                st.put(&StorePath::parse(format!("{base}/{k}")).unwrap(), v.into())
                    .await
                    .unwrap();
            }
            let read = |rows: &[Row], i: usize| {
                rows[i]["src"]
                    .as_domain::<ObjectRef>()
                    .unwrap_or_else(|| panic!("not an ObjectRef: {:?}", rows[i]["src"]))
                    .clone()
            };
            if store != "files" {
                // No links in S3: plain paths insert and read as before.
                t.insert1(&row! {"rec_id" => 1, "src" => format!("{base}/real/f.bin")})
                    .await
                    .unwrap();
                let rows = t.query().fetch_rows().await.unwrap();
                assert_eq!(&read(&rows, 0).read().await.unwrap()[..], b"inside");
                return;
            }
            let dir = files_root.join(&base);
            // Links out of the store: to a folder, to a file, in the middle of a path, to nothing.
            symlink(elsewhere, dir.join("link")).unwrap();
            symlink(elsewhere.join("secret.txt"), dir.join("secret-link.txt")).unwrap();
            symlink("../../../elsewhere", dir.join("relative-out")).unwrap();
            std::fs::create_dir_all(dir.join("deep")).unwrap();
            symlink(elsewhere, dir.join("deep/mid")).unwrap();
            symlink(elsewhere.join("missing"), dir.join("dangling")).unwrap();
            // Links that stay inside, absolute and relative.
            symlink(dir.join("real"), dir.join("inside")).unwrap();
            symlink("real", dir.join("inside-rel")).unwrap();
            for bad in [
                format!("{base}/link/secret.txt"),
                format!("{base}/link"),
                format!("{base}/secret-link.txt"),
                format!("{base}/relative-out/secret.txt"),
                format!("{base}/deep/mid/sub/x.bin"),
                format!("{base}/deep/mid/sub"),
                format!("{base}/dangling"),
                format!("{base}/../../elsewhere/secret.txt"),
                elsewhere.join("secret.txt").to_string_lossy().into_owned(),
            ] {
                let err = t
                    .insert1(&row! {"rec_id" => 9, "src" => bad.clone()})
                    .await
                    .unwrap_err()
                    .to_string();
                assert!(err.contains("src"), "{label}: {bad}: {err}");
            }
            assert_eq!(t.len().await.unwrap(), 0, "{label}: nothing was inserted");
            // Inside links keep working, for files and folders.
            t.insert(&[
                row! {"rec_id" => 1, "src" => format!("{base}/inside/f.bin")},
                row! {"rec_id" => 2, "src" => format!("{base}/inside-rel/f.bin")},
                row! {"rec_id" => 3, "src" => format!("{base}/inside")},
                row! {"rec_id" => 4, "src" => format!("{base}/later/f.bin")},
                row! {"rec_id" => 5, "src" => format!("{base}/later")},
                row! {"rec_id" => 6, "src" => format!("{base}/real")},
            ])
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
            let rows = t.query().order_by(["rec_id"]).fetch_rows().await.unwrap();
            for i in [0, 1] {
                let f = read(&rows, i);
                assert_eq!(&f.read().await.unwrap()[..], b"inside", "{label}");
                f.verify().await.unwrap();
            }
            assert_eq!(read(&rows, 2).walk().await.unwrap().len(), 1, "{label}");
            assert_eq!(
                &read(&rows, 2).child("f.bin").unwrap().read().await.unwrap()[..],
                b"inside"
            );
            assert_eq!(&read(&rows, 3).read().await.unwrap()[..], b"inside, then");
            // Links created after insert are caught on read: the folder becomes a link out, and a
            // link out appears inside a folder.
            std::fs::remove_dir_all(dir.join("later")).unwrap();
            symlink(elsewhere, dir.join("later")).unwrap();
            symlink(elsewhere, dir.join("real/escape")).unwrap();
            let rows = t.query().order_by(["rec_id"]).fetch_rows().await.unwrap();
            let later = read(&rows, 3);
            let mut reader = later.reader().await.unwrap();
            let mut sink = Vec::new();
            let read_err = reader.read_to_end(&mut sink).await.unwrap_err();
            let mut errors = vec![
                read_err.to_string(),
                later.read().await.unwrap_err().to_string(),
                later.read_range(0..3).await.unwrap_err().to_string(),
                later.verify().await.unwrap_err().to_string(),
                later
                    .download(dir.join("never"))
                    .await
                    .map(|_| ())
                    .unwrap_err()
                    .to_string(),
                read(&rows, 4)
                    .walk()
                    .await
                    .map(|_| ())
                    .unwrap_err()
                    .to_string(),
                read(&rows, 4)
                    .child("f.bin")
                    .unwrap()
                    .read()
                    .await
                    .unwrap_err()
                    .to_string(),
                read(&rows, 5)
                    .walk()
                    .await
                    .map(|_| ())
                    .unwrap_err()
                    .to_string(),
                read(&rows, 5)
                    .child("escape/secret.txt")
                    .unwrap()
                    .read()
                    .await
                    .unwrap_err()
                    .to_string(),
            ];
            assert!(sink.is_empty(), "{label}: nothing from outside was read");
            for m in errors.drain(..) {
                assert!(
                    m.contains("outside the directory of store `files`"),
                    "{label}: {m}"
                );
            }
            assert!(!dir.join("never").exists());
            // The file inside the folder that is still inside reads.
            assert_eq!(
                &read(&rows, 5).child("f.bin").unwrap().read().await.unwrap()[..],
                b"inside"
            );
            std::fs::remove_file(dir.join("real/escape")).unwrap();
            std::fs::remove_file(dir.join("later")).unwrap();
        },
    )
    .await;
}

// ------------------------------------------------------------------------------------------------
// <blob> nesting and decompressed size
// ------------------------------------------------------------------------------------------------

fn lists(depth: usize) -> Item {
    let mut item = Item::from(1_i64);
    for _ in 0..depth {
        item = Item::List(vec![item]);
    }
    item
}

#[test]
fn blobs_nested_deeper_than_fetch_reads_are_refused_at_insert() {
    on_small_stacks(|| async {
        let dir = tempfile::tempdir().unwrap();
        each_backend(
            "blobdeep",
            dir.path(),
            |_| {},
            |label, s, store| async move {
                let t = s
                    .declare(
                        "Tree",
                        Tier::Manual,
                        &format!("tree_id : int32\n---\nshallow : <blob>\nstored : <blob@{store}>"),
                    )
                    .await
                    .unwrap();
                t.insert1(&row! {
                    "tree_id" => 1,
                    "shallow" => Value::domain(lists(MAX_DEPTH)),
                    "stored" => Value::domain(lists(MAX_DEPTH)),
                })
                .await
                .unwrap_or_else(|e| panic!("{label}/{store}: {e}"));
                let rows = t.query().fetch_rows().await.unwrap();
                for k in ["shallow", "stored"] {
                    let item = rows[0][k].as_domain::<Item>().unwrap();
                    assert_eq!(item.depth(), MAX_DEPTH, "{label}/{store}: {k}");
                }
                for depth in [MAX_DEPTH + 1, 10_000, 1_000_000] {
                    for (k, other) in [("shallow", "stored"), ("stored", "shallow")] {
                        let err = t
                            .insert1(&row! {
                                "tree_id" => 2,
                                k => Value::domain(lists(depth)),
                                other => Value::domain(Item::None),
                            })
                            .await
                            .unwrap_err()
                            .to_string();
                        assert!(
                            err.contains(k) && err.contains("256"),
                            "{label}/{store}: {depth}: {err}"
                        );
                    }
                }
                assert_eq!(t.len().await.unwrap(), 1);
            },
        )
        .await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_blobs_past_the_size_limit_are_refused_at_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let limit = |c: &mut Config| c.blob_max_decompressed_size = 1 << 20;
    each_backend("blobbomb", dir.path(), limit, |label, s, store| async move {
        let t = s
            .declare(
                "Frames",
                Tier::Manual,
                &format!(
                    "frame_id : int32\n---\nframes = null : <blob>\nstored = null : <blob@{store}>"
                ),
            )
            .await
            .unwrap();
        // 512 KiB and 2 MiB of zeros: both compress to a few KiB.
        let small = Item::from(vec![0.0f64; 64 * 1024]);
        let big = Item::from(vec![0.0f64; 256 * 1024]);
        t.insert(&[
            row! {"frame_id" => 1, "frames" => Value::domain(small.clone()), "stored" => Value::domain(small.clone())},
            row! {"frame_id" => 2, "frames" => Value::domain(big.clone()), "stored" => Value::Null},
            row! {"frame_id" => 3, "frames" => Value::Null, "stored" => Value::domain(big.clone())},
        ])
        .await
        .unwrap_or_else(|e| panic!("{label}/{store}: {e}"));
        let stored = t.restrict(row! {"frame_id" => 2}).fetch_stored().await.unwrap();
        let Value::Bytes(b) = &stored[0]["frames"] else {
            panic!("{label}: {:?}", stored[0]["frames"]);
        };
        assert!(b.starts_with(b"ZL123\0") && b.len() < 64 * 1024, "{label}");
        let rows = t.restrict(row! {"frame_id" => 1}).fetch_rows().await.unwrap();
        assert_eq!(rows[0]["frames"].as_domain::<Item>(), Some(&small));
        assert_eq!(rows[0]["stored"].as_domain::<Item>(), Some(&small));
        for (id, k) in [(2, "frames"), (3, "stored")] {
            // (No `unwrap_err`: on failure it would print two mebibytes of zeros.)
            let err = match t.restrict(row! {"frame_id" => id}).fetch_rows().await {
                Ok(_) => panic!("{label}/{store}: row {id} was fetched despite the limit"),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains("blob_max_decompressed_size") && err.contains(k),
                "{label}/{store}: {err}"
            );
        }
    })
    .await;
}
