//! MySQL and MariaDB (the session's `sql_mode` keeps backslash escapes in literals).

use crate::Backend;

use dj_core::typespec::CoreType;

use super::{Dialect, ErrorClass, SchemaQuery, quote_literal, quote_with, text};
use crate::db::Sql;
use crate::ddl;
use crate::heading::{Attribute, ColKind, Heading};
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

    fn core_type(&self, c: &CoreType) -> String {
        use CoreType::*;
        match c {
            Int8 => "tinyint".into(),
            Int16 => "smallint".into(),
            Int32 => "int".into(),
            Int64 => "bigint".into(),
            UInt8 => "tinyint unsigned".into(),
            UInt16 => "smallint unsigned".into(),
            UInt32 => "int unsigned".into(),
            UInt64 => "bigint unsigned".into(),
            Float32 => "float".into(),
            Float64 => "double".into(),
            Bool => "tinyint".into(),
            Uuid => "binary(16)".into(),
            Json => "json".into(),
            Bytes => "longblob".into(),
            Date => "date".into(),
            DateTime(None) => "datetime".into(),
            DateTime(Some(n)) => format!("datetime({n})"),
            Enum(_) => c.to_string(),
            Decimal(p, s) => format!("decimal({p},{s})"),
            Char(n) => format!("char({n})"),
            Varchar(n) => format!("varchar({n})"),
        }
    }

    /// Enum values are string literals inside the type: escaped as every other literal (a
    /// backslash escapes, so a value ending in `\` would otherwise end the list).
    fn column_type(&self, _schema: &str, c: &CoreType) -> String {
        match c {
            CoreType::Enum(values) => {
                let list: Vec<String> = values.iter().map(|v| self.literal(v)).collect();
                format!("enum({})", list.join(", "))
            }
            _ => self.core_type(c),
        }
    }

    /// The column comment (with its `:type:` marker).
    fn column_suffix(&self, a: &Attribute) -> String {
        let c = ddl::column_comment(a);
        if c.is_empty() {
            String::new()
        } else {
            format!(" COMMENT {}", self.literal(&c))
        }
    }

    /// Indexes are declared inside `CREATE TABLE`.
    fn index_ddl(
        &self,
        _h: &Heading,
        _table: &str,
        indexes: Vec<(bool, Vec<String>)>,
    ) -> (Vec<String>, Vec<String>) {
        let lines = indexes
            .iter()
            .map(|(unique, cols)| {
                let cols: Vec<String> = cols.iter().map(|c| self.quote(c)).collect();
                format!(
                    "{}index ({})",
                    if *unique { "unique " } else { "" },
                    cols.join(",")
                )
            })
            .collect();
        (lines, Vec::new())
    }

    fn table_options(&self, comment: &str) -> String {
        if comment.is_empty() {
            " ENGINE=InnoDB".to_string()
        } else {
            format!(" ENGINE=InnoDB, COMMENT {}", self.literal(comment))
        }
    }

    fn lineage_table_sql(&self, schema: &str) -> String {
        let t = self.qualified(schema, "~lineage");
        format!(
            "CREATE TABLE IF NOT EXISTS {t} (`table_name` VARCHAR(64) NOT NULL COMMENT 'table name within the schema', \
             `attribute_name` VARCHAR(64) NOT NULL COMMENT 'attribute name', \
             `lineage` VARCHAR(255) NOT NULL COMMENT 'origin: schema.table.attribute', \
             PRIMARY KEY (`table_name`, `attribute_name`)) ENGINE=InnoDB"
        )
    }

    /// `t_ibfk_10` sorts before `t_ibfk_2`: the order is the trailing number.
    fn numbers_foreign_keys(&self) -> bool {
        true
    }

    fn foreign_key_number(&self, constraint: &str) -> u64 {
        constraint
            .rsplit('_')
            .next()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0)
    }

    fn schemas_sql(&self, which: SchemaQuery) -> String {
        match which {
            SchemaQuery::All => {
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name \
             NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys') \
             ORDER BY 1"
                    .into()
            }
            SchemaQuery::WithCodecs => {
                "SELECT DISTINCT table_schema FROM information_schema.columns \
         WHERE column_comment LIKE ':<%' ORDER BY 1"
                    .into()
            }
        }
    }

    fn max_identifier_len(&self) -> usize {
        64
    }

    fn identifier_limit_label(&self) -> &'static str {
        "MySQL and MariaDB allow"
    }

    /// MariaDB 10.11 refuses a generated constraint name of 64 characters ("Identifier name
    /// … is too long"), so the bound is 63.
    fn max_generated_constraint_len(&self) -> Option<usize> {
        Some(63)
    }

    fn double_quotes_string(&self) -> bool {
        true
    }

    fn backslash_escapes(&self) -> bool {
        true
    }
}
