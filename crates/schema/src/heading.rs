//! Headings: the attributes, keys, foreign keys and indexes of a table.

use serde::{Deserialize, Serialize};

use dj_core::typespec::{CoreType, TypeSpec};

use crate::naming::Tier;

/// One attribute (column) of a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    /// The attribute name.
    pub name: String,
    /// The declared type: a core type, a codec spec or a native SQL type.
    #[serde(with = "spec_text")]
    pub spec: TypeSpec,
    /// The column's SQL type on its backend, as declared or as the catalog reports it.
    pub sql_type: String,
    /// Whether the attribute is part of the primary key.
    pub in_key: bool,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The default as written in a definition (`null`, `CURRENT_TIMESTAMP`, a literal), if any.
    pub default: Option<String>,
    /// The user's comment, without the `:type:` marker.
    pub comment: String,
    /// Whether the attribute was inherited through a foreign key.
    pub inherited: bool,
}

impl Attribute {
    /// Hidden attributes (names starting with `_`) are managed by the platform and not fetched.
    pub fn is_hidden(&self) -> bool {
        self.name.starts_with('_')
    }

    /// Whether a missing or null value is filled by the database (nullable or a default).
    pub fn has_default(&self) -> bool {
        self.nullable || self.default.is_some()
    }

    /// The core type the column holds before codecs, when the spec is a core type.
    pub fn core_type(&self) -> Option<&CoreType> {
        match &self.spec {
            TypeSpec::Core(c) => Some(c),
            _ => None,
        }
    }
}

/// A foreign key from this table to a parent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForeignKey {
    /// The parent's schema.
    pub parent_schema: String,
    /// The parent's SQL table name.
    pub parent_table: String,
    /// `(child attribute, parent attribute)` pairs, in the parent's primary-key order.
    pub attr_map: Vec<(String, String)>,
    /// Declared `[nullable]`.
    pub nullable: bool,
    /// Declared `[unique]`.
    pub unique: bool,
}

impl ForeignKey {
    /// Whether some attribute is renamed (`.proj(new='old')`).
    pub fn is_aliased(&self) -> bool {
        self.attr_map.iter().any(|(c, p)| c != p)
    }
}

/// A secondary index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Index {
    /// `unique index(...)`.
    pub unique: bool,
    /// The indexed attributes.
    pub columns: Vec<String>,
}

/// Everything known about a table's structure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heading {
    /// The schema.
    pub schema: String,
    /// The SQL table name, with its tier prefix.
    pub table: String,
    /// The table comment.
    pub comment: String,
    /// The attributes, in column order.
    pub attributes: Vec<Attribute>,
    /// The foreign keys, in declaration order.
    pub foreign_keys: Vec<ForeignKey>,
    /// The secondary indexes.
    pub indexes: Vec<Index>,
}

impl Heading {
    /// `schema.table`, used in messages.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// The tier, from the table name.
    pub fn tier(&self) -> Option<Tier> {
        Tier::of(&self.table)
    }

    /// An attribute by name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The primary-key attribute names, in order.
    pub fn primary_key(&self) -> Vec<&str> {
        self.attributes
            .iter()
            .filter(|a| a.in_key)
            .map(|a| a.name.as_str())
            .collect()
    }

    /// The visible (non-hidden) attribute names, in order.
    pub fn visible_names(&self) -> Vec<&str> {
        self.attributes
            .iter()
            .filter(|a| !a.is_hidden())
            .map(|a| a.name.as_str())
            .collect()
    }
}

/// How a column's value travels between Rust and the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColKind {
    Int,
    UInt,
    Float,
    Bool,
    Decimal,
    Text,
    Bytes,
    Uuid,
    Json,
    Date,
    DateTime,
    /// A column of an unrecognised native type, read as text.
    Other,
    /// A computed column (`proj`, `aggr`): decoded by the type the database reports.
    Dynamic,
}

/// The column kind of a final (post-codec) type.
pub(crate) fn col_kind(spec: &TypeSpec) -> ColKind {
    match spec {
        TypeSpec::Core(c) => match c {
            CoreType::Int8 | CoreType::Int16 | CoreType::Int32 | CoreType::Int64 => ColKind::Int,
            CoreType::UInt8 | CoreType::UInt16 | CoreType::UInt32 | CoreType::UInt64 => {
                ColKind::UInt
            }
            CoreType::Float32 | CoreType::Float64 => ColKind::Float,
            CoreType::Bool => ColKind::Bool,
            CoreType::Uuid => ColKind::Uuid,
            CoreType::Json => ColKind::Json,
            CoreType::Bytes => ColKind::Bytes,
            CoreType::Date => ColKind::Date,
            CoreType::DateTime(_) => ColKind::DateTime,
            CoreType::Char(_) | CoreType::Varchar(_) | CoreType::Enum(_) => ColKind::Text,
            CoreType::Decimal(..) => ColKind::Decimal,
        },
        TypeSpec::Native(n) => native_kind(n),
        TypeSpec::Codec { .. } => ColKind::Other,
    }
}

fn native_kind(n: &str) -> ColKind {
    let lower = n.to_ascii_lowercase();
    let first = lower
        .split(|c: char| c == '(' || c.is_whitespace())
        .next()
        .unwrap_or("");
    let unsigned = lower.contains("unsigned");
    match first {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "serial" | "year" => {
            if unsigned {
                ColKind::UInt
            } else {
                ColKind::Int
            }
        }
        "float" | "double" | "real" => ColKind::Float,
        "decimal" | "numeric" | "dec" | "fixed" => ColKind::Decimal,
        "char" | "varchar" | "text" | "tinytext" | "mediumtext" | "longtext" => ColKind::Text,
        "blob" | "tinyblob" | "mediumblob" | "longblob" | "bytea" | "binary" | "varbinary" => {
            ColKind::Bytes
        }
        "timestamp" | "datetime" => ColKind::DateTime,
        "date" => ColKind::Date,
        _ => ColKind::Other,
    }
}

mod spec_text {
    use dj_core::typespec::TypeSpec;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(spec: &TypeSpec, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(spec)
    }

    /// A stored heading (SQLite's metadata) is read as it was written. A native type that the
    /// definition parser no longer accepts (one recorded before native types were checked in
    /// full) stays readable as a native type: it is only read here, never written to DDL.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TypeSpec, D::Error> {
        let text = String::deserialize(d)?;
        match text.parse() {
            Ok(spec) => Ok(spec),
            Err(_) if !text.trim_start().starts_with('<') => Ok(TypeSpec::Native(text)),
            Err(e) => Err(serde::de::Error::custom(e)),
        }
    }
}
