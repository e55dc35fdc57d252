//! PostgreSQL.

use crate::Backend;

use dj_core::typespec::{CoreType, TypeSpec};

use super::{Dialect, ErrorClass, SchemaQuery, quote_literal, quote_with};
use crate::db::{Param, Sql};
use crate::ddl;
use crate::graph::push_in;
use crate::heading::{ColKind, Heading};
use crate::lifecycle::lock::pg_key;
use crate::sqltype::SqlType;

/// PostgreSQL's dialect.
pub(crate) struct Postgres;

impl Dialect for Postgres {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn create_schema_sql(&self, schema: &str) -> Sql {
        let mut sql = Sql::new(Backend::Postgres);
        sql.push("CREATE SCHEMA IF NOT EXISTS ").ident(schema);
        sql
    }

    fn drop_schema_sql(&self, schema: &str) -> Option<String> {
        Some(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.quote(schema)
        ))
    }

    fn try_session_lock_sql(&self, store: &str) -> Option<Sql> {
        let mut sql = Sql::new(Backend::Postgres);
        sql.push("SELECT pg_try_advisory_lock(")
            .bind(Some(Param::Int(pg_key(store))), None)
            .push(")");
        Some(sql)
    }

    fn session_unlock_sql(&self, store: &str) -> Option<Sql> {
        let mut sql = Sql::new(Backend::Postgres);
        sql.push("SELECT pg_advisory_unlock(")
            .bind(Some(Param::Int(pg_key(store))), None)
            .push(")");
        Some(sql)
    }

    fn strip_default_cast<'a>(&self, default: &'a str) -> &'a str {
        default.split("::").next().unwrap_or(default)
    }

    fn quote(&self, name: &str) -> String {
        quote_with('"', name)
    }

    /// A text with a backslash is written `E'…'` with backslashes doubled, which reads the same
    /// whatever the server's `standard_conforming_strings`.
    fn literal(&self, s: &str) -> String {
        if s.contains('\\') {
            quote_literal(s, true, "E")
        } else {
            quote_literal(s, false, "")
        }
    }

    fn placeholder(&self, n: usize, cast: Option<&str>) -> String {
        match cast {
            Some(c) => format!("${n}::{c}"),
            None => format!("${n}"),
        }
    }

    fn big_uint_cast(&self) -> Option<&'static str> {
        Some("numeric")
    }

    fn select_column(&self, expr: &str, alias: &str, kind: ColKind) -> String {
        match kind {
            ColKind::Decimal | ColKind::Text | ColKind::Other | ColKind::UInt => {
                format!("({expr})::text AS {}", self.quote(alias))
            }
            _ if expr == self.quote(alias) => expr.to_string(),
            _ => format!("{expr} AS {}", self.quote(alias)),
        }
    }

    fn as_text(&self, expr: &str) -> String {
        format!("{expr}::text")
    }

    fn classify_code(&self, code: &str) -> Option<ErrorClass> {
        match code {
            "23503" => Some(ErrorClass::ForeignKey),
            "23505" => Some(ErrorClass::Duplicate),
            _ => None,
        }
    }

    fn core_type(&self, c: &CoreType) -> String {
        use CoreType::*;
        match c {
            Int8 | Int16 | UInt8 => "smallint".into(),
            Int32 | UInt16 => "integer".into(),
            Int64 | UInt32 => "bigint".into(),
            UInt64 => "numeric(20,0)".into(),
            Float32 => "real".into(),
            Float64 => "double precision".into(),
            Bool => "boolean".into(),
            Uuid => "uuid".into(),
            Json => "jsonb".into(),
            Bytes => "bytea".into(),
            Date => "date".into(),
            DateTime(None) => "timestamp".into(),
            DateTime(Some(n)) => format!("timestamp({n})"),
            Enum(_) => c.pg_enum_type_name().unwrap_or_default(),
            Decimal(p, s) => format!("numeric({p},{s})"),
            Char(n) => format!("char({n})"),
            Varchar(n) => format!("varchar({n})"),
        }
    }

    /// An enum is a type of the schema, qualified by it.
    fn column_type(&self, schema: &str, c: &CoreType) -> String {
        match c {
            CoreType::Enum(_) => {
                let name = c.pg_enum_type_name().unwrap_or_default();
                format!("{}.{}", self.quote(schema), self.quote(&name))
            }
            _ => self.core_type(c),
        }
    }

    /// `CREATE TYPE … AS ENUM` for each enum declared in the heading.
    fn schema_types(&self, h: &Heading) -> Vec<(Sql, String)> {
        let mut out: Vec<(String, Sql, String)> = Vec::new();
        for a in &h.attributes {
            if a.inherited {
                continue;
            }
            if let TypeSpec::Core(c @ CoreType::Enum(values)) = &a.spec {
                let name = c.pg_enum_type_name().unwrap_or_default();
                if out.iter().any(|(n, _, _)| n == &name) {
                    continue;
                }
                let list: Vec<String> = values.iter().map(|v| self.literal(v)).collect();
                let ddl = format!(
                    "CREATE TYPE {} AS ENUM ({})",
                    self.qualified(&h.schema, &name),
                    list.join(", ")
                );
                let mut exists = Sql::new(Backend::Postgres);
                exists
                    .push("SELECT t.typname::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = ")
                    .bind(Some(Param::Text(h.schema.clone())), None)
                    .push(" AND t.typname = ")
                    .bind(Some(Param::Text(name.clone())), None);
                out.push((name, exists, ddl));
            }
        }
        out.into_iter().map(|(_, e, d)| (e, d)).collect()
    }

    /// Support indexes for foreign keys that no other index covers (DataJoint #1512).
    fn index_ddl(
        &self,
        h: &Heading,
        table: &str,
        mut indexes: Vec<(bool, Vec<String>)>,
    ) -> (Vec<String>, Vec<String>) {
        let pk_names: Vec<String> = h.primary_key().iter().map(|s| s.to_string()).collect();
        let fk_cols: Vec<Vec<String>> = h
            .foreign_keys
            .iter()
            .filter(|fk| !fk.unique)
            .map(|fk| fk.attr_map.iter().map(|(c, _)| c.clone()).collect())
            .collect();
        let is_prefix =
            |cols: &[String], of: &[String]| cols.len() <= of.len() && of[..cols.len()] == *cols;
        for (i, cols) in fk_cols.iter().enumerate() {
            let covered = is_prefix(cols, &pk_names)
                || indexes.iter().any(|(_, ix)| is_prefix(cols, ix))
                || fk_cols
                    .iter()
                    .enumerate()
                    .any(|(j, o)| j != i && o.len() > cols.len() && is_prefix(cols, o));
            if !covered && !indexes.iter().any(|(_, ix)| ix == cols) {
                indexes.push((false, cols.clone()));
            }
        }
        (
            Vec::new(),
            ddl::create_index_statements(Backend::Postgres, h, table, &indexes),
        )
    }

    /// Table and column comments (with the `:type:` markers); codec `bytea` columns stored
    /// out of line without compression.
    fn after_create_table(&self, h: &Heading, table: &str) -> Vec<String> {
        let mut after = vec![format!(
            "COMMENT ON TABLE {} IS {}",
            table,
            self.literal(&h.comment)
        )];
        for a in &h.attributes {
            if a.inherited {
                continue;
            }
            let c = ddl::column_comment(a);
            if !c.is_empty() {
                after.push(format!(
                    "COMMENT ON COLUMN {}.{} IS {}",
                    table,
                    self.quote(&a.name),
                    self.literal(&c)
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
                    self.quote(&a.name)
                ));
            }
        }
        after
    }

    fn table_comment_sql(&self, schema: &str, table: &str) -> Sql {
        let mut sql = Sql::new(Backend::Postgres);
        sql.push(&format!(
            "SELECT coalesce(obj_description({REGCLASS}, 'pg_class'), '') WHERE {REGCLASS} IS NOT NULL"
        ));
        sql.params = schema_table(schema, table);
        sql
    }

    fn columns_sql(&self, schema: &str, table: &str) -> Sql {
        let mut sql = Sql::new(Backend::Postgres);
        sql.push(&format!(
            "SELECT c.column_name::text, c.data_type::text, c.udt_schema::text, c.udt_name::text, c.is_nullable::text, \
             c.column_default::text, c.character_maximum_length::text, c.numeric_precision::text, c.numeric_scale::text, \
             col_description({REGCLASS}, c.ordinal_position::int) \
             FROM information_schema.columns c WHERE c.table_schema = $1 AND c.table_name = $2 ORDER BY c.ordinal_position"
        ));
        sql.params = schema_table(schema, table);
        sql
    }

    /// `data_type` with lengths and precisions put back; an enum is its qualified type.
    fn catalog_column_type(&self, get: &dyn Fn(usize) -> String) -> String {
        let data_type = get(1);
        match data_type.as_str() {
            "USER-DEFINED" => format!("{}.{}", self.quote(&get(2)), self.quote(&get(3))),
            "character varying" if !get(6).is_empty() => format!("varchar({})", get(6)),
            "character" if !get(6).is_empty() => format!("char({})", get(6)),
            "numeric" if !get(7).is_empty() => format!("decimal({},{})", get(7), get(8)),
            // The native `time` of a definition (written back as declared).
            "time without time zone" => "time".to_string(),
            _ => data_type,
        }
    }

    fn primary_key_sql(&self, schema: &str, table: &str) -> Sql {
        let mut sql = Sql::new(Backend::Postgres);
        sql.push(&format!(
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
             AND a.attnum = ANY(i.indkey) WHERE i.indrelid = {REGCLASS} AND i.indisprimary \
             ORDER BY array_position(i.indkey::int2[], a.attnum)"
        ));
        sql.params = schema_table(schema, table);
        sql
    }

    fn foreign_keys_sql(&self, schema: &str, table: &str, children: bool) -> Sql {
        let side = if children { "confrelid" } else { "conrelid" };
        let mut sql = Sql::new(Backend::Postgres);
        sql.push(&format!(
            "SELECT con.oid::text, cn.nspname::text, cc.relname::text, pn.nspname::text, pc.relname::text, \
             ca.attname::text, pa.attname::text \
             FROM pg_constraint con \
             JOIN pg_class cc ON cc.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace \
             JOIN pg_class pc ON pc.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(ck, pk, ord) \
             JOIN pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.ck \
             JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.pk \
             WHERE con.contype = 'f' AND con.{side} = to_regclass(format('%I.%I', $1::text, $2::text)) \
             ORDER BY con.oid, k.ord"
        ));
        sql.params = schema_table(schema, table);
        sql
    }

    fn indexes_sql(&self, schema: &str, table: &str) -> Sql {
        let mut sql = Sql::new(Backend::Postgres);
        sql.push(
            "SELECT ic.relname::text, i.indisunique::text, \
             (SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, ord) \
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n) \
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
             WHERE i.indrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND NOT i.indisprimary ORDER BY ic.relname",
        );
        sql.params = schema_table(schema, table);
        sql
    }

    fn index_is_unique(&self, flag: &str) -> bool {
        flag == "true"
    }

    /// One row per index, its columns joined by `,`.
    fn index_row_per_column(&self) -> bool {
        false
    }

    fn schemas_sql(&self, which: SchemaQuery) -> String {
        match which {
            SchemaQuery::All => "SELECT s.schema_name::text FROM information_schema.schemata s \
             WHERE s.schema_name <> 'information_schema' \
             AND substr(s.schema_name, 1, 3) <> 'pg_' \
             AND (s.schema_name <> 'public' OR EXISTS (SELECT 1 FROM \
             information_schema.tables t WHERE t.table_schema = s.schema_name)) \
             ORDER BY 1"
                .into(),
            SchemaQuery::WithCodecs => {
                "SELECT DISTINCT n.nspname::text FROM pg_catalog.pg_description d \
         JOIN pg_catalog.pg_class c ON c.oid = d.objoid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid > 0 \
         AND c.relkind IN ('r', 'p') AND d.description LIKE ':<%' ORDER BY 1"
                    .into()
            }
        }
    }

    fn now_sql(&self) -> &'static str {
        "LOCALTIMESTAMP(3)"
    }

    fn connection_id_sql(&self) -> &'static str {
        "pg_backend_pid()"
    }

    fn current_user_sql(&self) -> &'static str {
        "current_user"
    }

    fn relaxed_commit_from_sql(&self) -> Option<&'static str> {
        // `set_config(..., true)` is `SET LOCAL`: it holds for the statement's own implicit
        // transaction only, whose commit then does not wait for the WAL flush. The names start
        // with `~`, which no DataJoint attribute can, so they never shadow a column.
        Some(
            " FROM (SELECT set_config('synchronous_commit', 'off', true) AS \"~setting\") \
             AS \"~relaxed_commit\"",
        )
    }

    fn identifier_limit_label(&self) -> &'static str {
        "PostgreSQL allows"
    }

    fn compares_as_text(&self) -> bool {
        true
    }

    /// Enums and unusual types are bound as text cast to the column type; decimals as
    /// `numeric`.
    fn param_cast(&self, kind: ColKind, is_enum: bool, sql_type: &str) -> Option<String> {
        match kind {
            _ if is_enum => Some(sql_type.to_string()),
            ColKind::Decimal => Some("numeric".into()),
            ColKind::Other => Some(sql_type.to_string()),
            _ => None,
        }
    }

    fn drop_type_sql(&self, schema: &str, c: &CoreType) -> Option<(Sql, String)> {
        if !matches!(c, CoreType::Enum(_)) {
            return None;
        }
        let name = c.pg_enum_type_name().unwrap_or_default();
        let mut used = Sql::new(Backend::Postgres);
        used.push("SELECT table_name::text FROM information_schema.columns WHERE udt_schema = ")
            .bind(Some(Param::Text(schema.to_string())), None)
            .push(" AND udt_name = ")
            .bind(Some(Param::Text(name.clone())), None);
        Some((
            used,
            format!("DROP TYPE IF EXISTS {}", self.qualified(schema, &name)),
        ))
    }

    fn bulk_tables_sql(&self, schemas: &[String]) -> Sql {
        let mut sql = Sql::new(Backend::Postgres);
        sql.push(
            "SELECT n.nspname::text, c.relname::text, coalesce(obj_description(c.oid, 'pg_class'), '') \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname::text",
        );
        push_in(&mut sql, schemas);
        sql.push(" ORDER BY 1, 2");
        sql
    }

    fn bulk_primary_keys_sql(&self, schemas: &[String]) -> Sql {
        let mut sql = Sql::new(Backend::Postgres);
        sql.push(
            "SELECT n.nspname::text, c.relname::text, a.attname::text \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indisprimary AND n.nspname::text",
        );
        push_in(&mut sql, schemas);
        sql.push(" ORDER BY 1, 2, array_position(i.indkey::int2[], a.attnum)");
        sql
    }

    fn bulk_foreign_keys_sql(&self, schemas: &[String], referencing: bool) -> Sql {
        let mut sql = Sql::new(Backend::Postgres);
        sql.push(
            "SELECT con.oid::text, cn.nspname::text, cc.relname::text, pn.nspname::text, pc.relname::text, \
             ca.attname::text, pa.attname::text \
             FROM pg_constraint con \
             JOIN pg_class cc ON cc.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = cc.relnamespace \
             JOIN pg_class pc ON pc.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(ck, pk, ord) \
             JOIN pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.ck \
             JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.pk \
             WHERE con.contype = 'f' AND ",
        );
        sql.push(if referencing {
            "pn.nspname::text"
        } else {
            "cn.nspname::text"
        });
        push_in(&mut sql, schemas);
        sql.push(" ORDER BY cn.nspname, cc.relname, con.oid, k.ord");
        sql
    }
}

/// The table `$1.$2` of the catalog queries.
const REGCLASS: &str = "to_regclass(format('%I.%I', $1::text, $2::text))";

/// The parameters `$1` (schema) and `$2` (table) of the catalog queries.
fn schema_table(schema: &str, table: &str) -> Vec<Param> {
    vec![Param::Text(schema.into()), Param::Text(table.into())]
}
