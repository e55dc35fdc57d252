//! The [`Table`] handle and [`Query`]: insert, fetch, restrict, delete, update, drop.

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::Backend;
use dj_core::codec::{CodecContext, ResolvedType};
use dj_core::typespec::{CoreType, TypeSpec};
use dj_core::value::Value;
use futures::{StreamExt, TryStreamExt};
use indexmap::IndexMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Row;
use crate::catalog;
use crate::coerce::to_param;
use crate::db::{Connection, Exec, Param, Sql, Tx, literal, qualified, quote};
use crate::delete::Graph;
use crate::dialect::dialect;
use crate::error::{Error, Result, classify_db};
use crate::heading::{ColKind, Heading, col_kind};
use crate::naming::{Tier, class_name, master_of};
use crate::query::Query;
use crate::restrict::Restriction;
use crate::serde_row::{to_row, to_row_cow};

/// What the schema layer knows about one attribute beyond its heading entry.
#[derive(Clone, Debug)]
pub(crate) struct AttrInfo {
    pub resolved: Option<ResolvedType>,
    pub resolve_error: Option<String>,
    pub final_type: TypeSpec,
    pub kind: ColKind,
    pub has_codec: bool,
    /// PostgreSQL cast for inserted values (enums, decimals, unusual native types).
    pub pg_cast: Option<String>,
}

pub(crate) struct TableInner {
    pub conn: Connection,
    pub heading: Heading,
    pub attrs: Vec<AttrInfo>,
    /// The `~lineage` rows (attribute to `schema.table.attribute`); `None` when the schema has
    /// no `~lineage` table.
    pub lineage: Option<HashMap<String, String>>,
}

/// A handle on one table: its heading and its connection. Cheap to clone.
#[derive(Clone)]
pub struct Table {
    pub(crate) inner: Arc<TableInner>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("table", &self.full_name())
            .finish_non_exhaustive()
    }
}

/// Options of [`Table::insert_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct InsertOptions {
    /// Skip rows whose primary key exists already.
    pub skip_duplicates: bool,
    /// Ignore row entries that name no attribute (otherwise an error).
    pub ignore_extra_fields: bool,
    /// Allow inserting into Computed and Imported tables (normally filled by `make`).
    pub allow_direct_insert: bool,
}

const MAX_PARAMS: usize = 30_000;
/// Rows per INSERT statement at most. Longer statements do not go faster: the servers parse and
/// plan a multi-row `VALUES` list in time that grows faster than its length, and a full batch
/// of this size is one cached prepared statement reused for every batch (measured in
/// `benches/latency.rs`; see docs/performance.md).
const ROWS_PER_STATEMENT: usize = 1000;
const MAX_STATEMENT_BYTES: usize = 8 << 20;

impl Table {
    pub(crate) fn from_heading(conn: Connection, heading: Heading) -> Table {
        let backend = conn.backend();
        let attrs = heading
            .attributes
            .iter()
            .map(|a| {
                let (resolved, resolve_error, final_type) = if a.spec.is_codec() {
                    match ResolvedType::resolve(&a.spec, conn.inner.registry, &conn.inner.config) {
                        Ok(r) => {
                            let f = r.final_type.clone();
                            (Some(r), None, f)
                        }
                        Err(e) => (
                            None,
                            Some(e.to_string()),
                            catalog::core_from_sql(&a.sql_type),
                        ),
                    }
                } else {
                    (None, None, a.spec.clone())
                };
                let kind = col_kind(&final_type);
                let pg_cast = dialect(backend).param_cast(
                    kind,
                    matches!(final_type, TypeSpec::Core(CoreType::Enum(_))),
                    &a.sql_type,
                );
                AttrInfo {
                    has_codec: a.spec.is_codec(),
                    resolved,
                    resolve_error,
                    final_type,
                    kind,
                    pg_cast,
                }
            })
            .collect();
        Table {
            inner: Arc::new(TableInner {
                conn,
                heading,
                attrs,
                lineage: None,
            }),
        }
    }

    /// This table with its `~lineage` rows (read with the heading).
    pub(crate) fn with_lineage(self, lineage: Option<HashMap<String, String>>) -> Table {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|arc| TableInner {
            conn: arc.conn.clone(),
            heading: arc.heading.clone(),
            attrs: arc.attrs.clone(),
            lineage: None,
        });
        Table {
            inner: Arc::new(TableInner { lineage, ..inner }),
        }
    }

    /// The lineage of an attribute (`schema.table.attribute` where it originates), from the
    /// schema's `~lineage` table; `None` for attributes without a row (secondary attributes
    /// declared here) or when the schema has no `~lineage` table.
    pub fn lineage(&self, attribute: &str) -> Option<&str> {
        self.inner
            .lineage
            .as_ref()?
            .get(attribute)
            .map(String::as_str)
    }

    /// The heading.
    pub fn heading(&self) -> &Heading {
        &self.inner.heading
    }

    /// The SQL table name (with tier prefix).
    pub fn name(&self) -> &str {
        &self.inner.heading.table
    }

    /// The schema name.
    pub fn schema_name(&self) -> &str {
        &self.inner.heading.schema
    }

    /// `schema.table`.
    pub fn full_name(&self) -> String {
        self.inner.heading.full_name()
    }

    /// The tier, from the name.
    pub fn tier(&self) -> Option<Tier> {
        Tier::of(self.name())
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.inner.conn
    }

    pub(crate) fn backend(&self) -> Backend {
        self.inner.conn.backend()
    }

    pub(crate) fn qualified(&self) -> String {
        qualified(self.backend(), self.schema_name(), self.name())
    }

    pub(crate) fn attr_info(&self, name: &str) -> Option<&AttrInfo> {
        let i = self
            .inner
            .heading
            .attributes
            .iter()
            .position(|a| a.name == name)?;
        self.inner.attrs.get(i)
    }

    pub(crate) fn context(&self, field: &str, key: IndexMap<String, Value>) -> CodecContext {
        CodecContext {
            schema: self.schema_name().to_string(),
            table: self.name().to_string(),
            field: field.to_string(),
            key,
            store: None,
            config: self.inner.conn.inner.config.core(),
            stores: Arc::clone(&self.inner.conn.inner.stores),
        }
    }

    /// A query over all rows of this table.
    pub fn query(&self) -> Query {
        Query::of_table(self)
    }

    /// A query over the rows matching `r`.
    pub fn restrict(&self, r: impl Into<Restriction>) -> Query {
        self.query().restrict(r)
    }

    /// Every row, as `T` (a [`Row`] or a `Deserialize` struct).
    pub async fn fetch<T: DeserializeOwned + Any>(&self) -> Result<Vec<T>> {
        self.query().fetch().await
    }

    /// The single row of the table.
    pub async fn fetch1<T: DeserializeOwned + Any>(&self) -> Result<T> {
        self.query().fetch1().await
    }

    /// The number of rows.
    pub async fn len(&self) -> Result<u64> {
        self.query().len().await
    }

    /// Whether the table has no rows.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(!self.query().exists().await?)
    }

    /// Whether the table has rows.
    pub async fn exists(&self) -> Result<bool> {
        self.query().exists().await
    }

    /// Delete every row, cascading to dependent tables. Returns how many rows of this table went.
    pub async fn delete(&self) -> Result<u64> {
        self.query().delete().await
    }

    /// Insert one row: a [`Row`] or any `Serialize` struct or map.
    pub async fn insert1<R: Serialize + Any>(&self, row: &R) -> Result<()> {
        self.insert_rows(
            vec![to_row_cow(row).map_err(|e| e.in_table(&self.full_name()))?],
            InsertOptions::default(),
        )
        .await
        .map(|_| ())
    }

    /// Insert rows in one transaction.
    pub async fn insert<R: Serialize + Any>(&self, rows: &[R]) -> Result<u64> {
        self.insert_with(rows, InsertOptions::default()).await
    }

    /// Insert rows in one transaction, with options. Returns the number of rows written.
    pub async fn insert_with<R: Serialize + Any>(
        &self,
        rows: &[R],
        opts: InsertOptions,
    ) -> Result<u64> {
        let rows = rows
            .iter()
            .map(to_row_cow)
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.in_table(&self.full_name()))?;
        self.insert_rows(rows, opts).await
    }

    /// Check and encode one row: `(attribute index, parameter)` for the columns to write.
    ///
    /// A borrowed row has its values copied; an owned one has them moved out. `has_codecs` says
    /// whether any attribute has a codec (only then is the primary key kept for their context).
    async fn encode_row(
        &self,
        mut row: Cow<'_, Row>,
        opts: InsertOptions,
        has_codecs: bool,
    ) -> Result<Vec<(usize, Option<Param>)>> {
        let h = self.heading();
        for k in row.keys() {
            if h.attribute(k).is_none() && !opts.ignore_extra_fields {
                return Err(Error::UnknownAttribute {
                    table: self.full_name(),
                    attribute: k.clone(),
                    heading: Vec::new(),
                });
            }
        }
        let mut key = IndexMap::new();
        for a in h.attributes.iter().filter(|a| a.in_key) {
            match row.get(&a.name) {
                Some(v) if !v.is_null() => {
                    if has_codecs {
                        key.insert(a.name.clone(), v.clone());
                    }
                }
                _ if a.name == "_singleton" => {}
                _ => {
                    return Err(Error::MissingKey {
                        table: self.full_name(),
                        attribute: a.name.clone(),
                    });
                }
            }
        }
        let mut out = Vec::with_capacity(h.attributes.len());
        for (i, a) in h.attributes.iter().enumerate() {
            let info = &self.inner.attrs[i];
            let taken = match &mut row {
                Cow::Borrowed(r) => r.get(&a.name).cloned(),
                Cow::Owned(r) => r.swap_remove(&a.name),
            };
            let Some(value) = taken else {
                if a.name == "_singleton" {
                    // Written explicitly: on SQLite an omitted integer key would become a rowid.
                    out.push((i, Some(Param::Bool(true))));
                    continue;
                }
                if a.has_default() || a.is_hidden() {
                    continue;
                }
                return Err(Error::BadValue {
                    table: self.full_name(),
                    attribute: a.name.clone(),
                    message: "a value is required (the attribute has no default)".into(),
                });
            };
            if value.is_null() {
                if a.nullable {
                    out.push((i, None));
                    continue;
                }
                if a.default.is_some() {
                    continue;
                }
                return Err(Error::BadValue {
                    table: self.full_name(),
                    attribute: a.name.clone(),
                    message: "null is not allowed (not nullable, no default)".into(),
                });
            }
            let value = if info.has_codec {
                let Some(resolved) = &info.resolved else {
                    return Err(Error::BadValue {
                        table: self.full_name(),
                        attribute: a.name.clone(),
                        message: info.resolve_error.clone().unwrap_or_default(),
                    });
                };
                resolved
                    .encode(
                        crate::serde_row::for_codec(info, value),
                        &self.context(&a.name, key.clone()),
                    )
                    .await
                    .map_err(|e| Error::core_at(&self.full_name(), &a.name, e))?
            } else {
                value
            };
            let p = to_param(&value, &info.final_type).map_err(|message| Error::BadValue {
                table: self.full_name(),
                attribute: a.name.clone(),
                message,
            })?;
            out.push((i, p));
        }
        Ok(out)
    }

    async fn insert_rows(&self, rows: Vec<Cow<'_, Row>>, opts: InsertOptions) -> Result<u64> {
        let full = self.full_name();
        let started = Instant::now();
        let statements = self.prepare_insert(rows, opts).await?;
        if statements.is_empty() {
            return Ok(0);
        }
        let mut tx = self.inner.conn.begin_tx().await?;
        let count = self.run_insert(&mut tx, &statements).await?;
        if self.writes_objects() {
            crate::transaction::check_commit_budget(started, &full)?;
        }
        tx.commit().await.map_err(|e| e.in_table(&full))?;
        Ok(count)
    }

    /// Whether inserting may write objects to stores (some attribute has a codec).
    pub(crate) fn writes_objects(&self) -> bool {
        self.inner.attrs.iter().any(|i| i.has_codec)
    }

    /// Check, encode (writing objects to stores first) and build the INSERT statements of
    /// `rows`; nothing touches the table yet.
    pub(crate) async fn prepare_insert(
        &self,
        rows: Vec<Cow<'_, Row>>,
        opts: InsertOptions,
    ) -> Result<Vec<Sql>> {
        let full = self.full_name();
        if matches!(self.tier(), Some(Tier::Computed | Tier::Imported)) && !opts.allow_direct_insert
        {
            return Err(Error::Refused {
                table: full,
                message: "Computed and Imported tables are filled by `make`; set `allow_direct_insert` to insert directly".into(),
            });
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // Encode everything (codecs may write objects to stores) before the transaction opens.
        let has_codecs = self.inner.attrs.iter().any(|i| i.has_codec);
        let encoded: Vec<Vec<(usize, Option<Param>)>> = if has_codecs {
            let concurrency = self.inner.conn.config().transfer_concurrency.max(1);
            // Owned rows here: with a borrowed one inside these futures, rustc rejects spawning
            // the insert ("implementation of `FnOnce` is not general enough").
            let rows: Vec<Row> = rows.into_iter().map(Cow::into_owned).collect();
            futures::stream::iter(rows)
                .map(|r| self.encode_row(Cow::Owned(r), opts, true))
                .buffered(concurrency)
                .try_collect()
                .await?
        } else {
            // Nothing to wait for without codecs: a plain loop, not a future per row in flight.
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(self.encode_row(r, opts, false).await?);
            }
            out
        };
        // Group rows by the columns they write, keeping order.
        type Group = (Vec<usize>, Vec<Vec<Option<Param>>>);
        let mut groups: Vec<Group> = Vec::new();
        for r in encoded {
            let at = groups
                .iter()
                .position(|(c, _)| c.iter().eq(r.iter().map(|(i, _)| i)));
            let g = match at {
                Some(g) => g,
                None => {
                    groups.push((r.iter().map(|(i, _)| *i).collect(), Vec::new()));
                    groups.len() - 1
                }
            };
            groups[g].1.push(r.into_iter().map(|(_, p)| p).collect());
        }
        let backend = self.backend();
        let h = self.heading();
        let pk: Vec<String> = h.primary_key().iter().map(|c| quote(backend, c)).collect();
        let mut statements = Vec::new();
        for (cols, rows) in groups {
            let per_stmt = (MAX_PARAMS / cols.len().max(1)).clamp(1, ROWS_PER_STATEMENT);
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let mut sql = Sql::new(backend);
                sql.push("INSERT INTO ").push(&self.qualified()).push(" (");
                for (j, &c) in cols.iter().enumerate() {
                    if j > 0 {
                        sql.push(", ");
                    }
                    sql.ident(&h.attributes[c].name);
                }
                sql.push(") VALUES ");
                let mut bytes = 0usize;
                let mut n = 0;
                while n < per_stmt && (n == 0 || bytes < MAX_STATEMENT_BYTES) {
                    let Some(row) = rows.next() else { break };
                    if n > 0 {
                        sql.push(", ");
                    }
                    sql.push("(");
                    for (j, (&c, p)) in cols.iter().zip(row).enumerate() {
                        if j > 0 {
                            sql.push(", ");
                        }
                        bytes += param_size(&p);
                        let info = &self.inner.attrs[c];
                        sql.bind(column_width(p, &info.final_type), info.pg_cast.as_deref());
                    }
                    sql.push(")");
                    n += 1;
                }
                if opts.skip_duplicates {
                    sql.push(&dialect(backend).skip_duplicates(&pk));
                }
                statements.push(sql);
            }
        }
        Ok(statements)
    }

    /// Run prepared INSERT statements in `tx`; returns the rows written.
    pub(crate) async fn run_insert(&self, tx: &mut Tx, statements: &[Sql]) -> Result<u64> {
        let full = self.full_name();
        let mut count = 0;
        for sql in statements {
            let n = tx
                .exec()
                .execute(sql)
                .await
                .map_err(|e| classify_db(&full, e))?;
            // MySQL's ON DUPLICATE KEY UPDATE with an unchanged value counts 0 per skipped row.
            count += n;
        }
        Ok(count)
    }

    /// Update the non-key attributes of the one row identified by the key in `row`.
    pub async fn update1<R: Serialize + Any>(&self, row: &R) -> Result<()> {
        let full = self.full_name();
        let started = Instant::now();
        let update = self.prepare_update1(row).await?;
        let mut tx = self.inner.conn.begin_tx().await?;
        self.run_update1(&mut tx, &update).await?;
        if self.writes_objects() {
            crate::transaction::check_commit_budget(started, &full)?;
        }
        tx.commit().await.map_err(|e| e.in_table(&full))
    }

    /// Check and encode an [`update1`](Self::update1) (objects are written here): the count of
    /// the row it targets and the UPDATE statement.
    pub(crate) async fn prepare_update1<R: Serialize + Any>(&self, row: &R) -> Result<[Sql; 2]> {
        let full = self.full_name();
        let mut row = to_row(row).map_err(|e| e.in_table(&full))?;
        let h = self.heading();
        for k in row.keys() {
            if h.attribute(k).is_none() {
                return Err(Error::UnknownAttribute {
                    table: full,
                    attribute: k.clone(),
                    heading: Vec::new(),
                });
            }
        }
        let mut key = Row::new();
        for a in h.attributes.iter().filter(|a| a.in_key) {
            match row.swap_remove(&a.name) {
                Some(v) if !v.is_null() => {
                    key.insert(a.name.clone(), v);
                }
                _ => {
                    return Err(Error::MissingKey {
                        table: full,
                        attribute: a.name.clone(),
                    });
                }
            }
        }
        if row.is_empty() {
            return Err(Error::Refused {
                table: full,
                message: "update1 needs at least one non-key attribute to set".into(),
            });
        }
        let backend = self.backend();
        let mut sql = Sql::new(backend);
        sql.push("UPDATE ").push(&self.qualified()).push(" SET ");
        for (j, (name, value)) in row.into_iter().enumerate() {
            if j > 0 {
                sql.push(", ");
            }
            let (i, a) = h
                .attributes
                .iter()
                .enumerate()
                .find(|(_, a)| a.name == name)
                .ok_or_else(|| Error::UnknownAttribute {
                    table: full.clone(),
                    attribute: name.clone(),
                    heading: Vec::new(),
                })?;
            let info = &self.inner.attrs[i];
            sql.ident(&name).push(" = ");
            if value.is_null() {
                if a.nullable {
                    sql.push("NULL");
                } else if a.default.is_some() && dialect(backend).update_to_default() {
                    sql.push("DEFAULT");
                } else {
                    return Err(Error::BadValue {
                        table: full,
                        attribute: name,
                        message: "null is not allowed (not nullable)".into(),
                    });
                }
                continue;
            }
            let value = match &info.resolved {
                Some(r) => r
                    .encode(
                        crate::serde_row::for_codec(info, value),
                        &self.context(&name, key.clone()),
                    )
                    .await
                    .map_err(|e| Error::core_at(&full, &name, e))?,
                None if info.has_codec => {
                    return Err(Error::BadValue {
                        table: full,
                        attribute: name,
                        message: info.resolve_error.clone().unwrap_or_default(),
                    });
                }
                None => value,
            };
            let p = to_param(&value, &info.final_type).map_err(|message| Error::BadValue {
                table: full.clone(),
                attribute: name.clone(),
                message,
            })?;
            sql.bind(p, info.pg_cast.as_deref());
        }
        let key_restriction = Restriction::Key(key);
        sql.push(" WHERE ");
        key_restriction.render(self, &mut sql)?;
        let mut count = Sql::new(backend);
        count
            .push("SELECT count(*) FROM ")
            .push(&self.qualified())
            .push(" WHERE ");
        key_restriction.render(self, &mut count)?;
        Ok([count, sql])
    }

    /// Run a prepared [`update1`](Self::update1) in `tx`: exactly one row must match its key.
    pub(crate) async fn run_update1(&self, tx: &mut Tx, update: &[Sql; 2]) -> Result<()> {
        let full = self.full_name();
        let [count, sql] = update;
        let n = count_rows(&mut tx.exec(), count)
            .await
            .map_err(|e| e.in_table(&full))?;
        if n != 1 {
            return Err(Error::NotOneRow {
                table: full,
                found: n as usize,
            });
        }
        tx.exec()
            .execute(sql)
            .await
            .map_err(|e| classify_db(&full, e))?;
        Ok(())
    }

    /// The definition of this table, rebuilt from its heading.
    pub fn describe(&self) -> String {
        describe(self.heading())
    }

    /// Drop this table and every table that depends on it (dependents first).
    pub async fn drop(self) -> Result<()> {
        let full = self.full_name();
        let graph = Graph::load(&self).await?;
        if self.tier() == Some(Tier::Part) {
            return Err(Error::Refused {
                table: full,
                message: "a part table is dropped with its master".into(),
            });
        }
        let backend = self.backend();
        let mut conn = self.inner.conn.acquire().await?;
        let mut ex = conn.exec();
        for t in graph.order.iter().rev() {
            let table = &graph.tables[t];
            let h = table.heading();
            if catalog::table_exists_raw(&mut ex, backend, &h.schema, "~lineage").await? {
                let mut del = Sql::new(backend);
                del.push("DELETE FROM ")
                    .push(&qualified(backend, &h.schema, "~lineage"))
                    .push(" WHERE table_name = ")
                    .bind(Some(Param::Text(h.table.clone())), None);
                ex.execute(&del).await.map_err(|e| classify_db(t, e))?;
            }
            ex.raw(&format!("DROP TABLE {}", table.qualified()))
                .await
                .map_err(|e| classify_db(t, e))?;
            let d = dialect(backend);
            if d.keeps_metadata_tables() {
                let mut del = Sql::new(backend);
                del.push("DELETE FROM ")
                    .ident(catalog::SQLITE_TABLES)
                    .push(" WHERE schema_name = ")
                    .bind(Some(Param::Text(h.schema.clone())), None)
                    .push(" AND table_name = ")
                    .bind(Some(Param::Text(h.table.clone())), None);
                ex.execute(&del).await.map_err(|e| classify_db(t, e))?;
            }
            for a in &h.attributes {
                if let TypeSpec::Core(c) = &table
                    .inner
                    .attrs
                    .iter()
                    .zip(&h.attributes)
                    .find(|(_, x)| x.name == a.name)
                    .map(|(i, _)| i.final_type.clone())
                    .unwrap_or(TypeSpec::Native(String::new()))
                    && let Some((used, drop)) = d.drop_type_sql(&h.schema, c)
                    && catalog::text_rows(&mut ex, &used, 1).await?.is_empty()
                {
                    ex.raw(&drop).await.map_err(|e| classify_db(t, e))?;
                }
            }
        }
        Ok(())
    }
}

/// An integer parameter bound at its column's width (16 or 32 bits) instead of 64, so that the
/// server stores it as sent instead of coercing a wider value. Only INSERT statements built
/// here bind this way: PostgreSQL fixes a prepared statement's parameter types when it is first
/// prepared, so one statement text must always be bound with the same types, and the INSERT
/// text of a table's column list is built nowhere else.
fn column_width(p: Option<Param>, ty: &TypeSpec) -> Option<Param> {
    use CoreType::*;
    match (p, ty) {
        (Some(Param::Int(i)), TypeSpec::Core(Int8 | Int16 | UInt8)) => {
            Some(i16::try_from(i).map_or(Param::Int(i), Param::Int16))
        }
        (Some(Param::Int(i)), TypeSpec::Core(Int32 | UInt16)) => {
            Some(i32::try_from(i).map_or(Param::Int(i), Param::Int32))
        }
        (p, _) => p,
    }
}

fn param_size(p: &Option<Param>) -> usize {
    match p {
        Some(Param::Bytes(b)) => b.len(),
        Some(Param::Text(s)) => s.len(),
        Some(Param::Json(_)) => 64,
        _ => 8,
    }
}

pub(crate) async fn count_rows(ex: &mut Exec<'_>, sql: &Sql) -> Result<u64> {
    let rows = ex.fetch(sql, &[ColKind::Int]).await?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .max(0) as u64)
}

/// The definition text of a heading.
pub(crate) fn describe(h: &Heading) -> String {
    let mut out = String::new();
    if !h.comment.is_empty() {
        out.push_str(&format!("# {}\n", h.comment));
    }
    let mut done_fk = vec![false; h.foreign_keys.len()];
    let fk_of = |name: &str| {
        h.foreign_keys
            .iter()
            .position(|fk| fk.attr_map.iter().any(|(c, _)| c == name))
    };
    let mut in_key = true;
    for a in &h.attributes {
        if a.is_hidden() {
            continue;
        }
        if in_key && !a.in_key {
            out.push_str("---\n");
            in_key = false;
        }
        if a.inherited
            && let Some(i) = fk_of(&a.name)
        {
            if done_fk[i] {
                continue;
            }
            done_fk[i] = true;
            let fk = &h.foreign_keys[i];
            let mut reference = String::new();
            if fk.parent_schema != h.schema {
                reference.push_str(&fk.parent_schema);
                reference.push('.');
            }
            if let Some(master) = master_of(&fk.parent_table) {
                reference.push_str(&class_name(master));
                reference.push('.');
            }
            reference.push_str(&class_name(&fk.parent_table));
            let renames: Vec<String> = fk
                .attr_map
                .iter()
                .filter(|(c, p)| c != p)
                .map(|(c, p)| format!("{c}='{p}'"))
                .collect();
            if !renames.is_empty() {
                reference.push_str(&format!(".proj({})", renames.join(", ")));
            }
            let mut opts = Vec::new();
            if fk.nullable {
                opts.push("nullable");
            }
            if fk.unique {
                opts.push("unique");
            }
            let opts = if opts.is_empty() {
                String::new()
            } else {
                format!("[{}] ", opts.join(", "))
            };
            out.push_str(&format!("-> {opts}{reference}\n"));
            continue;
        }
        let default = match &a.default {
            Some(d) => format!(" = {d}"),
            None => String::new(),
        };
        let comment = if a.comment.is_empty() {
            String::new()
        } else {
            format!("  # {}", a.comment)
        };
        out.push_str(&format!("{}{} : {}{}\n", a.name, default, a.spec, comment));
    }
    if in_key {
        out.push_str("---\n");
    }
    for ix in &h.indexes {
        out.push_str(&format!(
            "{}index({})\n",
            if ix.unique { "unique " } else { "" },
            ix.columns.join(", ")
        ));
    }
    let _ = literal;
    out
}
