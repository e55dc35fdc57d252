//! PostgreSQL.

use dj_core::typespec::Backend;

use super::{Dialect, ErrorClass, quote_literal, quote_with};
use crate::db::{Param, Sql};
use crate::heading::ColKind;
use crate::lifecycle::lock::pg_key;

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
}
