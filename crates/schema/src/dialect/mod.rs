//! Per-backend SQL: one [`Dialect`] implementation per database, one file each.
//!
//! Everything that differs between SQLite, PostgreSQL and MySQL/MariaDB when the schema layer
//! writes a statement goes through this trait: identifier quoting, string literals, parameter
//! placeholders, the casts applied to selected columns so that every backend returns a value the
//! decoder reads the same way, comparisons of enum and text columns, the clause that skips
//! duplicate rows on insert, `LIMIT`/`OFFSET`, and the classification of server error codes.
//! Adding a backend is one more file here plus its cargo feature and pool in `db.rs`.

use dj_core::typespec::Backend;

use crate::heading::ColKind;

mod mysql;
mod postgres;
mod sqlite;

pub(crate) use mysql::MySql;
pub(crate) use postgres::Postgres;
pub(crate) use sqlite::Sqlite;

/// What a database error code means to the schema layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// A foreign-key constraint failed.
    ForeignKey,
    /// A unique or primary key constraint failed.
    Duplicate,
}

/// The SQL spelling of one backend.
pub(crate) trait Dialect: Send + Sync {
    /// Quote an identifier (quote characters inside are doubled).
    fn quote(&self, name: &str) -> String;

    /// The quoted, schema-qualified name of a table.
    fn qualified(&self, schema: &str, table: &str) -> String {
        format!("{}.{}", self.quote(schema), self.quote(table))
    }

    /// A string literal for DDL text (comments, defaults, enum values).
    fn literal(&self, s: &str) -> String;

    /// The placeholder of the `n`-th (1-based) parameter, with an optional type cast.
    fn placeholder(&self, n: usize, cast: Option<&str>) -> String;

    /// The cast a parameter of this kind always needs (PostgreSQL's numeric text for `u64`).
    fn big_uint_cast(&self) -> Option<&'static str> {
        None
    }

    /// A selected column expression `expr` named `alias`, cast so that the decoder of `kind`
    /// reads it (PostgreSQL returns decimals, unsigned and unusual types as text; MySQL decimals
    /// as text).
    fn select_column(&self, expr: &str, alias: &str, kind: ColKind) -> String {
        let _ = kind;
        if expr == self.quote(alias) {
            expr.to_string()
        } else {
            format!("{expr} AS {}", self.quote(alias))
        }
    }

    /// A column compared as text (PostgreSQL: enums and `LIKE` on non-text columns).
    fn as_text(&self, expr: &str) -> String {
        expr.to_string()
    }

    /// The clause appended to an `INSERT` that skips rows whose key exists. `pk` are the quoted
    /// primary-key columns.
    fn skip_duplicates(&self, pk: &[String]) -> String {
        format!(" ON CONFLICT ({}) DO NOTHING", pk.join(", "))
    }

    /// `LIMIT`/`OFFSET` clause (an offset without a limit gets an unbounded limit).
    fn limit_offset(&self, limit: Option<u64>, offset: Option<u64>) -> String {
        match (limit, offset) {
            (None, None) => String::new(),
            (l, o) => {
                let mut s = format!(" LIMIT {}", l.unwrap_or(i64::MAX as u64));
                if let Some(o) = o {
                    s.push_str(&format!(" OFFSET {o}"));
                }
                s
            }
        }
    }

    /// What a server error code means, beyond what the driver classifies.
    fn classify_code(&self, code: &str) -> Option<ErrorClass> {
        let _ = code;
        None
    }
}

/// The dialect of `backend`.
pub(crate) fn dialect(backend: Backend) -> &'static dyn Dialect {
    match backend {
        Backend::Sqlite => &Sqlite,
        Backend::Postgres => &Postgres,
        Backend::MySql => &MySql,
    }
}

/// Double every `q` inside `name` and wrap it in `q`.
pub(crate) fn quote_with(q: char, name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push(q);
    for c in name.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    out
}

/// A single-quoted literal with quotes doubled and, when asked, backslashes doubled.
pub(crate) fn quote_literal(s: &str, escape_backslash: bool, prefix: &str) -> String {
    let mut out = String::with_capacity(s.len() + 3);
    out.push_str(prefix);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if escape_backslash => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_per_backend() {
        assert_eq!(dialect(Backend::MySql).quote("a`b"), "`a``b`");
        assert_eq!(dialect(Backend::Postgres).quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(dialect(Backend::Sqlite).qualified("s", "t"), "\"s.t\"");
        assert_eq!(
            dialect(Backend::Postgres).qualified("s", "t"),
            "\"s\".\"t\""
        );
        assert_eq!(
            dialect(Backend::Postgres).placeholder(3, Some("numeric")),
            "$3::numeric"
        );
        assert_eq!(dialect(Backend::MySql).placeholder(3, None), "?");
        assert_eq!(dialect(Backend::Postgres).literal("a\\b"), "E'a\\\\b'");
        assert_eq!(dialect(Backend::MySql).literal("it's"), "'it''s'");
        assert_eq!(dialect(Backend::Sqlite).literal("a\\b"), "'a\\b'");
        assert_eq!(
            dialect(Backend::Sqlite).limit_offset(None, Some(2)),
            format!(" LIMIT {} OFFSET 2", i64::MAX)
        );
    }
}
