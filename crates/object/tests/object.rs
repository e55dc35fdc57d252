//! `ObjectWriter` as a tokio `AsyncWrite`, `ObjectReader` as `AsyncRead + AsyncSeek`, and folder
//! writers, against the memory store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use dj_core::store::{Store, StoreExt, StorePath};
use dj_object::{FolderWriter, ObjectRef, ObjectWriter};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_write_then_async_read_across_many_parts() {
    let store: Arc<dyn Store> = dj_store_memory::memory_store("m");
    let key = StorePath::parse("_schema/s/t/id=1/f_Tok3n001.bin").unwrap();
    let body = data(27 * 1024 * 1024 + 17); // four parts, the last one short
    let mut w = ObjectWriter::new(Arc::clone(&store), key.clone());
    let mut src: &[u8] = &body;
    tokio::io::copy(&mut src, &mut w).await.unwrap();
    w.flush().await.unwrap();
    w.shutdown().await.unwrap();
    // Nothing is visible until the writer finishes.
    assert!(!store.exists(&key).await.unwrap());
    let meta = w.finish(Some(".bin".into())).await.unwrap();
    assert_eq!(meta.size, Some(body.len() as u64));

    let obj = ObjectRef::new(meta, Arc::clone(&store));
    obj.verify().await.unwrap();
    let mut r = obj.reader().await.unwrap();
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, body);
    // Seek back into an earlier block, and past the end.
    r.seek(std::io::SeekFrom::Start(12_345_678)).await.unwrap();
    let mut four = [0u8; 4];
    r.read_exact(&mut four).await.unwrap();
    assert_eq!(four, body[12_345_678..12_345_682]);
    r.seek(std::io::SeekFrom::End(10)).await.unwrap();
    assert_eq!(r.read(&mut four).await.unwrap(), 0);
    assert!(
        r.seek(std::io::SeekFrom::Current(-1_000_000_000))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_writers_leave_nothing() {
    let store: Arc<dyn Store> = dj_store_memory::memory_store("m");
    let key = StorePath::parse("a/b.bin").unwrap();
    let mut w = ObjectWriter::new(Arc::clone(&store), key.clone());
    w.write(&data(9 * 1024 * 1024)).await.unwrap(); // a part is already sent
    w.abort().await.unwrap();
    assert!(!store.exists(&key).await.unwrap());

    let folder = FolderWriter::new(Arc::clone(&store), StorePath::parse("a/dir").unwrap());
    folder.put("x/1", data(10).into()).await.unwrap();
    folder.put("2", data(20).into()).await.unwrap();
    folder.abort().await.unwrap();
    assert!(store.list_all(None).await.unwrap().is_empty());
}

/// `upload_file` across part boundaries: a file of exactly one part, one of several parts with a
/// short last one, and an empty one, each read back whole with a checksum that matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_file_streams_whole_parts_and_the_rest() {
    let store: Arc<dyn Store> = dj_store_memory::memory_store("m");
    let dir = tempfile::tempdir().unwrap();
    let part = dj_object::DEFAULT_PART_SIZE;
    for (i, len) in [part, 2 * part + 12_345, 0, 1].into_iter().enumerate() {
        let body = data(len);
        let local = dir.path().join(format!("f{i}.bin"));
        std::fs::write(&local, &body).unwrap();
        let key = StorePath::parse(format!("up/f{i}.bin")).unwrap();
        let written = dj_object::upload_file(Arc::clone(&store), key.clone(), &local)
            .await
            .unwrap();
        assert_eq!(written.size, len as u64, "{len}");
        assert_eq!(
            written.checksum,
            dj_layout::content_hash(dj_core::config::HashAlgorithm::Blake3, &body),
            "{len}"
        );
        assert_eq!(store.get(&key).await.unwrap().as_ref(), &body[..], "{len}");
    }
    let missing = dir.path().join("missing.bin");
    let err = dj_object::upload_file(
        Arc::clone(&store),
        StorePath::parse("up/missing.bin").unwrap(),
        &missing,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("missing.bin"), "{err}");
}

/// A store whose reads deliver the first chunk and then never finish: a download stuck on a
/// slow network.
#[derive(Debug)]
struct Stalling(Arc<dyn Store>);

impl std::fmt::Display for Stalling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stalling {}", self.0)
    }
}

#[async_trait::async_trait]
impl Store for Stalling {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn capabilities(&self) -> dj_core::store::Capabilities {
        self.0.capabilities()
    }
    async fn put_opts(
        &self,
        path: &StorePath,
        payload: bytes::Bytes,
        options: dj_core::store::PutOptions,
    ) -> dj_core::Result<dj_core::store::PutResult> {
        self.0.put_opts(path, payload, options).await
    }
    async fn get_opts(
        &self,
        path: &StorePath,
        options: dj_core::store::GetOptions,
    ) -> dj_core::Result<dj_core::store::GetResult> {
        use futures::StreamExt;
        let mut r = self.0.get_opts(path, options).await?;
        let first = r.stream.next().await;
        r.stream = futures::stream::iter(first)
            .chain(futures::stream::pending())
            .boxed();
        Ok(r)
    }
    async fn head(&self, path: &StorePath) -> dj_core::Result<dj_core::store::ObjectMeta> {
        self.0.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> dj_core::Result<()> {
        self.0.delete(path).await
    }
    fn list(
        &self,
        prefix: Option<&StorePath>,
    ) -> futures::stream::BoxStream<'static, dj_core::Result<dj_core::store::ObjectMeta>> {
        self.0.list(prefix)
    }
    async fn put_multipart(
        &self,
        path: &StorePath,
    ) -> dj_core::Result<Box<dyn dj_core::store::MultipartUpload>> {
        self.0.put_multipart(path).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_download_leaves_no_part_file() {
    let inner: Arc<dyn Store> = dj_store_memory::memory_store("m");
    let key = StorePath::parse("_schema/s/t/id=1/f_Tok3n001.bin").unwrap();
    let mut w = ObjectWriter::new(Arc::clone(&inner), key.clone());
    w.write(&data(3 * 1024 * 1024)).await.unwrap();
    let meta = w.finish(Some(".bin".into())).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(Stalling(inner));
    let obj = ObjectRef::new(meta, store);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.bin");
    let download = obj.download(&target);
    // The first chunk arrives and is written, then the read stalls; give up on it.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), download)
            .await
            .is_err()
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "a cancelled download left {left:?}");
}
