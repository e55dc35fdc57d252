//! The query interop corpus: every query written twice, as a DataJoint 2.3.5 Python expression
//! (`tests/interop/query_corpus.py`) and as a dj-rs expression (here, under the same id), over
//! the same Python-declared tables on PostgreSQL and on MariaDB.
//!
//! For each backend, Python (`DJ_TEST_PYTHON`, the venv with DataJoint 2.3.5) declares the
//! pipeline schema, fills it, evaluates its expressions and writes each one's rows and heading
//! (or the error it raised) as JSON. This test opens the same schema with dj-rs by class name,
//! evaluates the Rust expression of every id and compares:
//!
//! - the attribute names, in order, and the primary key, in order;
//! - the rows: as sets, or row by row when the query orders them; numbers compare by value
//!   (a decimal that Python fetches as `Decimal` equals the same number fetched as a float), to
//!   1e-9 relative; everything else exactly;
//! - errors: when Python raises, dj-rs must return an error (from `heading()` or the fetch).
//!
//! Without `DJ_TEST_PYTHON` or a server URL the backend is skipped with a message; with
//! `CI=true` that is a failure. SQLite is not part of it: DataJoint 2.3.5 has no SQLite backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use dj_codec_blob as _;
use dj_config::Config;
use dj_config::{DatabaseBackend, Secret};
use dj_core::value::Value;
use dj_schema::query::U;
use dj_schema::{Connection, Query, Restriction, Row, Table, row};
use serde_json::{Value as Json, json};

/// The tables of the corpus schema, opened by class name.
struct Tables {
    conn: Connection,
    user: Table,
    species: Table,
    subject: Table,
    session: Table,
    trial: Table,
    note: Table,
    filter: Table,
    stats: Table,
}

fn or(items: impl IntoIterator<Item = Restriction>) -> Restriction {
    Restriction::or(items)
}

fn sql(cond: &str) -> Restriction {
    Restriction::from(cond)
}

/// The dj-rs twin of every Python expression of the corpus, by id (`None`: no such id).
fn rust_query(id: &str, t: &Tables) -> Option<Query> {
    let (subject, session, trial) = (&t.subject, &t.session, &t.trial);
    let q = match id {
        "subject_all" => subject.query(),
        "restrict_string" => subject & "sex = 'F'",
        "restrict_string_and" => subject & "sex = 'F' AND weight > 25",
        "restrict_dict" => subject & row! { "sex" => "F", "species" => "mus musculus" },
        "restrict_dict_extra_key" => subject & row! { "sex" => "F", "no_such_attribute" => 3 },
        "restrict_or_list" => {
            subject
                & or([
                    row! { "subject_id" => 1 }.into(),
                    row! { "subject_id" => 3 }.into(),
                    sql("weight > 30"),
                ])
        }
        "restrict_and_list" => subject & Restriction::and([sql("sex = 'F'"), sql("weight > 22")]),
        "restrict_not" => subject & Restriction::not(sql("sex = 'F'")),
        "restrict_not_list" => {
            subject
                & Restriction::not(or([
                    row! { "subject_id" => 2 }.into(),
                    row! { "subject_id" => 4 }.into(),
                ]))
        }
        "restrict_null" => subject & "weight IS NULL",
        "restrict_date" => session & "session_date >= '2024-01-20'",
        // Python doubles `%` in a condition string (its driver formats the query); SQL does not.
        "restrict_like" => subject & "species LIKE 'mus%'",
        "restrict_in" => session & "owner IN ('alice', 'carol')",
        "restrict_chain" => &(session & "duration > 20") & row! { "owner" => "bob" },
        "semijoin" => subject & session,
        "semijoin_restricted" => subject & (session & "duration > 40"),
        "semijoin_renamed" => &t.user & session.query().proj(["user_name <- owner"]),
        "antijoin" => subject - session,
        "antijoin_string" => subject - "sex = 'M'",
        "antijoin_renamed" => &t.user - session.query().proj(["user_name <- owner"]),
        "antijoin_part" => session - trial,
        "join_two" => subject * session,
        "join_three" => &(&t.species * subject) * session,
        "join_three_restricted" => &(&(subject * session) * trial) & "outcome = 'hit'",
        "join_renamed_fk" => session * &t.user.query().proj(["owner <- user_name"]),
        "join_renamed_fk_cond" => {
            &(session
                * &t.user
                    .query()
                    .proj(["owner <- user_name", "owner_full <- full_name"]))
                & "owner_full = 'Alice Archer'"
        }
        "join_computed" => &(&t.stats * &t.filter) & "n_fast > 0",
        "join_unchecked" => subject
            .query()
            .proj(["idx <- subject_id"])
            .join_unchecked(session.query().proj(["idx <- session_idx"])),
        "restrict_unchecked" => subject
            .query()
            .proj(["idx <- subject_id"])
            .restrict_unchecked(session.query().proj(["idx <- session_idx"])),
        "proj_keep" => subject.query().proj(["sex"]),
        "proj_key_only" => session.query().proj(Vec::<&str>::new()),
        "proj_rename" => subject.query().proj(["sex", "kind <- species"]),
        "proj_rename_pk" => subject.query().proj(["animal <- subject_id"]),
        "proj_computed" => session.query().proj(["duration / 60 -> duration_h"]),
        "proj_all_computed" => session.query().proj(["...", "duration * 2 -> double_dur"]),
        "proj_exclude" => subject.query().proj(["...", "-notes", "-dob"]),
        "proj_then_restrict" => &session.query().proj(["d <- duration"]) & "d < 30",
        "aggr_count" => subject.query().aggr(session, ["count(*) -> n"]),
        "aggr_count_avg" => subject.query().aggr(
            session,
            [
                "count(*) -> n",
                "avg(duration) -> avg_dur",
                "max(session_date) -> last",
            ],
        ),
        "aggr_exclude_nonmatching" => subject
            .query()
            .aggr_exclude_nonmatching(session, ["count(*) -> n"]),
        "aggr_part" => session.query().aggr(
            trial,
            ["count(*) -> n", "count(rt) -> n_rt", "min(rt) -> best"],
        ),
        "aggr_restricted" => &subject.query().aggr(session, ["count(*) -> n"]) & "n > 1",
        "aggr_renamed" => t.user.query().aggr(
            session.query().proj(["duration", "user_name <- owner"]),
            ["count(*) -> n", "sum(duration) -> total"],
        ),
        "aggr_of_join" => t.species.query().aggr(
            &(subject * session),
            ["count(*) -> n", "max(duration) -> longest"],
        ),
        "u_distinct" => &U::new(["species"]) & subject,
        "u_distinct_two" => &U::new(["species", "sex"]) & subject,
        "u_distinct_join" => &U::new(["species", "owner"]) & (subject * session),
        "u_grouped_aggr" => {
            U::new(["species"]).aggr(subject, ["count(*) -> n", "avg(weight) -> mean_w"])
        }
        "u_grouped_aggr_join" => {
            U::new(["owner", "sex"]).aggr(&(subject * session), ["count(*) -> n"])
        }
        "u_total" => U::empty().aggr(session, ["count(*) -> n", "sum(duration) -> total"]),
        "u_total_restricted" => U::empty().aggr(&(trial & "outcome = 'hit'"), ["count(*) -> n"]),
        "union_outer" => {
            &(session & "duration > 45").proj(["rig"])
                + &(session & row! { "owner" => "alice" }).proj(["owner"])
        }
        "union_proj" => {
            &(session & "duration > 45").proj(Vec::<&str>::new())
                + &(session & row! { "owner" => "alice" }).proj(Vec::<&str>::new())
        }
        "top_plain" => subject.query().top(Some(3), ["weight DESC"], 0),
        "top_in_join" => {
            session * &(&subject.query().top(Some(2), ["subject_id DESC"], 0) & "weight > 0")
        }
        "top_in_semijoin" => {
            trial
                & (&session
                    .query()
                    .top(Some(3), ["duration DESC", "subject_id", "session_idx"], 0)
                    & "duration > 0")
        }
        "top_offset" => {
            session
                .query()
                .top(Some(4), ["duration DESC", "subject_id", "session_idx"], 2)
        }
        "top_aggr" => subject.query().aggr(session, ["count(*) -> n"]).top(
            Some(3),
            ["n DESC", "subject_id"],
            0,
        ),
        "ordered_fetch" => (session * subject)
            .order_by(["duration DESC", "subject_id", "session_idx"])
            .limit(5),
        "ordered_fetch_offset" => subject.query().order_by(["dob"]).limit(4).offset(3),
        "extend" => session.query().extend(t.note.query()),
        "extend_restricted" => trial
            .query()
            .extend(&(&(subject * &t.species) & "sex = 'F'")),
        "err_join_lineage" => subject * &t.filter.query().proj(["species <- filter_name"]),
        "err_join_lineage_key" => {
            &subject.query().proj(["idx <- subject_id"])
                * &session.query().proj(["idx <- session_idx"])
        }
        "err_union_shared_secondary" => {
            &(subject & "subject_id < 3") + &(subject & "subject_id > 10")
        }
        "err_restrict_lineage" => subject & t.filter.query().proj(["species <- filter_name"]),
        "err_proj_unknown" => subject.query().proj(["no_such_attribute"]),
        "err_union_incompatible" => &subject.query() + &session.query(),
        "err_extend_not_determined" => subject.query().extend(session.query()),
        "err_aggr_bad_expression" => subject
            .query()
            .aggr(session, ["no_such_function(duration) -> n"]),
        "err_restrict_unknown_attr" => subject & "no_such_attribute > 1",
        _ => return None,
    };
    Some(q)
}

/// The ids whose Python text differs from the Rust one in more than spelling, and why; kept
/// here so a reader of a failure sees it.
const NOTES: &[(&str, &str)] = &[
    (
        "top_in_join",
        "DataJoint 2.3.5 drops a Top on a bare join operand; the extra restriction keeps it in Python",
    ),
    (
        "top_in_semijoin",
        "without the extra restriction DataJoint 2.3.5's SQL fails on MariaDB (LIMIT in an IN subquery)",
    ),
    (
        "extend_restricted",
        "DataJoint 2.3.5 turns `A.extend(B & cond)` into an inner join for a one-table B; two tables keep it a left join",
    ),
];

// ---------------------------------------------------------------------------------------------
// The harness: running Python, converting values, comparing.

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn env_or_skip(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                !ci(),
                "{var} is not set, and CI=true: the query interop corpus must run"
            );
            eprintln!("SKIP query interop: {var} is not set");
            None
        }
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/query_corpus.py")
}

fn python(py: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(py)
        .arg(script())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {py}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "query_corpus.py {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Drops the Python-declared schema however the test ends.
struct DropSchema<'a> {
    py: &'a str,
    url: &'a str,
    name: String,
}

impl Drop for DropSchema<'_> {
    fn drop(&mut self) {
        if let Err(e) = python(self.py, &["drop", self.url, &self.name]) {
            eprintln!("could not drop {}: {e}", self.name);
        }
    }
}

/// A dj-rs value in the corpus's JSON convention (see query_corpus.py).
fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::UInt(u) => json!(u),
        Value::Float(f) => json!(f),
        Value::Decimal(s) => json!({ "$dec": s }),
        Value::String(s) => json!(s),
        Value::Uuid(u) => json!(u.hyphenated().to_string()),
        Value::Date(d) => json!(d.format("%Y-%m-%d").to_string()),
        Value::DateTime(d) => json!(d.format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
        Value::Json(j) => j.clone(),
        other => json!({ "$unexpected": format!("{other:?}") }),
    }
}

/// A number, from a JSON number or a `{"$dec": text}` decimal.
fn number(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::Object(m) if m.len() == 1 => m.get("$dec")?.as_str()?.parse().ok(),
        _ => None,
    }
}

fn same_cell(py: &Json, rs: &Json) -> bool {
    match (number(py), number(rs)) {
        (Some(a), Some(b)) => a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()),
        _ => py == rs,
    }
}

/// A sort key that both sides' spellings of one value share (numbers rounded to 9 digits).
fn sort_key(row: &[Json]) -> String {
    row.iter()
        .map(|v| match number(v) {
            Some(f) => format!("n{f:.9e}"),
            None => format!("v{v}"),
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

fn compare_rows(py: &[Vec<Json>], rs: &[Vec<Json>], ordered: bool) -> Result<(), String> {
    if py.len() != rs.len() {
        return Err(format!(
            "{} rows in Python, {} in dj-rs\n  Python: {py:?}\n  dj-rs:  {rs:?}",
            py.len(),
            rs.len()
        ));
    }
    let (mut a, mut b) = (py.to_vec(), rs.to_vec());
    if !ordered {
        let by_key = |x: &Vec<Json>, y: &Vec<Json>| -> Ordering { sort_key(x).cmp(&sort_key(y)) };
        a.sort_by(by_key);
        b.sort_by(by_key);
    }
    for (i, (p, r)) in a.iter().zip(&b).enumerate() {
        if p.len() != r.len() || !p.iter().zip(r).all(|(x, y)| same_cell(x, y)) {
            return Err(format!(
                "row {i} differs:\n  Python: {p:?}\n  dj-rs:  {r:?}"
            ));
        }
    }
    Ok(())
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Evaluate one id with dj-rs and compare it with Python's result.
async fn check_one(id: &str, want: &Json, t: &Tables) -> Result<(), String> {
    let q = rust_query(id, t).ok_or("no dj-rs expression for this id")?;
    let got = async {
        let h = q.heading()?;
        let names: Vec<String> = h.names().into_iter().map(str::to_string).collect();
        let pk: Vec<String> = h.primary_key().into_iter().map(str::to_string).collect();
        let rows: Vec<Row> = q.fetch_rows().await?;
        Ok::<_, dj_schema::Error>((names, pk, rows))
    }
    .await;
    if let Some(err) = want.get("error") {
        return match got {
            Err(e) => {
                eprintln!("    {id}: both raise — Python: {err}; dj-rs: {e}");
                Ok(())
            }
            Ok((names, _, rows)) => Err(format!(
                "Python raises {err}, dj-rs returns {} rows of {names:?}",
                rows.len()
            )),
        };
    }
    let (names, pk, rows) = got.map_err(|e| format!("dj-rs fails: {e}"))?;
    let want_names = strings(&want["attributes"]);
    let want_pk = strings(&want["primary_key"]);
    if names != want_names {
        return Err(format!(
            "attributes differ: Python {want_names:?}, dj-rs {names:?}"
        ));
    }
    if pk != want_pk {
        return Err(format!(
            "primary keys differ: Python {want_pk:?}, dj-rs {pk:?}"
        ));
    }
    let mut rs = Vec::with_capacity(rows.len());
    for r in &rows {
        let keys: Vec<&str> = r.keys().map(String::as_str).collect();
        if keys != names {
            return Err(format!(
                "a fetched row's attributes {keys:?} differ from the heading {names:?}"
            ));
        }
        rs.push(r.values().map(to_json).collect::<Vec<_>>());
    }
    let py: Vec<Vec<Json>> = want["rows"]
        .as_array()
        .ok_or("Python wrote no rows")?
        .iter()
        .map(|r| r.as_array().cloned().unwrap_or_default())
        .collect();
    let ordered = want["ordered"].as_bool().unwrap_or(false);
    compare_rows(&py, &rs, ordered)
}

async fn open_tables(config: &Config, name: &str) -> Tables {
    let conn = Connection::open(config).await.unwrap();
    let schema = conn.existing_schema(name).await.unwrap();
    let open = |class: &'static str| {
        let schema = schema.clone();
        async move {
            schema
                .table_by_class(class)
                .await
                .unwrap_or_else(|e| panic!("{class}: {e}"))
        }
    };
    Tables {
        user: open("User").await,
        species: open("Species").await,
        subject: open("Subject").await,
        session: open("Session").await,
        trial: open("Session.Trial").await,
        note: open("SessionNote").await,
        filter: open("Filter").await,
        stats: open("TrialStats").await,
        conn,
    }
}

/// Run the corpus on one backend; the ids that fail, with why.
async fn run_backend(label: &str, py: &str, url: &str, backend: DatabaseBackend) -> Vec<String> {
    let name = format!("djq_interop_{}_{label}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("corpus.json");
    let _drop = DropSchema {
        py,
        url,
        name: name.clone(),
    };
    python(py, &["setup", url, &name, &out.display().to_string()])
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let corpus: serde_json::Map<String, Json> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(
        corpus.len() >= 40,
        "the corpus has {} queries, fewer than 40",
        corpus.len()
    );
    let mut config = Config::default();
    config.database.backend = backend;
    config.database.url = Some(Secret::new(url.to_string()));
    let t = open_tables(&config, &name).await;
    let mut failures = Vec::new();
    for (id, want) in &corpus {
        match check_one(id, want, &t).await {
            Ok(()) => {}
            Err(why) => {
                let note = NOTES
                    .iter()
                    .find(|(n, _)| n == id)
                    .map(|(_, s)| format!(" (note: {s})"))
                    .unwrap_or_default();
                let order = if want["ordered"].as_bool() == Some(true) {
                    " (fetched in order, with the options of query_corpus.py)"
                } else {
                    ""
                };
                failures.push(format!(
                    "{label} {id}{note}\n  Python: {}{order}\n  {why}",
                    want["python"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    // Every Rust id has a Python twin too.
    let py_ids: BTreeSet<&str> = corpus.keys().map(String::as_str).collect();
    for id in RUST_IDS {
        if !py_ids.contains(id) {
            failures.push(format!(
                "{label} {id}: a dj-rs expression without a Python twin"
            ));
        }
    }
    eprintln!(
        "query interop on {label}: {} of {} queries agree",
        corpus.len() - failures.len().min(corpus.len()),
        corpus.len()
    );
    t.conn.close().await;
    failures
}

/// Every id `rust_query` knows (checked against the Python corpus both ways).
const RUST_IDS: &[&str] = &[
    "subject_all",
    "restrict_string",
    "restrict_string_and",
    "restrict_dict",
    "restrict_dict_extra_key",
    "restrict_or_list",
    "restrict_and_list",
    "restrict_not",
    "restrict_not_list",
    "restrict_null",
    "restrict_date",
    "restrict_like",
    "restrict_in",
    "restrict_chain",
    "semijoin",
    "semijoin_restricted",
    "semijoin_renamed",
    "antijoin",
    "antijoin_string",
    "antijoin_renamed",
    "antijoin_part",
    "join_two",
    "join_three",
    "join_three_restricted",
    "join_renamed_fk",
    "join_renamed_fk_cond",
    "join_computed",
    "join_unchecked",
    "restrict_unchecked",
    "proj_keep",
    "proj_key_only",
    "proj_rename",
    "proj_rename_pk",
    "proj_computed",
    "proj_all_computed",
    "proj_exclude",
    "proj_then_restrict",
    "aggr_count",
    "aggr_count_avg",
    "aggr_exclude_nonmatching",
    "aggr_part",
    "aggr_restricted",
    "aggr_renamed",
    "aggr_of_join",
    "u_distinct",
    "u_distinct_two",
    "u_distinct_join",
    "u_grouped_aggr",
    "u_grouped_aggr_join",
    "u_total",
    "u_total_restricted",
    "union_outer",
    "union_proj",
    "top_plain",
    "top_in_join",
    "top_in_semijoin",
    "top_offset",
    "top_aggr",
    "ordered_fetch",
    "ordered_fetch_offset",
    "extend",
    "extend_restricted",
    "err_join_lineage",
    "err_join_lineage_key",
    "err_union_shared_secondary",
    "err_restrict_lineage",
    "err_proj_unknown",
    "err_union_incompatible",
    "err_extend_not_determined",
    "err_aggr_bad_expression",
    "err_restrict_unknown_attr",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_corpus_matches_datajoint() {
    let Some(py) = env_or_skip("DJ_TEST_PYTHON") else {
        return;
    };
    let mut failures = Vec::new();
    for (label, var, backend) in [
        (
            "postgres",
            "DJ_TEST_POSTGRES_URL",
            DatabaseBackend::Postgresql,
        ),
        ("mariadb", "DJ_TEST_MYSQL_URL", DatabaseBackend::Mysql),
    ] {
        let Some(url) = env_or_skip(var) else {
            continue;
        };
        failures.extend(run_backend(label, &py, &url, backend).await);
    }
    assert!(
        failures.is_empty(),
        "{} corpus queries disagree with DataJoint 2.3.5:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
