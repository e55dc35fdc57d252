//! # dj-cli: the `dj` command
//!
//! `dj` looks after a DataJoint database and its object stores from the shell: it checks the
//! configuration, lists schemas and tables, collects garbage in a store, verifies that every
//! stored object is there and intact, moves an attribute's objects between stores, and prints a
//! stored blob as JSON. It also draws a schema's dependency graph (`dj diagram`: SVG, Mermaid or
//! DOT), shows and tends a Computed or Imported table's job queue (`dj jobs`), and deletes rows
//! with their dependents after showing how many of each table would go (`dj delete`, asking
//! first in DataJoint's safemode); `docs/diagram.md` describes them. It reads the same `datajoint.json` as DataJoint Python and dj-rs
//! programs, and links the `datajoint` facade with the SQLite, PostgreSQL and MySQL backends,
//! every codec, and the `file`, `memory` and `s3` stores (`gcs` and `azure` with the features of
//! the same names).
//!
//! An example session:
//!
//! ```text
//! $ dj config check
//! configuration  /lab/datajoint.json
//! database       postgresql at db.lab:5432/postgres
//!   chosen by    `database.backend` in the configuration file
//!   backend      postgresql
//!   host         db.lab
//!   port         5432
//!   user         alice
//!   password     ***
//! stores         default: main
//!   main         s3     s3://lab/oas at s3.amazonaws.com         linked
//!   cold         file   /archive/oas                             linked
//! ok
//! $ dj schema list
//! ephys
//! lab
//! $ dj table describe lab Scan
//! scan_id : int32
//! ---
//! image : <blob@main>
//! $ dj gc --store main --grace 0s -v          # a dry run: deletes nothing
//! gc of store `main` (dry run, grace 0s) over 2 schema(s): ephys, lab
//!   section  referenced  stored             orphaned           too young          deleted
//!   hash              4  5 (345 B)          1 (69 B)           0 (0 B)            0 (0 B)
//!   schema            0  0 (0 B)            0 (0 B)            0 (0 B)            0 (0 B)
//!   other keys (never touched): 0   rescued: 0
//! orphans:
//!   _hash/lab/rdhpo7kzwtdai2toewm2gk6ntu
//! dry run: 1 orphan(s), 69 B, would be deleted; run again with --delete to delete them
//! $ dj gc --store main --delete --grace 48h
//! $ dj verify --store main > /dev/null; echo $?
//! 0
//! $ dj migrate lab scan image --from main --to cold --json > migration.json
//! $ dj blob cat lab scan image --key scan_id=1
//! {"dtype":"float64","shape":[2,2],"data":[[1.0,2.0],[3.0,4.0]]}
//! ```
//!
//! Every command takes `--json` (a JSON document on standard output, no progress bar), `-v`,
//! and `--config PATH`. The exit codes ([`EXIT_OK`] … [`EXIT_DAMAGED`]) are listed by
//! `dj --help` and in `docs/operations.md`.
//!
//! The library holds the whole command, so that it can be tested and documented: [`main`] is
//! what the binary runs, [`run`] runs a parsed [`Cli`] and returns the exit code.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use datajoint::Config;
use datajoint::config::ConfigLoader;

pub mod cli;
mod commands;
pub mod duration;
pub mod error;
pub mod item_json;
mod lifecycle;
mod pipeline;
pub mod progress;

pub use cli::Cli;
pub use error::{
    CliError, EXIT_DAMAGED, EXIT_ERROR, EXIT_GC_REFUSED, EXIT_LOCKED, EXIT_OK, EXIT_USAGE, Result,
};

use cli::{Command, ConfigCommand};

/// Parse the process arguments, run the command, and return its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version print to stdout and succeed; usage errors exit with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE));
        }
    };
    ExitCode::from(run(&cli))
}

/// Run a parsed command line, writing to standard output, and return the exit code. Errors are
/// printed to standard error (and, with `--json`, as `{"error", "exit_code"}` on standard
/// output).
pub fn run(cli: &Cli) -> u8 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match execute(cli, &mut out) {
        Ok(code) => code,
        Err(e) if e.is_broken_pipe() => EXIT_OK,
        Err(e) => {
            let code = e.exit_code();
            eprintln!("error: {e}");
            if cli.json {
                let doc = serde_json::json!({ "error": e.to_string(), "exit_code": code });
                let _ = writeln!(out, "{doc:#}");
            }
            code
        }
    }
}

/// What every command needs besides its own arguments.
pub(crate) struct Ctx<'a> {
    pub json: bool,
    pub verbose: u8,
    pub out: &'a mut dyn Write,
}

impl Ctx<'_> {
    /// Write one line.
    pub fn line(&mut self, text: impl AsRef<str>) -> Result<()> {
        writeln!(self.out, "{}", text.as_ref()).map_err(CliError::Output)
    }

    /// Write a JSON document, pretty-printed.
    pub fn emit<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        self.line(text)
    }
}

/// Run a parsed command line, writing its output (text, or JSON with `--json`) to `out`, and
/// return the exit code of a command that ran, or the error that stopped it (see
/// [`CliError::exit_code`]). Unlike [`run`], nothing is printed for an error: this is the entry
/// point for programs that embed the command (the `dj_rs` Python package does).
pub fn execute(cli: &Cli, out: &mut dyn Write) -> Result<u8> {
    let mut ctx = Ctx {
        json: cli.json,
        verbose: cli.verbose,
        out,
    };
    match &cli.command {
        Command::Codecs => commands::codecs(&mut ctx),
        Command::Config(ConfigCommand::Check) => {
            let config = load_config(cli.config.as_deref())?;
            commands::config_check(&mut ctx, &config)
        }
        command => {
            if let Command::Gc(args) = command {
                lifecycle::check_gc_args(args)?;
            }
            let config = load_config(cli.config.as_deref())?;
            datajoint::check_registry().map_err(CliError::Registry)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(CliError::Runtime)?;
            runtime.block_on(commands::database_command(&mut ctx, command, config))
        }
    }
}

/// Load the configuration: `explicit` when given (see [`Cli::config`]), else the way DataJoint
/// does (upward search, `DJ_*` environment, secrets).
pub fn load_config(explicit: Option<&Path>) -> Result<Config> {
    let Some(path) = explicit else {
        return Config::load().map_err(CliError::Config);
    };
    if !path.is_file() {
        return Err(CliError::ConfigFileMissing {
            path: path.display().to_string(),
        });
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let config = ConfigLoader::new(dir)
        .file(path)
        .load()
        .map_err(CliError::Config)?;
    if config.source.is_none() {
        return Err(CliError::ConfigIgnored {
            path: path.display().to_string(),
        });
    }
    Ok(config)
}
