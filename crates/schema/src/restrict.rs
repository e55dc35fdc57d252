//! Restrictions: which rows a fetch, delete or count applies to.
//!
//! Values are always bound as parameters and attribute names are checked against the heading,
//! so nothing a user passes is spliced into SQL.
//!
//! ```
//! use dj_schema::{Restriction, Op, row};
//! let r = Restriction::and([
//!     Restriction::from(row! { "subject_id" => 1 }),
//!     Restriction::cond("weight", Op::Gt, 20.5),
//!     Restriction::not(Restriction::is_in("sex", ["U"])),
//! ]);
//! assert!(matches!(r, Restriction::And(ref v) if v.len() == 3));
//! ```

use std::fmt;
use std::str::FromStr;

use crate::Backend;

use dj_core::typespec::{CoreType, TypeSpec};
use dj_core::value::Value;

use crate::Row;
use crate::coerce::to_param;
use crate::db::{Param, Sql, quote};
use crate::dialect::dialect;
use crate::error::{Error, Result};
use crate::heading::ColKind;
use crate::query::render::Ctx;
use crate::query::{Query, QueryHeading};
use crate::table::Table;

/// A comparison operator of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=` (with a null value: `IS NULL`).
    Eq,
    /// `<>` (with a null value: `IS NOT NULL`).
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `LIKE` (the pattern is a bound value; `%` and `_` are wildcards).
    Like,
    /// `NOT LIKE`.
    NotLike,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::NotLike => "NOT LIKE",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql())
    }
}

impl FromStr for Op {
    type Err = Error;
    fn from_str(s: &str) -> Result<Op> {
        Ok(match s.trim().to_ascii_uppercase().as_str() {
            "=" | "==" => Op::Eq,
            "!=" | "<>" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "LIKE" => Op::Like,
            "NOT LIKE" => Op::NotLike,
            other => {
                return Err(Error::InvalidName {
                    name: other.to_string(),
                    reason: "not a comparison operator (=, <>, <, <=, >, >=, LIKE, NOT LIKE)"
                        .into(),
                });
            }
        })
    }
}

/// A restriction of a table's rows.
#[derive(Clone, Debug)]
pub enum Restriction {
    /// Equality on every entry whose name is an attribute; entries naming no attribute are
    /// ignored, as in DataJoint (a map with no matching entry restricts nothing). A null value
    /// means `IS NULL`.
    Key(Row),
    /// `attr op value`.
    Cond {
        /// The attribute (must exist).
        attr: String,
        /// The operator.
        op: Op,
        /// The value, converted by the attribute's type.
        value: Value,
    },
    /// `attr IN (values)`; an empty list matches nothing.
    In {
        /// The attribute (must exist).
        attr: String,
        /// The values.
        values: Vec<Value>,
    },
    /// All of these (an empty list matches everything).
    And(Vec<Restriction>),
    /// Any of these (an empty list matches nothing).
    Or(Vec<Restriction>),
    /// Not this.
    Not(Box<Restriction>),
    /// Rows whose common attributes match some row of another query: a semijoin (with
    /// DataJoint's semantic check by lineage unless restricted with `restrict_unchecked`).
    /// With no attribute in common, true when the other query has rows.
    Semijoin(Box<Query>),
    /// A SQL condition, as DataJoint accepts strings (`"duration > 10 AND sex = 'F'"`). This
    /// is SQL by design: it is written into the statement as given. Names in it that are not
    /// inside quotes, not SQL keywords and not followed by `(` must be attributes of the
    /// heading (checked before the statement is sent); parameter placeholders (`?`, `$1`) are
    /// refused. Pass values as data with the other variants to have them bound.
    Sql(String),
}

impl From<&str> for Restriction {
    fn from(s: &str) -> Self {
        Restriction::Sql(s.to_string())
    }
}

impl From<String> for Restriction {
    fn from(s: String) -> Self {
        Restriction::Sql(s)
    }
}

impl From<&Query> for Restriction {
    fn from(q: &Query) -> Self {
        Restriction::Semijoin(Box::new(q.clone()))
    }
}

impl From<&Row> for Restriction {
    fn from(row: &Row) -> Self {
        Restriction::Key(row.clone())
    }
}

impl From<bool> for Restriction {
    fn from(b: bool) -> Self {
        if b {
            Restriction::And(Vec::new())
        } else {
            Restriction::Or(Vec::new())
        }
    }
}

/// A list of restrictions is an OR list, as in DataJoint.
impl<T: Into<Restriction>> From<Vec<T>> for Restriction {
    fn from(items: Vec<T>) -> Self {
        Restriction::Or(items.into_iter().map(Into::into).collect())
    }
}

impl From<Row> for Restriction {
    fn from(row: Row) -> Self {
        Restriction::Key(row)
    }
}

impl From<Query> for Restriction {
    fn from(q: Query) -> Self {
        Restriction::Semijoin(Box::new(q))
    }
}

impl From<&Table> for Restriction {
    fn from(t: &Table) -> Self {
        Restriction::Semijoin(Box::new(t.query()))
    }
}

impl Restriction {
    /// `attr op value`.
    pub fn cond(attr: impl Into<String>, op: Op, value: impl Into<Value>) -> Self {
        Restriction::Cond {
            attr: attr.into(),
            op,
            value: value.into(),
        }
    }

    /// `attr IN (values)`.
    pub fn is_in<V: Into<Value>>(
        attr: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        Restriction::In {
            attr: attr.into(),
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// AND of several restrictions.
    pub fn and(items: impl IntoIterator<Item = Restriction>) -> Self {
        Restriction::And(items.into_iter().collect())
    }

    /// OR of several restrictions.
    pub fn or(items: impl IntoIterator<Item = Restriction>) -> Self {
        Restriction::Or(items.into_iter().collect())
    }

    /// Negation.
    #[allow(clippy::should_implement_trait)]
    pub fn not(r: Restriction) -> Self {
        Restriction::Not(Box::new(r))
    }

    /// Render into `sql` as a boolean expression over the columns of `table`.
    pub(crate) fn render(&self, table: &Table, sql: &mut Sql) -> Result<()> {
        let h = QueryHeading::of_table(table);
        let mut frag = Sql::fragment(sql.backend);
        self.render_on(&h, true, &mut Ctx::default(), &mut frag)?;
        sql.append(frag);
        Ok(())
    }

    /// Render into the fragment `sql` as a boolean expression over the heading `h` (attribute
    /// names are the output names of the expression restricted). `semantic` applies
    /// DataJoint's lineage check to query operands.
    pub(crate) fn render_on(
        &self,
        h: &QueryHeading,
        semantic: bool,
        ctx: &mut Ctx,
        sql: &mut Sql,
    ) -> Result<()> {
        match self {
            Restriction::Key(row) => {
                let parts: Vec<(&String, &Value)> = row
                    .iter()
                    .filter(|(k, _)| h.attribute(k).is_some())
                    .collect();
                if parts.is_empty() {
                    sql.push("1=1");
                    return Ok(());
                }
                sql.push("(");
                for (i, (k, v)) in parts.into_iter().enumerate() {
                    if i > 0 {
                        sql.push(" AND ");
                    }
                    render_cond(h, sql, k, Op::Eq, v)?;
                }
                sql.push(")");
            }
            Restriction::Cond { attr, op, value } => {
                h.require(attr)?;
                render_cond(h, sql, attr, *op, value)?;
            }
            Restriction::In { attr, values } => {
                h.require(attr)?;
                if values.is_empty() {
                    sql.push("1=0");
                    return Ok(());
                }
                sql.push("(");
                column_expr(h, sql, attr, false);
                sql.push(" IN (");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    bind_value(h, sql, attr, v)?;
                }
                sql.push("))");
            }
            Restriction::And(items) | Restriction::Or(items) => {
                let is_and = matches!(self, Restriction::And(_));
                if items.is_empty() {
                    sql.push(if is_and { "1=1" } else { "1=0" });
                    return Ok(());
                }
                sql.push("(");
                for (i, r) in items.iter().enumerate() {
                    if i > 0 {
                        sql.push(if is_and { " AND " } else { " OR " });
                    }
                    r.render_on(h, semantic, ctx, sql)?;
                }
                sql.push(")");
            }
            Restriction::Not(r) => {
                sql.push("NOT (");
                r.render_on(h, semantic, ctx, sql)?;
                sql.push(")");
            }
            Restriction::Semijoin(q) => {
                let theirs = q.heading()?;
                if semantic {
                    h.check_lineage(&theirs)?;
                }
                let common: Vec<String> = theirs
                    .names()
                    .into_iter()
                    .filter(|n| h.attribute(n).is_some())
                    .map(str::to_string)
                    .collect();
                if common.is_empty() {
                    sql.push("EXISTS (");
                    let sub = q.render_subquery(ctx, &[])?;
                    sql.append(sub);
                    sql.push(")");
                } else {
                    sql.push("(");
                    for (i, c) in common.iter().enumerate() {
                        if i > 0 {
                            sql.push(", ");
                        }
                        sql.ident(c);
                    }
                    sql.push(") IN (");
                    let sub = q.render_subquery(ctx, &common)?;
                    sql.append(sub);
                    sql.push(")");
                }
            }
            Restriction::Sql(text) => {
                let text = check_sql_condition(h, text, sql.backend)?;
                sql.push("(").push(text.trim()).push(")");
            }
        }
        Ok(())
    }
}

/// Check a SQL condition string against the heading: names outside quotes that are not
/// keywords or functions must be attributes; no parameter placeholders. Returns the text for
/// `backend` (backtick-quoted names in the backend's quotes).
pub(crate) fn check_sql_condition(
    h: &QueryHeading,
    text: &str,
    backend: Backend,
) -> Result<String> {
    let (names, out) = scan_sql(text, backend).map_err(|message| Error::InvalidQuery {
        expression: h.label.clone(),
        message: format!("condition `{text}`: {message}"),
    })?;
    for name in names {
        if h.attribute(&name).is_none() {
            return Err(h.unknown(&name));
        }
    }
    Ok(out)
}

const SQL_WORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "is",
    "null",
    "like",
    "ilike",
    "between",
    "true",
    "false",
    "case",
    "when",
    "then",
    "else",
    "end",
    "as",
    "exists",
    "select",
    "from",
    "where",
    "distinct",
    "all",
    "any",
    "some",
    "interval",
    "day",
    "days",
    "hour",
    "minute",
    "second",
    "month",
    "year",
    "week",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "escape",
    "collate",
    "binary",
    "div",
    "mod",
    "xor",
    "regexp",
    "rlike",
    "similar",
    "to",
    "asc",
    "desc",
    "unknown",
    "cast",
    "signed",
    "unsigned",
    "integer",
    "int",
    "char",
    "varchar",
    "text",
    "date",
    "datetime",
    "timestamp",
    "time",
    "decimal",
    "numeric",
    "real",
    "double",
    "float",
    "precision",
    "boolean",
    "bigint",
    "smallint",
    "json",
    "jsonb",
    "uuid",
    "bytea",
    "group",
    "by",
    "having",
    "order",
    "limit",
    "offset",
    "on",
    "using",
    "join",
    "left",
    "inner",
    "outer",
    "cross",
    "union",
    "key",
    "zone",
    "at",
    "with",
    "without",
    "position",
    "substring",
    "for",
    "trim",
    "leading",
    "trailing",
    "both",
    "extract",
    "epoch",
    "nulls",
    "first",
    "last",
    "over",
    "partition",
];

/// The bare identifiers of a SQL text that should name attributes (as SQLite and PostgreSQL
/// read it).
#[cfg(test)]
pub(crate) fn sql_names(text: &str) -> std::result::Result<Vec<String>, String> {
    scan_sql(text, Backend::Sqlite).map(|(names, _)| names)
}

/// Scan a SQL expression written by a user: the names in it that should be attributes (bare
/// identifiers that are not keywords or function calls, and quoted identifiers), and the text
/// for `backend`, with backtick-quoted identifiers (DataJoint's MySQL habit) in the backend's
/// quotes. String literals are skipped (on MySQL, double quotes make a string too, and
/// backslashes escape). Placeholders, `;` and comments are refused.
pub(crate) fn scan_sql(
    text: &str,
    backend: Backend,
) -> std::result::Result<(Vec<String>, String), String> {
    let d = dialect(backend);
    let (double_quoted_strings, backslash_escapes) =
        (d.double_quotes_string(), d.backslash_escapes());
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut sql = String::with_capacity(text.len());
    let mut i = 0;
    let mut prev_dot = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || (double_quoted_strings && c == '"') {
            let start = i;
            i += 1;
            while i < chars.len() {
                if backslash_escapes && chars[i] == '\\' {
                    i += 2;
                    continue;
                }
                if chars[i] == c {
                    if chars.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated string literal".into());
            }
            i += 1;
            sql.extend(&chars[start..i]);
            prev_dot = false;
            continue;
        }
        if c == '`' || c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated quoted name".into());
            }
            let name: String = chars[start..i].iter().collect();
            i += 1;
            if !prev_dot && chars.get(i) != Some(&'.') {
                out.push(name.clone());
            }
            sql.push_str(&quote(backend, &name));
            prev_dot = false;
            continue;
        }
        if c == '?' || (c == '$' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            return Err("parameter placeholders are not allowed in a condition string; pass values with Restriction::cond or a row".into());
        }
        if c == '\u{1}' || c == ';' {
            return Err(format!(
                "the character {c:?} is not allowed in a condition string"
            ));
        }
        if c == '-' && chars.get(i + 1) == Some(&'-')
            || c == '/' && chars.get(i + 1) == Some(&'*')
            || c == '#'
        {
            return Err("comments are not allowed in a condition string".into());
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let is_call = chars.get(j) == Some(&'(');
            let qualified = chars.get(i) == Some(&'.');
            let keyword = SQL_WORDS.contains(&word.to_ascii_lowercase().as_str());
            if !is_call && !keyword && !prev_dot && !qualified {
                out.push(word.clone());
            }
            sql.push_str(&word);
            prev_dot = false;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            sql.extend(&chars[start..i]);
            prev_dot = false;
            continue;
        }
        prev_dot = c == '.';
        sql.push(c);
        i += 1;
    }
    Ok((out, sql))
}

/// The column as an expression; on PostgreSQL, enums and other non-text types compared as
/// text (for LIKE and enum equality).
fn column_expr(h: &QueryHeading, sql: &mut Sql, attr: &str, like: bool) {
    let backend = sql.backend;
    let as_text = dialect(backend).compares_as_text()
        && (like
            || matches!(
                h.attribute(attr).and_then(|a| a.final_type()),
                Some(TypeSpec::Core(CoreType::Enum(_)))
            ));
    let col = quote(backend, attr);
    if as_text {
        sql.push(&dialect(backend).as_text(&col));
    } else {
        sql.push(&col);
    }
}

fn bind_value(h: &QueryHeading, sql: &mut Sql, attr: &str, v: &Value) -> Result<()> {
    let (p, cast) = restriction_param(h, attr, v)?;
    sql.bind(p, cast.as_deref());
    Ok(())
}

fn restriction_param(
    h: &QueryHeading,
    attr: &str,
    v: &Value,
) -> Result<(Option<Param>, Option<String>)> {
    let a = h.require(attr)?;
    if a.has_codec() {
        return Err(Error::BadValue {
            table: h.label.clone(),
            attribute: attr.to_string(),
            message: "attributes stored through a codec cannot be used in restrictions".into(),
        });
    }
    let generic = TypeSpec::Native(String::new());
    let ty = a.final_type().unwrap_or(&generic);
    let p = to_param(v, ty).map_err(|message| Error::BadValue {
        table: h.label.clone(),
        attribute: attr.to_string(),
        message,
    })?;
    let cast = match (ty, a.kind) {
        (TypeSpec::Core(CoreType::Enum(_)), _) => None,
        (_, ColKind::Decimal) => Some("numeric".to_string()),
        _ => None,
    };
    Ok((p, cast))
}

fn render_cond(h: &QueryHeading, sql: &mut Sql, attr: &str, op: Op, v: &Value) -> Result<()> {
    if v.is_null() {
        match op {
            Op::Eq => {
                sql.ident(attr).push(" IS NULL");
                return Ok(());
            }
            Op::Ne => {
                sql.ident(attr).push(" IS NOT NULL");
                return Ok(());
            }
            _ => {
                return Err(Error::BadValue {
                    table: h.label.clone(),
                    attribute: attr.to_string(),
                    message: format!("cannot compare with null using {op}"),
                });
            }
        }
    }
    let like = matches!(op, Op::Like | Op::NotLike);
    sql.push("(");
    column_expr(h, sql, attr, like);
    sql.push(" ").push(op.sql()).push(" ");
    if like {
        let Value::String(pattern) = v else {
            return Err(Error::BadValue {
                table: h.label.clone(),
                attribute: attr.to_string(),
                message: format!("LIKE needs a string pattern, found {}", v.kind()),
            });
        };
        sql.bind(Some(Param::Text(pattern.clone())), None);
    } else {
        bind_value(h, sql, attr, v)?;
    }
    sql.push(")");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::sql_names;
    use crate::Backend;

    #[test]
    fn names_of_a_condition() {
        assert_eq!(
            sql_names("duration > 10 AND sex = 'F' and `weight`<2.5e3").unwrap(),
            ["duration", "sex", "weight"]
        );
        assert_eq!(
            sql_names("abs(x - y) < 1 OR name LIKE 'it''s%'").unwrap(),
            ["x", "y", "name"]
        );
        assert!(sql_names("x = ?").is_err());
        assert!(sql_names("x = 'open").is_err());
        assert!(sql_names("x = 1; drop table t").is_err());
        let (names, text) = super::scan_sql("`sex`=\"F\" AND w>1", Backend::MySql).unwrap();
        assert_eq!(
            (names, text.as_str()),
            (
                vec!["sex".to_string(), "w".to_string()],
                "`sex`=\"F\" AND w>1"
            )
        );
        let (_, text) = super::scan_sql("`sex` = 'F'", Backend::Postgres).unwrap();
        assert_eq!(text, "\"sex\" = 'F'");
    }
}
