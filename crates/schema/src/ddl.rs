//! DDL per backend, following what DataJoint 2.3.5 emits (see the relational reference).

use crate::Backend;

use dj_core::typespec::{CoreType, TypeSpec};

use crate::db::{literal, qualified, quote};
use crate::dialect::dialect;
use crate::heading::{Attribute, Heading};

/// The column type of a declared attribute whose final (post-codec) type is `final_type`.
pub(crate) fn sql_type(backend: Backend, schema: &str, final_type: &TypeSpec) -> String {
    match final_type {
        TypeSpec::Core(c) => dialect(backend).column_type(schema, c),
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
        return Some(dialect(backend).current_timestamp_default(upper));
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
    s.push_str(&dialect(backend).column_suffix(a));
    s
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
    let d = dialect(backend);
    let (inline, mut after) = d.index_ddl(h, &table, index_list);
    lines.extend(inline);
    after.extend(d.after_create_table(h, &table));
    let options = d.table_options(&h.comment);
    let mut out = vec![format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n){}",
        table,
        lines.join(",\n"),
        options
    )];
    out.extend(after);
    out
}

/// `CREATE [UNIQUE] INDEX` statements, after `CREATE TABLE`, for the indexes `(unique,
/// columns)` of table `h` (qualified name `table`), named by
/// [`Dialect::index_name`](crate::dialect::Dialect::index_name).
pub(crate) fn create_index_statements(
    backend: Backend,
    h: &Heading,
    table: &str,
    indexes: &[(bool, Vec<String>)],
) -> Vec<String> {
    let d = dialect(backend);
    indexes
        .iter()
        .map(|(unique, cols)| {
            let joined = cols.join("_");
            let short: String = joined.chars().take(30).collect();
            let name = d.index_name(h, &short, &joined);
            let quoted: Vec<String> = cols.iter().map(|c| d.quote(c)).collect();
            format!(
                "CREATE {}INDEX {} ON {} ({})",
                if *unique { "UNIQUE " } else { "" },
                d.quote(&name),
                table,
                quoted.join(", ")
            )
        })
        .collect()
}

/// PostgreSQL's longest identifier, in bytes; longer ones are cut to this length silently.
const PG_MAX_IDENTIFIER: usize = 63;

/// `name` when it fits in [`PG_MAX_IDENTIFIER`] bytes (DataJoint's index name); otherwise its
/// first 46 bytes, `_` and 16 hex digits of a hash of `name` and `detail` (the full column list),
/// so that two long names never collapse into one as PostgreSQL's truncation would make them.
/// Names are ASCII here (table and attribute names are checked), so byte cuts are char cuts.
pub(crate) fn fit_identifier(name: String, detail: &str) -> String {
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
    dialect(backend).lineage_table_sql(schema)
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

    /// A heading that reaches every branch of the DDL: inherited and declared columns, enums
    /// with a backslash, defaults (quoted, `CURRENT_TIMESTAMP(3)`), a codec column, a nullable
    /// and a unique foreign key, secondary indexes and a name too long for PostgreSQL.
    fn every_branch() -> Heading {
        let attr = |name: &str, spec: &str, in_key: bool, nullable: bool, default: Option<&str>| {
            let inherited = ["subject_id", "u", "other"].contains(&name);
            serde_json::json!({"name": name, "spec": spec, "sql_type": "", "in_key": in_key,
                "nullable": nullable, "default": default, "comment": format!("{name}'s"),
                "inherited": inherited})
        };
        let attrs = vec![
            attr("subject_id", "int32", true, false, None),
            attr("sess", "uint16", true, false, None),
            attr("sex", "enum('F', 'M', 'U\\\\')", false, false, Some("'F'")),
            attr("kind", "enum('a', 'b')", false, false, None),
            attr(
                "ts",
                "datetime(3)",
                false,
                false,
                Some("CURRENT_TIMESTAMP(3)"),
            ),
            attr("u", "uuid", false, false, None),
            attr("other", "int32", false, true, None),
            attr("data", "<blob>", false, true, None),
            attr("note", "varchar(30)", false, false, Some("\"x\"\"y\\z\"")),
            attr("raw", "int unsigned", false, false, Some("5")),
        ];
        serde_json::from_value(serde_json::json!({
            "schema": "sch",
            "table": "_session_with_a_rather_long_table_name_for_testing_limits",
            "comment": "a session's row",
            "attributes": attrs,
            "foreign_keys": [
                {"parent_schema": "sch", "parent_table": "subject",
                 "attr_map": [["subject_id", "subject_id"]], "nullable": false, "unique": false},
                {"parent_schema": "other", "parent_table": "thing",
                 "attr_map": [["other", "id"]], "nullable": true, "unique": false},
                {"parent_schema": "sch", "parent_table": "uu",
                 "attr_map": [["u", "u"]], "nullable": false, "unique": true}
            ],
            "indexes": [{"unique": false, "columns": ["note", "ts"]},
                        {"unique": true, "columns": ["kind"]}]
        }))
        .unwrap()
    }

    /// The DDL text of every backend, byte for byte as before the move behind `Dialect`
    /// (DataJoint reads these catalogs: comments, `:type:` markers, enum and index names).
    #[test]
    fn ddl_text_is_stable() {
        let mut out = String::new();
        for b in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
            let mut h = every_branch();
            for a in &mut h.attributes {
                a.sql_type = sql_type(b, &h.schema, &a.spec);
                if matches!(a.spec, TypeSpec::Codec { .. }) {
                    a.sql_type = if b == Backend::MySql {
                        "longblob"
                    } else {
                        "bytea"
                    }
                    .into();
                }
            }
            out.push_str(&format!("== {b:?}\n"));
            for (exists, create) in dialect(b).schema_types(&h) {
                out.push_str(&format!("{} {:?}\n{create}\n", exists.text, exists.params));
            }
            for s in create_table(b, &h) {
                out.push_str(&format!("{s}\n"));
            }
            out.push_str(&format!("{}\n", lineage_table(b, &h.schema)));
        }
        let golden = include_str!("testdata/ddl.txt");
        assert_eq!(out, golden, "DDL changed:\n{out}");
    }
}
