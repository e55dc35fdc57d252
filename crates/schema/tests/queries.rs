//! The query algebra (issue 14): every operator on SQLite, PostgreSQL and MariaDB, with the
//! same expected results on each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::each_backend;
use dj_codec_blob::Item;
use dj_core::value::Value;
use dj_schema::{Error, Op, Query, Restriction, Row, Schema, Table, Tier, U, row};
use futures::StreamExt;
use serde::Deserialize;

struct Lab {
    subject: Table,
    session: Table,
    trial: Table,
    rig: Table,
    pairing: Table,
}

async fn lab(schema: &Schema) -> Lab {
    let subject = schema
        .declare(
            "Subject",
            Tier::Manual,
            "subject_id : int32\n---\nspecies : varchar(32)\nsex : enum('F', 'M')\nweight : float64",
        )
        .await
        .unwrap();
    let session = schema
        .declare(
            "Session",
            Tier::Manual,
            "-> Subject\nsession : int16\n---\nduration : float64\nlabel : varchar(32)\ndata = null : <blob>",
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
    // `subject_id` here is a secondary attribute of its own: no lineage.
    let rig = schema
        .declare(
            "Rig",
            Tier::Lookup,
            "rig_id : int16\n---\nsubject_id : int32",
        )
        .await
        .unwrap();
    let pairing = schema
        .declare(
            "Pairing",
            Tier::Manual,
            "-> Subject.proj(subject_a='subject_id')\n-> Subject.proj(subject_b='subject_id')\n---\nnote = null : varchar(16)",
        )
        .await
        .unwrap();
    let species = ["mouse", "mouse", "rat", "rat", "mouse"];
    let subjects: Vec<Row> = (1..=5)
        .map(|i| {
            row! {
                "subject_id" => i,
                "species" => species[(i - 1) as usize],
                "sex" => if i % 2 == 1 { "F" } else { "M" },
                "weight" => 20.0 + f64::from(i),
            }
        })
        .collect();
    subject.insert(&subjects).await.unwrap();
    let sessions = [
        (1, 1, 10.0),
        (1, 2, 20.0),
        (1, 3, 30.0),
        (2, 1, 15.0),
        (3, 1, 5.0),
        (3, 2, 50.0),
    ];
    let rows: Vec<Row> = sessions
        .iter()
        .map(|&(s, n, d)| {
            let mut r = row! {
                "subject_id" => s,
                "session" => n,
                "duration" => d,
                "label" => format!("s{s}-{n}"),
            };
            if (s, n) == (1, 1) {
                r.insert(
                    "data".into(),
                    Value::domain(Item::from(vec![1.0f64, 2.0, 3.0])),
                );
            }
            r
        })
        .collect();
    session.insert(&rows).await.unwrap();
    trial
        .insert(&[
            row! {"subject_id" => 1, "session" => 1, "trial" => 1, "outcome" => "hit"},
            row! {"subject_id" => 1, "session" => 1, "trial" => 2, "outcome" => "miss"},
            row! {"subject_id" => 3, "session" => 2, "trial" => 1, "outcome" => "hit"},
        ])
        .await
        .unwrap();
    rig.insert(&[
        row! {"rig_id" => 1, "subject_id" => 1},
        row! {"rig_id" => 2, "subject_id" => 3},
    ])
    .await
    .unwrap();
    pairing
        .insert(&[
            row! {"subject_a" => 1, "subject_b" => 2},
            row! {"subject_a" => 3, "subject_b" => 1},
        ])
        .await
        .unwrap();
    Lab {
        subject,
        session,
        trial,
        rig,
        pairing,
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::UInt(u) => *u as i64,
        Value::Decimal(s) | Value::String(s) => s.parse().unwrap_or_else(|_| panic!("{v:?}")),
        Value::Float(f) => *f as i64,
        other => panic!("not an integer: {other:?}"),
    }
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::UInt(u) => *u as f64,
        Value::Float(f) => *f,
        Value::Decimal(s) => s.parse().unwrap(),
        other => panic!("not a number: {other:?}"),
    }
}

/// One integer attribute of every row, sorted.
async fn ints(q: &Query, attr: &str) -> Vec<i64> {
    let mut v: Vec<i64> = q
        .fetch_rows()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", q.sql().unwrap_or_default()))
        .iter()
        .map(|r| int(&r[attr]))
        .collect();
    v.sort_unstable();
    v
}

fn names(q: &Query) -> Vec<String> {
    q.heading()
        .unwrap()
        .names()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn key(q: &Query) -> Vec<String> {
    q.primary_key().unwrap()
}

/// `len()` and the fetched rows agree, and return the count.
async fn count(q: &Query) -> u64 {
    let n = q
        .len()
        .await
        .unwrap_or_else(|e| panic!("{e}; SQL: {}", q.sql().unwrap_or_default()));
    let rows = q.fetch_rows().await.unwrap();
    assert_eq!(rows.len() as u64, n, "{}", q.sql().unwrap());
    n
}

#[tokio::test]
async fn restrictions() {
    each_backend("q_restrict", |label, schema| async move {
        let Lab {
            subject, session, ..
        } = lab(&schema).await;
        // A row: only attributes of the heading count.
        assert_eq!(
            count(&(&subject & row! {"sex" => "F", "nope" => 1})).await,
            3,
            "{label}"
        );
        assert_eq!(count(&(&subject & row! {"nope" => 1})).await, 5, "{label}");
        // A SQL condition string.
        let q = &session & "duration > 12 AND label <> 'x'";
        assert_eq!(ints(&q, "session").await.len(), 4, "{label}");
        assert_eq!(
            count(&(&subject & "sex = 'F' AND weight < 25")).await,
            2,
            "{label}"
        );
        // OR list, AND list, Not.
        let or = vec![row! {"subject_id" => 1}, row! {"subject_id" => 3}];
        assert_eq!(
            ints(&(&subject & or), "subject_id").await,
            [1, 3],
            "{label}"
        );
        let and = Restriction::and([
            Restriction::cond("species", Op::Eq, "mouse"),
            Restriction::from("weight > 21"),
        ]);
        assert_eq!(
            ints(&(&subject & and), "subject_id").await,
            [2, 5],
            "{label}"
        );
        let not = Restriction::not(Restriction::cond("species", Op::Eq, "mouse"));
        assert_eq!(
            ints(&(&subject & not), "subject_id").await,
            [3, 4],
            "{label}"
        );
        // Semijoin and antijoin by another query.
        assert_eq!(
            ints(&(&subject & &session), "subject_id").await,
            [1, 2, 3],
            "{label}"
        );
        assert_eq!(
            ints(&(&subject - &session), "subject_id").await,
            [4, 5],
            "{label}"
        );
        let long = &session & "duration >= 30";
        assert_eq!(
            ints(&(&subject & &long), "subject_id").await,
            [1, 3],
            "{label}"
        );
        assert_eq!(
            ints(&(&subject - long.clone()), "subject_id").await,
            [2, 4, 5],
            "{label}"
        );
        // Successive restrictions are AND-ed; an empty OR list matches nothing.
        let q = subject
            .query()
            .restrict(row! {"species" => "mouse"})
            .exclude("sex = 'M'");
        assert_eq!(ints(&q, "subject_id").await, [1, 5], "{label}");
        assert_eq!(count(&(&subject & Vec::<Row>::new())).await, 0, "{label}");
        assert_eq!(count(&(&subject - Vec::<Row>::new())).await, 5, "{label}");
        // contains, exists, is_empty
        assert!(
            subject
                .query()
                .contains(row! {"subject_id" => 2})
                .await
                .unwrap()
        );
        assert!(
            !subject
                .query()
                .contains(row! {"subject_id" => 9})
                .await
                .unwrap()
        );
        assert!((&subject - &session).exists().await.unwrap());
        assert!((&subject & "weight > 100").is_empty().await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn joins_and_lineage() {
    each_backend("q_join", |label, schema| async move {
        let Lab {
            subject,
            session,
            trial,
            rig,
            pairing,
        } = lab(&schema).await;
        // Session determines Subject: Session's key, its attributes first.
        let j = &session * &subject;
        assert_eq!(key(&j), ["subject_id", "session"], "{label}");
        assert_eq!(
            names(&j),
            [
                "subject_id",
                "session",
                "duration",
                "label",
                "data",
                "species",
                "sex",
                "weight"
            ],
            "{label}"
        );
        assert_eq!(count(&j).await, 6, "{label}");
        // Subject * Session gives the same key (B determines A).
        assert_eq!(
            key(&(&subject * &session)),
            ["subject_id", "session"],
            "{label}"
        );
        // Three tables, a restriction and a renaming projection.
        let q = ((&trial * &session * &subject) & "sex = 'F'").proj(["dur <- duration", "outcome"]);
        // DataJoint's order: attributes in the order of the input heading.
        assert_eq!(
            names(&q),
            ["subject_id", "session", "trial", "outcome", "dur"],
            "{label}"
        );
        let mut rows: Vec<(i64, i64, i64, f64)> = q
            .fetch_rows()
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    int(&r["subject_id"]),
                    int(&r["session"]),
                    int(&r["trial"]),
                    num(&r["dur"]),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(
            rows,
            [(1, 1, 1, 10.0), (1, 1, 2, 10.0), (3, 2, 1, 50.0)],
            "{label}"
        );
        // Neither determines the other: the union of the keys.
        let q = subject.query().proj(Vec::<&str>::new()) * rig.query().proj(Vec::<&str>::new());
        assert_eq!(key(&q), ["subject_id", "rig_id"], "{label}");
        assert_eq!(count(&q).await, 10, "{label}");
        // Namesakes of different lineage: an error naming them; unchecked forms work.
        let bad = &subject * &rig;
        match bad.heading() {
            Err(Error::LineageConflict { attributes, .. }) => {
                assert!(
                    attributes[0].starts_with("subject_id"),
                    "{label}: {attributes:?}"
                )
            }
            other => panic!("{label}: {other:?}"),
        }
        assert!(bad.fetch_rows().await.is_err());
        assert!(matches!(
            (&subject & &rig).len().await,
            Err(Error::LineageConflict { .. })
        ));
        assert_eq!(
            count(&subject.query().join_unchecked(&rig)).await,
            2,
            "{label}"
        );
        assert_eq!(
            ints(&(&subject ^ &rig), "subject_id").await,
            [1, 3],
            "{label}"
        );
        // A renamed foreign key keeps its lineage: renamed back, it joins with Subject.
        let partners = pairing.query().proj(["subject_id <- subject_b"]);
        assert_eq!(
            partners
                .heading()
                .unwrap()
                .attribute("subject_id")
                .unwrap()
                .lineage
                .as_deref(),
            subject.lineage("subject_id"),
            "{label}"
        );
        let q = (&partners * &subject).proj(["species"]);
        assert_eq!(ints(&q, "subject_id").await, [1, 2], "{label}");
        // extend: a left join keeping every session; the other direction is refused.
        let ext = session
            .query()
            .extend(&trial.query().proj(["outcome"]) & "outcome = 'hit'");
        assert!(
            matches!(ext.heading(), Err(Error::InvalidQuery { .. })),
            "{label}"
        );
        let tagged = subject.query().proj(["tag <- species"]);
        let ext = session.query().extend(&tagged);
        assert_eq!(key(&ext), ["subject_id", "session"], "{label}");
        assert_eq!(count(&ext).await, 6, "{label}");
        let per = trial
            .query()
            .proj(Vec::<&str>::new())
            .extend(&(&session & "duration > 20"));
        let rows = per.fetch_rows().await.unwrap();
        assert_eq!(rows.len(), 3, "{label}");
        let nulls = rows.iter().filter(|r| r["duration"].is_null()).count();
        assert_eq!(nulls, 2, "{label}: the sessions of 10 s are not matched");
    })
    .await;
}

#[tokio::test]
async fn projections() {
    each_backend("q_proj", |label, schema| async move {
        let Lab {
            subject, session, ..
        } = lab(&schema).await;
        assert_eq!(
            names(&subject.query().proj(Vec::<&str>::new())),
            ["subject_id"],
            "{label}"
        );
        assert_eq!(
            names(&subject.query().proj(["sex"])),
            ["subject_id", "sex"],
            "{label}"
        );
        assert_eq!(
            names(&subject.query().proj(["...", "-weight"])),
            ["subject_id", "species", "sex"],
            "{label}"
        );
        // Renaming the primary key.
        let q = subject.query().proj(["animal <- subject_id", "species"]);
        assert_eq!(key(&q), ["animal"], "{label}");
        assert_eq!(
            ints(&(&q & row! {"animal" => 2}), "animal").await,
            [2],
            "{label}"
        );
        // Computed attributes, restricted after the projection (a subquery).
        let q = session
            .query()
            .proj(["duration * 1000 -> ms", "(label) -> copy"]);
        // Renamed and duplicated attributes in place, computed ones last (DataJoint's order).
        assert_eq!(
            names(&q),
            ["subject_id", "session", "copy", "ms"],
            "{label}"
        );
        assert!(q.heading().unwrap().attribute("ms").unwrap().is_computed());
        let rows = (&q & "ms > 25000").fetch_rows().await.unwrap();
        let mut ms: Vec<f64> = rows.iter().map(|r| num(&r["ms"])).collect();
        ms.sort_by(f64::total_cmp);
        assert_eq!(ms, [30000.0, 50000.0], "{label}");
        assert!(
            rows.iter()
                .all(|r| matches!(&r["copy"], Value::String(s) if s.starts_with('s')))
        );
        // Rename then compute from the renamed attribute.
        let q = session
            .query()
            .proj(["d <- duration"])
            .proj(["d * 2 -> d2"]);
        let mut d2: Vec<f64> = q
            .fetch_rows()
            .await
            .unwrap()
            .iter()
            .map(|r| num(&r["d2"]))
            .collect();
        d2.sort_by(f64::total_cmp);
        assert_eq!(d2, [10.0, 20.0, 30.0, 40.0, 60.0, 100.0], "{label}");
        // Errors: unknown attributes (listing the heading), excluding the key, duplicates.
        match subject.query().proj(["nope"]).heading() {
            Err(Error::UnknownAttribute {
                attribute, heading, ..
            }) => {
                assert_eq!(attribute, "nope");
                assert_eq!(
                    heading,
                    ["subject_id", "species", "sex", "weight"],
                    "{label}"
                );
            }
            other => panic!("{label}: {other:?}"),
        }
        let e = subject.query().proj(["nope + 1 -> x"]).check().unwrap_err();
        assert!(
            e.to_string().contains("nope") && e.to_string().contains("species"),
            "{e}"
        );
        assert!(subject.query().proj(["-subject_id"]).check().is_err());
        assert!(
            subject
                .query()
                .proj(["sex <- species", "sex"])
                .check()
                .is_err()
        );
        let e = (&subject & "nope = 1").len().await.unwrap_err();
        assert!(matches!(e, Error::UnknownAttribute { .. }), "{label}: {e}");
        assert!((&subject & "weight = ?").check().is_err());
    })
    .await;
}

#[tokio::test]
async fn aggregations_and_universal_sets() {
    each_backend("q_aggr", |label, schema| async move {
        let Lab {
            subject, session, ..
        } = lab(&schema).await;
        let q = subject.query().aggr(
            &session,
            ["species", "count(session) -> n", "max(duration) -> longest"],
        );
        assert_eq!(key(&q), ["subject_id"], "{label}");
        assert_eq!(
            names(&q),
            ["subject_id", "species", "n", "longest"],
            "{label}"
        );
        let mut rows: Vec<(i64, i64)> = q
            .fetch_rows()
            .await
            .unwrap()
            .iter()
            .map(|r| (int(&r["subject_id"]), int(&r["n"])))
            .collect();
        rows.sort_unstable();
        assert_eq!(rows, [(1, 3), (2, 1), (3, 2), (4, 0), (5, 0)], "{label}");
        // Restricting an aggregate by its computed attribute.
        assert_eq!(
            ints(&(&q & "n >= 2"), "subject_id").await,
            [1, 3],
            "{label}"
        );
        let only = subject
            .query()
            .aggr_exclude_nonmatching(&session, ["avg(duration) -> mean"]);
        assert_eq!(count(&only).await, 3, "{label}");
        let one = (&only & row! {"subject_id" => 3})
            .fetch1::<Row>()
            .await
            .unwrap();
        assert!((num(&one["mean"]) - 27.5).abs() < 1e-9, "{label}: {one:?}");
        // The group must contain the grouping key.
        assert!(
            session
                .query()
                .aggr(&subject, ["count(*) -> n"])
                .check()
                .is_err()
        );
        // An aggregate the database rejects: its error with the SQL.
        let bad = subject
            .query()
            .aggr(&session, ["no_such_fn(duration) -> x"]);
        match bad.fetch_rows().await {
            Err(Error::BadExpression { sql, .. }) => assert!(sql.contains("no_such_fn"), "{label}"),
            other => panic!("{label}: {other:?}"),
        }
        // dj.U: distinct values, grouped aggregates, totals.
        let species = &U::new(["species"]) & &subject;
        assert_eq!(key(&species), ["species"], "{label}");
        assert_eq!(count(&species).await, 2, "{label}");
        let per = U::new(["species"]).aggr(&subject, ["count(*) -> n", "avg(weight) -> w"]);
        let mut rows: Vec<(String, i64)> = per
            .fetch_rows()
            .await
            .unwrap()
            .iter()
            .map(|r| (r["species"].as_str().unwrap().to_string(), int(&r["n"])))
            .collect();
        rows.sort();
        assert_eq!(
            rows,
            [("mouse".to_string(), 3), ("rat".to_string(), 2)],
            "{label}"
        );
        let total = U::empty().aggr(&session, ["count(*) -> n", "sum(duration) -> s"]);
        assert_eq!(key(&total), Vec::<String>::new(), "{label}");
        let t = total.fetch1::<Row>().await.unwrap();
        assert_eq!(int(&t["n"]), 6, "{label}");
        assert!((num(&t["s"]) - 130.0).abs() < 1e-9, "{label}");
        // A universal set restricted and joined further.
        let f_species = &U::new(["species", "sex"]) & (&subject & "sex = 'F'");
        assert_eq!(count(&f_species).await, 2, "{label}");
        assert!((&U::new(["nope"]) & &subject).check().is_err());
    })
    .await;
}

#[tokio::test]
async fn unions_and_top() {
    each_backend("q_union", |label, schema| async move {
        let Lab {
            subject, session, ..
        } = lab(&schema).await;
        let females = (&subject & "sex = 'F'").proj(Vec::<&str>::new());
        let rats = (&subject & row! {"species" => "rat"}).proj(Vec::<&str>::new());
        let u = &females + &rats;
        assert_eq!(ints(&u, "subject_id").await, [1, 3, 4, 5], "{label}");
        // With secondary attributes: each side's attributes, null where a side lacks the key.
        let a = (&subject & "subject_id <= 2").proj(["species"]);
        let b = (&subject & "subject_id >= 2 AND subject_id <= 3").proj(["sex"]);
        let u = &a + &b;
        assert_eq!(names(&u), ["subject_id", "species", "sex"], "{label}");
        let mut rows: Vec<(i64, Option<String>, Option<String>)> = u
            .fetch_rows()
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    int(&r["subject_id"]),
                    r["species"].as_str().map(str::to_string),
                    r["sex"].as_str().map(str::to_string),
                )
            })
            .collect();
        rows.sort();
        assert_eq!(
            rows,
            [
                (1, Some("mouse".into()), None),
                (2, Some("mouse".into()), Some("M".into())),
                (3, None, Some("F".into())),
            ],
            "{label}"
        );
        assert_eq!(count(&(&u & "subject_id > 1")).await, 2, "{label}");
        // Incompatible unions.
        assert!(matches!(
            (&subject + &session).heading(),
            Err(Error::IncompatibleUnion { .. })
        ));
        assert!(matches!(
            (&a + &subject.query().proj(["species"])).heading(),
            Err(Error::IncompatibleUnion { .. })
        ));
        // top: order, limit, offset; it keeps its meaning inside other operators.
        let longest = session.query().top(Some(2), ["duration DESC"], 0);
        let d: Vec<f64> = longest
            .fetch_rows()
            .await
            .unwrap()
            .iter()
            .map(|r| num(&r["duration"]))
            .collect();
        assert_eq!(d, [50.0, 30.0], "{label}");
        let d: Vec<f64> = session
            .query()
            .top(Some(2), ["duration DESC"], 1)
            .fetch_rows()
            .await
            .unwrap()
            .iter()
            .map(|r| num(&r["duration"]))
            .collect();
        assert_eq!(d, [30.0, 20.0], "{label}");
        let top1 = session.query().top(Some(1), ["duration DESC"], 0);
        assert_eq!(
            ints(&(&subject & &top1), "subject_id").await,
            [3],
            "{label}"
        );
        assert_eq!(
            ints(&(&subject * &top1), "subject_id").await,
            [3],
            "{label}"
        );
        let shortest3 = session.query().top(Some(3), ["duration"], 0);
        assert_eq!(count(&(&shortest3 & "duration > 10")).await, 1, "{label}");
        // limit without an order takes the primary key.
        let first = session.query().limit(2).fetch_rows().await.unwrap();
        assert_eq!(
            (int(&first[1]["subject_id"]), int(&first[1]["session"])),
            (1, 2)
        );
        let tail = session.query().tail(2).await.unwrap();
        assert_eq!(int(&tail[1]["subject_id"]), 3, "{label}");
        let head = subject.query().head(2).await.unwrap();
        assert_eq!(int(&head[0]["subject_id"]), 1, "{label}");
        assert!(session.query().top(Some(1), ["nope"], 0).check().is_err());
    })
    .await;
}

#[derive(Deserialize, Debug, PartialEq)]
struct SessionInfo {
    subject_id: i32,
    session: i16,
    species: String,
    duration: f64,
}

#[tokio::test]
async fn fetching_and_preview() {
    each_backend("q_fetch", |label, schema| async move {
        let Lab {
            subject, session, ..
        } = lab(&schema).await;
        let j = (&session * &subject).order_by(["KEY"]);
        let plain = (session.query().proj(["duration"]) * &subject).order_by(["KEY"]);
        let all: Vec<SessionInfo> = plain.fetch().await.unwrap();
        assert_eq!(all.len(), 6, "{label}");
        assert_eq!(
            all[0],
            SessionInfo {
                subject_id: 1,
                session: 1,
                species: "mouse".into(),
                duration: 10.0
            },
            "{label}"
        );
        // The codec column decodes through the join (its source is Session).
        let one = (&j & row! {"subject_id" => 1, "session" => 1})
            .fetch1::<Row>()
            .await
            .unwrap();
        assert_eq!(
            one["data"].as_domain::<Item>(),
            Some(&Item::from(vec![1.0f64, 2.0, 3.0])),
            "{label}"
        );
        let keys = (&session & "duration > 25").keys().await.unwrap();
        assert_eq!(keys.len(), 2, "{label}");
        assert_eq!(keys[0].len(), 2, "{label}");
        // Streaming in query order.
        let mut stream = plain.stream::<SessionInfo>();
        let mut seen = Vec::new();
        while let Some(r) = stream.next().await {
            seen.push(r.unwrap());
        }
        assert_eq!(seen, all, "{label}");
        let mut bad = subject.query().proj(["nope"]).stream::<Row>();
        assert!(bad.next().await.unwrap().is_err());
        // Heading and preview.
        let h = j.heading().unwrap();
        assert_eq!(h.primary_key(), ["subject_id", "session"]);
        let shown = j.to_string();
        assert!(
            shown.contains("*subject_id") && shown.contains("species"),
            "{shown}"
        );
        let p = j.preview().await.unwrap();
        assert_eq!(p.total, 6);
        let text = p.to_string();
        assert!(text.starts_with("*subject_id"), "{text}");
        assert!(
            text.contains("=BLOB=") && text.ends_with("(Total: 6)"),
            "{text}"
        );
        assert!(j.sql().unwrap().contains("JOIN"), "{label}");
    })
    .await;
}

#[tokio::test]
async fn deleting_through_queries() {
    each_backend("q_delete", |label, schema| async move {
        let Lab {
            subject,
            session,
            trial,
            ..
        } = lab(&schema).await;
        let q = &subject & row! {"subject_id" => 3};
        let preview = q.delete_preview().await.unwrap();
        assert_eq!(preview[&subject.full_name()], 1, "{label}");
        assert_eq!(preview[&session.full_name()], 2, "{label}");
        assert_eq!(preview[&trial.full_name()], 1, "{label}");
        // Nothing was removed by the preview.
        assert_eq!(session.len().await.unwrap(), 6, "{label}");
        // Only a restricted table can be deleted from.
        let e = (&subject * &session).delete().await.unwrap_err();
        assert!(matches!(e, Error::InvalidQuery { .. }), "{label}: {e}");
        assert!(subject.query().proj(["sex"]).delete().await.is_err());
        // A restriction by another query, then the cascade.
        let short = &session & "duration < 12";
        let q = (&subject & &short) - row! {"subject_id" => 1};
        assert_eq!(q.delete().await.unwrap(), 1, "{label}");
        assert_eq!(session.len().await.unwrap(), 4, "{label}");
        assert_eq!(trial.len().await.unwrap(), 2, "{label}");
        assert_eq!(
            ints(&subject.query(), "subject_id").await,
            [1, 2, 4, 5],
            "{label}"
        );
    })
    .await;
}

#[tokio::test]
async fn streaming_many_rows() {
    each_backend("q_stream", |label, schema| async move {
        let t = schema
            .declare(
                "Sample",
                Tier::Manual,
                "sample_id : int32\n---\nvalue : float64",
            )
            .await
            .unwrap();
        let rows: Vec<Row> = (0..5000)
            .map(|i| row! {"sample_id" => i, "value" => f64::from(i) / 2.0})
            .collect();
        t.insert(&rows).await.unwrap();
        #[derive(Deserialize)]
        struct Sample {
            sample_id: i32,
            value: f64,
        }
        let q = (&t & "value >= 100").order_by(["KEY"]);
        let mut stream = q.stream::<Sample>();
        let mut n = 0i32;
        let mut sum = 0.0;
        while let Some(s) = stream.next().await {
            let s = s.unwrap();
            assert_eq!(s.sample_id, 200 + n, "{label}: order");
            sum += s.value;
            n += 1;
        }
        assert_eq!(u64::try_from(n).unwrap(), q.len().await.unwrap(), "{label}");
        assert!((sum - (200..5000).map(|i| f64::from(i) / 2.0).sum::<f64>()).abs() < 1e-6);
        // Dropping a stream early stops its reader and gives its connection back: more streams
        // than the pool has connections still run.
        for _ in 0..8 {
            let mut s = t.query().stream::<Row>();
            assert!(s.next().await.unwrap().is_ok(), "{label}");
        }
        assert_eq!(t.len().await.unwrap(), 5000, "{label}");
    })
    .await;
}
