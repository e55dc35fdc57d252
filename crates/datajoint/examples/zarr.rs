//! A Zarr array in an `<object@>` folder, written and read lazily with zarrs.
//!
//! On SQLite in a temporary directory with a local file store: declare a table with a
//! `volume : <object@>` attribute, stage an insert, write a 64×64×64 float32 array in 16×16×16
//! uncompressed chunks through zarrs into the staged folder, commit, fetch the row, and read ONE
//! chunk back through [`ZarrReadStore`], counting the bytes the store returns.
//!
//! ```text
//! cargo run -p datajoint --example zarr --features zarr
//! ```

use std::error::Error;
use std::sync::Arc;

use datajoint::codecs::object::zarr::zarrs::array::{Array, ArrayBuilder, data_type};
use datajoint::codecs::object::zarr::{ZarrReadStore, ZarrWriteStore};
use datajoint::schema::{Connection, Row, Tier, row};
use datajoint::stores::file::FileStore;
use datajoint::{Config, CoreResult, ObjectRef, Store, StorePath, StoreSet, StoreSpec};
use dj_testkit::CountingStore;

const N: u64 = 64;
const C: u64 = 16;

/// The elements of chunk `(cx, cy, cz)` in C order.
fn chunk_values(cx: u64, cy: u64, cz: u64) -> Vec<f32> {
    let mut out = Vec::with_capacity((C * C * C) as usize);
    for i in 0..C {
        for j in 0..C {
            for k in 0..C {
                let (x, y, z) = (cx * C + i, cy * C + j, cz * C + k);
                out.push((x * N * N + y * N + z) as f32 * 0.5);
            }
        }
    }
    out
}

/// The stored size of the file `sub` inside the folder `obj` (a `head`, not counted).
async fn size_of(store: &Arc<dyn Store>, obj: &ObjectRef, sub: &str) -> CoreResult<u64> {
    let key = StorePath::parse(obj.child(sub)?.path())?;
    Ok(store.head(&key).await?.size)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let store_dir = dir.path().join("store");
    std::fs::create_dir_all(&store_dir)?;

    let mut config = Config::default();
    config.database.path = Some(dir.path().join("lab.sqlite"));
    config.stores.default = Some("main".into());
    config.stores.specs.insert(
        "main".into(),
        StoreSpec::new("main", "file", store_dir.to_string_lossy()),
    );
    let config = Arc::new(config);

    // The file store, wrapped to count the bytes read from it.
    let file_store: Arc<dyn Store> = FileStore::open("main", &store_dir)?;
    let counting = Arc::new(CountingStore::new(Arc::clone(&file_store)));
    let stores = Arc::new(StoreSet::new(config.core()));
    stores.insert("main", counting.clone());
    let conn = Connection::open_with(Arc::clone(&config), stores).await?;

    let lab = conn.schema("lab").await?;
    let scan = lab
        .declare(
            "Scan",
            Tier::Manual,
            "scan_id : int32\n---\nvolume : <object@>",
        )
        .await?;

    // Write: the staged folder is a zarrs store; each chunk is one file in it.
    let mut staged = scan.staged_insert1(row! { "scan_id" => 1 })?;
    let folder = staged.folder("volume", Some(".zarr"))?;
    let array = ArrayBuilder::new(vec![N, N, N], vec![C, C, C], data_type::float32(), 0.0f32)
        .dimension_names(Some(["z", "y", "x"]))
        .build(Arc::new(ZarrWriteStore::new(folder.clone())), "/")?;
    array.async_store_metadata().await?;
    for cx in 0..N / C {
        for cy in 0..N / C {
            for cz in 0..N / C {
                array
                    .async_store_chunk(&[cx, cy, cz], chunk_values(cx, cy, cz))
                    .await?;
            }
        }
    }
    staged.commit().await?;

    // Read: fetch the row, open the array lazily, read one chunk.
    let row: Row = scan.query().fetch1().await?;
    let obj = row["volume"]
        .as_domain::<ObjectRef>()
        .ok_or("`volume` is not an object")?
        .clone();
    println!(
        "stored {} files, {} bytes at {}",
        obj.metadata().item_count.unwrap_or(0),
        obj.size().unwrap_or(0),
        obj.path()
    );
    let metadata_size = size_of(&file_store, &obj, "zarr.json").await?;
    let chunk_size = size_of(&file_store, &obj, "c/1/2/3").await?;

    counting.reset();
    let array = Array::async_open(Arc::new(ZarrReadStore::new(obj)?), "/").await?;
    let chunk: Vec<f32> = array.async_retrieve_chunk(&[1, 2, 3]).await?;
    let fetched = counting.bytes();
    let gets = counting.gets();

    let checksum: f64 = chunk.iter().map(|&v| f64::from(v)).sum();
    assert_eq!(chunk, chunk_values(1, 2, 3));
    println!(
        "chunk (1, 2, 3): {} values, sum {checksum}, first {:?}",
        chunk.len(),
        chunk.first()
    );
    println!(
        "fetched {fetched} bytes in {gets} requests: chunk {chunk_size} bytes + zarr.json {metadata_size} bytes (array total {} bytes)",
        N * N * N * 4
    );
    assert!(
        fetched < 2 * chunk_size + metadata_size,
        "fetched {fetched} bytes for one {chunk_size}-byte chunk"
    );

    conn.close().await;
    Ok(())
}
