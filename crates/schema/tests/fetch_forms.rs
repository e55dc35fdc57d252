//! Fetch forms on SQLite, PostgreSQL and MariaDB: structs that carry only some attributes (and
//! never touch the codec columns they omit), `<blob>`/`<blob@>` values into plain Rust types
//! (`Vec<f64>`, `ndarray::ArrayD`, scalars), and Arrow and Polars frames both ways.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::sync::Arc;

use dj_codec_blob::{Item, decode, encode, to_item};
use dj_core::config::{Config, StoreSpec};
use dj_core::registry::StoreSet;
use dj_core::value::Value;
use dj_schema::{Connection, Row, Schema, Tier, row};
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use dj_codec_hash as _;
use dj_store_file as _;

/// Run `body` on every backend, with a file store `main` (the default store) under `dir`.
async fn each_backend_stored<F, Fut>(test: &str, dir: &Path, body: F)
where
    F: Fn(&'static str, Schema) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    std::fs::create_dir_all(dir).unwrap();
    for (label, mut config, _dir) in common::configs() {
        config.stores.specs.insert(
            "main".into(),
            StoreSpec::new("main", "file", dir.to_string_lossy()),
        );
        config.stores.default = Some("main".into());
        let config: Arc<Config> = Arc::new(config);
        let set = Arc::new(StoreSet::new(Arc::clone(&config)));
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

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[derive(Deserialize, Debug, PartialEq)]
struct Brief {
    session_id: i32,
    #[serde(rename = "label")]
    name: String,
    /// Not an attribute: serde's default applies.
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize, Debug)]
#[allow(dead_code)]
struct WithRaw {
    session_id: i32,
    raw: Vec<f64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_structs_never_touch_the_codec_columns_they_omit() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    each_backend_stored("partial", &store, |label, s| {
        let store = store.clone();
        async move {
            let t = s
                .declare(
                    "Session",
                    Tier::Manual,
                    "session_id : int32\n---\nlabel : varchar(32)\nduration : float64\n\
                     raw : <blob@>\nmeta : <blob>",
                )
                .await
                .unwrap();
            for i in 0..3 {
                t.insert1(&row! {
                    "session_id" => i,
                    "label" => format!("s{i}"),
                    "duration" => f64::from(i) * 1.5,
                    "raw" => Value::domain(Item::from(vec![f64::from(i); 2000])),
                    "meta" => Value::domain(Item::from(vec![1_i64, 2, 3])),
                })
                .await
                .unwrap();
            }
            // Every object of `raw` is gone from the store: decoding `raw` must fail.
            let objects = files_under(&store);
            assert!(!objects.is_empty(), "{label}");
            for f in objects {
                std::fs::remove_file(f).unwrap();
            }
            let err = t.fetch::<Row>().await.unwrap_err().to_string();
            assert!(err.contains("raw"), "{label}: {err}");
            let err = t.fetch::<WithRaw>().await.unwrap_err().to_string();
            assert!(err.contains("raw"), "{label}: {err}");

            // A struct without `raw` reads, and only its own columns.
            let got: Vec<Brief> = t.query().order_by(["session_id"]).fetch().await.unwrap();
            assert_eq!(
                got,
                (0..3)
                    .map(|i| Brief {
                        session_id: i,
                        name: format!("s{i}"),
                        note: None
                    })
                    .collect::<Vec<_>>(),
                "{label}"
            );
            let one: Brief = t.restrict(row! {"session_id" => 2}).fetch1().await.unwrap();
            assert_eq!(one.name, "s2", "{label}");
            assert_eq!(
                dj_schema::serde_row::wanted_fields::<Brief>(),
                Some(&["session_id", "label", "note"][..])
            );
            // An explicit attribute list wins over the struct's fields.
            let err = t
                .query()
                .attrs(["session_id", "raw"])
                .fetch::<Brief>()
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("raw"), "{label}: {err}");
        }
    })
    .await;
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Trace {
    trace_id: i32,
    samples: Vec<f64>,
    counts: Vec<i64>,
    stored: Vec<f64>,
    gains: Option<Vec<f32>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vec_f64_round_trips_through_blob_and_blob_at() {
    let dir = tempfile::tempdir().unwrap();
    each_backend_stored("vec_rt", &dir.path().join("store"), |label, s| async move {
        let t = s
            .declare(
                "Trace",
                Tier::Manual,
                "trace_id : int32\n---\nsamples : <blob>\ncounts : <blob>\nstored : <blob@>\n\
                 gains = null : <blob>",
            )
            .await
            .unwrap();
        let traces = vec![
            Trace {
                trace_id: 1,
                samples: vec![0.5, -1.25, 3.0],
                counts: vec![1, -2, 3],
                stored: (0..5000).map(|i| f64::from(i) * 0.25).collect(),
                gains: Some(vec![1.5, 2.0]),
            },
            Trace {
                trace_id: 2,
                samples: vec![],
                counts: vec![7],
                stored: vec![2.0],
                gains: None,
            },
        ];
        t.insert(&traces).await.unwrap();
        let back: Vec<Trace> = t.query().order_by(["trace_id"]).fetch().await.unwrap();
        assert_eq!(back, traces, "{label}");

        // What is written is what DataJoint writes for the same Python list.
        let stored = t
            .restrict(row! {"trace_id" => 1})
            .fetch_stored()
            .await
            .unwrap();
        let Value::Bytes(b) = &stored[0]["samples"] else {
            panic!("{label}: {:?}", stored[0]["samples"]);
        };
        assert_eq!(
            b.as_ref(),
            encode(&to_item(&traces[0].samples).unwrap()).unwrap(),
            "{label}"
        );
        // Python's blob.pack([0.5, -1.25, 3.0]) in DataJoint 2.3.5.
        assert_eq!(decode(b).unwrap(), to_item(&vec![0.5, -1.25, 3.0]).unwrap());
    })
    .await;
}

#[derive(Deserialize, Debug)]
struct Arrays {
    vector: Vec<f64>,
    ints: Vec<i32>,
    matrix: ArrayD<f64>,
    flat: Vec<f64>,
    scalar: f64,
    flags: Vec<bool>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numpy_arrays_read_into_vectors_ndarray_and_scalars() {
    let dir = tempfile::tempdir().unwrap();
    each_backend_stored("arrays", &dir.path().join("store"), |label, s| async move {
        let t = s
            .declare(
                "Arr",
                Tier::Manual,
                "arr_id : int32\n---\nvector : <blob@>\nints : <blob>\nmatrix : <blob>\n\
                 flat : <blob>\nscalar : <blob>\nflags : <blob>",
            )
            .await
            .unwrap();
        // A 2x3 matrix, as numpy would hand it over: [[1, 2, 3], [4, 5, 6]].
        let m = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let one = ArrayD::from_shape_vec(IxDyn(&[1, 1]), vec![42.5]).unwrap();
        t.insert1(&row! {
            "arr_id" => 1,
            "vector" => Value::domain(Item::from(vec![1.0, 2.0, 3.5])),
            "ints" => Value::domain(Item::from(vec![4_i32, -5])),
            "matrix" => Value::domain(Item::from(m.clone())),
            "flat" => Value::domain(Item::from(m.clone())),
            "scalar" => Value::domain(Item::from(one)),
            "flags" => Value::domain(Item::Array(
                dj_codec_blob::Array::new(vec![2], dj_codec_blob::ArrayData::Bool(vec![1, 0])).unwrap(),
            )),
        })
        .await
        .unwrap();
        let a: Arrays = t.fetch1().await.unwrap();
        assert_eq!(a.vector, [1.0, 2.0, 3.5], "{label}");
        assert_eq!(a.ints, [4, -5], "{label}");
        assert_eq!(a.matrix, m, "{label}");
        assert_eq!(a.matrix[IxDyn(&[1, 0])], 4.0, "{label}");
        // A matrix into a flat vector: the stored (column-major) order, as numpy's ravel('F').
        assert_eq!(a.flat, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0], "{label}");
        assert_eq!(a.scalar, 42.5, "{label}");
        assert_eq!(a.flags, [true, false], "{label}");

        // The element type must match: float64 does not read as integers.
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Wrong {
            vector: Vec<i32>,
        }
        let err = t.fetch1::<Wrong>().await.unwrap_err().to_string();
        assert!(err.contains("vector") || err.contains("invalid type"), "{label}: {err}");
    })
    .await;
}
