//! Transactions for users: several inserts, updates and deletes, across tables, that commit or
//! roll back together.
//!
//! ```
//! use dj_schema::{Connection, Tier, row};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut config = dj_config::Config::default();
//! config.database.path = Some(":memory:".into());
//! let conn = Connection::open(&config).await?;
//! let lab = conn.schema("lab").await?;
//! let subject = lab.declare("Subject", Tier::Manual, "subject_id : int32\n---\nname : varchar(32)").await?;
//! let session = lab.declare("Session", Tier::Manual, "-> Subject\nsession : int16\n---\nnote = '' : varchar(64)").await?;
//!
//! // Both inserts commit together...
//! conn.transaction(async |tx| {
//!     tx.insert1(&subject, &row! { "subject_id" => 1, "name" => "Ann" }).await?;
//!     tx.insert1(&session, &row! { "subject_id" => 1, "session" => 1 }).await?;
//!     Ok(())
//! })
//! .await?;
//! assert_eq!(session.len().await?, 1);
//!
//! // ...and a failure rolls every statement of the transaction back.
//! let failed = conn
//!     .transaction(async |tx| {
//!         tx.insert1(&subject, &row! { "subject_id" => 2, "name" => "Bob" }).await?;
//!         tx.insert1(&session, &row! { "subject_id" => 3, "session" => 1 }).await // no subject 3
//!     })
//!     .await;
//! assert!(failed.is_err());
//! assert_eq!(subject.len().await?, 1);
//! # Ok::<(), dj_schema::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Objects first, and the commit budget
//!
//! As for a single insert, codecs write their objects to the stores while the transaction is
//! open but before any row that references them commits, so a rollback (or a crash) leaves at
//! most unreferenced objects, which garbage collection removes. Garbage collection keeps every
//! object younger than its grace period (at least [`MIN_GC_GRACE`]), and writers may reuse an
//! existing object as it is only while it is younger than [`REFRESH_AFTER`]
//! (`dj_core::reuse`). A transaction therefore has [`COMMIT_BUDGET`] (one hour) from its first
//! write through a codec to its commit: past that, an object it wrote or reused might already be
//! collected, and the commit is refused and rolled back instead of committing a row whose
//! object could be gone. The same budget bounds a single large insert.

use std::any::Any;
use std::borrow::Cow;
use std::time::{Duration, Instant};

use dj_core::reuse::{MIN_GC_GRACE, REFRESH_AFTER};
use futures::lock::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Row;
use crate::db::{Connection, Tx};
use crate::error::{Error, Result};
use crate::query::{IntoQuery, Query};
use crate::serde_row::{from_row, to_row_cow};
use crate::table::{InsertOptions, Table};

/// How long after its first write through a codec a transaction may still commit:
/// [`MIN_GC_GRACE`] minus [`REFRESH_AFTER`].
pub const COMMIT_BUDGET: Duration = MIN_GC_GRACE.saturating_sub(REFRESH_AFTER);

/// Refuse to commit what started writing objects more than [`COMMIT_BUDGET`] ago.
pub(crate) fn check_commit_budget(started: Instant, what: &str) -> Result<()> {
    within_budget(started.elapsed(), what)
}

fn within_budget(elapsed: Duration, what: &str) -> Result<()> {
    if elapsed > COMMIT_BUDGET {
        return Err(Error::Refused {
            table: what.to_string(),
            message: format!(
                "rolled back: the objects written for these rows are {} s old, longer than the {} s \
                 in which garbage collection is guaranteed to keep them; commit smaller batches",
                elapsed.as_secs(),
                COMMIT_BUDGET.as_secs()
            ),
        });
    }
    Ok(())
}

/// An open transaction of a [`Connection`], from [`Connection::transaction`] or
/// [`Connection::begin`]. Inserts, updates and deletes made through it commit together with
/// [`commit`](Self::commit); dropped without a commit, it rolls back.
///
/// Its methods take `&self` and run one at a time (they share one database connection), so the
/// transaction can be passed to several helpers or futures.
pub struct Transaction {
    conn: Connection,
    state: Mutex<State>,
}

struct State {
    tx: Tx,
    /// When the first statement that may have written objects began encoding.
    objects_since: Option<Instant>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("backend", &self.conn.backend())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Open a transaction. Commit it with [`Transaction::commit`]; dropping it rolls back.
    ///
    /// On an in-memory SQLite database (one connection), nothing else can use the connection
    /// until the transaction ends: make every statement through the transaction.
    pub async fn begin(&self) -> Result<Transaction> {
        let tx = self.begin_tx().await?;
        Ok(Transaction {
            conn: self.clone(),
            state: Mutex::new(State {
                tx,
                objects_since: None,
            }),
        })
    }

    /// Open a transaction on `pc`, a connection already taken from this connection's pool.
    pub(crate) async fn begin_on(&self, pc: crate::db::PConn) -> Result<Transaction> {
        let tx = pc.begin().await?;
        Ok(Transaction {
            conn: self.clone(),
            state: Mutex::new(State {
                tx,
                objects_since: None,
            }),
        })
    }

    /// Run `f` in one transaction: when it returns `Ok` everything it did through the
    /// [`Transaction`] commits, when it returns an error (or panics, or its future is dropped)
    /// all of it rolls back and the error is returned.
    pub async fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: AsyncFnOnce(&Transaction) -> Result<T>,
    {
        let tx = self.begin().await?;
        let out = f(&tx).await?;
        tx.commit().await?;
        Ok(out)
    }
}

impl Transaction {
    /// The connection this transaction runs on.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Insert one row into `table` (a [`Row`] or any `Serialize` struct or map).
    pub async fn insert1<R: Serialize + Any>(&self, table: &Table, row: &R) -> Result<()> {
        self.insert_with(table, std::slice::from_ref(row), InsertOptions::default())
            .await
            .map(|_| ())
    }

    /// Insert rows into `table`.
    pub async fn insert<R: Serialize + Any>(&self, table: &Table, rows: &[R]) -> Result<u64> {
        self.insert_with(table, rows, InsertOptions::default())
            .await
    }

    /// Insert rows into `table` with options. Objects are written to the stores before the
    /// rows are sent.
    pub async fn insert_with<R: Serialize + Any>(
        &self,
        table: &Table,
        rows: &[R],
        opts: InsertOptions,
    ) -> Result<u64> {
        self.same_connection(table)?;
        let full = table.full_name();
        let rows = rows
            .iter()
            .map(to_row_cow)
            .collect::<Result<Vec<Cow<'_, crate::Row>>>>()
            .map_err(|e| e.in_table(&full))?;
        if table.writes_objects() {
            self.note_objects().await;
        }
        let statements = table.prepare_insert(rows, opts).await?;
        let mut state = self.state.lock().await;
        table.run_insert(&mut state.tx, &statements).await
    }

    /// Update the non-key attributes of the one row of `table` identified by the key in `row`.
    pub async fn update1<R: Serialize + Any>(&self, table: &Table, row: &R) -> Result<()> {
        self.same_connection(table)?;
        if table.writes_objects() {
            self.note_objects().await;
        }
        let update = table.prepare_update1(row).await?;
        let mut state = self.state.lock().await;
        table.run_update1(&mut state.tx, &update).await
    }

    /// Delete the rows of `query` and, first, every row that depends on them (as
    /// [`Query::delete`]). Returns the number of rows deleted from the query's table.
    pub async fn delete(&self, query: &Query) -> Result<u64> {
        self.same_query_connection(query)?;
        let mut state = self.state.lock().await;
        query.delete_in(&mut state.tx).await
    }

    /// The rows of `query` as this transaction sees them (its own uncommitted inserts and
    /// deletes included), decoded through their codecs.
    pub async fn fetch_rows(&self, query: impl IntoQuery) -> Result<Vec<Row>> {
        let query = query.into_query();
        self.same_query_connection(&query)?;
        let mut state = self.state.lock().await;
        query.fetch_rows_in(&mut state.tx.exec()).await
    }

    /// The rows of `query` as `T` (a [`Row`] or any `Deserialize` struct), read inside this
    /// transaction.
    pub async fn fetch<T: DeserializeOwned + Any>(&self, query: impl IntoQuery) -> Result<Vec<T>> {
        let query = query.into_query();
        let label = query.label();
        self.fetch_rows(query)
            .await?
            .into_iter()
            .map(|r| from_row(r).map_err(|e| e.in_table(&label)))
            .collect()
    }

    /// The one row of `query`, read inside this transaction; an error when there are none or
    /// several.
    pub async fn fetch1<T: DeserializeOwned + Any>(&self, query: impl IntoQuery) -> Result<T> {
        let query = query.into_query();
        let label = query.label();
        let mut rows = self.fetch_rows(query).await?;
        if rows.len() != 1 {
            return Err(Error::NotOneRow {
                table: label,
                found: rows.len(),
            });
        }
        let row = rows.pop().unwrap_or_default();
        from_row(row).map_err(|e| e.in_table(&label))
    }

    /// The primary keys of the rows of `query`, read inside this transaction.
    pub async fn keys(&self, query: impl IntoQuery) -> Result<Vec<Row>> {
        let query = query.into_query();
        self.same_query_connection(&query)?;
        let mut state = self.state.lock().await;
        query.keys_in(&mut state.tx.exec()).await
    }

    /// The number of rows of `query`, counted inside this transaction.
    pub async fn len(&self, query: impl IntoQuery) -> Result<u64> {
        let query = query.into_query();
        self.same_query_connection(&query)?;
        let mut state = self.state.lock().await;
        query.len_in(&mut state.tx.exec()).await
    }

    /// Commit everything done through this transaction.
    ///
    /// Refused (and rolled back) when objects were written through it more than
    /// [`COMMIT_BUDGET`] ago: see the [module docs](self).
    pub async fn commit(self) -> Result<()> {
        let state = self.state.into_inner();
        if let Some(since) = state.objects_since {
            check_commit_budget(since, "transaction")?;
        }
        state.tx.commit().await
    }

    /// Roll back everything done through this transaction (as dropping it does, but waiting
    /// for the database to confirm).
    pub async fn rollback(self) -> Result<()> {
        self.state.into_inner().tx.rollback().await
    }

    fn same_connection(&self, table: &Table) -> Result<()> {
        if table.connection().same_as(&self.conn) {
            Ok(())
        } else {
            Err(Error::Refused {
                table: table.full_name(),
                message: "this table belongs to another connection than the transaction".into(),
            })
        }
    }

    /// Run one statement inside the transaction; the number of rows it affected.
    pub(crate) async fn execute(&self, sql: &crate::db::Sql, table: &str) -> Result<u64> {
        let mut state = self.state.lock().await;
        state
            .tx
            .exec()
            .execute(sql)
            .await
            .map_err(|e| crate::error::classify_db(table, e))
    }

    fn same_query_connection(&self, query: &Query) -> Result<()> {
        if query.connection().same_as(&self.conn) {
            Ok(())
        } else {
            Err(Error::Refused {
                table: query.label(),
                message: "this query belongs to another connection than the transaction".into(),
            })
        }
    }

    async fn note_objects(&self) {
        let mut state = self.state.lock().await;
        state.objects_since.get_or_insert_with(Instant::now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_the_gap_between_gc_grace_and_reuse() {
        assert_eq!(COMMIT_BUDGET, Duration::from_secs(3600));
        assert!(within_budget(Duration::from_secs(10), "t").is_ok());
        assert!(within_budget(COMMIT_BUDGET, "t").is_ok());
        let err = within_budget(COMMIT_BUDGET + Duration::from_secs(1), "lab.trace")
            .expect_err("past the budget");
        let msg = err.to_string();
        assert!(
            msg.contains("lab.trace") && msg.contains("rolled back"),
            "{msg}"
        );
    }
}
