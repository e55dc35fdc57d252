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
     table or attribute), or a delete that was not confirmed
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
             list schemas and tables, draw the pipeline, tend job queues, delete with the \
             cascade shown first, collect garbage, verify and migrate stored objects",
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
    /// Draw the dependency graph of one or more schemas, as DataJoint's Diagram does (SVG laid
    /// out without Graphviz, Mermaid, or Graphviz DOT; with --json the graph itself).
    Diagram(DiagramArgs),
    /// The job queue (`~~<table>`) of a Computed or Imported table: counts by status and the
    /// errors with their messages; refresh it, clear its errors, ignore keys.
    Jobs(JobsArgs),
    /// Delete rows and, first, every row that depends on them, after showing how many rows of
    /// each table would go; asks for confirmation when the configuration's `safemode` is true
    /// (DataJoint's default).
    Delete(DeleteArgs),
}

/// The output format of `dj diagram`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DiagramFormat {
    /// A standalone SVG image.
    Svg,
    /// A Mermaid flowchart (for Markdown).
    Mermaid,
    /// Graphviz DOT text (`dot -Tpng`).
    Dot,
}

/// `dj diagram`
#[derive(Debug, Args)]
pub struct DiagramArgs {
    /// The schema (repeat for several, drawn together).
    #[arg(required = true, value_name = "SCHEMA")]
    pub schemas: Vec<String>,
    /// The output format.
    #[arg(long, value_enum, default_value = "svg")]
    pub format: DiagramFormat,
    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// TB (parents above children) or LR (parents to the left, the default of DataJoint 2.3.5's
    /// `display.diagram_direction`).
    #[arg(long, default_value = "TB", value_parser = parse_direction)]
    pub direction: datajoint::schema::diagram::Direction,
    /// Also draw, whole, every schema the given ones reference (transitively).
    #[arg(long)]
    pub upstream: bool,
    /// Also draw, whole, every schema that references the given ones (transitively).
    #[arg(long)]
    pub downstream: bool,
}

fn parse_direction(s: &str) -> Result<datajoint::schema::diagram::Direction, String> {
    s.parse()
}

/// `dj jobs`
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// The table: `SCHEMA.TABLE` (SQL or class name: `lab.__clean`, `lab.Clean`), or the schema
    /// with the table as a second argument.
    pub target: String,
    /// The table, when the first argument is only the schema.
    pub table: Option<String>,
    /// Add the keys of the default key source that are neither made nor queued as pending jobs,
    /// and remove jobs whose keys left it (DataJoint's `jobs.refresh()`).
    #[arg(long)]
    pub refresh: bool,
    /// With --refresh: put reservations older than this back as pending (a worker that died):
    /// 30m, 2h, 90s.
    #[arg(long, value_name = "DURATION", requires = "refresh", value_parser = parse_duration)]
    pub orphan_timeout: Option<Duration>,
    /// Delete the jobs in `error` status, so that the next populate tries their keys again.
    #[arg(long)]
    pub clear_errors: bool,
    /// Mark a key `ignore` so that populate skips it: `ATTR=VALUE[,ATTR=VALUE…]` with the job
    /// table's primary key (repeat for several keys).
    #[arg(long = "ignore", value_name = "KEY")]
    pub ignore: Vec<String>,
    /// Follow the table while workers elsewhere populate it: a progress bar of the keys made
    /// out of its key source, with the queue's counts, until every key is made, until no key
    /// is left that a worker could take (the rest failed or ignored), or Ctrl-C; then the
    /// report. On standard error; a line per change when that is not a terminal.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: how often to look (1s, 10s, 1m).
    #[arg(long, value_name = "DURATION", requires = "watch", default_value = "1s",
          value_parser = parse_duration)]
    pub interval: Duration,
}

/// `dj delete`
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The table: `SCHEMA.TABLE` (SQL or class name), or the schema with the table as a second
    /// argument.
    pub target: String,
    /// The table, when the first argument is only the schema.
    pub table: Option<String>,
    /// Delete only rows matching this SQL condition (repeat: all must hold). Without any, every
    /// row of the table.
    #[arg(long = "where", value_name = "CONDITION")]
    pub conditions: Vec<String>,
    /// Delete only the row with this key: `ATTR=VALUE` (repeat for each attribute).
    #[arg(long = "key", value_name = "ATTR=VALUE")]
    pub keys: Vec<String>,
    /// Do not ask, even in safemode.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show what would be deleted; delete nothing.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
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
