//! Transactions for users, on SQLite, PostgreSQL and MariaDB: inserts, updates and deletes across
//! tables that commit or roll back together, isolation from other connections until commit, and
//! objects written before rows (a rollback leaves at most unreferenced objects).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{each_backend, each_backend_with};
use dj_codec_blob::Item;
use dj_codec_hash as _;
use dj_config::StoreSpec;
use dj_schema::{Connection, Error, Restriction, Schema, Table, Tier, row};
use dj_store_file as _;

const SUBJECT: &str = "subject_id : int32\n---\nname : varchar(32)";
const SESSION: &str = "-> Subject\nsession : int16\n---\nnote = '' : varchar(64)";

async fn declare(s: &Schema) -> (Table, Table) {
    let subject = s.declare("Subject", Tier::Manual, SUBJECT).await.unwrap();
    let session = s.declare("Session", Tier::Manual, SESSION).await.unwrap();
    (subject, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_updates_and_deletes_across_tables_commit_together() {
    each_backend("tx_commit", |label, s| async move {
        let (subject, session) = declare(&s).await;
        subject
            .insert1(&row! { "subject_id" => 9, "name" => "Old" })
            .await
            .unwrap();
        let conn = s.connection().clone();
        let n = conn
            .transaction(async |tx| {
                tx.insert(
                    &subject,
                    &[
                        row! { "subject_id" => 1, "name" => "Ann" },
                        row! { "subject_id" => 2, "name" => "Bob" },
                    ],
                )
                .await?;
                tx.insert1(&session, &row! { "subject_id" => 1, "session" => 1 })
                    .await?;
                tx.update1(&subject, &row! { "subject_id" => 2, "name" => "Robert" })
                    .await?;
                tx.delete(&subject.restrict(row! { "subject_id" => 9 }))
                    .await
            })
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(n, 1, "{label}: the delete inside reports its count");
        assert_eq!(subject.len().await.unwrap(), 2, "{label}");
        assert_eq!(session.len().await.unwrap(), 1, "{label}");
        let bob: dj_schema::Row = subject
            .restrict(row! { "subject_id" => 2 })
            .fetch1()
            .await
            .unwrap();
        assert_eq!(bob["name"], "Robert".into(), "{label}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_statement_rolls_back_everything_before_it() {
    each_backend("tx_fail", |label, s| async move {
        let (subject, session) = declare(&s).await;
        subject
            .insert1(&row! { "subject_id" => 9, "name" => "Kept" })
            .await
            .unwrap();
        let conn = s.connection().clone();
        let err = conn
            .transaction(async |tx| {
                tx.insert1(&subject, &row! { "subject_id" => 1, "name" => "Ann" })
                    .await?;
                tx.delete(&subject.restrict(row! { "subject_id" => 9 }))
                    .await?;
                // No subject 3: the foreign key refuses this row.
                tx.insert1(&session, &row! { "subject_id" => 3, "session" => 1 })
                    .await
            })
            .await
            .expect_err(label);
        assert!(
            err.to_string().contains("session"),
            "{label}: the error names the table: {err}"
        );
        let names: Vec<String> = subject
            .query()
            .fetch::<dj_schema::Row>()
            .await
            .unwrap()
            .into_iter()
            .map(|r| format!("{:?}", r["name"]))
            .collect();
        assert_eq!(names.len(), 1, "{label}: {names:?}");
        assert!(names[0].contains("Kept"), "{label}: {names:?}");
        assert_eq!(session.len().await.unwrap(), 0, "{label}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_of_the_closure_rolls_back_and_is_returned() {
    each_backend("tx_user_err", |label, s| async move {
        let (subject, _) = declare(&s).await;
        let conn = s.connection().clone();
        let err = conn
            .transaction(async |tx| -> dj_schema::Result<()> {
                tx.insert1(&subject, &row! { "subject_id" => 1, "name" => "Ann" })
                    .await?;
                Err(Error::Refused {
                    table: "mine".into(),
                    message: "changed my mind".into(),
                })
            })
            .await
            .expect_err(label);
        assert!(
            err.to_string().contains("changed my mind"),
            "{label}: {err}"
        );
        assert_eq!(subject.len().await.unwrap(), 0, "{label}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_connections_see_the_rows_only_after_commit() {
    each_backend("tx_isolation", |label, s| async move {
        let (subject, _) = declare(&s).await;
        let conn = s.connection().clone();
        let tx = conn.begin().await.unwrap();
        tx.insert1(&subject, &row! { "subject_id" => 1, "name" => "Ann" })
            .await
            .unwrap();
        // Read through the pool: another connection than the transaction's.
        assert_eq!(
            subject.len().await.unwrap(),
            0,
            "{label}: uncommitted rows leak"
        );
        tx.commit().await.unwrap();
        assert_eq!(subject.len().await.unwrap(), 1, "{label}");

        // Dropping a transaction rolls it back; so does rollback().
        let tx = conn.begin().await.unwrap();
        tx.insert1(&subject, &row! { "subject_id" => 2, "name" => "Bob" })
            .await
            .unwrap();
        drop(tx);
        let tx = conn.begin().await.unwrap();
        tx.insert1(&subject, &row! { "subject_id" => 3, "name" => "Cy" })
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(subject.len().await.unwrap(), 1, "{label}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_another_connection_is_refused() {
    each_backend("tx_other_conn", |label, s| async move {
        let (subject, _) = declare(&s).await;
        let other = Connection::open(s.connection().config()).await.unwrap();
        let tx = other.begin().await.unwrap();
        let err = tx
            .insert1(&subject, &row! { "subject_id" => 1, "name" => "Ann" })
            .await
            .expect_err(label);
        assert!(
            err.to_string().contains("another connection"),
            "{label}: {err}"
        );
        drop(tx);
        other.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_written_before_rows_and_a_rollback_leaves_only_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let adjust = |mut c: dj_config::Config| {
        c.stores.specs.insert(
            "main".into(),
            StoreSpec::new("main", "file", store_dir.to_string_lossy()),
        );
        c.stores.default = Some("main".into());
        c
    };
    each_backend_with("tx_objects", adjust, |label, s| {
        let store_dir = store_dir.clone();
        async move {
            let (subject, _) = declare(&s).await;
            let trace = s
                .declare(
                    "Trace",
                    Tier::Manual,
                    "-> Subject\ntrace_id : int16\n---\nsamples : <blob@>",
                )
                .await
                .unwrap();
            let conn = s.connection().clone();
            let before = common::files_under(&store_dir).len();
            let samples: Vec<f64> = (0..5000).map(|i| f64::from(i) * 0.5).collect();
            let err = conn
                .transaction(async |tx| {
                    tx.insert1(&subject, &row! { "subject_id" => 1, "name" => "Ann" })
                        .await?;
                    tx.insert1(
                        &trace,
                        &row! {
                            "subject_id" => 1,
                            "trace_id" => 1,
                            "samples" => dj_core::value::Value::domain(Item::from(samples.clone())),
                        },
                    )
                    .await?;
                    // Then a duplicate key fails the transaction.
                    tx.insert1(&subject, &row! { "subject_id" => 1, "name" => "Dup" })
                        .await
                })
                .await
                .expect_err(label);
            assert!(err.to_string().contains("subject"), "{label}: {err}");
            assert_eq!(trace.len().await.unwrap(), 0, "{label}");
            assert_eq!(subject.len().await.unwrap(), 0, "{label}");
            assert!(
                common::files_under(&store_dir).len() > before,
                "{label}: the object was written before the rows (it stays as an orphan for GC)"
            );

            // The same inserts commit, and the row reads its object back.
            conn.transaction(async |tx| {
                tx.insert1(&subject, &row! { "subject_id" => 1, "name" => "Ann" })
                    .await?;
                tx.insert1(
                    &trace,
                    &row! {
                        "subject_id" => 1,
                        "trace_id" => 1,
                        "samples" => dj_core::value::Value::domain(Item::from(samples.clone())),
                    },
                )
                .await
            })
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
            let row: dj_schema::Row = trace
                .restrict(Restriction::from(row! { "trace_id" => 1 }))
                .fetch1()
                .await
                .unwrap();
            assert!(!row["samples"].is_null(), "{label}");
        }
    })
    .await;
}
