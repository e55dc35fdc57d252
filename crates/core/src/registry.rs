//! Codec and store-protocol registration.
//!
//! Plugins register at link time with [`inventory`] (through [`submit_codec!`](crate::submit_codec)
//! and [`submit_store_protocol!`](crate::submit_store_protocol)) and at run time through
//! [`Registry::register_codec`] / [`Registry::register_protocol`]. Run-time entries win over
//! link-time ones; the same name registered twice at the same level is an error that names both.
//!
//! `inventory` only sees crates that are linked: a crate listed in `Cargo.toml` but never named in
//! code registers nothing. The `datajoint` facade names every enabled plugin crate for you.
//!
//! ```
//! use dj_core::registry::Registry;
//! // Codecs linked into this binary (none in dj-core itself).
//! let names = Registry::global().list_codecs();
//! assert!(names.iter().all(|n| !n.is_empty()));
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

use crate::codec::{Codec, CodecLookup};
use crate::config::{SpecContext, StoreSpec};
use crate::error::{Error, Result};
use crate::store::Store;
pub use crate::storeset::StoreSet;

/// A codec submitted at link time (by [`submit_codec!`](crate::submit_codec), whose
/// plumbing this is).
#[doc(hidden)]
pub struct CodecPlugin {
    /// The codec name, as used inside `<…>`.
    pub name: &'static str,
    /// Builds the codec.
    pub create: fn() -> Arc<dyn Codec>,
    /// Where it was submitted (a module path), for duplicate errors.
    pub source: &'static str,
}

/// Builds a store from its spec. The context gives what opening may need besides the spec (the
/// directory relative locations are resolved against); nothing else of the configuration
/// reaches a store.
pub type StoreFactory = fn(&StoreSpec, &SpecContext<'_>) -> Result<Arc<dyn Store>>;

/// Checks (and may complete) a store spec of a protocol when the configuration is loaded: its
/// options (unknown keys, types, required keys, credentials) and its location. Errors name
/// `stores.<name>.<key>`.
pub type StoreCheck = fn(&mut StoreSpec, &SpecContext<'_>) -> Result<()>;

/// A run-time [`StoreCheck`], which may capture data.
pub type DynStoreCheck = Arc<dyn Fn(&mut StoreSpec, &SpecContext<'_>) -> Result<()> + Send + Sync>;

/// A store protocol submitted at link time (by
/// [`submit_store_protocol!`](crate::submit_store_protocol), whose plumbing this is).
#[doc(hidden)]
pub struct StorePlugin {
    /// The protocol name used in `stores.<name>.protocol`.
    pub protocol: &'static str,
    /// Builds a store.
    pub create: StoreFactory,
    /// Checks a spec when the configuration is loaded.
    pub check: StoreCheck,
    /// Where it was submitted.
    pub source: &'static str,
}

inventory::collect!(CodecPlugin);
inventory::collect!(StorePlugin);

/// Submit a codec at link time: `submit_codec!("blob", || Arc::new(BlobCodec::default()));`
#[macro_export]
macro_rules! submit_codec {
    ($name:expr, $create:expr) => {
        $crate::inventory::submit! {
            $crate::registry::CodecPlugin { name: $name, create: $create, source: module_path!() }
        }
    };
}

/// Submit a store protocol at link time, with a check of its specs
/// (`check = fn(&mut StoreSpec, &SpecContext) -> Result<()>`, usually reading the options into
/// the crate's own options struct with [`StoreSpec::options_as`]), or with plain key lists.
///
/// `submit_store_protocol!("s3", create_fn, check = check_fn);`
/// `submit_store_protocol!("tape", create_fn, allowed = &["drive"], required = &["drive"]);`
#[macro_export]
macro_rules! submit_store_protocol {
    ($protocol:expr, $create:expr, check = $check:expr) => {
        $crate::inventory::submit! {
            $crate::registry::StorePlugin {
                protocol: $protocol,
                create: $create,
                check: $check,
                source: module_path!(),
            }
        }
    };
    ($protocol:expr, $create:expr, allowed = $allowed:expr, required = $required:expr) => {
        $crate::inventory::submit! {
            $crate::registry::StorePlugin {
                protocol: $protocol,
                create: $create,
                check: {
                    fn check(
                        spec: &mut $crate::config::StoreSpec,
                        _: &$crate::config::SpecContext<'_>,
                    ) -> $crate::Result<()> {
                        $crate::config::check_option_keys(spec, $allowed, $required)
                    }
                    check
                },
                source: module_path!(),
            }
        }
    };
}

/// A registered store protocol.
#[derive(Clone)]
pub struct ProtocolEntry {
    /// The protocol name.
    pub protocol: String,
    /// Builds a store.
    pub create: StoreFactory,
    /// Checks a spec when the configuration is loaded.
    pub check: DynStoreCheck,
    /// Where it came from.
    pub source: String,
}

impl ProtocolEntry {
    /// An entry for run-time registration whose specs may have exactly the options `allowed`
    /// and must have `required` (see [`check_option_keys`](crate::config::check_option_keys)).
    pub fn with_keys(
        protocol: impl Into<String>,
        create: StoreFactory,
        allowed: &[&str],
        required: &[&str],
    ) -> Self {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        let required: Vec<String> = required.iter().map(|s| s.to_string()).collect();
        let protocol = protocol.into();
        ProtocolEntry {
            source: format!("run-time registration of protocol `{protocol}`"),
            protocol,
            create,
            check: Arc::new(move |spec, _| {
                let a: Vec<&str> = allowed.iter().map(String::as_str).collect();
                let r: Vec<&str> = required.iter().map(String::as_str).collect();
                crate::config::check_option_keys(spec, &a, &r)
            }),
        }
    }
}

impl fmt::Debug for ProtocolEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolEntry")
            .field("protocol", &self.protocol)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct CodecEntry {
    codec: Arc<dyn Codec>,
    source: String,
}

/// Entries gathered from `inventory`, built once.
struct LinkTime {
    codecs: HashMap<String, CodecEntry>,
    protocols: HashMap<String, ProtocolEntry>,
    /// Names registered more than once at link time, with the error to report.
    conflicts: HashMap<String, (&'static str, String, String)>,
}

fn link_time() -> &'static LinkTime {
    static LINK: OnceLock<LinkTime> = OnceLock::new();
    LINK.get_or_init(|| {
        let mut codecs: HashMap<String, CodecEntry> = HashMap::new();
        let mut protocols: HashMap<String, ProtocolEntry> = HashMap::new();
        let mut conflicts = HashMap::new();
        for p in inventory::iter::<CodecPlugin> {
            if let Some(prev) = codecs.get(p.name) {
                conflicts.insert(
                    p.name.to_string(),
                    ("codec", prev.source.clone(), p.source.to_string()),
                );
                continue;
            }
            codecs.insert(
                p.name.to_string(),
                CodecEntry {
                    codec: (p.create)(),
                    source: p.source.to_string(),
                },
            );
        }
        for p in inventory::iter::<StorePlugin> {
            if let Some(prev) = protocols.get(p.protocol) {
                conflicts.insert(
                    p.protocol.to_string(),
                    ("store protocol", prev.source.clone(), p.source.to_string()),
                );
                continue;
            }
            protocols.insert(
                p.protocol.to_string(),
                ProtocolEntry {
                    protocol: p.protocol.to_string(),
                    create: p.create,
                    check: Arc::new(p.check),
                    source: p.source.to_string(),
                },
            );
        }
        LinkTime {
            codecs,
            protocols,
            conflicts,
        }
    })
}

/// The codec and protocol registry: run-time entries first, then link-time ones.
///
/// [`Registry::global`] is the process-wide registry the schema layer uses; [`Registry::new`] makes
/// an isolated one (it still sees link-time plugins), handy in tests.
#[derive(Default)]
pub struct Registry {
    codecs: RwLock<HashMap<String, CodecEntry>>,
    protocols: RwLock<HashMap<String, ProtocolEntry>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("codecs", &self.list_codecs())
            .field("protocols", &self.list_protocols())
            .finish()
    }
}

impl Registry {
    /// A registry with no run-time entries.
    pub fn new() -> Self {
        Registry::default()
    }

    /// The process-wide registry.
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(Registry::new)
    }

    /// Register a codec at run time. It overrides a link-time codec of the same name; a second
    /// run-time registration of the same name is an error.
    pub fn register_codec(&self, codec: Arc<dyn Codec>) -> Result<()> {
        let name = codec.name().to_string();
        let source = format!("run-time registration of {codec:?}");
        let mut codecs = self.codecs.write().unwrap_or_else(|e| e.into_inner());
        if let Some(prev) = codecs.get(&name) {
            return Err(Error::DuplicateRegistration {
                kind: "codec",
                name,
                first: prev.source.clone(),
                second: source,
            });
        }
        codecs.insert(name, CodecEntry { codec, source });
        Ok(())
    }

    /// Remove a run-time codec registration. Returns whether one was removed.
    pub fn unregister_codec(&self, name: &str) -> bool {
        self.codecs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
            .is_some()
    }

    /// Register a store protocol at run time (same rules as codecs).
    pub fn register_protocol(&self, entry: ProtocolEntry) -> Result<()> {
        let mut protocols = self.protocols.write().unwrap_or_else(|e| e.into_inner());
        if let Some(prev) = protocols.get(&entry.protocol) {
            return Err(Error::DuplicateRegistration {
                kind: "store protocol",
                name: entry.protocol,
                first: prev.source.clone(),
                second: entry.source,
            });
        }
        protocols.insert(entry.protocol.clone(), entry);
        Ok(())
    }

    /// Look up a codec by name.
    pub fn codec(&self, name: &str) -> Result<Arc<dyn Codec>> {
        if let Some(e) = self
            .codecs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(Arc::clone(&e.codec));
        }
        let link = link_time();
        if let Some((kind, first, second)) = link.conflicts.get(name) {
            return Err(Error::DuplicateRegistration {
                kind,
                name: name.to_string(),
                first: first.clone(),
                second: second.clone(),
            });
        }
        match link.codecs.get(name) {
            Some(e) => Ok(Arc::clone(&e.codec)),
            None => Err(Error::UnknownCodec {
                name: name.to_string(),
                known: self.list_codecs().join(", "),
            }),
        }
    }

    /// Look up a store protocol.
    pub fn protocol(&self, protocol: &str) -> Option<ProtocolEntry> {
        if let Some(e) = self
            .protocols
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(protocol)
        {
            return Some(e.clone());
        }
        link_time().protocols.get(protocol).cloned()
    }

    /// The names of every registered codec, sorted.
    pub fn list_codecs(&self) -> Vec<String> {
        sorted_names(&link_time().codecs, &self.codecs)
    }

    /// The names of every registered store protocol, sorted.
    pub fn list_protocols(&self) -> Vec<String> {
        sorted_names(&link_time().protocols, &self.protocols)
    }

    /// Every link-time name registered twice, as errors. Empty when all is well.
    pub fn conflicts(&self) -> Vec<Error> {
        link_time()
            .conflicts
            .iter()
            .map(
                |(name, (kind, first, second))| Error::DuplicateRegistration {
                    kind,
                    name: name.clone(),
                    first: first.clone(),
                    second: second.clone(),
                },
            )
            .collect()
    }
}

/// The names of link-time and run-time entries together, sorted, each once.
fn sorted_names<T>(link: &HashMap<String, T>, run: &RwLock<HashMap<String, T>>) -> Vec<String> {
    let mut names: Vec<String> = link.keys().cloned().collect();
    names.extend(
        run.read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned(),
    );
    names.sort();
    names.dedup();
    names
}

impl CodecLookup for Registry {
    fn codec(&self, name: &str) -> Result<Arc<dyn Codec>> {
        Registry::codec(self, name)
    }
}

// Opening a store is the registry's business: the protocols live here.
impl StoreSet {
    /// The store called `name`, opening it on first use with the global registry.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Store>> {
        self.get_with(name, Registry::global())
    }

    /// As [`StoreSet::get`], opening the store with the protocols of `registry` instead of the
    /// global one (for a configuration loaded with a registry of its own).
    pub fn get_with(&self, name: &str, registry: &Registry) -> Result<Arc<dyn Store>> {
        if let Some(s) = self
            .stores
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(Arc::clone(s));
        }
        let spec = self.spec(name)?;
        let entry = registry
            .protocol(&spec.protocol)
            .ok_or_else(|| Error::UnknownProtocol {
                store: name.to_string(),
                protocol: spec.protocol.clone(),
                known: registry.list_protocols().join(", "),
            })?;
        let store = (entry.create)(spec, &SpecContext::new(self.config.base_dir()))?;
        let mut stores = self.stores.write().unwrap_or_else(|e| e.into_inner());
        Ok(Arc::clone(stores.entry(name.to_string()).or_insert(store)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn unknown_protocol_is_named() {
        let mut config = Config::default();
        config
            .stores
            .specs
            .insert("x".into(), StoreSpec::new("x", "carrier-pigeon", "/"));
        let set = StoreSet::new(config);
        let err = set.get_with("x", &Registry::new()).unwrap_err().to_string();
        assert!(err.contains("protocol `carrier-pigeon`"), "{err}");
        let err = set.get("nope").unwrap_err().to_string();
        assert!(err.contains("store `nope` is not configured"), "{err}");
    }
}
