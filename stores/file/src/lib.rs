//! # dj-store-file: the `file` store protocol
//!
//! A store in a local directory (the spec's `location`, which must exist), through
//! `object_store`'s `LocalFileSystem` with fsync on: every write goes to a temporary file that is
//! synced and atomically renamed into place, so readers never see a partial object and a
//! completed write survives a crash. Create-if-absent writes are exclusive (published by hard
//! link), so of several racing writers exactly one creates the object. Keys map to files at the
//! same relative path, byte for byte, so DataJoint Python reads what dj-rs writes and the other
//! way round. Errors are `dj_core::Error`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! use dj_core::store::{StoreExt, StorePath};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = dj_store_file::FileStore::open("main", dir.path())?;
//! let key = StorePath::parse("_hash/lab/l23dxo7ad3xnbe6lek5y6wwnym")?;
//! store.put(&key, "hello world".into()).await?;
//! assert!(dir.path().join("_hash/lab/l23dxo7ad3xnbe6lek5y6wwnym").is_file());
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;

use dj_core::Result;
use dj_core::config::{Config, StoreSpec};
use dj_core::error::Error;
use dj_core::object_store_adapter::ObjectStoreAdapter;
use dj_core::store::{Capabilities, Store};
use object_store::local::LocalFileSystem;

/// Constructors for `file` stores.
#[derive(Debug, Clone, Copy)]
pub struct FileStore;

impl FileStore {
    /// Open the directory `root` (which must exist) as the store called `name`.
    pub fn open(name: &str, root: impl AsRef<Path>) -> Result<Arc<dyn Store>> {
        let root = root.as_ref();
        let meta = std::fs::metadata(root).map_err(|e| Error::Config {
            key: format!("stores.{name}.location"),
            message: format!("the directory {} cannot be used: {e}", root.display()),
        })?;
        if !meta.is_dir() {
            return Err(Error::Config {
                key: format!("stores.{name}.location"),
                message: format!("{} is not a directory", root.display()),
            });
        }
        let fs = LocalFileSystem::new_with_prefix(root)
            .map_err(|e| Error::Config {
                key: format!("stores.{name}.location"),
                message: e.to_string(),
            })?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        let caps = Capabilities {
            min_part_size: 1,
            ..Capabilities::default()
        };
        Ok(Arc::new(
            ObjectStoreAdapter::unprefixed(name, Arc::new(fs)).with_capabilities(caps),
        ))
    }
}

/// Build a `file` store from its spec (the factory registered for the protocol).
pub fn create(spec: &StoreSpec, _config: &Config) -> Result<Arc<dyn Store>> {
    FileStore::open(&spec.name, &spec.location)
}

dj_core::submit_store_protocol!("file", create, allowed = &[], required = &["location"]);
