//! DataJoint's query algebra: one immutable, composable [`Query`] type.
//!
//! A query is built from a [`Table`] (`table.query()`) and from other queries with
//! restriction (`&q & r`, [`Query::restrict`]), antijoin (`&q - r`), restriction without the
//! semantic check (`&q ^ r`), join (`&a * &b`), left join ([`Query::extend`]), projection
//! ([`Query::proj`]), aggregation ([`Query::aggr`], [`U::aggr`]), universal sets ([`U`]),
//! union (`&a + &b`) and [`Query::top`]. Its heading (attribute order, primary key, lineage) is
//! derived with DataJoint 2.x's rules, and it renders as ONE SQL statement, with subqueries
//! where the operators need them, on SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! Building never fails: an invalid operation (an unknown attribute, namesakes of different
//! lineage, an incompatible union, ...) is recorded in the query and returned by the first call
//! that inspects or runs it ([`Query::heading`], [`Query::sql`], [`Query::check`], any fetch).
//!
//! ```
//! use dj_schema::{Connection, Tier, row, U};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut config = dj_config::Config::default();
//! config.database.path = Some(":memory:".into());
//! let conn = Connection::open(&config).await?;
//! let lab = conn.schema("lab").await?;
//! let subject = lab
//!     .declare("Subject", Tier::Manual, "subject_id : int32\n---\nsex : enum('F','M')")
//!     .await?;
//! let session = lab
//!     .declare("Session", Tier::Manual, "-> Subject\nsession : int16\n---\nduration : float64")
//!     .await?;
//! subject.insert(&[row! {"subject_id" => 1, "sex" => "F"}, row! {"subject_id" => 2, "sex" => "M"}]).await?;
//! session.insert(&[
//!     row! {"subject_id" => 1, "session" => 1, "duration" => 12.5},
//!     row! {"subject_id" => 1, "session" => 2, "duration" => 30.0},
//! ]).await?;
//!
//! // (Session * Subject & 'sex="F"').proj(dur='duration')
//! let q = (&session * &subject & "sex = 'F'").proj(["dur <- duration"]);
//! assert_eq!(q.heading()?.names(), ["subject_id", "session", "dur"]);
//! assert_eq!(q.len().await?, 2);
//!
//! // Subject.aggr(Session, n='count(*)'), Subject - Session, dj.U('sex') & Subject
//! let n = subject.query().aggr(&session, ["count(session) -> n"]);
//! assert_eq!(n.restrict(row! {"subject_id" => 2}).fetch1::<dj_schema::Row>().await?["n"], 0.into());
//! assert_eq!((&subject - &session).len().await?, 1);
//! assert_eq!((&U::new(["sex"]) & &subject).len().await?, 2);
//! # Ok::<(), dj_schema::Error>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::sync::Arc;

use crate::db::Connection;
use crate::error::{Error, Result};
use crate::restrict::Restriction;
use crate::table::Table;

mod fetch;
mod heading;
mod ops;
mod preview;
pub(crate) mod render;

pub use fetch::RowStream;
pub use heading::{QueryAttribute, QueryHeading};
pub use ops::{IntoQuery, U};
pub use preview::Preview;

/// One alternative of a cascade restriction: `(child cols) IN (SELECT parent cols FROM parent)`.
#[derive(Clone, Debug)]
pub(crate) struct FkLink {
    pub(crate) child_cols: Vec<String>,
    pub(crate) parent: Query,
    pub(crate) parent_cols: Vec<String>,
}

/// A condition of a restriction node.
#[derive(Clone, Debug)]
pub(crate) enum Cond {
    /// A restriction; `semantic` applies the lineage check to query operands.
    Restrict { r: Restriction, semantic: bool },
    /// The OR of foreign-key semijoins (delete cascades).
    Cascade(Vec<FkLink>),
}

/// A projected item: an attribute of the input (possibly renamed) or a SQL expression.
#[derive(Clone, Debug)]
pub(crate) enum ProjSrc {
    Attr(String),
    Expr(String),
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Table(Table),
    Restrict {
        src: Query,
        conds: Vec<Cond>,
    },
    Join {
        left: Query,
        right: Query,
        left_join: bool,
    },
    Proj {
        src: Query,
        items: Vec<(String, ProjSrc)>,
    },
    /// `group_by` is `None` for a universal set ([`U::aggr`]); `key` is the result's key.
    Aggr {
        group_by: Option<Query>,
        group: Query,
        keep_all: bool,
        items: Vec<(String, ProjSrc)>,
        key: Vec<String>,
    },
    /// `U(attrs) & src`.
    Distinct {
        src: Query,
        attrs: Vec<String>,
    },
    Union {
        a: Query,
        b: Query,
    },
    Top {
        src: Query,
        order_by: Vec<String>,
        limit: Option<u64>,
        offset: Option<u64>,
    },
    Invalid,
}

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) conn: Connection,
    pub(crate) kind: Kind,
    pub(crate) heading: std::result::Result<QueryHeading, Arc<Error>>,
    /// `attrs(...)`: the attributes a fetch returns (all visible ones when `None`).
    pub(crate) fetch_attrs: Option<Vec<String>>,
}

/// A query expression: DataJoint's `QueryExpression`. Immutable; `Clone` is cheap.
///
/// See the [module documentation](self) for the operators and an example.
#[derive(Clone, Debug)]
pub struct Query {
    pub(crate) node: Arc<Node>,
}

/// Copy an error recorded while building a query, to return it again.
pub(crate) fn replay(e: &Error) -> Error {
    match e {
        Error::UnknownAttribute {
            table,
            attribute,
            heading,
        } => Error::UnknownAttribute {
            table: table.clone(),
            attribute: attribute.clone(),
            heading: heading.clone(),
        },
        Error::LineageConflict {
            left,
            right,
            attributes,
        } => Error::LineageConflict {
            left: left.clone(),
            right: right.clone(),
            attributes: attributes.clone(),
        },
        Error::IncompatibleUnion {
            left,
            right,
            message,
        } => Error::IncompatibleUnion {
            left: left.clone(),
            right: right.clone(),
            message: message.clone(),
        },
        Error::InvalidQuery {
            expression,
            message,
        } => Error::InvalidQuery {
            expression: expression.clone(),
            message: message.clone(),
        },
        Error::BadValue {
            table,
            attribute,
            message,
        } => Error::BadValue {
            table: table.clone(),
            attribute: attribute.clone(),
            message: message.clone(),
        },
        other => Error::InvalidQuery {
            expression: String::new(),
            message: other.to_string(),
        },
    }
}

fn strs<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Vec<String> {
    items.into_iter().map(|s| s.as_ref().to_string()).collect()
}

impl Query {
    pub(crate) fn of_table(table: &Table) -> Query {
        Query {
            node: Arc::new(Node {
                conn: table.connection().clone(),
                kind: Kind::Table(table.clone()),
                heading: Ok(QueryHeading::of_table(table)),
                fetch_attrs: None,
            }),
        }
    }

    fn make(&self, kind: Kind, heading: Result<QueryHeading>) -> Query {
        // A restriction or an order keeps the attribute selection of `attrs`.
        let fetch_attrs = match kind {
            Kind::Restrict { .. } | Kind::Top { .. } => self.node.fetch_attrs.clone(),
            _ => None,
        };
        Query {
            node: Arc::new(Node {
                conn: self.node.conn.clone(),
                kind,
                heading: heading.map_err(Arc::new),
                fetch_attrs,
            }),
        }
    }

    fn failed(&self, e: Error) -> Query {
        self.make(Kind::Invalid, Err(e))
    }

    /// The derived heading: attribute order, primary key and lineage; or the error recorded
    /// while the query was built.
    pub fn heading(&self) -> Result<QueryHeading> {
        match &self.node.heading {
            Ok(h) => Ok(h.clone()),
            Err(e) => Err(replay(e)),
        }
    }

    pub(crate) fn heading_ref(&self) -> Result<&QueryHeading> {
        self.node.heading.as_ref().map_err(|e| replay(e))
    }

    /// The primary-key attribute names.
    pub fn primary_key(&self) -> Result<Vec<String>> {
        Ok(strs(self.heading_ref()?.primary_key()))
    }

    /// Check the query without running it: its heading and its SQL.
    pub fn check(&self) -> Result<()> {
        self.sql().map(|_| ())
    }

    /// The connection the query runs on.
    pub fn connection(&self) -> &Connection {
        &self.node.conn
    }

    /// The base table when this query is a table with restrictions (what `delete` accepts).
    pub fn table(&self) -> Option<&Table> {
        match &self.node.kind {
            Kind::Table(t) => Some(t),
            Kind::Restrict { src, .. } => src.table(),
            _ => None,
        }
    }

    /// A short text of the expression, for messages.
    pub(crate) fn label(&self) -> String {
        match &self.node.heading {
            Ok(h) => h.label.clone(),
            Err(_) => "(invalid query)".into(),
        }
    }

    fn with_label(h: QueryHeading, label: String) -> QueryHeading {
        QueryHeading { label, ..h }
    }

    // ----- restriction -----

    fn restrict_with(&self, r: Restriction, semantic: bool, negate: bool) -> Query {
        let h = match self.heading_ref() {
            Ok(h) => h.clone(),
            Err(e) => return self.failed(e),
        };
        let r = if negate {
            Restriction::Not(Box::new(r))
        } else {
            r
        };
        // Check now so the error surfaces with the heading at hand; render again later.
        let mut probe = crate::db::Sql::fragment(self.node.conn.backend());
        if let Err(e) = r.render_on(&h, semantic, &mut render::Ctx::default(), &mut probe) {
            return self.failed(e);
        }
        let cond = Cond::Restrict { r, semantic };
        let label = format!("{} & …", h.label);
        match &self.node.kind {
            Kind::Restrict { src, conds } => {
                let mut conds = conds.clone();
                conds.push(cond);
                self.make(
                    Kind::Restrict {
                        src: src.clone(),
                        conds,
                    },
                    Ok(Self::with_label(h, label)),
                )
            }
            _ => self.make(
                Kind::Restrict {
                    src: self.clone(),
                    conds: vec![cond],
                },
                Ok(Self::with_label(h, label)),
            ),
        }
    }

    /// Restrict to the rows matching `r` (DataJoint's `q & r`): a row or map (only entries
    /// naming attributes count), a [`Restriction`], another query or table (semijoin with the
    /// semantic check), a SQL condition string, a `Vec` (OR list), `Restriction::And`, `Not`.
    pub fn restrict(&self, r: impl Into<Restriction>) -> Query {
        self.restrict_with(r.into(), true, false)
    }

    /// Exclude the rows matching `r` (DataJoint's `q - r`, antijoin for a query).
    pub fn exclude(&self, r: impl Into<Restriction>) -> Query {
        self.restrict_with(r.into(), true, true)
    }

    /// Restrict without the semantic check of query operands (DataJoint's
    /// `restrict(r, semantic_check=False)`; `&q ^ r`): namesakes match whatever their lineage.
    pub fn restrict_unchecked(&self, r: impl Into<Restriction>) -> Query {
        self.restrict_with(r.into(), false, false)
    }

    /// Exclude without the semantic check.
    pub fn exclude_unchecked(&self, r: impl Into<Restriction>) -> Query {
        self.restrict_with(r.into(), false, true)
    }

    /// Whether a row with this key (or matching this restriction) is in the result.
    pub async fn contains(&self, key: impl Into<Restriction>) -> Result<bool> {
        self.restrict(key).exists().await
    }

    pub(crate) fn with_cascade(&self, links: Vec<FkLink>) -> Query {
        let h = match self.heading_ref() {
            Ok(h) => h.clone(),
            Err(e) => return self.failed(e),
        };
        self.make(
            Kind::Restrict {
                src: self.clone(),
                conds: vec![Cond::Cascade(links)],
            },
            Ok(h),
        )
    }

    // ----- join -----

    pub(crate) fn join_with(&self, other: &Query, semantic: bool, left_join: bool) -> Query {
        let (a, b) = match (self.heading_ref(), other.heading_ref()) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return self.failed(e),
        };
        if !Arc::ptr_eq(&self.node.conn.inner, &other.node.conn.inner) {
            return self.failed(Error::InvalidQuery {
                expression: format!("{} * {}", a.label, b.label),
                message: "the operands come from different connections".into(),
            });
        }
        if semantic && let Err(e) = a.check_lineage(b) {
            return self.failed(e);
        }
        let op = if left_join { ".extend" } else { " *" };
        let label = format!("({}{op} {})", a.label, b.label);
        if left_join && !a.determines(b) {
            let missing: Vec<&str> = b
                .primary_key()
                .into_iter()
                .filter(|k| a.attribute(k).is_none())
                .collect();
            return self.failed(Error::InvalidQuery {
                expression: label,
                message: format!(
                    "a left join (extend) needs the left operand to determine the right one: the right operand's key attributes {} are not in the left operand",
                    missing.join(", ")
                ),
            });
        }
        let mut h = a.join(b, false, label);
        if left_join {
            // The right operand's own attributes are null where it has no match.
            for attr in &mut h.attributes {
                if a.attribute(&attr.name).is_none() {
                    attr.nullable = true;
                }
            }
        }
        self.make(
            Kind::Join {
                left: self.clone(),
                right: other.clone(),
                left_join,
            },
            Ok(h),
        )
    }

    /// Natural join on namesake attributes, with the semantic check: namesakes of different
    /// (or unknown) lineage are an error (DataJoint's `a * b`).
    pub fn join(&self, other: impl IntoQuery) -> Query {
        self.join_with(&other.into_query(), true, false)
    }

    /// Natural join on every namesake attribute, without the lineage check (DataJoint's
    /// `a.join(b, semantic_check=False)`).
    pub fn join_unchecked(&self, other: impl IntoQuery) -> Query {
        self.join_with(&other.into_query(), false, false)
    }

    /// Left join keeping every row of `self` (DataJoint's `extend`): `self` must determine
    /// `other` (every key attribute of `other` is an attribute of `self`).
    pub fn extend(&self, other: impl IntoQuery) -> Query {
        self.join_with(&other.into_query(), true, true)
    }

    // ----- projection -----

    /// DataJoint's `proj`. Items are strings: `"attr"` keeps an attribute, `"new <- old"`
    /// renames (a primary-key attribute too), `"expr -> name"` computes a SQL expression
    /// (SQL by design; names in it must be attributes), `"-attr"` excludes, `"..."` keeps every
    /// attribute. The primary key is always kept (perhaps renamed); `proj([] as [&str; 0])` is
    /// the key alone.
    pub fn proj<S: AsRef<str>>(&self, items: impl IntoIterator<Item = S>) -> Query {
        let h = match self.heading_ref() {
            Ok(h) => h.clone(),
            Err(e) => return self.failed(e),
        };
        match proj_items(&h, &strs(items), self.node.conn.backend()) {
            Ok((items, heading)) => self.make(
                Kind::Proj {
                    src: self.clone(),
                    items,
                },
                Ok(heading),
            ),
            Err(e) => self.failed(e),
        }
    }

    // ----- aggregation -----

    fn aggr_with<S: AsRef<str>>(
        &self,
        group: &Query,
        items: impl IntoIterator<Item = S>,
        keep_all: bool,
    ) -> Query {
        let (a, b) = match (self.heading_ref(), group.heading_ref()) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return self.failed(e),
        };
        let label = format!("{}.aggr({}, …)", a.label, b.label);
        if !b.determines(a) {
            let missing: Vec<&str> = a
                .primary_key()
                .into_iter()
                .filter(|k| b.attribute(k).is_none())
                .collect();
            return self.failed(Error::InvalidQuery {
                expression: label,
                message: format!(
                    "the aggregated expression must contain every key attribute of the grouping one; missing: {}",
                    missing.join(", ")
                ),
            });
        }
        if let Err(e) = a.check_lineage(b) {
            return self.failed(e);
        }
        let key = strs(a.primary_key());
        let joined = a.join(b, keep_all, label.clone());
        let joined = joined.set_primary_key(&key, label.clone());
        let items = strs(items);
        // Items may keep attributes of the grouping expression (`"..."` for all of them).
        let mut expanded = Vec::new();
        for it in &items {
            if it.trim() == "..." {
                expanded.extend(strs(a.secondary()));
            } else {
                expanded.push(it.clone());
            }
        }
        for it in &expanded {
            let t = it.trim();
            if !t.contains("->")
                && !t.contains("<-")
                && !t.starts_with('-')
                && a.attribute(t).is_none()
            {
                return self.failed(Error::InvalidQuery {
                    expression: label,
                    message: format!(
                        "`{t}` is not an attribute of the grouping expression; aggregate it with an expression (`max({t}) -> {t}`)"
                    ),
                });
            }
        }
        match proj_items(&joined, &expanded, self.node.conn.backend()) {
            Ok((items, heading)) => self.make(
                Kind::Aggr {
                    group_by: Some(self.clone()),
                    group: group.clone(),
                    keep_all,
                    items,
                    key,
                },
                Ok(heading),
            ),
            Err(e) => self.failed(e),
        }
    }

    /// DataJoint's `aggr`: for each row of `self`, computed items over the matching rows of
    /// `group` (`"count(*) -> n"`, `"avg(duration) -> avg_duration"`), and kept attributes of
    /// `self`. Grouped by `self`'s primary key; every row of `self` is kept (a left join), so
    /// aggregates of rows without matches see nulls (`count(x)` is 0, `count(*)` is 1).
    pub fn aggr<S: AsRef<str>>(
        &self,
        group: impl IntoQuery,
        items: impl IntoIterator<Item = S>,
    ) -> Query {
        self.aggr_with(&group.into_query(), items, true)
    }

    /// [`Query::aggr`] keeping only the rows of `self` that have matches in `group`
    /// (`exclude_nonmatching=True`).
    pub fn aggr_exclude_nonmatching<S: AsRef<str>>(
        &self,
        group: impl IntoQuery,
        items: impl IntoIterator<Item = S>,
    ) -> Query {
        self.aggr_with(&group.into_query(), items, false)
    }

    // ----- union -----

    /// DataJoint's union `a + b`: both operands must have the same primary key and no common
    /// secondary attribute. Rows of either; a key in both has the secondary attributes of both.
    pub fn union(&self, other: impl IntoQuery) -> Query {
        let other = other.into_query();
        let (a, b) = match (self.heading_ref(), other.heading_ref()) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return self.failed(e),
        };
        let err = |message: String| Error::IncompatibleUnion {
            left: a.label.clone(),
            right: b.label.clone(),
            message,
        };
        let mut ka = a.primary_key();
        let mut kb = b.primary_key();
        ka.sort_unstable();
        kb.sort_unstable();
        if ka != kb {
            return self.failed(err(format!(
                "the operands must have the same primary key ({} vs {})",
                a.primary_key().join(", "),
                b.primary_key().join(", ")
            )));
        }
        let common: Vec<&str> = a
            .secondary()
            .into_iter()
            .filter(|s| b.secondary().contains(s))
            .collect();
        if !common.is_empty() {
            return self.failed(err(format!(
                "the operands must not share secondary attributes ({})",
                common.join(", ")
            )));
        }
        if !Arc::ptr_eq(&self.node.conn.inner, &other.node.conn.inner) {
            return self.failed(err("the operands come from different connections".into()));
        }
        let label = format!("({} + {})", a.label, b.label);
        let mut h = a.join(b, false, label);
        for attr in &mut h.attributes {
            if !attr.in_key {
                attr.nullable = true;
            }
        }
        self.make(
            Kind::Union {
                a: self.clone(),
                b: other,
            },
            Ok(h),
        )
    }

    // ----- top -----

    /// DataJoint's `dj.Top`: the first `limit` rows (all with `None`) by `order_by` (`"attr"`,
    /// `"attr DESC"`, `"KEY"`, `"KEY DESC"`; the primary key when empty), after skipping
    /// `offset`. It keeps its meaning inside other operators (a subquery).
    pub fn top<S: AsRef<str>>(
        &self,
        limit: Option<u64>,
        order_by: impl IntoIterator<Item = S>,
        offset: u64,
    ) -> Query {
        let order = strs(order_by);
        self.top_node(order, limit, (offset > 0).then_some(offset))
    }

    fn top_node(&self, order_by: Vec<String>, limit: Option<u64>, offset: Option<u64>) -> Query {
        let h = match self.heading_ref() {
            Ok(h) => h.clone(),
            Err(e) => return self.failed(e),
        };
        for item in &order_by {
            if let Err(e) = render::parse_order(&h, item) {
                return self.failed(e);
            }
        }
        let label = format!("{}.top(…)", h.label);
        self.make(
            Kind::Top {
                src: self.clone(),
                order_by,
                limit,
                offset,
            },
            Ok(Self::with_label(h, label)),
        )
    }

    /// Order by `attr [ASC|DESC]` items (`KEY` stands for the primary key). On a `top`
    /// without a limit yet, this replaces its order.
    pub fn order_by<S: AsRef<str>>(&self, items: impl IntoIterator<Item = S>) -> Query {
        let items = strs(items);
        match &self.node.kind {
            Kind::Top {
                src,
                limit: None,
                offset: None,
                ..
            } => src.top_node(items, None, None),
            _ => self.top_node(items, None, None),
        }
    }

    /// At most `n` rows, in the order given by [`Query::order_by`] (the primary key if none).
    pub fn limit(&self, n: u64) -> Query {
        match &self.node.kind {
            Kind::Top {
                src,
                order_by,
                limit: None,
                offset,
            } => src.top_node(order_by.clone(), Some(n), *offset),
            _ => self.top_node(Vec::new(), Some(n), None),
        }
    }

    /// Skip the first `n` rows (in the order of [`Query::order_by`], the primary key if none).
    pub fn offset(&self, n: u64) -> Query {
        match &self.node.kind {
            Kind::Top {
                src,
                order_by,
                limit,
                offset: None,
            } => src.top_node(order_by.clone(), *limit, Some(n)),
            _ => self.top_node(Vec::new(), None, Some(n)),
        }
    }

    /// Fetch only these attributes (hidden ones of a table may be named too). The heading of
    /// the query is unchanged; use [`Query::proj`] to derive a new expression.
    pub fn attrs<S: AsRef<str>>(&self, names: impl IntoIterator<Item = S>) -> Query {
        let names = strs(names);
        let h = match self.heading_ref() {
            Ok(h) => h,
            Err(e) => return self.failed(e),
        };
        for n in &names {
            if h.any_attribute(n).is_none() {
                return self.failed(h.unknown(n));
            }
        }
        Query {
            node: Arc::new(Node {
                conn: self.node.conn.clone(),
                kind: self.node.kind.clone(),
                heading: self.node.heading.clone(),
                fetch_attrs: Some(names),
            }),
        }
    }

    pub(crate) fn selected_names(&self) -> Result<Vec<String>> {
        match &self.node.fetch_attrs {
            Some(a) => Ok(a.clone()),
            None => Ok(strs(self.heading_ref()?.names())),
        }
    }
}

/// Parse proj items against `h`: the items to select and the resulting heading.
fn proj_items(
    h: &QueryHeading,
    items: &[String],
    backend: crate::Backend,
) -> Result<(Vec<(String, ProjSrc)>, QueryHeading)> {
    let label = format!("{}.proj(…)", h.label);
    let invalid = |message: String| Error::InvalidQuery {
        expression: label.clone(),
        message,
    };
    let mut keep: Vec<String> = Vec::new();
    let mut renames: Vec<(String, String)> = Vec::new();
    let mut computed: Vec<(String, String)> = Vec::new();
    let mut excluded: Vec<String> = Vec::new();
    let mut dups: Vec<(String, String)> = Vec::new();
    let mut all = false;
    for item in items {
        let t = item.trim();
        if t == "..." {
            all = true;
        } else if let Some((new, old)) = t.split_once("<-") {
            renames.push((new.trim().to_string(), old.trim().to_string()));
        } else if let Some((expr, name)) = t.rsplit_once("->") {
            let name = name.trim().to_string();
            let expr = expr.trim().to_string();
            let inner = expr
                .strip_prefix('(')
                .and_then(|e| e.strip_suffix(')'))
                .map(str::trim);
            if h.attribute(&expr).is_some() {
                // `attr -> new` is a rename spelt forwards.
                renames.push((name, expr));
            } else if let Some(inner) = inner.filter(|i| h.attribute(i).is_some()) {
                // `(attr) -> dup` duplicates an attribute and keeps the original.
                dups.push((name, inner.to_string()));
            } else {
                computed.push((name, expr));
            }
        } else if let Some(x) = t.strip_prefix('-') {
            excluded.push(x.trim().to_string());
        } else {
            keep.push(t.to_string());
        }
    }
    for n in renames
        .iter()
        .chain(&dups)
        .map(|(n, _)| n)
        .chain(computed.iter().map(|(n, _)| n))
    {
        if !crate::naming::is_attribute_name(n) {
            return Err(invalid(format!(
                "`{n}` is not a valid attribute name (lowercase letters, digits and underscores)"
            )));
        }
    }
    for (_, old) in &renames {
        h.require(old)?;
    }
    for k in &keep {
        h.require(k)?;
    }
    for x in &excluded {
        let a = h.require(x)?;
        if a.in_key {
            return Err(invalid(format!(
                "the primary-key attribute `{x}` cannot be excluded"
            )));
        }
    }
    for (name, expr) in &computed {
        crate::restrict::scan_sql(expr, backend)
            .map_err(|m| invalid(format!("`{expr} -> {name}`: {m}")))?
            .0
            .iter()
            .try_for_each(|n| h.require(n).map(|_| ()))?;
    }
    let renamed_from: Vec<&str> = renames.iter().map(|(_, o)| o.as_str()).collect();
    let mut selected: Vec<String> = Vec::new();
    for a in h.attributes() {
        let n = a.name.as_str();
        let chosen = if a.in_key {
            !renamed_from.contains(&n)
        } else {
            (keep.iter().any(|k| k == n) || (all && !renamed_from.contains(&n)))
                && !excluded.iter().any(|x| x == n)
        };
        if chosen {
            selected.push(n.to_string());
        }
    }
    // Names must be unique.
    let mut seen: Vec<&str> = selected.iter().map(String::as_str).collect();
    for n in renames
        .iter()
        .chain(&dups)
        .map(|(n, _)| n)
        .chain(computed.iter().map(|(n, _)| n))
    {
        if seen.contains(&n.as_str()) {
            return Err(invalid(format!("attribute `{n}` already exists")));
        }
        seen.push(n);
    }
    let mut out_items = Vec::new();
    let mut attributes = Vec::new();
    for a in h.attributes() {
        if selected.contains(&a.name) {
            out_items.push((a.name.clone(), ProjSrc::Attr(a.name.clone())));
            attributes.push(a.clone());
        }
        for (new, _) in renames.iter().filter(|(_, o)| *o == a.name) {
            out_items.push((new.clone(), ProjSrc::Attr(a.name.clone())));
            let mut r = a.clone();
            r.name = new.clone();
            attributes.push(r);
        }
        for (new, _) in dups.iter().filter(|(_, o)| *o == a.name) {
            out_items.push((new.clone(), ProjSrc::Attr(a.name.clone())));
            let mut r = a.clone();
            r.name = new.clone();
            r.in_key = false;
            attributes.push(r);
        }
    }
    for (name, expr) in &computed {
        out_items.push((name.clone(), ProjSrc::Expr(expr.clone())));
        attributes.push(QueryAttribute::computed(name, expr));
    }
    // Key attributes first, as DataJoint's heading keeps them.
    let mut ordered: Vec<usize> = (0..attributes.len())
        .filter(|&i| attributes[i].in_key)
        .collect();
    ordered.extend((0..attributes.len()).filter(|&i| !attributes[i].in_key));
    let attributes: Vec<QueryAttribute> = ordered.iter().map(|&i| attributes[i].clone()).collect();
    let out_items: Vec<(String, ProjSrc)> = ordered.iter().map(|&i| out_items[i].clone()).collect();
    Ok((
        out_items,
        QueryHeading {
            attributes,
            lineage_available: h.lineage_available,
            label,
        },
    ))
}

impl fmt::Display for Query {
    /// The expression and its heading, without a database round trip: DataJoint's repr shows
    /// rows too, which needs the database; [`Query::preview`] does that.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.heading_ref() {
            Ok(h) => {
                writeln!(f, "{}", h.label)?;
                let cols: Vec<String> = h
                    .attributes()
                    .map(|a| {
                        if a.in_key {
                            format!("*{}", a.name)
                        } else {
                            a.name.clone()
                        }
                    })
                    .collect();
                write!(f, "{}", cols.join("  "))
            }
            Err(e) => write!(f, "invalid query: {e}"),
        }
    }
}
