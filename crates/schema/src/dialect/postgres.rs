//! PostgreSQL.

use super::{Dialect, ErrorClass, quote_literal, quote_with};
use crate::heading::ColKind;

/// PostgreSQL's dialect.
pub(crate) struct Postgres;

impl Dialect for Postgres {
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
