//! The services the tests talk to: PostgreSQL and MariaDB (started with the distribution's own
//! commands when they are down) and a moto S3 server on loopback (started from the project venv).

use std::io::Read;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::{is_ci, python};

/// The S3 bucket the tests use.
pub const S3_BUCKET: &str = "dj-test";
const S3_ACCESS_KEY: &str = "dj-test-access";
const S3_SECRET_KEY: &str = "dj-test-secret";

/// Running services and the environment variables that point the tests at them.
pub struct Services {
    /// `(name, value)` pairs to set for the test processes.
    pub env: Vec<(String, String)>,
    /// Services that could not be started (only allowed outside CI).
    pub skipped: Vec<String>,
    moto: Option<Child>,
}

impl Drop for Services {
    fn drop(&mut self) {
        if let Some(mut child) = self.moto.take() {
            // Only the server we started, by its own handle.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Services {
    /// Detach the S3 server so it keeps running after xtask exits; returns its PID.
    pub fn detach_s3(&mut self) -> Option<u32> {
        self.moto.take().map(|c| c.id())
    }
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

fn start_moto(root: &Path, python_bin: &Path) -> Result<(Child, String)> {
    let port = free_port()?;
    let bin_dir = python_bin
        .parent()
        .ok_or_else(|| anyhow!("venv python has no parent"))?;
    let log_path = root.join(".cache").join("moto.log");
    let log = std::fs::File::create(&log_path).context("cannot create .cache/moto.log")?;
    let mut child = Command::new(bin_dir.join("moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("cannot start moto_server")?;
    if !wait_for_port(port, Duration::from_secs(60)) {
        let _ = child.kill();
        let _ = child.wait();
        let mut log = String::new();
        let _ = std::fs::File::open(&log_path).and_then(|mut f| f.read_to_string(&mut log));
        bail!("moto_server did not listen on 127.0.0.1:{port}; its log:\n{log}");
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    // Create the bucket with a real, signed request.
    let script = format!(
        "import boto3\n\
         c = boto3.client('s3', endpoint_url='{endpoint}', aws_access_key_id='{S3_ACCESS_KEY}',\n\
             aws_secret_access_key='{S3_SECRET_KEY}', region_name='us-east-1')\n\
         c.create_bucket(Bucket='{S3_BUCKET}')\n"
    );
    if let Err(e) = quiet(Command::new(python_bin).args(["-c", &script])) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e.context("cannot create the test bucket"));
    }
    Ok((child, endpoint))
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
/// is reported in `skipped` and its tests skip themselves, saying so.
pub fn start(root: &Path) -> Result<Services> {
    let mut skipped = Vec::new();
    let mut env = Vec::new();
    let pg = ensure_postgres().map(|url| env.push(("DJ_TEST_POSTGRES_URL".to_string(), url)));
    note_unavailable("PostgreSQL", pg, &mut skipped)?;
    let my = ensure_mariadb().map(|url| env.push(("DJ_TEST_MYSQL_URL".to_string(), url)));
    note_unavailable("MariaDB", my, &mut skipped)?;
    let mut moto = None;
    let s3 = python::ensure_venv(root).and_then(|python_bin| {
        env.push((
            "DJ_TEST_PYTHON".to_string(),
            python_bin.display().to_string(),
        ));
        let (child, endpoint) = start_moto(root, &python_bin)?;
        moto = Some(child);
        env.push(("DJ_TEST_S3_ENDPOINT".to_string(), endpoint));
        env.push(("DJ_TEST_S3_BUCKET".to_string(), S3_BUCKET.to_string()));
        env.push((
            "DJ_TEST_S3_ACCESS_KEY".to_string(),
            S3_ACCESS_KEY.to_string(),
        ));
        env.push((
            "DJ_TEST_S3_SECRET_KEY".to_string(),
            S3_SECRET_KEY.to_string(),
        ));
        Ok(())
    });
    note_unavailable("S3 server (moto) and Python venv", s3, &mut skipped)?;
    Ok(Services { env, skipped, moto })
}

/// `cargo xtask services`: start everything, print the URLs, leave the S3 server running.
pub fn run_foreground(root: &Path) -> Result<()> {
    let mut services = start(root)?;
    for (k, v) in &services.env {
        println!("export {k}={v}");
    }
    if let Some(pid) = services.detach_s3() {
        println!("# the S3 server runs as PID {pid}; stop it with: kill {pid}");
    }
    Ok(())
}
