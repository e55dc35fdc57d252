//! Integration tests of the Table API, each run on SQLite, PostgreSQL and MariaDB.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use chrono::{NaiveDate, NaiveDateTime};
use common::each_backend;
use dj_core::value::Value;
use dj_schema::{InsertOptions, Op, Restriction, Row, Tier, row};
use serde::{Deserialize, Serialize};

const SUBJECT: &str = "# experimental subjects
subject_id : int32   # subject id
---
name : varchar(64)   # full name
sex : enum('F', 'M', 'U')
weight = null : float64
alive = 1 : bool
score : decimal(6,2)
dob : date
seen : datetime(3)
uid : uuid
meta = null : json
raw = null : bytes
";

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

fn subject_row(id: i32, name: &str) -> Row {
    row! {
        "subject_id" => id,
        "name" => name,
        "sex" => if id % 2 == 0 { "F" } else { "M" },
        "weight" => Value::Float(20.5 + f64::from(id)),
        "alive" => true,
        "score" => Value::Decimal("12.5".into()),
        "dob" => NaiveDate::from_ymd_opt(2020, 1, id as u32 % 28 + 1).unwrap(),
        "seen" => dt("2024-05-06 07:08:09.123"),
        "uid" => uuid::Uuid::from_u128(id as u128 + 0xabc),
        "meta" => serde_json::json!({"k": [1, 2, {"x": "y"}], "id": id}),
        "raw" => vec![0u8, 1, 2, 255],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_types_round_trip() {
    each_backend("types", |label, s| async move {
        let t = s.declare("Subject", Tier::Manual, SUBJECT).await.unwrap();
        assert_eq!(t.name(), "subject");
        t.insert(&[
            subject_row(1, "Ann"),
            subject_row(2, "O'Brien \"quoted\" \\ %"),
        ])
        .await
        .unwrap();
        // Defaults and nulls: weight, meta, raw omitted; alive defaults to 1.
        let mut r = subject_row(3, "Cy");
        r.swap_remove("weight");
        r.swap_remove("meta");
        r.swap_remove("alive");
        r.insert("raw".into(), Value::Null);
        t.insert1(&r).await.unwrap();
        assert_eq!(t.len().await.unwrap(), 3, "{label}");
        let rows: Vec<Row> = t.query().order_by(["subject_id"]).fetch().await.unwrap();
        assert_eq!(rows.len(), 3);
        let want = subject_row(1, "Ann");
        for (k, v) in &want {
            let got = &rows[0][k];
            match k.as_str() {
                "score" => assert_eq!(got, &Value::Decimal("12.50".into()), "{label} {k}"),
                _ => assert_eq!(got, v, "{label} {k}"),
            }
        }
        assert_eq!(rows[1]["name"], Value::from("O'Brien \"quoted\" \\ %"));
        assert_eq!(rows[2]["weight"], Value::Null, "{label}");
        assert_eq!(rows[2]["meta"], Value::Null, "{label}");
        assert_eq!(rows[2]["alive"], Value::Bool(true), "{label}");
        // Attribute order follows the heading.
        let names: Vec<&String> = rows[0].keys().collect();
        assert_eq!(names[0], "subject_id");
        assert_eq!(names[1], "name");

        // One insert whose rows write different columns (one statement per column set).
        let mut short = subject_row(5, "Ed");
        short.swap_remove("alive");
        short.swap_remove("weight");
        t.insert(&[subject_row(4, "Di"), short, subject_row(6, "Fa")])
            .await
            .unwrap();
        let rows: Vec<Row> = t.query().order_by(["subject_id"]).fetch().await.unwrap();
        assert_eq!(rows.len(), 6, "{label}");
        assert_eq!(rows[3]["name"], Value::from("Di"), "{label}");
        assert_eq!(rows[3]["weight"], Value::Float(24.5), "{label}");
        assert_eq!(rows[4]["name"], Value::from("Ed"), "{label}");
        assert_eq!(rows[4]["weight"], Value::Null, "{label}");
        assert_eq!(rows[4]["alive"], Value::Bool(true), "{label}");
        assert_eq!(rows[5]["weight"], Value::Float(26.5), "{label}");
    })
    .await;
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Session {
    subject_id: i32,
    session_idx: i16,
    rig: Option<String>,
    note: String,
    started: NaiveDateTime,
    tags: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serde_structs_and_foreign_keys() {
    each_backend("serde", |label, s| async move {
        let subject = s.declare("Subject", Tier::Manual, SUBJECT).await.unwrap();
        let rig = s
            .declare_lookup("Rig", "rig : varchar(16)\n---\nroom : varchar(8)", &[row! {"rig" => "r1", "room" => "A"}, row! {"rig" => "r2", "room" => "B"}])
            .await
            .unwrap();
        assert_eq!(rig.name(), "#rig");
        assert_eq!(rig.len().await.unwrap(), 2);
        let session = s
            .declare(
                "Session",
                Tier::Manual,
                "-> Subject\nsession_idx : int16\n---\n-> [nullable] Rig\nnote = \"\" : varchar(255)\nstarted : datetime\ntags : json\nindex(note)",
            )
            .await
            .unwrap();
        subject.insert(&[subject_row(1, "Ann"), subject_row(2, "Bob")]).await.unwrap();
        let a = Session {
            subject_id: 1,
            session_idx: 1,
            rig: Some("r1".into()),
            note: "first".into(),
            started: dt("2024-01-02 03:04:05"),
            tags: vec!["a".into(), "b".into()],
        };
        let b = Session { session_idx: 2, rig: None, ..a.clone() };
        session.insert1(&a).await.unwrap();
        session.insert(std::slice::from_ref(&b)).await.unwrap();
        let got: Session = session
            .restrict(row! {"subject_id" => 1, "session_idx" => 2})
            .fetch1()
            .await
            .unwrap();
        assert_eq!(got, b, "{label}");
        let all: Vec<Session> = session.query().order_by(["KEY"]).fetch().await.unwrap();
        assert_eq!(all, vec![a.clone(), b.clone()], "{label}");
        // The FK column is inherited with the parent's type; a missing parent is refused.
        let h = session.heading();
        assert_eq!(h.primary_key(), vec!["subject_id", "session_idx"]);
        assert_eq!(h.attribute("subject_id").unwrap().spec.to_string(), "int32");
        assert!(h.attribute("rig").unwrap().nullable);
        let err = session
            .insert1(&Session { subject_id: 99, ..a.clone() })
            .await
            .unwrap_err();
        assert!(err.is_foreign_key(), "{label}: {err}");
        assert!(err.to_string().contains("session"), "{err}");
        let err = session.insert1(&Session { rig: Some("nope".into()), session_idx: 5, ..a.clone() }).await.unwrap_err();
        assert!(err.is_foreign_key(), "{label}: {err}");
        assert_eq!(session.len().await.unwrap(), 2);
        // Open from the catalog by name, in a fresh connection, and compare headings.
        let conn2 = dj_schema::Connection::open(s.connection().config()).await.unwrap();
        let s2 = conn2.existing_schema(s.name()).await.unwrap();
        let reopened = s2.table("session").await.unwrap();
        let h2 = reopened.heading();
        assert_eq!(h2.primary_key(), h.primary_key(), "{label}");
        for a in &h.attributes {
            let b = h2.attribute(&a.name).unwrap_or_else(|| panic!("{label}: {} missing", a.name));
            assert_eq!(b.spec, a.spec, "{label}: {}", a.name);
            assert_eq!(b.nullable, a.nullable, "{label}: {}", a.name);
            assert_eq!(b.in_key, a.in_key, "{label}: {}", a.name);
        }
        assert_eq!(h2.foreign_keys.len(), 2, "{label}");
        let d = reopened.describe();
        assert!(d.contains("-> Subject\n"), "{label}: {d}");
        assert!(d.contains("-> [nullable] Rig\n"), "{label}: {d}");
        assert!(d.contains("tags : json"), "{label}: {d}");
        assert!(d.contains("index(note)"), "{label}: {d}");
        let again: Vec<Session> = reopened.query().order_by(["KEY"]).fetch().await.unwrap();
        assert_eq!(again, vec![a, b]);
        let subj2 = s2.table_by_class("Subject").await.unwrap();
        assert_eq!(subj2.heading().attribute("sex").unwrap().spec.to_string(), "enum('F', 'M', 'U')");
        assert_eq!(subj2.heading().comment, "experimental subjects");
        assert_eq!(subj2.heading().attribute("subject_id").unwrap().comment, "subject id");
        conn2.close().await;
    })
    .await;
}

async fn pipeline(
    s: &dj_schema::Schema,
) -> (
    dj_schema::Table,
    dj_schema::Table,
    dj_schema::Table,
    dj_schema::Table,
) {
    let subject = s
        .declare(
            "Subject",
            Tier::Manual,
            "subject_id : int32\n---\nname : varchar(32)",
        )
        .await
        .unwrap();
    let session = s
        .declare(
            "Session",
            Tier::Manual,
            "-> Subject\nsession_idx : int16\n---\nduration : float64",
        )
        .await
        .unwrap();
    let trial = s
        .declare_part(
            &session,
            "Trial",
            "-> master\ntrial_idx : int32\n---\nok : bool",
        )
        .await
        .unwrap();
    let pair = s
        .declare(
            "Pair",
            Tier::Manual,
            "-> Subject.proj(subject_a='subject_id')\n-> Subject.proj(subject_b='subject_id')\n---\nnote = null : varchar(16)",
        )
        .await
        .unwrap();
    for i in 1..=3 {
        subject
            .insert1(&row! {"subject_id" => i, "name" => format!("s{i}")})
            .await
            .unwrap();
        for j in 1..=2 {
            session.insert1(&row! {"subject_id" => i, "session_idx" => j, "duration" => f64::from(i * 10 + j)}).await.unwrap();
            for k in 1..=2 {
                trial.insert1(&row! {"subject_id" => i, "session_idx" => j, "trial_idx" => k, "ok" => k == 1}).await.unwrap();
            }
        }
    }
    pair.insert(&[
        row! {"subject_a" => 1, "subject_b" => 2},
        row! {"subject_a" => 3, "subject_b" => 1},
        row! {"subject_a" => 2, "subject_b" => 3},
    ])
    .await
    .unwrap();
    (subject, session, trial, pair)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_delete_and_parts() {
    each_backend("cascade", |label, s| async move {
        let (subject, session, trial, pair) = pipeline(&s).await;
        assert_eq!(trial.name(), "session__trial");
        assert_eq!(pair.heading().primary_key(), vec!["subject_a", "subject_b"]);
        // A plain parent row with children cannot go without the cascade: the part refuses too.
        let err = trial
            .restrict(row! {"subject_id" => 1})
            .delete()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("master"), "{label}: {err}");
        let n = subject
            .restrict(row! {"subject_id" => 1})
            .delete()
            .await
            .unwrap();
        assert_eq!(n, 1, "{label}");
        assert_eq!(subject.len().await.unwrap(), 2);
        assert_eq!(session.len().await.unwrap(), 4, "{label}");
        assert_eq!(trial.len().await.unwrap(), 8, "{label}");
        assert_eq!(
            pair.len().await.unwrap(),
            1,
            "{label}: pairs through renamed FKs go too"
        );
        // Deleting a session deletes its trials.
        let n = session
            .restrict(Restriction::cond("duration", Op::Gt, 30.0))
            .delete()
            .await
            .unwrap();
        assert_eq!(n, 2, "{label}");
        assert_eq!(trial.len().await.unwrap(), 4, "{label}");
        // Nothing matched: nothing deleted.
        assert_eq!(
            subject
                .restrict(row! {"subject_id" => 42})
                .delete()
                .await
                .unwrap(),
            0
        );
        // Lineage rows as DataJoint writes them.
        let l = s.lineage("pair").await.unwrap();
        let sn = s.name();
        assert_eq!(
            l,
            vec![
                ("subject_a".to_string(), format!("{sn}.subject.subject_id")),
                ("subject_b".to_string(), format!("{sn}.subject.subject_id")),
            ],
            "{label}"
        );
        let l = s.lineage("session__trial").await.unwrap();
        assert_eq!(
            l,
            vec![
                (
                    "session_idx".to_string(),
                    format!("{sn}.session.session_idx")
                ),
                ("subject_id".to_string(), format!("{sn}.subject.subject_id")),
                (
                    "trial_idx".to_string(),
                    format!("{sn}.session__trial.trial_idx")
                ),
            ],
            "{label}"
        );
        assert!(
            !s.list_tables()
                .await
                .unwrap()
                .iter()
                .any(|t| t.starts_with('~'))
        );
        // update1
        session
            .update1(&row! {"subject_id" => 2, "session_idx" => 1, "duration" => 99.5})
            .await
            .unwrap();
        let d: Row = session
            .restrict(row! {"subject_id" => 2, "session_idx" => 1})
            .attrs(["duration"])
            .fetch1()
            .await
            .unwrap();
        assert_eq!(d["duration"], Value::Float(99.5));
        let err = session
            .update1(&row! {"subject_id" => 9, "session_idx" => 1, "duration" => 1.0})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("exactly one row"), "{err}");
        // drop takes the dependents along.
        session.clone().drop().await.unwrap();
        let left = s.list_tables().await.unwrap();
        assert!(
            !left.contains(&"session".to_string()) && !left.contains(&"session__trial".to_string()),
            "{label}: {left:?}"
        );
        assert!(left.contains(&"subject".to_string()));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restrictions_ordering_and_limits() {
    each_backend("restrict", |label, s| async move {
        let (subject, session, _trial, pair) = pipeline(&s).await;
        let q = session.restrict(Restriction::and([
            Restriction::cond("duration", Op::Ge, 12.0),
            Restriction::not(Restriction::is_in("subject_id", [3])),
        ]));
        assert_eq!(q.len().await.unwrap(), 3, "{label}");
        let q = session.restrict(Restriction::or([
            row! {"subject_id" => 1, "session_idx" => 1}.into(),
            Restriction::cond("duration", Op::Eq, 32.0),
        ]));
        assert_eq!(q.len().await.unwrap(), 2, "{label}");
        assert_eq!(
            session
                .restrict(Restriction::is_in("subject_id", Vec::<i32>::new()))
                .len()
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            session.restrict(Restriction::or([])).len().await.unwrap(),
            0
        );
        assert_eq!(
            session.restrict(Restriction::and([])).len().await.unwrap(),
            6
        );
        // Unknown keys in a key map are ignored, as in DataJoint.
        assert_eq!(session.restrict(row! {"nope" => 1}).len().await.unwrap(), 6);
        // LIKE
        assert_eq!(
            subject
                .restrict(Restriction::cond("name", Op::Like, "s%"))
                .len()
                .await
                .unwrap(),
            3
        );
        // Semijoin: sessions of subjects named s2.
        let s2 = subject.restrict(row! {"name" => "s2"});
        let q = session.restrict(s2.clone());
        assert_eq!(q.len().await.unwrap(), 2, "{label}");
        let q = session.query().exclude(s2);
        assert_eq!(q.len().await.unwrap(), 4, "{label}");
        // Semijoin through another table's keys
        let q = subject.restrict(session.restrict(Restriction::cond("duration", Op::Gt, 20.0)));
        assert_eq!(q.len().await.unwrap(), 2, "{label}");
        // Order, limit, offset, attribute selection.
        let rows: Vec<Row> = session
            .query()
            .attrs(["subject_id", "duration"])
            .order_by(["duration DESC"])
            .limit(2)
            .fetch()
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["duration"], Value::Float(32.0));
        assert_eq!(rows[1]["duration"], Value::Float(31.0));
        assert_eq!(rows[0].len(), 2);
        let rows: Vec<Row> = session.query().limit(2).offset(1).fetch().await.unwrap();
        assert_eq!(rows[0]["subject_id"], Value::Int(1));
        assert_eq!(rows[0]["session_idx"], Value::Int(2));
        let rows: Vec<Row> = session
            .query()
            .order_by(["KEY DESC"])
            .limit(1)
            .fetch()
            .await
            .unwrap();
        assert_eq!(rows[0]["subject_id"], Value::Int(3));
        assert!(
            pair.restrict(row! {"subject_a" => 3})
                .exists()
                .await
                .unwrap()
        );
        assert!(
            !pair
                .restrict(row! {"subject_a" => 4})
                .exists()
                .await
                .unwrap()
        );
        // Null restriction
        assert_eq!(
            pair.restrict(row! {"note" => Value::Null})
                .len()
                .await
                .unwrap(),
            3
        );
        // fetch1 with several rows is an error naming the table.
        let err = session.fetch1::<Row>().await.unwrap_err();
        assert!(
            err.to_string().contains("session") && err.to_string().contains("found 6"),
            "{err}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_table_and_attribute_and_writes_nothing() {
    each_backend("bad", |label, s| async move {
        let t = s.declare("Subject", Tier::Manual, SUBJECT).await.unwrap();
        t.insert1(&subject_row(1, "Ann")).await.unwrap();
        let check = |err: dj_schema::Error, needles: &[&str]| {
            let m = err.to_string();
            for n in needles {
                assert!(m.contains(n), "{label}: `{m}` lacks `{n}`");
            }
        };
        let mut r = subject_row(2, "x");
        r.insert("bogus".into(), Value::Int(1));
        check(t.insert1(&r).await.unwrap_err(), &["subject", "bogus"]);
        // ignore_extra_fields lets it through
        t.insert_with(
            &[r.clone()],
            InsertOptions {
                ignore_extra_fields: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        t.restrict(row! {"subject_id" => 2}).delete().await.unwrap();
        let mut r = subject_row(2, "x");
        r.swap_remove("subject_id");
        check(
            t.insert1(&r).await.unwrap_err(),
            &["subject", "subject_id", "missing"],
        );
        let mut r = subject_row(2, "x");
        r.insert("weight".into(), Value::from("heavy"));
        check(
            t.insert1(&r).await.unwrap_err(),
            &["subject", "weight", "expected a number"],
        );
        let mut r = subject_row(2, "x");
        r.insert("sex".into(), Value::from("X"));
        check(t.insert1(&r).await.unwrap_err(), &["subject", "sex"]);
        let mut r = subject_row(2, "x");
        r.insert("name".into(), Value::from("y".repeat(65)));
        check(
            t.insert1(&r).await.unwrap_err(),
            &["subject", "name", "varchar(64)"],
        );
        // Duplicate key; a batch with one bad row writes nothing.
        let err = t.insert1(&subject_row(1, "again")).await.unwrap_err();
        assert!(err.is_duplicate(), "{label}: {err}");
        check(err, &["subject"]);
        let err = t
            .insert(&[subject_row(5, "ok"), subject_row(1, "dup")])
            .await
            .unwrap_err();
        assert!(err.is_duplicate(), "{label}: {err}");
        assert_eq!(
            t.len().await.unwrap(),
            1,
            "{label}: nothing of the failed batch is written"
        );
        // skip_duplicates
        let n = t
            .insert_with(
                &[subject_row(5, "ok"), subject_row(1, "dup")],
                InsertOptions {
                    skip_duplicates: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(n >= 1, "{label}");
        assert_eq!(t.len().await.unwrap(), 2);
        let name: Row = t
            .restrict(row! {"subject_id" => 1})
            .attrs(["name"])
            .fetch1()
            .await
            .unwrap();
        assert_eq!(name["name"], Value::from("Ann"));
        // Malformed definitions: line and column.
        let err = s
            .declare("Broken", Tier::Manual, "a : int32\n---\nb int32")
            .await
            .unwrap_err();
        check(err, &["broken", "line 3, column 3"]);
        let err = s
            .declare("Broken", Tier::Manual, "a : int32\n---\nb : <nosuchcodec>")
            .await
            .unwrap_err();
        check(err, &["broken", "`b`", "unknown codec"]);
        let err = s
            .declare("Broken", Tier::Manual, "a : int32\n---\nb : <blob@nowhere>")
            .await
            .unwrap_err();
        check(err, &["broken", "`b`", "nowhere"]);
        let err = s
            .declare("Broken", Tier::Manual, "a : int32\n---\n-> Missing")
            .await
            .unwrap_err();
        check(err, &["broken", "line 3", "Missing"]);
        let err = s
            .declare("Comp", Tier::Computed, "a : int32\n---\nb : int32")
            .await
            .unwrap_err();
        check(err, &["__comp", "foreign key"]);
        assert!(
            !s.list_tables()
                .await
                .unwrap()
                .iter()
                .any(|t| t == "broken" || t == "__comp"),
            "{label}"
        );
        // Unknown attributes in conditions, order and selection.
        check(
            t.restrict(Restriction::cond("nope", Op::Eq, 1))
                .len()
                .await
                .unwrap_err(),
            &["subject", "nope"],
        );
        check(
            t.query()
                .order_by(["nope"])
                .fetch::<Row>()
                .await
                .unwrap_err(),
            &["subject", "nope"],
        );
        check(
            t.query().attrs(["nope"]).fetch::<Row>().await.unwrap_err(),
            &["subject", "nope"],
        );
        // Wrong type in a restriction.
        check(
            t.restrict(Restriction::cond("subject_id", Op::Eq, "one"))
                .len()
                .await
                .unwrap_err(),
            &["subject", "subject_id"],
        );
        assert_eq!(t.len().await.unwrap(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_injection_is_inert() {
    each_backend("inject", |label, s| async move {
        let t = s
            .declare("Note", Tier::Manual, "id : int32\n---\ntext : varchar(200)")
            .await
            .unwrap();
        let evil = [
            "'); DROP TABLE note; --",
            "\" OR 1=1 --",
            "` OR 1=1 --",
            "\\'; DELETE FROM note; --",
            "Robert'); DROP TABLE students;--",
            "$1 ? %s",
        ];
        for (i, e) in evil.iter().enumerate() {
            t.insert1(&row! {"id" => i as i32, "text" => *e})
                .await
                .unwrap();
        }
        for (i, e) in evil.iter().enumerate() {
            let got: Row = t
                .restrict(Restriction::cond("text", Op::Eq, *e))
                .fetch1()
                .await
                .unwrap();
            assert_eq!(got["id"], Value::Int(i as i64), "{label}");
            assert_eq!(got["text"], Value::from(*e), "{label}");
        }
        // Attribute names are checked, never spliced.
        let mut r = row! {"id" => 100, "text" => "x"};
        r.insert("text\" = 'x'; DROP TABLE note; --".into(), Value::Int(1));
        assert!(t.insert1(&r).await.is_err());
        assert!(
            t.restrict(Restriction::cond("id) OR (1=1", Op::Eq, 1))
                .len()
                .await
                .is_err()
        );
        assert!(
            t.query()
                .order_by(["id; DROP TABLE note"])
                .fetch::<Row>()
                .await
                .is_err()
        );
        assert!(
            t.query()
                .attrs(["id, (SELECT 1)"])
                .fetch::<Row>()
                .await
                .is_err()
        );
        assert_eq!(
            t.restrict(Restriction::cond("text", Op::Like, "%DROP%"))
                .len()
                .await
                .unwrap(),
            2,
            "{label}"
        );
        assert_eq!(t.len().await.unwrap(), evil.len() as u64, "{label}");
        assert!(
            s.declare(
                "Bad",
                Tier::Manual,
                "id : int32\n---\nx = \"'); DROP TABLE note; --\" : varchar(40)"
            )
            .await
            .is_ok()
        );
        assert!(s.list_tables().await.unwrap().contains(&"note".to_string()));
        assert!(s.connection().schema("x; drop").await.is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_codec_chain() {
    each_backend("blob", |label, s| async move {
        let t = s
            .declare(
                "Rec",
                Tier::Manual,
                "rec_id : int32\n---\ndata : <blob>  # the samples\nextra = null : <blob>",
            )
            .await
            .unwrap();
        let arr = dj_codec_blob::Item::Array(dj_codec_blob::Array::from_f64(
            (0..1000).map(f64::from).collect(),
        ));
        t.insert1(&row! {"rec_id" => 1, "data" => Value::domain(arr.clone())})
            .await
            .unwrap();
        t.insert1(&row! {"rec_id" => 2, "data" => Value::Float(2.5), "extra" => Value::from("hi")})
            .await
            .unwrap();
        let r: Row = t.restrict(row! {"rec_id" => 1}).fetch1().await.unwrap();
        let got = r["data"].as_domain::<dj_codec_blob::Item>().unwrap();
        assert_eq!(got, &arr, "{label}");
        assert_eq!(r["extra"], Value::Null);
        let r: Row = t.restrict(row! {"rec_id" => 2}).fetch1().await.unwrap();
        assert_eq!(
            r["data"].as_domain::<dj_codec_blob::Item>().unwrap(),
            &dj_codec_blob::Item::Float(2.5)
        );
        // The stored view: the blob bytes as the table holds them, nulls as nulls.
        let stored = t.query().order_by(["rec_id"]).fetch_stored().await.unwrap();
        let Value::Bytes(b) = &stored[0]["data"] else {
            panic!("{label}: stored <blob> is {:?}", stored[0]["data"]);
        };
        assert_eq!(dj_codec_blob::decode(b).unwrap(), arr, "{label}");
        assert_eq!(stored[0]["extra"], Value::Null, "{label}");
        // Many rows decode concurrently and keep their order.
        let many: Vec<Row> = (10..60)
            .map(|i| row! {"rec_id" => i, "data" => Value::Float(f64::from(i))})
            .collect();
        t.insert(&many).await.unwrap();
        let rows = t
            .restrict(Restriction::cond("rec_id", Op::Ge, 10))
            .order_by(["rec_id DESC"])
            .fetch_rows()
            .await
            .unwrap();
        let got: Vec<f64> = rows
            .iter()
            .map(|r| f64::try_from(r["data"].as_domain::<dj_codec_blob::Item>().unwrap()).unwrap())
            .collect();
        assert_eq!(
            got,
            (10..60).rev().map(f64::from).collect::<Vec<_>>(),
            "{label}"
        );
        t.restrict(Restriction::cond("rec_id", Op::Ge, 10))
            .delete()
            .await
            .unwrap();
        // A value the codec refuses names the table and attribute; nothing is written.
        let err = t
            .insert1(
                &row! {"rec_id" => 3, "data" => Value::domain(std::time::Duration::from_secs(1))},
            )
            .await
            .unwrap_err();
        let m = err.to_string();
        assert!(m.contains("rec") && m.contains("data"), "{label}: {m}");
        assert_eq!(t.len().await.unwrap(), 2);
        // The column carries DataJoint's marker: reopening sees the codec.
        let again = s.table("rec").await.unwrap();
        assert_eq!(
            again.heading().attribute("data").unwrap().spec.to_string(),
            "<blob>"
        );
        assert_eq!(
            again.heading().attribute("data").unwrap().comment,
            "the samples"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn singleton_and_tiers() {
    each_backend("tiers", |label, s| async move {
        let cfg = s
            .declare("Settings", Tier::Manual, "---\nvalue : int32")
            .await
            .unwrap();
        cfg.insert1(&row! {"value" => 3}).await.unwrap();
        assert!(
            cfg.insert1(&row! {"value" => 4})
                .await
                .unwrap_err()
                .is_duplicate(),
            "{label}"
        );
        let r: Row = cfg.fetch1().await.unwrap();
        assert_eq!(r.len(), 1, "hidden _singleton is not fetched");
        let subject = s
            .declare("Subject", Tier::Manual, "subject_id : int32")
            .await
            .unwrap();
        subject.insert1(&row! {"subject_id" => 1}).await.unwrap();
        let comp = s
            .declare(
                "Analysis",
                Tier::Computed,
                "-> Subject\n---\nresult : float64",
            )
            .await
            .unwrap();
        assert_eq!(comp.name(), "__analysis");
        assert!(
            comp.insert1(&row! {"subject_id" => 1, "result" => 1.0})
                .await
                .is_err()
        );
        comp.insert_with(
            &[row! {"subject_id" => 1, "result" => 1.0}],
            InsertOptions {
                allow_direct_insert: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let imp = s
            .declare("Raw", Tier::Imported, "-> Subject")
            .await
            .unwrap();
        assert_eq!(imp.name(), "_raw");
        assert_eq!(imp.tier(), Some(Tier::Imported));
        // Declaring an existing table opens it.
        let again = s
            .declare("Subject", Tier::Manual, "subject_id : int32")
            .await
            .unwrap();
        assert_eq!(again.len().await.unwrap(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_codec_chain_encodes_before_the_transaction() {
    use dj_codec_hash as _;
    use dj_store_memory as _;
    let with_store = |mut c: dj_config::Config| {
        c.stores
            .specs
            .insert("mem".into(), dj_config::StoreSpec::new("mem", "memory", ""));
        c.stores.default = Some("mem".into());
        c
    };
    common::each_backend_with("store", with_store, |label, s| async move {
        let t = s
            .declare("Rec", Tier::Manual, "rec_id : int32\n---\ndata : <blob@>")
            .await
            .unwrap();
        // The resolved store is recorded in the marker, as DataJoint does.
        assert_eq!(
            t.heading().attribute("data").unwrap().spec.to_string(),
            "<blob@mem>"
        );
        let reopened = s.table("rec").await.unwrap();
        assert_eq!(
            reopened
                .heading()
                .attribute("data")
                .unwrap()
                .spec
                .to_string(),
            "<blob@mem>"
        );
        let arr = dj_codec_blob::Item::Array(dj_codec_blob::Array::from_f64(vec![1.0; 5000]));
        t.insert1(&row! {"rec_id" => 1, "data" => Value::domain(arr.clone())})
            .await
            .unwrap();
        let r: Row = t.restrict(row! {"rec_id" => 1}).fetch1().await.unwrap();
        assert_eq!(
            r["data"].as_domain::<dj_codec_blob::Item>().unwrap(),
            &arr,
            "{label}"
        );
        // A failing batch writes no row.
        let err = t
            .insert(&[
                row! {"rec_id" => 2, "data" => Value::domain(arr.clone())},
                row! {"rec_id" => 1, "data" => Value::domain(arr.clone())},
            ])
            .await
            .unwrap_err();
        assert!(err.is_duplicate(), "{label}: {err}");
        assert_eq!(t.len().await.unwrap(), 1, "{label}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_uses_only_the_configured_backend() {
    use dj_config::DatabaseBackend;
    use dj_schema::Backend;
    // Each configured backend is the one connected to.
    for (label, config, _dir) in common::configs() {
        let conn = dj_schema::Connection::open(&config).await.unwrap();
        let expected = match config.database.backend {
            DatabaseBackend::Sqlite => Backend::Sqlite,
            DatabaseBackend::Postgresql => Backend::Postgres,
            DatabaseBackend::Mysql => Backend::MySql,
        };
        assert_eq!(conn.backend(), expected, "{label}");
        conn.close().await;
    }
    // A configuration built in code that names a server but no backend is SQLite by default:
    // refused, and no SQLite file is made in its place.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.sqlite");
    for (key, set) in [
        (
            "database.host",
            (|c: &mut dj_config::Config| c.database.host = Some("db.lab".into()))
                as fn(&mut dj_config::Config),
        ),
        ("database.user", |c| c.database.user = Some("alice".into())),
        ("database.port", |c| c.database.port = Some(3306)),
    ] {
        let mut config = dj_config::Config::default();
        config.database.path = Some(file.clone());
        set(&mut config);
        let err = dj_schema::Connection::open(&config).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(key) && text.contains("sqlite"), "{text}");
        assert!(!file.exists(), "{key}: a SQLite file was created");
    }
    // A SQLite path that is a directory.
    let mut config = dj_config::Config::default();
    config.database.path = Some(dir.path().to_path_buf());
    let err = dj_schema::Connection::open(&config).await.unwrap_err();
    assert!(err.to_string().contains("database.path"), "{err}");
}
