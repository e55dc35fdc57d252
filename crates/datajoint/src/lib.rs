//! # datajoint: DataJoint's object-augmented schema in Rust
//!
//! This is the crate applications depend on. It re-exports the core contracts ([`dj_core`]) and
//! links the plugins chosen with cargo features, so that their codecs and store protocols are
//! registered:
//!
//! | feature | what it adds | default |
//! |---|---|---|
//! | `schema` | tables ([`schema`], `dj-schema`) on SQLite | yes |
//! | `postgres` | tables on PostgreSQL | no |
//! | `mysql` | tables on MySQL and MariaDB | no |
//! | `blob` | the `<blob>` codec, DataJoint's blob format | yes |
//! | `hash` | the `<hash@>` codec: content-addressed, deduplicated, verified | yes |
//! | `attach` | the `<attach>` / `<attach@>` codecs | yes |
//! | `object` | the `<object@>` codec: files and folders at readable paths, lazy [`ObjectRef`] | yes |
//! | `filepath` | the `<filepath@>` codec: references to files already in a store | yes |
//! | `npy` | the `<npy@>` codec: `.npy` arrays read lazily through `NpyRef` | yes |
//! | `zarr` | Zarr arrays in `<object@>` folders through `zarrs` (`codecs::object::zarr`) | no |
//! | `file` | the `file` store protocol | yes |
//! | `memory` | the `memory` store protocol | yes |
//! | `s3` | the `s3` store protocol (S3 and S3-compatible) | no |
//! | `opendal` | the `webdav`, `sftp` and `opendal-s3` store protocols through OpenDAL | no |
//!
//! Tables and queries, as DataJoint users write them in Python (`docs/queries.md` has every
//! operator side by side with its Python form):
//!
//! ```
//! # #[cfg(feature = "schema")] {
//! use datajoint::prelude::*;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, Debug, PartialEq)]
//! struct Count { subject_id: i32, n: i64 }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut config = Config::default();
//! config.database.path = Some(":memory:".into()); // SQLite in memory; PostgreSQL and MySQL too
//! let conn = Connection::open(&config).await?;
//! let lab = conn.schema("lab").await?;
//! let subject = lab
//!     .declare("Subject", Tier::Manual, "subject_id : int32\n---\nsex : enum('F', 'M')")
//!     .await?;
//! let session = lab
//!     .declare("Session", Tier::Manual, "-> Subject\nsession : int16\n---\nduration : float64")
//!     .await?;
//! subject.insert(&[row! {"subject_id" => 1, "sex" => "F"}, row! {"subject_id" => 2, "sex" => "M"}]).await?;
//! session.insert(&[
//!     row! {"subject_id" => 1, "session" => 1, "duration" => 12.5},
//!     row! {"subject_id" => 1, "session" => 2, "duration" => 30.0},
//! ]).await?;
//!
//! // (Session * Subject & 'sex="F"').proj(dur='duration')
//! let female = (&session * &subject & "sex = 'F'").proj(["dur <- duration"]);
//! assert_eq!(female.len().await?, 2);
//! // Subject.aggr(Session, n='count(session)')
//! let counts: Vec<Count> = subject.query().aggr(&session, ["count(session) -> n"]).fetch().await?;
//! assert_eq!(counts, [Count { subject_id: 1, n: 2 }, Count { subject_id: 2, n: 0 }]);
//! // Subject - Session: subjects without sessions
//! assert_eq!((&subject - &session).keys().await?.len(), 1);
//! # Ok::<(), datajoint::Error>(())
//! # }).unwrap();
//! # }
//! ```
//!
//! ```
//! // Every plugin this build enables is registered.
//! datajoint::check_registry().unwrap();
//! assert!(datajoint::Registry::global().list_protocols().contains(&"file".to_string()));
//! ```

/// The configuration: loading `datajoint.json` ([`Config::load`](config::Config::load)), the
/// database, job and store settings (`dj-config`, which re-exports dj-core's store types).
pub use dj_config as config;
pub use dj_config::{Config, Secret, StoreSpec};
pub use dj_core;
pub use dj_core::codec::{Codec, CodecContext, ResolvedType, StoredRef};
pub use dj_core::registry::{Registry, StoreSet};
pub use dj_core::store::{Store, StoreExt, StorePath};
pub use dj_core::typespec::{CoreType, TypeSpec};
pub use dj_core::value::{DomainValue, Value};
#[cfg(feature = "schema")]
pub use dj_schema::Backend;
pub mod error;
/// The core contracts' result type, which [`Codec`] and [`Store`] implementations return.
pub use dj_core::Result as CoreResult;
pub use dj_object::ObjectRef;
pub use error::{Error, Result};

/// Tables: definitions, headings, inserts, fetches, restrictions and deletes.
#[cfg(feature = "schema")]
pub use dj_schema as schema;

/// The codecs this build links, one module each (by cargo feature).
pub mod codecs {
    /// The `<attach>` and `<attach@>` codecs.
    #[cfg(feature = "attach")]
    pub use dj_codec_attach as attach;
    /// The `<blob>` codec and the blob format.
    #[cfg(feature = "blob")]
    pub use dj_codec_blob as blob;
    /// The `<filepath@>` codec.
    #[cfg(feature = "filepath")]
    pub use dj_codec_filepath as filepath;
    /// The `<hash@>` codec.
    #[cfg(feature = "hash")]
    pub use dj_codec_hash as hash;
    /// The `<npy@>` codec and `NpyRef`.
    #[cfg(feature = "npy")]
    pub use dj_codec_npy as npy;
    /// The `<object@>` codec (and Zarr, with the `zarr` feature).
    #[cfg(feature = "object")]
    pub use dj_codec_object as object;
}

/// The store protocols this build links, one module each (by cargo feature).
pub mod stores {
    /// The `azure` store.
    #[cfg(feature = "azure")]
    pub use dj_store_azure as azure;
    /// The `file` store.
    #[cfg(feature = "file")]
    pub use dj_store_file as file;
    /// The `gcs` store.
    #[cfg(feature = "gcs")]
    pub use dj_store_gcs as gcs;
    /// Store layers (tracing, retry, prefix), to wrap stores built by hand.
    pub use dj_store_layers as layers;
    /// The `memory` store.
    #[cfg(feature = "memory")]
    pub use dj_store_memory as memory;
    /// The `webdav`, `sftp` and `opendal-s3` stores.
    #[cfg(feature = "opendal")]
    pub use dj_store_opendal as opendal;
    /// The `s3` store.
    #[cfg(feature = "s3")]
    pub use dj_store_s3 as s3;
}

// The paths before `codecs` and `stores` existed, kept for existing code.
#[cfg(feature = "attach")]
#[doc(hidden)]
pub use dj_codec_attach as attach;
#[cfg(feature = "blob")]
#[doc(hidden)]
pub use dj_codec_blob as blob;
#[cfg(feature = "filepath")]
#[doc(hidden)]
pub use dj_codec_filepath as filepath;
#[cfg(feature = "hash")]
#[doc(hidden)]
pub use dj_codec_hash as hash;
#[cfg(feature = "npy")]
#[doc(hidden)]
pub use dj_codec_npy as npy;
#[cfg(feature = "object")]
#[doc(hidden)]
pub use dj_codec_object as object;
#[cfg(feature = "azure")]
#[doc(hidden)]
pub use dj_store_azure as store_azure;
#[cfg(feature = "file")]
#[doc(hidden)]
pub use dj_store_file as store_file;
#[cfg(feature = "gcs")]
#[doc(hidden)]
pub use dj_store_gcs as store_gcs;
#[cfg(feature = "memory")]
#[doc(hidden)]
pub use dj_store_memory as store_memory;
#[cfg(feature = "s3")]
#[doc(hidden)]
pub use dj_store_s3 as store_s3;

/// The codecs this build links, by the features enabled.
pub fn expected_codecs() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "blob") {
        v.push("blob");
    }
    if cfg!(feature = "hash") {
        v.push("hash");
    }
    if cfg!(feature = "attach") {
        v.push("attach");
    }
    if cfg!(feature = "object") {
        v.push("object");
    }
    if cfg!(feature = "filepath") {
        v.push("filepath");
    }
    if cfg!(feature = "npy") {
        v.push("npy");
    }
    v
}

/// The store protocols this build links, by the features enabled.
pub fn expected_protocols() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "file") {
        v.push("file");
    }
    if cfg!(feature = "memory") {
        v.push("memory");
    }
    if cfg!(feature = "s3") {
        v.push("s3");
    }
    if cfg!(feature = "gcs") {
        v.push("gcs");
    }
    if cfg!(feature = "azure") {
        v.push("azure");
    }
    if cfg!(feature = "opendal") {
        v.extend(["webdav", "sftp", "opendal-s3"]);
    }
    v
}

/// Check that every codec and protocol this build should link is registered exactly once.
///
/// `inventory` fails silently when a plugin crate is not linked; this turns that into an error
/// that names what is missing.
pub fn check_registry() -> Result<()> {
    let registry = Registry::global();
    if let Some(e) = registry.conflicts().into_iter().next() {
        return Err(e.into());
    }
    let codecs = registry.list_codecs();
    for name in expected_codecs() {
        if !codecs.iter().any(|c| c == name) {
            return Err(dj_core::Error::UnknownCodec {
                name: name.to_string(),
                known: codecs.join(", "),
            }
            .into());
        }
    }
    let protocols = registry.list_protocols();
    for name in expected_protocols() {
        if !protocols.iter().any(|p| p == name) {
            return Err(dj_core::Error::config(
                "stores.*.protocol",
                format!(
                    "protocol `{name}` should be linked but is not registered; registered: {}",
                    protocols.join(", ")
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// The README's examples, run as doc tests.
#[cfg(all(doctest, feature = "schema"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoc;

/// The names most programs need: `use datajoint::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Codec, CodecContext, Config, Error, ObjectRef, Result, Store, StoreExt, StorePath,
        TypeSpec, Value,
    };
    #[cfg(feature = "schema")]
    pub use dj_schema::populate::{Jobs, Make, MakeContext, MakeResult, MakeTripartite, Populate};
    #[cfg(feature = "schema")]
    pub use dj_schema::{
        Connection, InsertOptions, IntoQuery, Op, Query, Restriction, Row, Schema, Table, Tier,
        Transaction, U, row,
    };
}
