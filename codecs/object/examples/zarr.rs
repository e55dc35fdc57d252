//! A Zarr array in an `<object@>` folder, written and read lazily with zarrs.
//!
//! On SQLite in a temporary directory with a local file store: declare a table with a
//! `volume : <object@>` attribute, stage an insert, write a 64×64×64 float32 array in 16×16×16
//! uncompressed chunks through zarrs into the staged folder, commit, fetch the row, and read ONE
//! chunk back through [`ZarrReadStore`], counting the bytes the store returns.
//!
//! ```text
//! cargo run -p dj-codec-object --example zarr --features zarr
//! ```

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use dj_codec_object::zarr::zarrs::array::{Array, ArrayBuilder, data_type};
use dj_codec_object::zarr::{ZarrReadStore, ZarrWriteStore};
use dj_core::config::{Config, StoreSpec};
use dj_core::object::ObjectRef;
use dj_core::registry::StoreSet;
use dj_core::store::{
    Capabilities, GetRange, GetResult, MultipartUpload, ObjectMeta, PutMode, PutResult, Store,
    StorePath,
};
use dj_schema::{Connection, Row, Tier, row};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};

const N: u64 = 64;
const C: u64 = 16;

/// A store wrapper that counts the bytes `get_opts` returns.
#[derive(Debug)]
struct CountingStore {
    inner: Arc<dyn Store>,
    bytes: Arc<AtomicU64>,
    gets: AtomicU64,
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "counting {}", self.inner)
    }
}

#[async_trait]
impl Store for CountingStore {
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
        mode: PutMode,
    ) -> dj_core::Result<PutResult> {
        self.inner.put_opts(path, payload, mode).await
    }
    async fn get_opts(
        &self,
        path: &StorePath,
        range: Option<GetRange>,
    ) -> dj_core::Result<GetResult> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let mut result = self.inner.get_opts(path, range).await?;
        let bytes = Arc::clone(&self.bytes);
        result.stream = result
            .stream
            .inspect_ok(move |b| {
                bytes.fetch_add(b.len() as u64, Ordering::SeqCst);
            })
            .boxed();
        Ok(result)
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
}

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
async fn size_of(store: &Arc<dyn Store>, obj: &ObjectRef, sub: &str) -> dj_core::Result<u64> {
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
    let counting = Arc::new(CountingStore {
        inner: dj_store_file::FileStore::open("main", &store_dir)?,
        bytes: Arc::default(),
        gets: AtomicU64::new(0),
    });
    let stores = Arc::new(StoreSet::new(Arc::clone(&config)));
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
    let metadata_size = size_of(&counting.inner, &obj, "zarr.json").await?;
    let chunk_size = size_of(&counting.inner, &obj, "c/1/2/3").await?;

    counting.bytes.store(0, Ordering::SeqCst);
    counting.gets.store(0, Ordering::SeqCst);
    let array = Array::async_open(Arc::new(ZarrReadStore::new(obj)?), "/").await?;
    let chunk: Vec<f32> = array.async_retrieve_chunk(&[1, 2, 3]).await?;
    let fetched = counting.bytes.load(Ordering::SeqCst);
    let gets = counting.gets.load(Ordering::SeqCst);

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
