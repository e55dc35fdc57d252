//! # dj-core: the contracts of dj-rs
//!
//! dj-rs implements DataJoint's *object-augmented schema* in Rust: relational tables whose
//! attributes are stored through pluggable **codecs**, small values in the database and large ones
//! in **object stores**. This crate holds the pieces every other crate agrees on:
//!
//! - [`typespec`]: attribute types (`int32`, `varchar(64)`, `<blob@cold>`);
//! - [`value`]: the values that flow through codec chains;
//! - [`codec`]: the [`Codec`](codec::Codec) trait and chain resolution;
//! - [`store`]: the [`Store`](store::Store) trait, keys and the [`StoreExt`](store::StoreExt)
//!   conveniences;
//! - [`registry`]: link-time (`inventory`) and run-time registration of codecs and protocols;
//! - [`config`]: the configuration codecs and stores read (stores, their layout settings and
//!   protocol options, the codecs' own settings);
//! - [`StoreSet`](registry::StoreSet): the stores of one connection, opened on first use;
//! - [`reuse`]: the rule that lets writers reuse stored objects while garbage collection runs;
//! - [`object`]: the metadata and manifest formats of path-addressed objects.
//!
//! The machinery lives in crates of its own: `dj-config` (loading `datajoint.json`, environment
//! overrides and secrets; the database and job settings), `dj-layout` (every store path and the
//! content hashes), `dj-object` (`ObjectRef`, readers, writers, transfers), `dj-store-object-store` (the
//! `object_store` adapter the file, s3, gcs and azure stores build on) and `dj-testkit` (the
//! store conformance suite).
//!
//! Most users depend on the `datajoint` facade instead, which re-exports this crate.
//!
//! ```
//! use dj_core::typespec::TypeSpec;
//! use dj_core::store::StorePath;
//!
//! let spec: TypeSpec = "<blob@>".parse()?;
//! assert!(spec.is_codec());
//! let key = StorePath::parse("_hash/lab/mhmckyclcrjf5zaexdm2zxjwiu")?;
//! assert_eq!(key.file_name(), "mhmckyclcrjf5zaexdm2zxjwiu");
//! # Ok::<(), dj_core::Error>(())
//! ```

pub mod codec;
pub mod config;
pub mod error;
pub mod object;
// Huge-page advice: used by `store` here; other crates reach it as `dj_rt::pages`.
#[doc(hidden)]
pub mod pages;
pub mod registry;
pub mod reuse;
pub mod store;
mod storeset;
pub mod typespec;
pub mod value;

#[doc(hidden)]
pub use inventory;

pub use config::Config;
pub use error::{Error, Result};
