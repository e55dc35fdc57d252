//! Verified reads (`GetOptions::verify`): the store hashes the file while it reads it and fails
//! on a digest that differs, naming the store and the key.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use dj_core::config::HashAlgorithm;
use dj_core::error::Error;
use dj_core::store::{ExpectedDigest, GetOptions, Store, StoreExt, StorePath};
use dj_layout::content_hash;
use dj_store_file::FileStore;

fn verify(algorithm: HashAlgorithm, digest: &str) -> GetOptions {
    GetOptions::default().with_verify(Some(ExpectedDigest::new(
        algorithm,
        digest,
        "BLAKE3 checksum",
    )))
}

/// Bytes that differ from chunk to chunk, so a chunk read twice or skipped changes the digest.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 4099) as u8).collect()
}

#[tokio::test]
async fn verified_reads_return_the_bytes_and_the_metadata_head_gives() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new("main", dir.path()).unwrap();
    assert!(store.capabilities().verified_get);
    // Empty, one chunk, and several chunks with a partial last one.
    for (i, len) in [0usize, 1000, 3 * 256 * 1024 + 17].into_iter().enumerate() {
        let key = StorePath::parse(format!("_hash/lab/obj{i}")).unwrap();
        let data = pattern(len);
        store.put(&key, data.clone().into()).await.unwrap();
        for algorithm in [HashAlgorithm::Blake3, HashAlgorithm::Md5] {
            let digest = content_hash(algorithm, &data);
            let got = store
                .get_opts(&key, verify(algorithm, &digest))
                .await
                .unwrap();
            let head = store.head(&key).await.unwrap();
            assert_eq!(got.meta, head, "{len} bytes");
            assert_eq!(got.range, 0..len as u64);
            assert_eq!(&got.bytes().await.unwrap()[..], &data[..], "{len} bytes");
        }
    }
}

#[tokio::test]
async fn a_wrong_digest_fails_naming_the_store_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new("main", dir.path()).unwrap();
    let key = StorePath::parse("_hash/lab/damaged").unwrap();
    let data = pattern(600 * 1024);
    store.put(&key, data.clone().into()).await.unwrap();
    let digest = content_hash(HashAlgorithm::Blake3, &data);
    // One byte flipped in the last chunk.
    let mut damaged = data.clone();
    *damaged.last_mut().unwrap() ^= 1;
    std::fs::write(dir.path().join("_hash/lab/damaged"), &damaged).unwrap();
    let err = store
        .get_opts(&key, verify(HashAlgorithm::Blake3, &digest))
        .await
        .unwrap_err();
    let actual = content_hash(HashAlgorithm::Blake3, &damaged);
    match &err {
        Error::Integrity {
            store,
            path,
            message,
        } => {
            assert_eq!(
                (store.as_str(), path.as_str()),
                ("main", "_hash/lab/damaged")
            );
            assert_eq!(
                message,
                &format!(
                    "BLAKE3 checksum is {actual}, expected {digest} (the object is corrupted)"
                )
            );
        }
        other => panic!("{other}"),
    }
    // Unverified reads still return the bytes as they are.
    assert_eq!(&store.get(&key).await.unwrap()[..], &damaged[..]);
}

#[tokio::test]
async fn missing_objects_ranges_and_staging_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new("main", dir.path()).unwrap();
    let digest = content_hash(HashAlgorithm::Blake3, b"");
    let missing = StorePath::parse("_hash/lab/missing").unwrap();
    let err = store
        .get_opts(&missing, verify(HashAlgorithm::Blake3, &digest))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    // A directory is no object either.
    std::fs::create_dir_all(dir.path().join("_hash/lab/folder")).unwrap();
    let folder = StorePath::parse("_hash/lab/folder").unwrap();
    let err = store
        .get_opts(&folder, verify(HashAlgorithm::Blake3, &digest))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");

    let key = StorePath::parse("_hash/lab/obj").unwrap();
    store.put(&key, "hello".into()).await.unwrap();
    let err = store
        .get_opts(
            &key,
            verify(HashAlgorithm::Blake3, &digest)
                .with_range(Some(dj_core::store::GetRange::Bounded(0..2))),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotSupported { .. }), "{err}");

    // A staging file's name is no key, verified or not.
    std::fs::write(dir.path().join("_hash/lab/obj#12"), b"").unwrap();
    let staging = StorePath::parse("_hash/lab/obj#12").unwrap();
    let err = store
        .get_opts(&staging, verify(HashAlgorithm::Blake3, &digest))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("obj#12"), "{err}");
    assert!(store.get(&staging).await.is_err());
}
