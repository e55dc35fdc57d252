//! `cargo xtask`: the dj-rs developer tasks.
//!
//! - `cargo xtask test`: the whole test command. Starts what the tests need (PostgreSQL, MariaDB,
//!   a loopback S3 server, a Python venv with DataJoint 2.3.5), then runs fmt, clippy, the
//!   workspace tests, the interop checks and the docs build.
//! - `cargo xtask services`: starts the same services for local work and prints their URLs.
//! - `cargo xtask bench`: criterion benches plus DataJoint Python on the same work.
//! - `cargo xtask golden`: regenerates the blob golden vectors with DataJoint Python.
//! - `cargo xtask api [--bless]`: checks (or rewrites) the public-API snapshots in `api/`.

mod api;
mod python;
mod services;
mod test;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

fn usage() -> &'static str {
    "usage: cargo xtask <command>\n\n\
     commands:\n  \
     test       start services, then fmt, clippy, tests, interop and docs (what CI runs)\n  \
     services   start PostgreSQL, MariaDB and the S3 server, print their URLs, keep S3 running\n  \
     bench      run the benchmarks, side by side with DataJoint Python\n  \
     golden     regenerate the blob golden vectors with DataJoint Python 2.3.5\n  \
     api        compare the public APIs with the snapshots in api/ (--bless: rewrite them)\n"
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&root(), &args[1..]),
        Some("services") => services::run_foreground(&root()),
        Some("bench") => test::bench(&root(), &args[1..]),
        Some("golden") => test::golden(&root()),
        Some("api") => {
            let only: Vec<&str> = args[1..]
                .iter()
                .map(String::as_str)
                .filter(|a| *a != "--bless")
                .collect();
            api::run(&root(), args[1..].iter().any(|a| a == "--bless"), &only)
        }
        Some("-h" | "--help" | "help") | None => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprint!("unknown command `{other}`\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's directory).
fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// Whether we run under CI (`CI=true`): then every service must be available.
fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Run a command, echoing it, and fail if it fails.
fn run_cmd(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: $ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", describe(cmd));
    }
    Ok(())
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}
