//! Staged inserts: write `<object@>` files and folders in place, then insert the row.
//!
//! [`Table::staged_insert1`] starts a row from its primary key. For each `<object@>` attribute
//! the caller asks for a writer at the object's final path ([`StagedInsert::file`] for one file,
//! [`StagedInsert::folder`] for a folder of files, e.g. a Zarr array), fills it, and
//! [`StagedInsert::commit`] computes the metadata (size, item count, checksums, manifest) and
//! inserts the row. If anything fails, or the staged insert is aborted or dropped without a
//! commit, everything it wrote is removed and no row appears.
//!
//! The paths are the ones a normal insert builds (`{schema}/{sql_table}/{pk=value…}/{field}_{token}`,
//! with the SQL table name, not the class name), so the layout is the same however a row was
//! written.
//!
//! ```
//! use dj_object::ObjectRef;
//! use dj_core::value::Value;
//! use dj_schema::{Connection, Tier, row};
//! # use dj_codec_object as _; use dj_store_memory as _;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let mut config = dj_config::Config::default();
//! config.database.path = Some(":memory:".into());
//! config.stores.specs.insert("main".into(), dj_config::StoreSpec::new("main", "memory", ""));
//! let conn = Connection::open(&config).await?;
//! let lab = conn.schema("lab").await?;
//! let scan = lab
//!     .declare("Scan", Tier::Manual, "scan_id : int32\n---\nframes : <object@main>")
//!     .await?;
//!
//! let mut staged = scan.staged_insert1(row! { "scan_id" => 1 })?;
//! let frames = staged.folder("frames", Some(".zarr"))?;
//! frames.put("zarr.json", "{}".into()).await?;
//! frames.put("c/0/0", vec![0u8; 64].into()).await?;
//! staged.commit().await?;
//!
//! let row = scan.query().fetch_rows().await?.remove(0);
//! let obj = row["frames"].as_domain::<ObjectRef>().unwrap();
//! assert!(obj.is_dir());
//! assert_eq!(obj.walk().await?.len(), 2);
//! obj.verify().await?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::sync::Arc;

use dj_core::store::{Store, StorePath};
use dj_core::value::Value;
use dj_layout::StoreLayout;
use dj_object::{self as object, FolderWriter, ObjectMetadata, ObjectWriter};
use indexmap::IndexMap;
use serde::Serialize;
use std::any::Any;

use crate::Row;
use crate::error::{Error, Result};
use crate::serde_row::to_row;
use crate::table::Table;

/// The codec staged inserts write for.
const OBJECT_CODEC: &str = "object";

enum Staged {
    /// A single file: its key, and its metadata once finished.
    File {
        key: StorePath,
        ext: Option<String>,
        meta: Option<Box<ObjectMetadata>>,
    },
    /// A folder being filled.
    Folder {
        writer: FolderWriter,
        ext: Option<String>,
    },
}

struct Entry {
    field: String,
    store: Arc<dyn Store>,
    staged: Staged,
}

impl Entry {
    fn key(&self) -> StorePath {
        match &self.staged {
            Staged::File { key, .. } => key.clone(),
            Staged::Folder { writer, .. } => writer.key().clone(),
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.staged, Staged::Folder { .. })
    }
}

/// A row being built with objects written in place. See the [module docs](self).
pub struct StagedInsert {
    table: Table,
    row: Row,
    key: IndexMap<String, Value>,
    entries: Vec<Entry>,
    done: bool,
}

impl fmt::Debug for StagedInsert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<&str> = self.entries.iter().map(|e| e.field.as_str()).collect();
        f.debug_struct("StagedInsert")
            .field("table", &self.table.full_name())
            .field("key", &self.key)
            .field("objects", &fields)
            .finish_non_exhaustive()
    }
}

impl Table {
    /// Start a staged insert of one row. `row` must hold the whole primary key; it may hold other
    /// attributes too (more can be set with [`StagedInsert::set`]).
    pub fn staged_insert1<R: Serialize + Any>(&self, row: R) -> Result<StagedInsert> {
        let full = self.full_name();
        let row = to_row(&row).map_err(|e| e.in_table(&full))?;
        let mut key = IndexMap::new();
        for a in self.heading().attributes.iter().filter(|a| a.in_key) {
            match row.get(&a.name) {
                Some(v) if !v.is_null() => {
                    key.insert(a.name.clone(), v.clone());
                }
                _ => {
                    return Err(Error::MissingKey {
                        table: full,
                        attribute: a.name.clone(),
                    });
                }
            }
        }
        Ok(StagedInsert {
            table: self.clone(),
            row,
            key,
            entries: Vec::new(),
            done: false,
        })
    }
}

impl StagedInsert {
    /// The table the row goes to.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Set a (non-object) attribute of the row.
    pub fn set(&mut self, attribute: &str, value: impl Into<Value>) -> &mut Self {
        self.row.insert(attribute.to_string(), value.into());
        self
    }

    /// Check that `field` is an `<object@>` attribute not staged yet; its store and new key.
    fn target(
        &self,
        field: &str,
        ext: Option<&str>,
    ) -> Result<(Arc<dyn Store>, StorePath, Option<String>)> {
        let full = self.table.full_name();
        let refused = |message: String| Error::BadValue {
            table: full.clone(),
            attribute: field.to_string(),
            message,
        };
        let info = self
            .table
            .attr_info(field)
            .ok_or_else(|| Error::UnknownAttribute {
                table: full.clone(),
                attribute: field.to_string(),
                heading: Vec::new(),
            })?;
        let resolved = info
            .resolved
            .as_ref()
            .filter(|r| r.chain.first().is_some_and(|c| c.name() == OBJECT_CODEC))
            .ok_or_else(|| refused("staged inserts write <object@> attributes only".to_string()))?;
        if self.entries.iter().any(|e| e.field == field) || self.row.contains_key(field) {
            return Err(refused(
                "this attribute is already staged for the row".into(),
            ));
        }
        let store_name = resolved
            .store
            .clone()
            .ok_or_else(|| refused("the attribute has no store".into()))?;
        let conn = self.table.connection();
        let at = |e| Error::core_at(&full, field, e);
        let store = conn.stores().get(&store_name).map_err(at)?;
        let spec = conn.stores().spec(&store_name).map_err(at)?;
        let ext = dj_layout::normalize_ext(ext);
        let (key, _token) = StoreLayout::from(spec)
            .new_schema_path(
                self.table.schema_name(),
                self.table.name(),
                field,
                self.key.iter().map(|(k, v)| (k.as_str(), v)),
                ext.as_deref(),
            )
            .map_err(at)?;
        Ok((store, key, ext))
    }

    /// A writer for a single-file object at `field`'s final path. Fill it, then hand it back
    /// with [`StagedInsert::finish_file`].
    pub fn file(&mut self, field: &str, ext: Option<&str>) -> Result<ObjectWriter> {
        let (store, key, ext) = self.target(field, ext)?;
        self.entries.push(Entry {
            field: field.to_string(),
            store: Arc::clone(&store),
            staged: Staged::File {
                key: key.clone(),
                ext,
                meta: None,
            },
        });
        Ok(ObjectWriter::new(store, key))
    }

    /// Finish a writer from [`StagedInsert::file`], making the file visible and recording its
    /// size and checksum for the row.
    pub async fn finish_file(&mut self, writer: ObjectWriter) -> Result<()> {
        let full = self.table.full_name();
        let Some(entry) = self
            .entries
            .iter_mut()
            .find(|e| matches!(&e.staged, Staged::File { key, .. } if key == writer.key()))
        else {
            return Err(Error::Refused {
                table: full,
                message: format!(
                    "the writer for `{}` does not belong to this staged insert",
                    writer.key()
                ),
            });
        };
        let ext = match &entry.staged {
            Staged::File { ext, .. } => ext.clone(),
            Staged::Folder { .. } => None,
        };
        let meta = writer
            .finish(ext)
            .await
            .map_err(|e| Error::core_at(&full, &entry.field, e))?;
        if let Staged::File { meta: m, .. } = &mut entry.staged {
            *m = Some(Box::new(meta));
        }
        Ok(())
    }

    /// A folder object at `field`'s final path: write its files through the returned handle
    /// (clones may write concurrently); the manifest is written on commit.
    pub fn folder(&mut self, field: &str, ext: Option<&str>) -> Result<FolderWriter> {
        let (store, key, ext) = self.target(field, ext)?;
        let writer = FolderWriter::new(Arc::clone(&store), key);
        self.entries.push(Entry {
            field: field.to_string(),
            store,
            staged: Staged::Folder {
                writer: writer.clone(),
                ext,
            },
        });
        Ok(writer)
    }

    /// Compute the metadata of every staged object and insert the row. On failure everything
    /// written is removed and the error returned.
    pub async fn commit(mut self) -> Result<()> {
        let result = self.commit_inner().await;
        if result.is_err() {
            self.cleanup().await;
        }
        self.done = true;
        result
    }

    async fn commit_inner(&mut self) -> Result<()> {
        let full = self.table.full_name();
        let mut row = std::mem::take(&mut self.row);
        for entry in &self.entries {
            let meta = match &entry.staged {
                Staged::File { meta: Some(m), .. } => (**m).clone(),
                Staged::File {
                    key, meta: None, ..
                } => {
                    return Err(Error::BadValue {
                        table: full,
                        attribute: entry.field.clone(),
                        message: format!(
                            "the writer for `{key}` was never finished (call finish_file)"
                        ),
                    });
                }
                Staged::Folder { writer, ext } => writer
                    .finish(ext.clone())
                    .await
                    .map_err(|e| Error::core_at(&full, &entry.field, e))?,
            };
            row.insert(entry.field.clone(), Value::Json(meta.to_json()));
        }
        self.table.insert1(&row).await
    }

    /// Remove everything written and drop the row.
    pub async fn abort(mut self) -> Result<()> {
        self.cleanup().await;
        self.done = true;
        Ok(())
    }

    async fn cleanup(&mut self) {
        for entry in std::mem::take(&mut self.entries) {
            remove(entry).await;
        }
    }
}

async fn remove(entry: Entry) {
    let key = entry.key();
    if let Err(e) = object::remove_object(&entry.store, &key, entry.is_dir()).await {
        tracing::warn!(
            store = entry.store.name(),
            path = %key,
            error = %e,
            "could not remove an object of an abandoned staged insert; GC will reclaim it"
        );
    }
}

impl Drop for StagedInsert {
    fn drop(&mut self) {
        if self.done || self.entries.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut self.entries);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    for entry in entries {
                        remove(entry).await;
                    }
                });
            }
            Err(_) => {
                for entry in entries {
                    tracing::warn!(
                        store = entry.store.name(),
                        path = %entry.key(),
                        "a staged insert was dropped outside a runtime; its objects are left for GC"
                    );
                }
            }
        }
    }
}
