//! The store protocols this crate registers, one cargo feature each.
//!
//! Every factory turns a [`StoreSpec`] into an [`OpendalStore`] and is submitted with
//! [`dj_core::submit_store_protocol!`], together with a check that reads the spec's
//! [`options`](StoreSpec::options) into the protocol's own options struct (unknown keys
//! rejected) when the configuration is loaded. Errors are [`Error::Config`] naming
//! `stores.<name>.<key>`; secret values never appear in them.

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
use dj_core::config::{Secret, StoreSpec};
use dj_core::error::Error;

/// The configuration key `stores.<name>.<key>`.
pub(crate) fn key(spec: &StoreSpec, k: &str) -> String {
    format!("stores.{}.{k}", spec.name)
}

fn non_empty(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

fn yes() -> bool {
    true
}

/// A string option as given: trimmed, `None` when blank.
pub(crate) fn text(v: Option<&str>) -> Option<String> {
    v.and_then(non_empty)
}

/// A required string option.
pub(crate) fn required(spec: &StoreSpec, k: &str, v: Option<&str>) -> Result<String> {
    text(v).ok_or_else(|| {
        Error::config(
            key(spec, k),
            format!(
                "missing: `{k}` is required for protocol `{}` (store `{}`)",
                spec.protocol, spec.name
            ),
        )
    })
}

/// Two settings that come together (user and password, access and secret key): both or neither.
pub(crate) fn pair(
    spec: &StoreSpec,
    (first, a): (&str, Option<&str>),
    (second, b): (&str, Option<&str>),
) -> Result<Option<(String, String)>> {
    match (text(a), text(b)) {
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

/// The options of a protocol without any (`opendal-memory`, `opendal-fs`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoOptions {}

/// The options of `opendal-s3`: the same keys as dj-rs's `s3` protocol.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct S3Options {
    endpoint: Option<String>,
    bucket: Option<String>,
    #[serde(default)]
    access_key: Option<Secret>,
    #[serde(default)]
    secret_key: Option<Secret>,
    #[serde(default = "yes")]
    secure: bool,
    #[serde(default)]
    region: Option<String>,
    /// DataJoint's `proxy_server`: accepted and ignored.
    #[serde(default)]
    #[allow(dead_code)]
    proxy_server: Option<serde::de::IgnoredAny>,
}

/// The options of `webdav`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebdavOptions {
    endpoint: Option<String>,
    #[serde(default = "yes")]
    secure: bool,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default)]
    token: Option<Secret>,
}

/// The options of `sftp`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SftpOptions {
    endpoint: Option<String>,
    #[serde(default)]
    user: Option<String>,
    /// The path of a private key file.
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    known_hosts_strategy: Option<String>,
}

fn expose(s: &Option<Secret>) -> Option<&str> {
    s.as_ref().map(Secret::expose)
}

/// The load-time check of a protocol whose options are `T` and which needs `required` options
/// and, when `location` is set, a location of its own.
fn check_with<T: serde::de::DeserializeOwned>(
    spec: &StoreSpec,
    required: &[&str],
    location: bool,
) -> Result<()> {
    let _: T = spec.options_as()?;
    for r in required {
        spec.require_option(r)?;
    }
    if location && spec.location.trim().is_empty() {
        return Err(Error::config(
            key(spec, "location"),
            format!(
                "missing: `location` is required for protocol `{}` (store `{}`)",
                spec.protocol, spec.name
            ),
        ));
    }
    Ok(())
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

/// A store as its protocol opens it: wrapped in the tracing layer, and for a remote service
/// (`remote`: S3, WebDAV, SFTP; OpenDAL is used here without its own retry layer, so nothing
/// below retries) in the retry layer first, with the default policy and the spec's `retry`
/// settings over it. Local services have nothing worth retrying.
fn layered(
    spec: &StoreSpec,
    store: crate::OpendalStore,
    remote: bool,
) -> std::sync::Arc<dyn dj_core::store::Store> {
    let retries = if remote {
        dj_store_layers::Retries::Layer(dj_store_layers::RetryPolicy::for_spec(spec))
    } else {
        dj_store_layers::Retries::Backend
    };
    dj_store_layers::standard(std::sync::Arc::new(store), retries)
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
    use dj_core::config::{SpecContext, StoreSpec};
    use dj_core::store::Store;
    use opendal::Operator;
    use opendal::services::Memory;

    use crate::OpendalStore;

    /// Build an `opendal-memory` store: OpenDAL's in-memory service. A non-empty `location` is
    /// the root inside it. Every store built this way has its own, empty memory.
    pub fn create_memory(spec: &StoreSpec, _cx: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
        let _: super::NoOptions = spec.options_as()?;
        let op = Operator::new(Memory::default().root(&super::root(&spec.location)))
            .map_err(|e| super::build_error(spec, "location", "the opendal memory service", e))?;
        Ok(super::layered(
            spec,
            OpendalStore::new(&spec.name, op),
            false,
        ))
    }

    fn check(spec: &mut StoreSpec, _: &SpecContext<'_>) -> Result<()> {
        super::check_with::<super::NoOptions>(spec, &[], false)
    }

    dj_core::submit_store_protocol!("opendal-memory", create_memory, check = check);
}
#[cfg(feature = "memory")]
pub use memory::create_memory;

#[cfg(feature = "fs")]
mod fs {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use dj_core::Result;
    use dj_core::config::{SpecContext, StoreSpec};
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
    pub fn create_fs(spec: &StoreSpec, cx: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
        let _: super::NoOptions = spec.options_as()?;
        let location = spec.location.trim();
        if location.is_empty() {
            return Err(Error::config(
                super::key(spec, "location"),
                "missing: an opendal-fs store needs a directory",
            ));
        }
        // A relative location is relative to the configuration file, as for `file` stores.
        let dir = if Path::new(location).is_relative() {
            cx.base_dir.join(location)
        } else {
            PathBuf::from(location)
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
        Ok(super::layered(
            spec,
            OpendalStore::new(&spec.name, op).with_hidden_prefix(STAGING_DIR),
            false,
        ))
    }

    fn check(spec: &mut StoreSpec, _: &SpecContext<'_>) -> Result<()> {
        super::check_with::<super::NoOptions>(spec, &[], true)
    }

    dj_core::submit_store_protocol!("opendal-fs", create_fs, check = check);
}
#[cfg(feature = "fs")]
pub use fs::create_fs;

#[cfg(feature = "s3")]
mod s3 {
    use std::sync::Arc;

    use dj_core::Result;
    use dj_core::config::{SpecContext, StoreSpec};
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
    pub fn create_s3(spec: &StoreSpec, _cx: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
        super::install_http_transport();
        let o: super::S3Options = spec.options_as()?;
        let endpoint = super::required(spec, "endpoint", o.endpoint.as_deref())?;
        let bucket = super::required(spec, "bucket", o.bucket.as_deref())?;
        let url = super::endpoint_url(&endpoint, o.secure);
        let region = super::text(o.region.as_deref()).unwrap_or_else(|| "us-east-1".into());
        let mut builder = S3::default()
            .root(&super::root(&spec.location))
            .bucket(&bucket)
            .endpoint(&url)
            .region(&region);
        if let Some((access, secret)) = super::pair(
            spec,
            ("access_key", super::expose(&o.access_key)),
            ("secret_key", super::expose(&o.secret_key)),
        )? {
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
        Ok(super::layered(spec, store, true))
    }

    fn check(spec: &mut StoreSpec, _: &SpecContext<'_>) -> Result<()> {
        super::check_with::<super::S3Options>(spec, &["endpoint", "bucket"], true)?;
        let o: super::S3Options = spec.options_as()?;
        super::pair(
            spec,
            ("access_key", super::expose(&o.access_key)),
            ("secret_key", super::expose(&o.secret_key)),
        )
        .map(|_| ())
    }

    dj_core::submit_store_protocol!("opendal-s3", create_s3, check = check);
}
#[cfg(feature = "s3")]
pub use s3::create_s3;

#[cfg(feature = "webdav")]
mod webdav {
    use std::sync::Arc;

    use dj_core::Result;
    use dj_core::config::{SpecContext, StoreSpec};
    use dj_core::store::Store;
    use opendal::Operator;
    use opendal::services::Webdav;

    use crate::OpendalStore;

    /// Build a `webdav` store: `endpoint` is the server's WebDAV URL (`host[:port]/path` takes
    /// its scheme from `secure`), `location` a directory below it. Authenticate with `user` and
    /// `password` (HTTP basic) or a bearer `token`.
    pub fn create_webdav(spec: &StoreSpec, _cx: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
        super::install_http_transport();
        let o: super::WebdavOptions = spec.options_as()?;
        let endpoint = super::required(spec, "endpoint", o.endpoint.as_deref())?;
        let url = super::endpoint_url(&endpoint, o.secure);
        let mut builder = Webdav::default()
            .endpoint(&url)
            .root(&super::root(&spec.location));
        if let Some((user, password)) = super::pair(
            spec,
            ("user", o.user.as_deref()),
            ("password", super::expose(&o.password)),
        )? {
            builder = builder.username(&user).password(&password);
        }
        if let Some(token) = super::text(super::expose(&o.token)) {
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
        Ok(super::layered(spec, store, true))
    }

    fn check(spec: &mut StoreSpec, _: &SpecContext<'_>) -> Result<()> {
        super::check_with::<super::WebdavOptions>(spec, &["endpoint"], true)
    }

    dj_core::submit_store_protocol!("webdav", create_webdav, check = check);
}
#[cfg(feature = "webdav")]
pub use webdav::create_webdav;

#[cfg(feature = "sftp")]
mod sftp {
    use std::sync::Arc;

    use dj_core::Result;
    use dj_core::config::{SpecContext, StoreSpec};
    use dj_core::store::Store;
    use opendal::Operator;
    use opendal::services::Sftp;

    use crate::OpendalStore;

    /// Build an `sftp` store over the system `ssh` client: `endpoint` is `host` or `host:port`,
    /// `location` an absolute directory on the server, `user` the login, `key` the path of a
    /// private key file (else `ssh`'s own configuration and agent decide), and
    /// `known_hosts_strategy` one of `strict` (default), `accept` or `add`. Password login is not
    /// supported by OpenDAL's SFTP service.
    pub fn create_sftp(spec: &StoreSpec, _cx: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
        let o: super::SftpOptions = spec.options_as()?;
        let endpoint = super::required(spec, "endpoint", o.endpoint.as_deref())?;
        let mut builder = Sftp::default()
            .endpoint(&endpoint)
            .root(&super::root(&spec.location));
        if let Some(user) = super::text(o.user.as_deref()) {
            builder = builder.user(&user);
        }
        if let Some(key) = super::text(o.key.as_deref()) {
            builder = builder.key(&key);
        }
        if let Some(strategy) = super::text(o.known_hosts_strategy.as_deref()) {
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
        Ok(super::layered(spec, store, true))
    }

    fn check(spec: &mut StoreSpec, _: &SpecContext<'_>) -> Result<()> {
        super::check_with::<super::SftpOptions>(spec, &["endpoint"], true)
    }

    dj_core::submit_store_protocol!("sftp", create_sftp, check = check);
}
#[cfg(feature = "sftp")]
pub use sftp::create_sftp;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

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
    fn settings_come_from_the_protocol_options() {
        let spec = StoreSpec::new("dav", "webdav", "x")
            .with_option("user", "ann")
            .with_option("password", "pw-hidden")
            .with_option("endpoint", "from-options");
        let o: WebdavOptions = spec.options_as().unwrap();
        assert_eq!(o.endpoint.as_deref(), Some("from-options"));
        assert!(o.secure);
        assert_eq!(
            pair(
                &spec,
                ("user", o.user.as_deref()),
                ("password", expose(&o.password))
            )
            .unwrap(),
            Some(("ann".into(), "pw-hidden".into()))
        );
        let o: WebdavOptions = spec
            .clone()
            .with_option("secure", false)
            .options_as()
            .unwrap();
        assert!(!o.secure);
        let err = spec
            .clone()
            .with_option("secure", "no")
            .options_as::<WebdavOptions>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("stores.dav.secure"), "{err}");
        let err = spec
            .with_option("bucket", "b")
            .options_as::<WebdavOptions>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stores.dav.bucket") && err.contains("unknown"),
            "{err}"
        );
    }

    #[test]
    fn half_pairs_and_bad_types_do_not_leak_secrets() {
        let spec = StoreSpec::new("s", "opendal-s3", "x")
            .with_option("access_key", "AKIA-VISIBLE-NOWHERE");
        let o: S3Options = spec.options_as().unwrap();
        let err = pair(
            &spec,
            ("access_key", expose(&o.access_key)),
            ("secret_key", expose(&o.secret_key)),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("stores.s.secret_key"), "{err}");
        assert!(!err.contains("AKIA-VISIBLE-NOWHERE"), "{err}");
        let dav = StoreSpec::new("s", "webdav", "x").with_option("password", 12345);
        let err = dav.options_as::<WebdavOptions>().unwrap_err().to_string();
        assert!(
            err.contains("stores.s.password") && !err.contains("12345"),
            "{err}"
        );
        let err = required(&spec, "endpoint", o.endpoint.as_deref())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stores.s.endpoint") && err.contains("required"),
            "{err}"
        );
    }
}
