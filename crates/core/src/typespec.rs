//! Attribute type specs: core types, codec specs (`<name>`, `<name@>`, `<name@store>`) and the
//! native SQL types DataJoint passes through. The SQL type each core type maps to on each backend
//! is the schema layer's business (`dj-schema`).
//!
//! ```
//! use dj_core::typespec::{CoreType, StoreRef, TypeSpec};
//!
//! let spec: TypeSpec = "<blob@cold>".parse().unwrap();
//! assert_eq!(spec, TypeSpec::Codec { name: "blob".into(), store: Some(StoreRef::Named("cold".into())) });
//!
//! let spec: TypeSpec = "<blob@>".parse().unwrap();
//! assert_eq!(spec.to_string(), "<blob@>");
//!
//! let core: TypeSpec = "float64".parse().unwrap();
//! assert_eq!(core, TypeSpec::Core(CoreType::Float64));
//!
//! let err = "<blob@a@b>".parse::<TypeSpec>().unwrap_err();
//! assert!(err.to_string().contains("`<blob@a@b>`"));
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Which store a codec spec names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StoreRef {
    /// A bare `@`: the configured `stores.default` (or `stores.filepath_default` for
    /// `<filepath@>`), resolved at declare time.
    Default,
    /// `@name`.
    Named(String),
}

/// DataJoint's portable core types.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum CoreType {
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    Bool,
    Uuid,
    Json,
    Bytes,
    Date,
    /// `datetime` or `datetime(n)` with fractional-second precision `n` (0–6).
    DateTime(Option<u8>),
    /// `char(n)`.
    Char(u32),
    /// `varchar(n)`.
    Varchar(u32),
    /// `enum('a', 'b', …)`, values in declaration order.
    Enum(Vec<String>),
    /// `decimal(precision, scale)`.
    Decimal(u8, u8),
}

/// A parsed attribute type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TypeSpec {
    /// One of DataJoint's core types.
    Core(CoreType),
    /// A codec, `<name>`, `<name@>` or `<name@store>`.
    Codec {
        /// The codec name.
        name: String,
        /// `None` for in-table mode; `Some` when the spec has `@`.
        store: Option<StoreRef>,
    },
    /// A native SQL type passed through verbatim (DataJoint allows these with a warning), e.g.
    /// `int unsigned` or `longblob`.
    Native(String),
}

impl TypeSpec {
    /// Parse a spec; the same as `str::parse`.
    pub fn parse(spec: &str) -> Result<TypeSpec> {
        spec.parse()
    }

    /// Whether this is a codec spec.
    pub fn is_codec(&self) -> bool {
        matches!(self, TypeSpec::Codec { .. })
    }
}

impl fmt::Display for StoreRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreRef::Default => Ok(()),
            StoreRef::Named(n) => f.write_str(n),
        }
    }
}

impl fmt::Display for CoreType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CoreType::*;
        match self {
            Int8 => f.write_str("int8"),
            Int16 => f.write_str("int16"),
            Int32 => f.write_str("int32"),
            Int64 => f.write_str("int64"),
            UInt8 => f.write_str("uint8"),
            UInt16 => f.write_str("uint16"),
            UInt32 => f.write_str("uint32"),
            UInt64 => f.write_str("uint64"),
            Float32 => f.write_str("float32"),
            Float64 => f.write_str("float64"),
            Bool => f.write_str("bool"),
            Uuid => f.write_str("uuid"),
            Json => f.write_str("json"),
            Bytes => f.write_str("bytes"),
            Date => f.write_str("date"),
            DateTime(None) => f.write_str("datetime"),
            DateTime(Some(n)) => write!(f, "datetime({n})"),
            Char(n) => write!(f, "char({n})"),
            Varchar(n) => write!(f, "varchar({n})"),
            Enum(values) => {
                f.write_str("enum(")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "'{}'", v.replace('\'', "''"))?;
                }
                f.write_str(")")
            }
            Decimal(p, s) => write!(f, "decimal({p},{s})"),
        }
    }
}

impl fmt::Display for TypeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeSpec::Core(c) => c.fmt(f),
            TypeSpec::Codec { name, store: None } => write!(f, "<{name}>"),
            TypeSpec::Codec {
                name,
                store: Some(s),
            } => write!(f, "<{name}@{s}>"),
            TypeSpec::Native(n) => f.write_str(n),
        }
    }
}

fn invalid(spec: &str, reason: impl Into<String>) -> Error {
    Error::InvalidTypeSpec {
        spec: spec.to_string(),
        reason: reason.into(),
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_store_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Splits `name(args)` into `(name, Some(args))`, or `(name, None)` without parentheses.
fn split_args<'a>(spec: &str, s: &'a str) -> Result<(&'a str, Option<&'a str>)> {
    match s.find('(') {
        None => Ok((s, None)),
        Some(open) => {
            let rest = &s[open + 1..];
            let Some(inner) = rest.strip_suffix(')') else {
                return Err(invalid(spec, "missing closing `)`"));
            };
            Ok((s[..open].trim_end(), Some(inner)))
        }
    }
}

fn parse_uint(spec: &str, what: &str, s: &str) -> Result<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            spec,
            format!("{what} must be a non-negative integer, got `{s}`"),
        ));
    }
    s.parse::<u32>()
        .map_err(|_| invalid(spec, format!("{what} `{s}` is too large")))
}

fn parse_enum_values(spec: &str, inner: &str) -> Result<Vec<String>> {
    let mut values = Vec::new();
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(quote) = chars.next() else { break };
        if quote != '\'' && quote != '"' {
            return Err(invalid(
                spec,
                "enum values must be quoted, as in enum('a', 'b')",
            ));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(invalid(spec, "unterminated enum value")),
                Some(c) if c == quote => {
                    if chars.peek() == Some(&quote) {
                        chars.next();
                        value.push(quote);
                    } else {
                        break;
                    }
                }
                Some(c) => value.push(c),
            }
        }
        values.push(value);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(c) => {
                return Err(invalid(
                    spec,
                    format!("unexpected `{c}` between enum values"),
                ));
            }
        }
    }
    if values.is_empty() {
        return Err(invalid(spec, "an enum needs at least one value"));
    }
    Ok(values)
}

/// One token of a native SQL type: a lower-cased word, a number, or one of `(`, `)`, `,`.
#[derive(Debug, PartialEq)]
enum NativeToken {
    Word(String),
    Number,
    Open,
    Close,
    Comma,
}

/// Split a native type into tokens; `None` when it has any other character (quotes, `;`, `-`,
/// `/`, `#`, backticks, non-ASCII, control characters), or a number longer than 10 digits.
fn native_tokens(s: &str) -> Option<Vec<NativeToken>> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b' ' || b == b'\t' {
            i += 1;
        } else if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(NativeToken::Word(s[start..i].to_ascii_lowercase()));
        } else if b.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start > 10
                || bytes
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
            {
                return None;
            }
            out.push(NativeToken::Number);
        } else {
            out.push(match b {
                b'(' => NativeToken::Open,
                b')' => NativeToken::Close,
                b',' => NativeToken::Comma,
                _ => return None,
            });
            i += 1;
        }
    }
    Some(out)
}

/// Whether `s` is, in full, one of the native SQL types a definition may use. The grammar
/// (case-insensitive; arguments are plain numbers):
///
/// - `tinyint | smallint | mediumint | int | integer | bigint` `[(n)]` `[unsigned]` `[zerofill]`
///   `[auto_increment]`, or `serial`;
/// - `decimal | numeric | dec | fixed | float | double | real` `[(p) | (p, s)]` `[unsigned]`
///   `[zerofill]` (`decimal(p, s)` and `decimal(p)` alone are the core type);
/// - `time | timestamp | year` `[(n)]`;
/// - `tinyblob | blob | mediumblob | longblob | tinytext | text | mediumtext | longtext`.
///
/// DataJoint 2.3.5 accepts the same types through its `TYPE_PATTERN` regexes, but with any text
/// inside the parentheses and, for integers, anything after the type; here every character is
/// accounted for, so nothing else can reach the `CREATE TABLE` statement.
fn is_native_type(s: &str) -> bool {
    use NativeToken::*;
    let Some(tokens) = native_tokens(s) else {
        return false;
    };
    let Some((Word(base), rest)) = tokens.split_first() else {
        return false;
    };
    let (args, modifiers): (usize, &[&str]) = match base.as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
            (1, &["unsigned", "zerofill", "auto_increment"])
        }
        "decimal" | "numeric" | "dec" | "fixed" | "float" | "double" | "real" => {
            (2, &["unsigned", "zerofill"])
        }
        "time" | "timestamp" | "year" => (1, &[]),
        "serial" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "tinytext" | "text"
        | "mediumtext" | "longtext" => (0, &[]),
        _ => return false,
    };
    // `decimal(p, s)` and `decimal(p)` are the core type; `decimal` with a modifier, or bare,
    // is native (as DataJoint 2.3.5 has it).
    if base == "decimal" && matches!(rest, [Open, ..]) && !rest.iter().any(|t| matches!(t, Word(_)))
    {
        return false;
    }
    // Optional arguments: `(n)`, or `(p, s)` where two are allowed.
    let rest = match rest {
        [Open, Number, Close, tail @ ..] if args >= 1 => tail,
        [Open, Number, Comma, Number, Close, tail @ ..] if args >= 2 => tail,
        [Open, ..] => return false,
        _ => rest,
    };
    // Modifiers, each at most once and in their SQL order.
    let mut allowed = modifiers.iter();
    rest.iter().all(|t| match t {
        Word(w) => allowed.any(|m| m == w),
        _ => false,
    })
}

fn parse_codec(spec: &str, s: &str) -> Result<TypeSpec> {
    let Some(inner) = s.strip_prefix('<').and_then(|r| r.strip_suffix('>')) else {
        return Err(invalid(
            spec,
            "a codec spec must be written `<name>`, `<name@>` or `<name@store>`",
        ));
    };
    if inner.is_empty() {
        return Err(invalid(spec, "the codec name is empty"));
    }
    let (name, store) = match inner.split_once('@') {
        None => (inner, None),
        Some((name, store)) => {
            if store.contains('@') {
                return Err(invalid(spec, "more than one `@`; use `<name@store>`"));
            }
            let store = if store.is_empty() {
                StoreRef::Default
            } else if is_store_name(store) {
                StoreRef::Named(store.to_string())
            } else {
                return Err(invalid(
                    spec,
                    format!("`{store}` is not a valid store name"),
                ));
            };
            (name, Some(store))
        }
    };
    if name.is_empty() {
        return Err(invalid(spec, "the codec name is missing before `@`"));
    }
    if !is_ident(name) {
        return Err(invalid(spec, format!("`{name}` is not a valid codec name")));
    }
    Ok(TypeSpec::Codec {
        name: name.to_string(),
        store,
    })
}

impl FromStr for TypeSpec {
    type Err = Error;

    fn from_str(spec: &str) -> Result<TypeSpec> {
        let s = spec.trim();
        if s.is_empty() {
            return Err(invalid(spec, "the type is empty"));
        }
        if s.starts_with('<') || s.ends_with('>') {
            return parse_codec(spec, s);
        }
        if is_native_type(s) {
            return Ok(TypeSpec::Native(s.to_string()));
        }
        let (name, args) = split_args(spec, s)?;
        use CoreType::*;
        let no_args = |t: CoreType| -> Result<TypeSpec> {
            match args {
                None => Ok(TypeSpec::Core(t)),
                Some(_) => Err(invalid(spec, format!("`{name}` takes no arguments"))),
            }
        };
        match name {
            "int8" => no_args(Int8),
            "int16" => no_args(Int16),
            "int32" => no_args(Int32),
            "int64" => no_args(Int64),
            "uint8" => no_args(UInt8),
            "uint16" => no_args(UInt16),
            "uint32" => no_args(UInt32),
            "uint64" => no_args(UInt64),
            "float32" => no_args(Float32),
            "float64" => no_args(Float64),
            "bool" => no_args(Bool),
            "uuid" => no_args(Uuid),
            "json" => no_args(Json),
            "bytes" => no_args(Bytes),
            "date" => no_args(Date),
            "datetime" => match args {
                None => Ok(TypeSpec::Core(DateTime(None))),
                Some(a) => {
                    let n = parse_uint(spec, "the datetime precision", a)?;
                    if n > 6 {
                        return Err(invalid(spec, "the datetime precision must be 0 to 6"));
                    }
                    Ok(TypeSpec::Core(DateTime(Some(n as u8))))
                }
            },
            "char" | "varchar" => {
                let Some(a) = args else {
                    return Err(invalid(
                        spec,
                        format!("`{name}` needs a length, as in {name}(255)"),
                    ));
                };
                let n = parse_uint(spec, "the length", a)?;
                if n == 0 || n > 65_535 {
                    return Err(invalid(spec, "the length must be 1 to 65535"));
                }
                Ok(TypeSpec::Core(if name == "char" {
                    Char(n)
                } else {
                    Varchar(n)
                }))
            }
            "enum" => {
                let Some(a) = args else {
                    return Err(invalid(spec, "`enum` needs values, as in enum('a', 'b')"));
                };
                Ok(TypeSpec::Core(Enum(parse_enum_values(spec, a)?)))
            }
            "decimal" => {
                let Some(a) = args else {
                    return Err(invalid(
                        spec,
                        "`decimal` needs precision and scale, as in decimal(8,2)",
                    ));
                };
                let (p, sc) = a.split_once(',').unwrap_or((a, "0"));
                let p = parse_uint(spec, "the precision", p)?;
                let sc = parse_uint(spec, "the scale", sc)?;
                if p == 0 || p > 65 {
                    return Err(invalid(spec, "the precision must be 1 to 65"));
                }
                if sc > p || sc > 30 {
                    return Err(invalid(
                        spec,
                        "the scale must be at most the precision (and 30)",
                    ));
                }
                Ok(TypeSpec::Core(Decimal(p as u8, sc as u8)))
            }
            _ => Err(invalid(
                spec,
                format!(
                    "`{name}` is not a core type, a codec or a native SQL type \
                     (native types are written in full, as in `int unsigned`, `float(8,3)`, \
                     `longblob`)"
                ),
            )),
        }
    }
}
