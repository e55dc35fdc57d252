//! Finding the attributes whose values live in stores, and reading their stored (not decoded)
//! values. Shared by garbage collection, verification and migration.

use std::collections::BTreeMap;

use dj_config::StoreSpec;
use dj_core::codec::{ResolvedType, StoredRef};
use dj_core::value::Value;

use crate::Row;
use crate::db::Connection;
use crate::error::{Error, Result};
use crate::table::Table;

use super::{Phase, Progress, ProgressHook, report};

/// One attribute whose values may live in a store: its resolved codec chain has a store.
#[derive(Clone, Debug)]
pub(crate) struct StoreAttr {
    pub attribute: String,
    pub resolved: ResolvedType,
}

/// A table with its store-bearing attributes.
#[derive(Clone, Debug)]
pub(crate) struct StoreTable {
    pub table: Table,
    pub attrs: Vec<StoreAttr>,
}

/// What a scan of the catalog found, and what it could not read.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    pub tables: Vec<StoreTable>,
    pub errors: Vec<String>,
}

/// The schemas of the database that hold DataJoint tables with codec attributes: on PostgreSQL
/// and MySQL those with a column whose comment carries a `:<codec>:` marker, on SQLite every
/// schema recorded in the metadata table.
pub(crate) async fn discover_schemas(conn: &Connection) -> Result<Vec<String>> {
    conn.schema_names(crate::dialect::SchemaQuery::WithCodecs)
        .await
}

/// Resolve an attribute's codec chain. A store the configuration does not name is resolved
/// against a placeholder, so that a chain can be classified (and its stored values read) even
/// where that store is not configured: the chain, not the store, says which paths are referenced.
fn resolve(conn: &Connection, table: &Table, attribute: &str) -> Result<Option<ResolvedType>> {
    let Some(info) = table.attr_info(attribute) else {
        return Ok(None);
    };
    if !info.has_codec {
        return Ok(None);
    }
    if let Some(r) = &info.resolved {
        return Ok(Some(r.clone()));
    }
    let spec = table
        .heading()
        .attribute(attribute)
        .map(|a| a.spec.clone())
        .ok_or_else(|| Error::UnknownAttribute {
            table: table.full_name(),
            attribute: attribute.to_string(),
            heading: Vec::new(),
        })?;
    let registry = conn.inner.registry;
    let mut config = (**conn.config()).clone();
    // Add placeholders for unknown stores one at a time (a chain may name several).
    for _ in 0..8 {
        match ResolvedType::resolve(&spec, registry, &config) {
            Ok(r) => return Ok(Some(r)),
            Err(dj_core::Error::UnknownStore { store, .. }) => {
                config
                    .stores
                    .specs
                    .insert(store.clone(), StoreSpec::new(&store, "unconfigured", ""));
            }
            Err(e) => return Err(Error::core_at(&table.full_name(), attribute, e)),
        }
    }
    Err(Error::BadValue {
        table: table.full_name(),
        attribute: attribute.to_string(),
        message: "the codec chain names too many unconfigured stores".into(),
    })
}

/// Load every table of `schemas` that has store-bearing attributes. Tables and schemas dropped
/// while the scan runs are skipped (their rows reference nothing any more); every other failure
/// is recorded in [`Catalog::errors`], and so is an attribute whose codec cannot be resolved in
/// this process (which paths it references is then unknown).
pub(crate) async fn load_catalog(
    conn: &Connection,
    schemas: &[String],
    progress: &Option<ProgressHook>,
) -> Catalog {
    let mut out = Catalog::default();
    let mut done = 0u64;
    for name in schemas {
        let schema = match conn.existing_schema(name).await {
            Ok(s) => s,
            Err(Error::NoSuchSchema { .. }) => continue,
            Err(e) => {
                out.errors
                    .push(format!("schema `{name}`: cannot open it: {e}"));
                continue;
            }
        };
        let tables = match schema.list_tables().await {
            Ok(t) => t,
            Err(e) => {
                out.errors
                    .push(format!("schema `{name}`: cannot list its tables: {e}"));
                continue;
            }
        };
        for t in tables {
            let table = match schema.table(&t).await {
                Ok(table) => table,
                Err(Error::NoSuchTable { .. }) => continue,
                Err(e) => {
                    out.errors
                        .push(format!("table `{name}.{t}`: cannot read its heading: {e}"));
                    continue;
                }
            };
            let mut attrs = Vec::new();
            let names: Vec<String> = table
                .heading()
                .attributes
                .iter()
                .map(|a| a.name.clone())
                .collect();
            for a in names {
                match resolve(conn, &table, &a) {
                    Ok(Some(resolved)) if resolved.store.is_some() => attrs.push(StoreAttr {
                        attribute: a,
                        resolved,
                    }),
                    Ok(_) => {}
                    Err(e) => out.errors.push(format!(
                        "{e} (the codec cannot be resolved in this process, so the store paths this \
                         attribute references are unknown; register the codec)"
                    )),
                }
            }
            if !attrs.is_empty() {
                out.tables.push(StoreTable { table, attrs });
            }
        }
        done += 1;
        report(
            progress,
            Progress {
                phase: Phase::Discover,
                done,
                total: Some(schemas.len() as u64),
                bytes: 0,
            },
        );
    }
    out
}

/// The stored values of `names` for every row of `table`, as the database holds them (one
/// query, so one consistent snapshot of the table).
pub(crate) async fn stored_rows(table: &Table, names: &[String]) -> Result<Vec<Row>> {
    table
        .query()
        .attrs(names.iter().cloned())
        .fetch_stored()
        .await
}

/// The JSON document a stored value holds: a JSON value, or text that parses as JSON.
pub(crate) fn as_json(v: &Value) -> Option<serde_json::Value> {
    v.stored_json().ok().map(std::borrow::Cow::into_owned)
}

/// A path as recorded in metadata, normalised the way it is used as a key (Windows separators
/// and leading slashes, which older writers produced, removed).
pub(crate) fn normalize_path(p: &str) -> String {
    p.replace('\\', "/").trim_start_matches('/').to_string()
}

/// The store a reference lives in: the one its metadata names, else the attribute's own.
pub(crate) fn effective_store<'a>(r: &'a StoredRef, attr: &'a StoreAttr) -> Option<&'a str> {
    r.store
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(attr.resolved.store.as_deref())
}

/// The primary key of a fetched row, as a compact JSON object for reports.
pub(crate) fn key_text(table: &Table, row: &Row) -> String {
    let mut map = BTreeMap::new();
    for k in table.heading().primary_key() {
        if let Some(v) = row.get(k) {
            map.insert(k.to_string(), value_text(v));
        }
    }
    serde_json::to_string(&map).unwrap_or_default()
}

fn value_text(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::UInt(u) => (*u).into(),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::String(s) | Value::Decimal(s) => s.clone().into(),
        Value::Uuid(u) => u.to_string().into(),
        Value::Date(d) => d.to_string().into(),
        Value::DateTime(d) => d.to_string().into(),
        Value::Json(j) => j.clone(),
        other => other.kind().into(),
    }
}
