//! Property test over generated query trees: every query either reports an error when built
//! (unknown attribute, lineage conflict, incompatible union, ...) or renders SQL that the
//! database accepts, with `len()` equal to the number of rows fetched. On SQLite always, and on
//! PostgreSQL and MariaDB when their test URLs are set (required with CI=true).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use dj_core::value::Value;
use dj_schema::{Connection, Op, Query, Restriction, Row, Table, Tier, U, row};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[derive(Clone, Debug)]
enum Tree {
    Table(usize),
    Restrict(Box<Tree>, usize),
    RestrictBy(Box<Tree>, Box<Tree>, bool),
    Join(Box<Tree>, Box<Tree>),
    Extend(Box<Tree>, Box<Tree>),
    Proj(Box<Tree>, usize),
    Aggr(Box<Tree>, Box<Tree>, bool),
    Distinct(Box<Tree>, usize),
    UAggr(Box<Tree>, usize),
    Union(Box<Tree>, Box<Tree>),
    Top(Box<Tree>, u64, u64, bool),
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![5 => 0usize..3, 1 => Just(3usize)].prop_map(Tree::Table);
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), 0usize..8).prop_map(|(t, c)| Tree::Restrict(Box::new(t), c)),
            (inner.clone(), inner.clone(), any::<bool>()).prop_map(|(a, b, n)| Tree::RestrictBy(
                Box::new(a),
                Box::new(b),
                n
            )),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Tree::Join(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| Tree::Extend(Box::new(a), Box::new(b))),
            (inner.clone(), 0usize..6).prop_map(|(t, p)| Tree::Proj(Box::new(t), p)),
            (inner.clone(), inner.clone(), any::<bool>()).prop_map(|(a, b, k)| Tree::Aggr(
                Box::new(a),
                Box::new(b),
                k
            )),
            (inner.clone(), 0usize..3).prop_map(|(t, u)| Tree::Distinct(Box::new(t), u)),
            (inner.clone(), 0usize..3).prop_map(|(t, u)| Tree::UAggr(Box::new(t), u)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Tree::Union(Box::new(a), Box::new(b))),
            (inner, 0u64..4, 0u64..3, any::<bool>()).prop_map(|(t, l, o, d)| Tree::Top(
                Box::new(t),
                l,
                o,
                d
            )),
        ]
    })
}

fn condition(i: usize) -> Restriction {
    match i {
        0 => Restriction::from("duration > 12"),
        1 => Restriction::from(row! {"sex" => "F"}),
        2 => Restriction::from("subject_id < 3"),
        3 => Restriction::cond("session", Op::Ge, 2),
        4 => Restriction::from("n > 0"),
        5 => Restriction::from(vec![row! {"subject_id" => 1}, row! {"subject_id" => 4}]),
        6 => Restriction::not(Restriction::cond("species", Op::Eq, "mouse")),
        _ => Restriction::is_in("outcome", ["hit"]),
    }
}

fn build(t: &Tree, tables: &[Table]) -> Query {
    match t {
        Tree::Table(i) => tables[*i].query(),
        Tree::Restrict(a, c) => build(a, tables).restrict(condition(*c)),
        Tree::RestrictBy(a, b, negate) => {
            let (a, b) = (build(a, tables), build(b, tables));
            if *negate { &a - &b } else { &a & &b }
        }
        Tree::Join(a, b) => build(a, tables) * build(b, tables),
        Tree::Extend(a, b) => build(a, tables).extend(build(b, tables)),
        Tree::Proj(a, p) => {
            let q = build(a, tables);
            match p {
                0 => q.proj(Vec::<&str>::new()),
                1 => q.proj(["..."]),
                2 => q.proj(["subject_id * 2 -> twice"]),
                3 => q.proj(["...", "-duration"]),
                4 => q.proj(["d <- duration"]),
                _ => q.proj(["animal <- subject_id"]),
            }
        }
        Tree::Aggr(a, b, keep) => {
            let (a, b) = (build(a, tables), build(b, tables));
            if *keep {
                a.aggr(&b, ["count(*) -> n"])
            } else {
                a.aggr_exclude_nonmatching(&b, ["count(*) -> n", "max(subject_id) -> top_id"])
            }
        }
        Tree::Distinct(a, u) => {
            let q = build(a, tables);
            match u {
                0 => &U::new(["species"]) & &q,
                1 => &U::new(["subject_id"]) & &q,
                _ => &U::new(["subject_id", "session"]) & &q,
            }
        }
        Tree::UAggr(a, u) => {
            let q = build(a, tables);
            match u {
                0 => U::new(["species"]).aggr(&q, ["count(*) -> n"]),
                1 => U::empty().aggr(&q, ["count(*) -> n"]),
                _ => U::new(["subject_id"]).aggr(&q, ["count(*) -> n"]),
            }
        }
        Tree::Union(a, b) => build(a, tables) + build(b, tables),
        Tree::Top(a, limit, offset, desc) => build(a, tables).top(
            Some(*limit),
            [if *desc { "KEY DESC" } else { "KEY" }],
            *offset,
        ),
    }
}

async fn setup(conn: &Connection, name: &str) -> Vec<Table> {
    let schema = conn.schema(name).await.unwrap();
    let subject = schema
        .declare(
            "Subject",
            Tier::Manual,
            "subject_id : int32\n---\nspecies : varchar(32)\nsex : enum('F', 'M')",
        )
        .await
        .unwrap();
    let session = schema
        .declare(
            "Session",
            Tier::Manual,
            "-> Subject\nsession : int16\n---\nduration : float64",
        )
        .await
        .unwrap();
    let trial = schema
        .declare(
            "Trial",
            Tier::Manual,
            "-> Session\ntrial : int16\n---\noutcome : enum('hit', 'miss')",
        )
        .await
        .unwrap();
    let rig = schema
        .declare(
            "Rig",
            Tier::Lookup,
            "rig_id : int16\n---\nspecies : varchar(32)",
        )
        .await
        .unwrap();
    let rows: Vec<Row> = (1..=5)
        .map(|i| {
            row! {"subject_id" => i, "species" => if i < 4 { "mouse" } else { "rat" }, "sex" => if i % 2 == 0 { "M" } else { "F" }}
        })
        .collect();
    subject.insert(&rows).await.unwrap();
    let rows: Vec<Row> = [
        (1, 1, 10.0),
        (1, 2, 20.0),
        (2, 1, 15.0),
        (3, 1, 5.0),
        (3, 2, 50.0),
    ]
    .iter()
    .map(|&(s, n, d)| row! {"subject_id" => s, "session" => n, "duration" => d})
    .collect();
    session.insert(&rows).await.unwrap();
    trial
        .insert(&[
            row! {"subject_id" => 1, "session" => 1, "trial" => 1, "outcome" => "hit"},
            row! {"subject_id" => 3, "session" => 2, "trial" => 1, "outcome" => "miss"},
        ])
        .await
        .unwrap();
    rig.insert(&[row! {"rig_id" => 1, "species" => "mouse"}])
        .await
        .unwrap();
    vec![subject, session, trial, rig]
}

#[test]
fn generated_query_trees_render_accepted_sql() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (label, config, _dir) in common::configs() {
        let conn = rt.block_on(Connection::open(&config)).unwrap();
        let name = common::schema_name("q_trees");
        let tables = rt.block_on(setup(&conn, &name));
        let cases = if label == "sqlite" { 400 } else { 150 };
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let valid = std::cell::Cell::new(0usize);
        let result = runner.run(&tree(), |t| {
            let q = build(&t, &tables);
            let outcome = rt.block_on(async {
                match q.heading() {
                    Err(e) => {
                        // A recorded error comes back from every call, never a panic.
                        prop_assert!(q.sql().is_err(), "{label}: {t:?}: sql() after {e}");
                        prop_assert!(q.len().await.is_err());
                        prop_assert!(q.fetch_rows().await.is_err());
                        Ok(false)
                    }
                    Ok(h) => {
                        let sql = q.sql().unwrap_or_default();
                        let n = q.len().await.map_err(|e| {
                            TestCaseError::fail(format!("{label}: {t:?}\n{sql}\n{e}"))
                        })?;
                        let rows = q.fetch_rows().await.map_err(|e| {
                            TestCaseError::fail(format!("{label}: {t:?}\n{sql}\n{e}"))
                        })?;
                        prop_assert_eq!(rows.len() as u64, n, "{}: {:?}\n{}", label, t, sql);
                        for r in &rows {
                            prop_assert_eq!(
                                r.keys().map(String::as_str).collect::<Vec<_>>(),
                                h.names(),
                                "{}: {:?}",
                                label,
                                t
                            );
                        }
                        // The key identifies rows (no duplicates), except where a key attribute
                        // may be null (left joins).
                        let pk = h.primary_key();
                        let keys: std::collections::HashSet<Vec<String>> = rows
                            .iter()
                            .map(|r| pk.iter().map(|k| format!("{:?}", r[*k])).collect())
                            .collect();
                        let null_key = rows.iter().any(|r| pk.iter().any(|k| r[*k] == Value::Null));
                        if !null_key {
                            prop_assert_eq!(keys.len(), rows.len(), "{}: {:?}\n{}", label, t, sql);
                        }
                        Ok(true)
                    }
                }
            });
            if outcome? {
                valid.set(valid.get() + 1);
            }
            Ok(())
        });
        rt.block_on(async {
            conn.schema(&name).await.unwrap().drop().await.unwrap();
            conn.close().await;
        });
        if let Err(e) = result {
            panic!("{label}: {e}");
        }
        let valid = valid.get();
        eprintln!("{label}: {valid} of {cases} generated queries were valid and ran");
        assert!(
            valid > cases as usize / 10,
            "{label}: too few valid queries ({valid})"
        );
    }
}
