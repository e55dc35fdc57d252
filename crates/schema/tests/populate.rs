//! Populate: `make` (one-step and three-part), key sources, direct mode and the job table
//! `~~<table>`, on SQLite, PostgreSQL and MariaDB.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::each_backend;
use dj_schema::populate::{
    JobStatus, Jobs, Make, MakeContext, MakeResult, MakeTripartite, Order, Populate, RefreshOptions,
};
use dj_schema::{Connection, Error, Row, Schema, Table, Tier, row};

struct Pipeline {
    subject: Table,
    session: Table,
    stats: Table,
    part: Table,
}

async fn pipeline(s: &Schema) -> Pipeline {
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
            "-> Subject\nsession : int16\n---\nx : int64",
        )
        .await
        .unwrap();
    let stats = s
        .declare("Stats", Tier::Computed, "-> Session\n---\nsquare : int64")
        .await
        .unwrap();
    let part = s
        .declare_part(
            &stats,
            "Digit",
            "-> master\ndigit : int16\n---\nvalue : int64",
        )
        .await
        .unwrap();
    subject
        .insert(&[
            row! {"subject_id" => 1, "name" => "Ann"},
            row! {"subject_id" => 2, "name" => "Bob"},
        ])
        .await
        .unwrap();
    let mut sessions = Vec::new();
    for sid in 1..=2 {
        for k in 1..=3 {
            sessions
                .push(row! {"subject_id" => sid, "session" => k, "x" => i64::from(sid * 10 + k)});
        }
    }
    session.insert(&sessions).await.unwrap();
    Pipeline {
        subject,
        session,
        stats,
        part,
    }
}

/// Squares `x` into Stats and writes two part rows; fails for `x` in `fail`.
struct Square {
    fail: Vec<i64>,
    calls: AtomicUsize,
}

impl Square {
    fn new(fail: Vec<i64>) -> Self {
        Square {
            fail,
            calls: AtomicUsize::new(0),
        }
    }
}

impl Make for Square {
    async fn make(&self, key: &Row, cx: &MakeContext<'_>) -> MakeResult<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let session = cx.table_named("Session").await?;
        let row: Row = cx.fetch1(session.restrict(key.clone())).await?;
        let x = row["x"].as_i64().unwrap_or_default();
        let mut out = key.clone();
        out.insert("square".into(), (x * x).into());
        cx.insert1(cx.target(), &out).await?;
        let part = cx.part("Digit").await?;
        let mut parts = Vec::new();
        for (d, v) in [(0, x % 10), (1, x / 10)] {
            let mut p = key.clone();
            p.insert("digit".into(), d.into());
            p.insert("value".into(), v.into());
            parts.push(p);
        }
        cx.insert(&part, &parts).await?;
        // The transaction sees its own inserts.
        assert_eq!(cx.len(cx.target().restrict(key.clone())).await?, 1);
        if self.fail.contains(&x) {
            return Err(format!("x = {x} is unlucky").into());
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_populate_makes_every_key_once_with_parts_in_one_transaction() {
    each_backend("pop_direct", |label, s| async move {
        let p = pipeline(&s).await;
        let maker = Square::new(vec![]);
        let pop = Populate::new(&p.stats, &maker);
        assert_eq!(pop.progress().await.unwrap(), (6, 6), "{label}");
        // Restrictions and max_calls.
        let r = Populate::new(&p.stats, &maker)
            .restrict(row! {"subject_id" => 1})
            .max_calls(2)
            .order(Order::Reverse)
            .run()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(r.success_count, 2, "{label}");
        let made: Vec<Row> = p.stats.query().keys().await.unwrap();
        let mut sessions: Vec<i64> = made
            .iter()
            .map(|k| k["session"].as_i64().unwrap())
            .collect();
        sessions.sort();
        assert_eq!(
            sessions,
            vec![2, 3],
            "{label}: reverse order takes the last keys"
        );
        let progress: Arc<AtomicUsize> = Arc::default();
        let seen = progress.clone();
        let r = Populate::new(&p.stats, &maker)
            .concurrency(3)
            .on_progress(move |pr| {
                seen.fetch_add(1, Ordering::SeqCst);
                assert!(pr.done <= pr.total);
            })
            .run()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(r.success_count, 4, "{label}");
        assert_eq!(progress.load(Ordering::SeqCst), 4, "{label}");
        assert_eq!(p.stats.len().await.unwrap(), 6, "{label}");
        assert_eq!(p.part.len().await.unwrap(), 12, "{label}");
        let one: Row = p
            .stats
            .restrict(row! {"subject_id" => 2, "session" => 3})
            .fetch1()
            .await
            .unwrap();
        assert_eq!(one["square"].as_i64(), Some(23 * 23), "{label}");
        // Nothing left: a second run makes nothing.
        let r = Populate::new(&p.stats, &maker).run().await.unwrap();
        assert_eq!(r.success_count, 0, "{label}");
        assert_eq!(maker.calls.load(Ordering::SeqCst), 6, "{label}");
        assert_eq!(pop.progress().await.unwrap(), (0, 6), "{label}");
        let _ = (&p.subject, &p.session);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_make_leaves_nothing_and_suppress_errors_goes_on() {
    each_backend("pop_errors", |label, s| async move {
        let p = pipeline(&s).await;
        let maker = Square::new(vec![12, 21]);
        let err = Populate::new(&p.stats, &maker)
            .run()
            .await
            .expect_err("x = 12 fails");
        match &err {
            Error::Make { table, key, .. } => {
                assert!(table.contains("stats"), "{label}: {err}");
                assert!(key.contains("session: 2"), "{label}: {err}");
            }
            other => panic!("{label}: {other}"),
        }
        assert!(err.to_string().contains("unlucky"), "{label}: {err}");
        // Key 1 committed before the failure; the failed key left neither row nor parts.
        assert_eq!(p.stats.len().await.unwrap(), 1, "{label}");
        assert_eq!(p.part.len().await.unwrap(), 2, "{label}");
        let r = Populate::new(&p.stats, &maker)
            .suppress_errors(true)
            .run()
            .await
            .unwrap();
        assert_eq!(r.success_count, 3, "{label}");
        assert_eq!(r.errors.len(), 2, "{label}");
        assert!(
            r.errors.iter().all(|e| e.message.contains("unlucky")),
            "{label}"
        );
        assert_eq!(p.stats.len().await.unwrap(), 4, "{label}");
        assert_eq!(p.part.len().await.unwrap(), 8, "{label}");
    })
    .await;
}

/// Three-part make: fetch x, compute its square (optionally changing the input meanwhile).
struct Tri {
    tamper: bool,
}

impl MakeTripartite for Tri {
    type Fetched = i64;
    type Computed = i64;

    async fn make_fetch(&self, key: &Row, cx: &MakeContext<'_>) -> MakeResult<i64> {
        let session = cx.table_named("Session").await?;
        let row: Row = cx.fetch1(session.restrict(key.clone())).await?;
        // Inserting outside the transaction is refused.
        if !cx.in_transaction() {
            assert!(cx.insert1(cx.target(), key).await.is_err());
        }
        Ok(row["x"].as_i64().unwrap_or_default())
    }

    async fn make_compute(&self, key: &Row, x: &i64) -> MakeResult<i64> {
        if self.tamper && key["session"].as_i64() == Some(2) {
            // Another client changes the input while the computation runs.
            Err("unreachable".into())
        } else {
            Ok(x * x)
        }
    }

    async fn make_insert(
        &self,
        key: &Row,
        _x: i64,
        square: i64,
        cx: &MakeContext<'_>,
    ) -> MakeResult<()> {
        let mut out = key.clone();
        out.insert("square".into(), square.into());
        cx.insert1(cx.target(), &out).await?;
        Ok(())
    }
}

/// A three-part make that updates its input between fetch and insert.
struct Tampering {
    session: Table,
}

impl MakeTripartite for Tampering {
    type Fetched = i64;
    type Computed = i64;

    async fn make_fetch(&self, key: &Row, cx: &MakeContext<'_>) -> MakeResult<i64> {
        let row: Row = cx.fetch1(self.session.restrict(key.clone())).await?;
        Ok(row["x"].as_i64().unwrap_or_default())
    }

    async fn make_compute(&self, key: &Row, x: &i64) -> MakeResult<i64> {
        if key["session"].as_i64() == Some(2) {
            let mut changed = key.clone();
            changed.insert("x".into(), (x + 1000).into());
            self.session.update1(&changed).await?;
        }
        Ok(x * x)
    }

    async fn make_insert(
        &self,
        key: &Row,
        _x: i64,
        square: i64,
        cx: &MakeContext<'_>,
    ) -> MakeResult<()> {
        let mut out = key.clone();
        out.insert("square".into(), square.into());
        cx.insert1(cx.target(), &out).await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tripartite_make_aborts_a_key_whose_inputs_changed() {
    each_backend("pop_tri", |label, s| async move {
        let p = pipeline(&s).await;
        let r = Populate::tripartite(&p.stats, &Tri { tamper: false })
            .restrict(row! {"subject_id" => 1})
            .run()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(r.success_count, 3, "{label}");
        let t = Tampering {
            session: p.session.clone(),
        };
        let r = Populate::tripartite(&p.stats, &t)
            .suppress_errors(true)
            .run()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(r.success_count, 2, "{label}");
        assert_eq!(r.errors.len(), 1, "{label}");
        assert!(
            r.errors[0].message.contains("make_fetch` data has changed"),
            "{label}: {}",
            r.errors[0].message
        );
        assert_eq!(r.errors[0].key["session"].as_i64(), Some(2), "{label}");
        assert!(
            !p.stats
                .restrict(row! {"subject_id" => 2, "session" => 2})
                .exists()
                .await
                .unwrap(),
            "{label}: the aborted key left nothing"
        );
    })
    .await;
}

struct Copy;

impl Make for Copy {
    async fn make(&self, key: &Row, cx: &MakeContext<'_>) -> MakeResult<()> {
        cx.insert1(cx.target(), key).await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_sources_renamed_parents_overrides_and_bad_input() {
    each_backend("pop_keysource", |label, s| async move {
        let p = pipeline(&s).await;
        // Renamed foreign keys: the key source renames the parent's key.
        let pair = s
            .declare(
                "Pair",
                Tier::Computed,
                "-> Subject.proj(first='subject_id')\n-> Subject.proj(second='subject_id')",
            )
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let ks = dj_schema::populate::default_key_source(&pair)
            .await
            .unwrap();
        let mut names = ks.primary_key().unwrap();
        names.sort();
        assert_eq!(names, vec!["first", "second"], "{label}");
        let r = Populate::new(&pair, &Copy).run().await.unwrap();
        assert_eq!(r.success_count, 4, "{label}");
        // An overridden key source.
        let only = s
            .declare("Only", Tier::Imported, "-> Subject\n---\nn = 0 : int32")
            .await
            .unwrap();
        let r = Populate::new(&only, &Copy)
            .key_source(p.subject.restrict(row! {"name" => "Bob"}))
            .run()
            .await
            .unwrap();
        assert_eq!(r.success_count, 1, "{label}");
        assert_eq!(only.len().await.unwrap(), 1, "{label}");
        // Not Computed/Imported.
        let err = Populate::new(&p.session, &Copy)
            .run()
            .await
            .expect_err("manual");
        assert!(
            err.to_string().contains("Computed and Imported"),
            "{label}: {err}"
        );
        // A key source whose key the target lacks.
        let err = Populate::new(&only, &Copy)
            .key_source(p.session.query())
            .run()
            .await
            .expect_err("session is not in Only");
        assert!(
            err.to_string().contains("lacks attribute `session`"),
            "{label}: {err}"
        );
        // make inserts only into its table and parts.
        struct Stray(Table);
        impl Make for Stray {
            async fn make(&self, key: &Row, cx: &MakeContext<'_>) -> MakeResult<()> {
                cx.insert1(
                    &self.0,
                    &row! {"subject_id" => key["subject_id"].clone(), "name" => "X"},
                )
                .await?;
                Ok(())
            }
        }
        let err = Populate::new(&only, &Stray(p.subject.clone()))
            .key_source(p.subject.query())
            .run()
            .await
            .expect_err("stray insert");
        assert!(
            err.to_string()
                .contains("only into that table and its parts"),
            "{label}: {err}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_read_and_plan_deletes_through_their_own_connection() {
    // In memory: one pooled connection, so a read through the pool inside the transaction
    // would wait for ever.
    let mut config = dj_config::Config::default();
    config.database.path = Some(":memory:".into());
    let conn = Connection::open(&config).await.unwrap();
    let s = conn.schema("mem").await.unwrap();
    let p = pipeline(&s).await;
    let fut = conn.transaction(async |tx| {
        tx.insert1(&p.subject, &row! {"subject_id" => 3, "name" => "Cy"})
            .await?;
        tx.insert1(
            &p.session,
            &row! {"subject_id" => 3, "session" => 1, "x" => 5},
        )
        .await?;
        assert_eq!(tx.len(&p.session).await?, 7);
        let cy: Row = tx
            .fetch1(p.subject.restrict(row! {"subject_id" => 3}))
            .await?;
        assert_eq!(cy["name"].as_str(), Some("Cy"));
        // The cascade sees the session the transaction inserted.
        let n = tx
            .delete(&p.subject.restrict(row! {"subject_id" => 3}))
            .await?;
        assert_eq!(n, 1);
        assert_eq!(tx.keys(&p.session).await?.len(), 6);
        Ok(())
    });
    tokio::time::timeout(std::time::Duration::from_secs(20), fut)
        .await
        .expect("no deadlock")
        .unwrap();
    assert_eq!(p.session.len().await.unwrap(), 6);
    // Populate on the in-memory database too.
    let r = Populate::new(&p.stats, &Square::new(vec![]))
        .run()
        .await
        .unwrap();
    assert_eq!(r.success_count, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_table_reserve_complete_error_ignore_and_progress() {
    each_backend("pop_jobs", |label, s| async move {
        let p = pipeline(&s).await;
        let jobs = Jobs::new(&p.stats)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(jobs.table().name(), "~~stats", "{label}");
        let refreshed = jobs
            .refresh()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(refreshed.added, 6, "{label}");
        assert_eq!(jobs.refresh().await.unwrap().added, 0, "{label}");
        let key = row! {"subject_id" => 1, "session" => 1};
        assert!(jobs.reserve(&key).await.unwrap(), "{label}");
        assert!(!jobs.reserve(&key).await.unwrap(), "{label}: reserved once");
        let progress = jobs.progress().await.unwrap();
        assert_eq!(progress["pending"], 5, "{label}");
        assert_eq!(progress["reserved"], 1, "{label}");
        assert_eq!(progress["total"], 6, "{label}");
        // An orphaned reservation goes back to pending.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let ks = dj_schema::populate::default_key_source(&p.stats)
            .await
            .unwrap();
        let r = jobs
            .refresh_with(RefreshOptions {
                key_source: Some(ks.clone()),
                orphan_timeout: Some(1.0),
                ..RefreshOptions::default()
            })
            .await
            .unwrap();
        assert_eq!(r.orphaned, 1, "{label}");
        jobs.ignore(&row! {"subject_id" => 2, "session" => 3})
            .await
            .unwrap();
        // Populate through the queue; key (1, 2) fails.
        let maker = Square::new(vec![12]);
        let r = Populate::new(&p.stats, &maker)
            .reserve_jobs(true)
            .suppress_errors(true)
            .concurrency(2)
            .run()
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(r.success_count, 4, "{label}");
        assert_eq!(r.errors.len(), 1, "{label}");
        let progress = jobs.progress().await.unwrap();
        assert_eq!(progress["error"], 1, "{label}");
        assert_eq!(progress["ignore"], 1, "{label}");
        assert_eq!(progress["pending"], 0, "{label}");
        assert_eq!(progress["total"], 2, "{label}: completed jobs are deleted");
        let err: Row = jobs.with_status(JobStatus::Error).fetch1().await.unwrap();
        assert!(
            err["error_message"]
                .as_str()
                .unwrap_or_default()
                .contains("unlucky"),
            "{label}: {err:?}"
        );
        assert_eq!(err["session"].as_i64(), Some(2), "{label}");
        // A delayed job is not reserved before its time.
        p.session
            .insert1(&row! {"subject_id" => 1, "session" => 9, "x" => 1})
            .await
            .unwrap();
        let r = jobs
            .refresh_with(RefreshOptions {
                priority: Some(1),
                delay: 3600.0,
                ..RefreshOptions::default()
            })
            .await
            .unwrap();
        assert_eq!(r.added, 1, "{label}");
        assert!(
            !jobs
                .reserve(&row! {"subject_id" => 1, "session" => 9})
                .await
                .unwrap(),
            "{label}: scheduled an hour from now"
        );
        assert_eq!(p.stats.len().await.unwrap(), 4, "{label}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_table_error_messages_are_truncated_as_datajoint_does() {
    let long = "e".repeat(5000);
    let t = dj_schema::populate::truncate_error_message(&long);
    assert_eq!(t.len(), 2047);
    assert!(t.ends_with("...truncated"));
    assert_eq!(
        dj_schema::populate::truncate_error_message("short"),
        "short"
    );
}

/// Doubles `x` into `Result`, marking the row as made by Rust.
struct Double {
    item: Table,
    made: AtomicUsize,
}

impl Make for Double {
    async fn make(&self, key: &Row, cx: &MakeContext<'_>) -> MakeResult<()> {
        let row: Row = cx.fetch1(self.item.restrict(key.clone())).await?;
        let x = row["x"].as_i64().unwrap_or_default();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        let mut out = key.clone();
        out.insert("y".into(), (2 * x).into());
        out.insert("worker".into(), "rs".into());
        cx.insert1(cx.target(), &out).await?;
        self.made.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn python() -> Option<String> {
    match std::env::var("DJ_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "DJ_TEST_PYTHON is not set, and CI=true"
            );
            eprintln!("SKIP: DJ_TEST_PYTHON is not set");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_workers_share_one_job_queue() {
    let Some(py) = python() else { return };
    each_backend("pop_interop", |label, s| {
        let py = py.clone();
        async move {
            let url = match label {
                "postgres" => std::env::var("DJ_TEST_POSTGRES_URL").unwrap(),
                "mysql" => std::env::var("DJ_TEST_MYSQL_URL").unwrap(),
                _ => return, // SQLite: one process, direct mode
            };
            let item = s
                .declare("Item", Tier::Manual, "n : int32\n---\nx : int64")
                .await
                .unwrap();
            let result = s
                .declare(
                    "Result",
                    Tier::Computed,
                    "-> Item\n---\ny : int64\nworker : varchar(8)",
                )
                .await
                .unwrap();
            let rows: Vec<Row> = (0..200)
                .map(|n| row! {"n" => n, "x" => i64::from(n) * 3})
                .collect();
            item.insert(&rows).await.unwrap();
            // Rust declares the job table and fills the queue; Python works on it.
            let jobs = Jobs::new(&result).await.unwrap();
            assert_eq!(jobs.refresh().await.unwrap().added, 200, "{label}");
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
            let child = std::process::Command::new(&py)
                .arg(dir.join("populate_worker.py"))
                .arg(&url)
                .arg(s.name())
                .current_dir(&dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{label}: cannot start {py}: {e}"));
            // Start the Rust worker once Python holds a reservation, so both work at once.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while jobs.with_status(JobStatus::Reserved).len().await.unwrap() == 0
                && jobs.with_status(JobStatus::Pending).len().await.unwrap() == 200
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{label}: Python never started"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let maker = Double {
                item: item.clone(),
                made: AtomicUsize::new(0),
            };
            let report = Populate::new(&result, &maker)
                .reserve_jobs(true)
                .concurrency(2)
                .run()
                .await
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            let out = tokio::task::spawn_blocking(move || child.wait_with_output())
                .await
                .unwrap()
                .unwrap();
            assert!(
                out.status.success(),
                "{label}: python worker failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let py_out: serde_json::Value = serde_json::from_slice(
                out.stdout
                    .split(|b| *b == b'\n')
                    .rfind(|l| !l.is_empty())
                    .unwrap_or_default(),
            )
            .unwrap_or_else(|e| panic!("{label}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
            let py_made = py_out["made"].as_u64().unwrap() as usize;
            let rs_made = maker.made.load(Ordering::SeqCst);
            eprintln!("{label}: Rust made {rs_made}, Python made {py_made}");
            assert_eq!(rs_made, report.success_count, "{label}");
            assert_eq!(
                rs_made + py_made,
                200,
                "{label}: every key made exactly once"
            );
            assert!(py_made > 0 && rs_made > 0, "{label}: both workers worked");
            assert_eq!(result.len().await.unwrap(), 200, "{label}");
            let by_rust = result
                .restrict(row! {"worker" => "rs"})
                .len()
                .await
                .unwrap();
            assert_eq!(by_rust as usize, rs_made, "{label}");
            let progress = jobs.progress().await.unwrap();
            assert_eq!(
                progress["total"], 0,
                "{label}: every job completed: {progress:?}"
            );

            // The other way round: Python declares the job table, Rust works its queue.
            let ours = job_catalog(label, &url, s.name()).await;
            result.delete().await.unwrap();
            jobs.table().clone().drop().await.unwrap();
            let out = std::process::Command::new(&py)
                .arg(dir.join("populate_worker.py"))
                .arg(&url)
                .arg(s.name())
                .arg("refresh")
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{label}: python refresh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let theirs = job_catalog(label, &url, s.name()).await;
            assert_eq!(
                ours, theirs,
                "{label}: the job table's catalog, Rust vs DataJoint"
            );
            let jobs = Jobs::new(&result)
                .await
                .unwrap_or_else(|e| panic!("{label}: Python's job table: {e}"));
            assert_eq!(jobs.progress().await.unwrap()["pending"], 200, "{label}");
            let report = Populate::new(&result, &maker)
                .reserve_jobs(true)
                .run()
                .await
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(report.success_count, 200, "{label}");
            assert_eq!(jobs.progress().await.unwrap()["total"], 0, "{label}");
        }
    })
    .await;
}

/// The catalog of `~~result`: its comment, then per column name, type, nullability, default and
/// comment, and its indexes.
async fn job_catalog(label: &str, url: &str, schema: &str) -> Vec<String> {
    use sqlx::Row as _;
    let mut out = Vec::new();
    if label == "postgres" {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let rel = format!("\"{schema}\".\"~~result\"");
        let c: Option<String> =
            sqlx::query_scalar("SELECT obj_description($1::regclass, 'pg_class')")
                .bind(&rel)
                .fetch_one(&pool)
                .await
                .unwrap();
        out.push(format!("table comment {c:?}"));
        let rows = sqlx::query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
             pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum) \
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        )
        .bind(&rel)
        .fetch_all(&pool)
        .await
        .unwrap();
        for r in rows {
            let name: String = r.get(0);
            let ty: String = r.get(1);
            let notnull: bool = r.get(2);
            let default: Option<String> = r.get(3);
            let comment: Option<String> = r.get(4);
            out.push(format!(
                "{name} {ty} notnull={notnull} default={default:?} comment={comment:?}"
            ));
        }
        let idx: Vec<String> = sqlx::query_scalar(
            "SELECT regexp_replace(pg_get_indexdef(indexrelid), ' [^ ]+ ON ', ' ON ') FROM pg_index \
             WHERE indrelid = $1::regclass ORDER BY 1",
        )
        .bind(&rel)
        .fetch_all(&pool)
        .await
        .unwrap();
        out.extend(idx);
        pool.close().await;
    } else {
        let pool = sqlx::MySqlPool::connect(url).await.unwrap();
        let c: String = sqlx::query_scalar(
            "SELECT table_comment FROM information_schema.tables WHERE table_schema = ? AND table_name = '~~result'",
        )
        .bind(schema)
        .fetch_one(&pool)
        .await
        .unwrap();
        out.push(format!("table comment {c:?}"));
        let rows = sqlx::query(
            "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR), CAST(is_nullable AS CHAR), \
             CAST(column_default AS CHAR), CAST(column_comment AS CHAR), CAST(column_key AS CHAR) \
             FROM information_schema.columns WHERE table_schema = ? AND table_name = '~~result' \
             ORDER BY ordinal_position",
        )
        .bind(schema)
        .fetch_all(&pool)
        .await
        .unwrap();
        for r in rows {
            let v: Vec<Option<String>> = (0..6).map(|i| r.get(i)).collect();
            out.push(format!("{v:?}"));
        }
        let idx: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(CONCAT(index_name, ':', GROUP_CONCAT(column_name ORDER BY seq_in_index)) AS CHAR) \
             FROM information_schema.statistics WHERE table_schema = ? AND table_name = '~~result' \
             GROUP BY index_name ORDER BY index_name",
        )
        .bind(schema)
        .fetch_all(&pool)
        .await
        .unwrap();
        out.extend(idx);
        pool.close().await;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_metadata_columns_and_keep_completed_follow_the_config() {
    common::each_backend_with(
        "pop_meta",
        |mut c| {
            c.jobs.add_job_metadata = true;
            c.jobs.keep_completed = true;
            c.jobs.default_priority = 3;
            c
        },
        |label, s| async move {
            let p = pipeline(&s).await;
            let names: Vec<&str> = p
                .stats
                .heading()
                .attributes
                .iter()
                .map(|a| a.name.as_str())
                .collect();
            assert_eq!(
                names,
                vec![
                    "subject_id",
                    "session",
                    "square",
                    "_job_start_time",
                    "_job_duration",
                    "_job_version"
                ],
                "{label}"
            );
            let r = Populate::new(&p.stats, &Square::new(vec![]))
                .reserve_jobs(true)
                .run()
                .await
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(r.success_count, 6, "{label}");
            let meta = p
                .stats
                .query()
                .attrs([
                    "subject_id",
                    "session",
                    "_job_start_time",
                    "_job_duration",
                    "_job_version",
                ])
                .fetch_rows()
                .await
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(meta.len(), 6, "{label}");
            for m in &meta {
                assert!(!m["_job_start_time"].is_null(), "{label}: {m:?}");
                assert!(
                    m["_job_duration"].as_f64().is_some_and(|d| d >= 0.0),
                    "{label}: {m:?}"
                );
                assert_eq!(m["_job_version"].as_str(), Some(""), "{label}");
            }
            // keep_completed: success rows stay, with their duration and the configured priority.
            let jobs = Jobs::new(&p.stats).await.unwrap();
            let progress = jobs.progress().await.unwrap();
            assert_eq!(progress["success"], 6, "{label}: {progress:?}");
            let done: Vec<Row> = jobs.with_status(JobStatus::Success).fetch().await.unwrap();
            assert!(
                done.iter().all(|j| j["priority"].as_i64() == Some(3)
                    && !j["completed_time"].is_null()
                    && j["duration"].as_f64().is_some()),
                "{label}: {done:?}"
            );
            // A row deleted from the target is made again: its job goes back to pending.
            p.stats
                .restrict(row! {"subject_id" => 1, "session" => 1})
                .delete()
                .await
                .unwrap();
            let r = jobs.refresh().await.unwrap();
            assert_eq!((r.re_pended, r.added), (1, 0), "{label}: {r:?}");
            assert_eq!(jobs.progress().await.unwrap()["pending"], 1, "{label}");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_inside_make_leaves_nothing_and_its_key_is_recovered() {
    let Some(py) = python() else { return };
    each_backend("pop_kill", |label, s| {
        let py = py.clone();
        async move {
            let url = match label {
                "postgres" => std::env::var("DJ_TEST_POSTGRES_URL").unwrap(),
                "mysql" => std::env::var("DJ_TEST_MYSQL_URL").unwrap(),
                _ => return,
            };
            let item = s
                .declare("Item", Tier::Manual, "n : int32\n---\nx : int64")
                .await
                .unwrap();
            let result = s
                .declare(
                    "Result",
                    Tier::Computed,
                    "-> Item\n---\ny : int64\nworker : varchar(8)",
                )
                .await
                .unwrap();
            let rows: Vec<Row> = (0..5)
                .map(|n| row! {"n" => n, "x" => i64::from(n)})
                .collect();
            item.insert(&rows).await.unwrap();
            let jobs = Jobs::new(&result).await.unwrap();
            jobs.refresh().await.unwrap();
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
            let mut child = std::process::Command::new(&py)
                .arg(dir.join("populate_worker.py"))
                .arg(&url)
                .arg(s.name())
                .arg("hang")
                .current_dir(&dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // Wait until the worker has inserted its row inside make (uncommitted).
            let stdout = child.stdout.take().unwrap();
            let line = tokio::task::spawn_blocking(move || {
                use std::io::BufRead;
                // Skip DataJoint's banner; stop at "inserted" or at the end of its output.
                let mut reader = std::io::BufReader::new(stdout);
                loop {
                    let mut line = String::new();
                    let n = reader.read_line(&mut line)?;
                    if n == 0 || line.trim() == "inserted" {
                        return Ok::<_, std::io::Error>(line);
                    }
                }
            })
            .await
            .unwrap()
            .unwrap();
            assert_eq!(line.trim(), "inserted", "{label}");
            let reserved: Vec<Row> = jobs.with_status(JobStatus::Reserved).fetch().await.unwrap();
            assert_eq!(reserved.len(), 1, "{label}");
            assert_eq!(
                reserved[0]["pid"].as_i64(),
                Some(i64::from(child.id())),
                "{label}"
            );
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            assert_eq!(result.len().await.unwrap(), 0, "{label}: no partial rows");
            // A refresh with a short orphan timeout puts the reservation back.
            tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
            let ks = dj_schema::populate::default_key_source(&result)
                .await
                .unwrap();
            let r = jobs
                .refresh_with(RefreshOptions {
                    key_source: Some(ks.clone()),
                    orphan_timeout: Some(1.0),
                    ..RefreshOptions::default()
                })
                .await
                .unwrap();
            assert_eq!(r.orphaned, 1, "{label}");
            let maker = Double {
                item: item.clone(),
                made: AtomicUsize::new(0),
            };
            let report = Populate::new(&result, &maker)
                .reserve_jobs(true)
                .run()
                .await
                .unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(report.success_count, 5, "{label}");
            assert_eq!(result.len().await.unwrap(), 5, "{label}");
            assert_eq!(jobs.progress().await.unwrap()["total"], 0, "{label}");

            // A job table of another shape is refused, not used.
            let other = s
                .declare("Other", Tier::Computed, "-> Item\n---\nz : int64")
                .await
                .unwrap();
            let create = if label == "postgres" {
                format!(
                    "CREATE TABLE \"{}\".\"~~other\" (n integer PRIMARY KEY, status text)",
                    s.name()
                )
            } else {
                format!(
                    "CREATE TABLE `{}`.`~~other` (n int PRIMARY KEY, status text)",
                    s.name()
                )
            };
            if label == "postgres" {
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            } else {
                let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
            let err = Jobs::new(&other).await.expect_err("wrong shape");
            assert!(err.to_string().contains("another shape"), "{label}: {err}");
            let err = Populate::new(&other, &Copy)
                .reserve_jobs(true)
                .run()
                .await
                .expect_err("wrong shape");
            assert!(
                err.to_string().contains("missing columns"),
                "{label}: {err}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_without_suppress_errors_leaves_no_job_reserved() {
    each_backend("pop_stop", |label, s| async move {
        let p = pipeline(&s).await;
        let err = Populate::new(&p.stats, &Square::new(vec![12]))
            .reserve_jobs(true)
            .concurrency(3)
            .run()
            .await
            .expect_err("x = 12 fails");
        assert!(err.to_string().contains("unlucky"), "{label}: {err}");
        let progress = Jobs::new(&p.stats).await.unwrap().progress().await.unwrap();
        assert_eq!(progress["reserved"], 0, "{label}: {progress:?}");
        assert_eq!(progress["error"], 1, "{label}: {progress:?}");
        assert_eq!(
            p.stats.len().await.unwrap() + progress["pending"],
            5,
            "{label}: every other key is made or still pending: {progress:?}"
        );
    })
    .await;
}

/// Inserts the key with fixed values: the trivial make of the per-job overhead measurement.
struct Trivial;

impl Make for Trivial {
    async fn make(&self, key: &Row, cx: &MakeContext<'_>) -> MakeResult<()> {
        let mut out = key.clone();
        out.insert("y".into(), 0.into());
        out.insert("worker".into(), "rs".into());
        cx.insert1(cx.target(), &out).await?;
        Ok(())
    }
}

/// Per-job overhead (refresh, reserve, trivial make, complete) of Rust and of DataJoint 2.3.5
/// on the same tables: `cargo test -p dj-schema --test populate per_job -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn per_job_overhead_against_datajoint() {
    let Some(py) = python() else { return };
    const N: i32 = 300;
    each_backend("pop_bench", |label, s| {
        let py = py.clone();
        async move {
            let url = match label {
                "postgres" => std::env::var("DJ_TEST_POSTGRES_URL").unwrap(),
                "mysql" => std::env::var("DJ_TEST_MYSQL_URL").unwrap(),
                _ => return,
            };
            let item = s
                .declare("Item", Tier::Manual, "n : int32\n---\nx : int64")
                .await
                .unwrap();
            let result = s
                .declare(
                    "Result",
                    Tier::Computed,
                    "-> Item\n---\ny : int64\nworker : varchar(8)",
                )
                .await
                .unwrap();
            let rows: Vec<Row> = (0..N).map(|n| row! {"n" => n, "x" => 1}).collect();
            item.insert(&rows).await.unwrap();
            Jobs::new(&result).await.unwrap();
            let start = std::time::Instant::now();
            let r = Populate::new(&result, &Trivial)
                .reserve_jobs(true)
                .run()
                .await
                .unwrap();
            let rust = start.elapsed().as_secs_f64();
            assert_eq!(r.success_count, N as usize);
            result.delete().await.unwrap();
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
            let out = std::process::Command::new(&py)
                .arg(dir.join("populate_worker.py"))
                .arg(&url)
                .arg(s.name())
                .arg("bench")
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let last = out
                .stdout
                .split(|b| *b == b'\n')
                .rfind(|l| !l.is_empty())
                .unwrap_or_default();
            let v: serde_json::Value = serde_json::from_slice(last).unwrap();
            let python = v["seconds"].as_f64().unwrap();
            assert_eq!(v["success_count"].as_u64(), Some(N as u64));
            eprintln!(
                "{label}: {N} jobs: Rust {:.2} ms/job, DataJoint {:.2} ms/job, ratio {:.1}x",
                rust * 1000.0 / f64::from(N),
                python * 1000.0 / f64::from(N),
                python / rust
            );
        }
    })
    .await;
}

/// The body of a worker process for the many-workers test: this test binary runs itself with
/// `DJ_POPULATE_WORKER=<backend> <url> <schema>` and this test selected; it populates `Result`
/// through the job table and prints `made <n>`.
#[test]
#[ignore = "run as a child process by many_worker_processes_share_one_queue"]
fn populate_worker_process() {
    let Ok(spec) = std::env::var("DJ_POPULATE_WORKER") else {
        return;
    };
    let parts: Vec<&str> = spec.splitn(3, ' ').collect();
    let [backend, url, schema] = parts[..] else {
        panic!("DJ_POPULATE_WORKER: {spec}")
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = dj_config::Config::default();
        config.database.backend = if backend == "postgres" {
            dj_config::DatabaseBackend::Postgresql
        } else {
            dj_config::DatabaseBackend::Mysql
        };
        config.database.url = Some(dj_config::Secret::new(url));
        let conn = Connection::open(&config).await.unwrap();
        let s = conn.existing_schema(schema).await.unwrap();
        let item = s.table("item").await.unwrap();
        let result = s.table("__result").await.unwrap();
        let report = if std::env::var("DJ_POPULATE_WORKER_TRIVIAL").is_ok() {
            Populate::new(&result, &Trivial)
                .reserve_jobs(true)
                .refresh(false)
                .order(Order::Random)
                .run()
                .await
                .unwrap()
        } else {
            let maker = Double {
                item,
                made: AtomicUsize::new(0),
            };
            let report = Populate::new(&result, &maker)
                .reserve_jobs(true)
                .refresh(false)
                .order(Order::Random)
                .run()
                .await
                .unwrap();
            assert_eq!(report.success_count, maker.made.load(Ordering::SeqCst));
            report
        };
        println!("made {}", report.success_count);
        conn.close().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_worker_processes_share_one_queue() {
    let Some(py) = python() else { return };
    each_backend("pop_many", |label, s| {
        let py = py.clone();
        async move {
            let url = match label {
                "postgres" => std::env::var("DJ_TEST_POSTGRES_URL").unwrap(),
                "mysql" => std::env::var("DJ_TEST_MYSQL_URL").unwrap(),
                _ => return,
            };
            let item = s
                .declare("Item", Tier::Manual, "n : int32\n---\nx : int64")
                .await
                .unwrap();
            let result = s
                .declare(
                    "Result",
                    Tier::Computed,
                    "-> Item\n---\ny : int64\nworker : varchar(8)",
                )
                .await
                .unwrap();
            let rows: Vec<Row> = (0..200).map(|n| row! {"n" => n, "x" => 1}).collect();
            item.insert(&rows).await.unwrap();
            let jobs = Jobs::new(&result).await.unwrap();
            assert_eq!(jobs.refresh().await.unwrap().added, 200, "{label}");
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
            let exe = std::env::current_exe().unwrap();
            let mut children = Vec::new();
            for _ in 0..4 {
                children.push(
                    std::process::Command::new(&exe)
                        .args([
                            "--exact",
                            "populate_worker_process",
                            "--ignored",
                            "--nocapture",
                        ])
                        .env("DJ_POPULATE_WORKER", format!("{label} {url} {}", s.name()))
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap(),
                );
            }
            let python_child = std::process::Command::new(&py)
                .arg(dir.join("populate_worker.py"))
                .arg(&url)
                .arg(s.name())
                .current_dir(&dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let outputs = tokio::task::spawn_blocking(move || {
                let rust: Vec<_> = children
                    .into_iter()
                    .map(|c| c.wait_with_output().unwrap())
                    .collect();
                (rust, python_child.wait_with_output().unwrap())
            })
            .await
            .unwrap();
            let mut made = Vec::new();
            for out in &outputs.0 {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{label}: a Rust worker failed: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let n: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("made "))
                    .unwrap_or_else(|| panic!("{label}: no count in {text}"))
                    .trim()
                    .parse()
                    .unwrap();
                made.push(n);
            }
            let py_out = &outputs.1;
            assert!(
                py_out.status.success(),
                "{label}: the Python worker failed: {}",
                String::from_utf8_lossy(&py_out.stderr)
            );
            let last = py_out
                .stdout
                .split(|b| *b == b'\n')
                .rfind(|l| !l.is_empty())
                .unwrap_or_default();
            let v: serde_json::Value = serde_json::from_slice(last).unwrap();
            let py_made = v["made"].as_u64().unwrap() as usize;
            eprintln!("{label}: Rust workers made {made:?}, Python made {py_made}");
            assert_eq!(
                made.iter().sum::<usize>() + py_made,
                200,
                "{label}: every key made exactly once"
            );
            assert_eq!(result.len().await.unwrap(), 200, "{label}");
            assert_eq!(
                result
                    .restrict(row! {"worker" => "py"})
                    .len()
                    .await
                    .unwrap() as usize,
                py_made,
                "{label}"
            );
            let progress = jobs.progress().await.unwrap();
            assert_eq!(
                progress["total"], 0,
                "{label}: every job done: {progress:?}"
            );
        }
    })
    .await;
}

/// Throughput of 1, 2, 4 and 8 Rust worker processes on a trivial make through one job table:
/// `cargo test -p dj-schema --test populate worker_scaling -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn worker_scaling() {
    const N: i32 = 400;
    each_backend("pop_scale", |label, s| async move {
        let url = match label {
            "postgres" => std::env::var("DJ_TEST_POSTGRES_URL").unwrap(),
            "mysql" => std::env::var("DJ_TEST_MYSQL_URL").unwrap(),
            _ => return,
        };
        let item = s
            .declare("Item", Tier::Manual, "n : int32\n---\nx : int64")
            .await
            .unwrap();
        let result = s
            .declare(
                "Result",
                Tier::Computed,
                "-> Item\n---\ny : int64\nworker : varchar(8)",
            )
            .await
            .unwrap();
        let rows: Vec<Row> = (0..N).map(|n| row! {"n" => n, "x" => 1}).collect();
        item.insert(&rows).await.unwrap();
        let jobs = Jobs::new(&result).await.unwrap();
        let exe = std::env::current_exe().unwrap();
        let mut base = None;
        for workers in [1, 2, 4, 8] {
            result.delete().await.unwrap();
            jobs.refresh().await.unwrap();
            let start = std::time::Instant::now();
            let children: Vec<_> = (0..workers)
                .map(|_| {
                    std::process::Command::new(&exe)
                        .args([
                            "--exact",
                            "populate_worker_process",
                            "--ignored",
                            "--nocapture",
                        ])
                        .env("DJ_POPULATE_WORKER", format!("{label} {url} {}", s.name()))
                        .env("DJ_POPULATE_WORKER_TRIVIAL", "1")
                        .stdout(std::process::Stdio::null())
                        .spawn()
                        .unwrap()
                })
                .collect();
            tokio::task::spawn_blocking(move || {
                for mut c in children {
                    assert!(c.wait().unwrap().success());
                }
            })
            .await
            .unwrap();
            let secs = start.elapsed().as_secs_f64();
            assert_eq!(result.len().await.unwrap(), N as u64);
            let rate = f64::from(N) / secs;
            let base = *base.get_or_insert(rate);
            eprintln!(
                "{label}: {workers} workers: {rate:.0} jobs/s ({:.1}x one worker)",
                rate / base
            );
        }
    })
    .await;
}

/// Writes `cx.args()["y"]` into `Result`.
struct FromArgs;

impl Make for FromArgs {
    async fn make(&self, key: &Row, cx: &MakeContext<'_>) -> MakeResult<()> {
        let mut out = key.clone();
        out.insert("y".into(), cx.args()["y"].as_i64().unwrap_or(-1).into());
        out.insert("worker".into(), "rs".into());
        cx.insert1(cx.target(), &out).await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_arguments_and_job_priorities() {
    each_backend("pop_args", |label, s| async move {
        let item = s
            .declare("Item", Tier::Manual, "n : int32\n---\nx : int64")
            .await
            .unwrap();
        let result = s
            .declare(
                "Result",
                Tier::Computed,
                "-> Item\n---\ny : int64\nworker : varchar(8)",
            )
            .await
            .unwrap();
        let rows: Vec<Row> = (0..4).map(|n| row! {"n" => n, "x" => 1}).collect();
        item.insert(&rows).await.unwrap();
        // Make arguments reach every make.
        let r = Populate::new(&result, &FromArgs)
            .restrict(row! {"n" => 0})
            .make_args(serde_json::json!({"y": 42}))
            .run()
            .await
            .unwrap();
        assert_eq!(r.success_count, 1, "{label}");
        let made: Row = result.restrict(row! {"n" => 0}).fetch1().await.unwrap();
        assert_eq!(made["y"].as_i64(), Some(42), "{label}");
        // Priorities: lower runs first; a populate with a priority takes only jobs up to it.
        let jobs = Jobs::new(&result).await.unwrap();
        for (n, p) in [(1, 9), (2, 1), (3, 5)] {
            jobs.refresh_with(RefreshOptions {
                restrictions: vec![row! {"n" => n}.into()],
                priority: Some(p),
                delay: -1.0,
                ..RefreshOptions::default()
            })
            .await
            .unwrap();
        }
        let r = Populate::new(&result, &FromArgs)
            .reserve_jobs(true)
            .refresh(false)
            .max_calls(1)
            .run()
            .await
            .unwrap();
        assert_eq!(r.success_count, 1, "{label}");
        assert!(
            result.restrict(row! {"n" => 2}).exists().await.unwrap(),
            "{label}: priority 1 first"
        );
        let r = Populate::new(&result, &FromArgs)
            .reserve_jobs(true)
            .refresh(false)
            .priority(5)
            .run()
            .await
            .unwrap();
        assert_eq!(r.success_count, 1, "{label}: only priorities up to 5");
        assert!(
            result.restrict(row! {"n" => 3}).exists().await.unwrap(),
            "{label}"
        );
        assert!(
            !result.restrict(row! {"n" => 1}).exists().await.unwrap(),
            "{label}"
        );
        assert_eq!(jobs.progress().await.unwrap()["pending"], 1, "{label}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_versions_follow_jobs_version_method() {
    use dj_config::VersionMethod;
    // The tests run in the repository's work tree: git gives its commit.
    let expected = dj_schema::populate::job_version(VersionMethod::Git);
    let in_git = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert_eq!(!expected.is_empty(), in_git, "{expected:?}");
    assert_eq!(dj_schema::populate::job_version(VersionMethod::None), "");
    common::each_backend_with(
        "pop_version",
        |mut c| {
            c.jobs.add_job_metadata = true;
            c.jobs.keep_completed = true;
            c.jobs.version_method = VersionMethod::Git;
            c
        },
        |label, s| {
            let expected = expected.clone();
            async move {
                let p = pipeline(&s).await;
                // Direct mode for subject 1, the job queue for subject 2.
                let r = Populate::new(&p.stats, &Square::new(vec![]))
                    .restrict(row! {"subject_id" => 1})
                    .run()
                    .await
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                assert_eq!(r.success_count, 3, "{label}");
                let r = Populate::new(&p.stats, &Square::new(vec![]))
                    .reserve_jobs(true)
                    .run()
                    .await
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                assert_eq!(r.success_count, 3, "{label}");
                let meta = p
                    .stats
                    .query()
                    .attrs(["subject_id", "session", "_job_version"])
                    .fetch_rows()
                    .await
                    .unwrap();
                assert_eq!(meta.len(), 6, "{label}");
                for m in &meta {
                    assert_eq!(
                        m["_job_version"].as_str(),
                        Some(expected.as_str()),
                        "{label}: {m:?}"
                    );
                }
                let jobs = Jobs::new(&p.stats).await.unwrap();
                assert_eq!(jobs.version().await, expected, "{label}");
                let done: Vec<Row> = jobs.with_status(JobStatus::Success).fetch().await.unwrap();
                assert_eq!(done.len(), 3, "{label}");
                for j in &done {
                    assert_eq!(j["subject_id"].as_i64(), Some(2), "{label}: {j:?}");
                    assert_eq!(
                        j["version"].as_str(),
                        Some(expected.as_str()),
                        "{label}: {j:?}"
                    );
                }
            }
        },
    )
    .await;
}

/// A subscriber that keeps the fields of every `make` span.
#[derive(Default)]
struct MakeSpans {
    next: std::sync::atomic::AtomicU64,
    spans: std::sync::Mutex<std::collections::BTreeMap<u64, Vec<(String, String)>>>,
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

/// The subscriber handed to `tracing`, sharing its records with the test.
struct Recorder(Arc<MakeSpans>);

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let id = self.0.next.fetch_add(1, Ordering::SeqCst) + 1;
        if span.metadata().name() == "make" {
            let mut fields = Vec::new();
            span.record(&mut Fields(&mut fields));
            self.0.spans.lock().unwrap().insert(id, fields);
        }
        tracing::span::Id::from_u64(id)
    }
    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        if let Some(fields) = self.0.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl MakeSpans {
    /// `(key, outcome, has elapsed_ms)` of every `make` span, by key.
    fn outcomes(&self) -> Vec<(String, String, bool)> {
        let mut out: Vec<(String, String, bool)> = self
            .spans
            .lock()
            .unwrap()
            .values()
            .map(|f| {
                let get = |n: &str| {
                    f.iter()
                        .rev()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                (get("key"), get("outcome"), !get("elapsed_ms").is_empty())
            })
            .collect();
        out.sort();
        out
    }
}

/// Spans per job with their outcome, several progress callbacks, the progress bar, and
/// `populate::progress` without a make (SQLite, in this thread, so that the subscriber set
/// for it sees every span).
#[tokio::test]
async fn each_job_has_a_span_with_its_outcome_and_progress_is_reported() {
    let spans = std::sync::Arc::new(MakeSpans::default());
    let _guard = tracing::subscriber::set_default(Recorder(spans.clone()));
    let mut config = dj_config::Config::default();
    config.database.path = Some(":memory:".into());
    let conn = Connection::open(&config).await.unwrap();
    let s = conn.schema("pop_spans").await.unwrap();
    let item = s
        .declare("Item", Tier::Manual, "n : int32\n---\nx : int64")
        .await
        .unwrap();
    let out = s
        .declare("Out", Tier::Computed, "-> Item\n---\ny : int64")
        .await
        .unwrap();
    let rows: Vec<Row> = (1..=4)
        .map(|n| row! {"n" => n, "x" => i64::from(n)})
        .collect();
    item.insert(&rows).await.unwrap();

    struct FailOn3;
    impl Make for FailOn3 {
        async fn make(&self, key: &Row, cx: &MakeContext<'_>) -> MakeResult<()> {
            if key["n"].as_i64() == Some(3) {
                return Err("three is not allowed".into());
            }
            let mut r = key.clone();
            r.insert("y".into(), 1.into());
            cx.insert1(cx.target(), &r).await?;
            Ok(())
        }
    }

    // Without suppress_errors the run stops at 3 and 4 is not started.
    let err = Populate::new(&out, &FailOn3).run().await.unwrap_err();
    assert!(err.to_string().contains("three is not allowed"), "{err}");
    let table = out.full_name();
    let want = |o: &[(i32, &str, bool)]| -> Vec<(String, String, bool)> {
        o.iter()
            .map(|(n, outcome, timed)| (format!("{{n: {n}}}"), outcome.to_string(), *timed))
            .collect()
    };
    assert_eq!(
        spans.outcomes(),
        want(&[
            (1, "made", true),
            (2, "made", true),
            (3, "error", true),
            (4, "not_started", false)
        ])
    );
    assert!(
        spans
            .spans
            .lock()
            .unwrap()
            .values()
            .all(|f| f.iter().any(|(k, v)| k == "table" && *v == table)),
        "every span names the table"
    );
    assert_eq!(dj_schema::populate::progress(&out).await.unwrap(), (2, 4));
    spans.spans.lock().unwrap().clear();

    // Two callbacks both see every key; with suppress_errors, 4 is made and 3 fails again.
    let a = Arc::new(AtomicUsize::new(0));
    let b = Arc::new(AtomicUsize::new(0));
    let (a2, b2) = (a.clone(), b.clone());
    let run = Populate::new(&out, &FailOn3)
        .suppress_errors(true)
        .on_progress(move |p| {
            assert_eq!(p.total, 2);
            a2.fetch_add(1, Ordering::SeqCst);
        })
        .on_progress(move |p| {
            if p.ok {
                b2.fetch_add(1, Ordering::SeqCst);
            }
        });
    #[cfg(feature = "progress-bar")]
    let run = run.progress_bar(true);
    assert_eq!(run.progress().await.unwrap(), (2, 4));
    let report = run.run().await.unwrap();
    assert_eq!((report.success_count, report.errors.len()), (1, 1));
    assert_eq!((a.load(Ordering::SeqCst), b.load(Ordering::SeqCst)), (2, 1));
    assert_eq!(
        spans.outcomes(),
        want(&[(3, "error", true), (4, "made", true)])
    );
    assert_eq!(dj_schema::populate::progress(&out).await.unwrap(), (1, 4));
    // A Manual table has no progress.
    assert!(dj_schema::populate::progress(&item).await.is_err());
    conn.close().await;
}
