//! The SQL column type of each core type on SQLite, PostgreSQL and MySQL/MariaDB, following
//! DataJoint's mapping where it has one. (The type specs themselves are `dj_core::typespec`,
//! which knows no SQL.)

use dj_core::typespec::{Backend, CoreType};
use md5::{Digest, Md5};

/// SQL types of a core type.
pub(crate) trait SqlType {
    /// The SQL column type on `backend`.
    fn sql_type(&self, backend: Backend) -> String;
    /// DataJoint's PostgreSQL enum type name, `None` for non-enum types.
    fn pg_enum_type_name(&self) -> Option<String>;
}

impl SqlType for CoreType {
    /// The SQL column type on `backend`, following DataJoint's mapping where it has one.
    ///
    /// On PostgreSQL an enum maps to a schema-level enum type; this returns its unqualified name
    /// ([`SqlType::pg_enum_type_name`]), which the schema layer qualifies and creates.
    fn sql_type(&self, backend: Backend) -> String {
        use Backend::*;
        use CoreType::*;
        match (self, backend) {
            (Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Bool, Sqlite) => {
                "INTEGER".into()
            }
            (Float32 | Float64, Sqlite) => "REAL".into(),
            (Uuid | Bytes, Sqlite) => "BLOB".into(),
            (Json | Date | DateTime(_) | Char(_) | Varchar(_) | Enum(_) | Decimal(..), Sqlite) => {
                "TEXT".into()
            }

            (Int8, MySql) => "tinyint".into(),
            (Int16, MySql) => "smallint".into(),
            (Int32, MySql) => "int".into(),
            (Int64, MySql) => "bigint".into(),
            (UInt8, MySql) => "tinyint unsigned".into(),
            (UInt16, MySql) => "smallint unsigned".into(),
            (UInt32, MySql) => "int unsigned".into(),
            (UInt64, MySql) => "bigint unsigned".into(),
            (Float32, MySql) => "float".into(),
            (Float64, MySql) => "double".into(),
            (Bool, MySql) => "tinyint".into(),
            (Uuid, MySql) => "binary(16)".into(),
            (Json, MySql) => "json".into(),
            (Bytes, MySql) => "longblob".into(),
            (Date, MySql) => "date".into(),
            (DateTime(None), MySql) => "datetime".into(),
            (DateTime(Some(n)), MySql) => format!("datetime({n})"),
            (Enum(_), MySql) => self.to_string(),
            (Decimal(p, s), MySql) => format!("decimal({p},{s})"),

            (Int8 | Int16 | UInt8, Postgres) => "smallint".into(),
            (Int32 | UInt16, Postgres) => "integer".into(),
            (Int64 | UInt32, Postgres) => "bigint".into(),
            (UInt64, Postgres) => "numeric(20,0)".into(),
            (Float32, Postgres) => "real".into(),
            (Float64, Postgres) => "double precision".into(),
            (Bool, Postgres) => "boolean".into(),
            (Uuid, Postgres) => "uuid".into(),
            (Json, Postgres) => "jsonb".into(),
            (Bytes, Postgres) => "bytea".into(),
            (Date, Postgres) => "date".into(),
            (DateTime(None), Postgres) => "timestamp".into(),
            (DateTime(Some(n)), Postgres) => format!("timestamp({n})"),
            (Enum(_), Postgres) => self.pg_enum_type_name().unwrap_or_default(),
            (Decimal(p, s), Postgres) => format!("numeric({p},{s})"),

            (Char(n), MySql | Postgres) => format!("char({n})"),
            (Varchar(n), MySql | Postgres) => format!("varchar({n})"),
        }
    }

    /// DataJoint's PostgreSQL enum type name: `enum_` plus the first 8 hex digits of the MD5 of
    /// the sorted values joined by `_`. `None` for non-enum types.
    fn pg_enum_type_name(&self) -> Option<String> {
        let CoreType::Enum(values) = self else {
            return None;
        };
        let mut sorted: Vec<&str> = values.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        let digest = Md5::digest(sorted.join("_").as_bytes());
        Some(format!(
            "enum_{}",
            data_encoding::HEXLOWER.encode(&digest[..4])
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dj_core::typespec::TypeSpec;

    fn p(s: &str) -> TypeSpec {
        s.parse().unwrap()
    }

    #[test]
    fn core_types_map_to_sql() {
        let TypeSpec::Core(e) = p("enum('F', 'M', 'U')") else {
            panic!()
        };
        assert_eq!(e.sql_type(Backend::Postgres), "enum_e54fc739");
        assert_eq!(CoreType::Json.sql_type(Backend::Postgres), "jsonb");
        assert_eq!(CoreType::Bytes.sql_type(Backend::MySql), "longblob");
        assert_eq!(CoreType::Bool.sql_type(Backend::MySql), "tinyint");
        assert_eq!(CoreType::Int8.sql_type(Backend::Postgres), "smallint");
        assert_eq!(
            CoreType::DateTime(None).sql_type(Backend::Postgres),
            "timestamp"
        );
        assert_eq!(CoreType::Uuid.sql_type(Backend::Sqlite), "BLOB");
        assert_eq!(
            CoreType::Float64.sql_type(Backend::Postgres),
            "double precision"
        );
        assert_eq!(CoreType::Uuid.sql_type(Backend::MySql), "binary(16)");
    }
}
