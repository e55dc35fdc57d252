//! Definitions against hostile text, identifier limits and `describe()` round trips, each run on
//! SQLite, PostgreSQL and MariaDB. The catalog is inspected through a separate sqlx connection,
//! not through dj-schema's own catalog code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::BTreeSet;

use common::each_backend;
use dj_core::typespec::{CoreType, TypeSpec};
use dj_core::value::Value;
use dj_schema::Backend;
use dj_schema::definition::{DefItem, parse};
use dj_schema::{Row, Schema, Tier, row};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};

/// A second, plain connection to the same database.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
    My(sqlx::MySqlPool),
}

impl Raw {
    async fn open(s: &Schema) -> Raw {
        let c = s.connection().config();
        match s.connection().backend() {
            Backend::Sqlite => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(c.database.path.clone().unwrap());
                Raw::Sqlite(
                    sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(1)
                        .connect_with(opts)
                        .await
                        .unwrap(),
                )
            }
            Backend::Postgres => Raw::Pg(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(c.database.url.as_ref().unwrap().expose())
                    .await
                    .unwrap(),
            ),
            Backend::MySql => Raw::My(
                sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(1)
                    .connect(c.database.url.as_ref().unwrap().expose())
                    .await
                    .unwrap(),
            ),
        }
    }

    async fn close(self) {
        match self {
            Raw::Sqlite(p) => p.close().await,
            Raw::Pg(p) => p.close().await,
            Raw::My(p) => p.close().await,
        }
    }

    /// One text column of a query with text parameters (`?` placeholders; `$n` on PostgreSQL).
    async fn texts(&self, sql: &str, args: &[&str]) -> Vec<String> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            Raw::Sqlite(p) => {
                let mut q = sqlx::query_scalar::<_, String>(sql);
                for a in args {
                    q = q.bind(a.to_string());
                }
                q.fetch_all(p).await.unwrap()
            }
            Raw::Pg(p) => {
                let mut q = sqlx::query_scalar::<_, String>(sql);
                for a in args {
                    q = q.bind(a.to_string());
                }
                q.fetch_all(p).await.unwrap()
            }
            Raw::My(p) => {
                let mut q = sqlx::query_scalar::<_, String>(sql);
                for a in args {
                    q = q.bind(a.to_string());
                }
                q.fetch_all(p).await.unwrap()
            }
        }
    }

    /// Every table of the schema, hidden ones included (SQLite: every table of the file).
    async fn tables(&self, schema: &str) -> BTreeSet<String> {
        let rows = match self {
            Raw::Sqlite(_) => {
                self.texts("SELECT name FROM sqlite_master WHERE type = 'table'", &[])
                    .await
            }
            Raw::Pg(_) => {
                self.texts(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                    &[schema],
                )
                .await
            }
            Raw::My(_) => {
                self.texts(
                    "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = ?",
                    &[schema],
                )
                .await
            }
        };
        rows.into_iter().collect()
    }

    /// Whether a table of this name exists in any schema of the database.
    async fn table_anywhere(&self, name: &str) -> bool {
        let rows = match self {
            Raw::Sqlite(_) => {
                self.texts(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?",
                    &[&format!("%{name}%")],
                )
                .await
            }
            Raw::Pg(_) => {
                self.texts(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_name = $1",
                    &[name],
                )
                .await
            }
            Raw::My(_) => {
                self.texts(
                    "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_name = ?",
                    &[name],
                )
                .await
            }
        };
        !rows.is_empty()
    }

    /// The column names of a table, in order.
    async fn columns(&self, schema: &str, table: &str) -> Vec<String> {
        match self {
            Raw::Sqlite(_) => {
                self.texts(
                    "SELECT name FROM pragma_table_info(?) ORDER BY cid",
                    &[&format!("{schema}.{table}")],
                )
                .await
            }
            Raw::Pg(_) => {
                self.texts(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                    &[schema, table],
                )
                .await
            }
            Raw::My(_) => {
                self.texts(
                    "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                     WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                    &[schema, table],
                )
                .await
            }
        }
    }

    /// The number of rows of a table, counted by the server.
    async fn count(&self, qualified: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {qualified}");
        match self {
            Raw::Sqlite(p) => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .fetch_one(p)
                .await
                .unwrap(),
            Raw::Pg(p) => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .fetch_one(p)
                .await
                .unwrap(),
            Raw::My(p) => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .fetch_one(p)
                .await
                .unwrap(),
        }
    }
}

/// The quoted, qualified name of a table as each backend's SQL writes it.
fn qualified(backend: Backend, schema: &str, table: &str) -> String {
    match backend {
        Backend::Sqlite => format!("\"{schema}.{table}\""),
        Backend::Postgres => format!("\"{schema}\".\"{table}\""),
        Backend::MySql => format!("`{schema}`.`{table}`"),
    }
}

/// The name a table has in `Raw::tables` (SQLite: one identifier `schema.table`).
fn listed(backend: Backend, schema: &str, table: &str) -> String {
    match backend {
        Backend::Sqlite => format!("{schema}.{table}"),
        _ => table.to_string(),
    }
}

/// The message of an error, asserting that it names `words`.
fn says(e: &dj_schema::Error, words: &[&str]) {
    let m = e.to_string();
    for w in words {
        assert!(m.contains(w), "`{w}` missing from: {m}");
    }
}

/// A victim table with one row, for injected statements to aim at.
async fn victim(s: &Schema) -> String {
    let t = s
        .declare("Victim", Tier::Manual, "vid : int32")
        .await
        .unwrap();
    t.insert1(&row! {"vid" => 1}).await.unwrap();
    qualified(s.connection().backend(), s.name(), "victim")
}

// ---------------------------------------------------------------------------------------------
// Defect 3: SQL injection through definitions.
// ---------------------------------------------------------------------------------------------

/// The two native types of the issue: rejected, with the attribute and the line named, and
/// nothing run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_native_types_are_rejected() {
    each_backend("inj_native", |label, s| async move {
        let backend = s.connection().backend();
        let victim = victim(&s).await;
        let raw = Raw::open(&s).await;
        let pwn = format!("pwn_{}", s.name());
        let before = raw.tables(s.name()).await;
        let hostile = [
            format!(
                "a : int32\n---\nb : int ); DROP TABLE {victim}; CREATE TABLE {pwn} (a int, q decimal(5,2)"
            ),
            format!(
                "a : int32\n---\nb : int ); CREATE TABLE {} (a int, q decimal(5,2)",
                qualified(backend, s.name(), &pwn)
            ),
            "a : int32\n---\nb : int unsigned, zz int".to_string(),
            "a : int32\n---\nb : int unsigned -- , zz int".to_string(),
            format!("a : int32\n---\nb : float(8,3); DELETE FROM {victim}; --"),
        ];
        for (i, def) in hostile.iter().enumerate() {
            let e = s
                .declare(&format!("Hostile{i}"), Tier::Manual, def)
                .await
                .map(|_| ())
                .expect_err(&format!("{label}: accepted {def}"));
            says(&e, &["attribute `b`", "line 3"]);
            assert_eq!(raw.tables(s.name()).await, before, "{label}: {def}");
            assert_eq!(raw.count(&victim).await, 1, "{label}: {def}");
            assert!(!raw.table_anywhere(&pwn).await, "{label}: {def}");
        }
        // NUL in a default, a comment, an enum value, the table comment: errors, not dropped.
        for def in [
            "a : int32\n---\nb = \"x\0y\" : varchar(8)",
            "a : int32\n---\nb : int32  # note\0",
            "a : int32\n---\nb : enum('x\0', 'y')",
        ] {
            let e = s
                .declare("NulCase", Tier::Manual, def)
                .await
                .map(|_| ())
                .expect_err(&format!("{label}: accepted {def:?}"));
            says(&e, &["attribute `b`", "line 3", "NUL"]);
        }
        let e = s
            .declare("NulCase", Tier::Manual, "# about\0\na : int32")
            .await
            .map(|_| ())
            .expect_err(label);
        says(&e, &["line 1", "NUL"]);
        assert_eq!(raw.tables(s.name()).await, before, "{label}");
        // Legitimate native types still declare (MySQL-only ones only on MySQL).
        let natives = match backend {
            Backend::MySql => {
                "a : int32\n---\nb : int unsigned\nc : tinyint(3) unsigned\nd : float(8,3)\ne : double\nf : mediumblob\ng : text\nh = 0 : bigint unsigned zerofill"
            }
            Backend::Postgres => {
                "a : int32\n---\nb : integer\nc : real\nd : text\ne : time\nf : numeric(8,2)\ng : numeric"
            }
            Backend::Sqlite => "a : int32\n---\nb : int\nc : real\nd : text\ne : blob",
        };
        let t = s.declare("Natives", Tier::Manual, natives).await.unwrap();
        // What the catalog gives back (a native type that is a core type reads as that core
        // type) declares again.
        let fresh = s.table(t.name()).await.unwrap().describe();
        let again = s
            .declare("NativesAgain", Tier::Manual, &fresh)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}\n{fresh}"));
        assert_eq!(
            s.table(again.name()).await.unwrap().describe(),
            fresh,
            "{label}"
        );
        raw.close().await;
    })
    .await;
}

/// Backslashes and quotes in enum values, defaults and comments are data: they reach the catalog
/// unchanged (on MySQL a backslash escapes in string literals, so they must be doubled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backslashes_and_quotes_are_data() {
    each_backend("inj_backslash", |label, s| async move {
        let victim = victim(&s).await;
        let raw = Raw::open(&s).await;
        let def = "# a \\ table 'comment' \"x\" \\\n\
                   k : enum('a\\', 'b''c', 'd\"e', '\\')  # key \\\n\
                   ---\n\
                   v = \"it's \\\" : varchar(20)  # ends in \\\n\
                   w = 'q\\' : varchar(20)  # 'quoted' \\' \"x\"";
        let t = s
            .declare("Slashes", Tier::Manual, def)
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let fresh = s.table(t.name()).await.unwrap();
        let h = fresh.heading();
        assert_eq!(h.comment, "a \\ table 'comment' \"x\" \\", "{label}");
        let k = h.attribute("k").unwrap();
        assert_eq!(
            k.spec,
            TypeSpec::Core(CoreType::Enum(vec![
                "a\\".into(),
                "b'c".into(),
                "d\"e".into(),
                "\\".into()
            ])),
            "{label}"
        );
        assert_eq!(k.comment, "key \\", "{label}");
        assert_eq!(h.attribute("v").unwrap().comment, "ends in \\", "{label}");
        assert_eq!(
            h.attribute("w").unwrap().comment,
            "'quoted' \\' \"x\"",
            "{label}"
        );
        for (i, v) in ["a\\", "b'c", "d\"e", "\\"].iter().enumerate() {
            fresh.insert1(&row! {"k" => *v}).await.unwrap();
            let got: Row = fresh
                .restrict(row! {"k" => *v})
                .fetch1()
                .await
                .unwrap_or_else(|e| panic!("{label}: {i}: {e}"));
            assert_eq!(got["k"], Value::from(*v), "{label}");
            assert_eq!(got["v"], Value::from("it's \\"), "{label}");
            assert_eq!(got["w"], Value::from("q\\"), "{label}");
        }
        assert_eq!(raw.count(&victim).await, 1, "{label}");
        raw.close().await;
    })
    .await;
}

/// Where a hostile fragment goes in a generated definition.
#[derive(Clone, Debug)]
enum Site {
    /// After a type: `b : <base><fragment>`.
    Type(&'static str),
    /// A default between the quote (or none): `b = <q><fragment><q> : varchar(64)`.
    Default(&'static str),
    /// An attribute comment.
    Comment,
    /// The table comment.
    TableComment,
    /// An enum value, its quotes doubled or not.
    EnumValue(bool),
    /// Inside an index line: `index(b<fragment>)`.
    Index,
    /// Foreign-key options: `-> [<fragment>] Parent`.
    FkOption,
    /// After a foreign-key reference: `-> Parent<fragment>`.
    FkTail,
}

fn site() -> impl Strategy<Value = Site> {
    use proptest::prelude::*;
    prop_oneof![
        3 => prop::sample::select(vec![
            "int",
            "int unsigned",
            "int32",
            "float",
            "varchar(5)",
            "decimal(5,2)",
            "enum('a')",
            "timestamp",
            "double(8,2)",
        ])
        .prop_map(Site::Type),
        1 => prop::sample::select(vec!["\"", "'", ""]).prop_map(Site::Default),
        1 => Just(Site::Comment),
        1 => Just(Site::TableComment),
        1 => any::<bool>().prop_map(Site::EnumValue),
        1 => Just(Site::Index),
        1 => Just(Site::FkOption),
        1 => Just(Site::FkTail),
    ]
}

/// Hostile fragments: pieces of SQL syntax and whole statements (`{victim}` and `{pwn}` are
/// replaced per backend), joined at random, or the known attack shapes.
fn fragment() -> impl Strategy<Value = String> {
    use proptest::prelude::*;
    let piece = prop::sample::select(vec![
        ")",
        "(",
        ";",
        "--",
        "/*",
        "*/",
        "'",
        "''",
        "\"",
        "`",
        "\\",
        "\\'",
        "\0",
        "\n",
        "\r",
        ",",
        "#",
        ":",
        "=",
        " ",
        "int",
        "unsigned",
        " NOT NULL",
        " DEFAULT 1",
        ", zz int",
        "\nzz : int32",
        " DROP TABLE {victim}",
        "; DROP TABLE {victim}; --",
        " CREATE TABLE {pwn} (x int)",
        "; DELETE FROM {victim}",
        "nullable",
        "unique",
        "$1",
        "%s",
        "?",
    ])
    .prop_map(str::to_string);
    let words =
        prop::collection::vec(prop_oneof![piece, "[a-z0-9 ]{1,4}"], 1..7).prop_map(|v| v.concat());
    let shapes = prop::sample::select(vec![
        " ); DROP TABLE {victim}; CREATE TABLE {pwn} (a int, q decimal(5,2)",
        "); DELETE FROM {victim}; CREATE TABLE {pwn} (x int",
        ", zz int",
        " unsigned, zz int",
        " NOT NULL, zz int",
        "', 'x'); DROP TABLE {victim}; --",
        "\\', 'x'); DROP TABLE {victim}; --",
        "\"); DROP TABLE {victim}; --",
        "\\\"); DROP TABLE {victim}; --",
        "'; DROP TABLE {victim}; --",
        "\\'; DROP TABLE {victim}; --",
        ") ; DROP TABLE {victim} ; CREATE TABLE {pwn} (x int",
        "], zz) ; DROP TABLE {victim}; --",
        "*/ DROP TABLE {victim}; /*",
    ])
    .prop_map(str::to_string);
    prop_oneof![words, shapes]
}

/// The definition of one generated case.
fn definition(site: &Site, fragment: &str) -> String {
    let table_comment = match site {
        Site::TableComment => fragment.to_string(),
        _ => "generated".to_string(),
    };
    let line = match site {
        Site::Type(base) => format!("b : {base}{fragment}"),
        Site::Default(q) => format!("b = {q}{fragment}{q} : varchar(64)"),
        Site::Comment => format!("b : int32  # {fragment}"),
        Site::TableComment => "b : int32".to_string(),
        Site::EnumValue(double) => {
            let v = if *double {
                fragment.replace('\'', "''")
            } else {
                fragment.to_string()
            };
            format!("b : enum('{v}', 'ok')")
        }
        Site::Index => format!("b : int32\nindex(b{fragment})"),
        Site::FkOption => format!("b : int32\n-> [{fragment}] Parent"),
        Site::FkTail => format!("b : int32\n-> Parent{fragment}"),
    };
    format!("# {table_comment}\nid : int32  # id\n---\n{line}\nnote = \"\" : varchar(16)")
}

/// The column names a parsed definition declares (the parent's key is `pid`).
fn declared_columns(items: &[DefItem]) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for it in items {
        match it {
            DefItem::Attribute { name, .. } => {
                out.insert(name.clone());
            }
            DefItem::ForeignKey {
                reference, renames, ..
            } => {
                if reference != &["Parent".to_string()] {
                    return None;
                }
                let child = renames
                    .iter()
                    .find(|(_, old)| old == "pid")
                    .map_or("pid".to_string(), |(new, _)| new.clone());
                out.insert(child);
            }
            DefItem::Index { .. } => {}
        }
    }
    Some(out)
}

fn seed() -> u64 {
    match std::env::var("DJ_HOSTILE_SEED") {
        Ok(s) => s.parse().expect("DJ_HOSTILE_SEED is a decimal u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

const HOSTILE_CASES: usize = 48;

/// Generated hostile definitions: each is refused, or declared so that the catalog afterwards
/// holds exactly the declared table (its columns, comment and attribute comments as parsed) and
/// nothing else changed (no other table created or dropped, the victim's row still there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_definitions_declare_exactly_or_fail() {
    let seed = seed();
    eprintln!("hostile definitions: seed {seed} (rerun with DJ_HOSTILE_SEED={seed})");
    each_backend("inj_prop", |label, s| async move {
        let backend = s.connection().backend();
        let victim = victim(&s).await;
        s.declare("Parent", Tier::Manual, "pid : int32")
            .await
            .unwrap();
        let raw = Raw::open(&s).await;
        let pwn = format!("pwn_{}", s.name());
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let mut runner = TestRunner::new_with_rng(
            RunnerConfig::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
        );
        let strategy = (site(), fragment());
        let (mut declared, mut refused) = (0, 0);
        for n in 0..HOSTILE_CASES {
            let (site, fragment) = strategy.new_tree(&mut runner).unwrap().current();
            let fragment = fragment.replace("{victim}", &victim).replace("{pwn}", &pwn);
            let def = definition(&site, &fragment);
            let class = format!("Case{n}");
            let table = format!("case{n}");
            let before = raw.tables(s.name()).await;
            let result = s.declare(&class, Tier::Manual, &def).await;
            let after = raw.tables(s.name()).await;
            let ctx = format!("{label}: case {n} ({site:?}) {def:?}");
            assert_eq!(
                raw.count(&victim).await,
                1,
                "{ctx}: the victim lost its row"
            );
            assert!(
                !raw.table_anywhere(&pwn).await,
                "{ctx}: a table was injected"
            );
            match result {
                Err(_) => {
                    refused += 1;
                    assert_eq!(after, before, "{ctx}: refused, yet the catalog changed");
                }
                Ok(t) => {
                    declared += 1;
                    let mut expected = before.clone();
                    expected.insert(listed(backend, s.name(), &table));
                    assert_eq!(after, expected, "{ctx}: other tables changed");
                    let parsed = parse("t", &def)
                        .unwrap_or_else(|e| panic!("{ctx}: declared but unparsable: {e}"));
                    let want = declared_columns(&parsed.items)
                        .unwrap_or_else(|| panic!("{ctx}: declared an unknown reference"));
                    let got = raw.columns(s.name(), &table).await;
                    assert_eq!(got.len(), want.len(), "{ctx}: columns {got:?}");
                    assert_eq!(
                        got.iter().cloned().collect::<BTreeSet<_>>(),
                        want,
                        "{ctx}: columns"
                    );
                    let fresh = s.table(t.name()).await.unwrap();
                    let h = fresh.heading();
                    assert_eq!(h.comment, parsed.comment, "{ctx}: table comment");
                    for it in &parsed.items {
                        if let DefItem::Attribute {
                            name,
                            comment,
                            spec,
                            ..
                        } = it
                        {
                            let a = h.attribute(name).unwrap();
                            assert_eq!(&a.comment, comment, "{ctx}: comment of {name}");
                            if matches!(spec, TypeSpec::Core(CoreType::Enum(_)))
                                && backend != Backend::MySql
                            {
                                // MySQL strips trailing spaces from enum values.
                                assert_eq!(&a.spec, spec, "{ctx}: enum values of {name}");
                            }
                        }
                    }
                }
            }
        }
        eprintln!("{label}: {declared} hostile definitions declared exactly, {refused} refused");
        raw.close().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Defect 9: identifier limits.
// ---------------------------------------------------------------------------------------------

/// A unique name of exactly `len` characters starting with `prefix` and ending in `last`.
fn long_name(prefix: &str, len: usize, last: char) -> String {
    let mut n = prefix.to_string();
    while n.len() < len - 1 {
        n.push('x');
    }
    n.push(last);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifier_limits_are_enforced_at_declare() {
    each_backend("idlen", |label, s| async move {
        let backend = s.connection().backend();
        let conn = s.connection().clone();
        let max = if backend == Backend::MySql { 64 } else { 63 };
        let unique = format!("{}_", s.name());

        // Schema names: two names one past the limit, differing in the last character, are
        // refused (PostgreSQL would cut both to the same 63 characters); at the limit they are
        // two schemas.
        for last in ['a', 'b'] {
            let e = conn
                .schema(&long_name(&unique, max + 1, last))
                .await
                .map(|_| ())
                .expect_err(label);
            says(&e, &["schema name", &format!("at most {max}")]);
        }
        let a = conn.schema(&long_name(&unique, max, 'a')).await.unwrap();
        let b = conn.schema(&long_name(&unique, max, 'b')).await.unwrap();
        let listed = conn.list_schemas().await.unwrap();
        assert!(
            listed.contains(&a.name().to_string()) && listed.contains(&b.name().to_string()),
            "{label}: {listed:?}"
        );
        a.declare("OnlyInA", Tier::Manual, "x : int32").await.unwrap();
        assert!(b.list_tables().await.unwrap().is_empty(), "{label}");
        a.drop().await.unwrap();
        b.drop().await.unwrap();

        // Attribute names.
        let at_limit = long_name("a", max, 'z');
        let past = long_name("a", max + 1, 'z');
        let t = s
            .declare(
                "AttrOk",
                Tier::Manual,
                &format!("id : int32\n---\n{at_limit} : int32"),
            )
            .await
            .unwrap();
        assert!(t.heading().attribute(&at_limit).is_some());
        let raw = Raw::open(&s).await;
        assert!(raw.columns(s.name(), "attr_ok").await.contains(&at_limit));
        let e = s
            .declare(
                "AttrLong",
                Tier::Manual,
                &format!("id : int32\n---\n{past} : int32"),
            )
            .await
            .map(|_| ())
            .expect_err(label);
        says(&e, &[&past, "line 3"]);
        // A renamed foreign-key attribute counts too.
        let e = s
            .declare(
                "AttrRename",
                Tier::Manual,
                &format!("-> AttrOk.proj({past}='id')"),
            )
            .await
            .map(|_| ())
            .expect_err(label);
        says(&e, &[&past, "line 1"]);

        // Table names, prefix included: `#` + name.
        let class = |len: usize| format!("T{}", "x".repeat(len - 1));
        let lookup = s
            .declare(&class(max - 1), Tier::Lookup, "x : int32")
            .await
            .unwrap();
        assert_eq!(lookup.name().len(), max);
        let e = s
            .declare(&class(max), Tier::Lookup, "x : int32")
            .await
            .map(|_| ())
            .expect_err(label);
        says(&e, &["table name", &format!("at most {max}")]);
        // A part table's full name `master__part`.
        let master = s
            .declare(&class(30), Tier::Manual, "m : int32")
            .await
            .unwrap();
        let part_len = max - 30 - 2;
        let part = s
            .declare_part(&master, &class(part_len), "p : int32")
            .await
            .unwrap();
        assert_eq!(part.name().len(), max);
        let e = s
            .declare_part(&master, &class(part_len + 1), "p : int32")
            .await
            .map(|_| ())
            .expect_err(label);
        says(&e, &["table name", &format!("at most {max}")]);
        // An Imported table's job table `~~name` is one character longer than `_name`.
        let e = s
            .declare(&class(max - 1), Tier::Imported, "-> AttrOk")
            .await
            .map(|_| ())
            .expect_err(label);
        says(&e, &["job table", "~~"]);
        // (On MySQL its foreign key's constraint name is the tighter limit, below.)
        let imported_len = if backend == Backend::MySql { 55 } else { max - 2 };
        let imported = s
            .declare(&class(imported_len), Tier::Imported, "-> AttrOk")
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(imported.name().len(), imported_len + 1);

        // A table with a foreign key: MySQL derives `<table>_ibfk_1` from its name.
        let fk_len = 57;
        let r = s
            .declare(&class(fk_len), Tier::Manual, "-> AttrOk\n---\nv : int32")
            .await;
        if backend == Backend::MySql {
            says(
                &r.map(|_| ()).expect_err(label),
                &["_ibfk_1", "at most 56"],
            );
        } else {
            r.unwrap();
        }

        // PostgreSQL index names are made from the table name: two indexes of a long-named table
        // must not become one name.
        let t = s
            .declare(
                &class(60),
                Tier::Manual,
                "id : int32\n---\nfirst_value : int32\nsecond_value : int32\nindex(first_value)\nindex(second_value)",
            )
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let fresh = s.table(t.name()).await.unwrap();
        assert_eq!(fresh.heading().indexes.len(), 2, "{label}");
        raw.close().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Defect 10: inherited attributes and `describe()`.
// ---------------------------------------------------------------------------------------------

/// Every core type a primary-key attribute may have.
const KEY_TYPES: &[&str] = &[
    "uuid",
    "int8",
    "int16",
    "int32",
    "int64",
    "float32",
    "float64",
    "decimal(6,2)",
    "varchar(16)",
    "char(4)",
    "date",
    "datetime",
    "datetime(3)",
    "bool",
    "enum('lo', 'hi')",
];

/// What a heading must keep through `describe()` and back: per attribute its name, type, key
/// membership, nullability, default, comment and whether it is inherited; the foreign keys.
fn shape(h: &dj_schema::Heading) -> String {
    let mut out = String::new();
    for a in &h.attributes {
        out.push_str(&format!(
            "{} {} key={} null={} default={:?} comment={:?} inherited={}\n",
            a.name, a.spec, a.in_key, a.nullable, a.default, a.comment, a.inherited
        ));
    }
    for fk in &h.foreign_keys {
        out.push_str(&format!(
            "fk {} {:?} nullable={} unique={}\n",
            fk.parent_table, fk.attr_map, fk.nullable, fk.unique
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_round_trips_every_core_type_as_a_foreign_key() {
    each_backend("fk_describe", |label, s| async move {
        for (i, ty) in KEY_TYPES.iter().enumerate() {
            let parent = s
                .declare(
                    &format!("Par{i}"),
                    Tier::Manual,
                    &format!("k : {ty}  # the key\n---\nlabel = \"\" : varchar(8)"),
                )
                .await
                .unwrap_or_else(|e| panic!("{label}: {ty}: {e}"));
            let children = [
                format!("-> Par{i}\n---\nv : int32"),
                format!("# refers\nrid : int32\n---\n-> [nullable] Par{i}\nw = null : int32"),
                format!("-> Par{i}.proj(alias='k')\nseq : int16\n---\nu : float64"),
                format!("rid : int32\n---\n-> [unique] Par{i}"),
            ];
            for (j, def) in children.iter().enumerate() {
                let ctx = format!("{label}: {ty}, child {j}");
                let declared = s
                    .declare(&format!("Kid{i}x{j}"), Tier::Manual, def)
                    .await
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let fresh = s.table(declared.name()).await.unwrap();
                let text = fresh.describe();
                assert_eq!(
                    text.matches("-> ").count(),
                    1,
                    "{ctx}: one foreign-key line in {text}"
                );
                assert!(
                    !text
                        .lines()
                        .any(|l| l.starts_with("k ") || l.starts_with("alias ")),
                    "{ctx}: the inherited attribute is repeated in {text}"
                );
                assert_eq!(text, declared.describe(), "{ctx}: catalog vs declared");
                assert_eq!(
                    shape(fresh.heading()),
                    shape(declared.heading()),
                    "{ctx}: catalog vs declared"
                );
                // The description declares the same table again.
                let again = s
                    .declare(&format!("Again{i}x{j}"), Tier::Manual, &text)
                    .await
                    .unwrap_or_else(|e| panic!("{ctx}: {e}\n{text}"));
                let again = s.table(again.name()).await.unwrap();
                assert_eq!(again.describe(), text, "{ctx}");
                assert_eq!(shape(again.heading()), shape(fresh.heading()), "{ctx}");
            }
            let _ = parent;
        }
    })
    .await;
}
