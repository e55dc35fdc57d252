//! SQLite: a schema is a name prefix inside one file (`"schema.table"` is one identifier).

use super::{Dialect, quote_literal, quote_with};

/// SQLite's dialect.
pub(crate) struct Sqlite;

impl Dialect for Sqlite {
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
