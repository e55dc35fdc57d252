//! MySQL and MariaDB (the session's `sql_mode` keeps backslash escapes in literals).

use dj_core::typespec::Backend;

use super::{Dialect, ErrorClass, quote_literal, quote_with, text};
use crate::db::Sql;
use crate::heading::ColKind;
use crate::lifecycle::lock::mysql_name;

/// MySQL's and MariaDB's dialect.
pub(crate) struct MySql;

impl Dialect for MySql {
    fn backend(&self) -> Backend {
        Backend::MySql
    }

    fn create_schema_sql(&self, schema: &str) -> Sql {
        let mut sql = Sql::new(Backend::MySql);
        sql.push("CREATE DATABASE IF NOT EXISTS ").ident(schema);
        sql
    }

    fn drop_schema_sql(&self, schema: &str) -> Option<String> {
        Some(format!("DROP DATABASE IF EXISTS {}", self.quote(schema)))
    }

    fn try_session_lock_sql(&self, store: &str) -> Option<Sql> {
        let mut sql = Sql::new(Backend::MySql);
        sql.push("SELECT GET_LOCK(")
            .bind(text(&mysql_name(store)), None)
            .push(", 0)");
        Some(sql)
    }

    fn session_unlock_sql(&self, store: &str) -> Option<Sql> {
        let mut sql = Sql::new(Backend::MySql);
        sql.push("SELECT RELEASE_LOCK(")
            .bind(text(&mysql_name(store)), None)
            .push(")");
        Some(sql)
    }

    fn quote(&self, name: &str) -> String {
        quote_with('`', name)
    }

    fn literal(&self, s: &str) -> String {
        quote_literal(s, true, "")
    }

    fn placeholder(&self, _n: usize, _cast: Option<&str>) -> String {
        "?".into()
    }

    fn select_column(&self, expr: &str, alias: &str, kind: ColKind) -> String {
        match kind {
            ColKind::Decimal => format!("CAST({expr} AS CHAR) AS {}", self.quote(alias)),
            _ if expr == self.quote(alias) => expr.to_string(),
            _ => format!("{expr} AS {}", self.quote(alias)),
        }
    }

    /// `ON DUPLICATE KEY UPDATE first = first`: MySQL has no `ON CONFLICT`.
    fn skip_duplicates(&self, pk: &[String]) -> String {
        let first = pk.first().cloned().unwrap_or_default();
        format!(" ON DUPLICATE KEY UPDATE {first} = {first}")
    }

    fn classify_code(&self, code: &str) -> Option<ErrorClass> {
        match code {
            "1451" | "1452" | "1216" | "1217" | "23503" => Some(ErrorClass::ForeignKey),
            "1062" | "1586" => Some(ErrorClass::Duplicate),
            _ => None,
        }
    }
}
