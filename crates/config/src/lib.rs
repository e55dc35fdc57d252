//! Configuration: `datajoint.json`, `DJ_*` environment overrides and secrets.
//!
//! The configuration says which database to use and which object stores exist. It is read the way
//! DataJoint 2.x reads it, so one `datajoint.json` serves both DataJoint Python and dj-rs:
//!
//! 1. `datajoint.json` is searched from the working directory upward, stopping at a directory
//!    that holds `.git` or `.hg` (that directory is still searched);
//! 2. keys may be nested (`{"stores": {"main": {…}}}`) or dotted (`"stores.main.location"`), mixed
//!    freely, but never given twice; `"object_storage": {"stores": …}` is accepted as another
//!    spelling of `stores`;
//! 3. `DJ_HOST`, `DJ_USER`, `DJ_PASS`, `DJ_PORT`, `DJ_BACKEND`, `DJ_DATABASE_NAME`, `DJ_USE_TLS`
//!    override the file, `DJ_STORES` (a JSON object) replaces the whole `stores` section, and
//!    `DJ_IGNORE_CONFIG_FILE=true` skips the file and the secrets;
//! 4. secrets (one file per dotted key in `.secrets/` beside the file, else
//!    `/run/secrets/datajoint/`) fill values that are still missing.
//!
//! The backend is `database.backend` (or `DJ_BACKEND`), else the scheme of `database.url`, else
//! MySQL (DataJoint's default) when any server setting is given, else SQLite; SQLite together with
//! a server setting is an error ([`BackendSource`] records which rule applied).
//!
//! Everything is validated at load time: unknown keys, missing required keys, bad values and
//! unknown protocols are errors that name the dotted key and the store. dj-core reads the keys
//! every store shares ([`COMMON_STORE_KEYS`]); the rest of a store's section is its protocol's,
//! kept in [`StoreSpec::options`] and checked by the store crate that registered the protocol
//! (see [`registry::StoreCheck`](crate::registry::StoreCheck)). Secret values never appear in
//! `Debug` output, logs or error messages. The full key reference is `docs/configuration.md`.
//!
//! ```
//! use std::sync::Arc;
//! use dj_core::config::{Config, DatabaseBackend, HashAlgorithm, StoreSpec};
//! use dj_core::registry::{ProtocolEntry, Registry};
//! # fn open(_: &StoreSpec, _: &Config) -> dj_core::Result<Arc<dyn dj_core::store::Store>> {
//! #     Err(dj_core::Error::config("stores", "not opened in this example"))
//! # }
//!
//! // Store crates register their protocols (here one at run time, with two options).
//! Registry::global().register_protocol(ProtocolEntry::with_keys(
//!     "bucket-store", open, &["endpoint", "bucket"], &["bucket"],
//! ))?;
//! let dir = std::env::temp_dir();
//! let config = Config::from_json_str(
//!     r#"{
//!         "database": {"backend": "postgresql", "host": "db.lab", "password": "hunter2"},
//!         "stores.default": "main",
//!         "stores.main": {"protocol": "bucket-store", "endpoint": "s3.amazonaws.com",
//!                         "bucket": "lab", "location": "oas", "hash_algorithm": "blake3"}
//!     }"#,
//!     &dir,
//! )?;
//! assert_eq!(config.database.backend, DatabaseBackend::Postgresql);
//! assert_eq!(config.stores.default.as_deref(), Some("main"));
//! let main = config.stores.get("main")?;
//! assert_eq!(main.hash_algorithm, HashAlgorithm::Blake3);
//! assert_eq!(main.hash_prefix, "_hash");
//! assert_eq!(main.options["bucket"], "lab");
//! assert!(!format!("{config:?}").contains("hunter2"));
//! # Ok::<(), dj_core::Error>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value as Json, json};

use crate::error::{Error, Result};

/// A secret string (password, access key). Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq, Default)]
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

/// Which database backend to connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DatabaseBackend {
    /// SQLite, embedded; the default when no backend, URL or server setting is configured.
    #[default]
    Sqlite,
    /// PostgreSQL.
    Postgresql,
    /// MySQL or MariaDB.
    Mysql,
}

/// Where a database setting came from: the file, an environment variable or a secrets file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingOrigin {
    /// The configuration file (or the JSON given to [`Config::from_json_str`]).
    File,
    /// An environment variable, e.g. `DJ_HOST`.
    Env(String),
    /// A file in the secrets directory.
    Secret(PathBuf),
}

/// What chose [`DatabaseConfig::backend`], for `dj config check` and error messages.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum BackendSource {
    /// No setting chose it: SQLite, dj-rs's default. A configuration built in code keeps this
    /// value whatever backend the code sets.
    #[default]
    Default,
    /// `database.backend` in the file, or `DJ_BACKEND`.
    Backend(SettingOrigin),
    /// The scheme of `database.url`.
    UrlScheme(SettingOrigin),
    /// No backend was given but these server settings were (dotted key and origin), so the
    /// backend is MySQL, DataJoint's default.
    ServerSettings(Vec<(String, SettingOrigin)>),
}

/// The `database` section.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DatabaseConfig {
    /// The backend.
    pub backend: DatabaseBackend,
    /// What chose the backend (set by the loader).
    pub backend_source: BackendSource,
    /// Host name (PostgreSQL, MySQL).
    pub host: Option<String>,
    /// Port (PostgreSQL, MySQL).
    pub port: Option<u16>,
    /// User name.
    pub user: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// The database to connect to (PostgreSQL; DataJoint's `database.name`).
    pub name: Option<String>,
    /// A full connection URL, instead of host/port/user/password.
    pub url: Option<Secret>,
    /// SQLite: the database file (default `datajoint.sqlite` beside `datajoint.json`).
    pub path: Option<PathBuf>,
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The `database` section.
    pub database: DatabaseConfig,
    /// The `stores` section.
    pub stores: StoresConfig,
    /// Where `<attach>` values are written on fetch (default `.`).
    pub download_path: PathBuf,
    /// Whether destructive operations ask first (DataJoint's `safemode`).
    pub safemode: bool,
    /// How many object transfers one insert or fetch runs at once.
    pub transfer_concurrency: usize,
    /// How `<blob>` compresses what it writes (`blob_compression`: `fast`, `compat`, `none`).
    pub blob_compression: BlobCompression,
    /// The largest size in bytes a compressed (`ZL123`) blob may inflate to on fetch
    /// (`blob_max_decompressed_size`; default [`DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE`]).
    pub blob_max_decompressed_size: u64,
    /// The file the configuration came from, if any.
    pub source: Option<PathBuf>,
    /// The secrets directory that was read, if any.
    pub secrets_dir: Option<PathBuf>,
    /// The `jobs` section (populate and the job queue).
    pub jobs: JobsConfig,
}

/// The `jobs` section, as DataJoint 2.3.5's `config.jobs` (the settings dj-rs reads; the others,
/// `version_method` and `allow_new_pk_fields_in_computed_tables`, are accepted and ignored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobsConfig {
    /// Refresh the job queue when a populate with `reserve_jobs` starts (default `true`).
    pub auto_refresh: bool,
    /// Keep `success` rows in the job table instead of deleting them (default `false`).
    pub keep_completed: bool,
    /// Seconds after which a job whose key left the key source is removed (default 3600;
    /// 0 skips the age-based cleanup).
    pub stale_timeout: u64,
    /// Priority of new jobs, 0 to 255, lower first (default 5).
    pub default_priority: u8,
    /// Declare Computed and Imported tables with the hidden `_job_start_time`,
    /// `_job_duration` and `_job_version` columns, filled by populate (default `false`).
    pub add_job_metadata: bool,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            auto_refresh: true,
            keep_completed: false,
            stale_timeout: 3600,
            default_priority: 5,
            add_job_metadata: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: DatabaseConfig::default(),
            stores: StoresConfig::default(),
            download_path: PathBuf::from("."),
            safemode: true,
            transfer_concurrency: 16,
            blob_compression: BlobCompression::Fast,
            blob_max_decompressed_size: DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE,
            source: None,
            secrets_dir: None,
            jobs: JobsConfig::default(),
        }
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

    /// The option `key` as a string, for checks that need one value. `Ok(None)` when it is
    /// absent; an error naming the key when it is not a string.
    pub fn option_str(&self, key: &str) -> Result<Option<&str>> {
        match self.options.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(type_error(&self.key(key), "a string", other)),
        }
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

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// What a protocol's configuration check may use besides the spec.
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
pub fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

// ================================================================================================
// Layout settings
// ================================================================================================

/// Shortest allowed token length (`token_length` is clamped to this).
pub const MIN_TOKEN_LENGTH: usize = 4;
/// Longest allowed token length.
pub const MAX_TOKEN_LENGTH: usize = 16;
/// The default token length.
pub const DEFAULT_TOKEN_LENGTH: usize = 8;

/// Length of an MD5 hash in lowercase base32 without padding.
pub const MD5_HASH_LEN: usize = 26;
/// Length of a BLAKE3 (256-bit) hash in lowercase base32 without padding.
pub const BLAKE3_HASH_LEN: usize = 52;

/// Normalise a section prefix the way DataJoint does (`strip("/")`) and check it: `""` (no
/// section) or a relative path. `key` names the setting in errors.
pub fn normalize_prefix(prefix: &str, key: &str) -> Result<String> {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        return Ok(String::new());
    }
    crate::store::StorePath::parse(p)
        .map_err(|e| Error::config(key, format!("`{prefix}` is not a valid relative path: {e}")))?;
    Ok(p.to_string())
}

/// The attribute names of a partition pattern, in pattern order.
///
/// A pattern is one or more `/`-separated segments, each exactly `{attribute}` (letters, digits,
/// `_`), e.g. `{subject_id}/{session_date}`. DataJoint only reads the braced names and ignores any
/// other text, so brace-less or decorated patterns (`subject_id/session_date`, `s{a}`) would
/// silently do something else than they seem to; they are errors here, as are repeated names.
pub fn partition_attributes(pattern: &str) -> Result<Vec<String>> {
    let bad = |why: &str| {
        Error::invalid_path(
            pattern,
            format!(
                "invalid partition pattern: {why}; write `{{attr}}` segments separated by `/`, e.g. `{{subject_id}}/{{session_date}}`"
            ),
        )
    };
    let mut names: Vec<String> = Vec::new();
    for segment in pattern.split('/') {
        let name = segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .ok_or_else(|| {
                bad(&format!(
                    "segment `{segment}` is not of the form `{{attr}}`"
                ))
            })?;
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(bad(&format!("`{segment}` does not name an attribute")));
        }
        if names.iter().any(|n| n == name) {
            return Err(bad(&format!("attribute `{name}` appears twice")));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// Clamp a token length to 4–16, as DataJoint does.
pub fn clamp_token_length(length: usize) -> usize {
    length.clamp(MIN_TOKEN_LENGTH, MAX_TOKEN_LENGTH)
}

// ================================================================================================
// Loading and validation
// ================================================================================================

/// The configuration file's name.
pub const CONFIG_FILE_NAME: &str = "datajoint.json";
/// The secrets directory looked for beside the configuration file.
pub const SECRETS_DIR_NAME: &str = ".secrets";
/// The secrets directory used when there is no `.secrets/` beside the file (Docker, Kubernetes).
pub const SYSTEM_SECRETS_DIR: &str = "/run/secrets/datajoint";
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
];

/// Environment variables DataJoint 2.3.5 reads that have no effect in dj-rs. dj-rs does not read
/// them; `dj config check` lists the ones that are set. A name ending in `_` is a prefix
/// (`DJ_JOBS_`: the populate job settings).
pub const UNREAD_DATAJOINT_ENV_VARS: &[&str] = &[
    "DJ_LOG_LEVEL",
    "DJ_SAFEMODE",
    "DJ_DOWNLOAD_PATH",
    "DJ_QUERY_CACHE",
    "DJ_DATABASE_PREFIX",
    "DJ_CREATE_TABLES",
    "DJ_RECONNECT",
    "DJ_DIAGRAM_DIRECTION",
    "DJ_DIAGRAM_THEME",
    "DJ_JOBS_",
];

/// Whether `var` is one of [`UNREAD_DATAJOINT_ENV_VARS`] (or under one of its prefixes).
pub fn is_unread_datajoint_env_var(var: &str) -> bool {
    UNREAD_DATAJOINT_ENV_VARS.iter().any(|v| {
        if v.ends_with('_') {
            var.starts_with(v) && var.len() > v.len()
        } else {
            var == *v
        }
    })
}

/// Whether a store-spec key names a credential, by its name. Used to redact plugin keys in
/// [`StoreSpec::options`] from `Debug` output and [`Config::redacted_json`].
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

impl DatabaseBackend {
    /// The configuration name: `sqlite`, `postgresql` or `mysql`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseBackend::Sqlite => "sqlite",
            DatabaseBackend::Postgresql => "postgresql",
            DatabaseBackend::Mysql => "mysql",
        }
    }

    /// The port used when none is configured (`None` for SQLite).
    pub fn default_port(self) -> Option<u16> {
        match self {
            DatabaseBackend::Sqlite => None,
            DatabaseBackend::Postgresql => Some(5432),
            DatabaseBackend::Mysql => Some(3306),
        }
    }
}

impl fmt::Display for DatabaseBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DatabaseBackend {
    type Err = Error;
    /// `sqlite`, `postgresql` (or `postgres`), `mysql` (or `mariadb`), case-insensitive.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => Ok(DatabaseBackend::Sqlite),
            "postgresql" | "postgres" => Ok(DatabaseBackend::Postgresql),
            "mysql" | "mariadb" => Ok(DatabaseBackend::Mysql),
            _ => Err(Error::config(
                "database.backend",
                format!("`{s}` is not a database backend; use `sqlite`, `postgresql` or `mysql`"),
            )),
        }
    }
}

impl DatabaseConfig {
    /// The configured port, or the backend's default (5432, 3306; `None` for SQLite).
    pub fn port_or_default(&self) -> Option<u16> {
        self.port.or_else(|| self.backend.default_port())
    }

    /// The configured host, or `localhost` as in DataJoint.
    pub fn host_or_default(&self) -> &str {
        self.host.as_deref().unwrap_or("localhost")
    }

    /// The SQLite file: the configured path, or `datajoint.sqlite` (relative to the working
    /// directory) when none is set, e.g. in [`Config::default`].
    pub fn sqlite_path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| PathBuf::from("datajoint.sqlite"))
    }

    /// The server settings that are set (non-empty), as `database.*` keys, in a fixed order:
    /// `host`, `port`, `user`, `password`, `name`.
    pub fn server_settings(&self) -> Vec<&'static str> {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
        let mut keys = Vec::new();
        if set(&self.host) {
            keys.push("database.host");
        }
        if self.port.is_some() {
            keys.push("database.port");
        }
        if set(&self.user) {
            keys.push("database.user");
        }
        if self.password.is_some() {
            keys.push("database.password");
        }
        if set(&self.name) {
            keys.push("database.name");
        }
        keys
    }

    /// Check that the settings fit the backend: SQLite takes no server settings (see
    /// [`server_settings`](Self::server_settings)), and its file must not be a directory. The
    /// loader runs this; `dj_schema::Connection` runs it again, for configurations built in code
    /// (where [`DatabaseConfig::default`] means SQLite).
    pub fn validate(&self) -> Result<()> {
        self.validate_with(&|_| None)
    }

    pub(crate) fn validate_with(
        &self,
        origin: &dyn Fn(&str) -> Option<SettingOrigin>,
    ) -> Result<()> {
        if self.backend != DatabaseBackend::Sqlite {
            return Ok(());
        }
        if let Some(key) = self.server_settings().first() {
            let from = match origin(key) {
                Some(SettingOrigin::File) | None => String::new(),
                Some(o) => format!(" (from {o})"),
            };
            let why = match &self.backend_source {
                BackendSource::Default => {
                    "the default when nothing names a backend, as in a configuration built in code"
                        .to_string()
                }
                other => format!("chosen by {other}"),
            };
            return Err(Error::config(
                *key,
                format!(
                    "is set{from}, but the backend is sqlite ({why}), which connects to no server; \
                     set `database.backend` (or `DJ_BACKEND`) to `mysql` or `postgresql`, or \
                     remove the server settings"
                ),
            ));
        }
        if self.url.is_none() {
            let path = self.sqlite_path();
            if path.is_dir() {
                return Err(Error::config(
                    "database.path",
                    format!(
                        "`{}` is a directory, not a SQLite database file",
                        path.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Where connections go, without secrets: the SQLite file, or `host:port` (MySQL) and
    /// `host:port/database` (PostgreSQL). For a `database.url`, its host, port and database when
    /// they can be told apart from the user name and password with certainty; otherwise a phrase
    /// saying that the URL names the server.
    pub fn target(&self) -> String {
        match (self.backend, self.url.as_ref()) {
            (DatabaseBackend::Sqlite, Some(url)) => {
                let rest = url.expose().split_once(':').map_or("", |(_, r)| r);
                let rest = rest.strip_prefix("//").unwrap_or(rest);
                rest.split(['?', '#']).next().unwrap_or(rest).to_string()
            }
            (DatabaseBackend::Sqlite, None) => self.sqlite_path().display().to_string(),
            (_, Some(url)) => match url_server(url.expose()) {
                Some((server, db)) => match (&self.name, self.backend) {
                    (Some(name), DatabaseBackend::Postgresql) => format!("{server}/{name}"),
                    _ if db.is_empty() => server,
                    _ => format!("{server}/{db}"),
                },
                None => "the server in `database.url` (not shown: the URL is secret)".to_string(),
            },
            (backend, None) => {
                let server = format!(
                    "{}:{}",
                    self.host_or_default(),
                    self.port_or_default().unwrap_or_default()
                );
                if backend == DatabaseBackend::Postgresql {
                    format!("{server}/{}", self.name.as_deref().unwrap_or("postgres"))
                } else {
                    server
                }
            }
        }
    }
}

/// The `host[:port]` and database of a server URL, or `None` when the user name or password
/// might run into them (an `@`, `?` or `#` where it cannot be told apart), so that no part of a
/// password is ever shown.
fn url_server(url: &str) -> Option<(String, String)> {
    let (_, rest) = url.split_once("://")?;
    let ats: Vec<usize> = rest.match_indices('@').map(|(i, _)| i).collect();
    let end_of_authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host_start = match ats.as_slice() {
        [] => 0,
        [at] if *at < end_of_authority => at + 1,
        _ => return None,
    };
    let server = &rest[host_start..end_of_authority];
    if server.is_empty() {
        return None;
    }
    let db = rest[end_of_authority..]
        .strip_prefix('/')
        .unwrap_or("")
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    Some((server.to_string(), db.to_string()))
}

impl fmt::Display for SettingOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingOrigin::File => f.write_str("the configuration file"),
            SettingOrigin::Env(var) => write!(f, "the environment variable `{var}`"),
            SettingOrigin::Secret(path) => write!(f, "the secrets file `{}`", path.display()),
        }
    }
}

/// `` `database.host` in the configuration file``, `` `DJ_HOST` ``, ….
pub(crate) fn setting_phrase(key: &str, origin: &SettingOrigin) -> String {
    match origin {
        SettingOrigin::File => format!("`{key}` in the configuration file"),
        SettingOrigin::Env(var) => format!("`{var}`"),
        SettingOrigin::Secret(path) => {
            format!("`{key}` from the secrets file `{}`", path.display())
        }
    }
}

impl fmt::Display for BackendSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendSource::Default => f.write_str(
                "no backend, URL or server setting is configured: SQLite, dj-rs's default",
            ),
            BackendSource::Backend(origin) => {
                f.write_str(&setting_phrase("database.backend", origin))
            }
            BackendSource::UrlScheme(origin) => write!(
                f,
                "the scheme of {}",
                setting_phrase("database.url", origin)
            ),
            BackendSource::ServerSettings(keys) => {
                // File keys as dotted keys, environment variables by name.
                let list: Vec<String> = keys
                    .iter()
                    .map(|(k, o)| match o {
                        SettingOrigin::File => format!("`{k}`"),
                        o => setting_phrase(k, o),
                    })
                    .collect();
                write!(
                    f,
                    "server settings without a backend ({}): mysql, DataJoint's default backend",
                    list.join(", ")
                )
            }
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

pub(crate) fn known_list<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> String {
    let v: Vec<String> = names.into_iter().map(|s| s.as_ref().to_string()).collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

impl Config {
    /// The effective configuration as JSON, in the nested `datajoint.json` shape, with every
    /// secret replaced by `"***"` (for `dj config check`).
    pub fn redacted_json(&self) -> Json {
        fn secret(s: &Option<Secret>) -> Json {
            s.as_ref().map_or(Json::Null, |_| json!("***"))
        }
        fn path(p: &Option<PathBuf>) -> Json {
            p.as_ref()
                .map_or(Json::Null, |p| json!(p.display().to_string()))
        }
        let db = &self.database;
        let mut stores = Map::new();
        stores.insert("default".into(), json!(self.stores.default));
        stores.insert(
            "filepath_default".into(),
            json!(self.stores.filepath_default),
        );
        for (name, s) in &self.stores.specs {
            let options: Map<String, Json> = s
                .options
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        if is_secret_key_name(k) {
                            json!("***")
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect();
            let mut store = json!({
                "protocol": s.protocol,
                "location": s.location,
                "subfolding": s.subfolding,
                "partition_pattern": s.partition_pattern,
                "token_length": s.token_length,
                "hash_prefix": s.hash_prefix,
                "schema_prefix": s.schema_prefix,
                "filepath_prefix": s.filepath_prefix,
                "hash_algorithm": s.hash_algorithm.as_str(),
            });
            // The protocol's options sit beside the common keys, as in the file.
            if let Json::Object(m) = &mut store {
                for (k, v) in options {
                    m.entry(k).or_insert(v);
                }
            }
            stores.insert(name.clone(), store);
        }
        json!({
            "database": {
                "backend": db.backend.as_str(),
                "host": db.host,
                "port": db.port,
                "user": db.user,
                "password": secret(&db.password),
                "name": db.name,
                "url": secret(&db.url),
                "path": path(&db.path),
            },
            "stores": stores,
            "download_path": self.download_path.display().to_string(),
            "safemode": self.safemode,
            "transfer_concurrency": self.transfer_concurrency,
            "blob_compression": self.blob_compression.as_str(),
            "blob_max_decompressed_size": self.blob_max_decompressed_size,
            "source": path(&self.source),
            "secrets_dir": path(&self.secrets_dir),
            "jobs": {
                "auto_refresh": self.jobs.auto_refresh,
                "keep_completed": self.jobs.keep_completed,
                "stale_timeout": self.jobs.stale_timeout,
                "default_priority": self.jobs.default_priority,
                "add_job_metadata": self.jobs.add_job_metadata,
            },
        })
    }
}

pub(crate) fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// A type error that names the key and the kind of value found, never the value itself.
pub(crate) fn type_error(key: &str, expected: &str, found: &Json) -> Error {
    Error::config(
        key,
        format!("expected {expected}, found {}", json_kind(found)),
    )
}
