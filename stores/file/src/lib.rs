//! # dj-store-file: the `file` store protocol
//!
//! A store in a local directory (the spec's `location`, which must exist), through
//! `object_store`'s `LocalFileSystem` with fsync on:
//!
//! - **Atomic writes.** Every write goes to a staging file beside its target that is synced and
//!   then renamed into place, so readers never see a partial object and a completed write
//!   survives a crash (the file and its parent directory are fsync'd before the write returns).
//! - **Exclusive create.** Create-if-absent writes publish the staging file with a hard link,
//!   which fails if the target exists: of several racing writers exactly one creates the object.
//! - **Literal layout.** A key maps to the file at the same relative path, byte for byte (spaces,
//!   unicode and `%` included), so DataJoint Python reads what dj-rs writes and the other way round.
//!   Staging files are named `<name>#<digits>`; keys whose last segment looks like that are
//!   refused with an error naming the key.
//! - Empty directories are removed when their last object is deleted.
//! - **Conditional deletes are atomic.** [`Store::delete_if_older`] (what garbage collection
//!   calls) renames the object aside to a staging name, checks the modification time of the file
//!   it moved, and puts it back when it is younger than the cutoff: a writer that rewrote the
//!   object just before keeps it, and one that writes it just after creates a new file.
//! - **Leftovers of killed writes.** A process killed mid-write leaves its staging file (one
//!   killed after a create-if-absent published it leaves a hard link of the object), which
//!   listings hide. [`Store::list_incomplete`] finds them below a prefix, with their size, hard
//!   link count and modification time, and [`Store::remove_incomplete`] removes one, after
//!   checking again that it was not modified after the cutoff. Symbolic links are not followed.
//!
//! The crate registers the protocol `file` for `dj_core::registry`. It has no error type of its
//! own: everything is a [`dj_core::Error`] naming the store and the key (or the
//! `stores.<name>.location` key, for a bad directory).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! use dj_core::store::{Store, StoreExt, StorePath};
//! use dj_store_file::FileStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = FileStore::new("main", dir.path())?;
//! let key = StorePath::parse("_hash/lab/l23dxo7ad3xnbe6lek5y6wwnym")?;
//! store.put(&key, "hello world".into()).await?;
//! assert!(dir.path().join("_hash/lab/l23dxo7ad3xnbe6lek5y6wwnym").is_file());
//! assert_eq!(&store.get(&key).await?[..], b"hello world");
//! // Create-if-absent does not replace.
//! assert!(store.put_if_absent(&key, "other".into()).await?
//!     == dj_core::store::PutOutcome::AlreadyExisted);
//! # Ok(()) }
//! ```

mod staging;
mod verified;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use dj_core::Result;
use dj_core::config::{SpecContext, StoreSpec};
use dj_core::error::Error;
use dj_core::store::{
    Capabilities, ConditionalDelete, ExpectedDigest, GetOptions, GetResult, IncompleteKind,
    IncompleteRemoval, IncompleteWrite, MultipartUpload, ObjectMeta, PutOptions, PutResult, Store,
    StorePath,
};
use dj_rt::task::run_blocking;
use dj_store_object_store::ObjectStoreAdapter;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;

/// A store in a local directory.
#[derive(Clone)]
pub struct FileStore {
    root: PathBuf,
    inner: ObjectStoreAdapter,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("name", &self.inner.name())
            .field("root", &self.root)
            .finish()
    }
}

impl fmt::Display for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "store `{}` (directory {})",
            self.inner.name(),
            self.root.display()
        )
    }
}

impl FileStore {
    /// Open the directory `root`, which must exist, as the store called `name`.
    ///
    /// A missing or unusable directory is an [`Error::Config`] naming `stores.<name>.location`
    /// and the directory.
    pub fn new(name: &str, root: impl AsRef<Path>) -> Result<FileStore> {
        let given = root.as_ref();
        let location_error = |message: String| Error::Config {
            key: format!("stores.{name}.location"),
            message,
        };
        let meta = std::fs::metadata(given).map_err(|e| {
            location_error(format!(
                "the directory {} cannot be used: {e}",
                given.display()
            ))
        })?;
        if !meta.is_dir() {
            return Err(location_error(format!(
                "{} is not a directory",
                given.display()
            )));
        }
        let root = std::fs::canonicalize(given).map_err(|e| {
            location_error(format!(
                "the directory {} cannot be used: {e}",
                given.display()
            ))
        })?;
        let fs = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| location_error(format!("{}: {e}", root.display())))?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        let capabilities = Capabilities::default()
            .with_create_if_absent(true)
            .with_native_multipart(true)
            .with_ranged_get(true)
            .with_durable_writes(true)
            .with_min_part_size(1)
            .with_verified_get(true);
        let inner = ObjectStoreAdapter::unprefixed(name, Arc::new(fs))
            .with_capabilities(capabilities)
            .with_backend_description(format!("directory {}", root.display()));
        Ok(FileStore { root, inner })
    }

    /// [`FileStore::new`], boxed as a shareable `dyn Store`.
    pub fn open(name: &str, root: impl AsRef<Path>) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(FileStore::new(name, root)?))
    }

    /// The store's directory, canonicalized.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local file an object lives in (whether or not it exists).
    pub fn file_path(&self, key: &StorePath) -> PathBuf {
        staging::local_path(&self.root, key.as_str())
    }

    /// A whole-object read verified against `want` (see [`verified`]): one blocking task opens,
    /// reads and hashes the file.
    async fn get_verified(&self, path: &StorePath, want: ExpectedDigest) -> Result<GetResult> {
        let store = || self.inner.name().to_string();
        if staging::staging_name(path.file_name()).is_some() {
            return Err(Error::invalid_path(
                path.as_str(),
                format!(
                    "{self} has no such object: a last segment `<name>#<digits>` is the name of \
                     a staging file"
                ),
            ));
        }
        let file = self.file_path(path);
        let (algorithm, digest) = (want.algorithm, want.digest.clone());
        let outcome = run_blocking(true, "file store", "a verified read", move || {
            verified::read_verified(&file, algorithm, &digest)
        })
        .await?;
        let io = |e: std::io::Error| Error::Store {
            store: store(),
            operation: "get",
            path: path.as_str().to_string(),
            retryable: false,
            source: Box::new(e),
        };
        let (buf, meta) = match outcome.map_err(io)? {
            verified::Outcome::Bytes(buf, meta) => (buf, meta),
            verified::Outcome::Missing => {
                return Err(Error::NotFound {
                    store: store(),
                    path: path.as_str().to_string(),
                });
            }
            verified::Outcome::Mismatch(actual) => {
                return Err(Error::Integrity {
                    store: store(),
                    path: path.as_str().to_string(),
                    message: format!(
                        "{} is {actual}, expected {} (the object is corrupted)",
                        want.what, want.digest
                    ),
                });
            }
        };
        let modified = meta.modified().map_err(io)?;
        let size = buf.len() as u64;
        let object = ObjectMeta {
            path: path.clone(),
            size,
            last_modified: DateTime::<Utc>::from(modified),
            e_tag: Some(e_tag(&meta, modified, size)),
        };
        let data = Bytes::from(buf);
        Ok(GetResult {
            meta: object,
            range: 0..size,
            stream: futures::stream::once(async move { Ok(data) }).boxed(),
        })
    }

    /// An error of a leftover listing or removal, naming the store, the key and the local file.
    fn staging_error(
        &self,
        operation: &'static str,
        key: &str,
        (local, e): staging::ScanError,
    ) -> Error {
        Error::Store {
            store: self.inner.name().to_string(),
            operation,
            path: key.to_string(),
            retryable: false,
            source: format!("{}: {e}", local.display()).into(),
        }
    }
}

#[async_trait]
impl Store for FileStore {
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
        options: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(path, payload, options).await
    }
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        match options.verify {
            None => self.inner.get_opts(path, options).await,
            Some(_) if options.range.is_some() => Err(Error::NotSupported {
                store: self.name().to_string(),
                operation: format!("a ranged read of `{path}` verified against a digest"),
            }),
            Some(want) => self.get_verified(path, want).await,
        }
    }
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        self.inner.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.inner.delete(path).await
    }
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart(path).await
    }
    async fn delete_if_older(
        &self,
        path: &StorePath,
        cutoff: DateTime<Utc>,
    ) -> Result<ConditionalDelete> {
        let file = self.file_path(path);
        let root = self.root.clone();
        let (name, key) = (self.name().to_string(), path.as_str().to_string());
        let io = move |e: std::io::Error| Error::Store {
            store: name.clone(),
            operation: "delete",
            path: key.clone(),
            retryable: false,
            source: Box::new(e),
        };
        run_blocking(true, "file store", "a conditional delete", move || {
            delete_file_if_older(&root, &file, cutoff)
        })
        .await?
        .map_err(io)
    }
    fn list_incomplete(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, Result<IncompleteWrite>> {
        let store = self.clone();
        let prefix = prefix.cloned();
        let scan = async move {
            let root = store.root.clone();
            let p = prefix.clone();
            let (found, errors) = run_blocking(
                true,
                "file store",
                "listing leftovers of interrupted writes",
                move || staging::scan(&root, p.as_ref()),
            )
            .await?;
            let prefix_str = prefix.as_ref().map_or("", StorePath::as_str);
            let mut items: Vec<Result<IncompleteWrite>> = found
                .into_iter()
                .map(|f| {
                    let kind = if staging::is_aside(&f.suffix) {
                        IncompleteKind::MovedAside
                    } else {
                        IncompleteKind::StagingFile
                    };
                    Ok(
                        IncompleteWrite::new(f.key, kind, f.suffix, f.size, f.modified.into())
                            .with_links(f.links),
                    )
                })
                .collect();
            items.extend(errors.into_iter().map(|e| {
                Err(store.staging_error(
                    "list leftovers of interrupted writes under",
                    prefix_str,
                    e,
                ))
            }));
            Ok::<_, Error>(items)
        };
        futures::stream::once(scan)
            .flat_map(|r| futures::stream::iter(r.unwrap_or_else(|e| vec![Err(e)])))
            .boxed()
    }
    async fn remove_incomplete(
        &self,
        write: &IncompleteWrite,
        not_after: DateTime<Utc>,
    ) -> Result<IncompleteRemoval> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let known = match write.kind {
            IncompleteKind::StagingFile => digits(&write.id),
            IncompleteKind::MovedAside => write.id.strip_prefix("gc").is_some_and(digits),
            _ => false,
        };
        if !known {
            return Err(Error::invalid_path(
                write.to_string(),
                format!(
                    "store `{}` (directory {}) has no such leftover: it removes only staging \
                     files `<key>#<digits>` and files moved aside `<key>#gc<digits>`",
                    self.inner.name(),
                    self.root.display()
                ),
            ));
        }
        let root = self.root.clone();
        let key = write.path.clone();
        let suffix = write.id.clone();
        let r = run_blocking(
            true,
            "file store",
            "removing a leftover of an interrupted write",
            move || staging::remove(&root, &key, &suffix, not_after.into()),
        )
        .await?;
        match r {
            Ok(staging::Removed::Freed(bytes_freed)) => {
                Ok(IncompleteRemoval::Removed { bytes_freed })
            }
            Ok(staging::Removed::Gone) => Ok(IncompleteRemoval::Gone),
            Ok(staging::Removed::Young) => Ok(IncompleteRemoval::Young),
            Err(e) => Err(self.staging_error(
                "remove the leftover of an interrupted write",
                &write.to_string(),
                e,
            )),
        }
    }
}

/// The entity tag `object_store` gives a local file (inode, modification time in microseconds
/// and size, in hexadecimal), so that a verified read reports the tag `head` does.
fn e_tag(meta: &std::fs::Metadata, modified: std::time::SystemTime, size: u64) -> String {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = {
        let _ = meta;
        0u64
    };
    let mtime = modified
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    format!("\"{inode:x}-{mtime:x}-{size:x}\"")
}

/// The marker of a file moved aside by [`Store::delete_if_older`]: `<name>#gc<digits>`.
pub const ASIDE_MARKER: &str = "#gc";

/// A name beside `file` for moving it aside, `<name>#gc<digits>`, unique within this process.
/// No key the layout writes ends like that, so garbage collection never takes it for an object;
/// [`recover_aside`] undoes a move a killed process left behind.
fn aside_name(file: &Path) -> Option<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = file.file_name()?.to_str()?;
    Some(file.with_file_name(format!("{name}{ASIDE_MARKER}{}{n:08}", std::process::id())))
}

/// The file an aside name was made from, when `aside` is one (`<name>#gc<digits>`).
pub fn aside_original(aside: &Path) -> Option<PathBuf> {
    let name = aside.file_name()?.to_str()?;
    let (original, digits) = name.rsplit_once(ASIDE_MARKER)?;
    (!original.is_empty() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| aside.with_file_name(original))
}

/// Undo a move aside that a process killed inside [`Store::delete_if_older`] left behind: put the
/// file back when its original name is free (it may be an object a writer had just rewritten;
/// if it was an orphan, a later collection deletes it again), remove it otherwise (the name holds
/// a newer write). Returns whether `aside` was an aside file.
pub fn recover_aside(aside: &Path) -> std::io::Result<bool> {
    let Some(original) = aside_original(aside) else {
        return Ok(false);
    };
    match std::fs::hard_link(aside, &original) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    }
    match std::fs::remove_file(aside) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// [`Store::delete_if_older`] for one file: rename it aside (atomic), check the moved file's age,
/// then remove it, or put it back when a writer rewrote it after `cutoff`. A writer that renames
/// a new file into place after the move is untouched: the moved file is the old one.
fn delete_file_if_older(
    root: &Path,
    file: &Path,
    cutoff: DateTime<Utc>,
) -> std::io::Result<ConditionalDelete> {
    let Some(aside) = aside_name(file) else {
        return Err(std::io::Error::other("the key has no file name"));
    };
    match std::fs::rename(file, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ConditionalDelete::Missing);
        }
        Err(e) => return Err(e),
    }
    let meta = std::fs::metadata(&aside)?;
    let modified = DateTime::<Utc>::from(meta.modified()?);
    if modified > cutoff {
        // Rewritten since the collection looked: put it back, unless a newer write already
        // took its place.
        recover_aside(&aside)?;
        return Ok(ConditionalDelete::Kept(meta.len()));
    }
    std::fs::remove_file(&aside)?;
    // Remove the directories this left empty, up to the store root (as deletes do).
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(ConditionalDelete::Deleted(meta.len()))
}

/// Build a `file` store from its spec (the factory registered for the protocol).
pub fn create(spec: &StoreSpec, _cx: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
    // Local files: nothing to retry.
    let store = FileStore::open(&spec.name, &spec.location)?;
    Ok(dj_store_layers::standard(
        store,
        dj_store_layers::Retries::Backend,
    ))
}

/// Check a `file` spec when the configuration is loaded (the check registered for the
/// protocol): no options beyond the common ones, and a `location` that is an existing directory.
/// A relative location is resolved against the configuration file's directory and recorded as
/// the resolved path.
pub fn check(spec: &mut StoreSpec, cx: &SpecContext<'_>) -> Result<()> {
    dj_core::config::check_option_keys(spec, &[], &[])?;
    spec.require_location("file system or the configuration's directory")?;
    let dir = dj_core::config::resolve_path(cx.base_dir, &spec.location);
    if !dir.is_dir() {
        return Err(Error::config(
            spec.key("location"),
            format!(
                "the directory `{}` of store `{}` does not exist (create it first)",
                dir.display(),
                spec.name
            ),
        ));
    }
    spec.location = dir.display().to_string();
    Ok(())
}

dj_core::submit_store_protocol!("file", create, check = check);
