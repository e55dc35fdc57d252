//! Unfinished multipart uploads on a real S3-compatible server on loopback (`cargo xtask test`
//! starts one and sets `DJ_TEST_S3_*`): listed below a prefix with their parts' total size and
//! newest part, aborted only when older than the cutoff.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use dj_core::config::SpecContext;
use dj_core::store::{
    IncompleteKind, IncompleteRemoval, IncompleteWrite, MultipartUpload, Store, StoreExt, StorePath,
};
use futures::TryStreamExt;

fn key(k: &str) -> StorePath {
    StorePath::parse(k).unwrap()
}

async fn incomplete(store: &dyn Store, prefix: Option<&str>) -> Vec<IncompleteWrite> {
    let p = prefix.map(key);
    let mut v: Vec<IncompleteWrite> = store
        .list_incomplete(p.as_ref())
        .try_collect()
        .await
        .unwrap();
    v.sort_by_key(|w| w.path.clone());
    v
}

/// Start an upload to `k` and put `parts`, waiting until the server holds them all.
async fn upload(store: &dyn Store, k: &str, parts: &[usize]) -> Box<dyn MultipartUpload> {
    let mut up = store.put_multipart(&key(k)).await.unwrap();
    for &n in parts {
        up.put_part(Bytes::from(vec![b'x'; n])).await.unwrap();
    }
    let total: u64 = parts.iter().map(|&n| n as u64).sum();
    let started = Instant::now();
    while !incomplete(store, Some(k))
        .await
        .iter()
        .any(|w| w.path == key(k) && w.size == total)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the parts never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    up
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_uploads_are_listed_and_aborted_only_when_old() {
    let location = dj_testkit::unique_prefix("incomplete");
    let Some(spec) = dj_testkit::s3_spec_from_env("s3inc", "s3", &location) else {
        return;
    };
    let store = dj_store_s3::create(&spec, &SpecContext::default()).unwrap();
    // Another store in the same bucket, one level up: its keys include this store's location.
    let Some(parent) = dj_testkit::s3_spec_from_env("s3up", "s3", "") else {
        return;
    };
    let parent = dj_store_s3::create(&parent, &SpecContext::default()).unwrap();

    let a = upload(store.as_ref(), "sec/a/obj.bin", &[5 << 20, 1000]).await;
    let b = upload(store.as_ref(), "sec/ab", &[10]).await;
    let c = upload(store.as_ref(), "other/c", &[20]).await;
    // Dropping or completing an upload in this process aborts or finishes it; a killed process
    // does neither.
    std::mem::forget((a, b, c));

    let all = incomplete(store.as_ref(), None).await;
    let keys: Vec<&str> = all.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(keys, ["other/c", "sec/a/obj.bin", "sec/ab"], "{all:#?}");
    let a = &all[1];
    assert_eq!(a.kind, IncompleteKind::MultipartUpload);
    assert_eq!(
        (a.size, a.links, a.exclusive_bytes()),
        ((5 << 20) + 1000, 1, (5 << 20) + 1000)
    );
    assert!(a.to_string().starts_with("sec/a/obj.bin (upload "), "{a}");
    // The newest part was just sent (S3 reports whole seconds; the time is moved up to the next).
    let age = Utc::now() - a.last_modified;
    assert!(age < chrono::TimeDelta::seconds(60), "{a:#?}");
    // Prefixes are segment-wise.
    assert_eq!(incomplete(store.as_ref(), Some("sec/a")).await.len(), 1);
    assert_eq!(incomplete(store.as_ref(), Some("sec")).await.len(), 2);
    assert_eq!(incomplete(store.as_ref(), Some("sec/ab")).await.len(), 1);
    assert!(incomplete(store.as_ref(), Some("se")).await.is_empty());
    // The store one level up sees them under the location.
    let up = incomplete(parent.as_ref(), Some(&location)).await;
    assert_eq!(up.len(), 3, "{up:#?}");
    assert_eq!(up[0].path.as_str(), format!("{location}/other/c"));

    // With the cutoff before the newest part: young, kept.
    let hour_ago = Utc::now() - chrono::TimeDelta::hours(1);
    assert_eq!(
        store.remove_incomplete(a, hour_ago).await.unwrap(),
        IncompleteRemoval::Young
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for w in &all {
        let size = w.size;
        assert_eq!(
            store.remove_incomplete(w, Utc::now()).await.unwrap(),
            IncompleteRemoval::Removed { bytes_freed: size },
            "{w}"
        );
    }
    assert!(incomplete(store.as_ref(), None).await.is_empty());
    assert_eq!(
        store.remove_incomplete(a, Utc::now()).await.unwrap(),
        IncompleteRemoval::Gone
    );
    // Nothing was ever visible as an object.
    assert!(store.list_all(None).await.unwrap().is_empty());
    // A handle of another kind is refused, naming the store.
    let forged = IncompleteWrite::new(key("x"), IncompleteKind::StagingFile, "1", 0, Utc::now());
    let err = store
        .remove_incomplete(&forged, Utc::now())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("s3inc"), "{err}");
}

#[tokio::test]
async fn a_failed_listing_names_the_store_and_bucket() {
    let Some(mut spec) = dj_testkit::s3_spec_from_env("s3inc", "s3", "x") else {
        return;
    };
    spec.options
        .insert("bucket".into(), "no-such-bucket-dj".into());
    let store = dj_store_s3::create(&spec, &SpecContext::default()).unwrap();
    let err = store
        .list_incomplete(None)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("s3inc") && text.contains("no-such-bucket-dj") && !err.is_retryable(),
        "{text}"
    );
}

/// A failed listing names the store and the request, never the signed URL's query (its
/// signature and access key) nor the secret key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_listing_shows_no_signature() {
    use dj_core::config::StoreSpec;

    // Nothing listens on the discard port of loopback: the request fails at once.
    let mut spec = StoreSpec::new("s3dead", "s3", "prefix");
    spec.options
        .insert("endpoint".into(), "http://127.0.0.1:9".into());
    spec.options.insert("bucket".into(), "dj-test".into());
    spec.options
        .insert("access_key".into(), ("AKIDLEAKCHECK".to_string()).into());
    spec.options.insert(
        "secret_key".into(),
        ("s3cr3t-leak-check".to_string()).into(),
    );
    let store = dj_store_s3::create(&spec, &SpecContext::default()).unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(120),
        store.list_incomplete(None).try_collect::<Vec<_>>(),
    )
    .await
    .expect("the listing gave up")
    .unwrap_err()
    .to_string();
    for secret in [
        "X-Amz-Signature",
        "X-Amz-Credential",
        "AKIDLEAKCHECK",
        "s3cr3t-leak-check",
    ] {
        assert!(!err.contains(secret), "{secret} in: {err}");
    }
    assert!(err.contains("s3dead"), "{err}");
}
