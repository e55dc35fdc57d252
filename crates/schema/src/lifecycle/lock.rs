//! [`StoreLock`]: one garbage collection at a time per store, through the database.

// Builds without every backend leave some backend's helpers unused.
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]

use crate::Backend;
use dj_core::value::Value;

use crate::db::{Connection, Exec, PConn, Param, Sql, quote};
use crate::dialect::dialect;
use crate::error::{Error, Result};
use crate::heading::ColKind;

/// The SQLite table that holds one row per locked store.
const SQLITE_LOCKS: &str = "~dj_gc_lock";

/// MySQL lock names are at most 64 characters.
const MYSQL_LOCK_NAME_MAX: usize = 64;

/// An exclusive, database-wide lock on garbage collection of one store.
///
/// [`Gc`](super::Gc) takes it for every run that deletes; take it yourself to keep collection
/// out while you do something to a store by hand. How it is held:
///
/// - **PostgreSQL**: a session advisory lock, `pg_try_advisory_lock(key)`, with a 64-bit key
///   derived from `dj_gc:<store>` (FNV-1a), on a connection taken out of the pool for the
///   lock's life;
/// - **MySQL/MariaDB**: `GET_LOCK('dj_gc:<store>', 0)` on such a connection (names longer than
///   64 characters are shortened with a hash);
/// - **SQLite**: a row in the table `~dj_gc_lock`, inserted only when absent and deleted on
///   release.
///
/// On the servers the lock dies with its connection, so a crashed process never leaves it held.
/// On SQLite a crash leaves the row behind; [`StoreLock::force_release`] removes it.
///
/// Release it with [`StoreLock::release`]. Dropped without that, the server locks are freed by
/// closing their connection, and the SQLite row is deleted by a background task when a Tokio
/// runtime is available.
#[derive(Debug)]
pub struct StoreLock {
    store: String,
    inner: Option<Held>,
}

#[derive(Debug)]
enum Held {
    #[cfg(feature = "sqlite")]
    Sqlite { conn: Connection, token: String },
    #[cfg(feature = "postgres")]
    Postgres { conn: sqlx::PgConnection, key: i64 },
    #[cfg(feature = "mysql")]
    MySql {
        conn: sqlx::MySqlConnection,
        name: String,
    },
}

/// FNV-1a, 64 bits: a stable key for an advisory lock.
fn fnv1a(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The PostgreSQL advisory-lock key of a store.
pub(crate) fn pg_key(store: &str) -> i64 {
    i64::from_ne_bytes(fnv1a(&format!("dj_gc:{store}")).to_ne_bytes())
}

/// The MySQL lock name of a store.
pub(crate) fn mysql_name(store: &str) -> String {
    let name = format!("dj_gc:{store}");
    if name.len() <= MYSQL_LOCK_NAME_MAX {
        name
    } else {
        format!("dj_gc:{:016x}", fnv1a(&name))
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
fn no_session_locks(store: &str) -> Error {
    Error::Gc {
        store: store.to_string(),
        message: "this backend's dialect has no session locks".into(),
    }
}

fn first_int(rows: &[Vec<Value>]) -> Option<i64> {
    match rows.first().and_then(|r| r.first()) {
        Some(Value::Bool(b)) => Some(i64::from(*b)),
        Some(v) => v.as_i64(),
        None => None,
    }
}

impl StoreLock {
    /// Take the lock of `store`, or fail at once with [`Error::GcLocked`] naming the store when
    /// someone else holds it.
    pub async fn acquire(conn: &Connection, store: &str) -> Result<StoreLock> {
        let held = match conn.acquire().await? {
            #[cfg(feature = "sqlite")]
            mut pc @ PConn::Sqlite(_) => {
                let token = uuid::Uuid::new_v4().simple().to_string();
                let mut ex = pc.exec();
                ex.raw(&format!(
                    "CREATE TABLE IF NOT EXISTS {} (store_name TEXT PRIMARY KEY NOT NULL, \
                     token TEXT NOT NULL, acquired_at TEXT NOT NULL, holder TEXT NOT NULL)",
                    quote(Backend::Sqlite, SQLITE_LOCKS)
                ))
                .await?;
                let mut sql = Sql::new(Backend::Sqlite);
                sql.push("INSERT INTO ")
                    .ident(SQLITE_LOCKS)
                    .push(" (store_name, token, acquired_at, holder) VALUES (")
                    .bind(Some(Param::Text(store.to_string())), None)
                    .push(", ")
                    .bind(Some(Param::Text(token.clone())), None)
                    .push(", ")
                    .bind(Some(Param::Text(chrono::Utc::now().to_rfc3339())), None)
                    .push(", ")
                    .bind(Some(Param::Text(holder())), None)
                    .push(") ON CONFLICT DO NOTHING");
                if ex.execute(&sql).await? != 1 {
                    let mut who = Sql::new(Backend::Sqlite);
                    who.push("SELECT acquired_at, holder FROM ")
                        .ident(SQLITE_LOCKS)
                        .push(" WHERE store_name = ")
                        .bind(Some(Param::Text(store.to_string())), None);
                    let rows = ex.fetch(&who, &[ColKind::Text, ColKind::Text]).await?;
                    let (since, by) = rows
                        .first()
                        .map(|r| {
                            let s = |i: usize| r.get(i).and_then(Value::as_str).unwrap_or("?");
                            (s(0).to_string(), s(1).to_string())
                        })
                        .unwrap_or_default();
                    return Err(Error::GcLocked {
                        store: store.to_string(),
                        detail: format!(
                            "the lock row in `{SQLITE_LOCKS}` was taken at {since} by {by}; if no \
                             collection is running (a crashed one left it), remove it with \
                             StoreLock::force_release"
                        ),
                    });
                }
                Held::Sqlite {
                    conn: conn.clone(),
                    token,
                }
            }
            #[cfg(feature = "postgres")]
            PConn::Postgres(c) => {
                let mut c = c.detach();
                let key = pg_key(store);
                let sql = dialect(Backend::Postgres)
                    .try_session_lock_sql(store)
                    .ok_or_else(|| no_session_locks(store))?;
                let rows = Exec::from(&mut c).fetch(&sql, &[ColKind::Bool]).await?;
                if first_int(&rows) != Some(1) {
                    return Err(Error::GcLocked {
                        store: store.to_string(),
                        detail: format!(
                            "another session holds the PostgreSQL advisory lock {key} (see pg_locks)"
                        ),
                    });
                }
                Held::Postgres { conn: c, key }
            }
            #[cfg(feature = "mysql")]
            PConn::MySql(c) => {
                let mut c = c.detach();
                let name = mysql_name(store);
                let sql = dialect(Backend::MySql)
                    .try_session_lock_sql(store)
                    .ok_or_else(|| no_session_locks(store))?;
                let rows = Exec::from(&mut c).fetch(&sql, &[ColKind::Int]).await?;
                if first_int(&rows) != Some(1) {
                    return Err(Error::GcLocked {
                        store: store.to_string(),
                        detail: format!(
                            "another session holds the MySQL lock `{name}` (IS_USED_LOCK names it)"
                        ),
                    });
                }
                Held::MySql { conn: c, name }
            }
        };
        tracing::debug!(store, "garbage-collection lock taken");
        Ok(StoreLock {
            store: store.to_string(),
            inner: Some(held),
        })
    }

    /// The store this lock is for.
    pub fn store(&self) -> &str {
        &self.store
    }

    /// Release the lock.
    pub async fn release(mut self) -> Result<()> {
        let Some(held) = self.inner.take() else {
            return Ok(());
        };
        release_held(&self.store, held).await
    }

    /// Remove a lock left behind by a crashed process. Only SQLite keeps locks beyond their
    /// connection; on PostgreSQL and MySQL this does nothing and returns `false`. Returns whether
    /// a lock row was removed. Call it only when no collection of `store` is running.
    pub async fn force_release(conn: &Connection, store: &str) -> Result<bool> {
        // Session locks end with their session: nothing is left behind.
        if dialect(conn.backend())
            .try_session_lock_sql(store)
            .is_some()
        {
            return Ok(false);
        }
        let mut c = conn.acquire().await?;
        let mut ex = c.exec();
        ex.raw(&format!(
            "CREATE TABLE IF NOT EXISTS {} (store_name TEXT PRIMARY KEY NOT NULL, \
             token TEXT NOT NULL, acquired_at TEXT NOT NULL, holder TEXT NOT NULL)",
            quote(Backend::Sqlite, SQLITE_LOCKS)
        ))
        .await?;
        let mut sql = Sql::new(Backend::Sqlite);
        sql.push("DELETE FROM ")
            .ident(SQLITE_LOCKS)
            .push(" WHERE store_name = ")
            .bind(Some(Param::Text(store.to_string())), None);
        Ok(ex.execute(&sql).await? > 0)
    }
}

async fn release_held(store: &str, held: Held) -> Result<()> {
    match held {
        #[cfg(feature = "sqlite")]
        Held::Sqlite { conn, token } => {
            let mut sql = Sql::new(Backend::Sqlite);
            sql.push("DELETE FROM ")
                .ident(SQLITE_LOCKS)
                .push(" WHERE store_name = ")
                .bind(Some(Param::Text(store.to_string())), None)
                .push(" AND token = ")
                .bind(Some(Param::Text(token)), None);
            let mut c = conn.acquire().await?;
            c.exec().execute(&sql).await?;
        }
        #[cfg(feature = "postgres")]
        Held::Postgres { mut conn, key } => {
            let _ = key;
            let sql = dialect(Backend::Postgres)
                .session_unlock_sql(store)
                .ok_or_else(|| no_session_locks(store))?;
            let unlocked = Exec::from(&mut conn).fetch(&sql, &[ColKind::Bool]).await;
            // Closing the session frees the lock whatever the unlock said.
            let closed = sqlx::Connection::close(conn).await;
            unlocked?;
            closed?;
        }
        #[cfg(feature = "mysql")]
        Held::MySql { mut conn, name } => {
            let _ = name;
            let sql = dialect(Backend::MySql)
                .session_unlock_sql(store)
                .ok_or_else(|| no_session_locks(store))?;
            let released = Exec::from(&mut conn).fetch(&sql, &[ColKind::Int]).await;
            let closed = sqlx::Connection::close(conn).await;
            released?;
            closed?;
        }
    }
    tracing::debug!(store, "garbage-collection lock released");
    Ok(())
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let Some(held) = self.inner.take() else {
            return;
        };
        match held {
            #[cfg(feature = "sqlite")]
            held @ Held::Sqlite { .. } => {
                let store = self.store.clone();
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => {
                        rt.spawn(async move {
                            if let Err(e) = release_held(&store, held).await {
                                tracing::warn!(store, error = %e, "cannot release the garbage-collection lock");
                            }
                        });
                    }
                    Err(_) => tracing::warn!(
                        store = self.store,
                        "garbage-collection lock dropped outside a runtime; remove it with StoreLock::force_release"
                    ),
                }
            }
            // Dropping the detached connection closes the session, which frees the lock.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
}

fn holder() -> String {
    format!(
        "process {} on {}",
        std::process::id(),
        std::env::var("HOSTNAME").unwrap_or_else(|_| "this host".into())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_are_stable_and_short() {
        assert_eq!(pg_key("main"), pg_key("main"));
        assert_ne!(pg_key("main"), pg_key("cold"));
        assert_eq!(mysql_name("main"), "dj_gc:main");
        let long = "x".repeat(100);
        assert!(mysql_name(&long).len() <= MYSQL_LOCK_NAME_MAX);
        assert_eq!(mysql_name(&long), mysql_name(&long));
    }
}
