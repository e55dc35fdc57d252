//! Fetch forms on SQLite, PostgreSQL and MariaDB: structs that carry only some attributes (and
//! never touch the codec columns they omit), `<blob>`/`<blob@>` values into plain Rust types
//! (`Vec<f64>`, `ndarray::ArrayD`, scalars), and Arrow and Polars frames both ways.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::sync::Arc;

use dj_codec_blob::{Item, decode, encode, to_item};
use dj_config::{Config, StoreSpec};
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
        let set = Arc::new(StoreSet::new(config.core()));
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
            let objects = common::files_under(&store);
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

/// NaN and infinities in a serde `Vec<f64>` reach the blob as floats, never as `None` (JSON,
/// the path other composite values take, cannot hold them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vec_f64_with_nan_and_infinity_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    each_backend_stored(
        "vec_nan",
        &dir.path().join("store"),
        |label, s| async move {
            let t = s
                .declare(
                    "Trace",
                    Tier::Manual,
                    "trace_id : int32\n---\nsamples : <blob>\ncounts : <blob>\nstored : <blob@>\n\
                 gains = null : <blob>",
                )
                .await
                .unwrap();
            let trace = Trace {
                trace_id: 1,
                samples: vec![1.0, f64::NAN, f64::INFINITY, -2.5],
                counts: vec![3],
                stored: vec![f64::NEG_INFINITY, f64::NAN],
                gains: Some(vec![f32::NAN]),
            };
            t.insert1(&trace).await.unwrap();
            let back: Trace = t.query().fetch1().await.unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&back.samples), bits(&trace.samples), "{label}");
            assert_eq!(bits(&back.stored), bits(&trace.stored), "{label}");
            assert!(back.gains.unwrap()[0].is_nan(), "{label}");
            // The bytes are DataJoint's for the Python list [1.0, nan, inf, -2.5].
            let stored = t.query().fetch_stored().await.unwrap();
            let Value::Bytes(b) = &stored[0]["samples"] else {
                panic!("{label}: {:?}", stored[0]["samples"]);
            };
            assert_eq!(
                b.as_ref(),
                encode(&to_item(&trace.samples).unwrap()).unwrap(),
                "{label}"
            );
            // A `json` attribute refuses NaN instead of storing `null`.
            let j = s
                .declare("Doc", Tier::Manual, "doc_id : int32\n---\nbody : json")
                .await
                .unwrap();
            #[derive(Serialize)]
            struct Doc {
                doc_id: i32,
                body: Vec<f64>,
            }
            let err = j
                .insert1(&Doc {
                    doc_id: 1,
                    body: vec![f64::NAN],
                })
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("body"), "{label}: {err}");
            assert!(j.query().is_empty().await.unwrap(), "{label}");
        },
    )
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

#[cfg(any(feature = "arrow", feature = "polars"))]
const TYPED: &str = "item_id : int32\n---\nsmall : int8\ncount : int16\nratio : float32\n\
     value : float64\nflag : bool\nname : varchar(16)\nkind : enum('a', 'b')\n\
     price : decimal(8, 2)\nday : date\nmoment : datetime\nuid : uuid\ndoc : json\n\
     raw : bytes\nvec : <blob>\nmat : <blob@>\nmisc : <blob>\nopt = null : float64";

#[cfg(any(feature = "arrow", feature = "polars"))]
async fn fill_typed(t: &dj_schema::Table) {
    use dj_codec_blob::PyInt;
    for i in 0..3_i32 {
        let m = ArrayD::from_shape_fn(IxDyn(&[2, 3]), |ix| {
            (ix[0] * 10 + ix[1]) as f64 + f64::from(i)
        });
        t.insert1(&row! {
            "item_id" => i,
            "small" => -i,
            "count" => 1000 + i,
            "ratio" => 0.5 * f64::from(i),
            "value" => 1e10 + f64::from(i),
            "flag" => i % 2 == 0,
            "name" => format!("n{i}"),
            "kind" => if i == 0 { "a" } else { "b" },
            "price" => Value::Decimal(format!("{i}2.50")),
            "day" => Value::Date(chrono::NaiveDate::from_ymd_opt(2024, 1, 1 + i as u32).unwrap()),
            "moment" => Value::DateTime(
                chrono::NaiveDate::from_ymd_opt(2024, 5, 6).unwrap().and_hms_opt(7, 8, i as u32).unwrap(),
            ),
            "uid" => Value::Uuid(uuid::Uuid::from_u128(0x1234_5678 + i as u128)),
            "doc" => Value::Json(serde_json::json!({"i": i, "tags": ["x"]})),
            "raw" => Value::Bytes(vec![i as u8; 3].into()),
            "vec" => Value::domain(Item::from(vec![0.5; i as usize + 1])),
            "mat" => Value::domain(Item::from(m)),
            "misc" => Value::domain(Item::Dict(vec![(Item::from("k"), Item::Int(PyInt::from(i64::from(i))))])),
            "opt" => if i == 1 { Value::Null } else { Value::Float(f64::from(i)) },
        })
        .await
        .unwrap();
    }
}

#[cfg(feature = "arrow")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrow_batches_have_native_types_and_insert_back() {
    use dj_schema::arrow::arrow_array::cast::AsArray;
    use dj_schema::arrow::arrow_array::types::*;
    use dj_schema::arrow::arrow_schema::{DataType, TimeUnit};
    let dir = tempfile::tempdir().unwrap();
    each_backend_stored("arrow", &dir.path().join("store"), |label, s| async move {
        let t = s.declare("Typed", Tier::Manual, TYPED).await.unwrap();
        fill_typed(&t).await;
        let batch = t.query().order_by(["item_id"]).to_arrow().await.unwrap();
        assert_eq!(batch.num_rows(), 3, "{label}");
        let schema = batch.schema();
        let ty = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
        let ext = |n: &str| {
            schema
                .field_with_name(n)
                .unwrap()
                .metadata()
                .get("ARROW:extension:name")
                .cloned()
        };
        assert_eq!(ty("item_id"), DataType::Int32, "{label}");
        assert_eq!(ty("small"), DataType::Int8, "{label}");
        assert_eq!(ty("count"), DataType::Int16, "{label}");
        assert_eq!(ty("ratio"), DataType::Float32, "{label}");
        assert_eq!(ty("value"), DataType::Float64, "{label}");
        assert_eq!(ty("flag"), DataType::Boolean, "{label}");
        assert_eq!(ty("name"), DataType::Utf8, "{label}");
        assert_eq!(ty("kind"), DataType::Utf8, "{label}");
        assert_eq!(ty("price"), DataType::Decimal128(8, 2), "{label}");
        assert_eq!(ty("day"), DataType::Date32, "{label}");
        assert_eq!(ty("moment"), DataType::Timestamp(TimeUnit::Microsecond, None), "{label}");
        assert_eq!(ty("uid"), DataType::FixedSizeBinary(16), "{label}");
        assert_eq!(ext("uid").as_deref(), Some("arrow.uuid"), "{label}");
        assert_eq!(ty("doc"), DataType::Utf8, "{label}");
        assert_eq!(ext("doc").as_deref(), Some("arrow.json"), "{label}");
        assert_eq!(ty("raw"), DataType::Binary, "{label}");
        assert!(matches!(ty("vec"), DataType::List(f) if f.data_type() == &DataType::Float64), "{label}");
        assert!(
            matches!(ty("mat"), DataType::FixedSizeList(f, 6) if f.data_type() == &DataType::Float64),
            "{label}: {:?}", ty("mat")
        );
        assert_eq!(ext("mat").as_deref(), Some("arrow.fixed_shape_tensor"), "{label}");
        assert_eq!(ty("misc"), DataType::Binary, "{label}");
        assert_eq!(ext("misc").as_deref(), Some("datajoint.blob"), "{label}");
        assert_eq!(ty("opt"), DataType::Float64, "{label}");

        // Values.
        let col = |n: &str| batch.column_by_name(n).unwrap().clone();
        assert_eq!(col("small").as_primitive::<Int8Type>().values(), &[0, -1, -2], "{label}");
        assert_eq!(col("count").as_primitive::<Int16Type>().value(2), 1002, "{label}");
        assert_eq!(col("price").as_primitive::<Decimal128Type>().value(1), 1250, "{label}");
        assert!(!col("flag").as_boolean().value(1), "{label}");
        assert_eq!(col("name").as_string::<i32>().value(2), "n2", "{label}");
        let day = col("day");
        assert_eq!(day.as_primitive::<Date32Type>().value(0), 19723, "{label}"); // 2024-01-01
        let moment = col("moment");
        assert_eq!(
            moment.as_primitive::<TimestampMicrosecondType>().value(2),
            1_714_979_282_000_000,
            "{label}"
        ); // 2024-05-06T07:08:02
        assert_eq!(
            col("uid").as_fixed_size_binary().value(1),
            uuid::Uuid::from_u128(0x1234_5679).as_bytes(),
            "{label}"
        );
        let doc: serde_json::Value =
            serde_json::from_str(col("doc").as_string::<i32>().value(2)).unwrap();
        assert_eq!(doc, serde_json::json!({"i": 2, "tags": ["x"]}), "{label}");
        let vec = col("vec");
        let vec = vec.as_list::<i32>();
        assert_eq!(vec.value(2).as_primitive::<Float64Type>().values(), &[0.5, 0.5, 0.5], "{label}");
        // Row-major, as numpy shows [[0, 1, 2], [10, 11, 12]] (+ the row number).
        let mat = col("mat");
        assert_eq!(
            mat.as_fixed_size_list().value(1).as_primitive::<Float64Type>().values(),
            &[1.0, 2.0, 3.0, 11.0, 12.0, 13.0],
            "{label}"
        );
        assert_eq!(
            dj_codec_blob::decode(col("misc").as_binary::<i32>().value(2)).unwrap(),
            Item::Dict(vec![(Item::from("k"), Item::from(2_i64))]),
            "{label}"
        );
        assert!(col("opt").is_null(1), "{label}");

        // Insert the batch into a twin table: the same batch comes back.
        let twin = s.declare("Twin", Tier::Manual, TYPED).await.unwrap();
        assert_eq!(twin.insert_arrow(&batch).await.unwrap(), 3, "{label}");
        let again = twin.query().order_by(["item_id"]).to_arrow().await.unwrap();
        assert_eq!(again, batch, "{label}");
        let m: ArrayD<f64> = {
            #[derive(Deserialize)]
            struct M {
                mat: ArrayD<f64>,
            }
            twin.restrict(row! {"item_id" => 1}).fetch1::<M>().await.unwrap().mat
        };
        assert_eq!(m[IxDyn(&[1, 2])], 13.0, "{label}");

        assert_eq!(t.to_arrow().await.unwrap().num_rows(), 3, "{label}");
        // A projection: only the attributes asked for, and no download of the others.
        let part = t.query().attrs(["item_id", "name"]).to_arrow().await.unwrap();
        assert_eq!(part.num_columns(), 2, "{label}");

        // Bad input names the attribute.
        let err = twin.insert_arrow(&part.project(&[0]).unwrap()).await.unwrap_err().to_string();
        assert!(err.contains("small") || err.contains("required"), "{label}: {err}");
    })
    .await;
}

#[cfg(feature = "polars")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polars_frames_have_native_types_and_insert_back() {
    use dj_schema::polars::polars_core::prelude::{DataType, TimeUnit};
    let dir = tempfile::tempdir().unwrap();
    each_backend_stored("polars", &dir.path().join("store"), |label, s| async move {
        let t = s.declare("Typed", Tier::Manual, TYPED).await.unwrap();
        fill_typed(&t).await;
        let df = t.query().order_by(["item_id"]).to_polars().await.unwrap();
        assert_eq!(df.height(), 3, "{label}");
        let ty = |n: &str| df.column(n).unwrap().dtype().clone();
        assert_eq!(ty("item_id"), DataType::Int32, "{label}");
        assert_eq!(ty("small"), DataType::Int8, "{label}");
        assert_eq!(ty("count"), DataType::Int16, "{label}");
        assert_eq!(ty("ratio"), DataType::Float32, "{label}");
        assert_eq!(ty("flag"), DataType::Boolean, "{label}");
        assert_eq!(ty("name"), DataType::String, "{label}");
        assert_eq!(ty("price"), DataType::Decimal(8, 2), "{label}");
        assert_eq!(ty("day"), DataType::Date, "{label}");
        assert_eq!(
            ty("moment"),
            DataType::Datetime(TimeUnit::Microseconds, None),
            "{label}"
        );
        assert_eq!(ty("uid"), DataType::String, "{label}");
        assert_eq!(ty("doc"), DataType::String, "{label}");
        assert_eq!(ty("raw"), DataType::Binary, "{label}");
        assert_eq!(
            ty("vec"),
            DataType::List(Box::new(DataType::Float64)),
            "{label}"
        );
        assert_eq!(
            ty("mat"),
            DataType::List(Box::new(DataType::Float64)),
            "{label}"
        );
        assert_eq!(ty("misc"), DataType::Binary, "{label}");
        let c = |n: &str| df.column(n).unwrap().as_materialized_series().clone();
        assert_eq!(c("small").i8().unwrap().get(2), Some(-2), "{label}");
        assert_eq!(c("name").str().unwrap().get(1), Some("n1"), "{label}");
        assert_eq!(
            c("uid").str().unwrap().get(0),
            Some(
                uuid::Uuid::from_u128(0x1234_5678)
                    .hyphenated()
                    .to_string()
                    .as_str()
            ),
            "{label}"
        );
        let mat = c("mat").list().unwrap().get_as_series(2).unwrap();
        let mat: Vec<f64> = mat.f64().unwrap().iter().flatten().collect();
        assert_eq!(mat, [2.0, 3.0, 4.0, 12.0, 13.0, 14.0], "{label}");
        assert_eq!(c("opt").f64().unwrap().get(1), None, "{label}");

        assert_eq!(t.to_polars().await.unwrap().height(), 3, "{label}");
        let twin = s.declare("Twin", Tier::Manual, TYPED).await.unwrap();
        assert_eq!(twin.insert_polars(&df).await.unwrap(), 3, "{label}");
        let again = twin
            .query()
            .order_by(["item_id"])
            .to_polars()
            .await
            .unwrap();
        assert!(again.equals_missing(&df), "{label}: {again:?} vs {df:?}");
    })
    .await;
}

#[derive(Deserialize, Debug, PartialEq)]
struct SessionOfSubject {
    subject_id: i32,
    session_id: i32,
    species: String,
    duration: f64,
}

/// Derived queries (joins, projections, aggregates): structs still read only their fields, and
/// computed attributes take the type of their values in frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_queries_into_structs_streams_and_frames() {
    use futures::TryStreamExt;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    each_backend_stored("derived", &store, |label, s| {
        let store = store.clone();
        async move {
            let subject = s
                .declare(
                    "Subject",
                    Tier::Manual,
                    "subject_id : int32\n---\nspecies : varchar(16)",
                )
                .await
                .unwrap();
            let session = s
                .declare(
                    "Session",
                    Tier::Manual,
                    "-> Subject\nsession_id : int32\n---\nduration : float64\nraw : <blob@>",
                )
                .await
                .unwrap();
            subject
                .insert1(&row! {"subject_id" => 1, "species" => "mouse"})
                .await
                .unwrap();
            subject
                .insert1(&row! {"subject_id" => 2, "species" => "rat"})
                .await
                .unwrap();
            for (sub, ses, d) in [(1, 1, 10.0), (1, 2, 20.0), (2, 1, 5.0)] {
                session
                    .insert1(&row! {
                        "subject_id" => sub, "session_id" => ses, "duration" => d,
                        "raw" => Value::domain(Item::from(vec![d; 100])),
                    })
                    .await
                    .unwrap();
            }
            for f in common::files_under(&store) {
                std::fs::remove_file(f).unwrap();
            }
            let joined = subject.query().join(&session);
            let mut got: Vec<SessionOfSubject> = joined.fetch().await.unwrap();
            got.sort_by_key(|r| (r.subject_id, r.session_id));
            assert_eq!(got.len(), 3, "{label}");
            assert_eq!(got[2].species, "rat", "{label}");
            let mut streamed: Vec<SessionOfSubject> = joined.stream().try_collect().await.unwrap();
            streamed.sort_by_key(|r| (r.subject_id, r.session_id));
            assert_eq!(streamed, got, "{label}");
            // A Row reads everything, and the missing objects are an error.
            assert!(joined.fetch::<Row>().await.is_err(), "{label}");

            #[cfg(feature = "arrow")]
            {
                use dj_schema::arrow::arrow_array::cast::AsArray;
                use dj_schema::arrow::arrow_array::types::{Float64Type, Int64Type};
                use dj_schema::arrow::arrow_schema::DataType;
                let agg = subject
                    .query()
                    .aggr(&session, ["count(*) -> n", "sum(duration) * 2 -> twice"])
                    .order_by(["subject_id"]);
                let batch = agg.to_arrow().await.unwrap();
                let schema = batch.schema();
                assert_eq!(
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>(),
                    ["subject_id", "n", "twice"],
                    "{label}"
                );
                assert_eq!(schema.field(0).data_type(), &DataType::Int32, "{label}");
                assert_eq!(schema.field(1).data_type(), &DataType::Int64, "{label}");
                let n = batch.column(1).as_primitive::<Int64Type>();
                assert_eq!(n.values(), &[2, 1], "{label}");
                let twice: Vec<f64> = match schema.field(2).data_type() {
                    DataType::Float64 => batch
                        .column(2)
                        .as_primitive::<Float64Type>()
                        .values()
                        .to_vec(),
                    other => panic!("{label}: sum of float64 as {other}"),
                };
                assert_eq!(twice, [60.0, 10.0], "{label}");
                // A join without the blob column: no download, a frame of the joined heading.
                let frame = joined.proj(["duration"]).to_arrow().await.unwrap();
                assert_eq!(frame.num_rows(), 3, "{label}");
                assert_eq!(frame.num_columns(), 3, "{label}");
            }
        }
    })
    .await;
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Image {
    image_id: i32,
    pixels: ArrayD<f64>,
    stored: ArrayD<f64>,
    labels: ArrayD<i64>,
}

/// An `ndarray` field is written as the numpy array DataJoint writes for the same array (not as
/// ndarray's serde dict), and reads back into the same struct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndarray_fields_round_trip_as_numpy_arrays() {
    let dir = tempfile::tempdir().unwrap();
    each_backend_stored(
        "ndarray",
        &dir.path().join("store"),
        |label, s| async move {
            let t = s
                .declare(
                    "Image",
                    Tier::Manual,
                    "image_id : int32\n---\npixels : <blob>\nstored : <blob@>\nlabels : <blob>\n\
                 meta = null : json",
                )
                .await
                .unwrap();
            let pixels =
                ArrayD::from_shape_fn(IxDyn(&[2, 3]), |ix| (ix[0] * 3 + ix[1]) as f64 * 0.5);
            let image = Image {
                image_id: 1,
                pixels: pixels.clone(),
                stored: ArrayD::from_shape_fn(IxDyn(&[4, 2, 3]), |ix| {
                    (ix[0] + ix[1] * 10 + ix[2] * 100) as f64
                }),
                labels: ArrayD::from_shape_vec(IxDyn(&[3]), vec![7, -8, 9]).unwrap(),
            };
            t.insert1(&image).await.unwrap();
            assert_eq!(t.fetch1::<Image>().await.unwrap(), image, "{label}");
            let stored = t.query().fetch_stored().await.unwrap();
            let Value::Bytes(b) = &stored[0]["pixels"] else {
                panic!("{label}: {:?}", stored[0]["pixels"]);
            };
            // The blob numpy.array([[0, .5, 1], [1.5, 2, 2.5]]) packs to: a 2x3 float64 array.
            assert_eq!(decode(b.as_ref()).unwrap(), Item::from(pixels), "{label}");
            // A `json` attribute keeps ndarray's document as it is.
            #[derive(Serialize)]
            struct Meta {
                image_id: i32,
                pixels: ArrayD<f64>,
                stored: ArrayD<f64>,
                labels: ArrayD<i64>,
                meta: ArrayD<i64>,
            }
            t.insert1(&Meta {
                image_id: 2,
                pixels: image.pixels.clone(),
                stored: image.stored.clone(),
                labels: image.labels.clone(),
                meta: image.labels.clone(),
            })
            .await
            .unwrap();
            let row = t
                .restrict(row! {"image_id" => 2})
                .fetch1::<Row>()
                .await
                .unwrap();
            assert_eq!(
                row["meta"],
                Value::Json(serde_json::json!({"v": 1, "dim": [3], "data": [7, -8, 9]})),
                "{label}"
            );
        },
    )
    .await;
}
