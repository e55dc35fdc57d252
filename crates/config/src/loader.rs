//! Loading the configuration: finding `datajoint.json`, environment overrides, secrets, and
//! validation (each store's protocol options through the protocol registered for it).
//!
//! The configuration's types are in the crate root; this module reads them, and is the one place
//! where configuration meets the [`Registry`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::{Map, Value as Json, json};

use crate::*;
use dj_core::config::resolve_path;
use dj_core::error::{Error, Result};
use dj_core::registry::Registry;
use dj_layout::{
    DEFAULT_TOKEN_LENGTH, MD5_HASH_LEN, clamp_token_length, normalize_prefix, partition_attributes,
};

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
    ("jobs", JOBS_KEYS),
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
}

/// Loads a [`Config`] with every input replaceable: the start directory, the environment, the
/// system secrets directory and the protocol registry.
///
/// ```
/// use dj_config::ConfigLoader;
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
    /// `/run/secrets/datajoint`, validating plugin protocols against [`Registry::global`].
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
        self.apply_jobs_env(tree)
    }

    /// `DJ_JOBS_<KEY>` (DataJoint 2.3.5's names for the `jobs` settings) over the file's
    /// `jobs.<key>`. Each value is checked here, so that an error names the variable.
    fn apply_jobs_env(&self, tree: &mut Map<String, Json>) -> Result<()> {
        let mut found = Vec::new();
        for key in JOBS_KEYS {
            let var = format!("DJ_JOBS_{}", key.to_ascii_uppercase());
            let Some(v) = self.var(&var) else { continue };
            let value =
                match *key {
                    "stale_timeout" | "default_priority" => {
                        json!(v.trim().parse::<i64>().map_err(|_| {
                            Error::config(&var, format!("`{v}` is not an integer"))
                        })?)
                    }
                    "version_method" => json!(v.trim()),
                    _ => json!(parse_env_bool(&var, &v)?),
                };
            let one = Json::Object(Map::from_iter([(key.to_string(), value.clone())]));
            read_jobs(&one, &mut JobsConfig::default())
                .map_err(|e| Error::config(&var, e.to_string()))?;
            found.push((key.to_string(), value));
        }
        if found.is_empty() {
            return Ok(());
        }
        let jobs = tree
            .entry("jobs")
            .or_insert_with(|| Json::Object(Map::new()));
        if jobs.is_null() {
            *jobs = Json::Object(Map::new());
        }
        let Json::Object(m) = jobs else {
            return Err(type_error("jobs", "an object", jobs));
        };
        m.extend(found);
        Ok(())
    }
}

/// The keys of DataJoint 2.3.5's `jobs` settings (also its `DJ_JOBS_<KEY>` variables).
const JOBS_KEYS: &[&str] = &[
    "auto_refresh",
    "keep_completed",
    "stale_timeout",
    "default_priority",
    "version_method",
    "allow_new_pk_fields_in_computed_tables",
    "add_job_metadata",
];

/// Find `datajoint.json` from `start` upward. The search stops (after checking it) at a directory
/// containing `.git` or `.hg`, and at the file-system root.
pub(crate) fn find_config_file(start: &Path) -> Option<PathBuf> {
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
            "jobs" => read_jobs(&value, &mut config.jobs)?,
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

/// The `jobs` section: every DataJoint key is accepted; the ones dj-rs acts on are read.
fn read_jobs(value: &Json, jobs: &mut JobsConfig) -> Result<()> {
    let allowed = IGNORED_GROUPS
        .iter()
        .find(|(g, _)| *g == "jobs")
        .map(|(_, a)| *a)
        .unwrap_or(&[]);
    let m = match value {
        Json::Null => return Ok(()),
        Json::Object(m) => m,
        other => return Err(type_error("jobs", "an object", other)),
    };
    for (sub, v) in m {
        let key = format!("jobs.{sub}");
        match sub.as_str() {
            "auto_refresh" => {
                if let Some(b) = opt_bool(&key, v)? {
                    jobs.auto_refresh = b;
                }
            }
            "keep_completed" => {
                if let Some(b) = opt_bool(&key, v)? {
                    jobs.keep_completed = b;
                }
            }
            "add_job_metadata" => {
                if let Some(b) = opt_bool(&key, v)? {
                    jobs.add_job_metadata = b;
                }
            }
            "stale_timeout" => {
                if let Some(n) = opt_int(&key, v)? {
                    jobs.stale_timeout = u64::try_from(n).map_err(|_| {
                        Error::config(&key, "must be a number of seconds, 0 or more")
                    })?;
                }
            }
            "default_priority" => {
                if let Some(n) = opt_int(&key, v)? {
                    jobs.default_priority = u8::try_from(n)
                        .map_err(|_| Error::config(&key, "must be between 0 and 255"))?;
                }
            }
            "version_method" => {
                jobs.version_method = match opt_string(&key, v)? {
                    Some(s) => s.parse()?,
                    None => VersionMethod::None,
                };
            }
            s if allowed.contains(&s) => {
                tracing::debug!(key = %key, "ignoring DataJoint Python setting without effect in dj-rs");
            }
            _ => return Err(unknown_key(&key, allowed)),
        }
    }
    Ok(())
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
            // `:memory:` is SQLite's in-memory database, not a file beside the config.
            "path" => {
                db.path = opt_string(&key, v)?.map(|p| {
                    if p == ":memory:" {
                        PathBuf::from(p)
                    } else {
                        resolve_path(base, &p)
                    }
                })
            }
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
            "retry" => spec.retry = parse_retry(&key, v)?,
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

/// The keys of `stores.<name>.retry`.
const RETRY_KEYS: &[&str] = &[
    "max_attempts",
    "initial_backoff_ms",
    "max_backoff_ms",
    "max_elapsed_ms",
];

/// `stores.<name>.retry`: `false` (one attempt), `true` or `null` (the protocol's defaults), or
/// an object of [`RETRY_KEYS`]; errors name `stores.<name>.retry.<key>`.
fn parse_retry(key: &str, v: &Json) -> Result<RetrySettings> {
    let map = match v {
        Json::Null | Json::Bool(true) => return Ok(RetrySettings::default()),
        Json::Bool(false) => return Ok(RetrySettings::never()),
        Json::Object(m) => m,
        other => {
            return Err(type_error(
                key,
                "false, or an object with max_attempts, initial_backoff_ms, max_backoff_ms, \
                 max_elapsed_ms",
                other,
            ));
        }
    };
    let mut retry = RetrySettings::default();
    for (k, v) in map {
        let sub = format!("{key}.{k}");
        let n = if RETRY_KEYS.contains(&k.as_str()) {
            match v {
                Json::Null => continue,
                Json::Number(n) => n
                    .as_u64()
                    .ok_or_else(|| type_error(&sub, "a whole number, 0 or more", v))?,
                other => return Err(type_error(&sub, "a whole number, 0 or more", other)),
            }
        } else {
            return Err(unknown_key(&sub, RETRY_KEYS));
        };
        let ms = Duration::from_millis(n);
        match k.as_str() {
            "max_attempts" => {
                let attempts = u32::try_from(n).ok().filter(|a| *a >= 1).ok_or_else(|| {
                    Error::config(
                        &sub,
                        format!(
                            "is {n}: attempts in all, the first included, from 1 (no retry) to \
                             {}; `\"retry\": false` turns retries off",
                            u32::MAX
                        ),
                    )
                })?;
                retry.max_attempts = Some(attempts);
            }
            "initial_backoff_ms" => retry.initial_backoff = Some(ms),
            "max_backoff_ms" => retry.max_backoff = Some(ms),
            _ => retry.max_elapsed = Some(ms),
        }
    }
    if let (Some(initial), Some(max)) = (retry.initial_backoff, retry.max_backoff)
        && initial > max
    {
        return Err(Error::config(
            format!("{key}.initial_backoff_ms"),
            format!(
                "is {} ms, more than max_backoff_ms ({} ms)",
                initial.as_millis(),
                max.as_millis()
            ),
        ));
    }
    Ok(retry)
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
