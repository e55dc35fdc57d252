//! Cascading deletes: a query's rows and every row that depends on them through foreign keys.

use std::collections::{HashMap, VecDeque};

use indexmap::IndexMap;

use crate::catalog;
use crate::db::{Exec, Sql, Tx};
use crate::error::{Error, Result, classify_db};
use crate::naming::{Tier, master_of};
use crate::query::{Cond, FkLink, Kind, Query};
use crate::restrict::Restriction;
use crate::table::Table;

impl Query {
    /// Delete the matching rows and, first, every row that depends on them through foreign
    /// keys, in one transaction. Returns the number of rows deleted from this table.
    ///
    /// Deleting from a part table directly is refused (delete from its master); a delete that
    /// would remove part rows while keeping their master rows is rolled back.
    pub async fn delete(&self) -> Result<u64> {
        let seed = self.table().ok_or_else(|| not_deletable(self))?;
        let mut tx = seed.connection().begin_tx().await?;
        let n = self.delete_in(&mut tx).await?;
        tx.commit()
            .await
            .map_err(|e| e.in_table(&seed.full_name()))?;
        Ok(n)
    }

    /// [`delete`](Self::delete) inside an open transaction (which the caller commits).
    ///
    /// The plan (the tables reached and, for a restriction by other queries, the keys it
    /// matches) is read inside `tx` too, so it sees the transaction's own rows (and an
    /// in-memory SQLite database, with its one connection, does not wait for itself).
    pub(crate) async fn delete_in(&self, tx: &mut Tx) -> Result<u64> {
        let (full, graph, queries) = self.cascade_plan(&mut tx.exec()).await?;
        let seed = self.table().ok_or_else(|| not_deletable(self))?;
        let backend = seed.backend();
        let mut deleted: HashMap<String, u64> = HashMap::new();
        for name in graph.order.iter().rev() {
            let q = &queries[name];
            let table = &graph.tables[name];
            let mut sql = Sql::new(backend);
            sql.push("DELETE FROM ").push(&table.qualified());
            if let Some(w) = q.table_conditions()? {
                sql.push(" WHERE ");
                sql.append(w);
            }
            let n = tx
                .exec()
                .execute(&sql)
                .await
                .map_err(|e| classify_db(name, e))?;
            deleted.insert(name.clone(), n);
        }
        for (name, n) in &deleted {
            let t = &graph.tables[name];
            if *n > 0
                && let Some(master) = master_of(t.name())
            {
                let master_full = format!("{}.{}", t.schema_name(), master);
                if deleted.get(&master_full).copied().unwrap_or(0) == 0 {
                    return Err(Error::Refused {
                        table: name.clone(),
                        message: format!(
                            "the delete would remove part rows but keep their master rows in `{master_full}`; delete from the master"
                        ),
                    });
                }
            }
        }
        Ok(deleted.get(&full).copied().unwrap_or(0))
    }

    /// What [`Query::delete`] would remove, without removing it: the number of rows per table
    /// (`schema.table`), this table first, then its dependents, parents before children
    /// (DataJoint's safemode shows these counts before it asks).
    pub async fn delete_preview(&self) -> Result<IndexMap<String, u64>> {
        let mut pc = self.connection().acquire().await?;
        let mut ex = pc.exec();
        let (_, graph, queries) = self.cascade_plan(&mut ex).await?;
        let mut out = IndexMap::new();
        for name in &graph.order {
            out.insert(name.clone(), queries[name].len_in(&mut ex).await?);
        }
        Ok(out)
    }

    /// The tables a delete reaches and each one's restriction, parents before children.
    async fn cascade_plan(
        &self,
        ex: &mut Exec<'_>,
    ) -> Result<(String, Graph, HashMap<String, Query>)> {
        let seed = self.table().ok_or_else(|| not_deletable(self))?;
        // Only restrictions of the table itself: checked (and rendered) here.
        self.table_conditions()?;
        let full = seed.full_name();
        if seed.tier() == Some(Tier::Part) {
            return Err(Error::Refused {
                table: full,
                message: "rows of a part table are deleted through its master".into(),
            });
        }
        let graph = Graph::load_with(seed, ex).await?;
        // A restriction by other queries may match different rows once the cascade has
        // deleted some of them (a restriction by the table's own children): fix the rows by
        // their keys first.
        let this = if self.restricts_by_query() {
            let keys = self.keys_in(ex).await?;
            seed.query().restrict(Restriction::Or(
                keys.into_iter().map(Restriction::Key).collect(),
            ))
        } else {
            self.clone()
        };
        let mut queries: HashMap<String, Query> = HashMap::new();
        queries.insert(full.clone(), this);
        for name in graph.order.iter().skip(1) {
            let table = &graph.tables[name];
            let mut alternatives = Vec::new();
            for (parent, child, fk) in &graph.edges {
                if child != name {
                    continue;
                }
                let Some(pq) = queries.get(parent) else {
                    continue;
                };
                alternatives.push(FkLink {
                    child_cols: fk.attr_map.iter().map(|(c, _)| c.clone()).collect(),
                    parent: pq.clone(),
                    parent_cols: fk.attr_map.iter().map(|(_, p)| p.clone()).collect(),
                });
            }
            queries.insert(name.clone(), table.query().with_cascade(alternatives));
        }
        Ok((full, graph, queries))
    }
}

impl Query {
    /// Whether a restriction of this query is by another query (anywhere in its tree).
    fn restricts_by_query(&self) -> bool {
        fn by_query(r: &Restriction) -> bool {
            match r {
                Restriction::Semijoin(_) => true,
                Restriction::And(v) | Restriction::Or(v) => v.iter().any(by_query),
                Restriction::Not(r) => by_query(r),
                _ => false,
            }
        }
        match &self.node.kind {
            Kind::Restrict { src, conds } => {
                src.restricts_by_query()
                    || conds.iter().any(|c| match c {
                        Cond::Restrict { r, .. } => by_query(r),
                        Cond::Cascade(_) => true,
                    })
            }
            _ => false,
        }
    }
}

fn not_deletable(q: &Query) -> Error {
    Error::InvalidQuery {
        expression: q.label(),
        message: "only a table with restrictions can be deleted from (not a join, projection, aggregation, union or top)".into(),
    }
}

/// A table and all its descendants through foreign keys, topologically ordered.
pub(crate) struct Graph {
    pub(crate) tables: HashMap<String, Table>,
    /// `(parent, child, fk)` by full names.
    pub(crate) edges: Vec<(String, String, crate::heading::ForeignKey)>,
    /// The seed first, parents before children.
    pub(crate) order: Vec<String>,
}

impl Graph {
    pub(crate) async fn load(seed: &Table) -> Result<Graph> {
        let mut pc = seed.connection().acquire().await?;
        Graph::load_with(seed, &mut pc.exec()).await
    }

    /// [`load`](Self::load) through `ex` (an open transaction's connection, say: an in-memory
    /// SQLite database has only one).
    pub(crate) async fn load_with(seed: &Table, ex: &mut Exec<'_>) -> Result<Graph> {
        let conn = seed.connection().clone();
        let backend = conn.backend();
        let mut tables: HashMap<String, Table> = HashMap::new();
        let mut edges = Vec::new();
        tables.insert(seed.full_name(), seed.clone());
        let mut queue = VecDeque::from([seed.full_name()]);
        while let Some(name) = queue.pop_front() {
            let (schema, table) = {
                let t = &tables[&name];
                (t.schema_name().to_string(), t.name().to_string())
            };
            let children = catalog::foreign_keys(ex, backend, &schema, &table, true).await?;
            for (cs, ct, fk) in children {
                let child_full = format!("{cs}.{ct}");
                if !tables.contains_key(&child_full) {
                    let h = catalog::load_heading(ex, backend, &cs, &ct, 0).await?;
                    tables.insert(child_full.clone(), Table::from_heading(conn.clone(), h));
                    queue.push_back(child_full.clone());
                }
                edges.push((name.clone(), child_full, fk));
            }
        }
        // Parents before children (the seed, the only table without a parent here, first),
        // the dependency graph's deterministic order.
        let order: Vec<String> = crate::graph::kahn(
            tables.keys().map(String::as_str),
            edges.iter().map(|(p, c, _)| (p.as_str(), c.as_str())),
        )
        .into_iter()
        .map(str::to_string)
        .collect();
        if order.len() != tables.len() {
            return Err(Error::Refused {
                table: seed.full_name(),
                message: "the foreign keys below this table form a cycle".into(),
            });
        }
        Ok(Graph {
            tables,
            edges,
            order,
        })
    }
}
