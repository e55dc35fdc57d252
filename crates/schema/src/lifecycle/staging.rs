//! Leftovers of interrupted writes: what garbage collection does with them.
//!
//! A process killed while it writes leaves something that ordinary listings never show: a
//! staging file `<key>#<digits>` on a file store (a hard link of the object, when the kill came
//! after a create-if-absent published it), an unfinished multipart upload on S3. Stores list
//! them with [`Store::list_incomplete`] and remove them with [`Store::remove_incomplete`];
//! [`collect_incomplete`] does that for a collection, under the same prefixes and with the same
//! cutoff as its listing of objects.
//!
//! **Invariant:** a leftover whose last sign of life (a staging file's modification time; an
//! upload's start or newest part) is after the cutoff is never touched, and the store checks
//! that again just before it removes one. A leftover that is inside an object the rows
//! reference (a file of a folder object that happens to be named like a staging file) is never
//! touched either, nor one whose key lies outside the sections the collection covers.

use chrono::{DateTime, Utc};
use dj_core::store::{IncompleteKind, IncompleteRemoval, IncompleteWrite, Store, StorePath};
use futures::StreamExt;
use serde::Serialize;

/// What a collection found and did about leftovers of interrupted writes in the sections it
/// collects. Part of [`GcReport`](super::GcReport).
///
/// Bytes are what the store really holds: a staging file that is a hard link of another file
/// (the object it was published as) holds nothing of its own. Such a leftover is counted in
/// `linked`, its size in `linked_bytes` and in no other byte count; removing it frees nothing
/// while the other name lives, and deleting the other name frees nothing while it lives, so a
/// collection removes leftovers before it deletes orphans, and `bytes_freed` (here and in the
/// sections) counts the data once, at the removal of its last name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct IncompleteReport {
    /// Leftovers found in the sections collected.
    pub found: u64,
    /// The bytes they hold on their own (staging files with no other name, uploaded parts).
    pub found_bytes: u64,
    /// Leftovers that are hard links of another file (a published object): they hold no bytes
    /// of their own.
    pub linked: u64,
    /// The size of those.
    pub linked_bytes: u64,
    /// Leftovers inside an object that rows reference (files of a folder object that are named
    /// like staging files): never touched.
    pub referenced: u64,
    /// Leftovers whose last sign of life is within the grace period: kept.
    pub skipped_young: u64,
    /// The bytes those hold on their own.
    pub skipped_young_bytes: u64,
    /// Leftovers older than the grace period: removed unless this is a dry run.
    pub stale: u64,
    /// The bytes those hold on their own.
    pub stale_bytes: u64,
    /// Those leftovers (`<key>#<digits>` for a staging file, `<key> (upload <id>)` for an
    /// upload), sorted.
    pub stale_paths: Vec<String>,
    /// Leftovers removed (staging files deleted, uploads aborted).
    pub removed: u64,
    /// The bytes those removals gave back, measured at each removal.
    pub bytes_freed: u64,
    /// Listings of leftovers that failed. Any of them makes the collection delete nothing.
    pub scan_errors: Vec<String>,
    /// Removals that failed.
    pub errors: Vec<String>,
}

/// List the leftovers of interrupted writes under `prefixes` (`None`: the whole store), keep
/// those whose target key `in_sections` accepts, and, when `remove` is set and every listing
/// succeeded, remove those older than `cutoff` (at most `concurrency` at a time) unless the
/// staging file's own key is `referenced` (covered by an object the rows reference).
///
/// Never fails: listing errors land in [`IncompleteReport::scan_errors`] (and then nothing is
/// removed), removal errors in [`IncompleteReport::errors`].
pub(crate) async fn collect_incomplete(
    store: &dyn Store,
    prefixes: &[Option<StorePath>],
    cutoff: DateTime<Utc>,
    in_sections: &(dyn Fn(&StorePath) -> bool + Sync),
    referenced: &(dyn Fn(&str) -> bool + Sync),
    remove: bool,
    concurrency: usize,
) -> IncompleteReport {
    let mut rep = IncompleteReport::default();
    let mut stale: Vec<IncompleteWrite> = Vec::new();
    for prefix in prefixes {
        let mut listing = store.list_incomplete(prefix.as_ref());
        while let Some(item) = listing.next().await {
            let w = match item {
                Ok(w) => w,
                Err(e) => {
                    rep.scan_errors.push(format!(
                        "listing leftovers of interrupted writes under `{}` in store `{}` \
                         failed: {e}",
                        prefix
                            .as_ref()
                            .map_or("(the whole store)", StorePath::as_str),
                        store.name()
                    ));
                    break;
                }
            };
            if !in_sections(&w.path) {
                continue;
            }
            rep.found += 1;
            rep.found_bytes += w.exclusive_bytes();
            if w.links > 1 {
                rep.linked += 1;
                rep.linked_bytes += w.size;
            }
            if w.kind == IncompleteKind::StagingFile && referenced(&w.to_string()) {
                rep.referenced += 1;
                continue;
            }
            // A file moved aside by a killed collection is put back (or dropped as a duplicate)
            // whatever its age: it may be a live object.
            if w.last_modified > cutoff && w.kind != IncompleteKind::MovedAside {
                rep.skipped_young += 1;
                rep.skipped_young_bytes += w.exclusive_bytes();
                continue;
            }
            rep.stale += 1;
            rep.stale_bytes += w.exclusive_bytes();
            rep.stale_paths.push(w.to_string());
            stale.push(w);
        }
    }
    rep.stale_paths.sort();
    if !remove || !rep.scan_errors.is_empty() || stale.is_empty() {
        return rep;
    }
    let mut results = futures::stream::iter(stale)
        .map(|w| async move {
            let outcome = store.remove_incomplete(&w, cutoff).await;
            (w, outcome)
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((w, outcome)) = results.next().await {
        match outcome {
            Ok(IncompleteRemoval::Removed { bytes_freed }) => {
                rep.removed += 1;
                rep.bytes_freed += bytes_freed;
            }
            Ok(IncompleteRemoval::Young) => {
                // A sign of life since the listing: kept after all.
                rep.stale -= 1;
                rep.stale_bytes = rep.stale_bytes.saturating_sub(w.exclusive_bytes());
                rep.skipped_young += 1;
                rep.skipped_young_bytes += w.exclusive_bytes();
                let shown = w.to_string();
                rep.stale_paths.retain(|p| *p != shown);
            }
            Ok(IncompleteRemoval::Gone) => {}
            Ok(other) => rep.errors.push(format!(
                "removing `{w}` gave an answer this version does not know: {other:?}"
            )),
            Err(e) => rep.errors.push(format!("removing `{w}` failed: {e}")),
        }
    }
    tracing::info!(
        store = store.name(),
        removed = rep.removed,
        bytes = rep.bytes_freed,
        "leftovers of interrupted writes removed"
    );
    rep
}
