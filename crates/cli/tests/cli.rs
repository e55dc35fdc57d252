//! End-to-end tests of the `dj` binary: each test writes a `datajoint.json` into a temporary
//! directory, fills a schema through `dj_schema`, and runs the built binary there.
//!
//! The garbage-collection scenario also runs on PostgreSQL when `DJ_TEST_POSTGRES_URL` is set;
//! without it that test is skipped with a message, unless `CI=true`, where it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use datajoint::Config;
use datajoint::blob::{Array, ArrayData, Item};
use datajoint::schema::{Connection, Tier, row};
use datajoint::{Codec, CodecContext, Registry, TypeSpec, Value};
use serde_json::{Value as Json, json};

/// Environment variables the configuration loader reads, and DataJoint's that `dj config check`
/// lists as unread; cleared so the host cannot interfere.
const DJ_VARS: &[&str] = &[
    "DJ_HOST",
    "DJ_USER",
    "DJ_PASS",
    "DJ_PORT",
    "DJ_BACKEND",
    "DJ_DATABASE_NAME",
    "DJ_USE_TLS",
    "DJ_STORES",
    "DJ_IGNORE_CONFIG_FILE",
    "DJ_LOG_LEVEL",
    "DJ_SAFEMODE",
    "DJ_DOWNLOAD_PATH",
    "DJ_QUERY_CACHE",
    "DJ_DATABASE_PREFIX",
    "DJ_CREATE_TABLES",
    "DJ_RECONNECT",
    "DJ_DIAGRAM_DIRECTION",
    "DJ_DIAGRAM_THEME",
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Run `dj` in `dir`.
fn dj(dir: &Path, args: &[&str]) -> Output {
    dj_env(dir, &[], args)
}

/// Run `dj` in `dir` with these `DJ_*` variables set (and no others).
fn dj_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dj"));
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("DJ_JOBS_") {
            cmd.env_remove(k);
        }
    }
    for v in DJ_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Run `dj`, expect exit code `code`, and return standard output.
fn dj_ok(dir: &Path, args: &[&str], code: i32) -> String {
    let o = dj(dir, args);
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "dj {args:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// Run `dj --json …`, expect exit code `code`, and parse standard output.
fn dj_json(dir: &Path, args: &[&str], code: i32) -> Json {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = dj_ok(dir, &all, code);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("dj {args:?}: not JSON ({e}):\n{out}"))
}

fn matrix(values: &[f64], rows: u64, cols: u64) -> Value {
    // `values` row by row; blobs hold Fortran order.
    let r = rows as usize;
    let c = cols as usize;
    let mut fortran = Vec::with_capacity(values.len());
    for j in 0..c {
        for i in 0..r {
            fortran.push(values[i * c + j]);
        }
    }
    let a = Array::new(vec![rows, cols], ArrayData::F64(fortran)).unwrap();
    Value::domain(Item::Array(a))
}

/// A directory with a `datajoint.json`, its stores, and schema `schema` holding table `scan`
/// (`scan_id : int32`, `image : <blob@>` in the default store `store`) with rows 1 and 2.
struct Fixture {
    dir: tempfile::TempDir,
    schema: String,
    store: String,
    config: Config,
}

impl Fixture {
    fn new(database: Json, schema: &str, store: &str, extra_stores: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut stores = serde_json::Map::new();
        stores.insert("default".into(), json!(store));
        for name in std::iter::once(store).chain(extra_stores.iter().copied()) {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
            stores.insert(name.into(), json!({"protocol": "file", "location": name}));
        }
        let doc = json!({"database": database, "stores": stores});
        let path = dir.path().join("datajoint.json");
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        let config = Config::from_file(&path).unwrap();
        let fx = Fixture {
            dir,
            schema: schema.to_string(),
            store: store.to_string(),
            config,
        };
        fx.with_conn(|conn, schema| async move {
            let lab = conn.schema(&schema).await.unwrap();
            let scan = lab
                .declare(
                    "Scan",
                    Tier::Manual,
                    "# scans\nscan_id : int32\n---\nimage : <blob@>",
                )
                .await
                .unwrap();
            scan.insert1(&row! { "scan_id" => 1, "image" => matrix(&[1.0, 2.0, 3.0, 4.0], 2, 2) })
                .await
                .unwrap();
            scan.insert1(&row! { "scan_id" => 2, "image" => matrix(&[5.0, 6.0], 1, 2) })
                .await
                .unwrap();
        });
        fx
    }

    fn sqlite(extra_stores: &[&str]) -> Fixture {
        Fixture::new(
            json!({"backend": "sqlite", "path": "db.sqlite"}),
            "lab",
            "main",
            extra_stores,
        )
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Run `body` with a fresh connection (closed afterwards, so the binary has the database to
    /// itself).
    fn with_conn<F, Fut>(&self, body: F)
    where
        F: FnOnce(Connection, String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        runtime().block_on(async {
            let conn = Connection::open(&self.config).await.unwrap();
            body(conn.clone(), self.schema.clone()).await;
            conn.close().await;
        });
    }

    fn delete_row(&self, id: i32) {
        self.with_conn(|conn, schema| async move {
            let scan = conn
                .existing_schema(&schema)
                .await
                .unwrap()
                .table("scan")
                .await
                .unwrap();
            assert_eq!(
                scan.restrict(row! { "scan_id" => id })
                    .delete()
                    .await
                    .unwrap(),
                1
            );
        });
    }

    fn drop_schema(&self) {
        self.with_conn(|conn, schema| async move {
            conn.existing_schema(&schema)
                .await
                .unwrap()
                .drop()
                .await
                .unwrap();
        });
    }

    /// Every file under the store's directory.
    fn files(&self, store: &str) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).unwrap() {
                let e = e.unwrap();
                if e.path().is_dir() {
                    walk(&e.path(), out);
                } else {
                    out.push(e.path());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.path().join(store), &mut out);
        out.sort();
        out
    }
}

#[test]
fn config_check_reports_and_redacts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("store")).unwrap();
    let secret = "s3cr3t-value-that-must-never-show";
    let access = "AKIA-ACCESS-NEVER-SHOWN";
    let doc = json!({
        "database": {"backend": "sqlite", "path": "db.sqlite"},
        "stores": {
            "default": "main",
            "main": {"protocol": "file", "location": "store"},
            "x": {"protocol": "s3", "endpoint": "localhost:9000", "bucket": "lab",
                  "location": "oas", "access_key": access, "secret_key": secret},
        },
    });
    std::fs::write(dir.path().join("datajoint.json"), doc.to_string()).unwrap();

    let mut outputs = Vec::new();
    for args in [
        vec!["config", "check"],
        vec!["config", "check", "-v"],
        vec!["--json", "config", "check"],
        vec!["--json", "-v", "config", "check"],
    ] {
        let o = dj(dir.path(), &args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {:?}", text(&o));
        outputs.push(text(&o));
    }
    for (out, err) in &outputs {
        for s in [secret, access] {
            assert!(
                !out.contains(s) && !err.contains(s),
                "secret shown:\n{out}\n{err}"
            );
        }
    }
    let human = &outputs[0].0;
    assert!(human.contains("sqlite"), "{human}");
    assert!(human.contains("main") && human.contains("file"), "{human}");
    assert!(human.contains("s3://lab/oas at localhost:9000"), "{human}");
    assert!(human.lines().any(|l| l.trim() == "ok"), "{human}");
    let j: Json = serde_json::from_str(&outputs[2].0).unwrap();
    assert_eq!(j["ok"], json!(true));
    assert_eq!(j["config"]["stores"]["x"]["secret_key"], json!("***"));
    assert_eq!(j["config"]["stores"]["x"]["access_key"], json!("***"));
    let stores = j["stores"].as_array().unwrap();
    assert!(stores.iter().all(|s| s["linked"] == json!(true)), "{j:#}");

    // --config with another file name reads exactly that file.
    let other = dir.path().join("other.json");
    std::fs::write(
        &other,
        json!({"database": {"backend": "postgresql", "host": "db.example", "password": secret}})
            .to_string(),
    )
    .unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let out = dj_ok(
        &sub,
        &["config", "check", "--config", other.to_str().unwrap()],
        0,
    );
    assert!(out.contains("db.example") && out.contains("***"), "{out}");
    assert!(!out.contains(secret), "{out}");
    let missing = dj(&sub, &["--config", "nope.json", "config", "check"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).1.contains("nope.json"));
}

#[test]
fn config_check_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("store")).unwrap();
    for (doc, key) in [
        (
            json!({"stores": {"main": {"protocol": "file", "location": "store", "locaton": "x"}}}),
            "stores.main.locaton",
        ),
        (json!({"databse": {"host": "x"}}), "databse"),
        (
            json!({"database": {"backend": "sqlite", "port": 99999}}),
            "database.port",
        ),
        (
            json!({"stores": {"main": {"protocol": "file", "location": "missing-dir"}}}),
            "stores.main.location",
        ),
    ] {
        std::fs::write(dir.path().join("datajoint.json"), doc.to_string()).unwrap();
        let o = dj(dir.path(), &["config", "check"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{doc}: {out} {err}");
        assert!(
            err.contains(key),
            "{doc}: the error should name `{key}`: {err}"
        );
        // With --json the error is also a JSON document on stdout.
        let j = dj_json(dir.path(), &["config", "check"], 1);
        assert!(j["error"].as_str().unwrap().contains(key), "{j}");
        assert_eq!(j["exit_code"], json!(1));
    }
}

#[test]
fn config_check_says_which_database_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "PW-never-shown-4711";
    let write = |doc: Json| {
        std::fs::write(dir.path().join("datajoint.json"), doc.to_string()).unwrap();
    };

    // DataJoint-style settings without a backend: MySQL, DataJoint's default, never SQLite.
    write(json!({"database": {"host": "db.lab", "user": "alice", "password": secret}}));
    let out = dj_ok(dir.path(), &["config", "check"], 0);
    assert!(out.contains("mysql at db.lab:3306"), "{out}");
    assert!(
        out.contains("chosen by")
            && out.contains("(`database.host`, `database.user`, `database.password`)"),
        "{out}"
    );
    assert!(!out.contains("sqlite") && !out.contains(secret), "{out}");
    let j = dj_json(dir.path(), &["config", "check"], 0);
    assert_eq!(j["database"]["backend"], json!("mysql"));
    assert_eq!(j["database"]["target"], json!("db.lab:3306"));
    assert!(
        j["database"]["chosen_by"]
            .as_str()
            .unwrap()
            .contains("DataJoint's default"),
        "{j:#}"
    );

    // The same from the environment alone, as DataJoint users set it.
    write(json!({}));
    let env = [
        ("DJ_HOST", "db.lab:3307"),
        ("DJ_USER", "alice"),
        ("DJ_PASS", secret),
    ];
    let o = dj_env(dir.path(), &env, &["config", "check"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("mysql at db.lab:3307") && out.contains("`DJ_HOST`"),
        "{out}"
    );
    assert!(!out.contains(secret) && !err.contains(secret), "{out}{err}");
    let env = [("DJ_HOST", "pg.lab"), ("DJ_BACKEND", "postgresql")];
    let out = text(&dj_env(dir.path(), &env, &["config", "check"])).0;
    assert!(
        out.contains("postgresql at pg.lab:5432/postgres") && out.contains("`DJ_BACKEND`"),
        "{out}"
    );

    // SQLite: the file and the key that chose it.
    write(json!({"database": {"backend": "sqlite", "path": "lab.sqlite"}}));
    let out = dj_ok(dir.path(), &["config", "check"], 0);
    let file = dir.path().join("lab.sqlite");
    assert!(
        out.contains(&format!("sqlite at {}", file.display()))
            && out.contains("`database.backend` in the configuration file"),
        "{out}"
    );
    write(json!({}));
    let out = dj_ok(dir.path(), &["config", "check"], 0);
    assert!(out.contains("dj-rs's default"), "{out}");

    // DataJoint variables dj-rs does not read are named, not skipped in silence.
    let o = dj_env(
        dir.path(),
        &[("DJ_LOG_LEVEL", "DEBUG"), ("DJ_CREATE_TABLES", "false")],
        &["config", "check"],
    );
    let out = text(&o).0;
    assert!(
        out.contains("not read") && out.contains("DJ_CREATE_TABLES, DJ_LOG_LEVEL"),
        "{out}"
    );
}

#[test]
fn config_check_fails_on_settings_it_used_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("store")).unwrap();
    std::fs::create_dir(dir.path().join("adir")).unwrap();
    let config = dir.path().join("datajoint.json");
    /// The file's text, the `DJ_*` variables, what the error must name.
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, Vec<String>);
    let cases: Vec<Case<'_>> = vec![
        // A duplicated key, in a store: the key and the file are named.
        (
            r#"{"stores": {"main": {"protocol": "file", "location": "store", "location": "adir"}}}"#
                .into(),
            vec![],
            vec!["stores.main.location".into(), config.display().to_string()],
        ),
        (
            r#"{"database": {"backend": "sqlite"}, "database": {"backend": "mysql"}}"#.into(),
            vec![],
            vec!["`database`".into(), config.display().to_string()],
        ),
        // Empty locations.
        (
            json!({"stores": {"main": {"protocol": "file", "location": ""}}}).to_string(),
            vec![],
            vec!["stores.main.location".into()],
        ),
        (
            json!({"stores": {"main": {"protocol": "s3", "endpoint": "localhost:9000",
                                       "bucket": "lab", "location": ""}}})
            .to_string(),
            vec![],
            vec!["stores.main.location".into()],
        ),
        // A SQLite path that is a directory.
        (
            json!({"database": {"backend": "sqlite", "path": "adir"}}).to_string(),
            vec![],
            vec!["database.path".into()],
        ),
        // A SQLite backend and DataJoint's server variables.
        (
            json!({"database": {"backend": "sqlite", "path": "lab.sqlite"}}).to_string(),
            vec![("DJ_HOST", "db.lab"), ("DJ_USER", "alice")],
            vec!["database.host".into(), "DJ_HOST".into()],
        ),
        // A SQLite file and a server, and no backend to choose.
        (
            json!({"database": {"path": "lab.sqlite"}}).to_string(),
            vec![("DJ_HOST", "db.lab")],
            vec!["database.backend".into(), "DJ_HOST".into()],
        ),
        (
            json!({"database": {"backend": "mysql"}}).to_string(),
            vec![("DJ_USE_TLS", "true")],
            vec!["DJ_USE_TLS".into()],
        ),
    ];
    for (doc, env, keys) in cases {
        std::fs::write(&config, &doc).unwrap();
        let o = dj_env(dir.path(), &env, &["config", "check"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{doc} {env:?}: {out} {err}");
        for key in &keys {
            assert!(
                err.contains(key.as_str()),
                "{doc} {env:?}: no `{key}` in: {err}"
            );
        }
    }
}

/// The safety issue's case: a project whose `datajoint.json` names no database, with DataJoint's
/// `DJ_HOST`/`DJ_USER` pointing at a server. dj-rs used the default SQLite file instead, which
/// lacks the schema, and `gc --delete` then removed the schema's live objects.
#[test]
fn gc_never_falls_back_to_sqlite_when_datajoint_names_a_server() {
    let fx = Fixture::sqlite(&[]);
    assert_eq!(fx.files("main").len(), 2);
    // The project's own configuration: the same store, no database section; an unrelated
    // (empty) SQLite file where the default path points.
    let project = fx.path().join("project.json");
    std::fs::write(
        &project,
        json!({"stores": {"default": "main", "main": {"protocol": "file", "location": "main"}}})
            .to_string(),
    )
    .unwrap();
    std::fs::write(fx.path().join("datajoint.sqlite"), b"").unwrap();
    // A "server" that hangs up at once, so that connecting fails fast (a refused connection is
    // retried for 30 s).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let env = [
        ("DJ_HOST", "127.0.0.1"),
        ("DJ_PORT", port.as_str()),
        ("DJ_USER", "alice"),
        ("DJ_PASS", "pw"),
    ];
    let project = project.to_str().unwrap();
    let o = dj_env(
        fx.path(),
        &env,
        &[
            "gc",
            "--config",
            project,
            "--store",
            "main",
            "--schema",
            "lab",
            "--delete",
            "--grace",
            "0s",
            "--allow-zero-grace",
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(
        fx.files("main").len(),
        2,
        "live objects were deleted:\n{out}{err}"
    );
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("MySQL"), "{err}");
    let out = text(&dj_env(
        fx.path(),
        &env,
        &["config", "check", "--config", project],
    ))
    .0;
    assert!(out.contains(&format!("mysql at 127.0.0.1:{port}")), "{out}");
}

#[test]
fn codecs_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let j = dj_json(dir.path(), &["codecs"], 0);
    let codecs: Vec<&str> = j["codecs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for c in ["blob", "hash", "attach", "object", "filepath", "npy"] {
        assert!(codecs.contains(&c), "{c} missing from {codecs:?}");
    }
    let protocols: Vec<&str> = j["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for p in ["file", "memory", "s3"] {
        assert!(protocols.contains(&p), "{p} missing from {protocols:?}");
    }
    let human = dj_ok(dir.path(), &["codecs"], 0);
    assert!(
        human.contains("<blob>") && human.contains("store protocols:") && human.contains("s3"),
        "{human}"
    );
    let version = dj_ok(dir.path(), &["--version"], 0);
    assert!(version.starts_with("dj "), "{version}");
    let help = dj_ok(dir.path(), &["gc", "--help"], 0);
    assert!(
        help.contains("Exit codes") && help.contains("--allow-zero-grace"),
        "{help}"
    );
    // Usage errors exit with 2.
    assert_eq!(dj(dir.path(), &["gc"]).status.code(), Some(2));
    assert_eq!(dj(dir.path(), &["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        dj(dir.path(), &["gc", "--store", "main", "--grace", "soon"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn schemas_tables_and_describe() {
    let fx = Fixture::sqlite(&[]);
    let out = dj_ok(fx.path(), &["schema", "list"], 0);
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["lab"]);
    assert_eq!(dj_json(fx.path(), &["schema", "list"], 0), json!(["lab"]));

    let out = dj_ok(fx.path(), &["table", "list", "lab"], 0);
    assert!(
        out.starts_with("scan") && out.contains("manual") && out.contains("Scan"),
        "{out}"
    );
    let j = dj_json(fx.path(), &["table", "list", "lab"], 0);
    assert_eq!(
        j,
        json!([{"name": "scan", "tier": "manual", "class": "Scan"}])
    );

    for name in ["scan", "Scan"] {
        let out = dj_ok(fx.path(), &["table", "describe", "lab", name], 0);
        assert!(out.contains("scan_id : int32"), "{out}");
        assert!(out.contains("---"), "{out}");
        assert!(out.contains("image : <blob@"), "{out}");
    }
    let j = dj_json(fx.path(), &["table", "describe", "lab", "scan"], 0);
    assert_eq!(j["table"], json!("lab.scan"));
    assert!(j["definition"].as_str().unwrap().contains("scan_id"));

    let o = dj(fx.path(), &["table", "describe", "lab", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("nosuch"), "{:?}", text(&o));
    let o = dj(fx.path(), &["table", "list", "nolab"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("nolab"), "{:?}", text(&o));
}

#[test]
fn missing_sqlite_file_is_an_error_not_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("datajoint.json"),
        json!({"database": {"backend": "sqlite", "path": "absent.sqlite"}}).to_string(),
    )
    .unwrap();
    let o = dj(dir.path(), &["schema", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("absent.sqlite"), "{:?}", text(&o));
    assert!(!dir.path().join("absent.sqlite").exists());
}

#[test]
fn blob_cat_prints_the_value() {
    let fx = Fixture::sqlite(&[]);
    let j = dj_json(
        fx.path(),
        &["blob", "cat", "lab", "scan", "image", "--key", "scan_id=1"],
        0,
    );
    assert_eq!(
        j,
        json!({"dtype": "float64", "shape": [2, 2], "data": [[1.0, 2.0], [3.0, 4.0]]})
    );
    // Text mode prints the same JSON.
    let out = dj_ok(
        fx.path(),
        &["blob", "cat", "lab", "Scan", "image", "--key", "scan_id=2"],
        0,
    );
    let j: Json = serde_json::from_str(&out).unwrap();
    assert_eq!(j["data"], json!([[5.0, 6.0]]));

    for (args, needle) in [
        (vec!["--key", "scan_id=3"], "no row"),
        (vec!["--key", "scan_id=x"], "not an integer"),
        (vec!["--key", "subject=1"], "no attribute `subject`"),
        (vec!["--key", "scan_id"], "ATTRIBUTE=VALUE"),
    ] {
        let mut all = vec!["blob", "cat", "lab", "scan", "image"];
        all.extend(args);
        let o = dj(fx.path(), &all);
        assert_eq!(o.status.code(), Some(1), "{all:?}");
        assert!(text(&o).1.contains(needle), "{all:?}: {:?}", text(&o));
    }
    let o = dj(
        fx.path(),
        &[
            "blob",
            "cat",
            "lab",
            "scan",
            "scan_id",
            "--key",
            "scan_id=1",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("not a <blob>"), "{:?}", text(&o));
    // `--key` is required.
    assert_eq!(
        dj(fx.path(), &["blob", "cat", "lab", "scan", "image"])
            .status
            .code(),
        Some(2)
    );
}

/// The garbage-collection scenario: an orphan after a delete, a refused zero grace, a deletion.
fn gc_scenario(fx: &Fixture, schema_args: &[&str]) {
    let store = fx.store.as_str();
    let run = |extra: &[&str], code: i32| {
        let mut args = vec!["gc", "--store", store];
        args.extend_from_slice(schema_args);
        args.extend_from_slice(extra);
        dj_json(fx.path(), &args, code)
    };
    let files = fx.files(store);
    assert_eq!(files.len(), 2, "{files:?}");

    // Nothing is orphaned while both rows exist.
    let rep = run(&["--grace", "0s"], 0);
    assert_eq!(rep["hash"]["referenced"], json!(2), "{rep:#}");
    assert_eq!(rep["hash"]["orphaned"], json!(0), "{rep:#}");

    fx.delete_row(2);
    // With the default grace period the new orphan is too young.
    let rep = run(&[], 0);
    assert_eq!(rep["dry_run"], json!(true));
    assert_eq!(rep["hash"]["skipped_young"], json!(1), "{rep:#}");
    // A dry run with zero grace reports it.
    let rep = run(&["--dry-run", "--grace", "0s"], 0);
    assert_eq!(rep["hash"]["orphaned"], json!(1), "{rep:#}");
    assert_eq!(rep["hash"]["deleted"], json!(0));
    let orphan = rep["hash"]["orphaned_paths"][0]
        .as_str()
        .unwrap()
        .to_string();
    let orphan_file = fx.path().join(store).join(&orphan);
    assert!(orphan_file.is_file(), "{orphan_file:?}");
    // The human report lists it with -v.
    let mut args = vec!["gc", "--store", store, "--grace", "0s", "-v"];
    args.extend_from_slice(schema_args);
    let human = dj_ok(fx.path(), &args, 0);
    assert!(
        human.contains(&orphan) && human.contains("dry run"),
        "{human}"
    );

    // Deleting with zero grace needs --allow-zero-grace.
    let mut args = vec!["gc", "--store", store, "--delete", "--grace", "0s"];
    args.extend_from_slice(schema_args);
    let o = dj(fx.path(), &args);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
    assert!(text(&o).1.contains("--allow-zero-grace"), "{:?}", text(&o));
    assert!(orphan_file.is_file());
    // A grace period under the minimum (2h) is refused when deleting, with the reason.
    for grace in ["30m", "1h59m"] {
        let mut args = vec!["gc", "--store", store, "--delete", "--grace", grace];
        args.extend_from_slice(schema_args);
        let o = dj(fx.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{grace}: {:?}", text(&o));
        assert!(text(&o).1.contains("minimum"), "{grace}: {:?}", text(&o));
        assert!(orphan_file.is_file());
    }

    let rep = run(&["--delete", "--grace", "0s", "--allow-zero-grace"], 0);
    assert_eq!(rep["dry_run"], json!(false));
    assert_eq!(rep["hash"]["deleted"], json!(1), "{rep:#}");
    assert!(!orphan_file.exists(), "the orphan is still there");
    assert_eq!(fx.files(store).len(), 1);
    // The remaining object is still referenced and intact.
    let rep = run(&["--delete", "--grace", "0s", "--allow-zero-grace"], 0);
    assert_eq!(rep["hash"]["deleted"], json!(0), "{rep:#}");
    let mut args = vec!["verify", "--store", store];
    args.extend_from_slice(schema_args);
    let v = dj_json(fx.path(), &args, 0);
    assert_eq!(v["ok"], json!(1), "{v:#}");

    // The staging file a writer killed mid-write leaves (listings hide it) is reported, and
    // removed once it is older than the grace period.
    let remaining = fx.files(store).pop().unwrap();
    let staging = PathBuf::from(format!("{}#7", remaining.display()));
    std::fs::write(&staging, vec![0u8; 1234]).unwrap();
    let rep = run(&["--dry-run", "--grace", "0s"], 0);
    assert_eq!(rep["incomplete"]["stale"], json!(1), "{rep:#}");
    assert_eq!(rep["incomplete"]["stale_bytes"], json!(1234), "{rep:#}");
    let mut args = vec!["gc", "--store", store, "--grace", "0s", "-v"];
    args.extend_from_slice(schema_args);
    let human = dj_ok(fx.path(), &args, 0);
    assert!(
        human.contains("leftovers of interrupted writes: 1 found") && human.contains("#7"),
        "{human}"
    );
    let rep = run(&["--delete", "--grace", "0s", "--allow-zero-grace"], 0);
    assert_eq!(rep["incomplete"]["removed"], json!(1), "{rep:#}");
    assert_eq!(rep["incomplete"]["bytes_freed"], json!(1234), "{rep:#}");
    assert!(!staging.exists());
    assert_eq!(fx.files(store), [remaining]);

    // An unknown store is an error that names it.
    let o = dj(fx.path(), &["gc", "--store", "nostore"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("nostore"), "{:?}", text(&o));
}

#[test]
fn gc_on_sqlite() {
    let fx = Fixture::sqlite(&[]);
    gc_scenario(&fx, &[]);
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

/// Schema listing, describe, the GC scenario and `blob cat` on a database server.
fn server_scenario(url: String, label: &str) {
    let schema = format!("djt_cli_gc_{label}_{}", std::process::id());
    let store = format!("cli_{label}");
    let fx = Fixture::new(json!({"url": url}), &schema, &store, &[]);
    let listed = dj_json(fx.path(), &["schema", "list"], 0);
    assert!(
        listed.as_array().unwrap().contains(&json!(schema)),
        "{listed}"
    );
    let out = dj_ok(fx.path(), &["table", "describe", &schema, "scan"], 0);
    assert!(out.contains("image : <blob@"), "{out}");
    // Only this test's schema: other suites may share the server.
    gc_scenario(&fx, &["--schema", &schema]);
    let j = dj_json(
        fx.path(),
        &[
            "blob",
            "cat",
            &schema,
            "scan",
            "image",
            "--key",
            "scan_id=1",
        ],
        0,
    );
    assert_eq!(j["data"], json!([[1.0, 2.0], [3.0, 4.0]]));
    fx.drop_schema();
}

#[test]
fn gc_on_postgres() {
    if let Some(url) = server_url("DJ_TEST_POSTGRES_URL") {
        server_scenario(url, "pg");
    }
}

#[test]
fn gc_on_mysql() {
    if let Some(url) = server_url("DJ_TEST_MYSQL_URL") {
        server_scenario(url, "my");
    }
}

#[test]
fn verify_finds_corruption() {
    let fx = Fixture::sqlite(&[]);
    let rep = dj_json(fx.path(), &["verify"], 0);
    assert_eq!(rep["ok"], json!(2), "{rep:#}");
    let out = dj_ok(fx.path(), &["verify", "--store", "main"], 0);
    assert!(out.contains("lab.scan.image"), "{out}");

    let files = fx.files("main");
    std::fs::write(&files[0], b"not what was stored").unwrap();
    let rep = dj_json(fx.path(), &["verify", "--schema", "lab"], 5);
    assert_eq!(rep["corrupt"], json!(1), "{rep:#}");
    assert_eq!(rep["ok"], json!(1), "{rep:#}");
    let problem = &rep["attributes"][0]["problems"][0];
    assert_eq!(problem["status"], json!("corrupt"), "{rep:#}");
    let o = dj(fx.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(5));
    assert!(text(&o).0.contains("CORRUPT"), "{:?}", text(&o));

    std::fs::remove_file(&files[1]).unwrap();
    let rep = dj_json(fx.path(), &["verify"], 5);
    assert_eq!(
        (rep["corrupt"].clone(), rep["missing"].clone()),
        (json!(1), json!(1))
    );
}

#[test]
fn migrate_between_file_stores() {
    let fx = Fixture::sqlite(&["cold"]);
    let args = [
        "migrate", "lab", "scan", "image", "--from", "main", "--to", "cold",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let rep = dj_json(fx.path(), &dry, 0);
    assert_eq!(rep["dry_run"], json!(true));
    assert_eq!(rep["rows_to_migrate"], json!(2), "{rep:#}");
    assert!(fx.files("cold").is_empty());

    // One row first (--key), then the rest.
    let mut one = args.to_vec();
    one.extend(["--key", "scan_id=1"]);
    let rep = dj_json(fx.path(), &one, 0);
    assert_eq!(rep["rows_migrated"], json!(1), "{rep:#}");
    let rep = dj_json(fx.path(), &args, 0);
    assert_eq!(rep["rows_migrated"], json!(1), "{rep:#}");
    assert_eq!(fx.files("cold").len(), 2);

    let v = dj_json(fx.path(), &["verify"], 0);
    assert_eq!(
        (v["ok"].clone(), v["missing"].clone()),
        (json!(2), json!(0)),
        "{v:#}"
    );
    let v = dj_json(fx.path(), &["verify", "--store", "cold"], 0);
    assert_eq!(v["ok"], json!(2), "{v:#}");
    // The values now come from `cold`.
    std::fs::remove_dir_all(fx.path().join("main")).unwrap();
    std::fs::create_dir(fx.path().join("main")).unwrap();
    let j = dj_json(
        fx.path(),
        &["blob", "cat", "lab", "scan", "image", "--key", "scan_id=1"],
        0,
    );
    assert_eq!(j["data"], json!([[1.0, 2.0], [3.0, 4.0]]));

    let o = dj(
        fx.path(),
        &[
            "migrate", "lab", "scan", "image", "--from", "main", "--to", "main",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("same"), "{:?}", text(&o));
}

/// A codec this test process registers and the `dj` binary does not know.
#[derive(Debug)]
struct Opaque;

#[async_trait::async_trait]
impl Codec for Opaque {
    fn name(&self) -> &str {
        "opaque_cli_test"
    }
    fn dtype(&self, _is_store: bool) -> datajoint::CoreResult<TypeSpec> {
        "bytes".parse()
    }
    async fn encode(&self, v: Value, _cx: &CodecContext) -> datajoint::CoreResult<Value> {
        Ok(v)
    }
    async fn decode(&self, v: Value, _cx: &CodecContext) -> datajoint::CoreResult<Value> {
        Ok(v)
    }
}

#[test]
fn gc_refuses_on_scan_errors() {
    let fx = Fixture::sqlite(&[]);
    Registry::global()
        .register_codec(std::sync::Arc::new(Opaque))
        .unwrap();
    fx.with_conn(|conn, schema| async move {
        let t = conn
            .schema(&schema)
            .await
            .unwrap()
            .declare(
                "Odd",
                Tier::Manual,
                "odd_id : int32\n---\npayload : <opaque_cli_test>",
            )
            .await
            .unwrap();
        t.insert1(&row! { "odd_id" => 1, "payload" => b"x".to_vec() })
            .await
            .unwrap();
    });
    fx.delete_row(2);
    let orphans = fx.files("main");
    // The binary cannot resolve `<opaque_cli_test>`: which paths `odd` references is unknown.
    let rep = dj_json(fx.path(), &["gc", "--store", "main", "--grace", "0s"], 3);
    assert!(
        rep["scan_errors"][0]
            .as_str()
            .unwrap()
            .contains("opaque_cli_test"),
        "{rep:#}"
    );
    let rep = dj_json(
        fx.path(),
        &[
            "gc",
            "--store",
            "main",
            "--delete",
            "--grace",
            "0s",
            "--allow-zero-grace",
        ],
        3,
    );
    assert_eq!(rep["refused"], json!(true), "{rep:#}");
    assert_eq!(fx.files("main"), orphans, "nothing may be deleted");
    let o = dj(fx.path(), &["gc", "--store", "main"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).0.contains("scan errors"), "{:?}", text(&o));
    Registry::global().unregister_codec("opaque_cli_test");
}
