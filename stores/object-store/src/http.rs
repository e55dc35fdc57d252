//! What the HTTP backends (`s3`, `gcs`, `azure`) share: the retry rule for `object_store`'s HTTP
//! errors.

use std::error::Error as StdError;

use object_store::client::{HttpError, HttpErrorKind};

/// The [`RetryClassifier`](crate::RetryClassifier) of the HTTP backends: an `object_store`
/// [`HttpError`] of kind connect, request, timeout or interrupted may succeed on retry; any other
/// error (another HTTP error kind, or not an `HttpError` at all) is left to the generic rules of
/// [`is_retryable`](crate::is_retryable). Decided from the error's type and kind, never from its
/// message.
///
/// ```
/// use object_store::client::{HttpError, HttpErrorKind};
/// let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
/// let e = HttpError::new(HttpErrorKind::Connect, refused);
/// assert_eq!(dj_store_object_store::classify_http(&e), Some(true));
/// ```
pub fn classify_http(err: &(dyn StdError + 'static)) -> Option<bool> {
    let http = err.downcast_ref::<HttpError>()?;
    match http.kind() {
        HttpErrorKind::Connect
        | HttpErrorKind::Request
        | HttpErrorKind::Timeout
        | HttpErrorKind::Interrupted => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::is_retryable;

    fn http(kind: HttpErrorKind, message: &str) -> HttpError {
        HttpError::new(kind, std::io::Error::other(message.to_string()))
    }

    fn generic(source: HttpError) -> object_store::Error {
        object_store::Error::Generic {
            store: "test",
            source: Box::new(source),
        }
    }

    #[test]
    fn http_error_kinds_decide() {
        for kind in [
            HttpErrorKind::Connect,
            HttpErrorKind::Request,
            HttpErrorKind::Timeout,
            HttpErrorKind::Interrupted,
        ] {
            // The kind decides, whatever the message says.
            let e = http(kind, "bad request: invalid key");
            assert_eq!(classify_http(&e), Some(true), "{kind:?}");
            assert!(
                is_retryable(&generic(e), Some(classify_http)),
                "{kind:?} in object_store's chain"
            );
        }
        for kind in [HttpErrorKind::Decode, HttpErrorKind::Unknown] {
            let e = http(kind, "connection reset, timed out, 503");
            assert_eq!(classify_http(&e), None, "{kind:?} defers");
            assert!(
                !is_retryable(&generic(e), Some(classify_http)),
                "{kind:?} with a transient-sounding message"
            );
        }
        // A deferred kind still meets the generic rules: a transient I/O error below it.
        let reset = HttpError::new(
            HttpErrorKind::Unknown,
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "x"),
        );
        assert!(is_retryable(&generic(reset), Some(classify_http)));
        // Not an HttpError at all: defers.
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "x");
        assert_eq!(classify_http(&io), None);
        // Without the classifier, an HttpError of kind Connect with an opaque source is not
        // known to be transient: the classifier is what makes it so.
        assert!(!is_retryable(
            &generic(http(HttpErrorKind::Connect, "dns error")),
            None
        ));
    }
}
