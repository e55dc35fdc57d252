//! An application that uses a third-party codec: `<spike_train>` from `dj-codec-spike-train`.
//!
//! Of dj-rs it depends only on the `datajoint` facade and the codec crate (plus tokio, the
//! runtime). On SQLite and a local file store, both in a temporary directory, it declares
//!
//! ```text
//! Unit { unit_id : int32 --- train : <spike_train>  train_ext = null : <spike_train@> }
//! ```
//!
//! inserts three units, fetches them back equal, deletes one, and garbage-collects the store:
//! the live objects survive and the deleted unit's object is reclaimed. Run it with
//! `cargo run -p spike-train-user`.

use std::error::Error;
use std::path::PathBuf;
use std::time::Duration;

use datajoint::schema::lifecycle::{Gc, GcOptions, Verify};
use datajoint::schema::{Connection, Row, Tier, row};
use datajoint::{Config, Registry, ResolvedType, StoreExt, StorePath, StoreSpec, Value};
use dj_codec_spike_train::SpikeTrain;

// `inventory` registers only linked crates. Using `SpikeTrain` below links this one; the line
// says so explicitly, and keeps it linked should the code stop naming the crate.
use dj_codec_spike_train as _;

const DEFINITION: &str = "
# a sorted unit and its spike train
unit_id : int32
---
train : <spike_train>                # in the table, as a DataJoint blob
train_ext = null : <spike_train@>    # in the default store, hash-addressed
";

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("spike-train-user-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("store"))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A deterministic spike train: `n` spikes at jittered intervals.
fn spike_train(unit_id: u32, n: u32) -> SpikeTrain {
    let mut t = 0.0;
    let times = (0..n)
        .map(|i| {
            t += 0.005 + f64::from((i * 7919 + unit_id * 104_729) % 97) * 0.001;
            t
        })
        .collect();
    SpikeTrain::new(unit_id, 30_000.0, times)
}

fn train_of<'r>(row: &'r Row, attr: &str) -> Option<&'r SpikeTrain> {
    row.get(attr).and_then(Value::as_domain::<SpikeTrain>)
}

/// The store path a row's stored (undecoded) `train_ext` refers to, found as garbage collection
/// finds it: through the attribute's resolved codec chain.
fn object_path(ty: &ResolvedType, stored: &Row) -> Result<String, Box<dyn Error>> {
    let value = stored.get("train_ext").ok_or("train_ext was not fetched")?;
    match ty.referenced_paths(value).as_slice() {
        [one] => Ok(one.path.clone()),
        other => Err(format!("train_ext refers to {other:?}").into()),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    // Every plugin the facade links, and ours, is registered.
    datajoint::check_registry()?;
    Registry::global().codec("spike_train")?;

    let scratch = Scratch::new()?;
    let mut config = Config::default();
    config.database.path = Some(scratch.0.join("lab.sqlite"));
    let store_root = scratch.0.join("store");
    config.stores.specs.insert(
        "main".into(),
        StoreSpec::new("main", "file", store_root.to_string_lossy()),
    );
    config.stores.default = Some("main".into());

    let conn = Connection::open(&config).await?;
    let schema = conn.schema("spikes").await?;
    let unit = schema.declare("Unit", Tier::Manual, DEFINITION).await?;
    println!("declared {}", unit.full_name());
    for attr in unit.heading().attributes.iter().filter(|a| !a.is_hidden()) {
        println!(
            "  {:<10} {:<19} {}",
            attr.name,
            attr.spec.to_string(),
            attr.sql_type
        );
    }

    let trains: Vec<SpikeTrain> = (1..=3).map(|u| spike_train(u, 200 * u)).collect();
    let rows: Vec<Row> = trains
        .iter()
        .map(|t| {
            row! {
                "unit_id" => i64::from(t.unit_id),
                "train" => t.clone(),
                "train_ext" => t.clone(),
            }
        })
        .collect();
    unit.insert(&rows).await?;

    let fetched: Vec<Row> = unit.query().order_by(["unit_id"]).fetch().await?;
    for (row, want) in fetched.iter().zip(&trains) {
        if train_of(row, "train") != Some(want) || train_of(row, "train_ext") != Some(want) {
            return Err(format!("unit {} did not come back equal", want.unit_id).into());
        }
    }
    println!(
        "inserted and fetched back {} units equal ({} spikes in all)",
        fetched.len(),
        trains.iter().map(|t| t.spike_times.len()).sum::<usize>()
    );

    let ext = unit
        .heading()
        .attributes
        .iter()
        .find(|a| a.name == "train_ext")
        .ok_or("no train_ext")?;
    let ty = ResolvedType::resolve(&ext.spec, Registry::global(), &config)?;
    let chain: Vec<&str> = ty.chain.iter().map(|c| c.name()).collect();
    println!(
        "train_ext resolves to {} -> {}",
        chain.join(" -> "),
        ty.final_type
    );
    let stored = unit.query().order_by(["unit_id"]).fetch_stored().await?;
    let paths = stored
        .iter()
        .map(|r| object_path(&ty, r))
        .collect::<Result<Vec<_>, _>>()?;
    let store = conn.stores().get("main")?;
    for p in &paths {
        let meta = store.head(&StorePath::parse(p)?).await?;
        println!("  object {p} ({} bytes)", meta.size);
    }

    let deleted = unit.restrict(row! { "unit_id" => 2 }).delete().await?;
    println!("deleted {deleted} unit (unit_id = 2); its object stays until GC");

    let gc = || Gc::new(&conn, "main").schemas([schema.name()]);
    let dry = gc().run().await?;
    println!(
        "gc dry run, 24 h grace: {} referenced, {} orphaned, {} too young to delete",
        dry.hash.referenced, dry.hash.orphaned, dry.hash.skipped_young
    );
    let options = GcOptions::grace(Duration::ZERO)
        .allow_zero_grace(true)
        .dry_run(false);
    let real = gc().options(options).run().await?;
    println!(
        "gc, zero grace: deleted {} object ({} bytes), {} referenced kept",
        real.deleted(),
        real.bytes_freed(),
        real.hash.referenced
    );

    for (p, live) in paths.iter().zip([true, false, true]) {
        let exists = store.exists(&StorePath::parse(p)?).await?;
        if exists != live {
            return Err(format!("{p}: expected exists = {live}, found {exists}").into());
        }
        println!("  {} {p}", if exists { "kept     " } else { "reclaimed" });
    }
    let left: Vec<Row> = unit.query().order_by(["unit_id"]).fetch().await?;
    let ids: Vec<u32> = left
        .iter()
        .filter_map(|r| train_of(r, "train_ext").map(|t| t.unit_id))
        .collect();
    if ids != [1, 3]
        || left
            .iter()
            .any(|r| train_of(r, "train") != train_of(r, "train_ext"))
    {
        return Err(format!("after GC the units are {ids:?}").into());
    }
    let verified = Verify::new(&conn)
        .store("main")
        .schemas([schema.name()])
        .run()
        .await?;
    println!(
        "verify: {} ok, {} missing, {} corrupt; units {ids:?} still fetch equal",
        verified.ok, verified.missing, verified.corrupt
    );
    if !verified.is_clean() {
        return Err(format!("verify found problems: {verified:?}").into());
    }

    conn.close().await;
    Ok(())
}
