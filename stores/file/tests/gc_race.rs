//! `Store::delete_if_older` on the file store: what garbage collection does to an orphan while a
//! writer that reuses it may be rewriting it. The property: once a rewrite has returned, the
//! object exists, whatever the order of the rewrite and the conditional delete.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::Utc;
use dj_core::store::{ConditionalDelete, Store, StoreExt, StorePath};
use dj_store_file::{FileStore, aside_original, recover_aside};

fn age(path: &Path, by: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - by).unwrap();
}

fn two_hours_ago() -> chrono::DateTime<Utc> {
    Utc::now() - chrono::TimeDelta::hours(2)
}

#[tokio::test]
async fn old_young_and_missing_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new("main", dir.path()).unwrap();
    let key = StorePath::parse("_hash/lab/ab/cd/abcdefghijklmnopqrstuvwxyz").unwrap();
    let file = store.file_path(&key);

    assert_eq!(
        store.delete_if_older(&key, two_hours_ago()).await.unwrap(),
        ConditionalDelete::Missing
    );
    store.put(&key, Bytes::from_static(b"young")).await.unwrap();
    assert_eq!(
        store.delete_if_older(&key, two_hours_ago()).await.unwrap(),
        ConditionalDelete::Kept(5)
    );
    assert_eq!(&store.get(&key).await.unwrap()[..], b"young");
    age(&file, Duration::from_secs(3 * 3600));
    assert_eq!(
        store.delete_if_older(&key, two_hours_ago()).await.unwrap(),
        ConditionalDelete::Deleted(5)
    );
    assert!(!file.exists());
    // The folders it emptied are gone, the store root stays, and nothing was left aside.
    assert!(!dir.path().join("_hash").exists());
    assert!(dir.path().exists());
}

/// A rewrite racing the conditional delete: hundreds of rounds, each starting from an old
/// object; after both finish, the object is there with its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_racing_a_conditional_delete_is_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new("main", dir.path()).unwrap());
    let key = StorePath::parse("_hash/lab/abcdefghijklmnopqrstuvwxyz").unwrap();
    let data = Bytes::from(vec![7u8; 4096]);
    let (mut deleted, mut kept) = (0, 0);
    for round in 0..300 {
        store.put(&key, data.clone()).await.unwrap();
        age(&store.file_path(&key), Duration::from_secs(3 * 3600));
        let (s1, s2, k1, k2, d) = (
            Arc::clone(&store),
            Arc::clone(&store),
            key.clone(),
            key.clone(),
            data.clone(),
        );
        // The writer found the object old, so it writes it again (what `put_hashed` does).
        let writer = tokio::spawn(async move { s1.put(&k1, d).await.unwrap() });
        // Start the collector at a varying moment of the rewrite (it takes a write, an fsync
        // and a rename), so that over the rounds it meets every step of it.
        let jitter = Duration::from_micros((round * 7919 % 4000) as u64);
        let collector = tokio::spawn(async move {
            let start = std::time::Instant::now();
            while start.elapsed() < jitter {
                std::hint::spin_loop();
            }
            s2.delete_if_older(&k2, two_hours_ago()).await.unwrap()
        });
        let (_, outcome) = (writer.await.unwrap(), collector.await.unwrap());
        match outcome {
            ConditionalDelete::Deleted(_) => deleted += 1,
            ConditionalDelete::Kept(_) => kept += 1,
            other => panic!("round {round}: {other:?}"),
        }
        assert_eq!(store.get(&key).await.unwrap(), data, "round {round}");
    }
    eprintln!("deleted the old copy {deleted} times, kept a fresh rewrite {kept} times");
    // No aside file is left behind.
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| aside_original(p).is_some())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A process killed between moving a file aside and putting it back leaves `<name>#gc<digits>`:
/// recovery puts it back when the name is free and removes it when a newer write took the name.
#[test]
fn a_move_aside_left_by_a_killed_process_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("abcdefghijklmnopqrstuvwxyz");
    let aside = dir.path().join("abcdefghijklmnopqrstuvwxyz#gc123400000001");
    assert_eq!(aside_original(&aside), Some(original.clone()));
    for not_aside in ["x#gc", "#gc12", "x#gc12a", "x#12", "x"] {
        assert_eq!(
            aside_original(&dir.path().join(not_aside)),
            None,
            "{not_aside}"
        );
    }
    std::fs::write(&aside, b"moved").unwrap();
    assert!(recover_aside(&aside).unwrap());
    assert_eq!(std::fs::read(&original).unwrap(), b"moved");
    assert!(!aside.exists());
    std::fs::write(&aside, b"older").unwrap();
    assert!(recover_aside(&aside).unwrap());
    assert_eq!(std::fs::read(&original).unwrap(), b"moved");
    assert!(!aside.exists());
    assert!(!recover_aside(&dir.path().join("plain")).unwrap());
}

/// Garbage collection finds such a file among the leftovers of interrupted writes and puts it
/// back, whatever its age (a young one may be a live object a writer had just rewritten).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collections_put_back_what_a_killed_collection_moved_aside() {
    use dj_core::store::{IncompleteKind, IncompleteRemoval};
    use futures::StreamExt;

    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new("main", dir.path()).unwrap();
    let key = StorePath::parse("_hash/lab/abcdefghijklmnopqrstuvwxyz").unwrap();
    store.put(&key, Bytes::from_static(b"live")).await.unwrap();
    let file = store.file_path(&key);
    let aside = file.with_file_name("abcdefghijklmnopqrstuvwxyz#gc777700000001");
    std::fs::rename(&file, &aside).unwrap();
    let prefix = StorePath::parse("_hash").unwrap();
    let found: Vec<_> = store
        .list_incomplete(Some(&prefix))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, IncompleteKind::MovedAside);
    assert_eq!(found[0].path, key);
    // Young (just written), and still put back.
    let r = store
        .remove_incomplete(&found[0], two_hours_ago())
        .await
        .unwrap();
    assert_eq!(r, IncompleteRemoval::Removed { bytes_freed: 0 });
    assert_eq!(&store.get(&key).await.unwrap()[..], b"live");
    assert!(!aside.exists());
}
