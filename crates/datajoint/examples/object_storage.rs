//! The object-storage walkthrough on embedded defaults: SQLite and a local file store, both under
//! `./dj-demo/`.
//!
//! It plays DataJoint's "Use Object Storage" how-to. A `datajoint.json` names a default `file`
//! store; the schema `demo` gets a `Recording` table with `metadata : <blob>` (in the table) and
//! `raw_data : <blob@>` (in the default store, hash-addressed and deduplicated). One row with a
//! 32 x 30000 float64 array is inserted, fetched back, and the example prints where each attribute
//! went: the SQL column, and for the stored one the object's path and size in the store.
//!
//! Then a `Scan` table shows the path-addressed codecs: `frames : <object@>`, a folder written in
//! place through a staged insert, and `trace : <npy@>`, a `.npy` array; the fetched row holds lazy
//! references, from which the example reads one file of the folder and two rows of the array.
//!
//! Run it with `cargo run --example object_storage`. Running it again adds another recording
//! with the same array, which the store deduplicates: both rows point at one object (and another
//! scan, at its own paths). Delete `./dj-demo/` to start over.

use datajoint::blob::{Array, ArrayData, Item};
use datajoint::npy::{DType, NpyArray, NpyRef};
use datajoint::schema::{Connection, Restriction, Row, Tier, row};
use datajoint::{Config, ObjectRef, Value};

const DEFINITION: &str = "
# a recording, with its raw data in object storage
recording_id : uuid
---
metadata : <blob>           # internal: stored in the database
raw_data : <blob@>          # object storage: stored in the default store
";

const SCAN: &str = "
# an imaging scan, with its large data at readable per-row paths
scan_id : uuid
---
frames : <object@>          # a folder of files, written in place by a staged insert
trace : <npy@>              # a .npy array (numpy reads it as is), read lazily in slices
";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = std::env::current_dir()?.join("dj-demo");
    std::fs::create_dir_all(demo.join("store"))?;
    let config_file = demo.join("datajoint.json");
    if !config_file.exists() {
        // The embedded defaults: no database settings means SQLite beside this file.
        std::fs::write(
            &config_file,
            r#"{
  "stores": {
    "default": "main",
    "main": {"protocol": "file", "location": "store"}
  }
}
"#,
        )?;
    }
    let config = Config::from_file(&config_file)?;
    println!(
        "config {}: database {} ({}), default store `main` at {}",
        config_file.display(),
        config.database.backend.as_str(),
        config.database.sqlite_path().display(),
        config.stores.get("main")?.location
    );

    let conn = Connection::open(&config).await?;
    let demo_schema = conn.schema("demo").await?;
    let recording = demo_schema
        .declare("Recording", Tier::Manual, DEFINITION)
        .await?;
    println!("\n{}", recording.describe());

    // 32 x 30000 float64 (~7.3 MiB), a deterministic stand-in for np.random.randn(32, 30000).
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let samples: Vec<f64> = (0..32 * 30_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    let raw = Item::Array(Array::new(vec![32, 30_000], ArrayData::F64(samples))?);
    let metadata = Item::Dict(vec![
        (Item::from("channels"), Item::from(32_i64)),
        (Item::from("rate"), Item::from(30_000_i64)),
    ]);

    let recording_id = uuid::Uuid::new_v4();
    recording
        .insert1(&row! {
            "recording_id" => recording_id,
            "metadata" => Value::domain(metadata.clone()),
            "raw_data" => Value::domain(raw.clone()),
        })
        .await?;
    println!("inserted recording {recording_id}");

    // Fetch works the same wherever the value lives.
    let key = row! { "recording_id" => recording_id };
    let query = recording.restrict(Restriction::Key(key));
    let fetched: Row = query.fetch1().await?;
    for (field, want) in [("metadata", &metadata), ("raw_data", &raw)] {
        let got = fetched.get(field).and_then(|v| v.as_domain::<Item>());
        if got != Some(want) {
            return Err(format!("`{field}` did not come back equal").into());
        }
    }
    println!("fetched back: metadata and raw_data equal what was inserted\n");

    // Where each attribute went: the stored (undecoded) row.
    let stored: Row = query
        .fetch_stored()
        .await?
        .into_iter()
        .next()
        .ok_or("the recording is missing")?;
    for attr in recording
        .heading()
        .attributes
        .iter()
        .filter(|a| !a.is_hidden())
    {
        let place = match stored.get(&attr.name) {
            Some(Value::Bytes(b)) => format!("in the table, {} bytes", b.len()),
            Some(Value::Json(meta)) => format!(
                "store `{}`, {} ({} bytes); the table keeps {meta}",
                meta["store"].as_str().unwrap_or("?"),
                meta["path"].as_str().unwrap_or("?"),
                meta["size"]
            ),
            Some(Value::Uuid(u)) => format!("in the table: {u}"),
            Some(v) => format!("in the table: {v:?}"),
            None => "not fetched".into(),
        };
        println!(
            "  {:<13} {:<12} {:<6} -> {place}",
            attr.name,
            attr.spec.to_string(),
            attr.sql_type
        );
    }
    println!(
        "\n{} recording(s) in `demo`.`recording`",
        recording.len().await?
    );

    // Path-addressed: a folder written in place, and a .npy array.
    let scan = demo_schema.declare("Scan", Tier::Manual, SCAN).await?;
    let scan_id = uuid::Uuid::new_v4();
    let trace: Vec<u8> = (0..1000 * 4)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let mut staged = scan.staged_insert1(row! { "scan_id" => scan_id })?;
    let frames = staged.folder("frames", None)?;
    for i in 0..3 {
        frames
            .put(&format!("frame_{i:03}.raw"), vec![i as u8; 4096].into())
            .await?;
    }
    staged.set(
        "trace",
        Value::domain(NpyArray::new(DType::Float32, vec![1000, 4], false, trace)?),
    );
    staged.commit().await?;
    let row: Row = scan
        .restrict(Restriction::Key(row! { "scan_id" => scan_id }))
        .fetch1()
        .await?;
    let frames = row["frames"]
        .as_domain::<ObjectRef>()
        .ok_or("frames is not an ObjectRef")?;
    let trace = row["trace"]
        .as_domain::<NpyRef>()
        .ok_or("trace is not an NpyRef")?;
    println!(
        "\nscan {scan_id}:\n  frames        <object@>    -> store `{}`, folder {} ({} files, {} bytes, checksummed)",
        frames.store_name(),
        frames.path(),
        frames.metadata().item_count.unwrap_or(0),
        frames.size().unwrap_or(0),
    );
    println!(
        "  trace         <npy@>       -> store `{}`, {} ({:?} {}, no I/O until read)",
        trace.store().unwrap_or("?"),
        trace.path(),
        trace.shape(),
        trace.dtype(),
    );
    let first = frames.child("frame_001.raw")?.read().await?;
    let rows = trace.slice_rows::<f32>(10..12).await?;
    frames.verify().await?;
    println!(
        "  read lazily: frame_001.raw ({} bytes), trace rows 10..12 = {:?}",
        first.len(),
        rows.iter().collect::<Vec<_>>()
    );
    conn.close().await;
    Ok(())
}
