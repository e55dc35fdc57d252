//! A progress bar on standard error, fed by the lifecycle operations' progress hooks.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use datajoint::schema::lifecycle::{Phase, Progress};
use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar, or nothing when standard error is not a terminal or the output is JSON.
#[derive(Clone)]
pub struct Bar {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    bar: ProgressBar,
    /// The phase shown, and whether its total is known.
    phase: Mutex<Option<(Phase, bool)>>,
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Discover => "reading catalog",
        Phase::List => "listing store",
        Phase::Mark => "reading rows",
        Phase::Remark => "re-reading rows",
        Phase::Sweep => "deleting",
        Phase::Check => "checking",
        Phase::Copy => "copying",
        Phase::Rewrite => "rewriting rows",
        _ => "working",
    }
}

impl Bar {
    /// A bar when `enabled` and standard error is a terminal; otherwise a no-op.
    pub fn new(enabled: bool) -> Bar {
        if !enabled || !std::io::stderr().is_terminal() {
            return Bar { inner: None };
        }
        Bar {
            inner: Some(Arc::new(Inner {
                bar: ProgressBar::new_spinner(),
                phase: Mutex::new(None),
            })),
        }
    }

    /// Show one progress report.
    pub fn update(&self, p: &Progress) {
        let Some(inner) = &self.inner else { return };
        let known = p.total.is_some();
        let mut shown = inner.phase.lock().unwrap_or_else(|e| e.into_inner());
        if *shown != Some((p.phase, known)) {
            *shown = Some((p.phase, known));
            let template = if known {
                "{spinner} {msg:>16} [{wide_bar}] {pos}/{len} {elapsed}"
            } else {
                "{spinner} {msg:>16} {pos} {elapsed}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                inner.bar.set_style(style.progress_chars("=> "));
            }
            inner.bar.set_message(phase_name(p.phase));
            inner.bar.reset();
        }
        match p.total {
            Some(t) => inner.bar.set_length(t),
            None => inner.bar.unset_length(),
        }
        inner.bar.set_position(p.done);
    }

    /// A hook for `Gc::progress`, `Verify::progress` and `Migration::progress`.
    pub fn hook(&self) -> impl Fn(&Progress) + Send + Sync + 'static {
        let me = self.clone();
        move |p: &Progress| me.update(p)
    }

    /// Remove the bar from the terminal.
    pub fn finish(&self) {
        if let Some(inner) = &self.inner {
            inner.bar.finish_and_clear();
        }
    }
}

/// What `dj jobs --watch` shows: keys made out of the key source, and the job queue's counts.
/// A bar on standard error when it is a terminal; otherwise one line on standard error each
/// time the figures change; nothing with `--json`.
pub struct WatchBar {
    bar: Option<ProgressBar>,
    lines: bool,
    last: Option<String>,
}

impl WatchBar {
    /// A display for `table`; `enabled` is false with `--json`.
    pub fn new(table: &str, enabled: bool) -> WatchBar {
        let terminal = std::io::stderr().is_terminal();
        let bar = (enabled && terminal).then(|| {
            let bar = ProgressBar::new(0);
            if let Ok(style) =
                ProgressStyle::with_template("{prefix} [{wide_bar}] {pos}/{len} {msg} {elapsed}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(table.to_string());
            bar
        });
        WatchBar {
            bar,
            lines: enabled && !terminal,
            last: None,
        }
    }

    /// Show `made` of `total` keys, and the queue's `counts` by status.
    pub fn update(&mut self, made: u64, total: u64, counts: &[(String, u64)]) {
        let queue: Vec<String> = counts
            .iter()
            .filter(|(s, n)| *n > 0 && s != "total")
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let msg = if queue.is_empty() {
            "queue empty".to_string()
        } else {
            queue.join(", ")
        };
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(made);
            bar.set_message(msg);
            return;
        }
        let line = format!("made {made}/{total}; {msg}");
        if self.lines && self.last.as_deref() != Some(&line) {
            eprintln!("{line}");
            self.last = Some(line);
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
