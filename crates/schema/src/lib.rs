//! # dj-schema: DataJoint tables on SQLite, PostgreSQL and MySQL/MariaDB
//!
//! The relational half of dj-rs's object-augmented schema. Tables are declared in DataJoint's
//! definition language, their attributes typed with core types and codecs, and stored in the
//! same catalog layout DataJoint Python 2.3.5 uses, so each side opens the other's tables:
//! `:type:` column-comment markers, PostgreSQL enum types, foreign keys with
//! `ON UPDATE CASCADE ON DELETE RESTRICT`, and the `~lineage` rows. Values pass through their
//! codec chains on insert and fetch; rows are ordered maps ([`Row`]) or serde structs.
//!
//! ```
//! use dj_schema::{Connection, Tier, row, Restriction, Op};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Subject { subject_id: i32, name: String }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut config = dj_config::Config::default();
//! config.database.path = Some(":memory:".into()); // SQLite, in memory
//! let conn = Connection::open(&config).await?;
//! let lab = conn.schema("lab").await?;
//! let subject = lab
//!     .declare("Subject", Tier::Manual, "subject_id : int32\n---\nname : varchar(64)")
//!     .await?;
//! subject.insert1(&Subject { subject_id: 1, name: "Ann".into() }).await?;
//! subject.insert1(&row! { "subject_id" => 2, "name" => "Bob" }).await?;
//! let bob: Subject = subject.restrict(Restriction::cond("name", Op::Eq, "Bob")).fetch1().await?;
//! assert_eq!(bob.subject_id, 2);
//! assert_eq!(subject.len().await?, 2);
//! # Ok::<(), dj_schema::Error>(())
//! # }).unwrap();
//! ```
//!
//! See `docs/tables.md` for the definition language, tiers, foreign keys, restrictions and
//! the backends, `docs/fetch-forms.md` for fetching into structs, plain Rust types
//! (`Vec<f64>`, `ndarray`), Arrow and Polars (features `arrow`, `polars`), and [`lifecycle`]
//! (`docs/operations.md`) for garbage collection, verification and migration of stored objects.

#[cfg(feature = "arrow")]
pub mod arrow;
mod catalog;
mod coerce;
mod db;
mod ddl;
pub mod definition;
mod delete;
pub mod diagram;
mod dialect;
pub mod error;
#[cfg(any(feature = "arrow", feature = "polars"))]
mod frame;
pub mod graph;
pub mod heading;
pub mod lifecycle;
pub mod naming;
#[cfg(feature = "polars")]
pub mod polars;
pub mod populate;
pub mod query;
pub mod restrict;
mod schema;
pub mod serde_row;
mod sqltype;
pub mod staged;
mod table;
pub mod transaction;

pub use db::Connection;
pub use dialect::Backend;
pub use error::{Error, Result};
pub use heading::{Attribute, ForeignKey, Heading, Index};
pub use lifecycle::{Gc, GcOptions, GcReport, Migration, MigrationReport, Verify, VerifyReport};
pub use naming::Tier;
pub use query::{IntoQuery, Preview, Query, QueryAttribute, QueryHeading, RowStream, U};
pub use restrict::{Op, Restriction};
pub use schema::Schema;
pub use staged::StagedInsert;
pub use table::{InsertOptions, Table};
pub use transaction::Transaction;

/// A row: attribute name to value, in heading order when fetched.
pub type Row = indexmap::IndexMap<String, dj_core::value::Value>;

/// The examples of `docs/fetch-forms.md`, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/fetch-forms.md")]
pub struct FetchFormsDoc;

/// The examples of `docs/queries.md`, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/queries.md")]
pub struct QueriesDoc;

#[doc(hidden)]
pub mod __private {
    pub use dj_core::value::Value;
}

/// Build a [`Row`]: `row! { "subject_id" => 1, "name" => "Ann" }`.
#[macro_export]
macro_rules! row {
    () => { $crate::Row::new() };
    ($($k:expr => $v:expr),+ $(,)?) => {{
        let mut r = $crate::Row::new();
        $( r.insert(::std::string::String::from($k), $crate::__private::Value::from($v)); )+
        r
    }};
}
