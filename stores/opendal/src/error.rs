//! How OpenDAL errors become [`dj_core::Error`]s.

use std::error::Error as StdError;
use std::fmt;

use dj_core::Error;
use opendal::ErrorKind;

/// An OpenDAL error together with a description of the backend it came from, so that a message
/// names the service and its root as well as the store and key.
#[derive(Debug)]
pub struct BackendError {
    backend: String,
    source: opendal::Error,
}

impl BackendError {
    /// The OpenDAL error.
    pub fn inner(&self) -> &opendal::Error {
        &self.source
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.backend, self.source)
    }
}

impl StdError for BackendError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

/// Whether an OpenDAL error may go away when the same operation is tried again: OpenDAL marks it
/// temporary (timeouts, dropped connections, 5xx answers) or the service throttled the request.
pub(crate) fn is_retryable(e: &opendal::Error) -> bool {
    e.is_temporary() || e.kind() == ErrorKind::RateLimited
}

/// Map an OpenDAL error from `operation` on `path` of store `store` (described as `backend`).
///
/// - `NotFound` is [`Error::NotFound`] for reads (`get`, `head`); for writes and listings it
///   means the bucket, container or root directory is missing, which is a non-retryable
///   [`Error::Store`] that says so.
/// - `AlreadyExists` and `ConditionNotMatch` on a write are [`Error::AlreadyExists`]; a condition
///   that fails on a read means the object changed while it was read, which is retryable.
/// - `IsADirectory` on a read is [`Error::NotFound`]: a key that only prefixes others is no object.
/// - `Unsupported` is [`Error::NotSupported`].
/// - Everything else is [`Error::Store`], retryable when OpenDAL says the error is temporary or
///   the request was rate limited.
pub(crate) fn map_error(
    store: &str,
    backend: &str,
    operation: &'static str,
    path: &str,
    e: opendal::Error,
) -> Error {
    let is_read = matches!(operation, "get" | "head" | "read");
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::IsADirectory if is_read => Error::NotFound {
            store: store.to_string(),
            path: path.to_string(),
        },
        ErrorKind::NotFound => Error::Store {
            store: store.to_string(),
            operation,
            path: path.to_string(),
            retryable: false,
            source: format!("{backend}: the bucket, container or directory does not exist ({e})")
                .into(),
        },
        ErrorKind::AlreadyExists | ErrorKind::ConditionNotMatch if !is_read => {
            Error::AlreadyExists {
                store: store.to_string(),
                path: path.to_string(),
            }
        }
        ErrorKind::ConditionNotMatch => Error::Store {
            store: store.to_string(),
            operation,
            path: path.to_string(),
            retryable: true,
            source: format!("{backend}: the object changed while it was read ({e})").into(),
        },
        ErrorKind::Unsupported => Error::NotSupported {
            store: store.to_string(),
            operation: format!("{operation} of `{path}` ({backend}: {e})"),
        },
        _ => Error::Store {
            store: store.to_string(),
            operation,
            path: path.to_string(),
            retryable: is_retryable(&e),
            source: Box::new(BackendError {
                backend: backend.to_string(),
                source: e,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn err(kind: ErrorKind) -> opendal::Error {
        opendal::Error::new(kind, "boom")
    }

    const BACKEND: &str = "opendal s3 service, bucket `b`, root `/lab/`";

    #[test]
    fn not_found_on_reads_names_store_and_path() {
        for op in ["get", "head"] {
            let e = map_error("main", BACKEND, op, "a/b.bin", err(ErrorKind::NotFound));
            assert!(e.is_not_found(), "{e}");
            assert_eq!(e.to_string(), "object `a/b.bin` not found in store `main`");
        }
        let e = map_error("main", BACKEND, "get", "dir", err(ErrorKind::IsADirectory));
        assert!(e.is_not_found(), "{e}");
    }

    #[test]
    fn not_found_on_writes_is_a_missing_bucket() {
        let e = map_error("main", BACKEND, "put", "k", err(ErrorKind::NotFound));
        assert!(!e.is_not_found() && !e.is_retryable(), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("store `main` failed to put `k`")
                && text.contains("does not exist")
                && text.contains(BACKEND),
            "{text}"
        );
    }

    #[test]
    fn conflicts_on_writes_are_already_exists() {
        for kind in [ErrorKind::AlreadyExists, ErrorKind::ConditionNotMatch] {
            let e = map_error("main", BACKEND, "put", "k/x", err(kind));
            assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
            assert_eq!(e.to_string(), "object `k/x` already exists in store `main`");
        }
        // On a read, a failed condition means the object changed underneath: retry.
        let e = map_error(
            "main",
            BACKEND,
            "get",
            "k",
            err(ErrorKind::ConditionNotMatch),
        );
        assert!(e.is_retryable() && !e.is_not_found(), "{e}");
    }

    #[test]
    fn retryable_follows_opendal_status() {
        let temporary = err(ErrorKind::Unexpected).set_temporary();
        let e = map_error("main", BACKEND, "put", "k", temporary);
        assert!(e.is_retryable(), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("store `main` failed to put `k` (retryable)") && text.contains(BACKEND),
            "{text}"
        );
        let permanent = err(ErrorKind::Unexpected).set_permanent();
        assert!(!map_error("main", BACKEND, "put", "k", permanent).is_retryable());
        let persistent = err(ErrorKind::Unexpected).set_persistent();
        assert!(!map_error("main", BACKEND, "list", "p", persistent).is_retryable());
        // Throttling is worth another try even when the service did not say so.
        assert!(map_error("main", BACKEND, "get", "k", err(ErrorKind::RateLimited)).is_retryable());
        for kind in [
            ErrorKind::PermissionDenied,
            ErrorKind::ConfigInvalid,
            ErrorKind::RangeNotSatisfied,
        ] {
            let e = map_error("main", BACKEND, "get", "k", err(kind));
            assert!(!e.is_retryable() && !e.is_not_found(), "{kind}: {e}");
            assert!(e.to_string().contains("failed to get `k`"), "{e}");
        }
    }

    #[test]
    fn unsupported_names_the_operation() {
        let e = map_error("dav", BACKEND, "list", "p", err(ErrorKind::Unsupported));
        match &e {
            Error::NotSupported { store, operation } => {
                assert_eq!(store, "dav");
                assert!(operation.starts_with("list of `p`"), "{operation}");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn backend_error_keeps_the_source() {
        let e = map_error("m", BACKEND, "put", "k", err(ErrorKind::Unexpected));
        let Error::Store { source, .. } = &e else {
            panic!("{e}")
        };
        let backend = source.downcast_ref::<BackendError>().unwrap();
        assert_eq!(backend.inner().kind(), ErrorKind::Unexpected);
        assert!(backend.source().is_some());
    }
}
