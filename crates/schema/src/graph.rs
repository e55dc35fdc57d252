//! The dependency graph: tables as nodes, foreign keys as edges, as DataJoint's
//! `Dependencies` sees them.
//!
//! A [`DependencyGraph`] is read from the catalog in a few queries per load (one on SQLite),
//! for one or more schemas and, on request, for the schemas they reference
//! ([`DependencyGraph::load_upstream`]) or that reference them
//! ([`DependencyGraph::load_downstream`]). It answers parents, children, ancestors,
//! descendants and a topological order that keeps each part table right after its master
//! (DataJoint's `topo_sort`), and each table's tier from its name
//! ([`Tier::of`](crate::naming::Tier::of)). [`crate::diagram`] draws it.
//!
//! Every foreign key is its own edge (a table may reference one parent twice, once through
//! renamed attributes), with DataJoint's three edge properties: `primary` (all its attributes
//! are in the child's primary key), `aliased` (some attribute is renamed) and `multi` (the
//! child's primary key is not exactly the foreign key's attributes: one parent row, many child
//! rows).
//!
//! ```
//! use dj_schema::{Connection, Tier};
//! use dj_schema::graph::DependencyGraph;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let mut config = dj_config::Config::default();
//! config.database.path = Some(":memory:".into());
//! let conn = Connection::open(&config).await?;
//! let lab = conn.schema("lab").await?;
//! lab.declare("Subject", Tier::Manual, "subject_id : int32").await?;
//! lab.declare("Session", Tier::Manual, "-> Subject\nsession : int16").await?;
//! lab.declare("Clean", Tier::Computed, "-> Session\n---\nn : int32").await?;
//! let graph = DependencyGraph::load(&conn, &["lab"]).await?;
//! assert_eq!(graph.topo_sort(), ["lab.subject", "lab.session", "lab.__clean"]);
//! assert_eq!(graph.descendants("lab.subject")?, ["lab.subject", "lab.session", "lab.__clean"]);
//! let fk = &graph.parents("lab.__clean")?[0];
//! assert!(fk.primary && !fk.multi && !fk.aliased);
//! # Ok::<(), dj_schema::Error>(())
//! # }).unwrap();
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::Backend;
use indexmap::IndexMap;
use serde::Serialize;

use crate::catalog::{self, SQLITE_TABLES, text_rows};
use crate::db::{Connection, Exec, Param, Sql};
use crate::dialect::{dialect, sort_foreign_keys};
use crate::error::{Error, Result};
use crate::heading::Heading;
use crate::naming::{Tier, class_name, master_of};

/// A table of the graph.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableNode {
    /// `schema.table`.
    pub full_name: String,
    /// The schema.
    pub schema: String,
    /// The SQL table name, with its tier prefix.
    pub table: String,
    /// The tier, from the name (`None` for a name DataJoint gives no tier).
    #[serde(serialize_with = "tier_text")]
    pub tier: Option<Tier>,
    /// The class name (`Session`; a part's own name, `Trial`).
    pub class_name: String,
    /// The master's `schema.table`, for a part table whose master is in the graph.
    pub master: Option<String>,
    /// The primary-key attributes, in order.
    pub primary_key: Vec<String>,
    /// The table comment.
    pub comment: String,
}

fn tier_text<S: serde::Serializer>(t: &Option<Tier>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_string()),
        None => s.serialize_none(),
    }
}

/// A foreign key: an edge from the parent (referenced) table to the child.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dependency {
    /// The parent's `schema.table`.
    pub parent: String,
    /// The child's `schema.table`.
    pub child: String,
    /// `(child attribute, parent attribute)` pairs.
    pub attr_map: Vec<(String, String)>,
    /// Every attribute of the foreign key is in the child's primary key.
    pub primary: bool,
    /// Some attribute is renamed (`-> Parent.proj(new='old')`).
    pub aliased: bool,
    /// The child's primary key is not exactly the foreign key's attributes: a parent row may
    /// have many child rows (DataJoint draws these edges thin).
    pub multi: bool,
}

impl Dependency {
    /// The renamed attributes, `child ← parent`, joined by `; ` (empty when none).
    pub fn renames(&self) -> String {
        self.attr_map
            .iter()
            .filter(|(c, p)| c != p)
            .map(|(c, p)| format!("{c} ← {p}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Tables and their foreign keys, for a set of schemas.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DependencyGraph {
    /// The schemas loaded, in the order asked for, then the ones reached.
    schemas: Vec<String>,
    /// By full name, sorted.
    nodes: IndexMap<String, TableNode>,
    /// In the catalog's order per child.
    edges: Vec<Dependency>,
}

/// Which foreign keys a bulk catalog query returns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Foreign keys of tables in the schemas.
    Child,
    /// Foreign keys that reference tables in the schemas.
    Parent,
}

impl DependencyGraph {
    /// The graph of the tables of `schemas` (hidden `~` tables left out). A foreign key to a
    /// table in another schema brings that table in as a node of its own (without its other
    /// foreign keys).
    pub async fn load(conn: &Connection, schemas: &[&str]) -> Result<DependencyGraph> {
        let mut pc = conn.acquire().await?;
        let mut ex = pc.exec();
        let names: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
        Self::load_with(&mut ex, conn.backend(), names).await
    }

    /// [`load`](Self::load) plus every schema the loaded tables reference, transitively (the
    /// whole upstream of `schemas`).
    pub async fn load_upstream(conn: &Connection, schemas: &[&str]) -> Result<DependencyGraph> {
        let mut pc = conn.acquire().await?;
        let mut ex = pc.exec();
        let backend = conn.backend();
        let mut names: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
        loop {
            let g = Self::load_with(&mut ex, backend, names.clone()).await?;
            let more: BTreeSet<String> = g
                .edges
                .iter()
                .filter_map(|e| g.nodes.get(&e.parent))
                .map(|n| n.schema.clone())
                .filter(|s| !names.contains(s))
                .collect();
            if more.is_empty() {
                return Ok(g);
            }
            names.extend(more);
        }
    }

    /// [`load`](Self::load) plus every schema whose tables reference the loaded ones,
    /// transitively (what a cascading delete may reach).
    pub async fn load_downstream(conn: &Connection, schemas: &[&str]) -> Result<DependencyGraph> {
        let mut pc = conn.acquire().await?;
        let mut ex = pc.exec();
        let backend = conn.backend();
        let mut names: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
        loop {
            let fks = bulk_foreign_keys(&mut ex, backend, &names, Side::Parent).await?;
            let more: BTreeSet<String> = fks
                .iter()
                .map(|(cs, _, _)| cs.clone())
                .filter(|s| !names.contains(s))
                .collect();
            if more.is_empty() {
                break;
            }
            names.extend(more);
        }
        Self::load_with(&mut ex, backend, names).await
    }

    async fn load_with(
        ex: &mut Exec<'_>,
        backend: Backend,
        schemas: Vec<String>,
    ) -> Result<DependencyGraph> {
        for s in &schemas {
            crate::naming::check_schema_name(s)?;
        }
        let mut g = DependencyGraph {
            schemas: schemas.clone(),
            ..Default::default()
        };
        if schemas.is_empty() {
            return Ok(g);
        }
        let mut raw_edges: Vec<RawEdge> = Vec::new();
        if dialect(backend).keeps_metadata_tables() {
            catalog::sqlite_bootstrap(ex).await?;
            for h in sqlite_headings(ex, &schemas, Side::Child).await? {
                let pk = h.primary_key().iter().map(|s| s.to_string()).collect();
                g.add_node(&h.schema, &h.table, pk, h.comment.clone());
                for fk in h.foreign_keys {
                    raw_edges.push((
                        fk.parent_schema,
                        fk.parent_table,
                        h.schema.clone(),
                        h.table.clone(),
                        fk.attr_map,
                    ));
                }
            }
        } else {
            let comments = bulk_tables(ex, backend, &schemas).await?;
            let mut pks = bulk_primary_keys(ex, backend, &schemas).await?;
            for (s, t, comment) in comments {
                let pk = pks.remove(&(s.clone(), t.clone())).unwrap_or_default();
                g.add_node(&s, &t, pk, comment);
            }
            for (cs, ct, (ps, pt, map)) in
                bulk_foreign_keys(ex, backend, &schemas, Side::Child).await?
            {
                raw_edges.push((ps, pt, cs, ct, map));
            }
        }
        g.nodes.sort_keys();
        // Parents outside the loaded schemas become nodes of their own.
        let outside: BTreeSet<(String, String)> = raw_edges
            .iter()
            .filter(|(ps, pt, ..)| {
                !pt.starts_with('~') && !g.nodes.contains_key(&format!("{ps}.{pt}"))
            })
            .map(|(ps, pt, ..)| (ps.clone(), pt.clone()))
            .collect();
        for (ps, pt) in outside {
            let pk = if dialect(backend).keeps_metadata_tables() {
                catalog::load_heading(ex, backend, &ps, &pt, 32)
                    .await
                    .map(|h| h.primary_key().iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default()
            } else {
                bulk_primary_keys(ex, backend, std::slice::from_ref(&ps))
                    .await?
                    .remove(&(ps.clone(), pt.clone()))
                    .unwrap_or_default()
            };
            g.add_node(&ps, &pt, pk, String::new());
        }
        for (ps, pt, cs, ct, attr_map) in raw_edges {
            if pt.starts_with('~') || ct.starts_with('~') {
                continue;
            }
            let parent = format!("{ps}.{pt}");
            let child = format!("{cs}.{ct}");
            let Some(child_node) = g.nodes.get(&child) else {
                continue;
            };
            let pk: HashSet<&str> = child_node.primary_key.iter().map(String::as_str).collect();
            let cols: HashSet<&str> = attr_map.iter().map(|(c, _)| c.as_str()).collect();
            let dep = Dependency {
                primary: cols.is_subset(&pk),
                aliased: attr_map.iter().any(|(c, p)| c != p),
                multi: cols != pk,
                parent,
                child,
                attr_map,
            };
            g.edges.push(dep);
        }
        // Masters of parts, when both are in the graph.
        let masters: Vec<(String, String)> = g
            .nodes
            .values()
            .filter_map(|n| {
                let m = format!("{}.{}", n.schema, master_of(&n.table)?);
                g.nodes.contains_key(&m).then(|| (n.full_name.clone(), m))
            })
            .collect();
        for (part, master) in masters {
            if let Some(n) = g.nodes.get_mut(&part) {
                n.master = Some(master);
            }
        }
        // DataJoint refuses cyclic dependencies; so does everything that walks the graph.
        g.check_acyclic()?;
        // Edges in the order of their children (then of their parents), as the catalog lists
        // each child's foreign keys.
        let order = g.topo_sort();
        let pos: HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut edges = std::mem::take(&mut g.edges);
        edges.sort_by_key(|e| {
            (
                pos.get(e.child.as_str()).copied().unwrap_or(usize::MAX),
                pos.get(e.parent.as_str()).copied().unwrap_or(usize::MAX),
            )
        });
        g.edges = edges;
        Ok(g)
    }

    fn add_node(&mut self, schema: &str, table: &str, primary_key: Vec<String>, comment: String) {
        if table.starts_with('~') {
            return;
        }
        let full_name = format!("{schema}.{table}");
        self.nodes.insert(
            full_name.clone(),
            TableNode {
                full_name,
                schema: schema.to_string(),
                table: table.to_string(),
                tier: Tier::of(table),
                class_name: class_name(table),
                master: None,
                primary_key,
                comment,
            },
        );
    }

    fn check_acyclic(&self) -> Result<()> {
        let order = kahn(
            self.nodes.keys().map(String::as_str),
            self.edges
                .iter()
                .map(|e| (e.parent.as_str(), e.child.as_str())),
        );
        if order.len() == self.nodes.len() {
            return Ok(());
        }
        let placed: HashSet<&str> = order.into_iter().collect();
        let stuck: Vec<&str> = self
            .nodes
            .keys()
            .map(String::as_str)
            .filter(|n| !placed.contains(n))
            .collect();
        Err(Error::Refused {
            table: stuck.first().map_or_else(String::new, |s| s.to_string()),
            message: format!(
                "the foreign keys among {} form a cycle; DataJoint works only with acyclic dependencies",
                stuck.join(", ")
            ),
        })
    }

    /// The schemas loaded.
    pub fn schemas(&self) -> &[String] {
        &self.schemas
    }

    /// The tables, by `schema.table`, sorted by name.
    pub fn nodes(&self) -> impl Iterator<Item = &TableNode> {
        self.nodes.values()
    }

    /// One table, by `schema.table`.
    pub fn node(&self, full_name: &str) -> Option<&TableNode> {
        self.nodes.get(full_name)
    }

    /// Every foreign key.
    pub fn edges(&self) -> &[Dependency] {
        &self.edges
    }

    /// Whether the graph has no table.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The number of tables.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    fn known(&self, full_name: &str) -> Result<()> {
        if self.nodes.contains_key(full_name) {
            Ok(())
        } else {
            Err(Error::NoSuchTable {
                table: full_name.to_string(),
            })
        }
    }

    /// The foreign keys of a table (one per foreign key: a parent referenced twice is there
    /// twice).
    pub fn parents(&self, full_name: &str) -> Result<Vec<&Dependency>> {
        self.known(full_name)?;
        Ok(self.edges.iter().filter(|e| e.child == full_name).collect())
    }

    /// The foreign keys that reference a table.
    pub fn children(&self, full_name: &str) -> Result<Vec<&Dependency>> {
        self.known(full_name)?;
        Ok(self
            .edges
            .iter()
            .filter(|e| e.parent == full_name)
            .collect())
    }

    /// The table and every table that depends on it, in topological order (the table first),
    /// as DataJoint's `descendants`.
    pub fn descendants(&self, full_name: &str) -> Result<Vec<String>> {
        self.known(full_name)?;
        let reach = self.reach(full_name, true);
        let mut out = vec![full_name.to_string()];
        out.extend(
            self.topo_sort_of(&reach)
                .into_iter()
                .filter(|n| n != full_name),
        );
        Ok(out)
    }

    /// Every table the table depends on, and the table itself last, in topological order
    /// (DataJoint's `ancestors` gives the reverse).
    pub fn ancestors(&self, full_name: &str) -> Result<Vec<String>> {
        self.known(full_name)?;
        let reach = self.reach(full_name, false);
        let mut out: Vec<String> = self
            .topo_sort_of(&reach)
            .into_iter()
            .filter(|n| n != full_name)
            .collect();
        out.push(full_name.to_string());
        Ok(out)
    }

    fn reach(&self, from: &str, down: bool) -> HashSet<String> {
        let mut seen = HashSet::from([from.to_string()]);
        let mut stack = vec![from.to_string()];
        while let Some(n) = stack.pop() {
            for e in &self.edges {
                let (a, b) = if down {
                    (&e.parent, &e.child)
                } else {
                    (&e.child, &e.parent)
                };
                if *a == n && seen.insert(b.clone()) {
                    stack.push(b.clone());
                }
            }
        }
        seen
    }

    /// Every table, parents before children, each part table right after its master (and
    /// after its sibling parts that it references), as DataJoint's `topo_sort`.
    pub fn topo_sort(&self) -> Vec<String> {
        let all: HashSet<String> = self.nodes.keys().cloned().collect();
        self.topo_sort_of(&all)
    }

    /// [`topo_sort`](Self::topo_sort) of the tables in `subset`.
    fn topo_sort_of(&self, subset: &HashSet<String>) -> Vec<String> {
        let names: Vec<&str> = self
            .nodes
            .keys()
            .map(String::as_str)
            .filter(|n| subset.contains(*n))
            .collect();
        let master = |n: &str| -> Option<&str> {
            let m = self.nodes.get(n)?.master.as_deref()?;
            subset.contains(m).then_some(m)
        };
        // A part's parents (other than its master and its siblings) come before the master.
        let mut edges: Vec<(&str, &str)> = Vec::new();
        for e in &self.edges {
            if !subset.contains(&e.parent) || !subset.contains(&e.child) {
                continue;
            }
            edges.push((&e.parent, &e.child));
            if let Some(m) = master(&e.child)
                && e.parent != m
                && master(&e.parent) != Some(m)
            {
                edges.push((&e.parent, m));
            }
        }
        let order = kahn(names.iter().copied(), edges.into_iter());
        // Bring each part up to its master, keeping the parts' own order.
        let mut parts_of: HashMap<&str, Vec<&str>> = HashMap::new();
        for n in &order {
            if let Some(m) = master(n) {
                parts_of.entry(m).or_default().push(n);
            }
        }
        let mut out = Vec::with_capacity(order.len());
        for n in &order {
            if master(n).is_some() {
                continue;
            }
            out.push(n.to_string());
            if let Some(parts) = parts_of.get(n) {
                out.extend(parts.iter().map(|p| p.to_string()));
            }
        }
        out
    }

    /// The subgraph of the tables in `keep` (and the foreign keys between them).
    pub fn subgraph<S: AsRef<str>>(&self, keep: impl IntoIterator<Item = S>) -> DependencyGraph {
        let keep: HashSet<String> = keep.into_iter().map(|s| s.as_ref().to_string()).collect();
        DependencyGraph {
            schemas: self.schemas.clone(),
            nodes: self
                .nodes
                .iter()
                .filter(|(k, _)| keep.contains(*k))
                .map(|(k, v)| {
                    let mut v = v.clone();
                    if v.master.as_ref().is_some_and(|m| !keep.contains(m)) {
                        v.master = None;
                    }
                    (k.clone(), v)
                })
                .collect(),
            edges: self
                .edges
                .iter()
                .filter(|e| keep.contains(&e.parent) && keep.contains(&e.child))
                .cloned()
                .collect(),
        }
    }

    /// Whether a table adds a primary-key attribute of its own beyond those its primary
    /// foreign keys bring (a new "dimension"; DataJoint underlines these in its diagrams).
    pub fn introduces_dimension(&self, full_name: &str) -> bool {
        let Some(n) = self.nodes.get(full_name) else {
            return false;
        };
        let inherited: HashSet<&str> = self
            .edges
            .iter()
            .filter(|e| e.child == full_name && e.primary)
            .flat_map(|e| e.attr_map.iter().map(|(c, _)| c.as_str()))
            .collect();
        let pk: HashSet<&str> = n.primary_key.iter().map(String::as_str).collect();
        inherited.is_subset(&pk) && inherited.len() < pk.len()
    }
}

/// Kahn's algorithm, deterministic: of the tables ready, the smallest name first. Tables on a
/// cycle are left out.
pub(crate) fn kahn<'a>(
    nodes: impl Iterator<Item = &'a str>,
    edges: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<&'a str> {
    let mut indegree: IndexMap<&str, usize> = nodes.map(|n| (n, 0)).collect();
    let mut out_edges: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut seen_edges = HashSet::new();
    for (p, c) in edges {
        if p == c || !indegree.contains_key(p) || !seen_edges.insert((p, c)) {
            continue;
        }
        if let Some(d) = indegree.get_mut(c) {
            *d += 1;
            out_edges.entry(p).or_default().push(c);
        }
    }
    let mut ready: BTreeSet<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut order = Vec::with_capacity(indegree.len());
    while let Some(n) = ready.pop_first() {
        order.push(n);
        for c in out_edges.get(n).map(Vec::as_slice).unwrap_or_default() {
            if let Some(d) = indegree.get_mut(c) {
                *d -= 1;
                if *d == 0 {
                    ready.insert(c);
                }
            }
        }
    }
    order
}

fn text(s: &str) -> Option<Param> {
    Some(Param::Text(s.to_string()))
}

/// ` IN (?, ?, …)` over `values`.
pub(crate) fn push_in(sql: &mut Sql, values: &[String]) {
    sql.push(" IN (");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(text(v), None);
    }
    sql.push(")");
}

/// The SQLite headings of the tables in `schemas` (`Side::Child`), or of every table that
/// references a table in `schemas` (`Side::Parent`).
async fn sqlite_headings(
    ex: &mut Exec<'_>,
    schemas: &[String],
    side: Side,
) -> Result<Vec<Heading>> {
    let mut sql = Sql::new(Backend::Sqlite);
    sql.push("SELECT schema_name, table_name, heading FROM ")
        .ident(SQLITE_TABLES);
    if side == Side::Child {
        sql.push(" WHERE schema_name");
        push_in(&mut sql, schemas);
    }
    sql.push(" ORDER BY schema_name, table_name");
    let mut out = Vec::new();
    for r in text_rows(ex, &sql, 3).await? {
        let (Some(Some(s)), Some(Some(t)), Some(Some(json))) = (r.first(), r.get(1), r.get(2))
        else {
            continue;
        };
        let h: Heading = serde_json::from_str(json).map_err(|e| Error::Refused {
            table: format!("{s}.{t}"),
            message: format!("metadata is unreadable: {e}"),
        })?;
        if side == Side::Parent
            && !h
                .foreign_keys
                .iter()
                .any(|fk| schemas.contains(&fk.parent_schema))
        {
            continue;
        }
        out.push(h);
    }
    Ok(out)
}

/// `(schema, table, comment)` of the base tables of `schemas` on a server.
async fn bulk_tables(
    ex: &mut Exec<'_>,
    backend: Backend,
    schemas: &[String],
) -> Result<Vec<(String, String, String)>> {
    let sql = dialect(backend).bulk_tables_sql(schemas);
    Ok(text_rows(ex, &sql, 3)
        .await?
        .into_iter()
        .filter_map(|r| {
            let mut it = r.into_iter();
            let s = it.next().flatten()?;
            let t = it.next().flatten()?;
            let c = it.next().flatten().unwrap_or_default();
            Some((s, t, c))
        })
        .collect())
}

/// The primary keys of the tables of `schemas` on a server, in key order.
async fn bulk_primary_keys(
    ex: &mut Exec<'_>,
    backend: Backend,
    schemas: &[String],
) -> Result<HashMap<(String, String), Vec<String>>> {
    let sql = dialect(backend).bulk_primary_keys_sql(schemas);
    let mut out: HashMap<(String, String), Vec<String>> = HashMap::new();
    for r in text_rows(ex, &sql, 3).await? {
        let mut it = r.into_iter();
        if let (Some(Some(s)), Some(Some(t)), Some(Some(c))) = (it.next(), it.next(), it.next()) {
            out.entry((s, t)).or_default().push(c);
        }
    }
    Ok(out)
}

type AttrMap = Vec<(String, String)>;
/// A parent `(schema, table)` and the attribute map of a foreign key.
type FkTarget = (String, String, AttrMap);
/// `(constraint, child schema, child table)`.
type FkName = (String, String, String);
/// `(child schema, child table, target)`.
type RawFk = (String, String, FkTarget);
/// `(parent schema, parent table, child schema, child table, attr_map)`.
type RawEdge = (String, String, String, String, AttrMap);

/// Foreign keys as `(child schema, child table, (parent schema, parent table, attr_map))`:
/// of the tables in `schemas` (`Side::Child`) or referencing them (`Side::Parent`).
async fn bulk_foreign_keys(
    ex: &mut Exec<'_>,
    backend: Backend,
    schemas: &[String],
    side: Side,
) -> Result<Vec<RawFk>> {
    let d = dialect(backend);
    if d.keeps_metadata_tables() {
        let mut out = Vec::new();
        for h in sqlite_headings(ex, schemas, side).await? {
            for fk in h.foreign_keys {
                if side == Side::Parent && !schemas.contains(&fk.parent_schema) {
                    continue;
                }
                out.push((
                    h.schema.clone(),
                    h.table.clone(),
                    (fk.parent_schema, fk.parent_table, fk.attr_map),
                ));
            }
        }
        return Ok(out);
    }
    let sql = d.bulk_foreign_keys_sql(schemas, side == Side::Parent);
    let rows = text_rows(ex, &sql, 7).await?;
    // (constraint, child schema, child table) → fk, in first-seen order.
    let mut groups: IndexMap<FkName, FkTarget> = IndexMap::new();
    for r in rows {
        let g = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        let entry = groups
            .entry((g(0), g(1), g(2)))
            .or_insert_with(|| (g(3), g(4), Vec::new()));
        entry.2.push((g(5), g(6)));
    }
    let mut out: Vec<(FkName, FkTarget)> = groups.into_iter().collect();
    sort_foreign_keys(d, &mut out, |((n, s, t), _)| (n, s, t));
    Ok(out.into_iter().map(|((_, s, t), fk)| (s, t, fk)).collect())
}
