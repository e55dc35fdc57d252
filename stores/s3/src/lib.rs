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
//! | `access_key`, `secret_key` | static credentials; give both, or neither for the ambient chain (environment, profile, instance role) |
//! | `region` | the region (dj-rs extension; default `us-east-1`) |
//!
//! Requests use path-style addressing (`endpoint/bucket/key`), which every S3-compatible server
//! accepts. Errors are `dj_core::Error`, naming the store, endpoint and bucket.
//!
//! ```no_run
//! use dj_core::config::{Config, Secret, StoreSpec};
//!
//! let mut spec = StoreSpec::new("archive", "s3", "lab/raw");
//! spec.endpoint = Some("s3.amazonaws.com".into());
//! spec.bucket = Some("my-bucket".into());
//! spec.access_key = Some(Secret::new("AKIA..."));
//! spec.secret_key = Some(Secret::new("..."));
//! let store = dj_store_s3::create(&spec, &Config::default()).unwrap();
//! ```

use std::sync::Arc;

use dj_core::Result;
use dj_core::config::{Config, StoreSpec};
use dj_core::error::Error;
use dj_core::object_store_adapter::ObjectStoreAdapter;
use dj_core::store::{Capabilities, Store};
use object_store::aws::AmazonS3Builder;

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

/// Build an `s3` store from its spec (the factory registered for the protocol).
pub fn create(spec: &StoreSpec, _config: &Config) -> Result<Arc<dyn Store>> {
    let name = spec.name.as_str();
    let key = |k: &str| format!("stores.{name}.{k}");
    let endpoint = spec
        .endpoint
        .as_deref()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| Error::config(key("endpoint"), "an s3 store needs an endpoint"))?;
    let bucket = spec
        .bucket
        .as_deref()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::config(key("bucket"), "an s3 store needs a bucket"))?;
    let url = endpoint_url(endpoint, spec.secure);
    let mut builder = AmazonS3Builder::new()
        .with_endpoint(&url)
        .with_bucket_name(bucket)
        .with_region(spec.region.as_deref().unwrap_or("us-east-1"))
        .with_virtual_hosted_style_request(false)
        .with_allow_http(url.starts_with("http://"));
    let access = spec
        .access_key
        .as_ref()
        .map(|s| s.expose())
        .filter(|s| !s.is_empty());
    let secret = spec
        .secret_key
        .as_ref()
        .map(|s| s.expose())
        .filter(|s| !s.is_empty());
    match (access, secret) {
        (Some(a), Some(s)) => {
            builder = builder.with_access_key_id(a).with_secret_access_key(s);
        }
        (None, None) => {
            // The ambient credential chain: environment variables, then instance metadata.
            builder = AmazonS3Builder::from_env()
                .with_endpoint(&url)
                .with_bucket_name(bucket)
                .with_region(spec.region.as_deref().unwrap_or("us-east-1"))
                .with_virtual_hosted_style_request(false)
                .with_allow_http(url.starts_with("http://"));
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
    }
    let s3 = builder.build().map_err(|e| {
        Error::config(
            key("endpoint"),
            format!("cannot configure S3 client for {url}, bucket `{bucket}`: {e}"),
        )
    })?;
    let prefix = Some(spec.location.as_str()).filter(|l| !l.trim_matches('/').is_empty());
    let adapter =
        ObjectStoreAdapter::new(name, Arc::new(s3), prefix)?.with_capabilities(Capabilities {
            min_part_size: 5 * 1024 * 1024,
            ..Capabilities::default()
        });
    Ok(Arc::new(adapter))
}

dj_core::submit_store_protocol!(
    "s3",
    create,
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
