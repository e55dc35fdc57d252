//! `cargo xtask test`, `bench` and `golden`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{python, run_cmd, services};

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

struct Steps {
    done: Vec<(String, f64)>,
}

impl Steps {
    fn run(&mut self, name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
        eprintln!("\nxtask: ==== {name} ====");
        let t = Instant::now();
        f().with_context(|| format!("step `{name}` failed"))?;
        self.done
            .push((name.to_string(), t.elapsed().as_secs_f64()));
        Ok(())
    }
}

/// Python scripts that check interop against DataJoint 2.3.5; each gets the test environment and
/// exits non-zero on failure. They are found by name so that each crate owns its own.
fn interop_scripts(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for dir in ["codecs", "crates", "stores"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let interop = e.path().join("tests").join("interop");
            if let Ok(files) = std::fs::read_dir(&interop) {
                let mut files: Vec<_> = files
                    .flatten()
                    .map(|f| f.path())
                    .filter(|p| {
                        p.extension().is_some_and(|x| x == "py")
                            && p.file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with("test_"))
                    })
                    .collect();
                files.sort();
                out.extend(files);
            }
        }
    }
    out.sort();
    out
}

/// The whole test command.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let lint = !args.iter().any(|a| a == "--no-lint");
    let mut steps = Steps { done: Vec::new() };
    if lint {
        steps.run("fmt", || {
            run_cmd(
                cargo()
                    .current_dir(root)
                    .args(["fmt", "--all", "--", "--check"]),
            )
        })?;
        steps.run("clippy", || {
            run_cmd(cargo().current_dir(root).args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
        steps.run("public API snapshots (api/)", || {
            crate::api::run(root, false, &[])
        })?;
    }
    let services = services::start(root)?;
    let with_env = |cmd: &mut Command| {
        for (k, v) in &services.env {
            cmd.env(k, v);
        }
    };
    steps.run("tests", || {
        let mut cmd = cargo();
        cmd.current_dir(root)
            .args(["test", "--workspace", "--all-features"]);
        with_env(&mut cmd);
        run_cmd(&mut cmd)
    })?;
    steps.run("the README's first command", || {
        // Run where a user would, so the demo's files land in a scratch directory.
        let scratch = root.join("target").join("readme-example");
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).context("cannot create target/readme-example")?;
        run_cmd(cargo().current_dir(&scratch).args([
            "run",
            "--quiet",
            "--manifest-path",
            &root.join("Cargo.toml").display().to_string(),
            "--example",
            "object_storage",
        ]))
    })?;
    let python_bin = services
        .env
        .iter()
        .find(|(k, _)| k == "DJ_TEST_PYTHON")
        .map(|(_, v)| v.clone());
    for script in interop_scripts(root) {
        let name = format!(
            "interop {}",
            script.strip_prefix(root).unwrap_or(&script).display()
        );
        let Some(py) = &python_bin else {
            eprintln!("xtask: SKIPPED {name}: no Python venv");
            continue;
        };
        steps.run(&name, || {
            let mut cmd = Command::new(py);
            cmd.current_dir(root).arg(&script);
            with_env(&mut cmd);
            run_cmd(&mut cmd)
        })?;
    }
    let package = root.join("crates").join("python");
    if package.join("pyproject.toml").exists() {
        let name = "python package dj_rs (maturin, pytest)";
        match &python_bin {
            None => eprintln!("xtask: SKIPPED {name}: no Python venv"),
            Some(py) => {
                steps.run(name, || python_package(root, &package, py, &with_env))?;
                steps.run("DataJoint 2.3.5's own tests with dj_rs installed", || {
                    datajoint_suite(root, &package, py, &with_env)
                })?;
            }
        }
    }
    if root.join("fuzz").join("Cargo.toml").exists() {
        steps.run("fuzz (brief)", || fuzz(root))?;
    }
    if lint {
        steps.run("docs", || {
            run_cmd(
                cargo()
                    .current_dir(root)
                    .env("RUSTDOCFLAGS", "-D warnings")
                    .args(["doc", "--workspace", "--no-deps", "--all-features"]),
            )
        })?;
    }
    eprintln!("\nxtask: all steps passed:");
    for (name, secs) in &steps.done {
        eprintln!("  {name:<48} {secs:>7.1}s");
    }
    if !services.skipped.is_empty() {
        eprintln!(
            "xtask: these services were unavailable and their tests skipped: {}",
            services.skipped.join(", ")
        );
    }
    Ok(())
}

/// Build the `dj_rs` wheel with maturin (a debug build: quicker to compile, and what the tests
/// need), install it into the venv with pip, and run its pytest suite. pytest exits 5 when it
/// collects no tests; like every non-zero exit, that fails the step.
fn python_package(
    root: &Path,
    package: &Path,
    python_bin: &str,
    with_env: &dyn Fn(&mut Command),
) -> Result<()> {
    let py = Path::new(python_bin);
    let bin = py
        .parent()
        .context("the venv python has no parent directory")?;
    let wheels = root.join("target").join("python-wheels");
    let _ = std::fs::remove_dir_all(&wheels);
    run_cmd(
        Command::new(bin.join("maturin"))
            .current_dir(package)
            .args(["build", "--interpreter"])
            .arg(py)
            .arg("--out")
            .arg(&wheels),
    )?;
    let wheel = std::fs::read_dir(&wheels)
        .with_context(|| format!("cannot list {}", wheels.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .with_context(|| format!("maturin left no wheel in {}", wheels.display()))?;
    run_cmd(
        Command::new(py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--force-reinstall",
                "--no-deps",
            ])
            .arg(&wheel),
    )?;
    let mut cmd = Command::new(py);
    cmd.current_dir(package)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]);
    with_env(&mut cmd);
    run_cmd(&mut cmd)
}

/// Run DataJoint 2.3.5's tests for blobs, stored blobs and attachments with `dj_rs.install()`
/// active (the wheel `python_package` installed): the script downloads them from PyPI into
/// `.cache` and runs them with pytest against the test servers.
fn datajoint_suite(
    root: &Path,
    package: &Path,
    python_bin: &str,
    with_env: &dyn Fn(&mut Command),
) -> Result<()> {
    let mut cmd = Command::new(python_bin);
    cmd.current_dir(root)
        .arg(package.join("upstream").join("run_datajoint_suite.py"));
    with_env(&mut cmd);
    run_cmd(&mut cmd)
}

/// Run every fuzz target for a few seconds with nightly and cargo-fuzz (installed if missing).
fn fuzz(root: &Path) -> Result<()> {
    let has_fuzz = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fuzz {
        run_cmd(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
            .context("cannot install cargo-fuzz")?;
    }
    let out = Command::new("cargo")
        .current_dir(root)
        .args(["+nightly", "fuzz", "list"])
        .output()
        .context("cargo fuzz list")?;
    let targets = String::from_utf8_lossy(&out.stdout).into_owned();
    if targets.trim().is_empty() {
        bail!("fuzz/ exists but `cargo fuzz list` shows no targets");
    }
    for target in targets.lines().map(str::trim).filter(|t| !t.is_empty()) {
        run_cmd(Command::new("cargo").current_dir(root).args([
            "+nightly",
            "fuzz",
            "run",
            target,
            "--",
            "-max_total_time=20",
            "-rss_limit_mb=2048",
        ]))?;
    }
    Ok(())
}

/// `cargo xtask bench`: criterion benches, then every `benches/*.py` comparison with the venv.
pub fn bench(root: &Path, args: &[String]) -> Result<()> {
    let python_bin = python::ensure_venv(root)?;
    let services = services::start(root)?;
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["bench", "--workspace", "--all-features"])
        .args(args);
    for (k, v) in &services.env {
        cmd.env(k, v);
    }
    run_cmd(&mut cmd)?;
    for dir in ["codecs", "crates", "stores"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(files) = std::fs::read_dir(e.path().join("benches")) else {
                continue;
            };
            for f in files
                .flatten()
                .map(|f| f.path())
                .filter(|p| p.extension().is_some_and(|x| x == "py"))
                // `_name.py` files are helpers the scripts import.
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('_'))
                })
            {
                let mut cmd = Command::new(&python_bin);
                cmd.current_dir(root).arg(&f);
                for (k, v) in &services.env {
                    cmd.env(k, v);
                }
                run_cmd(&mut cmd)?;
            }
        }
    }
    Ok(())
}

/// `cargo xtask golden`: regenerate the blob golden vectors with DataJoint Python.
pub fn golden(root: &Path) -> Result<()> {
    let python_bin = python::ensure_venv(root)?;
    let script = root.join("codecs/blob/tests/golden/make_golden.py");
    if !script.exists() {
        bail!("{} is missing", script.display());
    }
    run_cmd(Command::new(python_bin).current_dir(root).arg(script))
}
