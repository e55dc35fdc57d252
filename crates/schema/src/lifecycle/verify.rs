//! [`Verify`]: check that every object the rows reference exists and is intact.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use dj_config::HashAlgorithm;
use dj_core::registry::StoreSet;
use dj_core::store::{Store, StorePath};
use dj_layout::metadata_hash_algorithm;
use dj_object::{ObjectMetadata, ObjectRef};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value as Json;

use crate::db::Connection;
use crate::error::Result;

use super::scan;
use super::{Phase, Progress, ProgressHook, report};

/// The outcome of checking one referenced object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// It exists and matches its metadata.
    Ok,
    /// It (or a file of a folder object, or its manifest) is not in the store.
    Missing,
    /// It exists but its content, size or manifest does not match the metadata.
    Corrupt,
    /// It could not be checked (the store failed or cannot be opened).
    Error,
}

/// One referenced object that is not [`Status::Ok`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// The row's primary key, as a JSON object.
    pub key: String,
    /// The store the row's metadata points at.
    pub store: String,
    /// The object's path.
    pub path: String,
    /// What is wrong.
    pub status: Status,
    /// Why, in words.
    pub reason: String,
}

/// The results for one attribute of one table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AttributeReport {
    /// The table, `schema.table`.
    pub table: String,
    /// The attribute.
    pub attribute: String,
    /// References whose object is intact.
    pub ok: u64,
    /// References whose object is missing.
    pub missing: u64,
    /// References whose object is corrupt.
    pub corrupt: u64,
    /// References that could not be checked.
    pub errors: u64,
    /// Every reference that is not ok.
    pub problems: Vec<Problem>,
}

/// What a verification found. Serializes to JSON for command-line output.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The store checked, or `None` for every store.
    pub store: Option<String>,
    /// The schemas read.
    pub schemas: Vec<String>,
    /// Per table and attribute, for every attribute with references.
    pub attributes: Vec<AttributeReport>,
    /// Intact references, over all attributes.
    pub ok: u64,
    /// Missing references.
    pub missing: u64,
    /// Corrupt references.
    pub corrupt: u64,
    /// References that could not be checked.
    pub errors: u64,
    /// Distinct objects checked.
    pub objects: u64,
    /// Bytes read to check content.
    pub bytes_read: u64,
    /// Catalog reads and queries that failed (their tables were not checked).
    pub scan_errors: Vec<String>,
}

impl VerifyReport {
    /// Whether everything was checked and found intact.
    pub fn is_clean(&self) -> bool {
        self.missing == 0 && self.corrupt == 0 && self.errors == 0 && self.scan_errors.is_empty()
    }
}

/// Verification of the objects that rows reference.
///
/// For every attribute whose resolved codec chain has a store, every non-null stored value, and
/// every path its codecs report, the object is checked according to its metadata:
///
/// - **hash-addressed** (metadata with `hash`): read in full; its size must equal `size`, and its
///   BLAKE3 must equal the `checksum` dj-rs records beside an MD5 `hash`, or without one its
///   content hash (MD5 base32, or BLAKE3 when `hash_algorithm` says `blake3`) must equal `hash`;
/// - **path-addressed files**: a `checksum` (BLAKE3 base32, written by dj-rs) is compared with
///   the content read in full, `size` with the object's size; with neither, existence is checked;
/// - **folders** (`is_dir: true`): `{path}.manifest.json` must exist and every file it lists
///   (`{files: [{path, size}]}`) must exist with its size.
///
/// Each distinct object is checked once, with at most `transfer_concurrency` checks at a time.
#[derive(Clone)]
pub struct Verify {
    conn: Connection,
    store: Option<String>,
    schemas: Option<Vec<String>>,
    progress: Option<ProgressHook>,
}

impl fmt::Debug for Verify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verify")
            .field("store", &self.store)
            .field("schemas", &self.schemas)
            .finish_non_exhaustive()
    }
}

/// One reference to check.
struct Job {
    attr: usize,
    key: String,
    store: String,
    path: String,
}

/// What one check found.
#[derive(Clone, Debug)]
struct Outcome {
    status: Status,
    reason: String,
    bytes: u64,
}

impl Outcome {
    fn ok(bytes: u64) -> Self {
        Outcome {
            status: Status::Ok,
            reason: String::new(),
            bytes,
        }
    }
    fn bad(status: Status, reason: impl Into<String>, bytes: u64) -> Self {
        Outcome {
            status,
            reason: reason.into(),
            bytes,
        }
    }
}

impl Verify {
    /// Verify every store's objects, over every schema of the database that uses stores.
    pub fn new(conn: &Connection) -> Verify {
        Verify {
            conn: conn.clone(),
            store: None,
            schemas: None,
            progress: None,
        }
    }

    /// Check only the objects in this store.
    pub fn store(mut self, store: &str) -> Verify {
        self.store = Some(store.to_string());
        self
    }

    /// Read only these schemas.
    pub fn schemas<I, S>(mut self, schemas: I) -> Verify
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.schemas = Some(schemas.into_iter().map(Into::into).collect());
        self
    }

    /// Call `hook` with progress reports.
    pub fn progress(mut self, hook: impl Fn(&Progress) + Send + Sync + 'static) -> Verify {
        self.progress = Some(Arc::new(hook));
        self
    }

    /// Run the verification. Failures to read the catalog or a table are reported in
    /// [`VerifyReport::scan_errors`]; problems with objects in the per-attribute reports.
    pub async fn run(&self) -> Result<VerifyReport> {
        if let Some(s) = &self.store {
            self.conn.stores().spec(s)?;
        }
        let mut rep = VerifyReport {
            store: self.store.clone(),
            ..VerifyReport::default()
        };
        let schemas = match &self.schemas {
            Some(s) => s.clone(),
            None => scan::discover_schemas(&self.conn).await?,
        };
        rep.schemas.clone_from(&schemas);
        let catalog = scan::load_catalog(&self.conn, &schemas, &self.progress).await;
        rep.scan_errors.extend(catalog.errors.iter().cloned());

        // Collect the references and the metadata that describes each object.
        let mut jobs: Vec<Job> = Vec::new();
        let mut objects: HashMap<(String, String), Option<Json>> = HashMap::new();
        for st in &catalog.tables {
            let mut names: Vec<String> = st
                .table
                .heading()
                .primary_key()
                .iter()
                .map(|s| s.to_string())
                .collect();
            names.extend(st.attrs.iter().map(|a| a.attribute.clone()));
            let rows = match scan::stored_rows(&st.table, &names).await {
                Ok(r) => r,
                Err(e) => {
                    rep.scan_errors
                        .push(format!("reading `{}` failed: {e}", st.table.full_name()));
                    continue;
                }
            };
            for attr in &st.attrs {
                let index = rep.attributes.len();
                rep.attributes.push(AttributeReport {
                    table: st.table.full_name(),
                    attribute: attr.attribute.clone(),
                    ..AttributeReport::default()
                });
                for row in &rows {
                    let Some(v) = row.get(&attr.attribute).filter(|v| !v.is_null()) else {
                        continue;
                    };
                    let json = scan::as_json(v);
                    for r in attr.resolved.referenced_paths(v) {
                        let Some(store) = scan::effective_store(&r, attr) else {
                            continue;
                        };
                        if self.store.as_deref().is_some_and(|s| s != store) {
                            continue;
                        }
                        let path = scan::normalize_path(&r.path);
                        // The metadata describes the object when its own `path` is this one.
                        let meta = json.as_ref().filter(|j| {
                            j.get("path")
                                .and_then(Json::as_str)
                                .is_some_and(|p| scan::normalize_path(p) == path)
                        });
                        objects
                            .entry((store.to_string(), path.clone()))
                            .or_insert_with(|| meta.cloned());
                        jobs.push(Job {
                            attr: index,
                            key: scan::key_text(&st.table, row),
                            store: store.to_string(),
                            path,
                        });
                    }
                }
            }
        }

        // Check each distinct object once.
        let total = objects.len() as u64;
        rep.objects = total;
        let concurrency = self.conn.config().transfer_concurrency.max(1);
        let stores = Arc::clone(self.conn.stores());
        let mut results = futures::stream::iter(objects)
            .map(|((store, path), meta)| {
                let stores = Arc::clone(&stores);
                async move {
                    let outcome = check(&stores, &store, &path, meta.as_ref()).await;
                    ((store, path), outcome)
                }
            })
            .buffer_unordered(concurrency);
        let mut outcomes: HashMap<(String, String), Outcome> = HashMap::new();
        let mut done = 0u64;
        while let Some((id, outcome)) = results.next().await {
            rep.bytes_read += outcome.bytes;
            outcomes.insert(id, outcome);
            done += 1;
            report(
                &self.progress,
                Progress {
                    phase: Phase::Check,
                    done,
                    total: Some(total),
                    bytes: rep.bytes_read,
                },
            );
        }

        // Attribute the outcomes to the references.
        for job in jobs {
            let Some(outcome) = outcomes.get(&(job.store.clone(), job.path.clone())) else {
                continue;
            };
            let Some(a) = rep.attributes.get_mut(job.attr) else {
                continue;
            };
            match outcome.status {
                Status::Ok => a.ok += 1,
                Status::Missing => a.missing += 1,
                Status::Corrupt => a.corrupt += 1,
                Status::Error => a.errors += 1,
            }
            if outcome.status != Status::Ok {
                a.problems.push(Problem {
                    key: job.key,
                    store: job.store,
                    path: job.path,
                    status: outcome.status,
                    reason: outcome.reason.clone(),
                });
            }
        }
        rep.attributes
            .retain(|a| a.ok + a.missing + a.corrupt + a.errors > 0);
        for a in &mut rep.attributes {
            a.problems
                .sort_by(|x, y| (&x.path, &x.key).cmp(&(&y.path, &y.key)));
        }
        rep.ok = rep.attributes.iter().map(|a| a.ok).sum();
        rep.missing = rep.attributes.iter().map(|a| a.missing).sum();
        rep.corrupt = rep.attributes.iter().map(|a| a.corrupt).sum();
        rep.errors = rep.attributes.iter().map(|a| a.errors).sum();
        Ok(rep)
    }
}

/// Read `path` in full, returning its length and content hash with `algorithm`.
async fn read_hash(
    store: &dyn Store,
    key: &StorePath,
    algorithm: HashAlgorithm,
) -> std::result::Result<(u64, String), Outcome> {
    dj_object::hash_stored(store, key, algorithm)
        .await
        .map_err(|e| {
            if e.is_not_found() {
                Outcome::bad(Status::Missing, "the object is not in the store", 0)
            } else {
                Outcome::bad(Status::Error, format!("cannot read it: {e}"), 0)
            }
        })
}

/// Check one object against its metadata.
async fn check(stores: &StoreSet, store_name: &str, path: &str, meta: Option<&Json>) -> Outcome {
    let store = match stores.get(store_name) {
        Ok(s) => s,
        Err(e) => {
            return Outcome::bad(
                Status::Error,
                format!("store `{store_name}` cannot be opened: {e}"),
                0,
            );
        }
    };
    let key = match StorePath::parse(path) {
        Ok(k) => k,
        Err(e) => {
            return Outcome::bad(
                Status::Corrupt,
                format!("the metadata's path is invalid: {e}"),
                0,
            );
        }
    };
    let field = |k: &str| meta.and_then(|m| m.get(k));
    let size = field("size").and_then(Json::as_u64);

    // Hash-addressed: by the BLAKE3 `checksum` dj-rs records beside an MD5 hash (the same proof,
    // several times faster), otherwise by the hash itself.
    if let Some(hash) = field("hash").and_then(Json::as_str) {
        let (what, algorithm, expected) = match field("checksum").and_then(Json::as_str) {
            Some(checksum) => ("BLAKE3 checksum", HashAlgorithm::Blake3, checksum),
            None => {
                let named = field("hash_algorithm").and_then(Json::as_str);
                ("content hash", metadata_hash_algorithm(named, hash), hash)
            }
        };
        let (len, actual) = match read_hash(store.as_ref(), &key, algorithm).await {
            Ok(r) => r,
            Err(o) => return o,
        };
        if let Some(size) = size
            && size != len
        {
            return Outcome::bad(
                Status::Corrupt,
                format!("the object has {len} bytes, the metadata says {size}"),
                len,
            );
        }
        if actual != expected {
            return Outcome::bad(
                Status::Corrupt,
                format!("the {what} is {actual}, the metadata says {expected}"),
                len,
            );
        }
        return Outcome::ok(len);
    }

    // Path-addressed: the object's own check (size, BLAKE3 checksum, folder manifest).
    let object_meta = meta
        .and_then(|m| ObjectMetadata::from_json(m, "object").ok())
        .unwrap_or_else(|| ObjectMetadata::new(path, Some(store_name.to_string())));
    let read = if object_meta.checksum.is_some() {
        object_meta.size.unwrap_or(0)
    } else {
        0
    };
    match ObjectRef::new(object_meta, store).verify().await {
        Ok(()) => Outcome::ok(read),
        Err(e) if e.is_not_found() => Outcome::bad(Status::Missing, e.to_string(), 0),
        Err(e @ (dj_core::Error::Integrity { .. } | dj_core::Error::InvalidPath { .. })) => {
            Outcome::bad(Status::Corrupt, e.to_string(), read)
        }
        Err(e) => Outcome::bad(Status::Error, format!("cannot check it: {e}"), 0),
    }
}

#[cfg(test)]
mod tests {

    use bytes::Bytes;
    use dj_config::{Config, StoreSpec};
    use dj_core::registry::StoreSet;
    use dj_core::store::{StoreExt, StorePath};
    use dj_layout as layout;
    use serde_json::json;

    use super::{HashAlgorithm, Status, check};

    use dj_store_memory as _;

    /// Hash-addressed metadata is checked by its BLAKE3 `checksum` when it has one (as dj-rs
    /// writes it) and by its MD5 `hash` when not (as DataJoint Python writes it).
    #[tokio::test]
    async fn hash_objects_by_checksum_or_by_md5() {
        let mut config = Config::default();
        config
            .stores
            .specs
            .insert("m".into(), StoreSpec::new("m", "memory", ""));
        let stores = StoreSet::new(config);
        let store = stores.get("m").unwrap();
        let body = b"hello world";
        let md5 = layout::content_hash(HashAlgorithm::Md5, body);
        let path = format!("_hash/s/{md5}");
        let key = StorePath::parse(&path).unwrap();
        store.put(&key, Bytes::from_static(body)).await.unwrap();
        let python = json!({"hash": md5, "path": path, "store": "m", "size": 11});
        let mut ours = python.clone();
        ours["checksum"] = json!(layout::content_hash(HashAlgorithm::Blake3, body));

        for meta in [&python, &ours] {
            let o = check(&stores, "m", &path, Some(meta)).await;
            assert_eq!(o.status, Status::Ok, "{meta}: {}", o.reason);
        }
        // A wrong checksum is what fails the check, even though the MD5 matches.
        let mut wrong = ours.clone();
        wrong["checksum"] = json!("a".repeat(52));
        let o = check(&stores, "m", &path, Some(&wrong)).await;
        assert_eq!(o.status, Status::Corrupt);
        assert!(o.reason.contains("BLAKE3 checksum"), "{}", o.reason);

        // Damaged content (same size) fails both ways.
        store
            .put(&key, Bytes::from_static(b"hello World"))
            .await
            .unwrap();
        let o = check(&stores, "m", &path, Some(&python)).await;
        assert_eq!(o.status, Status::Corrupt);
        assert!(o.reason.contains("content hash"), "{}", o.reason);
        let o = check(&stores, "m", &path, Some(&ours)).await;
        assert_eq!(o.status, Status::Corrupt);
        assert!(o.reason.contains("BLAKE3 checksum"), "{}", o.reason);
    }
}
