//! # dj-store-gcs: the `gcs` store protocol
//!
//! Google Cloud Storage, and GCS emulators, through `object_store`'s GCS client, configured with
//! DataJoint's store keys:
//!
//! | key | meaning |
//! |---|---|
//! | `bucket` | the bucket (required) |
//! | `location` | a key prefix inside the bucket (may be empty) |
//! | `token` | credentials, as DataJoint passes them to `gcsfs` (see below) |
//! | `project` | the project; accepted for DataJoint compatibility (object access does not need it) |
//! | `endpoint` | another service URL, e.g. an emulator (dj-rs extension; see below) |
//!
//! **`token`.** As in `gcsfs`:
//! - absent, empty, `google_default` or `cloud`: the ambient credentials: the file named by
//!   `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's application-default credentials, else the
//!   metadata server (on GCE, GKE, Cloud Run);
//! - `anon`: anonymous, unsigned requests (public buckets, emulators);
//! - a path to a JSON credentials file: a service-account key, or an `authorized_user` file
//!   as written by `gcloud auth application-default login`;
//! - the JSON of a service-account key itself (starting with `{`).
//!
//! A service-account file may carry `object_store`'s testing fields `gcs_base_url` (another
//! service URL) and `disable_oauth: true` (no token exchange): that is how a `datajoint.json`
//! points a `gcs` store at an emulator.
//!
//! **`endpoint`.** The service URL (`http(s)://host:port`; without a scheme, `https://`, or
//! `http://` when `secure` is false). With an endpoint and no `token`, requests are anonymous,
//! which is what emulators expect.
//!
//! **Wire protocol.** `object_store` speaks GCS's XML API: objects are `PUT`/`GET`/`HEAD`/`DELETE`
//! `{endpoint}/{bucket}/{key}`, create-if-absent sends `x-goog-if-generation-match: 0`, listings
//! use `GET {endpoint}/{bucket}?list-type=2`, and large objects use XML multipart uploads. An
//! emulator must serve these; see `docs/configuration.md` for the emulators tried.
//!
//! **Errors.** Everything is a [`dj_core::Error`]. Bad specs are [`dj_core::Error::Config`]
//! errors naming `stores.<name>.<key>`; the content of `token` never appears. Failed requests name
//! the store, the key, the bucket and the service URL; a missing bucket says so.
//!
//! ```no_run
//! # async fn example() -> dj_core::Result<()> {
//! use dj_core::config::{SpecContext, StoreSpec};
//! use dj_core::store::{StoreExt, StorePath};
//!
//! let spec = StoreSpec::new("archive", "gcs", "lab/raw")
//!     .with_option("bucket", "my-bucket")
//!     .with_option("token", "/etc/dj/service-account.json");
//! let store = dj_store_gcs::create(&spec, &SpecContext::default())?;
//! // Stored as `lab/raw/notes/a.txt` in `my-bucket`.
//! store.put(&StorePath::parse("notes/a.txt")?, "hello".into()).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use dj_core::Result;
use dj_core::config::{Secret, SpecContext, StoreSpec};
use dj_core::error::Error;
use dj_core::store::{Capabilities, Store};
use dj_store_object_store::ObjectStoreAdapter;
use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder};
use object_store::{ClientOptions, StaticCredentialProvider};

/// The public GCS service URL, used when neither `endpoint` nor a credentials file names another.
pub const DEFAULT_SERVICE_URL: &str = "https://storage.googleapis.com";

/// How a `gcs` store authenticates, from its `token` key.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// The ambient chain: `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's application-default
    /// credentials, then the metadata server.
    Ambient,
    /// No credentials; requests are not signed.
    Anonymous,
    /// A service-account key file (JSON).
    ServiceAccountFile(String),
    /// A service-account key given inline (JSON).
    ServiceAccountKey(String),
    /// An `authorized_user` credentials file (JSON), as written by gcloud.
    AuthorizedUserFile(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Ambient => f.write_str("Ambient"),
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::ServiceAccountFile(p) => {
                f.debug_tuple("ServiceAccountFile").field(p).finish()
            }
            Credentials::ServiceAccountKey(_) => f.write_str("ServiceAccountKey(***)"),
            Credentials::AuthorizedUserFile(p) => {
                f.debug_tuple("AuthorizedUserFile").field(p).finish()
            }
        }
    }
}

/// The endpoint URL for an endpoint as written: as given when it has a scheme, otherwise
/// `https://` or `http://` by `secure`; no trailing `/`.
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

/// What a credentials JSON says about itself: its `type` and `gcs_base_url`.
fn inspect_json(text: &str) -> std::result::Result<(Option<String>, Option<String>), String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let obj = v
        .as_object()
        .ok_or_else(|| "is JSON but not an object".to_string())?;
    let field = |k: &str| obj.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Ok((field("type"), field("gcs_base_url")))
}

/// Resolve the `token` key. Returns the credentials and the service URL a credentials file
/// names (`gcs_base_url`), if any.
///
/// Errors are [`Error::Config`] naming `stores.<name>.token`; they never quote its content.
pub fn credentials_from_spec(spec: &StoreSpec) -> Result<(Credentials, Option<String>)> {
    let key = format!("stores.{}.token", spec.name);
    let options: GcsOptions = spec.options_as()?;
    let token = options
        .token
        .as_ref()
        .map(|t| t.expose().trim())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        let anonymous = options
            .endpoint
            .as_deref()
            .is_some_and(|e| !e.trim().is_empty());
        return Ok((
            if anonymous {
                Credentials::Anonymous
            } else {
                Credentials::Ambient
            },
            None,
        ));
    };
    match token {
        "google_default" | "cloud" => return Ok((Credentials::Ambient, None)),
        "anon" | "anonymous" => return Ok((Credentials::Anonymous, None)),
        "cache" | "browser" => {
            return Err(Error::config(
                key,
                format!(
                    "`{token}` (interactive gcsfs login) is not supported; use a credentials \
                     file, `google_default` or `anon`"
                ),
            ));
        }
        _ => {}
    }
    let (text, inline) = if token.starts_with('{') {
        (token.to_string(), true)
    } else {
        let text = std::fs::read_to_string(token).map_err(|e| {
            Error::config(
                &key,
                format!("cannot read the credentials file it names: {e}"),
            )
        })?;
        (text, false)
    };
    let what = if inline {
        "the inline credentials"
    } else {
        "the credentials file"
    };
    let (kind, base_url) =
        inspect_json(&text).map_err(|m| Error::config(&key, format!("{what} {m}")))?;
    let creds = match (kind.as_deref(), inline) {
        (Some("authorized_user"), false) => Credentials::AuthorizedUserFile(token.to_string()),
        (Some("authorized_user"), true) => {
            return Err(Error::config(
                key,
                "inline authorized_user credentials are not supported; give the path of the file",
            ));
        }
        (None | Some("service_account"), false) => {
            Credentials::ServiceAccountFile(token.to_string())
        }
        (None | Some("service_account"), true) => Credentials::ServiceAccountKey(text),
        (Some(other), _) => {
            return Err(Error::config(
                key,
                format!(
                    "credentials of type `{other}` are not supported; use a service_account or \
                     authorized_user file"
                ),
            ));
        }
    };
    Ok((creds, base_url))
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn yes() -> bool {
    true
}

/// The settings of a `gcs` store beyond the common ones (`stores.<name>.*`). Unknown keys are
/// errors.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GcsOptions {
    /// The bucket.
    pub bucket: Option<String>,
    /// A path to a credentials JSON file, the JSON itself, or `google_default`, `cloud`,
    /// `anon`; none for the ambient credentials.
    #[serde(default)]
    pub token: Option<Secret>,
    /// The project (DataJoint's key; the bucket already implies it).
    #[serde(default)]
    pub project: Option<String>,
    /// The service URL, for emulators (a dj-rs extension).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Scheme for an endpoint without one: `https` when true (the default).
    #[serde(default = "yes")]
    pub secure: bool,
}

/// Check a `gcs` spec when the configuration is loaded (the check registered for the protocol):
/// its options and the required `bucket` and `location`.
pub fn check(spec: &mut StoreSpec, _cx: &SpecContext<'_>) -> Result<()> {
    let _: GcsOptions = spec.options_as()?;
    spec.require_option("bucket")?;
    spec.require_location("bucket or container")
}

/// Build a `gcs` store from its spec (the factory registered for the protocol).
///
/// Errors are [`Error::Config`] naming `stores.<name>.<key>`: a missing `bucket`, an unreadable
/// or unsupported `token`, or an endpoint the GCS client cannot use. Nothing is sent over the
/// network here; an unreachable service or a missing bucket shows on the first request.
pub fn create(spec: &StoreSpec, _cx: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
    let name = spec.name.as_str();
    let key = |k: &str| format!("stores.{name}.{k}");
    let options: GcsOptions = spec.options_as()?;
    let bucket = non_empty(options.bucket.as_deref())
        .ok_or_else(|| Error::config(key("bucket"), "a gcs store needs a bucket"))?;
    let (credentials, file_url) = credentials_from_spec(spec)?;
    let endpoint = non_empty(options.endpoint.as_deref()).map(|e| endpoint_url(e, options.secure));
    let url = endpoint
        .clone()
        .or(file_url)
        .unwrap_or_else(|| DEFAULT_SERVICE_URL.to_string());
    let mut builder = GoogleCloudStorageBuilder::new()
        .with_bucket_name(bucket)
        .with_client_options(ClientOptions::new().with_allow_http(url.starts_with("http://")))
        .with_retry(dj_store_object_store::retry_config_for(spec));
    if let Some(e) = &endpoint {
        builder = builder.with_base_url(e);
    }
    builder = match &credentials {
        Credentials::Ambient => {
            if let Ok(path) = std::env::var("GOOGLE_APPLICATION_CREDENTIALS") {
                builder.with_application_credentials(path)
            } else {
                builder
            }
        }
        Credentials::Anonymous => builder
            .with_skip_signature(true)
            // Keeps the builder from looking for ambient credentials it will not use.
            .with_credentials(Arc::new(StaticCredentialProvider::new(GcpCredential {
                bearer: String::new(),
            }))),
        Credentials::ServiceAccountFile(p) => builder.with_service_account_path(p),
        Credentials::ServiceAccountKey(k) => builder.with_service_account_key(k),
        Credentials::AuthorizedUserFile(p) => builder.with_application_credentials(p),
    };
    let description = format!("GCS bucket `{bucket}` at {url}");
    let culprit = match &credentials {
        Credentials::Ambient | Credentials::Anonymous if endpoint.is_some() => "endpoint",
        Credentials::Ambient | Credentials::Anonymous => "bucket",
        _ => "token",
    };
    let gcs = builder.build().map_err(|e| {
        // object_store's messages about credentials files can quote them; say only what kind
        // of failure it was.
        let detail = match &credentials {
            Credentials::ServiceAccountKey(_) | Credentials::ServiceAccountFile(_) => {
                "the service-account credentials are incomplete or invalid".to_string()
            }
            _ => e.to_string(),
        };
        Error::config(
            key(culprit),
            format!("cannot configure the GCS client for {description}: {detail}"),
        )
    })?;
    let prefix = Some(spec.location.trim_matches('/')).filter(|l| !l.is_empty());
    let adapter = ObjectStoreAdapter::new(name, Arc::new(gcs), prefix)
        .map_err(|e| Error::config(key("location"), e))?
        .with_capabilities(
            Capabilities::default()
                .with_create_if_absent(true)
                .with_native_multipart(true)
                .with_ranged_get(true)
                .with_durable_writes(true)
                .with_min_part_size(5 * 1024 * 1024),
        )
        .with_backend_description(description)
        .with_retry_classifier(dj_store_object_store::classify_http);
    // object_store's HTTP client retries transient failures itself (its `RetryConfig`, set from
    // the spec's `retry` above): no retry layer on top, which would multiply the attempts.
    Ok(dj_store_layers::standard(
        Arc::new(adapter),
        dj_store_layers::Retries::Backend,
    ))
}

dj_core::submit_store_protocol!("gcs", create, check = check);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn spec() -> StoreSpec {
        StoreSpec::new("g", "gcs", "lab").with_option("bucket", "b")
    }

    fn with_token(t: &str) -> StoreSpec {
        let mut s = spec();
        s.options.insert("token".into(), t.into());
        s
    }

    #[test]
    fn token_forms() {
        assert_eq!(
            credentials_from_spec(&spec()).unwrap().0,
            Credentials::Ambient
        );
        assert_eq!(
            credentials_from_spec(&with_token("google_default"))
                .unwrap()
                .0,
            Credentials::Ambient
        );
        assert_eq!(
            credentials_from_spec(&with_token("anon")).unwrap().0,
            Credentials::Anonymous
        );
        let mut s = spec();
        s.options
            .insert("endpoint".into(), "http://127.0.0.1:4443".into());
        assert_eq!(credentials_from_spec(&s).unwrap().0, Credentials::Anonymous);
        assert!(create(&s, &SpecContext::default()).is_ok());
    }

    #[test]
    fn credentials_files() {
        let dir = tempfile::tempdir().unwrap();
        let sa = dir.path().join("sa.json");
        std::fs::write(
            &sa,
            r#"{"type": "service_account", "gcs_base_url": "http://127.0.0.1:1", "disable_oauth": true,
                "client_email": "", "private_key": "", "private_key_id": ""}"#,
        )
        .unwrap();
        let s = with_token(sa.to_str().unwrap());
        let (c, url) = credentials_from_spec(&s).unwrap();
        assert_eq!(c, Credentials::ServiceAccountFile(sa.display().to_string()));
        assert_eq!(url.as_deref(), Some("http://127.0.0.1:1"));
        assert!(create(&s, &SpecContext::default()).is_ok());

        let user = dir.path().join("user.json");
        std::fs::write(
            &user,
            r#"{"type": "authorized_user", "client_id": "i", "client_secret": "s", "refresh_token": "r"}"#,
        )
        .unwrap();
        let (c, _) = credentials_from_spec(&with_token(user.to_str().unwrap())).unwrap();
        assert_eq!(
            c,
            Credentials::AuthorizedUserFile(user.display().to_string())
        );

        let ext = dir.path().join("ext.json");
        std::fs::write(&ext, r#"{"type": "external_account"}"#).unwrap();
        let err = credentials_from_spec(&with_token(ext.to_str().unwrap()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stores.g.token") && err.contains("external_account"),
            "{err}"
        );
    }

    #[test]
    fn bad_tokens_name_the_key_not_the_content() {
        let err = credentials_from_spec(&with_token("/no/such/creds.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("stores.g.token"), "{err}");
        let err = credentials_from_spec(&with_token(r#"{"private_key": "SECRETSTUFF""#))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stores.g.token") && !err.contains("SECRETSTUFF"),
            "{err}"
        );
        let s = with_token(r#"{"type": "service_account", "private_key": "SECRETSTUFF"}"#);
        let err = create(&s, &SpecContext::default())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stores.g.token") && !err.contains("SECRETSTUFF"),
            "{err}"
        );
        let err = credentials_from_spec(&with_token("browser"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("stores.g.token"), "{err}");
        assert!(
            !format!("{:?}", Credentials::ServiceAccountKey("SECRETSTUFF".into()))
                .contains("SECRET")
        );
    }

    #[test]
    fn missing_bucket_is_named() {
        let mut s = spec();
        s.options.insert("bucket".into(), "  ".into());
        let err = create(&s, &SpecContext::default())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("stores.g.bucket"), "{err}");
    }

    #[test]
    fn endpoint_scheme() {
        assert_eq!(endpoint_url("fake-gcs:4443", false), "http://fake-gcs:4443");
        assert_eq!(
            endpoint_url("storage.googleapis.com", true),
            DEFAULT_SERVICE_URL
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:1/", true),
            "http://127.0.0.1:1"
        );
    }
}
