//! [`Migration`]: move one attribute's objects from one store to another.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dj_config::HashAlgorithm;
use dj_core::store::{GetOptions, Store, StoreExt, StorePath};
use dj_core::value::Value;
use dj_layout::{ContentHasher, metadata_hash_algorithm};
use dj_object::hash_stored;
use dj_rt::task::{BLOCKING_THRESHOLD, run_blocking};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value as Json;

use crate::Row;
use crate::coerce::to_param;
use crate::db::{Sql, qualified};
use crate::error::{Error, MigrationError, Result};
use crate::restrict::Restriction;
use crate::table::Table;

use super::scan::{self, StoreAttr};
use super::{Phase, Progress, ProgressHook, report};

/// Objects up to this size are copied in one put; larger ones stream through a multipart upload.
const SINGLE_PUT_MAX: u64 = 8 << 20;
/// Part size of streamed copies.
const PART_SIZE: usize = 8 << 20;

/// What a migration found and did. Serializes to JSON for command-line output.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MigrationReport {
    /// The table, `schema.table`.
    pub table: String,
    /// The attribute.
    pub attribute: String,
    /// The source store.
    pub from: String,
    /// The target store.
    pub to: String,
    /// Whether this was a dry run (nothing copied, nothing rewritten).
    pub dry_run: bool,
    /// Rows with a value in the attribute.
    pub rows: u64,
    /// Rows whose objects are in the source store: the ones to migrate.
    pub rows_to_migrate: u64,
    /// Rows rewritten to point at the target store.
    pub rows_migrated: u64,
    /// Rows whose value was changed by someone else while the objects were copied: left as
    /// they are (run the migration again for them).
    pub rows_changed: u64,
    /// Distinct objects (files, folder files and manifests count one each once copied) to move.
    pub objects: u64,
    /// Objects copied.
    pub objects_copied: u64,
    /// Objects already in the target store with the same content (not copied again).
    pub objects_present: u64,
    /// Bytes copied.
    pub bytes_copied: u64,
}

/// Move one attribute's objects from store `from` to store `to` (hot to cold, say).
///
/// 1. Read the attribute's stored metadata for every row (or the rows matching
///    [`Migration::restrict`]) and keep the rows whose metadata points at `from` (a row whose
///    metadata names no store is in the attribute's declared store).
/// 2. Copy every referenced object to `to` at the same relative path: whole objects up to
///    8 MiB, larger ones streamed through a multipart upload, never held whole in memory;
///    folder objects file by file, with their `.manifest.json`. At most `transfer_concurrency`
///    copies run at a time. An object already in `to` with the same content is not copied again.
/// 3. Verify every copy: its size and BLAKE3 must equal the source's, and a hash-addressed
///    source must match the hash in its metadata (a corrupt source is not migrated).
/// 4. In **one transaction**, rewrite each row's metadata: `store` becomes `to`; the path and
///    everything else stay. Each row is re-read (locked with `FOR UPDATE` on PostgreSQL and
///    MySQL) first, and a row whose value changed since step 1 is left alone and counted in
///    [`MigrationReport::rows_changed`].
///
/// Any failure in steps 2–3 aborts before step 4: no row is rewritten, and copies already made
/// are unreferenced objects in `to` (garbage collection reclaims them).
///
/// **What stays as it was.** The attribute's declared store (its `:<blob@a>:` column comment)
/// is not changed, so new inserts still go to `from`. Reads follow each row's metadata, which
/// now names `to`, in dj-rs and in DataJoint Python alike. The objects in `from` are left in
/// place; once no row references them, garbage collection of `from` reclaims them (after its
/// grace period).
#[derive(Clone)]
pub struct Migration {
    table: Table,
    attribute: String,
    from: String,
    to: String,
    restriction: Option<Restriction>,
    dry_run: bool,
    progress: Option<ProgressHook>,
}

impl fmt::Debug for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migration")
            .field("table", &self.table.full_name())
            .field("attribute", &self.attribute)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

/// One row to rewrite.
struct RowPlan {
    key: Row,
    old: Json,
    new: Value,
}

/// An expected content hash of a source object.
type Expected = Option<(HashAlgorithm, String)>;

#[derive(Default)]
struct Copied {
    copied: u64,
    present: u64,
    bytes: u64,
}

impl Migration {
    /// Move the objects of `table.attribute` from store `from` to store `to`.
    pub fn new(table: &Table, attribute: &str, from: &str, to: &str) -> Migration {
        Migration {
            table: table.clone(),
            attribute: attribute.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            restriction: None,
            dry_run: false,
            progress: None,
        }
    }

    /// Migrate only the rows matching `r`.
    pub fn restrict(mut self, r: impl Into<Restriction>) -> Migration {
        self.restriction = Some(r.into());
        self
    }

    /// Report what would move without copying or rewriting anything.
    pub fn dry_run(mut self, dry_run: bool) -> Migration {
        self.dry_run = dry_run;
        self
    }

    /// Call `hook` with progress reports.
    pub fn progress(mut self, hook: impl Fn(&Progress) + Send + Sync + 'static) -> Migration {
        self.progress = Some(Arc::new(hook));
        self
    }

    fn fail(&self, path: Option<&str>, message: impl Into<String>) -> Error {
        Error::Migration(Box::new(MigrationError {
            table: self.table.full_name(),
            attribute: self.attribute.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            path: path.map(str::to_string),
            message: message.into(),
        }))
    }

    /// Run the migration.
    pub async fn run(&self) -> Result<MigrationReport> {
        let full = self.table.full_name();
        let conn = self.table.connection().clone();
        let info =
            self.table
                .attr_info(&self.attribute)
                .ok_or_else(|| Error::UnknownAttribute {
                    table: full.clone(),
                    attribute: self.attribute.clone(),
                    heading: Vec::new(),
                })?;
        let resolved = match (&info.resolved, info.has_codec) {
            (Some(r), _) if r.store.is_some() => r.clone(),
            (None, true) => {
                return Err(self.fail(
                    None,
                    info.resolve_error
                        .clone()
                        .unwrap_or_else(|| "its codec cannot be resolved".into()),
                ));
            }
            _ => {
                return Err(self.fail(None, "the attribute is not stored in an object store"));
            }
        };
        if self.from == self.to {
            return Err(self.fail(None, "the source and target stores are the same"));
        }
        let stores = conn.stores();
        let src = stores
            .get(&self.from)
            .map_err(|e| self.fail(None, e.to_string()))?;
        let dst = stores
            .get(&self.to)
            .map_err(|e| self.fail(None, e.to_string()))?;
        let attr = StoreAttr {
            attribute: self.attribute.clone(),
            resolved,
        };
        let mut rep = MigrationReport {
            table: full.clone(),
            attribute: self.attribute.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            dry_run: self.dry_run,
            ..MigrationReport::default()
        };

        // 1. Plan.
        let mut names: Vec<String> = self
            .table
            .heading()
            .primary_key()
            .iter()
            .map(|s| s.to_string())
            .collect();
        names.push(self.attribute.clone());
        let mut query = self.table.query().attrs(names);
        if let Some(r) = &self.restriction {
            query = query.restrict(r.clone());
        }
        let rows = query.fetch_stored().await?;
        let mut plans: Vec<RowPlan> = Vec::new();
        // Path → the hash its metadata promises, if any.
        let mut objects: Vec<(String, Expected)> = Vec::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for row in rows {
            let Some(v) = row.get(&self.attribute).filter(|v| !v.is_null()) else {
                continue;
            };
            rep.rows += 1;
            let Some(json) = scan::as_json(v) else {
                return Err(self.fail(
                    None,
                    format!(
                        "row {}: the stored value is not JSON metadata, so its store cannot be rewritten",
                        scan::key_text(&self.table, &row)
                    ),
                ));
            };
            let refs: Vec<_> = attr
                .resolved
                .referenced_paths(v)
                .into_iter()
                .filter(|r| scan::effective_store(r, &attr) == Some(self.from.as_str()))
                .collect();
            if refs.is_empty() {
                continue;
            }
            let top = json
                .get("path")
                .and_then(Json::as_str)
                .map(scan::normalize_path);
            for r in &refs {
                let path = scan::normalize_path(&r.path);
                if top.as_deref() != Some(path.as_str()) {
                    return Err(self.fail(
                        Some(&path),
                        format!(
                            "row {}: the metadata references this path besides its own `path`; \
                             only metadata with one top-level `path` and `store` can be migrated",
                            scan::key_text(&self.table, &row)
                        ),
                    ));
                }
                if seen.insert(path.clone()) {
                    let expected = json.get("hash").and_then(Json::as_str).map(|h| {
                        let named = json.get("hash_algorithm").and_then(Json::as_str);
                        (metadata_hash_algorithm(named, h), h.to_string())
                    });
                    objects.push((path, expected));
                }
            }
            let mut new = json.clone();
            if let Some(map) = new.as_object_mut() {
                map.insert("store".into(), Json::String(self.to.clone()));
            }
            let new = match v {
                Value::String(_) => Value::String(new.to_string()),
                _ => Value::Json(new),
            };
            let key: Row = self
                .table
                .heading()
                .primary_key()
                .iter()
                .filter_map(|k| row.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            plans.push(RowPlan {
                key,
                old: json,
                new,
            });
        }
        rep.rows_to_migrate = plans.len() as u64;
        rep.objects = objects.len() as u64;
        if self.dry_run || plans.is_empty() {
            return Ok(rep);
        }

        // 2–3. Copy and verify.
        let total = objects.len() as u64;
        let concurrency = conn.config().transfer_concurrency.max(1);
        let (src, dst) = (src.as_ref(), dst.as_ref());
        let mut results = futures::stream::iter(objects)
            .map(|(path, expected)| async move {
                let r = copy_object(src, dst, &path, expected).await;
                (path, r)
            })
            .buffer_unordered(concurrency);
        let mut first_error: Option<Error> = None;
        let mut done = 0u64;
        while let Some((path, r)) = results.next().await {
            match r {
                Ok(c) => {
                    rep.objects_copied += c.copied;
                    rep.objects_present += c.present;
                    rep.bytes_copied += c.bytes;
                }
                Err(message) => {
                    tracing::warn!(store = self.to, path, message, "migration copy failed");
                    if first_error.is_none() {
                        first_error = Some(self.fail(Some(&path), message));
                    }
                }
            }
            done += 1;
            report(
                &self.progress,
                Progress {
                    phase: Phase::Copy,
                    done,
                    total: Some(total),
                    bytes: rep.bytes_copied,
                },
            );
        }
        drop(results);
        if let Some(e) = first_error {
            return Err(e);
        }

        // 4. Rewrite the metadata, in one transaction.
        let backend = conn.backend();
        let table_sql = qualified(backend, self.table.schema_name(), self.table.name());
        let mut tx = conn.begin_tx().await?;
        let total = plans.len() as u64;
        for (i, plan) in plans.into_iter().enumerate() {
            let where_key = Restriction::Key(plan.key);
            let mut sel = Sql::new(backend);
            sel.push("SELECT ")
                .ident(&self.attribute)
                .push(" FROM ")
                .push(&table_sql)
                .push(" WHERE ");
            where_key.render(&self.table, &mut sel)?;
            sel.push(crate::dialect::dialect(backend).lock_rows_clause());
            let current = tx
                .exec()
                .fetch(&sel, &[info.kind])
                .await
                .map_err(|e| e.in_table(&full))?;
            let unchanged = current
                .first()
                .and_then(|r| r.first())
                .and_then(scan::as_json)
                .is_some_and(|j| j == plan.old);
            if !unchanged {
                rep.rows_changed += 1;
                continue;
            }
            let p = to_param(&plan.new, &info.final_type).map_err(|message| Error::BadValue {
                table: full.clone(),
                attribute: self.attribute.clone(),
                message,
            })?;
            let mut upd = Sql::new(backend);
            upd.push("UPDATE ")
                .push(&table_sql)
                .push(" SET ")
                .ident(&self.attribute)
                .push(" = ");
            upd.bind(p, info.pg_cast.as_deref());
            upd.push(" WHERE ");
            where_key.render(&self.table, &mut upd)?;
            tx.exec()
                .execute(&upd)
                .await
                .map_err(|e| crate::error::classify_db(&full, e))?;
            rep.rows_migrated += 1;
            report(
                &self.progress,
                Progress {
                    phase: Phase::Rewrite,
                    done: i as u64 + 1,
                    total: Some(total),
                    bytes: 0,
                },
            );
        }
        tx.commit().await.map_err(|e| e.in_table(&full))?;
        tracing::info!(
            table = full,
            attribute = self.attribute,
            from = self.from,
            to = self.to,
            rows = rep.rows_migrated,
            "migrated"
        );
        Ok(rep)
    }
}

/// Copy the object (or folder) at `path` from `src` to `dst` and verify the copies. The error is
/// a message; the caller names the path.
async fn copy_object(
    src: &dyn Store,
    dst: &dyn Store,
    path: &str,
    expected: Expected,
) -> std::result::Result<Copied, String> {
    let key = StorePath::parse(path).map_err(|e| e.to_string())?;
    let mut files: Vec<(StorePath, u64, Expected)> = Vec::new();
    match src.head(&key).await {
        Ok(m) => files.push((key.clone(), m.size, expected)),
        Err(e) if e.is_not_found() => {
            // A folder object: every file below the path.
            let listed = src
                .list_all(Some(&key))
                .await
                .map_err(|e| format!("cannot list the folder in the source store: {e}"))?;
            if listed.is_empty() {
                return Err("the object is not in the source store".into());
            }
            files.extend(listed.into_iter().map(|m| (m.path, m.size, None)));
        }
        Err(e) => return Err(format!("cannot read the source object: {e}")),
    }
    let manifest = StorePath::parse(format!("{path}.manifest.json")).map_err(|e| e.to_string())?;
    match src.head(&manifest).await {
        Ok(m) => files.push((manifest, m.size, None)),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(format!("cannot read the source manifest: {e}")),
    }
    let mut out = Copied::default();
    for (file, size, expected) in files {
        let copied = copy_file(src, dst, &file, size, expected)
            .await
            .map_err(|m| {
                if file == key {
                    m
                } else {
                    format!("`{file}`: {m}")
                }
            })?;
        if copied {
            out.copied += 1;
            out.bytes += size;
        } else {
            out.present += 1;
        }
    }
    Ok(out)
}

/// Hashes of a stream: BLAKE3 always, and the metadata's algorithm when one is expected.
struct Digest {
    len: u64,
    blake3: ContentHasher,
    expected: Option<ContentHasher>,
}

impl Digest {
    fn new(expected: &Expected) -> Self {
        Digest {
            len: 0,
            blake3: ContentHasher::new(HashAlgorithm::Blake3),
            expected: expected.as_ref().map(|(a, _)| ContentHasher::new(*a)),
        }
    }
    fn update(&mut self, chunk: &[u8]) {
        self.len += chunk.len() as u64;
        self.blake3.update(chunk);
        if let Some(h) = &mut self.expected {
            h.update(chunk);
        }
    }
    fn finish(self) -> (u64, String, Option<String>) {
        (
            self.len,
            self.blake3.finalize(),
            self.expected.map(ContentHasher::finalize),
        )
    }
}

/// Feed a chunk to a digest, on the blocking pool when it is large.
async fn digest_chunk(mut d: Digest, chunk: Bytes) -> dj_core::Result<Digest> {
    run_blocking(
        chunk.len() > BLOCKING_THRESHOLD,
        "object",
        "hashing task",
        move || {
            d.update(&chunk);
            d
        },
    )
    .await
}

/// Read an object in full and digest it.
async fn digest(
    store: &dyn Store,
    key: &StorePath,
    expected: &Expected,
) -> dj_core::Result<(u64, String, Option<String>)> {
    let got = store.get_opts(key, GetOptions::default()).await?;
    let mut d = Digest::new(expected);
    let mut stream = got.stream;
    while let Some(chunk) = stream.next().await {
        d = digest_chunk(d, chunk?).await?;
    }
    Ok(d.finish())
}

/// Copy one file unless the target already holds the same bytes; verify the result. Returns
/// whether bytes were copied.
async fn copy_file(
    src: &dyn Store,
    dst: &dyn Store,
    key: &StorePath,
    size: u64,
    expected: Expected,
) -> std::result::Result<bool, String> {
    let check_source = |hash: Option<String>| -> std::result::Result<(), String> {
        if let (Some((_, want)), Some(got)) = (&expected, hash)
            && *want != got
        {
            return Err(format!(
                "the source object is corrupt (content hash {got}, metadata says {want}); not migrated"
            ));
        }
        Ok(())
    };
    // Already there with the same content? An old copy may be an orphan that a collection of
    // the target store is about to delete: copy it again instead, which makes it young
    // (`dj_core::reuse`).
    if let Ok(m) = dst.head(key).await
        && m.size == size
        && !dj_core::reuse::must_refresh(m.last_modified, chrono::Utc::now())
    {
        let (slen, sb3, shash) = digest(src, key, &expected)
            .await
            .map_err(|e| format!("cannot read the source object: {e}"))?;
        check_source(shash)?;
        let (dlen, db3) = hash_stored(dst, key, HashAlgorithm::Blake3)
            .await
            .map_err(|e| format!("cannot read the existing copy: {e}"))?;
        if slen == dlen && sb3 == db3 {
            return Ok(false);
        }
    }
    // Copy, digesting the source as it streams.
    let got = src
        .get_opts(key, GetOptions::default())
        .await
        .map_err(|e| format!("cannot read the source object: {e}"))?;
    let digest_cell = Arc::new(Mutex::new(Digest::new(&expected)));
    let (slen, sb3, _) = if size <= SINGLE_PUT_MAX {
        let data = got
            .bytes()
            .await
            .map_err(|e| format!("reading the source object failed: {e}"))?;
        let result = digest_chunk(Digest::new(&expected), data.clone())
            .await
            .map_err(|e| e.to_string())?
            .finish();
        check_source(result.2.clone())?;
        dst.put(key, data)
            .await
            .map_err(|e| format!("writing the copy failed: {e}"))?;
        result
    } else {
        let cell = Arc::clone(&digest_cell);
        let stream = got
            .stream
            .then(move |chunk| {
                let cell = Arc::clone(&cell);
                async move {
                    let c = chunk?;
                    let part = c.clone();
                    run_blocking(
                        c.len() > BLOCKING_THRESHOLD,
                        "object",
                        "hashing task",
                        move || {
                            cell.lock().unwrap_or_else(|e| e.into_inner()).update(&part);
                        },
                    )
                    .await?;
                    Ok(c)
                }
            })
            .boxed();
        dst.put_stream(key, stream, PART_SIZE)
            .await
            .map_err(|e| format!("writing the copy failed: {e}"))?;
        let d = std::mem::replace(
            &mut *digest_cell.lock().unwrap_or_else(|e| e.into_inner()),
            Digest::new(&None),
        );
        let result = d.finish();
        if let Err(m) = check_source(result.2.clone()) {
            // Do not leave a corrupt copy where a reader might take it for the real thing.
            if let Err(e) = dst.delete(key).await {
                tracing::warn!(path = %key, error = %e, "cannot remove a corrupt copy");
            }
            return Err(m);
        }
        result
    };
    if slen != size {
        return Err(format!(
            "the source object changed while it was copied ({slen} bytes read, {size} listed)"
        ));
    }
    // Verify the copy.
    let (dlen, db3) = hash_stored(dst, key, HashAlgorithm::Blake3)
        .await
        .map_err(|e| format!("cannot read the copy back: {e}"))?;
    if dlen != slen || db3 != sb3 {
        return Err(format!(
            "the copy differs from the source ({dlen} bytes, BLAKE3 {db3}; the source has {slen} bytes, BLAKE3 {sb3})"
        ));
    }
    Ok(true)
}
