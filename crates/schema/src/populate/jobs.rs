//! DataJoint 2.3.5's per-table job queue `~~<table>`: the same definition and catalog, so Rust
//! and Python workers reserve keys from one queue.

use std::sync::Arc;
use std::time::Duration;

use crate::Backend;
use dj_core::value::Value;
use indexmap::IndexMap;

use crate::Row;
use crate::db::{Param, Sql};
use crate::dialect::dialect;
use crate::error::{Error, Result, classify_db};
use crate::heading::ColKind;
use crate::query::Query;
use crate::restrict::Restriction;
use crate::table::{InsertOptions, Table};

/// DataJoint's bound on `error_message`.
pub const ERROR_MESSAGE_LENGTH: usize = 2047;
/// What replaces the end of a longer message.
pub const TRUNCATION_APPENDIX: &str = "...truncated";

/// The status of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Waiting for a worker.
    Pending,
    /// Reserved by a worker.
    Reserved,
    /// Made (kept only with `keep_completed`).
    Success,
    /// Its make failed.
    Error,
    /// Skipped by populate.
    Ignore,
}

impl JobStatus {
    /// The enum value in the job table.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Reserved => "reserved",
            JobStatus::Success => "success",
            JobStatus::Error => "error",
            JobStatus::Ignore => "ignore",
        }
    }

    /// Every status, in the enum's order.
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Pending,
        JobStatus::Reserved,
        JobStatus::Success,
        JobStatus::Error,
        JobStatus::Ignore,
    ];
}

/// What [`Jobs::refresh`] changed (DataJoint's `added`, `removed`, `orphaned`, `re_pended`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// New pending jobs.
    pub added: u64,
    /// Jobs removed because their keys left the key source.
    pub removed: u64,
    /// Reservations older than the orphan timeout, put back as pending.
    pub orphaned: u64,
    /// Completed jobs put back (only with `keep_completed`; always 0 here).
    pub re_pended: u64,
}

/// The options of [`Jobs::refresh_with`] (DataJoint's `refresh` arguments).
#[derive(Clone, Debug, Default)]
pub struct RefreshOptions {
    /// The key source (default: the target's default key source).
    pub key_source: Option<Query>,
    /// Restrictions of the key source for the keys to add (AND); cleanup always judges
    /// against the whole key source.
    pub restrictions: Vec<Restriction>,
    /// Seconds from now (by the server's clock) until new jobs may be reserved; may be negative.
    pub delay: f64,
    /// Priority of new jobs (default `jobs.default_priority`); lower runs first.
    pub priority: Option<i64>,
    /// Seconds after which jobs whose keys left the key source are removed (default
    /// `jobs.stale_timeout`; 0 skips the age-based cleanup).
    pub stale_timeout: Option<u64>,
    /// Seconds after which a reservation is considered orphaned and put back as pending
    /// (default: never).
    pub orphan_timeout: Option<f64>,
}

/// Truncate a message as DataJoint does for `error_message`.
pub fn truncate_error_message(message: &str) -> String {
    if message.chars().count() <= ERROR_MESSAGE_LENGTH {
        return message.to_string();
    }
    let keep = ERROR_MESSAGE_LENGTH - TRUNCATION_APPENDIX.len();
    let mut out: String = message.chars().take(keep).collect();
    out.push_str(TRUNCATION_APPENDIX);
    out
}

/// The job queue of a Computed or Imported table (DataJoint's `Table.jobs`): the hidden table
/// `~~<name>` beside it, declared on first use with DataJoint 2.3.5's definition.
#[derive(Clone, Debug)]
pub struct Jobs {
    target: Table,
    table: Table,
    pk: Vec<String>,
    /// The code version reservations record (`jobs.version_method`), computed on first use.
    version: Arc<tokio::sync::OnceCell<String>>,
}

/// The definition DataJoint 2.3.5 gives the job table of `target`.
fn definition(target: &Table) -> Result<(String, Vec<String>)> {
    let h = target.heading();
    let mut fk_attrs: Vec<&str> = Vec::new();
    for fk in &h.foreign_keys {
        let primary = fk
            .attr_map
            .iter()
            .all(|(c, _)| h.attribute(c).is_some_and(|a| a.in_key));
        if primary {
            fk_attrs.extend(fk.attr_map.iter().map(|(c, _)| c.as_str()));
        }
    }
    let mut lines = Vec::new();
    let mut pk = Vec::new();
    for name in h.primary_key() {
        if !fk_attrs.contains(&name) {
            tracing::warn!(
                table = %target.full_name(),
                attribute = name,
                "ignoring a primary-key attribute not from a foreign key in the job table"
            );
            continue;
        }
        let Some(a) = h.attribute(name) else { continue };
        lines.push(format!("{name} : {}", job_key_type(a)));
        pk.push(name.to_string());
    }
    if pk.is_empty() {
        return Err(Error::Refused {
            table: target.full_name(),
            message: "cannot create a job table: no primary-key attributes come from foreign keys"
                .into(),
        });
    }
    let def = format!(
        "# Job queue for {full}\n{pk}\n---\n\
         status          : enum('pending', 'reserved', 'success', 'error', 'ignore')\n\
         priority        : int8\n\
         created_time=CURRENT_TIMESTAMP(3) : datetime(3)\n\
         scheduled_time=CURRENT_TIMESTAMP(3) : datetime(3)\n\
         reserved_time=null  : datetime(3)\n\
         completed_time=null : datetime(3)\n\
         duration=null   : float64\n\
         error_message=\"\" : varchar({ERROR_MESSAGE_LENGTH})\n\
         error_stack=null : <blob>\n\
         user=\"\"         : varchar(255)\n\
         host=\"\"         : varchar(255)\n\
         pid=0           : int32\n\
         connection_id=0 : int64\n\
         version=\"\"      : varchar(64)\n\
         INDEX (status, priority, scheduled_time)\n",
        full = quoted_full(target),
        pk = lines.join("\n"),
    );
    Ok((def, pk))
}

/// The type DataJoint 2.3.5 declares a job-table key attribute with: its original type when the
/// target's column records one (`:uuid:` on an inherited uuid), otherwise the column's SQL type
/// as a native type (inherited columns carry no `:type:` marker), so the job table's column has
/// the target's SQL type and no marker, as when DataJoint declares it.
fn job_key_type(a: &crate::heading::Attribute) -> String {
    use dj_core::typespec::{CoreType, TypeSpec};
    let marked = !a.inherited || matches!(a.spec, TypeSpec::Core(CoreType::Uuid));
    if marked || a.sql_type.is_empty() || a.sql_type.contains(['"', '`', '.']) {
        a.spec.to_string()
    } else {
        a.sql_type.clone()
    }
}

/// DataJoint's `full_table_name` (backend-quoted `schema`.`table`).
fn quoted_full(t: &Table) -> String {
    crate::db::qualified(t.connection().backend(), t.schema_name(), t.name())
}

/// The columns a job table must have.
const JOB_COLUMNS: [&str; 14] = [
    "status",
    "priority",
    "created_time",
    "scheduled_time",
    "reserved_time",
    "completed_time",
    "duration",
    "error_message",
    "error_stack",
    "user",
    "host",
    "pid",
    "connection_id",
    "version",
];

fn now_expr(backend: Backend) -> &'static str {
    dialect(backend).now_sql()
}

fn connection_id_expr(backend: Backend) -> &'static str {
    dialect(backend).connection_id_sql()
}

fn user_expr(backend: Backend) -> &'static str {
    dialect(backend).current_user_sql()
}

/// This machine's name, read once per process (it is written into every reservation).
fn hostname() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::env::var("COMPUTERNAME").ok())
            .unwrap_or_default()
    })
}

impl Jobs {
    /// The job queue of `target`, declaring `~~<name>` when it does not exist yet; an error
    /// when an existing one has another shape.
    pub async fn new(target: &Table) -> Result<Jobs> {
        super::check_tier(target)?;
        let (def, pk) = definition(target)?;
        let name = format!("~~{}", target.name().trim_start_matches('_'));
        let schema = target
            .connection()
            .existing_schema(target.schema_name())
            .await?;
        let table = schema.declare_named(&name, &def, None).await?;
        let h = table.heading();
        let table_pk: Vec<&str> = h.primary_key();
        let missing: Vec<&str> = JOB_COLUMNS
            .iter()
            .copied()
            .filter(|c| h.attribute(c).is_none())
            .collect();
        if table_pk != pk.iter().map(String::as_str).collect::<Vec<_>>() || !missing.is_empty() {
            return Err(Error::Refused {
                table: table.full_name(),
                message: format!(
                    "the job table has another shape than DataJoint's: primary key {table_pk:?} \
                     (expected {pk:?}){}",
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!(", missing columns {missing:?}")
                    }
                ),
            });
        }
        Ok(Jobs {
            target: target.clone(),
            table,
            pk,
            version: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// The code version this worker records in the jobs it reserves: empty unless
    /// `jobs.version_method` asks for one (see [`job_version`](super::job_version)); computed
    /// once per `Jobs`.
    pub async fn version(&self) -> &str {
        let method = self.table.connection().config().jobs.version_method;
        self.version
            .get_or_init(|| super::version::job_version_async(method))
            .await
    }

    /// The job table itself (query it like any table: `jobs.table().restrict(..)`).
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Jobs of one status.
    pub fn with_status(&self, status: JobStatus) -> Query {
        self.table.restrict(Restriction::cond(
            "status",
            crate::restrict::Op::Eq,
            status.as_str(),
        ))
    }

    fn backend(&self) -> Backend {
        self.table.connection().backend()
    }

    /// The job-table key of `key` (its job primary-key attributes).
    fn job_key(&self, key: &Row) -> Result<Row> {
        let mut out = Row::new();
        for k in &self.pk {
            let v = key.get(k).ok_or_else(|| Error::Refused {
                table: self.table.full_name(),
                message: format!("the key lacks the job attribute `{k}`"),
            })?;
            out.insert(k.clone(), v.clone());
        }
        Ok(out)
    }

    /// `WHERE <key>` against the job table.
    fn key_where(&self, key: &Row) -> Result<Sql> {
        let key = self.job_key(key)?;
        self.table
            .restrict(key)
            .table_conditions()?
            .ok_or_else(|| Error::Refused {
                table: self.table.full_name(),
                message: "an empty job key".into(),
            })
    }

    async fn execute(&self, sql: &Sql) -> Result<u64> {
        let mut pc = self.table.connection().acquire().await?;
        pc.exec()
            .execute(sql)
            .await
            .map_err(|e| classify_db(&self.table.full_name(), e))
    }

    /// The database server's clock.
    async fn server_now(&self) -> Result<chrono::NaiveDateTime> {
        let backend = self.backend();
        let mut sql = Sql::new(backend);
        sql.push("SELECT ").push(now_expr(backend));
        let mut pc = self.table.connection().acquire().await?;
        let rows = pc.exec().fetch(&sql, &[ColKind::DateTime]).await?;
        match rows.first().and_then(|r| r.first()) {
            Some(Value::DateTime(d)) => Ok(*d),
            Some(Value::String(s)) => {
                crate::db::parse_datetime_text(s).ok_or_else(|| Error::Refused {
                    table: self.table.full_name(),
                    message: format!("the server clock reads {s:?}"),
                })
            }
            other => Err(Error::Refused {
                table: self.table.full_name(),
                message: format!("the server clock reads {other:?}"),
            }),
        }
    }

    /// Refresh with the target's default key source, no delay and no orphan timeout (priority
    /// and stale timeout from the `jobs` configuration: 5 and 3600 s by default).
    pub async fn refresh(&self) -> Result<RefreshReport> {
        self.refresh_with(RefreshOptions::default()).await
    }

    /// DataJoint's `refresh(*restrictions, delay, priority, stale_timeout, orphan_timeout)`:
    ///
    /// 1. add `(key_source & restrictions) - target - jobs` as pending, with `priority`
    ///    (default `jobs.default_priority`), schedulable `delay` seconds from now by the
    ///    server's clock (DataJoint's populate passes -1);
    /// 2. with `jobs.keep_completed`, put completed jobs whose rows left the target back as
    ///    pending;
    /// 3. remove jobs whose keys left the (unrestricted) key source: `success`/`error` ones
    ///    whose rows are not in the target at any age, the others except `ignore` once older
    ///    than the stale timeout (default `jobs.stale_timeout`; 0 skips this);
    /// 4. put reservations older than `orphan_timeout` seconds back as pending (the keys of
    ///    killed workers).
    pub async fn refresh_with(&self, opts: RefreshOptions) -> Result<RefreshReport> {
        let full_ks = match &opts.key_source {
            Some(q) => q.clone(),
            None => super::default_key_source(&self.target).await?,
        };
        let key_source = if opts.restrictions.is_empty() {
            full_ks.clone()
        } else {
            full_ks.restrict(Restriction::And(opts.restrictions.clone()))
        };
        let key_source = &key_source;
        let (priority, delay, orphan_timeout) = (opts.priority, opts.delay, opts.orphan_timeout);
        let settings = &self.table.connection().config().jobs;
        let priority = priority.unwrap_or(i64::from(settings.default_priority));
        let stale_timeout = opts.stale_timeout.unwrap_or(settings.stale_timeout);
        let keep_completed = settings.keep_completed;
        let mut report = RefreshReport::default();
        let new_keys = key_source
            .exclude(self.target.query())
            .exclude_unchecked(self.table.query())
            .proj(Vec::<String>::new())
            .keys()
            .await?;
        if !new_keys.is_empty() {
            let scheduled =
                self.server_now().await? + chrono::Duration::milliseconds((delay * 1000.0) as i64);
            let rows: Vec<Row> = new_keys
                .iter()
                .map(|k| {
                    let mut r = self.job_key(k)?;
                    r.insert("status".into(), "pending".into());
                    r.insert("priority".into(), priority.into());
                    r.insert("scheduled_time".into(), scheduled.into());
                    Ok(r)
                })
                .collect::<Result<_>>()?;
            report.added = self
                .table
                .insert_with(
                    &rows,
                    InsertOptions {
                        skip_duplicates: true,
                        ..InsertOptions::default()
                    },
                )
                .await?;
        }
        if keep_completed {
            // Completed jobs whose rows left the target are made again.
            let repend = self
                .with_status(JobStatus::Success)
                .restrict_unchecked(key_source)
                .exclude_unchecked(self.target.query())
                .keys()
                .await?;
            for key in repend {
                self.delete_keys(vec![key.clone()]).await?;
                let mut r = key;
                r.insert("status".into(), "pending".into());
                r.insert("priority".into(), priority.into());
                self.table.insert1(&r).await?;
                report.re_pended += 1;
            }
        }
        // Vanished keys: judged against the unrestricted key source (jobs outside the
        // restrictions, reserved by other workers say, are not stale).
        let vanished = self.table.query().exclude_unchecked(full_ks);
        let done_gone = vanished
            .restrict(Restriction::Sql("status in ('success', 'error')".into()))
            .exclude_unchecked(self.target.query());
        report.removed += self.delete_keys(done_gone.keys().await?).await?;
        if stale_timeout > 0 {
            let stale = vanished.restrict(Restriction::Sql("status <> 'ignore'".into()));
            let cutoff = self.server_now().await?
                - chrono::Duration::seconds(i64::try_from(stale_timeout).unwrap_or(i64::MAX));
            let stale = stale.restrict(Restriction::cond(
                "created_time",
                crate::restrict::Op::Lt,
                cutoff,
            ));
            report.removed += self.delete_keys(stale.keys().await?).await?;
        }
        if let Some(t) = orphan_timeout.filter(|t| *t > 0.0) {
            let cutoff =
                self.server_now().await? - chrono::Duration::milliseconds((t * 1000.0) as i64);
            let orphans = self
                .with_status(JobStatus::Reserved)
                .restrict(Restriction::cond(
                    "reserved_time",
                    crate::restrict::Op::Lt,
                    cutoff,
                ))
                .keys()
                .await?;
            for key in orphans {
                self.delete_keys(vec![key.clone()]).await?;
                let mut r = key;
                r.insert("status".into(), "pending".into());
                r.insert("priority".into(), priority.into());
                self.table.insert1(&r).await?;
                report.orphaned += 1;
            }
        }
        Ok(report)
    }

    async fn delete_keys(&self, keys: Vec<Row>) -> Result<u64> {
        let mut n = 0;
        for key in keys {
            let mut sql = Sql::new(self.backend());
            sql.push("DELETE FROM ").push(&self.table.qualified());
            sql.push(" WHERE ");
            sql.append(self.key_where(&key)?);
            n += self.execute(&sql).await?;
        }
        Ok(n)
    }

    /// Reserve `key` for this worker: one `UPDATE` that succeeds only while the job is
    /// `pending` and its scheduled time has come. Returns whether this worker got it.
    pub async fn reserve(&self, key: &Row) -> Result<bool> {
        let mut pc = self.table.connection().acquire().await?;
        self.reserve_on(&mut pc, key).await
    }

    /// [`reserve`](Self::reserve) on a connection taken from the pool already (populate then
    /// opens the make's transaction on that same connection: one trip to the pool per job).
    pub(crate) async fn reserve_on(&self, pc: &mut crate::db::PConn, key: &Row) -> Result<bool> {
        let version = self.version().await.to_string();
        let backend = self.backend();
        let q = |n: &str| crate::db::quote(backend, n);
        let mut sql = Sql::new(backend);
        sql.push("UPDATE ")
            .push(&self.table.qualified())
            .push(" SET ")
            .push(&q("status"))
            .push(" = 'reserved', ")
            .push(&q("host"))
            .push(" = ")
            .bind(Some(Param::Text(hostname().to_string())), None)
            .push(", ")
            .push(&q("pid"))
            .push(" = ")
            .bind(Some(Param::Int(i64::from(std::process::id()))), None)
            .push(", ")
            .push(&q("connection_id"))
            .push(" = ")
            .push(connection_id_expr(backend))
            .push(", ")
            .push(&q("user"))
            .push(" = ")
            .push(user_expr(backend))
            .push(", ")
            .push(&q("version"))
            .push(" = ")
            .bind(Some(Param::Text(version)), None)
            .push(", ")
            .push(&q("reserved_time"))
            .push(" = ")
            .push(now_expr(backend));
        // The reservation's commit need not wait for the disk (PostgreSQL): it is visible to
        // every worker as soon as it commits, and a server crash that loses it leaves the job
        // as it was before (the worker's make, on the same server, cannot have committed). A
        // make that commits afterwards is durable, and flushes the reservation with it.
        if let Some(from) = dialect(backend).relaxed_commit_from_sql() {
            sql.push(from);
        }
        sql.push(" WHERE ");
        sql.append(self.key_where(key)?);
        sql.push(" AND ")
            .push(&q("status"))
            .push(" = 'pending' AND ")
            .push(&q("scheduled_time"))
            .push(" <= ")
            .push(now_expr(backend));
        let n = pc
            .exec()
            .execute(&sql)
            .await
            .map_err(|e| classify_db(&self.table.full_name(), e))?;
        Ok(n == 1)
    }

    /// Mark `key` done: its job row is deleted, or with `jobs.keep_completed` set to `success`
    /// with its completion time and duration (as DataJoint).
    pub async fn complete(&self, key: &Row, duration: Duration) -> Result<()> {
        let sql = self.complete_sql(key, duration)?;
        self.execute(&sql).await.map(|_| ())
    }

    /// [`complete`](Self::complete) inside the make's transaction, so the job is done exactly
    /// when the make's rows commit (one commit fewer per job than DataJoint, and no moment when
    /// the rows are in but the job still reads `reserved`).
    pub(crate) async fn complete_in(
        &self,
        tx: &crate::transaction::Transaction,
        key: &Row,
        duration: Duration,
    ) -> Result<()> {
        let sql = self.complete_sql(key, duration)?;
        tx.execute(&sql, &self.table.full_name()).await.map(|_| ())
    }

    fn complete_sql(&self, key: &Row, duration: Duration) -> Result<Sql> {
        let backend = self.backend();
        let q = |n: &str| crate::db::quote(backend, n);
        let mut sql = Sql::new(backend);
        if self.table.connection().config().jobs.keep_completed {
            sql.push("UPDATE ")
                .push(&self.table.qualified())
                .push(" SET ")
                .push(&q("status"))
                .push(" = 'success', ")
                .push(&q("completed_time"))
                .push(" = ")
                .push(now_expr(backend))
                .push(", ")
                .push(&q("duration"))
                .push(" = ")
                .bind(Some(Param::Float(duration.as_secs_f64())), None)
                .push(" WHERE ");
        } else {
            sql.push("DELETE FROM ")
                .push(&self.table.qualified())
                .push(" WHERE ");
        }
        sql.append(self.key_where(key)?);
        Ok(sql)
    }

    /// Mark `key` failed with its message (truncated as DataJoint does) and stack.
    pub async fn error(&self, key: &Row, message: &str, stack: &str) -> Result<()> {
        let now = self.server_now().await?;
        let mut r = self.job_key(key)?;
        r.insert("status".into(), "error".into());
        r.insert("completed_time".into(), now.into());
        r.insert(
            "error_message".into(),
            truncate_error_message(message).into(),
        );
        r.insert("error_stack".into(), stack.into());
        self.table.update1(&r).await
    }

    /// Mark `key` to be skipped (inserting it when it has no job yet).
    pub async fn ignore(&self, key: &Row) -> Result<()> {
        let k = self.job_key(key)?;
        if self.table.restrict(k.clone()).exists().await? {
            let mut r = k;
            r.insert("status".into(), "ignore".into());
            self.table.update1(&r).await
        } else {
            let mut r = k;
            r.insert("status".into(), "ignore".into());
            let p = self.table.connection().config().jobs.default_priority;
            r.insert("priority".into(), i64::from(p).into());
            self.table.insert1(&r).await
        }
    }

    /// Counts by status, and `total` (DataJoint's `jobs.progress()`).
    pub async fn progress(&self) -> Result<IndexMap<String, u64>> {
        let mut out = IndexMap::new();
        let mut total = 0;
        for s in JobStatus::ALL {
            let n = self.with_status(s).len().await?;
            total += n;
            out.insert(s.as_str().to_string(), n);
        }
        out.insert("total".into(), total);
        Ok(out)
    }

    /// Pending keys whose time has come, by priority then scheduled time, at most `limit`;
    /// only keys of `todo` when given, only priorities up to `priority` when given (as
    /// DataJoint's distributed populate).
    pub(crate) async fn pending_keys(
        &self,
        todo: Option<&Query>,
        priority: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<Row>> {
        let now = self.server_now().await?;
        let mut q = self
            .with_status(JobStatus::Pending)
            .restrict(Restriction::cond(
                "scheduled_time",
                crate::restrict::Op::Le,
                now,
            ));
        if let Some(todo) = todo {
            q = q.restrict_unchecked(todo);
        }
        if let Some(p) = priority {
            q = q.restrict(Restriction::cond("priority", crate::restrict::Op::Le, p));
        }
        let q = q.top(limit.map(|n| n as u64), ["priority", "scheduled_time"], 0);
        q.keys().await
    }
}

/// Whether `target` has DataJoint's job-metadata columns (`jobs.add_job_metadata`).
pub(crate) fn has_job_metadata(target: &Table) -> bool {
    target.heading().attribute("_job_start_time").is_some()
}

/// Fill `_job_start_time`, `_job_duration`, `_job_version` of the row of `key` when `target`
/// declares them, inside the make's transaction.
pub(crate) async fn update_job_metadata(
    tx: &crate::transaction::Transaction,
    target: &Table,
    key: &Row,
    start: chrono::NaiveDateTime,
    duration: Duration,
    version: &str,
) -> Result<()> {
    let h = target.heading();
    if !has_job_metadata(target) {
        return Ok(());
    }
    let backend = target.connection().backend();
    let q = |n: &str| crate::db::quote(backend, n);
    let pk: Row = h
        .primary_key()
        .iter()
        .filter_map(|k| key.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    let Some(w) = target.restrict(pk).table_conditions()? else {
        return Ok(());
    };
    let mut sql = Sql::new(backend);
    sql.push("UPDATE ")
        .push(&target.qualified())
        .push(" SET ")
        .push(&q("_job_start_time"))
        .push(" = ")
        .bind(Some(Param::DateTime(start)), None)
        .push(", ")
        .push(&q("_job_duration"))
        .push(" = ")
        .bind(Some(Param::Float(duration.as_secs_f64())), None)
        .push(", ")
        .push(&q("_job_version"))
        .push(" = ")
        .bind(Some(Param::Text(version.to_string())), None)
        .push(" WHERE ");
    sql.append(w);
    tx.execute(&sql, &target.full_name()).await.map(|_| ())
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    //! The reservation's relaxed commit (PostgreSQL) must hold for the reservation's own
    //! statement only: a make committed afterwards on the same connection must be durable.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::heading::ColKind;
    use crate::{Connection, Tier, row};
    use dj_core::config::Secret;

    /// `synchronous_commit` as the session of `pc` sees it, outside any transaction.
    async fn session_setting(pc: &mut crate::db::PConn, backend: Backend) -> String {
        let mut sql = Sql::new(backend);
        sql.push("SELECT current_setting('synchronous_commit')");
        let rows = pc.exec().fetch(&sql, &[ColKind::Text]).await.unwrap();
        rows[0][0].as_str().unwrap().to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reservation_relaxes_only_its_own_commit() {
        let url = match std::env::var("DJ_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("DJ_TEST_POSTGRES_URL is not set, and CI=true")
            }
            _ => return eprintln!("SKIP: DJ_TEST_POSTGRES_URL is not set"),
        };
        let mut config = dj_config::Config::default();
        config.database.backend = dj_config::DatabaseBackend::Postgresql;
        config.database.url = Some(Secret::new(url));
        let conn = Connection::open(&config).await.unwrap();
        let name = format!("djt_jobs_relaxed_{}", std::process::id());
        let schema = conn.schema(&name).await.unwrap();
        let item = schema
            .declare("Item", Tier::Manual, "id : int32")
            .await
            .unwrap();
        let result = schema
            .declare("Result", Tier::Computed, "-> Item\n---\ny : int32")
            .await
            .unwrap();
        item.insert(&[row! {"id" => 1}, row! {"id" => 2}])
            .await
            .unwrap();
        let jobs = Jobs::new(&result).await.unwrap();
        assert_eq!(jobs.refresh().await.unwrap().added, 2);
        let backend = conn.backend();

        let mut pc = conn.acquire().await.unwrap();
        assert_eq!(session_setting(&mut pc, backend).await, "on");
        assert!(jobs.reserve_on(&mut pc, &row! {"id" => 1}).await.unwrap());
        // The reservation is committed and visible to others...
        assert_eq!(jobs.progress().await.unwrap()["reserved"], 1);
        // ...and the connection's session still commits durably.
        assert_eq!(session_setting(&mut pc, backend).await, "on");
        // The same inside the make's transaction opened on that connection.
        let mut tx = pc.begin().await.unwrap();
        let mut sql = Sql::new(backend);
        sql.push("SELECT current_setting('synchronous_commit')");
        let rows = tx.exec().fetch(&sql, &[ColKind::Text]).await.unwrap();
        assert_eq!(rows[0][0].as_str(), Some("on"));
        tx.rollback().await.unwrap();
        // A key already reserved is not reserved again.
        let mut pc = conn.acquire().await.unwrap();
        assert!(!jobs.reserve_on(&mut pc, &row! {"id" => 1}).await.unwrap());
        assert_eq!(session_setting(&mut pc, backend).await, "on");
        drop(pc);
        schema.drop().await.unwrap();
        conn.close().await;
    }
}
