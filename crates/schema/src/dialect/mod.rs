//! Per-backend SQL: one [`Dialect`] implementation per database, one file each.
//!
//! Everything that differs between SQLite, PostgreSQL and MySQL/MariaDB when the schema layer
//! writes a statement goes through this trait: identifier quoting, string literals, parameter
//! placeholders and casts, the casts applied to selected columns so that every backend returns a
//! value the decoder reads the same way, comparisons of enum and text columns, the syntax of
//! strings in a user's SQL, the clause that skips duplicate rows on insert, `LIMIT`/`OFFSET`,
//! row locks, the classification of server error codes; the DDL (column types, enum types,
//! `CHECK`s, comments with their `:type:` markers, indexes, table options, the `~lineage`
//! table); the catalog queries that read a heading, list schemas and tables and build the
//! dependency graph; schema creation and removal, identifier limits and GC session locks.
//! Adding a backend is one more file here plus its cargo feature and pool in `db.rs`.
//!
//! Code outside this module still names a backend in these places, none of them a choice of
//! SQL spelling:
//!
//! - `db.rs` maps the configured backend to its connection pool, and `lifecycle/lock.rs`
//!   matches on the pool's connection type (SQLite's lock rows live in a table of the file; the
//!   servers' session locks come from [`Dialect::try_session_lock_sql`]). A new backend adds its
//!   pool variant there.
//! - `catalog.rs` (`sqlite_bootstrap`) and `graph.rs` (`sqlite_headings`) build the statements
//!   of SQLite's metadata tables (`~dj_schemas`, `~dj_tables`) with `Backend::Sqlite`: those
//!   tables exist only where [`Dialect::keeps_metadata_tables`] says so, and every caller asks
//!   that first.
//! - `error.rs` tries every dialect's [`Dialect::classify_code`] (through [`all`]), because a
//!   driver error does not say which server sent it.
//! - Tests name backends to check each dialect's output (`ddl.rs` compares the DDL of all three
//!   with a golden file, `src/testdata/ddl.txt`).

use dj_core::typespec::CoreType;

use std::fmt;

use crate::db::{Param, Sql};
use crate::ddl;
use crate::graph::push_in;
use crate::heading::{Attribute, ColKind, Heading};

/// The SQL backends dj-rs speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite, the embedded default.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    MySql,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
            Backend::MySql => "mysql",
        })
    }
}

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

fn text(s: &str) -> Option<Param> {
    Some(Param::Text(s.to_string()))
}

/// Which schemas [`Dialect::schemas_sql`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SchemaQuery {
    /// Every schema of the database except the server's own.
    All,
    /// The schemas with a column whose comment carries a `:<codec>:` marker.
    WithCodecs,
}

/// The SQL spelling of one backend.
pub(crate) trait Dialect: Send + Sync {
    /// The backend.
    fn backend(&self) -> Backend;

    /// Whether schemas and headings live in metadata tables of the schema layer (SQLite)
    /// rather than in the server's catalog; they are created before the first catalog query.
    fn keeps_metadata_tables(&self) -> bool {
        false
    }

    /// The statement that creates a schema when it is missing.
    fn create_schema_sql(&self, schema: &str) -> Sql;

    /// The statement that drops a schema with its tables, when the server has one (SQLite
    /// drops a schema table by table).
    fn drop_schema_sql(&self, schema: &str) -> Option<String>;

    /// A query with one row when the schema exists.
    fn schema_exists_sql(&self, schema: &str) -> Sql {
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT schema_name FROM information_schema.schemata WHERE schema_name = ")
            .bind(text(schema), None);
        sql
    }

    /// A query of the table names of a schema (hidden `~` tables included).
    fn list_tables_sql(&self, schema: &str) -> Sql {
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT table_name FROM information_schema.tables WHERE table_schema = ")
            .bind(text(schema), None);
        sql
    }

    /// A query with one row when the table exists as the schema layer knows tables.
    fn table_exists_sql(&self, schema: &str, table: &str) -> Sql {
        self.raw_table_exists_sql(schema, table)
    }

    /// A query with one row when the table exists in the server's catalog.
    fn raw_table_exists_sql(&self, schema: &str, table: &str) -> Sql {
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT table_name FROM information_schema.tables WHERE table_schema = ")
            .bind(text(schema), None)
            .push(" AND table_name = ")
            .bind(text(table), None);
        sql
    }

    /// The statement that takes a session-scoped lock at once or answers 0 (PostgreSQL
    /// advisory locks, MySQL `GET_LOCK`); `None` where locks are rows of a table (SQLite).
    fn try_session_lock_sql(&self, store: &str) -> Option<Sql> {
        let _ = store;
        None
    }

    /// The statement that releases the lock of [`Dialect::try_session_lock_sql`].
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    fn session_unlock_sql(&self, store: &str) -> Option<Sql> {
        let _ = store;
        None
    }

    /// A catalog default as the server reports it, without a type cast
    /// (`'a'::character varying` on PostgreSQL).
    fn strip_default_cast<'a>(&self, default: &'a str) -> &'a str {
        default
    }
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

    /// The SQL column type of a core type, following DataJoint's mapping where it has one
    /// (on PostgreSQL an enum is the unqualified name of its schema-level enum type).
    fn core_type(&self, c: &CoreType) -> String;

    /// The column type of a core type declared in `schema`, as written in `CREATE TABLE`
    /// (PostgreSQL qualifies its enum type; MySQL escapes enum values as literals).
    fn column_type(&self, schema: &str, c: &CoreType) -> String {
        let _ = schema;
        self.core_type(c)
    }

    /// The default `CURRENT_TIMESTAMP` or `CURRENT_TIMESTAMP(n)`, given upper-cased.
    fn current_timestamp_default(&self, upper: String) -> String {
        upper
    }

    /// Text after a column's type, nullability and default in `CREATE TABLE` (SQLite's enum
    /// `CHECK`, MySQL's column `COMMENT`).
    fn column_suffix(&self, a: &Attribute) -> String {
        let _ = a;
        String::new()
    }

    /// Schema-level types a heading needs before its table is created (PostgreSQL's enum
    /// types), each as a query with one row when the type exists and the statement that
    /// creates it.
    fn schema_types(&self, h: &Heading) -> Vec<(Sql, String)> {
        let _ = h;
        Vec::new()
    }

    /// The indexes of a table, each `(unique, columns)`: lines inside `CREATE TABLE` and
    /// statements after it. `table` is the qualified table name.
    fn index_ddl(
        &self,
        h: &Heading,
        table: &str,
        indexes: Vec<(bool, Vec<String>)>,
    ) -> (Vec<String>, Vec<String>) {
        (
            Vec::new(),
            ddl::create_index_statements(self.backend(), h, table, &indexes),
        )
    }

    /// The name of a separately created index of table `h` on `joined` (the column names
    /// joined by `_`), whose first 30 characters are `short`.
    fn index_name(&self, h: &Heading, short: &str, joined: &str) -> String {
        ddl::fit_identifier(format!("idx_{}_{}", h.table, short), joined)
    }

    /// Statements after `CREATE TABLE` and its indexes (PostgreSQL's comments and storage).
    fn after_create_table(&self, h: &Heading, table: &str) -> Vec<String> {
        let _ = (h, table);
        Vec::new()
    }

    /// Table options after the closing parenthesis of `CREATE TABLE` (MySQL's engine and
    /// comment).
    fn table_options(&self, comment: &str) -> String {
        let _ = comment;
        String::new()
    }

    /// The `CREATE TABLE` statement of a schema's `~lineage` table.
    fn lineage_table_sql(&self, schema: &str) -> String {
        let t = self.qualified(schema, "~lineage");
        format!(
            "CREATE TABLE IF NOT EXISTS {t} (\"table_name\" VARCHAR(64) NOT NULL, \"attribute_name\" VARCHAR(64) NOT NULL, \
             \"lineage\" VARCHAR(255) NOT NULL, PRIMARY KEY (\"table_name\",\"attribute_name\"))"
        )
    }

    /// A query of a table's comment, with one row when the table exists (server catalogs;
    /// SQLite keeps headings in its metadata table).
    fn table_comment_sql(&self, schema: &str, table: &str) -> Sql {
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT table_comment FROM information_schema.tables WHERE table_schema = ")
            .bind(text(schema), None)
            .push(" AND table_name = ")
            .bind(text(table), None);
        sql
    }

    /// A query of a table's columns in order, ten text columns: name, type (as
    /// [`Dialect::catalog_column_type`] reads them: columns 1 to 3 and 6 to 8), `YES` when
    /// nullable (4), default (5) and comment (9).
    fn columns_sql(&self, schema: &str, table: &str) -> Sql {
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT column_name, column_type, '', '', is_nullable, column_default, '', '', '', column_comment \
                  FROM information_schema.columns WHERE table_schema = ")
            .bind(text(schema), None)
            .push(" AND table_name = ")
            .bind(text(table), None)
            .push(" ORDER BY ordinal_position");
        sql
    }

    /// The column type of a row of [`Dialect::columns_sql`] (`get(i)` is column `i`, empty
    /// when NULL), as a definition would write it.
    fn catalog_column_type(&self, get: &dyn Fn(usize) -> String) -> String {
        crate::catalog::strip_display_width(&get(1))
    }

    /// A query of the primary-key columns of a table, in key order.
    fn primary_key_sql(&self, schema: &str, table: &str) -> Sql {
        let mut sql = Sql::new(self.backend());
        sql.push(
            "SELECT column_name FROM information_schema.key_column_usage WHERE table_schema = ",
        )
        .bind(text(schema), None)
        .push(" AND table_name = ")
        .bind(text(table), None)
        .push(" AND constraint_name = 'PRIMARY' ORDER BY ordinal_position");
        sql
    }

    /// A query of the foreign keys of a table (`children == false`) or of those that point to
    /// it (`children == true`), one row per column pair, seven text columns: constraint, child
    /// schema, child table, parent schema, parent table, child column, parent column; ordered
    /// by constraint and column position.
    fn foreign_keys_sql(&self, schema: &str, table: &str, children: bool) -> Sql {
        let (s_col, t_col) = if children {
            ("referenced_table_schema", "referenced_table_name")
        } else {
            ("table_schema", "table_name")
        };
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT constraint_name, table_schema, table_name, referenced_table_schema, referenced_table_name, \
                  column_name, referenced_column_name FROM information_schema.key_column_usage WHERE ")
            .push(s_col)
            .push(" = ")
            .bind(text(schema), None)
            .push(" AND ")
            .push(t_col)
            .push(" = ")
            .bind(text(table), None)
            .push(" AND referenced_table_name IS NOT NULL ORDER BY table_schema, table_name, constraint_name, ordinal_position");
        sql
    }

    /// Whether foreign keys read from the catalog are put in declaration order by the number
    /// in their constraint names ([`Dialect::foreign_key_number`]) rather than kept in the
    /// order of the catalog query.
    fn numbers_foreign_keys(&self) -> bool {
        false
    }

    /// The declaration number of a foreign key from its constraint name.
    fn foreign_key_number(&self, constraint: &str) -> u64 {
        let _ = constraint;
        0
    }

    /// A query of the secondary indexes of a table, three text columns: index name, its
    /// uniqueness flag ([`Dialect::index_is_unique`]) and its columns (one per row, or
    /// comma-separated, see [`Dialect::index_row_per_column`]); ordered by name.
    fn indexes_sql(&self, schema: &str, table: &str) -> Sql {
        let mut sql = Sql::new(self.backend());
        sql.push("SELECT index_name, CAST(non_unique AS CHAR), column_name FROM information_schema.statistics WHERE table_schema = ")
            .bind(text(schema), None)
            .push(" AND table_name = ")
            .bind(text(table), None)
            .push(" AND index_name <> 'PRIMARY' ORDER BY index_name, seq_in_index");
        sql
    }

    /// Whether the flag column of [`Dialect::indexes_sql`] says unique.
    fn index_is_unique(&self, flag: &str) -> bool {
        flag == "0"
    }

    /// Whether [`Dialect::indexes_sql`] gives one row per indexed column (rows of one index
    /// are joined); otherwise one row per index.
    fn index_row_per_column(&self) -> bool {
        true
    }

    /// A query of schema names, one column, sorted: every schema of the database
    /// ([`SchemaQuery::All`], the server's own excluded) or those with a codec column
    /// ([`SchemaQuery::WithCodecs`]).
    fn schemas_sql(&self, which: SchemaQuery) -> String;

    /// The current time with milliseconds, as SQL.
    fn now_sql(&self) -> &'static str {
        "CURRENT_TIMESTAMP(3)"
    }

    /// The id of the session's server connection, as SQL.
    fn connection_id_sql(&self) -> &'static str {
        "CONNECTION_ID()"
    }

    /// The database user of the session, as SQL.
    fn current_user_sql(&self) -> &'static str {
        "USER()"
    }

    /// A `FROM` clause that, added to a single-statement `UPDATE` sent outside a transaction,
    /// lets that statement's commit return without waiting for the server to flush it to disk
    /// (the change is visible to every session at once; only a server crash in the next
    /// moments can undo it). `None` where the server has no per-transaction setting for it.
    /// Used for job reservations, whose loss in a crash is harmless.
    fn relaxed_commit_from_sql(&self) -> Option<&'static str> {
        None
    }

    /// The clause that locks the rows a `SELECT` reads until the transaction ends (none where
    /// a write transaction locks the whole database, as on SQLite).
    fn lock_rows_clause(&self) -> &'static str {
        " FOR UPDATE"
    }

    /// Whether several connections may write at once (SQLite has a single writer).
    fn concurrent_writers(&self) -> bool {
        true
    }

    /// The longest schema, table or attribute name the backend takes, in characters.
    fn max_identifier_len(&self) -> usize {
        63
    }

    /// Who allows [`Dialect::max_identifier_len`], for error messages (`"PostgreSQL allows"`).
    fn identifier_limit_label(&self) -> &'static str;

    /// The longest foreign-key constraint name the server generates from a table name
    /// (`<table>_ibfk_<n>` on MySQL), where it generates them.
    fn max_generated_constraint_len(&self) -> Option<usize> {
        None
    }

    /// Whether a `"`-quoted token in a user's SQL is a string (MySQL) rather than an
    /// identifier.
    fn double_quotes_string(&self) -> bool {
        false
    }

    /// Whether a backslash escapes the next character inside a string literal of a user's SQL
    /// (MySQL).
    fn backslash_escapes(&self) -> bool {
        false
    }

    /// Whether enum columns are compared (and `LIKE` applied) as text, via
    /// [`Dialect::as_text`].
    fn compares_as_text(&self) -> bool {
        false
    }

    /// The cast a bound value compared with or written to a column needs: `kind` of the
    /// column's final type, `is_enum` when it is an enum, `sql_type` its column type.
    fn param_cast(&self, kind: ColKind, is_enum: bool, sql_type: &str) -> Option<String> {
        let _ = (kind, is_enum, sql_type);
        None
    }

    /// Whether `UPDATE … SET col = DEFAULT` is understood.
    fn update_to_default(&self) -> bool {
        true
    }

    /// For a column type `c` of a table of `schema` that was dropped, the schema-level type to
    /// drop with it when no other column uses it (PostgreSQL's enum types): a query with a row
    /// per column still using it, and the statement that drops it.
    fn drop_type_sql(&self, schema: &str, c: &CoreType) -> Option<(Sql, String)> {
        let _ = (schema, c);
        None
    }

    /// A query of `(schema, table, comment)` of the base tables of `schemas` on a server,
    /// sorted.
    fn bulk_tables_sql(&self, schemas: &[String]) -> Sql {
        let mut sql = Sql::new(self.backend());
        sql.push(
            "SELECT table_schema, table_name, table_comment FROM information_schema.tables \
             WHERE table_type = 'BASE TABLE' AND table_schema",
        );
        push_in(&mut sql, schemas);
        sql.push(" ORDER BY 1, 2");
        sql
    }

    /// A query of `(schema, table, column)` of the primary keys of the tables of `schemas`
    /// on a server, in key order.
    fn bulk_primary_keys_sql(&self, schemas: &[String]) -> Sql {
        let mut sql = Sql::new(self.backend());
        sql.push(
            "SELECT table_schema, table_name, column_name FROM information_schema.key_column_usage \
             WHERE constraint_name = 'PRIMARY' AND table_schema",
        );
        push_in(&mut sql, schemas);
        sql.push(" ORDER BY table_schema, table_name, ordinal_position");
        sql
    }

    /// The rows of [`Dialect::foreign_keys_sql`] for the tables of `schemas`, or (with
    /// `referencing`) for every table whose foreign keys reference a table of `schemas`.
    fn bulk_foreign_keys_sql(&self, schemas: &[String], referencing: bool) -> Sql {
        let mut sql = Sql::new(self.backend());
        sql.push(
            "SELECT constraint_name, table_schema, table_name, referenced_table_schema, \
             referenced_table_name, column_name, referenced_column_name \
             FROM information_schema.key_column_usage WHERE referenced_table_name IS NOT NULL AND ",
        );
        sql.push(if referencing {
            "referenced_table_schema"
        } else {
            "table_schema"
        });
        push_in(&mut sql, schemas);
        sql.push(" ORDER BY table_schema, table_name, constraint_name, ordinal_position");
        sql
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

/// Sort foreign keys read from a server catalog into declaration order, where the dialect
/// numbers them ([`Dialect::numbers_foreign_keys`]); `key` gives `(constraint, child schema,
/// child table)` of an item.
pub(crate) fn sort_foreign_keys<T>(
    d: &dyn Dialect,
    items: &mut [T],
    key: impl Fn(&T) -> (&str, &str, &str),
) {
    if d.numbers_foreign_keys() {
        items.sort_by_key(|it| {
            let (n, s, t) = key(it);
            (s.to_string(), t.to_string(), d.foreign_key_number(n))
        });
    }
}

/// Every dialect, for questions asked without knowing the backend (error codes).
pub(crate) fn all() -> [&'static dyn Dialect; 3] {
    [&MySql, &Postgres, &Sqlite]
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
