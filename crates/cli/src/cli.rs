//! The command line, as clap sees it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::duration::parse_duration;

/// The exit codes, shown at the end of `dj --help` (and in `docs/operations.md`).
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success: the check passed, the collection or migration is done, every object verified
  1  error: bad configuration, database or store failure (the message names the key, store,
     table or attribute)
  2  usage: bad arguments, or an unsafe combination (gc --delete with a grace period under
     2h, or --grace 0s without --allow-zero-grace)
  3  gc: scan errors, so nothing was (or would be) deleted and the report is incomplete
  4  gc: another garbage collection of the store holds its lock
  5  verify: objects are missing or corrupt

Configuration: datajoint.json is searched from the working directory upward (stopping at a
directory holding .git), DJ_* environment variables override it, and .secrets/ beside it fills
missing credentials. --config PATH names the file instead.";

/// `dj`: look after a DataJoint database and its object stores.
#[derive(Debug, Parser)]
#[command(
    name = "dj",
    version,
    about = "Look after a DataJoint database and its object stores: check the configuration, \
             list schemas and tables, collect garbage, verify and migrate stored objects",
    after_help = EXIT_CODES_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// The configuration file to use instead of searching for `datajoint.json` (any name); the
    /// DJ_* environment overrides and the `.secrets/` beside it still apply.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print JSON on standard output instead of text (no progress bar).
    #[arg(long, global = true)]
    pub json: bool,

    /// Say more (gc: list the orphaned paths; config check: the whole configuration).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Schemas of the database.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Tables of a schema.
    #[command(subcommand)]
    Table(TableCommand),
    /// Collect garbage in a store: find objects no row references and (with --delete) delete
    /// those older than the grace period. A dry run by default.
    #[command(after_help = EXIT_CODES_HELP)]
    Gc(GcArgs),
    /// Check that every object the rows reference exists and is intact.
    #[command(after_help = EXIT_CODES_HELP)]
    Verify(VerifyArgs),
    /// Move one attribute's objects from one store to another, then rewrite the rows.
    Migrate(MigrateArgs),
    /// Stored blobs.
    #[command(subcommand)]
    Blob(BlobCommand),
    /// The codecs and store protocols this build registers.
    Codecs,
}

/// `dj config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration; print the database settings and the stores, with
    /// every secret shown as `***`, and whether each store's protocol is linked into this build.
    Check,
}

/// `dj schema …`
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// List the schemas of the database.
    List,
}

/// `dj table …`
#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// List the tables of a schema, with their tiers and class names.
    List {
        /// The schema.
        schema: String,
    },
    /// Print a table's definition.
    Describe {
        /// The schema.
        schema: String,
        /// The table: its SQL name (`session`, `#rig`, `session__trial`) or class name
        /// (`Session`, `Rig`, `Session.Trial`).
        table: String,
    },
}

/// `dj gc`
#[derive(Debug, Args)]
pub struct GcArgs {
    /// The store to collect.
    #[arg(long, value_name = "STORE")]
    pub store: String,
    /// Collect only this schema (repeat for several). Default: every schema that uses stores.
    #[arg(long = "schema", value_name = "SCHEMA")]
    pub schemas: Vec<String>,
    /// Report only, delete nothing (the default).
    #[arg(long, conflicts_with = "delete")]
    pub dry_run: bool,
    /// Delete the orphans older than the grace period.
    #[arg(long)]
    pub delete: bool,
    /// Objects younger than this are never deleted: 24h, 30m, 0s, 1h30m. With `--delete` at least
    /// 2h (an insert may reuse an unreferenced object up to 1h old as it is), or 0s with
    /// `--allow-zero-grace`.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub grace: Duration,
    /// Allow `--grace 0s` with `--delete` (deletes objects an insert in progress may have just
    /// written or be reusing: only while nothing writes to the store).
    #[arg(long)]
    pub allow_zero_grace: bool,
}

/// `dj verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Check only objects in this store. Default: every store.
    #[arg(long, value_name = "STORE")]
    pub store: Option<String>,
    /// Read only this schema (repeat for several). Default: every schema that uses stores.
    #[arg(long = "schema", value_name = "SCHEMA")]
    pub schemas: Vec<String>,
}

/// `dj migrate`
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The schema.
    pub schema: String,
    /// The table (SQL or class name).
    pub table: String,
    /// The attribute whose objects move.
    pub attribute: String,
    /// The source store.
    #[arg(long, value_name = "STORE")]
    pub from: String,
    /// The target store.
    #[arg(long, value_name = "STORE")]
    pub to: String,
    /// Migrate only the rows matching `attribute=value` (repeat for several attributes).
    #[arg(long = "key", value_name = "ATTR=VALUE")]
    pub keys: Vec<String>,
    /// Report what would move; copy and rewrite nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `dj blob …`
#[derive(Debug, Subcommand)]
pub enum BlobCommand {
    /// Print one row's `<blob>` or `<blob@>` value as JSON (arrays as
    /// `{"dtype", "shape", "data"}`, with `data` as nested lists in index order).
    Cat {
        /// The schema.
        schema: String,
        /// The table (SQL or class name).
        table: String,
        /// The attribute.
        attribute: String,
        /// The row: `attribute=value`, repeated for each primary-key attribute.
        #[arg(long = "key", value_name = "ATTR=VALUE", required = true)]
        keys: Vec<String>,
    },
}
