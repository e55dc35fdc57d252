//! The one error type of the `dj` command, and its exit codes.

use datajoint::dj_core;
use datajoint::schema as dj_schema;

/// Exit code: success (GC clean or done, verification clean).
pub const EXIT_OK: u8 = 0;
/// Exit code: an error (configuration, database, store, I/O).
pub const EXIT_ERROR: u8 = 1;
/// Exit code: the command line is wrong (clap's usage errors, and unsafe option combinations
/// such as `gc --delete --grace 0s` without `--allow-zero-grace`).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: garbage collection had scan errors, so it deleted nothing (a dry run's report is
/// incomplete).
pub const EXIT_GC_REFUSED: u8 = 3;
/// Exit code: another garbage collection of the store holds its lock.
pub const EXIT_LOCKED: u8 = 4;
/// Exit code: verification found missing or corrupt objects.
pub const EXIT_DAMAGED: u8 = 5;

/// Everything the `dj` command reports as an error. Messages name the configuration key, the
/// store, the table or the attribute at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The configuration could not be loaded or is invalid (the message names the key).
    #[error(transparent)]
    Config(dj_core::Error),

    /// A core error: codec, store, type spec.
    #[error(transparent)]
    Core(#[from] dj_core::Error),

    /// A database or schema-layer error.
    #[error(transparent)]
    Schema(#[from] dj_schema::Error),

    /// The command line asks for something unsafe or contradictory.
    #[error("{0}")]
    Usage(String),

    /// `--config` names a file that does not exist.
    #[error("configuration file `{path}` (given with --config) does not exist")]
    ConfigFileMissing {
        /// The path as given.
        path: String,
    },

    /// `--config` names a file that `DJ_IGNORE_CONFIG_FILE` tells the loader to skip.
    #[error(
        "configuration file `{path}` was given with --config, but DJ_IGNORE_CONFIG_FILE is set; \
         unset one of them"
    )]
    ConfigIgnored {
        /// The path as given.
        path: String,
    },

    /// The configured SQLite file does not exist (the command would otherwise create it).
    #[error(
        "the SQLite database `{path}` (configuration key `database.path`) does not exist; \
         check the path, or the directory the configuration was found in"
    )]
    NoDatabase {
        /// The file.
        path: String,
    },

    /// A `--key` argument is malformed, names no attribute, or has a bad value.
    #[error("--key `{arg}`: {message}")]
    BadKey {
        /// The argument as given.
        arg: String,
        /// What is wrong.
        message: String,
    },

    /// No row matches the key.
    #[error("no row of `{table}` matches {key}")]
    NoRow {
        /// `schema.table`.
        table: String,
        /// The key, as JSON.
        key: String,
    },

    /// More than one row matches the key.
    #[error("{found} rows of `{table}` match {key}; give the whole primary key ({primary_key})")]
    ManyRows {
        /// `schema.table`.
        table: String,
        /// The key, as JSON.
        key: String,
        /// How many matched.
        found: usize,
        /// The primary-key attributes.
        primary_key: String,
    },

    /// The attribute does not exist.
    #[error("table `{table}` has no attribute `{attribute}`; its attributes: {known}")]
    NoAttribute {
        /// `schema.table`.
        table: String,
        /// The attribute asked for.
        attribute: String,
        /// The table's attributes.
        known: String,
    },

    /// `blob cat` was pointed at an attribute that is not a `<blob>` / `<blob@>`.
    #[error(
        "table `{table}`, attribute `{attribute}` is `{spec}`, not a <blob> or <blob@> attribute"
    )]
    NotBlob {
        /// `schema.table`.
        table: String,
        /// The attribute.
        attribute: String,
        /// Its declared type.
        spec: String,
    },

    /// `dj delete` was not confirmed.
    #[error("delete cancelled: nothing was deleted from `{table}`")]
    Cancelled {
        /// `schema.table`.
        table: String,
    },

    /// Writing a file failed.
    #[error("cannot write `{path}`: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The build is missing a plugin it should link, or one is registered twice.
    #[error("this build of dj is incomplete: {0}")]
    Registry(datajoint::Error),

    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),

    /// Serializing a report failed.
    #[error("cannot serialize the report as JSON: {0}")]
    Json(#[from] serde_json::Error),

    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Schema(dj_schema::Error::GcLocked { .. }) => EXIT_LOCKED,
            _ => EXIT_ERROR,
        }
    }

    /// Whether this is a closed pipe on output (`dj … | head`), which is not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Result alias of this crate.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
