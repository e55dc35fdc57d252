//! SQLite: a schema is a name prefix inside one file (`"schema.table"` is one identifier).

use crate::Backend;

use dj_core::typespec::{CoreType, TypeSpec};

use super::{Dialect, SchemaQuery, quote_literal, quote_with, text};
use crate::catalog::{SQLITE_SCHEMAS, SQLITE_TABLES};
use crate::db::Sql;
use crate::heading::{Attribute, Heading};

/// SQLite's dialect.
pub(crate) struct Sqlite;

impl Dialect for Sqlite {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn keeps_metadata_tables(&self) -> bool {
        true
    }

    /// A schema is a row of the metadata table `~dj_schemas` (and a prefix of table names).
    fn create_schema_sql(&self, schema: &str) -> Sql {
        let mut sql = Sql::new(Backend::Sqlite);
        sql.push("INSERT INTO ")
            .ident(SQLITE_SCHEMAS)
            .push(" (schema_name) VALUES (")
            .bind(text(schema), None)
            .push(") ON CONFLICT DO NOTHING");
        sql
    }

    fn drop_schema_sql(&self, _schema: &str) -> Option<String> {
        None
    }

    fn schema_exists_sql(&self, schema: &str) -> Sql {
        let mut sql = Sql::new(Backend::Sqlite);
        sql.push("SELECT schema_name FROM ")
            .ident(SQLITE_SCHEMAS)
            .push(" WHERE schema_name = ")
            .bind(text(schema), None);
        sql
    }

    fn list_tables_sql(&self, schema: &str) -> Sql {
        let mut sql = Sql::new(Backend::Sqlite);
        sql.push("SELECT table_name FROM ")
            .ident(SQLITE_TABLES)
            .push(" WHERE schema_name = ")
            .bind(text(schema), None);
        sql
    }

    fn table_exists_sql(&self, schema: &str, table: &str) -> Sql {
        let mut sql = Sql::new(Backend::Sqlite);
        sql.push("SELECT table_name FROM ")
            .ident(SQLITE_TABLES)
            .push(" WHERE schema_name = ")
            .bind(text(schema), None)
            .push(" AND table_name = ")
            .bind(text(table), None);
        sql
    }

    fn raw_table_exists_sql(&self, schema: &str, table: &str) -> Sql {
        let mut sql = Sql::new(Backend::Sqlite);
        sql.push("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ")
            .bind(text(&format!("{schema}.{table}")), None);
        sql
    }

    fn quote(&self, name: &str) -> String {
        quote_with('"', name)
    }

    fn qualified(&self, schema: &str, table: &str) -> String {
        self.quote(&format!("{schema}.{table}"))
    }

    fn literal(&self, s: &str) -> String {
        quote_literal(s, false, "")
    }

    fn placeholder(&self, _n: usize, _cast: Option<&str>) -> String {
        "?".into()
    }

    fn core_type(&self, c: &CoreType) -> String {
        use CoreType::*;
        match c {
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Bool => {
                "INTEGER".into()
            }
            Float32 | Float64 => "REAL".into(),
            Uuid | Bytes => "BLOB".into(),
            Json | Date | DateTime(_) | Char(_) | Varchar(_) | Enum(_) | Decimal(..) => {
                "TEXT".into()
            }
        }
    }

    fn current_timestamp_default(&self, _upper: String) -> String {
        "CURRENT_TIMESTAMP".into()
    }

    /// An enum column (declared here, not inherited) checks its values.
    fn column_suffix(&self, a: &Attribute) -> String {
        match &a.spec {
            TypeSpec::Core(CoreType::Enum(values)) if !a.inherited => {
                let list: Vec<String> = values.iter().map(|v| self.literal(v)).collect();
                format!(" CHECK ({} IN ({}))", self.quote(&a.name), list.join(", "))
            }
            _ => String::new(),
        }
    }

    /// SQLite index names are database-wide: the schema is prefixed.
    fn index_name(&self, h: &Heading, short: &str, _joined: &str) -> String {
        format!("{}.idx_{}_{}", h.schema, h.table, short)
    }

    /// Every schema recorded in the metadata table (both queries).
    fn schemas_sql(&self, _which: SchemaQuery) -> String {
        format!(
            "SELECT schema_name FROM {} ORDER BY schema_name",
            self.quote(SQLITE_SCHEMAS)
        )
    }

    fn now_sql(&self) -> &'static str {
        "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    }

    fn connection_id_sql(&self) -> &'static str {
        "0"
    }

    fn current_user_sql(&self) -> &'static str {
        "''"
    }

    fn lock_rows_clause(&self) -> &'static str {
        ""
    }

    fn concurrent_writers(&self) -> bool {
        false
    }

    /// PostgreSQL's limit, so that a schema declared here moves to either server.
    fn identifier_limit_label(&self) -> &'static str {
        "dj-rs allows on SQLite (PostgreSQL's limit, so the schema can move)"
    }

    fn update_to_default(&self) -> bool {
        false
    }
}
