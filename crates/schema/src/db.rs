//! Database plumbing: pools per backend, parameter binding, statement building and decoding of
//! result columns into [`Value`]s. Everything here is crate-internal except [`Connection`].

use std::sync::Arc;
use std::time::Duration;

use crate::Backend;
use chrono::{NaiveDate, NaiveDateTime};
use dj_config::Config;
use dj_config::DatabaseBackend;
use dj_core::registry::{Registry, StoreSet};
use dj_core::value::Value;
use futures::TryStreamExt as _;
use sqlx::{AssertSqlSafe, Column as _, Row as _, TypeInfo as _, ValueRef as _};
use sqlx_core::transaction::TransactionManager as _;

use crate::dialect::dialect;
use crate::error::{Error, Result};
use crate::heading::ColKind;

/// A value bound as a statement parameter.
#[derive(Clone, Debug)]
pub(crate) enum Param {
    Bool(bool),
    /// An integer of a 16-bit (or narrower) column.
    Int16(i16),
    /// An integer of a 32-bit column.
    Int32(i32),
    Int(i64),
    /// An unsigned integer above `i64::MAX`, sent as text.
    BigUInt(u64),
    Float(f64),
    Text(String),
    Bytes(bytes::Bytes),
    Uuid(uuid::Uuid),
    Json(serde_json::Value),
    Date(NaiveDate),
    DateTime(NaiveDateTime),
}

/// SQL text with its parameters, built for one backend.
#[derive(Clone, Debug)]
pub(crate) struct Sql {
    pub backend: Backend,
    pub text: String,
    pub params: Vec<Param>,
    /// A fragment (see [`Sql::fragment`]): placeholders are markers, casts kept aside.
    deferred: Option<Vec<Option<String>>>,
}

/// The placeholder marker of a fragment.
const MARK: char = '\u{1}';

impl Sql {
    pub fn new(backend: Backend) -> Self {
        Sql {
            backend,
            text: String::new(),
            params: Vec::new(),
            deferred: None,
        }
    }

    /// A fragment of a statement built out of order (queries render their parts separately and
    /// assemble them): placeholders are numbered when [`Sql::finish`] makes the statement.
    pub fn fragment(backend: Backend) -> Self {
        Sql {
            deferred: Some(Vec::new()),
            ..Sql::new(backend)
        }
    }

    /// Append another fragment (or a statement without parameters), parameters and all. A
    /// fragment appended to a statement has its placeholders numbered after the statement's.
    pub fn append(&mut self, other: Sql) -> &mut Self {
        match (&mut self.deferred, other.deferred) {
            (Some(mine), Some(theirs)) => {
                self.text.push_str(&other.text);
                mine.extend(theirs);
            }
            (None, Some(theirs)) => {
                let d = dialect(self.backend);
                let mut n = self.params.len();
                let mut k = 0;
                for c in other.text.chars() {
                    if c == MARK {
                        let cast = theirs.get(k).cloned().flatten();
                        k += 1;
                        n += 1;
                        self.text.push_str(&d.placeholder(n, cast.as_deref()));
                    } else {
                        self.text.push(c);
                    }
                }
            }
            (_, None) => {
                debug_assert!(other.params.is_empty());
                self.text.push_str(&other.text);
            }
        }
        self.params.extend(other.params);
        self
    }

    /// Append a copy of a fragment.
    pub fn append_ref(&mut self, other: &Sql) -> &mut Self {
        self.append(other.clone())
    }

    /// The statement of a fragment, placeholders numbered in text order.
    pub fn finish(self) -> Sql {
        let Some(casts) = self.deferred else {
            return self;
        };
        let d = dialect(self.backend);
        let mut text = String::with_capacity(self.text.len() + casts.len() * 3);
        let mut n = 0;
        for c in self.text.chars() {
            if c == MARK {
                let cast = casts.get(n).cloned().flatten();
                n += 1;
                text.push_str(&d.placeholder(n, cast.as_deref()));
            } else {
                text.push(c);
            }
        }
        Sql {
            backend: self.backend,
            text,
            params: self.params,
            deferred: None,
        }
    }

    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Append a placeholder for `p` (or `NULL` for `None`), with an optional PostgreSQL cast.
    pub fn bind(&mut self, p: Option<Param>, pg_cast: Option<&str>) -> &mut Self {
        let Some(p) = p else {
            self.text.push_str("NULL");
            return self;
        };
        let d = dialect(self.backend);
        let cast = match &p {
            Param::BigUInt(_) => d.big_uint_cast().or(pg_cast),
            _ => pg_cast,
        };
        self.params.push(p);
        if let Some(casts) = &mut self.deferred {
            casts.push(cast.map(str::to_string));
            self.text.push(MARK);
            return self;
        }
        let ph = d.placeholder(self.params.len(), cast);
        self.text.push_str(&ph);
        self
    }

    /// Append a quoted identifier.
    pub fn ident(&mut self, name: &str) -> &mut Self {
        let q = quote(self.backend, name);
        self.text.push_str(&q);
        self
    }
}

/// Quote an identifier for `backend` ([`Dialect::quote`]). Names reaching this point are
/// validated to contain no quote characters; any that slip through are doubled.
pub(crate) fn quote(backend: Backend, name: &str) -> String {
    dialect(backend).quote(name)
}

/// The quoted, schema-qualified name of a table ([`Dialect::qualified`]). On SQLite a schema is
/// a name prefix: `"schema.table"` is one identifier.
pub(crate) fn qualified(backend: Backend, schema: &str, table: &str) -> String {
    dialect(backend).qualified(schema, table)
}

/// A string literal for DDL (comments, defaults, enum values), escaped for `backend`
/// ([`Dialect::literal`]): quotes doubled; on MySQL (whose session `sql_mode` keeps backslash
/// escapes) backslashes doubled; on PostgreSQL a text with a backslash is written `E'…'` with
/// backslashes doubled. Callers keep NUL characters out ([`crate::ddl::check_literals`]); none of
/// the backends takes them in DDL text.
pub(crate) fn literal(backend: Backend, s: &str) -> String {
    dialect(backend).literal(s)
}

/// The connections of one server (or SQLite file): sqlx's pool behind dj-rs's [`Stash`].
#[derive(Debug)]
pub(crate) enum Pool {
    #[cfg(feature = "sqlite")]
    Sqlite(Arc<Stash<sqlx::Sqlite>>),
    #[cfg(feature = "postgres")]
    Postgres(Arc<Stash<sqlx::Postgres>>),
    #[cfg(feature = "mysql")]
    MySql(Arc<Stash<sqlx::MySql>>),
}

pub(crate) struct Inner {
    pub backend: Backend,
    pub pool: Pool,
    pub config: Arc<Config>,
    pub stores: Arc<StoreSet>,
    pub registry: &'static Registry,
}

/// A connection (a pool of connections) to one database server, with the configuration and the
/// stores codecs use. Cheap to clone.
///
/// Schemas map to MySQL databases, PostgreSQL schemas, and on SQLite to a name prefix inside one
/// file (`"lab.subject"`): SQLite cannot enforce foreign keys across attached files, and a prefix
/// keeps one transaction and one pool for every schema.
#[derive(Clone)]
pub struct Connection {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

/// Connections a server pool holds at most.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
const MAX_CONNECTIONS: u32 = 5;

/// A pooled server connection idle this long is closed (instead of being handed out after the
/// server or a firewall may have dropped it).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How many times a read outside a transaction is sent again after the server closed the
/// connection it ran on: each attempt takes another pooled connection (or opens one), so a
/// server restart that closed every idle connection costs at most this many failed attempts.
pub(crate) const READ_RETRIES: u32 = MAX_CONNECTIONS + 1;

/// Whether `e` says the connection itself is gone (the server closed it, or the socket failed)
/// rather than that the statement failed: a statement that never ran can be sent again on
/// another connection.
///
/// Pooled connections are not checked with a round trip before each use (that would double the
/// latency of every small query); a connection the server closed while it sat in the pool is
/// found out by the first statement sent on it, which fails with one of these errors, and the
/// connection is then discarded.
pub(crate) fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            #[cfg(feature = "mysql")]
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                // ER_CONNECTION_KILLED, ER_SERVER_SHUTDOWN, ER_NEW_ABORTING_CONNECTION.
                return matches!(my.number(), 1927 | 1053 | 1184);
            }
            // PostgreSQL: class 08 (connection exception), 57P01-57P03 (administrator command,
            // crash shutdown, cannot connect now).
            db.code().is_some_and(|c| {
                c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03")
            })
        }
        _ => false,
    }
}

#[cfg(feature = "mysql")]
const MYSQL_SQL_MODE: &str = "SET SESSION sql_mode = 'NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,ONLY_FULL_GROUP_BY'";

impl Connection {
    /// Connect as configured by `config.database`, with the stores of `config.stores`.
    pub async fn open(config: &Config) -> Result<Connection> {
        let config = Arc::new(config.clone());
        let stores = Arc::new(StoreSet::new(config.core()));
        Connection::open_with(config, stores).await
    }

    /// Connect with a shared configuration and store set (for stores built or inserted by hand).
    ///
    /// The backend is `config.database.backend`, nothing else. A SQLite backend with a server
    /// setting (`host`, `port`, `user`, `password`, `name`), as a configuration built in code
    /// gets when it sets a host but no backend, is refused instead of opening a local file, and
    /// so is a SQLite path that is a directory ([`DatabaseConfig::validate`]).
    ///
    /// [`DatabaseConfig::validate`]: dj_config::DatabaseConfig::validate
    pub async fn open_with(config: Arc<Config>, stores: Arc<StoreSet>) -> Result<Connection> {
        let db = &config.database;
        db.validate()?;
        let url = db.url.as_ref().map(|u| u.expose().to_string());
        let (backend, pool) = match db.backend {
            DatabaseBackend::Sqlite => (Backend::Sqlite, open_sqlite(db, url.as_deref()).await?),
            DatabaseBackend::Postgresql => (Backend::Postgres, open_pg(db, url.as_deref()).await?),
            DatabaseBackend::Mysql => (Backend::MySql, open_mysql(db, url.as_deref()).await?),
        };
        Ok(Connection {
            inner: Arc::new(Inner {
                backend,
                pool,
                config,
                stores,
                registry: Registry::global(),
            }),
        })
    }

    /// The backend of this connection.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The configuration this connection was opened with.
    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// The stores codecs of this connection write to and read from.
    pub fn stores(&self) -> &Arc<StoreSet> {
        &self.inner.stores
    }

    /// A connection for one operation: the one used last when it is idle (see [`Stash`]),
    /// else one from the pool.
    pub(crate) async fn acquire(&self) -> Result<PConn> {
        Ok(match &self.inner.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => PConn::Sqlite(p.acquire().await?),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => PConn::Postgres(p.acquire().await?),
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => PConn::MySql(p.acquire().await?),
        })
    }

    /// Open a transaction on a pooled connection. A connection the server closed while it sat
    /// idle fails at `BEGIN`, before anything ran: it is closed and another one is tried.
    pub(crate) async fn begin_tx(&self) -> Result<Tx> {
        let mut attempt = 0;
        loop {
            let mut conn = self.acquire().await?;
            match conn.begin_in_place().await {
                Err(e) if attempt < READ_RETRIES && connection_lost(&e) => {
                    tracing::debug!(error = %e, "connection lost before BEGIN; trying another");
                    conn.discard();
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
                Ok(()) => return Ok(Tx { conn }),
            }
        }
    }

    /// Run a query outside any transaction (a read: it changes nothing, so it can be sent
    /// again) and decode its rows by `kinds`. When the pooled connection turns out to be closed
    /// by the server (see [`connection_lost`]), it is discarded and the query runs on another.
    pub(crate) async fn read(&self, sql: &Sql, kinds: &[ColKind]) -> Result<Vec<Vec<Value>>> {
        let mut attempt = 0;
        loop {
            let mut conn = self.acquire().await?;
            match conn.exec().fetch(sql, kinds).await {
                Err(Error::Database { source, .. })
                    if attempt < READ_RETRIES && connection_lost(&source) =>
                {
                    tracing::debug!(error = %source, "connection lost; reading on another");
                    conn.discard();
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Whether `other` is a handle on this same connection (pool).
    pub fn same_as(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Close every pooled connection.
    pub async fn close(&self) {
        match &self.inner.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => p.close().await,
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => p.close().await,
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => p.close().await,
        }
    }
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(db: &dj_config::DatabaseConfig, url: Option<&str>) -> Result<Pool> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
    use std::str::FromStr;
    let memory = url.is_some_and(|u| u.contains(":memory:"))
        || db
            .path
            .as_ref()
            .is_some_and(|p| p.as_os_str() == ":memory:");
    let opts = if memory {
        SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| Error::Connect(e.to_string()))?
    } else if let Some(u) = url {
        SqliteConnectOptions::from_str(u)
            .map_err(|e| Error::Connect(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
    } else {
        SqliteConnectOptions::new()
            .filename(db.sqlite_path())
            .create_if_missing(true)
    };
    let opts = opts
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30));
    let (pool, idle) = if memory {
        // One connection holds the in-memory database; keep it for the pool's life.
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await
            .map(|p| (p, None))
    } else {
        SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .idle_timeout(IDLE_TIMEOUT)
            .connect_with(opts.journal_mode(SqliteJournalMode::Wal))
            .await
            .map(|p| (p, Some(IDLE_TIMEOUT)))
    }
    .map_err(|e| Error::Connect(format!("cannot open SQLite database: {e}")))?;
    Ok(Pool::Sqlite(Stash::new(pool, idle)))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_: &dj_config::DatabaseConfig, _: Option<&str>) -> Result<Pool> {
    Err(Error::BackendDisabled("sqlite"))
}

#[cfg(feature = "postgres")]
async fn open_pg(db: &dj_config::DatabaseConfig, url: Option<&str>) -> Result<Pool> {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use std::str::FromStr;
    let mut opts = match url {
        Some(u) => PgConnectOptions::from_str(u)
            .map_err(|e| Error::Connect(format!("bad PostgreSQL URL: {e}")))?,
        None => PgConnectOptions::new()
            .host(db.host_or_default())
            .port(db.port_or_default().unwrap_or(5432))
            .database(db.name.as_deref().unwrap_or("postgres")),
    };
    if let Some(u) = &db.user {
        opts = opts.username(u);
    }
    if let Some(p) = &db.password {
        opts = opts.password(p.expose());
    }
    if url.is_some()
        && let Some(name) = &db.name
    {
        opts = opts.database(name);
    }
    let pool = PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .idle_timeout(IDLE_TIMEOUT)
        .connect_with(opts)
        .await
        .map_err(|e| Error::Connect(format!("cannot connect to PostgreSQL: {e}")))?;
    Ok(Pool::Postgres(Stash::new(pool, Some(IDLE_TIMEOUT))))
}

#[cfg(not(feature = "postgres"))]
async fn open_pg(_: &dj_config::DatabaseConfig, _: Option<&str>) -> Result<Pool> {
    Err(Error::BackendDisabled("postgres"))
}

#[cfg(feature = "mysql")]
async fn open_mysql(db: &dj_config::DatabaseConfig, url: Option<&str>) -> Result<Pool> {
    use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
    use std::str::FromStr;
    let mut opts = match url {
        Some(u) => MySqlConnectOptions::from_str(u)
            .map_err(|e| Error::Connect(format!("bad MySQL URL: {e}")))?,
        None => MySqlConnectOptions::new()
            .host(db.host_or_default())
            .port(db.port_or_default().unwrap_or(3306)),
    };
    if let Some(u) = &db.user {
        opts = opts.username(u);
    }
    if let Some(p) = &db.password {
        opts = opts.password(p.expose());
    }
    let pool = MySqlPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .idle_timeout(IDLE_TIMEOUT)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                sqlx::raw_sql(MYSQL_SQL_MODE).execute(&mut *conn).await?;
                Ok(())
            })
        })
        .connect_with(opts)
        .await
        .map_err(|e| Error::Connect(format!("cannot connect to MySQL: {e}")))?;
    Ok(Pool::MySql(Stash::new(pool, Some(IDLE_TIMEOUT))))
}

#[cfg(not(feature = "mysql"))]
async fn open_mysql(_: &dj_config::DatabaseConfig, _: Option<&str>) -> Result<Pool> {
    Err(Error::BackendDisabled("mysql"))
}

/// The connections dj-rs keeps between operations, in front of a sqlx pool.
///
/// sqlx's pool checks every connection handed back to it with a round trip (`ping`), in a task
/// of its own, before another user can have it; with one statement per `fetch1` that doubled the
/// round trips of every lookup and moved each one to another task and often another
/// connection. The stash keeps connections checked out of the pool instead: a connection whose
/// operation finished cleanly (its last statement ran to completion, no error, no transaction
/// left open) is parked here, and the next operation takes the one parked last (still warm,
/// its prepared statements cached). Every other connection goes back to sqlx as before:
///
/// - after a statement failed (or a stream stopped before its last row, or a transaction was
///   dropped without a commit and its `ROLLBACK` is queued), to the pool, whose check reads
///   whatever is left of the exchange and sends the queued rollback, or closes the connection;
/// - when a statement was cancelled in flight (its future dropped), closed on the servers: what
///   was sent and what is still to come are unknown, and the server rolls back what the session
///   had open (SQLite's go back to the pool: see [`closes_when_cancelled`]);
/// - when the server closed it ([`PConn::discard`]), closed.
///
/// Parked connections stay checked out of the pool, so the pool's `max_connections` still
/// bounds every connection, parked or in use; an operation that finds nothing parked waits for
/// the pool, or for a connection to be parked, whichever comes first. Connections parked longer
/// than the idle timeout are closed (a sweeper task looks every half timeout).
pub(crate) struct Stash<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
    parked: std::sync::Mutex<Parked<DB>>,
    /// Told whenever a connection is parked, for operations waiting on the pool.
    parked_one: tokio::sync::Notify,
    idle_timeout: Option<Duration>,
}

struct Parked<DB: sqlx::Database> {
    /// Last parked last: the next operation pops the warmest.
    conns: Vec<(sqlx::pool::PoolConnection<DB>, std::time::Instant)>,
    /// [`Stash::close`] ran: nothing is parked any more.
    closed: bool,
}

impl<DB: sqlx::Database> std::fmt::Debug for Stash<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stash")
            .field("pool", &self.pool)
            .field("parked", &self.lock().conns.len())
            .finish_non_exhaustive()
    }
}

/// Close pooled connections (sqlx closes each in a task of its own).
fn close_all<DB: sqlx::Database>(conns: Vec<sqlx::pool::PoolConnection<DB>>) {
    for mut c in conns {
        c.close_on_drop();
    }
}

impl<DB: sqlx::Database> Stash<DB> {
    /// A stash in front of `pool`; connections parked longer than `idle_timeout` are closed.
    fn new(pool: sqlx::Pool<DB>, idle_timeout: Option<Duration>) -> Arc<Stash<DB>> {
        let stash = Arc::new(Stash {
            pool,
            parked: std::sync::Mutex::new(Parked {
                conns: Vec::new(),
                closed: false,
            }),
            parked_one: tokio::sync::Notify::new(),
            idle_timeout,
        });
        if let Some(timeout) = idle_timeout {
            let weak = Arc::downgrade(&stash);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(timeout / 2).await;
                    let Some(stash) = weak.upgrade() else { break };
                    stash.sweep();
                }
            });
        }
        stash
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Parked<DB>> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent data.
        self.parked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn expired(&self, since: std::time::Instant) -> bool {
        self.idle_timeout.is_some_and(|t| since.elapsed() >= t)
    }

    /// The connection parked last, unless it idled past the timeout (then every parked one
    /// has, and all are closed).
    fn unpark(&self) -> Option<sqlx::pool::PoolConnection<DB>> {
        let mut stale = Vec::new();
        let got = {
            let mut parked = self.lock();
            loop {
                match parked.conns.pop() {
                    None => break None,
                    Some((c, since)) if self.expired(since) => stale.push(c),
                    Some((c, _)) => break Some(c),
                }
            }
        };
        close_all(stale);
        got
    }

    /// Close the connections parked longer than the idle timeout.
    fn sweep(&self) {
        let stale = {
            let mut parked = self.lock();
            let (stale, fresh) = std::mem::take(&mut parked.conns)
                .into_iter()
                .partition::<Vec<_>, _>(|(_, since)| self.expired(*since));
            parked.conns = fresh;
            stale
        };
        close_all(stale.into_iter().map(|(c, _)| c).collect());
    }

    /// A connection for one operation: the one parked last, else one from the pool (or, if
    /// the pool is at its limit, whichever comes first of a pool connection and a parked one).
    async fn acquire(self: &Arc<Self>) -> std::result::Result<Checked<DB>, sqlx::Error> {
        loop {
            if let Some(c) = self.unpark() {
                return Ok(Checked::new(c, self));
            }
            let mut parked = std::pin::pin!(self.parked_one.notified());
            parked.as_mut().enable();
            // Parked between the look above and the registration just made?
            if let Some(c) = self.unpark() {
                return Ok(Checked::new(c, self));
            }
            let from_pool = std::pin::pin!(self.pool.acquire());
            match futures::future::select(from_pool, parked).await {
                futures::future::Either::Left((c, _)) => return Ok(Checked::new(c?, self)),
                futures::future::Either::Right(((), _)) => continue,
            }
        }
    }

    /// Keep a connection whose operation finished cleanly for the next one.
    fn park(&self, conn: sqlx::pool::PoolConnection<DB>) {
        let mut parked = self.lock();
        if parked.closed {
            drop(parked);
            // The pool is closed: sqlx closes what comes back to it.
            drop(conn);
            return;
        }
        parked.conns.push((conn, std::time::Instant::now()));
        drop(parked);
        self.parked_one.notify_waiters();
    }

    /// Close the parked connections and the pool (which waits for those in use).
    async fn close(&self) {
        let conns = {
            let mut parked = self.lock();
            parked.closed = true;
            std::mem::take(&mut parked.conns)
        };
        for (c, _) in conns {
            if let Err(e) = c.close().await {
                tracing::debug!(error = %e, "closing a parked connection");
            }
        }
        self.pool.close().await;
    }

    /// Connections open (parked, in use, or idle in the pool).
    #[cfg(test)]
    fn size(&self) -> u32 {
        self.pool.size()
    }

    /// Connections not in use: parked, or idle in the pool.
    #[cfg(test)]
    fn num_idle(&self) -> usize {
        self.lock().conns.len() + self.pool.num_idle()
    }
}

impl<DB: sqlx::Database> Drop for Stash<DB> {
    fn drop(&mut self) {
        let conns = std::mem::take(&mut self.lock().conns);
        if tokio::runtime::Handle::try_current().is_ok() {
            close_all(conns.into_iter().map(|(c, _)| c).collect());
        } else {
            // sqlx needs a runtime to take a connection back; outside one, drop the sockets
            // as the pool itself does with its idle connections.
            for (c, _) in conns {
                drop(c.leak());
            }
        }
    }
}

/// Where a checked-out connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Health {
    /// Every statement sent on it ran to completion: it can be parked for the next operation.
    Clean,
    /// A statement failed, or its rows were not all read: back to the pool, which checks it.
    Failed,
    /// A statement is in flight; if the connection is dropped like this, the statement's future
    /// was cancelled and the exchange is in an unknown state: the connection is closed.
    Running,
}

/// Whether a connection whose statement was cancelled in flight is closed rather than checked
/// by the pool. SQLite runs each statement to its end on the connection's own thread whatever
/// became of the future that asked for it, so its connections stay consistent; and closing
/// the one connection of an in-memory database would lose the database.
fn closes_when_cancelled<DB: sqlx::Database>() -> bool {
    DB::NAME != "SQLite"
}

/// A connection checked out of a [`Stash`] for one operation; dropped, it is parked, returned
/// to the pool or closed according to its [`Health`] (see [`Stash`]).
pub(crate) struct Checked<DB: sqlx::Database> {
    /// `None` only once dropped or detached.
    conn: Option<sqlx::pool::PoolConnection<DB>>,
    stash: Arc<Stash<DB>>,
    health: Health,
}

impl<DB: sqlx::Database> Checked<DB> {
    fn new(conn: sqlx::pool::PoolConnection<DB>, stash: &Arc<Stash<DB>>) -> Checked<DB> {
        Checked {
            conn: Some(conn),
            stash: Arc::clone(stash),
            health: Health::Clean,
        }
    }

    fn live(&mut self) -> &mut DB::Connection {
        live(&mut self.conn)
    }

    /// Close this connection when it is dropped instead of keeping it.
    pub fn discard(&mut self) {
        self.health = Health::Failed;
        if let Some(c) = self.conn.as_mut() {
            c.close_on_drop();
        }
    }

    /// Take the connection out of the pool for good (the pool may open a replacement).
    pub fn detach(mut self) -> DB::Connection {
        self.health = Health::Failed;
        match self.conn.take() {
            Some(c) => c.detach(),
            None => unreachable!("a checked-out connection is detached after it was given back"),
        }
    }

    fn in_transaction(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| sqlx::Connection::is_in_transaction(&**c))
    }

    /// Mark an exchange in flight; returns the health to restore when it succeeds.
    fn start(&mut self) -> Health {
        std::mem::replace(&mut self.health, Health::Running)
    }

    /// Record how the exchange started with [`Checked::start`] ended.
    fn end<T>(&mut self, before: Health, out: &std::result::Result<T, sqlx::Error>) {
        self.health = if out.is_ok() { before } else { Health::Failed };
    }

    async fn begin(&mut self) -> std::result::Result<(), sqlx::Error> {
        let before = self.start();
        let out = DB::TransactionManager::begin(self.live(), None).await;
        self.end(before, &out);
        out
    }

    async fn commit(&mut self) -> std::result::Result<(), sqlx::Error> {
        let before = self.start();
        let out = DB::TransactionManager::commit(self.live()).await;
        self.end(before, &out);
        out
    }

    async fn rollback(&mut self) -> std::result::Result<(), sqlx::Error> {
        let before = self.start();
        let out = DB::TransactionManager::rollback(self.live()).await;
        self.end(before, &out);
        out
    }

    /// A transaction dropped without commit: queue its `ROLLBACK` (sent by the pool's check,
    /// before anyone else gets the connection).
    fn abandon(&mut self) {
        let closing = self.health == Health::Running && closes_when_cancelled::<DB>();
        if !closing && self.in_transaction() {
            DB::TransactionManager::start_rollback(self.live());
            self.health = Health::Failed;
        }
    }
}

impl<DB: sqlx::Database> Drop for Checked<DB> {
    fn drop(&mut self) {
        let in_tx = self.in_transaction();
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match self.health {
            Health::Clean if !in_tx => self.stash.park(conn),
            Health::Running if closes_when_cancelled::<DB>() => conn.close_on_drop(),
            // Checked by the pool (`ping`), which also sends a queued `ROLLBACK`; closed when
            // that fails or `discard` asked for it.
            Health::Clean | Health::Failed | Health::Running => drop(conn),
        }
    }
}

/// A pooled connection, checked out for one operation.
pub(crate) enum PConn {
    #[cfg(feature = "sqlite")]
    Sqlite(Checked<sqlx::Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(Checked<sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(Checked<sqlx::MySql>),
}

/// An open transaction on a pooled connection; dropped without commit, it rolls back (the
/// `ROLLBACK` is sent before the connection serves anyone else).
pub(crate) struct Tx {
    conn: PConn,
}

/// The driver connection statements run on.
enum Raw<'c> {
    #[cfg(feature = "sqlite")]
    Sqlite(&'c mut sqlx::SqliteConnection),
    #[cfg(feature = "postgres")]
    Postgres(&'c mut sqlx::PgConnection),
    #[cfg(feature = "mysql")]
    MySql(&'c mut sqlx::MySqlConnection),
}

/// A borrowed connection to run statements on. On a pooled connection it keeps the
/// connection's [`Health`] up to date, statement by statement.
pub(crate) struct Exec<'c> {
    raw: Raw<'c>,
    health: Option<&'c mut Health>,
}

#[cfg(feature = "sqlite")]
impl<'c> From<&'c mut sqlx::SqliteConnection> for Exec<'c> {
    fn from(c: &'c mut sqlx::SqliteConnection) -> Exec<'c> {
        Exec {
            raw: Raw::Sqlite(c),
            health: None,
        }
    }
}

#[cfg(feature = "postgres")]
impl<'c> From<&'c mut sqlx::PgConnection> for Exec<'c> {
    fn from(c: &'c mut sqlx::PgConnection) -> Exec<'c> {
        Exec {
            raw: Raw::Postgres(c),
            health: None,
        }
    }
}

#[cfg(feature = "mysql")]
impl<'c> From<&'c mut sqlx::MySqlConnection> for Exec<'c> {
    fn from(c: &'c mut sqlx::MySqlConnection) -> Exec<'c> {
        Exec {
            raw: Raw::MySql(c),
            health: None,
        }
    }
}

/// Every variant of a [`PConn`]: `$c` bound to its [`Checked`].
macro_rules! each_conn {
    ($pc:expr, $c:ident => $body:expr) => {
        match $pc {
            #[cfg(feature = "sqlite")]
            PConn::Sqlite($c) => $body,
            #[cfg(feature = "postgres")]
            PConn::Postgres($c) => $body,
            #[cfg(feature = "mysql")]
            PConn::MySql($c) => $body,
        }
    };
}

impl PConn {
    /// Close this connection when it is dropped instead of keeping it.
    pub fn discard(&mut self) {
        each_conn!(self, c => c.discard())
    }

    pub fn exec(&mut self) -> Exec<'_> {
        match self {
            #[cfg(feature = "sqlite")]
            PConn::Sqlite(c) => {
                let Checked { conn, health, .. } = c;
                Exec {
                    raw: Raw::Sqlite(live(conn)),
                    health: Some(health),
                }
            }
            #[cfg(feature = "postgres")]
            PConn::Postgres(c) => {
                let Checked { conn, health, .. } = c;
                Exec {
                    raw: Raw::Postgres(live(conn)),
                    health: Some(health),
                }
            }
            #[cfg(feature = "mysql")]
            PConn::MySql(c) => {
                let Checked { conn, health, .. } = c;
                Exec {
                    raw: Raw::MySql(live(conn)),
                    health: Some(health),
                }
            }
        }
    }

    /// `BEGIN` on this connection.
    async fn begin_in_place(&mut self) -> std::result::Result<(), sqlx::Error> {
        each_conn!(self, c => c.begin().await)
    }

    /// Begin a transaction on this pooled connection, without a second trip to the pool.
    pub(crate) async fn begin(mut self) -> Result<Tx> {
        self.begin_in_place().await?;
        Ok(Tx { conn: self })
    }
}

/// The driver connection inside a checked-out one (see [`Checked::live`]).
fn live<DB: sqlx::Database>(
    conn: &mut Option<sqlx::pool::PoolConnection<DB>>,
) -> &mut DB::Connection {
    match conn.as_mut() {
        Some(c) => c,
        // Only `drop` and `detach` take the connection, and both consume the `Checked`.
        None => unreachable!("a checked-out connection is used after it was given back"),
    }
}

impl Tx {
    pub fn exec(&mut self) -> Exec<'_> {
        self.conn.exec()
    }

    pub async fn commit(mut self) -> Result<()> {
        each_conn!(&mut self.conn, c => c.commit().await)?;
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<()> {
        each_conn!(&mut self.conn, c => c.rollback().await)?;
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        each_conn!(&mut self.conn, c => c.abandon())
    }
}

macro_rules! bind_all {
    ($q:expr, $params:expr, $bind:ident) => {{
        let mut q = $q;
        for p in $params {
            q = $bind(q, p);
        }
        q
    }};
}

#[cfg(feature = "sqlite")]
type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;
#[cfg(feature = "postgres")]
type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;
#[cfg(feature = "mysql")]
type MySqlQuery<'q> = sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>;

#[cfg(feature = "sqlite")]
fn bind_sqlite<'q>(q: SqliteQuery<'q>, p: &Param) -> SqliteQuery<'q> {
    match p {
        Param::Bool(b) => q.bind(i64::from(*b)),
        Param::Int16(i) => q.bind(*i),
        Param::Int32(i) => q.bind(*i),
        Param::Int(i) => q.bind(*i),
        Param::BigUInt(u) => q.bind(u.to_string()),
        Param::Float(f) => q.bind(*f),
        Param::Text(s) => q.bind(s.as_str()),
        Param::Bytes(b) => q.bind(b.as_ref()),
        Param::Uuid(u) => q.bind(u.as_bytes().to_vec()),
        Param::Json(j) => q.bind(j.to_string()),
        Param::Date(d) => q.bind(d.format("%Y-%m-%d").to_string()),
        Param::DateTime(d) => q.bind(sqlite_datetime(d)),
    }
}

/// The canonical SQLite text of a datetime (fixed microseconds so text order is time order).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn sqlite_datetime(d: &NaiveDateTime) -> String {
    d.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

#[cfg(feature = "postgres")]
fn bind_pg<'q>(q: PgQuery<'q>, p: &Param) -> PgQuery<'q> {
    match p {
        Param::Bool(b) => q.bind(*b),
        Param::Int16(i) => q.bind(*i),
        Param::Int32(i) => q.bind(*i),
        Param::Int(i) => q.bind(*i),
        Param::BigUInt(u) => q.bind(u.to_string()),
        Param::Float(f) => q.bind(*f),
        Param::Text(s) => q.bind(s.as_str()),
        Param::Bytes(b) => q.bind(b.as_ref()),
        Param::Uuid(u) => q.bind(*u),
        Param::Json(j) => q.bind(sqlx::types::Json(j)),
        Param::Date(d) => q.bind(*d),
        Param::DateTime(d) => q.bind(*d),
    }
}

#[cfg(feature = "mysql")]
fn bind_mysql<'q>(q: MySqlQuery<'q>, p: &Param) -> MySqlQuery<'q> {
    match p {
        Param::Bool(b) => q.bind(i64::from(*b)),
        Param::Int16(i) => q.bind(*i),
        Param::Int32(i) => q.bind(*i),
        Param::Int(i) => q.bind(*i),
        Param::BigUInt(u) => q.bind(*u),
        Param::Float(f) => q.bind(*f),
        Param::Text(s) => q.bind(s.as_str()),
        Param::Bytes(b) => q.bind(b.as_ref()),
        Param::Uuid(u) => q.bind(u.as_bytes().to_vec()),
        Param::Json(j) => q.bind(j.to_string()),
        Param::Date(d) => q.bind(*d),
        Param::DateTime(d) => q.bind(*d),
    }
}

impl Exec<'_> {
    /// Mark a statement in flight; returns the health to restore when it succeeds.
    fn start(&mut self) -> Health {
        match self.health.as_deref_mut() {
            Some(h) => std::mem::replace(h, Health::Running),
            None => Health::Clean,
        }
    }

    /// Record how the statement started with [`Exec::start`] ended.
    fn end<T, E>(&mut self, before: Health, out: &std::result::Result<T, E>) {
        if let Some(h) = self.health.as_deref_mut() {
            *h = if out.is_ok() { before } else { Health::Failed };
        }
    }

    /// Run one statement with parameters; returns the number of rows affected.
    pub async fn execute(&mut self, sql: &Sql) -> std::result::Result<u64, sqlx::Error> {
        tracing::trace!(sql = %sql.text, params = sql.params.len(), "execute");
        let text = AssertSqlSafe(sql.text.clone());
        let before = self.start();
        let out = match &mut self.raw {
            #[cfg(feature = "sqlite")]
            Raw::Sqlite(c) => bind_all!(sqlx::query(text), &sql.params, bind_sqlite)
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()),
            #[cfg(feature = "postgres")]
            Raw::Postgres(c) => bind_all!(sqlx::query(text), &sql.params, bind_pg)
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()),
            #[cfg(feature = "mysql")]
            Raw::MySql(c) => bind_all!(sqlx::query(text), &sql.params, bind_mysql)
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()),
        };
        self.end(before, &out);
        out
    }

    /// Run a statement without parameters through the text protocol (DDL).
    pub async fn raw(&mut self, text: &str) -> std::result::Result<(), sqlx::Error> {
        tracing::debug!(sql = %text, "ddl");
        let q = sqlx::raw_sql(AssertSqlSafe(text.to_string()));
        let before = self.start();
        let out = match &mut self.raw {
            #[cfg(feature = "sqlite")]
            Raw::Sqlite(c) => q.execute(&mut **c).await.map(drop),
            #[cfg(feature = "postgres")]
            Raw::Postgres(c) => q.execute(&mut **c).await.map(drop),
            #[cfg(feature = "mysql")]
            Raw::MySql(c) => q.execute(&mut **c).await.map(drop),
        };
        self.end(before, &out);
        out
    }

    /// Run a query and decode every row's columns by `kinds` (one per selected column).
    pub async fn fetch(&mut self, sql: &Sql, kinds: &[ColKind]) -> Result<Vec<Vec<Value>>> {
        tracing::trace!(sql = %sql.text, params = sql.params.len(), "fetch");
        // Rows are decoded as they arrive, while the database is still sending the rest.
        let text = AssertSqlSafe(sql.text.clone());
        let before = self.start();
        macro_rules! pump {
            ($c:expr, $bind:ident, $decode:ident) => {{
                let mut out = Vec::new();
                let mut rows = bind_all!(sqlx::query(text), &sql.params, $bind).fetch(&mut **$c);
                loop {
                    match rows.try_next().await {
                        Ok(Some(row)) => match decode_row(&row, kinds, $decode) {
                            Ok(r) => out.push(r),
                            Err(e) => break Err(e),
                        },
                        Ok(None) => break Ok(out),
                        Err(e) => break Err(Error::from(e)),
                    }
                }
            }};
        }
        let out = match &mut self.raw {
            #[cfg(feature = "sqlite")]
            Raw::Sqlite(c) => pump!(c, bind_sqlite, decode_sqlite),
            #[cfg(feature = "postgres")]
            Raw::Postgres(c) => pump!(c, bind_pg, decode_pg),
            #[cfg(feature = "mysql")]
            Raw::MySql(c) => pump!(c, bind_mysql, decode_mysql),
        };
        self.end(before, &out);
        out
    }
}

impl PConn {
    /// Run a query and send each decoded row to `tx` as it arrives; stops early when the
    /// receiver is gone. Memory stays bounded by the channel's capacity.
    ///
    /// With `may_retry`, a connection found closed by the server before any row was sent is
    /// discarded and `true` comes back (nothing reached `tx`): the caller runs the query again
    /// on another connection.
    pub async fn fetch_into(
        mut self,
        sql: &Sql,
        kinds: &[ColKind],
        tx: &tokio::sync::mpsc::Sender<Result<Vec<Value>>>,
        may_retry: bool,
    ) -> bool {
        tracing::trace!(sql = %sql.text, params = sql.params.len(), "fetch stream");
        let text = AssertSqlSafe(sql.text.as_str());
        let mut lost = false;
        macro_rules! pump {
            ($c:expr, $bind:ident, $decode:ident) => {{
                let before = std::mem::replace(&mut $c.health, Health::Running);
                let mut rows = bind_all!(sqlx::query(text), &sql.params, $bind)
                    .fetch(live(&mut $c.conn));
                let mut sent = false;
                // Whether every row was read and sent.
                let complete = loop {
                    let item = match rows.try_next().await {
                        Ok(Some(row)) => decode_row(&row, kinds, $decode),
                        Ok(None) => break true,
                        Err(e) if may_retry && !sent && connection_lost(&e) => {
                            tracing::debug!(error = %e, "connection lost; streaming on another");
                            lost = true;
                            break false;
                        }
                        Err(e) => Err(Error::from(e)),
                    };
                    sent = true;
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        break false;
                    }
                };
                drop(rows);
                $c.health = if complete { before } else { Health::Failed };
            }};
        }
        match &mut self {
            #[cfg(feature = "sqlite")]
            PConn::Sqlite(c) => pump!(c, bind_sqlite, decode_sqlite),
            #[cfg(feature = "postgres")]
            PConn::Postgres(c) => pump!(c, bind_pg, decode_pg),
            #[cfg(feature = "mysql")]
            PConn::MySql(c) => pump!(c, bind_mysql, decode_mysql),
        }
        if lost {
            self.discard();
        }
        lost
    }
}

type DecodeFn<R> = fn(&R, usize, ColKind) -> std::result::Result<Value, sqlx::Error>;

fn decode_row<R: sqlx::Row>(row: &R, kinds: &[ColKind], f: DecodeFn<R>) -> Result<Vec<Value>> {
    let n = row.columns().len();
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        let kind = kinds.get(i).copied().unwrap_or(ColKind::Other);
        let v = f(row, i, kind).map_err(|e| {
            let col = row
                .columns()
                .get(i)
                .map(|c| c.name().to_string())
                .unwrap_or_default();
            Error::BadValue {
                table: String::new(),
                attribute: col,
                message: format!("cannot decode column: {e}"),
            }
        })?;
        values.push(v);
    }
    Ok(values)
}

fn decode_err(msg: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(msg.to_string().into())
}

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
fn parse_date(s: &str) -> std::result::Result<Value, sqlx::Error> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map(Value::Date)
        .map_err(|e| decode_err(format!("bad date `{s}`: {e}")))
}

pub(crate) fn parse_datetime_text(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(d);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

fn parse_json(s: &str) -> std::result::Result<Value, sqlx::Error> {
    serde_json::from_str(s)
        .map(Value::Json)
        .map_err(|e| decode_err(format!("bad JSON: {e}")))
}

fn uuid_from_bytes(b: &[u8]) -> std::result::Result<Value, sqlx::Error> {
    uuid::Uuid::from_slice(b)
        .map(Value::Uuid)
        .map_err(|e| decode_err(format!("bad uuid bytes: {e}")))
}

#[cfg(feature = "sqlite")]
fn decode_sqlite(
    row: &sqlx::sqlite::SqliteRow,
    i: usize,
    kind: ColKind,
) -> std::result::Result<Value, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_info = raw.type_info();
    let storage = type_info.name();
    let text = |row: &sqlx::sqlite::SqliteRow| row.try_get_unchecked::<String, _>(i);
    Ok(match kind {
        ColKind::Int => Value::Int(row.try_get_unchecked::<i64, _>(i)?),
        ColKind::UInt => {
            if storage == "TEXT" {
                Value::UInt(text(row)?.parse().map_err(decode_err)?)
            } else {
                Value::from(row.try_get_unchecked::<i64, _>(i)?.max(0) as u64)
            }
        }
        ColKind::Float => Value::Float(row.try_get_unchecked::<f64, _>(i)?),
        ColKind::Bool => Value::Bool(row.try_get_unchecked::<i64, _>(i)? != 0),
        ColKind::Decimal => Value::Decimal(text(row)?),
        ColKind::Text => Value::String(text(row)?),
        ColKind::Other | ColKind::Dynamic => match storage {
            "INTEGER" => Value::Int(row.try_get_unchecked::<i64, _>(i)?),
            "REAL" => Value::Float(row.try_get_unchecked::<f64, _>(i)?),
            "BLOB" => Value::Bytes(row.try_get_unchecked::<Vec<u8>, _>(i)?.into()),
            _ => Value::String(text(row)?),
        },
        ColKind::Bytes => Value::Bytes(row.try_get_unchecked::<Vec<u8>, _>(i)?.into()),
        ColKind::Uuid => {
            if storage == "TEXT" {
                let s = text(row)?;
                Value::Uuid(uuid::Uuid::parse_str(&s).map_err(decode_err)?)
            } else {
                uuid_from_bytes(&row.try_get_unchecked::<Vec<u8>, _>(i)?)?
            }
        }
        ColKind::Json => parse_json(&text(row)?)?,
        ColKind::Date => parse_date(&text(row)?)?,
        ColKind::DateTime => {
            let s = text(row)?;
            Value::DateTime(
                parse_datetime_text(&s).ok_or_else(|| decode_err(format!("bad datetime `{s}`")))?,
            )
        }
    })
}

#[cfg(feature = "postgres")]
fn decode_pg(
    row: &sqlx::postgres::PgRow,
    i: usize,
    kind: ColKind,
) -> std::result::Result<Value, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_info = raw.type_info();
    let ty = type_info.name();
    // Decode the value already in hand, of a type just checked by name (no second lookup).
    macro_rules! dec {
        ($t:ty) => {
            <$t as sqlx::Decode<'_, sqlx::Postgres>>::decode(raw.clone())
                .map_err(sqlx::Error::Decode)?
        };
    }
    let int = |row: &sqlx::postgres::PgRow| -> std::result::Result<i64, sqlx::Error> {
        Ok(match ty {
            "INT2" => i64::from(dec!(i16)),
            "INT4" => i64::from(dec!(i32)),
            "INT8" => dec!(i64),
            "BOOL" => i64::from(dec!(bool)),
            _ => row
                .try_get_unchecked::<String, _>(i)?
                .parse()
                .map_err(decode_err)?,
        })
    };
    Ok(match kind {
        ColKind::Int => Value::Int(int(row)?),
        ColKind::UInt => {
            if matches!(ty, "INT2" | "INT4" | "INT8") {
                Value::from(int(row)?.max(0) as u64)
            } else {
                Value::from(
                    row.try_get_unchecked::<String, _>(i)?
                        .parse::<u64>()
                        .map_err(decode_err)?,
                )
            }
        }
        ColKind::Float => match ty {
            "FLOAT4" => Value::Float(f64::from(dec!(f32))),
            "FLOAT8" => Value::Float(dec!(f64)),
            _ => Value::Float(int(row)? as f64),
        },
        ColKind::Bool => match ty {
            "BOOL" => Value::Bool(row.try_get::<bool, _>(i)?),
            _ => Value::Bool(int(row)? != 0),
        },
        ColKind::Decimal => Value::Decimal(row.try_get_unchecked::<String, _>(i)?),
        ColKind::Text | ColKind::Other => Value::String(dec!(String)),
        ColKind::Dynamic => match ty {
            "INT2" | "INT4" | "INT8" => Value::Int(int(row)?),
            "FLOAT4" => Value::Float(f64::from(dec!(f32))),
            "FLOAT8" => Value::Float(dec!(f64)),
            "BOOL" => Value::Bool(dec!(bool)),
            "NUMERIC" => Value::Decimal(pg_numeric_text(
                raw.as_bytes().map_err(sqlx::Error::Decode)?,
            )?),
            "BYTEA" => Value::Bytes(row.try_get::<Vec<u8>, _>(i)?.into()),
            "UUID" => Value::Uuid(row.try_get::<uuid::Uuid, _>(i)?),
            "JSON" | "JSONB" => {
                Value::Json(row.try_get::<sqlx::types::Json<serde_json::Value>, _>(i)?.0)
            }
            "DATE" => Value::Date(row.try_get::<NaiveDate, _>(i)?),
            "TIMESTAMP" => Value::DateTime(row.try_get::<NaiveDateTime, _>(i)?),
            "TIMESTAMPTZ" => Value::DateTime(
                row.try_get::<chrono::DateTime<chrono::Utc>, _>(i)?
                    .naive_utc(),
            ),
            _ => Value::String(row.try_get_unchecked::<String, _>(i)?),
        },
        ColKind::Bytes => Value::Bytes(row.try_get::<Vec<u8>, _>(i)?.into()),
        ColKind::Uuid => match ty {
            "UUID" => Value::Uuid(row.try_get::<uuid::Uuid, _>(i)?),
            "BYTEA" => uuid_from_bytes(&row.try_get::<Vec<u8>, _>(i)?)?,
            _ => Value::Uuid(
                uuid::Uuid::parse_str(&row.try_get_unchecked::<String, _>(i)?)
                    .map_err(decode_err)?,
            ),
        },
        ColKind::Json => match ty {
            "JSON" | "JSONB" => {
                Value::Json(row.try_get::<sqlx::types::Json<serde_json::Value>, _>(i)?.0)
            }
            _ => parse_json(&row.try_get_unchecked::<String, _>(i)?)?,
        },
        ColKind::Date => Value::Date(row.try_get::<NaiveDate, _>(i)?),
        ColKind::DateTime => match ty {
            "TIMESTAMPTZ" => Value::DateTime(
                row.try_get::<chrono::DateTime<chrono::Utc>, _>(i)?
                    .naive_utc(),
            ),
            "DATE" => Value::DateTime(
                row.try_get::<NaiveDate, _>(i)?
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or_default(),
            ),
            _ => Value::DateTime(row.try_get::<NaiveDateTime, _>(i)?),
        },
    })
}

/// The text of a PostgreSQL `NUMERIC` in binary format: digit count, weight, sign and display
/// scale, then base-10000 digits.
#[cfg(feature = "postgres")]
fn pg_numeric_text(b: &[u8]) -> std::result::Result<String, sqlx::Error> {
    let word = |k: usize| -> std::result::Result<u16, sqlx::Error> {
        b.get(k..k + 2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]))
            .ok_or_else(|| decode_err("truncated NUMERIC"))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(2)? as i16);
    let sign = word(4)?;
    let dscale = usize::from(word(6)?);
    if sign == 0xC000 {
        return Ok("NaN".into());
    }
    let digits = (0..ndigits)
        .map(|k| word(8 + 2 * k))
        .collect::<std::result::Result<Vec<u16>, _>>()?;
    let digit = |k: i32| -> u16 {
        usize::try_from(k)
            .ok()
            .and_then(|k| digits.get(k).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for k in 0..=weight {
            if k == 0 {
                out.push_str(&digit(k).to_string());
            } else {
                out.push_str(&format!("{:04}", digit(k)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut k = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(k)));
            k += 1;
        }
        frac.truncate(dscale);
        out.push('.');
        out.push_str(&frac);
    }
    Ok(out)
}

#[cfg(feature = "mysql")]
fn decode_mysql(
    row: &sqlx::mysql::MySqlRow,
    i: usize,
    kind: ColKind,
) -> std::result::Result<Value, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_info = raw.type_info();
    let ty = type_info.name();
    let text = |row: &sqlx::mysql::MySqlRow| row.try_get_unchecked::<String, _>(i);
    let is_int = ty.contains("INT") || ty == "BOOLEAN" || ty == "YEAR";
    Ok(match kind {
        ColKind::Int | ColKind::Bool if is_int && !ty.contains("UNSIGNED") => {
            let v = row.try_get_unchecked::<i64, _>(i)?;
            if kind == ColKind::Bool {
                Value::Bool(v != 0)
            } else {
                Value::Int(v)
            }
        }
        ColKind::Int | ColKind::UInt | ColKind::Bool if is_int => {
            let v = row.try_get_unchecked::<u64, _>(i)?;
            if kind == ColKind::Bool {
                Value::Bool(v != 0)
            } else {
                Value::from(v)
            }
        }
        ColKind::Int | ColKind::UInt | ColKind::Bool => {
            let s = text(row)?;
            if kind == ColKind::Bool {
                Value::Bool(s.trim() != "0")
            } else if kind == ColKind::UInt {
                Value::from(s.trim().parse::<u64>().map_err(decode_err)?)
            } else {
                Value::Int(s.trim().parse::<i64>().map_err(decode_err)?)
            }
        }
        ColKind::Float => match ty {
            "FLOAT" => Value::Float(f64::from(row.try_get_unchecked::<f32, _>(i)?)),
            "DOUBLE" => Value::Float(row.try_get_unchecked::<f64, _>(i)?),
            _ => Value::Float(text(row)?.trim().parse::<f64>().map_err(decode_err)?),
        },
        ColKind::Decimal => Value::Decimal(text(row)?),
        ColKind::Text => Value::String(text(row)?),
        ColKind::Other => {
            if is_int {
                Value::Int(row.try_get_unchecked::<i64, _>(i)?)
            } else if ty.contains("BLOB") || ty.contains("BINARY") {
                Value::Bytes(row.try_get_unchecked::<Vec<u8>, _>(i)?.into())
            } else {
                Value::String(text(row)?)
            }
        }
        ColKind::Dynamic => {
            if is_int && ty.contains("UNSIGNED") {
                Value::from(row.try_get_unchecked::<u64, _>(i)?)
            } else if is_int {
                Value::Int(row.try_get_unchecked::<i64, _>(i)?)
            } else if ty == "DOUBLE" {
                Value::Float(row.try_get_unchecked::<f64, _>(i)?)
            } else if ty == "FLOAT" {
                Value::Float(f64::from(row.try_get_unchecked::<f32, _>(i)?))
            } else if ty.contains("DECIMAL") {
                Value::Decimal(text(row)?)
            } else if ty == "DATE" {
                Value::Date(row.try_get_unchecked::<NaiveDate, _>(i)?)
            } else if ty == "DATETIME" || ty == "TIMESTAMP" {
                Value::DateTime(row.try_get_unchecked::<NaiveDateTime, _>(i)?)
            } else if ty == "JSON" {
                parse_json(&text(row)?)?
            } else if ty.contains("BLOB") || ty.contains("BINARY") {
                Value::Bytes(row.try_get_unchecked::<Vec<u8>, _>(i)?.into())
            } else {
                Value::String(text(row)?)
            }
        }
        ColKind::Bytes => Value::Bytes(row.try_get_unchecked::<Vec<u8>, _>(i)?.into()),
        ColKind::Uuid => {
            let b = row.try_get_unchecked::<Vec<u8>, _>(i)?;
            if b.len() == 16 {
                uuid_from_bytes(&b)?
            } else {
                let s = String::from_utf8_lossy(&b).to_string();
                Value::Uuid(uuid::Uuid::parse_str(&s).map_err(decode_err)?)
            }
        }
        ColKind::Json => parse_json(&text(row)?)?,
        ColKind::Date => Value::Date(row.try_get_unchecked::<NaiveDate, _>(i)?),
        ColKind::DateTime => Value::DateTime(row.try_get_unchecked::<NaiveDateTime, _>(i)?),
    })
}

#[cfg(all(test, any(feature = "postgres", feature = "mysql")))]
mod tests {
    //! Pooled connections are handed out without a health-check round trip; these tests kill the
    //! server side of every pooled connection (`pg_terminate_backend`, `KILL`) from another
    //! connection and show that the next read, stream and insert still succeed.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::{Row, Tier, row};
    use dj_core::config::Secret;
    use futures::StreamExt as _;
    use sqlx::Connection as _;

    fn servers() -> Vec<(DatabaseBackend, String)> {
        let mut out = Vec::new();
        for (var, backend) in [
            ("DJ_TEST_POSTGRES_URL", DatabaseBackend::Postgresql),
            ("DJ_TEST_MYSQL_URL", DatabaseBackend::Mysql),
        ] {
            match std::env::var(var) {
                Ok(url) if !url.is_empty() => out.push((backend, url)),
                _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                    panic!("{var} is not set, and CI=true")
                }
                _ => eprintln!("SKIP backend: {var} is not set"),
            }
        }
        out
    }

    /// A fresh schema `name` with a Manual table `Item` (`id : int32`, `label : varchar(16)`).
    async fn item_table(conn: &Connection, name: &str) -> (crate::Schema, crate::Table) {
        let schema = conn.schema(name).await.unwrap();
        let t = schema
            .declare("Item", Tier::Manual, "id : int32\n---\nlabel : varchar(16)")
            .await
            .unwrap();
        (schema, t)
    }

    /// The server-side ids of every connection in `conn`'s pool, which is left with all of them
    /// idle (checked in again).
    async fn pooled_ids(conn: &Connection) -> Vec<i64> {
        let (size, text) = match &conn.inner.pool {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => (p.size(), "SELECT pg_backend_pid()"),
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => (p.size(), "SELECT CONNECTION_ID()"),
            #[allow(unreachable_patterns)]
            _ => unreachable!("server backends only"),
        };
        let mut held = Vec::new();
        let mut ids = Vec::new();
        let mut sql = Sql::new(conn.backend());
        sql.push(text);
        while held.len() < size.max(1) as usize {
            let mut c = conn.acquire().await.unwrap();
            match c.exec().fetch(&sql, &[ColKind::Int]).await {
                Ok(rows) => {
                    ids.push(rows[0][0].as_i64().unwrap());
                    held.push(c);
                }
                // Killed earlier and not used since: gone from the pool now.
                Err(Error::Database { source, .. }) if connection_lost(&source) => c.discard(),
                Err(e) => panic!("{e}"),
            }
        }
        drop(held);
        // Connections go back to the pool from a spawned task: wait until all are idle.
        for _ in 0..200 {
            let (idle, size) = match &conn.inner.pool {
                #[cfg(feature = "postgres")]
                Pool::Postgres(p) => (p.num_idle(), p.size()),
                #[cfg(feature = "mysql")]
                Pool::MySql(p) => (p.num_idle(), p.size()),
                #[allow(unreachable_patterns)]
                _ => unreachable!(),
            };
            if idle as u32 == size && size as usize >= ids.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        ids
    }

    /// Kill the server side of every pooled connection of `conn` from a connection of its own,
    /// and wait until the server has let them go. Returns how many were killed.
    async fn kill_pool(conn: &Connection, backend: DatabaseBackend, url: &str) -> usize {
        let ids = pooled_ids(conn).await;
        assert!(!ids.is_empty());
        match backend {
            #[cfg(feature = "postgres")]
            DatabaseBackend::Postgresql => {
                let mut killer = sqlx::PgConnection::connect(url).await.unwrap();
                for id in &ids {
                    let done: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
                        .bind(*id as i32)
                        .fetch_one(&mut killer)
                        .await
                        .unwrap();
                    assert!(done, "backend {id} was not terminated");
                }
                for _ in 0..500 {
                    let left: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                    )
                    .bind(ids.iter().map(|i| *i as i32).collect::<Vec<_>>())
                    .fetch_one(&mut killer)
                    .await
                    .unwrap();
                    if left == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                killer.close().await.unwrap();
            }
            #[cfg(feature = "mysql")]
            DatabaseBackend::Mysql => {
                let mut killer = sqlx::MySqlConnection::connect(url).await.unwrap();
                for id in &ids {
                    sqlx::raw_sql(AssertSqlSafe(format!("KILL {id}")))
                        .execute(&mut killer)
                        .await
                        .unwrap();
                }
                for _ in 0..500 {
                    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                    let left: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                        "SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID IN ({list})"
                    )))
                    .fetch_one(&mut killer)
                    .await
                    .unwrap();
                    if left == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                killer.close().await.unwrap();
            }
            #[allow(unreachable_patterns)]
            _ => unreachable!(),
        }
        ids.len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queries_succeed_after_the_server_kills_pooled_connections() {
        for (backend, url) in servers() {
            let mut config = Config::default();
            config.database.backend = backend;
            config.database.url = Some(Secret::new(url.clone()));
            let conn = Connection::open(&config).await.unwrap();
            let name = format!("djt_dblat_reconnect_{}", std::process::id());
            let (schema, t) = item_table(&conn, &name).await;
            t.insert1(&row! { "id" => 1, "label" => "one" })
                .await
                .unwrap();
            // Every pooled connection dead: each operation below finds out only by using one.
            let killed = kill_pool(&conn, backend, &url).await;
            eprintln!("{backend:?}: killed {killed} pooled connection(s)");
            let r: Row = t.restrict(row! { "id" => 1 }).fetch1().await.unwrap();
            assert_eq!(r["label"], "one".into());

            kill_pool(&conn, backend, &url).await;
            assert_eq!(t.len().await.unwrap(), 1);

            kill_pool(&conn, backend, &url).await;
            let streamed: Vec<Row> = t
                .query()
                .stream::<Row>()
                .map(|r| r.unwrap())
                .collect()
                .await;
            assert_eq!(streamed.len(), 1);

            kill_pool(&conn, backend, &url).await;
            t.insert1(&row! { "id" => 2, "label" => "two" })
                .await
                .unwrap();
            assert_eq!(t.len().await.unwrap(), 2);

            schema.drop().await.unwrap();
            conn.close().await;
        }
    }

    async fn open(backend: DatabaseBackend, url: &str) -> Connection {
        let mut config = Config::default();
        config.database.backend = backend;
        config.database.url = Some(Secret::new(url.to_string()));
        Connection::open(&config).await.unwrap()
    }

    /// The server-side id of the session a statement runs on.
    fn session_id_sql(backend: Backend) -> Sql {
        let mut sql = Sql::new(backend);
        sql.push(match backend {
            Backend::Postgres => "SELECT pg_backend_pid()",
            _ => "SELECT CONNECTION_ID()",
        });
        sql
    }

    async fn session_id(ex: &mut Exec<'_>, backend: Backend) -> i64 {
        let rows = ex
            .fetch(&session_id_sql(backend), &[ColKind::Int])
            .await
            .unwrap();
        rows[0][0].as_i64().unwrap()
    }

    /// A statement that runs for two seconds.
    fn slow_sql(backend: Backend) -> Sql {
        let mut sql = Sql::new(backend);
        sql.push(match backend {
            Backend::Postgres => "SELECT 1 FROM pg_sleep(2)",
            _ => "SELECT SLEEP(2)",
        });
        sql
    }

    /// `SELECT count(*) FROM t WHERE id = k`, on `ex`.
    async fn count_id(ex: &mut Exec<'_>, t: &crate::Table, k: i64) -> i64 {
        let b = ex_backend(ex);
        let mut sql = Sql::new(b);
        sql.push("SELECT count(*) FROM ")
            .push(&qualified(b, t.schema_name(), t.name()))
            .push(" WHERE ")
            .ident("id")
            .push(" = ")
            .bind(Some(Param::Int32(k as i32)), None);
        let rows = ex.fetch(&sql, &[ColKind::Int]).await.unwrap();
        rows[0][0].as_i64().unwrap()
    }

    fn ex_backend(ex: &Exec<'_>) -> Backend {
        match ex.raw {
            #[cfg(feature = "sqlite")]
            Raw::Sqlite(_) => Backend::Sqlite,
            #[cfg(feature = "postgres")]
            Raw::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "mysql")]
            Raw::MySql(_) => Backend::MySql,
        }
    }

    /// Check connections out of `conn` (all idle first) until the one of session `id` comes;
    /// the others are given back when it is returned.
    async fn checkout_session(conn: &Connection, id: i64) -> Option<(PConn, Vec<PConn>)> {
        pooled_ids(conn).await;
        let mut others = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut c = conn.acquire().await.unwrap();
            if session_id(&mut c.exec(), conn.backend()).await == id {
                return Some((c, others));
            }
            others.push(c);
        }
        None
    }

    fn parked(conn: &Connection) -> usize {
        match &conn.inner.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => p.lock().conns.len(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => p.lock().conns.len(),
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => p.lock().conns.len(),
        }
    }

    fn size(conn: &Connection) -> u32 {
        match &conn.inner.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => p.size(),
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => p.size(),
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => p.size(),
        }
    }

    /// The connection a clean operation used serves the next one, without a trip to the pool.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_used_connection_serves_the_next_operation() {
        for (backend, url) in servers() {
            let conn = open(backend, &url).await;
            let b = conn.backend();
            let first = conn
                .read(&session_id_sql(b), &[ColKind::Int])
                .await
                .unwrap();
            assert_eq!(
                parked(&conn),
                1,
                "{backend:?}: a clean read parks its connection"
            );
            for _ in 0..20 {
                let again = conn
                    .read(&session_id_sql(b), &[ColKind::Int])
                    .await
                    .unwrap();
                assert_eq!(
                    again, first,
                    "{backend:?}: another connection served a read"
                );
            }
            conn.close().await;
        }
    }

    /// A transaction dropped without a commit (after a write, and after a failed statement)
    /// leaves nothing open on its connection: the next user of that same session sees the
    /// rows as they were.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_dropped_without_commit_leaks_nothing_into_the_next_user() {
        for (backend, url) in servers() {
            let conn = open(backend, &url).await;
            let b = conn.backend();
            let name = format!("djt_dbstash_tx_{}", std::process::id());
            let (schema, t) = item_table(&conn, &name).await;
            t.insert1(&row! { "id" => 1, "label" => "one" })
                .await
                .unwrap();
            let mut insert = Sql::new(b);
            insert
                .push("INSERT INTO ")
                .push(&qualified(b, t.schema_name(), t.name()))
                .push(" VALUES (")
                .bind(Some(Param::Int32(7)), None)
                .push(", ")
                .bind(Some(Param::Text("seven".into())), None)
                .push(")");

            for fail_too in [false, true] {
                let mut tx = conn.begin_tx().await.unwrap();
                let id = session_id(&mut tx.exec(), b).await;
                tx.exec().execute(&insert).await.unwrap();
                assert_eq!(count_id(&mut tx.exec(), &t, 7).await, 1);
                if fail_too {
                    // A duplicate key: the statement fails, the transaction stays open.
                    assert!(tx.exec().execute(&insert).await.is_err());
                }
                drop(tx);

                let (mut same, others) = checkout_session(&conn, id)
                    .await
                    .unwrap_or_else(|| panic!("{backend:?}: session {id} was not reused"));
                let mut ex = same.exec();
                assert_eq!(
                    count_id(&mut ex, &t, 7).await,
                    0,
                    "{backend:?}: the dropped transaction is still open on session {id}"
                );
                // Not in a transaction: a write here is visible elsewhere at once.
                ex.execute(&insert).await.unwrap();
                drop(same);
                drop(others);
                let mut elsewhere = Sql::new(b);
                elsewhere
                    .push("SELECT label FROM ")
                    .push(&qualified(b, t.schema_name(), t.name()))
                    .push(" WHERE ")
                    .ident("id")
                    .push(" = 7");
                let rows = conn.read(&elsewhere, &[ColKind::Text]).await.unwrap();
                assert_eq!(
                    rows.len(),
                    1,
                    "{backend:?}: the autocommitted row is not there"
                );
                let mut del = Sql::new(b);
                del.push("DELETE FROM ")
                    .push(&qualified(b, t.schema_name(), t.name()))
                    .push(" WHERE ")
                    .ident("id")
                    .push(" = 7");
                conn.acquire()
                    .await
                    .unwrap()
                    .exec()
                    .execute(&del)
                    .await
                    .unwrap();
            }
            schema.drop().await.unwrap();
            conn.close().await;
        }
    }

    /// A statement whose future is dropped while the server is still running it (a read, and
    /// a statement inside a transaction) takes its connection with it: that session never
    /// serves another statement, and the statements after it get their own results.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_statement_cancelled_in_flight_never_reaches_the_next_user() {
        for (backend, url) in servers() {
            let conn = open(backend, &url).await;
            let b = conn.backend();
            let name = format!("djt_dbstash_cancel_{}", std::process::id());
            let (schema, t) = item_table(&conn, &name).await;

            // A read outside any transaction: the parked connection runs it.
            let id = conn
                .read(&session_id_sql(b), &[ColKind::Int])
                .await
                .unwrap()[0][0]
                .as_i64()
                .unwrap();
            let slow = slow_sql(b);
            let cancelled = tokio::time::timeout(
                Duration::from_millis(200),
                conn.read(&slow, &[ColKind::Int]),
            )
            .await;
            assert!(
                cancelled.is_err(),
                "{backend:?}: the slow read was not cancelled"
            );

            // A statement inside a transaction, after a write.
            let mut tx = conn.begin_tx().await.unwrap();
            let tx_id = session_id(&mut tx.exec(), b).await;
            let mut insert = Sql::new(b);
            insert
                .push("INSERT INTO ")
                .push(&qualified(b, t.schema_name(), t.name()))
                .push(" VALUES (")
                .bind(Some(Param::Int32(9)), None)
                .push(", 'nine')");
            tx.exec().execute(&insert).await.unwrap();
            let in_tx = tokio::time::timeout(
                Duration::from_millis(200),
                tx.exec().fetch(&slow, &[ColKind::Int]),
            )
            .await;
            assert!(
                in_tx.is_err(),
                "{backend:?}: the slow statement was not cancelled"
            );
            drop(tx);

            for k in 0..20i64 {
                let mut sql = Sql::new(b);
                sql.push("SELECT ").bind(Some(Param::Int(k)), None);
                let rows = conn.read(&sql, &[ColKind::Int]).await.unwrap();
                assert_eq!(rows[0][0].as_i64(), Some(k), "{backend:?}: a stale result");
            }
            let live = pooled_ids(&conn).await;
            assert!(
                !live.contains(&id) && !live.contains(&tx_id),
                "{backend:?}: a cancelled session ({id}, {tx_id}) is back in use: {live:?}"
            );
            let mut count = Sql::new(b);
            count
                .push("SELECT count(*) FROM ")
                .push(&qualified(b, t.schema_name(), t.name()));
            let rows = conn.read(&count, &[ColKind::Int]).await.unwrap();
            assert_eq!(
                rows[0][0].as_i64(),
                Some(0),
                "{backend:?}: the write committed"
            );
            schema.drop().await.unwrap();
            conn.close().await;
        }
    }

    /// Many operations at once on more tasks than connections: none waits forever (a parked
    /// connection serves an operation waiting on the pool), and the pool's limit bounds every
    /// connection, parked ones included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pool_limit_bounds_parked_and_busy_connections() {
        for (backend, url) in servers() {
            let conn = open(backend, &url).await;
            let b = conn.backend();
            let mut short = Sql::new(b);
            short.push(match b {
                Backend::Postgres => "SELECT 1 FROM pg_sleep(0.002)",
                _ => "SELECT SLEEP(0.002)",
            });
            let peak = Arc::new(std::sync::atomic::AtomicU32::new(0));
            let tasks: Vec<_> = (0..4 * MAX_CONNECTIONS)
                .map(|_| {
                    let conn = conn.clone();
                    let short = short.clone();
                    let peak = Arc::clone(&peak);
                    tokio::spawn(async move {
                        for _ in 0..10 {
                            conn.read(&short, &[ColKind::Int]).await.unwrap();
                            peak.fetch_max(size(&conn), std::sync::atomic::Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(tasks))
                .await
                .unwrap_or_else(|_| panic!("{backend:?}: operations wait forever"))
                .into_iter()
                .for_each(|r| r.unwrap());
            let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
            assert!(
                (1..=MAX_CONNECTIONS).contains(&peak),
                "{backend:?}: {peak} connections"
            );
            assert!(parked(&conn) as u32 <= size(&conn));
            conn.close().await;
        }
    }

    #[test]
    fn lost_connections_are_told_from_failed_statements() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        assert!(connection_lost(&io));
        assert!(!connection_lost(&sqlx::Error::RowNotFound));
        assert!(!connection_lost(&sqlx::Error::Protocol("bad".into())));
    }
}
