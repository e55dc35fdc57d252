//! # dj-store-s3: the `s3` store protocol
//!
//! AWS S3 and S3-compatible servers (MinIO, Ceph, moto, …) through `object_store`'s S3 client,
//! configured with DataJoint's store keys:
//!
//! | key | meaning |
//! |---|---|
//! | `endpoint` | `host`, `host:port`, or a full `http(s)://` URL |
//! | `secure` | scheme for an endpoint without one: `https` (default) or `http` when false |
//! | `bucket` | the bucket |
//! | `location` | a key prefix inside the bucket (may be empty) |
//! | `access_key`, `secret_key` | static credentials; give both, or neither for the ambient credential chain |
//! | `region` | the region (dj-rs extension; default `AWS_REGION` / `AWS_DEFAULT_REGION` for the ambient chain, else `us-east-1`) |
//! | `proxy_server` | accepted for DataJoint compatibility and ignored, as DataJoint does |
//!
//! Requests use path-style addressing (`endpoint/bucket/key`), which every S3-compatible server
//! accepts, and plain `http` is allowed exactly when the endpoint URL says `http://`.
//! Create-if-absent uses `If-None-Match: *`, so of several racing writers exactly one wins.
//! Multipart uploads send up to four parts at once.
//!
//! **Unfinished uploads.** A process killed during a multipart upload leaves the upload and its
//! parts in the bucket, invisible to listings (and billed). [`Store::list_incomplete`] lists
//! them below a prefix (ListMultipartUploads, then ListParts for each: the parts' total size and
//! the newest part's time), and [`Store::remove_incomplete`] aborts one after listing its parts
//! again. An upload's last sign of life is the later of its start and its newest part, moved up
//! by one second because S3 reports whole seconds; it is compared with this machine's clock.
//! `object_store` has no listing of uploads: the two listing requests are signed by
//! `object_store`'s own signer (SigV4, the store's credential provider) and sent with its HTTP
//! client; the abort is `object_store`'s.
//!
//! **Ambient credentials.** With neither key set, credentials come from, in order: the
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`) environment variables,
//! a web-identity token (`AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN`, as on EKS), ECS
//! container credentials (`AWS_CONTAINER_CREDENTIALS_*`), and the EC2 instance metadata service.
//! Only these credential and region variables are read from the environment; shared
//! `~/.aws/credentials` profiles are not.
//!
//! **Errors.** The crate has no error type of its own: everything is a [`dj_core::Error`]. Bad
//! specs are [`dj_core::Error::Config`] errors naming `stores.<name>.<key>` (secret values never
//! appear). Failed requests name the store, the key, the bucket and the endpoint; a missing bucket
//! says so, and refused connections, timeouts, 5xx answers and throttling are marked retryable
//! (after `object_store`'s own retries with backoff).
//!
//! ```no_run
//! # async fn example() -> dj_core::Result<()> {
//! use dj_core::config::{SpecContext, StoreSpec};
//! use dj_core::store::{StoreExt, StorePath};
//!
//! let spec = StoreSpec::new("archive", "s3", "lab/raw")
//!     .with_option("endpoint", "s3.amazonaws.com")
//!     .with_option("bucket", "my-bucket")
//!     .with_option("access_key", "AKIA...")
//!     .with_option("secret_key", "...");
//! let store = dj_store_s3::create(&spec, &SpecContext::default())?;
//! // Stored as `lab/raw/notes/a.txt` in `my-bucket`.
//! store.put(&StorePath::parse("notes/a.txt")?, "hello".into()).await?;
//! # Ok(()) }
//! ```

mod uploads;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use dj_core::Result;
use dj_core::config::{Secret, SpecContext, StoreSpec};
use dj_core::error::Error;
use dj_core::store::{
    Capabilities, GetOptions, GetResult, IncompleteKind, IncompleteRemoval, IncompleteWrite,
    MultipartUpload, ObjectMeta, PutOptions, PutResult, Store, StorePath,
};
use dj_store_object_store::ObjectStoreAdapter;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{ClientOptions, HttpConnector, ReqwestConnector};

/// The endpoint URL for a spec: the endpoint as given when it has a scheme, otherwise
/// `https://` or `http://` by `secure`.
pub fn endpoint_url(endpoint: &str, secure: bool) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        endpoint.to_string()
    } else if secure {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    }
}

/// The environment variables the ambient credential chain reads (credentials, role, container
/// and instance-metadata settings, region). Everything else (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP`,
/// `AWS_CONDITIONAL_PUT`, …) is ignored so that the store spec alone decides how to connect.
const AMBIENT_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_METADATA_ENDPOINT",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
];

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn yes() -> bool {
    true
}

/// The settings of an `s3` store beyond the common ones (`stores.<name>.*`), as DataJoint 2.x
/// names them. Unknown keys are errors.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct S3Options {
    /// `host`, `host:port` or a full `http(s)://` URL.
    pub endpoint: Option<String>,
    /// The bucket.
    pub bucket: Option<String>,
    /// Access key id; with `secret_key`, or neither for the ambient credential chain.
    #[serde(default)]
    pub access_key: Option<Secret>,
    /// Secret access key.
    #[serde(default)]
    pub secret_key: Option<Secret>,
    /// Scheme for an endpoint without one: `https` when true (the default), `http` otherwise.
    #[serde(default = "yes")]
    pub secure: bool,
    /// The region (a dj-rs extension; DataJoint has none). Default `us-east-1`, or the
    /// environment's.
    #[serde(default)]
    pub region: Option<String>,
    /// DataJoint's `proxy_server`: accepted and ignored.
    #[serde(default)]
    pub proxy_server: Option<serde::de::IgnoredAny>,
}

/// Check an `s3` spec when the configuration is loaded (the check registered for the protocol):
/// its options, the required `endpoint`, `bucket` and `location`, and credentials given both or
/// neither. Errors name `stores.<name>.<key>` and never quote a credential.
pub fn check(spec: &mut StoreSpec, _cx: &SpecContext<'_>) -> Result<()> {
    let options: S3Options = spec.options_as()?;
    spec.require_option("endpoint")?;
    spec.require_option("bucket")?;
    spec.require_location("bucket")?;
    let name = &spec.name;
    // Blank values count as absent.
    let given = |s: &Option<Secret>| non_empty(s.as_ref().map(Secret::expose)).is_some();
    match (given(&options.access_key), given(&options.secret_key)) {
        (true, false) => Err(Error::config(
            spec.key("secret_key"),
            format!(
                "missing: store `{name}` sets `access_key` but not `secret_key`; set both for static credentials, or neither for the ambient credential chain"
            ),
        )),
        (false, true) => Err(Error::config(
            spec.key("access_key"),
            format!(
                "missing: store `{name}` sets `secret_key` but not `access_key`; set both for static credentials, or neither for the ambient credential chain"
            ),
        )),
        _ => Ok(()),
    }
}

/// Build an `s3` store from its spec (the factory registered for the protocol).
///
/// Errors are [`Error::Config`] naming `stores.<name>.<key>`: a missing `endpoint` or `bucket`,
/// one credential without the other, or an endpoint the S3 client cannot use. Nothing is sent
/// over the network here; an unreachable endpoint or a missing bucket shows on the first request.
pub fn create(spec: &StoreSpec, _cx: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
    let name = spec.name.as_str();
    let key = |k: &str| format!("stores.{name}.{k}");
    let options: S3Options = spec.options_as()?;
    let endpoint = non_empty(options.endpoint.as_deref())
        .ok_or_else(|| Error::config(key("endpoint"), "an s3 store needs an endpoint"))?;
    let bucket = non_empty(options.bucket.as_deref())
        .ok_or_else(|| Error::config(key("bucket"), "an s3 store needs a bucket"))?;
    let url = endpoint_url(endpoint, options.secure);
    let access = non_empty(options.access_key.as_ref().map(|s| s.expose()));
    let secret = non_empty(options.secret_key.as_ref().map(|s| s.expose()));
    let mut builder = match (access, secret) {
        (Some(a), Some(s)) => AmazonS3Builder::new()
            .with_access_key_id(a)
            .with_secret_access_key(s),
        (None, None) => {
            let mut b = AmazonS3Builder::new();
            for var in AMBIENT_VARS {
                if let (Ok(value), Ok(config_key)) = (
                    std::env::var(var),
                    var.to_ascii_lowercase().parse::<AmazonS3ConfigKey>(),
                ) {
                    b = b.with_config(config_key, value);
                }
            }
            b
        }
        (Some(_), None) => {
            return Err(Error::config(
                key("secret_key"),
                "access_key is set but secret_key is not; set both or neither",
            ));
        }
        (None, Some(_)) => {
            return Err(Error::config(
                key("access_key"),
                "secret_key is set but access_key is not; set both or neither",
            ));
        }
    };
    if let Some(region) = non_empty(options.region.as_deref()) {
        builder = builder.with_region(region);
    } else if builder
        .get_config_value(&AmazonS3ConfigKey::Region)
        .is_none()
    {
        builder = builder.with_region("us-east-1");
    }
    let builder = builder
        .with_endpoint(&url)
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(false)
        .with_allow_http(url.starts_with("http://"))
        .with_retry(dj_store_object_store::retry_config_for(spec));
    let s3 = builder.build().map_err(|e| {
        Error::config(
            key("endpoint"),
            format!("cannot configure the S3 client for {url}, bucket `{bucket}`: {e}"),
        )
    })?;
    let s3 = Arc::new(s3);
    let http = ReqwestConnector::default()
        .connect(&ClientOptions::new().with_allow_http(url.starts_with("http://")))
        .map_err(|e| {
            Error::config(
                key("endpoint"),
                format!("cannot make an HTTP client for {url}: {e}"),
            )
        })?;
    let prefix = Some(spec.location.trim_matches('/')).filter(|l| !l.is_empty());
    let backend = format!("S3 bucket `{bucket}` at {url}");
    let uploads = uploads::Uploads {
        name: name.to_string(),
        backend: backend.clone(),
        s3: Arc::clone(&s3),
        http,
        location: prefix.map(str::to_string),
    };
    let adapter = ObjectStoreAdapter::new(name, s3 as Arc<dyn ObjectStore>, prefix)
        .map_err(|e| Error::config(key("location"), e))?
        .with_capabilities(
            Capabilities::default()
                .with_create_if_absent(true)
                .with_native_multipart(true)
                .with_ranged_get(true)
                .with_durable_writes(true)
                .with_min_part_size(5 * 1024 * 1024),
        )
        .with_backend_description(backend)
        .with_retry_classifier(dj_store_object_store::classify_http);
    // object_store's HTTP client retries transient failures itself (its `RetryConfig`, set from
    // the spec's `retry` above): no retry layer on top, which would multiply the attempts.
    let store = Arc::new(S3Store {
        inner: adapter,
        uploads,
    });
    Ok(dj_store_layers::standard(
        store,
        dj_store_layers::Retries::Backend,
    ))
}

/// An S3 store: the `object_store` adapter, plus the listing and aborting of unfinished
/// multipart uploads.
#[derive(Clone)]
struct S3Store {
    inner: ObjectStoreAdapter,
    uploads: uploads::Uploads,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

#[async_trait]
impl Store for S3Store {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn put_opts(
        &self,
        path: &StorePath,
        payload: Bytes,
        options: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(path, payload, options).await
    }
    async fn get_opts(&self, path: &StorePath, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(path, options).await
    }
    async fn head(&self, path: &StorePath) -> Result<ObjectMeta> {
        self.inner.head(path).await
    }
    async fn delete(&self, path: &StorePath) -> Result<()> {
        self.inner.delete(path).await
    }
    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn put_multipart(&self, path: &StorePath) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart(path).await
    }
    fn list_incomplete(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, Result<IncompleteWrite>> {
        let uploads = self.uploads.clone();
        let prefix = prefix.cloned();
        futures::stream::once(async move { uploads.list(prefix.as_ref()).await })
            .flat_map(|r| {
                let items: Vec<Result<IncompleteWrite>> = match r {
                    Ok(found) => found.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(items)
            })
            .boxed()
    }
    async fn remove_incomplete(
        &self,
        write: &IncompleteWrite,
        not_after: DateTime<Utc>,
    ) -> Result<IncompleteRemoval> {
        if write.kind != IncompleteKind::MultipartUpload {
            return Err(Error::invalid_path(
                write.to_string(),
                format!(
                    "{} has no such leftover: it aborts only unfinished multipart uploads",
                    self.inner
                ),
            ));
        }
        self.uploads.abort(write, not_after).await
    }
}

dj_core::submit_store_protocol!("s3", create, check = check);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_scheme() {
        assert_eq!(endpoint_url("minio:9000", false), "http://minio:9000");
        assert_eq!(
            endpoint_url("s3.amazonaws.com", true),
            "https://s3.amazonaws.com"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:9000/", true),
            "http://127.0.0.1:9000"
        );
    }
}
