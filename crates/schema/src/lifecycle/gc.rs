//! [`Gc`]: mark-and-sweep garbage collection of one store.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dj_config::StoreSpec;
use dj_core::store::{ConditionalDelete, ObjectMeta, Store, StorePath};
use dj_layout::{KeyClass, StoreLayout};
use futures::StreamExt;
use serde::Serialize;

use crate::catalog;
use crate::db::Connection;
use crate::error::{Error, Result};

use super::scan::{self, Catalog};
use super::staging::{self, IncompleteReport};
use super::{Phase, Progress, ProgressHook, StoreLock, report};

/// How a collection runs. The default is a dry run with a 24-hour grace period.
///
/// ```
/// use std::time::Duration;
/// use dj_schema::lifecycle::GcOptions;
///
/// let dry = GcOptions::default();
/// assert!(dry.dry_run);
/// assert_eq!(dry.grace, Duration::from_secs(24 * 3600));
/// let real = GcOptions::grace(Duration::from_secs(3600)).dry_run(false);
/// assert!(!real.dry_run);
/// // Zero grace must be asked for explicitly (Gc::run refuses it otherwise when deleting).
/// let now = GcOptions::grace(Duration::ZERO).allow_zero_grace(true).dry_run(false);
/// assert!(now.allow_zero_grace);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcOptions {
    /// Report only; delete nothing (the default).
    pub dry_run: bool,
    /// Objects modified less than this long ago are never deleted: they may belong to an insert
    /// whose row is not committed yet. 24 hours by default.
    pub grace: Duration,
    /// Allow a zero grace period when deleting. Without it, [`Gc::run`] refuses.
    pub allow_zero_grace: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            dry_run: true,
            grace: GcOptions::DEFAULT_GRACE,
            allow_zero_grace: false,
        }
    }
}

impl GcOptions {
    /// The default grace period: 24 hours.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

    /// A dry run with the given grace period.
    pub fn grace(grace: Duration) -> Self {
        GcOptions {
            grace,
            ..GcOptions::default()
        }
    }

    /// Set the grace period.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Allow (or not) a zero grace period when deleting.
    pub fn allow_zero_grace(mut self, allow: bool) -> Self {
        self.allow_zero_grace = allow;
        self
    }

    /// Whether a deleting collection may use this grace period: zero only with
    /// [`allow_zero_grace`](Self::allow_zero_grace), otherwise at least
    /// [`MIN_GC_GRACE`](dj_core::reuse::MIN_GC_GRACE) (2 hours). A shorter one could delete an
    /// object that an insert has just found in the store and is reusing (`dj_core::reuse`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use dj_schema::lifecycle::GcOptions;
    ///
    /// assert!(GcOptions::grace(Duration::from_secs(60)).check_grace().is_err());
    /// assert!(GcOptions::grace(Duration::ZERO).check_grace().is_err());
    /// assert!(GcOptions::grace(Duration::ZERO).allow_zero_grace(true).check_grace().is_ok());
    /// assert!(GcOptions::grace(Duration::from_secs(2 * 3600)).check_grace().is_ok());
    /// ```
    pub fn check_grace(&self) -> std::result::Result<(), String> {
        let min = dj_core::reuse::MIN_GC_GRACE;
        if self.grace.is_zero() {
            if self.allow_zero_grace {
                return Ok(());
            }
            return Err(
                "a zero grace period would delete objects that inserts in progress have \
                 just written; opt in with GcOptions::allow_zero_grace(true) (--allow-zero-grace), \
                 and only while nothing writes to the store"
                    .into(),
            );
        }
        if self.grace < min {
            return Err(format!(
                "a grace period of {}s is shorter than the minimum of {}s: an insert may reuse an \
                 unreferenced object up to {}s old without writing it again, and a collection \
                 with a shorter grace period could delete it before the insert's row commits; \
                 use a grace period of at least {}s (or zero, explicitly allowed, while nothing \
                 writes to the store)",
                self.grace.as_secs(),
                min.as_secs(),
                dj_core::reuse::REFRESH_AFTER.as_secs(),
                min.as_secs()
            ));
        }
        Ok(())
    }

    /// Report only (`true`, the default) or delete orphans (`false`).
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// The database a connection reads, for messages (no secrets).
fn database_label(conn: &Connection) -> String {
    format!(
        "the {} database {}",
        conn.backend(),
        conn.config().database.target()
    )
}

/// Counts for one section of the store (hash or schema).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SectionStats {
    /// Distinct paths in this section that rows reference.
    pub referenced: u64,
    /// Objects found in this section (for the schemas collected).
    pub stored: u64,
    /// Their total size.
    pub stored_bytes: u64,
    /// Objects no row references, older than the grace period: deleted unless this is a dry run.
    pub orphaned: u64,
    /// Their total size.
    pub orphaned_bytes: u64,
    /// Objects no row references but younger than the grace period: kept.
    pub skipped_young: u64,
    /// Their total size.
    pub skipped_young_bytes: u64,
    /// Objects deleted.
    pub deleted: u64,
    /// Bytes freed by the deletions.
    pub bytes_freed: u64,
    /// The orphaned paths, sorted.
    pub orphaned_paths: Vec<String>,
}

/// What a collection found and did. Serializes to JSON for command-line output.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GcReport {
    /// The store.
    pub store: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The grace period, in seconds.
    pub grace_seconds: u64,
    /// The schemas whose sections were collected, sorted.
    pub schemas: Vec<String>,
    /// The hash section (`{hash_prefix}/{schema}/…`).
    pub hash: SectionStats,
    /// The schema section (`{schema_prefix}/[partitions/]{schema}/…`).
    pub schema: SectionStats,
    /// Listed keys that follow neither section's grammar, or belong to other schemas: never
    /// touched.
    pub other_keys: u64,
    /// Orphans found referenced when the references were read again just before deleting (rows
    /// committed while the collection ran): kept.
    pub rescued: u64,
    /// Leftovers of interrupted writes (staging files, unfinished uploads) in the sections
    /// collected: removed, when older than the grace period, before orphans are deleted.
    pub incomplete: IncompleteReport,
    /// Whether deletion was refused because of scan errors.
    pub refused: bool,
    /// Listings and queries that failed. Any of them makes the collection delete nothing.
    pub scan_errors: Vec<String>,
    /// Deletions that failed.
    pub errors: Vec<String>,
}

impl GcReport {
    /// Objects deleted in both sections.
    pub fn deleted(&self) -> u64 {
        self.hash.deleted + self.schema.deleted
    }

    /// Bytes freed in both sections.
    pub fn bytes_freed(&self) -> u64 {
        self.hash.bytes_freed + self.schema.bytes_freed
    }

    /// Orphans (older than the grace period) in both sections.
    pub fn orphaned(&self) -> u64 {
        self.hash.orphaned + self.schema.orphaned
    }

    /// Whether every scan and every deletion succeeded.
    pub fn is_clean(&self) -> bool {
        self.scan_errors.is_empty() && self.errors.is_empty()
    }
}

/// Garbage collection of one store: mark every path the rows reference, sweep what is left.
///
/// 1. **List** the store: each schema's hash section `{hash_prefix}/{schema}` and its schema
///    section (`{schema_prefix}/{schema}`, or all of `{schema_prefix}` when the store has a
///    partition pattern, since partition segments come before the schema). Each key is
///    classified by the store layout; keys of other schemas, and keys that follow neither
///    grammar (user files, `<filepath@>` targets) are never touched.
/// 2. **Mark**: read the stored values of every attribute whose resolved codec chain has a
///    store (custom codecs included), in every table of the schemas, and collect the paths the
///    chain's codecs report ([`Codec::referenced_paths`](dj_core::codec::Codec::referenced_paths))
///    for this store. A reference whose metadata names no store counts for every store.
/// 3. **Classify**: a key is referenced when it equals a referenced path, lies under one (folder
///    objects) or is `{referenced}.manifest.json`. Unreferenced keys modified within the grace
///    period are kept; the rest are orphans.
/// 4. **Sweep** (only when not a dry run, and only when steps 1 and 2 had no error): read the
///    references again, keep orphans that became referenced meanwhile, then delete the others
///    (each re-checked with a `head` for its age first), with at most `transfer_concurrency`
///    deletions at a time.
///
/// Listing before marking means an object written after the listing is never seen, and one
/// written before it is either referenced by the time of the mark or younger than the grace
/// period unless its insert took longer than that. Deleting runs hold the store's [`StoreLock`].
///
/// Without [`Gc::schemas`], every schema of the database that has codec attributes is collected
/// (on SQLite, every schema of the file). With it, only the schemas named are read and swept;
/// that is safe because every path embeds its schema name.
#[derive(Clone)]
pub struct Gc {
    conn: Connection,
    store: String,
    schemas: Option<Vec<String>>,
    options: GcOptions,
    progress: Option<ProgressHook>,
}

impl fmt::Debug for Gc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gc")
            .field("store", &self.store)
            .field("schemas", &self.schemas)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// What recognises a table's object keys: its primary-key attributes and store attributes.
type KeyShape<'a> = (Vec<&'a str>, Vec<&'a str>);

/// Which section a listed key is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Hash,
    Schema,
}

/// Whether `key` is covered by a referenced path: equal to one, under one (a folder object), or
/// its `.manifest.json` sidecar.
fn covered(key: &str, refs: &HashSet<String>) -> bool {
    if refs.contains(key) {
        return true;
    }
    if let Some(base) = key.strip_suffix(".manifest.json")
        && refs.contains(base)
    {
        return true;
    }
    let mut end = key.len();
    while let Some(i) = key[..end].rfind('/') {
        if refs.contains(&key[..i]) {
            return true;
        }
        end = i;
    }
    false
}

/// The prefixes to list, with those inside another removed; `[None]` for the whole store.
fn listing_prefixes(prefixes: Vec<Option<StorePath>>) -> Vec<Option<StorePath>> {
    if prefixes.iter().any(Option::is_none) {
        return vec![None];
    }
    let mut sorted: Vec<StorePath> = prefixes.into_iter().flatten().collect();
    sorted.sort();
    sorted.dedup();
    let mut out: Vec<StorePath> = Vec::new();
    for p in sorted {
        if !out.iter().any(|o| p.starts_with(o)) {
            out.push(p);
        }
    }
    out.into_iter().map(Some).collect()
}

impl Gc {
    /// A collection of `store`, over every schema of the database that uses stores. A dry run
    /// with the default options until [`Gc::options`] says otherwise.
    pub fn new(conn: &Connection, store: &str) -> Gc {
        Gc {
            conn: conn.clone(),
            store: store.to_string(),
            schemas: None,
            options: GcOptions::default(),
            progress: None,
        }
    }

    /// Collect only these schemas.
    pub fn schemas<I, S>(mut self, schemas: I) -> Gc
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.schemas = Some(schemas.into_iter().map(Into::into).collect());
        self
    }

    /// Set the options.
    pub fn options(mut self, options: GcOptions) -> Gc {
        self.options = options;
        self
    }

    /// Call `hook` with progress reports.
    pub fn progress(mut self, hook: impl Fn(&Progress) + Send + Sync + 'static) -> Gc {
        self.progress = Some(Arc::new(hook));
        self
    }

    /// `None` when `schema` exists in the connected database; otherwise why it cannot be
    /// scanned, which makes a deleting collection refuse.
    async fn missing_schema(&self, schema: &str) -> Option<String> {
        match self.conn.existing_schema(schema).await {
            Ok(_) => None,
            Err(Error::NoSuchSchema { .. }) => Some(format!(
                "schema `{schema}` does not exist in {}: its objects in store `{}` cannot be told \
                 from orphans (does the configuration point at the database that holds it?); \
                 collect only schemas of this database (--schema), or connect to the one that \
                 holds `{schema}`",
                database_label(&self.conn),
                self.store
            )),
            Err(e) => Some(format!(
                "schema `{schema}`: cannot check that it exists: {e}"
            )),
        }
    }

    fn refuse(&self, message: impl Into<String>) -> Error {
        Error::Gc {
            store: self.store.clone(),
            message: message.into(),
        }
    }

    /// Run the collection.
    ///
    /// Errors: an unknown store, a zero grace period without
    /// [`allow_zero_grace`](GcOptions::allow_zero_grace) when deleting, or [`Error::GcLocked`]
    /// when another collection of the store is running. Failed listings and queries are not
    /// errors: they are reported in [`GcReport::scan_errors`], and the run deletes nothing
    /// ([`GcReport::refused`]).
    pub async fn run(&self) -> Result<GcReport> {
        let stores = self.conn.stores();
        let spec = stores
            .spec(&self.store)
            .map_err(|e| self.refuse(e.to_string()))?
            .clone();
        let store = stores
            .get(&self.store)
            .map_err(|e| self.refuse(e.to_string()))?;
        let deleting = !self.options.dry_run;
        if deleting {
            self.options
                .check_grace()
                .map_err(|message| self.refuse(message))?;
        }
        let lock = if deleting {
            Some(StoreLock::acquire(&self.conn, &self.store).await?)
        } else {
            None
        };
        let result = self.collect(&spec, store.as_ref()).await;
        if let Some(lock) = lock
            && let Err(e) = lock.release().await
        {
            tracing::warn!(store = self.store, error = %e, "cannot release the garbage-collection lock");
        }
        result
    }

    async fn collect(&self, spec: &StoreSpec, store: &dyn Store) -> Result<GcReport> {
        let layout = StoreLayout::from(spec);
        let deleting = !self.options.dry_run;
        let mut rep = GcReport {
            store: self.store.clone(),
            dry_run: self.options.dry_run,
            grace_seconds: self.options.grace.as_secs(),
            ..GcReport::default()
        };
        let cutoff = chrono::TimeDelta::from_std(self.options.grace)
            .ok()
            .and_then(|g| Utc::now().checked_sub_signed(g))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);

        // Which schemas. Named ones must exist in the connected database; without names, every
        // schema that owns objects in the store must exist there. Otherwise its objects cannot
        // be told from orphans (a config pointing at the wrong database would make all of them
        // look unreferenced), and the collection refuses to delete.
        let named = self.schemas.is_some();
        let mut schemas: Vec<String> = match &self.schemas {
            Some(s) => {
                let mut s = s.clone();
                s.sort();
                s.dedup();
                s
            }
            None => match scan::discover_schemas(&self.conn).await {
                Ok(s) => s,
                Err(e) => {
                    rep.scan_errors
                        .push(format!("cannot list the database's schemas: {e}"));
                    rep.refused = deleting;
                    return Ok(rep);
                }
            },
        };
        for s in &schemas {
            if let Err(e) = crate::naming::check_schema_name(s) {
                return Err(self.refuse(e.to_string()));
            }
        }
        if named {
            for s in &schemas {
                if let Some(problem) = self.missing_schema(s).await {
                    rep.scan_errors.push(problem);
                }
            }
        }

        // 1. List: each named schema's sections, or, without names, the whole hash and schema
        // sections (to find every schema that owns objects in the store).
        let mut prefixes = Vec::new();
        if named {
            for s in &schemas {
                match layout.hash_section(s) {
                    Ok(p) => prefixes.push(Some(p)),
                    Err(e) => rep.scan_errors.push(format!("schema `{s}`: {e}")),
                }
                match layout.schema_listing_prefix(s) {
                    Ok(p) => prefixes.push(p),
                    Err(e) => rep.scan_errors.push(format!("schema `{s}`: {e}")),
                }
            }
        } else {
            for (key, prefix) in [
                ("hash_prefix", &spec.hash_prefix),
                ("schema_prefix", &spec.schema_prefix),
            ] {
                let prefix = prefix.trim_matches('/');
                if prefix.is_empty() {
                    prefixes.push(None);
                } else {
                    match StorePath::parse(prefix) {
                        Ok(p) => prefixes.push(Some(p)),
                        Err(e) => rep
                            .scan_errors
                            .push(format!("stores.{}.{key}: {e}", self.store)),
                    }
                }
            }
        }
        // Every listed key of the hash or schema grammar, with its schema and table.
        let mut found: Vec<(Section, String, Option<String>, ObjectMeta)> = Vec::new();
        let mut others = 0u64;
        let mut count = 0u64;
        let prefixes = listing_prefixes(prefixes);
        for prefix in &prefixes {
            let mut stream = store.list(prefix.as_ref());
            while let Some(item) = stream.next().await {
                let meta = match item {
                    Ok(m) => m,
                    Err(e) => {
                        rep.scan_errors.push(format!(
                            "listing `{}` in store `{}` failed: {e}",
                            prefix
                                .as_ref()
                                .map_or("(the whole store)", StorePath::as_str),
                            self.store
                        ));
                        break;
                    }
                };
                count += 1;
                report(
                    &self.progress,
                    Progress {
                        phase: Phase::List,
                        done: count,
                        total: None,
                        bytes: 0,
                    },
                );
                match layout.classify(&meta.path) {
                    KeyClass::Hash { schema, .. }
                        if crate::naming::check_schema_name(&schema).is_ok() =>
                    {
                        found.push((Section::Hash, schema, None, meta));
                    }
                    KeyClass::Schema { schema, table, .. }
                        if crate::naming::check_schema_name(&schema).is_ok() =>
                    {
                        found.push((Section::Schema, schema, Some(table), meta));
                    }
                    _ => others += 1,
                }
            }
        }
        if !named {
            // Schemas that own objects in the store but were not discovered: collected when
            // they exist in the database (they have no store attributes, so nothing references
            // their objects); a refusal when they do not.
            let known: HashSet<&str> = schemas.iter().map(String::as_str).collect();
            let mut owners: Vec<String> = found
                .iter()
                .map(|(_, s, _, _)| s.as_str())
                .filter(|s| !known.contains(s))
                .map(str::to_string)
                .collect();
            owners.sort();
            owners.dedup();
            for s in owners {
                match self.missing_schema(&s).await {
                    None => schemas.push(s),
                    Some(problem) => rep.scan_errors.push(problem),
                }
            }
            schemas.sort();
        }
        rep.schemas.clone_from(&schemas);
        let in_scope: HashSet<&str> = schemas.iter().map(String::as_str).collect();

        // 2. Mark.
        let catalog = scan::load_catalog(&self.conn, &schemas, &self.progress).await;
        let (refs, errors) = self.mark(&catalog, Phase::Mark).await;
        rep.scan_errors.extend(catalog.errors.iter().cloned());
        rep.scan_errors.extend(errors);

        // Which listed keys are objects this layout writes: hash objects of the schemas in
        // scope, and schema-section keys of a table the catalog knows, for one of its store
        // attributes, with its primary-key segments. Anything else is never touched.
        let tables: HashMap<(&str, &str), KeyShape<'_>> = catalog
            .tables
            .iter()
            .map(|st| {
                let t = &st.table;
                let fields = st.attrs.iter().map(|a| a.attribute.as_str()).collect();
                (
                    (t.schema_name(), t.name()),
                    (t.heading().primary_key(), fields),
                )
            })
            .collect();
        let ours =
            |path: &StorePath| match layout.classify(path) {
                KeyClass::Hash { schema, .. } => in_scope.contains(schema.as_str()),
                KeyClass::Schema { schema, table, .. } => {
                    in_scope.contains(schema.as_str())
                        && tables.get(&(schema.as_str(), table.as_str())).is_some_and(
                            |(pk, fields)| layout.is_object_key(path, &schema, &table, pk, fields),
                        )
                }
                KeyClass::Other => false,
            };
        let mut listed: HashMap<String, (Section, ObjectMeta)> = HashMap::new();
        for (section, _, _, meta) in found {
            if ours(&meta.path) {
                listed.insert(meta.path.as_str().to_string(), (section, meta));
            } else {
                others += 1;
            }
        }
        rep.other_keys = others;

        // 2b. Leftovers of interrupted writes under the same prefixes, for the same keys as the
        // objects; removed (only by a deleting run whose scan had no error) before orphans are
        // deleted, so that a staging link and its object free their bytes once.
        rep.incomplete = staging::collect_incomplete(
            store,
            &prefixes,
            cutoff,
            &ours,
            &|key| covered(key, &refs),
            deleting && rep.scan_errors.is_empty(),
            self.conn.config().transfer_concurrency,
        )
        .await;
        rep.scan_errors
            .extend(rep.incomplete.scan_errors.iter().cloned());
        for r in &refs {
            let Ok(path) = StorePath::parse(r) else {
                continue;
            };
            match layout.classify(&path) {
                KeyClass::Hash { schema, .. } if in_scope.contains(schema.as_str()) => {
                    rep.hash.referenced += 1
                }
                KeyClass::Schema { schema, .. } if in_scope.contains(schema.as_str()) => {
                    rep.schema.referenced += 1
                }
                _ => {}
            }
        }

        // 3. Classify.
        let mut candidates: Vec<(Section, ObjectMeta)> = Vec::new();
        for (key, (section, meta)) in listed {
            let stats = match section {
                Section::Hash => &mut rep.hash,
                Section::Schema => &mut rep.schema,
            };
            stats.stored += 1;
            stats.stored_bytes += meta.size;
            if covered(&key, &refs) {
                continue;
            }
            if meta.last_modified > cutoff {
                stats.skipped_young += 1;
                stats.skipped_young_bytes += meta.size;
                continue;
            }
            candidates.push((section, meta));
        }
        candidates.sort_by(|a, b| a.1.path.cmp(&b.1.path));
        let tally = |rep: &mut GcReport, candidates: &[(Section, ObjectMeta)]| {
            for s in [&mut rep.hash, &mut rep.schema] {
                s.orphaned = 0;
                s.orphaned_bytes = 0;
                s.orphaned_paths.clear();
            }
            for (section, meta) in candidates {
                let stats = match section {
                    Section::Hash => &mut rep.hash,
                    Section::Schema => &mut rep.schema,
                };
                stats.orphaned += 1;
                stats.orphaned_bytes += meta.size;
                stats.orphaned_paths.push(meta.path.as_str().to_string());
            }
        };
        tally(&mut rep, &candidates);
        if !deleting {
            return Ok(rep);
        }
        if !rep.scan_errors.is_empty() {
            rep.refused = true;
            tracing::warn!(
                store = self.store,
                errors = rep.scan_errors.len(),
                "garbage collection deletes nothing: the scan had errors"
            );
            return Ok(rep);
        }
        if candidates.is_empty() {
            return Ok(rep);
        }

        // 4. Mark again, then sweep.
        let catalog = scan::load_catalog(&self.conn, &schemas, &None).await;
        let (refs, errors) = self.mark(&catalog, Phase::Remark).await;
        if !catalog.errors.is_empty() || !errors.is_empty() {
            rep.scan_errors.extend(catalog.errors);
            rep.scan_errors.extend(errors);
            rep.refused = true;
            return Ok(rep);
        }
        let before = candidates.len();
        candidates.retain(|(_, m)| !covered(m.path.as_str(), &refs));
        rep.rescued = (before - candidates.len()) as u64;
        tally(&mut rep, &candidates);

        let total = candidates.len() as u64;
        let concurrency = self.conn.config().transfer_concurrency.max(1);
        let mut results = futures::stream::iter(candidates)
            .map(|(section, meta)| async move {
                let outcome = sweep_one(store, &meta, cutoff).await;
                (section, meta, outcome)
            })
            .buffer_unordered(concurrency);
        let (mut done, mut freed) = (0u64, 0u64);
        while let Some((section, meta, outcome)) = results.next().await {
            let stats = match section {
                Section::Hash => &mut rep.hash,
                Section::Schema => &mut rep.schema,
            };
            match outcome {
                Ok(Swept::Deleted(size)) => {
                    stats.deleted += 1;
                    stats.bytes_freed += size;
                    freed += size;
                }
                Ok(Swept::Gone) => {}
                Ok(Swept::Young(size)) => {
                    stats.skipped_young += 1;
                    stats.skipped_young_bytes += size;
                }
                Err(e) => rep
                    .errors
                    .push(format!("deleting `{}` failed: {e}", meta.path)),
            }
            done += 1;
            report(
                &self.progress,
                Progress {
                    phase: Phase::Sweep,
                    done,
                    total: Some(total),
                    bytes: freed,
                },
            );
        }
        tracing::info!(
            store = self.store,
            deleted = rep.deleted(),
            bytes = rep.bytes_freed(),
            "garbage collection done"
        );
        Ok(rep)
    }

    /// The paths the rows of `catalog` reference in this store, and the queries that failed.
    async fn mark(&self, catalog: &Catalog, phase: Phase) -> (HashSet<String>, Vec<String>) {
        let mut refs = HashSet::new();
        let mut errors = Vec::new();
        let total = catalog.tables.len() as u64;
        for (i, st) in catalog.tables.iter().enumerate() {
            let names: Vec<String> = st.attrs.iter().map(|a| a.attribute.clone()).collect();
            match scan::stored_rows(&st.table, &names).await {
                Ok(rows) => {
                    for row in rows {
                        for attr in &st.attrs {
                            let Some(v) = row.get(&attr.attribute) else {
                                continue;
                            };
                            if v.is_null() {
                                continue;
                            }
                            for r in attr.resolved.referenced_paths(v) {
                                // A reference that names no store may be in any store.
                                let ours = r
                                    .store
                                    .as_deref()
                                    .is_none_or(|s| s.is_empty() || s == self.store);
                                if ours {
                                    refs.insert(scan::normalize_path(&r.path));
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    // A table dropped since the catalog was read references nothing.
                    let t = &st.table;
                    let gone = match self.conn.acquire().await {
                        Ok(mut c) => matches!(
                            catalog::table_exists(
                                &mut c.exec(),
                                self.conn.backend(),
                                t.schema_name(),
                                t.name()
                            )
                            .await,
                            Ok(false)
                        ),
                        Err(_) => false,
                    };
                    if !gone {
                        errors.push(format!("reading `{}` failed: {e}", t.full_name()));
                    }
                }
            }
            report(
                &self.progress,
                Progress {
                    phase,
                    done: i as u64 + 1,
                    total: Some(total),
                    bytes: 0,
                },
            );
        }
        (refs, errors)
    }
}

enum Swept {
    Deleted(u64),
    Gone,
    Young(u64),
}

/// Delete one orphan if it is still old enough: the store checks its age and deletes it as one
/// step where it can ([`Store::delete_if_older`]), so a writer that rewrites it meanwhile keeps it.
async fn sweep_one(
    store: &dyn Store,
    listed: &ObjectMeta,
    cutoff: DateTime<Utc>,
) -> dj_core::Result<Swept> {
    Ok(match store.delete_if_older(&listed.path, cutoff).await? {
        ConditionalDelete::Deleted(size) => Swept::Deleted(size),
        ConditionalDelete::Kept(size) => Swept::Young(size),
        _ => Swept::Gone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> HashSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn coverage_rule() {
        let refs = set(&["_schema/s/t/k=1/f_abc", "_hash/s/xyz"]);
        assert!(covered("_hash/s/xyz", &refs));
        assert!(covered("_schema/s/t/k=1/f_abc", &refs));
        assert!(covered("_schema/s/t/k=1/f_abc/inner/file.bin", &refs));
        assert!(covered("_schema/s/t/k=1/f_abc.manifest.json", &refs));
        assert!(!covered("_schema/s/t/k=1/f_abcd", &refs));
        assert!(!covered("_schema/s/t/k=1/f_ab", &refs));
        assert!(!covered("_hash/s/xyzz", &refs));
        assert!(!covered("_schema/s/t/k=1/other.manifest.json", &refs));
    }

    #[test]
    fn prefixes_inside_others_are_dropped() {
        let p = |s: &str| Some(StorePath::parse(s).unwrap());
        assert_eq!(
            listing_prefixes(vec![
                p("_schema/a"),
                p("_schema"),
                p("_hash/a"),
                p("_schema")
            ]),
            vec![p("_hash/a"), p("_schema")]
        );
        assert_eq!(listing_prefixes(vec![p("_hash/a"), None]), vec![None]);
    }
}
