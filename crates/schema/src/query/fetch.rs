//! Running a query: rows, structs, counts, streams.

use std::any::Any;
use std::borrow::Cow;

use dj_core::value::Value;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use indexmap::IndexMap;
use serde::de::DeserializeOwned;

use super::heading::AttrSource;
use super::{Query, strs};
use crate::Row;
use crate::db::Exec;
use crate::error::{Error, Result};
use crate::heading::ColKind;
use crate::serde_row::{from_row, wanted_fields};
use crate::table::AttrInfo;

/// An async stream of fetched values ([`Query::stream`]).
pub type RowStream<T> = BoxStream<'static, Result<T>>;

/// Rows in flight between the database reader and the consumer of a stream.
const STREAM_BUFFER: usize = 256;

/// What decoding a fetched row needs: the names, and the codec columns with their source.
#[derive(Clone)]
struct Decoder {
    names: Vec<String>,
    kinds: Vec<ColKind>,
    /// `(index in names, source column)` of the columns a codec decodes.
    codecs: Vec<(usize, AttrSource)>,
    label: String,
}

impl Decoder {
    fn row(&self, values: Vec<Value>) -> Row {
        self.names.iter().cloned().zip(values).collect()
    }

    /// Decode the codec columns of one row, in place.
    async fn decode(&self, mut row: Row) -> Result<Row> {
        for (i, src) in &self.codecs {
            let name = &self.names[*i];
            let table = &src.table;
            let full = table.full_name();
            let Some(info) = src.info() else {
                continue;
            };
            let Some(resolved) = &info.resolved else {
                return Err(Error::BadValue {
                    table: full,
                    attribute: src.attr.clone(),
                    message: info.resolve_error.clone().unwrap_or_default(),
                });
            };
            let key: IndexMap<String, Value> = table
                .heading()
                .primary_key()
                .iter()
                .filter_map(|k| row.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            if let Some(v) = row.get_mut(name) {
                let stored = std::mem::take(v);
                if stored.is_null() {
                    continue;
                }
                *v = resolved
                    .decode(stored, &table.context(&src.attr, key))
                    .await
                    .map_err(|e| Error::core_at(&full, &src.attr, e))?;
            }
        }
        Ok(row)
    }
}

impl Query {
    fn decoder(&self, names: Vec<String>) -> Result<Decoder> {
        self.decoder_with(names, |_| true)
    }

    /// A decoder of `names` that decodes the codec columns `decode` accepts (the others keep
    /// their stored form).
    fn decoder_with(
        &self,
        names: Vec<String>,
        decode: impl Fn(&AttrInfo) -> bool,
    ) -> Result<Decoder> {
        let h = self.heading_ref()?;
        let mut kinds = Vec::with_capacity(names.len());
        let mut codecs = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let a = h.any_attribute(n).ok_or_else(|| h.unknown(n))?;
            kinds.push(a.kind);
            if a.has_codec()
                && let Some(src) = &a.source
                && src.info().is_some_and(&decode)
            {
                codecs.push((i, src.clone()));
            }
        }
        Ok(Decoder {
            names,
            kinds,
            codecs,
            label: h.label.clone(),
        })
    }

    fn bad_expression(&self, sql: &str, e: Error) -> Error {
        match e {
            Error::Database { source, .. } => match &source {
                sqlx::Error::Database(db) => Error::BadExpression {
                    sql: sql.to_string(),
                    message: db.message().to_string(),
                },
                _ => Error::Database {
                    table: Some(self.label()),
                    source,
                },
            },
            Error::BadValue {
                attribute, message, ..
            } => Error::BadValue {
                table: self.label(),
                attribute,
                message,
            },
            other => other.in_table(&self.label()),
        }
    }

    async fn fetch_raw(&self, names: &[String]) -> Result<(Decoder, Vec<Vec<Value>>)> {
        self.fetch_raw_with(names, |_| true).await
    }

    async fn fetch_raw_with(
        &self,
        names: &[String],
        decode: impl Fn(&AttrInfo) -> bool,
    ) -> Result<(Decoder, Vec<Vec<Value>>)> {
        let decoder = self.decoder_with(names.to_vec(), decode)?;
        let sql = self.fetch_statement(names)?;
        let rows = self
            .node
            .conn
            .read(&sql, &decoder.kinds)
            .await
            .map_err(|e| self.bad_expression(&sql.text, e))?;
        Ok((decoder, rows))
    }

    /// [`fetch_raw_with`](Self::fetch_raw_with) through `ex` (an open transaction's connection).
    async fn fetch_raw_in(
        &self,
        ex: &mut Exec<'_>,
        names: &[String],
        decode: impl Fn(&AttrInfo) -> bool,
    ) -> Result<(Decoder, Vec<Vec<Value>>)> {
        let decoder = self.decoder_with(names.to_vec(), decode)?;
        let sql = self.fetch_statement(names)?;
        let rows = ex
            .fetch(&sql, &decoder.kinds)
            .await
            .map_err(|e| self.bad_expression(&sql.text, e))?;
        Ok((decoder, rows))
    }

    /// [`fetch_rows`](Self::fetch_rows) through `ex` (an open transaction's connection).
    pub(crate) async fn fetch_rows_in(&self, ex: &mut Exec<'_>) -> Result<Vec<Row>> {
        let names = self.selected_names()?;
        let (decoder, raw) = self.fetch_raw_in(ex, &names, |_| true).await?;
        self.decode_rows(&names, decoder, raw).await
    }

    /// [`len`](Self::len) through `ex` (an open transaction's connection).
    pub(crate) async fn len_in(&self, ex: &mut Exec<'_>) -> Result<u64> {
        let sql = self.count_statement()?;
        let rows = ex
            .fetch(&sql, &[ColKind::Int])
            .await
            .map_err(|e| self.bad_expression(&sql.text, e))?;
        Ok(count_of(&rows))
    }

    /// [`keys`](Self::keys) through `ex` (an open transaction's connection).
    pub(crate) async fn keys_in(&self, ex: &mut Exec<'_>) -> Result<Vec<Row>> {
        let pk = self.primary_key()?;
        self.attrs(pk).fetch_rows_in(ex).await
    }

    /// The matching rows as the database holds them, before any codec decodes them: a `<blob>`
    /// column gives its blob bytes, a `<blob@>` column the JSON metadata that locates the object
    /// in its store. [`Query::fetch_rows`] is the decoded view.
    pub async fn fetch_stored(&self) -> Result<Vec<Row>> {
        let names = self.selected_names()?;
        let (decoder, raw) = self.fetch_raw(&names).await?;
        Ok(raw.into_iter().map(|v| decoder.row(v)).collect())
    }

    /// The matching rows, decoded through their codecs, as [`Row`]s (heading order). Rows are
    /// decoded concurrently (up to `transfer_concurrency` at a time, so store downloads
    /// overlap), and come back in query order.
    pub async fn fetch_rows(&self) -> Result<Vec<Row>> {
        let names = self.selected_names()?;
        self.fetch_rows_decoding(&names, |_| true).await
    }

    /// The rows of `names`, decoding the codec columns `decode` accepts (the others keep their
    /// stored form).
    pub(crate) async fn fetch_rows_decoding(
        &self,
        names: &[String],
        decode: impl Fn(&AttrInfo) -> bool,
    ) -> Result<Vec<Row>> {
        let (decoder, raw) = self.fetch_raw_with(names, decode).await?;
        self.decode_rows(names, decoder, raw).await
    }

    async fn decode_rows(
        &self,
        names: &[String],
        decoder: Decoder,
        raw: Vec<Vec<Value>>,
    ) -> Result<Vec<Row>> {
        // Every row has the same keys: clone one keyed template and fill in the values.
        let template: Row = names.iter().map(|n| (n.clone(), Value::Null)).collect();
        let rows = raw.into_iter().map(|values| {
            let mut row = template.clone();
            for (slot, v) in row.values_mut().zip(values) {
                *slot = v;
            }
            row
        });
        if decoder.codecs.is_empty() {
            return Ok(rows.collect());
        }
        let concurrency = self.node.conn.config().transfer_concurrency.max(1);
        futures::stream::iter(rows)
            .map(|row| decoder.decode(row))
            .buffered(concurrency)
            .try_collect()
            .await
    }

    /// This query narrowed to the attributes a `T` reads, when it is a struct and no attribute
    /// list was given: the columns it omits are neither selected nor decoded (a `<blob@>` it
    /// omits is never downloaded). Fields the heading lacks are left to serde (`Option` and
    /// `#[serde(default)]` fields read as absent).
    pub(crate) fn for_type<T: DeserializeOwned + Any>(&self) -> Cow<'_, Query> {
        if self.node.fetch_attrs.is_some() {
            return Cow::Borrowed(self);
        }
        let Some(fields) = wanted_fields::<T>() else {
            return Cow::Borrowed(self);
        };
        let Ok(h) = self.heading_ref() else {
            // The error comes back from the fetch itself.
            return Cow::Borrowed(self);
        };
        let mut names: Vec<&str> = fields
            .iter()
            .copied()
            .filter(|f| h.any_attribute(f).is_some())
            .collect();
        if names.is_empty() {
            // Nothing the heading has: select the key, so the row count stays right.
            names = h.primary_key();
        }
        Cow::Owned(self.attrs(names))
    }

    /// The matching rows as `T`: a [`Row`] or any `Deserialize` struct. A struct reads only its
    /// fields' attributes (see [`crate::serde_row::wanted_fields`]).
    pub async fn fetch<T: DeserializeOwned + Any>(&self) -> Result<Vec<T>> {
        let label = self.label();
        self.for_type::<T>()
            .fetch_rows()
            .await?
            .into_iter()
            .map(|r| from_row(r).map_err(|e| e.in_table(&label)))
            .collect()
    }

    /// The one matching row; an error when there are none or several.
    pub async fn fetch1<T: DeserializeOwned + Any>(&self) -> Result<T> {
        let mut rows = self.for_type::<T>().fetch_rows().await?;
        if rows.len() != 1 {
            return Err(Error::NotOneRow {
                table: self.label(),
                found: rows.len(),
            });
        }
        let row = rows.pop().unwrap_or_default();
        from_row(row).map_err(|e| e.in_table(&self.label()))
    }

    /// The primary keys of the matching rows.
    pub async fn keys(&self) -> Result<Vec<Row>> {
        let pk = self.primary_key()?;
        self.attrs(pk).fetch_rows().await
    }

    /// The first `n` rows by primary key.
    pub async fn head(&self, n: u64) -> Result<Vec<Row>> {
        self.top(Some(n), ["KEY"], 0).fetch_rows().await
    }

    /// The last `n` rows by primary key (in key order).
    pub async fn tail(&self, n: u64) -> Result<Vec<Row>> {
        let mut rows = self.top(Some(n), ["KEY DESC"], 0).fetch_rows().await?;
        rows.reverse();
        Ok(rows)
    }

    /// The number of matching rows.
    pub async fn len(&self) -> Result<u64> {
        let sql = self.count_statement()?;
        let rows = self
            .node
            .conn
            .read(&sql, &[ColKind::Int])
            .await
            .map_err(|e| self.bad_expression(&sql.text, e))?;
        Ok(count_of(&rows))
    }

    /// Whether no row matches.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(!self.exists().await?)
    }

    /// Whether any row matches.
    pub async fn exists(&self) -> Result<bool> {
        let key = strs(self.heading_ref()?.primary_key());
        let probe = if key.is_empty() {
            self.top(Some(1), Vec::<String>::new(), 0)
        } else {
            self.top(Some(1), ["KEY"], 0)
        };
        Ok(probe.len().await? > 0)
    }

    /// The matching rows as an async stream of `T` (a [`Row`] or a `Deserialize` struct, which
    /// reads only its fields' attributes, as [`Query::fetch`] does),
    /// read from the database as they are consumed: a bounded buffer of rows sits between the
    /// reader (a task holding one pooled connection) and the consumer, so a query of millions
    /// of rows never holds them all in memory. Codec columns are decoded per row, up to
    /// `transfer_concurrency` rows at a time, in order. Dropping the stream stops the reader.
    pub fn stream<T: DeserializeOwned + Any + Send + 'static>(&self) -> RowStream<T> {
        let q = self.for_type::<T>();
        let prepared = q.selected_names().and_then(|names| {
            let decoder = q.decoder(names.clone())?;
            let sql = q.fetch_statement(&names)?;
            Ok((decoder, sql))
        });
        let (decoder, sql) = match prepared {
            Ok(p) => p,
            Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
        };
        let conn = self.node.conn.clone();
        let concurrency = conn.config().transfer_concurrency.max(1);
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        let kinds = decoder.kinds.clone();
        let label = decoder.label.clone();
        let text = sql.text.clone();
        let reader = async move {
            let mut attempt = 0;
            loop {
                match conn.acquire().await {
                    Ok(pc) => {
                        let may_retry = attempt < crate::db::READ_RETRIES;
                        if !pc.fetch_into(&sql, &kinds, &tx, may_retry).await {
                            break;
                        }
                        attempt += 1;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        break;
                    }
                }
            }
        };
        // The reader runs on the caller's tokio runtime; without one there is nothing to run it.
        let handle = match tokio::runtime::Handle::try_current() {
            Ok(h) => h,
            Err(_) => {
                let e = Error::InvalidQuery {
                    expression: label,
                    message: "stream() must be called inside a tokio runtime".into(),
                };
                return futures::stream::once(async move { Err(e) }).boxed();
            }
        };
        let task = handle.spawn(reader);
        let rows = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let decoded = rows
            .map(move |item| {
                let decoder = decoder.clone();
                let label = label.clone();
                let text = text.clone();
                async move {
                    let values = item.map_err(|e| match e {
                        Error::Database {
                            source: sqlx::Error::Database(db),
                            ..
                        } => Error::BadExpression {
                            sql: text,
                            message: db.message().to_string(),
                        },
                        other => other.in_table(&label),
                    })?;
                    let row = decoder.decode(decoder.row(values)).await?;
                    from_row::<T>(row).map_err(|e| e.in_table(&label))
                }
            })
            .buffered(concurrency);
        // Abort the reader when the stream is dropped early.
        let guard = AbortOnDrop(task);
        decoded
            .map(move |item| {
                let _ = &guard;
                item
            })
            .boxed()
    }
}

/// The count a `SELECT count(*)` returned.
fn count_of(rows: &[Vec<Value>]) -> u64 {
    rows.first()
        .and_then(|r| r.first())
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .max(0) as u64
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
