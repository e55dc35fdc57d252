//! Queries: what `fetch`, `len` and `delete` act on.

use std::any::Any;

use dj_core::value::Value;
use futures::{StreamExt, TryStreamExt};
use indexmap::IndexMap;
use serde::de::DeserializeOwned;

use crate::Row;
use crate::db::{Sql, quote};
use crate::dialect::dialect;
use crate::error::{Error, Result};
use crate::heading::ColKind;
use crate::restrict::{Restriction, render_in_subquery};
use crate::serde_row::from_row;
use crate::table::{Table, count_rows};

/// One alternative of a cascade restriction: `(child cols) IN (SELECT parent cols FROM parent)`.
#[derive(Clone, Debug)]
pub(crate) struct FkLink {
    pub(crate) child_cols: Vec<String>,
    pub(crate) parent: Query,
    pub(crate) parent_cols: Vec<String>,
}

/// A restricted, projected, ordered view of one table: what `fetch`, `len` and `delete` act on.
#[derive(Clone, Debug)]
pub struct Query {
    pub(crate) table: Table,
    restrictions: Vec<Restriction>,
    /// AND of ORs of foreign-key semijoins (delete cascades).
    pub(crate) cascade: Vec<Vec<FkLink>>,
    attrs: Option<Vec<String>>,
    order_by: Vec<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

impl Query {
    pub(crate) fn of_table(table: &Table) -> Query {
        Query {
            table: table.clone(),
            restrictions: Vec::new(),
            cascade: Vec::new(),
            attrs: None,
            order_by: Vec::new(),
            limit: None,
            offset: None,
        }
    }

    /// The table queried.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Add a restriction (restrictions are AND-ed).
    pub fn restrict(mut self, r: impl Into<Restriction>) -> Self {
        self.restrictions.push(r.into());
        self
    }

    /// Exclude the rows matching `r` (DataJoint's `-`).
    pub fn exclude(mut self, r: impl Into<Restriction>) -> Self {
        self.restrictions.push(Restriction::Not(Box::new(r.into())));
        self
    }

    /// Fetch only these attributes.
    pub fn attrs<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.attrs = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Order by `attr [ASC|DESC]` items; `KEY` and `KEY DESC` stand for the primary key.
    pub fn order_by<S: Into<String>>(mut self, items: impl IntoIterator<Item = S>) -> Self {
        self.order_by = items.into_iter().map(Into::into).collect();
        self
    }

    /// Fetch at most `n` rows (ordered by the primary key unless `order_by` is given).
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Skip the first `n` rows.
    pub fn offset(mut self, n: u64) -> Self {
        self.offset = Some(n);
        self
    }

    pub(crate) fn selected_names(&self) -> Vec<String> {
        match &self.attrs {
            Some(a) => a.clone(),
            None => self
                .table
                .heading()
                .visible_names()
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
    }

    pub(crate) fn full(&self) -> String {
        self.table.full_name()
    }

    fn check_names(&self) -> Result<Vec<String>> {
        let names = self.selected_names();
        for n in &names {
            if self.table.heading().attribute(n).is_none() {
                return Err(Error::UnknownAttribute {
                    table: self.full(),
                    attribute: n.clone(),
                });
            }
        }
        Ok(names)
    }

    pub(crate) fn render_where(&self, sql: &mut Sql) -> Result<()> {
        if self.restrictions.is_empty() && self.cascade.is_empty() {
            return Ok(());
        }
        sql.push(" WHERE ");
        let mut first = true;
        for r in &self.restrictions {
            if !first {
                sql.push(" AND ");
            }
            first = false;
            r.render(&self.table, sql)?;
        }
        for alternatives in &self.cascade {
            if !first {
                sql.push(" AND ");
            }
            first = false;
            sql.push("(");
            for (i, link) in alternatives.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                render_in_subquery(
                    &self.table,
                    sql,
                    &link.child_cols,
                    &link.parent,
                    &link.parent_cols,
                )?;
            }
            sql.push(")");
        }
        Ok(())
    }

    /// `SELECT cols FROM table WHERE …` as a subquery (plain columns; `SELECT 1` when empty).
    pub(crate) fn render_select(&self, sql: &mut Sql, cols: &[String], exists: bool) -> Result<()> {
        sql.push("SELECT ");
        if cols.is_empty() || exists {
            sql.push("1");
        } else {
            for (i, c) in cols.iter().enumerate() {
                if self.table.heading().attribute(c).is_none() {
                    return Err(Error::UnknownAttribute {
                        table: self.full(),
                        attribute: c.clone(),
                    });
                }
                if i > 0 {
                    sql.push(", ");
                }
                sql.ident(c);
            }
        }
        sql.push(" FROM ").push(&self.table.qualified());
        self.render_where(sql)
    }

    fn order_clause(&self) -> Result<String> {
        let backend = self.table.backend();
        let mut items = self.order_by.clone();
        if items.is_empty() && (self.limit.is_some() || self.offset.is_some()) {
            items.push("KEY".into());
        }
        let mut out = Vec::new();
        for item in items {
            let mut words = item.split_whitespace();
            let name = words.next().unwrap_or("");
            let dir = match words.next().map(str::to_ascii_uppercase).as_deref() {
                None => "",
                Some("ASC") => " ASC",
                Some("DESC") => " DESC",
                Some(other) => {
                    return Err(Error::UnknownAttribute {
                        table: self.full(),
                        attribute: format!("{name} {other}"),
                    });
                }
            };
            if words.next().is_some() {
                return Err(Error::UnknownAttribute {
                    table: self.full(),
                    attribute: item.clone(),
                });
            }
            if name.eq_ignore_ascii_case("KEY") {
                for k in self.table.heading().primary_key() {
                    out.push(format!("{}{dir}", quote(backend, k)));
                }
            } else if self.table.heading().attribute(name).is_some() {
                out.push(format!("{}{dir}", quote(backend, name)));
            } else {
                return Err(Error::UnknownAttribute {
                    table: self.full(),
                    attribute: name.to_string(),
                });
            }
        }
        if out.is_empty() {
            return Ok(String::new());
        }
        Ok(format!(" ORDER BY {}", out.join(", ")))
    }

    fn select_sql(&self, names: &[String]) -> Result<(Sql, Vec<ColKind>)> {
        let backend = self.table.backend();
        let mut sql = Sql::new(backend);
        let mut kinds = Vec::new();
        sql.push("SELECT ");
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let info = self
                .table
                .attr_info(n)
                .ok_or_else(|| Error::UnknownAttribute {
                    table: self.full(),
                    attribute: n.clone(),
                })?;
            kinds.push(info.kind);
            let q = quote(backend, n);
            sql.push(&dialect(backend).select_column(&q, n, info.kind));
        }
        sql.push(" FROM ").push(&self.table.qualified());
        self.render_where(&mut sql)?;
        let order = self.order_clause()?;
        sql.push(&order);
        sql.push(&dialect(backend).limit_offset(self.limit, self.offset));
        Ok((sql, kinds))
    }

    /// The matching rows as the database holds them, before any codec decodes them: a `<blob>`
    /// column gives its blob bytes, a `<blob@>` column the JSON metadata that locates the object
    /// in its store. Useful to see where each attribute went; [`Query::fetch_rows`] is the
    /// decoded view.
    pub async fn fetch_stored(&self) -> Result<Vec<Row>> {
        let names = self.check_names()?;
        let raw = self.fetch_raw(&names).await?;
        Ok(raw
            .into_iter()
            .map(|values| names.iter().cloned().zip(values).collect())
            .collect())
    }

    async fn fetch_raw(&self, names: &[String]) -> Result<Vec<Vec<Value>>> {
        let full = self.full();
        let (sql, kinds) = self.select_sql(names)?;
        let mut conn = self.table.inner.conn.acquire().await?;
        conn.exec().fetch(&sql, &kinds).await.map_err(|e| match e {
            Error::BadValue {
                attribute, message, ..
            } => Error::BadValue {
                table: full.clone(),
                attribute,
                message,
            },
            other => other.in_table(&full),
        })
    }

    /// The matching rows, decoded through their codecs, as [`Row`]s. Rows are decoded
    /// concurrently (up to `transfer_concurrency` at a time, so store downloads overlap), and
    /// come back in query order.
    pub async fn fetch_rows(&self) -> Result<Vec<Row>> {
        let names = self.check_names()?;
        let raw = self.fetch_raw(&names).await?;
        let codec_columns: Vec<&String> = names
            .iter()
            .filter(|n| self.table.attr_info(n).is_some_and(|i| i.has_codec))
            .collect();
        // Every row has the same keys: clone one keyed template (a copy of its hash table, no
        // re-hashing) and fill in the values.
        let template: Row = names.iter().map(|n| (n.clone(), Value::Null)).collect();
        let rows = raw.into_iter().map(|values| {
            let mut row = template.clone();
            for (slot, v) in row.values_mut().zip(values) {
                *slot = v;
            }
            row
        });
        if codec_columns.is_empty() {
            return Ok(rows.collect());
        }
        let concurrency = self.table.inner.conn.config().transfer_concurrency.max(1);
        futures::stream::iter(rows)
            .map(|row| self.decode_row(row, &codec_columns))
            .buffered(concurrency)
            .try_collect()
            .await
    }

    /// Decode the codec columns of one fetched row, inner codec to outer.
    async fn decode_row(&self, mut row: Row, codec_columns: &[&String]) -> Result<Row> {
        let full = self.full();
        let key: IndexMap<String, Value> = self
            .table
            .heading()
            .primary_key()
            .iter()
            .filter_map(|k| row.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        for &n in codec_columns {
            let Some(info) = self.table.attr_info(n) else {
                continue;
            };
            let Some(resolved) = &info.resolved else {
                return Err(Error::BadValue {
                    table: full,
                    attribute: n.clone(),
                    message: info.resolve_error.clone().unwrap_or_default(),
                });
            };
            if let Some(v) = row.get_mut(n) {
                let stored = std::mem::take(v);
                *v = resolved
                    .decode(stored, &self.table.context(n, key.clone()))
                    .await
                    .map_err(|e| Error::core_at(&full, n, e))?;
            }
        }
        Ok(row)
    }

    /// The matching rows as `T`: a [`Row`] or any `Deserialize` struct.
    pub async fn fetch<T: DeserializeOwned + Any>(&self) -> Result<Vec<T>> {
        let full = self.full();
        self.fetch_rows()
            .await?
            .into_iter()
            .map(|r| from_row(r).map_err(|e| e.in_table(&full)))
            .collect()
    }

    /// The one matching row; an error when there are none or several.
    pub async fn fetch1<T: DeserializeOwned + Any>(&self) -> Result<T> {
        let mut rows = self.fetch_rows().await?;
        if rows.len() != 1 {
            return Err(Error::NotOneRow {
                table: self.full(),
                found: rows.len(),
            });
        }
        let row = rows.pop().unwrap_or_default();
        from_row(row).map_err(|e| e.in_table(&self.full()))
    }

    /// The number of matching rows.
    pub async fn len(&self) -> Result<u64> {
        let mut sql = Sql::new(self.table.backend());
        sql.push("SELECT count(*) FROM ")
            .push(&self.table.qualified());
        self.render_where(&mut sql)?;
        let mut conn = self.table.inner.conn.acquire().await?;
        count_rows(&mut conn.exec(), &sql)
            .await
            .map_err(|e| e.in_table(&self.full()))
    }

    /// Whether no row matches.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(!self.exists().await?)
    }

    /// Whether any row matches.
    pub async fn exists(&self) -> Result<bool> {
        Ok(self.len().await? > 0)
    }
}
