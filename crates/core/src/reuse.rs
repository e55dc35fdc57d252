//! The rule that lets writers reuse stored objects while garbage collection runs.
//!
//! Hash-addressed objects are deduplicated: an insert whose content is already in the store
//! points its new row at the existing object instead of writing it again, and a migration skips
//! a copy the target store already holds. The existing object may be an orphan that a
//! concurrent garbage collection has just listed and is about to delete. Writers and the
//! collector agree on two numbers so that this never loses data:
//!
//! - a writer reuses an existing object *as it is* only when it was modified less than
//!   [`REFRESH_AFTER`] ago; an older one is written again (same bytes), which makes it young
//!   before the row that reuses it commits ([`must_refresh`]);
//! - a deleting collection refuses any grace period shorter than [`MIN_GC_GRACE`] (except an
//!   explicit zero, for a store nothing writes to while it runs), and checks each object's age
//!   once more just before deleting it.
//!
//! An object a writer reuses without rewriting is therefore younger than `REFRESH_AFTER` when the
//! writer checks it, and a collection deletes it only once it is older than its grace period,
//! at least `MIN_GC_GRACE`: the writer has `MIN_GC_GRACE - REFRESH_AFTER` (one hour) between
//! that check and its commit. An object a writer writes (or rewrites) has the whole grace period.
//! `docs/operations.md` states the resulting invariant for users.
//!
//! ```
//! use chrono::{TimeDelta, Utc};
//! use dj_core::reuse::{MIN_GC_GRACE, REFRESH_AFTER, must_refresh};
//!
//! let now = Utc::now();
//! assert!(!must_refresh(now - TimeDelta::minutes(10), now));
//! assert!(must_refresh(now - TimeDelta::hours(2), now));
//! assert!(MIN_GC_GRACE > REFRESH_AFTER);
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};

/// An existing object older than this is written again when a writer reuses it.
pub const REFRESH_AFTER: Duration = Duration::from_secs(3600);

/// The shortest grace period a deleting garbage collection accepts (zero aside, which must be
/// asked for explicitly): [`REFRESH_AFTER`] plus one hour for the writer between checking an
/// object and committing the row that references it.
pub const MIN_GC_GRACE: Duration = Duration::from_secs(2 * 3600);

/// Whether a writer that finds the object it needs already stored, last modified at
/// `last_modified`, must write it again before reusing it (it is older than [`REFRESH_AFTER`]).
///
/// A modification time in the future (clock skew) counts as young: a collection sees it young
/// too.
pub fn must_refresh(last_modified: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    match chrono::TimeDelta::from_std(REFRESH_AFTER) {
        Ok(limit) => now.signed_duration_since(last_modified) > limit,
        Err(_) => false,
    }
}
