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

use dj_core::typespec::{Backend, CoreType, TypeSpec};
use dj_core::value::Value;

use crate::Row;
use crate::coerce::to_param;
use crate::db::{Param, Sql, quote};
use crate::dialect::dialect;
use crate::error::{Error, Result};
use crate::heading::ColKind;
use crate::query::Query;
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
    /// Rows whose common attributes match some row of another (restricted) table: a semijoin.
    /// With no attribute in common, true when the other query has rows.
    Semijoin(Box<Query>),
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

    /// Render into `sql` as a boolean expression over `table`.
    pub(crate) fn render(&self, table: &Table, sql: &mut Sql) -> Result<()> {
        match self {
            Restriction::Key(row) => {
                let parts: Vec<(&String, &Value)> = row
                    .iter()
                    .filter(|(k, _)| table.heading().attribute(k).is_some())
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
                    render_cond(table, sql, k, Op::Eq, v)?;
                }
                sql.push(")");
            }
            Restriction::Cond { attr, op, value } => {
                check_attr(table, attr)?;
                render_cond(table, sql, attr, *op, value)?;
            }
            Restriction::In { attr, values } => {
                check_attr(table, attr)?;
                if values.is_empty() {
                    sql.push("1=0");
                    return Ok(());
                }
                sql.push("(");
                column_expr(table, sql, attr, false);
                sql.push(" IN (");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    bind_value(table, sql, attr, v)?;
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
                    r.render(table, sql)?;
                }
                sql.push(")");
            }
            Restriction::Not(r) => {
                sql.push("NOT (");
                r.render(table, sql)?;
                sql.push(")");
            }
            Restriction::Semijoin(q) => {
                let mine = table.heading().visible_names();
                let theirs = q.selected_names();
                let common: Vec<String> = mine
                    .iter()
                    .filter(|n| theirs.iter().any(|t| t == *n))
                    .map(|s| s.to_string())
                    .collect();
                if common.is_empty() {
                    sql.push("EXISTS (");
                    q.render_select(sql, &[], true)?;
                    sql.push(")");
                } else {
                    render_in_subquery(table, sql, &common, q, &common)?;
                }
            }
        }
        Ok(())
    }
}

/// `(mine...) IN (SELECT theirs... FROM q)`.
pub(crate) fn render_in_subquery(
    table: &Table,
    sql: &mut Sql,
    mine: &[String],
    q: &Query,
    theirs: &[String],
) -> Result<()> {
    sql.push("(");
    if mine.len() > 1 {
        sql.push("(");
    }
    for (i, c) in mine.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        let _ = table;
        sql.ident(c);
    }
    if mine.len() > 1 {
        sql.push(")");
    }
    sql.push(" IN (");
    q.render_select(sql, theirs, false)?;
    sql.push("))");
    Ok(())
}

fn check_attr(table: &Table, attr: &str) -> Result<()> {
    if table.heading().attribute(attr).is_none() {
        return Err(Error::UnknownAttribute {
            table: table.full_name(),
            attribute: attr.to_string(),
        });
    }
    Ok(())
}

/// The column as an expression; on PostgreSQL, enums and other non-text types compared as
/// text (for LIKE and enum equality).
fn column_expr(table: &Table, sql: &mut Sql, attr: &str, like: bool) {
    let backend = sql.backend;
    let as_text = backend == Backend::Postgres
        && (like
            || matches!(
                table.final_type(attr),
                Some(TypeSpec::Core(CoreType::Enum(_)))
            ));
    let col = quote(backend, attr);
    if as_text {
        sql.push(&dialect(backend).as_text(&col));
    } else {
        sql.push(&col);
    }
}

fn bind_value(table: &Table, sql: &mut Sql, attr: &str, v: &Value) -> Result<()> {
    let (p, cast) = restriction_param(table, attr, v)?;
    sql.bind(p, cast.as_deref());
    Ok(())
}

fn restriction_param(
    table: &Table,
    attr: &str,
    v: &Value,
) -> Result<(Option<Param>, Option<String>)> {
    let info = table
        .attr_info(attr)
        .ok_or_else(|| Error::UnknownAttribute {
            table: table.full_name(),
            attribute: attr.to_string(),
        })?;
    if info.has_codec {
        return Err(Error::BadValue {
            table: table.full_name(),
            attribute: attr.to_string(),
            message: "attributes stored through a codec cannot be used in restrictions".into(),
        });
    }
    let p = to_param(v, &info.final_type).map_err(|message| Error::BadValue {
        table: table.full_name(),
        attribute: attr.to_string(),
        message,
    })?;
    let cast = match (&info.final_type, info.kind) {
        (TypeSpec::Core(CoreType::Enum(_)), _) => None,
        (_, ColKind::Decimal) => Some("numeric".to_string()),
        _ => None,
    };
    Ok((p, cast))
}

fn render_cond(table: &Table, sql: &mut Sql, attr: &str, op: Op, v: &Value) -> Result<()> {
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
                    table: table.full_name(),
                    attribute: attr.to_string(),
                    message: format!("cannot compare with null using {op}"),
                });
            }
        }
    }
    let like = matches!(op, Op::Like | Op::NotLike);
    sql.push("(");
    column_expr(table, sql, attr, like);
    sql.push(" ").push(op.sql()).push(" ");
    if like {
        let Value::String(pattern) = v else {
            return Err(Error::BadValue {
                table: table.full_name(),
                attribute: attr.to_string(),
                message: format!("LIKE needs a string pattern, found {}", v.kind()),
            });
        };
        sql.bind(Some(Param::Text(pattern.clone())), None);
    } else {
        bind_value(table, sql, attr, v)?;
    }
    sql.push(")");
    Ok(())
}
