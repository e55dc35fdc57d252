//! Reading the catalog: schemas, tables, headings (from DataJoint's comment markers), foreign keys
//! and the dependency graph. On SQLite the same facts live in the `~dj_tables` metadata table.

use std::future::Future;
use std::pin::Pin;

use crate::Backend;

use dj_core::typespec::{CoreType, TypeSpec};
use dj_core::value::Value;

use crate::db::{Exec, Sql, qualified, quote};
use crate::dialect::{dialect, sort_foreign_keys};
use crate::error::{Error, Result};
use crate::heading::{Attribute, ColKind, ForeignKey, Heading, Index};

/// SQLite metadata tables.
pub(crate) const SQLITE_SCHEMAS: &str = "~dj_schemas";
pub(crate) const SQLITE_TABLES: &str = "~dj_tables";

type Rows = Vec<Vec<Option<String>>>;

/// Run a query whose columns are all read as text.
pub(crate) async fn text_rows(ex: &mut Exec<'_>, sql: &Sql, ncols: usize) -> Result<Rows> {
    let kinds = vec![ColKind::Text; ncols];
    let rows = ex.fetch(sql, &kinds).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| match v {
                    Value::String(s) => Some(s),
                    Value::Null => None,
                    other => Some(format!("{other:?}")),
                })
                .collect()
        })
        .collect())
}

fn q(backend: Backend) -> Sql {
    Sql::new(backend)
}

fn text(s: &str) -> Option<crate::db::Param> {
    Some(crate::db::Param::Text(s.to_string()))
}

/// Make sure the SQLite metadata tables exist.
pub(crate) async fn sqlite_bootstrap(ex: &mut Exec<'_>) -> Result<()> {
    ex.raw(&format!(
        "CREATE TABLE IF NOT EXISTS {} (schema_name TEXT PRIMARY KEY NOT NULL)",
        quote(Backend::Sqlite, SQLITE_SCHEMAS)
    ))
    .await?;
    ex.raw(&format!(
        "CREATE TABLE IF NOT EXISTS {} (schema_name TEXT NOT NULL, table_name TEXT NOT NULL, \
         heading TEXT NOT NULL, PRIMARY KEY (schema_name, table_name))",
        quote(Backend::Sqlite, SQLITE_TABLES)
    ))
    .await?;
    Ok(())
}

/// Whether a schema exists.
pub(crate) async fn schema_exists(
    ex: &mut Exec<'_>,
    backend: Backend,
    schema: &str,
) -> Result<bool> {
    let d = dialect(backend);
    if d.keeps_metadata_tables() {
        sqlite_bootstrap(ex).await?;
    }
    Ok(!text_rows(ex, &d.schema_exists_sql(schema), 1)
        .await?
        .is_empty())
}

/// Names of the tables of a schema (hidden `~` tables excluded), sorted.
pub(crate) async fn list_tables(
    ex: &mut Exec<'_>,
    backend: Backend,
    schema: &str,
) -> Result<Vec<String>> {
    let d = dialect(backend);
    if d.keeps_metadata_tables() {
        sqlite_bootstrap(ex).await?;
    }
    let mut names: Vec<String> = text_rows(ex, &d.list_tables_sql(schema), 1)
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .filter(|n| !n.starts_with('~'))
        .collect();
    names.sort();
    Ok(names)
}

/// Whether a table exists.
pub(crate) async fn table_exists(
    ex: &mut Exec<'_>,
    backend: Backend,
    schema: &str,
    table: &str,
) -> Result<bool> {
    let d = dialect(backend);
    if d.keeps_metadata_tables() {
        sqlite_bootstrap(ex).await?;
    }
    Ok(!text_rows(ex, &d.table_exists_sql(schema, table), 1)
        .await?
        .is_empty())
}

/// Split a column comment into the `:type:` marker and the user comment. The marker ends at the
/// first `:` outside quotes and parentheses, so an enum value may hold a `:`
/// (`:enum('a:b'):comment`).
pub(crate) fn split_marker(comment: &str) -> (Option<&str>, &str) {
    let Some(rest) = comment.strip_prefix(':') else {
        return (None, comment);
    };
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) if c == q => {
                // A doubled quote stays inside the value.
                if chars.peek().is_some_and(|&(_, n)| n == q) {
                    chars.next();
                } else {
                    quote = None;
                }
            }
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ':' if depth == 0 => {
                    return if i > 0 {
                        (Some(&rest[..i]), &rest[i + 1..])
                    } else {
                        (None, comment)
                    };
                }
                _ => {}
            },
        }
    }
    (None, comment)
}

/// The core type of a native column type (for columns without a marker).
pub(crate) fn core_from_sql(sql: &str) -> TypeSpec {
    let lower = sql.trim().to_ascii_lowercase();
    let (base, args) = match lower.find('(') {
        Some(p) => (
            lower[..p].trim(),
            lower[p + 1..].trim_end_matches(')').trim(),
        ),
        None => (lower.as_str(), ""),
    };
    let core = match base {
        "tinyint" => Some(CoreType::Int8),
        "smallint" => Some(CoreType::Int16),
        "int" | "integer" => Some(CoreType::Int32),
        "bigint" => Some(CoreType::Int64),
        "float" | "real" => Some(CoreType::Float32),
        "double" | "double precision" => Some(CoreType::Float64),
        "boolean" => Some(CoreType::Bool),
        "uuid" => Some(CoreType::Uuid),
        "jsonb" | "json" => Some(CoreType::Json),
        "bytea" | "longblob" => Some(CoreType::Bytes),
        "date" => Some(CoreType::Date),
        "timestamp without time zone" => Some(CoreType::DateTime(None)),
        _ => None,
    };
    if let Some(c) = core {
        return TypeSpec::Core(c);
    }
    let normalized = match base {
        "character varying" => format!("varchar({args})"),
        "character" => format!("char({args})"),
        "numeric" => format!("decimal({args})"),
        _ => lower.clone(),
    };
    match normalized.parse::<TypeSpec>() {
        Ok(t @ TypeSpec::Core(_)) => t,
        _ => TypeSpec::Native(sql.to_string()),
    }
}

/// A server default turned back into definition syntax.
fn normalize_default(backend: Backend, d: Option<String>) -> Option<String> {
    let d = d?;
    let t = d.trim();
    if t.eq_ignore_ascii_case("null") {
        return None;
    }
    if t.to_ascii_lowercase().starts_with("current_timestamp") {
        return Some(t.to_ascii_uppercase().replace("()", ""));
    }
    let literal = dialect(backend).strip_default_cast(t).to_string();
    if literal.starts_with('\'') && literal.ends_with('\'') && literal.len() >= 2 {
        let inner = literal[1..literal.len() - 1].replace("''", "'");
        return Some(format!("\"{}\"", inner.replace('"', "\"\"")));
    }
    Some(literal)
}

/// Load a table's heading from the catalog (SQLite: from the metadata table).
pub(crate) fn load_heading<'a>(
    ex: &'a mut Exec<'_>,
    backend: Backend,
    schema: &'a str,
    table: &'a str,
    depth: usize,
) -> Pin<Box<dyn Future<Output = Result<Heading>> + Send + 'a>> {
    Box::pin(async move {
        if !dialect(backend).keeps_metadata_tables() {
            return load_server_heading(ex, backend, schema, table, depth).await;
        }
        let full = format!("{schema}.{table}");
        sqlite_bootstrap(ex).await?;
        let mut sql = q(backend);
        sql.push("SELECT heading FROM ")
            .ident(SQLITE_TABLES)
            .push(" WHERE schema_name = ")
            .bind(text(schema), None)
            .push(" AND table_name = ")
            .bind(text(table), None);
        let rows = text_rows(ex, &sql, 1).await?;
        let Some(Some(json)) = rows.into_iter().next().and_then(|r| r.into_iter().next()) else {
            return Err(Error::NoSuchTable { table: full });
        };
        serde_json::from_str(&json).map_err(|e| Error::Refused {
            table: full,
            message: format!("metadata is unreadable: {e}"),
        })
    })
}

async fn load_server_heading(
    ex: &mut Exec<'_>,
    backend: Backend,
    schema: &str,
    table: &str,
    depth: usize,
) -> Result<Heading> {
    let full = format!("{schema}.{table}");
    let d = dialect(backend);
    // Table comment and existence.
    let sql = d.table_comment_sql(schema, table);
    let rows = text_rows(ex, &sql, 1).await?;
    let Some(first) = rows.into_iter().next() else {
        return Err(Error::NoSuchTable { table: full });
    };
    let comment = first.into_iter().next().flatten().unwrap_or_default();

    // Columns.
    let sql = d.columns_sql(schema, table);
    let cols = text_rows(ex, &sql, 10).await?;
    let mut attributes = Vec::new();
    for c in cols {
        let get = |i: usize| c.get(i).cloned().flatten().unwrap_or_default();
        let name = get(0);
        let sql_type = d.catalog_column_type(&get);
        let nullable = get(4).eq_ignore_ascii_case("YES");
        let full_comment = get(9);
        let (marker, user_comment) = split_marker(&full_comment);
        let spec = match marker.map(str::parse::<TypeSpec>) {
            Some(Ok(spec)) => spec,
            _ => core_from_sql(&sql_type),
        };
        let default = normalize_default(backend, c.get(5).cloned().flatten());
        attributes.push(Attribute {
            name,
            spec,
            sql_type,
            in_key: false,
            nullable,
            default: if nullable {
                Some("null".into())
            } else {
                default
            },
            comment: user_comment.to_string(),
            // Set from the foreign keys below.
            inherited: false,
        });
    }

    // Primary key.
    let sql = d.primary_key_sql(schema, table);
    for r in text_rows(ex, &sql, 1).await? {
        if let Some(Some(n)) = r.into_iter().next()
            && let Some(a) = attributes.iter_mut().find(|a| a.name == n)
        {
            a.in_key = true;
        }
    }

    let foreign_keys = foreign_keys(ex, backend, schema, table, false)
        .await?
        .into_iter()
        .map(|(_, _, fk)| fk)
        .collect::<Vec<_>>();
    // A column is inherited when it belongs to a foreign key. The comment marker does not tell:
    // DataJoint and dj-rs write `:uuid:` on inherited uuid columns (MySQL stores a uuid as
    // `binary(16)`), and they write no marker on the other inherited columns.
    for a in &mut attributes {
        a.inherited = foreign_keys
            .iter()
            .any(|fk| fk.attr_map.iter().any(|(c, _)| c == &a.name));
    }
    // An inherited column has its parent's type (and comment, when it has none of its own).
    if depth < 32 {
        for fk in &foreign_keys {
            let parent =
                load_heading(ex, backend, &fk.parent_schema, &fk.parent_table, depth + 1).await?;
            for (c, p) in &fk.attr_map {
                if let (Some(a), Some(pa)) = (
                    attributes.iter_mut().find(|a| &a.name == c),
                    parent.attribute(p),
                ) {
                    a.spec = pa.spec.clone();
                    if a.comment.is_empty() {
                        a.comment = pa.comment.clone();
                    }
                }
            }
        }
    }
    let mut nullable_fk = Vec::new();
    for fk in &foreign_keys {
        if fk
            .attr_map
            .iter()
            .all(|(c, _)| attributes.iter().any(|a| &a.name == c && a.nullable))
        {
            nullable_fk.push(true);
        } else {
            nullable_fk.push(false);
        }
    }
    let foreign_keys: Vec<ForeignKey> = foreign_keys
        .into_iter()
        .zip(nullable_fk)
        .map(|(mut fk, n)| {
            fk.nullable = n;
            fk
        })
        .collect();
    for a in &mut attributes {
        if a.inherited && a.nullable {
            a.default = None;
        }
    }
    let mut indexes = indexes(ex, backend, schema, table, &foreign_keys).await?;
    // `-> [unique] Parent` is a foreign key plus a unique index on exactly its columns: read it
    // back as declared (DataJoint's `describe` does the same).
    let mut foreign_keys = foreign_keys;
    for fk in &mut foreign_keys {
        if let Some(pos) = indexes.iter().position(|ix| {
            ix.unique
                && ix.columns.len() == fk.attr_map.len()
                && ix
                    .columns
                    .iter()
                    .zip(&fk.attr_map)
                    .all(|(i, (c, _))| i == c)
        }) {
            indexes.remove(pos);
            fk.unique = true;
        }
    }
    Ok(Heading {
        schema: schema.to_string(),
        table: table.to_string(),
        comment,
        attributes,
        foreign_keys,
        indexes,
    })
}

/// `int(11)` → `int`, `double(22,0)`?; keeps `decimal(p,s)`, `varchar(n)`, `binary(16)`, enums.
pub(crate) fn strip_display_width(t: &str) -> String {
    let lower = t.to_ascii_lowercase();
    for base in ["tinyint", "smallint", "mediumint", "int", "bigint"] {
        if let Some(rest) = lower.strip_prefix(base)
            && rest.starts_with('(')
            && let Some(close) = rest.find(')')
        {
            return format!("{base}{}", &rest[close + 1..]);
        }
    }
    t.to_string()
}

/// The foreign keys of a table (`children == false`), or the foreign keys that point to it
/// from other tables (`children == true`), as `(child schema, child table, fk)`.
pub(crate) async fn foreign_keys(
    ex: &mut Exec<'_>,
    backend: Backend,
    schema: &str,
    table: &str,
    children: bool,
) -> Result<Vec<(String, String, ForeignKey)>> {
    let d = dialect(backend);
    if d.keeps_metadata_tables() {
        sqlite_bootstrap(ex).await?;
        let mut sql = q(backend);
        sql.push("SELECT schema_name, table_name, heading FROM ")
            .ident(SQLITE_TABLES);
        if !children {
            sql.push(" WHERE schema_name = ")
                .bind(text(schema), None)
                .push(" AND table_name = ")
                .bind(text(table), None);
        }
        let mut out = Vec::new();
        for r in text_rows(ex, &sql, 3).await? {
            let (Some(Some(s)), Some(Some(t)), Some(Some(json))) = (r.first(), r.get(1), r.get(2))
            else {
                continue;
            };
            let Ok(h) = serde_json::from_str::<Heading>(json) else {
                continue;
            };
            for fk in h.foreign_keys {
                if !children || (fk.parent_schema == schema && fk.parent_table == table) {
                    out.push((s.clone(), t.clone(), fk));
                }
            }
        }
        return Ok(out);
    }
    let sql = d.foreign_keys_sql(schema, table, children);
    let rows = text_rows(ex, &sql, 7).await?;
    let mut groups: Vec<(String, String, String, ForeignKey)> = Vec::new();
    for r in rows {
        let g = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        let (cname, cs, ct, ps, pt, cc, pc) = (g(0), g(1), g(2), g(3), g(4), g(5), g(6));
        match groups
            .iter_mut()
            .find(|(n, s, t, _)| *n == cname && *s == cs && *t == ct)
        {
            Some((_, _, _, fk)) => fk.attr_map.push((cc, pc)),
            None => groups.push((
                cname,
                cs,
                ct,
                ForeignKey {
                    parent_schema: ps,
                    parent_table: pt,
                    attr_map: vec![(cc, pc)],
                    nullable: false,
                    unique: false,
                },
            )),
        }
    }
    sort_foreign_keys(d, &mut groups, |(n, s, t, _)| (n, s, t));
    Ok(groups.into_iter().map(|(_, s, t, fk)| (s, t, fk)).collect())
}

async fn indexes(
    ex: &mut Exec<'_>,
    backend: Backend,
    schema: &str,
    table: &str,
    fks: &[ForeignKey],
) -> Result<Vec<Index>> {
    let d = dialect(backend);
    let sql = d.indexes_sql(schema, table);
    let rows = text_rows(ex, &sql, 3).await?;
    let mut out: Vec<(String, Index)> = Vec::new();
    for r in rows {
        let g = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        let (name, flag, cols) = (g(0), g(1), g(2));
        let unique = d.index_is_unique(&flag);
        let columns: Vec<String> = cols.split(',').map(str::to_string).collect();
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, ix)) if d.index_row_per_column() => ix.columns.extend(columns),
            _ => out.push((name, Index { unique, columns })),
        }
    }
    Ok(out
        .into_iter()
        .map(|(_, ix)| ix)
        .filter(|ix| {
            // Indexes that only support a foreign key are not declared by the user.
            ix.unique
                || !fks.iter().any(|fk| {
                    fk.attr_map.len() == ix.columns.len()
                        && fk
                            .attr_map
                            .iter()
                            .zip(&ix.columns)
                            .all(|((c, _), i)| c == i)
                })
        })
        .collect())
}

/// The lineage of an attribute from a schema's `~lineage` table, if the table and row exist.
pub(crate) async fn lineage_of(
    ex: &mut Exec<'_>,
    backend: Backend,
    schema: &str,
    table: &str,
    attribute: &str,
) -> Result<Option<String>> {
    if !table_exists_raw(ex, backend, schema, "~lineage").await? {
        return Ok(None);
    }
    let mut sql = q(backend);
    sql.push("SELECT lineage FROM ")
        .push(&qualified(backend, schema, "~lineage"))
        .push(" WHERE table_name = ")
        .bind(text(table), None)
        .push(" AND attribute_name = ")
        .bind(text(attribute), None);
    Ok(text_rows(ex, &sql, 1)
        .await?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten()))
}

/// Every `~lineage` row of a table, attribute to lineage; `None` when the schema has no
/// `~lineage` table (then the semantic check of joins is off, as in DataJoint).
pub(crate) async fn table_lineages(
    ex: &mut Exec<'_>,
    backend: Backend,
    schema: &str,
    table: &str,
) -> Result<Option<std::collections::HashMap<String, String>>> {
    if !table_exists_raw(ex, backend, schema, "~lineage").await? {
        return Ok(None);
    }
    let mut sql = q(backend);
    sql.push("SELECT attribute_name, lineage FROM ")
        .push(&qualified(backend, schema, "~lineage"))
        .push(" WHERE table_name = ")
        .bind(text(table), None);
    Ok(Some(
        text_rows(ex, &sql, 2)
            .await?
            .into_iter()
            .filter_map(|r| {
                let mut it = r.into_iter();
                Some((it.next().flatten()?, it.next().flatten()?))
            })
            .collect(),
    ))
}

/// Whether a table exists in the server catalog (SQLite: in `sqlite_master`), metadata aside.
pub(crate) async fn table_exists_raw(
    ex: &mut Exec<'_>,
    backend: Backend,
    schema: &str,
    table: &str,
) -> Result<bool> {
    let sql = dialect(backend).raw_table_exists_sql(schema, table);
    Ok(!text_rows(ex, &sql, 1).await?.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_native_types() {
        assert_eq!(
            split_marker(":<blob@cold>:raw data"),
            (Some("<blob@cold>"), "raw data")
        );
        assert_eq!(split_marker(":int16:"), (Some("int16"), ""));
        assert_eq!(split_marker("subject id"), (None, "subject id"));
        assert_eq!(
            split_marker(":enum(' 1\" :,', 'it''s: x'):a: b"),
            (Some("enum(' 1\" :,', 'it''s: x')"), "a: b")
        );
        assert_eq!(split_marker("::x"), (None, "::x"));
        assert_eq!(split_marker(":enum('a"), (None, ":enum('a"));
        assert_eq!(
            core_from_sql("character varying(16)").to_string(),
            "varchar(16)"
        );
        assert_eq!(core_from_sql("numeric(6,2)").to_string(), "decimal(6,2)");
        assert_eq!(core_from_sql("integer").to_string(), "int32");
        assert_eq!(
            core_from_sql("int unsigned"),
            TypeSpec::Native("int unsigned".into())
        );
        assert_eq!(strip_display_width("int(11)"), "int");
        assert_eq!(
            strip_display_width("tinyint(4) unsigned"),
            "tinyint unsigned"
        );
        assert_eq!(
            normalize_default(Backend::Postgres, Some("'a''b'::character varying".into())).unwrap(),
            "\"a'b\""
        );
        assert_eq!(
            normalize_default(Backend::MySql, Some("current_timestamp(3)".into())).unwrap(),
            "CURRENT_TIMESTAMP(3)"
        );
    }
}
