//! Keeping CPU-heavy work (hashing, encoding, decoding, local file I/O) off the async runtime.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dj_core::Result<()> {
//! use dj_rt::task::{BLOCKING_THRESHOLD, run_blocking};
//!
//! let data = vec![7u8; 1 << 20];
//! let big = data.len() > BLOCKING_THRESHOLD;
//! let sum = run_blocking(big, "example", "summing task", move || {
//!     data.iter().map(|&b| u64::from(b)).sum::<u64>()
//! })
//! .await?;
//! assert_eq!(sum, 7 << 20);
//! # Ok(()) }
//! ```

use dj_core::error::{Error, Result};

/// Above about this many bytes, hashing, encoding and decoding are worth a trip to the blocking
/// pool; below it the hand-off costs more than the work.
pub const BLOCKING_THRESHOLD: usize = 256 * 1024;

/// Run `f` on tokio's blocking pool when `big` and a runtime is running, inline otherwise.
///
/// If `f` panics, the error is [`Error::codec`] for `codec`, saying "`what` failed".
pub async fn run_blocking<T: Send + 'static>(
    big: bool,
    codec: &str,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    if big && tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| Error::codec(codec, format!("{what} failed: {e}")))
    } else {
        Ok(f())
    }
}

#[cfg(test)]
mod tests {
    use super::run_blocking;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_panic_is_an_error_naming_the_work() {
        let err = run_blocking(true, "blob", "decoding task", || -> u8 { panic!("boom") })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("decoding task failed") && err.contains("blob"),
            "{err}"
        );
        assert_eq!(run_blocking(false, "blob", "x", || 3).await.unwrap(), 3);
    }
}
