//! Configuration: `datajoint.json`, `DJ_*` environment overrides and secrets.
//!
//! (Loading and validation are implemented below the type definitions.)

use std::fmt;
use std::path::PathBuf;

use indexmap::IndexMap;

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
#[derive(Clone, Debug, PartialEq)]
pub struct StoreSpec {
    /// The store's name (its key under `stores`).
    pub name: String,
    /// `file`, `s3`, `gcs`, `azure`, `memory`, or a plugin protocol.
    pub protocol: String,
    /// Base directory (file) or key prefix inside the bucket/container.
    pub location: String,
    /// S3 endpoint: `host`, `host:port` or a full `http(s)://` URL.
    pub endpoint: Option<String>,
    /// S3/GCS bucket.
    pub bucket: Option<String>,
    /// S3 access key id; with `secret_key`, or neither for the ambient credential chain.
    pub access_key: Option<Secret>,
    /// S3 secret access key.
    pub secret_key: Option<Secret>,
    /// Scheme for an endpoint without one: `https` when true (the default), `http` otherwise.
    pub secure: bool,
    /// S3 region (dj-rs extension; DataJoint has none).
    pub region: Option<String>,
    /// GCS token (a path to a service-account JSON, or a token value).
    pub token: Option<Secret>,
    /// GCS project.
    pub project: Option<String>,
    /// Azure container.
    pub container: Option<String>,
    /// Azure account name.
    pub account_name: Option<String>,
    /// Azure account key.
    pub account_key: Option<Secret>,
    /// Azure connection string.
    pub connection_string: Option<Secret>,
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
    /// Keys a plugin protocol accepts beyond the common ones, as given.
    pub extra: IndexMap<String, serde_json::Value>,
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
    /// SQLite, embedded; the default.
    #[default]
    Sqlite,
    /// PostgreSQL.
    Postgresql,
    /// MySQL or MariaDB.
    Mysql,
}

/// The `database` section.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DatabaseConfig {
    /// The backend.
    pub backend: DatabaseBackend,
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
    /// The file the configuration came from, if any.
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: DatabaseConfig::default(),
            stores: StoresConfig::default(),
            download_path: PathBuf::from("."),
            safemode: true,
            transfer_concurrency: 16,
            source: None,
        }
    }
}

impl StoreSpec {
    /// A spec with DataJoint's defaults for everything but name, protocol and location.
    pub fn new(name: impl Into<String>, protocol: impl Into<String>, location: impl Into<String>) -> Self {
        StoreSpec {
            name: name.into(),
            protocol: protocol.into(),
            location: location.into(),
            endpoint: None,
            bucket: None,
            access_key: None,
            secret_key: None,
            secure: true,
            region: None,
            token: None,
            project: None,
            container: None,
            account_name: None,
            account_key: None,
            connection_string: None,
            subfolding: None,
            partition_pattern: None,
            token_length: 8,
            hash_prefix: "_hash".into(),
            schema_prefix: "_schema".into(),
            filepath_prefix: None,
            hash_algorithm: HashAlgorithm::Md5,
            extra: IndexMap::new(),
        }
    }
}
