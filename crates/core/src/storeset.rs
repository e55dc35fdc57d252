//! The stores of one connection: named stores opened on first use and cached.
//!
//! Opening goes through the registered protocols ([`StoreSet::get`], in the registry module);
//! this module only keeps what is open.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use crate::config::{Config, StoreSpec};
use crate::error::Result;
use crate::store::Store;

/// The stores of one connection, built on first use from the configuration through the registered
/// protocols, and cached.
pub struct StoreSet {
    pub(crate) config: Arc<Config>,
    pub(crate) stores: RwLock<HashMap<String, Arc<dyn Store>>>,
}

impl fmt::Debug for StoreSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .stores
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        f.debug_struct("StoreSet")
            .field("open", &names)
            .finish_non_exhaustive()
    }
}

impl StoreSet {
    /// Stores for `config`, none opened yet. `config` is this crate's [`Config`] (owned or in an
    /// `Arc`) or anything that converts into one, such as `dj-config`'s whole configuration.
    pub fn new(config: impl Into<Arc<Config>>) -> Self {
        StoreSet {
            config: config.into(),
            stores: RwLock::new(HashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// Use `store` for `name` instead of building it from the configuration (for tests, or stores
    /// built by hand).
    pub fn insert(&self, name: impl Into<String>, store: Arc<dyn Store>) {
        self.stores
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.into(), store);
    }

    /// The spec of a configured store ([`StoresConfig::get`](crate::config::StoresConfig::get)).
    pub fn spec(&self, name: &str) -> Result<&StoreSpec> {
        self.config.stores.get(name)
    }
}
