//! # Object lifecycle: garbage collection, verification and migration between stores
//!
//! Deleting rows, failed inserts and `update1` leave objects in stores that no row references any
//! more; DataJoint leaves them there by design, for garbage collection. This module holds the
//! three operations that look after a store's objects as a whole:
//!
//! - [`Gc`]: mark-and-sweep garbage collection of one store, over every schema that uses it.
//!   Dry run by default; objects younger than a grace period (24 h by default) are never
//!   deleted; nothing is deleted when any listing or query failed; one collection per store at
//!   a time ([`StoreLock`]).
//! - [`Verify`]: check that every object the rows reference exists and is intact (hashes,
//!   checksums, sizes, folder manifests).
//! - [`Migration`]: move one attribute's objects to another store (hot to cold), verify the
//!   copies, and rewrite the rows' metadata in one transaction.
//!
//! All three read the rows' *stored* values (the JSON metadata, never decoded objects) and
//! classify attributes by their resolved codec chain: an attribute counts when its chain has a
//! store, so codecs of your own that chain into `<hash@>`, `<blob@>`, `<object@>` or `<npy@>` are
//! covered. Each returns a report that implements [`serde::Serialize`], and takes an optional
//! progress hook (a closure called with a [`Progress`]) for progress bars.
//!
//! ```
//! use std::time::Duration;
//! use dj_config::StoreSpec;
//! use dj_schema::lifecycle::{Gc, GcOptions, Verify};
//! use dj_schema::{Connection, Tier, row};
//! # use dj_codec_blob as _; use dj_codec_hash as _; use dj_store_file as _;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir()?;
//! let mut config = dj_config::Config::default();
//! config.database.path = Some(":memory:".into());
//! config.stores.specs.insert("main".into(), StoreSpec::new("main", "file", dir.path().to_string_lossy()));
//! config.stores.default = Some("main".into());
//! let conn = Connection::open(&config).await?;
//! let lab = conn.schema("lab").await?;
//! let scan = lab.declare("Scan", Tier::Manual, "scan_id : int32\n---\nimage : <blob@>").await?;
//! scan.insert1(&row! { "scan_id" => 1, "image" => "first" }).await?;
//! scan.insert1(&row! { "scan_id" => 2, "image" => "second" }).await?;
//! scan.restrict(row! { "scan_id" => 2 }).delete().await?; // its object stays in the store
//!
//! // A dry run (the default) reports without deleting.
//! let report = Gc::new(&conn, "main").run().await?;
//! assert_eq!(report.hash.referenced, 1);
//! assert_eq!(report.hash.skipped_young, 1); // the orphan is younger than the 24 h grace period
//!
//! // Delete orphans of any age (zero grace needs an explicit opt-in).
//! let options = GcOptions::grace(Duration::ZERO).allow_zero_grace(true).dry_run(false);
//! let report = Gc::new(&conn, "main").options(options).run().await?;
//! assert_eq!(report.hash.deleted, 1);
//!
//! // Every referenced object is still there and intact.
//! let verified = Verify::new(&conn).store("main").run().await?;
//! assert_eq!((verified.ok, verified.missing, verified.corrupt), (1, 0, 0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! See `docs/operations.md` for how each operation works and what it guarantees.

mod gc;
pub(crate) mod lock;
mod migrate;
mod scan;
mod staging;
mod verify;

use std::sync::Arc;

use serde::Serialize;

pub use gc::{Gc, GcOptions, GcReport, SectionStats};
pub use lock::StoreLock;
pub use migrate::{Migration, MigrationReport};
pub use staging::IncompleteReport;
pub use verify::{AttributeReport, Problem, Status, Verify, VerifyReport};

/// The phase a long operation is in, for progress reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Reading the catalog: which schemas and tables use stores (`done`/`total` in schemas).
    Discover,
    /// Listing the store (`done` objects listed so far).
    List,
    /// Reading the rows' references (`done`/`total` in tables).
    Mark,
    /// Reading the references again just before deleting (`done`/`total` in tables).
    Remark,
    /// Deleting orphans (`done`/`total` in objects, `bytes` freed).
    Sweep,
    /// Checking referenced objects (`done`/`total` in objects, `bytes` read).
    Check,
    /// Copying objects to the target store (`done`/`total` in objects, `bytes` copied).
    Copy,
    /// Rewriting the rows' metadata (`done`/`total` in rows).
    Rewrite,
}

/// A progress report: the phase and how far it got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Units done so far in this phase (see [`Phase`] for the unit).
    pub done: u64,
    /// The total, when known.
    pub total: Option<u64>,
    /// Bytes moved, read or freed so far in this phase, where that applies.
    pub bytes: u64,
}

/// A progress hook: called, from any task, with every progress report. Keep it quick (update a
/// counter or a progress bar); it must not block.
pub type ProgressHook = Arc<dyn Fn(&Progress) + Send + Sync>;

pub(crate) fn report(hook: &Option<ProgressHook>, p: Progress) {
    if let Some(h) = hook {
        h(&p);
    }
}
