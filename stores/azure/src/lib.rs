//! # dj-store-azure: the `azure` store protocol
//!
//! Azure Blob Storage, and emulators such as Azurite, through `object_store`'s Azure client,
//! configured with DataJoint's store keys:
//!
//! | key | meaning |
//! |---|---|
//! | `container` | the blob container (required) |
//! | `location` | a key prefix inside the container (may be empty) |
//! | `account_name` | the storage account |
//! | `account_key` | the account's shared key (base64) |
//! | `connection_string` | an Azure Storage connection string (see below) |
//! | `endpoint` | the account's blob endpoint URL (dj-rs extension; see below) |
//!
//! **Connection strings.** `AccountName`, `AccountKey`, `BlobEndpoint`, `SharedAccessSignature`,
//! `DefaultEndpointsProtocol`, `EndpointSuffix`, `UseDevelopmentStorage=true` and
//! `DevelopmentStorageProxyUri` are understood (names are case-insensitive); the endpoints of the
//! other services (`QueueEndpoint`, …) are ignored. Explicit `account_name`, `account_key` and
//! `endpoint` win over the connection string.
//!
//! **Endpoints.** Without an endpoint, requests go to `https://<account>.blob.core.windows.net`
//! (or `<protocol>://<account>.blob.<EndpointSuffix>`). An endpoint (`BlobEndpoint`, or the
//! spec's `endpoint` field) is the account URL; for Azurite and other path-style emulators it
//! ends in the account name, e.g. `http://127.0.0.1:10000/devstoreaccount1`. Plain `http` is
//! allowed exactly when the endpoint says `http://` (an endpoint without a scheme gets `https://`,
//! or `http://` when `secure` is false). The connection string's `BlobEndpoint` does the same.
//!
//! **Azurite.** `UseDevelopmentStorage=true` selects the emulator's well-known account
//! (`devstoreaccount1` and its published key) through `object_store`'s emulator mode, which
//! talks to `http://127.0.0.1:10000` (or `AZURITE_BLOB_STORAGE_URL`); with a
//! `DevelopmentStorageProxyUri` or an explicit endpoint the same account is used at that URL.
//!
//! **Ambient credentials.** With neither a key nor a SAS token, credentials come from the
//! environment as `object_store` reads it: a service principal (`AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET`, `AZURE_TENANT_ID`), workload identity (`AZURE_FEDERATED_TOKEN_FILE`),
//! and otherwise the managed-identity endpoint. Only the variables in [`AMBIENT_VARS`] are read.
//!
//! **Errors.** Everything is a [`dj_core::Error`]. Bad specs are [`dj_core::Error::Config`]
//! errors naming `stores.<name>.<key>`; secret values (account keys, SAS tokens, connection
//! strings) never appear. Failed requests name the store, the key, the container and the
//! endpoint; a missing container says so.
//!
//! ```no_run
//! # async fn example() -> dj_core::Result<()> {
//! use dj_core::config::{SpecContext, StoreSpec};
//! use dj_core::store::{StoreExt, StorePath};
//!
//! let spec = StoreSpec::new("archive", "azure", "lab/raw")
//!     .with_option("container", "recordings")
//!     .with_option(
//!         "connection_string",
//!         "DefaultEndpointsProtocol=https;AccountName=mylab;AccountKey=...;EndpointSuffix=core.windows.net",
//!     );
//! let store = dj_store_azure::create(&spec, &SpecContext::default())?;
//! // Stored as `lab/raw/notes/a.txt` in container `recordings`.
//! store.put(&StorePath::parse("notes/a.txt")?, "hello".into()).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use dj_core::Result;
use dj_core::config::{Secret, SpecContext, StoreSpec};
use dj_core::error::Error;
use dj_core::store::{Capabilities, Store};
use dj_store_object_store::ObjectStoreAdapter;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};

mod suffix;

/// The storage account of the Azurite emulator (and of the legacy Azure Storage Emulator).
pub const EMULATOR_ACCOUNT: &str = "devstoreaccount1";

/// The published, well-known shared key of [`EMULATOR_ACCOUNT`]. Not a secret: every Azurite
/// installation uses it.
pub const EMULATOR_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Azurite's default blob endpoint (its default port, path-style with the account name).
pub const EMULATOR_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// The environment variables the ambient credential chain reads. Everything else
/// (`AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_ENDPOINT`, …) is ignored so that the store spec
/// alone decides where to connect and with which key.
pub const AMBIENT_VARS: &[&str] = &[
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_OBJECT_ID",
    "AZURE_MSI_RESOURCE_ID",
    "AZURE_MSI_ENDPOINT",
    "IDENTITY_ENDPOINT",
];

/// An Azure Storage connection string, parsed.
///
/// `Debug` does not show the key or the SAS token.
#[derive(Clone, Default, PartialEq)]
pub struct ConnectionString {
    /// `AccountName`.
    pub account_name: Option<String>,
    /// `AccountKey`.
    pub account_key: Option<Secret>,
    /// `BlobEndpoint`: the account's blob endpoint URL.
    pub blob_endpoint: Option<String>,
    /// `SharedAccessSignature`: a SAS token (query string, with or without a leading `?`).
    pub shared_access_signature: Option<Secret>,
    /// `DefaultEndpointsProtocol`: `https` or `http`.
    pub default_endpoints_protocol: Option<String>,
    /// `EndpointSuffix`, e.g. `core.windows.net`.
    pub endpoint_suffix: Option<String>,
    /// `UseDevelopmentStorage=true`: the local emulator with its well-known account.
    pub use_development_storage: bool,
    /// `DevelopmentStorageProxyUri`: where the emulator runs (default `http://127.0.0.1`).
    pub development_storage_proxy_uri: Option<String>,
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("account_name", &self.account_name)
            .field("account_key", &self.account_key)
            .field("blob_endpoint", &self.blob_endpoint)
            .field("shared_access_signature", &self.shared_access_signature)
            .field(
                "default_endpoints_protocol",
                &self.default_endpoints_protocol,
            )
            .field("endpoint_suffix", &self.endpoint_suffix)
            .field("use_development_storage", &self.use_development_storage)
            .field(
                "development_storage_proxy_uri",
                &self.development_storage_proxy_uri,
            )
            .finish()
    }
}

/// Connection-string settings for the other Azure services, accepted and ignored.
const OTHER_SERVICE_KEYS: &[&str] = &[
    "queueendpoint",
    "tableendpoint",
    "fileendpoint",
    "blobsecondaryendpoint",
    "queuesecondaryendpoint",
    "tablesecondaryendpoint",
    "filesecondaryendpoint",
];

impl ConnectionString {
    /// Parse `Key=Value;Key=Value;…`. Setting names are case-insensitive; a value may contain
    /// `=` (base64 keys do). The error message names the offending setting, never a value.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut cs = ConnectionString::default();
        for (i, part) in text.split(';').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((name, value)) = part.split_once('=') else {
                return Err(format!(
                    "setting {} of the connection string has no `=` (expected `Name=value`)",
                    i + 1
                ));
            };
            let name = name.trim();
            let value = value.trim().to_string();
            match name.to_ascii_lowercase().as_str() {
                "accountname" => cs.account_name = Some(value),
                "accountkey" => cs.account_key = Some(Secret::new(value)),
                "blobendpoint" => cs.blob_endpoint = Some(value),
                "sharedaccesssignature" => cs.shared_access_signature = Some(Secret::new(value)),
                "defaultendpointsprotocol" => {
                    let p = value.to_ascii_lowercase();
                    if p != "https" && p != "http" {
                        return Err(format!(
                            "DefaultEndpointsProtocol must be `https` or `http`, not `{value}`"
                        ));
                    }
                    cs.default_endpoints_protocol = Some(p);
                }
                "endpointsuffix" => cs.endpoint_suffix = Some(value),
                "usedevelopmentstorage" => {
                    cs.use_development_storage = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(format!(
                                "UseDevelopmentStorage must be `true` or `false`, not `{value}`"
                            ));
                        }
                    }
                }
                "developmentstorageproxyuri" => cs.development_storage_proxy_uri = Some(value),
                other if OTHER_SERVICE_KEYS.contains(&other) => {}
                _ => {
                    return Err(format!(
                        "unknown connection string setting `{name}`; known: AccountName, AccountKey, \
                         BlobEndpoint, SharedAccessSignature, DefaultEndpointsProtocol, \
                         EndpointSuffix, UseDevelopmentStorage, DevelopmentStorageProxyUri"
                    ));
                }
            }
        }
        Ok(cs)
    }

    /// The blob endpoint this connection string names, if any: `BlobEndpoint`; else the
    /// emulator's (`DevelopmentStorageProxyUri` on port 10000, or [`EMULATOR_BLOB_ENDPOINT`]);
    /// else one built from `DefaultEndpointsProtocol`, `AccountName` and `EndpointSuffix` when a
    /// suffix is given.
    pub fn resolved_blob_endpoint(&self) -> Option<String> {
        if let Some(e) = &self.blob_endpoint {
            return Some(e.trim_end_matches('/').to_string());
        }
        if self.use_development_storage {
            return Some(match &self.development_storage_proxy_uri {
                Some(proxy) => {
                    let proxy = proxy.trim_end_matches('/');
                    let has_port = proxy
                        .rsplit_once(':')
                        .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()));
                    if has_port {
                        format!("{proxy}/{EMULATOR_ACCOUNT}")
                    } else {
                        format!("{proxy}:10000/{EMULATOR_ACCOUNT}")
                    }
                }
                None => EMULATOR_BLOB_ENDPOINT.to_string(),
            });
        }
        match (&self.account_name, &self.endpoint_suffix) {
            (Some(account), Some(suffix)) => {
                let protocol = self
                    .default_endpoints_protocol
                    .as_deref()
                    .unwrap_or("https");
                Some(format!("{protocol}://{account}.blob.{suffix}"))
            }
            _ => None,
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

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn yes() -> bool {
    true
}

/// The settings of an `azure` store beyond the common ones (`stores.<name>.*`). Unknown keys
/// are errors.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AzureOptions {
    /// The container.
    pub container: Option<String>,
    /// The storage account.
    #[serde(default)]
    pub account_name: Option<String>,
    /// The account's shared key.
    #[serde(default)]
    pub account_key: Option<Secret>,
    /// A connection string (account, key or SAS, endpoints).
    #[serde(default)]
    pub connection_string: Option<Secret>,
    /// The account URL, for Azurite and sovereign clouds (a dj-rs extension).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Scheme for an endpoint without one: `https` when true (the default).
    #[serde(default = "yes")]
    pub secure: bool,
}

/// Check an `azure` spec when the configuration is loaded (the check registered for the
/// protocol): its options and the required `container` and `location`.
pub fn check(spec: &mut StoreSpec, _cx: &SpecContext<'_>) -> Result<()> {
    let _: AzureOptions = spec.options_as()?;
    spec.require_option("container")?;
    spec.require_location("bucket or container")
}

/// Where and as whom an `azure` store connects, resolved from its spec.
///
/// `Debug` does not show the key or the SAS token.
#[derive(Clone, PartialEq)]
pub struct AzureTarget {
    /// The container.
    pub container: String,
    /// The storage account.
    pub account: String,
    /// The account URL, or `None` for the default (`https://<account>.blob.core.windows.net`,
    /// or the emulator's when [`emulator`](Self::emulator) is set).
    pub endpoint: Option<String>,
    /// Use `object_store`'s emulator mode (Azurite at `http://127.0.0.1:10000`).
    pub emulator: bool,
    /// The shared key, if any.
    pub account_key: Option<Secret>,
    /// A SAS token, if any.
    pub sas: Option<Secret>,
}

impl fmt::Debug for AzureTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureTarget")
            .field("container", &self.container)
            .field("account", &self.account)
            .field("endpoint", &self.endpoint)
            .field("emulator", &self.emulator)
            .field("account_key", &self.account_key)
            .field("sas", &self.sas)
            .finish()
    }
}

impl AzureTarget {
    /// Resolve a spec's keys (explicit keys first, then the connection string).
    ///
    /// Errors are [`Error::Config`] naming `stores.<name>.<key>`: a missing `container`, an
    /// unparseable `connection_string`, or no account at all.
    pub fn from_spec(spec: &StoreSpec) -> Result<Self> {
        let name = spec.name.as_str();
        let key = |k: &str| format!("stores.{name}.{k}");
        let options: AzureOptions = spec.options_as()?;
        let container = non_empty(options.container.as_deref())
            .ok_or_else(|| Error::config(key("container"), "an azure store needs a container"))?
            .to_string();
        let cs = match options.connection_string.as_ref().map(|s| s.expose()) {
            Some(text) if !text.trim().is_empty() => ConnectionString::parse(text)
                .map_err(|m| Error::config(key("connection_string"), m))?,
            _ => ConnectionString::default(),
        };
        let dev = cs.use_development_storage;
        let account = non_empty(options.account_name.as_deref())
            .map(str::to_string)
            .or_else(|| cs.account_name.clone().filter(|a| !a.trim().is_empty()))
            .or_else(|| dev.then(|| EMULATOR_ACCOUNT.to_string()))
            .ok_or_else(|| {
                Error::config(
                    key("account_name"),
                    "an azure store needs a storage account: set account_name, or a \
                     connection_string with AccountName (or UseDevelopmentStorage=true)",
                )
            })?;
        let account_key = options
            .account_key
            .clone()
            .filter(|k| !k.expose().trim().is_empty())
            .or_else(|| cs.account_key.clone())
            .or_else(|| {
                (dev && account == EMULATOR_ACCOUNT).then(|| Secret::new(EMULATOR_ACCOUNT_KEY))
            });
        let sas = cs
            .shared_access_signature
            .clone()
            .filter(|s| !s.expose().trim().is_empty());
        let explicit =
            non_empty(options.endpoint.as_deref()).map(|e| endpoint_url(e, options.secure));
        // The emulator's default address: let object_store's emulator mode pick it.
        let emulator = dev
            && explicit.is_none()
            && cs.blob_endpoint.is_none()
            && cs.development_storage_proxy_uri.is_none();
        let endpoint = if emulator {
            None
        } else {
            explicit.or_else(|| cs.resolved_blob_endpoint())
        };
        Ok(AzureTarget {
            container,
            account,
            endpoint,
            emulator,
            account_key,
            sas,
        })
    }

    /// A human-readable name of the target for error messages: container and account URL.
    pub fn describe(&self) -> String {
        let url = match (&self.endpoint, self.emulator) {
            (Some(e), _) => e.clone(),
            (None, true) => EMULATOR_BLOB_ENDPOINT.to_string(),
            (None, false) => format!("https://{}.blob.core.windows.net", self.account),
        };
        format!("Azure container `{}` at {url}", self.container)
    }
}

/// Build an `azure` store from its spec (the factory registered for the protocol).
///
/// Errors are [`Error::Config`] naming `stores.<name>.<key>`: a missing `container`, no account,
/// a malformed `connection_string`, an account key that is not base64, or an endpoint the Azure
/// client cannot use. Nothing is sent over the network here; an unreachable endpoint or a
/// missing container shows on the first request.
pub fn create(spec: &StoreSpec, _cx: &SpecContext<'_>) -> Result<Arc<dyn Store>> {
    let name = spec.name.as_str();
    let key = |k: &str| format!("stores.{name}.{k}");
    let target = AzureTarget::from_spec(spec)?;
    let options: AzureOptions = spec.options_as()?;
    let mut builder = MicrosoftAzureBuilder::new();
    if target.account_key.is_none() && target.sas.is_none() {
        for var in AMBIENT_VARS {
            if let (Ok(value), Ok(config_key)) = (
                std::env::var(var),
                var.to_ascii_lowercase().parse::<AzureConfigKey>(),
            ) {
                builder = builder.with_config(config_key, value);
            }
        }
    }
    builder = builder
        .with_container_name(&target.container)
        .with_account(&target.account)
        .with_retry(dj_store_object_store::retry_config_for(spec));
    if let Some(k) = &target.account_key {
        // Checked here so that the error names the key and not its value.
        let valid = k.expose().trim().len() % 4 == 0
            && k.expose()
                .trim()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
        if !valid {
            let which = if options
                .account_key
                .as_ref()
                .is_some_and(|s| !s.expose().trim().is_empty())
            {
                "account_key"
            } else {
                "connection_string"
            };
            return Err(Error::config(
                key(which),
                "the account key is not valid base64",
            ));
        }
        builder = builder.with_access_key(k.expose().trim());
    }
    if let Some(sas) = &target.sas {
        builder = builder.with_config(
            AzureConfigKey::SasKey,
            sas.expose().trim().trim_start_matches('?'),
        );
    }
    if target.emulator {
        builder = builder.with_use_emulator(true);
    }
    if let Some(endpoint) = &target.endpoint {
        builder = builder
            .with_endpoint(endpoint.clone())
            .with_allow_http(endpoint.starts_with("http://"));
    }
    let endpoint_key = if non_empty(options.endpoint.as_deref()).is_some() {
        "endpoint"
    } else if options.connection_string.is_some() {
        "connection_string"
    } else {
        "account_name"
    };
    let description = target.describe();
    let azure = builder.build().map_err(|e| {
        Error::config(
            key(endpoint_key),
            format!("cannot configure the Azure client for {description}: {e}"),
        )
    })?;
    let prefix = Some(spec.location.trim_matches('/')).filter(|l| !l.is_empty());
    let adapter = ObjectStoreAdapter::new(name, Arc::new(suffix::SuffixRanges(azure)), prefix)
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

dj_core::submit_store_protocol!("azure", create, check = check);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn spec() -> StoreSpec {
        let mut s = StoreSpec::new("az", "azure", "lab");
        s.options.insert("container".into(), "c".into());
        s
    }

    #[test]
    fn parses_a_full_connection_string() {
        let cs = ConnectionString::parse(
            "DefaultEndpointsProtocol=https;AccountName=mylab;AccountKey=a2V5==;\
             EndpointSuffix=core.windows.net;QueueEndpoint=https://q;",
        )
        .unwrap();
        assert_eq!(cs.account_name.as_deref(), Some("mylab"));
        assert_eq!(cs.account_key.as_ref().unwrap().expose(), "a2V5==");
        assert_eq!(
            cs.resolved_blob_endpoint().as_deref(),
            Some("https://mylab.blob.core.windows.net")
        );
        assert!(!format!("{cs:?}").contains("a2V5"), "{cs:?}");
    }

    #[test]
    fn parses_blob_endpoint_and_sas() {
        let cs = ConnectionString::parse(
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;SharedAccessSignature=sv=2021&sig=x%3D",
        )
        .unwrap();
        assert_eq!(
            cs.resolved_blob_endpoint().as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert_eq!(
            cs.shared_access_signature.as_ref().unwrap().expose(),
            "sv=2021&sig=x%3D"
        );
    }

    #[test]
    fn development_storage() {
        let cs = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        assert!(cs.use_development_storage);
        assert_eq!(
            cs.resolved_blob_endpoint().as_deref(),
            Some(EMULATOR_BLOB_ENDPOINT)
        );
        let cs = ConnectionString::parse(
            "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://azurite",
        )
        .unwrap();
        assert_eq!(
            cs.resolved_blob_endpoint().as_deref(),
            Some("http://azurite:10000/devstoreaccount1")
        );

        let mut s = spec();
        s.options.insert(
            "connection_string".into(),
            "UseDevelopmentStorage=true".into(),
        );
        let t = AzureTarget::from_spec(&s).unwrap();
        assert!(t.emulator);
        assert_eq!(t.account, EMULATOR_ACCOUNT);
        assert_eq!(t.account_key.unwrap().expose(), EMULATOR_ACCOUNT_KEY);
        assert!(create(&s, &SpecContext::default()).is_ok());

        // An explicit endpoint moves the emulator account elsewhere.
        s.options.insert(
            "endpoint".into(),
            "http://127.0.0.1:4000/devstoreaccount1".into(),
        );
        let t = AzureTarget::from_spec(&s).unwrap();
        assert!(!t.emulator);
        assert_eq!(
            t.endpoint.as_deref(),
            Some("http://127.0.0.1:4000/devstoreaccount1")
        );
        assert!(create(&s, &SpecContext::default()).is_ok());
    }

    #[test]
    fn bad_connection_strings_name_the_key_not_the_value() {
        for bad in [
            "AccountName=x;AccountKey",
            "AccountName=x;Colour=blue",
            "UseDevelopmentStorage=maybe",
            "DefaultEndpointsProtocol=ftp",
        ] {
            let mut s = spec();
            s.options.insert("connection_string".into(), (bad).into());
            let err = AzureTarget::from_spec(&s).unwrap_err().to_string();
            assert!(err.contains("stores.az.connection_string"), "{bad}: {err}");
        }
        let mut s = spec();
        s.options.insert(
            "connection_string".into(),
            "AccountName=x;AccountKey=SECRET!!notbase64".into(),
        );
        let err = create(&s, &SpecContext::default()).map(|_| ()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("stores.az.connection_string"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn explicit_keys_win_over_the_connection_string() {
        let mut s = spec();
        s.options.insert(
            "connection_string".into(),
            "AccountName=fromcs;AccountKey=Y3M=;BlobEndpoint=https://cs.example".into(),
        );
        s.options.insert("account_name".into(), "explicit".into());
        s.options
            .insert("account_key".into(), "ZXhwbGljaXQ=".into());
        s.options
            .insert("endpoint".into(), "blob.example:8443".into());
        let t = AzureTarget::from_spec(&s).unwrap();
        assert_eq!(t.account, "explicit");
        assert_eq!(t.account_key.as_ref().unwrap().expose(), "ZXhwbGljaXQ=");
        assert_eq!(t.endpoint.as_deref(), Some("https://blob.example:8443"));
        assert!(!format!("{t:?}").contains("ZXhw"), "{t:?}");
    }

    #[test]
    fn missing_keys_are_named() {
        let mut s = spec();
        s.options.shift_remove("container");
        s.options.insert("account_name".into(), "a".into());
        let err = AzureTarget::from_spec(&s).unwrap_err().to_string();
        assert!(err.contains("stores.az.container"), "{err}");
        let err = AzureTarget::from_spec(&spec()).unwrap_err().to_string();
        assert!(err.contains("stores.az.account_name"), "{err}");
        let mut s = spec();
        s.options.insert("account_name".into(), "a".into());
        s.options
            .insert("account_key".into(), "not base64 at all".into());
        let err = create(&s, &SpecContext::default())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("stores.az.account_key"), "{err}");
        assert!(!err.contains("not base64 at all"), "{err}");
    }

    #[test]
    fn endpoint_scheme() {
        assert_eq!(
            endpoint_url("azurite:10000/a", false),
            "http://azurite:10000/a"
        );
        assert_eq!(
            endpoint_url("x.blob.core.windows.net", true),
            "https://x.blob.core.windows.net"
        );
        assert_eq!(
            endpoint_url("http://127.0.0.1:1/a/", true),
            "http://127.0.0.1:1/a"
        );
    }
}
