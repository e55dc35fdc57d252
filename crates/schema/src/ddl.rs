//! DDL per backend, following what DataJoint 2.3.5 emits (see the relational reference).

use dj_core::typespec::{Backend, CoreType, TypeSpec};

use crate::db::{literal, qualified, quote};
use crate::heading::{Attribute, Heading};
use crate::sqltype::SqlType;

/// The column type of a declared attribute whose final (post-codec) type is `final_type`.
pub(crate) fn sql_type(backend: Backend, schema: &str, final_type: &TypeSpec) -> String {
    match final_type {
        TypeSpec::Core(c @ CoreType::Enum(_)) if backend == Backend::Postgres => {
            let name = c.pg_enum_type_name().unwrap_or_default();
            format!("{}.{}", quote(backend, schema), quote(backend, &name))
        }
        // Enum values are string literals inside the type: escaped as every other literal (on
        // MySQL a backslash escapes, so a value ending in `\` would otherwise end the list).
        TypeSpec::Core(CoreType::Enum(values)) if backend == Backend::MySql => {
            let list: Vec<String> = values.iter().map(|v| literal(backend, v)).collect();
            format!("enum({})", list.join(", "))
        }
        TypeSpec::Core(c) => c.sql_type(backend),
        TypeSpec::Native(n) => n.clone(),
        TypeSpec::Codec { .. } => String::new(),
    }
}

/// The comment stored with a column: `:<type>:comment` for core and codec types, the plain
/// comment for native types, and for inherited columns the parent's comment (with `:uuid:` kept).
pub(crate) fn column_comment(a: &Attribute) -> String {
    if a.inherited {
        if matches!(a.spec, TypeSpec::Core(CoreType::Uuid)) {
            return format!(":uuid:{}", a.comment);
        }
        return a.comment.clone();
    }
    match &a.spec {
        TypeSpec::Native(_) => a.comment.clone(),
        spec => format!(":{spec}:{}", a.comment),
    }
}

/// The SQL of a default as written in a definition.
pub(crate) fn default_sql(backend: Backend, written: &str) -> Option<String> {
    let w = written.trim();
    if w.eq_ignore_ascii_case("null") {
        return None;
    }
    let upper = w.to_ascii_uppercase();
    if upper == "CURRENT_TIMESTAMP"
        || (upper.starts_with("CURRENT_TIMESTAMP(")
            && upper.ends_with(')')
            && upper[18..upper.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_digit()))
    {
        return Some(match backend {
            Backend::Sqlite => "CURRENT_TIMESTAMP".into(),
            _ => upper,
        });
    }
    Some(literal(backend, &unquote(w)))
}

/// The text of a possibly quoted default: `"a""b"` and `'a''b'` give `a"b` / `a'b`.
pub(crate) fn unquote(w: &str) -> String {
    for q in ['"', '\''] {
        if w.len() >= 2 && w.starts_with(q) && w.ends_with(q) {
            let inner = &w[1..w.len() - 1];
            let doubled = format!("{q}{q}");
            return inner.replace(&doubled, &q.to_string());
        }
    }
    w.to_string()
}

fn column_ddl(backend: Backend, a: &Attribute, nullable_fk: bool) -> String {
    let mut s = format!("{} {}", quote(backend, &a.name), a.sql_type);
    if nullable_fk {
        // DataJoint emits neither NOT NULL nor DEFAULT for a nullable foreign key.
    } else if a.nullable {
        s.push_str(" DEFAULT NULL");
    } else {
        s.push_str(" NOT NULL");
        if let Some(d) = a.default.as_deref().and_then(|d| default_sql(backend, d)) {
            s.push_str(" DEFAULT ");
            s.push_str(&d);
        }
    }
    if backend == Backend::Sqlite
        && let TypeSpec::Core(CoreType::Enum(values)) = &a.spec
        && !a.inherited
    {
        let list: Vec<String> = values.iter().map(|v| literal(backend, v)).collect();
        s.push_str(&format!(
            " CHECK ({} IN ({}))",
            quote(backend, &a.name),
            list.join(", ")
        ));
    }
    if backend == Backend::MySql {
        let c = column_comment(a);
        if !c.is_empty() {
            s.push_str(" COMMENT ");
            s.push_str(&literal(backend, &c));
        }
    }
    s
}

/// `CREATE TYPE` statements for the PostgreSQL enums of a heading (run only when missing).
pub(crate) fn pg_enum_types(heading: &Heading) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for a in &heading.attributes {
        if a.inherited {
            continue;
        }
        if let TypeSpec::Core(c @ CoreType::Enum(values)) = &a.spec {
            let name = c.pg_enum_type_name().unwrap_or_default();
            let list: Vec<String> = values
                .iter()
                .map(|v| literal(Backend::Postgres, v))
                .collect();
            let ddl = format!(
                "CREATE TYPE {} AS ENUM ({})",
                qualified(Backend::Postgres, &heading.schema, &name),
                list.join(", ")
            );
            if !out.iter().any(|(n, _)| n == &name) {
                out.push((name, ddl));
            }
        }
    }
    out
}

/// The `CREATE TABLE` statement and the statements that follow it (indexes, comments).
pub(crate) fn create_table(backend: Backend, h: &Heading) -> Vec<String> {
    let table = qualified(backend, &h.schema, &h.table);
    let mut lines = Vec::new();
    let nullable_fk_cols: Vec<&str> = h
        .foreign_keys
        .iter()
        .filter(|fk| fk.nullable)
        .flat_map(|fk| fk.attr_map.iter().map(|(c, _)| c.as_str()))
        .collect();
    for a in &h.attributes {
        lines.push(column_ddl(
            backend,
            a,
            a.inherited && nullable_fk_cols.contains(&a.name.as_str()),
        ));
    }
    let pk: Vec<String> = h.primary_key().iter().map(|c| quote(backend, c)).collect();
    lines.push(format!("PRIMARY KEY ({})", pk.join(", ")));
    for fk in &h.foreign_keys {
        let child: Vec<String> = fk.attr_map.iter().map(|(c, _)| quote(backend, c)).collect();
        let parent: Vec<String> = fk.attr_map.iter().map(|(_, p)| quote(backend, p)).collect();
        lines.push(format!(
            "FOREIGN KEY ({}) REFERENCES {} ({}) ON UPDATE CASCADE ON DELETE RESTRICT",
            child.join(", "),
            qualified(backend, &fk.parent_schema, &fk.parent_table),
            parent.join(", ")
        ));
    }
    let mut after = Vec::new();
    let mut index_list: Vec<(bool, Vec<String>)> = h
        .indexes
        .iter()
        .map(|i| (i.unique, i.columns.clone()))
        .collect();
    for fk in &h.foreign_keys {
        if fk.unique {
            index_list.push((true, fk.attr_map.iter().map(|(c, _)| c.clone()).collect()));
        }
    }
    if backend == Backend::MySql {
        for (unique, cols) in &index_list {
            let cols: Vec<String> = cols.iter().map(|c| quote(backend, c)).collect();
            lines.push(format!(
                "{}index ({})",
                if *unique { "unique " } else { "" },
                cols.join(",")
            ));
        }
    } else {
        if backend == Backend::Postgres {
            // Support indexes for foreign keys that no other index covers (DataJoint #1512).
            let pk_names: Vec<String> = h.primary_key().iter().map(|s| s.to_string()).collect();
            let fk_cols: Vec<Vec<String>> = h
                .foreign_keys
                .iter()
                .filter(|fk| !fk.unique)
                .map(|fk| fk.attr_map.iter().map(|(c, _)| c.clone()).collect())
                .collect();
            let is_prefix = |cols: &[String], of: &[String]| {
                cols.len() <= of.len() && of[..cols.len()] == *cols
            };
            for (i, cols) in fk_cols.iter().enumerate() {
                let covered = is_prefix(cols, &pk_names)
                    || index_list.iter().any(|(_, ix)| is_prefix(cols, ix))
                    || fk_cols
                        .iter()
                        .enumerate()
                        .any(|(j, o)| j != i && o.len() > cols.len() && is_prefix(cols, o));
                if !covered && !index_list.iter().any(|(_, ix)| ix == cols) {
                    index_list.push((false, cols.clone()));
                }
            }
        }
        for (unique, cols) in &index_list {
            let joined = cols.join("_");
            let short: String = joined.chars().take(30).collect();
            let name = match backend {
                // SQLite index names are database-wide: prefix the schema.
                Backend::Sqlite => format!("{}.idx_{}_{}", h.schema, h.table, short),
                _ => fit_identifier(format!("idx_{}_{}", h.table, short), &joined),
            };
            let quoted: Vec<String> = cols.iter().map(|c| quote(backend, c)).collect();
            after.push(format!(
                "CREATE {}INDEX {} ON {} ({})",
                if *unique { "UNIQUE " } else { "" },
                quote(backend, &name),
                table,
                quoted.join(", ")
            ));
        }
    }
    if backend == Backend::Postgres {
        after.push(format!(
            "COMMENT ON TABLE {} IS {}",
            table,
            literal(backend, &h.comment)
        ));
        for a in &h.attributes {
            if a.inherited {
                continue;
            }
            let c = column_comment(a);
            if !c.is_empty() {
                after.push(format!(
                    "COMMENT ON COLUMN {}.{} IS {}",
                    table,
                    quote(backend, &a.name),
                    literal(backend, &c)
                ));
            }
            // A codec's `bytea` (a `<blob>`, an `<attach>`) is already compressed by the codec
            // where that pays; PostgreSQL's own pglz pass over it costs more than the rest of
            // the insert and saves nothing. Out-of-line storage without compression. DataJoint
            // does not read a column's storage mode, so Python sees the same table.
            if matches!(a.spec, TypeSpec::Codec { .. }) && a.sql_type == "bytea" {
                after.push(format!(
                    "ALTER TABLE {} ALTER COLUMN {} SET STORAGE EXTERNAL",
                    table,
                    quote(backend, &a.name)
                ));
            }
        }
    }
    let options = match backend {
        Backend::MySql if h.comment.is_empty() => " ENGINE=InnoDB".to_string(),
        Backend::MySql => format!(" ENGINE=InnoDB, COMMENT {}", literal(backend, &h.comment)),
        _ => String::new(),
    };
    let mut out = vec![format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n){}",
        table,
        lines.join(",\n"),
        options
    )];
    out.extend(after);
    out
}

/// PostgreSQL's longest identifier, in bytes; longer ones are cut to this length silently.
const PG_MAX_IDENTIFIER: usize = 63;

/// `name` when it fits in [`PG_MAX_IDENTIFIER`] bytes (DataJoint's index name); otherwise its
/// first 46 bytes, `_` and 16 hex digits of a hash of `name` and `detail` (the full column list),
/// so that two long names never collapse into one as PostgreSQL's truncation would make them.
/// Names are ASCII here (table and attribute names are checked), so byte cuts are char cuts.
fn fit_identifier(name: String, detail: &str) -> String {
    if name.len() <= PG_MAX_IDENTIFIER {
        return name;
    }
    // FNV-1a, 64 bits: stable across builds and platforms.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain([0]).chain(detail.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let keep: String = name.chars().take(PG_MAX_IDENTIFIER - 17).collect();
    format!("{keep}_{hash:016x}")
}

/// Every text of a heading that becomes an SQL string literal (table and column comments,
/// defaults, enum values) must be free of NUL characters: no backend stores them in DDL, and
/// dropping them would change the text silently. The parser refuses them in definitions; this
/// also covers comments inherited from a parent read from the catalog.
pub(crate) fn check_literals(h: &Heading) -> Result<(), String> {
    if h.comment.contains('\0') {
        return Err("the table comment contains a NUL character".into());
    }
    for a in &h.attributes {
        let enum_nul = matches!(&a.spec, TypeSpec::Core(CoreType::Enum(v)) if v.iter().any(|v| v.contains('\0')));
        if a.comment.contains('\0')
            || a.default.as_deref().is_some_and(|d| d.contains('\0'))
            || enum_nul
        {
            return Err(format!(
                "attribute `{}`: a NUL character in its comment, default or enum values",
                a.name
            ));
        }
    }
    Ok(())
}

/// The `~lineage` table DDL.
pub(crate) fn lineage_table(backend: Backend, schema: &str) -> String {
    let t = qualified(backend, schema, "~lineage");
    match backend {
        Backend::MySql => format!(
            "CREATE TABLE IF NOT EXISTS {t} (`table_name` VARCHAR(64) NOT NULL COMMENT 'table name within the schema', \
             `attribute_name` VARCHAR(64) NOT NULL COMMENT 'attribute name', \
             `lineage` VARCHAR(255) NOT NULL COMMENT 'origin: schema.table.attribute', \
             PRIMARY KEY (`table_name`, `attribute_name`)) ENGINE=InnoDB"
        ),
        _ => format!(
            "CREATE TABLE IF NOT EXISTS {t} (\"table_name\" VARCHAR(64) NOT NULL, \"attribute_name\" VARCHAR(64) NOT NULL, \
             \"lineage\" VARCHAR(255) NOT NULL, PRIMARY KEY (\"table_name\",\"attribute_name\"))"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_quoted_like_datajoint() {
        assert_eq!(default_sql(Backend::MySql, "5").unwrap(), "'5'");
        assert_eq!(default_sql(Backend::MySql, "\"it's\"").unwrap(), "'it''s'");
        assert_eq!(default_sql(Backend::MySql, "'a\\b'").unwrap(), "'a\\\\b'");
        assert_eq!(
            default_sql(Backend::Postgres, "CURRENT_TIMESTAMP(3)").unwrap(),
            "CURRENT_TIMESTAMP(3)"
        );
        assert_eq!(default_sql(Backend::Postgres, "null"), None);
        assert_eq!(
            default_sql(Backend::Postgres, "'a\\b'").unwrap(),
            "E'a\\\\b'"
        );
        assert_eq!(default_sql(Backend::Sqlite, "'a\\b'").unwrap(), "'a\\b'");
    }

    #[test]
    fn enum_values_are_escaped_on_mysql() {
        let spec: TypeSpec = "enum('a\\', 'b''c', 'd\"e')".parse().unwrap();
        assert_eq!(
            sql_type(Backend::MySql, "s", &spec),
            "enum('a\\\\', 'b''c', 'd\"e')"
        );
    }

    #[test]
    fn long_postgres_index_names_stay_distinct() {
        let short = fit_identifier("idx_t_a".into(), "a");
        assert_eq!(short, "idx_t_a");
        let table = "t".repeat(60);
        let a = fit_identifier(format!("idx_{table}_abc"), "abc");
        let b = fit_identifier(format!("idx_{table}_abd"), "abd");
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_ne!(a, b);
        assert!(a.starts_with("idx_ttt"));
    }
}
