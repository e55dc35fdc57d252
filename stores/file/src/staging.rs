//! Staging files that killed writes leave behind: finding them and removing them.
//!
//! `object_store`'s `LocalFileSystem` writes every object to a staging file `<name>#<digits>`
//! beside its target, syncs it, and then renames it into place (or, for create-if-absent, hard
//! links it into place and removes the staging name). A process killed in between leaves the
//! staging file, and `LocalFileSystem`'s listings hide every file whose name's first `#` is
//! followed by digits only, so nothing else ever sees it. These functions do the blocking file
//! system work; the store runs them on the blocking pool.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use dj_core::store::StorePath;

/// The target name and the staging suffix of a file name that `object_store` treats as a
/// staging file (and hides from listings): `<name>#<digits>`, the first `#` followed by ASCII
/// digits only, with a non-empty name; or of a file a conditional delete moved aside,
/// `<name>#gc<digits>` ([`crate::ASIDE_MARKER`]).
pub(crate) fn staging_name(file_name: &str) -> Option<(&str, &str)> {
    let (name, suffix) = file_name.split_once('#')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (!name.is_empty() && (digits(suffix) || suffix.strip_prefix("gc").is_some_and(digits)))
        .then_some((name, suffix))
}

/// Whether a staging suffix is that of a file a conditional delete moved aside (`gc<digits>`),
/// not one of `object_store`'s (`<digits>`).
pub(crate) fn is_aside(suffix: &str) -> bool {
    suffix.starts_with("gc")
}

/// A staging file found on disk.
#[derive(Debug)]
pub(crate) struct Found {
    /// The key of the object the write was for.
    pub(crate) key: StorePath,
    /// The digits after `#`.
    pub(crate) suffix: String,
    /// Its size in bytes.
    pub(crate) size: u64,
    /// Its hard-link count (1 when it is the data's only name).
    pub(crate) links: u64,
    /// Its modification time.
    pub(crate) modified: SystemTime,
}

/// A failed directory read or `stat`, with the local path.
pub(crate) type ScanError = (PathBuf, io::Error);

/// The hard-link count of a file (1 where the platform does not say).
fn links(meta: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.nlink()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        1
    }
}

/// Every staging file whose target key equals `prefix` or lies below it (`None`: the whole
/// store under `root`), and the reads that failed. Symbolic links are neither followed nor
/// reported; a directory or file that disappears while the walk runs is skipped.
pub(crate) fn scan(root: &Path, prefix: Option<&StorePath>) -> (Vec<Found>, Vec<ScanError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    match prefix {
        None => walk(root, "", &mut found, &mut errors),
        Some(p) => {
            let (parent_key, last) = match p.as_str().rsplit_once('/') {
                Some((parent, last)) => (parent, last),
                None => ("", p.as_str()),
            };
            let parent_dir = local_path(root, parent_key);
            // Staging files of the key `prefix` itself live beside it.
            read_dir(
                &parent_dir,
                parent_key,
                &mut found,
                &mut errors,
                &mut |name| name == last,
            );
            walk(
                &local_path(root, p.as_str()),
                p.as_str(),
                &mut found,
                &mut errors,
            );
        }
    }
    (found, errors)
}

/// The local path of a key (or key prefix; `""` is the root).
pub(crate) fn local_path(root: &Path, key: &str) -> PathBuf {
    key.split('/')
        .filter(|s| !s.is_empty())
        .fold(root.to_path_buf(), |p, segment| p.join(segment))
}

/// Walk `dir` (the key prefix `key`) recursively.
fn walk(dir: &Path, key: &str, found: &mut Vec<Found>, errors: &mut Vec<ScanError>) {
    let mut subdirs = Vec::new();
    read_dir_with(dir, key, found, errors, &mut |_| true, &mut subdirs);
    for (sub, sub_key) in subdirs {
        walk(&sub, &sub_key, found, errors);
    }
}

/// The staging files directly in `dir` whose target name `keep` accepts.
fn read_dir(
    dir: &Path,
    key: &str,
    found: &mut Vec<Found>,
    errors: &mut Vec<ScanError>,
    keep: &mut dyn FnMut(&str) -> bool,
) {
    read_dir_with(dir, key, found, errors, keep, &mut Vec::new());
}

fn read_dir_with(
    dir: &Path,
    key: &str,
    found: &mut Vec<Found>,
    errors: &mut Vec<ScanError>,
    keep: &mut dyn FnMut(&str) -> bool,
    subdirs: &mut Vec<(PathBuf, String)>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        // No such section (yet), or a directory that a deletion removed meanwhile; a file where
        // a directory was expected holds nothing below it.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return;
        }
        Err(e) => {
            errors.push((dir.to_path_buf(), e));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                errors.push((dir.to_path_buf(), e));
                continue;
            }
        };
        // A name that is not UTF-8 is no key of this store.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let child_key = if key.is_empty() {
            name.clone()
        } else {
            format!("{key}/{name}")
        };
        // Not followed: `file_type` does not traverse symbolic links.
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                errors.push((entry.path(), e));
                continue;
            }
        };
        if file_type.is_dir() {
            subdirs.push((entry.path(), child_key));
            continue;
        }
        if !file_type.is_file() {
            continue;
        }
        let Some((target, suffix)) = staging_name(&name) else {
            continue;
        };
        if !keep(target) {
            continue;
        }
        let target_key = if key.is_empty() {
            target.to_string()
        } else {
            format!("{key}/{target}")
        };
        // A target that could not be a key was not written through this store.
        let Ok(target_key) = StorePath::parse(&target_key) else {
            continue;
        };
        // `symlink_metadata`: the entry itself, never what a link points to.
        let meta = match std::fs::symlink_metadata(entry.path()) {
            Ok(m) if m.is_file() => m,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                errors.push((entry.path(), e));
                continue;
            }
        };
        let modified = match meta.modified() {
            Ok(m) => m,
            Err(e) => {
                errors.push((entry.path(), e));
                continue;
            }
        };
        found.push(Found {
            key: target_key,
            suffix: suffix.to_string(),
            size: meta.len(),
            links: links(&meta),
            modified,
        });
    }
}

/// What [`remove`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Removed {
    /// Removed; the bytes the disk got back (0 when another hard link still holds them).
    Freed(u64),
    /// Not there any more, or no longer a regular file.
    Gone,
    /// Modified after the cutoff: kept.
    Young,
}

/// Remove the staging file `<key>#<suffix>` under `root` unless it was modified after
/// `not_after`; then remove the directories it leaves empty, up to (not including) `root`.
pub(crate) fn remove(
    root: &Path,
    key: &StorePath,
    suffix: &str,
    not_after: SystemTime,
) -> Result<Removed, ScanError> {
    let file = local_path(root, &format!("{}#{suffix}", key.as_str()));
    let meta = match std::fs::symlink_metadata(&file) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removed::Gone),
        Err(e) => return Err((file, e)),
    };
    if !meta.is_file() {
        return Ok(Removed::Gone);
    }
    if is_aside(suffix) {
        // Put back when the key is free, dropped otherwise: safe at any age.
        let freed = if local_path(root, key.as_str()).exists() && links(&meta) == 1 {
            meta.len()
        } else {
            0
        };
        return match crate::recover_aside(&file) {
            Ok(_) => Ok(Removed::Freed(freed)),
            Err(e) => Err((file, e)),
        };
    }
    let modified = meta.modified().map_err(|e| (file.clone(), e))?;
    if modified > not_after {
        return Ok(Removed::Young);
    }
    let freed = if links(&meta) > 1 { 0 } else { meta.len() };
    match std::fs::remove_file(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removed::Gone),
        Err(e) => return Err((file, e)),
    }
    // As the store does when it deletes an object: empty directories go too. A writer that
    // creates a file in one meanwhile recreates it (object_store retries on a missing parent).
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(Removed::Freed(freed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_are_what_object_store_hides() {
        assert_eq!(staging_name("abc#1"), Some(("abc", "1")));
        assert_eq!(staging_name("f.npy#0042"), Some(("f.npy", "0042")));
        assert_eq!(
            staging_name("abc#gc4200000001"),
            Some(("abc", "gc4200000001"))
        );
        assert!(is_aside("gc4200000001") && !is_aside("42"));
        for visible in [
            "abc", "abc#", "#1", "abc#1a", "a#b#1", "abc#-1", "abc# 1", "abc#gc", "abc#gc1x",
        ] {
            assert_eq!(staging_name(visible), None, "{visible}");
        }
    }
}
