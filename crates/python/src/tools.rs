//! `dj gc`, `dj verify`, `dj migrate` and the whole `dj` command, run from Python.
//!
//! Both entry points parse a `dj` command line with the CLI's own parser ([`dj_cli::Cli`]) and
//! run it with the CLI's own code ([`dj_cli::execute`], [`dj_cli::run`]): the configuration
//! search, the `DJ_*` overrides, the safety refusals and the reports are the command's, not a
//! copy. The GIL is released while a command runs (it starts its own tokio runtime).

use clap::Parser;
use dj_cli::{Cli, EXIT_USAGE};
use pyo3::create_exception;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

create_exception!(
    _native,
    NativeToolError,
    PyRuntimeError,
    "A `dj` command that stopped with an error; args are (message, exit code)."
);

/// Parse `argv` (`argv[0]` is the program name) as a `dj` command line.
fn parse(argv: &[String]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(argv)
}

/// Run `argv` as the `dj` command does, printing to the process's standard output and error,
/// and return its exit code (`dj --help` and usage errors included).
#[pyfunction]
pub(crate) fn cli_main(py: Python<'_>, argv: Vec<String>) -> u8 {
    match parse(&argv) {
        Ok(cli) => py.detach(|| dj_cli::run(&cli)),
        Err(e) => {
            // Help and version print to stdout and succeed; usage errors exit with 2.
            let _ = e.print();
            u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE)
        }
    }
}

/// Run `argv` (a `dj … --json` command line) and return `(exit code, JSON text)`. A command
/// that stops with an error raises `NativeToolError(message, exit code)`; so does a command line
/// the parser refuses (exit code 2).
#[pyfunction]
pub(crate) fn run_json(py: Python<'_>, argv: Vec<String>) -> PyResult<(u8, String)> {
    let cli = parse(&argv).map_err(|e| {
        let code = u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE);
        let text = e.render().to_string();
        NativeToolError::new_err((text.trim_end().to_string(), code))
    })?;
    if !cli.json {
        return Err(NativeToolError::new_err((
            "run_json needs a command line with --json".to_string(),
            EXIT_USAGE,
        )));
    }
    let mut out = Vec::new();
    let result = py.detach(|| dj_cli::execute(&cli, &mut out));
    match result {
        Ok(code) => Ok((code, String::from_utf8_lossy(&out).into_owned())),
        Err(e) => Err(NativeToolError::new_err((e.to_string(), e.exit_code()))),
    }
}
