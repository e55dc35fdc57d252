//! # dj-config: the configuration of dj-rs
//!
//! `datajoint.json`, `DJ_*` environment overrides and secrets.
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
//! (see [`StoreCheck`](dj_core::registry::StoreCheck)). Secret values never appear in
//! `Debug` output, logs or error messages. The full key reference is `docs/configuration.md`.
//!
//! ```
//! use std::sync::Arc;
//! use dj_config::{Config, DatabaseBackend};
//! use dj_core::config::{HashAlgorithm, SpecContext, StoreSpec};
//! use dj_core::registry::{ProtocolEntry, Registry};
//! # fn open(_: &StoreSpec, _: &SpecContext) -> dj_core::Result<Arc<dyn dj_core::store::Store>> {
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
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use dj_core::error::{Error, Result};

pub use dj_core::config::{
    BlobCompression, COMMON_STORE_KEYS, DEFAULT_BLOB_MAX_DECOMPRESSED_SIZE, HashAlgorithm,
    RetrySettings, Secret, SpecContext, StoreSpec, StoresConfig, is_secret_key_name,
};

mod loader;

pub use loader::ConfigLoader;

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

/// The whole configuration: the database, the job settings and `safemode`, around the settings
/// codecs and stores read ([`dj_core::config::Config`]: `stores`, `download_path`,
/// `transfer_concurrency`, `blob_compression`, `blob_max_decompressed_size`, `source`).
///
/// It dereferences to those, so `config.stores` and `config.download_path` read and write as
/// fields; [`Config::core`] hands them to a [`StoreSet`](dj_core::registry::StoreSet) or a
/// codec context without copying.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The `database` section.
    pub database: DatabaseConfig,
    /// Whether destructive operations ask first (DataJoint's `safemode`).
    pub safemode: bool,
    /// The secrets directory that was read, if any.
    pub secrets_dir: Option<PathBuf>,
    /// The `jobs` section (populate and the job queue).
    pub jobs: JobsConfig,
    /// The settings codecs and stores read.
    core: Arc<dj_core::config::Config>,
}

/// The `jobs` section, as DataJoint 2.3.5's `config.jobs` (the settings dj-rs reads; the other,
/// `allow_new_pk_fields_in_computed_tables`, is accepted and ignored). `DJ_JOBS_<KEY>`
/// environment variables override the file, as every `DJ_*` variable.
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
    /// What populate records as a job's code version, in the job table's `version` and the
    /// `_job_version` column (default: none, an empty version).
    pub version_method: VersionMethod,
}

/// How populate finds the code version it records with each job (`jobs.version_method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VersionMethod {
    /// No version: recorded empty (DataJoint's `null` and `"none"`).
    #[default]
    None,
    /// The short commit hash of the git repository around the working directory
    /// (`git rev-parse --short HEAD`), or empty when there is none (`"git"`).
    Git,
}

impl VersionMethod {
    /// The configuration value: `"none"` or `"git"`.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionMethod::None => "none",
            VersionMethod::Git => "git",
        }
    }
}

impl std::str::FromStr for VersionMethod {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(VersionMethod::None),
            "git" => Ok(VersionMethod::Git),
            other => Err(Error::config(
                "jobs.version_method",
                format!("`{other}` is not a version method; use `git`, `none` or null"),
            )),
        }
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            auto_refresh: true,
            keep_completed: false,
            stale_timeout: 3600,
            default_priority: 5,
            add_job_metadata: false,
            version_method: VersionMethod::None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: DatabaseConfig::default(),
            safemode: true,
            secrets_dir: None,
            jobs: JobsConfig::default(),
            core: Arc::default(),
        }
    }
}

impl Config {
    /// The settings codecs and stores read, shared (a clone of the `Arc`).
    pub fn core(&self) -> Arc<dj_core::config::Config> {
        Arc::clone(&self.core)
    }
}

impl From<dj_core::config::Config> for Config {
    /// A configuration with these store and codec settings and defaults for the rest.
    fn from(core: dj_core::config::Config) -> Self {
        Config {
            core: Arc::new(core),
            ..Config::default()
        }
    }
}

impl From<Config> for Arc<dj_core::config::Config> {
    /// The store and codec settings of `config` (for [`StoreSet::new`](dj_core::registry::StoreSet::new)).
    fn from(config: Config) -> Self {
        config.core
    }
}

impl Deref for Config {
    type Target = dj_core::config::Config;
    fn deref(&self) -> &Self::Target {
        &self.core
    }
}

impl DerefMut for Config {
    /// Copies the store and codec settings first when a [`Config::core`] handle still shares them.
    fn deref_mut(&mut self) -> &mut Self::Target {
        Arc::make_mut(&mut self.core)
    }
}

// ================================================================================================
// Loading and validation
// ================================================================================================

/// The configuration file's name.
pub(crate) const CONFIG_FILE_NAME: &str = "datajoint.json";
/// The secrets directory looked for beside the configuration file.
pub(crate) const SECRETS_DIR_NAME: &str = ".secrets";
/// The secrets directory used when there is no `.secrets/` beside the file (Docker, Kubernetes).
pub(crate) const SYSTEM_SECRETS_DIR: &str = "/run/secrets/datajoint";

/// Environment variables DataJoint 2.3.5 reads that have no effect in dj-rs. dj-rs does not read
/// them; `dj config check` lists the ones that are set. A name ending in `_` is a prefix.
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
    "DJ_JOBS_ALLOW_NEW_PK_FIELDS_IN_COMPUTED_TABLES",
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
    pub(crate) fn default_port(self) -> Option<u16> {
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
    pub(crate) fn server_settings(&self) -> Vec<&'static str> {
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

    /// Check that the settings fit the backend: SQLite takes no server settings (host, port,
    /// user, password, name), and its file must not be a directory. The loader runs this; `dj_schema::Connection` runs it again, for configurations built in code
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
                "retry": {
                    "max_attempts": s.retry.max_attempts,
                    "initial_backoff_ms": s.retry.initial_backoff.map(|d| d.as_millis()),
                    "max_backoff_ms": s.retry.max_backoff.map(|d| d.as_millis()),
                    "max_elapsed_ms": s.retry.max_elapsed.map(|d| d.as_millis()),
                },
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
                "version_method": self.jobs.version_method.as_str(),
            },
        })
    }
}

// Core's list of configured names, shared with its `StoresConfig::get` (not a public API).
pub(crate) use dj_core::config::known_list;

/// How errors describe a JSON value's kind (never its value).
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
