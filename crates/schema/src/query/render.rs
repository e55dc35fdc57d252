//! Rendering a query tree as one SQL statement.
//!
//! Each node becomes a [`Sel`]: a select list over a `FROM` clause with conditions, grouping,
//! order and limit. An operator adds to its input's `Sel` when SQL allows it (a restriction of
//! a plain selection is one more `WHERE` condition; a join of plain selections is one more
//! `JOIN … USING`) and wraps the input as a subquery otherwise (after a computed or renamed
//! attribute, a grouping, a `DISTINCT`, a limit, a union), as DataJoint does.

use crate::Backend;

use super::{Cond, FkLink, Kind, ProjSrc, Query, QueryHeading};
use crate::db::{Sql, quote};
use crate::dialect::dialect;
use crate::error::{Error, Result};

/// Per-statement state: the counter of subquery aliases.
#[derive(Default, Debug)]
pub(crate) struct Ctx {
    n: usize,
}

impl Ctx {
    fn alias(&mut self) -> String {
        self.n += 1;
        format!("_s{}", self.n)
    }
}

/// One `SELECT` under construction.
#[derive(Debug)]
pub(crate) struct Sel {
    pub backend: Backend,
    /// `(output name, SQL expression over the FROM clause's columns)`.
    pub cols: Vec<(String, String)>,
    pub from: Sql,
    /// Every column name the FROM clause exposes (hidden and projected-away ones too).
    pub physical: Vec<String>,
    /// Whether the FROM clause is one table or one subquery.
    pub single: bool,
    pub wheres: Vec<Sql>,
    pub group_by: Option<Vec<String>>,
    pub distinct: bool,
    /// `(output name, " ASC"/" DESC"/"")`.
    pub order: Vec<(String, &'static str)>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

impl Sel {
    fn q(&self, name: &str) -> String {
        quote(self.backend, name)
    }

    /// Every output column is an input column of the same name.
    pub fn plain_cols(&self) -> bool {
        self.cols.iter().all(|(n, e)| *e == self.q(n))
    }

    /// No grouping, `DISTINCT`, order or limit.
    pub fn flat(&self) -> bool {
        self.group_by.is_none()
            && !self.distinct
            && self.limit.is_none()
            && self.offset.is_none()
            && self.order.is_empty()
    }

    /// Whether a condition on output names can be added as a `WHERE` condition.
    pub fn can_where(&self) -> bool {
        self.flat() && self.plain_cols()
    }

    fn col_expr(&self, name: &str) -> Option<String> {
        if let Some((_, e)) = self.cols.iter().find(|(n, _)| n == name) {
            return Some(e.clone());
        }
        if self.plain_cols() && self.physical.iter().any(|p| p == name) {
            return Some(self.q(name));
        }
        None
    }

    /// The statement: `names` selects (and orders) the output columns; `None` selects all.
    pub fn render(&self, names: Option<&[String]>) -> Result<Sql> {
        let mut sql = Sql::fragment(self.backend);
        sql.push("SELECT ");
        if self.distinct {
            sql.push("DISTINCT ");
        }
        let cols: Vec<(String, String)> = match names {
            None => self.cols.clone(),
            Some(names) => names
                .iter()
                .map(|n| {
                    self.col_expr(n).map(|e| (n.clone(), e)).ok_or_else(|| {
                        Error::UnknownAttribute {
                            table: "(query)".into(),
                            attribute: n.clone(),
                            heading: self.cols.iter().map(|(n, _)| n.clone()).collect(),
                        }
                    })
                })
                .collect::<Result<_>>()?,
        };
        if cols.is_empty() {
            sql.push("1");
        }
        for (i, (n, e)) in cols.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let qn = self.q(n);
            if *e == qn {
                sql.push(e);
            } else {
                sql.push(e).push(" AS ").push(&qn);
            }
        }
        sql.push(" FROM ");
        sql.append_ref(&self.from);
        self.render_tail(&mut sql, None);
        Ok(sql)
    }

    /// WHERE, GROUP BY, ORDER BY, LIMIT; order items qualified by `qualifier` when given.
    fn render_tail(&self, sql: &mut Sql, qualifier: Option<&str>) {
        if !self.wheres.is_empty() {
            sql.push(" WHERE ");
            for (i, w) in self.wheres.iter().enumerate() {
                if i > 0 {
                    sql.push(" AND ");
                }
                sql.push("(");
                sql.append_ref(w);
                sql.push(")");
            }
        }
        if let Some(g) = &self.group_by
            && !g.is_empty()
        {
            sql.push(" GROUP BY ");
            let items: Vec<String> = g.iter().map(|n| self.q(n)).collect();
            sql.push(&items.join(", "));
        }
        if !self.order.is_empty() {
            let items: Vec<String> = self
                .order
                .iter()
                .map(|(n, dir)| match qualifier {
                    Some(q) => format!("{}.{}{dir}", self.q(q), self.q(n)),
                    None => format!("{}{dir}", self.q(n)),
                })
                .collect();
            sql.push(" ORDER BY ").push(&items.join(", "));
        }
        sql.push(&dialect(self.backend).limit_offset(self.limit, self.offset));
    }

    /// This selection as a subquery in the FROM clause of a new, plain selection.
    pub fn wrap(self, ctx: &mut Ctx) -> Result<Sel> {
        let alias = ctx.alias();
        let names: Vec<String> = self.cols.iter().map(|(n, _)| n.clone()).collect();
        let inner = self.render(None)?;
        let mut from = Sql::fragment(self.backend);
        from.push("(");
        from.append(inner);
        from.push(") AS ").push(&quote(self.backend, &alias));
        Ok(Sel {
            backend: self.backend,
            cols: names
                .iter()
                .map(|n| (n.clone(), quote(self.backend, n)))
                .collect(),
            from,
            physical: names,
            single: true,
            wheres: Vec::new(),
            group_by: None,
            distinct: false,
            order: Vec::new(),
            limit: None,
            offset: None,
        })
    }

    fn wrap_unless(self, keep: bool, ctx: &mut Ctx) -> Result<Sel> {
        if keep { Ok(self) } else { self.wrap(ctx) }
    }
}

/// A computed expression in the backend's spelling (backtick-quoted names requoted).
fn expr_sql(e: &str, backend: Backend) -> Result<String> {
    crate::restrict::scan_sql(e, backend)
        .map(|(_, text)| text)
        .map_err(|message| Error::InvalidQuery {
            expression: e.to_string(),
            message,
        })
}

/// Parse one order item: `attr [ASC|DESC]` or `KEY [ASC|DESC]`.
pub(crate) fn parse_order(h: &QueryHeading, item: &str) -> Result<Vec<(String, &'static str)>> {
    let mut words = item.split_whitespace();
    let name = words.next().unwrap_or("");
    let dir = match words.next().map(str::to_ascii_uppercase).as_deref() {
        None => "",
        Some("ASC") => " ASC",
        Some("DESC") => " DESC",
        Some(_) => return Err(h.unknown(item)),
    };
    if words.next().is_some() {
        return Err(h.unknown(item));
    }
    if name.eq_ignore_ascii_case("KEY") {
        return Ok(h
            .primary_key()
            .into_iter()
            .map(|k| (k.to_string(), dir))
            .collect());
    }
    h.require(name)?;
    Ok(vec![(name.to_string(), dir)])
}

impl Query {
    /// The `Sel` of this node.
    pub(crate) fn sel(&self, ctx: &mut Ctx) -> Result<Sel> {
        let h = self.heading_ref()?;
        let backend = self.node.conn.backend();
        let q = |n: &str| quote(backend, n);
        match &self.node.kind {
            Kind::Invalid => Err(self.heading().err().unwrap_or_else(|| Error::InvalidQuery {
                expression: String::new(),
                message: "invalid query".into(),
            })),
            Kind::Table(t) => {
                let mut from = Sql::fragment(backend);
                from.push(&t.qualified());
                Ok(Sel {
                    backend,
                    cols: h.names().iter().map(|n| (n.to_string(), q(n))).collect(),
                    from,
                    physical: t
                        .heading()
                        .attributes
                        .iter()
                        .map(|a| a.name.clone())
                        .collect(),
                    single: true,
                    wheres: Vec::new(),
                    group_by: None,
                    distinct: false,
                    order: Vec::new(),
                    limit: None,
                    offset: None,
                })
            }
            Kind::Restrict { src, conds } => {
                let sh = src.heading_ref()?;
                let s = src.sel(ctx)?;
                let mut s = if s.can_where() { s } else { s.wrap(ctx)? };
                for c in conds {
                    let mut w = Sql::fragment(backend);
                    match c {
                        Cond::Restrict { r, semantic } => {
                            r.render_on(sh, *semantic, ctx, &mut w)?
                        }
                        Cond::Cascade(links) => render_cascade(links, ctx, &mut w)?,
                    }
                    s.wheres.push(w);
                }
                Ok(s)
            }
            Kind::Join {
                left,
                right,
                left_join,
            } => {
                let l = left.sel(ctx)?;
                let r = right.sel(ctx)?;
                join_sel(
                    h,
                    left.heading_ref()?,
                    right.heading_ref()?,
                    l,
                    r,
                    *left_join,
                    ctx,
                )
            }
            Kind::Proj { src, items } => {
                let s = src.sel(ctx)?;
                let computes = items.iter().any(|(_, p)| matches!(p, ProjSrc::Expr(_)));
                let keep = s.flat() && (!computes || s.plain_cols());
                let mut s = s.wrap_unless(keep, ctx)?;
                let mut cols = Vec::new();
                for (name, p) in items {
                    let e = match p {
                        ProjSrc::Attr(old) => s.col_expr(old).ok_or_else(|| h.unknown(old))?,
                        ProjSrc::Expr(e) => format!("({})", expr_sql(e, backend)?),
                    };
                    cols.push((name.clone(), e));
                }
                s.cols = cols;
                Ok(s)
            }
            Kind::Aggr {
                group_by,
                group,
                keep_all,
                items,
                key,
            } => {
                let gh = group.heading_ref()?;
                let base = match group_by {
                    Some(a) => {
                        let ah = a.heading_ref()?;
                        let joined = ah.join(gh, *keep_all, String::new());
                        let l = a.sel(ctx)?;
                        let r = group.sel(ctx)?;
                        join_sel(&joined, ah, gh, l, r, *keep_all, ctx)?
                    }
                    None => {
                        let s = group.sel(ctx)?;
                        let plain = s.can_where();
                        s.wrap_unless(plain, ctx)?
                    }
                };
                let mut s = base;
                let mut cols = Vec::new();
                let mut groups = key.clone();
                for (name, p) in items {
                    match p {
                        ProjSrc::Attr(old) => {
                            let e = s.col_expr(old).ok_or_else(|| h.unknown(old))?;
                            if !groups.contains(old) {
                                groups.push(old.clone());
                            }
                            cols.push((name.clone(), e));
                        }
                        ProjSrc::Expr(e) => {
                            cols.push((name.clone(), format!("({})", expr_sql(e, backend)?)))
                        }
                    }
                }
                s.cols = cols;
                s.group_by = Some(groups);
                Ok(s)
            }
            Kind::Distinct { src, attrs } => {
                let s = src.sel(ctx)?;
                let keep = s.flat();
                let mut s = s.wrap_unless(keep, ctx)?;
                let mut cols = Vec::new();
                for a in attrs {
                    cols.push((a.clone(), s.col_expr(a).ok_or_else(|| h.unknown(a))?));
                }
                s.cols = cols;
                s.distinct = true;
                Ok(s)
            }
            Kind::Union { a, b } => {
                let names: Vec<String> = h.names().iter().map(|n| n.to_string()).collect();
                let ah = a.heading_ref()?;
                let bh = b.heading_ref()?;
                let (b1, b2) = if ah.secondary().is_empty() && bh.secondary().is_empty() {
                    (a.clone(), b.clone())
                } else {
                    // Rows of a (with b's attributes where b has the key), then rows of b
                    // that a lacks, with nulls for a's attributes.
                    let nulls: Vec<String> = std::iter::once("...".to_string())
                        .chain(ah.secondary().iter().map(|s| format!("NULL -> {s}")))
                        .collect();
                    (
                        a.join_with(b, false, true),
                        b.exclude_unchecked(a).proj(nulls),
                    )
                };
                let mut from = Sql::fragment(backend);
                from.push("(");
                for (i, branch) in [b1, b2].iter().enumerate() {
                    if i > 0 {
                        from.push(" UNION ");
                    }
                    let s = branch.sel(ctx)?;
                    let keep = s.order.is_empty() && s.limit.is_none() && s.offset.is_none();
                    let s = s.wrap_unless(keep, ctx)?;
                    from.append(s.render(Some(&names))?);
                }
                from.push(") AS ").push(&q(&ctx.alias()));
                Ok(Sel {
                    backend,
                    cols: names.iter().map(|n| (n.clone(), q(n))).collect(),
                    from,
                    physical: names,
                    single: true,
                    wheres: Vec::new(),
                    group_by: None,
                    distinct: false,
                    order: Vec::new(),
                    limit: None,
                    offset: None,
                })
            }
            Kind::Top {
                src,
                order_by,
                limit,
                offset,
            } => {
                let s = src.sel(ctx)?;
                let keep = s.limit.is_none() && s.offset.is_none() && s.order.is_empty();
                let mut s = s.wrap_unless(keep, ctx)?;
                let mut order = Vec::new();
                let items: Vec<String> =
                    if order_by.is_empty() && (limit.is_some() || offset.is_some()) {
                        vec!["KEY".to_string()]
                    } else {
                        order_by.clone()
                    };
                for item in &items {
                    order.extend(parse_order(h, item)?);
                }
                s.order = order;
                s.limit = *limit;
                s.offset = *offset;
                Ok(s)
            }
        }
    }

    /// `SELECT names FROM …` of this query as a subquery of a condition (`IN`, `EXISTS`).
    pub(crate) fn render_subquery(&self, ctx: &mut Ctx, names: &[String]) -> Result<Sql> {
        let s = self.sel(ctx)?;
        // MariaDB takes no LIMIT in an IN subquery: wrap it.
        let keep = s.limit.is_none() && s.offset.is_none() && s.order.is_empty();
        let s = s.wrap_unless(keep, ctx)?;
        s.render(Some(names))
    }

    /// The statement that fetches `names`, with the casts the decoder needs.
    pub(crate) fn fetch_statement(&self, names: &[String]) -> Result<Sql> {
        let h = self.heading_ref()?;
        let backend = self.node.conn.backend();
        let d = dialect(backend);
        let mut ctx = Ctx::default();
        let s = self.sel(&mut ctx)?;
        let casts: Vec<String> = names
            .iter()
            .map(|n| {
                let kind = h
                    .any_attribute(n)
                    .map(|a| a.kind)
                    .unwrap_or(crate::heading::ColKind::Dynamic);
                let qn = quote(backend, n);
                d.select_column(&qn, n, kind)
            })
            .collect();
        let needs_cast = names
            .iter()
            .zip(&casts)
            .any(|(n, c)| *c != quote(backend, n));
        if !needs_cast {
            return Ok(s.render(Some(names))?.finish());
        }
        // Cast outside: the inner statement orders and limits by the real values.
        let alias = ctx.alias();
        let inner = s.render(Some(names))?;
        let mut sql = Sql::fragment(backend);
        sql.push("SELECT ").push(&casts.join(", ")).push(" FROM (");
        sql.append(inner);
        sql.push(") AS ").push(&quote(backend, &alias));
        if !s.order.is_empty() {
            let items: Vec<String> = s
                .order
                .iter()
                .filter(|(n, _)| names.contains(n))
                .map(|(n, dir)| format!("{}.{}{dir}", quote(backend, &alias), quote(backend, n)))
                .collect();
            if !items.is_empty() {
                sql.push(" ORDER BY ").push(&items.join(", "));
            }
        }
        Ok(sql.finish())
    }

    /// `SELECT count(*) FROM (…)`.
    pub(crate) fn count_statement(&self) -> Result<Sql> {
        let backend = self.node.conn.backend();
        let mut ctx = Ctx::default();
        let s = self.sel(&mut ctx)?;
        let mut sql = Sql::fragment(backend);
        if s.can_where() && s.order.is_empty() {
            sql.push("SELECT count(*) FROM ");
            sql.append_ref(&s.from);
            s.render_tail(&mut sql, None);
        } else {
            let alias = ctx.alias();
            sql.push("SELECT count(*) FROM (");
            sql.append(s.render(None)?);
            sql.push(") AS ").push(&quote(backend, &alias));
        }
        Ok(sql.finish())
    }

    /// The SQL statement a fetch of this query sends (for debugging; parameters appear as
    /// placeholders).
    pub fn sql(&self) -> Result<String> {
        Ok(self.fetch_statement(&self.selected_names()?)?.text)
    }

    /// The `WHERE` conditions of a restricted table, rendered against the table itself (for
    /// `DELETE` and counts per table).
    pub(crate) fn table_conditions(&self) -> Result<Option<Sql>> {
        let backend = self.node.conn.backend();
        let mut ctx = Ctx::default();
        let s = self.sel(&mut ctx)?;
        if !(s.can_where() && s.single && self.table().is_some()) {
            return Err(Error::InvalidQuery {
                expression: self.label(),
                message: "only a table with restrictions can be deleted from".into(),
            });
        }
        if s.wheres.is_empty() {
            return Ok(None);
        }
        let mut sql = Sql::fragment(backend);
        for (i, w) in s.wheres.into_iter().enumerate() {
            if i > 0 {
                sql.push(" AND ");
            }
            sql.push("(");
            sql.append(w);
            sql.push(")");
        }
        Ok(Some(sql))
    }
}

fn render_cascade(links: &[FkLink], ctx: &mut Ctx, w: &mut Sql) -> Result<()> {
    if links.is_empty() {
        w.push("1=0");
        return Ok(());
    }
    for (i, link) in links.iter().enumerate() {
        if i > 0 {
            w.push(" OR ");
        }
        w.push("(");
        for (j, c) in link.child_cols.iter().enumerate() {
            if j > 0 {
                w.push(", ");
            }
            w.ident(c);
        }
        w.push(") IN (");
        let sub = link.parent.render_subquery(ctx, &link.parent_cols)?;
        w.append(sub);
        w.push(")");
    }
    Ok(())
}

/// The `Sel` of a join of `l` and `r` on their common visible attributes.
fn join_sel(
    h: &QueryHeading,
    lh: &QueryHeading,
    rh: &QueryHeading,
    l: Sel,
    r: Sel,
    left_join: bool,
    ctx: &mut Ctx,
) -> Result<Sel> {
    let backend = l.backend;
    let on: Vec<String> = lh
        .names()
        .into_iter()
        .filter(|n| rh.attribute(n).is_some())
        .map(str::to_string)
        .collect();
    // A join of several tables joins the next one through a subquery when they share
    // attributes, as DataJoint does (USING over several tables is not portable).
    let l_ok = l.can_where() && (l.single || on.is_empty());
    let r_ok = r.can_where() && r.single && (!left_join || r.wheres.is_empty());
    let clash = |l: &Sel, r: &Sel| {
        l.physical
            .iter()
            .any(|p| r.physical.contains(p) && !on.contains(p))
    };
    let l = l.wrap_unless(l_ok, ctx)?;
    let mut r = r.wrap_unless(r_ok, ctx)?;
    // Columns of the same name that are not joined on (hidden ones, or ones projected away)
    // would be ambiguous: a subquery exposes only the heading's attributes.
    if clash(&l, &r) {
        r = r.wrap(ctx)?;
    }
    let l = if clash(&l, &r) { l.wrap(ctx)? } else { l };
    let mut from = l.from;
    let q = |n: &str| quote(backend, n);
    match (left_join, on.is_empty()) {
        (false, true) => {
            from.push(" CROSS JOIN ");
            from.append(r.from);
        }
        (true, true) => {
            from.push(" LEFT JOIN ");
            from.append(r.from);
            from.push(" ON 1=1");
        }
        (lj, false) => {
            from.push(if lj { " LEFT JOIN " } else { " JOIN " });
            from.append(r.from);
            let using: Vec<String> = on.iter().map(|n| q(n)).collect();
            from.push(" USING (").push(&using.join(", ")).push(")");
        }
    }
    let mut physical = l.physical;
    physical.extend(r.physical.into_iter().filter(|p| !on.contains(p)));
    let mut wheres = l.wheres;
    wheres.extend(r.wheres);
    Ok(Sel {
        backend,
        cols: h.names().iter().map(|n| (n.to_string(), q(n))).collect(),
        from,
        physical,
        single: false,
        wheres,
        group_by: None,
        distinct: false,
        order: Vec::new(),
        limit: None,
        offset: None,
    })
}
