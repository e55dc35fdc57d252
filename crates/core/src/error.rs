//! The one error type of `dj-core`.

use std::fmt;

/// A boxed error from a lower layer (an object store client, the file system, a parser).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used throughout `dj-core` and by plugin crates.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core contracts.
///
/// Each message names what was at fault: the spec, the attribute, the store, the path or the
/// configuration key. Store errors say, through [`Error::is_retryable`], whether trying the same
/// operation again can succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A type spec such as `<blob@>` or `varchar(10)` could not be parsed.
    #[error("invalid type spec `{spec}`: {reason}")]
    InvalidTypeSpec {
        /// The spec as written.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No codec of that name is registered.
    #[error("unknown codec `<{name}>`; registered codecs: {known}")]
    UnknownCodec {
        /// The codec name, without brackets.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },

    /// A codec chain refers back to itself.
    #[error("circular codec reference: {chain}")]
    CircularCodec {
        /// The chain, outermost first, e.g. `<a> -> <b> -> <a>`.
        chain: String,
    },

    /// Two plugins registered the same name.
    #[error("{kind} `{name}` is registered twice: by {first} and by {second}")]
    DuplicateRegistration {
        /// `codec` or `store protocol`.
        kind: &'static str,
        /// The duplicated name.
        name: String,
        /// Where the first registration came from.
        first: String,
        /// Where the second registration came from.
        second: String,
    },

    /// A codec refused a value, a mode or a stored representation.
    ///
    /// When the refusal comes from another error (a parser's, a decoder's), that error is kept
    /// as [`source`](std::error::Error::source), so callers can downcast it; build such errors
    /// with [`Error::codec_source`]. The message already contains the source's text.
    #[error("codec <{codec}>{}: {message}", attribute_suffix(.attribute))]
    Codec {
        /// The codec's name.
        codec: String,
        /// The attribute being encoded or decoded, when known.
        attribute: Option<String>,
        /// What went wrong.
        message: String,
        /// The error that caused this one, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// A value had the wrong type for where it was used.
    #[error("wrong value type{}: expected {expected}, found {found}", attribute_suffix(.attribute))]
    WrongValueType {
        /// The attribute, when known.
        attribute: Option<String>,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },

    /// A configuration key is missing, unknown or has a bad value.
    #[error("configuration key `{key}`: {message}")]
    Config {
        /// The dotted key at fault, e.g. `stores.main.location`.
        key: String,
        /// What is wrong.
        message: String,
    },

    /// The configuration file could not be read or parsed.
    #[error("cannot read configuration file {path}: {message}")]
    ConfigFile {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },

    /// A store name is used that the configuration does not define.
    #[error("store `{store}` is not configured; configured stores: {known}")]
    UnknownStore {
        /// The store name.
        store: String,
        /// The configured store names, comma-separated.
        known: String,
    },

    /// A bare `@` was used but no default store is configured.
    #[error(
        "attribute spec `{spec}` uses the default store, but `stores.default` is not set; \
         set `stores.default` to the name of a configured store"
    )]
    NoDefaultStore {
        /// The spec that asked for the default store.
        spec: String,
    },

    /// No plugin implements a store protocol.
    #[error(
        "store `{store}` uses protocol `{protocol}`, which no linked plugin provides; \
         available protocols: {known}"
    )]
    UnknownProtocol {
        /// The store name.
        store: String,
        /// The protocol.
        protocol: String,
        /// The registered protocols.
        known: String,
    },

    /// A key or path would escape the store root or is otherwise malformed.
    #[error("invalid path `{path}`: {reason}")]
    InvalidPath {
        /// The offending path (or path component).
        path: String,
        /// Why it is rejected.
        reason: String,
    },

    /// The object does not exist.
    #[error("object `{path}` not found in store `{store}`")]
    NotFound {
        /// The store name.
        store: String,
        /// The key inside the store.
        path: String,
    },

    /// A create-if-absent write found an object already at the key.
    #[error("object `{path}` already exists in store `{store}`")]
    AlreadyExists {
        /// The store name.
        store: String,
        /// The key inside the store.
        path: String,
    },

    /// A store does not support an operation.
    #[error("store `{store}` does not support {operation}")]
    NotSupported {
        /// The store name.
        store: String,
        /// The operation.
        operation: String,
    },

    /// Stored bytes do not match what was recorded for them.
    #[error("integrity check failed for `{path}` in store `{store}`: {message}")]
    Integrity {
        /// The store name.
        store: String,
        /// The key.
        path: String,
        /// What did not match.
        message: String,
    },

    /// Any other store failure.
    #[error("store `{store}` failed to {operation} `{path}`{}: {source}", if *.retryable { " (retryable)" } else { "" })]
    Store {
        /// The store name.
        store: String,
        /// The operation, e.g. `put`, `get`, `list`.
        operation: &'static str,
        /// The key involved (or the prefix, for listings).
        path: String,
        /// Whether repeating the same operation may succeed.
        retryable: bool,
        /// The underlying error.
        source: BoxError,
    },

    /// A local file operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The local path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Whether an I/O error of this kind is transient: a timeout, or a connection refused, reset,
/// aborted or dropped, or an interrupted or short read. Stores use it to set the `retryable` flag
/// of [`Error::Store`] from the error's type, never from its message.
pub fn is_transient_io(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::TimedOut
            | K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::Interrupted
            | K::WouldBlock
            | K::UnexpectedEof
    )
}

/// Whether an [`std::io::Error`] of a [transient](is_transient_io) kind is anywhere in `err`'s
/// source chain (`err` included).
///
/// ```
/// use std::io::{Error, ErrorKind};
/// use dj_core::error::has_transient_io;
/// let reset = Error::new(ErrorKind::ConnectionReset, "peer hung up");
/// assert!(has_transient_io(&reset));
/// assert!(!has_transient_io(&Error::new(ErrorKind::PermissionDenied, "timed out")));
/// ```
pub fn has_transient_io(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut link = Some(err);
    while let Some(e) = link {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| is_transient_io(io.kind()))
        {
            return true;
        }
        link = e.source();
    }
    false
}

fn attribute_suffix(attribute: &Option<String>) -> String {
    match attribute {
        Some(a) => format!(" (attribute `{a}`)"),
        None => String::new(),
    }
}

impl Error {
    /// Whether trying the same operation again may succeed (a timeout, a throttled or dropped
    /// connection). Errors about the request itself (bad key, missing object, bad config) are not
    /// retryable.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Store {
                retryable: true,
                ..
            }
        )
    }

    /// Whether this is a "not found" error.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Build an [`Error::Codec`] from a message.
    pub fn codec(codec: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Codec {
            codec: codec.into(),
            attribute: None,
            message: message.to_string(),
            source: None,
        }
    }

    /// Build an [`Error::Codec`] caused by `source`: the message is the source's text, and the
    /// source is kept (see [`std::error::Error::source`]).
    ///
    /// ```
    /// use std::error::Error as _;
    /// let parse = "x".parse::<u8>().unwrap_err();
    /// let e = dj_core::Error::codec_source("spikes", parse);
    /// assert_eq!(e.to_string(), "codec <spikes>: invalid digit found in string");
    /// assert!(e.source().unwrap().downcast_ref::<std::num::ParseIntError>().is_some());
    /// ```
    pub fn codec_source(
        codec: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::codec_context(codec, source.to_string(), source)
    }

    /// Build an [`Error::Codec`] with a message of its own, caused by `source`; the message
    /// should say what was being done and include the source's text when it helps.
    pub fn codec_context(
        codec: impl Into<String>,
        message: impl fmt::Display,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Codec {
            codec: codec.into(),
            attribute: None,
            message: message.to_string(),
            source: Some(source.into()),
        }
    }

    /// Build an [`Error::Config`].
    pub fn config(key: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Config {
            key: key.into(),
            message: message.to_string(),
        }
    }

    /// Build an [`Error::InvalidPath`].
    pub fn invalid_path(path: impl Into<String>, reason: impl fmt::Display) -> Self {
        Error::InvalidPath {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// Build an [`Error::WrongValueType`] without an attribute.
    pub fn wrong_type(expected: impl Into<String>, found: impl Into<String>) -> Self {
        Error::WrongValueType {
            attribute: None,
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// Attach the attribute name to codec and value-type errors that lack one.
    pub fn with_attribute(self, attr: &str) -> Self {
        match self {
            Error::Codec {
                codec,
                attribute: None,
                message,
                source,
            } => Error::Codec {
                codec,
                attribute: Some(attr.to_string()),
                message,
                source,
            },
            Error::WrongValueType {
                attribute: None,
                expected,
                found,
            } => Error::WrongValueType {
                attribute: Some(attr.to_string()),
                expected,
                found,
            },
            other => other,
        }
    }
}
