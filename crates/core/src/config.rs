//! The configuration codecs and stores read: the `stores` section ([`StoreSpec`], with the layout
//! settings every store shares and each protocol's own options as data) and the settings the
//! codecs act on ([`Config`]).
//!
//! Loading `datajoint.json` (search, `DJ_*` environment overrides, secrets, validation) and the
//! settings of the rest of dj-rs (database, jobs, `safemode`) live in `dj-config`, whose
//! `Config` holds this one and dereferences to it. A store crate reads its options into its own
//! `serde` struct with [`StoreSpec::options_as`] and checks them when the configuration is loaded
//! (see [`registry::StoreCheck`](crate::registry::StoreCheck)). Secret values never appear in
//! `Debug` output, logs or error messages. The full key reference is `docs/configuration.md`.
//!
//! ```
//! use dj_core::config::{Config, HashAlgorithm, StoreSpec};
//!
//! let mut config = Config::default();
//! let spec = StoreSpec::new("main", "s3", "oas")
//!     .with_option("bucket", "lab")
//!     .with_option("secret_access_key", "hunter2");
//! config.stores.specs.insert("main".into(), spec);
//! config.stores.default = Some("main".into());
//! let main = config.stores.get("main")?;
//! assert_eq!(main.hash_algorithm, HashAlgorithm::Md5);
//! assert_eq!(main.hash_prefix, "_hash");
//! assert!(!format!("{config:?}").contains("hunter2"));
//! # Ok::<(), dj_core::Error>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;

use crate::error::{Error, Result};

/// A secret string (password, access key). Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself. Call this only where the value is handed to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which hash addresses a store's hash section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HashAlgorithm {
    /// MD5, base32 (26 characters): DataJoint 2.x's layout, readable by DataJoint Python.
    #[default]
    Md5,
    /// BLAKE3, base32: faster and collision resistant; objects are readable by dj-rs only.
    Blake3,
}

/// A store's `retry` settings: how many attempts an operation that fails transiently gets and
/// how long to wait between them. A field left `None` keeps the protocol's default; the store
/// crate applies the rest to its retry layer or to its client's own retries. `"retry": false`
/// is [`RetrySettings::never`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RetrySettings {
    /// Attempts in all, the first included (`max_attempts`, at least 1; 1 turns retries off).
    pub max_attempts: Option<u32>,
    /// The wait before the first retry (`initial_backoff_ms`); it doubles for each further one.
    pub initial_backoff: Option<Duration>,
    /// The longest wait between two attempts (`max_backoff_ms`).
    pub max_backoff: Option<Duration>,
    /// No retry starts later than this after the first attempt (`max_elapsed_ms`).
    pub max_elapsed: Option<Duration>,
}

impl RetrySettings {
    /// One attempt, no retries (`"retry": false`).
    pub fn never() -> Self {
        RetrySettings {
            max_attempts: Some(1),
            ..RetrySettings::default()
        }
    }

    /// With [`max_attempts`](Self::max_attempts) set to `n`.
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// With [`initial_backoff`](Self::initial_backoff) set to `d`.
    pub fn with_initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = Some(d);
        self
    }

    /// With [`max_backoff`](Self::max_backoff) set to `d`.
    pub fn with_max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = Some(d);
        self
    }

    /// With [`max_elapsed`](Self::max_elapsed) set to `d`.
    pub fn with_max_elapsed(mut self, d: Duration) -> Self {
        self.max_elapsed = Some(d);
        self
    }
}

/// One store's specification, as in DataJoint 2.x's `stores.<name>` section.
///
/// dj-core reads what every store shares: the name, the protocol, the location and the layout
/// settings. Everything else in the section belongs to the protocol and is kept, as given, in
/// [`options`](Self::options); the store crate that registers the protocol reads it into its own
/// typed options with [`StoreSpec::options_as`] (unknown keys rejected, errors naming
/// `stores.<name>.<key>`) and checks it when the configuration is loaded.
///
/// `Debug` shows every field but no secret: options whose names look like credentials (names
/// containing `key`, `secret`, `token`, `password`, `credential`, `connection_string` or `sas`)
/// print as `"***"`.
#[derive(Clone, PartialEq)]
pub struct StoreSpec {
    /// The store's name (its key under `stores`).
    pub name: String,
    /// `file`, `s3`, `gcs`, `azure`, `memory`, or any other registered protocol.
    pub protocol: String,
    /// Base directory (file) or key prefix inside the bucket/container.
    pub location: String,
    /// Hash-section subfolding, e.g. `[2, 2]`; `None` for flat.
    pub subfolding: Option<Vec<usize>>,
    /// Schema-section partition pattern, e.g. `{subject_id}/{session_date}`.
    pub partition_pattern: Option<String>,
    /// Random token length for schema-addressed paths (clamped to 4–16; default 8).
    pub token_length: usize,
    /// Root of the hash section (default `_hash`; may be empty).
    pub hash_prefix: String,
    /// Root of the schema section (default `_schema`; may be empty).
    pub schema_prefix: String,
    /// Required prefix of every `<filepath@>` path, if set.
    pub filepath_prefix: Option<String>,
    /// The hash algorithm for new hash-addressed objects (dj-rs extension).
    pub hash_algorithm: HashAlgorithm,
    /// How the store retries transient failures (`retry`, dj-rs extension); unset fields keep
    /// the protocol's defaults.
    pub retry: RetrySettings,
    /// The protocol's own settings (`endpoint`, `bucket`, credentials, …), as given; `null`
    /// values are left out.
    pub options: IndexMap<String, serde_json::Value>,
}

/// The `stores` section.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StoresConfig {
    /// `stores.default`: the store a bare `@` means.
    pub default: Option<String>,
    /// `stores.filepath_default`: the store a bare `<filepath@>` means.
    pub filepath_default: Option<String>,
    /// Every configured store, by name, in file order.
    pub specs: IndexMap<String, StoreSpec>,
}

/// The settings codecs and stores read: the stores and the codecs' own settings. `dj-config`'s
/// `Config` (the whole configuration, with the database and job settings) holds one and
/// dereferences to it, so `config.stores` reads the same on both.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The `stores` section.
    pub stores: StoresConfig,
    /// Where `<attach>` values are written on fetch (default `.`).
    pub download_path: PathBuf,
    /// How many object transfers one insert or fetch runs at once.
    pub transfer_concurrency: usize,
    /// How `<blob>` compresses what it writes (`blob_compression`: `fast`, `compat`, `none`).
    pub blob_compression: BlobCompression,
    /// The largest size in bytes a compressed (`ZL123`) blob may inflate to on fetch
    /// (`blob_max_decompressed_size`; default [`DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE`]).
    pub blob_max_decompressed_size: u64,
    /// The file the configuration came from, if any; relative store locations are resolved
    /// against its directory.
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stores: StoresConfig::default(),
            download_path: PathBuf::from("."),
            transfer_concurrency: 16,
            blob_compression: BlobCompression::Fast,
            blob_max_decompressed_size: DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE,
            source: None,
        }
    }
}

impl Config {
    /// The directory relative store paths are resolved against: the configuration file's, else
    /// the working directory (`.`).
    pub fn base_dir(&self) -> &Path {
        self.source
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
    }
}

impl StoreSpec {
    /// A spec with DataJoint's defaults for everything but name, protocol and location.
    pub fn new(
        name: impl Into<String>,
        protocol: impl Into<String>,
        location: impl Into<String>,
    ) -> Self {
        StoreSpec {
            name: name.into(),
            protocol: protocol.into(),
            location: location.into(),
            subfolding: None,
            partition_pattern: None,
            token_length: 8,
            hash_prefix: "_hash".into(),
            schema_prefix: "_schema".into(),
            filepath_prefix: None,
            hash_algorithm: HashAlgorithm::Md5,
            retry: RetrySettings::default(),
            options: IndexMap::new(),
        }
    }

    /// The spec with protocol option `key` set to `value` (for specs built in code).
    ///
    /// ```
    /// use dj_core::config::StoreSpec;
    /// let spec = StoreSpec::new("archive", "s3", "lab/raw")
    ///     .with_option("endpoint", "s3.amazonaws.com")
    ///     .with_option("bucket", "my-bucket");
    /// assert_eq!(spec.options["bucket"], "my-bucket");
    /// ```
    pub fn with_option(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.options.insert(key.into(), value.into());
        self
    }

    /// `stores.<name>.<key>`: how errors name one of this store's settings.
    pub fn key(&self, key: &str) -> String {
        format!("stores.{}.{key}", self.name)
    }

    /// Read the protocol options into a store crate's own options type, typically a
    /// `#[derive(Deserialize)] #[serde(deny_unknown_fields)]` struct with [`Secret`] fields for
    /// credentials.
    ///
    /// Errors are [`Error::Config`] naming `stores.<name>.<key>`: an unknown key (with the keys
    /// the protocol accepts) or a value of the wrong type. The message of a wrong value under a
    /// credential-like key never quotes the value.
    ///
    /// ```
    /// use dj_core::config::{Secret, StoreSpec};
    ///
    /// #[derive(Debug, serde::Deserialize)]
    /// #[serde(deny_unknown_fields)]
    /// struct DavOptions {
    ///     endpoint: String,
    ///     #[serde(default)]
    ///     api_token: Option<Secret>,
    /// }
    ///
    /// let spec = StoreSpec::new("w", "dav", "x").with_option("endpoint", "https://dav");
    /// let o: DavOptions = spec.options_as()?;
    /// assert_eq!(o.endpoint, "https://dav");
    /// assert!(o.api_token.is_none());
    ///
    /// let bad = spec.clone().with_option("api_tokn", "t");
    /// let err = bad.options_as::<DavOptions>().unwrap_err().to_string();
    /// assert!(err.contains("stores.w.api_tokn"), "{err}");
    /// # Ok::<(), dj_core::Error>(())
    /// ```
    pub fn options_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        use serde::de::value::MapDeserializer;
        use std::cell::RefCell;
        // The key being read when an error arises (`None` once every key is read: a missing
        // field).
        let current: RefCell<Option<String>> = RefCell::new(None);
        let entries = self.options.iter().map(|(k, v)| {
            *current.borrow_mut() = Some(k.clone());
            (k.clone(), v.clone())
        });
        let chained = entries.chain(std::iter::from_fn(|| {
            *current.borrow_mut() = None;
            None
        }));
        let de = MapDeserializer::<_, serde_json::Error>::new(chained);
        T::deserialize(de).map_err(|e| {
            let at = current.borrow().clone();
            let protocol = &self.protocol;
            let name = &self.name;
            match at {
                Some(k) if is_secret_key_name(&k) => Error::config(
                    self.key(&k),
                    format!(
                        "has a value of the wrong type for protocol `{protocol}` (store `{name}`); \
                         a credential is a string"
                    ),
                ),
                Some(k) => {
                    let text = e
                        .to_string()
                        .replace("expected a boolean", "expected true or false");
                    let text = if text.starts_with("unknown field") {
                        format!("unknown key for protocol `{protocol}` (store `{name}`): {text}")
                    } else {
                        format!("{text} (protocol `{protocol}`, store `{name}`)")
                    };
                    Error::config(self.key(&k), text)
                }
                None => Error::config(
                    format!("stores.{name}"),
                    format!("{e} (protocol `{protocol}`)"),
                ),
            }
        })
    }

    /// Error unless the option `key` is present and not blank; the message says the protocol
    /// needs it.
    pub fn require_option(&self, key: &str) -> Result<()> {
        if !matches!(self.options.get(key), None | Some(serde_json::Value::Null)) {
            return Ok(());
        }
        Err(Error::config(
            self.key(key),
            format!(
                "missing: `{key}` is required for protocol `{}` (store `{}`)",
                self.protocol, self.name
            ),
        ))
    }

    /// Error unless the location is a directory or key prefix of its own: for protocols whose
    /// empty location would be the root of a bucket, container or file system, shared with
    /// everything else kept there. `what` names that root (`bucket or container`, …).
    pub fn require_location(&self, what: &str) -> Result<()> {
        if self.location.is_empty() {
            return Err(Error::config(
                self.key("location"),
                format!(
                    "missing: `location` is required for protocol `{}` (store `{}`)",
                    self.protocol, self.name
                ),
            ));
        }
        if self.location.trim().trim_matches('/').is_empty() {
            return Err(Error::config(
                self.key("location"),
                format!(
                    "is empty: store `{}` (protocol `{}`) needs a directory or key prefix of its \
                     own, not the root of its {what}",
                    self.name, self.protocol
                ),
            ));
        }
        Ok(())
    }
}

/// What a protocol's configuration check and its store factory may use besides the spec.
#[derive(Debug)]
#[non_exhaustive]
pub struct SpecContext<'a> {
    /// The directory relative paths are resolved against: the configuration file's.
    pub base_dir: &'a Path,
}

impl<'a> SpecContext<'a> {
    /// A context resolving relative paths against `base_dir`.
    pub fn new(base_dir: &'a Path) -> Self {
        SpecContext { base_dir }
    }
}

impl Default for SpecContext<'_> {
    /// A context resolving relative paths against the working directory (`.`).
    fn default() -> Self {
        SpecContext::new(Path::new("."))
    }
}

/// Check a spec's options against plain key lists: every option must be in `allowed` and every
/// key in `required` present. The check the key-list form of
/// [`submit_store_protocol!`](crate::submit_store_protocol) registers.
pub fn check_option_keys(spec: &StoreSpec, allowed: &[&str], required: &[&str]) -> Result<()> {
    for k in spec.options.keys() {
        if !allowed.contains(&k.as_str()) {
            let mut keys: Vec<&str> = COMMON_STORE_KEYS.to_vec();
            keys.extend(allowed);
            return Err(Error::config(
                spec.key(k),
                format!(
                    "unknown key for protocol `{}` (store `{}`); allowed keys: {}",
                    spec.protocol,
                    spec.name,
                    keys.join(", ")
                ),
            ));
        }
    }
    for r in required {
        if *r == "location" {
            if spec.location.is_empty() {
                return Err(Error::config(
                    spec.key(r),
                    format!(
                        "missing: `{r}` is required for protocol `{}` (store `{}`)",
                        spec.protocol, spec.name
                    ),
                ));
            }
        } else {
            spec.require_option(r)?;
        }
    }
    Ok(())
}

/// Resolve a location against the configuration's directory (a relative `file` location).
/// (Used by `dj-config`'s loader and `dj-store-file`; not part of the documented API.)
#[doc(hidden)]
pub fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Keys every store spec may have, whatever its protocol.
pub const COMMON_STORE_KEYS: &[&str] = &[
    "protocol",
    "location",
    "subfolding",
    "partition_pattern",
    "token_length",
    "hash_prefix",
    "schema_prefix",
    "filepath_prefix",
    "stage",
    "hash_algorithm",
    "retry",
];

/// Whether a store-spec key names a credential, by its name. Used to redact plugin keys in
/// [`StoreSpec::options`] from `Debug` output and from `dj-config`'s `Config::redacted_json`.
pub fn is_secret_key_name(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "key",
        "secret",
        "token",
        "password",
        "passwd",
        "credential",
        "connection_string",
        "sas",
    ]
    .iter()
    .any(|w| k.contains(w))
}

impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Extra<'a>(&'a IndexMap<String, serde_json::Value>);
        impl fmt::Debug for Extra<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut m = f.debug_map();
                for (k, v) in self.0 {
                    if is_secret_key_name(k) {
                        m.entry(k, &"***");
                    } else {
                        m.entry(k, v);
                    }
                }
                m.finish()
            }
        }
        f.debug_struct("StoreSpec")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("location", &self.location)
            .field("subfolding", &self.subfolding)
            .field("partition_pattern", &self.partition_pattern)
            .field("token_length", &self.token_length)
            .field("hash_prefix", &self.hash_prefix)
            .field("schema_prefix", &self.schema_prefix)
            .field("filepath_prefix", &self.filepath_prefix)
            .field("hash_algorithm", &self.hash_algorithm)
            .field("options", &Extra(&self.options))
            .finish()
    }
}

impl HashAlgorithm {
    /// The name used in configuration and metadata: `md5` or `blake3`.
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Blake3 => "blake3",
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for HashAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "md5" => Ok(HashAlgorithm::Md5),
            "blake3" => Ok(HashAlgorithm::Blake3),
            _ => Err(Error::config(
                "hash_algorithm",
                format!("`{s}` is not a hash algorithm; use `md5` or `blake3`"),
            )),
        }
    }
}

/// The default of `blob_max_decompressed_size`: 4 GiB, the most a MySQL/MariaDB `LONGBLOB`
/// column holds (PostgreSQL's `bytea` holds 1 GiB). zlib expands up to about 1000 times, so without
/// a limit a 4 MiB compressed blob could ask for 4 GiB of memory on fetch; larger blobs in stores
/// need the setting raised.
pub const DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE: u64 = 4 << 30;

/// How the `<blob>` codec compresses blobs over 1000 bytes (config key `blob_compression`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BlobCompression {
    /// Byte-identical to DataJoint Python: zlib level 6, kept only when smaller. Use it when the
    /// same content written from Python and Rust must deduplicate in a `<blob@>` store.
    Compat,
    /// The default: compress at zlib level 1, and skip compression altogether when a sample of
    /// the blob is estimated not to shrink (random floating-point data barely compresses, and
    /// zlib on it costs far more than it saves). DataJoint Python reads the result.
    #[default]
    Fast,
    /// Never compress.
    None,
}

impl BlobCompression {
    /// The configuration name: `fast`, `compat` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlobCompression::Fast => "fast",
            BlobCompression::Compat => "compat",
            BlobCompression::None => "none",
        }
    }
}

impl std::str::FromStr for BlobCompression {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fast" => Ok(BlobCompression::Fast),
            "compat" => Ok(BlobCompression::Compat),
            "none" => Ok(BlobCompression::None),
            _ => Err(Error::config(
                "blob_compression",
                format!("`{s}` is not a blob compression mode; use `fast`, `compat` or `none`"),
            )),
        }
    }
}

impl StoresConfig {
    /// The spec of a configured store, or [`Error::UnknownStore`] naming the configured ones.
    pub fn get(&self, name: &str) -> Result<&StoreSpec> {
        self.specs.get(name).ok_or_else(|| Error::UnknownStore {
            store: name.to_string(),
            known: known_list(self.specs.keys()),
        })
    }
}

/// The names, comma-separated, or `(none)`: how errors list what is configured. (Also used by
/// `dj-config`'s loader; not part of the documented API.)
#[doc(hidden)]
pub fn known_list<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> String {
    let v: Vec<String> = names.into_iter().map(|s| s.as_ref().to_string()).collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}
