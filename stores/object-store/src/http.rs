//! What the HTTP backends (`s3`, `gcs`, `azure`) share: the retry rule for `object_store`'s HTTP
//! errors and its client's retry settings from a store's `retry` settings.

use std::error::Error as StdError;

use dj_core::config::{RetrySettings, StoreSpec};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::{BackoffConfig, RetryConfig};

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

/// `object_store`'s retry settings for a store with these `retry` settings: `max_attempts`
/// becomes `max_retries` (attempts less the first), the backoffs become its [`BackoffConfig`]
/// (doubling, as the retry layer does), `max_elapsed` its `retry_timeout`. What the settings
/// leave unset keeps `object_store`'s default (10 retries, 100 ms initial and 15 s largest
/// backoff, 3 minutes in all).
///
/// ```
/// use std::time::Duration;
/// use dj_core::config::RetrySettings;
/// let c = dj_store_object_store::retry_config(&RetrySettings::default().with_max_attempts(3));
/// assert_eq!(c.max_retries, 2);
/// assert_eq!(c.backoff.init_backoff, Duration::from_millis(100));
/// assert_eq!(dj_store_object_store::retry_config(&RetrySettings::never()).max_retries, 0);
/// ```
pub fn retry_config(settings: &RetrySettings) -> RetryConfig {
    let mut config = RetryConfig::default();
    if let Some(n) = settings.max_attempts {
        config.max_retries = usize::try_from(n.saturating_sub(1)).unwrap_or(usize::MAX);
    }
    let mut backoff = BackoffConfig::default();
    if let Some(d) = settings.initial_backoff {
        backoff.init_backoff = d;
    }
    if let Some(d) = settings.max_backoff {
        backoff.max_backoff = d;
    }
    config.backoff = backoff;
    if let Some(d) = settings.max_elapsed {
        config.retry_timeout = d;
    }
    config
}

/// [`retry_config`] for the settings of `spec` (its [`retry`](StoreSpec::retry)).
pub fn retry_config_for(spec: &StoreSpec) -> RetryConfig {
    retry_config(&spec.retry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::is_retryable;
    use std::time::Duration;

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

    #[test]
    fn retry_settings_become_object_store_retry_config() {
        let defaults = retry_config(&RetrySettings::default());
        let stock = RetryConfig::default();
        assert_eq!(defaults.max_retries, stock.max_retries);
        assert_eq!(defaults.retry_timeout, stock.retry_timeout);
        assert_eq!(defaults.backoff.init_backoff, stock.backoff.init_backoff);
        assert_eq!(defaults.backoff.max_backoff, stock.backoff.max_backoff);

        let c = retry_config(
            &RetrySettings::default()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(20))
                .with_max_backoff(Duration::from_millis(700))
                .with_max_elapsed(Duration::from_secs(9)),
        );
        assert_eq!(c.max_retries, 4);
        assert_eq!(c.backoff.init_backoff, Duration::from_millis(20));
        assert_eq!(c.backoff.max_backoff, Duration::from_millis(700));
        assert_eq!(c.retry_timeout, Duration::from_secs(9));
        assert_eq!(retry_config(&RetrySettings::never()).max_retries, 0);
    }
}
