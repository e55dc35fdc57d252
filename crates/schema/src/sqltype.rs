//! DataJoint's PostgreSQL enum type names. The SQL column type of each core type on each backend,
//! following DataJoint's mapping, is `Dialect::core_type` in `src/dialect/`. (The type specs are `dj_core::typespec`,
//! which knows no SQL.)

use dj_core::typespec::CoreType;
use md5::{Digest, Md5};

/// DataJoint's PostgreSQL name of a core type (the column types themselves are
/// [`Dialect::core_type`](crate::dialect::Dialect::core_type), one mapping per backend file).
pub(crate) trait SqlType {
    /// DataJoint's PostgreSQL enum type name, `None` for non-enum types.
    fn pg_enum_type_name(&self) -> Option<String>;
}

impl SqlType for CoreType {
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
    use crate::Backend;
    use crate::dialect::dialect;
    use dj_core::typespec::TypeSpec;

    fn p(s: &str) -> TypeSpec {
        s.parse().unwrap()
    }

    #[test]
    fn core_types_map_to_sql() {
        let TypeSpec::Core(e) = p("enum('F', 'M', 'U')") else {
            panic!()
        };
        assert_eq!(dialect(Backend::Postgres).core_type(&e), "enum_e54fc739");
        assert_eq!(
            dialect(Backend::Postgres).core_type(&CoreType::Json),
            "jsonb"
        );
        assert_eq!(
            dialect(Backend::MySql).core_type(&CoreType::Bytes),
            "longblob"
        );
        assert_eq!(
            dialect(Backend::MySql).core_type(&CoreType::Bool),
            "tinyint"
        );
        assert_eq!(
            dialect(Backend::Postgres).core_type(&CoreType::Int8),
            "smallint"
        );
        assert_eq!(
            dialect(Backend::Postgres).core_type(&CoreType::DateTime(None)),
            "timestamp"
        );
        assert_eq!(dialect(Backend::Sqlite).core_type(&CoreType::Uuid), "BLOB");
        assert_eq!(
            dialect(Backend::Postgres).core_type(&CoreType::Float64),
            "double precision"
        );
        assert_eq!(
            dialect(Backend::MySql).core_type(&CoreType::Uuid),
            "binary(16)"
        );
    }
}
