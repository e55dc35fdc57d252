//! Computation: `make`, `key_source` and `populate` for Computed and Imported tables.
//!
//! A Computed or Imported table is filled by a [`Make`] implementation: `populate` computes
//! the keys still to do, `(key_source & restrictions) - target`, and calls `make` once per key,
//! each in its own transaction, so the table's row and its part rows commit together (objects
//! written to stores first, as for any insert) or not at all.
//!
//! ```
//! use dj_schema::{Connection, Row, Tier, row};
//! use dj_schema::populate::{Make, MakeContext, MakeResult, Populate};
//!
//! struct Squares;
//!
//! impl Make for Squares {
//!     async fn make(&self, key: &Row, cx: &MakeContext<'_>) -> MakeResult<()> {
//!         let x: i64 = cx.fetch1::<Row>(cx.table_named("Number").await?.restrict(key)).await?["x"]
//!             .as_i64()
//!             .unwrap_or_default();
//!         let mut out = key.clone();
//!         out.insert("square".into(), (x * x).into());
//!         cx.insert1(cx.target(), &out).await?;
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut config = dj_config::Config::default();
//! config.database.path = Some(":memory:".into());
//! let conn = Connection::open(&config).await?;
//! let lab = conn.schema("lab").await?;
//! let number = lab.declare("Number", Tier::Manual, "n : int32\n---\nx : int64").await?;
//! let square = lab.declare("Square", Tier::Computed, "-> Number\n---\nsquare : int64").await?;
//! number.insert(&[row! {"n" => 1, "x" => 3}, row! {"n" => 2, "x" => 4}]).await?;
//! let report = Populate::new(&square, &Squares).run().await?;
//! assert_eq!(report.success_count, 2);
//! assert_eq!(square.len().await?, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! For long computations DataJoint 2.x offers a three-part `make` ([`MakeTripartite`]): fetch
//! the inputs, compute outside any transaction, then insert in a short transaction that fetches
//! the inputs again and aborts the key when they changed in between.
//!
//! See `docs/populate.md`.

mod jobs;
#[cfg(feature = "progress-bar")]
mod progress_bar;
/// Without the `progress-bar` feature, no bar (and no `Populate::progress_bar`).
#[cfg(not(feature = "progress-bar"))]
mod progress_bar {
    pub(crate) struct Bar;

    impl Bar {
        pub(crate) fn start(_class: &str, _total: usize) -> Bar {
            Bar
        }
        pub(crate) fn update(&self, _done: usize, _ok: bool, _failed: bool) {}
        pub(crate) fn finish(self, _report: &super::PopulateReport, _stopped_by_error: bool) {}
    }
}
mod version;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::StreamExt;
use rand::seq::SliceRandom;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::Row;
use crate::db::Connection;
use crate::error::{Error, Result};
use crate::naming::{Tier, master_of};
use crate::query::{IntoQuery, Query};
use crate::restrict::Restriction;
use crate::table::{InsertOptions, Table};
use crate::transaction::Transaction;

pub use jobs::{
    ERROR_MESSAGE_LENGTH, JobStatus, Jobs, RefreshOptions, RefreshReport, TRUNCATION_APPENDIX,
    truncate_error_message,
};
pub use version::{VERSION_LENGTH, job_version};

/// The error a `make` returns: any error (a [`dj_schema::Error`](crate::Error) converts with `?`).
pub type MakeError = Box<dyn std::error::Error + Send + Sync>;

/// The result of a `make` step.
pub type MakeResult<T> = std::result::Result<T, MakeError>;

/// The computation of one key of a Computed or Imported table (DataJoint's `make`).
///
/// `make` reads what it needs through the [`MakeContext`] and inserts the table's row (and its
/// part rows) through it; everything it inserts commits together when it returns `Ok`, and
/// nothing does when it returns an error.
pub trait Make: Send + Sync {
    /// Compute and insert the row(s) for `key` (a primary key of the key source).
    fn make(&self, key: &Row, cx: &MakeContext<'_>) -> impl Future<Output = MakeResult<()>> + Send;
}

/// DataJoint 2.x's three-part `make`, for computations too long to hold a transaction open.
///
/// `populate` calls [`make_fetch`](Self::make_fetch) outside any transaction,
/// [`make_compute`](Self::make_compute) on its result (no database access), then opens a
/// transaction, calls `make_fetch` again inside it and, only when it returns the same
/// [`Fetched`](Self::Fetched) value, [`make_insert`](Self::make_insert). When the inputs
/// changed in between, the key is aborted (an error "the `make_fetch` data has changed") and
/// nothing is inserted.
pub trait MakeTripartite: Send + Sync {
    /// What `make_fetch` reads: compared between the two fetches.
    type Fetched: PartialEq + Send + Sync;
    /// What `make_compute` produces.
    type Computed: Send + Sync;

    /// Read the inputs for `key` (through `cx`; its inserts are refused).
    fn make_fetch(
        &self,
        key: &Row,
        cx: &MakeContext<'_>,
    ) -> impl Future<Output = MakeResult<Self::Fetched>> + Send;

    /// Compute the result from the inputs, outside any transaction.
    fn make_compute(
        &self,
        key: &Row,
        fetched: &Self::Fetched,
    ) -> impl Future<Output = MakeResult<Self::Computed>> + Send;

    /// Insert the result through `cx`, inside the job's transaction.
    fn make_insert(
        &self,
        key: &Row,
        fetched: Self::Fetched,
        computed: Self::Computed,
        cx: &MakeContext<'_>,
    ) -> impl Future<Output = MakeResult<()>> + Send;
}

/// What a `make` sees: the table being populated, reads of any query and, inside the job's
/// transaction, inserts into the table and its parts.
///
/// Reads go through the job's transaction when there is one (they see its own inserts, and an
/// in-memory SQLite database, which has one connection, does not wait for itself).
pub struct MakeContext<'a> {
    target: &'a Table,
    tx: Option<&'a Transaction>,
    args: &'a serde_json::Value,
    tables: &'a HashMap<String, Table>,
}

impl std::fmt::Debug for MakeContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeContext")
            .field("target", &self.target.full_name())
            .field("in_transaction", &self.tx.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a> MakeContext<'a> {
    /// The table being populated.
    pub fn target(&self) -> &'a Table {
        self.target
    }

    /// The connection.
    pub fn connection(&self) -> &'a Connection {
        self.target.connection()
    }

    /// The make arguments given to [`Populate::make_args`] (`null` when none; DataJoint's
    /// `make_kwargs`).
    pub fn args(&self) -> &'a serde_json::Value {
        self.args
    }

    /// Whether this context runs inside the job's transaction (inserts allowed).
    pub fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// A table of the target's schema by class name (`Session`, `Session.Trial`), from the
    /// headings loaded when the run started (no catalog query inside the job's transaction).
    pub async fn table_named(&self, class: &str) -> Result<Table> {
        let find = |class: &str| -> Result<Option<&Table>> {
            let base = crate::naming::snake_case(class)?;
            Ok(["", "#", "_", "__"]
                .iter()
                .find_map(|p| self.tables.get(&format!("{p}{base}"))))
        };
        let found = match class.split_once('.') {
            None => find(class)?.cloned(),
            Some((master, part)) => match find(master)? {
                Some(m) => self
                    .tables
                    .get(&crate::naming::part_name(m.name(), part)?)
                    .cloned(),
                None => None,
            },
        };
        match found {
            Some(t) => Ok(t),
            None => {
                let schema = self
                    .connection()
                    .existing_schema(self.target.schema_name())
                    .await?;
                schema.table_by_class(class).await
            }
        }
    }

    /// A part table of the target by its part name (`Trial` for `Session.Trial`).
    pub async fn part(&self, name: &str) -> Result<Table> {
        let part = crate::naming::part_name(self.target.name(), name)?;
        if let Some(t) = self.tables.get(&part) {
            return Ok(t.clone());
        }
        let schema = self
            .connection()
            .existing_schema(self.target.schema_name())
            .await?;
        schema.table(&part).await
    }

    /// The rows of `query`, decoded.
    pub async fn fetch_rows(&self, query: impl IntoQuery) -> Result<Vec<Row>> {
        match self.tx {
            Some(tx) => tx.fetch_rows(query).await,
            None => query.into_query().fetch_rows().await,
        }
    }

    /// The rows of `query` as `T` (a [`Row`] or a `Deserialize` struct).
    pub async fn fetch<T: DeserializeOwned + std::any::Any>(
        &self,
        query: impl IntoQuery,
    ) -> Result<Vec<T>> {
        match self.tx {
            Some(tx) => tx.fetch(query).await,
            None => query.into_query().fetch().await,
        }
    }

    /// The one row of `query` as `T`.
    pub async fn fetch1<T: DeserializeOwned + std::any::Any>(
        &self,
        query: impl IntoQuery,
    ) -> Result<T> {
        match self.tx {
            Some(tx) => tx.fetch1(query).await,
            None => query.into_query().fetch1().await,
        }
    }

    /// The number of rows of `query`.
    pub async fn len(&self, query: impl IntoQuery) -> Result<u64> {
        match self.tx {
            Some(tx) => tx.len(query).await,
            None => query.into_query().len().await,
        }
    }

    /// Insert one row into the target or one of its part tables.
    pub async fn insert1<R: Serialize + std::any::Any>(
        &self,
        table: &Table,
        row: &R,
    ) -> Result<()> {
        self.insert(table, std::slice::from_ref(row))
            .await
            .map(|_| ())
    }

    /// Insert rows into the target or one of its part tables, in the job's transaction.
    pub async fn insert<R: Serialize + std::any::Any>(
        &self,
        table: &Table,
        rows: &[R],
    ) -> Result<u64> {
        let tx = self.tx.ok_or_else(|| Error::Refused {
            table: table.full_name(),
            message: "inserts belong in make (or make_insert), inside the job's transaction; make_fetch only reads".into(),
        })?;
        let own = table.schema_name() == self.target.schema_name()
            && (table.name() == self.target.name()
                || master_of(table.name()) == Some(self.target.name()));
        if !own {
            return Err(Error::Refused {
                table: table.full_name(),
                message: format!(
                    "make for `{}` inserts only into that table and its parts",
                    self.target.full_name()
                ),
            });
        }
        tx.insert_with(
            table,
            rows,
            InsertOptions {
                allow_direct_insert: true,
                ..InsertOptions::default()
            },
        )
        .await
    }

    /// The job's transaction, when inside it (for updates or deletes `make` needs).
    pub fn transaction(&self) -> Option<&'a Transaction> {
        self.tx
    }
}

/// The order in which `populate` takes the keys to do (DataJoint's `order`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Key-source order (by primary key).
    #[default]
    Original,
    /// Reverse key order.
    Reverse,
    /// Random order (workers without a job table then rarely collide).
    Random,
}

/// One key whose `make` failed.
#[derive(Clone, Debug)]
pub struct KeyError {
    /// The key.
    pub key: Row,
    /// The error message.
    pub message: String,
}

/// What a `populate` run did.
#[derive(Clone, Debug, Default)]
pub struct PopulateReport {
    /// Keys made and committed.
    pub success_count: usize,
    /// Keys whose make failed (only with `suppress_errors`; otherwise the first error is
    /// returned).
    pub errors: Vec<KeyError>,
    /// Keys skipped because another worker made them in the meantime, or (with the job table)
    /// reserved them first.
    pub skipped: usize,
}

/// Progress of a populate run, for [`Populate::on_progress`].
#[derive(Clone, Debug)]
pub struct Progress {
    /// Keys finished (made, failed or skipped) so far.
    pub done: usize,
    /// Keys this run set out to do.
    pub total: usize,
    /// The key just finished.
    pub key: Row,
    /// Whether it was made successfully.
    pub ok: bool,
}

type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// The two forms of `make` a populate run drives (implemented for [`Make`] through
/// [`Populate::new`] and for [`MakeTripartite`] through [`Populate::tripartite`]).
#[doc(hidden)]
pub trait Runner: Send + Sync {
    /// Run one key: open the transaction(s), call make, commit.
    fn run_key(
        &self,
        target: &Table,
        key: &Row,
        args: &serde_json::Value,
        tables: &HashMap<String, Table>,
        finish: &Finish<'_>,
    ) -> impl Future<Output = std::result::Result<Outcome, MakeError>> + Send;
}

/// What running one key came to.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Made and committed.
    Made,
    /// The key was already in the target (made elsewhere): nothing done.
    AlreadyDone,
}

#[doc(hidden)]
pub struct OneStep<'m, M>(&'m M);

#[doc(hidden)]
pub struct ThreeStep<'m, M>(&'m M);

/// What runs in the make's transaction just before it commits: the job-metadata columns and
/// the job's completion.
#[doc(hidden)]
pub struct Finish<'a> {
    jobs: Option<&'a Jobs>,
    started: Instant,
    start_time: chrono::NaiveDateTime,
    version: &'a tokio::sync::OnceCell<String>,
    /// The pooled connection the job was reserved on: the make's transaction opens on it.
    reserved_on: std::sync::Mutex<Option<crate::db::PConn>>,
}

impl Finish<'_> {
    /// Open the make's transaction, on the connection of the reservation when there is one
    /// (one trip to the pool per job instead of two).
    async fn begin(&self, target: &Table) -> Result<Transaction> {
        let pc = self.take_reserved();
        match pc {
            Some(pc) => target.connection().begin_on(pc).await,
            None => target.connection().begin().await,
        }
    }

    /// Give the reservation's connection back to the pool (before work outside a transaction).
    fn release(&self) {
        drop(self.take_reserved());
    }

    fn take_reserved(&self) -> Option<crate::db::PConn> {
        self.reserved_on
            .lock()
            .map_or_else(|mut e| e.get_mut().take(), |mut g| g.take())
    }

    async fn before_commit(&self, tx: &Transaction, target: &Table, key: &Row) -> Result<()> {
        let duration = self.started.elapsed();
        if jobs::has_job_metadata(target) {
            let method = target.connection().config().jobs.version_method;
            let version = self
                .version
                .get_or_init(|| version::job_version_async(method))
                .await;
            jobs::update_job_metadata(tx, target, key, self.start_time, duration, version).await?;
        }
        if let Some(jobs) = self.jobs {
            jobs.complete_in(tx, key, duration).await?;
        }
        Ok(())
    }
}

/// Inside `tx`: whether `key` is in the target already (another worker made it).
async fn already_done(tx: &Transaction, target: &Table, key: &Row) -> Result<bool> {
    Ok(tx.len(target.restrict(key.clone())).await? > 0)
}

impl<M: Make> Runner for OneStep<'_, M> {
    async fn run_key(
        &self,
        target: &Table,
        key: &Row,
        args: &serde_json::Value,
        tables: &HashMap<String, Table>,
        finish: &Finish<'_>,
    ) -> std::result::Result<Outcome, MakeError> {
        let tx = finish.begin(target).await?;
        if already_done(&tx, target, key).await? {
            tx.rollback().await?;
            return Ok(Outcome::AlreadyDone);
        }
        let cx = MakeContext {
            target,
            tx: Some(&tx),
            args,
            tables,
        };
        self.0.make(key, &cx).await?;
        finish.before_commit(&tx, target, key).await?;
        tx.commit().await?;
        Ok(Outcome::Made)
    }
}

impl<M: MakeTripartite> Runner for ThreeStep<'_, M> {
    async fn run_key(
        &self,
        target: &Table,
        key: &Row,
        args: &serde_json::Value,
        tables: &HashMap<String, Table>,
        finish: &Finish<'_>,
    ) -> std::result::Result<Outcome, MakeError> {
        // The pool serves make_fetch and make_compute may be long: hold no connection meanwhile.
        finish.release();
        let outside = MakeContext {
            target,
            tx: None,
            args,
            tables,
        };
        if target.restrict(key.clone()).exists().await? {
            return Ok(Outcome::AlreadyDone);
        }
        let fetched = self.0.make_fetch(key, &outside).await?;
        let computed = self.0.make_compute(key, &fetched).await?;
        let tx = finish.begin(target).await?;
        if already_done(&tx, target, key).await? {
            tx.rollback().await?;
            return Ok(Outcome::AlreadyDone);
        }
        let cx = MakeContext {
            target,
            tx: Some(&tx),
            args,
            tables,
        };
        let again = self.0.make_fetch(key, &cx).await?;
        if again != fetched {
            return Err(Box::new(Error::Refused {
                table: target.full_name(),
                message: "referential integrity failed: the `make_fetch` data has changed since it was fetched for make_compute; nothing was inserted".into(),
            }));
        }
        self.0.make_insert(key, fetched, computed, &cx).await?;
        finish.before_commit(&tx, target, key).await?;
        tx.commit().await?;
        Ok(Outcome::Made)
    }
}

/// The default key source of a Computed or Imported table: the join of its primary-key
/// parents' primary keys, each renamed as its foreign key renames it
/// (`-> Parent.proj(new='old')`), as DataJoint's `key_source`.
pub async fn default_key_source(target: &Table) -> Result<Query> {
    let h = target.heading();
    let mut out: Option<Query> = None;
    for fk in &h.foreign_keys {
        let primary = fk
            .attr_map
            .iter()
            .all(|(c, _)| h.attribute(c).is_some_and(|a| a.in_key));
        if !primary {
            continue;
        }
        let schema = target
            .connection()
            .existing_schema(&fk.parent_schema)
            .await?;
        let parent = schema.table(&fk.parent_table).await?;
        let items: Vec<String> = fk
            .attr_map
            .iter()
            .filter(|(c, p)| c != p)
            .map(|(c, p)| format!("{c} <- {p}"))
            .collect();
        let q = parent.query().proj(items);
        out = Some(match out {
            None => q,
            Some(acc) => acc.join(q),
        });
    }
    out.ok_or_else(|| Error::Refused {
        table: target.full_name(),
        message: "a table must have dependencies from its primary key for auto-populate to work"
            .into(),
    })
}

/// `(remaining, total)` for `target` with its default key source: keys not yet in the table,
/// and all keys (DataJoint's `T.progress()`). Needs no `make`, so a monitor (`dj jobs --watch`)
/// can follow a table that workers elsewhere populate. With an overridden key source or
/// restrictions, use [`Populate::progress`].
pub async fn progress(target: &Table) -> Result<(u64, u64)> {
    check_tier(target)?;
    let ks = default_key_source(target).await?.proj(Vec::<String>::new());
    let total = ks.len().await?;
    let remaining = ks.exclude(target.query()).len().await?;
    Ok((remaining, total))
}

/// A populate run: its options, then [`run`](Self::run) (DataJoint's `populate`).
///
/// ```text
/// Populate::new(&table, &maker)
///     .restrict(row! {"subject_id" => 1})   // populate(restrictions)
///     .suppress_errors(true)                 // suppress_errors=True
///     .max_calls(10)                         // max_calls=10
///     .order(Order::Random)                  // order="random"
///     .concurrency(4)                        // several make futures at once
///     .reserve_jobs(true)                    // through the job table ~~table
///     .run().await?
/// ```
pub struct Populate<'a, R> {
    target: &'a Table,
    runner: R,
    key_source: Option<Query>,
    restrictions: Vec<Restriction>,
    suppress_errors: bool,
    max_calls: Option<usize>,
    order: Order,
    concurrency: usize,
    args: serde_json::Value,
    reserve_jobs: bool,
    refresh: Option<bool>,
    priority: Option<i64>,
    on_progress: Vec<ProgressFn>,
    /// Draw a progress bar (feature `progress-bar`).
    bar: bool,
    /// The code version (`jobs.version_method`), computed on first use in the run.
    version: tokio::sync::OnceCell<String>,
}

impl<'a, 'm, M: Make> Populate<'a, OneStep<'m, M>> {
    /// Populate `target` with a one-step [`Make`].
    pub fn new(target: &'a Table, maker: &'m M) -> Self {
        Populate::with_runner(target, OneStep(maker))
    }
}

impl<'a, 'm, M: MakeTripartite> Populate<'a, ThreeStep<'m, M>> {
    /// Populate `target` with a three-part [`MakeTripartite`].
    pub fn tripartite(target: &'a Table, maker: &'m M) -> Self {
        Populate::with_runner(target, ThreeStep(maker))
    }
}

impl<'a, R: Runner> Populate<'a, R> {
    fn with_runner(target: &'a Table, runner: R) -> Self {
        Populate {
            target,
            runner,
            key_source: None,
            restrictions: Vec::new(),
            suppress_errors: false,
            max_calls: None,
            order: Order::Original,
            concurrency: 1,
            args: serde_json::Value::Null,
            reserve_jobs: false,
            refresh: None,
            priority: None,
            on_progress: Vec::new(),
            bar: false,
            version: tokio::sync::OnceCell::new(),
        }
    }

    /// Use `query` as the key source instead of the default join of the primary-key parents
    /// (DataJoint's overridden `key_source`). Its primary key must be attributes of the target.
    pub fn key_source(mut self, query: impl IntoQuery) -> Self {
        self.key_source = Some(query.into_query());
        self
    }

    /// Restrict the key source (DataJoint's `populate(*restrictions)`; several calls AND).
    pub fn restrict(mut self, r: impl Into<Restriction>) -> Self {
        self.restrictions.push(r.into());
        self
    }

    /// Collect the keys whose make fails and go on, instead of stopping at the first.
    pub fn suppress_errors(mut self, yes: bool) -> Self {
        self.suppress_errors = yes;
        self
    }

    /// Make at most `n` keys.
    pub fn max_calls(mut self, n: usize) -> Self {
        self.max_calls = Some(n);
        self
    }

    /// The order in which keys are taken.
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Run up to `n` makes at once in this process (each in its own transaction on its own
    /// pooled connection). SQLite runs one at a time whatever `n` (one writer).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Arguments every make sees as [`MakeContext::args`] (DataJoint's `make_kwargs`).
    pub fn make_args(mut self, args: serde_json::Value) -> Self {
        self.args = args;
        self
    }

    /// Work through the table's job queue `~~table` (DataJoint's `reserve_jobs=True`), so
    /// that workers in other processes, Rust or Python, share the keys.
    pub fn reserve_jobs(mut self, yes: bool) -> Self {
        self.reserve_jobs = yes;
        self
    }

    /// With `reserve_jobs`: whether to refresh the queue first (default: `jobs.auto_refresh`
    /// of the configuration, `true` unless set).
    pub fn refresh(mut self, yes: bool) -> Self {
        self.refresh = Some(yes);
        self
    }

    /// With `reserve_jobs`: the priority of keys the refresh adds (lower runs first).
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Call `f` after every key (an opt-in progress report; each call adds one more).
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_progress.push(Arc::new(f));
        self
    }

    /// Draw a progress bar on standard error while the run goes (DataJoint's
    /// `display_progress=True`): keys finished of the keys this run set out to do, how many
    /// were made and failed, elapsed time and an estimate of the rest. Nothing is drawn when
    /// standard error is not a terminal. Feature `progress-bar`.
    #[cfg(feature = "progress-bar")]
    pub fn progress_bar(mut self, yes: bool) -> Self {
        self.bar = yes;
        self
    }

    /// The key source, checked against the target.
    async fn checked_key_source(&self) -> Result<Query> {
        check_tier(self.target)?;
        let ks = match &self.key_source {
            Some(q) => q.clone(),
            None => default_key_source(self.target).await?,
        };
        let pk = ks.primary_key()?;
        if let Some(missing) = pk
            .iter()
            .find(|n| self.target.heading().attribute(n).is_none())
        {
            return Err(Error::Refused {
                table: self.target.full_name(),
                message: format!(
                    "the populate target lacks attribute `{missing}` from the primary key of key_source"
                ),
            });
        }
        Ok(ks)
    }

    /// The keys still to do: `(key_source & restrictions) - target`, projected on the key.
    pub async fn todo(&self) -> Result<Query> {
        let ks = self.checked_key_source().await?;
        let restricted = if self.restrictions.is_empty() {
            ks
        } else {
            ks.restrict(Restriction::And(self.restrictions.clone()))
        };
        Ok(restricted
            .proj(Vec::<String>::new())
            .exclude(self.target.query()))
    }

    /// `(remaining, total)`: keys of the restricted key source not yet in the target, and all
    /// of them (DataJoint's `progress()`).
    pub async fn progress(&self) -> Result<(u64, u64)> {
        let ks = self.checked_key_source().await?;
        let restricted = if self.restrictions.is_empty() {
            ks
        } else {
            ks.restrict(Restriction::And(self.restrictions.clone()))
        };
        let total = restricted.proj(Vec::<String>::new()).len().await?;
        let remaining = self.todo().await?.len().await?;
        Ok((remaining, total))
    }

    /// Run: make every key still to do (or, with `reserve_jobs`, every key this worker
    /// reserves from the job queue).
    pub async fn run(&self) -> Result<PopulateReport> {
        if self.reserve_jobs {
            return self.run_distributed().await;
        }
        let todo = self.todo().await?;
        let mut keys = todo.top(None, ["KEY"], 0).keys().await?;
        match self.order {
            Order::Original => {}
            Order::Reverse => keys.reverse(),
            Order::Random => keys.shuffle(&mut rand::rng()),
        }
        if let Some(n) = self.max_calls {
            keys.truncate(n);
        }
        self.run_keys(keys, None).await
    }

    fn concurrency_for_backend(&self) -> usize {
        if crate::dialect::dialect(self.target.connection().backend()).concurrent_writers() {
            self.concurrency
        } else {
            1
        }
    }

    /// Make `keys`; with `jobs`, reserve each first and record its outcome.
    async fn run_keys(&self, keys: Vec<Row>, jobs: Option<&Jobs>) -> Result<PopulateReport> {
        let total = keys.len();
        let mut report = PopulateReport::default();
        let tables = schema_tables(self.target).await?;
        let tables = &tables;
        let full = self.target.full_name();
        // After a failure without `suppress_errors`, keys not yet started are left alone and
        // the makes under way finish (their jobs are completed or marked, never left reserved).
        let stop = AtomicBool::new(false);
        let stop = &stop;
        let bar = self.bar.then(|| {
            progress_bar::Bar::start(&crate::naming::class_name(self.target.name()), total)
        });
        let mut results = futures::stream::iter(keys)
            .map(|key| {
                let span = tracing::info_span!(
                    "make",
                    table = %full,
                    key = %key_text(&key),
                    outcome = tracing::field::Empty,
                    elapsed_ms = tracing::field::Empty,
                );
                let recorder = span.clone();
                async move {
                    if stop.load(Ordering::SeqCst) {
                        recorder.record("outcome", "not_started");
                        return (key, Ok(None));
                    }
                    let started = Instant::now();
                    let r = self.one_key(&key, jobs, tables).await;
                    recorder.record("elapsed_ms", started.elapsed().as_millis() as u64);
                    recorder.record(
                        "outcome",
                        match &r {
                            Ok(Some(Outcome::Made)) => "made",
                            Ok(Some(Outcome::AlreadyDone)) => "already_done",
                            Ok(None) => "reserved_elsewhere",
                            Err(_) => "error",
                        },
                    );
                    (key, r)
                }
                .instrument(span)
            })
            .buffer_unordered(self.concurrency_for_backend());
        let mut done = 0;
        let mut first_error = None;
        while let Some((key, r)) = results.next().await {
            done += 1;
            let ok = matches!(r, Ok(Some(Outcome::Made)));
            let failed = r.is_err();
            match r {
                Ok(Some(Outcome::Made)) => report.success_count += 1,
                Ok(Some(Outcome::AlreadyDone) | None) => report.skipped += 1,
                Err(e) => {
                    if !self.suppress_errors {
                        stop.store(true, Ordering::SeqCst);
                        first_error.get_or_insert(e);
                        continue;
                    }
                    report.errors.push(KeyError {
                        key: key.clone(),
                        message: e.to_string(),
                    });
                }
            }
            if let Some(bar) = &bar {
                bar.update(done, ok, failed);
            }
            if !self.on_progress.is_empty() {
                let p = Progress {
                    done,
                    total,
                    key,
                    ok,
                };
                for f in &self.on_progress {
                    f(&p);
                }
            }
        }
        if let Some(bar) = bar {
            bar.finish(&report, first_error.is_some());
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// One key: `None` when the job table would not reserve it.
    async fn one_key(
        &self,
        key: &Row,
        jobs: Option<&Jobs>,
        tables: &HashMap<String, Table>,
    ) -> Result<Option<Outcome>> {
        let mut reserved_on = None;
        if let Some(jobs) = jobs {
            let mut pc = self.target.connection().acquire().await?;
            if !jobs.reserve_on(&mut pc, key).await? {
                return Ok(None);
            }
            reserved_on = Some(pc);
        }
        let finish = Finish {
            jobs,
            started: Instant::now(),
            // Local time, as DataJoint's `datetime.fromtimestamp`.
            start_time: chrono::Local::now().naive_local(),
            version: &self.version,
            reserved_on: std::sync::Mutex::new(reserved_on),
        };
        let r = self
            .runner
            .run_key(self.target, key, &self.args, tables, &finish)
            .await;
        let duration = finish.started.elapsed();
        match r {
            Ok(outcome) => {
                tracing::debug!(elapsed_ms = duration.as_millis() as u64, "make done");
                // A key made by someone else: its job is done too.
                if outcome == Outcome::AlreadyDone
                    && let Some(jobs) = jobs
                {
                    jobs.complete(key, duration).await?;
                }
                Ok(Some(outcome))
            }
            Err(e) => {
                tracing::warn!(error = %e, "make failed");
                let message = e.to_string();
                let stack = format!("{e:?}");
                if let Some(jobs) = jobs {
                    jobs.error(key, &message, &stack).await?;
                }
                Err(Error::Make {
                    table: self.target.full_name(),
                    key: key_text(key),
                    source: e,
                })
            }
        }
    }

    async fn run_distributed(&self) -> Result<PopulateReport> {
        let ks = self.checked_key_source().await?;
        let jobs = Jobs::new(self.target).await?;
        let refresh = self
            .refresh
            .unwrap_or(self.target.connection().config().jobs.auto_refresh);
        if refresh {
            // A second in the past, as DataJoint: schedulable at once by the server's clock.
            jobs.refresh_with(RefreshOptions {
                key_source: Some(ks.clone()),
                restrictions: self.restrictions.clone(),
                delay: -1.0,
                priority: self.priority,
                ..RefreshOptions::default()
            })
            .await?;
        }
        let todo = if self.restrictions.is_empty() {
            None
        } else {
            Some(self.todo().await?)
        };
        let mut keys = jobs
            .pending_keys(todo.as_ref(), self.priority, self.max_calls)
            .await?;
        match self.order {
            Order::Original => {}
            Order::Reverse => keys.reverse(),
            Order::Random => keys.shuffle(&mut rand::rng()),
        }
        self.run_keys(keys, Some(&jobs)).await
    }
}

/// The tables of the target's schema by SQL name, loaded once per run.
async fn schema_tables(target: &Table) -> Result<HashMap<String, Table>> {
    let schema = target
        .connection()
        .existing_schema(target.schema_name())
        .await?;
    let mut out = HashMap::new();
    for name in schema.list_tables().await? {
        let t = schema.table(&name).await?;
        out.insert(name, t);
    }
    out.insert(target.name().to_string(), target.clone());
    Ok(out)
}

fn check_tier(target: &Table) -> Result<()> {
    match target.tier() {
        Some(Tier::Computed | Tier::Imported) => Ok(()),
        other => Err(Error::Refused {
            table: target.full_name(),
            message: format!(
                "only Computed and Imported tables are populated by make (this one is {})",
                other.map_or_else(|| "of no tier".to_string(), |t| format!("{t:?}"))
            ),
        }),
    }
}

/// A key as `{attr: value, ...}` for messages.
pub(crate) fn key_text(key: &Row) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|(k, v)| format!("{k}: {}", value_text(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn value_text(v: &dj_core::value::Value) -> String {
    use dj_core::value::Value;
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Decimal(d) => d.clone(),
        Value::String(s) => format!("{s:?}"),
        Value::Uuid(u) => u.to_string(),
        Value::Date(d) => d.to_string(),
        Value::DateTime(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}
