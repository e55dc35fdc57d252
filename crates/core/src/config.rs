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
use crate::registry::Registry;

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

/// DataJoint Python settings that have no effect in dj-rs and are accepted and ignored.
/// Group entries (`display.*`) allow every listed key under that group.
const IGNORED_TOP_LEVEL: &[&str] = &[
    "loglevel",
    "query_cache",
    "cache",
    "fetch_format",
    "enable_python_native_blobs",
    "filepath_checksum_size_limit",
    "ignore_config_file",
];
const IGNORED_GROUPS: &[(&str, &[&str])] = &[
    ("connection", &["charset", "init_function"]),
    (
        "display",
        &[
            "limit",
            "width",
            "show_tuple_count",
            "diagram_direction",
            "diagram_theme",
        ],
    ),
    (
        "jobs",
        &[
            "auto_refresh",
            "keep_completed",
            "stale_timeout",
            "default_priority",
            "version_method",
            "allow_new_pk_fields_in_computed_tables",
            "add_job_metadata",
        ],
    ),
    ("provenance", &["capture", "source"]),
];
const IGNORED_DATABASE_KEYS: &[&str] = &["reconnect", "database_prefix", "create_tables"];
const DATABASE_KEYS: &[&str] = &[
    "backend", "host", "port", "user", "password", "name", "url", "path", "use_tls",
];
const TOP_LEVEL_KEYS: &[&str] = &[
    "database",
    "stores",
    "download_path",
    "safemode",
    "transfer_concurrency",
    "blob_compression",
    "blob_max_decompressed_size",
];

/// Dotted keys deeper than this are values, not further nesting (`stores.<name>.<attr>`).
const MAX_KEY_DEPTH: usize = 3;

/// The longest subfolding total: the length of the shortest hash (MD5, 26 characters).
const MAX_SUBFOLDING_TOTAL: usize = MD5_HASH_LEN;

type EnvFn<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Where each `database.<attr>` that did not come from the file came from, by `<attr>`.
type Origins = IndexMap<String, SettingOrigin>;

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
    /// The default: compress at zlib level 1, and skip compression altogether when a 64 KiB
    /// sample does not shrink (random floating-point data barely compresses, and zlib on it costs
    /// far more than it saves). DataJoint Python reads the result.
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

    fn validate_with(&self, origin: &dyn Fn(&str) -> Option<SettingOrigin>) -> Result<()> {
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
fn setting_phrase(key: &str, origin: &SettingOrigin) -> String {
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

fn known_list<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> String {
    let v: Vec<String> = names.into_iter().map(|s| s.as_ref().to_string()).collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

impl Config {
    /// Load the configuration the way DataJoint does, from the current working directory, the
    /// process environment and the secrets directories. Without a `datajoint.json` the defaults
    /// (SQLite, no stores) apply, plus the environment.
    pub fn load() -> Result<Config> {
        let cwd = std::env::current_dir().map_err(|source| Error::Io {
            path: ".".into(),
            source,
        })?;
        ConfigLoader::new(cwd).load()
    }

    /// As [`Config::load`], searching for `datajoint.json` from `dir` instead of the working
    /// directory. The process environment and secrets are still used.
    pub fn load_from(dir: impl AsRef<Path>) -> Result<Config> {
        ConfigLoader::new(dir.as_ref()).load()
    }

    /// As [`Config::load`], with the environment read through `env` and the search starting at
    /// `cwd`. Tests use this instead of changing the process environment.
    pub fn load_with(
        env: &dyn Fn(&str) -> Option<String>,
        cwd: impl AsRef<Path>,
    ) -> Result<Config> {
        ConfigLoader::new(cwd.as_ref()).env(env).load()
    }

    /// Read exactly one configuration file: no search, no environment, no secrets. Relative paths
    /// in it are resolved against its directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let tree = read_config_file(path)?;
        let base = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut config = build_config(tree, &base, Registry::global(), &Origins::new())?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parse and validate configuration JSON: no file, no environment, no secrets. Relative
    /// paths (SQLite file, `file` store locations) are resolved against `base_dir`.
    pub fn from_json_str(json: &str, base_dir: impl AsRef<Path>) -> Result<Config> {
        let tree = parse_tree(json, "configuration JSON")?;
        build_config(tree, base_dir.as_ref(), Registry::global(), &Origins::new())
    }

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
        })
    }
}

/// Loads a [`Config`] with every input replaceable: the start directory, the environment, the
/// system secrets directory and the protocol registry.
///
/// ```
/// use dj_core::config::ConfigLoader;
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("datajoint.json"), r#"{"database.host": "file-host"}"#)?;
/// let env = |k: &str| (k == "DJ_HOST").then(|| "env-host".to_string());
/// let config = ConfigLoader::new(dir.path()).env(&env).system_secrets_dir(None).load()?;
/// assert_eq!(config.database.host.as_deref(), Some("env-host"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ConfigLoader<'a> {
    start_dir: PathBuf,
    env: Box<EnvFn<'a>>,
    system_secrets_dir: Option<PathBuf>,
    registry: &'a Registry,
    file: Option<PathBuf>,
}

impl fmt::Debug for ConfigLoader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigLoader")
            .field("start_dir", &self.start_dir)
            .field("system_secrets_dir", &self.system_secrets_dir)
            .finish_non_exhaustive()
    }
}

impl<'a> ConfigLoader<'a> {
    /// A loader searching from `start_dir`, reading the process environment and
    /// [`SYSTEM_SECRETS_DIR`], validating plugin protocols against [`Registry::global`].
    pub fn new(start_dir: impl Into<PathBuf>) -> Self {
        ConfigLoader {
            start_dir: start_dir.into(),
            env: Box::new(|k| std::env::var(k).ok()),
            system_secrets_dir: Some(PathBuf::from(SYSTEM_SECRETS_DIR)),
            registry: Registry::global(),
            file: None,
        }
    }

    /// Read this configuration file (any name) instead of searching for `datajoint.json`; the
    /// environment and the secrets beside it still apply. For a command-line `--config PATH`.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Read environment variables through `env` instead of the process environment.
    pub fn env(mut self, env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        self.env = Box::new(env);
        self
    }

    /// Use `dir` as the fallback secrets directory (`None`: no fallback).
    pub fn system_secrets_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.system_secrets_dir = dir;
        self
    }

    /// Validate plugin protocols against `registry`.
    pub fn registry(mut self, registry: &'a Registry) -> Self {
        self.registry = registry;
        self
    }

    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.is_empty())
    }

    /// Find, read, override and validate.
    pub fn load(&self) -> Result<Config> {
        let ignore_file = match self.var("DJ_IGNORE_CONFIG_FILE") {
            Some(v) => parse_env_bool("DJ_IGNORE_CONFIG_FILE", &v)?,
            None => false,
        };
        let start = std::path::absolute(&self.start_dir).map_err(|source| Error::Io {
            path: self.start_dir.display().to_string(),
            source,
        })?;
        let file = if ignore_file {
            None
        } else if let Some(f) = &self.file {
            Some(std::path::absolute(f).map_err(|source| Error::Io {
                path: f.display().to_string(),
                source,
            })?)
        } else {
            find_config_file(&start)
        };
        let base_dir = file
            .as_deref()
            .and_then(Path::parent)
            .map_or_else(|| start.clone(), Path::to_path_buf);
        let mut tree = match &file {
            Some(f) => {
                tracing::debug!(path = %f.display(), "reading configuration file");
                read_config_file(f)?
            }
            None => Map::new(),
        };
        let mut origins = Origins::new();
        self.apply_env(&mut tree, &mut origins)?;
        let secrets_dir = if ignore_file {
            None
        } else {
            let beside = file
                .as_deref()
                .and_then(Path::parent)
                .map(|d| d.join(SECRETS_DIR_NAME));
            beside
                .filter(|d| d.is_dir())
                .or_else(|| self.system_secrets_dir.clone().filter(|d| d.is_dir()))
        };
        if let Some(dir) = &secrets_dir {
            apply_secrets(&mut tree, dir, &mut origins)?;
        }
        let mut config = build_config(tree, &base_dir, self.registry, &origins)?;
        config.source = file;
        config.secrets_dir = secrets_dir;
        Ok(config)
    }

    fn apply_env(&self, tree: &mut Map<String, Json>, origins: &mut Origins) -> Result<()> {
        let mut set = |var: &str, attr: &str, value: Json| -> Result<()> {
            let db = tree
                .entry("database")
                .or_insert_with(|| Json::Object(Map::new()));
            match db {
                Json::Object(m) => {
                    m.insert(attr.to_string(), value);
                    origins.insert(attr.to_string(), SettingOrigin::Env(var.to_string()));
                    Ok(())
                }
                _ => Err(Error::config("database", "must be an object")),
            }
        };
        for (var, attr) in [
            ("DJ_HOST", "host"),
            ("DJ_USER", "user"),
            ("DJ_PASS", "password"),
            ("DJ_DATABASE_NAME", "name"),
        ] {
            if let Some(v) = self.var(var) {
                set(var, attr, Json::String(v))?;
            }
        }
        if let Some(v) = self.var("DJ_PORT") {
            let port: u16 = v.trim().parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                Error::config("DJ_PORT", format!("`{v}` is not a port number (1-65535)"))
            })?;
            set("DJ_PORT", "port", json!(port))?;
        }
        if let Some(v) = self.var("DJ_BACKEND") {
            let backend: DatabaseBackend = v.parse().map_err(|_| {
                Error::config(
                    "DJ_BACKEND",
                    format!(
                        "`{v}` is not a database backend; use `sqlite`, `postgresql` or `mysql`"
                    ),
                )
            })?;
            set("DJ_BACKEND", "backend", json!(backend.as_str()))?;
        }
        if let Some(v) = self.var("DJ_USE_TLS") {
            let tls = parse_env_bool("DJ_USE_TLS", &v)?;
            set("DJ_USE_TLS", "use_tls", json!(tls))?;
        }
        if let Some(v) = self.var("DJ_STORES") {
            let parsed: Json = parse_json_strict(&v, "stores")
                .map_err(|e| Error::config("DJ_STORES", json_error_message(&e)))?;
            let Json::Object(obj) = parsed else {
                return Err(Error::config(
                    "DJ_STORES",
                    "must be a JSON object in the shape of the `stores` section",
                ));
            };
            let mut wrapped = Map::new();
            wrapped.insert("stores".into(), Json::Object(obj));
            let mut normalized = normalize_tree(wrapped)?;
            let stores = normalized
                .remove("stores")
                .unwrap_or_else(|| Json::Object(Map::new()));
            tree.insert("stores".into(), stores);
        }
        Ok(())
    }
}

/// Find `datajoint.json` from `start` upward. The search stops (after checking it) at a directory
/// containing `.git` or `.hg`, and at the file-system root.
pub fn find_config_file(start: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(start).unwrap_or_else(|_| start.to_path_buf());
    let mut dir: &Path = &start;
    loop {
        let candidate = dir.join(CONFIG_FILE_NAME);
        if candidate.is_file() {
            return Some(candidate);
        }
        if dir.join(".git").exists() || dir.join(".hg").exists() {
            return None;
        }
        dir = dir.parent()?;
    }
}

fn parse_env_bool(var: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Ok(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Ok(false),
        _ => Err(Error::config(
            var,
            format!("`{v}` is not a boolean; use `true` or `false`"),
        )),
    }
}

fn read_config_file(path: &Path) -> Result<Map<String, Json>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse_tree(&text, &path.display().to_string())
}

fn parse_tree(text: &str, what: &str) -> Result<Map<String, Json>> {
    let parsed: Json = parse_json_strict(text, "").map_err(|e| Error::ConfigFile {
        path: what.to_string(),
        message: json_error_message(&e),
    })?;
    let Json::Object(obj) = parsed else {
        return Err(Error::ConfigFile {
            path: what.to_string(),
            message: "the top level must be a JSON object".into(),
        });
    };
    // A key given twice in two spellings (nested and dotted) is reported with the file too.
    normalize_tree(obj).map_err(|e| match e {
        Error::Config { .. } => Error::ConfigFile {
            path: what.to_string(),
            message: e.to_string(),
        },
        other => other,
    })
}

/// "invalid JSON: …" for a syntax error; the message itself for a duplicate key.
fn json_error_message(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => e.to_string(),
        _ => format!("invalid JSON: {e}"),
    }
}

/// Parse JSON as `serde_json` does, except that an object giving one key twice is an error
/// naming the key by its dotted path under `root` (`serde_json` silently keeps the last value).
fn parse_json_strict(text: &str, root: &str) -> serde_json::Result<Json> {
    use serde::de::DeserializeSeed as _;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = StrictJson {
        path: root.to_string(),
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A JSON value whose objects must not repeat a key; `path` is the value's dotted path.
struct StrictJson {
    path: String,
}

impl StrictJson {
    fn child(&self, key: &str) -> StrictJson {
        StrictJson {
            path: if self.path.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", self.path)
            },
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for StrictJson {
    type Value = Json;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictJson {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Json, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictJson {
            path: format!("{}[{}]", self.path, items.len()),
        })? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Json, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = self.child(&key);
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    child.path
                )));
            }
            let value = map.next_value_seed(child)?;
            out.insert(key, value);
        }
        Ok(Json::Object(out))
    }
}

/// Merge nested and dotted keys into one nested tree, unwrapping the `object_storage` alias.
fn normalize_tree(obj: Map<String, Json>) -> Result<Map<String, Json>> {
    let mut entries: Vec<(String, Json)> = Vec::with_capacity(obj.len());
    for (key, value) in obj {
        let (first, rest) = match key.split_once('.') {
            Some((f, r)) => (f, Some(r)),
            None => (key.as_str(), None),
        };
        if first != "object_storage" {
            entries.push((key, value));
            continue;
        }
        match rest {
            Some(rest) => entries.push((alias_key(rest)?, value)),
            None => match value {
                Json::Object(inner) => {
                    for (k, v) in inner {
                        entries.push((alias_key(&k)?, v));
                    }
                }
                Json::Null => {}
                _ => {
                    return Err(Error::config(
                        "object_storage",
                        "must be an object holding `stores`",
                    ));
                }
            },
        }
    }
    let mut out = Map::new();
    for (key, value) in entries {
        insert_dotted(&mut out, &[], &key, value)?;
    }
    Ok(out)
}

fn alias_key(rest: &str) -> Result<String> {
    if rest == "stores" || rest.starts_with("stores.") {
        Ok(rest.to_string())
    } else {
        Err(Error::config(
            format!("object_storage.{rest}"),
            "unknown key; only `object_storage.stores` is accepted (as another spelling of `stores`)",
        ))
    }
}

fn insert_dotted(
    root: &mut Map<String, Json>,
    parent: &[String],
    key: &str,
    value: Json,
) -> Result<()> {
    let mut path: Vec<String> = parent.to_vec();
    for seg in key.split('.') {
        if seg.is_empty() {
            return Err(Error::config(
                dotted(parent, key),
                "empty segment in a dotted key",
            ));
        }
        path.push(seg.to_string());
    }
    // Only the first MAX_KEY_DEPTH levels are structure; deeper dotted text stays one key.
    if path.len() > MAX_KEY_DEPTH {
        let tail = path[MAX_KEY_DEPTH - 1..].join(".");
        path.truncate(MAX_KEY_DEPTH - 1);
        path.push(tail);
    }
    let full = path.join(".");
    let (last, dirs) = path
        .split_last()
        .ok_or_else(|| Error::config(key, "empty key"))?;
    let mut node = &mut *root;
    for (i, d) in dirs.iter().enumerate() {
        let entry = node
            .entry(d.clone())
            .or_insert_with(|| Json::Object(Map::new()));
        node = match entry {
            Json::Object(m) => m,
            _ => {
                return Err(Error::config(
                    path[..=i].join("."),
                    format!("is given a value and also used as a section (by `{full}`)"),
                ));
            }
        };
    }
    match value {
        Json::Object(inner) if path.len() < MAX_KEY_DEPTH => {
            match node
                .entry(last.clone())
                .or_insert_with(|| Json::Object(Map::new()))
            {
                Json::Object(_) => {}
                _ => {
                    return Err(Error::config(
                        full,
                        "is given a value and also used as a section",
                    ));
                }
            }
            for (k, v) in inner {
                insert_dotted(root, &path, &k, v)?;
            }
            Ok(())
        }
        value => {
            match node.get(last.as_str()) {
                Some(Json::Object(_)) => {
                    return Err(Error::config(
                        full,
                        "is given a value and also used as a section",
                    ));
                }
                Some(_) => {
                    return Err(Error::config(
                        full,
                        "is given more than once (check nested and dotted spellings)",
                    ));
                }
                None => {}
            }
            node.insert(last.clone(), value);
            Ok(())
        }
    }
}

fn dotted(parent: &[String], key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{}.{key}", parent.join("."))
    }
}

fn is_absent(v: Option<&Json>) -> bool {
    matches!(v, None | Some(Json::Null))
}

/// Fill missing values from the files in `dir`: `database.user`, `database.password`,
/// `database.url` and `stores.<name>.<attr>` for configured stores.
fn apply_secrets(tree: &mut Map<String, Json>, dir: &Path, origins: &mut Origins) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        names.push((name, entry.path()));
    }
    names.sort();
    for (name, path) in names {
        let parts: Vec<&str> = name.split('.').collect();
        let slot: Option<(&mut Map<String, Json>, &str)> = match parts.as_slice() {
            ["database", attr @ ("user" | "password" | "url")] => {
                match tree
                    .entry("database")
                    .or_insert_with(|| Json::Object(Map::new()))
                {
                    Json::Object(m) => Some((m, *attr)),
                    _ => None,
                }
            }
            ["stores", store, attr] if !store.is_empty() && !attr.is_empty() => {
                match tree.get_mut("stores").and_then(|s| s.get_mut(*store)) {
                    Some(Json::Object(m)) => Some((m, *attr)),
                    _ => {
                        tracing::debug!(secret = %name, "ignoring secret for a store that is not configured");
                        None
                    }
                }
            }
            _ => {
                tracing::debug!(secret = %name, "ignoring file in the secrets directory that names no known setting");
                None
            }
        };
        let Some((map, attr)) = slot else { continue };
        if !is_absent(map.get(attr)) {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        tracing::debug!(secret = %name, dir = %dir.display(), "filled setting from secrets directory");
        map.insert(attr.to_string(), Json::String(text.trim().to_string()));
        if parts.first() == Some(&"database") {
            origins.insert(attr.to_string(), SettingOrigin::Secret(path.clone()));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Typed values out of the tree
// ------------------------------------------------------------------------------------------------

fn json_kind(v: &Json) -> &'static str {
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
fn type_error(key: &str, expected: &str, found: &Json) -> Error {
    Error::config(
        key,
        format!("expected {expected}, found {}", json_kind(found)),
    )
}

fn opt_string(key: &str, v: &Json) -> Result<Option<String>> {
    match v {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s.clone())),
        other => Err(type_error(key, "a string", other)),
    }
}

/// A secret: a string; empty counts as absent.
fn opt_secret(key: &str, v: &Json) -> Result<Option<Secret>> {
    Ok(opt_string(key, v)?
        .filter(|s| !s.is_empty())
        .map(Secret::new))
}

fn opt_bool(key: &str, v: &Json) -> Result<Option<bool>> {
    match v {
        Json::Null => Ok(None),
        Json::Bool(b) => Ok(Some(*b)),
        other => Err(type_error(key, "true or false", other)),
    }
}

fn opt_int(key: &str, v: &Json) -> Result<Option<i64>> {
    match v {
        Json::Null => Ok(None),
        Json::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| type_error(key, "an integer", v)),
        other => Err(type_error(key, "an integer", other)),
    }
}

fn unknown_key(key: &str, allowed: &[&str]) -> Error {
    Error::config(
        key,
        format!(
            "unknown configuration key; allowed here: {}",
            allowed.join(", ")
        ),
    )
}

fn build_config(
    tree: Map<String, Json>,
    base: &Path,
    registry: &Registry,
    origins: &Origins,
) -> Result<Config> {
    let mut config = Config::default();
    let mut database: Option<Json> = None;
    for (key, value) in tree {
        match key.as_str() {
            "database" => database = Some(value),
            "stores" => config.stores = build_stores(&value, base, registry)?,
            "download_path" => {
                if let Some(p) = opt_string("download_path", &value)? {
                    config.download_path = PathBuf::from(p);
                }
            }
            "safemode" => {
                if let Some(b) = opt_bool("safemode", &value)? {
                    config.safemode = b;
                }
            }
            "blob_compression" => {
                if let Some(v) = opt_string("blob_compression", &value)? {
                    config.blob_compression = v.parse()?;
                }
            }
            "blob_max_decompressed_size" => {
                if let Some(n) = opt_int("blob_max_decompressed_size", &value)? {
                    config.blob_max_decompressed_size =
                        u64::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                            Error::config(
                                "blob_max_decompressed_size",
                                "must be a positive number of bytes",
                            )
                        })?;
                }
            }
            "transfer_concurrency" => {
                if let Some(n) = opt_int("transfer_concurrency", &value)? {
                    config.transfer_concurrency =
                        usize::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
                            Error::config("transfer_concurrency", "must be a positive integer")
                        })?;
                }
            }
            k if IGNORED_TOP_LEVEL.contains(&k) => {
                tracing::debug!(
                    key = k,
                    "ignoring DataJoint Python setting without effect in dj-rs"
                );
            }
            k => {
                let Some((_, allowed)) = IGNORED_GROUPS.iter().find(|(g, _)| *g == k) else {
                    let mut known: Vec<&str> = TOP_LEVEL_KEYS.to_vec();
                    known.extend(IGNORED_TOP_LEVEL);
                    known.extend(IGNORED_GROUPS.iter().map(|(g, _)| *g));
                    return Err(unknown_key(k, &known));
                };
                match &value {
                    Json::Null => {}
                    Json::Object(m) => {
                        for sub in m.keys() {
                            if !allowed.contains(&sub.as_str()) {
                                return Err(unknown_key(&format!("{k}.{sub}"), allowed));
                            }
                        }
                        tracing::debug!(
                            key = k,
                            "ignoring DataJoint Python settings without effect in dj-rs"
                        );
                    }
                    other => return Err(type_error(k, "an object", other)),
                }
            }
        }
    }
    config.database = build_database(database.as_ref(), base, origins)?;
    Ok(config)
}

fn build_database(value: Option<&Json>, base: &Path, origins: &Origins) -> Result<DatabaseConfig> {
    let mut db = DatabaseConfig::default();
    let empty = Map::new();
    let map = match value {
        None | Some(Json::Null) => &empty,
        Some(Json::Object(m)) => m,
        Some(other) => return Err(type_error("database", "an object", other)),
    };
    let mut origins = origins.clone();
    let origin_in = |origins: &Origins, key: &str| -> SettingOrigin {
        key.strip_prefix("database.")
            .and_then(|attr| origins.get(attr))
            .cloned()
            .unwrap_or(SettingOrigin::File)
    };
    let mut backend: Option<DatabaseBackend> = None;
    for (k, v) in map {
        let key = format!("database.{k}");
        match k.as_str() {
            "backend" => {
                if let Some(s) = opt_string(&key, v)? {
                    backend = Some(s.parse()?);
                }
            }
            "host" => db.host = opt_string(&key, v)?,
            "port" => {
                if let Some(p) = opt_int(&key, v)? {
                    db.port = Some(port_number(&key, p)?);
                }
            }
            "user" => db.user = opt_string(&key, v)?,
            "password" => db.password = opt_secret(&key, v)?,
            "name" => db.name = opt_string(&key, v)?,
            "url" => db.url = opt_secret(&key, v)?,
            "path" => db.path = opt_string(&key, v)?.map(|p| resolve_path(base, &p)),
            "use_tls" => match v {
                Json::Null | Json::Bool(false) => {}
                Json::Bool(true) | Json::Object(_) => {
                    let named = match origin_in(&origins, &key) {
                        SettingOrigin::Env(var) => var,
                        _ => key.clone(),
                    };
                    return Err(Error::config(
                        named,
                        "asks for TLS, but dj-rs is built without TLS and would connect \
                         unencrypted; set it to false (or remove it) to connect without TLS",
                    ));
                }
                other => return Err(type_error(&key, "true, false or an object", other)),
            },
            other if IGNORED_DATABASE_KEYS.contains(&other) => {
                tracing::debug!(key = %key, "ignoring DataJoint Python setting without effect in dj-rs");
            }
            _ => {
                let mut known = DATABASE_KEYS.to_vec();
                known.extend(IGNORED_DATABASE_KEYS);
                return Err(unknown_key(&key, &known));
            }
        }
    }
    // `host:port`, as DataJoint reads it: the port in the host wins over `port`.
    if let Some(host) = &db.host
        && let Some((name, port)) = host.split_once(':')
        && !port.contains(':')
    {
        let p = port.trim().parse::<i64>().map_err(|_| {
            Error::config(
                "database.host",
                "has a `:` that is not followed by a port number (1-65535)",
            )
        })?;
        db.port = Some(port_number("database.host", p)?);
        db.host = Some(name.to_string());
        let host_origin = origin_in(&origins, "database.host");
        origins.insert("port".into(), host_origin);
    }
    let origin = |key: &str| origin_in(&origins, key);

    let from_url = match &db.url {
        None => None,
        Some(u) => match url_backend(u.expose()) {
            Some(b) => Some(b),
            None if backend.is_none() => {
                return Err(Error::config(
                    "database.url",
                    "has no scheme that names a backend (`postgres://`, `postgresql://`, \
                     `mysql://`, `mariadb://`, `sqlite:`); fix the URL or set `database.backend`",
                ));
            }
            None => None,
        },
    };
    let server: Vec<(String, SettingOrigin)> = db
        .server_settings()
        .into_iter()
        .map(|k| (k.to_string(), origin(k)))
        .collect();
    (db.backend, db.backend_source) = match (backend, from_url) {
        (Some(b), Some(u)) if b != u => {
            return Err(Error::config(
                "database.url",
                format!("the URL's scheme is for {u}, but `database.backend` is {b}"),
            ));
        }
        (Some(b), _) => (b, BackendSource::Backend(origin("database.backend"))),
        (None, Some(u)) => (u, BackendSource::UrlScheme(origin("database.url"))),
        // Never SQLite when a server is named: DataJoint's default backend, unless a SQLite file
        // is named too, which leaves nothing to go by.
        (None, None) if !server.is_empty() => {
            if db.path.is_some() {
                let (key, o) = &server[0];
                return Err(Error::config(
                    "database.backend",
                    format!(
                        "is not set, and {} names a server while `database.path` names a SQLite \
                         file; set `database.backend` (or `DJ_BACKEND`) to `mysql`, `postgresql` \
                         or `sqlite`",
                        setting_phrase(key, o)
                    ),
                ));
            }
            (
                DatabaseBackend::Mysql,
                BackendSource::ServerSettings(server),
            )
        }
        (None, None) => (DatabaseBackend::Sqlite, BackendSource::Default),
    };
    if db.backend == DatabaseBackend::Sqlite && db.path.is_none() && db.url.is_none() {
        db.path = Some(base.join("datajoint.sqlite"));
    }
    db.validate_with(&|k| Some(origin(k)))?;
    Ok(db)
}

fn port_number(key: &str, p: i64) -> Result<u16> {
    u16::try_from(p)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| Error::config(key, "must be a port number (1-65535)"))
}

/// The backend a connection URL's scheme names (the scheme is not secret; the rest may be).
fn url_backend(url: &str) -> Option<DatabaseBackend> {
    let scheme = url.split_once(':')?.0.to_ascii_lowercase();
    match scheme.as_str() {
        "postgres" | "postgresql" => Some(DatabaseBackend::Postgresql),
        "mysql" | "mariadb" => Some(DatabaseBackend::Mysql),
        "sqlite" => Some(DatabaseBackend::Sqlite),
        _ => None,
    }
}

fn is_store_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn build_stores(value: &Json, base: &Path, registry: &Registry) -> Result<StoresConfig> {
    let mut stores = StoresConfig::default();
    let map = match value {
        Json::Null => return Ok(stores),
        Json::Object(m) => m,
        other => return Err(type_error("stores", "an object", other)),
    };
    for (name, v) in map {
        match name.as_str() {
            "default" => stores.default = opt_string("stores.default", v)?,
            "filepath_default" => {
                stores.filepath_default = opt_string("stores.filepath_default", v)?
            }
            _ => {
                if !is_store_name(name) {
                    return Err(Error::config(
                        format!("stores.{name}"),
                        "is not a valid store name (letters, digits, `_` and `-`, not starting with `-`)",
                    ));
                }
                let spec = build_store_spec(name, v, base, registry)?;
                stores.specs.insert(name.clone(), spec);
            }
        }
    }
    for (key, target) in [
        ("stores.default", &stores.default),
        ("stores.filepath_default", &stores.filepath_default),
    ] {
        if let Some(t) = target
            && !stores.specs.contains_key(t)
        {
            return Err(Error::config(
                key,
                format!(
                    "names store `{t}`, which is not configured; configured stores: {}",
                    known_list(stores.specs.keys())
                ),
            ));
        }
    }
    Ok(stores)
}

fn build_store_spec(
    name: &str,
    value: &Json,
    base: &Path,
    registry: &Registry,
) -> Result<StoreSpec> {
    let skey = |k: &str| format!("stores.{name}.{k}");
    let map = match value {
        Json::Object(m) => m,
        other => {
            return Err(type_error(
                &format!("stores.{name}"),
                "an object (a store spec)",
                other,
            ));
        }
    };
    let protocol = match map.get("protocol") {
        None | Some(Json::Null) => {
            return Err(Error::config(
                skey("protocol"),
                format!(
                    "missing: store `{name}` needs a protocol (one of: {})",
                    registry.list_protocols().join(", ")
                ),
            ));
        }
        Some(Json::String(p)) => p.to_ascii_lowercase(),
        Some(other) => return Err(type_error(&skey("protocol"), "a string", other)),
    };
    let Some(entry) = registry.protocol(&protocol) else {
        return Err(Error::UnknownProtocol {
            store: name.to_string(),
            protocol,
            known: registry.list_protocols().join(", "),
        });
    };

    let mut spec = StoreSpec::new(name, protocol.clone(), "");
    for (k, v) in map {
        let key = skey(k);
        match k.as_str() {
            "protocol" | "stage" => {}
            "location" => spec.location = opt_string(&key, v)?.unwrap_or_default(),
            "subfolding" => spec.subfolding = parse_subfolding(&key, v)?,
            "partition_pattern" => {
                spec.partition_pattern = opt_string(&key, v)?.filter(|p| !p.is_empty());
                if let Some(p) = &spec.partition_pattern {
                    partition_attributes(p).map_err(|e| match e {
                        Error::InvalidPath { reason, .. } => Error::config(&key, reason),
                        other => other,
                    })?;
                }
            }
            "token_length" => {
                if let Some(n) = opt_int(&key, v)? {
                    spec.token_length =
                        usize::try_from(n.clamp(0, 64)).unwrap_or(DEFAULT_TOKEN_LENGTH);
                    spec.token_length = clamp_token_length(spec.token_length);
                }
            }
            "hash_prefix" => {
                if let Some(p) = opt_string(&key, v)? {
                    spec.hash_prefix = normalize_prefix(&p, &key)?;
                }
            }
            "schema_prefix" => {
                if let Some(p) = opt_string(&key, v)? {
                    spec.schema_prefix = normalize_prefix(&p, &key)?;
                }
            }
            "filepath_prefix" => {
                spec.filepath_prefix = match opt_string(&key, v)? {
                    Some(p) => Some(normalize_prefix(&p, &key)?).filter(|p| !p.is_empty()),
                    None => None,
                };
            }
            "hash_algorithm" => {
                if let Some(a) = opt_string(&key, v)? {
                    spec.hash_algorithm = a.parse().map_err(|_| {
                        Error::config(
                            &key,
                            format!("`{a}` is not a hash algorithm; use `md5` or `blake3`"),
                        )
                    })?;
                }
            }
            // The protocol's own: read and checked by its store crate.
            _ => {
                if !v.is_null() {
                    spec.options.insert(k.clone(), v.clone());
                }
            }
        }
    }
    (entry.check)(&mut spec, &SpecContext::new(base))?;
    check_prefix_separation(&spec)?;
    Ok(spec)
}

fn parse_subfolding(key: &str, v: &Json) -> Result<Option<Vec<usize>>> {
    let items = match v {
        Json::Null => return Ok(None),
        Json::Array(items) => items,
        other => {
            return Err(type_error(
                key,
                "a list of positive integers, e.g. [2, 2]",
                other,
            ));
        }
    };
    let mut folds = Vec::with_capacity(items.len());
    for item in items {
        let n = item
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| type_error(key, "a list of positive integers, e.g. [2, 2]", item))?;
        folds.push(n);
    }
    if folds.iter().sum::<usize>() > MAX_SUBFOLDING_TOTAL {
        return Err(Error::config(
            key,
            format!("the folds add up to more than {MAX_SUBFOLDING_TOTAL} characters"),
        ));
    }
    Ok(if folds.is_empty() { None } else { Some(folds) })
}

/// The hash, schema and filepath sections must not contain one another.
fn check_prefix_separation(spec: &StoreSpec) -> Result<()> {
    let named: Vec<(&str, &str)> = [
        ("hash_prefix", spec.hash_prefix.as_str()),
        ("schema_prefix", spec.schema_prefix.as_str()),
        (
            "filepath_prefix",
            spec.filepath_prefix.as_deref().unwrap_or(""),
        ),
    ]
    .into_iter()
    .filter(|(_, p)| !p.is_empty())
    .collect();
    let nested = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
    };
    for (i, (n1, p1)) in named.iter().enumerate() {
        for (n2, p2) in &named[i + 1..] {
            if nested(p1, p2) {
                return Err(Error::config(
                    format!("stores.{}.{n2}", spec.name),
                    format!(
                        "`{p2}` overlaps {n1} `{p1}` in store `{}`; the sections must not contain one another",
                        spec.name
                    ),
                ));
            }
        }
    }
    Ok(())
}
