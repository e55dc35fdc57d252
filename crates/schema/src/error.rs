//! The one error type of `dj-schema`.

use crate::dialect::ErrorClass;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the schema layer can report. Messages name the table and, where one is at fault,
/// the attribute.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A core-contract error (type spec, codec, store, configuration), with where it happened.
    #[error("{}{source}", context_prefix(.table, .attribute))]
    Core {
        /// The table, `schema.table`, when known.
        table: Option<String>,
        /// The attribute, when known.
        attribute: Option<String>,
        /// The underlying error.
        #[source]
        source: Box<dj_core::Error>,
    },

    /// The database reported an error.
    #[error("{}database error: {source}", context_prefix(.table, &None))]
    Database {
        /// The table, `schema.table`, when known.
        table: Option<String>,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// A definition could not be parsed or declared.
    #[error("table `{table}`: definition error at line {line}, column {column}: {message}")]
    Definition {
        /// The table being declared.
        table: String,
        /// 1-based line in the definition.
        line: usize,
        /// 1-based column in that line.
        column: usize,
        /// What is wrong.
        message: String,
    },

    /// A name (schema, table, attribute, class) is not acceptable.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: String,
    },

    /// An attribute was named that the table or query does not have.
    #[error("table `{table}` has no attribute `{attribute}`{}", heading_suffix(.heading))]
    UnknownAttribute {
        /// The table, `schema.table`, or a summary of the query expression.
        table: String,
        /// The attribute.
        attribute: String,
        /// The attributes there are (empty when not listed).
        heading: Vec<String>,
    },

    /// A join or restriction by a query matched namesake attributes of different (or unknown)
    /// lineage: DataJoint's semantic check.
    #[error(
        "cannot match `{left}` with `{right}` on namesake attributes of different or missing lineage: {}; rename one side with proj, or use join_unchecked/restrict_unchecked",
        .attributes.join(", ")
    )]
    LineageConflict {
        /// The left operand.
        left: String,
        /// The right operand.
        right: String,
        /// Each conflicting attribute with both lineages: `name (left vs right)`.
        attributes: Vec<String>,
    },

    /// The operands of a union do not fit DataJoint's rules.
    #[error("cannot union `{left}` and `{right}`: {message}")]
    IncompatibleUnion {
        /// The left operand.
        left: String,
        /// The right operand.
        right: String,
        /// Which rule is broken.
        message: String,
    },

    /// A query operation is invalid (a projection naming an attribute twice, an aggregation
    /// whose group lacks the key, a delete through a join, ...).
    #[error("query `{expression}`: {message}")]
    InvalidQuery {
        /// The expression, summarized.
        expression: String,
        /// What is wrong.
        message: String,
    },

    /// The database rejected a query's SQL (an aggregate or condition written as SQL).
    #[error("the database rejected the query: {message}; SQL: {sql}")]
    BadExpression {
        /// The statement sent.
        sql: String,
        /// The server's message.
        message: String,
    },

    /// A primary-key attribute is missing from a row.
    #[error("table `{table}`: primary-key attribute `{attribute}` is missing")]
    MissingKey {
        /// The table.
        table: String,
        /// The missing attribute.
        attribute: String,
    },

    /// A value does not fit its attribute.
    #[error("table `{table}`, attribute `{attribute}`: {message}")]
    BadValue {
        /// The table.
        table: String,
        /// The attribute.
        attribute: String,
        /// What is wrong with the value.
        message: String,
    },

    /// An insert hit an existing primary key or unique index.
    #[error("table `{table}`: duplicate entry{}: {message}", key_suffix(.key))]
    Duplicate {
        /// The table.
        table: String,
        /// The key of the offending row, when known.
        key: Option<String>,
        /// The server's message.
        message: String,
    },

    /// A foreign key was violated (a missing parent on insert, or children on a plain delete).
    #[error("table `{table}`: foreign-key constraint violated: {message}")]
    ForeignKey {
        /// The table.
        table: String,
        /// The server's message.
        message: String,
    },

    /// The table does not exist in the schema.
    #[error("table `{table}` does not exist")]
    NoSuchTable {
        /// `schema.table`.
        table: String,
    },

    /// The schema does not exist.
    #[error("schema `{schema}` does not exist")]
    NoSuchSchema {
        /// The schema name.
        schema: String,
    },

    /// `fetch1` or `update1` found no row, or more than one.
    #[error("table `{table}`: expected exactly one row, found {found}")]
    NotOneRow {
        /// The table.
        table: String,
        /// How many rows matched.
        found: usize,
    },

    /// An operation the tier or the state of the table forbids.
    #[error("table `{table}`: {message}")]
    Refused {
        /// The table.
        table: String,
        /// Why.
        message: String,
    },

    /// A `make` of a Computed or Imported table failed for one key (its transaction was rolled
    /// back).
    #[error("table `{table}`: make failed for key {key}: {source}")]
    Make {
        /// The table being populated.
        table: String,
        /// The key, as `{attr: value, ...}`.
        key: String,
        /// The error `make` returned.
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A row could not be converted to or from a Rust type through serde.
    #[error("{}serde conversion failed: {message}", context_prefix(.table, &None))]
    Serde {
        /// The table, when known.
        table: Option<String>,
        /// What went wrong.
        message: String,
    },

    /// The connection configuration is unusable.
    #[error("connection configuration: {0}")]
    Connect(String),

    /// A backend was configured that this build does not include.
    #[error("backend `{0}` is not enabled in this build of dj-schema (cargo feature)")]
    BackendDisabled(&'static str),

    /// Another garbage collection holds the lock of this store.
    #[error("garbage collection of store `{store}` is already running: {detail}")]
    GcLocked {
        /// The store.
        store: String,
        /// Who holds the lock, or how to clear a stale one.
        detail: String,
    },

    /// Garbage collection of a store was refused before it started (options, configuration).
    #[error("garbage collection of store `{store}`: {message}")]
    Gc {
        /// The store.
        store: String,
        /// Why.
        message: String,
    },

    /// Moving an attribute's objects from one store to another failed; no row was rewritten.
    #[error("{0}")]
    Migration(Box<MigrationError>),
}

/// What went wrong in a migration of an attribute's objects between stores
/// ([`Error::Migration`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "table `{table}`, attribute `{attribute}`: migration from store `{from}` to `{to}` failed{}: {message}",
    path_suffix(.path)
)]
#[non_exhaustive]
pub struct MigrationError {
    /// The table, `schema.table`.
    pub table: String,
    /// The attribute.
    pub attribute: String,
    /// The source store.
    pub from: String,
    /// The target store.
    pub to: String,
    /// The object at fault, when one is.
    pub path: Option<String>,
    /// What went wrong.
    pub message: String,
}

fn path_suffix(path: &Option<String>) -> String {
    path.as_ref()
        .map(|p| format!(" at `{p}`"))
        .unwrap_or_default()
}

fn context_prefix(table: &Option<String>, attribute: &Option<String>) -> String {
    match (table, attribute) {
        (Some(t), Some(a)) => format!("table `{t}`, attribute `{a}`: "),
        (Some(t), None) => format!("table `{t}`: "),
        (None, Some(a)) => format!("attribute `{a}`: "),
        (None, None) => String::new(),
    }
}

fn heading_suffix(heading: &[String]) -> String {
    if heading.is_empty() {
        String::new()
    } else {
        format!(" (its attributes: {})", heading.join(", "))
    }
}

fn key_suffix(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!(" {k}")).unwrap_or_default()
}

impl From<dj_core::Error> for Error {
    fn from(source: dj_core::Error) -> Self {
        Error::Core {
            table: None,
            attribute: None,
            source: Box::new(source),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(source: sqlx::Error) -> Self {
        Error::Database {
            table: None,
            source,
        }
    }
}

impl Error {
    /// Attach a table name to an error that lacks one.
    pub(crate) fn in_table(self, name: &str) -> Self {
        match self {
            Error::Core {
                table: None,
                attribute,
                source,
            } => Error::Core {
                table: Some(name.to_string()),
                attribute,
                source,
            },
            Error::Database {
                table: None,
                source,
            } => classify_db(name, source),
            Error::Serde {
                table: None,
                message,
            } => Error::Serde {
                table: Some(name.to_string()),
                message,
            },
            other => other,
        }
    }

    /// Attach table and attribute to a core error.
    pub(crate) fn core_at(table: &str, attribute: &str, source: dj_core::Error) -> Self {
        Error::Core {
            table: Some(table.to_string()),
            attribute: Some(attribute.to_string()),
            source: Box::new(source),
        }
    }

    /// Whether this is a duplicate-key error.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Error::Duplicate { .. })
    }

    /// Whether this is a foreign-key violation.
    pub fn is_foreign_key(&self) -> bool {
        matches!(self, Error::ForeignKey { .. })
    }
}

/// Turn a driver error into a duplicate or foreign-key error where the server says so.
pub(crate) fn classify_db(table: &str, source: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &source {
        let message = db.message().to_string();
        match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => {
                return Error::Duplicate {
                    table: table.to_string(),
                    key: None,
                    message,
                };
            }
            sqlx::error::ErrorKind::ForeignKeyViolation => {
                return Error::ForeignKey {
                    table: table.to_string(),
                    message,
                };
            }
            _ => {}
        }
        // Some servers report constraint failures with codes the driver does not classify.
        if let Some(code) = db.code() {
            let class = crate::dialect::all()
                .into_iter()
                .find_map(|d| d.classify_code(code.as_ref()));
            match class {
                Some(ErrorClass::ForeignKey) => {
                    return Error::ForeignKey {
                        table: table.to_string(),
                        message,
                    };
                }
                Some(ErrorClass::Duplicate) => {
                    return Error::Duplicate {
                        table: table.to_string(),
                        key: None,
                        message,
                    };
                }
                None => {}
            }
        }
    }
    Error::Database {
        table: Some(table.to_string()),
        source,
    }
}
