//! The progress bar of [`Populate::progress_bar`](super::Populate::progress_bar) (feature
//! `progress-bar`): indicatif on standard error, hidden when that is not a terminal.

use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::PopulateReport;

/// One run's bar.
pub(crate) struct Bar {
    bar: ProgressBar,
    made: AtomicU64,
    failed: AtomicU64,
}

const TEMPLATE: &str = "{prefix} [{wide_bar}] {pos}/{len} {msg} {elapsed_precise} eta {eta}";

impl Bar {
    /// A bar for `total` keys of table `class`.
    pub(crate) fn start(class: &str, total: usize) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(class.to_string());
        bar.set_message("made 0, failed 0");
        Bar {
            bar,
            made: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// `done` keys finished; the last one made (`ok`) or failed.
    pub(crate) fn update(&self, done: usize, ok: bool, failed: bool) {
        if ok {
            self.made.fetch_add(1, Ordering::Relaxed);
        }
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.bar.set_message(format!(
            "made {}, failed {}",
            self.made.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        ));
        self.bar.set_position(done as u64);
    }

    /// Leave the final line: what the run made, failed and skipped.
    pub(crate) fn finish(self, report: &PopulateReport, stopped_by_error: bool) {
        let mut msg = format!(
            "made {}, failed {}, skipped {}",
            report.success_count,
            report.errors.len() + usize::from(stopped_by_error),
            report.skipped
        );
        if stopped_by_error {
            msg.push_str(" (stopped at the first error)");
        }
        self.bar.abandon_with_message(msg);
    }
}
