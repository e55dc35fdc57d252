//! SQLite: a schema is a name prefix inside one file (`"schema.table"` is one identifier).

use dj_core::typespec::Backend;

use super::{Dialect, quote_literal, quote_with, text};
use crate::catalog::{SQLITE_SCHEMAS, SQLITE_TABLES};
use crate::db::Sql;

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
}
