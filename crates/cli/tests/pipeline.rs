//! End-to-end tests of `dj diagram`, `dj jobs` and `dj delete` on SQLite, PostgreSQL and
//! MariaDB: each scenario writes a `datajoint.json`, declares a small pipeline through
//! `dj_schema`, and runs the built binary.
//!
//! The server scenarios run when `DJ_TEST_POSTGRES_URL` / `DJ_TEST_MYSQL_URL` are set; without
//! them they are skipped with a message, unless `CI=true`, where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use datajoint::Config;
use datajoint::schema::populate::Jobs;
use datajoint::schema::{Connection, InsertOptions, Tier, row};
use serde_json::{Value as Json, json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Run `dj` in `dir` with `stdin` as its standard input.
fn dj_in(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dj"));
    cmd.current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("DJ_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn run(dir: &Path, args: &[&str], stdin: &str, code: i32) -> (String, String) {
    let o = dj_in(dir, args, stdin);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(code),
        "dj {args:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    (out, err)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    run(dir, args, "", 0).0
}

fn json_of(dir: &Path, args: &[&str]) -> Json {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ok(dir, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("dj {args:?}: not JSON ({e}):\n{out}"))
}

/// The server URL in `var`; `None` (with a message) when unset, a failure under `CI=true`.
fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{var} is not set, and CI=true: the server tests must run");
            }
            eprintln!("SKIP: {var} is not set (set it to run this test on that server)");
            None
        }
    }
}

fn with_conn<F, Fut>(config: &Config, body: F)
where
    F: FnOnce(Connection) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    runtime().block_on(async {
        let conn = Connection::open(config).await.unwrap();
        body(conn.clone()).await;
        conn.close().await;
    });
}

fn count(config: &Config, schema: &str, table: &str) -> u64 {
    runtime().block_on(async {
        let conn = Connection::open(config).await.unwrap();
        let t = conn
            .existing_schema(schema)
            .await
            .unwrap()
            .table(table)
            .await
            .unwrap();
        let n = t.len().await.unwrap();
        conn.close().await;
        n
    })
}

fn scenario(database: Json, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("datajoint.json");
    // safemode is DataJoint's default (true); `nosafe.json` turns it off.
    std::fs::write(&path, json!({ "database": database }).to_string()).unwrap();
    std::fs::write(
        dir.path().join("nosafe.json"),
        json!({ "database": database, "safemode": false }).to_string(),
    )
    .unwrap();
    let config = Config::from_file(&path).unwrap();
    let nosafe_path = dir.path().join("nosafe.json");
    let nosafe = nosafe_path.to_str().unwrap();
    let s = format!("djt_cli_pipe_{label}_{}", std::process::id());
    let d = dir.path();
    {
        let s = s.clone();
        with_conn(&config, |conn| async move {
            if let Ok(old) = conn.existing_schema(&s).await {
                old.drop().await.unwrap();
            }
            let lab = conn.schema(&s).await.unwrap();
            let subject = lab
                .declare("Subject", Tier::Manual, "subject_id : int32")
                .await
                .unwrap();
            let session = lab
                .declare("Session", Tier::Manual, "-> Subject\nsession : int16")
                .await
                .unwrap();
            let trial = lab
                .declare_part(&session, "Trial", "-> master\ntrial : int16")
                .await
                .unwrap();
            let clean = lab
                .declare("Clean", Tier::Computed, "-> Session\n---\nn : int32")
                .await
                .unwrap();
            for id in [1, 2] {
                subject.insert1(&row! { "subject_id" => id }).await.unwrap();
            }
            for (id, se) in [(1, 1), (1, 2), (2, 1)] {
                session
                    .insert1(&row! { "subject_id" => id, "session" => se })
                    .await
                    .unwrap();
            }
            for t in [1, 2] {
                trial
                    .insert1(&row! { "subject_id" => 1, "session" => 1, "trial" => t })
                    .await
                    .unwrap();
            }
            clean
                .insert_with(
                    &[row! { "subject_id" => 1, "session" => 2, "n" => 7 }],
                    InsertOptions {
                        allow_direct_insert: true,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
        });
    }

    // ---- diagram
    let dot = ok(d, &["diagram", &s, "--format", "dot"]);
    for want in [
        format!(
            "\"{s}.subject\" -> \"{s}.session\" [color=\"#171C399E\", style=solid, penwidth=0.75"
        ),
        format!("\"{s}.session\" -> \"{s}.__clean\" [color=\"#171C399E\", style=solid, penwidth=2"),
        format!("\"{s}.__clean\" [label=\"Clean\", shape=ellipse"),
        format!("subgraph \"cluster_entity_{s}.session\""),
    ] {
        assert!(dot.contains(&want), "{label}: no\n{want}\nin\n{dot}");
    }
    let mermaid = ok(
        d,
        &["diagram", &s, "--format", "mermaid", "--direction", "LR"],
    );
    assert!(mermaid.starts_with("flowchart LR\n"), "{label}: {mermaid}");
    assert!(
        mermaid.contains(&format!("{s}___clean([\"Clean\"]):::computed")),
        "{mermaid}"
    );
    let svg = ok(d, &["diagram", &s]);
    assert!(
        svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    assert_eq!(svg.matches("<g class=\"node ").count(), 4, "{label}: {svg}");
    assert_eq!(
        svg.matches("<g class=\"edge\"").count(),
        3,
        "{label}: {svg}"
    );
    ok(d, &["diagram", &s, "-o", "pipe.svg"]);
    assert_eq!(std::fs::read_to_string(d.join("pipe.svg")).unwrap(), svg);
    let g = json_of(d, &["diagram", &s]);
    assert_eq!(
        g["order"],
        json!([
            format!("{s}.subject"),
            format!("{s}.session"),
            format!("{s}.session__trial"),
            format!("{s}.__clean")
        ]),
        "{label}: {g}"
    );
    assert_eq!(g["foreign_keys"].as_array().unwrap().len(), 3);
    let (_, err) = run(d, &["diagram", "djt_no_such_schema_x"], "", 1);
    assert!(err.contains("djt_no_such_schema_x"), "{err}");

    // ---- jobs
    let j = json_of(d, &["jobs", &format!("{s}.Clean")]);
    assert_eq!(j["counts"]["total"], 0, "{label}: {j}");
    assert_eq!(j["job_table"], format!("{s}.~~clean"));
    let j = json_of(d, &["jobs", &s, "__clean", "--refresh"]);
    // Three sessions, one already made.
    assert_eq!(j["actions"]["refreshed"]["added"], 2, "{label}: {j}");
    assert_eq!(j["counts"]["pending"], 2);
    let j = json_of(
        d,
        &[
            "jobs",
            &format!("{s}.Clean"),
            "--ignore",
            "subject_id=2,session=1",
        ],
    );
    assert_eq!(j["counts"]["pending"], 1, "{label}: {j}");
    assert_eq!(j["counts"]["ignore"], 1);
    assert_eq!(
        j["actions"]["ignored"][0],
        json!({"subject_id": 2, "session": 1})
    );
    let (_, err) = run(
        d,
        &["jobs", &format!("{s}.Clean"), "--ignore", "subject_id=2"],
        "",
        2,
    );
    assert!(err.contains("session"), "{label}: {err}");
    {
        let s = s.clone();
        with_conn(&config, |conn| async move {
            let clean = conn
                .existing_schema(&s)
                .await
                .unwrap()
                .table("__clean")
                .await
                .unwrap();
            let jobs = Jobs::new(&clean).await.unwrap();
            jobs.error(
                &row! { "subject_id" => 1, "session" => 1 },
                "ValueError: no trace\nsecond line",
                "Traceback: make()",
            )
            .await
            .unwrap();
        });
    }
    let text = ok(d, &["jobs", &format!("{s}.Clean"), "-v"]);
    assert!(text.contains("  error      1"), "{label}: {text}");
    assert!(text.contains("    ValueError: no trace"), "{label}: {text}");
    assert!(
        text.contains("      | Traceback: make()"),
        "{label}: {text}"
    );
    let j = json_of(d, &["jobs", &format!("{s}.Clean")]);
    assert_eq!(
        j["errors"][0]["message"], "ValueError: no trace\nsecond line",
        "{j}"
    );
    assert_eq!(
        j["errors"][0]["key"],
        json!({"subject_id": 1, "session": 1})
    );
    let j = json_of(d, &["jobs", &format!("{s}.Clean"), "--clear-errors"]);
    assert_eq!(j["actions"]["errors_cleared"], 1, "{label}: {j}");
    assert_eq!(j["counts"]["error"], 0);
    assert_eq!(j["counts"]["total"], 1);
    let (_, err) = run(d, &["jobs", &format!("{s}.Subject")], "", 1);
    assert!(err.contains("Computed and Imported"), "{label}: {err}");
    let (_, err) = run(d, &["jobs", "nodot"], "", 2);
    assert!(err.contains("SCHEMA.TABLE"), "{err}");

    // ---- delete
    let subject = format!("{s}.Subject");
    let out = ok(
        d,
        &["delete", &subject, "--where", "subject_id = 1", "--dry-run"],
    );
    assert!(
        out.contains(&format!("would delete        1 row(s) from {s}.subject")),
        "{label}: {out}"
    );
    assert!(
        out.contains(&format!("would delete        2 row(s) from {s}.session\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "would delete        2 row(s) from {s}.session__trial"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("would delete        1 row(s) from {s}.__clean")),
        "{out}"
    );
    let j = json_of(
        d,
        &["delete", &subject, "--where", "subject_id = 1", "--dry-run"],
    );
    assert_eq!(j["rows"][format!("{s}.session")], 2, "{j}");
    assert_eq!(j["deleted"], false);
    assert_eq!(count(&config, &s, "session"), 3);
    // safemode asks; anything but `yes` cancels.
    let (_, err) = run(
        d,
        &["delete", &subject, "--where", "subject_id = 1"],
        "no\n",
        1,
    );
    assert!(
        err.contains("Commit deletes?") && err.contains("cancelled"),
        "{label}: {err}"
    );
    assert!(
        err.contains(&format!("about to delete        2 row(s) from {s}.session")),
        "{err}"
    );
    let (_, err) = run(d, &["delete", &subject, "--where", "subject_id = 1"], "", 1);
    assert!(err.contains("cancelled"), "{err}");
    assert_eq!(count(&config, &s, "session"), 3);
    let (out, _) = run(
        d,
        &["delete", &subject, "--where", "subject_id = 1"],
        "yes\n",
        0,
    );
    assert!(out.contains("deleted 6 row(s): 1 from"), "{label}: {out}");
    assert_eq!(count(&config, &s, "session"), 1);
    assert_eq!(count(&config, &s, "session__trial"), 0);
    assert_eq!(count(&config, &s, "__clean"), 0);
    // A part is deleted through its master.
    let (_, err) = run(d, &["delete", &s, "Session.Trial", "--yes"], "", 1);
    assert!(err.contains("master"), "{label}: {err}");
    // Without safemode no question is asked; --key picks one row.
    let j = json_of(
        d,
        &[
            "--config",
            nosafe,
            "delete",
            &s,
            "Session",
            "--key",
            "subject_id=2",
            "--key",
            "session=1",
        ],
    );
    assert_eq!(j["deleted"], true, "{label}: {j}");
    assert_eq!(j["rows_of_table"], 1);
    assert_eq!(count(&config, &s, "session"), 0);
    let out = ok(d, &["delete", &subject, "--yes"]);
    assert!(out.contains("deleted 1 row(s)"), "{label}: {out}");
    let out = ok(d, &["delete", &subject]);
    assert!(out.contains("nothing to delete"), "{label}: {out}");
    let (_, err) = run(
        d,
        &["delete", &subject, "--where", "no_such_attr = 1", "--yes"],
        "",
        1,
    );
    assert!(!err.is_empty());

    with_conn(&config, |conn| async move {
        conn.existing_schema(&s)
            .await
            .unwrap()
            .drop()
            .await
            .unwrap();
    });
}

#[test]
fn pipeline_commands_on_sqlite() {
    scenario(json!({"backend": "sqlite", "path": "db.sqlite"}), "sqlite");
}

#[test]
fn pipeline_commands_on_postgres() {
    if let Some(url) = server_url("DJ_TEST_POSTGRES_URL") {
        scenario(json!({ "url": url }), "pg");
    }
}

#[test]
fn pipeline_commands_on_mysql() {
    if let Some(url) = server_url("DJ_TEST_MYSQL_URL") {
        scenario(json!({ "url": url }), "my");
    }
}

/// `dj jobs --watch`: a bar (here, lines: standard error is a pipe) of keys made while another
/// process fills the table, until every key is made; until nothing is left to take; or Ctrl-C.
fn watch_scenario(database: Json, label: &str) {
    use std::io::BufRead;
    use std::sync::mpsc;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("datajoint.json");
    std::fs::write(&path, json!({ "database": database }).to_string()).unwrap();
    let config = Config::from_file(&path).unwrap();
    let s = format!("djt_cli_watch_{label}_{}", std::process::id());
    let d = dir.path();
    let target = format!("{s}.Clean");
    let made = |keys: &[i32]| {
        let s = s.clone();
        let keys = keys.to_vec();
        with_conn(&config, |conn| async move {
            let clean = conn
                .existing_schema(&s)
                .await
                .unwrap()
                .table("__clean")
                .await
                .unwrap();
            let rows: Vec<_> = keys
                .iter()
                .map(|k| row! { "subject_id" => *k, "n" => 1 })
                .collect();
            clean
                .insert_with(
                    &rows,
                    InsertOptions {
                        allow_direct_insert: true,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
        });
    };
    {
        let s = s.clone();
        with_conn(&config, |conn| async move {
            if let Ok(old) = conn.existing_schema(&s).await {
                old.drop().await.unwrap();
            }
            let lab = conn.schema(&s).await.unwrap();
            let subject = lab
                .declare("Subject", Tier::Manual, "subject_id : int32")
                .await
                .unwrap();
            lab.declare("Clean", Tier::Computed, "-> Subject\n---\nn : int32")
                .await
                .unwrap();
            for id in 1..=3 {
                subject.insert1(&row! { "subject_id" => id }).await.unwrap();
            }
        });
    }
    made(&[1]);

    // A watcher, its standard error read line by line.
    let start = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dj"));
        cmd.current_dir(d)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("DJ_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    };
    let next = |rx: &mpsc::Receiver<String>| {
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{label}: no line from dj jobs --watch: {e}"))
    };

    // Until every key is made: the other two are made once the watcher has reported.
    let (child, rx) = start(&["jobs", &target, "--watch", "--interval", "1"]);
    assert_eq!(next(&rx), "made 1/3; queue empty", "{label}");
    made(&[2]);
    assert_eq!(next(&rx), "made 2/3; queue empty", "{label}");
    made(&[3]);
    assert_eq!(next(&rx), "made 3/3; queue empty", "{label}");
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{label}: {text}");
    assert!(
        text.contains("watched      until all made"),
        "{label}: {text}"
    );

    // Already all made: it returns at once; with --json, no lines on standard error.
    let o = dj_in(d, &["--json", "jobs", &target, "--watch"], "");
    assert_eq!(o.status.code(), Some(0));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let j: Json = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["actions"]["watched"], "all made", "{label}: {j}");

    // Every remaining key failed and none is pending or reserved: nothing left to take.
    {
        let s = s.clone();
        with_conn(&config, |conn| async move {
            let clean = conn
                .existing_schema(&s)
                .await
                .unwrap()
                .table("__clean")
                .await
                .unwrap();
            clean
                .restrict(row! { "subject_id" => 3 })
                .delete()
                .await
                .unwrap();
            let jobs = Jobs::new(&clean).await.unwrap();
            assert_eq!(jobs.refresh().await.unwrap().added, 1);
            jobs.error(&row! { "subject_id" => 3 }, "no data", "")
                .await
                .unwrap();
        });
    }
    let j = json_of(d, &["jobs", &target, "--watch"]);
    assert_eq!(
        j["actions"]["watched"], "nothing left to take",
        "{label}: {j}"
    );
    assert_eq!(j["counts"]["error"], 1);

    // Ctrl-C ends the watch with the report.
    let j = json_of(d, &["jobs", &target, "--clear-errors", "--refresh"]);
    assert_eq!(j["counts"]["pending"], 1, "{label}: {j}");
    let (child, rx) = start(&["jobs", &target, "--watch"]);
    assert_eq!(next(&rx), "made 2/3; pending 1", "{label}");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{label}: {text}");
    assert!(
        text.contains("watched      until interrupted"),
        "{label}: {text}"
    );
    assert!(text.contains("  pending    1"), "{label}: {text}");

    with_conn(&config, |conn| async move {
        conn.existing_schema(&s)
            .await
            .unwrap()
            .drop()
            .await
            .unwrap();
    });
}

#[test]
fn jobs_watch_on_sqlite() {
    watch_scenario(json!({"backend": "sqlite", "path": "db.sqlite"}), "sqlite");
}

#[test]
fn jobs_watch_on_postgres() {
    if let Some(url) = server_url("DJ_TEST_POSTGRES_URL") {
        watch_scenario(json!({ "url": url }), "pg");
    }
}
