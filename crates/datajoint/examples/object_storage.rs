//! The object-storage walkthrough on embedded defaults: a local file store under `./dj-demo/`.
//!
//! It follows DataJoint's "Use Object Storage" how-to for a `Recording` with
//! `metadata : <blob>` (in the table) and `raw_data : <blob@>` (in the default store): the values
//! go through the same codec chains an insert uses, the array lands in the store, hash-addressed
//! and deduplicated, and both come back equal. The table rows themselves arrive with the schema
//! layer; until then the example prints what each column would hold.
//!
//! Run it with `cargo run --example object_storage`.

use std::sync::Arc;

use datajoint::blob::{Array, ArrayData, Item};
use datajoint::dj_core::codec::{CodecContext, ResolvedType};
use datajoint::dj_core::config::{Config, StoreSpec};
use datajoint::{Registry, StoreSet, Value};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = std::env::current_dir()?.join("dj-demo");
    let store_dir = demo.join("store");
    std::fs::create_dir_all(&store_dir)?;

    // The configuration a datajoint.json with a default file store would give.
    let mut config = Config::default();
    config.stores.specs.insert(
        "main".into(),
        StoreSpec::new("main", "file", store_dir.to_string_lossy()),
    );
    config.stores.default = Some("main".into());
    let config = Arc::new(config);
    let stores = Arc::new(StoreSet::new(Arc::clone(&config)));

    println!("Recording: recording_id : uuid / metadata : <blob> / raw_data : <blob@>");
    let recording_id = uuid::Uuid::new_v4();
    let metadata = Item::Dict(vec![
        (Item::from("channels"), Item::from(32_i64)),
        (Item::from("rate"), Item::from(30_000_i64)),
    ]);
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

    for (field, spec, value) in [
        ("metadata", "<blob>", metadata),
        ("raw_data", "<blob@>", raw),
    ] {
        let ty = ResolvedType::resolve(&spec.parse()?, Registry::global(), &config)?;
        let mut cx = CodecContext::for_tests(Arc::clone(&config));
        cx.stores = Arc::clone(&stores);
        cx.schema = "demo".into();
        cx.table = "recording".into();
        cx.field = field.into();
        cx.key
            .insert("recording_id".into(), Value::Uuid(recording_id));

        let stored = ty.encode(Value::domain(value.clone()), &cx).await?;
        match (&ty.store, &stored) {
            (None, Value::Bytes(b)) => {
                println!(
                    "  {field:<9} {spec:<8} -> in the table: {} bytes of blob ({} column)",
                    b.len(),
                    ty.final_type
                );
            }
            (Some(store), Value::Json(meta)) => {
                println!(
                    "  {field:<9} {spec:<8} -> store `{store}`: {}",
                    meta["path"].as_str().unwrap_or("?")
                );
                println!("  {:<18}    the table keeps {meta}", "");
            }
            _ => println!("  {field:<9} {spec:<8} -> {stored:?}"),
        }
        let back = ty.decode(stored, &cx).await?;
        let equal = back.as_domain::<Item>() == Some(&value);
        println!("  {:<18}    fetched back equal: {equal}", "");
        if !equal {
            return Err(format!("{field} did not round-trip").into());
        }
    }
    println!("Objects are under {}", store_dir.display());
    Ok(())
}
