//! # dj-store-opendal: store protocols through Apache OpenDAL
//!
//! dj-rs's own stores (`file`, `memory`, `s3`) use `object_store`. This crate reaches the
//! services `object_store` lacks (WebDAV and SFTP servers, and through
//! [`OpendalStore::new`] anything else OpenDAL can talk to) by implementing dj-rs's
//! [`Store`](dj_core::store::Store) contract over an [`opendal::Operator`]. It is built against
//! **opendal 0.59**, pinned to that minor because OpenDAL changes its API between minors.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! use dj_core::store::{Store, StoreExt, StorePath};
//! use dj_store_opendal::OpendalStore;
//!
//! // Any operator will do; here OpenDAL's in-memory service.
//! let op = opendal::Operator::new(opendal::services::Memory::default())
//!     .map_err(|e| dj_core::Error::config("example", e))?;
//! let store = OpendalStore::new("scratch", op);
//! let key = StorePath::parse("session 1/notes.txt")?;
//! store.put(&key, "hello".into()).await?;
//! assert_eq!(&store.get(&key).await?[..], b"hello");
//! assert_eq!(&store.get_range(&key, 1..3).await?[..], b"el");
//! assert_eq!(store.list_all(None).await?.len(), 1);
//! store.delete(&key).await?;
//! assert!(store.get(&key).await.unwrap_err().is_not_found());
//! # Ok(()) }
//! ```
//!
//! ## Protocols
//!
//! Each protocol is a cargo feature (none is on by default) and registers with
//! [`dj_core::submit_store_protocol!`], so a `datajoint.json` store spec can name it. Keys are
//! DataJoint's store keys; `location` is the root directory or key prefix in every protocol.
//!
//! | feature | protocol | keys besides `location` | for |
//! |---|---|---|---|
//! | `webdav` | `webdav` | `endpoint` (required), `secure`, `user` + `password`, or `token` | Nextcloud, ownCloud, Apache `mod_dav`, … |
//! | `sftp` | `sftp` | `endpoint` (required, `host[:port]`), `user`, `key` (a private key file), `known_hosts_strategy` (`strict`, `accept`, `add`) | SSH servers; needs the system `ssh` client |
//! | `s3` | `opendal-s3` | as the `s3` protocol: `endpoint`, `bucket` (required), `access_key` + `secret_key` or neither (OpenDAL's credential chain), `secure`, `region`; `proxy_server` is accepted and ignored, as DataJoint does | OpenDAL's S3 client, mainly to test this crate against S3 |
//! | `fs` | `opendal-fs` | none | OpenDAL's local file system service, for tests (use `file` for data) |
//! | `memory` | `opendal-memory` | none | OpenDAL's in-memory service, for tests |
//!
//! The conformance suite (`dj_testkit::run_all`) runs in this crate's tests on the memory
//! and fs services, on S3 (`DJ_TEST_S3_*`) and on a WebDAV server (`DJ_TEST_WEBDAV_ENDPOINT`).
//! SFTP has not been run against a server.
//!
//! The `opendal-` names keep clear of dj-rs's own `memory`, `file` and `s3` protocols.
//! HTTP-based services use OpenDAL's reqwest transport with rustls, installed as the
//! process-wide default on first use unless the application installed its own before.
//!
//! ## Behaviour
//!
//! - **Keys** are relative to the operator's root (the spec's `location`), byte for byte.
//! - **Reads** look up the object's metadata first, then stream the requested range; where the
//!   service supports `If-Match` the read is pinned to the ETag just seen, so bytes and metadata
//!   agree. A key that is only a directory is not an object ([`dj_core::Error::NotFound`]).
//! - **Create-if-absent** uses OpenDAL's conditional write `if_not_exists` where the service
//!   supports it (S3's `If-None-Match: *`, the memory service, SFTP's exclusive open), so of
//!   several racing writers exactly one wins. Otherwise (WebDAV, and the `fs` service, whose
//!   check with a staging directory is an existence test followed by a rename) the put is a
//!   check-then-write: it looks the key up and writes only when it is free. Such puts are
//!   serialized per key **within this process**, so racing writers in one process still see
//!   exactly one winner, but **two processes can both find the key free and both write**; the
//!   later write wins. [`Capabilities::create_if_absent`](dj_core::store::Capabilities) is
//!   `false` for these services so that callers can tell.
//! - **Multipart uploads** use OpenDAL's `Writer` where the service takes an object in several
//!   writes (S3 multipart uploads with up to [`PARTS_IN_FLIGHT`] parts in flight, the `fs`
//!   service's staged file); elsewhere (memory, WebDAV) the parts are collected in memory and
//!   written in one request on completion. SFTP writes in place: a partial object is visible
//!   while an upload runs, and aborting it deletes the object.
//! - **Listings** are recursive and segment-wise (`a/b` never lists `a/bc`); directory entries
//!   are skipped. An object listed without a size or modification time is looked up; a service
//!   that reports no modification time gets the current time, so an object never looks older
//!   than it is.
//!
//! ## Errors
//!
//! The crate has no error enum of its own: everything is a [`dj_core::Error`] naming the store,
//! the operation and the key. A missing object is [`dj_core::Error::NotFound`], a
//! create-if-absent conflict [`dj_core::Error::AlreadyExists`], an operation the service cannot
//! do [`dj_core::Error::NotSupported`], and anything else [`dj_core::Error::Store`], marked
//! retryable when OpenDAL says the error is temporary (`is_temporary()`) or the service
//! throttled the request. Bad store specs are [`dj_core::Error::Config`] errors naming
//! `stores.<name>.<key>`; secret values never appear in them.
//!
//! ## Layers
//!
//! An [`OpendalStore`] opens no spans and does not retry (OpenDAL's own retry layer is not used).
//! The registered protocols return it wrapped by `dj_store_layers::standard`: the tracing layer
//! for all, and the retry layer (`RetryPolicy::default()`) for the remote services `opendal-s3`,
//! `webdav` and `sftp`. A store built by hand with [`OpendalStore::new`] can be wrapped the same
//! way.

mod error;
mod protocols;
mod store;

pub use error::BackendError;
#[cfg(feature = "fs")]
pub use protocols::create_fs;
#[cfg(feature = "memory")]
pub use protocols::create_memory;
#[cfg(feature = "s3")]
pub use protocols::create_s3;
#[cfg(feature = "sftp")]
pub use protocols::create_sftp;
#[cfg(feature = "webdav")]
pub use protocols::create_webdav;
pub use protocols::endpoint_url;
pub use store::{OpendalStore, PARTS_IN_FLIGHT};

/// The directory below a store's root where the `opendal-fs` protocol stages its writes before
/// renaming them into place; hidden from listings and closed to callers' writes.
pub const STAGING_DIR: &str = ".dj-staging";
