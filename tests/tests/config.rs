//! Configuration loading, validation, precedence and secret redaction, with the store
//! protocols the facade links (each store crate checks its own options when a configuration is
//! loaded, so these tests run where `file`, `memory`, `s3`, `gcs` and `azure` are registered).
//!
//! The environment is injected (`ConfigLoader::env`), never set on the process, so these tests can
//! run in parallel.

// Test helpers may panic on fixture failures.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datajoint::stores::s3::S3Options;
use dj_config::ConfigLoader;
use dj_config::{
    BackendSource, Config, DatabaseBackend, DatabaseConfig, HashAlgorithm, SettingOrigin,
    SpecContext, StoreSpec,
};
use dj_core::registry::{ProtocolEntry, Registry};
use dj_core::store::Store;
use dj_core::{Error, Result};
use tempfile::TempDir;

/// A project folder with `.git`, so the upward search never leaves it.
fn project() -> TempDir {
    // Links the facade, and with it every store protocol these tests use.
    datajoint::check_registry().unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join(".git")).unwrap();
    dir
}

fn write_config(dir: &Path, json: &str) -> PathBuf {
    let p = dir.join("datajoint.json");
    fs::write(&p, json).unwrap();
    p
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn load(dir: &Path, env: &[(&str, &str)]) -> Result<Config> {
    let env = env_of(env);
    ConfigLoader::new(dir)
        .env(&env)
        .system_secrets_dir(None)
        .load()
}

fn err_text(r: Result<Config>) -> String {
    match r {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn from_json(json: &str, dir: &Path) -> Result<Config> {
    Config::from_json_str(json, dir)
}

// ------------------------------------------------------------------------------------------------
// Finding the file
// ------------------------------------------------------------------------------------------------

#[test]
fn no_file_gives_sqlite_defaults() {
    let dir = project();
    let c = load(dir.path(), &[]).unwrap();
    assert_eq!(c.database.backend, DatabaseBackend::Sqlite);
    let cwd = fs::canonicalize(dir.path()).unwrap();
    let path = fs::canonicalize(c.database.path.clone().unwrap().parent().unwrap()).unwrap();
    assert_eq!(path, cwd);
    assert!(c.stores.specs.is_empty());
    assert!(c.safemode);
    assert_eq!(c.transfer_concurrency, 16);
    assert_eq!(c.download_path, PathBuf::from("."));
    assert_eq!(c.source, None);
}

#[test]
fn file_is_found_upward_and_search_stops_at_git() {
    let dir = project();
    write_config(dir.path(), r#"{"database.host": "root-host"}"#);
    let deep = dir.path().join("a/b/c");
    fs::create_dir_all(&deep).unwrap();
    let c = load(&deep, &[]).unwrap();
    assert_eq!(c.database.host.as_deref(), Some("root-host"));
    assert!(c.source.clone().unwrap().ends_with("datajoint.json"));
    // A `.git` (or `.hg`) below the file ends the search there.
    fs::create_dir(dir.path().join("a/.hg")).unwrap();
    let c = load(&deep, &[]).unwrap();
    assert_eq!(c.database.host, None);
    assert_eq!(c.source, None);
    // The boundary directory itself is searched.
    write_config(&dir.path().join("a"), r#"{"database.host": "a-host"}"#);
    let c = load(&deep, &[]).unwrap();
    assert_eq!(c.database.host.as_deref(), Some("a-host"));
}

#[test]
fn bad_json_names_the_file() {
    let dir = project();
    write_config(dir.path(), "{\"database\": ");
    let err = err_text(load(dir.path(), &[]));
    assert!(
        err.contains("datajoint.json") && err.contains("invalid JSON"),
        "{err}"
    );
    write_config(dir.path(), "[1]");
    let err = err_text(load(dir.path(), &[]));
    assert!(err.contains("must be a JSON object"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// Shape: nested, dotted, aliases
// ------------------------------------------------------------------------------------------------

#[test]
fn nested_dotted_and_mixed_keys_agree() {
    let dir = project();
    let nested = from_json(
        r#"{"database": {"host": "h", "port": 5433}, "stores": {"default": "m", "m": {"protocol": "memory", "subfolding": [2, 2]}}}"#,
        dir.path(),
    )
    .unwrap();
    let dotted = from_json(
        r#"{"database.host": "h", "database.port": 5433, "stores.default": "m", "stores.m.protocol": "memory", "stores.m.subfolding": [2, 2]}"#,
        dir.path(),
    )
    .unwrap();
    let mixed = from_json(
        r#"{"database": {"host": "h"}, "database.port": 5433, "stores": {"m.protocol": "memory"}, "stores.default": "m", "stores.m": {"subfolding": [2, 2]}}"#,
        dir.path(),
    )
    .unwrap();
    let alias = from_json(
        r#"{"database": {"host": "h", "port": 5433}, "object_storage": {"stores": {"default": "m", "m": {"protocol": "memory"}}}, "object_storage.stores.m.subfolding": [2, 2]}"#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(nested, dotted);
    assert_eq!(nested, mixed);
    assert_eq!(nested, alias);
    assert_eq!(nested.stores.get("m").unwrap().subfolding, Some(vec![2, 2]));
}

#[test]
fn conflicting_spellings_are_errors() {
    let dir = project();
    let err = err_text(from_json(
        r#"{"database": {"host": "a"}, "database.host": "b"}"#,
        dir.path(),
    ));
    assert!(
        err.contains("`database.host`") && err.contains("more than once"),
        "{err}"
    );
    let err = err_text(from_json(
        r#"{"stores.m": "x", "stores.m.protocol": "memory"}"#,
        dir.path(),
    ));
    assert!(err.contains("`stores.m`"), "{err}");
    let err = err_text(from_json(
        r#"{"object_storage": {"project_name": "p"}}"#,
        dir.path(),
    ));
    assert!(err.contains("`object_storage.project_name`"), "{err}");
    let err = err_text(from_json(r#"{"database..host": "a"}"#, dir.path()));
    assert!(err.contains("empty segment"), "{err}");
}

#[test]
fn unknown_keys_are_named() {
    let dir = project();
    for (json, key) in [
        (r#"{"databse": {}}"#, "`databse`"),
        (r#"{"database": {"hots": "x"}}"#, "`database.hots`"),
        (r#"{"display": {"colour": 1}}"#, "`display.colour`"),
        (r#"{"jobs.nope": 1}"#, "`jobs.nope`"),
        (
            r#"{"stores": {"main": {"protocol": "memory", "bucketz": "b"}}}"#,
            "`stores.main.bucketz`",
        ),
        (
            r#"{"stores.main": {"protocol": "file", "location": ".", "endpoint": "x"}}"#,
            "`stores.main.endpoint`",
        ),
    ] {
        let err = err_text(from_json(json, dir.path()));
        assert!(err.contains(key), "{json}: {err}");
    }
}

#[test]
fn harmless_datajoint_python_keys_are_accepted() {
    let dir = project();
    let c = from_json(
        r#"{
            "loglevel": "DEBUG", "fetch_format": "frame", "enable_python_native_blobs": true,
            "query_cache": null, "filepath_checksum_size_limit": null,
            "connection": {"charset": ""},
            "display": {"limit": 7, "width": 14, "show_tuple_count": true, "diagram_direction": "LR"},
            "jobs": {"auto_refresh": true, "keep_completed": false, "stale_timeout": 3600},
            "provenance": {"capture": false, "source": {"system.name": "x"}},
            "database": {"reconnect": true, "use_tls": null, "create_tables": true, "database_prefix": ""},
            "stores": {"m": {"protocol": "memory", "stage": "/x"}}
        }"#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(c.stores.specs.len(), 1);
}

#[test]
fn jobs_section_is_read() {
    let dir = project();
    let c = from_json(r#"{}"#, dir.path()).unwrap();
    assert_eq!(c.jobs, dj_config::JobsConfig::default());
    assert_eq!(c.jobs.default_priority, 5);
    assert_eq!(c.jobs.stale_timeout, 3600);
    assert!(c.jobs.auto_refresh && !c.jobs.keep_completed && !c.jobs.add_job_metadata);
    let c = from_json(
        r#"{"jobs": {"add_job_metadata": true, "default_priority": 2, "stale_timeout": 0,
            "keep_completed": true, "auto_refresh": false, "version_method": "git"}}"#,
        dir.path(),
    )
    .unwrap();
    assert!(c.jobs.add_job_metadata && c.jobs.keep_completed && !c.jobs.auto_refresh);
    assert_eq!((c.jobs.default_priority, c.jobs.stale_timeout), (2, 0));
    for (json, key) in [
        (
            r#"{"jobs": {"default_priority": 256}}"#,
            "jobs.default_priority",
        ),
        (r#"{"jobs": {"stale_timeout": -1}}"#, "jobs.stale_timeout"),
        (
            r#"{"jobs": {"add_job_metadata": "yes"}}"#,
            "jobs.add_job_metadata",
        ),
        (r#"{"jobs": 3}"#, "jobs"),
    ] {
        let err = err_text(from_json(json, dir.path()));
        assert!(err.contains(key), "{json}: {err}");
    }
}

#[test]
fn jobs_version_method_is_read() {
    use dj_config::VersionMethod;
    let dir = project();
    for (json, method) in [
        (r#"{}"#, VersionMethod::None),
        (r#"{"jobs": {"version_method": null}}"#, VersionMethod::None),
        (
            r#"{"jobs": {"version_method": "none"}}"#,
            VersionMethod::None,
        ),
        (r#"{"jobs.version_method": "git"}"#, VersionMethod::Git),
    ] {
        assert_eq!(
            from_json(json, dir.path()).unwrap().jobs.version_method,
            method,
            "{json}"
        );
    }
    for json in [
        r#"{"jobs": {"version_method": "hg"}}"#,
        r#"{"jobs": {"version_method": "GIT"}}"#,
        r#"{"jobs": {"version_method": 1}}"#,
    ] {
        let err = err_text(from_json(json, dir.path()));
        assert!(err.contains("jobs.version_method"), "{json}: {err}");
    }
}

#[test]
fn dj_jobs_environment_variables_override_the_file() {
    use dj_config::VersionMethod;
    let dir = project();
    write_config(
        dir.path(),
        r#"{"jobs": {"stale_timeout": 100, "keep_completed": false, "default_priority": 3}}"#,
    );
    // Unset or empty, the file's values hold.
    let c = load(dir.path(), &[("DJ_JOBS_DEFAULT_PRIORITY", "")]).unwrap();
    assert_eq!((c.jobs.stale_timeout, c.jobs.default_priority), (100, 3));
    let c = load(
        dir.path(),
        &[
            ("DJ_JOBS_STALE_TIMEOUT", "7"),
            ("DJ_JOBS_KEEP_COMPLETED", "yes"),
            ("DJ_JOBS_AUTO_REFRESH", "0"),
            ("DJ_JOBS_DEFAULT_PRIORITY", " 255 "),
            ("DJ_JOBS_ADD_JOB_METADATA", "true"),
            ("DJ_JOBS_VERSION_METHOD", "git"),
            ("DJ_JOBS_ALLOW_NEW_PK_FIELDS_IN_COMPUTED_TABLES", "false"),
            // A name DataJoint has no setting for is ignored, as there.
            ("DJ_JOBS_NOT_A_SETTING", "1"),
        ],
    )
    .unwrap();
    assert_eq!(c.jobs.stale_timeout, 7);
    assert_eq!(c.jobs.default_priority, 255);
    assert!(c.jobs.keep_completed && !c.jobs.auto_refresh && c.jobs.add_job_metadata);
    assert_eq!(c.jobs.version_method, VersionMethod::Git);
    // Without a file, and with `"jobs": null` in it.
    let bare = project();
    let c = load(bare.path(), &[("DJ_JOBS_STALE_TIMEOUT", "0")]).unwrap();
    assert_eq!(c.jobs.stale_timeout, 0);
    write_config(bare.path(), r#"{"jobs": null}"#);
    let c = load(bare.path(), &[("DJ_JOBS_VERSION_METHOD", "none")]).unwrap();
    assert_eq!(c.jobs.version_method, VersionMethod::None);
    // Bad values name the variable.
    for (var, value) in [
        ("DJ_JOBS_STALE_TIMEOUT", "-1"),
        ("DJ_JOBS_STALE_TIMEOUT", "soon"),
        ("DJ_JOBS_DEFAULT_PRIORITY", "256"),
        ("DJ_JOBS_KEEP_COMPLETED", "maybe"),
        ("DJ_JOBS_VERSION_METHOD", "svn"),
        ("DJ_JOBS_ALLOW_NEW_PK_FIELDS_IN_COMPUTED_TABLES", "2"),
    ] {
        let err = err_text(load(dir.path(), &[(var, value)]));
        assert!(err.contains(var), "{var}={value}: {err}");
    }
    // Only the setting dj-rs does not act on is listed as unread.
    assert!(dj_config::is_unread_datajoint_env_var(
        "DJ_JOBS_ALLOW_NEW_PK_FIELDS_IN_COMPUTED_TABLES"
    ));
    assert!(!dj_config::is_unread_datajoint_env_var(
        "DJ_JOBS_VERSION_METHOD"
    ));
}

// ------------------------------------------------------------------------------------------------
// Database and top-level values
// ------------------------------------------------------------------------------------------------

#[test]
fn database_section() {
    let dir = project();
    let c = from_json(
        r#"{"database": {"backend": "postgres", "host": "db", "user": "u", "name": "lab"}}"#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(c.database.backend, DatabaseBackend::Postgresql);
    assert_eq!(c.database.port_or_default(), Some(5432));
    assert_eq!(c.database.name.as_deref(), Some("lab"));
    assert_eq!(c.database.path, None);
    let c = from_json(
        r#"{"database": {"backend": "mysql", "port": 3307}}"#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(c.database.port_or_default(), Some(3307));
    assert_eq!(c.database.host_or_default(), "localhost");
    let c = from_json(r#"{"database": {"path": "data/lab.db"}}"#, dir.path()).unwrap();
    assert_eq!(c.database.path, Some(dir.path().join("data/lab.db")));
    // The URL's scheme picks the backend; a contradiction is an error.
    let c = from_json(
        r#"{"database": {"url": "postgresql://u:pw@h/db"}}"#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(c.database.backend, DatabaseBackend::Postgresql);
    let err = err_text(from_json(
        r#"{"database": {"backend": "mysql", "url": "postgres://u:s3cr3t@h/db"}}"#,
        dir.path(),
    ));
    assert!(
        err.contains("database.url") && !err.contains("s3cr3t"),
        "{err}"
    );

    for (json, key) in [
        (r#"{"database": {"backend": "oracle"}}"#, "database.backend"),
        (r#"{"database": {"port": 70000}}"#, "database.port"),
        (r#"{"database": {"port": "5432"}}"#, "database.port"),
        (r#"{"database": 5}"#, "`database`"),
        (r#"{"safemode": "yes"}"#, "`safemode`"),
        (r#"{"transfer_concurrency": 0}"#, "`transfer_concurrency`"),
        (r#"{"blob_compression": "zstd"}"#, "`blob_compression`"),
        (r#"{"download_path": 3}"#, "`download_path`"),
    ] {
        let err = err_text(from_json(json, dir.path()));
        assert!(err.contains(key), "{json}: {err}");
    }
    let c = from_json(
        r#"{"safemode": false, "transfer_concurrency": 4, "download_path": "dl"}"#,
        dir.path(),
    )
    .unwrap();
    assert!(!c.safemode);
    assert_eq!(c.transfer_concurrency, 4);
    assert_eq!(c.download_path, PathBuf::from("dl"));
    assert_eq!(c.blob_compression, dj_config::BlobCompression::Fast);
    let c = from_json(r#"{"blob_compression": "compat"}"#, dir.path()).unwrap();
    assert_eq!(c.blob_compression, dj_config::BlobCompression::Compat);
}

// ------------------------------------------------------------------------------------------------
// Stores
// ------------------------------------------------------------------------------------------------

#[test]
fn store_defaults_follow_datajoint() {
    let dir = project();
    let c = from_json(r#"{"stores": {"s": {"protocol": "S3", "endpoint": "localhost:9000", "bucket": "b", "location": "p"}}}"#, dir.path())
        .unwrap();
    let s = c.stores.get("s").unwrap();
    assert_eq!(s.protocol, "s3");
    assert!(s.options_as::<S3Options>().unwrap().secure);
    assert_eq!(s.token_length, 8);
    assert_eq!(s.hash_prefix, "_hash");
    assert_eq!(s.schema_prefix, "_schema");
    assert_eq!(s.filepath_prefix, None);
    assert_eq!(s.subfolding, None);
    assert_eq!(s.partition_pattern, None);
    assert_eq!(s.hash_algorithm, HashAlgorithm::Md5);
    assert!(!s.options.contains_key("access_key"));
    assert!(
        c.stores
            .get("nope")
            .unwrap_err()
            .to_string()
            .contains("store `nope` is not configured")
    );
}

#[test]
fn store_values_are_validated() {
    let dir = project();
    let m = |extra: &str| format!(r#"{{"stores": {{"m": {{"protocol": "memory"{extra}}}}}}}"#);
    let c = from_json(&m(r#", "token_length": 2, "hash_prefix": "/objs/h/", "schema_prefix": "", "hash_algorithm": "blake3", "partition_pattern": "{subject}/{session}", "subfolding": []"#), dir.path()).unwrap();
    let s = c.stores.get("m").unwrap();
    assert_eq!(s.token_length, 4);
    assert_eq!(s.hash_prefix, "objs/h");
    assert_eq!(s.schema_prefix, "");
    assert_eq!(s.hash_algorithm, HashAlgorithm::Blake3);
    assert_eq!(s.partition_pattern.as_deref(), Some("{subject}/{session}"));
    assert_eq!(s.subfolding, None);
    assert_eq!(
        from_json(&m(r#", "token_length": 99"#), dir.path())
            .unwrap()
            .stores
            .get("m")
            .unwrap()
            .token_length,
        16
    );

    for (extra, key, what) in [
        (
            r#", "token_length": "8""#,
            "stores.m.token_length",
            "integer",
        ),
        (
            r#", "subfolding": [2, 0]"#,
            "stores.m.subfolding",
            "positive",
        ),
        (r#", "subfolding": [20, 20]"#, "stores.m.subfolding", "26"),
        (r#", "subfolding": "2,2""#, "stores.m.subfolding", "list"),
        (
            r#", "partition_pattern": "subject/session""#,
            "stores.m.partition_pattern",
            "{attr}",
        ),
        (
            r#", "hash_algorithm": "sha1""#,
            "stores.m.hash_algorithm",
            "md5",
        ),
        (
            r#", "hash_prefix": "a/../b""#,
            "stores.m.hash_prefix",
            "relative",
        ),
        (
            r#", "hash_prefix": "data", "schema_prefix": "data/schema""#,
            "stores.m.schema_prefix",
            "overlaps",
        ),
        (
            r#", "filepath_prefix": "_hash/raw""#,
            "stores.m.filepath_prefix",
            "overlaps",
        ),
    ] {
        let err = err_text(from_json(&m(extra), dir.path()));
        assert!(err.contains(key) && err.contains(what), "{extra}: {err}");
    }
}

#[test]
fn file_stores_need_an_existing_directory() {
    let dir = project();
    fs::create_dir(dir.path().join("objects")).unwrap();
    write_config(
        dir.path(),
        r#"{"stores": {"local": {"protocol": "file", "location": "objects"}}}"#,
    );
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    // Relative locations are resolved against the configuration file's directory.
    let c = load(&sub, &[]).unwrap();
    let loc = PathBuf::from(&c.stores.get("local").unwrap().location);
    assert_eq!(
        fs::canonicalize(loc).unwrap(),
        fs::canonicalize(dir.path().join("objects")).unwrap()
    );

    let err = err_text(from_json(
        r#"{"stores": {"local": {"protocol": "file", "location": "/no/such/dir/xyz"}}}"#,
        dir.path(),
    ));
    assert!(
        err.contains("stores.local.location")
            && err.contains("`local`")
            && err.contains("/no/such/dir/xyz"),
        "{err}"
    );
    let err = err_text(from_json(
        r#"{"stores": {"local": {"protocol": "file"}}}"#,
        dir.path(),
    ));
    assert!(
        err.contains("stores.local.location") && err.contains("required"),
        "{err}"
    );
}

#[test]
fn required_keys_per_protocol() {
    let dir = project();
    for (spec, missing) in [
        (
            r#"{"protocol": "s3", "bucket": "b", "location": "l"}"#,
            "endpoint",
        ),
        (
            r#"{"protocol": "s3", "endpoint": "e", "location": "l"}"#,
            "bucket",
        ),
        (
            r#"{"protocol": "s3", "endpoint": "e", "bucket": "b"}"#,
            "location",
        ),
        (r#"{"protocol": "gcs", "location": "l"}"#, "bucket"),
        (r#"{"protocol": "azure", "location": "l"}"#, "container"),
        (
            r#"{"protocol": "azure", "container": "c", "location": null}"#,
            "location",
        ),
        (r#"{"location": "l"}"#, "protocol"),
    ] {
        let err = err_text(from_json(
            &format!(r#"{{"stores": {{"x": {spec}}}}}"#),
            dir.path(),
        ));
        assert!(
            err.contains(&format!("stores.x.{missing}")) && err.contains("`x`"),
            "{spec}: {err}"
        );
    }
    let c = from_json(
        r#"{"stores": {
            "g": {"protocol": "gcs", "bucket": "b", "location": "l", "project": "p", "token": "tok"},
            "a": {"protocol": "azure", "container": "c", "location": "l", "account_name": "n", "account_key": "k"},
            "m": {"protocol": "memory"}
        }}"#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(c.stores.get("g").unwrap().options["project"], "p");
    assert_eq!(c.stores.get("g").unwrap().options["token"], "tok");
    assert_eq!(c.stores.get("a").unwrap().options["container"], "c");
    assert_eq!(c.stores.get("m").unwrap().location, "");
}

#[test]
fn s3_credentials_both_or_neither() {
    let dir = project();
    let s3 = |creds: &str| {
        format!(
            r#"{{"stores": {{"s": {{"protocol": "s3", "endpoint": "e", "bucket": "b", "location": "l"{creds}}}}}}}"#
        )
    };
    let c = from_json(
        &s3(
            r#", "access_key": "AKIA", "secret_key": "sk", "region": "eu-west-1", "secure": false"#,
        ),
        dir.path(),
    )
    .unwrap();
    let s: S3Options = c.stores.get("s").unwrap().options_as().unwrap();
    assert_eq!(s.access_key.as_ref().unwrap().expose(), "AKIA");
    assert_eq!(s.secret_key.as_ref().unwrap().expose(), "sk");
    assert_eq!(s.region.as_deref(), Some("eu-west-1"));
    assert!(!s.secure);
    // Empty strings count as absent: the store is built for the ambient credential chain.
    let c = from_json(&s3(r#", "access_key": "", "secret_key": """#), dir.path()).unwrap();
    datajoint::stores::s3::create(c.stores.get("s").unwrap(), &SpecContext::new(c.base_dir()))
        .unwrap();
    let err = err_text(from_json(&s3(r#", "secure": "yes""#), dir.path()));
    assert!(
        err.contains("stores.s.secure") && err.contains("true or false"),
        "{err}"
    );
    let err = err_text(from_json(&s3(r#", "access_key": "AKIAXYZ""#), dir.path()));
    assert!(err.contains("stores.s.secret_key"), "{err}");
    let err = err_text(from_json(
        &s3(r#", "secret_key": "sk-xyz", "access_key": """#),
        dir.path(),
    ));
    assert!(err.contains("stores.s.access_key"), "{err}");
}

#[test]
fn unknown_protocol_and_bad_store_names() {
    let dir = project();
    let err = err_text(from_json(
        r#"{"stores": {"cold": {"protocol": "tape"}}}"#,
        dir.path(),
    ));
    assert!(err.contains("`cold`") && err.contains("`tape`"), "{err}");
    let err = err_text(from_json(
        r#"{"stores": {"a b": {"protocol": "memory"}}}"#,
        dir.path(),
    ));
    assert!(
        err.contains("stores.a b") && err.contains("store name"),
        "{err}"
    );
    let err = err_text(from_json(r#"{"stores": {"m": "memory"}}"#, dir.path()));
    assert!(err.contains("stores.m"), "{err}");
}

#[test]
fn default_stores_must_exist() {
    let dir = project();
    let err = err_text(from_json(
        r#"{"stores": {"default": "main", "other": {"protocol": "memory"}}}"#,
        dir.path(),
    ));
    assert!(
        err.contains("stores.default") && err.contains("`main`") && err.contains("other"),
        "{err}"
    );
    let err = err_text(from_json(
        r#"{"stores": {"filepath_default": "raw"}}"#,
        dir.path(),
    ));
    assert!(
        err.contains("stores.filepath_default") && err.contains("`raw`"),
        "{err}"
    );
    let c = from_json(
        r#"{"stores": {"default": "m", "filepath_default": "m", "m": {"protocol": "memory"}}}"#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(c.stores.filepath_default.as_deref(), Some("m"));
}

fn no_store(_: &StoreSpec, _: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
    Err(Error::config("test", "not a real store"))
}

#[test]
fn plugin_protocols_use_their_keys() {
    let dir = project();
    let reg = Registry::new();
    reg.register_protocol(ProtocolEntry::with_keys(
        "webdav",
        no_store,
        &["endpoint", "api_token", "options"],
        &["endpoint"],
    ))
    .unwrap();
    let load_json = |json: &str| {
        write_config(dir.path(), json);
        let env = env_of(&[]);
        ConfigLoader::new(dir.path())
            .env(&env)
            .system_secrets_dir(None)
            .registry(&reg)
            .load()
    };
    let c = load_json(
        r#"{"stores": {"w": {"protocol": "webdav", "endpoint": "https://dav", "api_token": "tok-PLUGIN-SECRET", "options": {"a.b": 1}, "location": "x", "subfolding": [2]}}}"#,
    )
    .unwrap();
    let w = c.stores.get("w").unwrap();
    assert_eq!(w.options["endpoint"], "https://dav");
    assert_eq!(w.options["options"], serde_json::json!({"a.b": 1}));
    // Common keys are read by dj-core, not handed to the protocol.
    assert!(!w.options.contains_key("location") && !w.options.contains_key("subfolding"));
    assert_eq!(w.location, "x");
    assert_eq!(w.subfolding, Some(vec![2]));
    assert!(!format!("{c:?}").contains("tok-PLUGIN-SECRET"));
    assert!(!c.redacted_json().to_string().contains("tok-PLUGIN-SECRET"));

    let err = err_text(load_json(r#"{"stores": {"w": {"protocol": "webdav"}}}"#));
    assert!(
        err.contains("stores.w.endpoint") && err.contains("required"),
        "{err}"
    );
    let err = err_text(load_json(
        r#"{"stores": {"w": {"protocol": "webdav", "endpoint": "e", "bucket": "b"}}}"#,
    ));
    assert!(err.contains("stores.w.bucket"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// Environment and secrets
// ------------------------------------------------------------------------------------------------

#[test]
fn environment_overrides_the_file() {
    let dir = project();
    fs::create_dir(dir.path().join("objs")).unwrap();
    write_config(
        dir.path(),
        r#"{"database": {"backend": "mysql", "host": "file-host", "user": "file-user", "port": 3306},
            "stores": {"default": "f", "f": {"protocol": "file", "location": "objs"}}}"#,
    );
    let c = load(
        dir.path(),
        &[
            ("DJ_HOST", "env-host"),
            ("DJ_USER", "env-user"),
            ("DJ_PASS", "env-pass"),
            ("DJ_PORT", "5433"),
            ("DJ_BACKEND", "postgres"),
            ("DJ_DATABASE_NAME", "lab"),
            (
                "DJ_STORES",
                r#"{"default": "m", "m": {"protocol": "memory"}, "m.token_length": 10}"#,
            ),
        ],
    )
    .unwrap();
    assert_eq!(c.database.host.as_deref(), Some("env-host"));
    assert_eq!(c.database.user.as_deref(), Some("env-user"));
    assert_eq!(c.database.password.as_ref().unwrap().expose(), "env-pass");
    assert_eq!(c.database.port, Some(5433));
    assert_eq!(c.database.backend, DatabaseBackend::Postgresql);
    assert_eq!(c.database.name.as_deref(), Some("lab"));
    // DJ_STORES replaces the whole stores section.
    assert_eq!(c.stores.specs.keys().collect::<Vec<_>>(), vec!["m"]);
    assert_eq!(c.stores.get("m").unwrap().token_length, 10);
    // Empty variables count as unset.
    let c = load(dir.path(), &[("DJ_HOST", "")]).unwrap();
    assert_eq!(c.database.host.as_deref(), Some("file-host"));

    for (var, value) in [
        ("DJ_PORT", "http"),
        ("DJ_PORT", "0"),
        ("DJ_BACKEND", "oracle"),
        ("DJ_STORES", "{not json"),
        ("DJ_STORES", "[]"),
        ("DJ_IGNORE_CONFIG_FILE", "maybe"),
    ] {
        let err = err_text(load(dir.path(), &[(var, value)]));
        assert!(err.contains(var), "{var}={value}: {err}");
    }
    let err = err_text(load(
        dir.path(),
        &[("DJ_STORES", r#"{"m": {"protocol": "memory", "oops": 1}}"#)],
    ));
    assert!(err.contains("stores.m.oops"), "{err}");
}

#[test]
fn ignore_config_file_skips_file_and_secrets() {
    let dir = project();
    write_config(dir.path(), r#"{"database.host": "file-host"}"#);
    fs::create_dir(dir.path().join(".secrets")).unwrap();
    fs::write(dir.path().join(".secrets/database.password"), "pw\n").unwrap();
    let c = load(dir.path(), &[]).unwrap();
    assert_eq!(c.database.host.as_deref(), Some("file-host"));
    assert_eq!(c.database.password.as_ref().unwrap().expose(), "pw");
    let c = load(
        dir.path(),
        &[("DJ_IGNORE_CONFIG_FILE", "true"), ("DJ_USER", "u")],
    )
    .unwrap();
    assert_eq!(c.database.host, None);
    assert_eq!(c.database.password, None);
    assert_eq!(c.database.user.as_deref(), Some("u"));
    assert_eq!(c.source, None);
    assert_eq!(c.secrets_dir, None);
}

#[test]
fn secrets_fill_only_missing_values() {
    let dir = project();
    write_config(
        dir.path(),
        r#"{"database": {"user": "file-user"},
            "stores": {"s": {"protocol": "s3", "endpoint": "e", "bucket": "b", "location": "l", "access_key": "file-ak"}}}"#,
    );
    let secrets = dir.path().join(".secrets");
    fs::create_dir(&secrets).unwrap();
    fs::write(secrets.join("database.user"), "secret-user\n").unwrap();
    fs::write(secrets.join("database.password"), "pw-from-secret\n").unwrap();
    fs::write(secrets.join("stores.s.access_key"), "secret-ak").unwrap();
    fs::write(secrets.join("stores.s.secret_key"), "sk-from-secret\r\n").unwrap();
    fs::write(secrets.join("stores.ghost.secret_key"), "unused").unwrap();
    fs::write(secrets.join(".gitignore"), "*").unwrap();
    fs::write(secrets.join("README"), "notes").unwrap();

    let c = load(dir.path(), &[]).unwrap();
    assert_eq!(c.database.user.as_deref(), Some("file-user"));
    assert_eq!(
        c.database.password.as_ref().unwrap().expose(),
        "pw-from-secret"
    );
    let s: S3Options = c.stores.get("s").unwrap().options_as().unwrap();
    assert_eq!(s.access_key.as_ref().unwrap().expose(), "file-ak");
    assert_eq!(s.secret_key.as_ref().unwrap().expose(), "sk-from-secret");
    assert!(!c.stores.specs.contains_key("ghost"));
    assert_eq!(
        fs::canonicalize(c.secrets_dir.unwrap()).unwrap(),
        fs::canonicalize(&secrets).unwrap()
    );

    // The environment beats secrets.
    let c = load(dir.path(), &[("DJ_PASS", "env-pw")]).unwrap();
    assert_eq!(c.database.password.as_ref().unwrap().expose(), "env-pw");
}

#[test]
fn system_secrets_dir_is_the_fallback() {
    let dir = project();
    write_config(dir.path(), r#"{"database": {"backend": "postgresql"}}"#);
    let system = tempfile::tempdir().unwrap();
    fs::write(system.path().join("database.password"), "sys-pw\n").unwrap();
    let env = env_of(&[]);
    let c = ConfigLoader::new(dir.path())
        .env(&env)
        .system_secrets_dir(Some(system.path().to_path_buf()))
        .load()
        .unwrap();
    assert_eq!(c.database.password.as_ref().unwrap().expose(), "sys-pw");
    // A `.secrets/` beside the file wins over the system directory.
    fs::create_dir(dir.path().join(".secrets")).unwrap();
    let c = ConfigLoader::new(dir.path())
        .env(&env)
        .system_secrets_dir(Some(system.path().to_path_buf()))
        .load()
        .unwrap();
    assert_eq!(c.database.password, None);
}

#[test]
fn load_with_uses_the_given_environment() {
    let dir = project();
    let env = env_of(&[("DJ_HOST", "h")]);
    let c = Config::load_with(&env, dir.path()).unwrap();
    assert_eq!(c.database.host.as_deref(), Some("h"));
}

#[test]
fn from_file_reads_one_file() {
    let dir = project();
    let p = write_config(dir.path(), r#"{"database": {"path": "x.db"}}"#);
    let c = Config::from_file(&p).unwrap();
    assert_eq!(c.database.path, Some(dir.path().join("x.db")));
    assert_eq!(c.source, Some(p));
    let err = Config::from_file(dir.path().join("missing.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.json"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// Redaction
// ------------------------------------------------------------------------------------------------

const SECRETS: &[&str] = &[
    "PW-d4t4j01nt",
    "AKIA-SECRET-ACCESS",
    "SK-SECRET-KEY-42",
    "GCS-TOKEN-SECRET",
    "AZ-ACCOUNT-KEY-SECRET",
    "AZ-CONN-STRING-SECRET",
    "URL-PASSWORD-SECRET",
];

fn assert_no_secret(text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "secret `{s}` leaked in: {text}");
    }
}

#[test]
fn secrets_never_appear_in_debug_or_redacted_json() {
    let dir = project();
    let c = from_json(
        r#"{
            "database": {"password": "PW-d4t4j01nt", "url": "postgresql://u:URL-PASSWORD-SECRET@h/db"},
            "stores": {
                "s": {"protocol": "s3", "endpoint": "e", "bucket": "b", "location": "l",
                      "access_key": "AKIA-SECRET-ACCESS", "secret_key": "SK-SECRET-KEY-42"},
                "g": {"protocol": "gcs", "bucket": "b", "location": "l", "token": "GCS-TOKEN-SECRET"},
                "a": {"protocol": "azure", "container": "c", "location": "l",
                      "account_key": "AZ-ACCOUNT-KEY-SECRET", "connection_string": "AZ-CONN-STRING-SECRET"}
            }
        }"#,
        dir.path(),
    )
    .unwrap();
    // The values are there...
    assert_eq!(
        c.database.password.as_ref().unwrap().expose(),
        "PW-d4t4j01nt"
    );
    // ...but never shown.
    assert_no_secret(&format!("{c:?}"));
    assert_no_secret(&format!("{c:#?}"));
    for spec in c.stores.specs.values() {
        assert_no_secret(&format!("{spec:?}"));
    }
    assert_no_secret(&format!("{:?}", c.database));
    assert_no_secret(&format!("{}", c.database.password.as_ref().unwrap()));
    let red = c.redacted_json();
    assert_no_secret(&red.to_string());
    assert_eq!(red["database"]["password"], "***");
    assert_eq!(red["stores"]["s"]["secret_key"], "***");
    assert_eq!(red["stores"]["s"]["bucket"], "b");
}

#[test]
fn secrets_never_appear_in_errors() {
    let dir = project();
    let s3 = |creds: &str| {
        format!(
            r#"{{"stores": {{"s": {{"protocol": "s3", "endpoint": "e", "bucket": "b", "location": "l"{creds}}}}}}}"#
        )
    };
    let cases = [
        s3(r#", "access_key": "AKIA-SECRET-ACCESS""#),
        s3(r#", "secret_key": "SK-SECRET-KEY-42""#),
        s3(r#", "access_key": "AKIA-SECRET-ACCESS", "secret_key": "SK-SECRET-KEY-42", "bogus": 1"#),
        s3(r#", "access_key": "AKIA-SECRET-ACCESS", "secret_key": "SK-SECRET-KEY-42", "default": 1"#),
        s3(r#", "access_key": ["AKIA-SECRET-ACCESS"], "secret_key": "SK-SECRET-KEY-42""#),
        r#"{"database": {"password": ["PW-d4t4j01nt"]}}"#.to_string(),
        r#"{"database": {"password": "PW-d4t4j01nt", "password.x": 1}}"#.to_string(),
        r#"{"database": {"password": "PW-d4t4j01nt"}, "database.password": "PW-d4t4j01nt"}"#.to_string(),
        r#"{"database": {"backend": "mysql", "url": "postgres://u:URL-PASSWORD-SECRET@h/db"}}"#.to_string(),
        r#"{"database": {"url": "URL-PASSWORD-SECRET"}, "nope": 1}"#.to_string(),
        r#"{"stores": {"g": {"protocol": "gcs", "location": "l", "token": "GCS-TOKEN-SECRET"}}}"#.to_string(),
        r#"{"stores": {"a": {"protocol": "azure", "location": "l", "account_key": "AZ-ACCOUNT-KEY-SECRET", "connection_string": "AZ-CONN-STRING-SECRET"}}}"#.to_string(),
        r#"{"stores": {"a": {"protocol": "azure", "container": "c", "location": "l", "account_key": 5, "connection_string": "AZ-CONN-STRING-SECRET"}}}"#.to_string(),
    ];
    for json in &cases {
        let err = match from_json(json, dir.path()) {
            Ok(c) => panic!("expected an error for {json}, got {c:?}"),
            Err(e) => e,
        };
        assert_no_secret(&err.to_string());
        assert_no_secret(&format!("{err:?}"));
    }
    // Errors from the environment and secrets files.
    write_config(
        dir.path(),
        r#"{"stores": {"s": {"protocol": "s3", "endpoint": "e", "bucket": "b", "location": "l"}}}"#,
    );
    let secrets = dir.path().join(".secrets");
    fs::create_dir(&secrets).unwrap();
    fs::write(secrets.join("stores.s.access_key"), "AKIA-SECRET-ACCESS\n").unwrap();
    let err = load(dir.path(), &[("DJ_PASS", "PW-d4t4j01nt")]).unwrap_err();
    assert!(err.to_string().contains("stores.s.secret_key"), "{err}");
    assert_no_secret(&err.to_string());
    assert_no_secret(&format!("{err:?}"));
    let err = load(
        dir.path(),
        &[(
            "DJ_STORES",
            r#"{"s": {"protocol": "s3", "secret_key": "SK-SECRET-KEY-42"}"#,
        )],
    )
    .unwrap_err();
    assert_no_secret(&err.to_string());
}

// ------------------------------------------------------------------------------------------------
// Which database: server settings never mean SQLite
// ------------------------------------------------------------------------------------------------

fn file_origin(key: &str) -> (String, SettingOrigin) {
    (key.to_string(), SettingOrigin::File)
}

#[test]
fn server_settings_without_a_backend_mean_mysql_as_in_datajoint() {
    let dir = project();
    // In the file.
    write_config(
        dir.path(),
        r#"{"database": {"host": "db.lab", "user": "alice"}}"#,
    );
    let c = load(dir.path(), &[]).unwrap();
    assert_eq!(c.database.backend, DatabaseBackend::Mysql);
    assert_eq!(
        c.database.backend_source,
        BackendSource::ServerSettings(vec![
            file_origin("database.host"),
            file_origin("database.user")
        ])
    );
    assert_eq!(c.database.path, None);
    assert_eq!(c.database.target(), "db.lab:3306");
    let why = c.database.backend_source.to_string();
    assert!(
        why.contains("server settings without a backend (`database.host`, `database.user`)")
            && why.contains("DataJoint"),
        "{why}"
    );

    // Only DataJoint's environment variables, no file: DJ_HOST and DJ_USER alone.
    let empty = project();
    let c = load(empty.path(), &[("DJ_HOST", "db.lab"), ("DJ_USER", "alice")]).unwrap();
    assert_eq!(c.database.backend, DatabaseBackend::Mysql);
    assert_eq!(
        c.database.backend_source,
        BackendSource::ServerSettings(vec![
            ("database.host".into(), SettingOrigin::Env("DJ_HOST".into())),
            ("database.user".into(), SettingOrigin::Env("DJ_USER".into())),
        ])
    );
    assert!(c.database.backend_source.to_string().contains("`DJ_HOST`"));
    for var in ["DJ_PORT", "DJ_PASS", "DJ_DATABASE_NAME"] {
        let value = if var == "DJ_PORT" { "3307" } else { "x" };
        let c = load(empty.path(), &[(var, value)]).unwrap();
        assert_eq!(c.database.backend, DatabaseBackend::Mysql, "{var}");
    }

    // A password in the secrets directory names a server too.
    let secret_dir = project();
    write_config(secret_dir.path(), "{}");
    fs::create_dir(secret_dir.path().join(".secrets")).unwrap();
    fs::write(secret_dir.path().join(".secrets/database.password"), "pw").unwrap();
    let c = load(secret_dir.path(), &[]).unwrap();
    assert_eq!(c.database.backend, DatabaseBackend::Mysql);
    match &c.database.backend_source {
        BackendSource::ServerSettings(keys) => {
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].0, "database.password");
            assert!(matches!(keys[0].1, SettingOrigin::Secret(_)), "{keys:?}");
        }
        other => panic!("{other:?}"),
    }

    // What chose the backend otherwise.
    let c = load(empty.path(), &[]).unwrap();
    assert_eq!(c.database.backend, DatabaseBackend::Sqlite);
    assert_eq!(c.database.backend_source, BackendSource::Default);
    let c = load(
        empty.path(),
        &[("DJ_BACKEND", "postgres"), ("DJ_HOST", "pg.lab")],
    )
    .unwrap();
    assert_eq!(c.database.backend, DatabaseBackend::Postgresql);
    assert_eq!(
        c.database.backend_source,
        BackendSource::Backend(SettingOrigin::Env("DJ_BACKEND".into()))
    );
    assert_eq!(c.database.target(), "pg.lab:5432/postgres");
    let c = from_json(
        r#"{"database": {"backend": "postgresql", "host": "h", "name": "lab"}}"#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        c.database.backend_source,
        BackendSource::Backend(SettingOrigin::File)
    );
    assert_eq!(c.database.target(), "h:5432/lab");
    let c = from_json(
        r#"{"database": {"url": "mysql://u:pw@h:3307/x", "user": "v"}}"#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        c.database.backend_source,
        BackendSource::UrlScheme(SettingOrigin::File)
    );
}

#[test]
fn sqlite_never_takes_server_settings() {
    let dir = project();
    // An explicit sqlite backend with a server setting is a contradiction, wherever each is set.
    write_config(
        dir.path(),
        r#"{"database": {"backend": "sqlite", "path": "lab.sqlite"}}"#,
    );
    let err = err_text(load(dir.path(), &[("DJ_HOST", "db.lab")]));
    assert!(
        err.contains("`database.host`")
            && err.contains("DJ_HOST")
            && err.contains("sqlite")
            && err.contains("`database.backend` in the configuration file"),
        "{err}"
    );
    write_config(dir.path(), r#"{"database": {"host": "db.lab"}}"#);
    let err = err_text(load(dir.path(), &[("DJ_BACKEND", "sqlite")]));
    assert!(
        err.contains("`database.host`") && err.contains("DJ_BACKEND"),
        "{err}"
    );
    for (json, key) in [
        (
            r#"{"database": {"backend": "sqlite", "user": "u"}}"#,
            "database.user",
        ),
        (
            r#"{"database": {"backend": "sqlite", "port": 3306}}"#,
            "database.port",
        ),
        (
            r#"{"database": {"url": "sqlite://lab.db", "password": "PW-d4t4j01nt"}}"#,
            "database.password",
        ),
        // A server and a SQLite file, and nothing to choose between them.
        (
            r#"{"database": {"host": "h", "path": "lab.sqlite"}}"#,
            "database.backend",
        ),
        // A URL whose scheme names no backend.
        (
            r#"{"database": {"url": "URL-PASSWORD-SECRET@h/db"}}"#,
            "database.url",
        ),
    ] {
        let err = err_text(from_json(json, dir.path()));
        assert!(err.contains(key), "{json}: {err}");
        assert_no_secret(&err);
    }
    // A configuration built in code: the default backend is SQLite, so a host is refused.
    let mut db = DatabaseConfig {
        host: Some("db.lab".into()),
        ..DatabaseConfig::default()
    };
    let err = db.validate().unwrap_err().to_string();
    assert!(
        err.contains("database.host") && err.contains("sqlite"),
        "{err}"
    );
    db.backend = DatabaseBackend::Mysql;
    db.validate().unwrap();
}

#[test]
fn host_with_a_port_is_read_as_datajoint_reads_it() {
    let dir = project();
    let c = load(dir.path(), &[("DJ_HOST", "db.lab:3307")]).unwrap();
    assert_eq!(c.database.host.as_deref(), Some("db.lab"));
    assert_eq!(c.database.port, Some(3307));
    assert_eq!(c.database.target(), "db.lab:3307");
    let from_host = SettingOrigin::Env("DJ_HOST".into());
    assert_eq!(
        c.database.backend_source,
        BackendSource::ServerSettings(vec![
            ("database.host".into(), from_host.clone()),
            ("database.port".into(), from_host),
        ])
    );
    let c = from_json(
        r#"{"database": {"backend": "mysql", "host": "db.lab:3308", "port": 3306}}"#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(c.database.port, Some(3308));
    let err = err_text(from_json(
        r#"{"database": {"backend": "mysql", "host": "db.lab:mysql"}}"#,
        dir.path(),
    ));
    assert!(err.contains("database.host"), "{err}");
}

#[test]
fn use_tls_is_refused_rather_than_ignored() {
    let dir = project();
    for json in [
        r#"{"database": {"backend": "mysql", "use_tls": true}}"#,
        r#"{"database": {"backend": "mysql", "use_tls": {"ca": "/ca.pem"}}}"#,
    ] {
        let err = err_text(from_json(json, dir.path()));
        assert!(
            err.contains("`database.use_tls`") && err.contains("TLS"),
            "{json}: {err}"
        );
    }
    let c = from_json(
        r#"{"database": {"backend": "mysql", "use_tls": false}}"#,
        dir.path(),
    )
    .unwrap();
    assert_eq!(c.database.backend, DatabaseBackend::Mysql);
    let err = err_text(load(dir.path(), &[("DJ_USE_TLS", "true")]));
    assert!(err.contains("`DJ_USE_TLS`") && err.contains("TLS"), "{err}");
    let err = err_text(load(dir.path(), &[("DJ_USE_TLS", "maybe")]));
    assert!(err.contains("`DJ_USE_TLS`"), "{err}");
    load(dir.path(), &[("DJ_USE_TLS", "false")]).unwrap();
}

#[test]
fn sqlite_path_that_is_a_directory_is_an_error() {
    let dir = project();
    fs::create_dir(dir.path().join("data")).unwrap();
    let err = err_text(from_json(
        r#"{"database": {"backend": "sqlite", "path": "data"}}"#,
        dir.path(),
    ));
    assert!(
        err.contains("`database.path`") && err.contains("directory"),
        "{err}"
    );
    // The default file, `datajoint.sqlite` beside the configuration, too.
    fs::create_dir(dir.path().join("datajoint.sqlite")).unwrap();
    write_config(dir.path(), "{}");
    let err = err_text(load(dir.path(), &[]));
    assert!(err.contains("`database.path`"), "{err}");
    // A file, a path yet to be created and `:memory:` are fine.
    from_json(r#"{"database": {"path": "data/lab.sqlite"}}"#, dir.path()).unwrap();
    let memory = from_json(r#"{"database": {"path": ":memory:"}}"#, dir.path()).unwrap();
    // `:memory:` stays SQLite's in-memory database: not a file named so beside the config.
    assert_eq!(
        memory.database.path.as_deref(),
        Some(std::path::Path::new(":memory:"))
    );
}

// ------------------------------------------------------------------------------------------------
// Duplicate keys and empty locations
// ------------------------------------------------------------------------------------------------

#[test]
fn duplicate_keys_are_errors_naming_key_and_file() {
    let dir = project();
    fs::create_dir(dir.path().join("objs")).unwrap();
    for (json, key) in [
        (r#"{"safemode": true, "safemode": false}"#, "`safemode`"),
        (
            r#"{"database": {"backend": "postgresql", "host": "a", "host": "b"}}"#,
            "`database.host`",
        ),
        (
            r#"{"database.backend": "mysql", "database.backend": "postgresql"}"#,
            "`database.backend`",
        ),
        (
            r#"{"stores": {"m": {"protocol": "memory", "token_length": 8, "token_length": 9}}}"#,
            "`stores.m.token_length`",
        ),
        (
            r#"{"stores": {"m": {"protocol": "memory"}, "m": {"protocol": "file", "location": "objs"}}}"#,
            "`stores.m`",
        ),
        (
            r#"{"stores": {"default": "m", "default": "n", "m": {"protocol": "memory"}}}"#,
            "`stores.default`",
        ),
        // A dotted key and the nested spelling of the same key.
        (
            r#"{"database.host": "a", "database": {"backend": "mysql", "host": "b"}}"#,
            "`database.host`",
        ),
        (
            r#"{"stores.m.protocol": "memory", "stores": {"m": {"protocol": "memory"}}}"#,
            "`stores.m.protocol`",
        ),
    ] {
        let path = write_config(dir.path(), json);
        let err = err_text(load(dir.path(), &[]));
        assert!(
            err.contains(key) && err.contains(&path.display().to_string()),
            "{json}: {err}"
        );
    }
    // DJ_STORES too.
    write_config(dir.path(), "{}");
    let err = err_text(load(
        dir.path(),
        &[(
            "DJ_STORES",
            r#"{"m": {"protocol": "memory", "protocol": "file"}}"#,
        )],
    ));
    assert!(
        err.contains("DJ_STORES") && err.contains("`stores.m.protocol`"),
        "{err}"
    );
    // The same key in different objects is not a duplicate.
    from_json(
        r#"{"stores": {"a": {"protocol": "memory", "token_length": 8}, "b": {"protocol": "memory", "token_length": 8}}}"#,
        dir.path(),
    )
    .unwrap();
}

#[test]
fn empty_store_location_is_an_error() {
    let dir = project();
    for (spec, protocol) in [
        (r#""protocol": "file""#, "file"),
        (r#""protocol": "s3", "endpoint": "e", "bucket": "b""#, "s3"),
        (r#""protocol": "gcs", "bucket": "b""#, "gcs"),
        (r#""protocol": "azure", "container": "c""#, "azure"),
    ] {
        for location in ["", "/", " "] {
            let json = format!(r#"{{"stores": {{"x": {{{spec}, "location": "{location}"}}}}}}"#);
            let err = err_text(from_json(&json, dir.path()));
            assert!(
                err.contains("`stores.x.location`") && err.contains(protocol),
                "{json}: {err}"
            );
        }
    }
    // `memory` takes no location: empty is the same as absent.
    from_json(
        r#"{"stores": {"x": {"protocol": "memory", "location": ""}}}"#,
        dir.path(),
    )
    .unwrap();
}

#[test]
fn target_never_shows_a_password() {
    let dir = project();
    for (url, target) in [
        (
            "postgresql://u:PW-d4t4j01nt@db.lab:5433/lab",
            "db.lab:5433/lab",
        ),
        ("mysql://u:PW-d4t4j01nt@db.lab", "db.lab"),
        ("postgres://db.lab/lab?password=PW-d4t4j01nt", "db.lab/lab"),
    ] {
        let json = format!(r#"{{"database": {{"url": "{url}"}}}}"#);
        let c = from_json(&json, dir.path()).unwrap();
        assert_eq!(c.database.target(), target, "{url}");
    }
    // Passwords with `/`, `@`, `?` or `#` in them: the URL cannot be split with certainty.
    for url in [
        "postgresql://u:PW-d4t4j01nt/x@db.lab/lab",
        "postgresql://u:PW-d4t4j01nt@x@db.lab/lab",
        "postgresql://u:PW-d4t4j01nt?x@db.lab/lab",
        "postgresql://u:PW-d4t4j01nt#x@db.lab/lab",
    ] {
        let json = format!(r#"{{"database": {{"url": "{url}"}}}}"#);
        let c = from_json(&json, dir.path()).unwrap();
        let target = c.database.target();
        assert_no_secret(&target);
        assert!(target.contains("database.url"), "{url}: {target}");
    }
    let c = from_json(r#"{"database": {"path": "lab.sqlite"}}"#, dir.path()).unwrap();
    assert_eq!(
        c.database.target(),
        dir.path().join("lab.sqlite").display().to_string()
    );
}

// ------------------------------------------------------------------------------------------------
// Store retry settings
// ------------------------------------------------------------------------------------------------

#[test]
fn store_retry_settings() {
    use dj_config::RetrySettings;
    use std::time::Duration;
    let dir = project();
    let spec_of = |retry: &str| {
        write_config(
            dir.path(),
            &format!(r#"{{"stores": {{"m": {{"protocol": "memory", "retry": {retry}}}}}}}"#),
        );
        load(dir.path(), &[]).map(|c| c.stores.get("m").unwrap().retry)
    };
    assert_eq!(
        spec_of(
            r#"{"max_attempts": 6, "initial_backoff_ms": 50, "max_backoff_ms": 2000, "max_elapsed_ms": 60000}"#
        )
        .unwrap(),
        RetrySettings::default()
            .with_max_attempts(6)
            .with_initial_backoff(Duration::from_millis(50))
            .with_max_backoff(Duration::from_millis(2000))
            .with_max_elapsed(Duration::from_secs(60))
    );
    // Unset keys (and `null`) keep the protocol's defaults.
    assert_eq!(
        spec_of(r#"{"max_attempts": 2, "max_backoff_ms": null}"#).unwrap(),
        RetrySettings::default().with_max_attempts(2)
    );
    assert_eq!(spec_of("{}").unwrap(), RetrySettings::default());
    assert_eq!(spec_of("true").unwrap(), RetrySettings::default());
    assert_eq!(spec_of("null").unwrap(), RetrySettings::default());
    // `false` and one attempt both turn retries off.
    assert_eq!(spec_of("false").unwrap(), RetrySettings::never());
    assert_eq!(
        spec_of(r#"{"max_attempts": 1}"#).unwrap(),
        RetrySettings::never()
    );
    // Without the key: the protocol's defaults.
    write_config(dir.path(), r#"{"stores": {"m": {"protocol": "memory"}}}"#);
    assert_eq!(
        load(dir.path(), &[])
            .unwrap()
            .stores
            .get("m")
            .unwrap()
            .retry,
        RetrySettings::default()
    );

    // Errors name `stores.<name>.retry.<key>`.
    for (retry, key, says) in [
        (
            r#"{"max_attempt": 3}"#,
            "stores.m.retry.max_attempt",
            "max_attempts",
        ),
        (
            r#"{"max_attempts": 0}"#,
            "stores.m.retry.max_attempts",
            "from 1",
        ),
        (
            r#"{"max_attempts": -2}"#,
            "stores.m.retry.max_attempts",
            "whole number",
        ),
        (
            r#"{"max_attempts": 2.5}"#,
            "stores.m.retry.max_attempts",
            "whole number",
        ),
        (
            r#"{"max_attempts": "3"}"#,
            "stores.m.retry.max_attempts",
            "whole number",
        ),
        (
            r#"{"max_attempts": 5000000000}"#,
            "stores.m.retry.max_attempts",
            "from 1",
        ),
        (
            r#"{"initial_backoff_ms": "1s"}"#,
            "stores.m.retry.initial_backoff_ms",
            "whole number",
        ),
        (
            r#"{"initial_backoff_ms": 500, "max_backoff_ms": 100}"#,
            "stores.m.retry.initial_backoff_ms",
            "max_backoff_ms",
        ),
        (
            r#"{"max_elapsed_ms": true}"#,
            "stores.m.retry.max_elapsed_ms",
            "whole number",
        ),
        ("3", "stores.m.retry", "false, or an object"),
        (r#""off""#, "stores.m.retry", "false, or an object"),
    ] {
        let err = spec_of(retry).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains(says), "{retry}: {err}");
    }

    // `retry` is a key every protocol shares, not a protocol option.
    let mut every = vec![
        ("memory", String::new()),
        ("file", r#", "location": "objs""#.to_string()),
        (
            "s3",
            r#", "location": "l", "endpoint": "h:9000", "bucket": "b""#.to_string(),
        ),
        ("gcs", r#", "location": "l", "bucket": "b""#.to_string()),
        (
            "azure",
            r#", "location": "l", "container": "c", "account_name": "a""#.to_string(),
        ),
    ];
    fs::create_dir_all(dir.path().join("objs")).unwrap();
    for (protocol, rest) in every.drain(..) {
        write_config(
            dir.path(),
            &format!(
                r#"{{"stores": {{"x": {{"protocol": "{protocol}", "retry": {{"max_attempts": 9}}{rest}}}}}}}"#
            ),
        );
        let c = load(dir.path(), &[]).unwrap_or_else(|e| panic!("{protocol}: {e}"));
        let x = c.stores.get("x").unwrap();
        assert_eq!(x.retry.max_attempts, Some(9), "{protocol}");
        assert!(!x.options.contains_key("retry"), "{protocol}");
        let shown = c.redacted_json();
        assert_eq!(
            shown["stores"]["x"]["retry"]["max_attempts"], 9,
            "{protocol}: {shown}"
        );
    }
}
