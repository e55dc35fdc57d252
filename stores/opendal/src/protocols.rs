//! The store protocols this crate registers, one cargo feature each.
//!
//! Every factory turns a [`StoreSpec`] into an [`OpendalStore`] and is submitted with
//! [`dj_core::submit_store_protocol!`]. A spec's plugin keys arrive either in the typed fields of
//! [`StoreSpec`] (when built in code) or in [`StoreSpec::extra`] (when read from
//! `datajoint.json`); both are accepted, the typed field first. Errors are
//! [`Error::Config`] naming `stores.<name>.<key>`; secret values never appear in them.

// Which helpers are used depends on the protocols enabled; dead code is checked with all on.
#![cfg_attr(
    not(all(
        feature = "memory",
        feature = "fs",
        feature = "s3",
        feature = "webdav",
        feature = "sftp"
    )),
    allow(dead_code)
)]

use dj_core::Result;
use dj_core::config::StoreSpec;
use dj_core::error::Error;

/// The configuration key `stores.<name>.<key>`.
pub(crate) fn key(spec: &StoreSpec, k: &str) -> String {
    format!("stores.{}.{k}", spec.name)
}

fn non_empty(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A string setting: the typed field of the spec when set, else the plugin key in `extra`.
pub(crate) fn text(spec: &StoreSpec, k: &str) -> Result<Option<String>> {
    let field = match k {
        "endpoint" => spec.endpoint.clone(),
        "bucket" => spec.bucket.clone(),
        "region" => spec.region.clone(),
        "access_key" => spec.access_key.as_ref().map(|s| s.expose().to_string()),
        "secret_key" => spec.secret_key.as_ref().map(|s| s.expose().to_string()),
        "token" => spec.token.as_ref().map(|s| s.expose().to_string()),
        _ => None,
    };
    if let Some(v) = field.as_deref().and_then(non_empty) {
        return Ok(Some(v));
    }
    match spec.extra.get(k) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => match v.as_str() {
            Some(s) => Ok(non_empty(s)),
            // The value itself is not shown: it may be a credential.
            None => Err(Error::config(key(spec, k), "must be a string")),
        },
    }
}

/// A required string setting.
pub(crate) fn required(spec: &StoreSpec, k: &str, protocol: &str) -> Result<String> {
    text(spec, k)?.ok_or_else(|| {
        Error::config(
            key(spec, k),
            format!(
                "missing: `{k}` is required for protocol `{protocol}` (store `{}`)",
                spec.name
            ),
        )
    })
}

/// `secure`: from `extra` when given there, else the spec's field (default true).
pub(crate) fn secure(spec: &StoreSpec) -> Result<bool> {
    match spec.extra.get("secure") {
        None => Ok(spec.secure),
        Some(v) if v.is_null() => Ok(spec.secure),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| Error::config(key(spec, "secure"), "must be true or false")),
    }
}

/// Two settings that come together (user and password, access and secret key): both or neither.
pub(crate) fn pair(
    spec: &StoreSpec,
    first: &str,
    second: &str,
) -> Result<Option<(String, String)>> {
    match (text(spec, first)?, text(spec, second)?) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::config(
            key(spec, second),
            format!("missing: `{first}` is set but `{second}` is not; set both or neither"),
        )),
        (None, Some(_)) => Err(Error::config(
            key(spec, first),
            format!("missing: `{second}` is set but `{first}` is not; set both or neither"),
        )),
    }
}

/// The URL for an endpoint: as given when it has a scheme, otherwise `https://` or `http://` by
/// `secure`.
pub fn endpoint_url(endpoint: &str, secure: bool) -> String {
    let endpoint = endpoint.trim().trim_end_matches('/');
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        endpoint.to_string()
    } else if secure {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    }
}

/// The operator root for a spec's `location`: `/` plus the location without outer slashes
/// (absolute paths stay absolute).
pub(crate) fn root(location: &str) -> String {
    format!("/{}", location.trim().trim_matches('/'))
}

/// A failed operator build, as a configuration error on `stores.<name>.<k>`.
pub(crate) fn build_error(spec: &StoreSpec, k: &str, what: &str, e: opendal::Error) -> Error {
    Error::config(key(spec, k), format!("cannot configure {what}: {e}"))
}

/// Make sure HTTP-based services have a transport: OpenDAL's reqwest transport, unless the
/// application installed its own process-wide default first.
#[cfg(any(feature = "s3", feature = "webdav"))]
fn install_http_transport() {
    opendal::install_default();
}

#[cfg(feature = "memory")]
mod memory {
    use std::sync::Arc;

    use dj_core::Result;
    use dj_core::config::{Config, StoreSpec};
    use dj_core::store::Store;
    use opendal::Operator;
    use opendal::services::Memory;

    use crate::OpendalStore;

    /// Build an `opendal-memory` store: OpenDAL's in-memory service. A non-empty `location` is
    /// the root inside it. Every store built this way has its own, empty memory.
    pub fn create_memory(spec: &StoreSpec, _config: &Config) -> Result<Arc<dyn Store>> {
        let op = Operator::new(Memory::default().root(&super::root(&spec.location)))
            .map_err(|e| super::build_error(spec, "location", "the opendal memory service", e))?;
        Ok(Arc::new(OpendalStore::new(&spec.name, op)))
    }

    dj_core::submit_store_protocol!(
        "opendal-memory",
        create_memory,
        allowed = &[],
        required = &[]
    );
}
#[cfg(feature = "memory")]
pub use memory::create_memory;

#[cfg(feature = "fs")]
mod fs {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use dj_core::Result;
    use dj_core::config::{Config, StoreSpec};
    use dj_core::error::Error;
    use dj_core::store::Store;
    use opendal::Operator;
    use opendal::services::Fs;

    use crate::{OpendalStore, STAGING_DIR};

    /// Build an `opendal-fs` store: OpenDAL's local file system service rooted at `location`
    /// (created when missing; a relative location is relative to the configuration file's
    /// directory, or to the working directory without one). Writes are staged in `<location>/.dj-staging/` and renamed into
    /// place, so readers never see partial objects and aborted uploads leave nothing; that
    /// directory is hidden from listings.
    pub fn create_fs(spec: &StoreSpec, config: &Config) -> Result<Arc<dyn Store>> {
        let location = spec.location.trim();
        if location.is_empty() {
            return Err(Error::config(
                super::key(spec, "location"),
                "missing: an opendal-fs store needs a directory",
            ));
        }
        // A relative location is relative to the configuration file, as for `file` stores.
        let dir = match config.source.as_deref().and_then(Path::parent) {
            Some(base) if Path::new(location).is_relative() => base.join(location),
            _ => PathBuf::from(location),
        };
        let location = dir.to_string_lossy();
        let staging = dir.join(STAGING_DIR);
        let builder = Fs::default()
            .root(&location)
            .atomic_write_dir(&staging.to_string_lossy());
        let op = Operator::new(builder).map_err(|e| {
            super::build_error(
                spec,
                "location",
                &format!("the opendal fs service at `{location}`"),
                e,
            )
        })?;
        Ok(Arc::new(
            OpendalStore::new(&spec.name, op).with_hidden_prefix(STAGING_DIR),
        ))
    }

    dj_core::submit_store_protocol!(
        "opendal-fs",
        create_fs,
        allowed = &[],
        required = &["location"]
    );
}
#[cfg(feature = "fs")]
pub use fs::create_fs;

#[cfg(feature = "s3")]
mod s3 {
    use std::sync::Arc;

    use dj_core::Result;
    use dj_core::config::{Config, StoreSpec};
    use dj_core::store::Store;
    use opendal::Operator;
    use opendal::services::S3;

    use crate::OpendalStore;

    /// Build an `opendal-s3` store: OpenDAL's S3 service, with the same keys as dj-rs's `s3`
    /// protocol (`endpoint`, `bucket`, `location`, `access_key` + `secret_key` or neither for the
    /// ambient credentials, `secure`, `region`, default `us-east-1`). Requests use path-style
    /// addressing. With static keys, `AWS_*` variables and profile files are ignored; with
    /// neither key, OpenDAL's default credential chain (environment, profile files, web
    /// identity, instance metadata) supplies them.
    pub fn create_s3(spec: &StoreSpec, _config: &Config) -> Result<Arc<dyn Store>> {
        super::install_http_transport();
        let endpoint = super::required(spec, "endpoint", "opendal-s3")?;
        let bucket = super::required(spec, "bucket", "opendal-s3")?;
        let url = super::endpoint_url(&endpoint, super::secure(spec)?);
        let region = super::text(spec, "region")?.unwrap_or_else(|| "us-east-1".into());
        let mut builder = S3::default()
            .root(&super::root(&spec.location))
            .bucket(&bucket)
            .endpoint(&url)
            .region(&region);
        if let Some((access, secret)) = super::pair(spec, "access_key", "secret_key")? {
            // Static credentials: ignore AWS_* variables and profiles.
            builder = builder
                .access_key_id(&access)
                .secret_access_key(&secret)
                .disable_config_load();
        }
        let op = Operator::new(builder).map_err(|e| {
            super::build_error(
                spec,
                "endpoint",
                &format!("the opendal S3 service for {url}, bucket `{bucket}`"),
                e,
            )
        })?;
        let store = OpendalStore::new(&spec.name, op)
            .with_backend_description(format!("S3 bucket `{bucket}` at {url} (opendal)"));
        Ok(Arc::new(store))
    }

    dj_core::submit_store_protocol!(
        "opendal-s3",
        create_s3,
        allowed = &[
            "endpoint",
            "bucket",
            "access_key",
            "secret_key",
            "secure",
            "region",
            "proxy_server"
        ],
        required = &["endpoint", "bucket", "location"]
    );
}
#[cfg(feature = "s3")]
pub use s3::create_s3;

#[cfg(feature = "webdav")]
mod webdav {
    use std::sync::Arc;

    use dj_core::Result;
    use dj_core::config::{Config, StoreSpec};
    use dj_core::store::Store;
    use opendal::Operator;
    use opendal::services::Webdav;

    use crate::OpendalStore;

    /// Build a `webdav` store: `endpoint` is the server's WebDAV URL (`host[:port]/path` takes
    /// its scheme from `secure`), `location` a directory below it. Authenticate with `user` and
    /// `password` (HTTP basic) or a bearer `token`.
    pub fn create_webdav(spec: &StoreSpec, _config: &Config) -> Result<Arc<dyn Store>> {
        super::install_http_transport();
        let endpoint = super::required(spec, "endpoint", "webdav")?;
        let url = super::endpoint_url(&endpoint, super::secure(spec)?);
        let mut builder = Webdav::default()
            .endpoint(&url)
            .root(&super::root(&spec.location));
        if let Some((user, password)) = super::pair(spec, "user", "password")? {
            builder = builder.username(&user).password(&password);
        }
        if let Some(token) = super::text(spec, "token")? {
            builder = builder.token(&token);
        }
        let op = Operator::new(builder).map_err(|e| {
            super::build_error(
                spec,
                "endpoint",
                &format!("the opendal WebDAV service for {url}"),
                e,
            )
        })?;
        let store = OpendalStore::new(&spec.name, op)
            .with_backend_description(format!("WebDAV server {url}"));
        Ok(Arc::new(store))
    }

    dj_core::submit_store_protocol!(
        "webdav",
        create_webdav,
        allowed = &["endpoint", "secure", "user", "password", "token"],
        required = &["endpoint", "location"]
    );
}
#[cfg(feature = "webdav")]
pub use webdav::create_webdav;

#[cfg(feature = "sftp")]
mod sftp {
    use std::sync::Arc;

    use dj_core::Result;
    use dj_core::config::{Config, StoreSpec};
    use dj_core::store::Store;
    use opendal::Operator;
    use opendal::services::Sftp;

    use crate::OpendalStore;

    /// Build an `sftp` store over the system `ssh` client: `endpoint` is `host` or `host:port`,
    /// `location` an absolute directory on the server, `user` the login, `key` the path of a
    /// private key file (else `ssh`'s own configuration and agent decide), and
    /// `known_hosts_strategy` one of `strict` (default), `accept` or `add`. Password login is not
    /// supported by OpenDAL's SFTP service.
    pub fn create_sftp(spec: &StoreSpec, _config: &Config) -> Result<Arc<dyn Store>> {
        let endpoint = super::required(spec, "endpoint", "sftp")?;
        let mut builder = Sftp::default()
            .endpoint(&endpoint)
            .root(&super::root(&spec.location));
        if let Some(user) = super::text(spec, "user")? {
            builder = builder.user(&user);
        }
        if let Some(key) = super::text(spec, "key")? {
            builder = builder.key(&key);
        }
        if let Some(strategy) = super::text(spec, "known_hosts_strategy")? {
            builder = builder.known_hosts_strategy(&strategy);
        }
        let op = Operator::new(builder).map_err(|e| {
            super::build_error(
                spec,
                "endpoint",
                &format!("the opendal SFTP service for `{endpoint}`"),
                e,
            )
        })?;
        let store = OpendalStore::new(&spec.name, op)
            .with_backend_description(format!("SFTP server `{endpoint}`"));
        Ok(Arc::new(store))
    }

    dj_core::submit_store_protocol!(
        "sftp",
        create_sftp,
        allowed = &["endpoint", "user", "key", "known_hosts_strategy"],
        required = &["endpoint", "location"]
    );
}
#[cfg(feature = "sftp")]
pub use sftp::create_sftp;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use dj_core::config::Secret;

    #[test]
    fn endpoint_scheme() {
        assert_eq!(
            endpoint_url("dav:8080/remote", false),
            "http://dav:8080/remote"
        );
        assert_eq!(
            endpoint_url("dav.example.org", true),
            "https://dav.example.org"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:9000/", true),
            "http://127.0.0.1:9000"
        );
    }

    #[test]
    fn roots() {
        assert_eq!(root(""), "/");
        assert_eq!(root("lab/raw/"), "/lab/raw");
        assert_eq!(root("/srv/data"), "/srv/data");
    }

    #[test]
    fn settings_come_from_fields_or_extra() {
        let mut spec = StoreSpec::new("dav", "webdav", "x");
        spec.extra.insert("user".into(), "ann".into());
        spec.extra.insert("password".into(), "pw-hidden".into());
        spec.extra.insert("endpoint".into(), "from-extra".into());
        assert_eq!(
            text(&spec, "endpoint").unwrap().as_deref(),
            Some("from-extra")
        );
        spec.endpoint = Some("from-field".into());
        assert_eq!(
            text(&spec, "endpoint").unwrap().as_deref(),
            Some("from-field")
        );
        assert_eq!(
            pair(&spec, "user", "password").unwrap(),
            Some(("ann".into(), "pw-hidden".into()))
        );
        spec.extra.insert("secure".into(), false.into());
        assert!(!secure(&spec).unwrap());
        spec.extra.insert("secure".into(), "no".into());
        let err = secure(&spec).unwrap_err().to_string();
        assert!(err.contains("stores.dav.secure"), "{err}");
    }

    #[test]
    fn half_pairs_and_bad_types_do_not_leak_secrets() {
        let mut spec = StoreSpec::new("s", "opendal-s3", "x");
        spec.access_key = Some(Secret::new("AKIA-VISIBLE-NOWHERE"));
        let err = pair(&spec, "access_key", "secret_key")
            .unwrap_err()
            .to_string();
        assert!(err.contains("stores.s.secret_key"), "{err}");
        assert!(!err.contains("AKIA-VISIBLE-NOWHERE"), "{err}");
        spec.extra.insert("password".into(), 12345.into());
        let err = text(&spec, "password").unwrap_err().to_string();
        assert!(
            err.contains("stores.s.password") && !err.contains("12345"),
            "{err}"
        );
        let err = required(&spec, "endpoint", "opendal-s3")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stores.s.endpoint") && err.contains("required"),
            "{err}"
        );
    }
}
